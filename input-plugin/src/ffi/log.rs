//! Logs through Fluent Bit's own logger (`api->log_print`), so plugin messages land wherever
//! Fluent Bit logs go, with its timestamps, and honour the instance's `log_level`.

use std::collections::VecDeque;
use std::ffi::{CString, c_char, c_int};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// `void log_print(int level, const char *file, int line, const char *fmt, ...)`.
pub(super) type LogPrintFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, ...);

/// Fluent Bit's numeric log levels (`flb_log.h`).
pub(super) fn flb_level(level: Level) -> c_int {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The most verbose level first, so the first enabled one is the instance's `log_level`.
pub(super) const LEVELS_VERBOSE_FIRST: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];

/// Most lines kept from the plugin's own threads between two collects.
const BACKLOG_LINES: usize = 1000;

/// One instance's way into Fluent Bit's log. Fluent Bit frees the API table and the instance
/// after `FLBPluginExit`, so `close` makes later messages (from a thread that outlived the
/// shutdown grace period) a no-op instead of a call into freed memory.
pub(super) struct LogSink {
    log_print: Option<LogPrintFn>,
    prefix: String,
    max_level: LevelFilter,
    /// The instance's `token` option, hidden in every line with every token the process has
    /// read and anything token-shaped ([`crate::token::redact_held`]).
    secret: Option<String>,
    open: RwLock<bool>,
    /// Lines logged on the collector's threads, which Fluent Bit's logger does not know: it
    /// would write them to stderr, not to its `log_file`. Written from Fluent Bit's thread at
    /// the next collect (every second) or log line there.
    backlog: Mutex<Backlog>,
}

#[derive(Default)]
struct Backlog {
    lines: VecDeque<(Level, CString)>,
    dropped: usize,
}

impl LogSink {
    pub(super) fn new(
        log_print: Option<LogPrintFn>,
        prefix: String,
        max_level: LevelFilter,
    ) -> Self {
        Self {
            log_print,
            prefix,
            max_level,
            secret: None,
            open: RwLock::new(true),
            backlog: Mutex::default(),
        }
    }

    pub(super) fn with_secret(mut self, secret: Option<String>) -> Self {
        self.secret = secret.filter(|s| !s.is_empty());
        self
    }

    pub(super) fn enabled(&self, level: Level) -> bool {
        self.max_level >= level
    }

    pub(super) fn write(&self, level: Level, message: &str) {
        if !self.enabled(level) {
            return;
        }
        let Some(log_print) = self.log_print else {
            return;
        };
        // As the binary's log lines: a message may quote an option's value, a path or a server's
        // words, and a token there is hidden whether it is this instance's or only looks like one.
        // NUL, a control character, is escaped too.
        let line = crate::token::redact_line(
            &format!("[{}] {message}", self.prefix),
            self.secret.as_deref(),
        );
        let line = CString::new(line).unwrap_or_default();
        if std::thread::current().name() == Some(crate::pipeline::THREAD_NAME) {
            let mut backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            if backlog.lines.len() == BACKLOG_LINES {
                backlog.lines.pop_front();
                backlog.dropped += 1;
            }
            backlog.lines.push_back((level, line));
            return;
        }
        self.write_backlog();
        self.print(log_print, level, &line);
    }

    /// Writes what the collector's threads logged; call on a Fluent Bit thread.
    pub(super) fn write_backlog(&self) {
        let Some(log_print) = self.log_print else {
            return;
        };
        let Backlog { lines, dropped } =
            std::mem::take(&mut *self.backlog.lock().unwrap_or_else(|e| e.into_inner()));
        if dropped > 0 {
            let line = format!("[{}] {dropped} earlier log lines dropped", self.prefix);
            self.print(
                log_print,
                Level::WARN,
                &CString::new(line).unwrap_or_default(),
            );
        }
        for (level, line) in lines {
            self.print(log_print, level, &line);
        }
    }

    fn print(&self, log_print: LogPrintFn, level: Level, line: &CString) {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if !*open {
            return;
        }
        // SAFETY: `log_print` comes from Fluent Bit's API table, which stays valid while the
        // sink is open (checked above, under the lock that `close` takes). The format is "%s"
        // with exactly one NUL-terminated string argument, as the C prototype expects.
        unsafe {
            log_print(
                flb_level(level),
                std::ptr::null(),
                0,
                c"%s".as_ptr(),
                line.as_ptr(),
            )
        };
    }

    pub(super) fn close(&self) {
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = false;
    }
}

/// Forwards `tracing` events of the collector core to one instance's sink.
struct FluentBitLayer(Arc<LogSink>);

impl<S: Subscriber> Layer<S> for FluentBitLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if !self.0.enabled(level) {
            return;
        }
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        self.0.write(level, &visitor.finish());
    }
}

/// Renders `message` first, then the other fields as `key=value`.
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl LineVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_owned()
        } else {
            self.message + &self.fields
        }
    }
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The dispatch handed to `Collector::start`: everything the core logs for this instance goes
/// to Fluent Bit, filtered by the instance's `log_level` before any formatting happens.
pub(super) fn dispatch(sink: Arc<LogSink>) -> tracing::Dispatch {
    let filter = sink.max_level;
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(FluentBitLayer(sink));
    tracing::Dispatch::new(subscriber)
}
