//! A penalised path as it is fitted — [`PathChart`]: each term's coefficient against log₁₀ λ,
//! and the cross-validated deviance with its standard error, both growing λ by λ from the
//! epoch events; and [`render_path`], which draws them where the loss chart is.

use logitflow_core::logistic::PathEvent;
use logitflow_core::logistic::path::lambda_choices;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Widget};

/// Colours the coefficient lines cycle through.
const LINE_COLOURS: [Color; 6] =
    [Color::Cyan, Color::Magenta, Color::Green, Color::Yellow, Color::Blue, Color::Red];

/// The series of the two charts, kept as λ arrive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathChart {
    /// Per term: (log₁₀ λ, its weight on the scaled terms).
    pub coefficients: Vec<Vec<(f64, f64)>>,
    /// (log₁₀ λ, mean held-out deviance), and the mean ± one standard error.
    pub deviance: Vec<(f64, f64)>,
    pub upper: Vec<(f64, f64)>,
    pub lower: Vec<(f64, f64)>,
    /// The standard error of each mean deviance.
    pub std_error: Vec<f64>,
    /// λ so far, largest first.
    pub lambdas: Vec<f64>,
}

impl PathChart {
    /// Adds one λ's fit.
    pub fn push(&mut self, event: &PathEvent) {
        let x = event.lambda.log10();
        if self.coefficients.len() < event.weights.len() {
            self.coefficients.resize(event.weights.len(), Vec::new());
        }
        for (line, weight) in self.coefficients.iter_mut().zip(&event.weights) {
            line.push((x, *weight));
        }
        if let Some([mean, std_error]) = event.cv {
            self.deviance.push((x, mean));
            self.upper.push((x, mean + std_error));
            self.lower.push((x, mean - std_error));
            self.std_error.push(std_error);
        }
        self.lambdas.push(event.lambda);
    }

    pub fn is_empty(&self) -> bool {
        self.lambdas.is_empty()
    }

    /// The index of λ_min and λ_1se on the curve so far (cv.glmnet's rules, as the fit applies
    /// them).
    pub fn chosen(&self) -> Option<(usize, usize)> {
        let means: Vec<f64> = self.deviance.iter().map(|p| p.1).collect();
        lambda_choices(&means, &self.std_error)
    }

    /// The log₁₀ λ bounds, largest λ on the left as glmnet draws them.
    fn x_bounds(&self) -> [f64; 2] {
        let (first, last) = (
            self.lambdas.first().map_or(0.0, |l| l.log10()),
            self.lambdas.last().map_or(0.0, |l| l.log10()),
        );
        if first > last { [last, first] } else { [first - 1.0, first] }
    }
}

fn bounds<'a>(series: impl Iterator<Item = &'a (f64, f64)>) -> [f64; 2] {
    let (lo, hi) =
        series.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    if !(lo.is_finite() && hi.is_finite()) {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    [lo - pad, hi + pad]
}

/// The coefficient paths over the cross-validation curve (or alone, without one).
pub fn render_path(chart: &PathChart, title: &str, area: Rect, buf: &mut Buffer) {
    if chart.deviance.is_empty() {
        render_coefficients(chart, title, area, buf);
        return;
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    render_coefficients(chart, title, top, buf);
    render_deviance(chart, bottom, buf);
}

fn x_axis(chart: &PathChart) -> Axis<'static> {
    let [from, to] = chart.x_bounds();
    Axis::default().title("log₁₀ λ").bounds([from, to]).labels([
        format!("{from:.2}"),
        format!("{:.2}", (from + to) / 2.0),
        format!("{to:.2}"),
    ])
}

fn render_coefficients(chart: &PathChart, title: &str, area: Rect, buf: &mut Buffer) {
    let nonzero =
        chart.coefficients.iter().filter(|line| line.last().is_some_and(|p| p.1 != 0.0)).count();
    let head = format!(
        " {title} — {} λ, {nonzero} of {} terms non-zero ",
        chart.lambdas.len(),
        chart.coefficients.len()
    );
    let block = Block::bordered().title(head);
    if chart.is_empty() {
        Paragraph::new("the path starts…").block(block).render(area, buf);
        return;
    }
    let datasets: Vec<Dataset> = chart
        .coefficients
        .iter()
        .enumerate()
        .map(|(j, line)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(LINE_COLOURS[j % LINE_COLOURS.len()]))
                .data(line)
        })
        .collect();
    let [lo, hi] = bounds(chart.coefficients.iter().flatten());
    Chart::new(datasets)
        .block(block)
        .x_axis(x_axis(chart))
        .y_axis(
            Axis::default()
                .title("coef")
                .bounds([lo, hi])
                .labels([format!("{lo:.2}"), format!("{hi:.2}")]),
        )
        .render(area, buf);
}

fn render_deviance(chart: &PathChart, area: Rect, buf: &mut Buffer) {
    let chosen = chart.chosen();
    let marks: Vec<(f64, f64)> = chosen
        .map_or_else(Vec::new, |(min, one_se)| vec![chart.deviance[min], chart.deviance[one_se]]);
    let head = match chosen {
        Some((min, one_se)) => format!(
            " CV deviance ± 1 s.e. — λ_min {:.3e} ({:.4}), λ_1se {:.3e} ",
            chart.lambdas[min], chart.deviance[min].1, chart.lambdas[one_se]
        ),
        None => " CV deviance ± 1 s.e. ".to_string(),
    };
    let band = |data: &'static str, series| {
        Dataset::default()
            .name(data)
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::DarkGray))
            .data(series)
    };
    let datasets = vec![
        band("+1 s.e.", &chart.upper),
        band("−1 s.e.", &chart.lower),
        Dataset::default()
            .name("mean")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Red).bold())
            .data(&chart.deviance),
        Dataset::default()
            .name("λ_min, λ_1se")
            .marker(Marker::Block)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::Yellow))
            .data(&marks),
    ];
    let [lo, hi] = bounds(chart.upper.iter().chain(&chart.lower));
    Chart::new(datasets)
        .block(Block::bordered().title(head))
        .x_axis(x_axis(chart))
        .y_axis(
            Axis::default()
                .title("deviance")
                .bounds([lo, hi])
                .labels([format!("{lo:.3}"), format!("{hi:.3}")]),
        )
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(lambda: f64, weights: Vec<f64>, cv: [f64; 2]) -> PathEvent {
        PathEvent { lambda, weights, cv: Some(cv) }
    }

    #[test]
    fn the_charts_grow_by_one_lambda_and_mark_the_choices() {
        let mut chart = PathChart::default();
        chart.push(&event(1.0, vec![0.0, 0.0], [1.30, 0.05]));
        chart.push(&event(0.1, vec![0.5, 0.0], [1.00, 0.05]));
        chart.push(&event(0.01, vec![0.9, -0.2], [0.98, 0.05]));
        assert_eq!(chart.coefficients[0], vec![(0.0, 0.0), (-1.0, 0.5), (-2.0, 0.9)]);
        assert_eq!(chart.deviance.len(), 3);
        // λ_min is the lowest mean; λ_1se the largest λ within one standard error of it.
        assert_eq!(chart.chosen(), Some((2, 1)));
        let area = Rect::new(0, 0, 70, 24);
        let mut buf = Buffer::empty(area);
        render_path(&chart, "Path", area, &mut buf);
        let text: String = buf.content().iter().map(|c| c.symbol()).collect();
        assert!(text.contains("3 λ, 2 of 2 terms non-zero"), "{text}");
        assert!(text.contains("λ_min 1.000e-2 (0.9800), λ_1se 1.000e-1"), "{text}");
    }
}
