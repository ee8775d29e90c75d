//! End to end with a real Fluent Bit: `FLUENT_BIT=/path/to/fluent-bit` (or `fluent-bit` on
//! PATH) loads the built library with `-e`, runs two `onepassword` inputs (two accounts of the
//! in-process mock; one before Fluent Bit 4.1) into `-o file` (JSON lines), and every event is
//! counted and checked. Before 4.1 it also checks that a second input is refused, saying why.
//! Skips, saying so, when no Fluent Bit is installed.

mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::source::{self, KINDS};
use op_events_mock::MockServer;

fn fluent_bit() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FLUENT_BIT") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join("fluent-bit"))
        .find(|p| p.is_file())
}

fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// `(major, minor)` from `fluent-bit --version` ("Fluent Bit v4.0.14").
fn version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

/// Fluent Bit with one `onepassword` input per (account, token), tagged `op.<account>`, into
/// `out_dir/events.jsonl`; its stdout and stderr go to files in `work`.
fn command(bin: &Path, url: &str, inputs: &[(&str, &str)], work: &Path, out_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("-e").arg(harness::library_path());
    for (account, token) in inputs {
        cmd.args(["-i", "onepassword", "-t", &format!("op.{account}")])
            .args(["-p", &format!("token={token}")])
            .args(["-p", &format!("base_url={url}")])
            .args([
                "-p",
                "insecure_http=on",
                "-p",
                "format=raw",
                "-p",
                "poll_interval=1s",
            ])
            .args(["-p", &format!("state_dir={}", work.join(account).display())]);
    }
    cmd.args([
        "-o",
        "file",
        "-m",
        "op.*",
        "-p",
        "format=plain",
        "-p",
        "file=events.jsonl",
    ])
    .args(["-p", &format!("path={}", out_dir.display())])
    .args(["-f", "1"])
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
    .stderr(std::fs::File::create(work.join("stderr.log")).unwrap());
    cmd
}

/// The records Fluent Bit wrote so far, one JSON line each.
fn records(out_dir: &Path) -> String {
    std::fs::read_to_string(out_dir.join("events.jsonl")).unwrap_or_default()
}

fn logs(work: &Path) -> String {
    let mut s = std::fs::read_to_string(work.join("stdout.log")).unwrap_or_default();
    s += &std::fs::read_to_string(work.join("stderr.log")).unwrap_or_default();
    s
}

/// Waits up to `within` for `child` to exit, or until `done` holds; the exit status if it
/// exited.
fn wait(child: &mut Child, within: Duration, done: impl Fn() -> bool) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if done() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn real_fluent_bit_delivers_every_event() {
    let Some(bin) = fluent_bit() else {
        println!(
            "SKIPPED real_fluent_bit_delivers_every_event: no Fluent Bit (set FLUENT_BIT=/path/to/fluent-bit)"
        );
        return;
    };
    let version_text = Command::new(&bin)
        .arg("--version")
        .output()
        .expect("run fluent-bit --version")
        .stdout;
    let version_text = String::from_utf8_lossy(&version_text);
    let version = version(&version_text).expect("a version in `fluent-bit --version`");
    println!("using {}: {}", bin.display(), version_text.trim());
    // Before 4.1, one input per process (see docs/fluent-bit.md).
    let several = version >= (4, 1);

    let mock = source::mock(300, 7);
    let url = mock.url();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let accounts: &[&str] = if several {
        &["acme", "globex"]
    } else {
        &["acme"]
    };
    let tokens: Vec<String> = accounts.iter().map(|a| mock.token(a, &KINDS)).collect();
    let inputs: Vec<(&str, &str)> = accounts
        .iter()
        .copied()
        .zip(tokens.iter().map(String::as_str))
        .collect();
    let mut child = command(&bin, &url, &inputs, work.path(), &out_dir)
        .spawn()
        .expect("start fluent-bit");
    let logs = || logs(work.path());

    let expected_total = accounts.len() * KINDS.len() * 300;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if records(&out_dir).lines().count() >= expected_total {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("fluent-bit exited early ({status}):\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Let a duplicate, if any, show up before stopping.
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let Some(status) = wait(&mut child, Duration::from_secs(20), || false) else {
        let _ = child.kill();
        panic!("fluent-bit did not stop on SIGTERM:\n{}", logs());
    };
    let log = logs();
    let text = records(&out_dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected_total, "records in the file\n{log}");

    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let mut found = Vec::new();
        strings(&record, &mut found);
        found.sort();
        found.dedup();
        for s in found {
            *seen.entry(s).or_default() += 1;
        }
    }
    for account in accounts {
        for kind in KINDS {
            for item in mock.servable_events(account, kind) {
                let uuid = item["uuid"].as_str().unwrap();
                assert_eq!(seen.get(uuid).copied(), Some(1), "{account} {kind} {uuid}");
            }
        }
    }
    for i in 0..accounts.len() {
        assert!(log.contains(&format!("[onepassword.{i}]")), "{log}");
    }
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "token in Fluent Bit's log");
    }
    assert!(status.success(), "fluent-bit exit status {status}\n{log}");
    println!(
        "real Fluent Bit: {} records checked, clean shutdown",
        lines.len()
    );
    if !several {
        second_input_is_refused(&bin, &mock, expected_total);
    }
}

/// Before 4.1 the proxy keeps one context per plugin: a second input must fail its start with
/// a line saying why. Fluent Bit 4.0 then stops; 2.2 runs on with the first input, which must
/// still deliver every event of its account.
fn second_input_is_refused(bin: &Path, mock: &MockServer, per_account: usize) {
    const REFUSAL: &str = "can run only one onepassword input per process";
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let tokens = ["acme", "globex"].map(|a| mock.token(a, &KINDS));
    let inputs = [("acme", tokens[0].as_str()), ("globex", tokens[1].as_str())];
    let mut child = command(bin, &mock.url(), &inputs, work.path(), &out_dir)
        .spawn()
        .expect("start fluent-bit");
    let delivered = || records(&out_dir).lines().count();
    let stopped = wait(&mut child, Duration::from_secs(60), || {
        logs(work.path()).contains(REFUSAL) && delivered() >= per_account
    });
    if stopped.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = logs(work.path());
    assert!(
        log.contains(REFUSAL),
        "no refusal of the second input:\n{log}"
    );
    match stopped {
        Some(status) => assert!(!status.success(), "exit status {status}\n{log}"),
        None => assert_eq!(delivered(), per_account, "the first input\n{log}"),
    }
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "token in Fluent Bit's log");
    }
    println!(
        "real Fluent Bit: a second input is refused, saying why; Fluent Bit {}",
        if stopped.is_some() {
            "stopped".to_owned()
        } else {
            format!("ran on with the first, which delivered all {per_account} events")
        }
    );
}
