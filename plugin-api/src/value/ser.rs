//! Typed Rust values to [`Value`]: a `serde::Serializer` that builds a
//! `Value` directly, and `Value`'s own natural `Serialize` form.
//!
//! serde's data model has no sets, big integers or complex numbers, so
//! those travel through it as newtype structs with reserved names (the
//! [`marker`] constants): this serializer recognizes them and builds the
//! matching [`Value`] kind, and every other serializer (`serde_json`, say)
//! sees an ordinary newtype around a sequence, a number or a map.

use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, SerializeMap as _, SerializeSeq as _, SerializeStruct as _};

use super::{BigInt, Complex, Value, ValueError};

/// The reserved newtype-struct names that carry the kinds serde lacks.
pub(crate) mod marker {
    /// A sequence that is a Python `set`.
    pub const SET: &str = "$pyrolab::private::Set";
    /// A sequence that is a Python `frozenset`.
    pub const FROZENSET: &str = "$pyrolab::private::FrozenSet";
    /// An integer: an `i128`/`u128` when it fits, else its decimal text.
    pub const BIGINT: &str = "$pyrolab::private::BigInt";
    /// A complex number: a map with `real` and `imag`.
    pub const COMPLEX: &str = "$pyrolab::private::Complex";
    /// Any [`Value`](crate::Value), asked for by `Value`'s own
    /// `Deserialize` so that a `Value` deserializer can hand over kinds
    /// serde cannot name.
    pub const VALUE: &str = "$pyrolab::private::Value";
}

/// Converts any `Serialize` value to a [`Value`].
///
/// Structs and maps become [`Value::Map`]s, sequences [`Value::List`]s,
/// tuples, arrays and tuple structs [`Value::Tuple`]s, `None` and `()`
/// [`Value::Null`]. Enums are externally tagged as in JSON: a unit variant
/// is its name, any other variant a one-entry map from its name to its
/// content. Integers beyond `i64` become [`Value::BigInt`]s; [`BigInt`]
/// and [`Complex`] become their kinds, and sequences marked with
/// [`as_set`] or [`as_frozenset`] sets.
///
/// # Errors
///
/// When the type's own `Serialize` raises an error.
pub fn to_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// Serializes a collection as a Python `set`, for
/// `#[serde(serialize_with = "pyrolab_plugin_api::value::as_set")]` on a
/// field (serde cannot tell a set from a list by itself).
pub fn as_set<T, S>(items: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: ser::Serializer,
{
    serializer.serialize_newtype_struct(marker::SET, items)
}

/// Serializes a collection as a Python `frozenset` (see [`as_set`]).
pub fn as_frozenset<T, S>(items: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: ser::Serializer,
{
    serializer.serialize_newtype_struct(marker::FROZENSET, items)
}

/// A reference that serializes as a set: what the `#[service]` macro wraps
/// a method's `HashSet`/`BTreeSet` result in.
#[doc(hidden)]
pub struct AsSet<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for AsSet<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        as_set(self.0, serializer)
    }
}

impl ser::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        ValueError::new(msg.to_string())
    }
}

/// The natural form: `Value::Map` serializes as a map, `Value::Bytes` as
/// bytes, and so on, so a `Value` inside a typed struct converts as expected
/// (and `serde_json` prints it as plain JSON: tuples and sets as arrays,
/// big integers as numbers when they fit in 128 bits and as strings
/// beyond, complex numbers as `{"real": .., "imag": ..}`).
impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Tuple(items) => {
                use ser::SerializeTuple as _;
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Set(items) => as_set(items, serializer),
            Value::FrozenSet(items) => as_frozenset(items, serializer),
            Value::BigInt(n) => n.serialize(serializer),
            Value::Complex(c) => c.serialize(serializer),
        }
    }
}

impl Serialize for BigInt {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(marker::BIGINT, &BigIntBody(self))
    }
}

/// The number itself: as a 128-bit integer where it fits (so JSON shows a
/// number), else as its decimal text.
struct BigIntBody<'a>(&'a BigInt);

impl Serialize for BigIntBody<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Ok(n) = i128::try_from(self.0) {
            serializer.serialize_i128(n)
        } else if let Ok(n) = u128::try_from(self.0) {
            serializer.serialize_u128(n)
        } else {
            serializer.serialize_str(&self.0.to_string())
        }
    }
}

impl Serialize for Complex {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(marker::COMPLEX, &ComplexBody(self))
    }
}

struct ComplexBody<'a>(&'a Complex);

impl Serialize for ComplexBody<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_struct("complex", 2)?;
        map.serialize_field("real", &self.0.re)?;
        map.serialize_field("imag", &self.0.im)?;
        map.end()
    }
}

/// Builds the kind a reserved newtype name stands for from its content.
pub(super) fn marked(name: &str, content: Value) -> Result<Value, ValueError> {
    match name {
        marker::SET => content
            .into_list()
            .map(Value::Set)
            .map_err(|other| expected("a sequence for a set", &other)),
        marker::FROZENSET => content
            .into_list()
            .map(Value::FrozenSet)
            .map_err(|other| expected("a sequence for a frozenset", &other)),
        marker::BIGINT => match content {
            Value::Int(_) | Value::BigInt(_) => Ok(content),
            Value::Str(text) => text.parse().map(Value::integer),
            other => Err(expected("an integer", &other)),
        },
        marker::COMPLEX => {
            let part = |key: &str| content.get(key).and_then(Value::as_float);
            match (part("real"), part("imag")) {
                (Some(re), Some(im)) => Ok(Value::Complex(Complex { re, im })),
                _ => Err(expected("a complex number's real and imag", &content)),
            }
        }
        _ => Ok(content),
    }
}

fn expected(what: &str, found: &Value) -> ValueError {
    ValueError::new(format!("expected {what}, found {}", found.type_name()))
}

pub(super) struct ValueSerializer;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        marked(name, value.serialize(self)?)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(Value::Map(vec![(Value::from(variant), to_value(value)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(len.unwrap_or(0), Value::List))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(len, Value::Tuple))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder::new(len, Value::Tuple))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, ValueError> {
        Ok(VariantSeqBuilder {
            variant,
            items: SeqBuilder::new(len, Value::Tuple),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        // As for sequences, the length comes from the type's own Serialize.
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            pending_key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, ValueError> {
        Ok(VariantMapBuilder {
            variant,
            fields: self.serialize_map(Some(len))?,
        })
    }
}

/// The items of a sequence, and the kind it becomes (list or tuple).
pub(super) struct SeqBuilder {
    items: Vec<Value>,
    kind: fn(Vec<Value>) -> Value,
}

impl SeqBuilder {
    fn new(len: usize, kind: fn(Vec<Value>) -> Value) -> SeqBuilder {
        // The length comes from the type's own Serialize: bound it anyway.
        SeqBuilder {
            items: Vec::with_capacity(len.min(4096)),
            kind,
        }
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok((self.kind)(self.items))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

pub(super) struct VariantSeqBuilder {
    variant: &'static str,
    items: SeqBuilder,
}

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(&mut self.items, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        let content = ser::SerializeSeq::end(self.items)?;
        Ok(Value::Map(vec![(Value::from(self.variant), content)]))
    }
}

pub(super) struct MapBuilder {
    entries: Vec<(Value, Value)>,
    pending_key: Option<Value>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ValueError> {
        self.pending_key = Some(to_value(key)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| ValueError::new("map value serialized before its key"))?;
        self.entries.push((key, to_value(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.entries.push((Value::from(key), to_value(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.entries))
    }
}

pub(super) struct VariantMapBuilder {
    variant: &'static str,
    fields: MapBuilder,
}

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.fields, key, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        let content = Value::Map(self.fields.entries);
        Ok(Value::Map(vec![(Value::from(self.variant), content)]))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum Mode {
        Idle,
        Sweep(f64),
        Window { start: u32, stop: u32 },
    }

    #[test]
    fn structs_become_maps_and_enums_are_externally_tagged() {
        #[derive(Serialize)]
        struct Laser {
            name: String,
            power: f64,
            channels: Vec<u8>,
            note: Option<String>,
            modes: Vec<Mode>,
        }
        let laser = Laser {
            name: "TSL550".into(),
            power: 1.5,
            channels: vec![1, 2],
            note: None,
            modes: vec![
                Mode::Idle,
                Mode::Sweep(2.0),
                Mode::Window { start: 1, stop: 2 },
            ],
        };
        let expected = Value::Map(vec![
            ("name".into(), "TSL550".into()),
            ("power".into(), 1.5.into()),
            ("channels".into(), Value::List(vec![1.into(), 2.into()])),
            ("note".into(), Value::Null),
            (
                "modes".into(),
                Value::List(vec![
                    "Idle".into(),
                    Value::Map(vec![("Sweep".into(), 2.0.into())]),
                    Value::Map(vec![(
                        "Window".into(),
                        Value::Map(vec![("start".into(), 1.into()), ("stop".into(), 2.into())]),
                    )]),
                ]),
            ),
        ]);
        assert_eq!(to_value(&laser).unwrap(), expected);
    }

    #[test]
    fn map_keys_of_any_kind_are_kept() {
        let map: BTreeMap<u32, &str> = [(1, "a"), (2, "b")].into();
        assert_eq!(
            to_value(&map).unwrap(),
            Value::Map(vec![(1.into(), "a".into()), (2.into(), "b".into())])
        );
    }

    #[test]
    fn integers_beyond_i64_become_big_integers() {
        assert_eq!(
            to_value(&u64::MAX).unwrap(),
            Value::BigInt(BigInt::from(u64::MAX))
        );
        assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&u32::MAX).unwrap(), Value::Int(u32::MAX.into()));
        assert_eq!(to_value(&-7i128).unwrap(), Value::Int(-7));
        assert_eq!(to_value(&7u128).unwrap(), Value::Int(7));
        assert_eq!(
            to_value(&i128::MIN).unwrap().to_string(),
            i128::MIN.to_string()
        );
        assert_eq!(
            to_value(&u128::MAX).unwrap().to_string(),
            u128::MAX.to_string()
        );
        let huge: BigInt = "1".repeat(100).parse().unwrap();
        assert_eq!(to_value(&huge).unwrap(), Value::BigInt(huge));
        assert_eq!(to_value(&BigInt::from(3)).unwrap(), Value::Int(3));
    }

    #[test]
    fn sets_and_complex_numbers_keep_their_kind() {
        #[derive(Serialize)]
        struct Tags {
            #[serde(serialize_with = "as_set")]
            tags: std::collections::BTreeSet<&'static str>,
            #[serde(serialize_with = "as_frozenset")]
            fixed: Vec<u8>,
            plain: std::collections::BTreeSet<u8>,
            z: Complex,
        }
        let tags = Tags {
            tags: ["a", "b"].into(),
            fixed: vec![1],
            plain: [2].into(),
            z: Complex::new(1.0, -1.0),
        };
        assert_eq!(
            to_value(&tags).unwrap(),
            Value::Map(vec![
                ("tags".into(), Value::Set(vec!["a".into(), "b".into()])),
                ("fixed".into(), Value::FrozenSet(vec![1.into()])),
                // Without the marker serde cannot tell a set from a list.
                ("plain".into(), Value::List(vec![2.into()])),
                ("z".into(), Value::Complex(Complex::new(1.0, -1.0))),
            ])
        );
        assert_eq!(
            to_value(&AsSet(&vec![1u8])).unwrap(),
            Value::Set(vec![1.into()])
        );
    }

    #[test]
    fn scalars_and_wrappers() {
        #[derive(Serialize)]
        struct Marker;
        #[derive(Serialize)]
        struct Meters(f32);
        #[derive(Serialize)]
        struct Point(i32, i32);
        #[derive(Serialize)]
        enum Shape {
            Line(Point, Point),
        }
        assert_eq!(to_value(&()).unwrap(), Value::Null);
        assert_eq!(to_value(&Marker).unwrap(), Value::Null);
        assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
        assert_eq!(to_value(&Some(3u8)).unwrap(), Value::Int(3));
        assert_eq!(to_value(&'é').unwrap(), Value::from("é"));
        assert_eq!(to_value("text").unwrap(), Value::from("text"));
        assert_eq!(to_value(&Meters(0.5)).unwrap(), Value::Float(0.5));
        assert_eq!(
            to_value(&Point(1, -1)).unwrap(),
            Value::Tuple(vec![1.into(), (-1).into()])
        );
        assert_eq!(
            to_value(&(true, "x")).unwrap(),
            Value::Tuple(vec![true.into(), "x".into()])
        );
        assert_eq!(
            to_value(&[1.5, 2.5]).unwrap(),
            Value::Tuple(vec![1.5.into(), 2.5.into()])
        );
        assert_eq!(to_value(&vec![1]).unwrap(), Value::List(vec![1.into()]));
        let line = Shape::Line(Point(0, 0), Point(1, 1));
        let point = |x: i64| Value::Tuple(vec![x.into(), x.into()]);
        assert_eq!(
            to_value(&line).unwrap(),
            Value::Map(vec![(
                "Line".into(),
                Value::Tuple(vec![point(0), point(1)])
            )])
        );
    }

    #[test]
    fn a_value_serializes_to_itself() {
        let value = Value::Map(vec![
            (Value::Int(1), Value::Bytes(vec![1, 2])),
            ("list".into(), Value::List(vec![Value::Null, 1.5.into()])),
            (
                Value::Tuple(vec![1.into()]),
                Value::Set(vec![Value::FrozenSet(vec![]), Value::Tuple(vec![])]),
            ),
            (
                "numbers".into(),
                Value::List(vec![
                    Value::BigInt("-1267650600228229401496703205376".parse().unwrap()),
                    Value::BigInt("9".repeat(60).parse().unwrap()),
                    Value::Complex(Complex::new(0.5, f64::INFINITY)),
                ]),
            ),
        ]);
        assert_eq!(to_value(&value).unwrap(), value);
    }

    #[test]
    fn bytes_serialize_as_bytes() {
        let bytes = serde_bytes::ByteBuf::from(vec![0u8, 255]);
        assert_eq!(to_value(&bytes).unwrap(), Value::Bytes(vec![0, 255]));
    }
}
