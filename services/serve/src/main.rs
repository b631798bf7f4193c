//! The serve service as a program of its own; the console runs the same code as
//! `logitflow service serve`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = logitflow_kit::ServiceCli::parse();
    let (listener, config) = logitflow_kit::start(&cli.args).await?;
    logitflow_serve::run(listener, config, logitflow_kit::shutdown_signal()).await
}
