//! SAGA (Defazio, Bach and Lacoste-Julien, 2014): the seed's per-sample update, corrected by
//! the gradient each row last gave, so that it converges to the optimum (linearly, for the L2
//! objective) instead of wandering around it at the scale of its step. What `--solver saga`
//! runs, and scikit-learn's `saga` for the same objective.
//!
//! For a linear model a row's gradient is its residual times its terms, so the memory is one
//! number a row: the residual r_j it had when last visited. A visit of row j with residual r
//! steps by −η·((r − r_j)·x̃_j + ḡ + l2·w), with ḡ = (1/n)·Σ r_i·x̃_i the table's mean (x̃ the
//! terms with a leading 1 for the intercept), then updates ḡ and r_j. The step is 1/(3L), L
//! the largest curvature a single row can have: max ‖x̃‖²/4 + l2.
//!
//! With frequency weights wᵢ the objective is (1/W)·Σ wᵢ·lossᵢ, W = Σ wᵢ: each row's residual
//! is taken times n·wᵢ/W (exactly 1 unweighted), which keeps ḡ the objective's gradient, and
//! its curvature with it. An offset is in each row's logit.
//!
//! An epoch visits every row once in an order drawn from the seed (blocks of rows, as the
//! seed's SGD); then a full pass measures it for the curve and the stop rules, which end the
//! fit when the gradient's norm falls below the tolerance.

use super::{
    FitData, Measurement, Progress, StopReason, Weights, dot, objective, shuffle_blocks, sigmoid,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The table of residuals and its mean gradient; the step that goes with them.
struct Memory {
    residuals: Vec<f64>,
    /// (1/n)·Σ rᵢ·x̃ᵢ, bias first.
    mean_gradient: Vec<f64>,
    step: f64,
}

impl Memory {
    fn new(data: &FitData<'_>) -> Memory {
        let ex = data.train;
        let scale = row_scale(data);
        let rows = ex.x.chunks_exact(ex.d.max(1)).enumerate();
        let largest = rows.map(|(i, row)| scale(i) * (1.0 + dot(row, row))).fold(0.0, f64::max);
        let curvature = largest / 4.0 + data.params.l2;
        Memory {
            residuals: vec![0.0; ex.rows()],
            mean_gradient: vec![0.0; ex.d + 1],
            step: 1.0 / (3.0 * curvature),
        }
    }

    /// One visit of row `j` (terms `row`, label `y`, loss weight `weight`, offset `offset`).
    #[inline]
    fn visit(
        &mut self,
        w: &mut Weights,
        j: usize,
        row: &[f64],
        (y, weight, offset): (f64, f64, f64),
        l2: f64,
    ) {
        let residual = weight * (sigmoid(w.logit(row) + offset) - y);
        let change = residual - self.residuals[j];
        let (eta, n) = (self.step, self.residuals.len() as f64);
        w.bias -= eta * (change + self.mean_gradient[0]);
        for ((wk, x), mean) in w.weights.iter_mut().zip(row).zip(&self.mean_gradient[1..]) {
            *wk -= eta * (change * x + mean + l2 * *wk);
        }
        self.mean_gradient[0] += change / n;
        for (mean, x) in self.mean_gradient[1..].iter_mut().zip(row) {
            *mean += change * x / n;
        }
        self.residuals[j] = residual;
    }
}

/// n·wᵢ/W of row i: what its curvature is taken times (1 without frequency weights).
fn row_scale<'a>(data: &FitData<'a>) -> impl Fn(usize) -> f64 + 'a {
    let ex = data.train;
    let share = ex.rows() as f64 / ex.weight_sum();
    move |i| ex.row_weights.map_or(1.0, |w| w[i] * share)
}

pub(super) fn fit_saga<F: FnMut(&super::EpochEvent)>(
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, StopReason) {
    let (ex, l2) = (data.train, data.params.l2);
    let d = ex.d;
    let mut w = Weights::zeros(d);
    let mut memory = Memory::new(data);
    // n/W: a row's loss weight (its class's times its own) times this is its residual's scale.
    let share = ex.rows() as f64 / ex.weight_sum();
    let mut rng = ChaCha8Rng::seed_from_u64(data.params.seed);
    let mut order: Vec<usize> = (0..ex.rows()).collect();
    for epoch in 1..=data.params.epochs {
        if data.cancelled() {
            return (w, StopReason::Cancelled);
        }
        shuffle_blocks(&mut order, &mut rng);
        for &j in &order {
            let y = ex.y[j];
            memory.visit(
                &mut w,
                j,
                &ex.x[j * d..(j + 1) * d],
                (y, ex.weight_of(j, y) * share, ex.offset_of(j)),
                l2,
            );
        }
        let m = Measurement::from_objective(objective(&w, ex, l2), &w, data);
        if let Some(reason) = progress.epoch_done(epoch, &m, &mut w) {
            return (w, reason);
        }
    }
    (w, StopReason::MaxEpochs)
}
