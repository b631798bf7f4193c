//! L-BFGS for the unpenalised or L2 objective: what `auto` runs when the terms are too many for
//! newton's Hessian. Each iteration is one full pass (objective and gradient, the rows read
//! once), so its cost grows with rows × terms where newton's grows with rows × terms².
//!
//! The limited-memory update is Nocedal's two-loop recursion over the last [`MEMORY`] steps.
//! The line search backtracks from the full step until the objective falls by a fraction of the
//! slope (Armijo): the objective is convex, so every accepted step keeps the curvature sᵀy
//! positive and the update well defined.
//!
//! Hand-written (≈ 100 lines) rather than taken from `argmin`: the loop must hand each
//! iteration to [`Progress`] (the live curve, the stop rules, a cancel), and the passes must be
//! the ones every other solver uses, which a generic optimiser's problem trait would wrap in
//! copies.

use std::collections::VecDeque;

use super::{FitData, Measurement, Progress, StopReason, Weights, dot, norm, objective, step};

/// Curvature pairs kept: scikit-learn's and SciPy's default.
const MEMORY: usize = 10;

/// The objective must fall by this fraction of the step's slope (the usual Armijo constant).
pub(super) const SUFFICIENT_DECREASE: f64 = 1e-4;

/// Halvings of the step before the line search gives up: the direction then gains nothing the
/// objective's rounding can show, which is an optimum to working precision.
pub(super) const MAX_HALVINGS: usize = 40;

/// The step pairs (s, y, 1/sᵀy), the oldest first. The K-class L-BFGS keeps its own.
pub(super) struct Curvature {
    pub(super) pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
}

impl Curvature {
    pub(super) fn new() -> Curvature {
        Curvature { pairs: VecDeque::with_capacity(MEMORY) }
    }

    /// −H·g, H the inverse-Hessian approximation of the pairs (two-loop recursion), its
    /// initial scale sᵀy/yᵀy from the newest pair; −g before any pair.
    pub(super) fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q = g.to_vec();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let alpha = rho * dot(s, &q);
            axpy(&mut q, -alpha, y);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = self.pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), alpha) in self.pairs.iter().zip(alphas.into_iter().rev()) {
            let beta = rho * dot(y, &q);
            axpy(&mut q, alpha - beta, s);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }

    /// The next search direction from the gradient `g`, its slope along `g` and the first
    /// step length to try. Where the direction is not one of descent (rounding spoilt the
    /// update, or the slope is NaN) the memory goes and the search starts over from steepest
    /// descent; a step with no curvature to scale it has unit length, as SciPy's.
    pub(super) fn descent(&mut self, g: &[f64]) -> (Vec<f64>, f64, f64) {
        let mut direction = self.direction(g);
        let mut slope = dot(g, &direction);
        if slope.is_nan() || slope >= 0.0 {
            self.pairs.clear();
            direction = g.iter().map(|v| -v).collect();
            slope = -dot(g, g);
        }
        let first_step = if self.pairs.is_empty() { 1.0 / norm(g).max(1.0) } else { 1.0 };
        (direction, slope, first_step)
    }

    /// Keeps the pair if its curvature is positive beyond rounding; the oldest goes at
    /// [`MEMORY`].
    pub(super) fn remember(&mut self, s: Vec<f64>, y: Vec<f64>) {
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * norm(&s) * norm(&y) {
            if self.pairs.len() == MEMORY {
                self.pairs.pop_front();
            }
            self.pairs.push_back((s, y, 1.0 / sy));
        }
    }
}

/// Hager and Zhang's approximate Wolfe conditions (CG_DESCENT, 2005): near the optimum the
/// objective's change falls below its rounding, and Armijo's test, on values, can no longer
/// tell a good step; the slope still can. A step is then taken if the objective has not risen
/// past rounding and the slope along the direction has flattened (to at most `CURVATURE` of
/// its start) without turning steeply up. Without it L-BFGS stops where the values stop
/// telling, ≈ √ε from the optimum in the weights.
fn approximately_wolfe((f, slope): (f64, f64), (ft, slope_t): (f64, f64)) -> bool {
    const CURVATURE: f64 = 0.9;
    const DECREASE: f64 = 0.1;
    const ROUNDING: f64 = 1e-14;
    ft <= f + ROUNDING * f.abs()
        && CURVATURE * slope <= slope_t
        && slope_t <= (2.0 * DECREASE - 1.0) * slope
}

fn axpy(to: &mut [f64], a: f64, x: &[f64]) {
    for (t, v) in to.iter_mut().zip(x) {
        *t += a * v;
    }
}

/// The fit: one epoch event per iteration, measured at the iteration's accepted point (the
/// line search's last pass is that measurement, so an iteration costs its passes alone).
pub(super) fn fit_lbfgs<F: FnMut(&super::EpochEvent)>(
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, StopReason) {
    let l2 = data.params.l2;
    let mut w = Weights::zeros(data.train.terms());
    let (mut f, mut g) = objective(&w, data.train, l2);
    let mut curvature = Curvature::new();
    for epoch in 1..=data.params.epochs {
        if data.cancelled() {
            return (w, StopReason::Cancelled);
        }
        let (direction, slope, mut t) = curvature.descent(&g);
        let accepted = (0..MAX_HALVINGS).find_map(|_| {
            // w + t·direction: the gradient step of the other solvers, by −t.
            let mut candidate = w.clone();
            step(&mut candidate, &direction, -t);
            let (ft, gt) = objective(&candidate, data.train, l2);
            let decreased = ft <= f + SUFFICIENT_DECREASE * t * slope
                || approximately_wolfe((f, slope), (ft, dot(&gt, &direction)));
            let taken = t;
            t *= 0.5;
            decreased.then_some((taken, candidate, ft, gt))
        });
        let Some((taken, candidate, ft, gt)) = accepted else {
            // No step lowers the objective any more: it has stopped improving, at the optimum
            // to working precision unless the gradient says otherwise.
            return (w, StopReason::Plateau);
        };
        let s: Vec<f64> = direction.iter().map(|v| taken * v).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        curvature.remember(s, y);
        (w, f, g) = (candidate, ft, gt);
        let m = Measurement::from_objective((f, g.clone()), &w, data);
        if let Some(reason) = progress.epoch_done(epoch, &m, &mut w) {
            return (w, reason);
        }
    }
    (w, StopReason::MaxEpochs)
}
