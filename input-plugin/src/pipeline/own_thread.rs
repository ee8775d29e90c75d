//! File I/O off the runtime's blocking pool. That pool also runs the HTTP client's DNS lookups,
//! and a resolver that stops answering holds each lookup for as long as `resolv.conf` lets it
//! (minutes), past any request timeout: checkpoint writes and token-file reads queued behind
//! them would miss the shutdown grace, and what was delivered would come again.

/// Runs `f` on a thread of its own, named as the runtime's (so that the plugin's log lines from
/// it are queued as theirs are, and CPU figures count it), with the caller's log dispatcher.
/// `None` if no thread could be started or `f` panicked.
pub(crate) async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let logs = tracing::dispatcher::get_default(Clone::clone);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(super::THREAD_NAME.into())
        .spawn(move || {
            let _ = tx.send(tracing::dispatcher::with_default(&logs, f));
        })
        .ok()?;
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn work_goes_on_while_the_blocking_pool_is_held() {
        // The pool of a runtime like the collector's, held by a "lookup" that never returns.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        rt.spawn_blocking(move || held.recv());
        let done = rt.spawn(async { super::run(|| 42).await });
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), done).await;
        assert_eq!(result.ok().and_then(Result::ok).flatten(), Some(42));
        release.send(()).unwrap();
        rt.shutdown_background();
    }
}
