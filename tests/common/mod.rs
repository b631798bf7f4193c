//! Helpers for the end-to-end tests: run the real `logitflow` binary with a temp home, with a
//! time limit, and find any service process it left behind.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn logitflow(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logitflow"));
    command.arg("--home").arg(home);
    for var in ["LOGITFLOW_HOME", "LOGITFLOW_TOKEN", "LOGITFLOW_LISTEN", "LOGITFLOW_ALLOWED_ROOTS", "LOGITFLOW_SERVE_URL"] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

/// Runs a command to its end, killing it after `limit`.
pub fn run_for(mut command: Command, limit: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the logitflow binary starts");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("timed out after {limit:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `logitflow --home HOME ARGS...` (60 s limit).
pub fn run(home: &Path, args: &[&str]) -> Output {
    let mut command = logitflow(home);
    command.args(args);
    run_for(command, Duration::from_secs(60))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Pids of `logitflow service` processes whose command line names this home.
pub fn services_of(home: &Path) -> Vec<u32> {
    let home = home.to_string_lossy().into_owned();
    let canonical = std::fs::canonicalize(&home).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| home.clone());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let is_zombie = std::fs::read_to_string(entry.path().join("stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
        if !is_zombie && args.iter().any(|a| a == "service") && args.iter().any(|a| *a == home || *a == canonical) {
            found.push(pid);
        }
    }
    found
}

/// Asserts that no service of this home is left, allowing `within` for them to go.
pub fn assert_no_services(home: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = services_of(home);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "service processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}
