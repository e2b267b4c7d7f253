//! The per-user data directory: `--data-dir`, else `PYROLAB_HOME`, else
//! `PYROLAB_DATA_DIR` (PyroLab 0.5's name for it), else the platform's data
//! directory (`$XDG_DATA_HOME/pyrolab-host`, by default
//! `~/.local/share/pyrolab-host` on Linux).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parents, each readable by its owner only
/// (what the lab keeps: its configuration, logs, name-server databases).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)
}

/// Makes the existing directory at `path` readable by its owner only (a
/// data directory an older version, or `mkdir`, left open to everyone).
pub fn make_private_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Makes the file at `path` readable and writable by its owner only.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Options that create a file readable and writable by its owner only.
pub fn private_file_options() -> fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// The environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "PYROLAB_HOME";

/// PyroLab 0.5's variable for its data directory, read as an alias of
/// [`DATA_DIR_ENV`] (which wins when both are set).
pub const PYROLAB_DATA_DIR_ENV: &str = "PYROLAB_DATA_DIR";

/// The data directory and the well-known paths inside it.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Uses `root` as the data directory.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// The data directory `--data-dir` (or `PYROLAB_HOME`, which clap
    /// reads into it) names, else `PYROLAB_DATA_DIR`'s, else the platform
    /// default. `None` if none of them gives one.
    pub fn choose(given: Option<&Path>) -> Option<Self> {
        given
            .map(DataDir::new)
            .or_else(|| {
                std::env::var_os(PYROLAB_DATA_DIR_ENV)
                    .filter(|dir| !dir.is_empty())
                    .map(DataDir::new)
            })
            .or_else(DataDir::platform_default)
    }

    /// The platform default, when neither `--data-dir` nor `PYROLAB_HOME`
    /// is given. `None` if the platform has no home directory.
    pub fn platform_default() -> Option<Self> {
        dirs::data_dir().map(|dir| DataDir::new(dir.join("pyrolab-host")))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration stored by `pyrolab-host config update`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// Where users drop driver libraries; always on the plugin search path.
    pub fn plugins(&self) -> PathBuf {
        self.root.join("plugins")
    }

    /// Runtime files of the manager (`pyrolab-host up`): its lock file,
    /// control socket, the configuration its components run with, and the
    /// pids of its children. Only the owner may enter it.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The lab's certificate authority and the certificates it issued
    /// (`pyrolab-host tls`).
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Component and manager logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
}
