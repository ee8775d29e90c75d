//! Acked pages → per-stream committed state → state files. Acks may arrive out of order (the
//! sink confirms batches independently), so pages are applied strictly in fetch order per stream.
//! Writes happen off the sink's thread (a runtime task), at most once per `checkpoint_interval`:
//! a write costs about as much CPU as encoding a few hundred events, so acks in between are
//! written together. A failed write keeps the stream dirty so the next write retries it; the
//! previous file stays intact.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::queue::PageMeta;
use crate::checkpoint::{Key, State, Store};

struct Slot {
    key: Key,
    state: State,
    next_seq: u64,
    pending: BTreeMap<u64, PageMeta>,
    dirty: bool,
}

/// Committed positions of every stream.
pub struct Committer {
    store: Store,
    slots: Mutex<Vec<Slot>>,
    /// Serializes writers so an older snapshot never lands after a newer one.
    write: Mutex<()>,
    wake: Notify,
    /// Least time between two background writes.
    interval: Duration,
}

impl Committer {
    pub fn new(store: Store, interval: Duration) -> Committer {
        Committer {
            store,
            slots: Mutex::new(Vec::new()),
            write: Mutex::new(()),
            wake: Notify::new(),
            interval,
        }
    }

    /// Every ack is written at once (`checkpoint_interval` 0).
    pub fn writes_every_ack(&self) -> bool {
        self.interval.is_zero()
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a stream; returns its index (pages carry it).
    pub fn add(&self, key: Key, state: State) -> usize {
        let mut slots = self.slots();
        slots.push(Slot {
            key,
            state,
            next_seq: 0,
            pending: BTreeMap::new(),
            dirty: false,
        });
        slots.len() - 1
    }

    /// Applies delivered pages; never blocks on I/O.
    pub fn apply(&self, metas: Vec<PageMeta>) {
        if metas.is_empty() {
            return;
        }
        let mut slots = self.slots();
        for meta in metas {
            let Some(slot) = slots.get_mut(meta.stream) else {
                continue;
            };
            slot.pending.insert(meta.seq, meta);
            while let Some(meta) = slot.pending.remove(&slot.next_seq) {
                slot.next_seq += 1;
                slot.state.cursor = Some(meta.cursor);
                if meta.last_timestamp > slot.state.last_timestamp {
                    slot.state.last_timestamp = meta.last_timestamp;
                }
                slot.state.remember(meta.uuids);
                slot.dirty = true;
            }
        }
        drop(slots);
        self.wake.notify_one();
    }

    /// Writes every dirty stream now (blocking I/O).
    pub fn flush(&self) {
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
        for (i, key, state) in dirty {
            match self.store.save(&key, &state) {
                Ok(()) => tracing::debug!(stream = %key.kind, "checkpoint written"),
                Err(e) => {
                    tracing::error!("{e}; retrying on the next delivery");
                    if let Some(s) = self.slots().get_mut(i) {
                        s.dirty = true;
                    }
                }
            }
        }
    }

    /// The background writer: flushes after acks, then waits out the interval, until the
    /// runtime stops (shutdown flushes what is left).
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let me = Arc::clone(&self);
            if tokio::task::spawn_blocking(move || me.flush())
                .await
                .is_err()
            {
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

    fn meta(seq: u64) -> PageMeta {
        PageMeta {
            stream: 0,
            seq,
            cursor: format!("c{seq}"),
            last_timestamp: None,
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
        let c = Committer::new(store.clone(), Duration::ZERO);
        let key = key();
        c.add(key.clone(), State::default());
        c.apply(vec![meta(1)]);
        c.flush();
        assert_eq!(store.load(&key).unwrap(), None, "page 0 not acked yet");
        c.apply(vec![meta(0)]);
        c.flush();
        let s = store.load(&key).unwrap().unwrap();
        assert_eq!(s.cursor.as_deref(), Some("c1"));
        assert_eq!(s.recent_uuids, ["u0", "u1"].map(EventUuid::from));
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
        let c = Arc::new(Committer::new(store.clone(), INTERVAL));
        c.add(key(), State::default());
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
