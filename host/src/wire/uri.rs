//! Pyro5 URIs: `PYRO:objectid@host:port` and `PYRO:objectid@./u:/socket`.
//! (`PYRONAME:` and `PYROMETA:` need a name server; they are resolved by
//! the name-server client.)

use std::fmt;
use std::path::PathBuf;

/// Where a daemon listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// TCP: host name or address, and port.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Location::Tcp { host, port } => write!(f, "{host}:{port}"),
            Location::Unix(path) => write!(f, "./u:{}", path.display()),
        }
    }
}

/// A `PYRO:` URI: an object on a daemon.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PyroUri {
    /// The object id (a service name, or `Pyro.Daemon`).
    pub object: String,
    /// The daemon's location.
    pub location: Location,
}

/// A URI that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Pyro URI {uri:?}: {reason}")]
pub struct UriError {
    uri: String,
    reason: String,
}

impl PyroUri {
    /// Parses `PYRO:object@host:port`, `PYRO:object@[::1]:port` or
    /// `PYRO:object@./u:/path/to/socket`. The scheme is case-insensitive,
    /// as in Pyro5.
    pub fn parse(text: &str) -> Result<PyroUri, UriError> {
        let fail = |reason: &str| UriError {
            uri: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = text
            .split_once(':')
            .ok_or_else(|| fail("expected PYRO:object@location"))?;
        if scheme.eq_ignore_ascii_case("PYRONAME") || scheme.eq_ignore_ascii_case("PYROMETA") {
            return Err(fail("this needs a name server lookup; use a PYRO: URI"));
        }
        if !scheme.eq_ignore_ascii_case("PYRO") {
            return Err(fail("expected the PYRO: scheme"));
        }
        let (object, location) = rest
            .rsplit_once('@')
            .ok_or_else(|| fail("expected object@location"))?;
        if object.is_empty() {
            return Err(fail("the object id is empty"));
        }
        let location = if let Some(path) = location.strip_prefix("./u:") {
            if path.is_empty() {
                return Err(fail("the unix socket path is empty"));
            }
            Location::Unix(PathBuf::from(path))
        } else {
            let (host, port) = location
                .rsplit_once(':')
                .ok_or_else(|| fail("expected host:port"))?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err(fail("the host is empty"));
            }
            let port = port
                .parse()
                .map_err(|_| fail("the port is not a number from 0 to 65535"))?;
            Location::Tcp {
                host: host.to_owned(),
                port,
            }
        };
        Ok(PyroUri {
            object: object.to_owned(),
            location,
        })
    }
}

impl fmt::Display for PyroUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PYRO:{}@{}", self.object, self.location)
    }
}

impl std::str::FromStr for PyroUri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PyroUri::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_location_kind() {
        for text in [
            "PYRO:library@localhost:9090",
            "PYRO:Pyro.Daemon@127.0.0.1:0",
            "PYRO:x@[::1]:5000",
            "PYRO:westview.laser@./u:/tmp/lab.sock",
        ] {
            let uri = PyroUri::parse(text).unwrap();
            assert_eq!(uri.to_string(), text);
        }
        let uri = PyroUri::parse("pyro:a@h:1").unwrap();
        assert_eq!(uri.object, "a");
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        for (text, reason) in [
            ("library", "expected PYRO:object@location"),
            ("PYRONAME:library", "name server"),
            ("PYRO:library", "expected object@location"),
            ("PYRO:@h:1", "object id is empty"),
            ("PYRO:a@h:99999", "port"),
            ("PYRO:a@h", "host:port"),
        ] {
            let err = PyroUri::parse(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }
}
