//! The lab's status (what `ps` shows), as the manager builds it from what
//! it knows of each component.

use std::collections::BTreeSet;

use super::Manager;
use crate::config::schema::Readiness;
use crate::lab::logfile::manager_log_path;
use crate::lab::status::{
    ComponentStatus, Kind, LabStatus, ManagerStatus, RegistrationFailure, ServiceStatus,
};

impl Manager {
    /// The lab's status now.
    pub(super) fn status(&self) -> LabStatus {
        let lab = self.lab();
        let components = lab
            .slots
            .iter()
            .map(|(id, slot)| ComponentStatus {
                name: id.name.clone(),
                kind: id.kind,
                status: slot.state,
                pid: slot.pid,
                uptime_s: slot.since.map(|(_, at)| at.elapsed().as_secs_f64()),
                restarts: slot.restarts,
                address: slot.address.clone().filter(|_| slot.pid.is_some()),
                last_error: slot.last_error.clone(),
                autolaunch: lab.config.autolaunch.includes(id),
                log: slot.log_path.clone(),
            })
            .collect();
        let mut services = Vec::new();
        for (id, slot) in lab.slots.iter().filter(|(id, _)| id.kind == Kind::Daemon) {
            let running = slot.pid.is_some() && slot.ready;
            for (name, _) in lab
                .config
                .services
                .iter()
                .filter(|(_, s)| s.daemon == id.name)
            {
                let outcomes = slot.registrations.iter().filter(|r| r.name == name);
                services.push(ServiceStatus {
                    name: name.to_owned(),
                    daemon: id.name.clone(),
                    uri: slot
                        .services
                        .iter()
                        .find(|s| s.name == name)
                        .map(|s| s.uri.clone())
                        .filter(|_| running),
                    registered_with: outcomes
                        .clone()
                        .filter(|r| r.error.is_none() && running)
                        .map(|r| r.nameserver.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    registration_errors: outcomes
                        .clone()
                        .filter_map(|r| {
                            let error = r.error.as_ref()?;
                            Some(format!("{}: {error}", r.nameserver))
                        })
                        .filter(|_| running)
                        .collect(),
                    registration_failures: outcomes
                        .filter_map(|r| {
                            Some(RegistrationFailure {
                                nameserver: r.nameserver.clone(),
                                error: r.error.clone()?,
                            })
                        })
                        .filter(|_| running)
                        .collect(),
                    lock_holder: slot.locks.get(name).cloned(),
                });
            }
        }
        // A command ready by name serves the service it registered.
        for (id, slot) in lab.slots.iter().filter(|(id, _)| id.kind == Kind::Command) {
            let running = slot.pid.is_some() && slot.ready;
            for served in slot.services.iter().filter(|_| running) {
                let nameserver = lab
                    .config
                    .commands
                    .get(&id.name)
                    .and_then(|c| match &c.ready {
                        Readiness::Name { nameserver, .. } => Some(nameserver.clone()),
                        _ => None,
                    });
                services.push(ServiceStatus {
                    name: served.name.clone(),
                    daemon: id.name.clone(),
                    uri: Some(served.uri.clone()),
                    registered_with: nameserver.into_iter().collect(),
                    registration_errors: Vec::new(),
                    registration_failures: Vec::new(),
                    lock_holder: None,
                });
            }
        }
        LabStatus {
            manager: ManagerStatus {
                pid: std::process::id(),
                data_dir: self.options.data_dir.root().to_owned(),
                started: humantime::format_rfc3339_millis(self.started).to_string(),
                uptime_s: self.started_at.elapsed().as_secs_f64(),
                starting: lab.starting,
                log: manager_log_path(&self.options.data_dir),
                monitor: self.monitor_state().0,
                monitor_error: self.monitor_state().1,
            },
            components,
            services,
        }
    }
}
