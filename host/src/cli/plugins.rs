//! `pyrolab-host plugins ...`: what is on the plugin search path, what a
//! driver offers, and a way to call it without starting a daemon.
//!
//! The `--json` forms are a stable interface documented in
//! `docs/cli-json.md`: fields may be added, never renamed or removed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use pyrolab_plugin_api::abi::lending::Lent;
use pyrolab_plugin_api::descriptor::{ClassDescriptor, Receiver};
use pyrolab_plugin_api::{DriverError, Value, value};
use serde::Serialize;

use super::Context;
use crate::loader::{Answer, Library, Loader};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List every driver library on the plugin search path, with its
    /// classes. Libraries that fail to load are reported too (exit code 1).
    List {
        /// Print JSON (see docs/cli-json.md) instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Show a library's classes: methods with signatures and docs, oneway
    /// methods, and properties.
    Inspect {
        /// MODULE or MODULE:CLASS as in a launch configuration
        /// (`sample`, `sample:SampleService`), or a path to a library file.
        target: String,

        /// Print JSON (see docs/cli-json.md) instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Construct a driver and call one of its methods, without a daemon.
    ///
    /// A quick way to try a driver out. Each ARG is read as a YAML/JSON
    /// literal (42, 2.5, true, null, "text", [1, 2], {a: 1}); anything else
    /// is taken as a string. The result is printed as a Python repr; a
    /// driver error is printed on stderr with exit code 1.
    Call {
        /// MODULE:CLASS as in a launch configuration, e.g. sample:SampleService.
        target: String,

        /// The method to call.
        method: String,

        /// Positional arguments.
        args: Vec<String>,

        /// A keyword argument, NAME=VALUE (VALUE read like ARGs). Repeatable.
        #[arg(long = "kw", value_name = "NAME=VALUE")]
        kwargs: Vec<String>,

        /// The driver's constructor parameters, as a JSON object (the
        /// service's `parameters:` mapping in a launch configuration).
        #[arg(long, value_name = "JSON")]
        params: Option<String>,

        /// Print the result as JSON instead of as a Python repr.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PluginsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List { json } => list(context, json),
        PluginsCommand::Inspect { target, json } => inspect(context, &target, json),
        PluginsCommand::Call {
            target,
            method,
            args,
            kwargs,
            params,
            json,
        } => call(
            context,
            &target,
            &method,
            &args,
            &kwargs,
            params.as_deref(),
            json,
        ),
    }
}

/// `plugins list --json`.
#[derive(Serialize)]
struct ListReport {
    /// Which drivers this host loads (added in 0.1.4; `--version` says
    /// the same).
    host: HostPluginApi,
    search_path: Vec<SearchDir>,
    plugins: Vec<PluginSummary>,
    errors: Vec<LoadFailure>,
}

/// The plugin API of this host, against which every library is checked.
#[derive(Serialize)]
struct HostPluginApi {
    /// This pyrolab-host's version.
    version: String,
    /// The pyrolab-plugin-api it was built with.
    plugin_api_version: String,
    /// The plugin-api versions a driver may be built against: `0.1.x`.
    loads_plugin_api: String,
}

impl HostPluginApi {
    fn of_this_build() -> Self {
        HostPluginApi {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            plugin_api_version: crate::loader::host_plugin_api_version(),
            loads_plugin_api: crate::loader::loadable_plugin_api_series(),
        }
    }
}

#[derive(Serialize)]
struct SearchDir {
    path: PathBuf,
    exists: bool,
}

#[derive(Serialize)]
struct PluginSummary {
    module: String,
    file: PathBuf,
    crate_name: String,
    plugin_api_version: String,
    classes: Vec<ClassSummary>,
}

#[derive(Serialize)]
struct ClassSummary {
    name: String,
    doc: String,
}

#[derive(Serialize)]
struct LoadFailure {
    file: PathBuf,
    error: String,
}

fn list(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let loader = Loader::new();
    let mut report = ListReport {
        host: HostPluginApi::of_this_build(),
        search_path: context
            .search_path
            .dirs()
            .iter()
            .map(|dir| SearchDir {
                path: absolute(dir),
                exists: dir.is_dir(),
            })
            .collect(),
        plugins: Vec::new(),
        errors: Vec::new(),
    };
    for file in context.search_path.libraries() {
        match loader.load(&file) {
            Ok(library) => report.plugins.push(summarize(&library)),
            Err(err) => report.errors.push(LoadFailure {
                file: absolute(&file),
                error: err.to_string(),
            }),
        }
    }
    if json {
        super::print_json(&report)?;
    } else {
        print!("{}", render_list(&report));
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn summarize(library: &Library) -> PluginSummary {
    let descriptor = library.descriptor();
    PluginSummary {
        module: library.module_name(),
        file: library.path().to_owned(),
        crate_name: descriptor.crate_name.clone(),
        plugin_api_version: descriptor.plugin_api_version.clone(),
        classes: descriptor
            .classes
            .iter()
            .map(|class| ClassSummary {
                name: class.name.clone(),
                doc: first_paragraph(&class.doc),
            })
            .collect(),
    }
}

/// The search path, the libraries found and their classes as tables
/// (table.rs), then the libraries that did not load, an `error:` line
/// each.
fn render_list(report: &ListReport) -> String {
    let mut out = String::new();
    let dirs: Vec<Vec<String>> = report
        .search_path
        .iter()
        .map(|dir| {
            let state = if dir.exists { "found" } else { "missing" };
            vec![dir.path.display().to_string(), state.to_owned()]
        })
        .collect();
    super::table::titled(&mut out, "Search path", &["DIRECTORY", "STATE"], &dirs);
    if dirs.is_empty() {
        out.push_str("  (use --plugin-dir DIR or set PYROLAB_PLUGIN_PATH)\n");
    }
    let libraries: Vec<Vec<String>> = report
        .plugins
        .iter()
        .map(|plugin| {
            vec![
                plugin.module.clone(),
                plugin.plugin_api_version.clone(),
                plugin.file.display().to_string(),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        &format!("Plugins (this host: {})", super::version::plugin_abi()),
        &["MODULE", "PLUGIN API", "FILE"],
        &libraries,
    );
    let classes: Vec<Vec<String>> = report
        .plugins
        .iter()
        .flat_map(|plugin| {
            plugin.classes.iter().map(|class| {
                vec![
                    format!("{}:{}", plugin.module, class.name),
                    class.doc.clone(),
                ]
            })
        })
        .collect();
    if !classes.is_empty() {
        super::table::titled(
            &mut out,
            "Classes",
            &["MODULE:CLASS", "DESCRIPTION"],
            &classes,
        );
    }
    if !report.errors.is_empty() {
        out.push_str("\nNot loaded\n");
    }
    for failure in &report.errors {
        let _ = writeln!(out, "  error: {}", failure.error);
    }
    out
}

/// `plugins inspect --json`.
#[derive(Serialize)]
struct InspectReport<'a> {
    module: String,
    file: &'a Path,
    crate_name: &'a str,
    plugin_api_version: &'a str,
    classes: Vec<&'a ClassDescriptor>,
}

fn inspect(context: &Context, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (module, class) = split_target(target);
    let library = open(context, module)?;
    let classes: Vec<&ClassDescriptor> = match class {
        Some(name) => vec![library.class(name)?],
        None => library.descriptor().classes.iter().collect(),
    };
    let report = InspectReport {
        module: library.module_name(),
        file: library.path(),
        crate_name: &library.descriptor().crate_name,
        plugin_api_version: &library.descriptor().plugin_api_version,
        classes,
    };
    if json {
        super::print_json(&report)?;
    } else {
        print!("{}", render_inspect(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn render_inspect(report: &InspectReport<'_>) -> String {
    let mut out = format!(
        "{}  {}  (pyrolab-plugin-api {})\n",
        report.module,
        report.file.display(),
        report.plugin_api_version
    );
    for class in &report.classes {
        let _ = writeln!(out, "\nclass {}", class.name);
        write_doc(&mut out, &class.doc, 4);
        if let Some(parameters) = &class.parameters_type {
            let _ = writeln!(out, "  parameters: {parameters}");
        }
        if !class.methods.is_empty() {
            out.push_str("  methods:\n");
        }
        for method in &class.methods {
            let mut flags = Vec::new();
            if method.oneway {
                flags.push("oneway");
            }
            if method.receiver == Receiver::Exclusive {
                flags.push("exclusive");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            let _ = writeln!(out, "    {}{flags}", method.signature());
            write_doc(&mut out, &method.doc, 8);
        }
        if !class.properties.is_empty() {
            out.push_str("  properties:\n");
        }
        for property in &class.properties {
            let access = if property.writable {
                "read/write"
            } else {
                "read-only"
            };
            let _ = writeln!(
                out,
                "    {}: {}  [{access}]",
                property.name, property.ty.python
            );
            write_doc(&mut out, &property.doc, 8);
        }
    }
    out
}

fn write_doc(out: &mut String, doc: &str, indent: usize) {
    for line in doc.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{:indent$}{line}", "");
        }
    }
}

fn call(
    context: &Context,
    target: &str,
    method: &str,
    args: &[String],
    kwargs: &[String],
    params: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (module, Some(class)) = split_target(target) else {
        bail!("expected MODULE:CLASS (e.g. sample:SampleService), found {target:?}");
    };
    let parameters = match params {
        Some(text) => serde_json::from_str::<Value>(text)
            .with_context(|| format!("--params is not valid JSON: {text}"))?,
        None => Value::Null,
    };
    let call_args = super::call_arguments(args, kwargs)?;
    let library = open(context, module)?;
    let instance = Arc::new(library.create(class, &parameters)?);
    let print = |result: Value| -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            println!("{result}");
        }
        Ok(())
    };
    let raised = |err: DriverError| {
        // The style of every error (errors.rs); the driver's context lines
        // (`while checking out 'Dune'`) follow, indented.
        eprintln!("error: {class}.{method}() raised {err}");
        for line in err.context_lines() {
            eprintln!("  {line}");
        }
        Ok(ExitCode::FAILURE)
    };
    let decoded = |lent: Lent| {
        value::decode(&lent.into_whole())
            .map_err(|err| DriverError::runtime(format!("a malformed result: {err}")))
    };
    match instance.call_args_streaming(method, call_args) {
        Ok(Answer::Result(lent)) => match decoded(lent) {
            Ok(result) => print(result)?,
            Err(err) => return raised(err),
        },
        // An item stream: one item per line, as `call` prints them.
        Ok(Answer::Stream(mut items)) => {
            while let Some(item) = items.next_item() {
                match item.and_then(decoded) {
                    Ok(item) => print(item)?,
                    Err(err) => return raised(err),
                }
            }
        }
        Err(err) => return raised(err),
    }
    Ok(ExitCode::SUCCESS)
}

/// `module:Class` → (`module`, `Some("Class")`). A Windows drive letter
/// (`C:\...`) is not a class separator.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.rsplit_once(':') {
        Some((module, class))
            if !class.is_empty() && !class.contains(['/', '\\']) && !module.is_empty() =>
        {
            (module, Some(class))
        }
        _ => (target, None),
    }
}

/// Opens a library by module name, or by path when the target looks like one.
fn open(context: &Context, module: &str) -> anyhow::Result<Arc<Library>> {
    let path = if looks_like_path(module) {
        PathBuf::from(module)
    } else {
        context.search_path.resolve(module)?
    };
    Ok(Loader::new().load(&path)?)
}

fn looks_like_path(target: &str) -> bool {
    target.contains(['/', '\\'])
        || [".so", ".dll", ".dylib"]
            .iter()
            .any(|ext| target.ends_with(ext))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn first_paragraph(doc: &str) -> String {
    doc.split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_class_colon_only() {
        assert_eq!(
            split_target("sample:SampleService"),
            ("sample", Some("SampleService"))
        );
        assert_eq!(split_target("sample"), ("sample", None));
        assert_eq!(
            split_target("C:\\plugins\\x.dll"),
            ("C:\\plugins\\x.dll", None)
        );
    }
}
