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

/// Whether `s` is an IPv4 or IPv6 address. Only those go to address fields (ECS `source.ip`
/// and `related.ip`, OCSF `src_endpoint.ip`): Elasticsearch's `ip` type refuses the whole
/// document over an empty string or a placeholder, so other text stays with the leftovers.
///
/// Both checks accept exactly what `std::net`'s parsers accept (the tests compare them), in a
/// fraction of their instructions: they run once per item.
pub fn is_ip(s: Str) -> bool {
    let text = s.raw().as_bytes();
    !s.is_escaped() && (ipv4_end(text, 0) == Some(text.len()) || is_ipv6(text))
}

/// Where the dotted-quad IPv4 address at `text[at..]` ends: four decimal octets up to 255,
/// without leading zeros.
fn ipv4_end(text: &[u8], mut at: usize) -> Option<usize> {
    for octet in 0..4 {
        if octet > 0 {
            (text.get(at) == Some(&b'.')).then_some(())?;
            at += 1;
        }
        let start = at;
        let mut value = 0u32;
        while let Some(d @ b'0'..=b'9') = text.get(at).copied() {
            value = value * 10 + u32::from(d - b'0');
            at += 1;
            if at - start > 3 {
                return None;
            }
        }
        let digits = at - start;
        if digits == 0 || value > 255 || (digits > 1 && text[start] == b'0') {
            return None;
        }
    }
    Some(at)
}

/// RFC 4291 text: eight groups of one to four hex digits, a `::` standing for one or more
/// zero groups, the last two groups possibly written as IPv4.
fn is_ipv6(text: &[u8]) -> bool {
    let mut at = 0;
    let (head, ipv4) = ipv6_groups(text, &mut at, 8);
    if head == 8 {
        return at == text.len();
    }
    if ipv4 || !text[at..].starts_with(b"::") {
        return false;
    }
    at += 2;
    ipv6_groups(text, &mut at, 8 - (head + 1));
    at == text.len()
}

/// Reads up to `limit` colon-separated groups at `text[*at..]`; how many (an IPv4 tail counts
/// two) and whether the last was IPv4.
fn ipv6_groups(text: &[u8], at: &mut usize, limit: usize) -> (usize, bool) {
    for i in 0..limit {
        let mut p = *at;
        if i > 0 {
            if text.get(p) != Some(&b':') {
                return (i, false);
            }
            p += 1;
        }
        if i + 1 < limit
            && let Some(end) = ipv4_end(text, p)
        {
            *at = end;
            return (i + 2, true);
        }
        let start = p;
        while text.get(p).is_some_and(u8::is_ascii_hexdigit) {
            p += 1;
        }
        if p == start || p - start > 4 {
            return (i, false);
        }
        *at = p;
    }
    (limit, false)
}

/// Whether a JSON number's text (checked by the parser) lies within ±`max`. Coordinates have
/// no exponent, so the integer part decides without a float parse.
fn within(number: &str, max: u32) -> bool {
    let digits = number.as_bytes();
    let digits = digits.strip_prefix(b"-").unwrap_or(digits);
    let (mut int, mut at) = (0u32, 0);
    while let Some(d @ b'0'..=b'9') = digits.get(at).copied() {
        if at == 3 {
            return false;
        }
        int = int * 10 + u32::from(d - b'0');
        at += 1;
    }
    match digits.get(at) {
        None => int <= max,
        Some(b'.') if digits[at + 1..].iter().all(u8::is_ascii_digit) => {
            int < max || (int == max && digits[at + 1..].iter().all(|&d| d == b'0'))
        }
        // An exponent: rare enough for the general parse.
        _ => number
            .parse::<f64>()
            .is_ok_and(|v| v.abs() <= f64::from(max)),
    }
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
    /// Takes the address only when `take_ip` accepts it: a schema with one field for two
    /// addresses leaves the one it cannot write with the leftovers.
    pub fn take(item: &mut Item<'_, 'a>, take_ip: impl Fn(Str) -> bool) -> Self {
        let Some(at) = item.open(super::item::ROOT, "client") else {
            return Self::default();
        };
        let names = ["ip_address", "os_name", "os_version"];
        let [ip, os_name, os_version] = item.take_each(
            at,
            names,
            |i, node| match node {
                Node::Str(s) if i > 0 || (is_ip(s) && take_ip(s)) => Some(s),
                _ => None,
            },
            |_| {},
        );
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
        // Names, then coordinates: one pass over the object for all five. A coordinate alone,
        // or one out of range (a geo point refuses the document), is no position: both then
        // stay with the leftovers.
        let names = ["country", "region", "city", "latitude", "longitude"];
        let [country, region, city, lat, lon] = item.take_each(
            at,
            names,
            |i, node| match node {
                Node::Str(s) if i < 3 => Some(Geo::Name(s)),
                Node::Num(n) if i >= 3 => Some(Geo::Coordinate(n)),
                _ => None,
            },
            |found| {
                let valid = |geo: Option<Geo>, max| {
                    geo.and_then(Geo::coordinate)
                        .is_some_and(|n| within(n, max))
                };
                if !(valid(found[3], 90) && valid(found[4], 180)) {
                    (found[3], found[4]) = (None, None);
                }
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`is_ip`] on unescaped text.
    fn address(text: &str) -> bool {
        ipv4_end(text.as_bytes(), 0) == Some(text.len()) || is_ipv6(text.as_bytes())
    }

    #[test]
    fn coordinates_are_checked_against_their_range() {
        for (n, max, ok) in [
            ("90", 90, true),
            ("-90.000", 90, true),
            ("90.0001", 90, false),
            ("89.999999", 90, true),
            ("0", 90, true),
            ("-180", 180, true),
            ("180.5", 180, false),
            ("1000", 180, false),
            ("4.5e1", 90, true),
            ("9e1", 90, true),
            ("9.1E1", 90, false),
            ("-1e-3", 90, true),
        ] {
            assert_eq!(within(n, max), ok, "{n}");
        }
    }

    proptest! {
        #[test]
        fn addresses_are_checked_as_std_parses_them(text in "[0-9a-fA-F:.]{0,45}") {
            prop_assert_eq!(address(&text), text.parse::<std::net::IpAddr>().is_ok(), "{}", text);
        }

        #[test]
        fn addresses_near_valid_ones_are_checked_as_std_parses_them(
            bits in any::<u128>(), v4 in any::<u32>(), cut in 0usize..40, insert in "[0-9a-f:.]{0,3}",
        ) {
            for valid in [
                std::net::Ipv6Addr::from(bits).to_string(),
                std::net::Ipv6Addr::from(bits & !0xffff_ffff_0000).to_string(),
                format!("::ffff:{}", std::net::Ipv4Addr::from(v4)),
                format!("64:ff9b::{}", std::net::Ipv4Addr::from(v4)),
                format!("1:2:3:4:5:6:{}", std::net::Ipv4Addr::from(v4)),
                std::net::Ipv4Addr::from(v4).to_string(),
            ] {
                let at = cut.min(valid.len());
                let mut text = valid.clone();
                text.insert_str(at, &insert);
                for t in [&valid, &text] {
                    prop_assert_eq!(address(t), t.parse::<std::net::IpAddr>().is_ok(), "{}", t);
                }
            }
        }
    }
}
