//! Plot export: the loss curve and the ROC curve of a run as PNG and SVG (plotters), and their
//! data as CSV. PNG text is drawn with the DejaVu Sans font shipped in `assets/fonts/`, so no
//! system font library is needed.

use crate::pipeline::RunReport;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in; if it did not parse, text would be missing, not a crash.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("the run has no loss curve to plot")]
    Empty,
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> ExportError {
    ExportError::Write { path: path.to_path_buf(), message: e.to_string() }
}

/// Writes `<run>-loss.{png,svg,csv}` and `<run>-roc.{png,svg,csv}` into `out` and returns
/// their paths.
pub fn export_run(report: &RunReport, out: &Path, log_scale: bool) -> Result<Vec<PathBuf>, ExportError> {
    if report.loss_curve.is_empty() {
        return Err(ExportError::Empty);
    }
    register_font();
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let stem = out.join(&report.run_id);
    let path = |suffix: &str| PathBuf::from(format!("{}-{suffix}", stem.display()));
    let mut written = Vec::new();

    let loss_csv = path("loss.csv");
    let mut csv = String::from("epoch,train_loss,val_loss\n");
    for p in &report.loss_curve {
        csv.push_str(&format!("{},{},{}\n", p.epoch, p.train_loss, p.val_loss.map_or(String::new(), |v| v.to_string())));
    }
    logitflow_core::store::write_atomic(&loss_csv, csv.as_bytes()).map_err(|e| write_err(&loss_csv, e))?;
    written.push(loss_csv);

    let roc_csv = path("roc.csv");
    let mut csv = String::from("threshold,fpr,tpr\n");
    for p in &report.roc {
        // The first point's threshold is "above every score" (f64::MAX in the report); written as
        // `inf`, as scikit-learn has it, so that pandas and numpy read the column as numbers.
        let threshold = if p.threshold >= f64::MAX { "inf".to_string() } else { p.threshold.to_string() };
        csv.push_str(&format!("{threshold},{},{}\n", p.fpr, p.tpr));
    }
    logitflow_core::store::write_atomic(&roc_csv, csv.as_bytes()).map_err(|e| write_err(&roc_csv, e))?;
    written.push(roc_csv);

    let scale = if log_scale { ", log scale" } else { "" };
    let title = format!("{} v{} — loss per epoch ({} solver{scale})", report.model.name, report.model.version, report.params.solver);
    // A log-scale plot has names of its own, so it does not replace the linear one.
    let loss_files = if log_scale { [("loss-log.png", false), ("loss-log.svg", true)] } else { [("loss.png", false), ("loss.svg", true)] };
    for (suffix, svg) in loss_files {
        let p = path(suffix);
        if svg {
            let root = SVGBackend::new(&p, (900, 560)).into_drawing_area();
            draw_loss(&root, report, &title, log_scale).map_err(|e| write_err(&p, e))?;
            root.present().map_err(|e| write_err(&p, e))?;
        } else {
            let root = BitMapBackend::new(&p, (900, 560)).into_drawing_area();
            draw_loss(&root, report, &title, log_scale).map_err(|e| write_err(&p, e))?;
            root.present().map_err(|e| write_err(&p, e))?;
        }
        written.push(p);
    }
    let title = format!("{} v{} — ROC on the test split (AUC {:.4})", report.model.name, report.model.version, report.metrics.auc);
    for (suffix, svg) in [("roc.png", false), ("roc.svg", true)] {
        let p = path(suffix);
        if svg {
            let root = SVGBackend::new(&p, (640, 600)).into_drawing_area();
            draw_roc(&root, report, &title).map_err(|e| write_err(&p, e))?;
            root.present().map_err(|e| write_err(&p, e))?;
        } else {
            let root = BitMapBackend::new(&p, (640, 600)).into_drawing_area();
            draw_roc(&root, report, &title).map_err(|e| write_err(&p, e))?;
            root.present().map_err(|e| write_err(&p, e))?;
        }
        written.push(p);
    }
    Ok(written)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_loss<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &RunReport,
    title: &str,
    log_scale: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let train: Vec<(f64, f64)> = report.loss_curve.iter().map(|p| (p.epoch as f64, p.train_loss)).collect();
    let val: Vec<(f64, f64)> = report.loss_curve.iter().filter_map(|p| p.val_loss.map(|v| (p.epoch as f64, v))).collect();
    let all = train.iter().chain(&val).map(|p| p.1).filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo * 1.0001)) } else { (0.01, 1.0) };
    let max_epoch = train.last().map_or(1.0, |p| p.0).max(1.0);
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, ("sans-serif", 22)).margin(16).x_label_area_size(44).y_label_area_size(70);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().x_desc("epoch").y_desc("mean log loss").label_style(("sans-serif", 14)).draw()?;
            chart
                .draw_series(LineSeries::new(train.clone(), BLUE.stroke_width(2)))?
                .label("train")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            if !val.is_empty() {
                chart
                    .draw_series(LineSeries::new(val.clone(), RED.stroke_width(2)))?
                    .label("validation")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
            }
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw()?;
        }};
    }
    if log_scale {
        finish!(builder.build_cartesian_2d(1.0..max_epoch, (lo * 0.95..hi * 1.05).log_scale())?);
    } else {
        let pad = (hi - lo) * 0.05;
        finish!(builder.build_cartesian_2d(1.0..max_epoch, (lo - pad).max(0.0)..hi + pad)?);
    }
    Ok(())
}

fn draw_roc<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>, report: &RunReport, title: &str) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart.configure_mesh().x_desc("false positive rate").y_desc("true positive rate").label_style(("sans-serif", 14)).draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
    chart.draw_series(LineSeries::new(report.roc.iter().map(|p| (p.fpr, p.tpr)), BLUE.stroke_width(2)))?;
    Ok(())
}
