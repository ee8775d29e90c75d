//! `op-events run | check | demo`: flags and TOML → `Config`, the NDJSON sink loop (write, flush,
//! then ack), signals, progress on a terminal.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::api::{Action, ApiError, Client, NOT_FOUND_HINT, Request, SetupError};
use crate::checkpoint::CheckpointError;
use crate::config::{Config, ConfigError, KEYS, Region, key_name};
use crate::encode::Target;
use crate::event::EventType;
use crate::pipeline::{BatchLimits, Collector, StartError, load_token};
use crate::token::warn_if_others_can_read;

const ENV_TOKEN: &str = "OP_EVENTS_TOKEN";

const AFTER_HELP: &str = "\
The token (an Events Reporting bearer token from 1Password) comes from, first to last:
--token-file FILE, the OP_EVENTS_TOKEN environment variable, or the `token` or `token_file` key
of --config. It is never taken on the command line, so it can't leak through `ps` or shell
history.

Examples:
  op-events demo                                  # everything local, nothing to configure
  OP_EVENTS_TOKEN=$(cat token) op-events check    # does the token work, which streams?
  op-events run --token-file /etc/op-events/token --state-dir /var/lib/op-events
  op-events run --config /etc/op-events.toml --once >> events.ndjson

See docs/configuration.md for every option and docs/vector.md for Vector.";

const CHECK_AFTER_HELP: &str = "\
Exits 0 when every stream works, 1 when one fails or the API cannot be reached, 2 on a usage
error (no token, a bad option).

Examples:
  OP_EVENTS_TOKEN=$(cat token) op-events check    # region, account, features, each stream
  op-events check --token-file /etc/op-events/token --events auditevents
  op-events check --config /etc/op-events.toml    # the options `run --config` would use";

const DEMO_AFTER_HELP: &str = "\
Examples:
  op-events demo | head -3                        # a few ECS records
  op-events demo --format ocsf --events 1000 > demo.ndjson
  op-events demo --follow --log-level warn        # new events as they come, Ctrl-C to stop";

/// Moves 1Password Events API data (sign-in attempts, item usages, audit events) to stdout as
/// NDJSON, one event a line, resuming exactly where it stopped.
#[derive(Debug, Parser)]
#[command(name = "op-events", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr, the final error line included.
    #[arg(long, global = true, value_enum, ignore_case = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level on stderr: error, warn, info, debug, trace or off, in any case (RUST_LOG-style
    /// filters work too).
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
}

/// `--log-format`. Any case, as every other word the binary takes (`--log-level INFO`,
/// `--format ECS`): Fluent Bit and Vector users write `JSON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect continuously (or until caught up with --once), NDJSON to stdout.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Check the token: region, account, features, and one request per stream (no state touched).
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(Options),
    /// Run against an embedded mock with generated data: see what the output looks like.
    #[command(after_help = DEMO_AFTER_HELP)]
    Demo(DemoArgs),
}

/// Options shared by `run` and `check`: how to reach the API. Names match the Fluent Bit
/// plugin keys (kebab-case here).
#[derive(Debug, Args, Default)]
pub struct Options {
    /// TOML file whose keys are the option names in snake_case (e.g. `poll_interval = "30s"`);
    /// flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// File holding the bearer token [default: the OP_EVENTS_TOKEN environment variable].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// us, ent, ca or eu [default: the token's audience].
    #[arg(long)]
    pub region: Option<String>,
    /// Events API address, overriding region (https; http only to loopback or with --insecure-http).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Comma-separated: signinattempts,itemusages,auditevents, or all [default: the token's
    /// features].
    #[arg(long, value_name = "LIST")]
    pub events: Option<String>,
    /// Events endpoints: v1 or v2 [default: v2].
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Extra PEM CA certificates to trust (besides the bundled Mozilla roots).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// HTTP(S) proxy URL (http:// or https://; not SOCKS) [default: the
    /// HTTPS_PROXY/ALL_PROXY/NO_PROXY environment].
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Allow plain http to a non-loopback base URL (testing only).
    #[arg(long)]
    pub insecure_http: bool,
    /// Any other option as KEY=VALUE (see docs/configuration.md), e.g. --set request_timeout=30s.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `run`'s own options: what to collect, from where on, and how fast. Those taking a number or
/// a time take a value starting with `-` too, so that `--limit -1` is refused by the option's
/// own check, naming it, and not as a stray argument.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Collection")]
pub struct Collection {
    /// Record shape: ecs, ocsf or raw [default: ecs].
    #[arg(long)]
    pub format: Option<String>,
    /// First run only: RFC 3339 time or a lookback like 7d, 12h [default: the whole 120-day retention].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub start_time: Option<String>,
    /// Where cursors are saved [default: $XDG_STATE_HOME/op-events, else
    /// ~/.local/state/op-events, else ./op-events-state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Wait between polls once caught up [default: 10s].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub poll_interval: Option<String>,
    /// Requests per minute for this account, all streams together [default: 600; 0 = off].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub rate_limit_per_minute: Option<String>,
    /// Requests per hour for this account [default: 30000; 0 = off].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub rate_limit_per_hour: Option<String>,
    /// Events per API page, 1-1000 [default: 1000].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub limit: Option<String>,
    /// Events fetched ahead of the output before fetching pauses [default: 10000].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_buffered_events: Option<String>,
    /// Drain every stream until caught up, save the checkpoints, exit 0 (for cron); exit 1 if
    /// stdout is closed before that.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: Options,
    #[command(flatten)]
    pub collection: Collection,
}

/// The most events per type `demo` generates: the embedded mock holds them all in memory, about
/// 250 MB at this many (and an unbounded count ran out of it).
const MAX_DEMO_EVENTS: i64 = 100_000;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Generated events per type, at most 100000.
    #[arg(
        long,
        default_value_t = 200,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(..=MAX_DEMO_EVENTS)
    )]
    pub events: u32,
    /// Keep generating new events and keep streaming them (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
    /// Record shape: ecs, ocsf or raw.
    #[arg(long, default_value = "ecs")]
    pub format: String,
}

/// An error for `main`: message and exit code (2 = usage, 1 = runtime).
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
    fn runtime(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::usage(e)
    }
}

/// Where an option's value came from, so that an error found only once every option is in
/// (`Config::validate`) names the option the way the user wrote it.
enum Origin<'p> {
    File(&'p std::path::Path),
    Flag,
    Set,
}

impl Options {
    /// TOML first, then flags (`run`'s with `collection`), then the token's source
    /// (`choose_token`).
    pub fn to_config(&self, collection: Option<&Collection>) -> Result<Config, Failure> {
        let mut config = Config::default();
        let mut origins: HashMap<&'static str, Origin> = HashMap::new();
        let mut file_has_token = false;
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
            let table: toml::Table = text.parse().map_err(|e| {
                Failure::usage(format!(
                    "--config {}: {}",
                    path.display(),
                    toml_error(&text, &e)
                ))
            })?;
            for (key, value) in table {
                file_has_token |= key_name(&key) == Some("token");
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                config
                    .set(&key, &value)
                    .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
                origins.extend(key_name(&key).map(|k| (k, Origin::File(path))));
            }
        }
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let none = Collection::default();
        let c = collection.unwrap_or(&none);
        let flags = [
            ("token_file", path(&self.token_file)),
            ("region", self.region.clone()),
            ("base_url", self.base_url.clone()),
            ("events", self.events.clone()),
            ("api_version", self.api_version.clone()),
            ("ca_file", path(&self.ca_file)),
            ("proxy", self.proxy.clone()),
            (
                "insecure_http",
                self.insecure_http.then(|| "true".to_owned()),
            ),
            ("format", c.format.clone()),
            ("start_time", c.start_time.clone()),
            ("state_dir", path(&c.state_dir)),
            ("poll_interval", c.poll_interval.clone()),
            ("rate_limit_per_minute", c.rate_limit_per_minute.clone()),
            ("rate_limit_per_hour", c.rate_limit_per_hour.clone()),
            ("limit", c.limit.clone()),
            ("max_buffered_events", c.max_buffered_events.clone()),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                config.set(key, &v).map_err(flag_error)?;
                origins.insert(key, Origin::Flag);
            }
        }
        for pair in &self.set {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Failure::usage(format!(
                    "--set {pair}: expected KEY=VALUE (keys: {})",
                    KEYS.join(", ")
                ))
            })?;
            let key = key_name(k);
            if key == Some("token") {
                return Err(Failure::usage(format!(
                    "--set token: the token is never taken on the command line; use --token-file or {ENV_TOKEN}"
                )));
            }
            config.set(k, v)?;
            origins.extend(key.map(|k| (k, Origin::Set)));
        }
        choose_token(&mut config, &origins)?;
        // `token_file` is warned about as it is read (`load_token`), in the plugin too.
        if let Some(path) = self.config.as_ref().filter(|_| file_has_token) {
            warn_if_others_can_read(path, "--config");
        }
        config.validate().map_err(|e| match &e {
            ConfigError::Invalid { key, .. } => match origins.get(key) {
                Some(Origin::Flag) => flag_error(e),
                Some(Origin::File(path)) => {
                    Failure::usage(format!("--config {}: {e}", path.display()))
                }
                Some(Origin::Set) | None => Failure::usage(e),
            },
            ConfigError::UnknownKey { .. } => Failure::usage(e),
        })?;
        Ok(config)
    }
}

/// Where a TOML file is wrong and why, without toml's own rendering: that quotes the line, and
/// the line may hold the token (`token = "eyJ…` missing its closing quote).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return format!("invalid TOML: {message}");
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    format!("invalid TOML at line {line}, column {column}: {message}")
}

/// Leaves the one token source that wins: the command line's `token_file` (`--token-file`,
/// `--set token_file=`), else `OP_EVENTS_TOKEN`, else the `--config` file's `token`, else its
/// `token_file`. As with every other option, what is given for this run beats the file.
fn choose_token(config: &mut Config, origins: &HashMap<&str, Origin>) -> Result<(), Failure> {
    let command_line = matches!(origins.get("token_file"), Some(Origin::Flag | Origin::Set));
    if command_line && config.token_file.is_some() {
        config.token = None;
        return Ok(());
    }
    let configured = config.token.is_some() || config.token_file.is_some();
    // Said here in the binary's words: the shared error speaks to Fluent Bit users.
    let usage = |problem: &str| {
        Failure::usage(format!(
            "{ENV_TOKEN} {problem}: put the token in it, or pass --token-file FILE"
        ))
    };
    match std::env::var(ENV_TOKEN) {
        Ok(t) if !t.trim().is_empty() => {
            config.token = Some(t.into());
            config.token_file = None;
        }
        // An empty or unreadable variable counts as unset when the file gives a token.
        _ if configured => {}
        Ok(_) => return Err(usage("is set but empty")),
        Err(std::env::VarError::NotUnicode(_)) => return Err(usage("is not valid UTF-8")),
        Err(std::env::VarError::NotPresent) => {
            return Err(Failure::usage(format!(
                "no token: pass --token-file FILE, set {ENV_TOKEN}, or set `token_file` in the --config file"
            )));
        }
    }
    Ok(())
}

/// Why the HTTP client could not be built, in the binary's words where the shared error names a
/// plugin key the binary takes as a flag.
fn setup_failure(e: SetupError) -> Failure {
    match e {
        SetupError::InsecureHttp(url) => Failure::usage(format!(
            "base_url {url}: plain http is only allowed to loopback addresses; use https, or pass \
             --insecure-http if you really mean it"
        )),
        other => Failure::usage(other),
    }
}

/// Flag errors use the flag's spelling.
fn flag_error(e: ConfigError) -> Failure {
    match e {
        ConfigError::Invalid { key, message } => {
            Failure::usage(format!("--{}: {message}", key.replace('_', "-")))
        }
        other => Failure::usage(other),
    }
}

/// The stderr logger's filter. A bare word that is not a level would be read as a target name,
/// which silences every log line, so it is refused; filters with `=` or `,` are RUST_LOG's.
fn log_filter(level: &str) -> Result<tracing_subscriber::EnvFilter, Failure> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = level.trim();
    let bare_word = !level.contains(['=', ',']);
    let refused = || {
        Failure::usage(format!(
            "--log-level: `{level}` is not one of {} or a filter such as \
             `info,op_events_input=debug`",
            LEVELS.join(", ")
        ))
    };
    if bare_word && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
        return Err(refused());
    }
    // The demo's embedded mock logs every request at info: keep it quiet unless asked.
    tracing_subscriber::EnvFilter::try_new(format!("op_events_mock=warn,{level}"))
        .map_err(|_| refused())
}

/// Installs the stderr logger.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), Failure> {
    let filter = log_filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr {
            secret: std::env::var(ENV_TOKEN).ok(),
        })
        .with_target(false);
    // Fails only when a logger is already installed: that one stays.
    let _ = if format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    Ok(())
}

/// The logger's stderr, every line passed through [`crate::token::redact_held`] as errors are
/// ([`redacted`]): a warning may quote a path or a value holding a token just as well. The
/// environment's token is known before any is loaded (a refused option is logged first).
struct RedactedStderr {
    secret: Option<String>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine<'a>;
    fn make_writer(&'a self) -> RedactedLine<'a> {
        RedactedLine {
            secret: self.secret.as_deref(),
            line: Vec::new(),
        }
    }
}

/// One log line, held until it is whole (a token split across two writes would escape
/// redaction), written redacted when dropped.
struct RedactedLine<'a> {
    secret: Option<&'a str>,
    line: Vec<u8>,
}

impl std::io::Write for RedactedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine<'_> {
    fn drop(&mut self) {
        let line = crate::token::redact_held(&String::from_utf8_lossy(&self.line), self.secret);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// How long stdout may stay blocked after SIGINT or SIGTERM (a reader that stopped reading)
/// before the process exits without waiting for it.
const STUCK_STDOUT_GRACE: Duration = Duration::from_secs(5);

/// Sets the returned flag on SIGINT or SIGTERM. The pump sees it between two writes; if it is
/// still `pumping` [`STUCK_STDOUT_GRACE`] later, or at a second signal, it is stuck in a write
/// that nothing will read, and the process exits at once. Nothing is lost by that: what was
/// written but not yet checkpointed is delivered again by the next run.
fn stop_signal(pumping: Arc<AtomicBool>) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    std::thread::Builder::new()
        .name("op-events-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                let mut signal = async || {
                    let term = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        () = term => {}
                    }
                };
                signal().await;
                set.store(true, Ordering::SeqCst);
                let _ = tokio::time::timeout(STUCK_STDOUT_GRACE, signal()).await;
            });
            if pumping.load(Ordering::SeqCst) {
                tracing::error!(
                    "stopping without finishing a write to stdout that nothing reads; the \
                     events written since the last checkpoint will be delivered again"
                );
                std::process::exit(1);
            }
        })
        .ok();
    flag
}

/// Set once stdout is a pipe with no reader left. A write finds that out, but an idle `run`
/// (caught up, polling) writes nothing: it would outlive its reader (a crashed Vector) and hold
/// its streams' state locks, so that the reader's next instance of it waits on them until an
/// event comes. The write end of a pipe whose readers are gone reports an error to epoll;
/// files and terminals never do, and are not watched.
fn stdout_reader_gone() -> Arc<AtomicBool> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    use std::os::unix::fs::FileTypeExt as _;
    let gone = Arc::new(AtomicBool::new(false));
    // A copy of the descriptor: epoll watches the pipe, not this number.
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return gone;
    };
    let pipe = std::fs::File::from(fd);
    if !pipe.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        return gone;
    }
    let watch = || -> std::io::Result<mio::Poll> {
        let poll = mio::Poll::new()?;
        // Read interest never fires on a write end; an error is always reported.
        poll.registry().register(
            &mut mio::unix::SourceFd(&pipe.as_raw_fd()),
            mio::Token(0),
            mio::Interest::READABLE,
        )?;
        Ok(poll)
    };
    let Ok(mut poll) = watch() else {
        return gone;
    };
    let set = Arc::clone(&gone);
    std::thread::Builder::new()
        .name("op-events-stdout".into())
        .spawn(move || {
            // Registered as long as this copy is open.
            let _pipe = pipe;
            let mut events = mio::Events::with_capacity(1);
            loop {
                match poll.poll(&mut events, None) {
                    Ok(()) if events.iter().any(mio::event::Event::is_error) => {
                        set.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })
        .ok();
    gone
}

/// Progress on stderr (only when it is a terminal).
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    delivered: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Instant::now(),
            delivered: 0,
        }
    }

    fn tick(&mut self, c: &Collector, records: usize) {
        self.delivered += records as u64;
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let rate = self.delivered as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let now = jiff::Timestamp::now();
        let streams: Vec<String> = c
            .progress()
            .iter()
            .map(|p| {
                let state = if p.status.caught_up {
                    "caught up".to_owned()
                } else {
                    match p.status.last_timestamp {
                        Some(t) => format!("{} behind", lag(now.duration_since(t))),
                        None => "starting".to_owned(),
                    }
                };
                format!("{} {} ({state})", p.kind, p.status.events)
            })
            .collect();
        eprintln!(
            "op-events: {} events, {rate:.0}/s; {}; {} buffered",
            self.delivered,
            streams.join(", "),
            c.buffered_events()
        );
    }
}

/// How a sink loop ended.
#[derive(PartialEq, Eq)]
enum End {
    CaughtUp,
    Signal,
    Closed,
}

/// Takes batches, writes them to stdout, flushes, then acks durably (a crash re-delivers at most
/// the batch in hand). Ends on `once` + caught up, a signal, or a closed stdout, found by a
/// write or while idle (then the unwritten batch is not acked).
fn pump(c: &Collector, once: bool, stop: &AtomicBool, limits: BatchLimits) -> Result<End, Failure> {
    // `--once` ends by itself: a write finds a closed stdout, and with nothing to write the run
    // has still caught up, which a reader gone early must not turn into a failure.
    let reader_gone = (!once).then(stdout_reader_gone);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = end_a_torn_line(&mut out) {
        tracing::debug!("could not check how stdout's file ends: {e}");
    }
    let mut progress = Progress::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(End::Signal);
        }
        if once {
            if c.is_caught_up() {
                return Ok(End::CaughtUp);
            }
            if let Some(f) = c.failure() {
                return Err(Failure::runtime(f));
            }
        }
        if reader_gone
            .as_ref()
            .is_some_and(|g| g.load(Ordering::SeqCst))
        {
            return Ok(End::Closed);
        }
        let Some(batch) = c.take_timeout(limits, Duration::from_millis(200)) else {
            continue;
        };
        let records = batch.records;
        let (parts, ack) = batch.into_parts();
        let written = parts.iter().try_for_each(|part| out.write_all(part));
        match written.and_then(|()| out.flush()) {
            Ok(()) => {
                progress.tick(c, records);
                c.ack_and_write(ack);
                parts.into_iter().for_each(|part| c.recycle(part));
            }
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(End::Closed),
            Err(e) => return Err(Failure::runtime(format!("writing to stdout: {e}"))),
        }
    }
}

/// A run killed while writing to a file leaves its last line torn. Appended to (`>>`), that
/// line would swallow this run's first one, an event that may not come again: a file that
/// does not end in a newline gets one first.
fn end_a_torn_line(out: &mut impl std::io::Write) -> std::io::Result<()> {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::FileExt as _;
    let meta = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?).metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(());
    }
    // Appending, stdout is open for writing only: read its last byte through /proc.
    let mut last = [0u8];
    std::fs::File::open("/proc/self/fd/1")?.read_exact_at(&mut last, meta.len() - 1)?;
    if last != *b"\n" {
        tracing::warn!(
            "stdout's file ends inside a line (a run stopped while writing it); starting on a new line: that torn line is not JSON, and its events come again"
        );
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Collects until `once` and caught up, a signal, or a closed stdout; says which.
fn collect(config: Config, once: bool) -> Result<End, Failure> {
    let limits = BatchLimits {
        max_records: config.batch_max_records,
        max_bytes: config.batch_max_bytes,
    };
    let pumping = Arc::new(AtomicBool::new(true));
    let stop = stop_signal(Arc::clone(&pumping));
    // A state directory that cannot be created or listed, or is no directory, is the option's
    // mistake, as an unreadable `token_file` or `ca_file` is; what is wrong inside it (a state
    // file, a lock) is not.
    let collector = Collector::start(config, Target::Ndjson, None).map_err(|e| match e {
        StartError::Setup(e) => setup_failure(e),
        StartError::Config(_)
        | StartError::Token(_)
        | StartError::State(CheckpointError::Dir { .. })
        | StartError::State(CheckpointError::NotADirectory { .. }) => Failure::usage(e),
        StartError::State(_) | StartError::Runtime(_) => Failure::runtime(e),
    })?;
    let end = pump(&collector, once, &stop, limits);
    pumping.store(false, Ordering::SeqCst);
    let saved = collector.shutdown(Duration::from_secs(5));
    let end = end?;
    if !saved && end != End::Closed {
        // A cron job must not report success while every run re-sends the same events.
        return Err(Failure::runtime(
            "the checkpoints could not be saved (see the errors above): the events delivered \
             since the last saved checkpoint will be delivered again; check that `state_dir` \
             is writable",
        ));
    }
    match end {
        End::CaughtUp => tracing::info!("caught up; checkpoints saved"),
        End::Signal => tracing::info!("stopped by signal; checkpoints saved"),
        End::Closed => tracing::info!("stdout closed; stopping"),
    }
    Ok(end)
}

/// `op-events run`.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let once = args.collection.once;
    let mut config = args.options.to_config(Some(&args.collection))?;
    config.retry_fatal = !once;
    match collect(config, once)? {
        // A cron job must not report success for a run that stopped short.
        End::Closed if once => Err(Failure::runtime(
            "stdout was closed before every stream caught up: the events not written come \
             again next run",
        )),
        _ => Ok(()),
    }
}

/// How far a stream's newest event is behind: minutes, hours, then days.
fn lag(d: jiff::SignedDuration) -> String {
    let minutes = d.as_mins().max(0);
    match minutes {
        0..120 => format!("{minutes}m"),
        120..2_880 => format!("{}h", minutes / 60),
        _ => format!("{}d", minutes / 1_440),
    }
}

/// `check`'s report on stdout. A reader that went away (`check | head -1`) ends the report, not
/// the checks: the exit code still says whether every stream works.
#[derive(Default)]
struct Report {
    closed: bool,
}

impl Report {
    fn line(&mut self, line: std::fmt::Arguments) -> Result<(), Failure> {
        if self.closed {
            return Ok(());
        }
        match writeln!(std::io::stdout(), "{line}") {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(Failure::runtime(format!("writing to stdout: {e}"))),
        }
    }
}

/// `op-events check`: prints what the token can do; touches no state.
pub fn check(options: Options) -> Result<(), Failure> {
    let config = options.to_config(None)?;
    let token = load_token(&config).map_err(Failure::usage)?;
    let client = Client::new(&config, token).map_err(setup_failure)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    let mut report = Report::default();
    let host = client.host();
    let region = Region::from_host(&host).map_or("custom", Region::as_str);
    report.line(format_args!(
        "endpoint:  {} (region {region})",
        client.base_url()
    ))?;
    let hint = |e: &ApiError, kind: Option<EventType>| match e.action() {
        Action::Unauthorized => format!(" ({})", client.token().explain_unauthorized(kind, &host)),
        Action::NotFound => format!(" ({NOT_FOUND_HINT})"),
        _ => String::new(),
    };
    let intro = rt
        .block_on(client.introspect())
        .map_err(|e| Failure::runtime(format!("introspection failed: {e}{}", hint(&e, None))))?;
    // The account `run` keeps its state and records under, found the same way.
    let account = intro.account(&client.token());
    report.line(format_args!("account:   {account}"))?;
    report.line(format_args!(
        "expires:   {}",
        crate::rotate::expiry_text(&client.token())
    ))?;
    report.line(format_args!("features:  {}", intro.features.join(", ")))?;
    // As `run` does: the listed types, or else every type the token grants.
    let kinds = match config.events.clone() {
        Some(kinds) => kinds,
        None => {
            let granted = intro.granted();
            for kind in EventType::ALL.into_iter().filter(|k| !granted.contains(k)) {
                report.line(format_args!(
                    "{:<15} not granted by the token (skipped)",
                    kind.as_str()
                ))?;
            }
            granted
        }
    };
    let mut failed = false;
    for kind in kinds {
        let request = Request::Reset {
            limit: 1,
            start_time: jiff::Timestamp::now() - Duration::from_secs(3600),
        };
        match rt
            .block_on(client.fetch(kind, &request))
            .and_then(|p| p.envelope().map(|_| ()))
        {
            Ok(()) => report.line(format_args!("{:<15} ok", kind.as_str()))?,
            Err(e) => {
                failed = true;
                report.line(format_args!(
                    "{:<15} FAILED: {e}{}",
                    kind.as_str(),
                    hint(&e, Some(kind))
                ))?;
            }
        }
    }
    if failed {
        return Err(Failure::runtime("some streams do not work (see above)"));
    }
    Ok(())
}

/// `op-events demo`: an in-process mock with generated data, a temporary state directory.
pub fn demo(args: DemoArgs) -> Result<(), Failure> {
    let mock = op_events_mock::MockServer::start(op_events_mock::MockConfig {
        events_per_type: args.events as usize,
        rate_limit_per_minute: 0,
        rate_limit_per_hour: 0,
        ..op_events_mock::MockConfig::default()
    })
    .map_err(|e| Failure::runtime(format!("demo mock: {e}")))?;
    let kinds: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
    let token = mock.token("acme", &kinds);
    let state = tempfile::tempdir().map_err(Failure::runtime)?;
    let mut config = Config::from_pairs([
        ("base_url", mock.url().as_str()),
        ("format", args.format.as_str()),
        ("state_dir", &state.path().display().to_string()),
        ("poll_interval", "1s"),
    ])
    .map_err(flag_error)?;
    config.token = Some(token.into());
    tracing::info!(url = %mock.url(), "demo: embedded mock with {} events per type", args.events);
    let mock = Arc::new(mock);
    if args.follow {
        let mock = Arc::clone(&mock);
        std::thread::spawn(move || {
            let mut i = 0usize;
            loop {
                std::thread::sleep(Duration::from_millis(700));
                i += 1;
                mock.generate("acme", kinds[i % 3], 1 + i % 3, i.is_multiple_of(7));
            }
        });
    }
    // `demo | head` is a way to look at it: a closed stdout ends it as well as any.
    collect(config, !args.follow).map(|_| ())
}

/// Parses arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version: stdout, nothing of the user's quoted.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return e.exit_code();
        }
        Err(e) => {
            let plain = e.render().to_string();
            let shown = redacted(&plain);
            if asks_for_json_logs(std::env::args_os()) {
                let message = shown.trim().trim_start_matches("error: ");
                print_failure(LogFormat::Json, message);
            } else if shown == plain {
                // Coloured on a terminal, as clap prints it.
                let _ = e.print();
            } else {
                let _ = write!(std::io::stderr(), "{shown}");
            }
            return e.exit_code();
        }
    };
    let result = init_logging(cli.log_format, &cli.log_level).and_then(|()| match cli.command {
        Command::Run(a) => run(a),
        Command::Check(o) => check(o),
        Command::Demo(a) => demo(a),
    });
    match result {
        Ok(()) => 0,
        Err(f) => {
            print_failure(cli.log_format, &redacted(&f.message));
            f.code
        }
    }
}

/// Whether the command line, which clap refused, asks for `--log-format json`: a log shipper
/// reading the logs as JSON must get its usage error as a JSON line too.
fn asks_for_json_logs(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--log-format") {
            Some("") => args.next(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => continue,
        };
        return value.is_some_and(|v| v.eq_ignore_ascii_case("json"));
    }
    false
}

/// The final error on stderr, in the log's format: with `--log-format json` a line shaped as the
/// logger's own (a log shipper parses every line), printed whatever `--log-level` says and
/// even when the logger could not be set up (a refused `--log-level`).
fn print_failure(format: LogFormat, message: &str) {
    let line = match format {
        LogFormat::Text => format!("op-events: error: {message}"),
        LogFormat::Json => format!(
            r#"{{"timestamp":"{:.6}","level":"ERROR","fields":{{"message":{}}}}}"#,
            jiff::Timestamp::now(),
            serde_json::Value::from(message)
        ),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An error message, as the user will see it, with the token and anything token-shaped hidden.
/// Messages quote what was given (a flag's value, a path, a stray argument, a config file's
/// line), and a token pasted into the wrong place must not be shown there: the one in
/// `OP_EVENTS_TOKEN`, and any the run loaded (from `token_file` too, whatever its shape).
fn redacted(message: &str) -> String {
    let secret = std::env::var(ENV_TOKEN).ok();
    crate::token::redact_held(message, secret.as_deref())
}

#[cfg(test)]
mod tests {
    use super::{asks_for_json_logs, lag};
    use jiff::SignedDuration;

    #[test]
    fn lag_reads_in_minutes_hours_then_days() {
        for (secs, shown) in [
            (-30, "0m"),
            (59, "0m"),
            (7_140, "119m"),
            (7_200, "2h"),
            (47 * 3_600, "47h"),
            (90 * 86_400 + 5, "90d"),
        ] {
            assert_eq!(lag(SignedDuration::from_secs(secs)), shown, "{secs}s");
        }
    }

    #[test]
    fn a_refused_command_line_asking_for_json_logs_is_recognised() {
        let asks = |line: &str| asks_for_json_logs(line.split(' ').map(Into::into));
        assert!(asks("op-events run --log-format json --bogus"));
        assert!(asks("op-events --log-format=JSON run"));
        assert!(!asks("op-events run --log-format text --bogus"));
        assert!(!asks("op-events run --log-format"));
        assert!(!asks("op-events run --log-formats json"));
        assert!(!asks("op-events run -- --log-format json"));
    }
}
