//! `logitflow-bench cv`: a penalised path with K-fold cross-validation against R's cv.glmnet,
//! in the same run. Each round trains the file through the real services (`--penalty l1` or
//! `elasticnet`, `--cv K`, the whole file training) and then has `peers/cv.R` time cv.glmnet on
//! the same rows, standardised as logitflow standardises them, with the folds logitflow drew
//! (cv.glmnet alone, after R has started and read the file). It prints the medians of logitflow's
//! solve (the path and every fold's path, in the train service), of the train stage, and of
//! cv.glmnet, their ratio, and whether both chose the same λ.

use crate::{Spread, bundled_args, run_once};
use anyhow::Context;
use logitflow::cli::PenaltyArg;
use std::path::{Path, PathBuf};

/// The R script that is the peer.
const CV_R: &str = include_str!("../peers/cv.R");

#[derive(Debug, Clone, clap::Args)]
pub struct CvBench {
    /// The CSV; every row trains (and tests).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub label: String,
    /// α: 1 is the lasso, between 0 and 1 the elastic net.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    /// Rounds (each a fresh home; the peer times cv.glmnet as many times); medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Rscript, with the glmnet package (Debian's r-cran-glmnet).
    #[arg(long, env = "LOGITFLOW_BENCH_RSCRIPT", default_value = "Rscript")]
    pub rscript: PathBuf,
}

/// One round of logitflow's: the solve and the train stage in ms, and the λ chosen.
struct CvRound {
    solve_ms: f64,
    train_stage_ms: f64,
    lambda_1se: f64,
}

pub(super) async fn cv_bench(args: CvBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.alpha),
        "--alpha must be between 0 and 1, got {}",
        args.alpha
    );
    let scratch = tempfile::tempdir()?;
    let mut rounds = Vec::new();
    let mut last = None;
    for round in 0..args.rounds {
        let home = scratch.path().join(format!("home-{round}"));
        let (ours, report) =
            cv_run(&home, &args).await.with_context(|| format!("round {}", round + 1))?;
        std::fs::remove_dir_all(&home)?;
        rounds.push(ours);
        last = Some(report);
    }
    let report = last.context("no round ran")?;
    let peer = r_peer(&args, scratch.path(), &report).await?;
    print!("{}", render(&args, &rounds, &peer));
    Ok(())
}

/// The whole pipeline on the file with the penalty and folds asked for, in a fresh home.
async fn cv_run(
    home: &Path,
    args: &CvBench,
) -> anyhow::Result<(CvRound, logitflow::pipeline::RunReport)> {
    std::fs::create_dir_all(home)?;
    let mut data = bundled_args();
    data.data = Some(args.data.clone());
    data.test_data = Some(args.data.clone());
    data.label = Some(args.label.clone());
    data.penalty = if args.alpha == 1.0 { PenaltyArg::L1 } else { PenaltyArg::Elasticnet };
    data.l1_ratio = (args.alpha != 1.0).then_some(args.alpha);
    data.cv = Some(args.folds);
    let request = logitflow::commands::pipeline_request(home, &data, Vec::new())?;
    let (report, _, ()) = run_once(home, &request, |_| ()).await?;
    let train = report
        .stages
        .iter()
        .find(|s| s.name == logitflow::pipeline::Stage::Train)
        .context("no train stage")?;
    let cv = report.model.fit.cv.as_ref().context("the run has no cross-validation")?;
    let round = CvRound {
        solve_ms: train.solver_ms.unwrap_or(f64::NAN),
        train_stage_ms: train.ms,
        lambda_1se: cv.lambda_1se,
    };
    Ok((round, report))
}

/// cv.glmnet on the same rows and folds, timed `rounds` times in one R process.
async fn r_peer(
    args: &CvBench,
    scratch: &Path,
    report: &logitflow::pipeline::RunReport,
) -> anyhow::Result<serde_json::Value> {
    let cv = report.model.fit.cv.as_ref().context("the run has no cross-validation")?;
    let classes = report.model.classes.as_ref().context("the model names no classes")?;
    let (script, features, folds) =
        (scratch.join("cv.R"), scratch.join("features.txt"), scratch.join("folds.txt"));
    std::fs::write(&script, CV_R)?;
    std::fs::write(&features, report.feature_names.join("\n"))?;
    std::fs::write(
        &folds,
        cv.fold_of_row.iter().map(usize::to_string).collect::<Vec<_>>().join("\n"),
    )?;
    let (alpha, rounds) = (args.alpha.to_string(), args.rounds.to_string());
    let out = tokio::process::Command::new(&args.rscript)
        .arg(&script)
        .args([
            args.data.as_os_str(),
            args.label.as_ref(),
            classes.positive.as_ref(),
            features.as_os_str(),
            folds.as_os_str(),
        ])
        .args([alpha, rounds])
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {} for the R peer", args.rscript.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "the R peer failed ({}); it needs the glmnet package (Debian: r-cran-glmnet): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout).context("the R peer's answer is not JSON")
}

fn render(args: &CvBench, rounds: &[CvRound], peer: &serde_json::Value) -> String {
    let spread = |values: Vec<f64>| {
        Spread::of(values).map_or_else(|| "?".to_string(), |s| s.render(1, " ms"))
    };
    let solve: Vec<f64> = rounds.iter().map(|r| r.solve_ms).collect();
    let peer_ms: Vec<f64> = peer["seconds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_f64())
        .map(|s| s * 1e3)
        .collect();
    let ratio = match (Spread::of(solve.clone()), Spread::of(peer_ms.clone())) {
        (Some(ours), Some(theirs)) => format!("{:.2}×", ours.median / theirs.median),
        _ => "?".to_string(),
    };
    let same = rounds.iter().all(|r| {
        (r.lambda_1se - peer["lambda_1se"].as_f64().unwrap_or(f64::NAN)).abs()
            <= 1e-12 * r.lambda_1se
    });
    format!(
        "{} (α = {}, {} folds), {} rounds; median (least–most)\n  logitflow solve (path + folds) {}\n  logitflow train stage        {}\n  cv.glmnet {}              {}\n  solve / cv.glmnet: {ratio}; λ_1se {} ({})\n",
        args.data.display(),
        args.alpha,
        args.folds,
        rounds.len(),
        spread(solve),
        spread(rounds.iter().map(|r| r.train_stage_ms).collect()),
        peer["glmnet"].as_str().unwrap_or("?"),
        spread(peer_ms),
        rounds.first().map_or(f64::NAN, |r| r.lambda_1se),
        if same { "the same as cv.glmnet's" } else { "differs from cv.glmnet's" },
    )
}
