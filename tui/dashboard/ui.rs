//! Rendering: `impl Widget for &App`. Pure — it reads the state and draws; no I/O.

use super::app::{Answer, App, Focus, Overlay, ParamsForm, StageState};
use crate::cli::with_flag_hints;
use crate::numbers::readable;
use crate::supervisor::Status;
use logitflow_core::scale::Value;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Widget, Wrap,
};

/// The smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let text = format!(
                "logitflow needs a terminal of at least {MIN_WIDTH}×{MIN_HEIGHT}; this one is {}×{}.",
                area.width, area.height
            );
            Paragraph::new(text).wrap(Wrap { trim: true }).render(area, buf);
            return;
        }
        let [top, middle, bottom, status, footer] = Layout::vertical([
            Constraint::Length(11),
            Constraint::Min(5),
            // The answers and advisor's line below them, where the screen is tall enough; a
            // K-class model's answer is a bar per class.
            Constraint::Length(answer_height(self, area.height)),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let [services, pipeline] = if area.width < 100 {
            Layout::horizontal([Constraint::Length(area.width - 22), Constraint::Length(22)])
                .areas(top)
        } else {
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(top)
        };
        let [chart, model] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(middle);
        let [predict, answer] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(bottom);
        render_services(self, services, buf);
        render_pipeline(self, pipeline, buf);
        render_chart(self, chart, buf);
        render_model(self, model, buf);
        render_predict(self, predict, buf);
        render_answers(self, answer, buf);
        Paragraph::new(Line::from(self.status.clone()))
            .style(Style::new().fg(Color::Yellow))
            .render(status, buf);
        Paragraph::new(footer_keys(self, area.width))
            .style(Style::new().fg(Color::DarkGray))
            .render(footer, buf);
        match self.overlay {
            Overlay::None => {}
            Overlay::Help => render_help(area, buf),
            Overlay::Logs => render_logs(self, area, buf),
            Overlay::Params => render_form(self, area, buf),
            Overlay::ConfirmQuit => render_confirm(area, buf),
            Overlay::ConfirmCancel => render_confirm_cancel(self, area, buf),
            Overlay::PredictForm => render_predict_form(self, area, buf),
            Overlay::Runs => render_runs(self, area, buf),
            Overlay::Coefficients => render_coefficients(self, area, buf),
            Overlay::SweepForm => render_sweep_form(self, area, buf),
            Overlay::Score => render_score_form(self, area, buf),
            Overlay::Sweep => render_sweep(self, area, buf),
            Overlay::RunView => render_run_view(self, area, buf),
            Overlay::ConfirmPromote => render_confirm_promote(self, area, buf),
        }
    }
}

fn status_style(status: Status) -> Style {
    match status {
        Status::Ready => Style::new().fg(Color::Green),
        Status::Starting | Status::Restarting => Style::new().fg(Color::Yellow),
        Status::Unhealthy | Status::Failed => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        Status::Stopped => Style::new().fg(Color::DarkGray),
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b => format!("{}K", b >> 10),
    }
}

fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn render_services(app: &App, area: Rect, buf: &mut Buffer) {
    // Below 100 columns the port, restarts and probe columns make way for the rest.
    let wide = area.width >= 70;
    let rows = app.services.iter().enumerate().map(|(i, s)| {
        let (cpu, mem) = match s.pid.and_then(|p| app.stats.get(&p)) {
            Some((c, m)) => (format!("{c:.1}"), human_bytes(*m)),
            None => ("-".into(), s.reported_memory.map_or("-".into(), human_bytes)),
        };
        let mut cells = vec![
            Cell::from(s.name.as_str()),
            Cell::from(s.status.as_str()).style(status_style(s.status)),
            Cell::from(s.pid.map_or("-".into(), |p| p.to_string())),
            Cell::from(s.addr.map_or("-".into(), |a| a.port().to_string())),
            Cell::from(app.uptime(s).map_or("-".into(), human_duration)),
            Cell::from(s.restarts.to_string()),
            Cell::from(cpu),
            Cell::from(mem),
        ];
        if wide {
            cells.push(Cell::from(
                s.last_probe.map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1e3)),
            ));
        }
        let row = Row::new(cells);
        if i == app.selected && app.focus == Focus::Services {
            row.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let mut widths = vec![
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Length(if wide { 5 } else { 4 }),
        Constraint::Length(if wide { 6 } else { 5 }),
    ];
    let mut names = vec!["service", "status", "pid", "port", "up", "rst", "cpu%", "mem"];
    if wide {
        widths.push(Constraint::Min(6));
        names.push("probe");
    }
    let header = Row::new(names).style(Style::new().bold());
    let ready = app.services.iter().filter(|s| s.status == Status::Ready).count();
    Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::bordered().title(format!(
            " Services {ready}/{} ready{} ",
            app.services.len(),
            grpc_title(app)
        )))
        .render(area, buf);
}

#[cfg(test)]
pub(super) fn render_services_for_test(app: &App, area: Rect, buf: &mut Buffer) {
    render_services(app, area, buf);
}

fn render_pipeline(app: &App, area: Rect, buf: &mut Buffer) {
    let narrow = area.width < 34;
    let lines: Vec<Line> = app
        .stages
        .iter()
        .map(|(stage, state)| {
            let (mark, style, text) = match state {
                StageState::Waiting => {
                    ("·", Style::new().fg(Color::DarkGray), "waiting".to_string())
                }
                StageState::Running => ("▶", Style::new().fg(Color::Yellow), "running".to_string()),
                StageState::Done { ms, cached, .. } if narrow => (
                    "✓",
                    Style::new().fg(Color::Green),
                    format!("{ms:>4.0}ms{}", if *cached { " c" } else { "" }),
                ),
                StageState::Done { ms, cached, .. } => (
                    "✓",
                    Style::new().fg(Color::Green),
                    format!("{ms:>7.1} ms{}", if *cached { " cached" } else { "" }),
                ),
                StageState::Failed(e) => ("✗", Style::new().fg(Color::Red), format!("failed: {e}")),
            };
            let name = if narrow {
                format!("{mark}{:<11}", stage.as_str())
            } else {
                format!("{mark} {:<11}", stage.as_str())
            };
            Line::from(vec![Span::styled(name, style), Span::raw(text)])
        })
        .collect();
    let title = if narrow { " Pipeline (c=cached) " } else { " Pipeline " };
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(title))
        .render(area, buf);
}

fn render_chart(app: &App, area: Rect, buf: &mut Buffer) {
    if !app.path.is_empty() {
        let penalty = match app.params.penalty {
            logitflow_core::logistic::Penalty::Elasticnet => {
                format!("elastic net α = {}", app.params.l1_ratio.unwrap_or(f64::NAN))
            }
            penalty => penalty.name().to_uppercase(),
        };
        super::path::render_path(&app.path, &format!("Path — {penalty}"), area, buf);
        return;
    }
    let chart = &app.chart;
    // Once the run is over, why it stopped (the whole reason is in the help and `run`'s report);
    // while it runs, its pace and the time the epochs left would take at it.
    let state = match (&app.last_report, app.training, app.pace) {
        (_, true, Some((per_second, left))) => {
            format!(" · {} · ≤{} left", per_second_text(per_second), duration_text(left))
        }
        (Some(report), false, _) => format!(" · {}", report.stop_reason.short()),
        _ => String::new(),
    };
    let best = chart
        .best
        .map_or_else(String::new, |(epoch, loss)| format!(" · best {epoch:.0} ({loss:.4})"));
    let view_parts: Vec<&str> = [
        (app.log_scale, "log₁₀"),
        (app.loss_window, "latest epochs"),
        (app.loss_smoothing, "smoothed"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let view =
        if view_parts.is_empty() { String::new() } else { format!(" ({})", view_parts.join(", ")) };
    // The solver that ran, once a run is over: what `auto` chose ("auto → newton").
    let solver = match &app.last_report {
        Some(report) if !app.training => match &report.model.fit.solver_choice {
            Some(choice) => format!("auto → {}", choice.solver),
            None => report.params.solver.to_string(),
        },
        _ => app.params.solver.to_string(),
    };
    let head = format!(
        " Loss{view} — {solver} {}/{} epochs",
        app.train_curve.len(),
        if app.epochs_planned > 0 { app.epochs_planned } else { app.train_curve.len() }
    );
    let short_best =
        chart.best.map_or_else(String::new, |(epoch, _)| format!(" · best {epoch:.0}"));
    // The longest title that fits the border: the best epoch's loss goes first, then the epoch.
    let room = area.width.saturating_sub(2) as usize;
    let title = [
        format!("{head}{state}{best} "),
        format!("{head}{state}{short_best} "),
        format!("{head}{state} "),
        format!("{head} "),
    ]
    .into_iter()
    .find(|t| t.chars().count() <= room)
    .unwrap_or_else(|| format!("{head} "));
    let block = Block::bordered().title(title);
    if chart.train.is_empty() && chart.previous.is_empty() {
        Paragraph::new("no training yet — press t").block(block).render(area, buf);
        return;
    }
    let [lo, hi] = chart.y;
    let [from, to] = chart.x;
    let label =
        |v: f64| if app.log_scale { format!("{:.3}", 10f64.powf(v)) } else { format!("{v:.3}") };
    let mut datasets = Vec::new();
    if !chart.previous.is_empty() {
        datasets.push(
            Dataset::default()
                .name("previous")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::DarkGray))
                .data(&chart.previous),
        );
    }
    datasets.push(
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan).bold())
            .data(&chart.train),
    );
    if !chart.val.is_empty() {
        datasets.push(
            Dataset::default()
                .name("validation")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Magenta).bold())
                .data(&chart.val),
        );
    }
    if !chart.best_point.is_empty() {
        datasets.push(
            Dataset::default()
                .name("best")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Yellow))
                .data(&chart.best_point),
        );
    }
    Chart::new(datasets)
        .block(block)
        .x_axis(Axis::default().title("epoch").bounds([from, to]).labels([
            format!("{from:.0}"),
            format!("{:.0}", (from + to) / 2.0),
            format!("{to:.0}"),
        ]))
        .y_axis(Axis::default().title("loss").bounds([lo, hi]).labels([
            label(lo),
            label((lo + hi) / 2.0),
            label(hi),
        ]))
        .render(area, buf);
}

fn per_second_text(per_second: f64) -> String {
    if per_second >= 10.0 {
        format!("{per_second:.0} epochs/s")
    } else {
        format!("{per_second:.1} epochs/s")
    }
}

fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn render_model(app: &App, area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Line> = Vec::new();
    let aliases = app
        .versions
        .as_ref()
        .map(|v| {
            v.entry.aliases.iter().map(|(a, n)| format!("{a}=v{n}")).collect::<Vec<_>>().join(" ")
        })
        .unwrap_or_default();
    let (metrics, version, coefficients, intercept, previous) =
        match (&app.evaluation, &app.last_report) {
            (Some(e), _) => (
                Some(&e.metrics),
                Some(e.version),
                Some(&e.coefficients),
                e.intercept,
                e.previous.as_ref().map(|p| &p.metrics),
            ),
            (None, Some(r)) => (
                Some(&r.metrics),
                Some(r.model.version),
                Some(&r.model.coefficients),
                r.model.intercept,
                None,
            ),
            _ => (None, None, None, 0.0, None),
        };
    let Some(m) = metrics else {
        Paragraph::new("no model yet").block(Block::bordered().title(" Model ")).render(area, buf);
        return;
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{} v{}", app.model_name, version.unwrap_or(0)), Style::new().bold()),
        Span::raw(format!("  {aliases}")),
    ]));
    // The figures below are the last trained version's; when another one is stable (after a
    // rollback, or a version kept as candidate), say so and give the stable one's figures first.
    let stable = app.versions.as_ref().and_then(|v| {
        let n = *v.entry.aliases.get(logitflow_store::registry::STABLE)?;
        Some((n, v.entry.version(n)?.metrics.clone()?))
    });
    if let Some((n, sm)) = stable.filter(|(n, _)| Some(*n) != version) {
        let text = if area.width >= 46 {
            format!("stable v{n}: acc {:.4} auc {:.4} loss {:.4}", sm.accuracy, sm.auc, sm.log_loss)
        } else if area.width >= 36 {
            format!("stable v{n}: acc {:.4} auc {:.4}", sm.accuracy, sm.auc)
        } else {
            format!("stable v{n}: acc {:.4}", sm.accuracy)
        };
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Yellow))));
        lines.push(Line::from(format!("v{} (last trained):", version.unwrap_or(0))));
    }
    let delta = |now: f64, before: Option<f64>| {
        before.map_or(String::new(), |b| format!(" ({:+.4})", now - b))
    };
    lines.push(Line::from(format!(
        "acc {:.4}{}  auc {:.4}{}",
        m.accuracy,
        delta(m.accuracy, previous.map(|p| p.accuracy)),
        m.auc,
        delta(m.auc, previous.map(|p| p.auc))
    )));
    // "prec … rec … F1 …" takes 29 columns; the Model panel has 28 inside at 80 columns. They are
    // the positive class's, which is named where it fits ("admitted: prec …"), so a reader
    // knows which class the probabilities and decisions are of.
    let scores = format!("prec {:.3} rec {:.3} F1 {:.3}", m.precision, m.recall, m.f1);
    // A K-class model's are the means over its classes.
    let positive = if m.multiclass.is_some() { "macro" } else { app.class_names().1 };
    lines.push(Line::from(
        if usize::from(area.width) >= scores.len() + positive.chars().count() + 4 {
            format!("{positive}: {scores}")
        } else if area.width >= 31 {
            scores
        } else {
            format!("P {:.3}  R {:.3}  F1 {:.3}", m.precision, m.recall, m.f1)
        },
    ));
    lines.push(Line::from(format!(
        "log loss {:.4}{}",
        m.log_loss,
        delta(m.log_loss, previous.map(|p| p.log_loss))
    )));
    // The last run's report, when it is of the version shown. An iterative fit that stopped
    // away from the optimum says how far, so its estimates are not read as exact.
    let shown = app.last_report.as_ref().filter(|r| Some(r.model.version) == version);
    if let Some(o) = shown.and_then(|r| r.model.fit.optimality.as_ref()) {
        let text = format!("train loss {:.3}% above optimum", o.gap_percent.max(0.0));
        lines.push(Line::from(Span::styled(text, Style::new().fg(Color::Yellow))));
    }
    let c = &m.confusion;
    let confusion = match &m.multiclass {
        Some(multiclass) => class_confusion_lines(multiclass, area.width.saturating_sub(2)),
        None => vec![
            Line::from(format!("confusion  tp {:<4} fp {:<4}", c.tp, c.fp)),
            Line::from(format!("           fn {:<4} tn {:<4}", c.fn_, c.tn)),
        ],
    };
    let block = Block::bordered().title(" Model ");
    let inner = block.inner(area);
    // The coefficient table of an exact fit (standard errors and the rest), for the version
    // shown; an iterative fit has its estimates only. A K-class model's, of the class shown.
    let terms = shown.and(app.shown_terms());
    let class_heading = app.shown_class_table().map(|(_, of)| {
        Line::from(vec![
            Span::styled(of, Style::new().bold()),
            Span::styled("  K: next class", Style::new().fg(Color::DarkGray)),
        ])
    });
    // On a short panel the confusion matrix gives way to the table.
    if terms.is_none() || inner.height as usize >= lines.len() + confusion.len() + 5 {
        lines.extend(confusion);
    }
    for (version, why) in &app.unavailable {
        // The store's words are long ("artifact … is corrupt: model.json does not match …").
        let short = if why.contains("corrupt") {
            "corrupt artifact"
        } else if why.contains("no artifact") {
            "missing artifact"
        } else {
            why.as_str()
        };
        lines.push(Line::from(Span::styled(
            format!("v{version} unavailable: {short}"),
            Style::new().fg(Color::Red),
        )));
    }
    match terms {
        Some(terms) => {
            let ratio = if class_heading.is_some() { "RRR" } else { "OR" };
            lines.extend(class_heading);
            let room = (inner.height as usize).saturating_sub(lines.len());
            lines.extend(coefficient_table(&terms, (inner.width as usize, room), ratio));
        }
        None => {
            lines.push(Line::from(format!("θ0 {}", readable(intercept, 4))));
            for (name, theta) in coefficients.into_iter().flatten() {
                lines.push(Line::from(format!("θ {name} {}", readable(*theta, 4))));
            }
        }
    }
    block.render(area, buf);
    let text_height = lines.len() as u16;
    // Below the numbers, when there is room: the fitted curve over the test data.
    if !app.fit_curve.is_empty() && inner.height >= text_height + 7 {
        let [text, chart] =
            Layout::vertical([Constraint::Length(text_height), Constraint::Min(6)]).areas(inner);
        Paragraph::new(lines).render(text, buf);
        render_fit(app, chart, buf);
    } else {
        Paragraph::new(lines).render(inner, buf);
    }
}

/// A K-class model's confusion as a grid: a row per true class, a column per predicted class,
/// each headed by the class's name cut to the cell's width.
fn class_confusion_lines(
    multiclass: &logitflow_core::metrics::MulticlassMetrics,
    width: u16,
) -> Vec<Line<'static>> {
    let k = multiclass.classes.len();
    let name_width =
        multiclass.classes.iter().map(|c| c.class.chars().count()).max().unwrap_or(1).clamp(1, 10);
    let counts =
        multiclass.confusion.iter().flatten().map(|n| n.to_string().len()).max().unwrap_or(1);
    let cell = (usize::from(width).saturating_sub(name_width + 1) / k.max(1))
        .saturating_sub(1)
        .clamp(counts, 8);
    let cut = |name: &str, width: usize| name.chars().take(width).collect::<String>();
    let mut lines = vec![Line::from(Span::styled(
        "confusion: true ↓ predicted →",
        Style::new().fg(Color::DarkGray),
    ))];
    let heads: String =
        multiclass.classes.iter().map(|c| format!(" {:>cell$}", cut(&c.class, cell))).collect();
    lines.push(Line::from(format!("{:name_width$}{heads}", "")));
    for (c, row) in multiclass.classes.iter().zip(&multiclass.confusion) {
        let counts: String = row.iter().map(|n| format!(" {n:>cell$}")).collect();
        lines.push(Line::from(format!("{:<name_width$}{counts}", cut(&c.class, name_width))));
    }
    lines
}

/// The coefficient table in term order — estimate, standard error, p-value and odds ratio as
/// `width` allows (the estimate and p-value always) — in at most `room` lines, the last saying
/// how many terms did not fit; below three lines, only how many terms there are.
/// `ratio` heads the ratio's column: "OR", or "RRR" for a K-class model's relative-risk ratio.
fn coefficient_table(
    terms: &[&logitflow_core::inference::TermStatistics],
    (width, room): (usize, usize),
    ratio: &str,
) -> Vec<Line<'static>> {
    let wide = width >= 42;
    let numbers = if wide { 31 } else { 16 };
    let name_width = width.saturating_sub(numbers + 1).max(4);
    let p_value = |p: Option<f64>| match p {
        Some(p) if p < 1e-4 => "<1e-4".to_string(),
        Some(p) => format!("{p:.4}"),
        None => "-".to_string(),
    };
    // Four decimals while they fit the column, fewer for large numbers (an intercept of a few
    // hundred), significant digits for small ones (readable), else the exponent form.
    let number = |v: f64, width: usize, most: usize| {
        let decimals = (0..=most).rev().map(|d| readable(v, d)).find(|t| t.len() <= width);
        decimals.unwrap_or_else(|| format!("{v:.1e}"))
    };
    let or_na = |v: Option<f64>, width: usize, most: usize| {
        v.map_or_else(|| "-".to_string(), |v| number(v, width, most))
    };
    // A long name keeps its start and its end ("species=…Gentoo"): levels of one feature
    // differ at the end.
    let fit = |name: &str| {
        let chars: Vec<char> = name.chars().collect();
        if chars.len() <= name_width {
            return format!("{name:<name_width$}");
        }
        let head = (name_width - 1) / 2;
        let tail = name_width - 1 - head;
        chars[..head].iter().chain(['…'].iter()).chain(chars[chars.len() - tail..].iter()).collect()
    };
    let mut lines = vec![Line::from(Span::styled(
        if wide {
            format!("{} {:>8} {:>7} {:>6} {:>7}", fit("term"), "coef", "se", "p", ratio)
        } else {
            format!("{} {:>8} {:>6}", fit("term"), "coef", "p")
        },
        Style::new().bold(),
    ))];
    if room < 3 {
        return vec![Line::from(Span::styled(
            format!("{} terms: a taller terminal shows them", terms.len()),
            Style::new().fg(Color::DarkGray),
        ))];
    }
    let shown = if terms.len() < room { terms.len() } else { room - 2 };
    for t in &terms[..shown] {
        lines.push(Line::from(if wide {
            format!(
                "{} {:>8} {:>7} {:>6} {:>7}",
                fit(&t.term),
                number(t.estimate, 8, 4),
                or_na(t.std_error, 7, 4),
                p_value(t.p_value),
                or_na(
                    t.odds_ratio.filter(|_| t.term != logitflow_core::inference::INTERCEPT),
                    7,
                    3
                )
            )
        } else {
            format!("{} {:>8} {:>6}", fit(&t.term), number(t.estimate, 8, 4), p_value(t.p_value))
        }));
    }
    if shown < terms.len() {
        lines.push(Line::from(Span::styled(
            format!("+{} more terms: C shows them all", terms.len() - shown),
            Style::new().fg(Color::DarkGray),
        )));
    }
    lines
}

/// The fitted sigmoid (line), the test rows at 0 and 1 (dots), and the queried point (×).
fn render_fit(app: &App, area: Rect, buf: &mut Buffer) {
    let (lo, hi) =
        (app.fit_curve.first().map_or(0.0, |p| p.0), app.fit_curve.last().map_or(1.0, |p| p.0));
    let query: Vec<(f64, f64)> =
        app.fit_query.iter().copied().filter(|(x, _)| (lo..=hi).contains(x)).collect();
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::DarkGray))
            .data(&app.fit_points),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&app.fit_curve),
    ];
    if !query.is_empty() {
        datasets.push(
            Dataset::default()
                .name("query")
                .marker(Marker::Block)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::Yellow))
                .data(&query),
        );
    }
    let name = app.feature_names.first().map_or("x", String::as_str);
    Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(name)
                .bounds([lo, hi])
                .labels([format!("{lo:.0}"), format!("{hi:.0}")]),
        )
        .y_axis(Axis::default().bounds([0.0, 1.0]).labels(["0", "1"]))
        .render(area, buf);
}

/// serve's gRPC port, for the Services panel's title.
fn grpc_title(app: &App) -> String {
    app.services
        .iter()
        .find_map(|s| s.grpc_addr)
        .map_or_else(String::new, |addr| format!(" · serve gRPC {}", addr.port()))
}

fn render_predict(app: &App, area: Rect, buf: &mut Buffer) {
    if app.feature_names.len() > 1 {
        // Many features are entered in the form (p); this shows the row last asked about.
        let asked = app.last_query.as_ref().map_or_else(
            || "nothing asked yet".to_string(),
            |row| {
                row.iter()
                    .map(|v| match v {
                        Value::Number(x) => x.to_string(),
                        Value::Text(t) => t.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        let lines = vec![
            Line::from(format!("p: a field for each of the {} features", app.feature_names.len())),
            Line::from(format!("> {asked}")),
        ];
        Paragraph::new(lines).block(Block::bordered().title(" Predict ")).render(area, buf);
        return;
    }
    let focused = app.focus == Focus::Predict;
    let hint = if app.feature_names.is_empty() {
        "value per feature".to_string()
    } else {
        app.feature_names.join(", ")
    };
    let cursor = if focused { "█" } else { "" };
    // The names on one line, what is typed on the next, its end kept in view as it grows.
    let room = area.width.saturating_sub(5) as usize;
    let typed: Vec<char> = app.predict_input.chars().collect();
    let shown: String = typed[typed.len().saturating_sub(room)..].iter().collect();
    let lines = vec![
        Line::from(format!("{hint}:")),
        Line::from(vec![
            Span::raw("> "),
            Span::styled(format!("{shown}{cursor}"), Style::new().bold()),
        ]),
    ];
    let block = Block::bordered().title(" Predict ").border_style(if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    });
    Paragraph::new(lines).block(block).render(area, buf);
}

/// The Answer panel's height: 5 rows where the screen is tall enough, else 4; for a K-class
/// model, room for a bar per class (up to 9 rows).
fn answer_height(app: &App, screen_height: u16) -> u16 {
    let two_class = if screen_height >= 36 { 5 } else { 4 };
    let k = app.class_count();
    if k <= 2 {
        return two_class;
    }
    (k as u16 + 2)
        .clamp(two_class, 9)
        .min(screen_height.saturating_sub(MIN_HEIGHT - 4).max(two_class))
}

/// One alias's answer of a K-class model: a labelled bar per class, the most probable green.
fn class_answer_lines(answer: &Answer, width: u16) -> Vec<Line<'static>> {
    let version = answer.result.as_ref().map_or(String::new(), |(_, v)| format!(" v{v}"));
    let head = format!("{}{version}", answer.alias);
    let name_width =
        answer.classes.iter().map(|c| c.class.chars().count()).max().unwrap_or(1).min(18);
    let probabilities: Vec<f64> = answer.classes.iter().map(|c| c.probability).collect();
    let best = logitflow_core::metrics::most_probable(&probabilities);
    let bar_width = usize::from(width).saturating_sub(head.chars().count() + name_width + 11);
    answer
        .classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let lead = if c == 0 { head.clone() } else { " ".repeat(head.chars().count()) };
            let name: String = class.class.chars().take(name_width).collect();
            let filled = (class.probability.clamp(0.0, 1.0) * bar_width as f64).round() as usize;
            let colour = if c == best { Color::Green } else { Color::DarkGray };
            Line::from(vec![
                Span::raw(format!("{lead} {name:<name_width$} {:.4} ", class.probability)),
                Span::styled(
                    format!("{}{}", "█".repeat(filled), "░".repeat(bar_width - filled)),
                    Style::new().fg(colour),
                ),
                Span::raw(if c == best { " ←" } else { "" }),
            ])
        })
        .collect()
}

fn render_answers(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Answer ");
    let inner = block.inner(area);
    block.render(area, buf);
    if app.answers.is_empty() {
        Paragraph::new("type a value in Predict (p), then Enter").render(inner, buf);
        return;
    }
    if app.answers.iter().any(|a| !a.classes.is_empty()) {
        let lines: Vec<Line> = app
            .answers
            .iter()
            .flat_map(|a| match &a.result {
                Ok(_) => class_answer_lines(a, inner.width.saturating_sub(3)),
                Err(e) => vec![Line::from(Span::styled(
                    format!("{}: {e}", a.alias),
                    Style::new().fg(Color::Red),
                ))],
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
        return;
    }
    // advisor's line goes below the answers, when there is a line for it.
    if let Some(advice) = &app.advice
        && inner.height as usize > app.answers.len()
    {
        let line = Rect { y: inner.y + app.answers.len() as u16, height: 1, ..inner };
        let (text, style) = match advice {
            Ok(a) => {
                let flips = a.needed.as_ref().map_or_else(String::new, |n| {
                    format!("; flips at {} = {:.2}", n.feature, n.value)
                });
                (
                    format!(
                        "threshold {} → {}{flips} · advisor v{}",
                        a.threshold, a.decision, a.model_version
                    ),
                    Style::new().fg(Color::DarkGray),
                )
            }
            Err(e) => (format!("advisor: {e}"), Style::new().fg(Color::Red)),
        };
        Paragraph::new(text).style(style).render(line, buf);
    }
    let rows =
        Layout::vertical(vec![Constraint::Length(1); app.answers.len().min(inner.height as usize)])
            .split(inner);
    for (answer, row) in app.answers.iter().zip(rows.iter()) {
        match &answer.result {
            Ok((p, version)) => {
                let (negative, positive) = app.class_names();
                let decision = if *p >= app.threshold { positive } else { negative };
                // Which probability it is, and the decision apart from it: "0.0677 No" read as
                // a 6.8% chance of No, where it was a 6.8% chance of Yes.
                let said = format!("{} v{version} P({positive}) {p:.4} → {decision}", answer.alias);
                let width = u16::try_from(said.chars().count() + 1).unwrap_or(u16::MAX);
                let [text, bar] =
                    Layout::horizontal([Constraint::Length(width), Constraint::Min(0)]).areas(*row);
                Paragraph::new(said).render(text, buf);
                let filled = (p.clamp(0.0, 1.0) * f64::from(bar.width)).round() as usize;
                let bar_text =
                    format!("{}{}", "█".repeat(filled), "░".repeat(bar.width as usize - filled));
                Paragraph::new(bar_text)
                    .style(Style::new().fg(if *p >= app.threshold {
                        Color::Green
                    } else {
                        Color::Red
                    }))
                    .render(bar, buf);
            }
            Err(e) => Paragraph::new(format!("{}: {e}", answer.alias))
                .style(Style::new().fg(Color::Red))
                .render(*row, buf),
        }
    }
}

fn footer_keys(app: &App, width: u16) -> String {
    match (app.overlay, app.focus) {
        (Overlay::Logs, _) => "↑↓ scroll  PgUp/PgDn  / search  Esc close".into(),
        (Overlay::Params, _) => "↑↓ field  ←→ solver  type to edit  Enter train  Esc cancel".into(),
        (Overlay::Help | Overlay::ConfirmQuit, _) => "any key closes".into(),
        (Overlay::ConfirmPromote, _) => "y promotes  any other key keeps stable".into(),
        (Overlay::ConfirmCancel, _) => "k keep the best epoch  d discard  any other key goes on".into(),
        (Overlay::Score, _) => "↑↓ field  type a path  Enter score with stable  Esc cancel".into(),
        (Overlay::SweepForm, _) => "↑↓ list  type values, comma-separated  Enter sweep  Esc cancel".into(),
        (Overlay::Sweep, _) => "P promote the best  n a new sweep (once this one ends)  any other key closes (it goes on)".into(),
        (Overlay::Coefficients, _) => "↑↓ PgUp PgDn scroll  s order by term or magnitude  any other key closes".into(),
        (Overlay::Runs, _) => {
            "↑↓ run  Space mark two  Enter compare/open  s order  / filter  t train with its parameters  Esc close".into()
        }
        (Overlay::RunView, _) => "↑↓ scroll  e export both loss curves in one plot  any other key back to the runs".into(),
        (Overlay::PredictForm, _) => "↑↓/Tab field  , next  ←→ level  type or paste a row  Enter predict  Esc close".into(),
        (Overlay::None, Focus::Predict) => "type values  Enter predict  Esc/Tab back".into(),
        (Overlay::None, Focus::Services) if width >= 120 => {
            "t train  c cancel  h params  p predict  R runs  P promote  b rollback  e export  l log  r/s service  ? help  q quit".into()
        }
        (Overlay::None, Focus::Services) => "t train c cancel h params p predict P promote b rollback e export ? help q quit".into(),
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub const HELP: &[(&str, &str)] = &[
    ("t", "train with the current hyperparameters"),
    ("c", "stop training: keep its best epoch as a version, or discard it"),
    ("h", "hyperparameters: edit, then Enter retrains"),
    ("p or /", "predict: a field per feature (or the one-line box); Enter asks serve"),
    ("R", "runs: Space marks two, Enter compares; t trains with a run's parameters"),
    ("C", "the whole coefficient table, with each term's standardized magnitude"),
    ("B", "batch-score a CSV file with stable, through the batch service"),
    (
        "S",
        "sweep: a grid of solvers × learning rates × L2, trained side by side; P promotes the best",
    ),
    ("P", "promote the candidate to stable"),
    ("b", "roll back to the previous stable version"),
    ("e", "export loss, ROC, precision-recall and reliability plots (PNG, SVG, CSV)"),
    ("l", "log scale on the loss chart"),
    ("w", "the loss chart's window: only the latest epochs"),
    ("m", "smooth the loss chart's curves (a moving average)"),
    ("↑↓ / j k", "select a service"),
    ("Enter", "the selected service's log (/ searches)"),
    ("r", "restart the selected service"),
    ("s", "stop or start the selected service"),
    ("Tab", "move between services and predict"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit (asks while training runs)"),
];

fn render_help(area: Rect, buf: &mut Buffer) {
    let rect = centered(area, 62, HELP.len() as u16 + 2);
    Clear.render(rect, buf);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![Span::styled(format!("{k:>10}  "), Style::new().bold()), Span::raw(*v)])
        })
        .collect();
    Paragraph::new(lines).block(Block::bordered().title(" Keys ")).render(rect, buf);
}

fn render_confirm(area: Rect, buf: &mut Buffer) {
    let rect = centered(area, 50, 3);
    Clear.render(rect, buf);
    Paragraph::new("Training is running. Quit anyway? q/y quits")
        .block(Block::bordered().title(" Quit? "))
        .render(rect, buf);
}

fn render_score_form(app: &App, area: Rect, buf: &mut Buffer) {
    let rect = centered(area, 76, 7);
    Clear.render(rect, buf);
    let mut lines: Vec<Line> = ["score", "write to"]
        .iter()
        .zip(&app.overlays.score.paths)
        .enumerate()
        .map(|(i, (label, path))| {
            // The end of a long path is the part that tells files apart.
            let room = (rect.width as usize).saturating_sub(14);
            let chars: Vec<char> = path.chars().collect();
            let shown: String = if chars.len() > room {
                std::iter::once('…')
                    .chain(chars[chars.len() + 1 - room..].iter().copied())
                    .collect()
            } else {
                path.clone()
            };
            form_field(label, 9, &shown, i == app.overlays.score.field)
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "its rows again, with the probability from stable; the file appears whole or not at all",
        Style::new().fg(Color::DarkGray),
    ));
    // Wrapped without trimming: trimming takes the spaces that right-align the labels.
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered().title(" Batch scoring ").border_style(Style::new().fg(Color::Cyan)),
        )
        .render(rect, buf);
}

/// One field of a form: its label right-aligned in `width` columns, then its value, reversed
/// and with a cursor when it is the field being typed in.
fn form_field(label: &str, width: usize, value: &str, chosen: bool) -> Line<'static> {
    let style = if chosen { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
    Line::from(vec![
        Span::raw(format!("{label:>width$}  ")),
        Span::styled(format!("{value}{}", if chosen { "█" } else { "" }), style),
    ])
}

/// The largest x (at least `least_max_x`) and the y bounds of some curves' points, for a
/// chart's axes; a band of 0 to 1 when there are none.
fn curve_bounds<'a>(
    points: impl Iterator<Item = &'a (f64, f64)>,
    least_max_x: f64,
) -> (f64, f64, f64) {
    let (max_x, lo, hi) = points
        .fold((least_max_x, f64::INFINITY, f64::NEG_INFINITY), |(x, lo, hi), &(e, l)| {
            (x.max(e), lo.min(l), hi.max(l))
        });
    if lo.is_finite() { (max_x, lo, hi.max(lo + 1e-9)) } else { (max_x, 0.0, 1.0) }
}

fn render_sweep_form(app: &App, area: Rect, buf: &mut Buffer) {
    let form = &app.overlays.sweep;
    let rect = centered(area, 70, 9);
    Clear.render(rect, buf);
    let mut lines: Vec<Line> = super::sweep::SweepForm::LABELS
        .iter()
        .zip(&form.fields)
        .enumerate()
        .map(|(i, (label, value))| form_field(label, 15, value, i == form.selected))
        .collect();
    lines.push(Line::from(""));
    let count = form.grid(&app.params).map(|g| g.len());
    lines.push(match (&form.error, count) {
        (Some(e), _) => Line::styled(e.clone(), Style::new().fg(Color::Red)),
        (None, Ok(n)) => Line::styled(
            format!(
                "{n} combinations, {} at a time; the rest of the parameters as set (h)",
                std::thread::available_parallelism().map_or(2, usize::from).min(n)
            ),
            Style::new().fg(Color::DarkGray),
        ),
        (None, Err(e)) => Line::styled(e, Style::new().fg(Color::DarkGray)),
    });
    // Wrapped without trimming: trimming takes the spaces that right-align the labels.
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" Sweep ").border_style(Style::new().fg(Color::Cyan)))
        .render(rect, buf);
}

/// The members' curves on one chart (the validation loss, or the training loss of fits
/// without validation rows), and the table ranked by that loss.
fn render_sweep(app: &App, area: Rect, buf: &mut Buffer) {
    use super::sweep::MemberState;
    let Some(sweep) = &app.sweep else { return };
    let rect = centered(area, area.width.saturating_sub(2), area.height.saturating_sub(2));
    Clear.render(rect, buf);
    let rows_needed = sweep.members.len() as u16 + 3;
    let [chart_area, table_area] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(rows_needed.min(rect.height / 2)),
    ])
    .areas(rect);
    const COLOURS: [Color; 8] = [
        Color::Cyan,
        Color::Magenta,
        Color::Yellow,
        Color::Green,
        Color::Blue,
        Color::Red,
        Color::LightCyan,
        Color::LightMagenta,
    ];
    let colour = |i: usize| COLOURS[i % COLOURS.len()];
    let (max_x, lo, hi) = curve_bounds(sweep.members.iter().flat_map(|m| m.curve.iter()), 2.0);
    let datasets = sweep
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.curve.is_empty())
        .map(|(i, m)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(colour(i)))
                .data(&m.curve)
        })
        .collect();
    let done = sweep
        .members
        .iter()
        .filter(|m| matches!(m.state, MemberState::Done { .. } | MemberState::Failed(_)))
        .count();
    let title =
        format!(" Sweep — {done}/{} done · validation loss per epoch ", sweep.members.len());
    Chart::new(datasets)
        .block(Block::bordered().title(title).border_style(Style::new().fg(Color::Cyan)))
        .x_axis(
            Axis::default()
                .title("epoch")
                .bounds([1.0, max_x])
                .labels(["1".to_string(), format!("{max_x:.0}")]),
        )
        .y_axis(Axis::default().bounds([lo, hi]).labels([format!("{lo:.3}"), format!("{hi:.3}")]))
        .render(chart_area, buf);
    let best = sweep.best_version().map(|(i, _)| i);
    let rows = sweep.ranked().into_iter().enumerate().map(|(rank, i)| {
        let m = &sweep.members[i];
        let loss = m.best_loss().map_or_else(
            || "-".to_string(),
            |l| format!("{l:.4}{}", if m.validated { "" } else { " (train)" }),
        );
        let (state, version, test) = match &m.state {
            MemberState::Waiting => ("waiting".to_string(), String::new(), String::new()),
            MemberState::Training => (
                format!("epoch {}", m.curve.last().map_or(0.0, |p| p.0)),
                String::new(),
                String::new(),
            ),
            MemberState::Done { version, test_log_loss } => {
                ("done".to_string(), format!("v{version}"), format!("{test_log_loss:.4}"))
            }
            MemberState::Failed(e) => (format!("failed: {e}"), String::new(), String::new()),
        };
        let mark = if Some(i) == best { "★" } else { " " };
        Row::new(vec![
            Cell::from(format!("{mark}{}", rank + 1)),
            Cell::from("■").style(Style::new().fg(colour(i))),
            Cell::from(m.params.solver.to_string()),
            Cell::from(format!("{}", m.params.learning_rate)),
            Cell::from(format!("{}", m.params.l2)),
            Cell::from(loss),
            Cell::from(test),
            Cell::from(version),
            Cell::from(state),
        ])
    });
    let widths =
        [3, 1, 9, 8, 8, 16, 9, 5].map(Constraint::Length).into_iter().chain([Constraint::Min(8)]);
    let header =
        Row::new(["#", "", "solver", "lr", "l2", "best val loss", "test loss", "ver", "state"])
            .style(Style::new().bold());
    Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(" ranked by validation loss · ★ the best finished "))
        .render(table_area, buf);
}

/// Every term of the shown version: estimate, standard error, z, p-value, 95% interval, odds
/// ratio, the standardized estimate and a bar of its magnitude (the largest fills the column),
/// in term order or by magnitude, scrolling.
fn render_coefficients(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(terms) = app.shown_terms() else { return };
    let rect = centered(area, area.width.saturating_sub(2), area.height.saturating_sub(2));
    Clear.render(rect, buf);
    let mut order = terms.clone();
    if app.overlays.coefficients.by_magnitude {
        order.sort_by(|a, b| {
            b.standardized.map_or(-1.0, f64::abs).total_cmp(&a.standardized.map_or(-1.0, f64::abs))
        });
    }
    let largest = terms.iter().filter_map(|t| t.standardized).map(f64::abs).fold(0.0, f64::max);
    let wide = rect.width >= 110;
    let bar_width: usize = if wide { 16 } else { 8 };
    // Under the table, as statsmodels' summary has them: the rows' weights, offset and
    // clusters, the covariance, and the fit statistics.
    let fit = app.last_report.as_ref().map(|r| &r.model.fit);
    let statistics: Vec<String> = fit
        .into_iter()
        .flat_map(|fit| {
            let roles = fit.row_roles.iter().flat_map(|r| r.lines());
            let covariance = fit.covariance.map(|c| format!("covariance: {}", c.describe()));
            // Why a column is empty: a penalty's shrinkage, an iterative fit's stop; and how
            // far such a stop is from the optimum, so its estimates are not read as exact.
            let withheld = fit
                .statistics_note
                .iter()
                .map(|note| format!("standard errors {}", with_flag_hints(note)));
            let gap =
                fit.optimality.iter().map(|o| format!("estimates not exact: {}", o.describe()));
            roles
                .chain(covariance)
                .chain(fit.fit_statistics.iter().flat_map(|f| f.lines()))
                .chain(withheld)
                .chain(gap)
        })
        .chain(app.left_out_terms())
        .map(|l| format!(" {l}"))
        .collect();
    let shown = (rect.height as usize).saturating_sub(3 + statistics.len());
    let first = app.overlays.coefficients.scroll.min(order.len().saturating_sub(1));
    // A million or more in the exponent form, which fits the column (an odds ratio of 3.9e8).
    let cell = |v: Option<f64>, digits: usize| {
        v.map_or_else(
            || "-".to_string(),
            |v| if v.abs() >= 1e6 { format!("{v:.2e}") } else { readable(v, digits) },
        )
    };
    // A penalty's zero is exactly zero: the term is out of the model, not small.
    let estimate = |v: f64| if v == 0.0 { "0".to_string() } else { readable(v, 4) };
    let p_value = |p: Option<f64>| match p {
        Some(p) if p < 1e-4 => "<1e-4".to_string(),
        p => cell(p, 4),
    };
    let rows = order.iter().skip(first).take(shown).map(|t| {
        // Eighths of a block: a bar resolves 8 × its width steps.
        let bar = t.standardized.filter(|_| largest > 0.0).map_or_else(String::new, |s| {
            let eighths = ((s.abs() / largest) * (bar_width * 8) as f64).round() as usize;
            let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8];
            format!("{}{partial}", "█".repeat(eighths / 8))
        });
        let colour = match t.standardized {
            Some(s) if s < 0.0 => Color::Red,
            Some(_) => Color::Green,
            None => Color::DarkGray,
        };
        let mut cells = vec![
            Cell::from(t.term.clone()),
            Cell::from(estimate(t.estimate)),
            Cell::from(cell(t.std_error, 4)),
        ];
        if wide {
            cells.extend([
                Cell::from(cell(t.z, 2)),
                Cell::from(p_value(t.p_value)),
                Cell::from(format!("{} … {}", cell(t.ci_low, 3), cell(t.ci_high, 3))),
            ]);
        } else {
            cells.push(Cell::from(p_value(t.p_value)));
        }
        cells.extend([
            Cell::from(cell(
                t.odds_ratio.filter(|_| t.term != logitflow_core::inference::INTERCEPT),
                3,
            )),
            Cell::from(cell(t.standardized, 3)),
            Cell::from(bar).style(Style::new().fg(colour)),
        ]);
        Row::new(cells)
    });
    let (mut header, widths) = coefficient_columns(wide, bar_width);
    if app.shown_class_table().is_some()
        && let Some(ratio) = header.iter_mut().find(|h| **h == "OR")
    {
        // A K-class model's ratio is of two classes' probabilities: the relative-risk ratio.
        *ratio = "RRR";
    }
    let version = app.last_report.as_ref().map_or(0, |r| r.model.version);
    // A K-class model's table is of one class: which, and how to see the next.
    let of = app.shown_class_table().map_or(String::new(), |(_, of)| format!(" {of} (←→ class) ·"));
    let title = format!(
        " Coefficients of v{version} —{of} {} · rows {}–{} of {} · per sd: the estimate × its term's standard deviation, green +, red − ",
        if app.overlays.coefficients.by_magnitude {
            "largest standardized first"
        } else {
            "term order"
        },
        first + 1,
        (first + shown).min(order.len()),
        order.len()
    );
    let block = Block::bordered().title(title).border_style(Style::new().fg(Color::Cyan));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let [table, below] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(statistics.len() as u16)])
            .areas(inner);
    Table::new(rows, widths).header(Row::new(header).style(Style::new().bold())).render(table, buf);
    Paragraph::new(statistics.into_iter().map(Line::from).collect::<Vec<_>>()).render(below, buf);
}

/// The coefficient view's header and column widths: z and the interval only when `wide`.
fn coefficient_columns(wide: bool, bar_width: usize) -> (Vec<&'static str>, Vec<Constraint>) {
    if wide {
        (
            vec![
                "term",
                "estimate",
                "std err",
                "z",
                "p",
                "95% interval",
                "OR",
                "per sd",
                "magnitude",
            ],
            [
                Constraint::Min(16),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(20),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(bar_width as u16 + 1),
            ]
            .to_vec(),
        )
    } else {
        (
            vec!["term", "estimate", "std err", "p", "OR", "per sd", "size"],
            [
                Constraint::Min(12),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(bar_width as u16 + 1),
            ]
            .to_vec(),
        )
    }
}

/// A run id's time (milliseconds since 1970, its first part) as a UTC date and minute.
fn run_time(run_id: &str) -> String {
    let Some(ms) = run_id.split('-').next().and_then(|m| m.parse::<i64>().ok()) else {
        return "-".into();
    };
    let (days, minutes) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 60_000);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year}-{month:02}-{day:02} {:02}:{:02}", minutes / 60, minutes % 60)
}

fn render_runs(app: &App, area: Rect, buf: &mut Buffer) {
    let rect = centered(area, area.width.saturating_sub(4), area.height.saturating_sub(4));
    Clear.render(rect, buf);
    let view = &app.overlays.runs;
    let filter = match (view.filtering, view.filter.is_empty()) {
        (true, _) => format!(" · filter: {}█", view.filter),
        (false, false) => format!(" · filter: {}", view.filter),
        (false, true) => String::new(),
    };
    let title = format!(" Runs — {} · {} marked{filter} ", view.order.name(), view.marked.len());
    let block = Block::bordered().title(title).border_style(Style::new().fg(Color::Cyan));
    let Some(runs) = &view.runs else {
        Paragraph::new("reading the kept runs…").block(block).render(rect, buf);
        return;
    };
    if runs.is_empty() {
        Paragraph::new("no runs yet: t trains one").block(block).render(rect, buf);
        return;
    }
    let aliases = app.versions.as_ref().map(|v| &v.entry.aliases);
    let alias_of = |version: u32| {
        aliases.map_or_else(String::new, |a| {
            a.iter()
                .filter(|(_, v)| **v == version)
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let wide = rect.width >= 110;
    let inner_rows = rect.height.saturating_sub(3) as usize;
    let first = view.selected.saturating_sub(inner_rows.saturating_sub(1));
    let visible = view.visible();
    let rows = visible.iter().enumerate().skip(first).take(inner_rows).map(|(i, r)| {
        let mark = view
            .marked
            .iter()
            .position(|m| *m == r.run_id)
            .map_or(" ".to_string(), |k| format!("{}", k + 1));
        let data = std::path::Path::new(&r.data)
            .file_name()
            .map_or_else(|| r.data.clone(), |n| n.to_string_lossy().into_owned());
        let mut cells = vec![mark, run_time(&r.run_id), data, r.params.solver.to_string()];
        if wide {
            cells.extend([format!("{}", r.params.learning_rate), format!("{}", r.params.l2)]);
        }
        cells.extend([
            format!("v{}", r.model.version),
            alias_of(r.model.version),
            format!("{:.4}", r.metrics.accuracy),
            format!("{:.4}", r.metrics.auc),
            format!("{:.4}", r.metrics.log_loss),
            r.stop_reason.short().to_string(),
        ]);
        let row = Row::new(cells);
        if i == view.selected {
            row.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let mut header = vec!["#", "when (UTC)", "data", "solver"];
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(16),
        Constraint::Min(10),
        Constraint::Length(9),
    ];
    if wide {
        header.extend(["lr", "l2"]);
        widths.extend([Constraint::Length(7), Constraint::Length(7)]);
    }
    header.extend(["ver", "alias", "acc", "auc", "logloss", "stop"]);
    widths.extend([4, 9, 6, 6, 7, 13].map(Constraint::Length));
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold()))
        .block(block)
        .render(rect, buf);
}

fn render_run_view(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(view) = &app.overlays.comparison else { return };
    let rect = centered(area, area.width.saturating_sub(2), area.height.saturating_sub(2));
    Clear.render(rect, buf);
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4)]).areas(rect);
    // Both runs' curves on the same axes: blue and cyan for the first, red and magenta for the second.
    let colors = [Color::Blue, Color::Cyan, Color::Red, Color::Magenta];
    let mut color_of = Vec::new();
    let mut run = 0;
    for (i, (_, val, _)) in view.curves.iter().enumerate() {
        if i > 0 && !val {
            run += 1;
        }
        color_of.push(colors[(run * 2 + usize::from(*val)).min(3)]);
    }
    let least_x = if view.log_epochs { 0.0 } else { 1.0 };
    let (max_x, lo, hi) =
        curve_bounds(view.curves.iter().flat_map(|(_, _, p)| p.iter()), least_x + 1.0);
    let datasets = view
        .curves
        .iter()
        .zip(&color_of)
        .map(|((label, _, points), color)| {
            Dataset::default()
                .name(label.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(points)
        })
        .collect();
    let label = |v: f64| format!("{v:.3}");
    Chart::new(datasets)
        .block(
            Block::bordered()
                .title(format!(" {} ", view.title))
                .border_style(Style::new().fg(Color::Cyan)),
        )
        .x_axis(if view.log_epochs {
            // Ticks at the powers of ten the runs reach, and the last epoch.
            let mut ticks: Vec<String> =
                (0..=max_x.floor() as i32).map(|p| format!("{:.0}", 10f64.powi(p))).collect();
            ticks.push(format!("{:.0}", 10f64.powf(max_x)));
            Axis::default().title("epoch (log)").bounds([0.0, max_x]).labels(ticks)
        } else {
            Axis::default()
                .title("epoch")
                .bounds([1.0, max_x])
                .labels(["1".to_string(), format!("{max_x:.0}")])
        })
        .y_axis(Axis::default().bounds([lo, hi]).labels([label(lo), label(hi)]))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(2, 3)))
        .render(chart_area, buf);
    let shown = (table_area.height as usize).saturating_sub(3);
    let rows = view.rows.iter().skip(view.scroll).take(shown).map(|r| {
        let mut cells = vec![r.name.clone(), r.a.clone()];
        if view.two {
            cells.extend([r.b.clone(), r.delta.clone()]);
        }
        let row = Row::new(cells);
        if view.two && r.differs { row.style(Style::new().fg(Color::Yellow)) } else { row }
    });
    let (header, widths) = if view.two {
        (
            vec!["", "first", "second", "second − first"],
            vec![
                Constraint::Length(22),
                Constraint::Min(12),
                Constraint::Min(12),
                Constraint::Length(16),
            ],
        )
    } else {
        (vec!["", "value"], vec![Constraint::Length(22), Constraint::Min(12)])
    };
    let colours = if view.two { " · first blue, second red · differs yellow" } else { "" };
    let title = format!(
        " rows {}–{} of {}{colours} ",
        view.scroll + 1,
        (view.scroll + shown).min(view.rows.len()),
        view.rows.len()
    );
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold()))
        .block(Block::bordered().title(title))
        .render(table_area, buf);
}

/// One row per feature: its name, the value typed, and for a categorical feature its levels.
/// The rows scroll to keep the selected one in view, so a model of any width fits 80×24.
fn render_predict_form(app: &App, area: Rect, buf: &mut Buffer) {
    let form = &app.overlays.predict;
    let count = app.feature_names.len();
    // The fields, a blank line and the error or hint, inside the border.
    let rect =
        centered(area, 78, (count as u16).saturating_add(4).min(area.height.saturating_sub(2)));
    Clear.render(rect, buf);
    let title = format!(" Predict — field {} of {count} ", (form.selected + 1).min(count));
    let block = Block::bordered().title(title).border_style(Style::new().fg(Color::Cyan));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let visible = (inner.height as usize).saturating_sub(2).max(1);
    let first = form.selected.saturating_sub(visible - 1).min(count.saturating_sub(visible));
    let name_width = app.feature_names.iter().map(|n| n.chars().count()).max().unwrap_or(0).min(22);
    let mut lines = Vec::new();
    for (i, name) in app.feature_names.iter().enumerate().skip(first).take(visible) {
        let chosen = i == form.selected;
        let value = form.values.get(i).map_or("", String::as_str);
        let shown: String = if name.chars().count() > name_width {
            name.chars().take(name_width - 1).chain(['…']).collect()
        } else {
            name.clone()
        };
        let mut spans = vec![
            Span::raw(format!("{shown:>name_width$}  ")),
            Span::styled(
                format!("{value}{}", if chosen { "█" } else { "" }),
                if chosen { Style::new().bold() } else { Style::new() },
            ),
        ];
        if let Some(levels) = app.levels_of(name) {
            // What a row can show: a column held sparse has thousands, so their count comes
            // first, where the row is not cut off.
            const SHOWN_LEVELS: usize = 24;
            let shown = if levels.len() > SHOWN_LEVELS {
                format!("{} levels: {} | …", levels.len(), levels[..SHOWN_LEVELS].join(" | "))
            } else {
                levels.join(" | ")
            };
            spans.push(Span::styled(format!("  ◀▶ {shown}"), Style::new().fg(Color::DarkGray)));
        }
        let line = Line::from(spans);
        lines.push(if chosen { line.style(Style::new().fg(Color::Cyan)) } else { line });
    }
    lines.push(Line::from(""));
    lines.push(match &form.error {
        Some(e) => Line::styled(e.clone(), Style::new().fg(Color::Red)),
        None if count > visible => Line::styled(
            format!("rows {}–{} of {count}", first + 1, first + lines.len() - 1),
            Style::new().fg(Color::DarkGray),
        ),
        None => Line::styled(
            "Enter asks stable (and the candidate, if any)",
            Style::new().fg(Color::DarkGray),
        ),
    });
    Paragraph::new(lines).render(inner, buf);
}

fn render_confirm_cancel(app: &App, area: Rect, buf: &mut Buffer) {
    // Wide enough at 80 columns for the longest line, with a spare line should it wrap.
    let rect = centered(area, 74, 7);
    Clear.render(rect, buf);
    let epochs = app.train_curve.len();
    let keep = match app.best_epoch_so_far() {
        Some((epoch, loss, true)) => format!(
            "k  keep epoch {epoch} (the best so far, validation loss {loss:.4}) as a version"
        ),
        Some((epoch, loss, false)) => {
            format!("k  keep epoch {epoch}, the last (training loss {loss:.4}), as a version")
        }
        None => "k  keep what it has so far as a version".to_string(),
    };
    let lines = vec![
        Line::from(format!("Stop training at epoch {epoch}?", epoch = epochs)),
        Line::from(keep),
        Line::from("d  discard the run: no version is made"),
        Line::from("any other key: go on training"),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Stop training? "))
        .render(rect, buf);
}

fn render_confirm_promote(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(((candidate, worse), (stable, better))) = app.worse_candidate() else { return };
    let rect = centered(area, 60, 4);
    Clear.render(rect, buf);
    let text = format!(
        "candidate v{candidate}'s test log loss {worse:.4} is worse than stable v{stable}'s {better:.4}. Promote anyway? y promotes"
    );
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Promote? "))
        .render(rect, buf);
}

fn render_form(app: &App, area: Rect, buf: &mut Buffer) {
    // Room for every field, a blank line and an error of two lines, so none is cut off.
    let rect = centered(area, 60, ParamsForm::LABELS.len() as u16 + 5);
    Clear.render(rect, buf);
    let form = &app.overlays.params;
    let mut lines = Vec::new();
    for (i, label) in ParamsForm::LABELS.iter().enumerate() {
        let typed = ParamsForm::field_of(i).map_or("", |f| form.fields[f].trim());
        let value = match i {
            0 => format!("◀ {} ▶", form.solver),
            ParamsForm::COVARIANCE => format!("◀ {} ▶", form.covariance.name()),
            ParamsForm::PENALTY => format!("◀ {} ▶", form.penalty.name()),
            8 if typed.is_empty() => "auto".to_string(),
            // λ left empty with folds given: cross-validation chooses it along the path.
            12 if typed.is_empty() && !form.fields[10].trim().is_empty() => "path + CV".to_string(),
            12 if typed.is_empty() => "none".to_string(),
            13..=16 if typed.is_empty() => "none".to_string(),
            _ => typed.to_string(),
        };
        let mut style = if i == form.selected {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let mut note = String::new();
        if !form.applies(i) {
            style = style.fg(Color::DarkGray);
            note = match ParamsForm::LABELS[i] {
                "l2" | "α (l1 ratio)" | "λ" | "cv folds" => {
                    format!("  (not used with penalty {})", form.penalty.name())
                }
                "cluster" => format!("  (not used with covariance {})", form.covariance.name()),
                _ => format!("  (not used by {})", form.solver),
            };
        }
        lines.push(Line::from(vec![
            Span::raw(format!("{label:>14}  ")),
            Span::styled(value, style),
            Span::styled(note, Style::new().fg(Color::DarkGray)),
        ]));
    }
    lines.push(Line::from(""));
    match &form.error {
        Some(e) => lines.push(Line::from(Span::styled(e.clone(), Style::new().fg(Color::Red)))),
        None => lines.push(Line::from(Span::styled(
            "Enter trains with these",
            Style::new().fg(Color::Green),
        ))),
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Hyperparameters "))
        .render(rect, buf);
}

fn render_logs(app: &App, area: Rect, buf: &mut Buffer) {
    let rect = Rect {
        x: area.x + 2,
        y: area.y + 1,
        width: area.width.saturating_sub(4),
        height: area.height.saturating_sub(3),
    };
    Clear.render(rect, buf);
    let name = app.selected_service().map_or("-", |n| n.as_str());
    let visible = app.visible_logs();
    let height = rect.height.saturating_sub(2) as usize;
    let end = visible.len().saturating_sub(app.overlays.logs.scroll.min(visible.len()));
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = visible[start..end]
        .iter()
        .map(|l| {
            let color = if l.text.contains("\"ERROR\"") || l.text.contains("ERROR") {
                Color::Red
            } else if l.text.contains("\"WARN\"") || l.text.contains(" WARN ") {
                Color::Yellow
            } else if l.stream == "stdout" {
                Color::Green
            } else if l.stream == "supervisor" {
                Color::Magenta
            } else {
                Color::Gray
            };
            Line::from(Span::styled(l.text.clone(), Style::new().fg(color)))
        })
        .collect();
    let search = match (&app.overlays.logs.search, app.overlays.logs.searching) {
        (Some(s), true) => format!(" search: {s}█ "),
        (Some(s), false) if !s.is_empty() => format!(" matching {s:?} "),
        _ => String::new(),
    };
    let title = format!(" Log: {name} ({} lines){search} ", visible.len());
    Paragraph::new(lines).block(Block::bordered().title(title)).render(rect, buf);
}
