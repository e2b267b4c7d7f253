//! Drivers built outside this workspace, the way third parties build them:
//! a new crate in a temporary directory depending on `plugin-api` by path,
//! compiled with cargo and dropped into a plugin directory.

use std::fs;
use std::path::Path;

use pyrolab_host::loader::{LoadError, Loader};
use pyrolab_plugin_api::{CallArgs, ErrorKind, Value, value};
use std::time::Duration;

use pyrolab_test_support::{
    Background, Sandbox, build_external_crate, copy_tree, python_with_pyro5, repo_root, run,
    run_host,
};

const THERMOMETER: &str = r#"
use pyrolab_plugin_api::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    location: String,
    #[serde(default)]
    offset: f64,
}

pub struct Thermometer {
    settings: Settings,
}

/// A thermometer that always reads room temperature.
#[service]
impl Thermometer {
    #[constructor]
    pub fn new(settings: Settings) -> Result<Self> {
        Ok(Thermometer { settings })
    }

    /// Reads the temperature in the given unit ("K" or "C").
    pub fn read(&self, #[default("K")] unit: String) -> Result<f64> {
        let kelvin = 293.15 + self.settings.offset;
        match unit.as_str() {
            "K" => Ok(kelvin),
            "C" => Ok(kelvin - 273.15),
            other => Err(DriverError::value(format!("unknown unit {other:?}"))),
        }
    }

    /// Where the probe is.
    #[getter]
    pub fn location(&self) -> String {
        self.settings.location.clone()
    }

    /// Returns what it was given.
    pub fn echo(&self, value: Value) -> Value {
        value
    }

    /// `count` bytes of samples.
    pub fn samples(&self, count: usize) -> Bytes {
        Bytes::from(vec![7; count])
    }

    /// `count` readings, as an item stream.
    pub fn readings(&self, count: u32) -> impl Iterator<Item = f64> + Send + 'static {
        (0..count).map(|i| 293.0 + f64::from(i) / 4.0)
    }
}

export_plugin!(Thermometer);
"#;

/// A driver crate's manifest: a cdylib with the given dependency lines.
fn driver_manifest(name: &str, plugin_api: &str, serde: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
{plugin_api}
{serde}
"#
    )
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn a_driver_crate_outside_the_workspace_builds_and_loads() {
    let sandbox = Sandbox::new();
    let crate_dir = sandbox.path().join("acme-thermometer");
    let plugin_api = repo_root().join("plugin-api").display().to_string();
    write(
        &crate_dir.join("Cargo.toml"),
        &driver_manifest(
            "acme-thermometer",
            &format!("pyrolab-plugin-api = {{ path = {plugin_api:?} }}"),
            "serde = { version = \"1\", features = [\"derive\"] }",
        ),
    );
    // A crate outside any workspace declares itself the root of its own.
    let manifest = crate_dir.join("Cargo.toml");
    let standalone = fs::read_to_string(&manifest).unwrap() + "\n[workspace]\n";
    fs::write(&manifest, standalone).unwrap();
    write(&crate_dir.join("src/lib.rs"), THERMOMETER);
    let built = build_external_crate(&crate_dir, "acme_thermometer");
    sandbox.install_file(&built);

    let list = run_host(sandbox.host().args(["plugins", "list", "--json"])).success();
    let plugin = &list.json()["plugins"][0];
    assert_eq!(plugin["module"], "acme_thermometer", "{list}");
    assert_eq!(plugin["classes"][0]["name"], "Thermometer", "{list}");

    // `-` and `_` are interchangeable in module names.
    let inspect =
        run_host(
            sandbox
                .host()
                .args(["plugins", "inspect", "acme-thermometer:Thermometer"]),
        )
        .success();
    assert!(
        inspect.stdout.contains("read(unit: str = 'K') -> float"),
        "{inspect}"
    );
    assert!(
        inspect.stdout.contains("location: str  [read-only]"),
        "{inspect}"
    );

    let call = run_host(sandbox.host().args([
        "plugins",
        "call",
        "acme-thermometer:Thermometer",
        "read",
        "--params",
        r#"{"location": "cleanroom"}"#,
    ]))
    .success();
    assert_eq!(call.stdout.trim(), "293.15");

    // A method returning `impl Iterator` streams its items.
    let call = run_host(sandbox.host().args([
        "plugins",
        "call",
        "acme-thermometer:Thermometer",
        "readings",
        "3",
        "--params",
        r#"{"location": "cleanroom"}"#,
    ]))
    .success();
    assert_eq!(call.stdout, "293.0\n293.25\n293.5\n");
}

/// A driver built against an earlier plugin-api (0.1.2, before item
/// streams and call contexts) loads and works: the host lends its large results as it did,
/// and never makes it a streaming call, which that library does not know.
/// (Built from this plugin-api recording 0.1.2: the host goes by the
/// version a library records, and the binary interface is unchanged, as
/// the layout check that passes here shows.) A method of it that returns
/// an iterator is, to this host, what it would be to a 0.1.2 host: a
/// `RuntimeError` saying so, and no stream left open.
#[test]
fn a_driver_built_against_the_previous_plugin_api_loads_and_works() {
    let sandbox = Sandbox::new();
    let installed = build_against_copied_plugin_api(&sandbox, "prev-api-driver", "0.1.2", |_| {});
    let library = Loader::new().load(&installed).unwrap();
    assert_eq!(library.descriptor().plugin_api_version, "0.1.2");
    let settings = Value::Map(vec![("location".into(), "lab".into())]);
    let thermometer = std::sync::Arc::new(library.create("Thermometer", &settings).unwrap());
    assert_eq!(
        thermometer
            .call("read", CallArgs::default().kwarg("unit", "C"))
            .unwrap(),
        Value::Float(293.15 - 273.15)
    );
    assert_eq!(
        thermometer.get_property("location").unwrap(),
        Value::from("lab")
    );
    let count = value::encode(&CallArgs::positional(vec![Value::Int(100_000)]).into_value());
    let samples = thermometer.call_raw_lending("samples", &count).unwrap();
    assert_eq!(samples.tail.len(), 100_000, "0.1.2 lends");
    let three = value::encode(&CallArgs::positional(vec![Value::Int(3)]).into_value());
    let err = match thermometer.call_streaming("readings", &three) {
        Err(err) => err,
        Ok(_) => panic!("a 0.1.2 library is never asked for a stream"),
    };
    assert_eq!(err.kind(), ErrorKind::RuntimeError, "{err}");
    assert!(
        err.message()
            .contains("returns an item stream, which this host cannot serve"),
        "{err}"
    );
}

/// Builds a driver against a copy of plugin-api whose version is bumped to
/// 0.2.0, as a third party would by depending on a newer release.
#[test]
fn a_driver_built_against_an_incompatible_plugin_api_is_refused_in_one_line() {
    let sandbox = Sandbox::new();
    let installed = build_against_copied_plugin_api(&sandbox, "newer-api-driver", "0.2.0", |_| {});

    let err = Loader::new().load(&installed).unwrap_err();
    assert!(
        matches!(err, LoadError::IncompatibleVersion { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(
        message.contains("built against pyrolab-plugin-api 0.2.0, but this host uses 0.1."),
        "{message}"
    );
    assert!(message.contains("0.1.x"), "{message}");

    let list = run_host(sandbox.host().args(["plugins", "list"])).failure(1);
    let error_lines: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{list}");
    assert!(error_lines[0].contains("0.2.0"), "{list}");
    assert!(list.stdout.lines().count() < 12, "no layout dump:\n{list}");
}

/// A driver built against plugin-api 0.1.0 reads only the first eight value
/// kinds: the host sends it tuples and sets as lists, and refuses big
/// integers and complex numbers with a TypeError rather than send bytes it
/// cannot decode, on the general path and the native fast path alike.
#[test]
fn a_driver_built_against_plugin_api_0_1_0_is_sent_only_the_kinds_it_reads() {
    let sandbox = Sandbox::new();
    let installed = build_against_copied_plugin_api(&sandbox, "old-api-driver", "0.1.0", |_| {});
    let library = Loader::new().load(&installed).unwrap();
    assert_eq!(library.descriptor().plugin_api_version, "0.1.0");
    let settings = Value::Map(vec![("location".into(), "lab".into())]);
    let thermometer = library.create("Thermometer", &settings).unwrap();
    let nested = Value::Tuple(vec![1.into(), Value::Set(vec![Value::FrozenSet(vec![])])]);
    let lowered = Value::List(vec![1.into(), Value::List(vec![Value::List(vec![])])]);
    let echoed = thermometer
        .call("echo", CallArgs::positional(vec![nested.clone()]))
        .unwrap();
    assert_eq!(echoed, lowered);
    let encoded = value::encode(&CallArgs::positional(vec![nested]).into_value());
    let raw = thermometer.call_raw("echo", &encoded).unwrap();
    assert_eq!(value::decode(&raw).unwrap(), lowered);
    // A library before 0.1.2 is never asked to lend: large results come
    // whole.
    let count = value::encode(&CallArgs::positional(vec![Value::Int(100_000)]).into_value());
    let samples = thermometer.call_raw_lending("samples", &count).unwrap();
    assert!(samples.tail.is_empty());
    assert_eq!(
        value::decode(&samples.head).unwrap(),
        Value::Bytes(vec![7; 100_000])
    );
    for unreadable in [
        Value::BigInt("1180591620717411303424".parse().unwrap()),
        Value::Complex(pyrolab_plugin_api::Complex::new(1.0, 2.0)),
    ] {
        let err = thermometer
            .call(
                "echo",
                CallArgs::positional(vec![Value::List(vec![unreadable])]),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError, "{err}");
        assert!(
            err.message()
                .contains("rebuild it against pyrolab-plugin-api 0.1.1"),
            "{err}"
        );
    }
}

/// Builds a driver against a copy of plugin-api that claims this host's
/// version but whose binary interface was changed (a field added to the
/// log sink the host hands over): abi_stable's layout check refuses it, and
/// the user still reads one line, not the layout comparison.
#[test]
fn a_driver_built_against_a_modified_plugin_api_is_refused_in_one_line() {
    let sandbox = Sandbox::new();
    let installed = build_against_copied_plugin_api(
        &sandbox,
        "modified-api-driver",
        pyrolab_plugin_api::PLUGIN_API_VERSION,
        |plugin_api| {
            let abi = plugin_api.join("src/abi.rs");
            let source = fs::read_to_string(&abi).unwrap();
            let sink_field =
                "pub log: extern \"C\" fn(level: u8, target: RStr<'_>, message: RStr<'_>),\n";
            assert!(
                source.contains(sink_field),
                "abi.rs changed: update this test"
            );
            let modified = source.replace(
                sink_field,
                &format!("{sink_field}    /// Added by the test.\n    pub flags: u32,\n"),
            );
            fs::write(&abi, modified).unwrap();
        },
    );

    let err = Loader::new().load(&installed).unwrap_err();
    assert!(matches!(err, LoadError::IncompatibleLayout { .. }), "{err}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(message.contains("does not match this host's"), "{message}");

    let list = run_host(sandbox.host().args(["plugins", "list"])).failure(1);
    // The search path, the (empty) plugins, and one line for the refusal.
    assert!(list.stdout.lines().count() < 12, "no layout dump:\n{list}");
}

/// Copies plugin-api into a new workspace with the given version, lets
/// `modify` change the copy, builds the thermometer driver against it as
/// crate `driver_name` (unique per test: the build directory is shared), and
/// installs the library in the sandbox's plugin directory.
fn build_against_copied_plugin_api(
    sandbox: &Sandbox,
    driver_name: &str,
    version: &str,
    modify: impl FnOnce(&Path),
) -> std::path::PathBuf {
    let workspace = sandbox.path().join("copied-api");
    let plugin_api = workspace.join("plugin-api");
    copy_tree(&repo_root().join("plugin-api"), &plugin_api);
    modify(&plugin_api);
    let root_manifest = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    write(
        &workspace.join("Cargo.toml"),
        &copied_api_manifest(&root_manifest, version),
    );
    write(
        &workspace.join("driver/Cargo.toml"),
        &driver_manifest(
            driver_name,
            "pyrolab-plugin-api.workspace = true",
            "serde.workspace = true",
        ),
    );
    write(&workspace.join("driver/src/lib.rs"), THERMOMETER);
    let built = build_external_crate(&workspace, &driver_name.replace('-', "_"));
    sandbox.install_file(&built)
}

/// The workspace manifest for a copied plugin-api: the workspace's
/// dependency versions, the given version, members plugin-api and a driver.
fn copied_api_manifest(root_manifest: &str, version: &str) -> String {
    let dependencies_start = root_manifest
        .find("[workspace.dependencies]")
        .expect("root manifest has [workspace.dependencies]");
    let dependencies: String = root_manifest[dependencies_start..]
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter(|line| {
            !line.starts_with("pyrolab-")
                && !line.starts_with("libservice")
                && !line.starts_with("faulty")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    format!(
        r#"[workspace]
resolver = "3"
members = ["plugin-api", "plugin-api/macros", "driver"]

[workspace.package]
version = "{version}"
edition = "2024"
rust-version = "1.86"
license = "MIT OR Apache-2.0"
repository = "https://example.invalid/copied-api"

[workspace.dependencies]
pyrolab-plugin-api = {{ path = "plugin-api", version = "{version}" }}
pyrolab-plugin-api-macros = {{ path = "plugin-api/macros", version = "{version}" }}
{dependencies}"#
    )
}

/// `pyrolab-host new driver`, as a driver author starts: the generated
/// project builds and passes its own tests outside the workspace, and its
/// library serves Rust and Python clients through a daemon.
#[test]
fn new_driver_creates_a_project_that_builds_tests_and_serves() {
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("acme-laser");
    // The checkout's plugin-api: the default, the published crate, is not
    // on crates.io before the release that publishes it.
    let created = run_host(
        sandbox
            .host()
            .args(["new", "driver", "acme-laser", "--path"])
            .arg(&project)
            .arg("--plugin-api-path")
            .arg(repo_root().join("plugin-api")),
    )
    .success();
    assert!(
        created
            .stdout
            .contains("class AcmeLaser, module acme_laser"),
        "{created}"
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        "example.yaml",
        ".gitignore",
    ] {
        assert!(project.join(file).is_file(), "{file} is missing");
    }
    let again = run_host(
        sandbox
            .host()
            .args(["new", "driver", "acme-laser", "--path"])
            .arg(&project),
    )
    .failure(1);
    assert!(again.stderr.contains("is not empty"), "{again}");

    // Its own unit tests pass, built the way its author builds them.
    let target = pyrolab_test_support::target_dir().join("external-driver-builds");
    let tests = run(
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&project)
            .args(["test", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"),
        pyrolab_test_support::BUILD_TIMEOUT,
    )
    .success();
    assert!(tests.stdout.contains("2 passed"), "{tests}");

    let built = build_external_crate(&project, "acme_laser");
    sandbox.install_file(&built);
    let inspect = run_host(sandbox.host().args(["plugins", "inspect", "acme_laser"])).success();
    assert!(
        inspect
            .stdout
            .contains("AcmeLaser: say here what the instrument is"),
        "the class description reaches clients\n{inspect}"
    );
    assert!(inspect.stdout.contains("setpoint"), "{inspect}");
    // The generated example configuration, pointed at this sandbox.
    let example = fs::read_to_string(project.join("example.yaml")).unwrap();
    let config = sandbox.path().join("lab.yaml");
    fs::write(
        &config,
        example
            .replace(
                "- target/release",
                &format!("- {}", sandbox.plugin_dir().display()),
            )
            .replace("host: localhost", "host: 127.0.0.1"),
    )
    .unwrap();
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(&config),
    );
    let line = daemon.wait_for_line("service acme_laser: ", Duration::from_secs(30));
    let uri = line.rsplit(' ').next().unwrap().to_owned();

    let step = run_host(sandbox.host().args(["call", &uri, "step", "2.5"])).success();
    assert_eq!(step.stdout.trim(), "2.5", "{step}");
    let python = run(
        std::process::Command::new(python_with_pyro5()).args([
            "-c",
            &format!(
                "import Pyro5.api as p\n\
                 laser = p.Proxy('{uri}')\n\
                 print(laser.identify())\n\
                 laser.setpoint = 7.0\n\
                 print(laser.step())\n\
                 print(laser.setpoint)"
            ),
        ]),
        Duration::from_secs(60),
    )
    .success();
    assert_eq!(
        python.stdout.lines().collect::<Vec<_>>(),
        ["AcmeLaser on /dev/ttyUSB0", "8.0", "8.0"],
        "{python}"
    );
    daemon.stop();
}

/// By default a new driver depends on the published pyrolab-plugin-api at
/// this host's version, not on the checkout the host was built from
/// (which its author may not have, and which moves).
#[test]
fn new_driver_depends_on_the_published_plugin_api_by_default() {
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("acme-meter");
    let created = run_host(
        sandbox
            .host()
            .args(["new", "driver", "acme-meter", "--path"])
            .arg(&project),
    )
    .success();
    let version = pyrolab_plugin_api::PLUGIN_API_VERSION;
    assert!(
        created
            .stdout
            .contains(&format!("pyrolab-plugin-api {version} from crates.io")),
        "{created}"
    );
    let manifest = fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let dependency: Vec<&str> = manifest
        .lines()
        .filter(|line| line.starts_with("pyrolab-plugin-api"))
        .collect();
    assert_eq!(
        dependency,
        [format!("pyrolab-plugin-api = \"{version}\"")],
        "{manifest}"
    );
    assert!(!manifest.contains("path ="), "{manifest}");

    let help = run_host(sandbox.host().args(["new", "driver", "--help"])).success();
    assert!(help.stdout.contains("--plugin-api-path <DIR>"), "{help}");
}

/// A third party's SCPI driver on `instrument-io`, in a crate of its own:
/// a multimeter reached by a VISA resource string.
const MULTIMETER: &str = r#"
use instrument_io::{Options, Scpi};
use pyrolab_plugin_api::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `TCPIP0::HOST::5025::SOCKET`, `TCPIP0::HOST::inst0::INSTR`, ...
    resource: String,
    #[serde(default = "default_timeout")]
    timeout: f64,
}

fn default_timeout() -> f64 {
    2.0
}

pub struct Multimeter {
    scpi: Scpi,
}

/// A bench multimeter speaking SCPI.
#[service]
impl Multimeter {
    #[constructor]
    pub fn new(settings: Settings) -> Result<Self> {
        let options = Options {
            timeout: std::time::Duration::from_secs_f64(settings.timeout),
            ..Options::default()
        };
        Ok(Multimeter {
            scpi: Scpi::open(&settings.resource, &options)?,
        })
    }

    /// Its make and model, as `*IDN?` says.
    pub fn identify(&mut self) -> Result<String> {
        let identity = self.scpi.identify()?;
        Ok(format!("{} {}", identity.manufacturer, identity.model))
    }

    /// A DC voltage reading, in volts.
    pub fn measure_voltage(&mut self) -> Result<f64> {
        self.scpi.query_parsed(":MEAS:VOLT:DC?")
    }

    /// Sets the voltage range; the instrument's own error when it refuses.
    pub fn set_range(&mut self, volts: f64) -> Result<()> {
        self.scpi.write_checked(&format!(":VOLT:DC:RANG {volts}"))
    }
}

export_plugin!(Multimeter);
"#;

/// A multimeter on a TCP socket: `*IDN?`, `:MEAS:VOLT:DC?`, a range it
/// takes (up to 100 V) or refuses with an entry in its error queue.
fn simulated_multimeter() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut out = stream.try_clone().expect("clone");
            let mut errors: Vec<String> = Vec::new();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let reply = match line.trim() {
                    "*IDN?" => Some("ACME,DMM 42,7,1.0".to_owned()),
                    ":MEAS:VOLT:DC?" => Some("+1.234500E+00".to_owned()),
                    "SYST:ERR?" if errors.is_empty() => Some("+0,\"No error\"".to_owned()),
                    "SYST:ERR?" => Some(errors.remove(0)),
                    command => {
                        let range = command
                            .strip_prefix(":VOLT:DC:RANG ")
                            .and_then(|v| v.parse::<f64>().ok());
                        if !range.is_some_and(|v| v <= 100.0) {
                            errors.push("-222,\"Data out of range\"".to_owned());
                        }
                        None
                    }
                };
                if let Some(reply) = reply {
                    if writeln!(out, "{reply}").is_err() {
                        break;
                    }
                }
            }
        }
    });
    port
}

#[test]
fn a_third_party_scpi_driver_on_instrument_io_builds_and_talks_to_its_instrument() {
    let sandbox = Sandbox::new();
    let crate_dir = sandbox.path().join("acme-multimeter");
    let path = |dir: &str| repo_root().join(dir).display().to_string();
    write(
        &crate_dir.join("Cargo.toml"),
        &(driver_manifest(
            "acme-multimeter",
            &format!(
                "pyrolab-plugin-api = {{ path = {:?} }}\npyrolab-instrument-io = {{ path = {:?} }}",
                path("plugin-api"),
                path("instrument-io")
            ),
            "serde = { version = \"1\", features = [\"derive\"] }",
        ) + "\n[workspace]\n"),
    );
    write(&crate_dir.join("src/lib.rs"), MULTIMETER);
    let built = build_external_crate(&crate_dir, "acme_multimeter");
    sandbox.install_file(&built);

    let port = simulated_multimeter();
    let params = format!(r#"{{"resource": "TCPIP0::127.0.0.1::{port}::SOCKET"}}"#);
    let call = |method: &str, args: &[&str]| {
        run_host(
            sandbox
                .host()
                .args(["plugins", "call", "acme-multimeter:Multimeter", method])
                .args(args)
                .args(["--params", &params]),
        )
    };
    assert_eq!(
        call("identify", &[]).success().stdout.trim(),
        "'ACME DMM 42'"
    );
    assert_eq!(
        call("measure_voltage", &[]).success().stdout.trim(),
        "1.2345"
    );
    call("set_range", &["10"]).success();
    let refused = call("set_range", &["1000"]).failure(1);
    assert!(
        refused.stderr.contains("RuntimeError")
            && refused.stderr.contains("-222,\"Data out of range\""),
        "{refused}"
    );
    // Nothing listening: a ConnectionError naming the resource.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let nowhere =
        format!(r#"{{"resource": "TCPIP0::127.0.0.1::{closed}::SOCKET", "timeout": 0.5}}"#);
    let gone = run_host(sandbox.host().args([
        "plugins",
        "call",
        "acme-multimeter:Multimeter",
        "identify",
        "--params",
        &nowhere,
    ]))
    .failure(1);
    assert!(
        gone.stderr.contains("ConnectionError")
            && gone
                .stderr
                .contains(&format!("TCPIP0::127.0.0.1::{closed}::SOCKET")),
        "{gone}"
    );
}
