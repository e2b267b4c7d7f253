use std::fmt;
use std::sync::Arc;

use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use pyrolab_plugin_api::abi::InstanceBox;
use pyrolab_plugin_api::abi::context as abi_context;
use pyrolab_plugin_api::abi::lending::{self, Lent};
use pyrolab_plugin_api::abi::streaming;
use pyrolab_plugin_api::descriptor::ClassDescriptor;
use pyrolab_plugin_api::{CallArgs, DriverError, ErrorKind, Value, value};

use super::library::decode_error;

/// A live driver instance. Calls may be made from any thread; the driver
/// decides, by its methods' receivers, which run concurrently.
pub struct Instance {
    handle: InstanceBox,
    class: Arc<ClassDescriptor>,
    kinds: ValueKinds,
}

/// What a driver's copy of plugin-api can do, by the version it records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ValueKinds {
    /// Tags 0 to 7 only (pyrolab-plugin-api 0.1.0): tuples, sets and
    /// frozensets are sent as lists, and big integers and complex numbers
    /// are refused before the call, since the driver could not read them.
    First,
    /// Every kind this host knows (0.1.1).
    All,
    /// Every kind, and lending calls ([`lending`], 0.1.2).
    AllAndLending,
    /// Every kind, lending calls, and item streams ([`streaming`], 0.1.3
    /// and later).
    AllLendingAndStreams,
}

impl ValueKinds {
    /// The kinds a driver built against `plugin_api_version` reads.
    pub(super) fn of(plugin_api_version: &str) -> ValueKinds {
        match plugin_api_version {
            "0.1.0" => ValueKinds::First,
            "0.1.1" => ValueKinds::All,
            "0.1.2" => ValueKinds::AllAndLending,
            _ => ValueKinds::AllLendingAndStreams,
        }
    }
}

/// Runs `f` with the name that asks for a `prefix` call of `method`
/// (lending, streaming), built on the stack (this is every native call's
/// path).
fn with_prefixed_name<R>(prefix: &str, method: &str, f: impl FnOnce(&str) -> R) -> R {
    let prefix = prefix.as_bytes();
    let total = prefix.len() + method.len();
    let mut name = [0u8; 128];
    if total > name.len() {
        return f(&format!("{}{method}", String::from_utf8_lossy(prefix)));
    }
    name[..prefix.len()].copy_from_slice(prefix);
    name[prefix.len()..total].copy_from_slice(method.as_bytes());
    f(std::str::from_utf8(&name[..total]).expect("two strings joined"))
}

/// A driver's encoded result, decoded.
fn decode_result(method: &str, result: &[u8]) -> Result<Value, DriverError> {
    value::decode(result).map_err(|err| {
        DriverError::runtime(format!("{method}() returned a malformed value: {err}"))
    })
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("class", &self.class.name)
            .finish_non_exhaustive()
    }
}

impl Instance {
    pub(super) fn new(handle: InstanceBox, class: Arc<ClassDescriptor>, kinds: ValueKinds) -> Self {
        Instance {
            handle,
            class,
            kinds,
        }
    }

    /// The instance's class description.
    pub fn class(&self) -> &ClassDescriptor {
        &self.class
    }

    /// Calls a method whose result may be an item stream, with arguments
    /// encoded as `value::encode(&CallArgs::into_value())`: its result as
    /// [`call_raw_lending`](Self::call_raw_lending) gives it, or the
    /// stream, whose items are then read one by one.
    pub fn call_streaming(
        self: &Arc<Self>,
        method: &str,
        arguments: &[u8],
    ) -> Result<Answer, DriverError> {
        if self.kinds != ValueKinds::AllLendingAndStreams {
            return self.call_raw_lending(method, arguments).map(Answer::Result);
        }
        let head = with_prefixed_name(streaming::PREFIX, method, |name| {
            self.call_entry(name, arguments)
        })?;
        self.streaming_answer(method, head)
    }

    /// A streaming call's result: the stream it opened, or its value.
    fn streaming_answer(
        self: &Arc<Self>,
        method: &str,
        head: RVec<u8>,
    ) -> Result<Answer, DriverError> {
        if let Some(id) = streaming::opened_id(&head) {
            return Ok(Answer::Stream(ItemStream {
                instance: Arc::clone(self),
                id,
                method: method.to_owned(),
                ended: false,
            }));
        }
        self.take_lent(method, head).map(Answer::Result)
    }

    /// Like [`call_streaming`](Self::call_streaming), with arguments as
    /// values.
    pub fn call_args_streaming(
        self: &Arc<Self>,
        method: &str,
        args: CallArgs,
    ) -> Result<Answer, DriverError> {
        let mut arguments = args.into_value();
        if self.kinds == ValueKinds::First {
            arguments = lowered(arguments, method)?;
        }
        self.call_streaming(method, &value::encode(&arguments))
    }

    /// Like [`call_args_streaming`](Self::call_args_streaming), for a
    /// method that takes a `CallContext` (its descriptor's `context`):
    /// `context` goes with the arguments ([`abi::context`]), and the reply
    /// annotations the method set come back with its answer (their
    /// encoding, a map of ids to bytes; empty if it set none).
    ///
    /// [`abi::context`]: pyrolab_plugin_api::abi::context
    pub fn call_args_with_context(
        self: &Arc<Self>,
        method: &str,
        args: CallArgs,
        context: Value,
    ) -> Result<(Answer, Vec<u8>), DriverError> {
        let mut arguments = args.into_value();
        if let Value::Map(entries) = &mut arguments {
            entries.push((Value::from(abi_context::KEY), context));
        }
        let arguments = value::encode(&arguments);
        let head = with_prefixed_name(streaming::PREFIX, method, |name| {
            self.call_entry(name, &arguments)
        })?;
        let (annotations, head) = match abi_context::split(&head) {
            Some((annotations, rest)) => (annotations.to_vec(), RVec::from(rest)),
            None => (Vec::new(), head),
        };
        Ok((self.streaming_answer(method, head)?, annotations))
    }

    /// Calls a method. Errors are the driver's own (a panic inside the
    /// driver arrives as a `RuntimeError`).
    pub fn call(&self, method: &str, args: CallArgs) -> Result<Value, DriverError> {
        let result = self.call_with_encoded_result(method, args)?;
        decode_result(method, &result)
    }

    /// Calls a method and returns its result still encoded (`value::encode`
    /// of it), for a reply that borrows from it rather than decoding it.
    pub fn call_with_encoded_result(
        &self,
        method: &str,
        args: CallArgs,
    ) -> Result<RVec<u8>, DriverError> {
        let mut arguments = args.into_value();
        if self.kinds == ValueKinds::First {
            arguments = lowered(arguments, method)?;
        }
        self.call_lowered(method, &value::encode(&arguments))
            .map(Lent::into_whole)
    }

    /// Calls a method with arguments already encoded as
    /// `value::encode(&CallArgs::into_value())`.
    pub fn call_encoded(&self, method: &str, arguments: &[u8]) -> Result<Value, DriverError> {
        let result = self.call_raw(method, arguments)?;
        decode_result(method, &result)
    }

    /// Calls a method with encoded arguments and returns its result still
    /// encoded (`value::encode` of the result), so a reply in the same
    /// encoding can be sent without decoding it.
    pub fn call_raw(&self, method: &str, arguments: &[u8]) -> Result<RVec<u8>, DriverError> {
        self.call_raw_lending(method, arguments)
            .map(Lent::into_whole)
    }

    /// Like [`call_raw`](Self::call_raw), with the result as the driver
    /// gave it: a large byte string it ends with may be in a buffer of its
    /// own ([`Lent`]), to be sent from there.
    pub fn call_raw_lending(&self, method: &str, arguments: &[u8]) -> Result<Lent, DriverError> {
        if self.kinds == ValueKinds::First {
            let decoded = value::decode(arguments)
                .map_err(|err| DriverError::new(ErrorKind::TypeError, err.to_string()))?;
            let arguments = value::encode(&lowered(decoded, method)?);
            return self.call_lowered(method, &arguments);
        }
        self.call_lowered(method, arguments)
    }

    fn call_lowered(&self, method: &str, arguments: &[u8]) -> Result<Lent, DriverError> {
        if matches!(self.kinds, ValueKinds::First | ValueKinds::All) {
            return self.call_entry(method, arguments).map(|head| Lent {
                head,
                tail: RVec::new(),
            });
        }
        let name = if self.kinds == ValueKinds::AllLendingAndStreams {
            streaming::PREFIX
        } else {
            lending::PREFIX
        };
        let head = with_prefixed_name(name, method, |name| self.call_entry(name, arguments))?;
        if let Some(id) = streaming::opened_id(&head) {
            // A caller that cannot read a stream: it is closed at once.
            drop(self.call_entry(streaming::CLOSE, &id.to_le_bytes()));
            return Err(DriverError::runtime(format!(
                "{method}() returns an item stream, which is read through a daemon \
                 (a Pyro5 or pyrolab-host client iterates over it)"
            )));
        }
        self.take_lent(method, head)
    }

    /// A lending call's result: `head`, and the byte string it lent, if it
    /// announced one.
    fn take_lent(&self, method: &str, head: RVec<u8>) -> Result<Lent, DriverError> {
        let Some(lent) = value::lent_bytes_length(&head).filter(|&len| len > 0) else {
            return Ok(Lent {
                head,
                tail: RVec::new(),
            });
        };
        let tail = self.call_entry(lending::TAKE, &[])?;
        if tail.len() != lent {
            return Err(DriverError::runtime(format!(
                "{method}() lent {} bytes where it announced {lent}",
                tail.len()
            )));
        }
        Ok(Lent { head, tail })
    }

    fn call_entry(&self, method: &str, arguments: &[u8]) -> Result<RVec<u8>, DriverError> {
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

/// What a call gave: its result, or an item stream to read.
pub enum Answer {
    /// The encoded result, as [`Instance::call_raw_lending`] gives it.
    Result(Lent),
    /// An item stream.
    Stream(ItemStream),
}

/// An item stream a method returned, read one item at a time. Dropping it
/// before its end closes it in the driver.
pub struct ItemStream {
    instance: Arc<Instance>,
    id: u64,
    method: String,
    ended: bool,
}

impl fmt::Debug for ItemStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemStream")
            .field("method", &self.method)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ItemStream {
    /// The next item, encoded (a large byte string in its own buffer);
    /// `None` at the stream's end. An error is the driver's and ends the
    /// stream.
    pub fn next_item(&mut self) -> Option<Result<Lent, DriverError>> {
        if self.ended {
            return None;
        }
        let head = match self
            .instance
            .call_entry(streaming::NEXT, &self.id.to_le_bytes())
        {
            Ok(head) => head,
            Err(err) => {
                self.ended = true;
                return Some(Err(err));
            }
        };
        if head.is_empty() {
            self.ended = true;
            return None;
        }
        let item = self.instance.take_lent(&self.method, head);
        if item.is_err() {
            // The item was produced but cannot be read: the stream cannot
            // go on from here.
            self.close();
        }
        Some(item)
    }

    /// The method that returned the stream.
    pub fn method(&self) -> &str {
        &self.method
    }

    fn close(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            let _ = self
                .instance
                .call_entry(streaming::CLOSE, &self.id.to_le_bytes());
        }
    }
}

impl Drop for ItemStream {
    fn drop(&mut self) {
        self.close();
    }
}

/// `value` in the kinds a plugin-api 0.1.0 driver reads: sequences as
/// lists; a big integer or complex number, which it cannot receive, is a
/// `TypeError` for the caller.
pub(super) fn lowered(value: Value, method: &str) -> Result<Value, DriverError> {
    let lower_all = |items: Vec<Value>| {
        items
            .into_iter()
            .map(|item| lowered(item, method))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match value {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            Value::List(lower_all(items)?)
        }
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((lowered(k, method)?, lowered(v, method)?)))
                .collect::<Result<_, DriverError>>()?,
        ),
        Value::BigInt(_) | Value::Complex(_) => {
            return Err(DriverError::new(
                ErrorKind::TypeError,
                format!(
                    "{method}(): this driver was built against pyrolab-plugin-api 0.1.0, which cannot receive {} values like {value}; rebuild it against pyrolab-plugin-api 0.1.1 or later",
                    if matches!(value, Value::Complex(_)) {
                        "complex"
                    } else {
                        "integers beyond 64 bits:"
                    },
                ),
            ));
        }
        plain => plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixed_name_is_the_prefix_and_the_method_however_long() {
        for prefix in [lending::PREFIX, streaming::PREFIX] {
            for method in ["echo", "", &"m".repeat(200)] {
                let name = with_prefixed_name(prefix, method, str::to_owned);
                assert_eq!(name, format!("{prefix}{method}"));
            }
        }
    }
}
