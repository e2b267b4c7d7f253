//! The host's log output: `tracing` events to stderr, filtered by
//! `PYROLAB_LOG` (an `EnvFilter` directive such as `info` or
//! `pyrolab_host=debug`), else by the `-v` count. Plugin libraries log
//! through [`PLUGIN_LOG_SINK`], which re-emits their events here.

use crate::sync::LockUnpoisoned;
use std::io::IsTerminal;

use abi_stable::std_types::RStr;
use pyrolab_plugin_api::abi::{LogSink, level};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::lab::logfile::SharedLog;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "PYROLAB_LOG";

/// Where log events go.
pub enum Output {
    /// To stderr (commands, and components run by hand).
    Stderr,
    /// To stderr without timestamps: a component run by the manager,
    /// which stamps each line as it writes it to the component's log.
    Supervised,
    /// The manager: to its log file, and to stderr too when it runs in the
    /// foreground of a terminal or service manager.
    Manager {
        /// Its log file.
        log: SharedLog,
        /// Whether stderr gets them too.
        stderr: bool,
    },
}

/// Installs the subscriber. `verbosity` is the number of `-v` flags
/// (0 = warnings and errors only).
pub fn init(verbosity: u8, output: Output) {
    let default = match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(default.into())
        .with_env_var(LOG_ENV)
        .from_env_lossy();
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // A closed stderr (the manager of a supervised component died) must
    // not make logging panic, which the subscriber's own error report to
    // stderr would.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false);
    let _ = match output {
        Output::Stderr => builder
            .with_writer(std::io::stderr)
            .with_ansi(colour)
            .try_init(),
        Output::Supervised => builder
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
            .try_init(),
        Output::Manager { log, stderr: true } => builder
            .with_writer(FileWriter(log).and(std::io::stderr))
            .with_ansi(false)
            .try_init(),
        Output::Manager { log, stderr: false } => builder
            .with_writer(FileWriter(log))
            .with_ansi(false)
            .try_init(),
    };
}

/// Writes each event into a log file, rotated as it grows.
#[derive(Clone)]
struct FileWriter(SharedLog);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl std::io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock_unpoisoned().append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The most verbose level plugins should send, in the ABI's numbering.
pub fn plugin_max_level() -> u8 {
    match LevelFilter::current() {
        LevelFilter::OFF => level::OFF,
        LevelFilter::ERROR => level::ERROR,
        LevelFilter::WARN => level::WARN,
        LevelFilter::INFO => level::INFO,
        LevelFilter::DEBUG => level::DEBUG,
        _ => level::TRACE,
    }
}

/// The sink handed to every library at load time.
pub const PLUGIN_LOG_SINK: LogSink = LogSink {
    log: plugin_log_event,
};

/// Re-emits one plugin log event. The plugin's own target (its module path)
/// is kept as a field, since `tracing` targets must be static.
extern "C" fn plugin_log_event(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let target = target.as_str();
    let message = message.as_str();
    match level {
        level::ERROR => tracing::error!(target: "plugin", plugin = target, "{message}"),
        level::WARN => tracing::warn!(target: "plugin", plugin = target, "{message}"),
        level::INFO => tracing::info!(target: "plugin", plugin = target, "{message}"),
        level::DEBUG => tracing::debug!(target: "plugin", plugin = target, "{message}"),
        _ => tracing::trace!(target: "plugin", plugin = target, "{message}"),
    }
}
