//! The proxy environment (`HTTPS_PROXY`, `ALL_PROXY`, …), read as the HTTP client reads it, to
//! refuse at start what the client would otherwise get wrong in silence: a value that is no
//! URL is skipped (the requests go direct, past the proxy the machine was meant to use), a port
//! that is no port (`:99999`) is taken for port 80, and a SOCKS proxy fails every request (the
//! client has no SOCKS support), retried forever.

use hyper_util::client::proxy::matcher::Matcher;
use url::Url;

/// What is wrong with the environment's proxy for the API. Never holds the variable's value,
/// which may carry the proxy's password.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvProxyError {
    #[error(
        "{0} is not a proxy URL, so requests would go around the proxy: set it to http://HOST:PORT, unset it, or set `proxy`"
    )]
    NotAUrl(&'static str),
    #[error(
        "{0} names a SOCKS proxy, which op-events cannot use: set `proxy` to an http:// or https:// proxy, or unset {0}"
    )]
    Socks(&'static str),
}

/// Checks the variables that would route requests to `base`. The client ignores them in a CGI
/// request (`REQUEST_METHOD` set) and for hosts `NO_PROXY` names, and so does this.
pub fn check(base: &Url) -> Result<(), EnvProxyError> {
    check_with(base, |name| std::env::var(name).ok())
}

fn check_with(base: &Url, var: impl Fn(&str) -> Option<String>) -> Result<(), EnvProxyError> {
    let Ok(uri) = base.as_str().parse::<http::Uri>() else {
        return Ok(());
    };
    if var("REQUEST_METHOD").is_some() {
        return Ok(());
    }
    // The first of each pair that is set is the one the client reads, empty or not.
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| var(name).map(|value| (name, value)))
    };
    let scheme = if base.scheme() == "http" {
        ["HTTP_PROXY", "http_proxy"]
    } else {
        ["HTTPS_PROXY", "https_proxy"]
    };
    let no_proxy = first(["NO_PROXY", "no_proxy"]).map_or(String::new(), |(_, v)| v);
    let bypassed = Matcher::builder()
        .all("http://proxy.invalid:1".to_owned())
        .no(no_proxy)
        .build()
        .intercept(&uri)
        .is_none();
    if bypassed {
        return Ok(());
    }
    // An empty variable is skipped for the next, as the client skips it.
    let Some((name, value)) = [first(scheme), first(["ALL_PROXY", "all_proxy"])]
        .into_iter()
        .flatten()
        .find(|(_, value)| !value.trim().is_empty())
    else {
        return Ok(());
    };
    // The matcher reads a port it cannot parse (`:99999`, `:abc`) as none, and the client
    // would go to port 80 of that host instead: refused, as `proxy` refuses it.
    let value = value.trim();
    let spelled = if value.contains("://") {
        Url::parse(value)
    } else {
        Url::parse(&format!("http://{value}"))
    };
    if spelled.is_err() {
        return Err(EnvProxyError::NotAUrl(name));
    }
    let Some(proxy) = Matcher::builder()
        .all(value.to_owned())
        .build()
        .intercept(&uri)
    else {
        return Err(EnvProxyError::NotAUrl(name));
    };
    if proxy
        .uri()
        .scheme_str()
        .is_some_and(|s| s.starts_with("socks"))
    {
        return Err(EnvProxyError::Socks(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_env(base: &str, env: &[(&str, &str)]) -> Result<(), EnvProxyError> {
        let base = Url::parse(base).unwrap();
        check_with(&base, |name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const API: &str = "https://events.1password.com/";

    #[test]
    fn usable_proxies_and_none_pass() {
        for env in [
            &[][..],
            &[("HTTPS_PROXY", "http://proxy:3128")],
            &[("https_proxy", "proxy:3128")],
            &[("ALL_PROXY", "https://user:pass@proxy:3128")],
            &[("HTTPS_PROXY", "")],
            // Only an https API's variables count.
            &[("HTTP_PROXY", "::nope")],
            // NO_PROXY names the host: the variables are not read.
            &[("HTTPS_PROXY", "::nope"), ("NO_PROXY", "1password.com")],
            &[("ALL_PROXY", "socks5://proxy:1080"), ("no_proxy", "*")],
            &[("HTTPS_PROXY", "::nope"), ("REQUEST_METHOD", "GET")],
        ] {
            assert_eq!(check_env(API, env), Ok(()), "{env:?}");
        }
    }

    #[test]
    fn a_value_that_is_no_url_or_socks_is_named_without_its_value() {
        let cases = [
            (
                API,
                &[("HTTPS_PROXY", "::nope")][..],
                EnvProxyError::NotAUrl("HTTPS_PROXY"),
            ),
            (
                API,
                &[("all_proxy", "http://")],
                EnvProxyError::NotAUrl("all_proxy"),
            ),
            (
                API,
                &[("ALL_PROXY", "socks5h://u:secret@proxy:1080")],
                EnvProxyError::Socks("ALL_PROXY"),
            ),
            // The uppercase variable is read first, even when the lowercase one is good.
            (
                API,
                &[("HTTPS_PROXY", "::nope"), ("https_proxy", "http://p:1")],
                EnvProxyError::NotAUrl("HTTPS_PROXY"),
            ),
            (
                "http://10.0.0.5:8080/",
                &[("HTTP_PROXY", "::nope")],
                EnvProxyError::NotAUrl("HTTP_PROXY"),
            ),
            // Ports the client would read as none, going to port 80 instead.
            (
                API,
                &[("HTTPS_PROXY", "http://127.0.0.1:99999")],
                EnvProxyError::NotAUrl("HTTPS_PROXY"),
            ),
            (
                API,
                &[("https_proxy", "127.0.0.1:nope")],
                EnvProxyError::NotAUrl("https_proxy"),
            ),
            (
                API,
                &[("ALL_PROXY", "http://u:secret@proxy:65536")],
                EnvProxyError::NotAUrl("ALL_PROXY"),
            ),
        ];
        for (base, env, expected) in cases {
            let e = check_env(base, env).unwrap_err();
            assert_eq!(e, expected, "{env:?}");
            assert!(!e.to_string().contains("secret") && !e.to_string().contains("nope"));
        }
    }
}
