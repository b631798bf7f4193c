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

/// The most bytes one generator's rows may take, as the dataset stores them (8 per feature
/// cell and per label): 128 MiB, a 1M × 15 set. A bound on cells alone let a 13 KB request for
/// 100k rows × 1,000 features cost 680 MB of memory and 765 MB of disk; more is refused before
/// anything is allocated.
pub const MAX_STORED_BYTES: u128 = 128 << 20;

/// What `rows` rows of `features` features store: 8 bytes a feature cell and a label.
pub fn stored_bytes(rows: usize, features: usize) -> u128 {
    8 * rows as u128 * (features as u128 + 1)
}

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
    #[error(
        "{rows} rows × {features} features would store {bytes} bytes; at most {MAX_STORED_BYTES} (128 MiB) are drawn at once"
    )]
    TooLarge { rows: usize, features: usize, bytes: u128 },
    #[error("the intercept and coefficients must be finite")]
    NotFinite,
}

impl Generator {
    pub fn validate(&self) -> Result<(), GeneratorError> {
        if self.coefficients.is_empty() {
            return Err(GeneratorError::NoFeatures);
        }
        if self.coefficients.len() != self.ranges.len() {
            return Err(GeneratorError::Shape {
                coefficients: self.coefficients.len(),
                ranges: self.ranges.len(),
            });
        }
        // The width must be finite too: uniform sampling over [−1e308, 1e308) overflows.
        if let Some(i) = self.ranges.iter().position(|(lo, hi)| {
            !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite())
        }) {
            return Err(GeneratorError::BadRange(i));
        }
        if self.rows == 0 || self.rows > 100_000_000 {
            return Err(GeneratorError::Rows);
        }
        let bytes = stored_bytes(self.rows, self.coefficients.len());
        if bytes > MAX_STORED_BYTES {
            return Err(GeneratorError::TooLarge {
                rows: self.rows,
                features: self.coefficients.len(),
                bytes,
            });
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
    let feature_names =
        if d == 1 { vec!["score".to_string()] } else { (1..=d).map(|i| format!("x{i}")).collect() };
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
        let g = Generator {
            intercept: -10.0,
            coefficients: vec![0.2],
            ranges: vec![(0.0, 100.0)],
            rows: 50,
            seed: 1,
        };
        assert_eq!(generate(&g), generate(&g));
        assert_ne!(generate(&g), generate(&Generator { seed: 2, ..g.clone() }));
        assert_eq!(
            Generator { ranges: vec![], ..g.clone() }.validate(),
            Err(GeneratorError::Shape { coefficients: 1, ranges: 0 })
        );
        assert_eq!(
            Generator { ranges: vec![(5.0, 1.0)], ..g.clone() }.validate(),
            Err(GeneratorError::BadRange(0))
        );
        // A range whose width overflows used to panic in the sampler.
        assert_eq!(
            Generator { ranges: vec![(-1e308, 1e308)], ..g.clone() }.validate(),
            Err(GeneratorError::BadRange(0))
        );
        let wide = Generator {
            coefficients: vec![0.1; 1000],
            ranges: vec![(0.0, 1.0); 1000],
            rows: 10_000_000,
            ..g.clone()
        };
        assert!(matches!(
            wide.validate(),
            Err(GeneratorError::TooLarge { bytes: 80_080_000_000, .. })
        ));
        // 100k × 1,000 (765 MB on disk from a 13 KB request) is refused.
        let wide = Generator { rows: 100_000, ..wide };
        assert!(matches!(
            wide.validate(),
            Err(GeneratorError::TooLarge { bytes: 800_800_000, .. })
        ));
    }

    /// The bound in bytes, at its edge: a feature and a label are 16 bytes a row, so
    /// 128 MiB / 16 rows are drawn and one row more is refused.
    #[test]
    fn the_stored_bytes_bound_holds_at_its_edge() {
        let at_most = usize::try_from(MAX_STORED_BYTES / 16).expect("fits");
        let g = Generator {
            intercept: 0.0,
            coefficients: vec![0.2],
            ranges: vec![(0.0, 1.0)],
            rows: at_most,
            seed: 1,
        };
        assert_eq!(g.validate(), Ok(()));
        let over = Generator { rows: at_most + 1, ..g };
        assert_eq!(
            over.validate(),
            Err(GeneratorError::TooLarge {
                rows: at_most + 1,
                features: 1,
                bytes: MAX_STORED_BYTES + 16
            })
        );
        let million_by_fifteen = Generator {
            coefficients: vec![0.1; 15],
            ranges: vec![(0.0, 1.0); 15],
            rows: 1_000_000,
            ..over
        };
        assert_eq!(
            million_by_fifteen.validate(),
            Ok(()),
            "the 1M-row sets of the benchmarks are drawn"
        );
    }
}
