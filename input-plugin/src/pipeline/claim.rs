//! A stream's claim on its state file. Two collectors running the same stream (account, API
//! version, event type) from one `state_dir` would each deliver every event; the second one
//! waits instead, and takes over when the first stops. Waiting also covers a hot reload whose
//! new instance starts before the old one has written its last checkpoint.

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::checkpoint::{Key, StateLock, Store};
use crate::stream::Stream;

/// How long a held claim is waited for before it is reported: a hot reload's old instance
/// lets go within Fluent Bit's 2 s grace period.
const PATIENCE: Duration = Duration::from_secs(5);
/// How often a held claim is tried again.
const RETRY: Duration = Duration::from_millis(250);

/// How a claim ended.
pub(super) enum Claimed {
    /// The stream may run. `None` when the state directory cannot lock (reported).
    Yes(Option<StateLock>),
    /// Shutdown came first, or (`wait` off) another collector holds it (reported).
    No,
}

/// Claims `key`'s state file for `stream`, waiting while another collector holds it, unless
/// `wait` is off (`--once`: a run that ends by itself should not wait on one that never does).
pub(super) async fn claim(store: &Store, key: &Key, stream: &Stream, wait: bool) -> Claimed {
    let set_failure = |failure| stream.update(|s| s.failure = failure);
    let since = Instant::now();
    let mut reported = false;
    loop {
        match store.try_lock(key) {
            Ok(Some(lock)) => {
                if reported {
                    info!(stream = %key.kind, "the other collector let go of this stream; starting it");
                    set_failure(None);
                }
                return Claimed::Yes(Some(lock));
            }
            Ok(None) => {}
            Err(e) => {
                warn!(stream = %key.kind, "{e}; going on without it, so nothing keeps a second collector with this state_dir from delivering this stream again");
                return Claimed::Yes(None);
            }
        }
        let held = || {
            format!(
                "{} is held by another collector of this stream (another op-events process, or another input with the same account and state_dir)",
                store.lock_path(key).display()
            )
        };
        if !wait {
            let held = held();
            error!(stream = %key.kind, "{held}; this stream is not started");
            set_failure(Some(held));
            return Claimed::No;
        }
        if !reported && since.elapsed() >= PATIENCE {
            let held = held();
            warn!(stream = %key.kind, "{held}; waiting for it to stop. Give each collector its own state_dir, or its own events");
            set_failure(Some(held));
            reported = true;
        }
        if !stream.control.sleep(RETRY).await {
            return Claimed::No;
        }
    }
}
