//! Checks on a parsed input that span several parts of it.

use std::collections::HashMap;

use syn::spanned::Spanned;

use crate::ast::{EventType, Input, Payload, Shape};
use crate::attr::Errors;

/// Adds every problem of `input` to `errors`.
pub(crate) fn check(input: &Input<'_>, errors: &mut Errors) {
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "`DomainEvent` cannot be derived for a generic type: an event type needs one stable stored shape",
        ));
    }
    let has_upcasters = input.upcasters.is_some();
    match &input.shape {
        Shape::Struct(event) => {
            check_name(event, errors);
            check_history(event, has_upcasters, errors);
        }
        Shape::Unsupported => {}
        Shape::Enum(variants) => {
            if variants.is_empty() {
                errors.push(syn::Error::new(
                    input.ident.span(),
                    "`DomainEvent` needs at least one variant",
                ));
            }
            let mut seen = HashMap::new();
            for variant in variants {
                check_name(&variant.event, errors);
                check_history(&variant.event, has_upcasters, errors);
                if let Some(first) = seen.insert(variant.event.name.as_str(), variant.ident) {
                    errors.push(syn::Error::new(
                        variant.event.name_span,
                        format!(
                            "event type name `{}` is already used by variant `{first}`; give one of them `#[event(rename = \"...\")]`",
                            variant.event.name
                        ),
                    ));
                }
                match &variant.payload {
                    Payload::Tuple(span) => errors.push(syn::Error::new(
                        *span,
                        "a tuple variant of a `DomainEvent` must hold exactly one field (its payload); use named fields",
                    )),
                    Payload::Named(fields) => {
                        for attr in fields
                            .iter()
                            .flat_map(|(_, _, attrs)| attrs.iter())
                            .filter(|a| a.path().is_ident("serde"))
                        {
                            errors.push(syn::Error::new(
                                attr.span(),
                                "`#[serde(..)]` on a variant's field is not applied; move the fields into a struct that derives Serialize/Deserialize and use a one-field tuple variant",
                            ));
                        }
                    }
                    Payload::Unit | Payload::Newtype => {}
                }
            }
        }
    }
}

fn check_name(event: &EventType, errors: &mut Errors) {
    if event.name.trim().is_empty() {
        errors.push(syn::Error::new(
            event.name_span,
            "an event type name cannot be empty",
        ));
    } else if event.name.chars().any(char::is_control) {
        errors.push(syn::Error::new(
            event.name_span,
            "an event type name cannot hold control characters",
        ));
    }
}

/// A version above the first one stored needs upcasters from it: without any, stored events of the older version
/// could only fail when read.
fn check_history(event: &EventType, has_upcasters: bool, errors: &mut Errors) {
    if event.since > event.version {
        errors.push(syn::Error::new(
            event.version_span,
            format!(
                "event type `{}` is at version {} but says `since = {}`: the first version stored cannot be later than the one the code reads",
                event.name, event.version, event.since
            ),
        ));
    } else if event.version > event.since && !has_upcasters {
        errors.push(syn::Error::new(
            event.version_span,
            format!(
                "event type `{name}` is read at version {version} and no upcasters are declared: events stored at version {since} could never be read. Add `#[event(upcasters = ...)]` to the type, with a chain from version {since}, or write `since = {version}` if no `{name}` event was ever stored before version {version}",
                name = event.name,
                version = event.version,
                since = event.since,
            ),
        ));
    }
}
