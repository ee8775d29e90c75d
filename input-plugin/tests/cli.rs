//! The `op-events` binary end to end against the mock.

mod connect_proxy;

use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, Stdio};

use op_events_mock::{Fault, FaultKind, MockConfig, MockServer, Tls};

const BIN: &str = env!("CARGO_BIN_EXE_op-events");

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        events_per_type: 120,
        ..MockConfig::default()
    })
    .unwrap()
}

fn op_events(token: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("OP_EVENTS_TOKEN");
    if let Some(t) = token {
        c.env("OP_EVENTS_TOKEN", t);
    }
    c
}

/// A `--config` file holding `text`.
fn config_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

/// Runs `c`, which must fail as a usage error (exit 2, nothing on stdout): its stderr.
fn usage_error(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{stderr}");
    stderr
}

/// `op-events check ARGS --base-url <mock>`, with `token` in `OP_EVENTS_TOKEN` if given.
fn check_against(mock: &MockServer, token: Option<&str>, args: &[&str]) -> std::process::Output {
    op_events(token)
        .arg("check")
        .args(args)
        .args(["--base-url", &mock.url()])
        .output()
        .unwrap()
}

/// `op-events run --once --format raw` against `mock`, with its state in `state`.
/// The NDJSON records a run wrote: its stdout's non-empty lines.
fn records(stdout: &[u8]) -> impl Iterator<Item = &[u8]> {
    stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

fn once_raw(token: &str, mock: &MockServer, state: &std::path::Path) -> Command {
    let mut c = op_events(Some(token));
    c.args([
        "run",
        "--once",
        "--format",
        "raw",
        "--base-url",
        &mock.url(),
    ])
    .arg("--state-dir")
    .arg(state);
    c
}

#[test]
fn run_once_drains_then_resumes_with_nothing_new() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let run = || {
        once_raw(&token, &mock, state.path())
            .args(["--limit", "50"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = records(&out.stdout)
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 360);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(token.rsplit('.').next().unwrap()));
    let again = run();
    assert!(again.status.success());
    assert!(again.stdout.is_empty(), "re-delivered after checkpoint");
    assert_eq!(state_files(state.path()).len(), 3);
}

/// A run killed while writing to a file leaves a torn last line; the next run appended to
/// the same file (`>>`) starts on a new line, so its first event is not glued to it.
#[test]
fn a_run_appending_to_a_torn_line_starts_on_a_new_one() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    std::fs::write(&path, br#"{"event":{"cat"#).unwrap();
    let append = || {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        once_raw(&token, &mock, state.path())
            .stdout(file)
            .output()
            .unwrap()
    };
    let out = append();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ends inside a line"), "{stderr}");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(r#"{"event":{"cat"#));
    let events = lines.filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
    assert_eq!(events.count(), 120);
    // A file that ends in a newline gets nothing more.
    let again = append();
    assert!(!String::from_utf8_lossy(&again.stderr).contains("ends inside a line"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// A cron job must not report success while its checkpoints go nowhere: every run would send
/// the same events again. `/proc/self/fdinfo` exists but takes no new files, even for root.
/// A start time in the future is valid (it may be meant), but it is said, since it also means
/// nothing before it is ever collected.
/// A start time before the API's retention is raised to it; asked for explicitly, that is said.
#[test]
fn a_start_time_before_retention_is_raised_and_said() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    for asked in ["2020-01-01T00:00:00Z", "365d"] {
        let out = run_once(&token, &mock.url(), &["--start-time", asked]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(records(&out.stdout).count(), 120);
        let shown = if asked == "365d" { "365d ago" } else { asked };
        assert!(
            stderr.contains(&format!("start_time {shown} is before what the API keeps")),
            "{stderr}"
        );
    }
    let out = run_once(&token, &mock.url(), &["--start-time", "7d"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("before what the API keeps"));
}

#[test]
fn a_future_start_time_is_warned_about() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let out = run_once(
        &token,
        &mock.url(),
        &["--start-time", "2099-01-01T00:00:00Z"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.contains("start_time 2099-01-01T00:00:00Z is in the future"),
        "{stderr}"
    );
}

/// A `state_dir` that takes no new file fails the start (as a usage error, like an unreadable
/// `token_file`): a run that could save no checkpoint would send the whole window every time.
#[test]
fn run_fails_at_start_when_state_dir_takes_no_file() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    // procfs: a directory in which no one, root included, can create a file.
    let stderr = usage_error(
        op_events(Some(&token))
            .args(["run", "--once", "--state-dir", "/proc/self/fdinfo"])
            .args(["--base-url", &mock.url()]),
    );
    assert!(
        stderr.contains("--state-dir /proc/self/fdinfo is not writable"),
        "{stderr}"
    );
    assert!(mock.stats().requests.is_empty(), "nothing fetched");
}

/// State writes that fail once the run is going (a full disk: `ulimit -f 0` makes every write
/// to a regular file raise SIGXFSZ, which the binary takes so that the write fails with EFBIG
/// instead of killing it; stdout is a pipe).
#[test]
fn run_once_fails_when_checkpoints_cannot_be_saved() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .args(["-c", "ulimit -f 0; exec \"$@\"", "sh", BIN])
        .env("OP_EVENTS_TOKEN", &token)
        .args(["run", "--once", "--limit", "20"])
        .args(["--set", "checkpoint_interval=0", "--base-url", &mock.url()])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Six pages a stream, each tried: reported once a stream, not once a write.
    let reported = stderr.matches("could not be written").count();
    assert_eq!(reported, 3, "{stderr}");
    assert!(
        stderr.contains("the checkpoints could not be saved"),
        "{stderr}"
    );
    assert!(!stderr.contains("checkpoints saved"), "{stderr}");
    assert_eq!(
        records(&out.stdout).count(),
        360,
        "the events are still delivered"
    );
}

/// A deployment without `/api/v2/auth/introspect` (404): the collector falls back to v1
/// introspection, takes the account from the token, and delivers everything.
#[test]
fn introspection_falls_back_to_v1_on_404() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    const V2: &str = "/api/v2/auth/introspect";
    mock.inject(Fault {
        kind: FaultKind::Status(404),
        count: 100,
        path: Some(V2.into()),
    });
    let state = tempfile::tempdir().unwrap();
    let out = once_raw(&token, &mock, state.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(records(&out.stdout).count(), 360, "{stderr}");
    let stats = mock.stats();
    assert_eq!(stats.count(V2, 404), 1);
    assert_eq!(stats.count("/api/auth/introspect", 200), 1);
    // The state files are named after the token's account, as with v2 introspection.
    let account = mock.account_uuid("acme");
    let named = state_files(state.path())
        .iter()
        .filter(|p| p.to_string_lossy().contains(&account))
        .count();
    assert_eq!(named, 3, "one state file per stream for {account}");
}

/// The token's sources, first to last: `--token-file` (or `--set token_file=`), then
/// `OP_EVENTS_TOKEN`, then the `--config` file, as for every other option the command line
/// beats the file. Each case has the right token in the source that must win only.
#[test]
fn token_flags_beat_the_environment_which_beats_the_config_file() {
    let mock = mock();
    let good = mock.token("acme", &["auditevents"]);
    let bad = "not-the-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good_file = write("good", &good);
    let bad_file = write("bad", bad);
    let file_token = write("token.toml", &format!("token = \"{bad}\"\n"));
    let file_token_file = write("token_file.toml", &format!("token_file = \"{bad_file}\"\n"));
    let set_good = format!("token_file={good_file}");
    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec!["--config", &file_token, "--token-file", &good_file],
            None,
        ),
        (vec!["--config", &file_token, "--set", &set_good], None),
        (vec!["--config", &file_token], Some(&good)),
        (vec!["--config", &file_token_file], Some(&good)),
        (vec!["--token-file", &good_file], Some(bad)),
        (
            vec!["--config", &file_token, "--token-file", &good_file],
            Some(bad),
        ),
    ];
    for (args, env) in cases {
        let out = check_against(&mock, env, &args);
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?} with {env:?}: {text}");
        assert!(text.contains("auditevents     ok"), "{args:?}: {text}");
    }
}

/// A token file, or a `--config` file holding the token, that other users can read is warned
/// about once, with the fix; it is still used. Files readable by their owner only, and a config
/// file without the token, are not.
#[test]
fn files_holding_the_token_readable_by_others_are_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let shared_token = write("shared-token", &token, 0o666);
    let own_token = write("own-token", &token, 0o600);
    let shared_config = write("shared.toml", &format!("token = \"{token}\"\n"), 0o644);
    let own_config = write("own.toml", &format!("token = \"{token}\"\n"), 0o600);
    let no_token_config = write(
        "no-token.toml",
        &format!("token_file = \"{own_token}\"\n"),
        0o644,
    );
    for (args, warned) in [
        (
            vec!["--token-file", &shared_token],
            Some(("token_file", &shared_token, "0666")),
        ),
        (
            vec!["--config", &shared_config],
            Some(("--config", &shared_config, "0644")),
        ),
        (vec!["--token-file", &own_token], None),
        (vec!["--config", &own_config], None),
        (vec!["--config", &no_token_config], None),
    ] {
        let out = check_against(&mock, None, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        match warned {
            Some((what, path, mode)) => {
                let warning = format!(
                    "{what} {path}: holds the token but can be read by other users (mode {mode})"
                );
                assert_eq!(stderr.matches(&warning).count(), 1, "{args:?}: {stderr}");
                assert!(stderr.contains(&format!("chmod 600 {path}")), "{stderr}");
            }
            None => assert!(!stderr.contains("chmod"), "{args:?}: {stderr}"),
        }
    }
}

#[test]
fn check_reports_account_features_and_streams() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "auditevents"]);
    let out = check_against(&mock, Some(&token), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&mock.account_uuid("acme")), "{stdout}");
    // The mock's tokens expire in a year.
    assert!(
        stdout.contains("(in 364 days)\n") || stdout.contains("(in 365 days)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("signinattempts  ok"), "{stdout}");
    assert!(stdout.contains("auditevents     ok"), "{stdout}");
    // Without `events`, as `run`: the types the token grants; the rest are only named.
    assert!(
        stdout.contains("itemusages      not granted by the token (skipped)"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Asked for explicitly, a type the token lacks fails, with the reason.
    let out = check_against(&mock, Some(&token), &["--events", "itemusages,auditevents"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("itemusages      FAILED"), "{stdout}");
    assert!(
        stdout.contains("lacks the `itemusages` feature"),
        "{stdout}"
    );
    assert!(!stdout.contains("signinattempts  ok"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

/// A token of the oldest kind, whose audience names no host and which never expires, works once
/// the address is given; without it, the error says to set one.
#[test]
fn an_old_token_without_host_or_expiry_works_given_the_address() {
    let mock = mock();
    let now = mock.now();
    let token = mock.mint(&op_events_mock::TokenSpec {
        region: op_events_mock::Region::Us,
        features: ["signinattempts", "itemusages", "auditevents"]
            .map(String::from)
            .to_vec(),
        account: "acme".into(),
        issued_at: now,
        expires_at: None,
        legacy_audience: true,
    });
    let out = check_against(&mock, Some(&token), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("expires:   not stated in the token\n"),
        "{stdout}"
    );
    let state = tempfile::tempdir().unwrap();
    let run = once_raw(&token, &mock, state.path()).output().unwrap();
    assert_eq!(
        records(&run.stdout).count(),
        360,
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let out = op_events(Some(&token)).arg("check").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no Events API address: pass --region (us, ent, ca, eu) or --base-url, or set \
             `region` or `base_url` in the --config file; the token names no events host"
        ),
        "{stderr}"
    );
}

/// A loopback `base_url` is reached directly: a proxy, given with `--proxy` or `HTTP_PROXY`,
/// never sees its requests (over plain HTTP it would read the token).
#[test]
fn a_loopback_base_url_is_never_reached_through_a_proxy() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    for (flag, env) in [(true, false), (false, true)] {
        let state = tempfile::tempdir().unwrap();
        let mut run = once_raw(&token, &mock, state.path());
        if flag {
            run.args(["--proxy", &proxy_url]);
        }
        if env {
            run.env("HTTP_PROXY", &proxy_url)
                .env("http_proxy", &proxy_url);
        }
        let out = run.output().unwrap();
        assert_eq!(
            records(&out.stdout).count(),
            360,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            proxy.accept().is_err(),
            "the proxy was connected to (flag {flag}, env {env})"
        );
    }
}

/// `op-events` with none of this machine's proxy variables: only those a test sets.
fn without_proxy_env(mut c: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_ascii_lowercase()
            .ends_with("_proxy")
        {
            c.env_remove(name);
        }
    }
    c
}

/// `run --once` with `args`, retries made quick, in a state directory of its own: stdout, exit
/// code and stderr, or a failed test after 20 s. Its `base_url` is the real API's unless `args`
/// give another: through a proxy, nothing here reaches it.
fn once_through(
    token: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Vec<u8>, Option<i32>, String) {
    let base = if args.contains(&"--base-url") {
        &[][..]
    } else {
        &["--base-url", "https://events.1password.com"][..]
    };
    let state = tempfile::tempdir().unwrap();
    let mut c = without_proxy_env(op_events(Some(token)));
    c.args(["run", "--once"])
        .args(base)
        .args(["--set", "retry_initial=10ms", "--set", "retry_max=20ms"])
        .args(args)
        .arg("--state-dir")
        .arg(state.path())
        .envs(env.iter().copied());
    let out = connect_proxy::output_within(&mut c, std::time::Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.stdout, out.status.code(), stderr)
}

/// A proxy that refuses the tunnel to the API (a 403 to `CONNECT`) is a setting to change, as a
/// refused token is: `--once` ends at its first refusal, with an error naming the proxy (as
/// `--proxy` or the variable it came from gives it), its status and what to change, not 6
/// attempts of an opaque "tunnel error: unsuccessful". The HTTP client drops the status, so the
/// proxy is asked once more, with the very same request; neither holds the token.
#[test]
fn a_proxy_refusing_the_tunnel_is_named_and_ends_run_once_at_once() {
    let token = mock().token("acme", &["auditevents"]);
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::FORBIDDEN);
    let url = proxy.url();
    let refused = format!(
        "proxy {url} refused the tunnel to events.1password.com:443 (403 Forbidden): ask its \
         administrators to allow events.1password.com:443, or "
    );
    for (args, env, from, go_direct) in [
        (
            &["--proxy", url.as_str()][..],
            &[][..],
            "`proxy`",
            "unset `proxy` (--proxy) if this machine reaches events.1password.com directly",
        ),
        (
            &[],
            &[("HTTPS_PROXY", url.as_str())],
            "HTTPS_PROXY",
            "add events.1password.com to NO_PROXY if this machine reaches it directly",
        ),
        (
            &[],
            &[("all_proxy", url.as_str())],
            "all_proxy",
            "add events.1password.com to NO_PROXY if this machine reaches it directly",
        ),
    ] {
        let before = proxy.heads().len();
        let (_, code, stderr) = once_through(&token, args, env);
        assert_eq!(code, Some(1), "{stderr}");
        assert_said_once_at_the_end(
            &stderr,
            &format!("introspection failed: {refused}{go_direct}"),
        );
        assert!(!stderr.contains("retrying"), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "starting base_url=https://events.1password.com/ proxy={url} (from {from})"
            )),
            "{stderr}"
        );
        let heads = proxy.heads();
        assert_eq!(
            heads.len(),
            before + 2,
            "not tried and asked once: {heads:?}"
        );
        let (tried, asked) = (&heads[before], &heads[before + 1]);
        assert!(
            tried.starts_with("CONNECT events.1password.com:443 HTTP/1.1\r\n"),
            "{tried}"
        );
        assert_eq!(tried.to_lowercase(), asked.to_lowercase());
        assert!(
            !tried.contains(token.rsplit('.').next().unwrap()),
            "{tried}"
        );
    }
}

/// A proxy that cannot reach the API answers `CONNECT` with a 502 (or 503, 504): an outage, not
/// a refusal. `--once` backs off and tries again, as when the API is down, and gives up after 6
/// attempts, each named with the proxy's status; the proxy's credentials go with the question
/// the proxy is asked again, never into a message.
#[test]
fn a_proxy_that_cannot_reach_the_api_is_an_outage_retried_with_its_status() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::BAD_GATEWAY);
    let addr = proxy.addr();
    let with_password = format!("http://me:hunter2@{addr}");
    let (_, code, stderr) = once_through("a.b.c", &["--proxy", &with_password], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let outage = format!(
        "network: proxy http://***@{addr} could not reach events.1password.com:443 (502 Bad \
         Gateway); if this lasts, the proxy's log says why"
    );
    assert_said_once_at_the_end(
        &stderr,
        &format!("6 introspection attempts failed, last: {outage}"),
    );
    assert_eq!(stderr.matches("retrying in").count(), 5, "{stderr}");
    assert_eq!(stderr.matches(&outage).count(), 6, "{stderr}");
    assert!(!stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Each attempt tried and asked again, with the credentials ("me:hunter2").
    let heads = proxy.heads();
    assert_eq!(heads.len(), 12, "{heads:?}");
    for head in &heads {
        let sent = head
            .lines()
            .filter_map(|l| l.split_once(": "))
            .any(|(name, value)| {
                name.eq_ignore_ascii_case("proxy-authorization")
                    && value == "Basic bWU6aHVudGVyMg=="
            });
        assert!(sent, "{head}");
    }
}

/// A proxy that answers `CONNECT` with no HTTP at all (a TLS proxy named `http://`, another
/// service's port) is a setting to change, as a refusal is, and says so.
#[test]
fn a_proxy_answering_no_http_is_said_to_and_ends_run_once_at_once() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::NOT_HTTP);
    let url = proxy.url();
    let (_, code, stderr) = once_through("a.b.c", &[], &[("HTTPS_PROXY", url.as_str())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(
        &stderr,
        &format!(
            "introspection failed: proxy {url} refused the tunnel to events.1password.com:443 \
             (not an HTTP answer): check that HTTPS_PROXY names an HTTP proxy, and its port; \
             one that speaks TLS is named https://"
        ),
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    assert_eq!(proxy.heads().len(), 2, "{stderr}");
}

/// A proxy that wants credentials (407) says they go in the proxy's URL, and ends `--once` at
/// once; with credentials in the URL it says they were refused, never showing them (the
/// proxy got them). A plain-HTTP `base_url` is forwarded rather than tunnelled, and its 407
/// reads the same.
#[test]
fn a_proxy_asking_for_credentials_says_where_they_go() {
    let token = mock().token("acme", &["auditevents"]);
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::AUTH_REQUIRED);
    let (url, addr) = (proxy.url(), proxy.addr());
    let wanted = format!(
        "proxy {url} requires authentication (407 Proxy Authentication Required): put \
         user:password in the proxy URL in `proxy` (--proxy) (http://user:password@host:port)"
    );
    let with_password = format!("http://me:hunter2@{addr}");
    let refused = format!(
        "proxy http://***@{addr} refused the user name and password in its URL (407 Proxy \
         Authentication Required): correct them in HTTPS_PROXY, percent-encoding any `@`, `:`, \
         `/` or `%` in them"
    );
    let forwarded = [
        "--proxy",
        url.as_str(),
        "--base-url",
        "http://events.1password.com",
        "--insecure-http",
    ];
    for (args, env, said) in [
        (&["--proxy", url.as_str()][..], &[][..], &wanted),
        (&[], &[("HTTPS_PROXY", with_password.as_str())], &refused),
        (&forwarded[..], &[], &wanted),
    ] {
        let before = proxy.heads().len();
        let (_, code, stderr) = once_through(&token, args, env);
        assert_eq!(code, Some(1), "{stderr}");
        assert_said_once_at_the_end(&stderr, said);
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert_eq!(proxy.heads().len(), before + 1, "{stderr}");
    }
    // "me:hunter2", as Basic credentials: sent to the proxy, which refused them.
    let sent = proxy.heads()[1]
        .lines()
        .filter_map(|l| l.split_once(": "))
        .any(|(name, value)| {
            name.eq_ignore_ascii_case("proxy-authorization") && value == "Basic bWU6aHVudGVyMg=="
        });
    assert!(sent, "{:?}", proxy.heads());
}

/// A proxy that is not running is named as unreachable (not the API), and retried as any
/// outage is: `--once` gives up after 6 attempts.
#[test]
fn a_proxy_that_is_down_is_named_as_unreachable_and_retried() {
    let url = format!("http://127.0.0.1:{}", connect_proxy::closed_port());
    let (_, code, stderr) = once_through("a.b.c", &["--proxy", &url], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(&stderr, "6 introspection attempts failed");
    let unreachable = format!(
        "network: proxy {url} unreachable: tcp connect error: Connection refused (os error \
         111): check the proxy URL in `proxy` (--proxy), and that the proxy is running"
    );
    assert_eq!(stderr.matches(&unreachable).count(), 6, "{stderr}");
}

/// A proxy that refuses the tunnel and then hangs when asked why is given `connect_timeout`
/// to answer, as the client's own tunnel request is, and then counted as unreachable: an
/// outage, retried.
#[test]
fn a_proxy_silent_when_asked_why_is_unreachable_after_connect_timeout() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::Answer::ThenSilent(
        "HTTP/1.1 403 Forbidden",
    ));
    let url = proxy.url();
    let args = ["--proxy", &url, "--set", "connect_timeout=300ms"];
    let (_, code, stderr) = once_through("a.b.c", &args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(&stderr, "6 introspection attempts failed");
    let unreachable = format!(
        "network: proxy {url} unreachable, asked why it refused the tunnel to \
         events.1password.com:443: no answer within 300ms: check the proxy URL in `proxy` \
         (--proxy), and that the proxy is running"
    );
    assert_eq!(stderr.matches(&unreachable).count(), 6, "{stderr}");
    assert_eq!(proxy.heads().len(), 12);
}

/// An `https://` proxy that refuses the tunnel is asked why as well, over TLS with the trust
/// the client has (`ca_file`): a 502 is an outage retried with its status, a 403 a refusal
/// that names its status and ends `--once` at once.
#[test]
fn an_https_proxy_is_asked_for_its_status_too() {
    let (tls, ca) = connect_proxy::loopback_tls();
    let tls = std::sync::Arc::new(tls);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("proxy-ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let ca_file = ca_file.to_str().unwrap();
    for (answer, said, attempts) in [
        (
            connect_proxy::BAD_GATEWAY,
            "could not reach events.1password.com:443 (502 Bad Gateway); if this lasts",
            6,
        ),
        (
            connect_proxy::FORBIDDEN,
            "refused the tunnel to events.1password.com:443 (403 Forbidden): ask its",
            1,
        ),
    ] {
        let proxy = connect_proxy::ConnectProxy::start_tls(answer, std::sync::Arc::clone(&tls));
        let url = proxy.url();
        let args = ["--proxy", &url, "--ca-file", ca_file];
        let (_, code, stderr) = once_through("a.b.c", &args, &[]);
        assert_eq!(code, Some(1), "{stderr}");
        let said = format!("proxy {url} {said}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("op-events: error: ") && last.contains(&said),
            "{stderr}"
        );
        assert_eq!(stderr.matches(&said).count(), attempts, "{stderr}");
        assert_eq!(proxy.heads().len(), 2 * attempts, "{stderr}");
    }
}

/// An `https://` proxy whose certificate is not trusted: the error says it is the proxy's
/// certificate, not the server's, and ends `--once` at once. The "proxy" is the mock serving
/// HTTPS with a CA of its own. So is it for a plain-HTTP `base_url` (`--insecure-http`), which
/// the proxy forwards without a tunnel: the only TLS there is the proxy's.
#[test]
fn an_https_proxy_with_an_untrusted_certificate_is_named() {
    let tls_server = MockServer::start(MockConfig {
        tls: Some(Tls::self_signed(&["127.0.0.1"]).unwrap()),
        ..MockConfig::default()
    })
    .unwrap();
    let url = format!("https://{}", tls_server.addr());
    let (_, code, stderr) = once_through("a.b.c", &["--proxy", &url], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let hint = "(the proxy's certificate is not from a CA this collector trusts: give that CA's \
                PEM file with `ca_file` (--ca-file))";
    assert_said_once_at_the_end(
        &stderr,
        &format!(
            "introspection failed: certificate refused: the certificate of proxy {url}: invalid \
             peer certificate: UnknownIssuer {hint}"
        ),
    );
    assert!(!stderr.contains("retrying"), "{stderr}");

    let plain = [
        "--proxy",
        &url,
        "--base-url",
        "http://events.example",
        "--insecure-http",
    ];
    let (_, code, stderr) = once_through("a.b.c", &plain, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!(
            "certificate refused: the certificate of proxy {url}: "
        )) && last.ends_with(&format!("UnknownIssuer {hint}")),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
}

/// Through a proxy that opens the tunnel, the API (the mock, with a certificate for the real
/// API's name) is read as directly; `check` says which proxy is in use and where it was set,
/// and that none is where `NO_PROXY` covers the host.
#[test]
fn check_and_run_say_which_proxy_they_go_through() {
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::self_signed(&["events.1password.com"]).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, tls.ca_pem().unwrap()).unwrap();
    let mock = MockServer::start(MockConfig {
        events_per_type: 30,
        tls: Some(tls),
        ..MockConfig::default()
    })
    .unwrap();
    let token = mock.token("acme", &["auditevents"]);
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::Answer::Tunnel(mock.addr()));
    let url = proxy.url();
    let ca = ca.to_str().unwrap();

    let mut check = without_proxy_env(op_events(Some(&token)));
    check.args([
        "check",
        "--base-url",
        "https://events.1password.com",
        "--ca-file",
        ca,
    ]);
    check.args(["--proxy", &url]);
    let out = connect_proxy::output_within(&mut check, std::time::Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "endpoint:  https://events.1password.com/ (region us)\nproxy:     {url} (from `proxy`)\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("auditevents     ok"), "{stdout}");

    let (stdout, code, stderr) =
        once_through(&token, &["--ca-file", ca], &[("https_proxy", url.as_str())]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(records(&stdout).count(), 30, "{stderr}");
    assert!(
        stderr.contains(&format!("proxy={url} (from https_proxy)")),
        "{stderr}"
    );
    assert!(proxy.heads().len() >= 2);

    // Covered by NO_PROXY: direct (to a name that never resolves, so nothing leaves).
    let mut check = without_proxy_env(op_events(Some(&token)));
    check
        .args(["check", "--base-url", "https://events.proxied.invalid"])
        .env("HTTPS_PROXY", &url)
        .env("NO_PROXY", ".proxied.invalid");
    let before = proxy.heads().len();
    let out = connect_proxy::output_within(&mut check, std::time::Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\nproxy:     none (NO_PROXY covers base_url's host)\n"),
        "{stdout}"
    );
    assert_eq!(proxy.heads().len(), before);
}

/// `op-events check` of `base_url` with `proxy` given as `--proxy` and as `HTTP_PROXY`: its exit
/// code, stdout and stderr.
fn check_with_proxy(
    token: &str,
    base_url: &str,
    proxy: &connect_proxy::ConnectProxy,
) -> (Option<i32>, String, String) {
    let mut check = without_proxy_env(op_events(Some(token)));
    check
        .args(["check", "--base-url", base_url])
        .args(["--proxy", &proxy.url()])
        .env("HTTP_PROXY", proxy.url());
    let out = connect_proxy::output_within(&mut check, std::time::Duration::from_secs(20));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `localhost.` is `localhost`, fully qualified: plain HTTP to it is allowed, and it is
/// reached directly, never through a proxy.
#[test]
fn localhost_with_a_trailing_dot_is_loopback() {
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::FORBIDDEN);
    let base_url = format!("http://localhost.:{}", connect_proxy::closed_port());
    let (code, stdout, stderr) = check_with_proxy("a.b.c", &base_url, &proxy);
    // Not refused at start: it fails connecting (or resolving, where `localhost.` does not).
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("\nproxy:     none (base_url is loopback)\n"),
        "{stdout}{stderr}"
    );
    assert_eq!(proxy.heads(), Vec::<String>::new());
}

/// A name under `localhost` (`foo.localhost`, RFC 6761) is loopback as `localhost` is: plain
/// HTTP to it is allowed, it is reached directly, never through a proxy, and it is taken to
/// this machine whatever the resolver knows of it (here, nothing: `check` reads the mock).
#[test]
fn a_name_under_localhost_is_loopback() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let proxy = connect_proxy::ConnectProxy::start(connect_proxy::FORBIDDEN);
    for name in ["foo.localhost", "a.b.localhost."] {
        let base_url = format!("http://{name}:{}", mock.addr().port());
        let (code, stdout, stderr) = check_with_proxy(&token, &base_url, &proxy);
        assert_eq!(code, Some(0), "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains("\nproxy:     none (base_url is loopback)\n"),
            "{stdout}"
        );
        assert!(stdout.contains("auditevents     ok"), "{stdout}");
    }
    assert_eq!(proxy.heads(), Vec::<String>::new());
}

/// A token of `account`, signed with `key`, whose claims the collector cannot read (one is
/// given twice: the mock, reading the last, accepts it), as a token of a newer format may be.
fn token_with_unreadable_claims(mock: &MockServer, key: &str, account: &str) -> String {
    let exp = mock.now().as_second() + 3600;
    let claims = serde_json::json!({
        "aud": ["events.1password.com"],
        "sub": op_events_mock::auth::derived_uuid("integration", account),
        "iat": mock.now().as_second(),
        "1password.com/fts": ["signinattempts", "itemusages", "auditevents"],
        "1password.com/auuid": mock.account_uuid(account),
        "op-events-mock/account": account,
    });
    let payload = format!(r#"{{"exp":{exp},"exp":{exp},{}"#, &claims.to_string()[1..]);
    op_events_mock::auth::sign_payload(key.as_bytes(), &payload)
}

/// `check` names the account `run` keeps its state under, found the same way: with v1
/// introspection (no account) and a token whose claims cannot be read, the integration's uuid,
/// where `check` used to say `unknown`.
#[test]
fn check_names_the_account_run_keeps_state_under() {
    let key = "check-account-key";
    let mock = MockServer::start(MockConfig {
        events_per_type: 5,
        key: Some(key.into()),
        ..MockConfig::default()
    })
    .unwrap();
    mock.inject(Fault {
        kind: FaultKind::Status(404),
        count: 100,
        path: Some("/api/v2/auth/introspect".into()),
    });
    let token = token_with_unreadable_claims(&mock, key, "acme");
    let out = check_against(&mock, Some(&token), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let account = stdout
        .lines()
        .find_map(|l| l.strip_prefix("account:"))
        .unwrap_or_else(|| panic!("no account line: {stdout}"))
        .trim();
    assert_eq!(
        account,
        op_events_mock::auth::derived_uuid("integration", "acme"),
        "{stdout}"
    );
    let state = tempfile::tempdir().unwrap();
    let run = once_raw(&token, &mock, state.path()).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let files = state_files(state.path());
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        assert!(file.to_string_lossy().contains(account), "{file:?}");
    }
}

#[test]
fn demo_streams_events_with_nothing_configured() {
    let out = op_events(None)
        .args(["demo", "--events", "20"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(records(&out.stdout).count(), 60);
}

#[test]
fn closed_stdout_exits_cleanly() {
    let mut child = op_events(None)
        .args(["demo", "--events", "3000", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A pipe whose reader is already gone, as for `op-events … | head -1` once `head` has exited.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Writing to a closed stdout is an end, never a panic (exit 101): `check`'s report stops but
/// its checks go on, and its exit code still says whether every stream works.
#[test]
fn no_output_panics_on_a_closed_stdout() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let base_url = ["--base-url", &mock.url()];
    let cases: Vec<(Vec<&str>, i32)> = vec![
        ([&["check"][..], &base_url].concat(), 0),
        (
            [&["check", "--events", "itemusages"][..], &base_url].concat(),
            1,
        ),
        (vec!["--help"], 0),
        (vec!["run", "--help"], 0),
        (vec!["--version"], 0),
    ];
    for (args, code) in cases {
        let out = op_events(Some(&token))
            .args(&args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `run --once | head -1` stopped short: a cron job must see that in the exit code. Plain `run`
/// (Vector, systemd) still exits 0 on it, and so does a `--once` run with nothing to write.
#[test]
fn run_once_fails_when_stdout_closes_before_caught_up() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let succeeds = |mut command: Command| {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let once_closed = || {
        let mut command = once_raw(&token, &mock, state.path());
        command.stdout(closed_pipe());
        command
    };
    let out = once_closed().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stdout was closed before every stream caught up"),
        "{stderr}"
    );
    let mut plain_run = run(&token, &mock, state.path());
    plain_run.stdout(closed_pipe());
    succeeds(plain_run);
    succeeds(once_raw(&token, &mock, state.path()));
    // Caught up: with nothing to write, a closed stdout loses nothing, even when the poll that
    // says so takes long enough for the closed pipe to be seen first.
    mock.inject(Fault {
        kind: FaultKind::Delay(std::time::Duration::from_millis(600)),
        count: 1,
        path: Some("/api/v2/auditevents".into()),
    });
    succeeds(once_closed());
}

/// An unknown name gets the same answer from `--set` as from the `--config` file: the option it
/// is close to, or none when it is close to no option (docs/configuration.md).
#[test]
fn unknown_names_get_the_same_suggestion_from_set_and_config() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = file.path().display().to_string();
    for (name, said) in [
        (
            "pol_interval",
            "unknown option `pol_interval` (did you mean `poll_interval`?)",
        ),
        (
            "stat-dir",
            "unknown option `stat-dir` (did you mean `state_dir`?)",
        ),
        ("nope", "unknown option `nope`"),
    ] {
        std::fs::write(file.path(), format!("{name} = \"1\"\n")).unwrap();
        for (args, error) in [
            (
                vec!["run", "--set", &format!("{name}=1")],
                format!("op-events: error: {said}\n"),
            ),
            (
                vec!["run", "--config", &config],
                format!("op-events: error: --config {config}: {said}\n"),
            ),
        ] {
            let out = op_events(Some("a.b.c")).args(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert_eq!(stderr, error, "{args:?}");
        }
    }
}

/// Only `events` takes a list in the `--config` file; a list or table anywhere else is refused,
/// not flattened into a value that happens to parse (`limit = [5]` was 5).
#[test]
fn config_lists_and_tables_only_where_an_option_takes_them() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = file.path().display().to_string();
    for (text, key) in [
        ("limit = [5]\n", "limit"),
        ("[region]\nname = \"eu\"\n", "region"),
    ] {
        std::fs::write(file.path(), text).unwrap();
        let stderr = usage_error(op_events(Some("a.b.c")).args(["check", "--config", &config]));
        assert_eq!(
            stderr,
            format!(
                "op-events: error: --config {config}: `{key}` takes one value, not a list or \
                 table (only `events` takes a list)\n"
            )
        );
    }
    // A misspelt name is still answered with the option meant, whatever its value.
    std::fs::write(file.path(), "evnts = [\"auditevents\"]\n").unwrap();
    let out = op_events(Some("a.b.c"))
        .args(["check", "--config", &config])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `events`?"), "{stderr}");
}

/// A proxy variable the HTTP client would skip (so requests go around the proxy) or could not
/// use (SOCKS: every request would fail, retried forever) stops the start, naming the variable
/// but not its value, which may hold the proxy's password.
#[test]
fn a_proxy_environment_the_client_would_misuse_is_refused_at_start() {
    for (var, value, said) in [
        ("HTTPS_PROXY", "::secret", "HTTPS_PROXY is not a proxy URL"),
        (
            "all_proxy",
            "socks5://u:secret@proxy:1080",
            "all_proxy names a SOCKS proxy",
        ),
        (
            "https_proxy",
            "http://u:secret@127.0.0.1:0",
            "https_proxy names port 0, which no proxy can be reached on",
        ),
    ] {
        let mut check = op_events(Some("a.b.c"));
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            check.env_remove(name);
        }
        let out = check
            .args(["check", "--base-url", "https://events.1password.com"])
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(said), "{var}: {stderr}");
        assert!(!stderr.contains("secret"), "{var}'s value in: {stderr}");
    }
}

#[test]
fn bad_flags_and_missing_token_are_usage_errors() {
    for (args, needle) in [
        (
            vec!["run", "--poll-interval", "abc"],
            "--poll-interval: `abc` is not a duration",
        ),
        (vec!["run", "--bogus"], "--bogus"),
        (
            vec!["run", "--set", "pol_interval=1s"],
            "did you mean `poll_interval`",
        ),
        (
            vec!["run", "--set", "token=x"],
            "never taken on the command line",
        ),
        // One line, whatever the value quoted.
        (
            vec!["run", "--events", "signin\nattempts"],
            "--events: `signin\\nattempts` is not one of",
        ),
        // The keys it lists are those `--set` takes: `token` is not one.
        (
            vec!["run", "--set", "format"],
            "--set format: expected KEY=VALUE (keys: token_file, region,",
        ),
        // The binary's flag, not the plugin's key.
        (
            vec!["run", "--base-url", "http://example.com"],
            "use https, or pass --insecure-http if",
        ),
        (
            vec!["check", "--base-url", "http://example.com"],
            "--base-url http://example.com/: plain http is only allowed to loopback addresses; use https, or pass --insecure-http if",
        ),
        // Checked once every option is in, and still named as it was given.
        (
            vec!["run", "--limit", "5000"],
            "--limit: 5000 is out of range",
        ),
        // No connection can be made to port 0: refused at start, not retried forever. (`check`
        // tries once, so that a port 0 let through fails this test rather than hangs it.)
        (
            vec!["check", "--base-url", "https://127.0.0.1:0"],
            "--base-url: port 0 cannot be connected to",
        ),
        (
            vec!["check", "--proxy", "http://u:hunter2@127.0.0.1:0"],
            "--proxy: port 0 cannot be connected to: give the port it listens on, or none for \
             the scheme's (example: http://proxy.example:3128)",
        ),
        // A proxy's example, not the API's.
        (
            vec!["check", "--proxy", "127.0.0.1:3128"],
            "--proxy: `127.0.0.1:3128` is not a URL (relative URL without a base; example: \
             http://proxy.example:3128)",
        ),
        (
            vec!["run", "--set", "retry_initial=0"],
            "retry_initial: must be more than 0",
        ),
        // A negative value is the option's mistake, named by it, not a stray argument.
        (
            vec!["run", "--limit", "-1"],
            "--limit: `-1` is not a number",
        ),
        (
            vec!["run", "--poll-interval", "-5s"],
            "--poll-interval: `-5s` is not a duration",
        ),
        (
            vec!["run", "--start-time", "-7d"],
            "--start-time: `-7d` is neither",
        ),
        (
            vec!["run", "--rate-limit-per-hour", "-1"],
            "--rate-limit-per-hour: `-1`",
        ),
        (
            vec!["run", "--max-buffered-events", "-1"],
            "--max-buffered-events: `-1`",
        ),
        (
            vec!["demo", "--events", "-5"],
            "invalid value '-5' for '--events",
        ),
        // The embedded mock holds every event in memory.
        (
            vec!["demo", "--events", "100000000"],
            "100000000 is not in 0..=100000",
        ),
        // A level mistyped would otherwise silence every log line.
        (vec!["--log-level", "inf", "run"], "--log-level: `inf`"),
        (
            vec!["--log-level", "info,[", "run"],
            "--log-level: `info,[`",
        ),
    ] {
        let out = op_events(Some("a.b.c")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let file = config_file("limit = 5000\n");
    let stderr = usage_error(
        op_events(Some("a.b.c"))
            .arg("run")
            .arg("--config")
            .arg(file.path()),
    );
    let needle = format!("--config {}: limit: 5000", file.path().display());
    assert!(stderr.contains(&needle), "{stderr}");
    // No token, or an empty one from `OP_EVENTS_TOKEN=$(cat missing-file)`: said in the
    // binary's terms (its flags and environment), not the Fluent Bit plugin's.
    let not_utf8 = std::ffi::OsStr::from_bytes(b"ab\xffcd");
    for (env, needle) in [
        (
            None,
            "no token: pass --token-file FILE, set OP_EVENTS_TOKEN",
        ),
        (Some(" \n".as_ref()), "OP_EVENTS_TOKEN is set but empty"),
        (Some(not_utf8), "OP_EVENTS_TOKEN is not valid UTF-8"),
    ] {
        for command in ["check", "run"] {
            let mut c = op_events(None);
            if let Some(value) = env {
                c.env("OP_EVENTS_TOKEN", value);
            }
            let out = c.args([command, "--region", "eu"]).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
            assert!(stderr.contains(needle), "{command}: {stderr}");
            assert!(!stderr.contains("Fluent Bit"), "{command}: {stderr}");
        }
    }
    // A token pasted with its header's prefix, or in quotes: the error names where it is.
    let file = config_file("token = \"Bearer a.b.c\"\nregion = \"eu\"\n");
    let from_file = format!(
        "--config {}: the token starts with `Bearer `",
        file.path().display()
    );
    for (env, needle) in [
        (None, from_file.as_str()),
        (
            Some("Bearer a.b.c"),
            "OP_EVENTS_TOKEN: the token starts with `Bearer `",
        ),
        (Some("'a.b.c'"), "OP_EVENTS_TOKEN: the token is in quotes"),
    ] {
        let stderr = usage_error(op_events(env).arg("check").arg("--config").arg(file.path()));
        assert!(stderr.contains(needle), "{stderr}");
    }
    // An unreachable API is a network problem, not a token problem.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = op_events(Some("a.b.c"))
        .args(["check", "--base-url", &format!("http://{closed}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("network") && !stderr.contains("token"),
        "{stderr}"
    );
    let help = op_events(None).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("OP_EVENTS_TOKEN") && help.contains("--rate-limit-per-minute"));
    assert!(
        help.contains("./op-events-state"),
        "every state_dir fallback: {help}"
    );
    // ALL_PROXY routes the requests as surely as HTTPS_PROXY does: say so where --proxy is.
    for var in ["HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"] {
        assert!(help.contains(var), "--proxy's default names {var}: {help}");
    }
    // `check` touches no state and fetches one event a stream: it offers no collection options.
    let help = op_events(None).args(["check", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--base-url") && help.contains("--events"),
        "{help}"
    );
    for unused in [
        "--state-dir",
        "--start-time",
        "--format",
        "--limit",
        "--poll-interval",
    ] {
        assert!(
            !help.contains(unused),
            "check --help offers {unused}: {help}"
        );
    }
}

/// Every word the binary takes, in any case: Fluent Bit and Vector users write `JSON`, `INFO`.
#[test]
fn enum_like_flags_take_any_case() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let out = op_events(Some(&token))
        .args([
            "--log-format",
            "JSON",
            "--log-level",
            "INFO",
            "run",
            "--once",
        ])
        .args(["--format", "RAW", "--api-version", "V2", "--events", "ALL"])
        .args(["--base-url", &mock.url()])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(out.stdout.split(|b| *b == b'\n').count(), 3 * 120 + 1);
    assert!(stderr.contains("caught up"), "INFO is info: {stderr}");
    for line in stderr.lines() {
        let line: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
}

/// With `--log-format json` the final error is a JSON line like the logger's, whatever the
/// exit code and even when the logger is off or was refused; without it, plain text.
#[test]
fn json_logs_end_with_a_json_error_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}");
    let cases: Vec<(Vec<&str>, Option<&str>, i32, &str)> = vec![
        (vec!["check", "--region", "eu"], None, 2, "no token"),
        (
            vec!["--log-level", "off", "check", "--region", "eu"],
            None,
            2,
            "no token",
        ),
        (
            vec!["--log-level", "inf", "check"],
            Some("a.b.c"),
            2,
            "--log-level: `inf`",
        ),
        (
            vec!["check", "--base-url", &url],
            Some("a.b.c"),
            1,
            "introspection failed",
        ),
        // What clap refuses, before any option is applied, too.
        (
            vec!["run", "--pol-interval", "5s"],
            None,
            2,
            "unexpected argument '--pol-interval'",
        ),
    ];
    for (args, token, code, said) in cases {
        let out = op_events(token)
            .args(["--log-format", "json"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        let last: serde_json::Value = stderr
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{args:?}: not a JSON line: {stderr}"));
        assert_eq!(last["level"], "ERROR", "{args:?}: {stderr}");
        assert!(last["timestamp"].is_string(), "{args:?}: {stderr}");
        let message = last["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(said), "{args:?}: {stderr}");
    }
    let out = op_events(None)
        .args(["check", "--region", "eu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("op-events: error: no token"), "{stderr}");
}

/// A `state_dir` that cannot be created is a usage error (exit 2), as an unreadable
/// `token_file` is: fixing the command line or config is the only cure.
#[test]
fn an_unusable_state_dir_is_a_usage_error() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = file.path().join("state");
    let under_a_file = under_a_file.to_str().unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let config_path = config.path().to_str().unwrap();
    for dir in ["/proc/nope", under_a_file] {
        std::fs::write(config.path(), format!("state_dir = \"{dir}\"\n")).unwrap();
        // Named as the user gave it: the flag, or the key in its file.
        for (given, named) in [
            (["--state-dir", dir], format!("--state-dir {dir}: ")),
            (
                ["--config", config_path],
                format!("--config {config_path}: state_dir {dir}: "),
            ),
        ] {
            let out = op_events(Some(&token))
                .args(["run", "--once", "--base-url", &mock.url()])
                .args(given)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{dir}: {stderr}");
            assert!(stderr.contains(&named), "{stderr}");
            assert!(out.stdout.is_empty(), "{dir}");
        }
    }
}

/// A `state_dir` that is a file is said to be no directory, not only that it exists (the OS
/// error), and is a usage error too.
#[test]
fn a_state_dir_that_is_a_file_is_said_to_be_no_directory() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let name = file.path().to_str().unwrap();
    let below = file.path().join("state");
    // The file itself, and a directory that would have to be made inside it.
    for dir in [file.path(), below.as_path()] {
        let stderr = usage_error(&mut once_raw(&token, &mock, dir));
        assert!(
            stderr.contains(&format!(
                "--state-dir {}: {name} is not a directory: set --state-dir to a directory (a \
                 missing one is created), or move {name} away",
                dir.display()
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("os error"), "{stderr}");
    }
}

/// Every subcommand's help ends with examples of it, using only flags it takes.
#[test]
fn every_subcommand_help_has_examples_of_its_own_flags() {
    for command in ["run", "check", "demo"] {
        let out = op_events(None).args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let (_, examples) = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{command} --help has no examples: {help}"));
        let lines: Vec<&str> = examples
            .lines()
            .take_while(|l| l.starts_with("  "))
            .collect();
        assert!(lines.len() >= 2, "{command}: {examples}");
        for line in lines
            .iter()
            .filter(|l| l.contains(&format!("op-events {command}")))
        {
            let flags = line.split('#').next().unwrap().split_whitespace();
            for flag in flags.filter(|w| w.starts_with("--")) {
                assert!(
                    help.contains(&format!("{flag} ")),
                    "{command}: {flag} in {line}"
                );
            }
        }
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("op-events {command}"))),
            "{command}: {examples}"
        );
    }
}

/// `op-events run` against `mock`, its stdout piped.
fn run(token: &str, mock: &MockServer, state: &std::path::Path) -> Command {
    let mut c = op_events(Some(token));
    c.args(["run", "--base-url", &mock.url()])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped());
    c
}

/// SIGTERM (Vector, systemd), SIGINT (Ctrl-C) and SIGHUP (a closed terminal or ssh session).
#[test]
fn a_stop_signal_checkpoints_and_exits_zero() {
    for signal in ["-TERM", "-INT", "-HUP"] {
        let state = tempfile::tempdir().unwrap();
        let mock = mock();
        let token = mock.token("acme", &["auditevents"]);
        let mut child = run(&token, &mock, state.path())
            .args(["--limit", "10"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = stdout_lines(&mut child);
        lines.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        send(&child, signal);
        let status = exit_within(&mut child, 10, signal);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{signal}: {status}: {stderr}");
        assert!(
            stderr.contains("stopped by signal; checkpoints saved"),
            "{signal}: {stderr}"
        );
        assert_eq!(
            state_files(state.path()).len(),
            1,
            "{signal}: no checkpoint written"
        );
    }
}

/// `--once` is for cron: a signal before every stream caught up must not read as a complete
/// run.
#[test]
fn run_once_stopped_by_a_signal_before_catching_up_exits_one() {
    let state = tempfile::tempdir().unwrap();
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    // One page of 10 a second: far from caught up when the signal comes.
    let mut child = run(&token, &mock, state.path())
        .args(["--once", "--limit", "10", "--rate-limit-per-minute", "60"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    std::io::Read::read_exact(&mut stdout, &mut [0u8; 1024]).unwrap();
    sigterm(&child);
    std::io::Read::read_to_end(&mut stdout, &mut Vec::new()).unwrap();
    let status = exit_within(&mut child, 10, "SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_said_once_at_the_end(
        &stderr,
        "a signal stopped the run before every stream caught up",
    );
    assert_eq!(state_files(state.path()).len(), 1, "{stderr}");
}

/// A stdout that is `/dev/null`, or closed (Rust's runtime then opens `/dev/null` as fd 1),
/// would have every event checkpointed and lost.
#[test]
fn run_refuses_a_stdout_that_goes_nowhere() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    // `--once`, so that a run that is not refused ends.
    let null = run(&token, &mock, &dir)
        .arg("--once")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let closed = Command::new("sh")
        .args(["-c", "exec \"$@\" >&-", "sh", BIN])
        .env("OP_EVENTS_TOKEN", &token)
        .args(["run", "--once", "--base-url", &mock.url(), "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    for (how, out) in [("/dev/null", null), ("closed", closed)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{how}: {stderr}");
        assert!(stderr.contains("stdout is /dev/null"), "{how}: {stderr}");
    }
    assert!(mock.stats().requests.is_empty(), "nothing fetched");
    assert!(!dir.exists(), "no state_dir made");
}

/// A reader that stopped reading (a stalled Vector) leaves a write to stdout blocked; SIGTERM
/// still ends the process within a few seconds, saying why, instead of waiting for the reader
/// (or systemd's SIGKILL).
#[test]
fn sigterm_ends_a_run_stuck_writing_to_a_full_stdout() {
    let state = tempfile::tempdir().unwrap();
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let mut child = run(&token, &mock, state.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 360 events are several times the pipe's 64 KiB: the writer blocks, nothing reads.
    let stdout = child.stdout.take().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    sigterm(&child);
    let status = exit_within(&mut child, 15, "SIGTERM");
    drop(stdout);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a write to stdout that nothing reads"),
        "{stderr}"
    );
}

/// The state files in `dir` (not their lock files).
fn state_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let files = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    files
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

/// `run --once` against `base_url` with `args`, in a state directory of its own.
fn run_once(token: &str, base_url: &str, args: &[&str]) -> std::process::Output {
    let state = tempfile::tempdir().unwrap();
    op_events(Some(token))
        .args(["run", "--once", "--base-url", base_url])
        .args(args)
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap()
}

/// `run --once` against `base_url` with retries made quick, so that a failure treated as
/// transient shows as several attempts rather than as a slow test: exit code and stderr.
fn run_once_failing(token: &str, base_url: &str) -> (Option<i32>, String) {
    let quick = ["--set", "retry_initial=10ms", "--set", "retry_max=20ms"];
    let out = run_once(token, base_url, &quick);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--once` says what ended it once: in its final error line, not in a log line before it too.
fn assert_said_once_at_the_end(stderr: &str, failure: &str) {
    assert_eq!(stderr.matches(failure).count(), 1, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("op-events: error: ") && last.contains(failure),
        "{stderr}"
    );
}

#[test]
fn run_once_gives_up_on_an_unreachable_api() {
    // Nothing listens on port 9 of loopback: connection refused on every attempt.
    let (code, stderr) = run_once_failing("a.b.c", "http://127.0.0.1:9");
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(&stderr, "6 introspection attempts failed");
    // Five retries, then the sixth failure ends the run, and is not announced as a retry.
    assert_eq!(stderr.matches("retrying in").count(), 5, "{stderr}");
}

/// A stream whose requests keep failing ends `--once` after its sixth attempt, as an error
/// that does not claim to retry; the other streams deliver what they have.
#[test]
fn run_once_gives_up_on_a_stream_that_keeps_failing() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "auditevents"]);
    mock.inject(Fault {
        kind: FaultKind::Status(503),
        count: 100,
        path: Some("/api/v2/auditevents".into()),
    });
    let (code, stderr) = run_once_failing(&token, &mock.url());
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(&stderr, "auditevents: 6 attempts in a row failed");
    assert_eq!(
        stderr.matches("retrying the same request").count(),
        5,
        "{stderr}"
    );
    assert_eq!(mock.stats().count("/api/v2/auditevents", 503), 6);
}

/// A token that grants no event type, with no `--events`: nothing can be collected, which
/// `--once` reports as a failure (it once exited 0, as if it had caught up), and `check` too (it
/// once exited 0, calling healthy what `run` refuses).
#[test]
fn run_once_and_check_fail_when_the_token_grants_no_event_type() {
    let mock = mock();
    let token = mock.token("acme", &[]);
    let failure = "the token grants none of signinattempts, itemusages, auditevents \
                   (its features: none); nothing to collect";
    let (code, stderr) = run_once_failing(&token, &mock.url());
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(&stderr, failure);
    assert!(!stderr.contains("retrying"), "{stderr}");
    let out = check_against(&mock, Some(&token), &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("features:  none\n"), "{stdout}");
    assert_said_once_at_the_end(&stderr, failure);
}

/// A `base_url` with a path the API does not serve: a 404 is reported at once with what to
/// change, not retried like an outage.
#[test]
fn run_once_stops_at_a_wrong_base_url() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let base_url = format!("{}/events", mock.url().trim_end_matches('/'));
    let (code, stderr) = run_once_failing(&token, &base_url);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");
    assert!(stderr.contains("check `base_url`"), "{stderr}");
    assert!(!stderr.contains("attempts failed"), "{stderr}");
    assert!(
        !stderr.contains("retrying"),
        "--once does not retry: {stderr}"
    );
    // No second attempt, and no log line repeating the final error.
    assert_said_once_at_the_end(&stderr, "HTTP 404");
}

#[test]
fn run_once_stops_at_a_refused_certificate() {
    let mock = MockServer::start(MockConfig {
        events_per_type: 1,
        tls: Some(Tls::self_signed(&["127.0.0.1"]).unwrap()),
        ..MockConfig::default()
    })
    .unwrap();
    // Without `--ca-file` the mock's CA is unknown.
    let token = mock.token("acme", &["auditevents"]);
    let (code, stderr) = run_once_failing(&token, &mock.url());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("certificate refused"), "{stderr}");
    assert!(stderr.contains("`ca_file` (--ca-file)"), "{stderr}");
    assert!(!stderr.contains("attempts failed"), "{stderr}");
    // No second attempt, and no log line repeating the final error.
    assert_said_once_at_the_end(&stderr, "UnknownIssuer");
    assert!(!stderr.contains(&token), "{stderr}");
}

/// `https://` to a port that serves plain HTTP cannot start working by itself: `--once` ends at
/// once, saying to change the port or the scheme, as for a refused certificate.
#[test]
fn run_once_stops_at_an_https_url_of_a_plain_http_port() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let base_url = format!("https://{}", mock.addr());
    let (code, stderr) = run_once_failing(&token, &base_url);
    assert_eq!(code, Some(1), "{stderr}");
    assert_said_once_at_the_end(
        &stderr,
        &format!(
            "(the server at {} does not speak TLS on that port, plain HTTP perhaps: give \
             `base_url` the port that serves HTTPS, or http:// for a server of plain HTTP \
             (loopback only, unless `insecure_http`))",
            mock.addr()
        ),
    );
    assert!(
        stderr.contains("introspection failed: no TLS: "),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    assert!(!stderr.contains("attempts failed"), "{stderr}");
}

/// A certificate refused after introspection and a first page succeeded (the server's
/// certificate replaced by one from another CA while the collector runs) is met by the stream,
/// not the launch: it too stops `--once` at once, naming the stream and pointing at `ca_file`,
/// and is not retried like a network blip. Deterministic: the first mock serves one page, then
/// answers 503, and during the backoff that follows it is replaced on its address by a mock
/// whose CA the collector was not given.
#[test]
fn run_once_stops_a_stream_whose_certificate_is_refused_mid_run() {
    use std::time::{Duration, Instant};
    const PATH: &str = "/api/v2/auditevents";
    let https = || MockConfig {
        events_per_type: 30,
        tls: Some(Tls::self_signed(&["127.0.0.1"]).unwrap()),
        ..MockConfig::default()
    };
    let config = https();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("first-ca.pem");
    std::fs::write(&ca_file, config.tls.as_ref().unwrap().ca_pem().unwrap()).unwrap();
    let first = MockServer::start(config).unwrap();
    // The first page as it is (a zero delay), then a 503 for the second.
    for kind in [FaultKind::Delay(Duration::ZERO), FaultKind::Status(503)] {
        first.inject(Fault {
            kind,
            count: 1,
            path: Some(PATH.into()),
        });
    }
    // Both mocks sign tokens with the same key: only the certificate tells them apart.
    let token = first.token("acme", &["auditevents"]);
    let mut child = op_events(Some(&token))
        .args(["run", "--once", "--limit", "10", "--base-url"])
        .arg(first.url())
        .arg("--ca-file")
        .arg(&ca_file)
        .arg("--state-dir")
        .arg(dir.path())
        // The retries wait 0.5 s to 1 s: time enough to swap the mocks.
        .args(["--set", "retry_max=1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    for _ in 0..10 {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the first page is delivered");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.stats().count(PATH, 503) == 0 {
        assert!(Instant::now() < deadline, "no second request");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(first.stats().count(PATH, 200), 1);
    let addr = first.addr();
    drop(first);
    let second = MockServer::start_on(addr, https()).unwrap();

    // A stream that kept retrying would keep `--once` running: stopped, and shown.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("auditevents: certificate refused"),
        "{stderr}"
    );
    // Both CAs have one name, so rustls reports a bad signature: the same hint.
    assert!(
        stderr.contains("not from a CA this collector trusts")
            && stderr.contains("`ca_file` (--ca-file)"),
        "{stderr}"
    );
    assert!(!stderr.contains("attempts failed"), "{stderr}");
    // No second attempt, and no log line repeating the final error.
    assert_said_once_at_the_end(&stderr, "certificate refused");
    // Nothing after the first page, and the second mock answered no request.
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
    let served = second.stats().requests;
    assert!(served.is_empty(), "{served:?}");
}

/// Lines a child writes to stdout, as they come.
fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stdout) {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

/// A reader that goes away while `run` is idle (caught up, nothing new) ends it at once, not at
/// its next write: a respawned instance would otherwise wait on its state locks until an event
/// comes.
#[test]
fn an_idle_run_stops_when_its_reader_goes() {
    let mock = mock();
    let token = mock.token("acme", &["auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let mut child = run(&token, &mock, state.path())
        .args(["--poll-interval", "1h"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..120 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(line.ends_with('\n'), "{line:?}");
    }
    drop(stdout);
    let status = exit_within(&mut child, 10, "its reader went");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stdout closed"), "{stderr}");
}

/// How `child` exited, within `secs` of `event`; killed, and the test failed, if it did not.
fn exit_within(
    child: &mut std::process::Child,
    secs: u64,
    event: &str,
) -> std::process::ExitStatus {
    let since = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if since.elapsed() > std::time::Duration::from_secs(secs) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("still running {secs} s after {event}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Asks `child` to stop, as Vector and systemd do.
fn sigterm(child: &std::process::Child) {
    send(child, "-TERM");
}

/// Sends `child` a signal (`-TERM`, `-HUP`, …).
fn send(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn terminate(child: &mut std::process::Child) {
    sigterm(child);
    assert!(child.wait().unwrap().success());
}

/// Two collectors of one account with one `state_dir` would each deliver everything: a second
/// `run --once` fails at once, saying why; a second `run` waits, then takes over from the
/// first one's checkpoints when it stops.
#[test]
fn a_second_collector_of_the_same_state_waits_or_fails() {
    let mock = mock();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let collector = |once: bool| {
        let mut c = op_events(Some(&token));
        c.args([
            "run",
            "--format",
            "raw",
            "--poll-interval",
            "1s",
            "--base-url",
        ])
        .arg(mock.url())
        .arg("--state-dir")
        .arg(state.path())
        .args(once.then_some("--once"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    let wait = std::time::Duration::from_secs(20);
    let uuid = |line: &str| {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        event["event"]["uuid"].as_str().unwrap().to_owned()
    };
    let mut first = collector(false).spawn().unwrap();
    let first_lines = stdout_lines(&mut first);
    let mut delivered = std::collections::HashSet::new();
    for _ in 0..360 {
        let line = first_lines.recv_timeout(wait).expect("the first delivers");
        assert!(delivered.insert(uuid(&line)));
    }

    let once = collector(true).output().unwrap();
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(1), "{stderr}");
    assert!(once.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.contains("is held by another collector of this stream") && stderr.contains(".lock"),
        "{stderr}"
    );

    let mut second = collector(false).spawn().unwrap();
    let second_lines = stdout_lines(&mut second);
    std::thread::sleep(std::time::Duration::from_secs(1));
    terminate(&mut first);
    let kinds = ["signinattempts", "itemusages", "auditevents"];
    for kind in kinds {
        mock.generate("acme", kind, 5, false);
    }
    let mut taken_over = Vec::new();
    for _ in 0..15 {
        let line = second_lines
            .recv_timeout(wait)
            .expect("the second takes over");
        taken_over.push(uuid(&line));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    terminate(&mut second);
    taken_over.extend(second_lines.try_iter().map(|l| uuid(&l)));
    // Only what came after the first stopped: the second began from its checkpoints.
    let mut new: Vec<String> = kinds
        .iter()
        .flat_map(|k| mock.servable_events("acme", k))
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .filter(|u| !delivered.contains(u))
        .collect();
    new.sort();
    taken_over.sort();
    assert_eq!(taken_over, new);
    assert_eq!(new.len(), 15);
}
