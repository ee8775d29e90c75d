//! What ends a run from outside: SIGINT, SIGTERM or SIGHUP, or stdout's reader gone; and a
//! stdout that goes nowhere, refused before the run starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long stdout may stay blocked after SIGINT or SIGTERM (a reader that stopped reading)
/// before the process exits without waiting for it.
const STUCK_STDOUT_GRACE: Duration = Duration::from_secs(5);

/// Sets the returned flag on SIGINT, SIGTERM or SIGHUP (a closed terminal or ssh session: by
/// default it would kill the process before its last checkpoint). The pump sees it between two
/// writes; if it is still `pumping` [`STUCK_STDOUT_GRACE`] later, or at a second signal, it is
/// stuck in a write that nothing will read, and the process exits at once. Nothing is lost by
/// that: what was written but not yet checkpointed is delivered again by the next run.
///
/// SIGXFSZ (a write past `ulimit -f` or systemd's `LimitFSIZE=`) is taken and ignored, so that
/// the write fails with EFBIG and is reported, as a full disk is, instead of killing the process
/// without a word.
pub(super) fn stop_signal(pumping: Arc<AtomicBool>) -> Arc<AtomicBool> {
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
                use tokio::signal::unix::{Signal, SignalKind, signal};
                // Once registered, a signal's handler stays for the life of the process.
                let _ignored = signal(SignalKind::from_raw(libc::SIGXFSZ));
                let mut term = signal(SignalKind::terminate()).ok();
                let mut hangup = signal(SignalKind::hangup()).ok();
                let received = async |s: &mut Option<Signal>| match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                };
                let mut signal = async || {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        () = received(&mut term) => {}
                        () = received(&mut hangup) => {}
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
pub(super) fn stdout_reader_gone() -> Arc<AtomicBool> {
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

/// Whether stdout is `/dev/null`: there, every event would be checkpointed as delivered and go
/// nowhere. A stdout closed when the process started is one too: Rust's runtime opens
/// `/dev/null` in its place, so a daemonizer or init script that closes it would lose every
/// event in silence.
pub(super) fn stdout_is_dev_null() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    match (
        std::fs::File::from(fd).metadata(),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(out), Ok(null)) => out.file_type().is_char_device() && out.rdev() == null.rdev(),
        _ => false,
    }
}
