//! A small real HTTP proxy for tests, on loopback: it answers each request (a tunnel request,
//! `CONNECT host:port`, or a plain-HTTP request to forward) with a status of the test's
//! choosing, or bytes that are no HTTP, or opens the tunnel to one address whatever the request
//! names, so that a `base_url` of `https://events.1password.com` reaches a local mock. It keeps
//! each request's head, for tests to read what the client sent it. It speaks plain HTTP, or
//! TLS as an `https://` proxy does.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the proxy answers.
#[derive(Clone, Copy)]
pub enum Answer {
    /// This status line and headers, and a short body; then the connection is closed.
    Status(&'static str),
    /// These bytes, then the connection is closed.
    Raw(&'static [u8]),
    /// `200`, then the bytes both ways between the client and this address.
    Tunnel(SocketAddr),
    /// This status line to the first request, nothing to the second, and so on in turn: a
    /// proxy that refuses the tunnel, then hangs when asked why.
    ThenSilent(&'static str),
}

/// 403 with a body, as a proxy whose policy refuses the host answers.
pub const FORBIDDEN: Answer = Answer::Status("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain");
/// 502, as a proxy that cannot reach the host answers (Squid, when the connection fails).
pub const BAD_GATEWAY: Answer = Answer::Status("HTTP/1.1 502 Bad Gateway\r\nServer: squid");
/// 503, as a proxy that cannot resolve the host answers (Squid).
pub const SERVICE_UNAVAILABLE: Answer =
    Answer::Status("HTTP/1.1 503 Service Unavailable\r\nServer: squid");
/// A TLS alert (a fatal `decode_error`), as a TLS server answers plain text: no HTTP.
pub const NOT_HTTP: Answer = Answer::Raw(b"\x15\x03\x03\x00\x02\x02\x32");
/// 407, as a proxy that wants a user name and password answers.
pub const AUTH_REQUIRED: Answer = Answer::Status(
    "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"",
);

pub struct ConnectProxy {
    addr: SocketAddr,
    scheme: &'static str,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub fn start(answer: Answer) -> ConnectProxy {
        Self::serving(answer, None)
    }

    /// An `https://` proxy: TLS with `tls`, then HTTP. Its answers cannot be a tunnel.
    pub fn start_tls(answer: Answer, tls: Arc<rustls::ServerConfig>) -> ConnectProxy {
        Self::serving(answer, Some(tls))
    }

    fn serving(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (h, s) = (Arc::clone(&heads), Arc::clone(&stop));
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let h = Arc::clone(&h);
                let answer = match answer {
                    Answer::ThenSilent(_) if n % 2 == 1 => None,
                    Answer::ThenSilent(status) => Some(Answer::Status(status)),
                    answer => Some(answer),
                };
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve(conn, answer, &h),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        serve_tls(rustls::StreamOwned::new(session, conn), answer, &h);
                    }
                });
            }
        });
        ConnectProxy {
            addr,
            scheme,
            heads,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` for a TLS proxy.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The heads of the requests received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads a request's head from `conn` into `heads`; false if the client went first.
fn read_head(conn: &mut impl Read, heads: &Mutex<Vec<String>>) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return false,
        }
    }
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    true
}

/// Writes `answer` (a status or raw bytes) to `conn`, or, with none, holds the request
/// unanswered until the client closes it (or 10 s).
fn reply(conn: &mut (impl Read + Write), answer: Option<Answer>) {
    match answer {
        None => _ = conn.read(&mut [0u8; 1]),
        Some(Answer::Status(status)) => {
            let body = "denied by proxy policy\n";
            let _ = write!(
                conn,
                "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Some(Answer::Raw(bytes)) => _ = conn.write_all(bytes),
        Some(Answer::Tunnel(_) | Answer::ThenSilent(_)) => {
            unreachable!("a tunnel is opened, and silence chosen, by the caller")
        }
    }
    let _ = conn.flush();
}

fn serve(mut conn: TcpStream, answer: Option<Answer>, heads: &Mutex<Vec<String>>) {
    if !read_head(&mut conn, heads) {
        return;
    }
    let Some(Answer::Tunnel(to)) = answer else {
        reply(&mut conn, answer);
        let _ = conn.shutdown(Shutdown::Both);
        return;
    };
    let Ok(upstream) = TcpStream::connect(to) else {
        return;
    };
    conn.set_read_timeout(None).unwrap();
    let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (mut c_in, mut u_out) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(Shutdown::Write);
    });
    let (mut u_in, mut c_out) = (upstream, conn);
    let _ = std::io::copy(&mut u_in, &mut c_out);
    let _ = c_out.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn serve_tls(
    mut conn: rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    answer: Option<Answer>,
    heads: &Mutex<Vec<String>>,
) {
    assert!(
        !matches!(answer, Some(Answer::Tunnel(_))),
        "the TLS proxy opens no tunnels"
    );
    if read_head(&mut conn, heads) {
        reply(&mut conn, answer);
        conn.conn.send_close_notify();
        let _ = conn.flush();
    }
}

/// A TLS configuration for a server at `127.0.0.1`, and the PEM of its self-signed
/// certificate, which a client trusts as its own CA (`ca_file`).
pub fn loopback_tls() -> (rustls::ServerConfig, String) {
    let cert = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    (config, cert.cert.pem())
}

/// A loopback port nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `c` to its end, killed after `limit` (then the test fails, rather than hangs).
pub fn output_within(c: &mut Command, limit: Duration) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes, so that a full pipe never stops the child.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "still running after {limit:?}; its stderr:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
