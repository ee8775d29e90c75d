//! Turns one Events API item into the record a SIEM wants: `ecs`, `ocsf` or `raw`, written
//! straight into the sink's bytes. Unknown fields and unknown enum values always survive
//! (under `onepassword.*` in ECS, `unmapped` in OCSF, as they came in raw).

mod common;
mod ecs;
pub mod item;
mod ocsf;

use jiff::Timestamp;

use crate::encode::writer::{Syntax, Writer};
use crate::event::{EventType, Format};
pub use item::{Item, NormalizeError};

/// A format, with what it writes the same in every record written once for its target.
pub enum Schema {
    Ecs,
    Ocsf(ocsf::Constants),
    Raw,
}

impl Schema {
    pub fn new<S: Syntax>(format: Format) -> Self {
        match format {
            Format::Ecs => Schema::Ecs,
            Format::Ocsf => Schema::Ocsf(ocsf::Constants::new::<S>()),
            Format::Raw => Schema::Raw,
        }
    }
}

/// Writes the record body's members. `time` is the event's instant (the item's timestamp, or
/// the collection time when the item has none). `schema` was made for `S`.
pub fn write<S: Syntax>(
    schema: &Schema,
    kind: EventType,
    item: &mut Item,
    time: Timestamp,
    w: &mut Writer<S>,
) {
    match schema {
        Schema::Ecs => ecs::write(kind, item, time, w),
        Schema::Ocsf(constants) => ocsf::write(constants, kind, item, time, w),
        Schema::Raw => {
            w.static_field("event_type", kind.as_str());
            w.key("event");
            w.copy(item.tape(), item::ROOT);
        }
    }
}
