//! The host's log output: `tracing` events to stderr, filtered by
//! `PYROLAB_LOG` (an `EnvFilter` directive such as `info` or
//! `pyrolab_host=debug`), else by the `-v` count. Plugin libraries log
//! through [`plugin_log_sink`], which re-emits their events here.

use std::io::IsTerminal;

use abi_stable::std_types::RStr;
use pyrolab_plugin_api::abi::{LogSink, level};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "PYROLAB_LOG";

/// Installs the stderr subscriber. `verbosity` is the number of `-v` flags
/// (0 = warnings and errors only).
pub fn init(verbosity: u8) {
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
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
