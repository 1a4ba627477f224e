//! The smithy interceptor: one span per operation (all retries included), and the hook where
//! each service's injection runs, before the request is serialised and signed.

use crate::config::Config;
use crate::services;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, dyn_dispatch_hint};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::region::Region;
use flowtrace_contract::attr;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{SpanKind, SpanRef, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};

/// The instrumentation scope of flowtrace-aws spans.
const SCOPE: &str = "flowtrace-aws";

/// `rpc.system` for AWS SDK calls.
const RPC_SYSTEM_AWS: &str = "aws-api";

/// A smithy interceptor for any `aws-sdk-*` client: a span per operation and, for the
/// services whose cargo feature is on, trace context injected into what the call sends.
///
/// ```no_run
/// # async fn example(sdk_config: aws_types::SdkConfig) {
/// // Any service, e.g. S3, gets spans:
/// // let s3 = aws_sdk_s3::Client::from_conf(
/// //     aws_sdk_s3::config::Builder::from(&sdk_config)
/// //         .interceptor(flowtrace_aws::FlowtraceInterceptor::new())
/// //         .build(),
/// // );
/// let _interceptor = flowtrace_aws::FlowtraceInterceptor::new();
/// # }
/// ```
///
/// Spans start under [`opentelemetry::Context::current`] with the global tracer provider;
/// context is injected with flowtrace's own formats (W3C and X-Ray), whatever the global
/// propagator is. Instrumentation never fails a call: the interceptor returns no errors.
#[derive(Debug, Clone)]
pub struct FlowtraceInterceptor {
    config: Config,
}

impl Default for FlowtraceInterceptor {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowtraceInterceptor {
    /// An interceptor configured from the environment ([`Config::from_env`]).
    pub fn new() -> Self {
        Self { config: Config::from_env() }
    }

    /// An interceptor with an explicit configuration.
    pub fn with_config(config: Config) -> Self {
        Self { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// The span of one call, kept in the call's config bag between hooks.
#[derive(Debug)]
pub(crate) struct CallState {
    pub(crate) cx: Context,
    pub(crate) service: services::Known,
    undo: services::Undo,
    attempts: AtomicU32,
}

impl Storable for CallState {
    type Storer = StoreReplace<Self>;
}

fn tracer() -> BoxedTracer {
    global::tracer(SCOPE)
}

// Tells the orchestrator which hooks are overridden, so the others cost nothing.
#[dyn_dispatch_hint]
impl Intercept for FlowtraceInterceptor {
    fn name(&self) -> &'static str {
        "FlowtraceInterceptor"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The first hook where the operation's metadata and region are in the config bag
        // (client interceptors' `read_before_execution` runs before they are).
        let (service_name, operation) = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service().to_owned(), metadata.name().to_owned()),
            None => ("AWS".to_owned(), "Unknown".to_owned()),
        };
        let service = services::Known::from_service(&service_name);
        let region = cfg.load::<Region>().map(|region| region.as_ref().to_owned());
        let mut attributes = Vec::with_capacity(16);
        attributes.push(KeyValue::new(semconv::RPC_SYSTEM_NAME, RPC_SYSTEM_AWS));
        // The AWS SDK conventions still use the older `rpc.system` and `rpc.service`.
        #[allow(deprecated)]
        {
            attributes.push(KeyValue::new(semconv::RPC_SYSTEM, RPC_SYSTEM_AWS));
            attributes.push(KeyValue::new(semconv::RPC_SERVICE, service_name.clone()));
        }
        attributes.push(KeyValue::new(semconv::RPC_METHOD, operation.clone()));
        if let Some(region) = region.clone() {
            attributes.push(KeyValue::new(attr::AWS_REGION, region));
        }
        let request = services::Request { operation: &operation, region: region.as_deref(), config: &self.config };
        let kind = services::describe(service, context.input(), &request, &mut attributes);
        let tracer = tracer();
        let parent = Context::current();
        let span = tracer
            .span_builder(format!("{service_name}.{operation}"))
            .with_kind(kind.unwrap_or(SpanKind::Client))
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        let cx = parent.with_span(span);
        let undo = services::inject(service, context.input_mut(), &cx, &self.config);
        cfg.interceptor_state().store_put(CallState { cx, service, undo, attempts: AtomicU32::new(0) });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(state) = cfg.load::<CallState>() {
            state.attempts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(state) = cfg.load::<CallState>()
            && state.undo != services::Undo::default()
            && let Some(Ok(output)) = context.output_or_error_mut()
        {
            services::undo(state.undo, output, &self.config);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<CallState>() else {
            return Ok(());
        };
        let span = state.cx.span();
        span.set_attribute(KeyValue::new(attr::AWS_ATTEMPTS, i64::from(state.attempts.load(Ordering::Relaxed))));
        let response = context.response();
        if let Some(response) = response {
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(response.status().as_u16()),
            ));
            if let Some(request_id) = request_id(response) {
                span.set_attribute(KeyValue::new(semconv::AWS_REQUEST_ID, StringValue::from(request_id.to_owned())));
            }
        }
        match context.output_or_error() {
            Some(Ok(output)) => services::record_output(state.service, output, &span, &self.config),
            Some(Err(error)) => record_error(&span, error, response),
            None => {}
        }
        span.end();
        Ok(())
    }
}

/// The request id AWS returned, from whichever header this protocol uses.
fn request_id(response: &HttpResponse) -> Option<&str> {
    let headers = response.headers();
    headers.get("x-amzn-requestid").or_else(|| headers.get("x-amz-request-id"))
}

/// Marks the span as failed with the AWS error code (or the kind of failure when there was
/// no error response).
fn record_error<E>(span: &SpanRef<'_>, error: &OrchestratorError<E>, response: Option<&HttpResponse>) {
    let parsed = response.and_then(parse_error_response);
    let (code, message): (Cow<'_, str>, Option<String>) = match parsed {
        Some((code, message)) => (Cow::Owned(code), message),
        None if error.is_timeout_error() => (Cow::Borrowed("timeout"), None),
        None if error.is_connector_error() => (Cow::Borrowed("connector_error"), None),
        None if error.is_interceptor_error() => (Cow::Borrowed("interceptor_error"), None),
        None => match response {
            Some(response) => (Cow::Owned(response.status().as_u16().to_string()), None),
            None => (Cow::Borrowed("_OTHER"), None),
        },
    };
    span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, code.clone().into_owned()));
    if response.is_some() {
        span.set_attribute(KeyValue::new(attr::AWS_ERROR_CODE, code.clone().into_owned()));
    }
    let description = match message {
        Some(message) => format!("{code}: {message}"),
        None => match response {
            Some(_) => code.into_owned(),
            None => error.to_string(),
        },
    };
    span.set_status(Status::error(description));
}

/// The error code and message of an AWS error response: JSON protocols (`__type`, `code`,
/// `x-amzn-errortype`, `x-amzn-query-error`) and XML ones (`<Code>`).
pub(crate) fn parse_error_response(response: &HttpResponse) -> Option<(String, Option<String>)> {
    if response.status().is_success() {
        return None;
    }
    let headers = response.headers();
    let header_code = headers
        .get("x-amzn-query-error")
        .and_then(|value| value.split(';').next())
        .or_else(|| headers.get("x-amzn-errortype"))
        .map(sanitize_code)
        .filter(|code| !code.is_empty());
    let body = response.body().bytes().unwrap_or_default();
    let (body_code, message) = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => json_error(body),
        Some(b'<') => xml_error(body),
        _ => (None, None),
    };
    let code = header_code.map(str::to_owned).or(body_code)?;
    Some((code, message))
}

/// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException:http://...` →
/// `ResourceNotFoundException`.
fn sanitize_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    code.rsplit('#').next().unwrap_or(code).trim()
}

fn json_error(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct JsonError {
        #[serde(rename = "__type", alias = "code", alias = "Code")]
        kind: Option<String>,
        #[serde(alias = "Message", alias = "errorMessage")]
        message: Option<String>,
    }
    match serde_json::from_slice::<JsonError>(body) {
        Ok(error) => (error.kind.as_deref().map(sanitize_code).map(str::to_owned), error.message),
        Err(_) => (None, None),
    }
}

fn xml_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text.get(start..)?.find('<')? + start;
        text.get(start..end).map(|value| value.trim().to_owned())
    };
    (element("Code"), element("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body.to_owned()));
        for (name, value) in headers {
            response.headers_mut().insert((*name).to_owned(), (*value).to_owned());
        }
        response
    }

    #[test]
    fn error_codes_from_every_protocol() {
        let dynamodb = response(
            400,
            &[],
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#,
        );
        assert_eq!(
            parse_error_response(&dynamodb),
            Some(("ResourceNotFoundException".to_owned(), Some("Requested resource not found".to_owned())))
        );
        let sqs = response(400, &[("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")], "{}");
        assert_eq!(parse_error_response(&sqs).unwrap().0, "AWS.SimpleQueueService.NonExistentQueue");
        let sns = response(
            404,
            &[],
            "<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>",
        );
        assert_eq!(parse_error_response(&sns), Some(("NotFound".to_owned(), Some("Topic does not exist".to_owned()))));
        let lambda = response(404, &[("x-amzn-errortype", "ResourceNotFoundException:http://internal")], "");
        assert_eq!(parse_error_response(&lambda).unwrap().0, "ResourceNotFoundException");
        assert_eq!(parse_error_response(&response(200, &[], "{}")), None);
        assert_eq!(parse_error_response(&response(500, &[], "oops")), None);
    }
}
