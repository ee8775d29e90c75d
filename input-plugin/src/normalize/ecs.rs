//! Elastic Common Schema. Follows the Elastic 1Password integration's field choices so existing
//! dashboards and rules work, and keeps every API field it does not map under `onepassword.*`.

use jiff::Timestamp;

use super::Item;
use super::common::{Location, Related, User, is_iso_country, rfc3339, signin_succeeded, strings};
use super::value::{Map, Value};
use crate::event::EventType;

pub fn normalize<'a>(kind: EventType, item: Item<'a>, time: Timestamp) -> Map<'a> {
    let Item {
        fields: mut it,
        timestamp,
    } = item;
    // A valid timestamp becomes @timestamp (its own text when already UTC, which saves
    // formatting); an invalid one stays under onepassword.timestamp.
    let original = timestamp.and_then(|_| it.take_str("timestamp"));
    let at = match original {
        Some(text) if text.ends_with('Z') => Value::Str(text),
        _ => rfc3339(time),
    };
    let mut out = Map::with_capacity(10);
    let mut event = Map::with_capacity(10);
    let mut op = Map::with_capacity(16);
    let mut related = Related::default();
    let mut source = Map::new();
    let mut host = Map::new();

    out.put("@timestamp", at);
    event.put("kind", Value::from("event"));
    event.put("module", Value::from("1password"));
    event.put("dataset", Value::from(kind.dataset_name()));
    if let Some(Value::Str(uuid)) = it.get("uuid") {
        event.put("id", Value::Str(uuid.clone()));
    }

    let user_key = match kind {
        EventType::SignInAttempts => "target_user",
        EventType::ItemUsages => "user",
        EventType::AuditEvents => "actor_details",
    };
    let mut user = Map::new();
    if let Some(u) = it.take_object(user_key) {
        let u = User::take(u, &mut related);
        user.put("id", u.uuid.map(Value::Str));
        user.put("name", u.email.clone().map(Value::Str));
        user.put("full_name", u.name.map(Value::Str));
        user.put("email", u.email.map(Value::Str));
        op.put_map(user_key, u.rest);
    }

    match kind {
        EventType::SignInAttempts => {
            let category = it.take_str("category");
            let outcome = match category.as_deref() {
                Some(c) if signin_succeeded(c) => "success",
                Some(_) => "failure",
                None => "unknown",
            };
            event.put("category", Value::Array(vec!["authentication".into()]));
            event.put("type", Value::Array(vec!["start".into()]));
            event.put("action", category.map(Value::Str));
            event.put("outcome", Value::from(outcome));
        }
        EventType::ItemUsages => {
            let action = it.take_str("action");
            let ty = match action.as_deref() {
                Some("server-create") => "creation",
                Some("server-update" | "enter-item-edit-mode") => "change",
                _ => "access",
            };
            event.put("category", Value::Array(vec!["file".into()]));
            event.put("type", Value::Array(vec![ty.into()]));
            event.put("action", action.map(Value::Str));
        }
        EventType::AuditEvents => {
            let action = it.take_str("action");
            let object_type = it.get_str("object_type").unwrap_or_default();
            let (category, subject) = match object_type {
                "user" | "invite" | "miguser" | "sa" => ("iam", Some("user")),
                "group" | "gm" | "gva" => ("iam", Some("group")),
                _ => ("configuration", None),
            };
            let change = match action.as_deref() {
                Some("create") => "creation",
                Some("delete" | "purge") => "deletion",
                Some("view" | "export") => "access",
                _ => "change",
            };
            let mut types = vec![Value::from(change)];
            types.extend(subject.map(Value::from));
            event.put("category", Value::Array(vec![category.into()]));
            event.put("type", Value::Array(types));
            event.put("action", action.map(Value::Str));
            if user.get("id").is_none() {
                user.put(
                    "id",
                    it.get_str("actor_uuid").map(|s| Value::from(s.to_owned())),
                );
            }
            if let (true, Some(object)) = (object_type == "user", it.get_str("object_uuid")) {
                related.user(object.to_owned().into());
            }
            if let (true, Some(aux)) = (
                matches!(object_type, "gm" | "device" | "uva"),
                it.get_str("aux_uuid"),
            ) {
                related.user(aux.to_owned().into());
            }
            if let Some(mut session) = it.take_object("session") {
                if let Some(ip) = session.take_str("ip") {
                    related.ip(ip.clone());
                    source.put("ip", Value::Str(ip));
                }
                op.put_map("session", session);
            }
        }
    }

    if let Some(mut client) = it.take_object("client") {
        if let Some(ip) = client.take_str("ip_address") {
            related.ip(ip.clone());
            source.put("ip", Value::Str(ip));
        }
        let mut os = Map::new();
        os.put("name", client.take_str("os_name").map(Value::Str));
        os.put("version", client.take_str("os_version").map(Value::Str));
        host.put_map("os", os);
        op.put_map("client", client);
    }
    if let Some(loc) = it.take_object("location") {
        let loc = Location::take(loc);
        let mut geo = Map::new();
        if let Some(country) = loc.country {
            let key = if is_iso_country(&country) {
                "country_iso_code"
            } else {
                "country_name"
            };
            geo.put(key, Value::Str(country));
        }
        geo.put("region_name", loc.region.map(Value::Str));
        geo.put("city_name", loc.city.map(Value::Str));
        if let (Some(lat), Some(lon)) = (loc.lat, loc.lon) {
            let mut point = Map::with_capacity(2);
            point.put("lat", lat);
            point.put("lon", lon);
            geo.put_map("location", point);
        }
        source.put_map("geo", geo);
        op.put_map("location", loc.rest);
    }

    // Everything not mapped above (uuid, session_uuid, type, details, vault/item uuids, object and
    // aux fields, MSP fields, fields the API adds later) stays under onepassword.*.
    it.drain_into(&mut op);
    let mut rel = Map::new();
    rel.put("user", strings(related.users));
    rel.put("ip", strings(related.ips));

    out.put_map("event", event);
    out.put_map("user", user);
    out.put_map("source", source);
    out.put_map("host", host);
    out.put_map("related", rel);
    out.put_map("onepassword", op);
    out
}
