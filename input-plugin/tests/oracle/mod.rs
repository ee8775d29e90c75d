//! What every encoded item must satisfy, checked against serde_json and rmpv rather than our own
//! parser and writer: shared by the golden tests, the property tests and the fuzz targets.
//!
//! For any text, in every format, for every event type:
//! - it becomes an event exactly when serde_json reads it as an object, and an error appends
//!   nothing;
//! - the msgpack event decodes (with `rmpv`) to the NDJSON line's body, with its framing intact;
//! - `raw` carries the item as serde_json reads it (the last of repeated names wins);
//! - `ecs` and `ocsf` lose no value: every string, number and boolean of the item is somewhere in
//!   the record, but for the documented rewrites in [`rewritten`].
#![allow(dead_code)] // each test crate uses part of it

use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use serde_json::{Value, json};

/// msgpack → JSON, for comparison with the NDJSON body. Ext values are not expected in bodies.
pub fn to_json(v: &rmpv::Value) -> Value {
    match v {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => i.as_i64().map_or_else(|| json!(i.as_u64()), |n| json!(n)),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => json!(s.as_str().expect("utf-8 string")),
        rmpv::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        rmpv::Value::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_owned(), to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected msgpack value in a body: {other:?}"),
    }
}

/// Decodes one Fluent Bit event and checks its framing; returns (seconds, nanos, metadata, body).
pub fn decode_event(mut bytes: &[u8]) -> (u32, u32, Value, Value) {
    let v = rmpv::decode::read_value(&mut bytes).expect("valid msgpack");
    assert!(bytes.is_empty(), "exactly one event per item");
    let outer = v.as_array().expect("event is an array");
    assert_eq!(outer.len(), 2);
    let header = outer[0].as_array().expect("[time, metadata]");
    assert_eq!(header.len(), 2);
    let rmpv::Value::Ext(0, time) = &header[0] else {
        panic!("EventTime must be ext type 0, got {:?}", header[0]);
    };
    assert_eq!(time.len(), 8);
    let secs = u32::from_be_bytes(time[..4].try_into().unwrap());
    let nanos = u32::from_be_bytes(time[4..].try_into().unwrap());
    (secs, nanos, to_json(&header[1]), to_json(&outer[1]))
}

/// The account the encoders below write into every event's metadata.
pub const ACCOUNT: &str = "GOLDENACCOUNTUUID000000000";

pub fn encoder(format: Format, target: Target, version: ApiVersion) -> Encoder {
    let ctx = EncodeContext {
        account_uuid: ACCOUNT.into(),
        api_version: version,
    };
    Encoder::new(format, target, ctx)
}

/// The encoders of every format and target, to build once and check many items with.
pub fn encoders() -> Vec<(Format, Encoder, Encoder)> {
    [Format::Ecs, Format::Ocsf, Format::Raw]
        .into_iter()
        .map(|format| {
            let msgpack = encoder(format, Target::Msgpack, ApiVersion::V2);
            let ndjson = encoder(format, Target::Ndjson, ApiVersion::V2);
            (format, msgpack, ndjson)
        })
        .collect()
}

/// Checks everything the module's doc lists for `text`, with `encoders()`.
pub fn check_item(encoders: &[(Format, Encoder, Encoder)], text: &str) {
    let expected = serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object);
    for (format, msgpack, ndjson) in encoders {
        for kind in EventType::ALL {
            let what = Case { format, kind, text };
            let (mut packed, mut line) = (Vec::new(), Vec::new());
            let packed_meta = msgpack.encode(kind, text, &mut packed);
            let line_meta = ndjson.encode(kind, text, &mut line);
            let Some(item) = &expected else {
                assert!(
                    packed_meta.is_err() && line_meta.is_err(),
                    "accepted {what}"
                );
                assert!(packed.is_empty() && line.is_empty(), "{what}");
                continue;
            };
            let (Ok(meta), Ok(line_meta)) = (packed_meta, line_meta) else {
                panic!("refused {what}");
            };
            assert_eq!(meta, line_meta, "{what}");
            let line = std::str::from_utf8(&line).expect("NDJSON is UTF-8");
            assert_eq!(line.find('\n'), Some(line.len() - 1), "one line: {what}");
            let mut body: Value = serde_json::from_str(line).expect("NDJSON line is JSON");
            let (_, _, _, mut packed_body) = decode_event(&packed);
            if meta.timestamp.is_none() {
                // Stamped with the time each was encoded at.
                for record in [&mut body, &mut packed_body] {
                    let record = record.as_object_mut().expect("a record is a map");
                    record.remove("@timestamp");
                    record.remove("time");
                }
            }
            assert_eq!(packed_body, body, "msgpack and NDJSON differ: {what}");
            match format {
                Format::Raw => assert_eq!(&body["event"], item, "raw changed {what}"),
                _ => {
                    let mut kept = Vec::new();
                    leaves(&body, &mut kept);
                    let mut given = Vec::new();
                    for (name, value) in item.as_object().into_iter().flatten() {
                        if !rewritten(*format, kind, name, value, meta.timestamp.is_some()) {
                            leaves(value, &mut given);
                        }
                    }
                    for value in given {
                        assert!(kept.contains(&value), "{value} lost: {what}\n{body}");
                    }
                }
            }
        }
    }
}

/// The case a failed check names; written out only then (a text may be megabytes).
struct Case<'t> {
    format: &'t Format,
    kind: EventType,
    text: &'t str,
}

impl std::fmt::Display for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} {} of {:?}", self.format, self.kind, self.text)
    }
}

/// Root members that a schema writes in other words, as docs/formats.md says: a valid
/// `timestamp` becomes the record's time in UTC (`@timestamp`, or `time` in milliseconds with
/// the text in `metadata.original_time`), and OCSF's `actor_type` `user` is its user type 1,
/// `User`.
fn rewritten(format: Format, kind: EventType, name: &str, value: &Value, valid_time: bool) -> bool {
    match name {
        "timestamp" => valid_time,
        "actor_type" => format == Format::Ocsf && kind == EventType::AuditEvents && value == "user",
        _ => false,
    }
}

/// The strings, numbers and booleans in `v` (null is "absent" to the API).
fn leaves<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Null => {}
        Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
        Value::Object(m) => m.values().for_each(|v| leaves(v, out)),
        leaf => out.push(leaf),
    }
}
