//! What ends a run from outside: SIGINT or SIGTERM, or stdout's reader gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long stdout may stay blocked after SIGINT or SIGTERM (a reader that stopped reading)
/// before the process exits without waiting for it.
const STUCK_STDOUT_GRACE: Duration = Duration::from_secs(5);

/// Sets the returned flag on SIGINT or SIGTERM. The pump sees it between two writes; if it is
/// still `pumping` [`STUCK_STDOUT_GRACE`] later, or at a second signal, it is stuck in a write
/// that nothing will read, and the process exits at once. Nothing is lost by that: what was
/// written but not yet checkpointed is delivered again by the next run.
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
