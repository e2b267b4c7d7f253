//! `reload`: what a changed configuration means for the running lab, and
//! carrying that out.
//!
//! The [`ReloadPlan`] is worked out from the configurations and what each
//! managed component runs with, without touching a process (the tests
//! below pin its rules); [`Manager::reload`] then stops, restarts and
//! starts what it says.
//!
//! A component is compared by its [`fingerprint`]: everything in the
//! configuration its process depends on. A daemon's includes its services
//! and the settings of the name servers it registers with, so a changed
//! name server restarts the daemons that use it too.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::nameservers::nameservers_of;
use super::protocol::ReloadReport;
use super::{Lab, Manager};
use crate::config::{ConfigError, ConfigStore, LaunchConfig};
use crate::lab::status::{ComponentId, Kind, State};

/// What a component's process depends on in the configuration, to tell
/// whether `reload` must restart it. `None` if the configuration has no
/// such component.
pub(super) fn fingerprint(config: &LaunchConfig, id: &ComponentId) -> Option<String> {
    let value = match id.kind {
        Kind::Nameserver => json!(config.nameservers.get(&id.name)?),
        Kind::Command => json!(config.commands.get(&id.name)?),
        Kind::Daemon => {
            let daemon = config.daemons.get(&id.name)?;
            let services: Vec<_> = config
                .services
                .iter()
                .filter(|(_, s)| s.daemon == id.name)
                .collect();
            let nameservers: Vec<_> = nameservers_of(config, &id.name)
                .into_iter()
                .map(|name| {
                    let settings = config.nameservers.get(&name);
                    (name, settings)
                })
                .collect();
            json!({
                "daemon": daemon,
                "services": services,
                "nameservers": nameservers,
                "plugin_dirs": config.plugin_dirs,
            })
        }
    };
    Some(value.to_string())
}

/// A component the manager has run (started at least once, not removed),
/// as `reload` sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Managed<'a> {
    pub id: &'a ComponentId,
    /// The [`fingerprint`] of the configuration it was last started with:
    /// what it runs with, which need not be the previous configuration
    /// (a component `reload` could not restart keeps its own).
    pub runs_with: &'a str,
    pub state: State,
    /// Whether it has a process now.
    pub has_process: bool,
}

/// What `reload` is to do.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ReloadPlan {
    /// Gone from the configuration: stop them, and forget them.
    pub stop: Vec<ComponentId>,
    /// Changed, and not stopped: stop them and start them with the new
    /// configuration.
    pub restart: Vec<ComponentId>,
    /// Changed, but their drivers cannot be found with the new
    /// configuration: they keep running with the previous one. And why.
    pub keep: Vec<(ComponentId, String)>,
    /// Newly autolaunched (the manager has not run them yet): start them.
    pub start: Vec<ComponentId>,
    /// Changed, and stopped: they start with the new configuration when
    /// they are started.
    pub update: Vec<ComponentId>,
    /// Unchanged and running, but no longer autolaunched: left running.
    pub no_longer_autolaunched: Vec<ComponentId>,
    /// The web monitor's settings changed: restart it with them.
    pub restart_monitor: bool,
}

/// Components that start one after another; the next round waits until
/// they are ready (or failed).
#[derive(Debug, PartialEq)]
pub(super) struct Round {
    /// Whether they are stopped first.
    pub restart: bool,
    pub components: Vec<ComponentId>,
}

impl ReloadPlan {
    /// What going from `old` to `new` means for the `managed` components.
    /// `can_start` says whether a daemon's drivers can be found with
    /// `new`, before its working process is traded for one that cannot
    /// start.
    pub fn new<'a>(
        old: &LaunchConfig,
        new: &LaunchConfig,
        managed: impl IntoIterator<Item = Managed<'a>>,
        can_start: impl Fn(&ComponentId) -> Result<(), String>,
    ) -> ReloadPlan {
        let mut plan = ReloadPlan {
            restart_monitor: old.monitor != new.monitor,
            ..ReloadPlan::default()
        };
        let mut known = Vec::new();
        for component in managed {
            known.push(component.id);
            plan.place(old, new, component, &can_start);
        }
        plan.start = new
            .autolaunch
            .components()
            .into_iter()
            .filter(|id| !known.contains(&id))
            .collect();
        plan
    }

    /// Puts one managed component where it belongs.
    fn place(
        &mut self,
        old: &LaunchConfig,
        new: &LaunchConfig,
        component: Managed,
        can_start: impl Fn(&ComponentId) -> Result<(), String>,
    ) {
        let id = component.id.clone();
        let Some(wanted) = fingerprint(new, &id) else {
            self.stop.push(id);
            return;
        };
        if wanted == component.runs_with {
            let dropped = old.autolaunch.includes(&id) && !new.autolaunch.includes(&id);
            if dropped && component.has_process {
                self.no_longer_autolaunched.push(id);
            }
        } else if component.state == State::Stopped {
            self.update.push(id);
        } else if let Err(reason) = can_start(&id) {
            self.keep.push((id, reason));
        } else {
            self.restart.push(id);
        }
    }

    /// The (re)starts in order: the changed components, then the new ones;
    /// in each, name servers before daemons, which register with them as
    /// they start, and commands last; no round is empty.
    pub fn rounds(&self) -> Vec<Round> {
        let of_kind = |ids: &[ComponentId], kind| -> Vec<ComponentId> {
            ids.iter().filter(|id| id.kind == kind).cloned().collect()
        };
        let mut rounds = Vec::new();
        for (restart, ids) in [(true, &self.restart), (false, &self.start)] {
            for kind in Kind::START_ORDER {
                let components = of_kind(ids, kind);
                if !components.is_empty() {
                    rounds.push(Round {
                        restart,
                        components,
                    });
                }
            }
        }
        rounds
    }
}

impl Manager {
    /// Re-reads the stored configuration: stops components it no longer
    /// has, restarts those whose configuration changed, starts newly
    /// autolaunched ones.
    pub(super) fn reload(self: &Arc<Self>, timeout: Duration) -> Result<ReloadReport, String> {
        let config = self.stored_config()?;
        self.write_active_config(&config).map_err(|err| {
            format!(
                "nothing was changed: cannot write {}: {err}",
                self.active_config_path().display()
            )
        })?;
        let plan = self.adopt(&config);
        let mut errors: Vec<String> = plan
            .keep
            .iter()
            .map(|(id, reason)| {
                format!(
                    "{id} not restarted, it keeps running with its previous configuration: {reason}"
                )
            })
            .collect();
        for id in &plan.stop {
            let _ = self.stop_component(id, timeout);
            self.lab().slots.remove(id);
        }
        for round in plan.rounds() {
            errors.extend(self.start_round(&round, timeout));
        }
        let monitor = plan
            .restart_monitor
            .then(|| self.restart_monitor(&config, &mut errors));
        tracing::info!(
            "reloaded: {} restarted, {} started, {} stopped, {} errors",
            plan.restart.len(),
            plan.start.len(),
            plan.stop.len(),
            errors.len()
        );
        Ok(ReloadReport {
            restarted: plan.restart,
            started: plan.start,
            stopped: plan.stop,
            updated: plan.update,
            no_longer_autolaunched: plan.no_longer_autolaunched,
            monitor,
            errors,
            status: self.status(),
        })
    }

    /// The stored configuration, or why `reload` changes nothing.
    fn stored_config(&self) -> Result<LaunchConfig, String> {
        let store = ConfigStore::new(&self.options.data_dir);
        match store.load() {
            Ok(Some(config)) => Ok(config),
            Ok(None) => Err(format!(
                "no configuration is stored in {}",
                store.path().display()
            )),
            Err(ConfigError::Invalid { path, diagnostics }) => {
                let report: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                Err(format!(
                    "the stored configuration {} has errors; nothing was changed:\n{}",
                    path.display(),
                    report.join("\n")
                ))
            }
            Err(err) => Err(format!("nothing was changed: {err}")),
        }
    }

    /// Plans the reload to `config` and makes it the lab's configuration;
    /// the stopped components it changed start with it from now on.
    fn adopt(&self, config: &LaunchConfig) -> ReloadPlan {
        let mut lab = self.lab();
        let plan = ReloadPlan::new(&lab.config, config, managed(&lab), |id| {
            self.preflight(config, id)
        });
        for id in &plan.update {
            if let (Some(slot), Some(new)) = (lab.slots.get_mut(id), fingerprint(config, id)) {
                slot.fingerprint = new;
            }
        }
        lab.config = config.clone();
        plan
    }

    /// Starts (restarts) a round's components, then waits until they are
    /// ready or failed. Returns what went wrong.
    fn start_round(self: &Arc<Self>, round: &Round, timeout: Duration) -> Vec<String> {
        let mut errors = Vec::new();
        for id in &round.components {
            if round.restart {
                let _ = self.stop_component(id, timeout);
            }
            if let Err(err) = self.start_component(id, true) {
                errors.push(format!("{id}: {err}"));
            }
        }
        self.wait_settled(&round.components);
        errors
    }

    /// Whether a daemon's drivers can be found with `config`, before its
    /// working process is stopped for a new one.
    fn preflight(&self, config: &LaunchConfig, id: &ComponentId) -> Result<(), String> {
        if id.kind != Kind::Daemon {
            return Ok(());
        }
        let search_path = crate::loader::PluginSearchPath::from_sources(
            &self.options.plugin_dirs,
            &config.plugin_dirs,
            std::env::var_os(crate::loader::PLUGIN_PATH_ENV),
            Some(&self.options.data_dir),
        );
        let missing: Vec<String> = config
            .services
            .iter()
            .filter(|(_, s)| s.daemon == id.name)
            .filter_map(|(name, service)| {
                let error = search_path.resolve(&service.module).err()?;
                Some(format!("service {name}: {error}"))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }
}

/// The lab's managed components, as the plan sees them.
fn managed(lab: &Lab) -> impl Iterator<Item = Managed<'_>> {
    lab.slots.iter().map(|(id, slot)| Managed {
        id,
        runs_with: &slot.fingerprint,
        state: slot.state,
        has_process: slot.pid.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A lab like the demo: a name server `production` and a `backup`,
    /// daemon `lockable` (service `library`) registering with
    /// `production`, daemon `instruments` (service `sample`) registering
    /// with `backup` for its service; all but `backup` autolaunched.
    const LAB: &str = "\
nameservers:
  production:
    ns_port: 9090
  backup:
    ns_port: 9095
daemons:
  lockable:
    classname: LockableDaemon
    nameservers: [production]
  instruments:
    nameservers: []
services:
  library:
    module: libservice
    classname: LibraryCatalog
    parameters:
      catalog:
        The Hobbit: 3
    daemon: lockable
    nameservers: [production]
  sample:
    module: sample
    classname: SampleService
    daemon: instruments
    nameservers: [backup]
autolaunch:
  nameservers: [production]
  daemons: [lockable, instruments]
";

    fn config(text: &str) -> LaunchConfig {
        crate::config::load_str(text, Path::new("lab.yaml"), Path::new("/lab"), false)
            .unwrap_or_else(|d| panic!("{d:#?}"))
            .config
    }

    /// `LAB` with `from` replaced by `to` (which must be there).
    fn changed(from: &str, to: &str) -> LaunchConfig {
        assert!(LAB.contains(from), "{from:?} is not in the lab");
        config(&LAB.replacen(from, to, 1))
    }

    fn ns(name: &str) -> ComponentId {
        ComponentId {
            kind: Kind::Nameserver,
            name: name.to_owned(),
        }
    }

    fn daemon(name: &str) -> ComponentId {
        ComponentId {
            kind: Kind::Daemon,
            name: name.to_owned(),
        }
    }

    /// A managed component, as started with `config`, in `state`.
    struct Started {
        id: ComponentId,
        runs_with: String,
        state: State,
    }

    fn started(config: &LaunchConfig, id: ComponentId, state: State) -> Started {
        let runs_with = fingerprint(config, &id).expect("in the configuration");
        Started {
            id,
            runs_with,
            state,
        }
    }

    /// What `up` leaves running with `config`: its autolaunched
    /// components.
    fn up(config: &LaunchConfig) -> Vec<Started> {
        config
            .autolaunch
            .components()
            .into_iter()
            .map(|id| started(config, id, State::Running))
            .collect()
    }

    fn plan_with(
        old: &LaunchConfig,
        new: &LaunchConfig,
        lab: &[Started],
        can_start: impl Fn(&ComponentId) -> Result<(), String>,
    ) -> ReloadPlan {
        let managed = lab.iter().map(|c| Managed {
            id: &c.id,
            runs_with: &c.runs_with,
            state: c.state,
            has_process: matches!(c.state, State::Starting | State::Running | State::Stopping),
        });
        ReloadPlan::new(old, new, managed, can_start)
    }

    fn plan(old: &LaunchConfig, new: &LaunchConfig, lab: &[Started]) -> ReloadPlan {
        plan_with(old, new, lab, |_| Ok(()))
    }

    #[test]
    fn the_same_configuration_changes_nothing() {
        let lab = config(LAB);
        assert_eq!(plan(&lab, &lab, &up(&lab)), ReloadPlan::default());
    }

    #[test]
    fn a_changed_service_restarts_its_daemon_only() {
        let old = config(LAB);
        let new = changed("The Hobbit: 3", "The Hobbit: 7");
        let plan = plan(&old, &new, &up(&old));
        assert_eq!(
            plan,
            ReloadPlan {
                restart: vec![daemon("lockable")],
                ..ReloadPlan::default()
            }
        );
    }

    #[test]
    fn a_changed_daemon_setting_restarts_that_daemon() {
        let old = config(LAB);
        let new = changed("classname: LockableDaemon", "classname: Daemon");
        assert_eq!(plan(&old, &new, &up(&old)).restart, [daemon("lockable")]);
    }

    #[test]
    fn a_changed_name_server_restarts_it_and_the_daemons_that_register_with_it() {
        let old = config(LAB);
        let new = changed("ns_port: 9090", "ns_port: 9091");
        assert_eq!(
            plan(&old, &new, &up(&old)),
            ReloadPlan {
                restart: vec![ns("production"), daemon("lockable")],
                ..ReloadPlan::default()
            }
        );
        // `instruments` registers with `backup` for its service only, and
        // the manager does not run `backup`: it restarts all the same.
        let new = changed("ns_port: 9095", "ns_port: 9096");
        assert_eq!(plan(&old, &new, &up(&old)).restart, [daemon("instruments")]);
    }

    #[test]
    fn changed_plugin_directories_restart_every_daemon_but_no_name_server() {
        let old = config(LAB);
        let new = config(&format!("plugin_dirs: [/opt/drivers]\n{LAB}"));
        assert_eq!(
            plan(&old, &new, &up(&old)).restart,
            [daemon("lockable"), daemon("instruments")]
        );
    }

    #[test]
    fn a_new_autolaunched_component_starts_and_a_new_other_one_does_not() {
        let old = config(LAB);
        let new = changed(
            "autolaunch:\n  nameservers: [production]",
            "autolaunch:\n  nameservers: [production, backup]",
        );
        assert_eq!(
            plan(&old, &new, &up(&old)),
            ReloadPlan {
                start: vec![ns("backup")],
                ..ReloadPlan::default()
            }
        );
        let new = changed(
            "daemons:\n  lockable:",
            "daemons:\n  spare: {}\n  lockable:",
        );
        assert_eq!(plan(&old, &new, &up(&old)), ReloadPlan::default());
    }

    #[test]
    fn a_component_the_manager_ran_is_not_started_by_being_autolaunched_again() {
        let old = changed("daemons: [lockable, instruments]", "daemons: [lockable]");
        let new = config(LAB);
        let mut lab = up(&old);
        lab.push(started(&old, daemon("instruments"), State::Stopped));
        assert_eq!(plan(&old, &new, &lab), ReloadPlan::default());
    }

    #[test]
    fn a_component_gone_from_the_configuration_stops_whatever_its_state() {
        const WITHOUT_INSTRUMENTS_AND_BACKUP: &str = "\
nameservers:
  production:
    ns_port: 9090
daemons:
  lockable:
    classname: LockableDaemon
    nameservers: [production]
services:
  library:
    module: libservice
    classname: LibraryCatalog
    parameters:
      catalog:
        The Hobbit: 3
    daemon: lockable
    nameservers: [production]
autolaunch:
  nameservers: [production]
  daemons: [lockable]
";
        let old = config(LAB);
        let new = config(WITHOUT_INSTRUMENTS_AND_BACKUP);
        let mut lab = up(&old);
        lab.insert(1, started(&old, ns("backup"), State::Failed));
        assert_eq!(
            plan(&old, &new, &lab),
            ReloadPlan {
                stop: vec![ns("backup"), daemon("instruments")],
                ..ReloadPlan::default()
            }
        );
    }

    #[test]
    fn a_changed_stopped_component_is_updated_and_a_changed_failed_one_restarts() {
        let old = config(LAB);
        let new = changed("The Hobbit: 3", "The Hobbit: 7");
        let mut lab = up(&old);
        assert_eq!(lab[1].id, daemon("lockable"));
        lab[1].state = State::Stopped;
        assert_eq!(
            plan(&old, &new, &lab),
            ReloadPlan {
                update: vec![daemon("lockable")],
                ..ReloadPlan::default()
            }
        );
        lab[1].state = State::Failed;
        assert_eq!(plan(&old, &new, &lab).restart, [daemon("lockable")]);
    }

    #[test]
    fn a_changed_daemon_that_could_not_start_keeps_running() {
        let old = config(LAB);
        let new = changed("module: libservice", "module: libservise");
        let plan = plan_with(&old, &new, &up(&old), |id| {
            assert_eq!(id, &daemon("lockable"), "asked only about what changed");
            Err("service library: no plugin libservise".to_owned())
        });
        assert_eq!(
            plan,
            ReloadPlan {
                keep: vec![(
                    daemon("lockable"),
                    "service library: no plugin libservise".to_owned()
                )],
                ..ReloadPlan::default()
            }
        );
    }

    #[test]
    fn a_component_is_compared_with_what_it_runs_with_not_the_previous_configuration() {
        // `lockable` kept running with `original` when `broken` could not
        // start it; going back to `original` changes nothing for it.
        let original = config(LAB);
        let broken = changed("module: libservice", "module: libservise");
        assert_eq!(
            plan(&broken, &original, &up(&original)),
            ReloadPlan::default()
        );
    }

    #[test]
    fn a_running_component_taken_out_of_autolaunch_keeps_running() {
        let old = config(LAB);
        let new = changed("daemons: [lockable, instruments]", "daemons: [lockable]");
        let mut lab = up(&old);
        assert_eq!(
            plan(&old, &new, &lab),
            ReloadPlan {
                no_longer_autolaunched: vec![daemon("instruments")],
                ..ReloadPlan::default()
            }
        );
        // A stopped one is not worth a word.
        assert_eq!(lab[2].id, daemon("instruments"));
        lab[2].state = State::Stopped;
        assert_eq!(plan(&old, &new, &lab), ReloadPlan::default());
    }

    #[test]
    fn a_changed_monitor_section_restarts_the_monitor_only() {
        let old = config(LAB);
        let new = config(&format!("{LAB}monitor:\n  port: 8081\n"));
        assert_eq!(
            plan(&old, &new, &up(&old)),
            ReloadPlan {
                restart_monitor: true,
                ..ReloadPlan::default()
            }
        );
    }

    #[test]
    fn restarts_come_before_starts_and_name_servers_before_daemons() {
        let plan = ReloadPlan {
            restart: vec![ns("production"), daemon("lockable")],
            start: vec![ns("backup"), daemon("spare")],
            ..ReloadPlan::default()
        };
        let round = |restart, components| Round {
            restart,
            components,
        };
        assert_eq!(
            plan.rounds(),
            [
                round(true, vec![ns("production")]),
                round(true, vec![daemon("lockable")]),
                round(false, vec![ns("backup")]),
                round(false, vec![daemon("spare")]),
            ]
        );
    }
}
