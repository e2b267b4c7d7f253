//! A YAML document as a tree whose every node knows where it was written,
//! so that configuration errors can name the line and column.
//!
//! Built from `saphyr-parser` events rather than through a serde loader
//! because the configuration reader needs what such loaders discard: the
//! position of every key and value, duplicate keys (which loaders silently
//! overwrite), and the scalar text as written (so that `version: 1.0` can be
//! read as the string "1.0", and `yes` as a boolean where one is expected).

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A position in the source: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it starts.
    pub mark: Mark,
}

/// The three kinds of YAML node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar, as written.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

/// A scalar's text and how it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The text (quotes and escapes already resolved).
    pub text: String,
    /// Whether it was written without quotes: only plain scalars can be
    /// `null`, booleans or numbers.
    pub plain: bool,
    /// An explicit tag such as `!!str`, as `handle + suffix`.
    pub tag: Option<String>,
}

impl Node {
    /// The scalar, if this is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    /// Whether this is a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        self.as_scalar().is_some_and(Scalar::is_null)
    }

    /// What kind of node this is, for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(scalar) if scalar.is_null() => "null".to_owned(),
            NodeKind::Scalar(scalar) => format!("{:?}", scalar.text),
            NodeKind::Seq(_) => "a list".to_owned(),
            NodeKind::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl Scalar {
    /// Whether this is a plain `null`, `Null`, `NULL`, `~` or empty scalar
    /// (or tagged `!!null`).
    pub fn is_null(&self) -> bool {
        match self.tag.as_deref() {
            Some(tag) => tag == "tag:yaml.org,2002:null",
            None => self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
        }
    }
}

/// A YAML syntax error.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub mark: Mark,
    /// What.
    pub message: String,
}

/// Parses one YAML document. Returns the root (`None` for an empty
/// document) and the duplicate keys found, or the first syntax error (after
/// which nothing else can be trusted).
pub fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|err| SyntaxError {
            mark: Mark {
                line: err.marker().line(),
                column: err.marker().col() + 1,
            },
            message: err.info().to_owned(),
        })?;
        builder.accept(event, &span)?;
    }
    Ok(Parsed {
        root: builder.root,
        duplicates: builder.duplicates,
    })
}

/// A parsed document.
#[derive(Debug)]
pub struct Parsed {
    /// The root node; `None` when the document is empty.
    pub root: Option<Node>,
    /// Keys that appear twice in one mapping (the later occurrence is
    /// kept out of the tree).
    pub duplicates: Vec<Duplicate>,
}

/// A key written twice in one mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// Where it is written again.
    pub mark: Mark,
    /// Where it was first written.
    pub first: Mark,
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

/// How deeply collections may nest: deeper is refused rather than risking
/// the stack when the tree is walked or dropped.
const MAX_DEPTH: usize = 256;

/// How many nodes aliases may add in all: a few anchors referring to each
/// other can otherwise expand exponentially (the "billion laughs").
const MAX_ALIASED_NODES: usize = 1_000_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes, with their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    aliased_nodes: usize,
    root: Option<Node>,
    documents: usize,
    duplicates: Vec<Duplicate>,
}

impl Builder {
    fn accept(&mut self, event: Event<'_>, span: &Span) -> Result<(), SyntaxError> {
        let mark = Mark::of(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        mark,
                        message:
                            "a configuration file holds one YAML document; found a second (`---`)"
                                .to_owned(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    kind: NodeKind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    }),
                    mark,
                };
                self.finish_node(node, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                return Err(SyntaxError {
                    mark,
                    message: format!("lists and mappings nested more than {MAX_DEPTH} levels deep"),
                });
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                mark,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                mark,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self
                    .stack
                    .pop()
                    .expect("the parser balances starts and ends");
                let (node, anchor) = match frame {
                    Frame::Seq {
                        mark,
                        anchor,
                        items,
                    } => (
                        Node {
                            kind: NodeKind::Seq(items),
                            mark,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        mark,
                        anchor,
                        entries,
                        ..
                    } => (
                        Node {
                            kind: NodeKind::Map(self.merge_and_dedupe(entries)),
                            mark,
                        },
                        anchor,
                    ),
                };
                self.finish_node(node, anchor);
            }
            Event::Alias(anchor) => {
                let (node, size) = self.anchors.get(&anchor).cloned().ok_or(SyntaxError {
                    mark,
                    message: "alias to an unknown anchor".to_owned(),
                })?;
                self.aliased_nodes += size;
                if self.aliased_nodes > MAX_ALIASED_NODES {
                    return Err(SyntaxError {
                        mark,
                        message: format!(
                            "aliases expand the document to more than {MAX_ALIASED_NODES} nodes"
                        ),
                    });
                }
                self.finish_node(node, 0);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn finish_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            let size = node_count(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }

    /// Applies YAML merge keys (`<<: *defaults`, as PyYAML does) and drops
    /// the second occurrence of any duplicated key, recording it. Linear in
    /// the entries: keys already seen are looked up, not searched for.
    fn merge_and_dedupe(&mut self, entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
        let mut own: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut seen = SeenKeys::default();
        let mut merged: Vec<(Node, Node)> = Vec::new();
        for (key, value) in entries {
            if is_merge_key(&key) {
                merged.extend(merge_sources(value));
                continue;
            }
            match seen.first(&own, &key) {
                Some(first) => self.duplicates.push(Duplicate {
                    key: key_text(&key),
                    mark: key.mark,
                    first,
                }),
                None => {
                    seen.add(&key, own.len());
                    own.push((key, value));
                }
            }
        }
        for (key, value) in merged {
            if seen.first(&own, &key).is_none() {
                seen.add(&key, own.len());
                own.push((key, value));
            }
        }
        own
    }
}

/// The keys of a mapping so far ([`same_key`]'s equality): scalars by
/// their text, the rare others (a list or mapping as a key) in a list.
#[derive(Default)]
struct SeenKeys {
    scalars: HashMap<String, Mark>,
    others: Vec<usize>,
}

impl SeenKeys {
    /// Where `key` first came, if it has (`own`: the entries kept so far).
    fn first(&self, own: &[(Node, Node)], key: &Node) -> Option<Mark> {
        match key.as_scalar() {
            Some(scalar) => self.scalars.get(&scalar.text).copied(),
            None => self
                .others
                .iter()
                .map(|&at| &own[at].0)
                .find(|other| same_key(other, key))
                .map(|other| other.mark),
        }
    }

    /// Notes `key`, kept at `own[at]`.
    fn add(&mut self, key: &Node, at: usize) {
        match key.as_scalar() {
            Some(scalar) => {
                self.scalars.insert(scalar.text.clone(), key.mark);
            }
            None => self.others.push(at),
        }
    }
}

/// The number of nodes in a tree (bounded in depth by [`MAX_DEPTH`]).
fn node_count(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Scalar(_) => 0,
        NodeKind::Seq(items) => items.iter().map(node_count).sum(),
        NodeKind::Map(entries) => entries
            .iter()
            .map(|(k, v)| node_count(k) + node_count(v))
            .sum(),
    }
}

fn is_merge_key(key: &Node) -> bool {
    key.as_scalar()
        .is_some_and(|s| s.plain && s.text == "<<" && s.tag.is_none())
}

/// The mappings a merge key's value names: one mapping, or a list of them.
fn merge_sources(value: Node) -> Vec<(Node, Node)> {
    match value.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Seq(items) => items
            .into_iter()
            .flat_map(|item| match item.kind {
                NodeKind::Map(entries) => entries,
                _ => Vec::new(),
            })
            .collect(),
        NodeKind::Scalar(_) => Vec::new(),
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (a.as_scalar(), b.as_scalar()) {
        (Some(a), Some(b)) => a.text == b.text,
        _ => a.kind == b.kind,
    }
}

fn key_text(key: &Node) -> String {
    match key.as_scalar() {
        Some(scalar) => scalar.text.clone(),
        None => key.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    fn entries(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Map(entries) => entries,
            other => panic!("expected a mapping, found {other:?}"),
        }
    }

    #[test]
    fn nodes_know_their_line_and_column() {
        let node = root("a: 1\nb:\n  c: [x, y]\n");
        let map = entries(&node);
        assert_eq!(map[0].0.mark, Mark { line: 1, column: 1 });
        assert_eq!(map[0].1.mark, Mark { line: 1, column: 4 });
        let inner = entries(&map[1].1);
        assert_eq!(inner[0].0.mark, Mark { line: 3, column: 3 });
    }

    #[test]
    fn quoted_scalars_are_not_plain() {
        let node = root("a: 'null'\nb: null\nc: ~\nd:\n");
        let map = entries(&node);
        assert!(!map[0].1.is_null());
        assert!(map[1].1.is_null() && map[2].1.is_null() && map[3].1.is_null());
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_places() {
        let parsed = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(
            parsed.duplicates,
            [Duplicate {
                key: "a".into(),
                mark: Mark { line: 3, column: 1 },
                first: Mark { line: 1, column: 1 },
            }]
        );
        assert_eq!(entries(&parsed.root.unwrap()).len(), 2);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_work() {
        let node = root("base: &b {host: localhost, port: 1}\nd:\n  <<: *b\n  port: 2\n");
        let d = &entries(&node)[1].1;
        let keys: Vec<(&str, &str)> = entries(d)
            .iter()
            .map(|(k, v)| {
                (
                    k.as_scalar().unwrap().text.as_str(),
                    v.as_scalar().unwrap().text.as_str(),
                )
            })
            .collect();
        assert_eq!(keys, [("port", "2"), ("host", "localhost")]);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn a_second_document_is_refused() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.mark.line, 2);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let previous = format!("*a{}", i - 1);
            let items = [previous.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{err:?}");
    }

    #[test]
    fn absurd_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        // Refused by the parser's own recursion limit or by ours, whichever
        // comes first: either way an error with a place, not a crash.
        let err = parse(&text).unwrap_err();
        assert!(
            err.message.contains("nested more than 256") || err.message.contains("recursion limit"),
            "{err:?}"
        );
        assert_eq!(err.mark.line, 1);
    }

    #[test]
    fn an_empty_document_has_no_root() {
        assert!(parse("# nothing\n").unwrap().root.is_none());
    }
}
