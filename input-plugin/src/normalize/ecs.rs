//! Elastic Common Schema. Follows the Elastic 1Password integration's field choices so existing
//! dashboards and rules work, and keeps every API field it does not map under `onepassword.*`.

use jiff::Timestamp;

use super::common::{Client, Location, Related, User, is_ip, is_iso_country, signin_succeeded};
use super::item::{Item, ROOT};
use crate::encode::writer::{Syntax, Writer};
use crate::event::EventType;
use crate::json::Str;

pub fn write<S: Syntax>(kind: EventType, item: &mut Item, time: Timestamp, w: &mut Writer<S>) {
    // A valid timestamp becomes @timestamp (its own text when already UTC, which saves
    // formatting); an invalid one stays under onepassword.timestamp.
    let original = item
        .timestamp
        .and_then(|_| item.take_str(ROOT, "timestamp"));
    let mut related = Related::default();
    let user_key = match kind {
        EventType::SignInAttempts => "target_user",
        EventType::ItemUsages => "user",
        EventType::AuditEvents => "actor_details",
    };
    let user = User::take(item, ROOT, user_key, &mut related);
    let mut user_id = user.uuid;

    // event.category, event.type (a second value for audit events about users and groups),
    // event.action, event.outcome
    let (category, (ty, subject), action, outcome): (&str, (&str, Option<&str>), _, _) = match kind
    {
        EventType::SignInAttempts => {
            let category = item.take_str(ROOT, "category");
            let outcome = match category {
                Some(c) if signin_succeeded(c) => "success",
                Some(_) => "failure",
                None => "unknown",
            };
            ("authentication", ("start", None), category, Some(outcome))
        }
        EventType::ItemUsages => {
            let action = item.take_str(ROOT, "action");
            let ty = match action.as_ref().map(Str::decoded).as_deref() {
                Some("server-create") => "creation",
                Some("server-update" | "enter-item-edit-mode") => "change",
                _ => "access",
            };
            ("file", (ty, None), action, None)
        }
        EventType::AuditEvents => {
            let action = item.take_str(ROOT, "action");
            let object_type = item.get_str(ROOT, "object_type").unwrap_or_default();
            let object_type = object_type.decoded();
            let (category, subject) = match &*object_type {
                "user" | "invite" | "miguser" | "sa" => ("iam", Some("user")),
                "group" | "gm" | "gva" => ("iam", Some("group")),
                _ => ("configuration", None),
            };
            let change = match action.as_ref().map(Str::decoded).as_deref() {
                Some("create") => "creation",
                Some("delete" | "purge") => "deletion",
                // ECS's `iam` takes no `access` (`configuration` does): its reads are `info`.
                Some("view" | "export") if subject.is_some() => "info",
                Some("view" | "export") => "access",
                _ => "change",
            };
            // The actor is a related user with or without details (as Elastic's pipeline).
            let actor = item.get_str(ROOT, "actor_uuid");
            related.users.add(actor);
            if user_id.is_none() {
                user_id = actor;
            }
            if object_type == "user" {
                related.users.add(item.get_str(ROOT, "object_uuid"));
            }
            if matches!(&*object_type, "gm" | "device" | "uva") {
                related.users.add(item.get_str(ROOT, "aux_uuid"));
            }
            (category, (change, subject), action, None)
        }
    };
    let session_ip = match kind {
        EventType::AuditEvents => item
            .open(ROOT, "session")
            .and_then(|at| item.take_str_if(at, "ip", is_ip)),
        _ => None,
    };
    // Both addresses are kept: the session's as source.ip, both in related.ip.
    let client = Client::take(item, |_| true);
    let location = Location::take(item);
    related.ips.add(session_ip);
    related.ips.add(client.ip);

    w.key("@timestamp");
    match original {
        Some(text) if item.timestamp_is_utc_text => w.input_str(text),
        _ => w.str(&time.to_string()),
    }

    w.map("event");
    w.static_field("kind", "event");
    w.static_field("module", "1password");
    w.static_field("dataset", kind.dataset_name());
    w.field("id", item.uuid());
    w.strs("category", &[category]);
    match subject {
        Some(subject) => w.strs("type", &[ty, subject]),
        None => w.strs("type", &[ty]),
    }
    w.field("action", action);
    if let Some(outcome) = outcome {
        w.static_field("outcome", outcome);
    }
    w.close_map();

    w.map("user");
    w.field("id", user_id);
    w.field("name", user.email);
    w.field("full_name", user.name);
    w.field("email", user.email);
    w.close_map();

    w.map("source");
    w.field("ip", session_ip.or(client.ip));
    w.map("geo");
    if let Some(country) = location.country {
        let key = if is_iso_country(country) {
            "country_iso_code"
        } else {
            "country_name"
        };
        w.field(key, Some(country));
    }
    w.field("region_name", location.region);
    w.field("city_name", location.city);
    if let (Some(lat), Some(lon)) = (location.lat, location.lon) {
        w.map("location");
        w.key("lat");
        w.num(lat);
        w.key("lon");
        w.num(lon);
        w.close_map();
    }
    w.close_map();
    w.close_map();

    w.map("host");
    w.map("os");
    w.field("name", client.os_name);
    w.field("version", client.os_version);
    w.close_map();
    w.close_map();

    w.map("related");
    w.input_strs("user", related.users.as_slice());
    w.input_strs("ip", related.ips.as_slice());
    w.close_map();

    // Everything not mapped above (uuid, session_uuid, type, details, vault/item uuids, object and
    // aux fields, MSP fields, fields the API adds later) stays under onepassword.*.
    w.map("onepassword");
    w.leftovers(item.tape(), ROOT);
    w.close_map();
}
