//! Plugin figures under the dlopen harness (`cargo bench -p op-events --bench plugin`):
//! - CPU per event from HTTP response to Fluent Bit buffer: CPU time of the plugin's threads
//!   (every thread that appeared after the mock was up: runtime workers, streams, and the
//!   instance thread running collect + cleanup) over the events delivered;
//! - collect callback latency (median, p99, max) with a full queue.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::{FluentBit, Layout};
use op_events_mock::{MockConfig, MockServer};

const KINDS: [&str; 3] = ["signinattempts", "itemusages", "auditevents"];
const PER_TYPE: usize = 20_000;

fn tasks() -> Vec<u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// utime + stime of one thread, in clock ticks.
fn task_cpu(tid: u64) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0;
    };
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mock = MockServer::start(MockConfig {
        events_per_type: PER_TYPE,
        seed: 5,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        ..Default::default()
    })
    .expect("mock");
    let url = mock.url();
    let token = mock.token("acme", &KINDS);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let props: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"on"),
        ("state_dir", state_dir.as_bytes()),
        ("format", b"ecs"),
        ("limit", b"1000"),
    ];
    let before: HashSet<u64> = tasks().into_iter().collect();
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let (instance, code) = fb.start(&props, harness::WARN);
    assert_eq!(code, 1, "{:#?}", harness::all_logs());

    // 1. Full queue: let the collector fill its bounded queue, then time collect calls (each
    //    takes a batch of whole pages and copies it into a malloc'd buffer).
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut nanos = Vec::new();
    let mut delivered = 0usize;
    let mut bytes = 0usize;
    for _ in 0..200 {
        let (buffer, took) = instance.collect_timed();
        nanos.push(took);
        if let Some(buffer) = buffer {
            delivered += harness::events::decode(&buffer).len();
            bytes += buffer.len();
        }
    }
    nanos.sort_unstable();

    // 2. Drain everything, counting events, then read the plugin threads' CPU.
    let total = KINDS.len() * PER_TYPE;
    let mut idle_rounds = 0;
    while delivered < total && idle_rounds < 400 {
        match instance.collect() {
            Some(buffer) => {
                delivered += harness::events::decode(&buffer).len();
                bytes += buffer.len();
                idle_rounds = 0;
            }
            None => {
                idle_rounds += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let events = delivered;
    let plugin_threads: Vec<u64> = tasks()
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();
    let cpu_ticks: u64 = plugin_threads.iter().map(|t| task_cpu(*t)).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let wall = started.elapsed();
    instance.pause();
    instance.pre_exit(false);
    instance.exit();
    fb.unregister(&def);

    let cpu_secs = cpu_ticks as f64 / hz;
    println!(
        "plugin: {events} events ({bytes} bytes) in {wall:.2?}; plugin threads CPU {cpu_secs:.3} s = {:.3} µs/event",
        cpu_secs * 1e6 / events.max(1) as f64
    );
    println!(
        "collect with a full queue: {} calls, median {} ns, p99 {} ns, max {} ns",
        nanos.len(),
        percentile(&nanos, 0.5),
        percentile(&nanos, 0.99),
        nanos.last().unwrap()
    );
}
