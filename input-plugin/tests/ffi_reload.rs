//! Hot reload in the order Fluent Bit 5.1.1 uses (ABI doc §10): Register(new def) → old
//! instance: Pause, Pause, PreExit(1), Exit → Unregister(old def) → Init(new). The new
//! registration keeps valid strings, the new instance starts unpaused from the old one's
//! checkpoints, and across both every event arrives exactly once.

mod harness;

use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, Account, KINDS, borrow};
use harness::{FluentBit, Layout};

#[test]
fn hot_reload_continues_from_the_checkpoints() {
    let mock = source::mock(300, 11);
    let account = Account::new(&mock, "acme");
    // Small pages, so the reload happens with data still queued.
    let props = account.props(
        &mock,
        &[
            ("format", "raw"),
            ("limit", "20"),
            ("rate_limit_per_minute", "0"),
        ],
    );
    let props = borrow(&props);
    let total = KINDS.len() * 300;
    let fb = FluentBit::load(Layout::V41);
    let old_def = fb.register();
    let old = fb.started(&props, harness::INFO);

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < total / 3 {
        assert!(Instant::now() < deadline, "no progress before reload");
        if let Some(buffer) = old.collect() {
            got.extend(events::decode(&buffer));
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let new_def = fb.register();
    old.pause();
    old.pause();
    old.pre_exit(true);
    assert_eq!(old.exit(), 1);
    fb.unregister(&old_def);
    assert_eq!(
        new_def.name(),
        "onepassword",
        "the new def's strings survive the old Unregister"
    );
    let new = fb.started(&props, harness::INFO);

    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "the reloaded instance stalled at {} of {total}",
            got.len()
        );
        if let Some(buffer) = new.collect() {
            got.extend(events::decode(&buffer));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..10 {
        if let Some(buffer) = new.collect() {
            got.extend(events::decode(&buffer));
        }
    }
    source::assert_account_delivered(&mock, account.name, &got, true);

    new.pause();
    new.pause();
    new.pre_exit(false);
    assert_eq!(new.exit(), 1);
    fb.unregister(&new_def);
}
