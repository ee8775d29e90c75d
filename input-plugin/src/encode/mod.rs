//! The one call streams make per API item: normalize it and append it to the sink's bytes,
//! either as a Fluent Bit msgpack event or as one NDJSON line.

mod msgpack;

use jiff::Timestamp;

use crate::event::{ApiVersion, EventType, Format};
use crate::normalize::{self, Item};

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
pub struct ItemMeta {
    pub uuid: Option<String>,
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

    /// Appends exactly one encoded event for `item` (the raw JSON of one element of `items`),
    /// or nothing on error. An item without a valid `timestamp` is still delivered, stamped
    /// with the collection time: losing evidence is worse than an approximate time.
    pub fn encode(
        &self,
        kind: EventType,
        item: &str,
        out: &mut Vec<u8>,
    ) -> Result<ItemMeta, NormalizeError> {
        let item = Item::parse(item)?;
        let meta = ItemMeta {
            uuid: item.uuid().map(str::to_owned),
            timestamp: item.timestamp,
        };
        let time = item.timestamp.unwrap_or_else(Timestamp::now);
        let body = normalize::normalize(self.format, kind, item, time);
        match self.target {
            Target::Msgpack => {
                let metadata = [
                    ("event_type", kind.as_str()),
                    ("account_uuid", self.ctx.account_uuid.as_str()),
                    ("api_version", self.ctx.api_version.as_str()),
                    ("source", "1password"),
                ];
                msgpack::write_event(out, time, &metadata, &body);
            }
            Target::Ndjson => {
                let start = out.len();
                if let Err(e) = serde_json::to_writer(&mut *out, &body) {
                    out.truncate(start);
                    return Err(e.into());
                }
                out.push(b'\n');
            }
        }
        Ok(meta)
    }
}
