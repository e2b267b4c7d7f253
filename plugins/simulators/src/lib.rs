//! Simulated instruments, each built from its manual (state machine,
//! ranges, error replies) and served over the transport the real one
//! speaks, with faults a test can switch on.
//!
//! - [`b2900`]: the Keysight B2900 source-measure unit, on a TCP socket.
//! - [`smcv100b`]: the Rohde & Schwarz SMCV100B signal generator, on VXI-11.
//! - [`rto`]: the Rohde & Schwarz RTO oscilloscope, on a TCP socket.
//! - [`ppcl55x`]: the Pure Photonics PPCL550/551 laser, on a serial port.
//! - [`kdc101`]: the Thorlabs KDC101 motor controller, on a serial port.
//! - [`pty`]: a serial instrument on a pseudo-terminal.

pub mod b2900;
pub mod kdc101;
pub mod ppcl55x;
pub mod pty;
pub mod rto;
pub mod smcv100b;

// The simulators by the instrument's name, for `pyrolab-host simulate`:
// a program that also has the drivers as dependencies (the host's tests
// do) must not name a module as a driver crate is named (`kdc101`), or
// the compiler links that driver's library in, and two drivers clash on
// the symbol each exports.
pub use b2900::Simulator as B2900;
pub use kdc101::Simulator as Kdc101;
pub use ppcl55x::{Model as PpclModel, Simulator as Ppcl55x, Timing as PpclTiming};
pub use rto::Simulator as Rto;
pub use smcv100b::Simulator as Smcv100b;
