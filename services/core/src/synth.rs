//! Rows drawn from a given logistic model and a seed: [`Generator`] and [`generate`].
//!
//! Features are uniform over their ranges; each label is 1 with probability σ(θ0 + θ·x). The
//! generator is ChaCha8, a named, stable algorithm, so a seed means the same rows in every
//! version.

use crate::clean::Dataset;
use crate::logistic::sigmoid;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// The most cells (rows × features) one generator draws: 100M cells is 800 MB of features in
/// memory, and a request for more is refused before anything is allocated (10M rows × 1000
/// features once asked for 80 GB).
pub const MAX_CELLS: usize = 100_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// One (low, high) range per feature.
    pub ranges: Vec<(f64, f64)>,
    pub rows: usize,
    pub seed: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeneratorError {
    #[error("{coefficients} coefficients but {ranges} ranges: give one range per coefficient")]
    Shape { coefficients: usize, ranges: usize },
    #[error("at least one coefficient is needed")]
    NoFeatures,
    #[error("range {0}: low must be finite and below high, and high − low finite")]
    BadRange(usize),
    #[error("rows must be between 1 and 100000000")]
    Rows,
    #[error("{rows} rows × {features} features is {cells} cells; at most {MAX_CELLS} are drawn at once")]
    TooManyCells { rows: usize, features: usize, cells: u128 },
    #[error("the intercept and coefficients must be finite")]
    NotFinite,
}

impl Generator {
    pub fn validate(&self) -> Result<(), GeneratorError> {
        if self.coefficients.is_empty() {
            return Err(GeneratorError::NoFeatures);
        }
        if self.coefficients.len() != self.ranges.len() {
            return Err(GeneratorError::Shape { coefficients: self.coefficients.len(), ranges: self.ranges.len() });
        }
        // The width must be finite too: uniform sampling over [−1e308, 1e308) overflows.
        if let Some(i) = self.ranges.iter().position(|(lo, hi)| !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite())) {
            return Err(GeneratorError::BadRange(i));
        }
        if self.rows == 0 || self.rows > 100_000_000 {
            return Err(GeneratorError::Rows);
        }
        let cells = self.rows as u128 * self.coefficients.len() as u128;
        if cells > MAX_CELLS as u128 {
            return Err(GeneratorError::TooManyCells { rows: self.rows, features: self.coefficients.len(), cells });
        }
        if !self.intercept.is_finite() || self.coefficients.iter().any(|c| !c.is_finite()) {
            return Err(GeneratorError::NotFinite);
        }
        Ok(())
    }
}

/// Draws the rows. Feature values are rounded to 2 decimals, as a CSV would hold them, so the
/// in-memory data and its CSV are the same data.
pub fn generate(g: &Generator) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
    let d = g.coefficients.len();
    let mut x = Vec::with_capacity(g.rows * d);
    let mut y = Vec::with_capacity(g.rows);
    for _ in 0..g.rows {
        let mut z = g.intercept;
        for (c, &(lo, hi)) in g.coefficients.iter().zip(&g.ranges) {
            let v = (rng.random_range(lo..hi) * 100.0).round() / 100.0;
            z += c * v;
            x.push(v);
        }
        y.push(f64::from(u8::from(rng.random::<f64>() < sigmoid(z))));
    }
    let feature_names = if d == 1 { vec!["score".to_string()] } else { (1..=d).map(|i| format!("x{i}")).collect() };
    Dataset { feature_names, label_name: "admitted".into(), x, y, ..Dataset::default() }
}

/// Writes a dataset as CSV with a header.
pub fn write_csv<W: Write>(data: &Dataset, mut out: W) -> std::io::Result<()> {
    let mut header = data.feature_names.join(",");
    header.push(',');
    header.push_str(&data.label_name);
    writeln!(out, "{header}")?;
    let d = data.width();
    for i in 0..data.rows() {
        for v in &data.x[i * d..(i + 1) * d] {
            write!(out, "{v},")?;
        }
        writeln!(out, "{}", data.y[i])?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rows_and_validation() {
        let g = Generator { intercept: -10.0, coefficients: vec![0.2], ranges: vec![(0.0, 100.0)], rows: 50, seed: 1 };
        assert_eq!(generate(&g), generate(&g));
        assert_ne!(generate(&g), generate(&Generator { seed: 2, ..g.clone() }));
        assert_eq!(Generator { ranges: vec![], ..g.clone() }.validate(), Err(GeneratorError::Shape { coefficients: 1, ranges: 0 }));
        assert_eq!(Generator { ranges: vec![(5.0, 1.0)], ..g.clone() }.validate(), Err(GeneratorError::BadRange(0)));
        // A range whose width overflows used to panic in the sampler.
        assert_eq!(Generator { ranges: vec![(-1e308, 1e308)], ..g.clone() }.validate(), Err(GeneratorError::BadRange(0)));
        let wide = Generator { coefficients: vec![0.1; 1000], ranges: vec![(0.0, 1.0); 1000], rows: 10_000_000, ..g };
        assert!(matches!(wide.validate(), Err(GeneratorError::TooManyCells { cells: 10_000_000_000, .. })));
    }
}
