//! How a component (`run daemon` / `run nameserver`) and the manager of
//! `pyrolab-host up` talk while the component runs as the manager's child.
//!
//! With `--supervised`, the component reports what the manager needs to
//! know as event lines on its stdout, `@pyrolab {json}`, between its
//! ordinary output (which the manager logs): that it is ready, and, for a
//! lockable daemon, who locks and unlocks which service. Its stdin is a
//! pipe from the manager, which writes `register` on it when a name server
//! came back, for a daemon to register again at once. When the pipe
//! closes, the manager is gone (even if it was killed with SIGKILL), and
//! the component shuts down gracefully instead of lingering as an orphan
//! serving a configuration nobody manages.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// What starts an event line.
pub const EVENT_PREFIX: &str = "@pyrolab ";

/// One thing a supervised component reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Serving: a name server answers; a daemon answers and has tried to
    /// register every name once.
    Ready {
        /// `host:port` (or `./u:path`) clients use.
        address: String,
        /// The services served, with their URIs (none for a name server).
        #[serde(default)]
        services: Vec<ServedService>,
        /// The outcome of the first registration of each name.
        #[serde(default)]
        registrations: Vec<RegistrationOutcome>,
        /// Where this machine reaches it (its bound address, not a NAT
        /// one): what the manager's liveness probe calls.
        #[serde(default)]
        local_address: Option<String>,
    },
    /// The answer to the manager's [`PING`] line: the process runs, with
    /// this many calls in progress.
    Alive {
        #[serde(default)]
        calls_in_progress: u64,
    },
    /// A daemon's registrations changed: a name server went away, or came
    /// back and has the names again.
    Registrations {
        /// How each registration stands now.
        registrations: Vec<RegistrationOutcome>,
    },
    /// A service's lock changed hands (`holder: null`: unlocked).
    Lock {
        /// The service.
        service: String,
        /// Who holds it now, as the client named itself in `lock(user)`.
        holder: Option<String>,
    },
}

/// A service a daemon serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServedService {
    /// Its name (the object id and the registered name).
    pub name: String,
    /// Its URI.
    pub uri: String,
}

/// Whether one name got registered with one name server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistrationOutcome {
    /// The name server's name in the configuration.
    pub nameserver: String,
    /// The registered name.
    pub name: String,
    /// Why it failed; `None` when it is registered. A failed name is
    /// registered later, as soon as the name server answers.
    pub error: Option<String>,
}

/// Writes `event` as an event line on stdout. A closed stdout (the
/// manager is gone) is not an error worth stopping for: the stdin watch
/// stops the component.
pub fn report(event: &Event) {
    let Ok(json) = serde_json::to_string(event) else {
        return;
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{EVENT_PREFIX}{json}");
    let _ = stdout.flush();
}

/// The event on a line of a component's stdout, if it is an event line.
pub fn parse(line: &str) -> Option<Event> {
    serde_json::from_str(line.strip_prefix(EVENT_PREFIX)?).ok()
}

/// What the manager writes to a component's stdin, one per line.
pub const REGISTER_NOW: &str = "register";
/// Asks the component whether it runs: it answers [`Event::Alive`] at
/// once, from the thread that reads its stdin (a stopped or wedged
/// process does not).
pub const PING: &str = "ping";

/// Reads the manager's requests from stdin in the background: a [`PING`]
/// is answered at once (with `calls_in_progress()`), each other line is
/// handed to `on_line`; at the end of stdin (the manager closed the pipe
/// or died), `on_close` is called once.
pub fn watch_stdin(
    mut on_line: impl FnMut(&str) + Send + 'static,
    on_close: impl FnOnce() + Send + 'static,
    calls_in_progress: impl Fn() -> u64 + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("manager-watch".to_owned())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = String::new();
            while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
                match line.trim() {
                    PING => report(&Event::Alive {
                        calls_in_progress: calls_in_progress(),
                    }),
                    other => on_line(other),
                }
                line.clear();
            }
            on_close();
            tracing::info!("the manager is gone: stopping");
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_a_line() {
        let event = Event::Lock {
            service: "laser".into(),
            holder: Some("alice".into()),
        };
        let line = format!(
            "{EVENT_PREFIX}{}",
            serde_json::to_string(&event).expect("json")
        );
        assert_eq!(parse(&line), Some(event));
        assert_eq!(parse("daemon lab listening on x"), None);
        assert_eq!(parse("@pyrolab {not json"), None);
    }
}
