//! The account's request budget, shared by every stream of a collector.
//!
//! The server counts requests in fixed windows (per minute, per hour). A pacer that never lets
//! more than N requests into ANY sliding window of that length can never exceed N in a fixed
//! window either, whatever the window alignment. We keep a log of send times and admit a request
//! only if the last `window + margin` holds fewer than N. The margin (1 s a minute, 5 s an hour)
//! absorbs clock-rate skew and jitter in network latency (two requests sent exactly 60 s apart
//! could otherwise arrive 59.9 s apart); it costs under 2 % of the allowance. A 429 (another
//! collector on the same account) blocks every stream until the server's window resets.
//!
//! On top, requests are spaced (a GCRA with a burst of 1/20 of the minute allowance), so a backlog
//! is drained at a steady `N / 61 s` instead of N at once followed by a minute of silence.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(61);
const HOUR: Duration = Duration::from_secs(3605);

/// Shared request pacer; `0` disables a limit.
#[derive(Debug)]
pub struct Budget {
    inner: Mutex<Pacer>,
}

#[derive(Debug)]
struct Pacer {
    per_minute: usize,
    per_hour: usize,
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    /// GCRA theoretical arrival time of the next request.
    tat: Option<Instant>,
}

impl Pacer {
    /// Admits a request at `now` (recording it), or says when to ask again.
    fn admit(&mut self, now: Instant) -> Result<(), Instant> {
        if let Some(t) = self.blocked_until {
            if t > now {
                return Err(t);
            }
            self.blocked_until = None;
        }
        if self.per_minute > 0
            && let Some(tat) = self.tat
            && tat > now + self.burst_tolerance()
        {
            return Err(tat - self.burst_tolerance());
        }
        let keep = if self.per_hour > 0 { HOUR } else { MINUTE };
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= keep)
        {
            self.sent.pop_front();
        }
        if self.per_hour > 0 && self.sent.len() >= self.per_hour {
            return Err(self.sent[self.sent.len() - self.per_hour] + HOUR);
        }
        if self.per_minute > 0 {
            let in_minute = self
                .sent
                .iter()
                .rev()
                .take_while(|t| now.duration_since(**t) < MINUTE)
                .count();
            if in_minute >= self.per_minute {
                return Err(self.sent[self.sent.len() - self.per_minute] + MINUTE);
            }
        }
        if self.per_minute > 0 || self.per_hour > 0 {
            self.sent.push_back(now);
        }
        if self.per_minute > 0 {
            self.tat = Some(self.tat.map_or(now, |t| t.max(now)) + self.interval());
        }
        Ok(())
    }

    fn interval(&self) -> Duration {
        MINUTE / self.per_minute as u32
    }

    fn burst_tolerance(&self) -> Duration {
        self.interval() * (self.per_minute / 20).saturating_sub(1) as u32
    }
}

impl Budget {
    pub fn new(per_minute: u32, per_hour: u32) -> Budget {
        Budget {
            inner: Mutex::new(Pacer {
                per_minute: per_minute as usize,
                per_hour: per_hour as usize,
                sent: VecDeque::new(),
                blocked_until: None,
                tat: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until one more request fits, and counts it.
    pub async fn acquire(&self) {
        loop {
            let next = self.lock().admit(Instant::now());
            match next {
                Ok(()) => return,
                Err(at) => tokio::time::sleep_until(at.into()).await,
            }
        }
    }

    /// After a 429: nobody sends before `wait` has passed.
    pub fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.lock();
        p.blocked_until = Some(p.blocked_until.map_or(until, |t| t.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_n_in_any_window() {
        let mut p = Budget::new(10, 25).inner.into_inner().unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut admitted = Vec::new();
        while admitted.len() < 60 {
            match p.admit(now) {
                Ok(()) => admitted.push(now),
                Err(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        for (i, t) in admitted.iter().enumerate() {
            let in_min = admitted[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < MINUTE)
                .count();
            let in_hour = admitted[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < HOUR)
                .count();
            assert!(in_min <= 10 && in_hour <= 25, "{i}: {in_min} {in_hour}");
        }
        // the pacer keeps the allowance busy: 25 in the first hour window
        assert_eq!(
            admitted
                .iter()
                .filter(|u| u.duration_since(t0) < HOUR)
                .count(),
            25
        );
    }

    #[test]
    fn spreads_requests_at_the_allowed_rate() {
        let mut p = Budget::new(600, 0).inner.into_inner().unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut n = 0;
        while now < t0 + Duration::from_secs(183) {
            match p.admit(now) {
                Ok(()) => n += 1,
                Err(at) => now = at,
            }
        }
        // a burst of 30, then one every 61 s / 600, never over 600 in any window: the whole
        // allowance is used
        assert!((1795..=1800).contains(&n), "{n}");
    }

    #[test]
    fn off_and_blocked() {
        let b = Budget::new(0, 0);
        let mut p = b.inner.lock().unwrap();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(p.admit(now).is_ok());
        }
        assert!(p.sent.is_empty());
        p.blocked_until = Some(now + Duration::from_secs(5));
        assert_eq!(p.admit(now), Err(now + Duration::from_secs(5)));
    }
}
