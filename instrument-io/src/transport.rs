//! Transports: bytes to and from an instrument, every read within a
//! timeout, with errors a driver can pass on as they are.
//!
//! - a read that gets nothing in time is a `TimeoutError`;
//! - a connection that fails (refused, reset, a serial adapter pulled
//!   out) is a `ConnectionError`; the next operation connects again;
//! - reads are bounded ([`Transport::read_until`] takes a maximum), so an
//!   instrument that sends without end cannot fill memory.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use pyrolab_plugin_api::DriverError;

use crate::resource::Resource;
use crate::vxi11::Vxi11;

/// Bytes to and from one instrument.
pub trait Transport: Send {
    /// Sends `data` whole (one message, for message-based transports).
    fn write(&mut self, data: &[u8]) -> Result<(), DriverError>;

    /// Reads up to and including `terminator`, within the timeout, and
    /// returns what came before it. More than `max` bytes without it is a
    /// `ConnectionError` (and the rest is discarded).
    fn read_until(&mut self, terminator: u8, max: usize) -> Result<Vec<u8>, DriverError>;

    /// Reads exactly `len` bytes, within the timeout.
    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, DriverError>;

    /// Discards whatever the instrument sent that was not read (a late
    /// reply to a command that timed out), without waiting.
    fn clear(&mut self) -> Result<(), DriverError>;

    /// How long a read may wait for the instrument.
    fn set_timeout(&mut self, timeout: Duration);

    /// The timeout now.
    fn timeout(&self) -> Duration;

    /// The resource, for messages.
    fn resource(&self) -> &Resource;
}

/// How to open a transport.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a read may wait. Default 2 s.
    pub timeout: Duration,
    /// A serial port's baud rate. Default 9600.
    pub baudrate: u32,
    /// Where the VXI-11 portmapper listens (111, as the standard says;
    /// another port only for a simulator that cannot bind 111).
    pub portmapper_port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(2),
            baudrate: 9600,
            portmapper_port: crate::vxi11::PORTMAPPER_PORT,
        }
    }
}

/// Opens the transport `resource` names.
pub fn open(resource: &Resource, options: &Options) -> Result<Box<dyn Transport>, DriverError> {
    Ok(match resource {
        Resource::Socket { .. } => Box::new(Stream::open(
            resource.clone(),
            options.timeout,
            Wire::socket,
        )?),
        Resource::Serial { .. } => {
            let baudrate = options.baudrate;
            Box::new(Stream::open(
                resource.clone(),
                options.timeout,
                move |resource, timeout| Wire::serial(resource, timeout, baudrate),
            )?)
        }
        Resource::Vxi11 { .. } => Box::new(Vxi11::open(resource.clone(), options)?),
    })
}

/// The most one read takes from the wire.
const READ_CHUNK: usize = 256 * 1024;

/// A byte stream with its own connection: a TCP socket or a serial port.
enum Wire {
    Tcp(TcpStream),
    Serial(Box<dyn serialport::SerialPort>),
}

type Connect = dyn Fn(&Resource, Duration) -> Result<Wire, DriverError> + Send;

impl Wire {
    fn socket(resource: &Resource, timeout: Duration) -> Result<Wire, DriverError> {
        let Resource::Socket { host, port } = resource else {
            unreachable!("a socket resource");
        };
        let refused = |err: &dyn std::fmt::Display| {
            DriverError::connection(format!("cannot connect to {resource}: {err}"))
        };
        let addresses = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| refused(&e))?;
        let mut last = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeout.max(Duration::from_millis(100))) {
                Ok(stream) => {
                    // Commands are small and wanted now.
                    let _ = stream.set_nodelay(true);
                    return Ok(Wire::Tcp(stream));
                }
                Err(err) => last = Some(err),
            }
        }
        Err(match last {
            Some(err) => refused(&err),
            None => refused(&format!("{host} has no address")),
        })
    }

    fn serial(resource: &Resource, timeout: Duration, baudrate: u32) -> Result<Wire, DriverError> {
        let Resource::Serial { port } = resource else {
            unreachable!("a serial resource");
        };
        serialport::new(port, baudrate)
            .timeout(timeout)
            .open()
            .map(Wire::Serial)
            .map_err(|err| DriverError::connection(format!("cannot open {resource}: {err}")))
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let timeout = timeout.max(Duration::from_millis(1));
        match self {
            Wire::Tcp(stream) => stream.set_read_timeout(Some(timeout)),
            Wire::Serial(port) => port.set_timeout(timeout).map_err(io::Error::other),
        }
    }

    /// Discards whatever arrived and was not read, at once: no wait (a
    /// query pays nothing for it). An error: the connection is gone.
    fn discard_available(&mut self) -> io::Result<()> {
        match self {
            Wire::Tcp(stream) => {
                stream.set_nonblocking(true)?;
                let mut buffer = [0u8; 4096];
                let result = loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => continue,
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => break Err(err),
                    }
                };
                stream.set_nonblocking(false)?;
                result
            }
            Wire::Serial(port) => {
                if port.bytes_to_read().map_err(io::Error::other)? > 0 {
                    port.clear(serialport::ClearBuffer::Input)
                        .map_err(io::Error::other)?;
                }
                Ok(())
            }
        }
    }

    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(stream) => stream.read(buffer),
            Wire::Serial(port) => port.read(buffer),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Wire::Tcp(stream) => stream.write_all(data).and_then(|()| stream.flush()),
            Wire::Serial(port) => port.write_all(data).and_then(|()| port.flush()),
        }
    }
}

/// A stream transport: a wire, connected on demand, and what it read
/// beyond the last reply.
struct Stream {
    resource: Resource,
    timeout: Duration,
    connect: Box<Connect>,
    wire: Option<Wire>,
    pending: Vec<u8>,
}

impl Stream {
    fn open(
        resource: Resource,
        timeout: Duration,
        connect: impl Fn(&Resource, Duration) -> Result<Wire, DriverError> + Send + 'static,
    ) -> Result<Stream, DriverError> {
        let wire = connect(&resource, timeout)?;
        Ok(Stream {
            resource,
            timeout,
            connect: Box::new(connect),
            wire: Some(wire),
            pending: Vec::new(),
        })
    }

    fn wire(&mut self) -> Result<&mut Wire, DriverError> {
        if self.wire.is_none() {
            self.wire = Some((self.connect)(&self.resource, self.timeout)?);
            self.pending.clear();
        }
        Ok(self.wire.as_mut().expect("connected above"))
    }

    /// The connection failed: the next operation connects again.
    fn lost(&mut self, err: &io::Error) -> DriverError {
        self.wire = None;
        self.pending.clear();
        DriverError::connection(format!("connection to {} lost: {err}", self.resource))
    }

    /// Reads more into `pending`, waiting until `deadline` at most.
    fn fill(&mut self, deadline: Instant, waiting_for: &str) -> Result<(), DriverError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out(waiting_for));
        }
        let wire = self.wire()?;
        wire.set_read_timeout(left).map_err(|e| self.lost(&e))?;
        let wire = self.wire.as_mut().expect("connected above");
        // Straight into `pending`, past what it holds: no copy between a
        // buffer and it, which counts for blocks of megabytes.
        let had = self.pending.len();
        self.pending.resize(had + READ_CHUNK, 0);
        let read = wire.read(&mut self.pending[had..]);
        self.pending.truncate(had + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => Err(self.lost(&io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the instrument closed the connection",
            ))),
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(self.timed_out(waiting_for))
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(err) => Err(self.lost(&err)),
        }
    }

    fn timed_out(&self, waiting_for: &str) -> DriverError {
        DriverError::timeout(format!(
            "{} did not send {waiting_for} within {:.1} s",
            self.resource,
            self.timeout.as_secs_f64()
        ))
    }
}

impl Transport for Stream {
    fn write(&mut self, data: &[u8]) -> Result<(), DriverError> {
        let written = self.wire()?.write_all(data);
        written.map_err(|err| self.lost(&err))
    }

    fn read_until(&mut self, terminator: u8, max: usize) -> Result<Vec<u8>, DriverError> {
        let mut deadline = Instant::now() + self.timeout;
        // Where the search for the terminator goes on from: a long reply
        // (an ASCII waveform) is scanned once, not again on every read.
        let mut scanned = 0;
        loop {
            if let Some(at) = self.pending[scanned..]
                .iter()
                .position(|&b| b == terminator)
            {
                let rest = self.pending.split_off(scanned + at + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                return Ok(line);
            }
            if self.pending.len() > scanned {
                // Still coming: the timeout is for each wait, as in read_exact.
                deadline = Instant::now() + self.timeout;
            }
            scanned = self.pending.len();
            if self.pending.len() > max {
                self.pending.clear();
                let _ = self.clear();
                return Err(DriverError::connection(format!(
                    "garbled reply from {}: more than {max} bytes without its terminator",
                    self.resource
                )));
            }
            self.fill(deadline, "a reply")?;
        }
    }

    /// The timeout is for each wait, as VISA's is: a long block that keeps
    /// coming (a waveform of many megabytes) is read whole however long it
    /// takes, and an instrument that stops sending in its middle times out.
    fn read_exact(&mut self, len: usize) -> Result<Vec<u8>, DriverError> {
        self.pending.reserve(len.saturating_sub(self.pending.len()));
        while self.pending.len() < len {
            let had = self.pending.len();
            let deadline = Instant::now() + self.timeout;
            self.fill(deadline, &format!("{len} bytes (got {had})"))?;
        }
        if self.pending.len() == len {
            return Ok(std::mem::take(&mut self.pending));
        }
        let rest = self.pending.split_off(len);
        Ok(std::mem::replace(&mut self.pending, rest))
    }

    fn clear(&mut self) -> Result<(), DriverError> {
        self.pending.clear();
        let Some(wire) = self.wire.as_mut() else {
            return Ok(());
        };
        if wire.discard_available().is_err() {
            // Closed, or failing: the next operation connects again.
            self.wire = None;
        }
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
