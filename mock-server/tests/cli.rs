//! The binary: `token` output works against a plain `serve` (`--days 0` is already expired),
//! which stops cleanly on SIGTERM.

mod common;

use std::io::BufRead;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_op-events-mock");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_work_against_serve_and_sigterm_stops_it() {
    let mut server = common::serve(&["--events", "50", "--seed", "3"]);
    let port = server.port;
    let mut line = String::new();
    let out = Command::new(BIN)
        .args([
            "token",
            "--region",
            "us",
            "--features",
            "signinattempts,itemusages",
            "--account",
            "acme",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let url = format!("http://127.0.0.1:{port}");
    let send = |path: &str| {
        common::client()
            .post(format!("{url}{path}"))
            .bearer_auth(&token)
            .body(r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#)
            .send()
    };
    let r = send("/api/v2/signinattempts").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 50);
    assert_eq!(
        send("/api/v2/auditevents").await.unwrap().status(),
        401,
        "feature not granted"
    );
    let expired = Command::new(BIN)
        .args(["token", "--days", "0"])
        .output()
        .unwrap();
    let expired = String::from_utf8(expired.stdout).unwrap();
    let r = common::client()
        .get(format!("{url}/api/v2/auth/introspect"))
        .bearer_auth(expired.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a --days 0 token has already expired");

    let mut logged = String::new();
    while !logged.contains("/api/v2/auditevents") {
        line.clear();
        server.log.read_line(&mut line).unwrap();
        logged.push_str(&line);
    }
    assert!(
        logged.contains("status=200") && logged.contains("items=50"),
        "{logged}"
    );
    assert!(!logged.contains(&token), "the token is never logged");

    terminate_within(&mut server.child, Duration::from_secs(10));
}

/// Sends SIGTERM and checks the server exits cleanly within `limit`.
fn terminate_within(server: &mut std::process::Child, limit: Duration) {
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        assert!(
            started.elapsed() < limit,
            "still running {:?} after SIGTERM",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scripts wait for the ready line (and read `--addr …:0`'s port from it), then may stop the
/// server at once: the line comes at any `--log` level, and SIGTERM right after it is a clean
/// stop.
#[test]
fn the_ready_line_comes_at_any_log_level_and_a_sigterm_right_after_it_is_clean() {
    use std::io::BufRead as _;
    for level in ["warn", "off", "warn", "off", "warn", "off", "warn", "off"] {
        let mut server = Command::new(env!("CARGO_BIN_EXE_op-events-mock"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--events",
                "5",
                "--log",
                level,
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = std::io::BufReader::new(server.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = log.read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        if !line.contains("ready") {
            let _ = server.kill();
            panic!("--log {level}: no ready line first: {line:?}");
        }
        common::listening(&line);
        terminate_within(&mut server, Duration::from_secs(10));
    }
}

/// SIGTERM ends the process within a few seconds even while a client holds a request open
/// (here with no timeouts at all, so nothing else would end it).
#[test]
fn sigterm_does_not_wait_for_a_client_that_never_finishes_its_request() {
    use std::io::Write as _;
    let mut server = common::serve(&["--events", "5", "--header-timeout-secs", "0"]);
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled
        .write_all(b"POST /api/v2/itemusages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    // Let the server take the head and start waiting for the body.
    std::thread::sleep(Duration::from_millis(300));
    terminate_within(&mut server.child, Duration::from_secs(6));
    drop(stalled);
}

/// The repo's fixtures are from 2024: on today's clock they are outside retention, which
/// `serve` says at start, with the --now that serves them; with that --now it says nothing.
#[test]
fn fixtures_outside_retention_are_warned_about() {
    let fixtures = common::fixtures_dir();
    let fixtures = fixtures.to_str().unwrap();
    let startup = common::serve(&["--events", "5", "--fixtures", fixtures])
        .startup
        .clone();
    let warning = startup
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning: {startup}"));
    assert!(
        warning.contains("11 of the 11 fixture events are older than the 120-day retention"),
        "{warning}"
    );
    let now = warning
        .split("--now ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no --now suggested: {warning}"));

    let startup = common::serve(&["--events", "5", "--fixtures", fixtures, "--now", now])
        .startup
        .clone();
    assert!(!startup.contains("WARN"), "{startup}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_self_signed_writes_the_ca_that_clients_then_trust() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("mock-ca.pem");
    let server = common::serve(&[
        "--events",
        "5",
        "--tls-self-signed",
        ca_file.to_str().unwrap(),
    ]);
    let port = server.port;
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let r = common::https_client(&ca)
            .get(format!("https://{host}:{port}/_mock/clock"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    drop(server);

    // Certificate files that are not there: the error names the flag and the file.
    let out = Command::new(BIN)
        .args(["serve", "--tls-cert", "/nonexistent/cert.pem"])
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains("/nonexistent/cert.pem"),
        "{err}"
    );
}

#[test]
fn help_teaches_every_flag() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--addr",
        "--events",
        "--seed",
        "--span-days",
        "--retention-days",
        "--region",
        "--key",
        "--now",
        "--rate-limit-per-minute",
        "--rate-limit-per-hour",
        "--no-retry-after",
        "--reject-unknown-fields",
        "--fixtures",
        "--account",
        "--msp-accounts",
        "--admin-allow-remote",
        "--gzip",
        "--tls-cert",
        "--tls-key",
        "--tls-self-signed",
        "--header-timeout-secs",
        "--max-accounts",
        "--log",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

/// `--max-accounts 1` holds the default account only: a token for another is answered 403,
/// the reason header naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_accounts_caps_the_accounts_serve_makes() {
    let mut server = common::serve(&["--events", "5", "--max-accounts", "1"]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let status = |account: &'static str| {
        let out = Command::new(BIN)
            .args(["token", "--account", account])
            .output()
            .unwrap();
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        common::client()
            .get(format!("{url}/api/v2/auth/introspect"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(status("acme").await.unwrap().status(), 200);
    let refused = status("globex").await.unwrap();
    assert_eq!(refused.status(), 403);
    let reason = refused.headers()["x-op-events-mock-reason"]
        .to_str()
        .unwrap();
    assert!(
        reason.contains("as many as --max-accounts allows (1;"),
        "{reason}"
    );
    terminate_within(&mut server.child, Duration::from_secs(10));
}

/// `--msp-accounts none` serves v2 events as an ordinary account's, without the MSP fields; a
/// list with an empty name is refused at start, saying what the flag takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msp_accounts_none_serves_v2_without_the_msp_fields() {
    let mut server = common::serve(&["--events", "20", "--msp-accounts", "none"]);
    let port = server.port;
    let out = Command::new(BIN).arg("token").output().unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let body: serde_json::Value = common::client()
        .post(format!("http://127.0.0.1:{port}/api/v2/itemusages"))
        .bearer_auth(&token)
        .body(r#"{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    for item in items {
        assert!(item.get("account_uuid").is_none(), "{item}");
        assert!(item["user"].get("user_type").is_none(), "{item}");
    }
    terminate_within(&mut server.child, Duration::from_secs(10));

    let out = Command::new(BIN)
        .args(["serve", "--msp-accounts", "acme,"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected `all`, `none` or account names separated by commas"),
        "{err}"
    );
}

#[test]
fn fixtures_load_into_the_default_account() {
    let mock = common::start(op_events_mock::MockConfig {
        events_per_type: 0,
        fixtures_dir: Some(common::fixtures_dir()),
        now: Some("2024-05-15T00:00:00Z".parse().unwrap()),
        ..op_events_mock::MockConfig::default()
    });
    let events = mock.events("acme", "itemusages");
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::fixtures_dir().join("responses/v2/itemusages.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(&events, fixture["items"].as_array().unwrap());
    assert_eq!(
        mock.events("acme", "signinattempts").len(),
        4,
        "signinattempts*.json, the empty one included"
    );
    // A directory that is not there, or one without fixtures (one level off): the error
    // names it and, for the second, what it should hold.
    let responses = common::fixtures_dir().join("responses");
    for (dir, says) in [
        ("/nonexistent/fixtures".into(), "/nonexistent/fixtures"),
        (responses.clone(), "expected signinattempts*.json"),
    ] {
        let Err(e) = op_events_mock::MockServer::start(op_events_mock::MockConfig {
            fixtures_dir: Some(dir),
            ..op_events_mock::MockConfig::default()
        }) else {
            panic!("started with fixtures from {says}");
        };
        assert!(format!("{e:#}").contains(says), "{e:#}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--fixtures"])
        .arg(&responses)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no fixtures in {}", responses.display())),
        "{err}"
    );
}

/// `token --features` refuses names no endpoint knows (`--features ''` among them), naming
/// the valid ones, instead of printing a token that later gets 401s; so does `--account ''`.
#[test]
fn token_refuses_unknown_features_and_an_empty_account() {
    for features in [
        "bogus",
        "",
        "itemusages,,auditevents",
        "signinattempts,audit",
    ] {
        let err = refused(&["token", "--features", features]);
        assert!(
            err.contains("expected signinattempts, itemusages or auditevents"),
            "{features:?}: {err}"
        );
    }
    // An empty account name (`--account "$UNSET"`) names no account anyone means.
    let err = refused(&["token", "--account", ""]);
    assert!(err.contains("an account name must not be empty"), "{err}");
}

/// `op-events-mock ARGS`, which clap must refuse (exit 2, nothing on stdout): its stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    err
}

/// `token --days never --legacy-audience` prints a token without `exp` whose audience names no
/// host; `--days` takes nothing else but a number.
#[test]
fn token_mints_never_expiring_and_old_audience_tokens() {
    let out = Command::new(BIN)
        .args(["token", "--days", "never", "--legacy-audience"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims = common::claims(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(claims.get("exp"), None, "{claims}");
    assert_eq!(claims["aud"], "com.1password.streamingservice");

    // Minted alike (same spec, same issue time), two tokens still differ: revoking one must
    // leave the other working.
    let minted = || {
        Command::new(BIN)
            .args(["token", "--issued-at", "2026-11-24T12:00:00Z"])
            .output()
            .unwrap()
            .stdout
    };
    assert_ne!(minted(), minted());

    let err = refused(&["token", "--days", "forever"]);
    assert!(
        err.contains("'forever' for '--days <DAYS|never>': expected a number of days from 0"),
        "{err}"
    );
}

/// A port already taken (another mock, a CI service): the error names the flag and address
/// to change, not only the OS's "Address already in use".
#[test]
fn an_address_in_use_is_named_in_the_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--events", "0", "--addr", &addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on --addr {addr}")),
        "{err}"
    );
}

#[test]
fn times_out_of_range_are_errors_not_panics() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["token", "--days", "100000000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("from 0 to 36500, or `never`"), "{err}");
    let late = [
        "token",
        "--issued-at",
        "9990-01-01T00:00:00Z",
        "--days",
        "36500",
    ];
    let (code, err) = run(&late);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--days 36500 is out of range") && !err.contains("panicked"),
        "{err}"
    );
    for args in [
        [
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--now",
            "2300-01-01T00:00:00Z",
        ],
        ["serve", "--addr", "127.0.0.1:0", "--span-days", "200000"],
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("must stay within") && !err.contains("panicked"),
            "{err}"
        );
    }
}

/// Values that would exhaust memory or mean nothing are refused as the arguments are read,
/// naming the flag and what it takes.
#[test]
fn serve_refuses_too_many_events_and_a_bad_log_filter() {
    for (args, says) in [
        (
            ["--events", "1000001"],
            "'--events <EVENTS>': 1000001 is not in 0..=1000000",
        ),
        (
            ["--log", "bogus[[["],
            "'--log <LOG>': invalid filter directive (examples: info",
        ),
        (
            ["--account", " "],
            "'--account <ACCOUNT>': an account name must not be empty",
        ),
    ] {
        let err = refused(&[&["serve", "--addr", "127.0.0.1:0"][..], &args].concat());
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// Listening on every interface (`--addr 0.0.0.0:…`, as in a container): the ready line's `url`
/// is one a client can connect to, and the listening address is logged beside it.
#[tokio::test]
async fn ready_names_a_url_to_connect_to_when_listening_on_every_interface() {
    let mut server = common::serve_on("0.0.0.0:0", &["--events", "1"]);
    let ready = server.startup.lines().last().unwrap_or_default().to_owned();
    assert!(common::listening(&ready).ip().is_unspecified(), "{ready}");
    let url = format!("http://127.0.0.1:{}", server.port);
    assert!(ready.contains(&format!("url={url} ")), "{ready}");
    let r = common::client()
        .get(format!("{url}/api/v2/auth/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "served, and no token given");
    terminate_within(&mut server.child, Duration::from_secs(10));
}
