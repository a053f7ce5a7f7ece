//! `#[derive(DomainEvent)]` for `es-core`. Use it through `es_core::DomainEvent`; the generated code depends on
//! `es-core` and reaches serde through it, so users need neither this crate nor serde's derive for variants.
//!
//! The work flows parse (`attr.rs`, `ast.rs`) → validate (`valid.rs`) → expand (`expand.rs`). Every mistake is
//! reported with its span, all of them in one compile.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `es_core::DomainEvent`. See the trait's documentation for the attributes.
///
/// `serde` is registered as a helper attribute only to reject it on variant fields with a clear message.
#[proc_macro_derive(DomainEvent, attributes(event, serde, tag))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = attr::Errors::default();
    let parsed = ast::Input::parse(&input, &mut errors);
    valid::check(&parsed, &mut errors);
    match errors.finish() {
        Ok(()) => expand::domain_event(&parsed),
        Err(error) => error.into_compile_error(),
    }
    .into()
}
