//! Hot reloads in a long-lived Fluent Bit leave nothing behind: after many reloads, each
//! followed by a delivery, and a final stop, no thread of the plugin is left and the process
//! holds as many file descriptors as after the first instance stopped. (A test binary of its
//! own: other tests' sockets would blur the count.)

mod harness;

use std::time::{Duration, Instant};

use harness::source::{self, Account, borrow};
use harness::{FluentBit, Instance, Layout};

const RELOADS: usize = 20;

/// Open file descriptors of this process, and threads of the plugin's runtimes.
fn handles() -> (usize, usize) {
    let entries = |dir| std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    let plugin_threads = entries("/proc/self/task")
        .filter(|task| {
            std::fs::read_to_string(task.join("comm")).is_ok_and(|name| name.trim() == "op-events")
        })
        .count();
    (entries("/proc/self/fd").count(), plugin_threads)
}

/// The handles once they stop changing for 300 ms (the mock closes its side of a connection a
/// moment after the plugin did).
fn settled() -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut last, mut since) = (handles(), Instant::now());
    while since.elapsed() < Duration::from_millis(300) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = handles();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// Collects until a buffer comes.
fn delivered(instance: &Instance) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while instance.collect().is_none() {
        assert!(Instant::now() < deadline, "no batch within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn reloads_release_threads_and_file_descriptors() {
    let mock = source::mock(10, 19);
    let account = Account::new(&mock, "acme");
    let props = account.props(&mock, &[("format", "raw"), ("poll_interval", "1s")]);
    let props = borrow(&props);
    let fb = FluentBit::load(Layout::V41);

    // The first instance's start creates what lives as long as the library (tokio's signal
    // socket pair, among others): count from its stop.
    let def = fb.register();
    let instance = fb.started(&props, harness::INFO);
    delivered(&instance);
    assert!(handles().1 > 0, "the plugin's threads are named op-events");
    instance.stop(false);
    fb.unregister(&def);
    let (fds, threads) = settled();
    assert_eq!(threads, 0, "the plugin's threads end with its instance");

    let mut def = fb.register();
    let mut instance = fb.started(&props, harness::INFO);
    for _ in 0..RELOADS {
        // Fluent Bit's order (ABI doc §10): Register, old instance down, Unregister, Init.
        let new_def = fb.register();
        instance.stop(true);
        fb.unregister(&def);
        def = new_def;
        instance = fb.started(&props, harness::INFO);
        mock.generate(account.name, "auditevents", 1, false);
        delivered(&instance);
    }
    instance.stop(false);
    fb.unregister(&def);
    assert_eq!(
        settled(),
        (fds, 0),
        "(fds, plugin threads) after {RELOADS} reloads and a stop, against {fds} fds before"
    );
}
