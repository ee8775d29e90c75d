//! Open Cybersecurity Schema Framework. Classes per the contract notes (§7): sign-ins are
//! Authentication, item usages Web Resources Activity, audit events one of the IAM classes or
//! Entity Management by object type. What has no OCSF attribute goes to `unmapped`.

use jiff::Timestamp;

use super::common::{Client, Location, Related, User, is_ip, is_iso_country, signin_succeeded};
use super::item::{Item, ROOT, parse_timestamp};
use crate::encode::writer::{Prewritten, Syntax, Writer};
use crate::event::EventType;
use crate::json::{Node, Str};

pub const OCSF_VERSION: &str = "1.3.0";

/// An OCSF class and the activities op-events maps to it, `Other` (99) last.
struct Class {
    uid: i64,
    name: &'static str,
    category: (i64, &'static str),
    activities: &'static [(i64, &'static str)],
}

const IAM: (i64, &str) = (3, "Identity & Access Management");
const APPLICATION: (i64, &str) = (6, "Application Activity");
const OTHER: (i64, &str) = (99, "Other");

const AUTHENTICATION: usize = 0;
const WEB_RESOURCES_ACTIVITY: usize = 1;
const ACCOUNT_CHANGE: usize = 2;
const GROUP_MANAGEMENT: usize = 3;
const USER_ACCESS_MANAGEMENT: usize = 4;
const ENTITY_MANAGEMENT: usize = 5;

/// Every class a record can have, indexed by the constants above.
const CLASSES: [Class; 6] = [
    Class {
        uid: 3002,
        name: "Authentication",
        category: IAM,
        activities: &[(1, "Logon")],
    },
    Class {
        uid: 6001,
        name: "Web Resources Activity",
        category: APPLICATION,
        activities: &[
            (1, "Create"),
            (2, "Read"),
            (3, "Update"),
            (7, "Export"),
            (8, "Share"),
            OTHER,
        ],
    },
    Class {
        uid: 3001,
        name: "Account Change",
        category: IAM,
        activities: &[
            (1, "Create"),
            (2, "Enable"),
            (3, "Password Change"),
            (4, "Password Reset"),
            (5, "Disable"),
            (6, "Delete"),
            (10, "MFA Factor Enable"),
            (11, "MFA Factor Disable"),
            OTHER,
        ],
    },
    Class {
        uid: 3006,
        name: "Group Management",
        category: IAM,
        activities: &[
            (1, "Assign Privileges"),
            (2, "Revoke Privileges"),
            (3, "Add User"),
            (4, "Remove User"),
            (5, "Delete"),
            (6, "Create"),
            OTHER,
        ],
    },
    Class {
        uid: 3005,
        name: "User Access Management",
        category: IAM,
        activities: &[(1, "Assign Privileges"), (2, "Revoke Privileges"), OTHER],
    },
    Class {
        uid: 3004,
        name: "Entity Management",
        category: IAM,
        activities: &[
            (1, "Create"),
            (2, "Read"),
            (3, "Update"),
            (4, "Delete"),
            (8, "Enable"),
            (9, "Disable"),
            (10, "Activate"),
            (12, "Suspend"),
            OTHER,
        ],
    },
];

/// A record's class and activity: indices into [`CLASSES`] and that class's activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Activity {
    class: usize,
    activity: usize,
}

impl Activity {
    /// Activity `id` of the class, which lists it (`Other` included).
    fn new(class: usize, id: i64) -> Self {
        let activities = CLASSES[class].activities;
        let activity = activities.iter().position(|a| a.0 == id);
        debug_assert!(activity.is_some(), "class {class} lists no activity {id}");
        Self {
            class,
            activity: activity.unwrap_or(activities.len() - 1),
        }
    }
}

fn item_usage_activity(action: Option<&str>) -> Activity {
    let id = match action {
        Some("server-create") => 1,
        Some("reveal" | "fill" | "secure-copy" | "server-fetch" | "select-sso-provider") => 2,
        Some("enter-item-edit-mode" | "server-update") => 3,
        Some("export") => 7,
        Some("share") => 8,
        _ => OTHER.0,
    };
    Activity::new(WEB_RESOURCES_ACTIVITY, id)
}

/// Audit events: the object type picks the class, the action code the activity.
fn audit_activity(object_type: &str, action: &str) -> Activity {
    match object_type {
        "user" | "invite" | "miguser" | "sa" => {
            let id = match action {
                "create" | "provsn" | "join" => 1,
                "activate" | "reactive" | "verify" => 2,
                "changemp" => 3,
                "beginr" | "completr" | "cancelr" => 4,
                "suspend" => 5,
                "delete" | "purge" => 6,
                "enblmfa" => 10,
                "disblmfa" => 11,
                _ => OTHER.0,
            };
            Activity::new(ACCOUNT_CHANGE, id)
        }
        "group" | "gm" | "gva" => {
            let id = match action {
                "grant" => 1,
                "revoke" => 2,
                "join" => 3,
                "leave" => 4,
                "delete" | "purge" => 5,
                "create" => 6,
                _ => OTHER.0,
            };
            Activity::new(GROUP_MANAGEMENT, id)
        }
        "uva" => {
            let id = match action {
                "grant" => 1,
                "revoke" => 2,
                _ => OTHER.0,
            };
            Activity::new(USER_ACCESS_MANAGEMENT, id)
        }
        _ => {
            let id = match action {
                "create" => 1,
                "view" | "export" => 2,
                "update" | "updatea" | "updatfw" | "updatmfa" | "updatduo" | "patch"
                | "replace" | "trename" | "changenm" | "changela" | "changeks" | "changesk"
                | "role" => 3,
                "delete" | "purge" => 4,
                "enblsso" | "enblduo" | "enblmfa" => 8,
                "disblsso" | "disblduo" | "disblmfa" => 9,
                "activate" | "reactive" => 10,
                "suspend" => 12,
                _ => OTHER.0,
            };
            Activity::new(ENTITY_MANAGEMENT, id)
        }
    }
}

/// The members that depend only on the class and activity: classification and severity.
fn class_members<S: Syntax>(w: &mut Writer<S>, class: &Class, activity: (i64, &str)) {
    w.int_field("class_uid", class.uid);
    w.static_field("class_name", class.name);
    w.int_field("category_uid", class.category.0);
    w.static_field("category_name", class.category.1);
    w.int_field("activity_id", activity.0);
    w.static_field("activity_name", activity.1);
    w.int_field("type_uid", class.uid * 100 + activity.0);
    w.key("type_name");
    w.str_parts(&[class.name, ": ", activity.1]);
    w.int_field("severity_id", 1);
    w.static_field("severity", "Informational");
}

/// `metadata` members that depend only on the event type.
fn metadata_members<S: Syntax>(w: &mut Writer<S>, kind: EventType) {
    w.static_field("version", OCSF_VERSION);
    w.map("product");
    w.static_field("name", "1Password Events API");
    w.static_field("vendor_name", "1Password");
    w.close_map();
    w.static_field("log_name", kind.as_str());
}

/// What is the same in every record of a class and activity, or of an event type, written
/// once for one target and copied into each record as it is.
pub struct Constants {
    /// [`class_members`], by class and activity.
    classes: Vec<Vec<Prewritten>>,
    /// [`metadata_members`], by event type.
    metadata: [Prewritten; 3],
}

impl Constants {
    pub fn new<S: Syntax>() -> Self {
        let classes = CLASSES.iter().map(|class| {
            class
                .activities
                .iter()
                .map(|&a| Prewritten::new::<S>(|w| class_members(w, class, a)))
                .collect()
        });
        Self {
            classes: classes.collect(),
            metadata: EventType::ALL
                .map(|kind| Prewritten::new::<S>(|w| metadata_members(w, kind))),
        }
    }
}

/// `{uid, name, email_addr}` of a User object.
fn user_fields<S: Syntax>(w: &mut Writer<S>, u: &User) {
    w.field("uid", u.uuid);
    w.field("name", u.name);
    w.field("email_addr", u.email);
}

/// What an audit event acted on, in the attributes its class requires.
enum Target<'a> {
    /// Account Change: the user account.
    Account(User<'a>),
    /// Group Management: the group, the user joining or leaving it (`gm`), or the vault
    /// access given to or taken from it (`gva`).
    Group {
        group: Option<Str<'a>>,
        user: User<'a>,
        access: Access<'a>,
    },
    /// User Access Management (`uva`): the user and the vault access given or taken.
    UserAccess { user: User<'a>, access: Access<'a> },
    /// Entity Management: any other object.
    Entity {
        uid: Option<Str<'a>>,
        ty: Option<Str<'a>>,
    },
}

/// A vault access change: the vault, and the API's undocumented access code (`aux_info`).
#[derive(Default)]
struct Access<'a> {
    vault: Option<Str<'a>>,
    privileges: Option<Str<'a>>,
}

impl<'a> Target<'a> {
    /// `object_type` is the item's, which chose `class`.
    fn take(
        item: &mut Item<'_, 'a>,
        class: usize,
        object_type: Option<Str>,
        related: &mut Related<'a>,
    ) -> Self {
        // The user an event is about: `object_*` for user objects, `aux_*` for group members
        // and vault access.
        let mut user = |item: &mut Item<'_, 'a>, details: &str, uuid: &str| {
            let mut user = User::take(item, ROOT, details, related);
            // The details' own uuid wins; a top-level one that differs from it stays unmapped.
            match user.uuid {
                None => user.uuid = item.take_str(ROOT, uuid),
                Some(known) => {
                    item.take_str_if(ROOT, uuid, |s| s.same(&known));
                }
            }
            user
        };
        let access = |item: &mut Item<'_, 'a>| Access {
            vault: item.take_str(ROOT, "object_uuid"),
            privileges: item.take_str_if(ROOT, "aux_info", |s| !s.is_empty()),
        };
        match class {
            ACCOUNT_CHANGE => Self::Account(user(item, "object_details", "object_uuid")),
            GROUP_MANAGEMENT if object_type.is_some_and(|t| t.eq_str("gva")) => Self::Group {
                group: item.take_str(ROOT, "aux_uuid"),
                user: User::default(),
                access: access(item),
            },
            GROUP_MANAGEMENT => Self::Group {
                group: item.take_str(ROOT, "object_uuid"),
                user: user(item, "aux_details", "aux_uuid"),
                access: Access::default(),
            },
            USER_ACCESS_MANAGEMENT => Self::UserAccess {
                user: user(item, "aux_details", "aux_uuid"),
                access: access(item),
            },
            _ => Self::Entity {
                uid: item.take_str(ROOT, "object_uuid"),
                ty: item.take_str(ROOT, "object_type"),
            },
        }
    }

    fn write<S: Syntax>(&self, w: &mut Writer<S>) {
        let user = |w: &mut Writer<S>, u: &User| {
            w.map("user");
            user_fields(w, u);
            w.close_map();
        };
        let access = |w: &mut Writer<S>, a: &Access| {
            if a.vault.is_some() {
                w.map("resource");
                w.field("uid", a.vault);
                w.static_field("type", "vault");
                w.close_map();
            }
            w.input_strs("privileges", a.privileges.as_slice());
        };
        match self {
            Self::Account(u) => user(w, u),
            Self::Group {
                group,
                user: u,
                access: a,
            } => {
                w.map("group");
                w.field("uid", *group);
                w.close_map();
                user(w, u);
                access(w, a);
            }
            Self::UserAccess { user: u, access: a } => {
                user(w, u);
                access(w, a);
            }
            Self::Entity { uid, ty } => {
                w.map("entity");
                w.field("uid", *uid);
                w.field("type", *ty);
                w.close_map();
            }
        }
    }
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
        login_time: Option<(Str<'a>, Timestamp)>,
        device: Option<Str<'a>>,
        target: Target<'a>,
    },
}

pub fn write<S: Syntax>(
    constants: &Constants,
    kind: EventType,
    item: &mut Item,
    time: Timestamp,
    w: &mut Writer<S>,
) {
    let original_time = item
        .timestamp
        .and_then(|_| item.take_str(ROOT, "timestamp"));
    let uuid = item.take_str(ROOT, "uuid");
    // OCSF has no related lists; users are still taken the same way as in ECS.
    let mut related = Related::default();
    let mut src_ip = None;
    let (activity, parts) = match kind {
        EventType::SignInAttempts => {
            let category = item.take_str(ROOT, "category");
            let ty = item.take_str(ROOT, "type");
            let session = item.take_str(ROOT, "session_uuid");
            let user = User::take(item, ROOT, "target_user", &mut related);
            (
                Activity::new(AUTHENTICATION, 1),
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
            let activity = item_usage_activity(action.as_ref().map(Str::decoded).as_deref());
            let user = User::take(item, ROOT, "user", &mut related);
            let item_uuid = item.take_str(ROOT, "item_uuid");
            let vault_uuid = item.take_str(ROOT, "vault_uuid");
            let used_version = item.take(ROOT, "used_version");
            (
                activity,
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
            let object_type = item.get_str(ROOT, "object_type");
            let activity = audit_activity(
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
                // A login time that is no time, or an address that is no address, stays
                // with the leftovers.
                let names = ["uuid", "login_time", "ip", "device_uuid"];
                let mut login = None;
                let text;
                [session_uuid, text, src_ip, device] = item.take_each(
                    at,
                    names,
                    |i, node| match node {
                        Node::Str(s) if i == 2 && !is_ip(s) => None,
                        Node::Str(s) => Some(s),
                        _ => None,
                    },
                    |found| {
                        login = found[1].and_then(|s| parse_timestamp(&s.decoded()));
                        if login.is_none() {
                            found[1] = None;
                        }
                    },
                );
                login_time = text.zip(login);
            }
            let target = Target::take(item, activity.class, object_type, &mut related);
            let parts = Parts::Audit {
                user,
                actor_type,
                session_uuid,
                login_time,
                device,
                target,
            };
            (activity, parts)
        }
    };
    // src_endpoint has one address: the session's, when there is one; a client address that
    // differs from it stays unmapped.
    let client = Client::take(item, |ip| src_ip.is_none_or(|session| session.same(&ip)));
    let location = Location::take(item);

    w.prewritten(&constants.classes[activity.class][activity.activity]);
    w.int_field("time", time.as_millisecond());
    w.map("metadata");
    w.prewritten(&constants.metadata[kind as usize]);
    w.field("uid", uuid);
    w.field("original_time", original_time);
    w.close_map();

    match &parts {
        Parts::SignIn {
            category,
            ty,
            session,
            user,
        } => {
            let (status_id, status) = match category {
                Some(c) if signin_succeeded(*c) => (1, "Success"),
                Some(_) => (2, "Failure"),
                None => (0, "Unknown"),
            };
            // A second factor was presented (right or wrong), not missing or turned off.
            let is_mfa = ty.is_some_and(|t| {
                let t = t.decoded();
                ["mfa_", "totp_", "duo_", "u2f_", "code_"]
                    .iter()
                    .any(|p| t.starts_with(p))
                    && !t.ends_with("_missing")
                    && !t.ends_with("_disabled")
            });
            w.int_field("status_id", status_id);
            w.static_field("status", status);
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
        Parts::Audit { device, target, .. } => {
            w.map("device");
            w.field("uid", *device);
            w.close_map();
            target.write(w);
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
            if let Some(actor_type) = *actor_type {
                // OCSF's user types are User, Admin and System; an MSP's `external_user`
                // is Other, named in the API's words.
                if actor_type.eq_str("user") {
                    w.int_field("type_id", 1);
                    w.static_field("type", "User");
                } else {
                    w.int_field("type_id", 99);
                    w.field("type", Some(actor_type));
                }
            }
            w.close_map();
            w.map("session");
            w.field("uid", *session_uuid);
            if let Some((text, time)) = *login_time {
                w.int_field("created_time", time.as_millisecond());
                w.field("created_time_dt", Some(text));
            }
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
    // `country` is an ISO 3166-1 code; the API sometimes sends a name instead.
    match location.country {
        Some(c) if is_iso_country(c) => w.field("country", Some(c)),
        country => w.field("desc", country),
    }
    w.field("region", location.region);
    w.field("city", location.city);
    if let (Some(lat), Some(lon)) = (location.lat, location.lon) {
        w.key("lat");
        w.num(lat);
        w.key("long");
        w.num(lon);
    }
    w.close_map();
    w.close_map();

    w.map("unmapped");
    w.leftovers(item.tape(), ROOT);
    w.close_map();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (class uid, activity id, activity name)
    fn named(a: Activity) -> (i64, i64, &'static str) {
        let class = &CLASSES[a.class];
        let (id, name) = class.activities[a.activity];
        (class.uid, id, name)
    }

    /// Every action code the mappings name gives an activity its class lists (checked by
    /// `Activity::new` in debug builds), and a sample of them the documented one.
    #[test]
    fn every_mapped_action_has_its_class_activity() {
        let audit = "create provsn join activate reactive verify changemp beginr completr cancelr
            suspend delete purge enblmfa disblmfa grant revoke leave view export update
            updatea updatfw updatmfa updatduo patch replace trename changenm changela
            changeks changesk role enblsso enblduo disblsso disblduo unknown-code";
        for object_type in [
            "user", "invite", "miguser", "sa", "group", "gm", "uva", "gva", "vault",
        ] {
            for action in audit.split_whitespace() {
                audit_activity(object_type, action);
            }
        }
        let usage = "server-create reveal fill secure-copy server-fetch
            select-sso-provider enter-item-edit-mode server-update export share";
        for action in usage.split_whitespace() {
            assert_ne!(
                named(item_usage_activity(Some(action))).1,
                OTHER.0,
                "{action}"
            );
        }
        assert_eq!(named(item_usage_activity(None)), (6001, 99, "Other"));
        assert_eq!(named(item_usage_activity(Some("fill"))), (6001, 2, "Read"));
        for (object_type, action, expected) in [
            ("gm", "join", (3006, 3, "Add User")),
            ("user", "join", (3001, 1, "Create")),
            ("user", "suspend", (3001, 5, "Disable")),
            ("uva", "revoke", (3005, 2, "Revoke Privileges")),
            ("gva", "grant", (3006, 1, "Assign Privileges")),
            ("vault", "suspend", (3004, 12, "Suspend")),
            ("vault", "newcode", (3004, 99, "Other")),
        ] {
            let got = named(audit_activity(object_type, action));
            assert_eq!(got, expected, "{object_type} {action}");
        }
    }
}
