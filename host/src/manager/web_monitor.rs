//! The web monitor the manager serves when the configuration has a
//! `monitor:` section: starting, restarting and stopping it, and what `ps`
//! says of it.

use crate::sync::LockUnpoisoned;
use std::sync::Arc;
use std::time::Duration;

use super::Manager;
use crate::config::LaunchConfig;

impl Manager {
    /// Starts the web monitor, if the configuration has a `monitor:`
    /// section. A monitor that cannot start (its port is taken) is
    /// reported in the status; the lab runs all the same.
    pub(super) fn start_monitor(self: &Arc<Self>, config: &LaunchConfig) {
        let Some(settings) = &config.monitor else {
            return;
        };
        let host = crate::net::resolve_host(&settings.host);
        let listen = if host.contains(':') {
            format!("[{host}]:{}", settings.port)
        } else {
            format!("{host}:{}", settings.port)
        };
        let nameservers = config
            .nameservers
            .iter()
            .map(|(name, ns)| crate::monitor::NameServerTarget {
                name: name.to_owned(),
                host: crate::net::resolve_host(&ns.host),
                port: ns.ns_port,
            })
            .collect();
        let manager = Arc::downgrade(self);
        let started = self
            .monitor_tls(settings.tls.as_ref())
            .and_then(|(tls, client_tls)| {
                crate::monitor::Monitor::start(crate::monitor::Settings {
                    listen: listen.clone(),
                    polling: Duration::from_secs_f64(settings.polling),
                    nameservers,
                    lab: Some(Box::new(move || manager.upgrade().map(|m| m.status()))),
                    data_dir: Some(self.options.data_dir.clone()),
                    tls,
                    insecure: settings.insecure,
                    client_tls,
                    rights: settings.access.clone(),
                })
                .map_err(|err| err.to_string())
            })
            .map_err(|err| format!("the web monitor cannot listen on {listen}: {err}"));
        match &started {
            Ok(monitor) => tracing::info!("web monitor at {}", monitor.url()),
            Err(err) => tracing::error!("{err}"),
        }
        *self.monitor.lock_unpoisoned() = Some(started);
    }

    /// The monitor's TLS: what it serves HTTPS with, and what it calls the
    /// lab with (its own certificate), when it has TLS; else plain, and
    /// calls as `PYRO_SSL_*` says.
    fn monitor_tls(
        &self,
        tls: Option<&crate::config::schema::TlsConfig>,
    ) -> Result<(Option<crate::tls::ServerTls>, Option<crate::tls::ClientTls>), String> {
        let Some(tls) = tls else {
            return crate::tls::default_client()
                .map(|client| (None, client))
                .map_err(|err| err.to_string());
        };
        let files = tls
            .files(
                crate::config::schema::MONITOR_IDENTITY,
                Some(&self.options.data_dir),
            )
            .map_err(|err| format!("TLS: {err}"))?;
        let server = crate::tls::ServerTls::load(&files).map_err(|err| format!("TLS: {err}"))?;
        let client =
            crate::tls::ClientTls::for_component(&files).map_err(|err| format!("TLS: {err}"))?;
        Ok((Some(server), Some(client)))
    }

    /// Restarts the web monitor with `config`'s settings (or stops it, if
    /// it has none). Returns its URL, or `off`; why it could not start
    /// goes into `errors`.
    pub(super) fn restart_monitor(
        self: &Arc<Self>,
        config: &LaunchConfig,
        errors: &mut Vec<String>,
    ) -> String {
        self.stop_monitor();
        self.start_monitor(config);
        let (url, error) = self.monitor_state();
        errors.extend(error);
        url.unwrap_or_else(|| "off".to_owned())
    }

    /// The monitor's URL, or why it is not running.
    pub(super) fn monitor_state(&self) -> (Option<String>, Option<String>) {
        match &*self.monitor.lock_unpoisoned() {
            Some(Ok(monitor)) => (Some(monitor.url()), None),
            Some(Err(err)) => (None, Some(err.clone())),
            None => (None, None),
        }
    }

    /// Stops the web monitor, if it runs.
    pub(super) fn stop_monitor(&self) {
        // Dropped outside the lock, which its poller may be waiting for.
        let monitor = self.monitor.lock_unpoisoned().take();
        drop(monitor);
    }

    /// Has the web monitor look at the lab now, rather than at its next
    /// round.
    pub(super) fn refresh_monitor(&self) {
        if let Some(Ok(monitor)) = &*self.monitor.lock_unpoisoned() {
            monitor.look_now();
        }
    }
}
