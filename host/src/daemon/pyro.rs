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

/// A decoded INVOKE: which object, which method, with what.
#[derive(Debug, PartialEq)]
pub struct Call {
    /// The object id (a service name, or `Pyro.Daemon`).
    pub object: String,
    /// The method name.
    pub method: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Vec<(String, Value)>,
}

impl Call {
    /// Reads a call payload: the 4-tuple `(object, method, vargs, kwargs)`
    /// serpent and msgpack send, or json's `{"object", "method", "params",
    /// "kwargs"}` mapping. `kwargs` may be `None`.
    pub fn from_value(value: Value) -> Result<Call, String> {
        let (object, method, args, kwargs) = match value {
            Value::List(items) | Value::Tuple(items) if items.len() == 4 => {
                let mut items = items.into_iter();
                let mut next = || items.next().expect("four items");
                (next(), next(), next(), next())
            }
            Value::Map(entries) => {
                let take = |key: &str| {
                    entries
                        .iter()
                        .find(|(k, _)| k.as_str() == Some(key))
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null)
                };
                (
                    take("object"),
                    take("method"),
                    take("params"),
                    take("kwargs"),
                )
            }
            other => {
                return Err(format!(
                    "a call is (object, method, args, kwargs), found {}",
                    other.type_name()
                ));
            }
        };
        let object = text(object, "object id")?;
        let method = text(method, "method name")?;
        let args = match args {
            Value::Null => Vec::new(),
            sequence => sequence.into_list().map_err(|other| {
                format!(
                    "call arguments must be a sequence, found {}",
                    other.type_name()
                )
            })?,
        };
        Ok(Call {
            object,
            method,
            args,
            kwargs: keyword_arguments(kwargs)?,
        })
    }
}

fn text(value: Value, what: &str) -> Result<String, String> {
    match value {
        Value::Str(text) => Ok(text),
        other => Err(format!(
            "the {what} must be a string, found {}",
            other.type_name()
        )),
    }
}

/// `kwargs` as name-value pairs (`None` is none).
pub fn keyword_arguments(value: Value) -> Result<Vec<(String, Value)>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Map(entries) => entries
            .into_iter()
            .map(|(k, v)| match k {
                Value::Str(name) => Ok((name, v)),
                other => Err(format!(
                    "keyword names must be strings, found {}",
                    other.type_name()
                )),
            })
            .collect(),
        other => Err(format!(
            "keyword arguments must be a dict, found {}",
            other.type_name()
        )),
    }
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
/// (a lockable daemon's `lock`, `unlock`, `islocked`); every service also
/// has [`SERVICE_METHODS`].
pub fn metadata(class: &ClassDescriptor, extra_methods: &[&str]) -> Value {
    let methods = class
        .methods
        .iter()
        .map(|m| m.name.as_str())
        .chain(extra_methods.iter().copied())
        .chain(SERVICE_METHODS.iter().copied());
    let oneway = class
        .methods
        .iter()
        .filter(|m| m.oneway)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_decode_from_tuples_and_json_maps() {
        let tuple = Value::List(vec![
            "thing".into(),
            "kw".into(),
            Value::List(vec![1.into()]),
            Value::Map(vec![("x".into(), 4.into())]),
        ]);
        let call = Call::from_value(tuple).unwrap();
        assert_eq!(
            (call.object.as_str(), call.method.as_str()),
            ("thing", "kw")
        );
        assert_eq!(call.kwargs, [("x".to_owned(), Value::Int(4))]);
        let json = map(vec![
            ("object", "thing".into()),
            ("method", "__getattr__".into()),
            ("params", Value::List(vec!["value".into()])),
            ("kwargs", Value::Null),
        ]);
        let call = Call::from_value(json).unwrap();
        assert_eq!(call.args, [Value::from("value")]);
        assert!(call.kwargs.is_empty());
        assert!(Call::from_value(Value::Int(1)).is_err());
    }
}
