//! The terminal dashboard (being built).

use crate::cli::DashboardArgs;
use std::path::PathBuf;

pub async fn run(_terminal: ratatui::DefaultTerminal, _home: PathBuf, _args: DashboardArgs) -> anyhow::Result<()> {
    Ok(())
}
