//! Golden tests: every fixture page × event type × API version × format, through both targets.
//! The msgpack output is decoded with `rmpv` (not our encoder) and must carry the same body as
//! the NDJSON line, the item's exact time as EventTime and the documented metadata.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites `fixtures/golden/` after a reviewed change.

use std::path::{Path, PathBuf};

use op_events_input::encode::Target;
use op_events_input::event::{ApiVersion, EventType, Format};
use serde_json::{Value, json};

mod oracle;

use oracle::{ACCOUNT, decode_event, encoder};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

#[test]
fn every_fixture_item_in_every_format_matches_golden_and_both_targets_agree() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for version in [ApiVersion::V1, ApiVersion::V2] {
        for kind in EventType::ALL {
            let page_path = fixtures().join(format!("responses/{version}/{kind}.json"));
            let page: Value =
                serde_json::from_str(&std::fs::read_to_string(&page_path).unwrap()).unwrap();
            let items = page["items"].as_array().expect("fixture has items");
            assert!(!items.is_empty(), "{}", page_path.display());
            for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
                let nd = encoder(format, Target::Ndjson, version);
                let mp = encoder(format, Target::Msgpack, version);
                let mut records = Vec::new();
                for item in items {
                    let text = item.to_string();
                    let mut line = Vec::new();
                    let meta = nd.encode(kind, &text, &mut line).unwrap();
                    assert_eq!(line.last(), Some(&b'\n'));
                    assert_eq!(
                        line.iter().filter(|b| **b == b'\n').count(),
                        1,
                        "one line per item"
                    );
                    let body: Value = serde_json::from_slice(&line).unwrap();

                    let mut packed = Vec::new();
                    let meta2 = mp.encode(kind, &text, &mut packed).unwrap();
                    assert_eq!(meta, meta2);
                    let (secs, nanos, metadata, mp_body) = decode_event(&packed);
                    assert_eq!(
                        mp_body, body,
                        "msgpack and NDJSON bodies differ ({format} {kind} {version})"
                    );
                    assert_eq!(
                        metadata,
                        json!({"event_type": kind.as_str(), "account_uuid": ACCOUNT,
                               "api_version": version.as_str(), "source": "1password"})
                    );
                    let ts: jiff::Timestamp = item["timestamp"].as_str().unwrap().parse().unwrap();
                    assert_eq!(meta.timestamp, Some(ts));
                    assert_eq!(i64::from(secs), ts.as_second());
                    assert_eq!(nanos as i32, ts.subsec_nanosecond());
                    assert_eq!(meta.uuid.as_deref(), item["uuid"].as_str());
                    records.push(body);
                }
                let golden = fixtures().join(format!("golden/{format}/{version}/{kind}.json"));
                let actual = serde_json::to_string_pretty(&records).unwrap() + "\n";
                if update {
                    std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
                    std::fs::write(&golden, &actual).unwrap();
                }
                let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
                    panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display())
                });
                assert_eq!(actual, expected, "{} differs", golden.display());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18);
}

#[test]
fn raw_keeps_the_item_untouched() {
    let item = r#"{"uuid":"A","timestamp":"2024-01-02T03:04:05.123456789+02:00","new_field":{"x":[1,2.5,null]},"category":"not_yet_documented"}"#;
    let mut line = Vec::new();
    encoder(Format::Raw, Target::Ndjson, ApiVersion::V2)
        .encode(EventType::SignInAttempts, item, &mut line)
        .unwrap();
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["event_type"], "signinattempts");
    assert_eq!(v["event"], serde_json::from_str::<Value>(item).unwrap());
}

/// The NDJSON record of a v2 item.
fn record(format: Format, kind: EventType, item: Value) -> Value {
    let mut line = Vec::new();
    encoder(format, Target::Ndjson, ApiVersion::V2)
        .encode(kind, &item.to_string(), &mut line)
        .unwrap();
    serde_json::from_slice(&line).unwrap()
}

fn ecs(kind: EventType, item: Value) -> Value {
    record(Format::Ecs, kind, item)
}

#[test]
fn ecs_outcome_follows_the_documented_success_rule_for_every_category() {
    for (category, outcome) in [
        ("success", "success"),
        ("firewall_reported_success", "success"),
        ("credentials_failed", "failure"),
        ("mfa_failed", "failure"),
        ("sso_failed", "failure"),
        ("modern_version_failed", "failure"),
        ("firewall_failed", "failure"),
        ("category_from_the_future", "failure"),
    ] {
        let v = ecs(
            EventType::SignInAttempts,
            json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","category":category,"type":"u2f_timout"}),
        );
        assert_eq!(v["event"]["outcome"], outcome, "{category}");
        assert_eq!(v["event"]["action"], category);
        assert_eq!(
            v["onepassword"]["type"], "u2f_timout",
            "the spec's typo passes through"
        );
    }
}

#[test]
fn ecs_keeps_unknown_fields_and_maps_locations_by_country_shape() {
    let v = ecs(
        EventType::ItemUsages,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","used_version":3,"vault_uuid":"V","item_uuid":"I",
               "user":{"uuid":"UU","name":"Ann","email":"ann@example.com","user_type":"external_user"},
               "client":{"app_name":"1Password CLI","ip_address":"192.0.2.7","os_name":"Linux","os_version":"6.1"},
               "location":{"country":"Canada","city":"Toronto","latitude":43.6,"longitude":-79.4},
               "brand_new":{"nested":true}}),
    );
    assert_eq!(
        v["event"]["action"],
        Value::Null,
        "items without `action` are still delivered"
    );
    assert_eq!(v["source"]["geo"]["country_name"], "Canada");
    assert_eq!(
        v["source"]["geo"]["location"],
        json!({"lat":43.6,"lon":-79.4})
    );
    assert_eq!(v["source"]["ip"], "192.0.2.7");
    assert_eq!(v["host"]["os"], json!({"name":"Linux","version":"6.1"}));
    assert_eq!(v["user"]["id"], "UU");
    assert_eq!(v["onepassword"]["user"]["user_type"], "external_user");
    assert_eq!(v["onepassword"]["brand_new"], json!({"nested":true}));
    assert_eq!(v["onepassword"]["used_version"], 3);
    assert_eq!(v["related"]["ip"], json!(["192.0.2.7"]));
    let iso = ecs(
        EventType::ItemUsages,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","location":{"country":"CA"}}),
    );
    assert_eq!(iso["source"]["geo"]["country_iso_code"], "CA");
}

/// Address and geo-point fields take only what their types accept: Elasticsearch refuses the
/// whole document over one bad value, so anything else stays under `onepassword.*`.
#[test]
fn ecs_address_and_position_fields_take_only_valid_values() {
    for ip in ["", "<string>", "not-an-ip", "10.0.0.300"] {
        let v = ecs(
            EventType::SignInAttempts,
            json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","client":{"ip_address":ip,"os_name":"Linux"}}),
        );
        assert_eq!(v["source"]["ip"], Value::Null, "{ip:?}");
        assert_eq!(v["related"]["ip"], Value::Null, "{ip:?}");
        assert_eq!(v["onepassword"]["client"]["ip_address"], ip);
        assert_eq!(v["host"]["os"]["name"], "Linux");
    }
    let audit = ecs(
        EventType::AuditEvents,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","session":{"ip":""},"client":{"ip_address":"2001:db8::1"}}),
    );
    assert_eq!(audit["source"]["ip"], "2001:db8::1");
    assert_eq!(audit["onepassword"]["session"]["ip"], "");
    for (location, kept) in [
        (
            json!({"country":"Canada","latitude":43.6}),
            json!({"latitude":43.6}),
        ),
        (json!({"longitude":-79.4}), json!({"longitude":-79.4})),
        (
            json!({"latitude":91.5,"longitude":10}),
            json!({"latitude":91.5,"longitude":10}),
        ),
        (
            json!({"latitude":10,"longitude":-180.5}),
            json!({"latitude":10,"longitude":-180.5}),
        ),
    ] {
        let v = ecs(
            EventType::SignInAttempts,
            json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","location":location}),
        );
        assert_eq!(v["source"]["geo"]["location"], Value::Null, "{location}");
        assert_eq!(v["onepassword"]["location"], kept, "{location}");
    }
    let edge = ecs(
        EventType::SignInAttempts,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","location":{"latitude":-90,"longitude":180}}),
    );
    assert_eq!(
        edge["source"]["geo"]["location"],
        json!({"lat":-90,"lon":180})
    );
}

/// `@timestamp` copies the item's text only in the one shape every date parser takes;
/// other valid RFC 3339 (a space for `T`, a leap second) is written from the parsed time.
#[test]
fn ecs_timestamp_is_copied_only_in_the_canonical_utc_shape() {
    for (text, written) in [
        ("2026-11-24T08:00:01.5Z", "2026-11-24T08:00:01.5Z"),
        ("2026-11-24 08:00:01Z", "2026-11-24T08:00:01Z"),
        ("2026-12-31T23:59:60Z", "2026-12-31T23:59:59Z"),
        ("2026-11-24T10:00:01+02:00", "2026-11-24T08:00:01Z"),
    ] {
        let v = ecs(
            EventType::SignInAttempts,
            json!({"uuid":"U","timestamp":text}),
        );
        assert_eq!(v["@timestamp"], written, "{text}");
    }
}

/// ECS's `iam` category takes no `access` type (`configuration` does): reading a user or group
/// is `info`.
#[test]
fn ecs_audit_reads_of_users_and_groups_are_info() {
    for (object_type, action, ty) in [
        ("user", "view", json!(["info", "user"])),
        ("group", "export", json!(["info", "group"])),
        ("vault", "view", json!(["access"])),
        ("user", "create", json!(["creation", "user"])),
    ] {
        let v = ecs(
            EventType::AuditEvents,
            json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","action":action,"object_type":object_type}),
        );
        assert_eq!(v["event"]["type"], ty, "{object_type} {action}");
    }
}

/// The actor is a related user with or without `actor_details`, as in Elastic's pipeline.
#[test]
fn ecs_audit_related_users_name_the_actor() {
    let bare = ecs(
        EventType::AuditEvents,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","actor_uuid":"A","object_type":"user","object_uuid":"O"}),
    );
    assert_eq!(bare["user"]["id"], "A");
    assert_eq!(bare["related"]["user"], json!(["A", "O"]));
    let detailed = ecs(
        EventType::AuditEvents,
        json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","actor_uuid":"A",
               "actor_details":{"uuid":"A","name":"Ann","email":"ann@example.com"}}),
    );
    assert_eq!(
        detailed["related"]["user"],
        json!(["A", "ann@example.com", "Ann"])
    );
}

fn ocsf(kind: EventType, item: Value) -> Value {
    record(Format::Ocsf, kind, item)
}

#[test]
fn ocsf_sign_ins_give_status_mfa_and_location_their_schema_meanings() {
    let signin = |item: Value| {
        let mut item = item;
        item["uuid"] = json!("U");
        item["timestamp"] = json!("2024-01-01T00:00:00Z");
        ocsf(EventType::SignInAttempts, item)
    };
    let unknown = signin(json!({"type":"credentials_ok"}));
    assert_eq!(
        (unknown["status_id"].clone(), unknown["status"].clone()),
        (json!(0), json!("Unknown"))
    );
    let failed = signin(json!({"category":"sso_failed"}));
    assert_eq!(failed["status_id"], 2);
    for (ty, mfa) in [
        ("mfa_ok", true),
        ("totp_bad", true),
        ("u2f_timout", true),
        ("mfa_missing", false),
        ("totp_disabled", false),
        ("credentials_ok", false),
    ] {
        assert_eq!(signin(json!({"type":ty}))["is_mfa"], mfa, "{ty}");
    }
    let named = signin(json!({"location":{"country":"Canada","latitude":43.6}}));
    assert_eq!(
        named["src_endpoint"]["location"],
        json!({"desc":"Canada"}),
        "a name is no ISO code, and a latitude alone no position"
    );
    assert_eq!(named["unmapped"]["location"], json!({"latitude":43.6}));
    let coded = signin(json!({"location":{"country":"CA"},"client":{"ip_address":"n/a"}}));
    assert_eq!(coded["src_endpoint"]["location"]["country"], "CA");
    assert_eq!(coded["src_endpoint"]["ip"], Value::Null);
    assert_eq!(coded["unmapped"]["client"]["ip_address"], "n/a");
}

/// Each audit class carries the attributes OCSF 1.3.0 requires of it.
#[test]
fn ocsf_audit_classes_carry_their_required_attributes() {
    let audit = |object_type: &str, action: &str, extra: Value| {
        let mut item = json!({"uuid":"U","timestamp":"2024-01-01T00:00:00Z","action":action,
            "object_type":object_type,"object_uuid":"OBJ","actor_uuid":"ACTOR","actor_type":"external_user",
            "session":{"uuid":"S","login_time":"2024-01-01T00:00:00Z","ip":"192.0.2.1"}});
        for (k, v) in extra.as_object().unwrap() {
            item[k] = v.clone();
        }
        ocsf(EventType::AuditEvents, item)
    };
    let account = audit(
        "user",
        "suspend",
        json!({"object_details":{"uuid":"OBJ","name":"Ann","email":"ann@example.com"}}),
    );
    assert_eq!(account["class_uid"], 3001);
    assert_eq!(
        account["user"],
        json!({"uid":"OBJ","name":"Ann","email_addr":"ann@example.com"})
    );
    assert_eq!(account["entity"], Value::Null);
    assert_eq!(account["actor"]["user"]["type_id"], 99);
    assert_eq!(account["actor"]["user"]["type"], "external_user");
    assert_eq!(
        account["actor"]["session"]["created_time"],
        1_704_067_200_000_i64
    );

    let member = audit(
        "gm",
        "join",
        json!({"aux_uuid":"AUX","aux_details":{"uuid":"AUX","email":"bo@example.com"},"aux_info":"A"}),
    );
    assert_eq!(member["class_uid"], 3006);
    assert_eq!(member["group"], json!({"uid":"OBJ"}));
    assert_eq!(
        member["user"],
        json!({"uid":"AUX","email_addr":"bo@example.com"})
    );
    assert_eq!(member["unmapped"]["aux_info"], "A");
    assert_eq!(
        member["unmapped"]["aux_uuid"],
        Value::Null,
        "the same uuid twice"
    );
    // The details' uuid names the user; a top-level one that disagrees is kept, not dropped.
    let disagreeing = audit(
        "gm",
        "join",
        json!({"aux_uuid":"OTHER","aux_details":{"uuid":"AUX"}}),
    );
    assert_eq!(disagreeing["user"], json!({"uid":"AUX"}));
    assert_eq!(disagreeing["unmapped"]["aux_uuid"], "OTHER");

    // src_endpoint has one address, the session's; a client's that differs stays unmapped.
    let two_addresses = audit(
        "vault",
        "create",
        json!({"client":{"ip_address":"192.0.2.9","os_name":"Linux"}}),
    );
    assert_eq!(two_addresses["src_endpoint"]["ip"], "192.0.2.1");
    assert_eq!(two_addresses["src_endpoint"]["os"]["name"], "Linux");
    assert_eq!(
        two_addresses["unmapped"]["client"],
        json!({"ip_address":"192.0.2.9"})
    );
    let one_address = audit(
        "vault",
        "create",
        json!({"client":{"ip_address":"192.0.2.1"}}),
    );
    assert_eq!(one_address["src_endpoint"]["ip"], "192.0.2.1");
    assert_eq!(one_address["unmapped"]["client"], Value::Null);

    let access = audit("uva", "grant", json!({"aux_uuid":"AUX","aux_info":"R"}));
    assert_eq!(access["class_uid"], 3005);
    assert_eq!(access["user"], json!({"uid":"AUX"}));
    assert_eq!(access["resource"], json!({"uid":"OBJ","type":"vault"}));
    assert_eq!(access["privileges"], json!(["R"]));

    let group_access = audit("gva", "revoke", json!({"aux_uuid":"GROUP","aux_info":""}));
    assert_eq!(group_access["class_uid"], 3006);
    assert_eq!(group_access["activity_id"], 2);
    assert_eq!(group_access["group"], json!({"uid":"GROUP"}));
    assert_eq!(
        group_access["resource"],
        json!({"uid":"OBJ","type":"vault"})
    );
    assert_eq!(group_access["privileges"], Value::Null);
    assert_eq!(group_access["unmapped"]["aux_info"], "");

    let entity = audit(
        "vault",
        "create",
        json!({"session":{"login_time":"yesterday","ip":""}}),
    );
    assert_eq!(entity["class_uid"], 3004);
    assert_eq!(entity["entity"], json!({"uid":"OBJ","type":"vault"}));
    assert_eq!(entity["actor"]["session"], Value::Null);
    assert_eq!(entity["src_endpoint"], Value::Null);
    assert_eq!(
        entity["unmapped"]["session"],
        json!({"login_time":"yesterday","ip":""})
    );
}

#[test]
fn items_without_a_valid_timestamp_are_delivered_with_the_collection_time() {
    let before = jiff::Timestamp::now();
    let mut out = Vec::new();
    let meta = encoder(Format::Ecs, Target::Msgpack, ApiVersion::V2)
        .encode(
            EventType::AuditEvents,
            r#"{"uuid":"X","timestamp":"not a time","action":"create"}"#,
            &mut out,
        )
        .unwrap();
    assert_eq!(meta.timestamp, None);
    let (secs, _, _, body) = decode_event(&out);
    assert!(i64::from(secs) >= before.as_second());
    assert_eq!(
        body["onepassword"]["timestamp"], "not a time",
        "the original text is kept"
    );
}

#[test]
fn unusable_items_append_nothing() {
    for target in [Target::Ndjson, Target::Msgpack] {
        let enc = encoder(Format::Ecs, target, ApiVersion::V2);
        let mut out = b"prefix".to_vec();
        for bad in ["[1]", "\"s\"", "{\"a\":", "", "nul"] {
            assert!(
                enc.encode(EventType::SignInAttempts, bad, &mut out)
                    .is_err(),
                "{bad}"
            );
        }
        assert_eq!(out, b"prefix");
    }
}
