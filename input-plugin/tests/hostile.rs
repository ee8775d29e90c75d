//! Hostile and broken servers: a throwaway HTTP/1.1 server on 127.0.0.1 answers with scripted
//! bytes (the mock only serves valid data). Every case ends in a clear error within the timeout,
//! memory stays bounded by `max_response_bytes` (counted after gzip decompression, so a gzip
//! bomb is one more oversized body), the client keeps working afterwards, and a hung stream does
//! not hold up the others. The envelope parser is property-tested over arbitrary bodies and
//! never panics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use op_events_input::api::{Action, ApiError, Client, Request};
use op_events_input::config::{Compression, Config};
use op_events_input::encode::Target;
use op_events_input::event::EventType;
use op_events_input::json::{Node, Tape};
use op_events_input::pipeline::{BatchLimits, Collector};
use op_events_input::token::Token;
use proptest::prelude::*;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Clone)]
enum Script {
    /// A complete response.
    Reply(u16, Vec<u8>),
    /// A redirect to the URL given.
    Redirect(u16, String),
    /// `Content-Length` of `len`, then that many bytes of JSON-ish filler, slowly if `pace`.
    Big { len: usize },
    /// Chunked body that never ends.
    Endless,
    /// A gzip-encoded body, whether or not the request asked for one.
    Gzip(Arc<Vec<u8>>),
    /// 200 headers, then one byte per 50 ms forever (under the size cap).
    Drip,
    /// Reads the request and never answers.
    Silent,
}

/// Serves `script(path)` for every request. The closure sees the request path.
async fn serve<F>(script: F) -> String
where
    F: Fn(&str) -> Script + Send + Sync + 'static,
{
    serve_requests(move |path, _| script(path)).await
}

/// Serves `script(path, body)` for every request.
async fn serve_requests<F>(script: F) -> String
where
    F: Fn(&str, &str) -> Script + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move { connection(s, &*script).await });
        }
    });
    url
}

async fn connection(mut s: TcpStream, script: &(dyn Fn(&str, &str) -> Script + Send + Sync)) {
    loop {
        let Some((path, body)) = read_request(&mut s).await else {
            return;
        };
        let ok = match script(&path, &body) {
            Script::Reply(status, body) => reply(&mut s, status, "", &body).await,
            Script::Redirect(status, to) => {
                reply(&mut s, status, &format!("location: {to}\r\n"), b"").await
            }
            Script::Gzip(body) => reply(&mut s, 200, "content-encoding: gzip\r\n", &body).await,
            Script::Big { len } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 << 10];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                true
            }
            Script::Endless => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 << 10, " ".repeat(16 << 10));
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Script::Drip => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n{";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if s.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            }
            Script::Silent => {
                let mut sink = [0u8; 1024];
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
        };
        if !ok {
            return;
        }
    }
}

/// A complete JSON response; `headers` are extra lines, each ending in CRLF. Whether the
/// connection can take another one.
async fn reply(s: &mut TcpStream, status: u16, headers: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.is_ok() && s.write_all(body).await.is_ok()
}

/// Reads one request (head + `content-length` body); returns its path and body.
async fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + len {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = String::from_utf8_lossy(&buf[end..end + len]).into_owned();
    Some((head.split_whitespace().nth(1)?.to_owned(), body))
}

fn client(url: &str, timeout: Duration, max_bytes: usize) -> Client {
    client_with(Config {
        base_url: Some(url.parse().unwrap()),
        connect_timeout: timeout,
        request_timeout: timeout,
        max_response_bytes: max_bytes,
        ..Config::default()
    })
}

fn client_with(c: Config) -> Client {
    Client::new(&c, Token::new(SecretString::from("hostile-token")).unwrap()).unwrap()
}

fn reset() -> Request {
    Request::Reset {
        limit: 100,
        start_time: "2026-01-01T00:00:00Z".parse().unwrap(),
    }
}

const GOOD: &str = r#"{"cursor":"c2","has_more":false,"items":[{"uuid":"A"}]}"#;

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for part in parts {
        encoder.write_all(part).unwrap();
    }
    encoder.finish().unwrap()
}

/// Spaces (valid JSON whitespace) compressed about a thousandfold: 64 MiB sent as 64 KB.
fn gzip_bomb() -> Vec<u8> {
    let spaces = vec![b' '; 1 << 20];
    gzip(&[&spaces[..]; 64])
}

/// With `compression none` the client asks for pages as they are; a server that compresses
/// anyway (HTTP allows it) still gets its page read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_page_not_asked_for_is_read() {
    let page = Arc::new(gzip(&[GOOD.as_bytes()]));
    let url = serve(move |_| Script::Gzip(page.clone())).await;
    let client = client_with(Config {
        base_url: Some(url.parse().unwrap()),
        compression: Compression::None,
        ..Config::default()
    });
    let page = client.fetch(EventType::ItemUsages, &reset()).await.unwrap();
    assert_eq!(page.envelope().unwrap().items, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_endless_bodies_stop_at_the_cap() {
    let bomb = Arc::new(gzip_bomb());
    assert!(bomb.len() < 256 << 10, "the bomb itself is under the cap");
    let calls = Arc::new(Mutex::new(0u32));
    let c2 = calls.clone();
    let url = serve(move |_| {
        let mut n = c2.lock().unwrap();
        *n += 1;
        match *n {
            1 => Script::Big { len: 8 << 20 },
            2 => Script::Endless,
            3 => Script::Gzip(bomb.clone()),
            _ => Script::Reply(200, GOOD.into()),
        }
    })
    .await;
    let client = client(&url, Duration::from_secs(10), 256 << 10);
    for _ in 0..3 {
        let started = Instant::now();
        let e = client
            .fetch(EventType::ItemUsages, &reset())
            .await
            .err()
            .expect("over the cap");
        assert!(matches!(e, ApiError::TooLarge(n) if n == 256 << 10), "{e}");
        assert_eq!(e.action(), Action::Retry);
        assert!(e.to_string().contains("max_response_bytes"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The same client retries and gets the page.
    let page = client.fetch(EventType::ItemUsages, &reset()).await.unwrap();
    assert_eq!(page.envelope().unwrap().items, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_dripping_servers_time_out_and_others_continue() {
    let url = serve(|path| {
        if path.ends_with("signinattempts") {
            Script::Silent
        } else if path.ends_with("itemusages") {
            Script::Drip
        } else {
            Script::Reply(200, GOOD.into())
        }
    })
    .await;
    let timeout = Duration::from_millis(800);
    let client = client(&url, timeout, 1 << 20);
    let started = Instant::now();
    let timed = |kind| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let r = client.fetch(kind, &reset()).await;
            (r.err(), t.elapsed())
        }
    };
    let (silent, drip, good) = tokio::join!(
        timed(EventType::SignInAttempts),
        timed(EventType::ItemUsages),
        async {
            let t = Instant::now();
            let page = client
                .fetch(EventType::AuditEvents, &reset())
                .await
                .unwrap();
            (page.envelope().unwrap().items, t.elapsed())
        }
    );
    // The healthy stream is not held up by the hung ones.
    assert_eq!(good.0, 1);
    assert!(good.1 < timeout, "healthy request took {:?}", good.1);
    for (e, took) in [silent, drip] {
        let e = e.expect("a hung response must fail");
        assert!(matches!(e, ApiError::Network(_)), "{e}");
        assert_eq!(e.action(), Action::Retry);
        assert!(
            e.to_string().to_lowercase().contains("timed out") || e.to_string().contains("timeout"),
            "{e}"
        );
        assert!(took >= timeout && took < timeout * 3, "{took:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn error_statuses_and_garbage_are_classified() {
    let cases: Vec<(u16, &[u8], Action)> = vec![
        (500, b"<html>oops</html>", Action::Retry),
        (502, b"", Action::Retry),
        (
            503,
            br#"{"status":503,"message":"Service Unavailable"}"#,
            Action::Retry,
        ),
        (
            429,
            br#"{"Error":{"Message":"Too Many Requests"}}"#,
            Action::RateLimited,
        ),
        (
            400,
            br#"{"status":400,"message":"Bad Request"}"#,
            Action::Rejected,
        ),
        (401, b"\xff\xfe not json", Action::Unauthorized),
    ];
    let shared = Arc::new(Mutex::new(Vec::<(u16, Vec<u8>)>::new()));
    let s2 = shared.clone();
    let url = serve(move |_| {
        let (st, body) = s2.lock().unwrap().remove(0);
        Script::Reply(st, body)
    })
    .await;
    let client = client(&url, Duration::from_secs(5), 1 << 20);
    for (status, body, action) in cases {
        shared.lock().unwrap().push((status, body.to_vec()));
        let e = client
            .fetch(EventType::AuditEvents, &reset())
            .await
            .err()
            .unwrap();
        assert_eq!(e.action(), action, "{status}: {e}");
        assert!(e.to_string().starts_with(&format!("HTTP {status}")), "{e}");
    }
    // 200 with a body that is not an envelope: a clear error, not a panic.
    for body in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        br#"{"items":{"a":1}}"#,
        br#"{"items":[1,"#,
    ] {
        shared.lock().unwrap().push((200, body.to_vec()));
        let page = client
            .fetch(EventType::AuditEvents, &reset())
            .await
            .unwrap();
        let e = page.envelope().expect_err("not an envelope");
        assert!(e.to_string().contains("invalid response JSON"), "{e}");
    }
}

/// A redirect is not followed: it could take the request off HTTPS or to another host with
/// the cursor. It needs a person, as a 404 does, and says where it pointed.
#[tokio::test]
async fn redirects_are_reported_not_followed() {
    let followed = Arc::new(Mutex::new(0u32));
    let seen = followed.clone();
    let url = serve(move |path| {
        if path.starts_with("/elsewhere") {
            *seen.lock().unwrap() += 1;
            Script::Reply(200, GOOD.into())
        } else {
            let status = if path.ends_with("itemusages") {
                301
            } else {
                307
            };
            Script::Redirect(status, "/elsewhere".into())
        }
    })
    .await;
    let client = client(&url, Duration::from_secs(5), 1 << 20);
    for kind in [EventType::ItemUsages, EventType::AuditEvents] {
        let e = client
            .fetch(kind, &reset())
            .await
            .err()
            .expect("a redirect fails");
        assert_eq!(e.action(), Action::NotFound, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("a redirect to /elsewhere, not followed"),
            "{msg}"
        );
    }
    assert_eq!(*followed.lock().unwrap(), 0, "no redirect was followed");
}

/// What a server writes into its errors reaches the logs, so it must not leak the token it
/// echoes, forge log lines or colour a terminal, or fill the disk; and the identifiers
/// introspection returns name state files.
#[tokio::test]
async fn server_text_is_redacted_escaped_and_cut_and_ids_checked() {
    let message = format!(
        "bad token: Bearer hostile-token\n2026-01-01T00:00:00Z INFO op_events: forged\u{1b}[31m{}",
        "x".repeat(1 << 20)
    );
    let error = serde_json::json!({ "status": 401, "message": message }).to_string();
    let introspections = Arc::new(Mutex::new(0u32));
    let seen = introspections.clone();
    let url = serve(move |path| {
        if path.contains("introspect") {
            let mut n = seen.lock().unwrap();
            *n += 1;
            let account = if *n == 1 { "../../etc/x" } else { "ACCT" };
            let body = format!(
                r#"{{"uuid":"I","features":["itemusages\u001b[2J"],"account_uuid":"{account}"}}"#
            );
            Script::Reply(200, body.into())
        } else if path.ends_with("auditevents") {
            Script::Redirect(302, "/?token=hostile-token".into())
        } else {
            Script::Reply(401, error.clone().into())
        }
    })
    .await;
    let client = client(&url, Duration::from_secs(5), 4 << 20);
    for kind in [EventType::ItemUsages, EventType::AuditEvents] {
        let e = client.fetch(kind, &reset()).await.err().expect("refused");
        let shown = e.to_string();
        assert!(!shown.contains("hostile-token"), "{kind}: {shown}");
        assert!(!shown.contains(char::is_control), "{kind}: {shown:?}");
        assert!(shown.len() < 1000, "{kind}: {} bytes", shown.len());
    }
    let e = client
        .introspect()
        .await
        .expect_err("a path is no account uuid");
    assert!(
        e.to_string()
            .contains("`account_uuid` that is not an identifier"),
        "{e}"
    );
    let intro = client.introspect().await.unwrap();
    assert_eq!(intro.features, ["itemusages\\u{1b}[2J"]);
}

/// One item with bytes that are not UTF-8 must not cost the rest of the page.
#[tokio::test]
async fn invalid_utf8_in_one_item_keeps_the_others() {
    let body = b"{\"cursor\":\"c\",\"has_more\":false,\"items\":[{\"uuid\":\"A\"},{\"uuid\":\"B\",\"name\":\"\xff\xfe\"},{\"uuid\":\"C\"}]}".to_vec();
    let url = serve(move |_| Script::Reply(200, body.clone())).await;
    let client = client(&url, Duration::from_secs(5), 1 << 20);
    let page = client.fetch(EventType::ItemUsages, &reset()).await.unwrap();
    let mut uuids = Vec::new();
    page.parse(&mut Tape::default(), |item| {
        let item = item.expect("a parsed item");
        let Node::Key { name, .. } = item.node(1) else {
            panic!("an object with a first member")
        };
        assert_eq!(name.raw(), "uuid");
        let Node::Str(uuid) = item.node(2) else {
            panic!("a string uuid")
        };
        uuids.push(uuid.raw().to_owned());
    })
    .expect("one bad item must not fail the page");
    assert_eq!(uuids, ["A", "B", "C"]);
}

#[test]
fn deep_nesting_and_huge_strings_in_items_are_bounded() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deep = format!(
        r#"{{"cursor":"c","items":[{{"uuid":"A","x":{}1{}}},{{"uuid":"B"}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let huge = format!(
        r#"{{"cursor":"c","items":[{{"uuid":"A","x":"{}"}},{{"uuid":"B"}}]}}"#,
        "x".repeat(4 << 20)
    );
    rt.block_on(async {
        let bodies = Arc::new(Mutex::new(vec![deep.into_bytes(), huge.into_bytes()]));
        let url = serve(move |_| Script::Reply(200, bodies.lock().unwrap().remove(0))).await;
        let client = client(&url, Duration::from_secs(10), 8 << 20);
        for _ in 0..2 {
            let page = client.fetch(EventType::ItemUsages, &reset()).await.unwrap();
            // Either both items or a clear error: never a stack overflow or a panic.
            match page.envelope() {
                Ok(e) => assert_eq!(e.items, 2),
                Err(e) => assert!(e.to_string().contains("invalid response JSON"), "{e}"),
            }
        }
    });
}

/// Arbitrary JSON, shaped like an envelope some of the time.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,10}",
                    Just("uuid".to_owned()),
                    Just("items".to_owned())
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn envelope() -> impl Strategy<Value = Vec<u8>> {
    use serde_json::{Value, json};
    prop_oneof![
        json().prop_map(|v| v.to_string().into_bytes()),
        (
            prop::option::of(json()),
            prop::option::of(json()),
            prop::option::of(prop::collection::vec(json(), 0..10))
        )
            .prop_map(|(cursor, has_more, items)| {
                let mut m = serde_json::Map::new();
                if let Some(c) = cursor {
                    m.insert("cursor".into(), c);
                }
                if let Some(h) = has_more {
                    m.insert("has_more".into(), h);
                }
                if let Some(i) = items {
                    m.insert("items".into(), Value::Array(i));
                }
                Value::Object(m).to_string().into_bytes()
            }),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(json(), 0..10).prop_map(|items| {
            json!({"cursor": "c", "has_more": true, "items": items})
                .to_string()
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any 200 body: `envelope()` answers Ok or a clear error; a well-formed envelope yields every
    /// item, each re-parseable as JSON.
    #[test]
    fn envelope_parser_never_panics(body in envelope()) {
        thread_local! {
            static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all().build().unwrap();
            static SERVER: (String, Arc<Mutex<Vec<u8>>>) = {
                let slot = Arc::new(Mutex::new(Vec::new()));
                let s2 = slot.clone();
                let url = RT.with(|rt| rt.block_on(serve(move |_| Script::Reply(200, s2.lock().unwrap().clone()))));
                (url, slot)
            };
        }
        let (url, slot) = SERVER.with(|s| s.clone());
        *slot.lock().unwrap() = body.clone();
        let client = client(&url, Duration::from_secs(5), 1 << 20);
        RT.with(|rt| rt.block_on(async {
            let page = client.fetch(EventType::SignInAttempts, &reset()).await.unwrap();
            let expected = serde_json::from_slice::<serde_json::Value>(&body).ok();
            // Each item as the parser handed it over: member count for objects, else None.
            let mut seen = Vec::new();
            let parsed = page.parse(&mut Tape::default(), |item| {
                seen.push(match item.map(|item| item.node(0)) {
                    Ok(Node::Object { len, .. }) => Some(len as usize),
                    _ => None,
                });
            });
            match parsed {
                Ok(env) => {
                    let want: Vec<Option<usize>> = expected
                        .as_ref()
                        .and_then(|v| v.get("items"))
                        .and_then(|i| i.as_array())
                        .map_or_else(Vec::new, |items| {
                            items.iter().map(|i| i.as_object().map(|o| o.len())).collect()
                        });
                    prop_assert_eq!(env.items, want.len());
                    prop_assert_eq!(seen, want);
                }
                Err(e) => prop_assert!(e.to_string().contains("invalid response JSON"), "{}", e),
            }
            Ok(())
        }))?;
    }
}

/// End to end: a page mixing usable items with items of the wrong type, missing or wrong fields,
/// deep nesting and invalid UTF-8. The collector reports and skips what it cannot use, delivers
/// the rest of the page, checkpoints past it and does not get stuck.
#[test]
fn collector_delivers_the_rest_of_a_hostile_page() {
    let mut page = br#"{"cursor":"c1","has_more":false,"items":[
        {"uuid":"GOOD-A","timestamp":"2026-01-01T00:00:00Z","used_version":1},
        42, "text", null, [], [1,2],
        {"uuid":"GOOD-B","timestamp":"not a time"},
        {"uuid":7,"timestamp":12},
        {"uuid":"BIG","n":1e400}, {"uuid":"LONE","s":"\ud800"},
        {"uuid":"DEEP","timestamp":"2026-01-01T00:00:01Z","x":"#
        .to_vec();
    page.extend_from_slice("[".repeat(5000).as_bytes());
    page.extend_from_slice("]".repeat(5000).as_bytes());
    page.extend_from_slice(b"},{\"uuid\":\"UTF8\",\"user\":{\"name\":\"\xff\xfe\"}},");
    page.extend_from_slice(br#"{"uuid":"GOOD-C","timestamp":"2026-01-01T00:00:02Z"}]}"#);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = Arc::new(Mutex::new(true));
    let url = rt.block_on(serve(move |path| {
        if path.contains("introspect") {
            return Script::Reply(200, INTROSPECT.to_vec());
        }
        let mut first = first.lock().unwrap();
        if std::mem::take(&mut *first) {
            Script::Reply(200, page.clone())
        } else {
            Script::Reply(
                200,
                br#"{"cursor":"c1","has_more":false,"items":[]}"#.to_vec(),
            )
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let (collector, logs) = collect_itemusages(&url, state.path(), &[], false);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !collector.is_caught_up() && Instant::now() < deadline {
        if let Some(b) = collector.take_timeout(LIMITS, Duration::from_millis(50)) {
            out.extend_from_slice(&b.to_vec());
            collector.ack(b.ack);
        }
    }
    assert!(
        collector.is_caught_up(),
        "the stream got stuck on a hostile page"
    );
    collector.shutdown(Duration::from_secs(5));
    let uuids: Vec<String> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).expect("every line is JSON");
            v["event"]["uuid"].to_string()
        })
        .collect();
    for want in ["GOOD-A", "GOOD-B", "GOOD-C", "UTF8"] {
        assert!(
            uuids.iter().any(|u| u.contains(want)),
            "{want} missing from {uuids:?}"
        );
    }
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    // The five non-objects, the number beyond f64, the lone surrogate and the 5000-deep item
    // were reported, one line each, and skipped.
    assert!(
        !uuids
            .iter()
            .any(|u| ["BIG", "LONE", "DEEP"].iter().any(|s| u.contains(s))),
        "{uuids:?}"
    );
    let skipped = logs.lines().filter(|l| l.contains("skipping")).count();
    assert_eq!(skipped, 8, "{uuids:?}\n{logs}");
    // The cursor after the page was checkpointed: nothing would be fetched twice.
    let saved: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(saved.len(), 1);
    let file = std::fs::read_to_string(&saved[0]).unwrap();
    assert!(file.contains("\"c1\""), "{file}");
}

const LIMITS: BatchLimits = BatchLimits {
    max_records: 100,
    max_bytes: 1 << 20,
};

/// A collector of item usages from the server at `url` in raw format, polling every 100 ms,
/// with `settings` on top (and `--once`'s failures if `once`); and its logs.
fn collect_itemusages(
    url: &str,
    state: &std::path::Path,
    settings: &[(&str, &str)],
    once: bool,
) -> (Collector, Arc<Mutex<Vec<u8>>>) {
    let mut config = Config::from_pairs(
        [
            ("base_url", url),
            ("state_dir", state.to_str().unwrap()),
            ("events", "itemusages"),
            ("format", "raw"),
            ("poll_interval", "100ms"),
        ]
        .into_iter()
        .chain(settings.iter().copied()),
    )
    .unwrap();
    config.token = Some(SecretString::from("hostile.page.token"));
    config.retry_fatal = !once;
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = logs.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish(),
    );
    let collector = Collector::start(config, Target::Ndjson, Some(dispatch)).unwrap();
    (collector, logs)
}

const INTROSPECT: &[u8] =
    br#"{"uuid":"I","issued_at":"2026-01-01T00:00:00Z","features":["itemusages"],"account_uuid":"ACCT"}"#;

/// Counts the event requests `script` answers (introspection answered as [`INTROSPECT`]).
async fn serve_counted<F>(script: F) -> (String, Arc<Mutex<u32>>)
where
    F: Fn(&str) -> Script + Send + Sync + 'static,
{
    let count = Arc::new(Mutex::new(0u32));
    let seen = count.clone();
    let url = serve_requests(move |path, body| {
        if path.contains("introspect") {
            return Script::Reply(200, INTROSPECT.to_vec());
        }
        *seen.lock().unwrap() += 1;
        script(body)
    })
    .await;
    (url, count)
}

/// A page of more items than the API serves (tiny ones, which would make records many times
/// their size) is refused before they are encoded: nothing of it is delivered, and the
/// stream reports it.
#[test]
fn a_page_of_more_items_than_the_api_serves_is_refused() {
    let items = vec!["{}"; 1001].join(",");
    let failure = refused(format!(
        r#"{{"cursor":"c1","has_more":false,"items":[{items}]}}"#
    ));
    assert!(
        failure.contains("the page holds 1001 items, more than the 1000"),
        "{failure}"
    );
}

/// The failure a stream reports when every answer is `page`, which it must refuse (`--once`,
/// retries quick): nothing of it is delivered.
fn refused(page: String) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, _) = rt.block_on(serve_counted(move |_| {
        Script::Reply(200, page.clone().into_bytes())
    }));
    let state = tempfile::tempdir().unwrap();
    let retries = [("retry_initial", "10ms"), ("retry_max", "20ms")];
    let (collector, _) = collect_itemusages(&url, state.path(), &retries, true);
    let failure = wait_for(|| collector.failure(), Duration::from_secs(20));
    assert!(collector.take_timeout(LIMITS, Duration::ZERO).is_none());
    collector.shutdown(Duration::from_secs(5));
    failure
}

/// `has_more` with the cursor just sent, items or not, would page forever: the stream is
/// caught up and polls.
#[test]
fn has_more_with_the_same_cursor_is_caught_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, requests) = rt.block_on(serve_counted(|_| {
        Script::Reply(
            200,
            br#"{"cursor":"c1","has_more":true,"items":[{"uuid":"A"}]}"#.to_vec(),
        )
    }));
    let state = tempfile::tempdir().unwrap();
    let (collector, _) = collect_itemusages(&url, state.path(), &[("poll_interval", "1h")], false);
    let mut records = 0;
    wait_for(
        || {
            if let Some(batch) = collector.take_timeout(LIMITS, Duration::from_millis(10)) {
                records += batch.records;
                collector.ack(batch.ack);
            }
            collector.is_caught_up().then_some(())
        },
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(records, 1, "A once, its re-read dropped");
    assert_eq!(*requests.lock().unwrap(), 2, "the reset and one cursor");
}

/// Empty pages that each say `has_more`, with a new cursor every time, would take every
/// request the budget allows and keep `--once` from ending: after ten in a row the stream is
/// caught up and polls, saying so once.
#[test]
fn endless_empty_pages_with_has_more_are_caught_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = std::sync::atomic::AtomicU32::new(0);
    let (url, requests) = rt.block_on(serve_counted(move |_| {
        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let page = format!(r#"{{"cursor":"c{n}","has_more":true,"items":[]}}"#);
        Script::Reply(200, page.into_bytes())
    }));
    let state = tempfile::tempdir().unwrap();
    let (collector, logs) =
        collect_itemusages(&url, state.path(), &[("poll_interval", "1h")], false);
    wait_for(
        || {
            if let Some(batch) = collector.take_timeout(LIMITS, Duration::from_millis(10)) {
                collector.ack(batch.ack);
            }
            collector.is_caught_up().then_some(())
        },
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(*requests.lock().unwrap(), 10, "the reset and nine cursors");
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert_eq!(logs.matches("10 empty pages in a row").count(), 1, "{logs}");
    collector.shutdown(Duration::from_secs(5));
}

/// A cursor is saved and sent back with every request: one of megabytes is refused as a bad
/// response, not written to the state file.
#[test]
fn a_huge_cursor_is_refused() {
    let failure = refused(format!(
        r#"{{"cursor":"{}","has_more":false,"items":[{{"uuid":"A"}}]}}"#,
        "c".repeat(65 * 1024)
    ));
    assert!(
        failure.contains("cursor is 66560 bytes long, more than the 65536 taken"),
        "{failure}"
    );
}

/// A server that rejects every cursor, even one from the reset it just served, would have the
/// stream reset and re-read at once, forever, spending the account's request budget: the
/// stream backs off and, after a few, reports it (`--once` ends on it).
#[test]
fn a_server_rejecting_every_cursor_is_backed_off_from() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, requests) = rt.block_on(serve_counted(|body| {
        if body.contains("cursor") {
            Script::Reply(400, br#"{"status":400,"message":"Bad Request"}"#.to_vec())
        } else {
            Script::Reply(
                200,
                br#"{"cursor":"c1","has_more":true,"items":[{"uuid":"A"}]}"#.to_vec(),
            )
        }
    }));
    let state = tempfile::tempdir().unwrap();
    let settings = [
        ("retry_initial", "50ms"),
        ("retry_max", "100ms"),
        ("rate_limit_per_minute", "0"),
        ("rate_limit_per_hour", "0"),
    ];
    let (collector, logs) = collect_itemusages(&url, state.path(), &settings, true);
    let failure = wait_for(|| collector.failure(), Duration::from_secs(20));
    assert!(
        failure.contains("6 cursors in a row were rejected"),
        "{failure}"
    );
    // Six resets and six rejected cursors, the waits in between adding up to 0.3 s or more.
    assert_eq!(*requests.lock().unwrap(), 12);
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert_eq!(
        logs.matches("the saved cursor was rejected").count(),
        1,
        "{logs}"
    );
}

/// Polls `f` every 10 ms until it has something, or panics after `within`.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>, within: Duration) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "nothing within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
