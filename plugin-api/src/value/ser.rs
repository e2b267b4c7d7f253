//! Typed Rust values to [`Value`]: a `serde::Serializer` that builds a
//! `Value` directly, and `Value`'s own natural `Serialize` form.

use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, SerializeMap as _, SerializeSeq as _};

use super::{Value, ValueError};

/// Converts any `Serialize` value to a [`Value`].
///
/// Structs and maps become [`Value::Map`]s, sequences and tuples
/// [`Value::List`]s, `None` and `()` [`Value::Null`]. Enums are externally
/// tagged as in JSON: a unit variant is its name, any other variant a
/// one-entry map from its name to its content.
///
/// # Errors
///
/// When an integer is outside the `i64` range, or the type's own `Serialize`
/// raises an error.
pub fn to_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

impl ser::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        ValueError::new(msg.to_string())
    }
}

/// The natural form: `Value::Map` serializes as a map, `Value::Bytes` as
/// bytes, and so on, so a `Value` inside a typed struct converts as expected
/// (and `serde_json` prints it as plain JSON).
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
        }
    }
}

fn out_of_range(n: impl Display) -> ValueError {
    ValueError::new(format!(
        "integer {n} is out of range for a 64-bit signed integer"
    ))
}

struct ValueSerializer;

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
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| out_of_range(v))
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
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| out_of_range(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| out_of_range(v))
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
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
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
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
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
            items: SeqBuilder(Vec::with_capacity(len)),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0)),
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

struct SeqBuilder(Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::List(self.0))
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

struct VariantSeqBuilder {
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

struct MapBuilder {
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

struct VariantMapBuilder {
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
    fn integers_beyond_i64_are_refused() {
        let err = to_value(&u64::MAX).unwrap_err();
        assert!(err.message().contains("out of range"), "{err}");
        assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
    }

    #[test]
    fn every_integer_width_fits_or_is_refused() {
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&u32::MAX).unwrap(), Value::Int(u32::MAX.into()));
        assert_eq!(to_value(&-7i128).unwrap(), Value::Int(-7));
        assert_eq!(to_value(&7u128).unwrap(), Value::Int(7));
        let err = to_value(&i128::MIN).unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "integer {} is out of range for a 64-bit signed integer",
                i128::MIN
            )
        );
        assert!(to_value(&u128::MAX).is_err());
        assert_eq!(
            to_value(&u64::MAX).unwrap_err().message(),
            "integer 18446744073709551615 is out of range for a 64-bit signed integer"
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
            Value::List(vec![1.into(), (-1).into()])
        );
        assert_eq!(
            to_value(&(true, "x")).unwrap(),
            Value::List(vec![true.into(), "x".into()])
        );
        let line = Shape::Line(Point(0, 0), Point(1, 1));
        let point = |x: i64| Value::List(vec![x.into(), x.into()]);
        assert_eq!(
            to_value(&line).unwrap(),
            Value::Map(vec![("Line".into(), Value::List(vec![point(0), point(1)]))])
        );
    }

    #[test]
    fn a_value_serializes_to_itself() {
        let value = Value::Map(vec![
            (Value::Int(1), Value::Bytes(vec![1, 2])),
            ("list".into(), Value::List(vec![Value::Null, 1.5.into()])),
        ]);
        assert_eq!(to_value(&value).unwrap(), value);
    }

    #[test]
    fn bytes_serialize_as_bytes() {
        let bytes = serde_bytes::ByteBuf::from(vec![0u8, 255]);
        assert_eq!(to_value(&bytes).unwrap(), Value::Bytes(vec![0, 255]));
    }
}
