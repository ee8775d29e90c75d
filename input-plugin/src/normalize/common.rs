//! Pieces both schemas share: timestamps as text, users, clients, locations.

use std::borrow::Cow;

use jiff::Timestamp;

use super::value::{Map, Value};

/// `success` and `firewall_reported_success` are successes; every other category, including
/// ones 1Password adds later, is a failure (the rule Elastic, Splunk and matano use).
pub fn signin_succeeded(category: &str) -> bool {
    matches!(category, "success" | "firewall_reported_success")
}

pub fn rfc3339(ts: Timestamp) -> Value<'static> {
    Value::Str(Cow::Owned(ts.to_string()))
}

/// The API sometimes sends an ISO 3166 code ("CA") and sometimes a name ("Canada").
pub fn is_iso_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Values for `related.*`: deduplicated, in first-seen order.
#[derive(Default)]
pub struct Related<'a> {
    pub users: Vec<Cow<'a, str>>,
    pub ips: Vec<Cow<'a, str>>,
}

impl<'a> Related<'a> {
    pub fn user(&mut self, v: Cow<'a, str>) {
        if !v.is_empty() && !self.users.contains(&v) {
            self.users.push(v);
        }
    }

    pub fn ip(&mut self, v: Cow<'a, str>) {
        if !v.is_empty() && !self.ips.contains(&v) {
            self.ips.push(v);
        }
    }
}

pub fn strings<'a>(items: Vec<Cow<'a, str>>) -> Option<Value<'a>> {
    (!items.is_empty()).then(|| Value::Array(items.into_iter().map(Value::Str).collect()))
}

/// The identity part of a User object; the rest (v2 `user_type`, `user_account_uuid`, new
/// fields) stays in the map for the caller's leftovers.
pub struct User<'a> {
    pub uuid: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub email: Option<Cow<'a, str>>,
    pub rest: Map<'a>,
}

impl<'a> User<'a> {
    pub fn take(mut map: Map<'a>, related: &mut Related<'a>) -> Self {
        let user = Self {
            uuid: map.take_str("uuid"),
            name: map.take_str("name"),
            email: map.take_str("email"),
            rest: Map::new(),
        };
        for v in [&user.uuid, &user.email, &user.name].into_iter().flatten() {
            related.user(v.clone());
        }
        Self { rest: map, ..user }
    }
}

/// Geo fields of a Location object, leaving anything unknown in `rest`.
pub struct Location<'a> {
    pub country: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub city: Option<Cow<'a, str>>,
    pub lat: Option<Value<'a>>,
    pub lon: Option<Value<'a>>,
    pub rest: Map<'a>,
}

impl<'a> Location<'a> {
    pub fn take(mut map: Map<'a>) -> Self {
        let number = |m: &mut Map<'a>, k| match m.get(k) {
            Some(Value::Float(_) | Value::Int(_) | Value::UInt(_)) => m.take(k),
            _ => None,
        };
        Self {
            country: map.take_str("country"),
            region: map.take_str("region"),
            city: map.take_str("city"),
            lat: number(&mut map, "latitude"),
            lon: number(&mut map, "longitude"),
            rest: map,
        }
    }
}
