//! The YAML launch configuration: how a lab describes its name servers,
//! daemons and services, as PyroLab's `config.yaml` does.
//!
//! [`load_file`] reads and checks a file, reporting every problem with its
//! line and column (see [`Diagnostic`]); [`ConfigStore`] keeps the
//! configuration `pyrolab-host config update` stored in the data directory.
//!
//! # Layout
//!
//! - `yaml.rs`: the YAML document as a tree of positioned nodes.
//! - `schema.rs`: the typed configuration and its defaults.
//! - `read.rs`: tree → typed configuration, collecting every problem.
//! - `check.rs`: cross-entry checks (references, collisions, addresses).
//! - `diagnostic.rs`: problems with their places; typo suggestions.
//! - `emit.rs`: the configuration written back as YAML.
//! - `store.rs`: the stored configuration in the data directory.

mod check;
pub mod diagnostic;
mod emit;
mod read;
pub mod schema;
mod store;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use emit::to_yaml;
pub use schema::LaunchConfig;
pub use store::ConfigStore;

/// Reads one command-line value as a YAML literal, typed as driver
/// parameters are: `42`, `2.5`, `true`, `null`, `[1, 2]`, `{a: 1}`,
/// `"quoted text"`; anything else is a string.
pub fn literal(text: &str) -> Result<pyrolab_plugin_api::Value, String> {
    let parsed = yaml::parse(text)
        .map_err(|err| format!("{text:?} is not a YAML value: {}", err.message))?;
    Ok(match parsed.root {
        Some(node) => read::literal_value(&node),
        None => pyrolab_plugin_api::Value::Null,
    })
}

/// The `data_dir:` of the configuration file at `path`, resolved against
/// the file's folder; `None` when it has none, or cannot be read (the
/// command that uses the file then reports why, with the line). Read on
/// its own, before the data directory is chosen: the full check may need
/// the data directory (its plugins, its lab CA).
pub fn data_dir_of(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    // Spares parsing twice the large files that do not set it.
    if !text.contains("data_dir") {
        return None;
    }
    let root = yaml::parse(&text).ok()?.root?;
    let yaml::NodeKind::Map(entries) = &root.kind else {
        return None;
    };
    let (_, value) = entries
        .iter()
        .find(|(key, _)| key.as_scalar().is_some_and(|key| key.text == "data_dir"))?;
    let text = value
        .as_scalar()
        .filter(|scalar| !scalar.is_null())?
        .text
        .as_str();
    if text.is_empty() {
        return None;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let base_dir = absolute.parent().unwrap_or(Path::new("/"));
    // `config/../.pyrolab-host` is shown, and compared, as `.pyrolab-host`.
    Some(crate::data_dir::normalized(&base_dir.join(text)))
}

/// A configuration that passed validation, and its warnings.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration, defaults filled in.
    pub config: LaunchConfig,
    /// Warnings (unknown keys, suspicious settings), in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {cause}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        cause: std::io::Error,
    },
    /// The file has errors (the diagnostics include any warnings too).
    #[error("{}: {} error{}", .path.display(), error_count(.diagnostics), if error_count(.diagnostics) == 1 { "" } else { "s" })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn error_count(diagnostics: &[Diagnostic]) -> usize {
    diagnostics.iter().filter(|d| d.is_error()).count()
}

/// Reads and checks a configuration file. `strict` makes unknown keys
/// errors (as does `strict: true` in the file).
pub fn load_file(path: &Path, strict: bool) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    })?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let base_dir = absolute.parent().unwrap_or(Path::new("/"));
    load_str(&text, path, base_dir, strict).map_err(|diagnostics| ConfigError::Invalid {
        path: path.to_owned(),
        diagnostics,
    })
}

/// Reads and checks configuration text. `file` names it in diagnostics;
/// relative paths in it are resolved against `base_dir`. On failure, returns
/// every diagnostic (errors and warnings) in file order.
pub fn load_str(
    text: &str,
    file: &Path,
    base_dir: &Path,
    strict: bool,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut diagnostics = Diagnostics::new(file);
    let parsed = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(err) => {
            diagnostics.error(err.mark, "", format!("invalid YAML: {}", err.message));
            return Err(diagnostics.into_sorted());
        }
    };
    for duplicate in &parsed.duplicates {
        diagnostics.error(
            duplicate.mark,
            "",
            format!(
                "duplicate key `{}` (first given at line {}, column {})",
                duplicate.key, duplicate.first.line, duplicate.first.column
            ),
        );
    }
    let (config, marks) = read::read(parsed.root.as_ref(), base_dir, strict, &mut diagnostics);
    // Checked even when reading found errors (a value that could not be
    // read keeps its default), so that one run reports everything.
    let source = file.file_name().map(|name| base_dir.join(name));
    check::check(&config, &marks, source.as_deref(), &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(diagnostics.into_sorted());
    }
    Ok(Loaded {
        config,
        warnings: diagnostics.into_sorted(),
    })
}

#[cfg(test)]
mod tests;
