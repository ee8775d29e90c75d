//! A whole response body: the page parser, with every item through every format and target as
//! a stream encodes it. Never a panic; an item that cannot be used appends nothing; output stays
//! proportional to input; and the tests' oracle (`../tests/oracle`): each item's event is the
//! one its text gives alone, checked against serde_json and rmpv.
#![no_main]

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use op_events_input::encode::Encoder;
use op_events_input::event::{EventType, Format};
use op_events_input::json::{Tape, parse_page};

static ENCODERS: LazyLock<Vec<(Format, Encoder, Encoder)>> = LazyLock::new(oracle::encoders);

fuzz_target!(|data: &[u8]| {
    // As api::Client::fetch does: invalid UTF-8 is replaced, never fatal.
    let body = String::from_utf8_lossy(data);
    for (_, msgpack, ndjson) in ENCODERS.iter() {
        for encoder in [msgpack, ndjson] {
            for kind in EventType::ALL {
                let mut out = Vec::new();
                let _ = parse_page(&body, &mut Tape::default(), |item| {
                    let before = out.len();
                    match item.map(|item| encoder.encode_parsed(kind, item, &mut out)) {
                        Ok(Ok(_)) => assert!(out.len() - before < 64 * body.len() + 4096),
                        _ => assert_eq!(out.len(), before),
                    }
                });
            }
        }
    }
    oracle::check_page(&ENCODERS, &body);
});
