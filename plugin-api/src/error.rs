//! [`DriverError`]: what a driver returns when a call fails, carrying the
//! kind of Python exception a Python client will see.

use std::fmt;

use crate::value::{Value, ValueError};

/// The kind of a [`DriverError`], named after the Python builtin exception a
/// Python client receives for it.
///
/// New kinds may be added in minor releases; a host that does not know a
/// kind reports it as [`ErrorKind::RuntimeError`] and keeps the original name
/// in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument has the right type but an unacceptable value.
    ValueError,
    /// An argument has the wrong type, or a call has missing or extra arguments.
    TypeError,
    /// A key was not found in a mapping.
    KeyError,
    /// An index is out of range.
    IndexError,
    /// A lookup (by key, name or title) found nothing.
    LookupError,
    /// The object has no such method or attribute.
    AttributeError,
    /// An operation timed out (an instrument did not answer in time).
    TimeoutError,
    /// A connection (to an instrument or another service) failed.
    ConnectionError,
    /// A connection was refused (for example, a locked service).
    ConnectionRefusedError,
    /// The caller may not do this.
    PermissionError,
    /// A file or device was not found.
    FileNotFoundError,
    /// An operating-system or I/O error.
    OSError,
    /// The operation is not implemented by this driver.
    NotImplementedError,
    /// Division by zero.
    ZeroDivisionError,
    /// A numeric result is out of range.
    OverflowError,
    /// An error that fits no other kind. This is what a driver panic becomes.
    RuntimeError,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::ValueError,
        ErrorKind::TypeError,
        ErrorKind::KeyError,
        ErrorKind::IndexError,
        ErrorKind::LookupError,
        ErrorKind::AttributeError,
        ErrorKind::TimeoutError,
        ErrorKind::ConnectionError,
        ErrorKind::ConnectionRefusedError,
        ErrorKind::PermissionError,
        ErrorKind::FileNotFoundError,
        ErrorKind::OSError,
        ErrorKind::NotImplementedError,
        ErrorKind::ZeroDivisionError,
        ErrorKind::OverflowError,
        ErrorKind::RuntimeError,
    ];

    /// The name of the Python builtin exception for this kind.
    pub fn python_name(self) -> &'static str {
        match self {
            ErrorKind::ValueError => "ValueError",
            ErrorKind::TypeError => "TypeError",
            ErrorKind::KeyError => "KeyError",
            ErrorKind::IndexError => "IndexError",
            ErrorKind::LookupError => "LookupError",
            ErrorKind::AttributeError => "AttributeError",
            ErrorKind::TimeoutError => "TimeoutError",
            ErrorKind::ConnectionError => "ConnectionError",
            ErrorKind::ConnectionRefusedError => "ConnectionRefusedError",
            ErrorKind::PermissionError => "PermissionError",
            ErrorKind::FileNotFoundError => "FileNotFoundError",
            ErrorKind::OSError => "OSError",
            ErrorKind::NotImplementedError => "NotImplementedError",
            ErrorKind::ZeroDivisionError => "ZeroDivisionError",
            ErrorKind::OverflowError => "OverflowError",
            ErrorKind::RuntimeError => "RuntimeError",
        }
    }

    /// The kind for a Python exception name, if it is one of ours.
    pub fn from_python_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.python_name() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.python_name())
    }
}

/// A failed driver call or construction: a kind, a message, and a
/// traceback-like list of context lines (outermost last).
///
/// ```
/// use pyrolab_plugin_api::{DriverError, ErrorKind};
///
/// let err = DriverError::lookup(format!("no book titled {:?}", "Dune"));
/// assert_eq!(err.kind(), ErrorKind::LookupError);
/// assert_eq!(err.to_string(), "LookupError: no book titled \"Dune\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverError {
    kind: ErrorKind,
    message: String,
    context: Vec<String>,
}

/// The result type of driver methods.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

impl DriverError {
    /// Creates an error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DriverError {
            kind,
            message: message.into(),
            context: Vec::new(),
        }
    }

    /// A `ValueError`: an argument has an unacceptable value.
    pub fn value(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValueError, message)
    }

    /// A `TypeError`: an argument has the wrong type.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TypeError, message)
    }

    /// A `LookupError`: nothing found under that name.
    pub fn lookup(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LookupError, message)
    }

    /// A `KeyError`: no such key.
    pub fn key(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::KeyError, message)
    }

    /// A `TimeoutError`: the instrument did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TimeoutError, message)
    }

    /// A `ConnectionError`: the instrument could not be reached.
    pub fn connection(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ConnectionError, message)
    }

    /// A `RuntimeError`: anything else.
    pub fn runtime(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RuntimeError, message)
    }

    /// Adds a context line (what was being done when the error happened).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context.push(context.into());
        self
    }

    /// The kind of Python exception this maps to.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The context lines, innermost first.
    pub fn context_lines(&self) -> &[String] {
        &self.context
    }

    /// Encodes the error as a self-describing [`Value`] map (the form in
    /// which errors cross the plugin boundary; unknown keys are ignored on
    /// decoding, so fields can be added later).
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::from("kind"), Value::from(self.kind.python_name())),
            (Value::from("message"), Value::from(self.message.clone())),
            (
                Value::from("context"),
                Value::List(
                    self.context
                        .iter()
                        .map(|c| Value::from(c.as_str()))
                        .collect(),
                ),
            ),
        ])
    }

    /// Decodes an error encoded by [`DriverError::to_value`]. An unknown kind
    /// becomes a `RuntimeError` whose message keeps the original name.
    pub fn from_value(value: &Value) -> std::result::Result<Self, ValueError> {
        let kind_name = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| ValueError::new("error value has no \"kind\""))?;
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let context = value
            .get("context")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|line| line.as_str().map(str::to_owned))
            .collect();
        let (kind, message) = match ErrorKind::from_python_name(kind_name) {
            Some(kind) => (kind, message.to_owned()),
            None => (ErrorKind::RuntimeError, format!("{kind_name}: {message}")),
        };
        Ok(DriverError {
            kind,
            message,
            context,
        })
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for DriverError {}

impl From<std::io::Error> for DriverError {
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::TimedOut | Io::WouldBlock => ErrorKind::TimeoutError,
            Io::NotFound => ErrorKind::FileNotFoundError,
            Io::PermissionDenied => ErrorKind::PermissionError,
            Io::ConnectionRefused => ErrorKind::ConnectionRefusedError,
            Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::AddrNotAvailable => ErrorKind::ConnectionError,
            Io::InvalidInput | Io::InvalidData => ErrorKind::ValueError,
            Io::Unsupported => ErrorKind::NotImplementedError,
            _ => ErrorKind::OSError,
        };
        DriverError::new(kind, err.to_string())
    }
}

impl From<ValueError> for DriverError {
    fn from(err: ValueError) -> Self {
        DriverError::type_error(err.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_python_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_python_name(kind.python_name()), Some(*kind));
        }
    }

    #[test]
    fn error_round_trips_through_value() {
        let err = DriverError::value("not enough copies").context("while checking out 'Dune'");
        assert_eq!(DriverError::from_value(&err.to_value()).unwrap(), err);
    }

    #[test]
    fn unknown_kind_becomes_runtime_error_keeping_the_name() {
        let value = Value::Map(vec![
            (Value::from("kind"), Value::from("BrandNewError")),
            (Value::from("message"), Value::from("boom")),
        ]);
        let err = DriverError::from_value(&value).unwrap();
        assert_eq!(err.kind(), ErrorKind::RuntimeError);
        assert_eq!(err.message(), "BrandNewError: boom");
    }

    #[test]
    fn io_timeouts_become_timeout_errors() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply");
        assert_eq!(DriverError::from(io).kind(), ErrorKind::TimeoutError);
    }
}
