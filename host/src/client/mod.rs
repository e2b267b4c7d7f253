//! The native Rust client: a [`Proxy`] for one remote object.
//!
//! ```no_run
//! use pyrolab_host::client::Proxy;
//!
//! let proxy = Proxy::connect("PYRO:sample@localhost:9100")?;
//! let sum: i64 = proxy.call("add", (1, 2))?;
//! let echoed: String = proxy.call("echo", ("hello",))?;
//! # Ok::<(), pyrolab_host::client::ClientError>(())
//! ```
//!
//! The serializer is negotiated without an extra round trip: the
//! handshake goes out in serpent (understood by every Pyro5 peer), and a
//! pyrolab-host daemon or name server says in its reply that it reads the
//! native serializer (the plugin ABI's value encoding, so arguments reach
//! the driver without being re-parsed); the proxy then uses native for the
//! rest of the connection. Addresses that answered so are remembered, and
//! later connections to them start in native; if such a peer turns out to
//! be something else now (a Python daemon on the same port), the proxy
//! connects once more in serpent. With any other peer (stock Pyro5 or
//! PyroLab) calls go in serpent, or in the serializer named by Pyro5's
//! `PYRO_SERIALIZER` environment variable (`serpent`, `json`, `msgpack`,
//! `marshal`). [`Proxy::set_serializer`] fixes one instead.
//!
//! A dropped connection is reopened by the next call. A call whose request
//! may already have reached the daemon is never sent twice: if the
//! connection breaks while waiting for its reply, that call fails with
//! [`ClientError::ConnectionClosed`], because an instrument command must not
//! run twice by accident.

use crate::sync::LockUnpoisoned;
use std::io::{self, BufReader, IoSlice, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyrolab_plugin_api::{CallArgs, Value, ValueError, from_value, to_value, value};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod nameserver;

pub use nameserver::{NameServerProxy, locate_ns};

use crate::daemon::pyro::DAEMON_OBJECT;
use crate::net::Stream;
use crate::tls::ClientTls;
use crate::wire::call::Call;
use crate::wire::message::{HEADER_SIZE, Message, ReadError, annotation, flags, kind};
use crate::wire::native::Native;
use crate::wire::serializer::{self, SerializeError, Serializer};
use crate::wire::uri::{Location, PyroUri, UriError};

/// An exception raised in the daemon or the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The qualified exception class (`builtins.ValueError`,
    /// `Pyro5.errors.DaemonError`).
    pub class: String,
    /// Its message.
    pub message: String,
    /// The remote traceback lines.
    pub traceback: Vec<String>,
}

impl RemoteError {
    /// The class without its module (`ValueError`).
    pub fn kind(&self) -> &str {
        self.class.rsplit('.').next().unwrap_or(&self.class)
    }

    fn from_value(value: &Value) -> RemoteError {
        let class = value
            .get("__class__")
            .and_then(Value::as_str)
            .unwrap_or("builtins.Exception")
            .to_owned();
        let message = match value.get("args").and_then(Value::as_list) {
            Some([Value::Str(text)]) => text.clone(),
            Some(args) => args
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        };
        let traceback = value
            .get("attributes")
            .and_then(|a| a.get("_pyroTraceback"))
            .and_then(Value::as_list)
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        RemoteError {
            class,
            message,
            traceback,
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message)
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URI is not valid.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The daemon could not be reached.
    #[error("cannot connect to {location}: {source}")]
    Connect {
        /// Where.
        location: String,
        /// Why.
        source: io::Error,
    },
    /// TLS could not be set up (files, or `PYRO_SSL_*` variables).
    #[error("TLS: {0}")]
    Tls(String),
    /// The daemon refused the connection (CONNECTFAIL), with its reason.
    #[error("the daemon refused the connection: {0}")]
    Refused(String),
    /// The connection broke while waiting for a reply; the call may or may
    /// not have run.
    #[error("the connection closed while waiting for the reply: {0}")]
    ConnectionClosed(String),
    /// No reply within the timeout; the call may still be running.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply was not what the protocol promises.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The daemon or the driver raised an exception.
    #[error("{0}")]
    Remote(RemoteError),
    /// Arguments or result could not be converted.
    #[error("cannot convert: {0}")]
    Convert(String),
    /// The method returned an item stream to a caller that wanted one
    /// value (the stream was closed).
    #[error("{0} returns an item stream: iterate over it (Proxy::stream)")]
    Stream(String),
}

struct Connection {
    reader: BufReader<Stream>,
    writer: Stream,
    seq: u16,
    /// What calls on this connection are sent in.
    serializer: &'static dyn Serializer,
    /// Whether the peer said it is pyrolab-host.
    pyrolab_host: bool,
    /// Whether the peer reads native calls in the arguments-map form.
    args_map: bool,
    /// The object's metadata from the handshake (`methods`, `oneway`,
    /// `attrs`).
    metadata: Value,
}

/// The largest reply a proxy accepts.
const MAX_REPLY_SIZE: u64 = 1 << 30;

/// How a proxy chooses its serializer.
#[derive(Clone, Copy)]
enum Choice {
    /// Native with pyrolab-host peers, this one with everyone else.
    Negotiate(&'static dyn Serializer),
    /// This one, whoever the peer is.
    Fixed(&'static dyn Serializer),
}

/// What a reply holds.
enum Reply {
    Value(Value),
    /// The id of an item stream the call returned.
    Stream(String),
}

/// What a call returned: a value, or an item stream.
#[derive(Debug)]
pub enum Returned<'p> {
    /// A plain result.
    Value(Value),
    /// An item stream, read through the proxy.
    Stream(RemoteStream<'p>),
}

/// An item stream a remote method returned (Pyro5's
/// `_StreamResultIterator`): each `next` asks the daemon for the next
/// item, on the proxy's connection. Dropping it before its end closes the
/// stream in the daemon. An error ends the stream.
#[derive(Debug)]
pub struct RemoteStream<'p> {
    proxy: &'p Proxy,
    id: String,
    /// A plain result given as a stream of one.
    pending: Option<Value>,
    ended: bool,
}

impl RemoteStream<'_> {
    /// The stream's id in the daemon (empty for a plain result).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Closes the stream before its end.
    pub fn close(mut self) -> Result<(), ClientError> {
        self.close_now()
    }

    fn close_now(&mut self) -> Result<(), ClientError> {
        if std::mem::replace(&mut self.ended, true) || self.id.is_empty() {
            return Ok(());
        }
        let id = CallArgs::positional(vec![Value::from(self.id.as_str())]);
        self.proxy
            .call_daemon("close_stream", id, flags::ONEWAY)
            .map(drop)
    }
}

impl Iterator for RemoteStream<'_> {
    type Item = Result<Value, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(value) = self.pending.take() {
            self.ended = true;
            return Some(Ok(value));
        }
        if self.ended {
            return None;
        }
        let id = CallArgs::positional(vec![Value::from(self.id.as_str())]);
        match self.proxy.call_daemon("get_next_stream_item", id, 0) {
            Ok(item) => Some(Ok(item.expect("a call that is not oneway has a reply"))),
            Err(ClientError::Remote(err)) if err.kind() == "StopIteration" => {
                self.ended = true;
                None
            }
            Err(err) => {
                self.ended = true;
                Some(Err(err))
            }
        }
    }
}

impl Drop for RemoteStream<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.close_now() {
            tracing::debug!("closing item stream {}: {err}", self.id);
        }
    }
}

/// A connection to one remote object, usable from several threads (calls
/// are sent one at a time, as on a Pyro5 proxy).
pub struct Proxy {
    uri: PyroUri,
    choice: Choice,
    timeout: Option<Duration>,
    /// TLS to connect with: `None` for the process's default
    /// ([`crate::tls::default_client`], `PYRO_SSL_*` unless set).
    tls: Option<Option<ClientTls>>,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let serializer = match self.choice {
            Choice::Negotiate(other) => format!("native or {}", other.name()),
            Choice::Fixed(fixed) => fixed.name().to_owned(),
        };
        f.debug_struct("Proxy")
            .field("uri", &self.uri.to_string())
            .field("serializer", &serializer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Whether the first bytes of a plain connection's answer are a TLS record
/// (an alert, 0x15, or a handshake, 0x16, of TLS 1.x) rather than Pyro.
fn answers_in_tls(reader: &mut BufReader<Stream>) -> bool {
    use std::io::BufRead;
    matches!(reader.fill_buf(), Ok([0x15 | 0x16, 0x03, ..]))
}

/// The serializer for peers that are not pyrolab-host: Pyro5's
/// `PYRO_SERIALIZER` when it names one we speak, else serpent (Pyro5's
/// default).
pub fn foreign_serializer() -> &'static dyn Serializer {
    static CHOSEN: OnceLock<&'static dyn Serializer> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let serpent = serializer::by_id(serializer::id::SERPENT).expect("serpent is built in");
        match std::env::var("PYRO_SERIALIZER") {
            Ok(name) if name.is_empty() => serpent,
            Ok(name) => match serializer::by_name(&name.to_ascii_lowercase()) {
                Some(chosen) if chosen.id() != serializer::id::NATIVE => chosen,
                _ => {
                    tracing::warn!(
                        "PYRO_SERIALIZER={name:?} is not one of serpent, json, msgpack, marshal; using serpent"
                    );
                    serpent
                }
            },
            Err(_) => serpent,
        }
    })
}

/// Peers that said, in a handshake, that they speak the native serializer:
/// connections to them start in native. Bounded: a client that talks to
/// very many daemons forgets them all now and then and asks again.
mod native_peers {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    use crate::sync::LockUnpoisoned;

    const MAX_REMEMBERED: usize = 4096;

    fn peers() -> std::sync::MutexGuard<'static, HashSet<String>> {
        static PEERS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
        PEERS.get_or_init(Default::default).lock_unpoisoned()
    }

    pub(super) fn contains(location: &str) -> bool {
        peers().contains(location)
    }

    pub(super) fn remember(location: &str) {
        let mut peers = peers();
        if peers.len() >= MAX_REMEMBERED {
            peers.clear();
        }
        peers.insert(location.to_owned());
    }

    pub(super) fn forget(location: &str) {
        peers().remove(location);
    }
}

impl Proxy {
    /// A proxy for `uri`; connects (and checks the object exists) now.
    /// `uri` is a `PYRO:` URI, or a `PYRONAME:name[@host[:port]]` one,
    /// which is looked up in that name server first (default
    /// `localhost:9090`, as in Pyro5).
    pub fn connect(uri: &str) -> Result<Proxy, ClientError> {
        let proxy = Proxy::new(resolve(uri)?);
        proxy.ensure_connected()?;
        Ok(proxy)
    }

    /// A proxy for `uri` that connects on its first call, negotiating its
    /// serializer (see the module documentation).
    pub fn new(uri: PyroUri) -> Proxy {
        Proxy {
            uri,
            choice: Choice::Negotiate(foreign_serializer()),
            timeout: None,
            tls: None,
            connection: Mutex::new(None),
        }
    }

    /// Connects over TLS with `tls`, or in plain TCP with `None`, instead
    /// of as the process's default says. Takes effect on the next
    /// connection.
    pub fn set_tls(&mut self, tls: Option<ClientTls>) {
        self.tls = Some(tls);
        *self.lock() = None;
    }

    /// Uses `serializer` whoever the peer is, instead of negotiating: the
    /// native one talks only to pyrolab-host, `serpent`, `json`, `msgpack`
    /// and `marshal` to anyone. Takes effect on the next connection.
    pub fn set_serializer(&mut self, serializer: &'static dyn Serializer) {
        self.choice = Choice::Fixed(serializer);
        *self.lock() = None;
    }

    /// Negotiates again (the default), using `foreign` with peers that are
    /// not pyrolab-host. Takes effect on the next connection.
    pub fn negotiate_serializer(&mut self, foreign: &'static dyn Serializer) {
        self.choice = Choice::Negotiate(foreign);
        *self.lock() = None;
    }

    /// The serializer calls go in now: `None` before the first connection.
    pub fn serializer(&self) -> Option<&'static dyn Serializer> {
        self.lock().as_ref().map(|c| c.serializer)
    }

    /// Whether the peer said it is pyrolab-host (connecting first if need
    /// be).
    pub fn peer_is_pyrolab_host(&self) -> Result<bool, ClientError> {
        self.ensure_connected()?;
        Ok(self.lock().as_ref().is_some_and(|c| c.pyrolab_host))
    }

    /// The names the object's daemon lists for it in the handshake, under
    /// `key`: `"methods"`, `"oneway"` or `"attrs"` (connecting first if
    /// need be).
    pub fn exposed(&self, key: &str) -> Result<Vec<String>, ClientError> {
        self.ensure_connected()?;
        let guard = self.lock();
        let names = guard
            .as_ref()
            .and_then(|c| c.metadata.get(key))
            .and_then(Value::as_list)
            .unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect())
    }

    /// Connects now (if not connected) and checks the object exists, like
    /// Pyro5's `_pyroBind`.
    pub fn bind(&self) -> Result<(), ClientError> {
        self.ensure_connected()
    }

    /// Sets how long a call may wait for its reply (and for connecting).
    /// `None` (the default) waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        if let Some(connection) = self.lock().as_ref() {
            let _ = connection.writer.set_timeouts(timeout);
        }
    }

    /// The URI.
    pub fn uri(&self) -> &PyroUri {
        &self.uri
    }

    /// Calls `method` with positional arguments (a tuple, or `()` for none)
    /// and converts the result.
    pub fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Result<R, ClientError> {
        let call = SerdeCall {
            object: &self.uri.object,
            method,
            args: &args,
        };
        let result = self
            .invoke(call, 0)?
            .expect("a call that is not oneway has a reply");
        from_value(result)
            .map_err(|err| ClientError::Convert(format!("result of {method}(): {err}")))
    }

    /// Calls `method` with positional and keyword arguments. A method
    /// that returns an item stream is a [`ClientError::Stream`] (its
    /// stream is closed): call it with [`stream`](Self::stream) or
    /// [`call_any`](Self::call_any).
    pub fn call_with(&self, method: &str, args: CallArgs) -> Result<Value, ClientError> {
        match self.call_any(method, args)? {
            Returned::Value(value) => Ok(value),
            Returned::Stream(_) => Err(ClientError::Stream(format!("{method}()"))),
        }
    }

    /// Calls a method that returns an item stream (a Python generator, a
    /// driver's `Stream`): its items, read one at a time as the iterator
    /// is advanced. A method that returns a plain value gives a stream of
    /// that one value.
    pub fn stream(&self, method: &str, args: CallArgs) -> Result<RemoteStream<'_>, ClientError> {
        match self.call_any(method, args)? {
            Returned::Stream(stream) => Ok(stream),
            Returned::Value(value) => Ok(RemoteStream {
                proxy: self,
                id: String::new(),
                pending: Some(value),
                ended: false,
            }),
        }
    }

    /// Calls `method`, whatever it returns: a value, or an item stream.
    pub fn call_any(&self, method: &str, args: CallArgs) -> Result<Returned<'_>, ClientError> {
        let call = ValueCall(Call::new(&self.uri.object, method, args));
        let reply = self
            .invoke_replied(call, 0)?
            .expect("a call that is not oneway has a reply");
        Ok(match reply {
            Reply::Value(value) => Returned::Value(value),
            Reply::Stream(id) => Returned::Stream(RemoteStream {
                proxy: self,
                id,
                pending: None,
                ended: false,
            }),
        })
    }

    /// Calls a method of the daemon's own object (`Pyro.Daemon`) on this
    /// proxy's connection.
    fn call_daemon(
        &self,
        method: &str,
        args: CallArgs,
        call_flags: u16,
    ) -> Result<Option<Value>, ClientError> {
        let call = ValueCall(Call::new(DAEMON_OBJECT, method, args));
        self.invoke(call, call_flags)
    }

    /// Calls `method` without waiting for it to run (Pyro5 `@oneway`).
    pub fn call_oneway(&self, method: &str, args: CallArgs) -> Result<(), ClientError> {
        let call = ValueCall(Call::new(&self.uri.object, method, args));
        self.invoke(call, flags::ONEWAY).map(drop)
    }

    /// Reads a property.
    pub fn get<R: DeserializeOwned>(&self, property: &str) -> Result<R, ClientError> {
        self.call("__getattr__", (property,))
    }

    /// Assigns a property.
    pub fn set(&self, property: &str, value: impl Serialize) -> Result<(), ClientError> {
        let value = to_value(&value).map_err(|err| ClientError::Convert(err.to_string()))?;
        self.call_with(
            "__setattr__",
            CallArgs::positional(vec![Value::from(property), value]),
        )
        .map(drop)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.connection.lock_unpoisoned()
    }

    fn ensure_connected(&self) -> Result<(), ClientError> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        Ok(())
    }

    fn invoke(&self, call: impl Request, call_flags: u16) -> Result<Option<Value>, ClientError> {
        match self.invoke_replied(call, call_flags)? {
            None => Ok(None),
            Some(Reply::Value(value)) => Ok(Some(value)),
            Some(Reply::Stream(id)) => {
                // A caller that wants one value: the stream is closed again.
                let id = CallArgs::positional(vec![id.into()]);
                let _ = self.call_daemon("close_stream", id, flags::ONEWAY);
                Err(ClientError::Stream("the method".to_owned()))
            }
        }
    }

    fn invoke_replied(
        &self,
        mut call: impl Request,
        call_flags: u16,
    ) -> Result<Option<Reply>, ClientError> {
        let mut guard = self.lock();
        // A connection that broke earlier is replaced before sending.
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let connection = guard.as_mut().expect("just opened");
        connection.seq = connection.seq.wrapping_add(1);
        let seq = connection.seq;
        match send(&mut call, connection, call_flags, seq) {
            Ok(()) => {}
            // No whole request was delivered: reopen and send once more
            // (in the serializer the new connection chose).
            Err(SendFailure::Broken(err)) => {
                tracing::debug!("reconnecting after a failed send: {err}");
                let connection = guard.insert(self.open()?);
                connection.seq = seq;
                match send(&mut call, connection, call_flags, seq) {
                    Ok(()) => {}
                    Err(SendFailure::Broken(err)) => {
                        *guard = None;
                        return Err(ClientError::ConnectionClosed(err.to_string()));
                    }
                    Err(SendFailure::Invalid { reason, broken }) => {
                        if broken {
                            *guard = None;
                        }
                        return Err(ClientError::Convert(reason));
                    }
                }
            }
            Err(SendFailure::Invalid { reason, broken }) => {
                if broken {
                    *guard = None;
                }
                return Err(ClientError::Convert(reason));
            }
        }
        if call_flags & flags::ONEWAY != 0 {
            return Ok(None);
        }
        let connection = guard.as_mut().expect("connected");
        // A large result that is one byte string (a waveform, an image)
        // is read straight into its own buffer, not copied out of a frame.
        let lone_bytes = |id, first: &[u8], total| {
            serializer::by_id(id).and_then(|format| format.lone_bytes_header(first, total))
        };
        let read =
            Message::read_from_taking_bytes(&mut connection.reader, MAX_REPLY_SIZE, lone_bytes);
        let (reply, taken) = match read {
            Ok(read) => read,
            Err(err) => {
                *guard = None;
                return Err(self.read_failure(err));
            }
        };
        if reply.seq != seq || reply.kind != kind::RESULT {
            *guard = None;
            return Err(ClientError::Protocol(format!(
                "expected the RESULT of call {seq}, got message type {} for call {}",
                reply.kind, reply.seq
            )));
        }
        let value = match taken {
            Some(bytes) => Value::Bytes(bytes),
            None => reply_serializer(&reply)?
                .deserialize(&reply.payload)
                .map_err(|err| ClientError::Protocol(err.to_string()))?,
        };
        if reply.flags & flags::ITEMSTREAMRESULT != 0 {
            let id = reply
                .annotations
                .iter()
                .find(|(id, _)| id == b"STRM")
                .map(|(_, id)| String::from_utf8_lossy(id).into_owned())
                .filter(|id| !id.is_empty());
            return match id {
                Some(id) => Ok(Some(Reply::Stream(id))),
                None => Err(ClientError::Protocol(
                    "result of call is an iterator, but the server is not configured to allow streaming"
                        .to_owned(),
                )),
            };
        }
        if reply.flags & flags::EXCEPTION != 0 {
            return Err(ClientError::Remote(RemoteError::from_value(&value)));
        }
        Ok(Some(Reply::Value(value)))
    }

    fn read_failure(&self, err: ReadError) -> ClientError {
        match err {
            ReadError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                ClientError::Timeout(self.timeout.unwrap_or_default())
            }
            ReadError::Closed => ClientError::ConnectionClosed("closed by the daemon".to_owned()),
            ReadError::Io(io) => ClientError::ConnectionClosed(io.to_string()),
            ReadError::Protocol(reason) => ClientError::Protocol(reason),
        }
    }

    /// Connects and performs the handshake, choosing the serializer.
    fn open(&self) -> Result<Connection, ClientError> {
        let location = self.uri.location.to_string();
        match self.choice {
            Choice::Fixed(serializer) => self.open_with(serializer, false),
            Choice::Negotiate(foreign) if native_peers::contains(&location) => {
                match self.open_with(&Native, true) {
                    // The peer at that address no longer reads native (it
                    // closed on our handshake): ask again, as a stranger.
                    Err(ClientError::ConnectionClosed(_) | ClientError::Protocol(_)) => {
                        native_peers::forget(&location);
                        self.open_with(foreign, true)
                    }
                    other => other,
                }
            }
            Choice::Negotiate(foreign) => self.open_with(foreign, true),
        }
    }

    /// Connects and performs the handshake in `serializer`; with
    /// `negotiate`, switches to native if the peer says it reads it.
    fn open_with(
        &self,
        serializer: &'static dyn Serializer,
        negotiate: bool,
    ) -> Result<Connection, ClientError> {
        let location = self.uri.location.to_string();
        let connect_error = |source: io::Error| ClientError::Connect {
            location: location.clone(),
            source,
        };
        let stream = match &self.uri.location {
            Location::Tcp { host, port } => {
                let addresses: Vec<_> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(connect_error)?
                    .collect();
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut connected = None;
                for address in addresses {
                    let attempt = match self.timeout {
                        Some(timeout) => TcpStream::connect_timeout(&address, timeout),
                        None => TcpStream::connect(address),
                    };
                    match attempt {
                        Ok(stream) => {
                            connected = Some(stream);
                            break;
                        }
                        Err(err) => last = err,
                    }
                }
                let stream = connected.ok_or_else(|| connect_error(last))?;
                let _ = stream.set_nodelay(true);
                match self.tls()? {
                    Some(tls) => {
                        // The handshake waits as long as a call may.
                        stream
                            .set_read_timeout(self.timeout)
                            .and_then(|()| stream.set_write_timeout(self.timeout))
                            .map_err(connect_error)?;
                        let socket = tls.connect(stream, host).map_err(connect_error)?;
                        Stream::Tls(std::sync::Arc::new(socket))
                    }
                    None => Stream::Tcp(stream),
                }
            }
            Location::Unix(path) => Stream::connect_unix(path).map_err(connect_error)?,
        };
        stream.set_timeouts(self.timeout).map_err(connect_error)?;
        let reader = BufReader::new(stream.try_clone().map_err(connect_error)?);
        let mut connection = Connection {
            reader,
            writer: stream,
            seq: 0,
            serializer,
            pyrolab_host: false,
            args_map: false,
            metadata: Value::Null,
        };
        let welcome = self.handshake(&mut connection)?;
        connection.pyrolab_host = welcome.reads_native;
        connection.args_map = welcome.args_map;
        connection.metadata = welcome.metadata;
        if connection.pyrolab_host {
            native_peers::remember(&location);
        } else {
            native_peers::forget(&location);
        }
        if negotiate && connection.pyrolab_host {
            connection.serializer = &Native;
        }
        Ok(connection)
    }

    /// The TLS to connect with.
    fn tls(&self) -> Result<Option<ClientTls>, ClientError> {
        match &self.tls {
            Some(chosen) => Ok(chosen.clone()),
            None => crate::tls::default_client().map_err(|err| ClientError::Tls(err.to_string())),
        }
    }

    /// Sends CONNECT and reads the answer: what the peer said of itself,
    /// and the object's metadata.
    fn handshake(&self, connection: &mut Connection) -> Result<Welcome, ClientError> {
        let hello = Value::Map(vec![
            (Value::from("handshake"), Value::from("hello")),
            (Value::from("object"), Value::from(self.uri.object.as_str())),
        ]);
        let serializer = connection.serializer;
        let payload = serializer
            .serialize(&hello)
            .map_err(|err| ClientError::Convert(err.to_string()))?;
        let message = Message::new(kind::CONNECT, serializer.id(), 0, 0, payload).encode(false);
        connection
            .writer
            .write_all(&message)
            .map_err(|err| ClientError::ConnectionClosed(err.to_string()))?;
        if !connection.writer.is_tls() && answers_in_tls(&mut connection.reader) {
            return Err(ClientError::Tls(format!(
                "{} speaks TLS: connect with TLS (PYRO_SSL=1 and PYRO_SSL_CACERTS, with \
                 PYRO_SSL_CLIENTCERT and PYRO_SSL_CLIENTKEY if it asks for a certificate)",
                self.uri.location
            )));
        }
        let reply = Message::read_from(&mut connection.reader, MAX_REPLY_SIZE)
            .map_err(|err| self.read_failure(err))?;
        let value = reply_serializer(&reply)?
            .deserialize(&reply.payload)
            .map_err(|err| ClientError::Protocol(err.to_string()))?;
        match reply.kind {
            kind::CONNECTOK => Ok(Welcome {
                reads_native: reads_native(&reply),
                args_map: reply
                    .annotations
                    .iter()
                    .any(|(id, _)| *id == annotation::ARGS_MAP),
                metadata: value.get("meta").cloned().unwrap_or_default(),
            }),
            kind::CONNECTFAIL => Err(ClientError::Refused(
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned),
            )),
            other => Err(ClientError::Protocol(format!(
                "expected CONNECTOK or CONNECTFAIL, got message type {other}"
            ))),
        }
    }
}

/// What a CONNECTOK says.
struct Welcome {
    /// The sender is pyrolab-host and reads the native serializer.
    reads_native: bool,
    /// It reads native calls in the arguments-map form.
    args_map: bool,
    /// The object's metadata.
    metadata: Value,
}

/// Whether a CONNECTOK says its sender reads the native serializer.
fn reads_native(reply: &Message) -> bool {
    reply
        .annotations
        .iter()
        .any(|(id, data)| *id == annotation::SERIALIZERS && data.contains(&serializer::id::NATIVE))
}

/// The serializer a reply says it is in (a peer answers in the request's).
fn reply_serializer(reply: &Message) -> Result<&'static dyn Serializer, ClientError> {
    serializer::by_id(reply.serializer_id).ok_or_else(|| {
        ClientError::Protocol(format!(
            "the reply is in serializer {}, which this client does not read",
            reply.serializer_id
        ))
    })
}

/// A `PYRO:` URI as it is, or a `PYRONAME:name[@host[:port]]` one looked
/// up in its name server (default `localhost:9090`). Several name servers,
/// `PYRONAME:name@host1:port1,host2:port2`, are tried in order until one
/// knows the name (see [`nameserver::lookup_in_any`]).
pub fn resolve(text: &str) -> Result<PyroUri, ClientError> {
    match text.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("PYRONAME") => {
            let (name, location) = rest.split_once('@').unwrap_or((rest, ""));
            let nameservers = nameserver::split_locations(location)?;
            // With several, one that is cut off must not hold the rest up
            // for as long as the kernel tries to connect.
            let timeout = (nameservers.len() > 1).then_some(nameserver::FAILOVER_TIMEOUT);
            nameserver::lookup_in_any(&nameservers, name, timeout)
        }
        _ => Ok(text.parse()?),
    }
}

/// Why a request could not be sent.
enum SendFailure {
    /// The connection failed before the whole request was out: the daemon
    /// cannot have run it.
    Broken(io::Error),
    /// The arguments could not be encoded; `broken` when part of the
    /// request had gone out already, so the connection is unusable.
    Invalid { reason: String, broken: bool },
}

/// Sends INVOKE `seq` on `connection`: its large byte strings from where
/// they are when the request can be sent in pieces, else as one frame.
fn send(
    call: &mut impl Request,
    connection: &Connection,
    call_flags: u16,
    seq: u16,
) -> Result<(), SendFailure> {
    let serializer = connection.serializer.id();
    let header = |len| Message::header(kind::INVOKE, serializer, call_flags, seq, [0; 16], len);
    if let Some(sent) = call.send_in_pieces(connection, &header) {
        return sent;
    }
    // The payload is written once, straight into the frame.
    let message = Message::frame(kind::INVOKE, serializer, call_flags, seq, [0; 16], |out| {
        call.write(connection, out)
    })
    .map_err(|err| SendFailure::Invalid {
        reason: err.to_string(),
        broken: false,
    })?;
    (&connection.writer)
        .write_all(&message)
        .map_err(SendFailure::Broken)
}

/// A call's request payload, written for the connection it goes on.
trait Request {
    /// Appends the INVOKE payload in `connection`'s serializer.
    fn write(&mut self, connection: &Connection, out: &mut Vec<u8>) -> Result<(), SerializeError>;

    /// Sends the whole INVOKE (`header` gives its header for a payload
    /// length) with its large byte strings written to the socket from
    /// where they are, never copied into a frame; `None` when this
    /// request is not sent so (then it is framed by [`Request::write`]).
    fn send_in_pieces(
        &mut self,
        _connection: &Connection,
        _header: &dyn Fn(usize) -> [u8; HEADER_SIZE],
    ) -> Option<Result<(), SendFailure>> {
        None
    }
}

/// A call whose arguments are values.
struct ValueCall<'a>(Call<'a>);

impl Request for ValueCall<'_> {
    fn write(&mut self, connection: &Connection, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        if connection.serializer.id() == serializer::id::NATIVE && connection.args_map {
            self.0.encode_args_map_into(out);
            Ok(())
        } else {
            self.0.encode_into(connection.serializer, out)
        }
    }
}

/// A call whose positional arguments are the caller's own serde types:
/// to a daemon that reads the arguments-map form they are encoded straight
/// into the frame (each byte string copied once); otherwise made values.
struct SerdeCall<'a, T: ?Sized> {
    object: &'a str,
    method: &'a str,
    args: &'a T,
}

impl<T: Serialize + ?Sized> Request for SerdeCall<'_, T> {
    fn write(&mut self, connection: &Connection, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        if connection.serializer.id() == serializer::id::NATIVE && connection.args_map {
            return write_serde_args_map(self.object, self.method, self.args, out)
                .map_err(|err| SerializeError::new(err.to_string()));
        }
        let args = positional(self.args).map_err(|err| SerializeError::new(err.to_string()))?;
        ValueCall(Call::new(self.object, self.method, args)).write(connection, out)
    }

    /// To a daemon that reads the arguments-map form, arguments of
    /// [`SEND_IN_PLACE`] bytes or more whose encoding can be written front
    /// to back ([`value::measure_for_pieces`]) go in pieces.
    fn send_in_pieces(
        &mut self,
        connection: &Connection,
        header: &dyn Fn(usize) -> [u8; HEADER_SIZE],
    ) -> Option<Result<(), SendFailure>> {
        if connection.serializer.id() != serializer::id::NATIVE || !connection.args_map {
            return None;
        }
        let measured = value::measure_for_pieces(self.args)?;
        let wrap = match value::kind_of(&[measured.first])? {
            "list" | "tuple" => false,
            "NoneType" => return None,
            _ => true,
        };
        if measured.size < SEND_IN_PLACE {
            return None;
        }
        let mut head = Vec::with_capacity(HEADER_SIZE + 64);
        head.resize(HEADER_SIZE, 0);
        write_args_map_start(self.object, self.method, &mut head);
        if wrap {
            value::encode_list_start_into(1, &mut head);
        }
        let payload_len = head.len() - HEADER_SIZE + measured.size;
        head[..HEADER_SIZE].copy_from_slice(&header(payload_len));
        let stream = &connection.writer;
        let mut head = Some(head);
        let (mut sent_any, mut failed) = (false, None);
        let mut sink = |encoded: &[u8], large: &[u8]| {
            let head = head.take().unwrap_or_default();
            sent_any = true;
            let mut slices = [
                IoSlice::new(&head),
                IoSlice::new(encoded),
                IoSlice::new(large),
            ];
            write_all_slices(stream, &mut slices).map_err(|err| {
                let reason = ValueError::new(format!("cannot send: {err}"));
                failed = Some(err);
                reason
            })
        };
        let written = value::encode_serialize_in_pieces(self.args, SEND_IN_PLACE, &mut sink);
        Some(match (written, failed) {
            // The request's end never went out: the daemon cannot run it.
            (_, Some(err)) => Err(SendFailure::Broken(err)),
            (Ok(size), None) if size == measured.size => Ok(()),
            (Ok(_), None) => Err(SendFailure::Invalid {
                reason: "the arguments serialized differently from when they were measured"
                    .to_owned(),
                broken: true,
            }),
            (Err(err), None) => Err(SendFailure::Invalid {
                reason: err.to_string(),
                broken: sent_any,
            }),
        })
    }
}

/// Arguments encoded to this many bytes or more are sent in pieces
/// ([`Request::send_in_pieces`]); smaller ones are cheaper to frame.
const SEND_IN_PLACE: usize = 64 * 1024;

/// Writes all of `slices`, in as few vectored writes as the socket takes.
fn write_all_slices(stream: &Stream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    // Past the empty ones in front.
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match (&*stream).write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// `[object, method, {"kwargs": {}, "args": ARGS}]` in the native
/// encoding, ARGS written from serde as [`positional`] reads them: a
/// sequence is the arguments, `()` none, anything else the one argument.
fn write_serde_args_map<T: Serialize + ?Sized>(
    object: &str,
    method: &str,
    args: &T,
    out: &mut Vec<u8>,
) -> Result<(), ValueError> {
    write_args_map_start(object, method, out);
    let at = out.len();
    value::encode_serialize(args, out)?;
    match value::kind_of(&out[at..]) {
        Some("list" | "tuple") => {}
        Some("NoneType") => {
            out.truncate(at);
            value::encode_list_start_into(0, out);
        }
        _ => {
            let mut header = Vec::with_capacity(2);
            value::encode_list_start_into(1, &mut header);
            out.splice(at..at, header);
        }
    }
    Ok(())
}

/// `[object, method, {"kwargs": {}, "args": ` in the native encoding: all
/// of an arguments-map call but its positional arguments.
fn write_args_map_start(object: &str, method: &str, out: &mut Vec<u8>) {
    value::encode_list_start_into(3, out);
    value::encode_str_into(object, out);
    value::encode_str_into(method, out);
    value::encode_map_start_into(2, out);
    // `kwargs` first: `args` then ends the frame, whose buffer
    // encode_serialize sizes for it, and nothing after it grows (and
    // copies) the buffer again; and large arguments can be sent from
    // where they are. Drivers read the entries in any order.
    value::encode_str_into("kwargs", out);
    value::encode_map_start_into(0, out);
    value::encode_str_into("args", out);
}

fn positional(args: &(impl Serialize + ?Sized)) -> Result<CallArgs, ClientError> {
    match to_value(&args).map_err(|err| ClientError::Convert(err.to_string()))? {
        Value::Null => Ok(CallArgs::default()),
        Value::List(items) | Value::Tuple(items) => Ok(CallArgs::positional(items)),
        single => Ok(CallArgs::positional(vec![single])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyrolab_plugin_api::Bytes;

    /// The arguments-map part of a payload, decoded as drivers decode it.
    fn arguments_of(payload: &[u8]) -> CallArgs {
        let [_, _, arguments] = value::split_list_exact::<3>(payload).expect("three parts");
        CallArgs::decode(arguments).unwrap()
    }

    fn both_ways(args: &(impl Serialize + ?Sized)) -> (CallArgs, CallArgs) {
        let mut direct = Vec::new();
        write_serde_args_map("obj", "m", args, &mut direct).unwrap();
        let mut through_values = Vec::new();
        Call::new("obj", "m", positional(args).unwrap()).encode_args_map_into(&mut through_values);
        (arguments_of(&direct), arguments_of(&through_values))
    }

    #[test]
    fn arguments_written_from_serde_read_as_the_values_would() {
        let (a, b) = both_ways(&(1, "two", 3.5));
        assert_eq!(a, b);
        assert_eq!(a.args.len(), 3);
        let (a, b) = both_ways(&());
        assert_eq!((a.args.len(), b.args.len()), (0, 0));
        let (a, b) = both_ways(&5);
        assert_eq!(a, b);
        assert_eq!(a.args, vec![Value::Int(5)]);
        let (a, b) = both_ways(&vec![1, 2]);
        assert_eq!(a, b);
        let blob = Bytes::from(vec![9u8; 100_000]);
        let (a, b) = both_ways(&(&blob,));
        assert_eq!(a, b);
        assert_eq!(a.args, vec![Value::Bytes(vec![9; 100_000])]);
    }
}
