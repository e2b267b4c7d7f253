//! `pyrolab-host`: loads lab instrument drivers from plugin libraries and
//! serves them to Pyro5 clients.
//!
//! # Layout
//!
//! - [`access`]: access rules by identity (who may call, lock, register,
//!   read logs), for daemons, name servers and the monitor.
//! - [`loader`]: finds driver libraries on the plugin search path, loads
//!   them through the stable ABI, and creates and calls driver instances.
//! - [`config`]: the YAML launch configuration: reading, checking, storing.
//! - [`data_dir`]: the per-user data directory and what lives in it.
//! - [`logging`]: the host's `tracing` output, which plugin logs join.
//! - [`net`]: TCP and Unix sockets behind one type; the `public` address.
//! - [`stop_signal`]: waking background threads that work in rounds.
//! - [`sync`]: locks that outlive a panic, and waiting with a deadline.
//! - [`supervised`]: what a component run by the manager reports to it.
//! - [`lab`]: what the lab's parts share: component kinds and states, the
//!   lab's status (`ps`), the log files.
//! - [`manager`]: `pyrolab-host up`: runs the lab's components, restarts
//!   crashed ones, keeps their logs, answers the CLI on a control socket.
//! - [`monitor`]: the web monitor: a page and a JSON API showing the lab.
//! - [`wire`]: Pyro5's wire protocol: framing and serializers.
//! - [`daemon`]: serving services to Pyro5 clients.
//! - [`nameserver`]: the name server (`Pyro.NameServer`) and its storage.
//! - [`tls`]: TLS over rustls for every listener and client, and the
//!   lab's certificate authority.
//! - [`client`]: the native Rust client ([`client::Proxy`]).
//! - [`cli`]: the `pyrolab-host` command line.

#![forbid(unsafe_code)]

pub mod access;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod data_dir;
pub mod lab;
pub mod loader;
pub mod logging;
pub mod manager;
pub mod monitor;
pub mod nameserver;
pub mod net;
pub mod stop_signal;
pub mod supervised;
pub mod sync;
pub mod tls;
pub mod wire;
