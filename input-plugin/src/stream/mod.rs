//! One event type's loop: reset cursor (first run) → drain while `has_more` → poll every
//! `poll_interval` with the saved cursor. Retries keep the same request; a rejected continuing
//! cursor restarts from a reset cursor at the newest delivered event time, and the uuid window
//! drops what that re-reads.

mod recent;

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, error, warn};

use crate::api::{Action, ApiError, Client, NOT_FOUND_HINT, RawPage, Request};
use crate::budget::Budget;
use crate::checkpoint::State;
use crate::config::{MAX_LIMIT, StartTime};
use crate::encode::Encoder;
use crate::event::{EventType, EventUuid};
use crate::json::Tape;
use crate::pipeline::queue::{Page, PageMeta, Queue, Reservation};
use crate::rotate;

use recent::RecentUuids;

/// Pause and shutdown signals shared by every task of a collector.
#[derive(Debug)]
pub struct Control {
    paused: watch::Sender<bool>,
    stopping: watch::Sender<bool>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            paused: watch::Sender::new(false),
            stopping: watch::Sender::new(false),
        }
    }
}

impl Control {
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }
    /// Resolves once shutdown starts.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
    async fn unpaused(&self) {
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
    }
    /// Sleeps `d`, or less if shutdown starts; `false` when stopping.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.stopped() => false,
        }
    }
}

/// A random duration in `[0, max)`, for jitter.
pub fn jitter(max: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    max.mul_f64((h.finish() >> 11) as f64 / (1u64 << 53) as f64)
}

/// The wait before retry `attempt` (1 for the first) of a transient failure: doubling from
/// `initial` up to `max`, its upper half random so that collectors that failed together do
/// not come back together.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let cap = initial
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(max);
    cap / 2 + jitter(cap / 2)
}

/// The wait after a 429: its `Retry-After`, else until the next minute window (the server's
/// windows are fixed), plus jitter so that several collectors don't return together.
pub fn rate_limited_wait(retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or_else(|| {
        let into = jiff::Timestamp::now().as_millisecond().rem_euclid(60_000);
        Duration::from_millis((60_000 - into) as u64)
    }) + jitter(Duration::from_secs(2))
}

/// Logs a failure that retrying soon cannot fix (one only a person can), and returns the wait
/// before trying again anyway (`unauthorized_retry`, in case it was fixed elsewhere: a proxy,
/// the clock). With `None` (`--once`, where a persistent outage is one too) it waits forever
/// and logs nothing: the run ends on the failure and prints it as its final error, once.
pub fn report_fatal(stream: Option<EventType>, msg: &str, retry: Option<Duration>) -> Duration {
    let Some(wait) = retry else {
        return Duration::MAX;
    };
    let stream = stream.map(|k| k.as_str());
    error!(stream, "{msg}; retrying in {}s", wait.as_secs());
    wait
}

/// Consecutive transient errors after which `failure()` reports the stream (retries go on).
pub const PERSISTENT_FAILURES: u32 = 6;

/// Empty pages in a row with `has_more` after which a stream counts as caught up and waits
/// `poll_interval` before each next one. The API says a page after `has_more` may be empty,
/// so a few are expected; a server that never stops sending them would otherwise take every
/// request the budget allows and keep `--once` from ending.
const EMPTY_PAGES_IN_A_ROW: u32 = 10;

/// The longest cursor taken from a response: the API's are well under 1 KiB, and a cursor is
/// saved in the state file and sent back with every request.
const MAX_CURSOR: usize = 64 * 1024;

/// What a stream reports to the collector (progress, `is_caught_up`, failures).
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub events: u64,
    pub duplicates: u64,
    pub caught_up: bool,
    pub last_timestamp: Option<jiff::Timestamp>,
    /// A condition that needs a person (401, rejected reset); cleared by the next success.
    pub failure: Option<String>,
}

/// Stream settings from `Config`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limit: u16,
    pub poll_interval: Duration,
    pub start_time: StartTime,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// `None` (`--once`): errors that need a person, and transient ones that persist for
    /// [`PERSISTENT_FAILURES`] attempts, are reported, not retried.
    pub unauthorized_retry: Option<Duration>,
}

/// Everything one stream task uses.
pub struct Stream {
    /// Its slot in the committer, which pages carry; set once its state is claimed and loaded.
    pub index: usize,
    pub kind: EventType,
    /// The account the token reads (a new token must read the same one).
    pub account: Arc<str>,
    pub client: Client,
    pub budget: Arc<Budget>,
    pub encoder: Arc<Encoder>,
    pub queue: Arc<Queue>,
    pub control: Arc<Control>,
    pub status: Arc<Mutex<Status>>,
    pub settings: Settings,
}

/// The fetch-side position: ahead of the committed one by whatever is queued or in the sink.
struct Position {
    cursor: Option<String>,
    /// Where the next reset cursor starts (first run, or after a rejected cursor).
    reset_from: Option<jiff::Timestamp>,
    last_timestamp: Option<jiff::Timestamp>,
    /// As [`State::resume_from`].
    resume_from: Option<jiff::Timestamp>,
    recent: RecentUuids,
    seq: u64,
    /// Cursors rejected since a cursor was last accepted: more than one means the server
    /// refuses even the cursor of the reset it just served.
    rejections: u32,
    /// Pages in a row that held no item but said `has_more`.
    empty_pages: u32,
}

/// One item encoded into a page's bytes, ending at `end`.
struct Encoded<'a> {
    end: usize,
    uuid: Option<Cow<'a, str>>,
    timestamp: Option<jiff::Timestamp>,
}

impl Stream {
    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs until shutdown.
    pub async fn run(self, state: State) {
        let mut pos = Position {
            recent: RecentUuids::new(&state.recent_uuids, state.last_timestamp),
            cursor: state.cursor,
            reset_from: None,
            last_timestamp: state.last_timestamp,
            // A file from an earlier version has only `last_timestamp`; the restart caps it.
            resume_from: state.resume_from.or(state.last_timestamp),
            seq: 0,
            rejections: 0,
            empty_pages: 0,
        };
        self.update(|s| s.last_timestamp = pos.last_timestamp);
        let mut failures = 0u32;
        loop {
            let ready = async {
                self.control.unpaused().await;
                let room = self.queue.reserve(self.settings.limit.into()).await;
                self.budget.acquire().await;
                room
            };
            let room = tokio::select! {
                room = ready => room,
                () = self.control.stopped() => return,
            };
            let request = match &pos.cursor {
                Some(c) => Request::Cursor(c.clone()),
                None => Request::Reset {
                    limit: self.settings.limit,
                    start_time: pos.reset_from.unwrap_or_else(|| {
                        self.settings.start_time.resolve(jiff::Timestamp::now())
                    }),
                },
            };
            let used = self.client.credential().generation();
            let result = tokio::select! {
                r = self.client.fetch_into(self.kind, &request, self.queue.buffer(0)) => r,
                () = self.control.stopped() => return,
            };
            let outcome = result.and_then(|raw| {
                let delivered = self.deliver(&raw, &mut pos, room);
                self.queue.recycle(raw.into_buffer());
                delivered
            });
            let wait = match outcome {
                Ok(has_more) => {
                    failures = 0;
                    if matches!(request, Request::Cursor(_)) {
                        pos.rejections = 0;
                    }
                    self.update(|s| {
                        s.caught_up = !has_more;
                        s.failure = None;
                    });
                    if has_more {
                        continue;
                    }
                    self.settings.poll_interval
                }
                Err(e)
                    if e.action() == Action::Unauthorized
                        && rotate::renewed(
                            &self.client,
                            &self.budget,
                            used,
                            Some(&self.account),
                            &self.control,
                        )
                        .await =>
                {
                    Duration::ZERO
                }
                Err(e) if e.action() == Action::Unauthorized => {
                    let wait = self.handle_error(e, &mut pos, &mut failures);
                    // Ends early once a new token is written to `token_file`.
                    let waited = rotate::wait_for_renewal(
                        &self.client,
                        &self.budget,
                        used,
                        Some(&self.account),
                        &self.control,
                        wait,
                    );
                    if !waited.await {
                        return;
                    }
                    continue;
                }
                Err(e) => self.handle_error(e, &mut pos, &mut failures),
            };
            if !self.control.sleep(wait).await {
                return;
            }
        }
    }

    /// Encodes a page, drops re-read uuids, queues it; returns `has_more`.
    fn deliver(
        &self,
        raw: &RawPage,
        pos: &mut Position,
        room: Reservation<'_>,
    ) -> Result<bool, ApiError> {
        // Items are encoded as the page is parsed; nothing about the position changes until
        // the whole page has parsed.
        let mut data = self.queue.buffer(self.encoder.capacity_for(raw.len()));
        let mut encoded = Vec::new();
        let mut skipped = Vec::new();
        let envelope = raw.parse(&mut Tape::default(), |item| {
            // Tiny items make records many times their size: past the most a page can hold,
            // items are only counted (by the parser), and the page is refused below.
            if encoded.len() + skipped.len() == usize::from(MAX_LIMIT) {
                return;
            }
            let encoded_item = item
                .map_err(Into::into)
                .and_then(|item| self.encoder.encode_parsed(self.kind, item, &mut data));
            match encoded_item {
                Ok(meta) => encoded.push(Encoded {
                    end: data.len(),
                    uuid: meta.uuid,
                    timestamp: meta.timestamp,
                }),
                Err(e) => skipped.push(e),
            }
        })?;
        if envelope.items > usize::from(MAX_LIMIT) {
            return Err(ApiError::Body(format!(
                "the page holds {} items, more than the {MAX_LIMIT} the API serves at most",
                envelope.items
            )));
        }
        let cursor = envelope
            .cursor
            .ok_or_else(|| ApiError::Body("response has no cursor".into()))?;
        if cursor.len() > MAX_CURSOR {
            return Err(ApiError::Body(format!(
                "the response's cursor is {} bytes long, more than the {MAX_CURSOR} taken",
                cursor.len()
            )));
        }
        for e in skipped {
            warn!(stream = %self.kind, "skipping an item that cannot be normalized: {e}");
        }
        let (mut records, mut duplicates) = (0usize, 0u64);
        let mut uuids = Vec::with_capacity(encoded.len());
        let (mut newest, mut resume_from) = (pos.last_timestamp, pos.resume_from);
        let now = jiff::Timestamp::now();
        // Drop re-read events, moving the rest down over them.
        let (mut start, mut kept) = (0, 0);
        for item in encoded {
            let (from, to) = (start, item.end);
            start = item.end;
            if let Some(uuid) = item.uuid {
                if !pos.recent.insert(&uuid, item.timestamp) {
                    duplicates += 1;
                    continue;
                }
                uuids.push(EventUuid::from(&*uuid));
            }
            if kept != from {
                data.copy_within(from..to, kept);
            }
            kept += to - from;
            if item.timestamp > newest {
                newest = item.timestamp;
            }
            if item.timestamp > resume_from && item.timestamp.is_some_and(|t| t <= now) {
                resume_from = item.timestamp;
            }
            records += 1;
        }
        pos.recent.page_done();
        data.truncate(kept);
        // `has_more` with the same cursor again would page forever (its items, read again,
        // are dropped as duplicates): treat it as caught up and poll later.
        let stuck = pos.cursor.as_deref() == Some(cursor.as_str());
        pos.empty_pages = match envelope.items {
            0 if envelope.has_more => pos.empty_pages.saturating_add(1),
            _ => 0,
        };
        if pos.empty_pages == EMPTY_PAGES_IN_A_ROW {
            warn!(
                stream = %self.kind,
                "{EMPTY_PAGES_IN_A_ROW} empty pages in a row, each saying there is more: counting the stream as caught up, and polling every `poll_interval` until a page holds events"
            );
        }
        let idle = pos.empty_pages >= EMPTY_PAGES_IN_A_ROW;
        pos.cursor = Some(cursor.clone());
        pos.reset_from = None;
        pos.last_timestamp = newest;
        pos.resume_from = resume_from;
        let seq = pos.seq;
        pos.seq += 1;
        room.push(Page {
            data,
            records,
            meta: PageMeta {
                stream: self.index,
                seq,
                cursor,
                last_timestamp: newest,
                resume_from,
                uuids,
            },
        });
        self.update(|s| {
            s.events += records as u64;
            s.duplicates += duplicates;
            s.last_timestamp = newest;
        });
        // One line a page, for `log_level debug`: what each request brought.
        debug!(stream = %self.kind, events = records, duplicates, has_more = envelope.has_more, "page received");
        Ok(envelope.has_more && !stuck && !idle)
    }

    /// Logs the error and says how long to wait before the next request.
    fn handle_error(&self, e: ApiError, pos: &mut Position, failures: &mut u32) -> Duration {
        let kind = self.kind;
        match e.action() {
            Action::RateLimited => {
                let wait = rate_limited_wait(e.retry_after());
                warn!(stream = %kind, "rate limited by the server (HTTP 429); every stream waits {:.1}s", wait.as_secs_f64());
                self.budget.block_for(wait);
                Duration::ZERO
            }
            Action::Retry => {
                *failures += 1;
                let msg = || format!("{kind}: {} attempts in a row failed, last: {e}", *failures);
                if let Some(wait) = self.persisting(*failures, msg) {
                    return wait;
                }
                let wait = self.backoff(*failures);
                warn!(stream = %kind, attempt = *failures, "{e}; retrying the same request in {:.1}s", wait.as_secs_f64());
                wait
            }
            Action::Rejected if pos.cursor.is_some() => {
                // The saved cursor is no longer accepted (expired, or from another key): start
                // over from the newest event we delivered (within retention, never in the
                // future); the uuid window drops the overlap.
                let now = jiff::Timestamp::now();
                let from = match pos.resume_from {
                    Some(t) => StartTime::At(t).resolve(now).min(now),
                    None => self.settings.start_time.resolve(now),
                };
                pos.cursor = None;
                pos.reset_from = Some(from);
                pos.rejections += 1;
                if pos.rejections == 1 {
                    warn!(stream = %kind, "the saved cursor was rejected ({e}); restarting from a reset cursor at {from}, dropping duplicates by uuid");
                    return Duration::ZERO;
                }
                // Resetting again at once would spend the account's request budget on the
                // same page for as long as the server does this.
                let msg = || {
                    format!(
                        "{kind}: {} cursors in a row were rejected, each from a reset just made, last: {e}",
                        pos.rejections
                    )
                };
                if let Some(wait) = self.persisting(pos.rejections, msg) {
                    return wait;
                }
                let wait = self.backoff(pos.rejections - 1);
                warn!(stream = %kind, "the cursor of a reset just made was rejected too ({e}); resetting again at {from} in {:.1}s", wait.as_secs_f64());
                wait
            }
            Action::Rejected => self.fail(format!(
                "{kind}: the API rejected the reset request ({e}); check `start_time` and `limit`"
            )),
            Action::Unauthorized => {
                let why = self
                    .client
                    .token()
                    .explain_unauthorized(Some(kind), &self.client.host());
                self.fail(format!("{kind}: {e}: {why}"))
            }
            // Retrying fast cannot help until a setting changes; `--once` stops at once.
            Action::Untrusted | Action::ProxyRefused => self.fail(format!("{kind}: {e}")),
            // The cursor is kept: a 404 says nothing about it, and a reset would skip events
            // that reach the API late with older timestamps.
            Action::NotFound => self.fail(format!("{kind}: {e}: {NOT_FOUND_HINT}")),
        }
    }

    /// The `attempt`th error in a row, retried after a capped exponential backoff.
    fn backoff(&self, attempt: u32) -> Duration {
        backoff(
            self.settings.retry_initial,
            self.settings.retry_max,
            attempt,
        )
    }

    /// From the [`PERSISTENT_FAILURES`]th error in a row, the stream reports `msg` as its
    /// failure; `--once` ends on it (the wait returned: say so, not that it retries).
    fn persisting(&self, count: u32, msg: impl FnOnce() -> String) -> Option<Duration> {
        if count < PERSISTENT_FAILURES {
            return None;
        }
        let msg = msg();
        if self.settings.unauthorized_retry.is_none() {
            return Some(self.fail(msg));
        }
        self.update(|s| s.failure = Some(msg));
        None
    }

    /// [`report_fatal`], and the stream's failure.
    fn fail(&self, msg: String) -> Duration {
        let wait = report_fatal(Some(self.kind), &msg, self.settings.unauthorized_retry);
        self.update(|s| s.failure = Some(msg));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_initial_up_to_max_with_jitter_below_each() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for (attempt, cap) in [(1, 1), (2, 2), (3, 4), (7, 60), (40, 60), (u32::MAX, 60)] {
            let cap = Duration::from_secs(cap);
            for _ in 0..50 {
                let wait = backoff(initial, max, attempt);
                assert!(
                    wait >= cap / 2 && wait <= cap,
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
        let huge = backoff(Duration::from_secs(u64::MAX / 2), Duration::MAX, 30);
        assert!(huge >= Duration::from_secs(u64::MAX / 4));
    }
}
