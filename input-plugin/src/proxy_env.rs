//! The proxy the API's requests go through: `proxy`, or the environment (`HTTPS_PROXY`,
//! `ALL_PROXY`, …) read as the HTTP client reads it, to say which one is in use (the `starting`
//! line, `check`, every error the proxy causes) and to refuse at start what the client would
//! otherwise get wrong in silence: a value that is no URL is skipped (the requests go direct,
//! past the proxy the machine was meant to use), a port that is no port (`:99999`) is taken for
//! port 80, port 0 is refused at every connection, retried forever, and so is a SOCKS proxy
//! (the client has no SOCKS support).

use std::fmt;

use hyper_util::client::proxy::matcher::{Intercept, Matcher};
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
    #[error(
        "{0} names port 0, which no proxy can be reached on: set it to http://HOST:PORT, unset it, or set `proxy`"
    )]
    PortZero(&'static str),
}

/// Where the proxy in use was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `proxy` option (`--proxy`), which replaces the environment's proxy settings,
    /// `NO_PROXY` included.
    Setting,
    /// This variable of the environment.
    Env(&'static str),
}

/// A proxy the API's requests go through.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// With its user and password, if any: never shown as it is.
    url: Url,
    pub origin: Origin,
}

impl Proxy {
    pub fn new(url: Url, origin: Origin) -> Proxy {
        Proxy { url, origin }
    }

    /// The proxy as messages show it: its URL with any user and password hidden
    /// (`http://***@proxy:3128`), without the `/` the URL parser adds.
    pub fn shown(&self) -> String {
        let url = crate::config::without_userinfo(self.url.as_str()).into_owned();
        match url.strip_suffix('/') {
            Some(bare) if self.url.path() == "/" && self.url.query().is_none() => bare.to_owned(),
            _ => url,
        }
    }

    /// Whether it is reached over TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// Whether the URL holds a user name or password, which the client sends to the proxy.
    pub fn has_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }

    /// The proxy as the HTTP client reaches it: its address, and the `Proxy-Authorization` it
    /// sends (the URL's user and password, percent-decoded, as Basic credentials), worked out
    /// by the client's own code, so that whoever asks the proxy again sends what it sent.
    pub fn as_reached(&self) -> Option<Intercept> {
        Matcher::builder()
            .all(self.url.to_string())
            .build()
            .intercept(&http::Uri::from_static("https://api.invalid/"))
    }

    /// Where to change it, for advice: "`proxy` (--proxy)", or the variable.
    pub fn setting(&self) -> String {
        match self.origin {
            Origin::Setting => "`proxy` (--proxy)".to_owned(),
            Origin::Env(name) => name.to_owned(),
        }
    }
}

/// Why requests go direct although a proxy may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// A loopback `base_url`: no proxy can reach this machine's addresses.
    Loopback,
    /// This variable (`NO_PROXY` or `no_proxy`) covers `base_url`'s host.
    NoProxy(&'static str),
    /// `REQUEST_METHOD` is set: the client ignores the proxy variables in a CGI request.
    Cgi,
}

/// How the API's requests are routed: the `starting` line's `proxy` and `check`'s `proxy:`.
#[derive(Debug, Clone)]
pub enum Route {
    Proxy(Proxy),
    /// Direct; with why, where a proxy setting does not apply.
    Direct(Option<Bypass>),
}

impl Route {
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Proxy(p) => Some(p),
            Route::Direct(_) => None,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Proxy(p) => match p.origin {
                Origin::Setting => write!(f, "{} (from `proxy`)", p.shown()),
                Origin::Env(name) => write!(f, "{} (from {name})", p.shown()),
            },
            Route::Direct(None) => f.write_str("none"),
            Route::Direct(Some(Bypass::Loopback)) => f.write_str("none (base_url is loopback)"),
            Route::Direct(Some(Bypass::NoProxy(name))) => {
                write!(f, "none ({name} covers base_url's host)")
            }
            Route::Direct(Some(Bypass::Cgi)) => {
                f.write_str("none (REQUEST_METHOD is set, so the proxy variables are ignored)")
            }
        }
    }
}

/// The proxy of the environment for `base`, as the client reads it: the variables that would
/// route requests to `base` are checked, and refused where the client would misuse them. The
/// client ignores them in a CGI request (`REQUEST_METHOD` set) and for hosts `NO_PROXY` names,
/// and so does this.
pub fn from_env(base: &Url) -> Result<Route, EnvProxyError> {
    from_env_with(base, |name| std::env::var(name).ok())
}

fn from_env_with(base: &Url, var: impl Fn(&str) -> Option<String>) -> Result<Route, EnvProxyError> {
    let Ok(uri) = base.as_str().parse::<http::Uri>() else {
        return Ok(Route::Direct(None));
    };
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
    // An empty variable is skipped for the next, as the client skips it.
    let Some((name, value)) = [first(scheme), first(["ALL_PROXY", "all_proxy"])]
        .into_iter()
        .flatten()
        .find(|(_, value)| !value.trim().is_empty())
    else {
        return Ok(Route::Direct(None));
    };
    if var("REQUEST_METHOD").is_some() {
        return Ok(Route::Direct(Some(Bypass::Cgi)));
    }
    if let Some((no_name, no_proxy)) = first(["NO_PROXY", "no_proxy"]) {
        let bypassed = Matcher::builder()
            .all("http://proxy.invalid:1".to_owned())
            .no(no_proxy)
            .build()
            .intercept(&uri)
            .is_none();
        if bypassed {
            return Ok(Route::Direct(Some(Bypass::NoProxy(no_name))));
        }
    }
    // The matcher reads a port it cannot parse (`:99999`, `:abc`) as none, and the client
    // would go to port 80 of that host instead: refused, as `proxy` refuses it.
    let value = value.trim();
    let spelled = if value.contains("://") {
        Url::parse(value)
    } else {
        Url::parse(&format!("http://{value}"))
    };
    let Ok(url) = spelled else {
        return Err(EnvProxyError::NotAUrl(name));
    };
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
    if url.port() == Some(0) {
        return Err(EnvProxyError::PortZero(name));
    }
    Ok(Route::Proxy(Proxy::new(url, Origin::Env(name))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_env(base: &str, env: &[(&str, &str)]) -> Result<Route, EnvProxyError> {
        let base = Url::parse(base).unwrap();
        from_env_with(&base, |name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn check_env(base: &str, env: &[(&str, &str)]) -> Result<(), EnvProxyError> {
        route_env(base, env).map(|_| ())
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
            // A port no connection can be made to.
            (
                API,
                &[("HTTPS_PROXY", "http://u:secret@127.0.0.1:0")],
                EnvProxyError::PortZero("HTTPS_PROXY"),
            ),
            (
                API,
                &[("all_proxy", "127.0.0.1:0")],
                EnvProxyError::PortZero("all_proxy"),
            ),
        ];
        for (base, env, expected) in cases {
            let e = check_env(base, env).unwrap_err();
            assert_eq!(e, expected, "{env:?}");
            assert!(!e.to_string().contains("secret") && !e.to_string().contains("nope"));
        }
    }

    /// What the `starting` line and `check` say: the proxy without its password, and the
    /// variable it came from; or none, and why where a variable is set.
    #[test]
    fn the_route_names_the_proxy_and_its_variable_never_its_password() {
        let shown = |env: &[(&str, &str)]| route_env(API, env).unwrap().to_string();
        assert_eq!(shown(&[]), "none");
        assert_eq!(
            shown(&[("https_proxy", "proxy:3128")]),
            "http://proxy:3128 (from https_proxy)"
        );
        assert_eq!(
            shown(&[
                ("HTTPS_PROXY", ""),
                ("ALL_PROXY", "https://me:secret@proxy:3128/")
            ]),
            "https://***@proxy:3128 (from ALL_PROXY)"
        );
        assert_eq!(
            shown(&[
                ("HTTPS_PROXY", "http://p:1"),
                ("no_proxy", ".1password.com")
            ]),
            "none (no_proxy covers base_url's host)"
        );
        assert_eq!(
            shown(&[("HTTPS_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")]),
            "none (REQUEST_METHOD is set, so the proxy variables are ignored)"
        );
        let setting = Proxy::new(
            Url::parse("http://me:p%40ss@proxy.example:3128").unwrap(),
            Origin::Setting,
        );
        assert!(setting.has_credentials());
        assert_eq!(setting.shown(), "http://***@proxy.example:3128");
        assert_eq!(
            Route::Proxy(setting).to_string(),
            "http://***@proxy.example:3128 (from `proxy`)"
        );
    }

    /// As the client reaches the proxy: its address, and the user and password percent-decoded
    /// into Basic credentials.
    #[test]
    fn the_proxy_as_reached_has_its_address_and_decoded_credentials() {
        let reached = |url: &str| {
            let proxy = Proxy::new(Url::parse(url).unwrap(), Origin::Setting);
            let reached = proxy.as_reached().unwrap();
            let auth = reached.basic_auth().map(|a| a.to_str().unwrap().to_owned());
            (reached.uri().to_string(), auth)
        };
        assert_eq!(
            reached("http://me:p%40ss@proxy.example:3128"),
            (
                "http://proxy.example:3128/".to_owned(),
                Some("Basic bWU6cEBzcw==".to_owned())
            )
        );
        assert_eq!(
            reached("http://me@[::1]:8080/"),
            (
                "http://[::1]:8080/".to_owned(),
                Some("Basic bWU6".to_owned())
            )
        );
        assert_eq!(
            reached("https://proxy.example"),
            ("https://proxy.example/".to_owned(), None)
        );
    }
}
