//! Hostile items: arbitrary JSON (wrong types for known fields, deep nesting, long strings,
//! unknown fields), arbitrary bytes, and the fixtures' real items with arbitrary values put
//! anywhere in them, spelled in any way JSON allows. Each becomes exactly one event or nothing,
//! as `oracle` checks against serde_json: no value lost, the same record in both targets.
//! `PROPTEST_CASES=50000` runs more than the default 256 cases.

mod oracle;

use op_events_input::event::EventType;
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

/// A member name: one the normalizers look for, or any other.
fn name() -> impl Strategy<Value = String> {
    prop::sample::select(KNOWN)
        .prop_map(String::from)
        .boxed()
        .prop_union(".{0,12}".boxed())
}

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
            prop::collection::vec((name(), inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The fixtures' items, of every type and version: real shapes for the mutations below.
fn fixture_items() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/responses");
    let mut items = Vec::new();
    for version in ["v1", "v2"] {
        for kind in EventType::ALL {
            let page = std::fs::read_to_string(dir.join(format!("{version}/{kind}.json"))).unwrap();
            let page: Value = serde_json::from_str(&page).unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
        }
    }
    items
}

/// Every value's place in `v` (members and elements, at any depth), in document order.
fn places(v: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    let children: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => return,
    };
    for (i, child) in children.into_iter().enumerate() {
        at.push(i);
        out.push(at.clone());
        places(child, at, out);
        at.pop();
    }
}

fn place_mut<'v>(v: &'v mut Value, place: &[usize]) -> &'v mut Value {
    place.iter().fold(v, |v, &i| match v {
        Value::Array(a) => &mut a[i],
        Value::Object(m) => m.values_mut().nth(i).unwrap(),
        _ => unreachable!("places only name children"),
    })
}

/// How a mutated item is written: JSON allows all of these, and the API could send any.
#[derive(Clone, Copy, Debug)]
struct Spelling {
    /// `s` written as `\u0073` in names and strings (not a letter of hex digits or escapes, so
    /// the rewrite leaves serde_json's own escapes whole).
    escape_s: bool,
    /// Whitespace around every token.
    spaced: bool,
    /// The root member at this position first appears with another value, which the second
    /// occurrence replaces.
    repeated: Option<usize>,
}

fn write_json(v: &Value, spelling: Spelling, root: bool, out: &mut String) {
    let gap = if spelling.spaced { " \n\t" } else { "" };
    let string = |s: &str, out: &mut String| {
        let text = Value::from(s).to_string();
        out.push_str(&if spelling.escape_s {
            text.replace('s', "\\u0073")
        } else {
            text
        });
    };
    match v {
        Value::String(s) => string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(gap);
                write_json(v, spelling, false, out);
                out.push_str(gap);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let repeated = spelling
                .repeated
                .filter(|_| root)
                .and_then(|i| m.iter().nth(i % m.len().max(1)));
            let members = repeated
                .map(|(k, _)| (k, &Value::Bool(false)))
                .into_iter()
                .chain(m);
            for (i, (k, v)) in members.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(gap);
                string(k, out);
                out.push_str(gap);
                out.push(':');
                out.push_str(gap);
                write_json(v, spelling, false, out);
                out.push_str(gap);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A fixture item with up to four values (anywhere, whole subtrees included) replaced by
/// arbitrary ones and possibly a member added (known to some normalizer or not), spelled in one
/// of several ways.
fn mutated_item() -> impl Strategy<Value = String> {
    let items = fixture_items();
    (
        prop::sample::select(items),
        prop::collection::vec((any::<prop::sample::Index>(), json_value()), 0..4),
        proptest::option::of((name(), json_value())),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(0usize..40),
        ),
    )
        .prop_map(
            |(mut item, replacements, added, (escape_s, spaced, repeated))| {
                for (which, value) in replacements {
                    let mut all = Vec::new();
                    places(&item, &mut Vec::new(), &mut all);
                    if !all.is_empty() {
                        *place_mut(&mut item, &all[which.index(all.len())]) = value;
                    }
                }
                if let (Some((name, value)), Some(root)) = (added, item.as_object_mut()) {
                    root.insert(name, value);
                }
                let spelling = Spelling {
                    escape_s,
                    spaced,
                    repeated,
                };
                let mut text = String::new();
                write_json(&item, spelling, true, &mut text);
                text
            },
        )
}

/// A page of mutated fixture items and arbitrary values, with its envelope's members in any
/// order and whitespace around its items or not.
fn page() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        3 => mutated_item(),
        1 => json_value().prop_map(|v| v.to_string()),
    ];
    (prop::collection::vec(item, 0..6), any::<bool>(), 0usize..3).prop_map(
        |(items, spaced, first)| {
            let gap = if spaced { " \n" } else { "" };
            let items = items.join(&format!("{gap},{gap}"));
            let mut members = [
                r#""cursor":"c""#.to_owned(),
                r#""has_more":true"#.to_owned(),
                format!(r#""items":[{gap}{items}{gap}]"#),
            ];
            members.rotate_left(first);
            format!("{{{}}}", members.join(","))
        },
    )
}

proptest! {
    #[test]
    fn items_in_a_page_are_the_events_they_are_alone(page in page()) {
        oracle::check_page(&oracle::encoders(), &page);
    }

    #[test]
    fn arbitrary_json_is_kept_whole_and_both_targets_agree(v in json_value()) {
        oracle::check_item(&oracle::encoders(), &v.to_string());
    }

    #[test]
    fn real_items_with_arbitrary_values_are_kept_whole_and_both_targets_agree(text in mutated_item()) {
        oracle::check_item(&oracle::encoders(), &text);
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_kept_whole(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        oracle::check_item(&oracle::encoders(), &String::from_utf8_lossy(&bytes));
    }
}

/// serde_json's `Value` takes this name for a token of its own (with the `raw_value` feature);
/// to the API it is a name like any other, kept in every format, alone and in a page. The first
/// item is what the `item` fuzz target found the oracle refusing.
#[test]
fn a_name_serde_json_reserves_is_an_ordinary_name() {
    let encoders = oracle::encoders();
    for item in [
        r#"{"$serde_json::private::RawValue"
:"nuhlJBJz"}"#,
        r#"{"uuid":"u","details":{"$serde_json::private::RawValue":1,"a":[true]}}"#,
    ] {
        oracle::check_item(&encoders, item);
        oracle::check_page(&encoders, &format!(r#"{{"items":[{item}]}}"#));
    }
}

#[test]
fn deep_nesting_and_huge_strings_are_bounded() {
    let encoders = oracle::encoders();
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let check = |text: String| oracle::check_item(&encoders, &text);
    check(format!("{{\"uuid\":\"x\",\"details\":{deep}}}"));
    let huge = "é".repeat(4 << 20);
    check(format!(
        "{{\"uuid\":\"{huge}\",\"timestamp\":\"2024-01-01T00:00:00Z\"}}"
    ));
    // Deeper than a record nests: the deep part is its JSON text, escapes and all.
    let deep = "{\"a\":[".repeat(12) + r#""q\"b\\s\u0001é\/""# + &"]}".repeat(12);
    check(format!(
        "{{\"uuid\":\"x\",\"details\":{deep},\"aux_info\":{deep}}}"
    ));
    // Around the deepest nesting either parser takes, in a page and alone.
    for depth in 120..132 {
        let item = format!("{{\"details\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        oracle::check_page(
            &encoders,
            &format!("{{\"items\":[{item},{{\"uuid\":\"u\"}}]}}"),
        );
    }
}
