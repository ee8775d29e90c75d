//! A whole response body: the envelope parser, then every item through every format and target.
//! Never a panic; an item that cannot be used appends nothing; output stays proportional to input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_events_input::api::Envelope;
use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};

fuzz_target!(|data: &[u8]| {
    // As api::Client::fetch does: invalid UTF-8 is replaced, never fatal.
    let body = String::from_utf8_lossy(data);
    let Ok(envelope) = serde_json::from_str::<Envelope>(&body) else {
        return;
    };
    for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
        for target in [Target::Msgpack, Target::Ndjson] {
            let ctx = EncodeContext {
                account_uuid: "ACCOUNT".into(),
                api_version: ApiVersion::V2,
            };
            let encoder = Encoder::new(format, target, ctx);
            for kind in EventType::ALL {
                for item in envelope.items.iter().flatten() {
                    let mut out = Vec::new();
                    match encoder.encode(kind, item.get(), &mut out) {
                        Ok(_) => assert!(out.len() < 64 * item.get().len() + 4096),
                        Err(_) => assert!(out.is_empty()),
                    }
                }
            }
        }
    }
});
