//! The one call streams make per API item: normalize it and append it to the sink's bytes,
//! either as a Fluent Bit msgpack event or as one NDJSON line.

mod msgpack;
mod ndjson;
pub mod writer;

use std::borrow::Cow;

use jiff::Timestamp;

use crate::event::{ApiVersion, EventType, Format};
use crate::json::Tape;
use crate::normalize::{self, Item};
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
    format: Format,
    target: Target,
    ctx: EncodeContext,
}

impl Encoder {
    pub fn new(format: Format, target: Target, ctx: EncodeContext) -> Self {
        Self {
            format,
            target,
            ctx,
        }
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
        match self.target {
            Target::Msgpack => {
                let metadata = [
                    ("event_type", kind.as_str()),
                    ("account_uuid", self.ctx.account_uuid.as_str()),
                    ("api_version", self.ctx.api_version.as_str()),
                    ("source", "1password"),
                ];
                msgpack::event_header(out, time, &metadata);
                let mut w = Writer::<msgpack::Msgpack>::new(out);
                normalize::write(self.format, kind, &mut item, time, &mut w);
                w.finish();
            }
            Target::Ndjson => {
                let mut w = Writer::<ndjson::Json>::new(out);
                normalize::write(self.format, kind, &mut item, time, &mut w);
                w.finish();
                out.push(b'\n');
            }
        }
        Ok(meta)
    }
}
