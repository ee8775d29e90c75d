//! Turns one Events API item into the record a SIEM wants: `ecs`, `ocsf` or `raw`. Pure
//! functions over the borrowed tree in [`value`]; no I/O. Unknown fields and unknown enum values
//! always survive (under `onepassword.*` in ECS, `unmapped` in OCSF, untouched in raw).

mod common;
mod ecs;
mod ocsf;
pub mod value;

use jiff::Timestamp;

use crate::event::{EventType, Format};
use value::{Map, Value};

/// Why an item could not become a record. The caller reports it and skips the item; the rest of
/// the page is still delivered.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("item is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("item is a JSON {0}, not an object")]
    NotAnObject(&'static str),
}

/// One item, parsed and ready for a normalizer.
pub struct Item<'a> {
    pub fields: Map<'a>,
    /// The item's own `timestamp`, when it is present and valid RFC 3339.
    pub timestamp: Option<Timestamp>,
}

impl<'a> Item<'a> {
    pub fn parse(text: &'a str) -> Result<Self, NormalizeError> {
        let fields = match serde_json::from_str::<Value<'a>>(text)? {
            Value::Object(map) => map,
            other => return Err(NormalizeError::NotAnObject(kind_name(&other))),
        };
        let timestamp = fields.get_str("timestamp").and_then(parse_timestamp);
        Ok(Self { fields, timestamp })
    }

    pub fn uuid(&self) -> Option<&str> {
        self.fields.get_str("uuid")
    }
}

/// RFC 3339 with any precision and offset. EventTime carries seconds as u32, so instants
/// before 1970 or after 2106 are treated as invalid rather than wrapped.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let ts: Timestamp = s.parse().ok()?;
    (0..i64::from(u32::MAX - 1))
        .contains(&ts.as_second())
        .then_some(ts)
}

/// Builds the record body. `time` is the event's instant (the item's timestamp, or the
/// collection time when the item has none).
pub fn normalize<'a>(format: Format, kind: EventType, item: Item<'a>, time: Timestamp) -> Map<'a> {
    match format {
        Format::Ecs => ecs::normalize(kind, item, time),
        Format::Ocsf => ocsf::normalize(kind, item, time),
        Format::Raw => {
            let mut out = Map::with_capacity(2);
            out.put("event_type", Value::from(kind.as_str()));
            out.put("event", Value::Object(item.fields));
            out
        }
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => "number",
        Value::Str(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_every_documented_shape_parse() {
        for s in [
            "2021-08-11T14:28:03Z",
            "2021-08-11T14:28:03.42Z",
            "2022-10-24T21:16:52.827288935Z",
            "2020-06-11T16:32:50-03:00",
        ] {
            assert!(parse_timestamp(s).is_some(), "{s}");
        }
        let ns = parse_timestamp("2022-10-24T21:16:52.827288935Z").unwrap();
        assert_eq!(ns.subsec_nanosecond(), 827_288_935);
        let off = parse_timestamp("2020-06-11T16:32:50-03:00").unwrap();
        assert_eq!(off.to_string(), "2020-06-11T19:32:50Z");
        for bad in [
            "",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn non_objects_are_rejected_with_their_type() {
        let err = Item::parse("[1,2]").err().unwrap().to_string();
        assert!(err.contains("array"), "{err}");
        assert!(Item::parse("{\"a\":").is_err());
    }
}
