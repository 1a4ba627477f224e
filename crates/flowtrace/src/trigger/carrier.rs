//! `Extractor` implementations over the places AWS events carry trace context.
//!
//! Every carrier borrows from the event's JSON and answers `get` with a `&str` that points
//! into it: nothing is copied or re-serialised. The keys the propagators ask for are
//! `traceparent` and `tracestate` (W3C) and `x-amzn-trace-id` (X-Ray); each carrier maps
//! them onto where its AWS service puts them.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::SpanContext;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The header the X-Ray propagator reads.
pub(crate) const XRAY_HEADER: &str = "x-amzn-trace-id";
/// The name the X-Ray propagator falls back to (the Lambda environment variable).
const XRAY_ENV_KEY: &str = "_X_AMZN_TRACE_ID";
/// The SQS system attribute (and SNS message attribute) that carries an X-Ray header.
const AWS_TRACE_HEADER: &str = "AWSTraceHeader";

/// Whether `key` names the X-Ray header (under either name the X-Ray propagator uses).
fn is_xray_key(key: &str) -> bool {
    key.eq_ignore_ascii_case(XRAY_HEADER) || key == XRAY_ENV_KEY
}

/// Looks `key` up exactly, then ASCII-case-insensitively.
fn get_ignore_case<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| map.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value))
}

/// Headers whose values flowtrace never hands out, whoever asks.
fn is_secret_header(name: &str) -> bool {
    const SECRET: [&str; 6] =
        ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-security-token", "x-api-key"];
    SECRET.iter().any(|secret| name.eq_ignore_ascii_case(secret))
}

/// HTTP headers of an API Gateway (REST or HTTP API), ALB or Function URL event:
/// `headers` (name → value) and, for REST and ALB, `multiValueHeaders` (name → list of values).
///
/// Lookups ignore ASCII case, as HTTP does. The values of `Authorization`, `Cookie`,
/// `X-Amz-Security-Token` and the like are never returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderCarrier<'a> {
    headers: Option<&'a Map<String, Value>>,
    multi_value_headers: Option<&'a Map<String, Value>>,
}

impl<'a> HeaderCarrier<'a> {
    /// A carrier over a `headers` map and an optional `multiValueHeaders` map.
    pub fn new(headers: Option<&'a Map<String, Value>>, multi_value_headers: Option<&'a Map<String, Value>>) -> Self {
        Self { headers, multi_value_headers }
    }

    /// A carrier over an HTTP event's `headers` and `multiValueHeaders`. Anything that is not
    /// an object is treated as absent.
    pub fn from_event(event: &'a Value) -> Self {
        Self::new(
            event.get("headers").and_then(Value::as_object),
            event.get("multiValueHeaders").and_then(Value::as_object),
        )
    }

    /// The value of header `name` (any case): from `headers`, else the first value in
    /// `multiValueHeaders`. `None` for secret headers.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        if is_secret_header(name) {
            return None;
        }
        self.headers
            .and_then(|headers| get_ignore_case(headers, name))
            .and_then(Value::as_str)
            .or_else(|| self.multi_values(name).and_then(|values| values.iter().find_map(Value::as_str)))
    }

    fn multi_values(&self, name: &str) -> Option<&'a [Value]> {
        self.multi_value_headers
            .and_then(|headers| get_ignore_case(headers, name))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
    }
}

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.header(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.headers
            .into_iter()
            .chain(self.multi_value_headers)
            .flat_map(|map| map.keys().map(String::as_str))
            .collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        if is_secret_header(key) {
            return None;
        }
        if let Some(values) = self.multi_values(key) {
            let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            if !values.is_empty() {
                return Some(values);
            }
        }
        self.header(key).map(|value| vec![value])
    }
}

/// SNS message attributes (`Records[].Sns.MessageAttributes`, or `MessageAttributes` of an
/// SNS envelope inside an SQS body): name → `{"Type": "String", "Value": "..."}`.
///
/// `x-amzn-trace-id` is read from an `AWSTraceHeader` attribute. Binary attributes are
/// ignored.
#[derive(Debug, Clone, Copy)]
pub struct SnsAttributeCarrier<'a>(pub &'a Map<String, Value>);

impl SnsAttributeCarrier<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        let attribute = get_ignore_case(self.0, name)?;
        let is_binary = attribute.get("Type").and_then(Value::as_str).is_some_and(|t| t.starts_with("Binary"));
        if is_binary {
            return None;
        }
        attribute.get("Value").and_then(Value::as_str)
    }
}

impl Extractor for SnsAttributeCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if is_xray_key(key) {
            self.value(AWS_TRACE_HEADER).or_else(|| self.value(XRAY_HEADER))
        } else {
            self.value(key)
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// An SQS message's attributes: user `messageAttributes` (name →
/// `{"stringValue": "...", "dataType": "String"}`) and the system `attributes`, whose
/// `AWSTraceHeader` is answered for `x-amzn-trace-id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqsAttributeCarrier<'a> {
    /// `messageAttributes`.
    pub message_attributes: Option<&'a Map<String, Value>>,
    /// `attributes` (system attributes).
    pub system_attributes: Option<&'a Map<String, Value>>,
}

impl<'a> SqsAttributeCarrier<'a> {
    /// A carrier over one SQS record (`Records[i]`).
    pub fn from_record(record: &'a Value) -> Self {
        Self {
            message_attributes: record.get("messageAttributes").and_then(Value::as_object),
            system_attributes: record.get("attributes").and_then(Value::as_object),
        }
    }

    fn aws_trace_header(&self) -> Option<&'a str> {
        self.system_attributes?.get(AWS_TRACE_HEADER)?.as_str()
    }

    fn message_attribute(&self, name: &str) -> Option<&'a str> {
        let attribute = get_ignore_case(self.message_attributes?, name)?;
        let is_binary = attribute.get("dataType").and_then(Value::as_str).is_some_and(|t| t.starts_with("Binary"));
        if is_binary {
            return None;
        }
        attribute.get("stringValue").and_then(Value::as_str)
    }
}

impl Extractor for SqsAttributeCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if is_xray_key(key) {
            self.aws_trace_header().or_else(|| self.message_attribute(XRAY_HEADER))
        } else {
            self.message_attribute(key)
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> =
            self.message_attributes.into_iter().flat_map(|m| m.keys().map(String::as_str)).collect();
        if self.aws_trace_header().is_some() {
            keys.push(XRAY_HEADER);
        }
        keys
    }
}

/// A plain JSON object of strings: the reserved key's object in Kinesis data and EventBridge
/// `detail`, or the decoded JSON of a DynamoDB string attribute. Lookups ignore ASCII case;
/// values that are not strings are ignored.
#[derive(Debug, Clone, Copy)]
pub struct JsonMapCarrier<'a>(pub &'a Map<String, Value>);

impl Extractor for JsonMapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        get_ignore_case(self.0, key)?.as_str()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A DynamoDB map attribute's contents (`{"M": {...}}` without the `M`), where every value is
/// itself a DynamoDB attribute value: `traceparent` → `{"S": "00-..."}`. Only `S` values are
/// read.
#[derive(Debug, Clone, Copy)]
pub struct DynamoDbMapCarrier<'a>(pub &'a Map<String, Value>);

impl Extractor for DynamoDbMapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        get_ignore_case(self.0, key)?.get("S")?.as_str()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The Lambda client context's `custom` map, set by a Lambda Invoke caller. Lookups try the
/// exact key first, then ignore ASCII case.
#[derive(Debug, Clone, Copy)]
pub struct ClientContextCarrier<'a>(pub &'a HashMap<String, String>);

impl Extractor for ClientContextCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .or_else(|| self.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value))
            .map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A lone `traceparent` value, for a reserved key that holds just that string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BareTraceparent<'a>(pub(crate) &'a str);

impl Extractor for BareTraceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        key.eq_ignore_ascii_case("traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// A view of a carrier without its X-Ray header.
struct WithoutXray<'a>(&'a dyn Extractor);

impl Extractor for WithoutXray<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if is_xray_key(key) { None } else { self.0.get(key) }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().into_iter().filter(|key| !is_xray_key(key)).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        if is_xray_key(key) { None } else { self.0.get_all(key) }
    }
}

/// A view of a carrier with nothing but its X-Ray header.
struct XrayOnly<'a>(&'a dyn Extractor);

impl Extractor for XrayOnly<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if is_xray_key(key) { self.0.get(XRAY_HEADER) } else { None }
    }

    fn keys(&self) -> Vec<&str> {
        if self.0.get(XRAY_HEADER).is_some() { vec![XRAY_HEADER] } else { Vec::new() }
    }
}

/// The context a carrier holds in anything but the X-Ray header (W3C `traceparent`, or
/// whatever else the propagator reads).
pub(crate) fn extract_non_xray(propagator: &dyn TextMapPropagator, carrier: &dyn Extractor) -> Option<SpanContext> {
    super::extract_span_context(propagator, &WithoutXray(carrier))
}

/// The context a carrier holds in its X-Ray header, when the propagator reads X-Ray.
pub(crate) fn extract_xray(propagator: &dyn TextMapPropagator, carrier: &dyn Extractor) -> Option<SpanContext> {
    carrier.get(XRAY_HEADER)?;
    super::extract_span_context(propagator, &XrayOnly(carrier))
}

/// The context a carrier holds, W3C first, then X-Ray.
///
/// A composite propagator lets the *last* extractor that finds a header win, and the X-Ray
/// propagator "finds" a context even in a header without a `Parent` (API Gateway and ALB
/// always add `X-Amzn-Trace-Id: Root=...`), which would replace a valid `traceparent` with
/// an invalid context. Extracting in two passes makes the outcome independent of the
/// propagators' order: a valid W3C context wins, and X-Ray is the fallback.
pub(crate) fn extract_context(propagator: &dyn TextMapPropagator, carrier: &dyn Extractor) -> Option<SpanContext> {
    extract_non_xray(propagator, carrier).or_else(|| extract_xray(propagator, carrier))
}
