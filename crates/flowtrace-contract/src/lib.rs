//! The contract between the flowtrace wrapper (inside the function process) and the
//! flowtrace extension (the layer): flowtrace's own attribute names, the loopback
//! endpoints, and the start notice.
//!
//! Standard attribute names come from `opentelemetry-semantic-conventions`; every name
//! flowtrace invents is defined here, once. This crate has no heavy dependencies so
//! the extension binary stays small.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// flowtrace's own attribute names.
pub mod attr {
    /// The reason a span was ended by flowtrace rather than by its owner
    /// (`"timeout"` when the timeout guard cut it off).
    pub const CUT_OFF: &str = "flowtrace.cut_off";
    /// The names of the spans the timeout guard cut off (the calls that were hanging).
    pub const CUT_OFF_SPANS: &str = "flowtrace.cut_off.spans";
    /// The trigger flowtrace recognised (`sqs`, `sns`, `apigw.rest`, ...).
    pub const TRIGGER_SOURCE: &str = "flowtrace.trigger.source";
    /// Where the parent context came from (`event`, `xray_env`, `client_context`).
    pub const PARENT_ORIGIN: &str = "flowtrace.parent.origin";
    /// Number of records in a batch that carried no trace context.
    pub const RECORDS_WITHOUT_CONTEXT: &str = "flowtrace.batch.records_without_context";
    /// The captured, truncated and masked event payload.
    pub const EVENT_PAYLOAD: &str = "flowtrace.event.payload";
    /// The captured, truncated and masked response payload.
    pub const RESPONSE_PAYLOAD: &str = "flowtrace.response.payload";
    /// The Lambda function's timeout budget for this invocation, in milliseconds.
    pub const DEADLINE_BUDGET_MS: &str = "flowtrace.deadline.budget_ms";
    /// The EventBridge event source (`aws.events`, `com.example.orders`...).
    pub const EVENTBRIDGE_SOURCE: &str = "aws.eventbridge.source";
    /// The EventBridge detail-type.
    pub const EVENTBRIDGE_DETAIL_TYPE: &str = "aws.eventbridge.detail_type";
    /// The EventBridge rule(s) that matched (from `resources`).
    pub const EVENTBRIDGE_RESOURCES: &str = "aws.eventbridge.resources";
    /// The Kinesis shard id of a record.
    pub const KINESIS_SHARD_ID: &str = "aws.kinesis.shard_id";
    /// The Kinesis sequence number of a record.
    pub const KINESIS_SEQUENCE_NUMBER: &str = "aws.kinesis.sequence_number";
    /// The Kinesis partition key of a record.
    pub const KINESIS_PARTITION_KEY: &str = "aws.kinesis.partition_key";
    /// The DynamoDB stream event name (INSERT, MODIFY, REMOVE).
    pub const DYNAMODB_EVENT_NAME: &str = "aws.dynamodb.stream.event_name";
    /// The DynamoDB stream view type (NEW_IMAGE, KEYS_ONLY...).
    pub const DYNAMODB_STREAM_VIEW_TYPE: &str = "aws.dynamodb.stream.view_type";
    /// A stable hash of table name + primary key, recorded on the producer's PutItem span
    /// and on the consumer's stream record, so a backend can join the hop even when no
    /// context rode in the item (KEYS_ONLY streams, deletes, foreign producers).
    pub const DYNAMODB_ITEM_KEY_HASH: &str = "aws.dynamodb.item_key_hash";
    /// The SNS topic ARN.
    pub const SNS_TOPIC_ARN: &str = "aws.sns.topic.arn";
    /// The SNS message id of the notification an SQS message carries in its body (SNS→SQS
    /// without raw delivery): the id the publisher's span recorded, while
    /// `messaging.message.id` holds the SQS message id.
    pub const SNS_MESSAGE_ID: &str = "aws.sns.message_id";
    /// The SQS queue URL or ARN.
    pub const SQS_QUEUE_ARN: &str = "aws.sqs.queue.arn";
    /// Whether an SQS message carried an SNS envelope (SNS→SQS without raw delivery).
    pub const SQS_SNS_ENVELOPE: &str = "aws.sqs.sns_envelope";
    /// The Step Functions execution ARN, for direct invocations from a state machine.
    pub const STEPFUNCTIONS_EXECUTION_ARN: &str = "aws.stepfunctions.execution.arn";
    /// The Step Functions state name.
    pub const STEPFUNCTIONS_STATE_NAME: &str = "aws.stepfunctions.state.name";
    /// The HTTP API / REST API id.
    pub const APIGW_API_ID: &str = "aws.apigateway.api_id";
    /// The API Gateway stage.
    pub const APIGW_STAGE: &str = "aws.apigateway.stage";
    /// The API Gateway (or Function URL) request id.
    pub const APIGW_REQUEST_ID: &str = "aws.apigateway.request_id";
    /// The ALB target group ARN.
    pub const ALB_TARGET_GROUP_ARN: &str = "aws.elb.target_group_arn";
    /// The schedule rule ARN for scheduled events.
    pub const SCHEDULE_RULE: &str = "aws.events.rule_arn";
}

/// The reserved key that carries trace context inside payloads that have no attributes:
/// Kinesis JSON data, DynamoDB items and EventBridge `Detail`. Configurable with
/// `FLOWTRACE_RESERVED_KEY`.
pub const DEFAULT_RESERVED_KEY: &str = "_flowtrace";

/// Where the extension listens for OTLP/HTTP and start notices, on loopback only.
pub const EXTENSION_OTLP_PORT: u16 = 4318;

/// The path the extension exposes for start notices.
pub const START_NOTICE_PATH: &str = "/flowtrace/v1/start";

/// The path of the extension's executable inside a Lambda environment. Its presence means
/// the layer is attached.
pub const EXTENSION_PATH: &str = "/opt/extensions/flowtrace-extension";

/// Sent by the wrapper to the extension when an invocation starts, so that the extension can
/// still emit the invocation span in the right trace if the function dies before it can
/// (timeout, out-of-memory, crash, `panic = "abort"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNotice {
    /// The Lambda request id.
    pub request_id: String,
    /// The invocation span's trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The invocation span's span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The invocation span's parent span id, when it has a parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The invocation span's name.
    pub name: String,
    /// The invocation span's start, in nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// Whether the span is sampled. An unsampled invocation needs no synthesized span.
    pub sampled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_notice_round_trips_in_camel_case() {
        let notice = StartNotice {
            request_id: "r-1".into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            parent_span_id: None,
            name: "process orders".into(),
            start_time_unix_nano: 1,
            sampled: true,
        };
        let json = serde_json::to_string(&notice).unwrap();
        assert!(json.contains("\"requestId\":\"r-1\""), "{json}");
        assert!(!json.contains("parentSpanId"), "{json}");
        assert_eq!(serde_json::from_str::<StartNotice>(&json).unwrap(), notice);
    }
}
