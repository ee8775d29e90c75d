//! Per-account fixed-window rate limits on the mock clock (per minute and per hour).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default, Clone, Copy)]
struct Windows {
    minute: i64,
    minute_count: u32,
    hour: i64,
    hour_count: u32,
}

/// A spent budget, named in the 429's reason header so that a client author sees which of
/// their limits was too loose.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "rate limit exceeded: the account's {budget} requests per {window} are spent; the window resets in {retry_after}s"
)]
pub struct Exhausted {
    pub window: &'static str,
    pub budget: u32,
    /// Seconds until the window resets.
    pub retry_after: u64,
}

/// Counts admitted requests per account; a budget of 0 means unlimited.
pub struct RateLimits {
    per_minute: u32,
    per_hour: u32,
    accounts: Mutex<HashMap<String, Windows>>,
}

impl RateLimits {
    pub fn new(per_minute: u32, per_hour: u32) -> Self {
        RateLimits {
            per_minute,
            per_hour,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request at `now_s` (seconds since the epoch), or says which window is spent.
    /// Rejected requests do not count against the budget.
    pub fn admit(&self, account: &str, now_s: i64) -> Result<(), Exhausted> {
        if self.per_minute == 0 && self.per_hour == 0 {
            return Ok(());
        }
        let mut accounts = self.accounts.lock().expect("limits lock");
        let w = accounts.entry(account.to_owned()).or_default();
        let (minute, hour) = (now_s.div_euclid(60), now_s.div_euclid(3600));
        if w.minute != minute {
            w.minute = minute;
            w.minute_count = 0;
        }
        if w.hour != hour {
            w.hour = hour;
            w.hour_count = 0;
        }
        if self.per_hour != 0 && w.hour_count >= self.per_hour {
            return Err(Exhausted {
                window: "hour",
                budget: self.per_hour,
                retry_after: ((hour + 1) * 3600 - now_s) as u64,
            });
        }
        if self.per_minute != 0 && w.minute_count >= self.per_minute {
            return Err(Exhausted {
                window: "minute",
                budget: self.per_minute,
                retry_after: ((minute + 1) * 60 - now_s) as u64,
            });
        }
        w.minute_count += 1;
        w.hour_count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn retry_after_counts_to_the_window_reset() {
        let limits = RateLimits::new(2, 0);
        assert!(limits.admit("a", 600).is_ok());
        assert!(limits.admit("a", 601).is_ok());
        let spent = limits.admit("a", 615).unwrap_err();
        assert_eq!(
            (spent.window, spent.budget, spent.retry_after),
            ("minute", 2, 45)
        );
        assert!(
            limits.admit("b", 615).is_ok(),
            "accounts have separate budgets"
        );
        assert!(limits.admit("a", 660).is_ok(), "a new minute resets");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_window_serves_more_than_its_budget(
            per_minute in 1u32..20, per_hour in 0u32..100,
            gaps in proptest::collection::vec(0i64..40, 1..400),
        ) {
            let limits = RateLimits::new(per_minute, per_hour);
            let (mut now, mut minutes, mut hours) = (1_700_000_000i64, HashMap::new(), HashMap::new());
            for gap in gaps {
                now += gap;
                match limits.admit("acct", now) {
                    Ok(()) => {
                        *minutes.entry(now / 60).or_insert(0u32) += 1;
                        *hours.entry(now / 3600).or_insert(0u32) += 1;
                    }
                    Err(spent) => prop_assert!((1..=3600).contains(&spent.retry_after)),
                }
            }
            prop_assert!(minutes.values().all(|n| *n <= per_minute));
            prop_assert!(per_hour == 0 || hours.values().all(|n| *n <= per_hour));
        }
    }
}
