//! `logitflow-bench shapes`: the default fit on data of several shapes against scikit-learn,
//! in the same run. For each shape `peers/shapes.py` writes a training and a test CSV (mixed
//! scales, correlated columns, not separated); each round trains them through the real
//! services with the solver asked for (`auto` unless told) and then times scikit-learn's
//! unpenalised lbfgs (its defaults, and to a 1e-8 tolerance) and newton-cholesky on the same
//! rows. It prints, per shape, the medians of the train stage and of each peer fit, their ratio,
//! and how far the test log loss is from the optimum's (newton-cholesky's).

use crate::{Spread, bundled_args, run_once, run_peer, run_python};

/// The script that writes each shape's data and fits scikit-learn beside it.
const SHAPES_PY: &str = include_str!("../peers/shapes.py");
use anyhow::Context;
use logitflow::cli::SolverArg;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct ShapesBench {
    /// The shapes, as ROWSxFEATURES (a 0/1 label) or ROWSxFEATURESxCLASSES (K classes),
    /// comma-separated; `+LEVELS` adds a text column of that many levels (200000x10+5000).
    #[arg(long, value_delimiter = ',', default_value = "1000000x10,100000x100,100000x300,20000x1000,200000x10+5000", value_parser = parse_shape)]
    pub shapes: Vec<Shape>,
    /// The solver logitflow fits with.
    #[arg(long, value_enum, default_value_t = SolverArg::Auto)]
    pub solver: SolverArg,
    /// Rounds per shape (each a fresh home, the peer after it); medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// The python with numpy, pandas and scikit-learn, which writes the data and is the peer.
    #[arg(long, env = "LOGITFLOW_BENCH_PYTHON", default_value = "python3")]
    pub python: std::path::PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Rows, features, classes (2 for a 0/1 label) and the levels of a text column (0: none).
pub(crate) type Shape = (usize, usize, usize, usize);

fn parse_shape(text: &str) -> Result<Shape, String> {
    let (text, levels) = match text.split_once('+') {
        None => (text, 0),
        Some((shape, levels)) => match levels.trim().parse::<usize>() {
            Ok(levels) if levels >= 2 => (shape, levels),
            _ => return Err(format!("{levels:?}: a text column has two levels or more")),
        },
    };
    let (rows, features, classes) = parse_table_shape(text)?;
    Ok((rows, features, classes, levels))
}

fn parse_table_shape(text: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<&str> = text.split('x').collect();
    let number = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n > 0);
    let numbers: Option<Vec<usize>> = parts.iter().map(|p| number(p)).collect();
    match (parts.len(), numbers.as_deref()) {
        (2 | 3, None) => {
            Err(format!("{text:?}: rows, features and classes must be whole numbers above 0"))
        }
        (2, Some(&[rows, features])) => Ok((rows, features, 2)),
        (3, Some(&[rows, features, classes])) if classes >= 2 => Ok((rows, features, classes)),
        (3, Some(_)) => Err(format!("{text:?}: a label has two classes or more")),
        _ => Err(format!(
            "{text:?}: give a shape as ROWSxFEATURES, e.g. 100000x100, or ROWSxFEATURESxCLASSES"
        )),
    }
}

/// A shape's name: `100000x10`, `100000x10x5` for five classes, `200000x10+5000` with a
/// text column of 5,000 levels.
fn shape_name((rows, features, classes, levels): Shape) -> String {
    let table = if classes > 2 {
        format!("{rows}x{features}x{classes}")
    } else {
        format!("{rows}x{features}")
    };
    if levels > 0 { format!("{table}+{levels}") } else { table }
}

/// One round of one shape: logitflow's run and the peer's fits.
#[derive(Debug, Serialize)]
struct ShapeRound {
    solver: String,
    stop_reason: String,
    iterations: usize,
    train_stage_ms: f64,
    solver_ms: Option<f64>,
    test_log_loss: f64,
    peer: serde_json::Value,
}

impl ShapeRound {
    fn peer_ms(&self, fit: &str) -> f64 {
        self.peer[fit]["seconds"].as_f64().unwrap_or(f64::NAN) * 1e3
    }

    fn peer_log_loss(&self, fit: &str) -> f64 {
        self.peer[fit]["test_log_loss"].as_f64().unwrap_or(f64::NAN)
    }

    /// The test log loss of the optimum: newton-cholesky's, to a 1e-8 tolerance.
    fn optimum_log_loss(&self) -> f64 {
        self.peer_log_loss("newton-cholesky")
    }
}

pub(super) async fn shapes_bench(args: ShapesBench) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut results = serde_json::Map::new();
    for &shape in &args.shapes {
        let name = shape_name(shape);
        let dir = scratch.path().join(&name);
        let (rows_text, features_text, classes_text, levels_text) =
            (shape.0.to_string(), shape.1.to_string(), shape.2.to_string(), shape.3.to_string());
        let write_args = [
            "write".as_ref(),
            rows_text.as_ref(),
            features_text.as_ref(),
            dir.as_os_str(),
            "--classes".as_ref(),
            classes_text.as_ref(),
            "--levels".as_ref(),
            levels_text.as_ref(),
        ];
        run_python(&args.python, scratch.path(), "shapes.py", SHAPES_PY, &write_args)
            .await
            .with_context(|| format!("writing the {name} data"))?;
        let (train, test) = (dir.join("train.csv"), dir.join("test.csv"));
        let mut rounds = Vec::new();
        for round in 0..args.rounds {
            let home = scratch.path().join(format!("home-{name}-{round}"));
            let ours = shape_run(&home, &train, &test, args.solver)
                .await
                .with_context(|| format!("{name}, round {}", round + 1))?;
            std::fs::remove_dir_all(&home)?;
            let fit_args = ["fit".as_ref(), train.as_os_str(), test.as_os_str(), "y".as_ref()];
            let peer =
                run_peer(&args.python, scratch.path(), "shapes.py", SHAPES_PY, &fit_args).await?;
            rounds.push(ShapeRound { peer, ..ours });
        }
        if !args.json {
            print!("{}", render_shape(&name, &rounds));
        }
        std::fs::remove_dir_all(&dir)?;
        results.insert(name, serde_json::to_value(&rounds)?);
    }
    if args.json {
        println!("{}", serde_json::Value::Object(results));
    }
    Ok(())
}

/// The whole pipeline on `train` (tested on `test`) in a fresh home: the train stage's figures.
async fn shape_run(
    home: &Path,
    train: &Path,
    test: &Path,
    solver: SolverArg,
) -> anyhow::Result<ShapeRound> {
    std::fs::create_dir_all(home)?;
    let mut data = bundled_args();
    data.data = Some(train.to_path_buf());
    data.test_data = Some(test.to_path_buf());
    data.label = Some("y".into());
    data.solver = solver;
    let request = logitflow::commands::pipeline_request(home, &data, Vec::new())?;
    let (report, _, ()) = run_once(home, &request, |_| ()).await?;
    let train_stage = report
        .stages
        .iter()
        .find(|s| s.name == logitflow::pipeline::Stage::Train)
        .context("no train stage")?;
    Ok(ShapeRound {
        solver: report
            .model
            .fit
            .solver_choice
            .as_ref()
            .map_or_else(|| report.params.solver.to_string(), |c| c.describe()),
        stop_reason: report.stop_reason.short().to_string(),
        iterations: report.loss_curve.len(),
        train_stage_ms: train_stage.ms,
        solver_ms: train_stage.solver_ms,
        test_log_loss: report.metrics.log_loss,
        peer: serde_json::Value::Null,
    })
}

/// A shape's rounds: medians (and ranges) of each time, the ratios within each round.
fn render_shape(name: &str, rounds: &[ShapeRound]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(first) = rounds.first() else { return out };
    let sklearn = first.peer["sklearn"].as_str().unwrap_or("?");
    let _ = writeln!(
        out,
        "{name}: {} ({}, {} iterations), {} rounds, scikit-learn {sklearn}; median (least–most)",
        first.solver,
        first.stop_reason,
        first.iterations,
        rounds.len()
    );
    let mut line = |label: &str, spread: Option<Spread>, digits: usize, unit: &str| {
        let figures = spread.map_or_else(|| "-".to_string(), |s| s.render(digits, unit));
        let _ = writeln!(out, "  {label:<36} {figures}");
    };
    line("logitflow train stage", Spread::of(rounds.iter().map(|r| r.train_stage_ms)), 1, " ms");
    line("  its solver", Spread::of(rounds.iter().filter_map(|r| r.solver_ms)), 1, " ms");
    for fit in ["lbfgs_default", "lbfgs", "newton-cholesky"] {
        line(
            &format!("scikit-learn {fit}"),
            Spread::of(rounds.iter().map(|r| r.peer_ms(fit))),
            1,
            " ms",
        );
    }
    for fit in ["lbfgs_default", "lbfgs"] {
        line(
            &format!("train stage / {fit}"),
            Spread::of(rounds.iter().map(|r| r.train_stage_ms / r.peer_ms(fit))),
            2,
            "×",
        );
    }
    // Differences of 1e-9 and of 1e-2 both matter here: parts per million.
    let ppm = |loss: &dyn Fn(&ShapeRound) -> f64| {
        Spread::of(rounds.iter().map(|r| (loss(r) / r.optimum_log_loss() - 1.0) * 1e6))
    };
    line("test log loss above the optimum's", ppm(&|r| r.test_log_loss), 3, " ppm");
    line("  scikit-learn lbfgs_default's", ppm(&|r| r.peer_log_loss("lbfgs_default")), 3, " ppm");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_shape("100000x300"), Ok((100_000, 300, 2, 0)));
        assert_eq!(parse_shape("100000x10x5"), Ok((100_000, 10, 5, 0)));
        assert_eq!(parse_shape("200000x10+5000"), Ok((200_000, 10, 2, 5_000)));
        assert_eq!(shape_name((100_000, 10, 5, 0)), "100000x10x5");
        assert_eq!(shape_name((100_000, 10, 2, 0)), "100000x10");
        assert_eq!(shape_name((200_000, 10, 2, 5_000)), "200000x10+5000");
        assert!(parse_shape("10x3+1").is_err_and(|e| e.contains("two levels or more")));
        assert!(parse_shape("100000").is_err_and(|e| e.contains("ROWSxFEATURES")));
        assert!(parse_shape("0x3").is_err_and(|e| e.contains("above 0")));
        assert!(parse_shape("10x3x1").is_err_and(|e| e.contains("two classes or more")));
    }

    #[test]
    fn a_shape_renders_its_medians_ratios_and_distance_from_the_optimum() {
        let round = |train: f64, lbfgs: f64| ShapeRound {
            solver: "auto → newton: 10 terms".into(),
            stop_reason: "converged".into(),
            iterations: 5,
            train_stage_ms: train,
            solver_ms: Some(train / 2.0),
            test_log_loss: 0.55,
            peer: serde_json::json!({
                "sklearn": "1.9.1",
                "lbfgs_default": {"seconds": lbfgs, "test_log_loss": 0.5501},
                "lbfgs": {"seconds": lbfgs * 2.0, "test_log_loss": 0.55},
                "newton-cholesky": {"seconds": 1.0, "test_log_loss": 0.55},
            }),
        };
        let text =
            render_shape("1000000x10", &[round(100.0, 1.0), round(300.0, 2.0), round(200.0, 1.0)]);
        let expected = [
            "1000000x10: auto → newton: 10 terms (converged, 5 iterations), 3 rounds, scikit-learn 1.9.1; median (least–most)",
            "  logitflow train stage                200.0 ms (100.0–300.0)",
            "    its solver                         100.0 ms (50.0–150.0)",
            "  scikit-learn lbfgs_default           1000.0 ms (1000.0–2000.0)",
            "  scikit-learn lbfgs                   2000.0 ms (2000.0–4000.0)",
            "  scikit-learn newton-cholesky         1000.0 ms (1000.0–1000.0)",
            // Ratios within each round: 0.1, 0.15, 0.2.
            "  train stage / lbfgs_default          0.15× (0.10–0.20)",
            "  train stage / lbfgs                  0.07× (0.05–0.10)",
            "  test log loss above the optimum's    0.000 ppm (0.000–0.000)",
            "    scikit-learn lbfgs_default's       181.818 ppm (181.818–181.818)",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected, "{text}");
    }
}
