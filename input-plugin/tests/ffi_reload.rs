//! Hot reload in the order Fluent Bit 5.1.1 uses (ABI doc §10): Register(new def) → old
//! instance: Pause, Pause, PreExit(1), Exit → Unregister(old def) → Init(new). The new
//! registration keeps valid strings, the new instance starts unpaused from the old one's
//! checkpoints, and across both every event arrives: exactly once with `checkpoint_delay 0` (as
//! for `threaded off`), and by default with only the batches taken within the delay before the
//! reload's pause delivered twice.

mod harness;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout};

/// What a reload run saw: every event, when the collect call that handed over each event's
/// batch began (by uuid), and when the reload paused the old instance.
struct Reloaded {
    got: Vec<events::Event>,
    handed: HashMap<String, Instant>,
    paused: Instant,
}

#[test]
fn hot_reload_continues_from_the_checkpoints() {
    let mock = source::mock(300, 11);
    let account = Account::new(&mock, "acme");
    let run = reload(&mock, &account, "0");
    source::assert_account_delivered(&mock, account.name, &run.got, true);
}

#[test]
fn hot_reload_mid_stream_fetches_only_the_batches_within_the_delay_again() {
    let mock = source::mock(300, 12);
    let account = Account::new(&mock, "acme");
    let run = reload(&mock, &account, "1s");
    let (mut seen, mut once, mut twice) = (HashSet::new(), Vec::new(), Vec::new());
    for event in run.got {
        let id = event.raw_uuid();
        if seen.insert(id.clone()) {
            once.push(event);
        } else {
            twice.push(id);
        }
    }
    source::assert_account_delivered(&mock, account.name, &once, true);
    assert!(!twice.is_empty(), "the reload came mid-stream");
    for id in twice {
        let age = run.paused - run.handed[&id];
        assert!(
            age < Duration::from_millis(1100),
            "{id} was with Fluent Bit for {age:?} before the reload, yet delivered again"
        );
    }
}

/// Reads a third of the account, reloads, reads the rest with the new instance.
fn reload(mock: &op_events_mock::MockServer, account: &Account, delay: &str) -> Reloaded {
    // Small pages, so the reload happens with data still queued.
    let props = account.props(
        mock,
        &[
            ("format", "raw"),
            ("limit", "20"),
            ("rate_limit_per_minute", "0"),
            ("checkpoint_delay", delay),
        ],
    );
    let props = borrow(&props);
    let total = KINDS.len() * 300;
    let fb = FluentBit::load(Layout::V41);
    let old_def = fb.register();
    let old = fb.started(&props, harness::INFO);

    let mut got = Vec::new();
    let mut handed = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < total / 3 {
        assert!(Instant::now() < deadline, "no progress before reload");
        let before = Instant::now();
        if let Some(buffer) = old.collect() {
            let batch = events::decode(&buffer);
            handed.extend(batch.iter().map(|e| (e.raw_uuid(), before)));
            got.extend(batch);
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let new_def = fb.register();
    let paused = Instant::now();
    old.stop(true);
    fb.unregister(&old_def);
    assert_eq!(
        new_def.name(),
        "onepassword",
        "the new def's strings survive the old Unregister"
    );
    let new = fb.started(&props, harness::INFO);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut distinct: HashSet<String> = got.iter().map(events::Event::raw_uuid).collect();
    while distinct.len() < total {
        assert!(
            Instant::now() < deadline,
            "the reloaded instance stalled at {} of {total}",
            distinct.len()
        );
        if let Some(buffer) = new.collect() {
            let batch = events::decode(&buffer);
            distinct.extend(batch.iter().map(events::Event::raw_uuid));
            got.extend(batch);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..10 {
        if let Some(buffer) = new.collect() {
            got.extend(events::decode(&buffer));
        }
    }

    new.stop(false);
    fb.unregister(&new_def);
    Reloaded {
        got,
        handed,
        paused,
    }
}
