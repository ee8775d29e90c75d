//! `op-events check`: what the token can do, one request per stream; no state touched.

use std::io::Write as _;
use std::time::Duration;

use super::Failure;
use super::args::Options;
use super::options::{setup_failure, token_failure};
use crate::api::{Action, ApiError, Client, NOT_FOUND_HINT, Request};
use crate::config::Region;
use crate::event::EventType;
use crate::pipeline::load_token;

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
pub(super) fn check(options: Options) -> Result<(), Failure> {
    let (config, origins) = options.to_config(None)?;
    let token = load_token(&config).map_err(|e| token_failure(e, &origins))?;
    let client = Client::new(&config, token).map_err(|e| setup_failure(e, &origins))?;
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
    report.line(format_args!("proxy:     {}", client.route()))?;
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
    report.line(format_args!("features:  {}", intro.features_text()))?;
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
            if granted.is_empty() {
                // `run` would start no stream, and fails on it.
                return Err(Failure::runtime(intro.grants_nothing()));
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
