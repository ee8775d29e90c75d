//! A whole response body: the page parser, with every item through every format and target as
//! a stream encodes it. Never a panic; an item that cannot be used appends nothing; output stays
//! proportional to input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use op_events_input::json::{Tape, parse_page};

fuzz_target!(|data: &[u8]| {
    // As api::Client::fetch does: invalid UTF-8 is replaced, never fatal.
    let body = String::from_utf8_lossy(data);
    for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
        for target in [Target::Msgpack, Target::Ndjson] {
            let ctx = EncodeContext {
                account_uuid: "ACCOUNT".into(),
                api_version: ApiVersion::V2,
            };
            let encoder = Encoder::new(format, target, ctx);
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
});
