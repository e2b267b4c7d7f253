//! A private PostgreSQL server per test, for the `postgresql` name-server
//! storage: its own cluster in a temporary directory, on a free port of
//! the address the test gives, trusting local connections, stopped (and
//! removed) when dropped. The server's binaries are Debian's
//! (`/usr/lib/postgresql/VERSION/bin`, installed by `.ci/run`) or those on
//! `PATH`. PostgreSQL refuses to run as root: under root, the cluster
//! belongs to the `postgres` user the Debian package creates.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{free_port, run};

/// How long `initdb`, or starting the server, may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A running PostgreSQL server, stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The address it listens on.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The network namespace it runs in.
    netns: Option<String>,
}

impl Postgres {
    /// A server on a free port of 127.0.0.1.
    pub fn start() -> Postgres {
        Postgres::start_on("127.0.0.1", None)
    }

    /// A server listening on `host`, run inside network namespace
    /// `netns` when given (`ip netns exec NETNS ...`).
    pub fn start_on(host: &str, netns: Option<&str>) -> Postgres {
        let bin = server_binaries();
        let dir = tempfile::Builder::new()
            .prefix("pyrolab-pg-")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let data = dir.path().join("data");
        fs::create_dir(&data).expect("create the cluster directory");
        let as_postgres = running_as_root();
        if as_postgres {
            // The postgres user must reach its cluster and socket folder.
            allow_traversal(dir.path());
            let chowned = run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
                SETUP_TIMEOUT,
            );
            assert_eq!(
                chowned.code,
                Some(0),
                "chown the cluster to postgres\n{chowned}"
            );
        }
        let port = free_port();
        let server = Postgres {
            dir,
            bin,
            host: host.to_owned(),
            port,
            netns: netns.map(str::to_owned),
        };
        let initdb = run(
            &mut server.command(
                netns,
                "initdb",
                &[
                    "-D",
                    &data.display().to_string(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            SETUP_TIMEOUT,
        );
        assert_eq!(initdb.code, Some(0), "initdb\n{initdb}");
        // Trusted from the networks it is on (a test's own namespaces),
        // as from loopback.
        let hba = data.join("pg_hba.conf");
        let mut rules = fs::read_to_string(&hba).expect("read pg_hba.conf");
        rules.push_str("host all all samenet trust\n");
        fs::write(&hba, rules).expect("write pg_hba.conf");
        server.start_server();
        server
    }

    /// A connection URL for the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for `database`.
    pub fn url_for(&self, database: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("postgresql://postgres@{host}:{}/{database}", self.port)
    }

    /// Runs `psql -c SQL` and returns its output (unaligned, no headers).
    pub fn psql(&self, sql: &str) -> String {
        let output = run(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-A", "-t", "-h"])
                .arg(self.dir.path())
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-c", sql]),
            SETUP_TIMEOUT,
        );
        assert_eq!(output.code, Some(0), "psql -c {sql}\n{output}");
        output.stdout
    }

    /// Starts the server (again), and waits until it accepts connections.
    /// Without fsync (the tests need no durability against the machine
    /// crashing), but with synchronous commits: a commit is in the WAL
    /// before it is acknowledged, so stopping the server at once (as its
    /// host dying would) loses no acknowledged change.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses={} -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.host,
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let started = run(
            &mut self.command(
                self.netns.as_deref(),
                "pg_ctl",
                &[
                    "-D",
                    &self.data().display().to_string(),
                    "-l",
                    &log.display().to_string(),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
            SETUP_TIMEOUT,
        );
        assert_eq!(
            started.code,
            Some(0),
            "pg_ctl start\n{started}\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once (`-m immediate`: as if its host died).
    pub fn stop_server(&self) {
        let stopped = run(
            &mut self.command(
                None,
                "pg_ctl",
                &[
                    "-D",
                    &self.data().display().to_string(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            ),
            SETUP_TIMEOUT,
        );
        assert_eq!(stopped.code, Some(0), "pg_ctl stop\n{stopped}");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `BIN/program ARGS`, as the postgres user under root, in `netns`.
    fn command(&self, netns: Option<&str>, program: &str, args: &[&str]) -> Command {
        let mut line: Vec<String> = Vec::new();
        if let Some(netns) = netns {
            line.extend(["ip", "netns", "exec", netns].map(str::to_owned));
        }
        if running_as_root() {
            line.extend(["runuser", "-u", "postgres", "--"].map(str::to_owned));
        }
        line.push(self.bin.join(program).display().to_string());
        line.extend(args.iter().map(|a| (*a).to_owned()));
        let mut command = Command::new(&line[0]);
        command.args(&line[1..]);
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(
            &mut self.command(
                None,
                "pg_ctl",
                &[
                    "-D",
                    &self.data().display().to_string(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            ),
            SETUP_TIMEOUT,
        );
    }
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn allow_traversal(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod the cluster folder");
}

/// Where `initdb`, `pg_ctl` and `psql` are.
fn server_binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    on_path.expect(
        "the postgresql storage tests need a PostgreSQL server (Debian: apt-get install postgresql; .ci/run installs it)",
    )
}
