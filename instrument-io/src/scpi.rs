//! SCPI over any [`Transport`]: commands and queries with line
//! termination, IEEE 488.2 binary blocks (definite `#<n><len><data>` and
//! indefinite `#0<data>`), the error queue (`SYST:ERR?`) drained into a
//! driver error that carries the instrument's own message, `*IDN?`, and
//! `*OPC?` waits.
//!
//! Every query starts on a clean line: whatever a command that timed out
//! answered late is discarded first, so it is never taken for the next
//! reply.

use std::str::FromStr;
use std::time::Duration;

use pyrolab_plugin_api::DriverError;

use crate::resource::Resource;
use crate::transport::{self, Options, Transport};

/// The most entries read from the error queue at once (an instrument
/// whose queue never empties must not loop us forever).
const MAX_QUEUED_ERRORS: usize = 64;

/// An SCPI instrument. It is `Send + Sync`, as a driver must be; its
/// methods take `&mut self` (one command on the wire at a time).
pub struct Scpi {
    /// Behind a mutex only to make it `Sync` (a serial port is `Send`
    /// alone); every use has `&mut self`, so it never waits.
    transport: std::sync::Mutex<Box<dyn Transport>>,
    resource: Resource,
    /// Appended to each command. Default `\n`.
    pub write_termination: String,
    /// Ends each reply. Default `\n` (a `\r` before it is dropped too).
    pub read_termination: u8,
    /// The longest reply line. Default 1 MiB.
    pub max_reply: usize,
    /// The longest binary block. Default 1 GiB.
    pub max_block: usize,
    /// A definite block was read and the terminator the instrument sends
    /// after it may still be on its way: the next reply skips it.
    terminator_due: bool,
}

/// What `*IDN?` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
}

/// One entry of the instrument's error queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentError {
    /// The SCPI error number (`-222`); 0 is "no error".
    pub code: i32,
    /// Its text, as the instrument gives it (`Data out of range`).
    pub message: String,
}

impl std::fmt::Display for InstrumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},\"{}\"", self.code, self.message)
    }
}

impl Scpi {
    /// Opens the instrument at VISA resource `resource`.
    pub fn open(resource: &str, options: &Options) -> Result<Scpi, DriverError> {
        let resource = Resource::parse(resource)?;
        Ok(Scpi::new(transport::open(&resource, options)?))
    }

    /// SCPI over `transport`.
    pub fn new(transport: Box<dyn Transport>) -> Scpi {
        Scpi {
            resource: transport.resource().clone(),
            transport: std::sync::Mutex::new(transport),
            write_termination: "\n".to_owned(),
            read_termination: b'\n',
            max_reply: 1024 * 1024,
            max_block: 1024 * 1024 * 1024,
            terminator_due: false,
        }
    }

    /// The transport, for what SCPI does not cover.
    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_mut()
    }

    /// The resource, for messages.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Sends a command (no reply expected).
    pub fn write(&mut self, command: &str) -> Result<(), DriverError> {
        let mut line = String::with_capacity(command.len() + self.write_termination.len());
        line.push_str(command);
        line.push_str(&self.write_termination);
        self.transport().write(line.as_bytes())
    }

    /// Sends a query and returns its reply line.
    pub fn query(&mut self, command: &str) -> Result<String, DriverError> {
        self.transport().clear()?;
        self.write(command)?;
        self.read_line()
            .map_err(|err| err.context(format!("in reply to {command:?}")))
    }

    /// Reads one reply line.
    pub fn read_line(&mut self) -> Result<String, DriverError> {
        let (terminator, max) = (self.read_termination, self.max_reply);
        let mut line = self.transport().read_until(terminator, max)?;
        if std::mem::take(&mut self.terminator_due) && matches!(line.as_slice(), [] | [b'\r']) {
            // The end of the last block, not this reply.
            line = self.transport().read_until(terminator, max)?;
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| self.garbled("a reply that is not text"))
    }

    /// Sends a query whose reply is a number (or anything `FromStr`).
    pub fn query_parsed<T: FromStr>(&mut self, command: &str) -> Result<T, DriverError> {
        let reply = self.query(command)?;
        reply.trim().parse().map_err(|_| {
            self.garbled(&format!(
                "{reply:?} in reply to {command:?}, where a {} was expected",
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("value")
            ))
        })
    }

    /// Sends a query whose reply is an IEEE 488.2 binary block.
    pub fn query_block(&mut self, command: &str) -> Result<Vec<u8>, DriverError> {
        self.transport().clear()?;
        self.write(command)?;
        self.read_block()
            .map_err(|err| err.context(format!("in reply to {command:?}")))
    }

    /// Reads an IEEE 488.2 binary block: `#<n><len><data>` (n digits of
    /// length), or `#0<data>` up to the line's end.
    pub fn read_block(&mut self) -> Result<Vec<u8>, DriverError> {
        let mut head = self.transport().read_exact(2)?;
        if std::mem::take(&mut self.terminator_due) {
            // The end of the last block, come after it was cleared.
            while matches!(head[0], b'\r' | b'\n') {
                head.remove(0);
                head.extend(self.transport().read_exact(1)?);
            }
        }
        if head[0] != b'#' {
            let _ = self.transport().clear();
            return Err(self.garbled(&format!(
                "a reply starting {:?}, where a binary block (#...) was expected",
                String::from_utf8_lossy(&head)
            )));
        }
        let digits = match head[1] {
            b'0' => {
                // Indefinite: to the end of the message.
                let (terminator, max) = (self.read_termination, self.max_block);
                return self.transport().read_until(terminator, max);
            }
            digit @ b'1'..=b'9' => usize::from(digit - b'0'),
            other => {
                let _ = self.transport().clear();
                return Err(self.garbled(&format!(
                    "a binary block whose length digit is {:?}",
                    char::from(other)
                )));
            }
        };
        let length = self.transport().read_exact(digits)?;
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                let _ = self.transport().clear();
                self.garbled(&format!(
                    "a binary block whose length is {:?}",
                    String::from_utf8_lossy(&length)
                ))
            })?;
        if length > self.max_block {
            let _ = self.transport().clear();
            return Err(self.garbled(&format!(
                "a binary block of {length} bytes, over the limit of {}",
                self.max_block
            )));
        }
        // The terminator after the data is left: the next query clears
        // it, or skips it should it come late.
        let data = self.transport().read_exact(length)?;
        self.terminator_due = true;
        Ok(data)
    }

    /// `*IDN?`.
    pub fn identify(&mut self) -> Result<Identity, DriverError> {
        let reply = self.query("*IDN?")?;
        let mut fields = reply.splitn(4, ',').map(|f| f.trim().to_owned());
        let mut next = || fields.next().unwrap_or_default();
        Ok(Identity {
            manufacturer: next(),
            model: next(),
            serial: next(),
            firmware: next(),
        })
    }

    /// Drains the error queue (`SYST:ERR?` until `0,"No error"`).
    pub fn errors(&mut self) -> Result<Vec<InstrumentError>, DriverError> {
        let mut errors = Vec::new();
        for _ in 0..MAX_QUEUED_ERRORS {
            let reply = self.query("SYST:ERR?")?;
            let error = parse_error(&reply)
                .ok_or_else(|| self.garbled(&format!("{reply:?} in reply to \"SYST:ERR?\"")))?;
            if error.code == 0 {
                return Ok(errors);
            }
            errors.push(error);
        }
        Ok(errors)
    }

    /// An error carrying the instrument's messages, if its error queue
    /// holds any (the queue is emptied).
    pub fn check(&mut self) -> Result<(), DriverError> {
        let errors = self.errors()?;
        if errors.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Err(DriverError::runtime(format!(
            "{} reports: {}",
            self.resource(),
            listed.join("; ")
        )))
    }

    /// Sends a command, then checks the error queue: the instrument's own
    /// message when it refused it.
    pub fn write_checked(&mut self, command: &str) -> Result<(), DriverError> {
        self.write(command)?;
        self.check()
            .map_err(|err| err.context(format!("after {command:?}")))
    }

    /// Waits (at most `timeout`) until the operations in progress are done
    /// (`*OPC?` answering 1).
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<(), DriverError> {
        let usual = self.transport().timeout();
        self.transport().set_timeout(timeout);
        let reply = self.query("*OPC?");
        self.transport().set_timeout(usual);
        match reply?.trim() {
            "1" | "+1" => Ok(()),
            other => Err(self.garbled(&format!("{other:?} in reply to \"*OPC?\""))),
        }
    }

    fn garbled(&self, what: &str) -> DriverError {
        DriverError::connection(format!("garbled reply from {}: {what}", self.resource()))
    }
}

/// `-222,"Data out of range"` (also `+0,"No error"`, and a message
/// without quotes).
pub fn parse_error(reply: &str) -> Option<InstrumentError> {
    let (code, message) = reply.trim().split_once(',').unwrap_or((reply.trim(), ""));
    let code = code.trim().trim_start_matches('+').parse().ok()?;
    let message = message.trim();
    let message = message
        .strip_prefix('"')
        .and_then(|m| m.strip_suffix('"'))
        .unwrap_or(message);
    Some(InstrumentError {
        code,
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_queue_entries_parse_as_instruments_write_them() {
        assert_eq!(
            parse_error("-222,\"Data out of range\""),
            Some(InstrumentError {
                code: -222,
                message: "Data out of range".into()
            })
        );
        assert_eq!(parse_error("+0,\"No error\"").map(|e| e.code), Some(0));
        assert_eq!(parse_error("0").map(|e| e.code), Some(0));
        assert_eq!(parse_error("garbage"), None);
    }
}
