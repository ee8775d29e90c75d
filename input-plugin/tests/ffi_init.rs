//! Registration, NULL arguments and every way Init can fail, through the dlopen'ed library.

mod harness;

use std::ffi::c_void;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::Mutex;

use harness::{ERROR, FluentBit, Layout};

type Props<'a> = Vec<(&'a str, &'a [u8])>;

/// Log lines are captured process-wide: the tests run one at a time so none counts another's.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn registers_onepassword_writing_only_the_first_five_fields() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fb = FluentBit::load(Layout::V41);
    let old = fb.register();
    assert_eq!(old.name(), "onepassword");
    let description = old.description();
    assert!(
        description.contains("1Password") && description != "onepassword",
        "{description}"
    );
    let (kind, proxy, flags, event_type, config_map) = old.header();
    assert_eq!((kind, proxy, flags), (1, 11, 0));
    assert_eq!(event_type, 0, "event_type (5.0+) must not be written");
    assert!(
        config_map.is_null(),
        "config_map (5.1.1+) must not be written"
    );

    // Hot reload: the new def is registered before the old one is unregistered.
    let new = fb.register();
    fb.unregister(&old);
    assert_eq!(new.name(), "onepassword");
    assert_eq!(new.description(), description);
    fb.unregister(&new);
}

#[test]
fn null_and_unknown_arguments_are_harmless() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fb = FluentBit::load(Layout::V41);
    // SAFETY: the plugin must check every pointer it is given; NULL is the point here.
    unsafe {
        assert_eq!((fb.sym.register)(std::ptr::null_mut()), 0);
        (fb.sym.unregister)(std::ptr::null_mut());
        assert_eq!(fb.init_raw_null(), 0);
        let (mut data, mut len): (*mut c_void, usize) = (std::ptr::null_mut(), 7);
        assert_eq!(
            harness::collect_ctx_raw(&fb, 1, std::ptr::null_mut(), &mut len),
            -1
        );
        assert_eq!(
            harness::collect_ctx_raw(&fb, 1, &mut data, std::ptr::null_mut()),
            -1
        );
        // An id no instance has: nothing to hand over.
        assert_eq!(
            harness::collect_ctx_raw(&fb, 0xdead, &mut data, &mut len),
            1
        );
        assert_eq!((data, len), (std::ptr::null_mut(), 0));
        assert_eq!((fb.sym.collect)(&mut data, &mut len), 1);
        assert_eq!(len, 0);
        (fb.sym.cleanup_ctx)(std::ptr::null_mut(), std::ptr::null_mut());
        (fb.sym.cleanup)(std::ptr::null_mut());
        // Lifecycle calls without any instance.
        (fb.sym.pause)();
        (fb.sym.resume)();
        (fb.sym.pre_exit)(0);
        assert_eq!((fb.sym.exit)(), 1);
    }
}

/// `base` with `key` set to `path`; a `token_file` is read only without `token`.
fn replacing<'a>(base: &Props<'a>, key: &'a str, path: &'a str) -> Props<'a> {
    base.iter()
        .filter(|(k, _)| *k != key && (key != "token_file" || *k != "token"))
        .cloned()
        .chain([(key, path.as_bytes())])
        .collect()
}

/// Runs Init with `props` and returns its code and the lines it logged.
fn init(fb: &std::sync::Arc<FluentBit>, props: &[(&str, &[u8])]) -> (i32, Vec<(i32, String)>) {
    let before = harness::all_logs().len();
    let (instance, code) = fb.start(props, harness::INFO);
    if code == 1 {
        instance.exit();
    } else {
        drop(instance);
    }
    (code, harness::all_logs()[before..].to_vec())
}

#[test]
fn init_fails_with_one_line_naming_the_key() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mock =
        op_events_mock::MockServer::start(op_events_mock::MockConfig::default()).expect("mock");
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let file = state.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file = file.to_str().unwrap().to_owned();
    // Files no token or CA bundle is in: reading them must neither wait nor fill the memory.
    let fifo = state.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap().to_owned();
    let big = state.path().join("big");
    std::fs::write(&big, vec![b'a'; 100_000]).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    let big = big.to_str().unwrap().to_owned();
    let read_only = state.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Modes do not stop root; sysfs refuses new files to everyone.
    let read_only = match std::fs::File::create(read_only.join("probe")) {
        Ok(_) => "/sys/kernel".to_owned(),
        Err(_) => read_only.to_str().unwrap().to_owned(),
    };
    let url = mock.url();
    let base: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"on"),
        ("state_dir", state_dir.as_bytes()),
    ];
    let fb = FluentBit::load(Layout::V41);
    let with = |extra: &[(&'static str, &'static [u8])]| {
        let mut props = base.clone();
        for (k, v) in extra {
            props.retain(|(key, _)| key != k);
            props.push((k, v));
        }
        props
    };
    let cases: Vec<(Props<'_>, &[&str])> = vec![
        (
            with(&[("interval", b"5")]),
            &["invalid configuration: unknown option `interval` (did you mean `poll_interval`?)"],
        ),
        (
            with(&[("interval_sec", b"5")]),
            &["`interval_sec`", "`poll_interval`"],
        ),
        // Any one typo: a silently ignored `state_dir` would keep checkpoints elsewhere.
        (
            with(&[("poll_intervl", b"5")]),
            &["`poll_intervl`", "`poll_interval`"],
        ),
        (
            with(&[("sate_dir", b"/tmp/elsewhere")]),
            &["`sate_dir`", "`state_dir`"],
        ),
        (
            with(&[("rate_limit_per_mniute", b"10")]),
            &["`rate_limit_per_mniute`", "`rate_limit_per_minute`"],
        ),
        (
            with(&[("token-file", b"/tmp/t")]),
            &["`token-file`", "`token_file`"],
        ),
        (with(&[("tokenFile", b"/tmp/t")]), &["`token_file`"]),
        (with(&[("api_token", b"x")]), &["`api_token`", "`token`"]),
        (
            with(&[("compress", b"none")]),
            &["`compress`", "`compression`"],
        ),
        (
            with(&[("endpoint", b"http://127.0.0.1:1")]),
            &["`endpoint`", "`base_url`"],
        ),
        (
            with(&[("events_types", b"auditevents")]),
            &["`events_types`", "`events`"],
        ),
        (
            with(&[("statedir", b"/tmp")]),
            &["`statedir`", "`state_dir`"],
        ),
        // The plugin's key, not the binary's flag.
        (
            with(&[("base_url", b"http://192.0.2.1"), ("insecure_http", b"off")]),
            &["plain http", "set `insecure_http` to true"],
        ),
        (with(&[("poll_interval", b"soon")]), &["poll_interval"]),
        (with(&[("limit", b"many")]), &["limit"]),
        (with(&[("events", b"logins")]), &["events", "logins"]),
        (with(&[("format", b"cef")]), &["format", "cef"]),
        (
            with(&[("base_url", b"\xffhttp://x")]),
            &["`base_url`", "UTF-8"],
        ),
        // A value with a newline is quoted on one line, the newline escaped.
        (
            with(&[("events", b"signin\nattempts")]),
            &["events: `signin\\nattempts` is not one of"],
        ),
        (
            with(&[("state_dir", b"/proc/op-events-cannot-exist/state")]),
            &["state_dir"],
        ),
        (
            base.iter()
                .filter(|(k, _)| *k != "state_dir")
                .cloned()
                .chain([("state_dir", file.as_bytes())])
                .collect(),
            &["state_dir", "is not a directory"],
        ),
        (
            replacing(&base, "state_dir", &read_only),
            &["state_dir", "is not writable"],
        ),
        (
            base.iter()
                .filter(|(k, _)| *k != "token")
                .cloned()
                .collect(),
            &["no token", "`token` option", "`token_file`"],
        ),
        (
            replacing(&base, "token_file", &fifo),
            &[": the token is empty"],
        ),
        (
            replacing(&base, "token_file", "/dev/zero"),
            &["token_file /dev/zero: a device or socket, not a regular file"],
        ),
        (
            replacing(&base, "token_file", &big),
            &[": larger than 65536 bytes, more than it should hold"],
        ),
        (
            replacing(&base, "ca_file", "/dev/zero"),
            &["ca_file /dev/zero: a device or socket, not a regular file"],
        ),
        (
            replacing(&base, "ca_file", &fifo),
            &["no PEM certificates found"],
        ),
    ];
    for (props, needles) in cases {
        let (code, lines) = init(&fb, &props);
        let shown: Vec<_> = props
            .iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(code, 0, "Init must fail for {shown:?}");
        assert_eq!(
            lines.len(),
            1,
            "exactly one log line for {shown:?}: {lines:#?}"
        );
        let (level, line) = &lines[0];
        println!("{line}");
        assert_eq!(*level, ERROR, "{line}");
        assert!(line.starts_with("[onepassword.0] "), "{line}");
        for needle in needles {
            assert!(line.contains(needle), "{line:?} should mention {needle}");
        }
        assert!(!line.contains(&token), "the token leaked into {line:?}");
    }
    assert!(harness::all_logs().iter().all(|(_, l)| !l.contains(&token)));
}

/// The plugin's log lines are redacted like the binary's: an option holding something shaped
/// like a token (a token pasted into the wrong key) is not quoted back, though it is not this
/// instance's token.
#[test]
fn init_error_never_quotes_a_token_shaped_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let shaped = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJldmVudHMifQ.c2lnbmF0dXJlLXNlY3JldA";
    let state = tempfile::tempdir().unwrap();
    let props: Vec<(&str, &[u8])> = vec![
        ("token", b"opaque-token-value-123"),
        ("region", shaped.as_bytes()),
        ("state_dir", state.path().to_str().unwrap().as_bytes()),
    ];
    let fb = FluentBit::load(Layout::V41);
    let (code, lines) = init(&fb, &props);
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0].1;
    assert!(
        line.contains("region") && line.contains("[redacted]"),
        "{line}"
    );
    assert!(!line.contains(shaped), "{line}");
}

/// A token read from `token_file` is hidden in the plugin's log whatever its shape, as the
/// binary hides the one it loaded: here it is also part of `base_url`, which the collector
/// logs as it starts.
#[test]
fn the_token_read_from_token_file_is_never_logged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let opaque = "Hq4vN8sW2kT6yC1mR9bX5fJ3";
    let mock = op_events_mock::MockServer::start(op_events_mock::MockConfig::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let token_file = state.path().join("token");
    std::fs::write(&token_file, format!("{opaque}\n")).unwrap();
    let url = format!("{}/{opaque}", mock.url().trim_end_matches('/'));
    let props: Vec<(&str, &[u8])> = vec![
        ("token_file", token_file.to_str().unwrap().as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"true"),
        ("state_dir", state.path().to_str().unwrap().as_bytes()),
    ];
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let instance = fb.started(&props, harness::INFO);
    // Lines from the collector's threads reach Fluent Bit's log at a collect.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while harness::logs_containing("starting").is_empty() && std::time::Instant::now() < deadline {
        instance.collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    instance.stop(false);
    fb.unregister(&def);
    let starting = harness::logs_containing("starting");
    assert!(
        starting
            .iter()
            .any(|(_, line)| line.contains("/[redacted]")),
        "{starting:#?}"
    );
    // The state directory in use is named, so a restart can be pointed at the same one.
    let state_dir = format!("state_dir={}", state.path().display());
    assert!(
        starting.iter().any(|(_, line)| line.contains(&state_dir)),
        "{starting:#?}"
    );
    let leaked = harness::logs_containing(opaque);
    assert!(leaked.is_empty(), "{leaked:#?}");
}

/// A `token_file` that other users can read is warned about in Fluent Bit's log as the input
/// starts, with the fix, as the binary warns on stderr; the input still starts. One readable by
/// its owner only, or not read (`token` set too), is not.
#[test]
fn a_token_file_others_can_read_is_warned_about_at_init() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mock = op_events_mock::MockServer::start(op_events_mock::MockConfig::default()).unwrap();
    let token = mock.token("acme", &["auditevents"]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let shared = write("shared-token", 0o644);
    let own = write("own-token", 0o600);
    let state = dir.path().join("state").display().to_string();
    let url = mock.url();
    let fb = FluentBit::load(Layout::V41);
    for (file, inline, warned) in [
        (&shared, false, true),
        (&own, false, false),
        (&shared, true, false),
    ] {
        let mut props: Props<'_> = vec![
            ("token_file", file.as_bytes()),
            ("base_url", url.as_bytes()),
            ("insecure_http", b"on"),
            ("state_dir", state.as_bytes()),
        ];
        if inline {
            props.push(("token", token.as_bytes()));
        }
        let before = harness::all_logs().len();
        let instance = fb.started(&props, harness::INFO);
        let lines = harness::all_logs()[before..].to_vec();
        instance.stop(false);
        let warning = format!(
            "] token_file {file}: holds the token but can be read by other users (mode 0644); \
             make it readable by its owner only: chmod 600 {file}"
        );
        let warnings: Vec<_> = lines
            .iter()
            .filter(|(_, line)| line.contains("other users"))
            .collect();
        let what = format!("{file} (token set too: {inline})");
        if warned {
            assert_eq!(warnings.len(), 1, "{what}: {lines:#?}");
            let (level, line) = warnings[0];
            assert_eq!(*level, harness::WARN, "{line}");
            assert!(
                line.starts_with("[onepassword.") && line.ends_with(&warning),
                "{line}"
            );
        } else {
            assert!(warnings.is_empty(), "{what}: {lines:#?}");
        }
    }
}

#[test]
fn pre_4_1_runs_one_instance_and_refuses_a_second() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mock =
        op_events_mock::MockServer::start(op_events_mock::MockConfig::default()).expect("mock");
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("new").join("state");
    let state_str = state_dir.to_str().unwrap().to_owned();
    let url = mock.url();
    let props: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"true"),
        ("state_dir", state_str.as_bytes()),
    ];
    let fb = FluentBit::load(Layout::Legacy);
    let def = fb.register();
    let first = fb.started(&props, harness::INFO);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a missing state_dir is created private");

    let before = harness::all_logs().len();
    let (second, code) = fb.start(&props, harness::INFO);
    assert_eq!(
        code, 0,
        "a second instance on Fluent Bit < 4.1 must be refused"
    );
    drop(second);
    // The first instance keeps logging from its own threads meanwhile; count only the second's.
    let lines: Vec<_> = harness::all_logs()[before..]
        .iter()
        .filter(|(_, line)| !line.starts_with("[onepassword.0]"))
        .cloned()
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].1.contains("4.1"), "{lines:?}");

    // The single instance works through the non-Ctx callbacks.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut events = 0;
    while events == 0 && std::time::Instant::now() < deadline {
        if let Some(buffer) = first.collect() {
            events += harness::events::decode(&buffer).len();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(events > 0, "no events through FLBPluginInputCallback");
    first.stop(false);
    fb.unregister(&def);
}
