//! Helpers shared by the integration tests: an HTTP client and the contract schema.
#![allow(dead_code)] // each test binary uses a different subset

pub mod schema;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

use op_events_mock::{MockConfig, MockServer};
use serde_json::Value;

pub const ALL: [&str; 3] = ["signinattempts", "itemusages", "auditevents"];

/// A plain-HTTP client (reqwest still wants a rustls provider installed to build one).
pub fn client() -> reqwest::Client {
    builder().build().expect("client")
}

/// A client that leaves compressed bodies as the mock sent them.
pub fn raw_client() -> reqwest::Client {
    builder().no_gzip().build().expect("client")
}

/// A client that trusts only `ca_pem` (PEM), for a mock serving HTTPS.
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA certificate");
    builder().tls_certs_only([ca]).build().expect("client")
}

fn builder() -> reqwest::ClientBuilder {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    reqwest::Client::builder()
}

pub fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).expect("mock starts")
}

/// A small mock with rate limits off, clock at real time.
pub fn small(events: usize) -> MockServer {
    start(MockConfig {
        events_per_type: events,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        ..MockConfig::default()
    })
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn post(mock: &MockServer, path: &str, token: &str, body: &str) -> Reply {
    post_with(&client(), mock, path, token, body).await
}

/// As [`post`], with `client` (an HTTPS one, say).
pub async fn post_with(
    client: &reqwest::Client,
    mock: &MockServer,
    path: &str,
    token: &str,
    body: &str,
) -> Reply {
    let r = client
        .post(format!("{}{path}", mock.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    reply(r).await
}

pub async fn get(mock: &MockServer, path: &str, token: &str) -> Reply {
    request(mock, "GET", path, token, None).await
}

/// A request with any method, and a body (with no content type) when given.
pub async fn request(
    mock: &MockServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Reply {
    let mut r = client()
        .request(
            method.parse().expect("a method"),
            format!("{}{path}", mock.url()),
        )
        .bearer_auth(token);
    if let Some(body) = body {
        r = r.body(body.to_owned());
    }
    reply(r.send().await.expect("request")).await
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "status {status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Reply {
        status,
        headers,
        body,
    }
}

/// Pages from `reset` until has_more is false; returns all items and the final cursor.
pub async fn drain(
    mock: &MockServer,
    path: &str,
    token: &str,
    reset: &str,
) -> (Vec<Value>, String) {
    drain_with(&client(), mock, path, token, reset).await
}

/// As [`drain`], with `client`.
pub async fn drain_with(
    client: &reqwest::Client,
    mock: &MockServer,
    path: &str,
    token: &str,
    reset: &str,
) -> (Vec<Value>, String) {
    let mut body = reset.to_owned();
    let mut items = Vec::new();
    loop {
        let r = post_with(client, mock, path, token, &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().expect("items").iter().cloned());
        let cursor = r.body["cursor"].as_str().expect("cursor").to_owned();
        if !r.body["has_more"].as_bool().expect("has_more") {
            return (items, cursor);
        }
        body = serde_json::json!({ "cursor": cursor }).to_string();
    }
}

/// The claims of a token the mock minted (its payload segment, decoded).
pub fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A running `serve`, killed when dropped, so that a failing test leaves no server behind
/// (holding the test's output open, it would also keep the test run from ending).
pub struct Serving {
    pub child: Child,
    pub port: u16,
    pub log: BufReader<ChildStderr>,
    /// What it logged up to and including its ready line.
    pub startup: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` with `args` on a free loopback port; returns once it is ready.
pub fn serve(args: &[&str]) -> Serving {
    serve_on("127.0.0.1:0", args)
}

/// Starts `serve --addr addr` with `args`; returns once it is ready, with the port its ready
/// line says it listens on.
pub fn serve_on(addr: &str, args: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_op-events-mock"))
        .args(["serve", "--addr", addr, "--log", "info"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(child.stderr.take().unwrap());
    let mut server = Serving {
        child,
        port: 0,
        log,
        startup: String::new(),
    };
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(
            server.log.read_line(&mut line).unwrap() > 0,
            "server exited early"
        );
        server.startup.push_str(&line);
    }
    server.port = listening(&line).port();
    server
}

/// The `listening=` address of a ready line.
pub fn listening(ready: &str) -> std::net::SocketAddr {
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listening="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listening address in: {ready}"))
}
