//! Contract tests: fixtures and every generated response, fetched over HTTP, validate against
//! `fixtures/schema/events-api.schema.json`.

mod common;

use common::schema::{Schema, Violation, is_rfc3339};
use common::{ALL, get, post};
use op_events_mock::{Fault, FaultKind, MockConfig};
use serde_json::Value;

/// Undocumented enum values the mock README says it injects; nothing else may break an enum.
const DELIBERATE_UNKNOWNS: [&str; 5] = [
    "device_failed",
    "passkey_bad",
    "autofill-passkey",
    "rotatekey",
    "passkeycred",
];

fn def_for(file: &str, version: &str) -> String {
    let stem = file.trim_end_matches(".json");
    let base = stem.split('-').next().unwrap();
    match base {
        "introspect" => format!("introspect_{version}"),
        "signinattempts" => {
            format!("signinattempt_response_{version}").replace("attempt_", "attempts_")
        }
        "itemusages" => format!("itemusages_response_{version}"),
        "auditevents" => format!("auditevents_response_{version}"),
        other => panic!("unmapped fixture {other}"),
    }
}

#[test]
fn rfc3339_checker_accepts_and_rejects() {
    assert!(is_rfc3339("2024-05-14T09:12:44.827288935Z"));
    assert!(is_rfc3339("2024-05-14T11:03:17.412-03:00"));
    assert!(!is_rfc3339("2024-05-14 11:03:17Z"));
    assert!(!is_rfc3339("2024-05-14T11:03:17"));
    assert!(!is_rfc3339("2024-13-14T11:03:17Z"));
}

#[test]
fn every_fixture_matches_the_schema() {
    let schema = Schema::load();
    let dir = common::fixtures_dir();
    let mut checked = 0;
    for version in ["v1", "v2"] {
        for entry in std::fs::read_dir(dir.join("responses").join(version)).unwrap() {
            let path = entry.unwrap().path();
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            schema.assert_valid(
                &def_for(path.file_name().unwrap().to_str().unwrap(), version),
                &doc,
            );
            checked += 1;
        }
        for entry in std::fs::read_dir(dir.join("errors").join(version)).unwrap() {
            let doc: Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            schema.assert_valid(&format!("error_{version}"), &doc);
            checked += 1;
        }
    }
    for entry in std::fs::read_dir(dir.join("requests")).unwrap() {
        let path = entry.unwrap().path();
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let def = if doc.get("cursor").is_some() {
            "cursor_request"
        } else {
            "reset_cursor"
        };
        schema.assert_valid(def, &doc);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn the_schema_rejects_what_the_contract_forbids() {
    let schema = Schema::load();
    let dir = common::fixtures_dir();
    let v2: Value =
        serde_json::from_slice(&std::fs::read(dir.join("responses/v2/auditevents.json")).unwrap())
            .unwrap();
    assert!(
        !schema.check("auditevents_response_v1", &v2).is_empty(),
        "MSP fields must not pass as v1"
    );
    let mut broken = v2.clone();
    broken["items"][0]["aux_id"] = Value::String("12".into());
    assert!(!schema.check("auditevents_response_v2", &broken).is_empty());
    let mut broken = v2;
    broken["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("session");
    assert!(!schema.check("auditevents_response_v2", &broken).is_empty());
}

/// Enum violations must be deliberate unknowns; anything else fails. Returns how many.
fn check_page(schema: &Schema, def: &str, page: &Value) -> usize {
    let mut unknown = 0;
    for v in schema.check(def, page) {
        match v {
            Violation::Enum {
                value: Value::String(s),
                ..
            } if DELIBERATE_UNKNOWNS.contains(&s.as_str()) => unknown += 1,
            other => panic!("{def}: {other:?}"),
        }
    }
    unknown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_page_matches_the_schema() {
    let mock = common::small(3000);
    let token = mock.token("acme", &ALL);
    let schema = Schema::load();
    let mut unknowns = 0;
    let (mut precisions, mut offsets) = (std::collections::BTreeSet::new(), 0);
    for version in ["v1", "v2"] {
        for kind in ALL {
            let path = format!("/api/{version}/{kind}");
            let mut body = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#.to_owned();
            let mut seen = 0;
            loop {
                let r = post(&mock, &path, &token, &body).await;
                assert_eq!(r.status, 200);
                unknowns += check_page(&schema, &format!("{kind}_response_{version}"), &r.body);
                for item in r.body["items"].as_array().unwrap() {
                    let ts = item["timestamp"].as_str().unwrap();
                    precisions.insert(ts.find('.').map_or(0, |dot| {
                        ts[dot + 1..].bytes().take_while(u8::is_ascii_digit).count()
                    }));
                    offsets += usize::from(!ts.ends_with('Z'));
                    seen += 1;
                }
                if r.body["has_more"] == false {
                    break;
                }
                body = serde_json::json!({"cursor": r.body["cursor"]}).to_string();
            }
            // v1 has no `expire`/`unlink` audit actions: those events exist on v2 only.
            let expected = mock
                .events("acme", kind)
                .iter()
                .filter(|e| {
                    version == "v2" || !matches!(e["action"].as_str(), Some("expire" | "unlink"))
                })
                .count();
            assert!(expected > 2900, "{expected}");
            assert_eq!(seen, expected, "{path}");
        }
    }
    // ~0.5% of 18,000 served events carry an undocumented value in some enum field.
    assert!(
        (20..400).contains(&unknowns),
        "{unknowns} unknown enum values"
    );
    assert_eq!(precisions, [0, 3, 9].into(), "seconds, millis and nanos");
    assert!(offsets > 0, "some timestamps carry an offset");

    for (path, def) in [
        ("/api/auth/introspect", "introspect_v1"),
        ("/api/v2/auth/introspect", "introspect_v2"),
    ] {
        let r = get(&mock, path, &token).await;
        assert_eq!(r.status, 200);
        schema.assert_valid(def, &r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body_matches_the_schema() {
    let mock = common::start(MockConfig {
        events_per_type: 10,
        rate_limit_per_minute: 1,
        ..MockConfig::default()
    });
    let schema = Schema::load();
    let token = mock.token("acme", &ALL);
    let other = mock.token("globex", &ALL);
    for version in ["v1", "v2"] {
        let def = format!("error_{version}");
        let path = format!("/api/{version}/itemusages");
        let intro = if version == "v1" {
            "/api/auth/introspect".to_owned()
        } else {
            "/api/v2/auth/introspect".to_owned()
        };
        let mut statuses = Vec::new();
        let checks = [
            post(&mock, &path, "garbage", "{}").await,
            get(&mock, &intro, "garbage").await,
        ];
        for r in checks {
            statuses.push(r.status);
            schema.assert_valid(&def, &r.body);
        }
        mock.advance(std::time::Duration::from_secs(61));
        let bad = post(&mock, &path, &token, "{\"limit\":0}").await; // uses the minute's one request
        let limited = post(&mock, &path, &token, "{}").await;
        let limited_intro = get(&mock, &intro, &token).await;
        mock.inject(Fault {
            kind: FaultKind::Status(500),
            count: 1,
            path: Some(path.clone()),
        });
        let injected = post(&mock, &path, &other, "{}").await;
        for r in [bad, limited, limited_intro, injected] {
            statuses.push(r.status);
            schema.assert_valid(&def, &r.body);
            assert_eq!(r.body.get("status").is_some(), version == "v2");
        }
        assert_eq!(statuses, [401, 401, 400, 429, 429, 500], "{version}");
    }
}

/// The README's count of external MSP users per account (seed 7) is what generation makes:
/// each person is external with a 5% chance, so `acme`, the default account, has none.
#[test]
fn external_users_per_account_are_as_the_readme_says() {
    let mock = common::start(MockConfig {
        events_per_type: 3000,
        ..MockConfig::default()
    });
    let external = |account: &str| {
        let mut people = std::collections::BTreeMap::new();
        for e in mock.events(account, "signinattempts") {
            let user = &e["target_user"];
            people.insert(
                user["uuid"].to_string(),
                user["user_type"] == "external_user",
            );
        }
        assert_eq!(people.len(), 40, "{account}: every person signs in");
        people.values().filter(|x| **x).count()
    };
    let counts = [external("acme"), external("globex"), external("initech")];
    let said = format!(
        "`acme` has {}, `globex` {} and `initech` {}",
        if counts[0] == 0 {
            "none".to_owned()
        } else {
            counts[0].to_string()
        },
        counts[1],
        counts[2]
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap()
        .replace('\n', " ");
    assert!(readme.contains(&said), "the README should say {said}");
    assert!(readme.contains("each, with a 5% chance, an external MSP user"));
}

/// The v2 fields the docs mark "MSP accounts only".
const MSP_TOP: [&str; 3] = ["account_uuid", "actor_type", "actor_account_uuid"];
const MSP_USER: [&str; 2] = ["user_type", "user_account_uuid"];

/// The MSP fields an event carries, on itself or on its user objects.
fn msp_fields(event: &Value) -> Vec<String> {
    let mut found: Vec<String> = MSP_TOP
        .iter()
        .filter(|f| event.get(**f).is_some())
        .map(|f| f.to_string())
        .collect();
    for (name, value) in event.as_object().unwrap() {
        for f in MSP_USER.iter().filter(|f| value.get(**f).is_some()) {
            found.push(format!("{name}.{f}"));
        }
    }
    found
}

/// `--msp-accounts initech`: the other accounts' v2 events come without the MSP fields, but
/// otherwise as MSP accounts get them (the v2-only audit actions included), and as the admin
/// listing and the in-process API show them; the named account keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_msp_accounts_named_get_the_msp_fields() {
    let mock = common::start(MockConfig {
        events_per_type: 1000,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        msp_accounts: "initech".parse().unwrap(),
        ..MockConfig::default()
    });
    let schema = Schema::load();
    let reset = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#;
    for kind in ALL {
        let path = format!("/api/v2/{kind}");
        let token = mock.token("acme", &ALL);
        let (items, _) = common::drain(&mock, &path, &token, reset).await;
        assert_eq!(items.len(), 1000, "{kind}: every event, on v2");
        for item in &items {
            assert_eq!(msp_fields(item), Vec::<String>::new(), "{kind}: {item}");
        }
        let page = serde_json::json!({"items": items, "cursor": "c", "has_more": false});
        check_page(&schema, &format!("{kind}_response_v2"), &page);
        assert_eq!(
            items,
            mock.events("acme", kind),
            "{kind}: as the in-process API lists them"
        );
        let listed = common::client()
            .get(format!("{}/_mock/accounts/acme/{kind}/events", mock.url()))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap();
        assert_eq!(items, listed, "{kind}: as the admin API lists them");
        let (v1, _) = common::drain(&mock, &format!("/api/v1/{kind}"), &token, reset).await;
        let v2_only = |e: &Value| matches!(e["action"].as_str(), Some("expire" | "unlink"));
        let without_v2_only: Vec<Value> = items.iter().filter(|e| !v2_only(e)).cloned().collect();
        assert_eq!(
            v1, without_v2_only,
            "{kind}: v2 differs from v1 only by its own actions"
        );
        if kind == "auditevents" {
            assert!(
                items.iter().any(v2_only),
                "v2-only actions are still served"
            );
        }

        let token = mock.token("initech", &ALL);
        let (items, _) = common::drain(&mock, &path, &token, reset).await;
        let uuid = mock.account_uuid("initech");
        assert!(
            items.iter().all(|e| e["account_uuid"] == uuid.as_str()),
            "{kind}: the MSP account keeps its fields"
        );
    }
}

#[test]
fn msp_accounts_parse_as_documented() {
    use op_events_mock::MspAccounts;
    assert_eq!("all".parse(), Ok(MspAccounts::All));
    assert_eq!("none".parse(), Ok(MspAccounts::None));
    assert_eq!(
        "initech, globex".parse(),
        Ok(MspAccounts::Named(vec!["initech".into(), "globex".into()]))
    );
    for bad in ["", "initech,", ",", "a,,b"] {
        let err = bad.parse::<MspAccounts>().unwrap_err();
        assert!(
            err.contains("`all`, `none` or account names"),
            "{bad:?}: {err}"
        );
    }
}
