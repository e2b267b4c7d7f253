use crate::sync::LockUnpoisoned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use abi_stable::library::{LibHeader, LibraryError, RootModule, lib_header_from_path};
use abi_stable::sabi_types::VersionNumber;
use abi_stable::std_types::{RResult, RSlice, RStr};
use pyrolab_plugin_api::abi::PluginRootRef;
use pyrolab_plugin_api::descriptor::{ClassDescriptor, LibraryDescriptor};
use pyrolab_plugin_api::{DriverError, Value, value};

use super::instance::{ValueKinds, lowered};
use super::search::{module_names_of, normalize};
use super::{Instance, LoadError};
use crate::logging;

/// Opens libraries, each once: a second `load` of the same file returns the
/// library already open. The cache is keyed by the file's canonical path, so
/// two different files are always two different libraries.
#[derive(Default)]
pub struct Loader {
    open: Mutex<HashMap<PathBuf, Arc<Library>>>,
}

impl Loader {
    /// A loader with nothing open yet.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Opens the library at `path`, checking it is a compatible plugin.
    pub fn load(&self, path: &Path) -> Result<Arc<Library>, LoadError> {
        let canonical = path.canonicalize().map_err(|err| LoadError::Open {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
        let mut open = self.open.lock_unpoisoned();
        if let Some(library) = open.get(&canonical) {
            return Ok(Arc::clone(library));
        }
        let library = Arc::new(Library::open(&canonical)?);
        open.insert(canonical, Arc::clone(&library));
        Ok(library)
    }
}

/// An open driver library.
pub struct Library {
    path: PathBuf,
    root: PluginRootRef,
    descriptor: LibraryDescriptor,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("descriptor", &self.descriptor)
            .finish()
    }
}

impl Library {
    fn open(path: &Path) -> Result<Library, LoadError> {
        let header = lib_header_from_path(path).map_err(|err| header_error(path, err))?;
        check_version(path, header)?;
        let root = header
            .init_root_module::<PluginRootRef>()
            .map_err(|err| init_error(path, header, err))?;
        root.install_logger()(logging::PLUGIN_LOG_SINK, logging::plugin_max_level());
        let descriptor = describe(path, root)?;
        tracing::debug!(path = %path.display(), classes = descriptor.classes.len(), "plugin loaded");
        Ok(Library {
            path: path.to_owned(),
            root,
            descriptor,
        })
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the library exports.
    pub fn descriptor(&self) -> &LibraryDescriptor {
        &self.descriptor
    }

    /// The name a configuration's `module:` uses for this library: its crate
    /// name when the file is named after it, else the file name without
    /// `lib` prefix and extension.
    pub fn module_name(&self) -> String {
        let names = module_names_of(&self.path);
        let crate_name = normalize(&self.descriptor.crate_name);
        names
            .iter()
            .find(|name| normalize(name) == crate_name)
            .or_else(|| names.first())
            .cloned()
            .unwrap_or_else(|| self.descriptor.crate_name.clone())
    }

    /// A class's description.
    pub fn class(&self, name: &str) -> Result<&ClassDescriptor, LoadError> {
        self.descriptor
            .classes
            .iter()
            .find(|class| class.name == name)
            .ok_or_else(|| LoadError::ClassNotFound {
                path: self.path.clone(),
                class: name.to_owned(),
                available: self.class_names(),
            })
    }

    fn class_names(&self) -> Vec<String> {
        self.descriptor
            .classes
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Constructs an instance of `class` from the service's `parameters`
    /// (`Value::Null` when the configuration gives none).
    pub fn create(&self, class: &str, parameters: &Value) -> Result<Instance, LoadError> {
        let descriptor = self.class(class)?.clone();
        let kinds = ValueKinds::of(&self.descriptor.plugin_api_version);
        let encoded = match kinds {
            ValueKinds::All | ValueKinds::AllAndLending | ValueKinds::AllLendingAndStreams => {
                value::encode(parameters)
            }
            ValueKinds::First => {
                let parameters = lowered(parameters.clone(), "__init__").map_err(|error| {
                    LoadError::Constructor {
                        path: self.path.clone(),
                        class: class.to_owned(),
                        error,
                    }
                })?;
                value::encode(&parameters)
            }
        };
        let created = self.root.create()(RStr::from_str(class), RSlice::from_slice(&encoded));
        match created {
            RResult::ROk(handle) => Ok(Instance::new(handle, Arc::new(descriptor), kinds)),
            RResult::RErr(bytes) => Err(LoadError::Constructor {
                path: self.path.clone(),
                class: class.to_owned(),
                error: decode_error(&bytes),
            }),
        }
    }
}

/// Decodes an error a library sent; garbage becomes a `RuntimeError` saying so.
pub(super) fn decode_error(bytes: &[u8]) -> DriverError {
    value::decode(bytes)
        .map_err(|err| err.to_string())
        .and_then(|v| DriverError::from_value(&v).map_err(|err| err.to_string()))
        .unwrap_or_else(|reason| {
            DriverError::runtime(format!("the driver sent a malformed error: {reason}"))
        })
}

fn header_error(path: &Path, err: LibraryError) -> LoadError {
    match err {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path: path.to_owned(),
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            path: path.to_owned(),
        },
        LibraryError::InvalidAbiHeader(_) => LoadError::Initialization {
            path: path.to_owned(),
            reason: "the library was built with an incompatible abi_stable runtime; rebuild it against this host's pyrolab-plugin-api".to_owned(),
        },
        other => LoadError::Initialization {
            path: path.to_owned(),
            reason: first_line(&other.to_string()),
        },
    }
}

/// Refuses a library built against a plugin API that is not
/// semver-compatible with ours, before its layout is even looked at, so the
/// user reads one line with both versions rather than a layout comparison.
fn check_version(path: &Path, header: &LibHeader) -> Result<(), LoadError> {
    let expected = PluginRootRef::VERSION_STRINGS;
    let expected_text = host_plugin_api_version();
    let found_text = header.version_strings().version.to_string();
    let incompatible = || LoadError::IncompatibleVersion {
        path: path.to_owned(),
        found: found_text.clone(),
        expected: expected_text.clone(),
        expected_series: loadable_plugin_api_series(),
    };
    let expected = VersionNumber::new(expected).map_err(|_| incompatible())?;
    let found = VersionNumber::new(header.version_strings()).map_err(|_| incompatible())?;
    let compatible = if expected.major == 0 {
        found.major == 0 && found.minor == expected.minor
    } else {
        found.major == expected.major
    };
    if compatible {
        Ok(())
    } else {
        Err(incompatible())
    }
}

/// The `pyrolab-plugin-api` version this host was built with: what each
/// library's recorded version is checked against.
pub fn host_plugin_api_version() -> String {
    PluginRootRef::VERSION_STRINGS.version.to_string()
}

/// The plugin-api versions a driver may have been built against to load in
/// this host (`0.1.x`): the plugin ABI it must match. `--version` and
/// `plugins list` show it; [`check_version`] enforces it.
pub fn loadable_plugin_api_series() -> String {
    compatible_series(&host_plugin_api_version())
}

/// `0.1.4` → `0.1.x`; `1.2.0` → `1.x`.
fn compatible_series(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}.x"),
        (Some(major), _) => format!("{major}.x"),
        _ => version.to_owned(),
    }
}

fn init_error(path: &Path, header: &LibHeader, err: LibraryError) -> LoadError {
    match err {
        LibraryError::AbiInstability(details) => {
            // The full layout comparison is pages long: keep it for whoever
            // debugs the plugin API itself, not for the user.
            tracing::debug!(path = %path.display(), "plugin layout mismatch:\n{details}");
            LoadError::IncompatibleLayout {
                path: path.to_owned(),
                version: header.version_strings().version.to_string(),
            }
        }
        other => LoadError::Initialization {
            path: path.to_owned(),
            reason: first_line(&other.to_string()),
        },
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(400)
        .collect()
}

fn describe(path: &Path, root: PluginRootRef) -> Result<LibraryDescriptor, LoadError> {
    let failed = |reason: String| LoadError::Initialization {
        path: path.to_owned(),
        reason: format!("cannot read the library's description: {reason}"),
    };
    let bytes = root.describe()();
    let value = value::decode(&bytes).map_err(|err| failed(err.to_string()))?;
    if let Some(error) = value.get("error") {
        let error = DriverError::from_value(error).map_err(|err| failed(err.to_string()))?;
        return Err(failed(error.to_string()));
    }
    value::from_value(value).map_err(|err| failed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_series_follows_cargo_semver() {
        assert_eq!(compatible_series("0.1.4"), "0.1.x");
        assert_eq!(compatible_series("1.2.0"), "1.x");
    }
}
