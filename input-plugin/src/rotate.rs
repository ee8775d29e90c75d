//! Token rotation. Events API tokens expire (30, 90 or 180 days after they are issued, unless
//! issued for ever) or are revoked, so a token read from `token_file` is read again whenever
//! the API rejects it: a new token written to that file is used from the next request, with
//! no restart, provided introspection shows it reads the same account (the state files, and
//! every record's account, are that account's). A token written only after the API rejected
//! the old one is picked up within `WATCH_EVERY` (2 s), not after `unauthorized_retry`: the wait
//! after a rejection watches the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use tracing::{error, info, warn};

use crate::api::Client;
use crate::budget::Budget;
use crate::pipeline::own_thread;
use crate::stream::Control;
use crate::token::Token;

/// How long before its expiry a token is warned about, then again every [`REMINDER`].
const EXPIRY_NOTICE: Duration = Duration::from_secs(14 * 24 * 3600);
const REMINDER: Duration = Duration::from_secs(24 * 3600);

/// How often the wait after a rejection looks at `token_file` for a new version: a stat, cheap
/// enough for every stream to make.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// One version of `token_file`: a new file renamed over it (as secret stores and Kubernetes
/// replace it) has another inode, one rewritten in place another modification time or length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

/// The version of the file at `path` now; `None` while it cannot be looked at (being replaced,
/// or gone: reading it says why).
fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

/// The token requests carry, replaced when a new one is read from `file`.
#[derive(Debug)]
pub struct Credential {
    file: Option<PathBuf>,
    current: RwLock<Current>,
    /// One renewal at a time: streams rejected together wait for the first one's outcome
    /// instead of reading the file and introspecting once each.
    renewing: tokio::sync::Mutex<()>,
    /// The version of `file` last read: a wait after a rejection looks for another one.
    read: Mutex<Option<Stamp>>,
}

/// A token and how many times it was replaced before it, so that a stream can tell whether
/// the token a rejected request carried is still the one in use.
#[derive(Clone, Debug)]
pub struct Current {
    pub generation: u64,
    pub token: Arc<Token>,
}

impl Credential {
    /// `file`: where the token was read from, to read again after a rejection (`None` for a
    /// token given inline, which only a restart or a reload changes).
    pub fn new(token: Token, file: Option<PathBuf>) -> Self {
        Self {
            read: Mutex::new(file.as_deref().and_then(stamp)),
            file,
            current: RwLock::new(Current {
                generation: 0,
                token: Arc::new(token),
            }),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times the token was replaced: what a request records before it is sent, to
    /// tell after a rejection whether the token it carried is still in use.
    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    fn read_version(&self) -> Option<Stamp> {
        *self.read.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replace(&self, token: Token) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.generation += 1;
        current.token = Arc::new(token);
    }
}

/// What reading `token_file` again gave.
#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    /// A new token is in use: retry at once.
    Renewed,
    /// No file, or it still holds the rejected token.
    Unchanged,
    /// The file holds a token that cannot replace the rejected one; why, for the log.
    Refused(String),
}

/// After the API rejected the token of generation `used`: switches to the token now in
/// `token_file` if it is another one that introspection accepts for `account` (any account
/// while none is chosen yet). A renewal another stream already made counts as renewed.
/// `seen`: the version of the file a wait saw, which is not read again if another stream
/// already read it (its outcome was logged once).
async fn renew(
    client: &Client,
    budget: &Budget,
    used: u64,
    account: Option<&str>,
    seen: Option<Option<Stamp>>,
) -> Renewal {
    let credential = client.credential();
    let Some(path) = credential.file.clone() else {
        return Renewal::Unchanged;
    };
    let _one = credential.renewing.lock().await;
    let current = credential.current();
    if current.generation != used {
        return Renewal::Renewed;
    }
    if seen.is_some_and(|seen| seen == credential.read_version()) {
        return Renewal::Unchanged;
    }
    // Looked at before it is read: a version written in between is seen as new by the next wait.
    let (version, read) = own_thread::run(move || {
        (
            stamp(&path),
            Token::from_file(&path).map_err(|e| e.to_string()),
        )
    })
    .await
    .unwrap_or_else(|| (None, Err("the thread reading it stopped".to_owned())));
    *credential.read.lock().unwrap_or_else(|e| e.into_inner()) = version;
    let token = match read {
        Ok(token) => token,
        Err(e) => return Renewal::Refused(format!("reading the token again: {e}")),
    };
    if token.secret().expose_secret() == current.token.secret().expose_secret() {
        return Renewal::Unchanged;
    }
    budget.acquire().await;
    let intro = match client.with_token(token.clone()).introspect().await {
        Ok(intro) => intro,
        Err(e) => {
            return Renewal::Refused(format!(
                "token_file holds a new token, but introspection with it failed: {e}"
            ));
        }
    };
    let new_account = intro.account(&token);
    if let Some(account) = account
        && new_account != account
    {
        return Renewal::Refused(format!(
            "token_file holds a new token, but for account {new_account}, not {account}, whose events and state this collector holds; restart to collect the other account"
        ));
    }
    credential.replace(token);
    credential.warn_if_expiring();
    info!(account = %new_account, "token_file holds a new token, accepted by the API; using it");
    Renewal::Renewed
}

/// After the API rejected the token of generation `used`: whether a new token from
/// `token_file` is now in use (see `renew`), so that the request is retried at once. A refusal
/// is logged; shutdown ends the wait for a renewal another stream is making.
pub async fn renewed(
    client: &Client,
    budget: &Budget,
    used: u64,
    account: Option<&str>,
    control: &Control,
) -> bool {
    renewed_if_new(client, budget, used, account, control, None).await
}

/// [`renewed`], for the version `seen` of the file if it is not read yet (`None`: any).
async fn renewed_if_new(
    client: &Client,
    budget: &Budget,
    used: u64,
    account: Option<&str>,
    control: &Control,
    seen: Option<Option<Stamp>>,
) -> bool {
    let renewal = tokio::select! {
        r = renew(client, budget, used, account, seen) => r,
        () = control.stopped() => return false,
    };
    match renewal {
        Renewal::Renewed => true,
        Renewal::Unchanged => false,
        Renewal::Refused(why) => {
            error!("{why}");
            false
        }
    }
}

/// After the API rejected the token of generation `used` and no new one was found: waits `wait`
/// (`unauthorized_retry`), or less once a new token is in use, from a new version of
/// `token_file` (looked for every `WATCH_EVERY`, renewed at once, as after a rejection) or
/// renewed by another stream. `false` once the collector stops.
pub async fn wait_for_renewal(
    client: &Client,
    budget: &Budget,
    used: u64,
    account: Option<&str>,
    control: &Control,
    wait: Duration,
) -> bool {
    let credential = client.credential();
    let Some(path) = credential.file.clone() else {
        return control.sleep(wait).await;
    };
    let mut left = wait;
    while !left.is_zero() {
        let step = left.min(WATCH_EVERY);
        if !control.sleep(step).await {
            return false;
        }
        left -= step;
        if credential.generation() != used {
            return true;
        }
        let path = path.clone();
        let version = own_thread::run(move || stamp(&path))
            .await
            .unwrap_or_default();
        if version != credential.read_version()
            && renewed_if_new(client, budget, used, account, control, Some(version)).await
        {
            return true;
        }
    }
    true
}

/// Warns when the token in use expires within 14 days, then daily until it does
/// (a renewed token is looked at afresh), until the collector stops.
pub async fn remind_of_expiry(client: Client, control: Arc<Control>) {
    loop {
        let credential = client.credential();
        let Some((_, left)) = expiry(&credential.current().token) else {
            return;
        };
        let wait = match left.checked_sub(EXPIRY_NOTICE) {
            Some(notice) if !notice.is_zero() => notice,
            _ => {
                credential.warn_if_expiring();
                REMINDER
            }
        };
        if !control.sleep(wait).await {
            return;
        }
    }
}

/// When the token expires, and how long until then (zero once it has), if it says.
fn expiry(token: &Token) -> Option<(jiff::Timestamp, Duration)> {
    let at = token.expires_at()?;
    let left = Duration::try_from(at.duration_since(jiff::Timestamp::now())).unwrap_or_default();
    Some((at, left))
}

/// When the token expires, for `check`.
pub fn expiry_text(token: &Token) -> String {
    match expiry(token) {
        None => "not stated in the token".into(),
        Some((at, left)) if left.is_zero() => format!("{at} (expired)"),
        Some((at, left)) => format!("{at} (in {} days)", left.as_secs() / 86_400),
    }
}

impl Credential {
    /// Logs a warning when the token in use expires within [`EXPIRY_NOTICE`], saying how to
    /// replace it. An expired one is explained where the API rejects it.
    fn warn_if_expiring(&self) {
        let Some((at, left)) = expiry(&self.current().token) else {
            return;
        };
        if left.is_zero() || left > EXPIRY_NOTICE {
            return;
        }
        let how = match &self.file {
            Some(_) => {
                "and write it to `token_file`, which is read again when the API rejects the old one"
            }
            None => {
                "and restart (or reload) with it; a token in `token_file` is picked up without a restart"
            }
        };
        warn!(
            "the token expires at {at} (in {} days); issue a new one in 1Password (Integrations → Events Reporting) {how}",
            left.as_secs() / 86_400
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::test_jwt;
    use secrecy::SecretString;

    #[test]
    fn a_replaced_token_has_a_new_generation() {
        let credential =
            Credential::new(Token::new(SecretString::from("first-token")).unwrap(), None);
        let first = credential.current();
        credential.replace(Token::new(SecretString::from("second-token")).unwrap());
        let second = credential.current();
        assert_eq!((first.generation, second.generation), (0, 1));
        assert_eq!(second.token.secret().expose_secret(), "second-token");
    }

    #[test]
    fn expiry_is_told_in_days_left() {
        let in_days = |days: i64| {
            let exp = jiff::Timestamp::now().as_second() + days * 86_400 + 60;
            Token::new(test_jwt(&format!(r#"{{"exp":{exp}}}"#))).unwrap()
        };
        assert!(expiry_text(&in_days(3)).ends_with("(in 3 days)"));
        assert!(expiry_text(&in_days(-1)).ends_with("(expired)"));
        let never = Token::new(test_jwt("{}")).unwrap();
        assert_eq!(expiry_text(&never), "not stated in the token");
    }
}
