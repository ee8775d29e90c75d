//! One item (any text) through every normalizer and encoder, checked against serde_json and
//! rmpv by the tests' oracle: an event exactly when serde_json reads an object, the same body in
//! both targets, `raw` unchanged, and no value lost in `ecs` and `ocsf`.
#![no_main]

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use op_events_input::encode::Encoder;
use op_events_input::event::Format;

static ENCODERS: LazyLock<Vec<(Format, Encoder, Encoder)>> = LazyLock::new(oracle::encoders);

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = std::str::from_utf8(data) {
        oracle::check_item(&ENCODERS, item);
    }
});
