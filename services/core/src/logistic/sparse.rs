//! Sparse terms in the solvers' passes: [`SparseTerms`], the text columns of many levels that a
//! row of terms holds in one slot each (the level's index), and the pass that reads them.
//!
//! A sparse column's terms are 0/1 indicators of its levels, scaled as dense terms are:
//! `t' = (1[level] − offset) / scale`. Written out, that would be a dense n × levels block, so
//! the pass applies it as sums instead. A row's logit takes its level's weight per unit, w/scale,
//! less Σ w·offset/scale over the column's terms (the same for every row, so taken once a
//! pass); the gradient of a term is Σ r·(1[level] − offset)/scale = (R − offset·Σr)/scale, with
//! R the residuals summed at its level. One pass is O(rows × (dense terms + sparse columns)) and
//! its memory a gradient of every term, whatever the number of levels.

use super::{AUTO_NEWTON_TERMS, sigmoid_given_exp};
use super::{Examples, PassSums, Weights, certain_and_right, dot, exp_nonpositive};
use crate::scale::{MAX_DENSE_LEVELS, SparseSlot, Transform};

// A sparse column alone has more terms than newton takes: `auto` fits sparse terms by L-BFGS.
const _: () = assert!(MAX_DENSE_LEVELS >= AUTO_NEWTON_TERMS);

/// The sparse columns of a design, as the solvers see them.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseTerms {
    /// The dense terms: the first slots of a row of terms, and the first weights.
    pub dense: usize,
    /// In slot order: the slots follow the dense terms.
    pub columns: Vec<SparseColumn>,
}

/// One text column of many levels: where it is, and each of its terms' offset and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseColumn {
    pub at: SparseSlot,
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
}

impl SparseTerms {
    /// The sparse columns of `transform`'s terms; `None` when every term is dense.
    pub fn of(transform: &Transform) -> Option<SparseTerms> {
        let columns: Vec<SparseColumn> = transform
            .sparse_slots()
            .map(|at| SparseColumn {
                at,
                offset: transform.offset[at.term_range()].to_vec(),
                scale: transform.scale[at.term_range()].to_vec(),
            })
            .collect();
        (!columns.is_empty()).then(|| SparseTerms { dense: transform.dense_terms(), columns })
    }

    /// The terms of a row of terms' levels, one a sparse column but where it is at the reference.
    pub(crate) fn levels_of<'r>(&'r self, row: &'r [f64]) -> impl Iterator<Item = usize> + 'r {
        self.columns.iter().filter_map(|c| c.at.term_of(row[c.at.slot]))
    }

    /// Every term, dense and sparse: the length of the weights.
    pub fn terms(&self) -> usize {
        self.dense + self.columns.iter().map(|c| c.at.terms).sum::<usize>()
    }
}

/// The sparse terms' weights as a pass reads them: each term's weight per unit (w/scale, by
/// term less the dense ones), and Σ w·offset/scale, which every row's logit loses.
struct Lookup {
    per_unit: Vec<f64>,
    shift: f64,
}

fn lookup(sparse: &SparseTerms, w: &Weights) -> Lookup {
    let mut per_unit = vec![0.0; sparse.terms() - sparse.dense];
    let mut shift = 0.0;
    for column in &sparse.columns {
        let weights = &w.weights[column.at.term_range()];
        let at = column.at.first_term - sparse.dense;
        for (k, ((w, o), s)) in weights.iter().zip(&column.offset).zip(&column.scale).enumerate() {
            per_unit[at + k] = w / s;
            shift += w * o / s;
        }
    }
    Lookup { per_unit, shift }
}

impl Lookup {
    /// A row of terms' logit at `w`, its offset apart.
    #[inline]
    fn logit(&self, w: &Weights, sparse: &SparseTerms, row: &[f64]) -> f64 {
        let dense = sparse.dense;
        w.bias - self.shift
            + dot(&w.weights[..dense], &row[..dense])
            + sparse.levels_of(row).map(|t| self.per_unit[t - dense]).sum::<f64>()
    }
}

/// A pass over rows `start..end` of a design with sparse terms: the loss and the gradient's
/// sums, the sparse terms' still raw ([`finish_gradient`] scales them). No Hessian: `auto` fits
/// such a design by L-BFGS, and the other solvers refuse it.
pub(super) fn pass_chunk(
    w: &Weights,
    ex: Examples<'_>,
    sparse: &SparseTerms,
    start: usize,
    end: usize,
) -> PassSums {
    let (stride, dense) = (ex.d, sparse.dense);
    let lookup = lookup(sparse, w);
    let mut grad = vec![0.0; sparse.terms() + 1];
    let (mut loss, mut certain) = (0.0, 0u64);
    // As the dense pass (`pass_chunk_kernel`), rows go in batches, each step over the whole
    // batch before the next — the logits, the exponentials, then the sums — so that the CPU
    // overlaps rows where one at a time waits on each; and the log loss's logarithms are of a
    // product a class and batch of unweighted rows, each factor in (1, 2] (ln_1p a row was two
    // fifths of this pass).
    const BATCH: usize = 64;
    let (mut z, mut e) = ([0.0f64; BATCH], [0.0f64; BATCH]);
    let row = |i: usize| &ex.x[i * stride..(i + 1) * stride];
    for first in (start..end).step_by(BATCH) {
        let m = BATCH.min(end - first);
        for (k, zk) in z[..m].iter_mut().enumerate() {
            *zk = lookup.logit(w, sparse, row(first + k)) + ex.offset_of(first + k);
        }
        for (ek, zk) in e[..m].iter_mut().zip(&z) {
            *ek = exp_nonpositive(-zk.abs());
        }
        let mut products = [1.0f64; 2];
        for (k, (&zk, &ek)) in z[..m].iter().zip(&e).enumerate() {
            let (i, row) = (first + k, row(first + k));
            let y = ex.y[i];
            let weight = ex.weight_of(i, y);
            loss += weight * (zk.max(0.0) - y * zk);
            if ex.row_weights.is_some() {
                loss += weight * ek.ln_1p();
            } else {
                products[0] *= 1.0 + (1.0 - y) * ek;
                products[1] *= 1.0 + y * ek;
            }
            certain += u64::from(certain_and_right(zk, y));
            let r = weight * (sigmoid_given_exp(zk, ek) - y);
            grad[0] += r;
            grad[1..=dense].iter_mut().zip(&row[..dense]).for_each(|(g, v)| *g += r * v);
            sparse.levels_of(row).for_each(|t| grad[1 + t] += r);
        }
        loss += ex.class_weights[0] * products[0].ln() + ex.class_weights[1] * products[1].ln();
    }
    PassSums { loss, grad, hess: Vec::new(), certain }
}

/// Scales the sparse terms' gradient sums (the residuals summed at each level, `R`) of a whole
/// pass into their gradient: (R − offset·Σr)/scale, Σr the intercept's.
pub(super) fn finish_gradient(sparse: &SparseTerms, grad: &mut [f64]) {
    let total = grad[0];
    for column in &sparse.columns {
        let terms = column.at.term_range();
        let sums = &mut grad[1 + terms.start..1 + terms.end];
        for ((g, o), s) in sums.iter_mut().zip(&column.offset).zip(&column.scale) {
            *g = (*g - o * total) / s;
        }
    }
}

/// The logits of a design with sparse terms, one per row.
pub(super) fn logits<'a>(
    w: &'a Weights,
    ex: Examples<'a>,
    sparse: &'a SparseTerms,
) -> impl Iterator<Item = f64> + 'a {
    let lookup = lookup(sparse, w);
    ex.x.chunks_exact(ex.d)
        .enumerate()
        .map(move |(i, row)| lookup.logit(w, sparse, row) + ex.offset_of(i))
}

/// Newton's step at `w` for a design with one sparse column, unpenalised: the `delta` whose
/// subtraction from the weights (bias first) solves H·delta = g. `None` with more columns, or
/// where the Hessian is singular.
///
/// In the raw coordinates (each level's weight per unit, and the intercept less the shift
/// every row's logit loses), a row's terms are its dense ones and one 0/1 indicator, so the
/// Hessian is an arrow: a dense block A over the intercept and dense terms, a block B of their
/// sums at each level, and a diagonal D over the levels. Eliminating the levels leaves the
/// dense block's Schur complement A − B·D⁻¹·Bᵀ, of the dense terms' size: one pass and a
/// factorisation of that size, whatever the number of levels. The step is then mapped back to
/// the scaled terms the weights are in.
pub(super) fn newton_delta(
    w: &Weights,
    ex: Examples<'_>,
    sparse: &SparseTerms,
) -> Option<Vec<f64>> {
    let [column] = sparse.columns.as_slice() else { return None };
    let arrow = Arrow::of(w, ex, sparse, column);
    let m = sparse.dense + 1;
    let (schur, rhs) = arrow.eliminate_levels()?;
    let solved = super::solve_spd(&schur, &rhs, m)?;
    // The levels' raw steps, given the dense block's.
    let levels: Vec<f64> = (0..column.at.terms)
        .map(|t| (arrow.g_levels[t] - dot(&arrow.b[t * m..(t + 1) * m], &solved)) / arrow.d[t])
        .collect();
    // Back to the scaled terms: a level's weight is scale × its weight per unit, and the
    // intercept gains Σ offset × weight per unit.
    let mut delta = vec![0.0; sparse.terms() + 1];
    delta[..m].copy_from_slice(&solved);
    for (t, raw) in levels.iter().enumerate() {
        delta[0] += column.offset[t] * raw;
        delta[1 + column.at.first_term + t] = column.scale[t] * raw;
    }
    delta.iter().all(|v| v.is_finite()).then_some(delta)
}

/// The sums of one pass for [`newton_delta`], in raw coordinates: the dense block `a`
/// (m × m, m = dense terms + 1, intercept first) and its gradient, each level's row of `b`
/// (m sums) in level order, its curvature `d` and its gradient.
struct Arrow {
    m: usize,
    a: Vec<f64>,
    g_dense: Vec<f64>,
    b: Vec<f64>,
    d: Vec<f64>,
    g_levels: Vec<f64>,
}

impl Arrow {
    fn of(w: &Weights, ex: Examples<'_>, sparse: &SparseTerms, column: &SparseColumn) -> Arrow {
        let (dense, levels) = (sparse.dense, column.at.terms);
        let m = dense + 1;
        let mut arrow = Arrow {
            m,
            a: vec![0.0; m * m],
            g_dense: vec![0.0; m],
            b: vec![0.0; levels * m],
            d: vec![0.0; levels],
            g_levels: vec![0.0; levels],
        };
        let mut terms = vec![1.0; m];
        for (i, z) in logits(w, ex, sparse).enumerate() {
            let row = &ex.x[i * ex.d..(i + 1) * ex.d];
            terms[1..].copy_from_slice(&row[..dense]);
            let (y, weight) = (ex.y[i], ex.weight_of(i, ex.y[i]));
            let p = super::sigmoid(z);
            let (h, r) = (weight * p * (1.0 - p), weight * (p - y));
            for (j, &tj) in terms.iter().enumerate() {
                arrow.g_dense[j] += r * tj;
                let hj = h * tj;
                arrow.a[j * m..(j + 1) * m]
                    .iter_mut()
                    .zip(&terms)
                    .for_each(|(a, &tk)| *a += hj * tk);
            }
            if let Some(t) = column.at.term_of(row[column.at.slot]) {
                let level = t - column.at.first_term;
                arrow.b[level * m..(level + 1) * m]
                    .iter_mut()
                    .zip(&terms)
                    .for_each(|(b, &tk)| *b += h * tk);
                arrow.d[level] += h;
                arrow.g_levels[level] += r;
            }
        }
        arrow
    }

    /// The dense block's Schur complement A − B·D⁻¹·Bᵀ and its right-hand side
    /// g − B·D⁻¹·g_levels; `None` when a level has no curvature.
    fn eliminate_levels(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let m = self.m;
        let (mut schur, mut rhs) = (self.a.clone(), self.g_dense.clone());
        for (level, &d) in self.d.iter().enumerate() {
            if d <= 0.0 {
                return None;
            }
            let b = &self.b[level * m..(level + 1) * m];
            for j in 0..m {
                let bj = b[j] / d;
                rhs[j] -= bj * self.g_levels[level];
                schur[j * m..(j + 1) * m].iter_mut().zip(b).for_each(|(s, &bk)| *s -= bj * bk);
            }
        }
        Some((schur, rhs))
    }
}
