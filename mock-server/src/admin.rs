//! `/_mock/` routes: append events, move the clock, inject faults, read stats, list events,
//! mint and revoke tokens. Loopback peers only unless `--admin-allow-remote`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{Account, AccountError, Accounts};
use crate::auth::{self, AuthError, Region, TokenSpec};
use crate::clock::Clock;
use crate::faults::{Fault, FaultKind};
use crate::rfc3339;
use crate::server::Peer;
use crate::state::{MockState, NoSuchPath};
use crate::store::Kind;

pub fn routes(state: Arc<MockState>) -> Router<Arc<MockState>> {
    Router::new()
        .route("/_mock/stats", get(stats))
        .route("/_mock/clock", get(clock).post(set_clock))
        .route(
            "/_mock/faults",
            get(list_faults).post(inject).delete(clear_faults),
        )
        .route("/_mock/tokens", post(token))
        .route("/_mock/tokens/revoke", post(revoke))
        .route(
            "/_mock/accounts/{account}/{kind}/events",
            get(list).post(append),
        )
        .layer(middleware::from_fn_with_state(state, loopback_only))
}

/// Whether `path` is the admin API's, whose errors have its own shape.
pub fn is_admin_path(path: &str) -> bool {
    path == "/_mock" || path.starts_with("/_mock/")
}

/// An admin path no route serves, answered in the admin API's shape with the routes there are.
pub fn not_found(path: &str) -> Response {
    let message = format!(
        "no admin endpoint at {path}; there are /_mock/stats, /_mock/clock, /_mock/faults, \
         /_mock/tokens, /_mock/tokens/revoke and /_mock/accounts/{{account}}/{{type}}/events"
    );
    fail(StatusCode::NOT_FOUND, message)
}

/// An admin route asked with a method it does not take.
pub fn method_not_allowed(method: &Method, path: &str) -> Response {
    let message = format!("{path} does not take {method}");
    fail(StatusCode::METHOD_NOT_ALLOWED, message)
}

fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"status": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

/// The request body, or why it could not be read (over 2 MiB: 413; not in time: 408) in the
/// admin API's JSON shape.
macro_rules! read_body {
    ($body:expr) => {
        match $body {
            Ok(value) => value,
            Err(e) => {
                let (status, message) = crate::body::rejection(&e);
                return fail(status, message);
            }
        }
    };
}

/// The value of an extractor, or its rejection (a path segment that is not UTF-8, a query
/// that does not parse) answered in the admin API's JSON shape.
macro_rules! extract {
    ($extracted:expr) => {
        match $extracted {
            Ok(value) => value,
            Err(e) => return fail(e.status(), e.body_text()),
        }
    };
}

async fn loopback_only(
    State(s): State<Arc<MockState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    if !s.behaviour.admin_allow_remote && !peer.ip().is_loopback() {
        return fail(
            StatusCode::FORBIDDEN,
            "the admin API is loopback-only (see --admin-allow-remote)",
        );
    }
    next.run(request).await
}

async fn stats(State(s): State<Arc<MockState>>) -> Response {
    axum::Json(s.counters.snapshot()).into_response()
}

async fn clock(State(s): State<Arc<MockState>>) -> Response {
    axum::Json(json!({"now": s.clock.now().to_string()})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    #[serde(default, deserialize_with = "rfc3339::deserialize_timestamp_opt")]
    now: Option<jiff::Timestamp>,
    advance_seconds: Option<u64>,
}

const CLOCK_CHANGES: &str = "expected {\"now\": an RFC 3339 date-time} or {\"advance_seconds\": N}";

async fn set_clock(
    State(s): State<Arc<MockState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = read_body!(body);
    let moved = match serde_json::from_slice::<ClockChange>(&body) {
        Ok(ClockChange {
            now: Some(now),
            advance_seconds: None,
        }) => s.clock.set(now),
        Ok(ClockChange {
            now: None,
            advance_seconds: Some(secs),
        }) => s.clock.advance(Duration::from_secs(secs)),
        Ok(_) => return fail(StatusCode::BAD_REQUEST, CLOCK_CHANGES),
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("{e}; {CLOCK_CHANGES}")),
    };
    if !moved {
        let range = format!(
            "the clock must stay within {} to {}",
            Clock::EARLIEST,
            Clock::LATEST
        );
        return fail(StatusCode::BAD_REQUEST, range);
    }
    clock(State(s)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    kind: String,
    #[serde(default = "one")]
    count: u32,
    path: Option<String>,
    delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

/// The queued faults, in the order they apply, each as `POST /_mock/faults` takes it (with the
/// uses it has left as its count): a test can see what a failed one left behind.
async fn list_faults(State(s): State<Arc<MockState>>) -> Response {
    let faults: Vec<Value> = s
        .faults
        .list()
        .into_iter()
        .map(|f| {
            let mut fault = json!({"count": f.count, "path": f.path});
            let kind = match f.kind {
                FaultKind::Status(code) => code.to_string(),
                FaultKind::Delay(delay) => {
                    fault["delay_ms"] = json!(delay.as_millis());
                    "delay".to_owned()
                }
                FaultKind::Truncate => "truncate".to_owned(),
                FaultKind::Reset => "reset".to_owned(),
                FaultKind::InvalidJson => "invalid_json".to_owned(),
            };
            fault["kind"] = json!(kind);
            fault
        })
        .collect();
    axum::Json(faults).into_response()
}

/// Drops every queued fault, so that one test's leftovers do not hit the next.
async fn clear_faults(State(s): State<Arc<MockState>>) -> Response {
    axum::Json(json!({"cleared": s.faults.clear()})).into_response()
}

const FAULT_KINDS: &str = "a status from 400 to 599 as three decimal digits (\"503\"), \"delay\" \
                           (with delay_ms), \"truncate\", \"reset\" or \"invalid_json\"";

/// A status code written as the README shows them, plain decimal digits without a leading zero:
/// `str::parse` would also take "+500" and "0500", which no one writes on purpose.
fn status_code(kind: &str) -> Option<u16> {
    let plain = kind.bytes().all(|b| b.is_ascii_digit()) && !kind.starts_with('0');
    plain.then(|| kind.parse().ok()).flatten()
}

/// Refuses what could never fire as meant (a status that is no error, count 0, a path the API
/// does not have, a delay of no stated length or over ten minutes), saying what is allowed:
/// such a fault would otherwise be queued in silence and the test that relies on it pass or
/// fail for the wrong reason.
async fn inject(State(s): State<Arc<MockState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = read_body!(body);
    let f = match serde_json::from_slice::<FaultRequest>(&body) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("{e}; expected {{\"kind\", \"count\"?, \"path\"?, \"delay_ms\"?}}"),
            );
        }
    };
    let kind = match f.kind.as_str() {
        "delay" => match f.delay_ms {
            Some(ms) => FaultKind::Delay(Duration::from_millis(ms)),
            None => {
                let message = "kind \"delay\" needs delay_ms, the milliseconds to wait";
                return fail(StatusCode::BAD_REQUEST, message.to_owned());
            }
        },
        "truncate" => FaultKind::Truncate,
        "reset" => FaultKind::Reset,
        "invalid_json" => FaultKind::InvalidJson,
        other => match status_code(other) {
            Some(code) => FaultKind::Status(code),
            None => {
                let message = format!("unknown kind {other:?}; allowed: {FAULT_KINDS}");
                return fail(StatusCode::BAD_REQUEST, message);
            }
        },
    };
    if f.delay_ms.is_some() && !matches!(kind, FaultKind::Delay(_)) {
        let message = format!("delay_ms applies to kind \"delay\" only, not {:?}", f.kind);
        return fail(StatusCode::BAD_REQUEST, message);
    }
    let fault = Fault {
        kind,
        count: f.count,
        path: f.path,
    };
    match s.faults.inject(fault) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    account: Option<String>,
    features: Option<Vec<String>>,
    region: Option<String>,
    expires_in_seconds: Option<i64>,
    never_expires: Option<bool>,
    legacy_audience: Option<bool>,
}

async fn token(State(s): State<Arc<MockState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = read_body!(body);
    let Ok(t) = serde_json::from_slice::<TokenRequest>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "expected {\"account\"?, \"features\"?, \"region\"?, \"expires_in_seconds\"?, \"never_expires\"?, \"legacy_audience\"?}",
        );
    };
    let region = match t.region.as_deref().map(str::parse::<Region>) {
        None => s.behaviour.region,
        Some(Ok(r)) => r,
        Some(Err(e)) => return fail(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = t
        .features
        .iter()
        .flatten()
        .try_for_each(|f| auth::parse_feature(f).map(drop))
    {
        return fail(StatusCode::BAD_REQUEST, e.to_string());
    }
    if let Some(Err(e)) = t.account.as_deref().map(auth::parse_account) {
        return fail(StatusCode::BAD_REQUEST, e.to_string());
    }
    let now = s.clock.now();
    let expires_at = match (t.never_expires.unwrap_or(false), t.expires_in_seconds) {
        (true, Some(_)) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "expires_in_seconds and never_expires exclude each other",
            );
        }
        (true, None) => None,
        (false, seconds) => {
            let lifetime = jiff::SignedDuration::from_secs(seconds.unwrap_or(365 * 86_400));
            let Ok(at) = now.checked_add(lifetime) else {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "expires_in_seconds is out of range",
                );
            };
            Some(at)
        }
    };
    let spec = TokenSpec {
        region,
        features: t
            .features
            .unwrap_or_else(|| Kind::ALL.iter().map(|k| k.name().to_owned()).collect()),
        account: t
            .account
            .unwrap_or_else(|| s.accounts.default_name().to_owned()),
        issued_at: now,
        expires_at,
        legacy_audience: t.legacy_audience.unwrap_or(false),
    };
    axum::Json(json!({"token": s.mint(&spec), "account_uuid": auth::account_uuid(&spec.account)}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    token: String,
}

/// Revokes a token this mock signed (expired or not; again is no error): 204. Not JSON or
/// not `{"token"}`, or a token that is no JWT: 400. A well-formed token signed with another
/// key: 404, as no such token was minted here, and every endpoint refuses it already.
async fn revoke(State(s): State<Arc<MockState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = read_body!(body);
    let Ok(r) = serde_json::from_slice::<RevokeRequest>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "expected {\"token\": a minted token}",
        );
    };
    match auth::signature(&s.key, r.token.trim()) {
        Ok(signature) => {
            s.revoked.insert(signature);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(AuthError::BadSignature) => fail(
            StatusCode::NOT_FOUND,
            "not a token of this mock: its signature does not match the mock's key (--key)",
        ),
        Err(e) => fail(
            StatusCode::BAD_REQUEST,
            format!("{e}; expected a JWT (header.payload.signature)"),
        ),
    }
}

/// The account and event type an admin path names, or the response saying why there is none.
/// `find` is [`Accounts::named`] (appending makes the account) or [`Accounts::used`] (reading
/// does not).
fn account_kind(
    s: &MockState,
    account: &str,
    kind: &str,
    find: fn(&Accounts, &str) -> Result<Arc<Account>, AccountError>,
) -> Result<(Arc<Account>, Kind), Box<Response>> {
    let Some(kind) = Kind::parse(kind) else {
        let message = format!(
            "unknown event type {kind:?}; expected signinattempts, itemusages or auditevents"
        );
        // Counted with the other paths no endpoint has: one stats row per typo would grow
        // without bound.
        let mut response = fail(StatusCode::NOT_FOUND, message);
        response.extensions_mut().insert(NoSuchPath);
        return Err(Box::new(response));
    };
    // 404 for an account never used, 403 for a new one past `--max-accounts`.
    let account = find(&s.accounts, account).map_err(|e| {
        let status = match e {
            AccountError::Unused(_) => StatusCode::NOT_FOUND,
            AccountError::Full(_) => StatusCode::FORBIDDEN,
            AccountError::Fixtures(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Box::new(fail(status, e.to_string()))
    })?;
    Ok((account, kind))
}

/// The most events one `{"generate": N}` builds: the events are built in memory before they
/// are appended, so an unbounded N could exhaust memory (and abort the server) or overflow.
const MAX_GENERATE: u64 = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generate {
    generate: u64,
    #[serde(default)]
    late: bool,
}

async fn append(
    State(s): State<Arc<MockState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Path((account, kind)) = extract!(path);
    let body = read_body!(body);
    // Appending is how a test seeds an account before its collector asks: it makes one.
    let (account, kind) = match account_kind(&s, &account, &kind, Accounts::named) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let before = account.log(kind).len();
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => {
            if let Err(e) = account.append(kind, &items) {
                return fail(StatusCode::BAD_REQUEST, e.to_string());
            }
        }
        Ok(v @ Value::Object(_)) => match serde_json::from_value::<Generate>(v) {
            Ok(g) if g.generate > MAX_GENERATE => {
                let message = format!(
                    "generate {} is more than {MAX_GENERATE} events per request; \
                     send several requests",
                    g.generate
                );
                return fail(StatusCode::BAD_REQUEST, message);
            }
            Ok(g) => account.generate(kind, g.generate as usize, s.clock.now(), g.late),
            Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()),
        },
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "expected a JSON array of events or {\"generate\": N, \"late\": bool}",
            );
        }
    }
    let total = account.log(kind).len();
    axum::Json(json!({"appended": total - before, "total": total})).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    servable: bool,
    #[serde(default)]
    format: Option<String>,
}

async fn list(
    State(s): State<Arc<MockState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Path((account, kind)) = extract!(path);
    let Query(q) = extract!(query);
    let (account, kind) = match account_kind(&s, &account, &kind, Accounts::used) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let ndjson = match q.format.as_deref() {
        None | Some("json") => false,
        Some("ndjson") => true,
        Some(_) => return fail(StatusCode::BAD_REQUEST, "format: json or ndjson"),
    };
    let horizon = q.servable.then(|| s.horizon_ns());
    let mut out = Vec::new();
    if !ndjson {
        out.push(b'[');
    }
    account.log(kind).raw(horizon, account.v2_form(), |json| {
        if !ndjson && out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(json);
        if ndjson {
            out.push(b'\n');
        }
    });
    if !ndjson {
        out.push(b']');
    }
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    ([(header::CONTENT_TYPE, content_type)], out).into_response()
}
