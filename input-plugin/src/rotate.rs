//! Token rotation. Events API tokens expire (30, 90 or 180 days after they are issued, unless
//! issued for ever) or are revoked, so a token read from `token_file` is read again whenever
//! the API rejects it: a new token written to that file is used from the next request, with
//! no restart, provided introspection shows it reads the same account (the state files, and
//! every record's account, are that account's).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use tracing::{error, info, warn};

use crate::api::Client;
use crate::budget::Budget;
use crate::stream::Control;
use crate::token::Token;

/// How long before its expiry a token is warned about, then again every [`REMINDER`].
const EXPIRY_NOTICE: Duration = Duration::from_secs(14 * 24 * 3600);
const REMINDER: Duration = Duration::from_secs(24 * 3600);

/// The token requests carry, replaced when a new one is read from `file`.
#[derive(Debug)]
pub struct Credential {
    file: Option<PathBuf>,
    current: RwLock<Current>,
    /// One renewal at a time: streams rejected together wait for the first one's outcome
    /// instead of reading the file and introspecting once each.
    renewing: tokio::sync::Mutex<()>,
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
async fn renew(client: &Client, budget: &Budget, used: u64, account: Option<&str>) -> Renewal {
    let credential = client.credential();
    let Some(path) = credential.file.clone() else {
        return Renewal::Unchanged;
    };
    let _one = credential.renewing.lock().await;
    let current = credential.current();
    if current.generation != used {
        return Renewal::Renewed;
    }
    let read =
        tokio::task::spawn_blocking(move || Token::from_file(&path).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
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
    let renewal = tokio::select! {
        r = renew(client, budget, used, account) => r,
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
