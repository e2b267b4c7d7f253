//! Simulated instruments, each built from its manual (state machine,
//! ranges, error replies) and served over the transport the real one
//! speaks, with faults a test can switch on.
//!
//! - [`b2900`]: the Keysight B2900 source-measure unit, on a TCP socket.

pub mod b2900;
