//! Classification metrics on predicted probabilities: [`Metrics`], [`roc_curve`], [`roc_auc`].

use serde::{Deserialize, Serialize};

mod multiclass;
pub use multiclass::{ClassMetrics, MulticlassMetrics, most_probable, multiclass_metrics};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

// `fn` is a keyword, so the field is `fn_` in Rust and `fn` on the wire.
impl Confusion {
    pub fn at(probabilities: &[f64], labels: &[f64], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (&p, &y) in probabilities.iter().zip(labels) {
            match (p >= threshold, y == 1.0) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
}

mod confusion_wire {
    use super::Confusion;
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize)]
    pub(super) struct Wire {
        tp: u64,
        fp: u64,
        tn: u64,
        #[serde(rename = "fn")]
        fn_: u64,
    }
    impl From<Wire> for Confusion {
        fn from(w: Wire) -> Self {
            Confusion { tp: w.tp, fp: w.fp, tn: w.tn, fn_: w.fn_ }
        }
    }
    impl From<&Confusion> for Wire {
        fn from(c: &Confusion) -> Self {
            Wire { tp: c.tp, fp: c.fp, tn: c.tn, fn_: c.fn_ }
        }
    }
}

pub mod confusion_serde {
    //! Serialises [`Confusion`](super::Confusion) with the field `fn`.
    use super::{Confusion, confusion_wire::Wire};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(c: &Confusion, s: S) -> Result<S::Ok, S::Error> {
        Wire::from(c).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Confusion, D::Error> {
        Wire::deserialize(d).map(Confusion::from)
    }
}

/// Every metric the evaluate stage reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub rows: usize,
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    #[serde(with = "confusion_serde")]
    pub confusion: Confusion,
    /// The area under the precision-recall curve, as average precision (scikit-learn's
    /// `average_precision_score`): the mean of the precision at each positive's rank.
    #[serde(default)]
    pub pr_auc: f64,
    /// Thresholds worth considering besides the one in use.
    #[serde(default)]
    pub suggested_thresholds: Option<SuggestedThresholds>,
    /// A K-class model's confusion and per-class figures; the fields above are then its
    /// accuracy, macro averages, log loss and Brier score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiclass: Option<MulticlassMetrics>,
}

/// The threshold that maximises F1, and the one that maximises Youden's J (TPR − FPR).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SuggestedThresholds {
    pub max_f1: f64,
    pub f1: f64,
    pub youden: f64,
    pub j: f64,
}

impl Metrics {
    /// `probabilities` and `logits` are per row; the log loss uses the logits so it stays
    /// finite when a probability rounds to 0 or 1.
    pub fn compute(
        probabilities: &[f64],
        logits: &[f64],
        labels: &[f64],
        threshold: f64,
    ) -> Metrics {
        Metrics::compute_with_ranking(probabilities, logits, labels, threshold).0
    }

    /// [`Metrics::compute`], and the [`Ranking`] it made, for the curves. The ranking (a sort)
    /// is made on other cores while this one takes the metrics of each row (the log loss's
    /// `exp` and `ln_1p`).
    pub fn compute_with_ranking(
        probabilities: &[f64],
        logits: &[f64],
        labels: &[f64],
        threshold: f64,
    ) -> (Metrics, Ranking) {
        std::thread::scope(|scope| {
            let ranking = scope.spawn(|| Ranking::new(probabilities, labels));
            let metrics = Metrics::of_each_row(probabilities, logits, labels, threshold);
            let ranking = ranking.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (metrics.ranked(&ranking), ranking)
        })
    }

    /// The metrics read off each row: all but those of the ranking, which are left NaN.
    fn of_each_row(
        probabilities: &[f64],
        logits: &[f64],
        labels: &[f64],
        threshold: f64,
    ) -> Metrics {
        let n = labels.len();
        let c = Confusion::at(probabilities, labels, threshold);
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(c.tp, c.tp + c.fp);
        let recall = ratio(c.tp, c.tp + c.fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        let nf = n.max(1) as f64;
        Metrics {
            rows: n,
            threshold,
            accuracy: ratio(c.tp + c.tn, n as u64),
            precision,
            recall,
            f1,
            auc: f64::NAN,
            log_loss: logits
                .iter()
                .zip(labels)
                .map(|(&z, &y)| crate::logistic::log_loss_at(z, y))
                .sum::<f64>()
                / nf,
            brier: probabilities.iter().zip(labels).map(|(p, y)| (p - y).powi(2)).sum::<f64>() / nf,
            confusion: c,
            pr_auc: f64::NAN,
            suggested_thresholds: None,
            multiclass: None,
        }
    }

    /// These metrics with the ranking's filled in.
    fn ranked(self, ranking: &Ranking) -> Metrics {
        Metrics {
            auc: ranking.roc_auc(),
            pr_auc: ranking.average_precision(),
            suggested_thresholds: ranking.suggested_thresholds(),
            ..self
        }
    }
}

/// The rows ranked once, highest score first, as the cumulative counts at each distinct score:
/// what AUC, average precision, the suggested thresholds and the ROC and precision-recall
/// curves all read. One sort of the test rows serves the five. Tied scores are one group in
/// every measure, so the sort need not be stable, and it sorts the (score, label) pairs
/// themselves, in cache, rather than indices into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// (score, true positives, false positives) at or above each distinct score, highest first.
    counts: Vec<(f64, f64, f64)>,
    positives: f64,
    negatives: f64,
}

/// `s` as an integer that sorts, as unsigned, in the reverse order of `f64::total_cmp`:
/// the highest score first.
fn descending_key(s: f64) -> u64 {
    let bits = s.to_bits();
    // total_cmp's order as unsigned integers: negatives' bits reversed, positives' above them.
    let ascending = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    !ascending
}

/// The score whose [`descending_key`] is `key`.
fn score_of(key: u64) -> f64 {
    let ascending = !key;
    f64::from_bits(if ascending >> 63 == 1 { ascending & !(1 << 63) } else { !ascending })
}

impl Ranking {
    pub fn new(scores: &[f64], labels: &[f64]) -> Ranking {
        // Each class's scores are sorted on a core of its own, as integers in the order of
        // `f64::total_cmp` (an integer sort, ≈ twice as fast as sorting pairs by the floats'
        // order); then the two lists are walked together, highest first.
        let sorted = |positive: bool| {
            let mut keys: Vec<u64> = scores
                .iter()
                .zip(labels)
                .filter(|&(_, &y)| (y == 1.0) == positive)
                .map(|(&s, _)| descending_key(s))
                .collect();
            keys.sort_unstable();
            keys
        };
        let (positive_keys, negative_keys) = std::thread::scope(|scope| {
            let positives = scope.spawn(|| sorted(true));
            let negatives = sorted(false);
            (positives.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), negatives)
        });
        let (mut positive, mut negative) =
            (positive_keys.iter().peekable(), negative_keys.iter().peekable());
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut counts = Vec::new();
        // The higher score of the two lists' heads, then every row at it: == groups them as it
        // did when pairs were sorted (0.0 and −0.0 are one group), and the key itself the rows
        // of a NaN, which == never matches.
        while let Some(next) = match (positive.peek(), negative.peek()) {
            (Some(&&p), Some(&&n)) => Some(p.min(n)),
            (Some(&&key), None) | (None, Some(&&key)) => Some(key),
            (None, None) => None,
        } {
            let s = score_of(next);
            let at_s = |key: &&u64| **key == next || score_of(**key) == s;
            while positive.next_if(at_s).is_some() {
                tp += 1.0;
            }
            while negative.next_if(at_s).is_some() {
                fp += 1.0;
            }
            counts.push((s, tp, fp));
        }
        let positives = positive_keys.len() as f64;
        Ranking { counts, positives, negatives: labels.len() as f64 - positives }
    }

    /// [`average_precision`].
    pub fn average_precision(&self) -> f64 {
        if self.positives == 0.0 {
            return f64::NAN;
        }
        let mut previous_recall = 0.0;
        let mut ap = 0.0;
        for &(_, tp, fp) in &self.counts {
            let recall = tp / self.positives;
            ap += (recall - previous_recall) * (tp / (tp + fp));
            previous_recall = recall;
        }
        ap
    }

    /// [`suggested_thresholds`].
    pub fn suggested_thresholds(&self) -> Option<SuggestedThresholds> {
        let (positives, negatives) = (self.positives, self.negatives);
        if positives == 0.0 || negatives == 0.0 {
            return None;
        }
        let mut best =
            SuggestedThresholds { max_f1: 0.5, f1: -1.0, youden: 0.5, j: f64::NEG_INFINITY };
        for &(s, tp, fp) in &self.counts {
            let f1 = 2.0 * tp / (tp + fp + positives);
            if f1 > best.f1 {
                (best.max_f1, best.f1) = (s, f1);
            }
            let j = tp / positives - fp / negatives;
            if j > best.j {
                (best.youden, best.j) = (s, j);
            }
        }
        Some(best)
    }

    /// [`roc_auc`].
    pub fn roc_auc(&self) -> f64 {
        let (positives, negatives) = (self.positives, self.negatives);
        if positives == 0.0 || negatives == 0.0 {
            return f64::NAN;
        }
        // Mann–Whitney U from average ranks, lowest score first: a group of tied scores shares
        // the mean of its ranks. A group's rows come after the rows below its score, which are
        // those not counted at or above it.
        let rows = positives + negatives;
        let mut rank_sum = 0.0;
        for (k, &(_, tp, fp)) in self.counts.iter().enumerate().rev() {
            let (tp_above, fp_above) =
                if k == 0 { (0.0, 0.0) } else { (self.counts[k - 1].1, self.counts[k - 1].2) };
            let first = (rows - (tp + fp)) as usize;
            let last = first + ((tp + fp) - (tp_above + fp_above)) as usize - 1;
            let avg_rank = (first + last) as f64 / 2.0 + 1.0;
            rank_sum += (tp - tp_above) * avg_rank;
        }
        (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
    }
}

/// Average precision: Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct thresholds, highest first (ties
/// taken together, as scikit-learn does). `NaN` without positives.
pub fn average_precision(scores: &[f64], labels: &[f64]) -> f64 {
    Ranking::new(scores, labels).average_precision()
}

/// The thresholds of maximum F1 and of maximum Youden's J among the distinct scores (a row is
/// positive when its score is at or above the threshold).
pub fn suggested_thresholds(scores: &[f64], labels: &[f64]) -> Option<SuggestedThresholds> {
    Ranking::new(scores, labels).suggested_thresholds()
}

/// The area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counted as half. `NaN` when one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[f64]) -> f64 {
    Ranking::new(scores, labels).roc_auc()
}

/// One point of the ROC curve.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// The most points [`roc_curve`] keeps. A curve for plots and exports needs no more, and one
/// point per distinct score of a 200,000-row test set made a 16 MB report.
pub const ROC_MAX_POINTS: usize = 1001;

/// The ROC curve from (0,0) to (1,1): one point per distinct score, thinned to at most
/// [`ROC_MAX_POINTS`] evenly spaced ones (the ends always kept). The AUC in [`Metrics`] is
/// computed from every score, not from this curve.
pub fn roc_curve(scores: &[f64], labels: &[f64]) -> Vec<RocPoint> {
    Ranking::new(scores, labels).roc_curve()
}

/// At most `max` evenly spaced points of a curve, its ends always kept.
fn thinned<T: Copy>(full: Vec<T>, max: usize) -> Vec<T> {
    if full.len() <= max || max < 2 {
        return full;
    }
    let last = full.len() - 1;
    let gaps = max - 1;
    (0..=gaps).map(|k| full[k * last / gaps]).collect()
}

/// One point of the precision-recall curve: the rows scoring at or above `threshold` are
/// called positive.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
}

/// The precision-recall curve, highest threshold first: one point per distinct score, as
/// scikit-learn's `precision_recall_curve` has them (it lists them lowest first, and ends with
/// recall 0 at precision 1, a point with no threshold), thinned to at most
/// [`ROC_MAX_POINTS`]. Empty without positives.
pub fn precision_recall_curve(scores: &[f64], labels: &[f64]) -> Vec<PrPoint> {
    Ranking::new(scores, labels).precision_recall_curve()
}

/// One bin of a reliability diagram: the rows whose probability is in `(lower, upper]` (the
/// first bin takes 0 too), their mean probability and the fraction of them that are positive.
/// A calibrated model's bins lie on the diagonal.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub rows: usize,
    pub mean_probability: f64,
    pub fraction_positive: f64,
}

/// The bins of [`calibration_bins`] on a run's test split.
pub const CALIBRATION_BINS: usize = 10;

/// The reliability diagram of `probabilities` in `bins` equal-width bins, empty ones left out:
/// scikit-learn's `calibration_curve(strategy="uniform")`, with the same bin edges
/// (`i × (1 / bins)`, as `numpy.linspace` makes them) and the same side of each edge.
pub fn calibration_bins(probabilities: &[f64], labels: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let width = 1.0 / bins as f64;
    let edges: Vec<f64> =
        (0..=bins).map(|i| if i == bins { 1.0 } else { i as f64 * width }).collect();
    let (mut sums, mut positives, mut rows) =
        (vec![0.0; bins], vec![0.0; bins], vec![0usize; bins]);
    for (&p, &y) in probabilities.iter().zip(labels) {
        // The number of inner edges below p (numpy's `searchsorted`, side "left").
        let bin = edges[1..bins].partition_point(|&edge| edge < p);
        sums[bin] += p;
        positives[bin] += y;
        rows[bin] += 1;
    }
    (0..bins)
        .filter(|&b| rows[b] > 0)
        .map(|b| CalibrationBin {
            lower: edges[b],
            upper: edges[b + 1],
            rows: rows[b],
            mean_probability: sums[b] / rows[b] as f64,
            fraction_positive: positives[b] / rows[b] as f64,
        })
        .collect()
}

impl Ranking {
    /// [`roc_curve`].
    pub fn roc_curve(&self) -> Vec<RocPoint> {
        let (positives, negatives) = (self.positives.max(1.0), self.negatives.max(1.0));
        // The first point's threshold is above every score; f64::MAX rather than infinity,
        // because JSON cannot carry infinity.
        let first = RocPoint { threshold: f64::MAX, fpr: 0.0, tpr: 0.0 };
        let points =
            std::iter::once(first).chain(self.counts.iter().map(|&(threshold, tp, fp)| RocPoint {
                threshold,
                fpr: fp / negatives,
                tpr: tp / positives,
            }));
        thinned(points.collect(), ROC_MAX_POINTS)
    }

    /// [`precision_recall_curve`].
    pub fn precision_recall_curve(&self) -> Vec<PrPoint> {
        if self.positives == 0.0 {
            return Vec::new();
        }
        let full = self
            .counts
            .iter()
            .map(|&(threshold, tp, fp)| PrPoint {
                threshold,
                precision: tp / (tp + fp),
                recall: tp / self.positives,
            })
            .collect();
        thinned(full, ROC_MAX_POINTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_with_ties_matches_hand_count() {
        // Positives score 0.8, 0.5, 0.5; negatives 0.5, 0.2.
        // Pairs (pos, neg): (0.8,0.5)=1 (0.8,0.2)=1 (0.5,0.5)=½ (0.5,0.2)=1 (0.5,0.5)=½ (0.5,0.2)=1 → 5/6.
        let scores = [0.8, 0.5, 0.5, 0.5, 0.2];
        let labels = [1.0, 1.0, 1.0, 0.0, 0.0];
        assert!((roc_auc(&scores, &labels) - 5.0 / 6.0).abs() < 1e-12);
        assert!(roc_auc(&[0.1, 0.2], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn confusion_precision_recall_f1() {
        let p = [0.9, 0.8, 0.3, 0.6, 0.1];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0];
        let z: Vec<f64> = p.iter().map(|&v| crate::logistic::logit(v)).collect();
        let m = Metrics::compute(&p, &z, &y, 0.5);
        assert_eq!(m.confusion, Confusion { tp: 2, fp: 1, tn: 1, fn_: 1 });
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        let expected_ll =
            -(0.9f64.ln() + 0.2f64.ln() + 0.3f64.ln() + 0.6f64.ln() + 0.9f64.ln()) / 5.0;
        assert!((m.log_loss - expected_ll).abs() < 1e-9);
        let json = serde_json::to_value(&m).expect("serialises");
        assert_eq!(json["confusion"]["fn"], 1);
    }

    #[test]
    fn average_precision_and_auc_match_scikit_learn() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/reference.json"))
                .expect("fixture parses");
        let m = &reference["metrics"];
        let floats = |v: &serde_json::Value| {
            v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect::<Vec<_>>())
        };
        let (labels, scores) =
            (floats(&m["labels"]).expect("labels"), floats(&m["scores"]).expect("scores"));
        let expected_ap = m["average_precision"].as_f64().expect("ap");
        assert!(
            (average_precision(&scores, &labels) - expected_ap).abs() < 1e-12,
            "{} vs {expected_ap}",
            average_precision(&scores, &labels)
        );
        assert!((roc_auc(&scores, &labels) - m["roc_auc"].as_f64().expect("auc")).abs() < 1e-12);
    }

    /// scikit-learn's `precision_recall_curve` and `calibration_curve` (10 uniform bins), on
    /// scores with ties and on the penguins fit's probabilities (`tests/fixtures/make_reference.py`).
    #[test]
    fn precision_recall_and_calibration_match_scikit_learn() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/reference.json"))
                .expect("fixture parses");
        let floats = |v: &serde_json::Value| {
            v.as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect::<Vec<_>>())
                .expect("numbers")
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        for case in ["fixed", "penguins"] {
            let c = &reference["curves"][case];
            let (labels, scores) = (floats(&c["labels"]), floats(&c["scores"]));
            let curve = precision_recall_curve(&scores, &labels);
            let pr = &c["precision_recall"];
            // scikit-learn's order is lowest threshold first.
            let (thresholds, precision, recall) =
                (floats(&pr["thresholds"]), floats(&pr["precision"]), floats(&pr["recall"]));
            assert_eq!(curve.len(), thresholds.len(), "{case}: one point per distinct score");
            for (point, i) in curve.iter().zip((0..thresholds.len()).rev()) {
                assert_eq!(point.threshold, thresholds[i], "{case}");
                assert!(
                    close(point.precision, precision[i]) && close(point.recall, recall[i]),
                    "{case} at {}: {point:?}",
                    thresholds[i]
                );
            }
            let bins = calibration_bins(&scores, &labels, CALIBRATION_BINS);
            let (fraction, mean) = (
                floats(&c["calibration"]["fraction_positive"]),
                floats(&c["calibration"]["mean_probability"]),
            );
            assert_eq!(bins.len(), fraction.len(), "{case}: the same bins are empty");
            for ((bin, f), m) in bins.iter().zip(&fraction).zip(&mean) {
                assert!(
                    close(bin.fraction_positive, *f) && close(bin.mean_probability, *m),
                    "{case}: {bin:?} vs {f}, {m}"
                );
                assert!(
                    (bin.lower < bin.mean_probability || bin.lower == 0.0)
                        && bin.mean_probability <= bin.upper,
                    "{case}: {bin:?}"
                );
            }
            assert_eq!(
                bins.iter().map(|b| b.rows).sum::<usize>(),
                labels.len(),
                "{case}: every row is in a bin"
            );
        }
    }

    #[test]
    fn suggested_thresholds_maximise_f1_and_youden() {
        // At 0.6: tp 2, fp 0 → F1 = 4/5 and J = 2/3; at 0.3: tp 3, fp 1 → F1 6/7, J 2/3 − … = 0.5.
        let scores = [0.9, 0.6, 0.4, 0.3, 0.1];
        let labels = [1.0, 1.0, 0.0, 1.0, 0.0];
        let t = suggested_thresholds(&scores, &labels).expect("both classes");
        assert_eq!((t.max_f1, t.youden), (0.3, 0.6));
        assert!((t.f1 - 6.0 / 7.0).abs() < 1e-12 && (t.j - 2.0 / 3.0).abs() < 1e-12);
        assert!(suggested_thresholds(&scores, &[1.0; 5]).is_none());
    }

    #[test]
    fn roc_curve_runs_from_origin_to_corner() {
        let pts = roc_curve(&[0.9, 0.4, 0.4, 0.1], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(pts.first().map(|p| (p.fpr, p.tpr)), Some((0.0, 0.0)));
        assert_eq!(pts.last().map(|p| (p.fpr, p.tpr)), Some((1.0, 1.0)));
        assert_eq!(pts.len(), 4);
    }

    #[test]
    fn long_roc_curves_are_thinned_keeping_the_ends_and_the_order() {
        let n = 10_000;
        let scores: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
        let labels: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 != 0))).collect();
        let pts = roc_curve(&scores, &labels);
        assert_eq!(pts.len(), ROC_MAX_POINTS);
        assert_eq!(pts.first().map(|p| (p.fpr, p.tpr)), Some((0.0, 0.0)));
        assert_eq!(pts.last().map(|p| (p.fpr, p.tpr)), Some((1.0, 1.0)));
        assert!(pts.windows(2).all(|w| w[0].threshold > w[1].threshold
            && w[0].fpr <= w[1].fpr
            && w[0].tpr <= w[1].tpr));
    }
    /// A NaN score (from a logit of ∞ − ∞) once made the ranking loop for ever: `==` never
    /// matched it. Its rows are one group now, ranked where `total_cmp` puts them.
    #[test]
    fn nan_scores_are_one_group_and_the_ranking_ends() {
        let ranking =
            Ranking::new(&[0.5, f64::NAN, 0.5, f64::NAN, -f64::NAN], &[1.0, 1.0, 0.0, 0.0, 1.0]);
        let counts: Vec<(u64, f64, f64)> =
            ranking.counts.iter().map(|&(s, tp, fp)| (s.to_bits(), tp, fp)).collect();
        assert_eq!(
            counts,
            vec![
                (f64::NAN.to_bits(), 1.0, 1.0),
                (0.5f64.to_bits(), 2.0, 2.0),
                ((-f64::NAN).to_bits(), 3.0, 2.0)
            ]
        );
    }

    proptest::proptest! {
        /// The integer keys sort as `total_cmp` does, reversed, and give the score back bit
        /// for bit.
        #[test]
        fn descending_keys_order_as_total_cmp_reversed(a in proptest::num::f64::ANY, b in proptest::num::f64::ANY) {
            proptest::prop_assert_eq!(score_of(descending_key(a)).to_bits(), a.to_bits());
            proptest::prop_assert_eq!(descending_key(a).cmp(&descending_key(b)), b.total_cmp(&a));
        }
    }

    proptest::proptest! {
        /// The one ranking gives, bit for bit, what each measure gave when it sorted the rows
        /// itself (the simple way, written out here), ties and all.
        #[test]
        fn one_ranking_gives_what_each_measure_gave_sorting_for_itself(
            rows in proptest::collection::vec((0u8..16, proptest::bool::ANY), 1..400),
        ) {
            // Ties, and the values whose order only `total_cmp` settles: −0.0 beside 0.0, ±∞.
            let special = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY];
            let scores: Vec<f64> = rows.iter().map(|(s, _)| usize::from(*s).checked_sub(12).and_then(|i| special.get(i)).copied().unwrap_or(f64::from(*s) / 11.0)).collect();
            let labels: Vec<f64> = rows.iter().map(|(_, y)| f64::from(u8::from(*y))).collect();
            // The distinct scores, highest first, with the positives and negatives at or above.
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let mut counts: Vec<(f64, f64, f64)> = Vec::new();
            for &i in &order {
                let (tp, fp) = counts.last().map_or((0.0, 0.0), |c| (c.1, c.2));
                let (tp, fp) = if labels[i] == 1.0 { (tp + 1.0, fp) } else { (tp, fp + 1.0) };
                match counts.last_mut() {
                    Some(last) if last.0 == scores[i] => *last = (last.0, tp, fp),
                    _ => counts.push((scores[i], tp, fp)),
                }
            }
            let positives = labels.iter().filter(|&&y| y == 1.0).count() as f64;
            let negatives = labels.len() as f64 - positives;
            let ranking = Ranking::new(&scores, &labels);
            proptest::prop_assert_eq!(&ranking.counts, &counts);
            // AUC from average ranks, lowest first.
            let mut ascending: Vec<usize> = (0..scores.len()).collect();
            ascending.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
            let mut rank_sum = 0.0;
            let mut i = 0;
            while i < ascending.len() {
                let mut j = i;
                while j + 1 < ascending.len() && scores[ascending[j + 1]] == scores[ascending[i]] {
                    j += 1;
                }
                rank_sum += ascending[i..=j].iter().filter(|&&k| labels[k] == 1.0).count() as f64 * ((i + j) as f64 / 2.0 + 1.0);
                i = j + 1;
            }
            let auc = (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
            proptest::prop_assert_eq!(ranking.roc_auc().to_bits(), if positives == 0.0 || negatives == 0.0 { f64::NAN.to_bits() } else { auc.to_bits() });
            let roc: Vec<(f64, f64)> = ranking.roc_curve().iter().skip(1).map(|p| (p.fpr, p.tpr)).collect();
            let expected: Vec<(f64, f64)> = counts.iter().map(|&(_, tp, fp)| (fp / negatives.max(1.0), tp / positives.max(1.0))).collect();
            proptest::prop_assert_eq!(roc, expected);
        }
    }
}
