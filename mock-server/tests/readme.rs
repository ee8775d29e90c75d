//! The README's shell examples, run as written: a small interpreter for the commands they use
//! (`serve … &`, `VAR=$(… token …)`, `VAR=value`, waiting until the server answers, `curl`)
//! runs every `sh` block made only of those, in order, as one shell session, against the real
//! binary. Each `curl` must get a 2xx answer. The server's address is the README's, moved to a
//! free port.

mod common;

use std::collections::HashMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_op-events-mock");

/// The README's fenced `sh` blocks, each as its first line number and its commands (lines
/// continued with `\` joined).
fn sh_blocks() -> Vec<(usize, Vec<String>)> {
    let text = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Vec<String>)> = None;
    let mut continued = String::new();
    for (n, line) in text.lines().enumerate() {
        match &mut open {
            None if line.trim() == "```sh" => open = Some((n + 1, Vec::new())),
            None => {}
            Some(_) if line.trim() == "```" => blocks.push(open.take().unwrap()),
            Some((_, commands)) => match line.trim().strip_suffix('\\') {
                Some(start) => continued.push_str(start),
                None => commands.push(std::mem::take(&mut continued) + line.trim()),
            },
        }
    }
    blocks
}

/// Splits a command line into words as a POSIX shell would for these examples: single quotes
/// literal, double quotes with `\"`, `\\` and `$VAR`, `$VAR` outside quotes, `#` starting a
/// comment.
fn words(line: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let expand = |chars: &mut std::iter::Peekable<std::str::Chars>, into: &mut String| {
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
        }
        into.push_str(
            vars.get(&name)
                .unwrap_or_else(|| panic!("${name} is not set")),
        );
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => out.extend(word.take()),
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_default();
                w.extend(chars.by_ref().take_while(|c| *c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_default();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        '$' => expand(&mut chars, w),
                        c => w.push(c),
                    }
                }
            }
            '$' => expand(&mut chars, word.get_or_insert_default()),
            c => word.get_or_insert_default().push(c),
        }
    }
    out.extend(word);
    out
}

/// The binary's arguments in `cargo run … -p op-events-mock -- ARGS` or `op-events-mock ARGS`.
fn mock_args(words: &[String]) -> Option<Vec<String>> {
    match words.first()?.as_str() {
        "op-events-mock" => Some(words[1..].to_vec()),
        "cargo" if words.iter().any(|w| w == "op-events-mock") => {
            let dashes = words.iter().position(|w| w == "--")?;
            Some(words[dashes + 1..].to_vec())
        }
        _ => None,
    }
}

/// `NAME=value` or `NAME=$(…)` on its own: not `NAME=value command …`, which sets `NAME` for
/// that command only.
fn assignment(command: &str) -> Option<(&str, &str)> {
    let (name, value) = command.split_once('=')?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    let alone = value.starts_with("$(") || !value.contains(char::is_whitespace);
    (name_ok && alone).then_some((name, value))
}

/// A shell session's state: its variables, the servers it started, and the address each was
/// told to listen on, mapped to where it really listens.
#[derive(Default)]
struct Session {
    vars: HashMap<String, String>,
    /// Killed when the session ends.
    servers: Vec<common::Serving>,
    moved: Vec<(String, String)>,
    curls: usize,
}

impl Session {
    /// Whether the interpreter knows every command of a block.
    fn runs(&self, commands: &[String]) -> bool {
        commands.iter().all(|c| {
            let c = c.trim();
            c.is_empty()
                || c.starts_with('#')
                || c.starts_with("curl ")
                || c.starts_with("until curl ")
                || assignment(c).is_some()
                || c.starts_with("op-events-mock serve ")
                || c.starts_with("cargo run") && c.contains(" serve ")
        })
    }

    /// The README's addresses moved to where the servers listen.
    fn relocate(&self, word: &str) -> String {
        self.moved
            .iter()
            .fold(word.to_owned(), |w, (from, to)| w.replace(from, to))
    }

    async fn run(&mut self, at: &str, command: &str) {
        let command = command.trim();
        if command.is_empty() || command.starts_with('#') {
            return;
        }
        if let Some(rest) = command.strip_prefix("until ") {
            // `until curl -sf URL >/dev/null; do sleep 0.2; done`: the server answers.
            let probe = rest.split(';').next().unwrap().replace(">/dev/null", "");
            return self.curl(at, &probe).await;
        }
        if command.starts_with("curl ") {
            return self.curl(at, command).await;
        }
        if let Some((name, value)) = assignment(command) {
            let value = match value.strip_prefix("$(").and_then(|v| v.strip_suffix(')')) {
                Some(inner) => self.output(at, inner),
                None => self.relocate(&words(value, &self.vars).concat()),
            };
            self.vars.insert(name.to_owned(), value);
            return;
        }
        let words = words(command, &self.vars);
        let args = mock_args(&words).unwrap_or_else(|| panic!("{at}: {command}"));
        assert_eq!(args[0], "serve", "{at}: {command}");
        assert_eq!(
            words.last().map(String::as_str),
            Some("&"),
            "{at}: a server started in the foreground: the commands after it never run"
        );
        self.serve(&args[1..args.len() - 1]);
    }

    /// Starts `serve ARGS` on a free port in place of its `--addr`, once it says it is ready.
    fn serve(&mut self, args: &[String]) {
        let mut args = args.to_vec();
        let addr = args
            .iter()
            .position(|a| a == "--addr")
            .map_or_else(|| "127.0.0.1:8080".to_owned(), |i| args.remove(i + 1));
        args.retain(|a| a != "--addr");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = common::serve(&args);
        let listening = format!("127.0.0.1:{}", server.port);
        if let Some(port) = addr.strip_prefix("127.0.0.1:") {
            self.moved
                .push((format!("localhost:{port}"), listening.clone()));
        }
        self.moved.push((addr, listening));
        self.servers.push(server);
    }

    /// What `$( … )` prints: the mock binary only.
    fn output(&self, at: &str, inner: &str) -> String {
        let words = words(inner, &self.vars);
        let args = mock_args(&words).unwrap_or_else(|| panic!("{at}: $({inner})"));
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{at}: $({inner}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    async fn curl(&mut self, at: &str, command: &str) {
        let words: Vec<String> = words(command, &self.vars)
            .iter()
            .map(|w| self.relocate(w))
            .collect();
        let mut url = None;
        let mut headers = Vec::new();
        let mut body = None;
        let mut method = None;
        let mut rest = words[1..].iter();
        while let Some(word) = rest.next() {
            match word.as_str() {
                "-s" | "-sf" => {}
                "-H" => headers.push(rest.next().unwrap().clone()),
                "-d" => body = Some(rest.next().unwrap().clone()),
                "-X" => method = Some(rest.next().unwrap().clone()),
                w if w.starts_with("http") => url = Some(w.to_owned()),
                w => panic!("{at}: curl option {w} not known to this test"),
            }
        }
        let url = url.unwrap_or_else(|| panic!("{at}: no URL in {command}"));
        let client = common::client();
        let mut request = match (&method, &body) {
            (Some(method), _) => client.request(method.parse().unwrap(), &url),
            (None, Some(body)) => client.post(&url).body(body.clone()),
            (None, None) => client.get(&url),
        };
        for header in headers {
            let (name, value) = header.split_once(": ").unwrap();
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{at}: {command}: {status} {text}");
        self.curls += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_shell_examples_run_as_written() {
    let mut session = Session::default();
    // The revoke example names a token minted earlier, as after a rotation.
    let old = session.output("setup", "op-events-mock token");
    session.vars.insert("OLD_TOKEN".into(), old);
    let mut ran = Vec::new();
    for (line, commands) in sh_blocks() {
        if !session.runs(&commands) {
            continue;
        }
        let at = format!("mock-server/README.md, the block at line {line}");
        for command in &commands {
            session.run(&at, command).await;
        }
        ran.push(line);
    }
    // The quick start and the admin API examples at least; a parser that found neither
    // would check nothing.
    assert!(ran.len() >= 2, "blocks run: {ran:?}");
    assert!(session.curls >= 13, "{} curl commands run", session.curls);
}
