//! Two accounts in one "Fluent Bit": each instance on its own thread, collect + cleanup every
//! tick, a pause that (as with Fluent Bit's multi-instance bug) comes from one instance and a
//! resume from the other, then the shutdown sequence. Every event of the mock's dataset must
//! arrive once, with its time, metadata and fields; a restart must find it all checkpointed.

mod harness;

use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout};

#[test]
fn two_accounts_deliver_everything_once_through_pause_and_shutdown() {
    let mock = source::mock(300, 7);
    let accounts = ["acme", "globex"].map(|name| Account::new(&mock, name));
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let formats = ["raw", "ecs"];
    let props: Vec<_> = accounts
        .iter()
        .zip(formats)
        .map(|(a, f)| a.props(&mock, &[("format", f), ("poll_interval", "1s")]))
        .collect();
    let a = fb.started(&borrow(&props[0]), harness::DEBUG);
    let b = fb.started(&borrow(&props[1]), harness::INFO);
    let instances = [a, b];

    let expected_total = accounts.len() * KINDS.len() * 300;
    let mut got: [Vec<events::Event>; 2] = [Vec::new(), Vec::new()];
    let mut paused_once = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.iter().map(Vec::len).sum::<usize>() < expected_total {
        assert!(
            Instant::now() < deadline,
            "timed out: {} of {expected_total}",
            got.iter().map(Vec::len).sum::<usize>()
        );
        for (i, instance) in instances.iter().enumerate() {
            if let Some(buffer) = instance.collect() {
                got[i].extend(events::decode(&buffer));
            }
        }
        if !paused_once && got.iter().all(|g| !g.is_empty()) {
            paused_once = true;
            // Fluent Bit pauses one instance but, with several, its core bug stops another's
            // timer: the plugin treats the pause as global, so nobody hands over anything.
            instances[0].pause();
            std::thread::sleep(Duration::from_millis(300));
            for _ in 0..20 {
                for instance in &instances {
                    assert!(
                        instance.collect().is_none(),
                        "data handed over while paused would be dropped"
                    );
                }
            }
            instances[1].resume();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(paused_once);

    for (account, (got, format)) in accounts.iter().zip(got.iter().zip(formats)) {
        source::assert_account_delivered(&mock, account.name, got, format == "raw");
    }
    // Log lines carry the instance, honour each instance's level, never the token.
    let logs = harness::all_logs();
    assert!(
        logs.iter().any(|(_, l)| l.starts_with("[onepassword.0] ")),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|(_, l)| l.starts_with("[onepassword.1] ")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .all(|(level, l)| !l.starts_with("[onepassword.1] ") || *level <= harness::INFO),
        "instance 1 runs at log_level info"
    );
    // At log_level debug, a line for every page received.
    assert!(
        logs.iter().any(|(level, l)| *level == harness::DEBUG
            && l.starts_with("[onepassword.0] page received stream=")
            && l.contains(" events=")
            && l.contains(" has_more=")),
        "{logs:#?}"
    );
    // What the collector's threads log ("token accepted", from its runtime) reaches Fluent
    // Bit's logger from Fluent Bit's own thread, so that it lands in Fluent Bit's log file.
    assert!(
        logs.iter().any(
            |(_, l)| l.starts_with("[onepassword.1] token accepted account=")
                && l.ends_with(" streams=signinattempts,itemusages,auditevents")
        ),
        "{logs:#?}"
    );
    assert_eq!(harness::logged_on_plugin_threads(), 0);
    for account in &accounts {
        assert!(
            logs.iter().all(|(_, l)| !l.contains(&account.token)),
            "token in the log"
        );
    }

    // Shutdown as Fluent Bit does it: Pause twice, PreExit, Exit, per instance; Unregister.
    // It comes `checkpoint_delay` (1 s) after the last hand-over, so that every batch is
    // checkpointed: a batch handed over just before it is fetched again (`ffi_checkpoint_delay`).
    std::thread::sleep(Duration::from_millis(1200));
    for instance in &instances {
        instance.pause();
        instance.pause();
    }
    // Each instance's PreExit + Exit run on its own thread in Fluent Bit, within its 2 s grace.
    for instance in instances {
        let started = Instant::now();
        instance.pre_exit(false);
        assert_eq!(instance.exit(), 1);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "shutdown of one instance took {took:?}"
        );
    }
    fb.unregister(&def);

    // A new process (a fresh load) with the same state: everything was acked and checkpointed,
    // and the new instance does not start paused.
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let again = fb.started(&borrow(&props[0]), harness::DEBUG);
    let known: std::collections::HashSet<String> = KINDS
        .iter()
        .flat_map(|k| mock.servable_events("acme", k))
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect();
    for kind in KINDS {
        mock.generate("acme", kind, 5, false);
    }
    let mut fresh = Vec::new();
    let until = Instant::now() + Duration::from_secs(20);
    while fresh.len() < 15 && Instant::now() < until {
        if let Some(buffer) = again.collect() {
            fresh.extend(events::decode(&buffer));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    if let Some(buffer) = again.collect() {
        fresh.extend(events::decode(&buffer));
    }
    assert_eq!(
        fresh.len(),
        15,
        "after a restart only the new events arrive"
    );
    for event in &fresh {
        let mut found = Vec::new();
        events::strings(&event.body, &mut found);
        assert!(
            found.iter().all(|s| !known.contains(*s)),
            "an old event was delivered again"
        );
    }
    let stopped = harness::logs_containing("collector stopped").len();
    again.stop(false);
    // The core logs this on Fluent Bit's thread, which has no log dispatch of its own, while
    // this instance's is the only one in its copy of the library (tokio-rs/tracing#3611).
    assert_eq!(
        harness::logs_containing("collector stopped").len(),
        stopped + 1,
        "the core's shutdown line of a lone instance was lost"
    );
    fb.unregister(&def);
}
