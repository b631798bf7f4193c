//! The model artifact: [`Model`] — what train writes, evaluate scores and serve loads.
//!
//! It carries everything needed to predict from raw feature values (the fitted transform and
//! the weights on scaled features), and the same model in the data's own units
//! ([`Model::intercept`], [`Model::coefficients`]) for people to read and compare with
//! statsmodels or R's glm.

use crate::logistic::{EpochEvent, StopReason, TrainParams, Weights, logit, sigmoid};
use crate::scale::Transform;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the JSON layout changes in a way older readers cannot load.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Where a model came from: the artifact ids of its inputs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    pub dataset: String,
    pub split: String,
    pub transform: String,
    /// The hash of the training parameters.
    pub params: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub format_version: u32,
    pub feature_names: Vec<String>,
    pub label_name: String,
    pub transform: Transform,
    /// Weights on the scaled features.
    pub scaled: Weights,
    /// θ0 in the data's own units.
    pub intercept: f64,
    /// θ per feature in the data's own units (per unit of each raw feature).
    pub coefficients: BTreeMap<String, f64>,
    pub params: TrainParams,
    pub stop_reason: StopReason,
    pub epochs_run: usize,
    pub train_rows: usize,
    pub lineage: Lineage,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PredictError {
    #[error("expected {expected} value(s), one per feature ({names}), got {got}")]
    Width { expected: usize, got: usize, names: String },
    #[error("value {index} ({name}) is not a finite number")]
    NotFinite { index: usize, name: String },
}

impl Model {
    /// Builds the model from weights on scaled features, undoing the scaling: with
    /// x' = (x − o)/s, z = b + Σ w x' = (b − Σ w o/s) + Σ (w/s) x.
    #[allow(clippy::too_many_arguments)] // each is a distinct, named part of the artifact
    pub fn new(
        transform: Transform,
        scaled: Weights,
        label_name: String,
        params: TrainParams,
        stop_reason: StopReason,
        epochs_run: usize,
        train_rows: usize,
        lineage: Lineage,
    ) -> Model {
        let mut intercept = scaled.bias;
        let mut coefficients = BTreeMap::new();
        for (j, name) in transform.feature_names.iter().enumerate() {
            let theta = scaled.weights[j] / transform.scale[j];
            intercept -= theta * transform.offset[j];
            coefficients.insert(name.clone(), theta);
        }
        Model {
            format_version: MODEL_FORMAT_VERSION,
            feature_names: transform.feature_names.clone(),
            label_name,
            transform,
            scaled,
            intercept,
            coefficients,
            params,
            stop_reason,
            epochs_run,
            train_rows,
            lineage,
        }
    }

    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// Checks one row of raw values.
    pub fn check_row(&self, row: &[f64]) -> Result<(), PredictError> {
        if row.len() != self.width() {
            return Err(PredictError::Width { expected: self.width(), got: row.len(), names: self.feature_names.join(", ") });
        }
        if let Some(i) = row.iter().position(|v| !v.is_finite()) {
            return Err(PredictError::NotFinite { index: i, name: self.feature_names[i].clone() });
        }
        Ok(())
    }

    /// The logit of one row of raw values (already checked). Computed through the scaled
    /// weights, exactly as in training.
    #[inline]
    pub fn logit_raw(&self, row: &[f64]) -> f64 {
        let mut z = self.scaled.bias;
        let t = &self.transform;
        for (((v, w), o), sc) in row.iter().zip(&self.scaled.weights).zip(&t.offset).zip(&t.scale) {
            z += w * (v - o) / sc;
        }
        z
    }

    #[inline]
    pub fn probability_raw(&self, row: &[f64]) -> f64 {
        sigmoid(self.logit_raw(row))
    }

    /// The value of feature `index` that gives probability `target`, the others held at
    /// `row`'s values: the inverse of the logit. `None` when that feature has no effect.
    pub fn value_for_probability(&self, row: &[f64], index: usize, target: f64) -> Option<f64> {
        let theta = *self.coefficients.get(&self.feature_names[index])?;
        if theta == 0.0 || !(0.0 < target && target < 1.0) {
            return None;
        }
        let mut rest = self.intercept;
        for (j, name) in self.feature_names.iter().enumerate() {
            if j != index {
                rest += self.coefficients[name] * row[j];
            }
        }
        Some((logit(target) - rest) / theta)
    }
}

impl Model {
    /// The worked example of DESIGN.md as a model: θ0 = −10, θ1 = 0.2 per point of `score`, no
    /// scaling; a student who scored 80 is admitted with probability 1/(1+e^−6) ≈ 0.9975.
    /// For tests and benchmarks that need a known model without training one.
    pub fn worked_example() -> Model {
        Model::one_feature(-10.0, 0.2)
    }

    /// A model of one feature, `score`, with no scaling: z = intercept + slope·score.
    pub fn one_feature(intercept: f64, slope: f64) -> Model {
        let transform =
            Transform { scaling: crate::scale::Scaling::None, feature_names: vec!["score".into()], offset: vec![0.0], scale: vec![1.0] };
        Model::new(
            transform,
            Weights { bias: intercept, weights: vec![slope] },
            "admitted".into(),
            TrainParams::default(),
            StopReason::Converged,
            1,
            1,
            Lineage::default(),
        )
    }
}

/// What train stores beside the model: the loss curve it produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainingLog {
    pub curve: Vec<EpochEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::Scaling;

    fn model() -> Model {
        // Scaled by (x − 50)/25; θ0 = −10, θ1 = 0.2 ⇒ w = 0.2·25 = 5, b = −10 + 0.2·50 = 0.
        let t = Transform { scaling: Scaling::Standard, feature_names: vec!["score".into()], offset: vec![50.0], scale: vec![25.0] };
        Model::new(
            t,
            Weights { bias: 0.0, weights: vec![5.0] },
            "admitted".into(),
            TrainParams::default(),
            StopReason::Converged,
            1,
            1,
            Lineage::default(),
        )
    }

    #[test]
    fn coefficients_in_data_units_and_worked_example() {
        let m = model();
        assert!((m.intercept + 10.0).abs() < 1e-12);
        assert!((m.coefficients["score"] - 0.2).abs() < 1e-12);
        assert!((m.probability_raw(&[80.0]) - 0.99752737684).abs() < 1e-9);
    }

    #[test]
    fn inverse_logit_gives_needed_score() {
        let m = model();
        let needed = m.value_for_probability(&[0.0], 0, 0.5).expect("has effect");
        assert!((needed - 50.0).abs() < 1e-9);
        assert!(m.check_row(&[1.0, 2.0]).is_err());
        assert!(m.check_row(&[f64::NAN]).is_err());
    }
}
