//! Parsing of `#[event(rename = "...", version = N, since = N)]` and
//! `#[event(aggregate = Path, category = "...", upcasters = EXPR)]`.

use syn::spanned::Spanned;
use syn::{Attribute, LitInt, LitStr};

/// The settings of one `#[event(..)]` list, as written.
#[derive(Default)]
pub(crate) struct EventAttr {
    pub(crate) rename: Option<LitStr>,
    pub(crate) version: Option<(u32, proc_macro2::Span)>,
    /// `since = N`: the first schema version ever stored of this event type (default 1).
    pub(crate) since: Option<(u32, proc_macro2::Span)>,
    /// `category = "..."`, as often as written: the stream categories the type's events live in.
    pub(crate) categories: Vec<LitStr>,
    /// `aggregate = Path`, as often as written: aggregates whose `CATEGORY` the type's events live in.
    pub(crate) aggregates: Vec<syn::Path>,
    /// `upcasters = EXPR`: a constant `&[Upcaster]`, the type's schema history.
    pub(crate) upcasters: Option<syn::Expr>,
    /// Where the attribute was written, to point errors about its placement at it.
    pub(crate) span: Option<proc_macro2::Span>,
}

/// Collects every `#[event(..)]` in `attrs`, reporting all malformed parts at once.
pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> EventAttr {
    let mut out = EventAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
        out.span.get_or_insert(attr.span());
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if out.rename.replace(lit).is_some() {
                    errors.push(meta.error("duplicate `rename`"));
                }
                Ok(())
            } else if meta.path.is_ident("category") {
                let lit: LitStr = meta.value()?.parse()?;
                let category = lit.value();
                if category.is_empty() || category.contains('-') || category.contains(char::is_control) {
                    errors.push(syn::Error::new(
                        lit.span(),
                        "a category is the part of a stream id before its first `-`: not empty, without `-` or control characters",
                    ));
                }
                out.categories.push(lit);
                Ok(())
            } else if meta.path.is_ident("aggregate") {
                out.aggregates.push(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("upcasters") {
                let expr: syn::Expr = meta.value()?.parse()?;
                if out.upcasters.replace(expr).is_some() {
                    errors.push(meta.error("duplicate `upcasters`"));
                }
                Ok(())
            } else if meta.path.is_ident("version") || meta.path.is_ident("since") {
                let key = if meta.path.is_ident("version") { "version" } else { "since" };
                let lit: LitInt = meta.value()?.parse()?;
                let slot = match key {
                    "version" => &mut out.version,
                    _ => &mut out.since,
                };
                match lit.base10_parse::<u32>() {
                    Ok(0) => errors.push(syn::Error::new(
                        lit.span(),
                        format!("event schema versions start at 1; `{key} = 0` is not allowed"),
                    )),
                    Ok(version) => {
                        if slot.replace((version, lit.span())).is_some() {
                            errors.push(meta.error(format!("duplicate `{key}`")));
                        }
                    }
                    Err(_) => errors.push(syn::Error::new(
                        lit.span(),
                        format!("`{key}` must be an integer from 1 to 4294967295"),
                    )),
                }
                Ok(())
            } else {
                Err(meta.error(
                    "unknown `event` attribute; expected `rename = \"...\"`, `version = N`, `since = N`, `aggregate = Type`, `category = \"...\"` or `upcasters = ...`",
                ))
            }
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    out
}

/// Errors gathered across the whole input, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
