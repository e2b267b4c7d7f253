//! A TCP socket speaking TLS, with the same reading and writing contract
//! as a plain one ([`crate::net::Stream`]): a read may or may not wait, a
//! short read means the socket had nothing more (the daemon's event loop
//! watches sockets edge-triggered and relies on it), a write that must
//! not wait takes what fits and says `WouldBlock` when nothing does.
//!
//! rustls does no I/O of its own: this drives it over the socket. Only one
//! thread uses a connection's session at a time (a daemon connection has
//! one worker, a client connection one caller), so the mutex is there for
//! `Sync`, not for contention; [`TlsSocket::shutdown`] only tries it, so
//! the daemon may cut a connection short while a worker waits on it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::ServerName;

use crate::sync::LockUnpoisoned;

/// How much ciphertext one read from the socket takes at most: rustls
/// would read a record (about 16 KB) per system call; a larger read and
/// records fed to it from memory take a megabyte in a few calls.
const READ_AHEAD: usize = 128 * 1024;

/// A TLS connection over TCP, server or client side.
pub struct TlsSocket {
    tcp: TcpStream,
    session: Mutex<Session>,
    /// The peer's identity, read from its certificate once the handshake
    /// is done (`None` inside: it sent none).
    identity: OnceLock<Option<String>>,
}

impl TlsSocket {
    /// The server side of a connection just accepted; the handshake
    /// happens as its first bytes are read.
    pub fn server(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<TlsSocket> {
        let session = rustls::ServerConnection::new(config).map_err(tls_error)?;
        Ok(TlsSocket::new(tcp, session.into()))
    }

    /// The client side, its handshake done: an untrusted or misnamed
    /// server certificate, or a refused client certificate, is the error.
    pub fn connect(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        server: ServerName<'static>,
    ) -> io::Result<TlsSocket> {
        let session = rustls::ClientConnection::new(config, server).map_err(tls_error)?;
        let socket = TlsSocket::new(tcp, session.into());
        socket.complete_handshake()?;
        Ok(socket)
    }

    fn new(tcp: TcpStream, mut tls: rustls::Connection) -> TlsSocket {
        // Replies are encrypted as the socket takes them, not all at once.
        tls.set_buffer_limit(Some(256 * 1024));
        TlsSocket {
            tcp,
            session: Mutex::new(Session {
                tls,
                incoming: Vec::new(),
                fed: 0,
                eof: false,
            }),
            identity: OnceLock::new(),
        }
    }

    /// The TCP socket underneath (addresses, timeouts, the poller).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Runs the handshake to its end, waiting as the socket's timeouts
    /// allow.
    fn complete_handshake(&self) -> io::Result<()> {
        let mut guard = self.session.lock_unpoisoned();
        let session = &mut *guard;
        while session.tls.is_handshaking() {
            self.flush(&mut session.tls, true)?;
            if !session.tls.is_handshaking() {
                break;
            }
            if session.has_incoming() {
                if let Err(err) = session.feed() {
                    let _ = self.flush(&mut session.tls, true);
                    return Err(err);
                }
                continue;
            }
            match session.read_socket(&self.tcp, true) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the peer closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no answer to the TLS handshake in time",
                    ));
                }
                Err(err) => return Err(err),
            }
        }
        self.flush(&mut session.tls, true)
    }

    /// Who the peer is by its certificate (its subject's common name), once
    /// the handshake is done; `None` before, or when it sent none.
    pub fn peer_identity(&self) -> Option<String> {
        if let Some(known) = self.identity.get() {
            return known.clone();
        }
        let session = self.session.lock_unpoisoned();
        if session.tls.is_handshaking() {
            return None;
        }
        let identity = session
            .tls
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| super::subject_name(leaf));
        drop(session);
        self.identity.get_or_init(|| identity).clone()
    }

    /// Reads plaintext into `buf`: what the session holds, then what the
    /// socket has, until `buf` is full or the socket has no more. With
    /// `wait`, the first read from the socket waits up to its read timeout
    /// (`WouldBlock` after it); 0 means the peer closed the connection.
    pub fn receive(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut guard = self.session.lock_unpoisoned();
        let session = &mut *guard;
        let mut filled = 0;
        loop {
            match session.tls.reader().read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled),
                Ok(read) => {
                    filled += read;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // A peer that closes without a close_notify (many do) has
                // closed all the same.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(err) => return Err(err),
            }
            // Handshake messages, alerts, key updates the session owes.
            if let Err(err) = self.flush(&mut session.tls, false) {
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(err);
                }
            }
            if session.has_incoming() {
                if let Err(err) = session.feed() {
                    let _ = self.flush(&mut session.tls, false);
                    return Err(err);
                }
                continue;
            }
            let wait_now = wait && filled == 0;
            match session.read_socket(&self.tcp, wait_now) {
                Ok(_) => {}
                Err(err) if filled > 0 && is_retryable(&err) => return Ok(filled),
                Err(err) => return Err(err),
            }
        }
    }

    /// Sends what the session has encrypted: all of it, or, without
    /// `wait`, `WouldBlock` when the socket takes no more (the rest stays
    /// in the session).
    fn flush(&self, session: &mut rustls::Connection, wait: bool) -> io::Result<()> {
        while session.wants_write() {
            session.write_tls(&mut Raw::new(&self.tcp, wait))?;
        }
        Ok(())
    }

    /// Sends what is still encrypted and unsent, without waiting: whether
    /// all of it is out.
    pub fn flush_now(&self) -> io::Result<bool> {
        let mut session = self.session.lock_unpoisoned();
        match self.flush(&mut session.tls, false) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Takes as much of `slices` as can be sent now, without waiting:
    /// `WouldBlock` while earlier data is still not out. What it took may
    /// be partly unsent: [`TlsSocket::flush_now`] sends the rest.
    pub fn send_now(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut session = self.session.lock_unpoisoned();
        self.flush(&mut session.tls, false)?;
        let taken = take_plaintext(&mut session.tls, slices)?;
        match self.flush(&mut session.tls, false) {
            Err(err) if err.kind() != io::ErrorKind::WouldBlock => Err(err),
            _ => Ok(taken),
        }
    }

    /// Writes `slices` (some of them), waiting for the socket as its write
    /// timeout allows.
    pub fn send_waiting(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut session = self.session.lock_unpoisoned();
        let taken = take_plaintext(&mut session.tls, slices)?;
        self.flush(&mut session.tls, true)?;
        Ok(taken)
    }

    /// Shuts the connection down, telling the peer (close_notify) when no
    /// one is using the session now.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Ok(mut session) = self.session.try_lock() {
            if matches!(how, Shutdown::Write | Shutdown::Both) {
                session.tls.send_close_notify();
                let _ = self.flush(&mut session.tls, false);
            }
        }
        self.tcp.shutdown(how)
    }
}

/// A connection's TLS state and the ciphertext read but not yet given to
/// rustls.
struct Session {
    tls: rustls::Connection,
    /// Ciphertext from the socket; `fed` bytes of it are rustls's already.
    incoming: Vec<u8>,
    fed: usize,
    /// The socket reached its end (rustls is told once the rest is fed).
    eof: bool,
}

impl Session {
    /// Whether ciphertext read from the socket (or its end) waits to be
    /// given to rustls.
    fn has_incoming(&self) -> bool {
        self.fed < self.incoming.len() || self.eof
    }

    /// Gives rustls what it takes of the ciphertext read, and decrypts it.
    fn feed(&mut self) -> io::Result<()> {
        if self.fed == self.incoming.len() {
            // The end, once everything before it is in.
            self.eof = false;
            self.tls.read_tls(&mut io::empty())?;
            return process(&mut self.tls);
        }
        let mut rest = &self.incoming[self.fed..];
        let took = self.tls.read_tls(&mut rest)?;
        self.fed += took;
        if self.fed == self.incoming.len() {
            // An idle connection keeps no buffer.
            self.incoming = Vec::new();
            self.fed = 0;
        }
        process(&mut self.tls)
    }

    /// Reads what the socket has (waiting, with `wait`, up to its read
    /// timeout): `Ok(0)` at its end.
    fn read_socket(&mut self, tcp: &TcpStream, wait: bool) -> io::Result<usize> {
        use rustix::net::RecvFlags;
        let flags = match wait {
            true => RecvFlags::empty(),
            false => RecvFlags::DONTWAIT,
        };
        self.incoming.reserve(READ_AHEAD);
        let (read, _) = rustix::net::recv(
            tcp,
            rustix::buffer::spare_capacity(&mut self.incoming),
            flags,
        )?;
        if read == 0 {
            self.eof = true;
        }
        Ok(read)
    }
}

/// Decrypts what rustls was given; a protocol error (a bad certificate, a
/// garbled record) is the error, its alert left for the caller to send.
fn process(tls: &mut rustls::Connection) -> io::Result<()> {
    let handshaking = tls.is_handshaking();
    match tls.process_new_packets() {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType))
            if handshaking =>
        {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS: the peer does not speak TLS (a plain Pyro client? it needs PYRO_SSL=1)",
            ))
        }
        Err(err) => Err(tls_error(err)),
    }
}

/// Hands the session as much plaintext as its buffer limit takes.
fn take_plaintext(session: &mut rustls::Connection, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let mut taken = 0;
    for slice in slices {
        let took = session.writer().write(slice)?;
        taken += took;
        if took < slice.len() {
            break;
        }
    }
    Ok(taken)
}

/// An error a read may meet without the connection being broken.
fn is_retryable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::TimedOut
    )
}

/// A TLS failure as an I/O error that names it.
pub(super) fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {err}"))
}

/// The socket for rustls to write to, each system call saying whether to
/// wait (the socket itself stays blocking, as plain connections' do).
struct Raw<'a> {
    tcp: &'a TcpStream,
    wait: bool,
}

impl<'a> Raw<'a> {
    fn new(tcp: &'a TcpStream, wait: bool) -> Raw<'a> {
        Raw { tcp, wait }
    }
}

impl Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use rustix::net::SendFlags;
        let flags = match self.wait {
            true => SendFlags::NOSIGNAL,
            false => SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        };
        Ok(rustix::net::send(self.tcp, buf, flags)?)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use rustix::net::SendFlags;
        let flags = match self.wait {
            true => SendFlags::NOSIGNAL,
            false => SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        };
        Ok(rustix::net::sendmsg(
            self.tcp,
            bufs,
            &mut rustix::net::SendAncillaryBuffer::default(),
            flags,
        )?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
