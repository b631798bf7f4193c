#!/usr/bin/env python3
"""Breaks each promise of RELIABILITY.md on purpose, one at a time, and checks that the test
named beside it fails: a test that a wrong implementation passes proves nothing.

Each mutant is one exact text replacement in the product's code (it must match exactly once,
or the mutant is reported stale), then the named test is run; the file is restored from git
afterwards. The tree must be clean, since restoring a file drops any change to it.

    python3 tests/mutants/run.py            # every mutant (≈ 20 min on 2 cores)
    python3 tests/mutants/run.py F3 F13     # some

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
    "F3": ("serve comes back serving the promoted version", "services/serve/src/lib.rs",
           "            Some(v) => *v,\n            None => {\n                selector.parse",
           "            Some(v) => *self.versions.keys().last().unwrap_or(v),\n            None => {\n                selector.parse",
           ["--test", "faults"], "killed_services_are_restarted"),
    "F4": ("answers name promoted versions under load", "services/serve/src/lib.rs",
           "            Some(v) => *v,\n            None => {\n                selector.parse",
           "            Some(v) => *self.versions.keys().last().unwrap_or(v),\n            None => {\n                selector.parse",
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
    "F7": ("a corrupted artifact is refused", "services/core/src/store.rs",
           "if bytes.len() as u64 != entry.bytes || sha256_hex(&bytes) != entry.sha256 {", "if bytes.len() as u64 != entry.bytes {",
           ["--test", "faults"], "a_corrupted_artifact"),
    "F8": ("a read-only home is refused at once", "tui/commands.rs",
           '    let tmp = home.join("tmp");\n    std::fs::create_dir_all(&tmp).and_then(|()| tempfile::NamedTempFile::new_in(&tmp).map(drop))',
           '    let tmp = home.join("tmp");\n    let _ = &tmp; Ok::<(), std::io::Error>(())',
           ["--test", "faults"], "a_full_or_read_only_home"),
    "F9": ("a record is acknowledged only once committed", "services/ingest/src/lib.rs",
           "        tx.commit().map_err(db_error)?;\n        Ok(Json(RecordsAck", "        drop(tx);\n        Ok(Json(RecordsAck",
           ["--test", "faults"], "records_acknowledged_by_ingest_survive_sigkill"),
    "F10": ("a damaged old version is skipped, the rest served", "services/serve/src/lib.rs",
            "errors.insert(v.version, ApiError::from(e));\n                            continue;",
            "errors.insert(v.version, ApiError::from(e));\n                            break;",
            ["--test", "faults"], "a_damaged_old_version_does_not_stop"),
    "F11": ("the step cache hash-checks what it reuses", "services/core/src/store.rs",
            "record.outputs.values().all(|id| self.verify(id).is_ok()).then_some(record)", "Some(record)",
            ["--test", "pipeline"], "a_damaged_or_unlisted_dataset"),
    "F12": ("a dead writer's staging is cleared at open", "services/core/src/store.rs",
            "if old || orphaned {", "if old {",
            ["-p", "logitflow-core"], "staging_left_by_a_dead_writer"),
    "F13": ("a damaged registry is recovered from the journal", "services/core/src/registry.rs",
            "match self.journal_last_state()? {", "match None::<RegistryData> {",
            ["--test", "faults"], "a_deleted_registry"),
    "F14": ("updates lock the home directory", "services/core/src/registry.rs",
            "lock.lock().map_err(io)?;", "let _ = &lock;",
            ["-p", "logitflow-core"], "concurrent_writers_lose_no_update"),
    "F15": ("the report is kept before the decision is applied", "tui/pipeline.rs",
            "decide_only: keep_in.is_some(),", "decide_only: false,",
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
            ".timeout(Duration::from_secs(1)).pool_max_idle_per_host(0).build()", ".timeout(Duration::from_secs(1)).build()",
            ["--test", "supervisor"], "a_service_out_of_file_descriptors"),
    "F20": ("a broken ingest database holds no CSV run (opened at first use)", "services/ingest/src/lib.rs",
            '        let db = Database { path: config.home.join("ingest.sqlite"), connection: Mutex::new(None) };',
            '        let path = config.home.join("ingest.sqlite");\n        let db = Database { connection: Mutex::new(Some(open_db(&path)?)), path };',
            ["--test", "faults"], "a_broken_ingest_database_holds_no_csv_run"),
    # The Access and Bad input tables.
    "A1": ("with a token, every non-health route answers 401 without it", "services/kit/src/guard.rs",
           "if !given.is_some_and(|given| same_token(given.as_bytes(), token.as_bytes())) {", "if given.is_none() {",
           ["-p", "logitflow-kit"], "token_required_on_other_routes"),
    "A2": ("the opened file is checked, not only the path written", "services/ingest/src/lib.rs",
           "    if !roots.iter().any(|root| opened.starts_with(root)) {\n        return Err(outside());\n    }\n",
           "",
           ["-p", "logitflow-ingest"], "a_directory_swapped_for_a_symlink_never_reads_outside_the_roots"),
    "B1": ("a body over the limit is a 413", "services/kit/src/guard.rs",
           "if declared_length(request).is_some_and(|length| length > common.body_limit as u64) {",
           "if declared_length(request).is_some_and(|length| length > 1 << 40) {",
           ["-p", "logitflow-kit"], "bad_bodies_get_json_errors"),
    "B2": ("a retried post with its Idempotency-Key is stored once", "services/ingest/src/lib.rs",
           "            if let Some((accepted, total)) = done {", "            if let Some((accepted, total)) = done.filter(|_| false) {",
           ["-p", "logitflow-ingest"], "a_retried_post_with_its_idempotency_key_stores_nothing_twice"),
    "B3": ("a large CSV read in blocks gives the table reading from the start gives", "services/core/src/table.rs",
           "        self.label_text.absorb(block.label_text, row_offset);", "        let _ = (block.label_text, row_offset);",
           ["-p", "logitflow-core"], "reading_in_blocks_gives_what_reading_from_the_start_gives"),
}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.chdir(root)
    if subprocess.run(["git", "diff", "--quiet", "HEAD"]).returncode != 0:
        sys.exit("the tree has uncommitted changes: commit or stash them first (each mutant's file is restored from git)")
    chosen = sys.argv[1:] or list(MUTANTS)
    bad = 0
    for key in chosen:
        promise, path, text, replacement, args, name = MUTANTS[key]
        source = open(path).read()
        if source.count(text) != 1:
            print(f"{key} ({promise}): STALE, the text matches {source.count(text)} times in {path}", flush=True)
            bad += 1
            continue
        open(path, "w").write(source.replace(text, replacement))
        try:
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
            print(f"{key} ({promise}): KILLED: {(panics[0] if panics else 'exit ' + str(run.returncode))[:200]}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
