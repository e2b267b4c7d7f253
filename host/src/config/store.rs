//! The configuration stored in the data directory by `config update`:
//! `<data-dir>/config.yaml`, with every default written out.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::{ConfigError, LaunchConfig, load_file, to_yaml};
use crate::data_dir::DataDir;

/// The stored configuration.
#[derive(Clone, Debug)]
pub struct ConfigStore {
    path: PathBuf,
}

impl ConfigStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &DataDir) -> Self {
        ConfigStore {
            path: data_dir.config_file(),
        }
    }

    /// The stored file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored configuration, or `None` if nothing is stored.
    pub fn load(&self) -> Result<Option<LaunchConfig>, ConfigError> {
        if !self.path.exists() {
            return Ok(None);
        }
        load_file(&self.path, false).map(|loaded| Some(loaded.config))
    }

    /// Stores `config`, replacing what was stored. The file is written
    /// beside the old one and renamed over it, so a crash leaves either the
    /// old or the new configuration, never half of one.
    pub fn save(&self, config: &LaunchConfig) -> io::Result<()> {
        let dir = self
            .path
            .parent()
            .expect("the store is inside the data dir");
        crate::data_dir::create_private_dir(dir)?;
        // The store is the data directory's own file: the directory is
        // the lab's, not every local user's.
        crate::data_dir::make_private_dir(dir)?;
        let temporary = dir.join(format!(".config.yaml.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = crate::data_dir::private_file_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temporary)?;
            file.write_all(to_yaml(config).as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    /// Deletes the stored configuration. Returns whether there was one.
    pub fn reset(&self) -> io::Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }
}
