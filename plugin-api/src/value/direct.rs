//! Typed Rust values straight to the wire encoding: a `serde::Serializer`
//! that writes the bytes `encode_into(&to_value(x)?, out)` would, without
//! building the [`Value`] in between (which would copy every byte string
//! once more, into a `Value::Bytes`).
//!
//! It mirrors [`ValueSerializer`] case by case (see `ser.rs`), so that the
//! two can never disagree on a shape:
//!
//! - Lengths serde announces are only hints, as they are to
//!   `ValueSerializer` (which counts what it is given): a container's count
//!   is written from the hint, or 0 when there is none, and patched at its
//!   end if the items counted differ, shifting its content when the varint
//!   changes width (once, for an unannounced sequence of 128 items or more).
//! - Kinds whose content must be inspected go through `ValueSerializer`
//!   and are encoded from the small `Value` it builds: big integers and
//!   complex numbers (their markers, and `u64`/`i128`/`u128` outside the
//!   `i64` range), and, inside a set marker, anything that is not a
//!   sequence (which ends as the same error `to_value` raises).
//! - A first pass of the same serializer measures the output, so that the
//!   buffer grows once, to the exact size, for a value of at most
//!   [`MEASURED_ELEMENTS`] elements. Measuring costs about as much as
//!   writing, and saves the buffer's regrowth, which matters for a few
//!   large byte strings but not for many small items: beyond that many
//!   elements, the measuring pass gives up, and the buffer grows as it is
//!   written.

use serde::Serialize;
use serde::ser;

use super::ser::{
    MapBuilder, ValueSerializer, VariantMapBuilder, VariantSeqBuilder, marked, marker,
};
use super::wire::{self, tag};
use super::{Value, ValueError};

/// How many elements (items of sequences; keys, values and fields of maps
/// and structs; at any depth) a value may have for [`encode_serialize`] to
/// measure it before writing it.
const MEASURED_ELEMENTS: usize = 256;

/// Appends the encoding of a `Serialize` value to `out`: the same bytes as
/// `encode_into(&to_value(value)?, out)`, written straight from serde.
///
/// No [`Value`] is built, so a byte string (a [`Bytes`](crate::Bytes)
/// field, say) is copied once, into `out`, instead of twice. A value of a
/// few hundred elements or fewer, however large its byte strings, is
/// serialized twice: once to measure its encoding, so that `out` grows
/// once, to the exact size, and once to write it. A larger one is measured
/// only that far, and `out` grows as needed while it is written. (A
/// `Serialize` implementation that writes something else the second time
/// still gets a correct encoding of what it wrote; only `out` may grow
/// again.)
///
/// # Errors
///
/// Exactly where [`to_value`](super::to_value) fails, with the same
/// message. `out` is then left as it was.
pub fn encode_serialize<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), ValueError> {
    match measure(value) {
        Measured::Complete(size) => out.reserve_exact(size),
        // At least what was measured before giving up.
        Measured::Partial(size) => out.reserve(size),
        Measured::Failed(err) => return Err(err),
    }
    let start = out.len();
    let written = value.serialize(Encoder {
        out: &mut Out::Write(&mut *out),
    });
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// A sink for [`encode_serialize_in_pieces`]: given what was encoded
/// since the last piece, and a large byte string to follow it (possibly
/// empty), it takes both, in that order.
pub type PieceSink<'s> = dyn FnMut(&[u8], &[u8]) -> Result<(), ValueError> + 's;

/// What [`measure_for_pieces`] found: the value's encoding can be handed
/// over in pieces, and this is its size and the tag it begins with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// The exact size of the encoding.
    pub size: usize,
    /// Its first byte: the kind of the value.
    pub first: u8,
}

/// Measures `value` for [`encode_serialize_in_pieces`]: `Some` when its
/// encoding is written front to back with nothing to patch afterwards (no
/// count that serde did not announce, at most a few hundred elements), so
/// that what is handed over never needs changing.
pub fn measure_for_pieces<T: Serialize + ?Sized>(value: &T) -> Option<Pieces> {
    let mut measuring = Out::Measure {
        size: 0,
        peak: 0,
        elements: 0,
        patched: false,
        first: None,
    };
    value
        .serialize(Encoder {
            out: &mut measuring,
        })
        .ok()?;
    let Out::Measure {
        size,
        elements,
        patched,
        first,
        ..
    } = measuring
    else {
        unreachable!("measuring")
    };
    (elements <= MEASURED_ELEMENTS && !patched).then_some(Pieces {
        size,
        first: first?,
    })
}

/// Encodes `value` as [`encode_serialize`] would, handing the encoding to
/// `sink` in pieces: byte strings of `large` bytes or more are handed over
/// where they are, never copied, each after what was encoded before it.
/// For a value [`measure_for_pieces`] accepted; returns the bytes handed
/// over.
///
/// # Errors
///
/// The sink's error, or, if the value serialized differently from when it
/// was measured so that something already handed over would have to
/// change, an error saying so (what was handed over is then not a valid
/// encoding).
pub fn encode_serialize_in_pieces<T: Serialize + ?Sized>(
    value: &T,
    large: usize,
    sink: &mut PieceSink<'_>,
) -> Result<usize, ValueError> {
    let mut buffer = Vec::with_capacity(256);
    let mut out = Out::Pieces(InPieces {
        buffer: &mut buffer,
        handed: 0,
        large,
        sink,
        failed: None,
    });
    let written = value.serialize(Encoder { out: &mut out });
    let Out::Pieces(mut pieces) = out else {
        unreachable!("in pieces")
    };
    if let Some(err) = pieces.failed.take() {
        return Err(err);
    }
    written?;
    pieces.hand_over(&[])?;
    Ok(pieces.handed)
}

/// The state of [`encode_serialize_in_pieces`].
struct InPieces<'b> {
    /// What was encoded since the last piece.
    buffer: &'b mut Vec<u8>,
    /// How many bytes the sink has taken.
    handed: usize,
    /// Byte strings this long or longer are handed over where they are.
    large: usize,
    sink: &'b mut PieceSink<'b>,
    /// The first failure: the sink's, or a change to what it had taken.
    failed: Option<ValueError>,
}

impl InPieces<'_> {
    fn hand_over(&mut self, large: &[u8]) -> Result<(), ValueError> {
        (self.sink)(self.buffer, large)?;
        self.handed += self.buffer.len() + large.len();
        self.buffer.clear();
        Ok(())
    }

    /// The buffer position of `at`, an offset in the whole encoding, if it
    /// was not handed over yet.
    fn position(&mut self, at: usize) -> Option<usize> {
        let position = at.checked_sub(self.handed);
        if position.is_none() && self.failed.is_none() {
            self.failed = Some(ValueError::new(
                "the value serialized differently from when it was measured",
            ));
        }
        position
    }
}

/// What the measuring pass found.
#[derive(Debug, PartialEq)]
enum Measured {
    /// The size of the encoding: the most the buffer holds while it is
    /// written (more than the final size where something written is taken
    /// back: a count that shrank, or a map key without a value).
    Complete(usize),
    /// What the first [`MEASURED_ELEMENTS`] elements take: the value has
    /// more.
    Partial(usize),
    /// The error serializing the value raises.
    Failed(ValueError),
}

fn measure<T: Serialize + ?Sized>(value: &T) -> Measured {
    let mut measuring = Out::Measure {
        size: 0,
        peak: 0,
        elements: 0,
        patched: false,
        first: None,
    };
    let result = value.serialize(Encoder {
        out: &mut measuring,
    });
    let Out::Measure {
        size,
        peak,
        elements,
        ..
    } = measuring
    else {
        unreachable!("measuring")
    };
    let size = size.max(peak);
    if elements > MEASURED_ELEMENTS {
        // Whatever the result: a `Serialize` implementation may have
        // caught the error that stopped the measuring, or replaced it.
        return Measured::Partial(size);
    }
    match result {
        Ok(()) => Measured::Complete(size),
        Err(err) => Measured::Failed(err),
    }
}

/// Where the encoder writes: nowhere, counting bytes (the measuring pass),
/// to the output buffer, or to a sink in pieces.
enum Out<'b> {
    /// The size so far, the largest it was before shrinking, and how many
    /// elements were begun; whether anything written had to be changed
    /// afterwards, and the first byte.
    Measure {
        size: usize,
        peak: usize,
        elements: usize,
        patched: bool,
        first: Option<u8>,
    },
    Write(&'b mut Vec<u8>),
    Pieces(InPieces<'b>),
}

impl Out<'_> {
    /// The position reached: in the buffer, or in the measured encoding.
    fn len(&self) -> usize {
        match self {
            Out::Measure { size, .. } => *size,
            Out::Write(buf) => buf.len(),
            Out::Pieces(pieces) => pieces.handed + pieces.buffer.len(),
        }
    }

    /// Counts an element about to be serialized; when measuring, refuses
    /// one beyond [`MEASURED_ELEMENTS`].
    fn element(&mut self) -> Result<(), ValueError> {
        match self {
            Out::Measure { elements, .. } => {
                *elements += 1;
                if *elements > MEASURED_ELEMENTS {
                    return Err(ValueError::new("too many elements to measure"));
                }
                Ok(())
            }
            Out::Write(_) | Out::Pieces(_) => Ok(()),
        }
    }

    fn push(&mut self, byte: u8) {
        match self {
            Out::Measure { size, first, .. } => {
                first.get_or_insert(byte);
                *size += 1;
            }
            Out::Write(buf) => buf.push(byte),
            Out::Pieces(pieces) => pieces.buffer.push(byte),
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        match self {
            Out::Measure { size, .. } => *size += bytes.len(),
            Out::Write(buf) => buf.extend_from_slice(bytes),
            Out::Pieces(pieces) if bytes.len() >= pieces.large => {
                if pieces.failed.is_none()
                    && let Err(err) = pieces.hand_over(bytes)
                {
                    pieces.failed = Some(err);
                }
            }
            Out::Pieces(pieces) => pieces.buffer.extend_from_slice(bytes),
        }
    }

    fn varint(&mut self, n: u64) {
        match self {
            Out::Measure { size, .. } => *size += wire::varint_len(n),
            Out::Write(buf) => wire::push_varint(buf, n),
            Out::Pieces(pieces) => wire::push_varint(pieces.buffer, n),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Out::Measure {
                size,
                peak,
                patched,
                ..
            } => {
                *peak = (*peak).max(*size);
                *size = len;
                *patched = true;
            }
            Out::Write(buf) => buf.truncate(len),
            Out::Pieces(pieces) => {
                if let Some(at) = pieces.position(len) {
                    pieces.buffer.truncate(at);
                }
            }
        }
    }

    /// A value built by `ValueSerializer`, encoded as `encode_into` would.
    fn value(&mut self, value: &Value) {
        match self {
            Out::Measure { size, first, .. } => {
                let mut encoded = Vec::new();
                if first.is_none() {
                    wire::write(value, &mut encoded);
                    *first = encoded.first().copied();
                }
                *size += wire::encoded_len(value, 0);
            }
            Out::Write(buf) => wire::write(value, buf),
            Out::Pieces(pieces) => wire::write(value, pieces.buffer),
        }
    }

    fn null(&mut self) {
        self.push(tag::NULL);
    }

    fn int(&mut self, i: i64) {
        self.push(tag::INT);
        self.varint(wire::zigzag(i));
    }

    fn float(&mut self, f: f64) {
        self.push(tag::FLOAT);
        self.extend(&f.to_le_bytes());
    }

    fn bytes(&mut self, kind: u8, bytes: &[u8]) {
        self.push(kind);
        self.varint(bytes.len() as u64);
        self.extend(bytes);
    }

    fn str(&mut self, text: &str) {
        self.bytes(tag::STR, text.as_bytes());
    }

    /// The one-entry map an enum variant with content is: its name is the
    /// key, and the content follows.
    fn variant(&mut self, variant: &str) {
        self.push(tag::MAP);
        self.varint(1);
        self.str(variant);
    }

    /// Rewrites the count at `at` (written as `written`) as `actual`,
    /// moving what follows when the varint's width changes.
    fn fix_count(&mut self, at: usize, written: u64, actual: u64) {
        if written == actual {
            return;
        }
        let (old, new) = (wire::varint_len(written), wire::varint_len(actual));
        match self {
            Out::Measure {
                size,
                peak,
                patched,
                ..
            } => {
                *peak = (*peak).max(*size);
                *size = *size - old + new;
                *patched = true;
            }
            Out::Write(buf) => patch_count(buf, at, old, new, actual),
            Out::Pieces(pieces) => {
                if let Some(at) = pieces.position(at) {
                    patch_count(pieces.buffer, at, old, new, actual);
                }
            }
        }
    }
}

/// Rewrites the `old`-byte count at `at` in `buf` as `actual`, `new`
/// bytes wide, moving what follows when the width changes.
fn patch_count(buf: &mut Vec<u8>, at: usize, old: usize, new: usize, actual: u64) {
    let tail = at + old;
    if new > old {
        let end = buf.len();
        buf.resize(end + (new - old), 0);
        buf.copy_within(tail..end, at + new);
    } else if new < old {
        buf.copy_within(tail.., at + new);
        buf.truncate(buf.len() - (old - new));
    }
    let mut n = actual;
    for byte in &mut buf[at..at + new] {
        *byte = if n >= 0x80 { n as u8 | 0x80 } else { n as u8 };
        n >>= 7;
    }
}

/// The serializer: what `ValueSerializer` builds, encoded as it goes.
struct Encoder<'o, 'b> {
    out: &'o mut Out<'b>,
}

impl<'o, 'b> ser::Serializer for Encoder<'o, 'b> {
    type Ok = ();
    type Error = ValueError;
    type SerializeSeq = Items<'o, 'b>;
    type SerializeTuple = Items<'o, 'b>;
    type SerializeTupleStruct = Items<'o, 'b>;
    type SerializeTupleVariant = Items<'o, 'b>;
    type SerializeMap = Entries<'o, 'b>;
    type SerializeStruct = Entries<'o, 'b>;
    type SerializeStructVariant = Entries<'o, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), ValueError> {
        self.out.push(tag::BOOL);
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), ValueError> {
        self.out.int(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), ValueError> {
        match i64::try_from(v) {
            Ok(small) => self.out.int(small),
            Err(_) => self.out.value(&Value::from(v)),
        }
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), ValueError> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), ValueError> {
        match i64::try_from(v) {
            Ok(small) => self.out.int(small),
            Err(_) => self.out.value(&Value::from(v)),
        }
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), ValueError> {
        match i64::try_from(v) {
            Ok(small) => self.out.int(small),
            Err(_) => self.out.value(&Value::from(v)),
        }
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), ValueError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), ValueError> {
        self.out.float(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), ValueError> {
        self.out.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), ValueError> {
        self.out.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), ValueError> {
        self.out.bytes(tag::BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), ValueError> {
        self.out.null();
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), ValueError> {
        self.out.null();
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), ValueError> {
        self.out.null();
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), ValueError> {
        self.out.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        match name {
            marker::SET => value.serialize(SetContent {
                out: self.out,
                kind: tag::SET,
                name,
            }),
            marker::FROZENSET => value.serialize(SetContent {
                out: self.out,
                kind: tag::FROZENSET,
                name,
            }),
            marker::BIGINT | marker::COMPLEX => {
                let built = ValueSerializer.serialize_newtype_struct(name, value)?;
                self.out.value(&built);
                Ok(())
            }
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.out.variant(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, tag::LIST, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, tag::TUPLE, len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, tag::TUPLE, len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Items<'o, 'b>, ValueError> {
        self.out.variant(variant);
        Ok(Items::start(self.out, tag::TUPLE, len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Entries<'o, 'b>, ValueError> {
        Ok(Entries::start(self.out, len.unwrap_or(0)))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Entries<'o, 'b>, ValueError> {
        Ok(Entries::start(self.out, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Entries<'o, 'b>, ValueError> {
        self.out.variant(variant);
        Ok(Entries::start(self.out, len))
    }
}

/// A list, tuple or set being written: its count is patched at the end if
/// the items differ from the announced length.
struct Items<'o, 'b> {
    out: &'o mut Out<'b>,
    /// Where the count is.
    at: usize,
    /// The count written there.
    written: u64,
    /// The items written so far.
    count: u64,
}

impl<'o, 'b> Items<'o, 'b> {
    fn start(out: &'o mut Out<'b>, kind: u8, len: usize) -> Self {
        out.push(kind);
        let at = out.len();
        let written = len as u64;
        out.varint(written);
        Items {
            out,
            at,
            written,
            count: 0,
        }
    }

    fn item<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.out.element()?;
        value.serialize(Encoder {
            out: &mut *self.out,
        })?;
        self.count += 1;
        Ok(())
    }

    fn finish(self) -> Result<(), ValueError> {
        self.out.fix_count(self.at, self.written, self.count);
        Ok(())
    }
}

impl ser::SerializeSeq for Items<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.item(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Items<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.item(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Items<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.item(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Items<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.item(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

/// A map or struct being written, counted like [`Items`].
struct Entries<'o, 'b> {
    out: &'o mut Out<'b>,
    at: usize,
    written: u64,
    count: u64,
    /// Where a key waiting for its value starts. Like `ValueSerializer`,
    /// a key followed by another key, or by the end, is dropped.
    key_at: Option<usize>,
}

impl<'o, 'b> Entries<'o, 'b> {
    fn start(out: &'o mut Out<'b>, len: usize) -> Self {
        out.push(tag::MAP);
        let at = out.len();
        let written = len as u64;
        out.varint(written);
        Entries {
            out,
            at,
            written,
            count: 0,
            key_at: None,
        }
    }

    fn field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.out.element()?;
        self.out.str(key);
        value.serialize(Encoder {
            out: &mut *self.out,
        })?;
        self.count += 1;
        Ok(())
    }

    fn finish(self) -> Result<(), ValueError> {
        if let Some(key_at) = self.key_at {
            self.out.truncate(key_at);
        }
        self.out.fix_count(self.at, self.written, self.count);
        Ok(())
    }
}

impl ser::SerializeMap for Entries<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ValueError> {
        self.out.element()?;
        if let Some(key_at) = self.key_at.take() {
            self.out.truncate(key_at);
        }
        let key_at = self.out.len();
        key.serialize(Encoder {
            out: &mut *self.out,
        })?;
        self.key_at = Some(key_at);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        if self.key_at.take().is_none() {
            return Err(ValueError::new("map value serialized before its key"));
        }
        self.out.element()?;
        value.serialize(Encoder {
            out: &mut *self.out,
        })?;
        self.count += 1;
        Ok(())
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Entries<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Entries<'_, '_> {
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.finish()
    }
}

/// The content of a set marker ([`as_set`](super::as_set),
/// [`as_frozenset`](super::as_frozenset)): a sequence becomes a set of
/// kind `kind`; anything else is built as a `Value` and handed to
/// `marked`, which refuses it as `to_value` does (`name` is the innermost
/// set marker, whose message `to_value` reports).
struct SetContent<'o, 'b> {
    out: &'o mut Out<'b>,
    kind: u8,
    name: &'static str,
}

impl SetContent<'_, '_> {
    fn built(self, content: Result<Value, ValueError>) -> Result<(), ValueError> {
        let value = marked(self.name, content?)?;
        self.out.value(&value);
        Ok(())
    }
}

impl<'o, 'b> ser::Serializer for SetContent<'o, 'b> {
    type Ok = ();
    type Error = ValueError;
    type SerializeSeq = Items<'o, 'b>;
    type SerializeTuple = Items<'o, 'b>;
    type SerializeTupleStruct = Items<'o, 'b>;
    type SerializeTupleVariant = Marked<'o, 'b, VariantSeqBuilder>;
    type SerializeMap = Marked<'o, 'b, MapBuilder>;
    type SerializeStruct = Marked<'o, 'b, MapBuilder>;
    type SerializeStructVariant = Marked<'o, 'b, VariantMapBuilder>;

    fn serialize_bool(self, v: bool) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_i8(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_i16(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_i32(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_i64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_i128(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_u8(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_u16(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_u32(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_u64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_u128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_f32(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_f64(v))
    }
    fn serialize_char(self, v: char) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_char(v))
    }
    fn serialize_str(self, v: &str) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_str(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_bytes(v))
    }
    fn serialize_none(self) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_none())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_unit())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_unit_struct(name))
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_unit_variant(name, index, variant))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        match name {
            // A set of a set: the outer marker's kind, the inner one's
            // message if the content is not a sequence after all.
            marker::SET | marker::FROZENSET => value.serialize(SetContent { name, ..self }),
            marker::BIGINT | marker::COMPLEX => {
                self.built(ValueSerializer.serialize_newtype_struct(name, value))
            }
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.built(ValueSerializer.serialize_newtype_variant(name, index, variant, value))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, self.kind, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, self.kind, len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Items<'o, 'b>, ValueError> {
        Ok(Items::start(self.out, self.kind, len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        let builder = ValueSerializer.serialize_tuple_variant(name, index, variant, len)?;
        Ok(self.marked(builder))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        let builder = ValueSerializer.serialize_map(len)?;
        Ok(self.marked(builder))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        let builder = ValueSerializer.serialize_struct(name, len)?;
        Ok(self.marked(builder))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        let builder = ValueSerializer.serialize_struct_variant(name, index, variant, len)?;
        Ok(self.marked(builder))
    }
}

impl<'o, 'b> SetContent<'o, 'b> {
    fn marked<B>(self, builder: B) -> Marked<'o, 'b, B> {
        Marked {
            builder,
            content: self,
        }
    }
}

/// A compound that is not a sequence, inside a set marker: built by
/// `ValueSerializer`, then handed to `marked`.
struct Marked<'o, 'b, B> {
    builder: B,
    content: SetContent<'o, 'b>,
}

impl<B> ser::SerializeMap for Marked<'_, '_, B>
where
    B: ser::SerializeMap<Ok = Value, Error = ValueError>,
{
    type Ok = ();
    type Error = ValueError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ValueError> {
        self.builder.serialize_key(key)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.builder.serialize_value(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.content.built(self.builder.end())
    }
}

impl<B> ser::SerializeStruct for Marked<'_, '_, B>
where
    B: ser::SerializeStruct<Ok = Value, Error = ValueError>,
{
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.builder.serialize_field(key, value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.content.built(self.builder.end())
    }
}

impl<B> ser::SerializeTupleVariant for Marked<'_, '_, B>
where
    B: ser::SerializeTupleVariant<Ok = Value, Error = ValueError>,
{
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ValueError> {
        self.builder.serialize_field(value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.content.built(self.builder.end())
    }
}

impl<B> ser::SerializeStructVariant for Marked<'_, '_, B>
where
    B: ser::SerializeStructVariant<Ok = Value, Error = ValueError>,
{
    type Ok = ();
    type Error = ValueError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.builder.serialize_field(key, value)
    }
    fn end(self) -> Result<(), ValueError> {
        self.content.built(self.builder.end())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::ser::{self, SerializeMap as _, SerializeSeq as _, SerializeStruct as _};
    use serde_bytes::{ByteBuf, Bytes};

    use super::{
        MEASURED_ELEMENTS, Measured, encode_serialize, encode_serialize_in_pieces, measure,
        measure_for_pieces, wire::tag,
    };
    use crate::value::{AsSet, BigInt, Complex, Value, as_frozenset, as_set, encode, to_value};

    /// What `encode_serialize` must match: `encode(&to_value(x)?)`.
    fn reference<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
        to_value(value)
            .map(|v| encode(&v))
            .map_err(|e| e.message().to_owned())
    }

    /// Encodes `value` directly, into a fresh buffer and after a prefix,
    /// and checks both against [`reference`]: the same bytes, or the same
    /// error with the buffer left as it was. Returns the bytes.
    #[track_caller]
    fn same<T: Serialize + ?Sized + Debug>(value: &T) -> Result<Vec<u8>, String> {
        same_sized(value, true)
    }

    /// As [`same`], for a value whose encoding takes back bytes it wrote
    /// (a count that shrinks, a key without a value): the buffer is sized
    /// for the most it held, not for what is left.
    #[track_caller]
    fn same_taken_back<T: Serialize + ?Sized + Debug>(value: &T) -> Vec<u8> {
        same_sized(value, false).unwrap_or_else(|err| panic!("{value:?}: {err}"))
    }

    #[track_caller]
    fn same_sized<T: Serialize + ?Sized + Debug>(
        value: &T,
        exact: bool,
    ) -> Result<Vec<u8>, String> {
        let expected = reference(value);
        let measured = measure(value);
        let mut fresh = Vec::new();
        let direct = encode_serialize(value, &mut fresh).map_err(|e| e.message().to_owned());
        match (&direct, &expected) {
            (Ok(()), Ok(bytes)) => {
                assert!(fresh == *bytes, "{value:?}: encodings differ");
                match measured {
                    // Measured exactly: allocated once, to the size.
                    Measured::Complete(size) => {
                        assert_eq!(fresh.capacity(), size, "{value:?}");
                        if exact {
                            assert_eq!(size, fresh.len(), "{value:?}");
                        } else {
                            assert!(size >= fresh.len(), "{value:?}");
                        }
                    }
                    Measured::Partial(_) => {}
                    Measured::Failed(err) => panic!("{value:?}: measuring failed: {err}"),
                }
            }
            (Err(direct), Err(expected)) => {
                assert_eq!(direct, expected, "{value:?}");
                assert!(fresh.is_empty(), "{value:?}: output left after an error");
                match measured {
                    Measured::Failed(err) => assert_eq!(err.message(), expected),
                    Measured::Partial(_) => {}
                    Measured::Complete(_) => panic!("{value:?}: measured, but failed"),
                }
            }
            _ => panic!("{value:?}: encode_serialize gave {direct:?}, to_value {expected:?}"),
        }
        let prefix = b"header".to_vec();
        let mut framed = prefix.clone();
        let again = encode_serialize(value, &mut framed);
        match &expected {
            Ok(bytes) => {
                assert!(again.is_ok(), "{value:?}");
                assert_eq!(framed[..prefix.len()], prefix[..]);
                assert!(
                    framed[prefix.len()..] == bytes[..],
                    "{value:?} after a prefix"
                );
            }
            Err(_) => {
                assert!(again.is_err(), "{value:?}");
                assert_eq!(framed, prefix, "{value:?}: prefix disturbed by an error");
            }
        }
        expected
    }

    #[track_caller]
    fn same_ok<T: Serialize + ?Sized + Debug>(value: &T) -> Vec<u8> {
        same(value).unwrap_or_else(|err| panic!("{value:?}: {err}"))
    }

    #[track_caller]
    fn same_err<T: Serialize + ?Sized + Debug>(value: &T) -> String {
        match same(value) {
            Ok(_) => panic!("{value:?} encoded, but an error was expected"),
            Err(err) => err,
        }
    }

    /// What the `#[service]` macro wraps a set result in ([`AsSet`]),
    /// printable.
    struct Set<'a, T: ?Sized>(&'a T);

    impl<T: Serialize + ?Sized> Serialize for Set<'_, T> {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            AsSet(self.0).serialize(serializer)
        }
    }

    impl<T: ?Sized> Debug for Set<'_, T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Set(..)")
        }
    }

    fn set<T: ?Sized>(items: &T) -> Set<'_, T> {
        Set(items)
    }

    #[derive(Serialize, Debug)]
    struct Unit;

    #[derive(Serialize, Debug)]
    struct Meters(f32);

    #[derive(Serialize, Debug)]
    struct Named(Vec<u8>);

    #[derive(Serialize, Debug)]
    struct Point(i32, i32);

    #[derive(Serialize, Debug)]
    struct Empty {}

    #[derive(Serialize, Debug)]
    enum Mode {
        Idle,
        Sweep(f64),
        Pair(u8, String),
        Window {
            start: u32,
            stop: u32,
        },
        Nothing(),
        NoFields {},
        Wrapped(Point),
        Deep(Box<Mode>),
        #[serde(rename = "renamed-variant")]
        Renamed,
    }

    #[derive(Serialize, Debug)]
    #[serde(tag = "type")]
    enum Internal {
        Start { at: f64 },
        Stop,
        Inner(Window),
    }

    #[derive(Serialize, Debug)]
    #[serde(tag = "t", content = "c")]
    enum Adjacent {
        Num(i64),
        Unit,
        Both(u8, u8),
    }

    #[derive(Serialize, Debug)]
    #[serde(untagged)]
    enum Untagged {
        Int(i64),
        Text(String),
        Pair(u8, u8),
        Nothing,
    }

    #[derive(Serialize, Debug)]
    struct Window {
        start: u32,
        stop: u32,
    }

    #[derive(Serialize, Debug)]
    struct Laser {
        name: String,
        power: f64,
        channels: Vec<u8>,
        note: Option<String>,
        modes: Vec<Mode>,
        #[serde(rename = "wavelength-nm")]
        wavelength: f32,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        #[serde(skip)]
        _hidden: u8,
        raw: ByteBuf,
        value: Value,
        maybe: Option<Value>,
        values: Vec<Value>,
        boxed: Box<Value>,
        #[serde(serialize_with = "as_set")]
        tags: BTreeSet<&'static str>,
        #[serde(serialize_with = "as_frozenset")]
        fixed: Vec<u8>,
        plain: BTreeSet<u8>,
        z: Complex,
        big: BigInt,
        window: Window,
    }

    #[derive(Serialize, Debug)]
    struct Flattened {
        id: u32,
        #[serde(flatten)]
        window: Window,
        #[serde(flatten)]
        extra: BTreeMap<String, Value>,
    }

    fn laser() -> Laser {
        Laser {
            name: "TSL550 ünïcode ✓".into(),
            power: 1.5,
            channels: vec![1, 2, 255],
            note: None,
            modes: vec![
                Mode::Idle,
                Mode::Sweep(2.0),
                Mode::Pair(7, "x".into()),
                Mode::Window { start: 1, stop: 2 },
                Mode::Nothing(),
                Mode::NoFields {},
                Mode::Wrapped(Point(3, -4)),
                Mode::Deep(Box::new(Mode::Deep(Box::new(Mode::Idle)))),
                Mode::Renamed,
            ],
            wavelength: 1550.5,
            skipped: None,
            _hidden: 9,
            raw: ByteBuf::from(vec![0, 1, 2, 255]),
            value: every_kind(),
            maybe: Some(Value::Bytes(vec![7; 300])),
            values: vec![Value::Null, Value::Set(vec![1.into()])],
            boxed: Box::new(Value::Tuple(vec![])),
            tags: ["b", "a"].into(),
            fixed: vec![1, 2],
            plain: [3].into(),
            z: Complex::new(1.0, -1.0),
            big: "-123456789012345678901234567890".parse().unwrap(),
            window: Window { start: 5, stop: 6 },
        }
    }

    /// Every kind of `Value`, nested, including the ones `to_value`
    /// normalizes (a small `BigInt` becomes an `Int`).
    fn every_kind() -> Value {
        Value::Map(vec![
            ("null".into(), Value::Null),
            ("bools".into(), Value::List(vec![true.into(), false.into()])),
            (
                "ints".into(),
                Value::List(vec![
                    Value::Int(i64::MIN),
                    Value::Int(i64::MAX),
                    Value::Int(0),
                    Value::Int(-64),
                    Value::Int(64),
                ]),
            ),
            (
                "floats".into(),
                Value::Tuple(vec![
                    Value::Float(f64::INFINITY),
                    Value::Float(f64::NEG_INFINITY),
                    Value::Float(-0.0),
                    Value::Float(f64::NAN),
                    Value::Float(f64::MIN_POSITIVE),
                ]),
            ),
            ("str".into(), "ünïcode 😀".into()),
            ("empty".into(), "".into()),
            ("bytes".into(), Value::Bytes(vec![0, 1, 2, 255])),
            (
                Value::Int(7),
                Value::List(vec![Value::List(vec![]), Value::Map(vec![])]),
            ),
            (
                Value::Tuple(vec![1.into(), "tuple key".into()]),
                Value::Set(vec![Value::FrozenSet(vec![2.into()]), Value::Tuple(vec![])]),
            ),
            (Value::Null, Value::FrozenSet(vec![Value::Set(vec![])])),
            (
                "numbers".into(),
                Value::List(vec![
                    Value::BigInt("1180591620717411303424".parse().unwrap()),
                    Value::BigInt("-1267650600228229401496703205376".parse().unwrap()),
                    Value::BigInt("9".repeat(200).parse().unwrap()),
                    // Not normalized: to_value makes an Int of it.
                    Value::BigInt(BigInt::from(3)),
                    Value::BigInt(BigInt::from(u64::MAX)),
                    Value::Complex(Complex::new(1.0, 2.0)),
                    Value::Complex(Complex::new(f64::INFINITY, -0.0)),
                ]),
            ),
        ])
    }

    #[test]
    fn scalars_encode_as_to_value_would() {
        same_ok(&());
        same_ok(&true);
        same_ok(&false);
        for i in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            i64::MIN,
            i64::MAX,
        ] {
            same_ok(&i);
        }
        same_ok(&i8::MIN);
        same_ok(&i16::MAX);
        same_ok(&i32::MIN);
        same_ok(&0u8);
        same_ok(&u8::MAX);
        same_ok(&u16::MAX);
        same_ok(&u32::MAX);
        for u in [
            0u64,
            127,
            128,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ] {
            same_ok(&u);
        }
        for i in [
            0i128,
            -7,
            i128::from(i64::MIN),
            i128::from(i64::MIN) - 1,
            i128::from(i64::MAX) + 1,
            i128::MIN,
            i128::MAX,
        ] {
            same_ok(&i);
        }
        for u in [0u128, 7, u128::from(u64::MAX), u128::MAX] {
            same_ok(&u);
        }
        same_ok(&1.5f32);
        same_ok(&f32::NAN);
        same_ok(&f32::NEG_INFINITY);
        same_ok(&0.1f32); // widened, not rounded through text
        for f in [
            0.0,
            -0.0,
            2.5,
            f64::NAN,
            f64::INFINITY,
            f64::MIN,
            f64::EPSILON,
        ] {
            same_ok(&f);
        }
        same_ok(&f64::from_bits(0xfff8_dead_beef_0000));
        for c in ['a', 'é', '✓', '😀', '\0'] {
            same_ok(&c);
        }
        same_ok("");
        same_ok("text");
        same_ok("ünïcode 😀");
        same_ok(&"x".repeat(127));
        same_ok(&"x".repeat(128));
        same_ok(&"é".repeat(10_000));
        same_ok(&String::from("owned"));
        same_ok(&Cow::Borrowed("cow"));
        same_ok(&Box::new(5u8));
        same_ok(&&&7i32);
    }

    #[test]
    fn bytes_options_and_wrappers() {
        same_ok(&ByteBuf::new());
        same_ok(&ByteBuf::from(vec![0, 255]));
        same_ok(Bytes::new(b"borrowed bytes"));
        same_ok(&crate::Bytes::from(vec![9; 200]));
        same_ok(&ByteBuf::from(vec![0xa5; 1 << 20]));
        // Without serde_bytes, bytes are a list of integers.
        same_ok(&vec![1u8, 2, 3]);
        same_ok(&b"abc"[..]);
        same_ok(b"abc");
        same_ok(&None::<u8>);
        same_ok(&Some(3u8));
        same_ok(&Some(None::<u8>));
        same_ok(&Some(Some("x")));
        same_ok(&Some(ByteBuf::from(vec![1])));
        same_ok(&Unit);
        same_ok(&Meters(0.5));
        same_ok(&Named(vec![1, 2]));
        same_ok(&Point(1, -1));
        same_ok(&Empty {});
    }

    #[test]
    fn sequences_and_tuples() {
        same_ok(&Vec::<u8>::new());
        same_ok(&vec![1]);
        same_ok(&vec![vec![1, 2], vec![], vec![3]]);
        same_ok(&(0..127).collect::<Vec<i32>>());
        same_ok(&(0..128).collect::<Vec<i32>>());
        same_ok(&(0..20_000).collect::<Vec<i64>>());
        same_ok(&(0..1000).map(|i| i as f64 / 3.0).collect::<Vec<_>>());
        same_ok(&vec!["a"; 300]);
        same_ok(&[1.5, 2.5]);
        same_ok(&[0u8; 0]);
        same_ok(&[[1u8; 3]; 2]);
        same_ok(&(true, "x"));
        same_ok(&(1u8,));
        same_ok(&(1, "a", [1, 2], (), None::<u8>, (2.5, vec![Unit])));
        same_ok(&[Some(1), None]);
        same_ok(&std::collections::VecDeque::from(vec![1, 2]));
        same_ok(&[(); 200][..]);
        // Nested deeper than decode accepts: still the same bytes.
        let mut deep = Value::Null;
        for _ in 0..300 {
            deep = Value::List(vec![deep]);
        }
        let bytes = same_ok(&deep);
        assert_eq!(bytes.len(), 2 * 300 + 1);
    }

    #[test]
    fn structs_and_enums() {
        same_ok(&laser());
        same_ok(&vec![laser(), laser()]);
        for mode in laser().modes {
            same_ok(&mode);
        }
        same_ok(&Internal::Start { at: 1.0 });
        same_ok(&Internal::Stop);
        same_ok(&Internal::Inner(Window { start: 1, stop: 2 }));
        same_ok(&Adjacent::Num(3));
        same_ok(&Adjacent::Unit);
        same_ok(&Adjacent::Both(1, 2));
        same_ok(&Untagged::Int(1));
        same_ok(&Untagged::Text("t".into()));
        same_ok(&Untagged::Pair(1, 2));
        same_ok(&Untagged::Nothing);
        // `flatten` serializes a map of unannounced length.
        let flattened = Flattened {
            id: 1,
            window: Window { start: 2, stop: 3 },
            extra: [
                ("k".to_owned(), Value::Bytes(vec![1; 1000])),
                ("z".to_owned(), every_kind()),
            ]
            .into(),
        };
        same_ok(&flattened);
        let wide = Flattened {
            id: 1,
            window: Window { start: 2, stop: 3 },
            extra: (0..200)
                .map(|i| (format!("key{i:03}"), Value::Int(i)))
                .collect(),
        };
        same_ok(&wide);
        same_ok(&std::time::Duration::new(5, 7));
        same_ok(&(1..5));
        same_ok(&std::net::IpAddr::from([127, 0, 0, 1]));
        same_ok(&std::path::PathBuf::from("/tmp/ünï"));
        same_ok(&std::ffi::OsString::from("os string"));
        same_ok(&Ok::<u8, String>(1));
        same_ok(&Err::<u8, String>("bad".into()));
        same_ok(&std::num::Wrapping(5u64));
        same_ok(&std::marker::PhantomData::<u8>);
    }

    #[test]
    fn maps_with_keys_of_any_kind() {
        same_ok(&BTreeMap::<String, u8>::new());
        same_ok(&BTreeMap::from([(1u32, "a"), (2, "b")]));
        same_ok(&BTreeMap::from([((1, 2), vec![1u8]), ((3, 4), vec![])]));
        same_ok(&BTreeMap::from([(true, ()), (false, ())]));
        same_ok(&BTreeMap::from([(Some('x'), 1.5), (None, 2.5)]));
        same_ok(&BTreeMap::from([(
            vec!["list", "key"],
            BTreeMap::from([("inner", ByteBuf::from(vec![1, 2]))]),
        )]));
        let hash: HashMap<String, i64> = (0..300).map(|i| (format!("k{i}"), i)).collect();
        same_ok(&hash);
        let values: HashMap<u64, Value> = [(u64::MAX, every_kind()), (1, Value::Null)].into();
        same_ok(&values);
        same_ok(&Value::Map(vec![
            (Value::Float(1.5), Value::Null),
            (Value::Bytes(vec![1]), Value::Int(1)),
            (
                Value::BigInt("9".repeat(30).parse().unwrap()),
                Value::Int(2),
            ),
            (Value::Complex(Complex::new(0.0, 1.0)), Value::Int(3)),
        ]));
    }

    #[test]
    fn sets_frozensets_big_integers_and_complex_numbers() {
        same_ok(&set(&BTreeSet::from([1, 2, 3])));
        same_ok(&set(&BTreeSet::<u8>::new()));
        same_ok(&set(&HashSet::from(["a".to_owned()])));
        same_ok(&set(&vec![Value::Null, every_kind()]));
        same_ok(&set(&(1, "tuple")));
        same_ok(&set(&[1u8, 2]));
        same_ok(&set(&Point(1, 2)));
        same_ok(&set(&Some(vec![1])));
        same_ok(&set(&Named(vec![1])));
        same_ok(&set(&Value::Tuple(vec![1.into()])));
        same_ok(&set(&Value::FrozenSet(vec![1.into()])));
        same_ok(&set(&Value::List((0..200).map(Value::from).collect())));
        same_ok(&set(&set(&vec![1])));
        same_ok(&set(&Unannounced((0..300).collect())));
        #[derive(Serialize, Debug)]
        struct Frozen(#[serde(serialize_with = "as_frozenset")] Vec<u8>);
        #[derive(Serialize, Debug)]
        struct Nested(#[serde(serialize_with = "as_set")] Frozen);
        same_ok(&Frozen(vec![1, 2]));
        same_ok(&Nested(Frozen(vec![3])));
        same_ok(&Value::Set(vec![]));
        same_ok(&Value::FrozenSet(vec![Value::Set(vec![Value::FrozenSet(
            vec![],
        )])]));

        same_ok(&BigInt::from(0));
        same_ok(&BigInt::from(-3));
        same_ok(&BigInt::from(u64::MAX));
        same_ok(&BigInt::from(i128::MIN));
        same_ok(&BigInt::from(u128::MAX));
        same_ok(&"1".repeat(100).parse::<BigInt>().unwrap());
        same_ok(&format!("-{}", "7".repeat(4000)).parse::<BigInt>().unwrap());
        same_ok(&Complex::new(1.0, -1.0));
        same_ok(&Complex::new(f64::NAN, 0.0));
        same_ok(&vec![Complex::new(0.0, 0.0); 3]);
        same_ok(&every_kind());
        same_ok(&Value::BigInt(BigInt::from(3)));
    }

    /// A sequence and a map that do not announce their length.
    #[derive(Debug, Clone)]
    struct Unannounced(Vec<i64>);

    impl Serialize for Unannounced {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().filter(|_| true))
        }
    }

    #[derive(Debug)]
    struct UnannouncedMap(Vec<(i64, Vec<i64>)>);

    impl Serialize for UnannouncedMap {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, &Unannounced(v.clone()))?;
            }
            map.end()
        }
    }

    /// Announces `announced` items and writes `actual`.
    #[derive(Debug)]
    struct Lying {
        announced: usize,
        actual: usize,
        tuple: bool,
    }

    impl Serialize for Lying {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeTuple as _;
            if self.tuple {
                let mut tuple = serializer.serialize_tuple(self.announced)?;
                for i in 0..self.actual {
                    tuple.serialize_element(&i)?;
                }
                tuple.end()
            } else {
                let mut map = serializer.serialize_struct("Lying", self.announced)?;
                for _ in 0..self.actual {
                    map.serialize_field(
                        "f",
                        &Lying {
                            announced: 300,
                            actual: 1,
                            tuple: true,
                        },
                    )?;
                }
                map.end()
            }
        }
    }

    #[test]
    fn lengths_are_counted_not_trusted() {
        for n in [0, 1, 5, 127, 128, 129, 200, 16_383, 16_384, 20_000] {
            same_ok(&Unannounced((0..n).collect()));
        }
        same_ok(&UnannouncedMap(vec![]));
        same_ok(&UnannouncedMap(
            (0..200).map(|i| (i, (0..i).collect())).collect(),
        ));
        same_ok(&vec![Unannounced((0..300).collect()); 3]);
        for (announced, actual) in [(0, 0), (5, 200), (1000, 2), (200, 5), (1 << 40, 1), (3, 3)] {
            for tuple in [true, false] {
                let lying = Lying {
                    announced,
                    actual,
                    tuple,
                };
                let shrinks = actual < 128 && announced >= 128 || !tuple && actual > 0;
                if shrinks {
                    same_taken_back(&lying);
                } else {
                    same_ok(&lying);
                }
            }
        }
    }

    /// Serializes a map in an unusual order of calls.
    #[derive(Debug)]
    enum OddMap {
        ValueFirst,
        TwoKeys,
        DanglingKey,
    }

    impl Serialize for OddMap {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            match self {
                OddMap::ValueFirst => map.serialize_value(&1)?,
                OddMap::TwoKeys => {
                    map.serialize_key(&vec![1, 2, 3])?;
                    map.serialize_key("second")?;
                    map.serialize_value(&2)?;
                }
                OddMap::DanglingKey => {
                    map.serialize_entry("a", &1)?;
                    map.serialize_key("dangling")?;
                }
            }
            map.end()
        }
    }

    /// Fails after writing some of itself.
    #[derive(Debug)]
    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(None)?;
            seq.serialize_element(&ByteBuf::from(vec![1; 100]))?;
            Err(ser::Error::custom("the sensor went away"))
        }
    }

    /// Wraps its content in a reserved newtype name.
    #[derive(Debug)]
    struct Marker<T>(&'static str, T);

    impl<T: Serialize> Serialize for Marker<T> {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_newtype_struct(self.0, &self.1)
        }
    }

    use crate::value::ser::marker;

    #[test]
    fn unusual_map_calls_match_to_value() {
        assert_eq!(
            same_err(&OddMap::ValueFirst),
            "map value serialized before its key"
        );
        same_taken_back(&OddMap::TwoKeys);
        same_taken_back(&OddMap::DanglingKey);
        same_taken_back(&vec![OddMap::TwoKeys, OddMap::DanglingKey]);
    }

    #[test]
    fn errors_coincide() {
        assert_eq!(same_err(&Failing), "the sensor went away");
        same_err(&(1, Failing));
        same_err(&BTreeMap::from([(1, Failing)]));
        same_err(&vec![Some(Failing)]);
        same_err(&set(&vec![Failing]));
        same_err(&Marker(marker::BIGINT, Failing));
        // Paths that are not UTF-8 are refused by serde itself.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt as _;
            let path = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff"));
            same_err(&path);
            same_err(&vec![path]);
        }
    }

    #[test]
    fn malformed_markers_are_refused_as_to_value_refuses_them() {
        assert_eq!(
            same_err(&set(&5)),
            "expected a sequence for a set, found int"
        );
        same_err(&set(&"text"));
        same_err(&set(&ByteBuf::from(vec![1])));
        same_err(&set(&()));
        same_err(&set(&None::<Vec<u8>>));
        same_err(&set(&Unit));
        same_err(&set(&BTreeMap::from([(1, 2)])));
        same_err(&set(&Window { start: 1, stop: 2 }));
        same_err(&set(&Mode::Idle));
        same_err(&set(&Mode::Sweep(1.0)));
        same_err(&set(&Mode::Pair(1, "x".into())));
        same_err(&set(&Mode::Window { start: 1, stop: 2 }));
        same_err(&set(&BigInt::from(1)));
        same_err(&set(&Complex::new(1.0, 1.0)));
        same_err(&set(&Value::Map(vec![])));
        same_err(&set(&'c'));
        same_err(&set(&1.5f32));
        same_err(&set(&u128::MAX));
        same_err(&set(&true));
        same_err(&set(&Meters(1.0)));
        // The innermost marker names the problem.
        assert_eq!(
            same_err(&Marker(marker::SET, Marker(marker::FROZENSET, 1))),
            "expected a sequence for a frozenset, found int"
        );
        same_err(&Marker(marker::FROZENSET, Window { start: 1, stop: 2 }));
        same_err(&Marker(marker::SET, Marker(marker::BIGINT, "x")));
        same_err(&Marker(marker::SET, Marker(marker::BIGINT, vec![1])));
        same_err(&Marker(marker::SET, Marker(marker::COMPLEX, 1)));
        same_err(&Marker(
            marker::SET,
            Marker(marker::FROZENSET, Marker(marker::SET, ())),
        ));
        // The outermost marker's kind wins when the content is good.
        same_ok(&Marker(marker::FROZENSET, Marker(marker::SET, vec![1])));
        same_ok(&Marker(marker::SET, Marker("other", (1, 2))));
        same_ok(&Marker(marker::SET, Marker(marker::VALUE, vec![Unit])));

        same_ok(&Marker(marker::BIGINT, 5));
        same_ok(&Marker(marker::BIGINT, "-123456789012345678901234567890"));
        same_ok(&Marker(marker::BIGINT, u64::MAX));
        same_err(&Marker(marker::BIGINT, "12abc"));
        same_err(&Marker(marker::BIGINT, true));
        same_err(&Marker(marker::BIGINT, vec![1]));
        same_err(&Marker(marker::BIGINT, "1".repeat(5000)));
        same_ok(&Marker(
            marker::COMPLEX,
            BTreeMap::from([("real", 1), ("imag", 2)]),
        ));
        #[derive(Serialize, Debug)]
        struct Parts {
            imag: i8,
            real: f32,
        }
        same_ok(&Marker(marker::COMPLEX, Parts { imag: 2, real: 0.5 }));
        same_err(&Marker(marker::COMPLEX, Complex::new(1.0, 2.0)));
        same_err(&Marker(marker::COMPLEX, Window { start: 1, stop: 2 }));
        same_err(&Marker(marker::COMPLEX, BTreeMap::from([("real", 1)])));
        same_err(&Marker(marker::COMPLEX, 1.5));
        same_ok(&Marker(marker::VALUE, every_kind()));
        same_ok(&Marker("anything", ByteBuf::from(vec![1, 2])));
    }

    #[test]
    fn json_values_encode_as_they_convert() {
        let json = serde_json::json!({
            "name": "laser",
            "power": 1.5,
            "on": true,
            "none": null,
            "channels": [1, 2, -3, 18446744073709551615u64],
            "nested": {"a": [], "b": {}},
        });
        same_ok(&json);
    }

    #[test]
    fn megabytes_are_written_into_one_exactly_sized_buffer() {
        let payload = ByteBuf::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let mut out = Vec::new();
        encode_serialize(&payload, &mut out).unwrap();
        assert_eq!(out.capacity(), out.len());
        assert_eq!(out, encode(&Value::Bytes(payload.to_vec())));

        // Several large byte strings among other fields: still one buffer,
        // and the bytes after a prefix a caller framed.
        #[derive(Serialize)]
        struct Frames {
            id: u32,
            frames: Vec<ByteBuf>,
            note: &'static str,
        }
        let frames = Frames {
            id: 7,
            frames: vec![payload.clone(); 4],
            note: "four frames",
        };
        let mut framed = Vec::with_capacity(16);
        framed.extend_from_slice(b"header");
        encode_serialize(&frames, &mut framed).unwrap();
        assert_eq!(framed.capacity(), framed.len());
        assert_eq!(framed[6..], encode(&to_value(&frames).unwrap())[..]);
    }

    /// Counts how often it is serialized.
    struct Tick<'a>(&'a std::cell::Cell<usize>);

    impl Serialize for Tick<'_> {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.set(self.0.get() + 1);
            serializer.serialize_u8(1)
        }
    }

    #[test]
    fn values_of_many_elements_are_measured_only_in_part() {
        let ticks = std::cell::Cell::new(0);
        let few: Vec<Tick> = (0..MEASURED_ELEMENTS).map(|_| Tick(&ticks)).collect();
        let mut out = Vec::new();
        encode_serialize(&few, &mut out).unwrap();
        assert_eq!(ticks.get(), 2 * MEASURED_ELEMENTS);
        assert_eq!(out.capacity(), out.len());

        ticks.set(0);
        let many: Vec<Tick> = (0..100_000).map(|_| Tick(&ticks)).collect();
        let mut out = Vec::new();
        encode_serialize(&many, &mut out).unwrap();
        assert_eq!(ticks.get(), 100_000 + MEASURED_ELEMENTS);
        assert_eq!(out, reference(&vec![1u8; 100_000]).unwrap());

        // Keys and values count, and so do struct fields and nested items.
        let list = |n: usize| vec![0u8; n];
        assert!(matches!(
            measure(&list(MEASURED_ELEMENTS)),
            Measured::Complete(_)
        ));
        assert!(matches!(
            measure(&list(MEASURED_ELEMENTS + 1)),
            Measured::Partial(_)
        ));
        let map = |n: usize| (0..n).map(|i| (i, ())).collect::<BTreeMap<_, _>>();
        assert!(matches!(
            measure(&map(MEASURED_ELEMENTS / 2)),
            Measured::Complete(_)
        ));
        assert!(matches!(
            measure(&map(MEASURED_ELEMENTS / 2 + 1)),
            Measured::Partial(_)
        ));
        let nested = vec![list(MEASURED_ELEMENTS / 2 - 1); 2];
        assert!(matches!(measure(&nested), Measured::Complete(_)));
        let nested = vec![list(MEASURED_ELEMENTS / 2); 2];
        assert!(matches!(measure(&nested), Measured::Partial(_)));
        // However many bytes: a byte string is one element.
        let frames = vec![ByteBuf::from(vec![0; 1 << 16]); 10];
        assert_eq!(
            measure(&frames),
            Measured::Complete(1 + 1 + 10 * (1 + 3 + (1 << 16)))
        );
    }

    /// Catches the error that stops the measuring, and carries on.
    #[derive(Debug)]
    struct Stubborn(usize);

    impl Serialize for Stubborn {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(self.0))?;
            for i in 0..self.0 {
                // Caught and dropped: the item is simply missing.
                let _ = seq.serialize_element(&i);
            }
            seq.end()
        }
    }

    #[test]
    fn a_serialize_that_swallows_errors_is_still_encoded_correctly() {
        same_ok(&Stubborn(10));
        same_ok(&Stubborn(MEASURED_ELEMENTS + 10));
        same_ok(&vec![Stubborn(200), Stubborn(200)]);
    }

    fn encode_of<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_serialize(value, &mut out).unwrap();
        out
    }

    /// `value` in pieces: what the sink was handed, joined, and how many
    /// large byte strings came on their own.
    fn in_pieces<T: Serialize + ?Sized>(value: &T, large: usize) -> (Vec<u8>, usize) {
        let (mut joined, mut alone) = (Vec::new(), 0);
        let handed = encode_serialize_in_pieces(value, large, &mut |encoded: &[u8], big: &[u8]| {
            joined.extend_from_slice(encoded);
            joined.extend_from_slice(big);
            alone += usize::from(!big.is_empty());
            Ok(())
        })
        .unwrap();
        assert_eq!(handed, joined.len());
        (joined, alone)
    }

    #[test]
    fn a_value_in_pieces_is_the_same_encoding_with_large_byte_strings_handed_over_where_they_are() {
        let blob = crate::Bytes::from(vec![3u8; 70_000]);
        let header = (String::from("wave"), 2.5, vec![1i64, 2, 3]);
        let cases = [
            (in_pieces(&(&blob,), 65_536), encode_of(&(&blob,)), 1),
            (
                in_pieces(&(&header, &blob, &blob, 7), 65_536),
                encode_of(&(&header, &blob, &blob, 7)),
                2,
            ),
            (in_pieces(&(&blob,), 1 << 20), encode_of(&(&blob,)), 0),
            // "wave" and the float's 8 bytes.
            (in_pieces(&header, 4), encode_of(&header), 2),
        ];
        for (at, (pieces, whole, alone)) in cases.into_iter().enumerate() {
            assert_eq!(pieces, (whole, alone), "case {at}");
        }
        let measured = measure_for_pieces(&(&header, &blob)).unwrap();
        assert_eq!(measured.size, encode_of(&(&header, &blob)).len());
        assert_eq!(measured.first, tag::TUPLE);
        // A count serde did not announce would be patched after the fact:
        // such a value is not sent in pieces.
        assert_eq!(measure_for_pieces(&Unannounced(vec![1, 2])), None);
        assert!(measure_for_pieces(&Unannounced(Vec::new())).is_some());
    }

    #[test]
    fn a_value_that_serializes_differently_the_second_time_is_an_error_in_pieces() {
        use std::cell::Cell;
        struct Fickle(Cell<usize>);
        impl Serialize for Fickle {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let times = self.0.get();
                self.0.set(times + 1);
                let mut seq = serializer.serialize_seq(Some(1))?;
                seq.serialize_element(Bytes::new(&[1; 100]))?;
                for _ in 0..times {
                    seq.serialize_element(&1)?;
                }
                seq.end()
            }
        }
        let fickle = Fickle(Cell::new(0));
        assert!(measure_for_pieces(&fickle).is_some());
        let result = encode_serialize_in_pieces(&fickle, 10, &mut |_: &[u8], _: &[u8]| Ok(()));
        assert!(result.is_err(), "{result:?}");
    }
}
