//! End to end with a real Fluent Bit: `FLUENT_BIT=/path/to/fluent-bit` (or `fluent-bit` on
//! PATH) loads the built library with `-e`, runs two `onepassword` inputs (two accounts of the
//! in-process mock) into `-o file` (JSON lines), and every event is counted and checked.
//! Skips, saying so, when no Fluent Bit is installed.

mod harness;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::source::{self, KINDS};

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

#[test]
fn real_fluent_bit_delivers_every_event_of_two_accounts() {
    let Some(bin) = fluent_bit() else {
        println!(
            "SKIPPED real_fluent_bit_delivers_every_event_of_two_accounts: no Fluent Bit (set FLUENT_BIT=/path/to/fluent-bit)"
        );
        return;
    };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .expect("run fluent-bit --version");
    println!(
        "using {}: {}",
        bin.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );

    let library = harness::library_path();
    let mock = source::mock(300, 7);
    let url = mock.url();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let accounts = ["acme", "globex"];
    let tokens: Vec<String> = accounts.iter().map(|a| mock.token(a, &KINDS)).collect();

    let mut cmd = Command::new(&bin);
    cmd.arg("-e").arg(&library);
    for (account, token) in accounts.iter().zip(&tokens) {
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
            .args([
                "-p",
                &format!("state_dir={}", work.path().join(account).display()),
            ]);
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
    .stdout(std::fs::File::create(work.path().join("stdout.log")).unwrap())
    .stderr(std::fs::File::create(work.path().join("stderr.log")).unwrap());
    let mut child = cmd.spawn().expect("start fluent-bit");
    let logs = || {
        let mut s = std::fs::read_to_string(work.path().join("stdout.log")).unwrap_or_default();
        s += &std::fs::read_to_string(work.path().join("stderr.log")).unwrap_or_default();
        s
    };

    let expected_total = accounts.len() * KINDS.len() * 300;
    let out_file = out_dir.join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if text.lines().count() >= expected_total {
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
    let stop_deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            panic!("fluent-bit did not stop on SIGTERM:\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = logs();
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
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
    assert!(
        log.contains("[onepassword.0]") && log.contains("[onepassword.1]"),
        "{log}"
    );
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "token in Fluent Bit's log");
    }
    assert!(status.success(), "fluent-bit exit status {status}\n{log}");
    println!(
        "real Fluent Bit: {} records checked, clean shutdown",
        lines.len()
    );
}
