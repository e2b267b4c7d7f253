//! What every SCPI driver with PyroLab's network-instrument methods has
//! alike (`connect(address, timeout)`, `close()`, a `timeout` property in
//! milliseconds, `query`, `write`, `write_block`, `wait_for_device`), in
//! one place: a driver keeps a [`Session`] and forwards to it.

use std::time::Duration;

use pyrolab_plugin_api::DriverError;

use crate::{Options, Scpi};

/// How long an operation may take to complete (`*OPC?`).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A driver's connection to its instrument, or none yet.
pub struct Session {
    /// What the instrument is, for messages (`an SMU`).
    what: &'static str,
    /// The instrument's SCPI socket port, for an address without one.
    default_port: u16,
    /// The reply timeout, in milliseconds (PyroLab's unit).
    timeout_ms: f64,
    /// Where a VXI-11 host's portmapper listens.
    portmapper_port: u16,
    scpi: Option<Scpi>,
}

impl Session {
    /// Not connected yet; `timeout_ms` the reply timeout.
    pub fn new(
        what: &'static str,
        default_port: u16,
        timeout_ms: f64,
    ) -> Result<Session, DriverError> {
        check_timeout(timeout_ms)?;
        Ok(Session {
            what,
            default_port,
            timeout_ms,
            portmapper_port: crate::vxi11::PORTMAPPER_PORT,
            scpi: None,
        })
    }

    /// Where VXI-11 hosts' portmappers listen (111; another port only for
    /// a simulator).
    pub fn set_portmapper_port(&mut self, port: u16) {
        self.portmapper_port = port;
    }

    /// PyroLab's `connect(address="", timeout=None)`: to `address`, else
    /// to `default` (the service's `address` parameter); returns the
    /// address connected to.
    pub fn connect_to(
        &mut self,
        address: Option<String>,
        default: Option<&str>,
        timeout_ms: Option<f64>,
        setup: &[&str],
    ) -> Result<String, DriverError> {
        let address = address
            .filter(|a| !a.is_empty())
            .or_else(|| default.map(str::to_owned))
            .ok_or_else(|| {
                DriverError::value(
                    "no address: give connect(address=...) or the service parameter `address`",
                )
            })?;
        self.connect(&address, timeout_ms, setup)?;
        Ok(address)
    }

    /// Connects to `address`: a host (its SCPI socket, `default_port`) or
    /// a whole VISA resource; then sends `setup` and checks the error
    /// queue. `timeout_ms` replaces the timeout when given.
    pub fn connect(
        &mut self,
        address: &str,
        timeout_ms: Option<f64>,
        setup: &[&str],
    ) -> Result<(), DriverError> {
        let timeout_ms = timeout_ms.unwrap_or(self.timeout_ms);
        check_timeout(timeout_ms)?;
        let resource = if address.contains("::") {
            address.to_owned()
        } else {
            format!("TCPIP0::{address}::{}::SOCKET", self.default_port)
        };
        let options = Options {
            timeout: Duration::from_secs_f64(timeout_ms / 1000.0),
            portmapper_port: self.portmapper_port,
            ..Options::default()
        };
        let mut scpi = Scpi::open(&resource, &options)?;
        for command in setup {
            scpi.write(command)?;
        }
        scpi.check()
            .map_err(|err| err.context(format!("while setting up {} at {resource}", self.what)))?;
        self.scpi = Some(scpi);
        self.timeout_ms = timeout_ms;
        Ok(())
    }

    /// The connection, or a `ConnectionError` saying to connect first.
    pub fn scpi(&mut self) -> Result<&mut Scpi, DriverError> {
        let what = self.what;
        self.scpi.as_mut().ok_or_else(|| {
            DriverError::connection(format!(
                "not connected to {what}: call connect(address) first"
            ))
        })
    }

    /// Closes the connection; whether there was one.
    pub fn close(&mut self) -> bool {
        self.scpi.take().is_some()
    }

    /// The reply timeout, in milliseconds.
    pub fn timeout_ms(&self) -> f64 {
        self.timeout_ms
    }

    /// Sets the reply timeout, in milliseconds (1 to 600000).
    pub fn set_timeout_ms(&mut self, ms: f64) -> Result<(), DriverError> {
        check_timeout(ms)?;
        self.timeout_ms = ms;
        if let Some(scpi) = self.scpi.as_mut() {
            scpi.transport()
                .set_timeout(Duration::from_secs_f64(ms / 1000.0));
        }
        Ok(())
    }

    /// PyroLab's `query(message, delay=None)`: `delay` seconds between
    /// the command and reading its reply.
    pub fn query(&mut self, message: &str, delay: Option<f64>) -> Result<String, DriverError> {
        let scpi = self.scpi()?;
        match delay.filter(|d| *d > 0.0) {
            None => scpi.query(message),
            Some(delay) => {
                scpi.write(message)?;
                std::thread::sleep(Duration::from_secs_f64(delay.min(60.0)));
                scpi.read_line()
            }
        }
    }

    /// PyroLab's `write(message, termination=None, encoding=None)`.
    pub fn write(
        &mut self,
        message: &str,
        termination: Option<&str>,
        encoding: Option<&str>,
    ) -> Result<(), DriverError> {
        if let Some(encoding) = encoding
            && !matches!(
                encoding.to_ascii_lowercase().as_str(),
                "ascii" | "utf-8" | "utf8"
            )
        {
            return Err(DriverError::value(format!(
                "encoding must be ascii or utf-8, not {encoding:?}"
            )));
        }
        let scpi = self.scpi()?;
        match termination {
            None => scpi.write(message),
            Some(termination) => {
                let line = format!("{message}{termination}");
                scpi.transport().write(line.as_bytes())
            }
        }
    }

    /// PyroLab's `write_block(message)`: the command, `*OPC?`, and the
    /// error queue (the instrument's own error when it refused it).
    pub fn write_block(&mut self, message: &str) -> Result<(), DriverError> {
        let scpi = self.scpi()?;
        scpi.write(message)?;
        scpi.wait_complete(OPERATION_TIMEOUT)?;
        scpi.check()
            .map_err(|err| err.context(format!("after {message:?}")))
    }

    /// PyroLab's `wait_for_device()`: `*OPC?`.
    pub fn wait_for_device(&mut self) -> Result<(), DriverError> {
        self.scpi()?.wait_complete(OPERATION_TIMEOUT)
    }
}

fn check_timeout(ms: f64) -> Result<(), DriverError> {
    if ms.is_finite() && (1.0..=600_000.0).contains(&ms) {
        Ok(())
    } else {
        Err(DriverError::value(format!(
            "timeout must be between 1 and 600000 milliseconds, not {ms}"
        )))
    }
}
