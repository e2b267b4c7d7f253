//! Pyro5's objects as they travel in payloads: call requests, metadata, and
//! exceptions (maps with a `"__class__"` key).

use pyrolab_plugin_api::descriptor::ClassDescriptor;
use pyrolab_plugin_api::{DriverError, Value};

/// The object id of the daemon's own object.
pub const DAEMON_OBJECT: &str = "Pyro.Daemon";

/// The methods of `Pyro.Daemon`: Pyro5's, and PyroLab's `pyrolab_version`.
pub const DAEMON_METHODS: &[&str] = &[
    "registered",
    "ping",
    "info",
    "get_metadata",
    "get_next_stream_item",
    "close_stream",
    "pyrolab_version",
    "metrics",
];

/// Methods every service answers, as PyroLab's `Service` base class
/// gives them to every PyroLab service: `ping()` is `True`,
/// `pyrolab_version()` the PyroLab version whose client API this host
/// offers. A driver that defines a method of the same name answers it
/// itself (as a Python subclass would override it).
pub const SERVICE_METHODS: &[&str] = &["ping", "pyrolab_version"];

/// The PyroLab release whose client-visible behaviour pyrolab-host
/// matches, as `pyrolab_version()` reports it.
pub const PYROLAB_VERSION: &str = "0.5.0";

/// The answer to one of [`SERVICE_METHODS`] (`None` for other methods).
pub fn service_method(method: &str) -> Option<Value> {
    match method {
        "ping" => Some(Value::Bool(true)),
        "pyrolab_version" => Some(Value::from(PYROLAB_VERSION)),
        _ => None,
    }
}

/// Dunder names Pyro5 never lets a client call (`_private_dunder_methods`
/// in Pyro5 5.17's `server.py`): Python's object machinery.
const PRIVATE_DUNDER_METHODS: &[&str] = &[
    "__init__",
    "__init_subclass__",
    "__class__",
    "__module__",
    "__weakref__",
    "__call__",
    "__new__",
    "__del__",
    "__repr__",
    "__str__",
    "__format__",
    "__nonzero__",
    "__bool__",
    "__coerce__",
    "__cmp__",
    "__eq__",
    "__ne__",
    "__hash__",
    "__ge__",
    "__gt__",
    "__le__",
    "__lt__",
    "__dir__",
    "__enter__",
    "__exit__",
    "__copy__",
    "__deepcopy__",
    "__sizeof__",
    "__getattr__",
    "__setattr__",
    "__hasattr__",
    "__getattribute__",
    "__delattr__",
    "__instancecheck__",
    "__subclasscheck__",
    "__getinitargs__",
    "__getnewargs__",
    "__getstate__",
    "__setstate__",
    "__reduce__",
    "__reduce_ex__",
    "__subclasshook__",
];

/// Whether a client may not call `name`, by Pyro5's rule
/// (`is_private_attribute`): a name starting with `_` is private unless it
/// is a dunder name (`__len__`, `__getitem__`) not in Pyro5's fixed list.
pub fn is_private_attribute(name: &str) -> bool {
    if PRIVATE_DUNDER_METHODS.contains(&name) {
        return true;
    }
    if !name.starts_with('_') {
        return false;
    }
    let dunder = name.len() > 4 && name.starts_with("__") && name.ends_with("__");
    !dunder
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// A set of names, as Pyro5's metadata holds them.
fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    let unique: std::collections::BTreeSet<&str> = items.into_iter().collect();
    Value::Set(unique.into_iter().map(Value::from).collect())
}

/// `get_metadata` for a service: its methods, oneway methods and
/// attributes (properties). `extra_methods` are the daemon's additions
/// (a lockable daemon's `lock`, `unlock`, `islocked`), `service_methods`
/// PyroLab's (normally [`SERVICE_METHODS`]).
pub fn metadata(
    class: &ClassDescriptor,
    extra_methods: &[&str],
    service_methods: &[&str],
) -> Value {
    let methods = class
        .methods
        .iter()
        .map(|m| m.name.as_str())
        .filter(|name| !is_private_attribute(name))
        .chain(extra_methods.iter().copied())
        .chain(service_methods.iter().copied());
    let oneway = class
        .methods
        .iter()
        .filter(|m| m.oneway && !is_private_attribute(&m.name))
        .map(|m| m.name.as_str());
    let attrs = class.properties.iter().map(|p| p.name.as_str());
    map(vec![
        ("methods", strings(methods)),
        ("oneway", strings(oneway)),
        ("attrs", strings(attrs)),
    ])
}

/// `get_metadata` for `Pyro.Daemon` (a lockable daemon adds `release`).
pub fn daemon_metadata(lockable: bool) -> Value {
    let lock_methods = if lockable {
        &["release", "locks"][..]
    } else {
        &[]
    };
    map(vec![
        (
            "methods",
            strings(
                DAEMON_METHODS
                    .iter()
                    .copied()
                    .chain(lock_methods.iter().copied()),
            ),
        ),
        ("oneway", strings([])),
        ("attrs", strings([])),
    ])
}

/// A remote exception as Pyro5 serializes it. `class` is a qualified Python
/// name (`builtins.ValueError`, `Pyro5.errors.DaemonError`); the traceback
/// lines become `_pyroTraceback`, which Pyro5 clients show as the remote
/// traceback.
pub fn exception(class: &str, message: &str, traceback: Vec<String>) -> Value {
    map(vec![
        ("__class__", Value::from(class)),
        ("__exception__", Value::Bool(true)),
        ("args", Value::List(vec![Value::from(message)])),
        (
            "attributes",
            map(vec![(
                "_pyroTraceback",
                Value::List(traceback.into_iter().map(Value::Str).collect()),
            )]),
        ),
    ])
}

/// A driver error as a Python builtin exception, with the driver's context
/// lines as the remote traceback.
pub fn driver_exception(service: &str, method: &str, error: &DriverError) -> Value {
    let class = format!("builtins.{}", error.kind().python_name());
    let mut traceback = vec![
        "Traceback (most recent call last):\n".to_owned(),
        format!("  pyrolab-host service {service:?}, in {method}\n"),
    ];
    traceback.extend(
        error
            .context_lines()
            .iter()
            .map(|line| format!("    {line}\n")),
    );
    traceback.push(format!(
        "{}: {}\n",
        error.kind().python_name(),
        error.message()
    ));
    exception(&class, error.message(), traceback)
}

/// A daemon-side error (unknown object, bad request) as one of Pyro5's own
/// exception classes (`DaemonError`, `SerializeError`, `ProtocolError`).
pub fn pyro_exception(class: &str, message: &str) -> Value {
    exception(
        &format!("Pyro5.errors.{class}"),
        message,
        vec![format!("Pyro5.errors.{class}: {message}\n")],
    )
}

/// Wraps an exception inside a batch result, as Pyro5's `_ExceptionWrapper`.
pub fn batch_exception(exception: Value) -> Value {
    map(vec![
        ("__class__", Value::from("Pyro5.core._ExceptionWrapper")),
        ("exception", exception),
    ])
}
