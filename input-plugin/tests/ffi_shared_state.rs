//! Two inputs of one "Fluent Bit" for the same account with the same `state_dir` (a copied
//! configuration block): each stream runs in one of them only, so nothing is delivered twice;
//! the other waits and says so, and never writes over the first one's checkpoints.

mod harness;

use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout};

#[test]
fn a_second_input_with_the_same_state_waits_and_delivers_nothing_twice() {
    let mock = source::mock(200, 21);
    let account = Account::new(&mock, "acme");
    // Checkpoints written at once, so that the restart below starts exactly where it stopped.
    let props = account.props(&mock, &[("checkpoint_delay", "0"), ("poll_interval", "1s")]);
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let first = fb.started(&borrow(&props), harness::INFO);
    let mut got: [Vec<events::Event>; 2] = [Vec::new(), Vec::new()];
    // The second starts once the first runs every stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !KINDS
        .iter()
        .all(|k| got[0].iter().any(|e| e.meta_str("event_type") == Some(k)))
    {
        assert!(
            Instant::now() < deadline,
            "the first input delivered nothing"
        );
        if let Some(buffer) = first.collect() {
            got[0].extend(events::decode(&buffer));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = fb.started(&borrow(&props), harness::INFO);
    // Long enough for the waiting input to report why it delivers nothing.
    let report = Instant::now() + Duration::from_secs(8);
    while Instant::now() < report {
        for (got, instance) in got.iter_mut().zip([&first, &second]) {
            if let Some(buffer) = instance.collect() {
                got.extend(events::decode(&buffer));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(got[1].is_empty(), "the second input delivered");
    assert_eq!(got[0].len() + got[1].len(), KINDS.len() * 200);
    let mut all: Vec<_> = got.into_iter().flatten().collect();
    source::assert_account_delivered(&mock, account.name, &all, true);
    let waiting = harness::logs_containing("is held by another collector of this stream");
    assert!(
        waiting.len() == KINDS.len() && waiting.iter().all(|(level, _)| *level == harness::WARN),
        "{waiting:#?}"
    );
    assert!(
        waiting
            .iter()
            .all(|(_, l)| l.starts_with("[onepassword.1] ")
                && l.contains(".lock")
                && l.contains("waiting")),
        "{waiting:#?}"
    );

    // Shutdown as Fluent Bit does it, every input within its 2 s grace, the waiting one too.
    for instance in [first, second] {
        let started = Instant::now();
        instance.stop(false);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "an input's shutdown took {took:?}"
        );
    }
    fb.unregister(&def);

    // The copy removed, a new process goes on from what the first input saved, which the
    // waiting one never overwrote: only what came since is delivered.
    for kind in KINDS {
        mock.generate("acme", kind, 10, false);
    }
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let again = fb.started(&borrow(&props), harness::INFO);
    let mut fresh = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fresh.len() < KINDS.len() * 10 {
        assert!(Instant::now() < deadline, "{} of 30", fresh.len());
        if let Some(buffer) = again.collect() {
            fresh.extend(events::decode(&buffer));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1500));
    if let Some(buffer) = again.collect() {
        fresh.extend(events::decode(&buffer));
    }
    all.extend(fresh);
    source::assert_account_delivered(&mock, account.name, &all, true);
    again.stop(false);
    fb.unregister(&def);
}
