//! What a failed request means, and what to do about it: [`ApiError`] classified by
//! [`Action`], from a response's status, error body and `Retry-After`, or from a transport
//! error (a refused certificate, a server that speaks no TLS or no HTTP, a proxy's refusal
//! told apart, with what to change). A module of its own because what callers (streams,
//! `check`, the collector) act on is the [`Action`], not how the request was made.

use std::time::Duration;

use serde::Deserialize;

use super::proxy_probe::{self, Answer, ProbeError};
use crate::proxy_env::{Origin, Proxy};

/// What a 404 or a redirect most likely means, for the messages that report one.
pub const NOT_FOUND_HINT: &str = "the Events API is not served at this address: check `base_url` (for the real API, the region's events host with no path) and `api_version`";

/// A failed request, classified by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("network: {0}")]
    Network(String),
    /// The proxy refused the tunnel to the API, or asked for credentials: a setting to change
    /// (the proxy's URL or its rules), not a network blip. The message names the proxy.
    #[error("{0}")]
    Proxy(String),
    /// The server's certificate was refused: a setting to change (`ca_file`, `base_url`, the
    /// clock), not a network blip.
    #[error("certificate refused: {0}")]
    Certificate(String),
    /// The server (or the proxy) does not speak TLS where an `https://` address says it does:
    /// a setting to change (the scheme or the port), which no retry can fix.
    #[error("no TLS: {0}")]
    NoTls(String),
    #[error("bad response body: {0}")]
    Body(String),
    /// Raising the cap is the fix: a continuing cursor keeps the page size of its reset, so a
    /// lower `limit` would not shrink the page until the next reset.
    #[error(
        "response larger than max_response_bytes ({0} bytes): raise `max_response_bytes` (a \
         saved cursor keeps the page size it was reset with, whatever `limit` says now)"
    )]
    TooLarge(usize),
}

/// What to do about an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 429: wait for the budget window.
    RateLimited,
    /// 400: the request (cursor) was rejected.
    Rejected,
    /// 404, or a redirect (never followed: it could leave HTTPS, or the API's host, with the
    /// cursor): the API is not served there (a wrong `base_url` or `api_version`, or a proxy's
    /// page);
    /// not a verdict on the cursor, which is kept.
    NotFound,
    /// 401/403: the token cannot read this.
    Unauthorized,
    /// TLS with the server (or the proxy) cannot work as set: its certificate was refused, or
    /// it speaks no TLS there.
    Untrusted,
    /// The proxy refused the tunnel or asked for credentials.
    ProxyRefused,
    /// 5xx, network, truncated/invalid body: back off and retry the same request.
    Retry,
}

impl ApiError {
    pub fn action(&self) -> Action {
        match self {
            Self::Status { status: 429, .. } => Action::RateLimited,
            Self::Status {
                status: 401 | 403, ..
            } => Action::Unauthorized,
            Self::Status {
                status: 400 | 422, ..
            } => Action::Rejected,
            Self::Status {
                status: 404 | 300..=399,
                ..
            } => Action::NotFound,
            Self::Certificate(_) | Self::NoTls(_) => Action::Untrusted,
            Self::Proxy(_) => Action::ProxyRefused,
            _ => Action::Retry,
        }
    }
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The advice of [`ApiError::TooLarge`] (page size) is about pages.
pub(super) fn introspect_too_large(e: ApiError) -> ApiError {
    match e {
        ApiError::TooLarge(n) => ApiError::Body(format!(
            "introspect response larger than max_response_bytes ({n} bytes)"
        )),
        e => e,
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 allows both; the API documents
/// neither), capped at an hour; a date already past means now. `None` when unreadable or
/// negative.
pub(super) fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    let secs = match value.parse::<f64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
            at.duration_since(now).as_secs_f64().max(0.0)
        }
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Both error body shapes: `{"Error":{"Message":…}}` (v1) and `{"status":…,"message":…}` (v2).
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct V1 {
        #[serde(rename = "Error")]
        error: V1Inner,
    }
    #[derive(Deserialize)]
    struct V1Inner {
        #[serde(rename = "Message")]
        message: String,
    }
    #[derive(Deserialize)]
    struct V2 {
        message: String,
    }
    serde_json::from_slice::<V1>(body)
        .map(|v| v.error.message)
        .or_else(|_| serde_json::from_slice::<V2>(body).map(|v| v.message))
        .ok()
}

/// Where a request went, and through which proxy, for the messages of the errors it causes.
pub(super) struct Dest<'a> {
    /// The API's host.
    pub host: &'a str,
    /// `host:port`, as the tunnel request (`CONNECT`) names it.
    pub target: &'a str,
    /// Whether `base_url` is `https://`.
    pub https: bool,
    pub proxy: Option<&'a Proxy>,
}

/// The error of hyper-util's proxy tunnel, which reqwest's requests through a proxy to an
/// `https://` address report. hyper-util does not export the type, but names it as its
/// tunnel's error: found by type through that, no message read. Of the proxy's answers it
/// keeps only 407 apart: any other that is not 200 (403, 502…) is `TunnelUnsuccessful`, with
/// its status and body dropped, which [`proxy_probe`] asks the proxy again for.
type TunnelError = <hyper_util::client::legacy::connect::proxy::Tunnel<
    hyper_util::client::legacy::connect::HttpConnector,
> as tower_service::Service<http::Uri>>::Error;

/// `e` and its sources, the first of type `T`.
fn find<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut at = Some(e);
    while let Some(e) = at {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        at = e.source();
    }
    None
}

/// `e`'s message and its sources', joined with `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

pub(super) fn network(e: reqwest::Error, dest: &Dest) -> ApiError {
    if let Some(proxy) = dest.proxy
        && let Some(tunnel) = find::<TunnelError>(&e)
    {
        return tunnel_error(tunnel, proxy, dest);
    }
    // reqwest errors carry the URL, never headers: safe to show.
    let mut msg = chain(&e);
    // A plain-HTTP `base_url` through an `https://` proxy: the only TLS is the proxy's.
    let tls_proxy = dest.proxy.filter(|p| !dest.https && p.is_tls());
    if let Some(refused) = refused_certificate(&e) {
        return match tls_proxy {
            Some(proxy) => proxy_certificate(proxy, &msg, refused),
            None => ApiError::Certificate(format!("{msg} ({})", certificate_hint(refused, None))),
        };
    }
    if let Some(proxy) = tls_proxy
        && not_tls(&e)
    {
        return proxy_no_tls(proxy, &msg);
    }
    if dest.https && not_tls(&e) {
        msg.push_str(&format!(
            " (the server at {} does not speak TLS on that port, plain HTTP perhaps: give \
             `base_url` the port that serves HTTPS, or http:// for a server of plain HTTP \
             (loopback only, unless `insecure_http`))",
            dest.target
        ));
        return ApiError::NoTls(msg);
    }
    // A TLS port answers plain text with an alert, which is no HTTP. Retried all the same:
    // unlike a TLS handshake's first bytes, an answer that is no HTTP is not proof of it.
    if !dest.https && not_http(&e) {
        msg.push_str(&match dest.proxy {
            Some(proxy) => format!(
                " (proxy {} answered with something other than HTTP: name it https:// in {} if \
                 it speaks TLS, or check its port)",
                proxy.shown(),
                proxy.setting()
            ),
            None => format!(
                " (the server at {} answered with something other than HTTP: if it serves HTTPS \
                 on that port, use https:// in `base_url`; otherwise check the port)",
                dest.target
            ),
        });
    } else if let Some(proxy) = dest.proxy {
        msg.push_str(&format!(" (through proxy {})", proxy.shown()));
    }
    ApiError::Network(msg)
}

/// Whether `e` is one of hyper-util's proxy tunnel errors, for an answer to `CONNECT` other
/// than 200 and 407: a refusal whose status was dropped, which [`proxy_probe`] learns.
pub(super) fn tunnel_refused(e: &reqwest::Error) -> bool {
    matches!(
        find::<TunnelError>(e),
        Some(TunnelError::TunnelUnsuccessful)
    )
}

/// What the proxy's failure to open the tunnel means, naming the proxy (its password hidden).
fn tunnel_error(e: &TunnelError, proxy: &Proxy, dest: &Dest) -> ApiError {
    let shown = proxy.shown();
    let setting = proxy.setting();
    let target = dest.target;
    match e {
        TunnelError::ProxyAuthRequired => ApiError::Proxy(proxy_auth_required(proxy)),
        // Its status unknown: a proxy URL that could not be asked again.
        TunnelError::TunnelUnsuccessful => ApiError::Proxy(refused(proxy, dest, None)),
        TunnelError::ConnectFailed(cause) => match refused_certificate(&**cause) {
            Some(refused) => proxy_certificate(proxy, &chain(&**cause), refused),
            None if not_tls(&**cause) => proxy_no_tls(proxy, &chain(&**cause)),
            None => ApiError::Network(format!(
                "proxy {shown} unreachable: {}: check the proxy URL in {setting}, and that the \
                 proxy is running",
                chain(&**cause)
            )),
        },
        TunnelError::TunnelUnexpectedEof => ApiError::Network(format!(
            "proxy {shown} closed the connection without answering the tunnel request (CONNECT) \
             to {target}"
        )),
        TunnelError::Io(io) => ApiError::Network(format!(
            "proxy {shown}: the tunnel request (CONNECT) to {target} failed: {}",
            chain(io)
        )),
        other => ApiError::Network(format!("proxy {shown}: {}", chain(other))),
    }
}

/// The proxy's certificate was refused (`msg` says how).
fn proxy_certificate(proxy: &Proxy, msg: &str, refused: &rustls::CertificateError) -> ApiError {
    ApiError::Certificate(format!(
        "the certificate of proxy {}: {msg} ({})",
        proxy.shown(),
        certificate_hint(refused, Some(proxy))
    ))
}

/// An `https://` proxy answered the TLS handshake with no TLS (`msg` says what).
fn proxy_no_tls(proxy: &Proxy, msg: &str) -> ApiError {
    ApiError::NoTls(format!(
        "proxy {}: {msg} (the proxy does not speak TLS on that port: name it http:// in {}; \
         https:// is for a proxy that speaks TLS itself)",
        proxy.shown(),
        proxy.setting()
    ))
}

/// What a proxy's refusal of the tunnel means, now that its answer, asked again, is known: a
/// 5xx is an outage (it cannot reach the API), retried as one, and so is a 2xx (it allows the
/// tunnel now); any other status, or an answer that is no HTTP, a setting to change.
pub(super) fn refusal(answer: Result<Answer, ProbeError>, proxy: &Proxy, dest: &Dest) -> ApiError {
    let (shown, target) = (proxy.shown(), dest.target);
    match answer {
        Ok(Answer::Status(status)) if status.is_server_error() => ApiError::Network(format!(
            "proxy {shown} could not reach {target} ({}); if this lasts, the proxy's log says why",
            proxy_probe::shown(status)
        )),
        // Its mind changed between the two requests: nothing to change here, so tried again.
        Ok(Answer::Status(status)) if status.is_success() => ApiError::Network(format!(
            "proxy {shown} refused the tunnel to {target}, then allowed it ({}) when asked \
             again: trying again",
            proxy_probe::shown(status)
        )),
        Ok(Answer::Status(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)) => {
            ApiError::Proxy(proxy_auth_required(proxy))
        }
        Ok(Answer::Status(status)) => {
            ApiError::Proxy(refused(proxy, dest, Some(&proxy_probe::shown(status))))
        }
        Ok(Answer::NotHttp) => ApiError::Proxy(format!(
            "proxy {shown} refused the tunnel to {target} (not an HTTP answer): check that {} \
             names an HTTP proxy, and its port{}",
            proxy.setting(),
            if proxy.is_tls() {
                ""
            } else {
                "; one that speaks TLS is named https://"
            }
        )),
        Err(e) => ApiError::Network(format!(
            "proxy {shown} unreachable, asked why it refused the tunnel to {target}: {e}: check \
             the proxy URL in {}, and that the proxy is running",
            proxy.setting()
        )),
    }
}

/// A proxy's refusal of the tunnel, with its status where known: only a person can change what
/// the proxy allows.
fn refused(proxy: &Proxy, dest: &Dest, status: Option<&str>) -> String {
    let (shown, setting, target) = (proxy.shown(), proxy.setting(), dest.target);
    let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
    let go_direct = match proxy.origin {
        Origin::Setting => format!(
            "unset {setting} if this machine reaches {} directly",
            dest.host
        ),
        Origin::Env(_) => format!(
            "add {} to NO_PROXY if this machine reaches it directly",
            dest.host
        ),
    };
    format!(
        "proxy {shown} refused the tunnel to {target}{status}: ask its administrators to allow \
         {target}, or {go_direct}"
    )
}

/// A 407: from the tunnel request, or (a plain-HTTP `base_url`) from the request itself.
pub(super) fn proxy_auth_required(proxy: &Proxy) -> String {
    let (shown, setting) = (proxy.shown(), proxy.setting());
    if proxy.has_credentials() {
        format!(
            "proxy {shown} refused the user name and password in its URL (407 Proxy \
             Authentication Required): correct them in {setting}, percent-encoding any `@`, \
             `:`, `/` or `%` in them"
        )
    } else {
        format!(
            "proxy {shown} requires authentication (407 Proxy Authentication Required): put \
             user:password in the proxy URL in {setting} (http://user:password@host:port)"
        )
    }
}

/// The rustls error among `e` and its sources, if any.
fn tls_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut at = Some(e);
    while let Some(mut e) = at {
        at = e.source();
        // rustls' error comes wrapped in `io::Error`s (two), whose `source` skips it.
        while let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            e = inner;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
    }
    None
}

/// The certificate error among `e` and its sources, if a certificate was refused.
fn refused_certificate<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::CertificateError> {
    match tls_error(e)? {
        rustls::Error::InvalidCertificate(refused) => Some(refused),
        _ => None,
    }
}

/// Whether the peer answered the TLS handshake with something that is no TLS record (plain
/// HTTP's `HTTP/1.1 400`, say), as a server of another protocol does.
fn not_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        tls_error(e),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// Whether the answer was no HTTP/1 (a header too large aside).
fn not_http(e: &(dyn std::error::Error + 'static)) -> bool {
    find::<hyper::Error>(e).is_some_and(|e| e.is_parse() && !e.is_parse_too_large())
}

/// What to change when the server's certificate, or `proxy`'s, was refused.
fn certificate_hint(refused: &rustls::CertificateError, proxy: Option<&Proxy>) -> String {
    use rustls::CertificateError as C;
    let whose = if proxy.is_some() { "proxy" } else { "server" };
    let ca_as_leaf = matches!(
        refused,
        C::Other(rustls::OtherError(cause))
            if matches!(cause.downcast_ref(), Some(webpki::Error::CaUsedAsEndEntity))
    );
    match refused {
        // OpenSSL 3's `req -x509` makes such certificates (`CA:TRUE`): no `ca_file` helps.
        _ if ca_as_leaf => format!(
            "the {whose} presents a CA certificate as its own: give it a leaf certificate signed \
             by a CA (or one made with `-addext basicConstraints=critical,CA:FALSE`)"
        ),
        C::UnknownIssuer | C::BadSignature | C::InvalidPurpose => match proxy {
            None => "the server's certificate is not from a CA this collector trusts: behind a \
                     TLS-inspecting proxy or with a private CA, give that CA's PEM file with \
                     `ca_file` (--ca-file)"
                .to_owned(),
            Some(_) => "the proxy's certificate is not from a CA this collector trusts: give \
                        that CA's PEM file with `ca_file` (--ca-file)"
                .to_owned(),
        },
        C::NotValidForName | C::NotValidForNameContext { .. } => match proxy {
            None => "the server's certificate is for another host name: check `base_url`".into(),
            Some(p) => format!(
                "the proxy's certificate is for another host name: name the proxy in {} as its \
                 certificate does",
                p.setting()
            ),
        },
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            format!(
                "the {whose}'s certificate is outside its validity period: check this machine's \
                 clock"
            )
        }
        _ => match proxy {
            None => "the server's certificate was refused: check `base_url` and `ca_file`".into(),
            Some(p) => format!(
                "the proxy's certificate was refused: check {} and `ca_file`",
                p.setting()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes_and_actions() {
        assert_eq!(
            error_message(br#"{"Error":{"Message":"Bad Request"}}"#).as_deref(),
            Some("Bad Request")
        );
        assert_eq!(
            error_message(br#"{"status":401,"message":"Unauthorized"}"#).as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(error_message(b""), None);
        for (status, action) in [
            (400, Action::Rejected),
            (401, Action::Unauthorized),
            (403, Action::Unauthorized),
            (404, Action::NotFound),
            (301, Action::NotFound),
            (307, Action::NotFound),
            (429, Action::RateLimited),
            (500, Action::Retry),
            (503, Action::Retry),
        ] {
            let e = ApiError::Status {
                status,
                message: String::new(),
                retry_after: None,
            };
            assert_eq!(e.action(), action, "{status}");
        }
    }

    /// A 5xx from the proxy asked again, or no answer, is an outage; anything else a refusal.
    #[test]
    fn a_refused_tunnel_is_an_outage_or_a_refusal_by_the_proxys_answer() {
        let proxy = Proxy::new(
            "http://me:secret@proxy.example:3128".parse().unwrap(),
            Origin::Setting,
        );
        let dest = Dest {
            host: "events.1password.com",
            target: "events.1password.com:443",
            https: true,
            proxy: Some(&proxy),
        };
        let status = |code| Ok(Answer::Status(http::StatusCode::from_u16(code).unwrap()));
        let refused = ", or unset `proxy` (--proxy) if this machine reaches events.1password.com \
                       directly";
        for (answer, action, said) in [
            (
                status(502),
                Action::Retry,
                "network: proxy http://***@proxy.example:3128 could not reach \
                 events.1password.com:443 (502 Bad Gateway); if this lasts, the proxy's log says \
                 why"
                .to_owned(),
            ),
            (status(504), Action::Retry, "(504 Gateway Timeout)".into()),
            (
                status(500),
                Action::Retry,
                "(500 Internal Server Error)".into(),
            ),
            (
                status(403),
                Action::ProxyRefused,
                format!(
                    "proxy http://***@proxy.example:3128 refused the tunnel to \
                     events.1password.com:443 (403 Forbidden): ask its administrators to allow \
                     events.1password.com:443{refused}"
                ),
            ),
            (status(404), Action::ProxyRefused, "(404 Not Found)".into()),
            (status(302), Action::ProxyRefused, "(302 Found)".into()),
            (
                status(200),
                Action::Retry,
                "then allowed it (200 OK) when asked again: trying again".into(),
            ),
            (
                status(407),
                Action::ProxyRefused,
                "refused the user name and password in its URL".into(),
            ),
            (
                Ok(Answer::NotHttp),
                Action::ProxyRefused,
                "(not an HTTP answer): check that `proxy` (--proxy) names an HTTP proxy".into(),
            ),
            (
                Err(ProbeError::Timeout(Duration::from_secs(10))),
                Action::Retry,
                "network: proxy http://***@proxy.example:3128 unreachable, asked why it refused \
                 the tunnel to events.1password.com:443: no answer within 10s: check the proxy \
                 URL in `proxy` (--proxy), and that the proxy is running"
                    .into(),
            ),
            (
                Err(ProbeError::Io(std::io::ErrorKind::ConnectionRefused.into())),
                Action::Retry,
                "unreachable, asked why".into(),
            ),
        ] {
            let e = refusal(answer, &proxy, &dest);
            let msg = e.to_string();
            assert_eq!(e.action(), action, "{msg}");
            assert!(msg.contains(&said), "{msg}");
            assert!(!msg.contains("secret"), "{msg}");
        }
        // Only a proxy named http:// may be one that speaks TLS.
        let not_http = |proxy: &Proxy| refusal(Ok(Answer::NotHttp), proxy, &dest).to_string();
        let tls_hint = "; one that speaks TLS is named https://";
        assert!(not_http(&proxy).ends_with(tls_hint));
        let tls = Proxy::new("https://proxy.example".parse().unwrap(), Origin::Setting);
        assert!(
            not_http(&tls).ends_with("names an HTTP proxy, and its port"),
            "{}",
            not_http(&tls)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let read = |v| retry_after(v, now);
        assert_eq!(read(" 2.5 "), Some(Duration::from_millis(2500)));
        assert_eq!(read("99999999"), Some(Duration::from_secs(3600)));
        assert_eq!(
            read("Thu, 01 Jan 2026 00:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(read("Wed, 31 Dec 2025 23:00:00 GMT"), Some(Duration::ZERO));
        for bad in ["-1", "NaN", "inf", "garbage", ""] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }
}
