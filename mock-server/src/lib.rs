//! A faithful, fast mock of the 1Password Events API (v1 and v2) for integration tests and CI.
//!
//! Start it in-process with [`MockServer::start`], or run the `op-events-mock` binary.

mod accounts;
mod admin;
mod api;
pub mod auth;
mod body;
mod clock;
mod cursor;
mod faults;
mod generate;
mod limits;
mod rfc3339;
mod server;
mod state;
mod store;
mod tls;

pub use accounts::MspAccounts;
pub use auth::{Region, TokenSpec};
pub use body::MAX_BODY_READS;
pub use faults::{Fault, FaultError, FaultKind, MAX_DELAY};
pub use generate::UNKNOWN_ENUM_VALUES;
pub use rfc3339::{Rfc3339Error, TimestampError, parse_timestamp};
pub use server::{DEFAULT_MAX_ACCOUNTS, MockConfig, MockServer, READY_TARGET, serve};
pub use state::{RequestCount, Stats};
pub use store::StoreError;
pub use tls::{Tls, TlsError};

/// A number no other process is likely to draw (std's per-process random hash keys): what
/// tells apart the tokens the `token` command mints, and one server run's cursors from another's.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// The README's Rust example runs as a doctest, so it cannot drift from the API it shows.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
