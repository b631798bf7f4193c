//! The `logitflow-bench` binary: parses [`logitflow_bench::BenchArgs`] and runs the benchmark it
//! names (including the bare handlers `serve` starts as its children).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = logitflow_bench::BenchArgs::parse();
    let result = logitflow_bench::use_sibling_logitflow().and_then(|()| {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        runtime.block_on(logitflow_bench::run(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
