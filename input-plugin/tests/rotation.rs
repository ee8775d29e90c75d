//! Token rotation against the real mock: a token read from `token_file` is read again when the
//! API rejects it, and a new one for the same account is used without a restart.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use op_events_input::config::Config;
use op_events_input::encode::Target;
use op_events_input::pipeline::{BatchLimits, Collector};
use op_events_mock::{MockConfig, MockServer, Region, TokenSpec};

const ALL: [&str; 3] = ["signinattempts", "itemusages", "auditevents"];
const LIMITS: BatchLimits = BatchLimits {
    max_records: 100,
    max_bytes: 1 << 20,
};

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        events_per_type: 30,
        seed: 11,
        ..MockConfig::default()
    })
    .unwrap()
}

/// A token of `account` for every event type, expiring `hours` from the mock's now.
fn token(mock: &MockServer, account: &str, hours: i64) -> String {
    let now = mock.now();
    mock.mint(&TokenSpec {
        region: Region::Us,
        features: ALL.map(str::to_owned).into(),
        account: account.to_owned(),
        issued_at: now,
        expires_at: now + SignedDuration::from_hours(hours),
    })
}

/// Replaces the token file's contents the way a secret store does: a new file renamed over it.
fn write_token(path: &Path, token: &str) {
    let next = path.with_extension("new");
    std::fs::write(&next, format!("{token}\n")).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// A collector reading its token from `token_file`, retrying a rejected token only after the
/// default five minutes: anything sooner is the rotation's doing.
fn start(mock: &MockServer, token_file: &Path, state: &Path, logs: &Capture) -> Collector {
    let mut c = Config::from_pairs([
        ("base_url", mock.url().as_str()),
        ("limit", "100"),
        ("poll_interval", "100ms"),
        ("unauthorized_retry", "300s"),
        ("format", "raw"),
    ])
    .unwrap();
    c.token_file = Some(token_file.to_path_buf());
    c.state_dir = state.to_path_buf();
    let writer = logs.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish(),
    );
    Collector::start(c, Target::Ndjson, Some(dispatch)).unwrap()
}

/// Takes and acks batches until `done` holds for the uuids delivered so far, for up to 10 s.
fn collect_until(
    c: &Collector,
    got: &mut Vec<String>,
    done: impl Fn(&[String]) -> bool,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(got) {
        assert!(
            Instant::now() < deadline,
            "{what}: {} events so far; progress {:?}",
            got.len(),
            c.progress()
        );
        if let Some(b) = c.take_timeout(LIMITS, Duration::from_millis(50)) {
            let data = b.to_vec();
            for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                got.push(v["event"]["uuid"].as_str().unwrap().to_owned());
            }
            c.ack(b.ack);
        }
    }
}

fn servable(mock: &MockServer, account: &str) -> HashSet<String> {
    ALL.iter()
        .flat_map(|kind| mock.servable_events(account, kind))
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect()
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn a_new_token_in_token_file_replaces_a_revoked_one_without_a_restart() {
    let mock = mock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let old = token(&mock, "acme", 24 * 30);
    write_token(&file, &old);
    let logs = Capture::default();
    let c = start(&mock, &file, &dir.path().join("state"), &logs);
    let mut got = Vec::new();
    let first = servable(&mock, "acme");
    collect_until(&c, &mut got, |g| g.len() >= first.len(), "first token");

    // Rotation as documented: the new token is written, then the old one revoked; events
    // keep coming.
    write_token(&file, &token(&mock, "acme", 24 * 90));
    mock.revoke(&old);
    for kind in ALL {
        mock.generate("acme", kind, 5, false);
    }
    let all = servable(&mock, "acme");
    let started = Instant::now();
    collect_until(&c, &mut got, |g| g.len() >= all.len(), "after the rotation");
    c.shutdown(Duration::from_secs(2));

    let unique: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no event twice");
    assert_eq!(unique, all);
    assert!(started.elapsed() < Duration::from_secs(10));
    let logs = logs.text();
    assert!(
        logs.contains("token_file holds a new token, accepted by the API; using it"),
        "{logs}"
    );
    // The three streams were rejected together; one introspection served them all.
    let stats = mock.stats();
    assert_eq!(stats.count("/api/v2/auth/introspect", 200), 2, "{stats:?}");
}

/// Expiry, the other way a token ends, with a new token of another account in the file.
#[test]
fn a_new_token_for_another_account_is_refused() {
    let mock = mock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, &token(&mock, "acme", 1));
    let logs = Capture::default();
    let c = start(&mock, &file, &dir.path().join("state"), &logs);
    let mut got = Vec::new();
    let acme = servable(&mock, "acme");
    collect_until(&c, &mut got, |g| g.len() >= acme.len(), "first token");

    write_token(&file, &token(&mock, "globex", 24 * 90));
    mock.advance(Duration::from_secs(2 * 3600));
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.failure().is_none() {
        assert!(Instant::now() < deadline, "{:?}", c.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.take_timeout(LIMITS, Duration::from_millis(300)).is_none());
    let failure = c.failure().unwrap();
    c.shutdown(Duration::from_secs(2));

    assert!(failure.contains("401"), "{failure}");
    let logs = logs.text();
    let refused = format!(
        "for account {}, not {}",
        mock.account_uuid("globex"),
        mock.account_uuid("acme")
    );
    assert!(logs.contains(&refused), "{logs}");
    assert!(
        logs.contains("restart to collect the other account"),
        "{logs}"
    );
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), acme);
}
