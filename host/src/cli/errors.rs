//! How the command line reports what went wrong: one style for local
//! errors and for exceptions raised by a remote object.
//!
//! ```text
//! error: cannot reach the name server at 127.0.0.1:1
//!   caused by: cannot connect to 127.0.0.1:1: Connection refused (os error 111)
//! error: builtins.ValueError: thing failed (raised by sample.fail on PYRO:sample@127.0.0.1:40213)
//!   (-v shows the remote traceback)
//! ```
//!
//! The first line starts with `error: ` and says what failed; each cause
//! follows on its own indented line. A remote exception's traceback is
//! the remote program's internals: shown only with `-v`.

use crate::client::RemoteError;

/// An exception a remote object raised, with where it was raised: the
/// error `call` fails with, printed by [`print`].
#[derive(Debug)]
pub struct RaisedRemotely {
    /// The exception.
    pub error: RemoteError,
    /// `object.method`, e.g. `sample.echo`.
    pub raised_by: String,
    /// The URI called.
    pub uri: String,
}

impl std::fmt::Display for RaisedRemotely {
    /// `builtins.ValueError: message (raised by sample.echo on PYRO:...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (raised by {} on {})",
            self.error.class, self.error.message, self.raised_by, self.uri
        )
    }
}

impl std::error::Error for RaisedRemotely {}

/// Prints `err` on stderr in the command line's style; the remote
/// traceback of a remote exception only when `verbose`.
pub fn print(err: &anyhow::Error, verbose: bool) {
    eprint!("{}", render(err, verbose));
}

/// The text [`print`] prints.
fn render(err: &anyhow::Error, verbose: bool) -> String {
    let mut lines = message_and_causes(err);
    let mut out = String::new();
    if !lines.is_empty() {
        out.push_str(&format!("error: {}\n", lines.remove(0)));
    }
    for cause in lines {
        out.push_str(&format!("  caused by: {cause}\n"));
    }
    if let Some(raised) = err.chain().find_map(|e| e.downcast_ref::<RaisedRemotely>()) {
        out.push_str(&traceback(&raised.error, verbose));
    }
    out
}

/// `err`'s message, then its causes, leaving out a cause whose text the
/// line before already ends with (an error that prints its cause and also
/// returns it as its source would otherwise say it twice).
fn message_and_causes(err: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if lines.last().is_some_and(|last| last.ends_with(&text)) {
            continue;
        }
        lines.push(text);
    }
    lines
}

/// The remote traceback, indented, when `verbose`; else a hint that `-v`
/// shows it (nothing when the exception came without one).
fn traceback(error: &RemoteError, verbose: bool) -> String {
    if error.traceback.is_empty() {
        return String::new();
    }
    if !verbose {
        return "  (-v shows the remote traceback)\n".to_owned();
    }
    let mut out = String::from("  remote traceback:\n");
    // Pyro5's traceback entries hold several lines each.
    for line in error.traceback.iter().flat_map(|entry| entry.lines()) {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_follow_on_their_own_lines_once_each() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(io).context("cannot read lab.yaml");
        assert_eq!(
            render(&err, false),
            "error: cannot read lab.yaml\n  caused by: no such file\n"
        );
        let err = anyhow::anyhow!("refused").context("cannot connect to x: refused");
        assert_eq!(render(&err, false), "error: cannot connect to x: refused\n");
    }

    #[test]
    fn a_remote_exception_says_where_it_was_raised_and_hides_its_traceback() {
        let raised = RaisedRemotely {
            error: RemoteError {
                class: "builtins.ValueError".to_owned(),
                message: "thing failed".to_owned(),
                traceback: vec!["Traceback:\n  line 1\n".to_owned()],
            },
            raised_by: "sample.fail".to_owned(),
            uri: "PYRO:sample@localhost:9100".to_owned(),
        };
        let err = anyhow::Error::new(raised);
        assert_eq!(
            render(&err, false),
            "error: builtins.ValueError: thing failed (raised by sample.fail on PYRO:sample@localhost:9100)\n  (-v shows the remote traceback)\n"
        );
        assert!(
            render(&err, true).ends_with("  remote traceback:\n    Traceback:\n      line 1\n")
        );
    }
}
