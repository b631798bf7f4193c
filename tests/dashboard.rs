//! The dashboard end to end in a pseudo-terminal: the real binary, real services, real keys,
//! and the screen read back through a VT100 parser.

mod common;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().map(|p| p.screen().contents()).unwrap_or_default()
    }

    /// Waits until `check` holds for the screen's text; panics with the screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
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

    fn alternate_screen(&self) -> bool {
        self.parser.lock().map(|p| p.screen().alternate_screen()).unwrap_or(true)
    }
}

fn send(writer: &mut Box<dyn Write + Send>, keys: &str) {
    writer.write_all(keys.as_bytes()).expect("write to the pty");
    writer.flush().expect("flush");
    // Separate keys arrive as separate reads, so Esc followed by a key is not read as Alt+key.
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn dashboard_trains_predicts_exports_and_quits_cleanly() {
    let home = tempfile::tempdir().expect("tempdir");
    let exports = home.path().join("exports");
    let pty = native_pty_system();
    let pair = pty.openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 }).expect("a pty");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_logitflow"));
    command.args(["--home", home.path().to_str().expect("utf8"), "--export-dir", exports.to_str().expect("utf8")]);
    command.env("TERM", "xterm-256color");
    command.env_remove("LOGITFLOW_HOME");
    let mut child = pair.slave.spawn_command(command).expect("the dashboard starts");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 120, 0)));
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
    let screen = Screen { parser };

    screen.wait_for("every service ready", Duration::from_secs(60), |s| s.contains("Services 8/8 ready"));
    for name in ["ingest", "preprocess", "features", "train", "evaluate", "serve", "advisor", "batch"] {
        assert!(screen.text().contains(name), "{name} is listed");
    }

    send(&mut writer, "t");
    let text = screen.wait_for("metrics", Duration::from_secs(60), |s| s.contains("acc 0.") && s.contains("admissions v1"));
    assert!(text.contains("✓ serve"), "every stage done:\n{text}");

    send(&mut writer, "p");
    send(&mut writer, "80");
    send(&mut writer, "\r");
    let text = screen.wait_for("the answer", Duration::from_secs(30), |s| s.lines().any(|l| l.contains("stable") && l.contains("admit")));
    let line = text.lines().find(|l| l.contains("stable") && l.contains("admit")).expect("answer line");
    let probability: f64 = line
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v) && w.contains('.')))
        .unwrap_or_else(|| panic!("no probability on {line:?}"));
    assert!((0.99..1.0).contains(&probability), "P(80) = {probability} on {line:?}");
    assert!(line.contains("v1"), "the answering version is shown: {line:?}");

    send(&mut writer, "\x1b");
    send(&mut writer, "e");
    screen.wait_for("the export", Duration::from_secs(30), |s| s.contains("exported 6 files"));
    let files: Vec<_> = std::fs::read_dir(&exports).expect("exports dir").flatten().map(|e| e.path()).collect();
    let png = files.iter().find(|p| p.to_string_lossy().ends_with("loss.png")).expect("loss.png");
    let svg = files.iter().find(|p| p.to_string_lossy().ends_with("loss.svg")).expect("loss.svg");
    assert_eq!(&std::fs::read(png).expect("png")[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_to_string(svg).expect("svg").contains("<svg"));
    assert!(files.iter().any(|p| p.to_string_lossy().ends_with("roc.png")));

    send(&mut writer, "q");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the dashboard did not quit:\n{}", screen.text());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!screen.alternate_screen(), "the terminal is restored (alternate screen left)");
    common::assert_no_services(home.path(), Duration::from_secs(2));
}
