//! Lambda: `Invoke` gets `traceparent` (and `tracestate`) in `ClientContext.custom`, merged
//! with the caller's client context, within the 3583-byte limit of the encoded context.

use super::Request;
use crate::inject::{Carrier, Skip, TRACEPARENT, skipped};
use aws_sdk_lambda::operation::invoke::{InvokeInput, InvokeOutput};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::{Map, Value};

/// The largest `ClientContext` Lambda accepts (base64, as sent).
pub(crate) const MAX_CLIENT_CONTEXT_BYTES: usize = 3583;

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` → `NAME`; a name stays.
fn function_name(function: &str) -> &str {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => function,
    }
}

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let input = input.downcast_ref::<InvokeInput>()?;
    attributes.push(KeyValue::new(semconv::FAAS_INVOKED_PROVIDER, "aws"));
    if let Some(region) = request.region {
        attributes.push(KeyValue::new(semconv::FAAS_INVOKED_REGION, region.to_owned()));
    }
    if let Some(function) = input.function_name.as_deref() {
        attributes.push(KeyValue::new(semconv::FAAS_INVOKED_NAME, function_name(function).to_owned()));
        if function.starts_with("arn:") {
            attributes.push(KeyValue::new(semconv::AWS_LAMBDA_INVOKED_ARN, function.to_owned()));
        }
    }
    let invocation_type = input.invocation_type.as_ref().map_or("RequestResponse", |t| t.as_str());
    attributes.push(KeyValue::new(attr::LAMBDA_INVOCATION_TYPE, invocation_type.to_owned()));
    Some(SpanKind::Client)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<InvokeInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: &Carrier, span: &SpanRef<'_>) {
    let Some(input) = input.downcast_mut::<InvokeInput>() else {
        return;
    };
    match merged_client_context(input.client_context.as_deref(), carrier) {
        Ok(encoded) => input.client_context = Some(encoded),
        Err(reason) => skipped(span, reason, None),
    }
}

/// The caller's client context (base64 JSON, or none) with `custom.traceparent` added.
pub(crate) fn merged_client_context(existing: Option<&str>, carrier: &Carrier) -> Result<String, Skip> {
    let mut context: Map<String, Value> = match existing {
        None => Map::new(),
        Some(encoded) => {
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| Skip::UnreadableClientContext)?;
            serde_json::from_slice(&decoded).map_err(|_| Skip::UnreadableClientContext)?
        }
    };
    let custom = context.entry("custom").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(custom) = custom else {
        return Err(Skip::UnreadableClientContext);
    };
    if custom.keys().any(|k| k.eq_ignore_ascii_case(TRACEPARENT)) {
        return Err(Skip::AlreadyPresent);
    }
    for (name, value) in carrier.fields() {
        custom.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let encoded = STANDARD.encode(Value::Object(context).to_string());
    if encoded.len() > MAX_CLIENT_CONTEXT_BYTES {
        return Err(Skip::TooLarge);
    }
    Ok(encoded)
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    let Some(output) = output.downcast_ref::<InvokeOutput>() else {
        return;
    };
    if let Some(error) = output.function_error.as_deref() {
        span.set_attribute(KeyValue::new(attr::LAMBDA_FUNCTION_ERROR, error.to_owned()));
    }
    if let Some(version) = output.executed_version.as_deref() {
        span.set_attribute(KeyValue::new(semconv::FAAS_VERSION, version.to_owned()));
    }
}
