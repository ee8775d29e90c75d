//! `op-events demo`: the collector against an embedded mock, nothing to configure.

use std::sync::Arc;
use std::time::Duration;

use super::Failure;
use super::args::{DemoArgs, LogFormat};
use super::options::{Origins, flag_error};
use super::run::collect;
use crate::config::Config;
use crate::event::EventType;

/// `op-events demo`: an in-process mock with generated data, a temporary state directory.
pub(super) fn demo(args: DemoArgs, logs: LogFormat) -> Result<(), Failure> {
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
    collect(config, &Origins::default(), !args.follow, logs).map(|_| ())
}
