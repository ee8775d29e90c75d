//! The uuid dedupe window, its one job: remember the uuids a stream handed on last, so that
//! none is handed on twice. It exists because a rejected cursor is replaced by a reset cursor
//! at the newest delivered event time, which reads some delivered events again.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::checkpoint::RECENT_UUIDS;
use crate::event::EventUuid;

/// The last [`RECENT_UUIDS`] uuids handed on, as keyed 64-bit hashes: one cheap hash per
/// event and no allocation (a set of whole uuids measured slower). A false "seen" needs a
/// 64-bit collision within a 2,000-entry window.
///
/// A re-read event carries the timestamp it had, so an event newer than everything in the
/// window cannot be in it: such events (all of them while the API pages forward in time) are
/// only queued, and the set, two probes of a cold table per event, is built from the queue
/// when an older or undated one arrives, and dropped after a page that needed no lookup.
pub(super) struct RecentUuids {
    key: u64,
    order: VecDeque<u64>,
    /// Exactly the hashes of `order`, while lookups are being made.
    seen: Option<HashSet<u64, BuildHasherDefault<Prehashed>>>,
    /// No dated event in the window is newer than this (`None`: none is dated). An undated
    /// event's re-read is undated too, so undated events need no bound.
    newest: Option<jiff::Timestamp>,
    /// Whether the current page needed a lookup.
    looked_up: bool,
}

impl RecentUuids {
    /// The window of a state file: its uuids, none of them newer than `newest` (the newest
    /// event delivered).
    pub(super) fn new<'a>(
        uuids: impl IntoIterator<Item = &'a EventUuid>,
        newest: Option<jiff::Timestamp>,
    ) -> Self {
        let mut recent = Self {
            // Random per process, so that no fixed pair of uuids collides in every run.
            key: RandomState::new().hash_one(0u64),
            order: VecDeque::with_capacity(RECENT_UUIDS + 1),
            seen: None,
            newest: None,
            looked_up: false,
        };
        for uuid in uuids {
            recent.insert(uuid.as_str(), None);
        }
        recent.newest = newest;
        // Restoring counts as a page that needed the set: it stays for the first page after a
        // restart, which is the one likely to re-read, and goes after it if unused.
        recent.page_done();
        recent
    }

    /// False when `uuid` was seen already. `timestamp` is the event's, if valid.
    pub(super) fn insert(&mut self, uuid: &str, timestamp: Option<jiff::Timestamp>) -> bool {
        let hash = fold_hash(self.key, uuid.as_bytes());
        let newer = timestamp.is_some_and(|t| self.newest.is_none_or(|newest| t > newest));
        if !newer {
            self.looked_up = true;
            let order = &self.order;
            let seen = self.seen.get_or_insert_with(|| {
                let mut seen =
                    HashSet::with_capacity_and_hasher(RECENT_UUIDS + 1, Default::default());
                seen.extend(order.iter().copied());
                seen
            });
            if !seen.insert(hash) {
                return false;
            }
        } else if let Some(seen) = &mut self.seen {
            seen.insert(hash);
        }
        if timestamp > self.newest {
            self.newest = timestamp;
        }
        self.order.push_back(hash);
        if self.order.len() > RECENT_UUIDS
            && let Some(old) = self.order.pop_front()
            && let Some(seen) = &mut self.seen
        {
            seen.remove(&old);
        }
        true
    }

    /// Ends a page: the set is kept only while pages need it.
    pub(super) fn page_done(&mut self) {
        if !std::mem::take(&mut self.looked_up) {
            self.seen = None;
        }
    }
}

/// A keyed multiply-and-fold hash, 8 bytes a step: several times cheaper than SipHash on a
/// 26-byte uuid, which was a measurable part of a page's cost. Not built to resist crafted
/// collisions, and it need not: uuids come only from the server, which decides what events
/// exist anyway.
fn fold_hash(key: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |h: u64, word: u64| {
        let product = u128::from(h ^ word) * u128::from(K);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut h = key;
    for chunk in &mut chunks {
        h = mix(h, u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
    }
    let mut last = [0; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(h, u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56))
}

/// The set's values are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_window_is_bounded() {
        let long = "X".repeat(40);
        let saved = [EventUuid::from("A"), EventUuid::from(&*long)];
        let mut recent = RecentUuids::new(&saved, None);
        assert!(!recent.insert("A", None));
        assert!(!recent.insert(&long, None));
        // Differs from the long one in its last byte only.
        assert!(recent.insert(&format!("{}Y", &long[1..]), None));
        // The last word is padded with zeros: the length keeps this apart from "A".
        assert!(recent.insert("A\0", None));
        for i in 0..RECENT_UUIDS {
            assert!(recent.insert(&format!("{i:026}"), None));
        }
        assert_eq!(recent.order.len(), RECENT_UUIDS);
        assert_eq!(recent.seen.as_ref().map(HashSet::len), Some(RECENT_UUIDS));
        // The oldest were forgotten; the newest are still seen.
        assert!(recent.insert("A", None));
        assert!(!recent.insert(&format!("{:026}", RECENT_UUIDS - 1), None));
    }

    fn at(second: i64) -> Option<jiff::Timestamp> {
        Some(jiff::Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn newer_events_skip_the_set_and_re_reads_are_still_caught() {
        let saved = [EventUuid::from("saved")];
        let mut recent = RecentUuids::new(&saved, at(100));
        // Forward in time: no set is built, every event is new.
        for i in 0..3 * RECENT_UUIDS {
            assert!(recent.insert(&format!("u{i}"), at(101 + i as i64)));
            if i % 1000 == 999 {
                recent.page_done();
            }
        }
        assert!(recent.seen.is_none());
        // A re-read of the last event, or of any of the last 2,000 (a reset cursor starting at
        // the newest delivered time re-reads from there): caught, from a set built on demand
        // that holds exactly the window.
        let last = 3 * RECENT_UUIDS - 1;
        assert!(!recent.insert(&format!("u{last}"), at(101 + last as i64)));
        assert!(!recent.insert(&format!("u{}", last - 1999), at(101 + (last - 1999) as i64)));
        assert_eq!(recent.seen.as_ref().map(HashSet::len), Some(RECENT_UUIDS));
        // Older than the window: forgotten, as before.
        assert!(recent.insert(&format!("u{}", last - 2000), at(101 + (last - 2000) as i64)));
        // A duplicate within one page, with the same timestamp: caught.
        let t = at(1_000_000);
        assert!(recent.insert("twin", t));
        assert!(!recent.insert("twin", t));
        // Undated events are always looked up.
        assert!(recent.insert("undated", None));
        assert!(!recent.insert("undated", None));
        // The set is kept while pages need it, and dropped after one that did not.
        recent.page_done();
        assert!(recent.seen.is_some());
        assert!(recent.insert("later", at(2_000_000)));
        recent.page_done();
        assert!(recent.seen.is_none());
        assert!(!recent.insert("later", at(2_000_000)));
        assert!(!recent.insert("twin", t));
    }

    #[test]
    fn a_restored_window_catches_re_reads_up_to_its_newest_time() {
        let saved = ["a", "b", "c"].map(EventUuid::from);
        let mut recent = RecentUuids::new(&saved, at(50));
        assert!(!recent.insert("b", at(50)));
        assert!(!recent.insert("c", at(10)));
        assert!(recent.insert("d", at(51)));
        // Restored without a newest time: its events were undated, and dated ones are new.
        let mut undated = RecentUuids::new(&saved, None);
        assert!(undated.insert("d", at(1)));
        assert!(!undated.insert("a", None));
    }

    proptest::proptest! {
        /// Against a plain window of the last uuids handed on, looked up every time: reads
        /// forward from any earlier point (as after a reset), pages of any length, some events
        /// undated, several to a second, and the window restored from a state file first. A
        /// uuid always comes with the same timestamp, as the API serves it again.
        #[test]
        fn agrees_with_a_window_searched_every_time(
            restored in 0u32..2_500,
            reads in proptest::collection::vec((0u32..6_000, 0u32..1_500, 1u32..1_000), 1..12)
        ) {
            let time = |i: u32| (!i.is_multiple_of(11)).then(|| at(i64::from(i / 3)).unwrap());
            // The model: the last RECENT_UUIDS uuids handed on, in order and as a set.
            let (mut order, mut window) = (VecDeque::new(), HashSet::new());
            let mut hand_on = |i: u32, window: &mut HashSet<u32>| {
                order.push_back(i);
                window.insert(i);
                if order.len() > RECENT_UUIDS {
                    window.remove(&order.pop_front().unwrap());
                }
            };
            let saved: Vec<EventUuid> =
                (0..restored).map(|i| EventUuid::from(&*format!("u{i}"))).collect();
            (0..restored).for_each(|i| hand_on(i, &mut window));
            let newest = (0..restored).filter_map(time).max();
            let mut recent = RecentUuids::new(&saved, newest);
            for (from, len, page) in reads {
                for (n, i) in (from..from + len).enumerate() {
                    let fresh = !window.contains(&i);
                    let handed_on = recent.insert(&format!("u{i}"), time(i));
                    proptest::prop_assert_eq!(handed_on, fresh, "u{}", i);
                    if fresh {
                        hand_on(i, &mut window);
                    }
                    if (n as u32 + 1).is_multiple_of(page) {
                        recent.page_done();
                    }
                }
                recent.page_done();
            }
        }
    }

    #[test]
    fn fold_hash_depends_on_every_byte_the_length_and_the_key() {
        let base = *b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut hashes = vec![
            fold_hash(7, &base),
            fold_hash(8, &base),
            fold_hash(7, &base[..25]),
            fold_hash(7, b"ABCDEFGHIJKLMNOPQRSTUVWXY\0"),
        ];
        for i in 0..base.len() {
            for bit in 0..8 {
                let mut changed = base;
                changed[i] ^= 1 << bit;
                hashes.push(fold_hash(7, &changed));
            }
        }
        let count = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), count);
    }
}
