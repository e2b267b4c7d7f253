//! `pyrolab-host call`: the command-line client.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::Context;
use crate::client::{ClientError, NameServerProxy, Proxy, Returned, resolve};
use crate::wire::uri::PyroUri;

/// `call`'s arguments. Its help is the `Call` command's doc in mod.rs
/// (clap shows a subcommand's doc there, not this struct's).
#[derive(Debug, Args)]
pub struct CallCommand {
    /// The object: a PYRO: URI such as PYRO:library@localhost:9100, a
    /// PYRONAME:library[@host:port] URI, or a service name, looked up in
    /// the name servers the configuration registers it with.
    target: String,

    /// The method to call.
    method: String,

    /// Positional arguments (negative numbers included: `call x add -1 2`).
    #[arg(allow_negative_numbers = true)]
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

    /// Read the configuration (for looking up a service name) from this
    /// file instead of the stored one.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(command: CallCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let timeout = Duration::try_from_secs_f64(command.timeout)
        .map_err(|_| anyhow::anyhow!("--timeout must be a positive number of seconds"))?;
    let uri = target_uri(&command, context, timeout)?;
    let args = super::call_arguments(&command.args, &command.kwargs)?;
    let raised_by = format!("{}.{}", uri.object, command.method);
    let shown_uri = uri.to_string();
    let remote = |err: ClientError| remote_exception(err, &raised_by, &shown_uri);
    let mut proxy = Proxy::new(uri);
    proxy.set_timeout(Some(timeout));
    if command.oneway {
        proxy.call_oneway(&command.method, args).map_err(remote)?;
        return Ok(ExitCode::SUCCESS);
    }
    match proxy.call_any(&command.method, args) {
        Ok(returned) => match print_returned(returned, &remote) {
            // The reader went (`| head`): the stream is closed, quietly.
            Err(err)
                if err
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                Ok(ExitCode::SUCCESS)
            }
            other => other,
        },
        Err(err) => Err(remote(err)),
    }
}

/// Prints a result as JSON, or a stream's items as lines of JSON, each as
/// it arrives.
fn print_returned(
    returned: Returned<'_>,
    remote: &dyn Fn(ClientError) -> anyhow::Error,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let items = match returned {
        Returned::Value(value) => {
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        Returned::Stream(items) => items,
    };
    for item in items {
        match item {
            Ok(value) => {
                writeln!(out, "{}", serde_json::to_string(&value)?)?;
                // Each item is seen as it comes, also through a pipe.
                out.flush()?;
            }
            Err(err) => return Err(remote(err)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A remote exception as the error `call` fails with, saying which method
/// of which object raised it (printed by `errors::print`, exit status 1);
/// any other failure as it is.
fn remote_exception(err: ClientError, raised_by: &str, uri: &str) -> anyhow::Error {
    match err {
        ClientError::Remote(error) => anyhow::Error::new(super::errors::RaisedRemotely {
            error,
            raised_by: raised_by.to_owned(),
            uri: uri.to_owned(),
        }),
        other => other.into(),
    }
}

/// The URI to call: TARGET itself when it is a URI, else the service of
/// that name, looked up in the name servers the configuration registers it
/// with (or, for a service it does not list, in every configured one).
fn target_uri(
    command: &CallCommand,
    context: &Context,
    timeout: Duration,
) -> anyhow::Result<PyroUri> {
    if command.target.contains(':') {
        return Ok(resolve(&command.target)?);
    }
    let name = &command.target;
    let config =
        super::run::launch_config(context, command.config.as_deref()).with_context(|| {
            format!(
                "{name:?} is not a URI, and looking it up needs the configuration's name servers"
            )
        })?;
    let nameservers: Vec<String> = match config.services.get(name) {
        Some(service) if !service.nameservers.is_empty() => service.nameservers.clone(),
        _ => config.nameservers.names().map(str::to_owned).collect(),
    };
    if nameservers.is_empty() {
        bail!("{name:?} is not a URI, and the configuration has no name servers to look it up in");
    }
    // With several, one cut off the network must not hold the others up
    // for the whole call timeout.
    let lookup_timeout = if nameservers.len() > 1 {
        timeout.min(crate::client::nameserver::FAILOVER_TIMEOUT)
    } else {
        timeout
    };
    let mut failures = Vec::new();
    for ns_name in &nameservers {
        let (host, port) = super::nslist::address_of(&config, ns_name)?;
        let found = NameServerProxy::connect(&host, port, Some(lookup_timeout), None)
            .and_then(|ns| ns.lookup(name));
        match found {
            Ok(uri) => return Ok(uri),
            Err(err) => failures.push(format!("name server {ns_name} ({host}:{port}): {err}")),
        }
    }
    bail!("cannot find {name:?}:\n  {}", failures.join("\n  "))
}
