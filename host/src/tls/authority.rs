//! The lab's certificate authority: a CA in the data directory
//! (`tls/ca.crt`, its key `tls/ca.key` readable by its owner only) and the
//! certificates it issues (`tls/NAME.crt`, `tls/NAME.key`).
//!
//! Certificates name their holder in the subject's common name (the
//! identity access rules use) and, for servers, the host names and
//! addresses clients reach them by (Pyro5's clients check the URI's host
//! against them, as browsers do). Keys are ECDSA P-256.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::data_dir::{self, DataDir};

/// The CA's file names, without extension.
pub const CA_NAME: &str = "ca";

/// How long the CA is valid by default: ten years.
pub const CA_DAYS: u32 = 3650;

/// How long an issued certificate is valid by default: about two years.
pub const DEFAULT_DAYS: u32 = 825;

/// Why the authority could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// There is no CA yet.
    #[error("no lab CA in {}: run `pyrolab-host tls init` first", .0.display())]
    NoAuthority(PathBuf),
    /// `init` with a CA already there.
    #[error("a lab CA exists already: {} (remove the folder to start over; every certificate it issued stops being trusted)", .0.display())]
    Exists(PathBuf),
    /// A certificate of that name exists already.
    #[error("a certificate named {name:?} exists already: {} (give --force to replace it)", .path.display())]
    Issued {
        /// The name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// A name that cannot be a file name here.
    #[error(
        "{0:?} cannot be a certificate name: use letters, digits, `.`, `-` and `_` (and not `ca`)"
    )]
    BadName(String),
    /// A `--host` that is neither a host name nor an address.
    #[error("--host {0:?}: not a host name or an IP address")]
    BadHost(String),
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate could not be made or read.
    #[error("{0}")]
    Certificate(String),
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A listener: daemons, name servers, the monitor.
    Server,
    /// A caller: a person's or a program's identity.
    Client,
    /// Both: a daemon serves and is a client of its name servers.
    Both,
}

impl Usage {
    fn purposes(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        }
    }
}

/// A certificate to issue.
#[derive(Clone, Debug)]
pub struct Request {
    /// Its name: the subject's common name (the identity) and its files'.
    pub name: String,
    /// What it is for.
    pub usage: Usage,
    /// The host names and addresses it is valid for (servers); none: the
    /// loopback names (`localhost`, `127.0.0.1`, `::1`).
    pub hosts: Vec<String>,
    /// From when it is valid.
    pub not_before: SystemTime,
    /// Until when it is valid.
    pub not_after: SystemTime,
    /// Replace a certificate of the same name.
    pub force: bool,
}

impl Request {
    /// A certificate valid from now for `days`.
    pub fn new(name: &str, usage: Usage, hosts: Vec<String>, days: u32) -> Request {
        let now = SystemTime::now();
        Request {
            name: name.to_owned(),
            usage,
            hosts,
            // A little slack for clocks a few minutes apart.
            not_before: now - Duration::from_secs(300),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
            force: false,
        }
    }
}

/// What `tls show` says of a certificate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Its file name without extension (`ca` for the CA).
    pub name: String,
    /// The subject's common name: the identity.
    pub subject: String,
    /// Whether it is the CA.
    pub ca: bool,
    /// Host names and addresses it is valid for.
    pub hosts: Vec<String>,
    /// `server`, `client`, `server+client` or `ca`.
    pub usage: String,
    /// Valid from, seconds since the Unix epoch.
    pub not_before: i64,
    /// Valid until, seconds since the Unix epoch.
    pub not_after: i64,
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file, when it is there.
    pub key: Option<PathBuf>,
}

/// The lab's certificate authority, in a folder.
#[derive(Clone, Debug)]
pub struct Authority {
    dir: PathBuf,
}

impl Authority {
    /// The one in the data directory (`tls/`).
    pub fn of(data_dir: &DataDir) -> Authority {
        Authority::at(data_dir.tls_dir())
    }

    /// The one in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Authority {
        Authority { dir: dir.into() }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate clients and servers trust (`PYRO_SSL_CACERTS`).
    pub fn ca_cert(&self) -> PathBuf {
        self.cert_path(CA_NAME)
    }

    fn ca_key(&self) -> PathBuf {
        self.key_path(CA_NAME)
    }

    /// Certificate `name`'s file.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    /// Certificate `name`'s private key file.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// Whether the CA is there.
    pub fn exists(&self) -> bool {
        self.ca_cert().exists() && self.ca_key().exists()
    }

    /// Creates the CA, named `lab` in its subject (`NAME lab CA` and a
    /// random mark).
    pub fn init(&self, lab: &str, days: u32) -> Result<Summary, AuthorityError> {
        if self.ca_cert().exists() || self.ca_key().exists() {
            return Err(AuthorityError::Exists(self.dir.clone()));
        }
        data_dir::create_private_dir(&self.dir).map_err(|source| AuthorityError::Io {
            what: "cannot create",
            path: self.dir.clone(),
            source,
        })?;
        let key = KeyPair::generate().map_err(certificate_error)?;
        let params = ca_params(lab, days)?;
        let certificate = params.self_signed(&key).map_err(certificate_error)?;
        write_private(&self.ca_key(), &key.serialize_pem())?;
        write_public(&self.ca_cert(), &certificate.pem())?;
        self.summary(CA_NAME)
    }

    /// Issues a certificate signed by the CA, written as `NAME.crt` and
    /// `NAME.key`.
    pub fn issue(&self, request: &Request) -> Result<Summary, AuthorityError> {
        check_name(&request.name)?;
        if !self.exists() {
            return Err(AuthorityError::NoAuthority(self.dir.clone()));
        }
        let cert_path = self.cert_path(&request.name);
        if cert_path.exists() && !request.force {
            return Err(AuthorityError::Issued {
                name: request.name.clone(),
                path: cert_path,
            });
        }
        let ca_key = read(&self.ca_key())?;
        let ca_key = KeyPair::from_pem(&ca_key).map_err(certificate_error)?;
        let ca_cert = read(&self.ca_cert())?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key).map_err(certificate_error)?;
        let key = KeyPair::generate().map_err(certificate_error)?;
        let certificate = leaf_params(request)?
            .signed_by(&key, &issuer)
            .map_err(certificate_error)?;
        write_private(&self.key_path(&request.name), &key.serialize_pem())?;
        write_public(&cert_path, &certificate.pem())?;
        self.summary(&request.name)
    }

    /// Every certificate in the folder, the CA first.
    pub fn list(&self) -> Result<Vec<Summary>, AuthorityError> {
        if !self.ca_cert().exists() {
            return Err(AuthorityError::NoAuthority(self.dir.clone()));
        }
        let entries = std::fs::read_dir(&self.dir).map_err(|source| AuthorityError::Io {
            what: "cannot read",
            path: self.dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let path = entry.path();
                (path.extension()? == "crt")
                    .then(|| path.file_stem()?.to_str().map(str::to_owned))
                    .flatten()
            })
            .filter(|name| name != CA_NAME)
            .collect();
        names.sort();
        std::iter::once(CA_NAME.to_owned())
            .chain(names)
            .map(|name| self.summary(&name))
            .collect()
    }

    /// What certificate `name` says of itself.
    pub fn summary(&self, name: &str) -> Result<Summary, AuthorityError> {
        let cert = self.cert_path(name);
        let key = self.key_path(name);
        let mut summary = summarize(&cert)?;
        summary.name = name.to_owned();
        summary.key = key.exists().then_some(key);
        Ok(summary)
    }
}

/// Reads what a PEM certificate file says of itself.
pub fn summarize(path: &Path) -> Result<Summary, AuthorityError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(path)
        .map_err(|err| AuthorityError::Certificate(format!("{}: {err:?}", path.display())))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|err| AuthorityError::Certificate(format!("{}: {err}", path.display())))?;
    let ca = parsed.is_ca();
    let hosts = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let usage = match (ca, parsed.extended_key_usage().ok().flatten()) {
        (true, _) => "ca".to_owned(),
        (false, Some(eku)) => match (eku.value.server_auth, eku.value.client_auth) {
            (true, true) => "server+client".to_owned(),
            (true, false) => "server".to_owned(),
            (false, true) => "client".to_owned(),
            (false, false) => "other".to_owned(),
        },
        (false, None) => "any".to_owned(),
    };
    let subject = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok(Summary {
        name: String::new(),
        subject,
        ca,
        hosts,
        usage,
        not_before: parsed.validity().not_before.timestamp(),
        not_after: parsed.validity().not_after.timestamp(),
        cert: path.to_owned(),
        key: None,
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

fn ca_params(lab: &str, days: u32) -> Result<CertificateParams, AuthorityError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // A mark of its own, so that two labs' CAs never share a name (a
    // certificate from the other would then fail on its signature, not
    // as one from an unknown CA).
    let mark = &uuid::Uuid::new_v4().simple().to_string()[..8];
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{lab} lab CA {mark}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = datetime(now - Duration::from_secs(300))?;
    params.not_after = datetime(now + Duration::from_secs(u64::from(days) * 86_400))?;
    Ok(params)
}

fn leaf_params(request: &Request) -> Result<CertificateParams, AuthorityError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, request.name.clone());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = request.usage.purposes();
    params.use_authority_key_identifier_extension = true;
    if request.usage != Usage::Client {
        let hosts = match request.hosts.is_empty() {
            true => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            false => request.hosts.clone(),
        };
        params.subject_alt_names = hosts
            .iter()
            .map(|host| san(host))
            .collect::<Result<_, _>>()?;
    }
    params.not_before = datetime(request.not_before)?;
    params.not_after = datetime(request.not_after)?;
    Ok(params)
}

fn san(host: &str) -> Result<SanType, AuthorityError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !bare.is_empty()
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if !valid {
        return Err(AuthorityError::BadHost(host.to_owned()));
    }
    let name = bare
        .to_owned()
        .try_into()
        .map_err(|_| AuthorityError::BadHost(host.to_owned()))?;
    Ok(SanType::DnsName(name))
}

fn check_name(name: &str) -> Result<(), AuthorityError> {
    let fine = !name.is_empty()
        && name != CA_NAME
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    match fine {
        true => Ok(()),
        false => Err(AuthorityError::BadName(name.to_owned())),
    }
}

fn datetime(at: SystemTime) -> Result<time::OffsetDateTime, AuthorityError> {
    let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    };
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|err| AuthorityError::Certificate(format!("validity date: {err}")))
}

fn certificate_error(err: rcgen::Error) -> AuthorityError {
    AuthorityError::Certificate(err.to_string())
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path).map_err(|source| AuthorityError::Io {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })
}

/// Writes a private key: created readable by its owner only, and made so
/// if it was there before.
fn write_private(path: &Path, text: &str) -> Result<(), AuthorityError> {
    let io_error = |source| AuthorityError::Io {
        what: "cannot write",
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut file = data_dir::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    data_dir::make_private(path).map_err(io_error)
}

fn write_public(path: &Path, text: &str) -> Result<(), AuthorityError> {
    std::fs::write(path, text).map_err(|source| AuthorityError::Io {
        what: "cannot write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_certificates_that_name_their_holder_and_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::at(dir.path().join("tls"));
        let ca = authority.init("test", 30).unwrap();
        assert!(ca.ca);
        assert!(ca.subject.starts_with("test lab CA "), "{}", ca.subject);
        let issued = authority
            .issue(&Request::new(
                "lab-daemon",
                Usage::Both,
                vec!["lab-pc.example".into(), "10.0.0.7".into()],
                10,
            ))
            .unwrap();
        assert_eq!(issued.subject, "lab-daemon");
        assert_eq!(issued.hosts, ["lab-pc.example", "10.0.0.7"]);
        assert_eq!(issued.usage, "server+client");
        assert!(issued.not_after - issued.not_before >= 10 * 86_400);
        let names: Vec<_> = authority
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["ca", "lab-daemon"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [authority.ca_key(), authority.key_path("lab-daemon")] {
                let mode = std::fs::metadata(&key).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", key.display());
            }
        }
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        for bad in ["", "ca", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(
                matches!(check_name(bad), Err(AuthorityError::BadName(_))),
                "{bad:?}"
            );
        }
        check_name("alice.smith-2_x").unwrap();
    }

    #[test]
    fn a_second_init_and_a_second_issue_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::at(dir.path());
        authority.init("test", 30).unwrap();
        assert!(matches!(
            authority.init("test", 30),
            Err(AuthorityError::Exists(_))
        ));
        let request = Request::new("alice", Usage::Client, vec![], 10);
        authority.issue(&request).unwrap();
        assert!(matches!(
            authority.issue(&request),
            Err(AuthorityError::Issued { .. })
        ));
        authority
            .issue(&Request {
                force: true,
                ..request
            })
            .unwrap();
    }
}
