//! The `logitflow` binary: the dashboard when run without a command, otherwise one of the
//! headless commands (including `service <name>`, which the supervisor runs as children).

use clap::Parser;
use logitflow::cli::{Cli, Command};
use logitflow::{commands, dashboard};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = match cli.command {
        None => commands::resolve_home(cli.home).and_then(|home| {
            let terminal = ratatui::init();
            let result = runtime.block_on(dashboard::run(terminal, home, cli.dashboard));
            ratatui::restore();
            result
        }),
        Some(Command::Service(command)) => runtime.block_on(commands::service(cli.home, command)),
        Some(Command::Synth(args)) => commands::synth(args),
        Some(Command::Bench(args)) => commands::resolve_home(cli.home).and_then(|home| runtime.block_on(logitflow::bench::run(home, args))),
        Some(command) => commands::resolve_home(cli.home).and_then(|home| match command {
            Command::Run(args) => runtime.block_on(commands::run(home, *args)),
            Command::Predict(args) => runtime.block_on(commands::predict(home, args)),
            Command::Runs(args) => commands::runs(home, args),
            Command::Export(args) => commands::export(home, args),
            Command::Service(_) | Command::Synth(_) | Command::Bench(_) => Ok(()),
        }),
    };
    // Children are stopped by the commands themselves; dropping the runtime kills any left.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
