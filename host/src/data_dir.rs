//! The data directory: `--data-dir`, else `PYROLAB_HOME`, else
//! `PYROLAB_DATA_DIR` (PyroLab 0.5's name for it), else the `data_dir:` of
//! the launch configuration the command was given (`up --config FILE`,
//! `config update FILE`), else a project's own `.pyrolab-host/` in the
//! working directory or one of its parents, else the platform's data
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

/// The name of a project's own data directory (see
/// [`DataDir::find_project`]); the demo lab's `data_dir:` names one at the
/// top of the checkout.
pub const PROJECT_DATA_DIR: &str = ".pyrolab-host";

/// `path` with symbolic links and `..` resolved, also when its last part
/// does not exist yet (a data directory before `up` creates it).
pub fn normalized(path: &Path) -> PathBuf {
    if let Ok(path) = fs::canonicalize(path) {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|parent| parent.join(name))
            .unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    }
}

/// Whether the current user owns `path`.
fn is_own(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).is_ok_and(|meta| meta.uid() == rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
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
    /// reads into it) names, else `PYROLAB_DATA_DIR`'s, else the project
    /// data directory found from the working directory, else the platform
    /// default. `None` if none of them gives one.
    pub fn choose(given: Option<&Path>) -> Option<Self> {
        DataDir::choose_with_config(given, None)
    }

    /// As [`DataDir::choose`], with the `data_dir:` of the launch
    /// configuration a command was given coming after the variables and
    /// before the project's: a file that says where its lab keeps its data
    /// is obeyed unless the user said otherwise.
    pub fn choose_with_config(
        given: Option<&Path>,
        config_data_dir: Option<&Path>,
    ) -> Option<Self> {
        given
            .map(DataDir::new)
            .or_else(|| {
                std::env::var_os(PYROLAB_DATA_DIR_ENV)
                    .filter(|dir| !dir.is_empty())
                    .map(DataDir::new)
            })
            .or_else(|| config_data_dir.map(DataDir::new))
            .or_else(|| {
                let here = std::env::current_dir().ok()?;
                DataDir::find_project(&here)
            })
            .or_else(DataDir::platform_default)
    }

    /// The project data directory for `start`: the first
    /// [`PROJECT_DATA_DIR`] in `start` or one of its parents, found the way
    /// Git finds `.git`, so that every command run inside a project (the
    /// checkout's demo lab, say) acts on the lab it started. One owned by
    /// another user is ignored, with a warning: in a shared folder such as
    /// /tmp, anyone could plant a configuration that loads their plugins.
    pub fn find_project(start: &Path) -> Option<Self> {
        let candidate = start
            .ancestors()
            .map(|dir| dir.join(PROJECT_DATA_DIR))
            .find(|dir| dir.is_dir())?;
        if !is_own(&candidate) {
            eprintln!(
                "warning: {} belongs to another user; ignored (give --data-dir to use it)",
                candidate.display()
            );
            return None;
        }
        Some(DataDir::new(candidate))
    }

    /// Whether commands run in `start` and given no data directory would
    /// find this one (once it exists): it is the first project data
    /// directory in `start` or above.
    pub fn is_found_from(&self, start: &Path) -> bool {
        let wanted = normalized(&self.root);
        start
            .ancestors()
            .map(|dir| normalized(&dir.join(PROJECT_DATA_DIR)))
            .find(|candidate| candidate.is_dir() || *candidate == wanted)
            .is_some_and(|first| first == wanted)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_data_directory_is_found_from_any_folder_below_it() {
        let project = tempfile::tempdir().unwrap();
        let deep = project.path().join("config/sub");
        fs::create_dir_all(&deep).unwrap();
        assert!(DataDir::find_project(&deep).is_none_or(|found| {
            // A `.pyrolab-host` above the temporary directory (the
            // developer's home, say) is not this test's business.
            !found.root().starts_with(project.path())
        }));
        let own = project.path().join(PROJECT_DATA_DIR);
        fs::create_dir(&own).unwrap();
        assert_eq!(DataDir::find_project(&deep).unwrap().root(), own);
        assert_eq!(DataDir::find_project(project.path()).unwrap().root(), own);
    }

    #[test]
    fn a_data_directory_not_yet_made_is_known_to_be_found_where_it_will_be() {
        let project = tempfile::tempdir().unwrap();
        let config = project.path().join("config");
        fs::create_dir(&config).unwrap();
        let lab = DataDir::new(config.join("..").join(PROJECT_DATA_DIR));
        assert!(lab.is_found_from(project.path()));
        assert!(lab.is_found_from(&config));
        let elsewhere = DataDir::new(project.path().join("lab-data"));
        assert!(!elsewhere.is_found_from(project.path()));
        // A nearer one hides it.
        fs::create_dir(config.join(PROJECT_DATA_DIR)).unwrap();
        assert!(!lab.is_found_from(&config));
        assert!(lab.is_found_from(project.path()));
    }

    #[test]
    fn a_file_named_like_a_project_data_directory_is_not_one() {
        let project = tempfile::tempdir().unwrap();
        fs::write(project.path().join(PROJECT_DATA_DIR), b"").unwrap();
        let found = DataDir::find_project(project.path());
        assert!(found.is_none_or(|found| !found.root().starts_with(project.path())));
    }

    /// Needs root to give the directory away; as anyone else it checks
    /// nothing.
    #[cfg(unix)]
    #[test]
    fn a_project_data_directory_of_another_user_is_ignored() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let project = tempfile::tempdir().unwrap();
        let planted = project.path().join(PROJECT_DATA_DIR);
        fs::create_dir(&planted).unwrap();
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
        assert!(DataDir::find_project(project.path()).is_none());
    }
}
