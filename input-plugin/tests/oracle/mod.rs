//! What every encoded item must satisfy, checked against serde_json and rmpv rather than our own
//! parser and writer: shared by the golden tests, the property tests and the fuzz targets.
//!
//! For any text, in every format, for every event type:
//! - it becomes an event exactly when serde_json reads it as an object, and an error appends
//!   nothing;
//! - the msgpack event decodes (with `rmpv`) to the NDJSON line's body, with its framing intact;
//! - `raw` carries the item as serde_json reads it (the last of repeated names wins);
//! - `ecs` and `ocsf` lose no value: every string, number and boolean of the item is somewhere in
//!   the record, but for the documented rewrites in [`rewritten`];
//! - a record nests at most [`MAX_RECORD_DEPTH`] levels: a container that would be deeper is
//!   its JSON text, a string that serde_json reads back to it.
//!
//! And for any page, [`check_page`]: its items, as a stream encodes them (one tape reused
//! through the page), are the events each item's own text gives.
#![allow(dead_code)] // each test crate uses part of it

use std::collections::HashMap;

use op_events_input::encode::{EncodeContext, Encoder, NormalizeError, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use op_events_input::json::{Tape, parse_page};
use serde_json::value::RawValue;
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

/// Maps and arrays in a record, its root included, at most, as docs/formats.md says (the
/// library's own constant is not used, so that changing it fails here).
const MAX_RECORD_DEPTH: usize = 16;

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
    let expected = read_json(text.as_bytes(), false)
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
            let mut body = read_line(line.as_bytes());
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
            assert!(depth(&body) <= MAX_RECORD_DEPTH, "too deep: {what}");
            match format {
                Format::Raw => assert!(same_cut(item, &body["event"], 2), "raw changed {what}"),
                _ => {
                    let mut kept = Vec::new();
                    leaves(&body, 1, &mut kept);
                    let mut given = Vec::new();
                    for (name, value) in item.as_object().into_iter().flatten() {
                        if !rewritten(*format, kind, name, value, meta.timestamp.is_some()) {
                            leaves(value, 0, &mut given);
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

/// Checks that `page`'s items, encoded through `parse_page` as a stream encodes them, are
/// exactly what [`Encoder::encode`] makes of each item's text (as serde_json delimits it), and
/// runs [`check_item`] on each. A page that either parser refuses is left to tests/hostile.rs.
pub fn check_page(encoders: &[(Format, Encoder, Encoder)], page: &str) {
    let Some(items) = raw_items(page) else {
        return;
    };
    for (format, msgpack, ndjson) in encoders {
        for (encoder, packed) in [(msgpack, true), (ndjson, false)] {
            for kind in EventType::ALL {
                let mut out = Vec::new();
                let mut events = Vec::new();
                let parsed = parse_page(page, &mut Tape::default(), |item| {
                    let at = out.len();
                    let meta = item
                        .map_err(NormalizeError::from)
                        .and_then(|tape| encoder.encode_parsed(kind, tape, &mut out));
                    events.push((meta, at..out.len()));
                });
                let Ok(envelope) = parsed else { continue };
                assert_eq!(envelope.items, items.len(), "items of {page:?}");
                assert_eq!(events.len(), items.len(), "events of {page:?}");
                for ((meta, range), item) in events.into_iter().zip(&items) {
                    let what = Case {
                        format,
                        kind,
                        text: item.get(),
                    };
                    let mut alone = Vec::new();
                    match (meta, encoder.encode(kind, item.get(), &mut alone)) {
                        (Ok(meta), Ok(alone_meta)) => {
                            assert_eq!(meta, alone_meta, "in a page: {what}");
                            let in_page = &out[range];
                            if meta.timestamp.is_some() {
                                assert_eq!(in_page, alone, "in a page: {what}");
                            } else {
                                assert_eq!(
                                    untimed(in_page, packed),
                                    untimed(&alone, packed),
                                    "in a page: {what}"
                                );
                            }
                        }
                        (Err(_), Err(_)) => assert!(range.is_empty(), "in a page: {what}"),
                        (page_meta, alone_meta) => {
                            panic!("in a page {page_meta:?}, alone {alone_meta:?}: {what}")
                        }
                    }
                }
            }
        }
    }
    for item in &items {
        check_item(encoders, item.get());
    }
}

/// The text of each of `page`'s items, when serde_json reads the page as an object whose
/// `items` is an array or null.
fn raw_items(page: &str) -> Option<Vec<&RawValue>> {
    let members: HashMap<String, &RawValue> = serde_json::from_str(page).ok()?;
    match members.get("items") {
        None => Some(Vec::new()),
        Some(items) if items.get() == "null" => Some(Vec::new()),
        Some(items) => serde_json::from_str(items.get()).ok(),
    }
}

/// An event as bytes compare, but for the collection time an item without a valid timestamp
/// is stamped with (the event's time, and the record's `@timestamp` or `time`).
fn untimed(event: &[u8], packed: bool) -> Value {
    let (meta, mut body) = if packed {
        let (_, _, meta, body) = decode_event(event);
        (meta, body)
    } else {
        let body = read_line(event);
        (Value::Null, body)
    };
    let record = body.as_object_mut().expect("a record is a map");
    record.remove("@timestamp");
    record.remove("time");
    json!([meta, body])
}

/// An NDJSON line as JSON, read without serde_json's depth limit, so that a record too deep
/// fails the depth check, which says so, rather than the reading.
fn read_line(line: &[u8]) -> Value {
    read_json(line, true).expect("an NDJSON line is one JSON value")
}

/// One JSON value, as deep as serde_json allows or however deep.
fn read_json(text: &[u8], unbounded: bool) -> serde_json::Result<Value> {
    let mut reader = serde_json::Deserializer::from_slice(text);
    if unbounded {
        reader.disable_recursion_limit();
    }
    let Plain(value) = serde::Deserialize::deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// A JSON value read by serde_json's parser, but not into its `Value`: with the `raw_value`
/// feature (which axum turns on), `Value` refuses an object whose first name is
/// `$serde_json::private::RawValue`, taking it for the token of a raw value. To the API and
/// to us that is a name like any other (found by the `item` fuzz target).
struct Plain(Value);

impl<'de> serde::Deserialize<'de> for Plain {
    fn deserialize<D: serde::Deserializer<'de>>(reader: D) -> Result<Self, D::Error> {
        reader.deserialize_any(PlainVisitor).map(Plain)
    }
}

struct PlainVisitor;

impl<'de> serde::de::Visitor<'de> for PlainVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Plain(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    /// The last of repeated names wins, as in serde_json's `Value`.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some((name, Plain(value))) = map.next_entry::<String, Plain>()? {
            members.insert(name, value);
        }
        Ok(Value::Object(members))
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

/// The strings, numbers and booleans in `v`, a value at `level` of a record (null is "absent"
/// to the API); a string where a container is cut also counts as the container it reads as
/// (an item, read from level 0, counts its own strings that deep the same way).
fn leaves(v: &Value, level: usize, out: &mut Vec<Value>) {
    match v {
        Value::Null => {}
        Value::Array(a) => a.iter().for_each(|v| leaves(v, level + 1, out)),
        Value::Object(m) => m.values().for_each(|v| leaves(v, level + 1, out)),
        Value::String(s) if level > MAX_RECORD_DEPTH => {
            if let Some(cut) = read_cut(s) {
                leaves(&cut, 0, out);
            }
            out.push(v.clone());
        }
        leaf => out.push(leaf.clone()),
    }
}

/// Whether `got`, a value at `level` of a record, is `item`: the same, but that a container
/// that would be deeper than [`MAX_RECORD_DEPTH`] is its JSON text.
fn same_cut(item: &Value, got: &Value, level: usize) -> bool {
    match (item, got) {
        (Value::Array(_) | Value::Object(_), Value::String(s)) if level > MAX_RECORD_DEPTH => {
            read_cut(s).as_ref() == Some(item)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_cut(a, b, level + 1))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, a)| b.get(k).is_some_and(|b| same_cut(a, b, level + 1)))
        }
        (a, b) => a == b,
    }
}

/// A cut container's JSON text, read back (however deep).
fn read_cut(text: &str) -> Option<Value> {
    read_json(text.as_bytes(), true)
        .ok()
        .filter(|v| v.is_array() || v.is_object())
}

/// Levels of maps and arrays in `v`.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
