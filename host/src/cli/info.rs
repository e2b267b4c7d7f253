//! `pyrolab-host info`: the stored name servers, daemons and services.

use std::process::ExitCode;

use anyhow::bail;

use super::Context;
use crate::config::schema::Readiness;
use crate::config::{ConfigStore, LaunchConfig};

pub fn run(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let Some(data_dir) = &context.data_dir else {
        bail!("no data directory: give --data-dir DIR or set PYROLAB_HOME");
    };
    let store = ConfigStore::new(data_dir);
    let Some(config) = store.load()? else {
        bail!(
            "no configuration is stored in {} (store one with `pyrolab-host config update FILE`)",
            store.path().display()
        );
    };
    if json {
        super::print_json(&config)?;
    } else {
        print!("{}", render(&config));
        match crate::manager::InstanceLock::holder(data_dir) {
            Some(pid) => {
                println!("\nThe lab is up: manager pid {pid} (`pyrolab-host ps` shows what runs).")
            }
            None => println!(
                "\nThe lab is down (`pyrolab-host up` starts the autolaunched components)."
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(config: &LaunchConfig) -> String {
    let autolaunched = |list: &[String], name: &str| {
        if list.iter().any(|n| n == name) {
            "yes"
        } else {
            "no"
        }
        .to_owned()
    };
    let mut out = String::new();
    let rows: Vec<Vec<String>> = config
        .nameservers
        .iter()
        .map(|(name, ns)| {
            vec![
                name.to_owned(),
                format!("{}:{}", ns.host, ns.ns_port),
                if ns.broadcast {
                    format!(
                        "{}:{}",
                        ns.ns_bchost.as_deref().unwrap_or(&ns.host),
                        ns.ns_bcport
                    )
                } else {
                    "off".to_owned()
                },
                if ns.ns_autoclean == 0.0 {
                    "off".to_owned()
                } else {
                    format!("{} s", ns.ns_autoclean)
                },
                match (&ns.storage_file, &ns.storage_url) {
                    (_, Some(url)) => crate::nameserver::storage::redacted_url(url),
                    (Some(file), None) => format!("{}:{}", ns.storage.as_str(), file.display()),
                    (None, None) => ns.storage.as_str().to_owned(),
                },
                autolaunched(&config.autolaunch.nameservers, name),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        "Name servers",
        &[
            "NAME",
            "ADDRESS",
            "BROADCAST",
            "AUTOCLEAN",
            "STORAGE",
            "AUTOLAUNCH",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = config
        .daemons
        .iter()
        .map(|(name, d)| {
            vec![
                name.to_owned(),
                format!("{:?}", d.classname),
                match &d.unixsocket {
                    Some(socket) => format!("unix:{}", socket.display()),
                    None if d.port == 0 => format!("{}:any", d.host),
                    None => format!("{}:{}", d.host, d.port),
                },
                format!("{:?}", d.servertype).to_lowercase(),
                d.nameservers.join(", "),
                autolaunched(&config.autolaunch.daemons, name),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        "Daemons",
        &[
            "NAME",
            "CLASS",
            "ADDRESS",
            "SERVERTYPE",
            "NAMESERVERS",
            "AUTOLAUNCH",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = config
        .services
        .iter()
        .map(|(name, s)| {
            vec![
                name.to_owned(),
                format!("{}:{}", s.module, s.classname),
                s.daemon.clone(),
                format!("{:?}", s.instancemode).to_lowercase(),
                s.nameservers.join(", "),
                s.description.clone(),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        "Services",
        &[
            "NAME",
            "DRIVER",
            "DAEMON",
            "INSTANCEMODE",
            "NAMESERVERS",
            "DESCRIPTION",
        ],
        &rows,
    );
    if !config.commands.is_empty() {
        let rows: Vec<Vec<String>> = config
            .commands
            .iter()
            .map(|(name, c)| {
                vec![
                    name.to_owned(),
                    c.run.join(" "),
                    match &c.ready {
                        Readiness::Started => "started".to_owned(),
                        Readiness::Port { host, port } => format!("port {host}:{port}"),
                        Readiness::Name { name, nameserver } => {
                            format!("name {name} on {nameserver}")
                        }
                    },
                    autolaunched(&config.autolaunch.commands, name).to_owned(),
                ]
            })
            .collect();
        super::table::titled(
            &mut out,
            "Commands",
            &["NAME", "RUN", "READY", "AUTOLAUNCH"],
            &rows,
        );
    }
    if let Some(manager) = &config.manager {
        out.push_str(&format!(
            "\nManager\n  this host is {:?} in the lab: management object {} on {}:{}\n",
            crate::manager::management::host_name(manager),
            crate::config::schema::management_name(&crate::manager::management::host_name(manager)),
            manager.host,
            if manager.port == 0 {
                "any".to_owned()
            } else {
                manager.port.to_string()
            }
        ));
    }
    out
}
