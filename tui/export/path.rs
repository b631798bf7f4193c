//! The figures of a penalised run: the coefficient paths against log₁₀ λ, and the
//! cross-validated deviance with its standard-error bars and λ_min and λ_1se marked, as glmnet's
//! `plot.glmnet` and `plot.cv.glmnet` draw them.

use logitflow_core::inference::PathReport;
use logitflow_core::logistic::path::CrossValidation;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::DrawResult;

/// The range of `values` with a margin, never empty.
fn padded(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    lo - pad..hi + pad
}

/// A white chart titled `title` over the range of `x` (log₁₀ λ) and `y`, its grid light.
fn against_log_lambda<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: &[f64],
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> Result<
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn std::error::Error>,
>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(padded(x.iter().copied()), y)?;
    chart
        .configure_mesh()
        .x_desc("log₁₀ λ")
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;
    Ok(chart)
}

/// Each term's coefficient (in the data's units) at every λ of the path, the held λ marked.
pub(super) fn draw_path<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    path: &PathReport,
    terms: &[String],
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let x: Vec<f64> = path.lambdas.iter().map(|l| l.log10()).collect();
    let y = padded(path.coefficients.iter().flat_map(|row| row.iter().skip(1).copied()));
    let mut chart = against_log_lambda(root, title, &x, y.clone(), "coefficient")?;
    for (j, name) in terms.iter().enumerate() {
        let colour = Palette99::pick(j).to_rgba();
        let line = x.iter().zip(&path.coefficients).map(|(x, row)| (*x, row[j + 1]));
        let series = chart.draw_series(LineSeries::new(line, colour.stroke_width(2)))?;
        // Only the terms kept at the held λ are named: the legend of 30 zeros says nothing.
        if path.nonzero_terms.contains(name) {
            series.label(name.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        }
    }
    let held = path.lambda.log10();
    chart.draw_series(LineSeries::new(
        [(held, y.start), (held, y.end)],
        BLACK.mix(0.6).stroke_width(1),
    ))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}

/// The mean held-out deviance per λ with ± one standard error, and λ_min and λ_1se as dashed
/// lines.
pub(super) fn draw_cv<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    cv: &CrossValidation,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let x: Vec<f64> = cv.lambdas.iter().map(|l| l.log10()).collect();
    let y = padded(cv.mean_deviance.iter().zip(&cv.std_error).flat_map(|(m, s)| [m - s, m + s]));
    let mut chart = against_log_lambda(root, title, &x, y.clone(), "binomial deviance (held out)")?;
    let bars = x.iter().zip(cv.mean_deviance.iter().zip(&cv.std_error)).map(|(x, (m, s))| {
        PathElement::new([(*x, m - s), (*x, m + s)], BLACK.mix(0.35).stroke_width(1))
    });
    chart.draw_series(bars)?;
    chart
        .draw_series(
            x.iter().zip(&cv.mean_deviance).map(|(x, m)| Circle::new((*x, *m), 3, RED.filled())),
        )?
        .label("mean deviance ± 1 s.e.")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    for (lambda, name, colour) in [(cv.lambda_min, "λ_min", BLUE), (cv.lambda_1se, "λ_1se", GREEN)]
    {
        let at = lambda.log10();
        chart
            .draw_series(DashedLineSeries::new(
                [(at, y.start), (at, y.end)],
                6,
                4,
                colour.stroke_width(2),
            ))?
            .label(format!("{name} = {lambda:.3e}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    super::legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
