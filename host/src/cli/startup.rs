//! Following the lab's start-up for `up`: each autolaunched component as
//! it becomes ready, and what the start-up is still waiting for, on
//! stderr (stdout stays the final status table).
//!
//! ```text
//! waiting for: production (nameserver), instruments (daemon), lockable (daemon)
//! ready: production (nameserver, 127.0.0.1:9090) 0.3s
//! waiting for: instruments (daemon), lockable (daemon)
//! ready: instruments (daemon, 127.0.0.1:40213) 0.9s
//! ```
//!
//! The control protocol has no event stream: the manager answers one
//! request per connection. `up` asks for the status every
//! [`POLL_INTERVAL`], which costs the manager one small answer each time,
//! until the status says the start-up is over.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::data_dir::DataDir;
use crate::lab::status::{ComponentId, ComponentStatus, LabStatus, State};
use crate::manager::control::{self, ClientError};
use crate::manager::protocol::Request;

/// How often `up` asks the manager how the start-up is going: often
/// enough that a ready line comes within a blink of the component being
/// ready, seldom enough to be no load.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long one status request may take (the manager answers `status`
/// without waiting for anything).
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an unchanged `waiting for:` line is said again, so a slow
/// component does not look like a hung `up`.
const REPEAT_WAITING_EVERY: Duration = Duration::from_secs(10);

/// What has been said about the start-up so far.
pub(super) struct Progress {
    /// When `up` began: the times printed are since then.
    began: Instant,
    /// The components the start-up should bring up, in start order.
    expected: Vec<ComponentId>,
    /// The last state said (or seen) of each component.
    said: HashMap<ComponentId, State>,
    /// The last `waiting for:` list said, and when.
    waiting: Option<(Vec<ComponentId>, Instant)>,
}

impl Progress {
    /// Progress of a start-up meant to bring up `expected` (the
    /// configuration's autolaunched components), begun at `began`.
    pub(super) fn new(expected: Vec<ComponentId>, began: Instant) -> Self {
        Progress {
            began,
            expected,
            said: HashMap::new(),
            waiting: None,
        }
    }

    /// `waiting for:` every expected component: what a start-up that has
    /// just begun waits for, said before the manager first answers (which
    /// may be after its monitor has started). `None` when nothing is
    /// autolaunched.
    pub(super) fn waiting_for_all(&mut self, now: Instant) -> Option<String> {
        let mut all = self.expected.clone();
        all.sort_by_key(|id| id.kind);
        if all.is_empty() {
            return None;
        }
        let line = format!("waiting for: {}", names(&all));
        self.waiting = Some((all, now));
        Some(line)
    }

    /// When `up` began.
    pub(super) fn began(&self) -> Instant {
        self.began
    }

    /// Takes the states in `status` as said: for following a start-up
    /// that was under way before this `up` looked (another `up`'s), whose
    /// components already ready were not made ready now.
    pub(super) fn already_seen(&mut self, status: &LabStatus) {
        for component in status.components.iter().filter(|c| c.autolaunch) {
            self.said.insert(id_of(component), component.status);
        }
    }

    /// The lines `status`, seen at `now`, calls for: a component that
    /// became ready, failed or is restarting, then what is still awaited
    /// when that changed (or was last said long ago).
    pub(super) fn lines(&mut self, status: &LabStatus, now: Instant) -> Vec<String> {
        let elapsed = now.saturating_duration_since(self.began).as_secs_f64();
        let mut lines = Vec::new();
        for component in status.components.iter().filter(|c| c.autolaunch) {
            let id = id_of(component);
            if self.said.insert(id, component.status) == Some(component.status) {
                continue;
            }
            lines.extend(change_line(component, elapsed));
        }
        if status.manager.starting {
            lines.extend(self.waiting_line(status, now, elapsed));
        }
        lines
    }

    /// `waiting for: ...` when the list changed, `still waiting for: ...`
    /// when it did not for a while; nothing otherwise.
    fn waiting_line(&mut self, status: &LabStatus, now: Instant, elapsed: f64) -> Option<String> {
        let pending = self.pending(status);
        if pending.is_empty() {
            return None;
        }
        let names = names(&pending);
        let line = match &self.waiting {
            Some((said, _)) if *said != pending => format!("waiting for: {names}"),
            None => format!("waiting for: {names}"),
            Some((_, at)) if now.saturating_duration_since(*at) >= REPEAT_WAITING_EVERY => {
                format!("still waiting for: {names} {elapsed:.1}s")
            }
            Some(_) => return None,
        };
        self.waiting = Some((pending, now));
        Some(line)
    }

    /// The expected components (and any other autolaunched one the
    /// manager lists) that have not settled yet, in start order.
    fn pending(&self, status: &LabStatus) -> Vec<ComponentId> {
        let mut all = self.expected.clone();
        for component in status.components.iter().filter(|c| c.autolaunch) {
            let id = id_of(component);
            if !all.contains(&id) {
                all.push(id);
            }
        }
        all.sort_by_key(|id| id.kind);
        let settled = |id: &ComponentId| {
            status
                .components
                .iter()
                .any(|c| c.kind == id.kind && c.name == id.name && c.status.settled())
        };
        all.into_iter().filter(|id| !settled(id)).collect()
    }
}

/// `production (nameserver), instruments (daemon)`.
fn names(ids: &[ComponentId]) -> String {
    ids.iter()
        .map(|id| format!("{} ({})", id.name, id.kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn id_of(component: &ComponentStatus) -> ComponentId {
    ComponentId {
        kind: component.kind,
        name: component.name.clone(),
    }
}

/// What a component's new state is worth saying: ready, failed (the
/// reason comes with the final report), restarting (and why).
fn change_line(component: &ComponentStatus, elapsed: f64) -> Option<String> {
    let (name, kind) = (&component.name, component.kind.as_str());
    match component.status {
        State::Running => Some(match &component.address {
            Some(address) => format!("ready: {name} ({kind}, {address}) {elapsed:.1}s"),
            None => format!("ready: {name} ({kind}) {elapsed:.1}s"),
        }),
        State::Failed => Some(format!("failed: {name} ({kind}) {elapsed:.1}s")),
        State::Restarting => Some(format!(
            "restarting: {name} ({kind}): {}",
            component.last_error.as_deref().unwrap_or("it crashed")
        )),
        State::Starting | State::Stopping | State::Stopped => None,
    }
}

/// Asks the manager for its status every [`POLL_INTERVAL`], printing the
/// progress on stderr, until the start-up is over (or `patience` has
/// passed); returns the status then. `gone` says why the manager stopped
/// answering, should it.
pub(super) fn follow(
    data_dir: &DataDir,
    progress: &mut Progress,
    patience: Duration,
    gone: &mut dyn FnMut() -> anyhow::Error,
) -> anyhow::Result<LabStatus> {
    let give_up_at = Instant::now() + patience;
    loop {
        let status = match control::request(data_dir, &Request::Status {}, STATUS_TIMEOUT) {
            Ok(reply) => reply.into_status(),
            Err(ClientError::NotRunning { .. }) => return Err(gone()),
            Err(err) => return Err(err.into()),
        };
        for line in progress.lines(&status, Instant::now()) {
            eprintln!("{line}");
        }
        if !status.manager.starting {
            return Ok(status);
        }
        if Instant::now() > give_up_at {
            bail!(
                "the lab was still starting after {} s (manager pid {}); `pyrolab-host ps` shows where it is",
                patience.as_secs(),
                status.manager.pid
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::lab::status::{Kind, ManagerStatus};

    fn component(name: &str, kind: Kind, status: State, address: Option<&str>) -> ComponentStatus {
        ComponentStatus {
            name: name.to_owned(),
            kind,
            status,
            pid: Some(1),
            uptime_s: Some(0.1),
            restarts: 0,
            address: address.map(str::to_owned),
            last_error: None,
            autolaunch: true,
            log: PathBuf::from("/dev/null"),
        }
    }

    fn lab(starting: bool, components: Vec<ComponentStatus>) -> LabStatus {
        LabStatus {
            manager: ManagerStatus {
                pid: 7,
                data_dir: PathBuf::from("/lab"),
                started: String::new(),
                uptime_s: 0.0,
                starting,
                log: PathBuf::from("/lab/logs/manager.log"),
                monitor: None,
                monitor_error: None,
            },
            components,
            services: Vec::new(),
        }
    }

    fn id(name: &str, kind: Kind) -> ComponentId {
        ComponentId {
            kind,
            name: name.to_owned(),
        }
    }

    #[test]
    fn each_component_is_said_ready_once_and_the_rest_awaited() {
        let began = Instant::now();
        let expected = vec![
            id("production", Kind::Nameserver),
            id("instruments", Kind::Daemon),
        ];
        let mut progress = Progress::new(expected, began);
        let at = |ms| began + Duration::from_millis(ms);

        assert_eq!(
            progress.waiting_for_all(at(0)).as_deref(),
            Some("waiting for: production (nameserver), instruments (daemon)")
        );
        let none_yet = lab(true, vec![]);
        assert!(progress.lines(&none_yet, at(100)).is_empty());

        let ns_ready = lab(
            true,
            vec![component(
                "production",
                Kind::Nameserver,
                State::Running,
                Some("localhost:9090"),
            )],
        );
        assert_eq!(
            progress.lines(&ns_ready, at(300)),
            [
                "ready: production (nameserver, localhost:9090) 0.3s",
                "waiting for: instruments (daemon)"
            ]
        );
        assert!(progress.lines(&ns_ready, at(400)).is_empty());
        assert_eq!(
            progress.lines(&ns_ready, at(10_400)),
            ["still waiting for: instruments (daemon) 10.4s"]
        );

        let done = lab(
            false,
            vec![
                component(
                    "production",
                    Kind::Nameserver,
                    State::Running,
                    Some("localhost:9090"),
                ),
                component("instruments", Kind::Daemon, State::Failed, None),
            ],
        );
        assert_eq!(
            progress.lines(&done, at(11_000)),
            ["failed: instruments (daemon) 11.0s"]
        );
    }
}
