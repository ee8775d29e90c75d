//! Turns one Events API item into the record a SIEM wants: `ecs`, `ocsf` or `raw`, written
//! straight into the sink's bytes. Unknown fields and unknown enum values always survive
//! (under `onepassword.*` in ECS, `unmapped` in OCSF, untouched in raw).

mod common;
mod ecs;
pub mod item;
mod ocsf;

use jiff::Timestamp;

use crate::encode::writer::{Syntax, Writer};
use crate::event::{EventType, Format};
pub use item::{Item, NormalizeError};

/// Writes the record body's members. `time` is the event's instant (the item's timestamp, or
/// the collection time when the item has none).
pub fn write<S: Syntax>(
    format: Format,
    kind: EventType,
    item: &mut Item,
    time: Timestamp,
    w: &mut Writer<S>,
) {
    match format {
        Format::Ecs => ecs::write(kind, item, time, w),
        Format::Ocsf => ocsf::write(kind, item, time, w),
        Format::Raw => {
            w.static_field("event_type", kind.as_str());
            w.key("event");
            w.copy(item.tape(), item::ROOT);
        }
    }
}
