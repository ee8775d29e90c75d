//! The Fluent Bit plugin-proxy C ABI: every `extern "C"` export and every `unsafe` block of the
//! crate. Layouts, symbols, return codes and threading follow
//! `shared/docs/fluent-bit-proxy-abi.md`; the section numbers below refer to it.
//!
//! Ownership at the boundary:
//! - `FLBPluginRegister` fills the first five fields of Fluent Bit's `def` with strings we
//!   allocate per `def`; `FLBPluginUnregister` frees only the strings of the `def` it is given
//!   (a hot reload registers a new `def` before the old one is unregistered).
//! - Collect returns a buffer of ours: a one-page batch's own bytes, or the pages copied into
//!   a buffer reused from earlier collects. It stays in `IN_FLIGHT` (not in the instance, so
//!   an Exit on another thread cannot free it) until the cleanup callback, which comes right
//!   after Fluent Bit has copied it (ABI doc §5): cleanup acks its pages, so their cursors get
//!   checkpointed, and keeps the buffer for reuse.
//! - Strings from `input_get_property` belong to Fluent Bit and are copied at once.
//!
//! Every export runs inside `boundary!`: a panic becomes the export's error value instead of
//! unwinding into C (which would abort Fluent Bit).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod log;
mod registry;

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;

use crate::config::{self, Config};
use crate::encode::Target;
use crate::pipeline::{BatchLimits, Collector};
use log::{LogPrintFn, LogSink};
use registry::{Instance, registry};

const FLB_ERROR: c_int = 0;
const FLB_OK: c_int = 1;
const FLB_PROXY_INPUT_PLUGIN: c_int = 1;
const FLB_PROXY_GOLANG: c_int = 11;
/// What the collect callback returns for "failed, nothing to append" (§4).
const COLLECT_FAILED: c_int = -1;

/// `checkpoint_delay` unless set: a threaded input's records reach Fluent Bit's chunks through
/// a ring buffer the engine drains every 250 ms (`flb_engine.c`); this is four drains.
const CHECKPOINT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

const PLUGIN_NAME: &CStr = c"onepassword";
const PLUGIN_DESCRIPTION: &CStr =
    c"1Password Events API: sign-in attempts, item usages and audit events";

/// The first five fields of `struct flb_plugin_proxy_def` (§2.1). The struct grew in 5.0 and
/// 5.1.1; writing the later fields would overflow the block an older Fluent Bit allocated.
#[repr(C)]
pub struct ProxyDef {
    kind: c_int,
    proxy: c_int,
    flags: c_int,
    name: *mut c_char,
    description: *mut c_char,
}

/// The public head of `struct flbgo_input_plugin` (§2.2): one per loaded library, its `i_ins`
/// and `context` overwritten for each instance, so they are only read inside Init.
#[repr(C)]
pub struct InputPlugin {
    name: *mut c_char,
    api: *const FlbApi,
    i_ins: *mut c_void,
    context: *mut c_void,
}

/// `struct flb_api` up to the last member used (§2.3). The cmetrics getters may be garbage.
#[repr(C)]
struct FlbApi {
    output_get_property: *const c_void,
    input_get_property: Option<unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char>,
    output_get_cmt_instance: *const c_void,
    input_get_cmt_instance: *const c_void,
    log_print: Option<LogPrintFn>,
    input_log_check: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
}

/// Runs an export's body, turning a panic into `$fallback` (rustls-ffi's panic boundary).
macro_rules! boundary {
    ($fallback:expr, $body:block) => {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $fallback,
        }
    };
}

/// Strings handed to Fluent Bit per registered `def`, freed by Unregister of that `def`.
struct Registration {
    def: usize,
    name: usize,
    description: usize,
}

static REGISTRATIONS: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

/// Buffers Fluent Bit is reading, between a collect and its cleanup (at most one per instance).
static IN_FLIGHT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the input `onepassword`. Returns 0; never -1, which makes Fluent Bit free `def`
/// while still pointing at it (§4).
///
/// # Safety
/// `def` is NULL or points to a `flb_plugin_proxy_def` of at least 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginRegister(def: *mut ProxyDef) -> c_int {
    boundary!(0, {
        if def.is_null() {
            return 0;
        }
        let name = PLUGIN_NAME.to_owned().into_raw();
        let description = PLUGIN_DESCRIPTION.to_owned().into_raw();
        // SAFETY: `def` is non-null and points to Fluent Bit's zeroed def, which has at least
        // these five fields in every version; nothing else accesses it during Register.
        unsafe {
            (*def).kind = FLB_PROXY_INPUT_PLUGIN;
            (*def).proxy = FLB_PROXY_GOLANG;
            (*def).flags = 0;
            (*def).name = name;
            (*def).description = description;
        }
        REGISTRATIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Registration {
                def: def as usize,
                name: name as usize,
                description: description as usize,
            });
        0
    })
}

/// Frees the strings registered with this `def` only: after a hot reload, the new `def`
/// (registered earlier) still uses its own.
///
/// # Safety
/// `def` is NULL or a `def` passed to `FLBPluginRegister`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginUnregister(def: *mut ProxyDef) {
    boundary!((), {
        let mut registrations = REGISTRATIONS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(at) = registrations.iter().position(|r| r.def == def as usize) else {
            return;
        };
        let registration = registrations.swap_remove(at);
        for string in [registration.name, registration.description] {
            // SAFETY: the pointer came from `CString::into_raw` in Register and was removed from
            // the list above, so it is freed exactly once.
            drop(unsafe { CString::from_raw(string as *mut c_char) });
        }
    })
}

/// Reads the instance's properties, validates them, starts its collector and stores its id
/// in the per-instance context. Returns `FLB_OK`, or `FLB_ERROR` after one log line saying
/// which option is wrong and why.
///
/// # Safety
/// `plugin` is NULL or Fluent Bit's `flbgo_input_plugin`, with `api`, `i_ins` and `context`
/// set for the instance being initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInit(plugin: *mut InputPlugin) -> c_int {
    boundary!(FLB_ERROR, {
        if plugin.is_null() {
            return FLB_ERROR;
        }
        // SAFETY: non-null, and Fluent Bit keeps the struct alive and unchanged while it waits
        // for this instance's Init to return (instance inits are serialized, §2.2, §3).
        let InputPlugin {
            api,
            i_ins,
            context,
            ..
        } = unsafe { &*plugin };
        let (api, i_ins, context) = (*api, *i_ins, *context);
        if api.is_null() || i_ins.is_null() || context.is_null() {
            return FLB_ERROR;
        }
        // SAFETY: non-null; Fluent Bit's API table lives as long as its configuration, which
        // outlives every instance of it.
        let api = unsafe { &*api };
        let Some(get_property) = api.input_get_property else {
            return FLB_ERROR;
        };
        let read = |key: &str| read_property(get_property, i_ins, key);

        let (id, slot) = registry().reserve();
        let token = read("token").unwrap_or_default();
        let max_level = instance_log_level(api, i_ins);
        let sink = Arc::new(
            LogSink::new(api.log_print, format!("onepassword.{slot}"), max_level)
                .with_secret(token),
        );
        match init_instance(read, context, id, slot, &sink) {
            Ok(()) => FLB_OK,
            Err(message) => {
                sink.write(Level::ERROR, &message);
                sink.close();
                FLB_ERROR
            }
        }
    })
}

/// Reads one property; `Err` names the key when the value is not UTF-8. NULL means unset
/// (Fluent Bit returns NULL for an empty value too, §9).
fn read_property(
    get: unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char,
    i_ins: *mut c_void,
    key: &str,
) -> Result<Option<String>, String> {
    let Ok(c_key) = CString::new(key) else {
        return Ok(None);
    };
    // SAFETY: `get` is Fluent Bit's `input_get_property`, called with a NUL-terminated key and
    // the instance handle of the Init in progress.
    let value = unsafe { get(c_key.as_ptr(), i_ins) };
    if value.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null values are NUL-terminated `flb_sds_t` strings owned by the instance,
    // valid for its lifetime; we copy it at once.
    let bytes = unsafe { CStr::from_ptr(value) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Some(text.to_owned())),
        Err(_) => Err(format!("option `{key}`: the value is not valid UTF-8")),
    }
}

/// The instance's `log_level` as a filter: the most verbose level Fluent Bit says it logs.
fn instance_log_level(api: &FlbApi, i_ins: *mut c_void) -> LevelFilter {
    let Some(check) = api.input_log_check else {
        return LevelFilter::INFO;
    };
    log::LEVELS_VERBOSE_FIRST
        .into_iter()
        .find(|level| {
            // SAFETY: `check` is Fluent Bit's `input_log_check`, called with the instance handle
            // of the Init in progress.
            unsafe { check(i_ins, log::flb_level(*level)) != 0 }
        })
        .map_or(LevelFilter::OFF, LevelFilter::from_level)
}

/// Likely mistakes for option names, and the option meant. Without a `config_map` Fluent Bit
/// accepts any key and can't list them, so unknown keys are found by asking for these.
const ALIASES: &[(&str, &str)] = &[
    ("interval", "poll_interval"),
    ("interval_sec", "poll_interval"),
    ("interval_nsec", "poll_interval"),
    ("poll_interval_sec", "poll_interval"),
    ("refresh_interval", "poll_interval"),
    ("api_token", "token"),
    ("bearer_token", "token"),
    ("access_token", "token"),
    ("events_api_token", "token"),
    ("token_path", "token_file"),
    ("url", "base_url"),
    ("endpoint", "base_url"),
    ("api_url", "base_url"),
    ("server", "base_url"),
    ("event_types", "events"),
    ("events_types", "events"),
    ("event_type", "events"),
    ("types", "events"),
    ("statedir", "state_dir"),
    ("state_path", "state_dir"),
    ("state_directory", "state_dir"),
    ("checkpoint_dir", "state_dir"),
    ("db", "state_dir"),
    ("start_at", "start_time"),
    ("since", "start_time"),
    ("version", "api_version"),
    ("ca", "ca_file"),
    ("ca_path", "ca_file"),
    ("ca_cert", "ca_file"),
    ("http_proxy", "proxy"),
    ("https_proxy", "proxy"),
    ("insecure", "insecure_http"),
    ("allow_http", "insecure_http"),
    ("compress", "compression"),
    ("gzip", "compression"),
    ("page_size", "limit"),
    ("batch_size", "batch_max_records"),
    ("max_events", "max_buffered_events"),
    ("buffer_size", "max_buffered_events"),
    ("rate_limit", "rate_limit_per_minute"),
];

/// Each probe: a spelling Fluent Bit would accept silently, and the option it was meant for.
/// Besides the aliases: every option in kebab-case and run together (keys match
/// case-insensitively, so `tokenFile` is `tokenfile`), and every spelling one typo away from
/// an option. That is some 20,000 probes, a few milliseconds once per init; made as they are
/// asked, so the first one set ends the search.
fn misspellings() -> impl Iterator<Item = (String, &'static str)> {
    let mut seen: HashSet<String> = config::KEYS.iter().map(|k| (*k).to_owned()).collect();
    let variants = config::KEYS.iter().flat_map(|key| {
        [key.replace('_', "-"), key.replace('_', "")]
            .into_iter()
            .chain(one_typo(key))
            .map(move |probe| (probe, *key))
    });
    ALIASES
        .iter()
        .map(|(alias, key)| ((*alias).to_owned(), *key))
        .chain(variants)
        .filter(move |(probe, _)| seen.insert(probe.clone()))
}

/// Every spelling of `key` one typo away: a character dropped, added or changed, or two
/// neighbours swapped (the mistakes a reader of the configuration misses).
fn one_typo(key: &str) -> impl Iterator<Item = String> + '_ {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz_-";
    let b = key.as_bytes();
    let dropped = (0..b.len()).map(move |i| [&b[..i], &b[i + 1..]].concat());
    let swapped = (1..b.len()).map(move |i| {
        let mut v = b.to_vec();
        v.swap(i - 1, i);
        v
    });
    let changed = (0..b.len()).flat_map(move |i| {
        CHARS.iter().map(move |&c| {
            let mut v = b.to_vec();
            v[i] = c;
            v
        })
    });
    let added = (0..=b.len()).flat_map(move |i| {
        CHARS
            .iter()
            .map(move |&c| [&b[..i], &[c], &b[i..]].concat())
    });
    dropped
        .chain(swapped)
        .chain(changed)
        .chain(added)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn init_instance(
    read: impl Fn(&str) -> Result<Option<String>, String>,
    context: *mut c_void,
    id: usize,
    slot: usize,
    sink: &Arc<LogSink>,
) -> Result<(), String> {
    for (probe, key) in misspellings() {
        if read(&probe)?.is_some() {
            let e = config::ConfigError::UnknownKey {
                key: probe,
                suggestion: Some(key),
            };
            return Err(format!("invalid configuration: {e}"));
        }
    }
    let mut pairs = Vec::new();
    for key in config::KEYS {
        if let Some(value) = read(key)? {
            pairs.push((*key, value));
        }
    }
    let mut config =
        Config::from_pairs(pairs).map_err(|e| format!("invalid configuration: {e}"))?;
    let no_delay = config
        .checkpoint_delay
        .get_or_insert(CHECKPOINT_DELAY)
        .is_zero();

    let slot_ptr = context.cast::<u8>().wrapping_add(8).cast::<*mut c_void>();
    // SAFETY: both context layouts are at least 16 bytes and pointer-aligned (§2.4), so
    // offset 8 is readable: `remote_context` (still NULL) on >= 4.1, `proxy` (non-NULL) before.
    let legacy = !unsafe { slot_ptr.read() }.is_null();
    if legacy && registry().has_running_legacy() {
        return Err(
            "Fluent Bit before 4.1 can run only one onepassword input per process; \
             upgrade to Fluent Bit 4.1 or later to collect from several accounts"
                .to_owned(),
        );
    }

    let limits = BatchLimits {
        max_records: config.batch_max_records,
        max_bytes: config.batch_max_bytes,
    };
    let collector = Collector::start(config, Target::Msgpack, Some(log::dispatch(sink.clone())))
        .map_err(|e| format!("cannot start: {e}"))?;
    let instance = Arc::new(Instance::new(
        id,
        slot,
        legacy,
        sink.clone(),
        limits,
        collector,
    ));
    if !legacy {
        // SAFETY: on >= 4.1 offset 8 is `remote_context`, ours to set (read NULL above); Fluent
        // Bit passes it back to the *Ctx callbacks. It is an id, never dereferenced.
        unsafe { slot_ptr.write(id as *mut c_void) };
    }
    registry().add(instance);
    sink.write(
        Level::INFO,
        if legacy {
            "started (Fluent Bit < 4.1: single-instance mode)"
        } else {
            "started"
        },
    );
    // Fluent Bit does not tell a plugin whether its input is threaded, so this cannot be an
    // error: with `threaded off` a delay of 0 is safe.
    if no_delay {
        sink.write(
            Level::WARN,
            "checkpoint_delay is 0, which is safe only with `threaded off`: a threaded input \
             (Fluent Bit's default) holds what it took in memory for up to 250 ms, and a crash \
             then loses it; remove the key for the default 1s",
        );
    }
    Ok(())
}

/// Hands whole encoded pages to Fluent Bit in one buffer, without blocking. Nothing while
/// paused (see `registry`): `*len = 0`.
fn collect(
    instance: Option<Arc<Instance>>,
    paused: bool,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    if data.is_null() || len.is_null() {
        return COLLECT_FAILED;
    }
    // SAFETY: both out-pointers are non-null and point to Fluent Bit's locals for this call.
    unsafe {
        data.write(std::ptr::null_mut());
        len.write(0);
    }
    let Some(instance) = instance else {
        return FLB_OK;
    };
    instance.log.write_backlog();
    if paused {
        return FLB_OK;
    }
    let Some(batch) = instance.take() else {
        return FLB_OK;
    };
    let size = batch.len();
    if size == 0 {
        instance.ack(batch.ack);
        return FLB_OK;
    }
    let (buffer, ack) = match batch.into_single() {
        Ok(page) => page,
        Err(batch) => {
            let mut buffer = instance.buffer();
            if buffer.try_reserve(size).is_err() {
                instance.log.write(
                    Level::WARN,
                    "out of memory for a batch; offering it again next time",
                );
                instance.hold(batch);
                return COLLECT_FAILED;
            }
            let (parts, ack) = batch.into_parts();
            for part in parts {
                buffer.extend_from_slice(&part);
                instance.recycle(part);
            }
            (buffer, ack)
        }
    };
    let pointer = buffer.as_ptr().cast_mut();
    in_flight().push(buffer);
    instance.hand_over(pointer as usize, ack);
    // SAFETY: the out-pointers were checked above. The buffer is `size` bytes and stays
    // allocated, unchanged, in IN_FLIGHT until the cleanup callback for this pointer.
    unsafe {
        data.write(pointer.cast());
        len.write(size);
    }
    FLB_OK
}

/// Fluent Bit has copied the buffer: ack its pages, then give it back for the next pages.
fn cleanup(instance: Option<Arc<Instance>>, data: *mut c_void) -> c_int {
    if data.is_null() {
        return FLB_OK;
    }
    let buffer = {
        let mut buffers = in_flight();
        let at = buffers
            .iter()
            .position(|b| b.as_ptr() == data.cast_const().cast());
        at.map(|at| buffers.swap_remove(at))
    };
    if let Some(instance) = instance {
        instance.taken(data as usize);
        if let Some(buffer) = buffer {
            instance.recycle(buffer);
        }
    }
    FLB_OK
}

/// Collect for Fluent Bit >= 4.1: `remote_ctx` is the instance id stored by Init.
///
/// # Safety
/// `data` and `len` are NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInputCallbackCtx(
    remote_ctx: *mut c_void,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    boundary!(COLLECT_FAILED, {
        let (instance, paused) = {
            let registry = registry();
            (registry.find(remote_ctx as usize), registry.paused())
        };
        collect(instance, paused, data, len)
    })
}

/// Collect before 4.1: the single instance.
///
/// # Safety
/// `data` and `len` are NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInputCallback(data: *mut *mut c_void, len: *mut usize) -> c_int {
    boundary!(COLLECT_FAILED, {
        let (instance, paused) = {
            let registry = registry();
            (registry.single(), registry.paused())
        };
        collect(instance, paused, data, len)
    })
}

/// Called by Fluent Bit right after it appended a buffer from collect.
///
/// # Safety
/// `data` is NULL or a buffer returned by collect, not yet cleaned up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInputCleanupCallbackCtx(
    remote_ctx: *mut c_void,
    data: *mut c_void,
) -> c_int {
    boundary!(FLB_ERROR, {
        cleanup(registry().find(remote_ctx as usize), data)
    })
}

/// Cleanup before 4.1: the single instance.
///
/// # Safety
/// `data` is NULL or a buffer returned by collect, not yet cleaned up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInputCleanupCallback(data: *mut c_void) -> c_int {
    boundary!(FLB_ERROR, { cleanup(registry().single(), data) })
}

/// Pause carries no instance: global, see `registry`.
#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginInputPause() {
    boundary!((), { registry().pause() })
}

#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginInputResume() {
    boundary!((), { registry().resume() })
}

/// Stops one instance's streams, checkpoints what was acked and joins its threads, within
/// Fluent Bit's 2 s grace period.
#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginInputPreExit(_shutdown_by_hot_reloading: c_int) {
    boundary!((), {
        let instance = registry().begin_exit();
        if let Some(instance) = instance {
            instance.shutdown();
        }
    })
}

/// Called once per instance (no identity): shuts it down if PreExit did not, forgets it, and
/// closes its log, since Fluent Bit frees the instance afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginExit() -> c_int {
    boundary!(FLB_ERROR, {
        let instance = registry().remove_for_exit();
        if let Some(instance) = instance {
            instance.shutdown();
            instance.log.write(Level::INFO, "stopped");
            instance.log.close();
        }
        FLB_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_turns_a_panic_into_the_fallback() {
        let value: c_int = boundary!(COLLECT_FAILED, {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            FLB_OK
        });
        assert_eq!(value, COLLECT_FAILED);
    }

    #[test]
    fn misspellings_point_at_real_keys_and_never_shadow_one() {
        for (probe, key) in misspellings() {
            assert!(config::KEYS.contains(&key), "{probe} -> {key}");
            assert!(!config::KEYS.contains(&probe.as_str()), "{probe}");
        }
        let has = |probe: &str, key: &str| misspellings().any(|(p, k)| p == probe && k == key);
        assert!(has("token-file", "token_file"));
        assert!(has("statedir", "state_dir"));
        // One typo: dropped, added, changed, swapped.
        assert!(has("poll_intervl", "poll_interval"));
        assert!(has("poll_intervall", "poll_interval"));
        assert!(has("poll_interwal", "poll_interval"));
        assert!(has("poll_itnerval", "poll_interval"));
        assert!(has("tokne", "token"));
        assert!(has("state-dir", "state_dir"));
        // Each probed once, whatever it is near.
        let probes: Vec<_> = misspellings().collect();
        let distinct: HashSet<_> = probes.iter().map(|(p, _)| p).collect();
        assert_eq!(distinct.len(), probes.len());
    }
}
