//! The wire to the laser: a command line out, a reply line back, each
//! within a timeout, with errors a caller can act on.

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyrolab_plugin_api::DriverError;
use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits};

/// A connection that answers commands.
pub trait Link: Send + Sync {
    /// Sends `command` and returns the reply line, without its terminator.
    fn query(&mut self, command: &str) -> Result<String, DriverError>;

    /// Sends `command` and reads `len` raw bytes (a binary reply).
    fn query_bytes(&mut self, command: &str, len: usize) -> Result<Vec<u8>, DriverError>;
}

/// The serial port settings (the laser's defaults: 9600 8N1, no flow
/// control; its USB port is a virtual serial port too).
#[derive(Clone, Debug)]
pub struct SerialSettings {
    /// The device: `/dev/ttyUSB0`, `COM3`, ...
    pub port: String,
    /// Baud rate (2400, 4800, 9600, 19200).
    pub baudrate: u32,
    /// The line terminator, as the laser is set up: CR (the default, and
    /// always over USB), LF, or CR LF.
    pub terminator: Vec<u8>,
    /// How long a reply may take.
    pub timeout: Duration,
    /// A pause between sending a command and reading its reply (PyroLab's
    /// `query_delay`); rarely needed, since reading waits for the line.
    pub query_delay: Duration,
}

/// The laser on a serial port.
pub struct SerialLink {
    /// Behind a mutex only to make the link `Sync` (a driver may be shared
    /// between threads); every use has `&mut self` and so never waits.
    port: Mutex<Box<dyn SerialPort>>,
    settings: SerialSettings,
}

impl SerialLink {
    /// Opens the port.
    pub fn open(settings: SerialSettings) -> Result<SerialLink, DriverError> {
        let port = serialport::new(&settings.port, settings.baudrate)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(settings.timeout)
            .open()
            .map_err(|err| {
                DriverError::connection(format!(
                    "Could not connect to laser on port {}: {err}",
                    settings.port
                ))
            })?;
        let mut link = SerialLink {
            port: Mutex::new(port),
            settings,
        };
        // Whatever the laser said before we came is not for us.
        link.discard_input()?;
        Ok(link)
    }

    fn port(&mut self) -> &mut Box<dyn SerialPort> {
        self.port.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    fn discard_input(&mut self) -> Result<(), DriverError> {
        self.port()
            .clear(ClearBuffer::Input)
            .map_err(|err| self.gone(&io::Error::other(err)))
    }

    fn send(&mut self, command: &str) -> Result<(), DriverError> {
        // A late reply to an earlier command (one that timed out) must not
        // pass for this command's reply.
        self.discard_input()?;
        let mut line = command.as_bytes().to_vec();
        line.extend_from_slice(&self.settings.terminator);
        let port = self.port();
        let written = port.write_all(&line).and_then(|()| port.flush());
        written.map_err(|err| self.gone(&err))?;
        if !self.settings.query_delay.is_zero() {
            std::thread::sleep(self.settings.query_delay);
        }
        Ok(())
    }

    /// Reads until `done` says the bytes so far are complete.
    fn read_until(
        &mut self,
        command: &str,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, DriverError> {
        let deadline = Instant::now() + self.settings.timeout;
        let mut received = Vec::new();
        let mut buffer = [0u8; 256];
        while !done(&received) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(command, &received));
            }
            self.port()
                .set_timeout(left)
                .map_err(|err| self.gone(&io::Error::other(err)))?;
            let read = self.port().read(&mut buffer);
            match read {
                // A serial port does not end; a vanished one does.
                Ok(0) => return Err(self.gone(&io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.gone(&err)),
            }
        }
        Ok(received)
    }

    fn timed_out(&self, command: &str, received: &[u8]) -> DriverError {
        let partial = if received.is_empty() {
            String::new()
        } else {
            format!(" (got only {:?})", String::from_utf8_lossy(received))
        };
        DriverError::timeout(format!(
            "the laser on {} did not answer {command} within {:.1} s{partial}",
            self.settings.port,
            self.settings.timeout.as_secs_f64()
        ))
    }

    fn gone(&self, err: &io::Error) -> DriverError {
        DriverError::connection(format!(
            "lost the laser on {}: {err}; check the cable and power, then connect() again",
            self.settings.port
        ))
    }
}

impl Link for SerialLink {
    fn query(&mut self, command: &str) -> Result<String, DriverError> {
        self.send(command)?;
        let terminator = *self.settings.terminator.last().unwrap_or(&b'\r');
        let bytes = self.read_until(command, |got| got.contains(&terminator))?;
        let end = bytes
            .iter()
            .position(|b| *b == terminator)
            .unwrap_or(bytes.len());
        let line = &bytes[..end];
        let text = std::str::from_utf8(line)
            .ok()
            .filter(|text| {
                text.chars()
                    .all(|c| !c.is_control() || c == '\r' || c == '\n')
            })
            .ok_or_else(|| garbled(command, line))?;
        Ok(text.trim_matches(['\r', '\n']).to_owned())
    }

    fn query_bytes(&mut self, command: &str, len: usize) -> Result<Vec<u8>, DriverError> {
        self.send(command)?;
        let mut bytes = self.read_until(command, |got| got.len() >= len)?;
        bytes.truncate(len);
        Ok(bytes)
    }
}

/// A reply that is not text: noise on the line, or the wrong baud rate.
pub fn garbled(command: &str, reply: &[u8]) -> DriverError {
    DriverError::connection(format!(
        "garbled reply to {command}: {:?} (noise on the line, or a baud rate or terminator that does not match the laser's)",
        String::from_utf8_lossy(reply)
    ))
}
