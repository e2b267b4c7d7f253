//! The control socket: how `ps`, `down`, `start`, ... reach the manager.
//!
//! A Unix socket, `run/control.sock` in the data directory. The directory
//! is the owner's alone (mode 0700), the socket too (0600), and on Linux
//! the manager also checks the connecting process's user (SO_PEERCRED) and
//! refuses anyone else: these commands start and stop lab hardware.
//!
//! One request per connection: a line, answered by a line (what they say
//! is `protocol.rs`'s). A line that is not a request, too long or too slow
//! gets an error answer and the connection closes; the manager carries on.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::instance::InstanceLock;
use super::protocol::{self, ProtocolError, Reply, Request};
use crate::data_dir::DataDir;

/// The longest request accepted.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `run/control.sock`.
pub fn socket_path(data_dir: &DataDir) -> PathBuf {
    data_dir.run_dir().join("control.sock")
}

/// Binds the control socket, replacing a stale one (the caller holds the
/// instance lock, so no live manager is using it).
pub fn bind(data_dir: &DataDir) -> io::Result<UnixListener> {
    super::instance::create_run_dir(data_dir)?;
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!("removed a stale control socket {}", path.display()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = UnixListener::bind(&path).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot listen on {}: {err}", path.display()),
        )
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves one connection: reads its request, has `handle` answer it.
pub fn serve_connection(
    mut stream: UnixStream,
    handle: impl FnOnce(Request) -> Result<Reply, String>,
) {
    if let Err(refusal) = check_peer(&stream) {
        tracing::warn!("control socket: {refusal}");
        let _ = answer(&mut stream, Err(refusal));
        return;
    }
    let request = match read_request(&stream) {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!("control socket: bad request: {err}");
            let _ = answer(&mut stream, Err(format!("bad request: {err}")));
            return;
        }
    };
    tracing::debug!("control request {request:?}");
    let result = handle(request);
    if let Err(err) = answer(&mut stream, result) {
        tracing::debug!("control socket: the client left before the answer: {err}");
    }
}

/// Refuses a process of another user.
#[cfg(target_os = "linux")]
fn check_peer(stream: &UnixStream) -> Result<(), String> {
    let credentials = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|err| format!("cannot tell who connected: {err}"))?;
    let owner = rustix::process::geteuid();
    if credentials.uid != owner {
        return Err(format!(
            "permission denied: user {} (pid {}) is not the manager's owner (user {})",
            credentials.uid.as_raw(),
            credentials.pid.as_raw_nonzero(),
            owner.as_raw()
        ));
    }
    Ok(())
}

/// Elsewhere the socket's and its directory's permissions keep others out.
#[cfg(not(target_os = "linux"))]
fn check_peer(_stream: &UnixStream) -> Result<(), String> {
    Ok(())
}

fn read_request(stream: &UnixStream) -> Result<Request, String> {
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|err| err.to_string())?;
    let mut line = Vec::new();
    BufReader::new(stream.take(MAX_REQUEST))
        .read_until(b'\n', &mut line)
        .map_err(|err| format!("cannot read it: {err}"))?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() as u64 >= MAX_REQUEST {
            format!("longer than {MAX_REQUEST} bytes")
        } else {
            "incomplete (expected one JSON line)".to_owned()
        });
    }
    protocol::decode_request(&line).map_err(|err| err.to_string())
}

fn answer(stream: &mut UnixStream, result: Result<Reply, String>) -> io::Result<()> {
    stream.write_all(&protocol::encode_answer(&result))
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No manager listens.
    #[error("no manager is running for {data_dir} (start the lab with `pyrolab-host up`)")]
    NotRunning {
        /// The data directory.
        data_dir: String,
    },
    /// The manager refused or failed the request.
    #[error("{0}")]
    Refused(String),
    /// The manager speaks another version of the control protocol: the
    /// lab was started by another build of `pyrolab-host`.
    #[error("{}", describe_other_version(.mismatch, .pid.as_deref()))]
    OtherVersion {
        /// What the versions are.
        mismatch: ProtocolError,
        /// The manager's pid, as its lock file holds it.
        pid: Option<String>,
    },
    /// The manager's answer is not one of the protocol.
    #[error("the manager's control socket {path}: {cause}")]
    BadAnswer {
        /// The socket.
        path: PathBuf,
        /// What is wrong with the answer.
        cause: ProtocolError,
    },
    /// The connection failed.
    #[error("the manager's control socket {path}: {cause}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        cause: io::Error,
    },
}

/// What to do about a manager of another build: it cannot be asked to
/// stop, but stops the lab as `down` does on SIGTERM.
fn describe_other_version(mismatch: &ProtocolError, pid: Option<&str>) -> String {
    let stop = match pid {
        Some(pid) => {
            format!("`kill {pid}` (the manager, which stops the lab on SIGTERM as `down` does)")
        }
        None => "that build's `pyrolab-host down`".to_owned(),
    };
    format!(
        "{mismatch}: the lab was started by another build of pyrolab-host; stop it with {stop}, then start it again with `pyrolab-host up`"
    )
}

/// Sends `request` to the manager of `data_dir` and returns its reply,
/// waiting at most `timeout` for the answer.
pub fn request(
    data_dir: &DataDir,
    request: &Request,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let path = socket_path(data_dir);
    let mut stream = connect(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
            data_dir: data_dir.root().display().to_string(),
        },
        _ => ClientError::Io {
            path: path.clone(),
            cause: source,
        },
    })?;
    let io_error = |cause| ClientError::Io {
        path: path.clone(),
        cause,
    };
    let line = protocol::encode_request(request);
    stream.set_read_timeout(Some(timeout)).map_err(io_error)?;
    if let Err(err) = stream.write_all(&line) {
        // A manager that refuses us answers and closes before reading:
        // its answer may be waiting even though our request could not go.
        if err.kind() != io::ErrorKind::BrokenPipe {
            return Err(io_error(err));
        }
    }
    let mut answer = Vec::new();
    BufReader::new(&stream)
        .read_until(b'\n', &mut answer)
        .map_err(io_error)?;
    if answer.is_empty() {
        return Err(io_error(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the manager closed the connection without answering (see `pyrolab-host logs manager`)",
        )));
    }
    match protocol::decode_answer(request, &answer) {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(refusal)) => Err(ClientError::Refused(refusal)),
        Err(mismatch @ ProtocolError::AnswerOfAnotherVersion { .. }) => {
            Err(ClientError::OtherVersion {
                mismatch,
                pid: InstanceLock::holder(data_dir),
            })
        }
        Err(cause) => Err(ClientError::BadAnswer { path, cause }),
    }
}

fn connect(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manager_of_another_build_is_named_with_how_to_stop_it() {
        let mismatch = ProtocolError::AnswerOfAnotherVersion { manager: Some(2) };
        let error = ClientError::OtherVersion {
            mismatch,
            pid: Some("1234".to_owned()),
        };
        assert_eq!(
            error.to_string(),
            "the manager speaks control protocol 2, this pyrolab-host speaks 1: the lab was started by another build of pyrolab-host; stop it with `kill 1234` (the manager, which stops the lab on SIGTERM as `down` does), then start it again with `pyrolab-host up`"
        );
    }
}
