//! Plain-text tables, the one style of every listing (`ps`, `ps --lab`,
//! `up`, `info`, `nslist`, `plugins list`, `tls show`): columns padded to
//! their widest cell, two spaces apart, no trailing spaces; column headers
//! in capitals. A listing of one table prints it bare ([`render`]); one of
//! several gives each a title in sentence case, its rows indented, and
//! `(none)` for an empty one ([`titled`]). Scripts read `--json` instead
//! (docs/cli-json.md).

use std::fmt::Write as _;

/// The rows under `headers`, each line starting with `indent`.
pub(super) fn render(indent: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut all = vec![headers];
    all.extend(rows.iter().cloned());
    self::rows(indent, &all)
}

/// Rows without a header, each line starting with `indent`.
pub(super) fn rows(indent: &str, rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|row| row.get(i).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        format!("{indent}{}\n", padded.join("  ").trim_end())
    };
    rows.iter()
        .map(|row| line(&mut row.iter().map(String::as_str)))
        .collect()
}

/// Appends a titled table (`(none)` when it has no rows), a blank line
/// before it unless it is the first.
pub(super) fn titled(out: &mut String, title: &str, headers: &[&str], rows: &[Vec<String>]) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{title}");
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    out.push_str(&render("  ", headers, rows));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_lines_end_without_spaces() {
        let rows = vec![
            vec!["library".to_owned(), "PYRO:x".to_owned(), String::new()],
            vec!["ünï".to_owned(), "y".to_owned(), "z".to_owned()],
        ];
        assert_eq!(
            render("", &["NAME", "URI", "DESCRIPTION"], &rows),
            "NAME     URI     DESCRIPTION\nlibrary  PYRO:x\nünï      y       z\n"
        );
        let mut out = String::new();
        titled(&mut out, "Empty", &["A"], &[]);
        assert_eq!(out, "Empty\n  (none)\n");
    }
}
