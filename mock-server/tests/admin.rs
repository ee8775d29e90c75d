//! The `/_mock/` admin API and injected faults, over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{ALL, client, get, post, request};
use op_events_mock::{Fault, FaultKind, MockServer};
use serde_json::{Value, json};

async fn admin(mock: &MockServer, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let url = format!("{}{path}", mock.url());
    let req = match method {
        "GET" => client().get(url),
        "POST" => client()
            .post(url)
            .body(body.map(|b| b.to_string()).unwrap_or_default()),
        _ => client().request(method.parse().unwrap(), url),
    };
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The `message` of an admin error body.
fn message(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap();
    body["message"].as_str().expect("a message").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_appends_generates_and_lists_events() {
    let mock = common::small(20);
    let item = json!({"uuid": "ADMINAPPENDED0000000000000", "timestamp": mock.now().to_string(), "actor_uuid": "A",
        "action": "create", "object_type": "item", "object_uuid": "O", "session": {}});
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/accounts/acme/auditevents/events",
        Some(json!([item])),
    )
    .await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"appended": 1, "total": 21}))
    );
    let (status, _) = admin(
        &mock,
        "POST",
        "/_mock/accounts/acme/auditevents/events",
        Some(json!({"generate": 5, "late": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin(
        &mock,
        "POST",
        "/_mock/accounts/acme/auditevents/events",
        Some(json!([{"uuid": "no timestamp"}])),
    )
    .await;
    assert_eq!(status, 400);

    let (status, body) = admin(
        &mock,
        "GET",
        "/_mock/accounts/acme/auditevents/events",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed, mock.events("acme", "auditevents"));
    assert_eq!(listed.len(), 26);
    assert_eq!(listed[20]["uuid"], "ADMINAPPENDED0000000000000");

    let old = json!({"uuid": "OLD", "timestamp": "2020-01-01T00:00:00Z"});
    mock.append("acme", "auditevents", vec![old]).unwrap();
    let (_, ndjson) = admin(
        &mock,
        "GET",
        "/_mock/accounts/acme/auditevents/events?format=ndjson",
        None,
    )
    .await;
    assert_eq!(ndjson.lines().count(), 27);
    let (_, servable) = admin(
        &mock,
        "GET",
        "/_mock/accounts/acme/auditevents/events?servable=true&format=ndjson",
        None,
    )
    .await;
    assert_eq!(servable.lines().count(), 26);
    assert!(
        servable
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
}

/// Listing an account no request has used (a typo, say) answers 404 saying how accounts come
/// into being, and makes none: it used to generate and keep a whole dataset per name, so that
/// read-only calls grew the mock without bound. Here they leave room under the cap for the
/// account a token then uses; an append makes one, as a test seeding it before its collector
/// asks needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_an_account_never_used_answers_404_and_makes_none() {
    let mock = common::start(op_events_mock::MockConfig {
        events_per_type: 5,
        max_accounts: 3,
        ..op_events_mock::MockConfig::default()
    });
    for i in 0..5 {
        let path = format!("/_mock/accounts/typo{i}/auditevents/events?servable=true");
        let (status, body) = admin(&mock, "GET", &path, None).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, &body["status"]),
            (404, &json!(404)),
            "{path}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("account \"typo{i}\" has not been used yet"))
                && message.contains("first API request of a token naming it")
                && message.contains("POST /_mock/accounts/typo"),
            "{message}"
        );
    }
    let token = mock.token("globex", &ALL);
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &token, "{}").await.status,
        200,
        "the reads made no account: there is room for this one"
    );
    let (status, body) = admin(
        &mock,
        "GET",
        "/_mock/accounts/globex/itemusages/events",
        None,
    )
    .await;
    assert_eq!(status, 200, "used by a token: {body}");
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 5);

    let seeded = json!({"generate": 2});
    let path = "/_mock/accounts/initech/itemusages/events";
    let (status, body) = admin(&mock, "POST", path, Some(seeded)).await;
    assert_eq!(status, 200, "an append makes the account: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 7);
    let (status, body) = admin(&mock, "GET", path, None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_moves_the_clock_and_mints_tokens() {
    let mock = common::small(5);
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/clock",
        Some(json!({"now": "2026-01-15T12:00:00Z"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = admin(
        &mock,
        "POST",
        "/_mock/clock",
        Some(json!({"advance_seconds": 3600})),
    )
    .await;
    let now: jiff::Timestamp = serde_json::from_str::<Value>(&body).unwrap()["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected: jiff::Timestamp = "2026-01-15T13:00:00Z".parse().unwrap();
    assert!(now.duration_since(expected).as_secs() < 5);
    assert_eq!(
        admin(
            &mock,
            "POST",
            "/_mock/clock",
            Some(json!({"now": "tomorrow"}))
        )
        .await
        .0,
        400
    );

    let (_, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"account": "globex", "features": ["itemusages"]})),
    )
    .await;
    let minted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(minted["account_uuid"], mock.account_uuid("globex"));
    let token = minted["token"].as_str().unwrap();
    assert_eq!(
        post(&mock, "/api/v2/itemusages", token, "{}").await.status,
        200
    );
    assert_eq!(
        post(&mock, "/api/v2/auditevents", token, "{}").await.status,
        401
    );

    // Out of range: a clear 400, and the clock stays where it was.
    for change in [
        json!({"now": "2300-01-01T00:00:00Z"}),
        json!({"now": "1600-01-01T00:00:00Z"}),
        json!({"advance_seconds": u64::MAX}),
        json!({"advance_seconds": 300u64 * 365 * 86_400}),
    ] {
        let (status, body) = admin(&mock, "POST", "/_mock/clock", Some(change.clone())).await;
        assert_eq!(status, 400, "{change}: {body}");
        assert!(body.contains("the clock must stay within"), "{body}");
    }
    assert!(mock.now().duration_since(expected).as_secs() < 60);
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"expires_in_seconds": 9_000_000_000_000_000_000i64})),
    )
    .await;
    assert_eq!(
        (status, body.contains("expires_in_seconds")),
        (400, true),
        "{body}"
    );
}

/// The clock's `now` is read as `start_time` is: RFC 3339 date-times only, not the looser
/// forms jiff takes, with a 400 saying an RFC 3339 date-time is expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_takes_rfc_3339_date_times_only() {
    let mock = common::small(5);
    let noon: jiff::Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/clock",
        Some(json!({"now": "2026-01-15t13:00:00.5+01:00"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for now in [
        "2026-01-15T12:00:00Z[UTC]",
        "2026-01-15 12:00:00Z",
        "2026-01-15T12:00Z",
        "2026-01-15T12:00:00+25:00",
        "2026-01-15T12:00:00+0000",
    ] {
        assert!(now.parse::<jiff::Timestamp>().is_ok(), "jiff takes {now}");
        let later = now.replace("2026-01-15", "2030-06-01");
        let (status, body) =
            admin(&mock, "POST", "/_mock/clock", Some(json!({"now": later}))).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 400, "{later}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{later:?} is not an RFC 3339 date-time"))
                && message.contains("{\"now\": an RFC 3339 date-time}"),
            "{message}"
        );
    }
    let (status, body) = admin(&mock, "POST", "/_mock/clock", Some(json!({"now": 1}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("RFC 3339"), "{body}");
    let drift = mock.now().duration_since(noon).as_secs();
    assert!((0..60).contains(&drift), "the clock stayed: {}", mock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_default_to_the_servers_account() {
    let mock = common::start(op_events_mock::MockConfig {
        events_per_type: 5,
        default_account: "globex".into(),
        ..op_events_mock::MockConfig::default()
    });
    let (_, body) = admin(&mock, "POST", "/_mock/tokens", Some(json!({}))).await;
    let minted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(minted["account_uuid"], mock.account_uuid("globex"));
    let token = minted["token"].as_str().unwrap();
    let r = post(
        &mock,
        "/api/v2/auditevents",
        token,
        r#"{"limit":10,"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_hit_the_next_requests_then_stop() {
    let mock = common::small(50);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    let reset = r#"{"limit":50,"start_time":"2020-01-01T00:00:00Z"}"#;
    let raw = |path: &'static str| {
        let url = format!("{}{path}", mock.url());
        let token = token.clone();
        async move {
            client()
                .post(url)
                .bearer_auth(token)
                .body(reset)
                .send()
                .await
        }
    };

    for (kind, status) in [("503", 503), ("429", 429), ("500", 500)] {
        let (s, _) = admin(
            &mock,
            "POST",
            "/_mock/faults",
            Some(json!({"kind": kind, "count": 2, "path": path})),
        )
        .await;
        assert_eq!(s, 204);
        assert_eq!(
            post(&mock, "/api/v2/itemusages", &token, reset)
                .await
                .status,
            200,
            "other paths unaffected"
        );
        for _ in 0..2 {
            let r = post(&mock, path, &token, reset).await;
            assert_eq!(
                (r.status, &r.body),
                (
                    status,
                    &json!({"status": status, "message": r.body["message"]})
                )
            );
            assert_eq!(r.headers.contains_key("retry-after"), status == 429);
        }
        assert_eq!(post(&mock, path, &token, reset).await.status, 200);
    }

    mock.inject(Fault {
        kind: FaultKind::InvalidJson,
        count: 1,
        path: None,
    });
    let r = raw(path).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());

    mock.inject(Fault {
        kind: FaultKind::Truncate,
        count: 1,
        path: None,
    });
    let r = raw(path).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.is_err(),
        "the body stops short of Content-Length"
    );

    mock.inject(Fault {
        kind: FaultKind::Reset,
        count: 1,
        path: None,
    });
    let failed = match raw(path).await {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the connection drops");

    mock.inject(Fault {
        kind: FaultKind::Delay(Duration::from_millis(300)),
        count: 1,
        path: None,
    });
    let started = Instant::now();
    assert_eq!(raw(path).await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(post(&mock, path, &token, reset).await.status, 200);
    assert_eq!(
        admin(
            &mock,
            "POST",
            "/_mock/faults",
            Some(json!({"kind": "teapot"}))
        )
        .await
        .0,
        400
    );
}

/// A fault with no path is for the next request an API endpoint serves: a request to a path
/// the API does not have (a typo, 404), or with a method its endpoint does not take (405),
/// leaves the fault for the next real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_not_used_up_by_requests_no_endpoint_serves() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let reset = r#"{"limit":5}"#;
    mock.inject(Fault {
        kind: FaultKind::Status(503),
        count: 1,
        path: None,
    });
    for (method, path, status) in [
        ("POST", "/api/v2/auditevent", 404),
        ("POST", "/api/v3/auditevents", 404),
        ("POST", "/api/v2/auth/introspect/", 404),
        ("GET", "/api/v2/auditevents", 405),
        ("PUT", "/api/v1/itemusages", 405),
        ("POST", "/api/auth/introspect", 405),
        ("DELETE", "/api/v2/auth/introspect", 405),
    ] {
        let r = request(&mock, method, path, &token, Some(reset)).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    }
    let r = post(&mock, "/api/v2/auditevents", &token, reset).await;
    assert_eq!(r.status, 503, "the fault is still queued");
    assert_eq!(
        get(&mock, "/api/v2/auth/introspect", &token).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_by_path_and_status_and_events_served() {
    let mock = common::small(30);
    let token = mock.token("acme", &ALL);
    post(
        &mock,
        "/api/v1/signinattempts",
        &token,
        r#"{"limit":20,"start_time":"2020-01-01T00:00:00Z"}"#,
    )
    .await;
    post(&mock, "/api/v1/signinattempts", &token, r#"{"limit":0}"#).await;
    post(&mock, "/api/v2/itemusages", "bad", "{}").await;
    // Paths the API does not have are counted together, however many there are.
    for i in 0..20 {
        post(&mock, &format!("/api/{i}{}", "x".repeat(500)), &token, "{}").await;
        post(&mock, &format!("/api/v2/kind{i}"), &token, "{}").await;
    }
    let stats = mock.stats();
    assert_eq!(stats.count("other", 404), 40);
    assert!(stats.requests.iter().all(|r| !r.path.contains("xxx")));
    assert_eq!(stats.count("/api/v1/signinattempts", 200), 1);
    assert_eq!(stats.count("/api/v1/signinattempts", 400), 1);
    assert_eq!(stats.count("/api/v2/itemusages", 401), 1);
    assert_eq!(stats.events_served, 20);
    let (_, body) = admin(&mock, "GET", "/_mock/stats", None).await;
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["events_served"], 20);
    assert!(
        json["requests"]
            .as_array()
            .unwrap()
            .contains(&json!({"path": "/api/v2/itemusages", "status": 401, "count": 1}))
    );
}

/// The stats keep a bounded number of rows: the admin API's are per route, whatever the
/// account named, and admin paths no endpoint has (an unknown event type, an unknown
/// endpoint) are counted under "other" with the API's. They used to get a row each, so that
/// 8,000 requests made 8,002 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_rows_are_per_route_not_per_account_or_typo() {
    let mock = common::start(op_events_mock::MockConfig {
        events_per_type: 5,
        max_accounts: 1,
        ..op_events_mock::MockConfig::default()
    });
    let route = "/_mock/accounts/{account}/{kind}/events";
    for i in 0..20 {
        let unused = format!("/_mock/accounts/typo{i}/auditevents/events");
        assert_eq!(admin(&mock, "GET", &unused, None).await.0, 404);
        let no_kind = format!("/_mock/accounts/acme/nokind{i}/events");
        assert_eq!(admin(&mock, "GET", &no_kind, None).await.0, 404);
        assert_eq!(
            admin(&mock, "GET", &format!("/_mock/zz{i}"), None).await.0,
            404
        );
    }
    for (account, status) in [("acme", 200), ("globex", 404)] {
        let path = format!("/_mock/accounts/{account}/itemusages/events");
        assert_eq!(admin(&mock, "GET", &path, None).await.0, status, "{path}");
    }
    // Past the cap: counted under the endpoint, as any answer of it.
    let initech = mock.token("initech", &ALL);
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &initech, "{}")
            .await
            .status,
        403
    );

    let stats = mock.stats();
    assert_eq!(stats.count(route, 404), 21, "{stats:?}");
    assert_eq!(stats.count(route, 200), 1, "{stats:?}");
    assert_eq!(stats.count("other", 404), 40, "{stats:?}");
    assert_eq!(stats.count("/api/v2/itemusages", 403), 1, "{stats:?}");
    assert_eq!(stats.requests.len(), 4, "{stats:?}");
}

/// A fault that could never fire as meant is refused with a 400 that names the problem and
/// what is allowed, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonsense_faults_are_refused_saying_what_is_allowed() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    for (fault, says) in [
        (json!({"kind": "999"}), ["status 999", "400 to 599"]),
        (json!({"kind": "200"}), ["status 200", "400 to 599"]),
        (json!({"kind": "teapot"}), ["\"teapot\"", "invalid_json"]),
        (json!({"kind": "503", "count": 0}), ["count 0", "1 or more"]),
        (json!({"kind": "503", "count": -1}), ["count", "u32"]),
        (
            json!({"kind": "503", "path": "/_mock/stats"}),
            ["\"/_mock/stats\"", "auditevents"],
        ),
        (
            json!({"kind": "503", "path": "/api/v2/auditevent"}),
            ["\"/api/v2/auditevent\"", "/api/v2/auth/introspect"],
        ),
        (
            json!({"kind": "503", "delay_ms": 100}),
            ["delay_ms", "\"delay\""],
        ),
        (json!({"kind": "delay"}), ["\"delay\"", "delay_ms"]),
        // A delay that would outlast any test (u64::MAX ms hung its request for ever).
        (
            json!({"kind": "delay", "delay_ms": 600_001}),
            [
                "delay_ms 600001 is over 600000 (10 minutes)",
                "allowed: 0 to 600000",
            ],
        ),
        (
            json!({"kind": "delay", "delay_ms": u64::MAX}),
            [
                "delay_ms 18446744073709551615 is over 600000",
                "allowed: 0 to 600000",
            ],
        ),
    ] {
        let (status, body) = admin(&mock, "POST", "/_mock/faults", Some(fault.clone())).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, &body["status"]), (400, &json!(400)), "{fault}");
        let message = body["message"].as_str().unwrap();
        assert!(
            says.iter().all(|s| message.contains(s)),
            "{fault}: {message}"
        );
    }
    let reset = r#"{"start_time":"2020-01-01T00:00:00Z"}"#;
    assert_eq!(
        post(&mock, path, &token, reset).await.status,
        200,
        "nothing was queued"
    );
    for fault in [
        json!({"kind": "599", "path": "/api/auth/introspect"}),
        json!({"kind": "400", "count": 3, "path": path}),
        json!({"kind": "delay", "delay_ms": 10}),
        json!({"kind": "delay", "delay_ms": 600_000}),
    ] {
        let (status, body) = admin(&mock, "POST", "/_mock/faults", Some(fault.clone())).await;
        assert_eq!(status, 204, "{fault}: {body}");
    }
    assert_eq!(op_events_mock::MAX_DELAY, Duration::from_secs(600));
}

/// `GET /_mock/faults` lists the queued faults as `POST` takes them, with the uses they have
/// left, and `DELETE` drops them all: both used to be 405, so that a test could neither see
/// nor clear what an earlier one left queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_faults_are_listed_and_cleared() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    let listed = || async {
        let (status, body) = admin(&mock, "GET", "/_mock/faults", None).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(listed().await, json!([]));
    for fault in [
        json!({"kind": "503", "count": 3, "path": path}),
        json!({"kind": "delay", "delay_ms": 2000}),
        json!({"kind": "reset", "path": "/api/auth/introspect"}),
    ] {
        let (status, body) = admin(&mock, "POST", "/_mock/faults", Some(fault)).await;
        assert_eq!(status, 204, "{body}");
    }
    assert_eq!(post(&mock, path, &token, "{}").await.status, 503);
    let queued = json!([
        {"kind": "503", "count": 2, "path": path},
        {"kind": "delay", "delay_ms": 2000, "count": 1, "path": null},
        {"kind": "reset", "count": 1, "path": "/api/auth/introspect"},
    ]);
    assert_eq!(listed().await, queued);
    // As listed, a fault can be queued again.
    let (status, _) = admin(&mock, "POST", "/_mock/faults", Some(queued[1].clone())).await;
    assert_eq!(status, 204);

    let (status, body) = admin(&mock, "DELETE", "/_mock/faults", None).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"cleared": 4}))
    );
    assert_eq!(listed().await, json!([]));
    let started = Instant::now();
    assert_eq!(post(&mock, path, &token, "{}").await.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "no delay left");
    let (status, body) = admin(&mock, "DELETE", "/_mock/faults", None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"cleared":0}"#));
}

/// A status fault's kind is a status as plain decimal digits, as the README writes them:
/// "+500", " 500" or "0500" are refused saying what is allowed, not read as 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_statuses_are_plain_decimal_digits() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    for kind in [
        "+500", " 500", "500 ", "0500", "00503", "-500", "5_00", "500.0", "",
    ] {
        let fault = json!({"kind": kind, "path": path});
        let (status, body) = admin(&mock, "POST", "/_mock/faults", Some(fault)).await;
        assert_eq!(status, 400, "{kind:?} was taken: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("unknown kind {kind:?}"))
                && message.contains("400 to 599 as three decimal digits (\"503\")")
                && message.contains("\"invalid_json\""),
            "{kind:?}: {message}"
        );
    }
    let reset = r#"{"start_time":"2020-01-01T00:00:00Z"}"#;
    assert_eq!(
        post(&mock, path, &token, reset).await.status,
        200,
        "nothing was queued"
    );
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/faults",
        Some(json!({"kind": "500", "path": path})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(post(&mock, path, &token, reset).await.status, 500);
}

/// A reset fault sends hyper's 200 head, then drops the connection: no answer, so it is
/// counted apart from the requests the API answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_faults_are_not_counted_as_answered_requests() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    let (status, _) = admin(
        &mock,
        "POST",
        "/_mock/faults",
        Some(json!({"kind": "reset", "count": 2, "path": path})),
    )
    .await;
    assert_eq!(status, 204);
    for _ in 0..2 {
        let sent = client()
            .post(format!("{}{path}", mock.url()))
            .bearer_auth(&token)
            .body("{}")
            .send()
            .await;
        assert!(
            sent.is_err() || sent.unwrap().bytes().await.is_err(),
            "the connection drops"
        );
    }
    assert_eq!(post(&mock, path, &token, "{}").await.status, 200);
    let stats = mock.stats();
    assert_eq!(stats.count(path, 200), 1, "{stats:?}");
    assert_eq!(stats.resets, 2, "{stats:?}");
    let (_, body) = admin(&mock, "GET", "/_mock/stats", None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["resets"], 2);
}

/// A truncate fault sends the head with the full `Content-Length` and half the body: the client
/// cannot use that page, so it is counted apart, neither as an answer of its status nor as
/// events served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_faults_are_not_counted_as_answers_nor_as_events_served() {
    let mock = common::small(20);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    let reset = r#"{"limit":5,"start_time":"2020-01-01T00:00:00Z"}"#;
    let (status, _) = admin(
        &mock,
        "POST",
        "/_mock/faults",
        Some(json!({"kind": "truncate", "count": 3, "path": path})),
    )
    .await;
    assert_eq!(status, 204);
    for token in [token.as_str(), token.as_str(), "bad"] {
        let sent = client()
            .post(format!("{}{path}", mock.url()))
            .bearer_auth(token)
            .body(reset)
            .send()
            .await;
        assert!(
            sent.is_err() || sent.unwrap().bytes().await.is_err(),
            "the body is cut off"
        );
    }
    let whole = post(&mock, path, &token, reset).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body["items"].as_array().unwrap().len(), 5);
    let stats = mock.stats();
    assert_eq!(stats.count(path, 200), 1, "{stats:?}");
    assert_eq!(stats.count(path, 401), 0, "{stats:?}");
    assert_eq!(stats.events_served, 5, "{stats:?}");
    assert_eq!(stats.truncated, 3, "{stats:?}");
    assert_eq!(stats.resets, 0, "{stats:?}");
    let (_, body) = admin(&mock, "GET", "/_mock/stats", None).await;
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&json["truncated"], &json["events_served"]),
        (&json!(3), &json!(5))
    );
}

/// A `generate` count beyond what one request may build is refused with 400, saying the
/// bound: it used to panic the handler (leaving the generator's lock poisoned, so that every
/// later `generate` for that account and type failed too) or abort the whole server on an
/// allocation it could not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_counts_beyond_the_bound_are_refused_not_fatal() {
    let mock = common::small(5);
    let path = "/_mock/accounts/acme/signinattempts/events";
    for n in [json!(u64::MAX), json!(100_001)] {
        let (status, body) = admin(&mock, "POST", path, Some(json!({ "generate": n }))).await;
        assert_eq!(status, 400, "{n}: {body}");
        let message = message(&body);
        assert!(message.contains("100000"), "{n}: {message}");
    }
    assert_eq!(mock.events("acme", "signinattempts").len(), 5);
    let (status, body) = admin(&mock, "POST", path, Some(json!({ "generate": 3 }))).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"appended": 3, "total": 8}))
    );
}

/// A misspelt field in `{"generate": N, "late": …}` is refused, as in the other admin bodies,
/// rather than ignored: `"lates": true` used to generate events that were not late at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_refuses_unknown_fields() {
    let mock = common::small(5);
    let path = "/_mock/accounts/acme/itemusages/events";
    for body in [
        json!({"generate": 3, "lates": true}),
        json!({"generate": 3, "late": true, "count": 2}),
    ] {
        let (status, text) = admin(&mock, "POST", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {text}");
        let message = message(&text);
        assert!(message.contains("unknown field"), "{body}: {message}");
    }
    assert_eq!(mock.events("acme", "itemusages").len(), 5);
}

/// The admin API is JSON in, JSON out: what axum's extractors refuse (a path segment that is
/// not UTF-8, a query it cannot read, a body over 2 MiB) is answered in its JSON error shape
/// too, not in plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_from_paths_queries_and_bodies_are_json() {
    let mock = common::small(5);
    let huge = "x".repeat(3 << 20);
    for (method, path, body, status) in [
        ("GET", "/_mock/accounts/%FF/itemusages/events", "", 400),
        ("POST", "/_mock/accounts/acme/%FF/events", "[]", 400),
        (
            "GET",
            "/_mock/accounts/acme/itemusages/events?servable=maybe",
            "",
            400,
        ),
        ("POST", "/_mock/accounts/acme/itemusages/events", &huge, 413),
        ("POST", "/_mock/clock", &huge, 413),
        ("POST", "/_mock/faults", &huge, 413),
        ("POST", "/_mock/tokens", &huge, 413),
    ] {
        let r = client()
            .request(method.parse().unwrap(), format!("{}{path}", mock.url()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], status, "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap();
        if status == 413 {
            assert!(
                message.contains("over 2 MiB; send it in several smaller requests"),
                "{method} {path}: {message}"
            );
        }
    }
}

/// The admin API's own error shape for its paths, whatever the route: a script reading
/// `message` learns which endpoints there are, or which method to use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_admin_paths_and_methods_answer_in_the_admin_shape() {
    let mock = common::small(5);
    for (method, path, status, says) in [
        ("GET", "/_mock/nope", 404, "/_mock/faults"),
        ("GET", "/_mock", 404, "/_mock/stats"),
        ("PUT", "/_mock/faults", 405, "PUT"),
        ("POST", "/_mock/stats", 405, "POST"),
        (
            "GET",
            "/_mock/accounts/acme/itemusage/events",
            404,
            "\"itemusage\"; expected signinattempts, itemusages or auditevents",
        ),
    ] {
        let (got, body) = admin(&mock, method, path, None).await;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((got, &body["status"]), (status, &json!(status)), "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{method} {path}: {message}");
    }
    // API paths keep the API's shapes.
    let (status, body) = admin(&mock, "GET", "/api/v1/nope", None).await;
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"Error":{"Message":"Not Found"}}"#);
}

/// Percent-encoded letters and digits are the letters and digits themselves, so
/// `/api/v2/audit%65vents` is the audit events endpoint and `/api/v2/auth/intro%73pect`
/// introspect: faults for those paths hit them, an unfiltered fault answers in the v2 shape on
/// `/api/v%32/…`, and the stats count them under the endpoint's path, not "other". An encoded
/// slash separates nothing: `/api%2Fv2/auditevents` is no endpoint, and no fault fires on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_paths_are_the_endpoints_they_route_to() {
    let mock = common::small(5);
    let token = mock.token("acme", &ALL);
    let reset = r#"{"limit":5,"start_time":"2020-01-01T00:00:00Z"}"#;
    let encoded = "/api/v2/audit%65vents";
    assert_eq!(post(&mock, encoded, &token, reset).await.status, 200);

    mock.inject(Fault {
        kind: FaultKind::Status(503),
        count: 1,
        path: Some("/api/v2/auditevents".into()),
    });
    assert_eq!(post(&mock, encoded, &token, reset).await.status, 503);

    mock.inject(Fault {
        kind: FaultKind::Status(500),
        count: 1,
        path: None,
    });
    let r = post(&mock, "/api/v%32/auditevents", &token, reset).await;
    assert_eq!(
        (r.status, r.body),
        (
            500,
            json!({"status": 500, "message": "Internal Server Error"})
        )
    );
    // Not found either way; a version segment that decodes to v2 answers in its shape.
    let r = post(&mock, "/api/v%32/nothing", &token, reset).await;
    assert_eq!(
        (r.status, r.body),
        (404, json!({"status": 404, "message": "Not Found"}))
    );
    let r = post(&mock, "/api/v%32/auth/nothing/here", &token, reset).await;
    assert_eq!(
        (r.status, r.body),
        (404, json!({"status": 404, "message": "Not Found"}))
    );

    mock.inject(Fault {
        kind: FaultKind::Status(503),
        count: 1,
        path: Some("/api/v2/auth/introspect".into()),
    });
    let introspect = "/api/v2/auth/intro%73pect";
    assert_eq!(get(&mock, introspect, &token).await.status, 503);
    let r = get(&mock, introspect, &token).await;
    assert_eq!((r.status, &r.body["features"]), (200, &json!(ALL)));

    mock.inject(Fault {
        kind: FaultKind::Status(500),
        count: 1,
        path: Some("/api/v2/auditevents".into()),
    });
    let slashed = post(&mock, "/api%2Fv2/auditevents", &token, reset).await;
    let plain = post(&mock, "/api/v2/auditevents", &token, reset).await;
    assert_eq!((slashed.status, plain.status), (404, 500));

    let stats = mock.stats();
    for (path, status, n) in [
        ("/api/v2/auditevents", 200, 1),
        ("/api/v2/auditevents", 503, 1),
        ("/api/v2/auditevents", 500, 2),
        ("/api/v2/auth/introspect", 503, 1),
        ("/api/v2/auth/introspect", 200, 1),
        ("other", 404, 3),
    ] {
        assert_eq!(stats.count(path, status), n, "{:?}", stats.requests);
    }
}

/// A feature name no endpoint knows (a typo, an empty one) is refused when minting, naming
/// the valid ones, instead of making a token that later gets 401s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_refuses_unknown_features() {
    let mock = common::small(1);
    for features in [
        json!(["bogus"]),
        json!([""]),
        json!(["itemusages", "ItemUsages"]),
    ] {
        let (status, body) = admin(
            &mock,
            "POST",
            "/_mock/tokens",
            Some(json!({ "features": features })),
        )
        .await;
        assert_eq!(status, 400, "{features}: {body}");
        assert!(
            body.contains("expected signinattempts, itemusages or auditevents"),
            "{features}: {body}"
        );
    }
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"features": ["itemusages"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The in-process server's `token()` refuses such a feature too, naming it.
#[test]
#[should_panic(expected = "unknown feature \"ItemUsages\" (expected signinattempts")]
fn in_process_tokens_refuse_unknown_features() {
    common::small(1).token("acme", &["itemusages", "ItemUsages"]);
}

/// `POST /_mock/tokens` mints the tokens older integrations hold: one that never expires (no
/// `exp`) and one with the audience very old tokens carry; both work. Asking for a lifetime
/// and none at once is a 400 that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_never_expire_or_carry_the_old_audience_are_minted() {
    let mock = common::small(5);
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"never_expires": true, "legacy_audience": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = common::claims(&token);
    assert_eq!(claims.get("exp"), None, "{claims}");
    assert_eq!(claims["aud"], "com.1password.streamingservice");
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &token, "{}").await.status,
        200
    );
    let (status, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"never_expires": true, "expires_in_seconds": 60})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "expires_in_seconds and never_expires exclude each other"
    );
    let (status, body) = admin(&mock, "POST", "/_mock/tokens", Some(json!({"account": ""}))).await;
    assert_eq!(status, 400);
    assert_eq!(message(&body), "an account name must not be empty");
}

/// `POST /_mock/tokens/revoke` revokes a minted token (again, or once expired, is no error);
/// a body that is not `{"token"}` or a token that is no JWT is 400, a token signed with
/// another key 404, each saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_revoked_over_the_admin_api() {
    let mock = common::small(5);
    let (_, body) = admin(&mock, "POST", "/_mock/tokens", Some(json!({}))).await;
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = admin(
        &mock,
        "POST",
        "/_mock/tokens",
        Some(json!({"expires_in_seconds": -60})),
    )
    .await;
    let expired = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&mock, "/api/v2/auth/introspect", &token).await.status,
        200
    );
    for t in [&token, &token, &expired] {
        let (status, body) = admin(
            &mock,
            "POST",
            "/_mock/tokens/revoke",
            Some(json!({ "token": t })),
        )
        .await;
        assert_eq!((status, body.as_str()), (204, ""));
    }
    assert_eq!(
        get(&mock, "/api/v2/auth/introspect", &token).await.status,
        401
    );
    assert_eq!(
        post(&mock, "/api/v2/auditevents", &token, "{}")
            .await
            .status,
        401
    );

    let other = common::start(op_events_mock::MockConfig {
        key: Some("not the dev key".into()),
        events_per_type: 1,
        ..Default::default()
    })
    .token("acme", &ALL);
    let (head, rest) = token.split_once('.').unwrap();
    for (body, status, says) in [
        (None, 400, "expected {\"token\""),
        (Some(json!({})), 400, "expected {\"token\""),
        (Some(json!({"token": 5})), 400, "expected {\"token\""),
        (
            Some(json!({"token": token, "also": 1})),
            400,
            "expected {\"token\"",
        ),
        (Some(json!({"token": ""})), 400, "malformed token"),
        (Some(json!({"token": "not-a-jwt"})), 400, "malformed token"),
        (
            Some(json!({"token": format!("{token}.x")})),
            400,
            "malformed token",
        ),
        (
            Some(json!({"token": format!("{head}.{}.%%%", rest.split('.').next().unwrap())})),
            400,
            "malformed token",
        ),
        (
            Some(json!({"token": other})),
            404,
            "not a token of this mock",
        ),
        (
            Some(json!({"token": format!("{head}.{}", rest.replacen('e', "f", 1))})),
            404,
            "not a token of this mock",
        ),
    ] {
        let (got, text) = admin(&mock, "POST", "/_mock/tokens/revoke", body.clone()).await;
        assert_eq!(got, status, "{body:?}: {text}");
        assert!(message(&text).contains(says), "{body:?}: {text}");
    }
    let (status, text) = admin(&mock, "GET", "/_mock/tokens/revoke", None).await;
    assert_eq!(
        (status, message(&text)),
        (405, "/_mock/tokens/revoke does not take GET".into())
    );
}
