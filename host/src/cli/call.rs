//! `pyrolab-host call`: the command-line client.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::client::{ClientError, Proxy};
use crate::wire::uri::PyroUri;

/// Call a method of a remote service.
///
/// Each ARG is read as a YAML/JSON literal (42, 2.5, true, null, "text",
/// [1, 2], {a: 1}); anything else is taken as a string. The result is
/// printed as JSON. A remote exception is printed on stderr as
/// `CLASS: MESSAGE` with the remote traceback, and the exit code is 1.
#[derive(Debug, Args)]
pub struct CallCommand {
    /// The object: a PYRO: URI such as PYRO:library@localhost:9100.
    target: String,

    /// The method to call.
    method: String,

    /// Positional arguments.
    args: Vec<String>,

    /// A keyword argument, NAME=VALUE (VALUE read like ARGs). Repeatable.
    #[arg(long = "kw", value_name = "NAME=VALUE")]
    kwargs: Vec<String>,

    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,

    /// Do not wait for the method to run (for @oneway methods).
    #[arg(long)]
    oneway: bool,
}

pub fn run(command: CallCommand) -> anyhow::Result<ExitCode> {
    let uri: PyroUri = command.target.parse()?;
    let args = super::call_arguments(&command.args, &command.kwargs)?;
    let mut proxy = Proxy::new(uri);
    let timeout = Duration::try_from_secs_f64(command.timeout)
        .map_err(|_| anyhow::anyhow!("--timeout must be a positive number of seconds"))?;
    proxy.set_timeout(Some(timeout));
    if command.oneway {
        proxy.call_oneway(&command.method, args)?;
        return Ok(ExitCode::SUCCESS);
    }
    match proxy.call_with(&command.method, args) {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Remote(remote)) => {
            eprintln!("{}: {}", remote.class, remote.message);
            for line in &remote.traceback {
                eprint!("  {line}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(other.into()),
    }
}
