//! Decodes plugin buffers with `rmpv` (independent of the crate's own encoder) and checks them
//! against the mock's dataset.

use std::collections::HashMap;

use rmpv::Value;

/// One Fluent Bit v2 event: `[[EventTime, metadata], body]`.
#[derive(Debug, Clone)]
pub struct Event {
    pub secs: u32,
    pub nanos: u32,
    pub meta: Value,
    pub body: Value,
}

impl Event {
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        map_get(&self.meta, key).and_then(Value::as_str)
    }

    /// The event's uuid, for a record in `format raw` (`{"event_type", "event"}`).
    pub fn raw_uuid(&self) -> String {
        self.body["event"]["uuid"]
            .as_str()
            .expect("a raw record's event.uuid")
            .to_owned()
    }
}

pub fn map_get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Every event in a buffer; panics on anything that is not a well-formed v2 event.
pub fn decode(buffer: &[u8]) -> Vec<Event> {
    let mut reader = buffer;
    let mut events = Vec::new();
    while !reader.is_empty() {
        let value = rmpv::decode::read_value(&mut reader).expect("valid msgpack");
        let outer = value.as_array().expect("event is an array");
        assert_eq!(outer.len(), 2, "event is [header, body]");
        let header = outer[0].as_array().expect("header is [time, metadata]");
        assert_eq!(header.len(), 2);
        let Value::Ext(0, bytes) = &header[0] else {
            panic!("time is not EventTime (ext 0): {:?}", header[0]);
        };
        assert_eq!(bytes.len(), 8, "EventTime is 8 bytes");
        let secs = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
        let nanos = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        assert!(secs < 0xFFFF_FFFE, "group marker emitted");
        assert!(nanos < 1_000_000_000);
        assert!(header[1].is_map(), "metadata is a map");
        assert!(outer[1].is_map(), "body is a map");
        events.push(Event {
            secs,
            nanos,
            meta: header[1].clone(),
            body: outer[1].clone(),
        });
    }
    events
}

/// Every string anywhere in a record.
pub fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.extend(s.as_str()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| strings(v, out)),
        _ => {}
    }
}

/// JSON → rmpv, for comparing an API item with a raw-format body.
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap())
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

/// What one stream of one account should have delivered.
pub struct Expected<'a> {
    pub account_uuid: &'a str,
    pub event_type: &'a str,
    pub items: &'a [serde_json::Value],
}

/// Asserts every expected item arrived exactly once, with its timestamp (to the nanosecond)
/// and the metadata of its stream and account, and that nothing else arrived. `all_fields`:
/// every string of the item is in the record (formats that keep values as they are).
pub fn assert_delivered(events: &[Event], expected: &[Expected<'_>], all_fields: bool) {
    let mut by_uuid: HashMap<&str, Vec<usize>> = HashMap::new();
    for (at, event) in events.iter().enumerate() {
        let mut found = Vec::new();
        strings(&event.body, &mut found);
        found.sort_unstable();
        found.dedup();
        for s in found {
            by_uuid.entry(s).or_default().push(at);
        }
    }
    let mut total = 0;
    for stream in expected {
        for item in stream.items {
            total += 1;
            let uuid = item["uuid"].as_str().expect("item uuid");
            let hits = by_uuid.get(uuid).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(
                hits.len(),
                1,
                "{} {uuid}: delivered {} times",
                stream.event_type,
                hits.len()
            );
            let event = &events[hits[0]];
            let ts: jiff::Timestamp = item["timestamp"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                (i64::from(event.secs), event.nanos as i32),
                (ts.as_second(), ts.subsec_nanosecond()),
                "{uuid}: EventTime"
            );
            assert_eq!(
                event.meta_str("event_type"),
                Some(stream.event_type),
                "{uuid}"
            );
            assert_eq!(
                event.meta_str("account_uuid"),
                Some(stream.account_uuid),
                "{uuid}"
            );
            assert_eq!(event.meta_str("source"), Some("1password"), "{uuid}");
            assert!(
                event.meta_str("api_version").is_some(),
                "{uuid}: api_version"
            );
            if all_fields {
                assert_fields(item, &event.body);
            }
        }
    }
    assert_eq!(events.len(), total, "events delivered vs expected");
}

/// Every string field of the item (the identifiers, names, addresses) is in the record.
fn assert_fields(item: &serde_json::Value, body: &Value) {
    let mut have = Vec::new();
    strings(body, &mut have);
    let mut want = Vec::new();
    json_strings(item, "", &mut want);
    for (path, value) in want {
        if path == "timestamp" || value.is_empty() {
            continue; // the timestamp is the EventTime (and may be re-rendered in the body)
        }
        assert!(
            have.contains(&value.as_str()),
            "{}: field {path}={value:?} missing from {body}",
            item["uuid"]
        );
    }
}

fn json_strings(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => out.push((path.to_owned(), s.clone())),
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_strings(v, path, out)),
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_strings(v, &p, out);
            }
        }
        _ => {}
    }
}
