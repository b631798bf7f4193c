//! L-BFGS for the unpenalised or L2 objective: what `auto` runs when the terms are too many for
//! newton's Hessian. Each iteration is one full pass (objective and gradient, the rows read
//! once), so its cost grows with rows × terms where newton's grows with rows × terms².
//!
//! The limited-memory update is Nocedal's two-loop recursion over the last [`MEMORY`] steps.
//! The line search backtracks from the full step until the objective falls by a fraction of the
//! slope (Armijo): the objective is convex, so every accepted step keeps the curvature sᵀy
//! positive and the update well defined.
//!
//! An unpenalised fit turns to Newton's steps once its gradient is small
//! ([`NEWTON_FINISH_GRADIENT`]): from there newton converges in a step or two. With dense terms
//! its last Hessian is the one the standard errors need; with one sparse column each step
//! solves the Hessian's arrow of dense terms and levels in one pass.
//!
//! Hand-written (≈ 100 lines) rather than taken from `argmin`: the loop must hand each
//! iteration to [`Progress`] (the live curve, the stop rules, a cancel), and the passes must be
//! the ones every other solver uses, which a generic optimiser's problem trait would wrap in
//! copies.

use std::collections::VecDeque;

use super::sparse;
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

/// The gradient's norm at which an unpenalised L-BFGS fit of dense terms turns to Newton's
/// steps: near enough that their convergence is quadratic, where L-BFGS's is linear and takes
/// as many iterations again to reach the tolerance.
pub(super) const NEWTON_FINISH_GRADIENT: f64 = 1e-4;

/// Newton's steps taken, at most, before L-BFGS carries on without them.
pub(super) const NEWTON_FINISH_STEPS: usize = 4;

/// The fit: one epoch event per iteration, measured at the iteration's accepted point (the
/// line search's last pass is that measurement, so an iteration costs its passes alone). Where
/// it ends by [`newton_finish`], the Hessian that finish used comes back too.
pub(super) fn fit_lbfgs<F: FnMut(&super::EpochEvent)>(
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, StopReason, Option<Vec<f64>>) {
    let l2 = data.params.l2;
    let mut w = Weights::zeros(data.train.terms());
    let (mut f, mut g) = objective(&w, data.train, l2);
    let mut curvature = Curvature::new();
    let mut finish = finishes_by_newton(data);
    let mut epoch = 0;
    while epoch < data.params.epochs {
        epoch += 1;
        if data.cancelled() {
            return (w, StopReason::Cancelled, None);
        }
        let Some((candidate, s, ft, gt)) = line_search(&w, (f, &g), &mut curvature, data) else {
            // No step lowers the objective any more: it has stopped improving, at the optimum
            // to working precision unless the gradient says otherwise.
            return (w, StopReason::Plateau, None);
        };
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        curvature.remember(s, y);
        (w, f, g) = (candidate, ft, gt);
        let m = Measurement::from_objective((f, g.clone()), &w, data);
        if let Some(reason) = progress.epoch_done(epoch, &m, &mut w) {
            return (w, reason, None);
        }
        if finish && norm(&g) <= NEWTON_FINISH_GRADIENT {
            finish = false;
            if let Some((reason, hessian)) =
                newton_finish(&mut w, (&mut f, &mut g), &mut epoch, data, progress)
            {
                return (w, reason, hessian);
            }
        }
    }
    (w, StopReason::MaxEpochs, None)
}

/// Where a step from `w` along the L-BFGS direction lands (backtracking from its first
/// length): the weights, the step, and the objective and gradient there; `None` when no step
/// lowers the objective.
fn line_search(
    w: &Weights,
    (f, g): (f64, &[f64]),
    curvature: &mut Curvature,
    data: &FitData<'_>,
) -> Option<(Weights, Vec<f64>, f64, Vec<f64>)> {
    let (direction, slope, mut t) = curvature.descent(g);
    (0..MAX_HALVINGS).find_map(|_| {
        // w + t·direction: the gradient step of the other solvers, by −t.
        let mut candidate = w.clone();
        step(&mut candidate, &direction, -t);
        let (ft, gt) = objective(&candidate, data.train, data.params.l2);
        let decreased = ft <= f + SUFFICIENT_DECREASE * t * slope
            || approximately_wolfe((f, slope), (ft, dot(&gt, &direction)));
        let taken = t;
        t *= 0.5;
        decreased.then(|| (candidate, direction.iter().map(|v| taken * v).collect(), ft, gt))
    })
}

/// Whether the fit ends by [`newton_finish`]: unpenalised, and with dense terms only where
/// its standard errors are given (no class weights), which need a Hessian at the end anyway;
/// with one sparse column, whose Newton step costs a pass ([`sparse::newton_delta`]), always.
/// The dense finish's last Hessian is the standard errors', so it costs one Hessian pass more
/// than L-BFGS to the tolerance would, in place of about as many iterations again as it took
/// to get here.
fn finishes_by_newton(data: &FitData<'_>) -> bool {
    data.params.l2 == 0.0
        && match data.train.sparse {
            None => data.train.class_weights == [1.0, 1.0],
            Some(sparse) => sparse.columns.len() == 1,
        }
}

/// Newton's steps from `w`, near the optimum. With dense terms they are newton's own: each
/// step's pass makes the Hessian at the point it lands on, so the last one is the standard
/// errors', at the returned weights, as newton's is. With a sparse column, each is
/// [`sparse::newton_delta`] and a pass where it lands. Each step is an epoch of the curve, and
/// the tolerance is met as the other solvers meet it. `None` (with `w`, `f`, `g` and `epoch` at
/// the last step taken) when a step fails or they run out first; else why the fit stopped,
/// with the summed Hessian at `w` when it converged with dense terms.
fn newton_finish<F: FnMut(&super::EpochEvent)>(
    w: &mut Weights,
    (f, g): (&mut f64, &mut Vec<f64>),
    epoch: &mut usize,
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> Option<(StopReason, Option<Vec<f64>>)> {
    let (ex, l2) = (data.train, data.params.l2);
    let mut at = None;
    for _ in 0..NEWTON_FINISH_STEPS {
        if *epoch >= data.params.epochs || data.cancelled() {
            return None;
        }
        let mut next = w.clone();
        let (f_next, g_next) = match ex.sparse {
            None => super::newton_step(&mut next, ex, l2, &mut at)?,
            Some(sparse) => {
                step(&mut next, &sparse::newton_delta(w, ex, sparse)?, 1.0);
                let (f_next, g_next) = objective(&next, ex, l2);
                // Past rounding, a step that raises the objective or not the gradient is not
                // Newton's convergence: L-BFGS carries on from where the steps got to.
                if !(f_next <= *f + 1e-14 * f.abs() && norm(&g_next) < norm(g)) {
                    return None;
                }
                (f_next, g_next)
            }
        };
        *epoch += 1;
        (*w, *f, *g) = (next, f_next, g_next);
        let m = Measurement::from_objective((*f, g.clone()), w, data);
        if let Some(reason) = progress.epoch_done(*epoch, &m, w) {
            let hessian = at.filter(|_| reason == StopReason::Converged);
            return Some((reason, hessian.map(|sums| super::symmetric(sums.hess, ex.d + 1))));
        }
    }
    None
}
