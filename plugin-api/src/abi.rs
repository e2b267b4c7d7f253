//! The frozen binary interface between a host and a driver library.
//!
//! Driver authors never use this module: the [`service`](crate::service)
//! macro and [`export_plugin!`](crate::export_plugin) build it for them. Hosts
//! use it to load libraries.
//!
//! # The surface
//!
//! A library exports one root module, [`PluginRoot`], an `abi_stable` prefix
//! type with three entries:
//!
//! - [`describe`](PluginRoot::describe): the library's
//!   [`LibraryDescriptor`](crate::descriptor::LibraryDescriptor), encoded;
//! - [`install_logger`](PluginRoot::install_logger): hands the library a
//!   [`LogSink`] through which its `tracing` events reach the host;
//! - [`create`](PluginRoot::create): constructs an instance of a class from
//!   encoded parameters.
//!
//! An instance ([`InstanceBox`]) has a single entry,
//! [`call`](Instance::call): method name and encoded arguments in, encoded
//! result or error out. Everything that crosses is bytes of one
//! self-describing encoding: [`value::encode`](crate::value::encode) of a
//! [`Value`](crate::Value).
//!
//! # Evolution policy
//!
//! - The library's `pyrolab-plugin-api` version is recorded in it. A host
//!   loads libraries whose version is semver-compatible with its own (same
//!   major version; for `0.y.z`, same `y`) and refuses others with one line
//!   naming both versions.
//! - Within a compatible series the entries of [`PluginRoot`] and
//!   [`Instance`] stay as they are. They are prefix types, but
//!   `abi_stable`'s layout check refuses a library whose prefix types have
//!   fewer fields than the host's (it lets only a *newer* library into an
//!   older host), so an entry added in 0.1.x would lock every older 0.1
//!   driver out. New abilities go through the entries there are, and a
//!   host uses one only with a library whose recorded version has it
//!   ([`lending`], 0.1.2; [`streaming`], 0.1.3; [`context`], 0.1.4).
//! - The encodings that cross are self-describing maps: new keys may be
//!   added, and readers ignore keys they do not know. The tag numbers of
//!   [`Value`](crate::Value) kinds are frozen; new kinds are appended.
//! - Anything else is a breaking change and bumps the version.

// `#[sabi_trait]` generates trait impls inside a const block.
#![allow(non_local_definitions)]

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RVec},
};

/// The root module every driver library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    /// Returns the library's descriptor: `value::encode` of a
    /// [`LibraryDescriptor`](crate::descriptor::LibraryDescriptor) turned
    /// into a [`Value`](crate::Value).
    pub describe: extern "C" fn() -> RVec<u8>,

    /// Routes the library's `tracing` events at `max_level` or more severe
    /// (1 = error ... 5 = trace, 0 = off) to `sink`. Calling it again replaces
    /// the sink and level.
    pub install_logger: extern "C" fn(sink: LogSink, max_level: u8),

    /// Creates an instance of `classname` from `parameters` (an encoded
    /// [`Value`](crate::Value), usually a map). On failure, returns an encoded
    /// [`DriverError`](crate::DriverError).
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(
        classname: RStr<'_>,
        parameters: RSlice<'_, u8>,
    ) -> RResult<InstanceBox, RVec<u8>>,
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "pyrolab_plugin";
    const NAME: &'static str = "pyrolab plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Receives a library's log events.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct LogSink {
    /// Called for each event with its level (1 = error ... 5 = trace), its
    /// target (a Rust module path inside the library) and its formatted
    /// message and fields.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
}

/// A live driver instance, as seen across the boundary.
#[sabi_trait]
pub trait Instance: Send + Sync {
    /// Calls `method` with `arguments` (an encoded
    /// [`Value`](crate::Value) map `{"args": [...], "kwargs": {...}}`).
    /// Returns the encoded result value, or an encoded
    /// [`DriverError`](crate::DriverError).
    ///
    /// The property protocol is Pyro5's: `__getattr__(name)` reads a property
    /// and `__setattr__(name, value)` assigns one.
    #[sabi(last_prefix_field)]
    fn call(&self, method: RStr<'_>, arguments: RSlice<'_, u8>) -> RResult<RVec<u8>, RVec<u8>>;
}

/// An owned instance handle; dropping it drops the driver.
pub type InstanceBox = Instance_TO<'static, RBox<()>>;

/// Lending: how a result that is one large byte string reaches the host in
/// the buffer the driver returned it in, instead of copied into an
/// encoding. Since 0.1.2; a host asks only libraries built against 0.1.2
/// or later.
///
/// It goes through [`Instance::call`], not a new entry: `abi_stable`'s
/// layout check refuses a library whose vtable has fewer entries than the
/// host's, so a new entry would lock every older driver out.
///
/// 1. The host calls [`PREFIX`] + the method's name. The result is the
///    method's encoded result, as for the plain name, unless the method
///    returned a byte string of [`FROM`] bytes or more: then it is only
///    that byte string's tag and length, and the library keeps the bytes
///    for the thread that called.
/// 2. On such a header the host, on the same thread, calls [`TAKE`]: the
///    result is the bytes themselves, in the driver's buffer.
pub mod lending {
    use abi_stable::std_types::RVec;

    /// Marks a method name as a lending call: no method name has it.
    pub const PREFIX: &str = "\0lend\0";

    /// The call that hands over the bytes a lending call kept.
    pub const TAKE: &str = "\0take-lent\0";

    /// A result byte string this long or longer is lent rather than copied
    /// (a shorter one costs less to copy than a second call).
    pub const FROM: usize = 64 * 1024;

    /// A result as a lending call gives it: its encoding up to a lent byte
    /// string's contents, then those contents (or nothing).
    #[derive(Debug, Default)]
    pub struct Lent {
        /// The encoding, or a lent byte string's tag and length.
        pub head: RVec<u8>,
        /// The lent byte string's contents, in the driver's buffer (freed
        /// through its allocator when dropped), or nothing.
        pub tail: RVec<u8>,
    }

    impl Lent {
        /// The whole encoding in one buffer (copies a lent tail).
        pub fn into_whole(self) -> RVec<u8> {
            if self.tail.is_empty() {
                return self.head;
            }
            let mut whole = self.head;
            whole.extend_from_slice(&self.tail);
            whole
        }

        /// The encoding's length in bytes.
        pub fn len(&self) -> usize {
            self.head.len() + self.tail.len()
        }

        /// Whether the encoding is empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
}

/// Streaming: how a method's [`Stream`](crate::Stream) result reaches the
/// host, item by item. Since 0.1.3; a host makes these calls only to
/// libraries built against 0.1.3 or later, through [`Instance::call`] as
/// lending does (a new entry would lock older drivers out).
///
/// 1. The host calls [`PREFIX`] + the method's name. The result is what a
///    [`lending`] call of the method gives, unless the method returned a
///    stream: then it is [`OPENED`] and the stream's id, a `u64` in eight
///    little-endian bytes. No encoding starts with `OPENED` (it is no
///    value kind's tag). The library keeps the stream in the instance.
/// 2. [`NEXT`] with the id as its arguments produces the next item: its
///    encoding as a lending call gives it (a large byte string lent, then
///    taken with [`lending::TAKE`]), or an empty result once the stream
///    has ended. An error is the item's (the driver's iterator failed)
///    and ends the stream. Either end forgets the stream.
/// 3. [`CLOSE`] with the id forgets a stream before its end (the client
///    closed it or went away); its iterator is dropped then.
///
/// A plain or lending call of a method that returns a stream (an older
/// host's) is a `RuntimeError` saying so: such a host cannot serve it.
pub mod streaming {
    /// Marks a method name as a streaming call: no method name has it.
    pub const PREFIX: &str = "\0stream\0";

    /// The call that produces a stream's next item.
    pub const NEXT: &str = "\0stream-next\0";

    /// The call that forgets a stream.
    pub const CLOSE: &str = "\0stream-close\0";

    /// The first byte of a streaming call's result that opened a stream.
    pub const OPENED: u8 = 0xff;

    /// The result of a streaming call that opened stream `id`.
    pub fn opened(id: u64) -> [u8; 9] {
        let mut out = [OPENED; 9];
        out[1..].copy_from_slice(&id.to_le_bytes());
        out
    }

    /// The stream a streaming call's result opened, if it opened one.
    pub fn opened_id(result: &[u8]) -> Option<u64> {
        match result {
            [OPENED, id @ ..] => Some(u64::from_le_bytes(id.try_into().ok()?)),
            _ => None,
        }
    }
}

/// Call context: what a method that takes a
/// [`CallContext`](crate::CallContext) learns of its call, and the reply
/// annotations it sets. Since 0.1.4; a host sends it only to methods whose
/// descriptor says they take it ([`MethodDescriptor::context`]), so other
/// calls cost nothing more, and a library built before 0.1.4 never sees it.
///
/// [`MethodDescriptor::context`]: crate::descriptor::MethodDescriptor::context
///
/// 1. The host adds the entry [`KEY`] to the arguments map (which libraries
///    before 0.1.4 ignore, as any unknown key): a map with `client` (the
///    caller's `host:port`), `correlation_id` (the request's, as a UUID
///    string, or None) and `annotations` (the request's, a map of the 4-letter
///    ids to bytes).
/// 2. A result whose method set reply annotations starts with
///    [`ANNOTATED`], then the length of the annotations' encoding (a `u32`,
///    little-endian), that encoding (a map of ids to bytes), then the
///    result as it would have been. No encoding starts with `ANNOTATED`.
pub mod context {
    /// The arguments map's entry holding the call context.
    pub const KEY: &str = "context";

    /// The first byte of a result that carries reply annotations.
    pub const ANNOTATED: u8 = 0xfe;

    /// `result` with the encoded reply `annotations` before it.
    pub fn annotated(annotations: &[u8], result: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + annotations.len() + result.len());
        out.push(ANNOTATED);
        out.extend_from_slice(&(annotations.len() as u32).to_le_bytes());
        out.extend_from_slice(annotations);
        out.extend_from_slice(result);
        out
    }

    /// The encoded reply annotations and the result they came with, if
    /// `result` carries annotations (`None` if it does not, or is cut short).
    pub fn split(result: &[u8]) -> Option<(&[u8], &[u8])> {
        let [ANNOTATED, rest @ ..] = result else {
            return None;
        };
        let (length, rest) = rest.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
        (length <= rest.len()).then(|| rest.split_at(length))
    }
}

/// The `tracing` level numbering used by [`LogSink`] and `install_logger`.
pub mod level {
    /// Logging off.
    pub const OFF: u8 = 0;
    /// `ERROR`.
    pub const ERROR: u8 = 1;
    /// `WARN`.
    pub const WARN: u8 = 2;
    /// `INFO`.
    pub const INFO: u8 = 3;
    /// `DEBUG`.
    pub const DEBUG: u8 = 4;
    /// `TRACE`.
    pub const TRACE: u8 = 5;
}
