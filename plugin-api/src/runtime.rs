//! The library side of the ABI: turns the classes a driver exports into the
//! [`PluginRoot`](crate::abi::PluginRoot) a host loads, and guards every
//! entry point so that a panicking driver becomes an error, never a dead
//! host.
//!
//! Everything here is used by code that [`service`](crate::service) and
//! [`export_plugin!`](crate::export_plugin) generate.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RVec};

use crate::abi::{
    Instance, Instance_TO, InstanceBox, PluginRoot, PluginRootRef, lending, streaming,
};
use crate::call::CallArgs;
use crate::descriptor::{ClassDescriptor, LibraryDescriptor};
use crate::error::DriverError;
use crate::logging;
use crate::stream::Stream;
use crate::value::{self, Value};

/// A driver class: implemented by the [`service`](crate::service) macro.
pub trait Service: Sized + Send + Sync + 'static {
    /// The class name clients and configurations use.
    const CLASS_NAME: &'static str;

    /// Describes the class's methods and properties.
    fn describe() -> ClassDescriptor;

    /// Constructs an instance from the service's configured `parameters`.
    fn construct(parameters: Value) -> Result<Self, DriverError>;

    /// Runs one call on an instance.
    fn dispatch(
        cell: &ServiceCell<Self>,
        method: &str,
        call: CallArgs,
    ) -> Result<Value, DriverError>;

    /// Runs one call on an instance and appends the encoding of its result
    /// to `out`: the bytes [`value::encode`] gives for the `Value`
    /// [`dispatch`](Service::dispatch) returns. This is what a host's call
    /// runs.
    ///
    /// The default does just that, so a hand-written `Service` need not
    /// implement it. The [`service`](crate::service) macro encodes the
    /// method's return value straight from serde instead
    /// ([`value::encode_serialize`]), without building the `Value`: a
    /// returned byte string is copied once, into `out`.
    ///
    /// On error, `out` is discarded by the caller.
    fn dispatch_into(
        cell: &ServiceCell<Self>,
        method: &str,
        call: CallArgs,
        out: &mut Vec<u8>,
    ) -> Result<(), DriverError> {
        let value = Self::dispatch(cell, method, call)?;
        value::encode_into(&value, out);
        Ok(())
    }

    /// Like [`dispatch_into`](Service::dispatch_into), but a method that
    /// returns a large [`Bytes`](crate::Bytes) lends it: `head` gets the
    /// byte string's tag and length and `tail` its buffer, which goes to
    /// the host as it is ([`Lent`](crate::abi::Lent)). Otherwise `tail`
    /// stays empty.
    ///
    /// The default lends nothing; the [`service`](crate::service) macro
    /// lends what a method returns.
    fn dispatch_lending(
        cell: &ServiceCell<Self>,
        method: &str,
        call: CallArgs,
        head: &mut Vec<u8>,
        tail: &mut Vec<u8>,
    ) -> Result<(), DriverError> {
        let _ = tail;
        Self::dispatch_into(cell, method, call, head)
    }
}

/// A driver instance behind a reader-writer lock: `&self` methods share it,
/// `&mut self` methods have it alone.
pub struct ServiceCell<T> {
    lock: RwLock<T>,
}

impl<T> ServiceCell<T> {
    fn new(driver: T) -> Self {
        ServiceCell {
            lock: RwLock::new(driver),
        }
    }

    /// Shared access for a `&self` method.
    ///
    /// A driver that panicked mid-call has already reported the panic to its
    /// caller; like a Python object after an exception, it stays usable.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.lock
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Exclusive access for a `&mut self` method.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.lock
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One exported class, as listed by [`export_plugin!`](crate::export_plugin).
#[doc(hidden)]
pub struct ClassEntry {
    name: &'static str,
    describe: fn() -> ClassDescriptor,
    create: fn(Value) -> Result<InstanceBox, DriverError>,
}

impl ClassEntry {
    /// The entry for a `#[service]` type.
    pub const fn of<T: Service>() -> Self {
        ClassEntry {
            name: T::CLASS_NAME,
            describe: T::describe,
            create: create_instance::<T>,
        }
    }
}

struct Registry {
    crate_name: &'static str,
    classes: &'static [ClassEntry],
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Builds the root module for a library exporting `classes`. Called once,
/// by the loader function [`export_plugin!`](crate::export_plugin) generates.
#[doc(hidden)]
pub fn root_module(crate_name: &'static str, classes: &'static [ClassEntry]) -> PluginRootRef {
    REGISTRY.get_or_init(|| Registry {
        crate_name,
        classes,
    });
    logging::install_panic_hook();
    PluginRoot {
        describe: describe_library,
        install_logger: logging::install,
        create: create_by_name,
    }
    .leak_into_prefix()
}

fn registry() -> &'static Registry {
    REGISTRY
        .get()
        .expect("the root module is built before any entry point is called")
}

extern "C" fn describe_library() -> RVec<u8> {
    let described = guard(|| {
        let registry = registry();
        let descriptor = LibraryDescriptor {
            crate_name: registry.crate_name.to_owned(),
            plugin_api_version: crate::PLUGIN_API_VERSION.to_owned(),
            classes: registry.classes.iter().map(|c| (c.describe)()).collect(),
        };
        value::to_value(&descriptor).map_err(|err| DriverError::runtime(err.to_string()))
    });
    // A library that cannot describe itself still answers with a valid
    // encoding: the host reports the error instead of misreading bytes.
    match described {
        Ok(value) => value::encode(&value).into(),
        Err(err) => value::encode(&Value::Map(vec![(Value::from("error"), err.to_value())])).into(),
    }
}

extern "C" fn create_by_name(
    classname: RStr<'_>,
    parameters: RSlice<'_, u8>,
) -> RResult<InstanceBox, RVec<u8>> {
    let created = guard(|| {
        let registry = registry();
        let Some(entry) = registry
            .classes
            .iter()
            .find(|c| c.name == classname.as_str())
        else {
            let names: Vec<&str> = registry.classes.iter().map(|c| c.name).collect();
            return Err(DriverError::lookup(format!(
                "class '{classname}' is not in this library (it has: {})",
                names.join(", ")
            )));
        };
        let parameters = value::decode(parameters.as_slice())
            .map_err(|err| DriverError::value(format!("parameters: {err}")))?;
        (entry.create)(parameters)
    });
    match created {
        Ok(instance) => ROk(instance),
        Err(err) => RErr(encode_error(&err)),
    }
}

fn create_instance<T: Service>(parameters: Value) -> Result<InstanceBox, DriverError> {
    let driver = T::construct(parameters)
        .map_err(|err| err.context(format!("while constructing {}", T::CLASS_NAME)))?;
    Ok(Instance_TO::from_value(Hosted::new(driver), TD_Opaque))
}

/// An instance as the host holds it.
struct Hosted<T: Service> {
    // An Option only so that `drop` can move the driver out and drop it
    // inside `catch_unwind`: a panic may not unwind into the host.
    cell: Option<ServiceCell<T>>,
    /// The item streams its methods returned that the host still reads
    /// ([`streaming`]), by id.
    streams: Mutex<HashMap<u64, Stream>>,
    next_stream: AtomicU64,
}

impl<T: Service> Hosted<T> {
    fn new(driver: T) -> Self {
        Hosted {
            cell: Some(ServiceCell::new(driver)),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
        }
    }

    fn cell(&self) -> &ServiceCell<T> {
        self.cell.as_ref().expect("only taken in drop")
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Stream>> {
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps a returned stream; the result of the streaming call that
    /// returned it.
    fn open_stream(&self, stream: Stream) -> Vec<u8> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams().insert(id, stream);
        streaming::opened(id).to_vec()
    }

    /// The next item of the stream `arguments` names ([`streaming::NEXT`]):
    /// its encoding (a large byte string lent), or nothing at its end.
    fn next_item(&self, arguments: RSlice<'_, u8>) -> Result<Vec<u8>, DriverError> {
        let id = stream_id(arguments)?;
        // Out of the table while it produces, so that other streams of
        // the instance are not held up by this one.
        let mut stream = self
            .streams()
            .remove(&id)
            .ok_or_else(|| DriverError::lookup(format!("no item stream {id}")))?;
        // An ended stream is dropped in the guard: its iterator may panic
        // then too.
        guard(move || {
            let mut head = Vec::new();
            let mut tail = Vec::new();
            match stream.next_into(&mut head, &mut tail) {
                None => Ok(Vec::new()),
                Some(Err(err)) => Err(err),
                Some(Ok(())) => {
                    self.streams().insert(id, stream);
                    KEPT.set(tail);
                    Ok(head)
                }
            }
        })
    }
}

fn stream_id(arguments: RSlice<'_, u8>) -> Result<u64, DriverError> {
    let bytes: [u8; 8] = arguments
        .as_slice()
        .try_into()
        .map_err(|_| DriverError::type_error("a stream id is eight bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

impl<T: Service> Instance for Hosted<T> {
    fn call(&self, method: RStr<'_>, arguments: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>> {
        let method = method.as_str();
        let result = match method {
            lending::TAKE => return ROk(KEPT.take().into()),
            streaming::NEXT => self.next_item(arguments),
            streaming::CLOSE => {
                let closed = stream_id(arguments).map(|id| self.streams().remove(&id));
                // Dropped here, in the guard: an iterator may panic too.
                guard(move || closed.map(drop).map(|()| Vec::new()))
            }
            method => self.run(method, arguments),
        };
        match result {
            Ok(head) => ROk(head.into()),
            Err(err) => RErr(encode_error(&err)),
        }
    }
}

impl<T: Service> Hosted<T> {
    /// Runs a plain, lending or streaming call of a method.
    fn run(&self, method: &str, arguments: RSlice<'_, u8>) -> Result<Vec<u8>, DriverError> {
        let (method, may_stream) = match method.strip_prefix(streaming::PREFIX) {
            Some(method) => (method, true),
            None => (method, false),
        };
        RETURNED_STREAM.take();
        let result = guard(|| {
            let (call, context) = value::decode_call(arguments.as_slice()).map_err(|err| {
                DriverError::type_error(format!("malformed call arguments: {err}"))
            })?;
            crate::context::arrive(context);
            let mut head = Vec::new();
            match method.strip_prefix(lending::PREFIX) {
                Some(method) => lend(self.cell(), method, call, &mut head)?,
                None if may_stream => lend(self.cell(), method, call, &mut head)?,
                None => T::dispatch_into(self.cell(), method, call, &mut head)?,
            }
            match RETURNED_STREAM.take() {
                None => Ok(head),
                Some(stream) if may_stream => Ok(self.open_stream(stream)),
                Some(_) => Err(DriverError::runtime(format!(
                    "{method}() returns an item stream, which this host cannot serve: \
                     it needs a host of pyrolab-plugin-api 0.1.3 or later"
                ))),
            }
        });
        // Taken whatever happened, so that none is left for the next call.
        let annotations = crate::context::reply_annotations();
        match result {
            Ok(head) if !annotations.is_empty() => {
                Ok(crate::abi::context::annotated(&annotations, &head))
            }
            other => other,
        }
    }
}

/// A lending call: the head goes back, the tail waits in [`KEPT`].
fn lend<T: Service>(
    cell: &ServiceCell<T>,
    method: &str,
    call: CallArgs,
    head: &mut Vec<u8>,
) -> Result<(), DriverError> {
    let mut tail = Vec::new();
    T::dispatch_lending(cell, method, call, head, &mut tail)?;
    KEPT.set(tail);
    Ok(())
}

thread_local! {
    /// The stream the method a call ran returned, left here by the code
    /// [`service`](crate::service) generates, for the call to keep.
    static RETURNED_STREAM: std::cell::Cell<Option<Stream>> = const { std::cell::Cell::new(None) };
}

/// Hands the stream a method returned to the call running it
/// (generated code's side of [`streaming`]).
pub(crate) fn return_stream(stream: Stream) {
    RETURNED_STREAM.set(Some(stream));
}

thread_local! {
    /// The byte string the last lending call on this thread lent, until
    /// the host takes it ([`lending`]).
    static KEPT: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl<T: Service> Drop for Hosted<T> {
    fn drop(&mut self) {
        let cell = self.cell.take();
        let streams = std::mem::take(&mut *self.streams());
        if guard(move || {
            drop(streams);
            drop(cell);
            Ok(())
        })
        .is_err()
        {
            tracing::error!("{} panicked while being dropped", T::CLASS_NAME);
        }
    }
}

fn encode_error(err: &DriverError) -> RVec<u8> {
    value::encode(&err.to_value()).into()
}

/// Runs `f`, turning a panic into a `RuntimeError` that carries the panic
/// message and where it happened.
fn guard<R>(f: impl FnOnce() -> Result<R, DriverError>) -> Result<R, DriverError> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(panic_error(payload)),
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the hook.
    pub(crate) static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn panic_error(payload: Box<dyn Any + Send>) -> DriverError {
    let message = logging::payload_text(&*payload);
    let mut err = DriverError::runtime(format!("driver panicked: {message}"));
    if let Some(location) = LAST_PANIC_LOCATION.with(|last| last.borrow_mut().take()) {
        err = err.context(format!("at {location}"));
    }
    err
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use abi_stable::std_types::{RResult, RSlice, RStr};
    use serde::Serialize;

    use super::*;
    use crate::{BigInt, Bytes, Complex, ErrorKind, Result};

    #[derive(Serialize)]
    struct Reading {
        channel: u8,
        samples: Vec<f64>,
        raw: Bytes,
        label: Option<String>,
        #[serde(serialize_with = "crate::value::as_set")]
        flags: Vec<&'static str>,
    }

    #[derive(Serialize)]
    enum State {
        Idle,
        Busy(u32),
        Stepping(u8, u8),
        Failed { code: i32 },
    }

    /// A value with no wire form.
    struct Unsendable;

    impl Serialize for Unsendable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no wire form"))
        }
    }

    #[derive(Default)]
    struct Probe {
        level: i64,
        name: String,
    }

    #[crate::service(crate = "crate")]
    impl Probe {
        pub fn nothing(&self) {}

        /// The context between two arguments: callers pass only those.
        pub fn context_of(&self, before: i64, call: &crate::CallContext, after: i64) -> Value {
            if let Some(data) = call.annotation("XYZZ") {
                call.set_reply_annotation("ANN2", data.to_vec()).unwrap();
            }
            Value::List(vec![
                before.into(),
                call.client_address().map_or(Value::Null, Value::from),
                call.correlation_id().map_or(Value::Null, Value::from),
                after.into(),
            ])
        }

        pub fn number(&self, x: i64) -> i64 {
            x
        }

        pub fn huge(&self) -> (u64, i128, u128) {
            (u64::MAX, i128::MIN, u128::MAX)
        }

        pub fn blob(&self, len: usize) -> Bytes {
            Bytes::from(vec![7; len])
        }

        pub fn reading(&self) -> Reading {
            Reading {
                channel: 2,
                samples: (0..300).map(|i| f64::from(i) / 7.0).collect(),
                raw: Bytes::from(vec![1, 2, 3]),
                label: Some("ünïcode".into()),
                flags: vec!["hot", "cold"],
            }
        }

        pub fn states(&self) -> Vec<State> {
            vec![
                State::Idle,
                State::Busy(3),
                State::Stepping(1, 2),
                State::Failed { code: -1 },
            ]
        }

        pub fn tags(&self) -> BTreeSet<String> {
            ["b".to_owned(), "a".to_owned()].into()
        }

        pub fn checked_tags(&self, fail: bool) -> Result<BTreeSet<u8>> {
            if fail {
                Err(DriverError::value("no tags"))
            } else {
                Ok([3, 1].into())
            }
        }

        pub fn echo(&self, value: Value) -> Value {
            value
        }

        pub fn maybe(&self, value: Option<Value>) -> Option<Value> {
            value
        }

        pub fn numbers(&self) -> (BigInt, Complex, f32, char) {
            (
                "9".repeat(40).parse().unwrap(),
                Complex::new(1.0, -2.0),
                0.1,
                'é',
            )
        }

        pub fn unsendable(&self) -> Unsendable {
            Unsendable
        }

        pub fn checked_unsendable(&self) -> Result<Unsendable> {
            Ok(Unsendable)
        }

        /// Returns the previous level, which the setter's caller never sees.
        #[setter]
        pub fn set_level(&mut self, level: i64) -> i64 {
            std::mem::replace(&mut self.level, level)
        }

        pub fn count(&self, n: u64) -> impl Iterator<Item = u64> + Send + 'static {
            0..n
        }

        pub fn blobs(&self, n: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
            (0..n).map(|i| Bytes::from(vec![i as u8; lending::FROM + i]))
        }

        pub fn failing(&self, fail_at: u64) -> crate::Stream {
            crate::Stream::fallible((0..=fail_at).map(move |i| {
                if i < fail_at {
                    Ok(i)
                } else {
                    Err(DriverError::value("broke"))
                }
            }))
        }

        pub fn maybe_stream(
            &self,
            fail: bool,
        ) -> Result<impl Iterator<Item = Result<String>> + Send + 'static> {
            if fail {
                return Err(DriverError::value("no stream"));
            }
            Ok(["a", "b"].into_iter().map(|s| Ok(s.to_owned())))
        }

        #[getter]
        pub fn level(&self) -> i64 {
            self.level
        }

        #[getter]
        pub fn name(&self) -> String {
            self.name.clone()
        }

        #[setter]
        pub fn set_name(&mut self, name: String) -> Result<Unsendable> {
            if name.is_empty() {
                return Err(DriverError::value("empty name"));
            }
            self.name = name;
            Ok(Unsendable)
        }
    }

    /// A `Service` written by hand, implementing only `dispatch`.
    struct Manual;

    impl Service for Manual {
        const CLASS_NAME: &'static str = "Manual";

        fn describe() -> ClassDescriptor {
            ClassDescriptor {
                name: Self::CLASS_NAME.into(),
                doc: String::new(),
                parameters_type: None,
                methods: Vec::new(),
                properties: Vec::new(),
            }
        }

        fn construct(_: Value) -> Result<Self> {
            Ok(Manual)
        }

        fn dispatch(_: &ServiceCell<Self>, method: &str, call: CallArgs) -> Result<Value> {
            match method {
                "hello" => Ok(Value::Tuple(vec!["hi".into(), Value::Bytes(vec![0; 500])])),
                "args" => Ok(call.into_value()),
                other => Err(DriverError::lookup(format!("no {other}"))),
            }
        }
    }

    /// The result of a call as the host sees it through the ABI.
    fn through_abi<T: Service>(
        hosted: &Hosted<T>,
        method: &str,
        call: &CallArgs,
    ) -> Result<Vec<u8>, Vec<u8>> {
        let arguments = value::encode(&call.clone().into_value());
        match hosted.call(RStr::from(method), RSlice::from_slice(&arguments)) {
            RResult::ROk(bytes) => Ok(bytes.into_vec()),
            RResult::RErr(bytes) => Err(bytes.into_vec()),
        }
    }

    /// Checks that `dispatch_into`, and a call through the ABI, give the
    /// bytes of encoding what `dispatch` returns; returns `dispatch`'s result.
    #[track_caller]
    fn same_bytes<T: Service>(hosted: &Hosted<T>, method: &str, call: CallArgs) -> Result<Value> {
        let by_value = T::dispatch(hosted.cell(), method, call.clone());
        let mut out = b"prefix".to_vec();
        let direct = T::dispatch_into(hosted.cell(), method, call.clone(), &mut out);
        match (&by_value, &direct) {
            (Ok(value), Ok(())) => {
                assert!(out[..6] == *b"prefix", "{method}");
                assert!(
                    out[6..] == value::encode(value),
                    "{method}: encodings differ"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{method}"),
            _ => panic!("{method}: dispatch gave {by_value:?}, dispatch_into {direct:?}"),
        }
        let expected = by_value
            .as_ref()
            .map(value::encode)
            .map_err(|err| value::encode(&err.to_value()));
        assert_eq!(through_abi(hosted, method, &call), expected, "{method}");
        assert_eq!(
            through_abi_lending(hosted, method, &call).map(|(head, tail)| [head, tail].concat()),
            expected,
            "{method}, lending"
        );
        by_value
    }

    /// The result of a lending call as the host sees it through the ABI:
    /// the head and the lent tail.
    fn through_abi_lending<T: Service>(
        hosted: &Hosted<T>,
        method: &str,
        call: &CallArgs,
    ) -> Result<(Vec<u8>, Vec<u8>), Vec<u8>> {
        let arguments = value::encode(&call.clone().into_value());
        let lending = format!("{}{method}", lending::PREFIX);
        let head = match hosted.call(RStr::from(lending.as_str()), RSlice::from_slice(&arguments)) {
            RResult::ROk(bytes) => bytes.into_vec(),
            RResult::RErr(bytes) => return Err(bytes.into_vec()),
        };
        let tail = match hosted.call(RStr::from(lending::TAKE), RSlice::from_slice(&[])) {
            RResult::ROk(bytes) => bytes.into_vec(),
            RResult::RErr(bytes) => return Err(bytes.into_vec()),
        };
        Ok((head, tail))
    }

    fn hosted<T: Service>(driver: T) -> Hosted<T> {
        Hosted::new(driver)
    }

    fn args(values: Vec<Value>) -> CallArgs {
        CallArgs::positional(values)
    }

    #[test]
    fn generated_dispatch_encodes_results_as_encoding_their_values_would() {
        let probe = hosted(Probe::default());
        let none = CallArgs::default;
        assert_eq!(same_bytes(&probe, "nothing", none()), Ok(Value::Null));
        assert_eq!(
            same_bytes(&probe, "number", args(vec![(-5).into()])),
            Ok(Value::Int(-5))
        );
        same_bytes(&probe, "huge", none()).unwrap();
        for len in [0u32, 1, 127, 128, 1 << 20] {
            let blob = same_bytes(&probe, "blob", args(vec![len.into()])).unwrap();
            assert_eq!(blob.as_bytes().map(<[u8]>::len), Some(len as usize));
        }
        same_bytes(&probe, "reading", none()).unwrap();
        same_bytes(&probe, "states", none()).unwrap();
        assert_eq!(
            same_bytes(&probe, "tags", none()),
            Ok(Value::Set(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            same_bytes(&probe, "checked_tags", args(vec![false.into()])),
            Ok(Value::Set(vec![1.into(), 3.into()]))
        );
        let err = same_bytes(&probe, "checked_tags", args(vec![true.into()])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueError);
        let every = Value::Map(vec![
            (Value::Tuple(vec![1.into()]), Value::Set(vec![Value::Null])),
            ("bytes".into(), Value::Bytes(vec![9; 1000])),
            // Normalized to an Int on the way out, as to_value does.
            ("small".into(), Value::BigInt(BigInt::from(5))),
            (
                "big".into(),
                Value::BigInt(format!("-{}", "1".repeat(30)).parse().unwrap()),
            ),
            ("z".into(), Value::Complex(Complex::new(0.5, 0.25))),
            ("frozen".into(), Value::FrozenSet(vec![Value::List(vec![])])),
        ]);
        same_bytes(&probe, "echo", args(vec![every.clone()])).unwrap();
        same_bytes(&probe, "maybe", args(vec![every])).unwrap();
        same_bytes(&probe, "maybe", none()).unwrap();
        same_bytes(&probe, "numbers", none()).unwrap();
        for method in ["unsendable", "checked_unsendable"] {
            let err = same_bytes(&probe, method, none()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RuntimeError);
            assert_eq!(
                err.message(),
                format!("{method}() returned a value that cannot be sent: no wire form")
            );
        }
        // Binding errors and unknown names come before any result.
        same_bytes(&probe, "number", none()).unwrap_err();
        same_bytes(&probe, "number", args(vec!["x".into()])).unwrap_err();
        same_bytes(&probe, "missing", none()).unwrap_err();
    }

    #[test]
    fn properties_encode_as_before() {
        let probe = hosted(Probe::default());
        let get = |name: &str| args(vec![name.into()]);
        let set = |name: &str, value: Value| args(vec![name.into(), value]);
        assert_eq!(
            same_bytes(&probe, "__getattr__", get("level")),
            Ok(Value::Int(0))
        );
        // The setter returns the old level; the call returns None.
        assert_eq!(
            same_bytes(&probe, "__setattr__", set("level", 4.into())),
            Ok(Value::Null)
        );
        assert_eq!(
            same_bytes(&probe, "__getattr__", get("level")),
            Ok(Value::Int(4))
        );
        // A setter's own value must still be sendable, as before.
        let err = same_bytes(&probe, "__setattr__", set("name", "x".into())).unwrap_err();
        assert!(err.message().contains("cannot be sent"), "{err:?}");
        let err = same_bytes(&probe, "__setattr__", set("name", "".into())).unwrap_err();
        assert_eq!(err.message(), "empty name");
        same_bytes(&probe, "__getattr__", get("nope")).unwrap_err();
        same_bytes(&probe, "__setattr__", set("nope", Value::Null)).unwrap_err();
    }

    #[test]
    fn hand_written_services_encode_their_values() {
        let manual = hosted(Manual);
        same_bytes(&manual, "hello", CallArgs::default()).unwrap();
        same_bytes(
            &manual,
            "args",
            args(vec![Value::Bytes(vec![1; 300])]).kwarg("k", 1),
        )
        .unwrap();
        same_bytes(&manual, "other", CallArgs::default()).unwrap_err();
    }

    #[test]
    fn a_returned_large_byte_string_is_lent_in_its_own_buffer_and_nothing_else_is() {
        const LEND_FROM: usize = lending::FROM;
        let probe = hosted(Probe::default());
        let blob =
            |len: usize| through_abi_lending(&probe, "blob", &args(vec![Value::Int(len as i64)]));
        let (head, tail) = blob(LEND_FROM).unwrap();
        assert_eq!(tail, vec![7; LEND_FROM]);
        let mut header = Vec::new();
        value::encode_bytes_start_into(LEND_FROM, &mut header);
        assert_eq!(head, header);
        // Shorter byte strings, and byte strings inside other values, are
        // encoded as `call` encodes them.
        let (head, tail) = blob(LEND_FROM - 1).unwrap();
        assert!(tail.is_empty());
        assert_eq!(
            value::decode(&head).unwrap(),
            Value::Bytes(vec![7; LEND_FROM - 1])
        );
        let inside = Value::List(vec![Value::Bytes(vec![1; LEND_FROM])]);
        let (head, tail) =
            through_abi_lending(&probe, "echo", &args(vec![inside.clone()])).unwrap();
        assert!(tail.is_empty());
        assert_eq!(value::decode(&head).unwrap(), inside);
        // A hand-written service lends nothing.
        let (_, tail) =
            through_abi_lending(&hosted(Manual), "hello", &CallArgs::default()).unwrap();
        assert!(tail.is_empty());
    }

    fn abi_call(hosted: &Hosted<Probe>, name: &str, arguments: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        match hosted.call(RStr::from(name), RSlice::from_slice(arguments)) {
            RResult::ROk(bytes) => Ok(bytes.into_vec()),
            RResult::RErr(bytes) => Err(bytes.into_vec()),
        }
    }

    /// Opens a stream through the ABI, as a host does; its id.
    fn open(hosted: &Hosted<Probe>, method: &str, call: CallArgs) -> u64 {
        let arguments = value::encode(&call.into_value());
        let name = format!("{}{method}", streaming::PREFIX);
        let head = abi_call(hosted, &name, &arguments).unwrap();
        streaming::opened_id(&head).unwrap_or_else(|| panic!("{method} opened no stream"))
    }

    /// The next item through the ABI: `Ok(None)` at the end.
    fn next(hosted: &Hosted<Probe>, id: u64) -> Result<Option<Value>, DriverError> {
        match abi_call(hosted, streaming::NEXT, &id.to_le_bytes()) {
            Ok(head) if head.is_empty() => Ok(None),
            Ok(head) => {
                let tail = abi_call(hosted, lending::TAKE, &[]).unwrap();
                Ok(Some(value::decode(&[head, tail].concat()).unwrap()))
            }
            Err(err) => Err(DriverError::from_value(&value::decode(&err).unwrap()).unwrap()),
        }
    }

    #[test]
    fn a_method_taking_a_call_context_reads_it_and_annotates_its_reply() {
        let probe = hosted(Probe::default());
        let descriptor = Probe::describe();
        let method = descriptor
            .methods
            .iter()
            .find(|m| m.name == "context_of")
            .unwrap();
        assert!(method.context, "the descriptor says it takes a context");
        let names: Vec<&str> = method.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["before", "after"], "the context is no parameter");

        let mut arguments = args(vec![1.into(), 2.into()]).into_value();
        let Value::Map(entries) = &mut arguments else {
            unreachable!()
        };
        let context = Value::Map(vec![
            ("client".into(), "127.0.0.1:4000".into()),
            ("correlation_id".into(), "abc".into()),
            (
                "annotations".into(),
                Value::Map(vec![("XYZZ".into(), Value::Bytes(b"hi".to_vec()))]),
            ),
        ]);
        entries.push((crate::abi::context::KEY.into(), context));
        let result = abi_call(&probe, "context_of", &value::encode(&arguments)).unwrap();
        let (annotations, result) = crate::abi::context::split(&result).expect("annotated");
        assert_eq!(
            value::decode(annotations).unwrap(),
            Value::Map(vec![("ANN2".into(), Value::Bytes(b"hi".to_vec()))])
        );
        assert_eq!(
            value::decode(result).unwrap(),
            Value::List(vec![
                1.into(),
                "127.0.0.1:4000".into(),
                "abc".into(),
                2.into()
            ])
        );

        // Without a context from the host: an empty one, and a plain
        // result (a host before 0.1.4 would misread annotations).
        let plain = through_abi(&probe, "context_of", &args(vec![1.into(), 2.into()])).unwrap();
        assert_eq!(
            value::decode(&plain).unwrap(),
            Value::List(vec![1.into(), Value::Null, Value::Null, 2.into()])
        );
    }

    #[test]
    fn a_returned_iterator_is_kept_and_read_item_by_item_through_the_abi() {
        let probe = hosted(Probe::default());
        let id = open(&probe, "count", args(vec![3.into()]));
        for i in 0..3 {
            assert_eq!(next(&probe, id), Ok(Some(Value::Int(i))));
        }
        assert_eq!(next(&probe, id), Ok(None));
        assert!(probe.streams().is_empty(), "an ended stream is forgotten");
        // Asking again: no such stream.
        assert_eq!(next(&probe, id).unwrap_err().kind(), ErrorKind::LookupError);

        // Large byte-string items are lent, as returned byte strings are.
        let id = open(&probe, "blobs", args(vec![2.into()]));
        for i in 0..2 {
            let head = abi_call(&probe, streaming::NEXT, &id.to_le_bytes()).unwrap();
            let tail = abi_call(&probe, lending::TAKE, &[]).unwrap();
            assert_eq!(tail, vec![i as u8; lending::FROM + i]);
            assert_eq!(value::lent_bytes_length(&head), Some(lending::FROM + i));
        }
    }

    #[test]
    fn a_failing_item_ends_its_stream_with_the_error() {
        let probe = hosted(Probe::default());
        let id = open(&probe, "failing", args(vec![2.into()]));
        assert_eq!(next(&probe, id), Ok(Some(Value::Int(0))));
        assert_eq!(next(&probe, id), Ok(Some(Value::Int(1))));
        let err = next(&probe, id).unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::ValueError, "broke")
        );
        assert!(probe.streams().is_empty());
        // A method that fails before making its stream is an ordinary error.
        let arguments = value::encode(&args(vec![true.into()]).into_value());
        let name = format!("{}maybe_stream", streaming::PREFIX);
        assert!(abi_call(&probe, &name, &arguments).is_err());
        let id = open(&probe, "maybe_stream", args(vec![false.into()]));
        assert_eq!(next(&probe, id), Ok(Some(Value::from("a"))));
    }

    #[test]
    fn a_closed_stream_is_dropped_and_an_older_hosts_call_is_refused() {
        let probe = hosted(Probe::default());
        let id = open(&probe, "count", args(vec![10.into()]));
        assert_eq!(probe.streams().len(), 1);
        abi_call(&probe, streaming::CLOSE, &id.to_le_bytes()).unwrap();
        assert!(probe.streams().is_empty());
        // A host before 0.1.3 calls plainly or lends: it is told, and no
        // stream is kept.
        for name in ["count".to_owned(), format!("{}count", lending::PREFIX)] {
            let arguments = value::encode(&args(vec![1.into()]).into_value());
            let err = abi_call(&probe, &name, &arguments).unwrap_err();
            let err = DriverError::from_value(&value::decode(&err).unwrap()).unwrap();
            assert!(
                err.message()
                    .contains("returns an item stream, which this host cannot serve"),
                "{err:?}"
            );
        }
        assert!(probe.streams().is_empty());
        // Methods that return values answer streaming calls as before.
        let arguments = value::encode(&args(vec![7.into()]).into_value());
        let name = format!("{}number", streaming::PREFIX);
        assert_eq!(
            value::decode(&abi_call(&probe, &name, &arguments).unwrap()).unwrap(),
            Value::Int(7)
        );
    }

    #[test]
    fn a_returned_megabyte_is_encoded_into_one_exactly_sized_buffer() {
        let probe = ServiceCell::new(Probe::default());
        let mut out = Vec::new();
        Probe::dispatch_into(&probe, "blob", args(vec![(1u32 << 20).into()]), &mut out).unwrap();
        assert_eq!(out.capacity(), out.len());
        assert_eq!(out.len(), 1 + 3 + (1 << 20));
    }
}
