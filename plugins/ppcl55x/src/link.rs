//! The wire: one ITLA request, one reply, over an instrument-io serial
//! transport, with the MSA's recovery and its errors turned into the
//! driver's.
//!
//! - A reply that fails its checksum: the laser is asked once for its last
//!   reply again (LstRsp); a second bad one is a `ConnectionError`.
//! - A reply with CE (the laser got our request corrupted and did not run
//!   it): the request is sent once more; a second CE is a
//!   `ConnectionError`.
//! - A reply echoing another register is a `ConnectionError`.
//! - XE: the reason is read from NOP's error field, and is a `RuntimeError`
//!   such as `the laser refused writing 197 to FCF1 (0x35): RVE (register
//!   value range error)`.
//! - No reply within the timeout is a `TimeoutError`; a lost port a
//!   `ConnectionError` (the transport opens the port again on the next
//!   request).

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use instrument_io::{Options, Resource, Transport};
use pyrolab_plugin_api::{DriverError, ErrorKind, Result, tracing};

use crate::protocol::{
    self, ERROR_FIELD, PENDING_FLAGS, RNI, Reply, Status, register, register_name,
};

/// The longest string an AEA read may announce; a longer one is nonsense.
const MAX_STRING: u16 = 256;
/// How often NOP is polled while an operation is pending.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What a command came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Done: the register's value (or the value written).
    Value(u16),
    /// Started: poll NOP until its pending flags clear.
    Pending,
    /// A string of this many bytes waits at AEA-EAR.
    String(u16),
    /// Refused, with NOP's error code.
    Refused(u8),
}

/// An ITLA on a serial port.
pub struct Itla {
    /// Behind a mutex only to make the driver `Sync` (a serial port is
    /// `Send` alone); every use has `&mut self`, so it never waits.
    transport: Mutex<Box<dyn Transport>>,
    /// The port, for messages.
    port: String,
    baudrate: u32,
}

/// The port as instrument-io names it: an `ASRL...::INSTR` resource, or
/// a `TCPIP0::HOST::PORT::SOCKET` one (the laser behind a
/// serial-to-Ethernet adapter), as it is; anything else (`/dev/ttyUSB0`,
/// `COM6`) a serial port's name.
pub fn serial_resource(port: &str) -> Result<Resource> {
    let port = port.trim();
    if port.is_empty() {
        return Err(DriverError::value("the serial port is empty"));
    }
    let head = port.get(..5).unwrap_or("").to_ascii_uppercase();
    if head.starts_with("ASRL") || head == "TCPIP" {
        return match Resource::parse(port)? {
            resource @ (Resource::Serial { .. } | Resource::Socket { .. }) => Ok(resource),
            _ => Err(DriverError::value(format!(
                "{port} is not a serial port nor a socket (VXI-11 carries no serial line)"
            ))),
        };
    }
    Ok(Resource::Serial {
        port: port.to_owned(),
    })
}

impl Itla {
    /// Opens `port` (a device path, `COM6`, or `ASRL...::INSTR`).
    pub fn open(port: &str, baudrate: u32, timeout: Duration) -> Result<Itla> {
        let resource = serial_resource(port)?;
        let options = Options {
            timeout,
            baudrate,
            ..Options::default()
        };
        let transport = instrument_io::open(&resource, &options)?;
        Ok(Itla::over(transport, port.to_owned(), baudrate))
    }

    /// An ITLA over a transport opened elsewhere (a test's).
    pub fn over(transport: Box<dyn Transport>, port: String, baudrate: u32) -> Itla {
        Itla {
            transport: Mutex::new(transport),
            port,
            baudrate,
        }
    }

    /// The port, as given.
    pub fn port(&self) -> &str {
        &self.port
    }

    fn transport(&mut self) -> &mut dyn Transport {
        self.transport
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
    }

    /// Sends `frame` on a clean line and reads the 4-byte reply.
    fn send(&mut self, frame: [u8; 4], what: &str) -> Result<[u8; 4]> {
        let sent = (|| {
            let transport = self.transport();
            transport.clear()?;
            transport.write(&frame)?;
            transport.read_exact(4)
        })();
        match sent {
            Ok(bytes) => Ok(bytes.try_into().expect("read_exact(4) reads 4 bytes")),
            Err(err) => Err(self.wire_error(err, what)),
        }
    }

    /// A transport failure, said in the laser's terms.
    fn wire_error(&mut self, err: DriverError, what: &str) -> DriverError {
        let timeout = self.transport().timeout().as_secs_f64();
        match err.kind() {
            ErrorKind::TimeoutError => DriverError::timeout(format!(
                "the laser on {} did not answer {what} within {:.1} s; check that it is powered and set to {} baud",
                self.port, timeout, self.baudrate
            )),
            ErrorKind::ConnectionError => DriverError::connection(format!(
                "lost the laser on {} during {what}: {}; check the cable and the laser's power, then connect() again",
                self.port,
                err.message()
            )),
            _ => err,
        }
    }

    /// One request and its reply, with the MSA's recovery from corrupted
    /// frames (see the module's documentation).
    fn exchange(&mut self, write: bool, register: u8, data: u16) -> Result<Reply> {
        let what = describe(write, register, data);
        let request = protocol::request(write, register, data);
        let mut resent = false;
        loop {
            let reply = self.reply_to(request, &what)?;
            if reply.communication_error {
                if resent {
                    return Err(DriverError::connection(format!(
                        "the laser on {} received {what} corrupted twice (its CE flag): noise on the line?",
                        self.port
                    )));
                }
                tracing::debug!(%what, "the laser saw a corrupted request (CE); sending it again");
                resent = true;
                continue;
            }
            if reply.register != register {
                return Err(DriverError::connection(format!(
                    "the laser on {} answered {what} with a reply about {}: a late reply, or another program on the port?",
                    self.port,
                    register_name(reply.register)
                )));
            }
            return Ok(reply);
        }
    }

    /// The reply to `request`; a garbled one is asked for again (LstRsp).
    fn reply_to(&mut self, request: [u8; 4], what: &str) -> Result<Reply> {
        let first = self.send(request, what)?;
        if let Ok(reply) = protocol::decode(first) {
            return Ok(reply);
        }
        tracing::debug!(%what, reply = ?first, "garbled reply; asking for it again (LstRsp)");
        let again = self.send(protocol::last_response_request(), what)?;
        protocol::decode(again).map_err(|_| {
            DriverError::connection(format!(
                "garbled reply to {what} from the laser on {}: {} and, asked again, {} fail their checksum; check the baud rate ({})",
                self.port,
                hex(first),
                hex(again),
                self.baudrate
            ))
        })
    }

    /// A command, and for a refused one, the reason from NOP.
    fn command(&mut self, write: bool, register: u8, data: u16) -> Result<Answer> {
        let reply = self.exchange(write, register, data)?;
        Ok(match reply.status {
            Status::Ok => Answer::Value(reply.data),
            Status::CommandPending => Answer::Pending,
            Status::AutomaticExtendedAddressing => Answer::String(reply.data),
            Status::ExecutionError => {
                let nop = self.exchange(false, register::NOP, 0)?;
                Answer::Refused((nop.data & ERROR_FIELD) as u8)
            }
        })
    }

    fn refused(&self, write: bool, register: u8, data: u16, code: u8) -> DriverError {
        DriverError::runtime(format!(
            "the laser refused {}: {}",
            describe(write, register, data),
            protocol::describe_error(code)
        ))
    }

    fn nonsense(&self, write: bool, register: u8, answer: Answer) -> DriverError {
        DriverError::connection(format!(
            "the laser on {} answered {} with {answer:?}, which makes no sense for it",
            self.port,
            describe(write, register, 0)
        ))
    }

    /// Reads a 16-bit register.
    pub fn read(&mut self, register: u8) -> Result<u16> {
        match self.read_optional(register)? {
            Some(value) => Ok(value),
            None => Err(self.refused(false, register, 0, RNI)),
        }
    }

    /// Reads a register the laser may not implement (RNI gives `None`).
    pub fn read_optional(&mut self, register: u8) -> Result<Option<u16>> {
        match self.command(false, register, 0)? {
            Answer::Value(value) => Ok(Some(value)),
            Answer::Refused(RNI) => Ok(None),
            Answer::Refused(code) => Err(self.refused(false, register, 0, code)),
            other => Err(self.nonsense(false, register, other)),
        }
    }

    /// Reads a signed register (dBm × 100 and the like).
    pub fn read_signed(&mut self, register: u8) -> Result<i16> {
        self.read(register).map(|value| value as i16)
    }

    /// Writes `data`; returns whether it started a pending operation.
    pub fn write(&mut self, register: u8, data: u16) -> Result<bool> {
        match self.write_optional(register, data)? {
            Some(pending) => Ok(pending),
            None => Err(self.refused(true, register, data, RNI)),
        }
    }

    /// Writes a register the laser may not implement (RNI gives `None`).
    pub fn write_optional(&mut self, register: u8, data: u16) -> Result<Option<bool>> {
        match self.command(true, register, data)? {
            Answer::Value(_) => Ok(Some(false)),
            Answer::Pending => Ok(Some(true)),
            Answer::Refused(RNI) => Ok(None),
            Answer::Refused(code) => Err(self.refused(true, register, data, code)),
            other => Err(self.nonsense(true, register, other)),
        }
    }

    /// Reads a string register (DevTyp, MFGR, Model, SerNo, ...) by
    /// automatic extended addressing: its length, then two characters per
    /// read of AEA-EAR.
    pub fn read_string(&mut self, register: u8) -> Result<String> {
        let len = match self.command(false, register, 0)? {
            Answer::String(len) if len <= MAX_STRING => len,
            // A string of two characters or fewer may come as a value.
            Answer::Value(word) => return Ok(text(&word.to_be_bytes())),
            Answer::Refused(code) => return Err(self.refused(false, register, 0, code)),
            other => return Err(self.nonsense(false, register, other)),
        };
        let mut bytes = Vec::with_capacity(usize::from(len) + 1);
        while bytes.len() < usize::from(len) {
            let word = self.read(register::AEA_EAR).map_err(|err| {
                err.context(format!(
                    "after {} of the {len} bytes of {}",
                    bytes.len(),
                    register_name(register)
                ))
            })?;
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.truncate(usize::from(len));
        Ok(text(&bytes))
    }

    /// Polls NOP until no operation is pending, for at most `limit`.
    pub fn wait_until_ready(&mut self, limit: Duration, what: &str) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let nop = self.read(register::NOP)?;
            if nop & PENDING_FLAGS == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DriverError::timeout(format!(
                    "the laser on {} was still {what} after {:.1} s (NOP 0x{nop:04X}); raise settle_timeout if it needs longer",
                    self.port,
                    limit.as_secs_f64()
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

/// `reading FCF1 (0x35)` / `writing 197 to FCF1 (0x35)`.
fn describe(write: bool, register: u8, data: u16) -> String {
    if write {
        format!("writing {data} to {}", register_name(register))
    } else {
        format!("reading {}", register_name(register))
    }
}

/// A string's bytes up to its NUL, trimmed.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_owned()
}

fn hex(frame: [u8; 4]) -> String {
    format!(
        "{:02X} {:02X} {:02X} {:02X}",
        frame[0], frame[1], frame[2], frame[3]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_paths_names_or_asrl_resources() {
        assert_eq!(
            serial_resource("ASRL/dev/pts/3::INSTR").unwrap(),
            Resource::Serial {
                port: "/dev/pts/3".into()
            }
        );
        assert_eq!(
            serial_resource("COM6").unwrap(),
            Resource::Serial {
                port: "COM6".into()
            }
        );
        assert_eq!(
            serial_resource(" /dev/ttyUSB0 ").unwrap(),
            Resource::Serial {
                port: "/dev/ttyUSB0".into()
            }
        );
        assert_eq!(
            serial_resource("").unwrap_err().kind(),
            ErrorKind::ValueError
        );
        assert_eq!(
            serial_resource("ASRL::INSTR").unwrap_err().kind(),
            ErrorKind::ValueError
        );
    }

    #[test]
    fn strings_end_at_their_nul() {
        assert_eq!(text(b"PPCL550\0"), "PPCL550");
        assert_eq!(text(b"CW ITLA "), "CW ITLA");
    }
}
