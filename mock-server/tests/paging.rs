//! Cursor paging over HTTP: exactly-once delivery in ingestion order, late arrivals, windows,
//! retention, and rejection of tampered or foreign cursors.

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::{ALL, drain, post};
use jiff::Timestamp;
use op_events_mock::auth::{DEV_KEY, sign_claims};
use op_events_mock::{MockConfig, MockServer, TokenSpec};
use proptest::prelude::*;
use serde_json::{Value, json};

fn uuids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn ts(e: &Value) -> Timestamp {
    e["timestamp"].as_str().unwrap().parse().unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    Page,
    Append { n: usize, late: bool },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![3 => Just(Step::Page), 1 => (1usize..8, any::<bool>()).prop_map(|(n, late)| Step::Append { n, late })],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Paging from a reset until has_more is false returns every in-window event exactly once,
    /// in ingestion order, even with events (late ones too) appended while paging.
    #[test]
    fn paging_returns_each_event_once_in_ingestion_order(
        events in 0usize..60, seed in any::<u64>(), limit in 1u16..25, kind in 0usize..3,
        v1 in any::<bool>(), window in proptest::option::of((0u64..100, 1u64..100)), steps in steps(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mock = MockServer::start(MockConfig {
            events_per_type: events, seed, span_days: 2, rate_limit_per_minute: 0, rate_limit_per_hour: 0,
            ..MockConfig::default()
        }).unwrap();
        let kind = ALL[kind];
        let token = mock.token("acme", &ALL);
        let path = format!("/api/{}/{kind}", if v1 { "v1" } else { "v2" });
        // A window given in percent of the last two days (or open-ended from long ago).
        let now = mock.now();
        let (start, end) = match window {
            Some((a, len)) => {
                let at = |pct: u64| now - jiff::SignedDuration::from_secs((2 * 86_400 * (100 - pct.min(100)) / 100) as i64);
                (at(a), Some(at(a + len)))
            }
            None => ("2020-01-01T00:00:00Z".parse().unwrap(), None),
        };
        let mut reset = json!({"limit": limit, "start_time": start.to_string()});
        if let Some(end) = end {
            reset["end_time"] = end.to_string().into();
        }
        let got = rt.block_on(async {
            let mut body = reset.to_string();
            let mut got = Vec::new();
            let mut steps = steps.into_iter();
            loop {
                while let Some(Step::Append { n, late }) = steps.next() {
                    mock.generate("acme", kind, n, late);
                }
                let r = post(&mock, &path, &token, &body).await;
                prop_assert_eq!(r.status, 200);
                let items = r.body["items"].as_array().unwrap();
                prop_assert!(items.len() <= usize::from(limit));
                got.extend(items.iter().cloned());
                body = json!({"cursor": r.body["cursor"]}).to_string();
                if r.body["has_more"] == false && steps.len() == 0 {
                    return Ok(got);
                }
            }
        })?;
        let expected: Vec<Value> = mock
            .events("acme", kind)
            .into_iter()
            .filter(|e| ts(e) >= start && end.is_none_or(|end| ts(e) < end))
            .filter(|e| !v1 || !matches!(e["action"].as_str(), Some("expire" | "unlink")))
            .collect();
        prop_assert_eq!(uuids(&got), uuids(&expected));
    }

    /// Any change to a cursor's bytes gets a 400.
    #[test]
    fn tampered_cursors_are_rejected(at in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_-]") {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mock = common::small(5);
        let token = mock.token("acme", &ALL);
        rt.block_on(async {
            let r = post(&mock, "/api/v2/auditevents", &token, r#"{"limit":2}"#).await;
            let cursor = r.body["cursor"].as_str().unwrap().to_owned();
            let i = at.index(cursor.len());
            let mut tampered = cursor.clone();
            tampered.replace_range(i..=i, &replacement);
            prop_assume!(tampered != cursor);
            let r = post(&mock, "/api/v2/auditevents", &token, &json!({"cursor": tampered}).to_string()).await;
            prop_assert_eq!(r.status, 400);
            prop_assert_eq!(&r.body, &json!({"status": 400, "message": "Bad Request"}));
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_cursors_are_rejected() {
    let mock = common::small(20);
    let acme = mock.token("acme", &ALL);
    let globex = mock.token("globex", &ALL);
    let reset = r#"{"limit":5,"start_time":"2020-01-01T00:00:00Z"}"#;
    let cursor = post(&mock, "/api/v2/itemusages", &acme, reset).await.body["cursor"].clone();
    let body = json!({ "cursor": cursor }).to_string();
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &acme, &body).await.status,
        200
    );
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &globex, &body)
            .await
            .status,
        400,
        "other account"
    );
    assert_eq!(
        post(&mock, "/api/v2/auditevents", &acme, &body)
            .await
            .status,
        400,
        "other type"
    );
    assert_eq!(
        post(&mock, "/api/v1/itemusages", &acme, &body).await.status,
        400,
        "other version"
    );
    let other_key = common::start(MockConfig {
        key: Some("another key".into()),
        events_per_type: 20,
        ..MockConfig::default()
    });
    let token = other_key.token("acme", &ALL);
    let r = post(&other_key, "/api/v2/itemusages", &token, &body).await;
    assert_eq!(r.status, 400, "other key");
    // Another run with the same key and flags: its events may differ (appended ones), so a
    // position in this run's means nothing there, and would skip what it has.
    let restarted = common::small(20);
    let token = restarted.token("acme", &ALL);
    let r = post(&restarted, "/api/v2/itemusages", &token, &body).await;
    assert_eq!(r.status, 400, "other run");
    assert_eq!(
        r.headers["x-op-events-mock-reason"],
        "cursor from another run of the mock server, whose events may differ: start again \
         with a reset cursor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_the_last_cursor_returns_only_new_events_including_late_ones() {
    let mock = common::small(30);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/itemusages";
    let (first, cursor) = drain(
        &mock,
        path,
        &token,
        r#"{"limit":7,"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(first.len(), 30);
    let poll = json!({ "cursor": cursor }).to_string();
    let r = post(&mock, path, &token, &poll).await;
    assert_eq!(
        (
            r.body["items"].as_array().unwrap().len(),
            r.body["has_more"].clone()
        ),
        (0, json!(false))
    );
    assert!(
        r.body["cursor"].is_string(),
        "a cursor even on an empty page"
    );

    mock.generate("acme", "itemusages", 3, false);
    mock.generate("acme", "itemusages", 2, true);
    let late = json!({"uuid": "LATEITEMUSAGE0000000000000", "timestamp": "2024-01-01T00:00:00Z", "used_version": 1,
        "vault_uuid": "V", "item_uuid": "I", "user": {"uuid": "U", "name": "N", "email": "e"}, "client": {}});
    let mut recent = late.clone();
    recent["timestamp"] = (mock.now() - jiff::SignedDuration::from_hours(5))
        .to_string()
        .into();
    mock.append("acme", "itemusages", vec![recent]).unwrap();
    let (new, _) = drain(&mock, path, &token, &poll).await;
    let all = mock.events("acme", "itemusages");
    assert_eq!(uuids(&new), uuids(&all[30..]));
    assert_eq!(new.len(), 6);
    assert!(
        ts(&new[3]) < ts(&new[2]),
        "late events carry older timestamps and still arrive"
    );
    // An event older than retention is held but never served.
    mock.append("acme", "itemusages", vec![late]).unwrap();
    assert_eq!(mock.events("acme", "itemusages").len(), 37);
    // A bad item is an error for the caller, and none of its batch is stored.
    let undated = json!({"uuid": "NOTIMESTAMP"});
    let ok = json!({"uuid": "FINE", "timestamp": "2026-01-01T00:00:00Z"});
    assert!(
        mock.append("acme", "itemusages", vec![ok, undated])
            .is_err()
    );
    assert!(mock.append("acme", "itemusages", vec![json!(7)]).is_err());
    assert_eq!(mock.events("acme", "itemusages").len(), 37);
    assert_eq!(mock.servable_events("acme", "itemusages").len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_starts_old_windows_at_the_horizon_and_follows_the_clock() {
    let now: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
    let mock = common::start(MockConfig {
        events_per_type: 300,
        span_days: 200,
        now: Some(now),
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        ..MockConfig::default()
    });
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/signinattempts";
    let reset = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#;
    let servable = mock.servable_events("acme", "signinattempts");
    assert!(
        (160..200).contains(&servable.len()),
        "{} of 300 within 120 of 200 days",
        servable.len()
    );
    let horizon = mock.now() - jiff::SignedDuration::from_hours(24 * 120);
    assert!(servable.iter().all(|e| ts(e) >= horizon));
    let (items, _) = drain(&mock, path, &token, reset).await;
    assert_eq!(uuids(&items), uuids(&servable));

    mock.advance(Duration::from_secs(30 * 86_400));
    let (later, _) = drain(&mock, path, &token, reset).await;
    assert_eq!(
        uuids(&later),
        uuids(&mock.servable_events("acme", "signinattempts"))
    );
    assert!(
        later.len() + 30 < items.len(),
        "{} then {}",
        items.len(),
        later.len()
    );

    // An open cursor also stops serving what fell out of retention meanwhile.
    let r = post(
        &mock,
        path,
        &token,
        r#"{"limit":1,"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    let first = r.body["items"][0].clone();
    mock.advance(Duration::from_secs(86_400));
    let (rest, _) = drain(
        &mock,
        path,
        &token,
        &json!({"cursor": r.body["cursor"]}).to_string(),
    )
    .await;
    let min = rest.iter().map(ts).min().unwrap();
    assert!(min >= mock.now() - jiff::SignedDuration::from_hours(24 * 120));
    assert!(ts(&first) < min);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_without_start_time_covers_the_last_hour() {
    let mock = common::small(50);
    let token = mock.token("acme", &ALL);
    mock.generate("acme", "auditevents", 4, false);
    let hour_ago = mock.now() - jiff::SignedDuration::from_hours(1);
    let expected: Vec<Value> = mock
        .events("acme", "auditevents")
        .into_iter()
        .filter(|e| ts(e) >= hour_ago)
        .collect();
    assert!(expected.len() >= 4);
    let (items, _) = drain(&mock, "/api/v2/auditevents", &token, "{}").await;
    assert_eq!(uuids(&items), uuids(&expected));
    // end_time alone: the hour before it.
    let end = mock.now() - jiff::SignedDuration::from_hours(24);
    let body = json!({"end_time": end.to_string(), "limit": 1000}).to_string();
    let (items, _) = drain(&mock, "/api/v2/auditevents", &token, &body).await;
    let expected: Vec<Value> = mock
        .events("acme", "auditevents")
        .into_iter()
        .filter(|e| ts(e) >= end - jiff::SignedDuration::from_hours(1) && ts(e) < end)
        .collect();
    assert_eq!(uuids(&items), uuids(&expected));
}

/// A cursor keeps its reset's window: an event appended later is served if its timestamp is in
/// the window, however late it arrives (even before events already served), and never if it is
/// older than the reset's start_time. The cursor is a time-positioned query, not a feed of
/// everything ingested after the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_keeps_its_resets_window_for_events_appended_later() {
    let mock = common::small(200);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/itemusages";
    let start = mock.now() - jiff::SignedDuration::from_hours(24 * 10);
    let reset = json!({"limit": 1000, "start_time": start.to_string()}).to_string();
    let (first, cursor) = drain(&mock, path, &token, &reset).await;
    assert!(first.len() > 5, "{}", first.len());
    let newest_served = first.iter().map(ts).max().unwrap();
    let event = |uuid: &str, at: Timestamp| {
        json!({"uuid": uuid, "timestamp": at.to_string(), "used_version": 1, "vault_uuid": "V",
            "item_uuid": "I", "user": {"uuid": "U", "name": "N", "email": "e"}, "client": {}})
    };
    let minute = jiff::SignedDuration::from_mins(1);
    let items = vec![
        event("BEFORESTART000000000000000", start - minute),
        event("LATEINWINDOW00000000000000", start + minute),
        event("ATSTART0000000000000000000", start),
    ];
    mock.append("acme", "itemusages", items).unwrap();
    assert!(
        start + minute < newest_served,
        "the in-window ones are late"
    );
    let poll = json!({ "cursor": cursor }).to_string();
    let (new, _) = drain(&mock, path, &token, &poll).await;
    assert_eq!(
        uuids(&new),
        ["LATEINWINDOW00000000000000", "ATSTART0000000000000000000"]
    );
    // The event before start_time is held and servable; only a reset reaching back serves it.
    let earlier = json!({"limit": 1000, "start_time": (start - minute).to_string()}).to_string();
    let (again, _) = drain(&mock, path, &token, &earlier).await;
    assert!(uuids(&again).contains(&"BEFORESTART000000000000000".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limit_is_100_and_the_cursor_keeps_the_limit() {
    let mock = common::small(250);
    let token = mock.token("acme", &ALL);
    let r = post(
        &mock,
        "/api/v1/signinattempts",
        &token,
        r#"{"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 100);
    let r = post(
        &mock,
        "/api/v1/signinattempts",
        &token,
        r#"{"limit":7,"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    let r = post(
        &mock,
        "/api/v1/signinattempts",
        &token,
        &json!({"cursor": r.body["cursor"]}).to_string(),
    )
    .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 7);
    assert_eq!(r.body["has_more"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_dataset_and_accounts_differ() {
    let a = common::small(40);
    let b = common::small(40);
    let spec = |mock: &MockServer| TokenSpec {
        region: op_events_mock::Region::Us,
        features: vec!["auditevents".into()],
        account: "initech".into(),
        issued_at: mock.now(),
        expires_at: Some(mock.now() + jiff::SignedDuration::from_hours(1)),
        legacy_audience: false,
    };
    let ta = a.mint(&spec(&a));
    let tb = b.mint(&spec(&b));
    let reset = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#;
    let (ia, _) = drain(&a, "/api/v2/auditevents", &ta, reset).await;
    let (ib, _) = drain(&b, "/api/v2/auditevents", &tb, reset).await;
    assert_eq!(uuids(&ia), uuids(&ib));
    assert_eq!(ia.len(), 40);
    assert_eq!(ia[0]["account_uuid"], a.account_uuid("initech"));
    assert_ne!(uuids(&ia), uuids(&a.events("acme", "auditevents")));
}

/// With one `--now`, two servers give the same events, byte for byte, also for an account first
/// used later on one of them (after time passed, and the clock moved): a generated history
/// ends at the clock's start, not when the account is first used.
#[test]
fn the_same_seed_and_now_give_the_same_bytes_whenever_an_account_is_first_used() {
    let now: Timestamp = "2026-11-01T12:00:00Z".parse().unwrap();
    let start = || {
        MockServer::start(MockConfig {
            events_per_type: 300,
            now: Some(now),
            ..MockConfig::default()
        })
        .unwrap()
    };
    let (a, b) = (start(), start());
    let listed = |mock: &MockServer, account: &str| {
        ALL.map(|kind| serde_json::to_string(&mock.events(account, kind)).unwrap())
    };
    let first = listed(&a, "globex");
    std::thread::sleep(Duration::from_millis(50));
    b.advance(Duration::from_secs(3600));
    assert_eq!(listed(&b, "globex"), first);
    assert_eq!(listed(&b, "acme"), listed(&a, "acme"));
}

/// A token signed with the mock's key but naming no account (no `op-events-mock/account`
/// claim, as tokens made by other tooling may lack) is served its own dataset, whose events carry
/// the token's `1password.com/auuid`, as introspect does; the admin API reaches that dataset by
/// the name the README gives it, the uuid in lower case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_without_an_account_name_are_served_events_of_their_account_uuid() {
    let mock = common::small(5);
    let auuid = "GZ4FDOYUWVH5TE3BZQFW3RNJ2E";
    let now = mock.now().as_second();
    let claims = json!({
        "aud": ["events.1password.com"],
        "sub": "XK2NDRNHQZBG7JQ6XE2V5UXHAI",
        "iat": now,
        "exp": now + 3600,
        "1password.com/fts": ALL,
        "1password.com/auuid": auuid,
    });
    let token = sign_claims(DEV_KEY.as_bytes(), &claims);

    let introspected = common::get(&mock, "/api/v2/auth/introspect", &token).await;
    assert_eq!(introspected.body["account_uuid"], auuid);
    let reset = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#;
    for kind in ALL {
        let (items, _) = drain(&mock, &format!("/api/v2/{kind}"), &token, reset).await;
        assert_eq!(items.len(), 5, "{kind}");
        for item in &items {
            assert_eq!(item["account_uuid"], auuid, "{kind}: {item}");
        }
        assert_eq!(
            mock.events(&auuid.to_ascii_lowercase(), kind),
            items,
            "{kind}"
        );
    }
}

/// Items of one reset page and its `Content-Encoding` and `Vary`, read without the client's own
/// decompression so the test sees what the mock sent.
async fn page_as_sent(
    mock: &MockServer,
    token: &str,
    accept: &str,
) -> (Option<String>, Option<String>, Value) {
    let r = common::raw_client()
        .post(format!("{}/api/v2/auditevents", mock.url()))
        .bearer_auth(token)
        .header("accept-encoding", accept)
        .body(r#"{"limit":50,"start_time":"2020-01-01T00:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    let bytes = r.bytes().await.unwrap();
    let text = match encoding.as_deref() {
        Some("gzip") => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .expect("a valid gzip stream");
            text
        }
        _ => String::from_utf8(bytes.to_vec()).unwrap(),
    };
    let page: Value = serde_json::from_str(&text).unwrap();
    (encoding, vary, page["items"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_sent_only_when_enabled_and_accepted() {
    let plain = common::small(60);
    let (encoding, vary, _) = page_as_sent(&plain, &plain.token("acme", &ALL), "gzip").await;
    assert_eq!((encoding, vary), (None, None), "off by default");

    let mock = common::start(MockConfig {
        events_per_type: 60,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        gzip: true,
        ..MockConfig::default()
    });
    let token = mock.token("acme", &ALL);
    let vary = Some("accept-encoding".to_owned());
    let (encoding, plain_vary, expected) = page_as_sent(&mock, &token, "identity").await;
    assert_eq!(encoding, None);
    assert_eq!(
        plain_vary, vary,
        "a plain answer varies with Accept-Encoding too"
    );
    assert_eq!(expected.as_array().unwrap().len(), 50);
    let accepted = [
        "gzip",
        "br, GZIP;q=0.5",
        "deflate, gzip",
        "x-gzip",
        "*",
        "br, *;q=0.1",
    ];
    for accept in accepted {
        let (encoding, gzip_vary, items) = page_as_sent(&mock, &token, accept).await;
        assert_eq!(encoding.as_deref(), Some("gzip"), "{accept}");
        assert_eq!(gzip_vary, vary, "{accept}");
        assert_eq!(items, expected, "{accept}: the same page, compressed");
    }
    for accept in [
        "gzip;q=0",
        "gzip; q=0.0, identity",
        "*, gzip;q=0",
        "*;q=0",
        "br",
    ] {
        let (encoding, _, items) = page_as_sent(&mock, &token, accept).await;
        assert_eq!(encoding, None, "{accept}");
        assert_eq!(items, expected, "{accept}");
    }
    assert_eq!(mock.stats().gzipped, accepted.len() as u64);
}
