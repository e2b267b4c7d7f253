use std::path::PathBuf;

use pyrolab_plugin_api::DriverError;

/// Why a driver could not be loaded or constructed. Each renders as one line
/// that names the library file (or, when none was found, where we looked).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No library on the search path matches the module name.
    #[error("{}", not_found_message(.module, .file_names, .searched))]
    NotFound {
        /// The module name from the configuration.
        module: String,
        /// The file names that would have matched.
        file_names: Vec<String>,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },

    /// The file does not exist or is not a loadable shared library.
    #[error("{}: cannot be loaded as a shared library: {reason}", .path.display())]
    Open {
        /// The library file.
        path: PathBuf,
        /// What the system loader said.
        reason: String,
    },

    /// A shared library, but not a pyrolab plugin.
    #[error("{}: not a pyrolab plugin (it does not export a pyrolab-plugin-api root module; was it built with `export_plugin!`?)", .path.display())]
    NotAPlugin {
        /// The library file.
        path: PathBuf,
    },

    /// Built against a plugin API this host cannot load.
    #[error(
        "{}: built against pyrolab-plugin-api {found}, but this host uses {expected} and loads only plugins built against {expected_series}; rebuild the plugin against pyrolab-plugin-api {expected_series}",
        .path.display()
    )]
    IncompatibleVersion {
        /// The library file.
        path: PathBuf,
        /// The version the library was built against.
        found: String,
        /// This host's plugin API version.
        expected: String,
        /// The compatible series, e.g. `0.1.x`.
        expected_series: String,
    },

    /// Same plugin API version, but the binary interface differs: the library
    /// was built against a modified copy, or with a different `abi_stable`.
    #[error(
        "{}: its plugin interface does not match this host's although both claim pyrolab-plugin-api {version} (built against a modified plugin API?); rebuild it against the released pyrolab-plugin-api {version}",
        .path.display()
    )]
    IncompatibleLayout {
        /// The library file.
        path: PathBuf,
        /// The version both claim.
        version: String,
    },

    /// The library's initialisation or self-description failed.
    #[error("{}: plugin initialisation failed: {reason}", .path.display())]
    Initialization {
        /// The library file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The library has no class of that name.
    #[error("{}: no class '{class}' in this library (it has: {})", .path.display(), .available.join(", "))]
    ClassNotFound {
        /// The library file.
        path: PathBuf,
        /// The class asked for.
        class: String,
        /// The classes the library exports.
        available: Vec<String>,
    },

    /// The driver's constructor returned an error or panicked.
    #[error("{}: constructing {class} failed: {error}{}", .path.display(), context_suffix(.error))]
    Constructor {
        /// The library file.
        path: PathBuf,
        /// The class being constructed.
        class: String,
        /// The driver's error (a panic arrives as a `RuntimeError`).
        error: DriverError,
    },
}

fn not_found_message(module: &str, file_names: &[String], searched: &[PathBuf]) -> String {
    if searched.is_empty() {
        return format!(
            "plugin module '{module}' not found: the plugin search path is empty (use --plugin-dir DIR or set {})",
            super::PLUGIN_PATH_ENV
        );
    }
    let dirs: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
    format!(
        "plugin module '{module}' not found: looked for {} in {}",
        file_names.join(", "),
        dirs.join(", ")
    )
}

fn context_suffix(error: &DriverError) -> String {
    let lines: Vec<&str> = error
        .context_lines()
        .iter()
        .map(String::as_str)
        .filter(|line| !line.starts_with("while constructing"))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(" ({})", lines.join("; "))
    }
}
