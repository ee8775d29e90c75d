//! State files: one per (account, API version, event type) in `state_dir`, holding the cursor,
//! the newest delivered event time and a window of recently delivered uuids (dedupe after a crash
//! or a cursor reset). Written atomically: temp file in the same directory (mode 0600, named
//! after the stream, whose next start removes one a crash left), fsync, rename, fsync the
//! directory. Never holds the token.
//!
//! Beside each state file, a lock file (`state-….lock`, never removed) that the collector
//! running the stream holds: a second collector for the same stream in the same `state_dir`
//! would deliver every event again.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{ApiVersion, EventType, EventUuid};

/// How many recent uuids a state file remembers.
pub const RECENT_UUIDS: usize = 2000;
const FORMAT_VERSION: u32 = 1;

/// A stream's position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The cursor to continue from; `None` = start from a reset cursor.
    pub cursor: Option<String>,
    /// Newest event time delivered: no uuid in `recent_uuids` is of a later event.
    pub last_timestamp: Option<jiff::Timestamp>,
    /// Newest event time delivered that was not in the future when fetched: where a rejected
    /// cursor restarts. One client with a wrong clock can date an item usage years ahead, and a
    /// reset from there would serve nothing again. Absent from files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<jiff::Timestamp>,
    /// Last [`RECENT_UUIDS`] delivered uuids, oldest first. Inline, so that taking a snapshot
    /// to write (under the lock the sink's thread also takes) is one copy of the window.
    pub recent_uuids: VecDeque<EventUuid>,
}

impl State {
    /// Records delivered uuids, keeping the window bounded.
    pub fn remember<I: IntoIterator<Item = EventUuid>>(&mut self, uuids: I) {
        self.recent_uuids.extend(uuids);
        let excess = self.recent_uuids.len().saturating_sub(RECENT_UUIDS);
        self.recent_uuids.drain(..excess);
    }
}

/// The file: read as `File<State>`, written from a borrowed `File<&State>`.
#[derive(Serialize, Deserialize)]
struct File<S> {
    format: u32,
    account_uuid: String,
    api_version: String,
    event_type: String,
    updated_at: jiff::Timestamp,
    #[serde(flatten)]
    state: S,
}

/// A state file problem: names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "state_dir {path}: {source} (create it, fix its permissions, or set `state_dir` elsewhere)"
    )]
    Dir {
        path: String,
        source: std::io::Error,
    },
    /// Something other than a directory (a file) is at `state_dir` or one of its parents: the
    /// OS error would only say that it exists, or name no path.
    #[error(
        "state_dir {path}: {file} is not a directory: set `state_dir` to a directory (a missing one is created), or move {file} away"
    )]
    NotADirectory { path: String, file: String },
    /// Checked at start: a collector that can save no checkpoint would deliver the whole
    /// window again at every restart.
    #[error(
        "state_dir {path} is not writable: {source}: make it writable by the user the collector runs as, or set `state_dir` elsewhere"
    )]
    NotWritable {
        path: String,
        source: std::io::Error,
    },
    /// The file is there but the OS refuses it (permissions, owner): the file itself is fine.
    #[error(
        "state file {path} cannot be read: {source}: fix its owner or permissions so that the user the collector runs as can read it"
    )]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// Not JSON, or not the shape of a state file (truncated, edited, another file).
    #[error(
        "state file {path} is not a valid op-events state file ({message}): put back a good copy (from a backup), or delete it to collect that stream again from start_time (its events since then are delivered again)"
    )]
    Corrupt { path: String, message: String },
    /// A downgrade: this version cannot know what the newer one saved.
    #[error(
        "state file {path} was written by a newer op-events (state format {found}; this version reads {reads}): run that version or a later one; deleting it would collect that stream again from start_time, and its events since then would be delivered again"
    )]
    Newer {
        path: String,
        found: u32,
        reads: u32,
    },
    #[error(
        "state file {path} holds the position of {found}, not of {expected} (copied or renamed?): put back the file it was, or delete it to start that stream again from start_time"
    )]
    Mismatch {
        path: String,
        found: String,
        expected: String,
    },
    #[error("state file {path} could not be written: {source} (any previous one is intact)")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "leftover temp file {path} could not be removed: {source} (harmless: it is never read; delete it by hand)"
    )]
    Leftover {
        path: String,
        source: std::io::Error,
    },
    #[error("lock file {path} cannot be locked: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    /// Checked at start: a lock that cannot be taken would leave the stream unguarded, and a
    /// lock file the collector cannot open is a setup mistake, not a file system without locks.
    #[error(
        "lock file {path} cannot be opened for writing: {source}: make it writable by the user the collector runs as (a collector run as another user, such as root, left it)"
    )]
    LockUnwritable {
        path: String,
        source: std::io::Error,
    },
}

/// A stream's claim on its state file, held while its collector runs. An advisory `flock`,
/// released when this is dropped, or by the kernel when the process dies: a crash never
/// leaves a stream locked.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

/// Identifies one state file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub account: String,
    pub version: ApiVersion,
    pub kind: EventType,
}

impl Key {
    fn file_name(&self, extension: &str) -> String {
        let account: String = self
            .account
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("state-{account}-{}-{}.{extension}", self.version, self.kind)
    }

    /// Names the stream, so that the lock's holder knows which temp files are its own.
    fn temp_prefix(&self) -> String {
        format!(".tmp-{}-", self.file_name("json"))
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// How a failure to create or list `dir` is reported.
fn dir_error(dir: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Dir {
        path: dir.display().to_string(),
        source,
    }
}

/// Whether `p` is named as a state file (`json`) or a lock file (`lock`) is.
fn is_state(p: &Path, extension: &str) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("state-") && n.ends_with(&format!(".{extension}")))
}

/// Creates and removes a file in `dir`, as a checkpoint's temp file would be. Another input of
/// the same process may be doing the same: the file may be there already, or gone.
fn check_writable(dir: &Path) -> Result<(), CheckpointError> {
    let probe = dir.join(format!(".tmp-write-check-{}", std::process::id()));
    open_private(&probe)
        .and_then(|_| match std::fs::remove_file(&probe) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .map_err(|source| CheckpointError::NotWritable {
            path: dir.display().to_string(),
            source,
        })
}

/// Opens `path` for writing, created with mode 0600 if missing, its contents kept.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl Store {
    /// Creates the directory (0700) if needed, checks that a file can be created in it, that
    /// every state file in it is readable, and that every lock file in it can be opened for
    /// writing, so a broken file fails the start instead of silently restarting a stream, or
    /// running it unguarded.
    pub fn open(dir: &Path) -> Result<Store, CheckpointError> {
        let dir_err = dir_error(dir);
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        // A directory already there is no error; a file there, or at a parent, is, and the OS
        // error does not say which path it is.
        b.create(dir).map_err(
            |e| match dir.ancestors().find(|p| p.exists() && !p.is_dir()) {
                Some(file) => CheckpointError::NotADirectory {
                    path: dir.display().to_string(),
                    file: file.display().to_string(),
                },
                None => dir_err(e),
            },
        )?;
        check_writable(dir)?;
        let store = Store {
            dir: dir.to_path_buf(),
        };
        let mut locks = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(&dir_err)? {
            let path = entry.map_err(&dir_err)?.path();
            if is_state(&path, "json") {
                store.read(&path)?;
            } else if is_state(&path, "lock") {
                locks.push(path);
            }
        }
        // Opened as `try_lock` opens them, but not locked: another collector may hold one. A
        // `flock` belongs to its open file, so opening and closing another leaves it held.
        for path in locks {
            open_private(&path).map_err(|source| CheckpointError::LockUnwritable {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(store)
    }

    pub fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.file_name("json"))
    }

    pub fn lock_path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.file_name("lock"))
    }

    /// Claims the stream without waiting: `None` while another collector holds it (another
    /// process, or another input of the same Fluent Bit: each open file has its own lock).
    /// Load its state only once it is held: the holder writes its last checkpoint before
    /// letting go.
    pub fn try_lock(&self, key: &Key) -> Result<Option<StateLock>, CheckpointError> {
        let path = self.lock_path(key);
        let lerr = |source| CheckpointError::Lock {
            path: path.display().to_string(),
            source,
        };
        let file = open_private(&path).map_err(lerr)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StateLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(lerr(e)),
        }
    }

    /// Removes `key`'s temp files that a crash between writing one and renaming it left
    /// behind; how many. Call it only while holding `key`'s lock: the holder alone writes them,
    /// so none of them is in use.
    pub fn remove_leftovers(&self, key: &Key) -> Result<usize, CheckpointError> {
        let dir_err = dir_error(&self.dir);
        let prefix = key.temp_prefix();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(&dir_err)? {
            let entry = entry.map_err(&dir_err)?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|source| CheckpointError::Leftover {
                    path: path.display().to_string(),
                    source,
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn read(&self, path: &Path) -> Result<Option<File<State>>, CheckpointError> {
        let shown = || path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Unreadable {
                    path: shown(),
                    source,
                });
            }
        };
        let newer = |format| CheckpointError::Newer {
            path: shown(),
            found: format,
            reads: FORMAT_VERSION,
        };
        let file: File<State> = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => {
                // A newer format may have another shape, and is no corrupt file: only then is
                // the format read on its own.
                #[derive(Deserialize)]
                struct Format {
                    format: u32,
                }
                return Err(match serde_json::from_slice(&bytes) {
                    Ok(Format { format }) if format > FORMAT_VERSION => newer(format),
                    _ => CheckpointError::Corrupt {
                        path: shown(),
                        message: e.to_string(),
                    },
                });
            }
        };
        if file.format > FORMAT_VERSION {
            return Err(newer(file.format));
        }
        if file.format != FORMAT_VERSION {
            return Err(CheckpointError::Corrupt {
                path: shown(),
                message: format!("state format {}, which no op-events writes", file.format),
            });
        }
        Ok(Some(file))
    }

    /// The saved state, or `None` if this stream never checkpointed. A file of another stream
    /// is refused: its cursor would be rejected (or worse, accepted) and the restart taken
    /// from another stream's times.
    pub fn load(&self, key: &Key) -> Result<Option<State>, CheckpointError> {
        let path = self.path(key);
        let Some(file) = self.read(&path)? else {
            return Ok(None);
        };
        let stream = |account: &str, version: &str, kind: &str| {
            format!("{kind} (API {version}) of account {account}")
        };
        let found = stream(&file.account_uuid, &file.api_version, &file.event_type);
        let expected = stream(&key.account, &key.version.to_string(), key.kind.as_str());
        if found != expected {
            return Err(CheckpointError::Mismatch {
                path: path.display().to_string(),
                found,
                expected,
            });
        }
        Ok(Some(file.state))
    }

    /// A new temp file for `key`'s state, mode 0600 (as `NamedTempFile` creates them), named
    /// so that [`Store::remove_leftovers`] finds it if a crash leaves it.
    fn temp_file(&self, key: &Key) -> std::io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&key.temp_prefix())
            .tempfile_in(&self.dir)
    }

    /// Atomically replaces the state file.
    pub fn save(&self, key: &Key, state: &State) -> Result<(), CheckpointError> {
        let path = self.path(key);
        let werr = |source| CheckpointError::Write {
            path: path.display().to_string(),
            source,
        };
        let file = File {
            format: FORMAT_VERSION,
            account_uuid: key.account.clone(),
            api_version: key.version.to_string(),
            event_type: key.kind.to_string(),
            updated_at: jiff::Timestamp::now(),
            state,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| werr(std::io::Error::other(e)))?;
        let mut tmp = self.temp_file(key).map_err(werr)?;
        tmp.write_all(&json).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&path).map_err(|e| werr(e.error))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(werr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mode_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Key {
            account: "ACME/1".into(),
            version: ApiVersion::V2,
            kind: EventType::ItemUsages,
        };
        assert_eq!(store.load(&key).unwrap(), None);
        let mut s = State {
            cursor: Some("c".into()),
            last_timestamp: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            resume_from: Some("2025-12-31T00:00:00Z".parse().unwrap()),
            ..State::default()
        };
        s.remember((0..RECENT_UUIDS + 4).map(|i| EventUuid::from(&*i.to_string())));
        // One longer than 1Password's 26 characters, kept on the heap, also round-trips.
        s.remember([EventUuid::from("LONGER-THAN-ANY-1PASSWORD-UUID-EVER-SEEN")]);
        assert_eq!(s.recent_uuids.len(), RECENT_UUIDS);
        assert_eq!(s.recent_uuids[0].as_str(), "5");
        store.save(&key, &s).unwrap();
        assert_eq!(store.load(&key).unwrap(), Some(s));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path(&key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(store.path(&key), b"{garbage").unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("delete it") && e.contains("state-ACME_1-v2-itemusages.json"),
            "{e}"
        );
    }

    /// Each way a state file can be broken fails the open with what to change for it.
    #[test]
    fn a_broken_state_file_says_what_to_change() {
        use std::os::unix::fs::PermissionsExt;
        let key = Key {
            account: "ACME".into(),
            version: ApiVersion::V2,
            kind: EventType::AuditEvents,
        };
        let good = {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            store.save(&key, &State::default()).unwrap();
            String::from_utf8(std::fs::read(store.path(&key)).unwrap()).unwrap()
        };
        // `put` places the file, given its path; the open's error, and the path it must name.
        let open = |put: &dyn Fn(&Path)| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state-ACME-v2-auditevents.json");
            put(&path);
            let e = Store::open(dir.path()).unwrap_err();
            (e, path.display().to_string())
        };
        let redo = "delete it to collect that stream again from start_time";

        // Modes do not stop root: /proc/self/mem cannot be read from its start by anyone.
        let (e, path) = open(&|path| {
            std::fs::write(path, &good).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
            if std::fs::read(path).is_ok() {
                std::fs::remove_file(path).unwrap();
                std::os::unix::fs::symlink("/proc/self/mem", path).unwrap();
            }
        });
        assert!(matches!(e, CheckpointError::Unreadable { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("state file {path} cannot be read: "))
                && shown.ends_with(
                    ": fix its owner or permissions so that the user the collector runs as can read it"
                )
                && !shown.contains("delete"),
            "{shown}"
        );

        for broken in [&good[..good.len() / 2], "", "[]", "{\"format\": 1}"] {
            let (e, path) = open(&|path| std::fs::write(path, broken).unwrap());
            assert!(
                matches!(e, CheckpointError::Corrupt { .. }),
                "{broken}: {e:?}"
            );
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!(
                    "state file {path} is not a valid op-events state file ("
                )) && shown.contains("put back a good copy")
                    && shown.contains(&format!(
                        "{redo} (its events since then are delivered again)"
                    ))
                    && !shown.contains("permissions"),
                "{shown}"
            );
        }
        // No op-events writes format 0: it is no older format, but a broken file.
        let (e, _) = open(&|path| {
            std::fs::write(path, good.replace("\"format\": 1", "\"format\": 0")).unwrap()
        });
        assert!(
            e.to_string()
                .contains("(state format 0, which no op-events writes)"),
            "{e}"
        );

        // A newer format, in this version's shape or another one.
        let newer = good.replace("\"format\": 1", "\"format\": 2");
        assert_ne!(newer, good);
        for newer in [&newer[..], "{\"format\": 2, \"streams\": []}"] {
            let (e, path) = open(&|path| std::fs::write(path, newer).unwrap());
            assert!(matches!(e, CheckpointError::Newer { .. }), "{newer}: {e:?}");
            let shown = e.to_string();
            assert_eq!(
                shown,
                format!(
                    "state file {path} was written by a newer op-events (state format 2; this version reads 1): run that version or a later one; {}",
                    "deleting it would collect that stream again from start_time, and its events since then would be delivered again"
                )
            );
        }
    }

    /// A lock file that cannot be opened fails the open: `try_lock` would fail on it, and the
    /// stream would run unguarded.
    #[test]
    fn a_lock_file_that_cannot_be_opened_fails_the_open() {
        use std::os::unix::fs::PermissionsExt;
        let fails = |dir: &Path, lock: &Path| {
            let e = Store::open(dir).unwrap_err();
            assert!(matches!(e, CheckpointError::LockUnwritable { .. }), "{e:?}");
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!(
                    "lock file {} cannot be opened for writing: ",
                    lock.display()
                )) && shown.ends_with(
                    ": make it writable by the user the collector runs as (a collector run as another user, such as root, left it)"
                ),
                "{shown}"
            );
        };
        // As a first run as root leaves it for a service user; modes do not stop root.
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("state-x-v2-signinattempts.lock");
        std::fs::write(&lock, b"").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o400)).unwrap();
        if open_private(&lock).is_err() {
            fails(dir.path(), &lock);
        }
        // Opening a directory for writing fails for everyone.
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("state-x-v2-signinattempts.lock");
        std::fs::create_dir(&lock).unwrap();
        fails(dir.path(), &lock);
        // Only lock files are opened: other directories are no concern of the store.
        std::fs::remove_dir(&lock).unwrap();
        std::fs::create_dir(dir.path().join("state-x-v2-signinattempts.d")).unwrap();
        assert!(Store::open(dir.path()).is_ok());
    }

    #[test]
    fn a_directory_that_cannot_be_written_fails_the_open() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let read_only = tmp.path().join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Modes do not stop root; sysfs refuses new files to everyone.
        let dir = match std::fs::File::create(read_only.join("probe")) {
            Ok(_) => Path::new("/sys/kernel"),
            Err(_) => read_only.as_path(),
        };
        let e = Store::open(dir).unwrap_err();
        assert!(matches!(e, CheckpointError::NotWritable { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("state_dir {} is not writable: ", dir.display()))
                && shown.contains("set `state_dir` elsewhere")
                && !shown.contains(".tmp-write-check-"),
            "{shown}"
        );
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_file_of_another_stream_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = |account: &str, kind| Key {
            account: account.into(),
            version: ApiVersion::V2,
            kind,
        };
        let refused = |wanted: &Key, holder: &Key| {
            let e = store.load(wanted).unwrap_err().to_string();
            let holds = format!(
                "holds the position of {} (API v2) of account {}, not of",
                holder.kind, holder.account
            );
            assert!(e.contains(&holds) && e.contains("delete it"), "{e}");
        };
        // Copied over another stream's file.
        let audit = key("ACME", EventType::AuditEvents);
        let usages = key("ACME", EventType::ItemUsages);
        store.save(&audit, &State::default()).unwrap();
        std::fs::copy(store.path(&audit), store.path(&usages)).unwrap();
        refused(&usages, &audit);
        assert_eq!(store.load(&audit).unwrap(), Some(State::default()));
        // Two accounts whose names map to the same file name.
        let (dash, underscore) = (
            key("ACME-1", EventType::AuditEvents),
            key("ACME_1", EventType::AuditEvents),
        );
        assert_eq!(store.path(&dash), store.path(&underscore));
        store.save(&underscore, &State::default()).unwrap();
        refused(&dash, &underscore);
    }

    #[test]
    fn one_lock_per_stream_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            Store::open(dir.path()).unwrap(),
            Store::open(dir.path()).unwrap(),
        );
        let key = |kind| Key {
            account: "ACME".into(),
            version: ApiVersion::V2,
            kind,
        };
        let held = a.try_lock(&key(EventType::AuditEvents)).unwrap();
        assert!(held.is_some());
        // Even in the same process, as two inputs of one Fluent Bit are.
        assert!(b.try_lock(&key(EventType::AuditEvents)).unwrap().is_none());
        // Opening the directory opens the lock files, and leaves a held one held.
        assert!(Store::open(dir.path()).is_ok());
        assert!(b.try_lock(&key(EventType::AuditEvents)).unwrap().is_none());
        assert!(b.try_lock(&key(EventType::ItemUsages)).unwrap().is_some());
        drop(held);
        assert!(b.try_lock(&key(EventType::AuditEvents)).unwrap().is_some());
        assert!(dir.path().join("state-ACME-v2-auditevents.lock").exists());
        // Lock files are not state files: opening the directory ignores them.
        assert!(Store::open(dir.path()).is_ok());
    }

    #[test]
    fn only_the_streams_own_leftover_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = |kind| Key {
            account: "ACME".into(),
            version: ApiVersion::V2,
            kind,
        };
        let (audit, usages) = (key(EventType::AuditEvents), key(EventType::ItemUsages));
        store.save(&audit, &State::default()).unwrap();
        // As a SIGKILL between writing and renaming leaves them.
        let leftover = |k: &Key| {
            let (_, path) = store.temp_file(k).unwrap().keep().unwrap();
            path
        };
        let mine = [leftover(&audit), leftover(&audit)];
        let theirs = leftover(&usages);
        let unnamed = dir.path().join(".tmp-a1B2c3");
        std::fs::write(&unnamed, b"{").unwrap();

        assert_eq!(store.remove_leftovers(&audit).unwrap(), 2);
        assert!(mine.iter().all(|p| !p.exists()));
        assert!(theirs.exists() && unnamed.exists());
        assert_eq!(store.load(&audit).unwrap(), Some(State::default()));
        assert_eq!(store.remove_leftovers(&audit).unwrap(), 0);
    }
}
