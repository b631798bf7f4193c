//! The dashboard end to end in a pseudo-terminal: the real binary, real services, real keys,
//! and the screen read back through a VT100 parser.

mod common;

use common::Dashboard;
use std::time::Duration;

#[test]
fn dashboard_trains_predicts_exports_and_quits_cleanly() {
    let home = tempfile::tempdir().expect("tempdir");
    let exports = home.path().join("exports");
    let mut dash =
        Dashboard::start(home.path(), &["--export-dir", exports.to_str().expect("utf8")]);

    dash.wait_every_service_ready();
    for name in
        ["ingest", "preprocess", "features", "train", "evaluate", "serve", "advisor", "batch"]
    {
        assert!(
            dash.service_line(name).is_some_and(|l| l.contains("ready")),
            "{name} is listed as ready"
        );
    }
    // The token reaches the services through their environment, never their command line.
    for pid in common::services_of(home.path()) {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        let token = environ
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(b"LOGITFLOW_TOKEN="))
            .expect("a token is set")
            .to_vec();
        assert_eq!(token.len(), 64);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert!(
            !cmdline.windows(token.len()).any(|w| w == token.as_slice()),
            "the token is in pid {pid}'s argv"
        );
    }

    dash.send("t");
    let text = dash.wait_for("metrics and the new version served", Duration::from_secs(60), |s| {
        s.contains("acc 0.") && s.contains("admissions v1") && s.contains("✓ serve")
    });
    assert!(text.contains("✓ serve"), "every stage done:\n{text}");

    dash.send("p");
    dash.send("80");
    dash.send("\r");
    let text = dash.wait_for("the answer", Duration::from_secs(30), |s| {
        s.lines().any(|l| l.contains("stable") && l.contains("admit"))
    });
    let line =
        text.lines().find(|l| l.contains("stable") && l.contains("admit")).expect("answer line");
    let probability: f64 = line
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v) && w.contains('.')))
        .unwrap_or_else(|| panic!("no probability on {line:?}"));
    assert!((0.99..1.0).contains(&probability), "P(80) = {probability} on {line:?}");
    assert!(line.contains("v1"), "the answering version is shown: {line:?}");
    // advisor, below: the decision at the threshold and the score where it flips.
    let text =
        dash.wait_for("advisor's line", Duration::from_secs(20), |s| s.contains("· advisor v1"));
    let advice = text.lines().find(|l| l.contains("· advisor v1")).expect("advisor's line");
    assert!(advice.contains("threshold 0.5 → admitted; flips at score = "), "{advice}");

    dash.send("\x1b");
    // B: the bundled data scored through batch into the exports directory.
    dash.send("B");
    dash.wait_for("the scoring form", Duration::from_secs(10), |s| s.contains("Batch scoring"));
    dash.send("\r");
    dash.wait_for("the file scored", Duration::from_secs(30), |s| {
        s.contains("scored 2000 rows with admissions v1 →")
    });
    let scored =
        std::fs::read_to_string(exports.join("admissions-scored.csv")).expect("the scored file");
    assert_eq!(scored.lines().count(), 2001, "a header and every row");
    assert!(scored.starts_with("score,admitted,probability\n"), "{}", &scored[..60]);
    dash.send("e");
    dash.wait_for("the export", Duration::from_secs(30), |s| s.contains("exported 12 files"));
    let files: Vec<_> =
        std::fs::read_dir(&exports).expect("exports dir").flatten().map(|e| e.path()).collect();
    let png = files.iter().find(|p| p.to_string_lossy().ends_with("loss.png")).expect("loss.png");
    let svg = files.iter().find(|p| p.to_string_lossy().ends_with("loss.svg")).expect("loss.svg");
    assert_eq!(&std::fs::read(png).expect("png")[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_to_string(svg).expect("svg").contains("<svg"));
    assert!(files.iter().any(|p| p.to_string_lossy().ends_with("roc.png")));

    assert!(dash.alternate_screen(), "the dashboard draws on the alternate screen");
    let screen = dash.parser_handle();
    let status = dash.quit();
    assert!(status.success(), "exit status {status:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !screen.lock().map(|p| p.screen().alternate_screen()).unwrap_or(true),
        "the terminal is restored (alternate screen left)"
    );
    common::assert_no_services(home.path(), Duration::from_secs(2));
}

/// `h`, the solver `steps` right of the default (auto), Enter: the form trains with `solver`.
fn train_from_the_form(dash: &mut Dashboard, solver: &str, steps: usize) {
    dash.send("h");
    dash.wait_for("the form", Duration::from_secs(10), |s| {
        s.contains("Hyperparameters") && s.contains("◀ auto ▶")
    });
    for _ in 0..steps {
        dash.send("\x1b[C");
    }
    dash.wait_for("the solver chosen", Duration::from_secs(10), |s| {
        s.contains(&format!("◀ {solver} ▶"))
    });
    dash.send("\r");
}

/// The keys that act on versions and views, against the real services: a second version
/// trained from the parameters form, `b` rolls back to v1 (and predictions say so), `P` with no
/// candidate says why it cannot, `?` shows the help, `l` switches the loss axis to log, `c` with
/// nothing training says so.
#[test]
fn rollback_promote_help_log_and_cancel_keys_act_on_the_real_services() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut dash = Dashboard::start(home.path(), &[]);
    dash.wait_every_service_ready();
    dash.send("c");
    dash.wait_for("c with nothing training", Duration::from_secs(10), |s| {
        s.contains("nothing is training")
    });
    dash.send("t");
    dash.wait_for("v1 served", Duration::from_secs(60), |s| {
        s.contains("admissions v1") && s.contains("v1 is stable")
    });

    dash.send("?");
    dash.wait_for("the help", Duration::from_secs(10), |s| s.contains("runs: Space marks two"));
    dash.send("x");
    dash.wait_for("the help closed", Duration::from_secs(10), |s| {
        !s.contains("runs: Space marks two")
    });
    dash.send("l");
    dash.wait_for("the log axis", Duration::from_secs(10), |s| s.contains("(log₁₀)"));
    dash.send("l");
    dash.wait_for("the linear axis", Duration::from_secs(10), |s| !s.contains("(log₁₀)"));

    // The default fitted v1 by newton, as auto chose; the seed's sgd is one key away.
    dash.wait_for("auto's choice named", Duration::from_secs(10), |s| {
        s.contains("Loss — auto → newton")
    });
    train_from_the_form(&mut dash, "newton", 4);
    dash.wait_for("v2 trained", Duration::from_secs(60), |s| {
        s.contains("Loss — newton") && s.contains("v2 is stable")
    });

    dash.send("b");
    dash.wait_for("the rollback", Duration::from_secs(20), |s| {
        s.contains("rolled back — v1 is stable and serving")
    });
    dash.send("p");
    dash.send("80");
    dash.send("\r");
    // The Answer panel's row: "stable v1 P(admitted) 0.9977 → admitted".
    let answered = |l: &str| l.contains("stable ") && l.contains(" v1 ") && l.contains("admitted");
    let text = dash.wait_for("v1's answer", Duration::from_secs(20), |s| s.lines().any(answered));
    assert!(text.lines().any(|l| answered(l) && l.contains("0.99")), "{text}");
    dash.send("\x1b");
    dash.send("P");
    dash.wait_for("P refused", Duration::from_secs(20), |s| s.contains("no candidate to promote"));
    assert!(dash.quit().success());
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// A model of many features, two of them text, end to end on real data (the penguins: species
/// and island are words, and so is the label): trained, asked through the predict form with a
/// row pasted into it, trained again with newton, the two runs compared in the runs view, and
/// exported.
#[test]
fn a_multi_feature_model_with_text_features_is_trained_asked_through_the_form_compared_and_exported()
 {
    let home = tempfile::tempdir().expect("tempdir");
    let exports = home.path().join("exports");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/penguins.csv");
    let args = [
        "--data",
        data,
        "--label",
        "sex",
        "--missing",
        "drop",
        "--export-dir",
        exports.to_str().expect("utf8"),
    ];
    let mut dash = Dashboard::start(home.path(), &args);
    dash.wait_every_service_ready();
    dash.send("t");
    dash.wait_for("v1 served", Duration::from_secs(90), |s| {
        s.contains("penguins v1") && s.contains("v1 is stable")
    });

    dash.send("p");
    dash.wait_for("the form", Duration::from_secs(10), |s| {
        s.contains("Predict — field 1 of 7") && s.contains("◀▶ Adelie | Chinstrap | Gentoo")
    });
    dash.send("Gentoo,Biscoe,47.5,15,217,5200,2008");
    dash.wait_for("every field filled", Duration::from_secs(10), |s| {
        s.contains("field 7 of 7") && s.contains("body_mass_g  5200")
    });
    dash.send("\r");
    let answered = |l: &str| {
        l.contains("stable ") && l.contains(" v1 ") && (l.contains("male") || l.contains("female"))
    };
    let text = dash.wait_for("v1's answer", Duration::from_secs(20), |s| s.lines().any(answered));
    let line = text.lines().find(|l| answered(l)).expect("the answer");
    let probability: f64 = line
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok().filter(|_| w.contains('.')))
        .expect("a probability");
    assert!(probability > 0.0 && probability < 1.0, "{line}");
    assert!(
        text.contains("> Gentoo, Biscoe, 47.5, 15, 217, 5200, 2008"),
        "the row asked is shown:\n{text}"
    );

    train_from_the_form(&mut dash, "sgd", 1);
    dash.wait_for("v2 trained", Duration::from_secs(90), |s| {
        s.contains("Loss — sgd") && s.contains("v2 is")
    });

    dash.send("R");
    dash.wait_for("both runs listed", Duration::from_secs(20), |s| {
        s.contains("Runs — newest first") && s.contains(" newton ") && s.contains(" sgd ")
    });
    dash.send(" ");
    dash.send("\x1b[B");
    dash.send(" ");
    dash.wait_for("two marked", Duration::from_secs(10), |s| s.contains("2 marked"));
    dash.send("\r");
    let text =
        dash.wait_for("the comparison", Duration::from_secs(10), |s| s.contains("second − first"));
    assert!(text.contains("v2 sgd") && text.contains("v1 newton"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("solver") && l.contains("newton") && l.contains("sgd")),
        "{text}"
    );
    // e: both runs' loss curves in one plot.
    dash.send("e");
    dash.send("\x1b");
    // The status line, under the runs view again, says what was written.
    dash.wait_for("the comparison exported", Duration::from_secs(30), |s| {
        s.contains("Runs — newest first") && s.contains("exported 3 files") && s.contains("-vs-")
    });
    let compared = std::fs::read_dir(&exports)
        .expect("exports")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("-vs-"));
    assert!(compared.is_some(), "the comparison's files are in the exports directory");
    dash.send("\x1b");

    dash.send("e");
    dash.wait_for("the export", Duration::from_secs(30), |s| s.contains("exported 12 files"));
    let files: Vec<_> =
        std::fs::read_dir(&exports).expect("exports dir").flatten().map(|e| e.path()).collect();
    for suffix in ["loss.png", "roc.png", "pr.png", "calibration.png"] {
        let png = files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix}: {files:?}"));
        assert_eq!(&std::fs::read(png).expect("png")[..8], b"\x89PNG\r\n\x1a\n", "{suffix}");
    }
    assert!(dash.quit().success());
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// A K-class label in the dashboard: the penguins' species under an L2 penalty. The answer to
/// a row asked through the form is a labelled bar per class; the Model panel shows the 3×3
/// confusion and one class's coefficients, K the next class's; `e` writes each class's curves
/// and the confusion heat map.
#[test]
fn a_three_class_label_trains_answers_with_a_bar_per_class_and_shows_each_class() {
    let home = tempfile::tempdir().expect("tempdir");
    let exports = home.path().join("exports");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/penguins.csv");
    let features = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g";
    let args = [
        "--data",
        data,
        "--label",
        "species",
        "--features",
        features,
        "--missing",
        "drop",
        "--l2",
        "0.003",
    ];
    let mut dash = Dashboard::start(
        home.path(),
        &[&args[..], &["--export-dir", exports.to_str().expect("utf8")]].concat(),
    );
    dash.wait_every_service_ready();
    dash.send("t");
    let text = dash.wait_for("v1 served", Duration::from_secs(90), |s| {
        s.contains("penguins v1") && s.contains("v1 is stable")
    });
    assert!(
        text.contains("confusion: true ↓ predicted →") && text.contains("macro: prec"),
        "{text}"
    );
    assert!(text.contains("Adelie  K: next class") && text.contains("RRR"), "{text}");

    dash.send("p");
    dash.wait_for("the form", Duration::from_secs(10), |s| s.contains("Predict — field 1 of 4"));
    dash.send("39.1,18.7,181,3750");
    dash.wait_for("every field filled", Duration::from_secs(10), |s| s.contains("field 4 of 4"));
    dash.send("\r");
    let text =
        dash.wait_for("three bars", Duration::from_secs(20), |s| s.contains("stable v1 Adelie"));
    let bar = |class: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{class} 0.")) || l.contains(&format!("{class} 1.")))
            .map(String::from)
    };
    let (adelie, chinstrap, gentoo) = (bar("Adelie   "), bar("Chinstrap"), bar("Gentoo   "));
    assert!(adelie.as_deref().is_some_and(|l| l.contains('█') && l.contains('←')), "{text}");
    for line in [&chinstrap, &gentoo] {
        assert!(line.as_deref().is_some_and(|l| l.contains('░') && !l.contains('←')), "{text}");
    }
    dash.send("\x1b");
    dash.send("K");
    dash.wait_for("the next class's table", Duration::from_secs(10), |s| {
        s.contains("Chinstrap  K: next class")
    });

    dash.send("e");
    dash.wait_for("the export", Duration::from_secs(30), |s| s.contains("exported 15 files"));
    let files: Vec<_> =
        std::fs::read_dir(&exports).expect("exports dir").flatten().map(|e| e.path()).collect();
    for suffix in ["loss.png", "roc.png", "pr.png", "calibration.png", "confusion.png"] {
        let png = files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix}: {files:?}"));
        assert_eq!(&std::fs::read(png).expect("png")[..8], b"\x89PNG\r\n\x1a\n", "{suffix}");
    }
    let confusion = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with("confusion.csv"))
        .expect("confusion.csv");
    let csv = std::fs::read_to_string(confusion).expect("confusion.csv");
    assert!(csv.starts_with("true\\predicted,Adelie,Chinstrap,Gentoo\nAdelie,"), "{csv}");
    assert!(dash.quit().success());
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// Penalised paths cross-validated through the form on breast cancer (which the default fit
/// finds separated): an elastic net on 5 folds first (v1, stable), then a lasso on 10 folds,
/// whose coefficient and CV charts grow λ by λ while it runs; its chosen λ tests a little worse
/// than v1 (test log loss 0.1257 against 0.1152), so it stays the candidate until `P` and `y`
/// promote it. `e` then writes the path's two figures.
#[test]
fn cross_validated_paths_grow_their_charts_and_p_promotes_the_chosen_model() {
    let home = tempfile::tempdir().expect("tempdir");
    let exports = home.path().join("exports");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/breast_cancer.csv");
    let mut dash = Dashboard::start(
        home.path(),
        &["--data", data, "--label", "diagnosis", "--export-dir", exports.to_str().expect("utf8")],
    );
    dash.wait_every_service_ready();

    // v1: penalty elasticnet (three → from none), α 0.5, λ left to 5-fold cross-validation.
    dash.send("h");
    dash.wait_for("the form", Duration::from_secs(10), |s| {
        s.contains("Hyperparameters") && s.contains("◀ none ▶")
    });
    for _ in 0..10 {
        dash.send("\x1b[B");
    }
    dash.send("\x1b[C\x1b[C\x1b[C");
    dash.send("\x1b[B0.5\x1b[B\x1b[B5");
    dash.wait_for("v1's parameters", Duration::from_secs(10), |s| {
        s.contains("◀ elasticnet ▶")
            && s.contains("path + CV")
            && s.contains("cv folds  5")
            && s.contains("Enter trains with these")
    });
    dash.send("\r");
    dash.wait_for("v1 served", Duration::from_secs(120), |s| {
        s.contains("breast_cancer v1") && s.contains("v1 is stable")
    });

    // v2: the same form, penalty l1 (one ←), 10 folds.
    dash.send("h");
    dash.wait_for("the form again", Duration::from_secs(10), |s| s.contains("◀ elasticnet ▶"));
    for _ in 0..10 {
        dash.send("\x1b[B");
    }
    dash.send("\x1b[D\x1b[B\x1b[B\x1b[B\x7f10");
    dash.wait_for("v2's parameters", Duration::from_secs(10), |s| {
        s.contains("◀ l1 ▶") && s.contains("cv folds  10") && s.contains("Enter trains with these")
    });
    dash.send("\r");
    let lambdas = |s: &str| -> Option<usize> {
        let title = s.lines().find(|l| l.contains("Path — L1 — "))?;
        title.split("Path — L1 — ").nth(1)?.split(" λ").next()?.trim().parse().ok()
    };
    let growing = dash.wait_for("both charts part drawn", Duration::from_secs(60), |s| {
        lambdas(s).is_some_and(|n| n < 50)
            && s.contains("CV deviance ± 1 s.e.")
            && !s.contains("v2 is")
    });
    let part = lambdas(&growing).unwrap_or(0);
    let done = dash.wait_for("v2 trained, the candidate", Duration::from_secs(120), |s| {
        s.contains("v2 is the candidate")
    });
    let whole = lambdas(&done).unwrap_or(0);
    assert!(part >= 1 && whole > part, "the path grew from {part} λ to {whole}:\n{done}");
    assert!(
        done.contains("λ_min") && done.contains("λ_1se"),
        "the CV chart marks the choices:\n{done}"
    );
    assert!(done.contains("of 30 terms non-zero"), "{done}");

    dash.send("P");
    dash.wait_for("why it was not promoted", Duration::from_secs(10), |s| {
        s.contains("candidate v2's test log loss 0.1257 is worse than stable")
            && s.contains("v1's 0.1152. Promote anyway?")
    });
    dash.send("y");
    dash.wait_for("v2 promoted", Duration::from_secs(30), |s| s.contains("stable=v2"));

    dash.send("e");
    dash.wait_for("the export", Duration::from_secs(30), |s| s.contains("exported 16 files"));
    let files: Vec<_> =
        std::fs::read_dir(&exports).expect("exports dir").flatten().map(|e| e.path()).collect();
    for suffix in ["path.png", "cv.png"] {
        let png = files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix}: {files:?}"));
        assert_eq!(&std::fs::read(png).expect("png")[..8], b"\x89PNG\r\n\x1a\n", "{suffix}");
    }
    assert!(dash.quit().success());
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// A sweep against the real services: two learning rates × two penalties trained side by
/// side, each registering a version and moving no alias, then the best promoted with `P`.
#[test]
fn a_sweep_trains_its_grid_side_by_side_and_promotes_the_best() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut dash = Dashboard::start(home.path(), &[]);
    dash.wait_every_service_ready();
    dash.send("S");
    dash.wait_for("the sweep form", Duration::from_secs(10), |s| {
        s.contains("learning rates") && s.contains("9 combinations")
    });
    // Learning rates 0.1 and 0.2, penalties 0 and 0.01: four members.
    dash.send("\x1b[B");
    for _ in 0..20 {
        dash.send("\x7f");
    }
    dash.send("0.1,0.2\x1b[B");
    for _ in 0..20 {
        dash.send("\x7f");
    }
    dash.send("0,0.01");
    dash.wait_for("four combinations", Duration::from_secs(10), |s| s.contains("4 combinations"));
    dash.send("\r");
    let text = dash
        .wait_for("the sweep done", Duration::from_secs(120), |s| s.contains("Sweep — 4/4 done"));
    assert!(
        text.contains("★1") && !text.contains("failed"),
        "the best is marked, none failed:\n{text}"
    );
    let best = text.lines().find(|l| l.contains("★1")).expect("the best member's row");
    let version = best
        .split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].parse::<u32>().is_ok())
        .expect("its version")
        .to_string();
    // Registered, not promoted: nothing is stable until P.
    let registry: serde_json::Value = serde_json::from_slice(
        &std::fs::read(home.path().join("registry.json")).expect("registry"),
    )
    .expect("json");
    let entry = &registry["models"]["admissions"];
    assert_eq!(entry["versions"].as_array().map(Vec::len), Some(4), "{registry}");
    assert!(entry["aliases"]["stable"].is_null(), "a sweep moves no alias: {registry}");
    dash.send("P");
    dash.wait_for("the best promoted", Duration::from_secs(30), |s| {
        s.contains(&format!("{version} is stable and serving"))
    });
    assert!(dash.quit().success());
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// SIGTERM and SIGINT to the console (a `kill`, a closing session manager) end it as `q` does:
/// every service stopped, the alternate screen left, the terminal's modes restored.
#[test]
fn sigterm_or_sigint_to_the_console_stops_every_service_and_restores_the_terminal() {
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        let home = tempfile::tempdir().expect("tempdir");
        let mut dash = Dashboard::start(home.path(), &[]);
        dash.wait_every_service_ready();
        assert!(dash.alternate_screen());
        let pid = dash.child.process_id().expect("console pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
        let status =
            dash.exit_within(Duration::from_secs(20), &format!("the console to exit on {signal}"));
        assert!(
            dash.left_alternate_screen(),
            "{signal}: the alternate screen was left ({status:?})"
        );
        common::assert_no_services(home.path(), Duration::from_secs(3));
    }
}

/// Set in the child of `a_panic_in_the_dashboard_restores_the_terminal_and_leaves_no_service`:
/// the home it runs the dashboard on.
const PANIC_CHILD_HOME: &str = "LOGITFLOW_TEST_PANIC_CHILD_HOME";

/// A panic while the dashboard runs — here in the middle of drawing a frame — restores the
/// terminal (ratatui's panic hook, installed by the same `ratatui::try_init` the binary calls)
/// and leaves no service behind (the unwinding drops the runtime, and with it the children).
///
/// Nothing in the product can be made to panic from outside, so this test runs itself again in
/// a pty as the child: it sets the terminal up as `main` does and runs the real dashboard on
/// real services, drawing through a backend that panics once a file appears in the home.
#[test]
fn a_panic_in_the_dashboard_restores_the_terminal_and_leaves_no_service() {
    if let Some(home) = std::env::var_os(PANIC_CHILD_HOME) {
        return panicking_dashboard(std::path::PathBuf::from(home));
    }
    let home = tempfile::tempdir().expect("tempdir");
    let mut command =
        portable_pty::CommandBuilder::new(std::env::current_exe().expect("this test binary"));
    command.args([
        "--exact",
        "a_panic_in_the_dashboard_restores_the_terminal_and_leaves_no_service",
        "--nocapture",
        "--test-threads=1",
    ]);
    command.env(PANIC_CHILD_HOME, home.path());
    // The services are the real binary's, not this test binary's.
    command.env("LOGITFLOW_SERVICE_EXE", env!("CARGO_BIN_EXE_logitflow"));
    // No backtrace, which would push the panic's message off the 40-line screen.
    command.env("RUST_BACKTRACE", "0");
    let mut dash = Dashboard::spawn(command);
    dash.wait_every_service_ready();
    assert!(
        dash.alternate_screen() && !dash.cooked_mode(),
        "the dashboard runs raw on the alternate screen"
    );
    assert_eq!(common::services_of(home.path()).len(), 8, "eight services run");

    std::fs::write(home.path().join(PANIC_FILE), "").expect("the panic cue");
    dash.send("?"); // a key makes the next frame
    let status = dash.exit_within(Duration::from_secs(20), "the panicking dashboard to exit");
    assert!(!status.success(), "the child's test failed with the panic: {status:?}");
    assert!(dash.left_alternate_screen(), "the alternate screen was left after the panic");
    dash.wait_for("the panic message, readable on the main screen", Duration::from_secs(5), |s| {
        s.contains("the backend failed on cue")
    });
    assert!(dash.cooked_mode(), "raw mode was turned off");
    common::assert_no_services(home.path(), Duration::from_secs(3));
}

/// The file whose appearance in the home makes [`PanicOnCue`] panic.
const PANIC_FILE: &str = "panic-now";

/// The child's half: `main`'s dashboard arm, with the backend wrapped.
fn panicking_dashboard(home: std::path::PathBuf) {
    use clap::Parser;
    let cli =
        logitflow::cli::Cli::parse_from(["logitflow", "--home", home.to_str().expect("utf8")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // Raw mode, the alternate screen and the restoring panic hook, as `main` sets them up; the
    // terminal it returns is replaced by one drawing through the same stdout.
    drop(ratatui::try_init().expect("the pty is a terminal"));
    let backend = PanicOnCue {
        inner: ratatui::backend::CrosstermBackend::new(std::io::stdout()),
        cue: home.join(PANIC_FILE),
    };
    let terminal = ratatui::Terminal::new(backend).expect("terminal");
    let home = logitflow::commands::Home::new(home, cli.store);
    let result = runtime.block_on(logitflow::dashboard::run(terminal, home, cli.dashboard));
    ratatui::restore();
    panic!("the dashboard returned instead of panicking: {result:?}");
}

/// A crossterm backend that panics in `draw` once its cue file exists.
struct PanicOnCue {
    inner: ratatui::backend::CrosstermBackend<std::io::Stdout>,
    cue: std::path::PathBuf,
}

impl ratatui::backend::Backend for PanicOnCue {
    type Error = std::io::Error;

    fn draw<'a, I>(&mut self, content: I) -> std::io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        assert!(!self.cue.exists(), "the backend failed on cue");
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> std::io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> std::io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> std::io::Result<ratatui::layout::Position> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> std::io::Result<()> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> std::io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> std::io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> std::io::Result<ratatui::layout::Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> std::io::Result<ratatui::backend::WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        ratatui::backend::Backend::flush(&mut self.inner)
    }
}

/// One service started "elsewhere": its own home, the shared store, a token; its URL.
fn service_elsewhere(
    name: &str,
    home: &std::path::Path,
    store: &str,
    serve_url: Option<&str>,
) -> (std::process::Child, String) {
    let mut command = common::logitflow(home);
    command.args(["--store", store, "service", name]).env("LOGITFLOW_TOKEN", "the-clusters-token");
    if let Some(url) = serve_url {
        command.env("LOGITFLOW_SERVE_URL", url);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("service");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let (line, stdout) = common::line_within(stdout, Duration::from_secs(30), "listening");
    // Its stdout stays open as long as it runs.
    std::thread::spawn(move || std::io::copy(&mut { stdout }, &mut std::io::sink()));
    let value: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{name}: {line}"));
    (child, format!("http://{}", value["addr"].as_str().expect("addr")))
}

#[test]
fn the_dashboard_attached_by_url_watches_and_retrains_services_it_did_not_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let store = format!("file://{}", root.path().join("shared-store").display());
    let mut services = Vec::new();
    let mut cluster = String::from("[services]\n");
    let mut serve_url = None;
    for name in
        ["serve", "ingest", "preprocess", "features", "train", "evaluate", "advisor", "batch"]
    {
        let home = root.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("home");
        let (child, url) = service_elsewhere(name, &home, &store, serve_url.as_deref());
        cluster.push_str(&format!("{name} = \"{url}\"\n"));
        serve_url.get_or_insert(url);
        services.push(child);
    }
    let console = root.path().join("console");
    let file = common::write(root.path(), "cluster.toml", &cluster);
    let mut command = portable_pty::CommandBuilder::new(env!("CARGO_BIN_EXE_logitflow"));
    command.args([
        "--home",
        console.to_str().expect("utf8"),
        "--connect",
        file.to_str().expect("utf8"),
    ]);
    command.env("LOGITFLOW_TOKEN", "the-clusters-token");
    let mut dash = Dashboard::spawn(command);
    dash.wait_for("the eight services, as they report themselves", Duration::from_secs(30), |s| {
        s.contains("Services 8/8 ready")
    });
    for name in ["ingest", "serve", "batch"] {
        let line = dash.service_line(name).expect("listed");
        // Its memory as it reports it (no pid here to sample), e.g. "28.3M".
        assert!(
            line.contains("ready")
                && line
                    .split_whitespace()
                    .any(|w| w.ends_with('M') && w[..w.len() - 1].parse::<f64>().is_ok()),
            "{line}"
        );
    }
    dash.send("t");
    dash.wait_for("trained and served through the URLs", Duration::from_secs(60), |s| {
        s.contains("v1 is stable") && s.contains("✓ serve")
    });
    // Its logs come from the service's own recent-logs route.
    dash.send("L");
    dash.wait_for("ingest's logs", Duration::from_secs(10), |s| {
        s.contains("Log: ingest") && s.contains("listening")
    });
    dash.send("\x1b");
    dash.send("r");
    dash.wait_for("no restart of what runs elsewhere", Duration::from_secs(10), |s| {
        s.contains("runs elsewhere")
    });
    let status = dash.quit();
    assert!(status.success(), "the dashboard quit with {status:?}");
    assert!(
        !console.join("artifacts").exists(),
        "the console stored nothing: the services did, in their store"
    );
    for child in &mut services {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "quitting the dashboard stopped a service it did not start"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}
