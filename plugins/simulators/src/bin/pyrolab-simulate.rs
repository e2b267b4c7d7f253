//! `pyrolab-simulate INSTRUMENT [--host HOST] [--port PORT]`: serves a
//! simulated instrument until interrupted, to try a lab configuration
//! with no hardware.

use std::process::ExitCode;

const USAGE: &str = "usage: pyrolab-simulate INSTRUMENT [--host HOST] [--port PORT]

Serves a simulated instrument until interrupted (Ctrl-C), and prints the
VISA resource a driver's configuration gives to reach it.

Instruments:
  b2900    Keysight B2900 source-measure unit, SCPI on a TCP socket
           (default port 5025, as the instrument's)

Options:
  --host HOST   the address to listen on (default 127.0.0.1)
  --port PORT   the TCP port (default the instrument's own; 0: any free one)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut instrument = None;
    let mut host = "127.0.0.1".to_owned();
    let mut port = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--host" => match args.next() {
                Some(value) => host = value,
                None => return usage("--host needs a value"),
            },
            "--port" => match args.next().and_then(|p| p.parse::<u16>().ok()) {
                Some(value) => port = Some(value),
                None => return usage("--port needs a port number"),
            },
            other if instrument.is_none() && !other.starts_with('-') => {
                instrument = Some(other.to_owned());
            }
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    match instrument.as_deref() {
        Some("b2900") => {
            let simulator =
                match simulators::b2900::Simulator::start_on(&host, port.unwrap_or(5025)) {
                    Ok(simulator) => simulator,
                    Err(err) => {
                        eprintln!(
                            "error: cannot listen on {host}:{}: {err}",
                            port.unwrap_or(5025)
                        );
                        return ExitCode::FAILURE;
                    }
                };
            println!(
                "simulated Keysight B2900 at TCPIP0::{host}::{}::SOCKET (Ctrl-C stops it)",
                simulator.port()
            );
            loop {
                std::thread::park();
            }
        }
        Some(other) => usage(&format!("no simulated instrument {other:?}")),
        None => usage("which instrument?"),
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("error: {problem}\n\n{USAGE}");
    ExitCode::from(2)
}
