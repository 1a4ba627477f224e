//! Per-service knowledge: span attributes from the input and output, and injection. Each
//! service lives behind its cargo feature; without it, its calls still get the generic span.

#[cfg(feature = "dynamodb")]
pub(crate) mod dynamodb;
#[cfg(feature = "eventbridge")]
pub(crate) mod eventbridge;
#[cfg(feature = "kinesis")]
pub(crate) mod kinesis;
#[cfg(feature = "lambda")]
pub(crate) mod lambda;
#[cfg(feature = "sns")]
pub(crate) mod sns;
#[cfg(feature = "sqs")]
pub(crate) mod sqs;

use crate::config::Config;
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use std::borrow::Cow;

/// The services flowtrace-aws knows more about than the generic span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Sns,
    Sqs,
    Kinesis,
    DynamoDb,
    EventBridge,
    Lambda,
    Other,
}

impl Known {
    /// From the service name in the operation's metadata.
    pub(crate) fn from_service(service: &str) -> Self {
        match service {
            "SNS" => Known::Sns,
            "SQS" => Known::Sqs,
            "Kinesis" => Known::Kinesis,
            "DynamoDB" => Known::DynamoDb,
            "EventBridge" => Known::EventBridge,
            "Lambda" => Known::Lambda,
            _ => Known::Other,
        }
    }
}

/// What describing a request needs besides its input (each service uses some of it).
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub(crate) struct Request<'a> {
    /// The operation's name (shared: cloning it does not allocate once the operation is known).
    pub(crate) operation: &'a Cow<'static, str>,
    pub(crate) region: Option<&'a str>,
    pub(crate) config: &'a Config,
}

/// Adds the service's attributes for `input` and returns the span kind (`None`: CLIENT).
#[allow(unused_variables, clippy::ptr_arg)]
pub(crate) fn describe(
    service: Known,
    input: &Input,
    request: &Request<'_>,
    attributes: &mut Vec<KeyValue>,
) -> Option<SpanKind> {
    match service {
        #[cfg(feature = "sns")]
        Known::Sns => sns::describe(input, request, attributes),
        #[cfg(feature = "sqs")]
        Known::Sqs => sqs::describe(input, request, attributes),
        #[cfg(feature = "kinesis")]
        Known::Kinesis => kinesis::describe(input, request, attributes),
        #[cfg(feature = "dynamodb")]
        Known::DynamoDb => dynamodb::describe(input, request, attributes),
        #[cfg(feature = "eventbridge")]
        Known::EventBridge => eventbridge::describe(input, request, attributes),
        #[cfg(feature = "lambda")]
        Known::Lambda => lambda::describe(input, request, attributes),
        _ => None,
    }
}

/// What injection did that the output must undo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Undo {
    /// Remove the reserved attribute from `UpdateItem`'s returned attributes: the user asked
    /// for the attributes the update changed, and flowtrace's own change is not theirs.
    pub(crate) reserved_from_updated_attributes: bool,
}

/// Injects the context of the span in `cx` into `input`, when the service's injection is on.
#[allow(unused_variables)]
pub(crate) fn inject(service: Known, input: &mut Input, cx: &Context, config: &Config) -> Undo {
    use crate::config::Service;
    let Some(service_config) = (match service {
        Known::Sns => Some(Service::Sns),
        Known::Sqs => Some(Service::Sqs),
        Known::Kinesis => Some(Service::Kinesis),
        Known::DynamoDb => Some(Service::DynamoDb),
        Known::EventBridge => Some(Service::EventBridge),
        Known::Lambda => Some(Service::Lambda),
        Known::Other => None,
    }) else {
        return Undo::default();
    };
    if !config.injects(service_config) {
        return Undo::default();
    }
    // Formatting the carrier is most of injection's own cost: only for calls that inject.
    let injectable = match service {
        #[cfg(feature = "sns")]
        Known::Sns => sns::injectable(input),
        #[cfg(feature = "sqs")]
        Known::Sqs => sqs::injectable(input),
        #[cfg(feature = "kinesis")]
        Known::Kinesis => kinesis::injectable(input),
        #[cfg(feature = "dynamodb")]
        Known::DynamoDb => dynamodb::injectable(input),
        #[cfg(feature = "eventbridge")]
        Known::EventBridge => eventbridge::injectable(input),
        #[cfg(feature = "lambda")]
        Known::Lambda => lambda::injectable(input),
        _ => false,
    };
    if !injectable {
        return Undo::default();
    }
    let Some(carrier) = crate::inject::Carrier::from_context(cx) else {
        return Undo::default();
    };
    use opentelemetry::trace::TraceContextExt;
    let span = cx.span();
    match service {
        #[cfg(feature = "sns")]
        Known::Sns => sns::inject(input, &carrier, &span),
        #[cfg(feature = "sqs")]
        Known::Sqs => sqs::inject(input, carrier, &span),
        #[cfg(feature = "kinesis")]
        Known::Kinesis => kinesis::inject(input, &carrier, &span, config),
        #[cfg(feature = "dynamodb")]
        Known::DynamoDb => return dynamodb::inject(input, carrier, &span, config),
        #[cfg(feature = "eventbridge")]
        Known::EventBridge => eventbridge::inject(input, &carrier, &span, config),
        #[cfg(feature = "lambda")]
        Known::Lambda => lambda::inject(input, &carrier, &span),
        _ => {}
    }
    Undo::default()
}

/// Undoes in the output what injection added to it (see [`Undo`]).
#[allow(unused_variables)]
pub(crate) fn undo(undo: Undo, output: &mut Output, config: &Config) {
    #[cfg(feature = "dynamodb")]
    if undo.reserved_from_updated_attributes {
        dynamodb::remove_reserved_from_output(output, config);
    }
}

/// Records what the service returned (message ids, sequence numbers, capacity...).
#[allow(unused_variables)]
pub(crate) fn record_output(service: Known, output: &Output, span: &SpanRef<'_>, config: &Config) {
    match service {
        #[cfg(feature = "sns")]
        Known::Sns => sns::record_output(output, span),
        #[cfg(feature = "sqs")]
        Known::Sqs => sqs::record_output(output, span),
        #[cfg(feature = "kinesis")]
        Known::Kinesis => kinesis::record_output(output, span),
        #[cfg(feature = "dynamodb")]
        Known::DynamoDb => dynamodb::record_output(output, span),
        #[cfg(feature = "eventbridge")]
        Known::EventBridge => eventbridge::record_output(output, span),
        #[cfg(feature = "lambda")]
        Known::Lambda => lambda::record_output(output, span),
        _ => {}
    }
}

/// A string-array attribute value.
#[allow(dead_code)]
pub(crate) fn string_array<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Value {
    Value::Array(Array::String(values.into_iter().map(|v| StringValue::from(v.into())).collect()))
}

/// `usize` as an `i64` attribute value.
#[allow(dead_code)]
pub(crate) fn count(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The last `separator`-delimited segment (`arn:aws:sns:...:orders` → `orders`).
#[allow(dead_code)]
pub(crate) fn last_segment(text: &str, separator: char) -> &str {
    text.rsplit(separator).next().unwrap_or(text)
}
