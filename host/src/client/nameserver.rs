//! A client for name servers (ours, or a stock Python Pyro5 one).
//!
//! ```no_run
//! use pyrolab_host::client::locate_ns;
//!
//! let ns = locate_ns("127.0.0.1", 9090)?;
//! let uri = ns.lookup("library")?;
//! for (name, uri) in ns.list(Some("lab."))? {
//!     println!("{name} {uri}");
//! }
//! # Ok::<(), pyrolab_host::client::ClientError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pyrolab_plugin_api::{CallArgs, Value};

use super::{ClientError, Proxy};
use crate::wire::serializer::Serializer;
use crate::wire::uri::{Location, PyroUri};

/// The name server's object id.
const NAMESERVER_OBJECT: &str = "Pyro.NameServer";

/// Pyro5's default name-server port.
pub const DEFAULT_NS_PORT: u16 = 9090;

/// The environment variables Pyro5 clients read the default name server
/// from.
pub const NS_HOST_ENV: &str = "PYRO_NS_HOST";
/// See [`NS_HOST_ENV`].
pub const NS_PORT_ENV: &str = "PYRO_NS_PORT";

/// Where a client looks for the name server when nothing else says: as
/// Pyro5 clients do, `PYRO_NS_HOST` (else `localhost`) and `PYRO_NS_PORT`
/// (else 9090).
///
/// # Errors
///
/// `PYRO_NS_PORT` is set but is not a port number.
pub fn default_location() -> Result<(String, u16), ClientError> {
    let host = std::env::var(NS_HOST_ENV)
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let port = match std::env::var(NS_PORT_ENV) {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().map_err(|_| {
            ClientError::Protocol(format!(
                "{NS_PORT_ENV}={text:?} is not a port number (1-65535)"
            ))
        })?,
        _ => DEFAULT_NS_PORT,
    };
    Ok((host, port))
}

/// A registration with its metadata.
pub type Registration = (String, BTreeSet<String>);

/// A proxy for a name server's `Pyro.NameServer` object.
#[derive(Debug)]
pub struct NameServerProxy {
    proxy: Proxy,
}

/// Connects to the name server at `host:port` (as Pyro5's
/// `locate_ns(host, port)`).
pub fn locate_ns(host: &str, port: u16) -> Result<NameServerProxy, ClientError> {
    NameServerProxy::connect(host, port, None, None)
}

impl NameServerProxy {
    /// Connects to the name server at `host:port`, with a call timeout and
    /// a serializer (`None`: the defaults, no timeout and a negotiated
    /// serializer: native with a pyrolab-host name server, serpent or
    /// `PYRO_SERIALIZER`'s with a Python one).
    pub fn connect(
        host: &str,
        port: u16,
        timeout: Option<Duration>,
        serializer: Option<&'static dyn Serializer>,
    ) -> Result<NameServerProxy, ClientError> {
        NameServerProxy::connect_with(host, port, timeout, serializer, None)
    }

    /// [`NameServerProxy::connect`], over TLS with `tls` (`Some(None)`:
    /// plain TCP) instead of as the process's default says.
    pub fn connect_with(
        host: &str,
        port: u16,
        timeout: Option<Duration>,
        serializer: Option<&'static dyn Serializer>,
        tls: Option<Option<crate::tls::ClientTls>>,
    ) -> Result<NameServerProxy, ClientError> {
        let mut proxy = Proxy::new(PyroUri {
            object: NAMESERVER_OBJECT.to_owned(),
            location: Location::Tcp {
                host: host.to_owned(),
                port,
            },
        });
        proxy.set_timeout(timeout.or(Some(Duration::from_secs(30))));
        if let Some(tls) = tls {
            proxy.set_tls(tls);
        }
        if let Some(serializer) = serializer {
            proxy.set_serializer(serializer);
        }
        proxy.bind()?;
        proxy.set_timeout(timeout);
        Ok(NameServerProxy { proxy })
    }

    /// The underlying proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Checks the name server answers.
    pub fn ping(&self) -> Result<(), ClientError> {
        self.proxy.call_with("ping", CallArgs::default()).map(drop)
    }

    /// How many names are registered.
    pub fn count(&self) -> Result<u64, ClientError> {
        self.proxy.call("count", ())
    }

    /// The URI registered under `name` (`NamingError` if none is).
    pub fn lookup(&self, name: &str) -> Result<PyroUri, ClientError> {
        let value = self.proxy.call_with("lookup", args(vec![name.into()]))?;
        uri_of(&value)
    }

    /// The URI and metadata registered under `name`.
    pub fn lookup_with_metadata(
        &self,
        name: &str,
    ) -> Result<(PyroUri, BTreeSet<String>), ClientError> {
        let value = self.proxy.call_with(
            "lookup",
            args(vec![name.into()]).kwarg("return_metadata", true),
        )?;
        match value.as_list() {
            Some([uri, metadata]) => Ok((uri_of(uri)?, tags(metadata)?)),
            _ => Err(unexpected("lookup", &value)),
        }
    }

    /// Registers `uri` under `name`; with `safe`, fails if the name is
    /// taken.
    pub fn register(
        &self,
        name: &str,
        uri: &str,
        safe: bool,
        metadata: &BTreeSet<String>,
    ) -> Result<(), ClientError> {
        let metadata = Value::List(metadata.iter().map(|t| Value::from(t.as_str())).collect());
        self.proxy
            .call_with(
                "register",
                args(vec![name.into(), uri.into()])
                    .kwarg("safe", safe)
                    .kwarg("metadata", metadata),
            )
            .map(drop)
    }

    /// Removes `name`; returns how many registrations were removed (0 or 1).
    pub fn remove(&self, name: &str) -> Result<u64, ClientError> {
        self.proxy.call("remove", (name,))
    }

    /// Names and URIs, all or those starting with `prefix`.
    pub fn list(&self, prefix: Option<&str>) -> Result<BTreeMap<String, String>, ClientError> {
        let mut call = CallArgs::default();
        if let Some(prefix) = prefix {
            call = call.kwarg("prefix", prefix);
        }
        let value = self.proxy.call_with("list", call)?;
        entries(&value, "list")?
            .into_iter()
            .map(|(name, uri)| match uri.as_str() {
                Some(uri) => Ok((name, uri.to_owned())),
                None => Err(unexpected("list", &value)),
            })
            .collect()
    }

    /// Names with their URIs and metadata, all or those starting with
    /// `prefix`.
    pub fn list_with_metadata(
        &self,
        prefix: Option<&str>,
    ) -> Result<BTreeMap<String, Registration>, ClientError> {
        let mut call = CallArgs::default().kwarg("return_metadata", true);
        if let Some(prefix) = prefix {
            call = call.kwarg("prefix", prefix);
        }
        let value = self.proxy.call_with("list", call)?;
        entries(&value, "list")?
            .into_iter()
            .map(|(name, item)| match item.as_list() {
                Some([Value::Str(uri), metadata]) => Ok((name, (uri.clone(), tags(metadata)?))),
                _ => Err(unexpected("list", &value)),
            })
            .collect()
    }
}

fn args(positional: Vec<Value>) -> CallArgs {
    CallArgs::positional(positional)
}

/// A URI as a name server returns it: Pyro5's `URI` object (a
/// `{"__class__": "Pyro5.core.URI", "state": [...]}` dict) or a string.
fn uri_of(value: &Value) -> Result<PyroUri, ClientError> {
    if let Some(text) = value.as_str() {
        return Ok(text.parse()?);
    }
    let state = value
        .get("state")
        .and_then(Value::as_list)
        .filter(|_| value.get("__class__").and_then(Value::as_str) == Some("Pyro5.core.URI"));
    let Some([_, Value::Str(object), sockname, host, port]) = state else {
        return Err(unexpected("lookup", value));
    };
    let location = match (sockname.as_str(), host.as_str(), port.as_int()) {
        (Some(path), _, _) => Location::Unix(path.into()),
        (None, Some(host), Some(port)) => Location::Tcp {
            host: host.to_owned(),
            port: u16::try_from(port).map_err(|_| unexpected("lookup", value))?,
        },
        _ => return Err(unexpected("lookup", value)),
    };
    Ok(PyroUri {
        object: object.clone(),
        location,
    })
}

fn tags(value: &Value) -> Result<BTreeSet<String>, ClientError> {
    match value {
        Value::Null => Ok(BTreeSet::new()),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| unexpected("metadata", value))
                })
                .collect()
        }
        other => Err(unexpected("metadata", other)),
    }
}

fn entries(value: &Value, method: &str) -> Result<Vec<(String, Value)>, ClientError> {
    let map = value.as_map().ok_or_else(|| unexpected(method, value))?;
    map.iter()
        .map(|(name, item)| match name {
            Value::Str(name) => Ok((name.clone(), item.clone())),
            _ => Err(unexpected(method, value)),
        })
        .collect()
}

fn unexpected(method: &str, value: &Value) -> ClientError {
    ClientError::Protocol(format!(
        "the name server's {method}() returned {value}, which is not what Pyro5 returns"
    ))
}

/// How long each of several name servers gets to answer before the next is
/// tried.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Looks `name` up in the first of `nameservers` that knows it, in order:
/// one that cannot be reached, or does not know the name (name servers
/// that do not share a registry may differ), gives way to the next. The
/// error names every name server tried and what each said.
pub fn lookup_in_any(
    nameservers: &[(String, u16)],
    name: &str,
    timeout: Option<Duration>,
) -> Result<PyroUri, ClientError> {
    let mut failures = Vec::new();
    for (host, port) in nameservers {
        let found =
            NameServerProxy::connect(host, *port, timeout, None).and_then(|ns| ns.lookup(name));
        match found {
            Ok(uri) => return Ok(uri),
            Err(err) if nameservers.len() == 1 => return Err(err),
            Err(err) => failures.push(format!(
                "{}: {err}",
                crate::net::join_host_port(host, *port)
            )),
        }
    }
    Err(ClientError::Protocol(format!(
        "cannot look up {name:?} in any of the name servers: {}",
        failures.join("; ")
    )))
}

/// Connects to the first of `nameservers` that answers, in order; with
/// its index.
pub fn connect_to_any(
    nameservers: &[(String, u16)],
    timeout: Option<Duration>,
) -> Result<(NameServerProxy, usize), ClientError> {
    let mut failures = Vec::new();
    for (index, (host, port)) in nameservers.iter().enumerate() {
        match NameServerProxy::connect(host, *port, timeout, None) {
            Ok(ns) => return Ok((ns, index)),
            Err(err) if nameservers.len() == 1 => return Err(err),
            Err(err) => failures.push(format!(
                "{}: {err}",
                crate::net::join_host_port(host, *port)
            )),
        }
    }
    Err(ClientError::Protocol(format!(
        "no name server answers: {}",
        failures.join("; ")
    )))
}

/// The name servers of a `PYRONAME:name@LOCATION` URI: one `host:port`,
/// or several separated by commas (a pyrolab-host extension: they are
/// tried in order), with Pyro5's defaults for what is left out.
pub(super) fn split_locations(location: &str) -> Result<Vec<(String, u16)>, ClientError> {
    location
        .split(',')
        .map(|one| split_location(one.trim()))
        .collect()
}

/// The `host:port` of a `PYRONAME:name@host:port` URI, with Pyro5's
/// defaults ([`default_location`]) for what is left out.
pub(super) fn split_location(location: &str) -> Result<(String, u16), ClientError> {
    if location.is_empty() {
        return default_location();
    }
    let bracketed = location.starts_with('[');
    let (host, port) = match location.rsplit_once(':') {
        Some((host, port)) if !bracketed || host.ends_with(']') => (host, Some(port)),
        _ => (location, None),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = match port {
        Some(port) => port.parse().map_err(|_| {
            ClientError::Protocol(format!(
                "invalid name server port in PYRONAME location {location:?}"
            ))
        })?,
        None => default_location()?.1,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyroname_locations_take_pyro5_defaults() {
        let split = |s: &str| split_location(s).unwrap();
        // (The test runs without PYRO_NS_HOST and PYRO_NS_PORT set.)
        if std::env::var_os(NS_HOST_ENV).is_none() && std::env::var_os(NS_PORT_ENV).is_none() {
            assert_eq!(split(""), ("localhost".to_owned(), 9090));
            assert_eq!(split("lab-pc"), ("lab-pc".to_owned(), 9090));
        }
        assert_eq!(split("127.0.0.1:9100"), ("127.0.0.1".to_owned(), 9100));
        assert_eq!(split("[::1]:9100"), ("::1".to_owned(), 9100));
        assert!(split_location("host:port").is_err());
        assert_eq!(
            split_locations("10.0.0.1:9100, 10.0.0.2:9101").unwrap(),
            [("10.0.0.1".to_owned(), 9100), ("10.0.0.2".to_owned(), 9101)]
        );
    }

    #[test]
    fn uris_come_as_pyro5_uri_objects_or_strings() {
        let object = Value::Map(vec![
            (Value::from("__class__"), Value::from("Pyro5.core.URI")),
            (
                Value::from("state"),
                Value::List(vec![
                    "PYRO".into(),
                    "obj".into(),
                    Value::Null,
                    "127.0.0.1".into(),
                    Value::Int(5555),
                ]),
            ),
        ]);
        assert_eq!(
            uri_of(&object).unwrap().to_string(),
            "PYRO:obj@127.0.0.1:5555"
        );
        assert_eq!(
            uri_of(&Value::from("PYRO:obj@./u:/tmp/s"))
                .unwrap()
                .to_string(),
            "PYRO:obj@./u:/tmp/s"
        );
        assert!(uri_of(&Value::Int(1)).is_err());
    }
}
