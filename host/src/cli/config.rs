//! `pyrolab-host config ...`: check a launch configuration, store it in the
//! data directory, and get it back out.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::Context;
use crate::config::{ConfigError, ConfigStore, Diagnostic, LaunchConfig, load_file, to_yaml};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a launch configuration: print every problem as
    /// FILE:LINE:COLUMN. Exit 0 when valid (warnings are printed), 1
    /// otherwise.
    Validate {
        /// The YAML file.
        file: PathBuf,
        /// Treat unknown keys as errors (as `strict: true` in the file does).
        #[arg(long)]
        strict: bool,
    },

    /// Check a launch configuration and store it (with defaults filled in)
    /// in the data directory. An invalid file is refused and the stored
    /// configuration is left untouched.
    Update {
        /// The YAML file.
        file: PathBuf,
        /// Treat unknown keys as errors.
        #[arg(long)]
        strict: bool,
    },

    /// Write the stored configuration to FILE (`-` for standard output).
    Export {
        /// Where to write it.
        file: PathBuf,
    },

    /// Print the stored configuration.
    Show,

    /// Delete the stored configuration (asks first; --yes skips asking).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub fn run(command: ConfigCommand, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Validate { file, strict } => validate(&file, strict),
        ConfigCommand::Update { file, strict } => update(context, &file, strict),
        ConfigCommand::Export { file } => export(context, &file),
        ConfigCommand::Show => {
            print!("{}", to_yaml(&stored(context)?));
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Reset { yes } => reset(context, yes),
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        eprintln!("{diagnostic}");
    }
}

/// Loads `file`, printing its diagnostics; `None` when it has errors.
pub(super) fn check(file: &Path, strict: bool) -> anyhow::Result<Option<LaunchConfig>> {
    match load_file(file, strict) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            Ok(Some(loaded.config))
        }
        Err(ConfigError::Invalid { diagnostics, .. }) => {
            print_diagnostics(&diagnostics);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "{}: {errors} error{}",
                file.display(),
                if errors == 1 { "" } else { "s" }
            );
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn validate(file: &Path, strict: bool) -> anyhow::Result<ExitCode> {
    Ok(match check(file, strict)? {
        Some(config) => {
            println!(
                "{}: valid ({}, {}, {})",
                file.display(),
                count(config.nameservers.len(), "name server"),
                count(config.daemons.len(), "daemon"),
                count(config.services.len(), "service")
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    })
}

fn store(context: &Context) -> anyhow::Result<ConfigStore> {
    match &context.data_dir {
        Some(data_dir) => Ok(ConfigStore::new(data_dir)),
        None => bail!("no data directory: give --data-dir DIR or set PYROLAB_HOME"),
    }
}

fn stored(context: &Context) -> anyhow::Result<LaunchConfig> {
    let store = store(context)?;
    match store.load()? {
        Some(config) => Ok(config),
        None => bail!(
            "no configuration is stored in {} (store one with `pyrolab-host config update FILE`)",
            store.path().display()
        ),
    }
}

fn update(context: &Context, file: &Path, strict: bool) -> anyhow::Result<ExitCode> {
    let store = store(context)?;
    let Some(config) = check(file, strict)? else {
        eprintln!("the stored configuration was not changed");
        return Ok(ExitCode::FAILURE);
    };
    store
        .save(&config)
        .with_context(|| format!("cannot write {}", store.path().display()))?;
    println!("stored {} as {}", file.display(), store.path().display());
    Ok(ExitCode::SUCCESS)
}

fn export(context: &Context, file: &Path) -> anyhow::Result<ExitCode> {
    let yaml = to_yaml(&stored(context)?);
    if file == Path::new("-") {
        print!("{yaml}");
    } else {
        std::fs::write(file, yaml).with_context(|| format!("cannot write {}", file.display()))?;
        println!("exported to {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(context: &Context, yes: bool) -> anyhow::Result<ExitCode> {
    let store = store(context)?;
    if !store.path().exists() {
        println!("no configuration is stored; nothing to reset");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes
        && !confirm(&format!(
            "delete the stored configuration {}?",
            store.path().display()
        ))?
    {
        println!("kept the stored configuration");
        return Ok(ExitCode::FAILURE);
    }
    store
        .reset()
        .with_context(|| format!("cannot delete {}", store.path().display()))?;
    println!("deleted {}", store.path().display());
    Ok(ExitCode::SUCCESS)
}

/// Asks a yes/no question on the terminal. Without a terminal there is
/// nobody to ask, so the answer is an error pointing at `--yes`.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{question} Not asking without a terminal: pass --yes to confirm");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// `1 daemon`, `2 daemons`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
