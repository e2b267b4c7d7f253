//! The manager's side of the CLI's commands: serving the control socket,
//! and what each [`Request`] does.

use crate::sync;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::protocol::{Reply, Request};
use super::{DEFAULT_STOP_TIMEOUT, Manager, control};
use crate::lab::status::{ComponentId, Kind};

impl Manager {
    /// Answers the control socket until the lab is down.
    pub(super) fn serve_control(self: &Arc<Self>, listener: UnixListener) {
        for stream in listener.incoming() {
            if self.lab().done {
                break;
            }
            let stream = match stream {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!("control socket: {err}");
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let manager = Arc::clone(self);
            self.requests.fetch_add(1, Ordering::SeqCst);
            let spawned = thread::Builder::new()
                .name("control".to_owned())
                .spawn(move || {
                    control::serve_connection(stream, |r| manager.handle(r));
                    let _lab = manager.lab();
                    manager.requests.fetch_sub(1, Ordering::SeqCst);
                    manager.changed.notify_all();
                });
            if let Err(err) = spawned {
                self.requests.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("control socket: cannot serve a connection: {err}");
            }
        }
        // Let the answers in progress (`down`'s above all) reach their
        // clients; a silent client gets the request timeout at most.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut lab = self.lab();
        while self.requests.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            lab = sync::wait_a_while(&self.changed, lab, Duration::from_millis(100));
        }
    }

    /// Does what `request` asks and replies, or says why not.
    pub(super) fn handle(self: &Arc<Self>, request: Request) -> Result<Reply, String> {
        let seconds =
            |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(DEFAULT_STOP_TIMEOUT);
        // Only looking and stopping do not wait for the start-up: changes
        // would race it, and `wait_started` is that wait.
        if !matches!(request, Request::Status {} | Request::Down { .. }) {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err("the lab is shutting down".to_owned());
            }
            self.wait_for_start_up();
        }
        match request {
            Request::Status {} | Request::WaitStarted {} => {}
            Request::Down { timeout_s } => self.shut_down(seconds(timeout_s)),
            Request::Start { kind, name } => self.start_until_ready(&ComponentId { kind, name })?,
            Request::Stop {
                kind,
                name,
                timeout_s,
            } => self.stop_component(&ComponentId { kind, name }, seconds(timeout_s))?,
            Request::Restart {
                kind,
                name,
                timeout_s,
            } => {
                let id = ComponentId { kind, name };
                if self.lab().slots.contains_key(&id) {
                    self.stop_component(&id, seconds(timeout_s))?;
                }
                self.start_until_ready(&id)?;
            }
            Request::Reload { timeout_s } => {
                return self.reload(seconds(timeout_s)).map(Reply::Reloaded);
            }
        }
        Ok(Reply::Status(self.status()))
    }

    /// Waits until the start-up has started the autolaunched components.
    fn wait_for_start_up(&self) {
        drop(sync::wait_for(&self.changed, self.lab(), |lab| {
            !lab.starting
        }));
    }

    /// Starts a component and waits until it is ready (or failed); for a
    /// name server, also until its daemons registered with it again.
    fn start_until_ready(self: &Arc<Self>, id: &ComponentId) -> Result<(), String> {
        self.start_component(id, true)?;
        self.wait_settled(std::slice::from_ref(id));
        if id.kind == Kind::Nameserver {
            self.wait_registered(&id.name);
        }
        Ok(())
    }
}
