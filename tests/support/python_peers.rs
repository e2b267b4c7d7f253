//! Stock Python peers (`tests/python/peers.py`): Pyro5 and PyroLab name
//! servers and daemons, from the pinned packages, for tests of
//! pyrolab-host's client, daemons and tools against them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Background, python_with_pyro5, repo_root};

/// How long a Python peer may take to start (importing PyroLab loads numpy).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A Python peer, stopped when dropped.
pub struct PythonPeer {
    process: Background,
    /// What it printed after `READY`: a port or a URI.
    pub ready: String,
}

impl PythonPeer {
    /// Starts `peers.py ROLE ARGS...` and waits until it serves. PyroLab's
    /// files go to `data_dir` (`PYROLAB_DATA_DIR`), never the user's.
    pub fn start(role: &str, args: &[&str], data_dir: &Path) -> PythonPeer {
        let mut command = Command::new(python_with_pyro5());
        command
            .arg(repo_root().join("tests/python/peers.py"))
            .arg(role)
            .args(args)
            .env("PYROLAB_DATA_DIR", data_dir)
            .env("PYROLAB_NO_VERSION_CHECK", "1")
            .env_remove("PYRO_NS_HOST")
            .env_remove("PYRO_NS_PORT")
            .env_remove("PYRO_SERIALIZER");
        let mut process = Background::start_holding_stdin(&mut command);
        let line = process.wait_for_line("READY ", START_TIMEOUT);
        let ready = line["READY ".len()..].to_owned();
        PythonPeer { process, ready }
    }

    /// A stock Pyro5 name server (`Pyro5.nameserver.start_ns`) on a free
    /// port of 127.0.0.1.
    pub fn pyro5_nameserver(data_dir: &Path) -> PythonPeer {
        PythonPeer::start("pyro5-nameserver", &[], data_dir)
    }

    /// A name server started by PyroLab (`pyrolab.nameserver.start_ns_loop`)
    /// on `port` of 127.0.0.1.
    pub fn pyrolab_nameserver(port: u16, data_dir: &Path) -> PythonPeer {
        PythonPeer::start("pyrolab-nameserver", &[&port.to_string()], data_dir)
    }

    /// The port a name server listens on.
    pub fn port(&self) -> u16 {
        self.ready
            .trim()
            .parse()
            .expect("a name server's READY port")
    }

    /// Closes the peer's stdin: it finishes what it holds (a lock is
    /// released) and exits.
    pub fn close_stdin(&mut self) {
        self.process.close_stdin();
    }
}
