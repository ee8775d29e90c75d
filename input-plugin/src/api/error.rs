//! What a failed request means, and what to do about it: [`ApiError`] classified by
//! [`Action`], from a response's status, error body and `Retry-After`, or from a transport
//! error (a refused certificate told apart, with what to change). A module of its own because
//! what callers (streams, `check`, the collector) act on is the [`Action`], not how the request
//! was made.

use std::time::Duration;

use serde::Deserialize;

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
    /// The server's certificate (or the proxy's) was refused.
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
            Self::Certificate(_) => Action::Untrusted,
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

/// The proxy a request went through, and where to, for the messages of the errors it causes.
pub(super) struct Via<'a> {
    pub proxy: &'a Proxy,
    /// The API's host.
    pub host: &'a str,
    /// `host:port`, as the tunnel request (`CONNECT`) names it.
    pub target: &'a str,
}

/// The error of hyper-util's proxy tunnel, which reqwest's requests through a proxy to an
/// `https://` address report. hyper-util does not export the type, but names it as its
/// tunnel's error: found by type through that, no message read. Of the proxy's answers it
/// keeps only 407 apart: any other that is not 200 (403, 502…) is `TunnelUnsuccessful`, with
/// its status and body dropped, so a refusal is told without its status.
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

pub(super) fn network(e: reqwest::Error, via: Option<&Via>) -> ApiError {
    if let Some(via) = via
        && let Some(tunnel) = find::<TunnelError>(&e)
    {
        return tunnel_error(tunnel, via);
    }
    // reqwest errors carry the URL, never headers: safe to show.
    let mut msg = chain(&e);
    match refused_certificate(&e) {
        Some(refused) => {
            msg.push_str(" (");
            msg.push_str(&certificate_hint(refused, None));
            msg.push(')');
            ApiError::Certificate(msg)
        }
        None => {
            if let Some(via) = via {
                msg.push_str(&format!(" (through proxy {})", via.proxy.shown()));
            }
            ApiError::Network(msg)
        }
    }
}

/// What the proxy's failure to open the tunnel means, naming the proxy (its password hidden).
fn tunnel_error(e: &TunnelError, via: &Via) -> ApiError {
    let proxy = via.proxy.shown();
    let setting = via.proxy.setting();
    let target = via.target;
    match e {
        TunnelError::ProxyAuthRequired => ApiError::Proxy(proxy_auth_required(via.proxy)),
        // Only a person can change what the proxy allows (or, more rarely, notice that it
        // answers a tunnel request with no HTTP at all).
        TunnelError::TunnelUnsuccessful => {
            let go_direct = match via.proxy.origin {
                Origin::Setting => format!(
                    "unset {setting} if this machine reaches {} directly",
                    via.host
                ),
                Origin::Env(_) => format!(
                    "add {} to NO_PROXY if this machine reaches it directly",
                    via.host
                ),
            };
            ApiError::Proxy(format!(
                "proxy {proxy} refused the tunnel to {target}: ask its administrators to allow \
                 {target}, or {go_direct}"
            ))
        }
        TunnelError::ConnectFailed(cause) => match refused_certificate(&**cause) {
            Some(refused) => ApiError::Certificate(format!(
                "the certificate of proxy {proxy}: {} ({})",
                chain(&**cause),
                certificate_hint(refused, Some(via.proxy))
            )),
            None => ApiError::Network(format!(
                "proxy {proxy} unreachable: {}: check the proxy URL in {setting}, and that the \
                 proxy is running",
                chain(&**cause)
            )),
        },
        TunnelError::TunnelUnexpectedEof => ApiError::Network(format!(
            "proxy {proxy} closed the connection without answering the tunnel request (CONNECT) \
             to {target}"
        )),
        TunnelError::Io(io) => ApiError::Network(format!(
            "proxy {proxy}: the tunnel request (CONNECT) to {target} failed: {}",
            chain(io)
        )),
        other => ApiError::Network(format!("proxy {proxy}: {}", chain(other))),
    }
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

/// The certificate error among `e` and its sources, if a certificate was refused.
fn refused_certificate<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::CertificateError> {
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
        if let Some(rustls::Error::InvalidCertificate(refused)) = e.downcast_ref::<rustls::Error>()
        {
            return Some(refused);
        }
    }
    None
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
