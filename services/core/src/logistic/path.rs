//! Penalties that select terms: the elastic net fitted by coordinate descent along a path of λ,
//! and λ chosen by k-fold cross-validation, as glmnet does both (Friedman, Hastie and Tibshirani
//! 2010). Main items: [`Columns`] (the design a column at a time, which coordinate descent reads),
//! [`fit_path`], [`cross_validate`], [`CrossValidation`].
//!
//! The objective at λ and α is glmnet's: mean(−log-likelihood) + λ·(α‖w‖₁ + (1−α)/2·‖w‖²), the
//! intercept free. Each λ is solved from the last one's solution (a warm start) by IRLS: the
//! log-likelihood's quadratic approximation at the current weights, minimised one coordinate at
//! a time with the L1 part's soft threshold, so that a coefficient that should be zero is
//! exactly zero. Only the terms the sequential strong rule keeps are swept; the rest are checked
//! against the optimality (KKT) conditions afterwards and brought in if they fail them.
//!
//! Hand-written: no maintained Rust crate fits a penalised logistic path with glmnet's grid,
//! stopping rule and cross-validation, and these must match glmnet's numbers.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Weights, log_loss_at, sigmoid};

/// λ values on the default path: glmnet's `nlambda`.
const PATH_LENGTH: usize = 100;

/// glmnet's path stops early once the fraction of deviance explained gains less than this from
/// one λ to the next (`fdev`)…
const PATH_MIN_GAIN: f64 = 1e-5;
/// …or explains more than this (`devmax`)…
const PATH_MAX_EXPLAINED: f64 = 0.999;
/// …but never before this many λ (`mnlam`).
const PATH_MIN_POINTS: usize = 5;

/// cv.glmnet's bounds on a held-out row's probability in its deviance.
const CV_PROBABILITY_BOUND: f64 = 1e-5;

/// IRLS iterations at one λ before giving up on it: each is a Newton step, so a few suffice
/// unless the classes are (nearly) separated.
const MAX_IRLS_STEPS: usize = 100;
/// Sweeps of coordinate descent within one IRLS step.
const MAX_SWEEPS: usize = 100_000;

/// The most swept terms whose IRLS steps run on the weighted Gram matrix (glmnet's "covariance"
/// updates): a coordinate's move then costs a row of it, not a pass over the rows, and the
/// matrix's rows × terms² is paid once a step. Past this many terms the matrix costs more than
/// the sweeps it saves, and the moves go over the rows (glmnet's "naive" updates).
const GRAM_TERMS: usize = 256;

/// The design matrix a column at a time: coordinate descent reads one term over every row.
#[derive(Debug, Clone)]
pub struct Columns {
    rows: usize,
    terms: usize,
    values: Vec<f64>,
}

impl Columns {
    /// From a row-major matrix with `terms` values a row.
    pub fn from_rows(x: &[f64], terms: usize) -> Columns {
        let rows = x.len().checked_div(terms).unwrap_or(0);
        let mut values = vec![0.0; x.len()];
        for (i, row) in x.chunks_exact(terms.max(1)).enumerate() {
            for (j, v) in row.iter().enumerate() {
                values[j * rows + i] = *v;
            }
        }
        Columns { rows, terms, values }
    }

    fn column(&self, j: usize) -> &[f64] {
        &self.values[j * self.rows..(j + 1) * self.rows]
    }

    /// The given rows only, in their order.
    fn rows_of(&self, rows: &[usize]) -> Columns {
        let values =
            (0..self.terms).flat_map(|j| rows.iter().map(move |&i| self.column(j)[i])).collect();
        Columns { rows: rows.len(), terms: self.terms, values }
    }
}

/// The penalty's mix: α = 1 is the lasso, α = 0 ridge, between them the elastic net.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElasticNet {
    pub alpha: f64,
}

/// One λ's fit on the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    pub lambda: f64,
    /// On the scaled terms, as every solver's.
    pub weights: Weights,
    /// The fraction of the null deviance explained (glmnet's `dev.ratio`).
    pub deviance_explained: f64,
    /// The mean log loss over the rows fitted (unpenalised).
    pub mean_log_loss: f64,
    /// Terms whose coefficient is not zero.
    pub nonzero: usize,
    /// The norm of the penalised objective's smallest subgradient at the fit: 0 at the optimum.
    pub optimality: f64,
}

/// The rows a fit sees: their labels, and each row's weight (summing to 1; 0 leaves a row out,
/// which is how a fold's rows are held out without a copy of the rest).
struct Problem<'a> {
    x: Cow<'a, Columns>,
    y: Cow<'a, [f64]>,
    row_weights: Vec<f64>,
    offset: Option<Cow<'a, [f64]>>,
    net: ElasticNet,
    /// A coordinate's move is converged when its curvature × move² is below this.
    threshold: f64,
}

impl Problem<'_> {
    /// Σᵢ ωᵢ (yᵢ − pᵢ) xᵢⱼ for every term j: minus the mean log-likelihood's gradient.
    fn score(&self, eta: &[f64]) -> Vec<f64> {
        let residual: Vec<f64> =
            (0..self.x.rows).map(|i| self.row_weights[i] * (self.y[i] - sigmoid(eta[i]))).collect();
        (0..self.x.terms).map(|j| dot(self.x.column(j), &residual)).collect()
    }

    /// The weighted mean log loss at `eta`.
    fn mean_log_loss(&self, eta: &[f64]) -> f64 {
        eta.iter()
            .zip(self.y.iter())
            .zip(&self.row_weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|((z, y), w)| w * log_loss_at(*z, *y))
            .sum()
    }

    /// The weighted mean of the labels: the intercept-only model's probability.
    fn mean_label(&self) -> f64 {
        self.y.iter().zip(&self.row_weights).map(|(y, w)| y * w).sum()
    }
}

/// In four lanes, so that the compiler can keep them in one vector register.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in a4.zip(b4) {
        for k in 0..4 {
            lanes[k] += a[k] * b[k];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Where the path stands: the weights, each row's linear predictor, and which terms are swept.
struct State {
    bias: f64,
    beta: Vec<f64>,
    eta: Vec<f64>,
    swept: Vec<bool>,
    /// The Gram matrix's inputs, kept from one IRLS step to the next.
    buffers: GramBuffers,
}

/// The swept terms' columns behind a ones column (column-major, rebuilt only when the swept
/// terms change), and the same weighted by a step's curvature: a step reuses their memory
/// rather than allocating ≈ rows × terms twice over (which, near glibc's mmap threshold, cost a
/// page fault per page and a TLB shootdown each time).
#[derive(Default)]
struct GramBuffers {
    terms: Vec<usize>,
    plain: Vec<f64>,
    weighted: Vec<f64>,
}

impl State {
    /// The intercept-only fit: every coefficient zero, the intercept the labels' log-odds (with
    /// an offset, the intercept that zeroes the weighted residuals' sum, by Newton's method).
    fn null(problem: &Problem<'_>) -> State {
        let mean = problem.mean_label();
        let mut bias = (mean / (1.0 - mean)).ln();
        let (terms, rows) = (problem.x.terms, problem.x.rows);
        let mut eta = vec![bias; rows];
        if let Some(offset) = problem.offset.as_deref() {
            for _ in 0..100 {
                eta.iter_mut().zip(offset).for_each(|(z, o)| *z = bias + o);
                let p: Vec<f64> = eta.iter().map(|z| sigmoid(*z)).collect();
                let w = &problem.row_weights;
                let score: f64 = (0..rows).map(|i| w[i] * (problem.y[i] - p[i])).sum();
                let curvature: f64 = (0..rows).map(|i| w[i] * p[i] * (1.0 - p[i])).sum();
                let step = score / curvature;
                if !step.is_finite() || step.abs() <= 1e-15 * bias.abs().max(1.0) {
                    break;
                }
                bias += step;
            }
            eta.iter_mut().zip(offset).for_each(|(z, o)| *z = bias + o);
        }
        State {
            bias,
            beta: vec![0.0; terms],
            eta,
            swept: vec![false; terms],
            buffers: GramBuffers::default(),
        }
    }

    fn weights(&self) -> Weights {
        Weights { bias: self.bias, weights: self.beta.clone() }
    }
}

/// The smallest λ at which every coefficient is zero: max |score_j| / α (α at least 1e-3, as
/// glmnet takes it, so that ridge has a finite start).
fn lambda_max(problem: &Problem<'_>) -> f64 {
    let null = State::null(problem);
    let largest = problem.score(&null.eta).into_iter().fold(0.0f64, |m, s| m.max(s.abs()));
    largest / problem.net.alpha.max(1e-3)
}

/// glmnet's default grid: [`PATH_LENGTH`] values log-spaced from `lambda_max` down to
/// `lambda_max` × 1e-4 (× 1e-2 when there are fewer rows than terms).
fn lambda_grid(lambda_max: f64, rows: usize, terms: usize) -> Vec<f64> {
    let ratio: f64 = if rows > terms { 1e-4 } else { 1e-2 };
    let step = ratio.powf(1.0 / (PATH_LENGTH - 1) as f64);
    (0..PATH_LENGTH).map(|k| lambda_max * step.powi(k as i32)).collect()
}

/// The soft-threshold operator: the L1 part's proximal step.
fn soft_threshold(u: f64, t: f64) -> f64 {
    if u > t {
        u - t
    } else if u < -t {
        u + t
    } else {
        0.0
    }
}

/// Solves at `lambda` from where `state` stands (the solution at `previous`), sweeping the
/// strong rule's terms and checking the others' optimality until none fails it. Returns the
/// score at the solution.
fn solve_at(problem: &Problem<'_>, state: &mut State, lambda: f64, previous: f64) -> Vec<f64> {
    let alpha = problem.net.alpha;
    let score = problem.score(&state.eta);
    for (j, s) in score.iter().enumerate() {
        // The sequential strong rule (Tibshirani et al. 2012): a term whose score is below
        // α(2λ − λ_previous) is very likely zero at λ; ridge keeps every term.
        if alpha == 0.0 || s.abs() >= alpha * (2.0 * lambda - previous) {
            state.swept[j] = true;
        }
    }
    loop {
        irls(problem, state, lambda);
        let score = problem.score(&state.eta);
        let mut violated = false;
        for (j, s) in score.iter().enumerate() {
            if !state.swept[j] && s.abs() > alpha * lambda {
                state.swept[j] = true;
                violated = true;
            }
        }
        if !violated {
            return score;
        }
    }
}

/// The norm of the smallest subgradient of the penalised objective at `state`, from the score
/// there: per term, the smooth part's slope plus the L1 part's, which at zero may take any value
/// in [−λα, λα].
fn optimality(problem: &Problem<'_>, state: &State, score: &[f64], lambda: f64) -> f64 {
    let l1 = lambda * problem.net.alpha;
    let l2 = lambda * (1.0 - problem.net.alpha);
    let terms = score.iter().zip(&state.beta).map(|(s, b)| {
        let smooth = -s + l2 * b;
        if *b == 0.0 { (smooth.abs() - l1).max(0.0) } else { smooth + l1 * b.signum() }
    });
    let intercept: f64 = state
        .eta
        .iter()
        .zip(problem.y.iter())
        .zip(&problem.row_weights)
        .map(|((z, y), w)| w * (sigmoid(*z) - y))
        .sum();
    (terms.map(|g| g * g).sum::<f64>() + intercept * intercept).sqrt()
}

/// IRLS at one λ over the swept terms: each step minimises the quadratic approximation of the
/// log-likelihood at the current weights by coordinate descent, until a step moves nothing.
fn irls(problem: &Problem<'_>, state: &mut State, lambda: f64) {
    let n = problem.x.rows;
    let mut curvature = vec![0.0; n];
    let mut residual = vec![0.0; n];
    for _ in 0..MAX_IRLS_STEPS {
        for i in 0..n {
            let p = sigmoid(state.eta[i]);
            curvature[i] = problem.row_weights[i] * p * (1.0 - p);
            residual[i] = problem.row_weights[i] * (problem.y[i] - p);
        }
        let swept = state.swept.iter().filter(|s| **s).count();
        let moved = if swept <= GRAM_TERMS {
            descend_by_gram(problem, state, lambda, &curvature, &residual)
        } else {
            descend(problem, state, lambda, &curvature, &mut residual)
        };
        if moved < problem.threshold {
            return;
        }
    }
}

/// Coordinate descent on the quadratic approximation whose curvature per row is `curvature` and
/// whose weighted working residual is `residual` (updated as the weights move); `state.eta`
/// follows every move, the sweeps cycling as [`next_sweep`] says. Returns the
/// largest curvature × move² of any coordinate, summed over its moves: how far the step went.
fn descend(
    problem: &Problem<'_>,
    state: &mut State,
    lambda: f64,
    curvature: &[f64],
    residual: &mut [f64],
) -> f64 {
    let l1 = lambda * problem.net.alpha;
    let l2 = lambda * (1.0 - problem.net.alpha);
    let total_curvature: f64 = curvature.iter().sum();
    let diagonal: Vec<f64> = (0..problem.x.terms)
        .map(|j| {
            if state.swept[j] {
                problem.x.column(j).iter().zip(curvature).map(|(x, c)| c * x * x).sum()
            } else {
                0.0
            }
        })
        .collect();
    let start = state.weights();
    let mut only_nonzero = false;
    for _ in 0..MAX_SWEEPS {
        let mut largest = 0.0f64;
        for (j, &curvature_j) in diagonal.iter().enumerate() {
            if !state.swept[j] || (only_nonzero && state.beta[j] == 0.0) {
                continue;
            }
            let column = problem.x.column(j);
            let old = state.beta[j];
            let new =
                soft_threshold(dot(column, residual) + curvature_j * old, l1) / (curvature_j + l2);
            let change = new - old;
            if change != 0.0 {
                state.beta[j] = new;
                move_along(column, change, curvature, residual, &mut state.eta);
                largest = largest.max(curvature_j * change * change);
            }
        }
        if total_curvature > 0.0 {
            let change = residual.iter().sum::<f64>() / total_curvature;
            state.bias += change;
            residual.iter_mut().zip(curvature).for_each(|(r, c)| *r -= change * c);
            state.eta.iter_mut().for_each(|z| *z += change);
            largest = largest.max(total_curvature * change * change);
        }
        match next_sweep(largest < problem.threshold, only_nonzero) {
            Some(next) => only_nonzero = next,
            None => break,
        }
    }
    let moved_terms =
        (0..problem.x.terms).map(|j| diagonal[j] * (state.beta[j] - start.weights[j]).powi(2));
    moved_terms.fold(total_curvature * (state.bias - start.bias).powi(2), f64::max)
}

/// glmnet's active-set cycling: sweep every swept term until a sweep moves none, then the
/// terms still non-zero only until they settle, and again all. Given whether the last sweep
/// `settled` and whether it swept only the non-zero terms, whether the next one should; `None`
/// once a sweep of every term settled.
fn next_sweep(settled: bool, only_nonzero: bool) -> Option<bool> {
    match (settled, only_nonzero) {
        (true, false) => None,
        (true, true) => Some(false),
        (false, _) => Some(true),
    }
}

/// [`descend`] on the quadratic's Gram matrix over the intercept and the swept terms: the
/// coordinate moves update the gradient by a column of the matrix, and the rows' linear
/// predictors once at the end. Where the non-zero terms' sweeps are slow to settle (correlated
/// terms make coordinate descent crawl), the quadratic is minimised on them at once, their signs
/// held ([`GramDescent::newton_on_support`]); the sweeps then confirm it.
fn descend_by_gram(
    problem: &Problem<'_>,
    state: &mut State,
    lambda: f64,
    curvature: &[f64],
    residual: &[f64],
) -> f64 {
    let penalty = (lambda * problem.net.alpha, lambda * (1.0 - problem.net.alpha));
    let terms: Vec<usize> = (0..problem.x.terms).filter(|&j| state.swept[j]).collect();
    let (gram, q) = weighted_gram(&problem.x, &mut state.buffers, &terms, curvature, residual);
    let mut descent = GramDescent {
        moved: vec![0.0; terms.len() + 1],
        m: terms.len() + 1,
        terms,
        gram,
        q,
        penalty,
    };
    let mut only_nonzero = false;
    let mut slow_sweeps = 0;
    for _ in 0..MAX_SWEEPS {
        let largest = descent.sweep(state, only_nonzero);
        let settled = largest < problem.threshold;
        if !settled && only_nonzero {
            slow_sweeps += 1;
            if slow_sweeps % NEWTON_AFTER_SWEEPS == 0 {
                descent.newton_on_support(state);
            }
        }
        match next_sweep(settled, only_nonzero) {
            Some(next) => only_nonzero = next,
            None => break,
        }
    }
    let GramDescent { terms, moved, gram, m, .. } = descent;
    state.eta.iter_mut().for_each(|z| *z += moved[0]);
    for (&j, &d) in terms.iter().zip(&moved[1..]) {
        if d != 0.0 {
            state.eta.iter_mut().zip(problem.x.column(j)).for_each(|(z, x)| *z += d * x);
        }
    }
    (0..m).map(|a| gram[a * m + a] * moved[a] * moved[a]).fold(0.0, f64::max)
}

/// Sweeps over the non-zero terms that may pass before the quadratic is minimised on them at
/// once.
const NEWTON_AFTER_SWEEPS: usize = 2;

/// Coordinate descent on a quadratic held as its Gram matrix: index 0 is the intercept, index
/// a ≥ 1 the swept term `terms[a − 1]`.
struct GramDescent {
    terms: Vec<usize>,
    m: usize,
    /// Row-major m × m.
    gram: Vec<f64>,
    /// The quadratic's negative gradient at the current weights.
    q: Vec<f64>,
    /// Each coordinate's move so far.
    moved: Vec<f64>,
    /// λα and λ(1 − α).
    penalty: (f64, f64),
}

impl GramDescent {
    /// Moves coordinate `a` by `change`.
    fn shift(&mut self, state: &mut State, a: usize, change: f64) {
        match a {
            0 => state.bias += change,
            _ => state.beta[self.terms[a - 1]] += change,
        }
        self.moved[a] += change;
        let m = self.m;
        self.q.iter_mut().zip(&self.gram[a * m..(a + 1) * m]).for_each(|(q, g)| *q -= change * g);
    }

    /// One sweep (of the non-zero terms only, if asked), then the intercept: the largest
    /// curvature × move² it made.
    fn sweep(&mut self, state: &mut State, only_nonzero: bool) -> f64 {
        let (l1, l2) = self.penalty;
        let m = self.m;
        let mut largest = 0.0f64;
        for a in 1..m {
            let old = state.beta[self.terms[a - 1]];
            if only_nonzero && old == 0.0 {
                continue;
            }
            let curvature = self.gram[a * m + a];
            let change = soft_threshold(self.q[a] + curvature * old, l1) / (curvature + l2) - old;
            if change != 0.0 {
                self.shift(state, a, change);
                largest = largest.max(curvature * change * change);
            }
        }
        if self.gram[0] > 0.0 {
            let change = self.q[0] / self.gram[0];
            self.shift(state, 0, change);
            largest = largest.max(self.gram[0] * change * change);
        }
        largest
    }

    /// Minimises the quadratic over the intercept and the non-zero terms with their signs held:
    /// one linear solve. Kept only if no sign changes; otherwise the sweeps go on.
    fn newton_on_support(&mut self, state: &mut State) {
        let (l1, l2) = self.penalty;
        let m = self.m;
        let support: Vec<usize> = std::iter::once(0)
            .chain((1..m).filter(|&a| state.beta[self.terms[a - 1]] != 0.0))
            .collect();
        let k = support.len();
        let mut hessian = vec![0.0; k * k];
        let mut gradient = vec![0.0; k];
        for (r, &a) in support.iter().enumerate() {
            for (c, &b) in support.iter().enumerate() {
                hessian[r * k + c] = self.gram[a * m + b];
            }
            gradient[r] = self.q[a];
            if a > 0 {
                let beta = state.beta[self.terms[a - 1]];
                hessian[r * k + r] += l2;
                gradient[r] -= l2 * beta + l1 * beta.signum();
            }
        }
        let Some(step) = super::solve_spd(&hessian, &gradient, k) else { return };
        let keeps_signs = support.iter().zip(&step).skip(1).all(|(&a, d)| {
            let beta = state.beta[self.terms[a - 1]];
            (beta + d) * beta > 0.0
        });
        if keeps_signs {
            for (&a, &d) in support.iter().zip(&step) {
                self.shift(state, a, d);
            }
        }
    }
}

/// The Gram matrix Σᵢ cᵢ uᵢ uᵢᵀ of u = (1, the `terms`' values), weighted by `curvature` (row-
/// major, (terms + 1)²; symmetric, so column-major alike), and Σᵢ uᵢ rᵢ for the `residual`.
fn weighted_gram(
    x: &Columns,
    buffers: &mut GramBuffers,
    terms: &[usize],
    curvature: &[f64],
    residual: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (n, m) = (x.rows, terms.len() + 1);
    if buffers.terms != terms || buffers.plain.len() != n * m {
        buffers.plain.clear();
        buffers.plain.extend(std::iter::repeat_n(1.0, n));
        terms.iter().for_each(|&j| buffers.plain.extend_from_slice(x.column(j)));
        buffers.terms = terms.to_vec();
    }
    let plain = &buffers.plain;
    buffers.weighted.resize(n * m, 0.0);
    for (weighted, column) in
        buffers.weighted.chunks_exact_mut(n.max(1)).zip(plain.chunks_exact(n.max(1)))
    {
        weighted.iter_mut().zip(column).zip(curvature).for_each(|((w, v), c)| *w = v * c);
    }
    let mut gram = Mat::<f64>::zeros(m, m);
    let u = MatRef::from_column_major_slice(plain, n, m);
    let cu = MatRef::from_column_major_slice(&buffers.weighted, n, m);
    matmul(gram.as_mut(), Accum::Replace, cu.transpose(), u, 1.0, Par::Seq);
    let q = plain.chunks_exact(n.max(1)).map(|column| dot(column, residual)).collect();
    let gram =
        (0..m).flat_map(|a| (0..m).map(move |b| (a, b))).map(|(a, b)| gram[(a, b)]).collect();
    (gram, q)
}

/// One coordinate's move of `change` along `column`: the residual loses the curvature-weighted
/// column, the linear predictor gains the column.
fn move_along(
    column: &[f64],
    change: f64,
    curvature: &[f64],
    residual: &mut [f64],
    eta: &mut [f64],
) {
    for (((x, c), r), z) in
        column.iter().zip(curvature).zip(residual.iter_mut()).zip(eta.iter_mut())
    {
        *r -= change * c * x;
        *z += change * x;
    }
}

/// The fraction of the null deviance explained at `eta`, as glmnet measures it.
fn deviance_explained(problem: &Problem<'_>, eta: &[f64], null_loss: f64) -> f64 {
    1.0 - problem.mean_log_loss(eta) / null_loss
}

/// What a path is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct PathRequest<'a> {
    pub net: ElasticNet,
    /// The λ to fit, largest first; `None` for glmnet's default grid.
    pub lambdas: Option<&'a [f64]>,
    /// On the default grid, the λ to end at: the grid down to it, then it.
    pub down_to: Option<f64>,
    /// Whether glmnet's rule may end the path before its last λ (on the default grid only).
    pub stop_early: bool,
    /// A coordinate's move converges below tolerance²  (scaled by its curvature).
    pub tolerance: f64,
    /// Each row's offset, in its linear predictor with coefficient 1.
    pub offset: Option<&'a [f64]>,
}

/// Fits the path on the rows whose `row_weights` are not zero (all of them for `None`), calling
/// `on_point` as each λ is solved; ends early when `cancel` is set.
pub fn fit_path<'a>(
    x: &'a Columns,
    y: &'a [f64],
    row_weights: Option<&[f64]>,
    request: PathRequest<'a>,
    cancel: &AtomicBool,
    mut on_point: impl FnMut(&PathPoint),
) -> Vec<PathPoint> {
    let mut path = PathStepper::new(x, y, row_weights, request);
    while !cancel.load(Ordering::Relaxed)
        && let Some(point) = path.step()
    {
        on_point(point);
    }
    path.points
}

/// A path fitted one λ at a time, so that what goes with it (the folds' paths, a chart) keeps
/// pace with it.
pub struct PathStepper<'a> {
    problem: Problem<'a>,
    state: State,
    grid: std::vec::IntoIter<f64>,
    /// Whether glmnet's rule may end the path before its grid does.
    stop_early: bool,
    null_loss: f64,
    previous: f64,
    /// The fits so far, largest λ first.
    pub points: Vec<PathPoint>,
    done: bool,
}

impl<'a> PathStepper<'a> {
    pub fn new(
        x: &'a Columns,
        y: &'a [f64],
        row_weights: Option<&[f64]>,
        request: PathRequest<'a>,
    ) -> Self {
        let row_weights = normalised(row_weights, x.rows);
        let offset = request.offset.map(Cow::Borrowed);
        Self::on_rows(Cow::Borrowed(x), Cow::Borrowed(y), offset, row_weights, request)
    }

    /// The path on rows the stepper may own (a fold's training rows, copied so that its passes
    /// skip the rows it holds out), `row_weights` summing to 1.
    fn on_rows(
        x: Cow<'a, Columns>,
        y: Cow<'a, [f64]>,
        offset: Option<Cow<'a, [f64]>>,
        row_weights: Vec<f64>,
        request: PathRequest<'a>,
    ) -> Self {
        let threshold = request.tolerance * request.tolerance;
        let terms = x.terms;
        let problem = Problem { x, y, row_weights, offset, net: request.net, threshold };
        let grid = match (request.lambdas, request.down_to) {
            (Some(lambdas), _) => lambdas.to_vec(),
            (None, down_to) => {
                let mut grid = lambda_grid(lambda_max(&problem), rows_fitted(&problem), terms);
                if let Some(end) = down_to {
                    grid.retain(|l| *l > end);
                    grid.push(end);
                }
                grid
            }
        };
        let state = State::null(&problem);
        let null_loss = problem.mean_log_loss(&state.eta);
        PathStepper {
            previous: grid.first().copied().unwrap_or(0.0),
            stop_early: request.stop_early
                && request.lambdas.is_none()
                && request.down_to.is_none(),
            grid: grid.into_iter(),
            problem,
            state,
            null_loss,
            points: Vec::new(),
            done: false,
        }
    }

    /// The λ the next [`PathStepper::step`] fits; `None` once the path is done.
    pub fn next_lambda(&self) -> Option<f64> {
        if self.done { None } else { self.grid.as_slice().first().copied() }
    }

    /// Fits the next λ of the grid; `None` once the path is done.
    pub fn step(&mut self) -> Option<&PathPoint> {
        if self.done {
            return None;
        }
        let Some(lambda) = self.grid.next() else {
            self.done = true;
            return None;
        };
        let (problem, state) = (&self.problem, &mut self.state);
        let score = solve_at(problem, state, lambda, self.previous);
        self.previous = lambda;
        self.points.push(PathPoint {
            optimality: optimality(problem, state, &score, lambda),
            lambda,
            weights: state.weights(),
            deviance_explained: deviance_explained(problem, &state.eta, self.null_loss),
            mean_log_loss: problem.mean_log_loss(&state.eta),
            nonzero: state.beta.iter().filter(|b| **b != 0.0).count(),
        });
        self.done = self.stop_early && path_is_done(&self.points);
        self.points.last()
    }

    /// Steps until the path has a λ at or below `lambda`, or ends: what interpolating at
    /// `lambda` needs.
    fn reach(&mut self, lambda: f64) {
        while self.points.last().is_none_or(|p| p.lambda > lambda) && self.step().is_some() {}
    }
}

/// glmnet's stopping rule for its default path: after [`PATH_MIN_POINTS`] λ, stop once the
/// deviance explained gains less than [`PATH_MIN_GAIN`] or passes [`PATH_MAX_EXPLAINED`].
fn path_is_done(points: &[PathPoint]) -> bool {
    let [.., before, last] = points else { return false };
    points.len() >= PATH_MIN_POINTS
        && (last.deviance_explained - before.deviance_explained < PATH_MIN_GAIN
            || last.deviance_explained > PATH_MAX_EXPLAINED)
}

fn rows_fitted(problem: &Problem<'_>) -> usize {
    problem.row_weights.iter().filter(|w| **w > 0.0).count()
}

/// Row weights summing to 1: each row 1/n for `None`.
fn normalised(row_weights: Option<&[f64]>, rows: usize) -> Vec<f64> {
    match row_weights {
        Some(w) => {
            let total: f64 = w.iter().sum();
            w.iter().map(|v| v / total).collect()
        }
        None => vec![1.0 / rows.max(1) as f64; rows],
    }
}

/// Each row's fold, 1 to `folds`: stratified, so that every fold holds each class in about its
/// share, and drawn from `seed`. The rows of each class are shuffled and dealt round the folds
/// in turn, the dealing carried on from one class to the next so that the folds' sizes differ
/// by one at most.
pub fn stratified_folds(y: &[f64], folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of_row = vec![0; y.len()];
    let mut dealt = 0;
    for class in [0.0, 1.0] {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rows.shuffle(&mut rng);
        for i in rows {
            fold_of_row[i] = dealt % folds + 1;
            dealt += 1;
        }
    }
    fold_of_row
}

/// The cross-validated curve and the λ it chooses, as cv.glmnet reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub lambdas: Vec<f64>,
    /// The mean held-out binomial deviance per λ (each row's −2·log-likelihood, its probability
    /// kept within [1e-5, 1 − 1e-5]).
    pub mean_deviance: Vec<f64>,
    /// Its standard error: the spread of the folds' means.
    pub std_error: Vec<f64>,
    /// The λ of the lowest mean deviance.
    pub lambda_min: f64,
    /// The largest λ whose mean deviance is within one standard error of the lowest.
    pub lambda_1se: f64,
    /// Each training row's fold, 1 to `folds`, in the rows' order.
    pub fold_of_row: Vec<usize>,
}

impl CrossValidation {
    /// The index in `lambdas` of the λ `rule` chooses.
    pub fn chosen_index(&self, rule: super::LambdaRule) -> usize {
        let (index_min, index_1se) = self.chosen();
        match rule {
            super::LambdaRule::Min => index_min,
            super::LambdaRule::OneSe => index_1se,
        }
    }

    /// The index of `lambda_min` and of `lambda_1se` in `lambdas`.
    pub fn chosen(&self) -> (usize, usize) {
        lambda_choices(&self.mean_deviance, &self.std_error).unwrap_or((0, 0))
    }
}

/// cv.glmnet's choices on a curve of mean deviances (largest λ first) with their standard
/// errors: the index of the lowest mean (λ_min), and of the largest λ whose mean is within one
/// standard error of it (λ_1se). `None` for an empty curve.
pub fn lambda_choices(mean_deviance: &[f64], std_error: &[f64]) -> Option<(usize, usize)> {
    let lowest = mean_deviance.iter().copied().fold(f64::INFINITY, f64::min);
    let index_min = mean_deviance.iter().position(|m| *m <= lowest)?;
    let bound = mean_deviance[index_min] + std_error[index_min];
    let index_1se = mean_deviance.iter().position(|m| *m <= bound).unwrap_or(index_min);
    Some((index_min, index_1se))
}

/// Cross-validation kept in step with the path it chooses a λ of: at each λ of that path,
/// every fold's own path (fitted on the other folds' rows, on its own default grid, stopping by
/// glmnet's rule) goes as far as it must, and its weights there are interpolated linearly in λ
/// (glmnet's `lambda.interp`), as cv.glmnet does by default. The held-out deviance is each
/// row's −2·log-likelihood, its probability kept within [1e-5, 1 − 1e-5], weighted by the row's
/// weight; the folds' means are averaged weighted by their sizes (Σ weights), and their spread
/// gives the standard error.
pub struct CrossValidating<'a> {
    folds: Vec<FoldPath<'a>>,
    fold_of_row: Vec<usize>,
    lambdas: Vec<f64>,
    mean_deviance: Vec<f64>,
    std_error: Vec<f64>,
}

/// One fold's path (on its training rows alone) and the rows it holds out, with their weights.
struct FoldPath<'a> {
    path: PathStepper<'a>,
    x: &'a Columns,
    y: &'a [f64],
    offset: Option<&'a [f64]>,
    held_out: Vec<usize>,
    held_out_weights: Vec<f64>,
}

impl<'a> CrossValidating<'a> {
    /// The folds of `fold_of_row` (1 to K), each to be fitted on the others' rows weighted by
    /// `row_weights`.
    pub fn new(
        x: &'a Columns,
        y: &'a [f64],
        row_weights: Option<&[f64]>,
        fold_of_row: Vec<usize>,
        request: PathRequest<'a>,
    ) -> Self {
        let folds = fold_of_row.iter().copied().max().unwrap_or(0);
        let own_grid = PathRequest { lambdas: None, down_to: None, stop_early: true, ..request };
        let weight = |i: usize| row_weights.map_or(1.0, |w| w[i]);
        let folds = (1..=folds)
            .map(|fold| {
                let training: Vec<usize> =
                    (0..y.len()).filter(|&i| fold_of_row[i] != fold && weight(i) > 0.0).collect();
                let path = PathStepper::on_rows(
                    Cow::Owned(x.rows_of(&training)),
                    training.iter().map(|&i| y[i]).collect(),
                    request.offset.map(|o| training.iter().map(|&i| o[i]).collect()),
                    normalised(
                        Some(&training.iter().map(|&i| weight(i)).collect::<Vec<f64>>()),
                        training.len(),
                    ),
                    own_grid,
                );
                let held_out: Vec<usize> =
                    (0..y.len()).filter(|&i| fold_of_row[i] == fold).collect();
                let held_out_weights = held_out.iter().map(|&i| weight(i)).collect();
                FoldPath { path, x, y, offset: request.offset, held_out, held_out_weights }
            })
            .collect();
        CrossValidating {
            folds,
            fold_of_row,
            lambdas: Vec::new(),
            mean_deviance: Vec::new(),
            std_error: Vec::new(),
        }
    }

    /// The mean held-out deviance at `lambda` (the path's next λ) and its standard error. The
    /// folds' fits share the cores.
    pub fn at(&mut self, lambda: f64) -> (f64, f64) {
        // rayon's pool: its threads outlive a λ (a thread a λ cost a stack's map and unmap, and
        // TLB shootdowns), and a core that finishes its folds early takes another's.
        let deviances: Vec<f64> =
            self.folds.par_iter_mut().map(|fold| fold.deviance_at(lambda)).collect();
        let sizes: Vec<f64> = self.folds.iter().map(|f| f.held_out_weights.iter().sum()).collect();
        let total: f64 = sizes.iter().sum();
        let mean = sizes.iter().zip(&deviances).map(|(n, d)| n * d).sum::<f64>() / total;
        let spread =
            sizes.iter().zip(&deviances).map(|(n, d)| n * (d - mean).powi(2)).sum::<f64>() / total;
        let std_error = (spread / (self.folds.len() as f64 - 1.0)).sqrt();
        self.lambdas.push(lambda);
        self.mean_deviance.push(mean);
        self.std_error.push(std_error);
        (mean, std_error)
    }

    /// The curve so far, and the λ it chooses.
    pub fn finish(self) -> CrossValidation {
        let folds = self.folds.len();
        let mut cv = CrossValidation {
            folds,
            lambdas: self.lambdas,
            mean_deviance: self.mean_deviance,
            std_error: self.std_error,
            lambda_min: f64::NAN,
            lambda_1se: f64::NAN,
            fold_of_row: self.fold_of_row,
        };
        if !cv.lambdas.is_empty() {
            let (index_min, index_1se) = cv.chosen();
            (cv.lambda_min, cv.lambda_1se) = (cv.lambdas[index_min], cv.lambdas[index_1se]);
        }
        cv
    }
}

impl FoldPath<'_> {
    /// The (weighted) mean deviance of the held-out rows under the fold's path at `lambda`.
    fn deviance_at(&mut self, lambda: f64) -> f64 {
        self.path.reach(lambda);
        let weights = interpolated(&self.path.points, lambda);
        let (x, y) = (self.x, self.y);
        let deviance: f64 = self
            .held_out
            .iter()
            .zip(&self.held_out_weights)
            .map(|(&i, w)| {
                let offset = self.offset.map_or(0.0, |o| o[i]);
                let z = weights.bias
                    + (0..x.terms).map(|j| x.column(j)[i] * weights.weights[j]).sum::<f64>()
                    + offset;
                let p = sigmoid(z).clamp(CV_PROBABILITY_BOUND, 1.0 - CV_PROBABILITY_BOUND);
                -2.0 * w * if y[i] == 1.0 { p.ln() } else { (1.0 - p).ln() }
            })
            .sum();
        let total: f64 = self.held_out_weights.iter().sum();
        deviance / if total > 0.0 { total } else { 1.0 }
    }
}

/// The path's weights at `lambda`, linear in λ between the fitted points around it, or the
/// nearest end's outside them (glmnet's `lambda.interp`).
fn interpolated(path: &[PathPoint], lambda: f64) -> Weights {
    let (Some(first), Some(last)) = (path.first(), path.last()) else { return Weights::zeros(0) };
    if lambda >= first.lambda {
        return first.weights.clone();
    }
    if lambda <= last.lambda {
        return last.weights.clone();
    }
    let right = path.iter().position(|p| p.lambda <= lambda).unwrap_or(path.len() - 1);
    let (above, below) = (&path[right - 1], &path[right]);
    let t = (lambda - below.lambda) / (above.lambda - below.lambda);
    let mix = |a: f64, b: f64| a * t + b * (1.0 - t);
    Weights {
        bias: mix(above.weights.bias, below.weights.bias),
        weights: above
            .weights
            .weights
            .iter()
            .zip(&below.weights.weights)
            .map(|(a, b)| mix(*a, *b))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_data() -> (Vec<f64>, Vec<f64>) {
        // 200 rows, 4 terms: two carry signal, two are noise.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        use rand::Rng;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..200 {
            let row: Vec<f64> = (0..4).map(|_| rng.random_range(-2.0..2.0)).collect();
            let z = 1.5 * row[0] - 1.0 * row[1];
            y.push(f64::from(rng.random::<f64>() < sigmoid(z)));
            x.extend(row);
        }
        (x, y)
    }

    #[test]
    fn the_first_lambda_zeroes_every_term_and_the_next_frees_one() {
        let (x, y) = problem_data();
        let columns = Columns::from_rows(&x, 4);
        let request = PathRequest {
            net: ElasticNet { alpha: 1.0 },
            lambdas: None,
            down_to: None,
            stop_early: true,
            tolerance: 1e-7,
            offset: None,
        };
        let path = fit_path(&columns, &y, None, request, &AtomicBool::new(false), |_| {});
        assert_eq!(path[0].nonzero, 0);
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        assert!((path[0].weights.bias - (mean / (1.0 - mean)).ln()).abs() < 1e-12);
        assert!(path[1].nonzero >= 1);
        assert!(
            path.len() < PATH_LENGTH,
            "the path stops once the deviance stops improving: {}",
            path.len()
        );
        assert!(path.windows(2).all(|w| w[1].lambda < w[0].lambda));
    }

    #[test]
    fn a_design_too_wide_for_the_gram_matrix_is_swept_over_the_rows_to_the_same_optimum() {
        // Ridge sweeps every term, more than GRAM_TERMS: the moves go over the rows
        // (`descend`), and reach the optimum newton finds for the same L2 objective.
        use rand::Rng;
        let (rows, terms, lambda) = (400, GRAM_TERMS + 4, 0.05);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut x = Vec::with_capacity(rows * terms);
        let mut y = Vec::with_capacity(rows);
        for _ in 0..rows {
            let row: Vec<f64> = (0..terms).map(|_| rng.random_range(-1.0..1.0)).collect();
            y.push(f64::from(rng.random::<f64>() < sigmoid(row[0] + row[1] - row[2])));
            x.extend(row);
        }
        let request = PathRequest {
            net: ElasticNet { alpha: 0.0 },
            lambdas: Some(&[lambda]),
            down_to: None,
            stop_early: false,
            tolerance: 1e-7,
            offset: None,
        };
        let path = fit_path(
            &Columns::from_rows(&x, terms),
            &y,
            None,
            request,
            &AtomicBool::new(false),
            |_| {},
        );
        let params = super::super::TrainParams {
            solver: super::super::Solver::Newton,
            l2: lambda,
            ..Default::default()
        };
        let newton = super::super::fit(
            super::super::Examples::new(&x, &y, terms),
            None,
            &params,
            &AtomicBool::new(false),
            |_| {},
        )
        .expect("fits");
        let cd = &path[0].weights;
        let gap = cd
            .weights
            .iter()
            .zip(&newton.weights.weights)
            .map(|(a, b)| (a - b).abs())
            .fold((cd.bias - newton.weights.bias).abs(), f64::max);
        assert!(gap < 1e-7, "coordinate descent over the rows ends {gap} from newton's optimum");
    }

    #[test]
    fn folds_are_stratified_and_even() {
        let y: Vec<f64> = (0..103).map(|i| f64::from(i % 3 == 0)).collect();
        let folds = stratified_folds(&y, 10, 42);
        for f in 1..=10 {
            let size = folds.iter().filter(|&&g| g == f).count();
            assert!((10..=11).contains(&size), "fold {f} has {size} rows");
            let positives = (0..y.len()).filter(|&i| folds[i] == f && y[i] == 1.0).count();
            assert!((3..=4).contains(&positives), "fold {f} has {positives} positives");
        }
        assert_eq!(folds, stratified_folds(&y, 10, 42));
        assert_ne!(folds, stratified_folds(&y, 10, 43));
    }
}
