//! Flags, `--set` and the `--config` TOML file → one `Config`, with errors naming each option
//! the way the user wrote it, and the token's source chosen.

use std::collections::HashMap;
use std::path::PathBuf;

use super::args::{Collection, Options};
use super::{ENV_TOKEN, Failure};
use crate::api::SetupError;
use crate::config::{Config, ConfigError, KEYS, key_name};
use crate::token::{TokenError, warn_if_others_can_read};

/// The most a `--config` file may hold: a few dozen options.
const MAX_CONFIG_FILE: usize = 1024 * 1024;

/// Where an option's value came from, so that an error found only once every option is in
/// (`Config::validate`), or only when it is used, names the option the way the user wrote it.
enum Origin<'p> {
    File(&'p std::path::Path),
    Flag,
    Set,
    /// `OP_EVENTS_TOKEN`, the token's alone.
    Env,
}

/// Each option's [`Origin`], by key.
#[derive(Default)]
pub(super) struct Origins<'p>(HashMap<&'static str, Origin<'p>>);

impl Origins<'_> {
    /// An error about option `key` found once every option is in (`Config::validate`) or only
    /// when it was used (a file that cannot be read, a directory that cannot be made). The
    /// library names options by key (`state_dir /x: …`, "set `state_dir` …"): a flag is named
    /// as a flag, a `--config` key with its file.
    pub(super) fn usage(&self, key: &str, e: impl std::fmt::Display) -> Failure {
        let message = e.to_string();
        Failure::usage(match self.0.get(key) {
            Some(Origin::Flag) => {
                let flag = flag(key);
                let message = message.replace(&format!("`{key}`"), &flag);
                match message.strip_prefix(key) {
                    Some(rest) => format!("{flag}{rest}"),
                    None => format!("{flag}: {message}"),
                }
            }
            Some(Origin::File(path)) => format!("--config {}: {message}", path.display()),
            Some(Origin::Env) => format!("{ENV_TOKEN}: {message}"),
            Some(Origin::Set) | None => message,
        })
    }
}

impl Options {
    /// TOML first, then flags (`run`'s with `collection`), then the token's source
    /// (`choose_token`); with where each option came from.
    pub fn to_config(
        &self,
        collection: Option<&Collection>,
    ) -> Result<(Config, Origins<'_>), Failure> {
        let mut config = Config::default();
        let mut origins: HashMap<&'static str, Origin> = HashMap::new();
        let mut file_has_token = false;
        if let Some(path) = &self.config {
            let text = crate::file::read_text(path, MAX_CONFIG_FILE)
                .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
            let table: toml::Table = text.parse().map_err(|e| {
                Failure::usage(format!(
                    "--config {}: {}",
                    path.display(),
                    toml_error(&text, &e)
                ))
            })?;
            for (key, value) in table {
                let name = key_name(&key);
                file_has_token |= name == Some("token");
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Array(a) if name == Some("events") => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    // An unknown name is left to `set`, which suggests the option meant.
                    toml::Value::Array(_) | toml::Value::Table(_) if name.is_some() => {
                        return Err(Failure::usage(format!(
                            "--config {}: `{key}` takes one value, not a list or table \
                             (only `events` takes a list)",
                            path.display()
                        )));
                    }
                    other => other.to_string(),
                };
                config
                    .set(&key, &value)
                    .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))?;
                origins.extend(name.map(|k| (k, Origin::File(path))));
            }
        }
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let none = Collection::default();
        let c = collection.unwrap_or(&none);
        let flags = [
            ("token_file", path(&self.token_file)),
            ("region", self.region.clone()),
            ("base_url", self.base_url.clone()),
            ("events", self.events.clone()),
            ("api_version", self.api_version.clone()),
            ("ca_file", path(&self.ca_file)),
            ("proxy", self.proxy.clone()),
            (
                "insecure_http",
                self.insecure_http.then(|| "true".to_owned()),
            ),
            ("format", c.format.clone()),
            ("start_time", c.start_time.clone()),
            ("state_dir", path(&c.state_dir)),
            ("poll_interval", c.poll_interval.clone()),
            ("rate_limit_per_minute", c.rate_limit_per_minute.clone()),
            ("rate_limit_per_hour", c.rate_limit_per_hour.clone()),
            ("limit", c.limit.clone()),
            ("max_buffered_events", c.max_buffered_events.clone()),
        ];
        for (key, value) in flags {
            if let Some(v) = value {
                config.set(key, &v).map_err(flag_error)?;
                origins.insert(key, Origin::Flag);
            }
        }
        for pair in &self.set {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                // `token` is refused below: not one to offer.
                let keys: Vec<&str> = KEYS.iter().copied().filter(|k| *k != "token").collect();
                Failure::usage(format!(
                    "--set {pair}: expected KEY=VALUE (keys: {})",
                    keys.join(", ")
                ))
            })?;
            let key = key_name(k);
            if key == Some("token") {
                return Err(Failure::usage(format!(
                    "--set token: the token is never taken on the command line; use --token-file or {ENV_TOKEN}"
                )));
            }
            config.set(k, v)?;
            origins.extend(key.map(|k| (k, Origin::Set)));
        }
        choose_token(&mut config, &mut origins)?;
        // `token_file` is warned about as it is read (`load_token`), in the plugin too.
        if let Some(path) = self.config.as_ref().filter(|_| file_has_token) {
            warn_if_others_can_read(path, "--config");
        }
        let origins = Origins(origins);
        config.validate().map_err(|e| match &e {
            ConfigError::Invalid { key, .. } => {
                let key = *key;
                origins.usage(key, e)
            }
            ConfigError::UnknownKey { .. } => Failure::usage(e),
        })?;
        Ok((config, origins))
    }
}

/// Where a TOML file is wrong and why, without toml's own rendering: that quotes the line, and
/// the line may hold the token (`token = "eyJ…` missing its closing quote).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return format!("invalid TOML: {message}");
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    format!("invalid TOML at line {line}, column {column}: {message}")
}

/// Leaves the one token source that wins: the command line's `token_file` (`--token-file`,
/// `--set token_file=`), else `OP_EVENTS_TOKEN`, else the `--config` file's `token`, else its
/// `token_file`. As with every other option, what is given for this run beats the file.
fn choose_token(
    config: &mut Config,
    origins: &mut HashMap<&'static str, Origin>,
) -> Result<(), Failure> {
    let command_line = matches!(origins.get("token_file"), Some(Origin::Flag | Origin::Set));
    if command_line && config.token_file.is_some() {
        config.token = None;
        return Ok(());
    }
    let configured = config.token.is_some() || config.token_file.is_some();
    // Said here in the binary's words: the shared error speaks to Fluent Bit users.
    let usage = |problem: &str| {
        Failure::usage(format!(
            "{ENV_TOKEN} {problem}: put the token in it, or pass --token-file FILE"
        ))
    };
    match std::env::var(ENV_TOKEN) {
        Ok(t) if !t.trim().is_empty() => {
            config.token = Some(t.into());
            config.token_file = None;
            origins.insert("token", Origin::Env);
        }
        // An empty or unreadable variable counts as unset when the file gives a token.
        _ if configured => {}
        Ok(_) => return Err(usage("is set but empty")),
        Err(std::env::VarError::NotUnicode(_)) => return Err(usage("is not valid UTF-8")),
        Err(std::env::VarError::NotPresent) => {
            return Err(Failure::usage(format!(
                "no token: pass --token-file FILE, set {ENV_TOKEN}, or set `token_file` in the --config file"
            )));
        }
    }
    Ok(())
}

/// Why the HTTP client could not be built, in the binary's words where the shared error names a
/// plugin key the binary takes as a flag.
pub(super) fn setup_failure(e: SetupError, origins: &Origins) -> Failure {
    match e {
        SetupError::NoBaseUrl => Failure::usage(
            "no Events API address: pass --region (us, ent, ca, eu) or --base-url, or set \
             `region` or `base_url` in the --config file; the token names no events host",
        ),
        SetupError::InsecureHttp(url) => origins.usage(
            "base_url",
            format!(
                "base_url {url}: plain http is only allowed to loopback addresses; use https, or \
                 pass --insecure-http if you really mean it"
            ),
        ),
        e @ SetupError::CaFile { .. } => origins.usage("ca_file", e),
        other => Failure::usage(other),
    }
}

/// Why the token could not be read: a `token_file` is named the way it was given.
pub(super) fn token_failure(e: TokenError, origins: &Origins) -> Failure {
    match e {
        TokenError::File { .. } | TokenError::FileContents { .. } => origins.usage("token_file", e),
        TokenError::Missing => Failure::usage(e),
        // Its text: from `OP_EVENTS_TOKEN` or the `--config` file's `token`.
        other => origins.usage("token", other),
    }
}

/// Flag errors use the flag's spelling.
pub(super) fn flag_error(e: ConfigError) -> Failure {
    match e {
        ConfigError::Invalid { key, message } => {
            Failure::usage(format!("{}: {message}", flag(key)))
        }
        other => Failure::usage(other),
    }
}

/// The binary's flag for option `key`.
fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}
