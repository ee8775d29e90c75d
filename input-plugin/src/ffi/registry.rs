//! Live plugin instances and the global pause state.
//!
//! Fluent Bit calls Pause, Resume, PreExit and Exit without saying which instance they are for
//! (ABI doc §3, §7), and with several instances its pause/resume acts on the wrong instance's
//! timer (`proxy->instance` is the last initialized one), while records appended to a paused
//! instance are dropped. So pause is treated as global: a counter of outstanding pauses,
//! clamped to the number of running instances. While it is above zero every instance's collect
//! hands over nothing (nothing can reach a paused instance, so nothing is dropped) and every
//! collector stops fetching (its bounded queue fills, nothing is lost). Shutdown sends Pause twice
//! without Resume, so exiting instances lower the clamp, and a hot reload's new instance starts
//! unpaused once the old ones are gone.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use super::log::LogSink;
use crate::pipeline::{AckToken, Batch, BatchLimits, Collector};

/// Within Fluent Bit's 2 s input grace period.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// One `[INPUT]` section: its collector and what is between the collector and Fluent Bit.
pub(super) struct Instance {
    /// The value stored in `remote_context`; never reused, so a stale context finds nothing.
    pub(super) id: usize,
    /// `onepassword.N`, the prefix of every log line.
    pub(super) slot: usize,
    /// Fluent Bit before 4.1: no per-instance context, found by the non-Ctx callbacks.
    pub(super) legacy: bool,
    /// The instance thread Fluent Bit runs Init, collect and Exit on (unless `threaded off`).
    thread: ThreadId,
    pub(super) log: Arc<LogSink>,
    limits: BatchLimits,
    state: Mutex<State>,
}

struct State {
    collector: Option<Collector>,
    /// A batch taken but not handed over (the buffer allocation failed): offered first next time.
    held: Option<Batch>,
    /// Buffers handed to Fluent Bit whose cleanup callback has not come yet.
    in_flight: Vec<(usize, AckToken)>,
    exiting: bool,
}

impl Instance {
    pub(super) fn new(
        id: usize,
        slot: usize,
        legacy: bool,
        log: Arc<LogSink>,
        limits: BatchLimits,
        collector: Collector,
    ) -> Self {
        Self {
            id,
            slot,
            legacy,
            thread: std::thread::current().id(),
            log,
            limits,
            state: Mutex::new(State {
                collector: Some(collector),
                held: None,
                in_flight: Vec::new(),
                exiting: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next whole pages for Fluent Bit, never blocking: a held batch first.
    pub(super) fn take(&self) -> Option<Batch> {
        let mut state = self.state();
        if let Some(batch) = state.held.take() {
            return Some(batch);
        }
        state.collector.as_ref()?.try_take(self.limits)
    }

    /// Keeps a batch that could not be handed over, so it is neither lost nor acked.
    pub(super) fn hold(&self, batch: Batch) {
        self.state().held = Some(batch);
    }

    /// An empty buffer to join a batch's pages in: one given back, if the collector has one.
    pub(super) fn buffer(&self) -> Vec<u8> {
        self.state()
            .collector
            .as_ref()
            .map(Collector::buffer)
            .unwrap_or_default()
    }

    /// Gives a buffer Fluent Bit (or a join) is done with back to the collector, whose next
    /// pages are encoded into it: a fresh multi-megabyte buffer costs page faults.
    pub(super) fn recycle(&self, buffer: Vec<u8>) {
        if let Some(collector) = &self.state().collector {
            collector.recycle(buffer);
        }
    }

    /// Remembers which ack belongs to a buffer now owned by Fluent Bit until cleanup.
    pub(super) fn hand_over(&self, buffer: usize, ack: AckToken) {
        self.state().in_flight.push((buffer, ack));
    }

    /// Fluent Bit has taken `buffer`: its pages' cursors may be checkpointed.
    pub(super) fn taken(&self, buffer: usize) {
        let mut state = self.state();
        if let Some(at) = state.in_flight.iter().position(|(b, _)| *b == buffer) {
            let (_, ack) = state.in_flight.swap_remove(at);
            drop(state);
            self.ack(ack);
        }
    }

    pub(super) fn ack(&self, ack: AckToken) {
        if let Some(collector) = &self.state().collector {
            collector.ack(ack);
        }
    }

    fn set_paused(&self, paused: bool) {
        if let Some(collector) = &self.state().collector {
            if paused {
                collector.pause()
            } else {
                collector.resume()
            }
        }
    }

    /// Stops the streams, writes acked checkpoints and joins the threads. Batches that were
    /// taken but not acked are dropped here: their events are fetched again next start.
    pub(super) fn shutdown(&self) {
        let collector = {
            let mut state = self.state();
            state.held = None;
            state.in_flight.clear();
            state.collector.take()
        };
        if let Some(collector) = collector {
            collector.shutdown(SHUTDOWN_GRACE);
        }
    }
}

pub(super) struct Registry {
    instances: Vec<Arc<Instance>>,
    pause_depth: usize,
    next_id: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    instances: Vec::new(),
    pause_depth: 0,
    next_id: 1,
});

pub(super) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// The next `remote_context` value and the lowest free `onepassword.N` slot, which matches
    /// Fluent Bit's own numbering of instances of one plugin.
    pub(super) fn reserve(&mut self) -> (usize, usize) {
        let id = self.next_id;
        self.next_id += 1;
        let slot = (0..)
            .find(|n| self.instances.iter().all(|i| i.slot != *n))
            .unwrap_or(0);
        (id, slot)
    }

    /// A second instance on a pre-4.1 Fluent Bit would have no context of its own.
    pub(super) fn has_running_legacy(&self) -> bool {
        self.instances
            .iter()
            .any(|i| i.legacy && !i.state().exiting)
    }

    pub(super) fn add(&mut self, instance: Arc<Instance>) {
        self.clamp();
        if self.pause_depth > 0 {
            instance.set_paused(true);
        }
        self.instances.push(instance);
    }

    pub(super) fn find(&self, id: usize) -> Option<Arc<Instance>> {
        self.instances.iter().find(|i| i.id == id).cloned()
    }

    /// The instance of the non-Ctx callbacks: the legacy one, or the only one there is.
    pub(super) fn single(&self) -> Option<Arc<Instance>> {
        self.instances
            .iter()
            .find(|i| i.legacy)
            .or(if self.instances.len() == 1 {
                self.instances.first()
            } else {
                None
            })
            .cloned()
    }

    pub(super) fn paused(&self) -> bool {
        self.pause_depth > 0
    }

    pub(super) fn pause(&mut self) {
        let was_paused = self.paused();
        self.pause_depth += 1;
        self.clamp();
        if !was_paused && self.paused() {
            self.instances.iter().for_each(|i| i.set_paused(true));
        }
    }

    pub(super) fn resume(&mut self) {
        let was_paused = self.paused();
        self.pause_depth = self.pause_depth.saturating_sub(1);
        if was_paused && !self.paused() {
            self.instances.iter().for_each(|i| i.set_paused(false));
        }
    }

    /// Outstanding pauses can't outnumber running instances.
    fn clamp(&mut self) {
        let running = self.instances.iter().filter(|i| !i.state().exiting).count();
        self.pause_depth = self.pause_depth.min(running);
    }

    /// PreExit carries no identity: the instance running on this thread, else the oldest one
    /// not yet exiting (with `threaded off` all instances share the engine thread).
    pub(super) fn begin_exit(&mut self) -> Option<Arc<Instance>> {
        let here = std::thread::current().id();
        let candidates = || self.instances.iter().filter(|i| !i.state().exiting);
        let chosen = candidates()
            .find(|i| i.thread == here)
            .or_else(|| candidates().next())
            .cloned()?;
        chosen.state().exiting = true;
        self.clamp();
        Some(chosen)
    }

    /// Exit comes once per instance: this thread's, preferring one already past PreExit.
    pub(super) fn remove_for_exit(&mut self) -> Option<Arc<Instance>> {
        let here = std::thread::current().id();
        let exiting = |i: &Arc<Instance>| i.state().exiting;
        let at = self
            .instances
            .iter()
            .position(|i| i.thread == here && exiting(i))
            .or_else(|| self.instances.iter().position(|i| i.thread == here))
            .or_else(|| self.instances.iter().position(exiting))
            .or(if self.instances.is_empty() {
                None
            } else {
                Some(0)
            })?;
        let instance = self.instances.remove(at);
        self.clamp();
        Some(instance)
    }
}
