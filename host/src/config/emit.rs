//! Writes a configuration as YAML: the stored form, and `config export`.
//!
//! Every default is written out, so the file documents what will run. The
//! output reads back to the same configuration (a test checks), and stays
//! readable by PyroLab's own loader: strings that YAML 1.1 or 1.2 could take
//! for anything else are quoted.

use std::fmt::Write as _;

use pyrolab_plugin_api::{Value, to_value};

use super::schema::LaunchConfig;

/// The configuration as a YAML document.
pub fn to_yaml(config: &LaunchConfig) -> String {
    let value = to_value(config).expect("a configuration always converts to a Value");
    let mut out = String::from("# pyrolab-host launch configuration (every default written out)\n");
    if let Value::Map(entries) = &value {
        for (key, value) in entries {
            write_entry(&mut out, 0, key, value);
        }
    }
    out
}

fn write_entry(out: &mut String, indent: usize, key: &Value, value: &Value) {
    let _ = write!(out, "{:indent$}{}:", "", scalar(key));
    write_block(out, indent, value);
}

/// Writes the value after `key:` or `-`: inline for scalars and empty
/// collections, on the following lines otherwise.
fn write_block(out: &mut String, indent: usize, value: &Value) {
    match value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            for (key, value) in entries {
                write_entry(out, indent + 2, key, value);
            }
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items)
            if !items.is_empty() =>
        {
            out.push('\n');
            for item in items {
                let _ = write!(out, "{:indent$}-", "", indent = indent + 2);
                write_block(out, indent + 2, item);
            }
        }
        other => {
            let _ = writeln!(out, " {}", scalar(other));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => ".nan".to_owned(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.to_owned(),
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => string(s),
        Value::Bytes(b) => format!(
            "[{}]",
            b.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
        ),
        Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::FrozenSet(_) => "[]".to_owned(),
        Value::Map(_) => "{}".to_owned(),
        Value::BigInt(n) => n.to_string(),
        // YAML has no complex numbers: Python's text of one.
        Value::Complex(c) => string(&c.to_string()),
    }
}

/// A string, plain when no YAML reader could take it for something else,
/// double-quoted (with JSON-compatible escapes) otherwise.
fn string(text: &str) -> String {
    if is_safe_plain(text) {
        text.to_owned()
    } else {
        let mut quoted = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                '\n' => quoted.push_str("\\n"),
                '\t' => quoted.push_str("\\t"),
                '\r' => quoted.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(quoted, "\\u{:04x}", c as u32);
                }
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        quoted
    }
}

fn is_safe_plain(text: &str) -> bool {
    const RESERVED: &[&str] = &[
        "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE", "yes",
        "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
    ];
    let Some(first) = text.chars().next() else {
        return false;
    };
    let looks_numeric = text
        .trim_start_matches(['-', '+', '.'])
        .starts_with(|c: char| c.is_ascii_digit());
    (first.is_alphanumeric() || first == '/' || first == '_')
        && !RESERVED.contains(&text)
        && !looks_numeric
        && !text.ends_with(' ')
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || " _./-@+(),".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        assert_eq!(string("localhost"), "localhost");
        assert_eq!(string("Library catalog system"), "Library catalog system");
        assert_eq!(string("1.0"), "\"1.0\"");
        assert_eq!(string("yes"), "\"yes\"");
        assert_eq!(string(""), "\"\"");
        assert_eq!(string("a: b"), "\"a: b\"");
        assert_eq!(string("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(string("10.0.0.1"), "\"10.0.0.1\"");
    }
}
