//! A Pyro5 call request (an INVOKE's payload), written and read in one
//! place: the client encodes calls with [`Call::encode_into`], the daemon
//! reads them with [`Call::decode`].
//!
//! Each serializer carries the same four parts in the shape Pyro5's own
//! `dumpsCall` gives them:
//!
//! | serializer | payload |
//! | --- | --- |
//! | serpent | the tuple `(object, method, args, kwargs)`, `args` a tuple |
//! | marshal | the tuple `(object, method, args, kwargs)`, `args` a list |
//! | msgpack, native | the array `[object, method, args, kwargs]` |
//! | json | the object `{"object", "method", "params", "kwargs"}` |
//!
//! A pyrolab-host daemon that announces it ([`annotation::ARGS_MAP`] in
//! its CONNECTOK) also reads the native form `[object, method, {"args":
//! args, "kwargs": kwargs}]`: the arguments encoded exactly as drivers
//! read them, so the daemon hands that part to the driver as it arrived,
//! without copying it ([`Call::encode_args_map_into`]).
//!
//! Decoding takes any of these, and `kwargs` may be `None`.
//!
//! [`annotation::ARGS_MAP`]: super::message::annotation::ARGS_MAP

use std::borrow::Cow;

use pyrolab_plugin_api::{CallArgs, Value, value};

use super::serializer::{SerializeError, Serializer, id};

/// One call: which object, which method, with what.
#[derive(Clone, Debug, PartialEq)]
pub struct Call<'a> {
    /// The object id (a service name, `Pyro.Daemon`, `Pyro.NameServer`).
    pub object: Cow<'a, str>,
    /// The method name.
    pub method: Cow<'a, str>,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in the caller's order.
    pub kwargs: Vec<(String, Value)>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `object` with `args`.
    pub fn new(object: &'a str, method: &'a str, args: CallArgs) -> Call<'a> {
        Call {
            object: Cow::Borrowed(object),
            method: Cow::Borrowed(method),
            args: args.args,
            kwargs: args.kwargs,
        }
    }

    /// The arguments, apart from the names.
    pub fn into_args(self) -> CallArgs {
        CallArgs {
            args: self.args,
            kwargs: self.kwargs,
        }
    }

    /// Appends the call's payload in `serializer`. The native form is
    /// written piece by piece, the names straight from their text (that is
    /// every call between pyrolab-host's own processes); the others go
    /// through a value, which copies the arguments.
    ///
    /// The arguments are moved into that value and back, not copied; so
    /// this takes the call mutably, and leaves it as it was.
    pub fn encode_into(
        &mut self,
        serializer: &dyn Serializer,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        if serializer.id() == id::NATIVE {
            self.encode_native(out);
            return Ok(());
        }
        // About what the native form takes: a large argument is then
        // written without growing (and copying) the buffer on the way.
        self.reserve_native(out);
        let call = Call {
            object: self.object.clone(),
            method: self.method.clone(),
            args: std::mem::take(&mut self.args),
            kwargs: std::mem::take(&mut self.kwargs),
        };
        let payload = call.into_value(serializer.id());
        let written = serializer.serialize_into(&payload, out);
        let (args, kwargs) = arguments_of(payload);
        self.args = args;
        self.kwargs = kwargs;
        written
    }

    fn encode_native(&self, out: &mut Vec<u8>) {
        self.reserve_native(out);
        value::encode_list_start_into(4, out);
        value::encode_str_into(&self.object, out);
        value::encode_str_into(&self.method, out);
        self.encode_arguments(false, out);
    }

    /// Appends the call's payload in the native form whose arguments are
    /// one `{"args", "kwargs"}` map, as drivers read them (for a daemon
    /// that announced [`annotation::ARGS_MAP`](super::message::annotation::ARGS_MAP)).
    pub fn encode_args_map_into(&self, out: &mut Vec<u8>) {
        self.reserve_native(out);
        value::encode_list_start_into(3, out);
        value::encode_str_into(&self.object, out);
        value::encode_str_into(&self.method, out);
        value::encode_map_start_into(2, out);
        value::encode_str_into("args", out);
        self.encode_arguments(true, out);
    }

    /// Writes `args`, then `kwargs` (`keyed`: with its key, as the second
    /// entry of the arguments map whose first key the caller wrote).
    fn encode_arguments(&self, keyed: bool, out: &mut Vec<u8>) {
        value::encode_list_start_into(self.args.len(), out);
        for arg in &self.args {
            value::encode_into(arg, out);
        }
        if keyed {
            value::encode_str_into("kwargs", out);
        }
        value::encode_map_start_into(self.kwargs.len(), out);
        for (name, arg) in &self.kwargs {
            value::encode_str_into(name, out);
            value::encode_into(arg, out);
        }
    }

    /// Makes room for the whole native payload at once: growing past a
    /// megabyte argument would copy it.
    fn reserve_native(&self, out: &mut Vec<u8>) {
        let names = self.object.len() + self.method.len() + 64;
        let args: usize = self.args.iter().map(value::encoded_size).sum();
        let kwargs: usize = self
            .kwargs
            .iter()
            .map(|(name, arg)| name.len() + 12 + value::encoded_size(arg))
            .sum();
        out.reserve(names + args + kwargs);
    }

    /// The payload as a value, in the shape serializer `serializer_id`'s
    /// Pyro5 peers write (the arguments copied).
    pub fn to_value(&self, serializer_id: u8) -> Value {
        self.clone().into_value(serializer_id)
    }

    /// The payload as a value, in the shape serializer `serializer_id`'s
    /// Pyro5 peers write, the arguments moved into it.
    pub fn into_value(self, serializer_id: u8) -> Value {
        let object = Value::from(self.object.as_ref());
        let method = Value::from(self.method.as_ref());
        let kwargs = Value::Map(
            self.kwargs
                .into_iter()
                .map(|(name, arg)| (Value::Str(name), arg))
                .collect(),
        );
        let args = self.args;
        match serializer_id {
            id::JSON => Value::Map(vec![
                (Value::from("object"), object),
                (Value::from("method"), method),
                (Value::from("params"), Value::List(args)),
                (Value::from("kwargs"), kwargs),
            ]),
            id::SERPENT => Value::Tuple(vec![object, method, Value::Tuple(args), kwargs]),
            id::MARSHAL => Value::Tuple(vec![object, method, Value::List(args), kwargs]),
            _ => Value::List(vec![object, method, Value::List(args), kwargs]),
        }
    }

    /// Reads a call payload: the 4-tuple (or list) `(object, method, args,
    /// kwargs)`, or json's `{"object", "method", "params", "kwargs"}`
    /// mapping. `kwargs` may be `None`.
    pub fn decode(value: Value) -> Result<Call<'static>, String> {
        let (object, method, args, kwargs) = match value {
            Value::List(items) | Value::Tuple(items) if items.len() == 4 => {
                let mut items = items.into_iter();
                let mut next = || items.next().expect("four items");
                (next(), next(), next(), next())
            }
            Value::List(items) if items.len() == 3 => {
                let [object, method, arguments] =
                    <[Value; 3]>::try_from(items).expect("three items");
                let Value::Map(entries) = arguments else {
                    return Err(format!(
                        "a call's arguments are {{args, kwargs}}, found {}",
                        arguments.type_name()
                    ));
                };
                let mut args = Value::Null;
                let mut kwargs = Value::Null;
                for (key, value) in entries {
                    match key.as_str() {
                        Some("args") => args = value,
                        Some("kwargs") => kwargs = value,
                        _ => {}
                    }
                }
                (object, method, args, kwargs)
            }
            Value::Map(entries) => {
                let take = |key: &str| {
                    entries
                        .iter()
                        .find(|(k, _)| k.as_str() == Some(key))
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null)
                };
                (
                    take("object"),
                    take("method"),
                    take("params"),
                    take("kwargs"),
                )
            }
            other => {
                return Err(format!(
                    "a call is (object, method, args, kwargs), found {}",
                    other.type_name()
                ));
            }
        };
        Ok(Call {
            object: Cow::Owned(text(object, "object id")?),
            method: Cow::Owned(text(method, "method name")?),
            args: positional_arguments(args)?,
            kwargs: keyword_arguments(kwargs)?,
        })
    }
}

/// The arguments back out of a value [`Call::into_value`] made.
fn arguments_of(payload: Value) -> (Vec<Value>, Vec<(String, Value)>) {
    let (args, kwargs) = match payload {
        Value::Map(entries) => {
            let mut entries = entries.into_iter().skip(2).map(|(_, v)| v);
            (entries.next(), entries.next())
        }
        Value::List(items) | Value::Tuple(items) => {
            let mut items = items.into_iter().skip(2);
            (items.next(), items.next())
        }
        _ => (None, None),
    };
    let args = args
        .and_then(|args| args.into_list().ok())
        .unwrap_or_default();
    let kwargs = kwargs
        .and_then(|kwargs| keyword_arguments(kwargs).ok())
        .unwrap_or_default();
    (args, kwargs)
}

fn text(value: Value, what: &str) -> Result<String, String> {
    match value {
        Value::Str(text) => Ok(text),
        other => Err(format!(
            "the {what} must be a string, found {}",
            other.type_name()
        )),
    }
}

/// `args` as values (`None` is none).
pub fn positional_arguments(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        sequence => sequence.into_list().map_err(|other| {
            format!(
                "call arguments must be a sequence, found {}",
                other.type_name()
            )
        }),
    }
}

/// `kwargs` as name-value pairs (`None` is none).
pub fn keyword_arguments(value: Value) -> Result<Vec<(String, Value)>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Map(entries) => entries
            .into_iter()
            .map(|(k, v)| match k {
                Value::Str(name) => Ok((name, v)),
                other => Err(format!(
                    "keyword names must be strings, found {}",
                    other.type_name()
                )),
            })
            .collect(),
        other => Err(format!(
            "keyword arguments must be a dict, found {}",
            other.type_name()
        )),
    }
}

/// A call's payload in `serializer`, for serializers' own tests.
#[cfg(test)]
pub(crate) fn test_payload(
    serializer: &dyn Serializer,
    object: &str,
    method: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> Vec<u8> {
    let mut call = Call {
        object: Cow::Borrowed(object),
        method: Cow::Borrowed(method),
        args: args.to_vec(),
        kwargs: kwargs.to_vec(),
    };
    let mut out = Vec::new();
    call.encode_into(serializer, &mut out)
        .expect("test calls are serializable");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::serializer::by_id;

    fn kw_call() -> Call<'static> {
        Call::new(
            "thing",
            "kw",
            CallArgs::positional(vec![1.into(), 2.into(), 3.into()]).kwarg("x", 4),
        )
    }

    fn encoded(call: &Call<'_>, serializer_id: u8) -> Vec<u8> {
        let mut call = call.clone();
        let before = call.clone();
        let mut out = Vec::new();
        call.encode_into(by_id(serializer_id).unwrap(), &mut out)
            .unwrap();
        assert_eq!(call, before, "encoding leaves the call as it was");
        out
    }

    #[test]
    fn calls_are_written_as_pyro5_writes_them() {
        // kw(1, 2, 3, x=4) as captured from stock Pyro5 5.17
        // (../shared/pyro5-captures/).
        assert_eq!(
            encoded(&kw_call(), id::SERPENT),
            b"# serpent utf-8 python3.2\n('thing','kw',(1,2,3),{'x':4})"
        );
        assert_eq!(
            encoded(&kw_call(), id::MSGPACK),
            b"\x94\xa5thing\xa2kw\x93\x01\x02\x03\x81\xa1x\x04"
        );
        let add = Call::new(
            "thing",
            "add",
            CallArgs::positional(vec![1.into(), 2.into()]),
        );
        assert_eq!(
            encoded(&add, id::JSON),
            br#"{"object": "thing", "method": "add", "params": [1, 2], "kwargs": {}}"#
        );
        let fire = Call::new("thing", "fire", CallArgs::positional(vec![1.into()]));
        assert_eq!(
            encoded(&fire, id::SERPENT),
            b"# serpent utf-8 python3.2\n('thing','fire',(1,),{})"
        );
        // marshal: ('thing', 'kw', [1], {'x': 4}) as Python writes it.
        let marshal = Call::new(
            "thing",
            "kw",
            CallArgs::positional(vec![1.into()]).kwarg("x", 4),
        );
        let back = by_id(id::MARSHAL)
            .unwrap()
            .deserialize(&encoded(&marshal, id::MARSHAL))
            .unwrap();
        assert_eq!(back, marshal.to_value(id::MARSHAL));
    }

    #[test]
    fn the_native_form_is_the_value_encoding_of_the_list() {
        let call = kw_call();
        assert_eq!(
            encoded(&call, id::NATIVE),
            value::encode(&call.to_value(id::NATIVE))
        );
    }

    #[test]
    fn every_serializer_reads_back_what_it_wrote() {
        let call = kw_call();
        for serializer_id in [id::SERPENT, id::MARSHAL, id::JSON, id::MSGPACK, id::NATIVE] {
            let serializer = by_id(serializer_id).unwrap();
            let value = serializer
                .deserialize(&encoded(&call, serializer_id))
                .unwrap();
            assert_eq!(Call::decode(value).unwrap(), call, "{}", serializer.name());
        }
    }

    #[test]
    fn calls_decode_from_tuples_lists_and_json_maps() {
        let json = Value::Map(vec![
            ("object".into(), "thing".into()),
            ("method".into(), "__getattr__".into()),
            ("params".into(), Value::List(vec!["value".into()])),
            ("kwargs".into(), Value::Null),
        ]);
        let call = Call::decode(json).unwrap();
        assert_eq!(call.args, [Value::from("value")]);
        assert!(call.kwargs.is_empty());
        assert!(Call::decode(Value::Int(1)).is_err());
        let bad_kwargs = Value::Tuple(vec![
            "thing".into(),
            "kw".into(),
            Value::Tuple(vec![]),
            Value::Map(vec![(Value::Int(1), Value::Null)]),
        ]);
        assert!(
            Call::decode(bad_kwargs)
                .unwrap_err()
                .contains("keyword names")
        );
        let bad_args = Value::List(vec!["t".into(), "m".into(), Value::Int(1), Value::Null]);
        assert!(Call::decode(bad_args).unwrap_err().contains("sequence"));
    }

    #[test]
    fn the_arguments_map_form_carries_what_drivers_read() {
        let call = kw_call();
        let mut out = Vec::new();
        call.encode_args_map_into(&mut out);
        let [object, method, arguments] = value::split_list_exact::<3>(&out).expect("three parts");
        assert_eq!(value::str_of(object), Some("thing"));
        assert_eq!(value::str_of(method), Some("kw"));
        // The third part is, byte for byte, the arguments as drivers read them.
        let args = call.clone().into_args();
        assert_eq!(
            arguments,
            value::encode(&args.clone().into_value()).as_slice()
        );
        assert_eq!(CallArgs::decode(arguments).unwrap(), args);
        // And the general path reads it as the same call.
        let decoded = Call::decode(value::decode(&out).unwrap()).unwrap();
        assert_eq!(decoded, call);
        // So does the older four-part form.
        let decoded = Call::decode(value::decode(&encoded(&call, id::NATIVE)).unwrap()).unwrap();
        assert_eq!(decoded, call);
    }
}
