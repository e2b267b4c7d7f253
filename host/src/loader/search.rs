use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::LoadError;
use crate::data_dir::DataDir;

/// The environment variable listing extra plugin directories (a path list:
/// `:`-separated on Unix, `;` on Windows).
pub const PLUGIN_PATH_ENV: &str = "PYROLAB_PLUGIN_PATH";

/// Where system packages install drivers: the .deb puts the bundled ones
/// here (packaging/, docs/install.md).
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/pyrolab-host/plugins";

/// The environment variable that replaces [`SYSTEM_PLUGIN_DIR`] (empty for
/// none): for an installation under another prefix, and for tests, which
/// must not see what happens to be installed.
pub const SYSTEM_PLUGIN_DIR_ENV: &str = "PYROLAB_SYSTEM_PLUGIN_DIR";

/// The system plugin directory: `PYROLAB_SYSTEM_PLUGIN_DIR` if set (none
/// if empty), else [`SYSTEM_PLUGIN_DIR`] on Unix, none elsewhere.
pub fn system_plugin_dir() -> Option<PathBuf> {
    match std::env::var_os(SYSTEM_PLUGIN_DIR_ENV) {
        Some(dir) => (!dir.is_empty()).then(|| PathBuf::from(dir)),
        None => cfg!(unix).then(|| PathBuf::from(SYSTEM_PLUGIN_DIR)),
    }
}

/// The directories searched for driver libraries, in priority order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginSearchPath {
    dirs: Vec<PathBuf>,
}

impl PluginSearchPath {
    /// A search path of exactly these directories.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        let mut seen = HashSet::new();
        let dirs = dirs
            .into_iter()
            .filter(|dir| !dir.as_os_str().is_empty() && seen.insert(dir.clone()))
            .collect();
        PluginSearchPath { dirs }
    }

    /// The standard search path: the `--plugin-dir` directories in the order
    /// given, then the stored configuration's `plugin_dirs`, then those in
    /// `PYROLAB_PLUGIN_PATH`, then `<data-dir>/plugins`, then the system
    /// plugin directory ([`system_plugin_dir`]): last, so that a driver
    /// of one's own wins over the packaged one of the same name.
    pub fn from_sources(
        plugin_dirs: &[PathBuf],
        config_dirs: &[PathBuf],
        env_path: Option<OsString>,
        data_dir: Option<&DataDir>,
    ) -> Self {
        let mut dirs: Vec<PathBuf> = plugin_dirs.to_vec();
        dirs.extend_from_slice(config_dirs);
        if let Some(path) = env_path {
            dirs.extend(std::env::split_paths(&path));
        }
        if let Some(data_dir) = data_dir {
            dirs.push(data_dir.plugins());
        }
        dirs.extend(system_plugin_dir());
        PluginSearchPath::new(dirs)
    }

    /// The directories, in priority order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Finds the library for a configuration's `module` name.
    ///
    /// A dotted module (`pyrolab.drivers.lasers.tsl550`) is tried first with
    /// its dots as underscores (`pyrolab_drivers_lasers_tsl550`), then as its
    /// last segment (`tsl550`); each name is looked for in every directory,
    /// in order, as `libNAME.so` then `NAME.so` (`NAME.dll` on Windows,
    /// `libNAME.dylib` on macOS), with `-` and `_` treated as equal.
    pub fn resolve(&self, module: &str) -> Result<PathBuf, LoadError> {
        let listings: Vec<(&PathBuf, Vec<PathBuf>)> = self
            .dirs
            .iter()
            .map(|dir| (dir, library_files_in(dir)))
            .collect();
        let mut file_names = Vec::new();
        for stem in candidate_stems(module) {
            for wanted in file_forms(&stem) {
                let wanted_key = normalize(&wanted);
                for (_, files) in &listings {
                    let found = files.iter().find(|file| {
                        file.file_name()
                            .and_then(|name| name.to_str())
                            .is_some_and(|name| normalize(name) == wanted_key)
                    });
                    if let Some(file) = found {
                        return Ok(file.clone());
                    }
                }
                file_names.push(wanted);
            }
        }
        Err(LoadError::NotFound {
            module: module.to_owned(),
            file_names,
            searched: self.dirs.clone(),
        })
    }

    /// Every library file in every directory of the path (a file reachable
    /// through two directories is listed once).
    pub fn libraries(&self) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        self.dirs
            .iter()
            .flat_map(|dir| library_files_in(dir))
            .filter(|file| seen.insert(fs::canonicalize(file).unwrap_or_else(|_| file.clone())))
            .collect()
    }
}

/// The module names a library file answers to, as `plugins list` reports
/// them: `libsample.so` is module `sample`, `tsl550.dll` is `tsl550`.
pub fn module_names_of(file: &Path) -> Vec<String> {
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(rest) = stem.strip_prefix("lib").filter(|rest| !rest.is_empty()) {
        names.push(rest.to_owned());
    }
    names.push(stem.to_owned());
    names
}

/// `-` and `_` are interchangeable in module names (Cargo turns the first
/// into the second in library names).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn candidate_stems(module: &str) -> Vec<String> {
    let full = module.replace('.', "_");
    let mut stems = vec![full];
    if let Some(last) = module.rsplit('.').next().filter(|_| module.contains('.')) {
        if !last.is_empty() {
            stems.push(last.to_owned());
        }
    }
    stems
}

#[cfg(target_os = "windows")]
fn file_forms(stem: &str) -> Vec<String> {
    vec![format!("{stem}.dll"), format!("lib{stem}.dll")]
}

#[cfg(target_os = "macos")]
fn file_forms(stem: &str) -> Vec<String> {
    vec![format!("lib{stem}.dylib"), format!("{stem}.dylib")]
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn file_forms(stem: &str) -> Vec<String> {
    vec![format!("lib{stem}.so"), format!("{stem}.so")]
}

fn is_library_file(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str());
    let wanted = if cfg!(target_os = "windows") {
        "dll"
    } else if cfg!(target_os = "macos") {
        "dylib"
    } else {
        "so"
    };
    extension.is_some_and(|e| e.eq_ignore_ascii_case(wanted)) && path.is_file()
}

/// The library files directly in `dir`, sorted by name; a missing or
/// unreadable directory has none.
fn library_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_library_file(path))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, b"").unwrap();
        path
    }

    #[test]
    fn dotted_modules_try_the_full_name_then_the_last_segment() {
        assert_eq!(
            candidate_stems("pyrolab.drivers.lasers.tsl550"),
            ["pyrolab_drivers_lasers_tsl550", "tsl550"]
        );
        assert_eq!(candidate_stems("sample"), ["sample"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resolves_lib_prefixed_plain_and_dashed_names_in_priority_order() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let dashed = touch(second.path(), "libmy-driver.so");
        let plain = touch(second.path(), "tsl550.so");
        let full = touch(second.path(), "libpyrolab_drivers_lasers_tsl550.so");
        let path = PluginSearchPath::new(vec![first.path().into(), second.path().into()]);
        assert_eq!(path.resolve("my_driver").unwrap(), dashed);
        assert_eq!(path.resolve("tsl550").unwrap(), plain);
        assert_eq!(path.resolve("pyrolab.drivers.lasers.tsl550").unwrap(), full);
        let earlier = touch(first.path(), "libtsl550.so");
        assert_eq!(path.resolve("tsl550").unwrap(), earlier);
    }

    #[test]
    fn not_found_names_every_file_and_directory_tried() {
        let dir = tempfile::tempdir().unwrap();
        let path = PluginSearchPath::new(vec![dir.path().into()]);
        let message = path.resolve("a.b").unwrap_err().to_string();
        assert!(
            message.starts_with("plugin module 'a.b' not found: looked for "),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("a_b") && message.contains(" b."),
            "{message}"
        );
    }

    #[test]
    fn empty_search_path_says_how_to_fill_it() {
        let message = PluginSearchPath::default()
            .resolve("x")
            .unwrap_err()
            .to_string();
        assert!(message.contains("--plugin-dir"), "{message}");
    }

    #[test]
    fn module_names_strip_the_lib_prefix() {
        assert_eq!(
            module_names_of(Path::new("/p/libsample.so")),
            ["sample", "libsample"]
        );
        assert_eq!(module_names_of(Path::new("/p/tsl550.dll")), ["tsl550"]);
    }
}
