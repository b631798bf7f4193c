//! K-class (multinomial) models through the real binary and services: statsmodels' anes96
//! (`PID`, 7 classes) fitted exactly and compared with `MNLogit`, the penguins' species with
//! scikit-learn's L2 penalty scored in batch and compared row by row with `LogisticRegression`,
//! and what a K-class label does not take yet refused by name. The reference numbers are in
//! `tests/fixtures/multinomial.json` (made by `tests/fixtures/make_multinomial.py`).

mod common;

use common::{fixture, json, run, stderr, stdout};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture("multinomial.json")).expect("multinomial.json"),
    )
    .expect("parses")
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn anes96_fits_as_statsmodels_mnlogit_with_a_table_per_class() {
    let home = tempfile::tempdir().expect("home");
    let data = fixture("anes96.csv");
    let data = data.to_str().expect("a path");
    let args = [
        "run",
        "--data",
        data,
        "--test-data",
        data,
        "--label",
        "PID",
        "--solver",
        "newton",
        "--l2",
        "0",
    ];
    let args = [&args[..], &["--json", "--predict", "1,4,40,3,10"]].concat();
    let out = run(home.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let want = &reference()["anes96"];
    let model = &report["model"];
    assert_eq!(
        model["classes"]["several"],
        serde_json::json!(["0", "1", "2", "3", "4", "5", "6"]),
        "the classes, in order: {model}"
    );
    let tables =
        model["multinomial"]["tables"].as_array().expect("a table per class but the reference");
    assert_eq!(tables.len(), 6);
    let (mut worst_estimate, mut worst_error) = (0.0f64, 0.0f64);
    for (t, table) in tables.iter().enumerate() {
        assert_eq!(table["class"].as_u64(), Some(t as u64 + 1));
        let (estimates, errors) = (numbers(&want["estimates"][t]), numbers(&want["std_errors"][t]));
        let terms = table["terms"].as_array().expect("terms");
        assert_eq!(terms.len(), estimates.len());
        for (term, (estimate, error)) in terms.iter().zip(estimates.iter().zip(&errors)) {
            worst_estimate = worst_estimate
                .max(relative(term["estimate"].as_f64().expect("estimate"), *estimate));
            worst_error =
                worst_error.max((term["std_error"].as_f64().expect("std_error") - error).abs());
            let rrr = term["odds_ratio"].as_f64().expect("the relative-risk ratio");
            assert!(relative(rrr, estimate.exp()) < 1e-6, "{term}");
        }
    }
    assert!(worst_estimate < 1e-6, "an estimate is {worst_estimate} (relatively) from MNLogit's");
    assert!(worst_error < 1e-5, "a standard error is {worst_error} from MNLogit's");
    let llf = model["fit_statistics"]["log_likelihood"].as_f64().expect("llf");
    assert!(relative(llf, want["log_likelihood"].as_f64().expect("llf")) < 1e-9, "{llf}");
    let llnull = model["fit_statistics"]["log_likelihood_null"].as_f64().expect("llnull");
    // statsmodels fits the null model by iteration (4e-10 from Σ nₖ ln(nₖ/n), which is exact).
    assert!(
        relative(llnull, want["log_likelihood_null"].as_f64().expect("llnull")) < 1e-9,
        "{llnull}"
    );
    let counts = [200.0, 180.0, 108.0, 37.0, 94.0, 150.0, 175.0f64];
    let exact: f64 = counts.iter().map(|c| c * (c / 944.0).ln()).sum();
    assert!(relative(llnull, exact) < 1e-14, "{llnull} against {exact}");
    assert_eq!(model["fit_statistics"]["df_model"], 30);
    // The served answer: each class's probability by name, summing to 1, and the most probable.
    let prediction = &report["predictions"][0];
    let classes = prediction["classes"].as_array().expect("each class's probability");
    assert_eq!(classes.len(), 7);
    let sum: f64 = classes.iter().map(|c| c["probability"].as_f64().expect("a probability")).sum();
    assert!((sum - 1.0).abs() < 1e-12, "{sum}");
    assert_eq!(prediction["label"], "1", "{prediction}");
    // Another reference class reparametrises the same model: the same log-likelihood and the
    // same served probabilities, the tables now against "6".
    let other = run(home.path(), &[&args[..], &["--reference", "6"]].concat());
    assert!(other.status.success(), "{}", stderr(&other));
    let other = json(&other);
    let tables = other["model"]["multinomial"]["tables"].as_array().expect("tables");
    assert_eq!(
        tables.iter().map(|t| t["class"].as_u64().unwrap_or(99)).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    let other_llf = other["model"]["fit_statistics"]["log_likelihood"].as_f64().expect("llf");
    assert!(relative(other_llf, llf) < 1e-12, "{other_llf} against {llf}");
    let probabilities = |r: &Value| -> Vec<f64> {
        r["predictions"][0]["classes"]
            .as_array()
            .expect("classes")
            .iter()
            .map(|c| c["probability"].as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    for (a, b) in probabilities(&report).iter().zip(probabilities(&other)) {
        assert!((a - b).abs() < 1e-12, "{a} against {b}");
    }
    // The readable report: one table per class against the reference, and the K×K confusion.
    let out = run(home.path(), &args[..args.len() - 3]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("7 classes") && text.contains("\"6\" against \"0\"") && text.contains("RRR"),
        "{text}"
    );
    assert!(text.contains("confusion (rows: true class, columns: predicted)"), "{text}");
}

#[test]
fn penguins_species_under_scikit_learns_l2_scores_its_probabilities_in_batch() {
    let home = tempfile::tempdir().expect("home");
    let want = &reference()["penguins"];
    let data = fixture("penguins.csv");
    let data = data.to_str().expect("a path");
    let features = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g";
    let lambda = want["lambda"].as_f64().expect("λ").to_string();
    let args = [
        "run",
        "--data",
        data,
        "--test-data",
        data,
        "--label",
        "species",
        "--features",
        features,
        "--missing",
        "drop",
    ];
    let out =
        run(home.path(), &[&args[..], &["--l2", &lambda, "--model", "species", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let metrics = &report["metrics"];
    assert!(
        relative(
            metrics["log_loss"].as_f64().expect("log loss"),
            want["log_loss"].as_f64().expect("log loss")
        ) < 1e-6
    );
    assert_eq!(metrics["multiclass"]["confusion"], want["confusion"]);

    // Batch scores the complete rows with one probability column per class and the label.
    let text = std::fs::read_to_string(fixture("penguins.csv")).expect("penguins.csv");
    let complete: String = std::iter::once(text.lines().next().expect("a header"))
        .chain(
            text.lines()
                .skip(1)
                .filter(|line| line.split(',').skip(2).take(4).all(|c| c != "NA" && !c.is_empty())),
        )
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    let input = common::write(dir.path(), "complete.csv", &complete);
    let scored = dir.path().join("scored.csv");
    let out = run(
        home.path(),
        &[
            "score",
            input.to_str().expect("a path"),
            "--out",
            scored.to_str().expect("a path"),
            "--model",
            "species",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = std::fs::read_to_string(&scored).expect("scored.csv");
    let mut lines = scored.lines();
    let header = lines.next().expect("a header");
    assert!(
        header.ends_with("probability_Adelie,probability_Chinstrap,probability_Gentoo,label"),
        "{header}"
    );
    let expected = want["probabilities"].as_array().expect("rows");
    let mut rows = 0;
    let mut worst = 0.0f64;
    for (line, expected) in lines.zip(expected) {
        let cells: Vec<&str> = line.rsplitn(5, ',').collect();
        let got: Vec<f64> =
            cells[1..4].iter().rev().map(|c| c.parse().expect("a probability")).collect();
        for (g, e) in got.iter().zip(numbers(expected)) {
            worst = worst.max((g - e).abs());
        }
        let best = got.iter().enumerate().fold(0, |b, (i, p)| if *p > got[b] { i } else { b });
        assert_eq!(cells[0], ["Adelie", "Chinstrap", "Gentoo"][best], "{line}");
        rows += 1;
    }
    assert_eq!(rows, expected.len());
    assert!(worst < 1e-6, "a served probability is {worst} from scikit-learn's");
}

/// The seed's sgd with the softmax gradient: an iterative fit, so the report says how far from
/// newton's optimum it stopped and gives no standard errors.
#[test]
fn sgd_fits_k_classes_and_says_how_far_from_the_optimum_it_stopped() {
    let home = tempfile::tempdir().expect("home");
    let data = fixture("penguins.csv");
    let data = data.to_str().expect("a path");
    let features = "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g";
    let args = [
        "run",
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
    let out = run(home.path(), &[&args[..], &["--solver", "sgd", "--json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let gap = report["model"]["optimality"]["gap_percent"]
        .as_f64()
        .expect("the distance from the optimum");
    assert!((0.0..0.5).contains(&gap), "{gap}% above newton's optimum");
    assert!(
        report["model"]["statistics_note"]
            .as_str()
            .unwrap_or_default()
            .contains("not given with a penalty"),
        "{report}"
    );
    assert!(
        report["loss_curve"].as_array().is_some_and(|c| c.len() > 5),
        "an epoch per pass: {report}"
    );
    assert_eq!(report["params"]["solver"], "sgd");
}

/// Only Adelie penguins live on Torgersen: unpenalised, that level separates Adelie from the
/// rest, and the fit says so by term; under an L2 penalty the maximum exists, and nothing is
/// claimed.
#[test]
fn separation_is_named_per_class_unpenalised_and_not_claimed_under_a_penalty() {
    let home = tempfile::tempdir().expect("home");
    let data = fixture("penguins.csv");
    let data = data.to_str().expect("a path");
    let args = [
        "run",
        "--data",
        data,
        "--test-data",
        data,
        "--label",
        "species",
        "--missing",
        "drop",
        "--json",
    ];
    let out = run(home.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["stop_reason"], "separated", "{}", report["model"]);
    let separation = report["model"]["separation"].as_str().unwrap_or_default();
    assert!(
        separation.contains("island=Torgersen") && separation.contains("\"Adelie\""),
        "{separation}"
    );
    assert!(
        report["model"]["statistics_note"].as_str().unwrap_or_default().contains("separated"),
        "{}",
        report["model"]
    );
    let out = run(home.path(), &[&args[..], &["--l2", "0.003"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["stop_reason"], "converged", "{}", report["model"]);
    assert!(report["model"]["separation"].is_null(), "{}", report["model"]);
}

#[test]
fn what_a_k_class_label_does_not_take_is_refused_by_name() {
    let home = tempfile::tempdir().expect("home");
    let data = fixture("anes96.csv");
    let data = data.to_str().expect("a path");
    for (more, words) in [
        (
            &["--solver", "saga"][..],
            "K-class models are fitted by newton, lbfgs (or auto) or sgd, not saga",
        ),
        (&["--reference", "9"][..], "the reference \"9\" is not one of them (0, 1, 2, 3, 4, 5, 6)"),
        (&["--penalty", "l1", "--lambda", "0.01"][..], "not an L1 or elastic-net path"),
        (&["--positive", "3"][..], "names one of two classes"),
    ] {
        let args = [&["run", "--data", data, "--label", "PID"][..], more].concat();
        let out = run(home.path(), &args);
        assert!(!out.status.success(), "{more:?} was taken");
        assert!(stderr(&out).contains(words), "{more:?}: {}", stderr(&out));
    }
}
