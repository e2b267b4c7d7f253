//! Reads a `#[service]` impl block: which functions are remote methods,
//! constructors, getters and setters, and how their parameters bind. The
//! marker attributes are removed from the block as they are read.

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, FnArg, Generics, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat,
    ReturnType, Token, Type, Visibility,
};

use crate::types;

/// The options of `#[service(...)]`.
pub struct Options {
    /// `name = "..."`: the class name (default: the type's name).
    pub name: Option<String>,
    /// `crate = "..."`: the path to pyrolab-plugin-api (default
    /// `::pyrolab_plugin_api`), for crates that rename it.
    pub krate: syn::Path,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options {
            name: None,
            krate: syn::parse_quote!(::pyrolab_plugin_api),
        };
        while !input.is_empty() {
            let key = input.call(Ident::parse_any)?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            match key.to_string().as_str() {
                "name" => options.name = Some(value.value()),
                "crate" => options.krate = value.parse()?,
                _ => {
                    return Err(Error::new(
                        key.span(),
                        "unknown #[service] option: expected `name` or `crate`",
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

pub struct Class {
    pub name: String,
    pub doc: String,
    pub self_ty: Type,
    pub generics: Generics,
    pub constructor: Option<Constructor>,
    pub methods: Vec<Method>,
    pub properties: Vec<Property>,
}

pub struct Constructor {
    pub ident: Ident,
    /// The parameters struct type, if the constructor takes one.
    pub parameters: Option<Type>,
    pub returns_result: bool,
}

#[derive(Clone, Copy)]
pub enum Receiver {
    Shared,
    Exclusive,
}

pub struct Method {
    pub ident: Ident,
    pub name: String,
    pub doc: String,
    pub receiver: Receiver,
    pub params: Vec<Param>,
    pub returns: types::Rendered,
    pub returns_result: bool,
    /// The result is written `HashSet<..>` or `BTreeSet<..>`: it goes to
    /// Python as a `set` (serde alone would make it a list).
    pub returns_set: bool,
    /// Whether, and how, the result is an item stream.
    pub streams: types::Streams,
    pub oneway: bool,
    /// Where a `&CallContext` parameter is among the function's inputs,
    /// if it takes one (it is not among `params`: callers do not pass it).
    pub context: Option<usize>,
}

pub struct Param {
    pub name: String,
    pub ty: Type,
    pub rust_type: String,
    pub python_type: String,
    pub kind: ParamKind,
}

pub enum ParamKind {
    Required,
    Defaulted(Expr),
    /// An `Option<T>` without an explicit default: defaults to `None`.
    OptionalNone,
    Variadic,
    /// `#[kwargs]`: the keyword arguments no other parameter takes.
    Keywords,
}

pub struct Property {
    pub name: String,
    pub getter: Method,
    pub setter: Option<Method>,
}

/// What a function in the block is, by its marker attribute.
enum Role {
    Method { oneway: bool },
    Constructor,
    Getter(Option<String>),
    Setter(Option<String>),
}

impl Class {
    pub fn read(options: &Options, item: &mut ItemImpl) -> syn::Result<Class> {
        if let Some((_, path, _)) = &item.trait_ {
            return Err(Error::new(
                path.span(),
                "#[service] goes on an inherent impl block, not a trait impl",
            ));
        }
        let name = match &options.name {
            Some(name) => name.clone(),
            None => type_name(&item.self_ty)?,
        };
        let mut class = Class {
            name,
            doc: doc_text(&item.attrs),
            self_ty: (*item.self_ty).clone(),
            generics: item.generics.clone(),
            constructor: None,
            methods: Vec::new(),
            properties: Vec::new(),
        };
        let mut setters: Vec<(String, Method)> = Vec::new();
        let mut errors: Vec<Error> = Vec::new();
        for impl_item in &mut item.items {
            let ImplItem::Fn(function) = impl_item else {
                continue;
            };
            if let Err(err) = class.read_function(function, &mut setters) {
                errors.push(err);
            }
        }
        for (name, setter) in setters {
            match class.properties.iter_mut().find(|p| p.name == name) {
                Some(property) if property.setter.is_none() => property.setter = Some(setter),
                Some(_) => errors.push(Error::new(
                    setter.ident.span(),
                    format!("property `{name}` has two setters"),
                )),
                None => errors.push(Error::new(
                    setter.ident.span(),
                    format!("setter for `{name}`, but there is no #[getter] named `{name}`"),
                )),
            }
        }
        if let Some(err) = class.duplicate_names() {
            errors.push(err);
        }
        match errors.into_iter().reduce(|mut all, err| {
            all.combine(err);
            all
        }) {
            Some(err) => Err(err),
            None => Ok(class),
        }
    }

    fn read_function(
        &mut self,
        function: &mut ImplItemFn,
        setters: &mut Vec<(String, Method)>,
    ) -> syn::Result<()> {
        let role = take_role(&mut function.attrs)?;
        let is_pub = matches!(function.vis, Visibility::Public(_));
        match role {
            Some(Role::Constructor) => {
                if self.constructor.is_some() {
                    return Err(Error::new(
                        function.sig.ident.span(),
                        "a #[service] has at most one #[constructor]",
                    ));
                }
                self.constructor = Some(read_constructor(function)?);
            }
            Some(Role::Getter(name)) => {
                let getter = read_method(function, false)?;
                if !getter.params.is_empty() {
                    return Err(Error::new(
                        function.sig.inputs.span(),
                        "a #[getter] takes no parameters besides `self`",
                    ));
                }
                let name = name.unwrap_or_else(|| getter.name.clone());
                self.properties.push(Property {
                    name,
                    getter,
                    setter: None,
                });
            }
            Some(Role::Setter(name)) => {
                let setter = read_method(function, false)?;
                if setter.params.len() != 1 {
                    return Err(Error::new(
                        function.sig.inputs.span(),
                        "a #[setter] takes exactly one parameter besides `self`: the new value",
                    ));
                }
                let name = name.unwrap_or_else(|| {
                    setter
                        .name
                        .strip_prefix("set_")
                        .unwrap_or(&setter.name)
                        .to_owned()
                });
                setters.push((name, setter));
            }
            Some(Role::Method { oneway }) => {
                if !is_pub {
                    return Err(Error::new(
                        function.sig.ident.span(),
                        "only `pub fn`s can be remote methods",
                    ));
                }
                self.methods.push(read_method(function, oneway)?);
            }
            None if is_pub && function.sig.receiver().is_some() => {
                self.methods.push(read_method(function, false)?);
            }
            None => strip_param_attributes(function),
        }
        Ok(())
    }

    /// Methods and properties share one namespace, as in Python.
    fn duplicate_names(&self) -> Option<Error> {
        let mut seen: Vec<&str> = Vec::new();
        let names = self
            .methods
            .iter()
            .map(|m| (m.name.as_str(), m.ident.span()))
            .chain(
                self.properties
                    .iter()
                    .map(|p| (p.name.as_str(), p.getter.ident.span())),
            );
        for (name, span) in names {
            if seen.contains(&name) {
                return Some(Error::new(
                    span,
                    format!("`{name}` is defined twice (methods and properties share names)"),
                ));
            }
            seen.push(name);
        }
        None
    }
}

fn type_name(ty: &Type) -> syn::Result<String> {
    match ty {
        Type::Path(path) => Ok(path
            .path
            .segments
            .last()
            .expect("a type path has a segment")
            .ident
            .unraw()
            .to_string()),
        other => Err(Error::new(
            other.span(),
            "#[service] needs a named type; give the class a name with #[service(name = \"...\")]",
        )),
    }
}

/// Removes the marker attribute (if any) and says what the function is.
fn take_role(attrs: &mut Vec<Attribute>) -> syn::Result<Option<Role>> {
    let mut role = None;
    let mut oneway = false;
    let mut result = Ok(());
    attrs.retain(|attr| {
        let path = attr.path();
        let found = if path.is_ident("constructor") {
            Some(Role::Constructor)
        } else if path.is_ident("getter") {
            Some(Role::Getter(optional_name(attr, &mut result)))
        } else if path.is_ident("setter") {
            Some(Role::Setter(optional_name(attr, &mut result)))
        } else if path.is_ident("oneway") {
            oneway = true;
            return false;
        } else {
            return true;
        };
        if role.is_some() {
            result = Err(Error::new(
                attr.span(),
                "use only one of #[constructor], #[getter] and #[setter] on a function",
            ));
        }
        role = found;
        false
    });
    result?;
    match role {
        None if oneway => Ok(Some(Role::Method { oneway: true })),
        Some(Role::Method { .. }) | None => Ok(role),
        Some(_) if oneway => Err(Error::new(
            proc_macro2::Span::call_site(),
            "#[oneway] applies to methods only",
        )),
        some => Ok(some),
    }
}

/// Reads `#[getter(name)]` / `#[getter("name")]`; `#[getter]` gives `None`.
fn optional_name(attr: &Attribute, result: &mut syn::Result<()>) -> Option<String> {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return None;
    }
    let parsed = attr.parse_args_with(|input: ParseStream<'_>| {
        if input.peek(LitStr) {
            Ok(input.parse::<LitStr>()?.value())
        } else {
            Ok(input.call(Ident::parse_any)?.unraw().to_string())
        }
    });
    match parsed {
        Ok(name) => Some(name),
        Err(err) => {
            *result = Err(err);
            None
        }
    }
}

fn read_constructor(function: &mut ImplItemFn) -> syn::Result<Constructor> {
    strip_param_attributes(function);
    let sig = &function.sig;
    if sig.receiver().is_some() {
        return Err(Error::new(
            sig.ident.span(),
            "a #[constructor] takes no `self`: it builds the driver",
        ));
    }
    let mut inputs = sig.inputs.iter();
    let parameters = match inputs.next() {
        Some(FnArg::Typed(arg)) => Some((*arg.ty).clone()),
        Some(FnArg::Receiver(_)) => unreachable!("checked above"),
        None => None,
    };
    if let Some(extra) = inputs.next() {
        return Err(Error::new(
            extra.span(),
            "a #[constructor] takes at most one parameter: a struct deserialized from the service's `parameters`",
        ));
    }
    Ok(Constructor {
        ident: sig.ident.clone(),
        parameters,
        returns_result: returns_result(&sig.output),
    })
}

fn read_method(function: &mut ImplItemFn, oneway: bool) -> syn::Result<Method> {
    let receiver = match function.sig.receiver() {
        Some(r) if r.reference.is_some() && r.mutability.is_some() => Receiver::Exclusive,
        Some(r) if r.reference.is_some() => Receiver::Shared,
        Some(r) => {
            return Err(Error::new(
                r.span(),
                "remote methods take `&self` or `&mut self`, not `self` by value",
            ));
        }
        None => {
            return Err(Error::new(
                function.sig.ident.span(),
                "remote methods, getters and setters take `&self` or `&mut self`",
            ));
        }
    };
    if !function.sig.generics.params.is_empty() {
        return Err(Error::new(
            function.sig.generics.span(),
            "remote methods cannot be generic: each argument needs a concrete type",
        ));
    }
    if function.sig.asyncness.is_some() {
        return Err(Error::new(
            function.sig.asyncness.span(),
            "remote methods cannot be async; the host runs blocking driver code on worker threads",
        ));
    }
    let mut params = Vec::new();
    let mut context = None;
    for input in function.sig.inputs.iter_mut() {
        if let FnArg::Typed(arg) = input {
            if types::is_call_context(&arg.ty) {
                if context.is_some() {
                    return Err(Error::new(
                        arg.ty.span(),
                        "a method takes at most one `&CallContext`",
                    ));
                }
                context = Some(params.len());
                continue;
            }
            params.push(read_param(arg)?);
        }
    }
    let keywords = params
        .iter()
        .position(|p| matches!(p.kind, ParamKind::Keywords));
    if let Some(position) = keywords {
        if position + 1 != params.len() {
            return Err(Error::new(
                function.sig.ident.span(),
                "a #[kwargs] parameter must be the last one",
            ));
        }
    }
    let before_keywords = keywords.unwrap_or(params.len());
    if let Some(position) = params
        .iter()
        .position(|p| matches!(p.kind, ParamKind::Variadic))
    {
        if position + 1 != before_keywords {
            return Err(Error::new(
                function.sig.ident.span(),
                "a #[variadic] parameter must be the last one (before a #[kwargs] one)",
            ));
        }
    }
    let (returns, returns_result, returns_set, streams) = match &function.sig.output {
        ReturnType::Default => (types::unit(), false, false, types::Streams::No),
        ReturnType::Type(_, ty) => match types::result_ok_type(ty) {
            Some(ok) => (
                types::render(&ok),
                true,
                types::is_set(&ok),
                types::streams(&ok),
            ),
            None => (
                types::render(ty),
                false,
                types::is_set(ty),
                types::streams(ty),
            ),
        },
    };
    Ok(Method {
        ident: function.sig.ident.clone(),
        name: function.sig.ident.unraw().to_string(),
        doc: doc_text(&function.attrs),
        receiver,
        params,
        returns,
        returns_result,
        returns_set,
        streams,
        oneway,
        context,
    })
}

fn read_param(arg: &mut syn::PatType) -> syn::Result<Param> {
    let name = match &*arg.pat {
        Pat::Ident(pat) => pat.ident.unraw().to_string(),
        other => {
            return Err(Error::new(
                other.span(),
                "remote method parameters need plain names (clients pass them by keyword)",
            ));
        }
    };
    let mut kind = None;
    let mut error = None;
    arg.attrs.retain(|attr| {
        if attr.path().is_ident("default") {
            match attr.parse_args::<Expr>() {
                Ok(expr) => kind = Some(ParamKind::Defaulted(expr)),
                Err(err) => error = Some(err),
            }
            false
        } else if attr.path().is_ident("variadic") {
            kind = Some(ParamKind::Variadic);
            false
        } else if attr.path().is_ident("kwargs") {
            kind = Some(ParamKind::Keywords);
            false
        } else {
            true
        }
    });
    if let Some(err) = error {
        return Err(err);
    }
    let ty = (*arg.ty).clone();
    let kind = match kind {
        Some(kind) => kind,
        None if types::is_option(&ty) => ParamKind::OptionalNone,
        None => ParamKind::Required,
    };
    let rendered = match kind {
        ParamKind::Variadic => match types::vec_element(&ty) {
            Some(element) => {
                let element = types::render(&element);
                types::Rendered {
                    rust: types::rust_text(&ty),
                    python: element.python,
                }
            }
            None => {
                return Err(Error::new(
                    ty.span(),
                    "a #[variadic] parameter collects the remaining positional arguments: give it a `Vec<T>` type",
                ));
            }
        },
        ParamKind::Keywords => match types::map_value(&ty) {
            Some(value) => {
                let value = types::render(&value);
                types::Rendered {
                    rust: types::rust_text(&ty),
                    python: value.python,
                }
            }
            None => {
                return Err(Error::new(
                    ty.span(),
                    "a #[kwargs] parameter collects the keyword arguments no other parameter takes: give it a `BTreeMap<String, T>` type",
                ));
            }
        },
        _ => types::render(&ty),
    };
    Ok(Param {
        name,
        ty,
        rust_type: rendered.rust,
        python_type: rendered.python,
        kind,
    })
}

/// Removes `#[default]`/`#[variadic]` from functions that are not remote
/// methods, so stray markers never reach the compiler.
fn strip_param_attributes(function: &mut ImplItemFn) {
    for input in function.sig.inputs.iter_mut() {
        if let FnArg::Typed(arg) = input {
            arg.attrs
                .retain(|a| !a.path().is_ident("default") && !a.path().is_ident("variadic"));
        }
    }
}

fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => types::result_ok_type(ty).is_some(),
    }
}

/// The text of `///` comments, with the one leading space rustdoc strips.
fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').unwrap_or(&line).to_owned())
        .collect();
    lines.join("\n").trim().to_owned()
}
