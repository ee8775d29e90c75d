//! Plugin figures under the dlopen harness (`cargo bench -p op-events --bench plugin`):
//! - CPU per event from HTTP response to Fluent Bit buffer: CPU time of the collector's runtime
//!   threads (named `op-events`: requests, parse, normalize, encode, checkpoints) plus that of
//!   the collect and cleanup calls on the instance thread, over the events delivered, in total
//!   and split. The harness's copy of each buffer (Fluent Bit's append to its chunk) and the
//!   mock's threads are not the plugin's: the copy is printed apart, the mock left out;
//! - collect callback latency (median, p99, max) with a full queue;
//! - the same pages fetched, then parsed and encoded, on one thread with the plugin's own client
//!   and encoder: what the network part alone costs, and so what is left for the rest;
//! - the collector threads' minor page faults per 1,000 events (each costs about as much as
//!   encoding an event or two; recycled buffers avoid them).
//!
//! With `GZIP=1` the mock sends its pages gzip-compressed, and every figure includes inflating
//! them, unless `COMPRESSION=none` has the plugin ask for them as they are; with `TLS=1` it
//! serves HTTPS (the real API is HTTPS only), and every figure includes decrypting them.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use divan::black_box;
use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout, Timing};
use op_events_input::api::{Client, Request};
use op_events_input::config::{Compression, Config, StartTime};
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use op_events_input::json::Tape;
use op_events_input::token::Token;
use op_events_mock::{MockConfig, MockServer, Tls};
use secrecy::SecretString;

const PER_TYPE: usize = 50_000;
/// Timed collect calls, each meeting a full queue.
const FULL_QUEUE_CALLS: usize = 120;
/// Pause between them: the collector refills the page a call took in a few milliseconds.
const REFILL: Duration = Duration::from_millis(25);

/// A thread's name.
fn comm(tid: u64) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default()
}

fn tasks() -> Vec<u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time one thread has run, in nanoseconds (`schedstat`, not tick-granular).
fn task_cpu_ns(tid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Minor page faults one thread has taken (fresh memory touched for the first time).
fn task_minor_faults(tid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the parenthesized name: state is 3rd, minflt the 10th.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

/// Collect calls seen: durations of those with and without data, events and bytes.
#[derive(Default)]
struct Stats {
    with_data: Vec<u64>,
    /// CPU time of the calls with data.
    with_data_cpu: Vec<u64>,
    /// (duration, CPU time, bytes) of every call with data, to see what the slow ones were.
    sized: Vec<(u64, u64, usize)>,
    empty: Vec<u64>,
    events: usize,
    bytes: usize,
    collect_total: u64,
    /// CPU time of every collect and cleanup call.
    calls_cpu: u64,
}

impl Stats {
    fn record(&mut self, buffer: Option<Vec<u8>>, timing: Timing) -> bool {
        let took = timing.wall;
        self.collect_total += took;
        self.calls_cpu += timing.cpu + timing.cleanup_cpu;
        let Some(buffer) = buffer else {
            self.empty.push(took);
            return false;
        };
        self.with_data.push(took);
        self.with_data_cpu.push(timing.cpu);
        self.sized.push((took, timing.cpu, buffer.len()));
        self.events += harness::events::decode(&buffer).len();
        self.bytes += buffer.len();
        true
    }
}

/// CPU time of the parts, in nanoseconds, over `events`.
#[derive(Default)]
struct Parts {
    events: usize,
    /// Request sent, response read into the recycled buffer (kernel network path included).
    fetch: u64,
    /// Parse, normalize and encode (ECS, msgpack), on the response as it just arrived.
    encode: u64,
    /// Parse alone, on the same response again.
    parse: u64,
}

/// Every page of `account` fetched, encoded, then parsed again, one at a time on this thread,
/// with the plugin's client and encoder and none of its queue, tasks or checkpoints.
fn parts(
    mock: &MockServer,
    account: &Account,
    ca_file: Option<&Path>,
    compression: Compression,
    limit: u16,
) -> Parts {
    let config = Config {
        base_url: Some(mock.url().parse().expect("mock URL")),
        insecure_http: true,
        ca_file: ca_file.map(Path::to_path_buf),
        compression,
        ..Config::default()
    };
    let token = Token::new(SecretString::from(account.token.clone())).expect("mock token");
    let client = Client::new(&config, token).expect("client");
    let encoder = Encoder::new(
        Format::Ecs,
        Target::Msgpack,
        EncodeContext {
            account_uuid: mock.account_uuid(account.name),
            api_version: ApiVersion::V2,
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut parts, mut buffer, mut out) = (Parts::default(), Vec::new(), Vec::new());
    for kind in EventType::ALL {
        let mut request = Request::Reset {
            limit,
            start_time: StartTime::Retention.resolve(jiff::Timestamp::now()),
        };
        loop {
            let t0 = harness::thread_cpu_nanos();
            let page = runtime
                .block_on(client.fetch_into(kind, &request, std::mem::take(&mut buffer)))
                .expect("page");
            let t1 = harness::thread_cpu_nanos();
            out.clear();
            let envelope = page
                .parse(&mut Tape::default(), |item| {
                    encoder
                        .encode_parsed(kind, item.expect("valid item"), &mut out)
                        .expect("encodable item");
                })
                .expect("valid page");
            let t2 = harness::thread_cpu_nanos();
            page.parse(&mut Tape::default(), |item| _ = black_box(item.is_ok()))
                .expect("valid page");
            let t3 = harness::thread_cpu_nanos();
            parts.fetch += t1 - t0;
            parts.encode += t2 - t1;
            parts.parse += t3 - t2;
            parts.events += envelope.items;
            buffer = page.into_buffer();
            match envelope.cursor {
                Some(cursor) if envelope.has_more => request = Request::Cursor(cursor),
                _ => break,
            }
        }
    }
    parts
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // GZIP=1: pages come gzip-compressed, as the real API may send them (it does not say).
    // COMPRESSION=none: the plugin asks for pages as they are.
    // TLS=1: over HTTPS, as the real API always is.
    let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let (gzip, tls) = (on("GZIP"), on("TLS"));
    let compression = std::env::var("COMPRESSION").unwrap_or_else(|_| "gzip".into());
    let compression_setting: Compression = compression.parse().expect("COMPRESSION: gzip or none");
    // LIMIT: events per page (the API's most, 1,000, by default).
    let limit: u16 = std::env::var("LIMIT").map_or(1000, |v| v.parse().expect("LIMIT: 1 to 1000"));
    let limit_text = limit.to_string();
    let pki = tempfile::tempdir().expect("CA directory");
    let ca_file = pki.path().join("mock-ca.pem");
    let tls = tls.then(|| {
        let tls = Tls::self_signed(&["127.0.0.1"]).expect("certificate");
        std::fs::write(&ca_file, tls.ca_pem().expect("made CA")).expect("CA file");
        tls
    });
    let ca_file = tls.is_some().then_some(ca_file.as_path());
    let mock = source::mock_with(
        PER_TYPE,
        5,
        MockConfig {
            gzip,
            tls,
            ..MockConfig::default()
        },
    );
    let account = Account::new(&mock, "acme");
    let mut extra = vec![
        ("format", "ecs"),
        ("limit", &limit_text),
        ("compression", &compression),
        // The request budget off, as the mock's limits are: the API's pace is not measured.
        ("rate_limit_per_minute", "0"),
        ("rate_limit_per_hour", "0"),
    ];
    let ca_prop = ca_file.map(|p| p.to_str().expect("UTF-8 path"));
    extra.extend(ca_prop.map(|p| ("ca_file", p)));
    let props = account.props(&mock, &extra);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let instance = fb.started(&borrow(&props), harness::WARN);

    // 1. Full queue: let the collector fill its bounded queue, then time collect calls, each
    //    after a pause in which the collector refills what the last one took (and then waits,
    //    the queue being full), as the spec asks: collect's latency with a full queue.
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut stats = Stats::default();
    for _ in 0..FULL_QUEUE_CALLS {
        let (buffer, took) = instance.collect_timed();
        stats.record(buffer, took);
        std::thread::sleep(REFILL);
    }
    let full_queue = std::mem::take(&mut stats.with_data);
    let mut full_queue_cpu = std::mem::take(&mut stats.with_data_cpu);
    full_queue_cpu.sort_unstable();
    let mut slowest = std::mem::take(&mut stats.sized);
    slowest.sort_unstable_by(|a, b| b.cmp(a));
    // 2. Drain everything, then read the plugin threads' CPU.
    let total = KINDS.len() * PER_TYPE;
    let mut idle_rounds = 0;
    while idle_rounds < 400 {
        let (buffer, took) = instance.collect_timed();
        if stats.record(buffer, took) {
            idle_rounds = 0;
        } else {
            if stats.events >= total {
                break;
            }
            idle_rounds += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let batches = full_queue.len() + stats.with_data.len();
    let Stats {
        events,
        bytes,
        collect_total,
        calls_cpu,
        mut empty,
        ..
    } = stats;
    let (mut collector_ns, mut instance_ns, mut faults) = (0, 0, 0);
    for tid in tasks() {
        match comm(tid).trim() {
            op_events_input::pipeline::THREAD_NAME => {
                collector_ns += task_cpu_ns(tid);
                faults += task_minor_faults(tid);
            }
            harness::INSTANCE_THREAD => instance_ns += task_cpu_ns(tid),
            _ => {}
        }
    }
    let cpu_ns = collector_ns + calls_cpu;
    let per_event = |ns: u64| ns as f64 / 1e3 / events as f64;
    let wall = started.elapsed();
    instance.stop(false);
    fb.unregister(&def);
    assert_eq!(events, total, "not every event arrived");
    let parts = parts(&mock, &account, ca_file, compression_setting, limit);
    assert_eq!(parts.events, total, "the parts saw every event");

    let mut with_data = full_queue;
    with_data.sort_unstable();
    empty.sort_unstable();
    println!(
        "plugin: {events} ECS events{}{} ({} MB) in {wall:.2?}; plugin CPU {:.3} s = {:.3} µs/event (HTTP response to Fluent Bit buffer): collector threads {:.3} µs/event, collect + cleanup calls {:.3} µs/event (wall time of the collect calls {:.3} µs/event); not counted: the harness's copy of each buffer, as Fluent Bit's append, {:.3} µs/event",
        if gzip { ", pages gzip-compressed" } else { "" },
        if ca_file.is_some() {
            ", over HTTPS"
        } else {
            ""
        },
        bytes / 1_000_000,
        cpu_ns as f64 / 1e9,
        per_event(cpu_ns),
        per_event(collector_ns),
        per_event(calls_cpu),
        per_event(collect_total),
        per_event(instance_ns.saturating_sub(calls_cpu)),
    );
    println!(
        "collect with a full queue: {} calls with data (~{} KB each): median {} µs, p99 {} µs, max {} µs; {} empty calls: median {} ns",
        with_data.len(),
        bytes / 1000 / batches.max(1),
        percentile(&with_data, 0.5) / 1000,
        percentile(&with_data, 0.99) / 1000,
        with_data.last().unwrap() / 1000,
        empty.len(),
        percentile(&empty, 0.5),
    );
    let part = |ns: u64| ns as f64 / 1e3 / parts.events as f64;
    println!(
        "parts, on one thread with the plugin's client and encoder: fetch {:.3} µs/event (request and response read, kernel network path included), then parse + normalize + encode {:.3} µs/event, parse alone {:.3} µs/event; the plugin less the fetch: {:.3} µs/event",
        part(parts.fetch),
        part(parts.encode),
        part(parts.parse),
        per_event(cpu_ns) - part(parts.fetch),
    );
    println!(
        "collector threads' minor page faults: {:.1} per 1,000 events (memory touched for the first time: response and page buffers before the spares fill up, hyper's read buffer)",
        faults as f64 * 1000.0 / events as f64
    );
    let slow: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(took, cpu, bytes)| {
            format!(
                "{} µs ({} µs CPU) for {} KB",
                took / 1000,
                cpu / 1000,
                bytes / 1000
            )
        })
        .collect();
    println!(
        "collect CPU time with a full queue: median {} µs, p99 {} µs; slowest calls: {}",
        percentile(&full_queue_cpu, 0.5) / 1000,
        percentile(&full_queue_cpu, 0.99) / 1000,
        slow.join(", ")
    );
}
