//! The objects Pyro5 5.17's own network tests serve, written as a
//! pyrolab-host driver, so that the conformance runner
//! (`tests/conformance/run.py`) can point those tests at our daemon:
//!
//! - `ServerTestObject` and `NotEverythingExposedClass`, from the sdist's
//!   `tests/test_server.py` (also served for `test_server_timeout.py`);
//! - `EchoServer`, from `Pyro5/utils/echoserver.py` (`test_echoserver.py`).
//!
//! Method names, results and errors follow the Python originals, which
//! the tests check exactly (hence the camelCase names). Where a Python
//! original relies on something a Rust driver cannot do, the method says
//! so in its error; `docs/conformance.md` lists those tests.
#![allow(non_snake_case)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyrolab_plugin_api::prelude::*;

/// `ServerTestObject` of Pyro5's `tests/test_server.py`.
pub struct ServerTestObject {
    dictionary: Mutex<Value>,
    dict_attr: Value,
    value: Mutex<Value>,
    items: Vec<String>,
}

impl Default for ServerTestObject {
    fn default() -> Self {
        ServerTestObject {
            dictionary: Mutex::new(dict([("number", Value::Int(42))])),
            dict_attr: dict([("number2", Value::Int(43))]),
            value: Mutex::new(Value::Int(12345)),
            items: "qwerty".chars().map(String::from).collect(),
        }
    }
}

/// Pyro5's server test object: arithmetic, echo, delays, properties,
/// oneway calls, iterators and Python's sequence protocol.
#[service]
impl ServerTestObject {
    /// The `_dictionary` attribute.
    pub fn getDict(&self) -> Value {
        self.dictionary.lock().expect("dictionary lock").clone()
    }

    /// The `dict_attr` attribute.
    pub fn getDictAttr(&self) -> Value {
        self.dict_attr.clone()
    }

    /// `x * y`, with Python's meaning (numbers, or a sequence repeated).
    pub fn multiply(&self, x: Value, y: Value) -> Result<Value> {
        python_multiply(&x, &y)
    }

    /// `x // y`, Python's floor division.
    pub fn divide(&self, x: Value, y: Value) -> Result<Value> {
        python_floor_divide(&x, &y)
    }

    /// Does nothing.
    pub fn ping(&self) {}

    /// Returns its argument.
    pub fn echo(&self, obj: Value) -> Value {
        obj
    }

    /// `(blob.info, blob.deserialized())` of a `SerializedBlob` argument.
    pub fn blob(&self, blob: SerializedBlob) -> (Value, Value) {
        (blob.info.clone(), blob.deserialized().clone())
    }

    /// Sleeps `delay` seconds; called oneway.
    #[oneway]
    pub fn oneway_delay(&self, delay: f64) -> Result<()> {
        sleep(delay)
    }

    /// Sleeps `delay` seconds, then says so.
    pub fn delay(&self, delay: f64) -> Result<String> {
        sleep(delay)?;
        Ok(format!("slept {} seconds", delay.trunc() as i64))
    }

    /// Sleeps `delay` seconds, then names `id`.
    pub fn delayAndId(&self, delay: f64, id: Value) -> Result<String> {
        sleep(delay)?;
        Ok(format!("slept for {}", python_str(&id)))
    }

    /// `[x, list(args), kwargs]`.
    pub fn testargs(
        &self,
        x: Value,
        #[variadic] args: Vec<Value>,
        #[kwargs] kwargs: BTreeMap<String, Value>,
    ) -> Value {
        let kwargs = kwargs
            .into_iter()
            .map(|(key, value)| (Value::Str(key), value))
            .collect();
        Value::List(vec![x, Value::List(args), Value::Map(kwargs)])
    }

    /// Raises an exception Python cannot serialize; a Rust driver's
    /// errors always can be, so this raises a plain one.
    pub fn nonserializableException(&self) -> Result<()> {
        Err(DriverError::runtime(
            "a Rust driver cannot raise an exception that does not serialize",
        ))
    }

    /// `x * y`; called oneway unless the proxy is told otherwise.
    #[oneway]
    pub fn oneway_multiply(&self, x: Value, y: Value) -> Result<Value> {
        python_multiply(&x, &y)
    }

    /// A read/write property (initially 12345).
    #[getter]
    pub fn value(&self) -> Value {
        self.value.lock().expect("value lock").clone()
    }

    #[setter]
    pub fn set_value(&self, value: Value) {
        *self.value.lock().expect("value lock") = value;
    }

    /// A read-only property: the `_dictionary` attribute.
    #[getter]
    pub fn dictionary(&self) -> Value {
        self.getDict()
    }

    /// `iter(["one", "two", "three"])`.
    pub fn iterator(&self) -> Stream {
        ["one", "two", "three"].into_iter().collect()
    }

    /// A generator of "one" to "five".
    pub fn generator(&self) -> Stream {
        ["one", "two", "three", "four", "five"]
            .into_iter()
            .collect()
    }

    /// Checks the request's `XYZZ` annotation and sets `ANN2` on the reply.
    pub fn response_annotation(&self, call: &CallContext) -> Result<Value> {
        match call.annotation("XYZZ") {
            None => Err(DriverError::value(
                "XYZZ should be present in annotations in the daemon",
            )),
            Some(data) if data != b"data from proxy via new api" => {
                Err(DriverError::value("XYZZ annotation has wrong data"))
            }
            Some(_) => {
                call.set_reply_annotation("ANN2", b"daemon annotation via new api".to_vec())?;
                let annotations = call
                    .annotations()
                    .iter()
                    .map(|(id, data)| (Value::from(id.as_str()), Value::Bytes(data.clone())))
                    .collect();
                Ok(dict([("annotations_in_daemon", Value::Map(annotations))]))
            }
        }
    }

    /// A new `ServerTestObject`, which Pyro5 registers and sends as a proxy.
    pub fn new_test_object(&self) -> Result<Value> {
        Err(DriverError::new(
            ErrorKind::NotImplementedError,
            "a driver cannot register new objects with its daemon",
        ))
    }

    /// `len(self.items)`.
    pub fn __len__(&self) -> usize {
        self.items.len()
    }

    /// `iter(self.items)`.
    pub fn __iter__(&self) -> Stream {
        self.items.iter().cloned().collect()
    }

    /// `self.items[item]`.
    pub fn __getitem__(&self, item: i64) -> Result<String> {
        let len = self.items.len() as i64;
        let index = if item < 0 { item + len } else { item };
        usize::try_from(index)
            .ok()
            .and_then(|index| self.items.get(index))
            .cloned()
            .ok_or_else(|| DriverError::new(ErrorKind::IndexError, "list index out of range"))
    }
}

/// `NotEverythingExposedClass` of Pyro5's `tests/test_server.py`: only
/// `getName` is exposed.
pub struct NotEverythingExposedClass {
    name: String,
}

/// Its constructor's parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    name: String,
}

/// A class of which only `getName` is exposed.
#[service]
impl NotEverythingExposedClass {
    #[constructor]
    pub fn new(parameters: Named) -> Self {
        NotEverythingExposedClass {
            name: parameters.name,
        }
    }

    /// The name it was made with.
    pub fn getName(&self) -> String {
        self.name.clone()
    }
}

impl NotEverythingExposedClass {
    /// Not exposed (outside the `#[service]` block), as in the original.
    pub fn unexposed(&self) -> &'static str {
        "you should not see this"
    }
}

/// `EchoServer` of `Pyro5/utils/echoserver.py`.
#[derive(Default)]
pub struct EchoServer {
    verbose: AtomicBool,
    must_shutdown: AtomicBool,
}

/// Pyro5's test echo server.
#[service]
impl EchoServer {
    /// Returns the message.
    pub fn echo(&self, message: Value) -> Value {
        message
    }

    /// Raises a ValueError.
    pub fn error(&self) -> Result<()> {
        Err(DriverError::value(
            "this is the generated error from echoserver echo() method",
        ))
    }

    /// Raises a ValueError with a message.
    pub fn error_with_text(&self) -> Result<()> {
        Err(DriverError::value("the message of the error"))
    }

    /// Like echo, but oneway.
    #[oneway]
    pub fn oneway_echo(&self, message: Value) -> &'static str {
        let _ = message;
        "bogus return value"
    }

    /// Answers after 5 seconds.
    pub fn slow(&self) -> &'static str {
        std::thread::sleep(Duration::from_secs(5));
        "Finally, an answer!"
    }

    /// "one", "two", "three", one at a time.
    pub fn generator(&self) -> Stream {
        ["one", "two", "three"].into_iter().collect()
    }

    /// `float("nan")`.
    pub fn nan(&self) -> f64 {
        f64::NAN
    }

    /// `float("inf")`.
    pub fn inf(&self) -> f64 {
        f64::INFINITY
    }

    /// Returns after 5 seconds; called oneway.
    #[oneway]
    pub fn oneway_slow(&self) -> &'static str {
        std::thread::sleep(Duration::from_secs(5));
        "bogus return value"
    }

    /// A dunder method, which may be called.
    pub fn __dunder__(&self) -> &'static str {
        "should be allowed (dunder)"
    }

    /// Asks the echo server to shut down.
    pub fn shutdown(&self) {
        self.must_shutdown.store(true, Ordering::SeqCst);
    }

    /// Whether calls are printed (they are not, here).
    #[getter]
    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::SeqCst)
    }

    #[setter]
    pub fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::SeqCst);
    }
}

export_plugin!(ServerTestObject, NotEverythingExposedClass, EchoServer);

fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::Str(key.to_owned()), value))
            .collect(),
    )
}

fn sleep(seconds: f64) -> Result<()> {
    let delay = Duration::try_from_secs_f64(seconds)
        .map_err(|_| DriverError::value(format!("cannot sleep for {seconds} seconds")))?;
    std::thread::sleep(delay);
    Ok(())
}

/// Python's `str()` of the values the tests pass.
fn python_str(value: &Value) -> String {
    match value {
        Value::Str(text) => text.clone(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        other => format!("{other:?}"),
    }
}

/// A number as Python's arithmetic sees it.
enum Number {
    Int(i64),
    Float(f64),
}

fn number(value: &Value) -> Option<Number> {
    match value {
        Value::Int(n) => Some(Number::Int(*n)),
        Value::Bool(b) => Some(Number::Int(i64::from(*b))),
        Value::Float(x) => Some(Number::Float(*x)),
        _ => None,
    }
}

fn as_float(n: &Number) -> f64 {
    match n {
        Number::Int(i) => *i as f64,
        Number::Float(x) => *x,
    }
}

fn operand_error(op: &str, x: &Value, y: &Value) -> DriverError {
    DriverError::type_error(format!(
        "unsupported operand type(s) for {op}: '{}' and '{}'",
        x.type_name(),
        y.type_name()
    ))
}

fn python_multiply(x: &Value, y: &Value) -> Result<Value> {
    if let (Some(a), Some(b)) = (number(x), number(y)) {
        return Ok(match (a, b) {
            (Number::Int(a), Number::Int(b)) => match a.checked_mul(b) {
                Some(product) => Value::Int(product),
                // Python integers do not overflow; i64 * i64 fits in i128.
                None => Value::integer(BigInt::from(i128::from(a) * i128::from(b))),
            },
            (a, b) => Value::Float(as_float(&a) * as_float(&b)),
        });
    }
    let (sequence, times) = match (x, y) {
        (seq, Value::Int(n)) | (Value::Int(n), seq) => (seq, *n),
        _ => return Err(sequence_error(x, y)),
    };
    let times = usize::try_from(times).unwrap_or(0);
    match sequence {
        Value::Str(text) => Ok(Value::Str(text.repeat(times))),
        Value::Bytes(bytes) => Ok(Value::Bytes(bytes.repeat(times))),
        Value::List(items) => Ok(Value::List(repeated(items, times))),
        Value::Tuple(items) => Ok(Value::Tuple(repeated(items, times))),
        _ => Err(operand_error("*", x, y)),
    }
}

fn repeated(items: &[Value], times: usize) -> Vec<Value> {
    (0..times).flat_map(|_| items.iter().cloned()).collect()
}

fn sequence_error(x: &Value, y: &Value) -> DriverError {
    let is_sequence = |v: &Value| {
        matches!(
            v,
            Value::Str(_) | Value::Bytes(_) | Value::List(_) | Value::Tuple(_)
        )
    };
    if is_sequence(x) {
        DriverError::type_error(format!(
            "can't multiply sequence by non-int of type '{}'",
            y.type_name()
        ))
    } else {
        operand_error("*", x, y)
    }
}

fn python_floor_divide(x: &Value, y: &Value) -> Result<Value> {
    let (Some(a), Some(b)) = (number(x), number(y)) else {
        return Err(operand_error("//", x, y));
    };
    match (a, b) {
        (Number::Int(_), Number::Int(0)) => Err(DriverError::new(
            ErrorKind::ZeroDivisionError,
            "integer division or modulo by zero",
        )),
        (Number::Int(a), Number::Int(b)) => {
            let quotient = a.wrapping_div(b);
            let floored = if a % b != 0 && ((a < 0) != (b < 0)) {
                quotient - 1
            } else {
                quotient
            };
            Ok(Value::Int(floored))
        }
        (a, b) => {
            let divisor = as_float(&b);
            if divisor == 0.0 {
                return Err(DriverError::new(
                    ErrorKind::ZeroDivisionError,
                    "float floor division by zero",
                ));
            }
            Ok(Value::Float((as_float(&a) / divisor).floor()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_follows_python() {
        let int = Value::Int;
        assert_eq!(python_multiply(&int(5), &int(11)).unwrap(), int(55));
        assert_eq!(
            python_multiply(&Value::Str("*".into()), &int(3)).unwrap(),
            Value::Str("***".into())
        );
        assert!(python_multiply(&Value::Str("a".into()), &Value::Str("b".into())).is_err());
        assert_eq!(python_floor_divide(&int(999), &int(3)).unwrap(), int(333));
        assert_eq!(python_floor_divide(&int(-7), &int(2)).unwrap(), int(-4));
        let zero = python_floor_divide(&int(1), &int(0)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::ZeroDivisionError);
    }
}
