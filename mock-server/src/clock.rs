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
    pub fn new(start: Option<Timestamp>) -> Self {
        let clock = Clock {
            offset_ns: AtomicI64::new(0),
        };
        if let Some(start) = start {
            clock.set(start);
        }
        clock
    }

    pub fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_nanos(self.offset_ns.load(Ordering::Relaxed));
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or(Timestamp::MAX)
    }

    pub fn set(&self, now: Timestamp) {
        let offset = now.duration_since(Timestamp::now());
        self.offset_ns
            .store(saturating_nanos(offset), Ordering::Relaxed);
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.offset_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(by))
            })
            .ok();
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
        clock.advance(std::time::Duration::from_secs(3600));
        let d = clock.now().duration_since(start).as_secs();
        assert!((3600..3605).contains(&d), "{d}");
    }
}
