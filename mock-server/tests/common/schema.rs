//! A validator for the JSON Schema subset `fixtures/schema/` uses: `$ref` (local `$defs`),
//! `type`, `properties`, `required`, `additionalProperties: false`, `enum`, `items`,
//! `minLength`/`maxLength`, `minimum`/`maximum` and `format: date-time`. Written here, apart
//! from the mock, so the mock cannot agree with itself by construction.

use serde_json::Value;

pub struct Schema(Value);

/// One way a document breaks the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// A value outside a documented enum (allowed only for the mock's deliberate unknowns).
    Enum {
        path: String,
        value: Value,
    },
    Other {
        path: String,
        message: String,
    },
}

impl Schema {
    pub fn load() -> Schema {
        let path = super::fixtures_dir().join("schema/events-api.schema.json");
        Schema(
            serde_json::from_slice(&std::fs::read(path).expect("schema file"))
                .expect("schema JSON"),
        )
    }

    /// All violations of `$defs/<def>` by `doc`.
    pub fn check(&self, def: &str, doc: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let schema = self.def(def);
        self.walk(schema, doc, "$", &mut out);
        out
    }

    /// Panics on any violation, enum ones included.
    pub fn assert_valid(&self, def: &str, doc: &Value) {
        let v = self.check(def, doc);
        assert!(v.is_empty(), "{def}: {v:?}\n{doc}");
    }

    fn def(&self, name: &str) -> &Value {
        let d = &self.0["$defs"][name];
        assert!(d.is_object(), "no $defs/{name}");
        d
    }

    fn walk(&self, s: &Value, v: &Value, path: &str, out: &mut Vec<Violation>) {
        let other = |out: &mut Vec<Violation>, message: String| {
            out.push(Violation::Other {
                path: path.into(),
                message,
            })
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/$defs/").expect("local $ref");
            return self.walk(self.def(name), v, path, out);
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => panic!("bad type keyword"),
            };
            let ok = types.iter().any(|t| match *t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "boolean" => v.is_boolean(),
                "null" => v.is_null(),
                "number" => v.is_number(),
                "integer" => v.is_i64() || v.is_u64(),
                other => panic!("unsupported type {other}"),
            });
            if !ok {
                return other(out, format!("expected {types:?}, got {v}"));
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            out.push(Violation::Enum {
                path: path.into(),
                value: v.clone(),
            });
        }
        if let Value::String(text) = v {
            let len = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                other(out, format!("{text:?} shorter than minLength"));
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                other(out, format!("{text:?} longer than maxLength"));
            }
            if s.get("format").and_then(Value::as_str) == Some("date-time") && !is_rfc3339(text) {
                other(out, format!("{text:?} is not an RFC 3339 date-time"));
            }
        }
        if let Some(n) = v.as_f64() {
            if s.get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m)
            {
                other(out, format!("{n} below minimum"));
            }
            if s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
            {
                other(out, format!("{n} above maximum"));
            }
        }
        if let Value::Object(map) = v {
            let props = s.get("properties").and_then(Value::as_object);
            for req in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let req = req.as_str().expect("required names");
                if !map.contains_key(req) {
                    other(out, format!("missing required {req:?}"));
                }
            }
            for (k, child) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(cs) => self.walk(cs, child, &format!("{path}.{k}"), out),
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        other(out, format!("unexpected property {k:?}"))
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(is)) = (v, s.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.walk(is, item, &format!("{path}[{i}]"), out);
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with plausible field ranges.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if b.len() - i == 6 => {
            digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}
