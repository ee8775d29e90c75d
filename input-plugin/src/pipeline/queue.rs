//! The bounded hand-off between streams (async producers) and the sink (a plain thread): whole
//! encoded pages in, batches of whole pages out. Only a `std::sync::Mutex` held for pointer moves
//! and a `Condvar`, so `try_take` never blocks on async code. Buffers that are done with (pages,
//! responses) come back for the next ones: a fresh multi-megabyte buffer costs a page fault per
//! 4 KiB written.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What the checkpoint needs from a page once it is delivered.
#[derive(Debug)]
pub struct PageMeta {
    pub stream: usize,
    pub seq: u64,
    pub cursor: String,
    pub last_timestamp: Option<jiff::Timestamp>,
    pub resume_from: Option<jiff::Timestamp>,
    pub uuids: Vec<crate::event::EventUuid>,
}

/// One API page, encoded.
#[derive(Debug)]
pub struct Page {
    pub data: Vec<u8>,
    pub records: usize,
    pub meta: PageMeta,
}

/// How much one batch may hold (at least one page is always taken, whatever its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    pub max_bytes: usize,
}

/// Identifies a taken batch until the sink confirms it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AckToken(u64);

/// How many buffers given back are kept for the next pages, and the largest kept.
const SPARE_BUFFERS: usize = 4;
const SPARE_MAX_BYTES: usize = 16 << 20;

/// Whole pages taken together. A front end copies or writes the bytes, then keeps `ack` until
/// they are safe.
#[derive(Debug)]
pub struct Batch {
    /// The pages' encoded bytes, in order. Kept apart so each sink copies them once, into its
    /// own buffer or stream, instead of the queue concatenating them first.
    parts: Vec<Vec<u8>>,
    pub records: usize,
    pub ack: AckToken,
}

impl Batch {
    /// Total encoded bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    /// A batch of one page is that page's own buffer: no copy needed.
    pub fn into_single(mut self) -> Result<(Vec<u8>, AckToken), Batch> {
        if self.parts.len() != 1 {
            return Err(self);
        }
        match self.parts.pop() {
            Some(page) => Ok((page, self.ack)),
            None => Err(self),
        }
    }

    /// The whole batch in one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// The pages' buffers (concatenated they are the batch), to give back once copied, and
    /// the token.
    pub fn into_parts(self) -> (Vec<Vec<u8>>, AckToken) {
        (self.parts, self.ack)
    }
}

#[derive(Default)]
struct Inner {
    pages: VecDeque<Page>,
    buffered_events: usize,
    /// Room promised to requests in flight, so concurrent streams can't overshoot together.
    reserved: usize,
    outstanding: HashMap<u64, Vec<PageMeta>>,
    next_batch: u64,
    /// Empty buffers given back, newest (warmest) last.
    spares: Vec<Vec<u8>>,
}

impl Inner {
    fn keep(&mut self, mut buffer: Vec<u8>) {
        if (1..=SPARE_MAX_BYTES).contains(&buffer.capacity()) && self.spares.len() < SPARE_BUFFERS {
            buffer.clear();
            self.spares.push(buffer);
        }
    }
}

/// The queue. `capacity` bounds events waiting in it (not those the sink holds).
pub struct Queue {
    inner: Mutex<Inner>,
    ready: Condvar,
    room: Notify,
    capacity: usize,
}

/// Room held for one request; released when dropped, or used by [`Reservation::push`].
pub struct Reservation<'a> {
    queue: &'a Queue,
    records: usize,
}

impl Reservation<'_> {
    pub fn push(self, page: Page) {
        let queue = self.queue;
        let mut inner = queue.lock();
        inner.reserved -= self.records;
        inner.buffered_events += page.records;
        inner.pages.push_back(page);
        drop(inner);
        std::mem::forget(self);
        queue.ready.notify_all();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.queue.release(self.records);
    }
}

/// Result of a take: a batch for the sink, or pages without records the caller acks at once.
pub enum Taken {
    Batch(Batch),
    Empty(Vec<PageMeta>),
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            inner: Mutex::default(),
            ready: Condvar::new(),
            room: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty buffer with room for `capacity` bytes: one given back if there is one.
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        let mut buffer = self.lock().spares.pop().unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    /// Takes back a buffer that is done with (a page Fluent Bit copied, a batch written, a
    /// response encoded), for the next pages or responses.
    pub fn recycle(&self, buffer: Vec<u8>) {
        self.lock().keep(buffer);
    }

    fn try_reserve(&self, page_records: usize) -> bool {
        let mut inner = self.lock();
        let n = inner.buffered_events + inner.reserved;
        let fits = n == 0 || n + page_records <= self.capacity;
        if fits {
            inner.reserved += page_records;
        }
        fits
    }

    /// Waits until a page of up to `page_records` events fits, and holds that room.
    pub async fn reserve(&self, page_records: usize) -> Reservation<'_> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_reserve(page_records) {
                return Reservation {
                    queue: self,
                    records: page_records,
                };
            }
            notified.await;
        }
    }

    fn release(&self, records: usize) {
        self.lock().reserved -= records;
        self.room.notify_waiters();
    }

    /// Takes whole pages up to `limits`; waits up to `timeout` for the first one.
    pub fn take(&self, limits: BatchLimits, timeout: Option<Duration>) -> Option<Taken> {
        let mut inner = self.lock();
        if let Some(timeout) = timeout {
            let deadline = Instant::now() + timeout;
            while inner.pages.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                inner = self
                    .ready
                    .wait_timeout(inner, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let mut metas = Vec::new();
        let mut parts = Vec::new();
        let (mut records, mut bytes) = (0usize, 0usize);
        while let Some(front) = inner.pages.front() {
            let fits = records + front.records <= limits.max_records
                && bytes + front.data.len() <= limits.max_bytes;
            if records > 0 && !fits {
                break;
            }
            let page = inner.pages.pop_front().expect("front exists");
            inner.buffered_events -= page.records;
            records += page.records;
            bytes += page.data.len();
            if page.data.is_empty() {
                inner.keep(page.data);
            } else {
                parts.push(page.data);
            }
            metas.push(page.meta);
        }
        if metas.is_empty() {
            return None;
        }
        let taken = if records == 0 {
            Taken::Empty(metas)
        } else {
            let id = inner.next_batch;
            inner.next_batch += 1;
            inner.outstanding.insert(id, metas);
            Taken::Batch(Batch {
                parts,
                records,
                ack: AckToken(id),
            })
        };
        drop(inner);
        self.room.notify_waiters();
        Some(taken)
    }

    /// The pages of an acked batch (empty if unknown or acked twice).
    pub fn acked(&self, token: AckToken) -> Vec<PageMeta> {
        self.lock().outstanding.remove(&token.0).unwrap_or_default()
    }

    /// Nothing waiting and nothing unconfirmed.
    pub fn is_drained(&self) -> bool {
        let inner = self.lock();
        inner.pages.is_empty() && inner.outstanding.is_empty()
    }

    /// Events waiting per stream index.
    pub fn buffered_events(&self) -> usize {
        self.lock().buffered_events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seq: u64, records: usize) -> Page {
        Page {
            data: vec![b'x'; records],
            records,
            meta: PageMeta {
                stream: 0,
                seq,
                cursor: seq.to_string(),
                last_timestamp: None,
                resume_from: None,
                uuids: Vec::new(),
            },
        }
    }

    #[test]
    fn whole_pages_within_limits() {
        let q = Queue::new(10);
        let push = |p: Page| {
            assert!(q.try_reserve(4));
            Reservation {
                queue: &q,
                records: 4,
            }
            .push(p);
        };
        push(page(0, 4));
        push(page(1, 0));
        assert!(q.try_reserve(2));
        q.release(2);
        push(page(2, 4));
        assert!(!q.try_reserve(4));
        q.lock().pages.push_back(page(3, 4));
        q.lock().buffered_events += 4;
        let limits = BatchLimits {
            max_records: 9,
            max_bytes: 100,
        };
        let Some(Taken::Batch(b)) = q.take(limits, None) else {
            panic!()
        };
        assert_eq!((b.records, b.len()), (8, 8));
        assert_eq!(b.to_vec(), vec![b'x'; 8]);
        assert!(!q.is_drained());
        assert_eq!(q.acked(b.ack).len(), 3);
        let tiny = BatchLimits {
            max_records: 1,
            max_bytes: 1,
        };
        let Some(Taken::Batch(b)) = q.take(tiny, None) else {
            panic!()
        };
        assert_eq!(b.records, 4);
        q.acked(b.ack);
        assert!(q.take(tiny, Some(Duration::from_millis(5))).is_none());
        q.lock().pages.push_back(page(4, 0));
        assert!(matches!(q.take(tiny, None), Some(Taken::Empty(m)) if m.len() == 1));
        assert!(q.is_drained());
    }

    #[test]
    fn buffers_given_back_are_reused_up_to_a_bound() {
        let q = Queue::new(10);
        let buffers: Vec<Vec<u8>> = (0..SPARE_BUFFERS + 2)
            .map(|_| Vec::with_capacity(1000))
            .collect();
        let kept: Vec<*const u8> = buffers[..SPARE_BUFFERS]
            .iter()
            .map(|b| b.as_ptr())
            .collect();
        for mut b in buffers {
            b.push(1);
            q.recycle(b);
        }
        q.recycle(Vec::with_capacity(SPARE_MAX_BYTES + 1));
        let reused: Vec<Vec<u8>> = kept.iter().map(|_| q.buffer(10)).collect();
        for (b, want) in reused.iter().zip(kept.iter().rev()) {
            assert_eq!(
                (b.as_ptr(), b.len()),
                (*want, 0),
                "the warmest first, emptied"
            );
        }
        let fresh = q.buffer(10);
        assert!(!kept.contains(&fresh.as_ptr()) && fresh.capacity() >= 10);
    }
}
