//! Every key of `config::KEYS` given garbage through the C ABI (the dlopen'ed `.so` under the
//! harness): wrong type, out of range, bytes that are not UTF-8. Init fails with exactly one ERROR
//! line naming the key, never quoting the token, and the host keeps running. (`ffi_init.rs` covers
//! unknown keys, aliases and NULL arguments.)

mod harness;

use harness::{ERROR, FluentBit, Layout};
use op_events_input::config::KEYS;

/// Keys whose values are free text or paths (checked when used): only non-UTF-8 is garbage here.
const FREE_TEXT: &[&str] = &["token", "token_file", "state_dir", "ca_file"];

fn garbage(key: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![b"\xff\xfe\x80".to_vec(), b"ok\xc3(".to_vec()];
    if !FREE_TEXT.contains(&key) {
        v.extend(["abc", "-1", "\u{1F980}", "1e99", "%s%n"].map(|s| s.as_bytes().to_vec()));
        let extra: &[&str] = match key {
            "limit" => &["0", "1001"],
            "poll_interval" | "request_timeout" | "connect_timeout" => &["0"],
            "max_buffered_events" | "batch_max_records" | "batch_max_bytes" => &["0"],
            "max_response_bytes" => &["1023"],
            "base_url" => &["ftp://events.1password.com"],
            "proxy" => &["file:///tmp/sock"],
            _ => &[],
        };
        v.extend(extra.iter().map(|s| s.as_bytes().to_vec()));
    }
    v
}

#[test]
fn every_key_with_garbage_fails_init_naming_the_key() {
    let mock = op_events_mock::MockServer::start(op_events_mock::MockConfig {
        events_per_type: 1,
        ..op_events_mock::MockConfig::default()
    })
    .unwrap();
    let token = mock.token("acme", &["signinattempts", "itemusages", "auditevents"]);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let url = mock.url();
    let fb = FluentBit::load(Layout::V41);
    let def = fb.register();
    let mut cases = 0;
    for key in KEYS {
        for value in garbage(key) {
            let mut props: Vec<(&str, &[u8])> = vec![
                ("token", token.as_bytes()),
                ("base_url", url.as_bytes()),
                ("insecure_http", b"true"),
                ("state_dir", state_dir.as_bytes()),
            ];
            props.retain(|(k, _)| k != key);
            props.push((key, &value));
            let shown = String::from_utf8_lossy(&value).into_owned();
            let before = harness::all_logs().len();
            let (instance, code) = fb.start(&props, harness::INFO);
            if code == 1 {
                instance.exit();
                panic!("Init accepted {key}={shown:?}");
            }
            drop(instance);
            let lines = harness::all_logs()[before..].to_vec();
            assert_eq!(lines.len(), 1, "{key}={shown:?}: {lines:#?}");
            let (level, line) = &lines[0];
            assert_eq!(*level, ERROR, "{line}");
            assert!(
                line.contains(key),
                "{key}={shown:?}: the line must name the key: {line}"
            );
            assert!(
                !line.contains(&token),
                "{key}: the token leaked into {line}"
            );
            cases += 1;
        }
    }
    assert!(cases > KEYS.len() * 2);
    // The host survived all of that and a good Init still works.
    let props: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("base_url", url.as_bytes()),
        ("insecure_http", b"true"),
        ("state_dir", state_dir.as_bytes()),
    ];
    let instance = fb.started(&props, harness::INFO);
    instance.pre_exit(false);
    assert_eq!(instance.exit(), 1);
    fb.unregister(&def);
}
