//! `Collector`: what both front ends (Fluent Bit's `ffi`, the `op-events` CLI) drive. It owns a
//! private tokio runtime (so several collectors coexist in one process), the streams, the bounded
//! queue and the checkpoint writer. The sink side (`try_take`, `take_timeout`, `ack`) is plain
//! synchronous code that never waits on async tasks.

mod claim;
mod commit;
pub(crate) mod own_thread;
pub mod queue;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tracing::{error, info, warn};

pub use queue::{AckToken, Batch, BatchLimits};

use crate::api::{Action, Client, Introspection, NOT_FOUND_HINT, SetupError};
use crate::budget::Budget;
use crate::checkpoint::{CheckpointError, Key, Store};
use crate::config::{Config, ConfigError, MAX_LOOKBACK, StartTime};
use crate::encode::{EncodeContext, Encoder, Target};
use crate::event::EventType;
use crate::rotate;
use crate::stream::{
    Control, PERSISTENT_FAILURES, Settings, Status, Stream, backoff, rate_limited_wait,
    report_fatal,
};
use crate::token::{Token, TokenError, warn_if_others_can_read};
use claim::{Claimed, claim};
use commit::Committer;
use queue::{Queue, Taken};

/// Why a collector could not start. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    State(#[from] CheckpointError),
    #[error("cannot start the collector's threads: {0}")]
    Runtime(std::io::Error),
}

/// One stream's progress, for `--once`, progress lines and health checks.
#[derive(Debug, Clone)]
pub struct StreamProgress {
    pub kind: EventType,
    pub status: Status,
}

struct Shared {
    queue: Arc<Queue>,
    committer: Arc<Committer>,
    control: Arc<Control>,
    /// Why introspection keeps failing, or leaves nothing to collect, if it does.
    launch_failure: Mutex<Option<String>>,
    statuses: Mutex<Vec<(EventType, Arc<Mutex<Status>>)>>,
    /// Set once introspection picked the streams.
    started: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn set_launch_failure(&self, failure: Option<String>) {
        *self
            .launch_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = failure;
    }
}

/// The name of every thread the collector starts (benches and the plugin's log tell them apart
/// by it).
pub const THREAD_NAME: &str = "op-events";

/// The running collector.
pub struct Collector {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Where this collector logs, when not to the global default (see [`Collector::logging`]).
    logs: Option<tracing::Dispatch>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

/// Reads the token from `config.token` or `config.token_file`, warning (once, at start: a
/// rotation reads the file again without this) when others can read that file.
pub fn load_token(config: &Config) -> Result<Token, TokenError> {
    match (&config.token, &config.token_file) {
        (Some(t), _) => Token::new(SecretString::from(
            secrecy::ExposeSecret::expose_secret(t).to_owned(),
        )),
        (None, Some(path)) => {
            warn_if_others_can_read(path, "token_file");
            Token::from_file(path)
        }
        (None, None) => Err(TokenError::Missing),
    }
}

impl Collector {
    /// Validates, opens the state directory, spawns the runtime. Quick: network problems are
    /// retried (and logged) in the background, never returned here.
    pub fn start(
        config: Config,
        target: Target,
        logs: Option<tracing::Dispatch>,
    ) -> Result<Collector, StartError> {
        let _guard = logs.as_ref().map(tracing::dispatcher::set_default);
        config.validate()?;
        let token = load_token(&config)?;
        let client = Client::new(&config, token)?;
        let store = Store::open(&config.state_dir)?;
        let thread_logs = logs.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .thread_name(THREAD_NAME)
            .enable_all()
            .on_thread_start(move || {
                if let Some(d) = &thread_logs {
                    // The guard lives as long as the thread: leak it on purpose.
                    std::mem::forget(tracing::dispatcher::set_default(d));
                }
            })
            .build()
            .map_err(StartError::Runtime)?;
        let shared = Arc::new(Shared {
            queue: Arc::new(Queue::new(config.max_buffered_events)),
            committer: Arc::new(Committer::new(
                store.clone(),
                config.checkpoint_interval,
                config.checkpoint_delay.unwrap_or_default(),
            )),
            control: Arc::new(Control::default()),
            launch_failure: Mutex::new(None),
            statuses: Mutex::new(Vec::new()),
            started: false.into(),
        });
        // Where checkpoints go, in full: a relative default lands in the host's working
        // directory (`/` under systemd), and a restart elsewhere would start over.
        let state_dir = std::path::absolute(&config.state_dir).unwrap_or(config.state_dir.clone());
        info!(
            base_url = %client.base_url(),
            proxy = %client.route(),
            api_version = %config.api_version,
            state_dir = %state_dir.display(),
            "starting"
        );
        runtime.spawn(Arc::clone(&shared.committer).run());
        runtime.spawn(launch(Arc::clone(&shared), config, target, client, store));
        Ok(Collector {
            shared,
            runtime: Some(runtime),
            logs,
        })
    }

    /// Makes this collector's log dispatch the calling thread's default while the guard lives,
    /// for the calls a sink makes from its own thread (take, ack, shutdown). Besides routing
    /// those lines, it keeps them: tracing-core caches "never" for a log call first reached on
    /// a thread without a dispatch while the process has exactly one (tokio-rs/tracing#3611),
    /// which is Fluent Bit with one `onepassword` input, calling in on its own threads.
    fn logging(&self) -> Option<tracing::dispatcher::DefaultGuard> {
        self.logs.as_ref().map(tracing::dispatcher::set_default)
    }

    fn take(&self, limits: BatchLimits, timeout: Option<Duration>) -> Option<Batch> {
        let _logging = self.logging();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self.shared.queue.take(limits, left)? {
                Taken::Batch(b) => return Some(b),
                // Pages without events (idle polls) only move cursors: commit them at once.
                Taken::Empty(metas) => self.shared.committer.apply(metas),
            }
            if left.is_some_and(|l| l.is_zero()) {
                return None;
            }
        }
    }

    /// Never blocks: whole pages, at least one if any has events, up to `limits`.
    pub fn try_take(&self, limits: BatchLimits) -> Option<Batch> {
        self.take(limits, None)
    }

    /// Waits up to `timeout` for a batch.
    pub fn take_timeout(&self, limits: BatchLimits, timeout: Duration) -> Option<Batch> {
        self.take(limits, Some(timeout))
    }

    /// The batch is safe with the sink: its pages' cursors may be checkpointed once it is
    /// `checkpoint_delay` old. Never blocks; the state files are written in the background (at
    /// most once per `checkpoint_interval`), so a crash can re-deliver every batch acked since
    /// the last write landed.
    pub fn ack(&self, token: AckToken) {
        let _logging = self.logging();
        let metas = self.shared.queue.acked(token);
        self.shared.committer.apply(metas);
    }

    /// Like [`ack`](Self::ack), but with `checkpoint_interval` and `checkpoint_delay` 0 the
    /// checkpoints are on disk when it returns, so a crash re-delivers at most the batch in
    /// hand. For sinks that may wait on the disk (the CLI); Fluent Bit's thread uses `ack`.
    pub fn ack_and_write(&self, token: AckToken) {
        self.ack(token);
        if self.shared.committer.writes_every_ack() {
            let _logging = self.logging();
            self.shared.committer.flush();
        }
    }

    /// An empty buffer for a sink that joins a batch's pages: one given back, if any.
    pub fn buffer(&self) -> Vec<u8> {
        self.shared.queue.buffer(0)
    }

    /// Gives back a buffer the sink is done with (a page's, or one from
    /// [`buffer`](Self::buffer)): the next pages are encoded into it, saving the page faults
    /// of a fresh one.
    pub fn recycle(&self, buffer: Vec<u8>) {
        self.shared.queue.recycle(buffer);
    }

    /// Streams stop fetching (a request in flight still completes and is queued), and held
    /// acks stop ageing.
    pub fn pause(&self) {
        self.shared.control.set_paused(true);
        self.shared.committer.set_paused(true);
    }

    pub fn resume(&self) {
        self.shared.committer.set_paused(false);
        self.shared.control.set_paused(false);
    }

    /// Every stream saw `has_more=false` and every taken batch was acked.
    pub fn is_caught_up(&self) -> bool {
        self.shared
            .started
            .load(std::sync::atomic::Ordering::Acquire)
            && self.progress().iter().all(|p| p.status.caught_up)
            && self.shared.queue.is_drained()
    }

    /// Per-stream counters and failures.
    pub fn progress(&self) -> Vec<StreamProgress> {
        let statuses = self
            .shared
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        statuses
            .iter()
            .map(|(kind, s)| StreamProgress {
                kind: *kind,
                status: s.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            })
            .collect()
    }

    /// A condition that needs a person (token rejected, request refused), if any.
    pub fn failure(&self) -> Option<String> {
        let launch = self
            .shared
            .launch_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        launch.or_else(|| self.progress().into_iter().find_map(|p| p.status.failure))
    }

    /// Events fetched but not yet taken by the sink.
    pub fn buffered_events(&self) -> usize {
        self.shared.queue.buffered_events()
    }

    /// Stops the streams, writes acked checkpoints and joins the threads, all within `grace`
    /// (a write still running then is left to finish alone). Batches
    /// taken but not acked, or acked but still held while paused, are not checkpointed: they are
    /// fetched again next time. Returns whether the state files were written (a failed write
    /// has logged its error).
    pub fn shutdown(mut self, grace: Duration) -> bool {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> bool {
        let Some(runtime) = self.runtime.take() else {
            return true;
        };
        let _logging = self.logging();
        let start = Instant::now();
        self.shared.control.stop();
        self.shared.committer.release_for_shutdown();
        let written = self.shared.committer.flush_within(&runtime, grace);
        if written.is_none() {
            warn!(
                "state files not written within the {grace:?} shutdown grace (is `state_dir` on a slow or hung disk?); what was delivered since the last write is fetched again next time"
            );
        }
        runtime.shutdown_timeout(grace.saturating_sub(start.elapsed()));
        tracing::debug!(
            buffered_events = self.shared.queue.buffered_events(),
            "collector stopped (buffered events are fetched again on the next start)"
        );
        written == Some(true)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// Introspects (retrying), picks the streams, loads their state and spawns them.
async fn launch(shared: Arc<Shared>, config: Config, target: Target, client: Client, store: Store) {
    // Introspection counts against the account's limits too.
    let budget = Arc::new(Budget::new(
        config.rate_limit_per_minute,
        config.rate_limit_per_hour,
    ));
    // What only a setting can fix is retried this often, or (`--once`) not at all.
    let unauthorized_retry = config.retry_fatal.then_some(config.unauthorized_retry);
    let Some((intro, kinds)) =
        introspect(&shared, &config, &client, &budget, unauthorized_retry).await
    else {
        return;
    };
    let account = intro.account(&client.token());
    tokio::spawn(rotate::remind_of_expiry(
        client.clone(),
        Arc::clone(&shared.control),
    ));
    let streams: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    info!(account = %account, streams = %streams.join(","), "token accepted");
    let encoder = Arc::new(Encoder::new(
        config.format,
        target,
        EncodeContext {
            account_uuid: account.clone(),
            api_version: config.api_version,
        },
    ));
    let settings = Settings {
        limit: config.limit,
        poll_interval: config.poll_interval,
        start_time: config.start_time,
        retry_initial: config.retry_initial,
        retry_max: config.retry_max,
        unauthorized_retry,
    };
    let mut statuses = Vec::new();
    let mut streams = Vec::new();
    for kind in kinds {
        let status = Arc::new(Mutex::new(Status::default()));
        statuses.push((kind, Arc::clone(&status)));
        let key = Key {
            account: account.clone(),
            version: config.api_version,
            kind,
        };
        let stream = Stream {
            index: 0,
            kind,
            account: account.as_str().into(),
            client: client.clone(),
            budget: Arc::clone(&budget),
            encoder: Arc::clone(&encoder),
            queue: Arc::clone(&shared.queue),
            control: Arc::clone(&shared.control),
            status,
            settings: settings.clone(),
        };
        streams.push((key, stream));
    }
    shared.set_launch_failure(None);
    *shared.statuses.lock().unwrap_or_else(|e| e.into_inner()) = statuses;
    shared
        .started
        .store(true, std::sync::atomic::Ordering::Release);
    for (key, stream) in streams {
        let committer = Arc::clone(&shared.committer);
        tokio::spawn(open_and_run(
            committer,
            store.clone(),
            key,
            stream,
            config.retry_fatal,
        ));
    }
}

/// Introspects until it succeeds and the token has something to collect, retrying as the
/// errors say: the introspection and the event types to collect, or `None` once the
/// collector stops.
async fn introspect(
    shared: &Shared,
    config: &Config,
    client: &Client,
    budget: &Budget,
    unauthorized_retry: Option<Duration>,
) -> Option<(Introspection, Vec<EventType>)> {
    let mut attempt = 0u32;
    loop {
        tokio::select! {
            () = budget.acquire() => {}
            () = shared.control.stopped() => return None,
        }
        let used = client.credential().generation();
        let mut rejected = false;
        let (wait, failure) = match client.introspect().await {
            Ok(intro) => {
                let kinds = streams_to_run(config, &intro);
                if !kinds.is_empty() {
                    return Some((intro, kinds));
                }
                let msg = intro.grants_nothing();
                (report_fatal(None, &msg, unauthorized_retry), Some(msg))
            }
            // Not a failure: the account's budget is spent (another collector, a script).
            Err(e) if e.action() == Action::RateLimited => {
                let wait = rate_limited_wait(e.retry_after());
                warn!(
                    "introspection rate limited by the server (HTTP 429); waiting {:.1}s",
                    wait.as_secs_f64()
                );
                budget.block_for(wait);
                continue;
            }
            // Nothing is collected yet, so a new token of any account will do.
            Err(e)
                if e.action() == Action::Unauthorized
                    && rotate::renewed(client, budget, used, None, &shared.control).await =>
            {
                continue;
            }
            Err(e) => {
                attempt += 1;
                let needs_a_person = match e.action() {
                    Action::Unauthorized => {
                        rejected = true;
                        let why = client.token().explain_unauthorized(None, &client.host());
                        Some(format!("token rejected by {}: {why}", client.host()))
                    }
                    Action::Untrusted | Action::ProxyRefused => {
                        Some(format!("introspection failed: {e}"))
                    }
                    Action::NotFound => {
                        Some(format!("introspection failed: {e}: {NOT_FOUND_HINT}"))
                    }
                    _ => None,
                };
                let persistent = (attempt >= PERSISTENT_FAILURES)
                    .then(|| format!("{attempt} introspection attempts failed, last: {e}"));
                match (needs_a_person, persistent) {
                    (Some(msg), _) => (report_fatal(None, &msg, unauthorized_retry), Some(msg)),
                    // `--once` ends on it: say so, not that it retries.
                    (None, Some(msg)) if unauthorized_retry.is_none() => {
                        (report_fatal(None, &msg, None), Some(msg))
                    }
                    (None, persistent) => {
                        let wait = backoff(config.retry_initial, config.retry_max, attempt);
                        warn!(
                            "introspection failed: {e}; retrying in {:.1}s",
                            wait.as_secs_f64()
                        );
                        (wait, persistent)
                    }
                }
            }
        };
        if failure.is_some() {
            shared.set_launch_failure(failure);
        }
        // After a rejection, a new token written to `token_file` ends the wait early.
        let waited = if rejected {
            rotate::wait_for_renewal(client, budget, used, None, &shared.control, wait).await
        } else {
            shared.control.sleep(wait).await
        };
        if !waited {
            return None;
        }
    }
}

/// The event types listed in `events`, or else every type the token grants.
fn streams_to_run(config: &Config, intro: &Introspection) -> Vec<EventType> {
    let granted = intro.granted();
    match &config.events {
        Some(list) => {
            for k in list.iter().filter(|k| !granted.contains(k)) {
                warn!(stream = %k, "the token does not list the `{k}` feature; requests will likely fail with 401");
            }
            list.clone()
        }
        None => granted,
    }
}

/// Claims the stream's state file, loads the state, registers it for checkpoints, and runs it.
async fn open_and_run(
    committer: Arc<Committer>,
    store: Store,
    key: Key,
    mut stream: Stream,
    wait: bool,
) {
    let kind = key.kind;
    let lock = match claim(&store, &key, &stream, wait).await {
        Claimed::Yes(lock) => lock,
        Claimed::No => return,
    };
    if lock.is_some() {
        match store.remove_leftovers(&key) {
            Ok(0) => {}
            Ok(n) => info!(stream = %kind, "removed {n} temp state file(s) left by a crash"),
            Err(e) => warn!(stream = %kind, "{e}"),
        }
    }
    let state = match store.load(&key) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            error!(stream = %kind, "{e}; this stream is not started");
            stream.update(|s| s.failure = Some(e.to_string()));
            return;
        }
    };
    match &state.cursor {
        Some(_) => info!(stream = %kind, "resuming from the saved cursor"),
        None => {
            let now = jiff::Timestamp::now();
            let start_time = stream.settings.start_time.resolve(now);
            info!(stream = %kind, %start_time, "first run: starting from a reset cursor");
            if start_time > now {
                warn!(stream = %kind, "start_time {start_time} is in the future: nothing is delivered until then, and nothing from before it ever");
            }
            // Raised to the retention horizon: said, since it was asked for explicitly.
            let asked = match stream.settings.start_time {
                StartTime::At(t) if t < start_time => Some(t.to_string()),
                StartTime::Lookback(d) if d > MAX_LOOKBACK => {
                    Some(format!("{}d ago", d.as_secs() / 86_400))
                }
                _ => None,
            };
            if let Some(asked) = asked {
                warn!(stream = %kind, "start_time {asked} is before what the API keeps (120 days): starting from {start_time}");
            }
        }
    }
    stream.index = committer.add(key, state.clone(), lock);
    stream.run(state).await;
}
