//! `op-events-mock`: serve the mock Events API, or mint tokens for it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use op_events_mock::{MockConfig, MspAccounts, Region, Tls, TokenSpec, auth};

/// A mock of the 1Password Events API (v1 + v2) for testing SIEM pipelines without an account.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (and the /_mock/ admin API) until SIGINT/SIGTERM.
    Serve(Serve),
    /// Print a signed token that `serve` with the same --key accepts.
    Token(Token),
}

#[derive(Parser)]
struct Serve {
    /// Address to listen on (keep it on loopback unless you mean otherwise).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Generated events per type for each account (the default account is generated at start,
    /// others on their first request), at most 1000000: they are held in memory, about 2.4 GB
    /// per account at that.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=MAX_EVENTS))]
    events: u32,
    /// Generator seed: the same seed, account name and --now always give the same dataset.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Generated timestamps spread over this many days before the clock's now.
    #[arg(long, default_value_t = 90)]
    span_days: u32,
    /// Events older than this many days (on the mock clock) are never served.
    #[arg(long, default_value_t = 120)]
    retention_days: u32,
    /// Region for requests whose Host is not an events host: us, ent, ca or eu.
    #[arg(long, default_value = "us")]
    region: Region,
    /// Key signing tokens (HS256) and cursors. Without it, the documented development key is used.
    #[arg(long, env = "OP_EVENTS_MOCK_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Start the virtual clock at this RFC 3339 date-time (it then runs at real speed).
    #[arg(long, value_name = "RFC3339", value_parser = op_events_mock::parse_timestamp)]
    now: Option<jiff::Timestamp>,
    /// Per-account requests per minute before 429 (0 = no limit).
    #[arg(long, default_value_t = 600)]
    rate_limit_per_minute: u32,
    /// Per-account requests per hour before 429 (0 = no limit).
    #[arg(long, default_value_t = 30_000)]
    rate_limit_per_hour: u32,
    /// Do not send Retry-After on 429 (the real API does not document one).
    #[arg(long)]
    no_retry_after: bool,
    /// Answer 400 to request fields other than cursor/limit/start_time/end_time (the real API
    /// ignores them).
    #[arg(long)]
    reject_unknown_fields: bool,
    /// Load <kind>*.json files (envelopes or arrays, v2 shape) from DIR/responses/v2 (or DIR)
    /// into the default account, after the generated events. Events older than the retention
    /// are never served: a warning at start counts them and suggests a --now that serves them.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// The account generated at start and fed the fixtures.
    #[arg(long, default_value = "acme", value_parser = auth::parse_account)]
    account: String,
    /// Accounts whose v2 events carry the MSP fields (account_uuid, actor_type,
    /// actor_account_uuid, user_type, user_account_uuid): `all`, `none`, or names separated by
    /// commas. The docs mark those fields "MSP accounts only": use `none` to check that a
    /// consumer copes with an ordinary account's events.
    #[arg(long, value_name = "all|none|NAMES", default_value = "all")]
    msp_accounts: MspAccounts,
    /// Serve /_mock/ to non-loopback peers too (otherwise they get 403).
    #[arg(long)]
    admin_allow_remote: bool,
    /// Compress API responses with gzip when the client's Accept-Encoding allows it (the real
    /// API's behaviour is not documented; off by default).
    #[arg(long)]
    gzip: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first) and --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost, 127.0.0.1, ::1 and the --addr IP, signed by
    /// a CA made at start; the CA (PEM) is written to FILE for clients to trust
    /// (op-events --ca-file FILE, the plugin's ca_file, curl --cacert FILE).
    #[arg(long, value_name = "FILE", conflicts_with = "tls_cert")]
    tls_self_signed: Option<PathBuf>,
    /// Close a connection that has not sent a whole request head this many seconds after it
    /// opened or after its last response, and answer 408 (then close) to a request whose body
    /// is not whole this many seconds after the server began waiting for it (0 = never), so
    /// that slow or silent clients cannot hold connections.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    header_timeout_secs: u64,
    /// The most accounts to make, the default one included (0 = no cap). Each holds its
    /// generated events in memory until the server stops; past the cap, a request for a new
    /// account is answered 403 (in the API's error shape, the reason header saying why).
    #[arg(long, value_name = "N", default_value_t = op_events_mock::DEFAULT_MAX_ACCOUNTS)]
    max_accounts: usize,
    /// Log filter (tracing syntax): info logs one line per request; warn keeps benchmarks quiet.
    #[arg(long, env = "RUST_LOG", default_value = "info", value_parser = log_filter)]
    log: String,
}

#[derive(Parser)]
struct Token {
    /// Region whose events host becomes the audience: us, ent, ca or eu.
    #[arg(long, default_value = "us")]
    region: Region,
    /// Comma-separated features: signinattempts, itemusages, auditevents (others are refused).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "signinattempts,itemusages,auditevents",
        value_parser = auth::parse_feature
    )]
    features: Vec<String>,
    /// Account name; its uuid and dataset derive from it.
    #[arg(long, default_value = "acme", value_parser = auth::parse_account)]
    account: String,
    /// Signing key; must match the server's --key (default: the development key).
    #[arg(long, env = "OP_EVENTS_MOCK_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Lifetime in days, or `never`: no `exp` claim, as when an integration's tokens are set
    /// never to expire. `0` makes a token that has already expired (`serve` answers it 401);
    /// at most 36500.
    #[arg(long, value_name = "DAYS|never", default_value = "365")]
    days: Lifetime,
    /// Give the token the audience very old tokens carry, `com.1password.streamingservice`,
    /// which names no host (a client must be told the region or URL), instead of the region's.
    #[arg(long)]
    legacy_audience: bool,
    /// Issue time (an RFC 3339 date-time), e.g. to match a server started with --now. Default:
    /// real now.
    #[arg(long, value_name = "RFC3339", value_parser = op_events_mock::parse_timestamp)]
    issued_at: Option<jiff::Timestamp>,
}

/// `serve --events` at most: generated events live in memory (about 0.8 KB each).
const MAX_EVENTS: i64 = 1_000_000;

/// `token --days` at most: a century.
const MAX_DAYS: i64 = 36_500;

/// `serve --log`, checked while the arguments are parsed, so that a bad one names its flag.
fn log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{e} (examples: info, warn, op_events_mock=debug)"))
}

/// `token --days`: a number of days, or `never`.
#[derive(Clone, Copy)]
enum Lifetime {
    Days(i64),
    Never,
}

impl std::str::FromStr for Lifetime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(Lifetime::Never),
            _ => s
                .parse()
                .ok()
                .filter(|days| (0..=MAX_DAYS).contains(days))
                .map(Lifetime::Days)
                .ok_or_else(|| {
                    format!("expected a number of days from 0 to {MAX_DAYS}, or `never`")
                }),
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Token(t) => {
            let issued_at = t.issued_at.unwrap_or_else(jiff::Timestamp::now);
            let expires_at = match t.days {
                Lifetime::Never => None,
                Lifetime::Days(days) => Some(
                    days.checked_mul(86_400)
                        .and_then(|secs| {
                            issued_at
                                .checked_add(jiff::SignedDuration::from_secs(secs))
                                .ok()
                        })
                        .ok_or_else(|| anyhow::anyhow!("--days {days} is out of range"))?,
                ),
            };
            let spec = TokenSpec {
                region: t.region,
                features: t.features,
                account: t.account,
                issued_at,
                expires_at,
                legacy_audience: t.legacy_audience,
            };
            println!(
                "{}",
                // A serial of its own, so that two tokens minted alike still differ.
                auth::mint(
                    t.key.as_deref().unwrap_or(auth::DEV_KEY).as_bytes(),
                    &spec,
                    op_events_mock::random_u64()
                )
            );
            Ok(())
        }
        Command::Serve(s) => serve(s),
    }
}

fn serve(s: Serve) -> anyhow::Result<()> {
    // Scripts wait for the ready line, and read the port of `--addr …:0` from it: it comes
    // whatever `--log` says.
    let filter = tracing_subscriber::EnvFilter::new(&s.log)
        .add_directive(format!("{}=info", op_events_mock::READY_TARGET).parse()?);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let tls = tls(&s)?;
    let config = MockConfig {
        events_per_type: s.events as usize,
        seed: s.seed,
        region: s.region,
        key: s.key,
        rate_limit_per_minute: s.rate_limit_per_minute,
        rate_limit_per_hour: s.rate_limit_per_hour,
        retry_after_header: !s.no_retry_after,
        now: s.now,
        fixtures_dir: s.fixtures,
        admin_allow_remote: s.admin_allow_remote,
        span_days: s.span_days,
        retention_days: s.retention_days,
        reject_unknown_fields: s.reject_unknown_fields,
        default_account: s.account,
        gzip: s.gzip,
        tls,
        header_read_timeout: (s.header_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(s.header_timeout_secs)),
        msp_accounts: s.msp_accounts,
        max_accounts: s.max_accounts,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(s.addr)
                .await
                .with_context(|| format!("cannot listen on --addr {}", s.addr))?;
            // Taken before the ready line: a script may send SIGTERM as soon as it sees it.
            let shutdown = shutdown_signal().context("cannot take SIGINT and SIGTERM")?;
            op_events_mock::serve(listener, config, shutdown).await
        })
}

/// The certificate `serve` was given or asked to make; a made CA is written out first.
fn tls(s: &Serve) -> anyhow::Result<Option<Tls>> {
    if let (Some(cert), Some(key)) = (&s.tls_cert, &s.tls_key) {
        let tls = Tls::from_pem_files(cert, key)
            .context("cannot serve HTTPS with --tls-cert and --tls-key")?;
        return Ok(Some(tls));
    }
    let Some(ca_file) = &s.tls_self_signed else {
        return Ok(None);
    };
    let ip = s.addr.ip().to_string();
    let mut names = vec!["localhost", "127.0.0.1", "::1"];
    if !s.addr.ip().is_unspecified() && !names.contains(&ip.as_str()) {
        names.push(&ip);
    }
    let tls = Tls::self_signed(&names).context("--tls-self-signed")?;
    let ca = tls.ca_pem().unwrap_or_default();
    std::fs::write(ca_file, ca)
        .with_context(|| format!("cannot write the CA to {}", ca_file.display()))?;
    tracing::info!(ca_file = %ca_file.display(), names = ?names, "serving HTTPS with a certificate from a new CA");
    Ok(Some(tls))
}

/// Takes SIGINT and SIGTERM now; the future resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("op-events-mock").chain(args.iter().copied()))
    }

    /// `--now` and `--issued-at` take RFC 3339 date-times as `start_time` does, and refuse
    /// the looser forms jiff would take, saying an RFC 3339 date-time is expected.
    #[test]
    fn time_flags_take_rfc_3339_date_times_only() {
        let noon: jiff::Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        for (flag, text) in [
            ("--now", "2026-01-15T12:00:00Z"),
            ("--issued-at", "2026-01-15t13:00:00+01:00"),
        ] {
            let command = if flag == "--now" { "serve" } else { "token" };
            let parsed = match parse(&[command, flag, text]).unwrap().command {
                Command::Serve(s) => s.now,
                Command::Token(t) => t.issued_at,
            };
            assert_eq!(parsed, Some(noon), "{flag} {text}");
        }
        for (command, flag) in [("serve", "--now"), ("token", "--issued-at")] {
            for text in [
                "2026-01-15 12:00:00Z",
                "2026-01-15T12:00Z",
                "2026-01-15T12:00:00Z[UTC]",
                "2026-01-15T12:00:00+25:00",
            ] {
                assert!(text.parse::<jiff::Timestamp>().is_ok(), "jiff takes {text}");
                let Err(e) = parse(&[command, flag, text]) else {
                    panic!("{flag} {text} was taken");
                };
                assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
                let e = e.to_string();
                assert!(
                    e.contains(flag) && e.contains("is not an RFC 3339 date-time"),
                    "{e}"
                );
            }
        }
    }
}
