//! Columns that belong to the rows rather than to the model's terms: a frequency weight, an
//! offset, a cluster for the covariance, a cross-validation fold ([`RoleColumns`], by name).
//!
//! They are read, cleaned and split with the features, as columns of the same matrix, so that
//! every row keeps its own weight, offset and cluster through every step; [`RoleColumns`] says
//! which they are. The offset stays a column of the model's input (a served request must give
//! it); the others are taken out of the rows before the terms are made (`clean::RowColumns`).

use crate::column::{ColumnKind, DataError};
use serde::{Deserialize, Serialize};

/// Which columns have a role, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleColumns {
    /// Each row's frequency weight: a non-negative number; the fit equals the rows repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// A known part of each row's logit, with coefficient 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// The groups whose summed scores make the cluster-robust covariance (text or numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Each row's cross-validation fold: 1 to K (or any K distinct values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<String>,
}

/// A role, for messages and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Weights,
    Offset,
    Cluster,
    Folds,
}

impl Role {
    /// The field that names the role's column, as errors name it (the console shows its
    /// flag: `with_flag_hints` in the console).
    pub fn field(self) -> &'static str {
        match self {
            Role::Weights => "`weights`",
            Role::Offset => "`offset`",
            Role::Cluster => "`cluster`",
            Role::Folds => "`folds`",
        }
    }

    /// The field as given with `column`: "`weights` w", "`cluster`:island".
    fn given(self, column: &str) -> String {
        match self {
            Role::Cluster => format!("`cluster`:{column}"),
            _ => format!("{} {column}", self.field()),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Role::Weights => "weight",
            Role::Offset => "offset",
            Role::Cluster => "cluster",
            Role::Folds => "fold",
        }
    }
}

impl RoleColumns {
    pub fn is_empty(&self) -> bool {
        self.named().next().is_none()
    }

    /// Each role given, with its column's name.
    pub fn named(&self) -> impl Iterator<Item = (Role, &str)> {
        [
            (Role::Weights, &self.weights),
            (Role::Offset, &self.offset),
            (Role::Cluster, &self.cluster),
            (Role::Folds, &self.folds),
        ]
        .into_iter()
        .filter_map(|(role, name)| Some((role, name.as_deref()?)))
    }

    /// The roles that are not inputs of the model: all but the offset.
    pub fn of_rows_only(&self) -> impl Iterator<Item = (Role, &str)> {
        self.named().filter(|(role, _)| *role != Role::Offset)
    }

    /// Adds the role columns to the columns read (`features`, indices into the header), checking
    /// that none is the label, another role's column, or (but for the offset, which is an
    /// input of the model) a feature named by `--features`. An offset that `--features` leaves
    /// out is read all the same. `listed` says whether `--features` named the features.
    pub(crate) fn select(
        &self,
        find: impl Fn(&str) -> Result<usize, DataError>,
        label: usize,
        features: &mut Vec<usize>,
        listed: bool,
    ) -> Result<(), DataError> {
        let mut taken: Vec<(usize, Role)> = Vec::new();
        for (role, name) in self.named() {
            let i = find(name)?;
            let column = |why: String| DataError::Column(name.to_string(), why);
            if i == label {
                return Err(column(format!(
                    "{} names the label; a {} column cannot be the label",
                    role.given(name),
                    role.noun()
                )));
            }
            if let Some((_, other)) = taken.iter().find(|(j, _)| *j == i) {
                return Err(column(format!(
                    "{} and {} name the same column",
                    other.field(),
                    role.field()
                )));
            }
            taken.push((i, role));
            let is_feature = features.contains(&i);
            if listed && is_feature {
                return Err(column(format!(
                    "{} names a feature; a {} column is not a feature: leave it out of `features`",
                    role.given(name),
                    role.noun()
                )));
            }
            if !is_feature {
                features.push(i);
            }
        }
        Ok(())
    }

    /// Checks the role columns' values once the table is read: weights and offsets are finite
    /// numbers, weights not negative, and no role cell is missing. `lines` are the rows' file
    /// lines, for the message.
    pub(crate) fn check(
        &self,
        names: &[String],
        kinds: &[ColumnKind],
        x: &[f64],
        lines: &[u64],
    ) -> Result<(), DataError> {
        let d = names.len();
        for (role, name) in self.named() {
            let Some(j) = names.iter().position(|n| n == name) else { continue };
            let numeric = matches!(role, Role::Weights | Role::Offset);
            if let (true, Some(levels)) = (numeric, kinds.get(j).and_then(ColumnKind::levels)) {
                let sample =
                    levels.iter().find(|l| l.parse::<f64>().is_err()).unwrap_or(&levels[0]);
                return Err(DataError::Column(
                    name.to_string(),
                    format!("the {} column must hold numbers; it holds {sample:?}", role.noun()),
                ));
            }
            for (row, &v) in x.iter().skip(j).step_by(d.max(1)).enumerate() {
                let line = lines.get(row).copied().unwrap_or(0);
                if v.is_nan() {
                    return Err(DataError::Column(
                        name.to_string(),
                        format!("line {line}: the {} is missing", role.noun()),
                    ));
                }
                if role == Role::Weights && v < 0.0 {
                    return Err(DataError::Column(
                        name.to_string(),
                        format!("line {line}: the weight {v} is negative"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a fit's rows carried besides their terms, as its report gives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowReport {
    pub columns: RoleColumns,
    /// The rows fitted.
    pub rows: usize,
    /// Σ of their frequency weights: the n of the fit statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_sum: Option<f64>,
    /// Rows of weight 0, left out of the fit.
    #[serde(default)]
    pub dropped_rows: usize,
    /// The clusters of the cluster-robust covariance among the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<usize>,
}

impl RowReport {
    /// One line per role: "weights: w, Σ 51 over 24 rows (8 of weight 0 left out)".
    pub fn lines(&self) -> Vec<String> {
        let c = &self.columns;
        let mut lines = Vec::new();
        if let (Some(name), Some(sum)) = (&c.weights, self.weight_sum) {
            let dropped = match self.dropped_rows {
                0 => String::new(),
                n => format!(" ({n} of weight 0 left out)"),
            };
            lines.push(format!(
                "weights: {name}, Σ {sum} over {} rows{dropped}, each row counted that often",
                self.rows
            ));
        }
        if let Some(name) = &c.offset {
            lines.push(format!("offset: {name}, added to each logit with coefficient 1; an input the served model requires"));
        }
        if let (Some(name), Some(clusters)) = (&c.cluster, self.clusters) {
            lines.push(format!("clusters: {name}, {clusters} among the rows fitted"));
        }
        lines
    }
}
