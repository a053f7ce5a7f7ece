//! W3C trace context across the log: the command's span is written into its events' metadata
//! ([`Metadata::traceparent`]), and the spans that handle those events continue it, so one trace runs from a
//! command through its events to the read models, the process managers and, through the relay, other services.
//!
//! With the `opentelemetry` feature and a `tracing-opentelemetry` layer installed, the repository stamps the
//! current span's context on every event of a command; a projection batch links to the trace of each event it
//! handles (a batch has many parents), a process manager's step and a relay publish take the event's trace as
//! their parent. Without the feature these functions do nothing.

use crate::store::Metadata;

/// Writes the current span's trace context into `metadata` unless it carries one already.
pub(crate) fn stamp(metadata: &mut Metadata) {
    #[cfg(feature = "opentelemetry")]
    if metadata.traceparent().is_none()
        && let Some(traceparent) = current_traceparent()
    {
        metadata
            .extra
            .insert(crate::store::TRACEPARENT.to_owned(), traceparent.into());
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = metadata;
}

/// Makes the trace a `traceparent` names (an event's [`Metadata::traceparent`], a message's header) the parent of
/// `span`. A missing or malformed one leaves `span` as it is.
///
/// ```
/// let span = tracing::info_span!("handle");
/// es_core::telemetry::continue_trace(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// ```
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    #[cfg(feature = "opentelemetry")]
    if let Some(context) = traceparent.and_then(parse_traceparent) {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(context));
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, traceparent);
}

/// Links `span` to the trace of `metadata` (for a span that handles many events, each with its own trace).
pub(crate) fn link_trace(span: &tracing::Span, metadata: &Metadata) {
    #[cfg(feature = "opentelemetry")]
    if let Some(context) = metadata.traceparent().and_then(parse_traceparent) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.add_link(context);
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, metadata);
}

/// The W3C `traceparent` of the current span, when it belongs to a sampled or unsampled OpenTelemetry trace.
#[cfg(feature = "opentelemetry")]
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// The span context a `traceparent` names (version `00`), or `None` when it is malformed.
#[cfg(feature = "opentelemetry")]
pub fn parse_traceparent(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_and_malformed_ones_do_not() {
        let parsed =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            parsed.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parsed.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parsed.is_sampled());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
