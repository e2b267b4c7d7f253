//! The plugin API of `pyrolab-host`: the stable ABI between the host and
//! driver libraries, and the SDK driver authors write against.
//!
//! A driver is ordinary Rust: a struct, an `impl` block marked
//! [`#[service]`](service), and one [`export_plugin!`] line. Built as a
//! `cdylib` and dropped into a plugin directory, it is loaded by
//! `pyrolab-host` the way PyroLab imports a Python class, and its public
//! methods become callable by Python Pyro5 clients and Rust clients alike.
//!
//! # A complete driver
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "thermometer"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! pyrolab-plugin-api = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use pyrolab_plugin_api::prelude::*;
//!
//! /// Parameters from the service's `parameters:` mapping in the YAML config.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Settings {
//!     /// Where the probe is.
//!     location: String,
//!     /// Calibration offset in kelvin.
//!     #[serde(default)]
//!     offset: f64,
//! }
//!
//! pub struct Thermometer {
//!     settings: Settings,
//!     readings: u64,
//! }
//!
//! /// A thermometer that always reads room temperature.
//! #[service]
//! impl Thermometer {
//!     #[constructor]
//!     pub fn new(settings: Settings) -> Result<Self> {
//!         if settings.location.is_empty() {
//!             return Err(DriverError::value("location must not be empty"));
//!         }
//!         Ok(Thermometer { settings, readings: 0 })
//!     }
//!
//!     /// Reads the temperature, in the given unit ("K" or "C").
//!     pub fn read(&mut self, #[default("K")] unit: String) -> Result<f64> {
//!         self.readings += 1;
//!         let kelvin = 293.15 + self.settings.offset;
//!         match unit.as_str() {
//!             "K" => Ok(kelvin),
//!             "C" => Ok(kelvin - 273.15),
//!             other => Err(DriverError::value(format!("unknown unit {other:?}"))),
//!         }
//!     }
//!
//!     /// Where the probe is.
//!     #[getter]
//!     pub fn location(&self) -> String {
//!         self.settings.location.clone()
//!     }
//!
//!     /// How many readings were taken.
//!     #[getter]
//!     pub fn readings(&self) -> u64 {
//!         self.readings
//!     }
//! }
//!
//! export_plugin!(Thermometer);
//! # fn main() {}
//! ```
//!
//! A launch configuration then names it with `module: thermometer` and
//! `classname: Thermometer`, and a Python client calls
//! `proxy.read(unit="C")`.
//!
//! # What the macro gives a driver
//!
//! - Every `pub fn` with a `self` receiver is a remote method. `&self`
//!   methods may run concurrently; `&mut self` methods run alone.
//! - Arguments bind like Python's: positionally or by keyword, with
//!   `#[default(expr)]` defaults, `Option<T>` parameters defaulting to
//!   `None`, and `#[variadic] rest: Vec<T>` for `*args`. Missing, extra or
//!   mistyped arguments are `TypeError`s naming the parameter.
//! - Return any `serde::Serialize` type, or `Result<T>`; a
//!   [`DriverError`] reaches Python as the builtin exception its
//!   [`ErrorKind`] names.
//! - `#[oneway]` marks methods callers do not wait for; `#[getter]` and
//!   `#[setter]` make properties.
//! - `#[constructor]` marks the function that builds the driver from the
//!   service's `parameters` (any `serde::Deserialize` type); without one,
//!   the type's `Default` is used and no parameters are accepted.
//! - A panic anywhere in the driver becomes a `RuntimeError` for that
//!   caller, and the host lives on.
//! - `tracing` events inside the driver reach the host's log.
//!
//! The driver guide (`docs/driver-guide.md` in the repository) walks
//! through all of it.
//!
//! # Layout
//!
//! - [`value`]: the [`Value`] model and its conversions and encoding.
//! - [`error`]: [`DriverError`] and [`ErrorKind`].
//! - [`call`]: [`CallArgs`], the arguments of one call.
//! - [`descriptor`]: descriptions of classes, methods and properties.
//! - [`abi`]: the frozen binary interface and its evolution policy.

#![deny(missing_docs)]

pub mod abi;
pub mod blob;
pub mod call;
pub mod context;
pub mod descriptor;
pub mod error;
mod logging;
mod runtime;
pub mod stream;
pub mod value;

pub use blob::SerializedBlob;
pub use call::CallArgs;
pub use context::CallContext;
pub use error::{DriverError, ErrorKind, Result};
pub use pyrolab_plugin_api_macros::service;
pub use runtime::{Service, ServiceCell};
pub use stream::Stream;
pub use value::{BigInt, Complex, Value, ValueError, from_value, to_value};

/// Raw bytes that convert to and from [`Value::Bytes`] without copying: use
/// it for large binary arguments and results (a `Vec<u8>` parameter works
/// too, but travels element by element).
pub use serde_bytes::ByteBuf as Bytes;

/// The `tracing` crate, for logging from a driver without adding it as a
/// dependency.
pub use tracing;

/// The version of this crate, which a library records when it is built.
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a driver module usually needs.
pub mod prelude {
    pub use crate::{
        BigInt, Bytes, CallArgs, CallContext, Complex, DriverError, ErrorKind, Result,
        SerializedBlob, Stream, Value, export_plugin, service,
    };
    pub use serde::{Deserialize, Serialize};
}

/// Exports a library's classes: one line per library, naming every
/// `#[service]` type it offers (as a Python module can hold several
/// classes).
///
/// ```ignore
/// pyrolab_plugin_api::export_plugin!(SampleService, SampleAutoconnectInstrument);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($class:ty),+ $(,)?) => {
        // The symbol name is the one `abi_stable` loaders look up
        // (`abi_stable::library::ROOT_MODULE_LOADER_NAME`, checked by a test
        // in pyrolab-plugin-api); writing the static here instead of using
        // `#[export_root_module]` spares drivers a direct abi_stable dependency.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn __pyrolab_load_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(__pyrolab_root_module)
            }
            fn __pyrolab_root_module() -> $crate::abi::PluginRootRef {
                static CLASSES: &[$crate::__private::ClassEntry] =
                    &[$($crate::__private::ClassEntry::of::<$class>()),+];
                $crate::__private::root_module(::core::env!("CARGO_CRATE_NAME"), CLASSES)
            }
            // SAFETY: the constructor returns the root module type named here.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginRootRef>(
                    __pyrolab_load_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// Support for generated code. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::call::Arguments;
    pub use crate::runtime::{ClassEntry, root_module};
    pub use crate::value::AsSet;
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
    pub use serde;

    use crate::CallContext;
    use crate::descriptor::TypeDescriptor;

    /// The running call's context, for a method that takes one.
    pub fn call_context() -> CallContext {
        crate::context::take()
    }

    /// Keeps what the method set on its context for the reply.
    pub fn end_call_context(context: CallContext) {
        crate::context::finish(context);
    }
    use crate::{Bytes, DriverError, Value, value};

    /// Decodes a constructor's parameters, naming the offending key on error.
    pub fn decode_parameters<P: serde::de::DeserializeOwned>(
        class: &str,
        parameters: Value,
    ) -> Result<P, DriverError> {
        // An absent `parameters:` is an empty mapping, so that a parameters
        // struct whose fields all have defaults needs none.
        let parameters = match parameters {
            Value::Null => Value::Map(Vec::new()),
            other => other,
        };
        serde_path_to_error::deserialize(parameters).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if path == "." {
                DriverError::value(format!("invalid parameters for {class}: {inner}"))
            } else {
                DriverError::value(format!("invalid parameters for {class}: {path}: {inner}"))
            }
        })
    }

    /// Refuses parameters for a class whose constructor takes none.
    pub fn expect_no_parameters(class: &str, parameters: &Value) -> Result<(), DriverError> {
        let keys: Vec<String> = match parameters {
            Value::Null => return Ok(()),
            Value::Map(entries) => entries.iter().map(|(k, _)| k.to_string()).collect(),
            other => vec![other.to_string()],
        };
        if keys.is_empty() {
            return Ok(());
        }
        Err(DriverError::value(format!(
            "invalid parameters for {class}: it takes no parameters, found {}",
            keys.join(", ")
        )))
    }

    /// Encodes a method's return value.
    pub fn encode_return<T: serde::Serialize + ?Sized>(
        method: &str,
        value: &T,
    ) -> Result<Value, DriverError> {
        value::to_value(value).map_err(|err| cannot_send(method, err))
    }

    fn cannot_send(method: &str, err: value::ValueError) -> DriverError {
        DriverError::runtime(format!(
            "{method}() returned a value that cannot be sent: {err}"
        ))
    }

    /// How a generated dispatch hands over a method's return value: as a
    /// [`Value`] ([`Service::dispatch`](crate::Service::dispatch)), or
    /// encoded straight into a buffer
    /// ([`Service::dispatch_into`](crate::Service::dispatch_into)).
    pub enum Returns<'a> {
        /// Convert it to a `Value`, and return that.
        Value,
        /// Append its encoding here, and return `Value::Null`.
        Encoded(&'a mut Vec<u8>),
        /// As `Encoded` into `head`; but a returned [`Bytes`] of
        /// [`lending::FROM`](crate::abi::lending::FROM) bytes or more is
        /// lent: `head` gets its tag and length, `tail` its buffer
        /// ([`Service::dispatch_lending`](crate::Service::dispatch_lending)).
        Lending {
            /// The encoding, up to a lent byte string's contents.
            head: &'a mut Vec<u8>,
            /// The lent byte string's buffer.
            tail: &'a mut Vec<u8>,
        },
    }

    /// A method's return value, owned, for [`LendBytes`] or
    /// [`DeliverBorrowed`] to deliver. The macro calls
    /// `(&Returned::new(value)).deliver(...)` with both traits in scope:
    /// method resolution picks `LendBytes` when the value is a [`Bytes`]
    /// (which can hand its buffer over) and `DeliverBorrowed` for anything
    /// else, with no bound on the driver's types.
    pub struct Returned<T>(std::cell::Cell<Option<T>>);

    impl<T> Returned<T> {
        /// Wraps a return value.
        pub fn new(value: T) -> Self {
            Returned(std::cell::Cell::new(Some(value)))
        }

        fn take(&self) -> T {
            self.0.take().expect("a return value is delivered once")
        }
    }

    /// Delivers a returned [`Bytes`], lending its buffer when asked to.
    pub trait LendBytes {
        /// Delivers the value as `returns` asks.
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError>;
    }

    impl LendBytes for Returned<Bytes> {
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError> {
            let bytes = self.take();
            match returns {
                Returns::Lending { head, tail } if bytes.len() >= crate::abi::lending::FROM => {
                    value::encode_bytes_start_into(bytes.len(), head);
                    *tail = bytes.into_vec();
                    Ok(Value::Null)
                }
                returns => deliver(method, &bytes, returns),
            }
        }
    }

    /// Delivers a returned [`Stream`](crate::Stream): the call keeps it
    /// and the host reads its items one by one
    /// ([`streaming`](crate::abi::streaming)).
    pub trait DeliverStream {
        /// Delivers the stream as `returns` asks.
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError>;
    }

    impl DeliverStream for Returned<crate::Stream> {
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError> {
            let _ = method;
            crate::runtime::return_stream(self.take());
            // What the call's own result holds is never read: the call
            // answers with the stream.
            if let Returns::Encoded(out) | Returns::Lending { head: out, .. } = returns {
                value::encode_into(&Value::Null, out);
            }
            Ok(Value::Null)
        }
    }

    /// A stream of what a method's `impl Iterator` yields.
    pub fn stream_of<I>(items: I) -> crate::Stream
    where
        I: Iterator + Send + 'static,
        I::Item: serde::Serialize + 'static,
    {
        crate::Stream::new(items)
    }

    /// A stream of what a method's `impl Iterator<Item = Result<T>>`
    /// yields: an error ends it.
    pub fn fallible_stream_of<I, T, E>(items: I) -> crate::Stream
    where
        I: Iterator<Item = Result<T, E>> + Send + 'static,
        T: serde::Serialize + 'static,
        E: Into<DriverError>,
    {
        crate::Stream::fallible(items)
    }

    /// Delivers any other return value, borrowed.
    pub trait DeliverBorrowed {
        /// Delivers the value as `returns` asks.
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError>;
    }

    impl<T: serde::Serialize> DeliverBorrowed for &Returned<T> {
        fn deliver(&self, method: &str, returns: Returns<'_>) -> Result<Value, DriverError> {
            deliver(method, &self.take(), returns)
        }
    }

    /// Delivers a method's return value as `returns` asks: the same bytes
    /// either way, in the end (`encode_serialize` writes what encoding
    /// `to_value`'s result would).
    pub fn deliver<T: serde::Serialize + ?Sized>(
        method: &str,
        value: &T,
        returns: Returns<'_>,
    ) -> Result<Value, DriverError> {
        match returns {
            Returns::Value => encode_return(method, value),
            Returns::Encoded(out) | Returns::Lending { head: out, .. } => {
                value::encode_serialize(value, out)
                    .map(|()| Value::Null)
                    .map_err(|err| cannot_send(method, err))
            }
        }
    }

    /// Delivers `None` for a setter, once its own return value has been
    /// found sendable (as it always was: a setter's call returns `None`).
    pub fn deliver_discarded<T: serde::Serialize + ?Sized>(
        method: &str,
        value: &T,
        returns: Returns<'_>,
    ) -> Result<Value, DriverError> {
        encode_return(method, value)?;
        if let Returns::Encoded(out) | Returns::Lending { head: out, .. } = returns {
            value::encode_into(&Value::Null, out);
        }
        Ok(Value::Null)
    }

    /// The error for a method or attribute the class does not have.
    pub fn no_attribute(class: &str, name: &str) -> DriverError {
        DriverError::new(
            crate::ErrorKind::AttributeError,
            format!("'{class}' object has no attribute '{name}'"),
        )
    }

    /// The error for assigning to a read-only property.
    pub fn read_only(class: &str, name: &str) -> DriverError {
        DriverError::new(
            crate::ErrorKind::AttributeError,
            format!("property '{name}' of '{class}' object has no setter"),
        )
    }

    /// A type as written in Rust and as a Python hint.
    pub fn type_descriptor(rust: &str, python: &str) -> TypeDescriptor {
        TypeDescriptor {
            rust: rust.to_owned(),
            python: python.to_owned(),
        }
    }

    /// A default argument's value, for a descriptor.
    pub fn default_value<T: serde::Serialize>(value: T) -> Option<Value> {
        value::to_value(&value).ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_abi_stables_loader_symbol_name() {
        let macro_source = include_str!("lib.rs");
        let symbol = abi_stable::library::ROOT_MODULE_LOADER_NAME;
        assert!(
            macro_source.contains(&format!("pub static {symbol}:")),
            "export_plugin! must define the static `{symbol}`"
        );
    }
}
