//! Hostile items: arbitrary JSON (wrong types for known fields, deep nesting, long strings,
//! unknown fields) never panics, and the output is always exactly one valid event or nothing.

use op_events_input::encode::{EncodeContext, Encoder, Target};
use op_events_input::event::{ApiVersion, EventType, Format};
use proptest::prelude::*;
use serde_json::{Map, Value};

const KNOWN: &[&str] = &[
    "uuid",
    "timestamp",
    "category",
    "type",
    "country",
    "details",
    "target_user",
    "client",
    "location",
    "session_uuid",
    "user",
    "action",
    "used_version",
    "vault_uuid",
    "item_uuid",
    "actor_uuid",
    "actor_details",
    "object_type",
    "object_uuid",
    "object_details",
    "aux_id",
    "aux_uuid",
    "aux_details",
    "aux_info",
    "session",
    "account_uuid",
    "ip_address",
    "latitude",
    "longitude",
    "name",
    "email",
    "os_name",
    "ip",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,18}(Z|[+-][0-9]{2}:[0-9]{2})".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(KNOWN)
                        .prop_map(String::from)
                        .boxed()
                        .prop_union(".{0,12}".boxed()),
                    inner
                ),
                0..10
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn encoders() -> Vec<(Target, Encoder)> {
    let mut out = Vec::new();
    for format in [Format::Ecs, Format::Ocsf, Format::Raw] {
        for target in [Target::Ndjson, Target::Msgpack] {
            let ctx = EncodeContext {
                account_uuid: "ACCT".into(),
                api_version: ApiVersion::V2,
            };
            out.push((target, Encoder::new(format, target, ctx)));
        }
    }
    out
}

fn check(text: &str) {
    for (target, enc) in encoders() {
        for kind in EventType::ALL {
            let mut out = Vec::new();
            match enc.encode(kind, text, &mut out) {
                Ok(_) if target == Target::Ndjson => {
                    let line = std::str::from_utf8(&out).unwrap();
                    assert!(line.ends_with('\n'));
                    assert_eq!(line.matches('\n').count(), 1);
                    serde_json::from_str::<Value>(line).unwrap();
                }
                Ok(_) => {
                    let mut rest = out.as_slice();
                    rmpv::decode::read_value(&mut rest).unwrap();
                    assert!(rest.is_empty());
                }
                Err(_) => assert!(out.is_empty()),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_and_yields_one_valid_event_or_nothing(v in json_value()) {
        check(&v.to_string());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_and_huge_strings_are_bounded() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    check(&format!("{{\"uuid\":\"x\",\"details\":{deep}}}"));
    let huge = "é".repeat(4 << 20);
    check(&format!(
        "{{\"uuid\":\"{huge}\",\"timestamp\":\"2024-01-01T00:00:00Z\"}}"
    ));
}
