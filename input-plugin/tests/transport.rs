//! Transport rules: HTTPS with certificate verification is the only way off loopback. The mock,
//! serving HTTPS with a certificate from a CA of its own, shows that an unknown issuer and a
//! wrong host name are refused with a hint at what to change, and that `ca_file` makes a
//! private CA work. The client speaks HTTP/1.1 only, and says so in ALPN.

mod connect_proxy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use op_events_input::api::{Action, ApiError, Client, SetupError};
use op_events_input::config::Config;
use op_events_input::token::Token;
use op_events_mock::{MockConfig, MockServer, Tls};
use secrecy::SecretString;

/// The mock over HTTPS with a certificate for `names`, and its CA (PEM) written into `dir`.
fn https_mock(names: &[&str], dir: &Path) -> (MockServer, PathBuf) {
    let tls = Tls::self_signed(names).unwrap();
    let ca = dir.join("mock-ca.pem");
    std::fs::write(&ca, tls.ca_pem().unwrap()).unwrap();
    let mock = MockServer::start(MockConfig {
        events_per_type: 1,
        tls: Some(tls),
        ..MockConfig::default()
    })
    .unwrap();
    (mock, ca)
}

/// For checks that send nothing.
const FAKE_TOKEN: &str = "header.payload.transport-secret";

fn config(base_url: &str, ca_file: Option<&Path>) -> Config {
    Config {
        base_url: Some(base_url.parse().unwrap()),
        ca_file: ca_file.map(Path::to_path_buf),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

fn token(secret: &str) -> Token {
    Token::new(SecretString::from(secret.to_owned())).unwrap()
}

/// A token of `mock`'s.
fn mock_token(mock: &MockServer) -> Token {
    token(&mock.token("acme", &["auditevents"]))
}

/// What introspecting `mock` at `url`, with no `ca_file`, fails with.
async fn introspect_error(url: &str, mock: &MockServer) -> ApiError {
    Client::new(&config(url, None), mock_token(mock))
        .unwrap()
        .introspect()
        .await
        .unwrap_err()
}

/// The certificate error `config` meets introspecting `mock`, which must not hold the token.
async fn refused(config: &Config, mock: &MockServer) -> String {
    let secret = mock.token("acme", &["auditevents"]);
    match Client::new(config, token(&secret))
        .unwrap()
        .introspect()
        .await
    {
        Err(e @ ApiError::Certificate(_)) => {
            // Not retried like a network blip: a setting has to change.
            assert_eq!(e.action(), Action::Untrusted);
            let msg = e.to_string();
            assert!(!msg.contains(&secret), "{msg}");
            msg
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn a_private_ca_is_refused_until_ca_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, ca) = https_mock(&["localhost", "127.0.0.1"], dir.path());
    let url = format!("https://localhost:{}", mock.addr().port());

    // Public roots only: the private CA is unknown, and the error says what to give.
    let msg = refused(&config(&url, None), &mock).await;
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    assert!(msg.contains("`ca_file` (--ca-file)"), "{msg}");

    // With ca_file naming the CA: accepted, by name and by address.
    for url in [url, mock.url()] {
        let info = Client::new(&config(&url, Some(&ca)), mock_token(&mock))
            .unwrap()
            .introspect()
            .await
            .unwrap();
        assert_eq!(info.features, ["auditevents"], "{url}");
        assert_eq!(info.account_uuid, Some(mock.account_uuid("acme")));
    }
}

/// One HTTPS connection to a server offering `alpn`, which answers one request as HTTP/1.1 with
/// an introspection: which protocol ALPN settled on (none when the handshake failed).
fn serve_one(
    dir: &Path,
    alpn: &[&[u8]],
) -> (String, PathBuf, std::thread::JoinHandle<Option<Vec<u8>>>) {
    use std::io::{Read, Write};
    // A self-signed certificate, trusted as its own CA through `ca_file`.
    let (mut server, ca) = connect_proxy::loopback_tls();
    let ca_file = dir.join("self-signed.pem");
    std::fs::write(&ca_file, ca).unwrap();
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server = std::sync::Arc::new(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(server).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return None;
        }
        let mut request = Vec::new();
        let mut byte = [0u8];
        while !request.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        let body = br#"{"uuid":"INTEGRATION","features":["auditevents"]}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).unwrap();
        tls.write_all(body).unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        tls.conn.alpn_protocol().map(<[u8]>::to_vec)
    });
    (url, ca_file, handle)
}

#[tokio::test]
async fn the_client_asks_for_http_1_1_even_where_http_2_is_preferred() {
    let dir = tempfile::tempdir().unwrap();
    // Many HTTPS front ends offer both, HTTP/2 first.
    let (url, ca_file, server) = serve_one(dir.path(), &[b"h2", b"http/1.1"]);
    let info = Client::new(&config(&url, Some(&ca_file)), token(FAKE_TOKEN))
        .unwrap()
        .introspect()
        .await
        .unwrap();
    assert_eq!(info.features, ["auditevents"]);
    let alpn = server.join().unwrap();
    assert_eq!(
        alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "ALPN settled on {alpn:?}"
    );

    // A server that will speak only HTTP/2 refuses the handshake, and the error says so.
    let (url, ca_file, server) = serve_one(dir.path(), &[b"h2"]);
    let e = Client::new(&config(&url, Some(&ca_file)), token(FAKE_TOKEN))
        .unwrap()
        .introspect()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Network(m) if m.contains("NoApplicationProtocol")),
        "{e}"
    );
    assert_eq!(server.join().unwrap(), None);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, ca) = https_mock(&["localhost"], dir.path());
    // The right CA, but the certificate is for `localhost`, not 127.0.0.1.
    let msg = refused(&config(&mock.url(), Some(&ca)), &mock).await;
    assert!(msg.contains("not valid for name"), "{msg}");
    assert!(msg.contains("check `base_url`"), "{msg}");
}

/// A server presenting a CA certificate (`CA:TRUE`, as OpenSSL 3's `req -x509` makes) as its
/// own is refused whatever `ca_file` says: the hint says what certificate it needs instead, not
/// to check `ca_file`.
#[tokio::test]
async fn a_ca_certificate_presented_as_the_servers_own_gets_its_own_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut params =
        rcgen::CertificateParams::new(["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.path().join("self.pem"), dir.path().join("self.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let mock = MockServer::start(MockConfig {
        events_per_type: 1,
        tls: Some(Tls::from_pem_files(&cert_file, &key_file).unwrap()),
        ..MockConfig::default()
    })
    .unwrap();
    for ca_file in [None, Some(cert_file.as_path())] {
        let msg = refused(&config(&mock.url(), ca_file), &mock).await;
        assert!(
            msg.ends_with(
                "(the server presents a CA certificate as its own: give it a leaf certificate \
                 signed by a CA (or one made with `-addext basicConstraints=critical,CA:FALSE`))"
            ),
            "{ca_file:?}: {msg}"
        );
    }
}

#[tokio::test]
async fn another_ca_does_not_vouch_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, _) = https_mock(&["127.0.0.1"], dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, other_ca) = https_mock(&["127.0.0.1"], other.path());
    let msg = refused(&config(&mock.url(), Some(&other_ca)), &mock).await;
    assert!(msg.contains("`ca_file`"), "{msg}");
}

/// `https://` to a port that serves plain HTTP: the handshake meets no TLS record. A setting
/// to change (the scheme or the port), which retrying cannot fix: said so, at once.
#[tokio::test]
async fn plain_http_server_behind_an_https_url_is_a_clear_error() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 1,
        ..MockConfig::default()
    })
    .unwrap();
    let url = format!("https://localhost:{}", mock.addr().port());
    let started = std::time::Instant::now();
    let e = introspect_error(&url, &mock).await;
    assert!(matches!(e, ApiError::NoTls(_)), "{e}");
    assert_eq!(e.action(), Action::Untrusted);
    let msg = e.to_string();
    assert!(
        msg.ends_with(&format!(
            "(the server at localhost:{} does not speak TLS on that port, plain HTTP perhaps: \
             give `base_url` the port that serves HTTPS, or http:// for a server of plain HTTP \
             (loopback only, unless `insecure_http`))",
            mock.addr().port()
        )),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// `http://` to a port that serves HTTPS: its TLS alert is no HTTP, and the error says to use
/// https:// or check the port. Retried as an outage, since an answer that is no HTTP does not
/// prove TLS.
#[tokio::test]
async fn an_https_server_behind_an_http_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, _) = https_mock(&["127.0.0.1"], dir.path());
    let url = format!("http://127.0.0.1:{}", mock.addr().port());
    let e = introspect_error(&url, &mock).await;
    assert!(matches!(e, ApiError::Network(_)), "{e}");
    assert_eq!(e.action(), Action::Retry);
    assert!(
        e.to_string().ends_with(&format!(
            "(the server at 127.0.0.1:{} answered with something other than HTTP: if it \
             serves HTTPS on that port, use https:// in `base_url`; otherwise check the port)",
            mock.addr().port()
        )),
        "{e}"
    );
}

/// The same mistakes with the proxy: an `https://` proxy that speaks plain HTTP (a setting to
/// change, whether it tunnels to an `https://` `base_url` or forwards to a plain-HTTP one), an
/// `http://` proxy whose port speaks TLS (for a plain-HTTP `base_url`, which is forwarded, not
/// tunnelled).
#[tokio::test]
async fn a_proxy_named_with_the_wrong_scheme_is_said_to_be() {
    let dir = tempfile::tempdir().unwrap();
    let plain = MockServer::start(MockConfig::default()).unwrap();
    let (tls, _) = https_mock(&["127.0.0.1"], dir.path());
    let introspect = |base: &str, proxy: String| {
        let mut c = config(base, None);
        c.proxy = Some(proxy.parse().unwrap());
        c.insecure_http = true;
        async move {
            Client::new(&c, token(FAKE_TOKEN))
                .unwrap()
                .introspect()
                .await
                .unwrap_err()
        }
    };
    let proxy = format!("https://{}", plain.addr());
    for base in [
        "https://events.1password.com",
        "http://events.1password.com",
    ] {
        let e = introspect(base, proxy.clone()).await;
        assert_eq!(e.action(), Action::Untrusted, "{base}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("no TLS: proxy {proxy}: ")),
            "{base}: {e}"
        );
        assert!(
            e.to_string().ends_with(
                "(the proxy does not speak TLS on that port: name it http:// in `proxy` \
                 (--proxy); https:// is for a proxy that speaks TLS itself)"
            ),
            "{base}: {e}"
        );
    }

    let proxy = format!("http://{}", tls.addr());
    let e = introspect("http://events.1password.com", proxy.clone()).await;
    assert_eq!(e.action(), Action::Retry, "{e}");
    assert!(
        e.to_string().ends_with(&format!(
            "(proxy {proxy} answered with something other than HTTP: name it https:// in \
             `proxy` (--proxy) if it speaks TLS, or check its port)"
        )),
        "{e}"
    );
}

#[test]
fn plain_http_off_loopback_is_refused_without_insecure_http() {
    for url in [
        "http://example.com",
        "http://10.0.0.1:8080",
        "http://events.1password.com",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
    ] {
        let e = Client::new(&config(url, None), token(FAKE_TOKEN)).unwrap_err();
        assert!(matches!(e, SetupError::InsecureHttp(_)), "{url}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("insecure_http") && msg.contains("https"),
            "{msg}"
        );
        let mut c = config(url, None);
        c.insecure_http = true;
        assert!(
            Client::new(&c, token(FAKE_TOKEN)).is_ok(),
            "{url} with insecure_http"
        );
    }
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        assert!(
            Client::new(&config(url, None), token(FAKE_TOKEN)).is_ok(),
            "{url}"
        );
    }
    for url in ["https://example.com", "https://10.0.0.1"] {
        assert!(
            Client::new(&config(url, None), token(FAKE_TOKEN)).is_ok(),
            "{url}"
        );
    }
}

#[test]
fn bad_ca_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ca.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = dir.path().join("ca.der");
    std::fs::write(&der, cert.der()).unwrap();
    let key_file = dir.path().join("ca.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    // Base64 that decodes, to no certificate.
    let hello = dir.path().join("hello.pem");
    std::fs::write(
        &hello,
        b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases = [
        (
            garbage,
            ": a PEM block is not valid: its base64 does not decode (InvalidCharacter(33)): put \
             back an intact copy of the CA certificate",
        ),
        (
            der,
            ": holds a DER (binary) certificate, not PEM: convert it with `openssl x509 -inform \
             der -in FILE -out FILE.pem` and give FILE.pem",
        ),
        (
            key_file,
            ": holds a private key, not a certificate: give the CA's certificate (`-----BEGIN \
             CERTIFICATE-----`) instead",
        ),
        (
            hello,
            ": certificate block 1 is not valid: it holds no X.509 certificate (BadEncoding): \
             put back an intact copy of the CA certificate",
        ),
        (empty, ": no PEM certificates found"),
        (missing, ": No such file or directory (os error 2)"),
        (
            dir.path().to_path_buf(),
            ": a directory, not a regular file",
        ),
        (
            "/dev/zero".into(),
            ": a device or socket, not a regular file",
        ),
    ];
    for (path, reason) in cases {
        let c = config("https://localhost:1", Some(&path));
        let e = Client::new(&c, token(FAKE_TOKEN)).unwrap_err();
        assert!(
            matches!(e, SetupError::CaFile { .. }),
            "{}: {e}",
            path.display()
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("ca_file {}", path.display())) && msg.contains(reason),
            "{msg}"
        );
        assert!(!msg.contains("I/O error"), "the OS's words alone: {msg}");
    }
}
