//! The configuration rules, each driven by real YAML text.

use std::path::{Path, PathBuf};

use pyrolab_plugin_api::Value;

use super::schema::{DaemonClass, InstanceMode, ServerType, Storage};
use super::*;

const SEED_EXAMPLE: &str = include_str!("../../../config/library-catalog.yaml");
const SEED_NAMESERVERS: &str = include_str!("../../../config/nameservers.yaml");
const COMMENTED_EXAMPLE: &str = include_str!("../../../config/example.yaml");

fn load(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    load_str(text, Path::new("lab.yaml"), Path::new("/labs/here"), false)
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(loaded) => panic!("expected errors, got a valid config: {:?}", loaded.config),
        Err(diagnostics) => diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    load(text)
        .unwrap_or_else(|d| panic!("expected a valid config: {d:#?}"))
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A minimal valid lab around one extra YAML snippet.
const BASE: &str = "\
nameservers:
  ns: {}
daemons:
  d:
    nameservers: [ns]
services:
  s:
    module: sample
    classname: SampleService
    daemon: d
";

#[test]
fn the_seed_example_validates_unchanged_with_its_values() {
    let config = load(SEED_EXAMPLE).unwrap().config;
    let ns = config.nameservers.get("production").unwrap();
    assert_eq!(
        (ns.host.as_str(), ns.ns_port, ns.storage),
        ("localhost", 9090, Storage::Memory)
    );
    let daemon = config.daemons.get("lockable").unwrap();
    assert_eq!(daemon.classname, DaemonClass::LockableDaemon);
    assert_eq!(daemon.servertype, ServerType::Thread);
    let library = config.services.get("library").unwrap();
    assert_eq!(
        (library.module.as_str(), library.classname.as_str()),
        ("libservice", "LibraryCatalog")
    );
    assert_eq!(library.instancemode, InstanceMode::Single);
    assert_eq!(
        library.parameters.get("catalog").unwrap().get("The Hobbit"),
        Some(&Value::Int(3))
    );
    assert_eq!(config.autolaunch.daemons, ["lockable"]);
}

#[test]
fn the_seed_nameserver_example_validates_unchanged() {
    let loaded = load(SEED_NAMESERVERS).unwrap();
    let production = loaded.config.nameservers.get("production").unwrap();
    assert_eq!(production.storage, Storage::Sql);
    assert_eq!(production.ns_autoclean, 15.0);
    // `default` and `development` both want localhost:9090; as neither is
    // autolaunched that is a warning, not an error.
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("both use localhost:9090")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn the_commented_example_validates_and_shows_every_default() {
    let loaded = load(COMMENTED_EXAMPLE).unwrap_or_else(|d| panic!("{d:#?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    let daemon = config.daemons.values_for_test()[0];
    let defaults = schema::DaemonConfig::default();
    assert_eq!(daemon.threadpool_size, defaults.threadpool_size);
    assert_eq!(daemon.max_message_size, defaults.max_message_size);
}

#[test]
fn defaults_fill_what_a_file_leaves_out() {
    let config = load(BASE).unwrap().config;
    let ns = config.nameservers.get("ns").unwrap();
    assert_eq!(*ns, schema::NameServerConfig::default());
    let service = config.services.get("s").unwrap();
    assert_eq!(service.instancemode, InstanceMode::Session);
    assert_eq!(service.description, "");
    assert_eq!(service.parameters, Value::Null);
    assert_eq!(config.version, "1.0");
}

#[test]
fn a_mistyped_choice_names_file_line_column_path_and_both_values() {
    let text = BASE.replace(
        "    daemon: d\n",
        "    daemon: d\n    instancemode: singel\n",
    );
    assert_eq!(
        errors(&text),
        [
            "lab.yaml:11:19: error: services.s.instancemode: expected one of single, session, percall, found \"singel\" (did you mean \"single\"?)"
        ]
    );
}

#[test]
fn every_problem_in_a_file_is_reported_in_one_run() {
    let text = "\
nameservers:
  ns:
    ns_port: -1
    broadcast: maybe
daemons:
  d:
    port: 65536
    servertype: threaded
services:
  s:
    module: ''
    classname: X
    daemon: e
";
    let found = errors(text);
    assert_eq!(
        found,
        [
            "lab.yaml:3:14: error: nameservers.ns.ns_port: expected a port number from 0 to 65535, found -1",
            "lab.yaml:4:16: error: nameservers.ns.broadcast: expected true or false, found \"maybe\"",
            "lab.yaml:7:11: error: daemons.d.port: expected a port number from 0 to 65535, found 65536",
            "lab.yaml:8:17: error: daemons.d.servertype: expected one of thread, multiplex, found \"threaded\" (did you mean \"thread\"?)",
            "lab.yaml:11:13: error: services.s.module: expected a name, found an empty string",
            "lab.yaml:13:13: error: services.s.daemon: no daemon named \"e\" (defined: d)",
        ]
    );
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let text = BASE.replace(
        "  ns: {}\n",
        "  ns:\n    host: [a, b]\n    ns_port: '9090'\n    ns_autoclean: soon\n",
    );
    let found = errors(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].ends_with("nameservers.ns.host: expected a string, found a list"),
        "{}",
        found[0]
    );
    assert!(
        found[1].ends_with("expected a port number from 0 to 65535, found the string \"9090\" (a number in quotes is a string: remove the quotes)"),
        "{}",
        found[1]
    );
    assert!(
        found[2].contains(
            "ns_autoclean: expected 0 (off) or a period of 3 to 86400 seconds (a day), found \"soon\""
        ),
        "{}",
        found[2]
    );
}

#[test]
fn missing_required_service_keys_are_errors_at_the_service() {
    let text = BASE.replace("    module: sample\n", "");
    assert_eq!(
        errors(&text),
        ["lab.yaml:7:3: error: services.s: missing required key `module`"]
    );
}

#[test]
fn duplicate_keys_are_errors_naming_the_first() {
    let text = format!("{BASE}  s:\n    module: other\n");
    assert_eq!(
        errors(&text),
        ["lab.yaml:11:3: error: duplicate key `s` (first given at line 7, column 3)"]
    );
}

#[test]
fn unknown_keys_warn_by_default_and_fail_when_strict() {
    let text = BASE.replace("  ns: {}\n", "  ns:\n    ns_prot: 9091\n");
    assert_eq!(
        warnings(&text),
        [
            "lab.yaml:3:5: warning: nameservers.ns.ns_prot: unknown key `ns_prot`; did you mean `ns_port`?"
        ]
    );
    let strict = load_str(&text, Path::new("lab.yaml"), Path::new("/"), true).unwrap_err();
    assert_eq!(
        strict[0].to_string(),
        "lab.yaml:3:5: error: nameservers.ns.ns_prot: unknown key `ns_prot`; did you mean `ns_port`?"
    );
    let strict_in_file = format!("strict: true\n{text}");
    assert_eq!(errors(&strict_in_file).len(), 1);
}

#[test]
fn references_to_missing_entries_are_errors_with_suggestions() {
    let text = format!(
        "{}autolaunch:\n  nameservers: [nss]\n  daemons: [d, x]\n",
        BASE.replace(
            "    daemon: d\n",
            "    daemon: dd\n    nameservers: [ns, other]\n"
        )
    );
    assert_eq!(
        errors(&text),
        [
            "lab.yaml:10:13: error: services.s.daemon: no daemon named \"dd\"; did you mean \"d\"?",
            "lab.yaml:11:23: error: services.s.nameservers[1]: no name server named \"other\" (defined: ns)",
            "lab.yaml:13:17: error: autolaunch.nameservers[0]: no name server named \"nss\"; did you mean \"ns\"?",
            "lab.yaml:14:16: error: autolaunch.daemons[1]: no daemon named \"x\" (defined: d)",
        ]
    );
}

#[test]
fn one_name_registered_twice_on_a_name_server_is_an_error() {
    let text = BASE
        .replace("  s:\n", "  d:\n")
        .replace("    daemon: d\n", "    daemon: d\n    nameservers: [ns]\n");
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains(
            "services.d: \"d\" is registered twice on name server \"ns\" (also by daemons.d)"
        ),
        "{}",
        found[0]
    );
}

#[test]
fn fixed_ports_that_clash_are_errors_when_launched_together_warnings_otherwise() {
    let text = "\
nameservers:
  ns: {ns_port: 9100}
daemons:
  d: {port: 9100, host: 127.0.0.1}
services:
  s: {module: m, classname: C, daemon: d}
";
    let launched = format!("{text}autolaunch:\n  nameservers: [ns]\n  daemons: [d]\n");
    assert_eq!(
        errors(&launched),
        [
            "lab.yaml:4:13: error: daemons.d: name server \"ns\" and daemon \"d\" both use 127.0.0.1:9100"
        ]
    );
    assert_eq!(
        warnings(text),
        [
            "lab.yaml:4:13: warning: daemons.d: name server \"ns\" and daemon \"d\" both use 127.0.0.1:9100; they cannot run at the same time"
        ]
    );
}

#[test]
fn autoclean_must_be_off_or_at_least_three_seconds() {
    for (value, ok) in [
        ("0.0", true),
        ("0", true),
        ("3", true),
        ("15.5", true),
        ("2.9", false),
        ("-1", false),
        (".inf", false),
        ("86400", true),
        ("1e99", false),
    ] {
        let text = BASE.replace("  ns: {}\n", &format!("  ns: {{ns_autoclean: {value}}}\n"));
        assert_eq!(load(&text).is_ok(), ok, "ns_autoclean: {value}");
    }
}

#[test]
fn connection_timeouts_are_off_or_a_tenth_of_a_second_to_a_day() {
    for (value, ok) in [
        ("0", true),
        ("0.1", true),
        ("5", true),
        ("86400", true),
        ("0.05", false),
        ("-1", false),
        (".nan", false),
        ("86401", false),
        ("soon", false),
    ] {
        for key in ["handshake_timeout", "idle_timeout"] {
            let daemon = BASE.replace(
                "    nameservers: [ns]\n",
                &format!("    nameservers: [ns]\n    {key}: {value}\n"),
            );
            assert_eq!(load(&daemon).is_ok(), ok, "daemon {key}: {value}");
            let ns = BASE.replace("  ns: {}\n", &format!("  ns: {{{key}: {value}}}\n"));
            assert_eq!(load(&ns).is_ok(), ok, "name server {key}: {value}");
        }
    }
    let ns = BASE.replace("  ns: {}\n", "  ns: {max_connections: 0}\n");
    assert_eq!(
        errors(&ns),
        [
            "lab.yaml:2:25: error: nameservers.ns.max_connections: expected a whole number of at least 1, found 0"
        ]
    );
}

#[test]
fn connection_limits_default_to_five_seconds_for_a_handshake_and_no_idle_limit() {
    let config = load(BASE).unwrap().config;
    let ns = config.nameservers.get("ns").unwrap();
    assert_eq!(
        (ns.max_connections, ns.handshake_timeout, ns.idle_timeout),
        (1024, 5.0, 0.0)
    );
    let daemon = config.daemons.get("d").unwrap();
    assert_eq!(
        (
            daemon.max_connections,
            daemon.handshake_timeout,
            daemon.idle_timeout
        ),
        (256, 5.0, 0.0)
    );
}

#[test]
fn message_memory_must_hold_the_largest_message() {
    let daemon = |settings: &str| {
        BASE.replace(
            "    nameservers: [ns]\n",
            &format!("    nameservers: [ns]\n{settings}"),
        )
    };
    assert!(
        load(&daemon(
            "    max_message_memory: 1048576\n    max_message_size: 1048576\n"
        ))
        .is_ok()
    );
    let found = errors(&daemon(
        "    max_message_size: 4096\n    max_message_memory: 2048\n",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("daemons.d.max_message_memory: max_message_memory (2048) is smaller than max_message_size (4096)"),
        "{found:?}"
    );
    // Raising max_message_size past the default budget says so too.
    let found = errors(&daemon("    max_message_size: 4294967296\n"));
    assert!(
        found[0].contains("smaller than max_message_size"),
        "{found:?}"
    );
}

#[test]
fn restart_is_always_on_failure_or_never_and_always_by_default() {
    use super::schema::RestartPolicy;
    let config = load(BASE).unwrap().config;
    assert_eq!(
        config.nameservers.get("ns").unwrap().restart,
        RestartPolicy::Always
    );
    assert_eq!(
        config.daemons.get("d").unwrap().restart,
        RestartPolicy::Always
    );
    for (value, policy) in [
        ("always", RestartPolicy::Always),
        ("on-failure", RestartPolicy::OnFailure),
        ("never", RestartPolicy::Never),
    ] {
        let text = BASE.replace("  ns: {}\n", &format!("  ns: {{restart: {value}}}\n"));
        assert_eq!(
            load(&text)
                .unwrap()
                .config
                .nameservers
                .get("ns")
                .unwrap()
                .restart,
            policy
        );
        let text = BASE.replace(
            "    nameservers: [ns]\n",
            &format!("    nameservers: [ns]\n    restart: {value}\n"),
        );
        assert_eq!(
            load(&text)
                .unwrap()
                .config
                .daemons
                .get("d")
                .unwrap()
                .restart,
            policy
        );
    }
    let text = BASE.replace(
        "    nameservers: [ns]\n",
        "    nameservers: [ns]\n    restart: sometimes\n",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("daemons.d.restart: expected one of always, on-failure, never"),
        "{errors:?}"
    );
}

#[test]
fn storage_accepts_both_spellings_and_a_path_suffix() {
    let text = BASE.replace("  ns: {}\n", "  ns: {storage_type: 'dbm:names.db'}\n");
    let ns_config = load(&text).unwrap().config;
    let ns = ns_config.nameservers.get("ns").unwrap();
    assert_eq!(ns.storage, Storage::Dbm);
    assert_eq!(
        ns.storage_file.as_deref(),
        Some(Path::new("/labs/here/names.db"))
    );
    let both = BASE.replace("  ns: {}\n", "  ns: {storage: sql, storage_type: sql}\n");
    assert!(errors(&both)[0].contains("give `storage` or `storage_type`, not both"));
}

#[test]
fn relative_paths_resolve_against_the_config_file_folder() {
    let text = format!("plugin_dirs: [drivers, /opt/plugins]\n{BASE}");
    let config = load(&text).unwrap().config;
    assert_eq!(
        config.plugin_dirs,
        [
            PathBuf::from("/labs/here/drivers"),
            PathBuf::from("/opt/plugins")
        ]
    );
}

#[test]
fn data_dir_resolves_against_the_config_file_folder_and_is_not_stored() {
    let config = load(&format!("data_dir: ../.pyrolab-host\n{BASE}"))
        .unwrap()
        .config;
    assert_eq!(
        config.data_dir.as_deref(),
        Some(Path::new("/labs/here/../.pyrolab-host"))
    );
    // The stored copy lives in the data directory: saying where that is
    // there would only go stale when the folder is moved.
    assert!(
        !to_yaml(&config).contains("data_dir"),
        "{}",
        to_yaml(&config)
    );
    assert_eq!(
        load(&format!("data_dir: null\n{BASE}"))
            .unwrap()
            .config
            .data_dir,
        None
    );
    assert_eq!(load(BASE).unwrap().config.data_dir, None);
}

#[test]
fn data_dir_is_read_ahead_of_the_full_check_relative_to_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let file = config.join("lab.yaml");
    std::fs::write(&file, format!("data_dir: ../.pyrolab-host\n{BASE}")).unwrap();
    let root = std::fs::canonicalize(folder.path()).unwrap();
    assert_eq!(data_dir_of(&file), Some(root.join(".pyrolab-host")));
    // Unusable or absent: the full check says why, when it runs.
    for text in [
        BASE.to_owned(),
        format!("data_dir: [a]\n{BASE}"),
        "data_dir: ~\n".into(),
    ] {
        std::fs::write(&file, text).unwrap();
        assert_eq!(data_dir_of(&file), None);
    }
    assert_eq!(data_dir_of(&config.join("missing.yaml")), None);
}

#[test]
fn data_dir_must_be_a_path_with_its_place_named() {
    let errors = errors(&format!("data_dir: [a, b]\n{BASE}"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("lab.yaml:1:11: error: data_dir: "),
        "{errors:?}"
    );
    let empty = self::errors(&format!("data_dir: ''\n{BASE}"));
    assert!(
        empty[0].starts_with("lab.yaml:1:11: error: data_dir: "),
        "{empty:?}"
    );
}

#[test]
fn data_dir_may_not_be_a_file_nor_hold_this_file_as_its_stored_copy() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("notes.txt"), "").unwrap();
    let text = format!("data_dir: notes.txt\n{BASE}");
    let diagnostics = load_str(&text, Path::new("lab.yaml"), folder.path(), false).unwrap_err();
    assert!(
        diagnostics[0]
            .to_string()
            .contains("notes.txt is not a directory"),
        "{diagnostics:?}"
    );

    // `config.yaml` with `data_dir: .`: storing it would replace it with
    // its expanded form, comments gone.
    let text = format!("data_dir: .\n{BASE}");
    let diagnostics = load_str(&text, Path::new("config.yaml"), folder.path(), false).unwrap_err();
    assert!(
        diagnostics[0].to_string().contains("over this very file"),
        "{diagnostics:?}"
    );
    // The same folder is fine for a file of another name.
    assert!(load_str(&text, Path::new("lab.yaml"), folder.path(), false).is_ok());
}

#[test]
fn environment_variables_are_never_expanded() {
    // SAFETY (of the test's intent): the variable is set for this process
    // only; the point is that the value read is the literal text.
    let text = BASE.replace(
        "    daemon: d\n",
        "    daemon: d\n    description: $HOME ${HOME} %HOME%\n",
    );
    let config = load(&text).unwrap().config;
    assert_eq!(
        config.services.get("s").unwrap().description,
        "$HOME ${HOME} %HOME%"
    );
}

#[test]
fn pyyaml_style_booleans_and_unquoted_versions_are_accepted() {
    let text = format!(
        "version: 1.0\n{}",
        BASE.replace("  ns: {}\n", "  ns: {broadcast: yes}\n")
    );
    let config = load(&text).unwrap().config;
    assert!(config.nameservers.get("ns").unwrap().broadcast);
    assert!(
        errors(&format!("version: 2.0\n{BASE}"))[0]
            .contains("expected version '1.0', found \"2.0\"")
    );
}

#[test]
fn parameters_keep_yaml_types() {
    let text = BASE.replace(
        "    daemon: d\n",
        "    daemon: d\n    parameters:\n      port: COM3\n      baud: 9600\n      gain: 1.5\n      enabled: true\n      label: '42'\n      channels: [1, 2]\n",
    );
    let config = load(&text).unwrap().config;
    let parameters = &config.services.get("s").unwrap().parameters;
    assert_eq!(parameters.get("port"), Some(&Value::from("COM3")));
    assert_eq!(parameters.get("baud"), Some(&Value::Int(9600)));
    assert_eq!(parameters.get("gain"), Some(&Value::Float(1.5)));
    assert_eq!(parameters.get("enabled"), Some(&Value::Bool(true)));
    assert_eq!(parameters.get("label"), Some(&Value::from("42")));
    assert_eq!(
        parameters.get("channels"),
        Some(&Value::List(vec![1.into(), 2.into()]))
    );
    let not_a_map = BASE.replace("    daemon: d\n", "    daemon: d\n    parameters: [1]\n");
    assert!(
        errors(&not_a_map)[0]
            .contains("expected a mapping of parameter names to values, found a list")
    );
}

#[test]
fn syntax_errors_and_empty_files_have_a_place() {
    let broken = errors("nameservers:\n  ns: {ns_port: 9090\n");
    assert_eq!(broken.len(), 1);
    assert!(broken[0].starts_with("lab.yaml:"), "{}", broken[0]);
    assert!(broken[0].contains("invalid YAML"), "{}", broken[0]);
    assert_eq!(
        errors("# nothing here\n"),
        [
            "lab.yaml:1:1: error: the file is empty: expected a launch configuration (version, nameservers, daemons, services, autolaunch)"
        ]
    );
    assert!(errors("- a\n- b\n")[0].contains("expected a mapping, found a list"));
}

#[test]
fn the_written_form_reads_back_to_the_same_configuration() {
    for text in [SEED_EXAMPLE, SEED_NAMESERVERS, COMMENTED_EXAMPLE] {
        let config = load(text).unwrap().config;
        let written = to_yaml(&config);
        let again = load(&written)
            .unwrap_or_else(|d| panic!("{d:#?}\n{written}"))
            .config;
        assert_eq!(again, config, "{written}");
    }
}

/// The "dumped" defaults shown in PyroLab's configuration documentation,
/// verbatim (including its placeholder file name).
#[test]
fn pyrolab_documentation_dumped_forms_validate_unchanged() {
    let nameservers = "\
nameservers:
    default:
        host: localhost
        broadcast: false
        ns_port: 9090
        ns_bchost: localhost
        ns_bcport: 9091
        ns_autoclean: 0.0
        storage_type: sql
        storage_filename: <pyrolab default data directory>
";
    let config = load(nameservers)
        .unwrap_or_else(|d| panic!("{d:#?}"))
        .config;
    let ns = config.nameservers.get("default").unwrap();
    assert_eq!(ns.storage, Storage::Sql);
    assert!(
        ns.storage_file
            .as_ref()
            .unwrap()
            .ends_with("<pyrolab default data directory>")
    );
    let daemons = "\
daemons:
    default:
        classname: Daemon
        host: localhost
        servertype: thread
";
    let loaded = load(daemons).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(
        loaded.config.daemons.get("default").unwrap().classname,
        DaemonClass::Daemon
    );
}

#[test]
fn all_is_a_reserved_name() {
    let text = BASE
        .replace("daemons:\n  d:\n", "daemons:\n  all:\n")
        .replace("daemon: d", "daemon: all");
    assert_eq!(
        errors(&text),
        [
            "lab.yaml:4:3: error: daemons.all: \"all\" is reserved (it means every one on the command line); choose another name"
        ]
    );
}

/// The seed document's `config.yaml`, character for character.
#[test]
fn the_seed_config_yaml_validates_verbatim() {
    let seed = "version: '1.0'

nameservers:
  production:
    host: localhost
    ns_port: 9090
    broadcast: false
    ns_bchost: null
    ns_bcport: 9091
    ns_autoclean: 0.0
    storage: memory

daemons:
  lockable:
    module: pyrolab.server
    classname: LockableDaemon
    host: localhost
    port: 0
    unixsocket: null
    nathost: null
    natport: 0
    servertype: thread
    nameservers:
    - production

services:
  library:
    module: libservice
    classname: LibraryCatalog
    description: Library catalog system
    instancemode: single
    daemon: lockable
    nameservers:
    - production

autolaunch:
  nameservers:
  - production
  daemons:
  - lockable
";
    let loaded = load(seed).unwrap_or_else(|d| panic!("{d:#?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.services.get("library").unwrap().parameters,
        Value::Null
    );
}

#[test]
fn storage_files_default_to_the_data_directory_named_after_the_name_server() {
    let data_dir = crate::data_dir::DataDir::new("/data");
    let text = "nameservers:\n  mem: {}\n  lite: {storage: sql}\n  kv: {storage: dbm, ns_port: 9092}\n  own: {storage: 'sql:/srv/ns.db', ns_port: 9093}\n";
    let config = load(text).unwrap().config;
    let path = |name: &str| {
        config
            .nameservers
            .get(name)
            .unwrap()
            .storage_path(name, &data_dir)
    };
    assert_eq!(path("mem"), None);
    assert_eq!(
        path("lite"),
        Some(PathBuf::from("/data/nameservers/lite.sqlite"))
    );
    assert_eq!(path("kv"), Some(PathBuf::from("/data/nameservers/kv.dbm")));
    assert_eq!(path("own"), Some(PathBuf::from("/srv/ns.db")));
}

#[test]
fn a_monitor_section_turns_the_monitor_on_with_defaults() {
    let on = load("version: '1.0'\nmonitor: {}\n").unwrap().config;
    assert_eq!(on.monitor, Some(super::schema::MonitorConfig::default()));
    let set = load("version: '1.0'\nmonitor: {host: 0.0.0.0, port: 9000, polling: 0.5}\n")
        .unwrap()
        .config;
    let monitor = set.monitor.expect("a monitor");
    assert_eq!(
        (monitor.host.as_str(), monitor.port, monitor.polling),
        ("0.0.0.0", 9000, 0.5)
    );
    assert_eq!(load("version: '1.0'\n").unwrap().config.monitor, None);
    let err = load("version: '1.0'\nmonitor: {polling: 0}\n").unwrap_err();
    assert!(format!("{err:?}").contains("monitor.polling"), "{err:?}");
    // Written out and read back, it stays on (or off).
    for config in [on, load("version: '1.0'\n").unwrap().config] {
        let text = super::to_yaml(&config);
        assert_eq!(
            load(&text).unwrap().config.monitor,
            config.monitor,
            "{text}"
        );
    }
}

/// A lab of `services` services spread over a daemon per ten, every daemon
/// on a fixed port and autolaunched: every kind of cross-entry check has
/// work to do.
pub(crate) fn large_lab(services: usize) -> String {
    let daemons = services.div_ceil(10);
    let mut text = String::from("version: '1.0'\nnameservers:\n  ns: {}\ndaemons:\n");
    for d in 0..daemons {
        text.push_str(&format!(
            "  d{d}: {{nameservers: [ns], host: 127.0.0.1, port: {}}}\n",
            20_000 + d % 40_000
        ));
    }
    text.push_str("services:\n");
    for s in 0..services {
        text.push_str(&format!(
            "  s{s}: {{module: sample, classname: SampleService, daemon: d{}, nameservers: [ns]}}\n",
            s % daemons
        ));
    }
    let names: Vec<String> = (0..daemons).map(|d| format!("d{d}")).collect();
    text.push_str(&format!("autolaunch:\n  daemons: [{}]\n", names.join(", ")));
    text
}

/// Huge configurations were slow: 40,000 entries took 11 s, as every key
/// and every registration was searched for among those before it. Ten
/// times the entries now take about ten times as long (a quadratic check
/// would take a hundred); the best of three runs each, so a slow moment of
/// the machine does not decide.
#[test]
fn validation_time_grows_linearly_with_the_entries() {
    let best_of_three = |text: &str| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                load(text).expect("the large lab is valid");
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let small = best_of_three(&large_lab(2_000));
    let large = best_of_three(&large_lab(20_000));
    let growth = large.as_secs_f64() / small.as_secs_f64();
    eprintln!("2,000 services: {small:?}; 20,000: {large:?} ({growth:.1}x)");
    assert!(
        growth < 20.0,
        "2,000 services validated in {small:?}, 20,000 in {large:?}: {growth:.0}x for 10x the entries"
    );
}

#[test]
fn components_inherit_the_labs_tls_and_may_set_their_own_or_none() {
    let text = "\
tls:
  ca: certs/ca.pem
  require_client_cert: false
nameservers:
  ns: {}
  plain: {tls: false}
daemons:
  d:
    nameservers: [ns]
    tls: {identity: lab-pc, require_client_cert: true}
services:
  s: {module: sample, classname: SampleService, daemon: d}
monitor: {}
";
    let config = load(text).unwrap().config;
    let lab = config.tls.clone().expect("the lab's tls");
    assert_eq!(
        lab.ca.as_deref(),
        Some(Path::new("/labs/here/certs/ca.pem"))
    );
    let ns = config.nameservers.get("ns").unwrap();
    assert_eq!(ns.tls.as_ref(), Some(&lab));
    assert_eq!(config.nameservers.get("plain").unwrap().tls, None);
    let daemon = config.daemons.get("d").unwrap().tls.clone().unwrap();
    assert_eq!(daemon.identity.as_deref(), Some("lab-pc"));
    assert!(daemon.require_client_cert);
    assert_eq!(daemon.ca, lab.ca, "unset keys come from the lab's");
    assert_eq!(config.monitor.unwrap().tls.as_ref(), Some(&lab));
    // The stored form keeps `plain` plain, though the lab has TLS.
    let config = load(text).unwrap().config;
    let again = load(&to_yaml(&config)).unwrap().config;
    assert_eq!(again, config, "{}", to_yaml(&config));
}

#[test]
fn tls_defaults_to_the_lab_cas_files_for_the_components_identity() {
    let config = load(&format!("tls: true\n{BASE}")).unwrap().config;
    let tls = config.daemons.get("d").unwrap().tls.clone().unwrap();
    assert!(
        tls.require_client_cert,
        "client certificates are required by default"
    );
    let data_dir = crate::data_dir::DataDir::new("/data");
    let files = tls.files("d", Some(&data_dir)).unwrap();
    assert_eq!(files.cert, Path::new("/data/tls/d.crt"));
    assert_eq!(files.key, Path::new("/data/tls/d.key"));
    assert_eq!(files.ca.as_deref(), Some(Path::new("/data/tls/ca.crt")));
    assert!(
        tls.files("d", None).is_err(),
        "no data directory to find them in"
    );
}

#[test]
fn a_mistyped_tls_key_is_named_with_a_suggestion() {
    let text =
        format!("{BASE}  t:\n    module: sample\n    classname: SampleService\n    daemon: d\n")
            .replace("  d:\n", "  d:\n    tls: {requre_client_cert: false}\n");
    let warnings = warnings(&text);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("daemons.d.tls.requre_client_cert")
                && w.contains("require_client_cert")),
        "{warnings:?}"
    );
    let errors = errors(&BASE.replace("  d:\n", "  d:\n    tls: maybe\n"));
    assert!(
        errors[0].contains("daemons.d.tls") && errors[0].contains("true or false"),
        "{errors:?}"
    );
}

#[test]
fn access_rules_default_to_anyone_and_components_narrow_the_labs() {
    use crate::access::Rule;
    let open = load(BASE).unwrap().config;
    let service = &open.services.get("s").unwrap().access;
    assert!(service.call.allows(None) && service.force_release.allows(None));
    assert!(
        !open
            .nameservers
            .get("ns")
            .unwrap()
            .access
            .manage
            .allows(Some("x"))
    );
    let text = BASE.replace("nameservers:\n  ns: {}", "access:\n  force_release: admin\n  logs: [admin]\nnameservers:\n  ns: {access: {manage: [admin]}}")
        + "    access: {call: [alice, bob], lock: [alice]}\nmonitor: {}\n";
    let config = load(&text)
        .unwrap_or_else(|d| panic!("{d:#?}\n{text}"))
        .config;
    let service = &config.services.get("s").unwrap().access;
    assert_eq!(service.call, Rule::of(vec!["alice".into(), "bob".into()]));
    assert_eq!(service.lock, Rule::of(vec!["alice".into()]));
    assert_eq!(
        service.force_release,
        Rule::of(vec!["admin".into()]),
        "the lab's"
    );
    let ns = &config.nameservers.get("ns").unwrap().access;
    assert_eq!(ns.manage, Rule::of(vec!["admin".into()]));
    assert_eq!(ns.register, Rule::anyone());
    assert_eq!(
        config.monitor.clone().unwrap().access.logs,
        Rule::of(vec!["admin".into()])
    );
    let again = load(&to_yaml(&config)).unwrap().config;
    assert_eq!(again, config, "{}", to_yaml(&config));
    let warnings = warnings(&BASE.replace("  s:\n", "  s:\n    access: {cal: [alice]}\n"));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("services.s.access.cal") && w.contains("`call`")),
        "{warnings:?}"
    );
}

#[test]
fn a_command_reads_its_program_folder_environment_and_readiness() {
    let text = format!(
        "{BASE}commands:
  legacy:
    run: [python3, ./laser.py, --port, 9100]
    env: {{PYRO_SERIALIZER: serpent, RETRIES: 3}}
    ready: {{port: 9100}}
    ready_timeout: 120
    restart: on-failure
  by_name:
    run: ./server
    cwd: drivers
    ready: {{name: lab.laser}}
  quiet:
    run: [sleep, '100']
autolaunch:
  commands: [legacy, by_name]
"
    );
    let config = load(&text).unwrap().config;
    let legacy = config.commands.get("legacy").unwrap();
    assert_eq!(legacy.run, ["python3", "./laser.py", "--port", "9100"]);
    assert_eq!(legacy.cwd, Path::new("/labs/here"), "the file's folder");
    assert_eq!(legacy.env["RETRIES"], "3");
    assert_eq!(
        legacy.ready,
        schema::Readiness::Port {
            host: "localhost".to_owned(),
            port: 9100
        }
    );
    assert_eq!(legacy.ready_timeout, 120.0);
    assert_eq!(legacy.restart, schema::RestartPolicy::OnFailure);
    let by_name = config.commands.get("by_name").unwrap();
    assert_eq!(by_name.run, ["./server"]);
    assert_eq!(by_name.cwd, Path::new("/labs/here/drivers"));
    assert_eq!(
        by_name.ready,
        schema::Readiness::Name {
            name: "lab.laser".to_owned(),
            nameserver: "ns".to_owned()
        },
        "the only name server"
    );
    let quiet = config.commands.get("quiet").unwrap();
    assert_eq!(quiet.ready, schema::Readiness::Started);
    assert_eq!(config.autolaunch.commands, ["legacy", "by_name"]);
    // The stored form reads back the same.
    let again = load(&emit::to_yaml(&config)).unwrap().config;
    assert_eq!(again, config);
}

#[test]
fn a_command_s_mistakes_name_line_and_key() {
    let problems = errors(&format!(
        "{BASE}commands:
  none: {{}}
  empty: {{run: []}}
  both: {{run: [x], ready: {{port: 1, name: y}}}}
  neither: {{run: [x], ready: {{}}}}
  slow: {{run: [x], ready_timeout: 600}}
  elsewhere: {{run: [x], ready: {{name: y, nameserver: nope}}}}
autolaunch:
  commands: [none, missing]
"
    ));
    let expect = [
        "lab.yaml:12:9: error: commands.none: a command needs `run`",
        "lab.yaml:13:16: error: commands.empty.run: expected the program and its arguments, found none",
        "lab.yaml:14:27: error: commands.both.ready: give `port` or `name`, not both",
        "lab.yaml:15:30: error: commands.neither.ready: expected `port`",
        "lab.yaml:16:35: error: commands.slow.ready_timeout: expected a number of seconds from 1 to 240, found 600",
        "lab.yaml:17:54: error: commands.elsewhere.ready.nameserver: no name server named \"nope\"",
        "lab.yaml:19:20: error: autolaunch.commands[1]: no command named \"missing\"",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "no {expected:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn a_command_ready_by_name_says_which_name_server_when_there_are_several() {
    let problems = errors(
        "nameservers: {a: {}, b: {ns_port: 9091}}
commands:
  c: {run: [x], ready: {name: lab.x}}
",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("commands.c.ready: say which name server `lab.x` is looked up on"),
        "{problems:#?}"
    );
}

#[test]
fn postgresql_storage_takes_its_database_as_a_url_in_either_key() {
    let url = "postgresql://lab@db.lab:5432/registry";
    for ns in [
        format!("  ns: {{storage: postgresql, storage_url: '{url}'}}\n"),
        format!("  ns: {{storage: '{url}'}}\n"),
    ] {
        let config = load(&BASE.replace("  ns: {}\n", &ns)).unwrap().config;
        let ns = config.nameservers.get("ns").unwrap();
        assert_eq!(ns.storage, Storage::Postgresql);
        assert_eq!(ns.storage_url.as_deref(), Some(url));
        assert_eq!(ns.storage_file, None);
        let again = load(&emit::to_yaml(&config)).unwrap().config;
        assert_eq!(again, config);
    }
    let missing = errors(&BASE.replace("  ns: {}\n", "  ns: {storage: postgresql}\n"));
    assert!(
        missing[0].contains("ns.storage: postgresql storage needs its database"),
        "{missing:?}"
    );
    let bad = errors(&BASE.replace(
        "  ns: {}\n",
        "  ns: {storage: postgresql, storage_url: 'postgresql://lab:secret@db:port/x'}\n",
    ));
    assert!(
        bad[0].contains("ns.storage_url: invalid PostgreSQL URL"),
        "{bad:?}"
    );
    assert!(!bad[0].contains("secret"), "{bad:?}");
    let ignored =
        warnings(&BASE.replace("  ns: {}\n", &format!("  ns: {{storage_url: '{url}'}}\n")));
    assert!(
        ignored
            .iter()
            .any(|w| w.contains("ignored: memory storage keeps no database")),
        "{ignored:?}"
    );
}
