//! The loss chart's series — [`LossChart`] — kept as epochs arrive rather than built in
//! render: the training, validation and previous run's curves as drawn (log₁₀ of the loss on
//! the log scale; only the most recent [`WINDOW_EPOCHS`] with the window on), their bounds,
//! and the best epoch so far (the lowest validation loss, or training loss without validation).
//!
//! With smoothing on, the curves drawn are exponential moving averages of the losses
//! ([`SMOOTHING`] of each new epoch, as TensorBoard's slider does), over the whole run even when
//! only the window is shown; the best epoch is still the raw curve's.
//!
//! An epoch costs O(1), or O(window) with the window on, so a run of a million epochs does not
//! make every frame walk its whole curve; a full rebuild happens only when the view changes.

/// How many of the latest epochs the window shows.
pub const WINDOW_EPOCHS: usize = 200;

/// The weight of each new epoch in the smoothed curves: s ← s + α (loss − s).
pub const SMOOTHING: f64 = 0.2;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossChart {
    pub log_scale: bool,
    pub window: bool,
    pub smooth: bool,
    /// The smoothed losses so far (data units), when smoothing.
    smoothed: (Option<f64>, Option<f64>),
    pub train: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
    pub previous: Vec<(f64, f64)>,
    /// The best epoch and its loss, as data (not scaled); and as drawn, when in view.
    pub best: Option<(f64, f64)>,
    pub best_point: Vec<(f64, f64)>,
    /// The x and y bounds of what is drawn, and the y bounds of the data in view.
    pub x: [f64; 2],
    pub y: [f64; 2],
    raw_y: [f64; 2],
}

impl LossChart {
    /// The chart of whole curves, as the view asks.
    pub fn new(
        train: &[(f64, f64)],
        val: &[(f64, f64)],
        previous: &[(f64, f64)],
        log_scale: bool,
        window: bool,
        smooth: bool,
    ) -> LossChart {
        let mut chart =
            LossChart { log_scale, window, smooth, x: [1.0, 2.0], ..LossChart::default() };
        let first = if window { train.len().saturating_sub(WINDOW_EPOCHS) } else { 0 };
        let from_epoch = train.get(first).map_or(1.0, |p| p.0);
        // Smoothed over the whole run, then windowed: the window does not restart the average.
        let (train_drawn, val_drawn) = if smooth {
            (ema(train, &mut chart.smoothed.0), ema(val, &mut chart.smoothed.1))
        } else {
            (train.to_vec(), val.to_vec())
        };
        chart.train = train_drawn[first..].iter().filter_map(|&p| chart.scaled(p)).collect();
        chart.val = val_drawn
            .iter()
            .filter(|p| p.0 >= from_epoch)
            .filter_map(|&p| chart.scaled(p))
            .collect();
        chart.previous = previous.iter().filter_map(|&p| chart.scaled(p)).collect();
        let by = if val.is_empty() { train } else { val };
        chart.best = by.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
        chart.bound();
        chart
    }

    /// One more epoch of the current run.
    pub fn push(&mut self, epoch: f64, train: f64, val: Option<f64>) {
        let first = self.train.is_empty() && self.val.is_empty() && self.previous.is_empty();
        let (drawn_train, drawn_val) = if self.smooth {
            (smoothed(&mut self.smoothed.0, train), val.map(|v| smoothed(&mut self.smoothed.1, v)))
        } else {
            (train, val)
        };
        if let Some(p) = self.scaled((epoch, drawn_train)) {
            self.train.push(p);
        }
        if let Some(p) = drawn_val.and_then(|v| self.scaled((epoch, v))) {
            self.val.push(p);
        }
        // The best is judged on the validation loss when there is one.
        let loss = val.unwrap_or(train);
        if (val.is_some() || self.val.is_empty()) && self.best.is_none_or(|(_, best)| loss < best) {
            self.best = Some((epoch, loss));
        }
        if self.window && self.train.len() > WINDOW_EPOCHS {
            let drop = self.train.len() - WINDOW_EPOCHS;
            self.train.drain(..drop);
            let from = self.train.first().map_or(epoch, |p| p.0);
            self.val.retain(|p| p.0 >= from);
            self.bound();
            return;
        }
        // Without a window the bounds only grow: the newest points are enough.
        let mut raw = if first { [f64::INFINITY, f64::NEG_INFINITY] } else { self.raw_y };
        for p in self.train.last().into_iter().chain(val.and(self.val.last())) {
            raw = [raw[0].min(p.1), raw[1].max(p.1)];
        }
        self.raw_y = raw;
        self.x[1] = self.x[1].max(epoch).max(self.x[0] + 1.0);
        self.settle();
    }

    fn scaled(&self, (x, y): (f64, f64)) -> Option<(f64, f64)> {
        if !y.is_finite() {
            return None;
        }
        if self.log_scale { (y > 0.0).then(|| (x, y.log10())) } else { Some((x, y)) }
    }

    /// The bounds over everything in view, and the best point if it is in view.
    fn bound(&mut self) {
        let from = if self.window { self.train.first().map_or(1.0, |p| p.0) } else { 1.0 };
        let visible =
            self.train.iter().chain(&self.val).chain(self.previous.iter().filter(|p| p.0 >= from));
        let (lo, hi, last) = visible
            .fold((f64::INFINITY, f64::NEG_INFINITY, from + 1.0), |(lo, hi, x), p| {
                (lo.min(p.1), hi.max(p.1), x.max(p.0))
            });
        self.x = [from, last];
        self.raw_y = [lo, hi];
        self.settle();
    }

    /// The drawn y bounds from the data's (a flat curve still gets a band to be drawn in), and
    /// the best point if it is in view.
    fn settle(&mut self) {
        let [lo, hi] = self.raw_y;
        self.y = if !lo.is_finite() {
            [0.0, 1.0]
        } else if (hi - lo).abs() < 1e-9 {
            [lo - 0.01, hi + 0.01]
        } else {
            [lo, hi]
        };
        self.place_best();
    }

    fn place_best(&mut self) {
        self.best_point = self
            .best
            .and_then(|b| self.scaled(b))
            .filter(|p| p.0 >= self.x[0] && p.0 <= self.x[1])
            .into_iter()
            .collect();
    }
}

/// One more loss into an exponential moving average: the first is taken as it is.
fn smoothed(state: &mut Option<f64>, loss: f64) -> f64 {
    let next = match *state {
        Some(s) if loss.is_finite() => s + SMOOTHING * (loss - s),
        Some(s) => s,
        None => loss,
    };
    *state = Some(next);
    next
}

/// A curve smoothed from its start, leaving `state` at its end.
fn ema(curve: &[(f64, f64)], state: &mut Option<f64>) -> Vec<(f64, f64)> {
    curve.iter().map(|&(x, y)| (x, smoothed(state, y))).collect()
}

/// How fast a run goes, from its latest epoch event: epochs per second, and the time the
/// epochs left would take at that pace (an upper bound: a stopping rule may end it sooner).
pub fn pace(epoch: usize, elapsed_ms: f64, planned: usize) -> Option<(f64, f64)> {
    if epoch == 0 || elapsed_ms <= 0.0 {
        return None;
    }
    let per_second = epoch as f64 / (elapsed_ms / 1e3);
    Some((per_second, planned.saturating_sub(epoch) as f64 / per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (1..=n).map(|e| (e as f64, f(e as f64))).collect()
    }

    #[test]
    fn pushing_epochs_gives_the_chart_a_rebuild_gives() {
        let train = curve(500, |e| 0.2 + 1.0 / e);
        let val = curve(500, |e| 0.25 + 1.0 / e + (e - 300.0).max(0.0) * 1e-4);
        for (log, window, smooth) in [false, true].into_iter().flat_map(|a| {
            [false, true].into_iter().flat_map(move |b| [(a, b, false), (a, b, true)])
        }) {
            let mut pushed = LossChart::new(&[], &[], &[], log, window, smooth);
            for (t, v) in train.iter().zip(&val) {
                pushed.push(t.0, t.1, Some(v.1));
            }
            let built = LossChart::new(&train, &val, &[], log, window, smooth);
            assert_eq!(pushed.train, built.train, "log {log}, window {window}");
            assert_eq!(pushed.val, built.val, "log {log}, window {window}");
            assert_eq!(
                (pushed.best, pushed.best_point.clone()),
                (built.best, built.best_point.clone()),
                "log {log}, window {window}"
            );
            assert_eq!(pushed.x, built.x, "log {log}, window {window}");
            let close = |a: [f64; 2], b: [f64; 2]| {
                (a[0] - b[0]).abs() < 1e-12 && (a[1] - b[1]).abs() < 1e-12
            };
            assert!(
                close(pushed.y, built.y),
                "log {log}, window {window}: {:?} vs {:?}",
                pushed.y,
                built.y
            );
        }
    }

    #[test]
    fn the_window_shows_the_latest_epochs_and_the_best_one_when_it_is_among_them() {
        let train = curve(1000, |e| 1.0 / e);
        let val = curve(1000, |e| 1.0 / e + (e - 100.0).abs() * 1e-3);
        let chart = LossChart::new(&train, &val, &[], false, true, false);
        assert_eq!((chart.train.len(), chart.x), (WINDOW_EPOCHS, [801.0, 1000.0]));
        assert_eq!(chart.best.map(|b| b.0), Some(100.0), "the lowest validation loss");
        assert!(chart.best_point.is_empty(), "epoch 100 is out of the window");
        let whole = LossChart::new(&train, &val, &[], false, false, false);
        assert_eq!(whole.best_point, vec![(100.0, val[99].1)]);
        assert_eq!(whole.x, [1.0, 1000.0]);
    }

    #[test]
    fn smoothing_is_an_exponential_moving_average_and_the_best_epoch_stays_the_raw_one() {
        let train = [(1.0, 1.0), (2.0, 0.0), (3.0, 0.5)];
        let chart = LossChart::new(&train, &[], &[], false, false, true);
        // 1, then 1 + 0.2·(0 − 1) = 0.8, then 0.8 + 0.2·(0.5 − 0.8) = 0.74.
        let drawn: Vec<f64> = chart.train.iter().map(|p| p.1).collect();
        assert!(
            drawn.iter().zip([1.0, 0.8, 0.74]).all(|(a, b)| (a - b).abs() < 1e-12),
            "{drawn:?}"
        );
        assert_eq!(chart.best, Some((2.0, 0.0)), "the raw curve's best");
    }

    #[test]
    fn the_pace_is_epochs_per_second_and_the_time_the_rest_would_take() {
        assert_eq!(pace(50, 2000.0, 1000), Some((25.0, 38.0)));
        assert_eq!(pace(0, 0.0, 1000), None);
    }
}
