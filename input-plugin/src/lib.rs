//! op-events: the 1Password Events API collector core, its Fluent Bit input plugin (the `ffi`
//! module, built into `libop_events_input.so`) and the library behind the `op-events` binary.
//!
//! Data path: `stream` (one per event type) → `api` client → `normalize` + `encode` →
//! bounded queue in `pipeline` → sink (Fluent Bit buffer or NDJSON lines) → ack →
//! `checkpoint`. See `docs/architecture.md`.

pub mod api;
pub mod budget;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod encode;
pub mod event;
pub mod ffi;
pub mod file;
pub mod json;
pub mod normalize;
pub mod pipeline;
pub mod proxy_env;
pub mod rotate;
pub mod stream;
pub mod token;
