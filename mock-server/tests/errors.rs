//! Every 400, 401 and 429 path, on both API versions.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{ALL, get, post, request};
use jiff::{SignedDuration, Timestamp};
use op_events_mock::{MockConfig, Region, TokenSpec};
use serde_json::json;

fn v1_error(message: &str) -> serde_json::Value {
    json!({"Error": {"Message": message}})
}

fn v2_error(status: u16, message: &str) -> serde_json::Value {
    json!({"status": status, "message": message})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_with_the_documented_body() {
    let mock = common::small(10);
    let token = mock.token("acme", &ALL);
    let cursor = post(&mock, "/api/v2/itemusages", &token, "{}").await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let bodies = [
        "not json".to_owned(),
        "".to_owned(),
        "[]".to_owned(),
        r#"{"limit":"10"}"#.to_owned(),
        r#"{"limit":0}"#.to_owned(),
        r#"{"limit":1001}"#.to_owned(),
        r#"{"limit":10.5}"#.to_owned(),
        r#"{"limit":1000.0000000000001}"#.to_owned(),
        r#"{"limit":0.9999999999999999}"#.to_owned(),
        r#"{"start_time":5}"#.to_owned(),
        r#"{"start_time":"2024-05-14"}"#.to_owned(),
        r#"{"end_time":"yesterday"}"#.to_owned(),
        r#"{"start_time":"2024-05-14T10:00:00Z","end_time":"2024-05-14T09:59:59Z"}"#.to_owned(),
        r#"{"cursor":5}"#.to_owned(),
        r#"{"cursor":"abc"}"#.to_owned(),
        json!({"cursor": cursor, "limit": 10}).to_string(),
        json!({"cursor": cursor, "start_time": "2024-05-14T10:00:00Z"}).to_string(),
    ];
    for body in &bodies {
        let r = post(&mock, "/api/v1/itemusages", &token, body).await;
        assert_eq!(
            (r.status, &r.body),
            (400, &v1_error("Bad Request")),
            "v1 {body}"
        );
        assert!(r.headers.contains_key("x-op-events-mock-reason"));
        let r = post(&mock, "/api/v2/itemusages", &token, body).await;
        assert_eq!(
            (r.status, &r.body),
            (400, &v2_error(400, "Bad Request")),
            "v2 {body}"
        );
    }
    // Boundaries and leniencies that are accepted.
    for body in [
        r#"{"limit":1}"#,
        r#"{"limit":1000}"#,
        r#"{"limit":100.0}"#,
        r#"{"since":"2024-01-01"}"#,
        r#"{"start_time":"2024-05-14T10:00:00Z","end_time":"2024-05-14T10:00:00Z"}"#,
    ] {
        assert_eq!(
            post(&mock, "/api/v2/itemusages", &token, body).await.status,
            200,
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_rejected_only_when_asked() {
    let mock = common::start(MockConfig {
        reject_unknown_fields: true,
        events_per_type: 5,
        ..MockConfig::default()
    });
    let token = mock.token("acme", &ALL);
    let r = post(
        &mock,
        "/api/v2/itemusages",
        &token,
        r#"{"limit":10,"since":"2024-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_wrong_methods_and_huge_bodies_get_the_versions_error_body() {
    let mock = common::small(10);
    let token = mock.token("acme", &ALL);
    let r = get(&mock, "/api/v2/signinattempts", &token).await;
    assert_eq!(
        (r.status, r.body),
        (405, v2_error(405, "Method Not Allowed"))
    );
    let r = post(&mock, "/api/v2/auth/introspect", &token, "{}").await;
    assert_eq!(
        (r.status, r.body),
        (405, v2_error(405, "Method Not Allowed"))
    );
    let r = get(&mock, "/api/auth/introspect/x", &token).await;
    assert_eq!((r.status, r.body), (404, v1_error("Not Found")));
    for path in ["/api/v2/signinattempts/", "/api/v2/nope", "/api/v2/a/b/c"] {
        let r = post(&mock, path, &token, "{}").await;
        assert_eq!(
            (r.status, &r.body),
            (404, &v2_error(404, "Not Found")),
            "{path}"
        );
    }
    let huge = format!(r#"{{"limit":10,"pad":"{}"}}"#, "x".repeat(3 << 20));
    let r = post(&mock, "/api/v2/itemusages", &token, &huge).await;
    assert_eq!(
        r.headers["x-op-events-mock-reason"],
        format!(
            "the request body is declared {} bytes long, over 2 MiB; send it in several smaller \
             requests",
            huge.len()
        )
    );
    assert_eq!(
        (r.status, r.body),
        (413, v2_error(413, "Payload Too Large"))
    );
    let r = post(&mock, "/api/v1/itemusages", &token, &huge).await;
    assert_eq!((r.status, r.body), (413, v1_error("Payload Too Large")));
}

/// 405 is for a known path with the wrong method; a path the API does not have (an unknown
/// event type or version, the v3 beta's GET) is 404 whatever the method, without `Allow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_whatever_the_method() {
    let mock = common::small(10);
    let token = mock.token("acme", &ALL);
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        for (path, body) in [
            ("/api/v1/bogus", v1_error("Not Found")),
            ("/api/v3/auditevents", v1_error("Not Found")),
            ("/api/v9/itemusages", v1_error("Not Found")),
            ("/api/v2/auth", v2_error(404, "Not Found")),
            ("/api/v2/nope", v2_error(404, "Not Found")),
        ] {
            let r = request(&mock, method, path, &token, None).await;
            assert_eq!(r.status, 404, "{method} {path}");
            assert!(r.headers.get("allow").is_none(), "{method} {path}");
            assert_eq!(r.body, body, "{method} {path}");
        }
        let r = request(&mock, method, "/api/v1/itemusages", &token, None).await;
        assert_eq!(r.status, 405, "{method} on a known path");
        assert_eq!(r.headers["allow"], "POST");
        assert_eq!(r.body, v1_error("Method Not Allowed"));
    }
}

/// A segment that does not decode to UTF-8 is just another path the API does not have: 404
/// with the version's JSON body, never axum's plain-text 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_are_not_utf_8_get_the_versions_404_body() {
    let mock = common::small(10);
    let token = mock.token("acme", &ALL);
    for (path, body) in [
        ("/api/v2/%FF", v2_error(404, "Not Found")),
        ("/api/v2/item%C0usages", v2_error(404, "Not Found")),
        ("/api/v1/%FF", v1_error("Not Found")),
        ("/api/%FF/itemusages", v1_error("Not Found")),
    ] {
        for method in ["POST", "GET"] {
            let r = request(&mock, method, path, &token, Some("{}")).await;
            assert_eq!(r.status, 404, "{method} {path}");
            assert_eq!(r.headers["content-type"], "application/json");
            assert_eq!(r.body, body, "{method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let mock = common::small(10);
    let token = mock.token("acme", &ALL);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = common::client()
            .post(format!("{}/api/v2/itemusages", mock.url()))
            .header("authorization", format!("{scheme} {token}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    for header in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer ".to_owned(),
    ] {
        let r = common::client()
            .post(format!("{}/api/v2/itemusages", mock.url()))
            .header("authorization", &header)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_with_the_documented_body() {
    let mock = common::small(10);
    let other = common::start(MockConfig {
        key: Some("not the dev key".into()),
        events_per_type: 1,
        ..MockConfig::default()
    });
    let now = mock.now();
    let spec = |region, features: &[&str], exp: Timestamp| TokenSpec {
        region,
        features: features.iter().map(|f| f.to_string()).collect(),
        account: "acme".into(),
        issued_at: now - SignedDuration::from_hours(2),
        expires_at: Some(exp),
        legacy_audience: false,
    };
    let good = mock.token("acme", &ALL);
    let (head, rest) = good.split_once('.').unwrap();
    let cases = [
        ("missing", String::new()),
        ("garbled", "not-a-jwt".to_owned()),
        (
            "bad base64",
            format!("{head}.%%%.{}", rest.rsplit('.').next().unwrap()),
        ),
        ("other key", other.token("acme", &ALL)),
        (
            "forged payload",
            format!("{head}.{}", rest.replacen('e', "f", 1)),
        ),
        (
            "expired",
            mock.mint(&spec(Region::Us, &ALL, now - SignedDuration::from_secs(1))),
        ),
        (
            "wrong region",
            mock.mint(&spec(Region::Eu, &ALL, now + SignedDuration::from_hours(1))),
        ),
        (
            "missing feature",
            mock.mint(&spec(
                Region::Us,
                &["signinattempts", "auditevents"],
                now + SignedDuration::from_hours(1),
            )),
        ),
    ];
    for (what, token) in &cases {
        let r = post(&mock, "/api/v1/itemusages", token, "{}").await;
        assert_eq!(
            (r.status, &r.body),
            (401, &v1_error("Unauthorized")),
            "v1 {what}"
        );
        let r = post(&mock, "/api/v2/itemusages", token, "{}").await;
        assert_eq!(
            (r.status, &r.body),
            (401, &v2_error(401, "Unauthorized")),
            "v2 {what}"
        );
        if *what != "missing feature" {
            assert_eq!(
                get(&mock, "/api/auth/introspect", token).await.status,
                401,
                "{what}"
            );
            assert_eq!(
                get(&mock, "/api/v2/auth/introspect", token).await.status,
                401,
                "{what}"
            );
        }
    }
    // Introspection needs no particular feature.
    let r = get(&mock, "/api/v2/auth/introspect", &cases[7].1).await;
    assert_eq!(r.body["features"], json!(["signinattempts", "auditevents"]));
}

/// A revoked token is answered on every endpoint as any invalid token is: 401 with the
/// version's documented body. Another token of the same account, minted a second later as a
/// rotation would, keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_get_401_and_the_accounts_other_tokens_do_not() {
    let mock = common::small(10);
    // Minted from the same spec, to the nanosecond: a new token all the same, as 1Password
    // never issues one twice.
    let now = mock.now();
    let spec = TokenSpec {
        region: Region::Us,
        features: ALL.iter().map(|f| f.to_string()).collect(),
        account: "acme".into(),
        issued_at: now,
        expires_at: Some(now + SignedDuration::from_hours(1)),
        legacy_audience: false,
    };
    let old = mock.mint(&spec);
    let new = mock.mint(&spec);
    assert_ne!(old, new);
    let introspect = ["/api/auth/introspect", "/api/v2/auth/introspect"];
    let answer = |r: &common::Reply| (r.status, r.body.clone());
    for path in introspect {
        assert_eq!(get(&mock, path, &old).await.status, 200, "{path}");
    }
    mock.revoke(&old);
    for (path, v1) in introspect.into_iter().zip([true, false]) {
        let unauthorized = if v1 {
            v1_error("Unauthorized")
        } else {
            v2_error(401, "Unauthorized")
        };
        let r = get(&mock, path, &old).await;
        assert_eq!(answer(&r), (401, unauthorized), "{path}");
        assert_eq!(r.headers["x-op-events-mock-reason"], "token revoked");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_eq!(get(&mock, path, &new).await.status, 200, "{path}");
    }
    for kind in ALL {
        let r = post(&mock, &format!("/api/v1/{kind}"), &old, "{}").await;
        assert_eq!(answer(&r), (401, v1_error("Unauthorized")), "v1 {kind}");
        let r = post(&mock, &format!("/api/v2/{kind}"), &old, "{}").await;
        assert_eq!(
            answer(&r),
            (401, v2_error(401, "Unauthorized")),
            "v2 {kind}"
        );
        for version in ["v1", "v2"] {
            let path = format!("/api/{version}/{kind}");
            assert_eq!(post(&mock, &path, &new, "{}").await.status, 200, "{path}");
        }
    }
}

/// `MockServer::revoke` refuses what this mock never signed, as the admin API does.
#[test]
#[should_panic(expected = "MockServer::revoke: bad token signature")]
fn in_process_revoke_refuses_other_keys_tokens() {
    let other = common::start(MockConfig {
        key: Some("not the dev key".into()),
        events_per_type: 1,
        ..MockConfig::default()
    });
    common::small(1).revoke(&other.token("acme", &ALL));
}

/// The token is checked before the body is read: a client that announces a body and never
/// sends it gets its 401 at once, instead of the mock waiting for (or buffering) the body.
#[test]
fn unauthenticated_requests_get_401_without_their_body_being_read() {
    let mock = common::small(1);
    let wrong_feature = mock.token("acme", &["signinattempts"]);
    for (path, authorization, shape) in [
        ("/api/v2/itemusages", None, "/message"),
        (
            "/api/v1/itemusages",
            Some("Bearer not-a-jwt"),
            "/Error/Message",
        ),
        (
            "/api/v2/auditevents",
            Some(format!("Bearer {wrong_feature}")).as_deref(),
            "/message",
        ),
    ] {
        let mut stream = TcpStream::connect(mock.addr()).unwrap();
        let authorization = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{authorization}Content-Length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Far less than the header read timeout (30 s), after which a body never sent is 408.
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0; 4096];
        let body = loop {
            match stream.read(&mut buf) {
                Ok(0) => panic!("{path}: closed without a whole answer"),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{path}: no answer in 5 s, the body is awaited ({e})"),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && let Ok(body) = serde_json::from_str::<serde_json::Value>(body)
            {
                break body;
            }
        };
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 401"), "{path}: {text}");
        assert_eq!(body.pointer(shape), Some(&json!("Unauthorized")), "{path}");
    }
}

/// The status of an audit events request to `mock` with `token`, sent with `Host: host`.
async fn on_host(mock: &op_events_mock::MockServer, host: &str, token: String) -> u16 {
    common::client()
        .post(format!("{}/api/v2/auditevents", mock.url()))
        .header("host", host)
        .bearer_auth(token)
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_header_picks_the_region() {
    let mock = common::small(10);
    let now = mock.now();
    let eu = mock.mint(&TokenSpec {
        region: Region::Eu,
        features: vec!["auditevents".into()],
        account: "acme".into(),
        issued_at: now,
        expires_at: Some(now + SignedDuration::from_hours(1)),
        legacy_audience: false,
    });
    let send = |host, token| on_host(&mock, host, token);
    assert_eq!(send("events.1password.eu", eu.clone()).await, 200);
    assert_eq!(send("events.1password.com", eu.clone()).await, 401);
    assert_eq!(
        send("127.0.0.1", eu).await,
        401,
        "other hosts are the default region (us)"
    );
    assert_eq!(
        send("events.1password.com", mock.token("acme", &ALL)).await,
        200
    );
    assert_eq!(
        send("events.1password.ca:443", mock.token("acme", &ALL)).await,
        401
    );
    let ca = common::start(MockConfig {
        region: Region::Ca,
        events_per_type: 1,
        ..MockConfig::default()
    });
    let r = post(&ca, "/api/v2/auditevents", &ca.token("acme", &ALL), "{}").await;
    assert_eq!(
        r.status, 200,
        "MockServer::token follows the default region"
    );
}

/// Tokens older collectors meet: one with the audience very old tokens carry (no host) is
/// good on every region's host, and one without `exp` (an integration set never to expire)
/// outlives any clock; an `exp` that is not a number is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_audience_and_never_expiring_tokens_are_accepted() {
    let mock = common::small(10);
    let now = mock.now();
    let spec = |legacy_audience, expires_at| TokenSpec {
        region: Region::Eu,
        features: ALL.iter().map(|f| f.to_string()).collect(),
        account: "acme".into(),
        issued_at: now,
        expires_at,
        legacy_audience,
    };
    let old = mock.mint(&spec(true, None));
    let hourly = mock.mint(&spec(false, Some(now + SignedDuration::from_hours(1))));
    let send = |host, token| on_host(&mock, host, token);
    for host in [
        "events.1password.com",
        "events.ent.1password.com",
        "events.1password.ca",
        "events.1password.eu",
        "127.0.0.1",
    ] {
        assert_eq!(send(host, old.clone()).await, 200, "{host}");
    }
    assert_eq!(send("events.1password.eu", hourly.clone()).await, 200);
    mock.advance(Duration::from_secs(50 * 365 * 86_400));
    assert_eq!(send("events.1password.eu", hourly).await, 401, "expired");
    assert_eq!(send("events.1password.eu", old).await, 200, "never expires");

    let claims = |exp| {
        json!({"aud": ["events.1password.com"], "sub": "S", "iat": 0, "exp": exp,
            "1password.com/fts": ALL, "1password.com/auuid": mock.account_uuid("acme")})
    };
    let key = op_events_mock::auth::DEV_KEY.as_bytes();
    let bad_exp = op_events_mock::auth::sign_claims(key, &claims(json!("never")));
    let r = post(&mock, "/api/v2/auditevents", &bad_exp, "{}").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers["x-op-events-mock-reason"], "malformed token",
        "{:?}",
        r.headers
    );
    // RFC 7519's NumericDate may have a fraction, and 4e9 is a number too.
    let later = mock.now().as_second() as f64 + 60.5; // the clock runs on
    for exp in [json!(later), json!(4e9), json!(1.5)] {
        let token = op_events_mock::auth::sign_claims(key, &claims(exp.clone()));
        let r = post(&mock, "/api/v2/auditevents", &token, "{}").await;
        let reason = r.headers.get("x-op-events-mock-reason");
        let reason = reason.and_then(|v| v.to_str().ok());
        match exp.as_f64() {
            Some(1.5) => assert_eq!(reason, Some("token expired"), "{exp}"),
            _ => assert_eq!(r.status, 200, "exp {exp}: {reason:?}"),
        }
    }
}

/// Past `max_accounts`, a request for a new account is refused, 403 in the version's shape
/// with the reason header naming the cap, on every endpoint and for admin appends alike;
/// the accounts the mock holds keep being served. Without the cap, every new name a token
/// carried made and kept a dataset (8,000 names grew the mock to 19.8 GB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_past_max_accounts_are_refused_403() {
    let mock = common::start(MockConfig {
        events_per_type: 5,
        max_accounts: 2,
        ..MockConfig::default()
    });
    let reset = r#"{"limit":10,"start_time":"2020-01-01T00:00:00Z"}"#;
    let globex = mock.token("globex", &ALL);
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &globex, reset)
            .await
            .status,
        200
    );

    let initech = mock.token("initech", &ALL);
    let reason = "no new account: the mock holds as many as --max-accounts allows (2; \
                  MockConfig::max_accounts); restart it with a higher cap to use more accounts";
    for (path, body) in [
        ("/api/v2/itemusages", v2_error(403, "Forbidden")),
        ("/api/v1/auditevents", v1_error("Forbidden")),
        ("/api/v2/auth/introspect", v2_error(403, "Forbidden")),
        ("/api/auth/introspect", v1_error("Forbidden")),
    ] {
        let method = if path.contains("introspect") {
            "GET"
        } else {
            "POST"
        };
        let r = request(&mock, method, path, &initech, Some(reset)).await;
        assert_eq!((r.status, &r.body), (403, &body), "{path}");
        assert_eq!(r.headers["x-op-events-mock-reason"], reason, "{path}");
    }
    let r = common::client()
        .post(format!(
            "{}/_mock/accounts/initech/auditevents/events",
            mock.url()
        ))
        .body(r#"{"generate":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, v2_error(403, reason), "the admin API's shape");

    // The accounts held are served on.
    let acme = mock.token("acme", &ALL);
    assert_eq!(
        post(&mock, "/api/v2/auditevents", &acme, reset)
            .await
            .status,
        200
    );
    assert_eq!(
        post(&mock, "/api/v1/itemusages", &globex, reset)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_give_429_with_retry_after_per_account() {
    let start: Timestamp = "2026-01-15T12:00:10Z".parse().unwrap();
    let mock = common::start(MockConfig {
        rate_limit_per_minute: 3,
        rate_limit_per_hour: 5,
        now: Some(start),
        events_per_type: 5,
        ..MockConfig::default()
    });
    let acme = mock.token("acme", &ALL);
    let acme_page = || post(&mock, "/api/v2/signinattempts", &acme, "{}");
    for _ in 0..2 {
        assert_eq!(acme_page().await.status, 200);
    }
    assert_eq!(
        get(&mock, "/api/auth/introspect", &acme).await.status,
        200,
        "introspect counts too"
    );
    let r = post(&mock, "/api/v1/signinattempts", &acme, "{}").await;
    assert_eq!((r.status, &r.body), (429, &v1_error("Too Many Requests")));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((49..=50).contains(&retry), "{retry} s to the minute's end");
    assert_eq!(
        r.headers["x-op-events-mock-reason"],
        format!(
            "rate limit exceeded: the account's 3 requests per minute are spent; the window resets in {retry}s"
        )
    );
    let r = get(&mock, "/api/v2/auth/introspect", &acme).await;
    assert_eq!(
        (r.status, &r.body),
        (429, &v2_error(429, "Too Many Requests"))
    );
    assert_eq!(
        post(
            &mock,
            "/api/v2/signinattempts",
            &mock.token("globex", &ALL),
            "{}"
        )
        .await
        .status,
        200,
        "per account"
    );

    mock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        assert_eq!(acme_page().await.status, 200);
    }
    let r = acme_page().await;
    assert_eq!(r.status, 429, "hour budget of 5 spent");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (3525..=3530).contains(&retry),
        "{retry} s to the hour's end"
    );
    let why = r.headers["x-op-events-mock-reason"].to_str().unwrap();
    assert!(
        why.contains("the account's 5 requests per hour are spent"),
        "{why}"
    );
    mock.advance(Duration::from_secs(3600));
    assert_eq!(acme_page().await.status, 200);
    assert_eq!(mock.stats().rate_limited, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_can_be_turned_off_and_limits_off() {
    let mock = common::start(MockConfig {
        rate_limit_per_minute: 1,
        retry_after_header: false,
        events_per_type: 5,
        ..MockConfig::default()
    });
    let token = mock.token("acme", &ALL);
    mock.set_now("2026-01-15T12:00:00Z".parse().unwrap());
    assert_eq!(
        post(&mock, "/api/v2/itemusages", &token, "{}").await.status,
        200
    );
    let r = post(&mock, "/api/v2/itemusages", &token, "{}").await;
    assert_eq!(r.status, 429);
    assert!(!r.headers.contains_key("retry-after"));

    let unlimited = common::small(5);
    let token = unlimited.token("acme", &ALL);
    for _ in 0..700 {
        assert_eq!(
            get(&unlimited, "/api/v2/auth/introspect", &token)
                .await
                .status,
            200
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

    /// Over HTTP, with the clock jumping around, no minute window admits more than its budget.
    #[test]
    fn no_minute_window_serves_more_than_its_budget(
        budget in 1u32..6,
        gaps in proptest::collection::vec(0u64..30, 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mock = common::start(MockConfig {
            rate_limit_per_minute: budget, rate_limit_per_hour: 0, events_per_type: 2,
            now: Some("2026-01-15T12:00:00Z".parse().unwrap()), ..MockConfig::default()
        });
        let token = mock.token("acme", &ALL);
        let mut served = std::collections::HashMap::<i64, u32>::new();
        rt.block_on(async {
            // Whole seconds set just before each request: the few real milliseconds that pass
            // before the server reads its clock cannot cross a minute boundary.
            let mut at: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
            for gap in gaps {
                at += SignedDuration::from_secs(gap as i64);
                mock.set_now(at);
                let minute = at.as_second() / 60;
                let r = post(&mock, "/api/v2/auditevents", &token, "{}").await;
                proptest::prop_assert!(r.status == 200 || r.status == 429);
                if r.status == 200 {
                    *served.entry(minute).or_default() += 1;
                }
            }
            Ok(())
        })?;
        proptest::prop_assert!(served.values().all(|n| *n <= budget), "{served:?}");
    }
}

/// Every RFC 3339 date-time is a valid `start_time`/`end_time`, however far off or precise;
/// instants beyond what the store holds count as its first or last, so an early start means
/// "from the retention horizon". What the RFC refuses (an offset of 25 hours, month 13) is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_end_time_take_every_rfc_3339_date_time_and_only_those() {
    let mock = common::small(20);
    let token = mock.token("acme", &ALL);
    let path = "/api/v2/auditevents";
    let all = mock.servable_events("acme", "auditevents").len();
    assert_eq!(all, 20);
    let count = |body: serde_json::Value| {
        let (mock, token) = (&mock, &token);
        async move {
            let body = body.to_string();
            let r = post(mock, path, token, &body).await;
            assert_eq!(r.status, 200, "{body}: {}", r.body);
            r.body["items"].as_array().unwrap().len()
        }
    };
    for (start, end, expected) in [
        ("0000-01-01T00:00:00Z", None, all),
        ("0001-01-01T00:00:00Z", None, all),
        ("0001-01-01T00:00:00Z", Some("9999-12-31T23:59:59Z"), all),
        ("0000-01-01T00:00:00Z", Some("0001-01-01T00:00:00Z"), 0),
        ("9999-12-31T23:59:59.999999999+23:59", None, 0),
        ("9999-01-01T00:00:00Z", Some("9999-01-01T00:00:00Z"), 0),
        ("2020-01-01T00:00:00.1234567890123Z", None, all),
        ("2020-01-01t00:00:00z", None, all),
        ("2016-12-31T23:59:60Z", None, all),
        (
            "2020-01-01T00:00:00-00:00",
            Some("9999-12-31T23:59:59-23:59"),
            all,
        ),
    ] {
        let mut body = json!({ "limit": 1000, "start_time": start });
        if let Some(end) = end {
            body["end_time"] = end.into();
        }
        assert_eq!(count(body).await, expected, "{start} to {end:?}");
    }
    // Only end_time: the hour before it, even at the bottom of the range.
    assert_eq!(
        count(json!({ "end_time": "0000-01-01T00:00:00Z" })).await,
        0
    );
    // Beyond the store's range, order still counts: this end is before this start.
    let r = post(
        &mock,
        path,
        &token,
        r#"{"start_time":"9999-01-01T00:00:00Z","end_time":"9998-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(r.status, 400);

    for (time, reason) in [
        ("2024-05-14T09:12:44+25:00", "offset hour 25"),
        ("2024-05-14T09:12:44+23:60", "offset minute 60"),
        ("2024-13-14T09:12:44Z", "month 13"),
        ("2023-02-29T09:12:44Z", "day 29"),
        ("2024-05-14T24:00:00Z", "hour 24"),
        ("2024-05-14T09:12Z", "expected"),
        ("2024-05-14T09:12:44,5Z", "expected"),
        ("2024-05-14 09:12:44Z", "expected"),
    ] {
        for key in ["start_time", "end_time"] {
            let body = json!({ key: time }).to_string();
            let r = post(&mock, "/api/v1/auditevents", &token, &body).await;
            assert_eq!(
                (r.status, &r.body),
                (400, &v1_error("Bad Request")),
                "{body}"
            );
            let r = post(&mock, path, &token, &body).await;
            assert_eq!(
                (r.status, &r.body),
                (400, &v2_error(400, "Bad Request")),
                "{body}"
            );
            let why = r.headers["x-op-events-mock-reason"].to_str().unwrap();
            assert!(
                why.starts_with(key) && why.contains(reason),
                "{body}: {why}"
            );
        }
    }
}
