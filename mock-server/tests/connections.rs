//! Connections, over HTTP and HTTPS: a client that sends its request head slowly, or not at
//! all, or idles between requests, or stalls mid-body, loses its connection after the header
//! read timeout.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use op_events_mock::{MockConfig, MockServer, Tls};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TIMEOUT: Duration = Duration::from_millis(500);
/// Far more than `TIMEOUT`, far less than the default (30 s): a close before this is the
/// configured timeout at work.
const PATIENCE: Duration = Duration::from_secs(5);

fn mock(tls: Option<Tls>) -> MockServer {
    common::start(MockConfig {
        events_per_type: 1,
        header_read_timeout: Some(TIMEOUT),
        tls,
        ..MockConfig::default()
    })
}

/// How long until the server closes `stream` (whatever it sends first, such as a 408).
fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still open after {PATIENCE:?}")
            }
            Err(_) => return started.elapsed(),
        }
    }
}

#[test]
fn slow_silent_and_idle_http_clients_are_cut_off() {
    let mock = mock(None);
    let mut slow = TcpStream::connect(mock.addr()).unwrap();
    slow.write_all(b"POST /api/v2/auditevents HTT").unwrap();
    let mut silent = TcpStream::connect(mock.addr()).unwrap();
    assert!(closed_after(&mut slow) < PATIENCE);
    assert!(closed_after(&mut silent) < PATIENCE);

    // A prompt client is served; its keep-alive connection, left idle, is closed after the
    // same time.
    let mut prompt = TcpStream::connect(mock.addr()).unwrap();
    prompt
        .write_all(b"GET /_mock/clock HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0; 12];
    prompt.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let idle = closed_after(&mut prompt);
    assert!(idle >= TIMEOUT / 2 && idle < PATIENCE, "{idle:?}");
}

/// A head in time, then a body that stalls: 408 in the version's shape (the admin API's for
/// `/_mock/`), saying `Connection: close`, and the connection closes.
#[test]
fn a_body_that_stalls_is_answered_408_and_its_connection_closed() {
    let mock = mock(None);
    let token = mock.token("acme", &common::ALL);
    for (path, shape) in [
        ("/api/v2/itemusages", "/message"),
        ("/api/v1/itemusages", "/Error/Message"),
        ("/_mock/clock", "/status"),
    ] {
        let mut stalled = TcpStream::connect(mock.addr()).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 100\r\n\r\n{{"
        );
        stalled.write_all(head.as_bytes()).unwrap();
        stalled.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut answer = Vec::new();
        let started = Instant::now();
        // Ok at the close; a timeout means the connection is still open.
        stalled
            .read_to_end(&mut answer)
            .unwrap_or_else(|e| panic!("{path}: still open after {PATIENCE:?} ({e})"));
        assert!(started.elapsed() < PATIENCE, "{path}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        let head = answer.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{path}: {answer}"
        );
        let body: serde_json::Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{path}: {e}: {answer}"));
        let expected = if path.starts_with("/_mock/") {
            serde_json::json!(408)
        } else {
            serde_json::json!("Request Timeout")
        };
        assert_eq!(body.pointer(shape), Some(&expected), "{path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_after_the_tls_handshake_is_cut_off() {
    let tls = Tls::self_signed(&["127.0.0.1"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(tls.ca_pem().unwrap().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mock = mock(Some(tls));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("handshake");
    stream
        .write_all(b"POST /api/v2/auditevents HTT")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let mut rest = Vec::new();
    // Ok at a clean close, Err when the peer drops without close_notify: closed either way.
    let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "still open after {PATIENCE:?}");
}

/// The answer on `stream` once it is whole (its head and the body its `Content-Length`
/// gives), or a panic saying no whole answer came within `PATIENCE`.
fn answer(stream: &mut TcpStream, what: &str) -> String {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(length) = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")?
                    .parse()
                    .ok()
            })
            && body.len() >= length
        {
            return text;
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("{what}: closed before a whole answer: {text}"),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{what}: no whole answer within {PATIENCE:?} ({e}): {text}"),
        }
    }
}

/// A body declared over 2 MiB is answered 413 as soon as the head says so, in the path's
/// error shape, rather than awaited: the server used to wait for it and answer 408 after the
/// header timeout (30 s here). One of exactly 2 MiB is read as usual.
#[test]
fn a_body_declared_over_2_mib_is_answered_413_at_once() {
    let mock = common::small(1);
    let token = mock.token("acme", &common::ALL);
    for (path, length, shape, refused) in [
        (
            "/api/v2/itemusages",
            3 << 20,
            "/message",
            json!("Payload Too Large"),
        ),
        (
            "/api/v1/itemusages",
            1u64 << 40,
            "/Error/Message",
            json!("Payload Too Large"),
        ),
        ("/_mock/clock", (2 << 20) + 1, "/status", json!(413)),
    ] {
        let what = format!("{path} with Content-Length {length}");
        let mut stream = TcpStream::connect(mock.addr()).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let answer = answer(&mut stream, &what);
        assert!(answer.starts_with("HTTP/1.1 413"), "{what}: {answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(body.pointer(shape), Some(&refused), "{what}: {answer}");
        if path.starts_with("/api/") {
            assert!(
                head.contains(&format!(
                    "x-op-events-mock-reason: the request body is declared {length} bytes long, \
                     over 2 MiB; send it in several smaller requests"
                )),
                "{what}: {head}"
            );
        }
    }
    // A client that sends its body at once, not waiting to be asked, is still writing it when
    // the 413 comes: the server reads on (and drops what it reads), so that the client can
    // finish and read the 413. One that asks first (`Expect: 100-continue`) gets the 413 alone.
    for (expect, body) in [
        ("", vec![b' '; 6 << 20]),
        ("Expect: 100-continue\r\n", vec![]),
    ] {
        let what = format!("a body of 6 MiB, {expect:?}");
        let mut stream = TcpStream::connect(mock.addr()).unwrap();
        let head = format!(
            "POST /api/v2/itemusages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\n{expect}Connection: close\r\n\r\n",
            6 << 20
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .write_all(&body)
            .unwrap_or_else(|e| panic!("{what}: the server stopped reading it: {e}"));
        let answer = answer(&mut stream, &what);
        assert!(answer.starts_with("HTTP/1.1 413"), "{what}: {answer}");
    }
    let mut exact = r#"{"limit":1,"pad":""}"#.to_owned();
    exact.insert_str(exact.len() - 2, &"x".repeat((2 << 20) - exact.len()));
    assert_eq!(exact.len(), 2 << 20);
    let mut stream = TcpStream::connect(mock.addr()).unwrap();
    let head = format!(
        "POST /api/v2/itemusages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        exact.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(exact.as_bytes()).unwrap();
    let answer = answer(&mut stream, "a body of 2 MiB");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// At most `MAX_BODY_READS` request bodies are read at once: while that many stall mid-body,
/// another body waits its turn (it used to be read at once, so that 400 stalled uploads of
/// 2 MiB held 842 MB), and is served once a stalled one is answered 408. The wait is not
/// counted against its own body timeout, and a request without a body needs no turn.
#[test]
fn bodies_are_read_at_most_max_body_reads_at_once() {
    let mock = mock(None);
    let stalled: Vec<TcpStream> = (0..op_events_mock::MAX_BODY_READS)
        .map(|_| {
            let mut stream = TcpStream::connect(mock.addr()).unwrap();
            stream
                .write_all(b"POST /_mock/clock HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
                .unwrap();
            stream
        })
        .collect();
    // Let the server take every head and start reading every body.
    std::thread::sleep(TIMEOUT / 2);
    let started = Instant::now();
    let mut bodiless = TcpStream::connect(mock.addr()).unwrap();
    bodiless
        .write_all(b"GET /_mock/clock HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(answer(&mut bodiless, "GET").starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < TIMEOUT / 4, "{:?}", started.elapsed());

    let mut next = TcpStream::connect(mock.addr()).unwrap();
    let body = r#"{"advance_seconds":0}"#;
    let head = format!(
        "POST /_mock/clock HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    next.write_all(head.as_bytes()).unwrap();
    let answer = answer(&mut next, "the next body");
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited >= TIMEOUT / 4,
        "answered after {waited:?}, while {} bodies stalled",
        op_events_mock::MAX_BODY_READS
    );
    drop(stalled);
}
