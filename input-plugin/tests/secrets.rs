//! The bearer token never leaks: not in logs at any level (captured at TRACE, HTTP stack
//! included, through retries, 401s, resets and truncated bodies), error messages, `Debug` output,
//! panic messages, delivered records, state files, the binary's output, or any documented command
//! line. State files are 0600 in a 0700 directory.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use op_events_input::config::Config;
use op_events_input::encode::Target;
use op_events_input::pipeline::{BatchLimits, Collector, load_token};
use op_events_mock::{Fault, FaultKind, MockConfig, MockServer};
use secrecy::SecretString;

/// Every piece of a token worth grepping for: the whole token and its signature.
fn needles(token: &str) -> Vec<String> {
    let mut n = vec![token.to_owned()];
    if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() >= 16) {
        n.push(sig.to_owned());
    }
    n
}

fn assert_clean(what: &str, text: &str, token: &str) {
    for needle in needles(token) {
        assert!(!text.contains(&needle), "the token leaked into {what}");
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// What a process printed, stdout then stderr: the token must be in neither.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Collectors in this binary run one at a time. Another collector without a log dispatch runs
/// its threads with none, and while this test's dispatch is the only one in the process, a log
/// call those threads reach first is cached as "never" for every thread (tokio-rs/tracing#3611):
/// some of this one's WARN lines would then go missing. Plugin instances (a dispatch each) and
/// the binary (a global one) never run a collector without one; only tests mix them like this.
static SERIAL: Mutex<()> = Mutex::new(());

/// A mock serving `events` events of each type.
fn mock(events: usize) -> MockServer {
    MockServer::start(MockConfig {
        events_per_type: events,
        ..MockConfig::default()
    })
    .unwrap()
}

#[test]
fn collector_run_leaks_nothing_at_trace() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mock = mock(300);
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    // Every error path the collector logs: 401, 5xx, 429, resets, truncated and invalid bodies.
    for kind in [
        FaultKind::Status(401),
        FaultKind::Status(503),
        FaultKind::Status(429),
        FaultKind::Reset,
        FaultKind::Truncate,
        FaultKind::InvalidJson,
    ] {
        mock.inject(Fault {
            kind,
            count: 1,
            path: None,
        });
    }
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let mut config = Config::from_pairs([
        ("base_url", mock.url().as_str()),
        ("state_dir", state_dir.to_str().unwrap()),
        ("format", "raw"),
        ("limit", "100"),
        ("retry_initial", "50ms"),
        ("retry_max", "200ms"),
        ("unauthorized_retry", "200ms"),
        ("request_timeout", "5s"),
        ("start_time", "2000-01-01T00:00:00Z"),
    ])
    .unwrap();
    config.token = Some(SecretString::from(token.clone()));

    let logs = Capture::default();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let panics = Arc::new(Mutex::new(Vec::<String>::new()));
    let p2 = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        p2.lock().unwrap().push(info.to_string())
    }));

    let collector = Collector::start(config, Target::Ndjson, Some(dispatch)).unwrap();
    let limits = BatchLimits {
        max_records: 500,
        max_bytes: 1 << 20,
    };
    let mut delivered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !collector.is_caught_up() && Instant::now() < deadline {
        if let Some(batch) = collector.take_timeout(limits, Duration::from_millis(100)) {
            delivered.extend_from_slice(&batch.to_vec());
            collector.ack(batch.ack);
        }
    }
    assert!(collector.is_caught_up(), "did not catch up in 30 s");
    collector.shutdown(Duration::from_secs(5));
    let _ = std::panic::take_hook();
    std::panic::set_hook(previous);

    let records = delivered.iter().filter(|b| **b == b'\n').count();
    assert_eq!(records, 900, "every event once");
    assert_clean(
        "delivered records",
        &String::from_utf8_lossy(&delivered),
        &token,
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // TRACE really was captured (the HTTP stack's own lines included), and the errors were logged.
    assert!(logs.contains("TRACE"), "nothing at TRACE was captured");
    if !logs.contains("401") && !logs.contains("token rejected") {
        let warn: Vec<_> = logs
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        panic!("no 401 line: {warn:#?}");
    }
    assert!(
        logs.contains("503"),
        "no 5xx line: {:?} {}",
        mock.stats().requests,
        logs.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_clean("logs at TRACE", &logs, &token);

    for p in panics.lock().unwrap().iter() {
        assert_clean("a panic message", p, &token);
    }

    let files = all_files(&state_dir);
    assert!(files.iter().any(|(n, _)| n.contains("state-")), "{files:?}");
    for (name, bytes) in &files {
        assert_clean(name, &String::from_utf8_lossy(bytes), &token);
    }
    use std::os::unix::fs::PermissionsExt as _;
    for (name, _) in files.iter().filter(|(n, _)| n.ends_with(".json")) {
        let mode = std::fs::metadata(name).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let mode = std::fs::metadata(&state_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn errors_and_debug_output_never_show_the_token() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let token = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOlsiZXZlbnRzLjFwYXNzd29yZC5jb20iXX0.c2lnbmF0dXJlLXNlY3JldC12YWx1ZQ";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let mut shown = Vec::new();
    let base = |extra: &[(&str, &str)]| {
        let mut c = Config {
            token: Some(SecretString::from(token.to_owned())),
            state_dir: dir.path().join("s"),
            ..Config::default()
        };
        for (k, v) in extra {
            c.set(k, v).unwrap();
        }
        c
    };
    let configs = [
        base(&[("base_url", "http://example.com")]),
        base(&[
            ("base_url", "https://127.0.0.1:1"),
            ("ca_file", "/nonexistent.pem"),
        ]),
        base(&[
            ("base_url", "https://127.0.0.1:1"),
            ("state_dir", &format!("{}/sub", file.display())),
        ]),
        base(&[
            ("base_url", "https://127.0.0.1:1"),
            ("proxy", "http://proxy.invalid:3128"),
        ]),
        {
            let mut c = base(&[("base_url", "https://127.0.0.1:1")]);
            c.limit = 0;
            c
        },
    ];
    for config in configs {
        shown.push(format!("{config:?}"));
        if let Err(e) = Collector::start(config, Target::Ndjson, None) {
            shown.push(e.to_string());
            shown.push(format!("{e:?}"));
        }
    }
    let t = load_token(&base(&[])).unwrap();
    shown.push(format!("{t:?}"));
    shown.push(t.explain_unauthorized(None, "events.1password.eu"));
    let mut c = base(&[]);
    c.token = Some(SecretString::from(format!("{token} with spaces")));
    shown.push(load_token(&c).unwrap_err().to_string());
    assert!(shown.len() > 8);
    for s in &shown {
        assert_clean("an error or Debug output", s, token);
    }
}

/// `op-events check` at trace level against a server that answers 401 and 500, and `--help`.
#[test]
fn binary_output_never_shows_the_token() {
    let mock = mock(10);
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    mock.inject(Fault {
        kind: FaultKind::Status(401),
        count: 2,
        path: None,
    });
    let state = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_op-events");
    let check: Vec<String> = vec![
        "--log-level".into(),
        "trace".into(),
        "check".into(),
        "--base-url".into(),
        mock.url(),
    ];
    // `check` twice: both meet a 401 (the fault's count).
    let runs: Vec<Vec<String>> = vec![
        check.clone(),
        check,
        vec![
            "--log-level".into(),
            "trace".into(),
            "run".into(),
            "--once".into(),
            "--base-url".into(),
            mock.url(),
            "--state-dir".into(),
            state.path().display().to_string(),
            "--format".into(),
            "raw".into(),
        ],
        vec!["run".into(), "--help".into()],
        vec!["run".into(), "--set".into(), format!("TOKEN={token}")],
    ];
    let mut saw_set_refusal = false;
    for args in runs {
        let out = Command::new(bin)
            .args(&args)
            .env("OP_EVENTS_TOKEN", &token)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let text = printed(&out);
        assert_clean(&format!("op-events {args:?}"), &text, &token);
        if args.iter().any(|a| a.starts_with("TOKEN=")) {
            assert_eq!(
                out.status.code(),
                Some(2),
                "--set TOKEN= must be refused: {text}"
            );
            saw_set_refusal = text.contains("never taken on the command line");
        }
        if args.contains(&"--help".to_owned()) {
            assert!(text.contains("--token-file"), "{text}");
            assert!(
                !text.contains("--token "),
                "a --token flag would put it in `ps`"
            );
        }
    }
    assert!(saw_set_refusal);
    for (name, bytes) in all_files(state.path()) {
        assert_clean(&name, &String::from_utf8_lossy(&bytes), &token);
    }
    let _ = std::io::stderr().flush();
}

/// A token pasted into the wrong place (a flag's value, a path, a stray argument, a config
/// file's other key, a config file with a syntax error) is quoted by the error about it: the
/// binary shows it redacted, whether it is the token it was given or only looks like one.
#[test]
fn a_token_in_the_wrong_place_is_never_shown() {
    // As long as a real one: too long a name for a file, so `--state-dir` fails on it.
    let token = &format!(
        "eyJhbGciOiJFUzI1NiJ9.eyJ{}.{}",
        "YXVkIjoiZXZlbnRzIn0".repeat(12),
        "c2lnbmF0dXJl".repeat(8)
    );
    // Not shaped like a token, and not in the environment: only the TOML message can hide it.
    let opaque = "opaque-secret-1234567890";
    let dir = tempfile::tempdir().unwrap();
    let toml = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let unterminated = toml(
        "unterminated.toml",
        format!("limit = 5\ntoken = \"{token}\n"),
    );
    let opaque_unterminated = toml("opaque.toml", format!("token = \"{opaque}\n"));
    let region = toml("region.toml", format!("region = \"{token}\"\n"));
    let token_file = toml("token_file.toml", format!("token_file = \"{token}\"\n"));
    let set_token_file = format!("token_file={token}");
    let cases: Vec<(Vec<&str>, bool, &str)> = vec![
        // (arguments, OP_EVENTS_TOKEN set, what the error still says)
        (
            vec!["check", "--config", &unterminated],
            false,
            "line 2, column",
        ),
        (
            vec!["check", "--config", &opaque_unterminated],
            false,
            "line 1, column",
        ),
        (
            vec!["check", "--config", &token_file],
            false,
            "token_file [redacted]: ",
        ),
        (
            vec!["check", "--set", &set_token_file],
            false,
            "token_file [redacted]: ",
        ),
        (
            vec!["check", "--token-file", token],
            false,
            "--token-file [redacted]: ",
        ),
        (
            vec!["check", "--region", token],
            true,
            "--region: `[redacted]`",
        ),
        (
            vec!["--log-level", token, "check"],
            true,
            "--log-level: `[redacted]`",
        ),
        (
            vec![
                "run",
                "--once",
                "--base-url",
                "http://127.0.0.1:9",
                "--state-dir",
                token,
            ],
            true,
            "--state-dir [redacted]",
        ),
        (
            vec!["check", "--set", token],
            true,
            "--set [redacted]: expected KEY=VALUE",
        ),
        (
            vec!["check", "--config", &region],
            true,
            "region: `[redacted]`",
        ),
        (
            vec!["check", token],
            true,
            "unexpected argument '[redacted]'",
        ),
    ];
    let bin = env!("CARGO_BIN_EXE_op-events");
    for (args, env, said) in cases {
        let mut c = Command::new(bin);
        c.args(&args)
            .current_dir(dir.path())
            .env_remove("OP_EVENTS_TOKEN");
        if env {
            c.env("OP_EVENTS_TOKEN", token);
        }
        let out = c.output().unwrap();
        let text = printed(&out);
        assert_clean(&format!("op-events {args:?}"), &text, token);
        assert!(!text.contains(opaque), "op-events {args:?}: {text}");
        assert!(text.contains(said), "op-events {args:?}: {text}");
        assert_ne!(out.status.code(), Some(0), "op-events {args:?}: {text}");
    }
}

/// Log lines (warnings, not only the final error) go through the same redaction: the warning
/// about a token file others can read quotes its path, here a token pasted as its name.
#[test]
fn a_warning_never_shows_a_token_shaped_value() {
    use std::os::unix::fs::PermissionsExt as _;
    let shaped = "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJldmVudHMifQ.c2lnbmF0dXJlLXNlY3JldA";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(shaped);
    std::fs::write(&path, "opaque-token-value-123\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    for format in ["text", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_op-events"))
            .args([
                "--log-format",
                format,
                "check",
                "--base-url",
                "http://127.0.0.1:9",
            ])
            .arg("--token-file")
            .arg(&path)
            .env_remove("OP_EVENTS_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("can be read by other users"), "{stderr}");
        assert!(stderr.contains("[redacted]"), "{stderr}");
        assert_clean(&format!("a --log-format {format} warning"), &stderr, shaped);
        assert!(!stderr.contains("opaque-token-value"), "{stderr}");
    }
}

/// Documented commands never put a token on a command line (`ps`, shell history): no `--token`
/// flag, no `--set token=`, no literal JWT, no `-p token=` other than Fluent Bit's own
/// `'${ENV}'` reference (single-quoted: the shell does not expand it). The mock's README may
/// pass its throwaway development tokens to `curl`, which is not our process.
#[test]
fn documented_examples_keep_tokens_off_command_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md"), root.join("mock-server/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            files.push(p);
        }
    }
    let jwt = |w: &str| {
        let parts: Vec<_> = w.split('.').collect();
        parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| p.len() >= 8)
    };
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mock_readme = file.ends_with("mock-server/README.md");
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            let at = format!("{}:{}: {line}", file.display(), n + 1);
            let token_flag = lower.match_indices("--token").any(|(i, _)| {
                !lower[i + 7..].starts_with("-file") && !lower[i + 7..].starts_with('_')
            });
            if token_flag
                || lower.contains("--set token")
                || lower.contains("-p token=") && !lower.contains("-p token='${")
                || line
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .any(jwt)
                || !mock_readme && lower.contains("bearer $")
            {
                problems.push(at);
            }
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    assert!(
        problems.is_empty(),
        "tokens on command lines:\n{}",
        problems.join("\n")
    );
}

/// A token read from a file is hidden as the environment's is, whatever its shape: here one
/// that is not a JWT (only its exact text can hide it), pasted by mistake into `--ca-file` (the
/// final error quotes it) and into `--base-url` (log lines and the final error quote it),
/// against the mock. Given by `--token-file` and by the `--config` file's `token_file` or
/// `token`.
#[test]
fn a_token_read_from_a_file_is_never_shown_whatever_its_shape() {
    let mock = mock(10);
    let opaque = "Zq7xK2mP9vR4tW8yB3nL6cF1hJ5dG0sA2eU7iO4k";
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let file = write("token", format!("{opaque}\n"));
    let config_file = write("file.toml", format!("token_file = \"{file}\"\n"));
    let config_token = write("token.toml", format!("token = \"{opaque}\"\n"));
    let pasted_url = format!("{}/{opaque}", mock.url());
    let state = dir.path().join("state").display().to_string();
    let sources: [&[&str]; 3] = [
        &["--token-file", &file],
        &["--config", &config_file],
        &["--config", &config_token],
    ];
    for source in sources {
        let check: &[&str] = &["check", "--base-url", &mock.url(), "--ca-file", opaque];
        let run: &[&str] = &[
            "run",
            "--once",
            "--base-url",
            &pasted_url,
            "--state-dir",
            &state,
        ];
        let url_said = format!("{}/[redacted]", mock.url());
        for (args, said) in [(check, "--ca-file [redacted]"), (run, url_said.as_str())] {
            let out = Command::new(env!("CARGO_BIN_EXE_op-events"))
                .args(args)
                .args(source)
                .current_dir(dir.path())
                .env_remove("OP_EVENTS_TOKEN")
                .output()
                .unwrap();
            let text = printed(&out);
            let what = format!("op-events {args:?} {source:?}");
            assert!(!text.contains(opaque), "{what}: {text}");
            assert!(text.contains(said), "{what}: {text}");
            assert_ne!(out.status.code(), Some(0), "{what}: {text}");
        }
    }
}
