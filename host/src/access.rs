//! Who may do what: access rules by identity (a TLS client certificate's
//! subject name), in one place for daemons, name servers and the monitor.
//!
//! A [`Rule`] lists identities; `*` is anyone, with or without a
//! certificate. Every right defaults to `*`, so a lab without rules
//! behaves as before; a lab with TLS narrows them (docs/security.md).

use serde::Serialize;

/// The identities a right is given to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Rule(Vec<String>);

/// Anyone, with or without a certificate.
pub const ANYONE: &str = "*";

impl Rule {
    /// Everyone (the default of every right).
    pub fn anyone() -> Rule {
        Rule(vec![ANYONE.to_owned()])
    }

    /// No one.
    pub fn no_one() -> Rule {
        Rule(Vec::new())
    }

    /// The identities `names` (`*` among them: anyone).
    pub fn of(names: Vec<String>) -> Rule {
        Rule(names)
    }

    /// Whether a caller with `identity` (`None`: no certificate) has it.
    pub fn allows(&self, identity: Option<&str>) -> bool {
        self.0
            .iter()
            .any(|name| name == ANYONE || Some(name.as_str()) == identity)
    }
}

/// What may be done with a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceRights {
    /// Call its methods (and read its properties).
    pub call: Rule,
    /// Lock and unlock it (on a `LockableDaemon`).
    pub lock: Rule,
    /// Release another client's lock on it (`Pyro.Daemon.release`).
    pub force_release: Rule,
}

impl Default for ServiceRights {
    fn default() -> Self {
        ServiceRights {
            call: Rule::anyone(),
            lock: Rule::anyone(),
            force_release: Rule::anyone(),
        }
    }
}

/// What may be done with a name server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NameServerRights {
    /// Register names (and replace one's own).
    pub register: Rule,
    /// Remove names (one's own).
    pub remove: Rule,
    /// Replace or remove names another identity registered.
    pub manage: Rule,
}

impl Default for NameServerRights {
    fn default() -> Self {
        NameServerRights {
            register: Rule::anyone(),
            remove: Rule::anyone(),
            manage: Rule::no_one(),
        }
    }
}

/// What may be done with the monitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MonitorRights {
    /// Read the components' logs.
    pub logs: Rule,
}

impl Default for MonitorRights {
    fn default() -> Self {
        MonitorRights {
            logs: Rule::anyone(),
        }
    }
}

/// Who makes a call: its certificate's identity and its address.
/// Who may use a host's management object (`manager:`): `read` its
/// status, configuration and logs; `act` (start, stop, restart its
/// components). Without TLS, only callers on the manager's own machine
/// (loopback) may act, whatever `act` says: a plain connection carries no
/// identity to check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManagerRights {
    pub read: Rule,
    pub act: Rule,
}

impl Default for ManagerRights {
    fn default() -> Self {
        ManagerRights {
            read: Rule::anyone(),
            act: Rule::no_one(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The certificate's subject name; `None` without one.
    pub identity: Option<String>,
    /// Its TCP address (`None` on a Unix socket).
    pub address: Option<String>,
}

impl Caller {
    /// The caller as refusals and logs name it.
    pub fn describe(&self) -> String {
        match &self.identity {
            Some(identity) => format!("{identity:?}"),
            None => "a client without a certificate".to_owned(),
        }
    }

    /// Whether the caller has `rule`'s right.
    pub fn has(&self, rule: &Rule) -> bool {
        rule.allows(self.identity.as_deref())
    }

    /// Whether the caller connected from this machine (a loopback
    /// address, or a Unix socket).
    pub fn is_local(&self) -> bool {
        match &self.address {
            None => true,
            Some(address) => address
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|address| address.ip().is_loopback()),
        }
    }

    /// Checks `rule` for `action` (`call sample.echo`, made only on a
    /// refusal); a refusal is logged with the identity and address, and
    /// its message returned.
    pub fn check(
        &self,
        rule: &Rule,
        right: &str,
        action: impl FnOnce() -> String,
    ) -> Result<(), String> {
        if self.has(rule) {
            return Ok(());
        }
        self.refuse(right, &action())
    }

    /// Refuses `action` for lack of `right`: logged with the identity and
    /// address; the message returned.
    pub fn refuse(&self, right: &str, action: &str) -> Result<(), String> {
        let message = format!(
            "access denied: {} may not {action} (it lacks the `{right}` right)",
            self.describe()
        );
        tracing::warn!(
            identity = self.identity.as_deref().unwrap_or("-"),
            peer = self.address.as_deref().unwrap_or("local"),
            "refused: {message}"
        );
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_allows_its_identities_and_a_star_allows_anyone() {
        let rule = Rule::of(vec!["alice".into(), "bob".into()]);
        assert!(rule.allows(Some("alice")));
        assert!(!rule.allows(Some("mallory")));
        assert!(!rule.allows(None), "no certificate: no identity");
        assert!(Rule::anyone().allows(None));
        assert!(!Rule::no_one().allows(Some("alice")));
    }

    #[test]
    fn a_refusal_names_the_identity_the_action_and_the_right() {
        let caller = Caller {
            identity: Some("mallory".into()),
            address: Some("10.0.0.9:5555".into()),
        };
        let refused = caller
            .check(&Rule::no_one(), "lock", || "lock service laser".into())
            .unwrap_err();
        assert_eq!(
            refused,
            "access denied: \"mallory\" may not lock service laser (it lacks the `lock` right)"
        );
    }
}
