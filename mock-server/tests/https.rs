//! HTTPS: the API and the admin API over TLS to clients that trust the mock's CA, with a
//! made-up CA or certificate files; everyone else is refused at the handshake, and a client
//! that never finishes one holds up nobody.

mod common;

use std::time::Duration;

use op_events_mock::{MockConfig, MockServer, Tls, TlsError};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::Value;

fn https_mock(tls: Tls, events: usize) -> MockServer {
    common::start(MockConfig {
        events_per_type: events,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        tls: Some(tls),
        ..MockConfig::default()
    })
}

/// Every item of one event type, paged with `client`.
async fn drain(client: &reqwest::Client, mock: &MockServer, kind: &str) -> usize {
    let token = mock.token("acme", &[kind]);
    let path = format!("/api/v2/{kind}");
    let reset = r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#;
    common::drain_with(client, mock, &path, &token, reset)
        .await
        .0
        .len()
}

/// Each made CA has a name of its own. Clients that pick an issuer by name, as OpenSSL does,
/// failed when one CA file held two mocks' CAs (`curl --cacert` exit 35 for the mock whose CA
/// came second).
#[test]
fn every_made_ca_has_its_own_name() {
    let subject = |tls: &Tls| {
        let pem = tls.ca_pem().expect("a made CA");
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        webpki::anchor_from_trusted_cert(&der)
            .unwrap()
            .subject
            .as_ref()
            .to_vec()
    };
    let one = Tls::self_signed(&["127.0.0.1"]).unwrap();
    let other = Tls::self_signed(&["127.0.0.1"]).unwrap();
    assert_ne!(subject(&one), subject(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_trust_the_ca_get_everything_over_https() {
    let tls = Tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let ca = tls.ca_pem().expect("a made CA").to_owned();
    let mock = https_mock(tls, 2500);
    assert!(
        mock.url().starts_with("https://127.0.0.1:"),
        "{}",
        mock.url()
    );
    let client = common::https_client(&ca);
    for kind in common::ALL {
        assert_eq!(drain(&client, &mock, kind).await, 2500, "{kind}");
    }
    // The admin API still knows a loopback peer when it comes over TLS.
    let stats: Value = client
        .get(format!("{}/_mock/stats", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["events_served"], 7500);
    let by_name = client
        .get(format!(
            "https://localhost:{}/_mock/clock",
            mock.addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_clients_are_refused_and_silent_ones_hold_up_nobody() {
    let tls = Tls::self_signed(&["127.0.0.1"]).unwrap();
    let ca = tls.ca_pem().unwrap().to_owned();
    let mock = https_mock(tls, 10);
    let clock = format!("{}/_mock/clock", mock.url());

    // Another CA does not vouch for the mock; plain HTTP gets no HTTP answer.
    let other = Tls::self_signed(&["127.0.0.1"]).unwrap();
    let stranger = common::https_client(other.ca_pem().unwrap());
    let e = stranger.get(&clock).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let plain = format!("http://{}/_mock/clock", mock.addr());
    assert!(common::client().get(&plain).send().await.is_err());

    // Connections that never start a handshake, while a real client is served at once.
    let silent: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(mock.addr()).unwrap())
        .collect();
    let client = common::https_client(&ca);
    let answer = tokio::time::timeout(Duration::from_secs(5), client.get(&clock).send())
        .await
        .expect("served beside silent connections")
        .unwrap();
    assert_eq!(answer.status(), 200);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_are_served_and_bad_ones_named() {
    // A CA and a certificate for 127.0.0.1 it signed, as a user would bring them.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let tls = Tls::from_pem_files(&cert_file, &key_file).unwrap();
    assert_eq!(tls.ca_pem(), None, "the caller knows its CA");
    let mock = https_mock(tls, 40);
    let client = common::https_client(&ca.pem());
    assert_eq!(drain(&client, &mock, "auditevents").await, 40);

    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (cert, key, named) in [
        (&missing, &key_file, &missing),
        (&empty, &key_file, &empty),
        (&cert_file, &cert_file, &cert_file),
        (&cert_file, &missing, &missing),
    ] {
        let e = Tls::from_pem_files(cert, key).unwrap_err();
        assert!(matches!(e, TlsError::File { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&*named.to_string_lossy()), "{msg}");
    }
}
