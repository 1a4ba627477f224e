//! The contract between the flowtrace wrapper (inside the function process) and the
//! flowtrace extension (the layer): flowtrace's own attribute names, the loopback
//! endpoints, and the start notice.
//!
//! Standard attribute names come from `opentelemetry-semantic-conventions`; every name
//! flowtrace invents is defined here, once. This crate has no heavy dependencies so
//! the extension binary stays small.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

#[cfg(feature = "mask")]
pub mod mask;

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

    // Set by the extension, from the Lambda Telemetry API, on the platform span (a child of
    // the invocation span), the init span and synthesized invocation spans.
    /// The invocation's duration as the platform measured it, in milliseconds.
    pub const PLATFORM_DURATION_MS: &str = "flowtrace.platform.duration_ms";
    /// The billed duration, in milliseconds.
    pub const PLATFORM_BILLED_DURATION_MS: &str = "flowtrace.platform.billed_duration_ms";
    /// The function's configured memory, in MB.
    pub const PLATFORM_MEMORY_SIZE_MB: &str = "flowtrace.platform.memory_size_mb";
    /// The maximum memory used, in MB.
    pub const PLATFORM_MAX_MEMORY_USED_MB: &str = "flowtrace.platform.max_memory_used_mb";
    /// The init duration of a cold start, in milliseconds.
    pub const PLATFORM_INIT_DURATION_MS: &str = "flowtrace.platform.init_duration_ms";
    /// The platform's status: `success`, `error`, `failure`, `timeout`.
    pub const PLATFORM_STATUS: &str = "flowtrace.platform.status";
    /// The platform's error type (`Runtime.ExitError`, `Sandbox.Timedout`...).
    pub const PLATFORM_ERROR_TYPE: &str = "flowtrace.platform.error_type";
    /// The invocation's cost in USD: billed GB-s × price per GB-s + the per-request price.
    pub const PLATFORM_COST_USD: &str = "flowtrace.platform.cost_usd";
    /// The architecture the cost was priced for (`x86_64`, `arm64`).
    pub const PLATFORM_ARCHITECTURE: &str = "flowtrace.platform.architecture";
    /// `true` on an invocation span the extension made because the function died before it
    /// could hand its own off.
    pub const SYNTHESIZED: &str = "flowtrace.synthesized";
    /// Why the invocation ended abnormally, on a synthesized invocation span.
    pub const PLATFORM_REASON: &str = "flowtrace.platform.reason";
    /// `true` on a platform span the extension estimated because the platform's own report
    /// never came (a timed-out sandbox torn down before reporting).
    pub const PLATFORM_ESTIMATED: &str = "flowtrace.platform.estimated";
    /// Why flowtrace-reqwest did not inject trace context into an outbound HTTP request
    /// (`denied`: the host is not on the allow list or is on the deny list; `sigv4_signed`:
    /// the request is already SigV4-signed). Absent when context was injected.
    pub const HTTP_PROPAGATION_SKIPPED: &str = "flowtrace.http.propagation.skipped";
    /// The captured, truncated and masked body of an outbound HTTP request.
    pub const HTTP_REQUEST_BODY: &str = "flowtrace.http.request.body";
    /// The captured, truncated and masked body of an outbound HTTP request's response.
    pub const HTTP_RESPONSE_BODY: &str = "flowtrace.http.response.body";
    /// How many HTTP attempts an AWS SDK call made (1 when there was no retry).
    pub const AWS_ATTEMPTS: &str = "aws.request.attempts";
    /// The AWS region an AWS SDK call went to.
    pub const AWS_REGION: &str = "aws.region";
    /// The AWS error code of a failed AWS SDK call (`ResourceNotFoundException`, ...).
    pub const AWS_ERROR_CODE: &str = "aws.error.code";
    /// The message ids (or sequence numbers, event ids) a batch send returned, in entry order.
    pub const AWS_MESSAGE_IDS: &str = "aws.messaging.message_ids";
    /// How many entries of a batch call (SQS, SNS, Kinesis, EventBridge) AWS rejected.
    pub const AWS_FAILED_ENTRIES: &str = "aws.messaging.failed_count";
    /// The Kinesis stream shard ids a `PutRecords` call wrote to, in record order.
    pub const KINESIS_SHARD_IDS: &str = "aws.kinesis.shard_ids";
    /// The Kinesis sequence numbers a `PutRecords` call got, in record order.
    pub const KINESIS_SEQUENCE_NUMBERS: &str = "aws.kinesis.sequence_numbers";
    /// The EventBridge event bus a `PutEvents` call sent to (`default` when none was named).
    pub const EVENTBRIDGE_EVENT_BUS: &str = "aws.eventbridge.event_bus";
    /// The Lambda invocation type of an `Invoke` call (`RequestResponse`, `Event`, `DryRun`).
    pub const LAMBDA_INVOCATION_TYPE: &str = "aws.lambda.invocation_type";
    /// The `X-Amz-Function-Error` of an `Invoke` call whose function failed (`Unhandled`...).
    pub const LAMBDA_FUNCTION_ERROR: &str = "aws.lambda.function_error";
    /// The item key hashes (see [`crate::dynamodb_item_key_hash`]) of a batch or transaction
    /// write, one per item.
    pub const DYNAMODB_ITEM_KEY_HASHES: &str = "aws.dynamodb.item_key_hashes";
    /// The name of the span event flowtrace-aws records when it did not inject trace context.
    pub const INJECTION_SKIPPED_EVENT: &str = "flowtrace.injection.skipped";
    /// On [`INJECTION_SKIPPED_EVENT`]: why (`too_many_attributes`, `message_structure_json`,
    /// `not_json_object`, `too_large`, `reserved_key_present`, `table_excluded`, ...).
    pub const INJECTION_SKIPPED_REASON: &str = "flowtrace.injection.reason";
    /// On [`INJECTION_SKIPPED_EVENT`]: which entry of a batch (its id, or its index).
    pub const INJECTION_SKIPPED_ENTRY: &str = "flowtrace.injection.entry";
}

/// A `FLOWTRACE_*` setting whose value could not be used; the default was taken instead. Every
/// flowtrace crate reports bad settings with this one line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The variable's name.
    pub name: &'static str,
    /// The value found.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "flowtrace: ignoring {}={:?}: expected {}; using the default", self.name, self.value, self.expected)
    }
}

/// The reserved key that carries trace context inside payloads that have no attributes:
/// Kinesis JSON data, DynamoDB items and EventBridge `Detail`. Configurable with
/// `FLOWTRACE_RESERVED_KEY`.
pub const DEFAULT_RESERVED_KEY: &str = "_flowtrace";

/// Where the extension listens for OTLP/HTTP and start notices, on loopback only.
pub const EXTENSION_OTLP_PORT: u16 = 4318;

/// The path the extension exposes for start notices.
pub const START_NOTICE_PATH: &str = "/flowtrace/v1/start";

/// The path where the extension answers with its counters (JSON), on the same port.
pub const EXTENSION_STATS_PATH: &str = "/flowtrace/v1/stats";

/// The name of the platform span the extension adds under each invocation span.
pub const PLATFORM_SPAN_NAME: &str = "lambda.platform";

/// The name of the init span the extension adds on cold starts.
pub const INIT_SPAN_NAME: &str = "lambda.init";

/// The span event the extension adds to the platform span when an invocation used at least
/// 80 % of its timeout.
pub const INSIGHT_NEAR_TIMEOUT_EVENT: &str = "flowtrace.insight.near_timeout";

/// The span event the extension adds to the platform span when an invocation used at least
/// 80 % of the function's memory.
pub const INSIGHT_HIGH_MEMORY_EVENT: &str = "flowtrace.insight.high_memory";

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

/// One primary-key attribute value of a DynamoDB item, as [`dynamodb_item_key_hash`] sees it:
/// keys are strings, numbers or binary. Binary is the raw bytes (a stream record's JSON
/// carries them base64-encoded: decode first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoDbKeyValue<'a> {
    /// A string key (`{"S": "..."}`).
    S(&'a str),
    /// A number key (`{"N": "..."}`), in any of the forms DynamoDB accepts (`1`, `1.0`, `1e0`
    /// hash alike).
    N(&'a str),
    /// A binary key (`{"B": ...}`), raw bytes.
    B(&'a [u8]),
}

/// A stable hash of a DynamoDB table name and an item's primary key: 16 lowercase hex digits.
///
/// The producer (flowtrace-aws, on `PutItem`, `UpdateItem`, `BatchWriteItem`,
/// `TransactWriteItems` spans) and the consumer (the wrapper, from a stream record's `Keys`)
/// compute it identically and record it as [`attr::DYNAMODB_ITEM_KEY_HASH`], so a backend can
/// join the hop even when no context rode in the item (KEYS_ONLY streams, deletes).
///
/// `table` may be the table's name or its ARN (`arn:aws:dynamodb:...:table/NAME[/...]`). The
/// key's attributes may come in any order; only the key attributes (partition key, and sort
/// key if the table has one) must be passed. Numbers are compared by value.
///
/// The hash is FNV-1a (64 bits) over a length-prefixed encoding; it is a join key, not a
/// security measure.
pub fn dynamodb_item_key_hash<'a, I>(table: &str, key: I) -> String
where
    I: IntoIterator<Item = (&'a str, DynamoDbKeyValue<'a>)>,
{
    let table = table_name_of(table);
    let mut attributes: Vec<(&str, DynamoDbKeyValue<'_>)> = key.into_iter().collect();
    attributes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut hash = Fnv1a::new();
    hash.field(b"flowtrace.dynamodb.key.v1");
    hash.field(table.as_bytes());
    for (name, value) in attributes {
        hash.field(name.as_bytes());
        match value {
            DynamoDbKeyValue::S(text) => {
                hash.field(b"S");
                hash.field(text.as_bytes());
            }
            DynamoDbKeyValue::N(number) => {
                hash.field(b"N");
                match normalize_number(number) {
                    Some(normal) => hash.field(normal.as_bytes()),
                    None => hash.field(number.trim().as_bytes()),
                }
            }
            DynamoDbKeyValue::B(bytes) => {
                hash.field(b"B");
                hash.field(bytes);
            }
        }
    }
    format!("{:016x}", hash.0)
}

/// `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME[/stream/...]` → `NAME`; a name stays as it is.
fn table_name_of(table: &str) -> &str {
    match table.split_once(":table/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => rest.split('/').next().unwrap_or(rest),
        _ => table,
    }
}

/// A DynamoDB number in one canonical form (`[-]DIGITSeEXP`, no leading or trailing zeros in
/// the digits; `0` for zero), or `None` when it is not a number.
fn normalize_number(raw: &str) -> Option<String> {
    let text = raw.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (unsigned.get(..at)?, unsigned.get(at + 1..)?.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    if !integer.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = integer.chars().chain(fraction.chars()).collect();
    let leading = digits.bytes().take_while(|b| *b == b'0').count();
    let significant = digits.get(leading..)?.trim_end_matches('0');
    if significant.is_empty() {
        return Some("0".to_owned());
    }
    // value = 0.<significant> × 10^point
    let point = exponent.checked_add(i64::try_from(integer.len()).ok()?)?.checked_sub(i64::try_from(leading).ok()?)?;
    Some(format!("{}{significant}e{point}", if negative { "-" } else { "" }))
}

/// 64-bit FNV-1a over length-prefixed fields.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }
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
    #[test]
    fn item_key_hash_is_stable_and_order_and_number_form_independent() {
        use DynamoDbKeyValue::{B, N, S};
        let a = dynamodb_item_key_hash("Posts", [("pk", S("post#1")), ("sk", N("10"))]);
        assert_eq!(a.len(), 16);
        assert_eq!(a, dynamodb_item_key_hash("Posts", [("sk", N("1.0e1")), ("pk", S("post#1"))]));
        assert_eq!(
            a,
            dynamodb_item_key_hash(
                "arn:aws:dynamodb:us-east-1:123:table/Posts/stream/2024",
                [("pk", S("post#1")), ("sk", N("010.00"))]
            )
        );
        assert_ne!(a, dynamodb_item_key_hash("Posts", [("pk", S("post#1")), ("sk", N("11"))]));
        assert_ne!(a, dynamodb_item_key_hash("Other", [("pk", S("post#1")), ("sk", N("10"))]));
        assert_ne!(a, dynamodb_item_key_hash("Posts", [("pk", S("post#1")), ("sk", S("10"))]));
        assert_ne!(dynamodb_item_key_hash("T", [("id", B(b"ab"))]), dynamodb_item_key_hash("T", [("id", S("ab"))]));
        // A fixed value: the consumer side must compute exactly this.
        assert_eq!(dynamodb_item_key_hash("T", [("id", S("1"))]), dynamodb_item_key_hash("T", [("id", S("1"))]));
        assert_eq!(normalize_number("-0.00"), Some("0".to_owned()));
        assert_eq!(normalize_number("-12.5e-1"), Some("-125e1".to_owned()));
        assert_eq!(normalize_number("0.0125"), Some("125e-1".to_owned()));
        assert_eq!(normalize_number("abc"), None);
    }
}
