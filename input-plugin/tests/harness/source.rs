//! The Events API side of a harness test: a mock with rate limits off (these tests measure
//! delivery, not pacing) and the properties that point an instance at it.

use std::path::Path;

use op_events_mock::{MockConfig, MockServer};

use super::events::{Event, Expected, assert_delivered};

pub const KINDS: [&str; 3] = ["signinattempts", "itemusages", "auditevents"];

pub fn mock(events_per_type: usize, seed: u64) -> MockServer {
    mock_with(events_per_type, seed, MockConfig::default())
}

/// As [`mock`], with `config`'s other settings (gzip, TLS).
pub fn mock_with(events_per_type: usize, seed: u64, config: MockConfig) -> MockServer {
    MockServer::start(MockConfig {
        events_per_type,
        seed,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        ..config
    })
    .expect("mock starts")
}

/// One account of a mock as an instance reads it: a token for every event type and a state
/// directory of its own.
pub struct Account {
    pub name: &'static str,
    pub token: String,
    pub state: tempfile::TempDir,
}

impl Account {
    pub fn new(mock: &MockServer, name: &'static str) -> Account {
        Account {
            name,
            token: mock.token(name, &KINDS),
            state: tempfile::tempdir().expect("state dir"),
        }
    }

    /// The properties of an instance reading this account from `mock`, then `extra`.
    pub fn props(
        &self,
        mock: &MockServer,
        extra: &[(&'static str, &str)],
    ) -> Vec<(&'static str, Vec<u8>)> {
        props(mock, &self.token, self.state.path(), extra)
    }
}

/// Properties for an instance reading from `mock` with `token` and its state in `state_dir`,
/// followed by `extra`.
pub fn props(
    mock: &MockServer,
    token: &str,
    state_dir: &Path,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, Vec<u8>)> {
    let mut props = vec![
        ("token", token.as_bytes().to_vec()),
        ("base_url", mock.url().into_bytes()),
        ("insecure_http", b"on".to_vec()),
        (
            "state_dir",
            state_dir.to_str().expect("UTF-8 path").as_bytes().to_vec(),
        ),
    ];
    props.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())));
    props
}

/// The borrowed form `FluentBit::start` takes.
pub fn borrow<'a>(props: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    props.iter().map(|(k, v)| (*k, v.as_slice())).collect()
}

/// Asserts `got` holds every servable event of `account`, exactly once, with its time,
/// metadata and (with `all_fields`) every value.
pub fn assert_account_delivered(mock: &MockServer, account: &str, got: &[Event], all_fields: bool) {
    assert_kinds_delivered(mock, account, &KINDS, got, all_fields);
}

/// As [`assert_account_delivered`], for the streams of `kinds` only: nothing of another kind
/// may have arrived.
pub fn assert_kinds_delivered(
    mock: &MockServer,
    account: &str,
    kinds: &[&str],
    got: &[Event],
    all_fields: bool,
) {
    let uuid = mock.account_uuid(account);
    let items: Vec<_> = kinds
        .iter()
        .map(|k| mock.servable_events(account, k))
        .collect();
    let expected: Vec<_> = kinds
        .iter()
        .zip(&items)
        .map(|(kind, items)| Expected {
            account_uuid: &uuid,
            event_type: kind,
            items,
        })
        .collect();
    assert_delivered(got, &expected, all_fields);
}
