//! Simulated instruments, each built from its manual (state machine,
//! ranges, error replies) and served over the transport the real one
//! speaks, with faults a test can switch on.
//!
//! - [`b2900`]: the Keysight B2900 source-measure unit, on a TCP socket.
//! - [`smcv100b`]: the Rohde & Schwarz SMCV100B signal generator, on VXI-11.

pub mod b2900;
pub mod smcv100b;
