//! Logistic regression: h(x) = 1 / (1 + e^−(b + w·x)), fitted by minimising the mean log loss
//! plus (l2/2)·‖w‖² (the intercept is not penalised; scikit-learn's `C` is `l2 = 1/(C·n)`).
//!
//! Four [`Solver`]s share one loop in [`fit`]: after every epoch it measures the full training
//! loss, the validation loss and the gradient norm, hands an [`EpochEvent`] to the caller,
//! checks for cancellation, and decides whether to stop, and why ([`StopReason`]).
//!
//! Full passes over the data (loss, gradient, Hessian) are cut into fixed chunks of rows that
//! run on all cores and are summed in chunk order, so the result is the same bit for bit on
//! any number of cores. Same seed, same data, same parameters → the same model.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::solvers::DenseSolveCore;
use faer::prelude::Solve;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::table_exp::{ExpTable, FMA_IN_BASELINE, multiply_add};

mod lbfgs;
pub mod multinomial;
pub mod path;
mod saga;
mod sparse;

pub use sparse::{SparseColumn, SparseTerms};

/// The logistic function, stable at any z (no overflow, no NaN for finite z).
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    sigmoid_given_exp(z, (-z.abs()).exp())
}

/// σ(z) from `e` = e^−|z|, which never overflows: 1/(1+e^−z) for z ≥ 0 and e^z/(1+e^z) below.
/// Full passes compute `e` once for both the loss and this. Choosing the numerator rather
/// than branching keeps the hot loops free of an unpredictable branch.
#[inline]
fn sigmoid_given_exp(z: f64, e: f64) -> f64 {
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// e^x for x ≤ 0 (and NaN), within one unit in the last place of the exact value, written so
/// that a loop of it compiles to vector arithmetic: no branch, no call. The full passes take an
/// exponential of every row, and the library's `exp` (a call, with checks for the arguments a
/// pass never gives) was a ninth of newton's time (perf).
///
/// This is fdlibm's algorithm (as in musl's `exp.c`): x = k·ln 2 + r with |r| ≤ ½ ln 2, its
/// rational approximation of e^r, then a scale by 2^k. The scale is taken in two exact steps,
/// 2^(k+1000) then 2^−1000, so that results below the smallest normal number (x < −708.4) round
/// once, as the library's do. A test holds it to `f64::exp` over the whole range.
#[inline(always)]
fn exp_nonpositive(x: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    const P1: f64 = 0.166_666_666_666_666_02;
    const P2: f64 = -0.002_777_777_777_701_559_3;
    const P3: f64 = 6.613_756_321_437_934e-5;
    const P4: f64 = -1.653_390_220_546_525_2e-6;
    const P5: f64 = 4.138_136_797_057_238_5e-8;
    // The constants are musl's (exp.c), each to the double it rounds to.
    // 1.5·2⁵²: adding it rounds to the nearest integer, which its low bits then hold.
    const ROUNDER: f64 = 6_755_399_441_055_744.0;
    // Below −746 every result is 0; the comparison leaves a NaN as it is.
    let x = if x < -746.0 { -746.0 } else { x };
    let shifted = x * INV_LN2 + ROUNDER;
    let k = shifted - ROUNDER;
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // k ∈ [−1076, 0], so k + 1000 + 1023 is a positive exponent field.
    let k_bits = shifted.to_bits().wrapping_sub(ROUNDER.to_bits());
    let up = f64::from_bits(k_bits.wrapping_add(1000 + 1023) << 52);
    const DOWN: f64 = 9.332_636_185_032_189e-302; // 2^−1000
    y * up * DOWN
}

/// Whether logit `z` gives its row probability 0 or 1 (|z| > 30: within 1e-13) and classifies
/// it right (label `y` ∈ {0, 1}): what an unpenalised fit does only where a combination of
/// terms separates the classes.
#[inline]
pub fn certain_and_right(z: f64, y: f64) -> bool {
    z.abs() > 30.0 && (z > 0.0) == (y == 1.0)
}

/// ln(1 + e^z), stable at any z.
#[inline]
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// The log loss of one example with logit `z` and label `y` ∈ {0, 1}; finite for finite z.
#[inline]
pub fn log_loss_at(z: f64, y: f64) -> f64 {
    // −[y ln σ(z) + (1−y) ln(1−σ(z))] = softplus(z) − y·z
    softplus(z) - y * z
}

/// The inverse of the logistic function: the z for which σ(z) = p.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The value of one term that makes the probability `target`, where the rest of the logit is
/// `rest` and the term's coefficient `theta`: the inverse of the logit. `None` where the term
/// has no effect or `target` is not strictly between 0 and 1.
pub fn value_reaching(target: f64, rest: f64, theta: f64) -> Option<f64> {
    (theta != 0.0 && 0.0 < target && target < 1.0).then(|| (logit(target) - rest) / theta)
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Chosen by the data's shape before the fit ([`Solver::choose`]): newton, or L-BFGS where
    /// the terms are too many for newton's Hessian.
    #[default]
    Auto,
    /// The seed's per-sample rule θ := θ − α(h(x)−y)x, reshuffled every epoch from the seed.
    Sgd,
    /// Mean gradient over shuffled batches of `batch_size` rows.
    Minibatch,
    /// Full-gradient descent.
    Batch,
    /// Newton's method (IRLS): exact maximum likelihood in a few iterations.
    Newton,
    /// Limited-memory BFGS: the optimum by full passes without a Hessian, for many terms.
    Lbfgs,
    /// The seed's per-sample update with each row's last gradient remembered (SAGA): it
    /// converges to the optimum, where the seed's wanders around it.
    Saga,
    /// Coordinate descent along a path of λ ([`path`]): what fits an L1 or elastic-net
    /// penalty, and what cross-validation runs.
    Cd,
}

/// The most terms (the intercept among them) `auto` fits by newton; above it, by L-BFGS. Newton
/// costs rows × terms² a pass and L-BFGS rows × terms, but newton's few passes run as dense
/// matrix products; BENCHMARKS.md ("Every shape") has the crossing measured.
pub const AUTO_NEWTON_TERMS: usize = 200;

impl Solver {
    /// In the form's order: `auto` first, the seed's sgd one key to its right.
    pub const ALL: [Solver; 8] = [
        Solver::Auto,
        Solver::Sgd,
        Solver::Minibatch,
        Solver::Batch,
        Solver::Newton,
        Solver::Lbfgs,
        Solver::Saga,
        Solver::Cd,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Solver::Auto => "auto",
            Solver::Sgd => "sgd",
            Solver::Minibatch => "minibatch",
            Solver::Batch => "batch",
            Solver::Newton => "newton",
            Solver::Lbfgs => "lbfgs",
            Solver::Saga => "saga",
            Solver::Cd => "cd",
        }
    }

    /// Whether the solver steps by the learning rate (and its decay).
    pub fn uses_learning_rate(self) -> bool {
        matches!(self, Solver::Sgd | Solver::Minibatch | Solver::Batch)
    }

    /// Whether the solver fits to the optimum on every training row (no validation hold-out
    /// unless asked for), so that its converged fit is the maximum-likelihood one.
    pub fn is_exact(self) -> bool {
        matches!(
            self,
            Solver::Auto
                | Solver::Batch
                | Solver::Newton
                | Solver::Lbfgs
                | Solver::Saga
                | Solver::Cd
        )
    }

    /// The solver that runs for `features` terms (the intercept not counted), and for `auto`
    /// the choice it made.
    pub fn choose(self, features: usize) -> (Solver, Option<SolverChoice>) {
        if self != Solver::Auto {
            return (self, None);
        }
        let terms = if features == 1 { "1 term".to_string() } else { format!("{features} terms") };
        let choice = if features < AUTO_NEWTON_TERMS {
            SolverChoice { solver: Solver::Newton, reason: terms }
        } else {
            SolverChoice {
                solver: Solver::Lbfgs,
                reason: format!("{terms}, too many for newton's Hessian"),
            }
        };
        (choice.solver, Some(choice))
    }
}

/// What `auto` ran, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SolverChoice {
    pub solver: Solver,
    /// "10 terms".
    pub reason: String,
}

impl SolverChoice {
    /// As the report, `--json` and the dashboard say it: "auto → newton: 10 terms".
    pub fn describe(&self) -> String {
        format!("auto → {}: {}", self.solver, self.reason)
    }
}

impl std::fmt::Display for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Solver::ALL.into_iter().find(|solver| solver.name() == s).ok_or_else(|| {
            format!(
                "unknown solver {s:?}: use auto, sgd, minibatch, batch, newton, lbfgs, saga or cd"
            )
        })
    }
}

/// Hyperparameters. `Default` gives what the bundled data trains well with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    pub solver: Solver,
    /// Step size α (sgd, minibatch, batch). Newton and L-BFGS choose their own steps.
    pub learning_rate: f64,
    /// The step size of epoch e is α / (1 + decay·e); 0 keeps it constant.
    pub lr_decay: f64,
    /// The epoch (newton: iteration) limit.
    pub epochs: usize,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// L2 strength on the weights, not the intercept.
    pub l2: f64,
    /// Seeds the shuffles and the validation split.
    pub seed: u64,
    /// Stop when the gradient norm falls below it, or when the training loss has not improved
    /// by more than it for `patience` epochs.
    pub tolerance: f64,
    /// Epochs without improvement before stopping (training loss: plateau; validation loss:
    /// early stop). 0 turns both off.
    pub patience: usize,
    /// The part of the training split held out to measure validation loss and stop early; 0
    /// for none. Absent: [`DEFAULT_VALIDATION_FRACTION`] for sgd and minibatch, none for batch
    /// and newton, whose exact fits use every training row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_fraction: Option<f64>,
    /// Weights of the two classes in the loss.
    #[serde(skip_serializing_if = "is_unweighted")]
    pub class_weight: ClassWeight,
    /// The covariance the standard errors are read from.
    #[serde(skip_serializing_if = "Covariance::is_nonrobust")]
    pub covariance: Covariance,
    /// The penalty, with glmnet's objective ([`path`]); `none` leaves `l2` the only one.
    #[serde(skip_serializing_if = "Penalty::is_none")]
    pub penalty: Penalty,
    /// α, the L1 part of an elastic-net penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_ratio: Option<f64>,
    /// λ, the penalty's strength; absent where cross-validation chooses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// The folds of the cross-validation that chooses λ along the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv: Option<usize>,
    /// Which λ the cross-validation chooses.
    #[serde(skip_serializing_if = "LambdaRule::is_one_se")]
    pub select: LambdaRule,
    /// A K-class label's reference class, which an unpenalised fit's estimates are against;
    /// absent: the first in sorted order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The penalty on the weights (never the intercept), as glmnet writes it:
/// λ·(α‖w‖₁ + (1−α)/2·‖w‖²).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    /// None, unless `l2` is set: `--l2 v` is `--penalty l2 --lambda v`.
    #[default]
    None,
    /// Ridge: α = 0.
    L2,
    /// The lasso: α = 1. Selects terms: some coefficients are exactly zero.
    L1,
    /// α = `l1_ratio`, between the two.
    Elasticnet,
}

impl Penalty {
    pub const ALL: [Penalty; 4] = [Penalty::None, Penalty::L2, Penalty::L1, Penalty::Elasticnet];

    fn is_none(&self) -> bool {
        *self == Penalty::None
    }

    pub fn name(self) -> &'static str {
        match self {
            Penalty::None => "none",
            Penalty::L2 => "l2",
            Penalty::L1 => "l1",
            Penalty::Elasticnet => "elasticnet",
        }
    }
}

impl std::str::FromStr for Penalty {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Penalty::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown penalty {s:?}: use none, l2, l1 or elasticnet"))
    }
}

/// The λ cross-validation chooses: glmnet's `lambda.min` or `lambda.1se`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum LambdaRule {
    /// The lowest mean held-out deviance.
    #[serde(rename = "min")]
    Min,
    /// The largest λ within one standard error of the lowest: the simplest model the data
    /// cannot tell from the best.
    #[default]
    #[serde(rename = "1se")]
    OneSe,
}

impl LambdaRule {
    fn is_one_se(&self) -> bool {
        *self == LambdaRule::OneSe
    }
}

impl std::str::FromStr for LambdaRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "min" => Ok(LambdaRule::Min),
            "1se" => Ok(LambdaRule::OneSe),
            other => Err(format!("unknown λ rule {other:?}: use min or 1se")),
        }
    }
}

/// The covariance of the estimates that their standard errors, z, p-values and intervals
/// come from.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Covariance {
    /// The inverse Hessian: right when the model's variance is.
    #[default]
    Nonrobust,
    /// White's sandwich H⁻¹BH⁻¹, B the sum over rows of each one's score times itself: right
    /// however the rows' variance departs from the model's (statsmodels' `HC0`).
    Hc0,
    /// HC0 times n/(n − k), for the k estimates (statsmodels' `HC1`).
    Hc1,
    /// The sandwich with B from each cluster's summed score (the data's cluster column), times
    /// G/(G − 1)·(n − 1)/(n − k) for G clusters: statsmodels' `cluster` with its default
    /// correction.
    Cluster,
}

impl Covariance {
    pub const ALL: [Covariance; 4] =
        [Covariance::Nonrobust, Covariance::Hc0, Covariance::Hc1, Covariance::Cluster];

    fn is_nonrobust(&self) -> bool {
        *self == Covariance::Nonrobust
    }

    /// As `--cov` takes it: "nonrobust", "hc0", "hc1".
    pub fn name(self) -> &'static str {
        match self {
            Covariance::Nonrobust => "nonrobust",
            Covariance::Hc0 => "hc0",
            Covariance::Hc1 => "hc1",
            Covariance::Cluster => "cluster",
        }
    }

    /// For the report: "HC0 (robust: White's sandwich)".
    pub fn describe(self) -> &'static str {
        match self {
            Covariance::Nonrobust => "nonrobust (the inverse Hessian)",
            Covariance::Hc0 => "HC0 (robust: White's sandwich)",
            Covariance::Hc1 => "HC1 (robust: White's sandwich × n/(n − k))",
            Covariance::Cluster => {
                "cluster-robust (summed scores per cluster × G/(G − 1)·(n − 1)/(n − k))"
            }
        }
    }
}

/// The validation hold-out of the iterative solvers unless told otherwise.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.1;

fn is_unweighted(w: &ClassWeight) -> bool {
    *w == ClassWeight::None
}

/// How the two classes weigh in the loss.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// A row of class c weighs n / (2·n_c), as scikit-learn's `class_weight="balanced"`, so
    /// both classes weigh the same in total.
    Balanced,
}

impl ClassWeight {
    /// The weights of class 0 and class 1 for these labels.
    pub fn weights(self, y: &[f64]) -> [f64; 2] {
        match self {
            ClassWeight::None => [1.0, 1.0],
            ClassWeight::Balanced => {
                let n = y.len() as f64;
                let positives = y.iter().filter(|&&v| v == 1.0).count() as f64;
                let per = |count: f64| if count > 0.0 { n / (2.0 * count) } else { 1.0 };
                [per(n - positives), per(positives)]
            }
        }
    }
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            solver: Solver::Auto,
            learning_rate: 0.2,
            lr_decay: 0.1,
            // A limit, not a target: the stop rules end a fit when it stops improving, and the
            // report says how far from the optimum it stopped.
            epochs: 1000,
            batch_size: 32,
            l2: 0.0,
            seed: 42,
            tolerance: 1e-7,
            patience: 10,
            validation_fraction: None,
            class_weight: ClassWeight::None,
            covariance: Covariance::Nonrobust,
            penalty: Penalty::None,
            l1_ratio: None,
            lambda: None,
            cv: None,
            select: LambdaRule::OneSe,
            reference: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("learning_rate must be a finite number above 0, got {0}")]
    LearningRate(f64),
    #[error("lr_decay must be a finite number of 0 or more, got {0}")]
    LrDecay(f64),
    #[error("epochs must be between 1 and 1000000, got {0}")]
    Epochs(usize),
    #[error("batch_size must be 1 or more, got {0}")]
    BatchSize(usize),
    #[error("l2 must be a finite number of 0 or more, got {0}")]
    L2(f64),
    #[error("tolerance must be a finite number of 0 or more, got {0}")]
    Tolerance(f64),
    #[error("validation_fraction must be at least 0 and below 0.9, got {0}")]
    ValidationFraction(f64),
    #[error("l1_ratio (α) must be between 0 and 1, got {0}")]
    L1Ratio(f64),
    #[error("l1_ratio is the mix of an elasticnet penalty; penalty {0} has its own")]
    L1RatioNotElasticnet(&'static str),
    #[error("penalty elasticnet needs its mix: give l1_ratio (α) between 0 and 1")]
    ElasticnetNeedsRatio,
    #[error("lambda (λ) must be a finite number of 0 or more, got {0}")]
    Lambda(f64),
    #[error("penalty {0} needs a strength: give lambda (λ), or cv (folds) to choose it")]
    PenaltyNeedsLambda(&'static str),
    #[error("lambda and cv are both given: cross-validation chooses λ; give one")]
    LambdaAndCv,
    #[error("lambda is the strength of a penalty: give penalty l2, l1 or elasticnet with it")]
    LambdaWithoutPenalty,
    #[error("l2 and penalty {0} are both given: l2 v is penalty l2 with lambda v; give one")]
    L2AndPenalty(&'static str),
    #[error("cv needs 2 folds or more, got {0}")]
    Folds(usize),
    #[error("cv chooses the strength of a penalty: give penalty l2, l1 or elasticnet with it")]
    CvWithoutPenalty,
    #[error("solver {0} cannot fit an L1 penalty or a cross-validated path: use auto or cd")]
    SolverCannotSelect(Solver),
    #[error("solver cd fits a penalty's path: give penalty l2, l1 or elasticnet with lambda or cv")]
    CdWithoutPenalty,
    #[error(
        "cv {folds} needs {folds} rows or more of each class; the training rows hold {rows} of class {class}"
    )]
    FoldsExceedClass { folds: usize, class: u8, rows: usize },
    #[error("cv {cv} asks for {cv} folds, but the fold column holds {given} distinct values")]
    FoldColumn { cv: usize, given: usize },
    #[error("{}", sparse_terms_refused(*.0))]
    SparseTerms(Solver),
}

/// Why `solver` refuses sparse terms, and what fits them: L-BFGS, for no penalty or L2 alone.
fn sparse_terms_refused(solver: Solver) -> String {
    let what = "sparse terms (a text column of more than 200 levels)";
    match solver {
        Solver::Cd => format!(
            "an L1 or elastic-net penalty, or a cross-validated path, cannot yet fit {what}: \
             give no penalty or an L2 one with its lambda (L-BFGS fits them)"
        ),
        _ => format!("solver {solver} cannot fit {what}: use auto or lbfgs"),
    }
}

impl TrainParams {
    pub fn validate(&self) -> Result<(), ParamError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ParamError::LearningRate(self.learning_rate));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay >= 0.0) {
            return Err(ParamError::LrDecay(self.lr_decay));
        }
        if self.epochs == 0 || self.epochs > 1_000_000 {
            return Err(ParamError::Epochs(self.epochs));
        }
        if self.batch_size == 0 {
            return Err(ParamError::BatchSize(self.batch_size));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(ParamError::L2(self.l2));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(ParamError::Tolerance(self.tolerance));
        }
        if let Some(f) = self.validation_fraction
            && !(f.is_finite() && (0.0..0.9).contains(&f))
        {
            return Err(ParamError::ValidationFraction(f));
        }
        self.validate_penalty()
    }

    /// The penalty's parameters: each given where it means something, and in range.
    fn validate_penalty(&self) -> Result<(), ParamError> {
        let penalty = self.penalty;
        match (penalty, self.l1_ratio) {
            (_, Some(a)) if !(0.0..=1.0).contains(&a) => return Err(ParamError::L1Ratio(a)),
            (Penalty::Elasticnet, None) => return Err(ParamError::ElasticnetNeedsRatio),
            (Penalty::None | Penalty::L2 | Penalty::L1, Some(_)) => {
                return Err(ParamError::L1RatioNotElasticnet(penalty.name()));
            }
            _ => {}
        }
        if let Some(lambda) = self.lambda
            && !(lambda.is_finite() && lambda >= 0.0)
        {
            return Err(ParamError::Lambda(lambda));
        }
        if let Some(folds) = self.cv
            && folds < 2
        {
            return Err(ParamError::Folds(folds));
        }
        match (penalty, self.lambda, self.cv) {
            (Penalty::None, Some(_), _) => Err(ParamError::LambdaWithoutPenalty),
            (Penalty::None, None, Some(_)) => Err(ParamError::CvWithoutPenalty),
            (_, Some(_), Some(_)) => Err(ParamError::LambdaAndCv),
            (Penalty::L2 | Penalty::L1 | Penalty::Elasticnet, None, None) => {
                Err(ParamError::PenaltyNeedsLambda(penalty.name()))
            }
            (Penalty::L2 | Penalty::L1 | Penalty::Elasticnet, ..) if self.l2 != 0.0 => {
                Err(ParamError::L2AndPenalty(penalty.name()))
            }
            (Penalty::None, None, None) if self.solver == Solver::Cd => {
                Err(ParamError::CdWithoutPenalty)
            }
            _ if self.fits_path() && !matches!(self.solver, Solver::Auto | Solver::Cd) => {
                Err(ParamError::SolverCannotSelect(self.solver))
            }
            _ => Ok(()),
        }
    }

    /// The α of the penalty's mix, if there is a penalty other than `l2`'s.
    pub fn alpha(&self) -> Option<f64> {
        match self.penalty {
            Penalty::None => None,
            Penalty::L2 => Some(0.0),
            Penalty::L1 => Some(1.0),
            Penalty::Elasticnet => self.l1_ratio,
        }
    }

    /// Whether the fit is coordinate descent along a path: an L1 part, cross-validation, or
    /// the cd solver asked for.
    pub fn fits_path(&self) -> bool {
        matches!(self.penalty, Penalty::L1 | Penalty::Elasticnet)
            || self.cv.is_some()
            || self.solver == Solver::Cd
    }

    /// The L2 strength the solvers without a path see: `l2`, or λ of `penalty l2`.
    pub fn ridge(&self) -> f64 {
        match (self.penalty, self.lambda) {
            (Penalty::L2, Some(lambda)) => lambda,
            _ => self.l2,
        }
    }

    /// Whether any penalty is on the weights, so the estimates are shrunk.
    pub fn is_penalised(&self) -> bool {
        self.ridge() != 0.0 || (self.fits_path() && self.lambda != Some(0.0))
    }

    /// The solver that runs for `features` terms, and for `auto` the choice it made: coordinate
    /// descent for a path, otherwise as [`Solver::choose`] decides by shape.
    pub fn choose_solver(&self, features: usize) -> (Solver, Option<SolverChoice>) {
        if !(self.fits_path() && self.solver == Solver::Auto) {
            return self.solver.choose(features);
        }
        let reason = match (self.penalty, self.cv) {
            (_, Some(folds)) => format!("a path of λ cross-validated on {folds} folds"),
            (Penalty::L1, None) => "an L1 penalty".to_string(),
            _ => "an elastic-net penalty".to_string(),
        };
        (Solver::Cd, Some(SolverChoice { solver: Solver::Cd, reason }))
    }

    /// The part of `training_rows` held out for validation: as given, else none for the exact
    /// solvers, and for the iterative ones [`DEFAULT_VALIDATION_FRACTION`] when that holds
    /// out enough rows to stop early on ([`MIN_EARLY_STOPPING_ROWS`]). A hold-out only where
    /// it is used: on fewer rows it could not stop the fit on anything but noise, and the rows
    /// are worth more in the fit.
    /// Whether a fit holds out no validation rows, however many training rows there are: it
    /// then uses every one.
    pub fn holds_out_no_rows(&self) -> bool {
        self.validation_fraction(usize::MAX) == 0.0
    }

    pub fn validation_fraction(&self, training_rows: usize) -> f64 {
        self.validation_fraction.unwrap_or(match self.solver {
            Solver::Sgd | Solver::Minibatch
                if training_rows as f64 * DEFAULT_VALIDATION_FRACTION
                    >= MIN_EARLY_STOPPING_ROWS as f64 =>
            {
                DEFAULT_VALIDATION_FRACTION
            }
            _ => 0.0,
        })
    }
}

/// Rows of features (row-major, `d` per row) and their 0/1 labels, borrowed, with the weights
/// of the two classes in the loss, and each row's frequency weight and offset if given.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    pub x: &'a [f64],
    pub y: &'a [f64],
    pub d: usize,
    /// The loss weight of a row of class 0 and of class 1. Multiplying by 1.0 is exact, so
    /// unweighted fits are the same bit for bit as before weights existed.
    pub class_weights: [f64; 2],
    /// Each row's frequency weight: its loss, score and curvature count that many times.
    pub row_weights: Option<&'a [f64]>,
    /// Each row's offset, added to its logit with coefficient 1.
    pub offset: Option<&'a [f64]>,
    /// Each row's cross-validation fold, as the data gives it (any K distinct values), for
    /// `cv` in place of folds drawn from the seed.
    pub folds: Option<&'a [f64]>,
    /// The text columns of many levels, when some are: each row then holds a level's index in
    /// each of their slots, after its `d − columns` dense terms.
    pub sparse: Option<&'a SparseTerms>,
    /// Σ row weights (the rows when unweighted): the n of the mean loss.
    weight_sum: f64,
}

impl<'a> Examples<'a> {
    pub fn new(x: &'a [f64], y: &'a [f64], d: usize) -> Self {
        debug_assert_eq!(x.len(), y.len() * d);
        Examples {
            x,
            y,
            d,
            class_weights: [1.0, 1.0],
            row_weights: None,
            offset: None,
            folds: None,
            sparse: None,
            weight_sum: y.len() as f64,
        }
    }
    /// These rows with sparse terms in their last slots.
    pub fn with_sparse(self, sparse: Option<&'a SparseTerms>) -> Self {
        Examples { sparse, ..self }
    }
    /// The weights' length: the terms, dense and sparse (`d` when all are dense).
    pub fn terms(&self) -> usize {
        self.sparse.map_or(self.d, SparseTerms::terms)
    }
    pub fn with_class_weights(self, class_weights: [f64; 2]) -> Self {
        Examples { class_weights, ..self }
    }
    /// These rows with frequency weights and offsets (one per row each).
    pub fn with_rows(self, row_weights: Option<&'a [f64]>, offset: Option<&'a [f64]>) -> Self {
        debug_assert!(
            row_weights.is_none_or(|w| w.len() == self.y.len())
                && offset.is_none_or(|o| o.len() == self.y.len())
        );
        let weight_sum = row_weights.map_or(self.y.len() as f64, |w| w.iter().sum());
        Examples { row_weights, offset, weight_sum, ..self }
    }
    /// These rows with the folds the data gives them.
    pub fn with_folds(self, folds: Option<&'a [f64]>) -> Self {
        Examples { folds, ..self }
    }
    #[inline(always)]
    fn weight(&self, y: f64) -> f64 {
        self.class_weights[usize::from(y == 1.0)]
    }
    /// Row `i`'s weight in the loss: its class's times its own.
    #[inline(always)]
    pub(crate) fn weight_of(&self, i: usize, y: f64) -> f64 {
        self.weight(y) * self.row_weights.map_or(1.0, |w| w[i])
    }
    /// Row `i`'s offset (0 without offsets).
    #[inline(always)]
    pub(crate) fn offset_of(&self, i: usize) -> f64 {
        self.offset.map_or(0.0, |o| o[i])
    }
    pub fn rows(&self) -> usize {
        self.y.len()
    }
    /// The n of the mean loss: Σ frequency weights, or the rows.
    pub fn weight_sum(&self) -> f64 {
        self.weight_sum
    }
    /// Whether rows carry weights or offsets, which the per-sample solvers do not take.
    pub fn has_row_columns(&self) -> bool {
        self.row_weights.is_some() || self.offset.is_some()
    }
}

/// Fitted parameters on the scaled features: z = bias + weights·x.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Weights {
    pub bias: f64,
    pub weights: Vec<f64>,
}

impl Weights {
    pub fn zeros(d: usize) -> Self {
        Weights { bias: 0.0, weights: vec![0.0; d] }
    }
    #[inline]
    pub fn logit(&self, row: &[f64]) -> f64 {
        self.bias + dot(&self.weights, row)
    }
    pub fn probability(&self, row: &[f64]) -> f64 {
        sigmoid(self.logit(row))
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators let the compiler keep several multiply-adds in flight.
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Calls `$kernel(d, args…)` with `d` a literal for the common widths 1..=16. The kernels are
/// `#[inline(always)]`, so each arm is compiled for its width: the per-row loops unroll and the
/// weights stay in registers (≈ 3× on 1M × 10 per-sample SGD). Wider data takes the generic arm.
macro_rules! specialise_width {
    ($kernel:ident($d:expr $(, $arg:expr)*)) => {
        match $d {
            1 => $kernel(1 $(, $arg)*),
            2 => $kernel(2 $(, $arg)*),
            3 => $kernel(3 $(, $arg)*),
            4 => $kernel(4 $(, $arg)*),
            5 => $kernel(5 $(, $arg)*),
            6 => $kernel(6 $(, $arg)*),
            7 => $kernel(7 $(, $arg)*),
            8 => $kernel(8 $(, $arg)*),
            9 => $kernel(9 $(, $arg)*),
            10 => $kernel(10 $(, $arg)*),
            11 => $kernel(11 $(, $arg)*),
            12 => $kernel(12 $(, $arg)*),
            13 => $kernel(13 $(, $arg)*),
            14 => $kernel(14 $(, $arg)*),
            15 => $kernel(15 $(, $arg)*),
            16 => $kernel(16 $(, $arg)*),
            d => $kernel(d $(, $arg)*),
        }
    };
    // The same, the width also given as the kernel's first constant parameter (0 for the
    // generic arm), for kernels that size their local arrays by it; `<…>`, if any, are the
    // others.
    (const $kernel:ident $(<$($g:tt),*>)? ($d:expr $(, $arg:expr)*)) => {
        match $d {
            1 => $kernel::<1 $($(, $g)*)?>(1 $(, $arg)*),
            2 => $kernel::<2 $($(, $g)*)?>(2 $(, $arg)*),
            3 => $kernel::<3 $($(, $g)*)?>(3 $(, $arg)*),
            4 => $kernel::<4 $($(, $g)*)?>(4 $(, $arg)*),
            5 => $kernel::<5 $($(, $g)*)?>(5 $(, $arg)*),
            6 => $kernel::<6 $($(, $g)*)?>(6 $(, $arg)*),
            7 => $kernel::<7 $($(, $g)*)?>(7 $(, $arg)*),
            8 => $kernel::<8 $($(, $g)*)?>(8 $(, $arg)*),
            9 => $kernel::<9 $($(, $g)*)?>(9 $(, $arg)*),
            10 => $kernel::<10 $($(, $g)*)?>(10 $(, $arg)*),
            11 => $kernel::<11 $($(, $g)*)?>(11 $(, $arg)*),
            12 => $kernel::<12 $($(, $g)*)?>(12 $(, $arg)*),
            13 => $kernel::<13 $($(, $g)*)?>(13 $(, $arg)*),
            14 => $kernel::<14 $($(, $g)*)?>(14 $(, $arg)*),
            15 => $kernel::<15 $($(, $g)*)?>(15 $(, $arg)*),
            16 => $kernel::<16 $($(, $g)*)?>(16 $(, $arg)*),
            d => $kernel::<0 $($(, $g)*)?>(d $(, $arg)*),
        }
    };
}

/// One epoch's measurements, sent as it ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochEvent {
    pub epoch: usize,
    pub train_loss: f64,
    #[serde(default)]
    pub val_loss: Option<f64>,
    pub grad_norm: f64,
    pub elapsed_ms: f64,
    /// On a penalised path, the λ this point was fitted at (its "epoch" is the λ's place on the
    /// path) and what was found there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathEvent>,
}

/// One λ of a penalised path, as it is fitted: the chart of the coefficients and of the
/// cross-validated deviance grow by one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PathEvent {
    pub lambda: f64,
    /// Each term's weight on the scaled terms (the intercept not among them).
    pub weights: Vec<f64>,
    /// The mean held-out deviance at λ and its standard error, when cross-validating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The epoch limit was reached.
    MaxEpochs,
    /// The gradient norm fell below the tolerance: an optimum.
    Converged,
    /// The training loss stopped improving by more than the tolerance for `patience` epochs.
    Plateau,
    /// The validation loss rose for `patience` epochs; the best epoch's weights are kept.
    EarlyStopped,
    /// Cancelled between epochs.
    Cancelled,
    /// The classes are separated (completely or quasi-completely): the likelihood has no
    /// finite maximum, so the estimates mean nothing. The model says which term separates.
    Separated,
}

impl StopReason {
    /// A few words, for a title bar: "stopped early", "converged".
    pub fn short(self) -> &'static str {
        match self {
            StopReason::MaxEpochs => "epoch limit",
            StopReason::Converged => "converged",
            StopReason::Plateau => "plateau",
            StopReason::EarlyStopped => "stopped early",
            StopReason::Cancelled => "cancelled",
            StopReason::Separated => "separated",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            StopReason::MaxEpochs => "reached the epoch limit",
            StopReason::Converged => "converged: gradient norm below tolerance",
            StopReason::Plateau => "training loss no longer falling",
            StopReason::EarlyStopped => {
                "stopped early: validation loss no longer falling (best epoch kept)"
            }
            StopReason::Cancelled => "cancelled, the best epoch so far kept",
            StopReason::Separated => {
                "the classes are separated: no finite maximum-likelihood estimate exists"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome {
    pub weights: Weights,
    pub stop_reason: StopReason,
    pub curve: Vec<EpochEvent>,
    /// The epoch whose weights these are, when a cancelled fit returns its best epoch so far
    /// (the lowest validation loss, however few the validation rows) rather than its last.
    pub kept_epoch: Option<usize>,
    /// [`hessian_sum`] at `weights`, when the fit's last pass made it there (newton), so that
    /// the standard errors need no pass of their own; or, where L-BFGS ended by Newton's steps,
    /// the one Hessian those steps took, at the point they began a step from `weights`.
    pub hessian_sum: Option<Vec<f64>>,
    /// The training rows [`certain_and_right`] at `weights`, counted by the same last pass:
    /// the separation check then needs no pass of its own either.
    pub certain_rows: Option<u64>,
    /// A path's fits, largest λ first (coordinate descent only).
    pub path: Vec<path::PathPoint>,
    /// Which of `path` the fit's `weights` are: the last λ fitted, or the one cross-validation
    /// chose.
    pub path_choice: Option<usize>,
    /// The cross-validation that chose `weights` on the path, when asked for.
    pub cross_validation: Option<path::CrossValidation>,
}

/// Rows per chunk of a full pass. Fixed, so sums do not depend on the number of cores.
const CHUNK_ROWS: usize = 16_384;

/// The widest row a pass scales through a local array (see `pass_chunk_kernel`).
const SCALED_ROW: usize = 16;

/// Loss, gradient and (for newton) Hessian sums over the rows of one pass.
#[derive(Debug, Clone)]
struct PassSums {
    loss: f64,
    /// d + 1 entries: bias first.
    grad: Vec<f64>,
    /// (d+1)² entries, upper triangle filled, when asked for.
    hess: Vec<f64>,
    /// Rows [`certain_and_right`].
    certain: u64,
}

/// One chunk's sums; `par` is the parallelism of the Hessian's matrix products.
fn pass_chunk(
    w: &Weights,
    ex: Examples<'_>,
    start: usize,
    end: usize,
    want_hess: bool,
    par: Par,
) -> PassSums {
    if let Some(sparse_terms) = ex.sparse {
        debug_assert!(!want_hess, "newton refuses sparse terms");
        return sparse::pass_chunk(w, ex, sparse_terms, start, end);
    }
    #[cfg(target_arch = "x86_64")]
    if cpu_has_avx2_and_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has just been seen to have the two features the function is
        // compiled for.
        return unsafe { pass_chunk_avx2(w, ex, start, end, want_hess, par) };
    }
    specialise_width!(pass_chunk_kernel(ex.d, w, ex, start, end, want_hess, par))
}

/// [`pass_chunk`] compiled for AVX2, picked at run time: its exponentials and sums take four
/// lanes where the baseline x86-64 build has two. The same operations in the same order (no
/// `mul_add` in it, and the compiler fuses nothing by itself), so the same sums bit for bit.
///
/// # Safety
/// Only on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn pass_chunk_avx2(
    w: &Weights,
    ex: Examples<'_>,
    start: usize,
    end: usize,
    want_hess: bool,
    par: Par,
) -> PassSums {
    specialise_width!(pass_chunk_kernel(ex.d, w, ex, start, end, want_hess, par))
}

/// A pass over rows `start..end`: the loss, its gradient and (with `want_hess`) its Hessian.
///
/// Rows go in small batches, each step over the whole batch before the next: the logits, then
/// the exponentials, then the sums. Each loop is a run of independent calls or vector
/// arithmetic that the CPU overlaps, where a row at a time would wait on each exponential.
///
/// The log loss is softplus(z) − y·z = max(z, 0) + ln(1 + e^−|z|) − y·z. The logarithms are
/// taken of products, one per class and batch: Σ ln(1 + eᵢ) = ln Π (1 + eᵢ), where each factor
/// is in (1, 2], so 64 of them cannot overflow. It replaces 64 calls of ln_1p (a sixth of a
/// newton pass) by two of ln. Each factor and product rounds once, so a batch's sum is off by
/// at most ≈ 64 units of 2⁻⁵³, absolutely: 1e-16 a row, below the rounding of the sum over
/// rows itself (a test holds each batch to an exactly rounded sum of ln_1p's terms).
#[inline(always)]
fn pass_chunk_kernel(
    d: usize,
    w: &Weights,
    ex: Examples<'_>,
    start: usize,
    end: usize,
    want_hess: bool,
    par: Par,
) -> PassSums {
    let k = d + 1;
    let weights = &w.weights[..d];
    // At zero weights (newton's and batch descent's first pass) every logit is 0: e^−0 = 1 and
    // σ = ½ exactly, so the logits and exponentials need not be computed.
    let at_zero = w.bias == 0.0 && weights.iter().all(|&v| v == 0.0) && ex.offset.is_none();
    // The gradient accumulates in registers, not memory, for the common widths.
    let (mut local, mut wide) = ([0.0f64; 17], Vec::new());
    let grad = zeroed(&mut local, &mut wide, k);
    let mut loss = 0.0;
    // With the Hessian, each row's s·x, its residual r = p − y and its s = p(1−p) go into
    // `weighted`, a block at a time, for the matrix product below: Xᵀ·[S X | r | s] is the
    // Hessian's terms Σ s·xxᵀ, the gradient's Σ r·x and the Hessian's first column Σ s·x, all
    // in the same kernel tiles (for 10 features, 4 of them, all but one full). Σ s is summed
    // as the rows go.
    const BLOCK: usize = 2048;
    let stride = d + 2;
    let mut weighted = vec![0.0; if want_hess { BLOCK.min(end - start) * stride } else { 0 }];
    let mut xx = if want_hess { Mat::<f64>::zeros(d, stride) } else { Mat::new() };
    let mut curvature_sum = 0.0;
    let mut certain = 0u64;
    const BATCH: usize = 64;
    // A block ends where a batch does.
    const { assert!(BLOCK.is_multiple_of(BATCH)) };
    // Their values at zero weights, which `at_zero` passes keep.
    let mut z = [0.0f64; BATCH];
    let mut e = [1.0f64; BATCH];
    let mut block_start = start;
    for first in (start..end).step_by(BATCH) {
        let m = BATCH.min(end - first);
        let rows = &ex.x[first * d..(first + m) * d];
        let ys = &ex.y[first..first + m];
        if !at_zero {
            let offset = ex.offset.map(|o| &o[first..first + m]);
            logits_and_exponentials((&mut z, &mut e[..m]), (rows, d), (w.bias, weights), offset);
        }
        // The log loss's logarithms, of a product per class (see above).
        let mut products = [1.0f64; 2];
        let mut row_start = (first - block_start) * stride;
        // Each row's own weight, if rows have weights: this batch's.
        let batch_weights = ex.row_weights.map(|w| &w[first..first + m]);
        for (i, ((&zi, &ei), (&y, row))) in
            z.iter().zip(&e).zip(ys.iter().zip(rows.chunks_exact(d))).enumerate()
        {
            let weight = match batch_weights {
                None => ex.weight(y),
                Some(w) => ex.weight(y) * w[i],
            };
            certain += u64::from(certain_and_right(zi, y));
            loss += weight * (zi.max(0.0) - y * zi);
            if batch_weights.is_some() {
                // Each row weighs its own: no product of a class's factors serves.
                loss += weight * ei.ln_1p();
            } else {
                // The factor goes to its class's product and the other's gets exactly 1, by
                // arithmetic on the 0/1 label: the labels are random, so a branch would be
                // mispredicted half the time.
                products[0] *= 1.0 + (1.0 - y) * ei;
                products[1] *= 1.0 + y * ei;
            }
            // One exponential serves both the loss and the probability.
            let p = sigmoid_given_exp(zi, ei);
            let r = weight * (p - y);
            grad[0] += r;
            if want_hess {
                let si = weight * (p * (1.0 - p));
                curvature_sum += si;
                write_weighted_row(&mut weighted[row_start..row_start + stride], row, (si, r));
                row_start += stride;
            } else {
                for (g, &v) in grad[1..].iter_mut().zip(row) {
                    *g += r * v;
                }
            }
        }
        loss += ex.class_weights[0] * products[0].ln() + ex.class_weights[1] * products[1].ln();
        let block_rows = first + m - block_start;
        if want_hess && (block_rows == BLOCK || first + m == end) {
            let x = &ex.x[block_start * d..(first + m) * d];
            add_block_products(xx.as_mut(), x, &weighted[..block_rows * stride], par);
            block_start = first + m;
        }
    }
    if !want_hess {
        return PassSums { loss, grad: grad.to_vec(), hess: Vec::new(), certain };
    }
    let (grad, hess) = gradient_and_hessian(grad[0], curvature_sum, xx.as_ref());
    PassSums { loss, grad, hess, certain }
}

/// A batch's logits `z` (each row's, `d` to a row, plus its offset) and e^−|z|, which
/// serves both the loss and the probability.
#[inline(always)]
fn logits_and_exponentials(
    (z, e): (&mut [f64], &mut [f64]),
    (rows, d): (&[f64], usize),
    (bias, weights): (f64, &[f64]),
    offset: Option<&[f64]>,
) {
    for (zi, row) in z.iter_mut().zip(rows.chunks_exact(d)) {
        *zi = bias + dot(weights, row);
    }
    if let Some(offset) = offset {
        z.iter_mut().zip(offset).for_each(|(zi, o)| *zi += o);
    }
    for (ei, zi) in e.iter_mut().zip(z.iter()) {
        *ei = exp_nonpositive(-zi.abs());
    }
}

/// One row's entries of `[S X | r | s]` (`out`, d + 2 wide) for the Hessian's products: the
/// row scaled by its curvature `s`, its residual `r`, and `s`.
#[inline(always)]
fn write_weighted_row(out: &mut [f64], row: &[f64], (s, r): (f64, f64)) {
    let d = row.len();
    if d <= SCALED_ROW {
        // Through a local array, which the compiler knows no other slice touches, so that the
        // products are vector arithmetic: into `out` directly, they were a load, a multiply and
        // a store per value.
        let mut scaled = [0.0f64; SCALED_ROW];
        for (o, &v) in scaled.iter_mut().zip(row) {
            *o = s * v;
        }
        out[..d].copy_from_slice(&scaled[..d]);
    } else {
        for (o, &v) in out.iter_mut().zip(row) {
            *o = s * v;
        }
    }
    out[d] = r;
    out[d + 1] = s;
}

/// Adds a block's Xᵀ·[S X | r | s] into `xx` (d × (d + 2)): H = Σ p(1−p)·[1 x]ᵀ[1 x] and the
/// gradient as matrix products over blocks of rows `x` (row-major, d wide) that stay in the
/// cache, by faer's kernels (the CPU's widest vector units, chosen at run time). Only the upper
/// triangle of XᵀSX is wanted: a symmetric rank-k update, half the work of the full product
/// at any width.
fn add_block_products(xx: MatMut<'_, f64>, x: &[f64], weighted: &[f64], par: Par) {
    let d = xx.nrows();
    let stride = d + 2;
    let rows = weighted.len() / stride;
    let x = MatRef::from_row_major_slice(x, rows, d);
    let sx = MatRef::from_row_major_slice_with_stride(weighted, rows, stride, stride);
    let (mut xsx, mut xr) = xx.split_at_col_mut(d);
    triangular::matmul(
        &mut xsx,
        BlockStructure::TriangularUpper,
        Accum::Add,
        x.transpose(),
        BlockStructure::Rectangular,
        sx.subcols(0, d),
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    matmul(&mut xr, Accum::Add, x.transpose(), sx.subcols(d, 2), 1.0, par);
}

/// The gradient and the Hessian (k × k, k = d + 1, its upper triangle filled) from the
/// intercept's gradient, Σ s, and the products Xᵀ·[S X | r | s] summed in `xx`.
fn gradient_and_hessian(
    intercept_grad: f64,
    curvature_sum: f64,
    xx: MatRef<'_, f64>,
) -> (Vec<f64>, Vec<f64>) {
    let d = xx.nrows();
    let k = d + 1;
    let mut grad = Vec::with_capacity(k);
    grad.push(intercept_grad);
    grad.extend((0..d).map(|a| xx[(a, d)]));
    let mut hess = vec![0.0; k * k];
    hess[0] = curvature_sum;
    for a in 0..d {
        hess[a + 1] = xx[(a, d + 1)];
        for b in a..d {
            hess[(a + 1) * k + b + 1] = xx[(a, b)];
        }
    }
    (grad, hess)
}

/// Terms from which a pass with the Hessian goes over the rows in one sweep, its matrix products
/// on every core: the products' O(n·d²) is then the whole cost, and chunks of their own would
/// each hold a d×d partial sum and split the rows unevenly (20k rows: chunks of 16,384 and 3,616).
const WIDE_TERMS: usize = 64;

/// A full pass over all rows, chunked across cores and summed in chunk order (a wide pass with
/// the Hessian: one sweep, its products parallel); the same sums bit for bit on one machine.
fn full_pass(w: &Weights, ex: Examples<'_>, want_hess: bool) -> PassSums {
    let n = ex.rows();
    let cores = std::thread::available_parallelism().map_or(1, |t| t.get());
    if want_hess && ex.d >= WIDE_TERMS && cores > 1 {
        return pass_chunk(w, ex, 0, n, want_hess, Par::rayon(cores));
    }
    let chunks: Vec<(usize, usize)> = (0..n.div_ceil(CHUNK_ROWS))
        .map(|c| (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(n)))
        .collect();
    let threads = cores.min(chunks.len()).max(1);
    let parts: Vec<PassSums> = if threads == 1 {
        chunks.iter().map(|&(s, e)| pass_chunk(w, ex, s, e, want_hess, Par::Seq)).collect()
    } else {
        let mut parts: Vec<Option<PassSums>> = vec![None; chunks.len()];
        std::thread::scope(|scope| {
            let per = chunks.len().div_ceil(threads);
            for (slots, ranges) in parts.chunks_mut(per).zip(chunks.chunks(per)) {
                scope.spawn(move || {
                    for (slot, &(s, e)) in slots.iter_mut().zip(ranges) {
                        *slot = Some(pass_chunk(w, ex, s, e, want_hess, Par::Seq));
                    }
                });
            }
        });
        parts.into_iter().flatten().collect()
    };
    let k = ex.terms() + 1;
    let mut total = PassSums {
        loss: 0.0,
        grad: vec![0.0; k],
        hess: if want_hess { vec![0.0; k * k] } else { Vec::new() },
        certain: 0,
    };
    for part in parts {
        total.loss += part.loss;
        total.certain += part.certain;
        for (t, p) in total.grad.iter_mut().zip(&part.grad) {
            *t += p;
        }
        for (t, p) in total.hess.iter_mut().zip(&part.hess) {
            *t += p;
        }
    }
    if let Some(sparse_terms) = ex.sparse {
        sparse::finish_gradient(sparse_terms, &mut total.grad);
    }
    total
}

/// Each row's logit at `w`, its offset in it.
pub fn logits<'a>(w: &'a Weights, ex: Examples<'a>) -> Box<dyn Iterator<Item = f64> + 'a> {
    if let Some(sparse_terms) = ex.sparse {
        return Box::new(sparse::logits(w, ex, sparse_terms));
    }
    Box::new(
        ex.x.chunks_exact(ex.d.max(1))
            .enumerate()
            .map(move |(i, row)| w.logit(row) + ex.offset_of(i)),
    )
}

/// The objective's value and gradient (bias first) at `w`: mean log loss + (l2/2)‖w‖².
pub fn objective(w: &Weights, ex: Examples<'_>, l2: f64) -> (f64, Vec<f64>) {
    objective_from(&full_pass(w, ex, false), w, ex.weight_sum(), l2)
}

/// The objective and its gradient at `w`, from the sums of a pass at `w` over rows whose
/// weights sum to `n` (the rows, unweighted).
fn objective_from(sums: &PassSums, w: &Weights, n: f64, l2: f64) -> (f64, Vec<f64>) {
    let n = if n > 0.0 { n } else { 1.0 };
    let mut grad: Vec<f64> = sums.grad.iter().map(|g| g / n).collect();
    for (g, wj) in grad[1..].iter_mut().zip(&w.weights) {
        *g += l2 * wj;
    }
    (sums.loss / n + penalty(w, l2), grad)
}

/// (l2/2)‖w‖², the intercept not included.
fn penalty(w: &Weights, l2: f64) -> f64 {
    0.5 * l2 * w.weights.iter().map(|v| v * v).sum::<f64>()
}

/// The mean log loss (no penalty): what the curves and metrics report.
pub fn mean_log_loss(w: &Weights, ex: Examples<'_>) -> f64 {
    if ex.rows() == 0 {
        return f64::NAN;
    }
    full_pass(w, ex, false).loss / ex.weight_sum()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|g| g * g).sum::<f64>().sqrt()
}

/// Fits the model. `on_epoch` sees each epoch's event as it ends; `cancel` is checked between
/// epochs. The training rows must hold both classes; `val` may be empty.
pub fn fit(
    train: Examples<'_>,
    val: Option<Examples<'_>>,
    params: &TrainParams,
    cancel: &AtomicBool,
    on_epoch: impl FnMut(&EpochEvent),
) -> Result<FitOutcome, ParamError> {
    params.validate()?;
    let chosen = TrainParams {
        solver: params.choose_solver(train.terms()).0,
        l2: params.ridge(),
        ..params.clone()
    };
    let params = &chosen;
    if train.sparse.is_some() && params.solver != Solver::Lbfgs {
        return Err(ParamError::SparseTerms(params.solver));
    }
    if params.solver == Solver::Cd {
        return fit_by_path(train, params, cancel, on_epoch);
    }
    let mut progress = Progress::new(params, on_epoch);
    progress.early_stopping = val.is_some_and(|v| v.rows() >= MIN_EARLY_STOPPING_ROWS);
    let data = FitData { train, val: val.filter(|v| v.rows() > 0), params, cancel };
    let mut newton_finished = None;
    let (weights, stop_reason, last_pass) = match params.solver {
        Solver::Sgd | Solver::Minibatch => {
            let (weights, stop_reason) = fit_per_sample(&data, &mut progress);
            (weights, stop_reason, None)
        }
        Solver::Lbfgs => {
            let (weights, stop_reason, hessian) = lbfgs::fit_lbfgs(&data, &mut progress);
            newton_finished = hessian;
            (weights, stop_reason, None)
        }
        Solver::Saga => {
            let (weights, stop_reason) = saga::fit_saga(&data, &mut progress);
            (weights, stop_reason, None)
        }
        // `choose` never leaves `auto`, and `cd` fitted its path above.
        Solver::Batch | Solver::Newton | Solver::Auto | Solver::Cd => {
            fit_full_passes(&data, &mut progress)
        }
    };
    // Stopped by a person: what is worth keeping is the best epoch so far, as an early stop
    // keeps it, not whichever epoch the stop fell on.
    let (weights, kept_epoch) = match progress.best_val.take() {
        Some((_, best, epoch)) if stop_reason == StopReason::Cancelled => (best, Some(epoch)),
        _ => (weights, None),
    };
    // The last pass's sums are the returned weights' only if they are the weights it was made at.
    let at_weights = last_pass.filter(|(at, _)| *at == weights).map(|(_, sums)| sums);
    let certain_rows = at_weights.as_ref().map(|sums| sums.certain);
    let hessian_sum = at_weights
        .map(|sums| symmetric(sums.hess, train.d + 1))
        .or(newton_finished.filter(|_| kept_epoch.is_none()));
    Ok(FitOutcome {
        weights,
        stop_reason,
        curve: progress.curve,
        kept_epoch,
        hessian_sum,
        certain_rows,
        path: Vec::new(),
        path_choice: None,
        cross_validation: None,
    })
}

/// Coordinate descent along the path of λ, to the λ asked for or, with `cv`, to the end of
/// glmnet's path with the folds' fits kept in step, which choose a λ of the path. Each λ is a
/// point of the curve as it is solved, with its cross-validated deviance.
fn fit_by_path(
    train: Examples<'_>,
    params: &TrainParams,
    cancel: &AtomicBool,
    mut on_epoch: impl FnMut(&EpochEvent),
) -> Result<FitOutcome, ParamError> {
    let net = path::ElasticNet { alpha: params.alpha().unwrap_or(1.0) };
    let folds = match (train.folds, params.cv) {
        (Some(given), Some(k)) => Some(given_folds(given, k)?),
        (None, Some(k)) => Some(stratified_folds(train.y, k, params.seed)?),
        (_, None) => None,
    };
    let columns = path::Columns::from_rows(train.x, train.d);
    let weighted = train.class_weights != [1.0, 1.0] || train.row_weights.is_some();
    let row_weights: Option<Vec<f64>> =
        weighted.then(|| train.y.iter().enumerate().map(|(i, &y)| train.weight_of(i, y)).collect());
    let request = path::PathRequest {
        net,
        lambdas: None,
        down_to: params.lambda,
        stop_early: folds.is_some(),
        tolerance: params.tolerance,
        offset: train.offset,
    };
    let mut path = path::PathStepper::new(&columns, train.y, row_weights.as_deref(), request);
    let mut cross_validating = folds.map(|folds| {
        path::CrossValidating::new(&columns, train.y, row_weights.as_deref(), folds, request)
    });
    let started = Instant::now();
    let mut curve = Vec::new();
    while !cancel.load(Ordering::Relaxed)
        && let Some(lambda) = path.next_lambda()
    {
        // The path's λ and the folds' at it share the cores.
        let (point, cv) = rayon::join(
            || path.step().cloned(),
            || cross_validating.as_mut().map(|cv| cv.at(lambda).into()),
        );
        let Some(point) = point else { break };
        let event = EpochEvent {
            epoch: curve.len() + 1,
            train_loss: point.mean_log_loss,
            val_loss: None,
            grad_norm: point.optimality,
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
            path: Some(PathEvent {
                lambda: point.lambda,
                weights: point.weights.weights.clone(),
                cv,
            }),
        };
        on_epoch(&event);
        curve.push(event);
    }
    let cancelled = cancel.load(Ordering::Relaxed);
    let cross_validation = cross_validating.map(path::CrossValidating::finish);
    let points = path.points;
    let chosen = match &cross_validation {
        Some(cv) if !points.is_empty() => Some(cv.chosen_index(params.select)),
        _ => points.len().checked_sub(1),
    };
    let weights = chosen
        .and_then(|i| points.get(i))
        .map_or_else(|| Weights::zeros(train.d), |p| p.weights.clone());
    let stop_reason =
        if cancelled || chosen.is_none() { StopReason::Cancelled } else { StopReason::Converged };
    Ok(FitOutcome {
        weights,
        stop_reason,
        curve,
        kept_epoch: None,
        hessian_sum: None,
        certain_rows: None,
        path: points,
        path_choice: chosen,
        cross_validation,
    })
}

/// Each row's fold (1 to K) from the data's fold column: its K distinct values in sorted order,
/// which must be the `cv` asked for.
fn given_folds(column: &[f64], cv: usize) -> Result<Vec<usize>, ParamError> {
    let mut values: Vec<f64> = column.to_vec();
    values.sort_by(f64::total_cmp);
    values.dedup();
    if values.len() != cv {
        return Err(ParamError::FoldColumn { cv, given: values.len() });
    }
    Ok(column.iter().map(|v| values.partition_point(|w| w < v) + 1).collect())
}

/// Each training row's fold for `folds`-fold cross-validation ([`path::stratified_folds`]),
/// once each class has a row for every fold.
fn stratified_folds(y: &[f64], folds: usize, seed: u64) -> Result<Vec<usize>, ParamError> {
    for class in [0u8, 1] {
        let rows = y.iter().filter(|&&v| v == f64::from(class)).count();
        if rows < folds {
            return Err(ParamError::FoldsExceedClass { folds, class, rows });
        }
    }
    Ok(path::stratified_folds(y, folds, seed))
}

#[derive(Clone, Copy)]
struct FitData<'a> {
    train: Examples<'a>,
    val: Option<Examples<'a>>,
    params: &'a TrainParams,
    cancel: &'a AtomicBool,
}

impl FitData<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The learning rate of `epoch` (1-based), after decay: α/(1 + decay·(e−1)), and for
    /// averaged SGD α/√(1 + decay·(e−1)) — averaging wants steps that shrink more slowly than
    /// 1/t, or the tail it averages has stopped moving before it reaches the optimum.
    fn learning_rate(&self, epoch: usize) -> f64 {
        let decayed = 1.0 + self.params.lr_decay * (epoch - 1) as f64;
        match self.params.solver {
            Solver::Sgd => self.params.learning_rate / decayed.sqrt(),
            _ => self.params.learning_rate / decayed,
        }
    }

    fn measure(&self, w: &Weights) -> Measurement {
        Measurement::from_objective(objective(w, self.train, self.params.l2), w, self)
    }
}

/// What is measured at the weights an epoch ends with.
struct Measurement {
    /// Mean log loss + L2 penalty over the training rows.
    objective: f64,
    /// The objective's gradient, bias first.
    grad: Vec<f64>,
    /// The mean log loss (no penalty) over the training rows.
    train_loss: f64,
    val_loss: Option<f64>,
}

impl Measurement {
    fn from_objective((objective, grad): (f64, Vec<f64>), w: &Weights, data: &FitData<'_>) -> Self {
        let val_loss = data.val.map(|v| mean_log_loss(w, v));
        Measurement {
            objective,
            train_loss: objective - penalty(w, data.params.l2),
            grad,
            val_loss,
        }
    }
}

/// The curve so far and the stopping rules, fed one measured epoch at a time.
struct Progress<'p, F> {
    params: &'p TrainParams,
    on_epoch: F,
    started: Instant,
    curve: Vec<EpochEvent>,
    best_train: f64,
    train_stale: usize,
    /// The lowest validation loss so far, its weights and its epoch.
    best_val: Option<(f64, Weights, usize)>,
    val_stale: usize,
    /// Whether the validation loss may stop the fit: only with [`MIN_EARLY_STOPPING_ROWS`]
    /// validation rows or more, as fewer would stop it on noise.
    early_stopping: bool,
    /// Whether a plateau of the training objective stops the fit. Not L-BFGS's or SAGA's: near
    /// the optimum they gain less than the tolerance an iteration for many iterations while
    /// their gradient still falls, and their stop is the gradient's (or, for L-BFGS, a line
    /// search that finds no lower point).
    plateau_stops: bool,
    /// Plateaus that cut the step instead of stopping (averaged SGD); `cut_step` says one did.
    step_cuts: usize,
    cut_step: bool,
}

/// The per-sample rule's plateau, relative to the loss: an epoch that lowers it by less than
/// this part of itself is no improvement. An epoch of averaged SGD lowers the loss by ever less
/// as its step decays, so an absolute tolerance (1e-7) kept a fit that had long stopped
/// mattering running to its epoch limit; how far it stopped from the optimum is reported.
pub const PER_SAMPLE_PLATEAU: f64 = 3e-6;

/// The least fall from `best` (the lowest loss so far) that counts as an improvement for the
/// per-sample rule: the tolerance, or [`PER_SAMPLE_PLATEAU`] of the loss if that is more; none
/// before there is a loss.
pub(crate) fn per_sample_improvement(tolerance: f64, best: f64) -> f64 {
    if best.is_finite() { tolerance.max(PER_SAMPLE_PLATEAU * best.abs()) } else { 0.0 }
}

/// The fewest validation rows whose loss may stop a fit early. With fewer, a handful of rows
/// decides when the fit stops (3 of 32 on a small real dataset stopped it at epoch 11, far from
/// the optimum); the curve is still drawn, and the plateau of the training loss stops the fit.
pub const MIN_EARLY_STOPPING_ROWS: usize = 100;

impl<'p, F: FnMut(&EpochEvent)> Progress<'p, F> {
    fn new(params: &'p TrainParams, on_epoch: F) -> Self {
        Progress {
            params,
            on_epoch,
            started: Instant::now(),
            curve: Vec::new(),
            best_train: f64::INFINITY,
            train_stale: 0,
            best_val: None,
            val_stale: 0,
            early_stopping: true,
            plateau_stops: !matches!(params.solver, Solver::Lbfgs | Solver::Saga),
            step_cuts: 0,
            cut_step: false,
        }
    }

    /// The least fall from `best` (a loss) that counts as an improvement: the tolerance, and
    /// for the per-sample rule a share of the loss itself ([`per_sample_improvement`]).
    fn improvement_needed(&self, best: f64) -> f64 {
        match self.params.solver {
            Solver::Sgd | Solver::Minibatch => per_sample_improvement(self.params.tolerance, best),
            _ => self.params.tolerance,
        }
    }

    /// Hands `epoch`'s event to the caller and adds it to the curve; returns its gradient norm.
    fn record(&mut self, epoch: usize, m: &Measurement) -> f64 {
        let grad_norm = norm(&m.grad);
        let event = EpochEvent {
            epoch,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            grad_norm,
            elapsed_ms: self.started.elapsed().as_secs_f64() * 1e3,
            path: None,
        };
        (self.on_epoch)(&event);
        self.curve.push(event);
        grad_norm
    }

    /// Records `epoch`, measured at `w`, and says whether to stop. On an early stop `w` is
    /// replaced by the best epoch's weights.
    fn epoch_done(&mut self, epoch: usize, m: &Measurement, w: &mut Weights) -> Option<StopReason> {
        let grad_norm = self.record(epoch, m);
        if !grad_norm.is_finite() || grad_norm <= self.params.tolerance {
            return Some(StopReason::Converged);
        }
        // The best epoch by validation loss, for an early stop and for a person's stop (which
        // keeps it whatever the patience). An improvement smaller than the tolerance is none: a
        // validation loss creeping down by 1e-9 an epoch would otherwise keep a converged fit
        // running.
        let val_improved = m.val_loss.map(|v| {
            let improved = self
                .best_val
                .as_ref()
                .is_none_or(|(best, ..)| v < *best - self.improvement_needed(*best));
            if improved {
                self.best_val = Some((v, w.clone(), epoch));
            }
            improved
        });
        if self.params.patience == 0 {
            return None;
        }
        if m.objective < self.best_train - self.improvement_needed(self.best_train)
            || !self.plateau_stops
        {
            self.best_train = m.objective;
            self.train_stale = 0;
        } else {
            self.train_stale += 1;
            if self.train_stale >= self.params.patience {
                if self.step_cuts == 0 {
                    return Some(StopReason::Plateau);
                }
                self.step_cuts -= 1;
                self.train_stale = 0;
                self.cut_step = true;
            }
        }
        // Only enough validation rows may stop the fit ([`MIN_EARLY_STOPPING_ROWS`]).
        match val_improved.filter(|_| self.early_stopping) {
            Some(true) => self.val_stale = 0,
            Some(false) => {
                self.val_stale += 1;
                if self.val_stale >= self.params.patience {
                    if let Some((_, best, _)) = &self.best_val {
                        *w = best.clone();
                    }
                    return Some(StopReason::EarlyStopped);
                }
            }
            None => {}
        }
        None
    }
}

/// SGD and minibatch. An epoch's training is one core's sequential work, and neither its
/// measurement (the full training loss and gradient, the validation loss) nor the shuffle of a
/// later epoch depends on it: the measurement does not change the weights, and the orders come
/// from the seed alone. So while epoch e+1 trains, a helper thread measures epoch e and
/// shuffles the order of epoch e+2, and an epoch costs about its training pass alone. When
/// epoch e's measurement says stop, the epoch trained ahead is discarded: the result is the
/// same, bit for bit, as measuring each epoch before training the next, with the orders drawn
/// from the seed in the same sequence.
fn fit_per_sample<F: FnMut(&EpochEvent)>(
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, StopReason) {
    let params = data.params;
    let mut w = Weights::zeros(data.train.d);
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut order: Vec<usize> = (0..data.train.rows()).collect();
    shuffle_blocks(&mut order, &mut rng);
    let mut average = IterateAverage::new(params.solver == Solver::Sgd);
    let mut step_scale = 1.0;
    if params.solver == Solver::Sgd {
        progress.step_cuts = STEP_CUTS;
    }
    std::thread::scope(|scope| {
        // The helper's work while an epoch trains: the epoch before it measured (from a copy
        // of its weights), then a later epoch's order shuffled into a spare buffer. The buffer
        // and the generator travel to the helper and back.
        let spawn_helper = |to_measure: Option<(usize, Weights)>,
                            (mut order, mut rng): (Vec<usize>, ChaCha8Rng),
                            shuffle: bool| {
            scope.spawn(move || {
                let measured = to_measure.map(|(epoch, w)| (epoch, data.measure(&w), w));
                if shuffle {
                    shuffle_blocks(&mut order, &mut rng);
                }
                (measured, (order, rng))
            })
        };
        // While epoch 1 trains, the helper only shuffles epoch 2's order.
        let mut helper = spawn_helper(None, (vec![0; order.len()], rng), params.epochs >= 2);
        let mut epoch = 0;
        loop {
            let train_another = epoch < params.epochs && !data.cancelled();
            if train_another {
                epoch += 1;
                let lr = data.learning_rate(epoch) * step_scale;
                match params.solver {
                    Solver::Minibatch => minibatch_epoch(
                        &mut w,
                        data.train,
                        &order,
                        params.batch_size,
                        lr,
                        params.l2,
                    ),
                    _ => {
                        let sums = sgd_epoch(&mut w, data.train, &order, lr, params.l2);
                        average.add_epoch(epoch, &sums, order.len());
                    }
                }
            }
            let (measured, (next_order, rng)) =
                helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if let Some((measured_epoch, m, mut measured_w)) = measured {
                let stop = progress.epoch_done(measured_epoch, &m, &mut measured_w);
                let stop = stop.or_else(|| {
                    (train_another && data.cancelled()).then_some(StopReason::Cancelled)
                });
                if let Some(reason) = stop {
                    return (measured_w, reason);
                }
                // A cut decided on epoch e's measurement applies from epoch e + 2: e + 1 was
                // trained while e was measured. Deterministic, so the same seed still gives
                // the same model bit for bit.
                if std::mem::take(&mut progress.cut_step) {
                    step_scale *= STEP_CUT;
                    average.restart(epoch + 1, &w);
                }
            }
            if !train_another {
                let reason = if epoch < params.epochs {
                    StopReason::Cancelled
                } else {
                    StopReason::MaxEpochs
                };
                return (average.weights(&w), reason);
            }
            let spare = std::mem::replace(&mut order, next_order);
            let snapshot = average.weights(&w);
            helper =
                spawn_helper(Some((epoch, snapshot)), (spare, rng), epoch + 2 <= params.epochs);
        }
    })
}

/// The averaged iterate of averaged SGD (Polyak–Ruppert), which is what the fit reports and
/// measures. The per-sample rule wanders around the optimum at the scale of its step; the mean
/// of its wanderings is far closer to the optimum than the last iterate.
///
/// The mean is over the tail of the run: counting epochs from `origin` (epoch 2 at first, since
/// epoch 1's iterates are still far off; after a step cut, the first epoch at the new step),
/// every iterate from local epoch `s` on, where `s` is the largest power of two at most half the
/// local epochs so far. So the early iterates stop biasing it, and two or three running sums
/// (windows opened at local epochs 1, 2, 4, 8, …) are all it keeps, however many epochs run.
struct IterateAverage {
    on: bool,
    origin: usize,
    /// (first local epoch, sums with the bias first, iterates summed), the oldest first.
    windows: Vec<(usize, Vec<f64>, u64)>,
    /// The average as it was at a restart, reported until the new windows hold an epoch: the
    /// last iterate alone would be reported otherwise, a jump in the curve for nothing.
    held: Option<Weights>,
}

impl IterateAverage {
    fn new(on: bool) -> Self {
        IterateAverage { on, origin: 2, windows: Vec::new(), held: None }
    }

    /// The first local epoch averaged after `local` local epochs.
    fn window_start(local: usize) -> usize {
        1 << local.div_ceil(2).max(1).ilog2()
    }

    fn add_epoch(&mut self, epoch: usize, sums: &[f64], iterates: usize) {
        if !self.on || epoch < self.origin {
            return;
        }
        let local = epoch - self.origin + 1;
        if self.windows.last().is_none_or(|(first, _, _)| 2 * first == local) {
            self.windows.push((local, vec![0.0; sums.len()], 0));
        }
        for (_, total, count) in &mut self.windows {
            for (t, v) in total.iter_mut().zip(sums) {
                *t += v;
            }
            *count += iterates as u64;
        }
        let start = Self::window_start(local);
        self.windows.retain(|(first, _, _)| *first >= start);
    }

    /// Starts over from `epoch`: the iterates before a step cut belong to another regime. The
    /// average so far (of `current`'s run) is held until the new one has an epoch.
    fn restart(&mut self, epoch: usize, current: &Weights) {
        self.held = Some(self.weights(current));
        self.origin = epoch;
        self.windows.clear();
    }

    /// The averaged weights, or the current ones before averaging starts.
    fn weights(&self, current: &Weights) -> Weights {
        match self.windows.first() {
            Some((_, sums, count)) if self.on && *count > 0 => {
                let n = *count as f64;
                Weights { bias: sums[0] / n, weights: sums[1..].iter().map(|s| s / n).collect() }
            }
            _ => self.held.clone().unwrap_or_else(|| current.clone()),
        }
    }
}

/// How many times averaged SGD cuts its step (by [`STEP_CUT`]) when the training objective
/// plateaus, before the plateau stops it. Its steps decay slowly, as averaging wants; on some
/// data the iterates then wander at a level the average cannot get below, and a cut lets it go
/// on (on the penguins data with 1000 epochs: 0.005% above the optimum with cuts, 0.02%
/// without).
const STEP_CUTS: usize = 10;
const STEP_CUT: f64 = 0.5;

/// Batch gradient descent and newton: every epoch is itself a pass over all rows, whose result
/// (objective, gradient, for newton the Hessian) at the new weights serves as the epoch's
/// measurement and as the next epoch's starting point.
/// Also returns newton's last pass (with its Hessian) and the weights it was made at.
fn fit_full_passes<F: FnMut(&EpochEvent)>(
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, StopReason, Option<(Weights, PassSums)>) {
    let params = data.params;
    let mut w = Weights::zeros(data.train.d);
    let mut at_w: Option<Measurement> = None;
    let mut newton_pass: Option<PassSums> = None;
    let last_pass =
        |w: &Weights, pass: &Option<PassSums>| pass.clone().map(|sums| (w.clone(), sums));
    for epoch in 1..=params.epochs {
        if data.cancelled() {
            let pass = last_pass(&w, &newton_pass);
            return (w, StopReason::Cancelled, pass);
        }
        let measured = match params.solver {
            Solver::Newton => newton_step(&mut w, data.train, params.l2, &mut newton_pass),
            _ => {
                let grad =
                    at_w.take().map_or_else(|| objective(&w, data.train, params.l2).1, |m| m.grad);
                step(&mut w, &grad, data.learning_rate(epoch));
                None
            }
        };
        let m = match measured {
            Some(objective) => Measurement::from_objective(objective, &w, data),
            None => data.measure(&w),
        };
        // The pass newton's step left is at the weights it stepped to, before the epoch's end
        // may change them.
        let pass = last_pass(&w, &newton_pass);
        if let Some(reason) = progress.epoch_done(epoch, &m, &mut w) {
            let converged = reason == StopReason::Converged && norm(&m.grad).is_finite();
            let polish = converged && params.solver == Solver::Newton && epoch < params.epochs;
            let (w, pass) =
                if polish { newton_polish(w, pass, epoch + 1, data, progress) } else { (w, pass) };
            return (w, reason, pass);
        }
        at_w = Some(m);
    }
    let pass = last_pass(&w, &newton_pass);
    (w, StopReason::MaxEpochs, pass)
}

/// Newton's step after its gradient fell below the tolerance, as epoch `epoch`. Its convergence
/// is quadratic: from a gradient at the tolerance (estimates about 1e-6 off, relatively, on
/// real data), one more step, one more pass, reaches the optimum to rounding. `at` is the last
/// pass, with its Hessian, at `w`; the step is kept if the objective does not rise.
fn newton_polish<F: FnMut(&EpochEvent)>(
    w: Weights,
    at: Option<(Weights, PassSums)>,
    epoch: usize,
    data: &FitData<'_>,
    progress: &mut Progress<'_, F>,
) -> (Weights, Option<(Weights, PassSums)>) {
    let mut polished = w.clone();
    let mut pass = at.clone().map(|(_, sums)| sums);
    match newton_step(&mut polished, data.train, data.params.l2, &mut pass) {
        Some(objective) => {
            progress.record(epoch, &Measurement::from_objective(objective, &polished, data));
            let at = pass.map(|sums| (polished.clone(), sums));
            (polished, at)
        }
        None => (w, at),
    }
}

fn step(w: &mut Weights, grad: &[f64], lr: f64) {
    w.bias -= lr * grad[0];
    for (wj, g) in w.weights.iter_mut().zip(&grad[1..]) {
        *wj -= lr * g;
    }
}

/// The seed's rule, one example at a time. The L2 term is folded in as weight decay. Returns
/// the sum of the iterates after each update (bias first), for the averaged iterate.
fn sgd_epoch(w: &mut Weights, ex: Examples<'_>, order: &[usize], lr: f64, l2: f64) -> Vec<f64> {
    // The step of a row of class 0 and of class 1 (×1.0 when unweighted: exact).
    let steps = [lr * ex.class_weights[0], lr * ex.class_weights[1]];
    let decay = 1.0 - lr * l2;
    if ex.has_row_columns() {
        return sgd_epoch_of_rows(w, ex, order, lr, decay);
    }
    #[cfg(target_arch = "x86_64")]
    if cpu_has_avx2_and_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has just been seen to have the two features the functions are
        // compiled for.
        return unsafe {
            specialise_width!(const sgd_epoch_fma(ex.d, w, ex.x, ex.y, order, steps, decay))
        };
    }
    specialise_width!(const sgd_epoch_of_width(ex.d, w, ex.x, ex.y, order, steps, decay))
}

/// [`sgd_epoch`] for rows with frequency weights or offsets: the seed's rule with each row's
/// step times its weight (a row of weight w moves the estimates as w visits would, to first
/// order) and its offset in its logit. Plain arithmetic, where the kernels below are tuned for
/// the unweighted rows most fits have.
fn sgd_epoch_of_rows(
    w: &mut Weights,
    ex: Examples<'_>,
    order: &[usize],
    lr: f64,
    decay: f64,
) -> Vec<f64> {
    let d = ex.d;
    let mut sums = vec![0.0; d + 1];
    for &i in order {
        let (row, y) = (&ex.x[i * d..(i + 1) * d], ex.y[i]);
        let g = lr * ex.weight_of(i, y) * (sigmoid(w.logit(row) + ex.offset_of(i)) - y);
        w.bias -= g;
        sums[0] += w.bias;
        for ((wj, &v), s) in w.weights.iter_mut().zip(row).zip(&mut sums[1..]) {
            *wj = *wj * decay - g * v;
            *s += *wj;
        }
    }
    sums
}

/// Whether this CPU has AVX2 and FMA, which the kernels compiled for them need.
#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2_and_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// The kernel for one width, in a function of its own, as the FMA ones below must be: one
/// function holding all seventeen widths kept fewer values in registers (≈ 7% slower at 10
/// features, measured with FMA). Its multiply-adds are fused where the build's baseline has FMA
/// (aarch64), else a multiply and an add: `mul_add` would be a library call there.
#[inline(never)]
fn sgd_epoch_of_width<const N: usize>(
    d: usize,
    w: &mut Weights,
    x: &[f64],
    labels: &[f64],
    order: &[usize],
    steps: [f64; 2],
    decay: f64,
) -> Vec<f64> {
    sgd_epoch_decayed::<N, FMA_IN_BASELINE>(d, w, x, labels, order, steps, decay)
}

/// [`sgd_epoch_of_width`] compiled for FMA and AVX2, picked at run time, as the baseline x86-64
/// build has neither: the multiply-adds are fused, one instruction each, and the weights'
/// updates take 256-bit registers. Its results are those of any CPU with FMA (aarch64 too),
/// bit for bit; a CPU without differs from them in rounding only.
///
/// # Safety
/// Only on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn sgd_epoch_fma<const N: usize>(
    d: usize,
    w: &mut Weights,
    x: &[f64],
    labels: &[f64],
    order: &[usize],
    steps: [f64; 2],
    decay: f64,
) -> Vec<f64> {
    sgd_epoch_decayed::<N, true>(d, w, x, labels, order, steps, decay)
}

/// The kernel with its decay multiply only where there is a decay: without an L2 term it is
/// exactly 1, and multiplying by it changes nothing but the time (≈ 10% of the pass at 10
/// features).
#[inline(always)]
fn sgd_epoch_decayed<const N: usize, const FUSED: bool>(
    d: usize,
    w: &mut Weights,
    x: &[f64],
    labels: &[f64],
    order: &[usize],
    steps: [f64; 2],
    decay: f64,
) -> Vec<f64> {
    if decay == 1.0 {
        sgd_epoch_kernel::<N, false, FUSED>(d, w, x, labels, order, steps, decay)
    } else {
        sgd_epoch_kernel::<N, true, FUSED>(d, w, x, labels, order, steps, decay)
    }
}

/// One epoch of the rule for rows `x` of `d` features, `N` = `d` (or 0 past 16), with the
/// decay multiply only when `DECAY`, and the multiply-adds fused when `FUSED`. The rows and
/// labels come as two slices rather than an [`Examples`]: passed whole, it kept the compiler
/// from making the updates vector arithmetic (the pass ≈ 25% slower at 10 features, measured).
#[inline(always)]
fn sgd_epoch_kernel<const N: usize, const DECAY: bool, const FUSED: bool>(
    d: usize,
    w: &mut Weights,
    x: &[f64],
    labels: &[f64],
    order: &[usize],
    step_of: [f64; 2],
    decay: f64,
) -> Vec<f64> {
    let exp_table = ExpTable::get();
    // The weights live in a local array of their width while the epoch runs, so that the
    // compiler can keep them in registers instead of storing and reloading them every row.
    let (mut local, mut wide) = ([0.0f64; N], Vec::new());
    let weights = zeroed(&mut local, &mut wide, d);
    weights.copy_from_slice(&w.weights[..d]);
    let mut bias = w.bias;
    // The running sums of the iterates: off the update chain, so nearly free.
    let (mut local_sums, mut wide_sums) = ([0.0f64; N], Vec::new());
    let sums = zeroed(&mut local_sums, &mut wide_sums, d);
    let mut bias_sum = 0.0;
    let row_at = |i: usize| &x[i * d..i * d + d];
    let n = labels.len();
    let mut k = 0;
    while k < order.len() {
        // `order` is made of whole shuffled blocks (see `shuffle_blocks`). While one block is
        // visited, the rows of the next and their labels are prefetched (the first block is
        // read through once), so the shuffled visit hits the cache instead of waiting on memory
        // for every row (≈ 25 ms of a 1M × 10 epoch; the labels, on the row-to-row chain, ≈ 4
        // ms more). Only speed depends on this, not results.
        let block = order[k] / SHUFFLE_BLOCK;
        let rows = block * SHUFFLE_BLOCK..((block + 1) * SHUFFLE_BLOCK).min(n);
        if k == 0 {
            std::hint::black_box(x[rows.start * d..rows.end * d].iter().step_by(4).sum::<f64>());
            std::hint::black_box(labels[rows.clone()].iter().step_by(8).sum::<f64>());
        }
        let visit = &order[k..(k + rows.len()).min(order.len())];
        let (upcoming, upcoming_labels): (&[f64], &[f64]) = match order.get(k + visit.len()) {
            Some(&i) => {
                let b = i / SHUFFLE_BLOCK;
                let next = b * SHUFFLE_BLOCK..((b + 1) * SHUFFLE_BLOCK).min(n);
                (&x[next.start * d..next.end * d], &labels[next])
            }
            None => (&[], &[]),
        };

        // Each row's update feeds the next row's logit, so the epoch runs at the speed of that
        // chain. After the update θ' = decay·θ − g·x, the next row's logit is
        //   b' + θ'·x⁺ = (b + decay·θ·x⁺) − g·(1 + x·x⁺),
        // and both brackets can be computed before g is known. That takes the dot products off
        // the chain (≈ 30% faster), leaving exp, a division and one multiply-subtract on it.
        //
        // σ takes its exponential from a table (`ExpTable`: no call, no division of its own),
        // and the updates are multiply-adds, fused where the CPU can.
        let mut z = bias + dot_lanes::<FUSED>(weights, row_at(visit[0]));
        for (position, &i) in visit.iter().enumerate() {
            let row = row_at(i);
            prefetch(upcoming, position * d);
            prefetch(upcoming, position * d + d - 1);
            prefetch(upcoming_labels, position);
            let (ahead, overlap) = match visit.get(position + 1) {
                Some(&next) => {
                    let ahead = dot_lanes::<FUSED>(weights, row_at(next));
                    (
                        if DECAY {
                            multiply_add::<FUSED>(decay, ahead, bias)
                        } else {
                            bias + ahead
                        },
                        1.0 + dot_lanes::<FUSED>(row, row_at(next)),
                    )
                }
                None => (0.0, 0.0),
            };
            let y = labels[i];
            let step = step_of[usize::from(y == 1.0)];
            // With g = step·(σ(z) − y), the next logit ahead − g·overlap is also
            // (ahead + c·y) − c·σ(z) for c = step·overlap: both known before σ, which leaves
            // one multiply-add after σ on the chain instead of a subtraction, a multiply and
            // a multiply-add.
            let c = step * overlap;
            let beside = multiply_add::<FUSED>(c, y, ahead);
            let p = exp_table.sigmoid::<FUSED>(z);
            let g = step * (p - y);
            bias -= g;
            bias_sum += bias;
            for ((wj, &v), s) in weights.iter_mut().zip(row).zip(sums.iter_mut()) {
                *wj = multiply_add::<FUSED>(-g, v, if DECAY { *wj * decay } else { *wj });
                *s += *wj;
            }
            z = multiply_add::<FUSED>(-c, p, beside);
        }
        k += visit.len();
    }
    w.bias = bias;
    w.weights.copy_from_slice(weights);
    std::iter::once(bias_sum).chain(sums.iter().copied()).collect()
}

/// a·b as SGD's kernel takes it: four running sums of multiply-adds, lane `j % 4` taking term
/// `j`, so a width of 10 is two vector steps and a short sum, not a chain of ten. [`dot`] sums
/// the terms past the last four in series instead, and its order stays: the full passes and
/// every prediction keep their sums bit for bit.
#[inline(always)]
fn dot_lanes<const FUSED: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        lanes[j % 4] = multiply_add::<FUSED>(*x, *y, lanes[j % 4]);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// `len` zeros: in `local` when they fit, which a kernel compiled for a constant width keeps in
/// registers, else in `wide`.
#[inline(always)]
fn zeroed<'a, const N: usize>(
    local: &'a mut [f64; N],
    wide: &'a mut Vec<f64>,
    len: usize,
) -> &'a mut [f64] {
    if len <= N {
        &mut local[..len]
    } else {
        wide.resize(len, 0.0);
        wide
    }
}

/// Asks the CPU to start loading `data[at]` into the cache; does nothing past the end.
#[inline(always)]
fn prefetch(data: &[f64], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v) = data.get(at) {
        #[allow(unsafe_code)]
        // SAFETY: a prefetch is a hint that never faults and reads nothing into the program;
        // the pointer comes from a live reference anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (v as *const f64).cast(),
            );
        }
    }
}

fn minibatch_epoch(
    w: &mut Weights,
    ex: Examples<'_>,
    order: &[usize],
    batch: usize,
    lr: f64,
    l2: f64,
) {
    let d = ex.d;
    let mut grad = vec![0.0; d + 1];
    for idx in order.chunks(batch) {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for &i in idx {
            let row = &ex.x[i * d..(i + 1) * d];
            let r = ex.weight_of(i, ex.y[i]) * (sigmoid(w.logit(row) + ex.offset_of(i)) - ex.y[i]);
            grad[0] += r;
            for (g, &v) in grad[1..].iter_mut().zip(row) {
                *g += r * v;
            }
        }
        let m = idx.len() as f64;
        grad[0] /= m;
        for (g, wj) in grad[1..].iter_mut().zip(&w.weights) {
            *g = *g / m + l2 * wj;
        }
        step(w, &grad, lr);
    }
}

/// Rows per block of the epoch shuffle.
const SHUFFLE_BLOCK: usize = 256;

/// Reshuffles the visiting order for an epoch: the blocks of [`SHUFFLE_BLOCK`] consecutive
/// rows in a random order, and the rows within each block in a random order. Every row is
/// visited once, in an order drawn from the seed, but the rows of a block sit together in
/// memory, so the epoch streams through the data instead of missing the cache on every row
/// (a full random order costs ≈ 5× on 1M × 10 rows).
fn shuffle_blocks(order: &mut [usize], rng: &mut ChaCha8Rng) {
    let n = order.len();
    let mut blocks: Vec<usize> = (0..n.div_ceil(SHUFFLE_BLOCK)).collect();
    blocks.shuffle(rng);
    let mut k = 0;
    for b in blocks {
        let (start, end) = (b * SHUFFLE_BLOCK, ((b + 1) * SHUFFLE_BLOCK).min(n));
        let block = &mut order[k..k + (end - start)];
        for (slot, i) in block.iter_mut().zip(start..end) {
            *slot = i;
        }
        block.shuffle(rng);
        k += end - start;
    }
}

/// One Newton step, halved until the objective does not rise (separable data would otherwise
/// overshoot). `at` holds the pass (with Hessian) at `w` when the previous step made it.
///
/// Each candidate's pass includes its Hessian, so the accepted candidate's pass is both this
/// epoch's measurement (returned: objective and gradient at the new point) and the next step's
/// Hessian: one full pass per iteration instead of three.
fn newton_step(
    w: &mut Weights,
    ex: Examples<'_>,
    l2: f64,
    at: &mut Option<PassSums>,
) -> Option<(f64, Vec<f64>)> {
    let k = ex.d + 1;
    let n = if ex.weight_sum() > 0.0 { ex.weight_sum() } else { 1.0 };
    let sums = at.take().unwrap_or_else(|| full_pass(w, ex, true));
    let (before, grad) = objective_from(&sums, w, n, l2);
    let mut hess = vec![0.0; k * k];
    for a in 0..k {
        for b in a..k {
            let v = sums.hess[a * k + b] / n;
            hess[a * k + b] = v;
            hess[b * k + a] = v;
        }
    }
    for j in 1..k {
        hess[j * k + j] += l2;
    }
    let Some(delta) = solve_spd(&hess, &grad, k) else {
        // A singular Hessian (e.g. a constant feature with l2 = 0): fall back to a gradient step.
        step(w, &grad, 1.0);
        return None;
    };
    let mut t = 1.0;
    for _ in 0..30 {
        let mut candidate = w.clone();
        step(&mut candidate, &delta.iter().map(|v| v * t).collect::<Vec<_>>(), 1.0);
        let candidate_sums = full_pass(&candidate, ex, true);
        let (after, after_grad) = objective_from(&candidate_sums, &candidate, n, l2);
        if after <= before || !before.is_finite() {
            *w = candidate;
            *at = Some(candidate_sums);
            return Some((after, after_grad));
        }
        t *= 0.5;
    }
    None
}

/// The Hessian of the summed (not mean) log loss at `w`: (d+1)² entries, bias first, both
/// triangles filled. Its inverse is the covariance of the maximum-likelihood estimates.
pub fn hessian_sum(w: &Weights, ex: Examples<'_>) -> Vec<f64> {
    symmetric(full_pass(w, ex, true).hess, ex.d + 1)
}

/// A pass's Hessian (upper triangle) with its lower triangle filled.
fn symmetric(mut h: Vec<f64>, k: usize) -> Vec<f64> {
    for a in 0..k {
        for b in 0..a {
            h[a * k + b] = h[b * k + a];
        }
    }
    h
}

/// The smallest pivot (squared diagonal of the Cholesky factor) taken as positive: below it a
/// matrix with unit-scale entries is singular to working precision (for the Hessian: collinear
/// terms, or a constant one).
const MIN_PIVOT: f64 = 1e-14;

/// The Cholesky factorisation of a symmetric positive definite k×k matrix (row-major, both
/// triangles or the lower one filled), by faer; `None` when a pivot is not above [`MIN_PIVOT`].
fn cholesky(h: &[f64], k: usize) -> Option<faer::linalg::solvers::Llt<f64>> {
    let llt = MatRef::from_row_major_slice(h, k, k).llt(Side::Lower).ok()?;
    let l = llt.L();
    (0..k).all(|i| l[(i, i)] * l[(i, i)] > MIN_PIVOT).then_some(llt)
}

/// The inverse of a symmetric positive definite k×k matrix; `None` when it is singular (for
/// the Hessian: collinear terms).
pub fn invert_spd(h: &[f64], k: usize) -> Option<Vec<f64>> {
    // Scaled to unit diagonal first, so the singularity test does not depend on units.
    let d: Vec<f64> = (0..k).map(|i| h[i * k + i].max(0.0).sqrt()).collect();
    if d.iter().any(|&v| v == 0.0 || !v.is_finite()) {
        return None;
    }
    let scaled: Vec<f64> = (0..k * k).map(|i| h[i] / (d[i / k] * d[i % k])).collect();
    let inverse = cholesky(&scaled, k)?.inverse();
    Some((0..k * k).map(|i| inverse[(i / k, i % k)] / (d[i / k] * d[i % k])).collect())
}

/// Solves H·x = g for a symmetric positive definite H by Cholesky; `None` if it is not.
fn solve_spd(h: &[f64], g: &[f64], k: usize) -> Option<Vec<f64>> {
    let x = cholesky(h, k)?.solve(MatRef::from_column_major_slice(g, k, 1));
    Some((0..k).map(|i| x[(i, 0)]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Generator, generate};
    use proptest::prelude::*;
    use rand::Rng;

    #[test]
    fn worked_example_probability() {
        assert!((sigmoid(-10.0 + 0.2 * 80.0) - 0.99752737684).abs() < 1e-9);
    }

    /// The pass's exponential against the library's: at most one unit in the last place apart
    /// everywhere a pass calls it (e^−|z|), at random points over the whole range, near 0, where
    /// results become subnormal, where they reach 0, and at the edges of each reduction step.
    #[test]
    fn the_passes_exponential_is_the_librarys_within_one_unit_in_the_last_place() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut points: Vec<f64> = (0..2_000_000).map(|_| -746.0 * rng.random::<f64>()).collect();
        points.extend((0..200_000).map(|_| -(rng.random::<f64>() * 1e-3)));
        points.extend((0..200_000).map(|_| -700.0 - 46.0 * rng.random::<f64>()));
        points.extend((0..1077).flat_map(|k| {
            let at = -(k as f64) * std::f64::consts::LN_2;
            [
                at,
                at - 0.5 * std::f64::consts::LN_2,
                at + 0.5 * std::f64::consts::LN_2,
                at.next_up(),
                at.next_down(),
            ]
        }));
        points.extend([
            0.0,
            -0.0,
            -f64::MIN_POSITIVE,
            -1e-300,
            -5e-324,
            -708.396,
            -708.397,
            -745.133,
            -745.134,
            -746.0,
            -1e10,
        ]);
        let mut worst = (0u64, 0.0);
        for &x in points.iter().filter(|x| **x <= 0.0) {
            let (ours, library) = (exp_nonpositive(x), x.exp());
            assert!(ours >= 0.0 && ours.is_finite(), "e^{x} = {ours}");
            let apart = ours.to_bits().abs_diff(library.to_bits());
            if apart > worst.0 {
                worst = (apart, x);
            }
        }
        assert!(worst.0 <= 1, "{} units apart at x = {}", worst.0, worst.1);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert!(
            exp_nonpositive(f64::NAN).is_nan(),
            "a NaN stays a NaN, so a diverged pass is seen"
        );
    }

    /// A pass sums the log terms as the logarithm of each batch's products (per class, for
    /// the class weights). Batch by batch, against an exactly rounded sum (Neumaier's) of the
    /// textbook `log_loss_at` (ln_1p of the library's exponential) row by row, it is as close as
    /// a plain sum of those terms could be: within 64 roundings of the batch's loss (or of 1),
    /// for logits from certain to uncertain and for weighted classes.
    #[test]
    fn a_passs_loss_from_batch_products_is_the_sum_of_each_rows_log_loss() {
        let exact_sum = |terms: &mut dyn Iterator<Item = f64>| {
            let (mut sum, mut compensation) = (0.0f64, 0.0f64);
            for t in terms {
                let next = sum + t;
                compensation +=
                    if sum.abs() >= t.abs() { (sum - next) + t } else { (t - next) + sum };
                sum = next;
            }
            sum + compensation
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for (spread, class_weights) in
            [(1.0, [1.0, 1.0]), (40.0, [1.0, 1.0]), (800.0, [0.7, 2.5]), (0.01, [3.0, 0.2])]
        {
            let rows = 64 * 500;
            let x: Vec<f64> =
                (0..rows).map(|_| spread * (2.0 * rng.random::<f64>() - 1.0)).collect();
            let y: Vec<f64> =
                (0..rows).map(|_| f64::from(u8::from(rng.random::<bool>()))).collect();
            let ex = Examples::new(&x, &y, 1).with_class_weights(class_weights);
            let w = Weights { bias: 0.1, weights: vec![1.0] };
            for start in (0..rows).step_by(64) {
                let batch = start..start + 64;
                let exact =
                    exact_sum(&mut batch.clone().map(|i| {
                        ex.weight(y[i]) * log_loss_at(w.bias + w.weights[0] * x[i], y[i])
                    }));
                let pass = pass_chunk(&w, ex, batch.start, batch.end, false, Par::Seq).loss;
                let bound = 64.0 * f64::EPSILON * exact.max(1.0);
                assert!(
                    (pass - exact).abs() <= bound,
                    "spread {spread}, rows {batch:?}: {pass} vs {exact} (bound {bound:e})"
                );
            }
        }
    }

    #[test]
    fn stable_at_extreme_logits() {
        for z in [-1e308, -800.0, -40.0, 0.0, 40.0, 800.0, 1e308] {
            let p = sigmoid(z);
            assert!((0.0..=1.0).contains(&p), "sigmoid({z}) = {p}");
            for y in [0.0, 1.0] {
                let l = log_loss_at(z, y);
                assert!(l.is_finite() && l >= 0.0, "loss({z}, {y}) = {l}");
            }
        }
        assert!((logit(sigmoid(3.0)) - 3.0).abs() < 1e-12);
    }

    fn admissions(rows: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let g = Generator {
            intercept: -10.0,
            coefficients: vec![0.2],
            ranges: vec![(0.0, 100.0)],
            rows,
            seed,
        };
        let data = generate(&g);
        (data.x, data.y)
    }

    #[test]
    fn newton_recovers_the_generating_model_within_two_percent() {
        let (x, y) = admissions(100_000, 3);
        let params = TrainParams {
            solver: Solver::Newton,
            epochs: 50,
            validation_fraction: Some(0.0),
            ..TrainParams::default()
        };
        let out = fit(Examples::new(&x, &y, 1), None, &params, &AtomicBool::new(false), |_| {})
            .expect("fits");
        let (b, w) = (out.weights.bias, out.weights.weights[0]);
        assert!((b + 10.0).abs() / 10.0 < 0.02, "intercept {b}");
        assert!((w - 0.2).abs() / 0.2 < 0.02, "slope {w}");
        assert_eq!(out.stop_reason, StopReason::Converged);
    }

    /// Standardised bundled-like data, where every solver should reach newton's optimum.
    fn scaled(rows: usize) -> (Vec<f64>, Vec<f64>) {
        let (x, y) = admissions(rows, 11);
        (x.iter().map(|v| (v - 50.0) / 28.87).collect(), y)
    }

    #[test]
    fn iterative_solvers_reach_newtons_loss_within_1e3() {
        let (x, y) = scaled(2_000);
        let ex = Examples::new(&x, &y, 1);
        let cancel = AtomicBool::new(false);
        let base = TrainParams { validation_fraction: Some(0.0), ..TrainParams::default() };
        let newton =
            fit(ex, None, &TrainParams { solver: Solver::Newton, ..base.clone() }, &cancel, |_| {})
                .expect("fits");
        let optimum = mean_log_loss(&newton.weights, ex);
        for (solver, lr, epochs) in
            [(Solver::Sgd, 0.05, 200), (Solver::Minibatch, 0.5, 500), (Solver::Batch, 2.0, 3000)]
        {
            let params = TrainParams {
                solver,
                learning_rate: lr,
                epochs,
                lr_decay: if solver == Solver::Batch { 0.0 } else { 0.1 },
                ..base.clone()
            };
            let out = fit(ex, None, &params, &cancel, |_| {}).expect("fits");
            let loss = mean_log_loss(&out.weights, ex);
            assert!(
                loss - optimum < 1e-3,
                "{solver}: {loss} vs newton {optimum} ({:?})",
                out.stop_reason
            );
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // the indices are the formula's a and b
    fn a_threaded_pass_over_many_chunks_is_the_sequential_one_bit_for_bit_and_the_naive_sum() {
        // Over three chunks of 16,384 rows, so both cores take part; three features, so the
        // Hessian has off-diagonal terms.
        let (x, y) = correlated(3 * CHUNK_ROWS + 123, 3);
        let ex = Examples::new(&x, &y, 3);
        let w = Weights { bias: 0.3, weights: vec![0.5, -0.25, 1.0] };
        let threaded = full_pass(&w, ex, true);
        let (mut loss, mut grad, mut hess) = (0.0, vec![0.0; 4], vec![0.0; 16]);
        for start in (0..ex.rows()).step_by(CHUNK_ROWS) {
            let part =
                pass_chunk(&w, ex, start, (start + CHUNK_ROWS).min(ex.rows()), true, Par::Seq);
            loss += part.loss;
            grad.iter_mut().zip(&part.grad).for_each(|(t, p)| *t += p);
            hess.iter_mut().zip(&part.hess).for_each(|(t, p)| *t += p);
        }
        assert_eq!(
            threaded.loss.to_bits(),
            loss.to_bits(),
            "the same sums in the same order, whatever the cores"
        );
        assert_eq!(threaded.grad, grad);
        assert_eq!(threaded.hess, hess);
        // Against the textbook sums, one row at a time.
        let (mut loss, mut grad, mut hess) = (0.0, [0.0; 4], [[0.0; 4]; 4]);
        for (row, &yi) in x.chunks_exact(3).zip(&y) {
            let terms = [1.0, row[0], row[1], row[2]];
            let z: f64 = w.bias + w.weights.iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            loss -= yi * p.ln() + (1.0 - yi) * (1.0 - p).ln();
            for a in 0..4 {
                grad[a] += (p - yi) * terms[a];
                for b in 0..4 {
                    hess[a][b] += p * (1.0 - p) * terms[a] * terms[b];
                }
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(threaded.loss, loss), "{} vs {loss}", threaded.loss);
        for a in 0..4 {
            assert!(
                close(threaded.grad[a], grad[a]),
                "gradient {a}: {} vs {}",
                threaded.grad[a],
                grad[a]
            );
            // The upper triangle is filled.
            for b in a..4 {
                assert!(
                    close(threaded.hess[a * 4 + b], hess[a][b]),
                    "Hessian ({a},{b}): {} vs {}",
                    threaded.hess[a * 4 + b],
                    hess[a][b]
                );
            }
        }
    }

    /// The kernel compiled for FMA and AVX2 (what this machine runs) gives the same iterates
    /// and sums bit for bit as the same fused kernel compiled without those features (what an
    /// aarch64 build runs), with and without weight decay, at widths compiled for and past
    /// them. The unfused kernel, for x86-64 CPUs without FMA, is held to the textbook below.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_fma_sgd_kernel_is_the_fused_kernel_of_any_build_bit_for_bit() {
        assert!(
            cpu_has_avx2_and_fma(),
            "this test compares the FMA kernel, which this CPU cannot run"
        );
        for d in [3, 10, 17] {
            let (x, y) = correlated(3 * SHUFFLE_BLOCK + 17, d);
            let mut order: Vec<usize> = (0..y.len()).collect();
            shuffle_blocks(&mut order, &mut ChaCha8Rng::seed_from_u64(9));
            let start =
                Weights { bias: 0.1, weights: (0..d).map(|j| 0.02 * j as f64 - 0.05).collect() };
            for l2 in [0.0, 0.01] {
                let (steps, decay) = ([0.05, 0.075], 1.0 - 0.05 * l2);
                let (mut baseline, mut fma) = (start.clone(), start.clone());
                let baseline_sums = specialise_width!(const sgd_epoch_decayed<true>(d, &mut baseline, &x, &y, &order, steps, decay));
                #[allow(unsafe_code)]
                // SAFETY: asserted above that the CPU has AVX2 and FMA.
                let fma_sums = unsafe {
                    specialise_width!(const sgd_epoch_fma(d, &mut fma, &x, &y, &order, steps, decay))
                };
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(fma.bias.to_bits(), baseline.bias.to_bits(), "d = {d}, l2 = {l2}");
                assert_eq!(bits(&fma.weights), bits(&baseline.weights), "d = {d}, l2 = {l2}");
                assert_eq!(bits(&fma_sums), bits(&baseline_sums), "d = {d}, l2 = {l2}");
                assert_ne!(bits(&fma.weights), bits(&start.weights), "the epoch moved the weights");
            }
        }
    }

    /// Likewise the full pass (loss, gradient, Hessian) compiled for AVX2 and the portable one:
    /// the same operations in the same order, only in wider registers.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx2_full_pass_is_the_portable_one_bit_for_bit() {
        assert!(
            cpu_has_avx2_and_fma(),
            "this test compares the AVX2 pass, which this CPU cannot run"
        );
        for d in [1, 10, 17] {
            let (x, y) = correlated(2 * 64 + 5, d);
            let ex = Examples::new(&x, &y, d).with_class_weights([1.0, 2.5]);
            let w = Weights { bias: 0.2, weights: (0..d).map(|j| 0.3 - 0.05 * j as f64).collect() };
            for want_hess in [false, true] {
                let portable = specialise_width!(pass_chunk_kernel(
                    d,
                    &w,
                    ex,
                    0,
                    ex.rows(),
                    want_hess,
                    Par::Seq
                ));
                #[allow(unsafe_code)]
                // SAFETY: asserted above that the CPU has AVX2 and FMA.
                let avx2 = unsafe { pass_chunk_avx2(&w, ex, 0, ex.rows(), want_hess, Par::Seq) };
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(avx2.loss.to_bits(), portable.loss.to_bits(), "d = {d}");
                assert_eq!(bits(&avx2.grad), bits(&portable.grad), "d = {d}");
                assert_eq!(bits(&avx2.hess), bits(&portable.hess), "d = {d}");
                assert_eq!(avx2.certain, portable.certain);
            }
        }
    }

    /// Every width arm of the per-sample kernel — the ones compiled for 1..=16 features and the
    /// generic one past 16, as dispatched on this CPU and as the portable build runs them
    /// (unfused on x86-64) — does what the textbook rule does, one row at a time, with and
    /// without the L2 decay: the look-ahead rewrite of the logit changes only rounding.
    #[test]
    fn the_sgd_kernel_of_every_width_follows_the_textbook_rule() {
        for d in [1, 2, 7, 10, 16, 17, 23] {
            let (x, y) = correlated(1_000, d);
            let ex = Examples::new(&x, &y, d);
            let order: Vec<usize> = (0..ex.rows()).collect();
            let start = Weights { bias: 0.1, weights: (0..d).map(|j| 0.02 * j as f64).collect() };
            for (lr, l2) in [(0.05, 0.01), (0.05, 0.0)] {
                let (mut bias, mut w, mut bias_sum, mut w_sums) =
                    (start.bias, start.weights.clone(), 0.0, vec![0.0; d]);
                for &i in &order {
                    let row = &x[i * d..(i + 1) * d];
                    let z = bias + w.iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
                    let g = lr * (1.0 / (1.0 + (-z).exp()) - y[i]);
                    bias -= g;
                    bias_sum += bias;
                    for j in 0..d {
                        w[j] = w[j] * (1.0 - lr * l2) - g * row[j];
                        w_sums[j] += w[j];
                    }
                }
                let mut dispatched = start.clone();
                let dispatched_sums = sgd_epoch(&mut dispatched, ex, &order, lr, l2);
                let mut portable = start.clone();
                let (steps, decay) = ([lr, lr], 1.0 - lr * l2);
                let portable_sums = specialise_width!(const sgd_epoch_of_width(d, &mut portable, &x, &y, &order, steps, decay));
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
                for (kernel, sums, how) in [
                    (&dispatched, &dispatched_sums, "dispatched"),
                    (&portable, &portable_sums, "portable"),
                ] {
                    let at = format!("{how}, d = {d}, l2 = {l2}");
                    assert!(close(kernel.bias, bias), "{at}: bias {} vs {bias}", kernel.bias);
                    for j in 0..d {
                        assert!(
                            close(kernel.weights[j], w[j]),
                            "{at}: weight {j} {} vs {}",
                            kernel.weights[j],
                            w[j]
                        );
                        assert!(close(sums[j + 1], w_sums[j]), "{at}: the iterate sum {j}");
                    }
                    assert!(close(sums[0], bias_sum), "{at}: the bias sum");
                }
            }
        }
    }

    #[test]
    fn sgd_stops_when_its_epochs_gain_less_than_their_share_of_the_loss() {
        let (x, y) = correlated(20_000, 5);
        let params = TrainParams { solver: Solver::Sgd, ..TrainParams::default() };
        let ex = Examples::new(&x, &y, 5);
        let out = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
        let losses: Vec<f64> = out.curve.iter().map(|e| e.train_loss).collect();
        assert_eq!(out.stop_reason, StopReason::Plateau, "{} epochs", losses.len());
        assert!(losses.len() < params.epochs / 2, "{} epochs", losses.len());
        // The last `patience` epochs each fell short of the best before them by the plateau.
        let (before, window) = losses.split_at(losses.len() - params.patience);
        let best = before.iter().copied().fold(f64::INFINITY, f64::min);
        for loss in window {
            assert!(*loss >= best - PER_SAMPLE_PLATEAU * best, "{loss} against {best}");
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epochs_weights_not_the_last() {
        let (x, y) = correlated(2_000, 3);
        // A validation set that disagrees with training (its labels flipped): the validation
        // loss rises as training improves, so the best epoch is the first.
        let flipped: Vec<f64> = y[..500].iter().map(|v| 1.0 - v).collect();
        let (train, val) =
            (Examples::new(&x[1500..], &y[500..], 3), Examples::new(&x[..1500], &flipped, 3));
        let params =
            TrainParams { solver: Solver::Sgd, epochs: 100, patience: 3, ..TrainParams::default() };
        let out = fit(train, Some(val), &params, &AtomicBool::new(false), |_| {}).expect("fits");
        assert_eq!(out.stop_reason, StopReason::EarlyStopped);
        let losses: Vec<f64> = out.curve.iter().filter_map(|e| e.val_loss).collect();
        let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(
            out.curve.len(),
            1 + 3,
            "stopped after the best epoch and `patience` worse ones: {losses:?}"
        );
        assert!(best < *losses.last().unwrap_or(&f64::NAN), "{losses:?}");
        assert_eq!(
            mean_log_loss(&out.weights, val).to_bits(),
            best.to_bits(),
            "the weights are the best epoch's"
        );
    }

    /// `cd` fits a penalty's path only: it gets a light L1 penalty, the others none.
    fn penalised_for_cd(params: TrainParams) -> TrainParams {
        match params.solver {
            Solver::Cd => TrainParams { penalty: Penalty::L1, lambda: Some(0.01), ..params },
            _ => params,
        }
    }

    #[test]
    fn penalty_parameters_are_checked_together() {
        let l1 = |lambda: Option<f64>, cv: Option<usize>| TrainParams {
            penalty: Penalty::L1,
            lambda,
            cv,
            ..TrainParams::default()
        };
        assert_eq!(l1(Some(0.1), None).validate(), Ok(()));
        assert_eq!(l1(None, Some(10)).validate(), Ok(()));
        assert_eq!(l1(None, None).validate(), Err(ParamError::PenaltyNeedsLambda("l1")));
        assert_eq!(l1(Some(0.1), Some(10)).validate(), Err(ParamError::LambdaAndCv));
        assert_eq!(l1(None, Some(1)).validate(), Err(ParamError::Folds(1)));
        assert_eq!(
            l1(Some(f64::NAN), None)
                .validate()
                .map_err(|e| e.to_string())
                .err()
                .map(|e| e.contains("NaN")),
            Some(true)
        );
        assert_eq!(
            TrainParams { l2: 0.5, ..l1(Some(0.1), None) }.validate(),
            Err(ParamError::L2AndPenalty("l1"))
        );
        assert_eq!(
            TrainParams { solver: Solver::Newton, ..l1(Some(0.1), None) }.validate(),
            Err(ParamError::SolverCannotSelect(Solver::Newton))
        );
        let net = |ratio: Option<f64>| TrainParams {
            penalty: Penalty::Elasticnet,
            l1_ratio: ratio,
            lambda: Some(0.1),
            ..TrainParams::default()
        };
        assert_eq!(net(None).validate(), Err(ParamError::ElasticnetNeedsRatio));
        assert_eq!(net(Some(-0.5)).validate(), Err(ParamError::L1Ratio(-0.5)));
        assert_eq!(
            TrainParams { l1_ratio: Some(0.5), ..l1(Some(0.1), None) }.validate(),
            Err(ParamError::L1RatioNotElasticnet("l1"))
        );
        assert_eq!(
            TrainParams { lambda: Some(0.1), ..TrainParams::default() }.validate(),
            Err(ParamError::LambdaWithoutPenalty)
        );
        assert_eq!(
            TrainParams { solver: Solver::Cd, ..TrainParams::default() }.validate(),
            Err(ParamError::CdWithoutPenalty)
        );
        // `--l2 v` and `--penalty l2 --lambda v` are one objective, fitted by the same solvers.
        let ridge =
            TrainParams { penalty: Penalty::L2, lambda: Some(0.3), ..TrainParams::default() };
        assert_eq!(
            (ridge.ridge(), ridge.fits_path(), ridge.choose_solver(3).0),
            (0.3, false, Solver::Newton)
        );
        assert_eq!(l1(None, Some(5)).choose_solver(3).0, Solver::Cd);
    }

    #[test]
    fn penalty_l2_is_the_l2_objective() {
        let (x, y) = scaled(2_000);
        let ex = Examples::new(&x, &y, 1);
        let by_l2 = TrainParams { solver: Solver::Newton, l2: 0.05, ..TrainParams::default() };
        let by_penalty = TrainParams {
            solver: Solver::Newton,
            penalty: Penalty::L2,
            lambda: Some(0.05),
            ..TrainParams::default()
        };
        let a = fit(ex, None, &by_l2, &AtomicBool::new(false), |_| {}).expect("fits");
        let b = fit(ex, None, &by_penalty, &AtomicBool::new(false), |_| {}).expect("fits");
        assert_eq!(a.weights, b.weights);
        // Coordinate descent on the same objective reaches the same optimum.
        let by_cd = TrainParams { solver: Solver::Cd, ..by_penalty };
        let c = fit(ex, None, &by_cd, &AtomicBool::new(false), |_| {}).expect("fits");
        assert!(
            (c.weights.weights[0] - a.weights.weights[0]).abs() < 1e-9,
            "{:?} vs {:?}",
            c.weights,
            a.weights
        );
        assert!(
            (c.weights.bias - a.weights.bias).abs() < 1e-9,
            "{:?} vs {:?}",
            c.weights,
            a.weights
        );
    }

    #[test]
    fn same_seed_same_model_bit_for_bit() {
        let (x, y) = scaled(3_000);
        let ex = Examples::new(&x, &y, 1);
        for solver in Solver::ALL {
            let params =
                penalised_for_cd(TrainParams { solver, epochs: 20, ..TrainParams::default() });
            let a = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
            let b = fit(ex, None, &params, &AtomicBool::new(false), |_| {}).expect("fits");
            assert_eq!(a.weights.bias.to_bits(), b.weights.bias.to_bits(), "{solver}");
            assert_eq!(a.weights.weights[0].to_bits(), b.weights.weights[0].to_bits(), "{solver}");
        }
    }

    #[test]
    fn one_event_per_epoch_and_cancellation_between_epochs() {
        let (x, y) = scaled(500);
        let ex = Examples::new(&x, &y, 1);
        let cancel = AtomicBool::new(false);
        let params =
            TrainParams { solver: Solver::Sgd, epochs: 7, patience: 0, ..TrainParams::default() };
        let mut seen = Vec::new();
        let out = fit(ex, Some(ex), &params, &cancel, |e| seen.push(e.epoch)).expect("fits");
        assert_eq!(seen, (1..=7).collect::<Vec<_>>());
        assert_eq!(out.stop_reason, StopReason::MaxEpochs);
        assert!(out.curve.iter().all(|e| e.val_loss.is_some()));
        let out = fit(ex, None, &params, &cancel, |e| {
            if e.epoch == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        })
        .expect("fits");
        assert_eq!((out.stop_reason, out.curve.len()), (StopReason::Cancelled, 3));
        // Epoch 4 was trained while epoch 3 was measured; the cancelled fit discards it.
        let three = fit(
            ex,
            None,
            &TrainParams { epochs: 3, ..params.clone() },
            &AtomicBool::new(false),
            |_| {},
        )
        .expect("fits");
        assert_eq!(out.weights, three.weights);
    }

    /// A person's stop keeps the best epoch so far: the lowest validation loss, whose weights
    /// the outcome holds, not the epoch the stop fell on. The training labels follow a steep
    /// curve and the validation labels a gentle one, so the validation loss falls while the
    /// slope grows towards the gentle one's, then rises.
    #[test]
    fn a_cancelled_fit_returns_its_best_epoch_so_far() {
        let n = 400;
        let x: Vec<f64> = (0..n).map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64).collect();
        let draw = |slope: f64, salt: f64| -> Vec<f64> {
            let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
            x.iter()
                .enumerate()
                .map(|(i, &v)| {
                    if ((i as f64 * 0.618_034 + salt) % 1.0) < sigmoid(slope * v) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let (train_y, val_y) = (draw(6.0, 0.0), draw(0.5, 0.31));
        let (train, val) = (Examples::new(&x, &train_y, 1), Examples::new(&x, &val_y, 1));
        for (solver, learning_rate) in [(Solver::Sgd, 0.05), (Solver::Batch, 4.0)] {
            let cancel = AtomicBool::new(false);
            // No patience: nothing stops the fit but the person, and the best epoch is still kept.
            let params = TrainParams {
                solver,
                epochs: 1000,
                patience: 0,
                tolerance: 0.0,
                learning_rate,
                ..TrainParams::default()
            };
            let out = fit(train, Some(val), &params, &cancel, |e| {
                if e.epoch == 60 {
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .expect("fits");
            assert_eq!((out.stop_reason, out.curve.len()), (StopReason::Cancelled, 60), "{solver}");
            let losses: Vec<f64> =
                out.curve.iter().map(|e| e.val_loss.expect("a validation loss")).collect();
            let best =
                (0..losses.len()).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).expect("epochs")
                    + 1;
            assert!(
                best < 60,
                "{solver}: the validation loss should turn up before the stop: {losses:?}"
            );
            assert_eq!(out.kept_epoch, Some(best), "{solver}");
            assert_eq!(
                mean_log_loss(&out.weights, val),
                losses[best - 1],
                "{solver}: the weights are epoch {best}'s"
            );
        }
    }

    #[test]
    fn stopping_discards_the_epoch_trained_ahead() {
        let (x, y) = scaled(2_000);
        let ex = Examples::new(&x, &y, 1);
        let cancel = AtomicBool::new(false);
        for solver in [Solver::Sgd, Solver::Minibatch] {
            // A loose tolerance makes the plateau rule stop well before the epoch limit.
            let params = TrainParams {
                solver,
                epochs: 200,
                patience: 2,
                tolerance: 1e-3,
                validation_fraction: Some(0.0),
                ..TrainParams::default()
            };
            let stopped = fit(ex, None, &params, &cancel, |_| {}).expect("fits");
            assert!(
                matches!(stopped.stop_reason, StopReason::Plateau | StopReason::Converged),
                "{solver}: {:?}",
                stopped.stop_reason
            );
            let epochs = stopped.curve.len();
            assert!(epochs < 200, "{solver}");
            let limited = TrainParams { epochs, patience: 0, ..params };
            let same = fit(ex, None, &limited, &cancel, |_| {}).expect("fits");
            let expected = if stopped.stop_reason == StopReason::Converged {
                StopReason::Converged
            } else {
                StopReason::MaxEpochs
            };
            assert_eq!(same.stop_reason, expected, "{solver}");
            assert_eq!(
                stopped.weights, same.weights,
                "{solver}: the weights are those of the last reported epoch"
            );
            let losses = |curve: &[EpochEvent]| {
                curve.iter().map(|e| (e.train_loss, e.grad_norm)).collect::<Vec<_>>()
            };
            assert_eq!(losses(&stopped.curve), losses(&same.curve), "{solver}");
        }
    }

    #[test]
    fn lbfgs_reaches_newtons_optimum_to_1e_9() {
        // Correlated terms, with and without a penalty: the estimates agree with newton's to
        // far below their standard errors, and the objective to 1e-9 of its value.
        for (rows, d, l2) in [(3_000, 12, 0.0), (2_000, 40, 0.0), (2_000, 40, 0.01)] {
            let (x, y) = correlated(rows, d);
            let ex = Examples::new(&x, &y, d);
            let cancel = AtomicBool::new(false);
            let base = TrainParams {
                l2,
                epochs: 1000,
                validation_fraction: Some(0.0),
                ..TrainParams::default()
            };
            let newton = fit(
                ex,
                None,
                &TrainParams { solver: Solver::Newton, ..base.clone() },
                &cancel,
                |_| {},
            )
            .expect("fits");
            let lbfgs = fit(
                ex,
                None,
                &TrainParams { solver: Solver::Lbfgs, ..base.clone() },
                &cancel,
                |_| {},
            )
            .expect("fits");
            assert_eq!(lbfgs.stop_reason, StopReason::Converged, "{rows}×{d} l2 {l2}");
            let (at_newton, _) = objective(&newton.weights, ex, l2);
            let (at_lbfgs, _) = objective(&lbfgs.weights, ex, l2);
            assert!(
                (at_lbfgs - at_newton).abs() <= 1e-9 * at_newton,
                "{rows}×{d} l2 {l2}: {at_lbfgs} vs {at_newton}"
            );
            for (a, b) in lbfgs.weights.weights.iter().zip(&newton.weights.weights) {
                assert!((a - b).abs() < 1e-5, "{rows}×{d} l2 {l2}: {a} vs {b}");
            }
            // One event per iteration, the objective never rising.
            let losses: Vec<f64> = lbfgs.curve.iter().map(|e| e.train_loss).collect();
            assert!(losses.windows(2).all(|p| p[1] <= p[0] + 1e-15 || l2 > 0.0), "{losses:?}");
        }
    }

    #[test]
    fn unpenalised_lbfgs_ends_by_newton_with_the_hessian_at_its_weights() {
        let (x, y) = correlated(3_000, 40);
        let ex = Examples::new(&x, &y, 40);
        let cancel = AtomicBool::new(false);
        let params = |solver, l2| TrainParams {
            solver,
            l2,
            epochs: 1000,
            validation_fraction: Some(0.0),
            ..TrainParams::default()
        };
        let newton = fit(ex, None, &params(Solver::Newton, 0.0), &cancel, |_| {}).expect("fits");
        let lbfgs = fit(ex, None, &params(Solver::Lbfgs, 0.0), &cancel, |_| {}).expect("fits");
        assert_eq!(lbfgs.stop_reason, StopReason::Converged);
        // The last Hessian is newton's own at the returned weights, bit for bit.
        assert_eq!(lbfgs.hessian_sum, Some(hessian_sum(&lbfgs.weights, ex)));
        let (at_newton, _) = objective(&newton.weights, ex, 0.0);
        let (at_lbfgs, _) = objective(&lbfgs.weights, ex, 0.0);
        assert!((at_lbfgs - at_newton).abs() <= 1e-12 * at_newton, "{at_lbfgs} vs {at_newton}");
        for (a, b) in lbfgs.weights.weights.iter().zip(&newton.weights.weights) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // It turned to Newton's steps: the last epochs' gradient fell by orders at a time.
        let grads: Vec<f64> = lbfgs.curve.iter().map(|e| e.grad_norm).collect();
        let before = grads[grads.len() - 2];
        assert!(before > 1e-7 && before <= 1e-4, "{grads:?}");
        // A penalised fit's standard errors are not given: no Hessian is made for them.
        let ridge = fit(ex, None, &params(Solver::Lbfgs, 0.01), &cancel, |_| {}).expect("fits");
        assert_eq!((ridge.stop_reason, ridge.hessian_sum), (StopReason::Converged, None));
    }

    /// Rows (x, y) with integer frequency weights (0 to 3), and the rows repeated that often.
    type WeightedRows = (Vec<f64>, Vec<f64>, Vec<f64>);

    /// Rows with integer frequency weights (0 to 3) and their copy with each row repeated that
    /// many times.
    fn weighted_and_repeated(rows: usize, d: usize) -> (WeightedRows, (Vec<f64>, Vec<f64>)) {
        let (x, y) = correlated(rows, d);
        let weights: Vec<f64> = (0..rows).map(|i| ((i * 7 + 3) % 4) as f64).collect();
        let (mut rx, mut ry) = (Vec::new(), Vec::new());
        for (i, &w) in weights.iter().enumerate() {
            for _ in 0..w as usize {
                rx.extend_from_slice(&x[i * d..(i + 1) * d]);
                ry.push(y[i]);
            }
        }
        ((x, y, weights), (rx, ry))
    }

    #[test]
    fn every_solver_fits_frequency_weights_as_the_rows_repeated() {
        let d = 6;
        let ((x, y, weights), (rx, ry)) = weighted_and_repeated(600, d);
        let weighted = Examples::new(&x, &y, d).with_rows(Some(&weights), None);
        let repeated = Examples::new(&rx, &ry, d);
        let cancel = AtomicBool::new(false);
        let base = TrainParams {
            epochs: 2000,
            tolerance: 1e-9,
            validation_fraction: Some(0.0),
            ..TrainParams::default()
        };
        let exact = fit(
            repeated,
            None,
            &TrainParams { solver: Solver::Newton, ..base.clone() },
            &cancel,
            |_| {},
        )
        .expect("fits");
        let (optimum, _) = objective(&exact.weights, repeated, 0.0);
        for solver in [Solver::Newton, Solver::Lbfgs, Solver::Saga] {
            let out = fit(weighted, None, &TrainParams { solver, ..base.clone() }, &cancel, |_| {})
                .expect("fits");
            let (at, _) = objective(&out.weights, weighted, 0.0);
            assert!(
                (at - optimum).abs() <= 1e-9 * optimum,
                "{solver}: {at} vs the repeated rows' {optimum} ({:?} after {})",
                out.stop_reason,
                out.curve.len()
            );
            // The same optimum, reached by sums in another order: on these correlated terms the
            // Hessian's conditioning leaves ≈ 3e-10 between the two (tests/toolkit.rs holds
            // Spector's to 1e-10).
            if solver == Solver::Newton {
                for (a, b) in out.weights.weights.iter().zip(&exact.weights.weights) {
                    assert!((a - b).abs() <= 1e-8 * b.abs().max(1.0), "newton: {a} vs {b}");
                }
            }
        }
        // The per-sample solvers without a stop of their own come close, as on unweighted rows.
        for solver in [Solver::Sgd, Solver::Minibatch] {
            let params = TrainParams { solver, epochs: 200, learning_rate: 0.05, ..base.clone() };
            let out = fit(weighted, None, &params, &cancel, |_| {}).expect("fits");
            let (at, _) = objective(&out.weights, weighted, 0.0);
            assert!(at - optimum <= 2e-3 * optimum, "{solver}: {at} vs {optimum}");
        }
        // The lasso's path: the same λ and coefficients as on the repeated rows.
        let lasso = TrainParams {
            solver: Solver::Cd,
            penalty: Penalty::L1,
            lambda: Some(0.01),
            ..base.clone()
        };
        let on_weights = fit(weighted, None, &lasso, &cancel, |_| {}).expect("fits");
        let on_repeats = fit(repeated, None, &lasso, &cancel, |_| {}).expect("fits");
        for (a, b) in on_weights.weights.weights.iter().zip(&on_repeats.weights.weights) {
            assert!((a - b).abs() <= 1e-9, "cd: {a} vs {b}");
        }
        // Cross-validated, each copy of a row in its row's fold: the same curve.
        let folds: Vec<f64> = (0..y.len()).map(|i| (i % 3) as f64).collect();
        let repeated_folds: Vec<f64> = weights
            .iter()
            .zip(&folds)
            .flat_map(|(w, f)| std::iter::repeat_n(*f, *w as usize))
            .collect();
        let cv = TrainParams { lambda: None, cv: Some(3), ..lasso };
        let on_weights =
            fit(weighted.with_folds(Some(&folds)), None, &cv, &cancel, |_| {}).expect("fits");
        let on_repeats =
            fit(repeated.with_folds(Some(&repeated_folds)), None, &cv, &cancel, |_| {})
                .expect("fits");
        let (a, b) =
            (on_weights.cross_validation.expect("cv"), on_repeats.cross_validation.expect("cv"));
        assert_eq!(a.lambdas.len(), b.lambdas.len());
        for (a, b) in a.mean_deviance.iter().zip(&b.mean_deviance) {
            assert!((a - b).abs() <= 1e-9 * b, "cv: {a} vs {b}");
        }
    }

    #[test]
    fn an_offset_is_a_term_whose_coefficient_is_held_at_one() {
        // Fitting with the offset o is fitting with o as a term whose coefficient stays 1: the
        // gradient of every other estimate vanishes at the offset fit's optimum, with o's term in
        // the logit.
        let d = 4;
        let (x, y) = correlated(800, d);
        let offset: Vec<f64> = (0..800).map(|i| ((i % 13) as f64 - 6.0) / 10.0).collect();
        let ex = Examples::new(&x, &y, d).with_rows(None, Some(&offset));
        let cancel = AtomicBool::new(false);
        let base = TrainParams {
            epochs: 3000,
            tolerance: 1e-10,
            validation_fraction: Some(0.0),
            ..TrainParams::default()
        };
        let newton =
            fit(ex, None, &TrainParams { solver: Solver::Newton, ..base.clone() }, &cancel, |_| {})
                .expect("fits");
        let with_term: Vec<f64> = x
            .chunks_exact(d)
            .zip(&offset)
            .flat_map(|(row, o)| row.iter().copied().chain([*o]))
            .collect();
        let held = Weights {
            bias: newton.weights.bias,
            weights: newton.weights.weights.iter().copied().chain([1.0]).collect(),
        };
        let (_, grad) = objective(&held, Examples::new(&with_term, &y, d + 1), 0.0);
        assert!(grad[..=d].iter().all(|g| g.abs() < 1e-12), "{grad:?}");
        for solver in [Solver::Lbfgs, Solver::Saga] {
            let params = TrainParams { solver, ..base.clone() };
            let out = fit(ex, None, &params, &cancel, |_| {}).expect("fits");
            let (at, _) = objective(&out.weights, ex, 0.0);
            let (optimum, _) = objective(&newton.weights, ex, 0.0);
            assert!((at - optimum).abs() <= 1e-8 * optimum, "{solver}: {at} vs {optimum}");
        }
        // The path with an offset: ridge at a small λ by cd reaches newton's ridge optimum (its
        // coordinates stop on their moves, 2e-8 from it here, which the objective sees squared).
        let ridge = TrainParams { penalty: Penalty::L2, lambda: Some(1e-3), ..base };
        let by_newton = fit(
            ex,
            None,
            &TrainParams { solver: Solver::Newton, ..ridge.clone() },
            &cancel,
            |_| {},
        )
        .expect("fits");
        let by_path = fit(ex, None, &TrainParams { solver: Solver::Cd, ..ridge }, &cancel, |_| {})
            .expect("fits");
        let (at_path, _) = objective(&by_path.weights, ex, 1e-3);
        let (optimum, _) = objective(&by_newton.weights, ex, 1e-3);
        assert!((at_path - optimum).abs() <= 1e-13 * optimum, "cd {at_path} vs newton {optimum}");
        for (a, b) in by_path.weights.weights.iter().zip(&by_newton.weights.weights) {
            assert!((a - b).abs() <= 1e-7 * b.abs().max(1.0), "cd {a} vs newton {b}");
        }
    }

    #[test]
    fn saga_reaches_newtons_optimum_where_sgd_wanders() {
        // Correlated terms (the hard case for the seed's rule), with and without a penalty, and
        // with class weights: SAGA's gradient falls below the tolerance, at newton's optimum.
        for (rows, d, l2, class_weights) in [
            (3_000, 5, 0.0, [1.0, 1.0]),
            (2_000, 12, 0.01, [1.0, 1.0]),
            (2_000, 5, 0.0, [0.7, 1.6]),
        ] {
            let (x, y) = correlated(rows, d);
            let ex = Examples::new(&x, &y, d).with_class_weights(class_weights);
            let cancel = AtomicBool::new(false);
            let base = TrainParams {
                l2,
                epochs: 1000,
                validation_fraction: Some(0.0),
                ..TrainParams::default()
            };
            let newton = fit(
                ex,
                None,
                &TrainParams { solver: Solver::Newton, ..base.clone() },
                &cancel,
                |_| {},
            )
            .expect("fits");
            let saga = fit(
                ex,
                None,
                &TrainParams { solver: Solver::Saga, ..base.clone() },
                &cancel,
                |_| {},
            )
            .expect("fits");
            assert_eq!(
                saga.stop_reason,
                StopReason::Converged,
                "{rows}×{d} l2 {l2} after {} epochs",
                saga.curve.len()
            );
            let (at_newton, _) = objective(&newton.weights, ex, l2);
            let (at_saga, _) = objective(&saga.weights, ex, l2);
            assert!(
                (at_saga - at_newton).abs() <= 1e-10 * at_newton,
                "{rows}×{d} l2 {l2}: {at_saga} vs {at_newton}"
            );
            for (a, b) in saga.weights.weights.iter().zip(&newton.weights.weights) {
                assert!((a - b).abs() < 1e-5, "{rows}×{d} l2 {l2}: {a} vs {b}");
            }
            // The same seed, the same fit, bit for bit.
            let again =
                fit(ex, None, &TrainParams { solver: Solver::Saga, ..base }, &cancel, |_| {})
                    .expect("fits");
            assert_eq!(again.weights, saga.weights);
        }
    }

    #[test]
    fn auto_runs_newton_for_few_terms_and_lbfgs_for_many_and_says_why() {
        let (solver, choice) = Solver::Auto.choose(1);
        assert_eq!(
            (solver, choice.map(|c| c.describe())),
            (Solver::Newton, Some("auto → newton: 1 term".to_string()))
        );
        let (solver, choice) = Solver::Auto.choose(AUTO_NEWTON_TERMS - 1);
        assert_eq!(solver, Solver::Newton);
        assert_eq!(choice.map(|c| c.reason), Some(format!("{} terms", AUTO_NEWTON_TERMS - 1)));
        let (solver, choice) = Solver::Auto.choose(AUTO_NEWTON_TERMS);
        assert_eq!(solver, Solver::Lbfgs);
        assert!(choice.is_some_and(|c| c.describe().starts_with("auto → lbfgs: ")));
        // A named solver is the one that runs, with no choice to report.
        assert_eq!(Solver::Sgd.choose(5_000), (Solver::Sgd, None));
        // auto's fit is newton's, bit for bit.
        let (x, y) = correlated(1_000, 4);
        let ex = Examples::new(&x, &y, 4);
        let cancel = AtomicBool::new(false);
        let auto = fit(ex, None, &TrainParams::default(), &cancel, |_| {}).expect("fits");
        let newton = fit(
            ex,
            None,
            &TrainParams { solver: Solver::Newton, ..TrainParams::default() },
            &cancel,
            |_| {},
        )
        .expect("fits");
        assert_eq!(without_times(auto), without_times(newton));
    }

    /// A fit with its curve's clock readings zeroed: two runs of one fit differ only there.
    fn without_times(mut out: FitOutcome) -> FitOutcome {
        out.curve.iter_mut().for_each(|e| e.elapsed_ms = 0.0);
        out
    }

    /// Standardised, correlated features: the hard case for per-sample SGD.
    fn correlated(rows: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
        let g = Generator {
            intercept: 0.5,
            coefficients: (0..d).map(|j| 1.0 - 0.1 * j as f64).collect(),
            ranges: vec![(-1.0, 1.0); d],
            rows,
            seed: 5,
        };
        let data = generate(&g);
        // Mix the columns so they correlate (x'_j = x_j + 0.3·x_0), then standardise.
        let mut x = data.x.clone();
        for row in x.chunks_exact_mut(d) {
            let first = row[0];
            for v in &mut row[1..] {
                *v += 0.3 * first;
            }
        }
        for j in 0..d {
            let column: Vec<f64> = x.iter().skip(j).step_by(d).copied().collect();
            let mean = column.iter().sum::<f64>() / rows as f64;
            let sd = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64).sqrt();
            for v in x.iter_mut().skip(j).step_by(d) {
                *v = (*v - mean) / sd;
            }
        }
        (x, data.y)
    }

    #[test]
    fn averaged_sgd_with_default_steps_reaches_the_exact_optimum_on_correlated_features() {
        // Within 0.1% of the optimum in 100 epochs with 5 features; 20 features with 2,000 noisy
        // rows take longer (0.6% above at 100 epochs, 0.13% at 400).
        for (rows, d, epochs, within) in [(300, 5, 100, 1e-3), (2_000, 20, 400, 2e-3)] {
            let (x, y) = correlated(rows, d);
            let ex = Examples::new(&x, &y, d);
            let cancel = AtomicBool::new(false);
            let base = TrainParams {
                solver: Solver::Sgd,
                validation_fraction: Some(0.0),
                epochs,
                ..TrainParams::default()
            };
            let newton = fit(
                ex,
                None,
                &TrainParams { solver: Solver::Newton, epochs: 50, ..base.clone() },
                &cancel,
                |_| {},
            )
            .expect("fits");
            let optimum = mean_log_loss(&newton.weights, ex);
            let sgd = fit(ex, None, &base, &cancel, |_| {}).expect("fits");
            let loss = mean_log_loss(&sgd.weights, ex);
            assert!(
                (loss - optimum) / optimum < within,
                "{rows}×{d}: {loss} vs the optimum {optimum} ({:?})",
                sgd.stop_reason
            );
            // The last iterate alone is further off: the average is what gets there.
            let mut last = Weights::zeros(d);
            let order: Vec<usize> = (0..rows).collect();
            for epoch in 1..=sgd.curve.len() {
                let lr = base.learning_rate / (1.0 + base.lr_decay * (epoch - 1) as f64).sqrt();
                sgd_epoch(&mut last, ex, &order, lr, 0.0);
            }
            assert!(mean_log_loss(&last, ex) > loss, "{rows}×{d}: averaging should help");
        }
    }

    #[test]
    fn iterate_average_covers_the_tail_from_a_power_of_two() {
        assert_eq!(
            (1..=9).map(IterateAverage::window_start).collect::<Vec<_>>(),
            vec![1, 1, 2, 2, 2, 2, 4, 4, 4]
        );
        assert_eq!(IterateAverage::window_start(100), 32);
        let mut average = IterateAverage::new(true);
        // Epoch e's iterates all equal e. Epochs 2..=9 are local epochs 1..=8: the average is
        // over local 4..=8, epochs 5..=9, so 7.
        for epoch in 1..=9 {
            average.add_epoch(epoch, &[epoch as f64 * 10.0], 10);
        }
        assert_eq!(average.weights(&Weights::zeros(0)).bias, 7.0);
        average.restart(10, &Weights::zeros(0));
        assert_eq!(
            average.weights(&Weights { bias: -1.0, weights: Vec::new() }).bias,
            7.0,
            "the old average, held until the new has an epoch"
        );
        average.add_epoch(10, &[1000.0], 10);
        assert_eq!(average.weights(&Weights::zeros(0)).bias, 100.0);
    }

    #[test]
    fn refuses_bad_params() {
        let bad = TrainParams { learning_rate: f64::NAN, ..TrainParams::default() };
        assert!(matches!(bad.validate(), Err(ParamError::LearningRate(_))));
        assert!(matches!(
            TrainParams { epochs: 0, ..TrainParams::default() }.validate(),
            Err(ParamError::Epochs(0))
        ));
        assert!(matches!(
            TrainParams { l2: -1.0, ..TrainParams::default() }.validate(),
            Err(ParamError::L2(_))
        ));
    }

    #[test]
    fn separable_data_stays_finite() {
        let x = vec![-2.0, -1.0, 1.0, 2.0];
        let y = vec![0.0, 0.0, 1.0, 1.0];
        for solver in Solver::ALL {
            let params = TrainParams {
                solver,
                epochs: 100,
                learning_rate: 1.0,
                validation_fraction: Some(0.0),
                ..TrainParams::default()
            };
            let params = penalised_for_cd(params);
            let out = fit(Examples::new(&x, &y, 1), None, &params, &AtomicBool::new(false), |_| {})
                .expect("fits");
            assert!(out.weights.bias.is_finite() && out.weights.weights[0].is_finite(), "{solver}");
            assert!(out.curve.iter().all(|e| e.train_loss.is_finite()), "{solver}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the data (a generating model of up to 6 terms, 60 to 400 rows, any seed):
        /// `auto` is newton's fit, and L-BFGS, the solver `auto` takes for many terms, reaches
        /// the same optimum. Separated draws (no finite optimum) are left out.
        #[test]
        fn auto_newton_and_lbfgs_agree(
            d in 1usize..=6, rows in 60usize..400, seed in 0u64..1_000_000, scale in 0.2f64..2.0,
        ) {
            let g = Generator {
                intercept: 0.3,
                coefficients: (0..d).map(|j| scale * (1.0 - 0.3 * j as f64)).collect(),
                ranges: vec![(-1.0, 1.0); d],
                rows,
                seed,
            };
            let data = generate(&g);
            let ex = Examples::new(&data.x, &data.y, d);
            let cancel = AtomicBool::new(false);
            let newton = fit(ex, None, &TrainParams { solver: Solver::Newton, ..TrainParams::default() }, &cancel, |_| {}).expect("fits");
            prop_assume!(newton.certain_rows == Some(0) && newton.stop_reason == StopReason::Converged);
            let auto = fit(ex, None, &TrainParams::default(), &cancel, |_| {}).expect("fits");
            prop_assert_eq!(without_times(auto), without_times(newton.clone()));
            let lbfgs = fit(ex, None, &TrainParams { solver: Solver::Lbfgs, ..TrainParams::default() }, &cancel, |_| {}).expect("fits");
            let (at_newton, _) = objective(&newton.weights, ex, 0.0);
            let (at_lbfgs, _) = objective(&lbfgs.weights, ex, 0.0);
            prop_assert!((at_lbfgs - at_newton).abs() <= 1e-9 * at_newton, "{} vs {} ({:?})", at_lbfgs, at_newton, lbfgs.stop_reason);
        }
    }

    proptest! {
        #[test]
        fn gradient_matches_finite_differences(
            b in -3.0f64..3.0, w0 in -3.0f64..3.0, w1 in -3.0f64..3.0, l2 in 0.0f64..1.0,
            rows in proptest::collection::vec((-3.0f64..3.0, -3.0f64..3.0, proptest::bool::ANY), 2..40),
        ) {
            let x: Vec<f64> = rows.iter().flat_map(|r| [r.0, r.1]).collect();
            let y: Vec<f64> = rows.iter().map(|r| f64::from(u8::from(r.2))).collect();
            let ex = Examples::new(&x, &y, 2);
            let w = Weights { bias: b, weights: vec![w0, w1] };
            let (_, grad) = objective(&w, ex, l2);
            let h = 1e-6;
            for (k, analytic) in grad.iter().enumerate() {
                let mut plus = w.clone();
                let mut minus = w.clone();
                if k == 0 { plus.bias += h; minus.bias -= h; } else { plus.weights[k - 1] += h; minus.weights[k - 1] -= h; }
                let numeric = (objective(&plus, ex, l2).0 - objective(&minus, ex, l2).0) / (2.0 * h);
                prop_assert!((numeric - analytic).abs() < 1e-6, "k={} numeric={} analytic={}", k, numeric, analytic);
            }
        }
    }
}
