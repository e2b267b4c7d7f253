//! Sockets: TCP and Unix-domain streams and listeners behind one type each,
//! and the address `host: public` stands for.
//!
//! Pyro5 serves on either kind of socket (a daemon with `unixsocket` set
//! is addressed as `PYRO:obj@./u:/path`), so the daemon and the client work
//! with [`Stream`] and [`Listener`] and never ask which kind they hold.
//! A TCP stream may speak TLS ([`Stream::Tls`]); it is read and written as
//! a plain one.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::tls::TlsSocket;

/// A connected socket.
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix-domain socket.
    #[cfg(unix)]
    Unix(UnixStream),
    /// TLS over TCP (clones share the session).
    Tls(Arc<TlsSocket>),
}

impl Stream {
    /// Connects to a Unix-domain socket.
    #[cfg(unix)]
    pub fn connect_unix(path: &Path) -> io::Result<Stream> {
        UnixStream::connect(path).map(Stream::Unix)
    }

    /// Connects to a Unix-domain socket (not available on this platform).
    #[cfg(not(unix))]
    pub fn connect_unix(_path: &Path) -> io::Result<Stream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unix sockets are not available on this platform",
        ))
    }

    /// A second handle to the same socket (one for reading, one for writing).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tls(s) => Stream::Tls(Arc::clone(s)),
        })
    }

    /// Sets the read timeout.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(timeout),
            Stream::Tls(s) => s.tcp().set_read_timeout(timeout),
        }
    }

    /// Sets the write timeout.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(timeout),
            Stream::Tls(s) => s.tcp().set_write_timeout(timeout),
        }
    }

    /// Sets both the read and the write timeout.
    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }

    /// Turns off Nagle's algorithm on TCP; Unix sockets have no such delay.
    pub fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(true),
            #[cfg(unix)]
            Stream::Unix(_) => Ok(()),
            Stream::Tls(s) => s.tcp().set_nodelay(true),
        }
    }

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    /// Reads into `buffer`'s spare capacity, which is not zeroed first (for
    /// a megabyte payload that would cost as much as a copy), and extends
    /// its length by the bytes read. 0 means the peer closed the connection
    /// (or `buffer` has no spare capacity).
    #[cfg(unix)]
    pub fn read_into_spare(&self, buffer: &mut Vec<u8>) -> io::Result<usize> {
        if let Stream::Tls(tls) = self {
            return read_through_chunks(buffer, |chunk, wait| tls.receive(chunk, wait), true);
        }
        if buffer.len() == buffer.capacity() {
            return Ok(0);
        }
        let before = buffer.len();
        rustix::io::read(self, rustix::buffer::spare_capacity(buffer))?;
        Ok(buffer.len() - before)
    }

    /// Receives into `buf`: at once (`WouldBlock` when nothing is there),
    /// or, with `wait`, waiting up to the read timeout. The socket itself
    /// stays blocking, so that a worker can wait on one connection without
    /// changing the socket's mode there and back; every other read and
    /// write on it says, per call, not to wait.
    #[cfg(unix)]
    pub fn receive(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        if let Stream::Tls(tls) = self {
            return tls.receive(buf, wait);
        }
        let (read, _) = rustix::net::recv(self, buf, receive_flags(wait))?;
        Ok(read)
    }

    /// Like [`Stream::receive`], into `buffer`'s spare capacity (not
    /// zeroed first), extending its length by the bytes read.
    #[cfg(unix)]
    pub fn receive_into_spare(&self, buffer: &mut Vec<u8>, wait: bool) -> io::Result<usize> {
        if let Stream::Tls(tls) = self {
            return read_through_chunks(buffer, |chunk, wait| tls.receive(chunk, wait), wait);
        }
        if buffer.len() == buffer.capacity() {
            return Ok(0);
        }
        let before = buffer.len();
        rustix::net::recv(
            self,
            rustix::buffer::spare_capacity(buffer),
            receive_flags(wait),
        )?;
        Ok(buffer.len() - before)
    }

    /// Sends as much of `slices` as the socket takes now, in one system
    /// call, without waiting for room (`WouldBlock` when there is none).
    #[cfg(unix)]
    pub fn send_now(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        use rustix::net::SendFlags;
        if let Stream::Tls(tls) = self {
            return tls.send_now(slices);
        }
        self.send(slices, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
    }

    /// Sends, without waiting, what an earlier [`Stream::send_now`] took
    /// but could not send yet (only TLS keeps such bytes): whether all of
    /// it is out.
    pub fn flush_now(&self) -> io::Result<bool> {
        match self {
            Stream::Tls(tls) => tls.flush_now(),
            _ => Ok(true),
        }
    }

    /// The peer's identity by its TLS certificate; `None` without TLS or
    /// without a client certificate.
    pub fn peer_identity(&self) -> Option<String> {
        match self {
            Stream::Tls(tls) => tls.peer_identity(),
            _ => None,
        }
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    #[cfg(unix)]
    fn send(&self, slices: &[IoSlice<'_>], flags: rustix::net::SendFlags) -> io::Result<usize> {
        if let Stream::Tls(tls) = self {
            return tls.send_waiting(slices);
        }
        match slices {
            [one] => Ok(rustix::net::send(self, one, flags)?),
            _ => Ok(rustix::net::sendmsg(
                self,
                slices,
                &mut rustix::net::SendAncillaryBuffer::default(),
                flags,
            )?),
        }
    }

    /// The TCP address of the other end (`None` on a Unix socket), as a
    /// driver's call context gives it.
    pub fn peer_address(&self) -> Option<String> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.to_string()),
            Stream::Tls(s) => s.tcp().peer_addr().ok().map(|a| a.to_string()),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }

    /// Who is on the other end, for log lines.
    pub fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| "unknown peer".to_owned(), |a| a.to_string()),
            Stream::Tls(s) => s
                .tcp()
                .peer_addr()
                .map_or_else(|_| "unknown peer".to_owned(), |a| a.to_string()),
            #[cfg(unix)]
            Stream::Unix(_) => "a local process (unix socket)".to_owned(),
        }
    }
}

/// Reads with `read` into `buffer`'s spare capacity, through a scratch
/// chunk (TLS decrypts into initialized memory, and zeroing the whole
/// spare capacity on every read cost more than copying what came), until
/// the buffer is full or `read` returns short: as a plain read, a short
/// result means the socket had no more. Only the first read may wait.
fn read_through_chunks(
    buffer: &mut Vec<u8>,
    mut read: impl FnMut(&mut [u8], bool) -> io::Result<usize>,
    wait: bool,
) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let want = (buffer.capacity() - buffer.len()).min(chunk.len());
        if want == 0 {
            return Ok(total);
        }
        match read(&mut chunk[..want], wait && total == 0) {
            Ok(got) => {
                buffer.extend_from_slice(&chunk[..got]);
                total += got;
                if got < want {
                    return Ok(total);
                }
            }
            Err(err) if total > 0 && err.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(err) => return Err(err),
        }
    }
}

#[cfg(unix)]
fn receive_flags(wait: bool) -> rustix::net::RecvFlags {
    if wait {
        rustix::net::RecvFlags::empty()
    } else {
        rustix::net::RecvFlags::DONTWAIT
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tls(s) => s.tcp().as_fd(),
        }
    }
}

/// On Unix, reads and writes are the system calls themselves (through
/// rustix), without the C library's wrappers around them: a small call's
/// round trip is four system calls, and the wrappers' cancellation
/// bookkeeping was a visible part of it.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

/// A buffered socket reads what it has buffered, then straight from the
/// socket into the caller's buffer (not zeroed first).
#[cfg(unix)]
impl crate::wire::message::ReadSpare for io::BufReader<Stream> {
    fn read_spare(&mut self, buffer: &mut Vec<u8>) -> io::Result<usize> {
        use io::BufRead;
        let buffered = self.buffer();
        if !buffered.is_empty() {
            let take = (buffer.capacity() - buffer.len()).min(buffered.len());
            buffer.extend_from_slice(&buffered[..take]);
            self.consume(take);
            return Ok(take);
        }
        self.get_ref().read_into_spare(buffer)
    }
}

/// Reading through a shared reference, as `&TcpStream` allows: the event
/// loop's workers hold connections behind `Arc`s.
impl Read for &Stream {
    #[cfg(unix)]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(buf, true)
    }

    #[cfg(not(unix))]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Tls(s) => s.receive(buf, true),
        }
    }
}

impl Write for &Stream {
    /// Never raises SIGPIPE: a peer gone is an error, as with std's
    /// sockets.
    #[cfg(unix)]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Stream::Tls(tls) = self {
            return tls.send_waiting(&[IoSlice::new(buf)]);
        }
        Ok(rustix::net::send(
            self,
            buf,
            rustix::net::SendFlags::NOSIGNAL,
        )?)
    }

    #[cfg(unix)]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send(bufs, rustix::net::SendFlags::NOSIGNAL)
    }

    #[cfg(not(unix))]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Tls(s) => s.send_waiting(&[IoSlice::new(buf)]),
        }
    }

    #[cfg(not(unix))]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Tls(s) => s.send_waiting(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix-domain socket; its file is removed when the listener is dropped.
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

/// A listening socket with the location clients use to reach it, as a
/// Pyro5 URI writes it (`host:port`, `[v6]:port`, or `./u:/path`).
pub struct Bound {
    /// The socket.
    pub listener: Listener,
    /// Where clients connect: behind NAT, the public address.
    pub location: String,
    /// What its connections speak, when not plain TCP.
    pub tls: Option<crate::tls::ServerTls>,
}

impl Bound {
    /// Serves TLS with `tls`, loaded from `files` (a TCP listener only).
    pub fn with_tls(
        mut self,
        what: &str,
        files: Option<crate::tls::ServerTlsFiles>,
    ) -> Result<Bound, BindError> {
        let Some(files) = files else {
            return Ok(self);
        };
        if !matches!(self.listener, Listener::Tcp(_)) {
            return Err(BindError::Tls {
                what: what.to_owned(),
                reason: "TLS is for TCP: a unix socket is reached only from this machine, as \
                         its file permissions allow"
                    .to_owned(),
            });
        }
        let tls = crate::tls::ServerTls::load(&files).map_err(|err| BindError::Tls {
            what: what.to_owned(),
            reason: err.to_string(),
        })?;
        self.tls = Some(tls);
        Ok(self)
    }

    /// Refuses a TCP listener on an address other than loopback without
    /// TLS, unless `insecure` (then warns: anyone who reaches the address
    /// could call, lock and register, unencrypted).
    pub fn check_exposure(&self, what: &str, insecure: bool) -> Result<(), BindError> {
        let Listener::Tcp(listener) = &self.listener else {
            return Ok(());
        };
        let Ok(address) = listener.local_addr() else {
            return Ok(());
        };
        if self.tls.is_some() || address.ip().is_loopback() {
            return Ok(());
        }
        if insecure {
            tracing::warn!(
                "{what} listens on {address} without TLS (insecure: true): anyone who can reach \
                 it can use it, and its traffic is not encrypted"
            );
            return Ok(());
        }
        Err(BindError::Insecure {
            what: what.to_owned(),
            address,
        })
    }
}

/// Why a component's socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// It would listen beyond this machine without TLS.
    #[error(
        "{what}: refusing to listen on {address} without TLS: anyone on the network could use \
         it; give it `tls` (docs/security.md), or `insecure: true` to allow it"
    )]
    Insecure {
        /// The component.
        what: String,
        /// The address it bound.
        address: SocketAddr,
    },
    /// Its TLS could not be set up.
    #[error("{what}: TLS: {reason}")]
    Tls {
        /// The component.
        what: String,
        /// Why.
        reason: String,
    },
    /// The host name does not resolve.
    #[error("{what}: cannot resolve host {host:?}: {source}")]
    Resolve {
        /// The component (`daemon lab`).
        what: String,
        /// The host.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The address is taken or not ours.
    #[error("{what}: cannot listen on {address}: {source}")]
    Listen {
        /// The component (`daemon lab`).
        what: String,
        /// `host:port`, or `unix socket PATH`.
        address: String,
        /// Why.
        source: io::Error,
    },
}

/// Binds a TCP port for `what` (`daemon lab`); the location clients use
/// is `host:port`, or behind NAT `nathost:natport` (`natport` 0 = the
/// bound port), since URIs must carry the address clients can reach.
/// `host: public` is this machine's public address.
pub fn bind_tcp(
    what: &str,
    host: &str,
    port: u16,
    nathost: Option<&str>,
    natport: u16,
) -> Result<Bound, BindError> {
    let host = resolve_host(host);
    let addresses: Vec<SocketAddr> =
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map_err(|source| BindError::Resolve {
                what: what.to_owned(),
                host: host.clone(),
                source,
            })?
            .collect();
    let listen_error = |source| BindError::Listen {
        what: what.to_owned(),
        address: format!("{host}:{port}"),
        source,
    };
    let listener = TcpListener::bind(&addresses[..]).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?.port();
    let (host, port) = match nathost {
        Some(nathost) => (
            nathost.to_owned(),
            if natport == 0 { bound } else { natport },
        ),
        None => (host, bound),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(Bound {
        listener: Listener::Tcp(listener),
        location: format!("{host}:{port}"),
        tls: None,
    })
}

/// Binds a Unix socket at `path` for `what`; clients reach it as
/// `./u:PATH`.
pub fn bind_unix(what: &str, path: &Path) -> Result<Bound, BindError> {
    let listener = Listener::bind_unix(path).map_err(|source| BindError::Listen {
        what: what.to_owned(),
        address: format!("unix socket {}", path.display()),
        source,
    })?;
    Ok(Bound {
        listener,
        location: format!("./u:{}", path.display()),
        tls: None,
    })
}

/// Where to connect to reach a [`Listener`] (to wake its accept loop).
#[derive(Clone, Debug)]
pub enum ListenAddress {
    /// A TCP address (a wildcard bind is reached through loopback).
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Listener {
    /// Where a client on this machine reaches it, as a Pyro5 URI writes it:
    /// its bound address (the loopback address when it listens on every
    /// interface), whatever address it tells others behind NAT.
    pub fn local_location(&self) -> Option<String> {
        match self {
            Listener::Tcp(listener) => {
                let mut address = listener.local_addr().ok()?;
                if address.ip().is_unspecified() {
                    address.set_ip(match address.ip() {
                        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                Some(address.to_string())
            }
            #[cfg(unix)]
            Listener::Unix(_, path) => Some(format!("./u:{}", path.display())),
        }
    }

    /// Listens on a Unix socket at `path`. A file left there by a process
    /// that is gone is replaced; a socket someone still listens on, or a
    /// file that is not a socket, is an error rather than being clobbered.
    #[cfg(unix)]
    pub fn bind_unix(path: &Path) -> io::Result<Listener> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(existing) = std::fs::symlink_metadata(path) {
            if !existing.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the path exists and is not a socket",
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening on this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        Ok(Listener::Unix(listener, path.to_owned()))
    }

    /// Listens on a Unix socket (not available on this platform).
    #[cfg(not(unix))]
    pub fn bind_unix(_path: &Path) -> io::Result<Listener> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unix sockets are not available on this platform",
        ))
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    /// Makes `accept` return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(nonblocking),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.set_nonblocking(nonblocking),
        }
    }

    /// Where to connect to reach this listener.
    pub fn address(&self) -> io::Result<ListenAddress> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddress::Tcp),
            #[cfg(unix)]
            Listener::Unix(_, path) => Ok(ListenAddress::Unix(path.clone())),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }
}

/// Raises this process's limit on open files to the most it may have:
/// a daemon holds a descriptor per connection, and the usual soft limit
/// (1,024) would refuse connections long before `max_connections`.
/// Returns the limit now in force (`None`: unlimited or unknown).
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(err) => {
            tracing::debug!("cannot raise the open-file limit: {err}");
            limit.current
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl ListenAddress {
    /// Opens (and drops) a connection to the listener, which wakes a thread
    /// blocked accepting on it.
    pub fn poke(&self) {
        match self {
            ListenAddress::Tcp(address) => {
                let _ = TcpStream::connect_timeout(&reachable(*address), Duration::from_secs(1));
            }
            ListenAddress::Unix(path) => {
                let _ = Stream::connect_unix(path);
            }
        }
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Tcp(address) => write!(f, "{address}"),
            ListenAddress::Unix(path) => write!(f, "./u:{}", path.display()),
        }
    }
}

/// The address to connect to in order to reach a listener bound to
/// `address`: a wildcard bind is reached through loopback.
fn reachable(mut address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

/// The host name `public` in a configuration stands for this machine's
/// outward-facing address.
pub const PUBLIC_HOST: &str = "public";

/// This machine's outward-facing IPv4 address, found as PyroLab finds it:
/// the local address the system picks for a route to a private network.
/// Connecting a UDP socket sends nothing. Without such a route (an
/// isolated machine) the answer is loopback, with a warning, as in PyroLab.
pub fn public_ip() -> IpAddr {
    let probe = SocketAddr::from(([10, 255, 255, 255], 1));
    match local_address_toward(Ipv4Addr::UNSPECIFIED.into(), probe) {
        Some(ip) => ip,
        None => {
            tracing::warn!(
                "host `public`: this machine has no route to a network; using 127.0.0.1"
            );
            Ipv4Addr::LOCALHOST.into()
        }
    }
}

/// The local address a socket bound to `bind` would use to reach `probe`,
/// or `None` when there is no route.
fn local_address_toward(bind: IpAddr, probe: SocketAddr) -> Option<IpAddr> {
    let socket = UdpSocket::bind((bind, 0)).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Resolves a configured host: `public` becomes [`public_ip`], anything
/// else is kept as written.
pub fn resolve_host(host: &str) -> String {
    if host == PUBLIC_HOST {
        public_ip().to_string()
    } else {
        host.to_owned()
    }
}

/// `host:port`, with an IPv6 address in brackets (`[::1]:9090`).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host and port of `host:port` or `[v6]:port`.
pub fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_joined_and_split_with_brackets_for_ipv6() {
        for (host, port) in [("127.0.0.1", 9090), ("::1", 1), ("lab-pc", 65535)] {
            let joined = join_host_port(host, port);
            assert_eq!(split_host_port(&joined), Some((host.to_owned(), port)));
        }
        assert_eq!(join_host_port("::1", 9090), "[::1]:9090");
        assert_eq!(split_host_port("::1:9090"), None);
        assert_eq!(split_host_port("host"), None);
    }

    #[test]
    fn the_route_to_a_loopback_probe_starts_at_loopback() {
        let probe = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_eq!(
            local_address_toward(Ipv4Addr::LOCALHOST.into(), probe),
            Some(IpAddr::from(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn hosts_other_than_public_are_kept() {
        assert_eq!(resolve_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(resolve_host("lab-pc.example"), "lab-pc.example");
    }

    #[test]
    fn a_wildcard_bind_is_reached_through_loopback() {
        let any = SocketAddr::from(([0, 0, 0, 0], 9100));
        assert_eq!(reachable(any), SocketAddr::from(([127, 0, 0, 1], 9100)));
        let specific = SocketAddr::from(([127, 0, 0, 2], 9100));
        assert_eq!(reachable(specific), specific);
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_listener_replaces_a_stale_socket_and_refuses_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.sock");
        // A socket file whose listener is gone, as after a crash.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind_unix(&path).expect("a stale socket is replaced");
        let err = Listener::bind_unix(&path)
            .err()
            .expect("a live socket is kept");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(live);
        assert!(!path.exists(), "the socket file is removed on drop");
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_listener_does_not_clobber_an_ordinary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "keep me").unwrap();
        assert!(Listener::bind_unix(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }
}
