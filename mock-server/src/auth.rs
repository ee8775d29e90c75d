//! Tokens: JWT-shaped (HS256 with the mock's key), regions, features, account uuids.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::Kind;

/// Key shared by `op-events-mock token` and `op-events-mock serve` when neither gets `--key`,
/// so a minted token works against a plain server at once. Never use it outside tests.
pub const DEV_KEY: &str = "op-events-mock-development-key";

/// Claim naming the account by name (mock-only; real tokens carry only the uuid).
const ACCOUNT_NAME_CLAIM: &str = "op-events-mock/account";

/// The audience of tokens issued before the regional hosts: it names no host, so a client must
/// be told where to send them. The mock accepts such a token on every region's host, as it
/// cannot tell which one its account lives in.
pub const LEGACY_AUDIENCE: &str = "com.1password.streamingservice";

/// The four documented regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Region {
    #[default]
    Us,
    Ent,
    Ca,
    Eu,
}

impl Region {
    pub const ALL: [Region; 4] = [Region::Us, Region::Ent, Region::Ca, Region::Eu];

    /// The region's events host, which is also the token audience.
    pub fn host(self) -> &'static str {
        match self {
            Region::Us => "events.1password.com",
            Region::Ent => "events.ent.1password.com",
            Region::Ca => "events.1password.ca",
            Region::Eu => "events.1password.eu",
        }
    }

    /// The region a `Host` header names, ignoring any port and the root's trailing dot of a
    /// fully qualified name (`events.1password.ca.` is `events.1password.ca`).
    pub fn from_host(host: &str) -> Option<Region> {
        let name = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let name = name.strip_suffix('.').unwrap_or(name);
        Region::ALL
            .into_iter()
            .find(|r| r.host().eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown region {0:?} (expected us, ent, ca or eu)")]
pub struct UnknownRegion(String);

impl std::str::FromStr for Region {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "us" => Ok(Region::Us),
            "ent" => Ok(Region::Ent),
            "ca" => Ok(Region::Ca),
            "eu" => Ok(Region::Eu),
            other => Err(UnknownRegion(other.to_owned())),
        }
    }
}

/// A feature name that no endpoint grants access by.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown feature {0:?} (expected signinattempts, itemusages or auditevents)")]
pub struct UnknownFeature(String);

/// A feature a token may grant (an event type's name). Minting refuses others, which would
/// otherwise surface only later, as a 401 from the endpoint the typo meant.
pub fn parse_feature(name: &str) -> Result<String, UnknownFeature> {
    match Kind::parse(name) {
        Some(kind) => Ok(kind.name().to_owned()),
        None => Err(UnknownFeature(name.to_owned())),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an account name must not be empty")]
pub struct EmptyAccount;

/// An account name: any text but an empty one, which would name an account no one means (a
/// shell variable left unset).
pub fn parse_account(name: &str) -> Result<String, EmptyAccount> {
    if name.trim().is_empty() {
        return Err(EmptyAccount);
    }
    Ok(name.to_owned())
}

/// Everything a minted token says.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub region: Region,
    pub features: Vec<String>,
    pub account: String,
    pub issued_at: Timestamp,
    /// `None`: no `exp` claim, as an integration whose tokens never expire issues them.
    pub expires_at: Option<Timestamp>,
    /// `aud` is [`LEGACY_AUDIENCE`], a plain string as very old tokens carry it, instead of
    /// the region's host.
    pub legacy_audience: bool,
}

/// The verified claims of a presented token.
#[derive(Clone, Debug)]
pub struct Claims {
    pub integration_uuid: String,
    pub account_uuid: String,
    pub account_name: String,
    pub features: Vec<String>,
    pub audience: Vec<String>,
    pub issued_at: Timestamp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("bad token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("token is not valid for this region")]
    WrongRegion,
    #[error("token lacks the {0} feature")]
    MissingFeature(String),
}

/// Deterministic account uuid: the first 130 bits of SHA-256("op-events-mock account:" + name)
/// in RFC 4648 base32 (A–Z, 2–7), 26 characters, like real 1Password uuids.
pub fn account_uuid(name: &str) -> String {
    derived_uuid("account", name)
}

/// A 26-character uuid derived from a label and a name (same derivation as [`account_uuid`]).
pub fn derived_uuid(label: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("op-events-mock {label}:{name}").as_bytes());
    base32_26(&digest)
}

/// Renders the first 130 bits of `bytes` (at least 17 bytes) as 26 base32 characters.
pub fn base32_26(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut acc: u128 = 0;
    for b in &bytes[..16] {
        acc = (acc << 8) | u128::from(*b);
    }
    let mut out = String::with_capacity(26);
    for i in 0..25 {
        out.push(ALPHABET[((acc >> (123 - 5 * i)) & 31) as usize] as char);
    }
    out.push(ALPHABET[((acc & 7) << 2 | u128::from(bytes[16] >> 6)) as usize] as char);
    out
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Mints an HS256 JWT for `spec`, signed with `key`. `serial` numbers the tokens one server
/// mints: it goes into the token id, so two tokens minted alike (same spec, same second) still
/// differ, as real ones do, and revoking one leaves the other working.
pub fn mint(key: &[u8], spec: &TokenSpec, serial: u64) -> String {
    let jti = derived_uuid(
        "token",
        &format!(
            "{}:{}:{}:{serial}",
            spec.account,
            spec.issued_at,
            spec.features.join(",")
        ),
    );
    let audience = match spec.legacy_audience {
        true => json!(LEGACY_AUDIENCE),
        false => json!([spec.region.host()]),
    };
    let mut claims = json!({
        "aud": audience,
        "sub": derived_uuid("integration", &spec.account),
        "iss": "com.1password.b5",
        "jti": jti,
        "iat": spec.issued_at.as_second(),
        "1password.com/fts": spec.features,
        "1password.com/auuid": account_uuid(&spec.account),
        ACCOUNT_NAME_CLAIM: spec.account,
    });
    if let Some(expires_at) = spec.expires_at {
        claims["exp"] = expires_at.as_second().into();
    }
    sign_claims(key, &claims)
}

/// An HS256 JWT of any `claims`, signed with `key`: for tokens [`mint`] does not make (other
/// claims, or some left out), as other tooling with the mock's key might.
pub fn sign_claims(key: &[u8], claims: &Value) -> String {
    sign_payload(key, &claims.to_string())
}

/// An HS256 JWT whose claims are `payload` as it is, for claims no JSON value holds (a claim
/// given twice, which the mock reads as its last one and a strict reader refuses).
pub fn sign_payload(key: &[u8], payload: &str) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "op-events-mock"});
    let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(payload));
    let signature = B64.encode(sign(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// A token's HMAC-SHA256 signature: what [`Revoked`] remembers a token by.
pub type Signature = [u8; 32];

/// Checks the token's shape and its signature with `key`; returns its payload segment and
/// signature.
fn signed<'t>(key: &[u8], token: &'t str) -> Result<(&'t str, Signature), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let signature = B64.decode(signature).map_err(|_| AuthError::Malformed)?;
    let header_json: Value = B64
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(AuthError::Malformed)?;
    if header_json["alg"] != "HS256" {
        return Err(AuthError::BadSignature);
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    let signature = signature.try_into().map_err(|_| AuthError::BadSignature)?;
    Ok((payload, signature))
}

/// The signature of a token signed with `key`, whatever its claims and expiry: an expired
/// token can still be revoked, as the clock may move back.
pub fn signature(key: &[u8], token: &str) -> Result<Signature, AuthError> {
    signed(key, token).map(|(_, signature)| signature)
}

/// Revoked tokens, remembered by signature: 32 bytes each however large the claims, and only
/// tokens signed with the mock's key get in. Never forgotten, not even on expiry, as the clock
/// can be set back to before it.
#[derive(Default)]
pub struct Revoked(Mutex<HashSet<Signature>>);

impl Revoked {
    pub fn insert(&self, signature: Signature) {
        self.0.lock().expect("revoked lock").insert(signature);
    }

    fn contains(&self, signature: &Signature) -> bool {
        self.0.lock().expect("revoked lock").contains(signature)
    }
}

/// An RFC 7519 NumericDate: seconds since the epoch, a fraction allowed.
fn numeric_date(v: &Value) -> Option<Timestamp> {
    let secs = jiff::SignedDuration::try_from_secs_f64(v.as_f64()?).ok()?;
    Timestamp::from_duration(secs).ok()
}

/// Verifies signature, revocation and expiry against the mock's clock; region and features
/// are checked by the caller because their failure depends on the request.
pub fn verify(
    key: &[u8],
    token: &str,
    now: Timestamp,
    revoked: &Revoked,
) -> Result<Claims, AuthError> {
    let (payload, signature) = signed(key, token)?;
    if revoked.contains(&signature) {
        return Err(AuthError::Revoked);
    }
    let claims: Value = B64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(AuthError::Malformed)?;
    // No `exp`: a token that never expires. One that is there must be a number.
    if let Some(exp) = claims.get("exp")
        && now >= numeric_date(exp).ok_or(AuthError::Malformed)?
    {
        return Err(AuthError::Expired);
    }
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let account_uuid = claims["1password.com/auuid"]
        .as_str()
        .ok_or(AuthError::Malformed)?;
    Ok(Claims {
        integration_uuid: claims["sub"].as_str().unwrap_or_default().to_owned(),
        account_uuid: account_uuid.to_owned(),
        account_name: claims[ACCOUNT_NAME_CLAIM]
            .as_str()
            .map_or_else(|| account_uuid.to_ascii_lowercase(), str::to_owned),
        features: strings(&claims["1password.com/fts"]).ok_or(AuthError::Malformed)?,
        // RFC 7519 allows one audience as a plain string.
        audience: match &claims["aud"] {
            Value::String(aud) => vec![aud.clone()],
            aud => strings(aud).ok_or(AuthError::Malformed)?,
        },
        issued_at: numeric_date(&claims["iat"]).ok_or(AuthError::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TokenSpec {
        let now = Timestamp::now();
        TokenSpec {
            region: Region::Eu,
            features: vec!["itemusages".into()],
            account: "acme".into(),
            issued_at: now,
            expires_at: Some(now + jiff::SignedDuration::from_hours(1)),
            legacy_audience: false,
        }
    }

    #[test]
    fn minted_tokens_verify_and_carry_claims() {
        let none = Revoked::default();
        let token = mint(b"k", &spec(), 0);
        let claims = verify(b"k", &token, Timestamp::now(), &none).unwrap();
        assert_eq!(claims.audience, ["events.1password.eu"]);
        assert_eq!(claims.features, ["itemusages"]);
        assert_eq!(claims.account_uuid, account_uuid("acme"));
        assert_eq!(claims.account_name, "acme");
    }

    #[test]
    fn wrong_key_garbage_and_expiry_are_rejected() {
        let none = Revoked::default();
        let token = mint(b"k", &spec(), 0);
        assert_eq!(
            verify(b"other", &token, Timestamp::now(), &none).unwrap_err(),
            AuthError::BadSignature
        );
        assert_eq!(
            verify(b"k", "abc", Timestamp::now(), &none).unwrap_err(),
            AuthError::Malformed
        );
        let later = Timestamp::now() + jiff::SignedDuration::from_hours(2);
        assert_eq!(
            verify(b"k", &token, later, &none).unwrap_err(),
            AuthError::Expired
        );
    }

    #[test]
    fn revoked_tokens_are_rejected_and_others_are_not() {
        let revoked = Revoked::default();
        let spec = spec();
        let token = mint(b"k", &spec, 0);
        let other = mint(b"k", &spec, 1);
        revoked.insert(signature(b"k", &token).unwrap());
        let now = Timestamp::now();
        assert_eq!(
            verify(b"k", &token, now, &revoked).unwrap_err(),
            AuthError::Revoked
        );
        assert!(verify(b"k", &other, now, &revoked).is_ok());
        assert_eq!(
            signature(b"other", &token).unwrap_err(),
            AuthError::BadSignature
        );
        assert_eq!(signature(b"k", "a.b").unwrap_err(), AuthError::Malformed);
    }

    #[test]
    fn account_uuids_look_real_and_are_stable() {
        let id = account_uuid("acme");
        assert_eq!(id.len(), 26);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(id, account_uuid("acme"));
        assert_ne!(id, account_uuid("globex"));
    }

    #[test]
    fn hosts_map_to_regions() {
        assert_eq!(
            Region::from_host("events.1password.ca:443"),
            Some(Region::Ca)
        );
        assert_eq!(
            Region::from_host("EVENTS.ENT.1PASSWORD.COM"),
            Some(Region::Ent)
        );
        assert_eq!(
            Region::from_host("events.1password.eu.:8443"),
            Some(Region::Eu)
        );
        assert_eq!(Region::from_host("events.1password.eu."), Some(Region::Eu));
        assert_eq!(Region::from_host("events.1password.eu.."), None);
        assert_eq!(Region::from_host("127.0.0.1:8080"), None);
    }
}
