//! Open Cybersecurity Schema Framework. Classes per the contract notes (§7): sign-ins are
//! Authentication, item usages Web Resources Activity, audit events one of the IAM classes or
//! Entity Management by object type. What has no OCSF attribute goes to `unmapped`.

use jiff::Timestamp;

use super::Item;
use super::common::{Location, Related, User, signin_succeeded};
use super::value::{Map, Value};
use crate::event::EventType;

pub const OCSF_VERSION: &str = "1.3.0";

/// Class and activity of one event.
struct Class {
    uid: i64,
    name: &'static str,
    category_uid: i64,
    category_name: &'static str,
    activity_id: i64,
    activity_name: &'static str,
}

const IAM: (i64, &str) = (3, "Identity & Access Management");
const APPLICATION: (i64, &str) = (6, "Application Activity");

fn class(
    uid: i64,
    name: &'static str,
    cat: (i64, &'static str),
    act: (i64, &'static str),
) -> Class {
    Class {
        uid,
        name,
        category_uid: cat.0,
        category_name: cat.1,
        activity_id: act.0,
        activity_name: act.1,
    }
}

const OTHER: (i64, &str) = (99, "Other");

fn item_usage_activity(action: Option<&str>) -> (i64, &'static str) {
    match action {
        Some("server-create") => (1, "Create"),
        Some("reveal" | "fill" | "secure-copy" | "server-fetch" | "select-sso-provider") => {
            (2, "Read")
        }
        Some("enter-item-edit-mode" | "server-update") => (3, "Update"),
        Some("export") => (7, "Export"),
        Some("share") => (8, "Share"),
        _ => OTHER,
    }
}

/// Audit events: the object type picks the class, the action code the activity.
fn audit_class(object_type: &str, action: &str) -> Class {
    match object_type {
        // Account Change (3001) activity ids.
        "user" | "invite" | "miguser" | "sa" => {
            let act = match action {
                "create" | "provsn" | "join" => (1, "Create"),
                "activate" | "reactive" | "verify" => (2, "Enable"),
                "changemp" => (3, "Password Change"),
                "beginr" | "completr" | "cancelr" => (4, "Password Reset"),
                "suspend" => (5, "Disable"),
                "delete" | "purge" => (6, "Delete"),
                "enblmfa" => (10, "MFA Factor Enable"),
                "disblmfa" => (11, "MFA Factor Disable"),
                _ => OTHER,
            };
            class(3001, "Account Change", IAM, act)
        }
        "group" | "gm" => {
            let act = match action {
                "join" => (3, "Add User"),
                "leave" => (4, "Remove User"),
                "delete" | "purge" => (5, "Delete"),
                "create" => (6, "Create"),
                "grant" => (1, "Assign Privileges"),
                "revoke" => (2, "Revoke Privileges"),
                _ => OTHER,
            };
            class(3006, "Group Management", IAM, act)
        }
        "uva" | "gva" => {
            let act = match action {
                "grant" => (1, "Assign Privileges"),
                "revoke" => (2, "Revoke Privileges"),
                _ => OTHER,
            };
            class(3005, "User Access Management", IAM, act)
        }
        _ => {
            let act = match action {
                "create" => (1, "Create"),
                "view" | "export" => (2, "Read"),
                "update" | "updatea" | "updatfw" | "updatmfa" | "updatduo" | "patch"
                | "replace" | "trename" | "changenm" | "changela" | "changeks" | "changesk"
                | "role" => (3, "Update"),
                "delete" | "purge" => (4, "Delete"),
                "enblsso" | "enblduo" | "enblmfa" => (8, "Enable"),
                "disblsso" | "disblduo" | "disblmfa" => (9, "Disable"),
                "activate" | "reactive" => (10, "Activate"),
                "suspend" => (12, "Suspend"),
                _ => OTHER,
            };
            class(3004, "Entity Management", IAM, act)
        }
    }
}

fn user_value<'a>(u: User<'a>, unmapped: &mut Map<'a>, key: &'static str) -> Map<'a> {
    let mut user = Map::with_capacity(4);
    user.put("uid", u.uuid.map(Value::Str));
    user.put("name", u.name.map(Value::Str));
    user.put("email_addr", u.email.map(Value::Str));
    unmapped.put_map(key, u.rest);
    user
}

fn location_value<'a>(loc: Map<'a>, unmapped: &mut Map<'a>) -> Map<'a> {
    let loc = Location::take(loc);
    let mut out = Map::with_capacity(5);
    out.put("country", loc.country.map(Value::Str));
    out.put("region", loc.region.map(Value::Str));
    out.put("city", loc.city.map(Value::Str));
    out.put("lat", loc.lat);
    out.put("long", loc.lon);
    unmapped.put_map("location", loc.rest);
    out
}

pub fn normalize<'a>(kind: EventType, item: Item<'a>, time: Timestamp) -> Map<'a> {
    let Item {
        fields: mut it,
        timestamp,
    } = item;
    let original_time = if timestamp.is_some() {
        it.take_str("timestamp")
    } else {
        None
    };
    let mut out = Map::with_capacity(20);
    let mut unmapped = Map::with_capacity(12);
    let mut related = Related::default();
    let mut src = Map::new();
    let mut actor = Map::new();
    let mut extra = Map::new();

    let uuid = it.take_str("uuid");
    let class = match kind {
        EventType::SignInAttempts => {
            let category = it.take_str("category");
            let ty = it.take_str("type");
            let ok = category.as_deref().is_some_and(signin_succeeded);
            let is_mfa = ty.as_deref().is_some_and(|t| {
                t.starts_with("mfa_")
                    || ["totp_", "duo_", "u2f_", "code_"]
                        .iter()
                        .any(|p| t.starts_with(p))
            });
            extra.put("status_id", Value::Int(if ok { 1 } else { 2 }));
            extra.put(
                "status",
                Value::from(if ok { "Success" } else { "Failure" }),
            );
            extra.put("status_code", category.map(Value::Str));
            extra.put("status_detail", ty.map(Value::Str));
            extra.put("is_mfa", Value::Bool(is_mfa));
            let mut service = Map::with_capacity(1);
            service.put("name", Value::from("1Password"));
            extra.put_map("service", service);
            if let Some(session) = it.take_str("session_uuid") {
                let mut s = Map::with_capacity(1);
                s.put("uid", Value::Str(session));
                extra.put_map("session", s);
            }
            if let Some(u) = it.take_object("target_user") {
                let u = User::take(u, &mut related);
                extra.put_map("user", user_value(u, &mut unmapped, "target_user"));
            }
            class(3002, "Authentication", IAM, (1, "Logon"))
        }
        EventType::ItemUsages => {
            let action = it.take_str("action");
            let act = item_usage_activity(action.as_deref());
            if let Some(u) = it.take_object("user") {
                let u = User::take(u, &mut related);
                actor.put_map("user", user_value(u, &mut unmapped, "user"));
            }
            let mut resource = Map::with_capacity(3);
            resource.put("uid", it.take_str("item_uuid").map(Value::Str));
            resource.put("type", Value::from("item"));
            let mut data = Map::new();
            data.put("vault_uuid", it.take_str("vault_uuid").map(Value::Str));
            data.put("used_version", it.take("used_version"));
            data.put("action", action.map(Value::Str));
            resource.put_map("data", data);
            extra.put("web_resources", Value::Array(vec![Value::Object(resource)]));
            class(6001, "Web Resources Activity", APPLICATION, act)
        }
        EventType::AuditEvents => {
            let action = it.take_str("action");
            let object_type = it.take_str("object_type");
            let c = audit_class(
                object_type.as_deref().unwrap_or(""),
                action.as_deref().unwrap_or(""),
            );
            let mut user = Map::new();
            if let Some(u) = it.take_object("actor_details") {
                let u = User::take(u, &mut related);
                user = user_value(u, &mut unmapped, "actor_details");
            }
            if let Some(id) = it.take_str("actor_uuid") {
                if user.get("uid").is_none() {
                    user.put("uid", Value::Str(id));
                } else {
                    unmapped.put("actor_uuid", Value::Str(id));
                }
            }
            user.put("type", it.take_str("actor_type").map(Value::Str));
            actor.put_map("user", user);
            if let Some(mut s) = it.take_object("session") {
                let mut session = Map::with_capacity(3);
                session.put("uid", s.take_str("uuid").map(Value::Str));
                session.put("created_time_dt", s.take_str("login_time").map(Value::Str));
                if let Some(ip) = s.take_str("ip") {
                    src.put("ip", Value::Str(ip));
                }
                if let Some(device) = s.take_str("device_uuid") {
                    let mut d = Map::with_capacity(1);
                    d.put("uid", Value::Str(device));
                    extra.put_map("device", d);
                }
                actor.put_map("session", session);
                unmapped.put_map("session", s);
            }
            let mut entity = Map::with_capacity(3);
            entity.put("uid", it.take_str("object_uuid").map(Value::Str));
            entity.put("type", object_type.map(Value::Str));
            if let Some(details) = it.take_object("object_details") {
                let u = User::take(details, &mut related);
                entity.put_map("data", user_value(u, &mut unmapped, "object_details"));
            }
            extra.put_map("entity", entity);
            unmapped.put("action", action.map(Value::Str));
            c
        }
    };

    if let Some(mut client) = it.take_object("client") {
        if let Some(ip) = client.take_str("ip_address") {
            src.put("ip", Value::Str(ip));
        }
        let mut os = Map::new();
        os.put("name", client.take_str("os_name").map(Value::Str));
        os.put("version", client.take_str("os_version").map(Value::Str));
        src.put_map("os", os);
        unmapped.put_map("client", client);
    }
    if let Some(loc) = it.take_object("location") {
        src.put_map("location", location_value(loc, &mut unmapped));
    }

    out.put("class_uid", Value::Int(class.uid));
    out.put("class_name", Value::from(class.name));
    out.put("category_uid", Value::Int(class.category_uid));
    out.put("category_name", Value::from(class.category_name));
    out.put("activity_id", Value::Int(class.activity_id));
    out.put("activity_name", Value::from(class.activity_name));
    out.put("type_uid", Value::Int(class.uid * 100 + class.activity_id));
    out.put(
        "type_name",
        Value::from(format!("{}: {}", class.name, class.activity_name)),
    );
    out.put("severity_id", Value::Int(1));
    out.put("severity", Value::from("Informational"));
    out.put("time", Value::Int(time.as_millisecond()));
    let mut metadata = Map::with_capacity(5);
    metadata.put("version", Value::from(OCSF_VERSION));
    metadata.put("uid", uuid.map(Value::Str));
    let mut product = Map::with_capacity(2);
    product.put("name", Value::from("1Password Events API"));
    product.put("vendor_name", Value::from("1Password"));
    metadata.put_map("product", product);
    metadata.put("log_name", Value::from(kind.as_str()));
    metadata.put("original_time", original_time.map(Value::Str));
    out.put_map("metadata", metadata);
    extra.drain_into(&mut out);
    out.put_map("actor", actor);
    out.put_map("src_endpoint", src);
    it.drain_into(&mut unmapped);
    out.put_map("unmapped", unmapped);
    out
}
