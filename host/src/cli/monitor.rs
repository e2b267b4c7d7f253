//! `pyrolab-host monitor`: the web monitor on its own, against any name
//! server (the manager serves one too, with a `monitor:` section).

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::Context;
use crate::client::nameserver::default_location;
use crate::config::ConfigStore;
use crate::manager::control;
use crate::manager::protocol::{Reply, Request};
use crate::monitor::{Monitor, NameServerTarget, Settings};

#[derive(Debug, Args)]
pub struct MonitorCommand {
    /// The address to serve the page on. Default localhost (this machine
    /// only); another address (0.0.0.0: every interface) needs --tls, or
    /// --insecure.
    #[arg(long, default_value = "localhost")]
    host: String,

    /// Serve HTTPS with the lab CA's certificate NAME (`pyrolab-host tls
    /// issue NAME --server`), from the data directory. Clients need no
    /// certificate of their own.
    #[arg(long, value_name = "NAME")]
    tls: Option<String>,

    /// Allow serving plain HTTP on an address other than loopback.
    #[arg(long)]
    insecure: bool,

    /// The port to serve the page on (0: any free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// Watch the name server on this host (default: the stored
    /// configuration's name servers, else PYRO_NS_HOST, else localhost).
    #[arg(long, value_name = "HOST")]
    ns_host: Option<String>,

    /// Watch the name server on this port (default PYRO_NS_PORT, else
    /// 9090).
    #[arg(long, value_name = "PORT")]
    ns_port: Option<u16>,

    /// Seconds between looks at the name servers and services.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_polling)]
    polling: f64,
}

fn parse_polling(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.1..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err("must be a number of seconds from 0.1 to 3600".to_owned()),
    }
}

pub fn run(command: MonitorCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let nameservers = targets(&command, context)?;
    let host = crate::net::resolve_host(&command.host);
    let listen = if host.contains(':') {
        format!("[{host}]:{}", command.port)
    } else {
        format!("{host}:{}", command.port)
    };
    // The components, when a manager runs for this data directory.
    let lab = context.data_dir.clone().map(|data_dir| {
        Box::new(move || {
            control::request(&data_dir, &Request::Status {}, Duration::from_secs(2))
                .ok()
                .map(Reply::into_status)
        }) as crate::monitor::LabSource
    });
    let watched: Vec<String> = nameservers
        .iter()
        .map(|ns| {
            let address = format!("{}:{}", ns.host, ns.port);
            if ns.name == address {
                address
            } else {
                format!("{} at {address}", ns.name)
            }
        })
        .collect();
    let tls = match &command.tls {
        Some(identity) => Some(server_tls(identity, context)?),
        None => None,
    };
    let monitor = Monitor::start(Settings {
        listen: listen.clone(),
        polling: Duration::from_secs_f64(command.polling),
        nameservers,
        lab,
        data_dir: context.data_dir.clone(),
        tls,
        insecure: command.insecure,
        // It calls the lab as PYRO_SSL_* says, as other clients do.
        client_tls: crate::tls::default_client()?,
        rights: Default::default(),
    })
    .with_context(|| format!("cannot serve the monitor on {listen}"))?;
    println!("monitor listening on {}", monitor.url());
    if monitor.address().ip().is_unspecified() {
        println!(
            "(on every interface: open it at this machine's address, or http://localhost:{}/ here)",
            monitor.address().port()
        );
    }
    println!("watching name server {}", watched.join(", "));
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .context("cannot install the signal handler")?;
    let _ = stopped.recv();
    drop(monitor);
    Ok(ExitCode::SUCCESS)
}

/// HTTPS with the lab CA's certificate `identity`, asking no client
/// certificate.
fn server_tls(identity: &str, context: &Context) -> anyhow::Result<crate::tls::ServerTls> {
    let Some(data_dir) = &context.data_dir else {
        anyhow::bail!("--tls: no data directory to find the lab CA in");
    };
    let authority = crate::tls::authority::Authority::of(data_dir);
    let files = crate::tls::ServerTlsFiles {
        cert: authority.cert_path(identity),
        key: authority.key_path(identity),
        ca: None,
        require_client_cert: false,
    };
    Ok(crate::tls::ServerTls::load(&files)?)
}

/// The name servers to watch: those given, else the stored
/// configuration's, else Pyro5's default (PYRO_NS_HOST:PYRO_NS_PORT, by
/// default localhost:9090).
fn targets(command: &MonitorCommand, context: &Context) -> anyhow::Result<Vec<NameServerTarget>> {
    let (default_host, default_port) = default_location()?;
    if command.ns_host.is_some() || command.ns_port.is_some() {
        let host = crate::net::resolve_host(command.ns_host.as_deref().unwrap_or(&default_host));
        let port = command.ns_port.unwrap_or(default_port);
        return Ok(vec![NameServerTarget {
            name: format!("{host}:{port}"),
            host,
            port,
        }]);
    }
    let stored = context
        .data_dir
        .as_ref()
        .and_then(|dir| ConfigStore::new(dir).load().ok().flatten());
    Ok(match stored {
        Some(config) if !config.nameservers.is_empty() => config
            .nameservers
            .iter()
            .map(|(name, ns)| NameServerTarget {
                name: name.to_owned(),
                host: crate::net::resolve_host(&ns.host),
                port: ns.ns_port,
            })
            .collect(),
        _ => vec![NameServerTarget {
            name: format!("{default_host}:{default_port}"),
            host: crate::net::resolve_host(&default_host),
            port: default_port,
        }],
    })
}
