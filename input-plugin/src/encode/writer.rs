//! Writes a record straight into the sink's bytes, in msgpack or JSON, with no tree in between.
//! Normalizers open maps whose size they don't know yet (a map ends up holding only the
//! fields an item has); the writer counts members, fixes the header at the end, and drops a
//! map that stayed empty together with its key.

use std::marker::PhantomData;

use super::ndjson::Json;
use crate::json::{Mark, Node, Str, Tape};

/// The most maps and arrays a record nests, its root map included. An item's container that
/// would nest deeper is written as its JSON text, a string: Fluent Bit's msgpack decoder takes
/// 32 or 64 levels, by build, and a record it cannot decode silently takes other events down
/// with it; Elasticsearch refuses objects deeper than 20 by default. API items nest a few
/// levels.
const MAX_RECORD_DEPTH: usize = 16;

/// The byte syntax of one target.
pub trait Syntax {
    /// Starts a map with a one-byte header, whose member count is patched in by
    /// [`Syntax::close_map`].
    fn open_map(out: &mut Vec<u8>);
    /// Starts a map that will hold more than 15 members (an OCSF record's root): msgpack
    /// leaves room for a 16-bit count, so closing it moves nothing.
    fn open_wide_map(out: &mut Vec<u8>);
    /// A member `name` opening a map (as `key` then `open_map`, in fewer appends).
    fn map_member(out: &mut Vec<u8>, name: &str, first: bool);
    fn close_map(out: &mut Vec<u8>, header_at: usize, count: usize);
    fn map_header(out: &mut Vec<u8>, len: usize);
    fn map_end(out: &mut Vec<u8>);
    fn array_header(out: &mut Vec<u8>, len: usize);
    fn array_end(out: &mut Vec<u8>);
    /// Between two members or elements.
    fn separator(out: &mut Vec<u8>);
    /// A member name that is ours (plain ASCII), after the separator unless it is the map's
    /// `first` member.
    fn key(out: &mut Vec<u8>, name: &str, first: bool);
    fn input_key(out: &mut Vec<u8>, name: Str, first: bool);
    /// A string that is ours: no quote, backslash or control character (checked in debug
    /// builds), so JSON needs no escaping. Item text goes through [`Syntax::input_str`].
    fn str(out: &mut Vec<u8>, s: &str);
    /// One string made of several pieces of our own text (as for [`Syntax::str`]).
    fn str_parts(out: &mut Vec<u8>, parts: &[&str]);
    fn input_str(out: &mut Vec<u8>, s: Str);
    /// A string of any UTF-8 text (escaped as the syntax needs): a subtree's JSON text.
    fn text(out: &mut Vec<u8>, text: &[u8]);
    /// `name: s` (as `key` then `input_str`, in fewer appends).
    fn str_member(out: &mut Vec<u8>, name: &str, first: bool, s: Str);
    fn int(out: &mut Vec<u8>, v: i64);
    /// A number as the API wrote it (checked by the parser).
    fn num(out: &mut Vec<u8>, text: &str);
    fn bool(out: &mut Vec<u8>, v: bool);
    fn null(out: &mut Vec<u8>);
}

#[derive(Clone, Copy, Default)]
struct Frame {
    /// Where this map's key (and its separator) starts, to drop both when the map is empty.
    key_at: usize,
    header_at: usize,
    count: usize,
}

/// Deepest nesting of maps and arrays a normalizer writes (input subtrees are copied
/// separately and may be deeper).
const MAX_FRAMES: usize = 8;

pub struct Writer<'o, S> {
    out: &'o mut Vec<u8>,
    frames: [Frame; MAX_FRAMES],
    depth: usize,
    key_at: usize,
    syntax: PhantomData<S>,
}

impl<'o, S: Syntax> Writer<'o, S> {
    /// Opens the record's root map at the end of `out`; a `wide` one will hold more than 15
    /// members.
    pub fn new(out: &'o mut Vec<u8>, wide: bool) -> Self {
        let header_at = out.len();
        if wide {
            S::open_wide_map(out);
        } else {
            S::open_map(out);
        }
        Self {
            key_at: header_at,
            out,
            frames: [Frame {
                key_at: header_at,
                header_at,
                count: 0,
            }; MAX_FRAMES],
            depth: 0,
            syntax: PhantomData,
        }
    }

    /// Closes the root map.
    pub fn finish(self) {
        let frame = self.frames[0];
        S::close_map(self.out, frame.header_at, frame.count);
    }

    /// Counts a member of the innermost map; whether it is the first.
    #[inline(always)]
    fn entry(&mut self) -> bool {
        let top = &mut self.frames[self.depth];
        self.key_at = self.out.len();
        top.count += 1;
        top.count == 1
    }

    #[inline(always)]
    pub fn key(&mut self, name: &str) {
        let first = self.entry();
        S::key(self.out, name, first);
    }

    #[inline(always)]
    pub fn input_key(&mut self, name: Str) {
        let first = self.entry();
        S::input_key(self.out, name, first);
    }

    /// Starts counting the members of the map whose one-byte header was just written.
    #[inline(always)]
    fn opened(&mut self) {
        self.depth += 1;
        self.frames[self.depth] = Frame {
            key_at: self.key_at,
            header_at: self.out.len() - 1,
            count: 0,
        };
    }

    /// Copies `members`, which must be the first of the innermost map.
    pub fn prewritten(&mut self, members: &Prewritten) {
        let top = &mut self.frames[self.depth];
        debug_assert_eq!(top.count, 0, "prewritten members come first");
        top.count += members.count;
        self.out.extend_from_slice(&members.bytes);
    }

    /// Opens a map as the value of the key just written.
    pub fn open_map(&mut self) {
        S::open_map(self.out);
        self.opened();
    }

    /// Closes the innermost map; an empty one disappears with its key.
    pub fn close_map(&mut self) {
        let frame = self.frames[self.depth];
        self.depth -= 1;
        if frame.count == 0 {
            self.out.truncate(frame.key_at);
            self.frames[self.depth].count -= 1;
        } else {
            S::close_map(self.out, frame.header_at, frame.count);
        }
    }

    /// Opens a map member `name` (dropped again if nothing is written into it).
    #[inline(always)]
    pub fn map(&mut self, name: &str) {
        let first = self.entry();
        S::map_member(self.out, name, first);
        self.opened();
    }

    #[inline(always)]
    pub fn str(&mut self, s: &str) {
        S::str(self.out, s);
    }

    pub fn str_parts(&mut self, parts: &[&str]) {
        S::str_parts(self.out, parts);
    }

    #[inline(always)]
    pub fn input_str(&mut self, s: Str) {
        S::input_str(self.out, s);
    }

    #[inline(always)]
    pub fn int(&mut self, v: i64) {
        S::int(self.out, v);
    }

    pub fn bool(&mut self, v: bool) {
        S::bool(self.out, v);
    }

    pub fn num(&mut self, text: &str) {
        S::num(self.out, text);
    }

    /// `name: s` when there is a value.
    #[inline(always)]
    pub fn field(&mut self, name: &str, s: Option<Str>) {
        if let Some(s) = s {
            let first = self.entry();
            S::str_member(self.out, name, first, s);
        }
    }

    #[inline(always)]
    pub fn static_field(&mut self, name: &str, s: &str) {
        self.key(name);
        self.str(s);
    }

    #[inline(always)]
    pub fn int_field(&mut self, name: &str, v: i64) {
        self.key(name);
        self.int(v);
    }

    /// An array of our own strings.
    #[inline(always)]
    pub fn strs(&mut self, name: &str, items: &[&str]) {
        self.array(name, items, |out, s| S::str(out, s));
    }

    /// An array of strings from the item, omitted when empty.
    pub fn input_strs(&mut self, name: &str, items: &[Str]) {
        if !items.is_empty() {
            self.array(name, items, S::input_str);
        }
    }

    #[inline(always)]
    fn array<T: Copy>(&mut self, name: &str, items: &[T], write: impl Fn(&mut Vec<u8>, T)) {
        self.key(name);
        S::array_header(self.out, items.len());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                S::separator(self.out);
            }
            write(self.out, *item);
        }
        S::array_end(self.out);
    }

    /// A one-element array holding a map; the caller writes the map's members and closes it.
    pub fn open_single_map_array(&mut self, name: &str) {
        self.key(name);
        S::array_header(self.out, 1);
        self.open_map();
    }

    pub fn close_single_map_array(&mut self) {
        let frame = self.frames[self.depth];
        self.depth -= 1;
        S::close_map(self.out, frame.header_at, frame.count);
        S::array_end(self.out);
    }

    /// Copies the value at `at` as it is (nulls and all), up to `MAX_RECORD_DEPTH` levels deep.
    pub fn copy(&mut self, tape: &Tape, at: usize) {
        // The innermost open map is at level `depth + 1`; the value would be one below it.
        copy::<S>(self.out, tape, at, MAX_RECORD_DEPTH - (self.depth + 1));
    }

    /// The members of the object at `obj` that no normalizer took: fresh ones as they are,
    /// opened ones as maps of their own leftovers. Nulls at these levels are dropped (the API
    /// uses null for "absent").
    pub fn leftovers(&mut self, tape: &Tape, obj: usize) {
        for (key, name, mark) in tape.members(obj) {
            match mark {
                Mark::Taken | Mark::Shadowed => {}
                Mark::Opened => {
                    self.input_key(name);
                    self.open_map();
                    self.leftovers(tape, key + 1);
                    self.close_map();
                }
                Mark::Fresh => match tape.node(key + 1) {
                    Node::Null => {}
                    // Most are strings: written here, without a call to `copy`.
                    Node::Str(s) => {
                        self.input_key(name);
                        self.input_str(s);
                    }
                    _ => {
                        self.input_key(name);
                        self.copy(tape, key + 1);
                    }
                },
            }
        }
    }
}

/// Members written once for one target, to be copied as they are into many records (a
/// schema's constant runs): one copy instead of a write per member.
pub struct Prewritten {
    bytes: Box<[u8]>,
    count: usize,
}

impl Prewritten {
    pub fn new<S: Syntax>(write: impl FnOnce(&mut Writer<S>)) -> Self {
        let mut out = Vec::new();
        let mut w = Writer::<S>::new(&mut out, false);
        let header = w.out.len();
        write(&mut w);
        debug_assert_eq!(w.depth, 0, "prewritten members leave no map open");
        let count = w.frames[0].count;
        Self {
            bytes: out[header..].into(),
            count,
        }
    }
}

/// Returns the index after the copied value. `room` is how many levels of maps and arrays
/// may still open; a container with none left is written as its JSON text.
fn copy<S: Syntax>(out: &mut Vec<u8>, tape: &Tape, at: usize, room: usize) -> usize {
    match tape.node(at) {
        Node::Null => S::null(out),
        Node::Bool(b) => S::bool(out, b),
        Node::Num(text) => S::num(out, text),
        Node::Str(s) => S::input_str(out, s),
        Node::Array { .. } | Node::Object { .. } if room == 0 => {
            let mut text = Vec::new();
            let end = copy::<Json>(&mut text, tape, at, usize::MAX);
            S::text(out, &text);
            return end;
        }
        Node::Array { len, end } => {
            S::array_header(out, len as usize);
            let mut i = at + 1;
            while i < end as usize {
                if i > at + 1 {
                    S::separator(out);
                }
                i = copy::<S>(out, tape, i, room - 1);
            }
            S::array_end(out);
            return end as usize;
        }
        Node::Object { len, end } => {
            S::map_header(out, len as usize);
            for (n, (key, name, _)) in tape.members(at).enumerate() {
                S::input_key(out, name, n == 0);
                copy::<S>(out, tape, key + 1, room - 1);
            }
            S::map_end(out);
            return end as usize;
        }
        Node::Key { .. } => {}
    }
    at + 1
}

/// Appends `parts`, whose lengths must be constants once inlined (our names, markers), with
/// one update of the vector's length: each append stores the length and the next loads it
/// back, and these round trips, several per field, bounded a record's time more than its
/// instruction count did. Parts of a variable length would cost a copy more, not less.
#[inline(always)]
pub(super) fn append<const N: usize>(out: &mut Vec<u8>, parts: [&[u8]; N]) {
    const ROOM: usize = 64;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > ROOM {
        for part in parts {
            out.extend_from_slice(part);
        }
        return;
    }
    let mut buf = [0u8; ROOM];
    let mut at = 0;
    for part in parts {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    out.extend_from_slice(&buf[..total]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{msgpack::Msgpack, ndjson::Json};

    /// The fused member writes, on their fast paths and their fallbacks (long names and values,
    /// escapes), write exactly what their parts write.
    fn fused_members_match_their_parts<S: Syntax>() {
        let mut values: Vec<_> = [0, 31, 32, 300]
            .map(|n| format!("\"{}\"", "v".repeat(n)))
            .into();
        values.push(r#""a\nb""#.to_owned());
        let tapes: Vec<_> = values.iter().map(|v| Tape::parse(v).unwrap()).collect();
        for name in [1, 31, 32, 70].map(|n| "n".repeat(n)) {
            for first in [true, false] {
                let (mut fused, mut parts) = (Vec::new(), Vec::new());
                S::map_member(&mut fused, &name, first);
                S::key(&mut parts, &name, first);
                S::open_map(&mut parts);
                assert_eq!(fused, parts, "{name} {first}");

                for (value, tape) in values.iter().zip(&tapes) {
                    let Node::Str(s) = tape.node(0) else {
                        panic!("{value} is a string")
                    };
                    let (mut fused, mut parts) = (Vec::new(), Vec::new());
                    S::str_member(&mut fused, &name, first, s);
                    S::key(&mut parts, &name, first);
                    S::input_str(&mut parts, s);
                    assert_eq!(fused, parts, "{name} {value} {first}");
                }
            }
        }
    }

    /// A record with prewritten members first (and in a nested map) is byte for byte the
    /// record that writes them.
    fn prewritten_members_match_writing_them<S: Syntax>() {
        let members = |w: &mut Writer<S>| {
            w.int_field("n", 300);
            w.map("m");
            w.static_field("k", "v");
            w.close_map();
        };
        let record = |pre: Option<&Prewritten>| {
            let mut out = Vec::new();
            let mut w = Writer::<S>::new(&mut out, false);
            match pre {
                Some(p) => w.prewritten(p),
                None => members(&mut w),
            }
            w.static_field("after", "x");
            w.map("nested");
            match pre {
                Some(p) => w.prewritten(p),
                None => members(&mut w),
            }
            w.close_map();
            w.finish();
            out
        };
        let pre = Prewritten::new::<S>(members);
        assert_eq!(pre.count, 2);
        assert_eq!(record(Some(&pre)), record(None));
    }

    #[test]
    fn prewritten_members_write_what_their_writes_do() {
        prewritten_members_match_writing_them::<Msgpack>();
        prewritten_members_match_writing_them::<Json>();
    }

    #[test]
    fn fused_member_writes_match_key_then_value() {
        fused_members_match_their_parts::<Msgpack>();
        fused_members_match_their_parts::<Json>();
    }
}
