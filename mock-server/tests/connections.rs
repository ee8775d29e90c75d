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
/// `/_mock/`), and the connection closes.
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
