//! Service locks of a `LockableDaemon` (PyroLab's semantics, with its
//! release-on-disconnect made to work).
//!
//! Every service of a lockable daemon answers `lock(user="")`, `unlock()`
//! (also `release()`) and `islocked()`, returning booleans as PyroLab 0.5
//! does: `lock()` is `True` once the caller holds the lock, `unlock()`
//! whether there was a lock to end, `islocked()` whether one is held.
//! While a connection holds a service's lock, every call on that service
//! from any other connection fails with `ConnectionRefusedError` naming the
//! holder. The lock ends with `unlock()`, with the daemon's `release(uri)`,
//! and always when the holding connection closes.

use crate::sync::LockUnpoisoned;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use pyrolab_plugin_api::Value;

use super::pyro::{self, exception};

/// The methods a lockable daemon adds to every service.
pub const LOCK_METHODS: &[&str] = &["lock", "unlock", "release", "islocked"];

struct Holder {
    connection: u64,
    user: String,
}

/// Told each time a service's lock changes: the service and its new
/// holder (`None`: unlocked).
pub type LockObserver = Box<dyn Fn(&str, Option<&str>) + Send + Sync>;

/// Who holds which service's lock.
#[derive(Default)]
pub struct Locks {
    held: Mutex<HashMap<String, Holder>>,
    observer: OnceLock<LockObserver>,
}

impl Locks {
    /// Has `observer` told of every later lock change. Only the first
    /// observer set counts.
    pub fn observe(&self, observer: LockObserver) {
        let _ = self.observer.set(observer);
    }

    fn changed(&self, service: &str, holder: Option<&Holder>) {
        if let Some(observer) = self.observer.get() {
            observer(service, holder.map(Holder::name).as_deref());
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Holder>> {
        self.held.lock_unpoisoned()
    }

    /// Refuses a call on `service` from `connection` if another connection
    /// holds its lock.
    pub fn check(&self, service: &str, connection: u64) -> Result<(), Value> {
        match self.held().get(service) {
            Some(holder) if holder.connection != connection => Err(refusal(holder)),
            _ => Ok(()),
        }
    }

    /// Runs one of [`LOCK_METHODS`] for `connection`, whose caller has
    /// the TLS `identity` (a lock taken without a user name is held in
    /// its name).
    pub fn call(
        &self,
        service: &str,
        method: &str,
        (connection, identity): (u64, Option<&str>),
        args: &[Value],
        kwargs: &[(String, Value)],
    ) -> Result<Value, Value> {
        let mut held = self.held();
        if let Some(holder) = held.get(service) {
            if holder.connection != connection {
                return Err(refusal(holder));
            }
        }
        match method {
            // Already this connection's: it keeps the name it locked with,
            // as in PyroLab.
            "lock" if held.contains_key(service) => Ok(Value::Bool(true)),
            "lock" => {
                let user = args
                    .first()
                    .or_else(|| kwargs.iter().find(|(k, _)| k == "user").map(|(_, v)| v))
                    .and_then(Value::as_str)
                    .filter(|user| !user.is_empty())
                    .or(identity)
                    .unwrap_or_default()
                    .to_owned();
                tracing::info!(%service, %user, "locked");
                let holder = Holder { connection, user };
                self.changed(service, Some(&holder));
                held.insert(service.to_owned(), holder);
                Ok(Value::Bool(true))
            }
            "unlock" | "release" => {
                let was_locked = held.remove(service).is_some();
                if was_locked {
                    tracing::info!(%service, "unlocked");
                    self.changed(service, None);
                }
                Ok(Value::Bool(was_locked))
            }
            _ => Ok(Value::Bool(held.contains_key(service))),
        }
    }

    /// The daemon's forced `release(uri)`: ends the lock whoever holds it.
    /// Returns whether there was one.
    pub fn force_release(&self, service: &str) -> bool {
        let released = self.held().remove(service);
        if let Some(holder) = &released {
            tracing::info!(%service, user = %holder.user, "lock released by the daemon's release()");
            self.changed(service, None);
        }
        released.is_some()
    }

    /// Who holds which lock now: (service, holder), by service.
    pub fn holders(&self) -> Vec<(String, String)> {
        let mut holders: Vec<(String, String)> = self
            .held()
            .iter()
            .map(|(service, holder)| (service.clone(), holder.name()))
            .collect();
        holders.sort();
        holders
    }

    /// Ends every lock `connection` holds (it closed).
    pub fn release_connection(&self, connection: u64) {
        let mut released = Vec::new();
        self.held().retain(|service, holder| {
            let keep = holder.connection != connection;
            if !keep {
                tracing::info!(%service, user = %holder.user, "releasing the lock: its connection closed");
                released.push(service.clone());
            }
            keep
        });
        for service in released {
            self.changed(&service, None);
        }
    }
}

impl Holder {
    /// The user name given to `lock(user)`, else the connection.
    fn name(&self) -> String {
        if self.user.is_empty() {
            format!("connection {}", self.connection)
        } else {
            self.user.clone()
        }
    }
}

fn refusal(holder: &Holder) -> Value {
    let who = holder.name();
    exception(
        "builtins.ConnectionRefusedError",
        &format!("Pyro object is locked (by '{who}')"),
        vec![format!(
            "ConnectionRefusedError: Pyro object is locked (by '{who}')\n"
        )],
    )
}

/// `release(uri)` on `Pyro.Daemon`: the object id of the URI argument,
/// a string or a Pyro5 `URI` object as serializers send it.
pub fn object_of(uri: &Value) -> Result<String, Value> {
    if uri.get("__class__").and_then(Value::as_str) == Some("Pyro5.core.URI") {
        let object = uri
            .get("state")
            .and_then(Value::as_list)
            .and_then(|state| state.get(1))
            .and_then(Value::as_str);
        return object
            .map(str::to_owned)
            .ok_or_else(|| pyro::pyro_exception("PyroError", "release(): a malformed URI object"));
    }
    let text = uri
        .as_str()
        .ok_or_else(|| pyro::pyro_exception("PyroError", "release() expects a URI string"))?;
    crate::wire::uri::PyroUri::parse(text)
        .map(|uri| uri.object)
        .map_err(|err| pyro::pyro_exception("PyroError", &err.to_string()))
}
