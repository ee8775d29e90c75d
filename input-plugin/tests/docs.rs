//! The documentation against the code, so that what users copy from it works. Both option
//! tables list exactly the options there are, each flag they name exists, and a default given
//! as one value is the default. Every `onepassword` input of docs/fluent-bit.md and the README
//! (command line, classic and YAML) starts in the dlopen harness and delivers its event types
//! from the mock, and with a real Fluent Bit installed, every Fluent Bit configuration there
//! passes its dry run. docs/vector.md's `exec` commands and docs/configuration.md's `--config`
//! file drain the mock through the binary, and the README's "Against the mock" block runs as
//! written.

mod harness;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::docs::{Block, blocks, doc};
use harness::events::{Event, decode};
use harness::installed;
use harness::source::{self, KINDS, borrow};
use harness::{FluentBit, Layout};
use op_events_input::config::{Config, KEYS};
use op_events_mock::MockServer;

const BIN: &str = env!("CARGO_BIN_EXE_op-events");

/// The rows of the table under `## {heading}`: each row's cells, trimmed.
fn table(text: &str, heading: &str) -> Vec<Vec<String>> {
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("no `## {heading}` section"));
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The text inside a cell that is exactly one code span.
fn literal(cell: &str) -> Option<&str> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then_some(inner)
}

#[test]
fn option_tables_list_every_option_with_its_flag_and_default() {
    let defaults = format!(
        "{:?}",
        Config::from_pairs(std::iter::empty::<(&str, &str)>()).unwrap()
    );
    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let mut checked_defaults = 0;
    for (file, flags) in [
        ("docs/fluent-bit.md", false),
        ("docs/configuration.md", true),
    ] {
        let (file, text) = doc(file);
        let rows = table(&text, "Options");
        let listed: BTreeSet<&str> = rows.iter().filter_map(|r| literal(&r[0])).collect();
        let keys: BTreeSet<&str> = KEYS.iter().copied().collect();
        assert_eq!(
            listed, keys,
            "{file}: the options table against config::KEYS"
        );
        assert_eq!(rows.len(), KEYS.len(), "{file}: an option listed twice");
        for row in &rows {
            let key = literal(&row[0]).unwrap();
            // `checkpoint_delay`'s default is each front end's (the plugin's `1s`, checked in
            // ffi_checkpoint_delay.rs), not the shared config's.
            if let Some(default) = literal(&row[1]).filter(|_| key != "checkpoint_delay") {
                let set = Config::from_pairs([(key, default)])
                    .unwrap_or_else(|e| panic!("{file}: `{key}` = `{default}`: {e}"));
                assert_eq!(
                    format!("{set:?}"),
                    defaults,
                    "{file}: `{key}` is documented to default to `{default}`, which is not its default"
                );
                checked_defaults += 1;
            }
            let flag = row.get(3).and_then(|c| literal(c)).filter(|_| flags);
            if let Some(flag) = flag.filter(|f| *f != "--set") {
                assert!(
                    help.contains(&format!("{flag} ")),
                    "{file}: `{key}`'s flag {flag} is not in `op-events run --help`"
                );
            }
        }
    }
    // Most defaults are one value; a parser that found none would check nothing.
    assert!(
        checked_defaults >= 30,
        "{checked_defaults} defaults checked"
    );
}

/// Properties Fluent Bit keeps for itself: never passed to the plugin.
fn fluent_bits_own(key: &str) -> bool {
    [
        "name",
        "tag",
        "alias",
        "log_level",
        "threaded",
        "mem_buf_limit",
        "routable",
    ]
    .contains(&key)
        || key.starts_with("storage.")
}

/// Each `onepassword` input of a block: its properties in order, as Fluent Bit reads them from
/// a command line (`-i onepassword -p k=v …`), a classic `[INPUT]` section or a YAML input.
fn inputs(block: &Block) -> Vec<Vec<(String, String)>> {
    let is_ours = |props: &[(String, String)]| {
        props
            .iter()
            .any(|(k, v)| k == "name" && v.eq_ignore_ascii_case("onepassword"))
    };
    let mut found = Vec::new();
    match block.lang.as_str() {
        "sh" => {
            let line = block.lines.join(" ").replace('\\', " ");
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                if word == "-i" && words.next() == Some("onepassword") {
                    found.push(vec![("name".to_owned(), "onepassword".to_owned())]);
                } else if word == "-p"
                    && let (Some(input), Some((k, v))) = (
                        found.last_mut(),
                        words.next().and_then(|p| p.split_once('=')),
                    )
                {
                    input.push((k.to_owned(), v.trim_matches('\'').to_owned()));
                } else if word.starts_with('-') && word != "-p" && word != "-e" {
                    // Another plugin's options (`-o …`) follow: no input of ours any more.
                    found.push(Vec::new());
                }
            }
        }
        "ini" => {
            for line in &block.lines {
                let line = line.trim();
                if line.starts_with('[') {
                    found.push(Vec::new());
                } else if let (Some(section), Some((k, v))) =
                    (found.last_mut(), line.split_once(char::is_whitespace))
                    && !line.starts_with('#')
                {
                    section.push((k.to_lowercase(), v.trim().to_owned()));
                }
            }
        }
        "yaml" => {
            let mut dash = None;
            for line in block.lines.iter().filter(|l| !l.trim().is_empty()) {
                let indent = line.len() - line.trim_start().len();
                let item = line.trim_start().strip_prefix("- ");
                let body = item.unwrap_or(line.trim_start());
                let body = body.split(" #").next().unwrap().trim();
                match dash {
                    _ if item.is_some() => {
                        dash = Some(indent);
                        found.push(Vec::new());
                    }
                    // A member of the list item; deeper lines are a member's own.
                    Some(d) if indent == d + 2 => {}
                    Some(d) if indent > d + 2 => continue,
                    _ => {
                        dash = None;
                        continue;
                    }
                }
                if let (Some(input), Some((k, v))) = (found.last_mut(), body.split_once(": ")) {
                    input.push((k.to_owned(), v.trim().to_owned()));
                }
            }
        }
        _ => {}
    }
    found.retain(|props| is_ours(props));
    found
}

/// The mock's account for a `${VAR}` token reference: one per variable, in order of appearance.
fn account_for(variables: &mut Vec<String>, value: &str) -> &'static str {
    const ACCOUNTS: [&str; 3] = ["acme", "globex", "initech"];
    let at = match variables.iter().position(|v| v == value) {
        Some(at) => at,
        None => {
            variables.push(value.to_owned());
            variables.len() - 1
        }
    };
    ACCOUNTS[at]
}

#[test]
fn every_documented_fluent_bit_input_starts_and_delivers_its_events() {
    const PER_TYPE: usize = 40;
    let mock = source::mock(PER_TYPE, 11);
    let fb = FluentBit::load(Layout::V41);
    let _def = fb.register();
    let mut started = 0;
    let mut langs = BTreeSet::new();
    let files = ["docs/fluent-bit.md", "README.md"].map(doc);
    for block in files.iter().flat_map(|(file, text)| blocks(file, text)) {
        let documented = inputs(&block);
        if documented.is_empty() {
            continue;
        }
        langs.insert(block.lang.clone());
        let at = &block.at;
        // Fresh state directories for this block, one per path it names.
        let mut dirs: HashMap<String, tempfile::TempDir> = HashMap::new();
        let mut variables = Vec::new();
        let mut running = Vec::new();
        for props in documented {
            let mut account = None;
            let mut kinds: Vec<&str> = KINDS.to_vec();
            let mut given: Vec<(&'static str, Vec<u8>)> = Vec::new();
            for (key, value) in props.iter().filter(|(k, _)| !fluent_bits_own(k)) {
                let key = *KEYS
                    .iter()
                    .find(|k| *k == key)
                    .unwrap_or_else(|| panic!("{at}: `{key}` is not an option of the plugin"));
                let value = match key {
                    "token" => {
                        assert!(value.starts_with("${"), "{at}: a token in the clear");
                        let name = account_for(&mut variables, value);
                        account = Some(name);
                        mock.token(name, &KINDS)
                    }
                    "state_dir" => {
                        let dir = dirs
                            .entry(value.clone())
                            .or_insert_with(|| tempfile::tempdir().unwrap());
                        dir.path().to_str().unwrap().to_owned()
                    }
                    _ => value.clone(),
                };
                if key == "events" {
                    kinds = KINDS
                        .into_iter()
                        .filter(|k| value.split(',').any(|v| v.trim() == *k))
                        .collect();
                }
                given.push((key, value.into_bytes()));
            }
            let account = account.unwrap_or_else(|| panic!("{at}: an input without a token"));
            given.push(("base_url", mock.url().into_bytes()));
            let (instance, code) = fb.start(&borrow(&given), harness::INFO);
            assert_eq!(code, 1, "{at}: init failed: {:#?}", harness::all_logs());
            running.push((instance, account, kinds, Vec::<Event>::new()));
            started += 1;
        }
        let expected = |account: &str, kinds: &[&str]| -> usize {
            kinds
                .iter()
                .map(|k| mock.servable_events(account, k).len())
                .sum()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while running
            .iter()
            .any(|(_, account, kinds, got)| got.len() < expected(account, kinds))
        {
            assert!(
                Instant::now() < deadline,
                "{at}: not every event within 60s"
            );
            for (instance, _, _, got) in &mut running {
                if let Some(buffer) = instance.collect() {
                    got.extend(decode(&buffer));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for (instance, account, kinds, got) in running {
            source::assert_kinds_delivered(&mock, account, &kinds, &got, false);
            instance.stop(false);
        }
    }
    // The command line, classic and YAML examples, including two-input ones.
    assert_eq!(
        langs,
        BTreeSet::from(["ini".into(), "sh".into(), "yaml".into()])
    );
    assert!(started >= 9, "{started} documented inputs found");
}

/// The plugins a Fluent Bit was built with, from the lists in its `--help`.
fn built_plugins(fb: &installed::FluentBit) -> BTreeSet<String> {
    let help = Command::new(&fb.bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // Each plugin is a line of its own, indented by two spaces: `  stdout   Prints events…`.
    help.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// A documented configuration made runnable: the library's documented paths become the one
/// this test built, `/etc/fluent-bit/` (where the docs put a plugins file) and `/var/lib/` become
/// `dir`.
fn localized(text: &str, dir: &Path) -> String {
    let library = harness::library_path();
    let library = library.to_str().unwrap();
    let dir = dir.to_str().unwrap();
    text.replace("/opt/op-events/libop_events_input.so", library)
        .replace("target/release/libop_events_input.so", library)
        .replace("/etc/fluent-bit/", &format!("{dir}/"))
        .replace("/var/lib/", &format!("{dir}/var/lib/"))
}

/// How Fluent Bit is told to read a block: as a classic or YAML configuration file (a main
/// file, or an excerpt, which gets the library through `-e`), as a command line, or not at all
/// (a file another block names, or not Fluent Bit's).
enum Reading {
    File(&'static str),
    CommandLine,
    Named(String),
    Not,
}

fn reading(block: &Block) -> Reading {
    let first = block.lines.first().map(String::as_str).unwrap_or("");
    if let Some(path) = first.strip_prefix("# /etc/fluent-bit/") {
        // A file the next block names (the plugins file), or the main file itself.
        if !block
            .lines
            .iter()
            .any(|l| l.trim() == "[INPUT]" || l.trim() == "[SERVICE]")
        {
            return Reading::Named(path.to_owned());
        }
    }
    match block.lang.as_str() {
        "ini" => Reading::File("conf"),
        "yaml"
            if block
                .lines
                .iter()
                .any(|l| l == "pipeline:" || l == "plugins:") =>
        {
            Reading::File("yaml")
        }
        "sh" if first.starts_with("fluent-bit ") => Reading::CommandLine,
        _ => Reading::Not,
    }
}

/// The plugins a classic or YAML configuration names (its `name` keys), not counting the names
/// of an input's `routes`.
fn plugin_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut routes_at = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        if routes_at.is_some_and(|at| indent > at) {
            continue;
        }
        let line = line.trim().trim_start_matches("- ");
        routes_at = (line == "routes:").then_some(indent);
        if let Some(("name", value)) = line.split_once(|c: char| c == ':' || c.is_whitespace()) {
            names.push(value.trim());
        }
    }
    names
}

/// The sections of Fluent Bit's classic configuration format.
const CLASSIC_SECTIONS: [&str; 9] = [
    "SERVICE",
    "INPUT",
    "FILTER",
    "OUTPUT",
    "PLUGINS",
    "PARSER",
    "MULTILINE_PARSER",
    "CUSTOM",
    "UPSTREAM",
];

/// Every Fluent Bit configuration of docs/fluent-bit.md and the README, read by a real Fluent
/// Bit in its dry run (`-D`): the file's syntax, the library loading through `-e`, a plugins
/// file or YAML's `plugins:`, and (Fluent Bit 5 checks them there) the property names of the
/// other plugins in it. Our own plugin's properties are checked by the test above.
#[test]
fn every_documented_fluent_bit_configuration_passes_a_real_dry_run() {
    let test = "every_documented_fluent_bit_configuration_passes_a_real_dry_run";
    let Some(fb) = installed::FluentBit::find(test) else {
        return;
    };
    let built = built_plugins(&fb);
    assert!(
        built.contains("stdout"),
        "plugins read from --help: {built:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let library = harness::library_path();
    let (mut read, mut skipped) = (0, 0);
    let files = ["docs/fluent-bit.md", "README.md"].map(doc);
    for block in files.iter().flat_map(|(file, text)| blocks(file, text)) {
        let text = localized(&block.lines.join("\n"), dir.path());
        let mut command = Command::new(&fb.bin);
        match reading(&block) {
            Reading::Not => continue,
            Reading::Named(name) => {
                std::fs::write(dir.path().join(name), text).unwrap();
                continue;
            }
            Reading::CommandLine => {
                let words = text.replace("\\\n", " ");
                command.args(
                    words
                        .split_whitespace()
                        .skip(1)
                        .map(|w| w.replace('\'', "")),
                );
            }
            Reading::File(ext) => {
                // A classic section Fluent Bit does not know is skipped without a word.
                for line in block.lines.iter().map(|l| l.trim()) {
                    if let Some(section) = line.strip_prefix('[') {
                        assert!(
                            CLASSIC_SECTIONS.contains(&section.trim_end_matches(']')),
                            "{}: `{line}` is not a section Fluent Bit reads",
                            block.at
                        );
                    }
                }
                let path = dir.path().join(format!("{read}.{ext}"));
                std::fs::write(&path, &text).unwrap();
                if !text.contains("plugins_file") && !text.contains("plugins:") {
                    command.arg("-e").arg(&library);
                }
                command.arg("-c").arg(path);
            }
        }
        // Plugins this Fluent Bit was built without (a minimal build has no `es`).
        let missing: Vec<&str> = plugin_names(&text)
            .into_iter()
            .filter(|name| *name != "onepassword" && !built.contains(*name))
            .collect();
        if !missing.is_empty() {
            println!(
                "{test}: {} skipped: this Fluent Bit has no {missing:?}",
                block.at
            );
            skipped += 1;
            continue;
        }
        let out = command
            .arg("--dry-run")
            .env("OP_EVENTS_TOKEN", "dry-run")
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && log.contains("configuration test is successful"),
            "{}: Fluent Bit's dry run failed:\n{text}\n{log}",
            block.at
        );
        read += 1;
    }
    println!("{test}: {read} configurations read, {skipped} skipped");
    // The command lines, the classic main file, the YAML ones and the excerpts.
    assert!(read + skipped >= 10, "{read} read, {skipped} skipped");
}

/// Runs the binary as documented, with the mock's address added and `--once`; returns its
/// records and its log.
fn drain(mut command: Command, mock: &MockServer, at: &str) -> (Vec<serde_json::Value>, String) {
    let out = command
        .args(["--base-url", &mock.url(), "--once"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let args: Vec<_> = command.get_args().collect();
    assert!(out.status.success(), "{at}: op-events {args:?}: {stderr}");
    let records = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{at}: {e}: {l}")))
        .collect();
    (records, stderr)
}

#[test]
fn every_documented_vector_command_drains_the_mock() {
    let mock = source::mock(30, 5);
    let token = mock.token("acme", &KINDS);
    let all: usize = KINDS
        .iter()
        .map(|k| mock.servable_events("acme", k).len())
        .sum();
    let (file, text) = doc("docs/vector.md");
    let mut commands = 0;
    for block in blocks(&file, &text) {
        for line in block
            .lines
            .iter()
            .filter(|l| l.trim_start().starts_with("command"))
        {
            let list = &line[line.find('[').unwrap()..=line.rfind(']').unwrap()];
            let args: Vec<String> =
                serde_json::from_str(list).unwrap_or_else(|e| panic!("{}: {line}: {e}", block.at));
            let state = tempfile::tempdir().unwrap();
            let mut command = Command::new(BIN);
            let mut args = args.iter().skip(1);
            while let Some(arg) = args.next() {
                command.arg(arg);
                if arg == "--state-dir" {
                    args.next();
                    command.arg(state.path());
                }
            }
            command.env("OP_EVENTS_TOKEN", &token);
            let (records, stderr) = drain(command, &mock, &block.at);
            assert_eq!(records.len(), all, "{}", block.at);
            // `--log-format json`: each log line is an object Vector's `json` codec takes.
            for line in stderr.lines() {
                let log: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: a log line not JSON ({e}): {line}", block.at));
                assert!(log["level"].is_string(), "{line}");
            }
            commands += 1;
        }
    }
    assert_eq!(commands, 2, "the YAML and the TOML example");
}

#[test]
fn the_documented_config_file_drains_the_mock() {
    let mock = source::mock(30, 6);
    let token = mock.token("acme", &KINDS);
    let (file, text) = doc("docs/configuration.md");
    let block = blocks(&file, &text)
        .into_iter()
        .find(|b| b.lang == "toml")
        .expect("a --config example");
    let mut config: toml::Table = toml::from_str(&block.lines.join("\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let paths: [(&str, PathBuf); 2] = [
        ("token_file", token_file),
        ("state_dir", dir.path().join("state")),
    ];
    for (key, path) in paths {
        assert!(config.contains_key(key), "{}: no `{key}`", block.at);
        config.insert(key.into(), path.to_str().unwrap().into());
    }
    let path = dir.path().join("op-events.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let kinds: Vec<&str> = config["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();

    let mut command = Command::new(BIN);
    command
        .env_remove("OP_EVENTS_TOKEN")
        .args(["run", "--config"])
        .arg(&path);
    let (records, _) = drain(command, &mock, &block.at);
    let expected: usize = kinds
        .iter()
        .map(|k| mock.servable_events("acme", k).len())
        .sum();
    assert_eq!(records.len(), expected, "{}", block.at);
    assert_eq!(config["format"].as_str(), Some("ocsf"));
    assert!(
        records.iter().all(|r| r["class_uid"].is_number()),
        "{}: not OCSF records",
        block.at
    );
}

/// The README's "Against the mock" block, run by `sh` as written but for three things: its
/// `cargo run … -p op-events-mock --` is the mock binary `cargo test --workspace` built beside
/// op-events, `target/release/op-events` is the binary under test, and port 8080 a free one.
/// Everything the mock can serve must come out, once. Skips, saying so, under `cargo test -p
/// op-events`, which builds no mock binary.
#[test]
fn the_readmes_mock_example_runs_as_written() {
    let mock_bin = Path::new(BIN).with_file_name("op-events-mock");
    if !mock_bin.exists() {
        println!(
            "skipped: no {} (run `cargo test --workspace`)",
            mock_bin.display()
        );
        return;
    }
    let (file, text) = doc("README.md");
    let block = blocks(&file, &text)
        .into_iter()
        .find(|b| b.lang == "sh" && b.lines.iter().any(|l| l.contains(" serve ")))
        .expect("the README's block that serves the mock");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut script = block.lines.join("\n");
    for (from, to) in [
        (
            "cargo run --release -p op-events-mock --",
            "\"$OP_EVENTS_MOCK\"",
        ),
        (
            "cargo run -q --release -p op-events-mock --",
            "\"$OP_EVENTS_MOCK\"",
        ),
        ("target/release/op-events ", "\"$OP_EVENTS\" "),
        ("127.0.0.1:8080", &format!("127.0.0.1:{port}")),
    ] {
        assert!(script.contains(from), "{}: no `{from}` any more", block.at);
        script = script.replace(from, to);
    }
    // What the mock can serve, asked of it once the block is done.
    let expected = KINDS.map(|kind| {
        format!("curl -sf 'http://127.0.0.1:{port}/_mock/accounts/acme/{kind}/events?servable=true&format=ndjson' >> expected")
    });
    let expected = expected.join("\n");
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let started = Instant::now();
    // Files, not pipes: a pipe no one reads until the end would stop the run when full.
    let mut shell = Command::new("sh")
        .process_group(0)
        // The server the block starts in the background is its last job.
        .args(["-ec", &format!("trap 'kill $!' EXIT\n{script}\n{expected}")])
        .current_dir(dir.path())
        .env("OP_EVENTS_MOCK", &mock_bin)
        .env("OP_EVENTS", BIN)
        .env_remove("OP_EVENTS_TOKEN")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = shell.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let group = format!("-{}", shell.id());
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .status()
                .unwrap();
            panic!("{}: still running after 120 s", block.at);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{}: {status}\n{log}", block.at);

    let uuids: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            record["event"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let unique: BTreeSet<&str> = uuids.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), uuids.len(), "{}: an event twice", block.at);
    let servable: Vec<String> = std::fs::read_to_string(dir.path().join("expected"))
        .unwrap()
        .lines()
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap();
            event["uuid"].as_str().unwrap().to_owned()
        })
        .collect();
    // `--events 10000` of each type, less what lies outside the 120-day retention.
    assert!(
        servable.len() > 3 * 9000,
        "{}: {}",
        block.at,
        servable.len()
    );
    let servable: BTreeSet<&str> = servable.iter().map(String::as_str).collect();
    let missing: Vec<_> = servable.difference(&unique).collect();
    let extra: Vec<_> = unique.difference(&servable).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: {} events missing (first {:?}), {} not served (first {:?})",
        block.at,
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
}
