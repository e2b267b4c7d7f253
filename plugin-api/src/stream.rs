//! Item streams: results a client takes one item at a time.
//!
//! A method that returns a [`Stream`] (or `impl Iterator<Item = T>`) does
//! not send its items at once: the client receives an iterator, and each
//! item it asks for is the next item of the driver's iterator, produced
//! then (Pyro5's item streaming, which a Python client sees as a generator
//! result). The stream lives in the daemon until the client has taken its
//! last item, closes it, or goes away.
//!
//! ```
//! use pyrolab_plugin_api::prelude::*;
//! use pyrolab_plugin_api::Stream;
//!
//! #[derive(Default)]
//! pub struct Counter;
//!
//! #[service]
//! impl Counter {
//!     /// 0, 1, ... up to `count`, produced as the client asks.
//!     pub fn count(&self, count: u64) -> impl Iterator<Item = u64> + Send + 'static {
//!         0..count
//!     }
//!
//!     /// Readings until one fails: the failure ends the stream and is the
//!     /// client's exception.
//!     pub fn readings(&self) -> Stream {
//!         Stream::fallible((0..3).map(|i| {
//!             if i < 2 { Ok(f64::from(i)) } else { Err(DriverError::runtime("probe lost")) }
//!         }))
//!     }
//! }
//! # fn main() {}
//! ```

use std::any::Any;
use std::fmt;

use crate::abi::lending;
use crate::error::DriverError;
use crate::value;
use crate::{Bytes, Value};

/// The next item's encoding: `head`, and a lent byte string in `tail`.
type Produce = dyn FnMut(&mut Vec<u8>, &mut Vec<u8>) -> Option<Result<(), DriverError>> + Send;

/// An item stream a method returns: any iterator of serializable items,
/// produced one at a time as the client asks for them.
///
/// Items are produced on the daemon's threads, outside the driver's lock:
/// an iterator that needs the instrument holds its own handle to it
/// (an `Arc`). A [`Bytes`] item of 64 KiB or more travels from its own
/// buffer, as a returned `Bytes` does.
pub struct Stream {
    produce: Box<Produce>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").finish_non_exhaustive()
    }
}

impl Stream {
    /// A stream of `items`.
    pub fn new<I>(items: I) -> Stream
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: serde::Serialize + 'static,
    {
        let mut items = items.into_iter();
        Stream {
            produce: Box::new(move |head, tail| {
                let item = items.next()?;
                Some(encode_item(item, head, tail))
            }),
        }
    }

    /// A stream of items that may fail: an `Err` item ends the stream, and
    /// the client's iteration raises it.
    pub fn fallible<I, T, E>(items: I) -> Stream
    where
        I: IntoIterator<Item = Result<T, E>>,
        I::IntoIter: Send + 'static,
        T: serde::Serialize + 'static,
        E: Into<DriverError>,
    {
        let mut items = items.into_iter();
        Stream {
            produce: Box::new(move |head, tail| match items.next()? {
                Ok(item) => Some(encode_item(item, head, tail)),
                Err(err) => Some(Err(err.into())),
            }),
        }
    }

    /// Produces the next item: its encoding appended to `head`, a large
    /// [`Bytes`] item's buffer lent in `tail` (its tag and length in
    /// `head`). `None` once the stream has ended.
    pub(crate) fn next_into(
        &mut self,
        head: &mut Vec<u8>,
        tail: &mut Vec<u8>,
    ) -> Option<Result<(), DriverError>> {
        (self.produce)(head, tail)
    }

    /// Takes every item, for a caller that cannot take them one by one;
    /// the first error is returned instead.
    pub fn collect_values(mut self) -> Result<Vec<Value>, DriverError> {
        let mut values = Vec::new();
        loop {
            let (mut head, mut tail) = (Vec::new(), Vec::new());
            match self.next_into(&mut head, &mut tail) {
                None => return Ok(values),
                Some(Err(err)) => return Err(err),
                Some(Ok(())) => {
                    head.extend_from_slice(&tail);
                    let item = value::decode(&head)
                        .map_err(|err| DriverError::runtime(format!("stream item: {err}")))?;
                    values.push(item);
                }
            }
        }
    }
}

/// Encodes one item; a large `Bytes` is lent rather than copied.
fn encode_item<T: serde::Serialize + 'static>(
    item: T,
    head: &mut Vec<u8>,
    tail: &mut Vec<u8>,
) -> Result<(), DriverError> {
    let mut item = Some(item);
    if let Some(bytes) = (&mut item as &mut dyn Any).downcast_mut::<Option<Bytes>>() {
        let bytes = bytes.take().expect("just made");
        if bytes.len() >= lending::FROM {
            value::encode_bytes_start_into(bytes.len(), head);
            *tail = bytes.into_vec();
            return Ok(());
        }
        value::encode_into(&Value::Bytes(bytes.into_vec()), head);
        return Ok(());
    }
    let item = item.expect("not taken");
    value::encode_serialize(&item, head)
        .map_err(|err| DriverError::runtime(format!("a stream item cannot be sent: {err}")))
}

impl<T> FromIterator<T> for Stream
where
    T: serde::Serialize + Send + 'static,
{
    /// A stream of items already produced.
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Stream {
        Stream::new(items.into_iter().collect::<Vec<T>>())
    }
}
