//! What a method learns of the call it serves, as Pyro5's
//! `current_context` tells a Python method: who called, the request's
//! correlation id and annotations; and the annotations it adds to the
//! reply.
//!
//! A method asks for it with a parameter of type `&CallContext` (at any
//! place; it is not one of the arguments a caller passes):
//!
//! ```ignore
//! pub fn whoami(&self, call: &CallContext) -> String {
//!     call.client_address().unwrap_or("unknown").to_owned()
//! }
//! ```
//!
//! The host sends the context only to methods that take one
//! ([`abi::context`](crate::abi::context)).

use std::cell::RefCell;
use std::sync::Mutex;

use crate::error::{DriverError, Result};
use crate::value::{self, Value};

/// A call's context; see the [module](self) documentation.
#[derive(Debug, Default)]
pub struct CallContext {
    client: Option<String>,
    correlation_id: Option<String>,
    annotations: Vec<(String, Vec<u8>)>,
    reply_annotations: Mutex<Vec<(String, Vec<u8>)>>,
    /// Whether the host sent it: only then does it read reply annotations
    /// (a host before 0.1.4 sends none, and would misread them).
    from_host: bool,
}

impl CallContext {
    /// The caller's address, `host:port` (`[v6]:port` for IPv6), as the
    /// daemon's socket sees it; `None` where there is no socket (a call
    /// made with `pyrolab-host plugins call`).
    pub fn client_address(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// The request's correlation id (a UUID, as Pyro5 clients send with
    /// `current_context.correlation_id`), if it had one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The request's annotations: 4-letter ids and their bytes, in the
    /// order they came (Pyro5's `current_context.annotations`).
    pub fn annotations(&self) -> &[(String, Vec<u8>)] {
        &self.annotations
    }

    /// The request's annotation `id`, if it has one.
    pub fn annotation(&self, id: &str) -> Option<&[u8]> {
        self.annotations
            .iter()
            .find(|(key, _)| key == id)
            .map(|(_, data)| data.as_slice())
    }

    /// Adds annotation `id` to the reply (Pyro5's
    /// `current_context.response_annotations[id] = data`), replacing one
    /// set before. An id is 4 ASCII letters or digits, as on Pyro5's wire;
    /// another is a `ValueError`. The annotations go with a result, not
    /// with an error.
    pub fn set_reply_annotation(&self, id: &str, data: impl Into<Vec<u8>>) -> Result<()> {
        if id.len() != 4 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DriverError::value(format!(
                "an annotation id is 4 ASCII letters or digits, not {id:?}"
            )));
        }
        let data = data.into();
        let mut annotations = self
            .reply_annotations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match annotations.iter_mut().find(|(key, _)| key == id) {
            Some(entry) => entry.1 = data,
            None => annotations.push((id.to_owned(), data)),
        }
        Ok(())
    }

    /// Reads the context the host sent (the arguments' `context` entry).
    fn from_value(value: Value) -> CallContext {
        let mut context = CallContext {
            from_host: true,
            ..CallContext::default()
        };
        let Value::Map(entries) = value else {
            return context;
        };
        for (key, value) in entries {
            match (key.as_str(), value) {
                (Some("client"), Value::Str(client)) => context.client = Some(client),
                (Some("correlation_id"), Value::Str(id)) => context.correlation_id = Some(id),
                (Some("annotations"), Value::Map(annotations)) => {
                    context.annotations = annotations
                        .into_iter()
                        .filter_map(|(id, data)| match (id, data) {
                            (Value::Str(id), Value::Bytes(data)) => Some((id, data)),
                            _ => None,
                        })
                        .collect();
                }
                _ => {}
            }
        }
        context
    }

    /// The reply annotations, encoded as the host reads them (empty if
    /// none were set).
    fn encoded_reply_annotations(self) -> Vec<u8> {
        let annotations = self
            .reply_annotations
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        if annotations.is_empty() || !self.from_host {
            return Vec::new();
        }
        value::encode(&Value::Map(
            annotations
                .into_iter()
                .map(|(id, data)| (Value::Str(id), Value::Bytes(data)))
                .collect(),
        ))
    }
}

thread_local! {
    /// The context of the call running on this thread, as the host sent
    /// it, until a method that takes it does.
    static ARRIVED: RefCell<Option<Value>> = const { RefCell::new(None) };
    /// The reply annotations of the call running on this thread, encoded.
    static REPLY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the context a call's arguments brought (runtime side), for the
/// method to take. Any left from an earlier call is dropped.
pub(crate) fn arrive(context: Option<Value>) {
    ARRIVED.set(context);
    REPLY.take();
}

/// The context of the running call, for a method that takes one (the
/// code [`service`](crate::service) generates calls this). Empty when the
/// host sent none.
pub(crate) fn take() -> CallContext {
    ARRIVED
        .take()
        .map(CallContext::from_value)
        .unwrap_or_default()
}

/// Keeps the reply annotations a method set on its context, for the
/// runtime to send back with the result.
pub(crate) fn finish(context: CallContext) {
    REPLY.set(context.encoded_reply_annotations());
}

/// The running call's encoded reply annotations (empty if none), taken.
pub(crate) fn reply_annotations() -> Vec<u8> {
    ARRIVED.take();
    REPLY.take()
}
