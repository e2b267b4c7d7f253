//! `pyrolab-host completions SHELL` and `pyrolab-host man --out-dir DIR`:
//! shell completions and man pages generated from the clap definitions of
//! this build, so they list exactly the commands and options `--help`
//! does (docs/completions.md).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use super::Cli;

/// The program's name, as the shells and man know it.
const BIN_NAME: &str = "pyrolab-host";

/// `completions SHELL` (its help is the `Completions` command's, in
/// mod.rs).
#[derive(Debug, Args)]
pub struct CompletionsCommand {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// `man --out-dir DIR` (its help is the `Man` command's, in mod.rs):
/// the path of each page written is printed, one per line, the main page
/// first, and nothing else.
#[derive(Debug, Args)]
pub struct ManCommand {
    /// The directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
}

/// `completions SHELL`.
pub fn completions(command: CompletionsCommand) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(command.shell, &mut Cli::command(), BIN_NAME, &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        // The reader went (`| head`): it has what it wanted.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        written => {
            written?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `man --out-dir DIR`.
pub fn man(command: ManCommand) -> anyhow::Result<ExitCode> {
    let written = write_man_pages(&command.out_dir)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of the program and of every visible subcommand into
/// `dir`; returns their paths, the program's page first.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // `help` is clap's, not a command of ours: `--help` covers it. Building
    // names each subcommand `pyrolab-host-plugins-list`: the page's title
    // and file name.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut written = Vec::new();
    write_page_and_subpages(root, dir, &mut written)?;
    Ok(written)
}

fn write_page_and_subpages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let page = clap_mangen::Man::new(command)
        // Every page says which build it documents (subcommands carry no
        // version of their own); no date, so a package build is
        // reproducible.
        .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
        .manual("pyrolab-host manual");
    let path = dir.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    std::fs::write(&path, title_first(&roff))
        .with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in subcommands {
        write_page_and_subpages(sub, dir, written)?;
    }
    Ok(())
}

/// The page with its `.TH` line first, as man pages conventionally start:
/// clap_mangen puts roff's definition of the apostrophe string (`Aq`)
/// before it. The definition still comes before any text that uses it.
fn title_first(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(title) = lines.iter().position(|line| line.starts_with(".TH ")) else {
        return roff.to_vec();
    };
    let mut out = String::from(lines[title]);
    for (i, line) in lines.iter().enumerate() {
        if i != title {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_gets_a_page_named_the_git_way() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "pyrolab-host.1");
        for expected in [
            "pyrolab-host-up.1",
            "pyrolab-host-plugins-list.1",
            "pyrolab-host-config-validate.1",
            "pyrolab-host-man.1",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with(".TH"), "{}", path.display());
        }
    }

    #[test]
    fn the_bash_script_completes_the_subcommands() {
        let mut script = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Cli::command(), BIN_NAME, &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("complete -F"), "{script}");
        for sub in ["up", "ps", "plugins", "completions"] {
            assert!(script.contains(sub), "{sub}");
        }
    }
}
