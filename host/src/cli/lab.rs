//! The lab across hosts, from the CLI: `ps --lab`, `logs HOST/NAME` and
//! `start|stop|restart KIND HOST/NAME`, through each host's management
//! object (`manager:` in its configuration), found by name on the lab's
//! name servers (the configured ones, in order, the next when one does not
//! answer).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::Context;
use crate::client::{NameServerProxy, Proxy, nameserver};
use crate::config::schema::{MANAGEMENT_PREFIX, management_name};
use crate::lab::status::{ComponentStatus, Kind, LabStatus};
use crate::wire::uri::PyroUri;

/// How long a host's manager gets to answer `status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a start or restart on another host may take (its component's
/// ready timeout, and a stop before).
const ACT_TIMEOUT: Duration = Duration::from_secs(330);

/// `HOST/NAME` split, when `name` names a component of another host.
pub fn remote(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
        .filter(|(host, component)| !host.is_empty() && !component.is_empty())
}

/// The lab's name servers as this CLI sees them: the configured ones, in
/// order, else Pyro5's default.
fn nameservers(context: &Context) -> anyhow::Result<Vec<(String, u16)>> {
    let configured = super::nslist::configured_nameservers(context, None, None)?;
    if configured.is_empty() {
        return Ok(vec![nameserver::default_location()?]);
    }
    Ok(configured)
}

/// The first name server that answers.
fn any_nameserver(context: &Context) -> anyhow::Result<NameServerProxy> {
    let nameservers = nameservers(context)?;
    let (ns, _) = nameserver::connect_to_any(&nameservers, Some(nameserver::FAILOVER_TIMEOUT))
        .context("cannot reach the lab's name servers")?;
    Ok(ns)
}

/// Every host's management object registered with the lab's name servers,
/// by host name.
fn managers(context: &Context) -> anyhow::Result<Vec<(String, String)>> {
    let ns = any_nameserver(context)?;
    Ok(ns
        .list(Some(MANAGEMENT_PREFIX))?
        .into_iter()
        .map(|(name, uri)| (name[MANAGEMENT_PREFIX.len()..].to_owned(), uri))
        .collect())
}

/// A proxy for host `host`'s management object.
fn manager_of(context: &Context, host: &str, timeout: Duration) -> anyhow::Result<Proxy> {
    let nameservers = nameservers(context)?;
    let name = management_name(host);
    let uri = nameserver::lookup_in_any(&nameservers, &name, Some(nameserver::FAILOVER_TIMEOUT))
        .with_context(|| {
            format!(
                "no host {host:?} in the lab (its manager registers as {name} when its configuration has a `manager:` section; `ps --lab` lists the hosts)"
            )
        })?;
    let mut proxy = Proxy::new(uri);
    proxy.set_timeout(Some(timeout));
    Ok(proxy)
}

/// One host as `ps --lab --json` shows it.
#[derive(Serialize)]
struct HostStatus {
    host: String,
    uri: String,
    reachable: bool,
    error: Option<String>,
    status: Option<LabStatus>,
}

/// `ps --lab`: every host's components.
pub fn ps(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let hosts: Vec<HostStatus> = managers(context)?
        .into_iter()
        .map(|(host, uri)| {
            let status = uri
                .parse::<PyroUri>()
                .map_err(|err| err.to_string())
                .and_then(|parsed| {
                    let mut proxy = Proxy::new(parsed);
                    proxy.set_timeout(Some(STATUS_TIMEOUT));
                    proxy
                        .call::<LabStatus>("status", ())
                        .map_err(|err| err.to_string())
                });
            HostStatus {
                host,
                uri,
                reachable: status.is_ok(),
                error: status.as_ref().err().cloned(),
                status: status.ok(),
            }
        })
        .collect();
    if json {
        super::print_json(&serde_json::json!({ "hosts": hosts }))?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&hosts));
    Ok(ExitCode::SUCCESS)
}

fn render(hosts: &[HostStatus]) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let state = match &h.status {
                Some(status) if status.manager.starting => "starting".to_owned(),
                Some(_) => "reachable".to_owned(),
                None => "unreachable".to_owned(),
            };
            let running = h.status.as_ref().map_or("-".to_owned(), |status| {
                let up = status
                    .components
                    .iter()
                    .filter(|c| c.status == crate::lab::status::State::Running)
                    .count();
                format!("{up}/{}", status.components.len())
            });
            vec![h.host.clone(), state, running, h.uri.clone()]
        })
        .collect();
    super::table::titled(
        &mut out,
        "Hosts",
        &["HOST", "STATE", "RUNNING", "MANAGER"],
        &rows,
    );
    let components: Vec<Vec<String>> = hosts
        .iter()
        .filter_map(|h| Some((h, h.status.as_ref()?)))
        .flat_map(|(h, status)| {
            status.components.iter().map(|c| {
                vec![
                    format!("{}/{}", h.host, c.name),
                    c.kind.as_str().to_owned(),
                    c.status.as_str().to_owned(),
                    c.pid.map_or("-".to_owned(), |p| p.to_string()),
                    c.restarts.to_string(),
                    c.address.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            })
        })
        .collect();
    super::table::titled(
        &mut out,
        "Components",
        &["HOST/NAME", "KIND", "STATUS", "PID", "RESTARTS", "ADDRESS"],
        &components,
    );
    let errors: Vec<String> = hosts
        .iter()
        .filter_map(|h| Some(format!("  {}: {}\n", h.host, h.error.as_ref()?)))
        .chain(
            hosts
                .iter()
                .filter_map(|h| Some((h, h.status.as_ref()?)))
                .flat_map(|(h, status)| {
                    status.components.iter().filter_map(move |c| {
                        let error = c.last_error.as_ref()?;
                        Some(format!(
                            "  {}/{} ({}): {error}\n",
                            h.host,
                            c.name,
                            c.kind.as_str()
                        ))
                    })
                }),
        )
        .collect();
    if !errors.is_empty() {
        out.push_str("\nLast errors\n");
        out.extend(errors);
    }
    out
}

/// `logs HOST/NAME`: the last lines of a component's log on another host.
pub fn logs(
    context: &Context,
    host: &str,
    name: &str,
    lines: Option<usize>,
    kind: Option<Kind>,
) -> anyhow::Result<ExitCode> {
    let proxy = manager_of(context, host, STATUS_TIMEOUT)?;
    let lines: Vec<String> = proxy
        .call("logs", (name, lines.unwrap_or(100), kind.map(Kind::as_str)))
        .with_context(|| format!("cannot read the log of {host}/{name}"))?;
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `start|stop|restart KIND HOST/NAME`: done by that host's manager.
pub fn act(
    context: &Context,
    method: &str,
    kind: Kind,
    host: &str,
    name: &str,
    timeout_s: f64,
) -> anyhow::Result<ExitCode> {
    let proxy = manager_of(context, host, ACT_TIMEOUT)?;
    let component: ComponentStatus = proxy
        .call(method, (kind.as_str(), name, timeout_s))
        .with_context(|| format!("cannot {method} {} {host}/{name}", kind.describe()))?;
    let mut line = format!(
        "{} {host}/{}: {}",
        component.kind.describe(),
        component.name,
        component.status.as_str()
    );
    if let Some(pid) = component.pid {
        line.push_str(&format!(" (pid {pid})"));
    }
    if let Some(address) = &component.address {
        line.push_str(&format!(" at {address}"));
    }
    println!("{line}");
    let wanted = if method == "stop" {
        crate::lab::status::State::Stopped
    } else {
        crate::lab::status::State::Running
    };
    if component.status != wanted {
        if let Some(error) = &component.last_error {
            bail!("{host}/{name}: {error}");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
