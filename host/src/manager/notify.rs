//! systemd's readiness protocol (`Type=notify`): a datagram such as
//! `READY=1` to the socket named by `NOTIFY_SOCKET`. Outside systemd the
//! variable is unset and nothing is sent.

/// Sends `state` (e.g. `READY=1\nSTATUS=...`) to systemd, if it listens.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(err) = send(&socket, state) {
        tracing::warn!(
            "cannot notify systemd at {}: {err}",
            socket.to_string_lossy()
        );
    }
}

#[cfg(target_os = "linux")]
fn send(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let bytes = socket.as_bytes();
    let address = match bytes.strip_prefix(b"@") {
        // An abstract socket: `@name` stands for a leading NUL byte.
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address)?;
    Ok(())
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    std::os::unix::net::UnixDatagram::unbound()?.send_to(state.as_bytes(), socket)?;
    Ok(())
}
