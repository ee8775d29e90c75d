//! Seeded, realistic events. SplitMix64 is hand-rolled so a (seed, account) pair yields the same
//! dataset forever, whatever crate versions do.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Map, Value, json};

use crate::auth::{account_uuid, base32_26};
use crate::store::Kind;

/// Enum values the contract does not list, emitted ~0.5% of the time so consumers meet them.
pub const UNKNOWN_ENUM_VALUES: [&str; 5] = [
    "device_failed",
    "passkey_bad",
    "autofill-passkey",
    "rotatekey",
    "passkeycred",
];

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_10k` / 10,000.
    pub fn chance(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u64)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }

    pub fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 24];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        base32_26(&bytes)
    }
}

/// A stable 64-bit hash (FNV-1a) to mix names into seeds.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const FIRST: [&str; 24] = [
    "Wendy", "Jacques", "Anna", "Priya", "Liam", "Sofia", "Kenji", "Amara", "Mateo", "Olivia",
    "Noah", "Fatima", "Lucas", "Chloe", "Arjun", "Mia", "Ethan", "Zara", "Hiroshi", "Isabel",
    "Omar", "Grace", "Sven", "Léa",
];
const LAST: [&str; 20] = [
    "Appleseed",
    "Martin",
    "Schmidt",
    "Natarajan",
    "O'Neill",
    "García",
    "Tanaka",
    "Okafor",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Haddad",
    "Dubois",
    "Silva",
    "Johansson",
    "Chen",
    "Murphy",
    "Novak",
    "Patel",
    "Moreau",
];
/// (app_name, app_version, platform_name, platform_version, os_name, os_version)
const CLIENTS: [(&str, &str, &str, &str, &str, &str); 10] = [
    (
        "1Password for Mac",
        "81024012",
        "MacBookPro18,3",
        "MacBookPro18,3",
        "MacOSX",
        "14.5",
    ),
    (
        "1Password for Windows",
        "81024012",
        "Dell XPS 13",
        "XPS 13 9310",
        "Windows",
        "10.0.22631",
    ),
    (
        "1Password Browser Extension",
        "20127",
        "Chrome",
        "126.0.6478.127",
        "MacOSX",
        "14.5",
    ),
    (
        "1Password Browser Extension",
        "20127",
        "Firefox",
        "127.0",
        "Windows",
        "10.0.19045",
    ),
    (
        "1Password for Web",
        "1733",
        "Safari",
        "17.5",
        "MacOSX",
        "14.4.1",
    ),
    (
        "1Password for iOS",
        "81024002",
        "iPhone15,2",
        "iPhone15,2",
        "iOS",
        "17.5.1",
    ),
    (
        "1Password for Android",
        "81024003",
        "Pixel 8",
        "Pixel 8",
        "Android",
        "14",
    ),
    ("1Password CLI", "2300301", "go", "amd64", "linux", "6.1.0"),
    (
        "1Password for Linux",
        "81024012",
        "x86_64",
        "x86_64",
        "Ubuntu",
        "24.04",
    ),
    (
        "1Password SCIM Bridge",
        "2090001",
        "go",
        "arm64",
        "linux",
        "5.15.0",
    ),
];
/// (country as geo-IP reports it, region, city, latitude, longitude)
const PLACES: [(&str, &str, &str, f64, f64); 8] = [
    ("CA", "Ontario", "Toronto", 43.6532, -79.3832),
    (
        "Canada",
        "British Columbia",
        "Vancouver",
        49.2827,
        -123.1207,
    ),
    ("US", "California", "San Francisco", 37.7749, -122.4194),
    ("United States", "New York", "New York", 40.7128, -74.006),
    ("Germany", "Berlin", "Berlin", 52.52, 13.405),
    ("FR", "Ile-de-France", "Paris", 48.8566, 2.3522),
    ("India", "Karnataka", "Bengaluru", 12.9716, 77.5946),
    ("JP", "Tokyo", "Tokyo", 35.6762, 139.6503),
];
const COUNTRY_CODES: [&str; 8] = ["CA", "CA", "US", "US", "DE", "FR", "IN", "JP"];
const OFFSETS: [i32; 5] = [-3 * 3600, 2 * 3600, 5 * 3600 + 1800, -7 * 3600, 9 * 3600];

struct Person {
    uuid: String,
    name: String,
    email: String,
    external: bool,
    home: usize,
    client: usize,
}

/// The people, vaults and items of one account, shared by all its event types.
struct Pool {
    account_uuid: String,
    msp_uuid: String,
    people: Vec<Person>,
    vaults: Vec<String>,
    items: Vec<(usize, String)>,
    groups: Vec<String>,
}

impl Pool {
    fn new(seed: u64, account: &str, uuid: &str) -> Pool {
        let mut rng = SplitMix64::new(seed ^ fnv(account));
        let domain = format!(
            "{}.com",
            account
                .to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let people = (0..40)
            .map(|_| {
                let (first, last) = (*rng.pick(&FIRST), *rng.pick(&LAST));
                let local: String = format!("{first}.{last}")
                    .to_lowercase()
                    .chars()
                    .map(|c| match c {
                        'á' | 'à' => 'a',
                        'é' | 'è' => 'e',
                        'í' => 'i',
                        other => other,
                    })
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .collect();
                Person {
                    uuid: rng.uuid(),
                    name: format!("{first} {last}"),
                    email: format!("{local}@{domain}"),
                    external: rng.chance(500),
                    home: rng.below(PLACES.len() as u64) as usize,
                    client: rng.below(CLIENTS.len() as u64) as usize,
                }
            })
            .collect();
        let vaults: Vec<String> = (0..12)
            .map(|i| {
                if i % 5 == 4 {
                    rng.uuid().to_lowercase()
                } else {
                    rng.uuid()
                }
            })
            .collect();
        let items = (0..300)
            .map(|_| (rng.below(vaults.len() as u64) as usize, rng.uuid()))
            .collect();
        let groups = (0..8).map(|_| rng.uuid()).collect();
        Pool {
            account_uuid: uuid.to_owned(),
            msp_uuid: account_uuid(&format!("{account}-msp")),
            people,
            vaults,
            items,
            groups,
        }
    }
}

/// Makes events of one type for one account.
pub struct Generator {
    rng: SplitMix64,
    kind: Kind,
    pool: Pool,
    /// The instant the last event that was not late was written as: a later one written to
    /// the second or millisecond must not fall before it.
    last_ns: i128,
}

impl Generator {
    /// Events for the account named `account` (which seeds them), carrying `uuid`: the token's,
    /// which a token made elsewhere need not derive from the name.
    pub fn new(seed: u64, account: &str, uuid: &str, kind: Kind) -> Generator {
        Generator {
            rng: SplitMix64::new(
                seed ^ fnv(account).rotate_left(17)
                    ^ (kind.index() as u64 + 1).wrapping_mul(0x9E37_79B9),
            ),
            kind,
            pool: Pool::new(seed, account, uuid),
            last_ns: i128::MIN,
        }
    }

    /// The initial dataset: `n` events spread over the `span` before `now`, in increasing time,
    /// except ~3% of item usages that arrive late (minutes to hours older than their neighbours).
    /// Yields them one by one so a million never sit in memory as `Value`s.
    pub fn initial(
        &mut self,
        n: usize,
        now: Timestamp,
        span: jiff::SignedDuration,
    ) -> impl Iterator<Item = Value> + '_ {
        let end = now.as_nanosecond();
        let span_ns = span.as_nanos().max(1);
        let step = span_ns / (n as i128 + 1);
        (0..n).map(move |i| {
            let base = end - span_ns + step * (i as i128 + 1);
            if self.kind == Kind::ItemUsages && self.rng.chance(300) {
                let ts = self.late(base);
                self.event(ts, true)
            } else {
                self.event(base, false)
            }
        })
    }

    /// `n` new events at `now`, or late ones (minutes to hours before `now`).
    pub fn more(&mut self, n: usize, now: Timestamp, late: bool) -> Vec<Value> {
        let now = now.as_nanosecond();
        (0..n)
            .map(|i| {
                let ts = if late {
                    self.late(now)
                } else {
                    now - (n - i) as i128 * 1_000_000
                };
                self.event(ts, late)
            })
            .collect()
    }

    /// 5 minutes to 6 hours before `ts`, as the README says.
    fn late(&mut self, ts: i128) -> i128 {
        const MIN_S: u64 = 5 * 60;
        const MAX_S: u64 = 6 * 3600;
        ts - i128::from(MIN_S + self.rng.below(MAX_S - MIN_S + 1)) * 1_000_000_000
    }

    /// One event of this generator's type at `ts_ns`, in v2 shape; `late` if it is meant to
    /// arrive after events with later timestamps.
    pub fn event(&mut self, ts_ns: i128, late: bool) -> Value {
        let mut e = match self.kind {
            Kind::SignInAttempts => self.sign_in(),
            Kind::ItemUsages => self.item_usage(),
            Kind::AuditEvents => self.audit_event(ts_ns),
        };
        e.insert("uuid".into(), self.rng.uuid().into());
        e.insert("timestamp".into(), self.timestamp(ts_ns, late).into());
        e.insert("account_uuid".into(), self.pool.account_uuid.clone().into());
        Value::Object(e)
    }

    /// `ts_ns` in RFC 3339 with second, millisecond or nanosecond precision (truncated), at a
    /// random offset; in nanoseconds if fewer digits would put an event that is not late
    /// before the previous one.
    fn timestamp(&mut self, ts_ns: i128, late: bool) -> String {
        let ts = Timestamp::from_nanosecond(ts_ns).unwrap_or(Timestamp::UNIX_EPOCH);
        let offset = if self.rng.chance(1000) {
            *self.rng.pick(&OFFSETS)
        } else {
            0
        };
        let dt = ts
            .to_zoned(TimeZone::fixed(
                Offset::from_seconds(offset).expect("valid offset"),
            ))
            .datetime();
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        let nanos = dt.subsec_nanosecond();
        // Fractional digits: 0, 9 or 3, and the nanoseconds that many digits drop.
        let (mut digits, dropped) = match self.rng.below(4) {
            0 => (0, nanos),
            1 => (9, 0),
            _ => (3, nanos % 1_000_000),
        };
        let mut written = ts_ns - i128::from(dropped);
        if !late {
            if written < self.last_ns {
                (digits, written) = (9, ts_ns);
            }
            self.last_ns = self.last_ns.max(written);
        }
        match digits {
            0 => {}
            9 => out.push_str(&format!(".{:09}", nanos)),
            _ => out.push_str(&format!(".{:03}", nanos / 1_000_000)),
        }
        if offset == 0 {
            out.push('Z');
        } else {
            out.push_str(&format!(
                "{}{:02}:{:02}",
                if offset < 0 { '-' } else { '+' },
                offset.abs() / 3600,
                offset.abs() % 3600 / 60
            ));
        }
        out
    }

    /// An enum value, replaced by an undocumented one ~0.5% of the time.
    fn maybe_unknown(&mut self, value: &str, unknown: &str) -> Value {
        if self.rng.chance(50) {
            unknown.into()
        } else {
            value.into()
        }
    }

    fn person(&mut self) -> usize {
        self.rng.below(self.pool.people.len() as u64) as usize
    }

    fn user(&self, p: usize) -> Value {
        let p = &self.pool.people[p];
        json!({
            "uuid": p.uuid, "name": p.name, "email": p.email,
            "user_type": if p.external { "external_user" } else { "user" },
            "user_account_uuid": if p.external { &self.pool.msp_uuid } else { &self.pool.account_uuid },
        })
    }

    fn ip(&mut self) -> String {
        match self.rng.below(5) {
            0 => format!(
                "2001:db8:{:x}::{:x}",
                self.rng.below(0xffff),
                self.rng.below(0xffff)
            ),
            1 => format!("203.0.113.{}", 1 + self.rng.below(254)),
            _ => format!(
                "{}.{}.{}.{}",
                23 + self.rng.below(180),
                self.rng.below(256),
                self.rng.below(256),
                1 + self.rng.below(254)
            ),
        }
    }

    fn client(&mut self, p: usize) -> Value {
        let c = if self.rng.chance(8000) {
            self.pool.people[p].client
        } else {
            self.rng.below(CLIENTS.len() as u64) as usize
        };
        let (app_name, app_version, platform_name, platform_version, os_name, os_version) =
            CLIENTS[c];
        json!({"app_name": app_name, "app_version": app_version, "platform_name": platform_name,
            "platform_version": platform_version, "os_name": os_name, "os_version": os_version, "ip_address": self.ip()})
    }

    /// Location is absent on ~10% of events (geo lookup failed or older events).
    fn location(&mut self, p: usize, e: &mut Map<String, Value>) {
        if self.rng.chance(1000) {
            return;
        }
        let home = if self.rng.chance(9000) {
            self.pool.people[p].home
        } else {
            self.rng.below(PLACES.len() as u64) as usize
        };
        let (country, region, city, lat, lon) = PLACES[home];
        e.insert("location".into(), json!({"country": country, "region": region, "city": city, "latitude": lat, "longitude": lon}));
    }

    fn sign_in(&mut self) -> Map<String, Value> {
        let (category, types): (&str, &[&str]) = *self.rng.weighted(&[
            (
                (
                    "success",
                    &["credentials_ok", "mfa_ok", "mfa_ok", "federated"][..],
                ),
                8500,
            ),
            (
                (
                    "credentials_failed",
                    &["password_secret_bad", "platform_secret_bad"][..],
                ),
                600,
            ),
            (
                (
                    "mfa_failed",
                    &[
                        "totp_bad",
                        "totp_timeout",
                        "u2f_bad",
                        "u2f_timeout",
                        "u2f_timout",
                        "duo_bad",
                        "duo_timeout",
                        "duo_native_bad",
                        "mfa_missing",
                        "code_bad",
                        "code_timeout",
                    ][..],
                ),
                400,
            ),
            (
                (
                    "sso_failed",
                    &[
                        "sso_user_mismatch",
                        "non_sso_user",
                        "service_account_sso_denied",
                    ][..],
                ),
                100,
            ),
            (
                (
                    "modern_version_failed",
                    &["modern_version_old", "modern_version_missing"][..],
                ),
                100,
            ),
            (
                (
                    "firewall_failed",
                    &[
                        "continent_blocked",
                        "country_blocked",
                        "ip_blocked",
                        "anonymous_blocked",
                        "all_blocked",
                    ][..],
                ),
                200,
            ),
            (
                (
                    "firewall_reported_success",
                    &["credentials_ok", "mfa_ok"][..],
                ),
                100,
            ),
        ]);
        let kind = *self.rng.pick(types);
        let p = self.person();
        let home = self.pool.people[p].home;
        let details = match kind {
            "continent_blocked" => {
                json!({"value": *self.rng.pick(&["Europe", "Asia", "Africa", "South America"])})
            }
            "country_blocked" => json!({"value": *self.rng.pick(&["RU", "KP", "IR", "BR"])}),
            "ip_blocked" => json!({"value": self.ip()}),
            _ if category == "firewall_reported_success" => json!({"value": "North America"}),
            _ => Value::Null,
        };
        let mut e = Map::new();
        e.insert("session_uuid".into(), self.rng.uuid().into());
        e.insert(
            "category".into(),
            self.maybe_unknown(category, UNKNOWN_ENUM_VALUES[0]),
        );
        e.insert(
            "type".into(),
            self.maybe_unknown(kind, UNKNOWN_ENUM_VALUES[1]),
        );
        e.insert("country".into(), COUNTRY_CODES[home].into());
        if !details.is_null() || self.rng.chance(7000) {
            e.insert("details".into(), details);
        }
        e.insert("target_user".into(), self.user(p));
        e.insert("client".into(), self.client(p));
        self.location(p, &mut e);
        e
    }

    fn item_usage(&mut self) -> Map<String, Value> {
        let p = self.person();
        let (vault, item) =
            self.pool.items[self.rng.below(self.pool.items.len() as u64) as usize].clone();
        let mut e = Map::new();
        e.insert("used_version".into(), (1 + self.rng.below(30)).into());
        e.insert("vault_uuid".into(), self.pool.vaults[vault].clone().into());
        e.insert("item_uuid".into(), item.into());
        // Clients older than 1Password 8.4 send no action.
        if !self.rng.chance(800) {
            let action = *self.rng.weighted(&[
                ("fill", 4000),
                ("reveal", 1500),
                ("secure-copy", 1500),
                ("server-fetch", 1000),
                ("enter-item-edit-mode", 500),
                ("server-update", 400),
                ("server-create", 300),
                ("select-sso-provider", 200),
                ("share", 200),
                ("export", 100),
                ("other", 200),
            ]);
            e.insert(
                "action".into(),
                self.maybe_unknown(action, UNKNOWN_ENUM_VALUES[2]),
            );
        }
        e.insert("user".into(), self.user(p));
        e.insert("client".into(), self.client(p));
        self.location(p, &mut e);
        e
    }

    /// An audit event at `ts_ns`, whose session began before it.
    fn audit_event(&mut self, ts_ns: i128) -> Map<String, Value> {
        const ALL_ACTIONS: [&str; 20] = [
            "activate", "begin", "complete", "convert", "dealldev", "deolddev", "enblmfa",
            "disblmfa", "enblsso", "patch", "propose", "provsn", "purge", "reauth", "role",
            "sendts", "trename", "updatfw", "verify", "view",
        ];
        let (action, object): (&str, &str) = *self.rng.weighted(&[
            (("create", "item"), 1500),
            (("update", "item"), 1500),
            (("delete", "item"), 400),
            (("join", "gm"), 500),
            (("leave", "gm"), 300),
            (("grant", "uva"), 600),
            (("revoke", "uva"), 300),
            (("grant", "gva"), 300),
            (("create", "vault"), 300),
            (("export", "vault"), 100),
            (("create", "invite"), 300),
            (("suspend", "user"), 150),
            (("reactive", "user"), 100),
            (("delete", "user"), 50),
            (("create", "device"), 600),
            (("reauth", "device"), 400),
            (("create", "satoken"), 100),
            (("expire", "satoken"), 50),
            (("unlink", "device"), 50),
            (("update", "account"), 100),
            (("view", "report"), 200),
            (("create", "cred"), 100),
            (("", "user"), 500),
        ]);
        let action = if action.is_empty() {
            *self.rng.pick(&ALL_ACTIONS)
        } else {
            action
        };
        let actor = self.person();
        let actor_external = self.pool.people[actor].external;
        let mut e = Map::new();
        e.insert(
            "actor_uuid".into(),
            self.pool.people[actor].uuid.clone().into(),
        );
        if !self.rng.chance(300) {
            e.insert("actor_details".into(), self.user(actor));
        }
        e.insert(
            "actor_type".into(),
            if actor_external {
                "external_user"
            } else {
                "user"
            }
            .into(),
        );
        e.insert(
            "actor_account_uuid".into(),
            if actor_external {
                self.pool.msp_uuid.clone()
            } else {
                self.pool.account_uuid.clone()
            }
            .into(),
        );
        e.insert(
            "action".into(),
            self.maybe_unknown(action, UNKNOWN_ENUM_VALUES[3]),
        );
        e.insert(
            "object_type".into(),
            self.maybe_unknown(object, UNKNOWN_ENUM_VALUES[4]),
        );
        let target = self.person();
        let object_uuid = match object {
            "user" => {
                e.insert("object_details".into(), self.user(target));
                self.pool.people[target].uuid.clone()
            }
            "vault" | "uva" | "gva" => self.rng.pick(&self.pool.vaults).clone(),
            "gm" | "group" => self.rng.pick(&self.pool.groups).clone(),
            "item" => self.pool.items[self.rng.below(self.pool.items.len() as u64) as usize]
                .1
                .clone(),
            _ => self.rng.uuid(),
        };
        e.insert("object_uuid".into(), object_uuid.into());
        e.insert(
            "aux_id".into(),
            if object == "device" {
                1000 + self.rng.below(9000)
            } else {
                0
            }
            .into(),
        );
        if matches!(object, "gm" | "uva") {
            e.insert(
                "aux_uuid".into(),
                self.pool.people[target].uuid.clone().into(),
            );
            e.insert("aux_details".into(), self.user(target));
        }
        e.insert(
            "aux_info".into(),
            if object == "gm" {
                "A"
            } else if object == "uva" {
                "R"
            } else {
                ""
            }
            .into(),
        );
        // Up to two weeks before the event, to the second.
        let days = (self.rng.below(12) * 28 + self.rng.below(28)) % 14;
        let seconds = days * 86_400
            + self.rng.below(24) * 3600
            + self.rng.below(60) * 60
            + self.rng.below(60);
        let login_ns = ts_ns - i128::from(seconds) * 1_000_000_000;
        let session_start =
            Timestamp::from_nanosecond(login_ns - login_ns.rem_euclid(1_000_000_000))
                .unwrap_or(Timestamp::UNIX_EPOCH)
                .to_string();
        e.insert(
            "session".into(),
            json!({"uuid": self.rng.uuid(), "login_time": session_start,
            "device_uuid": self.rng.uuid(), "ip": self.ip()}),
        );
        self.location(actor, &mut e);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of Vigna's splitmix64.c seeded with 1234567.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn same_seed_same_events() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let span = jiff::SignedDuration::from_hours(24);
        let events = |seed| {
            let mut generator =
                Generator::new(seed, "acme", &account_uuid("acme"), Kind::AuditEvents);
            generator.initial(50, now, span).collect::<Vec<_>>()
        };
        let (a, b, c) = (events(7), events(7), events(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn late_events_are_five_minutes_to_six_hours_old() {
        let mut generator = Generator::new(7, "acme", &account_uuid("acme"), Kind::ItemUsages);
        let now = 1_700_000_000 * 1_000_000_000i128;
        let ages: Vec<i128> = (0..10_000)
            .map(|_| (now - generator.late(now)) / 1_000_000_000)
            .collect();
        assert!(ages.iter().all(|s| (300..=6 * 3600).contains(s)));
        assert!(ages.iter().any(|&s| s > 6 * 3600 - 60), "the range is used");
    }

    /// Events that are not late never go back in time, however closely they follow each other:
    /// writing a timestamp to the second or millisecond must not put it before the one already
    /// written (the README: ingestion order is timestamp order except late arrivals).
    #[test]
    fn timestamps_that_are_not_late_never_decrease() {
        let now = Timestamp::from_second(1_700_000_000).unwrap()
            + jiff::SignedDuration::from_nanos(123_456_789);
        let instants = |events: &[Value]| -> Vec<i128> {
            events
                .iter()
                .map(|e| crate::rfc3339::parse(e["timestamp"].as_str().unwrap()).unwrap())
                .collect()
        };
        let check = |what: &str, events: &[Value]| {
            let ts = instants(events);
            if let Some(i) = (1..ts.len()).find(|&i| ts[i] < ts[i - 1]) {
                panic!(
                    "{what}: {} then {}",
                    events[i - 1]["timestamp"],
                    events[i]["timestamp"]
                );
            }
        };
        // 1,000 events over 10 s (10 ms apart); item usages are left out as ~3% are late.
        for kind in [Kind::SignInAttempts, Kind::AuditEvents] {
            let mut generator = Generator::new(7, "acme", &account_uuid("acme"), kind);
            let span = jiff::SignedDuration::from_secs(10);
            let events: Vec<Value> = generator.initial(1000, now, span).collect();
            check(&format!("initial {kind:?}"), &events);
        }
        // `more` without `late`: 1 ms apart, up to now.
        for kind in Kind::ALL {
            let mut generator = Generator::new(7, "acme", &account_uuid("acme"), kind);
            check(&format!("more {kind:?}"), &generator.more(500, now, false));
        }
    }

    /// A session begins before the event it is in, by at most two weeks: under `--now` in any
    /// year, and not in a year of its own.
    #[test]
    fn a_session_begins_before_its_event() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let mut generator = Generator::new(7, "acme", &account_uuid("acme"), Kind::AuditEvents);
        let span = jiff::SignedDuration::from_hours(24 * 120);
        let ages: Vec<i128> = generator
            .initial(2000, now, span)
            .map(|e| {
                let at = |t: &Value| crate::rfc3339::parse(t.as_str().unwrap()).unwrap();
                at(&e["timestamp"]) - at(&e["session"]["login_time"])
            })
            .collect();
        let two_weeks = 14 * 86_400 * 1_000_000_000i128;
        assert!(ages.iter().all(|a| (0..two_weeks).contains(a)), "{ages:?}");
        assert!(ages.iter().any(|a| *a > two_weeks - 86_400 * 1_000_000_000));
    }
}
