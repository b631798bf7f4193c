//! Feature scaling, fitted on the training split only: [`Transform`].
//!
//! Every scaling is `x' = (x − offset) / scale` per feature, which is what lets a model undo
//! it and report its coefficients in the data's own units.

use crate::clean::Dataset;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Mean 0, standard deviation 1.
    #[default]
    Standard,
    /// Minimum 0, maximum 1.
    MinMax,
    /// Leave the data as it is.
    None,
}

impl std::str::FromStr for Scaling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "standard" => Ok(Self::Standard),
            "minmax" | "min_max" => Ok(Self::MinMax),
            "none" => Ok(Self::None),
            other => Err(format!("unknown scaling {other:?}: use standard, minmax or none")),
        }
    }
}

/// A fitted transform: per feature, `x' = (x − offset) / scale`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transform {
    pub scaling: Scaling,
    pub feature_names: Vec<String>,
    pub offset: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Transform {
    /// Fits on the training rows. A constant column gets scale 1, so it cannot divide by zero.
    pub fn fit(train: &Dataset, scaling: Scaling) -> Transform {
        let d = train.width();
        let n = train.rows().max(1) as f64;
        let mut offset = vec![0.0; d];
        let mut scale = vec![1.0; d];
        match scaling {
            Scaling::None => {}
            Scaling::Standard => {
                for j in 0..d {
                    let mean = (0..train.rows()).map(|i| train.x[i * d + j]).sum::<f64>() / n;
                    let var = (0..train.rows()).map(|i| (train.x[i * d + j] - mean).powi(2)).sum::<f64>() / n;
                    offset[j] = mean;
                    scale[j] = if var.sqrt() > 0.0 && var.is_finite() { var.sqrt() } else { 1.0 };
                }
            }
            Scaling::MinMax => {
                for j in 0..d {
                    let (lo, hi) = (0..train.rows())
                        .map(|i| train.x[i * d + j])
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                    offset[j] = lo;
                    scale[j] = if hi - lo > 0.0 && (hi - lo).is_finite() { hi - lo } else { 1.0 };
                }
            }
        }
        Transform { scaling, feature_names: train.feature_names.clone(), offset, scale }
    }

    pub fn apply_row(&self, row: &[f64], out: &mut [f64]) {
        for j in 0..row.len() {
            out[j] = (row[j] - self.offset[j]) / self.scale[j];
        }
    }

    /// Returns the scaled copy of a row-major matrix.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let d = self.offset.len();
        let mut out = vec![0.0; x.len()];
        for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            self.apply_row(row, o);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Dataset {
        Dataset { feature_names: vec!["a".into(), "c".into()], label_name: "y".into(), x: vec![0.0, 5.0, 10.0, 5.0], y: vec![0.0, 1.0] }
    }

    #[test]
    fn standard_centres_and_constant_column_is_safe() {
        let t = Transform::fit(&data(), Scaling::Standard);
        assert_eq!(t.offset, vec![5.0, 5.0]);
        assert_eq!(t.scale, vec![5.0, 1.0]);
        assert_eq!(t.apply(&[10.0, 5.0]), vec![1.0, 0.0]);
    }

    #[test]
    fn minmax_maps_to_unit_interval() {
        let t = Transform::fit(&data(), Scaling::MinMax);
        assert_eq!(t.apply(&[0.0, 5.0, 10.0, 5.0]), vec![0.0, 0.0, 1.0, 0.0]);
    }
}
