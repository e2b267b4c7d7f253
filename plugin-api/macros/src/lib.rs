//! The `#[service]` attribute macro of `pyrolab-plugin-api`. Use it through
//! that crate (`pyrolab_plugin_api::service`), which documents it.
//!
//! # Layout
//!
//! - `lib.rs`: the entry point and code generation.
//! - `model.rs`: reads an `impl` block into a [`model::Class`].
//! - `types.rs`: renders Rust types as text and as Python type hints.

mod model;
mod types;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{ItemImpl, parse_macro_input};

use model::{Class, Constructor, Method, Param, ParamKind, Property, Receiver};

/// Exposes the `pub fn`s of an `impl` block as a driver class's remote
/// methods. See the `pyrolab-plugin-api` crate documentation.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr as model::Options);
    let mut item = parse_macro_input!(item as ItemImpl);
    match Class::read(&options, &mut item) {
        Ok(class) => {
            let service_impl = generate(&class, &options);
            quote!(#item #service_impl).into()
        }
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#item #err).into()
        }
    }
}

fn generate(class: &Class, options: &model::Options) -> Tokens {
    let krate = &options.krate;
    let self_ty = &class.self_ty;
    let (impl_generics, _, where_clause) = class.generics.split_for_impl();
    let name = &class.name;
    let describe = generate_describe(class, krate);
    let construct = generate_construct(class, krate);
    let dispatch = generate_dispatch(class, krate);
    quote! {
        impl #impl_generics #krate::Service for #self_ty #where_clause {
            const CLASS_NAME: &'static str = #name;

            fn describe() -> #krate::descriptor::ClassDescriptor {
                #describe
            }

            fn construct(
                parameters: #krate::Value,
            ) -> ::core::result::Result<Self, #krate::DriverError> {
                #construct
            }

            fn dispatch(
                cell: &#krate::ServiceCell<Self>,
                method: &str,
                call: #krate::CallArgs,
            ) -> ::core::result::Result<#krate::Value, #krate::DriverError> {
                Self::__pyrolab_dispatch(cell, method, call, #krate::__private::Returns::Value)
            }

            fn dispatch_into(
                cell: &#krate::ServiceCell<Self>,
                method: &str,
                call: #krate::CallArgs,
                out: &mut ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<(), #krate::DriverError> {
                Self::__pyrolab_dispatch(
                    cell,
                    method,
                    call,
                    #krate::__private::Returns::Encoded(out),
                )
                .map(|_| ())
            }

            fn dispatch_lending(
                cell: &#krate::ServiceCell<Self>,
                method: &str,
                call: #krate::CallArgs,
                head: &mut ::std::vec::Vec<u8>,
                tail: &mut ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<(), #krate::DriverError> {
                Self::__pyrolab_dispatch(
                    cell,
                    method,
                    call,
                    #krate::__private::Returns::Lending { head, tail },
                )
                .map(|_| ())
            }
        }

        impl #impl_generics #self_ty #where_clause {
            /// Both `Service::dispatch` and `Service::dispatch_into`: the
            /// return value is delivered as `__returns` asks, as a `Value`
            /// or encoded straight into a buffer.
            #[doc(hidden)]
            fn __pyrolab_dispatch(
                cell: &#krate::ServiceCell<Self>,
                method: &str,
                call: #krate::CallArgs,
                __returns: #krate::__private::Returns<'_>,
            ) -> ::core::result::Result<#krate::Value, #krate::DriverError> {
                #dispatch
            }
        }
    }
}

fn generate_describe(class: &Class, krate: &syn::Path) -> Tokens {
    let doc = &class.doc;
    let parameters_type = match &class.constructor {
        Some(Constructor {
            parameters: Some(ty),
            ..
        }) => {
            let text = types::rust_text(ty);
            quote!(::core::option::Option::Some(::std::string::String::from(#text)))
        }
        _ => quote!(::core::option::Option::None),
    };
    let methods = class.methods.iter().map(|m| describe_method(m, krate));
    let properties = class.properties.iter().map(|p| describe_property(p, krate));
    quote! {
        #krate::descriptor::ClassDescriptor {
            name: ::std::string::String::from(Self::CLASS_NAME),
            doc: ::std::string::String::from(#doc),
            parameters_type: #parameters_type,
            methods: ::std::vec![#(#methods),*],
            properties: ::std::vec![#(#properties),*],
        }
    }
}

fn type_descriptor(krate: &syn::Path, rust: &str, python: &str) -> Tokens {
    quote!(#krate::__private::type_descriptor(#rust, #python))
}

fn describe_method(method: &Method, krate: &syn::Path) -> Tokens {
    let name = &method.name;
    let doc = &method.doc;
    let oneway = method.oneway;
    let streams = method.streams != types::Streams::No;
    let context = method.context.is_some();
    let receiver = receiver_tokens(method.receiver, krate);
    let returns = type_descriptor(krate, &method.returns.rust, &method.returns.python);
    let params = method.params.iter().map(|param| {
        let name = &param.name;
        let ty = type_descriptor(krate, &param.rust_type, &param.python_type);
        let (kind, default) = match &param.kind {
            ParamKind::Required => (quote!(Normal), quote!(::core::option::Option::None)),
            ParamKind::Defaulted(expr) => (
                quote!(Normal),
                quote!(#krate::__private::default_value(#expr)),
            ),
            ParamKind::OptionalNone => (
                quote!(Normal),
                quote!(::core::option::Option::Some(#krate::Value::Null)),
            ),
            ParamKind::Variadic => (quote!(Variadic), quote!(::core::option::Option::None)),
            ParamKind::Keywords => (quote!(Normal), quote!(::core::option::Option::None)),
        };
        let keywords = matches!(param.kind, ParamKind::Keywords);
        quote! {
            #krate::descriptor::ParamDescriptor {
                name: ::std::string::String::from(#name),
                ty: #ty,
                default: #default,
                kind: #krate::descriptor::ParamKind::#kind,
                keywords: #keywords,
            }
        }
    });
    quote! {
        #krate::descriptor::MethodDescriptor {
            name: ::std::string::String::from(#name),
            doc: ::std::string::String::from(#doc),
            params: ::std::vec![#(#params),*],
            returns: #returns,
            receiver: #receiver,
            oneway: #oneway,
            streams: #streams,
            context: #context,
        }
    }
}

fn receiver_tokens(receiver: Receiver, krate: &syn::Path) -> Tokens {
    match receiver {
        Receiver::Shared => quote!(#krate::descriptor::Receiver::Shared),
        Receiver::Exclusive => quote!(#krate::descriptor::Receiver::Exclusive),
    }
}

fn describe_property(property: &Property, krate: &syn::Path) -> Tokens {
    let name = &property.name;
    let doc = &property.getter.doc;
    let ty = type_descriptor(
        krate,
        &property.getter.returns.rust,
        &property.getter.returns.python,
    );
    let writable = property.setter.is_some();
    quote! {
        #krate::descriptor::PropertyDescriptor {
            name: ::std::string::String::from(#name),
            doc: ::std::string::String::from(#doc),
            ty: #ty,
            writable: #writable,
        }
    }
}

fn generate_construct(class: &Class, krate: &syn::Path) -> Tokens {
    let Some(constructor) = &class.constructor else {
        return quote! {
            #krate::__private::expect_no_parameters(Self::CLASS_NAME, &parameters)?;
            ::core::result::Result::Ok(<Self as ::core::default::Default>::default())
        };
    };
    let ident = &constructor.ident;
    let call = match &constructor.parameters {
        Some(ty) => quote! {
            let parameters: #ty =
                #krate::__private::decode_parameters(Self::CLASS_NAME, parameters)?;
            Self::#ident(parameters)
        },
        None => quote! {
            #krate::__private::expect_no_parameters(Self::CLASS_NAME, &parameters)?;
            Self::#ident()
        },
    };
    if constructor.returns_result {
        quote! {
            match { #call } {
                ::core::result::Result::Ok(driver) => ::core::result::Result::Ok(driver),
                ::core::result::Result::Err(err) => ::core::result::Result::Err(
                    ::core::convert::Into::<#krate::DriverError>::into(err),
                ),
            }
        }
    } else {
        quote!(::core::result::Result::Ok({ #call }))
    }
}

fn generate_dispatch(class: &Class, krate: &syn::Path) -> Tokens {
    let arms = class.methods.iter().map(|method| {
        let name = &method.name;
        let body = call_method(method, krate);
        quote!(#name => { #body })
    });
    let getattr = generate_getattr(class, krate);
    let setattr = generate_setattr(class, krate);
    quote! {
        match method {
            #(#arms)*
            "__getattr__" => { #getattr }
            "__setattr__" => { #setattr }
            other => ::core::result::Result::Err(
                #krate::__private::no_attribute(<Self as #krate::Service>::CLASS_NAME, other),
            ),
        }
    }
}

/// Binds the arguments, takes the lock the receiver needs, calls, and encodes
/// the result.
fn call_method(method: &Method, krate: &syn::Path) -> Tokens {
    let name = &method.name;
    let ident = &method.ident;
    let fixed: Vec<&Param> = method
        .params
        .iter()
        .filter(|p| !matches!(p.kind, ParamKind::Variadic | ParamKind::Keywords))
        .collect();
    let fixed_names = fixed.iter().map(|p| &p.name);
    let variadic = match method
        .params
        .iter()
        .find(|p| matches!(p.kind, ParamKind::Variadic))
    {
        Some(p) => {
            let n = &p.name;
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    let keywords = match method
        .params
        .iter()
        .find(|p| matches!(p.kind, ParamKind::Keywords))
    {
        Some(p) => {
            let n = &p.name;
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    let mut index = 0usize;
    let bindings = method.params.iter().enumerate().map(|(position, param)| {
        let var = format_ident!("__arg{position}");
        let ty = &param.ty;
        let bind = match &param.kind {
            ParamKind::Required => quote!(__args.required(#index)?),
            ParamKind::Defaulted(expr) => {
                quote!(__args.optional(#index, || #krate::to_value(&(#expr)))?)
            }
            ParamKind::OptionalNone => {
                quote!(__args.optional(#index, || ::core::result::Result::Ok(#krate::Value::Null))?)
            }
            ParamKind::Variadic => {
                let n = &param.name;
                quote!(__args.variadic(#n)?)
            }
            ParamKind::Keywords => {
                let n = &param.name;
                quote!(__args.keywords(#n)?)
            }
        };
        if !matches!(param.kind, ParamKind::Variadic | ParamKind::Keywords) {
            index += 1;
        }
        quote!(let #var: #ty = #bind;)
    });
    let bindings: Vec<Tokens> = bindings.collect();
    let mut vars: Vec<Tokens> = (0..method.params.len())
        .map(|i| {
            let var = format_ident!("__arg{i}");
            quote!(#var)
        })
        .collect();
    let (take_context, end_context) = match method.context {
        Some(position) => {
            vars.insert(position, quote!(&__context));
            (
                quote!(let __context = #krate::__private::call_context();),
                quote!(#krate::__private::end_call_context(__context);),
            )
        }
        None => (Tokens::new(), Tokens::new()),
    };
    let lock = lock_tokens(method.receiver);
    let finish = finish_tokens(method, krate, false);
    quote! {
        let mut __args = #krate::__private::Arguments::new(
            #name,
            &[#(#fixed_names),*],
            #variadic,
            #keywords,
            call,
        )?;
        #(#bindings)*
        #take_context
        let __returned = #lock.#ident(#(#vars),*);
        #end_context
        #finish
    }
}

fn lock_tokens(receiver: Receiver) -> Tokens {
    match receiver {
        Receiver::Shared => quote!(cell.read()),
        Receiver::Exclusive => quote!(cell.write()),
    }
}

/// Delivers `__returned` as `__returns` asks, giving the call's
/// `Result<Value, DriverError>`. A setter's value is checked but discarded:
/// the call returns `None`.
fn finish_tokens(method: &Method, krate: &syn::Path, discard: bool) -> Tokens {
    let name = &method.name;
    let deliver = if discard {
        quote!(#krate::__private::deliver_discarded)
    } else {
        quote!(#krate::__private::deliver)
    };
    let encode = |value: Tokens| {
        if method.returns_set {
            quote!(#deliver(#name, &#krate::__private::AsSet(&#value), __returns))
        } else if discard {
            quote!(#deliver(#name, &#value, __returns))
        } else {
            let value = match method.streams {
                types::Streams::Iterator => quote!(#krate::__private::stream_of(#value)),
                types::Streams::FallibleIterator => {
                    quote!(#krate::__private::fallible_stream_of(#value))
                }
                types::Streams::No | types::Streams::Stream => value,
            };
            // A returned `Bytes` may be lent and a `Stream` is kept; see
            // `__private::Returned`.
            quote! {{
                #[allow(unused_imports)]
                use #krate::__private::{DeliverBorrowed as _, DeliverStream as _, LendBytes as _};
                (&#krate::__private::Returned::new(#value)).deliver(#name, __returns)
            }}
        }
    };
    if method.returns_result {
        let encode_value = encode(quote!(value));
        quote! {
            match __returned {
                ::core::result::Result::Ok(value) => #encode_value,
                ::core::result::Result::Err(err) => ::core::result::Result::Err(
                    ::core::convert::Into::<#krate::DriverError>::into(err),
                ),
            }
        }
    } else {
        encode(quote!(__returned))
    }
}

fn generate_getattr(class: &Class, krate: &syn::Path) -> Tokens {
    let arms = class.properties.iter().map(|property| {
        let name = &property.name;
        let ident = &property.getter.ident;
        let lock = lock_tokens(property.getter.receiver);
        let finish = finish_tokens(&property.getter, krate, false);
        quote!(#name => { let __returned = #lock.#ident(); #finish })
    });
    quote! {
        let mut __args = #krate::__private::Arguments::new("__getattr__", &["name"], ::core::option::Option::None, ::core::option::Option::None, call)?;
        let __name: ::std::string::String = __args.required(0)?;
        match __name.as_str() {
            #(#arms)*
            other => ::core::result::Result::Err(
                #krate::__private::no_attribute(<Self as #krate::Service>::CLASS_NAME, other),
            ),
        }
    }
}

fn generate_setattr(class: &Class, krate: &syn::Path) -> Tokens {
    let arms = class.properties.iter().map(|property| {
        let name = &property.name;
        match &property.setter {
            Some(setter) => {
                let ident = &setter.ident;
                let ty = &setter.params[0].ty;
                let lock = lock_tokens(setter.receiver);
                let finish = finish_tokens(setter, krate, true);
                quote! {
                    #name => {
                        let __value: #ty = __args.required(1)?;
                        let __returned = #lock.#ident(__value);
                        #finish
                    }
                }
            }
            None => quote! {
                #name => ::core::result::Result::Err(
                    #krate::__private::read_only(<Self as #krate::Service>::CLASS_NAME, #name),
                ),
            },
        }
    });
    quote! {
        let mut __args = #krate::__private::Arguments::new("__setattr__", &["name", "value"], ::core::option::Option::None, ::core::option::Option::None, call)?;
        let __name: ::std::string::String = __args.required(0)?;
        match __name.as_str() {
            #(#arms)*
            other => ::core::result::Result::Err(
                #krate::__private::no_attribute(<Self as #krate::Service>::CLASS_NAME, other),
            ),
        }
    }
}
