//! Problems found in a configuration file, each with its place.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Mark;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// Suspicious but usable (an unknown key, say); an error under
    /// `--strict`.
    Warning,
}

/// One problem: where, which key, what.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: PathBuf,
    /// The line and column.
    pub mark: Mark,
    /// The key path, e.g. `services.library.instancemode` (empty for the
    /// document itself).
    pub path: String,
    /// What is wrong: what was expected and what was found.
    pub message: String,
}

impl Diagnostic {
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `FILE:LINE:COLUMN: error: PATH: MESSAGE`, the form editors and
/// terminals turn into links.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {severity}: ", self.file.display(), self.mark)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects the diagnostics for one file.
#[derive(Debug)]
pub struct Diagnostics {
    file: PathBuf,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection for `file`.
    pub fn new(file: &Path) -> Self {
        Diagnostics {
            file: file.to_owned(),
            items: Vec::new(),
        }
    }

    /// Records an error.
    pub fn error(&mut self, mark: Mark, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, mark, path, message.into());
    }

    /// Records a warning.
    pub fn warning(&mut self, mark: Mark, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, mark, path, message.into());
    }

    fn push(&mut self, severity: Severity, mark: Mark, path: &str, message: String) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            mark,
            path: path.to_owned(),
            message,
        });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics in the order they appear in the file.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by(|a, b| a.mark.cmp(&b.mark).then(a.severity.cmp(&b.severity)));
        self.items
    }
}

/// The closest of `candidates` to a misspelt `word`, if one is close enough
/// to be a likely typo.
pub fn suggestion<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        // Levenshtein distance with adjacent transpositions as one edit.
        .map(|candidate| (strsim::osa_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            let longer = word.chars().count().max(candidate.chars().count());
            // Close enough to be a slip, and not a different word altogether
            // (`x` is not a typo of `d`).
            *distance <= (candidate.chars().count() / 3).max(1) && *distance < longer
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_suggestions_and_strangers_do_not() {
        let keys = ["ns_port", "ns_bchost", "ns_bcport", "host"];
        assert_eq!(suggestion("ns_prot", keys), Some("ns_port"));
        assert_eq!(suggestion("hots", keys), Some("host"));
        assert_eq!(suggestion("colour", keys), None);
        assert_eq!(suggestion("x", ["d"]), None);
        assert_eq!(suggestion("dd", ["d"]), Some("d"));
        assert_eq!(
            suggestion("singel", ["single", "session", "percall"]),
            Some("single")
        );
    }

    #[test]
    fn diagnostics_print_as_file_line_column() {
        let mut diagnostics = Diagnostics::new(Path::new("lab.yaml"));
        diagnostics.error(
            Mark { line: 3, column: 5 },
            "daemons.d.port",
            "expected a port",
        );
        let printed = diagnostics.into_sorted()[0].to_string();
        assert_eq!(
            printed,
            "lab.yaml:3:5: error: daemons.d.port: expected a port"
        );
    }
}
