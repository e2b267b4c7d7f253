//! `postgresql` storage: one registry in a PostgreSQL database, shared by
//! every name server configured with it, on any host.
//!
//! Each name server still answers from its own copy in memory, but brings
//! that copy up to date before every operation with one query for what
//! changed since it last asked, so a name registered through one name
//! server is found through another at once. A change is committed to the
//! database before its caller hears it succeeded.
//!
//! # Schema
//!
//! - `pyrolab_ns_names(name, uri, metadata text[], seq)`: the registry.
//! - `pyrolab_ns_removed(name, seq)`: names removed since they were
//!   registered (a name is in one table or the other), so other name
//!   servers learn of removals.
//! - `pyrolab_ns_seq`: every change takes the next number. Writers take a
//!   transaction-scoped advisory lock first, so changes commit in the
//!   order of their numbers and "everything after N" is never missing one
//!   that commits late.
//!
//! Several labs can share a database by giving each its own schema
//! (`options=-csearch_path=lab2` in the URL).
//!
//! A lost connection (the database restarted, the network cut) is opened
//! again on the next operation, and the copy is then read whole. A session
//! advisory lock elects the one name server that runs autoclean for the
//! whole lab: it is held as long as its connection lives, and taken over
//! by another name server when it is gone.

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::storage::{Changes, Entry, Store, StoreError};

/// The advisory lock writers take (a random constant: advisory locks are
/// one namespace per database).
const WRITE_LOCK: i64 = 0x7079_726f_6e73_0001;
/// The advisory lock the name server that runs autoclean holds.
const AUTOCLEAN_LOCK: i64 = 0x7079_726f_6e73_0002;
/// The advisory lock held while the schema is created (two name servers
/// starting at once would race `CREATE ... IF NOT EXISTS`).
const SCHEMA_LOCK: i64 = 0x7079_726f_6e73_0003;

/// How long connecting may take at start, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting again after a lost connection may take, unless the
/// URL says otherwise: the name server answers from its copy meanwhile,
/// and a database on the lab's network answers in milliseconds.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long sent data may go unacknowledged before the connection is
/// given up (a database host cut off the network), unless the URL says
/// otherwise.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between attempts to connect again.
const MAX_RETRY: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE SEQUENCE IF NOT EXISTS pyrolab_ns_seq;
CREATE TABLE IF NOT EXISTS pyrolab_ns_names (
    name text PRIMARY KEY,
    uri text NOT NULL,
    metadata text[] NOT NULL,
    seq bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS pyrolab_ns_names_seq ON pyrolab_ns_names (seq);
CREATE TABLE IF NOT EXISTS pyrolab_ns_removed (
    name text PRIMARY KEY,
    seq bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS pyrolab_ns_removed_seq ON pyrolab_ns_removed (seq);
";

/// Every change after `$1`, oldest first: registrations with their URI,
/// removals without.
const CHANGES_SINCE: &str = "
SELECT name, uri, metadata, seq FROM pyrolab_ns_names WHERE seq > $1
UNION ALL
SELECT name, NULL, NULL, seq FROM pyrolab_ns_removed WHERE seq > $1
ORDER BY seq";

/// The connection settings of `url` (a `postgresql://` URL or a
/// `key=value` string), with our timeouts where it sets none.
pub fn postgres_config(url: &str) -> Result<postgres::Config, StoreError> {
    Ok(with_defaults(parse(url)?, CONNECT_TIMEOUT))
}

fn parse(url: &str) -> Result<postgres::Config, StoreError> {
    url.parse()
        .map_err(|err| StoreError::new(format!("invalid PostgreSQL URL {}: {err}", redacted(url))))
}

fn with_defaults(mut config: postgres::Config, connect_timeout: Duration) -> postgres::Config {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(QUERY_TIMEOUT);
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(5));
    if config.get_application_name().is_none() {
        config.application_name("pyrolab-host name server");
    }
    config
}

/// `url` without its password, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value form: drop the password pair.
        return url
            .split_whitespace()
            .map(|pair| {
                if pair.starts_with("password=") {
                    "password=***"
                } else {
                    pair
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            let hidden = if credentials.contains(':') {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The registry in PostgreSQL.
pub struct PostgresStore {
    config: postgres::Config,
    /// The same, with a shorter connect timeout for connecting again.
    reconnect: postgres::Config,
    /// After a failed attempt to connect: not before this, and why it
    /// failed (a call meanwhile is told so at once).
    retry: Option<(Instant, String)>,
    /// Failed attempts to connect in a row (the wait doubles).
    failures: u32,
    /// Whether it connected once (reconnecting takes the short timeout).
    ever_connected: bool,
    /// `storage_url` without its password.
    shown: String,
    client: Option<Client>,
    /// The last change this name server's copy holds; `None` until it has
    /// read the registry whole (after every new connection).
    seen: Option<i64>,
    /// Whether this connection holds the autoclean lock.
    leads_autoclean: bool,
}

impl PostgresStore {
    /// Connects to the database at `url` and creates the tables if they
    /// are not there.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let raw = parse(url)?;
        let mut store = PostgresStore {
            config: with_defaults(raw.clone(), CONNECT_TIMEOUT),
            reconnect: with_defaults(raw, RECONNECT_TIMEOUT),
            retry: None,
            failures: 0,
            ever_connected: false,
            shown: redacted(url),
            client: None,
            seen: None,
            leads_autoclean: false,
        };
        store.client()?;
        Ok(store)
    }

    /// Where the registry is, for messages (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The connection, opened (with the schema made) if there is none.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.lost();
        }
        if self.client.is_none() {
            if let Some((at, err)) = &self.retry
                && Instant::now() < *at
            {
                return Err(StoreError::new(err.clone()));
            }
            match self.connect() {
                Ok(client) => {
                    self.client = Some(client);
                    self.retry = None;
                    self.failures = 0;
                    self.ever_connected = true;
                }
                Err(err) => {
                    // Not tried again at once: every call meanwhile would
                    // wait out a connect timeout, holding the registry.
                    self.failures += 1;
                    let wait = (Duration::from_millis(250) * 2u32.pow(self.failures.min(6)))
                        .min(MAX_RETRY);
                    self.retry = Some((Instant::now() + wait, err.to_string()));
                    return Err(err);
                }
            }
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// A new connection, with the schema made: the first with the full
    /// connect timeout, later ones with a short one.
    fn connect(&self) -> Result<Client, StoreError> {
        let config = if self.ever_connected {
            &self.reconnect
        } else {
            &self.config
        };
        let mut client = config
            .connect(NoTls)
            .map_err(|err| self.error("cannot connect to", &err))?;
        create_schema(&mut client)
            .map_err(|err| self.error("cannot create the tables in", &err))?;
        Ok(client)
    }

    /// Forgets the connection: the next operation opens a new one and reads
    /// the registry whole.
    fn lost(&mut self) {
        self.client = None;
        self.seen = None;
        self.leads_autoclean = false;
    }

    fn error(&self, what: &str, err: &postgres::Error) -> StoreError {
        StoreError::new(format!(
            "{what} PostgreSQL at {}: {}",
            self.shown,
            describe(err)
        ))
    }

    /// Runs `work` on the connection; a connection that broke is opened
    /// again and `work` tried once more (every write here can be repeated
    /// safely).
    fn with_client<T>(
        &mut self,
        what: &str,
        work: impl Fn(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let first = work(self.client()?);
        match first {
            Ok(value) => Ok(value),
            Err(err) if err.as_db_error().is_some() => Err(self.error(what, &err)),
            Err(_) => {
                // The connection broke (or was already broken): once more.
                self.lost();
                let again = work(self.client()?);
                again.map_err(|err| {
                    let error = self.error(what, &err);
                    if err.as_db_error().is_none() {
                        self.lost();
                    }
                    error
                })
            }
        }
    }
}

fn create_schema(client: &mut Client) -> Result<(), postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])?;
    let created = client.batch_execute(SCHEMA);
    client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])?;
    created
}

/// An error with the database's own message and detail, when it gave one.
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => match std::error::Error::source(err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    }
}

/// One row of [`CHANGES_SINCE`]: a name, its entry (none if it was
/// removed), and the change's number.
type ChangeRow = (String, Option<Entry>, i64);

fn changes_since(client: &mut Client, seen: i64) -> Result<Vec<ChangeRow>, postgres::Error> {
    let rows = client.query(CHANGES_SINCE, &[&seen])?;
    Ok(rows
        .iter()
        .map(|row| {
            let uri: Option<String> = row.get(1);
            let metadata: Option<Vec<String>> = row.get(2);
            let entry = uri.map(|uri| Entry {
                uri,
                metadata: metadata.unwrap_or_default().into_iter().collect(),
            });
            (row.get(0), entry, row.get(3))
        })
        .collect())
}

impl Store for PostgresStore {
    fn load(&mut self) -> Result<Vec<(String, Entry)>, StoreError> {
        self.seen = None;
        match self.changes()? {
            Some(Changes::Whole(entries)) => Ok(entries),
            _ => unreachable!("a store that has seen nothing reads the registry whole"),
        }
    }

    fn put(&mut self, name: &str, entry: &Entry) -> Result<(), StoreError> {
        let metadata: Vec<&String> = entry.metadata.iter().collect();
        self.with_client("cannot register in", |client| {
            let mut transaction = client.transaction()?;
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            transaction.execute(
                "INSERT INTO pyrolab_ns_names (name, uri, metadata, seq)
                 VALUES ($1, $2, $3, nextval('pyrolab_ns_seq'))
                 ON CONFLICT (name) DO UPDATE
                 SET uri = excluded.uri, metadata = excluded.metadata, seq = excluded.seq",
                &[&name, &entry.uri, &metadata],
            )?;
            transaction.execute("DELETE FROM pyrolab_ns_removed WHERE name = $1", &[&name])?;
            transaction.commit()
        })
    }

    fn delete(&mut self, names: &[String]) -> Result<(), StoreError> {
        self.with_client("cannot remove names in", |client| {
            let mut transaction = client.transaction()?;
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            transaction.execute(
                "DELETE FROM pyrolab_ns_names WHERE name = ANY($1)",
                &[&names],
            )?;
            transaction.execute(
                "INSERT INTO pyrolab_ns_removed (name, seq)
                 SELECT name, nextval('pyrolab_ns_seq') FROM unnest($1::text[]) AS name
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                &[&names],
            )?;
            transaction.commit()
        })
    }

    fn changes(&mut self) -> Result<Option<Changes>, StoreError> {
        let seen = self.seen;
        let rows = self.with_client("cannot read", |client| {
            changes_since(client, seen.unwrap_or(0))
        })?;
        // A broken connection was opened again meanwhile: read whole.
        if seen.is_some() && self.seen.is_none() {
            return self.changes();
        }
        let newest = rows.iter().map(|(_, _, seq)| *seq).max();
        let changes = match seen {
            None => Changes::Whole(
                rows.into_iter()
                    .filter_map(|(name, entry, _)| Some((name, entry?)))
                    .collect(),
            ),
            Some(_) => Changes::Since(
                rows.into_iter()
                    .map(|(name, entry, _)| (name, entry))
                    .collect(),
            ),
        };
        self.seen = newest.max(seen).or(Some(0));
        Ok(Some(changes))
    }

    fn shared(&self) -> bool {
        true
    }

    fn leads_autoclean(&mut self) -> bool {
        if self.leads_autoclean {
            // Still ours while the connection lives.
            if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
                return true;
            }
            self.lost();
        }
        let taken = self.with_client("cannot take the autoclean lock in", |client| {
            let row = client.query_one("SELECT pg_try_advisory_lock($1)", &[&AUTOCLEAN_LOCK])?;
            Ok(row.get::<_, bool>(0))
        });
        self.leads_autoclean = taken.unwrap_or_else(|err| {
            tracing::warn!("{err}");
            false
        });
        self.leads_autoclean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(
            redacted("postgresql://lab:secret@db.lab:5432/registry"),
            "postgresql://lab:***@db.lab:5432/registry"
        );
        assert_eq!(
            redacted("postgresql://lab@db.lab/registry"),
            "postgresql://lab@db.lab/registry"
        );
        assert_eq!(
            redacted("host=db.lab user=lab password=secret dbname=registry"),
            "host=db.lab user=lab password=*** dbname=registry"
        );
    }

    #[test]
    fn a_url_that_is_not_one_is_an_error_without_its_password() {
        let err = postgres_config("postgresql://lab:secret@db.lab:notaport/x").unwrap_err();
        assert!(err.to_string().contains("invalid PostgreSQL URL"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let config = postgres_config("postgresql://lab@db.lab/registry").unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    }
}
