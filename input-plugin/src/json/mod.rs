//! The page parser. API pages are parsed once, item by item, into a flat tape of nodes that
//! borrow from the page text; the tape is reused for every item of a page, so the hot path
//! allocates nothing. Normalizers mark the members they map on the tape and write the rest as
//! they are (see `normalize::item`).

mod parse;
mod text;

pub use parse::{Envelope, JsonError, parse_page};
pub use text::Str;

/// One JSON token. Containers record their member count and where they end, so a reader can
/// skip a whole subtree in one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    /// A number's text, checked against the JSON grammar and within f64 range.
    Num(&'a str),
    Str(Str<'a>),
    /// `len` elements; the node after the last one is at `end`.
    Array {
        len: u32,
        end: u32,
    },
    /// `len` live members (see [`Key`](Node::Key)); the node after the last one is at `end`.
    Object {
        len: u32,
        end: u32,
    },
    /// A member name, followed by its value.
    Key {
        name: Str<'a>,
        mark: Mark,
    },
}

/// What a normalizer did with a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Not looked at: written as it is with the leftovers.
    Fresh,
    /// Mapped to a record field: not written again.
    Taken,
    /// An object some of whose members were taken: its other members are the leftovers.
    Opened,
    /// The same name appears again later in the object, and the last one wins (as with
    /// serde_json): this member does not exist.
    Shadowed,
}

/// The nodes of one parsed item (the item's root is node 0).
#[derive(Debug, Default)]
pub struct Tape<'a> {
    nodes: Vec<Node<'a>>,
    root: RootIndex,
}

impl<'a> Tape<'a> {
    /// Parses `text` as one complete JSON value.
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        let mut tape = Tape::default();
        parse::parse_value(text, &mut tape)?;
        Ok(tape)
    }

    pub fn node(&self, at: usize) -> Node<'a> {
        self.nodes[at]
    }

    /// The index just past the value at `at`.
    pub fn skip(&self, at: usize) -> usize {
        after(&self.nodes, at)
    }

    /// The members of the object at `obj` that exist, as (key index, name, mark); the value
    /// follows its key.
    pub fn members(&self, obj: usize) -> Members<'_, 'a> {
        let end = match self.nodes[obj] {
            Node::Object { end, .. } => end as usize,
            _ => obj + 1,
        };
        Members {
            tape: self,
            at: obj + 1,
            end,
        }
    }

    /// The key index of member `name` of the object at `obj`; the root's through its index.
    #[inline(always)]
    pub fn find(&self, obj: usize, name: &str) -> Option<usize> {
        match &self.root.slots {
            Some(slots) if obj == 0 => self.find_indexed(slots, name),
            _ => self
                .members(obj)
                .find(|(_, key, _)| key.eq_str(name))
                .map(|(at, _, _)| at),
        }
    }

    #[inline(always)]
    fn find_indexed(&self, slots: &[u8; 64], name: &str) -> Option<usize> {
        let mut slot = name_hash(name.as_bytes()) & 63;
        loop {
            let key = usize::from(slots[slot]);
            if key == 0 {
                return None;
            }
            if let Node::Key { name: n, .. } = self.nodes[key]
                && n.raw() == name
            {
                return Some(key);
            }
            slot = (slot + 1) & 63;
        }
    }

    /// Whether the root's members are indexed (tests check the fallback).
    #[cfg(test)]
    pub(crate) fn root_indexed(&self) -> bool {
        self.root.slots.is_some()
    }

    pub fn set_mark(&mut self, key: usize, mark: Mark) {
        if let Node::Key { mark: m, .. } = &mut self.nodes[key] {
            *m = mark;
        }
    }

    /// Empties the tape for the next item.
    fn clear(&mut self) {
        self.nodes.clear();
        self.root = RootIndex::default();
    }
}

/// The root's member names by hash, filled in while parsing (normalizers look up some 25 names
/// per item): 64 one-byte slots of key node indices (0, the root itself, marks a free slot),
/// probed linearly. Roots with escaped or repeated names, more than 40 members, or members past
/// node 255 have none and are searched linearly.
#[derive(Debug)]
struct RootIndex {
    slots: Option<[u8; 64]>,
    members: u8,
}

impl Default for RootIndex {
    fn default() -> Self {
        Self {
            slots: Some([0; 64]),
            members: 0,
        }
    }
}

impl RootIndex {
    const MAX_MEMBERS: u8 = 40;

    fn add(&mut self, key: usize, hash: usize) {
        let Some(slots) = &mut self.slots else { return };
        let Ok(key) = u8::try_from(key) else {
            return self.disable();
        };
        if self.members == Self::MAX_MEMBERS {
            return self.disable();
        }
        let mut slot = hash & 63;
        while slots[slot] != 0 {
            slot = (slot + 1) & 63;
        }
        slots[slot] = key;
        self.members += 1;
    }

    #[cold]
    fn disable(&mut self) {
        self.slots = None;
    }
}

/// The index just past the value at `at` of `nodes` (complete or still being parsed).
fn after(nodes: &[Node], at: usize) -> usize {
    match nodes[at] {
        Node::Array { end, .. } | Node::Object { end, .. } => end as usize,
        _ => at + 1,
    }
}

/// A cheap hash of a member name (length, first and last byte; no multiply, so it adds
/// little latency per member), for the parser's repeated-name filter and the root index,
/// which take its low bits. Its weights give the API's member names no false hit
/// in the parser's 128-bit filter (checked on generated items of every type).
#[inline(always)]
pub fn name_hash(name: &[u8]) -> usize {
    let first = usize::from(name.first().copied().unwrap_or(0));
    let last = usize::from(name.last().copied().unwrap_or(0));
    name.len() * 7 + first * 3 + last
}

pub struct Members<'t, 'a> {
    tape: &'t Tape<'a>,
    at: usize,
    end: usize,
}

impl<'a> Iterator for Members<'_, 'a> {
    type Item = (usize, Str<'a>, Mark);

    fn next(&mut self) -> Option<Self::Item> {
        while self.at < self.end {
            let key = self.at;
            self.at = self.tape.skip(key + 1);
            if let Node::Key { name, mark } = self.tape.nodes[key]
                && mark != Mark::Shadowed
            {
                return Some((key, name, mark));
            }
        }
        None
    }
}
