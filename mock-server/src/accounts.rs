//! Per-account datasets, generated lazily from (seed, account name) on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::generate::Generator;
use crate::store::{Form, Kind, Log, StoreError, event_timestamp};

/// One account: a log and a generator per event type.
pub struct Account {
    logs: [RwLock<Log>; 3],
    generators: [Mutex<Generator>; 3],
    msp: bool,
}

impl Account {
    /// The shape v2 serves this account's events in.
    pub fn v2_form(&self) -> Form {
        if self.msp {
            Form::V2
        } else {
            Form::V2WithoutMsp
        }
    }

    pub fn log(&self, kind: Kind) -> std::sync::RwLockReadGuard<'_, Log> {
        self.logs[kind.index()].read().expect("log lock")
    }

    /// Appends events (v2 shape) in order; all or nothing.
    pub fn append(&self, kind: Kind, events: &[Value]) -> Result<(), StoreError> {
        let mut log = self.logs[kind.index()].write().expect("log lock");
        Log::default().push_all(events)?;
        log.push_all(events)
    }

    pub fn generate(&self, kind: Kind, n: usize, now: Timestamp, late: bool) {
        let events = self.generators[kind.index()]
            .lock()
            .expect("generator lock")
            .more(n, now, late);
        self.append(kind, &events)
            .expect("generated events are valid");
    }
}

/// How new accounts are filled.
pub struct Seeding {
    /// Where every account's generated history ends: the clock's start (`--now`, or the real
    /// time the server started), whenever the account is first used, so that the same seed,
    /// account name and `--now` give the same dataset, byte for byte.
    pub anchor: Timestamp,
    pub seed: u64,
    pub events_per_type: usize,
    pub span: SignedDuration,
    pub default_account: String,
    pub fixtures_dir: Option<PathBuf>,
    pub msp_accounts: MspAccounts,
}

/// The accounts whose v2 events carry the MSP fields (`account_uuid`, `actor_type`,
/// `actor_account_uuid`, and `user_type`, `user_account_uuid` on users). The docs mark them "MSP
/// accounts only" without saying what other accounts get. By default every account has them,
/// as the official v2 examples do; the other choices test a consumer without them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MspAccounts {
    All,
    None,
    /// These account names only.
    Named(Vec<String>),
}

impl MspAccounts {
    pub fn includes(&self, account: &str) -> bool {
        match self {
            MspAccounts::All => true,
            MspAccounts::None => false,
            MspAccounts::Named(names) => names.iter().any(|n| n == account),
        }
    }
}

impl std::str::FromStr for MspAccounts {
    type Err = String;

    /// `all`, `none`, or account names separated by commas.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(MspAccounts::All),
            "none" => Ok(MspAccounts::None),
            _ => {
                let names: Vec<String> = s.split(',').map(|n| n.trim().to_owned()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(format!(
                        "expected `all`, `none` or account names separated by commas, not {s:?}"
                    ));
                }
                Ok(MspAccounts::Named(names))
            }
        }
    }
}

/// Fixture events outside retention when the server starts.
#[derive(Debug, Default)]
pub struct StaleFixtures {
    /// Fixture events loaded, in all.
    pub total: usize,
    /// Those older than the retention horizon.
    pub count: usize,
    /// The newest of those (nanoseconds since the epoch).
    pub newest: Option<i64>,
}

/// Why an account cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A read-only request named an account no request has used: making it would generate and
    /// keep a whole dataset for what may be a typo.
    #[error(
        "account {0:?} has not been used yet: an account comes into being with the first API \
         request of a token naming it, or the first append or generate for it (POST \
         /_mock/accounts/{0}/<type>/events)"
    )]
    Unused(String),
    /// The cap is reached: each account holds its dataset in memory until the server stops.
    #[error(
        "no new account: the mock holds as many as --max-accounts allows ({0}; \
         MockConfig::max_accounts); restart it with a higher cap to use more accounts"
    )]
    Full(usize),
    #[error("{0:#}")]
    Fixtures(anyhow::Error),
}

/// All accounts seen so far, keyed by account uuid.
pub struct Accounts {
    seeding: Seeding,
    /// The most accounts made (`None`: no cap).
    max: Option<usize>,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    slots: HashMap<String, Arc<OnceLock<Arc<Account>>>>,
    /// Each account's uuid under the name it was made with, for the names a token's uuid does
    /// not derive from (a token without the account name claim, or made elsewhere). One name
    /// per account, so that it grows no further than the accounts do.
    uuids: HashMap<String, String>,
}

impl Accounts {
    /// At most `max` accounts (0: no cap), the default one included.
    pub fn new(seeding: Seeding, max: usize) -> Self {
        Accounts {
            seeding,
            max: (max > 0).then_some(max),
            registry: Mutex::default(),
        }
    }

    /// The account, generating its dataset (its timestamps before [`Seeding::anchor`]) on first
    /// use, unless the cap is reached.
    pub fn get(&self, name: &str, uuid: &str) -> Result<Arc<Account>, AccountError> {
        self.slot(name, uuid, true)
            .and_then(|slot| self.fill(&slot, name, uuid))
    }

    /// The account a name addresses (appends, the in-process server): the one a token first
    /// reached under that name, or else the one whose uuid derives from it; made if need be.
    pub fn named(&self, name: &str) -> Result<Arc<Account>, AccountError> {
        self.by_name(name, true)
    }

    /// As [`named`](Self::named), for reading only: an account no request has used is
    /// [`AccountError::Unused`], not made.
    pub fn used(&self, name: &str) -> Result<Arc<Account>, AccountError> {
        self.by_name(name, false)
    }

    fn by_name(&self, name: &str, make: bool) -> Result<Arc<Account>, AccountError> {
        let known = self
            .registry
            .lock()
            .expect("accounts lock")
            .uuids
            .get(name)
            .cloned();
        let uuid = known.unwrap_or_else(|| crate::auth::account_uuid(name));
        self.slot(name, &uuid, make)
            .and_then(|slot| self.fill(&slot, name, &uuid))
    }

    /// The account's slot; a new one only if `make` and the cap allows.
    fn slot(
        &self,
        name: &str,
        uuid: &str,
        make: bool,
    ) -> Result<Arc<OnceLock<Arc<Account>>>, AccountError> {
        let mut registry = self.registry.lock().expect("accounts lock");
        if let Some(slot) = registry.slots.get(uuid) {
            return Ok(slot.clone());
        }
        if !make {
            return Err(AccountError::Unused(name.to_owned()));
        }
        if let Some(max) = self.max
            && registry.slots.len() >= max
        {
            tracing::warn!(
                account = name,
                "refused a new account: --max-accounts {max} reached"
            );
            return Err(AccountError::Full(max));
        }
        registry
            .uuids
            .entry(name.to_owned())
            .or_insert_with(|| uuid.to_owned());
        Ok(registry.slots.entry(uuid.to_owned()).or_default().clone())
    }

    /// The slot's account, generated by the first caller (others wait for it).
    fn fill(
        &self,
        slot: &OnceLock<Arc<Account>>,
        name: &str,
        uuid: &str,
    ) -> Result<Arc<Account>, AccountError> {
        if let Some(account) = slot.get() {
            return Ok(account.clone());
        }
        let fixtures = if name == self.seeding.default_account {
            self.fixtures().map_err(AccountError::Fixtures)?
        } else {
            Vec::new()
        };
        Ok(slot
            .get_or_init(|| Arc::new(self.create(name, uuid, fixtures)))
            .clone())
    }

    /// The account tokens are for unless they name another (`serve --account`).
    pub fn default_name(&self) -> &str {
        &self.seeding.default_account
    }

    /// Fails early on unreadable fixtures (the server checks them at start), and counts those
    /// timestamped before `horizon_ns`, which the API will never serve.
    pub fn check_fixtures(&self, horizon_ns: i64) -> anyhow::Result<StaleFixtures> {
        let mut stale = StaleFixtures::default();
        for (_, events) in self.fixtures()? {
            stale.total += events.len();
            for ns in events.iter().filter_map(|e| event_timestamp(e).ok()) {
                if ns < horizon_ns {
                    stale.count += 1;
                    stale.newest = stale.newest.max(Some(ns));
                }
            }
        }
        Ok(stale)
    }

    fn create(&self, name: &str, uuid: &str, fixtures: Vec<(Kind, Vec<Value>)>) -> Account {
        let s = &self.seeding;
        let built: Vec<(Log, Generator)> = std::thread::scope(|scope| {
            let handles: Vec<_> = Kind::ALL
                .map(|kind| {
                    scope.spawn(move || {
                        let mut generator = Generator::new(s.seed, name, uuid, kind);
                        let mut log = Log::default();
                        for e in generator.initial(s.events_per_type, s.anchor, s.span) {
                            log.push(&e).expect("generated events are valid");
                        }
                        (log, generator)
                    })
                })
                .into();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect()
        });
        let mut built = built.into_iter();
        let mut next = || built.next().expect("three kinds");
        let (a, b, c) = (next(), next(), next());
        let account = Account {
            logs: [RwLock::new(a.0), RwLock::new(b.0), RwLock::new(c.0)],
            generators: [Mutex::new(a.1), Mutex::new(b.1), Mutex::new(c.1)],
            msp: s.msp_accounts.includes(name),
        };
        for (kind, events) in fixtures {
            account
                .append(kind, &events)
                .expect("fixtures were validated");
        }
        account
    }

    /// Items of every `<kind>*.json` under `<dir>/responses/v2/` (or `<dir>` itself): an
    /// envelope's `items` or a bare array.
    fn fixtures(&self) -> anyhow::Result<Vec<(Kind, Vec<Value>)>> {
        let Some(dir) = &self.seeding.fixtures_dir else {
            return Ok(Vec::new());
        };
        let nested = dir.join("responses").join("v2");
        let dir = if nested.is_dir() { nested } else { dir.clone() };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
            .with_context(|| format!("cannot read the fixtures directory {}", dir.display()))?;
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(kind) = Kind::ALL
                .into_iter()
                .find(|k| file.starts_with(k.name()) && file.ends_with(".json"))
            else {
                continue;
            };
            let value: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let items = match value {
                Value::Array(items) => items,
                Value::Object(mut m) => match m.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => anyhow::bail!("{}: no \"items\" array", path.display()),
                },
                _ => anyhow::bail!("{}: expected an array or an envelope", path.display()),
            };
            Log::default()
                .push_all(&items)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            out.push((kind, items));
        }
        // A directory one level off (`fixtures/responses`) would otherwise load nothing, and
        // golden tests pass or fail for a reason no message gives.
        if out.is_empty() {
            anyhow::bail!(
                "no fixtures in {}: expected signinattempts*.json, itemusages*.json or \
                 auditevents*.json there, or in its responses/v2/",
                dir.display()
            );
        }
        Ok(out)
    }
}
