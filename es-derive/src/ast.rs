//! The derive input, reduced to what the expansion needs.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::{self, Errors};

/// A parsed `#[derive(DomainEvent)]` input.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a syn::Generics,
    pub(crate) shape: Shape<'a>,
    /// From `#[event(category = "...")]` on the type.
    pub(crate) categories: Vec<String>,
    /// From `#[event(aggregate = Path)]` on the type: their `CATEGORY`s join `categories`.
    pub(crate) aggregates: Vec<syn::Path>,
    /// From `#[event(upcasters = EXPR)]` on the type.
    pub(crate) upcasters: Option<syn::Expr>,
}

/// An enum (one event type per variant) or a struct (one event type).
pub(crate) enum Shape<'a> {
    Enum(Vec<Variant<'a>>),
    Struct(EventType),
    /// A union: already reported, never expanded.
    Unsupported,
}

/// The stored name and schema version of one event type.
pub(crate) struct EventType {
    pub(crate) name: String,
    pub(crate) name_span: Span,
    pub(crate) version: u32,
    /// Where `version` was written (the type name's span when it was not).
    pub(crate) version_span: Span,
    /// The first schema version ever stored (`since`, default 1): older versions need no upcaster.
    pub(crate) since: u32,
}

/// One enum variant.
pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) event: EventType,
    pub(crate) payload: Payload<'a>,
}

/// How a variant's data maps to the JSON payload.
pub(crate) enum Payload<'a> {
    /// `Variant`: payload `{}`.
    Unit,
    /// `Variant(Inner)`: the inner value's JSON.
    Newtype,
    /// `Variant { a: A, .. }`: an object of the fields.
    Named(Vec<(&'a Ident, &'a Type, &'a [syn::Attribute])>),
    /// `Variant(A, B, ..)`: not supported; kept to report it.
    Tuple(Span),
}

impl<'a> Input<'a> {
    /// Parses `input`, adding every problem found to `errors`.
    pub(crate) fn parse(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let container = attr::parse(&input.attrs, errors);
        let categories = container.categories.iter().map(|c| c.value()).collect();
        let upcasters = container.upcasters.clone();
        let aggregates = container.aggregates.clone();
        let shape = match &input.data {
            Data::Enum(data) => {
                let misplaced = container
                    .rename
                    .as_ref()
                    .map(|r| r.span())
                    .or(container.version.map(|v| v.1))
                    .or(container.since.map(|v| v.1));
                if let Some(span) = misplaced {
                    errors.push(syn::Error::new(
                        span,
                        "`rename`/`version`/`since` on an enum does nothing: put them on its variants",
                    ));
                }
                let variants = data
                    .variants
                    .iter()
                    .map(|variant| {
                        let attrs = attr::parse(&variant.attrs, errors);
                        let misplaced = attrs
                            .categories
                            .first()
                            .map(|c| c.span())
                            .or(attrs.aggregates.first().map(|a| a.span()))
                            .or(attrs.upcasters.as_ref().map(|u| u.span()));
                        if let Some(span) = misplaced {
                            errors.push(syn::Error::new(
                                span,
                                "`aggregate`/`category`/`upcasters` belong to the whole type: put them on the enum",
                            ));
                        }
                        Variant {
                            ident: &variant.ident,
                            event: event_type(&variant.ident, attrs),
                            payload: payload(&variant.fields),
                        }
                    })
                    .collect();
                Shape::Enum(variants)
            }
            Data::Struct(_) => Shape::Struct(event_type(&input.ident, container)),
            Data::Union(data) => {
                errors.push(syn::Error::new(
                    data.union_token.span,
                    "`DomainEvent` cannot be derived for a union; use an enum or a struct",
                ));
                Shape::Unsupported
            }
        };
        Self {
            ident: &input.ident,
            generics: &input.generics,
            shape,
            categories,
            aggregates,
            upcasters,
        }
    }
}

fn event_type(ident: &Ident, attrs: attr::EventAttr) -> EventType {
    let (name, name_span) = attrs.rename.map_or_else(
        || (ident.to_string(), ident.span()),
        |lit| (lit.value(), lit.span()),
    );
    EventType {
        name,
        version_span: attrs.version.map_or(name_span, |(_, span)| span),
        name_span,
        version: attrs.version.map_or(1, |(version, _)| version),
        since: attrs.since.map_or(1, |(since, _)| since),
    }
}

fn payload(fields: &Fields) -> Payload<'_> {
    match fields {
        Fields::Unit => Payload::Unit,
        Fields::Unnamed(unnamed) if unnamed.unnamed.len() == 1 => Payload::Newtype,
        Fields::Unnamed(unnamed) => Payload::Tuple(unnamed.span()),
        Fields::Named(named) => Payload::Named(
            named
                .named
                .iter()
                .filter_map(|f| f.ident.as_ref().map(|ident| (ident, &f.ty, &f.attrs[..])))
                .collect(),
        ),
    }
}
