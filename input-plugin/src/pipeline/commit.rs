//! Acked pages → (held until settled) → per-stream committed state → state files. Acks may
//! arrive out of order (the sink confirms batches independently), so pages are applied strictly
//! in fetch order per stream. Writes happen off the sink's thread (a runtime task), at most once
//! per `checkpoint_interval`: a write costs about as much CPU as encoding a few hundred events,
//! so acks in between are written together. A failed write keeps the stream dirty so the next
//! write retries it; the previous file stays intact.
//!
//! With a `checkpoint_delay`, an ack is applied only once it is that old, not counting time
//! paused: Fluent Bit's threaded inputs put what they take into an in-memory ring buffer that
//! reaches the (filesystem) chunk up to 250 ms later, and not at all while the input is paused,
//! so a cursor written at once could outlive its events in a crash.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::queue::PageMeta;
use crate::checkpoint::{Key, State, StateLock, Store};

struct Slot {
    /// Held as long as the committer may write this stream's state file (`None`: the state
    /// directory has no locks).
    _lock: Option<StateLock>,
    key: Key,
    state: State,
    next_seq: u64,
    pending: BTreeMap<u64, PageMeta>,
    dirty: bool,
    /// Set while writes of this stream's state fail.
    failing: Option<Failing>,
}

/// A state file that cannot be written is retried at every checkpoint, but reported once and
/// then every [`REPORT_EVERY`]: one error a second per stream would bury every other line.
struct Failing {
    reported: Instant,
    unreported: u64,
}

const REPORT_EVERY: Duration = Duration::from_secs(300);

/// Acks waiting out the delay, oldest first, aged on a clock that stops while paused.
///
/// The clock is not restarted by a resume: under sustained back-pressure Fluent Bit may pause
/// the input within a second of every resume, and a delay counted from the resume would then
/// never pass, so no checkpoint would ever be written. Counting unpaused time is enough: the
/// engine empties the ring buffer at every 250 ms tick that finds the input unpaused, and a
/// tick that pauses it still moves at least one buffer.
struct Held {
    /// Each ack with the unpaused time ([`Held::clock`]) at which it came.
    acks: VecDeque<(Duration, Vec<PageMeta>)>,
    /// Unpaused time before `running_since`.
    banked: Duration,
    /// When the current unpaused stretch began; `None` while paused.
    running_since: Option<Instant>,
}

impl Held {
    /// Unpaused time since the committer started.
    fn clock(&self, now: Instant) -> Duration {
        self.banked
            + self
                .running_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// When the oldest ack comes due; never while paused.
    fn next_due(&self, delay: Duration) -> Option<Instant> {
        let since = self.running_since?;
        let (acked, _) = self.acks.front()?;
        Some(since + (*acked + delay).saturating_sub(self.banked))
    }

    /// Removes the acks due by `now`.
    fn take_due(&mut self, delay: Duration, now: Instant) -> Vec<Vec<PageMeta>> {
        let mut due = Vec::new();
        while self.next_due(delay).is_some_and(|at| at <= now) {
            due.extend(self.acks.pop_front().map(|(_, metas)| metas));
        }
        due
    }

    fn set_paused(&mut self, paused: bool, now: Instant) {
        match (paused, self.running_since) {
            (true, Some(_)) => {
                self.banked = self.clock(now);
                self.running_since = None;
            }
            (false, None) => self.running_since = Some(now),
            _ => {}
        }
    }
}

/// Committed positions of every stream.
pub struct Committer {
    store: Store,
    slots: Mutex<Vec<Slot>>,
    held: Mutex<Held>,
    /// Least age of an ack before it is applied.
    delay: Duration,
    /// Serializes writers so an older snapshot never lands after a newer one.
    write: Mutex<()>,
    wake: Notify,
    /// Least time between two background writes.
    interval: Duration,
}

impl Committer {
    pub fn new(store: Store, interval: Duration, delay: Duration) -> Committer {
        Committer {
            store,
            slots: Mutex::new(Vec::new()),
            held: Mutex::new(Held {
                acks: VecDeque::new(),
                banked: Duration::ZERO,
                running_since: Some(Instant::now()),
            }),
            delay,
            write: Mutex::new(()),
            wake: Notify::new(),
            interval,
        }
    }

    /// Every ack is written at once (`checkpoint_interval` and `checkpoint_delay` 0).
    pub fn writes_every_ack(&self) -> bool {
        self.interval.is_zero() && self.delay.is_zero()
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream; returns its index (pages carry it).
    pub fn add(&self, key: Key, state: State, lock: Option<StateLock>) -> usize {
        let mut slots = self.slots();
        slots.push(Slot {
            _lock: lock,
            key,
            state,
            next_seq: 0,
            pending: BTreeMap::new(),
            dirty: false,
            failing: None,
        });
        slots.len() - 1
    }

    /// Takes delivered pages: applied now, or held for the delay. Never blocks on I/O.
    pub fn apply(&self, metas: Vec<PageMeta>) {
        if metas.is_empty() {
            return;
        }
        if self.delay.is_zero() {
            self.commit(metas);
        } else {
            let mut held = self.held();
            let acked = held.clock(Instant::now());
            held.acks.push_back((acked, metas));
        }
        self.wake.notify_one();
    }

    /// While paused, held acks stop ageing (and resume ageing where they stopped): Fluent Bit
    /// does not move a paused input's ring buffer into its chunks. Acks already old enough are
    /// applied first.
    pub fn set_paused(&self, paused: bool) {
        if paused {
            self.release_due();
        }
        self.held().set_paused(paused, Instant::now());
        self.wake.notify_one();
    }

    /// Applies the held acks that are old enough.
    fn release_due(&self) {
        let due = self.held().take_due(self.delay, Instant::now());
        due.into_iter().for_each(|metas| self.commit(metas));
    }

    /// At shutdown: applies every held ack unless paused. Fluent Bit pauses its inputs before
    /// exiting, and an input paused for its buffer limit never moves its ring buffer into the
    /// chunks (the exit discards it), so while paused only acks already due count; the rest are
    /// fetched again next start.
    pub fn release_for_shutdown(&self) {
        let all = {
            let mut held = self.held();
            if held.running_since.is_none() {
                return;
            }
            std::mem::take(&mut held.acks)
        };
        all.into_iter().for_each(|(_, metas)| self.commit(metas));
    }

    fn commit(&self, metas: Vec<PageMeta>) {
        let mut slots = self.slots();
        for meta in metas {
            let Some(slot) = slots.get_mut(meta.stream) else {
                continue;
            };
            slot.pending.insert(meta.seq, meta);
            while let Some(meta) = slot.pending.remove(&slot.next_seq) {
                slot.next_seq += 1;
                slot.state.cursor = Some(meta.cursor);
                slot.state.last_timestamp = slot.state.last_timestamp.max(meta.last_timestamp);
                slot.state.resume_from = slot.state.resume_from.max(meta.resume_from);
                slot.state.remember(meta.uuids);
                slot.dirty = true;
            }
        }
    }

    fn is_dirty(&self) -> bool {
        self.slots().iter().any(|s| s.dirty)
    }

    /// Writes every dirty stream now (blocking I/O); whether every write succeeded.
    pub fn flush(&self) -> bool {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let dirty: Vec<(usize, Key, State)> = self
            .slots()
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.dirty)
            .map(|(i, s)| {
                s.dirty = false;
                (i, s.key.clone(), s.state.clone())
            })
            .collect();
        let mut written = true;
        for (i, key, state) in dirty {
            let saved = self.store.save(&key, &state);
            let mut slots = self.slots();
            let Some(slot) = slots.get_mut(i) else {
                continue;
            };
            match saved {
                Ok(()) => {
                    tracing::debug!(stream = %key.kind, "checkpoint written");
                    if slot.failing.take().is_some() {
                        tracing::info!(stream = %key.kind, "checkpoints are written again");
                    }
                }
                Err(e) => {
                    written = false;
                    slot.dirty = true;
                    match &mut slot.failing {
                        None => {
                            tracing::error!(
                                "{e}; retrying at every checkpoint (reported again every {} minutes while it fails)",
                                REPORT_EVERY.as_secs() / 60
                            );
                            slot.failing = Some(Failing {
                                reported: Instant::now(),
                                unreported: 0,
                            });
                        }
                        Some(f) if f.reported.elapsed() >= REPORT_EVERY => {
                            tracing::error!(
                                "{e}; still failing ({} failed writes since the last report)",
                                f.unreported + 1
                            );
                            (f.reported, f.unreported) = (Instant::now(), 0);
                        }
                        Some(f) => {
                            tracing::debug!("{e}");
                            f.unreported += 1;
                        }
                    }
                }
            }
        }
        written
    }

    /// [`flush`](Self::flush) on a thread of its own, waiting at most `limit`: a state
    /// directory that hangs (a stuck network mount, a saturated disk) must not hold up Fluent
    /// Bit's shutdown. Returns whether every write succeeded, or `None` when they did not
    /// finish in time (one still running goes on alone).
    pub fn flush_within(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Runtime,
        limit: Duration,
    ) -> Option<bool> {
        let me = Arc::clone(self);
        runtime.block_on(async move {
            let write = super::own_thread::run(move || me.flush());
            match tokio::time::timeout(limit, write).await {
                Ok(written) => Some(written.unwrap_or(false)),
                Err(_) => None,
            }
        })
    }

    /// The background writer: wakes on acks and when held ones come due, writes, then waits
    /// out the interval, until the runtime stops (shutdown flushes what is left).
    pub async fn run(self: Arc<Self>) {
        loop {
            let next_due = self.held().next_due(self.delay);
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                None => self.wake.notified().await,
            }
            self.release_due();
            if !self.is_dirty() {
                continue;
            }
            let me = Arc::clone(&self);
            if super::own_thread::run(move || me.flush()).await.is_none() {
                return;
            }
            // An ack during the wait leaves a permit: its write starts when the wait ends.
            tokio::time::sleep(self.interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ApiVersion, EventType, EventUuid};
    use proptest::prelude::*;

    fn meta(seq: u64) -> PageMeta {
        PageMeta {
            stream: 0,
            seq,
            cursor: format!("c{seq}"),
            last_timestamp: None,
            resume_from: None,
            uuids: vec![EventUuid::from(&*format!("u{seq}"))],
        }
    }

    fn key() -> Key {
        Key {
            account: "A".into(),
            version: ApiVersion::V2,
            kind: EventType::AuditEvents,
        }
    }

    #[test]
    fn out_of_order_acks_commit_in_fetch_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Committer::new(store.clone(), Duration::ZERO, Duration::ZERO);
        let key = key();
        c.add(key.clone(), State::default(), None);
        c.apply(vec![meta(1)]);
        c.flush();
        assert_eq!(store.load(&key).unwrap(), None, "page 0 not acked yet");
        c.apply(vec![meta(0)]);
        c.flush();
        let s = store.load(&key).unwrap().unwrap();
        assert_eq!(s.cursor.as_deref(), Some("c1"));
        assert_eq!(s.recent_uuids, ["u0", "u1"].map(EventUuid::from));
    }

    proptest! {
        /// Two streams' pages acked in any order and any grouping: after each ack, each
        /// stream's file holds the cursor of its longest run of acked pages from the first, and
        /// exactly those pages' uuids.
        #[test]
        fn any_ack_order_commits_each_streams_acked_run(
            order in Just((0..24).collect::<Vec<usize>>()).prop_shuffle(),
            cuts in prop::collection::vec(any::<bool>(), 24),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let c = Committer::new(store.clone(), Duration::ZERO, Duration::ZERO);
            let keys = [EventType::AuditEvents, EventType::ItemUsages].map(|kind| Key {
                kind,
                ..key()
            });
            for key in &keys {
                c.add(key.clone(), State::default(), None);
            }
            // Page n is stream n % 2's page n / 2.
            let mut acked = [[false; 12]; 2];
            let mut group = Vec::new();
            for (i, (&n, cut)) in order.iter().zip(cuts).enumerate() {
                group.push(n);
                if !cut && i + 1 < order.len() {
                    continue;
                }
                let metas = group.drain(..).map(|n| {
                    acked[n % 2][n / 2] = true;
                    PageMeta { stream: n % 2, ..meta(n as u64 / 2) }
                });
                c.apply(metas.collect());
                c.flush();
                for (key, acked) in keys.iter().zip(&acked) {
                    let run = acked.iter().take_while(|a| **a).count();
                    let state = store.load(key).unwrap();
                    let uuids: Vec<_> =
                        (0..run).map(|p| EventUuid::from(&*format!("u{p}"))).collect();
                    prop_assert_eq!(
                        state.as_ref().and_then(|s| s.cursor.clone()),
                        run.checked_sub(1).map(|p| format!("c{p}"))
                    );
                    prop_assert_eq!(state.map(|s| s.recent_uuids).unwrap_or_default(), uuids);
                }
            }
        }
    }

    #[test]
    fn a_pause_applies_the_acks_already_due_and_a_paused_shutdown_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Committer::new(store.clone(), Duration::ZERO, Duration::from_millis(200));
        c.add(key(), State::default(), None);
        c.apply(vec![meta(0)]);
        std::thread::sleep(Duration::from_millis(250));
        c.apply(vec![meta(1)]);
        c.set_paused(true);
        c.release_for_shutdown();
        c.flush();
        let cursor = || store.load(&key()).unwrap().unwrap().cursor;
        assert_eq!(cursor().as_deref(), Some("c0"), "held while paused");
        c.set_paused(false);
        c.release_for_shutdown();
        c.flush();
        assert_eq!(cursor().as_deref(), Some("c1"));
    }

    /// Under sustained back-pressure Fluent Bit pauses the input soon after every resume: an
    /// ack's age adds up across the stretches between pauses instead of starting over.
    #[test]
    fn an_ack_ages_across_pauses_without_counting_them() {
        const DELAY: Duration = Duration::from_millis(300);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Committer::new(store.clone(), Duration::ZERO, DELAY);
        c.add(key(), State::default(), None);
        c.apply(vec![meta(0)]);
        let mut unpaused = Duration::ZERO;
        while unpaused < DELAY {
            let stretch = Instant::now();
            std::thread::sleep(DELAY / 3 + Duration::from_millis(5));
            c.set_paused(true);
            unpaused += stretch.elapsed();
            c.flush();
            let cursor = store.load(&key()).unwrap().and_then(|s| s.cursor);
            assert_eq!(cursor.is_some(), unpaused >= DELAY, "after {unpaused:?}");
            std::thread::sleep(DELAY);
            c.set_paused(false);
        }
    }

    /// A write that hangs (here the writer's lock is held, as by a background write stuck on
    /// the disk) costs the limit, not the shutdown; it finishes on its own afterwards.
    #[test]
    fn a_hung_write_costs_the_limit_not_the_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Arc::new(Committer::new(
            store.clone(),
            Duration::ZERO,
            Duration::ZERO,
        ));
        c.add(key(), State::default(), None);
        c.apply(vec![meta(0)]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stuck = c.write.lock().unwrap();
        let start = Instant::now();
        assert_eq!(c.flush_within(&runtime, Duration::from_millis(100)), None);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(store.load(&key()).unwrap(), None);
        drop(stuck);
        assert_eq!(
            c.flush_within(&runtime, Duration::from_secs(10)),
            Some(true)
        );
        let s = store.load(&key()).unwrap().unwrap();
        assert_eq!(s.cursor.as_deref(), Some("c0"));
        runtime.shutdown_timeout(Duration::from_secs(1));
    }

    /// The saved cursor, once it is `want` (or panics after 10 s).
    async fn saved(store: &Store, want: &str) -> tokio::time::Instant {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let cursor = store.load(&key()).unwrap().and_then(|s| s.cursor);
            if cursor.as_deref() == Some(want) {
                return tokio::time::Instant::now();
            }
            assert!(tokio::time::Instant::now() < deadline, "{want} never saved");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_within_the_interval_are_written_together() {
        const INTERVAL: Duration = Duration::from_secs(2);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Arc::new(Committer::new(store.clone(), INTERVAL, Duration::ZERO));
        c.add(key(), State::default(), None);
        tokio::spawn(Arc::clone(&c).run());
        c.apply(vec![meta(0)]);
        let first = saved(&store, "c0").await;
        c.apply(vec![meta(1)]);
        c.apply(vec![meta(2)]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = store.load(&key()).unwrap().unwrap();
        assert_eq!(
            s.cursor.as_deref(),
            Some("c0"),
            "written before the interval"
        );
        let second = saved(&store, "c2").await;
        assert!(second - first >= INTERVAL - Duration::from_millis(50));
        let s = store.load(&key()).unwrap().unwrap();
        assert_eq!(s.recent_uuids, ["u0", "u1", "u2"].map(EventUuid::from));
    }
}
