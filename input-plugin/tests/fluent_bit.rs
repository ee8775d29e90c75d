//! End to end with a real Fluent Bit: `FLUENT_BIT=/path/to/fluent-bit` (or `fluent-bit` on
//! PATH) loads the built library and runs two `onepassword` inputs (two accounts of the
//! in-process mock; one before Fluent Bit 4.1) into `-o file` (JSON lines), and every event is
//! counted and checked, in six runs:
//! - delivery, configured on the command line (`-e`, `-i`, `-p`); before 4.1 it also checks
//!   that a second input is refused, saying why;
//! - back-pressure: a `mem_buf_limit` so small that Fluent Bit pauses the inputs again and again;
//! - hot reload: a YAML configuration (tokens as `${ENV}`), SIGHUP, then new events
//!   that only the reloaded inputs can deliver, from the old inputs' checkpoints;
//! - crash: filesystem storage, SIGKILL twice mid-stream, restart: every event still arrives;
//! - an item nested deeper than Fluent Bit decodes, among others: every event still arrives;
//! - routing: docs/fluent-bit.md's `routes` on the metadata's `event_type` (Fluent Bit 4.2 and
//!   later) give each output exactly its event types.
//!
//! Each skips, saying so, when no Fluent Bit is installed.

mod harness;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::docs::{blocks, doc};
use harness::installed::FluentBit;
use harness::source::{self, KINDS};
use op_events_mock::MockServer;

/// One Fluent Bit run: an input per account of `mock`, tagged `op.<account>`, with its state
/// in `work/<account>`, into `work/out/events.jsonl`; Fluent Bit's stdout and stderr go to
/// files in `work`.
struct Run<'m> {
    mock: &'m MockServer,
    accounts: &'static [&'static str],
    tokens: Vec<String>,
    work: tempfile::TempDir,
}

impl<'m> Run<'m> {
    fn new(mock: &'m MockServer, accounts: &'static [&'static str]) -> Run<'m> {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("out")).unwrap();
        Run {
            mock,
            accounts,
            tokens: accounts.iter().map(|a| mock.token(a, &KINDS)).collect(),
            work,
        }
    }

    fn out_dir(&self) -> PathBuf {
        self.work.path().join("out")
    }

    fn state_dir(&self, account: &str) -> String {
        self.work.path().join(account).display().to_string()
    }

    /// Every property of an account's input but its token, then `extra` (which wins).
    fn props<'a>(&'a self, account: &str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
        let mut props = vec![
            ("base_url", self.mock.url()),
            ("insecure_http", "on".to_owned()),
            ("format", "raw".to_owned()),
            ("poll_interval", "1s".to_owned()),
            ("state_dir", self.state_dir(account)),
        ];
        props.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
        props.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        props
    }

    /// Fluent Bit configured on the command line, `extra` added to every input.
    fn command(&self, fb: &FluentBit, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&fb.bin);
        cmd.arg("-e").arg(harness::library_path());
        for (account, token) in self.accounts.iter().zip(&self.tokens) {
            cmd.args(["-i", "onepassword", "-t", &format!("op.{account}")])
                .args(["-p", &format!("token={token}")]);
            for (key, value) in self.props(account, extra) {
                cmd.args(["-p", &format!("{key}={value}")]);
            }
        }
        cmd.args(["-o", "file", "-m", "op.*", "-p", "format=plain"])
            .args(["-p", "file=events.jsonl"])
            .args(["-p", &format!("path={}", self.out_dir().display())])
            .args(["-f", "1"]);
        self.logged(cmd)
    }

    /// Fluent Bit with hot reload on, configured by a YAML file that reads each token from the
    /// environment and loads the library with `plugins:` (Fluent Bit 3.2 and later; `-e`
    /// before); `service` and `input` are added to its service and to every input. With
    /// `routes`, every input gets them, and the outputs are a file `<alias>.jsonl` per alias
    /// they name instead of `events.jsonl`.
    fn yaml_command(
        &self,
        fb: &FluentBit,
        service: &[(&str, &str)],
        input: &[(&str, &str)],
        routes: Option<&Routes>,
    ) -> Command {
        let library = harness::library_path();
        let mut yaml = "service:\n  flush: 1\n".to_owned();
        for (key, value) in service {
            yaml += &format!("  {key}: {value}\n");
        }
        let mut cmd = Command::new(&fb.bin);
        if fb.version >= (3, 2) {
            yaml += &format!("plugins:\n  - {}\n", library.display());
        } else {
            cmd.arg("-e").arg(library);
        }
        yaml += "pipeline:\n  inputs:\n";
        for (i, account) in self.accounts.iter().enumerate() {
            yaml += &format!(
                "    - name: onepassword\n      tag: op.{account}\n      token: ${{OP_EVENTS_TOKEN_{i}}}\n"
            );
            for (key, value) in self.props(account, input) {
                yaml += &format!("      {key}: {value}\n");
            }
            yaml += routes.map_or("", |r| &r.yaml);
        }
        // One file output taking every record, or one per alias the routes name.
        let outputs: Vec<(String, &str)> = match routes {
            None => vec![("match: op.*".to_owned(), "events")],
            Some(routes) => (routes.aliases.iter())
                .map(|alias| (format!("alias: {alias}"), alias.as_str()))
                .collect(),
        };
        yaml += "  outputs:\n";
        for (selector, file) in outputs {
            yaml += &format!(
                "    - name: file\n      {selector}\n      format: plain\n      \
                 file: {file}.jsonl\n      path: {}\n",
                self.out_dir().display()
            );
        }
        let config = self.work.path().join("fluent-bit.yaml");
        std::fs::write(&config, yaml).unwrap();
        cmd.arg("--enable-hot-reload").arg("-c").arg(config);
        for (i, token) in self.tokens.iter().enumerate() {
            cmd.env(format!("OP_EVENTS_TOKEN_{i}"), token);
        }
        self.logged(cmd)
    }

    /// `cmd` with its output appended to the logs (a restarted Fluent Bit adds to them).
    fn logged(&self, mut cmd: Command) -> Command {
        let file = |name| {
            (std::fs::OpenOptions::new().create(true).append(true))
                .open(self.work.path().join(name))
                .unwrap()
        };
        cmd.stdin(Stdio::null())
            .stdout(file("stdout.log"))
            .stderr(file("stderr.log"));
        cmd
    }

    /// The records Fluent Bit wrote so far, one JSON line each.
    fn records(&self) -> String {
        self.records_in("events.jsonl")
    }

    /// The records Fluent Bit wrote so far into `file` of the output directory.
    fn records_in(&self, file: &str) -> String {
        std::fs::read_to_string(self.out_dir().join(file)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let read = |name| std::fs::read_to_string(self.work.path().join(name)).unwrap_or_default();
        read("stdout.log") + &read("stderr.log")
    }

    /// How many events the mock serves for the accounts.
    fn expected(&self) -> usize {
        self.uuids().len()
    }

    /// Waits up to `within` until `done` holds; fails if Fluent Bit exits first, or on timeout
    /// with `what` and the logs.
    fn wait_until(&self, child: &mut Child, within: Duration, what: &str, done: impl Fn() -> bool) {
        if let Some(status) = wait(child, within, &done) {
            panic!(
                "fluent-bit exited ({status}) before {what}:\n{}",
                self.logs()
            );
        }
        if !done() {
            let _ = child.kill();
            panic!("no {what} within {within:?}:\n{}", self.logs());
        }
    }

    /// Waits until every event the mock serves is in the file, then a little longer so that a
    /// duplicate, if any, shows up.
    fn wait_for_every_event(&self, child: &mut Child) {
        let expected = self.expected();
        self.wait_until(child, Duration::from_secs(90), "every event", || {
            self.records().lines().count() >= expected
        });
        std::thread::sleep(Duration::from_secs(2));
    }

    /// SIGTERM, then Fluent Bit's exit status.
    fn stop(&self, mut child: Child) -> ExitStatus {
        signal(&child, libc::SIGTERM);
        wait(&mut child, Duration::from_secs(20), || false).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("fluent-bit did not stop on SIGTERM:\n{}", self.logs())
        })
    }

    /// [`counts`] of the records so far: a record's own event uuid among its strings.
    fn counts(&self) -> HashMap<String, usize> {
        counts(&self.records())
    }

    /// Fluent Bit's file output killed mid-write leaves a partial last line; ends it, so that
    /// the next record starts a line of its own. Returns whether there was one.
    fn end_torn_line(&self) -> bool {
        let path = self.out_dir().join("events.jsonl");
        let records = self.records();
        let torn = !records.is_empty() && !records.ends_with('\n');
        if torn {
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            std::io::Write::write_all(&mut file, b"\n").unwrap();
        }
        torn
    }

    /// The uuids of the events the mock serves for the accounts.
    fn uuids(&self) -> Vec<String> {
        self.uuids_of(&KINDS)
    }

    /// The uuids of the events of `kinds` the mock serves for the accounts.
    fn uuids_of(&self, kinds: &[&str]) -> Vec<String> {
        (self.accounts.iter())
            .flat_map(|account| {
                kinds
                    .iter()
                    .map(|kind| self.mock.servable_events(account, kind))
            })
            .flatten()
            .map(|item| item["uuid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every event the mock serves is in the file exactly once, nothing else is, and the logs
    /// are clean ([`Run::assert_clean_logs`]); returns the number of records.
    fn assert_each_once(&self) -> usize {
        let records = self.assert_each_once_in("events.jsonl", &KINDS);
        self.assert_clean_logs();
        records
    }

    /// Every event of `kinds` the mock serves is in `file` exactly once, and nothing else is;
    /// returns the number of records.
    fn assert_each_once_in(&self, file: &str, kinds: &[&str]) -> usize {
        let records = self.records_in(file);
        let uuids = self.uuids_of(kinds);
        assert_eq!(
            records.lines().count(),
            uuids.len(),
            "records in {file}\n{}",
            self.logs()
        );
        let seen = counts(&records);
        for uuid in &uuids {
            assert_eq!(seen.get(uuid).copied(), Some(1), "{uuid} in {file}");
        }
        uuids.len()
    }

    /// Every input logged under its own name, with no error or warning, and no token was
    /// logged.
    fn assert_clean_logs(&self) {
        let log = self.logs();
        for i in 0..self.accounts.len() {
            assert!(log.contains(&format!("[onepassword.{i}]")), "{log}");
        }
        // Fluent Bit pads level names to five characters: `[error]`, `[ warn]`.
        let complaints: Vec<&str> = (log.lines())
            .filter(|l| {
                l.contains("[onepassword.") && (l.contains("[error]") || l.contains("[ warn]"))
            })
            .collect();
        assert!(complaints.is_empty(), "the plugin complained:\n{log}");
        self.assert_no_token(&log);
    }

    fn assert_no_token(&self, log: &str) {
        for token in &self.tokens {
            assert!(!log.contains(token.as_str()), "token in Fluent Bit's log");
        }
    }
}

/// An input's `routes` (YAML at an input's members' indentation) and the output aliases they
/// send to, in order.
struct Routes {
    yaml: String,
    aliases: Vec<String>,
}

/// The `routes` of docs/fluent-bit.md's conditional routing example, as written there.
fn documented_routes() -> Routes {
    let (file, text) = doc("docs/fluent-bit.md");
    let example = (blocks(&file, &text).into_iter())
        .find(|b| b.lines.iter().any(|l| l.trim() == "routes:"))
        .expect("a `routes:` example in docs/fluent-bit.md");
    let lines = &example.lines;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let start = lines.iter().position(|l| l.trim() == "routes:").unwrap();
    let at = indent(&lines[start]);
    let routes: Vec<&str> = lines[start..]
        .iter()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || indent(l) > at)
        .map(|(_, l)| &l[at..])
        .collect();
    let mut aliases = Vec::new();
    for (i, line) in routes.iter().enumerate() {
        if line.trim() == "outputs:" {
            aliases.extend(
                routes[i + 1..]
                    .iter()
                    // Aliases, up to the next route's `- name: …`.
                    .map_while(|l| l.trim().strip_prefix("- ").filter(|a| !a.contains(':')))
                    .map(str::to_owned),
            );
        }
    }
    // The example's outputs are the ones its routes name.
    let mut outputs: Vec<&str> = (lines[start + routes.len()..].iter())
        .filter_map(|l| l.trim().strip_prefix("alias: "))
        .collect();
    let mut named: Vec<&str> = aliases.iter().map(String::as_str).collect();
    outputs.sort();
    named.sort();
    assert_eq!(
        outputs, named,
        "{}: the routes' outputs against the aliases",
        example.at
    );
    Routes {
        yaml: routes.iter().map(|l| format!("      {l}\n")).collect(),
        aliases,
    }
}

/// How many records (JSON lines) of `records` hold each string. Lines that are not JSON (torn by
/// a kill, see [`Run::end_torn_line`]) count for nothing.
fn counts(records: &str) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in records.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let mut found = Vec::new();
        strings(&record, &mut found);
        found.sort();
        found.dedup();
        for s in found {
            *seen.entry(s).or_default() += 1;
        }
    }
    seen
}

fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: `kill` only sends a signal, to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// Waits up to `within` for `child` to exit, or until `done` holds; the exit status if it
/// exited.
fn wait(child: &mut Child, within: Duration, done: impl Fn() -> bool) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if done() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn real_fluent_bit_delivers_every_event() {
    let Some(fb) = FluentBit::find("real_fluent_bit_delivers_every_event") else {
        return;
    };
    let mock = source::mock(300, 7);
    let run = Run::new(&mock, fb.accounts());
    let mut child = run.command(&fb, &[]).spawn().expect("start fluent-bit");
    run.wait_for_every_event(&mut child);
    let status = run.stop(child);
    let records = run.assert_each_once();
    assert!(status.success(), "exit status {status}\n{}", run.logs());
    println!("real Fluent Bit: {records} records checked, clean shutdown");
    if fb.accounts().len() == 1 {
        second_input_is_refused(&fb, &mock, records);
    }
}

/// Fluent Bit's msgpack decoder takes 64 levels of nesting; an item nested deeper (the API's
/// never are, but a page may hold anything JSON allows) must not cost the events around it.
#[test]
fn real_fluent_bit_delivers_the_events_around_a_deeply_nested_item() {
    let Some(fb) =
        FluentBit::find("real_fluent_bit_delivers_the_events_around_a_deeply_nested_item")
    else {
        return;
    };
    let mock = source::mock(300, 7);
    let now = mock.now().to_string();
    let deep = (0..100).fold(serde_json::json!("bottom"), |v, _| serde_json::json!([v]));
    let items = ["before", "deep", "after"].map(|uuid| {
        let mut item = serde_json::json!({"uuid": uuid, "timestamp": now, "action": "test"});
        if uuid == "deep" {
            item["aux_info"] = deep.clone();
        }
        item
    });
    mock.append("acme", "auditevents", items.into()).unwrap();
    let run = Run::new(&mock, fb.accounts());
    let mut child = run.command(&fb, &[]).spawn().expect("start fluent-bit");
    run.wait_for_every_event(&mut child);
    run.stop(child);
    run.assert_each_once();
}

/// docs/fluent-bit.md's conditional routes, on the `event_type` in each record's metadata, as
/// written there: each output gets every event of its types and nothing else (Fluent Bit 4.2
/// and later).
#[test]
fn real_fluent_bit_routes_by_event_type_as_documented() {
    let test = "real_fluent_bit_routes_by_event_type_as_documented";
    let Some(fb) = FluentBit::find(test) else {
        return;
    };
    if fb.version < (4, 2) {
        println!("SKIPPED {test}: conditional routing needs Fluent Bit 4.2 or later");
        return;
    }
    let routes = documented_routes();
    // The example: sign-in attempts to the first output, everything else to the second.
    let [signins, others] = &routes.aliases[..] else {
        panic!("two outputs in the documented routes:\n{}", routes.yaml)
    };
    let mock = source::mock(100, 17);
    let run = Run::new(&mock, fb.accounts());
    let lines = |alias: &str| run.records_in(&format!("{alias}.jsonl")).lines().count();
    // ECS records have no top-level `event_type`: only the metadata can route them.
    let ecs = [("format", "ecs")];
    let mut child =
        (run.yaml_command(&fb, &[], &ecs, Some(&routes)).spawn()).expect("start fluent-bit");
    let expected = run.expected();
    run.wait_until(&mut child, Duration::from_secs(90), "every event", || {
        lines(signins) + lines(others) >= expected
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = run.stop(child);
    assert!(status.success(), "exit status {status}\n{}", run.logs());
    run.assert_clean_logs();
    for (alias, kinds) in [
        (signins, &["signinattempts"][..]),
        (others, &["itemusages", "auditevents"][..]),
    ] {
        let records = run.assert_each_once_in(&format!("{alias}.jsonl"), kinds);
        println!("{test}: {alias}: {records} records, every one of {kinds:?}");
    }
}

/// Fluent Bit pauses an input whose buffered records pass its `mem_buf_limit`; with several
/// inputs its proxy then pauses the wrong one (docs/fluent-bit.md). Pages of 100 events against
/// a 20 KB limit make it pause at almost every collect: every event must still arrive once.
#[test]
fn real_fluent_bit_pauses_and_loses_nothing() {
    let Some(fb) = FluentBit::find("real_fluent_bit_pauses_and_loses_nothing") else {
        return;
    };
    let mock = source::mock(300, 8);
    let run = Run::new(&mock, fb.accounts());
    let extra = [
        ("mem_buf_limit", "20k"),
        ("limit", "100"),
        ("batch_max_records", "100"),
    ];
    let mut child = run.command(&fb, &extra).spawn().expect("start fluent-bit");
    run.wait_for_every_event(&mut child);
    let status = run.stop(child);
    let records = run.assert_each_once();
    let log = run.logs();
    assert!(status.success(), "exit status {status}\n{log}");
    let pauses = log.matches("paused (mem buf overlimit").count();
    assert!(pauses > 0, "Fluent Bit never paused an input:\n{log}");
    println!("real Fluent Bit: {pauses} pauses, {records} records checked, each once");
}

/// SIGHUP reloads the YAML configuration: the new inputs must start from the checkpoints the
/// old ones wrote (so nothing is delivered twice) and deliver what arrives after the reload.
#[test]
fn real_fluent_bit_hot_reload_resumes_from_the_checkpoints() {
    let Some(fb) = FluentBit::find("real_fluent_bit_hot_reload_resumes_from_the_checkpoints")
    else {
        return;
    };
    let mock = source::mock(300, 9);
    let run = Run::new(&mock, fb.accounts());
    let mut child = (run.yaml_command(&fb, &[], &[], None).spawn()).expect("start fluent-bit");
    run.wait_for_every_event(&mut child);

    signal(&child, libc::SIGHUP);
    let resumed = run.accounts.len() * KINDS.len();
    run.wait_until(
        &mut child,
        Duration::from_secs(30),
        "reloaded inputs resuming from their cursors",
        || run.logs().matches("resuming from the saved cursor").count() >= resumed,
    );
    for account in run.accounts {
        for kind in KINDS {
            mock.generate(account, kind, 50, false);
        }
    }
    run.wait_for_every_event(&mut child);
    let status = run.stop(child);
    let records = run.assert_each_once();
    assert!(status.success(), "exit status {status}\n{}", run.logs());
    println!(
        "real Fluent Bit: hot reload resumed from the checkpoints; {records} records checked, \
         each once"
    );
}

/// Before 4.1 the proxy keeps one context per plugin: a second input must fail its start with
/// a line saying why. Fluent Bit 4.0 then stops; 2.2 runs on with the first input, which must
/// still deliver every event of its account.
fn second_input_is_refused(fb: &FluentBit, mock: &MockServer, per_account: usize) {
    const REFUSAL: &str = "can run only one onepassword input per process";
    let run = Run::new(mock, &["acme", "globex"]);
    let mut child = run.command(fb, &[]).spawn().expect("start fluent-bit");
    let delivered = || run.records().lines().count();
    let stopped = wait(&mut child, Duration::from_secs(60), || {
        run.logs().contains(REFUSAL) && delivered() >= per_account
    });
    if stopped.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = run.logs();
    assert!(
        log.contains(REFUSAL),
        "no refusal of the second input:\n{log}"
    );
    match stopped {
        Some(status) => assert!(!status.success(), "exit status {status}\n{log}"),
        None => assert_eq!(delivered(), per_account, "the first input\n{log}"),
    }
    run.assert_no_token(&log);
    println!(
        "real Fluent Bit: a second input is refused, saying why; Fluent Bit {}",
        if stopped.is_some() {
            "stopped".to_owned()
        } else {
            format!("ran on with the first, which delivered all {per_account} events")
        }
    );
}

/// With filesystem storage (the durable setup of docs/fluent-bit.md), a Fluent Bit killed with
/// SIGKILL (twice, mid-stream) and started again must still deliver every event: the plugin
/// checkpoints only what Fluent Bit took, and Fluent Bit replays its stored chunks. The input is
/// threaded (the default), so what it takes sits in an in-memory ring buffer for up to 250 ms
/// before it reaches storage; `checkpoint_delay` must outlast that (with 0 this run fails in
/// most tries).
#[test]
fn real_fluent_bit_killed_and_restarted_loses_nothing() {
    let Some(fb) = FluentBit::find("real_fluent_bit_killed_and_restarted_loses_nothing") else {
        return;
    };
    let mock = source::mock(300, 10);
    let run = Run::new(&mock, fb.accounts());
    let storage = run.work.path().join("storage").display().to_string();
    let service = [("storage.path", storage.as_str())];
    let input = [
        ("storage.type", "filesystem"),
        ("limit", "100"),
        ("batch_max_records", "100"),
    ];
    let expected = run.expected();
    let mut torn = 0;
    for at in [expected / 4, expected / 2] {
        let mut child =
            (run.yaml_command(&fb, &service, &input, None).spawn()).expect("start fluent-bit");
        let reached = || run.records().lines().count() >= at;
        if wait(&mut child, Duration::from_secs(60), reached).is_some()
            && run.logs().contains("cannot init storage backlog")
        {
            println!(
                "SKIPPED real_fluent_bit_killed_and_restarted_loses_nothing: this Fluent Bit \
                 has no filesystem storage (built without FLB_IN_STORAGE_BACKLOG)"
            );
            return;
        }
        run.wait_until(&mut child, Duration::from_secs(1), "records", reached);
        child.kill().unwrap();
        child.wait().unwrap();
        torn += usize::from(run.end_torn_line());
    }
    let mut child =
        (run.yaml_command(&fb, &service, &input, None).spawn()).expect("start fluent-bit");
    let uuids = run.uuids();
    run.wait_until(&mut child, Duration::from_secs(90), "every event", || {
        let seen = run.counts();
        uuids.iter().all(|u| seen.contains_key(u))
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = run.stop(child);
    let records = run.records().lines().count() - torn;
    let duplicates = records - expected;
    run.assert_clean_logs();
    assert!(status.success(), "exit status {status}\n{}", run.logs());
    println!(
        "real Fluent Bit: killed twice and restarted; {records} records ({torn} more torn by \
         the kills), every one of the {expected} events, {duplicates} duplicates"
    );
}
