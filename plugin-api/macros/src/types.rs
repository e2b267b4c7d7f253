//! Renders Rust types for descriptors: as written, and as the Python type
//! hint a Python user would expect (`Vec<f64>` is `list[float]`).

use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// A type as Rust text and as a Python hint.
pub struct Rendered {
    pub rust: String,
    pub python: String,
}

pub fn unit() -> Rendered {
    Rendered {
        rust: "()".to_owned(),
        python: "None".to_owned(),
    }
}

pub fn render(ty: &Type) -> Rendered {
    Rendered {
        rust: rust_text(ty),
        python: python_hint(ty),
    }
}

/// The type as written, without the spaces token printing inserts.
pub fn rust_text(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" , ", ", "),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("[ ", "["),
        (" ]", "]"),
        (" ; ", "; "),
        ("( ", "("),
        (" )", ")"),
    ] {
        text = text.replace(from, to);
    }
    text
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

fn generic_args(segment: &syn::PathSegment) -> Vec<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `T` of a `Result<T, E>` (or of a `Result<T>` alias), by name.
pub fn result_ok_type(ty: &Type) -> Option<Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Result" {
        return None;
    }
    match generic_args(segment).first() {
        Some(ok) => Some((*ok).clone()),
        None => Some(syn::parse_quote!(())),
    }
}

/// How a method's result is an item stream, by how its type is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// It is not one.
    No,
    /// `Stream`: the SDK's stream type.
    Stream,
    /// `impl Iterator<Item = T>`.
    Iterator,
    /// `impl Iterator<Item = Result<T, E>>`: an error ends the stream.
    FallibleIterator,
}

/// Whether, and how, a result of type `ty` is an item stream.
pub fn streams(ty: &Type) -> Streams {
    if last_segment(ty).is_some_and(|s| s.ident == "Stream" && generic_args(s).is_empty()) {
        return Streams::Stream;
    }
    match iterator_item(ty) {
        Some(item) if result_ok_type(&item).is_some() => Streams::FallibleIterator,
        Some(_) => Streams::Iterator,
        None => Streams::No,
    }
}

/// `T` of an `impl Iterator<Item = T>`.
fn iterator_item(ty: &Type) -> Option<Type> {
    let Type::ImplTrait(bounds) = ty else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let segment = bound.path.segments.last()?;
        if segment.ident != "Iterator" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(assoc.ty.clone()),
            _ => None,
        })
    })
}

/// Whether the type is written `HashSet<..>` or `BTreeSet<..>`.
pub fn is_set(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "HashSet" || s.ident == "BTreeSet")
}

pub fn is_option(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Option")
}

/// `T` of a `Vec<T>`.
pub fn vec_element(ty: &Type) -> Option<Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "Vec" {
        return None;
    }
    generic_args(segment).first().map(|t| (*t).clone())
}

/// The value type `T` of a `BTreeMap<String, T>` or `HashMap<String, T>`.
pub fn map_value(ty: &Type) -> Option<Type> {
    let segment = last_segment(ty)?;
    if segment.ident != "BTreeMap" && segment.ident != "HashMap" {
        return None;
    }
    generic_args(segment).get(1).map(|t| (*t).clone())
}

fn python_hint(ty: &Type) -> String {
    match ty {
        Type::Reference(reference) => python_hint(&reference.elem),
        Type::Paren(inner) => python_hint(&inner.elem),
        Type::Group(inner) => python_hint(&inner.elem),
        Type::Tuple(tuple) if tuple.elems.is_empty() => "None".to_owned(),
        Type::Tuple(tuple) => {
            let items: Vec<String> = tuple.elems.iter().map(python_hint).collect();
            format!("tuple[{}]", items.join(", "))
        }
        Type::Slice(slice) => sequence_hint(&slice.elem),
        Type::Array(array) => sequence_hint(&array.elem),
        Type::Path(_) => path_hint(ty),
        Type::ImplTrait(_) => match iterator_item(ty) {
            Some(item) => match result_ok_type(&item) {
                Some(ok) => format!("Iterator[{}]", python_hint(&ok)),
                None => format!("Iterator[{}]", python_hint(&item)),
            },
            None => rust_text(ty),
        },
        other => rust_text(other),
    }
}

fn sequence_hint(element: &Type) -> String {
    if last_segment(element).is_some_and(|s| s.ident == "u8") {
        "bytes".to_owned()
    } else {
        format!("list[{}]", python_hint(element))
    }
}

fn path_hint(ty: &Type) -> String {
    let Some(segment) = last_segment(ty) else {
        return rust_text(ty);
    };
    let args = generic_args(segment);
    let name = segment.ident.to_string();
    match (name.as_str(), args.as_slice()) {
        ("String" | "str" | "char" | "PathBuf" | "Path" | "Cow", _) => "str".to_owned(),
        (
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
            | "usize",
            _,
        ) => "int".to_owned(),
        ("f32" | "f64", _) => "float".to_owned(),
        ("bool", _) => "bool".to_owned(),
        ("Bytes" | "ByteBuf", _) => "bytes".to_owned(),
        ("Value", _) => "Any".to_owned(),
        ("Stream", []) => "Iterator[Any]".to_owned(),
        ("BigInt", _) => "int".to_owned(),
        ("Complex", _) => "complex".to_owned(),
        ("HashSet" | "BTreeSet", [element]) => format!("set[{}]", python_hint(element)),
        ("Vec" | "VecDeque", [element]) => sequence_hint(element),
        ("Box" | "Arc" | "Rc", [inner]) => python_hint(inner),
        ("Option", [inner]) => format!("{} | None", python_hint(inner)),
        ("HashMap" | "BTreeMap", [key, value]) => {
            format!("dict[{}, {}]", python_hint(key), python_hint(value))
        }
        _ => rust_text(ty),
    }
}

/// Whether `ty` is `&CallContext` (any path ending in `CallContext`): the
/// call's context, which the host gives rather than the caller.
pub fn is_call_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    if reference.mutability.is_some() {
        return false;
    }
    match &*reference.elem {
        Type::Path(path) => {
            path.path.segments.last().is_some_and(|segment| {
                segment.ident == "CallContext" && segment.arguments.is_none()
            })
        }
        _ => false,
    }
}
