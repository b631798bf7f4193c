//! [`Coefficients`]: a model's coefficients by term name, in term order, and [`unscaled`],
//! which gives them in the data's units from weights on scaled terms. Its own module so that
//! the model and the inference on it both read them, neither through the other.

use crate::scale::Transform;
use serde::{Deserialize, Serialize};

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
