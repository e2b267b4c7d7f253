//! The library side of the ABI: turns the classes a driver exports into the
//! [`PluginRoot`](crate::abi::PluginRoot) a host loads, and guards every
//! entry point so that a panicking driver becomes an error, never a dead
//! host.
//!
//! Everything here is used by code that [`service`](crate::service) and
//! [`export_plugin!`](crate::export_plugin) generate.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RVec};

use crate::abi::{Instance, Instance_TO, InstanceBox, PluginRoot, PluginRootRef};
use crate::call::CallArgs;
use crate::descriptor::{ClassDescriptor, LibraryDescriptor};
use crate::error::DriverError;
use crate::logging;
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
    let hosted = Hosted {
        cell: Some(ServiceCell::new(driver)),
    };
    Ok(Instance_TO::from_value(hosted, TD_Opaque))
}

/// An instance as the host holds it.
struct Hosted<T: Service> {
    // An Option only so that `drop` can move the driver out and drop it
    // inside `catch_unwind`: a panic may not unwind into the host.
    cell: Option<ServiceCell<T>>,
}

impl<T: Service> Hosted<T> {
    fn cell(&self) -> &ServiceCell<T> {
        self.cell.as_ref().expect("only taken in drop")
    }
}

impl<T: Service> Instance for Hosted<T> {
    fn call(&self, method: RStr<'_>, arguments: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>> {
        let result = guard(|| {
            let call = CallArgs::decode(arguments.as_slice()).map_err(|err| {
                DriverError::type_error(format!("malformed call arguments: {err}"))
            })?;
            T::dispatch(self.cell(), method.as_str(), call)
        });
        match result {
            Ok(value) => ROk(value::encode(&value).into()),
            Err(err) => RErr(encode_error(&err)),
        }
    }
}

impl<T: Service> Drop for Hosted<T> {
    fn drop(&mut self) {
        let cell = self.cell.take();
        if guard(move || {
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
