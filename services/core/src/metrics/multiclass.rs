//! The metrics of a K-class model: [`MulticlassMetrics`] (the K×K confusion, each class's
//! precision, recall, F1 and one-vs-rest AUC) beside the [`Metrics`] every model reports, with
//! scikit-learn's definitions: multiclass log loss, the Brier score summed over the classes,
//! macro and support-weighted one-vs-rest AUC.

use super::{Confusion, Metrics, Ranking};
use serde::{Deserialize, Serialize};

/// One class, against the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassMetrics {
    pub class: String,
    /// The test rows of this class.
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// The area under the ROC curve of this class's probability against the rest.
    pub auc: f64,
    /// Its average precision against the rest.
    pub average_precision: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MulticlassMetrics {
    /// `confusion[true][predicted]`: rows of each class by the class predicted for them (the
    /// most probable; the first of a tie).
    pub confusion: Vec<Vec<u64>>,
    pub classes: Vec<ClassMetrics>,
    /// The mean of the classes' one-vs-rest AUCs.
    pub auc_macro: f64,
    /// Their mean weighted by each class's support.
    pub auc_weighted: f64,
}

/// The smallest probability the log loss takes, as scikit-learn clips: a row given probability
/// 0 for its class costs −ln ε, not infinity.
const CLIP: f64 = f64::EPSILON;

/// The metrics of class `probabilities` (K per row, row-major, in class order) for rows whose
/// `labels` are class indices, the classes named `names`. In [`Metrics`]: accuracy, macro
/// precision, recall and F1, macro AUC and average precision, the log loss and Brier score;
/// its binary confusion is left zero and the rest is in [`Metrics::multiclass`]. `threshold` is
/// only recorded: a row's class is its most probable.
pub fn multiclass_metrics(
    probabilities: &[f64],
    labels: &[f64],
    names: &[String],
    threshold: f64,
) -> Metrics {
    let k = names.len();
    let n = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut log_loss, mut brier) = (0.0, 0.0);
    for (row, &label) in probabilities.chunks_exact(k).zip(labels) {
        let truth = label as usize;
        let predicted = most_probable(row);
        confusion[truth][predicted] += 1;
        log_loss -= row[truth].clamp(CLIP, 1.0 - CLIP).ln();
        brier += row
            .iter()
            .enumerate()
            .map(|(c, &p)| (p - f64::from(u8::from(c == truth))).powi(2))
            .sum::<f64>();
    }
    let classes: Vec<ClassMetrics> =
        (0..k).map(|c| one_vs_rest(probabilities, labels, &confusion, (c, &names[c]))).collect();
    let mean = |f: fn(&ClassMetrics) -> f64| classes.iter().map(f).sum::<f64>() / k as f64;
    let auc_macro = mean(|c| c.auc);
    let auc_weighted = classes.iter().map(|c| c.auc * c.support as f64).sum::<f64>() / n as f64;
    let right: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let nf = n.max(1) as f64;
    Metrics {
        rows: n,
        threshold,
        accuracy: right as f64 / nf,
        precision: mean(|c| c.precision),
        recall: mean(|c| c.recall),
        f1: mean(|c| c.f1),
        auc: auc_macro,
        log_loss: log_loss / nf,
        brier: brier / nf,
        confusion: Confusion::default(),
        pr_auc: mean(|c| c.average_precision),
        suggested_thresholds: None,
        multiclass: Some(MulticlassMetrics { confusion, classes, auc_macro, auc_weighted }),
    }
}

/// The index of the largest probability of a row; the first of a tie, as numpy's `argmax`.
pub fn most_probable(row: &[f64]) -> usize {
    row.iter().enumerate().fold(0, |best, (c, &p)| if p > row[best] { c } else { best })
}

/// Class `c` against the rest: its counts from the confusion, its ranking from its probability.
fn one_vs_rest(
    probabilities: &[f64],
    labels: &[f64],
    confusion: &[Vec<u64>],
    (c, name): (usize, &str),
) -> ClassMetrics {
    let k = confusion.len();
    let scores: Vec<f64> = probabilities.iter().skip(c).step_by(k).copied().collect();
    let is_class: Vec<f64> = labels.iter().map(|&y| f64::from(u8::from(y as usize == c))).collect();
    let ranking = Ranking::new(&scores, &is_class);
    let support: u64 = confusion[c].iter().sum();
    let predicted: u64 = confusion.iter().map(|row| row[c]).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(confusion[c][c], predicted), ratio(confusion[c][c], support));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    ClassMetrics {
        class: name.to_string(),
        support: support as usize,
        precision,
        recall,
        f1,
        auc: ranking.roc_auc(),
        average_precision: ranking.average_precision(),
    }
}
