//! Fluent Bit's event framing in msgpack: `[[EventTime, metadata], body]`. Written by hand into
//! a `Vec<u8>` (which cannot fail), so the hot path has no error branches.

use jiff::Timestamp;

use crate::normalize::value::{Map, Value};

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

pub fn write_event(out: &mut Vec<u8>, ts: Timestamp, metadata: &[(&str, &str)], body: &Map) {
    out.extend_from_slice(&[0x92, 0x92]);
    event_time(out, ts);
    map_len(out, metadata.len());
    for (k, v) in metadata {
        str(out, k);
        str(out, v);
    }
    map(out, body);
}

fn map(out: &mut Vec<u8>, m: &Map) {
    map_len(out, m.0.len());
    for (k, v) in &m.0 {
        str(out, k);
        value(out, v);
    }
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) if *i >= 0 => uint(out, i.unsigned_abs()),
        Value::Int(i) => int(out, *i),
        Value::UInt(u) => uint(out, *u),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Str(s) => str(out, s),
        Value::Array(items) => {
            match items.len() {
                n @ 0..=15 => out.push(0x90 | n as u8),
                n @ 16..=0xffff => {
                    out.push(0xdc);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    out.push(0xdd);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                }
            }
            items.iter().for_each(|i| value(out, i));
        }
        Value::Object(m) => map(out, m),
    }
}

fn map_len(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=15 => out.push(0x80 | n as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    match n {
        0..=31 => out.push(0xa0 | n as u8),
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
    out.extend_from_slice(s.as_bytes());
}

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
