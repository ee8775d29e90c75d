//! The collector core against the real mock over loopback, through the library API.

mod connect_proxy;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use op_events_input::config::{Compression, Config};
use op_events_input::encode::Target;
use op_events_input::event::Format;
use op_events_input::pipeline::{BatchLimits, Collector};
use op_events_mock::{
    Fault, FaultKind, MockConfig, MockServer, MspAccounts, Region, Tls, TokenSpec,
};
use secrecy::SecretString;

const ALL: &[&str] = &["signinattempts", "itemusages", "auditevents"];
/// One 50-event page per batch, so that restarts land at many points of a drain.
const LIMITS: BatchLimits = BatchLimits {
    max_records: 50,
    max_bytes: 1 << 20,
};

fn mock(events: usize) -> MockServer {
    MockServer::start(MockConfig {
        events_per_type: events,
        seed: 7,
        ..MockConfig::default()
    })
    .unwrap()
}

fn config(mock: &MockServer, token: &str, state: &std::path::Path) -> Config {
    let mut c = Config::from_pairs([
        ("base_url", mock.url().as_str()),
        ("limit", "50"),
        ("poll_interval", "200ms"),
        ("retry_initial", "20ms"),
        ("retry_max", "200ms"),
        ("unauthorized_retry", "300ms"),
        ("format", "raw"),
    ])
    .unwrap();
    c.token = Some(SecretString::from(token.to_owned()));
    c.state_dir = state.to_path_buf();
    c
}

/// The event's own uuid: the shallowest `uuid` key (nested user uuids are deeper).
fn uuid_of(line: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
    let mut level = vec![&v];
    while !level.is_empty() {
        let mut next = Vec::new();
        for v in level {
            if let Some(o) = v.as_object() {
                if let Some(u) = o.get("uuid").and_then(|u| u.as_str()) {
                    return u.to_owned();
                }
                next.extend(o.values());
            }
        }
        level = next;
    }
    panic!("no uuid in {}", String::from_utf8_lossy(line));
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// Takes and acks batches until caught up (or `max_batches`), returning delivered records.
fn drain_records(c: &Collector, max_batches: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    let mut batches = 0;
    while batches < max_batches && !c.is_caught_up() {
        assert!(
            Instant::now() < deadline,
            "timed out; progress {:?}",
            c.progress()
        );
        if let Some(b) = c.take_timeout(LIMITS, Duration::from_millis(50)) {
            assert_eq!(lines(&b.to_vec()).count(), b.records);
            out.extend(lines(&b.to_vec()).map(|l| String::from_utf8(l.to_vec()).unwrap()));
            c.ack(b.ack);
            batches += 1;
        }
    }
    out
}

/// As [`drain_records`], returning the delivered records' uuids.
fn drain(c: &Collector, max_batches: usize) -> Vec<String> {
    drain_records(c, max_batches)
        .iter()
        .map(|r| uuid_of(r.as_bytes()))
        .collect()
}

/// One run of a collector on `state`, from start until caught up, then stopped: the uuids
/// it delivered.
fn run_to_the_end(mock: &MockServer, token: &str, state: &std::path::Path) -> Vec<String> {
    let c = Collector::start(config(mock, token, state), Target::Ndjson, None).unwrap();
    let delivered = drain(&c, usize::MAX);
    c.shutdown(Duration::from_secs(2));
    delivered
}

fn servable(mock: &MockServer, kinds: &[&str]) -> Vec<String> {
    kinds
        .iter()
        .flat_map(|k| mock.servable_events("acme", k))
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_exactly_once(delivered: &[String], expected: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for u in delivered {
        *counts.entry(u).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let want: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let got: HashSet<&str> = counts.keys().copied().collect();
    assert_eq!(got.len(), delivered.len());
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert_eq!(got.len(), want.len());
}

#[test]
fn exactly_once_across_restarts_and_late_arrivals() {
    let mock = mock(300);
    let token = mock.token("acme", ALL);
    let state = tempfile::tempdir().unwrap();
    let mut delivered = Vec::new();
    let mut rounds = 0;
    // Stop at pseudo-random points: after 1, 3, 2, 5, … batches.
    loop {
        rounds += 1;
        let c =
            Collector::start(config(&mock, &token, state.path()), Target::Ndjson, None).unwrap();
        delivered.extend(drain(&c, 1 + (rounds * 7) % 5));
        let done = c.is_caught_up();
        c.shutdown(Duration::from_secs(2));
        if done {
            break;
        }
        assert!(rounds < 100);
    }
    assert!(rounds > 3, "stopped only {rounds} times");
    // Late item usages (old timestamps, ingested now) and new events of every kind.
    mock.generate("acme", "itemusages", 40, true);
    mock.generate("acme", "auditevents", 10, false);
    let c = Collector::start(config(&mock, &token, state.path()), Target::Ndjson, None).unwrap();
    delivered.extend(drain(&c, usize::MAX));
    // A stop with a batch taken but never acked: it comes again next time.
    mock.generate("acme", "signinattempts", 30, false);
    std::thread::sleep(Duration::from_millis(400));
    let b = c
        .take_timeout(LIMITS, Duration::from_secs(5))
        .expect("new events");
    c.shutdown(Duration::from_secs(2));
    let unacked: HashSet<String> = lines(&b.to_vec()).map(uuid_of).collect();
    let again = run_to_the_end(&mock, &token, state.path());
    assert!(
        unacked.iter().all(|u| again.contains(u)),
        "unacked events were lost"
    );
    delivered.extend(again);
    assert_exactly_once(&delivered, &servable(&mock, ALL));
    assert_eq!(mock.stats().rate_limited, 0);
}

#[test]
fn every_fault_kind_is_survived_without_loss() {
    let mock = mock(200);
    let token = mock.token("acme", ALL);
    let state = tempfile::tempdir().unwrap();
    for kind in [
        FaultKind::Status(500),
        FaultKind::Status(503),
        FaultKind::Truncate,
        FaultKind::Reset,
        FaultKind::InvalidJson,
        FaultKind::Delay(Duration::from_millis(300)),
        FaultKind::Status(429),
    ] {
        mock.inject(Fault {
            kind,
            count: 2,
            path: None,
        });
    }
    let mut c = config(&mock, &token, state.path());
    c.request_timeout = Duration::from_secs(5);
    let c = Collector::start(c, Target::Ndjson, None).unwrap();
    let delivered = drain(&c, usize::MAX);
    c.shutdown(Duration::from_secs(2));
    assert_exactly_once(&delivered, &servable(&mock, ALL));
}

/// The client asks for gzip by default; a server that uses it delivers the same events. With
/// `compression none` it asks for the pages as they are.
#[test]
fn gzip_compressed_pages_arrive_whole() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 200,
        gzip: true,
        ..MockConfig::default()
    })
    .unwrap();
    let token = mock.token("acme", ALL);
    let state = tempfile::tempdir().unwrap();
    let delivered = run_to_the_end(&mock, &token, state.path());
    assert_exactly_once(&delivered, &servable(&mock, ALL));
    // 12 pages of 50, and the introspection and polls after them.
    let gzipped = mock.stats().gzipped;
    assert!(gzipped >= 12, "{:?}", mock.stats());

    // `compression none` asks for pages as they are, and gets them.
    let state = tempfile::tempdir().unwrap();
    let mut plain = config(&mock, &token, state.path());
    plain.compression = Compression::None;
    let c = Collector::start(plain, Target::Ndjson, None).unwrap();
    let delivered = drain(&c, usize::MAX);
    c.shutdown(Duration::from_secs(2));
    assert_exactly_once(&delivered, &servable(&mock, ALL));
    assert_eq!(mock.stats().gzipped, gzipped, "{:?}", mock.stats());
}

/// An ordinary account's v2 events carry none of the fields the docs mark "MSP accounts only":
/// every event still arrives, in every format, and no record invents them.
#[test]
fn an_ordinary_accounts_events_arrive_in_every_format() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 100,
        msp_accounts: MspAccounts::None,
        ..MockConfig::default()
    })
    .unwrap();
    let token = mock.token("acme", ALL);
    for format in [Format::Raw, Format::Ecs, Format::Ocsf] {
        let state = tempfile::tempdir().unwrap();
        let mut c = config(&mock, &token, state.path());
        c.format = format;
        let c = Collector::start(c, Target::Ndjson, None).unwrap();
        let records = drain_records(&c, usize::MAX);
        c.shutdown(Duration::from_secs(2));
        assert_eq!(records.len(), 300, "{format:?}");
        for record in &records {
            for field in ["user_type", "user_account_uuid", "actor_account_uuid"] {
                assert!(!record.contains(field), "{format:?}: {record}");
            }
        }
    }
}

/// Over HTTPS, as the real API is: with the mock's CA in `ca_file`, the same events.
#[test]
fn https_pages_arrive_whole_with_ca_file() {
    let tls = Tls::self_signed(&["127.0.0.1"]).unwrap();
    let (state, pki) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = pki.path().join("mock-ca.pem");
    std::fs::write(&ca, tls.ca_pem().unwrap()).unwrap();
    let mock = MockServer::start(MockConfig {
        events_per_type: 200,
        tls: Some(tls),
        ..MockConfig::default()
    })
    .unwrap();
    assert!(mock.url().starts_with("https://"), "{}", mock.url());
    let token = mock.token("acme", ALL);
    let mut config = config(&mock, &token, state.path());
    config.ca_file = Some(ca);
    let c = Collector::start(config, Target::Ndjson, None).unwrap();
    let delivered = drain(&c, usize::MAX);
    c.shutdown(Duration::from_secs(2));
    assert_exactly_once(&delivered, &servable(&mock, ALL));
}

#[test]
fn request_timeout_and_429_storm_recover() {
    let mock = mock(100);
    let token = mock.token("acme", &["auditevents"]);
    let state = tempfile::tempdir().unwrap();
    mock.inject(Fault {
        kind: FaultKind::Delay(Duration::from_secs(3)),
        count: 1,
        path: Some("/api/v2/auditevents".into()),
    });
    mock.inject(Fault {
        kind: FaultKind::Status(429),
        count: 3,
        path: None,
    });
    let mut c = config(&mock, &token, state.path());
    c.request_timeout = Duration::from_millis(500);
    let c = Collector::start(c, Target::Ndjson, None).unwrap();
    let delivered = drain(&c, usize::MAX);
    c.shutdown(Duration::from_secs(2));
    assert_exactly_once(&delivered, &servable(&mock, &["auditevents"]));
    assert_eq!(mock.stats().rate_limited, 3);
}

#[test]
fn budget_shared_by_streams_never_causes_a_429() {
    let mock = mock(400);
    let token = mock.token("acme", ALL);
    let state = tempfile::tempdir().unwrap();
    let mut c = config(&mock, &token, state.path());
    c.limit = 10;
    let c = Collector::start(c, Target::Ndjson, None).unwrap();
    // 600/min shared by introspection and three streams with 120 pages of backlog: a burst of
    // 30, then one request every 61 s / 600 ≈ 102 ms; never a 429.
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut got = 0;
    while let Some(b) = c.try_take(LIMITS) {
        got += b.records;
        c.ack(b.ack);
    }
    c.shutdown(Duration::from_secs(2));
    let elapsed = started.elapsed().as_secs_f64();
    let stats = mock.stats();
    let requests: u64 = stats.requests.iter().map(|r| r.count).sum();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    let most = 30.0 + elapsed * 600.0 / 61.0 + 1.0;
    assert!(
        (requests as f64) <= most && requests >= 50,
        "{requests} requests in {elapsed:.1}s"
    );
    assert!(got >= 400, "{got}");
}

#[test]
fn unauthorized_stream_is_explained_others_flow() {
    let mock = mock(50);
    let token = mock.token("acme", &["signinattempts"]);
    let state = tempfile::tempdir().unwrap();
    let mut c = config(&mock, &token, state.path());
    c.events = Some(vec![
        "signinattempts".parse().unwrap(),
        "auditevents".parse().unwrap(),
    ]);
    let c = Collector::start(c, Target::Ndjson, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while c.failure().is_none() || got.len() < 50 {
        assert!(Instant::now() < deadline, "{:?}", c.progress());
        if let Some(b) = c.take_timeout(LIMITS, Duration::from_millis(50)) {
            got.extend(lines(&b.to_vec()).map(uuid_of));
            c.ack(b.ack);
        }
    }
    let failure = c.failure().unwrap();
    assert!(
        failure.contains("lacks the `auditevents` feature"),
        "{failure}"
    );
    assert!(!c.is_caught_up());
    // Slow retry, never a spin: a handful of 401s in a second.
    std::thread::sleep(Duration::from_secs(1));
    c.shutdown(Duration::from_secs(2));
    let s = mock.stats();
    assert!(s.count("/api/v2/auditevents", 401) <= 5, "{s:?}");
    assert_exactly_once(&got, &servable(&mock, &["signinattempts"]));
}

#[test]
fn rejected_cursor_restarts_from_last_event_without_duplicates() {
    let mock = mock(200);
    let token = mock.token("acme", &["itemusages"]);
    let state = tempfile::tempdir().unwrap();
    let first = run_to_the_end(&mock, &token, state.path());
    // Garble the saved cursor: the API answers 400.
    let file = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("itemusages.json"))
        .unwrap();
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    saved["cursor"] = "garbled".into();
    std::fs::write(&file, serde_json::to_vec(&saved).unwrap()).unwrap();
    mock.generate("acme", "itemusages", 20, false);
    let second = run_to_the_end(&mock, &token, state.path());
    assert!(mock.stats().count("/api/v2/itemusages", 400) >= 1);
    let mut all = first;
    all.extend(second);
    assert_exactly_once(&all, &servable(&mock, &["itemusages"]));
}

/// A SIGKILL between writing a state file and renaming it leaves a temp file: the stream's next
/// run removes its own, and no other stream's (that one may be writing it).
#[test]
fn temp_state_files_a_crash_left_are_removed_by_their_streams_next_run() {
    let mock = mock(20);
    let token = mock.token("acme", &["itemusages"]);
    let state = tempfile::tempdir().unwrap();
    run_to_the_end(&mock, &token, state.path());
    let saved = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with("itemusages.json"))
        .unwrap();
    let ours = state.path().join(format!(".tmp-{saved}-x7Yz01"));
    let other = state
        .path()
        .join(".tmp-state-OTHER-v2-itemusages.json-x7Yz01");
    for f in [&ours, &other] {
        std::fs::write(f, b"{\"cursor\":").unwrap();
    }
    run_to_the_end(&mock, &token, state.path());
    assert!(!ours.exists(), "{} left", ours.display());
    assert!(other.exists());
}

/// A 429 on introspection is the account's budget spent elsewhere, not a failure: its
/// `Retry-After` (1 s from the mock's faults) is waited out, not a backoff of milliseconds.
#[test]
fn introspection_waits_out_a_429_retry_after() {
    let mock = mock(20);
    let token = mock.token("acme", &["itemusages"]);
    mock.inject(Fault {
        kind: FaultKind::Status(429),
        count: 2,
        path: Some("/api/v2/auth/introspect".into()),
    });
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let c = Collector::start(config(&mock, &token, state.path()), Target::Ndjson, None).unwrap();
    let got = drain(&c, usize::MAX);
    let took = started.elapsed();
    assert_eq!(c.failure(), None);
    c.shutdown(Duration::from_secs(2));
    assert_eq!(mock.stats().count("/api/v2/auth/introspect", 429), 2);
    assert!(
        took >= Duration::from_secs(2),
        "two Retry-After: 1 waited out in {took:?}"
    );
    assert_exactly_once(&got, &servable(&mock, &["itemusages"]));
}

/// An event dated in the future (a client with a wrong clock) must not become the restart
/// point of a rejected cursor: a reset from 2099 would never serve another event.
#[test]
fn a_future_dated_event_does_not_move_the_restart_point_past_new_events() {
    let mock = mock(20);
    let token = mock.token("acme", &["itemusages"]);
    let mut future = mock.events("acme", "itemusages")[0].clone();
    future["uuid"] = "FUTUREDATEDITEMUSAGE000000".into();
    future["timestamp"] = "2099-01-01T00:00:00Z".into();
    mock.append("acme", "itemusages", vec![future]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut all = run_to_the_end(&mock, &token, state.path());
    assert!(all.iter().any(|u| u == "FUTUREDATEDITEMUSAGE000000"));
    mock.generate("acme", "itemusages", 5, false);
    mock.inject(Fault {
        kind: FaultKind::Status(400),
        count: 1,
        path: Some("/api/v2/itemusages".into()),
    });
    all.extend(run_to_the_end(&mock, &token, state.path()));
    assert_eq!(mock.stats().count("/api/v2/itemusages", 400), 1);
    assert_exactly_once(&all, &servable(&mock, &["itemusages"]));
}

/// A 404 says nothing about the cursor (a proxy's page, a wrong path): the same cursor is
/// tried again, so events that reached the API late, with older timestamps, still arrive; a
/// reset from the newest delivered time would skip them.
#[test]
fn not_found_keeps_the_cursor() {
    let mock = mock(200);
    let token = mock.token("acme", &["itemusages"]);
    // The newest delivered event is from now, the late ones minutes to hours older.
    mock.generate("acme", "itemusages", 10, false);
    let state = tempfile::tempdir().unwrap();
    let mut all = run_to_the_end(&mock, &token, state.path());
    mock.generate("acme", "itemusages", 20, true);
    mock.inject(Fault {
        kind: FaultKind::Status(404),
        count: 1,
        path: Some("/api/v2/itemusages".into()),
    });
    all.extend(run_to_the_end(&mock, &token, state.path()));
    assert_eq!(mock.stats().count("/api/v2/itemusages", 404), 1);
    assert_exactly_once(&all, &servable(&mock, &["itemusages"]));
}

#[test]
fn unreadable_state_fails_start_and_names_the_file() {
    let mock = mock(10);
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("state-X-v2-auditevents.json"), "{").unwrap();
    let e = Collector::start(config(&mock, "t", state.path()), Target::Ndjson, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("state-X-v2-auditevents.json is not a valid op-events state file")
            && msg.contains("put back a good copy")
            && msg.contains("delete it"),
        "{msg}"
    );
}

/// A lock file the collector cannot open (here a directory, which even root cannot open for
/// writing) fails the start: the stream would otherwise run unguarded.
#[test]
fn unopenable_lock_file_fails_start_and_names_the_file() {
    let mock = mock(10);
    let state = tempfile::tempdir().unwrap();
    std::fs::create_dir(state.path().join("state-X-v2-auditevents.lock")).unwrap();
    let e = Collector::start(config(&mock, "t", state.path()), Target::Ndjson, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("state-X-v2-auditevents.lock cannot be opened for writing")
            && msg.contains("writable by the user the collector runs as"),
        "{msg}"
    );
}

#[test]
fn backpressure_stops_fetching_and_pause_holds() {
    let mock = mock(1000);
    let token = mock.token("acme", ALL);
    let state = tempfile::tempdir().unwrap();
    let mut c = config(&mock, &token, state.path());
    c.max_buffered_events = 100;
    let c = Collector::start(c, Target::Ndjson, None).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(c.buffered_events() <= 100, "{}", c.buffered_events());
    let served = mock.stats().events_served;
    assert!(served <= 250, "{served}");
    c.pause();
    while let Some(b) = c.try_take(LIMITS) {
        c.ack(b.ack);
    }
    std::thread::sleep(Duration::from_millis(300));
    let paused_at = mock.stats().events_served;
    std::thread::sleep(Duration::from_millis(500));
    assert!(mock.stats().events_served <= paused_at + 150);
    c.resume();
    let rest = drain(&c, usize::MAX);
    assert!(!rest.is_empty());
    c.shutdown(Duration::from_secs(2));
}

/// Captures every log line at TRACE.
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

    /// A logger writing into this capture, from `level` up.
    fn dispatch(&self, level: tracing::Level) -> tracing::Dispatch {
        let writer = self.clone();
        tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(move || writer.clone())
                .finish(),
        )
    }
}

#[test]
fn the_token_is_never_logged() {
    let mock = mock(60);
    let token = mock.token("acme", &["itemusages"]);
    let capture = Capture::default();
    let dispatch = capture.dispatch(tracing::Level::TRACE);
    let state = tempfile::tempdir().unwrap();
    mock.inject(Fault {
        kind: FaultKind::Status(500),
        count: 1,
        path: None,
    });
    let mut c = config(&mock, &token, state.path());
    c.events = Some(vec![
        "itemusages".parse().unwrap(),
        "auditevents".parse().unwrap(),
    ]);
    let c = Collector::start(c, Target::Ndjson, Some(dispatch.clone())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.failure().is_none() {
        assert!(Instant::now() < deadline);
        if let Some(b) = c.take_timeout(LIMITS, Duration::from_millis(50)) {
            c.ack(b.ack);
        }
    }
    c.shutdown(Duration::from_secs(2));
    let bad = Config::from_pairs([("token", token.as_str()), ("limit", "0")]).unwrap_err();
    tracing::dispatcher::with_default(&dispatch, || tracing::error!("{bad}"));
    let logs = capture.text();
    assert!(logs.lines().count() > 5, "{logs}");
    let signature = token.rsplit('.').next().unwrap();
    for line in logs.lines() {
        assert!(!line.contains(signature), "token in log line: {line}");
    }
    for f in std::fs::read_dir(state.path()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(signature));
    }
    let _ = std::io::stderr().flush();
}

/// A collector of the real API's address through `proxy`, its backoff 10 to 20 ms, waiting
/// `unauthorized_retry` after a failure that needs a person; with its log and state directory.
fn through_proxy(
    proxy: &connect_proxy::ConnectProxy,
    unauthorized_retry: &str,
) -> (Collector, Capture, tempfile::TempDir) {
    let capture = Capture::default();
    let state = tempfile::tempdir().unwrap();
    let mut c = Config::from_pairs([
        ("base_url", "https://events.1password.com"),
        ("proxy", proxy.url().as_str()),
        ("retry_initial", "10ms"),
        ("retry_max", "20ms"),
        ("unauthorized_retry", unauthorized_retry),
    ])
    .unwrap();
    c.token = Some(SecretString::from("a.b.c"));
    c.state_dir = state.path().to_path_buf();
    let c = Collector::start(
        c,
        Target::Ndjson,
        Some(capture.dispatch(tracing::Level::INFO)),
    )
    .unwrap();
    (c, capture, state)
}

/// As the plugin and `run` meet it: a proxy refusing the tunnel to the API is a failure that
/// needs a person, reported naming the proxy and tried again only every `unauthorized_retry`,
/// not at the pace of a network blip's backoff.
#[test]
fn a_proxy_refusing_the_tunnel_is_reported_and_retried_after_unauthorized_retry() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::FORBIDDEN);
    let (c, capture, _state) = through_proxy(&proxy, "5s");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.failure().is_none() {
        assert!(Instant::now() < deadline, "no failure: {}", capture.text());
        std::thread::sleep(Duration::from_millis(10));
    }
    // A backoff of 10 to 20 ms would have tried again many times by now.
    std::thread::sleep(Duration::from_millis(500));
    let failure = c.failure().unwrap();
    c.shutdown(Duration::from_secs(2));
    let refused = format!(
        "proxy {} refused the tunnel to events.1password.com:443 (403 Forbidden): ask its \
         administrators to allow events.1password.com:443, or unset `proxy` (--proxy) if this \
         machine reaches events.1password.com directly",
        proxy.url()
    );
    assert_eq!(failure, format!("introspection failed: {refused}"));
    // Tried, and asked again for the status.
    assert_eq!(proxy.heads().len(), 2, "{}", capture.text());
    let logs = capture.text();
    assert!(
        logs.contains(&format!("introspection failed: {refused}; retrying in 5s")),
        "{logs}"
    );
}

/// As the plugin and `run` meet it: a proxy that cannot reach the API (a 503 to `CONNECT`) is
/// an outage, tried again after the backoff as when the API itself is down, not only every
/// `unauthorized_retry`; the log names the proxy and its status.
#[test]
fn a_proxy_that_cannot_reach_the_api_is_retried_as_an_outage() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::SERVICE_UNAVAILABLE);
    let (c, capture, _state) = through_proxy(&proxy, "1h");
    // Four attempts, each tried and asked again: only a backoff allows that.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.heads().len() < 8 {
        assert!(Instant::now() < deadline, "not retried: {}", capture.text());
        std::thread::sleep(Duration::from_millis(10));
    }
    c.shutdown(Duration::from_secs(2));
    let logs = capture.text();
    let outage = format!(
        "introspection failed: network: proxy {} could not reach events.1password.com:443 (503 \
         Service Unavailable); if this lasts, the proxy's log says why; retrying in",
        proxy.url()
    );
    assert!(logs.matches(&outage).count() >= 3, "{logs}");
    assert!(!logs.contains("refused"), "{logs}");
}

/// A token of `account` for every event type, expiring `hours` from the mock's now.
fn token_for(mock: &MockServer, account: &str, hours: i64) -> String {
    let now = mock.now();
    mock.mint(&TokenSpec {
        region: Region::Us,
        features: ALL.iter().map(|f| f.to_string()).collect(),
        account: account.to_owned(),
        issued_at: now,
        expires_at: Some(now + jiff::SignedDuration::from_hours(hours)),
        legacy_audience: false,
    })
}

/// Replaces the token file's contents the way a secret store does: a new file renamed over it.
fn write_token(path: &std::path::Path, token: &str) {
    let next = path.with_extension("new");
    std::fs::write(&next, format!("{token}\n")).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// A collector reading its token from `file`, retrying a rejected token only after the
/// default five minutes: anything sooner is the rotation's doing.
fn start_with_token_file(mock: &MockServer, file: &std::path::Path, logs: &Capture) -> Collector {
    let state = file.with_file_name("state");
    let mut c = config(mock, "unused", &state);
    c.token = None;
    c.token_file = Some(file.to_path_buf());
    c.unauthorized_retry = Duration::from_secs(300);
    Collector::start(c, Target::Ndjson, Some(logs.dispatch(tracing::Level::INFO))).unwrap()
}

/// Takes and acks batches until `want` events arrived in all, for up to 10 s.
fn collect_until(c: &Collector, got: &mut Vec<String>, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "{what}: {} events so far; progress {:?}",
            got.len(),
            c.progress()
        );
        if let Some(b) = c.take_timeout(LIMITS, Duration::from_millis(50)) {
            got.extend(lines(&b.to_vec()).map(uuid_of));
            c.ack(b.ack);
        }
    }
}

/// Token rotation as documented: a new token written to `token_file`, then the old one
/// revoked; the collector goes on within a poll, not after `unauthorized_retry`.
#[test]
fn a_new_token_in_token_file_replaces_a_revoked_one_without_a_restart() {
    let mock = mock(30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let old = token_for(&mock, "acme", 24 * 30);
    write_token(&file, &old);
    let logs = Capture::default();
    let c = start_with_token_file(&mock, &file, &logs);
    let mut got = Vec::new();
    collect_until(&c, &mut got, servable(&mock, ALL).len(), "first token");

    write_token(&file, &token_for(&mock, "acme", 24 * 90));
    mock.revoke(&old);
    for kind in ALL {
        mock.generate("acme", kind, 5, false);
    }
    let all = servable(&mock, ALL);
    collect_until(&c, &mut got, all.len(), "after the rotation");
    c.shutdown(Duration::from_secs(2));

    assert_exactly_once(&got, &all);
    let logs = logs.text();
    assert!(
        logs.contains("token_file holds a new token, accepted by the API; using it"),
        "{logs}"
    );
    // The three streams were rejected together; one introspection served them all.
    let stats = mock.stats();
    assert_eq!(stats.count("/api/v2/auth/introspect", 200), 2, "{stats:?}");
}

/// Expiry, the other way a token ends, with a new token of another account in the file: it is
/// refused, and nothing of that account is delivered.
#[test]
fn a_new_token_for_another_account_is_refused() {
    let mock = mock(30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    write_token(&file, &token_for(&mock, "acme", 1));
    let logs = Capture::default();
    let c = start_with_token_file(&mock, &file, &logs);
    let mut got = Vec::new();
    let acme = servable(&mock, ALL);
    collect_until(&c, &mut got, acme.len(), "first token");

    write_token(&file, &token_for(&mock, "globex", 24 * 90));
    mock.advance(Duration::from_secs(2 * 3600));
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.failure().is_none() {
        assert!(Instant::now() < deadline, "{:?}", c.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.take_timeout(LIMITS, Duration::from_millis(300)).is_none());
    let failure = c.failure().unwrap();
    // The streams wait out `unauthorized_retry`, watching the file: shutdown ends that at once.
    let stopping = Instant::now();
    c.shutdown(Duration::from_secs(2));
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");

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
    assert_exactly_once(&got, &acme);
}

/// Waits up to 10 s until the logs hold `n` lines containing `text`.
fn wait_for_log(logs: &Capture, text: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs.text().matches(text).count() < n {
        assert!(Instant::now() < deadline, "{}", logs.text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A new token written to `token_file` only after the API rejected the old one ends the wait
/// of `unauthorized_retry` (five minutes here) within a few seconds: at start (introspection),
/// then with the three streams waiting together, which share one renewal.
#[test]
fn a_token_written_after_the_rejection_ends_the_wait() {
    let mock = mock(30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let revoked = token_for(&mock, "acme", 24 * 30);
    mock.revoke(&revoked);
    write_token(&file, &revoked);
    let logs = Capture::default();
    let c = start_with_token_file(&mock, &file, &logs);
    wait_for_log(&logs, "retrying in 300s", 1);

    let second = token_for(&mock, "acme", 24 * 60);
    write_token(&file, &second);
    let mut got = Vec::new();
    collect_until(&c, &mut got, servable(&mock, ALL).len(), "first new token");

    // The token in use revoked with nothing new in the file: every stream waits.
    mock.revoke(&second);
    wait_for_log(&logs, "retrying in 300s", 1 + ALL.len());
    write_token(&file, &token_for(&mock, "acme", 24 * 90));
    for kind in ALL {
        mock.generate("acme", kind, 5, false);
    }
    let all = servable(&mock, ALL);
    collect_until(&c, &mut got, all.len(), "second new token");
    c.shutdown(Duration::from_secs(2));

    assert_exactly_once(&got, &all);
    // One renewal at start, the launch's own introspection, one renewal for the three streams.
    let stats = mock.stats();
    assert_eq!(stats.count("/api/v2/auth/introspect", 200), 3, "{stats:?}");
}
