//! `MockServer`: the handle tests use (own OS thread + runtime, drop to stop), the shared
//! router, and the request log / fault middleware.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::accounts::{Account, Accounts, MspAccounts, Seeding};
use crate::api::{self, Served};
use crate::auth::{self, Region, TokenSpec};
use crate::body::{BoundedBody, LIMIT, MAX_BODY_READS, TimedBody};
use crate::clock::Clock;
use crate::faults::{Fault, FaultKind, Faults};
use crate::limits::RateLimits;
use crate::state::{Behaviour, Counters, MockState, NoSuchPath, OTHER_PATHS, Stats};
use crate::store::{Kind, StoreError};
use crate::tls::{Tls, TlsListener};

/// Everything `op-events-mock serve` can be told.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Generated events per type and account.
    pub events_per_type: usize,
    pub seed: u64,
    /// Region for requests whose `Host` is not one of the four events hosts.
    pub region: Region,
    /// Signing key for tokens and cursors; `None` = [`auth::DEV_KEY`].
    pub key: Option<String>,
    /// Per-account requests per minute (0 = off).
    pub rate_limit_per_minute: u32,
    /// Per-account requests per hour (0 = off).
    pub rate_limit_per_hour: u32,
    /// Send `Retry-After` on 429 (the real API does not document it).
    pub retry_after_header: bool,
    /// Start the clock here instead of real time.
    pub now: Option<Timestamp>,
    /// Extra events for the default account (see README).
    pub fixtures_dir: Option<PathBuf>,
    /// Serve `/_mock/` to non-loopback peers too.
    pub admin_allow_remote: bool,
    /// Generated timestamps spread over this many days before now.
    pub span_days: u32,
    /// Events older than this many days are never served.
    pub retention_days: u32,
    /// 400 on request fields other than cursor/limit/start_time/end_time (the real API ignores them).
    pub reject_unknown_fields: bool,
    /// Account whose dataset is generated at start and receives fixtures.
    pub default_account: String,
    /// Compress API responses with gzip when the request's `Accept-Encoding` allows it (the
    /// real API's behaviour is not documented; clients must cope with both).
    pub gzip: bool,
    /// Serve HTTPS instead of plain HTTP.
    pub tls: Option<Tls>,
    /// A connection that has not sent a whole request head this long after it opened, or after
    /// its previous response, is closed, and a request body not whole this long after the
    /// server began waiting for it is answered 408 (`None` = never): a slow or silent client
    /// must not hold a connection for ever.
    pub header_read_timeout: Option<Duration>,
    /// The accounts whose v2 events carry the MSP fields (see [`MspAccounts`]).
    pub msp_accounts: MspAccounts,
    /// The most accounts the mock makes, the default one included (0 = no cap): each holds its
    /// dataset in memory until the server stops, and any token signed with the key makes one,
    /// so without a cap requests for ever new names grow the process without bound. Past it, a
    /// request for a new account is answered 403.
    pub max_accounts: usize,
}

/// [`MockConfig::max_accounts`] unless told otherwise: room for the accounts of a test of many
/// tenants, about 80 MB at the default 1000 events per type.
pub const DEFAULT_MAX_ACCOUNTS: usize = 32;

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            events_per_type: 1000,
            seed: 7,
            region: Region::Us,
            key: None,
            rate_limit_per_minute: 600,
            rate_limit_per_hour: 30_000,
            retry_after_header: true,
            now: None,
            fixtures_dir: None,
            admin_allow_remote: false,
            span_days: 90,
            retention_days: 120,
            reject_unknown_fields: false,
            default_account: "acme".into(),
            gzip: false,
            tls: None,
            header_read_timeout: Some(Duration::from_secs(30)),
            msp_accounts: MspAccounts::All,
            max_accounts: DEFAULT_MAX_ACCOUNTS,
        }
    }
}

/// Builds the shared state and generates the default account.
fn build_state(config: MockConfig) -> anyhow::Result<Arc<MockState>> {
    let start = config.now.unwrap_or_else(Timestamp::now);
    let oldest = start
        .checked_sub(SignedDuration::from_hours(24 * i64::from(config.span_days)))
        .ok();
    if !oldest.is_some_and(Clock::in_range) || !Clock::in_range(start) {
        anyhow::bail!(
            "the clock ({start}) and the span of generated events ({} days before it) must stay \
             within {} to {}",
            config.span_days,
            Clock::EARLIEST,
            Clock::LATEST,
        );
    }
    let clock = Clock::new(config.now);
    let retention_days = config.retention_days;
    let state = Arc::new(MockState {
        key: config
            .key
            .unwrap_or_else(|| auth::DEV_KEY.to_owned())
            .into_bytes(),
        run: crate::random_u64(),
        behaviour: Behaviour {
            region: config.region,
            retry_after_header: config.retry_after_header,
            reject_unknown_fields: config.reject_unknown_fields,
            admin_allow_remote: config.admin_allow_remote,
            retention: SignedDuration::from_hours(24 * i64::from(config.retention_days)),
            gzip: config.gzip,
        },
        accounts: Accounts::new(
            Seeding {
                anchor: start,
                seed: config.seed,
                events_per_type: config.events_per_type,
                span: SignedDuration::from_hours(24 * i64::from(config.span_days)),
                default_account: config.default_account.clone(),
                fixtures_dir: config.fixtures_dir,
                msp_accounts: config.msp_accounts,
            },
            config.max_accounts,
        ),
        clock,
        limits: RateLimits::new(config.rate_limit_per_minute, config.rate_limit_per_hour),
        faults: Faults::default(),
        counters: Counters::default(),
        revoked: auth::Revoked::default(),
        minted: Default::default(),
    });
    let stale = state.accounts.check_fixtures(state.horizon_ns())?;
    if let Some(newest) = stale.newest {
        // The repo's fixtures date from 2024: on today's clock the API would never serve them,
        // and nothing else would say so.
        let suggested = Timestamp::from_nanosecond(i128::from(newest))
            .ok()
            .and_then(|t| t.checked_add(SignedDuration::from_hours(24)).ok())
            .and_then(|t| t.round(jiff::Unit::Hour).ok())
            .map_or_else(|| "<time>".to_owned(), |t| t.to_string());
        tracing::warn!(
            "{} of the {} fixture events are older than the {}-day retention on the mock clock \
             ({}) and will never be served; start with --now {suggested} (and mint tokens with \
             --issued-at {suggested}) to serve them",
            stale.count,
            stale.total,
            retention_days,
            state
                .clock
                .now()
                .round(jiff::Unit::Second)
                .unwrap_or(state.clock.now()),
        );
    }
    let account = &config.default_account;
    state.accounts.named(account)?;
    Ok(state)
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(crate::admin::routes(state.clone()))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(crate::body::close_after_timeout))
        .with_state(state)
}

/// The client's address (the admin API serves loopback peers only), over HTTP or HTTPS.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

fn scheme(tls: Option<&Tls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// The URL a client on this machine connects to. An unspecified listening address (`0.0.0.0`,
/// `::`) is not one to connect to on every OS, so its family's loopback stands in.
fn local_url(scheme: &str, mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{addr}")
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until `shutdown` completes.
async fn run(
    listener: TcpListener,
    tls: Option<&Tls>,
    app: Router,
    header_read_timeout: Option<Duration>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => serve_connections(listener, app, header_read_timeout, shutdown).await,
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)?;
            serve_connections(listener, app, header_read_timeout, shutdown).await
        }
    }
    Ok(())
}

/// The accept loop for HTTP and HTTPS alike, in place of `axum::serve`, which gives hyper no
/// timer and so no header read timeout: a client that sent its request head slowly, or never,
/// held its connection (and a task) for as long as it liked.
///
/// The same timeout bounds request bodies (see [`TimedBody`]): a client that sent a head and
/// then stalled mid-body is answered 408 and its connection closed. Bodies are read
/// [`MAX_BODY_READS`] at a time, and one declared over 2 MiB is refused unread (see
/// [`BoundedBody`]).
///
/// On `shutdown`, stops accepting, asks every connection to finish its request in flight and
/// close, and returns once all have or after [`SHUTDOWN_GRACE`], whichever is first: a client
/// that never finishes its request must not keep the process from exiting.
async fn serve_connections<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    // Shared by all connections: see `MAX_BODY_READS`.
    let reads = Arc::new(tokio::sync::Semaphore::new(MAX_BODY_READS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // Connections watch `draining` for shutdown and hold `open` until they end.
    let (drain, draining) = tokio::sync::watch::channel(());
    let (all_closed, open) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            connection = listener.accept() => connection,
            () = &mut shutdown => break,
        };
        let (app, reads) = (app.clone(), reads.clone());
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(|body| {
                let body = match header_read_timeout {
                    Some(limit) => Body::new(TimedBody::new(body, limit)),
                    None => Body::new(body),
                };
                Body::new(BoundedBody::new(body, reads.clone()))
            });
            *request.uri_mut() = api::normalize(std::mem::take(request.uri_mut()));
            request.extensions_mut().insert(ConnectInfo(Peer(peer)));
            app.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(io), service);
        let (mut draining, open) = (draining.clone(), open.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = draining.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Header timeouts, resets and the like end one client's connection, no more.
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(drain);
    drop(open);
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed.closed())
        .await
        .is_err()
    {
        tracing::info!(
            "connections still open {SHUTDOWN_GRACE:?} after shutdown began: dropping them"
        );
    }
}

/// The log target of the line saying the server accepts, which the binary prints at any
/// `--log` level.
pub const READY_TARGET: &str = "op_events_mock::ready";

/// How long shutdown waits for requests in flight before dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves the mock on `listener` until `shutdown` completes (the binary's entry point).
pub async fn serve(
    listener: TcpListener,
    mut config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = config.tls.take();
    let header_read_timeout = config.header_read_timeout;
    let state = build_state(config)?;
    let listening = listener.local_addr()?;
    let url = local_url(scheme(tls.as_ref()), listening);
    tracing::info!(target: READY_TARGET, %url, %listening, "op-events-mock ready");
    run(
        listener,
        tls.as_ref(),
        router(state),
        header_read_timeout,
        shutdown,
    )
    .await?;
    Ok(())
}

/// Applies injected faults to requests API endpoints serve, then logs and counts every request.
async fn observe(State(s): State<Arc<MockState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Normalized before routing (see `api::normalize`), as faults, shape and stats read it.
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let api_path = path.starts_with("/api/");
    let fault = s.faults.take(&method, &path);
    let reset = fault == Some(FaultKind::Reset);
    let truncated = fault == Some(FaultKind::Truncate);
    let v1 = api::is_v1_path(&path);
    // Faults other than a delay send their bytes as they are.
    let negotiated =
        s.behaviour.gzip && api_path && matches!(fault, None | Some(FaultKind::Delay(_)));
    let gzip = negotiated && accepts_gzip(&request);
    let response = match fault {
        None => next.run(request).await,
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            next.run(request).await
        }
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = api::error_body(status, v1).into_response();
            if code == 429 && s.behaviour.retry_after_header {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            r
        }
        Some(FaultKind::InvalidJson) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"items\":[{\"uuid\":\"7YQ5 <html>oops",
        )
            .into_response(),
        Some(FaultKind::Truncate) => truncate(next.run(request).await).await,
        Some(FaultKind::Reset) => broken_body(Response::new(Body::empty()), bytes::Bytes::new()),
    };
    if reset {
        // hyper sends a 200 head before the body fails, but the API answered nothing: counting
        // it with the 200s would make those count pages that were never served.
        s.counters.reset();
        let latency_us = started.elapsed().as_micros() as u64;
        tracing::info!(%method, %path, latency_us, "request ended by an injected reset");
        return response;
    }
    if truncated {
        // The client gets a head and half a body it cannot use: counting it with the answers
        // of its status (and its page's events as served) would overstate what was delivered.
        s.counters.truncated();
        let status = response.status().as_u16();
        let latency_us = started.elapsed().as_micros() as u64;
        tracing::info!(%method, %path, status, latency_us, "request answered with a body cut off by an injected truncate");
        return response;
    }
    let mut response = if gzip && response.status() == StatusCode::OK {
        s.counters.gzipped();
        compress(response).await
    } else {
        response
    };
    // Such an answer's body depends on `Accept-Encoding`, compressed or not.
    if negotiated && response.status() == StatusCode::OK {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let status = response.status().as_u16();
    let items = response.extensions().get::<Served>().map_or(0, |s| s.0);
    s.counters.served(items);
    // Bounded keys, so that stray or hostile requests cannot grow the stats without bound: the
    // API's endpoints by path, the admin API's by route (no account names), and the paths
    // neither has together.
    let key = match &route {
        Some(_) if api::is_endpoint(&path) => &path,
        Some(route)
            if crate::admin::is_admin_path(route.as_str())
                && response.extensions().get::<NoSuchPath>().is_none() =>
        {
            route.as_str()
        }
        _ => OTHER_PATHS,
    };
    s.counters.request(key, status);
    tracing::info!(%method, %path, status, items, latency_us = started.elapsed().as_micros() as u64, "request");
    response
}

/// Whether `Accept-Encoding` allows gzip (RFC 9110 12.5.3): `gzip` or its alias `x-gzip` with a
/// weight above 0, or, when neither is named, `*` with one.
fn accepts_gzip(request: &Request) -> bool {
    let (mut gzip, mut any) = (None, None);
    for coding in request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// The response with its body gzip-compressed.
async fn compress(response: Response) -> Response {
    use std::io::Write as _;
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let compressed = encoder
        .write_all(&bytes)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory cannot fail");
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(compressed))
}

/// The response with full `Content-Length` but only half its body before the connection drops.
async fn truncate(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut response = Response::from_parts(parts, Body::empty());
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    broken_body(response, bytes.slice(..bytes.len() / 2))
}

/// Replaces the body with `prefix` followed by an I/O error, which makes hyper drop the
/// connection. A non-empty prefix is flushed first, so the client sees headers and part of the body.
fn broken_body(mut response: Response, prefix: bytes::Bytes) -> Response {
    use futures_util::StreamExt as _;
    let flush = if prefix.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_millis(50)
    };
    let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(prefix) });
    let fail = futures_util::stream::once(async move {
        tokio::time::sleep(flush).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected fault",
        ))
    });
    *response.body_mut() = Body::from_stream(head.chain(fail));
    response
}

/// A running mock on its own OS thread and tokio runtime; dropping it shuts the server down.
pub struct MockServer {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<MockState>,
    default_region: Region,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// Starts on 127.0.0.1 with an ephemeral port; ready to accept when it returns.
    pub fn start(config: MockConfig) -> anyhow::Result<MockServer> {
        MockServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config)
    }

    pub fn start_on(addr: SocketAddr, mut config: MockConfig) -> anyhow::Result<MockServer> {
        let default_region = config.region;
        let tls = config.tls.take();
        let header_read_timeout = config.header_read_timeout;
        let scheme = scheme(tls.as_ref());
        let state = build_state(config)?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("op-events-mock".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
                    let graceful = async move {
                        stop_rx.wait_for(|s| *s).await.ok();
                    };
                    tokio::spawn(async move {
                        rx.await.ok();
                        stop_tx.send(true).ok();
                    });
                    // Returns at most SHUTDOWN_GRACE after the stop, open connections or not.
                    run(listener, tls.as_ref(), app, header_read_timeout, graceful)
                        .await
                        .ok();
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(MockServer {
            addr,
            scheme,
            state,
            default_region,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when serving TLS (the loopback address when
    /// started on `0.0.0.0` or `::`).
    pub fn url(&self) -> String {
        local_url(self.scheme, self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A valid token for the default region, issued now (mock clock), expiring in a year.
    ///
    /// # Panics
    /// On a feature no endpoint has (a typo would otherwise surface later, as a 401), as the
    /// admin API refuses it. [`mint`](Self::mint) makes any token.
    pub fn token(&self, account: &str, features: &[&str]) -> String {
        let now = self.now();
        let features = features
            .iter()
            .map(|f| auth::parse_feature(f))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("MockServer::token: {e}"));
        self.mint(&TokenSpec {
            region: self.default_region,
            features,
            account: account.to_owned(),
            issued_at: now,
            expires_at: Some(now + SignedDuration::from_hours(24 * 365)),
            legacy_audience: false,
        })
    }

    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.state.mint(spec)
    }

    /// Revokes `token`, as 1Password does when a rotation retires the old token: from now on
    /// every endpoint answers it as an invalid one (401). Other tokens, of the same account
    /// too, keep working, and so does a token minted later for the same spec.
    ///
    /// # Panics
    /// On a token this mock did not sign (malformed, or signed with another key), which it
    /// would never accept anyway, as the admin API refuses it.
    pub fn revoke(&self, token: &str) {
        let signature = auth::signature(&self.state.key, token)
            .unwrap_or_else(|e| panic!("MockServer::revoke: {e}"));
        self.state.revoked.insert(signature);
    }

    pub fn account_uuid(&self, account: &str) -> String {
        auth::account_uuid(account)
    }

    /// Made if new, unlike over the admin API: the test is in control, and an account's dataset
    /// does not depend on when it is made. Panics on a new one past `max_accounts`.
    fn account(&self, account: &str, kind: &str) -> (Arc<Account>, Kind) {
        let kind = Kind::parse(kind).unwrap_or_else(|| panic!("unknown event type {kind:?}"));
        let account =
            (self.state.accounts.named(account)).unwrap_or_else(|e| panic!("MockServer: {e}"));
        (account, kind)
    }

    /// Ingests `items` (v2 shape) now, in order; all or none: an item that is not an object
    /// with an RFC 3339 `timestamp` rejects the call.
    pub fn append(&self, account: &str, kind: &str, items: Vec<Value>) -> Result<(), StoreError> {
        let (account, kind) = self.account(account, kind);
        account.append(kind, &items)
    }

    /// Ingests `n` new realistic events; `late` = timestamps minutes to hours before now.
    pub fn generate(&self, account: &str, kind: &str, n: usize, late: bool) {
        let (account, kind) = self.account(account, kind);
        account.generate(kind, n, self.now(), late);
    }

    /// Every event held, in ingestion order, as v2 serves it.
    pub fn events(&self, account: &str, kind: &str) -> Vec<Value> {
        let (account, kind) = self.account(account, kind);
        account.log(kind).events(None, account.v2_form())
    }

    /// The events inside retention, in ingestion order, as v2 serves them.
    pub fn servable_events(&self, account: &str, kind: &str) -> Vec<Value> {
        let (account, kind) = self.account(account, kind);
        account
            .log(kind)
            .events(Some(self.state.horizon_ns()), account.v2_form())
    }

    /// Panics on a fault that could never fire as meant (see [`FaultError`](crate::FaultError)), as on a bad test.
    pub fn inject(&self, fault: Fault) {
        if let Err(e) = self.state.faults.inject(fault) {
            panic!("cannot inject that fault: {e}");
        }
    }

    /// Panics outside 1684 to 2255, times the store cannot hold.
    pub fn set_now(&self, now: Timestamp) {
        assert!(
            self.state.clock.set(now),
            "{now} is out of the mock's range"
        );
    }

    /// Panics when that leaves 1684 to 2255.
    pub fn advance(&self, by: Duration) {
        assert!(
            self.state.clock.advance(by),
            "advancing by {by:?} leaves the mock's range"
        );
    }

    pub fn now(&self) -> Timestamp {
        self.state.clock.now()
    }

    pub fn stats(&self) -> Stats {
        self.state.counters.snapshot()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::connect_info::MockConnectInfo;
    use tower::ServiceExt as _;

    async fn admin_status(peer: [u8; 4], admin_allow_remote: bool) -> StatusCode {
        let config = MockConfig {
            events_per_type: 1,
            admin_allow_remote,
            ..MockConfig::default()
        };
        let app = router(build_state(config).unwrap())
            .layer(MockConnectInfo(Peer(SocketAddr::from((peer, 4000)))));
        let request = Request::get("/_mock/stats").body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn the_admin_api_is_loopback_only_unless_allowed() {
        assert_eq!(
            admin_status([10, 0, 0, 5], false).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(admin_status([10, 0, 0, 5], true).await, StatusCode::OK);
        assert_eq!(admin_status([127, 0, 0, 1], false).await, StatusCode::OK);
    }
}
