//! The CI-sized chaos run (the big one is `ci/chaos.sh`): the real `op-events` binary against the
//! in-process mock over loopback, SIGKILLed at random moments while new and late events arrive and
//! faults are injected, then drained with `--once`. Every servable event must be delivered at
//! least once; duplicates are bounded; state files stay valid JSON. Plus a full disk (`ulimit -f`
//! makes state writes fail with EFBIG): a clear error, no corrupted state, and recovery.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use op_events_mock::{Fault, FaultKind, MockConfig, MockServer};

const TYPES: [&str; 3] = ["signinattempts", "itemusages", "auditevents"];
const BATCH: usize = 50;

fn collector(mock: &MockServer, state: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_op-events"));
    c.args([
        "--log-level",
        "info",
        "run",
        "--base-url",
        &mock.url(),
        "--state-dir",
    ])
    .arg(state)
    .args([
        "--start-time",
        "2000-01-01T00:00:00Z",
        "--format",
        "raw",
        "--limit",
        "50",
    ])
    .args([
        "--poll-interval",
        "200ms",
        "--set",
        &format!("batch_max_records={BATCH}"),
    ])
    .args(["--set", "request_timeout=2s", "--set", "retry_initial=50ms"])
    .args(["--set", "retry_max=300ms", "--set", "checkpoint_interval=0"])
    .args(extra)
    .env("OP_EVENTS_TOKEN", mock.token("acme", &TYPES));
    c
}

/// (event type, uuid) of every delivered line; a torn last line (SIGKILL mid-write) is skipped:
/// it was never acked, so it is delivered again.
fn delivered(out: &[u8]) -> Vec<(String, String)> {
    out.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["event_type"].as_str().unwrap().to_owned(),
                v["event"]["uuid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected(mock: &MockServer) -> HashSet<(String, String)> {
    TYPES
        .iter()
        .flat_map(|t| {
            mock.servable_events("acme", t)
                .into_iter()
                .map(|e| (t.to_string(), e["uuid"].as_str().unwrap().to_owned()))
        })
        .collect()
}

fn assert_state_valid(state: &Path) {
    for entry in std::fs::read_dir(state).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("state-") && name.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name} is not valid JSON after a kill: {e}"));
            assert!(v["recent_uuids"].is_array(), "{name}: {v}");
        }
    }
}

fn wait_done(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("op-events run --once did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 400,
        ..MockConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out_path = dir.path().join("out.ndjson");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let kills = 8;
    for i in 0..kills {
        // Fresh and late events and a fault before every run.
        let kind = TYPES[next(3) as usize];
        mock.generate("acme", kind, 1 + next(60) as usize, i % 2 == 0);
        let fault = match next(4) {
            0 => FaultKind::Status(503),
            1 => FaultKind::Reset,
            2 => FaultKind::Truncate,
            _ => FaultKind::InvalidJson,
        };
        mock.inject(Fault {
            kind: fault,
            count: 1,
            path: None,
        });
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .unwrap();
        let mut child = collector(&mock, &state, &[])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60 + next(500)));
        child.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
        child.wait().unwrap();
        // Like any reader of an appended file: end a torn last line before appending more.
        let bytes = std::fs::read(&out_path).unwrap();
        if bytes.last().is_some_and(|b| *b != b'\n') {
            let mut f = OpenOptions::new().append(true).open(&out_path).unwrap();
            f.write_all(b"\n").unwrap();
        }
        assert_state_valid(&state);
    }
    let out = OpenOptions::new().append(true).open(&out_path).unwrap();
    let mut last = collector(&mock, &state, &["--once"])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_done(&mut last, Duration::from_secs(30)).success());
    assert_state_valid(&state);

    let lines = delivered(&std::fs::read(&out_path).unwrap());
    let mut counts: HashMap<&(String, String), usize> = HashMap::new();
    for l in &lines {
        *counts.entry(l).or_default() += 1;
    }
    let want = expected(&mock);
    let missing = want.iter().filter(|k| !counts.contains_key(k)).count();
    let dup: usize = counts.values().map(|n| n - 1).sum();
    let unexpected = counts.keys().filter(|k| !want.contains(**k)).count();
    println!(
        "chaos (seed {seed}): kills={kills} expected={} delivered={} missing={missing} duplicated={dup}",
        want.len(),
        lines.len()
    );
    assert_eq!(missing, 0, "events lost (seed {seed})");
    assert_eq!(unexpected, 0);
    // With `checkpoint_interval=0` the binary checkpoints each batch before writing the next
    // (`ack_and_write`), so a kill replays at most the one batch it interrupted.
    assert!(dup <= kills * BATCH, "{dup} duplicates (seed {seed})");
}

/// State writes fail with EFBIG (`ulimit -f`; SIGXFSZ ignored): the collector says which file
/// could not be written, leaves no corrupt state, and the next run (space back) recovers.
#[test]
fn full_disk_is_a_clear_error_and_recovers() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 200,
        ..MockConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let want = expected(&mock);

    let run = |limited: bool| {
        let mut cmd = collector(&mock, &state, &["--once"]);
        let mut command = if limited {
            // stdout is a pipe (no size limit); only regular files (the state) hit the limit.
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg("ulimit -f 1; exec \"$@\"")
                .arg("sh")
                .arg(cmd.get_program())
                .args(cmd.get_args())
                .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
            sh
        } else {
            std::mem::replace(&mut cmd, Command::new("true"))
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            stdout.read_to_end(&mut b).unwrap();
            b
        });
        let mut stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            stderr.read_to_end(&mut b).unwrap();
            String::from_utf8_lossy(&b).into_owned()
        });
        wait_done(&mut child, Duration::from_secs(30));
        (
            delivered(&reader.join().unwrap()),
            err_reader.join().unwrap(),
        )
    };

    let (first, log) = run(true);
    assert!(
        log.contains("could not be written") && log.contains("state-"),
        "no clear error about the state file:\n{log}"
    );
    assert_state_valid(&state);
    let first: HashSet<_> = first.into_iter().collect();
    assert_eq!(first, want, "the events still flow while checkpoints fail");

    // Space is back: nothing was checkpointed, so everything comes again (at least once), and
    // this time the checkpoints land.
    let (second, log) = run(false);
    assert!(!log.contains("could not be written"), "{log}");
    assert_eq!(second.iter().cloned().collect::<HashSet<_>>(), want);
    assert_state_valid(&state);
    let (third, _) = run(false);
    assert!(
        third.is_empty(),
        "checkpoints were not written after recovery: {}",
        third.len()
    );
}

#[test]
fn unusable_state_dir_fails_start_naming_it() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 1,
        ..MockConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let state = file.join("state");
    let out = collector(&mock, &state, &["--once"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!("--state-dir {}: ", state.display())),
        "{err}"
    );
}
