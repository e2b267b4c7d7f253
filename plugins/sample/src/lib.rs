//! PyroLab's sample services, for checking that a host, its daemons and its
//! clients work: `SampleService` (echo and arithmetic) and
//! `SampleAutoconnectInstrument` (a pretend instrument that must be
//! connected before use).
//!
//! Launch configuration: `module: sample`, `classname: SampleService` or
//! `classname: SampleAutoconnectInstrument`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pyrolab_plugin_api::prelude::*;
use pyrolab_plugin_api::tracing;

/// A Python number: arithmetic on integers stays integral, as in Python.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn combine(
        self,
        other: Number,
        ints: fn(i64, i64) -> Option<i64>,
        floats: fn(f64, f64) -> f64,
    ) -> Number {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => match ints(a, b) {
                Some(result) => Number::Int(result),
                // Python integers do not overflow; the closest we can do.
                None => Number::Float(floats(a as f64, b as f64)),
            },
            (a, b) => Number::Float(floats(a.as_f64(), b.as_f64())),
        }
    }
}

/// Simple services for testing whether a server is working properly.
#[derive(Default)]
pub struct SampleService {
    attribute: Value,
}

/// Simple services for testing whether a server is working properly.
#[service]
impl SampleService {
    /// Echoes back the message with "SERVER RECEIVED: " prepended.
    pub fn echo(&self, message: String) -> String {
        format!("SERVER RECEIVED: {message}")
    }

    /// Like `echo`, after sleeping the given number of seconds: shows that
    /// long-running requests do not break the connection.
    pub fn delayed_echo(&self, message: String, seconds: f64) -> Result<String> {
        let delay = Duration::try_from_secs_f64(seconds)
            .map_err(|_| DriverError::value(format!("cannot sleep for {seconds} seconds")))?;
        std::thread::sleep(delay);
        Ok(format!("SERVER RECEIVED: {message}"))
    }

    /// Returns the identity of the instance that handled the request.
    pub fn whoami(&self) -> String {
        format!("OBJECT ID: {}", self as *const Self as usize)
    }

    /// Adds any number of numbers together.
    pub fn add(&self, #[variadic] values: Vec<Number>) -> Number {
        values.into_iter().fold(Number::Int(0), |sum, v| {
            sum.combine(v, i64::checked_add, |a, b| a + b)
        })
    }

    /// Subtracts the second number from the first.
    pub fn subtract(&self, a: Number, b: Number) -> Number {
        a.combine(b, i64::checked_sub, |a, b| a - b)
    }

    /// Multiplies any number of numbers together.
    pub fn multiply(&self, #[variadic] values: Vec<Number>) -> Number {
        values.into_iter().fold(Number::Int(1), |product, v| {
            product.combine(v, i64::checked_mul, |a, b| a * b)
        })
    }

    /// Divides the first number by the second (true division, as in Python).
    pub fn divide(&self, num: Number, den: Number) -> Result<f64> {
        if den.as_f64() == 0.0 {
            return Err(DriverError::new(
                ErrorKind::ZeroDivisionError,
                "division by zero",
            ));
        }
        Ok(num.as_f64() / den.as_f64())
    }

    /// Returns how many bytes it received: for measuring bulk transfers
    /// (not in PyroLab's sample).
    pub fn byte_count(&self, data: Bytes) -> usize {
        data.len()
    }

    /// Returns the bytes it received: for measuring bulk transfers (not in
    /// PyroLab's sample).
    pub fn echo_bytes(&self, data: Bytes) -> Bytes {
        data
    }

    /// Its keyword arguments as a dict, each key after `prefix`:
    /// `options(prefix="x.", a=1)` is `{"x.a": 1}` (Python's `**kwargs`;
    /// not in PyroLab's sample).
    pub fn options(
        &self,
        #[default(String::new())] prefix: String,
        #[kwargs] rest: BTreeMap<String, Value>,
    ) -> BTreeMap<String, Value> {
        rest.into_iter()
            .map(|(key, value)| (format!("{prefix}{key}"), value))
            .collect()
    }

    /// Returns what it received, whatever it is: a tuple stays a tuple, a
    /// set a set, a large integer exact (not in PyroLab's sample).
    pub fn echo_value(&self, value: Value) -> Value {
        value
    }

    /// Swaps the two items of a pair: `swap((1, "a"))` is `("a", 1)` (not
    /// in PyroLab's sample).
    pub fn swap(&self, pair: (Value, Value)) -> (Value, Value) {
        (pair.1, pair.0)
    }

    /// The distinct words among those given (a list, tuple or set), as a
    /// set (not in PyroLab's sample).
    pub fn distinct(&self, words: Vec<String>) -> BTreeSet<String> {
        words.into_iter().collect()
    }

    /// Negates an integer of any size (not in PyroLab's sample).
    pub fn negate(&self, n: BigInt) -> BigInt {
        -n
    }

    /// The complex conjugate (not in PyroLab's sample).
    pub fn conjugate(&self, z: Complex) -> Complex {
        Complex::new(z.re, -z.im)
    }

    /// 0, 1, ... `count - 1`, as an item stream the client iterates over
    /// (a Python generator's result; not in PyroLab's sample).
    pub fn count(&self, count: u64) -> impl Iterator<Item = u64> + Send + 'static {
        Counted::new(0..count)
    }

    /// `count` byte strings of `size` bytes, as an item stream (not in
    /// PyroLab's sample).
    pub fn chunks(
        &self,
        count: usize,
        size: usize,
    ) -> impl Iterator<Item = Bytes> + Send + 'static {
        Counted::new((0..count).map(move |i| Bytes::from(vec![i as u8; size])))
    }

    /// 0, 1, ... up to `fail_at`, where the stream ends with a
    /// `ValueError` (not in PyroLab's sample).
    pub fn count_then_fail(
        &self,
        fail_at: u64,
    ) -> impl Iterator<Item = Result<u64>> + Send + 'static {
        Counted::new((0..=fail_at).map(move |i| {
            if i < fail_at {
                Ok(i)
            } else {
                Err(DriverError::value(format!("failed at item {i}")))
            }
        }))
    }

    /// How many of this library's item streams are open now (not in
    /// PyroLab's sample): shows when a daemon closes them.
    pub fn open_streams(&self) -> usize {
        OPEN_STREAMS.load(Ordering::SeqCst)
    }

    /// What the call's context says of its caller: its address, the
    /// correlation id and the ids of the request's annotations; the
    /// reply carries the `ECHO` annotation, with the request's `ECHO`
    /// data reversed (not in PyroLab's sample).
    pub fn caller(&self, call: &CallContext) -> Result<Value> {
        if let Some(data) = call.annotation("ECHO") {
            let reversed: Vec<u8> = data.iter().rev().copied().collect();
            call.set_reply_annotation("ECHO", reversed)?;
        }
        let text = |text: Option<&str>| text.map_or(Value::Null, Value::from);
        let ids = call
            .annotations()
            .iter()
            .map(|(id, _)| Value::from(id.as_str()))
            .collect();
        Ok(Value::Map(vec![
            ("client".into(), text(call.client_address())),
            ("correlation_id".into(), text(call.correlation_id())),
            ("annotations".into(), Value::List(ids)),
        ]))
    }

    /// A read/write attribute holding any value (initially None).
    #[getter]
    pub fn attribute(&self) -> Value {
        self.attribute.clone()
    }

    /// Sets the attribute.
    #[setter]
    pub fn set_attribute(&mut self, value: Value) {
        tracing::debug!(%value, "attribute set");
        self.attribute = value;
    }
}

/// Item streams of this library open now.
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// An iterator counted in [`OPEN_STREAMS`] while it lives.
struct Counted<I>(I);

impl<I> Counted<I> {
    fn new(items: I) -> Self {
        OPEN_STREAMS.fetch_add(1, Ordering::SeqCst);
        Counted(items)
    }
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
}

impl<I> Drop for Counted<I> {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Connection parameters for [`SampleAutoconnectInstrument`], from the
/// service's `parameters:` mapping; `autoconnect()` uses them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectParameters {
    /// The address to connect to.
    #[serde(default = "default_address")]
    pub address: String,
    /// The port to connect to.
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_address() -> String {
    "localhost".to_owned()
}

fn default_port() -> u16 {
    9090
}

/// A pretend instrument that works only once connected.
pub struct SampleAutoconnectInstrument {
    parameters: ConnectParameters,
    connected: bool,
}

/// A pretend instrument: `do_something()` fails until `connect()` succeeds,
/// which it does only for address "0.0.0.0" and a port other than 9090.
#[service]
impl SampleAutoconnectInstrument {
    #[constructor]
    pub fn new(parameters: ConnectParameters) -> Self {
        SampleAutoconnectInstrument {
            parameters,
            connected: false,
        }
    }

    /// Connects; requires address "0.0.0.0" and a port other than 9090.
    pub fn connect(
        &mut self,
        #[default("localhost")] address: String,
        #[default(9090)] port: u16,
    ) -> Result<bool> {
        if address != "0.0.0.0" {
            return Err(DriverError::connection(
                "This test method requires address to be '0.0.0.0'.",
            ));
        }
        if port == 9090 {
            return Err(DriverError::connection(
                "This test method requires the port to not be the default of 9090.",
            ));
        }
        tracing::info!(%address, port, "connected");
        self.connected = true;
        Ok(true)
    }

    /// Connects with the service's configured parameters.
    pub fn autoconnect(&mut self) -> Result<bool> {
        let ConnectParameters { address, port } = self.parameters.clone();
        self.connect(address, port)
    }

    /// Does some work; fails until connected.
    pub fn do_something(&self) -> Result<bool> {
        if !self.connected {
            return Err(DriverError::connection(
                "This object cannot do work until connection is made.",
            ));
        }
        Ok(true)
    }

    /// Whether the instrument is connected.
    #[getter]
    pub fn connected(&self) -> bool {
        self.connected
    }
}

export_plugin!(SampleService, SampleAutoconnectInstrument);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_arithmetic_stays_integral() {
        let s = SampleService::default();
        assert_eq!(s.add(vec![Number::Int(1), Number::Int(2)]), Number::Int(3));
        assert_eq!(
            s.add(vec![Number::Int(1), Number::Float(0.5)]),
            Number::Float(1.5)
        );
        assert_eq!(s.multiply(vec![]), Number::Int(1));
        assert_eq!(s.subtract(Number::Int(5), Number::Int(7)), Number::Int(-2));
    }

    #[test]
    fn divide_by_zero_is_a_zero_division_error() {
        let err = SampleService::default()
            .divide(Number::Int(1), Number::Int(0))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ZeroDivisionError);
    }

    #[test]
    fn autoconnect_uses_the_configured_parameters() {
        let mut good = SampleAutoconnectInstrument::new(ConnectParameters {
            address: "0.0.0.0".into(),
            port: 1234,
        });
        assert!(good.do_something().is_err());
        assert!(good.autoconnect().unwrap());
        assert!(good.do_something().unwrap());
        let mut bad = SampleAutoconnectInstrument::new(ConnectParameters {
            address: default_address(),
            port: default_port(),
        });
        assert!(bad.autoconnect().is_err());
    }
}
