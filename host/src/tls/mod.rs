//! TLS: the lab's listeners and clients over rustls (with the ring
//! provider), compatible with Pyro5's SSL mode.
//!
//! - [`TlsSocket`]: a TCP connection speaking TLS, read and written as the
//!   daemon's event loop and the client read and write plain sockets.
//! - [`ServerTls`] / [`ClientTls`]: what a listener serves with and what a
//!   client connects with, loaded from PEM files.
//! - [`authority`]: the lab's certificate authority (`pyrolab-host tls`).
//!
//! A stock Pyro5 client is set up by environment alone: `PYRO_SSL=1`,
//! `PYRO_SSL_CACERTS` (the lab's CA), and `PYRO_SSL_CLIENTCERT` /
//! `PYRO_SSL_CLIENTKEY` when servers ask for a client certificate. The
//! Rust client and the CLI read the same variables ([`ClientTls::from_env`]).
//!
//! A caller's identity is its certificate's subject common name.

pub mod authority;
mod socket;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub use socket::TlsSocket;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read {what} {}: {reason}", path.display())]
    Read {
        /// `certificate`, `private key`, `CA certificates`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The files do not make a usable TLS setup (a key that does not
    /// match its certificate, a CA that is not one).
    #[error("{0}")]
    Setup(String),
    /// A variable of the environment is set wrong.
    #[error("{0}")]
    Environment(String),
}

/// The crypto provider every configuration is built with.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// What a listener (daemon, name server, monitor) serves TLS with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// Its certificate chain (PEM), the leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA certificates client certificates are checked against (a PEM
    /// file, or a folder of them); none: clients are not asked for one.
    pub ca: Option<PathBuf>,
    /// Whether a client without a certificate is refused (else it is
    /// served anonymously, and one with a certificate is identified).
    pub require_client_cert: bool,
}

/// A listener's TLS, loaded.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Loads the listener's certificate, key and CA.
    pub fn load(files: &ServerTlsFiles) -> Result<ServerTls, TlsError> {
        let chain = read_certificates(&files.cert, "certificate")?;
        let key = read_key(&files.key)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::Setup(err.to_string()))?;
        let builder = match &files.ca {
            Some(ca) => {
                let roots = Arc::new(read_roots(ca)?);
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = match files.require_client_cert {
                    true => verifier,
                    false => verifier.allow_unauthenticated(),
                };
                let verifier = verifier
                    .build()
                    .map_err(|err| TlsError::Setup(format!("CA {}: {err}", ca.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
            None if files.require_client_cert => {
                return Err(TlsError::Setup(
                    "client certificates are required, but no CA is given to check them".into(),
                ));
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).map_err(|err| {
            TlsError::Setup(format!(
                "certificate {} and key {}: {err}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }

    /// Starts the server side of a connection just accepted.
    pub fn accept(&self, tcp: std::net::TcpStream) -> std::io::Result<TlsSocket> {
        TlsSocket::server(tcp, self.config.clone())
    }

    /// The rustls configuration (for the monitor's HTTPS).
    pub fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// What a client connects with over TLS.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Trusts the CA certificates in `ca` (a PEM file or a folder of
    /// them) and, given `identity` (certificate, key), presents it to
    /// servers that ask.
    pub fn load(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTls, TlsError> {
        let roots = read_roots(ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::Setup(err.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(read_certificates(cert, "certificate")?, read_key(key)?)
                .map_err(|err| {
                    TlsError::Setup(format!(
                        "certificate {} and key {}: {err}",
                        cert.display(),
                        key.display()
                    ))
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// A component's: trusting its CA, presenting its certificate.
    pub fn for_component(files: &ServerTlsFiles) -> Result<ClientTls, TlsError> {
        let ca = files
            .ca
            .as_deref()
            .ok_or_else(|| TlsError::Setup("no CA is given to check the servers called".into()))?;
        ClientTls::load(ca, Some((&files.cert, &files.key)))
    }

    /// Pyro5's client settings from the environment: `None` unless
    /// `PYRO_SSL` is true; then `PYRO_SSL_CACERTS` (required: the lab's CA
    /// certificate, or a folder of them) and, together, `PYRO_SSL_CLIENTCERT`
    /// and `PYRO_SSL_CLIENTKEY`.
    pub fn from_env() -> Result<Option<ClientTls>, TlsError> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let enabled = match std::env::var("PYRO_SSL") {
            Ok(value) => parse_pyro_bool(&value).ok_or_else(|| {
                TlsError::Environment(format!(
                    "PYRO_SSL={value:?}: expected true or false (1/0, yes/no, on/off)"
                ))
            })?,
            Err(_) => false,
        };
        if !enabled {
            return Ok(None);
        }
        let Some(ca) = var("PYRO_SSL_CACERTS") else {
            return Err(TlsError::Environment(
                "PYRO_SSL is on but PYRO_SSL_CACERTS is not set: set it to the lab's CA \
                 certificate (`pyrolab-host tls show` prints where it is)"
                    .into(),
            ));
        };
        let identity = match (var("PYRO_SSL_CLIENTCERT"), var("PYRO_SSL_CLIENTKEY")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Environment(
                    "PYRO_SSL_CLIENTCERT and PYRO_SSL_CLIENTKEY go together: set both or neither"
                        .into(),
                ));
            }
        };
        let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        ClientTls::load(Path::new(&ca), identity).map(Some)
    }

    /// Opens TLS over `tcp` to the server known as `host` (the host of
    /// its URI: its certificate must name it, as Pyro5's clients check).
    pub fn connect(&self, tcp: std::net::TcpStream, host: &str) -> std::io::Result<TlsSocket> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server = ServerName::try_from(host.to_owned()).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("TLS: {host:?} is not a host name a certificate can name: {err}"),
            )
        })?;
        TlsSocket::connect(tcp, self.config.clone(), server)
    }
}

/// What clients of this process connect with unless told otherwise: set
/// by [`set_default_client`] (a component, from its configuration), else
/// read from the environment on first use ([`ClientTls::from_env`]).
pub fn default_client() -> Result<Option<ClientTls>, TlsError> {
    if let Some(set) = DEFAULT_CLIENT.read().ok().and_then(|slot| slot.clone()) {
        return Ok(set);
    }
    static FROM_ENV: OnceLock<Result<Option<ClientTls>, String>> = OnceLock::new();
    FROM_ENV
        .get_or_init(|| ClientTls::from_env().map_err(|err| err.to_string()))
        .clone()
        .map_err(TlsError::Environment)
}

/// Makes `tls` what this process's clients connect with by default.
pub fn set_default_client(tls: Option<ClientTls>) {
    if let Ok(mut slot) = DEFAULT_CLIENT.write() {
        *slot = Some(tls);
    }
}

static DEFAULT_CLIENT: RwLock<Option<Option<ClientTls>>> = RwLock::new(None);

/// Pyro5's reading of a boolean setting from the environment.
fn parse_pyro_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// The subject common name of a DER certificate: the identity of whoever
/// presented it.
pub fn subject_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let common_name = parsed.subject().iter_common_name().next();
    common_name
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |reason: String| TlsError::Read {
        what,
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| read_error(pem_reason(err)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| read_error(pem_reason(err)))?;
    if certificates.is_empty() {
        return Err(read_error("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| TlsError::Read {
        what: "private key",
        path: path.to_owned(),
        reason: pem_reason(err),
    })
}

/// The CA certificates in `path`: a PEM file, or every `.pem`/`.crt` file
/// of a folder (as `PYRO_SSL_CACERTS` may name either).
fn read_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let files = match path.is_dir() {
        true => ca_folder_files(path)?,
        false => vec![path.to_owned()],
    };
    let mut roots = rustls::RootCertStore::empty();
    for file in &files {
        for certificate in read_certificates(file, "CA certificates")? {
            roots.add(certificate).map_err(|err| {
                TlsError::Setup(format!("CA certificate in {}: {err}", file.display()))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Read {
            what: "CA certificates",
            path: path.to_owned(),
            reason: "no certificate found".into(),
        });
    }
    Ok(roots)
}

fn ca_folder_files(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let entries = std::fs::read_dir(dir).map_err(|err| TlsError::Read {
        what: "CA certificates",
        path: dir.to_owned(),
        reason: err.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "pem" || ext == "crt")
        })
        .collect();
    files.sort();
    Ok(files)
}

fn pem_reason(err: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match err {
        Error::Io(err) => err.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in it".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}
