//! How the daemons follow their name servers: which name servers a daemon
//! registers with, asking it to register again when one is back, marking
//! its registrations gone when one stops, and not starting it when one
//! failed.

use crate::sync;
use std::collections::BTreeSet;
use std::time::Duration;

use super::{Lab, Manager};
use crate::config::LaunchConfig;
use crate::lab::status::{ComponentId, Kind, State};

impl Manager {
    /// Name server `ns` is ready again: asks the daemons that register
    /// with it to do so now, rather than at their next check.
    pub(super) fn nameserver_ready(&self, lab: &mut Lab, ns: &str) {
        let config = &lab.config;
        for (id, slot) in lab.slots.iter_mut() {
            if id.kind == Kind::Daemon && nameservers_of(config, &id.name).contains(ns) {
                if let Some(stdin) = &mut slot.stdin {
                    use std::io::Write;
                    let _ = writeln!(stdin, "{}", crate::supervised::REGISTER_NOW);
                }
            }
        }
    }

    /// Name server `ns` stopped or crashed: whatever the daemons had
    /// registered with it is gone (with memory storage), until they
    /// register again.
    pub(super) fn nameserver_gone(&self, lab: &mut Lab, ns: &str) {
        for (id, slot) in lab.slots.iter_mut() {
            if id.kind != Kind::Daemon {
                continue;
            }
            for outcome in slot.registrations.iter_mut().filter(|r| r.nameserver == ns) {
                outcome.error = Some(format!("name server {ns} is not running"));
            }
        }
    }

    /// Waits (a few seconds at most) until the running daemons that use
    /// name server `ns` report their names registered there.
    pub(super) fn wait_registered(&self, ns: &str) {
        let _ = sync::wait_until(&self.changed, self.lab(), Duration::from_secs(5), |lab| {
            !lab.slots.iter().any(|(id, slot)| {
                id.kind == Kind::Daemon
                    && slot.ready
                    && slot
                        .registrations
                        .iter()
                        .any(|r| r.nameserver == ns && r.error.is_some())
            })
        });
    }
}

/// Why daemon `id` must not start: one of its name servers is managed here
/// and failed.
pub(super) fn failed_nameserver(lab: &Lab, id: &ComponentId) -> Option<String> {
    if id.kind != Kind::Daemon {
        return None;
    }
    nameservers_of(&lab.config, &id.name)
        .into_iter()
        .find_map(|ns| {
            let slot = lab.slots.get(&ComponentId {
                kind: Kind::Nameserver,
                name: ns.clone(),
            })?;
            (slot.state == State::Failed).then(|| {
                format!(
                    "its name server {ns} failed ({}); start it first",
                    slot.last_error.as_deref().unwrap_or("no reason recorded")
                )
            })
        })
}

/// The name servers daemon `daemon` registers with (for itself or its
/// services).
pub(super) fn nameservers_of(config: &LaunchConfig, daemon: &str) -> BTreeSet<String> {
    let Some(daemon_config) = config.daemons.get(daemon) else {
        return BTreeSet::new();
    };
    daemon_config
        .nameservers
        .iter()
        .chain(
            config
                .services
                .iter()
                .filter(|(_, s)| s.daemon == daemon)
                .flat_map(|(_, s)| &s.nameservers),
        )
        .cloned()
        .collect()
}
