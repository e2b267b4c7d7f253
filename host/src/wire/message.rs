//! Pyro5 message framing: a 40-byte header, annotation chunks, then the
//! payload, optionally zlib-compressed.
//!
//! ```text
//! 0x00  4s   'PYRO'
//! 0x04  u16  protocol version (502)
//! 0x06  u8   message type
//! 0x07  u8   serializer id
//! 0x08  u16  flags
//! 0x0a  u16  sequence number
//! 0x0c  u32  payload length
//! 0x10  u32  annotations length (all chunks: 4-byte id, u32 length, data)
//! 0x14  16s  correlation id
//! 0x24  u16  reserved
//! 0x26  u16  magic 0x4dc5
//! ```
//!
//! All integers are big-endian.

use std::io::{self, Read};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::serializer::PEEK;

/// The header's size in bytes.
pub const HEADER_SIZE: usize = 40;
/// The protocol version spoken: Pyro5's.
pub const PROTOCOL_VERSION: u16 = 502;
/// The header's closing magic number.
pub const MAGIC: u16 = 0x4dc5;

/// Message types.
pub mod kind {
    /// A client's handshake.
    pub const CONNECT: u8 = 1;
    /// The handshake accepted (payload: handshake reply and metadata).
    pub const CONNECTOK: u8 = 2;
    /// The handshake refused (payload: the reason, a string).
    pub const CONNECTFAIL: u8 = 3;
    /// A method call.
    pub const INVOKE: u8 = 4;
    /// A call's result (or exception, with [`super::flags::EXCEPTION`]).
    pub const RESULT: u8 = 5;
    /// A ping; answered with a ping.
    pub const PING: u8 = 6;
}

/// Header flags.
pub mod flags {
    /// The payload is a serialized exception.
    pub const EXCEPTION: u16 = 1 << 0;
    /// The payload is zlib-compressed (annotations never are).
    pub const COMPRESSED: u16 = 1 << 1;
    /// The caller does not wait for a result; none is sent.
    pub const ONEWAY: u16 = 1 << 2;
    /// Several calls in one message; the result is a list.
    pub const BATCH: u16 = 1 << 3;
    /// The result is an item stream.
    pub const ITEMSTREAMRESULT: u16 = 1 << 4;
    /// Keep the arguments serialized (Pyro5 internal).
    pub const KEEPSERIALIZED: u16 = 1 << 5;
    /// The correlation id field is set.
    pub const CORR_ID: u16 = 1 << 6;
}

/// One annotation chunk: a 4-letter id and its data.
pub type Annotation = ([u8; 4], Vec<u8>);

/// The annotation ids pyrolab-host adds to Pyro5's. Stock Pyro5 peers
/// ignore annotations they do not know.
pub mod annotation {
    /// In a CONNECTOK: the sender is pyrolab-host, and these are the ids of
    /// the serializers it reads (one byte each, the native one among
    /// them). A client may use any of them for the rest of the connection.
    pub const SERIALIZERS: [u8; 4] = *b"PLHS";
    /// In a CONNECTOK (empty data): the daemon reads native calls whose
    /// arguments are one `{"args", "kwargs"}` map (see `wire::call`).
    pub const ARGS_MAP: [u8; 4] = *b"PLHA";
}

/// A whole message, payload decompressed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// One of [`kind`].
    pub kind: u8,
    /// The payload's serializer id.
    pub serializer_id: u8,
    /// [`flags`] (`COMPRESSED` is handled by encoding and reading).
    pub flags: u16,
    /// The sequence number; a reply echoes the request's.
    pub seq: u16,
    /// The correlation id (all zero when unset).
    pub correlation_id: [u8; 16],
    /// Annotation chunks: 4-byte ids and their data.
    pub annotations: Vec<Annotation>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection between messages.
    #[error("connection closed")]
    Closed,
    /// Reading failed (including a connection closed mid-message).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a valid Pyro5 message.
    #[error("{0}")]
    Protocol(String),
}

fn protocol(message: impl Into<String>) -> ReadError {
    ReadError::Protocol(message.into())
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub kind: u8,
    /// Serializer id.
    pub serializer_id: u8,
    /// Flags.
    pub flags: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload length as sent (compressed length if compressed).
    pub data_len: u32,
    /// Total length of the annotation chunks.
    pub annotations_len: u32,
    /// Correlation id.
    pub correlation_id: [u8; 16],
}

impl Header {
    /// Parses and checks a header.
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Header, ReadError> {
        if &bytes[0..4] != b"PYRO" {
            return Err(protocol("not a Pyro message (no PYRO tag)"));
        }
        let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let be32 = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = be16(4);
        if version != PROTOCOL_VERSION {
            return Err(protocol(format!(
                "unsupported protocol version {version} (this daemon speaks {PROTOCOL_VERSION}, Pyro5's)"
            )));
        }
        if be16(0x26) != MAGIC {
            return Err(protocol("invalid header (wrong magic number)"));
        }
        let mut correlation_id = [0u8; 16];
        correlation_id.copy_from_slice(&bytes[0x14..0x24]);
        Ok(Header {
            kind: bytes[6],
            serializer_id: bytes[7],
            flags: be16(8),
            seq: be16(0x0a),
            data_len: be32(0x0c),
            annotations_len: be32(0x10),
            correlation_id,
        })
    }
}

impl Message {
    /// A message with no annotations and no correlation id.
    pub fn new(kind: u8, serializer_id: u8, flags: u16, seq: u16, payload: Vec<u8>) -> Self {
        Message {
            kind,
            serializer_id,
            flags,
            seq,
            correlation_id: [0; 16],
            annotations: Vec::new(),
            payload,
        }
    }

    /// The message as bytes, ready for a single write. With `compress`,
    /// payloads over 100 bytes are zlib-compressed (as Pyro5 does).
    pub fn encode(&self, compress: bool) -> Vec<u8> {
        let compressed = (compress && self.payload.len() > 100).then(|| zlib(&self.payload));
        let payload = compressed.as_deref().unwrap_or(&self.payload);
        let mut flags = self.flags & !flags::COMPRESSED;
        if compressed.is_some() {
            flags |= flags::COMPRESSED;
        }
        if self.correlation_id != [0; 16] {
            flags |= flags::CORR_ID;
        }
        let annotations_len: usize = self
            .annotations
            .iter()
            .map(|(_, data)| 8 + data.len())
            .sum();
        let mut out = Vec::with_capacity(HEADER_SIZE + annotations_len + payload.len());
        out.extend_from_slice(b"PYRO");
        out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        out.push(self.kind);
        out.push(self.serializer_id);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&(annotations_len as u32).to_be_bytes());
        out.extend_from_slice(&self.correlation_id);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&MAGIC.to_be_bytes());
        for (id, data) in &self.annotations {
            out.extend_from_slice(id);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(payload);
        out
    }

    /// Builds a whole frame whose payload `write_payload` appends after the
    /// header, with no annotations and no compression: the fast path for
    /// replies and calls, where the payload is written once, in place.
    pub fn frame(
        kind: u8,
        serializer_id: u8,
        flags: u16,
        seq: u16,
        correlation_id: [u8; 16],
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), crate::wire::serializer::SerializeError>,
    ) -> Result<Vec<u8>, crate::wire::serializer::SerializeError> {
        // Room for a small payload too, so the usual call or reply is
        // written without growing the buffer (a large one grows it once).
        let mut out = Vec::with_capacity(HEADER_SIZE + SMALL_PAYLOAD);
        out.resize(HEADER_SIZE, 0);
        write_payload(&mut out)?;
        let payload_len = out.len() - HEADER_SIZE;
        let header = Message::header(kind, serializer_id, flags, seq, correlation_id, payload_len);
        out[..HEADER_SIZE].copy_from_slice(&header);
        Ok(out)
    }

    /// The header of a message without annotations or compression whose
    /// payload is `payload_len` bytes: for sending a payload that is
    /// already in memory right after it, without copying it into a frame.
    pub fn header(
        kind: u8,
        serializer_id: u8,
        flags: u16,
        seq: u16,
        correlation_id: [u8; 16],
        payload_len: usize,
    ) -> [u8; HEADER_SIZE] {
        let mut flags = flags & !flags::COMPRESSED;
        if correlation_id != [0; 16] {
            flags |= flags::CORR_ID;
        }
        let mut header = [0u8; HEADER_SIZE];
        header[0..4].copy_from_slice(b"PYRO");
        header[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        header[6] = kind;
        header[7] = serializer_id;
        header[8..10].copy_from_slice(&flags.to_be_bytes());
        header[10..12].copy_from_slice(&seq.to_be_bytes());
        header[12..16].copy_from_slice(&(payload_len as u32).to_be_bytes());
        header[16..20].copy_from_slice(&0u32.to_be_bytes());
        header[20..36].copy_from_slice(&correlation_id);
        header[36..38].copy_from_slice(&0u16.to_be_bytes());
        header[38..40].copy_from_slice(&MAGIC.to_be_bytes());
        header
    }

    /// Reads one message. `max_size` bounds the announced payload and
    /// annotation lengths (and the decompressed payload), so a hostile
    /// length cannot make us allocate or wait for gigabytes.
    pub fn read_from(reader: &mut impl ReadSpare, max_size: u64) -> Result<Message, ReadError> {
        let mut header_bytes = [0u8; HEADER_SIZE];
        read_header(reader, &mut header_bytes)?;
        let header = Header::parse(&header_bytes)?;
        header.check_size(max_size)?;
        let annotations = read_exactly(reader, header.annotations_len)?;
        let payload = read_exactly(reader, header.data_len)?;
        finish(header, &annotations, payload, max_size)
    }

    /// Like [`Message::read_from`], except that a large payload which is
    /// one byte string and nothing else is read straight into a buffer of
    /// its own, returned beside the message (whose payload is then
    /// empty): a megabyte result is not copied out of the frame.
    /// `lone_bytes` says, from the serializer id and the payload's first
    /// [`PEEK`] bytes and its length, where such a byte string's bytes
    /// begin ([`Serializer::lone_bytes_header`](super::serializer::Serializer::lone_bytes_header)).
    pub fn read_from_taking_bytes(
        reader: &mut impl ReadSpare,
        max_size: u64,
        lone_bytes: impl FnOnce(u8, &[u8], usize) -> Option<usize>,
    ) -> Result<(Message, Option<Vec<u8>>), ReadError> {
        let mut header_bytes = [0u8; HEADER_SIZE];
        read_header(reader, &mut header_bytes)?;
        let header = Header::parse(&header_bytes)?;
        header.check_size(max_size)?;
        let annotations = read_exactly(reader, header.annotations_len)?;
        let len = header.data_len as usize;
        if len < TAKE_BYTES_FROM || header.flags & flags::COMPRESSED != 0 {
            let payload = read_exactly(reader, header.data_len)?;
            return Ok((finish(header, &annotations, payload, max_size)?, None));
        }
        let mut first = reserve(PEEK)?;
        read_until_full(reader, &mut first, PEEK)?;
        match lone_bytes(header.serializer_id, &first, len) {
            Some(at) if at <= PEEK => {
                let mut bytes = reserve(len - at)?;
                bytes.extend_from_slice(&first[at..]);
                read_until_full(reader, &mut bytes, len - at)?;
                Ok((
                    finish(header, &annotations, Vec::new(), max_size)?,
                    Some(bytes),
                ))
            }
            _ => {
                let mut payload = reserve(len)?;
                payload.extend_from_slice(&first);
                read_until_full(reader, &mut payload, len)?;
                Ok((finish(header, &annotations, payload, max_size)?, None))
            }
        }
    }
}

/// Payloads from this size are looked at by
/// [`Message::read_from_taking_bytes`]; a smaller one is read whole (its
/// copy costs less than the extra read).
const TAKE_BYTES_FROM: usize = 64 * 1024;

impl Header {
    /// Refuses a message whose announced lengths exceed `max_size`.
    fn check_size(&self, max_size: u64) -> Result<(), ReadError> {
        let total = u64::from(self.data_len) + u64::from(self.annotations_len);
        if total > max_size {
            return Err(protocol(format!(
                "message too large ({total} bytes, max {max_size})"
            )));
        }
        Ok(())
    }
}

/// The message whose header, annotation bytes and payload (as sent) are
/// all in: annotations parsed, payload decompressed.
fn finish(
    header: Header,
    annotations: &[u8],
    mut payload: Vec<u8>,
    max_size: u64,
) -> Result<Message, ReadError> {
    let annotations = parse_annotations(annotations)?;
    if header.flags & flags::COMPRESSED != 0 {
        payload = unzlib(&payload, max_size)?;
    }
    Ok(Message {
        kind: header.kind,
        serializer_id: header.serializer_id,
        flags: header.flags & !flags::COMPRESSED,
        seq: header.seq,
        correlation_id: header.correlation_id,
        annotations,
        payload,
    })
}

/// Assembles messages from bytes as they arrive, for a socket served by
/// an event loop (which reads whatever is there and must not wait for
/// the rest).
///
/// Between messages it holds no heap memory, so an idle connection costs
/// a few bytes. Once a header is in, the payload's buffer is reserved at
/// the announced size, which [`Header::check_size`] has bounded: that is
/// address space, and pages become resident only as bytes arrive. A
/// large payload is read straight into it ([`Assembler::payload_to_fill`]),
/// with no intermediate copy and no zeroing.
#[derive(Debug)]
pub struct Assembler {
    head: [u8; HEADER_SIZE],
    head_len: usize,
    header: Option<Header>,
    annotations: Vec<u8>,
    payload: Vec<u8>,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler {
            head: [0; HEADER_SIZE],
            head_len: 0,
            header: None,
            annotations: Vec::new(),
            payload: Vec::new(),
        }
    }
}

impl Assembler {
    /// Whether no part of a message has arrived since the last one ended.
    pub fn is_between_messages(&self) -> bool {
        self.head_len == 0
    }

    /// The bytes it has reserved for the message it is reading.
    pub fn held_bytes(&self) -> usize {
        self.annotations.capacity() + self.payload.capacity()
    }

    /// Takes bytes from the front of `input`: returns how many it used
    /// and, when they complete a message, the message. Bytes after the end
    /// of a message are left for the next call.
    pub fn feed(
        &mut self,
        input: &[u8],
        max_size: u64,
    ) -> Result<(usize, Option<Message>), ReadError> {
        let mut used = 0;
        let header = match self.header {
            Some(header) => header,
            None => {
                let take = (HEADER_SIZE - self.head_len).min(input.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
                self.head_len += take;
                used += take;
                if self.head_len < HEADER_SIZE {
                    return Ok((used, None));
                }
                self.start(max_size)?
            }
        };
        used += fill(
            &mut self.annotations,
            header.annotations_len,
            &input[used..],
        );
        if self.annotations.len() == header.annotations_len as usize {
            used += fill(&mut self.payload, header.data_len, &input[used..]);
        }
        Ok((used, self.complete(max_size)?))
    }

    /// Parses the header just completed and reserves room for the rest.
    fn start(&mut self, max_size: u64) -> Result<Header, ReadError> {
        let header = Header::parse(&self.head)?;
        header.check_size(max_size)?;
        let reserve = |buffer: &mut Vec<u8>, len: u32| {
            buffer.try_reserve_exact(len as usize).map_err(|_| {
                protocol(format!(
                    "cannot reserve memory for a {len}-byte message part"
                ))
            })
        };
        reserve(&mut self.annotations, header.annotations_len)?;
        reserve(&mut self.payload, header.data_len)?;
        self.header = Some(header);
        Ok(header)
    }

    /// The payload's buffer, to read into directly, while at least `min`
    /// bytes of it are still to come; its spare capacity is exactly what
    /// is missing. After reading into it, [`Assembler::complete`] says
    /// whether the message is whole.
    pub fn payload_to_fill(&mut self, min: usize) -> Option<&mut Vec<u8>> {
        let header = self.header?;
        let annotations_in = self.annotations.len() == header.annotations_len as usize;
        let missing = header.data_len as usize - self.payload.len();
        (annotations_in && missing >= min).then_some(&mut self.payload)
    }

    /// The message, if every byte of it is in; the assembler is then ready
    /// for the next one.
    pub fn complete(&mut self, max_size: u64) -> Result<Option<Message>, ReadError> {
        let Some(header) = self.header else {
            return Ok(None);
        };
        if self.annotations.len() < header.annotations_len as usize
            || self.payload.len() < header.data_len as usize
        {
            return Ok(None);
        }
        let annotations = std::mem::take(&mut self.annotations);
        let payload = std::mem::take(&mut self.payload);
        self.header = None;
        self.head_len = 0;
        finish(header, &annotations, payload, max_size).map(Some)
    }
}

/// Appends to `buffer` what `input` has of the `len` bytes it is to hold;
/// returns how many bytes it took.
fn fill(buffer: &mut Vec<u8>, len: u32, input: &[u8]) -> usize {
    let take = (len as usize - buffer.len()).min(input.len());
    buffer.extend_from_slice(&input[..take]);
    take
}

/// What a frame leaves room for behind its header before it must grow.
const SMALL_PAYLOAD: usize = 256;

/// A source of bytes that can read into a buffer's spare capacity without
/// zeroing it first (`Read::read` needs initialized memory: for a megabyte
/// payload that zeroing costs as much as a copy).
pub trait ReadSpare: Read {
    /// Reads into `buffer`'s spare capacity, extending its length; returns
    /// how many bytes came (0: the end of the stream).
    fn read_spare(&mut self, buffer: &mut Vec<u8>) -> io::Result<usize>;
}

impl ReadSpare for &[u8] {
    fn read_spare(&mut self, buffer: &mut Vec<u8>) -> io::Result<usize> {
        let take = (buffer.capacity() - buffer.len()).min(self.len());
        buffer.extend_from_slice(&self[..take]);
        *self = &self[take..];
        Ok(take)
    }
}

/// Reads exactly `len` bytes into a new buffer of that size.
fn read_exactly(reader: &mut impl ReadSpare, len: u32) -> io::Result<Vec<u8>> {
    let len = len as usize;
    let mut buffer = reserve(len)?;
    read_until_full(reader, &mut buffer, len)?;
    Ok(buffer)
}

/// An empty buffer with room for exactly `len` bytes, or the error saying
/// there is no memory for them.
fn reserve(len: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot reserve memory for a {len}-byte message part"),
        )
    })?;
    Ok(buffer)
}

/// Reads into `buffer`, whose capacity is `len`, until it is full.
fn read_until_full(
    reader: &mut impl ReadSpare,
    buffer: &mut Vec<u8>,
    len: usize,
) -> io::Result<()> {
    // Reads go into the spare capacity, all of it: more than `len` would
    // take bytes of the next message.
    debug_assert!(buffer.capacity() == len, "a buffer of exactly {len} bytes");
    while buffer.len() < len {
        match reader.read_spare(buffer) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed in the middle of a message ({} of {len} bytes)",
                        buffer.len()
                    ),
                ));
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Reads the header; a clean end of stream before its first byte is
/// [`ReadError::Closed`], one in the middle is an I/O error.
fn read_header(reader: &mut impl Read, buffer: &mut [u8; HEADER_SIZE]) -> Result<(), ReadError> {
    let mut filled = 0;
    while filled < HEADER_SIZE {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Err(ReadError::Closed),
            Ok(0) => {
                return Err(protocol(format!(
                    "truncated header ({filled} of {HEADER_SIZE} bytes)"
                )));
            }
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

fn parse_annotations(mut bytes: &[u8]) -> Result<Vec<Annotation>, ReadError> {
    let mut annotations = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 8 {
            return Err(protocol("truncated annotation chunk header"));
        }
        let mut id = [0u8; 4];
        id.copy_from_slice(&bytes[..4]);
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let rest = &bytes[8..];
        if len > rest.len() {
            return Err(protocol("annotation chunk longer than the annotations"));
        }
        annotations.push((id, rest[..len].to_vec()));
        bytes = &rest[len..];
    }
    Ok(annotations)
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::new(4));
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Decompresses, refusing output larger than `max_size` (a zip bomb).
/// Decompresses a payload of at most `max_size` bytes. It is inflated
/// twice: once to learn its size (into a small buffer, kept for nothing),
/// then into a buffer of exactly that size. A growing buffer would peak at
/// three to four times the payload while it is copied to a larger one; a
/// peer could make that three to four times the message size limit.
fn unzlib(data: &[u8], max_size: u64) -> Result<Vec<u8>, ReadError> {
    let invalid = |err: io::Error| protocol(format!("invalid compressed payload: {err}"));
    let size = io::copy(
        &mut ZlibDecoder::new(data).take(max_size + 1),
        &mut io::sink(),
    )
    .map_err(invalid)?;
    if size > max_size {
        return Err(protocol(format!(
            "compressed payload expands beyond the message size limit ({max_size} bytes)"
        )));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(size as usize)
        .map_err(|_| protocol(format!("cannot reserve memory for a {size}-byte payload")))?;
    ZlibDecoder::new(data)
        .take(size)
        .read_to_end(&mut out)
        .map_err(invalid)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `add(1, 2)` INVOKE header from capture_serpent.txt.
    const CAPTURED_INVOKE_HEADER: [u8; 40] = [
        0x50, 0x59, 0x52, 0x4f, 0x01, 0xf6, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0xc5,
    ];
    const CAPTURED_INVOKE_PAYLOAD: &[u8] = b"# serpent utf-8 python3.2\n('thing','add',(1,2),{})";

    #[test]
    fn encodes_exactly_as_pyro5() {
        let message = Message::new(kind::INVOKE, 1, 0, 1, CAPTURED_INVOKE_PAYLOAD.to_vec());
        let bytes = message.encode(false);
        assert_eq!(bytes[..HEADER_SIZE], CAPTURED_INVOKE_HEADER);
        assert_eq!(&bytes[HEADER_SIZE..], CAPTURED_INVOKE_PAYLOAD);
    }

    #[test]
    fn frames_built_in_place_equal_encoded_messages() {
        let mut message = Message::new(kind::RESULT, 16, flags::BATCH, 9, vec![1, 2, 3]);
        message.correlation_id = [5; 16];
        let framed = Message::frame(kind::RESULT, 16, flags::BATCH, 9, [5; 16], |out| {
            out.extend_from_slice(&[1, 2, 3]);
            Ok(())
        })
        .unwrap();
        assert_eq!(framed, message.encode(false));
    }

    #[test]
    fn reads_a_captured_message() {
        let mut bytes = CAPTURED_INVOKE_HEADER.to_vec();
        bytes.extend_from_slice(CAPTURED_INVOKE_PAYLOAD);
        let message = Message::read_from(&mut bytes.as_slice(), 1 << 20).unwrap();
        assert_eq!(
            (message.kind, message.serializer_id, message.seq),
            (kind::INVOKE, 1, 1)
        );
        assert_eq!(message.payload, CAPTURED_INVOKE_PAYLOAD);
    }

    #[test]
    fn round_trips_annotations_correlation_and_compression() {
        let mut message = Message::new(kind::RESULT, 3, flags::BATCH, 7, vec![b'x'; 5000]);
        message.correlation_id = [9; 16];
        message.annotations.push((*b"CORR", vec![1, 2, 3]));
        let bytes = message.encode(true);
        assert!(bytes.len() < 1000, "compressed");
        let read = Message::read_from(&mut bytes.as_slice(), 1 << 20).unwrap();
        assert_eq!(read.payload, message.payload);
        assert_eq!(read.annotations, message.annotations);
        assert_eq!(read.flags, flags::BATCH | flags::CORR_ID);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut good = CAPTURED_INVOKE_HEADER.to_vec();
        good.extend_from_slice(CAPTURED_INVOKE_PAYLOAD);
        assert!(matches!(
            Message::read_from(&mut &b""[..], 100),
            Err(ReadError::Closed)
        ));
        for len in 1..good.len() {
            assert!(
                Message::read_from(&mut &good[..len], 1 << 20).is_err(),
                "prefix {len}"
            );
        }
        let mut wrong_version = good.clone();
        wrong_version[5] = 0xf5;
        let err = Message::read_from(&mut wrong_version.as_slice(), 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains("unsupported protocol version 501"),
            "{err}"
        );
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = Message::read_from(&mut huge.as_slice(), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("message too large"), "{err}");
        let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\0\0\0\0\0\0\0\0\0\0\0\0\0";
        assert!(Message::read_from(&mut &garbage[..], 1 << 20).is_err());
    }

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_and_mutated_frames_never_panic() {
        let mut rng = XorShift(0x5eed_1234_abcd_ef01);
        let mut valid = CAPTURED_INVOKE_HEADER.to_vec();
        valid.extend_from_slice(CAPTURED_INVOKE_PAYLOAD);
        let compressed = Message::new(kind::RESULT, 1, 0, 3, vec![b'z'; 400]).encode(true);
        for round in 0..20_000 {
            let base = if round % 2 == 0 { &valid } else { &compressed };
            let mut frame = base.clone();
            match rng.next() % 4 {
                0 => {
                    let flips = 1 + rng.next() % 4;
                    for _ in 0..flips {
                        let at = (rng.next() as usize) % frame.len();
                        frame[at] ^= 1 << (rng.next() % 8);
                    }
                }
                1 => frame.truncate((rng.next() as usize) % frame.len()),
                2 => {
                    let len = (rng.next() % 200) as usize;
                    frame = (0..len).map(|_| rng.next() as u8).collect();
                }
                _ => {
                    let at = (rng.next() as usize) % HEADER_SIZE;
                    frame[at] = rng.next() as u8;
                }
            }
            let _ = Message::read_from(&mut frame.as_slice(), 1 << 16);
        }
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        let mut message = Message::new(kind::INVOKE, 1, 0, 1, vec![0; 2_000_000]);
        message.flags = 0;
        let bytes = message.encode(true);
        let err = Message::read_from(&mut bytes.as_slice(), 100_000).unwrap_err();
        assert!(err.to_string().contains("expands beyond"), "{err}");
    }

    fn sample_messages() -> Vec<Message> {
        let mut annotated = Message::new(kind::RESULT, 16, 0, 7, vec![9; 40_000]);
        annotated.annotations.push((*b"CORR", vec![1, 2, 3]));
        annotated.correlation_id = [5; 16];
        annotated.flags = flags::CORR_ID;
        vec![
            Message::new(kind::INVOKE, 1, 0, 1, CAPTURED_INVOKE_PAYLOAD.to_vec()),
            Message::new(kind::PING, 1, 0, 2, Vec::new()),
            annotated,
        ]
    }

    /// Feeds `bytes` to an assembler in pieces of `piece` bytes.
    fn assemble(bytes: &[u8], piece: usize) -> Result<Vec<Message>, ReadError> {
        let mut assembler = Assembler::default();
        let mut messages = Vec::new();
        for mut chunk in bytes.chunks(piece) {
            while !chunk.is_empty() {
                let (used, message) = assembler.feed(chunk, 1 << 20)?;
                chunk = &chunk[used..];
                messages.extend(message);
            }
        }
        assert!(assembler.is_between_messages());
        Ok(messages)
    }

    #[test]
    fn the_assembler_rebuilds_messages_however_the_bytes_arrive() {
        let expected = sample_messages();
        let mut stream = Vec::new();
        for message in &expected {
            stream.extend(message.encode(false));
        }
        for piece in [1, 7, 40, 41, 1000, stream.len()] {
            // Not assert_eq: the messages are too long to print.
            assert!(
                assemble(&stream, piece).unwrap() == expected,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn the_assembler_reads_what_read_from_reads() {
        for message in sample_messages() {
            let bytes = message.encode(true);
            let read = Message::read_from(&mut bytes.as_slice(), 1 << 20).unwrap();
            assert!(assemble(&bytes, 13).unwrap() == vec![read]);
        }
    }

    #[test]
    fn a_large_payload_can_be_read_straight_into_its_buffer() {
        let message = Message::new(
            kind::INVOKE,
            16,
            0,
            3,
            (0..100_000u32).map(|i| i as u8).collect(),
        );
        let bytes = message.encode(false);
        let mut assembler = Assembler::default();
        let (used, none) = assembler.feed(&bytes[..HEADER_SIZE + 10], 1 << 20).unwrap();
        assert_eq!((used, none), (HEADER_SIZE + 10, None));
        let payload = assembler
            .payload_to_fill(1024)
            .expect("most of the payload is to come");
        assert_eq!(payload.capacity() - payload.len(), 100_000 - 10);
        payload.extend_from_slice(&bytes[HEADER_SIZE + 10..]);
        assert_eq!(assembler.payload_to_fill(1), None);
        assert!(assembler.complete(1 << 20).unwrap() == Some(message));
        assert!(assembler.is_between_messages());
    }

    #[test]
    fn the_assembler_refuses_what_read_from_refuses() {
        let oversized = Message::new(kind::INVOKE, 1, 0, 1, vec![0; 2000]).encode(false);
        let err = Assembler::default().feed(&oversized, 1024).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let mut wrong_magic = Message::new(kind::PING, 1, 0, 1, Vec::new()).encode(false);
        wrong_magic[0x27] ^= 1;
        assert!(Assembler::default().feed(&wrong_magic, 1024).is_err());
    }

    /// The message and the byte string `read_from_taking_bytes` returns
    /// for each frame of `stream`, in order.
    fn read_taking_bytes(mut stream: &[u8]) -> Vec<(Message, Option<Vec<u8>>)> {
        use crate::wire::serializer;
        let mut read = Vec::new();
        while !stream.is_empty() {
            read.push(
                Message::read_from_taking_bytes(&mut stream, 1 << 30, |id, first, total| {
                    serializer::by_id(id)?.lone_bytes_header(first, total)
                })
                .unwrap(),
            );
        }
        read
    }

    #[test]
    fn a_large_lone_byte_string_is_read_into_its_own_buffer_and_nothing_else_is() {
        use crate::wire::serializer::{self, id};
        use pyrolab_plugin_api::Value;
        let blob = Value::Bytes((0..200_000u32).map(|i| i as u8).collect());
        let frame = |serializer_id, value: &Value| {
            let payload = serializer::by_id(serializer_id)
                .unwrap()
                .serialize(value)
                .unwrap();
            Message::new(kind::RESULT, serializer_id, 0, 7, payload).encode(false)
        };
        let not_lone = Value::List(vec![blob.clone(), Value::Int(1)]);
        let small = Value::Bytes(vec![1, 2, 3]);
        let mut stream = Vec::new();
        for serializer_id in [id::NATIVE, id::MSGPACK, id::SERPENT] {
            for value in [&blob, &not_lone, &small] {
                stream.extend(frame(serializer_id, value));
            }
        }
        let read = read_taking_bytes(&stream);
        assert_eq!(read.len(), 9, "every frame read, none over-read");
        for (at, (message, taken)) in read.into_iter().enumerate() {
            let serializer = serializer::by_id(message.serializer_id).unwrap();
            let value = match taken {
                Some(bytes) => {
                    assert!(message.payload.is_empty());
                    Value::Bytes(bytes)
                }
                None => serializer.deserialize(&message.payload).unwrap(),
            };
            let (expected, lone) = match at % 3 {
                0 => (&blob, serializer.id() != id::SERPENT),
                1 => (&not_lone, false),
                _ => (&small, false),
            };
            assert_eq!(&value, expected, "frame {at}");
            assert_eq!(message.payload.is_empty(), lone, "frame {at}");
        }
    }
}
