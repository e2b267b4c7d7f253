//! pyrolab-host's end-to-end tests: the real binary, real plugin files,
//! real sockets, the pinned Python Pyro5 and PyroLab packages, headless
//! Chromium. One module per area, linked as one test binary.

mod cli_conventions;
mod config_cli;
mod conformance;
mod driver_calls;
mod kdc101;
mod keysight;
mod manager;
mod metrics;
mod mixed_lab;
mod monitor;
mod multi_host;
mod nameserver;
mod plugin_abi;
mod plugin_loading;
mod plugins_cli;
mod ppcl55x;
mod python_interop;
mod quick_start;
mod rto;
mod rust_client;
mod simulated_lab;
mod smcv100b;
mod soak;
mod streaming;
mod third_party_driver;
mod tls;
mod tsl550;
mod untrusted_input;
