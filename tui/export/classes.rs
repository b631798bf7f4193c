//! The figures of a K-class run: each class's ROC, precision-recall and reliability curve
//! against the rest, one figure per kind with a curve per class, and the confusion matrix as a
//! heat map; their data as CSV, a `class` column naming each curve's class.

use super::{DrawResult, legend, unit_chart};
use logitflow_core::metrics::MulticlassMetrics;
use logitflow_kit::wire::ClassCurves;
use plotters::prelude::*;

/// The colour of class `c`'s curve.
pub(super) fn colour(c: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[c % PALETTE.len()]
}

/// The CSVs: `roc` (class, threshold, fpr, tpr), `pr` (class, threshold, precision, recall),
/// `calibration` (class and the bin) and `confusion` (true class, then a column per predicted).
pub(super) fn csvs(
    curves: &[ClassCurves],
    multiclass: &MulticlassMetrics,
) -> [(&'static str, String); 4] {
    let (mut roc, mut pr, mut calibration) = (
        String::from("class,threshold,fpr,tpr\n"),
        String::from("class,threshold,precision,recall\n"),
        String::from("class,lower,upper,rows,mean_probability,fraction_positive\n"),
    );
    for c in curves {
        let class = csv_text(&c.class);
        for p in &c.roc {
            let threshold =
                if p.threshold >= f64::MAX { "inf".to_string() } else { p.threshold.to_string() };
            roc.push_str(&format!("{class},{threshold},{},{}\n", p.fpr, p.tpr));
        }
        for p in &c.precision_recall {
            pr.push_str(&format!("{class},{},{},{}\n", p.threshold, p.precision, p.recall));
        }
        for b in &c.calibration {
            calibration.push_str(&format!(
                "{class},{},{},{},{},{}\n",
                b.lower, b.upper, b.rows, b.mean_probability, b.fraction_positive
            ));
        }
    }
    let names: Vec<String> = multiclass.classes.iter().map(|c| csv_text(&c.class)).collect();
    let mut confusion = format!("true\\predicted,{}\n", names.join(","));
    for (name, row) in names.iter().zip(&multiclass.confusion) {
        let counts: Vec<String> = row.iter().map(u64::to_string).collect();
        confusion.push_str(&format!("{name},{}\n", counts.join(",")));
    }
    [
        ("roc.csv", roc),
        ("pr.csv", pr),
        ("calibration.csv", calibration),
        ("confusion.csv", confusion),
    ]
}

/// A class name as a CSV field: quoted, its quotes doubled, when it must be.
fn csv_text(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Each class's ROC curve against the rest, its AUC in the legend.
pub(super) fn draw_roc<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[ClassCurves],
    multiclass: &MulticlassMetrics,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(root, title, ("false positive rate", "true positive rate"), 1.0)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
    for (c, (curve, metrics)) in curves.iter().zip(&multiclass.classes).enumerate() {
        let style = colour(c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(curve.roc.iter().map(|p| (p.fpr, p.tpr)), style))?
            .label(format!("{} (AUC {:.4})", curve.class, metrics.auc))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Each class's precision-recall curve against the rest, its average precision in the legend.
pub(super) fn draw_precision_recall<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[ClassCurves],
    multiclass: &MulticlassMetrics,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(root, title, ("recall", "precision"), 1.02)?;
    for (c, (curve, metrics)) in curves.iter().zip(&multiclass.classes).enumerate() {
        let style = colour(c).stroke_width(2);
        let points = std::iter::once((0.0, 1.0))
            .chain(curve.precision_recall.iter().map(|p| (p.recall, p.precision)));
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(format!("{} (AP {:.4})", curve.class, metrics.average_precision))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

/// Each class's reliability diagram against the rest: its mean predicted probability per bin
/// against the fraction of the bin's rows that are of the class.
pub(super) fn draw_calibration<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[ClassCurves],
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut chart = unit_chart(
        root,
        title,
        ("mean predicted probability of the class (10 equal bins)", "fraction of the class"),
        1.0,
    )?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?
        .label("calibrated")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    for (c, curve) in curves.iter().enumerate() {
        let style = colour(c).stroke_width(2);
        let points: Vec<(f64, f64)> =
            curve.calibration.iter().map(|b| (b.mean_probability, b.fraction_positive)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style))?
            .label(curve.class.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour(c).filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// The confusion matrix as a heat map: a row per true class, a column per predicted class, each
/// cell shaded by its share of its row and labelled with its count.
pub(super) fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    multiclass: &MulticlassMetrics,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let k = multiclass.classes.len();
    let names: Vec<String> = multiclass.classes.iter().map(|c| c.class.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..k as f64, 0.0..k as f64)?;
    let name_of = |v: &f64, flip: bool| {
        let i = v.floor() as usize;
        let i = if flip { k.saturating_sub(1 + i) } else { i };
        if (v - v.floor() - 0.5).abs() < 1e-9 {
            names.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(2 * k + 1)
        .y_labels(2 * k + 1)
        .x_label_formatter(&|v| name_of(v, false))
        .y_label_formatter(&|v| name_of(v, true))
        .x_desc("predicted class")
        .y_desc("true class")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (t, row) in multiclass.confusion.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        // The first true class at the top, as scikit-learn's ConfusionMatrixDisplay draws it.
        let y = (k - 1 - t) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = RGBColor(255 - (share * 200.0) as u8, 255 - (share * 150.0) as u8, 255);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(p as f64, y), (p as f64 + 1.0, y + 1.0)],
                shade.filled(),
            )))?;
            let ink = if share > 0.6 { WHITE } else { BLACK };
            let label = Text::new(
                count.to_string(),
                (p as f64 + 0.5, y + 0.5),
                ("sans-serif", 18).into_font().color(&ink).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            );
            chart.draw_series(std::iter::once(label))?;
        }
    }
    Ok(())
}
