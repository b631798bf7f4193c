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
    let home = || commands::Home::resolve(cli.home.clone(), cli.store.clone());
    let result = match cli.command {
        None => home().and_then(|home| {
            commands::check_home_writable(&home.dir)?;
            commands::check_registry(&home)?;
            use std::io::IsTerminal;
            if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
                anyhow::bail!("the dashboard needs a terminal, and stdin or stdout is not one; `logitflow run` trains without one");
            }
            let terminal = ratatui::try_init().map_err(|e| {
                ratatui::restore();
                anyhow::anyhow!("cannot open the terminal for the dashboard: {e}; `logitflow run` trains without one")
            })?;
            let result = runtime.block_on(dashboard::run(terminal, home, cli.dashboard));
            ratatui::restore();
            result
        }),
        Some(Command::Run(args)) => home().and_then(|home| {
            commands::check_home_writable(&home.dir)?;
            commands::check_registry(&home)?;
            runtime.block_on(commands::run(home, *args))
        }),
        Some(Command::Predict(args)) => home().and_then(|home| runtime.block_on(commands::predict(home, args))),
        Some(Command::Score(args)) => home().and_then(|home| runtime.block_on(commands::score(home, args))),
        Some(Command::Runs(args)) => home().and_then(|home| commands::runs(home, args)),
        Some(Command::Gc(args)) => home().and_then(|home| commands::gc(home, args)),
        Some(Command::Export(args)) => home().and_then(|home| commands::export(home, args)),
        Some(Command::Compare(args)) => home().and_then(|home| commands::compare(home, args)),
        Some(Command::Service(command)) => runtime.block_on(commands::service(cli.home.clone(), cli.store.clone(), command)),
        Some(Command::Synth(args)) => commands::synth(args),
    };
    // Children are stopped by the commands themselves; dropping the runtime kills any left.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {}", logitflow::cli::with_flag_hints(&format!("{e:#}")));
    ExitCode::FAILURE
}
