//! K-class (multinomial) logistic regression: [`fit_multinomial`] fits a [`Multinomial`] by
//! Newton's method and [`multinomial_statistics`] gives its coefficient table per class.
//!
//! A K-class model has one block of weights (intercept and terms) per class; a row's logits are
//! the blocks' scores and its probabilities their softmax. Adding one vector to every block
//! changes no probability, so the blocks are pinned one of two ways ([`Coding`]):
//! - **Reference** (unpenalised fits): the reference class's block is zero and the other K−1
//!   are estimated, as statsmodels' `MNLogit` and R's `nnet::multinom` do. Each estimate is the
//!   change in the log of P(class) / P(reference), with a standard error from the inverse of the
//!   (K−1)(d+1)-square Hessian.
//! - **Symmetric** (an L2 penalty): all K blocks, as scikit-learn and glmnet fit them. The
//!   penalty pins the term weights (they sum to zero over the classes at the optimum); the
//!   intercepts are pinned to sum to zero by a penalty on their sum, which is zero there and so
//!   changes no probability and no other estimate.
//!
//! Labels are class indices 0 to K−1 as `f64` in [`Examples::y`], the binary model's 0/1
//! labels generalised; frequency weights and offsets are not taken here yet.

use super::{EpochEvent, Examples, StopReason, Weights, norm, per_sample_improvement, solve_spd};
use crate::coefficients::{Coefficients, TermStatistics, unscaled, with_standard_errors};
use crate::scale::Transform;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// How the K blocks of a multinomial model are pinned (see the module's doc).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "coding")]
pub enum Coding {
    /// The block of class `class` is zero; the others are estimated against it.
    Reference { class: usize },
    /// Every block is estimated; the term weights and the intercepts each sum to zero.
    Symmetric,
}

/// A K-class model's weights: one block per class, in class order (for reference coding the
/// reference's block is zero).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Multinomial {
    #[serde(flatten)]
    pub coding: Coding,
    pub blocks: Vec<Weights>,
}

impl Multinomial {
    pub fn zeros(classes: usize, d: usize, coding: Coding) -> Multinomial {
        Multinomial { coding, blocks: vec![Weights::zeros(d); classes] }
    }

    pub fn classes(&self) -> usize {
        self.blocks.len()
    }

    /// The classes whose blocks are parameters: all but the reference, in class order.
    pub fn fitted(&self) -> Vec<usize> {
        (0..self.classes()).filter(|&c| self.coding != Coding::Reference { class: c }).collect()
    }

    /// Each class's probability for one row of (scaled) terms, written into `out` (K long).
    pub fn probabilities(&self, row: &[f64], out: &mut [f64]) {
        for (o, block) in out.iter_mut().zip(&self.blocks) {
            *o = block.logit(row);
        }
        softmax(out);
    }
}

/// The softmax of `z` in place, shifted by its largest entry so that no exp overflows; returns
/// ln Σ e^z (the log-partition), so that a class's log-probability is z_c − that.
fn softmax(z: &mut [f64]) -> f64 {
    let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - top).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
    top + sum.ln()
}

/// What [`fit_multinomial`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct MultinomialFit {
    pub model: Multinomial,
    pub stop_reason: StopReason,
    pub curve: Vec<EpochEvent>,
    /// Σ −ln P(yᵢ) over the rows at the estimates: −log-likelihood.
    pub loss_sum: f64,
    /// The Hessian of `loss_sum` in the fitted blocks' parameters (block by block, intercept
    /// first in each), from the last pass: its inverse is the estimates' covariance.
    pub hessian_sum: Vec<f64>,
}

/// Sums over the rows at one set of blocks: the loss, the gradient and the Hessian in the
/// fitted blocks' parameters.
struct Pass {
    loss: f64,
    grad: Vec<f64>,
    hess: Vec<f64>,
    /// Each row's class probabilities (n × K), which the Hessian is made from.
    probabilities: Mat<f64>,
}

impl Pass {
    /// This pass with its Hessian, if it was made without.
    fn with_hessian(mut self, model: &Multinomial, ex: Examples<'_>) -> Pass {
        if self.hess.is_empty() {
            self.hess = hessian(&self.probabilities, &model.fitted(), ex);
        }
        self
    }
}

/// One pass over the rows at `model`: the summed loss, its gradient in the fitted parameters
/// and (when asked for) its Hessian, m·(d+1) square for m fitted blocks ([`hessian`]). The
/// logits are one product X·W (n × d by d × K) and the gradient another, Xᵀ(P − Y), by faer:
/// row by row they were as long as newton's Hessian on narrow data, and L-BFGS is all passes.
fn pass(model: &Multinomial, ex: Examples<'_>, want_hess: bool) -> Pass {
    let (n, d, k, classes) = (ex.rows(), ex.d, ex.d + 1, model.classes());
    let x = MatRef::from_row_major_slice(ex.x, n, d);
    let weights = Mat::<f64>::from_fn(d, classes, |j, c| model.blocks[c].weights[j]);
    let mut probabilities = Mat::<f64>::zeros(n, classes);
    matmul(probabilities.as_mut(), Accum::Replace, x, weights.as_ref(), 1.0, Par::rayon(0));
    let mut loss = 0.0;
    let mut z = vec![0.0; classes];
    for (i, &label) in ex.y.iter().enumerate() {
        for (c, zc) in z.iter_mut().enumerate() {
            *zc = probabilities[(i, c)] + model.blocks[c].bias;
        }
        let chosen = z[label as usize];
        loss += softmax(&mut z) - chosen;
        for (c, p) in z.iter().enumerate() {
            probabilities[(i, c)] = *p;
        }
    }
    // P − Y over the fitted classes, and the gradient from it: its column sums (the
    // intercepts') and Xᵀ(P − Y) (the terms').
    let fitted = model.fitted();
    let residuals = Mat::<f64>::from_fn(n, fitted.len(), |i, a| {
        probabilities[(i, fitted[a])] - f64::from(u8::from(ex.y[i] as usize == fitted[a]))
    });
    let mut terms = Mat::<f64>::zeros(d, fitted.len());
    matmul(terms.as_mut(), Accum::Replace, x.transpose(), residuals.as_ref(), 1.0, Par::rayon(0));
    let mut grad = vec![0.0; fitted.len() * k];
    for (a, g) in grad.chunks_exact_mut(k).enumerate() {
        g[0] = residuals.col_as_slice(a).iter().sum();
        for (j, gj) in g[1..].iter_mut().enumerate() {
            *gj = terms[(j, a)];
        }
    }
    let hess = if want_hess { hessian(&probabilities, &fitted, ex) } else { Vec::new() };
    Pass { loss, grad, hess, probabilities }
}

/// Rows at a time in [`hessian`]: its scaled copy of them is this many rows of m·(d+1).
const HESSIAN_CHUNK_ROWS: usize = 8_192;

/// The Hessian of the summed loss in the fitted blocks' parameters (see [`pass`]): with
/// uᵢ = pᵢ ⊗ aᵢ (each fitted class's probability times the row's design aᵢ = (1, xᵢ)), it is
/// blockdiag(Σ pᵢₐ aᵢaᵢᵀ) − Σ uᵢuᵢᵀ. The second term is one symmetric rank-k update of the
/// rows' u's, a chunk of rows at a time, where a product per pair of classes was m(m+1)/2
/// narrow ones; the first reuses u's blocks.
fn hessian(probabilities: &Mat<f64>, fitted: &[usize], ex: Examples<'_>) -> Vec<f64> {
    let (n, d, k, m) = (ex.rows(), ex.d, ex.d + 1, fitted.len());
    let size = m * k;
    let mut h = Mat::<f64>::zeros(size, size);
    for start in (0..n).step_by(HESSIAN_CHUNK_ROWS) {
        let rows = HESSIAN_CHUNK_ROWS.min(n - start);
        let design =
            Mat::<f64>::from_fn(
                rows,
                k,
                |i, j| if j == 0 { 1.0 } else { ex.x[(start + i) * d + j - 1] },
            );
        let mut u = Mat::<f64>::zeros(rows, size);
        for (a, &class) in fitted.iter().enumerate() {
            let p = &probabilities.col_as_slice(class)[start..start + rows];
            for j in 0..k {
                for ((value, &x), &pa) in
                    u.col_as_slice_mut(a * k + j).iter_mut().zip(design.col_as_slice(j)).zip(p)
                {
                    *value = pa * x;
                }
            }
        }
        // The lower triangle only: a symmetric rank-k update, half the full product's work.
        triangular::matmul(
            h.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            u.transpose(),
            BlockStructure::Rectangular,
            u.as_ref(),
            BlockStructure::Rectangular,
            -1.0,
            Par::rayon(0),
        );
        for a in 0..m {
            let block = h.as_mut().submatrix_mut(a * k, a * k, k, k);
            matmul(
                block,
                Accum::Add,
                design.transpose(),
                u.as_ref().subcols(a * k, k),
                1.0,
                Par::rayon(0),
            );
        }
    }
    // Both triangles, from the lower (the diagonal blocks' upper halves were added to it too,
    // and are overwritten by their mirror).
    (0..size * size)
        .map(|i| (i / size, i % size))
        .map(|(r, c)| if r >= c { h[(r, c)] } else { h[(c, r)] })
        .collect()
}

/// The objective (mean loss plus the penalties) and its gradient and Hessian, from a pass.
fn objective(model: &Multinomial, sums: &Pass, n: f64, l2: f64) -> (f64, Vec<f64>, Vec<f64>) {
    let k = sums.grad.len() / model.fitted().len();
    let size = sums.grad.len();
    let mut value = sums.loss / n;
    let mut grad: Vec<f64> = sums.grad.iter().map(|g| g / n).collect();
    let mut hess: Vec<f64> = sums.hess.iter().map(|h| h / n).collect();
    let fitted = model.fitted();
    for (a, &class) in fitted.iter().enumerate() {
        let block = &model.blocks[class];
        value += 0.5 * l2 * block.weights.iter().map(|w| w * w).sum::<f64>();
        for (j, w) in block.weights.iter().enumerate() {
            let at = a * k + 1 + j;
            grad[at] += l2 * w;
            if !hess.is_empty() {
                hess[at * size + at] += l2;
            }
        }
    }
    if model.coding == Coding::Symmetric {
        // ½(Σ intercepts)²: zero at the symmetric optimum, and what makes the Hessian regular.
        let sum: f64 = model.blocks.iter().map(|b| b.bias).sum();
        value += 0.5 * sum * sum;
        for a in 0..fitted.len() {
            grad[a * k] += sum;
            if !hess.is_empty() {
                for b in 0..fitted.len() {
                    hess[a * k * size + b * k] += 1.0;
                }
            }
        }
    }
    (value, grad, hess)
}

/// `model` moved by −t·`delta` in its fitted parameters.
fn moved(model: &Multinomial, delta: &[f64], t: f64) -> Multinomial {
    let mut next = model.clone();
    let k = delta.len() / model.fitted().len();
    for (a, class) in model.fitted().into_iter().enumerate() {
        let block = &mut next.blocks[class];
        block.bias -= t * delta[a * k];
        for (w, dw) in block.weights.iter_mut().zip(&delta[a * k + 1..(a + 1) * k]) {
            *w -= t * dw;
        }
    }
    next
}

/// The iterations Newton's method is given; a fit that has not converged by then has estimates
/// that grow without bound (separated classes) or a Hessian that is singular.
const MAX_ITERATIONS: usize = 100;

/// Fits a K-class model to `ex` (labels 0 to `classes` − 1) by Newton's method with a
/// backtracking line search, minimising the mean loss plus (l2/2)‖terms‖². It stops when the
/// Newton decrement is at rounding level, after one more step (the convergence is quadratic, so
/// that step takes the estimates from about 1e-6 to rounding).
/// A fit cancelled between iterations keeps its last estimates, stopped as `Cancelled`.
pub fn fit_multinomial(
    ex: Examples<'_>,
    (classes, coding): (usize, Coding),
    l2: f64,
    cancel: &AtomicBool,
    mut on_iteration: impl FnMut(&EpochEvent),
) -> MultinomialFit {
    let started = std::time::Instant::now();
    let n = ex.rows().max(1) as f64;
    let mut model = Multinomial::zeros(classes, ex.d, coding);
    let mut sums = pass(&model, ex, true);
    let mut curve = Vec::new();
    let mut stop_reason = StopReason::MaxEpochs;
    let mut polish = false;
    for iteration in 1..=MAX_ITERATIONS {
        if cancel.load(Ordering::Relaxed) {
            stop_reason = StopReason::Cancelled;
            break;
        }
        let (before, grad, hess) = objective(&model, &sums, n, l2);
        let Some(delta) = solve_spd(&hess, &grad, grad.len()) else {
            stop_reason = StopReason::Separated;
            break;
        };
        let decrement: f64 = grad.iter().zip(&delta).map(|(g, s)| g * s).sum();
        let (next, next_sums) = line_search(&model, ex, &delta, before, n, l2);
        model = next;
        sums = next_sums;
        let (after, after_grad, _) = objective(&model, &sums, n, l2);
        let grad_norm = after_grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        let event = pass_event(iteration, sums.loss / n, grad_norm, started);
        on_iteration(&event);
        curve.push(event);
        if polish {
            stop_reason = StopReason::Converged;
            break;
        }
        polish = decrement <= 1e-20 * after.abs().max(1.0) || after >= before;
    }
    MultinomialFit { model, stop_reason, curve, loss_sum: sums.loss, hessian_sum: sums.hess }
}

/// The longest step of 1, ½, ¼, … along −`delta` that does not raise the objective, with the
/// pass at it (its Hessian made once the step is taken, not for every step tried).
fn line_search(
    model: &Multinomial,
    ex: Examples<'_>,
    delta: &[f64],
    before: f64,
    n: f64,
    l2: f64,
) -> (Multinomial, Pass) {
    let mut t = 1.0;
    loop {
        let candidate = moved(model, delta, t);
        let sums = pass(&candidate, ex, false);
        let (after, _, _) = objective(&candidate, &sums, n, l2);
        if after <= before || t < 1e-10 {
            let sums = sums.with_hessian(&candidate, ex);
            return (candidate, sums);
        }
        t *= 0.5;
    }
}

/// One fitted class's coefficient table against the reference class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassTerms {
    pub class: usize,
    /// The intercept and each term; `odds_ratio` is the relative-risk ratio e^estimate.
    pub terms: Vec<TermStatistics>,
}

/// The coefficient table per fitted class of an unpenalised reference-coded fit, in the data's
/// units through `transform` (the fit was made on the scaled terms): estimates, standard errors
/// from the inverse Hessian, z, p and 95% intervals. `None` when the Hessian is singular.
pub fn multinomial_statistics(
    fit: &MultinomialFit,
    transform: &Transform,
    term_names: &[String],
) -> Option<Vec<ClassTerms>> {
    let fitted = fit.model.fitted();
    let k = fit.model.blocks[0].weights.len() + 1;
    let size = fitted.len() * k;
    // A fit that stopped before the optimum made no Hessian there.
    if fit.hessian_sum.len() != size * size {
        return None;
    }
    let covariance = super::invert_spd(&fit.hessian_sum, size)?;
    let tables = fitted
        .iter()
        .enumerate()
        .map(|(a, &class)| {
            let block: Vec<f64> =
                (0..k * k).map(|i| covariance[(a * k + i / k) * size + a * k + i % k]).collect();
            let (intercept, coefficients) =
                in_data_units(&fit.model.blocks[class], transform, term_names);
            let terms = with_standard_errors(
                TermStatistics::estimates_only(intercept, &coefficients),
                &block,
                transform,
            );
            ClassTerms { class, terms }
        })
        .collect();
    Some(tables)
}

/// A block's intercept and coefficients in the data's units, from its weights on the scaled
/// terms: wⱼ/sⱼ per term, and the intercept less Σ wⱼ·oⱼ/sⱼ.
pub fn in_data_units(
    block: &Weights,
    transform: &Transform,
    term_names: &[String],
) -> (f64, Coefficients) {
    let (intercept, thetas) = unscaled(transform, block.bias, &block.weights);
    let coefficients = term_names.iter().cloned().zip(thetas).collect();
    (intercept, coefficients)
}

/// One class's intercept and coefficients in the data's units.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassEstimates {
    pub class: String,
    pub intercept: f64,
    pub coefficients: Coefficients,
}

/// What a K-class model carries beyond the binary model's fields: its blocks on the scaled
/// terms, every class's estimates in the data's units, and, for an unpenalised fit, the
/// coefficient table of each class against the reference.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassModel {
    pub weights: Multinomial,
    /// One per class, in class order (for reference coding the reference's are zeros).
    pub estimates: Vec<ClassEstimates>,
    /// One per fitted class: with statistics for an unpenalised converged fit, else the
    /// estimates alone ([`ClassModel::estimates_only`]).
    pub tables: Vec<ClassTerms>,
}

impl ClassModel {
    /// The model of `fit` on terms scaled by `transform`, its classes named `classes`.
    pub fn new(fit: &MultinomialFit, transform: &Transform, classes: &[String]) -> ClassModel {
        let names = transform.term_names();
        let estimates = fit
            .model
            .blocks
            .iter()
            .zip(classes)
            .map(|(block, class)| {
                let (intercept, coefficients) = in_data_units(block, transform, names);
                ClassEstimates { class: class.clone(), intercept, coefficients }
            })
            .collect();
        ClassModel { weights: fit.model.clone(), estimates, tables: Vec::new() }
    }

    /// A table per fitted class with the estimates alone: what a fit without statistics shows.
    pub fn estimates_only(&self) -> Vec<ClassTerms> {
        self.weights
            .fitted()
            .into_iter()
            .map(|class| {
                let e = &self.estimates[class];
                ClassTerms {
                    class,
                    terms: TermStatistics::estimates_only(e.intercept, &e.coefficients),
                }
            })
            .collect()
    }

    /// The class the estimates are against, for reference coding.
    pub fn reference(&self) -> Option<usize> {
        match self.weights.coding {
            Coding::Reference { class } => Some(class),
            Coding::Symmetric => None,
        }
    }

    /// Each class's probability for one row of terms in the data's units, into `out`.
    pub fn probabilities_raw(&self, transform: &Transform, row: &[f64], out: &mut [f64]) {
        for (o, block) in out.iter_mut().zip(&self.weights.blocks) {
            let mut z = block.bias;
            for (((v, w), offset), scale) in
                row.iter().zip(&block.weights).zip(&transform.offset).zip(&transform.scale)
            {
                z += w * (v - offset) / scale;
            }
            *o = z;
        }
        softmax(out);
    }
}

/// What [`fit_multinomial_sgd`] steps by and stops on: the binary sgd's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdSchedule {
    pub learning_rate: f64,
    pub lr_decay: f64,
    pub epochs: usize,
    pub tolerance: f64,
    pub patience: usize,
    pub seed: u64,
}

/// Fits a K-class model by the seed's per-sample rule with the softmax gradient: each epoch
/// visits the rows in a new seeded order, and each row moves every class's block by
/// −α·((pₖ − [y = k])·(1, x) + l2·w), the step α/√(1 + decay·epoch) as the binary sgd's. The
/// blocks are symmetric (they start at zero and each row's steps sum to zero over the classes).
/// It stops at the epoch limit, a cancel, or when for `patience` epochs the training loss has
/// not improved by the tolerance or [`PER_SAMPLE_PLATEAU`](super::PER_SAMPLE_PLATEAU) of itself,
/// whichever is more, as the binary rule; an iterative fit, so it is not the optimum.
pub fn fit_multinomial_sgd(
    ex: Examples<'_>,
    classes: usize,
    (l2, schedule): (f64, SgdSchedule),
    cancel: &AtomicBool,
    mut on_epoch: impl FnMut(&EpochEvent),
) -> MultinomialFit {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let started = std::time::Instant::now();
    let n = ex.rows().max(1) as f64;
    let mut model = Multinomial::zeros(classes, ex.d, Coding::Symmetric);
    let mut order: Vec<usize> = (0..ex.rows()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(schedule.seed);
    let (mut curve, mut best, mut stale) = (Vec::new(), f64::INFINITY, 0);
    let mut stop_reason = StopReason::MaxEpochs;
    for epoch in 1..=schedule.epochs {
        if cancel.load(Ordering::Relaxed) {
            stop_reason = StopReason::Cancelled;
            break;
        }
        order.shuffle(&mut rng);
        let rate = schedule.learning_rate / (1.0 + schedule.lr_decay * (epoch - 1) as f64).sqrt();
        sgd_epoch(&mut model, ex, &order, rate, l2);
        let sums = pass(&model, ex, false);
        let (objective, grad, _) = objective(&model, &sums, n, l2);
        let event = pass_event(
            epoch,
            sums.loss / n,
            grad.iter().map(|g| g * g).sum::<f64>().sqrt(),
            started,
        );
        on_epoch(&event);
        curve.push(event);
        if objective < best - per_sample_improvement(schedule.tolerance, best) {
            (best, stale) = (objective, 0);
        } else {
            stale += 1;
            if schedule.patience > 0 && stale >= schedule.patience {
                stop_reason = StopReason::Plateau;
                break;
            }
        }
    }
    let loss_sum = pass(&model, ex, false).loss;
    MultinomialFit { model, stop_reason, curve, loss_sum, hessian_sum: Vec::new() }
}

/// One epoch of per-sample softmax steps over the rows in `order`.
fn sgd_epoch(model: &mut Multinomial, ex: Examples<'_>, order: &[usize], rate: f64, l2: f64) {
    let d = ex.d;
    let mut p = vec![0.0; model.classes()];
    for &i in order {
        let row = &ex.x[i * d..(i + 1) * d];
        model.probabilities(row, &mut p);
        let class = ex.y[i] as usize;
        for (k, block) in model.blocks.iter_mut().enumerate() {
            let residual = p[k] - f64::from(u8::from(k == class));
            block.bias -= rate * residual;
            for (w, x) in block.weights.iter_mut().zip(row) {
                *w -= rate * (residual * x + l2 * *w);
            }
        }
    }
}

/// The objective `model` reaches on `ex`: the mean loss plus (l2/2)‖terms‖², what an
/// iterative fit is measured against the optimum by.
pub fn mean_objective(model: &Multinomial, ex: Examples<'_>, l2: f64) -> f64 {
    objective(model, &pass(model, ex, false), ex.rows().max(1) as f64, l2).0
}

/// Fits a K-class model by L-BFGS (the binary L-BFGS's two-loop recursion and Armijo line
/// search, `super::lbfgs`): what `auto` runs when the parameters are too many for newton's
/// Hessian, whose cost grows with rows × parameters² where a pass's grows with rows × terms.
/// It stops when the gradient's norm is at most `tolerance` (an optimum: the Hessian is then
/// made once, for the statistics), or when no step lowers the objective. Unpenalised, it turns
/// to newton's steps once the gradient is small ([`newton_finish`]), as the binary L-BFGS does.
pub fn fit_multinomial_lbfgs(
    ex: Examples<'_>,
    (classes, coding): (usize, Coding),
    (l2, tolerance, epochs): (f64, f64, usize),
    cancel: &AtomicBool,
    mut on_iteration: impl FnMut(&EpochEvent),
) -> MultinomialFit {
    use super::lbfgs::{Curvature, MAX_HALVINGS, NEWTON_FINISH_GRADIENT, SUFFICIENT_DECREASE};
    let started = std::time::Instant::now();
    let n = ex.rows().max(1) as f64;
    let evaluate = |model: &Multinomial| {
        let sums = pass(model, ex, false);
        let (f, g, _) = objective(model, &sums, n, l2);
        (f, g, sums)
    };
    let mut model = Multinomial::zeros(classes, ex.d, coding);
    let (mut f, mut g, mut sums) = evaluate(&model);
    let (mut curvature, mut curve) = (Curvature::new(), Vec::new());
    let mut emit = |iteration: usize, sums: &Pass, grad_norm: f64| {
        let event = pass_event(iteration, sums.loss / n, grad_norm, started);
        on_iteration(&event);
        curve.push(event);
    };
    let (mut stop_reason, mut iteration, mut finish) = (StopReason::MaxEpochs, 0, l2 == 0.0);
    while iteration < epochs {
        iteration += 1;
        if cancel.load(Ordering::Relaxed) {
            stop_reason = StopReason::Cancelled;
            break;
        }
        let (direction, slope, mut t) = curvature.descent(&g);
        // model + t·direction is `moved` by −t.
        let accepted = (0..MAX_HALVINGS).find_map(|_| {
            let candidate = moved(&model, &direction, -t);
            let (ft, gt, st) = evaluate(&candidate);
            let taken = t;
            t *= 0.5;
            (ft <= f + SUFFICIENT_DECREASE * taken * slope)
                .then_some((taken, candidate, ft, gt, st))
        });
        let Some((taken, candidate, ft, gt, st)) = accepted else {
            stop_reason = StopReason::Plateau;
            break;
        };
        curvature.remember(
            direction.iter().map(|v| taken * v).collect(),
            gt.iter().zip(&g).map(|(a, b)| a - b).collect(),
        );
        (model, f, g, sums) = (candidate, ft, gt, st);
        emit(iteration, &sums, norm(&g));
        if norm(&g) <= tolerance {
            stop_reason = StopReason::Converged;
            break;
        }
        if finish && norm(&g) <= NEWTON_FINISH_GRADIENT {
            finish = false;
            let state = (&mut model, &mut sums, &mut f, &mut g);
            let bounds = (ex, n, l2, tolerance, epochs);
            if newton_finish(state, &mut iteration, bounds, cancel, &mut emit) {
                stop_reason = StopReason::Converged;
                break;
            }
        }
    }
    let sums =
        if stop_reason == StopReason::Converged { sums.with_hessian(&model, ex) } else { sums };
    MultinomialFit { model, stop_reason, curve, loss_sum: sums.loss, hessian_sum: sums.hess }
}

/// Newton's steps from `model` near the optimum, as [`fit_multinomial`] takes them, each an
/// iteration of the curve: each step's pass makes the Hessian where it lands, so the last is
/// the statistics' own. True once the gradient's norm is at most the tolerance; false (the
/// state at the last step taken) when a step fails, the iterations run out or the fit is
/// cancelled, and L-BFGS carries on.
fn newton_finish(
    (model, sums, f, g): (&mut Multinomial, &mut Pass, &mut f64, &mut Vec<f64>),
    iteration: &mut usize,
    (ex, n, l2, tolerance, epochs): (Examples<'_>, f64, f64, f64, usize),
    cancel: &AtomicBool,
    emit: &mut impl FnMut(usize, &Pass, f64),
) -> bool {
    use super::lbfgs::NEWTON_FINISH_STEPS;
    for _ in 0..NEWTON_FINISH_STEPS {
        if *iteration >= epochs || cancel.load(Ordering::Relaxed) {
            return false;
        }
        if sums.hess.is_empty() {
            sums.hess = hessian(&sums.probabilities, &model.fitted(), ex);
        }
        let (before, grad, hess) = objective(model, sums, n, l2);
        let Some(delta) = solve_spd(&hess, &grad, grad.len()) else { return false };
        let (next, next_sums) = line_search(model, ex, &delta, before, n, l2);
        let (after, after_grad, _) = objective(&next, &next_sums, n, l2);
        if !(after <= before && norm(&after_grad) < norm(&grad)) {
            return false;
        }
        *iteration += 1;
        (*model, *sums, *f, *g) = (next, next_sums, after, after_grad);
        emit(*iteration, sums, norm(g));
        if norm(g) <= tolerance {
            return true;
        }
    }
    false
}

/// The event of an iteration or epoch that ended at a mean loss of `loss`: no validation rows.
fn pass_event(epoch: usize, loss: f64, grad_norm: f64, started: std::time::Instant) -> EpochEvent {
    EpochEvent {
        epoch,
        train_loss: loss,
        val_loss: None,
        grad_norm,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        path: None,
    }
}
