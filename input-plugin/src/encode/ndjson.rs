//! JSON syntax for NDJSON lines. Strings and numbers from the item are copied as the API wrote
//! them (the parser checked them, and raw control characters, the only thing that could break
//! a line, are not valid JSON); our own strings need no escaping.

use super::writer::{Syntax, append};
use crate::json::Str;

pub enum Json {}

impl Syntax for Json {
    fn open_map(out: &mut Vec<u8>) {
        out.push(b'{');
    }

    fn open_wide_map(out: &mut Vec<u8>) {
        out.push(b'{');
    }

    #[inline(always)]
    fn map_member(out: &mut Vec<u8>, name: &str, first: bool) {
        member_name(out, name, first, b"\":{");
    }

    fn close_map(out: &mut Vec<u8>, _: usize, _: usize) {
        out.push(b'}');
    }

    fn map_header(out: &mut Vec<u8>, _: usize) {
        out.push(b'{');
    }

    fn map_end(out: &mut Vec<u8>) {
        out.push(b'}');
    }

    fn array_header(out: &mut Vec<u8>, _: usize) {
        out.push(b'[');
    }

    fn array_end(out: &mut Vec<u8>) {
        out.push(b']');
    }

    fn separator(out: &mut Vec<u8>) {
        out.push(b',');
    }

    /// Our member names are plain ASCII identifiers: nothing to escape.
    #[inline(always)]
    fn key(out: &mut Vec<u8>, name: &str, first: bool) {
        member_name(out, name, first, b"\":");
    }

    #[inline(always)]
    fn input_key(out: &mut Vec<u8>, name: Str, first: bool) {
        if !first {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.raw().as_bytes());
        out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    fn str(out: &mut Vec<u8>, s: &str) {
        Self::str_parts(out, &[s]);
    }

    #[inline(always)]
    fn str_parts(out: &mut Vec<u8>, parts: &[&str]) {
        out.push(b'"');
        for s in parts {
            debug_assert!(plain(s), "{s:?} needs escaping");
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'"');
    }

    #[inline(always)]
    fn input_str(out: &mut Vec<u8>, s: Str) {
        out.push(b'"');
        out.extend_from_slice(s.raw().as_bytes());
        out.push(b'"');
    }

    fn text(out: &mut Vec<u8>, text: &[u8]) {
        out.push(b'"');
        for &b in text {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                ..0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]);
                    out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
                }
                _ => out.push(b),
            }
        }
        out.push(b'"');
    }

    #[inline(always)]
    fn str_member(out: &mut Vec<u8>, name: &str, first: bool, s: Str) {
        member_name(out, name, first, b"\":\"");
        out.extend_from_slice(s.raw().as_bytes());
        out.push(b'"');
    }

    fn int(out: &mut Vec<u8>, v: i64) {
        out.extend_from_slice(itoa(v).as_bytes());
    }

    fn num(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(text.as_bytes());
    }

    fn bool(out: &mut Vec<u8>, v: bool) {
        out.extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn null(out: &mut Vec<u8>) {
        out.extend_from_slice(b"null");
    }
}

/// Our member name quoted, after a comma unless it is the map's first member, then `tail`
/// (`:`, `:{` or `:"`): one append, from one of two calls so that each call's parts have
/// constant lengths.
#[inline(always)]
fn member_name(out: &mut Vec<u8>, name: &str, first: bool, tail: &[u8]) {
    debug_assert!(plain(name), "{name:?} needs escaping");
    if first {
        append(out, [b"\"", name.as_bytes(), tail]);
    } else {
        append(out, [b",\"", name.as_bytes(), tail]);
    }
}

/// Whether `s` goes into JSON as it is. Our own strings always do, so the writer only checks
/// this in debug builds: escaping them would cost a scan of every byte of every record.
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// Decimal text of `v` without allocating, two digits a step (OCSF records carry a
/// 13-digit `time` and several other integers).
fn itoa(v: i64) -> Digits {
    /// "00", "01", ..., "99".
    const PAIRS: [u8; 200] = {
        let mut pairs = [0; 200];
        let mut i = 0;
        while i < 100 {
            pairs[2 * i] = b'0' + (i / 10) as u8;
            pairs[2 * i + 1] = b'0' + (i % 10) as u8;
            i += 1;
        }
        pairs
    };
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    let mut n = v.unsigned_abs();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        d.start -= 2;
        d.buf[d.start..d.start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        d.start -= 2;
        d.buf[d.start..d.start + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        d.start -= 1;
        d.buf[d.start] = b'0' + n as u8;
    }
    if v < 0 {
        d.start -= 1;
        d.buf[d.start] = b'-';
    }
    d
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_strings_are_copied_and_integers_printed() {
        let mut out = Vec::new();
        Json::str_parts(&mut out, &["Group Management", ": ", "Add User é"]);
        assert_eq!(out, "\"Group Management: Add User é\"".as_bytes());
        for v in [0, 7, -7, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            Json::int(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "needs escaping")]
    fn a_string_of_ours_that_needs_escaping_is_caught_in_debug_builds() {
        Json::str(&mut Vec::new(), "a\"b");
    }

    proptest::proptest! {
        #[test]
        fn integers_print_as_std_does(v: i64) {
            let mut out = Vec::new();
            Json::int(&mut out, v);
            proptest::prop_assert_eq!(out, v.to_string().into_bytes());
        }
    }
}
