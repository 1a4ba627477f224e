//! Trigger parsing: a pure function from an event to a description of what triggered the
//! invocation, the span it deserves, and the trace context each record carried.
//!
//! Nothing here does I/O or reads globals. The propagator is passed in, so tests and the
//! `flowtrace inspect` command get exactly what the wrapper gets.

mod carrier;
mod parse;
pub(crate) mod prune;
#[cfg(test)]
mod tests;

use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt};
use serde_json::Value;
use std::collections::HashMap;

pub use carrier::{
    ClientContextCarrier, DynamoDbMapCarrier, HeaderCarrier, JsonMapCarrier, SnsAttributeCarrier, SqsAttributeCarrier,
};

/// The event source that triggered an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TriggerSource {
    /// API Gateway REST API (payload format 1.0).
    ApiGatewayRest,
    /// API Gateway HTTP API (payload format 2.0).
    ApiGatewayHttp,
    /// Application Load Balancer.
    Alb,
    /// Lambda Function URL.
    FunctionUrl,
    /// SNS notification.
    Sns,
    /// SQS batch.
    Sqs,
    /// Kinesis Data Streams batch.
    Kinesis,
    /// DynamoDB Streams batch.
    DynamoDb,
    /// S3 event notification.
    S3,
    /// EventBridge event (custom bus or AWS service event).
    EventBridge,
    /// EventBridge Scheduler / CloudWatch scheduled event.
    Schedule,
    /// A direct invocation from a Step Functions state machine.
    StepFunctions,
    /// Any other direct invocation (Lambda Invoke API, SDK, console test).
    Direct,
}

impl TriggerSource {
    /// The short, stable name recorded as `flowtrace.trigger.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiGatewayRest => "apigw.rest",
            Self::ApiGatewayHttp => "apigw.http",
            Self::Alb => "alb",
            Self::FunctionUrl => "function_url",
            Self::Sns => "sns",
            Self::Sqs => "sqs",
            Self::Kinesis => "kinesis",
            Self::DynamoDb => "dynamodb",
            Self::S3 => "s3",
            Self::EventBridge => "eventbridge",
            Self::Schedule => "schedule",
            Self::StepFunctions => "stepfunctions",
            Self::Direct => "direct",
        }
    }

    /// The OpenTelemetry `faas.trigger` value for this source.
    pub fn faas_trigger(self) -> &'static str {
        match self {
            Self::ApiGatewayRest | Self::ApiGatewayHttp | Self::Alb | Self::FunctionUrl => "http",
            Self::Sns | Self::Sqs | Self::EventBridge => "pubsub",
            Self::Kinesis | Self::DynamoDb | Self::S3 => "datasource",
            Self::Schedule => "timer",
            Self::StepFunctions | Self::Direct => "other",
        }
    }

    /// Whether this source is an HTTP request (and a 5xx response is an error).
    pub fn is_http(self) -> bool {
        self.faas_trigger() == "http"
    }
}

/// What one record (or the whole event, for single-record sources) carried.
#[derive(Debug, Clone, Default)]
pub struct RecordContext {
    /// The upstream span context, when the record carried a valid one.
    pub parent: Option<SpanContext>,
    /// The record's correlation id: message id, sequence number, event id, request id.
    pub message_id: Option<String>,
    /// Attributes for the span link to this record (always includes
    /// `messaging.message.id` when `message_id` is known).
    pub attributes: Vec<KeyValue>,
}

/// Everything the wrapper needs to know about an event, derived without I/O.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// The recognised source, `None` when the event is not one flowtrace knows.
    pub source: Option<TriggerSource>,
    /// The span kind: SERVER for HTTP, CONSUMER for messaging and streams, INTERNAL otherwise.
    pub span_kind: SpanKind,
    /// The span name (`GET /posts/{id}`, `process orders`). `None` means "use the function name".
    pub span_name: Option<String>,
    /// Attributes of the trigger itself (`faas.trigger`, `http.*`, `messaging.*`, ...).
    pub attributes: Vec<KeyValue>,
    /// One entry per record for batches; one entry for single-message and HTTP events; empty
    /// when the event carries no records and no context.
    pub records: Vec<RecordContext>,
}

impl Trigger {
    /// The description of an event flowtrace does not recognise.
    pub fn other() -> Self {
        Self {
            source: None,
            span_kind: SpanKind::Server,
            span_name: None,
            attributes: vec![KeyValue::new(opentelemetry_semantic_conventions::attribute::FAAS_TRIGGER, "other")],
            records: Vec::new(),
        }
    }

    /// The `faas.trigger` value.
    pub fn faas_trigger(&self) -> &'static str {
        self.source.map_or("other", TriggerSource::faas_trigger)
    }

    /// Decides between a parent and links, as DESIGN.md says:
    /// one record, or all records sharing one upstream context → that context is the parent;
    /// otherwise no parent, and one link per record that carried a context.
    pub fn parent_and_links(&self) -> (Option<SpanContext>, Vec<&RecordContext>) {
        let with_context: Vec<&RecordContext> = self.records.iter().filter(|r| r.parent.is_some()).collect();
        let Some(first) = with_context.first().and_then(|r| r.parent.as_ref()) else {
            return (None, Vec::new());
        };
        let all_records_carry_it = with_context.len() == self.records.len();
        let one_upstream = with_context.iter().all(|r| {
            r.parent.as_ref().is_some_and(|p| p.trace_id() == first.trace_id() && p.span_id() == first.span_id())
        });
        if all_records_carry_it && one_upstream { (Some(first.clone()), Vec::new()) } else { (None, with_context) }
    }
}

/// Inputs beside the event that can carry context: the Lambda client context's `custom` map
/// (Lambda Invoke), which lives in the invocation context, not in the payload.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventEnvelope<'a> {
    /// `context.client_context.custom`, when the invoker set one.
    pub client_context_custom: Option<&'a HashMap<String, String>>,
    /// The reserved key that carries context inside Kinesis data, DynamoDB items and
    /// EventBridge detail.
    pub reserved_key: &'a str,
}

/// Describes an event. Never panics, whatever the input; an event it does not recognise is
/// `faas.trigger = other` with no records.
pub fn detect(event: &Value, envelope: EventEnvelope<'_>, propagator: &dyn TextMapPropagator) -> Trigger {
    parse::detect(event, envelope, propagator)
}

/// Describes a typed event (any `aws_lambda_events` type, or your own), by way of its JSON form.
pub fn detect_typed<T: serde::Serialize>(
    event: &T,
    envelope: EventEnvelope<'_>,
    propagator: &dyn TextMapPropagator,
) -> Trigger {
    match serde_json::to_value(event) {
        Ok(value) => detect(&value, envelope, propagator),
        Err(_) => Trigger::other(),
    }
}

/// Extracts a valid remote span context through `propagator`, or `None`.
pub(crate) fn extract_span_context(
    propagator: &dyn TextMapPropagator,
    carrier: &dyn opentelemetry::propagation::Extractor,
) -> Option<SpanContext> {
    // From an empty context: `extract` would start from `Context::current()`, and inside an
    // invocation a carrier without context would then yield the invocation's own span.
    let cx = propagator.extract_with_context(&opentelemetry::Context::new(), carrier);
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}
