//! VXI-11 (`TCPIP::HOST::inst0::INSTR`): the LAN instrument protocol of
//! the VXI-11 specification, ONC RPC (RFC 5531) over TCP with XDR
//! (RFC 4506) encoding. The client asks the host's portmapper (port 111)
//! for the core channel's port, opens a link to the device and writes and
//! reads through it. No Rust crate speaks it (the one named for it is an
//! empty placeholder), and pyvisa-py's own implementation is the few
//! calls below; this one adds timeouts, bounded reads and errors a driver
//! can act on.
//!
//! [`server`] is the other side, for simulators.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use pyrolab_plugin_api::DriverError;

use crate::resource::Resource;
use crate::transport::{Options, Transport};

/// The portmapper's standard port.
pub const PORTMAPPER_PORT: u16 = 111;
const PORTMAPPER_PROGRAM: u32 = 100_000;
const PORTMAPPER_VERSION: u32 = 2;
const PORTMAPPER_GETPORT: u32 = 3;
const IPPROTO_TCP: u32 = 6;

/// The core channel's program and version.
pub const DEVICE_CORE: u32 = 0x0607AF;
const DEVICE_CORE_VERSION: u32 = 1;
const CREATE_LINK: u32 = 10;
const DEVICE_WRITE: u32 = 11;
const DEVICE_READ: u32 = 12;
const DESTROY_LINK: u32 = 23;

/// `device_write`'s flag: this write ends the message.
const FLAG_END: u32 = 8;
/// `device_read`'s flag: stop at `termChar`.
const FLAG_TERMCHAR: u32 = 128;
/// `device_read`'s reasons.
const REASON_REQCNT: u32 = 1;
const REASON_CHR: u32 = 2;
const REASON_END: u32 = 4;
/// The device error of an I/O timeout.
const ERROR_IO_TIMEOUT: u32 = 15;

/// The largest RPC record accepted (a waveform chunk is at most the
/// link's `maxRecvSize`, which we ask to be this).
const MAX_RECORD: usize = 16 * 1024 * 1024;
/// What one `device_read` asks for.
const READ_CHUNK: u32 = 1024 * 1024;

/// A link to one VXI-11 device.
pub struct Vxi11 {
    resource: Resource,
    options: Options,
    timeout: Duration,
    link: Option<Link>,
    /// Bytes read beyond the last reply, and whether the device's message
    /// ended with them.
    pending: Vec<u8>,
    ended: bool,
}

struct Link {
    stream: TcpStream,
    id: u32,
    xid: u32,
    max_recv: usize,
}

impl Vxi11 {
    /// Connects to the device and opens a link.
    pub fn open(resource: Resource, options: &Options) -> Result<Vxi11, DriverError> {
        let mut vxi11 = Vxi11 {
            resource,
            options: options.clone(),
            timeout: options.timeout,
            link: None,
            pending: Vec::new(),
            ended: false,
        };
        vxi11.link()?;
        Ok(vxi11)
    }

    fn link(&mut self) -> Result<&mut Link, DriverError> {
        if self.link.is_none() {
            let Resource::Vxi11 { host, device } = self.resource.clone() else {
                unreachable!("a VXI-11 resource");
            };
            let port = core_port(&host, self.options.portmapper_port, self.timeout)
                .map_err(|err| self.connection("cannot find its VXI-11 core channel", &err))?;
            let stream = connect(&host, port, self.timeout)
                .map_err(|err| self.connection("cannot connect", &err))?;
            let mut link = Link {
                stream,
                id: 0,
                xid: 1,
                max_recv: 0,
            };
            let mut args = Xdr::default();
            args.u32(0x5059_524F); // client id
            args.u32(0); // no lock
            args.u32(0);
            args.string(&device);
            let mut reply = link
                .call(
                    DEVICE_CORE,
                    DEVICE_CORE_VERSION,
                    CREATE_LINK,
                    &args.0,
                    self.timeout,
                )
                .map_err(|err| self.connection("cannot open a link", &err))?;
            let error = reply.u32().map_err(|err| self.garbled(&err))?;
            if error != 0 {
                return Err(DriverError::connection(format!(
                    "{}: the instrument refused a link to {device:?} (VXI-11 error {error})",
                    self.resource
                )));
            }
            link.id = reply.u32().map_err(|err| self.garbled(&err))?;
            let _abort_port = reply.u32().map_err(|err| self.garbled(&err))?;
            link.max_recv =
                (reply.u32().map_err(|err| self.garbled(&err))? as usize).clamp(64, MAX_RECORD);
            self.link = Some(link);
            self.pending.clear();
            self.ended = false;
        }
        Ok(self.link.as_mut().expect("linked above"))
    }

    fn connection(&mut self, what: &str, err: &io::Error) -> DriverError {
        self.link = None;
        if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return DriverError::timeout(format!(
                "{}: {what}: no answer within {:.1} s",
                self.resource,
                self.timeout.as_secs_f64()
            ));
        }
        DriverError::connection(format!("{}: {what}: {err}", self.resource))
    }

    fn garbled(&mut self, err: &str) -> DriverError {
        self.link = None;
        DriverError::connection(format!(
            "garbled VXI-11 reply from {}: {err}",
            self.resource
        ))
    }

    /// One `device_read`: appends what came to `pending`.
    fn read_more(&mut self, terminator: Option<u8>) -> Result<(), DriverError> {
        let timeout = self.timeout;
        let timeout_ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        let link = self.link()?;
        let mut args = Xdr::default();
        args.u32(link.id);
        args.u32(READ_CHUNK.min(link.max_recv as u32));
        args.u32(timeout_ms);
        args.u32(0);
        args.u32(if terminator.is_some() {
            FLAG_TERMCHAR
        } else {
            0
        });
        args.u32(u32::from(terminator.unwrap_or(b'\n')));
        // The device waits io_timeout; the socket a little longer.
        let reply = link.call(
            DEVICE_CORE,
            DEVICE_CORE_VERSION,
            DEVICE_READ,
            &args.0,
            timeout + Duration::from_secs(1),
        );
        let mut reply = reply.map_err(|err| self.connection("read failed", &err))?;
        let error = reply.u32().map_err(|err| self.garbled(&err))?;
        if error == ERROR_IO_TIMEOUT {
            return Err(DriverError::timeout(format!(
                "{} did not send a reply within {:.1} s",
                self.resource,
                timeout.as_secs_f64()
            )));
        }
        if error != 0 {
            return Err(DriverError::connection(format!(
                "{}: read failed (VXI-11 error {error})",
                self.resource
            )));
        }
        let reason = reply.u32().map_err(|err| self.garbled(&err))?;
        let data = reply.opaque().map_err(|err| self.garbled(&err))?;
        self.pending.extend_from_slice(&data);
        self.ended = reason & (REASON_END | REASON_CHR) != 0;
        let _ = REASON_REQCNT;
        Ok(())
    }
}

impl Transport for Vxi11 {
    fn write(&mut self, data: &[u8]) -> Result<(), DriverError> {
        let timeout = self.timeout;
        let timeout_ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        let link = self.link()?;
        let chunks: Vec<&[u8]> = data.chunks(link.max_recv.max(1)).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let link = self.link()?;
            let mut args = Xdr::default();
            args.u32(link.id);
            args.u32(timeout_ms);
            args.u32(0);
            args.u32(if i == last { FLAG_END } else { 0 });
            args.opaque(chunk);
            let reply = link.call(
                DEVICE_CORE,
                DEVICE_CORE_VERSION,
                DEVICE_WRITE,
                &args.0,
                timeout + Duration::from_secs(1),
            );
            let mut reply = reply.map_err(|err| self.connection("write failed", &err))?;
            let error = reply.u32().map_err(|err| self.garbled(&err))?;
            if error != 0 {
                let what = if error == ERROR_IO_TIMEOUT {
                    return Err(DriverError::timeout(format!(
                        "{} did not take a command within {:.1} s",
                        self.resource,
                        timeout.as_secs_f64()
                    )));
                } else {
                    format!("write failed (VXI-11 error {error})")
                };
                return Err(DriverError::connection(format!(
                    "{}: {what}",
                    self.resource
                )));
            }
        }
        Ok(())
    }

    fn read_until(&mut self, terminator: u8, max: usize) -> Result<Vec<u8>, DriverError> {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == terminator) {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                return Ok(line);
            }
            if self.ended && !self.pending.is_empty() {
                // The message ended without the terminator: that is its end.
                self.ended = false;
                return Ok(std::mem::take(&mut self.pending));
            }
            if self.pending.len() > max {
                self.pending.clear();
                return Err(DriverError::connection(format!(
                    "garbled reply from {}: more than {max} bytes without its terminator",
                    self.resource
                )));
            }
            self.read_more(Some(terminator))?;
        }
    }

    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, DriverError> {
        while self.pending.len() < len {
            self.read_more(None)?;
        }
        Ok(self.pending.drain(..len).collect())
    }

    fn clear(&mut self) -> Result<(), DriverError> {
        self.pending.clear();
        self.ended = false;
        Ok(())
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn resource(&self) -> &Resource {
        &self.resource
    }
}

impl Drop for Vxi11 {
    fn drop(&mut self) {
        if let Some(link) = self.link.as_mut() {
            let mut args = Xdr::default();
            args.u32(link.id);
            let _ = link.call(
                DEVICE_CORE,
                DEVICE_CORE_VERSION,
                DESTROY_LINK,
                &args.0,
                Duration::from_millis(500),
            );
        }
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for address in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout.max(Duration::from_millis(100))) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Asks the portmapper on `host` where the VXI-11 core channel listens.
fn core_port(host: &str, portmapper: u16, timeout: Duration) -> io::Result<u16> {
    let stream = connect(host, portmapper, timeout)?;
    let mut link = Link {
        stream,
        id: 0,
        xid: 1,
        max_recv: 0,
    };
    let mut args = Xdr::default();
    args.u32(DEVICE_CORE);
    args.u32(DEVICE_CORE_VERSION);
    args.u32(IPPROTO_TCP);
    args.u32(0);
    let mut reply = link.call(
        PORTMAPPER_PROGRAM,
        PORTMAPPER_VERSION,
        PORTMAPPER_GETPORT,
        &args.0,
        timeout,
    )?;
    let port = reply.u32().map_err(io::Error::other)?;
    match u16::try_from(port) {
        Ok(0) | Err(_) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the host's portmapper knows no VXI-11 instrument",
        )),
        Ok(port) => Ok(port),
    }
}

impl Link {
    /// One RPC call: its reply's results.
    fn call(
        &mut self,
        program: u32,
        version: u32,
        procedure: u32,
        args: &[u8],
        timeout: Duration,
    ) -> io::Result<Reader> {
        self.xid = self.xid.wrapping_add(1);
        let mut call = Xdr::default();
        call.u32(self.xid);
        call.u32(0); // CALL
        call.u32(2); // RPC version
        call.u32(program);
        call.u32(version);
        call.u32(procedure);
        call.u32(0); // credentials: AUTH_NONE
        call.u32(0);
        call.u32(0); // verifier: AUTH_NONE
        call.u32(0);
        call.0.extend_from_slice(args);
        write_record(&mut self.stream, &call.0)?;
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        loop {
            let record = read_record(&mut self.stream)?;
            let mut reply = Reader::new(record);
            let xid = reply.u32().map_err(io::Error::other)?;
            if xid != self.xid {
                // A late reply to a call that timed out.
                continue;
            }
            accepted(&mut reply).map_err(io::Error::other)?;
            return Ok(reply);
        }
    }
}

/// Checks an RPC reply header: a reply, accepted, successful.
fn accepted(reply: &mut Reader) -> Result<(), String> {
    if reply.u32()? != 1 {
        return Err("not an RPC reply".to_owned());
    }
    if reply.u32()? != 0 {
        return Err("the RPC call was denied".to_owned());
    }
    let _flavor = reply.u32()?;
    let _verifier = reply.opaque()?;
    match reply.u32()? {
        0 => Ok(()),
        1 => Err("the instrument has no VXI-11 core program".to_owned()),
        2 => Err("the instrument does not speak this VXI-11 version".to_owned()),
        3 => Err("the instrument does not know this VXI-11 call".to_owned()),
        4 => Err("the instrument could not decode the call".to_owned()),
        other => Err(format!("RPC error {other}")),
    }
}

/// Writes one RPC record (RFC 5531 record marking: one last fragment).
pub(crate) fn write_record(stream: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let header = 0x8000_0000u32 | u32::try_from(data.len()).map_err(io::Error::other)?;
    let mut record = Vec::with_capacity(4 + data.len());
    record.extend_from_slice(&header.to_be_bytes());
    record.extend_from_slice(data);
    stream.write_all(&record)?;
    stream.flush()
}

/// Reads one RPC record, its fragments joined; at most [`MAX_RECORD`].
pub(crate) fn read_record(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut record = Vec::new();
    loop {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header)?;
        let header = u32::from_be_bytes(header);
        let len = (header & 0x7FFF_FFFF) as usize;
        if record.len() + len > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an RPC record over {MAX_RECORD} bytes"),
            ));
        }
        let start = record.len();
        record.resize(start + len, 0);
        stream.read_exact(&mut record[start..])?;
        if header & 0x8000_0000 != 0 {
            return Ok(record);
        }
    }
}

/// XDR encoding, as much as VXI-11 needs.
#[derive(Default)]
pub(crate) struct Xdr(pub(crate) Vec<u8>);

impl Xdr {
    pub(crate) fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn opaque(&mut self, data: &[u8]) {
        self.u32(data.len() as u32);
        self.0.extend_from_slice(data);
        let pad = (4 - data.len() % 4) % 4;
        self.0.extend(std::iter::repeat_n(0, pad));
    }

    pub(crate) fn string(&mut self, text: &str) {
        self.opaque(text.as_bytes());
    }
}

/// XDR decoding.
pub(crate) struct Reader {
    data: Vec<u8>,
    at: usize,
}

impl Reader {
    pub(crate) fn new(data: Vec<u8>) -> Reader {
        Reader { data, at: 0 }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let bytes = self
            .data
            .get(self.at..self.at + 4)
            .ok_or_else(|| "a reply cut short".to_owned())?;
        self.at += 4;
        Ok(u32::from_be_bytes(bytes.try_into().expect("four bytes")))
    }

    pub(crate) fn opaque(&mut self) -> Result<Vec<u8>, String> {
        let len = self.u32()? as usize;
        let padded = len + (4 - len % 4) % 4;
        let bytes = self
            .data
            .get(self.at..self.at + len)
            .ok_or_else(|| "opaque data cut short".to_owned())?
            .to_vec();
        self.at += padded;
        Ok(bytes)
    }

    pub(crate) fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.opaque()?).map_err(|_| "a string that is not UTF-8".to_owned())
    }
}

pub mod server;
