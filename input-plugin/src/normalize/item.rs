//! One parsed item as normalizers see it: typed lookups that mark what they map on the tape, so
//! that whatever is left (unknown fields, wrong types, fields the API adds later) is written
//! with the leftovers and never lost. JSON `null` counts as absent everywhere.

use std::borrow::Cow;

use jiff::Timestamp;

use crate::json::{Mark, Node, Str, Tape};

/// Node index of the item's root object.
pub const ROOT: usize = 0;

/// Why an item could not become a record. The caller reports it and skips the item; the rest of
/// the page is still delivered.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error(transparent)]
    Json(#[from] crate::json::JsonError),
    #[error("item is a JSON {0}, not an object")]
    NotAnObject(&'static str),
}

pub struct Item<'t, 'a> {
    tape: &'t mut Tape<'a>,
    /// The item's own `timestamp`, when it is present and valid RFC 3339.
    pub timestamp: Option<Timestamp>,
    /// The timestamp's text is already `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with no escapes, the
    /// one shape every date parser downstream accepts, so it can be copied as it is.
    pub timestamp_is_utc_text: bool,
}

impl<'t, 'a> Item<'t, 'a> {
    pub fn new(tape: &'t mut Tape<'a>) -> Result<Self, NormalizeError> {
        let kind = match tape.node(ROOT) {
            Node::Object { .. } => None,
            Node::Null => Some("null"),
            Node::Bool(_) => Some("boolean"),
            Node::Num(_) => Some("number"),
            Node::Str(_) => Some("string"),
            Node::Array { .. } | Node::Key { .. } => Some("array"),
        };
        if let Some(kind) = kind {
            return Err(NormalizeError::NotAnObject(kind));
        }
        let mut item = Self {
            tape,
            timestamp: None,
            timestamp_is_utc_text: false,
        };
        if let Some(text) = item.get_str(ROOT, "timestamp") {
            let (timestamp, utc_text) = timestamp_and_shape(&text.decoded());
            item.timestamp = timestamp;
            item.timestamp_is_utc_text = utc_text && !text.is_escaped();
        }
        Ok(item)
    }

    pub fn tape(&self) -> &Tape<'a> {
        self.tape
    }

    pub fn uuid(&self) -> Option<Str<'a>> {
        self.get_str(ROOT, "uuid")
    }

    /// Key index and value of member `name` of the object at `obj`, unless absent or null.
    /// This and the accessors below are always inlined: every caller passes a literal name,
    /// whose hash and comparisons then fold into constants (5% fewer instructions per
    /// record, `ci/bench-instructions.sh`).
    #[inline(always)]
    fn lookup(&self, obj: usize, name: &str) -> Option<(usize, Node<'a>)> {
        let key = self.tape.find(obj, name)?;
        match self.tape.node(key + 1) {
            Node::Null => None,
            value => Some((key, value)),
        }
    }

    #[inline(always)]
    pub fn get_str(&self, obj: usize, name: &str) -> Option<Str<'a>> {
        as_str(self.lookup(obj, name)?.1)
    }

    /// Marks member `name` with `mark` when `value` accepts its value (given with its node
    /// index); a member it refuses (of another type) stays for the leftovers.
    #[inline(always)]
    fn take_as<T>(
        &mut self,
        obj: usize,
        name: &str,
        mark: Mark,
        value: impl FnOnce(usize, Node<'a>) -> Option<T>,
    ) -> Option<T> {
        let (key, node) = self.lookup(obj, name)?;
        let taken = value(key + 1, node);
        if taken.is_some() {
            self.tape.set_mark(key, mark);
        }
        taken
    }

    /// Takes a string member; a member of another type stays for the leftovers.
    #[inline(always)]
    pub fn take_str(&mut self, obj: usize, name: &str) -> Option<Str<'a>> {
        self.take_str_if(obj, name, |_| true)
    }

    /// Takes a string member that `accept` accepts; any other value stays for the leftovers.
    #[inline(always)]
    pub fn take_str_if(
        &mut self,
        obj: usize,
        name: &str,
        accept: impl FnOnce(Str<'a>) -> bool,
    ) -> Option<Str<'a>> {
        self.take_as(obj, name, Mark::Taken, |_, node| {
            as_str(node).filter(|s| accept(*s))
        })
    }

    /// Takes the string members `names` of the object at `obj` (not the root) in one pass over
    /// its members, where `take_str` for each would scan it once per name.
    #[inline(always)]
    pub fn take_strs<const N: usize>(
        &mut self,
        obj: usize,
        names: [&str; N],
    ) -> [Option<Str<'a>>; N] {
        self.take_each(obj, names, |_, node| as_str(node), |_| {})
    }

    /// Takes the members `names` of the object at `obj` (not the root) whose values `value`
    /// accepts (given the name's position in `names`), in one pass over its members. `settle`
    /// sees every value found and may drop some (values that only make sense together): those
    /// stay for the leftovers.
    #[inline(always)]
    pub fn take_each<T: Copy, const N: usize>(
        &mut self,
        obj: usize,
        names: [&str; N],
        value: impl Fn(usize, Node<'a>) -> Option<T>,
        settle: impl FnOnce(&mut [Option<T>; N]),
    ) -> [Option<T>; N] {
        let mut found = [None; N];
        let mut keys = [0; N];
        for (key, name, _) in self.tape.members(obj) {
            if let Some(i) = names.iter().position(|n| name.eq_str(n))
                && let Some(v) = value(i, self.tape.node(key + 1))
            {
                (found[i], keys[i]) = (Some(v), key);
            }
        }
        settle(&mut found);
        for (v, key) in found.iter().zip(keys) {
            if v.is_some() {
                self.tape.set_mark(key, Mark::Taken);
            }
        }
        found
    }

    /// Takes a member of any type; returns its value's node index.
    #[inline(always)]
    pub fn take(&mut self, obj: usize, name: &str) -> Option<usize> {
        self.take_as(obj, name, Mark::Taken, |at, _| Some(at))
    }

    /// Opens an object member for taking some of its members; returns its node index. The
    /// members not taken stay, under the same name, with the leftovers.
    #[inline(always)]
    pub fn open(&mut self, obj: usize, name: &str) -> Option<usize> {
        self.take_as(obj, name, Mark::Opened, |at, node| {
            matches!(node, Node::Object { .. }).then_some(at)
        })
    }
}

#[inline(always)]
fn as_str(node: Node) -> Option<Str> {
    match node {
        Node::Str(s) => Some(s),
        _ => None,
    }
}

/// RFC 3339 with any precision and offset. EventTime carries seconds as u32, so instants
/// before 1970 or after 2106 are treated as invalid rather than wrapped.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    timestamp_and_shape(s).0
}

/// [`parse_timestamp`], and whether `s` has the API's usual UTC shape (a leap second or a
/// space for `T` is valid RFC 3339, but not that shape).
fn timestamp_and_shape(s: &str) -> (Option<Timestamp>, bool) {
    let (ts, utc_text) = match utc_fast(s.as_bytes()) {
        Some(ts) => (ts, true),
        None => match nanosecond_fraction(s).parse::<Timestamp>() {
            Ok(ts) if rfc3339_offset(s.as_bytes()) => (ts, false),
            _ => return (None, false),
        },
    };
    let in_range = (0..i64::from(u32::MAX - 1)).contains(&ts.as_second());
    (in_range.then_some(ts), utc_text)
}

/// `s` with a fraction of second cut to nine digits: RFC 3339 allows any number, jiff takes
/// nine. Past nanoseconds (which EventTime cannot carry either) they are dropped, not rounded,
/// as the mock drops them.
fn nanosecond_fraction(s: &str) -> Cow<'_, str> {
    let Some(dot) = s.find('.') else {
        return Cow::Borrowed(s);
    };
    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    if digits <= 9 {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!("{}{}", &s[..dot + 10], &s[dot + 1 + digits..]))
}

/// Whether the text ends in an offset RFC 3339 allows: `Z`, or `±HH:MM` of at most 23:59. jiff
/// also takes `+0500` and `+25:00`, which the API's contract does not, and which would move
/// the event's time where the record should keep the text and time it at collection instead.
fn rfc3339_offset(b: &[u8]) -> bool {
    let two = |h: u8, l: u8| {
        (h.is_ascii_digit() && l.is_ascii_digit()).then(|| (h - b'0') * 10 + l - b'0')
    };
    match b {
        [.., b'Z' | b'z'] => true,
        [.., b'+' | b'-', h1, h2, b':', m1, m2] => {
            two(*h1, *h2).is_some_and(|h| h <= 23) && two(*m1, *m2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// The API's usual shape, `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z`, without a general parser (one
/// call per item). Anything else, or any field out of range, is left to jiff.
fn utc_fast(b: &[u8]) -> Option<Timestamp> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let nanos = match (b.get(19), b.last()) {
        (Some(b'Z'), _) if b.len() == 20 => 0,
        (Some(b'.'), Some(b'Z')) if (22..=30).contains(&b.len()) => {
            let digits = b.len() - 21;
            num(20..b.len() - 1)? * 10i64.pow(9 - digits as u32)
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None; // leap seconds and invalid dates: jiff decides
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Timestamp::new(secs, nanos as i32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_every_documented_shape_parse() {
        for s in [
            "2021-08-11T14:28:03Z",
            "2021-08-11T14:28:03.42Z",
            "2022-10-24T21:16:52.827288935Z",
            "2020-06-11T16:32:50-03:00",
            "2020-06-11T16:32:50.5+23:59",
            "2020-06-11 16:32:50z",
        ] {
            assert!(parse_timestamp(s).is_some(), "{s}");
        }
        let ns = parse_timestamp("2022-10-24T21:16:52.827288935Z").unwrap();
        assert_eq!(ns.subsec_nanosecond(), 827_288_935);
        let off = parse_timestamp("2020-06-11T16:32:50-03:00").unwrap();
        assert_eq!(off.to_string(), "2020-06-11T19:32:50Z");
        // Past nanoseconds, digits are dropped.
        for (long, cut) in [
            (
                "2022-10-24T21:16:52.8272889359999Z",
                "2022-10-24T21:16:52.827288935Z",
            ),
            (
                "2020-06-11T16:32:50.1234567891-03:00",
                "2020-06-11T19:32:50.123456789Z",
            ),
            ("2020-06-11 16:32:50.0000000001z", "2020-06-11T16:32:50Z"),
        ] {
            assert_eq!(
                parse_timestamp(long).map(|t| t.to_string()).as_deref(),
                Some(cut)
            );
        }
        for bad in [
            "",
            "yesterday",
            "1969-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
            // Offsets jiff takes but RFC 3339 does not.
            "2026-11-19T00:00:00+24:00",
            "2026-11-19T00:00:00+25:00",
            "2026-11-19T00:00:00+0500",
            "2026-11-19T00:00:00+05",
            "2026-11-19T00:00:00+05:00:00",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_jiff() {
        for s in [
            "2021-08-11T14:28:03Z",
            "2000-02-28T23:59:59.5Z",
            "2000-02-29T12:00:00Z",
            "2024-02-29T00:00:00Z",
            "2023-01-31T23:59:59Z",
            "2023-04-30T08:00:00.5Z",
            "2000-03-01T00:00:00.000000001Z",
            "1970-01-01T00:00:00Z",
            "2024-12-28T12:00:00.123456789Z",
            "2100-01-15T01:02:03.12Z",
        ] {
            assert_eq!(utc_fast(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for other in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2021-08-11T14:28:03+00:00",
            "2021-08-11t14:28:03Z",
            "2021-08-11T14:28:03.Z",
            "2021-13-11T14:28:03Z",
            "2021-08-11T14:28:03.1234567890Z",
        ] {
            assert_eq!(utc_fast(other.as_bytes()), None, "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_jiff_on_any_date(
            y in 1970i32..2200, mo in 1u8..=12, d in 1u8..=31, h in 0u8..24, mi in 0u8..60,
            se in 0u8..60, frac in proptest::option::of("[0-9]{1,9}")
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}{frac}Z");
            proptest::prop_assert_eq!(utc_fast(s.as_bytes()), s.parse().ok(), "{}", s);
        }
    }

    #[test]
    fn members_past_the_index_are_found_linearly() {
        let text = format!(r#"{{"big":[{}],"uuid":"u"}}"#, vec!["1"; 300].join(","));
        let mut tape = Tape::parse(&text).unwrap();
        assert!(!tape.root_indexed(), "`uuid` is node 303: past a byte");
        let item = Item::new(&mut tape).unwrap();
        assert_eq!(item.uuid().map(|s| s.raw()), Some("u"));
    }

    #[test]
    fn repeated_or_escaped_root_names_are_found_linearly() {
        let uuid = |text: &str, indexed: bool| {
            let mut tape = Tape::parse(text).unwrap();
            assert_eq!(tape.root_indexed(), indexed, "{text}");
            let item = Item::new(&mut tape).unwrap();
            item.uuid().map(|s| s.decoded().into_owned())
        };
        let last = uuid(r#"{"uuid":"first","x":1,"uuid":"last"}"#, false);
        assert_eq!(last.as_deref(), Some("last"));
        assert_eq!(uuid(r#"{"\u0075uid":"u"}"#, false).as_deref(), Some("u"));
        let nested = uuid(r#"{"a":{"b":1,"b":2},"uuid":"u"}"#, true);
        assert_eq!(nested.as_deref(), Some("u"));
    }

    #[test]
    fn non_objects_are_rejected_with_their_type() {
        let mut tape = Tape::parse("[1,2]").unwrap();
        let err = Item::new(&mut tape).err().unwrap().to_string();
        assert!(err.contains("array"), "{err}");
    }

    #[test]
    fn lookups_treat_null_as_absent_and_typed_takes_leave_wrong_types() {
        let mut tape = Tape::parse(r#"{"n":null,"s":5,"o":"x","t":"y"}"#).unwrap();
        let mut item = Item::new(&mut tape).unwrap();
        assert_eq!(item.take(ROOT, "n"), None);
        assert_eq!(item.take_str(ROOT, "s"), None);
        assert_eq!(item.open(ROOT, "o"), None);
        assert_eq!(item.take_str(ROOT, "t").map(|s| s.raw()), Some("y"));
        let left: Vec<_> = item
            .tape()
            .members(ROOT)
            .filter(|(_, _, mark)| *mark == Mark::Fresh)
            .map(|(_, name, _)| name.raw())
            .collect();
        assert_eq!(
            left,
            ["n", "s", "o"],
            "wrong-typed members stay for the leftovers"
        );
    }
}
