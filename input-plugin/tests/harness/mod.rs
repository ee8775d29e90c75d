//! Loads the built `libop_events_input.so` with `dlopen` and drives it the way Fluent Bit's
//! plugin proxy does (`shared/docs/fluent-bit-proxy-abi.md`): one `flbgo_input_plugin` per
//! library whose `i_ins`/`context` are overwritten per instance, a fake `flb_api` table, every
//! instance on its own thread (Init, collect + cleanup, pause/resume, PreExit and Exit all run
//! there), and the hot-reload order. All `unsafe` of the tests lives here.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Fluent Bit log levels.
pub const ERROR: c_int = 1;
pub const WARN: c_int = 2;
pub const INFO: c_int = 3;
pub const DEBUG: c_int = 4;
/// The name of each instance's thread (Fluent Bit's input thread), so benches can find it.
pub const INSTANCE_THREAD: &str = "fluent-bit-in";

/// `struct flb_plugin_proxy_def` of Fluent Bit 5.1.1: 48 bytes.
#[repr(C)]
pub struct ProxyDef {
    pub kind: c_int,
    pub proxy: c_int,
    pub flags: c_int,
    pub name: *mut c_char,
    pub description: *mut c_char,
    pub event_type: c_int,
    pub config_map: *mut c_void,
}

/// `struct flb_api` as Fluent Bit lays it out (9 pointers).
#[repr(C)]
struct FlbApi {
    output_get_property: usize,
    input_get_property: extern "C" fn(*const c_char, *mut c_void) -> *const c_char,
    output_get_cmt_instance: usize,
    input_get_cmt_instance: usize,
    /// The C prototype is variadic: `(int, const char *, int, const char *fmt, ...)`. The plugin
    /// always calls it with fmt "%s" and exactly one `char *`; on x86_64 and aarch64 Linux a
    /// non-variadic function with that fifth parameter receives it in the same register, so
    /// this Rust function is call-compatible for that call (not for variadic calls in general).
    log_print: extern "C" fn(c_int, *const c_char, c_int, *const c_char, *const c_char),
    input_log_check: extern "C" fn(*mut c_void, c_int) -> c_int,
    output_log_check: usize,
    custom_get_property: usize,
    custom_log_check: usize,
}

/// `struct flbgo_input_plugin` of Fluent Bit >= 4.1 (the private callback slots included).
#[repr(C)]
struct InputPlugin {
    name: *mut c_char,
    api: *const FlbApi,
    i_ins: *mut c_void,
    context: *mut c_void,
    private: [usize; 6],
}

/// The per-instance context of Fluent Bit >= 4.1: `{coll_fd, remote_context, proxy}`.
#[repr(C)]
struct ContextV41 {
    coll_fd: c_int,
    remote_context: *mut c_void,
    proxy: *mut c_void,
}

/// The context before 4.1: `{remote_context, proxy}`; `proxy` is never NULL there.
#[repr(C)]
struct ContextLegacy {
    remote_context: *mut c_void,
    proxy: *mut c_void,
}

/// Which Fluent Bit the harness pretends to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// 4.1 and later: Ctx callbacks and `remote_context` at offset 8.
    V41,
    /// 2.2 – 4.0: non-Ctx callbacks, offset 8 holds the `proxy` pointer.
    Legacy,
}

/// Stands in for `struct flb_input_instance`: the instance's properties and `log_level`.
struct FakeInstance {
    /// Lower-cased keys: Fluent Bit matches property names case-insensitively.
    props: HashMap<String, CString>,
    log_level: c_int,
}

extern "C" fn input_get_property(key: *const c_char, ins: *mut c_void) -> *const c_char {
    if key.is_null() || ins.is_null() {
        return std::ptr::null();
    }
    // SAFETY: `ins` is the `FakeInstance` the harness put in `i_ins`, alive while the
    // instance exists; `key` is the plugin's NUL-terminated key.
    let (ins, key) = unsafe { (&*(ins as *const FakeInstance), CStr::from_ptr(key)) };
    let key = key.to_string_lossy().to_ascii_lowercase();
    match ins.props.get(&key) {
        // Fluent Bit returns NULL for a property set to "".
        Some(value) if !value.as_bytes().is_empty() => value.as_ptr(),
        _ => std::ptr::null(),
    }
}

extern "C" fn input_log_check(ins: *mut c_void, level: c_int) -> c_int {
    if ins.is_null() {
        return 0;
    }
    // SAFETY: as in `input_get_property`.
    let ins = unsafe { &*(ins as *const FakeInstance) };
    c_int::from(ins.log_level >= level)
}

/// Every line the plugin logged, in order, with its level.
static LOGS: Mutex<Vec<(c_int, String)>> = Mutex::new(Vec::new());

extern "C" fn log_print(
    level: c_int,
    _file: *const c_char,
    _line: c_int,
    fmt: *const c_char,
    arg: *const c_char,
) {
    // SAFETY: the plugin passes NUL-terminated strings for fmt and its single argument.
    let (fmt, arg) = unsafe { (CStr::from_ptr(fmt), CStr::from_ptr(arg)) };
    assert_eq!(fmt, c"%s", "the plugin must log through a fixed format");
    let line = arg.to_string_lossy().into_owned();
    // Fluent Bit's logger knows only its own threads: from the plugin's, a line would go to
    // stderr instead of Fluent Bit's `log_file`.
    // (The OS's name: the library's threads are foreign to this binary's std.)
    let thread = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
    if thread.trim_end() == op_events_input::pipeline::THREAD_NAME {
        LOGGED_ON_PLUGIN_THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    LOGS.lock().unwrap().push((level, line));
}

static LOGGED_ON_PLUGIN_THREADS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Lines the plugin logged from its own threads (Fluent Bit would lose them from its log file).
pub fn logged_on_plugin_threads() -> usize {
    LOGGED_ON_PLUGIN_THREADS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The log lines so far that contain `needle`.
pub fn logs_containing(needle: &str) -> Vec<(c_int, String)> {
    LOGS.lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| l.contains(needle))
        .cloned()
        .collect()
}

pub fn all_logs() -> Vec<(c_int, String)> {
    LOGS.lock().unwrap().clone()
}

type RegisterFn = unsafe extern "C" fn(*mut ProxyDef) -> c_int;
type InitFn = unsafe extern "C" fn(*mut InputPlugin) -> c_int;
type CollectCtxFn = unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut usize) -> c_int;
type CollectFn = unsafe extern "C" fn(*mut *mut c_void, *mut usize) -> c_int;
type CleanupCtxFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type CleanupFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type VoidFn = unsafe extern "C" fn();
type PreExitFn = unsafe extern "C" fn(c_int);
type ExitFn = unsafe extern "C" fn() -> c_int;

/// The exported symbols, looked up once the way Fluent Bit's `dlsym` calls do.
#[derive(Clone, Copy)]
pub struct Symbols {
    pub register: RegisterFn,
    pub unregister: unsafe extern "C" fn(*mut ProxyDef),
    init: InitFn,
    pub collect_ctx: CollectCtxFn,
    pub collect: CollectFn,
    pub cleanup_ctx: CleanupCtxFn,
    pub cleanup: CleanupFn,
    pub pause: VoidFn,
    pub resume: VoidFn,
    pub pre_exit: PreExitFn,
    pub exit: ExitFn,
}

/// The cdylib cargo built for this very test run. It lands in `deps/`, beside the test binary;
/// the copy in `target/<profile>/` is only refreshed when the library itself is a requested
/// target, so loading that one would test stale code.
pub fn library_path() -> PathBuf {
    const NAME: &str = "libop_events_input.so";
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let fresh = deps.join(NAME);
    if fresh.exists() {
        return fresh;
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "op-events", "--lib"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p op-events --lib failed");
    let built = deps.parent().expect("target/<profile>").join(NAME);
    assert!(built.exists(), "{} was not built", built.display());
    built
}

/// One loaded copy of the plugin, as one Fluent Bit process has it.
pub struct FluentBit {
    pub sym: Symbols,
    plugin: Mutex<Box<InputPlugin>>,
    _api: Box<FlbApi>,
    pub layout: Layout,
}

// SAFETY: the raw pointers inside are only touched under the `plugin` mutex or point to
// immutable, leaked data (API table, plugin name).
unsafe impl Send for FluentBit {}
// SAFETY: as above.
unsafe impl Sync for FluentBit {}

impl FluentBit {
    /// Loads a private copy of the library, so each test has its own plugin globals (a
    /// second `dlopen` of the same path would share them). The copy lives in its own
    /// temporary directory, removed once loaded (the mapping keeps the file alive).
    pub fn load(layout: Layout) -> Arc<Self> {
        let original = library_path();
        let dir = tempfile::Builder::new()
            .prefix("op-events-harness-")
            .tempdir()
            .unwrap();
        let copy = dir.path().join("onepassword.so");
        std::fs::copy(&original, &copy).unwrap();
        // SAFETY: loading our own cdylib runs no constructors with preconditions.
        let lib = unsafe { libloading::Library::new(&copy) }.expect("dlopen");
        // SAFETY: each symbol is looked up with the C signature the plugin exports it with.
        let sym = unsafe {
            Symbols {
                register: *lib.get(b"FLBPluginRegister\0").unwrap(),
                unregister: *lib.get(b"FLBPluginUnregister\0").unwrap(),
                init: *lib.get(b"FLBPluginInit\0").unwrap(),
                collect_ctx: *lib.get(b"FLBPluginInputCallbackCtx\0").unwrap(),
                collect: *lib.get(b"FLBPluginInputCallback\0").unwrap(),
                cleanup_ctx: *lib.get(b"FLBPluginInputCleanupCallbackCtx\0").unwrap(),
                cleanup: *lib.get(b"FLBPluginInputCleanupCallback\0").unwrap(),
                pause: *lib.get(b"FLBPluginInputPause\0").unwrap(),
                resume: *lib.get(b"FLBPluginInputResume\0").unwrap(),
                pre_exit: *lib.get(b"FLBPluginInputPreExit\0").unwrap(),
                exit: *lib.get(b"FLBPluginExit\0").unwrap(),
            }
        };
        // Never dlclose: background threads of an instance that failed a test may still run,
        // and Fluent Bit doesn't unmap it either (ABI doc §10).
        std::mem::forget(lib);
        drop(dir);
        let api = Box::new(FlbApi {
            output_get_property: 0,
            input_get_property,
            output_get_cmt_instance: 0,
            input_get_cmt_instance: 0,
            log_print,
            input_log_check,
            output_log_check: 0,
            custom_get_property: 0,
            custom_log_check: 0,
        });
        let plugin = Box::new(InputPlugin {
            name: c"onepassword".as_ptr().cast_mut(),
            api: &*api,
            i_ins: std::ptr::null_mut(),
            context: std::ptr::null_mut(),
            private: [0; 6],
        });
        Arc::new(Self {
            sym,
            plugin: Mutex::new(plugin),
            _api: api,
            layout,
        })
    }

    /// `FLBPluginRegister` on a calloc'd 48-byte def whose `type` Fluent Bit set to 0.
    pub fn register(&self) -> Def {
        // SAFETY: calloc of the 5.1.1 def size; freed in `Def::drop`.
        let def = unsafe { libc::calloc(1, std::mem::size_of::<ProxyDef>()) }.cast::<ProxyDef>();
        assert!(!def.is_null());
        // SAFETY: a valid, zeroed def.
        let ret = unsafe { (self.sym.register)(def) };
        assert_eq!(ret, 0, "Register must return 0");
        Def(def)
    }

    pub fn unregister(&self, def: &Def) {
        // SAFETY: a def that went through Register.
        unsafe { (self.sym.unregister)(def.0) };
    }

    /// Starts an instance thread, runs Init on it (serialized, like Fluent Bit), and returns
    /// the handle with Init's return value.
    pub fn start(self: &Arc<Self>, props: &[(&str, &[u8])], log_level: c_int) -> (Instance, c_int) {
        let fake = Box::new(FakeInstance {
            props: props
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), CString::new(*v).unwrap()))
                .collect(),
            log_level,
        });
        let (tx, rx) = mpsc::channel::<Command>();
        let (ret_tx, ret_rx) = mpsc::channel::<Reply>();
        let fb = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name(INSTANCE_THREAD.into())
            .spawn(move || instance_thread(fb, fake, rx, ret_tx))
            .expect("instance thread starts");
        let Reply::Code(init) = ret_rx.recv().expect("init reply") else {
            unreachable!()
        };
        (
            Instance {
                tx,
                rx: ret_rx,
                thread: Some(thread),
            },
            init,
        )
    }

    /// [`start`](Self::start) for an instance that must come up: fails the test with every
    /// log line when Init does not return 1.
    pub fn started(self: &Arc<Self>, props: &[(&str, &[u8])], log_level: c_int) -> Instance {
        let (instance, code) = self.start(props, log_level);
        assert_eq!(code, 1, "Init failed: {:#?}", all_logs());
        instance
    }

    /// Calls `FLBPluginInit` directly with a plugin struct the caller corrupts on purpose.
    pub fn init_raw_null(&self) -> c_int {
        // SAFETY: NULL is what the test checks.
        unsafe { (self.sym.init)(std::ptr::null_mut()) }
    }
}

/// A registered def: calloc'd by the "Fluent Bit" side, freed after Unregister.
pub struct Def(pub *mut ProxyDef);

impl Def {
    pub fn name(&self) -> String {
        // SAFETY: Register set a NUL-terminated name that lives until Unregister.
        unsafe { CStr::from_ptr((*self.0).name) }
            .to_string_lossy()
            .into_owned()
    }
    pub fn description(&self) -> String {
        // SAFETY: as for `name`.
        unsafe { CStr::from_ptr((*self.0).description) }
            .to_string_lossy()
            .into_owned()
    }
    /// `(type, proxy, flags, event_type, config_map)`: the last two must stay untouched.
    pub fn header(&self) -> (c_int, c_int, c_int, c_int, *mut c_void) {
        // SAFETY: a live def.
        let d = unsafe { &*self.0 };
        (d.kind, d.proxy, d.flags, d.event_type, d.config_map)
    }
}

impl Drop for Def {
    fn drop(&mut self) {
        // SAFETY: allocated with calloc in `register`.
        unsafe { libc::free(self.0.cast()) };
    }
}

/// Where a host puts a buffer before cleanup (Fluent Bit's append).
pub type Append = Box<dyn FnMut(&[u8]) + Send>;

enum Command {
    Collect,
    CollectWith(Append),
    Ticks(usize),
    Pause,
    Resume,
    PreExit(c_int),
    Exit,
}

enum Reply {
    Code(c_int),
    Data(Option<Vec<u8>>, Timing),
    Ticks(Ticks),
}

/// What `Instance::ticks` saw: buffers handed over, their bytes, and how long each collect
/// call took (collect only, not the copy or cleanup that follow it).
#[derive(Debug, Default)]
pub struct Ticks {
    pub buffers: usize,
    pub bytes: usize,
    pub collect_nanos: Vec<u64>,
}

/// One instance: commands run on its own thread, like Fluent Bit's `flb-in-onepassword.N`.
pub struct Instance {
    tx: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
}

impl Instance {
    fn call(&self, command: Command) -> Reply {
        self.tx.send(command).expect("instance thread alive");
        self.rx.recv().expect("instance reply")
    }

    /// One timer tick: collect, and if a buffer came back, copy it (as Fluent Bit's append
    /// does) and call cleanup. `None` when collect handed over nothing.
    pub fn collect(&self) -> Option<Vec<u8>> {
        self.collect_timed().0
    }

    /// `collect`, with how long the collect call itself took.
    pub fn collect_timed(&self) -> (Option<Vec<u8>>, Timing) {
        match self.call(Command::Collect) {
            Reply::Data(data, nanos) => (data, nanos),
            _ => unreachable!(),
        }
    }

    /// One tick whose buffer goes to `append` before cleanup acks it, as Fluent Bit appends to
    /// its chunk: what `append` has stored is delivered, whenever the process dies. Returns
    /// whether a buffer was handed over.
    pub fn collect_with(&self, append: Append) -> bool {
        match self.call(Command::CollectWith(append)) {
            Reply::Data(data, _) => data.is_some(),
            _ => unreachable!(),
        }
    }

    /// `n` collect/cleanup cycles back to back on the instance thread, without keeping data.
    pub fn ticks(&self, n: usize) -> Ticks {
        match self.call(Command::Ticks(n)) {
            Reply::Ticks(ticks) => ticks,
            _ => unreachable!(),
        }
    }

    fn code(&self, command: Command) -> c_int {
        match self.call(command) {
            Reply::Code(code) => code,
            _ => unreachable!(),
        }
    }

    pub fn pause(&self) {
        self.code(Command::Pause);
    }
    pub fn resume(&self) {
        self.code(Command::Resume);
    }
    pub fn pre_exit(&self, hot_reload: bool) {
        self.code(Command::PreExit(c_int::from(hot_reload)));
    }
    /// Fluent Bit's teardown of an input, at shutdown or (`hot_reload`) for a reload: Pause
    /// twice, PreExit, then Exit, which must succeed.
    pub fn stop(self, hot_reload: bool) {
        self.pause();
        self.pause();
        self.pre_exit(hot_reload);
        assert_eq!(self.exit(), 1);
    }

    /// Exit, then the instance thread ends (Fluent Bit frees the instance).
    pub fn exit(mut self) -> c_int {
        let code = self.code(Command::Exit);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        code
    }
}

fn instance_thread(
    fb: Arc<FluentBit>,
    fake: Box<FakeInstance>,
    rx: mpsc::Receiver<Command>,
    tx: mpsc::Sender<Reply>,
) {
    let fake = Box::into_raw(fake);
    let mut ctx41 = Box::new(ContextV41 {
        coll_fd: 0,
        remote_context: std::ptr::null_mut(),
        proxy: std::ptr::null_mut(),
    });
    let mut legacy = Box::new(ContextLegacy {
        remote_context: std::ptr::null_mut(),
        // Any non-NULL value: the plugin must never write over it.
        proxy: 0xdead_0000usize as *mut c_void,
    });
    let context: *mut c_void = match fb.layout {
        Layout::V41 => (&mut *ctx41 as *mut ContextV41).cast(),
        Layout::Legacy => (&mut *legacy as *mut ContextLegacy).cast(),
    };
    let init = {
        let mut plugin = fb.plugin.lock().unwrap();
        plugin.i_ins = fake.cast();
        plugin.context = context;
        // SAFETY: a fully set up plugin struct; the lock serializes inits like Fluent Bit.
        unsafe { (fb.sym.init)(&mut **plugin) }
    };
    if fb.layout == Layout::Legacy {
        assert_eq!(
            legacy.proxy as usize, 0xdead_0000,
            "the plugin overwrote the legacy proxy pointer"
        );
    }
    tx.send(Reply::Code(init)).unwrap();
    let remote = ctx41.remote_context;
    for command in rx {
        let reply = match command {
            Command::Collect => {
                let (data, timing) = tick(&fb, remote, &mut |b| b.to_vec());
                Reply::Data(data, timing)
            }
            Command::CollectWith(mut append) => {
                let (stored, timing) = tick(&fb, remote, &mut |b| append(b));
                Reply::Data(stored.map(|()| Vec::new()), timing)
            }
            Command::Ticks(n) => {
                let mut ticks = Ticks {
                    collect_nanos: Vec::with_capacity(n),
                    ..Ticks::default()
                };
                for _ in 0..n {
                    let (len, timing) = tick(&fb, remote, &mut |b| b.len());
                    ticks.collect_nanos.push(timing.wall);
                    if let Some(len) = len {
                        ticks.buffers += 1;
                        ticks.bytes += len;
                    }
                }
                Reply::Ticks(ticks)
            }
            Command::Pause => {
                // SAFETY: exported `void (void)`.
                unsafe { (fb.sym.pause)() };
                Reply::Code(0)
            }
            Command::Resume => {
                // SAFETY: as above.
                unsafe { (fb.sym.resume)() };
                Reply::Code(0)
            }
            Command::PreExit(flag) => {
                // SAFETY: exported `void (int)`.
                unsafe { (fb.sym.pre_exit)(flag) };
                Reply::Code(0)
            }
            Command::Exit => {
                // SAFETY: exported `int (void)`.
                let code = unsafe { (fb.sym.exit)() };
                tx.send(Reply::Code(code)).unwrap();
                break;
            }
        };
        tx.send(reply).unwrap();
    }
    // SAFETY: from `Box::into_raw` above; the plugin no longer uses `i_ins` after Exit.
    drop(unsafe { Box::from_raw(fake) });
}

/// How long one collect call took, in nanoseconds: on the clock, and on the CPU (the
/// difference is the calling thread waiting: preempted, or on a lock); and the CPU time of the
/// cleanup call that followed it, if any.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    pub wall: u64,
    pub cpu: u64,
    pub cleanup_cpu: u64,
}

/// CPU time of the calling thread, user and kernel, in nanoseconds.
pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for the calling thread's CPU clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// `flb_proxy_input_cb_collect`: len 0 → nothing; -1 → nothing; else append (`append` sees
/// the buffer, like Fluent Bit's copy) + cleanup. Also returns how long the calls took.
fn tick<T>(
    fb: &FluentBit,
    remote: *mut c_void,
    append: &mut dyn FnMut(&[u8]) -> T,
) -> (Option<T>, Timing) {
    let mut data: *mut c_void = std::ptr::null_mut();
    let mut len: usize = 0;
    let cpu_started = thread_cpu_nanos();
    let started = std::time::Instant::now();
    // SAFETY: valid out-pointers; `remote` is what Init stored.
    let ret = unsafe {
        match fb.layout {
            Layout::V41 => (fb.sym.collect_ctx)(remote, &mut data, &mut len),
            Layout::Legacy => (fb.sym.collect)(&mut data, &mut len),
        }
    };
    let mut timing = Timing {
        wall: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        cpu: thread_cpu_nanos().saturating_sub(cpu_started),
        cleanup_cpu: 0,
    };
    if len == 0 || ret == -1 {
        return (None, timing);
    }
    assert!(!data.is_null(), "len > 0 with a NULL buffer");
    // SAFETY: the plugin returned `len` readable bytes at `data`.
    let appended = append(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) });
    let cleanup_started = thread_cpu_nanos();
    // SAFETY: cleanup of the buffer just returned, exactly once.
    unsafe {
        match fb.layout {
            Layout::V41 => (fb.sym.cleanup_ctx)(remote, data),
            Layout::Legacy => (fb.sym.cleanup)(data),
        };
    }
    timing.cleanup_cpu = thread_cpu_nanos().saturating_sub(cleanup_started);
    (Some(appended), timing)
}

/// Raw collect through the Ctx symbol with arbitrary arguments (NULL handling tests).
///
/// # Safety
/// Only for NULL/garbage-context checks: `data`/`len` must be NULL or valid.
pub unsafe fn collect_ctx_raw(
    fb: &FluentBit,
    remote: usize,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { (fb.sym.collect_ctx)(remote as *mut c_void, data, len) }
}

pub mod docs;
pub mod events;
pub mod installed;
pub mod source;
