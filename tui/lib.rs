//! logitflow's console: the command line, the supervisor of the service processes, the
//! pipeline driver, the dashboard and plot export.
//!
//! - [`cli::Cli`]: `logitflow [run|predict|score|runs|export|compare|service|synth|gc]`.
//! - [`supervisor::Supervisor`]: runs each service as a child process and keeps it running.
//! - [`pipeline::run_pipeline`]: drives the stages through the services' HTTP APIs and
//!   reports [`pipeline::PipelineEvent`]s and a [`pipeline::RunReport`].
//! - [`dashboard`]: the terminal dashboard.
//! - [`export::export_run`]: a run's curves as PNG, SVG and CSV; [`export::export_comparison`]
//!   two runs' loss curves in one plot.
//! - [`compare::compare_runs`]: two runs side by side, for `logitflow compare` and the runs view.
//! - [`home::Home`]: where an invocation keeps things; [`clients::Clients`]: the services a
//!   run talks to.
//! - [`numbers::readable`]: a coefficient with its column's decimals, or its significant digits.

pub mod cli;
pub mod clients;
pub mod commands;
pub mod compare;
pub mod connect;
pub mod dashboard;
pub mod export;
pub mod home;
pub mod numbers;
pub mod pipeline;
pub mod services;
pub mod supervisor;
