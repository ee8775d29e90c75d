//! Asks a proxy that refused the tunnel to the API once more, ourselves, for its status:
//! hyper-util, under the HTTP client, keeps only a 407 apart from a proxy's answers to
//! `CONNECT` and drops the status of any other that is not 200. Yet a 502, 503 or 504 (the
//! proxy cannot reach the API: an outage, retried as one) and a 403 (its rules refuse the host:
//! a setting to change) call for different handling. The request is the client's own
//! (`CONNECT`, `Host`, `User-Agent`, the proxy's credentials), over TLS to an `https://` proxy
//! with the client's own trust; only the status line is read, within `connect_timeout` (the
//! tunnel is part of connecting, for the client too), then the connection is closed.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};

use crate::proxy_env::Proxy;

/// The most read of the answer: a status line is about 30 bytes.
const MAX_STATUS_LINE: u64 = 256;

/// The proxy's answer to the tunnel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Status(http::StatusCode),
    /// Something that does not start with an HTTP/1 status line (a TLS alert, another
    /// protocol's greeting).
    NotHttp,
}

/// Why the proxy could not be asked.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How a proxy is asked: within the client's `connect_timeout`, trusting what the client
/// trusts.
#[derive(Clone)]
pub(super) struct Probe {
    pub wait: Duration,
    pub tls: Arc<rustls::ClientConfig>,
}

impl Probe {
    /// `proxy`'s answer to a tunnel request to `target` (`host:port`); `None` for a proxy URL
    /// the client cannot have reached either (no host, another scheme).
    pub async fn ask(&self, proxy: &Proxy, target: &str) -> Option<Result<Answer, ProbeError>> {
        let reached = proxy.as_reached()?;
        let uri = reached.uri();
        let (tls, default_port) = match uri.scheme_str()? {
            "http" => (None, 80),
            "https" => (Some(&self.tls), 443),
            _ => return None,
        };
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(default_port);
        // Byte for byte as hyper-util writes it, lower-case header names included.
        let mut request = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nuser-agent: {}\r\n",
            super::USER_AGENT
        )
        .into_bytes();
        if let Some(auth) = reached.basic_auth() {
            request.extend_from_slice(b"proxy-authorization: ");
            request.extend_from_slice(auth.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        let asked = tokio::time::timeout(self.wait, exchange(host, port, tls, &request)).await;
        Some(asked.unwrap_or(Err(ProbeError::Timeout(self.wait))))
    }
}

/// Sends `request` to `host:port`, over TLS when `tls` is given, and reads the answer's first
/// line.
async fn exchange(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
    request: &[u8],
) -> Result<Answer, ProbeError> {
    let conn = tokio::net::TcpStream::connect((host, port)).await?;
    let Some(tls) = tls else {
        return first_line(conn, request).await;
    };
    let name =
        rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(std::io::Error::other)?;
    let conn = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, conn)
        .await?;
    first_line(conn, request).await
}

/// Sends `request` on `conn` and reads the first line of the answer.
async fn first_line(
    mut conn: impl AsyncRead + AsyncWrite + Unpin,
    request: &[u8],
) -> Result<Answer, ProbeError> {
    conn.write_all(request).await?;
    let mut line = Vec::new();
    tokio::io::BufReader::new((&mut conn).take(MAX_STATUS_LINE))
        .read_until(b'\n', &mut line)
        .await?;
    Ok(status_line(&line))
}

/// The status of an answer's first line, `HTTP/1.1 502 Bad Gateway` (HTTP/1.0 or 1.1, as the
/// client reads them); the reason phrase is not read, being the proxy's text.
fn status_line(answer: &[u8]) -> Answer {
    let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(version_on) = line.strip_prefix(b"HTTP/1.") else {
        return Answer::NotHttp;
    };
    let Some(status) = [&b"0 "[..], b"1 "]
        .into_iter()
        .find_map(|version| version_on.strip_prefix(version))
    else {
        return Answer::NotHttp;
    };
    let (code, rest) = status.split_at(status.len().min(3));
    match http::StatusCode::from_bytes(code) {
        Ok(code) if rest.is_empty() || rest.starts_with(b" ") => Answer::Status(code),
        _ => Answer::NotHttp,
    }
}

/// A status as messages give it: `502 Bad Gateway`, or the code alone where it has no name.
pub(super) fn shown(status: http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the client with the default settings asks.
    fn probe() -> Probe {
        let tls = super::super::tls_config(&crate::config::Config::default()).unwrap();
        Probe {
            wait: Duration::from_secs(5),
            tls: Arc::new(tls),
        }
    }

    #[test]
    fn status_lines_are_read_and_anything_else_is_not_http() {
        let status = |code| Answer::Status(http::StatusCode::from_u16(code).unwrap());
        for (answer, read) in [
            (
                &b"HTTP/1.1 502 Bad Gateway\r\nServer: squid\r\n\r\n"[..],
                status(502),
            ),
            (b"HTTP/1.0 403 Forbidden\r\n", status(403)),
            (b"HTTP/1.1 503\r\n", status(503)),
            // No reason phrase, no line end: the answer as far as it was read.
            (b"HTTP/1.1 504", status(504)),
            (b"HTTP/1.1 200 Connection established\n", status(200)),
            (b"HTTP/1.1 599 Whatever\r\n", status(599)),
            (b"HTTP/1.1 50", Answer::NotHttp),
            (b"HTTP/1.1 5020 Bad\r\n", Answer::NotHttp),
            (b"HTTP/1.1 abc\r\n", Answer::NotHttp),
            (b"HTTP/1.1 099 Low\r\n", Answer::NotHttp),
            (b"HTTP/2 502\r\n", Answer::NotHttp),
            (b"http/1.1 502\r\n", Answer::NotHttp),
            (b" HTTP/1.1 502\r\n", Answer::NotHttp),
            // A TLS alert, as a TLS server answers plain text.
            (b"\x15\x03\x03\x00\x02\x02\x32", Answer::NotHttp),
            (b"SSH-2.0-OpenSSH_9.6\r\n", Answer::NotHttp),
            (b"", Answer::NotHttp),
            (b"\r\nHTTP/1.1 502\r\n", Answer::NotHttp),
        ] {
            assert_eq!(status_line(answer), read, "{}", answer.escape_ascii());
        }
    }

    /// A proxy on loopback that reads the request's head, writes `answer`, and holds the
    /// connection open until the client closes it.
    fn answering(answer: &'static [u8]) -> Proxy {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            if conn.write_all(answer).is_ok() {
                let _ = conn.read(&mut byte);
            }
        });
        Proxy::new(url, crate::proxy_env::Origin::Setting)
    }

    #[tokio::test]
    async fn the_proxy_is_asked_and_its_answer_read_no_further_than_a_status_line() {
        let asked = (probe())
            .ask(&answering(b"HTTP/1.1 504 Gateway Timeout\r\n\r\n"), "h:443")
            .await;
        assert_eq!(
            asked.unwrap().unwrap(),
            Answer::Status(http::StatusCode::GATEWAY_TIMEOUT)
        );
        // A megabyte with no line end, and more to come: the first bytes are enough to tell.
        let endless: &'static [u8] = vec![b'x'; 1 << 20].leak();
        let asked = probe().ask(&answering(endless), "h:443").await;
        assert_eq!(asked.unwrap().unwrap(), Answer::NotHttp);
    }

    #[tokio::test]
    async fn a_proxy_gone_is_an_error_over_http_and_https_and_another_scheme_is_not_asked() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = |scheme: &str| {
            let url = url::Url::parse(&format!("{scheme}://127.0.0.1:{port}")).unwrap();
            Proxy::new(url, crate::proxy_env::Origin::Setting)
        };
        for scheme in ["http", "https"] {
            let asked = probe().ask(&proxy(scheme), "h:443").await.unwrap();
            assert!(
                matches!(&asked, Err(ProbeError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
                "{scheme}: {asked:?}"
            );
        }
        assert!(probe().ask(&proxy("socks5"), "h:443").await.is_none());
    }

    #[test]
    fn statuses_are_shown_with_their_names() {
        let shown = |code| shown(http::StatusCode::from_u16(code).unwrap());
        assert_eq!(shown(502), "502 Bad Gateway");
        assert_eq!(shown(403), "403 Forbidden");
        assert_eq!(shown(599), "599");
    }
}
