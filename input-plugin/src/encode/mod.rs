//! The one call streams make per API item: normalize it and append it to the sink's bytes,
//! either as a Fluent Bit msgpack event or as one NDJSON line.

mod msgpack;
mod ndjson;
pub mod writer;

use std::borrow::Cow;

use jiff::Timestamp;

use crate::event::{ApiVersion, EventType, Format};
use crate::json::Tape;
use crate::normalize::{self, Item, Schema};
use writer::Writer;

pub use crate::normalize::NormalizeError;
/// What the sink reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Fluent Bit events `[[EventTime, metadata], body]`, concatenated.
    Msgpack,
    /// One JSON object per line.
    Ndjson,
}

/// Facts about the collector that every record carries.
#[derive(Clone, Debug)]
pub struct EncodeContext {
    pub account_uuid: String,
    pub api_version: ApiVersion,
}

/// What the stream needs to know about an item it handed over: its dedupe key and its time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemMeta<'a> {
    pub uuid: Option<Cow<'a, str>>,
    pub timestamp: Option<Timestamp>,
}

pub struct Encoder {
    target: Target,
    schema: Schema,
    /// Each event type's msgpack metadata map, encoded once (indexed by `kind as usize`:
    /// `EventType::ALL` is in declaration order).
    metadata: [Vec<u8>; 3],
}

impl Encoder {
    pub fn new(format: Format, target: Target, ctx: EncodeContext) -> Self {
        let metadata = EventType::ALL.map(|kind| {
            msgpack::metadata(&[
                ("event_type", kind.as_str()),
                ("account_uuid", ctx.account_uuid.as_str()),
                ("api_version", ctx.api_version.as_str()),
                ("source", "1password"),
            ])
        });
        let schema = match target {
            Target::Msgpack => Schema::new::<msgpack::Msgpack>(format),
            Target::Ndjson => Schema::new::<ndjson::Json>(format),
        };
        Self {
            target,
            schema,
            metadata,
        }
    }

    /// Bytes to reserve for the records of a page of `page_len` bytes. Records are larger than
    /// the API's items (ECS and OCSF add fields, both targets add framing), and a buffer that
    /// has to grow mid-page copies everything written so far, so this errs on the large side.
    pub fn capacity_for(&self, page_len: usize) -> usize {
        let eighths = match self.schema {
            Schema::Raw => 9,
            Schema::Ecs => 13,
            Schema::Ocsf(_) => 15,
        };
        page_len / 8 * eighths + 4096
    }

    /// Appends exactly one encoded event for `item` (the JSON text of one element of `items`),
    /// or nothing on error.
    pub fn encode<'a>(
        &self,
        kind: EventType,
        item: &'a str,
        out: &mut Vec<u8>,
    ) -> Result<ItemMeta<'a>, NormalizeError> {
        self.encode_parsed(kind, &mut Tape::parse(item)?, out)
    }

    /// [`Encoder::encode`] for an item already on a tape (how pages are encoded). An item
    /// without a valid `timestamp` is still delivered, stamped with the collection time: losing
    /// evidence is worse than an approximate time.
    pub fn encode_parsed<'a>(
        &self,
        kind: EventType,
        tape: &mut Tape<'a>,
        out: &mut Vec<u8>,
    ) -> Result<ItemMeta<'a>, NormalizeError> {
        let mut item = Item::new(tape)?;
        let meta = ItemMeta {
            uuid: item.uuid().map(|s| s.decoded()),
            timestamp: item.timestamp,
        };
        let time = item.timestamp.unwrap_or_else(Timestamp::now);
        // An OCSF record's root has more than 15 members.
        let wide = matches!(self.schema, Schema::Ocsf(_));
        match self.target {
            Target::Msgpack => {
                msgpack::event_header(out, time, &self.metadata[kind as usize]);
                let mut w = Writer::<msgpack::Msgpack>::new(out, wide);
                normalize::write(&self.schema, kind, &mut item, time, &mut w);
                w.finish();
            }
            Target::Ndjson => {
                let mut w = Writer::<ndjson::Json>::new(out, wide);
                normalize::write(&self.schema, kind, &mut item, time, &mut w);
                w.finish();
                out.push(b'\n');
            }
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_page;
    use op_events_mock::{MockConfig, MockServer};

    /// Pages of generated items fit the reserved capacity without wasting much of it.
    #[test]
    fn capacity_fits_every_format_and_target() {
        let mock = MockServer::start(MockConfig {
            events_per_type: 300,
            ..MockConfig::default()
        })
        .unwrap();
        for kind in EventType::ALL {
            let items = serde_json::Value::from(mock.events("acme", kind.as_str()));
            let page = format!(r#"{{"cursor":"c","has_more":false,"items":{items}}}"#);
            for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
                for target in [Target::Msgpack, Target::Ndjson] {
                    let ctx = EncodeContext {
                        account_uuid: "A4UJZEXAMPLEACCTGQ7Q3NDIVM".into(),
                        api_version: ApiVersion::V2,
                    };
                    let encoder = Encoder::new(format, target, ctx);
                    let mut out = Vec::new();
                    parse_page(&page, &mut Tape::default(), |item| {
                        encoder
                            .encode_parsed(kind, item.unwrap(), &mut out)
                            .unwrap();
                    })
                    .unwrap();
                    let reserved = encoder.capacity_for(page.len());
                    let what = format!(
                        "{kind:?} {format:?} {target:?}: {} of {reserved}",
                        out.len()
                    );
                    assert!(out.len() <= reserved, "{what}");
                    assert!(out.len() * 4 > reserved * 3, "{what}: reserves too much");
                }
            }
        }
    }
}
