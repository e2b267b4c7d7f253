//! Instrument I/O for pyrolab-host drivers, with no vendor library: the
//! transports PyroLab reaches through pyvisa and NI-VISA, spoken directly.
//!
//! - [`Resource`]: VISA resource strings as PyroLab configurations write
//!   them (`TCPIP0::host::5025::SOCKET`, `TCPIP0::host::inst0::INSTR`,
//!   `ASRL/dev/ttyUSB0::INSTR`).
//! - [`Transport`]: bytes to and from an instrument over a TCP socket, a
//!   serial port ([serialport](https://docs.rs/serialport)) or VXI-11
//!   ([`vxi11`]), every read within a timeout and bounded in size.
//! - [`Scpi`]: queries, IEEE 488.2 binary blocks, the error queue, `*IDN?`
//!   and `*OPC?`.
//! - [`Session`]: PyroLab's network-instrument methods (`connect`, `close`,
//!   `timeout`, `query`, `write`, `write_block`, `wait_for_device`), for a
//!   driver to forward to.
//!
//! Errors are [`DriverError`](pyrolab_plugin_api::DriverError)s a driver
//! can return as they are: an instrument that does not answer is a
//! `TimeoutError`, a lost connection or a reply that makes no sense a
//! `ConnectionError` (the next operation starts on a clean line, and
//! connects again if it must), and an error the instrument reports a
//! `RuntimeError` carrying the instrument's own message.
//!
//! ```no_run
//! use instrument_io::{Options, Scpi};
//!
//! let mut smu = Scpi::open("TCPIP0::10.0.0.5::5025::SOCKET", &Options::default())?;
//! let identity = smu.identify()?;
//! smu.write_checked(":SOUR:VOLT 1.5")?;
//! let current: f64 = smu.query_parsed(":MEAS:CURR?")?;
//! # Ok::<(), pyrolab_plugin_api::DriverError>(())
//! ```

pub mod resource;
pub mod scpi;
pub mod session;
pub mod transport;
pub mod vxi11;

pub use resource::Resource;
pub use scpi::{Identity, InstrumentError, Scpi};
pub use session::Session;
pub use transport::{Options, Transport, open};

#[cfg(test)]
mod tests;
