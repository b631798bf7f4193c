#!/usr/bin/env python3
"""Breaks each promise of RELIABILITY.md on purpose, one at a time, and checks that the test
named beside it fails: a test that a wrong implementation passes proves nothing.

Each mutant is one exact text replacement in the product's code (it must match exactly once,
or the mutant is reported stale), then the named test is run; the file is restored from git
afterwards. The tree must be clean, since restoring a file drops any change to it.

    python3 tests/mutants/run.py            # every mutant (≈ 20 min on 2 cores)
    python3 tests/mutants/run.py F3 F13     # some
    python3 tests/mutants/run.py --check    # only that every mutant's text is still there
    python3 tests/mutants/run.py --sample 3 --seed 17   # three drawn at random (CI: a new draw a day)

B9 breaks a promise the csv_table fuzz target keeps, and runs it (cargo-fuzz must be installed).

Prints one line per mutant: KILLED (the test failed, with its first panic message) or
SURVIVED; exits 1 if any survived or was stale.
"""

import os
import subprocess
import sys

# (promise, file, text, replacement, cargo test arguments, test name filter)
MUTANTS = {
    "F1": ("restarted on the same port", "tui/supervisor.rs",
           '.arg(format!("127.0.0.1:{port}"))', '.arg(format!("127.0.0.1:{}", 0 * port))',
           ["--test", "faults"], "killed_services_are_restarted"),
    "F2": ("a model is written only once its fit has finished", "services/train/src/lib.rs",
           "    let solve_started = std::time::Instant::now();",
           '    let _ = store.put_json(Kind::Model, NAME, Vec::new(), serde_json::json!({"early": true}), "model.json", &serde_json::json!({}));\n    let solve_started = std::time::Instant::now();',
           ["--test", "faults"], "training_killed_midway"),
    "F3": ("serve comes back serving the promoted version", "services/serve/src/catalog.rs",
           "            Some(v) => *v,\n            None => selector.parse",
           "            Some(v) => *self.versions.keys().last().unwrap_or(v),\n            None => selector.parse",
           ["--test", "faults"], "killed_services_are_restarted"),
    "F4": ("answers name promoted versions under load", "services/serve/src/catalog.rs",
           "            Some(v) => *v,\n            None => selector.parse",
           "            Some(v) => *self.versions.keys().last().unwrap_or(v),\n            None => selector.parse",
           ["--test", "faults"], "promotions_under_load_fail_no_request"),
    "F5a": ("no service outlives a SIGKILLed console (PDEATHSIG)", "tui/supervisor.rs",
            "nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;", "let _ = Signal::SIGKILL;",
            ["--test", "faults"], "a_console_killed_with_sigkill"),
    "F5b": ("a gone console's leftovers are reaped", "tui/supervisor.rs",
            "        reap_stale(&run_dir);", "        let _ = &run_dir;",
            ["--test", "faults"], "a_console_killed_with_sigkill"),
    "F6": ("the backoff doubles", "tui/supervisor.rs",
           "let doublings = 2u32.saturating_pow(*crashes - 1);", "let doublings = 1u32.saturating_pow(*crashes - 1);",
           ["--test", "supervisor"], "a_service_that_crashes_on_every_start"),
    "F7": ("a corrupted artifact is refused", "services/store/src/store.rs",
           "corrupt(format!(\"{name}: {e}\")))?;\n        }\n        if !file.digest.matches(&entry) {",
           "corrupt(format!(\"{name}: {e}\")))?;\n        }\n        if false && !file.digest.matches(&entry) {",
           ["--test", "faults"], "a_corrupted_artifact"),
    "F8": ("a read-only home is refused at once", "tui/commands.rs",
           '    let tmp = home.join("tmp");\n    std::fs::create_dir_all(&tmp).and_then(|()| tempfile::NamedTempFile::new_in(&tmp).map(drop))',
           '    let tmp = home.join("tmp");\n    let _ = &tmp; Ok::<(), std::io::Error>(())',
           ["--test", "faults"], "a_full_or_read_only_home"),
    "F9": ("a record is acknowledged only once committed", "services/ingest/src/lib.rs",
           "        tx.commit().map_err(db_error)?;\n        Ok(Json(RecordsAck", "        drop(tx);\n        Ok(Json(RecordsAck",
           ["--test", "faults"], "records_acknowledged_by_ingest_survive_sigkill"),
    "F10": ("a damaged old version is skipped, the rest served", "services/serve/src/catalog.rs",
            "errors.insert(v.version, ApiError::from(e));\n                        continue;",
            "errors.insert(v.version, ApiError::from(e));\n                        break;",
            ["--test", "faults"], "a_damaged_old_version_does_not_stop"),
    "F11": ("the step cache hash-checks what it reuses", "services/store/src/store.rs",
            "let whole = record.outputs.values().all(|id| self.verify(id).is_ok());", "let whole = true;",
            ["--test", "pipeline"], "a_damaged_or_unlisted_dataset"),
    "F12": ("a dead writer's staging is cleared at open", "services/store/src/home.rs",
            "if orphaned || (old && !is_locked(&entry.path())) {", "if old && !is_locked(&entry.path()) {",
            ["-p", "logitflow-store"], "staging_left_by_a_dead_writer"),
    "F13": ("a damaged registry is recovered from the journal", "services/store/src/home.rs",
            "match self.journal_last_state()? {", "match None::<RegistryData> {",
            ["--test", "faults"], "a_deleted_registry"),
    "F14": ("updates lock the home directory", "services/store/src/home.rs",
            "lock.lock().map_err(io)?;", "let _ = &lock;",
            ["-p", "logitflow-store"], "concurrent_writers_lose_no_update"),
    "F15": ("the report is kept before the decision is applied", "tui/pipeline.rs",
            "decide_only: keep_in.is_some() || !request.apply_decision,", "decide_only: !request.apply_decision,",
            ["--test", "faults"], "a_run_whose_report_cannot_be_kept"),
    "F16": ("a promotion made elsewhere is served untold", "services/serve/src/lib.rs",
            "            if now != seen {", "            if false && now != seen {",
            ["-p", "logitflow-serve"], "a_promotion_made_by_someone_else"),
    "F17": ("a person's restart gives the crash budget back", "tui/supervisor.rs",
            "                        stopped_by_user = false;\n                        failures = 0;", "                        stopped_by_user = false;",
            ["--test", "supervisor"], "a_persons_restart_gives_a_failed_service"),
    "F18": ("a service whose port was taken comes back on a new one", "tui/supervisor.rs",
            "            *port = 0;\n", "\n",
            ["--test", "supervisor"], "a_service_whose_port_was_taken"),
    "F19": ("liveness probes connect afresh", "tui/supervisor.rs",
            ".timeout(Duration::from_secs(1))\n            .pool_max_idle_per_host(0)\n", ".timeout(Duration::from_secs(1))\n",
            ["--test", "supervisor"], "a_service_out_of_file_descriptors"),
    "F20": ("a broken ingest database holds no CSV run (opened at first use)", "services/ingest/src/lib.rs",
            '        let db = Database { path: config.home.join("ingest.sqlite"), connection: Mutex::new(None) };',
            '        let path = config.home.join("ingest.sqlite");\n        let db = Database { connection: Mutex::new(Some(open_db(&path)?)), path };',
            ["--test", "faults"], "a_broken_ingest_database_holds_no_csv_run"),
    "F21": ("a whole copy written by another writer is never moved aside", "services/store/src/home.rs",
            "            match whole() {\n                true => return Ok(()),\n                false if !existed => {}",
            "            match false {\n                true => return Ok(()),\n                false if !existed => {}",
            ["-p", "logitflow-store"], "writers_of_the_same_content_at_once_never_hide_it_from_readers"),
    "F22": ("registry updates in a bucket are compare-and-swapped on the ETag", "services/objects/src/lib.rs",
            "                Some(e_tag) => {\n                    PutMode::Update(UpdateVersion { e_tag: Some(e_tag.clone()), version: None })\n                }\n",
            "                Some(_) => PutMode::Overwrite,\n",
            ["--test", "object_store"], "registry_writers_on_two_machines_never_lose_or_duplicate_a_version"),
    "F30": ("a bucket's registry is read back from its log when registry.json is gone", "services/objects/src/lib.rs",
            "        let newest = self.newest_logged()?;\n        match (damage, newest) {",
            "        let newest = self.newest_logged()?.filter(|_| false);\n        match (damage, newest) {",
            ["--test", "object_store"], "a_deleted_or_damaged_registry_in_a_bucket_is_rebuilt_from_its_log"),
    "F31": ("a live writer's staging is kept whatever its age; dead writers' files go", "services/store/src/home.rs",
            "if orphaned || (old && !is_locked(&entry.path())) {",
            "if orphaned || old {",
            ["-p", "logitflow-store", "--lib"], "a_live_writers_staging_outlives_a_clock_jump_and_dead_writers_files_go"),
    "F32": ("an answer names the class its probability is of", "tui/dashboard/ui.rs",
            'let said = format!("{} v{version} P({positive}) {p:.4} → {decision}", answer.alias);',
            'let said = format!("{} v{version} {p:.4} {decision} ({positive})", answer.alias);',
            ["-p", "logitflow", "--lib"], "an_answer_says_which_class_its_probability_is_of"),
    "F33": ("a number too small for its decimals keeps three significant digits", "tui/numbers.rs",
            "if magnitude < 0 && shown < MIN_SIGNIFICANT {", "if false && magnitude < 0 && shown < MIN_SIGNIFICANT {",
            ["-p", "logitflow", "--lib"], "decimals_while_they_show_three_significant_digits_else_scientific"),
    "F23": ("the rows a split takes from a dataset come only from a whole one", "services/store/src/npy.rs",
            "the hashing thread failed\".into()))?;\n        if !digest.matches(&entry) {",
            "the hashing thread failed\".into()))?;\n        if false && !digest.matches(&entry) {",
            ["-p", "logitflow-store"], "a_split_of_rows_refuses_a_damaged_source_and_rows_it_lacks"),
    "F24": ("a seal is taken only for the file state it was made for", "services/store/src/home/seal.rs",
            "    if sealed.file != *state {\n        return None;\n    }\n", "",
            ["-p", "logitflow-store"], "a_seal_for_another_digest_or_file_is_not_taken"),
    "F25": ("a file read on its seal's word is asked again once read", "services/store/src/digest.rs",
            "Hasher::Sealed(seal) if !(seal.unchanged)() => String::new(),",
            "Hasher::Sealed(seal) if false && !(seal.unchanged)() => String::new(),",
            ["-p", "logitflow-store"], "a_sealed_file_is_taken_on_its_word_only_while_unchanged"),
    "F26": ("a version an alias names, damaged, leaves serve ready and the run healing it", "services/serve/src/lib.rs",
            "        self.readiness.set(Ok(()));\n        Ok(())",
            '        let refused = self.catalog.load().values().any(|s| !s.refused.is_empty());\n        self.readiness.set(if refused { Err("unservable alias".into()) } else { Ok(()) });\n        Ok(())',
            ["--test", "faults"], "a_damaged_old_version_does_not_stop_serving_after_a_restart"),
    "F27": ("serve is ready only once every model is loaded", "services/serve/src/lib.rs",
            "        let _one_load_at_a_time = self.loading.lock().await;",
            "        self.readiness.set(Ok(()));\n        let _one_load_at_a_time = self.loading.lock().await;",
            ["-p", "logitflow-serve"], "serve_is_ready_only_once_every_model_is_loaded"),
    # The Access and Bad input tables.
    "F28": ("a sweep ranks every member on one measure: the same validation rows", "tui/dashboard/sweep.rs",
            "                        l2,\n                        validation_fraction,\n                        ..base.clone()",
            "                        l2,\n                        ..base.clone()",
            ["-p", "logitflow", "--lib"], "the_grid_is_every_combination_checked_and_bounded"),
    "F29": ("a report reads as promoted only once the alias has moved", "tui/pipeline.rs",
            "    run.promoted = was_stable;",
            "    run.promoted = true;",
            ["--test", "faults"], "a_console_killed_as_its_report_appears_leaves_report_and_registry_agreeing"),
    "A1": ("with a token, every non-health route answers 401 without it", "services/kit/src/guard.rs",
           "if !given.is_some_and(|given| same_token(given.as_bytes(), token.as_bytes())) {", "if given.is_none() {",
           ["-p", "logitflow-kit"], "token_required_on_other_routes"),
    "A2": ("the opened file is checked, not only the path written", "services/ingest/src/lib.rs",
           "    if !roots.iter().any(|root| opened.starts_with(root)) {\n        return Err(outside());\n    }\n",
           "",
           ["-p", "logitflow-ingest"], "a_directory_swapped_for_a_symlink_never_reads_outside_the_roots"),
    "B1": ("a body over the limit is a 413", "services/kit/src/guard.rs",
           "if declared_length(request).is_some_and(|length| length > limit) {",
           "if declared_length(request).is_some_and(|length| length > 1 << 40) {",
           ["-p", "logitflow-kit"], "bad_bodies_get_json_errors"),
    "B2": ("a retried post with its Idempotency-Key is stored once", "services/ingest/src/lib.rs",
           "            if let Some((accepted, total)) = done {", "            if let Some((accepted, total)) = done.filter(|_| false) {",
           ["-p", "logitflow-ingest"], "a_retried_post_with_its_idempotency_key_stores_nothing_twice"),
    "B3": ("a large CSV read in blocks gives the table reading from the start gives", "services/core/src/table.rs",
           "        self.label_text.absorb(block.label_text, row_offset);", "        let _ = (block.label_text, row_offset);",
           ["-p", "logitflow-core"], "reading_in_blocks_gives_what_reading_from_the_start_gives"),
    # Access, row by row.
    "A3": ("services listen on 127.0.0.1 unless told otherwise", "services/kit/src/lib.rs",
           'pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";', 'pub const DEFAULT_LISTEN: &str = "0.0.0.0:0";',
           ["--test", "supervisor"], "services_listen_on_loopback_only_unless_told_otherwise"),
    "A4": ("the supervisor has its services listen on 127.0.0.1", "tui/supervisor.rs",
           '.arg(format!("127.0.0.1:{port}"))', '.arg(format!("0.0.0.0:{port}"))',
           ["--test", "supervisor"], "services_listen_on_loopback_only_unless_told_otherwise"),
    "A5": ("the token is in the services' environment, never in their argv", "tui/supervisor.rs",
           '        command\n            .arg("service")', '        command\n            .arg0(format!("logitflow-{}", self.config.token))\n            .arg("service")',
           ["--test", "dashboard"], "dashboard_trains_predicts_exports_and_quits_cleanly"),
    "A6": ("the token never shows in a service's output", "services/kit/src/guard.rs",
           "            return Some(ApiError::Unauthorized);", '            tracing::debug!(?given, "refused a request");\n            return Some(ApiError::Unauthorized);',
           ["--test", "faults"], "the_token_never_shows_in_a_services_logs"),
    "A7": ("file sources are confined to the allowed roots", "services/ingest/src/lib.rs",
           "    if !roots.iter().any(|root| written.starts_with(root)) {\n        return Err(outside());\n    }\n    let file = std::fs::File::open(&written)\n        .map_err(|e| ApiError::invalid(\"FILE_NOT_READABLE\", format!(\"{path}: {e}\")))?;\n    let opened = opened_path(&file, &written)\n        .map_err(|e| ApiError::invalid(\"FILE_NOT_READABLE\", format!(\"{path}: {e}\")))?;\n    if !roots.iter().any(|root| opened.starts_with(root)) {\n        return Err(outside());\n    }\n",
           "    let file = std::fs::File::open(&written)\n        .map_err(|e| ApiError::invalid(\"FILE_NOT_READABLE\", format!(\"{path}: {e}\")))?;\n    let opened = opened_path(&file, &written)\n        .map_err(|e| ApiError::invalid(\"FILE_NOT_READABLE\", format!(\"{path}: {e}\")))?;\n",
           ["-p", "logitflow-ingest"], "csv_source_freezes_once_and_confines_paths"),
    "A8": ("outside the roots is answered alike whether or not the path exists", "services/ingest/src/lib.rs",
           "    if !roots.iter().any(|root| written.starts_with(root)) {\n        return Err(outside());\n    }\n", "",
           ["-p", "logitflow-ingest"], "outside_the_roots_is_answered_alike_whether_or_not_it_exists"),
    "A9": ("a client trickling its body is cut off by the request timeout", "services/kit/src/guard.rs",
           "        timeout: LazyTimeout::new(common.request_timeout),", "        timeout: LazyTimeout::new(common.request_timeout * 100),",
           ["-p", "logitflow-kit"], "a_trickling_client_is_cut_off_and_does_not_stall_others"),
    "A10": ("a client trickling its headers is disconnected", "services/kit/src/connection.rs",
            "        connections.expire_waiting_longer_than(timeout);", "        let _ = (&connections, timeout);",
            ["-p", "logitflow-kit"], "a_client_trickling_its_headers_is_disconnected"),
    "A11": ("an event stream outlives the header timeout", "services/kit/src/guard.rs",
            "        let response = if http_body::Body::size_hint(response.body()).exact().is_some() {",
            "        let response = if true || http_body::Body::size_hint(response.body()).exact().is_some() {",
            ["-p", "logitflow-kit"], "a_stream_outlives_the_header_timeout_and_an_idle_connection_does_not"),
    "A12": ("an idle connection is closed after the header timeout", "services/kit/src/connection.rs",
            "        let _ = self.waiting_since.compare_exchange(\n            BUSY,\n            millis_since(self.origin, at),\n            Ordering::AcqRel,\n            Ordering::Acquire,\n        );",
            "        let _ = (at, &self.waiting_since);",
            ["-p", "logitflow-kit"], "a_stream_outlives_the_header_timeout_and_an_idle_connection_does_not"),
    "A13": ("off loopback a token shorter than 32 characters is refused", "services/kit/src/config.rs",
            "        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => refuse(format!(",
            "        Some(t) if t.chars().count() < 1 => refuse(format!(",
            ["-p", "logitflow-kit"], "off_loopback_a_short_token_is_refused"),
    # Bad input, row by row.
    "B4": ("any JSON body on serve's inference routes gets a 4xx, never a 5xx", "services/serve/src/inputs.rs",
           '    ApiError::invalid("INVALID_INPUT", message)', "    ApiError::Internal(message.to_string())",
           ["-p", "logitflow-serve"], "any_json_body_gets_a_4xx_json_error_and_serve_stays_up"),
    "B5": ("any JSON body on the other services' routes gets a 2xx or a 4xx, never a 5xx", "services/kit/src/error.rs",
           '        ApiError::invalid("INVALID_PARAMS", e)', "        ApiError::Internal(e.to_string())",
           ["-p", "logitflow-train"], "any_json_body_gets_an_answer_never_a_5xx"),
    "B6": ("a wrong content type is a 415", "services/kit/src/error.rs",
           '    ApiError::UnsupportedMediaType(\n        "expected a JSON body', '    ApiError::BadRequest(\n        "expected a JSON body',
           ["-p", "logitflow-kit"], "bad_bodies_get_json_errors"),
    "B7": ("a service's own routes name the problem: an artifact of the wrong kind", "services/kit/src/error.rs",
           '            StoreError::WrongKind { .. } => ApiError::invalid("WRONG_ARTIFACT_KIND", e),',
           "            StoreError::WrongKind { .. } => ApiError::NotFound(e.to_string()),",
           ["-p", "logitflow-evaluate"], "registers_promotes_by_rule_and_rolls_back"),
    # (A byte-order mark is dropped by the csv crate itself, and the header's own trim of one
    # is a second guard: breaking it alone breaks nothing. The row's line ends are broken here.)
    "B8": ("CRLF, LF and lone CR line ends give the right line numbers", "services/core/src/table.rs",
           "                b'\\n' if after_cr => {", "                b'\\n' if false && after_cr => {",
           ["-p", "logitflow-core"], "table::tests"),
    "B9": ("any bytes give a table of finite cells or an error", "services/core/src/table.rs",
           "        Ok(v) if v.is_finite() => Ok(Cell::Number(v + 0.0)),", "        Ok(v) if !v.is_nan() => Ok(Cell::Number(v + 0.0)),",
           ["fuzz", "csv_table", "120"], ""),
    "B10": ("a CSV changed while ingest reads it is refused", "services/ingest/src/lib.rs",
            "        let unchanged = || match stamp(&file).map_err(unreadable)? == before {", "        let unchanged = || match true || stamp(&file).map_err(unreadable)? == before {",
            ["-p", "logitflow-ingest"], "a_file_rewritten_while_it_is_read_is_refused_never_frozen_as_other_rows"),
    "B11": ("a file whose values are held while it is read is read only up to its bound", "services/core/src/table.rs",
            "            Some(why) if self.read > self.limit => Err(", "            Some(why) if self.read > 2 * self.limit => Err(",
            ["-p", "logitflow-core"], "table::tests::a_file_held_in_memory"),
    "B12": ("a bad cell's error names its line", "services/core/src/table.rs",
            "return Err(DataError::NotANumber {\n                line: lines[row],\n",
            "return Err(DataError::NotANumber {\n                line: lines[row] + 1,\n",
            ["-p", "logitflow-core"], "table::tests"),
    "B13": ("NA markers are read as missing", "services/core/src/table.rs",
            'pub const DEFAULT_NA_VALUES: [&str; 8] =\n    ["NA", "N/A",', 'pub const DEFAULT_NA_VALUES: [&str; 8] =\n    ["N/A", "N/A",',
            ["-p", "logitflow-core"], "table::tests"),
    "B14": ("a level training never saw is refused at predict time, not guessed", "services/core/src/scale.rs",
            "let p = encoding.level_index(&text).ok_or_else(|| self.unseen(j, &text))?;",
            "let p = encoding.level_index(&text).unwrap_or(0);",
            ["-p", "logitflow-serve"], "text_features_are_served_as_one_tensor_per_feature_and_unseen_levels_named"),
    "B15": ("a synthetic request that would store more than 128 MiB is refused before anything is allocated", "services/core/src/synth.rs",
            "        if bytes > MAX_STORED_BYTES {", "        if bytes > MAX_STORED_BYTES + 16 {",
            ["-p", "logitflow-core"], "the_stored_bytes_bound_holds_at_its_edge"),
    "B16": ("a synthetic range whose width overflows is refused", "services/core/src/synth.rs",
            "lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()", "lo.is_finite() && hi.is_finite() && lo < hi",
            ["-p", "logitflow-core"], "same_seed_same_rows_and_validation"),
    "B17": ("batch streams: its answer begins before the whole body is read", "services/batch/src/lib.rs",
            "        if chunk.rows() == CHUNK_ROWS || (!more && chunk.rows() > 0) {", "        if !more && chunk.rows() > 0 {",
            ["-p", "logitflow-batch"], "a_bad_cell_past_the_first_chunk_ends_the_stream_early"),
    "B18": ("a train request whose inputs cannot be loaded leaves no job", "services/train/src/lib.rs",
            "    let prepared = blocking(move || {",
            "    if let Ok(mut jobs) = state.jobs.lock() {\n        let n = state.next_id.fetch_add(1, Ordering::Relaxed);\n        let info = JobInfo { job: job_id(n), state: JobState::Running, cached: false, epochs: 0, model: None, stop_reason: None, error: None };\n        jobs.insert(n, Arc::new(Job { cancel: AtomicBool::new(false), keep_best: AtomicBool::new(false), log: Mutex::new(JobLog { info, events: Vec::new() }), changed: watch::channel(0).0 }));\n    }\n    let prepared = blocking(move || {",
            ["-p", "logitflow-train"], "a_request_whose_inputs_cannot_be_loaded_leaves_no_job"),
    "B19": ("a body that is a JSON array is refused", "services/kit/src/error.rs",
            "        if !malformed {", "        if false && !malformed {",
            ["-p", "logitflow-kit"], "a_body_that_is_not_an_object_is_refused_even_where_fields_have_defaults"),
    "B20": ("a column name that cannot be a CSV header is refused", "services/ingest/src/lib.rs",
            "c.is_control() || c == ',' || c == '\"'", "c.is_control() || c == '\"'",
            ["-p", "logitflow-ingest"], "column_names_that_cannot_be_a_csv_header_are_refused_at_the_first_post"),
    "B21": ("a model name is one escaped path segment in serve's URL", "services/kit/src/client.rs",
            'if b.is_ascii_alphanumeric() || b"-_.".contains(&b)', 'if b.is_ascii_alphanumeric() || b"-_.?=/%".contains(&b)',
            ["-p", "logitflow-batch"], "bad_csv_names_line_and_column"),
    "B22": ("a body over the limit is read and discarded before the 413", "services/kit/src/guard.rs",
            "            if declared_length(&request).is_some_and(|n| n <= DRAIN_LIMIT) =>",
            "            if false && declared_length(&request).is_some_and(|n| n <= DRAIN_LIMIT) =>",
            ["-p", "logitflow-kit"], "a_client_that_writes_a_too_large_body_first_still_reads_the_413"),
    "B23": ("bad flags give an error before anything starts", "tui/commands.rs",
            '    params.validate().map_err(|e| anyhow::anyhow!("invalid training parameters: {e}"))?;', "    let _ = params.validate();",
            ["--test", "pipeline"], "bad_flags_give_a_clear_error_before_anything_starts"),
    "B24": ("the dashboard refuses invalid hyperparameters inline", "tui/dashboard/app.rs",
            "        params.validate().map_err(|e| e.to_string())?;", "        let _ = params.validate();",
            ["-p", "logitflow", "--lib"], "the_form_refuses_bad_values_inline_and_retrains_with_good_ones"),
    "B26": ("the console reads at most 128 MiB of a service's answer", "services/kit/src/client.rs",
            "        if !whole {", "        if false && !whole {",
            ["-p", "logitflow-kit"], "an_endless_answer_is_refused_at_the_bound"),
    "B27": ("an event stream of keep-alives alone is given up after its idle bound", "services/kit/src/client.rs",
            "tokio::time::timeout_at(waiting_since + idle, bytes.next())",
            "tokio::time::timeout_at(waiting_since + idle * 1000, bytes.next())",
            ["-p", "logitflow-kit"], "a_stream_of_keep_alives_alone_is_given_up_after_the_idle_bound"),
    "B28": ("the console reads no more epoch events than the fit can send", "tui/pipeline.rs",
            "TrainEvent::Epoch(_) if curve.len() == most => {",
            "TrainEvent::Epoch(_) if curve.len() == most * 1000 => {",
            ["-p", "logitflow", "--lib"], "epochs_past_what_the_fit_can_send_are_refused_not_held"),
    "B25": ("a malformed gRPC message is INVALID_ARGUMENT, never INTERNAL", "services/serve/src/grpc/codec.rs",
            'map_err(|e| Status::invalid_argument(format!("malformed protobuf message: {e}")))',
            'map_err(|e| Status::internal(format!("malformed protobuf message: {e}")))',
            ["-p", "logitflow-serve"], "a_malformed_grpc_message_is_invalid_argument_never_internal"),
    "B29": ("a sparse term's gradient is of its centred value, as a dense term's", "services/core/src/logistic/sparse.rs",
            "*g = (*g - o * total) / s;", "*g /= s;",
            ["-p", "logitflow-core", "--test", "sparse"], "sparse_and_dense_terms_of_one_column_are_one_model_with_a_penalty_too"),
    "B30": ("a remembered binary header answers only for the loaded version that parsed it", "services/serve/src/repeat.rs",
            "            last.header == header\n                && last.version == version\n                && last.name == name\n                && std::ptr::eq(last.model.as_ptr(), Arc::as_ptr(model))",
            "            last.header == header",
            ["-p", "logitflow-serve", "--lib"], "a_repeated_binary_header_is_answered_as_the_first_was"),
    "B31": ("an unpenalised dense L-BFGS fit ends by newton's steps, with their Hessian", "services/core/src/logistic/lbfgs.rs",
            "            None => data.train.class_weights == [1.0, 1.0],", "            None => false,",
            ["-p", "logitflow-core", "--lib"], "unpenalised_lbfgs_ends_by_newton_with_the_hessian_at_its_weights"),
    "B32": ("the sparse Newton step maps the levels' raw steps back to the intercept", "services/core/src/logistic/sparse.rs",
            "        delta[0] += column.offset[t] * raw;", "        let _ = column.offset[t] * raw;",
            ["-p", "logitflow-core", "--test", "sparse"], "an_unpenalised_sparse_fit_ends_by_newtons_step_at_statsmodels_optimum"),
}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.chdir(root)
    if "--check" not in sys.argv and subprocess.run(["git", "diff", "--quiet", "HEAD"]).returncode != 0:
        sys.exit("the tree has uncommitted changes: commit or stash them first (each mutant's file is restored from git)")
    check_only = "--check" in sys.argv
    chosen = chosen_mutants(sys.argv[1:])
    bad = 0
    killed = 0
    for key in chosen:
        promise, path, text, replacement, args, name = MUTANTS[key]
        source = open(path).read()
        if source.count(text) != 1:
            print(f"{key} ({promise}): STALE, the text matches {source.count(text)} times in {path}", flush=True)
            bad += 1
            continue
        if check_only:
            continue
        open(path, "w").write(source.replace(text, replacement))
        try:
            if args[0] == "fuzz":
                # A fuzz target's promise: run it for a while; it must find a failing input.
                _, target, seconds = args
                command = ["cargo", "fuzz", "run", "-O", "--sanitizer", "none", target, f"corpus/{target}", "--",
                           f"-max_total_time={seconds}", "-print_final_stats=0"]
                name = f"the {target} fuzz target"
                run = subprocess.run(["timeout", "900", *command], cwd="fuzz", capture_output=True, text=True)
            else:
                run = subprocess.run(["timeout", "900", "cargo", "test", "--quiet", *args, "--", name],
                                     capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
        finally:
            subprocess.run(["git", "checkout", "--", path], check=True)
        out = (run.stdout + run.stderr).splitlines()
        if any("could not compile" in line for line in out):
            print(f"{key} ({promise}): the mutant does not compile", flush=True)
            bad += 1
            continue
        panics = [out[i + 1] for i, line in enumerate(out[:-1]) if "panicked at" in line]
        if run.returncode == 0:
            print(f"{key} ({promise}): SURVIVED: {name} passed", flush=True)
            bad += 1
        else:
            killed += 1
            print(f"{key} ({promise}): KILLED: {(panics[0] if panics else 'exit ' + str(run.returncode))[:200]}", flush=True)
    if not check_only:
        print(f"mutants: {len(chosen)} run, {killed} killed, {bad} survived or stale", flush=True)
    sys.exit(1 if bad else 0)


def chosen_mutants(args):
    """The mutants named, a seeded sample (--sample N --seed S) of those a machine without
    cargo-fuzz can run, or every one."""
    if "--sample" in args:
        import random

        count = int(args[args.index("--sample") + 1])
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 0
        runnable = [key for key, m in MUTANTS.items() if m[4][0] != "fuzz"]
        return sorted(random.Random(seed).sample(runnable, min(count, len(runnable))))
    named = [a for a in args if a != "--check"]
    return named or list(MUTANTS)


if __name__ == "__main__":
    main()
