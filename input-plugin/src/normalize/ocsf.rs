//! Open Cybersecurity Schema Framework. Classes per the contract notes (§7): sign-ins are
//! Authentication, item usages Web Resources Activity, audit events one of the IAM classes or
//! Entity Management by object type. What has no OCSF attribute goes to `unmapped`.

use jiff::Timestamp;

use super::common::{Client, Location, Related, User, signin_succeeded};
use super::item::{Item, ROOT};
use crate::encode::writer::{Syntax, Writer};
use crate::event::EventType;
use crate::json::Str;

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

/// `{uid, name, email_addr}` of a User object.
fn user_fields<S: Syntax>(w: &mut Writer<S>, u: &User) {
    w.field("uid", u.uuid);
    w.field("name", u.name);
    w.field("email_addr", u.email);
}

/// What each event type maps, taken from the item before anything is written.
enum Parts<'a> {
    SignIn {
        category: Option<Str<'a>>,
        ty: Option<Str<'a>>,
        session: Option<Str<'a>>,
        user: User<'a>,
    },
    ItemUsage {
        action: Option<Str<'a>>,
        user: User<'a>,
        item_uuid: Option<Str<'a>>,
        vault_uuid: Option<Str<'a>>,
        used_version: Option<usize>,
    },
    Audit {
        user: User<'a>,
        actor_type: Option<Str<'a>>,
        session_uuid: Option<Str<'a>>,
        login_time: Option<Str<'a>>,
        device: Option<Str<'a>>,
        object_uuid: Option<Str<'a>>,
        object_type: Option<Str<'a>>,
        object: User<'a>,
    },
}

pub fn write<S: Syntax>(kind: EventType, item: &mut Item, time: Timestamp, w: &mut Writer<S>) {
    let original_time = item
        .timestamp
        .and_then(|_| item.take_str(ROOT, "timestamp"));
    let uuid = item.take_str(ROOT, "uuid");
    // OCSF has no related lists; users are still taken the same way as in ECS.
    let mut related = Related::default();
    let mut src_ip = None;
    let (class, parts) = match kind {
        EventType::SignInAttempts => {
            let category = item.take_str(ROOT, "category");
            let ty = item.take_str(ROOT, "type");
            let session = item.take_str(ROOT, "session_uuid");
            let user = User::take(item, ROOT, "target_user", &mut related);
            let class = class(3002, "Authentication", IAM, (1, "Logon"));
            (
                class,
                Parts::SignIn {
                    category,
                    ty,
                    session,
                    user,
                },
            )
        }
        EventType::ItemUsages => {
            let action = item.take_str(ROOT, "action");
            let act = item_usage_activity(action.as_ref().map(Str::decoded).as_deref());
            let user = User::take(item, ROOT, "user", &mut related);
            let item_uuid = item.take_str(ROOT, "item_uuid");
            let vault_uuid = item.take_str(ROOT, "vault_uuid");
            let used_version = item.take(ROOT, "used_version");
            let class = class(6001, "Web Resources Activity", APPLICATION, act);
            (
                class,
                Parts::ItemUsage {
                    action,
                    user,
                    item_uuid,
                    vault_uuid,
                    used_version,
                },
            )
        }
        EventType::AuditEvents => {
            // `action` is also kept in `unmapped`, in the API's own words: it is not taken.
            let action = item.get_str(ROOT, "action");
            let object_type = item.take_str(ROOT, "object_type");
            let class = audit_class(
                &object_type.map(|s| s.decoded()).unwrap_or_default(),
                &action.map(|s| s.decoded()).unwrap_or_default(),
            );
            let mut user = User::take(item, ROOT, "actor_details", &mut related);
            if user.uuid.is_none() {
                user.uuid = item.take_str(ROOT, "actor_uuid");
            }
            let actor_type = item.take_str(ROOT, "actor_type");
            let (mut session_uuid, mut login_time, mut device) = (None, None, None);
            if let Some(at) = item.open(ROOT, "session") {
                [session_uuid, login_time, src_ip, device] =
                    item.take_strs(at, ["uuid", "login_time", "ip", "device_uuid"]);
            }
            let object_uuid = item.take_str(ROOT, "object_uuid");
            let object = User::take(item, ROOT, "object_details", &mut related);
            let parts = Parts::Audit {
                user,
                actor_type,
                session_uuid,
                login_time,
                device,
                object_uuid,
                object_type,
                object,
            };
            (class, parts)
        }
    };
    let client = Client::take(item);
    let location = Location::take(item);

    w.int_field("class_uid", class.uid);
    w.static_field("class_name", class.name);
    w.int_field("category_uid", class.category_uid);
    w.static_field("category_name", class.category_name);
    w.int_field("activity_id", class.activity_id);
    w.static_field("activity_name", class.activity_name);
    w.int_field("type_uid", class.uid * 100 + class.activity_id);
    w.key("type_name");
    w.str_parts(&[class.name, ": ", class.activity_name]);
    w.int_field("severity_id", 1);
    w.static_field("severity", "Informational");
    w.int_field("time", time.as_millisecond());
    w.map("metadata");
    w.static_field("version", OCSF_VERSION);
    w.field("uid", uuid);
    w.map("product");
    w.static_field("name", "1Password Events API");
    w.static_field("vendor_name", "1Password");
    w.close_map();
    w.static_field("log_name", kind.as_str());
    w.field("original_time", original_time);
    w.close_map();

    match &parts {
        Parts::SignIn {
            category,
            ty,
            session,
            user,
        } => {
            let ok = category.is_some_and(signin_succeeded);
            let is_mfa = ty.is_some_and(|t| {
                ["mfa_", "totp_", "duo_", "u2f_", "code_"]
                    .iter()
                    .any(|p| t.decoded().starts_with(p))
            });
            w.int_field("status_id", if ok { 1 } else { 2 });
            w.static_field("status", if ok { "Success" } else { "Failure" });
            w.field("status_code", *category);
            w.field("status_detail", *ty);
            w.key("is_mfa");
            w.bool(is_mfa);
            w.map("service");
            w.static_field("name", "1Password");
            w.close_map();
            w.map("session");
            w.field("uid", *session);
            w.close_map();
            w.map("user");
            user_fields(w, user);
            w.close_map();
        }
        Parts::ItemUsage {
            action,
            item_uuid,
            vault_uuid,
            used_version,
            ..
        } => {
            w.open_single_map_array("web_resources");
            w.field("uid", *item_uuid);
            w.static_field("type", "item");
            w.map("data");
            w.field("vault_uuid", *vault_uuid);
            if let Some(at) = *used_version {
                w.key("used_version");
                w.copy(item.tape(), at);
            }
            w.field("action", *action);
            w.close_map();
            w.close_single_map_array();
        }
        Parts::Audit {
            device,
            object_uuid,
            object_type,
            object,
            ..
        } => {
            w.map("device");
            w.field("uid", *device);
            w.close_map();
            w.map("entity");
            w.field("uid", *object_uuid);
            w.field("type", *object_type);
            w.map("data");
            user_fields(w, object);
            w.close_map();
            w.close_map();
        }
    }

    w.map("actor");
    match &parts {
        Parts::SignIn { .. } => {}
        Parts::ItemUsage { user, .. } => {
            w.map("user");
            user_fields(w, user);
            w.close_map();
        }
        Parts::Audit {
            user,
            actor_type,
            session_uuid,
            login_time,
            ..
        } => {
            w.map("user");
            user_fields(w, user);
            w.field("type", *actor_type);
            w.close_map();
            w.map("session");
            w.field("uid", *session_uuid);
            w.field("created_time_dt", *login_time);
            w.close_map();
        }
    }
    w.close_map();

    w.map("src_endpoint");
    w.field("ip", src_ip.or(client.ip));
    w.map("os");
    w.field("name", client.os_name);
    w.field("version", client.os_version);
    w.close_map();
    w.map("location");
    w.field("country", location.country);
    w.field("region", location.region);
    w.field("city", location.city);
    if let Some(lat) = location.lat {
        w.key("lat");
        w.num(lat);
    }
    if let Some(lon) = location.lon {
        w.key("long");
        w.num(lon);
    }
    w.close_map();
    w.close_map();

    w.map("unmapped");
    w.leftovers(item.tape(), ROOT);
    w.close_map();
}
