//! Real CSVs through the real binary and services: text columns, a text label and NA cells
//! (the Palmer penguins), the exact fit against statsmodels, separation (breast cancer, 30
//! features, pandas' index column), the seed's SGD against the exact fit, and the default fit
//! of ten real files from R packages (and the penguins and spector) against statsmodels, with
//! its fit statistics. The reference numbers are in
//! `tests/fixtures/reference.json` and `rdatasets.json`, made by `tests/fixtures/make_reference.py`
//! and `make_rdatasets.py`.

mod common;

use common::{assert_no_services, fixture, json, run, stderr, stdout, write};
use serde_json::Value;
use std::time::Duration;

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixture("reference.json")).expect("reference.json"),
    )
    .expect("parses")
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

const PENGUIN_ROW: &str = "Gentoo,Biscoe,47.5,15,217,5200,2008";

#[test]
fn penguins_exact_fit_on_the_whole_file_matches_statsmodels() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("penguins.csv");
    let data = data.to_str().expect("utf8");
    let args = [
        "run",
        "--data",
        data,
        "--test-data",
        data,
        "--label",
        "sex",
        "--solver",
        "newton",
        "--l2",
        "0",
        "--missing",
        "drop",
        "--json",
    ];
    let out = run(home.path(), &[&args[..], &["--predict", PENGUIN_ROW]].concat());
    let report = json(&out);
    let reference = reference();
    let expected = reference["penguins"]["terms"].as_array().expect("terms");
    let terms = report["model"]["terms"].as_array().expect("model.terms");
    assert_eq!(terms.len(), expected.len(), "{terms:?}");
    for (got, want) in terms.iter().zip(expected) {
        let name = want["term"].as_str().unwrap_or("");
        assert_eq!(got["term"], want["term"], "terms in the model's order");
        let (estimate, se) = (
            got["estimate"].as_f64().unwrap_or(f64::NAN),
            got["std_error"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            relative(estimate, want["estimate"].as_f64().unwrap_or(0.0)) < 1e-10,
            "{name}: {estimate} vs {}",
            want["estimate"]
        );
        assert!(
            relative(se, want["std_error"].as_f64().unwrap_or(0.0)) < 1e-8,
            "{name}: se {se} vs {}",
            want["std_error"]
        );
        for field in ["z", "p_value", "ci_low", "ci_high", "odds_ratio"] {
            assert!(got[field].as_f64().is_some(), "{name}: {field} missing");
        }
        // The estimate per standard deviation of its design column, as numpy has it.
        match want["standardized"].as_f64() {
            Some(expected) => {
                let standardized = got["standardized"].as_f64().unwrap_or(f64::NAN);
                assert!(
                    relative(standardized, expected) < 1e-10,
                    "{name}: standardized {standardized} vs {expected}"
                );
            }
            None => assert!(got["standardized"].is_null(), "{name}: the intercept has none"),
        }
    }
    assert_eq!(
        report["rows"],
        serde_json::json!({"train": 333, "validation": 0, "test": 333}),
        "the whole file trains"
    );
    assert_eq!(
        report["model"]["classes"],
        serde_json::json!({"negative": "female", "positive": "male"})
    );
    assert_eq!(
        report["data_summary"]["categorical"]["species"],
        serde_json::json!(["Adelie", "Chinstrap", "Gentoo"])
    );
    assert_eq!(
        report["data_summary"]["missing_by_column"]["sex"], 11,
        "{}",
        report["data_summary"]
    );
    let p = report["predictions"][0]["probability"].as_f64().expect("a prediction");
    let expected_p = reference["penguins"]["predict"]["probability"].as_f64().unwrap_or(f64::NAN);
    assert!((p - expected_p).abs() < 1e-10, "served {p} vs statsmodels' predict {expected_p}");
    // The JSON keeps the coefficients in the model's term order, not sorted.
    let text = stdout(&out);
    let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap_or(usize::MAX);
    assert!(
        at("species=Chinstrap") < at("island=Dream") && at("island=Dream") < at("bill_length_mm"),
        "order in {text}"
    );

    // The standardized estimates do not depend on the scaling the fit used: standard scaling
    // says what each term's deviation is, and min-max scaling leaves it to be measured.
    let min_max = json(&run(home.path(), &[&args[..], &["--scaling", "minmax"]].concat()));
    let terms_of =
        |report: &Value| report["model"]["terms"].as_array().cloned().unwrap_or_default();
    assert_eq!(terms_of(&min_max).len(), expected.len());
    for (got, want) in terms_of(&min_max).iter().zip(expected) {
        if let Some(expected) = want["standardized"].as_f64() {
            let standardized = got["standardized"].as_f64().unwrap_or(f64::NAN);
            assert!(
                relative(standardized, expected) < 1e-8,
                "{}, min-max: standardized {standardized} vs {expected}",
                want["term"]
            );
        }
    }

    // An exact fit does not depend on the seed.
    let again = json(&run(home.path(), &[&args[..], &["--seed", "7"]].concat()));
    assert_eq!(again["stages"][3]["cached"], false, "another seed trains again");
    assert_eq!(again["model"]["terms"], report["model"]["terms"], "same coefficients bit for bit");

    // The printed report is a coefficient table like statsmodels' summary.
    let printed = run(home.path(), &args[..args.len() - 1]);
    let table = stdout(&printed);
    assert!(
        table.contains("std err") && table.contains("P>|z|") && table.contains("[0.025"),
        "{table}"
    );
    assert!(
        table.contains("species=Gentoo") && table.contains("\"male\" is the positive class"),
        "{table}"
    );

    // predict by name, with text values; an unseen level is refused, naming what is known.
    let by_name = run(
        home.path(),
        &[
            "predict",
            "--json",
            "--feature",
            "species=Gentoo",
            "--feature",
            "island=Biscoe",
            "--feature",
            "bill_length_mm=47.5",
            "--feature",
            "bill_depth_mm=15",
            "--feature",
            "flipper_length_mm=217",
            "--feature",
            "body_mass_g=5200",
            "--feature",
            "year=2008",
        ],
    );
    let answer = json(&by_name);
    assert!(
        (answer["probability"].as_f64().unwrap_or(f64::NAN) - expected_p).abs() < 1e-10,
        "{answer}"
    );
    let unseen =
        run(home.path(), &["predict", "Emperor", "Biscoe", "47.5", "15", "217", "5200", "2008"]);
    assert!(!unseen.status.success());
    let message = stderr(&unseen);
    assert!(
        message.contains("\"Emperor\"") && message.contains("Adelie, Chinstrap, Gentoo"),
        "{message}"
    );
    assert_no_services(home.path(), Duration::from_secs(2));
}

#[test]
fn the_seeds_sgd_comes_within_half_a_percent_of_the_exact_fit_and_says_how_close() {
    // The bundled data; spector (32 rows); the penguins (text columns, 9 correlated terms: the
    // hard case for per-sample SGD, some hundreds of epochs to get there).
    for (data, label) in [
        (None, None),
        (Some(fixture("spector.csv")), Some("GRADE")),
        (Some(fixture("penguins.csv")), Some("sex")),
    ] {
        let home = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<String> =
            vec!["run".into(), "--json".into(), "--missing".into(), "drop".into()];
        if let (Some(data), Some(label)) = (&data, label) {
            args.extend([
                "--data".into(),
                data.display().to_string(),
                "--label".into(),
                label.into(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sgd_args = [&args[..], &["--solver", "sgd"]].concat();
        let sgd = json(&run(home.path(), &sgd_args));
        // The default: auto, which fits these by newton.
        let exact = json(&run(home.path(), &args));
        assert_eq!(exact["model"]["solver_choice"]["solver"], "newton", "{}", exact["model"]);
        let gap = sgd["model"]["optimality"]["gap_percent"]
            .as_f64()
            .expect("the report says how close it got");
        assert!(gap < 0.5, "{data:?}: training log loss {gap}% above the optimum");
        let (sgd_loss, exact_loss) = (
            sgd["metrics"]["log_loss"].as_f64().unwrap_or(f64::NAN),
            exact["metrics"]["log_loss"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            sgd_loss <= exact_loss * 1.005,
            "{data:?}: test log loss {sgd_loss} vs the exact fit's {exact_loss}"
        );
        assert!(exact["model"]["optimality"].is_null(), "newton is the optimum");
        let without_json: Vec<&str> = sgd_args.iter().copied().filter(|a| *a != "--json").collect();
        let printed = run(home.path(), &without_json);
        assert!(
            stdout(&printed).contains("above the exact optimum"),
            "{}\n{}",
            stdout(&printed),
            stderr(&printed)
        );
    }
}

/// Ten real files of 1,000–10,000 rows with text features (ISLR, carData and AER, as the
/// `rdatasets` package ships them), and the penguins and spector, fitted as a new user would: no
/// solver named, `--missing drop`, the whole file trained. Every estimate and standard error is
/// statsmodels' to 1e-8, relatively (or, for an estimate near 0, to 1e-8 of its standard error),
/// and so is every fit statistic under the table (the log-likelihood, AIC and BIC to 1e-10).
#[test]
fn real_files_fit_by_default_match_statsmodels_with_their_fit_statistics() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("rdatasets.json")).expect("rdatasets.json"),
    )
    .expect("parses");
    let files = reference["files"].as_object().expect("files");
    assert_eq!(files.len(), 12);
    let number = |v: &Value, field: &str| v[field].as_f64().unwrap_or(f64::NAN);
    for (name, want) in files {
        let home = tempfile::tempdir().expect("tempdir");
        let data = fixture(want["csv"].as_str().expect("csv"));
        let data = data.to_str().expect("utf8");
        let label = want["label"].as_str().expect("label");
        let report = json(&run(
            home.path(),
            &[
                "run",
                "--data",
                data,
                "--test-data",
                data,
                "--label",
                label,
                "--missing",
                "drop",
                "--json",
            ],
        ));
        assert_eq!(report["rows"]["train"], want["rows"], "{name}: the rows statsmodels fitted");
        if let Some(positive) = want["positive"].as_str() {
            assert_eq!(report["model"]["classes"]["positive"], positive, "{name}");
        }
        assert_eq!(report["stop_reason"], "converged", "{name}");
        assert!(
            report["model"]["solver_choice"].is_object(),
            "{name}: the default is auto, and says what it ran"
        );
        let terms = report["model"]["terms"].as_array().expect("model.terms");
        let expected = want["terms"].as_object().expect("terms");
        assert_eq!(terms.len(), expected.len(), "{name}: {terms:?}");
        for got in terms {
            let term = got["term"].as_str().expect("term");
            let want = &expected
                .get(term)
                .unwrap_or_else(|| panic!("{name}: statsmodels has no term {term:?}"));
            let (estimate, se) = (number(got, "estimate"), number(got, "std_error"));
            let (want_estimate, want_se) = (number(want, "estimate"), number(want, "std_error"));
            let off = (estimate - want_estimate).abs();
            assert!(
                off <= 1e-8 * want_estimate.abs().max(want_se),
                "{name}, {term}: {estimate} vs statsmodels' {want_estimate}"
            );
            assert!(
                relative(se, want_se) <= 1e-8,
                "{name}, {term}: standard error {se} vs statsmodels' {want_se}"
            );
        }
        let got = &report["model"]["fit_statistics"];
        let want = &want["fit_statistics"];
        // Relative to the expected figure however small it is (a p-value of 1e-292 included).
        let close = |figure: &str, reference: &str, within: f64| {
            let (value, expected) = (number(got, figure), number(want, reference));
            assert!(
                (value - expected).abs() <= within * expected.abs(),
                "{name}, {figure}: {value} vs {reference} {expected}"
            );
        };
        for figure in ["log_likelihood", "aic", "bic"] {
            close(figure, figure, 1e-10);
        }
        for figure in ["log_likelihood_null", "llr", "pseudo_r2"] {
            close(figure, figure, 1e-8);
        }
        // statsmodels' null model is iterated to its default tolerance; the maximum has a closed
        // form, and the p-value moves with it (make_rdatasets.py keeps both).
        close("log_likelihood_null", "log_likelihood_null_exact", 1e-12);
        close("llr_p_value", "llr_p_value_exact_null", 1e-9);
        for count in ["df_model", "df_residual", "n"] {
            assert_eq!(got[count].as_f64(), want[count].as_f64(), "{name}, {count}");
        }
        assert_eq!(
            number(got, "deviance"),
            -2.0 * number(got, "log_likelihood"),
            "{name}: 0/1 labels' deviance"
        );
    }
}

/// `--cov hc0` and `hc1`: White's heteroscedasticity-robust standard errors, statsmodels'
/// `fit(cov_type="HC0")` to 1e-8 (HC1 is HC0 × n/(n − k) in variance, as R's sandwich has it;
/// statsmodels' `Logit` gives HC0 for both), on four of the real files, with the estimates and
/// the fit statistics unchanged and the report naming the covariance.
#[test]
fn robust_standard_errors_match_the_sandwich_statsmodels_computes() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("rdatasets.json")).expect("rdatasets.json"),
    )
    .expect("parses");
    for name in ["penguins", "spector", "HMDA", "ResumeNames"] {
        let want = &reference["files"][name];
        let data = fixture(want["csv"].as_str().expect("csv"));
        let data = data.to_str().expect("utf8");
        let label = want["label"].as_str().expect("label");
        for cov in ["hc0", "hc1"] {
            let home = tempfile::tempdir().expect("tempdir");
            let args = [
                "run",
                "--data",
                data,
                "--test-data",
                data,
                "--label",
                label,
                "--missing",
                "drop",
                "--cov",
                cov,
            ];
            let report = json(&run(home.path(), &[&args[..], &["--json"]].concat()));
            assert_eq!(report["model"]["covariance"], cov, "{name}");
            for got in report["model"]["terms"].as_array().expect("terms") {
                let term = got["term"].as_str().expect("term");
                let expected = &want["terms"][term];
                let se = got["std_error"].as_f64().unwrap_or(f64::NAN);
                let want_se = expected[format!("std_error_{cov}")].as_f64().unwrap_or(f64::NAN);
                assert!(
                    (se - want_se).abs() <= 1e-8 * want_se,
                    "{name} {cov}, {term}: {se} vs statsmodels' {want_se}"
                );
                let estimate = got["estimate"].as_f64().unwrap_or(f64::NAN);
                let want_estimate = expected["estimate"].as_f64().unwrap_or(f64::NAN);
                assert!(
                    (estimate - want_estimate).abs() <= 1e-8 * want_estimate.abs().max(want_se),
                    "{name} {cov}, {term}"
                );
                // z and the interval follow the robust error.
                let z = got["z"].as_f64().unwrap_or(f64::NAN);
                assert!(
                    (z - estimate / se).abs() <= 1e-12 * z.abs().max(1.0),
                    "{name} {cov}, {term}: z {z}"
                );
            }
            let printed = stdout(&run(home.path(), &args));
            assert!(printed.contains("covariance: HC"), "{printed}");
        }
    }
}

/// `--solver saga`, the seed's per-sample update made to converge: on six real files it stops
/// because its gradient is below the tolerance, with statistics, and every estimate within 1e-4
/// of a standard error of statsmodels' (the distance a gradient of 1e-7 leaves on the
/// ill-conditioned penguins: 4.9e-5; newton's extra step takes it to rounding, SAGA has none).
#[test]
fn saga_converges_to_statsmodels_fit_on_real_files() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("rdatasets.json")).expect("rdatasets.json"),
    )
    .expect("parses");
    for name in ["penguins", "spector", "Default", "HMDA", "Wage", "TitanicSurvival"] {
        let want = &reference["files"][name];
        let home = tempfile::tempdir().expect("tempdir");
        let data = fixture(want["csv"].as_str().expect("csv"));
        let data = data.to_str().expect("utf8");
        let label = want["label"].as_str().expect("label");
        let args = [
            "run",
            "--data",
            data,
            "--test-data",
            data,
            "--label",
            label,
            "--missing",
            "drop",
            "--solver",
            "saga",
            "--json",
        ];
        let report = json(&run(home.path(), &args));
        assert_eq!(
            (report["stop_reason"].as_str(), report["params"]["solver"].as_str()),
            (Some("converged"), Some("saga")),
            "{name}"
        );
        assert!(
            report["model"]["optimality"].is_null(),
            "{name}: a converged SAGA fit is the optimum, measured against none"
        );
        for got in report["model"]["terms"].as_array().expect("terms") {
            let term = got["term"].as_str().expect("term");
            let (estimate, expected) =
                (got["estimate"].as_f64().unwrap_or(f64::NAN), &want["terms"][term]);
            let (want_estimate, se) = (
                expected["estimate"].as_f64().unwrap_or(f64::NAN),
                expected["std_error"].as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (estimate - want_estimate).abs() <= 1e-4 * se,
                "{name}, {term}: {estimate} vs statsmodels' {want_estimate} (se {se})"
            );
        }
    }
}

#[test]
fn breast_cancer_separation_is_named_instead_of_convergence() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = fixture("breast_cancer.csv");
    let report = json(&run(
        home.path(),
        &[
            "run",
            "--data",
            data.to_str().expect("utf8"),
            "--label",
            "diagnosis",
            "--solver",
            "newton",
            "--json",
        ],
    ));
    assert_eq!(report["stop_reason"], "separated", "{}", report["model"]);
    assert!(
        report["model"]["separation"].as_str().is_some_and(|s| s.contains("combination")),
        "{}",
        report["model"]
    );
    assert!(report["model"]["statistics_note"].as_str().is_some_and(|s| s.contains("separated")));
    assert!(
        report["model"]["terms"][1]["std_error"].is_null(),
        "no standard errors for a separated fit"
    );
    assert_eq!(
        report["feature_names"].as_array().map(Vec::len),
        Some(30),
        "pandas' index column is not a feature"
    );
    assert!(
        report["data_summary"]["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n.as_str().is_some_and(|n| n.contains("index"))))
    );
}

#[test]
fn text_labels_semicolons_and_imputation_are_reported() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("student;balance;default\n");
    for i in 0..200 {
        let balance =
            if i % 37 == 5 { "NA".to_string() } else { format!("{}", 500 + (i * 37) % 1700) };
        let student = if i % 41 == 3 {
            ""
        } else if i % 3 == 0 {
            "Yes"
        } else {
            "No"
        };
        let default = if (500 + (i * 37) % 1700) > 1400 || i % 17 == 0 { "Yes" } else { "No" };
        text.push_str(&format!("{student};{balance};{default}\n"));
    }
    let path = write(home.path(), "credit.csv", &text);
    let path = path.to_str().expect("utf8");
    let report = json(&run(
        home.path(),
        &[
            "run",
            "--data",
            path,
            "--missing",
            "impute-median",
            "--labels",
            "defaults,pays",
            "--json",
            "--predict",
            "Yes,1500",
        ],
    ));
    let summary = &report["data_summary"];
    assert!(
        summary["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n.as_str().is_some_and(|n| n.contains("';'")))),
        "{summary}"
    );
    assert_eq!(summary["imputed"]["balance"], 6, "{summary}");
    assert_eq!(summary["imputed"]["student"], 5, "{summary}");
    assert_eq!(
        report["model"]["classes"],
        serde_json::json!({"negative": "pays", "positive": "defaults"})
    );
    assert_eq!(
        report["model"]["coefficients"].as_object().map(|c| c.contains_key("student=Yes")),
        Some(true),
        "{}",
        report["model"]
    );
    let printed = run(
        home.path(),
        &[
            "run",
            "--data",
            path,
            "--missing",
            "impute-median",
            "--labels",
            "defaults,pays",
            "--predict",
            "Yes,1500",
        ],
    );
    assert!(stdout(&printed).contains("of defaults"), "{}", stdout(&printed));

    // What is refused, and why.
    // Three values are three classes now (tests/classes.rs); an identifier-like label is not.
    let rows: String = (0..101).map(|i| format!("{i},id{i:03}\n")).collect();
    let many = write(home.path(), "many.csv", &format!("x,y\n{rows}"));
    let out = run(home.path(), &["run", "--data", many.to_str().expect("utf8")]);
    assert!(stderr(&out).contains("101 distinct values (\"id000\", \"id001\""), "{}", stderr(&out));
    assert!(stderr(&out).contains("a label may have at most 100 classes"), "{}", stderr(&out));
    let out =
        run(home.path(), &["run", "--data", path, "--missing", "drop", "--positive", "maybe"]);
    assert!(stderr(&out).contains("--positive \"maybe\" is not a value"), "{}", stderr(&out));
    let out =
        run(home.path(), &["run", "--data", path, "--missing", "drop", "--predict", "1500,Yes"]);
    assert!(
        stderr(&out).contains("\"Yes\" is not a number, and feature \"balance\" is numeric"),
        "{}",
        stderr(&out)
    );
    assert_no_services(home.path(), Duration::from_secs(2));
}

/// Files as people keep them: Spector's data gzip- and zstd-compressed, and written as a
/// European spreadsheet writes it (`;` between fields, a decimal comma), give the plain CSV's
/// model, every estimate and standard error the same bits; a Parquet file or a workbook is named
/// for what it is.
#[test]
fn compressed_and_decimal_comma_files_give_the_plain_files_model() {
    use std::io::Write;
    let home = tempfile::tempdir().expect("tempdir");
    let plain = std::fs::read_to_string(fixture("spector.csv")).expect("spector.csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain.as_bytes()).expect("gzip");
    let zst = ruzstd::encoding::compress_to_vec(
        plain.as_bytes(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let european = plain.replace(',', ";").replace('.', ",");
    let dir = home.path();
    let files = [
        (
            std::fs::write(dir.join("spector.csv.gz"), gz.finish().expect("gzip")),
            "spector.csv.gz",
            &[][..],
        ),
        (std::fs::write(dir.join("spector.csv.zst"), zst), "spector.csv.zst", &[][..]),
        (
            std::fs::write(dir.join("european.csv"), european),
            "european.csv",
            &["--decimal", ","][..],
        ),
    ];
    let model = |data: &str, more: &[&str]| {
        let args =
            [&["run", "--data", data, "--test-data", data, "--label", "GRADE", "--json"][..], more]
                .concat();
        let out = run(home.path(), &args);
        assert!(out.status.success(), "{data}: {}", stderr(&out));
        json(&out)["model"]["terms"].clone()
    };
    let want = model(fixture("spector.csv").to_str().expect("utf8"), &[]);
    assert_eq!(want.as_array().map(Vec::len), Some(4));
    for (written, name, more) in files {
        written.expect("written");
        assert_eq!(model(dir.join(name).to_str().expect("utf8"), more), want, "{name}");
    }
    // Without --decimal, a column of decimal commas is named, not fitted as levels.
    let european = dir.join("european.csv");
    let out =
        run(home.path(), &["run", "--data", european.to_str().expect("utf8"), "--label", "GRADE"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "column \"GPA\": its values are numbers written with a decimal comma (\"2,66\")"
        ),
        "{}",
        stderr(&out)
    );
    let workbook = write(dir, "data.xlsx", "PK\u{3}\u{4}rest");
    let out = run(home.path(), &["run", "--data", workbook.to_str().expect("utf8")]);
    assert!(
        stderr(&out).contains("this is a ZIP archive (an Excel .xlsx workbook?"),
        "{}",
        stderr(&out)
    );
}

/// The penguins as pyarrow writes a pandas frame (`tests/fixtures/make_parquet.py`: dictionary-
/// encoded text columns, nulls, zstd, four row groups) give the model of the CSV they came from,
/// every estimate and standard error the same bits, and predict alike; a Parquet file cut short
/// is refused naming it, and nothing is left half-stored.
#[test]
fn a_parquet_file_gives_its_csv_exports_model() {
    let home = tempfile::tempdir().expect("tempdir");
    let model = |data: &std::path::Path| {
        let data = data.to_str().expect("utf8");
        let args = [
            "run",
            "--data",
            data,
            "--test-data",
            data,
            "--label",
            "sex",
            "--missing",
            "drop",
            "--json",
        ];
        let out = run(home.path(), &[&args[..], &["--predict", PENGUIN_ROW]].concat());
        assert!(out.status.success(), "{data}: {}", stderr(&out));
        let report = json(&out);
        let summary = &report["data_summary"];
        let read = (
            summary["categorical"].clone(),
            summary["missing_by_column"].clone(),
            report["rows"].clone(),
        );
        (report["model"]["terms"].clone(), report["predictions"][0]["probability"].clone(), read)
    };
    let (terms, probability, read) = model(&fixture("penguins.parquet"));
    assert_eq!(
        terms.as_array().map(Vec::len),
        Some(10),
        "the intercept, species and island as levels: {terms}"
    );
    assert_eq!(read.0["species"], serde_json::json!(["Adelie", "Chinstrap", "Gentoo"]));
    assert!(probability.as_f64().is_some_and(|p| p > 0.0 && p < 1.0), "{probability}");
    assert_eq!((terms, probability, read), model(&fixture("penguins.csv")));
    assert!(!files_named(home.path(), "x.npy").is_empty(), "a dataset is stored as x.npy");

    // Cut short: refused naming the file, and nothing stored in a home it was the first file of.
    let fresh = tempfile::tempdir().expect("tempdir");
    let whole = std::fs::read(fixture("penguins.parquet")).expect("penguins.parquet");
    let cut = write(fresh.path(), "cut.parquet", "");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let out = run(fresh.path(), &["run", "--data", cut.to_str().expect("utf8"), "--label", "sex"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("cut.parquet: not a Parquet file that can be read"), "{message}");
    assert!(
        files_named(fresh.path(), "x.npy").is_empty(),
        "no dataset stored from a file cut short"
    );
}

/// Every file called `name` under `dir`.
fn files_named(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    common::files_under(dir, &|path| path.file_name().is_some_and(|n| n == name))
}
