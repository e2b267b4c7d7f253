//! [`SerializedBlob`]: an argument a client sent still serialized, as
//! Pyro5's `SerializedBlob` sends it.

use serde::Deserialize;

use crate::{Bytes, Value};

/// What a client passes as `Pyro5.api.SerializedBlob(info, data)`, the one
/// argument of its call: a method of a gateway or dispatcher can pass the
/// call on unchanged (`payload`), or read it (`deserialized`).
///
/// ```ignore
/// pub fn forward(&self, blob: SerializedBlob) -> Result<Value> {
///     tracing::info!(info = %blob.info, bytes = blob.payload.len(), "passing on");
///     Ok(blob.deserialized().clone())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SerializedBlob {
    /// The client's `info`: a small name or id of the blob.
    pub info: Value,
    /// The serializer the payload is in (`serpent`, `json`, `msgpack`,
    /// `marshal`).
    pub serializer: String,
    /// The request's payload exactly as the client sent it: its call
    /// serialized, with `data` as the arguments.
    pub payload: Bytes,
    data: Value,
}

impl SerializedBlob {
    /// The data the client wrapped (`blob.deserialized()` in Python),
    /// which the host read from the payload for you.
    pub fn deserialized(&self) -> &Value {
        &self.data
    }
}
