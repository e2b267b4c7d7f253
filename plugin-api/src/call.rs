//! [`CallArgs`]: the positional and keyword arguments of one call, and the
//! [`Arguments`] parser that binds them to a method's parameters the way
//! Python does.

use serde::de::DeserializeOwned;

use crate::error::DriverError;
use crate::value::{self, Value, ValueError};

/// The arguments of one call: `method(*args, **kwargs)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallArgs {
    /// Positional arguments, in order.
    pub args: Vec<Value>,
    /// Keyword arguments, in the order the caller gave them.
    pub kwargs: Vec<(String, Value)>,
}

impl CallArgs {
    /// Arguments with only positional values.
    pub fn positional(args: Vec<Value>) -> Self {
        CallArgs {
            args,
            kwargs: Vec::new(),
        }
    }

    /// Adds a keyword argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.kwargs.push((name.into(), value.into()));
        self
    }

    /// The form in which arguments cross the plugin boundary:
    /// `{"args": [...], "kwargs": {...}}`.
    pub fn into_value(self) -> Value {
        let kwargs = self
            .kwargs
            .into_iter()
            .map(|(name, value)| (Value::Str(name), value))
            .collect();
        Value::Map(vec![
            (Value::from("args"), Value::List(self.args)),
            (Value::from("kwargs"), Value::Map(kwargs)),
        ])
    }

    /// The encoding of [`CallArgs::into_value`], built from an encoded list
    /// of positional arguments and an encoded map of keyword arguments: a
    /// host passes a client's arguments on this way without decoding them.
    pub fn encode_from_parts(args: &[u8], kwargs: &[u8]) -> Vec<u8> {
        value::encode_map_of_encoded(&[("args", args), ("kwargs", kwargs)])
    }

    /// Decodes arguments encoded as [`CallArgs::into_value`] (what crosses
    /// the plugin boundary), as `CallArgs::from_value(value::decode(bytes)?)`
    /// would but without building the outer map.
    pub fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        value::decode_call_args(bytes)
    }

    /// Reads arguments from the form [`CallArgs::into_value`] produces.
    /// Unknown keys are ignored (later hosts may send more).
    pub fn from_value(value: Value) -> Result<Self, ValueError> {
        let Value::Map(entries) = value else {
            return Err(ValueError::new(format!(
                "call arguments must be a map, found {}",
                value.type_name()
            )));
        };
        let mut call = CallArgs::default();
        for (key, value) in entries {
            if let Some(key) = key.as_str() {
                call.set(key, value)?;
            }
        }
        Ok(call)
    }

    /// Takes one entry of the encoded form: `args` or `kwargs` (other keys
    /// are ignored: later hosts may send more).
    pub(crate) fn set(&mut self, key: &str, value: Value) -> Result<(), ValueError> {
        match (key, value) {
            ("args", Value::List(args) | Value::Tuple(args)) => self.args = args,
            ("kwargs", Value::Map(kwargs)) => {
                self.kwargs = kwargs
                    .into_iter()
                    .map(|(name, value)| match name {
                        Value::Str(name) => Ok((name, value)),
                        other => Err(ValueError::new(format!(
                            "keyword argument names must be strings, found {}",
                            other.type_name()
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
            }
            ("args" | "kwargs", other) => {
                return Err(ValueError::new(format!(
                    "malformed call arguments: unexpected {}",
                    other.type_name()
                )));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Binds a call's arguments to a method's parameters, with Python's rules
/// and Python's error messages (all `TypeError`s naming the parameter).
///
/// Used by code the [`service`](crate::service) macro generates.
#[doc(hidden)]
pub struct Arguments {
    method: &'static str,
    positional: Vec<Option<Value>>,
    kwargs: Vec<(String, Value)>,
    params: &'static [&'static str],
    next_variadic: usize,
}

/// Whether a method takes keywords beyond its parameters (`**kwargs`).
#[doc(hidden)]
pub type Keywords = Option<&'static str>;

impl Arguments {
    /// Checks the call's shape against the parameter list: too many
    /// positional arguments, unknown keywords, and a parameter given twice
    /// are refused here, before any argument is converted.
    pub fn new(
        method: &'static str,
        params: &'static [&'static str],
        variadic: Option<&'static str>,
        keywords: Keywords,
        call: CallArgs,
    ) -> Result<Self, DriverError> {
        let fixed = params.len();
        if variadic.is_none() && call.args.len() > fixed {
            return Err(DriverError::type_error(format!(
                "{method}() takes {fixed} positional argument{} but {} {} given",
                plural(fixed),
                call.args.len(),
                if call.args.len() == 1 { "was" } else { "were" }
            )));
        }
        for (name, _) in &call.kwargs {
            match params.iter().position(|p| p == name) {
                None if keywords.is_some() => {}
                None => {
                    return Err(DriverError::type_error(format!(
                        "{method}() got an unexpected keyword argument '{name}'"
                    )));
                }
                Some(index) if index < call.args.len() => {
                    return Err(DriverError::type_error(format!(
                        "{method}() got multiple values for argument '{name}'"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some(duplicate) = first_duplicate(&call.kwargs) {
            return Err(DriverError::type_error(format!(
                "{method}() got multiple values for keyword argument '{duplicate}'"
            )));
        }
        Ok(Arguments {
            method,
            positional: call.args.into_iter().map(Some).collect(),
            kwargs: call.kwargs,
            params,
            next_variadic: fixed,
        })
    }

    /// Takes the argument for parameter `index`, positional or keyword.
    fn take(&mut self, index: usize) -> Option<Value> {
        if let Some(slot) = self.positional.get_mut(index) {
            return slot.take();
        }
        let name = self.params[index];
        let at = self.kwargs.iter().position(|(k, _)| k == name)?;
        Some(self.kwargs.swap_remove(at).1)
    }

    /// The argument for a required parameter.
    pub fn required<T: DeserializeOwned>(&mut self, index: usize) -> Result<T, DriverError> {
        match self.take(index) {
            Some(value) => self.convert(index, value),
            None => Err(DriverError::type_error(format!(
                "{}() missing required argument: '{}'",
                self.method, self.params[index]
            ))),
        }
    }

    /// The argument for a parameter with a default: `default` supplies the
    /// value the caller would have passed.
    pub fn optional<T: DeserializeOwned>(
        &mut self,
        index: usize,
        default: impl FnOnce() -> Result<Value, ValueError>,
    ) -> Result<T, DriverError> {
        let value = match self.take(index) {
            Some(value) => value,
            None => default().map_err(|err| {
                DriverError::runtime(format!(
                    "{}(): default of '{}' cannot be encoded: {err}",
                    self.method, self.params[index]
                ))
            })?,
        };
        self.convert(index, value)
    }

    /// All remaining positional arguments (Python `*args`).
    pub fn variadic<T: DeserializeOwned>(&mut self, name: &str) -> Result<Vec<T>, DriverError> {
        let rest = self
            .positional
            .split_off(self.next_variadic.min(self.positional.len()));
        rest.into_iter()
            .flatten()
            .enumerate()
            .map(|(i, value)| {
                value::from_value(value).map_err(|err| {
                    DriverError::type_error(format!(
                        "{}() argument {} of '*{name}': {err}",
                        self.method,
                        i + 1
                    ))
                })
            })
            .collect()
    }

    /// The keyword arguments no parameter took, for a `**name` parameter
    /// (bound after every other).
    pub fn keywords<T: DeserializeOwned>(
        &mut self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, T>, DriverError> {
        std::mem::take(&mut self.kwargs)
            .into_iter()
            .map(|(key, value)| {
                let value = value::from_value(value).map_err(|err| {
                    DriverError::type_error(format!(
                        "{}() keyword argument '{key}' of '**{name}': {err}",
                        self.method
                    ))
                })?;
                Ok((key, value))
            })
            .collect()
    }

    fn convert<T: DeserializeOwned>(&self, index: usize, value: Value) -> Result<T, DriverError> {
        value::from_value(value).map_err(|err| {
            DriverError::type_error(format!(
                "{}() argument '{}': {err}",
                self.method, self.params[index]
            ))
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn first_duplicate(kwargs: &[(String, Value)]) -> Option<&str> {
    kwargs
        .iter()
        .enumerate()
        .find(|(i, (name, _))| kwargs[..*i].iter().any(|(earlier, _)| earlier == name))
        .map(|(_, (name, _))| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[&str] = &["title", "quantity"];

    fn bind(call: CallArgs) -> Result<(String, u32), DriverError> {
        let mut args = Arguments::new("checkout", PARAMS, None, None, call)?;
        let title = args.required(0)?;
        let quantity = args.optional(1, || Ok(Value::Int(1)))?;
        Ok((title, quantity))
    }

    #[test]
    fn a_keywords_parameter_takes_what_no_other_parameter_names() {
        let call = CallArgs::positional(vec![Value::from("Dune")])
            .kwarg("colour", "red")
            .kwarg("quantity", 2);
        let mut args = Arguments::new("checkout", PARAMS, None, Some("rest"), call).unwrap();
        let title: String = args.required(0).unwrap();
        let quantity: i64 = args.optional(1, || Ok(Value::Int(1))).unwrap();
        let rest: std::collections::BTreeMap<String, String> = args.keywords("rest").unwrap();
        assert_eq!((title.as_str(), quantity), ("Dune", 2));
        assert_eq!(
            rest.into_iter().collect::<Vec<_>>(),
            [("colour".to_owned(), "red".to_owned())]
        );
        // A parameter given twice is still refused, keywords or not.
        let twice = CallArgs::positional(vec![Value::from("Dune")]).kwarg("title", "Emma");
        let err = Arguments::new("checkout", PARAMS, None, Some("rest"), twice)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("multiple values for argument 'title'"),
            "{err}"
        );
    }

    #[test]
    fn positional_keyword_and_default_arguments_bind() {
        let call = CallArgs::positional(vec![Value::from("Dune")]);
        assert_eq!(bind(call).unwrap(), ("Dune".into(), 1));
        let call = CallArgs::positional(vec![Value::from("Dune")]).kwarg("quantity", 2);
        assert_eq!(bind(call).unwrap(), ("Dune".into(), 2));
        let call = CallArgs::default()
            .kwarg("quantity", 3)
            .kwarg("title", "Emma");
        assert_eq!(bind(call).unwrap(), ("Emma".into(), 3));
    }

    #[test]
    fn python_style_type_errors_name_the_parameter() {
        let message = |call| bind(call).unwrap_err().message().to_owned();
        assert_eq!(
            message(CallArgs::default()),
            "checkout() missing required argument: 'title'"
        );
        assert_eq!(
            message(CallArgs::positional(vec!["a".into(), 1.into(), 2.into()])),
            "checkout() takes 2 positional arguments but 3 were given"
        );
        assert_eq!(
            message(CallArgs::positional(vec!["a".into()]).kwarg("colour", 1)),
            "checkout() got an unexpected keyword argument 'colour'"
        );
        assert_eq!(
            message(CallArgs::positional(vec!["a".into()]).kwarg("title", "b")),
            "checkout() got multiple values for argument 'title'"
        );
        let wrong = message(CallArgs::positional(vec!["a".into(), "many".into()]));
        assert!(
            wrong.starts_with("checkout() argument 'quantity': "),
            "{wrong}"
        );
    }

    #[test]
    fn call_args_round_trip_through_value() {
        let call = CallArgs::positional(vec![1.into()]).kwarg("x", "y");
        assert_eq!(
            CallArgs::from_value(call.clone().into_value()).unwrap(),
            call
        );
        assert_eq!(
            CallArgs::decode(&value::encode(&call.clone().into_value())).unwrap(),
            call
        );
        let args = value::encode(&Value::List(call.args.clone()));
        let kwargs = value::encode(&call.clone().into_value().get("kwargs").unwrap().clone());
        assert_eq!(
            CallArgs::encode_from_parts(&args, &kwargs),
            value::encode(&call.into_value())
        );
    }
}
