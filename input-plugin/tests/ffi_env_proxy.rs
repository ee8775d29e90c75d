//! Fluent Bit's process environment is checked as the binary's is: a proxy variable the HTTP
//! client could not use fails the instance's Init with one line naming the variable, never its
//! value. The environment is the process's, so the check runs in a child process of this test
//! binary, started with the variables set.

mod harness;

use std::process::Command;

use harness::{ERROR, FluentBit, Layout};

const TEST: &str = "a_proxy_environment_the_client_would_misuse_fails_init";
/// Set in the child, to the variable it must find refused.
const CHILD: &str = "OP_EVENTS_TEST_REFUSED_PROXY_VARIABLE";

#[test]
fn a_proxy_environment_the_client_would_misuse_fails_init() {
    if let Ok(var) = std::env::var(CHILD) {
        return init_is_refused_naming(&var);
    }
    for (var, value) in [
        ("HTTPS_PROXY", "::secret"),
        ("all_proxy", "socks5://u:secret@proxy:1080"),
    ] {
        let mut child = Command::new(std::env::current_exe().unwrap());
        // Only the variable under test: none of this machine's `*_proxy` settings.
        for (name, _) in std::env::vars_os() {
            if name
                .to_string_lossy()
                .to_ascii_lowercase()
                .ends_with("_proxy")
            {
                child.env_remove(name);
            }
        }
        let out = child
            .args(["--exact", TEST, "--nocapture"])
            .env(CHILD, var)
            .env(var, value)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{var}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// In the child: Init with a base URL the variable applies to fails, and says why.
fn init_is_refused_naming(var: &str) {
    let state = tempfile::tempdir().unwrap();
    let props: [(&str, &[u8]); 3] = [
        ("token", b"a.b.c"),
        ("base_url", b"https://events.1password.com"),
        ("state_dir", state.path().to_str().unwrap().as_bytes()),
    ];
    let fb = FluentBit::load(Layout::V41);
    let (instance, code) = fb.start(&props, harness::INFO);
    drop(instance);
    assert_eq!(code, 0, "Init must fail (FLB_ERROR)");
    let errors: Vec<String> = harness::all_logs()
        .into_iter()
        .filter(|(level, _)| *level == ERROR)
        .map(|(_, line)| line)
        .collect();
    let said = if var.ends_with("_PROXY") {
        format!("{var} is not a proxy URL")
    } else {
        format!("{var} names a SOCKS proxy")
    };
    assert!(errors.len() == 1 && errors[0].contains(&said), "{errors:?}");
    assert!(!errors[0].contains("secret"), "the value in: {}", errors[0]);
}
