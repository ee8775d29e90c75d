//! A threaded Fluent Bit input puts what it takes into an in-memory ring buffer that the engine
//! moves into its chunks every 250 ms, and not at all while the input is paused. So the plugin
//! checkpoints a batch only once it has been with Fluent Bit for `checkpoint_delay` (1 s unless
//! set), not counting time paused; a shutdown, which comes paused, writes only what is that old.

mod harness;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, Account, borrow};
use harness::{FluentBit, Instance, Layout};
use op_events_mock::MockServer;

const DELAY: Duration = Duration::from_secs(1);

/// The uuids in the saved audit-events state (none before the first write).
fn saved_uuids(state_dir: &Path) -> HashSet<String> {
    let Some(file) = std::fs::read_dir(state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-auditevents.json"))
    else {
        return HashSet::new();
    };
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    state["recent_uuids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

/// Collects until a buffer comes; returns its uuids and when the collect call started (no
/// later than the ack in its cleanup).
fn next_batch(instance: &Instance) -> (HashSet<String>, Instant) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let before = Instant::now();
        if let Some(buffer) = instance.collect() {
            let uuids = events::decode(&buffer)
                .iter()
                .map(events::Event::raw_uuid)
                .collect();
            return (uuids, before);
        }
        assert!(Instant::now() < deadline, "no batch within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Watches the state file until it holds `uuids`; returns how long after `since` it first did.
fn saved_after(state_dir: &Path, uuids: &HashSet<String>, since: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if saved_uuids(state_dir).is_superset(uuids) {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "never checkpointed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Audit events only, raw, every ack written as soon as it is due.
fn audit_props(mock: &MockServer, account: &Account) -> Vec<(&'static str, Vec<u8>)> {
    account.props(
        mock,
        &[
            ("events", "auditevents"),
            ("format", "raw"),
            ("checkpoint_interval", "0"),
            ("poll_interval", "1s"),
        ],
    )
}

#[test]
fn a_batch_is_checkpointed_after_the_delay_not_counting_time_paused() {
    let mock = source::mock(50, 13);
    let account = Account::new(&mock, "acme");
    let state = account.state.path();
    let props = audit_props(&mock, &account);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let instance = fb.started(&borrow(&props), harness::INFO);

    // Running: written once the batch is a second old, not before.
    let (first, handed) = next_batch(&instance);
    assert_eq!(first.len(), 50);
    let took = saved_after(state, &first, handed);
    assert!(took >= DELAY, "checkpointed {took:?} after the hand-over");

    // Paused right after a hand-over: nothing of it is written while paused, and the time
    // paused does not count towards the delay.
    mock.generate("acme", "auditevents", 20, false);
    let (second, handed) = next_batch(&instance);
    assert_eq!(second.len(), 20);
    instance.pause();
    let before_pause = handed.elapsed();
    std::thread::sleep(DELAY + DELAY / 2);
    assert!(
        saved_uuids(state).is_disjoint(&second),
        "checkpointed while paused"
    );
    let resumed = Instant::now();
    instance.resume();
    let took = before_pause + saved_after(state, &second, resumed);
    assert!(took >= DELAY, "checkpointed after {took:?} unpaused");

    // Fluent Bit pauses its inputs before it exits, and discards the ring buffer of an input
    // paused for its buffer limit: a batch taken just before the shutdown is not written, and
    // the next start fetches it again (and nothing older).
    mock.generate("acme", "auditevents", 10, false);
    let (third, _) = next_batch(&instance);
    assert_eq!(third.len(), 10);
    instance.stop(false);
    fb.unregister(&def);
    assert!(saved_uuids(state).is_disjoint(&third));
    assert!(saved_uuids(state).is_superset(&second));

    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let again = fb.started(&borrow(&props), harness::INFO);
    let (refetched, _) = next_batch(&again);
    assert_eq!(refetched, third);
    again.stop(false);
    fb.unregister(&def);
}

/// An output that cannot keep up makes Fluent Bit pause the input soon after every resume
/// (one collect over `mem_buf_limit`). The delay adds up across those short stretches, so
/// checkpoints go on, and a restart does not fetch again everything since the first pause.
#[test]
fn checkpoints_go_on_when_every_resume_is_followed_by_a_pause_within_the_delay() {
    const STRETCH: Duration = Duration::from_millis(400);
    let mock = source::mock(50, 17);
    let account = Account::new(&mock, "acme");
    let state = account.state.path();
    let props = audit_props(&mock, &account);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let instance = fb.started(&borrow(&props), harness::INFO);

    let (first, handed) = next_batch(&instance);
    assert_eq!(first.len(), 50);
    let mut unpaused = Duration::ZERO;
    let mut stretch = handed;
    loop {
        std::thread::sleep(STRETCH);
        instance.pause();
        unpaused += stretch.elapsed();
        std::thread::sleep(STRETCH);
        if saved_uuids(state).is_superset(&first) {
            break;
        }
        assert!(
            unpaused < 5 * DELAY,
            "not checkpointed after {unpaused:?} unpaused in stretches of {STRETCH:?}"
        );
        stretch = Instant::now();
        instance.resume();
    }
    assert!(
        unpaused >= DELAY,
        "checkpointed after {unpaused:?} unpaused"
    );

    // Stopped while paused, as Fluent Bit stops: the next start fetches only what came later.
    instance.stop(false);
    fb.unregister(&def);
    mock.generate("acme", "auditevents", 10, false);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let again = fb.started(&borrow(&props), harness::INFO);
    let (refetched, _) = next_batch(&again);
    assert_eq!(refetched.len(), 10);
    assert!(refetched.is_disjoint(&first));
    again.stop(false);
    fb.unregister(&def);
}

/// Fluent Bit does not tell the plugin whether its input is threaded, so a delay of 0 is taken,
/// with one warning that says when it is safe; the default says nothing.
#[test]
fn a_delay_of_zero_is_warned_about() {
    const WARNING: &str = "checkpoint_delay is 0, which is safe only with `threaded off`";
    let mock = source::mock(10, 19);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    for (delay, warnings) in [(None, 0), (Some("0"), 1)] {
        let account = Account::new(&mock, "acme");
        let mut extra = vec![("events", "auditevents")];
        extra.extend(delay.map(|d| ("checkpoint_delay", d)));
        let props = account.props(&mock, &extra);
        let instance = fb.started(&borrow(&props), harness::INFO);
        instance.stop(false);
        let logged = harness::logs_containing(WARNING);
        assert_eq!(logged.len(), warnings, "{delay:?}: {logged:?}");
        assert!(logged.iter().all(|(level, _)| *level == harness::WARN));
    }
    fb.unregister(&def);
}
