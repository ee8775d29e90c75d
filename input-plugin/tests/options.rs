//! Every option in `config::KEYS` given garbage: empty, whitespace, wrong type, out of range,
//! control characters, huge. `Config::from_pairs` never panics; every error names the option it is
//! about (the text starts with `<key>:`) and quotes no token.

use op_events_input::config::{Config, ConfigError, KEYS};

/// Keys whose value is free text or a path: checked when used, not when parsed.
const FREE_TEXT: &[&str] = &["token", "token_file", "state_dir", "ca_file"];

/// Garbage every typed option must refuse.
const WRONG: &[&str] = &[
    "abc",
    "-1",
    "🦀",
    "1e99",
    "NaN",
    "true false",
    "99999999999999999999999999",
    "\u{1}",
    "1;rm -rf /",
    "%s%n",
];

/// Values that are out of range for specific keys (and parse as their type).
const OUT_OF_RANGE: &[(&str, &str)] = &[
    ("limit", "0"),
    ("limit", "1001"),
    ("limit", "65536"),
    ("poll_interval", "0"),
    ("poll_interval", "0ms"),
    ("max_buffered_events", "0"),
    ("batch_max_records", "0"),
    ("batch_max_bytes", "0"),
    ("connect_timeout", "0s"),
    ("request_timeout", "0"),
    ("max_response_bytes", "1023"),
    ("max_response_bytes", "0"),
    ("base_url", "ftp://events.1password.com"),
    ("base_url", "file:///etc/passwd"),
    ("proxy", "file:///tmp/sock"),
    ("rate_limit_per_minute", "4294967296"),
    ("region", "mars"),
    ("api_version", "v3"),
    ("format", "cef"),
    ("compression", "deflate"),
    ("compression", "br"),
    ("events", "signinattempts,logins"),
    ("start_time", "2026-13-45T00:00:00Z"),
    ("start_time", "yesterday"),
    ("retry_max", "1000000001s"),
    ("retry_initial", "0"),
    ("retry_max", "500ms"),
    ("unauthorized_retry", "0s"),
];

fn assert_names(key: &str, value: &str, e: &ConfigError) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{key}: ")),
        "{key}={value:?}: the error must name `{key}`: {msg}"
    );
    assert!(
        msg.len() > key.len() + 10,
        "{key}={value:?}: say what to change: {msg}"
    );
}

#[test]
fn typed_options_refuse_garbage_naming_the_option() {
    for key in KEYS.iter().filter(|k| !FREE_TEXT.contains(k)) {
        for value in WRONG {
            // `events` takes a list: garbage entries must still fail.
            match Config::from_pairs([(*key, *value)]) {
                Err(e) => assert_names(key, value, &e),
                Ok(_) => panic!("{key}={value:?} was accepted"),
            }
        }
    }
}

#[test]
fn out_of_range_values_name_the_option() {
    for (key, value) in OUT_OF_RANGE {
        let e = Config::from_pairs([(*key, *value)]).expect_err(&format!("{key}={value}"));
        assert_names(key, value, &e);
    }
}

#[test]
fn empty_and_whitespace_values_keep_the_default() {
    let default = format!("{:?}", Config::default());
    for key in KEYS {
        for value in ["", "   ", "\t\n"] {
            let c = Config::from_pairs([(*key, value)])
                .unwrap_or_else(|e| panic!("{key}={value:?}: {e}"));
            assert_eq!(format!("{c:?}"), default, "{key}={value:?}");
        }
    }
}

#[test]
fn huge_and_odd_values_never_panic() {
    let huge = "9".repeat(100_000);
    let long_text = "a".repeat(1 << 20);
    for key in KEYS {
        for value in [
            huge.as_str(),
            long_text.as_str(),
            "\u{0}",
            "\u{feff}1",
            "１０",
        ] {
            match Config::from_pairs([(*key, value)]) {
                Ok(_) => assert!(FREE_TEXT.contains(key), "{key} accepted {:.20}", value),
                Err(e) => {
                    assert_names(key, value, &e);
                    // The value may be echoed, but a 1 MiB echo is not a clear message.
                    assert!(e.to_string().len() < (1 << 21));
                }
            }
        }
    }
}

#[test]
fn unknown_keys_suggest_the_nearest_and_never_echo_values() {
    let e = Config::from_pairs([("tokn", "secret-token-value")]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`tokn`") && msg.contains("`token`"), "{msg}");
    assert!(!msg.contains("secret-token-value"), "{msg}");
    for key in KEYS {
        let typo = format!("{key}x");
        let e = Config::from_pairs([(typo.as_str(), "1")]).unwrap_err();
        assert!(e.to_string().contains(&format!("`{key}`")), "{typo}: {e}");
    }
}

#[test]
fn a_token_value_never_appears_in_errors() {
    let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ";
    for key in KEYS.iter().filter(|k| **k != "token") {
        let r = Config::from_pairs([("token", token), (*key, "garbage\u{1}")]);
        if let Err(e) = r {
            assert!(!e.to_string().contains(token), "{key}: {e}");
            assert!(!format!("{e:?}").contains(token), "{key}: {e:?}");
        }
    }
}
