//! msgpack (serializer id 4), as Pyro5 uses it: the Python `msgpack`
//! package with `use_bin_type=True`, so strings are `str` and bytes are
//! `bin`; integers and containers in their smallest encoding; floats as
//! float64. Tuples, sets and frozensets are arrays (they arrive as lists,
//! as they do in Pyro5). Pyro5's extension types carry what msgpack
//! lacks: 0x30 a complex number (two little-endian float64s), 0x31 an
//! integer beyond 64 bits (its decimal digits); its date types (0x32,
//! 0x33) are refused with an error.

use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::value::{BigInt, Complex, ValueRef};

use super::scatter::{self, Scatter};

/// Pyro5's msgpack extension type codes.
mod ext {
    /// A complex number: `struct.pack("dd", real, imag)`.
    pub const COMPLEX: i8 = 0x30;
    /// An integer beyond 64 bits: its decimal digits in ASCII.
    pub const BIG_INT: i8 = 0x31;
    /// A `datetime.datetime`.
    pub const DATETIME: i8 = 0x32;
    /// A `datetime.date`.
    pub const DATE: i8 = 0x33;
}

use super::serializer::{MAX_DEPTH, SerializeError, Serializer, id};

/// The msgpack serializer.
pub struct Msgpack;

impl Serializer for Msgpack {
    fn id(&self) -> u8 {
        id::MSGPACK
    }

    fn name(&self) -> &'static str {
        "msgpack"
    }

    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        write_value(out, value, 0)
    }

    /// `bin 8`, `bin 16` or `bin 32` whose bytes fill the payload.
    fn lone_bytes_header(&self, first: &[u8], total: usize) -> Option<usize> {
        let (&marker, rest) = first.split_first()?;
        let width = match marker {
            0xc4 => 1,
            0xc5 => 2,
            0xc6 => 4,
            _ => return None,
        };
        let len = rest
            .get(..width)?
            .iter()
            .fold(0usize, |len, &byte| (len << 8) | usize::from(byte));
        let header = 1 + width;
        (header.checked_add(len)? == total).then_some(header)
    }

    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError> {
        read_borrowed(data).map(|value| value.to_value())
    }
}

/// Reads a msgpack value with its strings and byte strings borrowed from
/// `data` (what [`Msgpack::deserialize`] copies out of it): a call's large
/// byte strings then go into the driver's arguments in one copy.
pub fn read_borrowed(data: &[u8]) -> Result<ValueRef<'_>, SerializeError> {
    let mut reader = Reader { data, at: 0 };
    let value = reader.value(0)?;
    if reader.at != data.len() {
        return Err(reader.error("unexpected bytes after the value"));
    }
    Ok(value)
}

fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<(u8, usize)>,
    markers: [u8; 3],
) -> Result<(), SerializeError> {
    match fix {
        Some((base, limit)) if len < limit => out.push(base | len as u8),
        _ if len < 256 && markers[0] != 0 => {
            out.push(markers[0]);
            out.push(len as u8);
        }
        _ if len < 65536 => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            let len = u32::try_from(len)
                .map_err(|_| SerializeError::new("value too large for msgpack"))?;
            out.push(markers[2]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), SerializeError> {
    if depth > MAX_DEPTH {
        return Err(SerializeError::new(format!(
            "value nested more than {MAX_DEPTH} deep"
        )));
    }
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => write_int(out, *i),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => {
            write_len(out, s.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb])?;
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.extend_from_slice(b);
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            write_len(out, items.len(), Some((0x90, 16)), [0, 0xdc, 0xdd])?;
            for item in items {
                write_value(out, item, depth + 1)?;
            }
        }
        Value::BigInt(n) => match u64::try_from(n) {
            // msgpack's uint64 holds what i64 cannot, up to 2**64-1.
            Ok(unsigned) => {
                out.push(0xcf);
                out.extend_from_slice(&unsigned.to_be_bytes());
            }
            Err(_) => write_ext(out, ext::BIG_INT, n.to_string().as_bytes())?,
        },
        Value::Complex(c) => {
            let mut data = [0u8; 16];
            data[..8].copy_from_slice(&c.re.to_le_bytes());
            data[8..].copy_from_slice(&c.im.to_le_bytes());
            write_ext(out, ext::COMPLEX, &data)?;
        }
        Value::Map(entries) => {
            write_len(out, entries.len(), Some((0x80, 16)), [0, 0xde, 0xdf])?;
            for (key, value) in entries {
                write_value(out, key, depth + 1)?;
                write_value(out, value, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Writes a driver's result, decoded from `source` with its byte strings
/// borrowed, as [`write_value`] writes the owned value (the same mapping,
/// kind by kind): byte strings of [`scatter::BORROW_FROM`] bytes or more
/// stay in `source`, referenced rather than copied.
pub fn write_scattered(
    out: &mut Scatter,
    source: &[u8],
    value: &ValueRef<'_>,
    depth: usize,
) -> Result<(), SerializeError> {
    if depth > MAX_DEPTH {
        return Err(SerializeError::new(format!(
            "value nested more than {MAX_DEPTH} deep"
        )));
    }
    match value {
        ValueRef::Bytes(b) if b.len() >= scatter::BORROW_FROM => {
            write_len(out.own(), b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.borrow(source, b);
        }
        ValueRef::List(items)
        | ValueRef::Tuple(items)
        | ValueRef::Set(items)
        | ValueRef::FrozenSet(items) => {
            write_len(out.own(), items.len(), Some((0x90, 16)), [0, 0xdc, 0xdd])?;
            for item in items {
                write_scattered(out, source, item, depth + 1)?;
            }
        }
        ValueRef::Map(entries) => {
            write_len(out.own(), entries.len(), Some((0x80, 16)), [0, 0xde, 0xdf])?;
            for (key, value) in entries {
                write_scattered(out, source, key, depth + 1)?;
                write_scattered(out, source, value, depth + 1)?;
            }
        }
        ValueRef::Null => out.own().push(0xc0),
        ValueRef::Bool(b) => write_value(out.own(), &Value::Bool(*b), depth)?,
        ValueRef::Int(i) => write_int(out.own(), *i),
        ValueRef::Float(f) => write_value(out.own(), &Value::Float(*f), depth)?,
        ValueRef::Str(s) => {
            write_len(out.own(), s.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb])?;
            out.own().extend_from_slice(s.as_bytes());
        }
        ValueRef::Bytes(b) => {
            write_len(out.own(), b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.own().extend_from_slice(b);
        }
        ValueRef::BigInt(n) => write_value(out.own(), &Value::BigInt(n.clone()), depth)?,
        ValueRef::Complex(c) => write_value(out.own(), &Value::Complex(*c), depth)?,
    }
    Ok(())
}

/// An extension value in its smallest form, as the Python package packs
/// `ExtType`: fixext for 1, 2, 4, 8 and 16 bytes, else ext 8/16/32.
fn write_ext(out: &mut Vec<u8>, code: i8, data: &[u8]) -> Result<(), SerializeError> {
    match data.len() {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        len => write_len(out, len, None, [0xc7, 0xc8, 0xc9])?,
    }
    out.push(code as u8);
    out.extend_from_slice(data);
    Ok(())
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        let u = i as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u < 256 {
            out.push(0xcc);
            out.push(u as u8);
        } else if u < 65536 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u < (1 << 32) {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.push(0xd0);
        out.push(i as i8 as u8);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, message: &str) -> SerializeError {
        SerializeError::new(format!(
            "invalid msgpack data at byte {}: {message}",
            self.at
        ))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], SerializeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error("truncated data"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, SerializeError> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, size: usize) -> Result<u64, SerializeError> {
        let bytes = self.take(size)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value(&mut self, depth: usize) -> Result<ValueRef<'a>, SerializeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} deep")));
        }
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => ValueRef::Int(i64::from(marker)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.string(usize::from(marker & 0x1f))?,
            0xc0 => ValueRef::Null,
            0xc2 => ValueRef::Bool(false),
            0xc3 => ValueRef::Bool(true),
            0xc4..=0xc6 => {
                let len = self.uint(1 << (marker - 0xc4))? as usize;
                ValueRef::Bytes(self.take(len)?)
            }
            0xc7..=0xc9 => {
                let len = self.uint(1 << (marker - 0xc7))? as usize;
                self.extension(len)?
            }
            0xd4..=0xd8 => self.extension(1 << (marker - 0xd4))?,
            0xca => ValueRef::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => ValueRef::Float(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => unsigned(self.uint(1 << (marker - 0xcc))?),
            0xd0 => ValueRef::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => ValueRef::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => ValueRef::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => ValueRef::Int(self.uint(8)? as i64),
            0xd9..=0xdb => {
                let len = self.uint(1 << (marker - 0xd9))? as usize;
                self.string(len)?
            }
            0xdc | 0xdd => {
                let len = self.uint(if marker == 0xdc { 2 } else { 4 })? as usize;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.uint(if marker == 0xde { 2 } else { 4 })? as usize;
                self.map(len, depth)?
            }
            0xe0..=0xff => ValueRef::Int(i64::from(marker as i8)),
            0xc1 => return Err(self.error("the reserved marker 0xc1")),
        })
    }

    /// An extension value of `len` data bytes: Pyro5's complex numbers and
    /// big integers.
    fn extension(&mut self, len: usize) -> Result<ValueRef<'a>, SerializeError> {
        let code = self.byte()? as i8;
        let data = self.take(len)?;
        match code {
            ext::COMPLEX if data.len() == 16 => {
                let part =
                    |bytes: &[u8]| f64::from_le_bytes(bytes.try_into().expect("eight bytes"));
                Ok(ValueRef::Complex(Complex {
                    re: part(&data[..8]),
                    im: part(&data[8..]),
                }))
            }
            ext::BIG_INT => std::str::from_utf8(data)
                .ok()
                .map(str::parse::<BigInt>)
                .map(|parsed| parsed.map(integer).map_err(|err| err.to_string()))
                .unwrap_or_else(|| Err("not ASCII digits".to_owned()))
                .map_err(|err| self.error(&format!("invalid big integer: {err}"))),
            ext::DATETIME | ext::DATE => Err(self.error(
                "msgpack date and datetime extensions are not supported (send them as ISO text)",
            )),
            other => Err(self.error(&format!(
                "unsupported msgpack extension type {other:#04x} with {} data bytes",
                data.len()
            ))),
        }
    }

    fn string(&mut self, len: usize) -> Result<ValueRef<'a>, SerializeError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(ValueRef::Str)
            .map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// Every element takes at least one byte: a length beyond what is left
    /// is refused before anything is allocated.
    fn check_count(&self, count: usize, bytes_each: usize) -> Result<(), SerializeError> {
        if count.saturating_mul(bytes_each) > self.data.len() - self.at {
            return Err(self.error("a length larger than the data"));
        }
        Ok(())
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<ValueRef<'a>, SerializeError> {
        self.check_count(len, 1)?;
        // Checked against what is left, but nested arrays could each claim
        // all of it: the capacity grows with what is really read.
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(ValueRef::List(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<ValueRef<'a>, SerializeError> {
        self.check_count(len, 2)?;
        let mut entries = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(ValueRef::Map(entries))
    }
}

/// A msgpack unsigned integer: beyond `i64`, a big integer.
fn unsigned(n: u64) -> ValueRef<'static> {
    match i64::try_from(n) {
        Ok(i) => ValueRef::Int(i),
        Err(_) => ValueRef::BigInt(BigInt::from(n)),
    }
}

/// A parsed big integer, as small a value as holds it.
fn integer(n: BigInt) -> ValueRef<'static> {
    match i64::try_from(&n) {
        Ok(i) => ValueRef::Int(i),
        Err(_) => ValueRef::BigInt(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &Value) -> Value {
        Msgpack
            .deserialize(&Msgpack.serialize(value).unwrap())
            .unwrap()
    }

    #[test]
    fn smallest_encodings_as_python_msgpack_writes_them() {
        let cases: &[(Value, &[u8])] = &[
            (Value::Int(3), &[0x03]),
            (Value::Int(-1), &[0xff]),
            (Value::Int(200), &[0xcc, 200]),
            (Value::Int(-200), &[0xd1, 0xff, 0x38]),
            (Value::Null, &[0xc0]),
            (Value::from("s"), &[0xa1, b's']),
            (Value::Bytes(vec![1]), &[0xc4, 1, 1]),
            (Value::Float(2.5), &[0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]),
        ];
        for (value, bytes) in cases {
            assert_eq!(Msgpack.serialize(value).unwrap(), *bytes, "{value}");
        }
        // kw(1, 2, 3, x=4) from capture_msgpack.txt.
        let call = crate::wire::call::test_payload(
            &Msgpack,
            "thing",
            "kw",
            &[1.into(), 2.into(), 3.into()],
            &[("x".into(), 4.into())],
        );
        assert_eq!(call, b"\x94\xa5thing\xa2kw\x93\x01\x02\x03\x81\xa1x\x04");
    }

    #[test]
    fn every_kind_round_trips() {
        for value in [
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(70_000),
            Value::Float(f64::NAN),
            Value::from("x".repeat(300)),
            Value::Bytes(vec![7; 70_000]),
            Value::List((0..20).map(Value::from).collect()),
            Value::Map(vec![
                (1.into(), "one".into()),
                ("k".into(), Value::List(vec![])),
            ]),
        ] {
            let back = round_trip(&value);
            match (&value, &back) {
                (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(back, value),
            }
        }
    }

    #[test]
    fn pyro5_extension_types_carry_big_integers_and_complex_numbers() {
        // What Pyro5's MsgpackSerializer writes (see tests/python).
        let two_to_70 = b"\xc7\x16\x311180591620717411303424";
        let big = Value::BigInt("1180591620717411303424".parse().unwrap());
        assert_eq!(Msgpack.deserialize(two_to_70).unwrap(), big);
        assert_eq!(Msgpack.serialize(&big).unwrap(), two_to_70);
        let one_two_j = b"\xd8\x30\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x00\x00\x00\x00\x00\x00\x40";
        let complex = Value::Complex(Complex::new(1.0, 2.0));
        assert_eq!(Msgpack.deserialize(one_two_j).unwrap(), complex);
        assert_eq!(Msgpack.serialize(&complex).unwrap(), one_two_j);
        let u64_max = [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let max = Value::BigInt(BigInt::from(u64::MAX));
        assert_eq!(Msgpack.deserialize(&u64_max).unwrap(), max);
        assert_eq!(Msgpack.serialize(&max).unwrap(), u64_max);
        let tuple = Value::Tuple(vec![1.into(), Value::Set(vec![2.into()])]);
        assert_eq!(Msgpack.serialize(&tuple).unwrap(), [0x92, 0x01, 0x91, 0x02]);
        // A small number in the big-integer extension is still an int.
        assert_eq!(Msgpack.deserialize(b"\xd4\x315").unwrap(), Value::Int(5));
    }

    #[test]
    fn nested_length_claims_do_not_reserve_memory_up_front() {
        // 128 nested arrays each claiming nearly the whole input: refused
        // (truncated) without reserving 128 times the input's worth.
        let mut data = Vec::new();
        for _ in 0..100 {
            data.extend_from_slice(&[0xdd, 0x00, 0x0f, 0xff, 0xff]);
        }
        data.resize(1 << 20, 0xc0);
        assert!(Msgpack.deserialize(&data).is_err());
    }

    #[test]
    fn unsupported_and_malformed_input_are_errors() {
        let date = Msgpack
            .deserialize(&[0xd7, 0x33, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap_err();
        assert!(date.to_string().contains("date"), "{date}");
        let unknown = Msgpack.deserialize(&[0xd4, 0x01, 0]).unwrap_err();
        assert!(unknown.to_string().contains("0x01"), "{unknown}");
        let short_complex = Msgpack.deserialize(&[0xd7, 0x30, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(short_complex.is_err());
        let bad_digits = Msgpack.deserialize(b"\xd5\x311x").unwrap_err();
        assert!(
            bad_digits.to_string().contains("big integer"),
            "{bad_digits}"
        );
        let huge = [&[0xc8, 0x13, 0x88, 0x31][..], &[b'9'; 5000]].concat();
        assert!(
            Msgpack
                .deserialize(&huge)
                .unwrap_err()
                .to_string()
                .contains("4300")
        );
        let hostile = Msgpack
            .deserialize(&[0xdd, 0xff, 0xff, 0xff, 0xff])
            .unwrap_err();
        assert!(
            hostile.to_string().contains("larger than the data"),
            "{hostile}"
        );
        assert!(
            Msgpack
                .deserialize(&[0x91; 10_000])
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
        let valid = crate::wire::call::test_payload(
            &Msgpack,
            "thing",
            "echo",
            &["é".into(), Value::Bytes(vec![1, 2]), 2.5.into()],
            &[],
        );
        for end in 0..valid.len() {
            assert!(Msgpack.deserialize(&valid[..end]).is_err(), "prefix {end}");
        }
        let mut state: u64 = 0x1357_9bdf_2468_ace0;
        for _ in 0..20_000 {
            let len = (state % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = Msgpack.deserialize(&bytes);
        }
    }

    #[test]
    fn a_scattered_result_is_written_as_its_value_is() {
        use pyrolab_plugin_api::value;
        let big = vec![9u8; 3 * scatter::BORROW_FROM];
        let result = Value::List(vec![
            Value::Bytes(big.clone()),
            Value::Map(vec![("x".into(), Value::Bytes(vec![1, 2, 3]))]),
            Value::Tuple(vec![Value::Int(-5), Value::Float(0.5), Value::Null]),
            Value::Set(vec![Value::Bool(true)]),
            Value::Str("µ".into()),
            Value::Complex(Complex { re: 1.0, im: -2.0 }),
            Value::BigInt("123456789012345678901234567890".parse().unwrap()),
            Value::Bytes(big),
        ]);
        let source = value::encode(&result);
        let borrowed = value::decode_borrowed(&source).unwrap();
        let mut scattered = Scatter::default();
        write_scattered(&mut scattered, &source, &borrowed, 0).unwrap();
        let mut expected = Vec::new();
        Msgpack.serialize_into(&result, &mut expected).unwrap();
        assert!(scattered.concat(&source) == expected);
        assert_eq!(scattered.len(), expected.len());
        // The two large byte strings are borrowed: own bytes, one, own
        // bytes, the other.
        assert_eq!(scattered.slices(&source).len(), 4);
    }
}
