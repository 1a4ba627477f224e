//! EventBridge events, scheduled events, and Step Functions direct invocations.

use super::{Ctx, base, context_in_reserved, finish_batch, kv, process_name, push_str, record, str_at};
use crate::trigger::{Trigger, TriggerSource};
use flowtrace_contract::attr;
use opentelemetry::trace::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::{Map, Value};

/// The `detail-type` of EventBridge (and CloudWatch Events) schedule rules and of
/// EventBridge Scheduler's events.
const SCHEDULED_EVENT: &str = "Scheduled Event";

/// An EventBridge event (`detail-type` + `source`), or a scheduled one.
pub(super) fn detect_eventbridge(event: &Map<String, Value>, cx: Ctx<'_>) -> Option<Trigger> {
    let detail_type = event.get("detail-type")?.as_str()?;
    let source = event.get("source")?.as_str()?;
    let id = event.get("id").and_then(Value::as_str);
    if detail_type == SCHEDULED_EVENT && matches!(source, "aws.events" | "aws.scheduler") {
        let mut trigger = base(TriggerSource::Schedule, SpanKind::Internal, None, 2);
        let rule = event.get("resources").and_then(|r| r.get(0)).and_then(Value::as_str);
        push_str(&mut trigger.attributes, attr::SCHEDULE_RULE, rule);
        push_str(&mut trigger.attributes, semconv::FAAS_TIME, event.get("time").and_then(Value::as_str));
        trigger.records.push(record(None, id, 0));
        return Some(trigger);
    }

    let mut trigger = base(TriggerSource::EventBridge, SpanKind::Consumer, process_name(Some(detail_type)), 3);
    trigger.attributes.push(kv(attr::EVENTBRIDGE_SOURCE, source));
    trigger.attributes.push(kv(attr::EVENTBRIDGE_DETAIL_TYPE, detail_type));
    let parent = event
        .get("detail")
        .and_then(|detail| detail.get(cx.envelope.reserved_key))
        .and_then(|reserved| context_in_reserved(reserved, cx));
    trigger.records.push(record(parent, id, 0));
    finish_batch(&mut trigger);
    Some(trigger)
}

/// A payload holding the Step Functions context object (`$$`), at the top level or under
/// `$$` or `context`: `{"Execution": {"Id": "arn:aws:states:..."}, "State": {"Name": ...}}`.
pub(super) fn detect_step_functions(event: &Map<String, Value>) -> Option<Trigger> {
    let context = if is_step_functions_context(event) {
        event
    } else {
        ["$$", "context", "Context"]
            .iter()
            .find_map(|key| event.get(*key).and_then(Value::as_object).filter(|c| is_step_functions_context(c)))?
    };
    let mut trigger = base(TriggerSource::StepFunctions, SpanKind::Internal, None, 3);
    let execution = context.get("Execution");
    push_str(&mut trigger.attributes, attr::STEPFUNCTIONS_EXECUTION_ARN, execution.and_then(|e| str_at(e, "Id")));
    push_str(
        &mut trigger.attributes,
        attr::STEPFUNCTIONS_STATE_NAME,
        context.get("State").and_then(|s| str_at(s, "Name")),
    );
    push_str(
        &mut trigger.attributes,
        semconv::AWS_STEP_FUNCTIONS_STATE_MACHINE_ARN,
        context.get("StateMachine").and_then(|m| str_at(m, "Id")),
    );
    Some(trigger)
}

fn is_step_functions_context(object: &Map<String, Value>) -> bool {
    let execution_arn = object.get("Execution").and_then(|e| str_at(e, "Id"));
    let state_name = object.get("State").and_then(|s| str_at(s, "Name"));
    execution_arn.is_some_and(|arn| arn.starts_with("arn:") && arn.contains(":states:")) && state_name.is_some()
}
