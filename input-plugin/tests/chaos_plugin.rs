//! The plugin crashes: a host process loads the real `.so` through the harness, appends every
//! buffer to its own file before cleanup (as Fluent Bit appends to its chunk), and is SIGKILLed at
//! random moments while the mock keeps receiving new and late events and injects faults (5xx,
//! 429, truncated bodies, resets, invalid JSON). At the end every servable
//! event is in the file, duplicates are counted and bounded, and the state files are valid JSON.
//! The host is this test binary run again with `CHAOS_HOST` set.

mod harness;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::source::{self, KINDS};
use harness::{FluentBit, Layout};
use op_events_mock::{Fault, FaultKind};

const KILLS: usize = 20;
const BATCH: usize = 40;
/// The host's collect tick (Fluent Bit's is a second; this keeps the test short).
const TICK: Duration = Duration::from_millis(20);
/// The host's `checkpoint_interval`: a kill replays what was acked within it.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);
/// The host's `checkpoint_delay`: its appends are stored at once (no ring buffer), but a kill
/// also replays what was acked within the delay.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(60);

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is set for the host"))
}

/// The host process. In a normal test run (no `CHAOS_HOST`) it does nothing.
#[test]
fn chaos_host() {
    let Ok(url) = std::env::var("CHAOS_HOST") else {
        return;
    };
    let (token, state, out) = (env("CHAOS_TOKEN"), env("CHAOS_STATE"), env("CHAOS_OUT"));
    let drain = std::env::var_os("CHAOS_DRAIN").is_some();
    let batch = BATCH.to_string();
    let interval = format!("{}ms", CHECKPOINT_INTERVAL.as_millis());
    let delay = format!("{}ms", CHECKPOINT_DELAY.as_millis());
    let props: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"on"),
        ("state_dir", state.as_bytes()),
        ("start_time", b"2000-01-01T00:00:00Z"),
        ("format", b"raw"),
        ("limit", b"20"),
        ("batch_max_records", batch.as_bytes()),
        ("checkpoint_interval", interval.as_bytes()),
        ("checkpoint_delay", delay.as_bytes()),
        ("poll_interval", b"200ms"),
        ("rate_limit_per_minute", b"0"),
        ("rate_limit_per_hour", b"0"),
        ("request_timeout", b"2s"),
        ("retry_initial", b"50ms"),
        ("retry_max", b"300ms"),
    ];
    let fb = FluentBit::load(Layout::V41);
    let _def = fb.register();
    let instance = fb.started(&props, harness::WARN);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .unwrap();
    let mut quiet = Instant::now();
    loop {
        let mut f = file.try_clone().unwrap();
        // One write per buffer, length-prefixed, so a reader can tell a whole buffer.
        let stored = instance.collect_with(Box::new(move |buffer| {
            let mut chunk = u32::try_from(buffer.len()).unwrap().to_le_bytes().to_vec();
            chunk.extend_from_slice(buffer);
            f.write_all(&chunk).unwrap();
        }));
        if stored {
            quiet = Instant::now();
        } else if drain && quiet.elapsed() > Duration::from_secs(2) {
            break;
        }
        std::thread::sleep(TICK);
    }
    instance.pre_exit(false);
    assert_eq!(instance.exit(), 1);
}

fn host(mock_url: &str, token: &str, state: &Path, out: &Path, drain: bool) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "chaos_host",
        "--exact",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("CHAOS_HOST", mock_url)
    .env("CHAOS_TOKEN", token)
    .env("CHAOS_STATE", state)
    .env("CHAOS_OUT", out)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if drain {
        c.env("CHAOS_DRAIN", "1");
    }
    c.spawn().unwrap()
}

/// `(event_type, uuid)` of every event in whole buffers of the hosts' output files, in the
/// order the hosts ran. Each host has its own file: a kill can cut its last write short (the
/// kernel stops copying a write at a fatal signal), and that tail must not run into the
/// next host's buffers.
fn delivered(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let mut rest = &bytes[..];
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            let Some(buffer) = rest.get(4..4 + len) else {
                break; // a buffer cut short by the kill was never acked: it comes again
            };
            for event in harness::events::decode(buffer) {
                let kind = event.meta_str("event_type").unwrap().to_owned();
                let item = harness::events::map_get(&event.body, "event").unwrap();
                let uuid = harness::events::map_get(item, "uuid").unwrap();
                out.push((kind, uuid.as_str().unwrap().to_owned()));
            }
            rest = &rest[4 + len..];
        }
    }
    out
}

fn assert_state_valid(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("state-") && name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON after a kill: {e}"));
        }
    }
}

#[test]
fn sigkilled_plugin_host_loses_nothing() {
    if std::env::var_os("CHAOS_HOST").is_some() {
        return;
    }
    let mock = source::mock(1000, 21);
    let token = mock.token("acme", &KINDS);
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = |run: usize| out.join(format!("{run:02}.bin"));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut rng = seed;
    let mut next = |n: u32| {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng % n
    };
    // Kills that came after the host had delivered in that round: they hit a working host. A
    // round whose faults kept the host from delivering (a 429 waits a second) does not count.
    let (mut productive, mut kills) = (0, 0);
    let mut seen = 0;
    while productive < KILLS {
        assert!(
            kills < 3 * KILLS,
            "only {productive} of {kills} kills hit a host that was delivering"
        );
        let round = kills;
        kills += 1;
        let mut child = host(&mock.url(), &token, &state, &file(round), false);
        // New and late events keep arriving, and the API misbehaves, while the host runs.
        mock.generate("acme", KINDS[round % 3], 30, round % 2 == 0);
        let kind = match next(6) {
            0 => FaultKind::Status(503),
            1 => FaultKind::Status(500),
            2 => FaultKind::Status(429),
            3 => FaultKind::Truncate,
            4 => FaultKind::Reset,
            _ => FaultKind::InvalidJson,
        };
        mock.inject(Fault {
            kind,
            count: 1 + next(2),
            path: None,
        });
        std::thread::sleep(Duration::from_millis(u64::from(150 + next(600))));
        child.kill().unwrap(); // SIGKILL: no PreExit, no Exit, no final checkpoint
        child.wait().unwrap();
        if state.exists() {
            assert_state_valid(&state);
        }
        let now = delivered(&out).len();
        productive += usize::from(now > seen);
        seen = now;
    }
    let mut last = host(&mock.url(), &token, &state, &file(kills), true);
    let deadline = Instant::now() + Duration::from_secs(60);
    while last.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the draining host did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(last.wait().unwrap().success(), "the draining host failed");
    assert_state_valid(&state);

    let got = delivered(&out);
    let mut counts: HashMap<&(String, String), usize> = HashMap::new();
    for key in &got {
        *counts.entry(key).or_default() += 1;
    }
    let mut expected = 0;
    let mut missing = 0;
    for kind in KINDS {
        for item in mock.servable_events("acme", kind) {
            expected += 1;
            let key = (kind.to_owned(), item["uuid"].as_str().unwrap().to_owned());
            if !counts.contains_key(&key) {
                missing += 1;
            }
        }
    }
    let duplicated: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "plugin chaos (seed {seed}): kills={kills} expected={expected} delivered={} productive_kills={productive} missing={missing} duplicated={duplicated}",
        got.len()
    );
    assert_eq!(missing, 0, "events lost (seed {seed})");
    assert_eq!(counts.len(), expected, "unexpected events (seed {seed})");
    // Checkpoints are written in the background at most once per interval, after the delay, so
    // a kill replays what was handed over within both or while the last write was in flight: a
    // few batches each, never the history.
    let per_kill =
        ((CHECKPOINT_INTERVAL + CHECKPOINT_DELAY).as_millis() / TICK.as_millis()) as usize + 3;
    assert!(
        duplicated <= kills * per_kill * BATCH,
        "{duplicated} duplicates (seed {seed})"
    );
}
