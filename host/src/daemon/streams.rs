//! Item streams a daemon serves: Pyro5's `ITER_STREAMING`.
//!
//! A call whose method returned a stream is answered with the stream's id
//! (a random uuid, as in Pyro5); the client then calls
//! `Pyro.Daemon.get_next_stream_item(id)` for each item and
//! `close_stream(id)` if it stops early. A stream belongs to the
//! connection that last read it. When that connection goes, its streams
//! linger for `iter_stream_linger` seconds (a client may reconnect and go
//! on), then close; with no linger they close at once. A stream older than
//! `iter_stream_lifetime` closes whatever its state. Open streams are
//! bounded per connection and per daemon, since each holds a driver
//! iterator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::abi::lending::Lent;

use super::pyro::{driver_exception, pyro_exception};
use crate::loader::ItemStream;
use crate::sync::LockUnpoisoned;

/// How a daemon serves item streams.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSettings {
    /// Whether methods may return streams (`ITER_STREAMING`); without, a
    /// client is told the server does not allow streaming, as in Pyro5.
    pub enabled: bool,
    /// How long a stream may live at all (`ITER_STREAM_LIFETIME`; `None`:
    /// for ever).
    pub lifetime: Option<Duration>,
    /// How long a stream outlives its connection (`ITER_STREAM_LINGER`;
    /// `None`: not at all).
    pub linger: Option<Duration>,
    /// Streams one connection may hold open at once.
    pub max_per_connection: usize,
    /// Streams the daemon holds open at once, across connections.
    pub max_total: usize,
}

impl Default for StreamSettings {
    /// Pyro5's defaults, and this host's bounds.
    fn default() -> Self {
        StreamSettings {
            enabled: true,
            lifetime: None,
            linger: Some(Duration::from_secs(30)),
            max_per_connection: 64,
            max_total: 1024,
        }
    }
}

/// What became of a returned stream.
pub enum Opened {
    /// It is open under this id.
    Id(String),
    /// Streaming is off: the stream was closed, and the client is told so.
    Disabled,
}

/// The open streams of one daemon.
pub struct Streams {
    settings: StreamSettings,
    table: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Whether a janitor thread is closing expired streams.
    janitor: bool,
}

struct Entry {
    /// The service whose method returned it, for its errors.
    service: String,
    // Locked while an item is produced, so the table is not.
    stream: Arc<Mutex<ItemStream>>,
    /// The connection that reads it; `None` once that connection went.
    owner: Option<u64>,
    opened: Instant,
    orphaned: Option<Instant>,
}

impl Streams {
    /// No streams yet.
    pub fn new(settings: StreamSettings) -> Self {
        Streams {
            settings,
            table: Arc::default(),
        }
    }

    /// Keeps `stream`, returned to `connection`. An error is the exception
    /// for the caller (too many streams open); the stream is closed then.
    pub fn open(
        &self,
        service: &str,
        stream: ItemStream,
        connection: u64,
    ) -> Result<Opened, Value> {
        if !self.settings.enabled {
            return Ok(Opened::Disabled);
        }
        let mut expired = Vec::new();
        let mut table = self.table.lock_unpoisoned();
        let held = table
            .entries
            .values()
            .filter(|entry| entry.owner == Some(connection))
            .count();
        if held >= self.settings.max_per_connection {
            return Err(pyro_exception(
                "PyroError",
                &format!(
                    "too many open item streams on this connection ({held}, the most is {}): \
                     read them to their end or close them first",
                    self.settings.max_per_connection
                ),
            ));
        }
        if table.entries.len() >= self.settings.max_total {
            expired = take_expired(&self.settings, &mut table, Instant::now());
        }
        if table.entries.len() >= self.settings.max_total {
            return Err(pyro_exception(
                "PyroError",
                &format!(
                    "too many open item streams on this daemon (the most is {})",
                    self.settings.max_total
                ),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        table.entries.insert(
            id.clone(),
            Entry {
                service: service.to_owned(),
                stream: Arc::new(Mutex::new(stream)),
                owner: Some(connection),
                opened: Instant::now(),
                orphaned: None,
            },
        );
        self.start_janitor_if_needed(&mut table);
        drop(table);
        drop(expired);
        Ok(Opened::Id(id))
    }

    /// The next item of stream `id`, read by `connection`. At the
    /// stream's end the error is a `StopIteration`, which ends a Python
    /// client's loop; a driver error ends the stream too. Either way the
    /// stream is forgotten.
    pub fn next(&self, id: &str, connection: u64) -> Result<Lent, Value> {
        let (service, stream) = {
            let mut table = self.table.lock_unpoisoned();
            let entry = table
                .entries
                .get_mut(id)
                .ok_or_else(|| pyro_exception("PyroError", "item stream terminated"))?;
            if entry.owner.is_none() {
                // A client come back after losing its connection.
                entry.owner = Some(connection);
                entry.orphaned = None;
            }
            (entry.service.clone(), Arc::clone(&entry.stream))
        };
        let mut stream = stream.lock_unpoisoned();
        let item = stream.next_item();
        let method = stream.method().to_owned();
        drop(stream);
        match item {
            Some(Ok(item)) => Ok(item),
            None => {
                self.close(id);
                Err(stop_iteration())
            }
            Some(Err(err)) => {
                self.close(id);
                Err(driver_exception(&service, &method, &err))
            }
        }
    }

    /// Forgets stream `id` (a client's `close_stream`), closing it in its
    /// driver. Unknown ids are ignored, as in Pyro5.
    pub fn close(&self, id: &str) {
        let removed = self.table.lock_unpoisoned().entries.remove(id);
        drop(removed);
    }

    /// `connection` has gone: its streams linger, or close now.
    pub fn connection_closed(&self, connection: u64) {
        let mut table = self.table.lock_unpoisoned();
        if table.entries.is_empty() {
            return;
        }
        let closed: Vec<Entry> = if self.settings.linger.is_some() {
            let now = Instant::now();
            for entry in table.entries.values_mut() {
                if entry.owner == Some(connection) {
                    entry.owner = None;
                    entry.orphaned = Some(now);
                }
            }
            self.start_janitor_if_needed(&mut table);
            Vec::new()
        } else {
            let ids: Vec<String> = table
                .entries
                .iter()
                .filter(|(_, entry)| entry.owner == Some(connection))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| table.entries.remove(id))
                .collect()
        };
        drop(table);
        drop(closed);
    }

    /// When `entry` is to close, if ever.
    fn deadline(settings: &StreamSettings, entry: &Entry) -> Option<Instant> {
        let by_lifetime = settings.lifetime.map(|lifetime| entry.opened + lifetime);
        let by_linger = entry
            .orphaned
            .zip(settings.linger)
            .map(|(t, linger)| t + linger);
        match (by_lifetime, by_linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Starts the thread that closes streams at their deadline, if one
    /// has a deadline and no thread runs. It ends when no stream has one.
    fn start_janitor_if_needed(&self, table: &mut Table) {
        let settings = &self.settings;
        let any_deadline = table
            .entries
            .values()
            .any(|entry| Self::deadline(settings, entry).is_some());
        if table.janitor || !any_deadline {
            return;
        }
        let weak = Arc::downgrade(&self.table);
        let janitor = Janitor {
            settings: settings.clone(),
            table: weak,
        };
        let started = std::thread::Builder::new()
            .name("item-streams".to_owned())
            .spawn(move || janitor.run());
        match started {
            Ok(_) => table.janitor = true,
            // Tried again at the next stream opened or orphaned.
            Err(err) => tracing::warn!("cannot start the item-stream janitor: {err}"),
        }
    }
}

/// Closes streams at their deadline.
struct Janitor {
    settings: StreamSettings,
    table: Weak<Mutex<Table>>,
}

impl Janitor {
    /// The longest the janitor sleeps, so that it notices new deadlines
    /// and a daemon gone.
    const NAP: Duration = Duration::from_millis(250);

    fn run(self) {
        loop {
            std::thread::sleep(Self::NAP);
            let Some(table) = self.table.upgrade() else {
                return;
            };
            let mut locked = table.lock_unpoisoned();
            let settings = &self.settings;
            let expired = take_expired(settings, &mut locked, Instant::now());
            let more = locked
                .entries
                .values()
                .any(|e| Streams::deadline(settings, e).is_some());
            if !more {
                locked.janitor = false;
            }
            drop(locked);
            if !expired.is_empty() {
                tracing::debug!("closed {} expired item stream(s)", expired.len());
            }
            drop(expired);
            if !more {
                return;
            }
        }
    }
}

/// Takes the entries past their deadline out of the table, to be dropped
/// (closed) once it is unlocked.
fn take_expired(settings: &StreamSettings, table: &mut Table, now: Instant) -> Vec<Entry> {
    let ids: Vec<String> = table
        .entries
        .iter()
        .filter(|(_, entry)| Streams::deadline(settings, entry).is_some_and(|at| at <= now))
        .map(|(id, _)| id.clone())
        .collect();
    ids.iter()
        .filter_map(|id| table.entries.remove(id))
        .collect()
}

/// The exception that ends a Python client's iteration.
fn stop_iteration() -> Value {
    let entry = |k: &str, v: Value| (Value::from(k), v);
    Value::Map(vec![
        entry("__class__", Value::from("builtins.StopIteration")),
        entry("__exception__", Value::Bool(true)),
        entry("args", Value::List(Vec::new())),
        entry("attributes", Value::Map(Vec::new())),
    ])
}
