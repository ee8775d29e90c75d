//! stderr: the logger (every line redacted) and the final error line, in the log's format.

use std::io::{IsTerminal as _, Write as _};

use super::args::LogFormat;
use super::{ENV_TOKEN, Failure};

/// The stderr logger's filter. A bare word that is not a level would be read as a target name,
/// which silences every log line, so it is refused; filters with `=` or `,` are RUST_LOG's.
fn log_filter(level: &str) -> Result<tracing_subscriber::EnvFilter, Failure> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let level = level.trim();
    let bare_word = !level.contains(['=', ',']);
    let refused = || {
        Failure::usage(format!(
            "--log-level: `{level}` is not one of {} or a filter such as \
             `info,op_events_input=debug`",
            LEVELS.join(", ")
        ))
    };
    if bare_word && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
        return Err(refused());
    }
    // The demo's embedded mock logs every request at info: keep it quiet unless asked.
    tracing_subscriber::EnvFilter::try_new(format!("op_events_mock=warn,{level}"))
        .map_err(|_| refused())
}

/// Installs the stderr logger.
pub(super) fn init_logging(format: LogFormat, level: &str) -> Result<(), Failure> {
    let filter = log_filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr {
            secret: std::env::var(ENV_TOKEN).ok(),
        })
        .with_target(false);
    // Fails only when a logger is already installed: that one stays.
    let _ = if format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    Ok(())
}

/// The logger's stderr, every line passed through [`crate::token::redact_held`] as errors are
/// ([`redacted`]): a warning may quote a path or a value holding a token just as well. The
/// environment's token is known before any is loaded (a refused option is logged first).
struct RedactedStderr {
    secret: Option<String>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine<'a>;
    fn make_writer(&'a self) -> RedactedLine<'a> {
        RedactedLine {
            secret: self.secret.as_deref(),
            line: Vec::new(),
        }
    }
}

/// One log line, held until it is whole (a token split across two writes would escape
/// redaction), written redacted when dropped.
struct RedactedLine<'a> {
    secret: Option<&'a str>,
    line: Vec<u8>,
}

impl std::io::Write for RedactedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine<'_> {
    fn drop(&mut self) {
        let line = crate::token::redact_held(&String::from_utf8_lossy(&self.line), self.secret);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Whether the command line, which clap refused, asks for `--log-format json`: a log shipper
/// reading the logs as JSON must get its usage error as a JSON line too.
pub(super) fn asks_for_json_logs(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--log-format") {
            Some("") => args.next(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => continue,
        };
        return value.is_some_and(|v| v.eq_ignore_ascii_case("json"));
    }
    false
}

/// The final error on stderr, in the log's format: with `--log-format json` a line shaped as the
/// logger's own (a log shipper parses every line), printed whatever `--log-level` says and
/// even when the logger could not be set up (a refused `--log-level`).
pub(super) fn print_failure(format: LogFormat, message: &str) {
    let line = match format {
        // One line: a value quoted with a newline must not start another.
        LogFormat::Text => format!(
            "op-events: error: {}",
            crate::token::redact_line(message, None)
        ),
        LogFormat::Json => format!(
            r#"{{"timestamp":"{:.6}","level":"ERROR","fields":{{"message":{}}}}}"#,
            jiff::Timestamp::now(),
            serde_json::Value::from(message)
        ),
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// An error message, as the user will see it, with the token and anything token-shaped hidden.
/// Messages quote what was given (a flag's value, a path, a stray argument, a config file's
/// line), and a token pasted into the wrong place must not be shown there: the one in
/// `OP_EVENTS_TOKEN`, and any the run loaded (from `token_file` too, whatever its shape).
pub(super) fn redacted(message: &str) -> String {
    let secret = std::env::var(ENV_TOKEN).ok();
    crate::token::redact_held(message, secret.as_deref())
}

#[cfg(test)]
mod tests {
    use super::asks_for_json_logs;

    #[test]
    fn a_refused_command_line_asking_for_json_logs_is_recognised() {
        let asks = |line: &str| asks_for_json_logs(line.split(' ').map(Into::into));
        assert!(asks("op-events run --log-format json --bogus"));
        assert!(asks("op-events --log-format=JSON run"));
        assert!(!asks("op-events run --log-format text --bogus"));
        assert!(!asks("op-events run --log-format"));
        assert!(!asks("op-events run --log-formats json"));
        assert!(!asks("op-events run -- --log-format json"));
    }
}
