//! What a statistician reads of a fit: [`TermStatistics`] (standard errors from the inverse
//! Hessian, z, two-sided p-values, 95% intervals, odds ratios, all in the data's own units),
//! [`separating_term`] and [`separated_by_combination`] (complete or quasi-complete separation,
//! naming the term), and [`Optimality`] (how close
//! an iterative fit came to the exact optimum).
//!
//! The covariance is computed for the weights on scaled terms and carried to the data's units
//! through the same linear map that un-scales the estimates: with t' = (t − o)/s,
//! θ_t = w_t/s_t and θ0 = b − Σ θ_t o_t, so θ = A·(b, w) and Cov(θ) = A·Cov(b, w)·Aᵀ.

use crate::coefficients::{Coefficients, unscaled};
pub use crate::coefficients::{INTERCEPT, TermStatistics, with_standard_errors};
use crate::logistic::{
    Covariance, Examples, Weights, hessian_sum, invert_spd, log_loss_at, sigmoid,
};
use crate::scale::Transform;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use serde::{Deserialize, Serialize};

/// What a fit says beyond its estimates: the coefficient table, why its statistics are not
/// given when they are not, the separation of the classes when they are separated, and how
/// close an iterative fit came to the optimum. Flattened into the model artifact, evaluate's
/// answer and the run report alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FitReport {
    /// The intercept and every term with its standard error, z, p-value, 95% interval and
    /// odds ratio where they are given.
    #[serde(default)]
    pub terms: Vec<TermStatistics>,
    #[serde(default)]
    pub statistics_note: Option<String>,
    /// Which term separates the classes, when they are separated.
    #[serde(default)]
    pub separation: Option<String>,
    /// How close an iterative fit came to the exact optimum on the same rows.
    #[serde(default)]
    pub optimality: Option<Optimality>,
    /// The epoch whose weights the model holds, when a person stopped the fit and kept its
    /// best epoch so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<usize>,
    /// The solver `auto` chose and why. `None` when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_choice: Option<crate::logistic::SolverChoice>,
    /// The likelihood figures under the coefficient table, where the table has statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_statistics: Option<FitStatistics>,
    /// The covariance the table's standard errors come from, when it is not the inverse Hessian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariance: Option<Covariance>,
    /// The rows' weights, offset and clusters, where the data has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_roles: Option<crate::roles::RowReport>,
    /// A penalised path's fits, for an L1 or elastic-net penalty or a cross-validated λ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathReport>,
    /// The cross-validation that chose the path's λ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<crate::logistic::path::CrossValidation>,
    /// The text columns held as sparse terms, in the order of their terms, which end the
    /// table: a table shows the largest of each ([`FitReport::shown_terms`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_columns: Vec<SparseColumnTerms>,
}

/// A text column held as sparse terms, and how many terms it has (its levels but the reference).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SparseColumnTerms {
    pub column: String,
    pub terms: usize,
}

/// The most terms of one sparse column a coefficient table shows.
pub const SHOWN_SPARSE_TERMS: usize = 10;

impl FitReport {
    /// The rows a coefficient table shows: the intercept and every dense term, then the
    /// [`SHOWN_SPARSE_TERMS`] largest estimates (in size) of each sparse column, in term order;
    /// and for each such column a line saying what is left out and where it is.
    pub fn shown_terms(&self) -> (Vec<&TermStatistics>, Vec<String>) {
        let sparse: usize = self.sparse_columns.iter().map(|c| c.terms).sum();
        let dense = self.terms.len().saturating_sub(sparse);
        let mut shown: Vec<&TermStatistics> = self.terms[..dense].iter().collect();
        let mut notes = Vec::new();
        let mut start = dense;
        for column in &self.sparse_columns {
            let end = (start + column.terms).min(self.terms.len());
            let terms = &self.terms[start..end];
            let mut largest: Vec<usize> = (0..terms.len()).collect();
            largest.sort_by(|&a, &b| terms[b].estimate.abs().total_cmp(&terms[a].estimate.abs()));
            largest.truncate(SHOWN_SPARSE_TERMS);
            largest.sort_unstable();
            shown.extend(largest.iter().map(|&i| &terms[i]));
            if terms.len() > largest.len() {
                notes.push(format!(
                    "{}: the {} largest of its {} level terms shown; every one is in the model's JSON",
                    column.column,
                    largest.len(),
                    terms.len()
                ));
            }
            start = end;
        }
        (shown, notes)
    }
}

/// The path of a penalised fit in the data's units: what the coefficients were at every λ.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathReport {
    /// α, the penalty's L1 part.
    pub alpha: f64,
    /// The λ the model holds.
    pub lambda: f64,
    /// The terms whose coefficient is not zero at that λ, in the model's order.
    pub nonzero_terms: Vec<String>,
    /// Every λ fitted, largest first.
    pub lambdas: Vec<f64>,
    /// Per λ, the fraction of the null deviance explained.
    pub deviance_explained: Vec<f64>,
    /// Per λ, the intercept and then each term's coefficient, in the data's units.
    pub coefficients: Vec<Vec<f64>>,
}

impl PathReport {
    /// As the report prints it, under the fit's line: the path, the λ held and how it was
    /// chosen, and the terms the penalty kept.
    pub fn lines(
        &self,
        cv: Option<&crate::logistic::path::CrossValidation>,
        terms: usize,
    ) -> Vec<String> {
        let (first, last) = (
            self.lambdas.first().copied().unwrap_or(f64::NAN),
            self.lambdas.last().copied().unwrap_or(f64::NAN),
        );
        let mut lines = vec![format!(
            "path: {} λ from {first:.4e} down to {last:.4e}, α = {}",
            self.lambdas.len(),
            self.alpha
        )];
        lines.push(match cv {
            Some(cv) => {
                let at = cv.lambdas.iter().position(|l| *l == self.lambda).unwrap_or(0);
                let rule = if self.lambda == cv.lambda_1se { "λ_1se" } else { "λ_min" };
                format!(
                    "λ = {:.4e} ({rule}) by {}-fold cross-validation: mean deviance {:.4} ± {:.4}; λ_min {:.4e}, λ_1se {:.4e}",
                    self.lambda, cv.folds, cv.mean_deviance[at], cv.std_error[at], cv.lambda_min, cv.lambda_1se
                )
            }
            None => format!("λ = {}", self.lambda),
        });
        lines.push(format!(
            "non-zero: {} of {terms} terms: {}",
            self.nonzero_terms.len(),
            self.nonzero_terms.join(", ")
        ));
        lines
    }

    /// From the path's points and the λ the model holds, unscaled by `transform`.
    pub fn new(
        points: &[crate::logistic::path::PathPoint],
        alpha: f64,
        lambda: f64,
        transform: &Transform,
    ) -> PathReport {
        let coefficients: Vec<Vec<f64>> = points
            .iter()
            .map(|point| {
                let (intercept, terms) =
                    unscaled(transform, point.weights.bias, &point.weights.weights);
                std::iter::once(intercept).chain(terms).collect()
            })
            .collect();
        let at = points.iter().position(|p| p.lambda == lambda);
        let nonzero_terms = at
            .map(|i| {
                transform
                    .term_names()
                    .iter()
                    .zip(&points[i].weights.weights)
                    .filter(|(_, w)| **w != 0.0)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default();
        PathReport {
            alpha,
            lambda,
            nonzero_terms,
            lambdas: points.iter().map(|p| p.lambda).collect(),
            deviance_explained: points.iter().map(|p| p.deviance_explained).collect(),
            coefficients,
        }
    }
}

/// The figures statsmodels prints under a `Logit` fit's coefficient table, for an unpenalised
/// maximum-likelihood fit of `n` rows with `df_model` terms and an intercept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FitStatistics {
    /// Σ [y ln p + (1−y) ln(1−p)] at the estimates.
    pub log_likelihood: f64,
    /// The same for the intercept-only model: every p the share of positives.
    pub log_likelihood_null: f64,
    /// The likelihood-ratio statistic against the null model, 2·(llf − llnull).
    pub llr: f64,
    /// Its χ² survival with `df_model` degrees of freedom.
    pub llr_p_value: f64,
    /// McFadden's: 1 − llf / llnull.
    pub pseudo_r2: f64,
    /// −2·llf + 2k, with k = df_model + 1 parameters.
    pub aic: f64,
    /// −2·llf + k·ln n.
    pub bic: f64,
    /// −2·llf: for 0/1 labels the saturated model's log-likelihood is 0.
    pub deviance: f64,
    pub df_model: usize,
    /// n − k.
    pub df_residual: f64,
    /// The rows, or Σ of their frequency weights.
    pub n: f64,
}

impl FitStatistics {
    /// The figures of a fit whose summed log loss over the rows with labels `y` is `loss_sum`,
    /// with `df_model` terms besides the intercept.
    pub fn new(loss_sum: f64, y: &[f64], df_model: usize) -> FitStatistics {
        FitStatistics::of(loss_sum, Examples::new(&[], y, 0), df_model)
    }

    /// [`FitStatistics::new`] for rows that may carry frequency weights (n is their sum) and an
    /// offset (which the null model keeps: its intercept is fitted with the offset, as
    /// statsmodels' GLM does).
    pub fn of(loss_sum: f64, ex: Examples<'_>, df_model: usize) -> FitStatistics {
        // 0 − x, not −x: a perfect fit's log-likelihood is 0, not −0.
        FitStatistics::from_likelihoods(
            (0.0 - loss_sum, null_log_likelihood(ex)),
            df_model,
            (df_model + 1) as f64,
            ex.weight_sum(),
        )
    }
}

impl FitStatistics {
    /// The figures of a K-class fit whose summed log loss over rows with class indices `y` is
    /// `loss_sum`, with `terms` terms per class: (K−1)·terms degrees of freedom and
    /// (K−1)·(terms+1) parameters, as statsmodels' `MNLogit` counts them; the null model gives
    /// every class its share of the rows.
    pub fn of_classes(loss_sum: f64, y: &[f64], classes: usize, terms: usize) -> FitStatistics {
        let n = y.len() as f64;
        let mut counts = vec![0usize; classes];
        for &v in y {
            counts[v as usize] += 1;
        }
        let log_likelihood_null: f64 =
            counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 * (c as f64 / n).ln()).sum();
        let df_model = (classes - 1) * terms;
        let parameters = ((classes - 1) * (terms + 1)) as f64;
        FitStatistics::from_likelihoods(
            (0.0 - loss_sum, log_likelihood_null),
            df_model,
            parameters,
            n,
        )
    }

    /// The figures from the log-likelihoods of the fit and of the null model, for a fit of
    /// `parameters` parameters, `df_model` of them beyond the null model's, over `n` rows.
    fn from_likelihoods(
        (log_likelihood, log_likelihood_null): (f64, f64),
        df_model: usize,
        parameters: f64,
        n: f64,
    ) -> FitStatistics {
        let llr = 2.0 * (log_likelihood - log_likelihood_null);
        FitStatistics {
            log_likelihood,
            log_likelihood_null,
            llr,
            llr_p_value: chi_squared_survival(llr, df_model),
            pseudo_r2: 1.0 - log_likelihood / log_likelihood_null,
            aic: -2.0 * log_likelihood + 2.0 * parameters,
            bic: -2.0 * log_likelihood + parameters * n.ln(),
            deviance: -2.0 * log_likelihood,
            df_model,
            df_residual: (n - parameters).max(0.0),
            n,
        }
    }
}

/// The log-likelihood of the intercept-only model. Without an offset it is closed-form: every
/// p is the (weighted) share of positives. With one, the intercept b that maximises
/// Σ wᵢ [yᵢ(b + oᵢ) − softplus(b + oᵢ)] is found by Newton's method, one dimension.
fn null_log_likelihood(ex: Examples<'_>) -> f64 {
    let weight = |i: usize| ex.row_weights.map_or(1.0, |w| w[i]);
    let n = ex.weight_sum();
    let positives: f64 = ex.y.iter().enumerate().map(|(i, y)| weight(i) * y).sum();
    let Some(offset) = ex.offset else {
        let share = positives / n;
        // x·ln x → 0 as x → 0: a file of one class has a null log-likelihood of 0.
        let x_ln_x = |x: f64| if x > 0.0 { x * x.ln() } else { 0.0 };
        return n * (x_ln_x(share) + x_ln_x(1.0 - share));
    };
    let log_likelihood = |b: f64| -> f64 {
        (0..ex.rows()).map(|i| -weight(i) * log_loss_at(b + offset[i], ex.y[i])).sum()
    };
    let mut b = crate::logistic::logit((positives / n).clamp(1e-12, 1.0 - 1e-12));
    for _ in 0..100 {
        let (mut score, mut curvature) = (0.0, 0.0);
        for (i, (o, y)) in offset.iter().zip(ex.y).enumerate() {
            let p = sigmoid(b + o);
            score += weight(i) * (y - p);
            curvature += weight(i) * p * (1.0 - p);
        }
        if curvature <= 0.0 {
            break;
        }
        let step = score / curvature;
        b += step;
        if step.abs() <= 1e-15 * b.abs().max(1.0) {
            break;
        }
    }
    log_likelihood(b)
}

impl FitStatistics {
    /// The two lines under a coefficient table, as statsmodels' summary has the figures:
    /// "log-likelihood −88.3654  null −229.8860  LLR 282.991 on 9 df, p 6.056e-67" and
    /// "pseudo R² 0.6156  AIC 196.731  BIC 234.839  deviance 176.731  n 333, residual df 323".
    pub fn lines(&self) -> [String; 2] {
        let p = match self.llr_p_value {
            // Below the smallest double: the statistic is past 1,400 or so.
            0.0 => "< 1e-300".to_string(),
            p if p < 1e-4 => format!("{p:.3e}"),
            p => format!("{p:.4}"),
        };
        [
            format!(
                "log-likelihood {:.4}  null {:.4}  LLR {:.3} on {} df, p {p}",
                self.log_likelihood, self.log_likelihood_null, self.llr, self.df_model
            ),
            format!(
                "pseudo R² {:.4}  AIC {:.3}  BIC {:.3}  deviance {:.3}  n {}, residual df {}",
                self.pseudo_r2, self.aic, self.bic, self.deviance, self.n, self.df_residual
            ),
        ]
    }
}

/// P(χ²_df > x): the regularized upper incomplete gamma function Q(df/2, x/2), by statrs.
fn chi_squared_survival(x: f64, df: usize) -> f64 {
    if df == 0 || x <= 0.0 {
        return 1.0;
    }
    statrs::function::gamma::checked_gamma_ur(df as f64 / 2.0, x / 2.0).unwrap_or(f64::NAN)
}

/// The coefficient table of an unpenalised maximum-likelihood fit at `scaled` (weights on the
/// scaled terms `ex`), in the data's units. `None` when the Hessian is singular (collinear
/// terms).
pub fn statistics(
    scaled: &Weights,
    ex: Examples<'_>,
    hessian: Option<&[f64]>,
    kind: Covariance,
    clusters: Option<&[f64]>,
    transform: &Transform,
    estimates: (f64, &Coefficients),
) -> Option<Vec<TermStatistics>> {
    let k = ex.d + 1;
    // The fit's own last pass, when it made one at these weights (newton); else a pass here.
    let computed;
    let hessian = match hessian {
        Some(hessian) => hessian,
        None => {
            computed = hessian_sum(scaled, ex);
            &computed
        }
    };
    let inverse = invert_spd(hessian, k)?;
    let covariance = match kind {
        Covariance::Nonrobust => inverse,
        Covariance::Hc0 | Covariance::Hc1 => {
            let n = ex.weight_sum();
            let scale = if kind == Covariance::Hc1 { n / (n - k as f64) } else { 1.0 };
            sandwich(&inverse, &score_outer_products(scaled, ex), k, scale)
        }
        Covariance::Cluster => {
            let (meat, groups) = cluster_score_products(scaled, ex, clusters?);
            // statsmodels' default small-sample correction for clusters.
            let (g, n) = (groups as f64, ex.weight_sum());
            sandwich(&inverse, &meat, k, g / (g - 1.0) * (n - 1.0) / (n - k as f64))
        }
    };
    let (intercept, coefficients) = estimates;
    Some(with_standard_errors(
        TermStatistics::estimates_only(intercept, coefficients),
        &covariance,
        transform,
    ))
}

/// Rows at a time in [`score_outer_products`]: its scaled copy of them is this size.
const SCORE_CHUNK_ROWS: usize = 4_096;

/// B = Σ wᵢsᵢsᵢᵀ over the rows, sᵢ = (yᵢ − pᵢ)·(1, xᵢ) the score of row i at `w` and wᵢ its
/// frequency weight: the middle of the sandwich. Each chunk of rows is copied once, scaled by
/// its residuals (times √wᵢ), and multiplied by its own transpose (faer), so the cost is that
/// of one Hessian pass.
fn score_outer_products(w: &Weights, ex: Examples<'_>) -> Mat<f64> {
    let (d, k) = (ex.d, ex.d + 1);
    let mut meat = Mat::<f64>::zeros(k, k);
    for start in (0..ex.rows()).step_by(SCORE_CHUNK_ROWS) {
        let end = (start + SCORE_CHUNK_ROWS).min(ex.rows());
        let residuals: Vec<f64> =
            (start..end).map(|i| residual(w, ex, i) * row_weight(ex, i).sqrt()).collect();
        let scores = Mat::from_fn(end - start, k, |r, j| {
            residuals[r] * if j == 0 { 1.0 } else { ex.x[(start + r) * d + j - 1] }
        });
        matmul(meat.as_mut(), Accum::Add, scores.transpose(), scores.as_ref(), 1.0, Par::Seq);
    }
    meat
}

/// B = Σ_g u_g u_gᵀ over the clusters, u_g = Σ_{i ∈ g} wᵢsᵢ the summed score of cluster g
/// (rows of the same `clusters` value); and the number of clusters.
fn cluster_score_products(w: &Weights, ex: Examples<'_>, clusters: &[f64]) -> (Mat<f64>, usize) {
    let (d, k) = (ex.d, ex.d + 1);
    let mut group_of = std::collections::HashMap::new();
    let mut sums: Vec<f64> = Vec::new();
    for (i, cluster) in clusters.iter().enumerate() {
        let next = group_of.len();
        let g = *group_of.entry(cluster.to_bits()).or_insert(next);
        if g == next {
            sums.resize(sums.len() + k, 0.0);
        }
        let r = residual(w, ex, i) * row_weight(ex, i);
        let u = &mut sums[g * k..(g + 1) * k];
        u[0] += r;
        for (uj, x) in u[1..].iter_mut().zip(&ex.x[i * d..(i + 1) * d]) {
            *uj += r * x;
        }
    }
    let groups = group_of.len();
    let scores = MatRef::from_row_major_slice(&sums, groups, k);
    let mut meat = Mat::<f64>::zeros(k, k);
    matmul(meat.as_mut(), Accum::Add, scores.transpose(), scores, 1.0, Par::Seq);
    (meat, groups)
}

/// yᵢ − pᵢ of row i at `w`, its offset in its logit.
fn residual(w: &Weights, ex: Examples<'_>, i: usize) -> f64 {
    let z = w.logit(&ex.x[i * ex.d..(i + 1) * ex.d]) + ex.offset.map_or(0.0, |o| o[i]);
    ex.y[i] - sigmoid(z)
}

fn row_weight(ex: Examples<'_>, i: usize) -> f64 {
    ex.row_weights.map_or(1.0, |w| w[i])
}

/// scale · H⁻¹ B H⁻¹, row-major, from H⁻¹ (row-major, symmetric) and B.
fn sandwich(inverse: &[f64], meat: &Mat<f64>, k: usize, scale: f64) -> Vec<f64> {
    let bread = MatRef::from_row_major_slice(inverse, k, k);
    let half = bread * meat;
    let covariance = half * bread;
    (0..k * k).map(|i| scale * covariance[(i / k, i % k)]).collect()
}

/// Whether one term separates the classes in the design (terms in the data's units, `k` per
/// row), and how: a term whose values of one class all lie at or below those of the other
/// separates them (completely when strictly; for a 0/1 level term, when every row with, or
/// without, the level is of one class).
pub fn separating_term(
    design: &[f64],
    y: &[f64],
    k: usize,
    term_names: &[String],
    class_names: [&str; 2],
) -> Option<String> {
    let mut bounds = TermBounds::new(k);
    for (row, &label) in design.chunks_exact(k.max(1)).zip(y) {
        bounds.add(row, label);
    }
    bounds.separating_term(term_names, class_names)
}

/// What [`separating_term`] looks at, gathered a row at a time, so that a pass over the rows
/// made for something else (train's scaling) can gather it too: every term's bounds per class,
/// and whether it is a 0/1 indicator, in one pass rather than one per term.
#[derive(Debug, Clone, PartialEq)]
pub struct TermBounds {
    /// Per term: (the least value of each class, the greatest value of each class).
    bounds: Vec<([f64; 2], [f64; 2])>,
    indicators: Vec<bool>,
}

impl TermBounds {
    pub fn new(k: usize) -> TermBounds {
        TermBounds {
            bounds: vec![([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]); k],
            indicators: vec![true; k],
        }
    }

    /// Adds a row of terms in the data's units, of class `label` (0 or 1).
    #[inline]
    pub fn add(&mut self, row: &[f64], label: f64) {
        let c = usize::from(label == 1.0);
        for (((lo, hi), indicator), &v) in self.bounds.iter_mut().zip(&mut self.indicators).zip(row)
        {
            // `min` and `max` as one instruction each: `f64::min` also handles a NaN bound,
            // which these never are (they start infinite), at a third more time. A NaN value
            // is passed over either way.
            lo[c] = if v < lo[c] { v } else { lo[c] };
            hi[c] = if v > hi[c] { v } else { hi[c] };
            *indicator &= v == 0.0 || v == 1.0;
        }
    }

    /// Adds the rows another gathered: the bounds of both sets of rows, exactly (a least or
    /// greatest value is the same whichever rows it was first compared with).
    pub fn merge(&mut self, other: TermBounds) {
        for (((lo, hi), indicator), ((other_lo, other_hi), other_indicator)) in self
            .bounds
            .iter_mut()
            .zip(&mut self.indicators)
            .zip(other.bounds.into_iter().zip(other.indicators))
        {
            for c in 0..2 {
                lo[c] = if other_lo[c] < lo[c] { other_lo[c] } else { lo[c] };
                hi[c] = if other_hi[c] > hi[c] { other_hi[c] } else { hi[c] };
            }
            *indicator &= other_indicator;
        }
    }

    /// The first term (by `term_names`) that separates the rows added, in words.
    pub fn separating_term(self, term_names: &[String], class_names: [&str; 2]) -> Option<String> {
        let TermBounds { bounds, indicators } = self;
        for (t, ((lo, hi), indicator)) in bounds.into_iter().zip(indicators).enumerate() {
            // A term constant over every row separates nothing.
            if lo[0] == hi[0] && lo[1] == hi[1] && lo[0] == lo[1] {
                continue;
            }
            let name = &term_names[t];
            for (below, above) in [(0, 1), (1, 0)] {
                let (b, a) = (class_names[below], class_names[above]);
                if hi[below] < lo[above] {
                    return Some(format!(
                        "{name} separates the classes completely: every {b:?} row has {name} ≤ {}, every {a:?} row has {name} ≥ {}",
                        hi[below], lo[above]
                    ));
                }
                if hi[below] == lo[above] {
                    return Some(match (indicator, hi[below] == 0.0) {
                        (true, true) => format!(
                            "{name} separates the classes quasi-completely: every row with {name} is {a:?}"
                        ),
                        (true, false) => format!(
                            "{name} separates the classes quasi-completely: every row without {name} is {b:?}"
                        ),
                        (false, _) => format!(
                            "{name} separates the classes quasi-completely: the {b:?} rows lie at or below {name} = {}, the {a:?} rows at or above it",
                            hi[below]
                        ),
                    });
                }
            }
        }
        None
    }
}

/// The first level of a sparse column (by term) whose rows are all of one class, in words, and
/// how many of the column's levels are: each separates the classes quasi-completely by its 0/1
/// term, as [`TermBounds::separating_term`] finds for a dense one. A column of many levels has
/// such levels whenever some are rare (a shop seen twice, both times a sale).
pub fn separating_level(
    (x, stride): (&[f64], usize),
    y: &[f64],
    sparse: &crate::logistic::SparseTerms,
    term_names: &[String],
    class_names: [&str; 2],
) -> Option<String> {
    let mut counts = vec![[0u32; 2]; sparse.terms()];
    for (row, &label) in x.chunks_exact(stride.max(1)).zip(y) {
        for term in sparse.levels_of(row) {
            counts[term][usize::from(label == 1.0)] += 1;
        }
    }
    sparse.columns.iter().find_map(|column| {
        let terms = column.at.term_range();
        let one_class = |t: &usize| counts[*t][0] == 0 || counts[*t][1] == 0;
        let first = terms.clone().find(one_class)?;
        let others = terms.filter(one_class).count() - 1;
        let (name, class) = (&term_names[first], class_names[usize::from(counts[first][0] == 0)]);
        let column_name = name.split_once('=').map_or(name.as_str(), |(c, _)| c);
        let also = match others {
            0 => String::new(),
            1 => format!(", as does one other level of {column_name}"),
            n => format!(", as do {n} other levels of {column_name}"),
        };
        Some(format!(
            "{name} separates the classes quasi-completely: every row with {name} is {class:?}{also}"
        ))
    })
}

/// Scales `design` (rows of terms, one label per row in `labels`) in place with `transform`
/// on up to `threads` threads, each gathering the bounds of its rows before it scales them:
/// the bits [`Transform::scale_in_place_seeing`] with [`TermBounds::add`] gives on one thread,
/// and the same bounds. It is train's pass over the rows it fits, before the solver: most of
/// what the train stage spends beside its solver once the rows are loaded ahead.
pub fn scale_gathering_bounds(
    transform: &Transform,
    design: &mut [f64],
    labels: &[f64],
    threads: usize,
) -> TermBounds {
    // The bounds are of the dense terms, the first of a row's slots: a sparse column's slot
    // holds a level's index, not a value.
    let (k, dense) = (transform.slots().max(1), transform.dense_terms());
    let rows_per_thread = labels.len().div_ceil(threads.max(1)).max(1);
    let gather = |(rows, labels): (&mut [f64], &[f64])| {
        let mut bounds = TermBounds::new(dense);
        transform.scale_in_place_seeing(rows, |i, row| bounds.add(row, labels[i]));
        bounds
    };
    let mut parts = design.chunks_mut(rows_per_thread * k).zip(labels.chunks(rows_per_thread));
    let Some(first) = parts.next() else { return TermBounds::new(dense) };
    std::thread::scope(|scope| {
        let others: Vec<_> = parts.map(|part| scope.spawn(move || gather(part))).collect();
        let mut bounds = gather(first);
        for other in others {
            match other.join() {
                Ok(theirs) => bounds.merge(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        bounds
    })
}

/// Whether a combination of terms separates the classes: an unpenalised fit that gives
/// probability 0 or 1 to `certain` of its `rows` rows, classifying them right (see
/// [`certain_rows`]; a newton fit counts them in its last pass, [`crate::logistic::FitOutcome`]).
pub fn separated_by_combination(certain: u64, rows: usize) -> Option<String> {
    (certain > 0).then(|| {
        format!("a combination of terms separates the classes: {certain} of {rows} training rows are predicted with probability 0 or 1")
    })
}

/// The rows whose logit gives them probability 0 or 1 and classifies them right
/// ([`crate::logistic::certain_and_right`]). The logits are taken as they come, one per row of
/// `y`: the 1M-row fit's 8 MB of them are never held.
pub fn certain_rows(logits: impl IntoIterator<Item = f64>, y: &[f64]) -> u64 {
    logits
        .into_iter()
        .zip(y)
        .map(|(z, &label)| u64::from(crate::logistic::certain_and_right(z, label)))
        .sum()
}

/// How close an iterative fit's training objective came to the exact optimum (newton on the
/// same rows and parameters).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Optimality {
    /// The fit's objective (mean log loss + penalty) on its training rows.
    pub objective: f64,
    /// The exact optimum's on the same rows.
    pub optimum: f64,
    /// (objective − optimum) / optimum, in percent.
    pub gap_percent: f64,
}

impl Optimality {
    pub fn new(objective: f64, optimum: f64) -> Optimality {
        let gap_percent = if optimum > 0.0 { (objective - optimum) / optimum * 100.0 } else { 0.0 };
        Optimality { objective, optimum, gap_percent }
    }

    pub fn describe(&self) -> String {
        format!(
            "training log loss {:.3}% above the exact optimum ({:.6} vs {:.6})",
            self.gap_percent.max(0.0),
            self.objective,
            self.optimum
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::Dataset;
    use crate::scale::Scaling;
    use proptest::prelude::*;

    #[test]
    fn fit_statistics_of_the_null_model_and_of_a_perfect_fit() {
        // The intercept-only fit of 1 positive in 4 is the null model itself: LLR 0, p 1.
        let y = [1.0, 0.0, 0.0, 0.0];
        let null = -4.0 * (0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        let f = FitStatistics::new(null, &y, 0);
        assert_eq!((f.llr, f.llr_p_value, f.pseudo_r2, f.df_residual), (0.0, 1.0, 0.0, 3.0));
        assert_eq!(f.aic, 2.0 * null + 2.0);
        // A perfect fit with 2 terms: the χ² survival with 2 degrees of freedom is e^(−x/2).
        let f = FitStatistics::new(0.0, &y, 2);
        assert!((f.llr_p_value - (-f.llr / 2.0).exp()).abs() <= 1e-15 * f.llr_p_value, "{f:?}");
        assert_eq!(
            f.lines()[0],
            format!(
                "log-likelihood 0.0000  null {:.4}  LLR {:.3} on 2 df, p {:.4}",
                -null,
                2.0 * null,
                f.llr_p_value
            )
        );
    }

    proptest! {
        /// On any number of threads, the rows are scaled to the same bits and the bounds are
        /// the same as on one: a 0/1 column keeps its indicator flag only if every thread's
        /// rows are 0 or 1.
        #[test]
        fn scaling_on_threads_gathers_what_one_thread_does(
            rows in prop::collection::vec((-1e3f64..1e3, prop::sample::select(vec![0.0, 1.0, 0.5]), any::<bool>()), 1..300),
            threads in 1usize..6,
        ) {
            let x: Vec<f64> = rows.iter().flat_map(|&(v, flag, _)| [v, flag]).collect();
            let y: Vec<f64> = rows.iter().map(|&(_, _, label)| f64::from(u8::from(label))).collect();
            let data = Dataset { feature_names: vec!["v".into(), "flag".into()], label_name: "y".into(), x: x.clone(), y: y.clone(), ..Dataset::default() };
            let transform = Transform::fit(&data, Scaling::Standard);
            let (mut one, mut many) = (x.clone(), x);
            let mut expected = TermBounds::new(2);
            transform.scale_in_place_seeing(&mut one, |i, row| expected.add(row, y[i]));
            let bounds = scale_gathering_bounds(&transform, &mut many, &y, threads);
            prop_assert_eq!(one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), many.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            prop_assert_eq!(bounds, expected);
        }
    }

    #[test]
    fn a_sparse_level_of_one_class_is_named_with_how_many_others_are() {
        use crate::logistic::{SparseColumn, SparseTerms};
        use crate::scale::SparseSlot;
        // One dense term, then a column of four levels (three terms) in slot 1.
        let sparse = SparseTerms {
            dense: 1,
            columns: vec![SparseColumn {
                at: SparseSlot { slot: 1, first_term: 1, terms: 3 },
                offset: vec![0.0; 3],
                scale: vec![1.0; 3],
            }],
        };
        let names: Vec<String> =
            ["x", "shop=b", "shop=c", "shop=d"].iter().map(|n| n.to_string()).collect();
        // Levels b and d hold one class each; a (the reference) and c both.
        let rows =
            [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (2.0, 0.0), (2.0, 1.0), (3.0, 0.0)];
        let x: Vec<f64> = rows.iter().flat_map(|&(level, _)| [0.5, level]).collect();
        let y: Vec<f64> = rows.iter().map(|&(_, label)| label).collect();
        let found = separating_level((&x, 2), &y, &sparse, &names, ["no", "yes"]);
        assert_eq!(
            found.as_deref(),
            Some(
                "shop=b separates the classes quasi-completely: every row with shop=b is \"yes\", as does one other level of shop"
            )
        );
        let mixed: Vec<f64> =
            y.iter().enumerate().map(|(i, &v)| if i == 2 { 0.0 } else { v }).collect();
        let mixed = separating_level((&x, 2), &mixed, &sparse, &names, ["no", "yes"]);
        assert!(mixed.is_some_and(|m| m.starts_with("shop=d")
            && m.contains("\"no\"")
            && !m.contains("other")));
    }
}
