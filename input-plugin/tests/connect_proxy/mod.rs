//! A small real HTTP proxy for tests, on loopback: it answers each request (a tunnel request,
//! `CONNECT host:port`, or a plain-HTTP request to forward) with a status of the test's
//! choosing, or bytes that are no HTTP, or opens the tunnel to one address whatever the request
//! names, so that a `base_url` of `https://events.1password.com` reaches a local mock. It keeps
//! each request's head, for tests to read what the client sent it.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
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
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    pub fn start(answer: Answer) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&heads), Arc::clone(&stop));
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let h = Arc::clone(&h);
                let answer = match answer {
                    Answer::ThenSilent(_) if n % 2 == 1 => None,
                    Answer::ThenSilent(status) => Some(Answer::Status(status)),
                    answer => Some(answer),
                };
                std::thread::spawn(move || serve(conn, answer, &h));
            }
        });
        ConnectProxy { addr, heads, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Answers `conn`'s request with `answer`, or holds it unanswered until the client closes it
/// (or 10 s).
fn serve(mut conn: TcpStream, answer: Option<Answer>, heads: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    let Some(answer) = answer else {
        let _ = conn.read(&mut byte);
        return;
    };
    match answer {
        Answer::Status(status) => {
            let body = "denied by proxy policy\n";
            let _ = write!(
                conn,
                "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.shutdown(Shutdown::Both);
        }
        Answer::Raw(bytes) => {
            let _ = conn.write_all(bytes);
            let _ = conn.shutdown(Shutdown::Both);
        }
        Answer::Tunnel(to) => {
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
        Answer::ThenSilent(_) => unreachable!("chosen per connection when accepted"),
    }
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
