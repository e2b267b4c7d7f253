//! The payload serializers, chosen per message by the sender and echoed in
//! the reply.
//!
//! Every serializer maps its format onto [`Value`] the same way, as far as
//! the format (and Pyro5's use of it) can hold each kind:
//!
//! | Python | `Value` |
//! | --- | --- |
//! | `None` | `Null` |
//! | `bool` | `Bool` |
//! | `int` within `i64` / beyond (up to 4300 digits; never a wrong number) | `Int` / `BigInt` |
//! | `float` (including NaN and ±infinity) | `Float` |
//! | `complex` (serpent, msgpack, marshal) | `Complex` |
//! | `str` | `Str` |
//! | `bytes`, `bytearray` | `Bytes` |
//! | `list` | `List` |
//! | `tuple` (a `List` in json and msgpack) | `Tuple` |
//! | `set`, `frozenset` (serpent writes both as a set; json and msgpack as lists) | `Set`, `FrozenSet` |
//! | `dict` | `Map` |
//!
//! Pyro5's special objects (exceptions, URIs, proxies) travel as maps with a
//! `"__class__"` key; building and reading those is the protocol layer's job,
//! not the serializer's.

use pyrolab_plugin_api::Value;

/// Serializer ids, as Pyro5 numbers them.
pub mod id {
    /// serpent: Python literal text; the Python default.
    pub const SERPENT: u8 = 1;
    /// marshal: Python's own binary format.
    pub const MARSHAL: u8 = 2;
    /// json.
    pub const JSON: u8 = 3;
    /// msgpack.
    pub const MSGPACK: u8 = 4;
    /// pyrolab-host's own: `pyrolab_plugin_api::value::encode` (postcard's layout),
    /// for Rust clients. Outside Pyro5's range, and not 42, which Pyro5
    /// uses in PING messages.
    pub const NATIVE: u8 = 16;
}

/// A payload that could not be serialized or deserialized.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SerializeError(pub String);

impl SerializeError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        SerializeError(message.into())
    }
}

/// How many of a payload's first bytes [`Serializer::lone_bytes_header`]
/// needs.
pub const PEEK: usize = 16;

/// One payload format.
pub trait Serializer: Send + Sync {
    /// The id in the message header.
    fn id(&self) -> u8;

    /// The name Pyro5 gives it (`"serpent"`, `"json"`, ...).
    fn name(&self) -> &'static str;

    /// Encodes a value.
    fn serialize(&self, value: &Value) -> Result<Vec<u8>, SerializeError> {
        let mut out = Vec::new();
        self.serialize_into(value, &mut out)?;
        Ok(out)
    }

    /// Appends the encoding of `value` to `out`, which may already hold a
    /// message header: large payloads are then written once, not copied
    /// into a frame afterwards.
    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError>;

    /// Where the bytes begin when a payload of `total` bytes that starts
    /// with `first` (at least its first [`PEEK`] bytes, or all of it) is one
    /// byte string and nothing else: a reader can then take a large result
    /// into a buffer of its own rather than copy it out of the frame.
    /// `None` for anything else (the default: the format cannot say).
    fn lone_bytes_header(&self, _first: &[u8], _total: usize) -> Option<usize> {
        None
    }

    /// Decodes a value. Malformed, truncated or hostile input is an error,
    /// never a panic, a hang or unbounded memory: nesting deeper than
    /// [`MAX_DEPTH`] is refused.
    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError>;
}

/// How deeply lists and maps may nest in a received payload.
pub const MAX_DEPTH: usize = 128;

/// The serializer for a header's serializer id, if we speak it.
pub fn by_id(serializer_id: u8) -> Option<&'static dyn Serializer> {
    match serializer_id {
        id::SERPENT => Some(&super::serpent::Serpent),
        id::MARSHAL => Some(&super::marshal::Marshal),
        id::JSON => Some(&super::json::Json),
        id::MSGPACK => Some(&super::msgpack::Msgpack),
        id::NATIVE => Some(&super::native::Native),
        _ => None,
    }
}

/// The ids of every serializer this host reads and writes, as its daemons
/// announce them in the handshake.
pub const SPOKEN: &[u8] = &[id::SERPENT, id::MARSHAL, id::JSON, id::MSGPACK, id::NATIVE];

/// The serializer called `name` (`serpent`, `marshal`, `json`, `msgpack`,
/// `native`).
pub fn by_name(name: &str) -> Option<&'static dyn Serializer> {
    SPOKEN
        .iter()
        .filter_map(|&id| by_id(id))
        .find(|serializer| serializer.name() == name)
}

/// serpent's (and, by Pyro5's convention, json's) encoding of bytes:
/// `{"data": base64, "encoding": "base64"}`, read back into bytes. `None`
/// when `entries` is any other dict.
pub(super) fn bytes_from_dict(entries: &[(Value, Value)]) -> Option<Result<Value, SerializeError>> {
    use base64::Engine as _;
    let lookup = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    if entries.len() != 2 || lookup("encoding").and_then(Value::as_str) != Some("base64") {
        return None;
    }
    let data = lookup("data").and_then(Value::as_str)?;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(Value::Bytes)
            .map_err(|err| SerializeError::new(format!("invalid base64 bytes: {err}"))),
    )
}
