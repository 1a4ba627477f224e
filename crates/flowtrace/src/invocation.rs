//! The plan for an invocation span: name, kind, attributes, parent and links, decided from
//! the raw event and the Lambda context without I/O. The wrapper starts its span from this
//! plan, and `flowtrace inspect` prints it, so the two can never disagree.

use crate::config::{Config, XrayParent};
use crate::propagation::xray_span_context;
use crate::trigger::{self, EventEnvelope, Trigger};
use flowtrace_contract::attr;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Link, SpanContext, SpanKind};
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the wrapper will record for one invocation.
#[derive(Debug, Clone)]
pub struct InvocationPlan {
    /// The trigger description the plan was made from.
    pub trigger: Trigger,
    /// The span name.
    pub name: String,
    /// The span kind.
    pub kind: SpanKind,
    /// The span's attributes at start.
    pub attributes: Vec<KeyValue>,
    /// The parent, from the event or (as a fallback) from a sampled X-Ray header.
    pub parent: Option<SpanContext>,
    /// One link per record that carried its own context, when there is no single parent.
    pub links: Vec<Link>,
    /// Time left before the deadline, when known.
    pub remaining: Option<Duration>,
    /// The parsed event, kept for payload capture: `Null` when it was not JSON, or when
    /// [`plan`] was not asked for the full event.
    pub event: Value,
}

/// Plans the invocation span for `body` (the raw event) and `context`. `cold_start` is
/// decided by the caller, which owns that state.
///
/// With `full_event` (payload capture needs it), the whole event is parsed and returned in
/// [`InvocationPlan::event`]; without, only what trigger detection reads is built, which
/// plans the same span for a fraction of the cost, and `event` is `Null`.
pub fn plan(
    body: &[u8],
    context: &lambda_runtime::Context,
    config: &Config,
    propagator: &dyn TextMapPropagator,
    cold_start: bool,
    now: SystemTime,
    full_event: bool,
) -> InvocationPlan {
    let parsed = if full_event {
        serde_json::from_slice(body)
    } else {
        trigger::prune::parse_for_detection(body, &config.reserved_key, propagator)
    };
    let parsed = match parsed {
        Ok(value) => value,
        Err(error) => {
            tracing::debug!(target: "flowtrace", "flowtrace: event is not JSON ({error}); tracing it as trigger `other`");
            Value::Null
        }
    };
    let envelope = EventEnvelope {
        client_context_custom: context.client_context.as_ref().map(|c| &c.custom),
        reserved_key: &config.reserved_key,
    };
    let trigger = trigger::detect(&parsed, envelope, propagator);
    let event = if full_event { parsed } else { Value::Null };
    let (event_parent, linked) = trigger.parent_and_links();

    // Room for what is added below, and the payload the wrapper may add, without growing.
    let mut attributes = Vec::with_capacity(trigger.attributes.len() + 9);
    attributes.extend_from_slice(&trigger.attributes);
    let parent = match event_parent {
        Some(parent) => {
            attributes.push(KeyValue::new(attr::PARENT_ORIGIN, "event"));
            Some(parent)
        }
        None if linked.is_empty() && config.xray_parent == XrayParent::Fallback => {
            // Lambda sends a trace header even without active tracing, with Sampled=0;
            // following that would silence every span, so only a sampled one is a parent.
            let xray = context.xray_trace_id.as_deref().and_then(xray_span_context).filter(SpanContext::is_sampled);
            if xray.is_some() {
                attributes.push(KeyValue::new(attr::PARENT_ORIGIN, "xray"));
            }
            xray
        }
        None => None,
    };
    if !linked.is_empty() && linked.len() < trigger.records.len() {
        attributes.push(KeyValue::new(attr::RECORDS_WITHOUT_CONTEXT, (trigger.records.len() - linked.len()) as i64));
    }
    let links: Vec<Link> = linked
        .iter()
        .filter_map(|record| record.parent.clone().map(|sc| Link::new(sc, record.attributes.clone(), 0)))
        .collect();

    attributes.push(KeyValue::new(semconv::FAAS_INVOCATION_ID, context.request_id.clone()));
    attributes.push(KeyValue::new(semconv::FAAS_COLDSTART, cold_start));
    let arn = &context.invoked_function_arn;
    if !arn.is_empty() {
        attributes.push(KeyValue::new(semconv::CLOUD_RESOURCE_ID, arn.clone()));
        attributes.push(KeyValue::new(semconv::AWS_LAMBDA_INVOKED_ARN, arn.clone()));
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            attributes.push(KeyValue::new(semconv::CLOUD_ACCOUNT_ID, account.to_owned()));
        }
    }
    let remaining = remaining_budget(context.deadline, now);
    if let Some(remaining) = remaining {
        attributes.push(KeyValue::new(attr::DEADLINE_BUDGET_MS, remaining.as_millis() as i64));
    }
    let name = trigger.span_name.clone().unwrap_or_else(|| context.env_config.function_name.clone());
    let kind = trigger.span_kind.clone();
    InvocationPlan { trigger, name, kind, attributes, parent, links, remaining, event }
}

/// Parses `body` as [`plan`] does without `full_event`: only what trigger detection reads
/// (for this reserved key and propagator) is built, so the value is not the event, but
/// [`trigger::detect`] describes it exactly as it would the full event. Fails exactly when
/// `serde_json::from_slice::<Value>(body)` fails. Public for benchmarks and tests.
#[doc(hidden)]
pub fn parse_for_detection(
    body: &[u8],
    reserved_key: &str,
    propagator: &dyn TextMapPropagator,
) -> serde_json::Result<Value> {
    trigger::prune::parse_for_detection(body, reserved_key, propagator)
}

/// Time left until the deadline, `None` when the deadline is unknown or already past.
pub(crate) fn remaining_budget(deadline_ms: u64, now: SystemTime) -> Option<Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = u64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    deadline_ms.checked_sub(now_ms).filter(|ms| *ms > 0).map(Duration::from_millis)
}

impl InvocationPlan {
    /// The plan as JSON: what `flowtrace inspect` prints.
    pub fn to_json(&self) -> Value {
        let span_context = |sc: &SpanContext| json!({"trace_id": sc.trace_id().to_string(), "span_id": sc.span_id().to_string(), "sampled": sc.is_sampled()});
        json!({
            "trigger": {
                "source": self.trigger.source.map(trigger::TriggerSource::as_str),
                "faas_trigger": self.trigger.faas_trigger(),
                "records": self.trigger.records.len(),
            },
            "span": {
                "name": self.name,
                "kind": kind_name(&self.kind),
                "attributes": attributes_json(&self.attributes),
            },
            "parent": self.parent.as_ref().map(span_context),
            "links": self.links.iter().map(|link| json!({
                "trace_id": link.span_context.trace_id().to_string(),
                "span_id": link.span_context.span_id().to_string(),
                "attributes": attributes_json(&link.attributes),
            })).collect::<Vec<_>>(),
        })
    }
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

fn attributes_json(attributes: &[KeyValue]) -> Value {
    let map: Map<String, Value> =
        attributes.iter().map(|kv| (kv.key.as_str().to_owned(), otel_value_json(&kv.value))).collect();
    Value::Object(map)
}

fn otel_value_json(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => json!(b),
        OtelValue::I64(i) => json!(i),
        OtelValue::F64(f) => json!(f),
        other => json!(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> lambda_runtime::Context {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "r-1".into();
        context.env_config =
            std::sync::Arc::new(lambda_runtime::Config { function_name: "orders".into(), ..Default::default() });
        context
    }

    #[test]
    fn remaining_budget_handles_unknown_and_past_deadlines() {
        let now = UNIX_EPOCH + Duration::from_millis(10_000);
        assert_eq!(remaining_budget(0, now), None);
        assert_eq!(remaining_budget(9_000, now), None);
        assert_eq!(remaining_budget(13_000, now), Some(Duration::from_secs(3)));
    }

    #[test]
    fn sampled_xray_header_is_the_fallback_parent_and_unsampled_is_ignored() {
        let propagator = crate::propagation::default_propagator();
        let mut ctx = context();
        ctx.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        let sampled = plan(b"{}", &ctx, &Config::default(), propagator.as_ref(), false, SystemTime::now(), false);
        assert_eq!(
            sampled.parent.map(|p| p.trace_id().to_string()).as_deref(),
            Some("5759e988bd862e3fe1be46a994272793")
        );

        ctx.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into());
        let passive = plan(b"{}", &ctx, &Config::default(), propagator.as_ref(), false, SystemTime::now(), false);
        assert!(passive.parent.is_none(), "Lambda's passive header must not silence tracing");

        ctx.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        let config = Config { xray_parent: XrayParent::Ignore, ..Config::default() };
        assert!(plan(b"{}", &ctx, &config, propagator.as_ref(), false, SystemTime::now(), false).parent.is_none());
    }

    #[test]
    fn event_context_wins_over_xray() {
        let propagator = crate::propagation::default_propagator();
        let mut ctx = context();
        ctx.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
        let event = br#"{"headers":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},"requestContext":{"http":{"method":"GET"}},"routeKey":"GET /x","version":"2.0","rawPath":"/x"}"#;
        let plan = plan(event, &ctx, &Config::default(), propagator.as_ref(), true, SystemTime::now(), false);
        assert_eq!(
            plan.parent.as_ref().map(|p| p.trace_id().to_string()).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        let json = plan.to_json();
        assert_eq!(json["span"]["attributes"]["faas.coldstart"], true);
        assert_eq!(json["span"]["attributes"]["flowtrace.parent.origin"], "event");
    }

    #[test]
    fn the_full_event_is_parsed_only_when_asked_for_and_the_plan_is_the_same() {
        let propagator = crate::propagation::default_propagator();
        let ctx = context();
        let body =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/apigw-rest-traceparent.json"))
                .unwrap();
        let now = SystemTime::now();
        let pruned = plan(&body, &ctx, &Config::default(), propagator.as_ref(), false, now, false);
        let full = plan(&body, &ctx, &Config::default(), propagator.as_ref(), false, now, true);
        assert!(pruned.event.is_null());
        assert_eq!(full.event, serde_json::from_slice::<Value>(&body).unwrap());
        assert_eq!(pruned.to_json(), full.to_json());
        assert!(pruned.parent.is_some());

        let not_json = plan(b"{nope", &ctx, &Config::default(), propagator.as_ref(), false, now, true);
        assert!(not_json.event.is_null());
        assert_eq!(not_json.trigger.source, None);
    }
}
