//! Running calls: on services and on `Pyro.Daemon`, single or batched,
//! waited for or oneway. A call runs on the worker that read it: there is
//! no hand-off per call. A multiplex daemon has one worker, so its calls
//! run one at a time, in arrival order.

use crate::sync::LockUnpoisoned;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use abi_stable::std_types::RVec;
use pyrolab_plugin_api::abi::lending::Lent;
use pyrolab_plugin_api::value::ValueRef;
use pyrolab_plugin_api::{CallArgs, DriverError, ErrorKind, Value, value};

use super::lock::LOCK_METHODS;
use super::pyro::{
    self, DAEMON_METHODS, DAEMON_OBJECT, batch_exception, daemon_metadata, driver_exception,
    exception, pyro_exception,
};
use super::streams::Opened;
use super::{Sessions, Shared};
use crate::config::schema::ServerType;
use crate::loader::{Answer, Instance, ItemStream};
use crate::wire::call::{self, Call};
use crate::wire::message::{Annotation, HEADER_SIZE, Message, flags, kind};
use crate::wire::msgpack;
use crate::wire::scatter::Scatter;
use crate::wire::serializer::{self, Serializer};

/// What to send back for an INVOKE.
pub(super) enum Outcome {
    /// This reply, framed.
    Reply(Vec<u8>),
    /// A reply whose payload is the driver's encoded result, sent right
    /// after the header as it is (a lent byte string from its own buffer).
    Parts([u8; HEADER_SIZE], Lent),
    /// A reply whose payload is pieces of its own and of the driver's
    /// encoded result (its large byte strings, not copied).
    Scattered([u8; HEADER_SIZE], Scatter, RVec<u8>),
    /// Nothing (a oneway call that has run).
    NoReply,
    /// Nothing now; this oneway call is to run once the connection is
    /// free again, so the client's next call is not held up by it.
    Deferred(Job),
}

impl Outcome {
    /// The size of the reply's annotations and payload, which Pyro5 holds
    /// to `max_message_size` as it does a request's (`None`: no reply).
    pub(super) fn reply_size(&self) -> Option<usize> {
        match self {
            Outcome::Reply(frame) => Some(frame.len().saturating_sub(HEADER_SIZE)),
            Outcome::Parts(_, payload) => Some(payload.len()),
            Outcome::Scattered(_, scatter, _) => Some(scatter.len()),
            Outcome::NoReply | Outcome::Deferred(_) => None,
        }
    }
}

/// Work to run once the connection is free again.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Handles one INVOKE message.
/// `read_at` is when the request was read: its call's time counts from
/// it.
pub(super) fn invoke(
    shared: &Shared,
    sessions: &mut Sessions,
    serializer: &'static dyn Serializer,
    request: &Message,
    read_at: Instant,
) -> Outcome {
    let oneway = request.flags & flags::ONEWAY != 0;
    let batch = request.flags & flags::BATCH != 0;
    let blob = request.flags & flags::KEEPSERIALIZED != 0;
    let bytes_in = wire_size(request);
    if !oneway && !batch && !blob {
        let encoded = match serializer.id() {
            serializer::id::NATIVE => EncodedCall::parse(shared, &request.payload),
            serializer::id::MSGPACK => EncodedCall::from_msgpack(shared, &request.payload),
            _ => None,
        };
        if let Some(call) = encoded {
            let object = call.object;
            let mut meter = shared.metrics.start(object, call.method, bytes_in, read_at);
            let answer = run_encoded(shared, sessions, call);
            meter.result(&answer);
            let outcome = reply_answer(shared, sessions, serializer, request, object, answer);
            meter.finish(reply_wire_size(&outcome));
            return outcome;
        }
    }
    let call = match blob {
        true => blob_call(serializer, request),
        false => serializer
            .deserialize(&request.payload)
            .map_err(|err| {
                pyro_exception("SerializeError", &format!("cannot read the call: {err}"))
            })
            .and_then(|value| {
                Call::decode(value).map_err(|err| pyro_exception("ProtocolError", &err))
            }),
    };
    if oneway {
        return match call.and_then(|call| oneway_job(shared, sessions, call, bytes_in)) {
            Ok(Some(job)) if shared.settings.servertype == ServerType::Thread => {
                Outcome::Deferred(job)
            }
            Ok(Some(job)) => {
                shared.oneway_threads.run(job);
                Outcome::NoReply
            }
            Ok(None) => Outcome::NoReply,
            Err(exception) => {
                tracing::warn!("oneway call failed: {}", describe(&exception));
                Outcome::NoReply
            }
        };
    }
    if batch {
        let first = call
            .as_ref()
            .ok()
            .and_then(|call| batch_first_method(shared, call));
        let result = call.and_then(|call| run_batch(shared, sessions, request, call));
        let outcome = reply(serializer, request, flags::BATCH, result);
        if let Some(first) = first {
            first.add_bytes(bytes_in, reply_wire_size(&outcome));
        }
        return outcome;
    }
    let call = match call {
        Ok(call) => call,
        Err(exception) => return reply(serializer, request, 0, Err(exception)),
    };
    if call.object == DAEMON_OBJECT && call.method == "get_next_stream_item" {
        // Items go out as the driver encoded them, not decoded first.
        let item = stream_id(&call).and_then(|id| shared.streams.next(id, sessions.connection()));
        return reply_lent(serializer, request, item);
    }
    let object = call.object.clone();
    let mut meter = shared
        .metrics
        .start(&call.object, &call.method, bytes_in, read_at);
    let context = takes_context(shared, &call).then(|| call_context(sessions, request));
    let ran = run_call_in_context(shared, sessions, call, context);
    meter.result(&ran);
    let outcome = match ran {
        Ok((Ran::Value(value), annotations)) => {
            reply_annotated(serializer, request, Ok(value), annotations)
        }
        Ok((Ran::Stream(stream), _)) => {
            reply_stream(shared, sessions, serializer, request, &object, stream)
        }
        Err(exception) => reply(serializer, request, 0, Err(exception)),
    };
    meter.finish(reply_wire_size(&outcome));
    outcome
}

/// The bytes a message takes on the wire: header, annotations, payload.
fn wire_size(message: &Message) -> usize {
    let annotations: usize = message
        .annotations
        .iter()
        .map(|(_, data)| 6 + data.len())
        .sum();
    HEADER_SIZE + annotations + message.payload.len()
}

/// The bytes a reply takes on the wire (0: no reply).
fn reply_wire_size(outcome: &Outcome) -> usize {
    outcome.reply_size().map_or(0, |size| HEADER_SIZE + size)
}

/// The metrics of a batch's first call, which count the batch's bytes
/// (each of its calls counts itself, its time and its failure).
fn batch_first_method<'a>(
    shared: &'a Shared,
    call: &Call<'_>,
) -> Option<&'a super::metrics::MethodMetrics> {
    let first = call.args.first()?.as_list()?.first()?.as_str()?;
    shared.metrics.method(&call.object, first)
}

/// The call a `SerializedBlob` request makes (`FLAGS_KEEPSERIALIZED`):
/// of the object and method its `BLBI` annotation names (marshalled
/// `(info, object, method)`, as Pyro5 sends it), with one argument, the
/// blob: `info`, the client's serializer, the payload exactly as the
/// client sent it (to pass on unchanged), and `data`, the arguments in it
/// (what Python's `blob.deserialized()` gives), which a Rust driver could
/// not read from the payload itself. A payload that is no call (a gateway
/// passing on a whole message, say) still reaches the method, as in
/// Pyro5, which never reads it: its `data` is then None.
fn blob_call(
    serializer: &'static dyn Serializer,
    request: &Message,
) -> Result<Call<'static>, Value> {
    let refuse =
        |why: &str| pyro_exception("ProtocolError", &format!("a SerializedBlob call {why}"));
    let (_, blbi) = request
        .annotations
        .iter()
        .find(|(id, _)| id == b"BLBI")
        .ok_or_else(|| refuse("without its BLBI annotation"))?;
    let marshal = serializer::by_id(serializer::id::MARSHAL).expect("marshal is spoken");
    let (info, object, method) = match marshal.deserialize(blbi) {
        Ok(Value::Tuple(parts) | Value::List(parts)) if parts.len() == 3 => {
            let mut parts = parts.into_iter();
            let info = parts.next().expect("three");
            match (parts.next(), parts.next()) {
                (Some(Value::Str(object)), Some(Value::Str(method))) => (info, object, method),
                _ => return Err(refuse("whose BLBI annotation names no object and method")),
            }
        }
        _ => {
            return Err(refuse(
                "whose BLBI annotation is not marshalled (info, object, method)",
            ));
        }
    };
    let data = serializer
        .deserialize(&request.payload)
        .ok()
        .and_then(|value| Call::decode(value).ok())
        .map_or(Value::Null, |call| Value::List(call.args));
    let blob = Value::Map(vec![
        ("info".into(), info),
        ("serializer".into(), Value::from(serializer.name())),
        ("payload".into(), Value::Bytes(request.payload.clone())),
        ("data".into(), data),
    ]);
    Ok(Call {
        object: object.into(),
        method: method.into(),
        args: vec![blob],
        kwargs: Vec::new(),
    })
}

/// What a call gave: a value, or an item stream to keep for the client.
enum Ran {
    Value(Value),
    Stream(ItemStream),
}

/// Replies to a call that ran on the fast path.
fn reply_answer(
    shared: &Shared,
    sessions: &Sessions,
    serializer: &'static dyn Serializer,
    request: &Message,
    object: &str,
    answer: Result<Answer, Value>,
) -> Outcome {
    match answer {
        Ok(Answer::Result(lent)) => reply_lent(serializer, request, Ok(lent)),
        Ok(Answer::Stream(stream)) => {
            reply_stream(shared, sessions, serializer, request, object, stream)
        }
        Err(exception) => reply(serializer, request, 0, Err(exception)),
    }
}

/// Replies with a result still in the driver's encoding: sent as it is to
/// a native client, with its byte strings borrowed to a msgpack one,
/// decoded for the others.
fn reply_lent(
    serializer: &'static dyn Serializer,
    request: &Message,
    result: Result<Lent, Value>,
) -> Outcome {
    match (serializer.id(), result) {
        (_, Err(exception)) => reply(serializer, request, 0, Err(exception)),
        (serializer::id::NATIVE, Ok(result)) => Outcome::Parts(
            Message::header(
                kind::RESULT,
                request.serializer_id,
                0,
                request.seq,
                request.correlation_id,
                result.len(),
            ),
            result,
        ),
        (serializer::id::MSGPACK, Ok(result)) => reply_scattered(serializer, request, Ok(result)),
        (_, Ok(result)) => {
            let value = value::decode(&result.into_whole()).map_err(|err| {
                pyro_exception("SerializeError", &format!("a malformed result: {err}"))
            });
            reply(serializer, request, 0, value)
        }
    }
}

/// Keeps a stream a method returned and tells the client its id, as Pyro5
/// does: an exception reply (`ProtocolError`, for clients that do not
/// stream) flagged `ITEMSTREAMRESULT`, the id in its `STRM` annotation.
/// With streaming off the annotation is left out, which a client reports
/// as the server not allowing streaming.
fn reply_stream(
    shared: &Shared,
    sessions: &Sessions,
    serializer: &'static dyn Serializer,
    request: &Message,
    service: &str,
    stream: ItemStream,
) -> Outcome {
    let annotations = match shared.streams.open(service, stream, sessions.connection()) {
        Ok(Opened::Id(id)) => vec![(*b"STRM", id.into_bytes())],
        Ok(Opened::Disabled) => Vec::new(),
        Err(exception) => return reply(serializer, request, 0, Err(exception)),
    };
    let exception = pyro_exception("ProtocolError", "result of call is an iterator");
    let payload = match serializer.serialize(&exception) {
        Ok(payload) => payload,
        Err(err) => {
            tracing::error!("cannot serialize a stream reply: {err}");
            Vec::new()
        }
    };
    let message = Message {
        kind: kind::RESULT,
        serializer_id: request.serializer_id,
        flags: flags::EXCEPTION | flags::ITEMSTREAMRESULT,
        seq: request.seq,
        correlation_id: request.correlation_id,
        annotations,
        payload,
    };
    Outcome::Reply(message.encode(false))
}

/// The stream id a `get_next_stream_item` or `close_stream` call names.
fn stream_id<'a>(call: &'a Call<'_>) -> Result<&'a str, Value> {
    match call.args.first().and_then(Value::as_str) {
        Some(id) if call.args.len() == 1 => Ok(id),
        _ => Err(exception(
            "builtins.TypeError",
            &format!("{}() takes one argument, the stream id", call.method),
            Vec::new(),
        )),
    }
}

/// Like [`reply`], with the reply annotations a driver method set.
fn reply_annotated(
    serializer: &'static dyn Serializer,
    request: &Message,
    result: Result<Value, Value>,
    annotations: Vec<Annotation>,
) -> Outcome {
    if annotations.is_empty() {
        return reply(serializer, request, 0, result);
    }
    let (flags, body) = match result {
        Ok(value) => (0, value),
        Err(exception) => (flags::EXCEPTION, exception),
    };
    match serializer.serialize(&body) {
        Ok(payload) => Outcome::Reply(
            Message {
                kind: kind::RESULT,
                serializer_id: request.serializer_id,
                flags,
                seq: request.seq,
                correlation_id: request.correlation_id,
                annotations,
                payload,
            }
            .encode(false),
        ),
        // As `reply` says it: the client gets an exception.
        Err(_) => reply(serializer, request, flags, Ok(body)),
    }
}

/// Frames the reply to `request`: the result, or the exception.
fn reply(
    serializer: &'static dyn Serializer,
    request: &Message,
    mut reply_flags: u16,
    result: Result<Value, Value>,
) -> Outcome {
    let body = result.unwrap_or_else(|exception| {
        reply_flags |= flags::EXCEPTION;
        exception
    });
    let frame = |reply_flags: u16, value: &Value| {
        Message::frame(
            kind::RESULT,
            request.serializer_id,
            reply_flags,
            request.seq,
            request.correlation_id,
            |out| serializer.serialize_into(value, out),
        )
    };
    let bytes = frame(reply_flags, &body).or_else(|err| {
        // The result cannot be expressed in the client's serializer (a map
        // key json cannot hold, say): the client gets an exception saying so.
        let exception = pyro_exception("SerializeError", &format!("cannot send the result: {err}"));
        frame(reply_flags | flags::EXCEPTION, &exception)
    });
    match bytes {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(err) => {
            tracing::error!("cannot serialize even an error reply: {err}");
            Outcome::Reply(
                Message::new(
                    kind::RESULT,
                    request.serializer_id,
                    reply_flags | flags::EXCEPTION,
                    request.seq,
                    Vec::new(),
                )
                .encode(false),
            )
        }
    }
}

/// A call from a native-serializer client to a service method, whose
/// arguments go to the driver as they arrived and whose result comes back
/// as the driver encoded it. Both are already in the ABI's encoding: a
/// call in the arguments-map form ([`Call::encode_args_map_into`]) is
/// handed over without a copy, one in the older four-part form is copied
/// once (into the arguments map); the result is not copied at all. The
/// names are borrowed from the request.
struct EncodedCall<'a> {
    object: &'a str,
    method: &'a str,
    /// `CallArgs` encoded, as the driver reads them.
    arguments: Cow<'a, [u8]>,
}

impl<'a> EncodedCall<'a> {
    /// Reads an `[object, method, {args, kwargs}]` or `[object, method,
    /// args, kwargs]` payload without decoding the arguments. `None` for
    /// anything the general path handles: other shapes, `Pyro.Daemon`,
    /// lock methods, unknown objects.
    fn parse(shared: &Shared, payload: &'a [u8]) -> Option<EncodedCall<'a>> {
        let (object, method, arguments) = match value::split_list_exact::<3>(payload) {
            Some([object, method, arguments]) if value::kind_of(arguments) == Some("dict") => {
                (object, method, Cow::Borrowed(arguments))
            }
            Some(_) => return None,
            None => {
                let [object, method, args, kwargs] = value::split_list_exact(payload)?;
                (object, method, Cow::Owned(arguments_map(args, kwargs)?))
            }
        };
        let object = value::str_of(object)?;
        let method = value::str_of(method)?;
        goes_to_driver(shared, object, method).then_some(EncodedCall {
            object,
            method,
            arguments,
        })
    }

    /// Reads an msgpack `[object, method, args, kwargs]` payload, its byte
    /// strings borrowed, and writes the arguments as drivers read them:
    /// each byte string is copied once, into them. `None` for anything the
    /// general path handles (and explains, if it is wrong).
    fn from_msgpack(shared: &Shared, payload: &'a [u8]) -> Option<EncodedCall<'a>> {
        let ValueRef::List(parts) = msgpack::read_borrowed(payload).ok()? else {
            return None;
        };
        let [
            ValueRef::Str(object),
            ValueRef::Str(method),
            ValueRef::List(args),
            kwargs,
        ] = <[ValueRef<'a>; 4]>::try_from(parts).ok()?
        else {
            return None;
        };
        let kwargs = match kwargs {
            ValueRef::Map(entries)
                if entries
                    .iter()
                    .all(|(key, _)| matches!(key, ValueRef::Str(_))) =>
            {
                entries
            }
            ValueRef::Null => Vec::new(),
            _ => return None,
        };
        if !goes_to_driver(shared, object, method) {
            return None;
        }
        let args = ValueRef::List(args);
        let kwargs = ValueRef::Map(kwargs);
        let mut arguments = Vec::with_capacity(args.size_hint() + kwargs.size_hint() + 16);
        value::encode_map_start_into(2, &mut arguments);
        value::encode_str_into("args", &mut arguments);
        value::encode_ref_into(&args, &mut arguments);
        value::encode_str_into("kwargs", &mut arguments);
        value::encode_ref_into(&kwargs, &mut arguments);
        Some(EncodedCall {
            object,
            method,
            arguments: Cow::Owned(arguments),
        })
    }
}

/// Whether a call of `method` on `object` goes to a driver method (not to
/// `Pyro.Daemon`, a host object, a lock method, or what the daemon answers
/// for a service) that does not take a call context: what the fast path
/// serves.
fn goes_to_driver(shared: &Shared, object: &str, method: &str) -> bool {
    let lock_method = shared.settings.lockable && LOCK_METHODS.contains(&method);
    !lock_method
        && shared.services.get(object).is_some_and(|service| {
            !service.answered_by_daemon(method) && !service.takes_context(method)
        })
}

/// Whether a call goes to a driver method that takes a call context.
fn takes_context(shared: &Shared, call: &Call<'_>) -> bool {
    shared
        .services
        .get(call.object.as_ref())
        .is_some_and(|service| service.takes_context(&call.method))
}

/// The call context a driver method that takes one gets
/// (`abi::context`): the client's address, the request's correlation id
/// and annotations, as Pyro5's `current_context` has them.
fn call_context(sessions: &Sessions, request: &Message) -> Value {
    let correlation_id = match request.correlation_id {
        id if id == [0; 16] => Value::Null,
        id => Value::from(uuid::Uuid::from_bytes(id).to_string()),
    };
    let annotations = request
        .annotations
        .iter()
        .map(|(id, data)| {
            (
                Value::from(String::from_utf8_lossy(id).into_owned()),
                Value::Bytes(data.clone()),
            )
        })
        .collect();
    Value::Map(vec![
        (
            "client".into(),
            sessions.client().map_or(Value::Null, Value::from),
        ),
        ("correlation_id".into(), correlation_id),
        ("annotations".into(), Value::Map(annotations)),
    ])
}

/// The reply annotations a driver method set, from their encoding (a map
/// of 4-letter ids to bytes); anything else in it is dropped, logged.
fn reply_annotations(object: &str, method: &str, encoded: &[u8]) -> Vec<Annotation> {
    if encoded.is_empty() {
        return Vec::new();
    }
    let entries = match value::decode(encoded) {
        Ok(Value::Map(entries)) => entries,
        _ => {
            tracing::warn!("{object}.{method}() set malformed reply annotations; none sent");
            return Vec::new();
        }
    };
    entries
        .into_iter()
        .filter_map(|(id, data)| {
            let id: [u8; 4] = id.as_str()?.as_bytes().try_into().ok()?;
            match data {
                Value::Bytes(data) => Some((id, data)),
                _ => None,
            }
        })
        .collect()
}

/// The arguments map drivers read, from encoded `args` (a list) and
/// `kwargs` (a dict, or `None`).
fn arguments_map(args: &[u8], kwargs: &[u8]) -> Option<Vec<u8>> {
    if value::kind_of(args) != Some("list") {
        return None;
    }
    let no_kwargs;
    let kwargs = match value::kind_of(kwargs) {
        Some("dict") => kwargs,
        Some("NoneType") => {
            no_kwargs = value::encode(&Value::Map(Vec::new()));
            &no_kwargs
        }
        _ => return None,
    };
    Some(CallArgs::encode_from_parts(args, kwargs))
}

/// Replies with a driver's encoded result in a serializer that borrows
/// its large byte strings ([`msgpack::write_scattered`]): the result is
/// not decoded into values; its byte strings go from the driver's buffer
/// to the socket.
fn reply_scattered(
    serializer: &'static dyn Serializer,
    request: &Message,
    result: Result<Lent, Value>,
) -> Outcome {
    let lent = match result {
        Ok(lent) => lent,
        Err(exception) => return reply(serializer, request, 0, Err(exception)),
    };
    // A result that is one lent byte string is borrowed from its own
    // buffer; any other is read from one buffer.
    let lone_bytes = !lent.tail.is_empty()
        && value::lone_bytes_header(&lent.head, lent.len()) == Some(lent.head.len());
    let encoded = if lone_bytes {
        lent.tail
    } else {
        lent.into_whole()
    };
    let mut scatter = Scatter::default();
    let result = if lone_bytes {
        Ok(ValueRef::Bytes(&encoded))
    } else {
        value::decode_borrowed(&encoded)
    };
    let written = result.map_err(|err| err.to_string()).and_then(|result| {
        msgpack::write_scattered(&mut scatter, &encoded, &result, 0).map_err(|e| e.to_string())
    });
    if let Err(err) = written {
        let exception = pyro_exception("SerializeError", &format!("cannot send the result: {err}"));
        return reply(serializer, request, 0, Err(exception));
    }
    let header = Message::header(
        kind::RESULT,
        request.serializer_id,
        0,
        request.seq,
        request.correlation_id,
        scatter.len(),
    );
    Outcome::Scattered(header, scatter, encoded)
}

fn run_encoded(
    shared: &Shared,
    sessions: &mut Sessions,
    call: EncodedCall<'_>,
) -> Result<Answer, Value> {
    authorize(shared, sessions, call.object, call.method)?;
    if shared.settings.lockable {
        shared.locks.check(call.object, sessions.connection())?;
    }
    let instance = target(shared, sessions, call.object, call.method)?;
    instance
        .call_streaming(call.method, &call.arguments)
        .map_err(|err| driver_exception(call.object, call.method, &err))
}

fn describe(exception: &Value) -> String {
    let class = exception
        .get("__class__")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let message = exception
        .get("args")
        .and_then(Value::as_list)
        .and_then(|args| args.first())
        .map(ToString::to_string)
        .unwrap_or_default();
    format!("{class}: {message}")
}

/// Whether the caller may make this call of a service: lock it (the lock
/// methods of a lockable daemon) or call it (anything else). Every path a
/// call of a service takes comes through here; the daemon's own object
/// and the host's native objects check their own rights.
fn authorize(
    shared: &Shared,
    sessions: &Sessions,
    object: &str,
    method: &str,
) -> Result<(), Value> {
    let Some(service) = shared.services.get(object) else {
        return Ok(());
    };
    let rights = service.rights();
    let locking = shared.settings.lockable && matches!(method, "lock" | "unlock" | "release");
    let checked = match locking {
        true => sessions.caller().check(&rights.lock, "lock", || {
            format!("lock or unlock service {object}")
        }),
        false => sessions
            .caller()
            .check(&rights.call, "call", || format!("call {object}.{method}")),
    };
    checked.map_err(|refusal| permission_error(&refusal))
}

/// A refusal as the exception a Python client raises: `PermissionError`.
fn permission_error(message: &str) -> Value {
    exception("builtins.PermissionError", message, Vec::new())
}

/// On a lockable daemon, runs the lock methods, and refuses calls on a
/// service another connection has locked. `None`: go on with the call.
fn lock_call(
    shared: &Shared,
    sessions: &Sessions,
    call: &Call<'_>,
) -> Option<Result<Value, Value>> {
    if !shared.settings.lockable || !shared.services.contains_key(call.object.as_ref()) {
        return None;
    }
    let connection = sessions.connection();
    if LOCK_METHODS.contains(&call.method.as_ref()) {
        let result = shared.locks.call(
            &call.object,
            &call.method,
            (connection, sessions.caller().identity.as_deref()),
            &call.args,
            &call.kwargs,
        );
        if call.method == "lock" && result.is_ok() {
            shared.metrics.lock_taken(&call.object);
        }
        return Some(result);
    }
    shared.locks.check(&call.object, connection).err().map(Err)
}

/// Finds the instance a call goes to, or the exception explaining why
/// there is none.
fn target(
    shared: &Shared,
    sessions: &mut Sessions,
    object: &str,
    method: &str,
) -> Result<Arc<Instance>, Value> {
    let Some(service) = shared.services.get(object) else {
        return Err(pyro_exception("DaemonError", "unknown object"));
    };
    let is_property_access = matches!(method, "__getattr__" | "__setattr__");
    // No Python name holds a NUL; the host's own calls to a library do
    // (`abi::lending`), and no client may make them.
    if method.contains('\0') || (super::pyro::is_private_attribute(method) && !is_property_access) {
        return Err(exception(
            "builtins.AttributeError",
            &format!("attempt to access private attribute '{method}'"),
            Vec::new(),
        ));
    }
    service
        .instance(sessions)
        .map_err(|err| driver_exception(object, "__init__", &err))
}

fn run_call(shared: &Shared, sessions: &mut Sessions, call: Call<'static>) -> Result<Ran, Value> {
    run_call_in_context(shared, sessions, call, None).map(|(ran, _)| ran)
}

/// Runs a call; a driver method that takes a call context gets `context`
/// (an empty one if `None`), and the reply annotations it set come back
/// with what it gave.
fn run_call_in_context(
    shared: &Shared,
    sessions: &mut Sessions,
    call: Call<'static>,
    context: Option<Value>,
) -> Result<(Ran, Vec<Annotation>), Value> {
    let plain = |ran: Result<Ran, Value>| ran.map(|ran| (ran, Vec::new()));
    if call.object == DAEMON_OBJECT {
        return plain(daemon_call(shared, sessions, &call).map(Ran::Value));
    }
    if let Some(native) = shared.objects.get(call.object.as_ref()) {
        let Call {
            method,
            args,
            kwargs,
            ..
        } = call;
        return plain(
            native
                .call(&method, CallArgs { args, kwargs }, sessions.caller())
                .map(Ran::Value),
        );
    }
    authorize(shared, sessions, &call.object, &call.method)?;
    if let Some(result) = lock_call(shared, sessions, &call) {
        return plain(result.map(Ran::Value));
    }
    if let Some(answer) = service_answer(shared, &call) {
        return plain(answer.map(Ran::Value));
    }
    let instance = target(shared, sessions, &call.object, &call.method)?;
    let Call {
        object,
        method,
        args,
        kwargs,
    } = call;
    let failed = |err: DriverError| driver_exception(&object, &method, &err);
    let args = CallArgs { args, kwargs };
    let (answer, annotations) = match context {
        Some(context) => {
            let (answer, encoded) = instance
                .call_args_with_context(&method, args, context)
                .map_err(failed)?;
            (answer, reply_annotations(&object, &method, &encoded))
        }
        None => (
            instance
                .call_args_streaming(&method, args)
                .map_err(failed)?,
            Vec::new(),
        ),
    };
    let ran = match answer {
        Answer::Stream(stream) => Ran::Stream(stream),
        Answer::Result(lent) => {
            value::decode(&lent.into_whole())
                .map(Ran::Value)
                .map_err(|err| {
                    failed(DriverError::runtime(format!(
                        "{method}() returned a malformed value: {err}"
                    )))
                })?
        }
    };
    Ok((ran, annotations))
}

/// The daemon's answer to `ping()` or `pyrolab_version()` on a service
/// whose driver does not define it (PyroLab's `Service` methods).
fn service_answer(shared: &Shared, call: &Call<'_>) -> Option<Result<Value, Value>> {
    let service = shared.services.get(call.object.as_ref())?;
    if !service.answered_by_daemon(&call.method) {
        return None;
    }
    if !call.args.is_empty() || !call.kwargs.is_empty() {
        return Some(Err(exception(
            "builtins.TypeError",
            &format!("{}() takes no arguments", call.method),
            Vec::new(),
        )));
    }
    pyro::service_method(&call.method).map(Ok)
}

/// A oneway call: what the daemon answers itself runs now; a driver call
/// becomes the job to run (`None`: nothing left to run). On a thread
/// daemon the job runs apart from the connection, so the client's next
/// call is not held up by it (as in Pyro5).
fn oneway_job(
    shared: &Shared,
    sessions: &mut Sessions,
    call: Call<'static>,
    bytes_in: usize,
) -> Result<Option<Job>, Value> {
    let metrics = Arc::clone(&shared.metrics);
    let (object, method) = (call.object.clone(), call.method.clone());
    match oneway_work(shared, sessions, call) {
        // Timed as it runs, apart.
        Ok(Some(work)) => Ok(Some(Box::new(move || {
            let mut meter = metrics.start(&object, &method, bytes_in, Instant::now());
            meter.result(&work());
            meter.finish(0);
        }))),
        // Answered by the daemon, at once.
        done => {
            let mut meter = metrics.start(&object, &method, bytes_in, Instant::now());
            meter.result(&done);
            meter.finish(0);
            done.map(|_| None)
        }
    }
}

/// A oneway call's driver work, to run apart (its result is dropped).
type OnewayWork = Box<dyn FnOnce() -> Result<(), Value> + Send>;

/// What a oneway call does: what the daemon answers itself runs now; a
/// driver call becomes the work to run.
fn oneway_work(
    shared: &Shared,
    sessions: &mut Sessions,
    call: Call<'static>,
) -> Result<Option<OnewayWork>, Value> {
    if call.object == DAEMON_OBJECT {
        return daemon_call(shared, sessions, &call).map(|_| None);
    }
    if shared.objects.contains_key(call.object.as_ref()) {
        // The host's own objects answer at once: run in line.
        return run_call(shared, sessions, call).map(|_| None);
    }
    authorize(shared, sessions, &call.object, &call.method)?;
    if let Some(result) = lock_call(shared, sessions, &call) {
        return result.map(|_| None);
    }
    if let Some(answer) = service_answer(shared, &call) {
        return answer.map(|_| None);
    }
    let instance = target(shared, sessions, &call.object, &call.method)?;
    Ok(Some(Box::new(move || {
        let args = CallArgs {
            args: call.args,
            kwargs: call.kwargs,
        };
        // A stream returned to no one is closed at once, as Pyro5 drops it.
        match instance.call_args_streaming(&call.method, args) {
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(service = %call.object, "oneway {}() failed: {err}", call.method);
                Err(driver_exception(&call.object, &call.method, &err))
            }
        }
    })))
}

/// A batch: `(method, args, kwargs)` triples run in order; results are
/// collected until the first exception, which ends the batch (Pyro5's rule).
/// A method that takes a call context gets the batch request's (its reply
/// annotations are not sent: a batch's reply has none).
fn run_batch(
    shared: &Shared,
    sessions: &mut Sessions,
    request: &Message,
    call: Call<'static>,
) -> Result<Value, Value> {
    let mut results = Vec::with_capacity(call.args.len());
    for item in call.args {
        let single =
            batch_item(&call.object, item).map_err(|err| pyro_exception("ProtocolError", &err))?;
        let context = takes_context(shared, &single).then(|| call_context(sessions, request));
        let mut meter = shared
            .metrics
            .start(&single.object, &single.method, 0, Instant::now());
        let ran = run_call_in_context(shared, sessions, single, context).map(|(ran, _)| ran);
        meter.result(&ran);
        meter.finish(0);
        match ran {
            Ok(Ran::Value(value)) => results.push(value),
            Ok(Ran::Stream(_)) => {
                // As in Pyro5, batched calls return no streams.
                let refused = pyro_exception(
                    "PyroError",
                    "a batched call cannot return an item stream: call it on its own",
                );
                results.push(batch_exception(refused));
                break;
            }
            Err(exception) => {
                results.push(batch_exception(exception));
                break;
            }
        }
    }
    Ok(Value::List(results))
}

fn batch_item(object: &str, item: Value) -> Result<Call<'static>, String> {
    let Ok(parts) = item.into_list() else {
        return Err("a batch item is (method, args, kwargs)".to_owned());
    };
    let mut parts = parts.into_iter();
    let (Some(method), Some(args), kwargs) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a batch item is (method, args, kwargs)".to_owned());
    };
    let method = method
        .as_str()
        .ok_or("a batch method name must be a string")?
        .to_owned();
    let args = match args {
        Value::Null => Vec::new(),
        sequence => sequence
            .into_list()
            .map_err(|_| "batch arguments must be a sequence".to_owned())?,
    };
    Ok(Call {
        object: object.to_owned().into(),
        method: method.into(),
        args,
        kwargs: call::keyword_arguments(kwargs.unwrap_or(Value::Null))?,
    })
}

/// The methods of `Pyro.Daemon`.
fn daemon_call(shared: &Shared, sessions: &Sessions, call: &Call<'_>) -> Result<Value, Value> {
    match call.method.as_ref() {
        // PyroLab's daemons answer True (Pyro5's plain daemon object None).
        "ping" => Ok(Value::Bool(true)),
        "pyrolab_version" => Ok(Value::from(pyro::PYROLAB_VERSION)),
        "registered" => Ok(Value::List(
            std::iter::once(DAEMON_OBJECT)
                .chain(shared.objects.keys().map(String::as_str))
                .chain(shared.services.keys().map(String::as_str))
                .map(Value::from)
                .collect(),
        )),
        "info" => {
            let location = shared.location.lock_unpoisoned().clone();
            let servertype = match shared.settings.servertype {
                ServerType::Thread => "thread",
                ServerType::Multiplex => "multiplex",
            };
            Ok(Value::Str(format!(
                "{DAEMON_OBJECT} bound on {location}, NAT None, {} objects registered. Servertype: pyrolab-host {servertype} server",
                shared.services.len() + shared.objects.len() + 1
            )))
        }
        "get_metadata" => {
            let object = call
                .args
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| daemon_argument_error("get_metadata() expects an object id"))?;
            if object == DAEMON_OBJECT {
                return Ok(daemon_metadata(shared.settings.lockable));
            }
            if let Some(native) = shared.objects.get(object) {
                return Ok(native.metadata());
            }
            shared
                .services
                .get(object)
                .map(|service| service.metadata(shared.added_methods()))
                .ok_or_else(|| pyro_exception("DaemonError", "unknown object"))
        }
        "release" if shared.settings.lockable => {
            let uri = call.args.first().cloned().unwrap_or_default();
            let object = super::lock::object_of(&uri)?;
            if let Some(service) = shared.services.get(&object) {
                sessions
                    .caller()
                    .check(&service.rights().force_release, "force_release", || {
                        format!("force-release the lock of service {object}")
                    })
                    .map_err(|refusal| permission_error(&refusal))?;
            }
            Ok(Value::Bool(shared.locks.force_release(&object)))
        }
        // A pyrolab-host extension (for monitors): who locks what.
        "locks" if shared.settings.lockable => Ok(Value::Map(
            shared
                .locks
                .holders()
                .into_iter()
                .map(|(service, holder)| (Value::from(service), Value::from(holder)))
                .collect(),
        )),
        // A pyrolab-host extension (for monitors): what its calls and
        // connections count up to (docs/metrics.md).
        "metrics" => pyrolab_plugin_api::value::to_value(&shared.metrics.report()).map_err(|err| {
            pyro_exception(
                "SerializeError",
                &format!("cannot report the metrics: {err}"),
            )
        }),
        "get_next_stream_item" => {
            let item = shared
                .streams
                .next(stream_id(call)?, sessions.connection())?;
            value::decode(&item.into_whole()).map_err(|err| {
                pyro_exception("SerializeError", &format!("a malformed item: {err}"))
            })
        }
        "close_stream" => {
            shared.streams.close(stream_id(call)?);
            Ok(Value::Null)
        }
        other if DAEMON_METHODS.contains(&other) => Ok(Value::Null),
        other => Err(exception(
            "builtins.AttributeError",
            &format!("remote object 'Pyro.Daemon' has no exposed attribute or method '{other}'"),
            Vec::new(),
        )),
    }
}

fn daemon_argument_error(message: &str) -> Value {
    driver_exception(
        DAEMON_OBJECT,
        "get_metadata",
        &DriverError::new(ErrorKind::TypeError, message),
    )
}
