//! `op-events run`: the NDJSON sink loop (write, flush, then ack), progress on a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Failure;
use super::args::{LogFormat, RunArgs};
use super::options::{Origins, setup_failure, token_failure};
use super::watch::{stdout_is_dev_null, stdout_reader_gone, stop_signal};
use crate::checkpoint::CheckpointError;
use crate::config::Config;
use crate::encode::Target;
use crate::pipeline::{BatchLimits, Collector, StartError};

/// Progress on stderr (only when it is a terminal and logs are text: a JSON log's lines must
/// all be JSON).
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    delivered: u64,
}

impl Progress {
    fn new(logs: LogFormat) -> Progress {
        Progress {
            enabled: logs == LogFormat::Text && std::io::stderr().is_terminal(),
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
pub(super) enum End {
    CaughtUp,
    Signal,
    Closed,
}

/// Takes batches, writes them to stdout, flushes, then acks durably (a crash re-delivers at most
/// the batch in hand). Ends on `once` + caught up, a signal, or a closed stdout, found by a
/// write or while idle (then the unwritten batch is not acked).
fn pump(
    c: &Collector,
    once: bool,
    stop: &AtomicBool,
    limits: BatchLimits,
    mut progress: Progress,
) -> Result<End, Failure> {
    // `--once` ends by itself: a write finds a closed stdout, and with nothing to write the run
    // has still caught up, which a reader gone early must not turn into a failure.
    let reader_gone = (!once).then(stdout_reader_gone);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = end_a_torn_line(&mut out) {
        tracing::debug!("could not check how stdout's file ends: {e}");
    }
    loop {
        if stop.load(Ordering::SeqCst) {
            // `--once` stopped after its work was done has done it.
            if once && c.is_caught_up() {
                return Ok(End::CaughtUp);
            }
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

/// Collects until `once` and caught up, a signal, or a closed stdout; says which. `origins`
/// name the options in start-up errors.
pub(super) fn collect(
    config: Config,
    origins: &Origins,
    once: bool,
    logs: LogFormat,
) -> Result<End, Failure> {
    let limits = BatchLimits {
        max_records: config.batch_max_records,
        max_bytes: config.batch_max_bytes,
    };
    let pumping = Arc::new(AtomicBool::new(true));
    let stop = stop_signal(Arc::clone(&pumping));
    // A state directory that cannot be created, listed or written, or is no directory, is the
    // option's mistake, as an unreadable `token_file` or `ca_file` is; what is wrong inside it
    // (a state file, a lock) is not.
    let collector = Collector::start(config, Target::Ndjson, None).map_err(|e| match e {
        StartError::Setup(e) => setup_failure(e, origins),
        StartError::Token(e) => token_failure(e, origins),
        StartError::State(
            e @ (CheckpointError::Dir { .. }
            | CheckpointError::NotADirectory { .. }
            | CheckpointError::NotWritable { .. }),
        ) => origins.usage("state_dir", e),
        StartError::Config(_) => Failure::usage(e),
        StartError::State(_) | StartError::Runtime(_) => Failure::runtime(e),
    })?;
    let end = pump(&collector, once, &stop, limits, Progress::new(logs));
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
pub(super) fn run(args: RunArgs, logs: LogFormat) -> Result<(), Failure> {
    let once = args.collection.once;
    let (mut config, origins) = args.options.to_config(Some(&args.collection))?;
    config.retry_fatal = !once;
    if stdout_is_dev_null() {
        return Err(Failure::usage(
            "stdout is /dev/null (or was closed when op-events started, which puts /dev/null in \
             its place): every event would be checkpointed as delivered and go nowhere. Send \
             stdout to a file or a pipe, such as `>> events.ndjson` or Vector's exec source",
        ));
    }
    match collect(config, &origins, once, logs)? {
        // A cron job must not report success for a run that stopped short.
        End::Closed if once => Err(Failure::runtime(
            "stdout was closed before every stream caught up: the events not written come \
             again next run",
        )),
        End::Signal if once => Err(Failure::runtime(
            "a signal stopped the run before every stream caught up: the next run goes on from \
             the saved checkpoints",
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

#[cfg(test)]
mod tests {
    use super::lag;
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
}
