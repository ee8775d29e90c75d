//! A borrowed JSON tree: strings point into the page buffer unless they had escapes, and object
//! members keep their order. Normalizers move fields out of an item's tree into the record's
//! tree, so a field is copied at most once and unknown fields are never lost.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Map<'a>),
}

/// Object members in document order. Items have a few dozen keys at most, so a linear scan
/// beats hashing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map<'a>(pub Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> Map<'a> {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes and returns the member, treating JSON `null` as absent.
    pub fn take(&mut self, key: &str) -> Option<Value<'a>> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        match self.0.remove(at).1 {
            Value::Null => None,
            v => Some(v),
        }
    }

    /// Removes an object member; a member of another type stays for the leftovers.
    pub fn take_object(&mut self, key: &str) -> Option<Map<'a>> {
        match self.get(key) {
            Some(Value::Object(_)) => match self.take(key) {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            },
            _ => None,
        }
    }

    /// Removes a string member; a member of another type stays for the leftovers.
    pub fn take_str(&mut self, key: &str) -> Option<Cow<'a, str>> {
        match self.get(key) {
            Some(Value::Str(_)) => match self.take(key) {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Adds a member unless the value is absent.
    pub fn put(&mut self, key: &'static str, value: impl Into<Option<Value<'a>>>) {
        if let Some(v) = value.into() {
            self.0.push((Cow::Borrowed(key), v));
        }
    }

    /// Adds a nested object unless it is empty.
    pub fn put_map(&mut self, key: &'static str, map: Map<'a>) {
        if !map.is_empty() {
            self.0.push((Cow::Borrowed(key), Value::Object(map)));
        }
    }

    /// Moves every remaining member into `dest`, keeping the names.
    pub fn drain_into(self, dest: &mut Map<'a>) {
        dest.0
            .extend(self.0.into_iter().filter(|(_, v)| *v != Value::Null));
    }
}

impl<'a> From<Cow<'a, str>> for Value<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Value::Str(s)
    }
}

impl From<&'static str> for Value<'_> {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl<'a> From<Map<'a>> for Value<'a> {
    fn from(m: Map<'a>) -> Self {
        Value::Object(m)
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::with_capacity(16);
        while let Some(key) = access.next_key::<Key<'de>>()? {
            let value = access.next_value()?;
            // Duplicate keys: the last one wins, as in serde_json's own Value.
            if let Some(slot) = map.0.iter_mut().find(|(k, _)| *k == key.0) {
                slot.1 = value;
            } else {
                map.0.push((key.0, value));
            }
        }
        Ok(Value::Object(map))
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => map.serialize(s),
        }
    }
}

impl Serialize for Map<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            out.serialize_entry(k.as_ref(), v)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_keeps_order() {
        let text = r#"{"b":"x","a":[1,-2,3.5,true,null],"c":"e\u00e9"}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let Value::Object(map) = &v else { panic!() };
        assert!(matches!(map.get("b"), Some(Value::Str(Cow::Borrowed("x")))));
        assert!(matches!(map.get("c"), Some(Value::Str(Cow::Owned(s))) if s == "eé"));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"b":"x","a":[1,-2,3.5,true,null],"c":"eé"}"#
        );
    }

    #[test]
    fn take_treats_null_as_absent_and_typed_takes_leave_wrong_types() {
        let mut map = match serde_json::from_str::<Value>(r#"{"n":null,"s":5,"o":"x"}"#).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(map.take("n"), None);
        assert_eq!(map.take_str("s"), None);
        assert_eq!(map.take_object("o"), None);
        assert_eq!(map.0.len(), 2, "wrong-typed members stay for the leftovers");
    }
}
