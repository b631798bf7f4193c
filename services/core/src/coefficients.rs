//! The coefficient table: [`Coefficients`] (a model's coefficients by term name, in term
//! order), [`unscaled`] (them in the data's units, from weights on scaled terms), and
//! [`TermStatistics`] (a row of the table, with [`with_standard_errors`] to fill in its
//! statistics). Its own module so that the model, the solvers and the inference on them all
//! read it, none through another.

use crate::scale::Transform;
use serde::{Deserialize, Serialize};

/// The intercept's name among the terms, as R and statsmodels print it.
pub const INTERCEPT: &str = "(intercept)";

/// The normal quantile of a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// Coefficients by term name, in the model's term order: a JSON object whose keys keep that
/// order (a map type would sort them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coefficients(pub Vec<(String, f64)>);

impl Coefficients {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.0.iter().map(|(n, v)| (n, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }
    pub fn values(&self) -> impl Iterator<Item = &f64> {
        self.0.iter().map(|(_, v)| v)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Coefficients {
    type Item = (&'a String, &'a f64);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, f64)>,
        fn(&'a (String, f64)) -> (&'a String, &'a f64),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

impl<const N: usize> From<[(String, f64); N]> for Coefficients {
    fn from(pairs: [(String, f64); N]) -> Self {
        Coefficients(pairs.into())
    }
}

impl FromIterator<(String, f64)> for Coefficients {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Coefficients(iter.into_iter().collect())
    }
}

impl Serialize for Coefficients {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Coefficients {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Coefficients;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of term name → coefficient")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Coefficients, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, f64>()? {
                    pairs.push(entry);
                }
                Ok(Coefficients(pairs))
            }
        }
        d.deserialize_map(InOrder)
    }
}

/// The intercept and each term's coefficient in the data's units, from the intercept `bias`
/// and `weights` on the scaled terms: with x' = (x − o)/s, z = b + Σ w x' = (b − Σ w o/s) +
/// Σ (w/s) x.
pub fn unscaled(transform: &Transform, bias: f64, weights: &[f64]) -> (f64, Vec<f64>) {
    let mut intercept = bias;
    let mut coefficients = Vec::with_capacity(weights.len());
    for (t, w) in weights.iter().enumerate() {
        let theta = w / transform.scale[t];
        intercept -= theta * transform.offset[t];
        coefficients.push(theta);
    }
    (intercept, coefficients)
}

/// One row of the coefficient table. The statistics are `None` where they are not given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TermStatistics {
    pub term: String,
    pub estimate: f64,
    pub std_error: Option<f64>,
    pub z: Option<f64>,
    pub p_value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// e^estimate; `None` when that is not a finite number (a separated fit's estimates).
    pub odds_ratio: Option<f64>,
    /// The estimate times its term's standard deviation over the training rows: the change
    /// in log-odds for one standard deviation of the term, which compares across terms in
    /// different units (grams and millimetres). `None` for the intercept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardized: Option<f64>,
}

impl TermStatistics {
    /// The table without statistics: the intercept, then every term in order.
    pub fn estimates_only(intercept: f64, coefficients: &Coefficients) -> Vec<TermStatistics> {
        std::iter::once((INTERCEPT, intercept))
            .chain(coefficients.iter().map(|(n, v)| (n.as_str(), *v)))
            .map(|(term, estimate)| TermStatistics {
                term: term.to_string(),
                estimate,
                std_error: None,
                z: None,
                p_value: None,
                ci_low: None,
                ci_high: None,
                odds_ratio: Some(estimate.exp()).filter(|v| v.is_finite()),
                standardized: None,
            })
            .collect()
    }
}

/// `table` (the intercept, then each term, in the data's units) with the standard errors, z,
/// p-values and 95% intervals of `covariance`, the estimates' covariance on the scaled terms.
pub fn with_standard_errors(
    mut table: Vec<TermStatistics>,
    covariance: &[f64],
    transform: &Transform,
) -> Vec<TermStatistics> {
    let k = table.len();
    // The covariance in the data's units is A C Aᵀ, with A's row 0 = (1, −o1/s1, …) and row t
    // = e_t/s_t (the scaling's map from scaled to raw estimates). Only its diagonal is needed,
    // and A is that sparse: a term's variance is C_tt/s_t², the intercept's a₀ᵀ C a₀. O(k²),
    // where the full product was O(k³).
    let a0: Vec<f64> = std::iter::once(1.0)
        .chain((1..k).map(|t| -transform.offset[t - 1] / transform.scale[t - 1]))
        .collect();
    let variance = |r: usize| -> f64 {
        if r == 0 {
            covariance
                .chunks_exact(k)
                .zip(&a0)
                .map(|(row, ai)| ai * row.iter().zip(&a0).map(|(c, aj)| c * aj).sum::<f64>())
                .sum()
        } else {
            covariance[r * k + r] / (transform.scale[r - 1] * transform.scale[r - 1])
        }
    };
    for (r, row) in table.iter_mut().enumerate() {
        let se = variance(r).max(0.0).sqrt();
        let z = row.estimate / se;
        row.std_error = Some(se);
        row.z = Some(z);
        row.p_value = Some(libm::erfc(z.abs() / std::f64::consts::SQRT_2));
        row.ci_low = Some(row.estimate - Z_95 * se);
        row.ci_high = Some(row.estimate + Z_95 * se);
    }
    table
}
