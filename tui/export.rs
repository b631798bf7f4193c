//! Plot export: a run's loss curve, ROC curve, precision-recall curve and reliability diagram
//! as PNG and SVG (plotters), and their data as CSV. PNG text is drawn with the DejaVu Sans font shipped in `assets/fonts/`, so no
//! system font library is needed.

mod classes;
mod path;

use crate::pipeline::RunReport;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::RangedCoordf64;
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

/// Draws one figure as `<stem>.png` and `<stem>.svg` and pushes both paths to `$written`:
/// `$draw` runs on each backend's drawing area, `$root`. (The backends are types of their own,
/// and a drawing function is generic over them, so this is a macro rather than a function.)
macro_rules! png_and_svg {
    ($written:expr, $stem:expr, $size:expr, |$root:ident| $draw:expr) => {
        for (extension, svg) in [("png", false), ("svg", true)] {
            let p = PathBuf::from(format!("{}.{extension}", $stem.display()));
            if svg {
                let $root = SVGBackend::new(&p, $size).into_drawing_area();
                $draw.map_err(|e| write_err(&p, e))?;
                $root.present().map_err(|e| write_err(&p, e))?;
            } else {
                let $root = BitMapBackend::new(&p, $size).into_drawing_area();
                $draw.map_err(|e| write_err(&p, e))?;
                $root.present().map_err(|e| write_err(&p, e))?;
            }
            $written.push(p);
        }
    };
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

/// Writes into `out`, and returns the paths of: `<run>-loss.{csv,png,svg}` (`loss-log.*` on a
/// log scale, so that the linear plots stay), `<run>-roc.{csv,png,svg}`, and — for runs whose
/// evaluation has them — `<run>-pr.{csv,png,svg}` (precision-recall) and
/// `<run>-calibration.{csv,png,svg}` (the reliability diagram). Each CSV is written before its
/// figures; the figures are drawn from the same numbers.
pub fn export_run(
    report: &RunReport,
    out: &Path,
    log_scale: bool,
) -> Result<Vec<PathBuf>, ExportError> {
    if report.loss_curve.is_empty() {
        return Err(ExportError::Empty);
    }
    register_font();
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let stem = out.join(&report.run_id);
    let path = |suffix: &str| PathBuf::from(format!("{}-{suffix}", stem.display()));
    let mut written = Vec::new();
    let mut write_csv = |suffix: &str, csv: String| -> Result<(), ExportError> {
        let p = path(suffix);
        logitflow_store::home::write_atomic(&p, csv.as_bytes()).map_err(|e| write_err(&p, e))?;
        written.push(p);
        Ok(())
    };

    write_csv("loss.csv", loss_csv(report))?;
    if let Some(multiclass) = &report.metrics.multiclass {
        for (suffix, csv) in classes::csvs(&report.class_curves, multiclass) {
            write_csv(suffix, csv)?;
        }
        draw_loss_figure(&mut written, &path, report, log_scale)?;
        export_class_figures(&mut written, &path, report, multiclass)?;
        return Ok(written);
    }
    write_csv("roc.csv", roc_csv(report))?;
    let has_pr = !report.precision_recall.is_empty();
    if has_pr {
        write_csv("pr.csv", pr_csv(report))?;
    }
    let has_calibration = !report.calibration.is_empty();
    if has_calibration {
        write_csv("calibration.csv", calibration_csv(report))?;
    }
    draw_loss_figure(&mut written, &path, report, log_scale)?;
    draw_two_class_figures(&mut written, &path, report)?;
    Ok(written)
}

/// The loss curve, one row an epoch (`val_loss` empty without validation rows).
fn loss_csv(report: &RunReport) -> String {
    let mut csv = String::from("epoch,train_loss,val_loss\n");
    for p in &report.loss_curve {
        let val = p.val_loss.map_or(String::new(), |v| v.to_string());
        csv.push_str(&format!("{},{},{val}\n", p.epoch, p.train_loss));
    }
    csv
}

/// The ROC curve. The first point's threshold is "above every score" (f64::MAX in the report);
/// written as `inf`, as scikit-learn has it, so that pandas and numpy read the column as
/// numbers.
fn roc_csv(report: &RunReport) -> String {
    let mut csv = String::from("threshold,fpr,tpr\n");
    for p in &report.roc {
        let threshold =
            if p.threshold >= f64::MAX { "inf".to_string() } else { p.threshold.to_string() };
        csv.push_str(&format!("{threshold},{},{}\n", p.fpr, p.tpr));
    }
    csv
}

/// The precision-recall curve.
fn pr_csv(report: &RunReport) -> String {
    let mut csv = String::from("threshold,precision,recall\n");
    for p in &report.precision_recall {
        csv.push_str(&format!("{},{},{}\n", p.threshold, p.precision, p.recall));
    }
    csv
}

/// The reliability diagram's bins.
fn calibration_csv(report: &RunReport) -> String {
    let mut csv = String::from("lower,upper,rows,mean_probability,fraction_positive\n");
    for b in &report.calibration {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            b.lower, b.upper, b.rows, b.mean_probability, b.fraction_positive
        ));
    }
    csv
}

/// A two-class run's figures beside its loss: ROC, and where the report has them,
/// precision-recall, reliability, a penalised path and its cross-validation.
fn draw_two_class_figures(
    written: &mut Vec<PathBuf>,
    path: &dyn Fn(&str) -> PathBuf,
    report: &RunReport,
) -> Result<(), ExportError> {
    let (name, version) = (&report.model.name, report.model.version);
    let (has_pr, has_calibration) =
        (!report.precision_recall.is_empty(), !report.calibration.is_empty());
    let title =
        format!("{name} v{version} — ROC on the test split (AUC {:.4})", report.metrics.auc);
    png_and_svg!(written, path("roc"), (640, 600), |root| draw_roc(&root, report, &title));
    if has_pr {
        let title = format!(
            "{name} v{version} — precision-recall on the test split (AP {:.4})",
            report.metrics.pr_auc
        );
        png_and_svg!(written, path("pr"), (640, 600), |root| draw_precision_recall(
            &root, report, &title
        ));
    }
    if has_calibration {
        let title = format!(
            "{name} v{version} — reliability on the test split (Brier {:.4})",
            report.metrics.brier
        );
        png_and_svg!(written, path("calibration"), (640, 600), |root| draw_calibration(
            &root, report, &title
        ));
    }
    if let Some(lambda_path) = &report.model.fit.path {
        let terms: Vec<String> = report.model.coefficients.keys().cloned().collect();
        let title = format!(
            "{name} v{version} — coefficients along the path (α = {}, λ = {:.3e})",
            lambda_path.alpha, lambda_path.lambda
        );
        png_and_svg!(written, path("path"), (900, 600), |root| path::draw_path(
            &root,
            lambda_path,
            &terms,
            &title
        ));
    }
    if let Some(cv) = &report.model.fit.cv {
        let title = format!("{name} v{version} — {}-fold cross-validation", cv.folds);
        png_and_svg!(written, path("cv"), (900, 600), |root| path::draw_cv(&root, cv, &title));
    }
    Ok(())
}

/// The loss figure, `<run>-loss.{png,svg}` (`loss-log` on a log scale).
fn draw_loss_figure(
    written: &mut Vec<PathBuf>,
    path: &dyn Fn(&str) -> PathBuf,
    report: &RunReport,
    log_scale: bool,
) -> Result<(), ExportError> {
    let (name, version) = (&report.model.name, report.model.version);
    let scale = if log_scale { ", log scale" } else { "" };
    let title = match &report.model.fit.path {
        // A path's "epochs" are its λ, largest first.
        Some(_) => {
            format!("{name} v{version} — training loss at each λ of the path, largest first{scale}")
        }
        None => {
            format!("{name} v{version} — loss per epoch ({} solver{scale})", report.params.solver)
        }
    };
    png_and_svg!(written, path(if log_scale { "loss-log" } else { "loss" }), (900, 560), |root| {
        draw_loss(&root, report, &title, log_scale)
    });
    Ok(())
}

/// A K-class run's figures: each class's ROC, precision-recall and reliability curves against
/// the rest, and the confusion matrix as a heat map.
fn export_class_figures(
    written: &mut Vec<PathBuf>,
    path: &dyn Fn(&str) -> PathBuf,
    report: &RunReport,
    multiclass: &logitflow_core::metrics::MulticlassMetrics,
) -> Result<(), ExportError> {
    let (name, version, curves) = (&report.model.name, report.model.version, &report.class_curves);
    let title = format!(
        "{name} v{version} — ROC of each class against the rest (macro AUC {:.4})",
        multiclass.auc_macro
    );
    png_and_svg!(written, path("roc"), (700, 640), |root| classes::draw_roc(
        &root, curves, multiclass, &title
    ));
    let title = format!("{name} v{version} — precision-recall of each class against the rest");
    png_and_svg!(written, path("pr"), (700, 640), |root| classes::draw_precision_recall(
        &root, curves, multiclass, &title
    ));
    let title = format!(
        "{name} v{version} — reliability of each class (Brier {:.4})",
        report.metrics.brier
    );
    png_and_svg!(written, path("calibration"), (700, 640), |root| classes::draw_calibration(
        &root, curves, &title
    ));
    let title = format!(
        "{name} v{version} — confusion on the test split (accuracy {:.4})",
        report.metrics.accuracy
    );
    png_and_svg!(written, path("confusion"), (700, 640), |root| classes::draw_confusion(
        &root, multiclass, &title
    ));
    Ok(())
}

/// Writes `<a>-vs-<b>-loss.{csv,png,svg}` into `out`: both runs' training and validation
/// losses per epoch, in one plot.
pub fn export_comparison(
    a: &RunReport,
    b: &RunReport,
    out: &Path,
) -> Result<Vec<PathBuf>, ExportError> {
    if a.loss_curve.is_empty() || b.loss_curve.is_empty() {
        return Err(ExportError::Empty);
    }
    register_font();
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let stem = out.join(format!("{}-vs-{}-loss", a.run_id, b.run_id));
    let path = |extension: &str| PathBuf::from(format!("{}.{extension}", stem.display()));
    let mut written = Vec::new();
    let mut csv = String::from("epoch,a_train_loss,a_val_loss,b_train_loss,b_val_loss\n");
    let cell = |run: &RunReport, i: usize, val: bool| {
        run.loss_curve
            .get(i)
            .and_then(|p| if val { p.val_loss } else { Some(p.train_loss) })
            .map_or(String::new(), |v| v.to_string())
    };
    for i in 0..a.loss_curve.len().max(b.loss_curve.len()) {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            i + 1,
            cell(a, i, false),
            cell(a, i, true),
            cell(b, i, false),
            cell(b, i, true)
        ));
    }
    let csv_path = path("csv");
    logitflow_store::home::write_atomic(&csv_path, csv.as_bytes())
        .map_err(|e| write_err(&csv_path, e))?;
    written.push(csv_path);
    let title =
        format!("{} v{} and v{} — loss per epoch", a.model.name, a.model.version, b.model.version);
    png_and_svg!(written, stem, (900, 560), |root| draw_comparison(&root, a, b, &title));
    Ok(written)
}

fn draw_comparison<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    a: &RunReport,
    b: &RunReport,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let series = |run: &RunReport, val: bool| -> Vec<(f64, f64)> {
        run.loss_curve
            .iter()
            .filter_map(|p| {
                if val { p.val_loss } else { Some(p.train_loss) }.map(|v| (p.epoch as f64, v))
            })
            .collect()
    };
    let curves = [(a, false), (a, true), (b, false), (b, true)].map(|(run, val)| series(run, val));
    let all = curves.iter().flatten().map(|p| p.1).filter(|v| v.is_finite());
    let (lo, hi) =
        all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo * 1.0001 + 1e-12)) } else { (0.0, 1.0) };
    let pad = (hi - lo) * 0.05;
    let max_epoch = curves.iter().flatten().map(|p| p.0).fold(2.0, f64::max);
    // Runs of very different lengths (newton's 7 epochs beside SGD's 600) share a log epoch
    // axis, or the short one is a sliver at the left edge.
    let shortest = [a, b].iter().map(|r| r.loss_curve.len()).min().unwrap_or(1).max(1) as f64;
    let log_epochs = max_epoch / shortest >= 10.0;
    let title = if log_epochs { format!("{title} (log epoch axis)") } else { title.to_string() };
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70);
    let y_range = (lo - pad).max(0.0)..hi + pad;
    let describe = |run: &RunReport| {
        format!(
            "v{} {} lr {} l2 {}",
            run.model.version, run.params.solver, run.params.learning_rate, run.params.l2
        )
    };
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("mean log loss")
                .label_style(("sans-serif", 14))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| loss_label(*y))
                .light_line_style(BLACK.mix(0.04))
                .draw()?;
            let styles = [(BLUE, false), (BLUE, true), (RED, false), (RED, true)];
            for ((curve, (color, val)), run) in curves.iter().zip(styles).zip([a, a, b, b]) {
                if curve.is_empty() {
                    continue;
                }
                let label =
                    format!("{} {}", describe(run), if val { "validation" } else { "train" });
                let style = color.stroke_width(2);
                if val {
                    chart
                        .draw_series(DashedLineSeries::new(curve.clone(), 8, 5, style))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
                } else {
                    chart
                        .draw_series(LineSeries::new(curve.clone(), style))?
                        .label(label)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }};
    }
    if log_epochs {
        finish!(builder.build_cartesian_2d((1.0..max_epoch).log_scale(), y_range)?);
    } else {
        finish!(builder.build_cartesian_2d(1.0..max_epoch, y_range)?);
    }
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A loss as a tick label: three significant digits, without float noise.
fn loss_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if (0.001..1000.0).contains(&v.abs()) {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.2e}")
    }
}

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
    let train: Vec<(u32, f64)> =
        report.loss_curve.iter().map(|p| (p.epoch as u32, p.train_loss)).collect();
    let val: Vec<(u32, f64)> =
        report.loss_curve.iter().filter_map(|p| p.val_loss.map(|v| (p.epoch as u32, v))).collect();
    let all = train.iter().chain(&val).map(|p| p.1).filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) =
        all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo * 1.0001)) } else { (0.01, 1.0) };
    let max_epoch = train.last().map_or(1.0, |p| f64::from(p.0)).max(1.0);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70);
    macro_rules! finish {
        ($chart:expr, $train:expr, $val:expr, $label:expr) => {{
            let (train, val, label) = ($train, $val, $label);
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("mean log loss")
                .label_style(("sans-serif", 14))
                .y_label_formatter(&|y| label(*y))
                .light_line_style(BLACK.mix(0.04))
                .draw()?;
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
            // The best epoch (lowest validation loss, or training loss without validation), marked.
            if let Some(&(x, y)) = (if val.is_empty() { &train } else { &val })
                .iter()
                .min_by(|a, b| a.1.total_cmp(&b.1))
            {
                chart
                    .draw_series(std::iter::once(Circle::new((x, y), 5, BLACK.stroke_width(2))))?
                    .label(format!("best epoch {x}"))
                    .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }};
    }
    // Epochs are whole numbers: an integer axis has whole ticks.
    let epochs = 1u32..(max_epoch as u32).max(2);
    if log_scale {
        // log₁₀ of the loss on a linear axis, labelled with the loss itself: readable ticks
        // whether the loss spans decades or stays within one (plotters' own log axis puts ticks
        // at powers of ten only, so a loss within one decade had none).
        let to_log = |points: &[(u32, f64)]| -> Vec<(u32, f64)> {
            points.iter().filter(|p| p.1 > 0.0).map(|&(x, y)| (x, y.log10())).collect()
        };
        let (train, val) = (to_log(&train), to_log(&val));
        let (lo, hi) = (lo.log10(), hi.log10());
        let pad = ((hi - lo) * 0.05).max(1e-3);
        finish!(builder.build_cartesian_2d(epochs, lo - pad..hi + pad)?, train, val, |y: f64| {
            loss_label(10f64.powf(y))
        });
    } else {
        let pad = (hi - lo) * 0.05;
        finish!(
            builder.build_cartesian_2d(epochs, (lo - pad).max(0.0)..hi + pad)?,
            train,
            val,
            loss_label
        );
    }
    Ok(())
}

/// A chart over [0, 1] × [0, `y_max`], with its title, axis names and a light grid: the ROC,
/// precision-recall and reliability plots.
fn unit_chart<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    y_max: f64,
) -> Result<
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn std::error::Error>,
>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;
    Ok(chart)
}

/// The series' legend of a unit-square chart, where it covers no curve.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    at: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

fn draw_roc<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &RunReport,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(root, title, ("false positive rate", "true positive rate"), 1.0)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
    chart.draw_series(LineSeries::new(
        report.roc.iter().map(|p| (p.fpr, p.tpr)),
        BLUE.stroke_width(2),
    ))?;
    Ok(())
}

fn draw_precision_recall<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &RunReport,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(root, title, ("recall", "precision"), 1.02)?;
    // A model that guesses has the precision of the positive rate at every recall.
    let c = &report.metrics.confusion;
    let rows = (c.tp + c.fp + c.tn + c.fn_).max(1) as f64;
    let base = (c.tp + c.fn_) as f64 / rows;
    let chance = BLACK.mix(0.6).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new([(0.0, base), (1.0, base)], 6, 4, chance))?
        .label(format!("chance (the positive rate, {base:.3})"))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], chance));
    // Recall 0 at precision 1 starts the curve, as scikit-learn's does.
    let curve = std::iter::once((0.0, 1.0))
        .chain(report.precision_recall.iter().map(|p| (p.recall, p.precision)));
    chart
        .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))?
        .label("model")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    let m = &report.metrics;
    chart
        .draw_series(std::iter::once(Circle::new(
            (m.recall, m.precision),
            5,
            BLACK.stroke_width(2),
        )))?
        .label(format!("threshold {} (P {:.3}, R {:.3})", m.threshold, m.precision, m.recall))
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

fn draw_calibration<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    report: &RunReport,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(
        root,
        title,
        ("mean predicted probability (10 equal bins)", "fraction positive"),
        1.0,
    )?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?
        .label("calibrated")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    let points: Vec<(f64, f64)> =
        report.calibration.iter().map(|b| (b.mean_probability, b.fraction_positive)).collect();
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))?
        .label("model (rows per bin beside each point)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    // How many rows each point stands for (a bin of three rows says little), beside the point:
    // to its right, or to its left near the right edge; above it near the bottom edge, where
    // it would sit on the axis.
    chart.draw_series(report.calibration.iter().map(|b| {
        let dx = if b.mean_probability > 0.9 { -30 } else { 8 };
        let dy = if b.fraction_positive < 0.05 { -16 } else { 2 };
        EmptyElement::at((b.mean_probability, b.fraction_positive))
            + Text::new(format!("{}", b.rows), (dx, dy), ("sans-serif", 13))
    }))?;
    // Lower right: a bin there (confident of the positive class, mostly wrong) is the rarest,
    // while bins whose rows are all positive sit along the top, where the legend hid them.
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

#[cfg(test)]
mod tick_tests {
    #[test]
    fn loss_ticks_have_three_significant_digits_and_no_float_noise() {
        let labels: Vec<String> = [0.15, 0.30000000000000004, 0.0123, 2.5, 1e-5, 0.0]
            .into_iter()
            .map(super::loss_label)
            .collect();
        assert_eq!(labels, ["0.150", "0.300", "0.0123", "2.50", "1.00e-5", "0"]);
    }
}
