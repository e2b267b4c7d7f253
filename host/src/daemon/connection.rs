//! One client connection: the handshake, then messages until the client
//! goes away. A malformed message closes this connection only, with the
//! reason logged; the daemon serves everyone else as before.

use std::io::{BufReader, IoSlice, Write};

use pyrolab_plugin_api::Value;

use super::dispatch::{self, Outcome};
use super::pyro::{DAEMON_OBJECT, daemon_metadata, metadata};
use super::{Sessions, Shared};
use crate::net::Stream;
use crate::wire::message::{Message, ReadError, annotation, flags, kind};
use crate::wire::serializer::{self, Serializer};

/// Serves one connection until it closes.
pub(super) fn run(shared: &Shared, stream: Stream, connection: u64) {
    let peer = stream.peer();
    // Replies go out in one write, and without Nagle's delay: Python clients
    // do not set TCP_NODELAY, so a split reply would cost them 40 ms.
    let _ = stream.set_nodelay();
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    let mut sessions = Sessions::new(connection);
    match serve(shared, &mut reader, &mut writer, &mut sessions) {
        Ok(()) => tracing::debug!(%peer, "connection closed"),
        Err(reason) => tracing::warn!(%peer, "closing connection: {reason}"),
    }
}

fn serve(
    shared: &Shared,
    reader: &mut BufReader<Stream>,
    writer: &mut Stream,
    sessions: &mut Sessions,
) -> Result<(), String> {
    let max_size = shared.settings.max_message_size;
    let hello = match Message::read_from(reader, max_size) {
        Ok(message) => message,
        Err(ReadError::Closed) => return Ok(()),
        Err(err) => return Err(err.to_string()),
    };
    if hello.kind != kind::CONNECT {
        return Err(format!(
            "expected a CONNECT handshake first, got message type {}",
            hello.kind
        ));
    }
    if !handshake(shared, &hello, writer)? {
        return Ok(());
    }
    loop {
        let message = match Message::read_from(reader, max_size) {
            Ok(message) => message,
            Err(ReadError::Closed) => return Ok(()),
            Err(err) => return Err(err.to_string()),
        };
        match message.kind {
            kind::PING => {
                let pong = Message::new(
                    kind::PING,
                    message.serializer_id,
                    0,
                    message.seq,
                    b"pong".to_vec(),
                );
                send(writer, &pong.encode(false))?;
            }
            kind::INVOKE => {
                let serializer = serializer_for(&message)?;
                match dispatch::invoke(shared, sessions, serializer, &message) {
                    Outcome::Reply(frame) => send(writer, &frame)?,
                    Outcome::Parts(header, payload) => send_parts(writer, &header, &payload)?,
                    Outcome::NoReply => {}
                }
            }
            other => return Err(format!("unexpected message type {other} from a client")),
        }
    }
}

fn serializer_for(message: &Message) -> Result<&'static dyn Serializer, String> {
    serializer::by_id(message.serializer_id)
        .ok_or_else(|| format!("unknown serializer id {}", message.serializer_id))
}

/// Sends one framed message in a single write.
fn send(writer: &mut Stream, frame: &[u8]) -> Result<(), String> {
    writer
        .write_all(frame)
        .map_err(|err| format!("cannot send a reply: {err}"))
}

/// Sends a header and a payload held apart, with vectored writes (no copy
/// into one buffer; usually one system call).
fn send_parts(writer: &mut Stream, header: &[u8], payload: &[u8]) -> Result<(), String> {
    let mut parts = [IoSlice::new(header), IoSlice::new(payload)];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match writer.write_vectored(parts) {
            Ok(0) => return Err("cannot send a reply: the connection is closed".to_owned()),
            Ok(written) => IoSlice::advance_slices(&mut parts, written),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("cannot send a reply: {err}")),
        }
    }
    Ok(())
}

/// Answers the CONNECT: the handshake reply with the object's metadata, or a
/// CONNECTFAIL with the reason. Returns whether the connection goes on.
fn handshake(shared: &Shared, hello: &Message, writer: &mut Stream) -> Result<bool, String> {
    let serializer = serializer_for(hello)?;
    let reply = serializer
        .deserialize(&hello.payload)
        .map_err(|err| err.to_string())
        .and_then(|request| {
            let object = request
                .get("object")
                .and_then(Value::as_str)
                .ok_or("the handshake names no object")?;
            let meta = if object == DAEMON_OBJECT {
                daemon_metadata(shared.settings.lockable)
            } else if let Some(native) = shared.objects.get(object) {
                native.metadata()
            } else {
                let service = shared.services.get(object).ok_or("unknown object")?;
                metadata(service.descriptor(), shared.added_methods())
            };
            Ok(Value::Map(vec![
                (Value::from("handshake"), Value::from("hello")),
                (Value::from("meta"), meta),
            ]))
        });
    let (message_kind, payload) = match reply {
        Ok(reply) => (kind::CONNECTOK, reply),
        Err(reason) => {
            tracing::info!("handshake refused: {reason}");
            (kind::CONNECTFAIL, Value::from(reason))
        }
    };
    let payload = serializer
        .serialize(&payload)
        .map_err(|err| err.to_string())?;
    let mut message = Message::new(message_kind, hello.serializer_id, 0, hello.seq, payload);
    if message_kind == kind::CONNECTOK {
        // Tells a pyrolab-host client it may switch to the native
        // serializer now, at no extra round trip.
        message
            .annotations
            .push((annotation::SERIALIZERS, serializer::SPOKEN.to_vec()));
    }
    message.correlation_id = hello.correlation_id;
    if hello.flags & flags::CORR_ID == 0 {
        message.correlation_id = [0; 16];
    }
    send(writer, &message.encode(false))?;
    Ok(message_kind == kind::CONNECTOK)
}
