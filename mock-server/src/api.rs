//! The public routes (v1, v2, introspect) and their error bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest as _, Path, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use crate::accounts::{Account, AccountError};
use crate::auth::{self, AuthError, Claims, Region};
use crate::cursor::Cursor;
use crate::limits::Exhausted;
use crate::rfc3339;
use crate::state::MockState;
use crate::store::{Form, Kind, Window};

/// Header carrying the mock's reason for an error; bodies keep the real API's terse messages.
pub const REASON_HEADER: &str = "x-op-events-mock-reason";
const DEFAULT_LIMIT: u16 = 100;
const HOUR_NS: i64 = 3_600_000_000_000;

/// Events in a response's page, for the request log and, once the page went out whole, the
/// stats' `events_served`.
#[derive(Clone, Copy)]
pub struct Served(pub usize);

pub fn routes() -> Router<Arc<MockState>> {
    Router::new()
        .route("/api/auth/introspect", get(introspect_v1))
        .route("/api/v2/auth/introspect", get(introspect_v2))
        // Any method: which of 404 and 405 a wrong method gets depends on the path (see `events`).
        .route("/api/{version}/{kind}", any(events))
}

/// The request target with its percent-encoded unreserved characters (letters, digits,
/// `-._~`) decoded: RFC 3986 (6.2.2.2) makes both spellings one URI, so
/// `/api/v2/auth/intro%73pect` is introspect. Applied before routing, so that routing, faults,
/// error shapes and stats all read the same path. Other escapes stay as they are: `%2F`
/// separates no segments, and no endpoint's name has any of them.
pub fn normalize(uri: Uri) -> Uri {
    let path = uri.path();
    if !path.contains('%') {
        return uri;
    }
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let unreserved = (bytes[i] == b'%')
            .then(|| hex(bytes.get(i + 1)).zip(hex(bytes.get(i + 2))))
            .flatten()
            .map(|(high, low)| (high * 16 + low) as u8)
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        match unreserved {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // ASCII escapes became ASCII bytes: the path is still UTF-8.
    let Ok(mut target) = String::from_utf8(out) else {
        return uri;
    };
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    // Unreserved characters are valid anywhere in a path: rebuilding cannot fail, but if it
    // did, the target as sent is still a valid one.
    let mut parts = uri.clone().into_parts();
    match target.parse() {
        Ok(target) => {
            parts.path_and_query = Some(target);
            Uri::from_parts(parts).unwrap_or(uri)
        }
        Err(_) => uri,
    }
}

/// The API version whose error shape a path uses.
pub fn is_v1_path(path: &str) -> bool {
    !path.starts_with("/api/v2/")
}

/// Whether `path` is one of the API's endpoints (introspect, or an event type's, v1 or v2).
pub fn is_endpoint(path: &str) -> bool {
    match path {
        "/api/auth/introspect" | "/api/v2/auth/introspect" => true,
        _ => path
            .strip_prefix("/api/v1/")
            .or_else(|| path.strip_prefix("/api/v2/"))
            .is_some_and(|kind| Kind::parse(kind).is_some()),
    }
}

/// Whether a `method` request to `path` reaches one of the API's endpoints rather than a 404
/// or 405: introspect takes GET (and so HEAD), the event types POST.
pub fn is_endpoint_request(method: &Method, path: &str) -> bool {
    let introspect = matches!(path, "/api/auth/introspect" | "/api/v2/auth/introspect");
    let takes = if introspect {
        method == Method::GET || method == Method::HEAD
    } else {
        method == Method::POST
    };
    takes && is_endpoint(path)
}

/// Paths no route serves: the API's error shape (the admin API's under `/_mock/`), so that
/// clients parsing error bodies never meet an empty or plain-text one.
pub async fn not_found(uri: Uri) -> Response {
    if crate::admin::is_admin_path(uri.path()) {
        return crate::admin::not_found(uri.path());
    }
    error_body(StatusCode::NOT_FOUND, is_v1_path(uri.path())).into_response()
}

/// A known path with the wrong method (`POST` on introspect). The events route takes every
/// method and answers its own 405s, as only its segments say whether the path is known.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    if crate::admin::is_admin_path(uri.path()) {
        return crate::admin::method_not_allowed(&method, uri.path());
    }
    error_body(StatusCode::METHOD_NOT_ALLOWED, is_v1_path(uri.path())).into_response()
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    RateLimited(Exhausted),
    Status(StatusCode, String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Unauthorized(e.to_string())
    }
}

impl ApiError {
    /// The documented body for this error in the v1 (`{"Error":{"Message"}}`) or v2
    /// (`{"status","message"}`) shape.
    pub fn response(self, v1: bool, retry_after_header: bool) -> Response {
        let (status, reason, retry_after) = match self {
            ApiError::BadRequest(r) => (StatusCode::BAD_REQUEST, r, None),
            ApiError::Unauthorized(r) => (StatusCode::UNAUTHORIZED, r, None),
            ApiError::RateLimited(spent) => (
                StatusCode::TOO_MANY_REQUESTS,
                spent.to_string(),
                Some(spent.retry_after),
            ),
            ApiError::Status(status, r) => (status, r, None),
        };
        let mut response = error_body(status, v1).into_response();
        let headers = response.headers_mut();
        if let Ok(reason) = HeaderValue::from_str(&reason) {
            headers.insert(REASON_HEADER, reason);
        }
        // RFC 7235 asks every 401 to name the scheme it takes.
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let (Some(secs), true) = (retry_after, retry_after_header) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Status and JSON error body.
pub fn error_body(
    status: StatusCode,
    v1: bool,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
    let message = status.canonical_reason().unwrap_or("Error");
    let body = if v1 {
        json!({"Error": {"Message": message}})
    } else {
        json!({"status": status.as_u16(), "message": message})
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// Checks token, region and feature. Apart from [`admit`] so that the events endpoints can
/// check it before they read the body: an unauthenticated client must not make the mock wait
/// for, or buffer, a body of up to 2 MiB.
fn authorize(
    s: &MockState,
    headers: &HeaderMap,
    feature: Option<Kind>,
) -> Result<Claims, ApiError> {
    let region = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(Region::from_host)
        .unwrap_or(s.behaviour.region);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let claims = auth::verify(&s.key, token, s.clock.now(), &s.revoked)?;
    if !claims
        .audience
        .iter()
        .any(|a| a == region.host() || a == auth::LEGACY_AUDIENCE)
    {
        return Err(AuthError::WrongRegion.into());
    }
    if let Some(kind) = feature
        && !claims.features.iter().any(|f| f == kind.name())
    {
        return Err(AuthError::MissingFeature(kind.name().to_owned()).into());
    }
    Ok(claims)
}

/// Loads the account, then checks the rate limit; every authorized request admitted here
/// counts. The account comes first so that a request refused for it (403 when the mock holds
/// `--max-accounts` already) leaves no rate windows behind either.
fn admit(s: &MockState, claims: &Claims) -> Result<Arc<Account>, ApiError> {
    let load = || s.accounts.get(&claims.account_name, &claims.account_uuid);
    // A new account's dataset is generated here: let other requests move on meanwhile.
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let account = if multi_thread {
        tokio::task::block_in_place(load)
    } else {
        load()
    }
    .map_err(|e| {
        let status = match e {
            AccountError::Full(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::Status(status, e.to_string())
    })?;
    s.limits
        .admit(&claims.account_uuid, s.clock.now().as_second())
        .map_err(ApiError::RateLimited)?;
    Ok(account)
}

/// [`authorize`] then [`admit`], for the endpoints that take no body.
fn authenticate(s: &MockState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let claims = authorize(s, headers, None)?;
    admit(s, &claims)?;
    Ok(claims)
}

async fn introspect_v1(State(s): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    match authenticate(&s, &headers) {
        Ok(c) => axum::Json(json!({
            "UUID": c.integration_uuid, "IssuedAt": c.issued_at.to_string(), "Features": c.features,
        }))
        .into_response(),
        Err(e) => e.response(true, s.behaviour.retry_after_header),
    }
}

async fn introspect_v2(State(s): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    match authenticate(&s, &headers) {
        Ok(c) => axum::Json(json!({
            "uuid": c.integration_uuid, "issued_at": c.issued_at.to_string(), "features": c.features,
            "account_uuid": c.account_uuid,
        }))
        .into_response(),
        Err(e) => e.response(false, s.behaviour.retry_after_header),
    }
}

async fn events(
    State(s): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    request: axum::extract::Request,
) -> Response {
    // A segment that is not UTF-8 once decoded names nothing the API has.
    let Ok(Path((version, kind))) = path else {
        return error_body(StatusCode::NOT_FOUND, is_v1_path(uri.path())).into_response();
    };
    let v1 = match version.as_str() {
        "v1" => true,
        "v2" => false,
        _ => return error_body(StatusCode::NOT_FOUND, true).into_response(),
    };
    let Some(kind) = Kind::parse(&kind) else {
        return error_body(StatusCode::NOT_FOUND, v1).into_response();
    };
    // Only now is the path known: another method is 405, as on introspect.
    if method != Method::POST {
        let mut response = error_body(StatusCode::METHOD_NOT_ALLOWED, v1).into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    // The token before the body: an unauthenticated request is 401 with its body unread.
    let claims = match authorize(&s, request.headers(), Some(kind)) {
        Ok(claims) => claims,
        Err(e) => return e.response(v1, s.behaviour.retry_after_header),
    };
    // A body over axum's limit (2 MiB) is 413, one that did not arrive in time 408, in the
    // version's error shape.
    let body = match Bytes::from_request(request, &s).await {
        Ok(body) => body,
        Err(e) => {
            let (status, reason) = crate::body::rejection(&e);
            return ApiError::Status(status, reason).response(v1, false);
        }
    };
    match page(&s, v1, kind, claims, &body) {
        Ok(response) => response,
        Err(e) => e.response(v1, s.behaviour.retry_after_header),
    }
}

fn page(
    s: &MockState,
    v1: bool,
    kind: Kind,
    claims: Claims,
    body: &[u8],
) -> Result<Response, ApiError> {
    let account = admit(s, &claims)?;
    let api_version = if v1 { 1 } else { 2 };
    let cursor = match parse_request(
        body,
        s.behaviour.reject_unknown_fields,
        s.clock.now().as_nanosecond(),
    )? {
        Request::Continue(text) => {
            let c =
                Cursor::decode(&s.key, &text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if c.run != s.run {
                return Err(ApiError::BadRequest(
                    "cursor from another run of the mock server, whose events may differ: \
                     start again with a reset cursor"
                        .into(),
                ));
            }
            if c.api_version != api_version
                || c.kind != kind.index() as u8
                || c.account_uuid != claims.account_uuid
            {
                return Err(ApiError::BadRequest(
                    "cursor belongs to another account, event type or API version".into(),
                ));
            }
            c
        }
        Request::Reset {
            limit,
            start_ns,
            end_ns,
        } => Cursor {
            run: s.run,
            api_version,
            kind: kind.index() as u8,
            account_uuid: claims.account_uuid.clone(),
            limit,
            position: 0,
            start_ns,
            end_ns,
        },
    };
    let window = Window {
        start_ns: cursor.start_ns.max(s.horizon_ns()),
        end_ns: cursor.end_ns,
    };
    let limit = usize::from(cursor.limit);
    let form = if v1 { Form::V1 } else { account.v2_form() };
    let log = account.log(kind);
    let mut out = Vec::with_capacity(64 + limit.min(log.len()) * if v1 { 800 } else { 900 });
    out.extend_from_slice(b"{\"items\":[");
    let page = log.page(cursor.position, window, limit, form, &mut out);
    drop(log);
    let next = Cursor {
        position: page.next,
        ..cursor
    }
    .encode(&s.key);
    out.extend_from_slice(b"],\"cursor\":\"");
    out.extend_from_slice(next.as_bytes());
    out.extend_from_slice(if page.has_more {
        b"\",\"has_more\":true}"
    } else {
        b"\",\"has_more\":false}"
    });
    let mut response = ([(header::CONTENT_TYPE, "application/json")], out).into_response();
    response.extensions_mut().insert(Served(page.count));
    Ok(response)
}

enum Request {
    Continue(String),
    Reset {
        limit: u16,
        start_ns: i64,
        end_ns: Option<i64>,
    },
}

fn parse_request(body: &[u8], reject_unknown: bool, now_ns: i128) -> Result<Request, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(m.to_owned());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("the body must be a JSON object"));
    };
    const RESET: [&str; 3] = ["limit", "start_time", "end_time"];
    if reject_unknown
        && let Some(k) = map
            .keys()
            .find(|k| *k != "cursor" && !RESET.contains(&k.as_str()))
    {
        return Err(ApiError::BadRequest(format!("unknown field {k:?}")));
    }
    if let Some(cursor) = map.get("cursor") {
        if RESET.iter().any(|k| map.contains_key(*k)) {
            return Err(bad(
                "cursor cannot be combined with limit, start_time or end_time",
            ));
        }
        return cursor
            .as_str()
            .map(|c| Request::Continue(c.to_owned()))
            .ok_or_else(|| bad("cursor must be a string"));
    }
    let limit = match map.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (1.0..=1000.0).contains(f))
            .map(|f| f as u16)
            .ok_or_else(|| bad("limit must be an integer from 1 to 1000"))?,
    };
    // Exact instants: two times beyond what the store holds still compare as they should.
    let time = |key: &str| -> Result<Option<i128>, ApiError> {
        let Some(v) = map.get(key) else {
            return Ok(None);
        };
        let text = v.as_str().ok_or_else(|| {
            ApiError::BadRequest(format!("{key} must be an RFC 3339 date-time string"))
        })?;
        rfc3339::parse(text)
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("{key} is not an RFC 3339 date-time: {e}")))
    };
    let end = time("end_time")?;
    let start = time("start_time")?.unwrap_or_else(|| end.unwrap_or(now_ns) - i128::from(HOUR_NS));
    if end.is_some_and(|end| end < start) {
        return Err(bad("end_time is before start_time"));
    }
    Ok(Request::Reset {
        limit,
        start_ns: rfc3339::clamp(start),
        end_ns: end.map(rfc3339::clamp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_unreserved_characters_are_decoded_and_nothing_else() {
        for (target, normal) in [
            ("/api/v2/auditevents", "/api/v2/auditevents"),
            ("/api/v2/audit%65vents", "/api/v2/auditevents"),
            ("/api/v%32/AUDIT%65VENTS", "/api/v2/AUDITeVENTS"),
            (
                "/api/v2/auth/intro%73pect?a=%41",
                "/api/v2/auth/introspect?a=%41",
            ),
            ("/%7e%2d%2E%5F%30", "/~-._0"),
            ("/api%2Fv2/auditevents", "/api%2Fv2/auditevents"),
            ("/api/v2/%20%25%3F%FF", "/api/v2/%20%25%3F%FF"),
            ("/api/v2/%zz%+f%4", "/api/v2/%zz%+f%4"),
            ("/api/v2/%%341", "/api/v2/%41"),
        ] {
            assert_eq!(normalize(target.parse().unwrap()), normal, "{target}");
        }
    }
}
