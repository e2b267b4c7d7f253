//! `pyrolab-host nslist`: what a name server has registered, and finding a
//! configured name server for commands that take a bare service name.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use crate::client::nameserver;
use crate::config::LaunchConfig;
use crate::nameserver::tags;
use crate::net;

/// `nslist`'s arguments. Its help is the `Nslist` command's doc in
/// mod.rs (clap shows a subcommand's doc there, not this struct's).
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
    let nameservers: Vec<(String, u16)> = match (&command.host, command.port) {
        (Some(host), Some(port)) => vec![(host.clone(), port)],
        _ => {
            let configured = configured_nameservers(
                context,
                command.config.as_deref(),
                command.nameserver.as_deref(),
            )?;
            let configured = if configured.is_empty() {
                vec![nameserver::default_location()?]
            } else {
                configured
            };
            configured
                .into_iter()
                .map(|(host, port)| {
                    (
                        command.host.clone().unwrap_or(host),
                        command.port.unwrap_or(port),
                    )
                })
                .collect()
        }
    };
    let shown = |(host, port): &(String, u16)| net::join_host_port(host, *port);
    // With several, one cut off the network gives way to the next soon.
    let each = if nameservers.len() > 1 {
        timeout.min(nameserver::FAILOVER_TIMEOUT)
    } else {
        timeout
    };
    let (ns, answered) =
        nameserver::connect_to_any(&nameservers, Some(each)).with_context(|| {
            let all: Vec<String> = nameservers.iter().map(shown).collect();
            format!("cannot reach the name server at {}", all.join(" or "))
        })?;
    if answered > 0 {
        eprintln!(
            "warning: name server {} did not answer; listing {}",
            nameservers[..answered]
                .iter()
                .map(shown)
                .collect::<Vec<_>>()
                .join(", "),
            shown(&nameservers[answered])
        );
    }
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
        super::print_json(&rows)?;
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

/// The host and port of the configured name server `wanted`, or of every
/// one in the configuration's order (they are tried in turn); none when
/// there is no configuration or it names none.
pub(super) fn configured_nameservers(
    context: &Context,
    file: Option<&std::path::Path>,
    wanted: Option<&str>,
) -> anyhow::Result<Vec<(String, u16)>> {
    let config = match (file, wanted) {
        (None, None) => match super::run::launch_config(context, None) {
            Ok(config) => config,
            // No stored configuration: Pyro5's defaults apply.
            Err(_) => return Ok(Vec::new()),
        },
        _ => super::run::launch_config(context, file)?,
    };
    match wanted {
        Some(wanted) => Ok(vec![address_of(&config, wanted)?]),
        None => config
            .nameservers
            .names()
            .map(|name| address_of(&config, name))
            .collect(),
    }
}

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
