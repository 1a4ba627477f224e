//! Per-source parsers.
// Stub: filled in by the trigger parsing work.
use super::{EventEnvelope, Trigger};
use opentelemetry::propagation::TextMapPropagator;
use serde_json::Value;

pub(super) fn detect(_event: &Value, _envelope: EventEnvelope<'_>, _propagator: &dyn TextMapPropagator) -> Trigger {
    Trigger::other()
}
