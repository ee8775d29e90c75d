//! Everything the routes share: keys, clock, accounts, limits, faults, counters and revoked
//! tokens.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::accounts::Accounts;
use crate::auth::{Region, Revoked, TokenSpec};
use crate::clock::Clock;
use crate::faults::Faults;
use crate::limits::RateLimits;

/// Behaviour switches for undocumented corners of the real API.
pub struct Behaviour {
    pub region: Region,
    pub retry_after_header: bool,
    pub reject_unknown_fields: bool,
    pub admin_allow_remote: bool,
    pub retention: jiff::SignedDuration,
    /// Compress API responses with gzip when the request accepts it.
    pub gzip: bool,
}

pub struct MockState {
    pub key: Vec<u8>,
    /// This run's mark on its cursors ([`crate::cursor::Cursor::run`]).
    pub run: u64,
    pub behaviour: Behaviour,
    pub clock: Clock,
    pub accounts: Accounts,
    pub limits: RateLimits,
    pub faults: Faults,
    pub counters: Counters,
    pub revoked: Revoked,
    /// Tokens minted so far: the next one's serial.
    pub minted: AtomicU64,
}

impl MockState {
    /// A new token for `spec`, signed with the server's key; never the same twice.
    pub fn mint(&self, spec: &TokenSpec) -> String {
        crate::auth::mint(&self.key, spec, self.minted.fetch_add(1, Ordering::Relaxed))
    }

    /// Start of retention: events older than this are never served.
    pub fn horizon_ns(&self) -> i64 {
        let horizon = self.clock.now().as_nanosecond() - self.behaviour.retention.as_nanos();
        i64::try_from(horizon).unwrap_or(i64::MIN)
    }
}

/// The stats' key for requests to paths the API does not have.
pub const OTHER_PATHS: &str = "other";

/// Marks an answer to a path no endpoint has though a route took it (an admin path's unknown
/// event type), so that the stats count it under [`OTHER_PATHS`].
#[derive(Clone, Copy)]
pub struct NoSuchPath;

/// Live request counters.
#[derive(Default)]
pub struct Counters {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    events_served: AtomicU64,
    rate_limited: AtomicU64,
    gzipped: AtomicU64,
    resets: AtomicU64,
    truncated: AtomicU64,
}

impl Counters {
    pub fn request(&self, path: &str, status: u16) {
        *self
            .requests
            .lock()
            .expect("stats lock")
            .entry((path.to_owned(), status))
            .or_default() += 1;
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn served(&self, events: usize) {
        self.events_served
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    pub fn gzipped(&self) {
        self.gzipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn truncated(&self) {
        self.truncated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            requests: self
                .requests
                .lock()
                .expect("stats lock")
                .iter()
                .map(|((path, status), count)| RequestCount {
                    path: path.clone(),
                    status: *status,
                    count: *count,
                })
                .collect(),
            events_served: self.events_served.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            gzipped: self.gzipped.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
        }
    }
}

/// Requests per path and status, plus totals.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub requests: Vec<RequestCount>,
    /// Events in the pages sent whole (a page cut off by a `truncate` fault is not counted).
    pub events_served: u64,
    /// Responses with status 429 (from rate limits or injected faults).
    pub rate_limited: u64,
    /// Responses sent gzip-compressed (see `MockConfig::gzip`).
    pub gzipped: u64,
    /// Requests answered by an injected `reset` fault. They are not in `requests`: the client
    /// got a 200 head and no body, and the API never saw the request.
    pub resets: u64,
    /// Requests answered by an injected `truncate` fault. They are not in `requests`, nor their
    /// events in `events_served`: the client got a head and half a body it cannot use.
    pub truncated: u64,
}

impl Stats {
    /// How many requests to `path` got `status`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.path == path && r.status == status)
            .map(|r| r.count)
            .sum()
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestCount {
    /// An API endpoint's path, an admin route's template (no account names), or
    /// `"other"` for every path neither has: a bounded set.
    pub path: String,
    pub status: u16,
    pub count: u64,
}
