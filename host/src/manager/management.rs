//! The host's management object (`manager:` in the configuration): what
//! the lab's other hosts see of this one, and how they drive it.
//!
//! The manager serves one Pyro object, [`OBJECT`], on a daemon of its own
//! and keeps it registered with the lab's name servers as
//! `pyrolab.manager.HOST` ([`management_name`]), tagged [`TAG`], so that
//! `ps --lab`, `logs HOST/NAME`, `restart KIND HOST/NAME` and the monitor
//! find every host's manager by name. Its methods:
//!
//! | method | right | returns |
//! | --- | --- | --- |
//! | `host()` | read | this host's name |
//! | `status()` | read | what `ps --json` shows (docs/cli-json.md) |
//! | `config()` | read | the configuration it runs, as YAML |
//! | `logs(name, lines=100, kind=None)` | read | a component's last lines (`manager`: its own) |
//! | `start(kind, name)` | act | the component's status once it is ready or failed |
//! | `stop(kind, name, timeout=10)` | act | its status once stopped |
//! | `restart(kind, name, timeout=10)` | act | its status once ready or failed |
//!
//! Reading and acting are separate rights ([`ManagerRights`]); without TLS
//! only callers on this machine may act.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use pyrolab_plugin_api::call::Arguments;
use pyrolab_plugin_api::{CallArgs, DriverError, Value, to_value};

use super::Manager;
use super::protocol::{Reply, Request};
use crate::access::{Caller, ManagerRights};
use crate::config::schema::{ManagerConfig, management_name};
use crate::daemon::pyro::exception;
use crate::daemon::registrar::{Registrar, Registration};
use crate::daemon::{Daemon, DaemonSettings, NativeObject, ShutdownHandle};
use crate::lab::logfile::{self, Selection};
use crate::lab::status::{ComponentId, Kind};
use crate::sync::LockUnpoisoned;

/// The management object's id on its daemon.
pub const OBJECT: &str = "pyrolab.manager";
/// The metadata tag every management object is registered with.
pub const TAG: &str = "pyrolab:manager";
/// The TLS identity whose certificate the manager serves with, unless its
/// `tls` names another.
pub const IDENTITY: &str = "manager";
/// The most log lines one `logs` call returns.
const MAX_LINES: usize = 10_000;

const METHODS: &[&str] = &[
    "config", "host", "logs", "restart", "start", "status", "stop",
];

/// The served management object: its daemon, and the registrations that
/// keep it found. Stopping it removes them.
pub(super) struct Management {
    shutdown: ShutdownHandle,
    server: Option<JoinHandle<()>>,
    registrar: Registrar,
    /// Its URI.
    pub uri: String,
}

impl Drop for Management {
    fn drop(&mut self) {
        self.registrar.stop();
        self.shutdown.shutdown();
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// This machine's host name (the default name of a host in the lab).
pub fn this_host() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    // The short name: `lab-pc` of `lab-pc.example.org`.
    name.split('.').next().unwrap_or("localhost").to_owned()
}

/// The name of this host in the lab: the configured one, else this
/// machine's.
pub fn host_name(settings: &ManagerConfig) -> String {
    settings.name.clone().unwrap_or_else(this_host)
}

impl Manager {
    /// Serves the management object, if the configuration has a `manager:`
    /// section, and registers it with the lab's name servers. One that
    /// cannot start is logged; the lab runs all the same.
    pub(super) fn start_management(self: &Arc<Self>) {
        let config = self.lab().config.clone();
        let Some(settings) = &config.manager else {
            return;
        };
        match self.serve_management(&config, settings) {
            Ok(management) => {
                tracing::info!(
                    "management object {} at {}",
                    management_name(&host_name(settings)),
                    management.uri
                );
                *self.management.lock_unpoisoned() = Some(management);
            }
            Err(err) => tracing::error!("the management object cannot be served: {err}"),
        }
    }

    /// Stops serving the management object and removes its names.
    pub(super) fn stop_management(&self) {
        let management = self.management.lock_unpoisoned().take();
        drop(management);
    }

    fn serve_management(
        self: &Arc<Self>,
        config: &crate::config::LaunchConfig,
        settings: &ManagerConfig,
    ) -> Result<Management, String> {
        let what = "the management object";
        let files = settings
            .tls
            .as_ref()
            .map(|tls| tls.files(IDENTITY, Some(&self.options.data_dir)))
            .transpose()
            .map_err(|err| format!("TLS: {err}"))?;
        let bound = crate::net::bind_tcp(what, &settings.host, settings.port, None, 0)
            .and_then(|bound| bound.with_tls(what, files))
            .and_then(|bound| {
                bound.check_exposure(what, settings.insecure)?;
                Ok(bound)
            })
            .map_err(|err| err.to_string())?;
        let uri = format!("PYRO:{OBJECT}@{}", bound.location);
        let host = host_name(settings);
        let object: Arc<dyn NativeObject> = Arc::new(ManagementObject {
            manager: Arc::downgrade(self),
            host: host.clone(),
            rights: settings.access.clone(),
            over_tls: settings.tls.is_some(),
        });
        let daemon = Daemon::with_objects(
            DaemonSettings {
                name: "management".to_owned(),
                servertype: crate::config::schema::ServerType::Thread,
                lockable: false,
                threadpool_size: 8,
                max_connections: 64,
                max_message_size: 1 << 20,
                max_reply_size: 64 << 20,
                max_message_memory: 64 << 20,
                handshake_timeout: Some(Duration::from_secs(5)),
                idle_timeout: None,
                comm_timeout: None,
                streams: Default::default(),
                metrics: true,
            },
            Vec::new(),
            vec![(OBJECT.to_owned(), object)],
        );
        let shutdown = daemon.shutdown_handle();
        let server = thread::Builder::new()
            .name("management".to_owned())
            .spawn({
                let shutdown = daemon.shutdown_handle();
                move || daemon.serve(bound, &shutdown)
            })
            .map_err(|err| format!("cannot start its thread: {err}"))?;
        let registrations = registrations(config, settings, &host, &uri);
        let registrar = Registrar::start(registrations, |outcomes| {
            for outcome in outcomes {
                match outcome.error {
                    None => tracing::info!(
                        "management object registered with name server {} as {}",
                        outcome.nameserver,
                        outcome.name
                    ),
                    Some(error) => tracing::warn!(
                        "management object not registered with name server {}: {error}; retrying",
                        outcome.nameserver
                    ),
                }
            }
        })
        .map_err(|err| format!("cannot start its registrar: {err}"))?;
        Ok(Management {
            shutdown,
            server: Some(server),
            registrar,
            uri,
        })
    }
}

/// The registrations of the management object: with the name servers
/// `manager.nameservers` lists, else with every configured one.
fn registrations(
    config: &crate::config::LaunchConfig,
    settings: &ManagerConfig,
    host: &str,
    uri: &str,
) -> Vec<Registration> {
    let names: Vec<&str> = if settings.nameservers.is_empty() {
        config.nameservers.names().collect()
    } else {
        settings.nameservers.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .filter_map(|ns_name| {
            let ns = config.nameservers.get(ns_name)?;
            Some(Registration {
                nameserver: ns_name.to_owned(),
                host: crate::net::resolve_host(&ns.host),
                port: ns.ns_port,
                tls: ns.tls.is_some(),
                name: management_name(host),
                uri: uri.to_owned(),
                metadata: BTreeSet::from([TAG.to_owned(), format!("host:{host}")]),
            })
        })
        .collect()
}

/// The object the other hosts call.
struct ManagementObject {
    manager: std::sync::Weak<Manager>,
    host: String,
    rights: ManagerRights,
    over_tls: bool,
}

impl ManagementObject {
    fn manager(&self) -> Result<Arc<Manager>, Value> {
        self.manager
            .upgrade()
            .ok_or_else(|| error("RuntimeError", "the manager is stopping"))
    }

    fn may_read(&self, caller: &Caller, what: &str) -> Result<(), Value> {
        caller
            .check(&self.rights.read, "read", || {
                format!("read {what} of host {}", self.host)
            })
            .map_err(|refusal| error("PermissionError", &refusal))
    }

    /// Acting takes the `act` right, which only a caller with a
    /// certificate can show; without TLS, a caller on this machine has it.
    fn may_act(&self, caller: &Caller, action: &str) -> Result<(), Value> {
        let action = format!("{action} on host {}", self.host);
        let allowed = if self.over_tls {
            caller.has(&self.rights.act)
        } else {
            caller.is_local()
        };
        if allowed {
            return Ok(());
        }
        let refusal = if self.over_tls {
            caller.refuse("act", &action)
        } else {
            caller.refuse(
                "act",
                &format!("{action} (without TLS, only callers on the host itself may act)"),
            )
        };
        refusal.map_err(|refusal| error("PermissionError", &refusal))
    }

    fn status(&self) -> Result<Value, Value> {
        let status = self.manager()?.status();
        to_value(&status).map_err(|err| error("RuntimeError", &err.to_string()))
    }

    fn config(&self) -> Result<Value, Value> {
        let config = self.manager()?.lab().config.clone();
        Ok(Value::from(crate::config::to_yaml(&config)))
    }

    fn logs(&self, mut args: Arguments) -> Result<Value, Value> {
        let name: String = args.required(0).map_err(type_error)?;
        let lines: i64 = args
            .optional(1, || Ok(Value::Int(100)))
            .map_err(type_error)?;
        let kind: Option<String> = args.optional(2, || Ok(Value::Null)).map_err(type_error)?;
        let kind = kind.as_deref().map(parse_kind).transpose()?;
        let lines = usize::try_from(lines).unwrap_or(0).min(MAX_LINES);
        let manager = self.manager()?;
        let path = logfile::locate(&manager.options.data_dir, &name, kind)
            .map_err(|err| error("ValueError", &err))?;
        let (lines, _) = logfile::read(
            &path,
            Selection {
                since: None,
                last: Some(lines),
            },
        )
        .map_err(|err| error("IOError", &format!("cannot read {}: {err}", path.display())))?;
        Ok(Value::List(lines.into_iter().map(Value::from).collect()))
    }

    /// `start`, `stop` or `restart` of component `kind name`, as the CLI's
    /// request of the same name does; the component's status after.
    fn act(&self, method: &str, mut args: Arguments) -> Result<Value, Value> {
        let kind: String = args.required(0).map_err(type_error)?;
        let name: String = args.required(1).map_err(type_error)?;
        let timeout_s: f64 = args
            .optional(2, || {
                Ok(Value::Float(super::DEFAULT_STOP_TIMEOUT.as_secs_f64()))
            })
            .map_err(type_error)?;
        let kind = parse_kind(&kind)?;
        let request = match method {
            "start" => Request::Start {
                kind,
                name: name.clone(),
            },
            "stop" => Request::Stop {
                kind,
                name: name.clone(),
                timeout_s,
            },
            _ => Request::Restart {
                kind,
                name: name.clone(),
                timeout_s,
            },
        };
        tracing::info!("management: {method} {kind:?} {name}, asked from another host");
        let reply = self
            .manager()?
            .handle(request)
            .map_err(|err| error("RuntimeError", &err))?;
        let Reply::Status(status) = reply else {
            return Err(error("RuntimeError", "unexpected reply"));
        };
        let id = ComponentId { kind, name };
        let component = status
            .components
            .into_iter()
            .find(|c| c.kind == id.kind && c.name == id.name)
            .ok_or_else(|| error("ValueError", &format!("{id} is not managed")))?;
        to_value(&component).map_err(|err| error("RuntimeError", &err.to_string()))
    }
}

impl NativeObject for ManagementObject {
    fn metadata(&self) -> Value {
        let strings = |items: &[&str]| Value::List(items.iter().map(|s| Value::from(*s)).collect());
        Value::Map(vec![
            (Value::from("methods"), strings(METHODS)),
            (Value::from("oneway"), strings(&[])),
            (Value::from("attrs"), strings(&[])),
        ])
    }

    fn call(&self, method: &str, args: CallArgs, caller: &Caller) -> Result<Value, Value> {
        let bind = |params: &'static [&'static str]| {
            Arguments::new(method_name(method), params, None, None, args).map_err(type_error)
        };
        match method {
            "host" => {
                bind(&[])?;
                Ok(Value::from(self.host.as_str()))
            }
            "status" => {
                bind(&[])?;
                self.may_read(caller, "the status")?;
                self.status()
            }
            "config" => {
                bind(&[])?;
                self.may_read(caller, "the configuration")?;
                self.config()
            }
            "logs" => {
                let args = bind(&["name", "lines", "kind"])?;
                self.may_read(caller, "the logs")?;
                self.logs(args)
            }
            "start" | "stop" | "restart" => {
                let args = bind(&["kind", "name", "timeout"])?;
                self.may_act(caller, &format!("{method} a component"))?;
                self.act(method, args)
            }
            other => Err(error(
                "AttributeError",
                &format!("remote object '{OBJECT}' has no exposed attribute or method '{other}'"),
            )),
        }
    }
}

/// `method` as a `'static` name for argument errors.
fn method_name(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("call")
}

fn parse_kind(text: &str) -> Result<Kind, Value> {
    Kind::START_ORDER
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| {
            error(
                "ValueError",
                &format!("kind must be nameserver, daemon or command, not {text:?}"),
            )
        })
}

fn error(class: &str, message: &str) -> Value {
    exception(class, message, Vec::new())
}

fn type_error(err: DriverError) -> Value {
    error("TypeError", &err.to_string())
}
