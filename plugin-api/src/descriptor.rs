//! Descriptions of the classes a library exports: their methods, parameters
//! and properties.
//!
//! The `#[service]` macro generates these; hosts read them to list and
//! inspect plugins, to know which methods are oneway, and to serve Pyro5's
//! `get_metadata`. They cross the plugin boundary as a self-describing
//! [`Value`](crate::Value) map, so fields can be added in later releases
//! without breaking older hosts or libraries (every field has a default).

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// Everything a library exports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibraryDescriptor {
    /// The crate name the library was built from (e.g. `"sample"`).
    pub crate_name: String,
    /// The `pyrolab-plugin-api` version the library was built against.
    pub plugin_api_version: String,
    /// The exported classes, in export order.
    pub classes: Vec<ClassDescriptor>,
}

/// One exported class (a driver type).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassDescriptor {
    /// The class name clients and configurations use (`classname:` in YAML).
    pub name: String,
    /// The documentation of the `#[service]` impl block.
    pub doc: String,
    /// The Rust type of the constructor's parameters (`None` when the class
    /// takes no parameters).
    pub parameters_type: Option<String>,
    /// The remotely callable methods, in declaration order.
    pub methods: Vec<MethodDescriptor>,
    /// The properties (`@property` in Python terms).
    pub properties: Vec<PropertyDescriptor>,
}

impl ClassDescriptor {
    /// Finds a method by name.
    pub fn method(&self, name: &str) -> Option<&MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// Finds a property by name.
    pub fn property(&self, name: &str) -> Option<&PropertyDescriptor> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// How a method borrows the driver, which decides what may run concurrently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Receiver {
    /// `&self`: may run concurrently with other `&self` calls.
    #[default]
    Shared,
    /// `&mut self`: runs alone on its instance.
    Exclusive,
}

/// One remotely callable method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MethodDescriptor {
    /// The method name.
    pub name: String,
    /// Its documentation comment.
    pub doc: String,
    /// Its parameters, in order (the receiver excluded).
    pub params: Vec<ParamDescriptor>,
    /// The type it returns (the `Ok` type of a `Result`).
    pub returns: TypeDescriptor,
    /// Whether it takes `&self` or `&mut self`.
    pub receiver: Receiver,
    /// Whether callers do not wait for it to finish (Pyro5 `@oneway`).
    pub oneway: bool,
    /// Whether it returns an item stream (`Stream`, `impl Iterator`),
    /// whose items the client takes one by one. A key of its own, absent
    /// when false, so that older hosts read the descriptor still.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub streams: bool,
    /// Whether it takes a [`CallContext`](crate::CallContext): the host
    /// then sends the call's context with its arguments (and only then).
    /// Absent when false, as `streams`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

impl MethodDescriptor {
    /// A Python-style signature: `checkout(title: str, quantity: int = 1) -> int`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(ParamDescriptor::signature).collect();
        format!(
            "{}({}) -> {}",
            self.name,
            params.join(", "),
            self.returns.python
        )
    }
}

/// How a parameter receives its argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Positional or keyword (a plain Python parameter).
    #[default]
    Normal,
    /// Collects the remaining positional arguments (Python `*args`).
    Variadic,
}

/// One method parameter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParamDescriptor {
    /// The parameter name (what keyword arguments use).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: TypeDescriptor,
    /// The default used when the caller omits it; `None` if it is required
    /// (the key is then absent from the encoding, so that a default of
    /// Python `None` stays distinguishable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Whether it is an ordinary or a variadic parameter.
    pub kind: ParamKind,
    /// Whether it collects the keyword arguments no other parameter takes
    /// (Python `**kwargs`). A map key of its own rather than a new `kind`,
    /// so that a host older than it reads the descriptor still (as an
    /// ordinary parameter), by the evolution policy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keywords: bool,
}

impl ParamDescriptor {
    /// A Python-style rendering: `quantity: int = 1`, `*values: float`.
    pub fn signature(&self) -> String {
        let star = match self.kind {
            _ if self.keywords => "**",
            ParamKind::Variadic => "*",
            ParamKind::Normal => "",
        };
        let mut out = format!("{star}{}: {}", self.name, self.ty.python);
        if let Some(default) = &self.default {
            out.push_str(&format!(" = {default}"));
        }
        out
    }
}

/// A type as written in Rust and as a Python type hint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TypeDescriptor {
    /// The Rust type as written in the driver (`u32`, `Vec<f64>`).
    pub rust: String,
    /// The equivalent Python type hint (`int`, `list[float]`).
    pub python: String,
}

/// A property: a getter, and optionally a setter (Python `@property`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PropertyDescriptor {
    /// The property name.
    pub name: String,
    /// The getter's documentation comment.
    pub doc: String,
    /// The property's type.
    #[serde(rename = "type")]
    pub ty: TypeDescriptor,
    /// Whether it can be assigned to.
    pub writable: bool,
}
