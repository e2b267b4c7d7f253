//! What the whole lab shares, beyond the manager that runs it: the kinds
//! and states of its components and what `ps` shows of them, and their log
//! files. The manager writes both; the web monitor, `ps`, `logs` and the
//! host's own logging read them.
//!
//! # Layout
//!
//! - `status.rs`: component kinds and states, and the lab's status
//!   ([`status::LabStatus`]: the `ps --json` document).
//! - `logfile.rs`: where each component's log is, and timestamped,
//!   size-rotated log files to write and read.

pub mod logfile;
pub mod status;
