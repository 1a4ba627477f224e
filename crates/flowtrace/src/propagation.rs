//! The propagator flowtrace uses on both ends of every hop, chosen by `OTEL_PROPAGATORS`.

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::SpanContext;
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// A propagator that can be shared across invocations and threads.
pub type SharedPropagator = Box<dyn TextMapPropagator + Send + Sync>;

/// Builds the propagator for an `OTEL_PROPAGATORS` value (`None` when unset).
///
/// The default reads and writes both W3C trace context and the X-Ray header. When a carrier
/// holds both, W3C wins: the composite applies extractors in order and the last one that
/// finds a context keeps it, so W3C goes last. Unknown names are skipped with one warning
/// each; `none` disables propagation.
pub fn propagator_from_env_value(value: Option<&str>) -> (SharedPropagator, Vec<String>) {
    let mut warnings = Vec::new();
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return (default_propagator(), warnings);
    };
    let mut propagators: Vec<SharedPropagator> = Vec::new();
    for name in value.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "tracecontext" => propagators.push(Box::new(TraceContextPropagator::new())),
            "baggage" => propagators.push(Box::new(BaggagePropagator::new())),
            "xray" => propagators.push(Box::new(XrayPropagator::new())),
            "none" => return (Box::new(TextMapCompositePropagator::new(Vec::new())), warnings),
            other => warnings
                .push(format!("flowtrace: OTEL_PROPAGATORS names unsupported propagator {other:?}; skipping it")),
        }
    }
    if propagators.is_empty() {
        warnings.push("flowtrace: OTEL_PROPAGATORS named no supported propagator; using the default".to_owned());
        return (default_propagator(), warnings);
    }
    (Box::new(TextMapCompositePropagator::new(propagators)), warnings)
}

/// X-Ray, then baggage, then W3C trace context (last, so it wins on extraction).
pub fn default_propagator() -> SharedPropagator {
    Box::new(TextMapCompositePropagator::new(vec![
        Box::new(XrayPropagator::new()),
        Box::new(BaggagePropagator::new()),
        Box::new(TraceContextPropagator::new()),
    ]))
}

/// Parses an X-Ray trace header (`Root=1-…;Parent=…;Sampled=1`), as found in
/// `_X_AMZN_TRACE_ID` or the invocation's `Lambda-Runtime-Trace-Id`.
pub fn xray_span_context(header: &str) -> Option<SpanContext> {
    opentelemetry_aws::trace::xray_propagator::span_context_from_str(header).filter(SpanContext::is_valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;
    use std::collections::HashMap;

    const W3C: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn extract(propagator: &SharedPropagator, headers: &[(&str, &str)]) -> Option<String> {
        let carrier: HashMap<String, String> =
            headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let cx = propagator.extract(&carrier);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    #[test]
    fn default_reads_both_formats_and_prefers_w3c() {
        let (propagator, warnings) = propagator_from_env_value(None);
        assert!(warnings.is_empty());
        assert_eq!(extract(&propagator, &[("traceparent", W3C)]).as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(
            extract(&propagator, &[("x-amzn-trace-id", XRAY)]).as_deref(),
            Some("5759e988bd862e3fe1be46a994272793")
        );
        assert_eq!(
            extract(&propagator, &[("x-amzn-trace-id", XRAY), ("traceparent", W3C)]).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn explicit_list_is_honoured() {
        let (propagator, warnings) = propagator_from_env_value(Some("xray"));
        assert!(warnings.is_empty());
        assert_eq!(extract(&propagator, &[("traceparent", W3C)]), None);
        assert!(extract(&propagator, &[("x-amzn-trace-id", XRAY)]).is_some());
    }

    #[test]
    fn none_disables_and_unknown_names_warn() {
        let (propagator, _) = propagator_from_env_value(Some("none"));
        assert_eq!(extract(&propagator, &[("traceparent", W3C)]), None);
        let (propagator, warnings) = propagator_from_env_value(Some("b3, jaeger"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(extract(&propagator, &[("traceparent", W3C)]).is_some(), "falls back to the default");
    }

    #[test]
    fn xray_header_parses_and_rejects_garbage() {
        let sc = xray_span_context(XRAY).unwrap();
        assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(sc.is_sampled());
        assert!(xray_span_context("Root=nonsense").is_none());
        assert!(xray_span_context("").is_none());
    }
}
