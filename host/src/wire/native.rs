//! pyrolab-host's own serializer (id 16) for Rust clients: the plugin ABI's
//! `Value` encoding (postcard's layout, frozen tags), so a value crosses from client
//! to driver without being re-parsed into another format.

use pyrolab_plugin_api::{Value, value};

use super::serializer::{SerializeError, Serializer, id};

/// The native serializer.
pub struct Native;

impl Serializer for Native {
    fn id(&self) -> u8 {
        id::NATIVE
    }

    fn name(&self) -> &'static str {
        "native"
    }

    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        value::encode_into(value, out);
        Ok(())
    }

    fn lone_bytes_header(&self, first: &[u8], total: usize) -> Option<usize> {
        value::lone_bytes_header(first, total)
    }

    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError> {
        value::decode(data).map_err(|err| SerializeError::new(err.to_string()))
    }
}
