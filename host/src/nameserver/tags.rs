//! The metadata tags registrations carry, written by daemons and read by
//! `nslist`, the monitor and anyone listing a name server.
//!
//! A pyrolab-host daemon registers each service with
//! `pyrolab:service`, `class:MODULE.CLASS`, `pyrolab:api:VERSION` and, when
//! configured, `description:TEXT`; itself with `pyrolab:daemon` and
//! `description:daemon for ...`.
//!
//! PyroLab 0.5 registers a service with its description as the only tag
//! (`{"Library catalog system"}`) and a daemon with `{"Daemon for a, b"}`;
//! other Pyro5 programs put whatever they like. Such metadata is read the
//! way PyroLab's own `nslist` shows it: the tags, sorted, joined by `": "`.

use std::collections::BTreeSet;

/// Marks a registration as a pyrolab-host service.
pub const SERVICE: &str = "pyrolab:service";
/// Marks a registration as a pyrolab-host daemon.
pub const DAEMON: &str = "pyrolab:daemon";
/// Prefix of the plugin-api version the service's host was built with
/// (`pyrolab:api:0.1.1`).
pub const PLUGIN_API: &str = "pyrolab:api:";
/// Prefix of the driver's `module.classname`.
pub const CLASS: &str = "class:";
/// Prefix of the configured description.
pub const DESCRIPTION: &str = "description:";
/// Prefix of the identity that registered a name (`pyrolab:owner:lab`),
/// which the name server sets itself: a client's own tags with this
/// prefix are dropped.
pub const OWNER: &str = "pyrolab:owner:";
/// The tag Pyro5's name server registers itself with.
pub const PYRO5_NAMESERVER: &str = "class:Pyro5.nameserver.NameServer";
/// How PyroLab 0.5's descriptions of its daemons begin.
const PYROLAB_DAEMON_PREFIX: &str = "Daemon for ";

/// The tags of a service of ours.
pub fn for_service(
    module: &str,
    classname: &str,
    plugin_api: &str,
    description: &str,
) -> BTreeSet<String> {
    let mut tags = BTreeSet::from([
        SERVICE.to_owned(),
        format!("{CLASS}{module}.{classname}"),
        format!("{PLUGIN_API}{plugin_api}"),
    ]);
    if !description.is_empty() {
        tags.insert(format!("{DESCRIPTION}{description}"));
    }
    tags
}

/// Who registered a name, by its tags (`None`: a client without a
/// certificate, or a name server without TLS).
pub fn owner(tags: &BTreeSet<String>) -> Option<&str> {
    tags.iter().find_map(|tag| tag.strip_prefix(OWNER))
}

/// `tags` as the name server keeps them for a registration by `owner`:
/// without any owner tag the client sent, with the true one.
pub fn owned_by(mut tags: BTreeSet<String>, owner: Option<&str>) -> BTreeSet<String> {
    tags.retain(|tag| !tag.starts_with(OWNER));
    if let Some(owner) = owner {
        tags.insert(format!("{OWNER}{owner}"));
    }
    tags
}

/// The tags of a daemon of ours serving `services`.
pub fn for_daemon(services: &[&str]) -> BTreeSet<String> {
    BTreeSet::from([
        DAEMON.to_owned(),
        format!("{DESCRIPTION}daemon for {}", services.join(", ")),
    ])
}

/// What a registration's metadata says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Described {
    /// A human description (empty if none).
    pub description: String,
    /// The driver's `module.classname`, for pyrolab-host services.
    pub class: Option<String>,
    /// The plugin-api version of the service's host, for pyrolab-host
    /// services.
    pub plugin_api: Option<String>,
    /// Whether the registration is a daemon rather than a service (ours,
    /// or PyroLab's self-registered daemons).
    pub daemon: bool,
}

/// Reads a registration's metadata, ours or PyroLab's.
pub fn describe(tags: &BTreeSet<String>) -> Described {
    let prefixed = |prefix: &str| {
        tags.iter()
            .find_map(|t| t.strip_prefix(prefix))
            .map(str::to_owned)
    };
    if tags.contains(SERVICE) || tags.contains(DAEMON) {
        return Described {
            description: prefixed(DESCRIPTION).unwrap_or_default(),
            class: prefixed(CLASS),
            plugin_api: prefixed(PLUGIN_API),
            daemon: tags.contains(DAEMON),
        };
    }
    let free: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| *t != PYRO5_NAMESERVER)
        .collect();
    Described {
        // Someone else's program may follow our convention.
        description: prefixed(DESCRIPTION).unwrap_or_else(|| free.join(": ")),
        class: None,
        plugin_api: None,
        daemon: free.iter().any(|t| t.starts_with(PYROLAB_DAEMON_PREFIX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tags: &[&str]) -> BTreeSet<String> {
        tags.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn our_tags_read_back() {
        let tags = for_service("libservice", "LibraryCatalog", "0.1.1", "Library catalog");
        assert_eq!(
            describe(&tags),
            Described {
                description: "Library catalog".into(),
                class: Some("libservice.LibraryCatalog".into()),
                plugin_api: Some("0.1.1".into()),
                daemon: false,
            }
        );
        let daemon = describe(&for_daemon(&["a", "b"]));
        assert!(daemon.daemon);
        assert_eq!(daemon.description, "daemon for a, b");
    }

    #[test]
    fn pyrolab_metadata_is_its_description() {
        let service = describe(&set(&["Library catalog system"]));
        assert_eq!(service.description, "Library catalog system");
        assert!(!service.daemon && service.class.is_none());
        // A description with a colon is still a description.
        assert_eq!(
            describe(&set(&["Rotational motion: stage 2"])).description,
            "Rotational motion: stage 2"
        );
        assert_eq!(describe(&set(&["b", "a"])).description, "a: b");
        assert!(describe(&set(&["Daemon for library"])).daemon);
        assert_eq!(
            describe(&set(&["description:ours", "other"])).description,
            "ours"
        );
        assert_eq!(describe(&set(&[PYRO5_NAMESERVER])).description, "");
        assert_eq!(describe(&BTreeSet::new()), Described::default());
    }
}
