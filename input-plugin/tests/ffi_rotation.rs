//! Token rotation through the real `.so`: an instance configured with `token_file` goes on
//! delivering after its token is replaced in the file and the old one revoked, with no reload.

mod harness;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use harness::events;
use harness::source::{self, KINDS, borrow};
use harness::{FluentBit, Layout};

/// Collects until `want` distinct events have arrived, for up to 20 s.
fn collect(instance: &harness::Instance, got: &mut Vec<String>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.iter().collect::<HashSet<_>>().len() < want {
        assert!(Instant::now() < deadline, "{} of {want} events", got.len());
        if let Some(buffer) = instance.collect() {
            got.extend(events::decode(&buffer).iter().map(events::Event::raw_uuid));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_token_rotated_in_token_file_is_used_without_a_reload() {
    let mock = source::mock(40, 5);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let old = mock.token("acme", &KINDS);
    std::fs::write(&file, &old).unwrap();
    let state = dir.path().join("state");
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let props = [
        ("token_file", file.to_str().unwrap()),
        ("base_url", mock.url().as_str()),
        ("insecure_http", "on"),
        ("state_dir", state.to_str().unwrap()),
        ("format", "raw"),
        ("poll_interval", "1s"),
    ]
    .map(|(k, v)| (k, v.as_bytes().to_vec()));
    let instance = fb.started(&borrow(&props), harness::INFO);
    let mut got = Vec::new();
    collect(&instance, &mut got, KINDS.len() * 40);

    // A second later, so that the new token differs from the old one (same claims otherwise).
    mock.advance(Duration::from_secs(1));
    let new = mock.token("acme", &KINDS);
    std::fs::write(dir.path().join("token.new"), &new).unwrap();
    std::fs::rename(dir.path().join("token.new"), &file).unwrap();
    mock.revoke(&old);
    for kind in KINDS {
        mock.generate("acme", kind, 10, false);
    }
    collect(&instance, &mut got, KINDS.len() * 50);
    instance.stop(false);
    fb.unregister(&def);

    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no event twice");
    let logs = harness::logs_containing("token_file holds a new token");
    assert_eq!(logs.len(), 1, "one renewal for the three streams: {logs:?}");
}
