//! Code generation.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{EventType, Input, Payload, Shape, Variant};

pub(crate) fn domain_event(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    let categories = &input.categories;
    let aggregates = &input.aggregates;
    let body = match &input.shape {
        Shape::Enum(variants) => enum_body(variants),
        Shape::Struct(event) => struct_body(event),
        Shape::Unsupported => return TokenStream::new(),
    };
    let (upcasters, upcasters_check) = match &input.upcasters {
        None => (TokenStream::new(), TokenStream::new()),
        Some(upcasters) => {
            let schema = schema(&input.shape);
            let history = history(&input.shape);
            let owner = ident.to_string();
            (
                quote! {
                    const UPCASTERS: &'static [::es_core::__private::Upcaster] = #upcasters;
                },
                quote! {
                    // Checked while compiling: every chain of upcasters ends at a version this code reads.
                    const _: () = ::es_core::__private::assert_upcasters(
                        #owner,
                        &[#schema],
                        <#ident as ::es_core::__private::DomainEvent>::UPCASTERS,
                    );
                    // And every version read above the first one stored is reached by a chain from it.
                    const _: () = ::es_core::__private::assert_reached(
                        #owner,
                        &[#history],
                        <#ident as ::es_core::__private::DomainEvent>::UPCASTERS,
                    );
                },
            )
        }
    };
    quote! {
        #[allow(non_local_definitions)]
        const _: () = {
            use ::es_core::__private::serde_json as __json;
            #[automatically_derived]
            impl ::es_core::__private::DomainEvent for #ident {
                const CATEGORIES: &'static [&'static str] =
                    &[#(<#aggregates as ::es_core::__private::Aggregate>::CATEGORY,)* #(#categories),*];
                #upcasters
                #body
            }
            #upcasters_check
        };
    }
}

/// The event types of `shape`.
fn event_types<'s>(shape: &'s Shape<'_>) -> Vec<&'s EventType> {
    match shape {
        Shape::Enum(variants) => variants.iter().map(|v| &v.event).collect(),
        Shape::Struct(event) => vec![event],
        Shape::Unsupported => Vec::new(),
    }
}

/// The `(type name, schema version, first version stored)` of each event type, as a slice's elements.
fn history(shape: &Shape<'_>) -> TokenStream {
    let events = event_types(shape);
    let names = events.iter().map(|e| &e.name);
    let versions = events.iter().map(|e| e.version);
    let since = events.iter().map(|e| e.since);
    quote!(#((#names, #versions, #since)),*)
}

/// The `(type name, schema version)` pairs the code reads, as a slice's elements.
fn schema(shape: &Shape<'_>) -> TokenStream {
    let events = event_types(shape);
    let names = events.iter().map(|e| &e.name);
    let versions = events.iter().map(|e| e.version);
    quote!(#((#names, #versions)),*)
}

fn version_check(event: &EventType) -> TokenStream {
    let EventType { name, version, .. } = event;
    quote! {
        if schema_version != #version {
            return ::core::result::Result::Err(::es_core::__private::DecodeError::SchemaVersion {
                event_type: #name,
                stored: schema_version,
                expected: #version,
            });
        }
    }
}

fn struct_body(event: &EventType) -> TokenStream {
    let EventType { name, version, .. } = event;
    let check = version_check(event);
    let unknown = unknown_type();
    let [decode, decode_str] = [From::Value, From::Text].map(|from| {
        let read = deserialize(quote!(Self), from);
        decoder(
            from,
            quote! {
                if event_type != #name {
                    return #unknown;
                }
                #check
                #read.map_err(|source| ::es_core::__private::DecodeError::Payload { event_type: #name, source })
            },
        )
    });
    quote! {
        const EVENT_TYPES: &'static [&'static str] = &[#name];

        fn current_schema_version(event_type: &str) -> ::core::option::Option<u32> {
            (event_type == #name).then_some(#version)
        }

        fn event_type(&self) -> &'static str { #name }

        fn schema_version(&self) -> u32 { #version }

        fn encode(&self) -> ::core::result::Result<__json::Value, ::es_core::__private::EncodeError> {
            __json::to_value(self).map_err(|source| ::es_core::__private::EncodeError { event_type: #name, source })
        }

        #decode
        #decode_str
    }
}

fn enum_body(variants: &[Variant<'_>]) -> TokenStream {
    let names: Vec<_> = variants.iter().map(|v| &v.event.name).collect();
    let idents: Vec<_> = variants.iter().map(|v| v.ident).collect();
    let versions: Vec<_> = variants.iter().map(|v| v.event.version).collect();
    let encode_arms = variants.iter().map(encode_arm);
    let unknown = unknown_type();
    let [decode, decode_str] = [From::Value, From::Text].map(|from| {
        let arms = variants.iter().map(|v| decode_arm(v, from));
        decoder(
            from,
            quote! {
                match event_type {
                    #(#arms)*
                    _ => #unknown,
                }
            },
        )
    });
    let tags = tags_method(variants);
    quote! {
        const EVENT_TYPES: &'static [&'static str] = &[#(#names),*];

        #tags

        fn current_schema_version(event_type: &str) -> ::core::option::Option<u32> {
            match event_type {
                #(#names => ::core::option::Option::Some(#versions),)*
                _ => ::core::option::Option::None,
            }
        }

        fn event_type(&self) -> &'static str {
            match self { #(Self::#idents { .. } => #names,)* }
        }

        fn schema_version(&self) -> u32 {
            match self { #(Self::#idents { .. } => #versions,)* }
        }

        fn encode(&self) -> ::core::result::Result<__json::Value, ::es_core::__private::EncodeError> {
            match self { #(#encode_arms)* }
        }

        #decode
        #decode_str
    }
}

/// The `tags` method: one `kind:value` per field marked `#[tag]` (kind: the field's name) or `#[tag = "kind"]`;
/// nothing when no field is marked.
fn tags_method(variants: &[Variant<'_>]) -> TokenStream {
    let arms: Vec<TokenStream> = variants
        .iter()
        .filter_map(|variant| {
            let Payload::Named(fields) = &variant.payload else {
                return None;
            };
            let tagged: Vec<(&syn::Ident, String)> = fields
                .iter()
                .filter_map(|(ident, _, attrs)| tag_kind(ident, attrs).map(|kind| (*ident, kind)))
                .collect();
            if tagged.is_empty() {
                return None;
            }
            let ident = variant.ident;
            let (fields, kinds): (Vec<_>, Vec<_>) = tagged.into_iter().unzip();
            Some(quote! {
                Self::#ident { #(#fields,)* .. } => ::std::vec![#(::std::format!("{}:{}", #kinds, #fields)),*],
            })
        })
        .collect();
    if arms.is_empty() {
        return TokenStream::new();
    }
    quote! {
        fn tags(&self) -> ::std::vec::Vec<::std::string::String> {
            #[allow(unreachable_patterns)]
            match self {
                #(#arms)*
                _ => ::std::vec::Vec::new(),
            }
        }
    }
}

/// The tag kind of a field marked `#[tag]` (its name) or `#[tag = "kind"]`.
fn tag_kind(ident: &syn::Ident, attrs: &[syn::Attribute]) -> Option<String> {
    let attr = attrs.iter().find(|a| a.path().is_ident("tag"))?;
    match &attr.meta {
        syn::Meta::NameValue(syn::MetaNameValue {
            value:
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(kind),
                    ..
                }),
            ..
        }) => Some(kind.value()),
        _ => Some(ident.to_string().trim_start_matches("r#").to_owned()),
    }
}

/// The `decode` method (from a `Value`) or the `decode_str` method (from JSON text) around `body`.
fn decoder(from: From, body: TokenStream) -> TokenStream {
    let (method, payload) = match from {
        From::Value => (quote!(decode), quote!(&__json::Value)),
        From::Text => (quote!(decode_str), quote!(&str)),
    };
    quote! {
        fn #method(
            event_type: &str,
            schema_version: u32,
            payload: #payload,
        ) -> ::core::result::Result<Self, ::es_core::__private::DecodeError> {
            #body
        }
    }
}

/// The error for a type name the decoder does not know.
fn unknown_type() -> TokenStream {
    quote! {
        ::core::result::Result::Err(::es_core::__private::DecodeError::UnknownType {
            event_type: event_type.to_owned(),
            known: <Self as ::es_core::__private::DomainEvent>::EVENT_TYPES,
        })
    }
}

/// What a generated decoder reads the payload from.
#[derive(Clone, Copy)]
enum From {
    /// A parsed `serde_json::Value` (`payload: &Value`).
    Value,
    /// JSON text (`payload: &str`), decoded without building a `Value`.
    Text,
}

/// Deserializes `ty` from the decoder's `payload`.
fn deserialize(ty: TokenStream, from: From) -> TokenStream {
    match from {
        From::Value => {
            quote!(<#ty as ::es_core::__private::serde::Deserialize>::deserialize(payload))
        }
        From::Text => quote!(__json::from_str::<#ty>(payload)),
    }
}

fn encode_arm(variant: &Variant<'_>) -> TokenStream {
    let ident = variant.ident;
    let name = &variant.event.name;
    let error = quote!(|source| ::es_core::__private::EncodeError { event_type: #name, source });
    match &variant.payload {
        Payload::Unit | Payload::Tuple(_) => quote! {
            Self::#ident { .. } => ::core::result::Result::Ok(__json::Value::Object(__json::Map::new())),
        },
        Payload::Newtype => quote! {
            Self::#ident(inner) => __json::to_value(inner).map_err(#error),
        },
        Payload::Named(fields) => {
            let field_idents: Vec<_> = fields.iter().map(|(ident, _, _)| *ident).collect();
            let keys: Vec<_> = field_idents.iter().map(|i| i.to_string()).collect();
            quote! {
                Self::#ident { #(#field_idents),* } => {
                    let mut __map = __json::Map::new();
                    #(__map.insert(::std::string::String::from(#keys), __json::to_value(#field_idents).map_err(#error)?);)*
                    ::core::result::Result::Ok(__json::Value::Object(__map))
                }
            }
        }
    }
}

fn decode_arm(variant: &Variant<'_>, from: From) -> TokenStream {
    let ident = variant.ident;
    let name = &variant.event.name;
    let check = version_check(&variant.event);
    let error =
        quote!(|source| ::es_core::__private::DecodeError::Payload { event_type: #name, source });
    let build = match &variant.payload {
        Payload::Unit | Payload::Tuple(_) => quote!(::core::result::Result::Ok(Self::#ident)),
        Payload::Newtype => {
            let read = deserialize(quote!(_), from);
            quote!(#read.map(Self::#ident).map_err(#error))
        }
        Payload::Named(fields) => {
            let field_idents: Vec<_> = fields.iter().map(|(ident, _, _)| *ident).collect();
            let types: Vec<_> = fields.iter().map(|(_, ty, _)| *ty).collect();
            let read = deserialize(quote!(__Payload), from);
            quote! {
                #[derive(::es_core::__private::serde::Deserialize)]
                #[serde(crate = "::es_core::__private::serde")]
                struct __Payload { #(#field_idents: #types,)* }
                let __Payload { #(#field_idents),* } = #read.map_err(#error)?;
                ::core::result::Result::Ok(Self::#ident { #(#field_idents),* })
            }
        }
    };
    quote! {
        #name => {
            #check
            #build
        }
    }
}
