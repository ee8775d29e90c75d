//! Golden tests: every fixture page × event type × API version × format, through both targets.
//! The msgpack output is decoded with `rmpv` (not our encoder) and must carry the same body as
//! the NDJSON line, the item's exact time as EventTime and the documented metadata.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites `fixtures/golden/` after a reviewed change.

use std::path::{Path, PathBuf};

use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use serde_json::{Value, json};

const ACCOUNT: &str = "GOLDENACCOUNTUUID000000000";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn encoder(format: Format, target: Target, version: ApiVersion) -> Encoder {
    let ctx = EncodeContext {
        account_uuid: ACCOUNT.into(),
        api_version: version,
    };
    Encoder::new(format, target, ctx)
}

/// msgpack → JSON, for comparison with the NDJSON body. Ext values are not expected in bodies.
fn to_json(v: &rmpv::Value) -> Value {
    match v {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => i.as_i64().map_or_else(|| json!(i.as_u64()), |n| json!(n)),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => json!(s.as_str().expect("utf-8 string")),
        rmpv::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        rmpv::Value::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string key").to_owned(), to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected msgpack value in a body: {other:?}"),
    }
}

/// Decodes one Fluent Bit event and checks its framing; returns (seconds, nanos, metadata, body).
fn decode_event(mut bytes: &[u8]) -> (u32, u32, Value, Value) {
    let v = rmpv::decode::read_value(&mut bytes).expect("valid msgpack");
    assert!(bytes.is_empty(), "exactly one event per item");
    let outer = v.as_array().expect("event is an array");
    assert_eq!(outer.len(), 2);
    let header = outer[0].as_array().expect("[time, metadata]");
    assert_eq!(header.len(), 2);
    let rmpv::Value::Ext(0, time) = &header[0] else {
        panic!("EventTime must be ext type 0, got {:?}", header[0]);
    };
    assert_eq!(time.len(), 8);
    let secs = u32::from_be_bytes(time[..4].try_into().unwrap());
    let nanos = u32::from_be_bytes(time[4..].try_into().unwrap());
    (secs, nanos, to_json(&header[1]), to_json(&outer[1]))
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

fn ecs(kind: EventType, item: Value) -> Value {
    let mut line = Vec::new();
    encoder(Format::Ecs, Target::Ndjson, ApiVersion::V2)
        .encode(kind, &item.to_string(), &mut line)
        .unwrap();
    serde_json::from_slice(&line).unwrap()
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
