//! Typed collector options with their defaults, built from snake_case key/value pairs (Fluent Bit
//! properties, CLI flags and TOML all funnel through [`Config::from_pairs`]). Every error names the
//! option and what to change; none ever contains the token.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::event::{ApiVersion, EventType, Format, UnknownVariant};

/// The Events API keeps 120 days. A reset cursor just inside it is never rejected.
pub const MAX_LOOKBACK: Duration = Duration::from_secs(119 * 86_400 + 23 * 3_600);

/// The most events the API serves a page (a larger `limit` is refused with a 400).
pub const MAX_LIMIT: u16 = 1000;

/// 1Password's region hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    Us,
    Ent,
    Ca,
    Eu,
}

impl Region {
    pub const fn host(self) -> &'static str {
        match self {
            Self::Us => "events.1password.com",
            Self::Ent => "events.ent.1password.com",
            Self::Ca => "events.1password.ca",
            Self::Eu => "events.1password.eu",
        }
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Ent => "ent",
            Self::Ca => "ca",
            Self::Eu => "eu",
        }
    }
    /// The region whose events host is `host`, if any.
    pub fn from_host(host: &str) -> Option<Region> {
        [Self::Us, Self::Ent, Self::Ca, Self::Eu]
            .into_iter()
            .find(|r| r.host().eq_ignore_ascii_case(host))
    }
}

impl FromStr for Region {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownVariant::parse(s, "us, ent, ca, eu", |v| match v {
            "us" | "com" | "1password.com" => Some(Self::Us),
            "ent" | "ent.1password.com" => Some(Self::Ent),
            "ca" | "1password.ca" => Some(Self::Ca),
            "eu" | "1password.eu" => Some(Self::Eu),
            _ => None,
        })
    }
}

/// Whether requests ask for gzip-compressed pages. Whether the real API compresses is not
/// documented: asking costs nothing where it doesn't; where it does, pages are four to five
/// times smaller and inflating them costs about 0.8 µs of CPU per event (docs/performance.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// `Accept-Encoding: gzip`.
    #[default]
    Gzip,
    /// `Accept-Encoding: identity` (not just no header, which would let a server choose).
    None,
}

impl FromStr for Compression {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownVariant::parse(s, "gzip, none", |v| match v {
            "gzip" => Some(Self::Gzip),
            "none" => Some(Self::None),
            _ => None,
        })
    }
}

/// Where a stream without a saved cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartTime {
    /// The whole retention window (what the official collectors do).
    #[default]
    Retention,
    /// This long before start, clamped to [`MAX_LOOKBACK`].
    Lookback(Duration),
    /// An absolute time, clamped to [`MAX_LOOKBACK`] before now.
    At(jiff::Timestamp),
}

impl StartTime {
    /// The reset cursor's `start_time` for a run starting at `now`.
    pub fn resolve(self, now: jiff::Timestamp) -> jiff::Timestamp {
        let horizon = now - MAX_LOOKBACK;
        match self {
            Self::Retention => horizon,
            Self::Lookback(d) => now - d.min(MAX_LOOKBACK),
            Self::At(t) => t.max(horizon),
        }
    }
}

impl FromStr for StartTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("retention") || s.eq_ignore_ascii_case("all") {
            return Ok(Self::Retention);
        }
        match s.parse::<jiff::Timestamp>() {
            Ok(t) => return Ok(Self::At(t)),
            Err(e) if looks_like_a_date(s) => return Err(date_error(s, &e)),
            Err(_) => {}
        }
        parse_duration(s).map(Self::Lookback).map_err(|e| match e {
            DurationError::Syntax(_) => format!(
                "`{s}` is neither RFC 3339 (2026-01-15T00:00:00Z) nor a lookback (7d, 12h, 30m)"
            ),
            too_long => too_long.to_string(),
        })
    }
}

/// `2026-…`: meant as a time, so its own error says more than "neither a time nor a lookback".
fn looks_like_a_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// What is wrong with a time that looks like one: the two parts people leave out get their
/// fix, anything else jiff's reason (an impossible day, an hour of 25).
fn date_error(s: &str, e: &jiff::Error) -> String {
    let example = "example: 2026-01-15T00:00:00Z";
    // A civil datetime parses without an offset, and from a date alone (as midnight).
    if s.parse::<jiff::civil::DateTime>().is_ok() {
        if s.len() == "2026-01-15".len() {
            format!("`{s}` has no time of day: add one and a UTC offset, as in {s}T00:00:00Z")
        } else {
            format!("`{s}` has no UTC offset: add Z for UTC, or one such as +02:00 ({example})")
        }
    } else {
        format!("`{s}` is not an RFC 3339 time: {e} ({example})")
    }
}

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retention => f.write_str("retention"),
            Self::Lookback(d) => write!(f, "{}s", d.as_secs()),
            Self::At(t) => write!(f, "{t}"),
        }
    }
}

/// The longest duration taken, in days: ten years, more than any wait or lookback means.
const MAX_DURATION_DAYS: u32 = 3_650;

#[derive(Debug, thiserror::Error)]
enum DurationError {
    #[error("`{0}` is not a duration (examples: 10s, 1m)")]
    Syntax(String),
    #[error("`{0}` is too long (at most {MAX_DURATION_DAYS}d)")]
    TooLong(String),
    /// Not rounded down to 0, which every option would then call "not more than 0".
    #[error("`{0}` is shorter than 1ms, the shortest duration taken")]
    TooShort(String),
}

/// Parses `500ms`, `10s`, `5m`, `12h`, `7d` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let syntax = || DurationError::Syntax(s.to_owned());
    let n: f64 = num.parse().map_err(|_| syntax())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(syntax()),
    };
    if !secs.is_finite() || secs > f64::from(MAX_DURATION_DAYS) * 86_400.0 {
        return Err(DurationError::TooLong(s.to_owned()));
    }
    if secs > 0.0 && secs < 0.001 {
        return Err(DurationError::TooShort(s.to_owned()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Every option. Fields are public so front ends and tests can tweak them after `from_pairs`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bearer token itself (from an env var or a Fluent Bit `${ENV}` reference).
    pub token: Option<SecretString>,
    /// A file holding the token (whitespace around it ignored); read at start.
    pub token_file: Option<PathBuf>,
    pub region: Option<Region>,
    pub base_url: Option<Url>,
    pub api_version: ApiVersion,
    /// `None`: every feature the token has.
    pub events: Option<Vec<EventType>>,
    pub format: Format,
    pub start_time: StartTime,
    pub poll_interval: Duration,
    pub state_dir: PathBuf,
    /// Least time between two writes of the state files: deliveries in between are written
    /// together. `0`: after every batch.
    pub checkpoint_interval: Duration,
    /// Least age of a delivered batch before its cursor may be checkpointed, not counting time
    /// paused. `None`: the front end's default (the plugin waits out Fluent Bit's ring buffer).
    pub checkpoint_delay: Option<Duration>,
    pub limit: u16,
    pub max_buffered_events: usize,
    pub rate_limit_per_minute: u32,
    pub rate_limit_per_hour: u32,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<Url>,
    pub insecure_http: bool,
    pub compression: Compression,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    /// First retry delay after a 5xx/network error; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Wait after a 401 before trying again.
    pub unauthorized_retry: Duration,
    /// Whether what only a setting can fix (a 401, a 404, a refused certificate) is tried again
    /// every `unauthorized_retry`, and a transient error still failing after six attempts goes
    /// on being retried. Not an option: `run --once` turns it off, and exits with the error
    /// instead.
    pub retry_fatal: bool,
}

/// Every option name, so the plugin can query each through Fluent Bit.
pub const KEYS: &[&str] = &[
    "token",
    "token_file",
    "region",
    "base_url",
    "api_version",
    "events",
    "format",
    "start_time",
    "poll_interval",
    "state_dir",
    "checkpoint_interval",
    "checkpoint_delay",
    "limit",
    "max_buffered_events",
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "ca_file",
    "proxy",
    "insecure_http",
    "compression",
    "batch_max_records",
    "batch_max_bytes",
    "connect_timeout",
    "request_timeout",
    "max_response_bytes",
    "retry_initial",
    "retry_max",
    "unauthorized_retry",
];

/// A bad option: which one and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown option `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: None,
            token_file: None,
            region: None,
            base_url: None,
            api_version: ApiVersion::V2,
            events: None,
            format: Format::Ecs,
            start_time: StartTime::Retention,
            poll_interval: Duration::from_secs(10),
            state_dir: Config::default_state_dir(),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_delay: None,
            limit: 1000,
            max_buffered_events: 10_000,
            rate_limit_per_minute: 600,
            rate_limit_per_hour: 30_000,
            ca_file: None,
            proxy: None,
            insecure_http: false,
            compression: Compression::Gzip,
            batch_max_records: 1000,
            batch_max_bytes: 4 << 20,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            unauthorized_retry: Duration::from_secs(300),
            retry_fatal: true,
        }
    }
}

/// The longest value of an option other than `token`: a path or a URL's most.
const MAX_VALUE: usize = 4096;

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

fn parse_bool(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(invalid(
            key,
            format!("`{v}` is not a boolean (true, on, yes or 1; false, off, no or 0)"),
        )),
    }
}

fn parse_num<T: FromStr>(key: &'static str, v: &str, what: &str) -> Result<T, ConfigError> {
    v.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| invalid(key, format!("`{v}` is not {what}")))
}

fn parse_dur(key: &'static str, v: &str) -> Result<Duration, ConfigError> {
    parse_duration(v).map_err(|e| invalid(key, e.to_string()))
}

fn parse_url(key: &'static str, v: &str) -> Result<Url, ConfigError> {
    Url::parse(v.trim()).map_err(|e| {
        invalid(
            key,
            format!(
                "`{}` is not a URL ({e}; example: {})",
                without_userinfo(v),
                url_example(key)
            ),
        )
    })
}

/// A URL `key` takes, for its errors.
fn url_example(key: &str) -> &'static str {
    if key == "proxy" {
        "http://proxy.example:3128"
    } else {
        "https://events.1password.com"
    }
}

/// `v` with whatever sits between `://` and its last `@` hidden: a proxy URL may carry a
/// password, and an error must not show it (hiding a path's `@` too, where the URL is broken
/// anyway, is the safe side).
pub(crate) fn without_userinfo(v: &str) -> std::borrow::Cow<'_, str> {
    let start = v.find("://").map_or(0, |i| i + 3);
    match v[start..].rfind('@') {
        Some(at) => format!("{}***{}", &v[..start], &v[start + at..]).into(),
        None => v.into(),
    }
}

/// The option `key` names, in any case, with `-` or `_`, and around spaces.
pub fn key_name(key: &str) -> Option<&'static str> {
    let norm = normalize(key);
    KEYS.iter().copied().find(|k| *k == norm)
}

fn normalize(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('-', "_")
}

/// Levenshtein distance, for did-you-mean suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

impl Config {
    /// `$XDG_STATE_HOME/op-events`, else `$HOME/.local/state/op-events`, else `./op-events-state`.
    pub fn default_state_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("op-events");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(home).join(".local/state/op-events");
        }
        PathBuf::from("op-events-state")
    }

    /// Builds a config from snake_case keys (kebab-case and any case accepted); unset keys keep
    /// their defaults. Empty values count as unset (Fluent Bit returns NULL for them anyway).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k.as_ref(), v.as_ref())?;
        }
        c.validate()?;
        Ok(c)
    }

    /// Sets one option from its text form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(key) = key_name(key) else {
            let norm = normalize(key);
            let suggestion = KEYS
                .iter()
                .copied()
                .map(|k| (distance(&norm, k), k))
                // A third of the name may be wrong: three edits would turn most short names
                // into some key (`nope` into `token`).
                .filter(|(d, k)| {
                    *d <= (norm.len() / 3).clamp(1, 3)
                        || k.contains(norm.as_str()) && norm.len() >= 3
                })
                .min()
                .map(|(_, k)| k);
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
                suggestion,
            });
        };
        let v = value.trim();
        if v.is_empty() {
            return Ok(());
        }
        // Errors quote values, and one of megabytes would push the reason off the end of a
        // log line (Fluent Bit's are cut at about 4 KB); the token has its own limit.
        if v.len() > MAX_VALUE && key != "token" {
            return Err(invalid(
                key,
                format!(
                    "the value is {} bytes long, more than the {MAX_VALUE} taken",
                    v.len()
                ),
            ));
        }
        match key {
            "token" => self.token = Some(SecretString::from(v.to_owned())),
            "token_file" => self.token_file = Some(PathBuf::from(v)),
            "region" => {
                self.region = Some(v.parse().map_err(|e| invalid("region", format!("{e}")))?)
            }
            "base_url" => self.base_url = Some(parse_url("base_url", v)?),
            "api_version" => {
                self.api_version = v
                    .parse()
                    .map_err(|e| invalid("api_version", format!("{e}")))?
            }
            "events" if v.trim().eq_ignore_ascii_case("all") => self.events = None,
            "events" => {
                let list = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<EventType>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("events", format!("{e}")))?;
                let mut list = list;
                list.sort();
                list.dedup();
                self.events = if list.is_empty() { None } else { Some(list) };
            }
            "format" => self.format = v.parse().map_err(|e| invalid("format", format!("{e}")))?,
            "start_time" => {
                self.start_time = v.parse().map_err(|e| invalid("start_time", e))?;
            }
            "poll_interval" => self.poll_interval = parse_dur(key, v)?,
            "state_dir" => self.state_dir = PathBuf::from(v),
            "checkpoint_interval" => self.checkpoint_interval = parse_dur(key, v)?,
            "checkpoint_delay" => self.checkpoint_delay = Some(parse_dur(key, v)?),
            "limit" => self.limit = parse_num(key, v, "a number from 1 to 1000")?,
            "max_buffered_events" => {
                self.max_buffered_events = parse_num(key, v, "a number of events")?
            }
            "rate_limit_per_minute" => {
                self.rate_limit_per_minute = parse_num(key, v, "a number of requests (0 = off)")?
            }
            "rate_limit_per_hour" => {
                self.rate_limit_per_hour = parse_num(key, v, "a number of requests (0 = off)")?
            }
            "ca_file" => self.ca_file = Some(PathBuf::from(v)),
            "proxy" => self.proxy = Some(parse_url("proxy", v)?),
            "insecure_http" => self.insecure_http = parse_bool(key, v)?,
            "compression" => {
                self.compression = v.parse().map_err(|e| invalid(key, format!("{e}")))?
            }
            "batch_max_records" => self.batch_max_records = parse_num(key, v, "a number")?,
            "batch_max_bytes" => self.batch_max_bytes = parse_num(key, v, "a number of bytes")?,
            "connect_timeout" => self.connect_timeout = parse_dur(key, v)?,
            "request_timeout" => self.request_timeout = parse_dur(key, v)?,
            "max_response_bytes" => {
                self.max_response_bytes = parse_num(key, v, "a number of bytes")?
            }
            "retry_initial" => self.retry_initial = parse_dur(key, v)?,
            "retry_max" => self.retry_max = parse_dur(key, v)?,
            "unauthorized_retry" => self.unauthorized_retry = parse_dur(key, v)?,
            _ => unreachable!("every KEYS entry is handled"),
        }
        Ok(())
    }

    /// Cross-field and range checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(invalid(
                "limit",
                format!("{} is out of range (1 to 1000)", self.limit),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(invalid(
                "poll_interval",
                "must be more than 0 (example: 10s)",
            ));
        }
        if self.max_buffered_events == 0 {
            return Err(invalid("max_buffered_events", "must be at least 1"));
        }
        if self.batch_max_records == 0 {
            return Err(invalid("batch_max_records", "must be at least 1"));
        }
        if self.batch_max_bytes == 0 {
            return Err(invalid("batch_max_bytes", "must be at least 1"));
        }
        if self.max_response_bytes < 1024 {
            return Err(invalid("max_response_bytes", "must be at least 1024"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid(
                "request_timeout",
                "must be more than 0 (example: 60s)",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid(
                "connect_timeout",
                "must be more than 0 (example: 10s)",
            ));
        }
        // A zero wait would retry in a tight loop, against the API and its rate limits.
        if self.retry_initial.is_zero() {
            return Err(invalid(
                "retry_initial",
                "must be more than 0 (example: 1s)",
            ));
        }
        if self.retry_max < self.retry_initial {
            return Err(invalid(
                "retry_max",
                format!(
                    "{:?} is less than retry_initial ({:?}); it caps the doubling waits",
                    self.retry_max, self.retry_initial
                ),
            ));
        }
        if self.unauthorized_retry.is_zero() {
            return Err(invalid(
                "unauthorized_retry",
                "must be more than 0 (example: 5m)",
            ));
        }
        if let Some(u) = &self.base_url {
            if !matches!(u.scheme(), "http" | "https") {
                return Err(invalid("base_url", "must be an http:// or https:// URL"));
            }
            // The client would send them as a second Authorization header, which a server
            // may take instead of the token, and they would be logged with the address.
            if !u.username().is_empty() || u.password().is_some() {
                return Err(invalid(
                    "base_url",
                    "must not hold a user name or password (`user:password@`): the Events API \
                     takes the token alone; remove them (a proxy's go in `proxy`)",
                ));
            }
        }
        if let Some(u) = &self.proxy
            && !matches!(u.scheme(), "http" | "https")
        {
            // `proxy.example:3128` reads as a URL of scheme `proxy.example`.
            return Err(invalid(
                "proxy",
                "must be an http:// or https:// URL (SOCKS proxies are not supported; example: \
                 http://proxy.example:3128)",
            ));
        }
        // The URL parser takes port 0, which no connection can be made to: every request would
        // fail, retried forever.
        for (key, url) in [("base_url", &self.base_url), ("proxy", &self.proxy)] {
            if url.as_ref().is_some_and(|u| u.port() == Some(0)) {
                return Err(invalid(
                    key,
                    format!(
                        "port 0 cannot be connected to: give the port it listens on, or none for \
                         the scheme's (example: {})",
                        url_example(key)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_and_values() {
        let c = Config::from_pairs([
            ("poll-interval", "1m"),
            ("events", "itemusages, auditevents"),
            ("Region", "eu"),
            ("start_time", "7d"),
            ("token", "sekrit"),
            ("limit", ""),
            ("checkpoint_interval", "0"),
            ("checkpoint_delay", "250ms"),
        ])
        .unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(60));
        assert_eq!(c.checkpoint_interval, Duration::ZERO);
        assert_eq!(c.checkpoint_delay, Some(Duration::from_millis(250)));
        assert_eq!(Config::default().checkpoint_delay, None);
        assert_eq!(
            Config::default().checkpoint_interval,
            Duration::from_secs(1)
        );
        assert_eq!(
            c.events,
            Some(vec![EventType::ItemUsages, EventType::AuditEvents])
        );
        assert_eq!(c.region, Some(Region::Eu));
        assert_eq!(c.limit, 1000);
        assert_eq!(c.compression, Compression::Gzip);
        let plain = Config::from_pairs([("compression", " None ")]).unwrap();
        assert_eq!(plain.compression, Compression::None);
        assert_eq!(
            c.start_time,
            StartTime::Lookback(Duration::from_secs(7 * 86400))
        );
        assert_eq!(c.token.as_ref().unwrap().expose_secret(), "sekrit");
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn errors_name_the_option() {
        let e = Config::from_pairs([("poll_interval", "abc")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "poll_interval: `abc` is not a duration (examples: 10s, 1m)"
        );
        let e = Config::from_pairs([("poll_interval", "3651d")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "poll_interval: `3651d` is too long (at most 3650d)"
        );
        for tiny in ["0.0000000001", "0.5ms"] {
            let e = Config::from_pairs([("poll_interval", tiny)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("poll_interval: `{tiny}` is shorter than 1ms, the shortest duration taken")
            );
        }
        let c = Config::from_pairs([("checkpoint_interval", "0"), ("poll_interval", "1ms")]);
        assert_eq!(c.unwrap().poll_interval, Duration::from_millis(1));
        let c = Config::from_pairs([("poll_interval", "3650d")]).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(3650 * 86_400));
        // A value of megabytes is not quoted back whole: the reason would be cut off.
        let long = "a".repeat(MAX_VALUE + 1);
        let e = Config::from_pairs([("state_dir", long.as_str())]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "state_dir: the value is 4097 bytes long, more than the 4096 taken"
        );
        let c = Config::from_pairs([("state_dir", &long[1..]), ("token", long.as_str())]).unwrap();
        assert_eq!(c.state_dir.as_os_str().len(), MAX_VALUE);
        // Every word it takes, as Fluent Bit's own booleans.
        let e = Config::from_pairs([("insecure_http", "maybe")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "insecure_http: `maybe` is not a boolean (true, on, yes or 1; false, off, no or 0)"
        );
        for (word, value) in [("On", true), ("yes", true), ("1", true), ("OFF", false)] {
            let c = Config::from_pairs([("insecure_http", word)]).unwrap();
            assert_eq!(c.insecure_http, value, "{word}");
        }
        let e = Config::from_pairs([("pol_interval", "1s")]).unwrap_err();
        assert!(
            e.to_string().contains("did you mean `poll_interval`"),
            "{e}"
        );
        for (typo, key) in [
            ("tokn", "token"),
            ("stat_dir", "state_dir"),
            ("proxi", "proxy"),
        ] {
            let e = Config::from_pairs([(typo, "x")]).unwrap_err();
            assert!(
                e.to_string().contains(&format!("did you mean `{key}`")),
                "{e}"
            );
        }
        let e = Config::from_pairs([("nope", "1")]).unwrap_err();
        assert_eq!(e.to_string(), "unknown option `nope`");
        let e = Config::from_pairs([("compression", "deflate")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compression: `deflate` is not one of: gzip, none"
        );
        let e = Config::from_pairs([("limit", "5000")]).unwrap_err();
        assert!(e.to_string().starts_with("limit:"), "{e}");
        // The HTTP client has no SOCKS support: refused at start, not retried forever.
        for proxy in ["socks5://127.0.0.1:1080", "socks5h://proxy:1080"] {
            let e = Config::from_pairs([("token", "t"), ("proxy", proxy)]).unwrap_err();
            assert!(
                e.to_string().contains("SOCKS proxies are not supported"),
                "{e}"
            );
        }
        assert!(Config::from_pairs([("token", "t"), ("proxy", "http://proxy:3128")]).is_ok());
        assert!(Config::from_pairs([("events", "logins")]).is_err());
    }

    /// A proxy's errors give a proxy's URL as their example, not the API's.
    #[test]
    fn a_proxy_without_a_scheme_is_refused_with_a_proxy_example() {
        for proxy in ["127.0.0.1:3128", "proxy.example:3128"] {
            let e = Config::from_pairs([("token", "t"), ("proxy", proxy)]).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("proxy: "), "{text}");
            assert!(
                text.contains("example: http://proxy.example:3128"),
                "{text}"
            );
        }
        let e = Config::from_pairs([("base_url", "events.1password.com")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("example: https://events.1password.com"),
            "{e}"
        );
    }

    /// Port 0 is a URL's, but no connection can be made to it: every request would fail,
    /// retried forever.
    #[test]
    fn port_0_is_refused_naming_the_key() {
        for (key, url, example) in [
            (
                "base_url",
                "https://127.0.0.1:0",
                "https://events.1password.com",
            ),
            (
                "base_url",
                "http://localhost:0/prefix",
                "https://events.1password.com",
            ),
            (
                "proxy",
                "http://me:hunter2@127.0.0.1:0",
                "http://proxy.example:3128",
            ),
        ] {
            let e = Config::from_pairs([("token", "t"), (key, url)]).unwrap_err();
            let text = e.to_string();
            assert_eq!(
                text,
                format!(
                    "{key}: port 0 cannot be connected to: give the port it listens on, or none \
                     for the scheme's (example: {example})"
                )
            );
        }
        assert!(Config::from_pairs([("token", "t"), ("base_url", "https://127.0.0.1:1")]).is_ok());
        for all in ["all", " ALL "] {
            let c = Config::from_pairs([("events", "auditevents"), ("events", all)]).unwrap();
            assert_eq!(c.events, None, "{all:?}: every type the token allows");
        }
    }

    #[test]
    fn urls_with_credentials() {
        // Sent as Basic auth beside the token, and logged with the address: refused.
        for url in [
            "https://user:hunter2@events.1password.com",
            "http://user@127.0.0.1:8080",
            "http://:hunter2@127.0.0.1:8080",
        ] {
            let e = Config::from_pairs([("token", "t"), ("base_url", url)]).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with("base_url: must not hold a user name"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        // A proxy's are its own login: kept, and hidden when the URL is broken.
        let c = Config::from_pairs([("token", "t"), ("proxy", "http://me:hunter2@proxy:3128")]);
        assert_eq!(c.unwrap().proxy.unwrap().password(), Some("hunter2"));
        for (broken, shown) in [
            ("http://me:hunter2@proxy:31x8", "`http://***@proxy:31x8`"),
            ("http://me:hun/ter2@proxy", "`http://***@proxy`"),
        ] {
            let e = Config::from_pairs([("proxy", broken)]).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(shown) && !text.contains("ter2"), "{text}");
        }
    }

    #[test]
    fn start_time_is_clamped_to_retention() {
        let now: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let old: StartTime = "2020-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(old.resolve(now), now - MAX_LOOKBACK);
        assert_eq!(StartTime::Retention.resolve(now), now - MAX_LOOKBACK);
        let lb: StartTime = "12h".parse().unwrap();
        assert_eq!(lb.resolve(now), now - Duration::from_secs(12 * 3600));
    }

    /// A time with a part left out is told which; an impossible one why.
    #[test]
    fn start_time_errors_say_what_is_wrong_with_the_time() {
        for (text, says) in [
            (
                "2026-01-15",
                "`2026-01-15` has no time of day: add one and a UTC offset, as in \
                 2026-01-15T00:00:00Z",
            ),
            (
                "2026-01-15T08:00:00",
                "`2026-01-15T08:00:00` has no UTC offset: add Z for UTC, or one such as +02:00",
            ),
            ("2026-02-30T00:00:00Z", "for `2026-02` is invalid"),
            (
                "2026-01-15T25:00:00Z",
                "'hour' is not in the required range",
            ),
            (
                "7 days",
                "is neither RFC 3339 (2026-01-15T00:00:00Z) nor a lookback",
            ),
        ] {
            let e = text.parse::<StartTime>().unwrap_err();
            assert!(
                e.starts_with(&format!("`{text}` ")) && e.contains(says),
                "{e}"
            );
        }
    }
}
