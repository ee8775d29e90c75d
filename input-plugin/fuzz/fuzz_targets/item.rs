//! One item (any text) through every normalizer and encoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};

fuzz_target!(|data: &[u8]| {
    let Ok(item) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
        for target in [Target::Msgpack, Target::Ndjson] {
            let ctx = EncodeContext {
                account_uuid: "ACCOUNT".into(),
                api_version: ApiVersion::V1,
            };
            let encoder = Encoder::new(format, target, ctx);
            for kind in EventType::ALL {
                let mut out = Vec::new();
                if encoder.encode(kind, item, &mut out).is_err() {
                    assert!(out.is_empty(), "an error must append nothing");
                }
            }
        }
    }
});
