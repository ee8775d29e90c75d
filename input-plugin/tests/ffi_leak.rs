//! No leak across the boundary: resident memory stays flat over 100,000 collect/cleanup cycles
//! (buffers handed over by collect and given back by cleanup, acks, empty collects).

mod harness;

use std::time::Duration;

use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout};
const CYCLES: usize = 100_000;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap()
}

#[test]
fn memory_is_flat_over_100k_collect_cycles() {
    let mock = source::mock(5000, 3);
    let account = Account::new(&mock, "acme");
    let props = account.props(
        &mock,
        &[
            ("limit", "50"),
            ("batch_max_records", "50"),
            ("rate_limit_per_minute", "0"),
            ("rate_limit_per_hour", "0"),
        ],
    );
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let instance = fb.started(&borrow(&props), harness::INFO);

    // Warm up with data flowing (runtime, pools, queue, dedupe windows reach their steady
    // state), then measure while the rest of the dataset goes through.
    let pages = KINDS.len() * 5000 / 50;
    let (mut cycles, mut warm_buffers) = (0, 0);
    while warm_buffers < pages * 2 / 5 && cycles < CYCLES / 2 {
        warm_buffers += instance.ticks(1000).buffers;
        cycles += 1000;
        std::thread::sleep(Duration::from_millis(15));
    }
    let before = rss_bytes();
    let (mut buffers, mut bytes) = (0, 0);
    while cycles < CYCLES {
        let ticks = instance.ticks(1000);
        buffers += ticks.buffers;
        bytes += ticks.bytes;
        cycles += 1000;
        // Give the collector time to fetch, so that many cycles carry data.
        std::thread::sleep(Duration::from_millis(15));
    }
    let after = rss_bytes();
    instance.stop(false);
    fb.unregister(&def);

    let growth = after as i64 - before as i64;
    println!(
        "leak check: {CYCLES} cycles; after warm-up ({warm_buffers} buffers) {buffers} buffers, {} KiB handed over; RSS {} KiB -> {} KiB ({:+} KiB)",
        bytes / 1024,
        before / 1024,
        after / 1024,
        growth / 1024
    );
    assert!(
        buffers >= pages / 2,
        "too few measured cycles carried data ({buffers})"
    );
    // Keeping every buffer would grow RSS by `bytes`; allow a third of it for allocator noise.
    assert!(
        growth < (bytes / 3) as i64,
        "RSS grew by {} KiB while {} KiB went through",
        growth / 1024,
        bytes / 1024
    );
}
