//! Transport rules: HTTPS with certificate verification is the only way off loopback.
//! A throwaway TLS server on 127.0.0.1 (certificates from `rcgen`, SAN `localhost`) shows that an
//! unknown issuer and a wrong host name are refused, and that `ca_file` makes a private CA work.

use std::sync::Arc;
use std::time::Duration;

use op_events_input::api::{ApiError, Client, SetupError};
use op_events_input::config::Config;
use op_events_input::token::Token;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const INTROSPECT: &str = r#"{"uuid":"INTEGRATION","issued_at":"2026-01-01T00:00:00Z","features":["auditevents"],"account_uuid":"ACCT"}"#;

struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

/// A CA and a server certificate for `localhost` signed by it.
fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "op-events test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server,
    }
}

/// Serves HTTPS on 127.0.0.1: every request gets the introspect body. Returns the port.
async fn tls_server(config: rustls::ServerConfig) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{INTROSPECT}",
                    INTROSPECT.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn config(base_url: &str) -> Config {
    Config {
        base_url: Some(base_url.parse().unwrap()),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

fn token() -> Token {
    Token::new(SecretString::from("header.payload.transport-secret")).unwrap()
}

fn network_message(e: ApiError) -> String {
    match e {
        ApiError::Network(m) => m,
        other => panic!("expected a network error, got {other}"),
    }
}

#[tokio::test]
async fn self_signed_server_is_rejected_unless_its_ca_is_given() {
    let pki = pki();
    let port = tls_server(pki.server).await;
    let url = format!("https://localhost:{port}");

    // Public roots only: the private CA is unknown.
    let client = Client::new(&config(&url), token()).unwrap();
    let msg = network_message(client.introspect().await.unwrap_err()).to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("issuer"),
        "{msg}"
    );
    assert!(!msg.contains("transport-secret"), "{msg}");

    // With ca_file naming the CA: accepted, and the answer is parsed.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let mut c = config(&url);
    c.ca_file = Some(ca.clone());
    let info = Client::new(&c, token())
        .unwrap()
        .introspect()
        .await
        .unwrap();
    assert_eq!(info.features, ["auditevents"]);
    assert_eq!(info.account_uuid.as_deref(), Some("ACCT"));

    // The right CA but the wrong name (the certificate is for `localhost`): still refused.
    let mut c = config(&format!("https://127.0.0.1:{port}"));
    c.ca_file = Some(ca);
    let msg = network_message(
        Client::new(&c, token())
            .unwrap()
            .introspect()
            .await
            .unwrap_err(),
    );
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
}

#[tokio::test]
async fn another_ca_does_not_vouch_for_the_server() {
    let pki_server = pki();
    let other = pki();
    let port = tls_server(pki_server.server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, &other.ca_pem).unwrap();
    let mut c = config(&format!("https://localhost:{port}"));
    c.ca_file = Some(ca);
    let e = Client::new(&c, token())
        .unwrap()
        .introspect()
        .await
        .unwrap_err();
    assert!(network_message(e).to_lowercase().contains("certificate"));
}

#[tokio::test]
async fn plain_http_server_behind_an_https_url_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await;
        }
    });
    let client = Client::new(&config(&format!("https://localhost:{port}")), token()).unwrap();
    let started = std::time::Instant::now();
    let e = client.introspect().await.unwrap_err();
    assert!(matches!(e, ApiError::Network(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
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
        let e = Client::new(&config(url), token()).unwrap_err();
        assert!(matches!(e, SetupError::InsecureHttp(_)), "{url}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("insecure_http") && msg.contains("https"),
            "{msg}"
        );
        let mut c = config(url);
        c.insecure_http = true;
        assert!(Client::new(&c, token()).is_ok(), "{url} with insecure_http");
    }
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"] {
        assert!(Client::new(&config(url), token()).is_ok(), "{url}");
    }
    for url in ["https://example.com", "https://10.0.0.1"] {
        assert!(Client::new(&config(url), token()).is_ok(), "{url}");
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
    for path in [garbage, empty, missing, dir.path().to_path_buf()] {
        let mut c = config("https://localhost:1");
        c.ca_file = Some(path.clone());
        let e = Client::new(&c, token()).unwrap_err();
        assert!(
            matches!(e, SetupError::CaFile { .. }),
            "{}: {e}",
            path.display()
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("ca_file ") && msg.contains(&*path.to_string_lossy()),
            "{msg}"
        );
    }
}
