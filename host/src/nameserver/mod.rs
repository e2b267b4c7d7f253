//! A name server: the lab's phone book. It is Pyro5's `Pyro.NameServer`
//! object, with Pyro5's method set, semantics and error messages, served on
//! an ordinary daemon, so stock Python clients (`locate_ns`, `PYRONAME:`)
//! use it unchanged.
//!
//! # Layout
//!
//! - `mod.rs`: [`NameServer`], the registry and its remote methods.
//! - `launch.rs`: starting a name server of the launch configuration.
//! - `storage.rs`: memory, `dbm` (an embedded key-value file) and `sql`
//!   (SQLite) stores.
//! - `postgresql.rs`: the `postgresql` store, one registry several name
//!   servers share.
//! - `broadcast.rs`: the UDP responder answering `GET_NSURI`.
//! - `autoclean.rs`: dropping registrations whose daemon is gone.
//! - `tags.rs`: the metadata tags registrations carry, ours and PyroLab's.

mod autoclean;
mod broadcast;
pub mod launch;
mod postgresql;
pub mod storage;
pub mod tags;

use crate::sync::LockUnpoisoned;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use pyrolab_plugin_api::call::Arguments;
use pyrolab_plugin_api::{CallArgs, DriverError, Value};

pub use autoclean::AutoCleaner;
pub use broadcast::BroadcastResponder;
use storage::{Entry, Store};

use crate::access::{Caller, NameServerRights, Rule};
use crate::daemon::NativeObject;
use crate::daemon::pyro::exception;
use crate::wire::uri::PyroUri;

/// The name server's object id, and the name it registers itself under.
pub const NAMESERVER_OBJECT: &str = "Pyro.NameServer";

/// Pyro5's name for a name-server error.
const NAMING_ERROR: &str = "Pyro5.errors.NamingError";

/// The methods clients may call.
const METHODS: &[&str] = &[
    "count",
    "list",
    "lookup",
    "ping",
    "register",
    "remove",
    "set_metadata",
    "yplookup",
];

/// The registry: every name in memory, each change written through to the
/// store before the caller hears it succeeded.
pub struct NameServer {
    state: Mutex<State>,
    /// Who may register, remove, and touch others' names.
    rights: NameServerRights,
}

struct State {
    entries: BTreeMap<String, Entry>,
    store: Box<dyn Store>,
    /// Its own registration (`Pyro.NameServer`), when the store is shared:
    /// each name server of a shared registry answers with its own URI,
    /// and keeps it out of the others'.
    own: Option<Entry>,
    /// Why a shared store could not be read, while it cannot (said once,
    /// not at every call).
    unreadable: Option<String>,
}

type Reply = Result<Value, Value>;

impl NameServer {
    /// A name server keeping its registrations in `store`, starting with
    /// what the store already holds.
    pub fn open(mut store: Box<dyn Store>) -> Result<NameServer, storage::StoreError> {
        let entries = store.load()?.into_iter().collect();
        Ok(NameServer {
            state: Mutex::new(State {
                entries,
                store,
                own: None,
                unreadable: None,
            }),
            rights: NameServerRights::default(),
        })
    }

    /// Grants `rights` (by default: anyone registers and removes, no one
    /// touches another identity's names).
    pub fn with_rights(mut self, rights: NameServerRights) -> NameServer {
        self.rights = rights;
        self
    }

    /// Whether `caller` may replace or remove `name`, registered with
    /// `entry`: its own, or one with no owner, or with the `manage` right.
    fn may_touch(&self, caller: &Caller, name: &str, entry: &Entry, what: &str) -> Reply {
        let owner = tags::owner(&entry.metadata);
        if owner.is_none() || owner == caller.identity.as_deref() {
            return Ok(Value::Null);
        }
        caller
            .check(&self.rights.manage, "manage", || {
                format!(
                    "{what} {name}, which {:?} registered",
                    owner.unwrap_or_default()
                )
            })
            .map(|()| Value::Null)
            .map_err(|refusal| python_error("PermissionError", &refusal))
    }

    /// Registers the name server itself under [`NAMESERVER_OBJECT`], as
    /// Pyro5's name server does.
    pub fn register_self(&self, uri: &str) -> Result<(), storage::StoreError> {
        let entry = Entry {
            uri: uri.to_owned(),
            metadata: BTreeSet::from([tags::PYRO5_NAMESERVER.to_owned()]),
        };
        let mut state = self.state();
        if state.store.shared() {
            state.own = Some(entry.clone());
            state.entries.insert(NAMESERVER_OBJECT.to_owned(), entry);
            return Ok(());
        }
        state.put(NAMESERVER_OBJECT, entry)
    }

    /// Whether this name server is the one to run autoclean now (with a
    /// shared store, one name server of the lab does).
    pub fn leads_autoclean(&self) -> bool {
        self.state.lock_unpoisoned().store.leads_autoclean()
    }

    /// How many names are registered.
    pub fn count(&self) -> usize {
        self.state().entries.len()
    }

    /// A copy of every registration.
    pub fn snapshot(&self) -> Vec<(String, Entry)> {
        let state = self.state();
        state
            .entries
            .iter()
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect()
    }

    /// Removes `name` if it is still registered with `uri` (so a name
    /// registered again meanwhile is left alone). Returns whether it did.
    pub fn remove_if_unchanged(&self, name: &str, uri: &str) -> bool {
        let mut state = self.state();
        if state.entries.get(name).is_some_and(|e| e.uri == uri) {
            return state.delete(vec![name.to_owned()]).is_ok();
        }
        false
    }

    /// The registry, brought up to date with what other name servers
    /// changed when the store is shared.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock_unpoisoned();
        state.refresh();
        state
    }

    fn lookup(&self, call: CallArgs) -> Reply {
        let mut args = bind("lookup", &["name", "return_metadata"], call)?;
        let name = required_text(&mut args, 0, "lookup")?;
        let with_metadata = truthy(&optional(&mut args, 1)?);
        let state = self.state();
        let entry = state
            .entries
            .get(&name)
            .ok_or_else(|| naming_error(&format!("unknown name: {name}")))?;
        let uri = uri_object(&entry.uri);
        Ok(if with_metadata {
            Value::Tuple(vec![uri, tags(&entry.metadata)])
        } else {
            uri
        })
    }

    fn register(&self, call: CallArgs, caller: &Caller) -> Reply {
        self.allowed(caller, &self.rights.register, "register", "register names")?;
        let mut args = bind("register", &["name", "uri", "safe", "metadata"], call)?;
        let name = args.required::<Value>(0).map_err(type_error)?;
        let uri = uri_text(args.required::<Value>(1).map_err(type_error)?)?;
        let safe = truthy(&optional(&mut args, 2)?);
        let metadata = metadata_set(optional(&mut args, 3)?, "metadata")?;
        let Value::Str(name) = name else {
            return Err(python_error("TypeError", "name must be a str"));
        };
        let mut state = self.state();
        if let Some(existing) = state.entries.get(&name) {
            if safe {
                return Err(naming_error(&format!("name already registered: {name}")));
            }
            self.may_touch(caller, &name, existing, "replace")?;
            if existing.uri != uri {
                tracing::warn!(
                    "{name} is registered again: {uri} replaces {}; if both are running, clients now reach only the new one",
                    existing.uri
                );
            }
        }
        let entry = Entry {
            uri,
            metadata: tags::owned_by(metadata.unwrap_or_default(), caller.identity.as_deref()),
        };
        state.put(&name, entry).map_err(storage_error)?;
        Ok(Value::Null)
    }

    /// Checks that `caller` has `rule` (`right`) to `action`; `manage`
    /// includes every right.
    fn allowed(&self, caller: &Caller, rule: &Rule, right: &str, action: &str) -> Reply {
        if caller.has(&self.rights.manage) {
            return Ok(Value::Null);
        }
        caller
            .check(rule, right, || action.to_owned())
            .map(|()| Value::Null)
            .map_err(|refusal| python_error("PermissionError", &refusal))
    }

    fn set_metadata(&self, call: CallArgs, caller: &Caller) -> Reply {
        self.allowed(
            caller,
            &self.rights.register,
            "register",
            "set names' metadata",
        )?;
        let mut args = bind("set_metadata", &["name", "metadata"], call)?;
        let name = args.required::<Value>(0).map_err(type_error)?;
        let metadata = metadata_set(args.required::<Value>(1).map_err(type_error)?, "metadata")?;
        let Value::Str(name) = name else {
            return Err(python_error("TypeError", "name must be a str"));
        };
        let mut state = self.state();
        let mut entry = state
            .entries
            .get(&name)
            .cloned()
            .ok_or_else(|| naming_error(&format!("unknown name: {name}")))?;
        self.may_touch(caller, &name, &entry, "change the metadata of")?;
        let owner = tags::owner(&entry.metadata).map(str::to_owned);
        entry.metadata = tags::owned_by(metadata.unwrap_or_default(), owner.as_deref());
        state.put(&name, entry).map_err(storage_error)?;
        Ok(Value::Null)
    }

    fn remove(&self, call: CallArgs, caller: &Caller) -> Reply {
        self.allowed(caller, &self.rights.remove, "remove", "remove names")?;
        let mut args = bind("remove", &["name", "prefix", "regex"], call)?;
        let name = optional_text(&mut args, 0, "name")?;
        let prefix = optional_text(&mut args, 1, "prefix")?;
        let regex = optional_text(&mut args, 2, "regex")?;
        let mut state = self.state();
        // Pyro5's rules, in its order: a name (never the name server's
        // own), else a prefix, else a regex; the name server's own entry is
        // never removed.
        let doomed: Vec<String> = match (name, prefix, regex) {
            (Some(name), _, _) if name != NAMESERVER_OBJECT => {
                if !state.entries.contains_key(&name) {
                    return Ok(Value::Int(0));
                }
                vec![name]
            }
            (_, Some(prefix), _) => matching(&state.entries, |n| n.starts_with(&prefix)),
            (_, None, Some(regex)) => {
                let regex = NameRegex::new(&regex)?;
                let mut doomed = Vec::new();
                for name in state.entries.keys() {
                    if regex.matches(name)? {
                        doomed.push(name.clone());
                    }
                }
                doomed
            }
            _ => return Ok(Value::Int(0)),
        };
        let doomed: Vec<String> = doomed
            .into_iter()
            .filter(|n| n != NAMESERVER_OBJECT)
            .collect();
        // All or nothing: one name of another identity refuses the call.
        for name in &doomed {
            self.may_touch(caller, name, &state.entries[name], "remove")?;
        }
        let count = doomed.len();
        state.delete(doomed).map_err(storage_error)?;
        Ok(Value::Int(count as i64))
    }

    fn list(&self, call: CallArgs) -> Reply {
        let mut args = bind("list", &["prefix", "regex", "return_metadata"], call)?;
        let prefix = optional_text(&mut args, 0, "prefix")?;
        let regex = optional_text(&mut args, 1, "regex")?;
        let with_metadata = truthy(&optional(&mut args, 2)?);
        if prefix.is_some() && regex.is_some() {
            return Err(python_error(
                "ValueError",
                "you can only filter on one thing at a time",
            ));
        }
        let regex = regex.as_deref().map(NameRegex::new).transpose()?;
        let state = self.state();
        let mut selected = Vec::new();
        for (name, entry) in &state.entries {
            let by_prefix = prefix.as_ref().is_none_or(|p| name.starts_with(p.as_str()));
            let by_regex = match &regex {
                Some(regex) => regex.matches(name)?,
                None => true,
            };
            if by_prefix && by_regex {
                selected.push((name, entry));
            }
        }
        Ok(listing(selected.into_iter(), with_metadata))
    }

    fn yplookup(&self, call: CallArgs) -> Reply {
        let mut args = bind(
            "yplookup",
            &["meta_all", "meta_any", "return_metadata"],
            call,
        )?;
        let meta_all = metadata_set(optional(&mut args, 0)?, "metadata_all")?;
        let meta_any = metadata_set(optional(&mut args, 1)?, "metadata_any")?;
        let with_metadata = match args.optional::<Value>(2, || Ok(Value::Bool(true))) {
            Ok(value) => truthy(&value),
            Err(err) => return Err(type_error(err)),
        };
        let meta_all = meta_all.filter(|m| !m.is_empty());
        let meta_any = meta_any.filter(|m| !m.is_empty());
        let state = self.state();
        let selected: Vec<(&String, &Entry)> = match (&meta_all, &meta_any) {
            (Some(_), Some(_)) => {
                return Err(python_error(
                    "ValueError",
                    "you can't use meta_all or meta_any at the same time",
                ));
            }
            (Some(all), None) => state
                .entries
                .iter()
                .filter(|(_, e)| all.is_subset(&e.metadata))
                .collect(),
            (None, Some(any)) => state
                .entries
                .iter()
                .filter(|(_, e)| !any.is_disjoint(&e.metadata))
                .collect(),
            (None, None) => Vec::new(),
        };
        Ok(listing(selected.into_iter(), with_metadata))
    }
}

impl State {
    /// Applies what other name servers changed in a shared store. A store
    /// that cannot be read leaves the copy as it was: lookups are answered
    /// from the last known registry (names rarely change), and changes fail
    /// with the store's error.
    fn refresh(&mut self) {
        let changes = match self.store.changes() {
            Ok(Some(changes)) => changes,
            Ok(None) => return,
            Err(err) => {
                let err = err.to_string();
                if self.unreadable.as_ref() != Some(&err) {
                    tracing::warn!(
                        "name server storage unreadable, answering from the last copy: {err}"
                    );
                    self.unreadable = Some(err);
                }
                return;
            }
        };
        if self.unreadable.take().is_some() {
            tracing::info!("name server storage readable again");
        }
        match changes {
            storage::Changes::Since(changes) => {
                for (name, entry) in changes {
                    match entry {
                        Some(entry) => self.entries.insert(name, entry),
                        None => self.entries.remove(&name),
                    };
                }
            }
            storage::Changes::Whole(entries) => self.entries = entries.into_iter().collect(),
        }
        if let Some(own) = &self.own {
            self.entries
                .insert(NAMESERVER_OBJECT.to_owned(), own.clone());
        }
    }

    fn put(&mut self, name: &str, entry: Entry) -> Result<(), storage::StoreError> {
        self.store.put(name, &entry)?;
        self.entries.insert(name.to_owned(), entry);
        Ok(())
    }

    fn delete(&mut self, names: Vec<String>) -> Result<(), storage::StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        self.store.delete(&names)?;
        for name in names {
            self.entries.remove(&name);
        }
        Ok(())
    }
}

impl NativeObject for NameServer {
    fn metadata(&self) -> Value {
        let strings = |items: &[&str]| Value::List(items.iter().map(|s| Value::from(*s)).collect());
        Value::Map(vec![
            (Value::from("methods"), strings(METHODS)),
            (Value::from("oneway"), strings(&[])),
            (Value::from("attrs"), strings(&[])),
        ])
    }

    fn call(&self, method: &str, args: CallArgs, caller: &Caller) -> Result<Value, Value> {
        match method {
            "ping" => bind("ping", &[], args).map(|_| Value::Null),
            "count" => bind("count", &[], args).map(|_| Value::Int(self.count() as i64)),
            "lookup" => self.lookup(args),
            "register" => self.register(args, caller),
            "set_metadata" => self.set_metadata(args, caller),
            "remove" => self.remove(args, caller),
            "list" => self.list(args),
            "yplookup" => self.yplookup(args),
            other => Err(python_error(
                "AttributeError",
                &format!(
                    "remote object '{NAMESERVER_OBJECT}' has no exposed attribute or method '{other}'"
                ),
            )),
        }
    }
}

/// Binds arguments to parameters with Python's rules (and TypeErrors).
fn bind(
    method: &'static str,
    params: &'static [&'static str],
    call: CallArgs,
) -> Result<Arguments, Value> {
    Arguments::new(method, params, None, None, call).map_err(type_error)
}

fn optional(args: &mut Arguments, index: usize) -> Result<Value, Value> {
    args.optional::<Value>(index, || Ok(Value::Null))
        .map_err(type_error)
}

fn required_text(args: &mut Arguments, index: usize, method: &str) -> Result<String, Value> {
    match args.required::<Value>(index).map_err(type_error)? {
        Value::Str(text) => Ok(text),
        other => Err(python_error(
            "TypeError",
            &format!("{method}(): expected a str, found {}", other.type_name()),
        )),
    }
}

fn optional_text(args: &mut Arguments, index: usize, what: &str) -> Result<Option<String>, Value> {
    match optional(args, index)? {
        Value::Null => Ok(None),
        Value::Str(text) if text.is_empty() => Ok(None),
        Value::Str(text) => Ok(Some(text)),
        other => Err(python_error(
            "TypeError",
            &format!("{what} must be a str, found {}", other.type_name()),
        )),
    }
}

/// Python's truthiness, which is how Pyro5 reads its flags (PYRONAME
/// resolution passes a float as `return_metadata`).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Bytes(b) => !b.is_empty(),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            !items.is_empty()
        }
        Value::Map(entries) => !entries.is_empty(),
        // A BigInt is never zero (zero is an Int).
        Value::BigInt(_) => true,
        Value::Complex(c) => c.re != 0.0 || c.im != 0.0,
    }
}

/// A metadata argument: `None`, or an iterable of strings (a set, list or
/// tuple; never a bare string, as Pyro5 insists).
fn metadata_set(value: Value, what: &str) -> Result<Option<BTreeSet<String>>, Value> {
    let not_iterable = |found: &str| {
        python_error(
            "TypeError",
            &format!("{what} should not be a {found}, but another iterable (set, list, etc)"),
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::Str(_) => Err(not_iterable("str")),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            items
                .into_iter()
                .map(|item| match item {
                    Value::Str(tag) => Ok(tag),
                    other => Err(python_error(
                        "TypeError",
                        &format!("{what} tags must be str, found {}", other.type_name()),
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Some)
        }
        other => Err(not_iterable(other.type_name())),
    }
}

/// A URI argument: a string, or a Pyro5 `URI` object as serializers send
/// it; checked as Pyro5 checks it.
fn uri_text(value: Value) -> Result<String, Value> {
    let text = match value {
        Value::Str(text) => text,
        Value::Map(_) => uri_from_object(&value)?,
        _ => {
            return Err(python_error(
                "TypeError",
                "only URIs or strings can be registered",
            ));
        }
    };
    check_uri(&text)?;
    Ok(text)
}

fn uri_from_object(value: &Value) -> Result<String, Value> {
    let invalid = || pyro_error("invalid uri: not a Pyro5.core.URI object");
    if value.get("__class__").and_then(Value::as_str) != Some("Pyro5.core.URI") {
        return Err(invalid());
    }
    let state = value
        .get("state")
        .and_then(Value::as_list)
        .ok_or_else(invalid)?;
    let [protocol, object, sockname, host, port] = state else {
        return Err(invalid());
    };
    let (Some(protocol), Some(object)) = (protocol.as_str(), object.as_str()) else {
        return Err(invalid());
    };
    Ok(match (sockname.as_str(), host.as_str(), port.as_int()) {
        (Some(path), _, _) => format!("{protocol}:{object}@./u:{path}"),
        (None, Some(host), Some(port)) if host.contains(':') => {
            format!("{protocol}:{object}@[{host}]:{port}")
        }
        (None, Some(host), Some(port)) => format!("{protocol}:{object}@{host}:{port}"),
        _ => format!("{protocol}:{object}"),
    })
}

/// Pyro5 accepts `PYRO:` URIs with a location and `PYRONAME:`/`PYROMETA:`
/// ones (which name another registration).
fn check_uri(text: &str) -> Result<(), Value> {
    let scheme = text.split_once(':').map(|(s, _)| s.to_ascii_uppercase());
    match scheme.as_deref() {
        Some("PYRONAME") | Some("PYROMETA") => {
            let rest = &text[text.find(':').map_or(0, |i| i + 1)..];
            if rest.is_empty() || rest.starts_with('@') || rest.chars().any(char::is_whitespace) {
                return Err(pyro_error(&format!("invalid uri: {text:?}")));
            }
            Ok(())
        }
        _ => PyroUri::parse(text)
            .map(drop)
            .map_err(|err| pyro_error(&err.to_string())),
    }
}

/// A URI as Pyro5 serializes a `URI` object, so Python clients get one.
fn uri_object(text: &str) -> Value {
    let Ok(uri) = PyroUri::parse(text) else {
        // PYRONAME/PYROMETA registrations go back as the text they were.
        return Value::from(text);
    };
    let (sockname, host, port) = match &uri.location {
        crate::wire::uri::Location::Tcp { host, port } => (
            Value::Null,
            Value::from(host.as_str()),
            Value::Int(i64::from(*port)),
        ),
        crate::wire::uri::Location::Unix(path) => (
            Value::from(path.display().to_string()),
            Value::Null,
            Value::Int(0),
        ),
    };
    Value::Map(vec![
        (Value::from("__class__"), Value::from("Pyro5.core.URI")),
        (
            Value::from("state"),
            Value::Tuple(vec![
                Value::from("PYRO"),
                Value::from(uri.object.as_str()),
                sockname,
                host,
                port,
            ]),
        ),
    ])
}

/// Metadata as Pyro5 returns it: a set.
fn tags(metadata: &BTreeSet<String>) -> Value {
    Value::Set(metadata.iter().map(|t| Value::from(t.as_str())).collect())
}

/// `list`/`yplookup` results: name to URI string, or to `(uri, metadata)`.
fn listing<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Entry)>,
    with_metadata: bool,
) -> Value {
    Value::Map(
        entries
            .map(|(name, entry)| {
                let uri = Value::from(entry.uri.as_str());
                let value = if with_metadata {
                    Value::Tuple(vec![uri, tags(&entry.metadata)])
                } else {
                    uri
                };
                (Value::from(name.as_str()), value)
            })
            .collect(),
    )
}

fn matching(entries: &BTreeMap<String, Entry>, keep: impl Fn(&str) -> bool) -> Vec<String> {
    entries.keys().filter(|n| keep(n)).cloned().collect()
}

/// A `regex=` filter: Python's `re` syntax (look-around and
/// back-references too), matched at the start of a name as Python's
/// `re.match` is. Backtracking is bounded, so a pattern that would take
/// long is an error, not the name server's time.
struct NameRegex(fancy_regex::Regex);

impl NameRegex {
    fn new(pattern: &str) -> Result<NameRegex, Value> {
        fancy_regex::RegexBuilder::new(&format!("^(?:{pattern})"))
            .backtrack_limit(REGEX_BACKTRACK_LIMIT)
            .build()
            .map(NameRegex)
            .map_err(|err| naming_error(&format!("invalid regex: {err}")))
    }

    fn matches(&self, name: &str) -> Result<bool, Value> {
        self.0.is_match(name).map_err(|err| {
            naming_error(&format!(
                "regex too costly to match against {name:?}: {err}"
            ))
        })
    }
}

/// Steps a regex may backtrack per name (fancy-regex's default).
const REGEX_BACKTRACK_LIMIT: usize = 1_000_000;

fn naming_error(message: &str) -> Value {
    exception(NAMING_ERROR, message, Vec::new())
}

fn pyro_error(message: &str) -> Value {
    exception("Pyro5.errors.PyroError", message, Vec::new())
}

fn python_error(class: &str, message: &str) -> Value {
    exception(&format!("builtins.{class}"), message, Vec::new())
}

fn type_error(err: DriverError) -> Value {
    python_error("TypeError", err.message())
}

fn storage_error(err: storage::StoreError) -> Value {
    tracing::error!("name server storage failed: {err}");
    naming_error(&format!("storage error: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming_message(error: Value) -> String {
        format!("{error:?}")
    }

    #[test]
    fn regexes_take_python_syntax_and_are_anchored_at_the_start() {
        let matches =
            |pattern: &str, name: &str| NameRegex::new(pattern).unwrap().matches(name).unwrap();
        assert!(matches(r"lab\.(?!scope)", "lab.laser"));
        assert!(!matches(r"lab\.(?!scope)", "lab.scope"));
        assert!(matches(r"(l)ab\.\1aser", "lab.laser"));
        assert!(matches(r"(?P<x>lab)", "lab.laser"));
        assert!(
            !matches(r"laser", "lab.laser"),
            "anchored at the start, as re.match"
        );
        let invalid = naming_message(NameRegex::new("(").map(|_| ()).unwrap_err());
        assert!(invalid.contains("invalid regex"), "{invalid}");
    }

    #[test]
    fn a_regex_that_backtracks_for_ages_is_an_error_not_a_hang() {
        let regex = NameRegex::new(r"(a|aa)*(?=b)c").unwrap();
        let name = "a".repeat(64);
        let started = std::time::Instant::now();
        let costly = naming_message(regex.matches(&name).unwrap_err());
        assert!(costly.contains("too costly"), "{costly}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
