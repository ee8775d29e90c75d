//! Real or virtual time: `now = real time + offset`, so tests move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// The mock's clock. Retention, token expiry and rate windows all read it.
pub struct Clock {
    offset_ns: AtomicI64,
}

impl Clock {
    /// The times the mock accepts (1684 to 2255): a margin inside what the store's 64-bit
    /// nanoseconds hold (1677 to 2262).
    pub const EARLIEST: Timestamp = Timestamp::constant(-9_000_000_000, 0);
    pub const LATEST: Timestamp = Timestamp::constant(9_000_000_000, 0);

    pub fn in_range(t: Timestamp) -> bool {
        (Self::EARLIEST..=Self::LATEST).contains(&t)
    }

    /// A clock that reads `start` now and then runs at real speed (`None` = real time).
    /// `start` must be [in range](Self::in_range) (the server checks it first).
    pub fn new(start: Option<Timestamp>) -> Self {
        let clock = Clock {
            offset_ns: AtomicI64::new(0),
        };
        if let Some(start) = start {
            let moved = clock.set(start);
            debug_assert!(moved, "start {start} is out of range");
        }
        clock
    }

    pub fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_nanos(self.offset_ns.load(Ordering::Relaxed));
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or(Timestamp::MAX)
    }

    /// Moves the clock to `now`; false, and the clock unchanged, when `now` is out of range.
    pub fn set(&self, now: Timestamp) -> bool {
        if !Self::in_range(now) {
            return false;
        }
        let offset = now.duration_since(Timestamp::now());
        self.offset_ns
            .store(saturating_nanos(offset), Ordering::Relaxed);
        true
    }

    /// Moves the clock on by `by`; false, and the clock unchanged, when that leaves the range.
    pub fn advance(&self, by: std::time::Duration) -> bool {
        SignedDuration::try_from(by)
            .ok()
            .and_then(|by| self.now().checked_add(by).ok())
            .is_some_and(|to| self.set(to))
    }
}

fn saturating_nanos(d: SignedDuration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(if d.is_negative() { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_advance_move_virtual_time() {
        let start: Timestamp = "2024-05-14T00:00:00Z".parse().unwrap();
        let clock = Clock::new(Some(start));
        assert!(clock.now().duration_since(start).as_secs() < 5);
        assert!(clock.advance(std::time::Duration::from_secs(3600)));
        let d = clock.now().duration_since(start).as_secs();
        assert!((3600..3605).contains(&d), "{d}");
    }
}
