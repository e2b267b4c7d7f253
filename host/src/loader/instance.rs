use std::fmt;
use std::sync::Arc;

use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use pyrolab_plugin_api::abi::InstanceBox;
use pyrolab_plugin_api::descriptor::ClassDescriptor;
use pyrolab_plugin_api::{CallArgs, DriverError, Value, value};

use super::library::decode_error;

/// A live driver instance. Calls may be made from any thread; the driver
/// decides, by its methods' receivers, which run concurrently.
pub struct Instance {
    handle: InstanceBox,
    class: Arc<ClassDescriptor>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("class", &self.class.name)
            .finish_non_exhaustive()
    }
}

impl Instance {
    pub(super) fn new(handle: InstanceBox, class: Arc<ClassDescriptor>) -> Self {
        Instance { handle, class }
    }

    /// The instance's class description.
    pub fn class(&self) -> &ClassDescriptor {
        &self.class
    }

    /// Calls a method. Errors are the driver's own (a panic inside the
    /// driver arrives as a `RuntimeError`).
    pub fn call(&self, method: &str, args: CallArgs) -> Result<Value, DriverError> {
        let encoded = value::encode(&args.into_value());
        self.call_encoded(method, &encoded)
    }

    /// Calls a method with arguments already encoded as
    /// `value::encode(&CallArgs::into_value())`.
    pub fn call_encoded(&self, method: &str, arguments: &[u8]) -> Result<Value, DriverError> {
        let result = self.call_raw(method, arguments)?;
        value::decode(&result).map_err(|err| {
            DriverError::runtime(format!("{method}() returned a malformed value: {err}"))
        })
    }

    /// Calls a method with encoded arguments and returns its result still
    /// encoded (`value::encode` of the result), so a reply in the same
    /// encoding can be sent without decoding it.
    pub fn call_raw(&self, method: &str, arguments: &[u8]) -> Result<RVec<u8>, DriverError> {
        match self
            .handle
            .call(RStr::from_str(method), RSlice::from_slice(arguments))
        {
            RResult::ROk(bytes) => Ok(bytes),
            RResult::RErr(bytes) => Err(decode_error(&bytes)),
        }
    }

    /// Reads a property (Pyro5's `__getattr__`).
    pub fn get_property(&self, name: &str) -> Result<Value, DriverError> {
        self.call("__getattr__", CallArgs::positional(vec![Value::from(name)]))
    }

    /// Assigns a property (Pyro5's `__setattr__`).
    pub fn set_property(&self, name: &str, value: Value) -> Result<(), DriverError> {
        self.call(
            "__setattr__",
            CallArgs::positional(vec![Value::from(name), value]),
        )
        .map(drop)
    }
}
