//! logitflow's console: the command line, the supervisor of the service processes, the
//! pipeline driver, the dashboard and plot export.
//!
//! - [`cli::Cli`]: `logitflow [run|predict|runs|export|service|synth]`.
//! - [`supervisor::Supervisor`]: runs each service as a child process and keeps it running.
//! - [`pipeline::run_pipeline`]: drives the stages through the services' HTTP APIs and
//!   reports [`pipeline::PipelineEvent`]s and a [`pipeline::RunReport`].
//! - [`dashboard`]: the terminal dashboard.
//! - [`export::export_run`]: loss and ROC curves as PNG, SVG and CSV.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod dashboard;
pub mod export;
pub mod pipeline;
pub mod supervisor;
