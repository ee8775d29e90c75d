//! Pieces both schemas share: users, clients, locations, and the related-values lists.

use super::item::Item;
use crate::json::{Node, Str};

/// `success` and `firewall_reported_success` are successes; every other category, including
/// ones 1Password adds later, is a failure (the rule Elastic, Splunk and matano use).
pub fn signin_succeeded(category: Str) -> bool {
    category.eq_str("success") || category.eq_str("firewall_reported_success")
}

/// The API sometimes sends an ISO 3166 code ("CA") and sometimes a name ("Canada").
pub fn is_iso_country(s: Str) -> bool {
    s.raw().len() == 2 && s.raw().bytes().all(|b| b.is_ascii_uppercase())
}

/// Distinct non-empty strings in first-seen order, on the stack (an item yields at most a
/// handful of related users and addresses).
pub struct Distinct<'a, const N: usize> {
    items: [Str<'a>; N],
    len: usize,
}

impl<'a, const N: usize> Default for Distinct<'a, N> {
    fn default() -> Self {
        Self {
            items: [Str::default(); N],
            len: 0,
        }
    }
}

impl<'a, const N: usize> Distinct<'a, N> {
    pub fn add(&mut self, v: Option<Str<'a>>) {
        let Some(v) = v else { return };
        if v.is_empty() || self.len == N || self.as_slice().iter().any(|s| s.same(&v)) {
            return;
        }
        self.items[self.len] = v;
        self.len += 1;
    }

    pub fn as_slice(&self) -> &[Str<'a>] {
        &self.items[..self.len]
    }
}

/// Values for `related.*`.
#[derive(Default)]
pub struct Related<'a> {
    pub users: Distinct<'a, 6>,
    pub ips: Distinct<'a, 4>,
}

/// The identity part of a User object; the rest (v2 `user_type`, `user_account_uuid`, new
/// fields) stays for the leftovers.
#[derive(Default)]
pub struct User<'a> {
    pub uuid: Option<Str<'a>>,
    pub name: Option<Str<'a>>,
    pub email: Option<Str<'a>>,
}

impl<'a> User<'a> {
    pub fn take(item: &mut Item<'_, 'a>, obj: usize, key: &str, related: &mut Related<'a>) -> Self {
        let Some(at) = item.open(obj, key) else {
            return Self::default();
        };
        let [uuid, name, email] = item.take_strs(at, ["uuid", "name", "email"]);
        let user = Self { uuid, name, email };
        for v in [user.uuid, user.email, user.name] {
            related.users.add(v);
        }
        user
    }
}

/// Address and OS of a Client object.
#[derive(Default)]
pub struct Client<'a> {
    pub ip: Option<Str<'a>>,
    pub os_name: Option<Str<'a>>,
    pub os_version: Option<Str<'a>>,
}

impl<'a> Client<'a> {
    pub fn take(item: &mut Item<'_, 'a>) -> Self {
        let Some(at) = item.open(super::item::ROOT, "client") else {
            return Self::default();
        };
        let [ip, os_name, os_version] = item.take_strs(at, ["ip_address", "os_name", "os_version"]);
        Self {
            ip,
            os_name,
            os_version,
        }
    }
}

/// Geo fields of a Location object.
#[derive(Default)]
pub struct Location<'a> {
    pub country: Option<Str<'a>>,
    pub region: Option<Str<'a>>,
    pub city: Option<Str<'a>>,
    pub lat: Option<&'a str>,
    pub lon: Option<&'a str>,
}

impl<'a> Location<'a> {
    pub fn take(item: &mut Item<'_, 'a>) -> Self {
        let Some(at) = item.open(super::item::ROOT, "location") else {
            return Self::default();
        };
        // Names, then coordinates: one pass over the object for all five.
        let names = ["country", "region", "city", "latitude", "longitude"];
        let [country, region, city, lat, lon] = item.take_each(at, names, |i, node| match node {
            Node::Str(s) if i < 3 => Some(Geo::Name(s)),
            Node::Num(n) if i >= 3 => Some(Geo::Coordinate(n)),
            _ => None,
        });
        Self {
            country: country.and_then(Geo::name),
            region: region.and_then(Geo::name),
            city: city.and_then(Geo::name),
            lat: lat.and_then(Geo::coordinate),
            lon: lon.and_then(Geo::coordinate),
        }
    }
}

/// A Location member: a place name or a coordinate (a JSON number's text).
#[derive(Clone, Copy)]
enum Geo<'a> {
    Name(Str<'a>),
    Coordinate(&'a str),
}

impl<'a> Geo<'a> {
    fn name(self) -> Option<Str<'a>> {
        match self {
            Geo::Name(s) => Some(s),
            Geo::Coordinate(_) => None,
        }
    }

    fn coordinate(self) -> Option<&'a str> {
        match self {
            Geo::Coordinate(n) => Some(n),
            Geo::Name(_) => None,
        }
    }
}
