//! The control protocol: what the CLI asks the manager ([`Request`]), what
//! the manager answers ([`Reply`]), and how both look on the control
//! socket. Every (de)serialization of the protocol is here: `control.rs`
//! only moves the lines, and the manager and the CLI see only these types.
//!
//! Both ends are `pyrolab-host` processes, normally of one build; the
//! remote management of other hosts is meant to reuse these types.
//!
//! # On the wire
//!
//! One request per connection, a JSON object on one line, answered by one
//! JSON line:
//!
//! ```text
//! {"protocol": 1, "command": "start", "kind": "daemon", "name": "lockable"}
//! {"protocol": 1, "ok": true, "result": {"manager": {...}, "components": [...], "services": [...]}}
//! {"protocol": 1, "ok": false, "error": "there is no daemon lockable in the configuration"}
//! ```
//!
//! The result of every request but `reload` is the lab's status
//! ([`LabStatus`], the `ps --json` document); `reload`'s is a
//! [`ReloadReport`].
//!
//! # Versions
//!
//! [`PROTOCOL_VERSION`] goes up with any change of these types that the
//! other end could misread. Each end checks the other's version before it
//! reads anything else: the manager refuses a request of another version,
//! the CLI an answer of another version. A lab started by one build and
//! asked by another then says so, instead of failing on a field that moved.
//!
//! A request without a version is protocol 1's: the builds before versions
//! sent such requests, and they are what one types to probe the socket by
//! hand. An answer without a version comes from a manager of such a build,
//! which refuses every versioned request: another version too.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lab::status::{ComponentId, Kind, LabStatus};

/// The version of the control protocol this build speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// The version of a request that carries none (see the module's docs).
const VERSION_OF_UNVERSIONED_REQUESTS: u64 = 1;

/// The field of a request and of an answer that holds its version.
const VERSION_FIELD: &str = "protocol";

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The lab's status now.
    Status {},
    /// The lab's status once the autolaunched components have started.
    WaitStarted {},
    /// Stop every component, then the manager.
    Down {
        /// Seconds each component gets to stop gracefully before it is
        /// killed.
        timeout_s: f64,
    },
    /// Start a stopped or failed component; answers once it is ready.
    Start {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// Stop a component.
    Stop {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
        /// Seconds it gets to stop gracefully.
        timeout_s: f64,
    },
    /// Stop, then start a component.
    Restart {
        /// Its kind.
        kind: Kind,
        /// Its name.
        name: String,
        /// Seconds it gets to stop gracefully.
        timeout_s: f64,
    },
    /// Re-read the stored configuration and apply the changes.
    Reload {
        /// Seconds each changed component gets to stop gracefully.
        timeout_s: f64,
    },
}

/// What the manager answers a request with.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The lab's status after the request: the answer to every request but
    /// `reload`.
    Status(LabStatus),
    /// What `reload` did.
    Reloaded(ReloadReport),
}

impl Reply {
    /// The lab's status after the request, which every reply carries.
    pub fn into_status(self) -> LabStatus {
        match self {
            Reply::Status(status) => status,
            Reply::Reloaded(report) => report.status,
        }
    }

    /// What `reload` did; `None` for the replies to other requests.
    pub fn into_reload_report(self) -> Option<ReloadReport> {
        match self {
            Reply::Reloaded(report) => Some(report),
            Reply::Status(_) => None,
        }
    }
}

/// What `reload` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Running components whose configuration changed: restarted with it.
    pub restarted: Vec<ComponentId>,
    /// Newly autolaunched components: started.
    pub started: Vec<ComponentId>,
    /// Components the configuration no longer has: stopped.
    pub stopped: Vec<ComponentId>,
    /// Stopped components whose configuration changed (they start with it).
    pub updated: Vec<ComponentId>,
    /// Still running, but no longer autolaunched.
    pub no_longer_autolaunched: Vec<ComponentId>,
    /// The web monitor's URL (or `off`) when its settings changed and it
    /// was restarted with them.
    pub monitor: Option<String>,
    /// What could not be done, one message each.
    pub errors: Vec<String>,
    /// The lab's status afterwards.
    pub status: LabStatus,
}

/// Why a line is not a request or an answer this build can read.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or not a request's fields.
    #[error("not a request: {0}")]
    NotARequest(String),
    /// Not JSON, or not an answer's fields.
    #[error("not an answer: {0}")]
    NotAnAnswer(String),
    /// A request of another version of the protocol.
    #[error("the client speaks control protocol {client}, this manager speaks {PROTOCOL_VERSION}")]
    RequestOfAnotherVersion {
        /// The client's version.
        client: u64,
    },
    /// An answer of another version of the protocol.
    #[error("{}", describe_manager_version(*.manager))]
    AnswerOfAnotherVersion {
        /// The manager's version; `None` for a manager of a build before
        /// versions.
        manager: Option<u64>,
    },
}

/// `the manager speaks control protocol N, this pyrolab-host speaks M`.
fn describe_manager_version(manager: Option<u64>) -> String {
    match manager {
        Some(version) => format!(
            "the manager speaks control protocol {version}, this pyrolab-host speaks {PROTOCOL_VERSION}"
        ),
        None => format!(
            "the manager speaks a control protocol from before versions, this pyrolab-host speaks {PROTOCOL_VERSION}"
        ),
    }
}

/// A request or an answer with the version in front.
#[derive(Serialize)]
struct Versioned<'a, T> {
    protocol: u64,
    #[serde(flatten)]
    body: &'a T,
}

/// An answer without its version.
#[derive(Serialize, Deserialize)]
struct Answer<R> {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The line a client sends for `request`.
pub fn encode_request(request: &Request) -> Vec<u8> {
    line(&Versioned {
        protocol: PROTOCOL_VERSION,
        body: request,
    })
    .expect("requests have nothing that cannot be JSON")
}

/// The request in a client's line (without its newline or with it).
pub fn decode_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let mut fields = json_object(line).map_err(ProtocolError::NotARequest)?;
    let client = take_version(&mut fields)
        .map_err(ProtocolError::NotARequest)?
        .unwrap_or(VERSION_OF_UNVERSIONED_REQUESTS);
    if client != PROTOCOL_VERSION {
        return Err(ProtocolError::RequestOfAnotherVersion { client });
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|err| ProtocolError::NotARequest(err.to_string()))
}

/// The line the manager answers with.
pub fn encode_answer(answer: &Result<Reply, String>) -> Vec<u8> {
    let refusal = |error: String| Answer::<&Reply> {
        ok: false,
        result: None,
        error: Some(error),
    };
    let encoded = match answer {
        Ok(reply) => line(&Versioned {
            protocol: PROTOCOL_VERSION,
            body: &Answer {
                ok: true,
                result: Some(reply),
                error: None,
            },
        }),
        Err(error) => line(&Versioned {
            protocol: PROTOCOL_VERSION,
            body: &refusal(error.clone()),
        }),
    };
    // A status that cannot be JSON (a path that is not UTF-8) is answered
    // with why.
    encoded.unwrap_or_else(|err| {
        line(&Versioned {
            protocol: PROTOCOL_VERSION,
            body: &refusal(err.to_string()),
        })
        .expect("a refusal is JSON")
    })
}

/// The manager's answer to `request`, from its line: the reply, or why the
/// manager refused or failed the request.
pub fn decode_answer(
    request: &Request,
    line: &[u8],
) -> Result<Result<Reply, String>, ProtocolError> {
    let mut fields = json_object(line).map_err(ProtocolError::NotAnAnswer)?;
    let manager = take_version(&mut fields).map_err(ProtocolError::NotAnAnswer)?;
    if manager != Some(PROTOCOL_VERSION) {
        return Err(ProtocolError::AnswerOfAnotherVersion { manager });
    }
    let answer: Answer<Value> = serde_json::from_value(Value::Object(fields))
        .map_err(|err| ProtocolError::NotAnAnswer(err.to_string()))?;
    match answer {
        Answer {
            ok: true,
            result: Some(result),
            ..
        } => decode_result(request, result)
            .map(Ok)
            .map_err(|err| ProtocolError::NotAnAnswer(err.to_string())),
        Answer { error, .. } => {
            Ok(Err(error.unwrap_or_else(|| {
                "the manager failed without saying why".to_owned()
            })))
        }
    }
}

/// The reply in a result: which one follows from the request.
fn decode_result(request: &Request, result: Value) -> Result<Reply, serde_json::Error> {
    Ok(match request {
        Request::Reload { .. } => Reply::Reloaded(serde_json::from_value(result)?),
        _ => Reply::Status(serde_json::from_value(result)?),
    })
}

/// `value` as one JSON line.
fn line(value: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// The fields of the JSON object in `line`.
fn json_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(line) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(format!("expected a JSON object, not {other}")),
        Err(err) => Err(err.to_string()),
    }
}

/// Takes the version out of the fields: `None` if they have none.
fn take_version(fields: &mut Map<String, Value>) -> Result<Option<u64>, String> {
    let Some(version) = fields.remove(VERSION_FIELD) else {
        return Ok(None);
    };
    version
        .as_u64()
        .map(Some)
        .ok_or_else(|| format!("`{VERSION_FIELD}` is {version}, not a version number"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::lab::status::{ComponentStatus, ManagerStatus, State};

    fn lab_status() -> LabStatus {
        LabStatus {
            manager: ManagerStatus {
                pid: 7,
                data_dir: PathBuf::from("/lab"),
                started: "2026-12-01T12:12:28.102Z".to_owned(),
                uptime_s: 5.21,
                starting: false,
                log: PathBuf::from("/lab/logs/manager.log"),
                monitor: None,
                monitor_error: None,
            },
            components: vec![ComponentStatus {
                name: "lockable".to_owned(),
                kind: Kind::Daemon,
                status: State::Running,
                pid: Some(8),
                uptime_s: Some(1.31),
                restarts: 0,
                address: Some("localhost:33855".to_owned()),
                last_error: None,
                autolaunch: true,
                log: PathBuf::from("/lab/logs/daemon-lockable.log"),
            }],
            services: Vec::new(),
        }
    }

    fn daemon(name: &str) -> ComponentId {
        ComponentId {
            kind: Kind::Daemon,
            name: name.to_owned(),
        }
    }

    fn every_request() -> Vec<Request> {
        vec![
            Request::Status {},
            Request::WaitStarted {},
            Request::Down { timeout_s: 10.0 },
            Request::Start {
                kind: Kind::Daemon,
                name: "lockable".to_owned(),
            },
            Request::Stop {
                kind: Kind::Nameserver,
                name: "production".to_owned(),
                timeout_s: 0.5,
            },
            Request::Restart {
                kind: Kind::Daemon,
                name: "lockable".to_owned(),
                timeout_s: 2.0,
            },
            Request::Reload { timeout_s: 10.0 },
        ]
    }

    #[test]
    fn every_request_arrives_as_sent_with_the_version_in_front() {
        for request in every_request() {
            let line = encode_request(&request);
            assert!(
                line.starts_with(b"{\"protocol\":1,\"command\":"),
                "{line:?}"
            );
            assert!(line.ends_with(b"}\n"));
            assert_eq!(decode_request(&line).expect("decodes"), request);
        }
    }

    #[test]
    fn a_request_without_a_version_is_protocol_1s() {
        assert_eq!(
            decode_request(br#"{"command": "status"}"#).expect("decodes"),
            Request::Status {}
        );
        assert_eq!(
            decode_request(br#"{"command": "reload", "timeout_s": 10}"#).expect("decodes"),
            Request::Reload { timeout_s: 10.0 }
        );
    }

    #[test]
    fn a_request_of_another_version_is_refused_before_its_fields_are_read() {
        let error = decode_request(br#"{"protocol": 2, "command": "format_disk"}"#)
            .expect_err("another version");
        assert!(
            matches!(error, ProtocolError::RequestOfAnotherVersion { client: 2 }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the client speaks control protocol 2, this manager speaks 1"
        );
        let error = decode_request(br#"{"protocol": "one", "command": "status"}"#)
            .expect_err("not a version");
        assert!(
            error
                .to_string()
                .starts_with("not a request: `protocol` is "),
            "{error}"
        );
    }

    #[test]
    fn what_is_not_a_request_says_so() {
        for garbage in [
            &b"hello"[..],
            b"[1, 2]",
            br#"{"command": "format_disk"}"#,
            br#"{"command": "down"}"#,
            br#"{"command": "status", "extra": 1}"#,
            &[0xff, 0xfe][..],
        ] {
            let error = decode_request(garbage).expect_err("garbage");
            assert!(
                error.to_string().starts_with("not a request: "),
                "{garbage:?}: {error}"
            );
        }
    }

    #[test]
    fn each_reply_arrives_as_the_reply_to_its_request() {
        let status = Reply::Status(lab_status());
        for request in every_request()
            .into_iter()
            .filter(|r| !matches!(r, Request::Reload { .. }))
        {
            let line = encode_answer(&Ok(status.clone()));
            assert!(line.starts_with(b"{\"protocol\":1,\"ok\":true,\"result\":{"));
            let reply = decode_answer(&request, &line)
                .expect("an answer")
                .expect("ok");
            assert_eq!(reply.into_status().components[0].name, "lockable");
        }
        let report = ReloadReport {
            restarted: vec![daemon("lockable")],
            started: Vec::new(),
            stopped: vec![daemon("old")],
            updated: Vec::new(),
            no_longer_autolaunched: Vec::new(),
            monitor: Some("off".to_owned()),
            errors: vec!["daemon x: no".to_owned()],
            status: lab_status(),
        };
        let line = encode_answer(&Ok(Reply::Reloaded(report)));
        let report = decode_answer(&Request::Reload { timeout_s: 1.0 }, &line)
            .expect("an answer")
            .expect("ok")
            .into_reload_report()
            .expect("a reload report");
        assert_eq!(report.restarted, [daemon("lockable")]);
        assert_eq!(report.stopped, [daemon("old")]);
        assert_eq!(report.monitor.as_deref(), Some("off"));
        assert_eq!(report.errors, ["daemon x: no"]);
        assert_eq!(report.status.manager.pid, 7);
    }

    #[test]
    fn a_reload_report_lists_components_by_kind_and_name() {
        let report = ReloadReport {
            restarted: vec![daemon("lockable")],
            started: Vec::new(),
            stopped: Vec::new(),
            updated: Vec::new(),
            no_longer_autolaunched: Vec::new(),
            monitor: None,
            errors: Vec::new(),
            status: lab_status(),
        };
        let value = serde_json::to_value(&report).expect("JSON");
        assert_eq!(
            value["restarted"],
            serde_json::json!([{"kind": "daemon", "name": "lockable"}])
        );
        assert_eq!(value["monitor"], Value::Null);
    }

    #[test]
    fn a_refusal_arrives_with_its_reason() {
        let line = encode_answer(&Err("the lab is shutting down".to_owned()));
        assert_eq!(
            line,
            b"{\"protocol\":1,\"ok\":false,\"error\":\"the lab is shutting down\"}\n"
        );
        let refused = decode_answer(&Request::Status {}, &line).expect("an answer");
        assert_eq!(refused.expect_err("refused"), "the lab is shutting down");
        let silent = decode_answer(&Request::Status {}, br#"{"protocol": 1, "ok": false}"#)
            .expect("an answer");
        assert_eq!(
            silent.expect_err("refused"),
            "the manager failed without saying why"
        );
    }

    #[test]
    fn an_answer_of_another_version_or_none_is_refused_before_its_fields_are_read() {
        let newer = decode_answer(&Request::Status {}, br#"{"protocol": 2, "ok": true}"#)
            .expect_err("another version");
        assert_eq!(
            newer.to_string(),
            "the manager speaks control protocol 2, this pyrolab-host speaks 1"
        );
        // What a manager of a build before versions answers a versioned
        // request.
        let older = decode_answer(
            &Request::Status {},
            br#"{"ok": false, "error": "bad request: not a request: unknown field `protocol`"}"#,
        )
        .expect_err("from before versions");
        assert!(
            matches!(
                older,
                ProtocolError::AnswerOfAnotherVersion { manager: None }
            ),
            "{older:?}"
        );
        assert_eq!(
            older.to_string(),
            "the manager speaks a control protocol from before versions, this pyrolab-host speaks 1"
        );
    }

    #[test]
    fn a_status_that_cannot_be_json_is_answered_with_why() {
        use std::os::unix::ffi::OsStrExt;
        let mut status = lab_status();
        status.manager.data_dir = PathBuf::from(std::ffi::OsStr::from_bytes(b"/lab\xff"));
        let line = encode_answer(&Ok(Reply::Status(status)));
        let refused = decode_answer(&Request::Status {}, &line).expect("an answer");
        assert!(
            refused.expect_err("refused").contains("UTF-8"),
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
}
