//! msgpack, and Fluent Bit's event framing in it: `[[EventTime, metadata], body]`. Written by
//! hand into a `Vec<u8>` (which cannot fail), so the hot path has no error branches.

use jiff::Timestamp;

use super::writer::{Syntax, append};
use crate::json::Str;

/// EventTime: ext type 0, 8 bytes = u32 seconds + u32 nanoseconds, big-endian. Seconds are
/// in `0..u32::MAX - 1` (checked by the timestamp parser), which keeps Fluent Bit's group
/// markers (0xFFFFFFFF, 0xFFFFFFFE) unreachable.
pub fn event_time(out: &mut Vec<u8>, ts: Timestamp) {
    let secs = u32::try_from(ts.as_second()).unwrap_or(0);
    let nanos = u32::try_from(ts.subsec_nanosecond()).unwrap_or(0);
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

/// The metadata map of an event: the same for every event of one type from one collector, so
/// it is encoded once and copied into each event's header.
pub fn metadata(metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    container_len(&mut out, MAP, metadata.len());
    for (k, v) in metadata {
        str(&mut out, k);
        str(&mut out, v);
    }
    out
}

/// The event's header: `[[EventTime, metadata], ` (the body follows), with `metadata` from
/// [`metadata`].
pub fn event_header(out: &mut Vec<u8>, ts: Timestamp, metadata: &[u8]) {
    out.extend_from_slice(&[0x92, 0x92]);
    event_time(out, ts);
    out.extend_from_slice(metadata);
}

pub enum Msgpack {}

impl Syntax for Msgpack {
    fn open_map(out: &mut Vec<u8>) {
        out.push(MAP[0]);
    }

    #[inline(always)]
    fn map_member(out: &mut Vec<u8>, name: &str, first: bool) {
        match name.len() {
            n @ 0..=31 => append(out, [&[FIXSTR | n as u8], name.as_bytes(), &[MAP[0]]]),
            _ => {
                Self::key(out, name, first);
                Self::open_map(out);
            }
        }
    }

    fn open_wide_map(out: &mut Vec<u8>) {
        out.extend_from_slice(&[MAP[1], 0, 0]);
    }

    /// The placeholder is a one-byte fixmap, or a map16 for a wide map, filled in where it is
    /// when the count fits it. Otherwise (large leftovers, a wide map that stayed small) the
    /// members move to make room for the right header, which keeps the encoding canonical.
    fn close_map(out: &mut Vec<u8>, header_at: usize, count: usize) {
        let wide = out[header_at] == MAP[1];
        match (wide, count) {
            (false, 0..=15) => out[header_at] = MAP[0] | count as u8,
            (true, 16..=0xffff) => {
                out[header_at + 1..header_at + 3].copy_from_slice(&(count as u16).to_be_bytes())
            }
            _ => {
                let (header, len) = match count {
                    0..=15 => ([MAP[0] | count as u8, 0, 0, 0, 0], 1),
                    _ => long_len(MAP, count),
                };
                let placeholder = if wide { 3 } else { 1 };
                out.splice(
                    header_at..header_at + placeholder,
                    header[..len].iter().copied(),
                );
            }
        }
    }

    fn map_header(out: &mut Vec<u8>, len: usize) {
        container_len(out, MAP, len);
    }

    fn map_end(_: &mut Vec<u8>) {}

    fn array_header(out: &mut Vec<u8>, len: usize) {
        container_len(out, ARRAY, len);
    }

    fn array_end(_: &mut Vec<u8>) {}

    fn separator(_: &mut Vec<u8>) {}

    /// Our names are short (a fixstr).
    #[inline(always)]
    fn key(out: &mut Vec<u8>, name: &str, _: bool) {
        match name.len() {
            n @ 0..=31 => append(out, [&[FIXSTR | n as u8], name.as_bytes()]),
            _ => str(out, name),
        }
    }

    #[inline(always)]
    fn input_key(out: &mut Vec<u8>, name: Str, _: bool) {
        Self::input_str(out, name);
    }

    #[inline(always)]
    fn str(out: &mut Vec<u8>, s: &str) {
        str(out, s);
    }

    fn str_parts(out: &mut Vec<u8>, parts: &[&str]) {
        str_len(out, parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(p.as_bytes());
        }
    }

    #[inline(always)]
    fn input_str(out: &mut Vec<u8>, s: Str) {
        if s.is_escaped() {
            escaped_str(out, s);
        } else {
            str(out, s.raw());
        }
    }

    fn text(out: &mut Vec<u8>, text: &[u8]) {
        str_len(out, text.len());
        out.extend_from_slice(text);
    }

    /// Our short name and a short plain value's header in one append, then the value.
    #[inline(always)]
    fn str_member(out: &mut Vec<u8>, name: &str, first: bool, s: Str) {
        match (name.len(), s.raw().len()) {
            (k @ 0..=31, v @ 0..=31) if !s.is_escaped() => {
                append(
                    out,
                    [&[FIXSTR | k as u8], name.as_bytes(), &[FIXSTR | v as u8]],
                );
                out.extend_from_slice(s.raw().as_bytes());
            }
            _ => {
                Self::key(out, name, first);
                Self::input_str(out, s);
            }
        }
    }

    fn int(out: &mut Vec<u8>, v: i64) {
        if v >= 0 {
            uint(out, v.unsigned_abs());
        } else {
            int(out, v);
        }
    }

    /// Integers that fit stay integers; others become f64, as serde_json reads them (so both
    /// targets carry the same value, `-0` included).
    fn num(out: &mut Vec<u8>, text: &str) {
        if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            if let Ok(u) = text.parse::<u64>() {
                return uint(out, u);
            }
            if let Ok(i) = text.parse::<i64>()
                && i != 0
            {
                return int(out, i);
            }
        }
        let f = short_decimal(text).unwrap_or_else(|| text.parse::<f64>().unwrap_or(0.0));
        out.push(0xcb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    }

    fn bool(out: &mut Vec<u8>, v: bool) {
        out.push(if v { 0xc3 } else { 0xc2 });
    }

    fn null(out: &mut Vec<u8>) {
        out.push(0xc0);
    }
}

/// A number with a fraction and at most 15 digits (the API's coordinates), converted without
/// the general parser: its digits and the power of ten are both exact in f64, so one division
/// rounds exactly as `str::parse` does (Clinger's fast path). `None` for anything else.
fn short_decimal(text: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.len() > 16 {
        return None;
    }
    let (mut mantissa, mut scale) = (0u64, None);
    for (i, b) in digits.bytes().enumerate() {
        match b {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(b - b'0'),
            b'.' if scale.is_none() => scale = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    let value = mantissa as f64 / POW10[scale?];
    Some(if negative { -value } else { value })
}

/// The marker bytes of a container's length header: fix (the length in its low four bits),
/// 16-bit and 32-bit.
const MAP: [u8; 3] = [0x80, 0xde, 0xdf];
const ARRAY: [u8; 3] = [0x90, 0xdc, 0xdd];
/// The marker of a string of up to 31 bytes, its length in the low five bits.
const FIXSTR: u8 = 0xa0;

#[inline]
fn container_len(out: &mut Vec<u8>, markers: [u8; 3], n: usize) {
    if n <= 15 {
        out.push(markers[0] | n as u8);
    } else {
        let (header, len) = long_len(markers, n);
        out.extend_from_slice(&header[..len]);
    }
}

/// The header of a container of more than 15 elements, and its length in bytes.
fn long_len(markers: [u8; 3], n: usize) -> ([u8; 5], usize) {
    let mut header = [0u8; 5];
    match u16::try_from(n) {
        Ok(short) => {
            header[0] = markers[1];
            header[1..3].copy_from_slice(&short.to_be_bytes());
            (header, 3)
        }
        Err(_) => {
            header[0] = markers[2];
            header[1..].copy_from_slice(&(n as u32).to_be_bytes());
            (header, 5)
        }
    }
}

#[cold]
fn escaped_str(out: &mut Vec<u8>, s: Str) {
    str_len(out, s.decoded_len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[inline(always)]
fn str(out: &mut Vec<u8>, s: &str) {
    str_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

#[inline(always)]
fn str_len(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=31 => out.push(FIXSTR | n as u8),
        32..=0xff => out.extend_from_slice(&[0xd9, n as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

#[inline]
fn uint(out: &mut Vec<u8>, u: u64) {
    match u {
        0..=0x7f => out.push(u as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, u as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    }
}

#[inline]
fn int(out: &mut Vec<u8>, i: i64) {
    match i {
        -32..=-1 => out.push(i as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, i as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn short_decimals_convert_exactly_as_the_general_parser(
            int in 0u64..10_000_000, frac in "[0-9]{1,8}", negative: bool
        ) {
            let text = format!("{}{int}.{frac}", if negative { "-" } else { "" });
            let expected = text.parse::<f64>().unwrap();
            proptest::prop_assert_eq!(short_decimal(&text).map(f64::to_bits), Some(expected.to_bits()));
        }
    }

    #[test]
    fn every_map_gets_its_canonical_header_in_place() {
        let fixmap = |n: u8| vec![MAP[0] | n];
        let map16 = |n: u16| [&[MAP[1]][..], &n.to_be_bytes()].concat();
        let map32 = |n: u32| [&[MAP[2]][..], &n.to_be_bytes()].concat();
        for (wide, count, header) in [
            (false, 3, fixmap(3)),
            (false, 16, map16(16)),
            (false, 70_000, map32(70_000)),
            (true, 0, fixmap(0)),
            (true, 15, fixmap(15)),
            (true, 16, map16(16)),
            (true, 70_000, map32(70_000)),
        ] {
            let mut out = vec![0xc3];
            if wide {
                Msgpack::open_wide_map(&mut out);
            } else {
                Msgpack::open_map(&mut out);
            }
            out.push(0xc0);
            Msgpack::close_map(&mut out, 1, count);
            assert_eq!(
                out,
                [&[0xc3], &header[..], &[0xc0]].concat(),
                "{wide} {count}"
            );
        }
    }

    #[test]
    fn other_numbers_are_left_to_the_general_parser() {
        for text in [
            "1e5",
            "1.5e3",
            "12345678901234567.5",
            "1.23456789012345678",
            "7",
        ] {
            assert_eq!(short_decimal(text), None, "{text}");
        }
        assert_eq!(
            short_decimal("-0.0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
    }
}
