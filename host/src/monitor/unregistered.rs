//! The services of this host's lab that could not register. A name server
//! does not list what was never registered with it; the manager knows
//! (its daemons report how each registration went), so the monitor it
//! serves shows them too.

use super::collect::{ServiceState, ServiceView, Snapshot};

/// Adds to `snapshot.services`, as `unregistered` with the reason, each
/// registration the manager reports failed, unless the name server lists
/// the service (or, not answering now, did when it last answered): what a
/// name server lists has the last word, the manager may not have heard yet
/// that the daemon registered.
pub fn add(snapshot: &mut Snapshot) {
    let Some(lab) = &snapshot.lab else {
        return;
    };
    let mut added = Vec::new();
    for service in &lab.services {
        for failure in &service.registration_failures {
            let listed = snapshot
                .services
                .iter()
                .any(|s| s.name == service.name && s.nameserver == failure.nameserver);
            if listed {
                continue;
            }
            added.push(ServiceView {
                name: service.name.clone(),
                nameserver: failure.nameserver.clone(),
                uri: service.uri.clone().unwrap_or_default(),
                status: ServiceState::Unregistered,
                locked_by: None,
                reason: Some(failure.error.clone()),
                description: String::new(),
                class: None,
                plugin_api: None,
                stale: false,
            });
        }
    }
    if added.is_empty() {
        return;
    }
    snapshot.services.extend(added);
    snapshot
        .services
        .sort_by(|a, b| (&a.name, &a.nameserver).cmp(&(&b.name, &b.nameserver)));
}
