//! The bearer token as a secret, and its claims read WITHOUT verifying the signature (the server
//! verifies; we only use them for routing and for explaining a 401).

use std::path::Path;
use std::sync::RwLock;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::event::EventType;

/// The token. `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    secret: SecretString,
    claims: Claims,
    /// Whether the token is a JWT whose claims could be read, as Events Reporting tokens are.
    /// Others are still sent (the server decides), but a rejection then says so.
    jwt: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("claims", &self.claims)
            .finish()
    }
}

/// The claims we use. All optional: old or foreign tokens may lack any of them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Claims {
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    #[serde(default, rename = "1password.com/fts")]
    pub features: Vec<String>,
    #[serde(default, rename = "1password.com/auuid")]
    pub account_uuid: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

/// The most a `token_file` may hold: tokens are a kilobyte or two.
const MAX_TOKEN_FILE: usize = 64 * 1024;

/// The longest token sent: servers refuse request headers much past 8 KB (the API would
/// answer every request 431, which says nothing about the token).
const MAX_TOKEN: usize = 8 * 1024;

/// Why a token could not be used. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no token: set the `token` option (e.g. `token ${{OP_EVENTS_TOKEN}}`) or `token_file` to a file holding the Events API bearer token"
    )]
    Missing,
    #[error("token_file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// The file was read, but what it holds is not a token.
    #[error("token_file {path}: {problem}")]
    FileContents {
        path: String,
        problem: Box<TokenError>,
    },
    #[error("the token is empty")]
    Empty,
    #[error("the token contains whitespace or control characters inside it; copy it again")]
    Malformed,
    #[error("the token starts with `Bearer `: give the token alone, without that prefix")]
    BearerPrefix,
    #[error("the token is in quotes: give it without them")]
    Quoted,
    #[error(
        "the token is {0} bytes long, more than the {MAX_TOKEN} taken (an Events Reporting token is about 1 KB): copy it again"
    )]
    TooLong(usize),
}

impl Token {
    /// Wraps a token string; claims are best effort (a non-JWT token has none).
    pub fn new(secret: SecretString) -> Result<Token, TokenError> {
        let raw = secret.expose_secret().trim();
        if raw.is_empty() {
            return Err(TokenError::Empty);
        }
        if raw.len() > MAX_TOKEN {
            return Err(TokenError::TooLong(raw.len()));
        }
        if raw
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        {
            return Err(TokenError::BearerPrefix);
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TokenError::Malformed);
        }
        if raw.len() >= 2
            && ["\"", "'"]
                .iter()
                .any(|q| raw.starts_with(q) && raw.ends_with(q))
        {
            return Err(TokenError::Quoted);
        }
        let claims = decode_claims(raw);
        hold(raw);
        Ok(Token {
            secret: SecretString::from(raw.to_owned()),
            jwt: claims.is_some(),
            claims: claims.unwrap_or_default(),
        })
    }

    /// Reads a token file (whitespace around the token, such as a final newline, ignored).
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let text =
            crate::file::read_text(path, MAX_TOKEN_FILE).map_err(|source| TokenError::File {
                path: path.display().to_string(),
                source,
            })?;
        Token::new(SecretString::from(text)).map_err(|problem| TokenError::FileContents {
            path: path.display().to_string(),
            problem: Box::new(problem),
        })
    }

    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// `aud[0]` when it looks like a host (very old tokens carry `com.1password.streamingservice`).
    pub fn audience_host(&self) -> Option<&str> {
        let aud = self.claims.aud.first()?;
        (aud.contains('.') && !aud.starts_with("com.") && !aud.contains('/')).then_some(aud)
    }

    /// Features named in the token, if it names any.
    pub fn features(&self) -> Vec<EventType> {
        self.claims
            .features
            .iter()
            .filter_map(|f| f.parse().ok())
            .collect()
    }

    /// The `exp` claim, if the token has one.
    pub fn expires_at(&self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_second(self.claims.exp?).ok()
    }

    /// The most likely reason for a 401 on `kind` against `host`, from the claims.
    pub fn explain_unauthorized(&self, kind: Option<EventType>, host: &str) -> String {
        if let Some(t) = self.expires_at()
            && t <= jiff::Timestamp::now()
        {
            return format!(
                "the token expired at {t}; create a new token in 1Password (Integrations → Events Reporting)"
            );
        }
        if let Some(kind) = kind
            && !self.claims.features.is_empty()
            && !self.features().contains(&kind)
        {
            return format!(
                "the token lacks the `{kind}` feature (it has: {}); remove `{kind}` from `events` or issue a token with it",
                self.claims.features.join(", ")
            );
        }
        // Only the API's own hosts: a `base_url` of another host (a proxy, a mock) is not
        // the token's audience by design, and there a rejection means something else.
        if let Some(aud) = self.audience_host()
            && !aud.eq_ignore_ascii_case(host)
            && crate::config::Region::from_host(host).is_some()
        {
            return format!(
                "the token is for {aud} but requests go to {host}; fix `region`/`base_url` or leave them unset"
            );
        }
        if !self.jwt {
            return "the token was rejected, and it is not shaped like an Events Reporting token \
                    (a JWT: three dot-separated parts, the first starting `eyJ`); copy it whole \
                    from 1Password (Integrations → Events Reporting)"
                .into();
        }
        "the token was rejected (revoked, or for another account/region); check it in 1Password"
            .into()
    }
}

/// Says so when a file holding the token can be read by other users than its owner: anyone on
/// the machine could then use the token. Only a warning: the file may be shared on purpose (a
/// group the service runs in), and refusing would stop collection over it.
pub fn warn_if_others_can_read(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    // One that is no regular file, or can't be read, fails to read, saying why.
    let Some(meta) = std::fs::metadata(path).ok().filter(|m| m.is_file()) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o044 != 0 {
        tracing::warn!(
            "{what} {}: holds the token but can be read by other users (mode {mode:04o}); \
             make it readable by its owner only: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

/// Shortest known secret that [`redact`] looks for: a real token is hundreds of characters, and
/// replacing every occurrence of a few letters would garble a message without hiding anything.
const MIN_KNOWN_SECRET: usize = 8;

/// The shortest last segment of a secret that [`redact`] hides on its own: a JWT's signature is
/// 43 characters or more (HMAC-SHA256); a short tail (`c` of `a.b.c`) would garble messages.
const MIN_SIGNATURE: usize = 32;

/// Every token this process has held (given inline, read from `token_file`, or read again when
/// the API rejected the one before), each once: [`redact_held`] hides them whatever their shape,
/// where [`redact`] alone hides only token-shaped text and the secrets it is given. A process
/// holds a few in its life, one more per rotation.
static HELD: RwLock<Vec<SecretString>> = RwLock::new(Vec::new());

fn hold(raw: &str) {
    if raw.len() < MIN_KNOWN_SECRET {
        return;
    }
    let mut held = HELD.write().unwrap_or_else(|e| e.into_inner());
    if !held.iter().any(|s| s.expose_secret() == raw) {
        held.push(SecretString::from(raw.to_owned()));
    }
}

/// [`redact`] with `secret` and every token this process has held: the log lines of the binary
/// and the plugin, and the binary's errors, which may quote a value or path holding a token read
/// from a file.
pub fn redact_held(text: &str, secret: Option<&str>) -> String {
    let held = HELD.read().unwrap_or_else(|e| e.into_inner());
    redact(text, held.iter().map(|s| s.expose_secret()).chain(secret))
}

/// [`redact_held`], as one line: control characters escaped (`\n`, `\u{1b}`), since a value
/// quoted with a newline would start a line that looks like a log line of its own. For
/// lines written whole to a log: the plugin's, and the binary's final error.
pub fn redact_line(text: &str, secret: Option<&str>) -> String {
    escape_controls(&redact_held(text, secret)).into_owned()
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`): one line, and no terminal
/// sequence.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `text` with `secrets` and anything shaped like a token replaced by `[redacted]`: text that
/// may quote what a user typed or a server sent, where a token pasted into the wrong place (a
/// flag's value, a path, a stray argument) or echoed back would otherwise be shown. A secret's
/// JWT signature (its last segment) is hidden on its own too: a server may echo just that, or
/// the token with its dots encoded. Token-shaped means a JWT (three base64url segments joined
/// by dots, the first two at least 10 characters) or a word of 16 or more base64url characters
/// starting with `eyJ` or `eyI` (`{"` encoded), such as a JWT cut short.
///
/// Runs on every log line of the binary and the plugin: a line without a secret is not copied
/// before the one pass over its words.
pub fn redact<'s>(text: &str, secrets: impl IntoIterator<Item = &'s str>) -> String {
    let mut text = std::borrow::Cow::Borrowed(text);
    for s in secrets.into_iter().map(str::trim) {
        let signature = s
            .rsplit_once('.')
            .map(|(_, sig)| sig)
            .filter(|sig| sig.len() >= MIN_SIGNATURE);
        for secret in std::iter::once(s).chain(signature) {
            if secret.len() >= MIN_KNOWN_SECRET && text.contains(secret) {
                text = std::borrow::Cow::Owned(text.replace(secret, "[redacted]"));
            }
        }
    }
    let word_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = &*text;
    while let Some(start) = rest.find(word_char) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !word_char(c)).unwrap_or(rest.len());
        // A sentence's full stop, or a path's `./`, is not part of the word.
        let word = &rest[..end];
        let trimmed = word.trim_matches('.');
        let lead = word.len() - word.trim_start_matches('.').len();
        if token_shaped(trimmed) {
            out.push_str(&word[..lead]);
            out.push_str("[redacted]");
            out.push_str(&word[lead + trimmed.len()..]);
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn token_shaped(word: &str) -> bool {
    let segments: Vec<&str> = word.split('.').collect();
    let jwt = segments.len() == 3 && segments[0].len() >= 10 && segments[1].len() >= 10;
    jwt || (word.starts_with("eyJ") || word.starts_with("eyI")) && word.len() >= 16
}

fn decode_claims(raw: &str) -> Option<Claims> {
    let payload = raw.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An unsigned JWT with `claims`, for tests.
#[cfg(test)]
pub(crate) fn test_jwt(claims: &str) -> SecretString {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    SecretString::from(format!(
        "{}.{}.sig",
        e.encode(r#"{"alg":"ES256"}"#),
        e.encode(claims)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_jwt as jwt;

    #[test]
    fn reads_claims_without_verifying() {
        let t = Token::new(jwt(
            r#"{"aud":["events.1password.eu"],"1password.com/fts":["itemusages"],"exp":1}"#,
        ))
        .unwrap();
        assert_eq!(t.audience_host(), Some("events.1password.eu"));
        assert_eq!(t.features(), vec![EventType::ItemUsages]);
        assert!(t.explain_unauthorized(None, "x").contains("expired"));
        assert!(!format!("{t:?}").contains("sig"));
        let eu = Token::new(jwt(r#"{"aud":["events.1password.eu"]}"#)).unwrap();
        assert!(
            eu.explain_unauthorized(None, "events.1password.com")
                .contains("the token is for events.1password.eu but requests go to")
        );
        for host in ["events.1password.eu", "127.0.0.1", "op-proxy.corp.example"] {
            assert!(
                eu.explain_unauthorized(None, host).contains("revoked"),
                "{host}"
            );
        }
        let old = Token::new(jwt(r#"{"aud":"com.1password.streamingservice"}"#)).unwrap();
        assert_eq!(old.audience_host(), None);
        let t = Token::new(jwt(r#"{"1password.com/fts":["itemusages"]}"#)).unwrap();
        assert!(
            t.explain_unauthorized(Some(EventType::AuditEvents), "h")
                .contains("lacks the `auditevents`")
        );
        assert!(Token::new(SecretString::from("  ")).is_err());
    }

    #[test]
    fn says_what_is_wrong_with_the_token_text() {
        let good = jwt(r#"{"aud":["events.1password.com"]}"#);
        let good = good.expose_secret();
        for (text, what) in [
            (format!("Bearer {good}"), "without that prefix"),
            (format!("bearer {good}"), "without that prefix"),
            (format!("\"{good}\""), "in quotes"),
            (format!("'{good}'"), "in quotes"),
            (format!("{good} {good}"), "whitespace"),
            (
                "a".repeat(MAX_TOKEN + 1),
                "the token is 8193 bytes long, more than the 8192 taken",
            ),
        ] {
            let e = Token::new(SecretString::from(text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(what) && !e.contains(good), "{e}");
        }
        assert!(Token::new(SecretString::from("a".repeat(MAX_TOKEN))).is_ok());
        // Not a JWT: still sent, since the server decides, but a rejection says what it is.
        for opaque in ["opaque-token-text", "12345", "eyJ.not.json"] {
            let t = Token::new(SecretString::from(opaque)).unwrap();
            let why = t.explain_unauthorized(None, "events.1password.com");
            assert!(
                why.contains("not shaped like an Events Reporting token"),
                "{why}"
            );
        }
        let t = Token::new(SecretString::from(good.to_owned())).unwrap();
        let why = t.explain_unauthorized(None, "events.1password.com");
        assert!(why.contains("revoked"), "{why}");
    }

    #[test]
    fn redact_hides_the_secret_and_anything_token_shaped() {
        let jwt = jwt(r#"{"aud":["events.1password.com"]}"#);
        let jwt = jwt.expose_secret();
        assert_eq!(
            redact(&format!("--region: `{jwt}` is not one of"), None),
            "--region: `[redacted]` is not one of"
        );
        assert_eq!(
            redact(&format!("token_file ./{jwt}.: No such file"), None),
            "token_file ./[redacted].: No such file"
        );
        assert_eq!(
            redact("unexpected argument 'eyJhbGciOiJFUzI1' found", None),
            "unexpected argument '[redacted]' found"
        );
        assert_eq!(
            redact(
                "opaque-secret-1 and opaque-secret-1",
                Some(" opaque-secret-1\n")
            ),
            "[redacted] and [redacted]"
        );
        // Echoed in part by a server: the signature alone, the token after `name=`, its dots
        // percent-encoded, a payload cut short.
        let signature = "bVPInVY-_rdoQ1g2Rv_UpmivDYoXN00ucAYjRuVe3f0";
        let unsigned = test_jwt(r#"{"1password.com/auuid":"VMRX6FRXUPDQOVJ7I2IEQ7NZ4V"}"#);
        let (unsigned, _) = unsigned.expose_secret().rsplit_once('.').unwrap();
        let jwt = format!("{unsigned}.{signature}");
        let jwt = jwt.as_str();
        let (header, payload) = unsigned.split_once('.').unwrap();
        for (echoed, shown) in [
            (
                format!("bad signature {signature}; tail"),
                "bad signature [redacted]; tail".to_owned(),
            ),
            (format!("token={jwt}"), "token=[redacted]".to_owned()),
            (
                jwt.replace('.', "%2E"),
                format!("[redacted]%2E{payload}%2E[redacted]"),
            ),
            (
                format!("got {}", &payload[..20]),
                "got [redacted]".to_owned(),
            ),
        ] {
            assert_eq!(redact(&echoed, Some(jwt)), shown, "{echoed}");
        }
        assert!(header.starts_with("eyJ") && payload.starts_with("eyI"));
        // Written to a log as one line: control characters escaped, after redaction.
        assert_eq!(
            redact_line(&format!("`a\nb\u{1b}[2J\0` and {jwt}"), None),
            "`a\\nb\\u{1b}[2J\\0` and [redacted]"
        );
        // What is not a token stays: hosts, paths, versions, uuids, short secrets.
        for kept in [
            "events.1password.com, events.ent.1password.com, 127.0.0.1:9",
            "/var/lib/op-events/0b3d2c1a-8f6e-4a5b-9c7d-e1f2a3b4c5d6.json v0.1.0",
            "config.toml.bak: eyJ",
        ] {
            assert_eq!(redact(kept, Some("short")), kept);
        }
    }

    /// A token once read, from a file as a rotation reads it again, is hidden by its exact text
    /// from then on, though nothing about it looks like a token.
    #[test]
    fn every_token_held_is_hidden_whatever_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let opaque = "Rk3vT9wQ2mX7pL5nB8cZ4hJ6";
        let line = format!("--region: `{opaque}` is not one of");
        assert_eq!(redact_held(&line, None), line);
        std::fs::write(&path, format!("{opaque}\n")).unwrap();
        Token::from_file(&path).unwrap();
        assert_eq!(
            redact_held(&line, None),
            "--region: `[redacted]` is not one of"
        );
    }

    /// What is wrong with a token read from a file names the file.
    #[test]
    fn token_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (text, problem) in [("\n", "is empty"), ("two words\n", "whitespace")] {
            let path = dir.path().join("token");
            std::fs::write(&path, text).unwrap();
            let e = Token::from_file(&path).unwrap_err().to_string();
            let start = format!("token_file {}: the token ", path.display());
            assert!(e.starts_with(&start) && e.contains(problem), "{e}");
            assert!(!e.contains("words"), "the token is never quoted: {e}");
        }
    }
}
