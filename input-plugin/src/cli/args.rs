//! The command line: subcommands, flags, their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY environment, as fits base_url's scheme].
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
    /// stdout is closed or a signal stops it before that.
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
