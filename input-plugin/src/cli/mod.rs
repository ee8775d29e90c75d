//! `op-events run | check | demo`: the binary's command line, on the same collector core as
//! the Fluent Bit plugin.

mod args;
mod check;
mod demo;
mod logging;
mod options;
mod run;
mod watch;

use std::io::Write as _;

use clap::Parser as _;

use crate::config::ConfigError;
use args::{Cli, Command, LogFormat};
use logging::{asks_for_json_logs, init_logging, print_failure, redacted};

const ENV_TOKEN: &str = "OP_EVENTS_TOKEN";

/// An error for `main`: message and exit code (2 = usage, 1 = runtime).
#[derive(Debug)]
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
    fn runtime(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::usage(e)
    }
}

/// Parses arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version: stdout, nothing of the user's quoted.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return e.exit_code();
        }
        Err(e) => {
            let plain = e.render().to_string();
            let shown = redacted(&plain);
            if asks_for_json_logs(std::env::args_os()) {
                let message = shown.trim().trim_start_matches("error: ");
                print_failure(LogFormat::Json, message);
            } else if shown == plain {
                // Coloured on a terminal, as clap prints it.
                let _ = e.print();
            } else {
                let _ = write!(std::io::stderr(), "{shown}");
            }
            return e.exit_code();
        }
    };
    let result = init_logging(cli.log_format, &cli.log_level).and_then(|()| match cli.command {
        Command::Run(a) => run::run(a, cli.log_format),
        Command::Check(o) => check::check(o),
        Command::Demo(a) => demo::demo(a, cli.log_format),
    });
    match result {
        Ok(()) => 0,
        Err(f) => {
            print_failure(cli.log_format, &redacted(&f.message));
            f.code
        }
    }
}
