//! `pyrolab-host new driver NAME`: a driver project of one's own, ready to
//! build, test and serve.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// Create a driver project: a standalone Cargo crate (a cdylib built
    /// against pyrolab-plugin-api) with one example class (a method, a
    /// property, a constructor taking the service's parameters), unit tests
    /// that run it in-process, a README and an example launch
    /// configuration.
    Driver(DriverArgs),
}

#[derive(Debug, Args)]
pub struct DriverArgs {
    /// The crate's name, e.g. `acme-thermometer`; the library (and the
    /// `module:` that loads it) is the name with `-` as `_`.
    name: String,

    /// Create the project in DIR (default: ./NAME). DIR must not exist, or
    /// be empty.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,

    /// The example class's name (default: NAME in CamelCase, e.g.
    /// AcmeThermometer).
    #[arg(long, value_name = "NAME")]
    class: Option<String>,

    /// Depend on the pyrolab-plugin-api crate in DIR (a checkout's
    /// plugin-api/, e.g. to try changes to it) instead of the published
    /// one. Default: pyrolab-plugin-api from crates.io, at this host's
    /// version (a 0.1.4 host writes `pyrolab-plugin-api = "0.1.4"`, which
    /// Cargo reads as 0.1.4 or any later 0.1.x: what such a host loads).
    #[arg(long, value_name = "DIR", alias = "api-path")]
    plugin_api_path: Option<PathBuf>,
}

/// This host's plugin-api version: drivers must be built against the same
/// series, and at least this release for every feature it documents.
const API_VERSION: &str = pyrolab_plugin_api::PLUGIN_API_VERSION;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/driver/Cargo.toml.in"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/driver/src/lib.rs.in"),
    ),
    (
        "README.md",
        include_str!("../../templates/driver/README.md.in"),
    ),
    (
        "example.yaml",
        include_str!("../../templates/driver/example.yaml.in"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/driver/gitignore.in"),
    ),
];

pub fn run(command: NewCommand) -> anyhow::Result<ExitCode> {
    match command {
        NewCommand::Driver(args) => new_driver(args),
    }
}

fn new_driver(args: DriverArgs) -> anyhow::Result<ExitCode> {
    check_crate_name(&args.name)?;
    let lib = args.name.replace('-', "_");
    let class = match args.class {
        Some(class) => {
            check_class_name(&class)?;
            class
        }
        None => camel_case(&lib),
    };
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty: choose another --path",
            dir.display()
        );
    }
    let (api_dependency, api_note) = api_dependency(args.plugin_api_path.as_deref())?;
    let libfile = format!(
        "{}{lib}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    for (file, template) in TEMPLATES {
        let text = template
            .replace("{{name}}", &args.name)
            .replace("{{lib}}", &lib)
            .replace("{{class}}", &class)
            .replace("{{libfile}}", &libfile)
            .replace("{{api_dependency}}", &api_dependency);
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created driver {} (class {class}, module {lib}) in {}",
        args.name,
        dir.display()
    );
    println!("{api_note}");
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  cargo test && cargo build --release");
    println!("  pyrolab-host --plugin-dir target/release plugins inspect {lib}");
    Ok(ExitCode::SUCCESS)
}

/// The dependency line for pyrolab-plugin-api, and a note saying which:
/// the published crate, or the one in `plugin_api_path` when given.
fn api_dependency(plugin_api_path: Option<&Path>) -> anyhow::Result<(String, String)> {
    let Some(path) = plugin_api_path else {
        return Ok((
            format!("pyrolab-plugin-api = \"{API_VERSION}\""),
            format!(
                "pyrolab-plugin-api {API_VERSION} from crates.io (give --plugin-api-path DIR to build against a checkout's plugin-api/ instead)"
            ),
        ));
    };
    if !path.join("Cargo.toml").is_file() {
        bail!(
            "{} is not the plugin-api crate (it has no Cargo.toml)",
            path.display()
        );
    }
    // Absolute: the project may be moved, the checkout stays where it is.
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let text = path.display().to_string().replace('\\', "/");
    Ok((
        format!("pyrolab-plugin-api = {{ path = {text:?} }}"),
        format!("pyrolab-plugin-api: the source in {text}"),
    ))
}

/// Cargo's rules for a package name, kept simple: ASCII letters, digits,
/// `-` and `_`, starting with a letter.
fn check_crate_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!(
            "{name:?} is not a usable crate name: use ASCII letters, digits, '-' and '_', starting with a letter"
        );
    }
    Ok(())
}

fn check_class_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!("{name:?} is not a usable class name: use a Rust type name such as Thermometer");
    }
    Ok(())
}

/// `acme_thermometer` → `AcmeThermometer`.
fn camel_case(lib: &str) -> String {
    lib.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_a_module_and_a_class() {
        assert_eq!(camel_case("acme_thermometer"), "AcmeThermometer");
        assert_eq!(camel_case("tsl550"), "Tsl550");
        assert!(check_crate_name("acme-thermometer").is_ok());
        assert!(check_crate_name("9lives").is_err());
        assert!(check_crate_name("a b").is_err());
        assert!(check_class_name("Laser").is_ok());
        assert!(check_class_name("laser").is_err());
    }

    #[test]
    fn the_published_plugin_api_is_the_default_dependency() {
        let (line, note) = api_dependency(None).unwrap();
        assert_eq!(line, format!("pyrolab-plugin-api = \"{API_VERSION}\""));
        assert!(note.contains("crates.io"), "{note}");
        let checkout = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-api");
        let (line, _) = api_dependency(Some(Path::new(checkout))).unwrap();
        assert!(
            line.starts_with("pyrolab-plugin-api = { path = \"/"),
            "{line}"
        );
        assert!(api_dependency(Some(Path::new("/nonexistent"))).is_err());
    }
}
