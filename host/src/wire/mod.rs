//! Pyro5's wire protocol (version 502): message framing and the payload
//! serializers.
//!
//! # Layout
//!
//! - `message.rs`: the 40-byte header, annotations, compression.
//! - `call.rs`: a call request ([`call::Call`]), its one encoder and decoder.
//! - `serializer.rs`: the [`Serializer`](serializer::Serializer) trait,
//!   serializer ids and the Python ↔ `Value` mapping they share.
//! - `serpent.rs`: serpent (id 1), Python literal text, Pyro5's default.
//! - `marshal.rs`: marshal (id 2), Python's own binary format.
//! - `json.rs`: json (id 3).
//! - `msgpack.rs`: msgpack (id 4).
//! - `uri.rs`: `PYRO:` URIs.
//! - `scatter.rs`: a payload in pieces, its large byte strings borrowed
//!   from the driver's result rather than copied.
//! - `native.rs`: pyrolab-host's own (id 16), for Rust clients.

pub mod call;
pub mod json;
pub mod marshal;
pub mod message;
pub mod msgpack;
pub mod native;
pub mod scatter;
pub mod serializer;
pub mod serpent;
pub mod uri;
