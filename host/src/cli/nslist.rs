//! `pyrolab-host nslist`: what a name server has registered, and finding a
//! configured name server for commands that take a bare service name.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use crate::client::NameServerProxy;
use crate::client::nameserver;
use crate::config::LaunchConfig;
use crate::nameserver::tags;
use crate::net;

/// List a name server's registrations: NAME, URI and DESCRIPTION.
///
/// Without --host and --port, asks the configured name server (from
/// --config or the stored configuration; with several, choose one with
/// --nameserver), else PYRO_NS_HOST:PYRO_NS_PORT, by default
/// localhost:9090, as Pyro5 does.
#[derive(Debug, Args)]
pub struct NslistCommand {
    /// The name server's host.
    #[arg(long)]
    host: Option<String>,

    /// The name server's port.
    #[arg(long)]
    port: Option<u16>,

    /// Only names starting with PREFIX.
    #[arg(long)]
    prefix: Option<String>,

    /// Print JSON (see docs/cli-json.md) instead of a table.
    #[arg(long)]
    json: bool,

    /// The configured name server to ask, by name.
    #[arg(long, value_name = "NAME")]
    nameserver: Option<String>,

    /// Read name servers from this configuration file instead of the
    /// stored one.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Seconds to wait for the name server.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
}

pub fn run(command: NslistCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let timeout = Duration::try_from_secs_f64(command.timeout)
        .map_err(|_| anyhow::anyhow!("--timeout must be a positive number of seconds"))?;
    let (host, port) = match (&command.host, command.port) {
        (Some(host), Some(port)) => (host.clone(), port),
        _ => {
            let configured = configured_nameserver(
                context,
                command.config.as_deref(),
                command.nameserver.as_deref(),
            )?;
            let (default_host, default_port) = match configured {
                Some(configured) => configured,
                None => nameserver::default_location()?,
            };
            (
                command.host.clone().unwrap_or(default_host),
                command.port.unwrap_or(default_port),
            )
        }
    };
    let ns = NameServerProxy::connect(&host, port, Some(timeout), None)
        .with_context(|| format!("cannot reach the name server at {host}:{port}"))?;
    let entries = ns.list_with_metadata(command.prefix.as_deref())?;
    if command.json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|(name, (uri, metadata))| {
                serde_json::json!({
                    "name": name,
                    "uri": uri,
                    "description": description(metadata),
                    "metadata": metadata,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|(name, (uri, metadata))| vec![name.clone(), uri.clone(), description(metadata)])
        .collect();
    print!(
        "{}",
        super::table::render("", &["NAME", "URI", "DESCRIPTION"], &rows)
    );
    Ok(ExitCode::SUCCESS)
}

/// The description a registration's metadata gives: pyrolab-host's
/// `description:` tag, or PyroLab's free-text tags.
fn description(metadata: &BTreeSet<String>) -> String {
    tags::describe(metadata).description
}

/// The host and port of the configured name server `wanted`, or of the
/// only one; `None` when there is no configuration or it names none.
pub(super) fn configured_nameserver(
    context: &Context,
    file: Option<&std::path::Path>,
    wanted: Option<&str>,
) -> anyhow::Result<Option<(String, u16)>> {
    let config = match (file, wanted) {
        (None, None) => match super::run::launch_config(context, None) {
            Ok(config) => config,
            // No stored configuration: Pyro5's defaults apply.
            Err(_) => return Ok(None),
        },
        _ => super::run::launch_config(context, file)?,
    };
    let names: Vec<&str> = config.nameservers.names().collect();
    let name = match (wanted, names.as_slice()) {
        (Some(wanted), _) => wanted,
        (None, []) => return Ok(None),
        (None, [only]) => only,
        (None, several) => bail!(
            "the configuration has name servers {}: choose one with --nameserver, or give --host and --port",
            several.join(", ")
        ),
    };
    Ok(Some(address_of(&config, name)?))
}

/// Where the configured name server `name` listens.
pub(super) fn address_of(config: &LaunchConfig, name: &str) -> anyhow::Result<(String, u16)> {
    let Some(ns) = config.nameservers.get(name) else {
        let known: Vec<&str> = config.nameservers.names().collect();
        bail!(
            "no name server named {name:?} in the configuration (name servers: {})",
            known.join(", ")
        );
    };
    Ok((net::resolve_host(&ns.host), ns.ns_port))
}
