//! A sweep from the keyboard: [`SweepForm`] makes a small grid of training parameters
//! (solvers × learning rates × L2 penalties), [`Sweep`] follows its members as they train —
//! as many at once as the machine has cores, each a whole run through the services that
//! registers a version without moving an alias — and ranks them by validation loss, so the
//! best can be promoted with one key.

use crate::pipeline::RunReport;
use logitflow_core::logistic::{DEFAULT_VALIDATION_FRACTION, Solver, StopReason, TrainParams};

/// The most members a sweep takes: a grid is for a handful of choices, not a search.
pub const MAX_MEMBERS: usize = 24;

/// The grid's three lists, as typed (comma-separated).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepForm {
    /// Solvers, learning rates, L2 penalties.
    pub fields: [String; 3],
    pub selected: usize,
    pub error: Option<String>,
}

impl SweepForm {
    pub const LABELS: [&'static str; 3] = ["solvers", "learning rates", "L2 penalties"];

    /// A first grid around the current parameters: their solver (the seed's sgd when theirs
    /// takes no learning rate, as auto's choices do: the rates are what a sweep varies), three
    /// learning rates about theirs, and three penalties.
    pub fn around(params: &TrainParams) -> SweepForm {
        let lr = params.learning_rate;
        let solver = if params.solver.uses_learning_rate() { params.solver } else { Solver::Sgd };
        SweepForm {
            fields: [
                solver.to_string(),
                format!("{},{},{}", lr / 2.0, lr, lr * 2.0),
                "0,0.001,0.01".to_string(),
            ],
            selected: 0,
            error: None,
        }
    }

    /// Every combination of the lists, on top of `base` (epochs, patience and the rest), each
    /// one checked; or what is wrong, naming the list.
    pub fn grid(&self, base: &TrainParams) -> Result<Vec<TrainParams>, String> {
        let items = |i: usize| -> Vec<&str> {
            self.fields[i].split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
        };
        let solvers = items(0)
            .into_iter()
            .map(|s| {
                Solver::ALL
                    .into_iter()
                    .find(|solver| solver.to_string() == s)
                    .ok_or(format!("solvers: {s:?} is none of sgd, minibatch, batch, newton"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let numbers = |i: usize| -> Result<Vec<f64>, String> {
            items(i)
                .into_iter()
                .map(|s| {
                    s.parse::<f64>()
                        .map_err(|_| format!("{}: {s:?} is not a number", Self::LABELS[i]))
                })
                .collect()
        };
        let (rates, penalties) = (numbers(1)?, numbers(2)?);
        if solvers.is_empty() || rates.is_empty() || penalties.is_empty() {
            return Err("each list needs at least one value".into());
        }
        // newton takes no learning rate: its members differ by penalty only, or the sweep would
        // fit the same model once per rate.
        let rates_of =
            |solver: Solver| if solver.uses_learning_rate() { &rates[..] } else { &rates[..1] };
        let count: usize = solvers.iter().map(|&s| rates_of(s).len() * penalties.len()).sum();
        if count > MAX_MEMBERS {
            return Err(format!("{count} combinations; a sweep takes at most {MAX_MEMBERS}"));
        }
        // One measure for every member: the loss on the same validation rows (the split is
        // seeded), which the exact solvers would otherwise not hold out, so their training
        // loss was ranked against sgd's validation loss.
        let validation_fraction =
            Some(base.validation_fraction.unwrap_or(DEFAULT_VALIDATION_FRACTION));
        let mut grid = Vec::with_capacity(count);
        for &solver in &solvers {
            for &learning_rate in rates_of(solver) {
                for &l2 in &penalties {
                    let params = TrainParams {
                        solver,
                        learning_rate,
                        l2,
                        validation_fraction,
                        ..base.clone()
                    };
                    params.validate().map_err(|e| e.to_string())?;
                    grid.push(params);
                }
            }
        }
        Ok(grid)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MemberState {
    Waiting,
    Training,
    Done { version: u32, test_log_loss: f64 },
    Failed(String),
}

/// One member of a sweep: its parameters, its curve as it grows (the validation loss, or the
/// training loss of a fit without validation rows), and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub params: TrainParams,
    pub curve: Vec<(f64, f64)>,
    pub validated: bool,
    pub state: MemberState,
    /// The run's report, once it has finished.
    pub report: Option<Box<RunReport>>,
}

impl Member {
    /// The lowest loss of its curve.
    pub fn best_loss(&self) -> Option<f64> {
        self.curve.iter().map(|p| p.1).min_by(f64::total_cmp)
    }

    /// The loss of the model it keeps, what the sweep ranks by: the best epoch's where the fit
    /// keeps that one (an early stop, a cancel), else its last epoch's (newton's is the optimum
    /// of the training rows, whatever its validation loss did on the way).
    pub fn kept_loss(&self) -> Option<f64> {
        let keeps_best = self.report.as_ref().is_some_and(|r| {
            matches!(r.stop_reason, StopReason::EarlyStopped | StopReason::Cancelled)
        });
        if keeps_best { self.best_loss() } else { self.curve.last().map(|p| p.1) }
    }

    /// A few words for its parameters: "sgd lr 0.1 l2 0.001".
    pub fn describe(&self) -> String {
        format!("{} lr {} l2 {}", self.params.solver, self.params.learning_rate, self.params.l2)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub members: Vec<Member>,
}

impl Sweep {
    pub fn new(grid: Vec<TrainParams>) -> Sweep {
        Sweep {
            members: grid
                .into_iter()
                .map(|params| Member {
                    params,
                    curve: Vec::new(),
                    validated: false,
                    state: MemberState::Waiting,
                    report: None,
                })
                .collect(),
        }
    }

    pub fn running(&self) -> bool {
        self.members.iter().any(|m| matches!(m.state, MemberState::Waiting | MemberState::Training))
    }

    /// One epoch of member `i`.
    pub fn epoch(&mut self, i: usize, epoch: usize, train_loss: f64, val_loss: Option<f64>) {
        let Some(member) = self.members.get_mut(i) else { return };
        member.state = MemberState::Training;
        // A validation curve, once it has one; the training curve of a fit without one.
        match val_loss {
            Some(v) => {
                if !member.validated {
                    member.curve.clear();
                    member.validated = true;
                }
                member.curve.push((epoch as f64, v));
            }
            None if !member.validated => member.curve.push((epoch as f64, train_loss)),
            None => {}
        }
    }

    pub fn finished(&mut self, i: usize, result: Result<Box<RunReport>, String>) {
        let Some(member) = self.members.get_mut(i) else { return };
        member.state = match result {
            Ok(report) => {
                let state = MemberState::Done {
                    version: report.model.version,
                    test_log_loss: report.metrics.log_loss,
                };
                member.report = Some(report);
                state
            }
            Err(e) => MemberState::Failed(e),
        };
    }

    /// The members by the validation loss of the model each keeps (the training loss for fits
    /// without validation rows, after those with), failed ones last: the test split judges
    /// only the one chosen, not the choosing.
    pub fn ranked(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        let key = |i: &usize| {
            let m = &self.members[*i];
            let failed = matches!(m.state, MemberState::Failed(_));
            (failed, !m.validated, m.kept_loss().unwrap_or(f64::INFINITY))
        };
        order.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            (ka.0, ka.1).cmp(&(kb.0, kb.1)).then(ka.2.total_cmp(&kb.2))
        });
        order
    }

    /// The version of the best finished member, to promote.
    pub fn best_version(&self) -> Option<(usize, u32)> {
        self.ranked().into_iter().find_map(|i| match self.members[i].state {
            MemberState::Done { version, .. } => Some((i, version)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_every_combination_checked_and_bounded() {
        let base = TrainParams::default();
        let form = SweepForm {
            fields: ["sgd, newton".into(), "0.1,0.2".into(), "0, 0.01".into()],
            selected: 0,
            error: None,
        };
        let grid = form.grid(&base).expect("a grid");
        // sgd: 2 rates × 2 penalties; newton, which takes no rate: the 2 penalties once.
        assert_eq!(grid.len(), 6);
        assert_eq!((grid[0].solver, grid[0].learning_rate, grid[0].l2), (Solver::Sgd, 0.1, 0.0));
        assert_eq!(
            (grid[5].solver, grid[5].learning_rate, grid[5].l2),
            (Solver::Newton, 0.1, 0.01)
        );
        assert!(grid.iter().all(|p| p.epochs == base.epochs), "the rest is the base's");
        // Every member, newton's too, holds out the same validation rows: one measure for all.
        assert!(
            grid.iter().all(|p| p.validation_fraction == Some(DEFAULT_VALIDATION_FRACTION)),
            "{grid:?}"
        );
        let explicit = TrainParams { validation_fraction: Some(0.25), ..TrainParams::default() };
        assert!(
            form.grid(&explicit)
                .expect("a grid")
                .iter()
                .all(|p| p.validation_fraction == Some(0.25))
        );
        let bad = |fields: [&str; 3]| {
            SweepForm { fields: fields.map(String::from), selected: 0, error: None }
                .grid(&base)
                .unwrap_err()
        };
        assert!(bad(["adam", "0.1", "0"]).contains("\"adam\" is none of"));
        assert!(bad(["sgd", "fast", "0"]).starts_with("learning rates: \"fast\""));
        assert!(bad(["sgd", "-1", "0"]).contains("learning_rate"), "each member is checked");
        assert!(
            bad(["sgd,minibatch,batch,newton", "0.1,0.2,0.3", "0,1,2"])
                .contains("30 combinations; a sweep takes at most 24")
        );
        assert!(bad(["sgd", "", "0"]).contains("at least one"));
    }

    #[test]
    fn a_member_ranks_by_the_loss_of_the_model_it_keeps() {
        // newton's validation loss dips below its final one on the way to the optimum; sgd
        // stops early and keeps its best epoch. Each ranks by the model it keeps: 0.22 and 0.21.
        let mut sweep = Sweep::new(vec![
            TrainParams { solver: Solver::Newton, ..TrainParams::default() },
            TrainParams::default(),
        ]);
        for (e, l) in [0.30, 0.19, 0.22].iter().enumerate() {
            sweep.epoch(0, e + 1, 0.5, Some(*l));
        }
        for (e, l) in [0.25, 0.21, 0.24].iter().enumerate() {
            sweep.epoch(1, e + 1, 0.5, Some(*l));
        }
        let stopped = |version: u32, stop: StopReason| -> Box<RunReport> {
            Box::new(RunReport { stop_reason: stop, ..report(version) })
        };
        sweep.finished(0, Ok(stopped(1, StopReason::Converged)));
        sweep.finished(1, Ok(stopped(2, StopReason::EarlyStopped)));
        assert_eq!(
            (sweep.members[0].kept_loss(), sweep.members[1].kept_loss()),
            (Some(0.22), Some(0.21))
        );
        assert_eq!(sweep.ranked(), vec![1, 0]);
        assert_eq!(sweep.best_version(), Some((1, 2)));
    }

    fn report(version: u32) -> RunReport {
        serde_json::from_value(serde_json::json!({
            "run_id": "r", "started_unix_ms": 0, "data": "d",
            "model": {"name": "m", "version": version, "intercept": 0.0, "coefficients": {}, "label_name": "y"},
            "metrics": {"rows": 1, "threshold": 0.5, "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "auc": 1.0,
                        "log_loss": 0.2, "brier": 0.0, "confusion": {"tp": 1, "fp": 0, "tn": 0, "fn": 0}},
            "loss_curve": [], "stages": [], "predictions": [], "promoted": false, "decision": "", "stop_reason": "converged",
            "stable_version": null, "roc": [], "params": TrainParams::default(), "feature_names": [], "train_to_served_ms": 0.0,
        }))
        .expect("a report")
    }

    #[test]
    fn members_rank_by_validation_loss_with_failures_last() {
        let params = TrainParams::default();
        let mut sweep = Sweep::new(vec![params.clone(); 4]);
        for (i, losses) in [[0.30, 0.25], [0.28, 0.20], [0.40, 0.35]].iter().enumerate() {
            for (e, l) in losses.iter().enumerate() {
                sweep.epoch(i, e + 1, 0.5, Some(*l));
            }
        }
        sweep.epoch(3, 1, 0.1, Some(0.1));
        sweep.finished(3, Err("train: out of memory".into()));
        assert_eq!(sweep.ranked(), vec![1, 0, 2, 3]);
        assert!(sweep.running(), "none has finished well yet");
        assert_eq!(sweep.best_version(), None);
        let mut report = report(7);
        sweep.finished(0, Ok(Box::new(report.clone())));
        report.model.version = 8;
        sweep.finished(1, Ok(Box::new(report)));
        assert_eq!(
            sweep.best_version(),
            Some((1, 8)),
            "the lowest validation loss among the finished"
        );
    }
}
