//! A service as a daemon hosts it: its driver class, its instance mode, and
//! the instances that mode calls for.

use std::collections::HashMap;
use std::sync::Arc;

use pyrolab_plugin_api::descriptor::ClassDescriptor;
use pyrolab_plugin_api::{DriverError, Value};

use super::pyro;
use crate::access::{Caller, ServiceRights};
use crate::config::schema::InstanceMode;
use crate::loader::{Instance, Library, LoadError};

/// One service of a daemon.
pub struct HostedService {
    name: String,
    library: Arc<Library>,
    class: String,
    parameters: Value,
    mode: InstanceMode,
    /// The instance of a `single` service, made when the daemon starts.
    single: Option<Arc<Instance>>,
    descriptor: ClassDescriptor,
    /// PyroLab's `Service` methods the daemon answers for it.
    service_methods: &'static [&'static str],
    /// The driver's methods that take a call context (usually none).
    context_methods: Vec<String>,
    /// Who may call, lock and force-release it.
    rights: ServiceRights,
}

impl HostedService {
    /// Prepares a service. A `single` service's driver is constructed now,
    /// so a constructor error stops the daemon from starting; `session` and
    /// `percall` drivers are constructed when a client first needs one.
    pub fn new(
        name: &str,
        library: Arc<Library>,
        class: &str,
        parameters: Value,
        mode: InstanceMode,
    ) -> Result<Self, LoadError> {
        let descriptor = library.class(class)?.clone();
        let single = match mode {
            InstanceMode::Single => Some(Arc::new(library.create(class, &parameters)?)),
            InstanceMode::Session | InstanceMode::Percall => None,
        };
        Ok(HostedService {
            name: name.to_owned(),
            library,
            class: class.to_owned(),
            parameters,
            mode,
            single,
            service_methods: pyro::SERVICE_METHODS,
            context_methods: descriptor
                .methods
                .iter()
                .filter(|m| m.context)
                .map(|m| m.name.clone())
                .collect(),
            descriptor,
            rights: ServiceRights::default(),
        })
    }

    /// Serves the driver's class alone, as a plain Pyro5 object: without
    /// PyroLab's `Service` methods (`ping`, `pyrolab_version`) unless the
    /// driver defines them (`pyrolab_service: false`).
    pub fn without_service_methods(mut self) -> Self {
        self.service_methods = &[];
        self
    }

    /// Grants `rights` (every right to anyone, by default).
    pub fn with_rights(mut self, rights: ServiceRights) -> Self {
        self.rights = rights;
        self
    }

    /// Who may call, lock and force-release it.
    pub fn rights(&self) -> &ServiceRights {
        &self.rights
    }

    /// Whether the daemon answers `method` itself: one of PyroLab's
    /// `Service` methods, which the driver does not define.
    pub fn answered_by_daemon(&self, method: &str) -> bool {
        self.service_methods.contains(&method)
            && !self.descriptor.methods.iter().any(|m| m.name == method)
    }

    /// Whether the driver's `method` takes a call context, which the host
    /// then sends with the call.
    pub fn takes_context(&self, method: &str) -> bool {
        !self.context_methods.is_empty() && self.context_methods.iter().any(|m| m == method)
    }

    /// Pyro5's metadata of the service: the driver's methods and
    /// properties, `added_methods` (a lockable daemon's) and PyroLab's
    /// `Service` methods.
    pub fn metadata(&self, added_methods: &[&str]) -> Value {
        pyro::metadata(&self.descriptor, added_methods, self.service_methods)
    }

    /// The name clients use (the Pyro object id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The driver class's description.
    pub fn descriptor(&self) -> &ClassDescriptor {
        &self.descriptor
    }

    /// The instance mode.
    pub fn mode(&self) -> InstanceMode {
        self.mode
    }

    /// The instance that serves a call on connection `session`.
    pub fn instance(&self, session: &mut Sessions) -> Result<Arc<Instance>, DriverError> {
        match self.mode {
            InstanceMode::Single => Ok(Arc::clone(self.single.as_ref().expect("made at start"))),
            InstanceMode::Percall => self.construct().map(Arc::new),
            InstanceMode::Session => {
                if let Some(instance) = session.instances.get(&self.name) {
                    return Ok(Arc::clone(instance));
                }
                let instance = Arc::new(self.construct()?);
                session
                    .instances
                    .insert(self.name.clone(), Arc::clone(&instance));
                Ok(instance)
            }
        }
    }

    fn construct(&self) -> Result<Instance, DriverError> {
        self.library
            .create(&self.class, &self.parameters)
            .map_err(|err| match err {
                LoadError::Constructor { error, .. } => error,
                other => DriverError::runtime(other.to_string()),
            })
            .inspect_err(|err| {
                // The caller gets the error; the lab's log should have it
                // too (a session driver is built only when a client asks).
                tracing::warn!(
                    "service {}: constructing {} failed: {}: {}",
                    self.name,
                    self.class,
                    err.kind().python_name(),
                    err.message()
                );
            })
    }
}

/// One connection's state: its id and its `session` instances, dropped
/// with it.
pub struct Sessions {
    connection: u64,
    caller: Caller,
    instances: HashMap<String, Arc<Instance>>,
}

impl Sessions {
    /// The state of connection number `connection`, from `client` (its
    /// TCP address, if it is a TCP connection).
    pub fn new(connection: u64, client: Option<String>) -> Self {
        Sessions {
            connection,
            caller: Caller {
                identity: None,
                address: client,
            },
            instances: HashMap::new(),
        }
    }

    /// The client's TCP address (`host:port`), if it has one.
    pub fn client(&self) -> Option<&str> {
        self.caller.address.as_deref()
    }

    /// Who is calling: the identity of its certificate (once its TLS
    /// handshake is done) and its address.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Sets the caller's identity, from its TLS certificate.
    pub fn set_identity(&mut self, identity: Option<String>) {
        self.caller.identity = identity;
    }

    /// The connection's number (unique within the daemon).
    pub fn connection(&self) -> u64 {
        self.connection
    }
}
