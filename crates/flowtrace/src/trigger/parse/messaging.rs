//! SNS and SQS (including SNS→SQS, raw and enveloped).

use super::{
    Ctx, MAX_PAYLOAD_BYTES, base, finish_batch, first_non_whitespace, last_segment, object_at, process_name, push_str,
    record, str_at,
};
use crate::trigger::carrier::{
    SnsAttributeCarrier, SqsAttributeCarrier, extract_context, extract_non_xray, extract_xray,
};
use crate::trigger::{RecordContext, Trigger, TriggerSource};
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// `messaging.system` for SQS (a semantic-conventions well-known value).
pub(crate) const SYSTEM_SQS: &str = "aws_sqs";
/// `messaging.system` for SNS (a semantic-conventions well-known value).
pub(crate) const SYSTEM_SNS: &str = "aws.sns";
/// `messaging.operation.type` of an invocation span that processes a message or batch.
pub(crate) const OPERATION_PROCESS: &str = "process";

/// SNS: `Records[].Sns`, context in `MessageAttributes`.
pub(super) fn sns(records: &[Value], cx: Ctx<'_>) -> Trigger {
    let topic_arn = records.first().and_then(|r| r.get("Sns")).and_then(|sns| str_at(sns, "TopicArn"));
    let topic = topic_arn.map(|arn| last_segment(arn, ':'));
    let mut trigger = base(TriggerSource::Sns, SpanKind::Consumer, process_name(topic), 6);
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM_SNS));
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, OPERATION_PROCESS));
    push_str(&mut trigger.attributes, semconv::MESSAGING_DESTINATION_NAME, topic);
    push_str(&mut trigger.attributes, semconv::AWS_SNS_TOPIC_ARN, topic_arn);

    trigger.records.reserve_exact(records.len());
    for sns_record in records {
        let sns = sns_record.get("Sns");
        let parent = sns
            .and_then(|sns| object_at(sns, "MessageAttributes"))
            .and_then(|attributes| extract_context(cx.propagator, &SnsAttributeCarrier(attributes)));
        trigger.records.push(record(parent, sns.and_then(|sns| str_at(sns, "MessageId")), 0));
    }
    finish_batch(&mut trigger);
    trigger
}

/// SQS: context in `messageAttributes` (W3C), else in the SNS envelope the body may hold,
/// else in the `AWSTraceHeader` system attribute (X-Ray).
pub(super) fn sqs(records: &[Value], cx: Ctx<'_>) -> Trigger {
    let queue_arn = records.first().and_then(|r| str_at(r, "eventSourceARN"));
    let queue = queue_arn.map(|arn| last_segment(arn, ':'));
    let mut trigger = base(TriggerSource::Sqs, SpanKind::Consumer, process_name(queue), 8);
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM_SQS));
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, OPERATION_PROCESS));
    push_str(&mut trigger.attributes, semconv::MESSAGING_DESTINATION_NAME, queue);
    push_str(&mut trigger.attributes, attr::SQS_QUEUE_ARN, queue_arn);

    // The topic every record's envelope came from: None before the first record,
    // Some(None) once records disagree or one is not enveloped.
    let mut common_topic: Option<Option<String>> = None;
    trigger.records.reserve_exact(records.len());
    for message in records {
        let (record, topic) = sqs_record(message, cx);
        common_topic = match common_topic {
            None => Some(topic.map(Cow::into_owned)),
            Some(Some(seen)) if topic.as_deref() == Some(seen.as_str()) => Some(Some(seen)),
            Some(_) => Some(None),
        };
        trigger.records.push(record);
    }
    if trigger.records.len() > 1
        && let Some(Some(topic_arn)) = common_topic
    {
        trigger.attributes.push(KeyValue::new(attr::SQS_SNS_ENVELOPE, true));
        trigger.attributes.push(KeyValue::new(semconv::AWS_SNS_TOPIC_ARN, topic_arn));
    }
    finish_batch(&mut trigger);
    trigger
}

/// One SQS message, and the topic ARN of its SNS envelope, if it has one.
fn sqs_record<'a>(message: &'a Value, cx: Ctx<'_>) -> (RecordContext, Option<Cow<'a, str>>) {
    let carrier = SqsAttributeCarrier::from_record(message);
    let envelope = message.get("body").and_then(Value::as_str).and_then(SnsEnvelope::parse);
    let envelope_attributes = envelope.as_ref().and_then(|e| e.message_attributes.as_ref()).and_then(Value::as_object);
    let sns_carrier = envelope_attributes.map(SnsAttributeCarrier);
    // W3C wherever it is, before X-Ray wherever it is: with SNS active tracing, or a
    // producer in Lambda, AWSTraceHeader holds the X-Ray trace, not the producer's span.
    let parent = extract_non_xray(cx.propagator, &carrier)
        .or_else(|| sns_carrier.as_ref().and_then(|c| extract_non_xray(cx.propagator, c)))
        .or_else(|| extract_xray(cx.propagator, &carrier))
        .or_else(|| sns_carrier.as_ref().and_then(|c| extract_xray(cx.propagator, c)));
    let extra = if envelope.is_some() { 3 } else { 0 };
    let mut record = record(parent, str_at(message, "messageId"), extra);
    let Some(envelope) = envelope else {
        return (record, None);
    };
    record.attributes.push(KeyValue::new(attr::SQS_SNS_ENVELOPE, true));
    record.attributes.push(KeyValue::new(semconv::AWS_SNS_TOPIC_ARN, envelope.topic_arn.to_string()));
    push_str(&mut record.attributes, attr::SNS_MESSAGE_ID, envelope.message_id.as_deref());
    (record, Some(envelope.topic_arn))
}

/// The JSON an SNS subscription without raw delivery puts in an SQS body.
#[derive(Deserialize)]
struct SnsEnvelope<'a> {
    #[serde(rename = "Type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "TopicArn", borrow)]
    topic_arn: Cow<'a, str>,
    #[serde(rename = "MessageId", borrow, default)]
    message_id: Option<Cow<'a, str>>,
    #[serde(rename = "MessageAttributes", default)]
    message_attributes: Option<Value>,
}

impl<'a> SnsEnvelope<'a> {
    /// The envelope in `body`: a JSON object with `"Type": "Notification"` and a `TopicArn`.
    fn parse(body: &'a str) -> Option<Self> {
        if body.len() > MAX_PAYLOAD_BYTES || first_non_whitespace(body.as_bytes()) != Some(b'{') {
            return None;
        }
        serde_json::from_str::<SnsEnvelope<'a>>(body).ok().filter(|e| e.kind == "Notification")
    }
}
