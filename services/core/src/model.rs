//! The model artifact: [`Model`] — what train writes, evaluate scores and serve loads.
//!
//! It carries everything needed to predict from raw feature values (the fitted transform and
//! the weights on scaled features), and the same model in the data's own units
//! ([`Model::intercept`], [`Model::coefficients`]) for people to read and compare with
//! statsmodels or R's glm.

pub use crate::coefficients::Coefficients;
use crate::inference::{FitReport, SparseColumnTerms, TermStatistics};
use crate::logistic::multinomial::ClassModel;
use crate::logistic::{EpochEvent, StopReason, TrainParams, Weights, sigmoid};
use crate::scale::{EncodeError, Encoding, Transform, Value};
use crate::table::Classes;
use serde::{Deserialize, Serialize};

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
    /// θ per term in the data's own units (per unit of each numeric feature; for a level, the
    /// change in log-odds against the reference level), in the model's term order.
    pub coefficients: Coefficients,
    pub params: TrainParams,
    pub stop_reason: StopReason,
    pub epochs_run: usize,
    /// The rows the fit used (the training split less any validation hold-out).
    pub train_rows: usize,
    pub lineage: Lineage,
    /// The rows held out of the training split to watch the validation loss.
    #[serde(default)]
    pub validation_rows: usize,
    /// The label's classes by name (class 1 is `positive`).
    #[serde(default)]
    pub classes: Option<Classes>,
    /// The coefficient table, separation, optimality ([`FitReport`]).
    #[serde(flatten)]
    pub fit: FitReport,
    /// A K-class model's blocks and tables; `None` for two classes, whose weights are `scaled`
    /// (a K-class model's `scaled`, `intercept` and `coefficients` are zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multinomial: Option<ClassModel>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PredictError {
    #[error("expected {expected} value(s), one per feature ({names}), got {got}")]
    Width { expected: usize, got: usize, names: String },
    #[error("value {index} ({name}) is not a finite number")]
    NotFinite { index: usize, name: String },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("feature {0:?} is categorical: send its value as text, one tensor per feature (BYTES)")]
    NeedsText(String),
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
        let (intercept, thetas) =
            crate::coefficients::unscaled(&transform, scaled.bias, &scaled.weights);
        let coefficients =
            Coefficients(transform.term_names().iter().cloned().zip(thetas).collect());
        let terms = TermStatistics::estimates_only(intercept, &coefficients);
        let sparse_columns = transform
            .feature_names
            .iter()
            .enumerate()
            .filter_map(|(j, name)| match transform.encoding(j) {
                Encoding::Sparse { levels, .. } => {
                    Some(SparseColumnTerms { column: name.clone(), terms: levels.len() - 1 })
                }
                _ => None,
            })
            .collect();
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
            validation_rows: 0,
            classes: None,
            fit: FitReport { terms, sparse_columns, ..FitReport::default() },
            multinomial: None,
        }
    }

    /// The number of input features.
    pub fn width(&self) -> usize {
        self.feature_names.len()
    }

    /// The number of terms: the width of a row of [`Model::logit_raw`].
    pub fn term_count(&self) -> usize {
        self.transform.terms()
    }

    /// Whether every feature is numeric, so a row of features is a row of terms.
    pub fn is_numeric(&self) -> bool {
        self.transform.is_numeric()
    }

    /// The names of the two classes: (class 0, class 1).
    pub fn class_names(&self) -> (String, String) {
        match &self.classes {
            Some(c) => (c.negative.clone(), c.positive.clone()),
            None => (format!("not {}", self.label_name), self.label_name.clone()),
        }
    }

    /// How many classes the model tells apart: 2, or K.
    pub fn class_count(&self) -> usize {
        self.multinomial.as_ref().map_or(2, |m| m.weights.classes())
    }

    /// Every class's name, in the order of [`Model::probabilities_raw`].
    pub fn class_list(&self) -> Vec<String> {
        match (&self.multinomial, &self.classes) {
            (Some(m), _) => m.estimates.iter().map(|e| e.class.clone()).collect(),
            _ => {
                let (negative, positive) = self.class_names();
                vec![negative, positive]
            }
        }
    }

    /// Each class's probability for one row of terms in the data's units (as
    /// [`Model::logit_raw`] takes it), into `out`, [`Model::class_count`] long: for two
    /// classes, 1 − p and p.
    pub fn probabilities_raw(&self, row: &[f64], out: &mut [f64]) {
        match &self.multinomial {
            Some(m) => m.probabilities_raw(&self.transform, row, out),
            None => {
                let p = self.probability_raw(row);
                out[0] = 1.0 - p;
                out[1] = p;
            }
        }
    }

    /// Encodes one row of feature values (numbers and text) into a row of terms, checked.
    pub fn encode_row(&self, row: &[Value], out: &mut Vec<f64>) -> Result<(), PredictError> {
        if row.len() != self.width() {
            return Err(PredictError::Width {
                expected: self.width(),
                got: row.len(),
                names: self.feature_names.join(", "),
            });
        }
        self.transform.encode_values(row, out)?;
        Ok(())
    }

    /// Whether every input is a number (a numeric term or the offset), so that a row of inputs
    /// can come as one matrix.
    pub fn takes_numbers_only(&self) -> bool {
        (0..self.width()).all(|j| self.takes_a_number(j))
    }

    /// Whether input `j` is a number: a numeric term or the offset.
    fn takes_a_number(&self, j: usize) -> bool {
        matches!(self.transform.encoding(j), Encoding::Numeric | Encoding::Offset)
    }

    /// Checks one row of raw values of a model that takes numbers only.
    pub fn check_row(&self, row: &[f64]) -> Result<(), PredictError> {
        if let Some(j) = (0..self.width()).find(|&j| !self.takes_a_number(j)) {
            return Err(PredictError::NeedsText(self.feature_names[j].clone()));
        }
        if row.len() != self.width() {
            return Err(PredictError::Width {
                expected: self.width(),
                got: row.len(),
                names: self.feature_names.join(", "),
            });
        }
        if let Some(i) = row.iter().position(|v| !v.is_finite()) {
            return Err(PredictError::NotFinite { index: i, name: self.feature_names[i].clone() });
        }
        Ok(())
    }

    /// The logit of one row of terms in the data's units (for a numeric model: its feature
    /// values), already checked, with the offset last when the model has one. Computed through
    /// the scaled weights, exactly as in training.
    ///
    /// A model with sparse terms takes its logit from its coefficients in the data's units
    /// instead: the sparse terms' offsets are then in the intercept, and a level is a lookup.
    #[inline]
    pub fn logit_raw(&self, row: &[f64]) -> f64 {
        let t = &self.transform;
        let dense = t.dense_terms();
        let mut z = if dense < t.terms() {
            let coefficients = self.coefficients.0.iter().map(|(_, c)| c);
            self.intercept
                + row.iter().take(dense).zip(coefficients).map(|(v, c)| v * c).sum::<f64>()
                + self.sparse_logit(row)
        } else {
            let mut z = self.scaled.bias;
            let scaled = row.iter().zip(&self.scaled.weights).zip(&t.offset).zip(&t.scale);
            for (((v, w), o), sc) in scaled {
                z += w * (v - o) / sc;
            }
            z
        };
        if t.has_offset() {
            z += row[t.slots()];
        }
        z
    }

    /// The sparse terms' part of the logit of a row of terms in the data's units: each sparse
    /// column's level's coefficient.
    fn sparse_logit(&self, row: &[f64]) -> f64 {
        let coefficient = |term: usize| self.coefficients.0.get(term).map_or(0.0, |(_, c)| *c);
        self.transform
            .sparse_slots()
            .filter_map(|sparse| sparse.term_of(row[sparse.slot]))
            .map(coefficient)
            .sum()
    }

    /// The width of a row of [`Model::logit_raw`]: the terms, and the offset if any.
    pub fn row_width(&self) -> usize {
        self.transform.row_width()
    }

    #[inline]
    pub fn probability_raw(&self, row: &[f64]) -> f64 {
        sigmoid(self.logit_raw(row))
    }

    /// The value of feature `index` that gives probability `target`, the others held at
    /// `row`'s values: the inverse of the logit. `None` when that feature has no effect.
    /// `row` is a row of terms; `index` a term's index.
    pub fn value_for_probability(&self, row: &[f64], index: usize, target: f64) -> Option<f64> {
        let t = &self.transform;
        // A sparse term's value is a level, not a number to solve for.
        let dense = t.dense_terms();
        let theta = self.coefficients.0.get(index).filter(|_| index < dense)?.1;
        let mut rest = self.intercept + if t.has_offset() { row[t.slots()] } else { 0.0 };
        for (t, (_, coefficient)) in self.coefficients.0.iter().take(dense).enumerate() {
            if t != index {
                rest += coefficient * row[t];
            }
        }
        if dense < t.terms() {
            rest += self.sparse_logit(row);
        }
        crate::logistic::value_reaching(target, rest, theta)
    }
}

impl Model {
    /// The worked example of DESIGN.md as a model: θ0 = −10, θ1 = 0.2 per point of `score`, no
    /// scaling; a student who scored 80 is admitted with probability 1/(1+e^−6) ≈ 0.9975.
    /// For tests and benchmarks that need a known model without training one.
    pub fn worked_example() -> Model {
        Model::one_feature(-10.0, 0.2)
    }

    /// A model with a text feature, for tests and benchmarks: `default` (classes `No`/`Yes`)
    /// from `student` (`No`, the reference, or `Yes`) and `balance`, with no scaling:
    /// z = −10 − 0.7·[student = Yes] + 0.005·balance.
    pub fn credit_example() -> Model {
        use crate::scale::Encoding;
        let transform = Transform {
            scaling: crate::scale::Scaling::None,
            feature_names: vec!["student".into(), "balance".into()],
            encodings: vec![
                Encoding::Categorical { levels: vec!["No".into(), "Yes".into()] },
                Encoding::Numeric,
            ],
            term_names: vec!["student=Yes".into(), "balance".into()],
            offset: vec![0.0, 0.0],
            scale: vec![1.0, 1.0],
        };
        let weights = Weights { bias: -10.0, weights: vec![-0.7, 0.005] };
        let mut model = Model::new(
            transform,
            weights,
            "default".into(),
            TrainParams::default(),
            StopReason::Converged,
            1,
            1,
            Lineage::default(),
        );
        model.classes = Some(Classes::two("No", "Yes"));
        model
    }

    /// A model of three numeric features `a`, `b`, `c` fitted on standardised data (offsets 10,
    /// −5, 100; scales 2, 0.5, 50), for tests of everything that un-scales: in scaled units
    /// z = 0.3 + 0.8·a′ − 1.2·b′ + 0.5·c′, so in the data's units θ = (0.4, −2.4, 0.01) and
    /// θ0 = 0.3 − 4 − 12 − 1 = −16.7.
    pub fn scaled_example() -> Model {
        let transform = Transform {
            scaling: crate::scale::Scaling::Standard,
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            encodings: Vec::new(),
            term_names: Vec::new(),
            offset: vec![10.0, -5.0, 100.0],
            scale: vec![2.0, 0.5, 50.0],
        };
        let weights = Weights { bias: 0.3, weights: vec![0.8, -1.2, 0.5] };
        Model::new(
            transform,
            weights,
            "y".into(),
            TrainParams::default(),
            StopReason::Converged,
            1,
            1,
            Lineage::default(),
        )
    }

    /// A model of one feature, `score`, with no scaling: z = intercept + slope·score.
    /// A K-class model of one feature, `score`, with no scaling, for tests of everything that
    /// answers K classes: classes `A` (the reference), `B` and `C` with logits 0, −2 + x and
    /// −6 + 2x, so A is the most probable below x = 2, B from 2 to 4 and C from 4 on.
    pub fn three_class_example() -> Model {
        use crate::logistic::multinomial::{ClassModel, Coding, Multinomial, MultinomialFit};
        let blocks = [(0.0, 0.0), (-2.0, 1.0), (-6.0, 2.0)]
            .map(|(bias, slope)| Weights { bias, weights: vec![slope] });
        let weights = Multinomial { coding: Coding::Reference { class: 0 }, blocks: blocks.into() };
        let fit = MultinomialFit {
            model: weights,
            stop_reason: StopReason::Converged,
            curve: Vec::new(),
            loss_sum: f64::NAN,
            hessian_sum: Vec::new(),
        };
        let mut model = Model::one_feature(0.0, 0.0);
        model.label_name = "grade".into();
        let names: Vec<String> = ["A", "B", "C"].map(String::from).into();
        let mut classes = ClassModel::new(&fit, &model.transform, &names);
        classes.tables = classes.estimates_only();
        model.fit.terms = Vec::new();
        model.classes = Some(Classes::several(names));
        model.multinomial = Some(classes);
        model
    }

    pub fn one_feature(intercept: f64, slope: f64) -> Model {
        let transform = Transform {
            scaling: crate::scale::Scaling::None,
            feature_names: vec!["score".into()],
            encodings: Vec::new(),
            term_names: Vec::new(),
            offset: vec![0.0],
            scale: vec![1.0],
        };
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

    #[test]
    fn three_scaled_features_are_unscaled_into_the_datas_units() {
        let m = Model::scaled_example();
        assert!((m.intercept - -16.7).abs() < 1e-12, "θ0 = {}", m.intercept);
        for (name, want) in [("a", 0.4), ("b", -2.4), ("c", 0.01)] {
            let got = m.coefficients.get(name).unwrap_or(f64::NAN);
            assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
        }
        // The same probability from the data's units as from the scaled terms.
        let row = [12.0, -4.0, 150.0];
        let z = m.intercept + 0.4 * 12.0 - 2.4 * -4.0 + 0.01 * 150.0;
        assert!((m.probability_raw(&row) - crate::logistic::sigmoid(z)).abs() < 1e-12);
    }

    fn model() -> Model {
        // Scaled by (x − 50)/25; θ0 = −10, θ1 = 0.2 ⇒ w = 0.2·25 = 5, b = −10 + 0.2·50 = 0.
        let t = Transform {
            scaling: Scaling::Standard,
            feature_names: vec!["score".into()],
            encodings: Vec::new(),
            term_names: Vec::new(),
            offset: vec![50.0],
            scale: vec![25.0],
        };
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
        assert!((m.coefficients.get("score").unwrap_or(0.0) - 0.2).abs() < 1e-12);
        assert!((m.probability_raw(&[80.0]) - 0.99752737684).abs() < 1e-9);
    }

    #[test]
    fn coefficients_keep_their_order_in_json() {
        let c = Coefficients(vec![("zeta".into(), 1.0), ("alpha".into(), 2.0)]);
        let text = serde_json::to_string(&c).expect("serialises");
        assert_eq!(text, r#"{"zeta":1.0,"alpha":2.0}"#);
        let back: Coefficients = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, c);
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
