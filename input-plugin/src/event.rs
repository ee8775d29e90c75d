//! The vocabulary every module shares: which stream, which API version, which output format.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of the three Events API streams. The string form is the endpoint name, which is also the
/// token feature name, the `events` option value and the `event_type` metadata value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SignInAttempts,
    ItemUsages,
    AuditEvents,
}

impl EventType {
    pub const ALL: [EventType; 3] = [Self::SignInAttempts, Self::ItemUsages, Self::AuditEvents];

    /// Endpoint path segment and token feature name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SignInAttempts => "signinattempts",
            Self::ItemUsages => "itemusages",
            Self::AuditEvents => "auditevents",
        }
    }

    /// ECS `event.dataset`, as the Elastic integration names it.
    pub const fn dataset_name(self) -> &'static str {
        match self {
            Self::SignInAttempts => "1password.signin_attempts",
            Self::ItemUsages => "1password.item_usages",
            Self::AuditEvents => "1password.audit_events",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a value that names no known variant; the message lists the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of: {expected}")]
pub struct UnknownVariant {
    pub value: String,
    pub expected: &'static str,
}

impl UnknownVariant {
    /// Reads `s` as `pick` names it, in any case and with spaces around ignored, as every
    /// setting naming a variant is read; the error lists `expected`.
    pub fn parse<T>(
        s: &str,
        expected: &'static str,
        pick: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Self> {
        pick(&s.trim().to_ascii_lowercase()).ok_or_else(|| Self {
            value: s.to_owned(),
            expected,
        })
    }
}

impl FromStr for EventType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "signinattempts, itemusages, auditevents";
        UnknownVariant::parse(s, expected, |v| match v.replace(['_', '-'], "").as_str() {
            "signinattempts" => Some(Self::SignInAttempts),
            "itemusages" => Some(Self::ItemUsages),
            "auditevents" => Some(Self::AuditEvents),
            _ => None,
        })
    }
}

/// Events API version of the event endpoints. v2 is a superset (MSP fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ApiVersion {
    V1,
    #[default]
    V2,
}

impl ApiVersion {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownVariant::parse(s, "v1, v2", |v| match v {
            "v1" | "1" => Some(Self::V1),
            "v2" | "2" => Some(Self::V2),
            _ => None,
        })
    }
}

/// Shape of the records handed to the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Elastic Common Schema.
    #[default]
    Ecs,
    /// Open Cybersecurity Schema Framework 1.x.
    Ocsf,
    /// The API item as it came, wrapped with its event type.
    Raw,
}

impl Format {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ecs => "ecs",
            Self::Ocsf => "ocsf",
            Self::Raw => "raw",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnknownVariant::parse(s, "ecs, ocsf, raw", |v| match v {
            "ecs" => Some(Self::Ecs),
            "ocsf" => Some(Self::Ocsf),
            "raw" => Some(Self::Raw),
            _ => None,
        })
    }
}

/// A delivered event's uuid, as the state file's dedupe window remembers it. 1Password's are
/// 26 characters, so they are kept inline and remembering one allocates nothing; the API
/// promises no length, so a longer one is kept whole on the heap.
#[derive(Clone)]
pub struct EventUuid(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes, copied from a `str`.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Arc<str>),
}

const INLINE: usize = 30;

impl EventUuid {
    /// The text. Inline bytes were copied from a `str`, so they always are UTF-8.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }
}

impl From<&str> for EventUuid {
    fn from(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Heap(s.into())),
        }
    }
}

impl PartialEq for EventUuid {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for EventUuid {}

impl fmt::Debug for EventUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for EventUuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventUuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(Self::from(&*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_accept_common_spellings() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert_eq!(
            "sign_in_attempts".parse::<EventType>().unwrap(),
            EventType::SignInAttempts
        );
        assert_eq!(
            "Audit-Events".parse::<EventType>().unwrap(),
            EventType::AuditEvents
        );
        let err = "logins".parse::<EventType>().unwrap_err().to_string();
        assert!(
            err.contains("logins") && err.contains("itemusages"),
            "{err}"
        );
        assert_eq!("V1".parse::<ApiVersion>().unwrap(), ApiVersion::V1);
        assert!("v3".parse::<ApiVersion>().is_err());
        assert_eq!("OCSF".parse::<Format>().unwrap(), Format::Ocsf);
        assert!("cef".parse::<Format>().is_err());
    }

    #[test]
    fn uuids_compare_by_text_whether_inline_or_not() {
        let uuid = "2HPCUQHZWRFG5LJGWBMOYXN7ZY";
        assert!(matches!(EventUuid::from(uuid).0, Repr::Inline { .. }));
        let long = "Ä".repeat(20);
        assert!(matches!(EventUuid::from(&*long).0, Repr::Heap(_)));
        assert_eq!(EventUuid::from(&*long).as_str(), long);
        assert_eq!(EventUuid::from(uuid).as_str(), uuid);
        assert_ne!(EventUuid::from("A"), EventUuid::from("A\0"));
        let json =
            serde_json::to_string(&[EventUuid::from(uuid), EventUuid::from(&*long)]).unwrap();
        assert_eq!(json, format!("[\"{uuid}\",\"{long}\"]"));
        let back: Vec<EventUuid> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [EventUuid::from(uuid), EventUuid::from(&*long)]);
    }
}
