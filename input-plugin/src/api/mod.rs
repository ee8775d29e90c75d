//! The Events API over HTTP: base URL resolution, a rustls client (ring provider passed
//! explicitly, never installed process-wide: we live inside Fluent Bit), introspection, one page
//! per call with a size-capped body, tolerant envelope parsing. What a failure means
//! ([`ApiError`], [`Action`]) is the `error` submodule's job; asking a proxy that refused the
//! tunnel for its status, `proxy_probe`'s; what `ca_file` holds, the `ca_file` submodule's.

mod ca_file;
mod error;
mod proxy_probe;

use std::net::IpAddr;
use std::sync::Arc;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

use crate::config::{Compression, Config};
use crate::event::{ApiVersion, EventType};
use crate::json::{Envelope, JsonError, Tape, parse_page};
use crate::rotate::Credential;
use crate::token::Token;

pub use error::{Action, ApiError, NOT_FOUND_HINT};
use error::{Dest, error_message, introspect_too_large, network, proxy_auth_required, retry_after};

use crate::proxy_env::{Bypass, Origin, Proxy, Route};

const USER_AGENT: &str = concat!("op-events/", env!("CARGO_PKG_VERSION"));

/// Why the client could not be built. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "no Events API address: set `region` (us, ent, ca, eu) or `base_url`; the token names no events host"
    )]
    NoBaseUrl,
    #[error(
        "base_url {0}: plain http is only allowed to loopback addresses; use https, or set `insecure_http` to true if you really mean it"
    )]
    InsecureHttp(String),
    #[error("ca_file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("proxy: {0}")]
    Proxy(String),
    #[error(transparent)]
    EnvProxy(#[from] crate::proxy_env::EnvProxyError),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// The base URL: `base_url`, else `region`, else the token's `aud` host.
pub fn resolve_base_url(config: &Config, token: &Token) -> Result<Url, SetupError> {
    let url = if let Some(u) = &config.base_url {
        u.clone()
    } else if let Some(r) = config.region {
        Url::parse(&format!("https://{}", r.host())).expect("region hosts are valid")
    } else if let Some(host) = token.audience_host() {
        Url::parse(&format!("https://{host}")).map_err(|_| SetupError::NoBaseUrl)?
    } else {
        return Err(SetupError::NoBaseUrl);
    };
    if url.scheme() == "http" && !config.insecure_http && !is_loopback(&url) {
        return Err(SetupError::InsecureHttp(url.to_string()));
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: a loopback address, or a localhost name.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => bare(d) == "localhost" || under_localhost(d),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// `name` in lower case, without the trailing dot of a fully qualified name (`localhost.` is
/// `localhost`).
fn bare(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether `name` is one under `localhost` (`foo.localhost`), which RFC 6761 reserves for
/// loopback as it does `localhost`.
fn under_localhost(name: &str) -> bool {
    bare(name)
        .strip_suffix(".localhost")
        .is_some_and(|below| !below.is_empty())
}

/// The most a `ca_file` may hold: a whole bundle of public roots is a few hundred kilobytes.
const MAX_CA_FILE: usize = 16 * 1024 * 1024;

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        let ca_err = |message: String| SetupError::CaFile {
            path: path.display().to_string(),
            message,
        };
        // The OS's words alone for a file that can't be read ("No such file or directory").
        let pem = crate::file::read(path, MAX_CA_FILE).map_err(|e| ca_err(e.to_string()))?;
        ca_file::add_to(&mut roots, &pem).map_err(|e| ca_err(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only, said in ALPN so that no server picks anything else. A poller of at most
    // ten requests a second gains nothing from HTTP/2, and leaving it out keeps a second
    // protocol stack (and its history of denial-of-service fixes) out of Fluent Bit's process.
    // reqwest sets no ALPN on a configuration it is given, so this is the only place it is said.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// One reset or continuing request.
#[derive(Debug, Clone)]
pub enum Request {
    Reset {
        limit: u16,
        start_time: jiff::Timestamp,
    },
    Cursor(String),
}

impl Request {
    fn body(&self) -> String {
        match self {
            Self::Reset { limit, start_time } => {
                serde_json::json!({"limit": limit, "start_time": start_time.to_string()})
                    .to_string()
            }
            Self::Cursor(c) => serde_json::json!({ "cursor": c }).to_string(),
        }
    }
}

/// An API page's body, valid UTF-8.
pub struct RawPage {
    body: String,
}

impl RawPage {
    /// Parses the page, handing each item to `on_item` as soon as it is parsed (see
    /// [`parse_page`]: on error, whatever `on_item` did must be discarded).
    pub fn parse<'a>(
        &'a self,
        tape: &mut Tape<'a>,
        on_item: impl FnMut(Result<&mut Tape<'a>, JsonError>),
    ) -> Result<Envelope, ApiError> {
        parse_page(&self.body, tape, on_item)
            .map_err(|e| ApiError::Body(format!("invalid response JSON: {e}")))
    }

    /// The envelope alone (items are still checked, and counted).
    pub fn envelope(&self) -> Result<Envelope, ApiError> {
        self.parse(&mut Tape::default(), |_| {})
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The body's buffer, for the next page: a fresh one costs a page fault per 4 KiB read.
    pub fn into_buffer(self) -> Vec<u8> {
        self.body.into_bytes()
    }
}

/// What introspection tells us.
#[derive(Debug, Clone, Default)]
pub struct Introspection {
    pub features: Vec<String>,
    pub account_uuid: Option<String>,
    pub integration_uuid: Option<String>,
}

impl Introspection {
    /// The account whose state and records these are: introspection's, else the token's
    /// claim, else (v1 introspects no account) the integration's.
    pub fn account(&self, token: &Token) -> String {
        self.account_uuid
            .clone()
            .or_else(|| token.claims().account_uuid.clone())
            .or_else(|| self.integration_uuid.clone())
            .unwrap_or_else(|| "default".into())
    }

    /// The event types the token grants, in [`EventType::ALL`]'s order: what is collected when
    /// `events` is not set.
    pub fn granted(&self) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|k| self.features.iter().any(|f| f == k.as_str()))
            .collect()
    }

    /// The features, listed for a person: "none" rather than nothing.
    pub fn features_text(&self) -> String {
        match self.features.as_slice() {
            [] => "none".to_owned(),
            listed => listed.join(", "),
        }
    }

    /// Why nothing can be collected when [`Introspection::granted`] is empty and `events` is
    /// not set: `run` fails on it, and `check` too.
    pub fn grants_nothing(&self) -> String {
        format!(
            "the token grants none of signinattempts, itemusages, auditevents (its features: {}); nothing to collect: use a token issued for at least one of them",
            self.features_text()
        )
    }
}

#[derive(Deserialize)]
struct IntrospectV2 {
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    account_uuid: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct IntrospectV1 {
    #[serde(default, rename = "Features")]
    features: Vec<String>,
    #[serde(default, rename = "UUID")]
    uuid: Option<String>,
}

/// How much of a server's error message is logged.
const SHOWN_CHARS: usize = 300;

/// The longest account or integration uuid taken from introspection (the API's are 26).
const MAX_ID_LEN: usize = 64;

fn is_identifier(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The HTTP client for one account.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    route: Route,
    /// `host:port` of `base`, as a tunnel request through a proxy names it.
    target: String,
    credential: Arc<Credential>,
    version: ApiVersion,
    max_bytes: usize,
    /// How a proxy that refused the tunnel is asked why.
    probe: proxy_probe::Probe,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl Client {
    pub fn new(config: &Config, token: Token) -> Result<Client, SetupError> {
        let base = resolve_base_url(config, &token)?;
        let tls = tls_config(config)?;
        let probe = proxy_probe::Probe {
            wait: config.connect_timeout,
            tls: Arc::new(tls.clone()),
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(USER_AGENT)
            // Inflates a gzip page even when it was not asked for, as HTTP allows.
            .gzip(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout);
        if config.compression == Compression::None {
            let identity = reqwest::header::HeaderValue::from_static("identity");
            builder = builder.default_headers(
                [(reqwest::header::ACCEPT_ENCODING, identity)]
                    .into_iter()
                    .collect(),
            );
        }
        // A loopback address is this machine's, which a proxy cannot reach; over plain HTTP the
        // proxy would also read the token. So neither `proxy` nor `HTTP_PROXY` applies to it.
        // `proxy` replaces the environment's settings, `NO_PROXY` included, as the client
        // reads none of them once it is given one.
        let route = if is_loopback(&base) {
            builder = builder.no_proxy();
            // Names under `localhost` are loopback by RFC 6761, but the system's resolver may
            // not know them, or ask DNS: they are taken to loopback here, as curl does, so that
            // what is let through as loopback goes nowhere else. (`localhost` itself is left to
            // the hosts file, as before.)
            if let Some(host) = base.host_str()
                && under_localhost(host)
            {
                let loopback = [
                    (std::net::Ipv4Addr::LOCALHOST, 0).into(),
                    (std::net::Ipv6Addr::LOCALHOST, 0).into(),
                ];
                builder = builder.resolve_to_addrs(host, &loopback);
            }
            Route::Direct(Some(Bypass::Loopback))
        } else if let Some(url) = &config.proxy {
            let proxy =
                reqwest::Proxy::all(url.as_str()).map_err(|e| SetupError::Proxy(e.to_string()))?;
            builder = builder.proxy(proxy);
            Route::Proxy(Proxy::new(url.clone(), Origin::Setting))
        } else {
            crate::proxy_env::from_env(&base)?
        };
        let target = format!(
            "{}:{}",
            base.host_str().unwrap_or_default(),
            base.port_or_known_default().unwrap_or(443)
        );
        let http = builder
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        // The token given inline wins over `token_file` (see `load_token`): only a token read
        // from the file is read again.
        let file = config.token_file.clone().filter(|_| config.token.is_none());
        Ok(Client {
            http,
            base,
            route,
            target,
            credential: Arc::new(Credential::new(token, file)),
            version: config.api_version,
            max_bytes: config.max_response_bytes,
            probe,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether requests go through a proxy, which, and where it was set.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Where the requests go, and through which proxy, for the errors they meet.
    fn dest(&self) -> Dest<'_> {
        Dest {
            host: self.base.host_str().unwrap_or_default(),
            target: &self.target,
            https: self.base.scheme() == "https",
            proxy: self.route.proxy(),
        }
    }

    /// What the failed request `e` means. A proxy's refusal of the tunnel is asked about
    /// once more, for the status the HTTP client drops (see `proxy_probe`).
    async fn failed(&self, e: reqwest::Error) -> ApiError {
        let dest = self.dest();
        if let Some(proxy) = dest.proxy
            && error::tunnel_refused(&e)
            && let Some(answer) = self.probe.ask(proxy, dest.target).await
        {
            return error::refusal(answer, proxy, &dest);
        }
        network(e, &dest)
    }

    /// The token in use.
    pub fn token(&self) -> Arc<Token> {
        self.credential.current().token
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// This client with `token` instead, fixed (to try a token before using it).
    pub fn with_token(&self, token: Token) -> Client {
        Client {
            credential: Arc::new(Credential::new(token, None)),
            ..self.clone()
        }
    }

    pub fn host(&self) -> String {
        self.base.host_str().unwrap_or_default().to_owned()
    }

    /// Text the server chose (an error message, a redirect's target), made safe to log: the
    /// token and anything token-shaped redacted (a server may echo the request's headers),
    /// control characters escaped (a newline would forge a log line, ESC a terminal's colours),
    /// and cut to `max` characters.
    fn shown(&self, text: &str, max: usize) -> String {
        let token = self.token();
        let text = crate::token::redact(text, Some(token.secret().expose_secret()));
        let cut = text.char_indices().nth(max).map(|(at, _)| at);
        let mut out =
            crate::token::escape_controls(&text[..cut.unwrap_or(text.len())]).into_owned();
        if let Some(at) = cut {
            out.push_str(&format!("… ({} more bytes)", text.len() - at));
        }
        out
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let prefix = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{prefix}{path}"));
        u
    }

    /// Sends `req` and reads the body into `body` (emptied first; its capacity is reused).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        mut body: Vec<u8>,
    ) -> Result<Vec<u8>, ApiError> {
        let sent = req
            .bearer_auth(self.token().secret().expose_secret())
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Err(self.failed(e).await),
        };
        let status = resp.status();
        // Only a proxy asks for proxy credentials: one forwarding a plain-HTTP request.
        if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
            && let Some(proxy) = self.route.proxy()
        {
            return Err(ApiError::Proxy(proxy_auth_required(proxy)));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, jiff::Timestamp::now()));
        body.clear();
        // Room for the announced length, but a lying Content-Length must not allocate much.
        body.reserve(resp.content_length().unwrap_or(0).min(1 << 20) as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_bytes {
                        return Err(ApiError::TooLarge(self.max_bytes));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if status.is_success() => return Err(network(e, &self.dest())),
                Err(_) => break,
            }
        }
        if status.is_redirection() {
            // Shown in errors: a URL, cut short and printable whatever the server sent.
            let to = resp.headers().get(reqwest::header::LOCATION).map_or_else(
                || "nowhere given".to_owned(),
                |v| self.shown(&String::from_utf8_lossy(v.as_bytes()), 200),
            );
            return Err(ApiError::Status {
                status: status.as_u16(),
                message: format!("a redirect to {to}, not followed"),
                retry_after,
            });
        }
        if status != StatusCode::OK {
            let message = error_message(&body).map_or_else(
                || {
                    status
                        .canonical_reason()
                        .unwrap_or("no error message")
                        .to_owned()
                },
                |m| self.shown(&m, SHOWN_CHARS),
            );
            return Err(ApiError::Status {
                status: status.as_u16(),
                message,
                retry_after,
            });
        }
        Ok(body)
    }

    /// One page of `kind`.
    pub async fn fetch(&self, kind: EventType, request: &Request) -> Result<RawPage, ApiError> {
        self.fetch_into(kind, request, Vec::new()).await
    }

    /// One page of `kind`, read into `buffer` (a previous page's, see [`RawPage::into_buffer`]).
    pub async fn fetch_into(
        &self,
        kind: EventType,
        request: &Request,
        buffer: Vec<u8>,
    ) -> Result<RawPage, ApiError> {
        let url = self.url(&format!("/api/{}/{}", self.version, kind.as_str()));
        let req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body());
        let body = self.send(req, buffer).await?;
        // A stray non-UTF-8 byte in one item must not fail the whole page (serde_json rejects
        // it): replace invalid sequences with U+FFFD, which never touches JSON structure.
        let body = match String::from_utf8(body) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Ok(RawPage { body })
    }

    /// Validates the token and learns its features and account: v2, falling back to v1 on 404.
    pub async fn introspect(&self) -> Result<Introspection, ApiError> {
        match self
            .send(
                self.http.get(self.url("/api/v2/auth/introspect")),
                Vec::new(),
            )
            .await
        {
            Ok(body) => {
                let v: IntrospectV2 = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::Body(format!("invalid introspect JSON: {e}")))?;
                self.introspection(v.features, v.account_uuid, v.uuid)
            }
            Err(ApiError::Status { status: 404, .. }) => {
                let body = self
                    .send(self.http.get(self.url("/api/auth/introspect")), Vec::new())
                    .await
                    .map_err(introspect_too_large)?;
                let v: IntrospectV1 = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::Body(format!("invalid introspect JSON: {e}")))?;
                self.introspection(v.features, None, v.uuid)
            }
            Err(e) => Err(introspect_too_large(e)),
        }
    }

    /// The account and integration uuids name state files and appear in every record and log
    /// line, so they must be identifiers; features are only compared and shown.
    fn introspection(
        &self,
        features: Vec<String>,
        account_uuid: Option<String>,
        integration_uuid: Option<String>,
    ) -> Result<Introspection, ApiError> {
        for (name, id) in [("account_uuid", &account_uuid), ("uuid", &integration_uuid)] {
            if let Some(id) = id
                && !is_identifier(id)
            {
                return Err(ApiError::Body(format!(
                    "introspect returned a `{name}` that is not an identifier (1 to {MAX_ID_LEN} \
                     letters, digits, `-` or `_`): {}",
                    self.shown(id, 64)
                )));
            }
        }
        Ok(Introspection {
            features: features.iter().map(|f| self.shown(f, 64)).collect(),
            account_uuid,
            integration_uuid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn server_text_is_shown_redacted_escaped_and_cut() {
        let config = Config {
            base_url: Some("http://127.0.0.1:9/".parse().unwrap()),
            ..Config::default()
        };
        let token = Token::new(SecretString::from("SECRET-abc")).unwrap();
        let client = Client::new(&config, token).unwrap();
        assert_eq!(
            client.shown(
                "bad token: Bearer SECRET-abc\n2026 INFO forged\u{1b}[31m",
                300
            ),
            "bad token: Bearer [redacted]\\n2026 INFO forged\\u{1b}[31m"
        );
        assert_eq!(client.shown("déjà vu", 300), "déjà vu");
        assert_eq!(client.shown("éabcdef", 3), "éab… (4 more bytes)");
        assert_eq!(client.shown("abc", 3), "abc");
    }

    #[test]
    fn introspected_ids_must_be_identifiers() {
        assert!(is_identifier("A4UJZEXAMPLEACCTGQ7Q3NDIVM"));
        assert!(is_identifier("a-b_c"));
        for bad in ["", "../../tmp/x", "A\nB", "\u{1b}[31m", &"A".repeat(65)] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn envelope_tolerates_missing_and_extra_fields() {
        let p = RawPage {
            body: r#"{"cursor":"c","has_more":true,"items":[{"uuid":"a","new":1}],"x":2}"#.into(),
        };
        let e = p.envelope().unwrap();
        assert_eq!((e.items, e.has_more), (1, true));
        let p = RawPage {
            body: r#"{"cursor":"c"}"#.into(),
        };
        assert_eq!(p.envelope().unwrap().items, 0);
    }

    #[test]
    fn base_url_order_and_http_rule() {
        let token = Token::new(SecretString::from("opaque")).unwrap();
        let mut c = Config::default();
        assert!(matches!(
            resolve_base_url(&c, &token),
            Err(SetupError::NoBaseUrl)
        ));
        c.region = Some(crate::config::Region::Ca);
        assert_eq!(
            resolve_base_url(&c, &token).unwrap().as_str(),
            "https://events.1password.ca/"
        );
        c.base_url = Some("http://127.0.0.1:9/".parse().unwrap());
        assert!(resolve_base_url(&c, &token).is_ok());
        c.base_url = Some("http://example.com/".parse().unwrap());
        assert!(matches!(
            resolve_base_url(&c, &token),
            Err(SetupError::InsecureHttp(_))
        ));
        c.insecure_http = true;
        assert!(resolve_base_url(&c, &token).is_ok());
    }

    #[test]
    fn loopback_names_and_addresses() {
        for url in [
            "http://localhost:1/",
            "http://LOCALHOST:1/",
            // The same name, fully qualified.
            "http://localhost.:1/",
            // Names under it (RFC 6761).
            "http://foo.localhost:1/",
            "http://a.b.LOCALHOST.:1/",
            "http://127.0.0.2:1/",
            "http://[::1]:1/",
        ] {
            assert!(is_loopback(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://localhost..:1/",
            "http://localhost.example:1/",
            "http://mylocalhost:1/",
            "http://my-localhost:1/",
            "http://localhost.localhost.example:1/",
            "http://10.0.0.1:1/",
        ] {
            assert!(!is_loopback(&url.parse().unwrap()), "{url}");
        }
    }
}
