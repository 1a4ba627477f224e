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
use std::sync::RwLock;
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

/// Room for the attributes a span gets at its start and its end (18 for a Kinesis
/// `PutRecord`), so that they never grow; and small enough (18 × 56 bytes) for the allocator's
/// fast path.
const ATTRIBUTES_CAPACITY: usize = 18;

/// How many operation names and regions are kept (leaked) for reuse; beyond this, names are
/// allocated per call. A process calls a bounded set of operations (the SDK's own constants)
/// in a few regions, so this is never reached in practice.
const MAX_INTERNED: usize = 1024;

/// One operation's names, kept for the life of the process.
#[derive(Debug, Clone, Copy)]
struct Interned {
    service: &'static str,
    operation: &'static str,
    span_name: &'static str,
}

static OPERATIONS: RwLock<Vec<Interned>> = RwLock::new(Vec::new());
static REGIONS: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// The names a span uses for an operation: shared, without allocating, once the operation has
/// been seen.
struct Names {
    service: Cow<'static, str>,
    operation: Cow<'static, str>,
    /// `Service.Operation`.
    span_name: Cow<'static, str>,
}

impl Names {
    fn of(service: &str, operation: &str) -> Self {
        let find = |list: &[Interned]| list.iter().find(|n| n.operation == operation && n.service == service).copied();
        let interned = OPERATIONS.read().ok().and_then(|list| find(&list)).or_else(|| {
            let mut list = OPERATIONS.write().ok()?;
            if let Some(found) = find(&list) {
                return Some(found);
            }
            if list.len() >= MAX_INTERNED {
                return None;
            }
            let names = Interned {
                service: leak(service),
                operation: leak(operation),
                span_name: leak(&format!("{service}.{operation}")),
            };
            list.push(names);
            Some(names)
        });
        match interned {
            Some(names) => Self {
                service: Cow::Borrowed(names.service),
                operation: Cow::Borrowed(names.operation),
                span_name: Cow::Borrowed(names.span_name),
            },
            None => Self {
                service: Cow::Owned(service.to_owned()),
                operation: Cow::Owned(operation.to_owned()),
                span_name: Cow::Owned(format!("{service}.{operation}")),
            },
        }
    }
}

/// The region's name, shared without allocating once seen.
fn interned_region(region: &str) -> Cow<'static, str> {
    let find = |list: &[&'static str]| list.iter().find(|r| **r == region).copied();
    let interned = REGIONS.read().ok().and_then(|list| find(&list)).or_else(|| {
        let mut list = REGIONS.write().ok()?;
        if let Some(found) = find(&list) {
            return Some(found);
        }
        if list.len() >= MAX_INTERNED {
            return None;
        }
        let region = leak(region);
        list.push(region);
        Some(region)
    });
    interned.map_or_else(|| Cow::Owned(region.to_owned()), Cow::Borrowed)
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
        let names = match cfg.load::<Metadata>() {
            Some(metadata) => Names::of(metadata.service(), metadata.name()),
            None => Names::of("AWS", "Unknown"),
        };
        let service = services::Known::from_service(&names.service);
        let region = cfg.load::<Region>().map(|region| interned_region(region.as_ref()));
        let mut attributes = Vec::with_capacity(ATTRIBUTES_CAPACITY);
        attributes.push(KeyValue::new(semconv::RPC_SYSTEM_NAME, RPC_SYSTEM_AWS));
        // The AWS SDK conventions still use the older `rpc.system` and `rpc.service`.
        #[allow(deprecated)]
        {
            attributes.push(KeyValue::new(semconv::RPC_SYSTEM, RPC_SYSTEM_AWS));
            attributes.push(KeyValue::new(semconv::RPC_SERVICE, names.service.clone()));
        }
        attributes.push(KeyValue::new(semconv::RPC_METHOD, names.operation.clone()));
        if let Some(region) = region.clone() {
            attributes.push(KeyValue::new(attr::AWS_REGION, region));
        }
        let request =
            services::Request { operation: &names.operation, region: region.as_deref(), config: &self.config };
        let kind = services::describe(service, context.input(), &request, &mut attributes);
        let tracer = tracer();
        let parent = Context::current();
        let span = tracer
            .span_builder(names.span_name)
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
        let attempts = KeyValue::new(attr::AWS_ATTEMPTS, i64::from(state.attempts.load(Ordering::Relaxed)));
        let response = context.response();
        let status = response
            .map(|response| KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(response.status().as_u16())));
        let id = response
            .and_then(request_id)
            .map(|id| KeyValue::new(semconv::AWS_REQUEST_ID, StringValue::from(id.to_owned())));
        // One call (one lock of the span) for the three.
        span.set_attributes([Some(attempts), status, id].into_iter().flatten());
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
    fn names_are_interned() {
        let first = Names::of("SQS", "SendMessage");
        assert_eq!(first.span_name, "SQS.SendMessage");
        assert_eq!((first.service.as_ref(), first.operation.as_ref()), ("SQS", "SendMessage"));
        let again = Names::of("SQS", "SendMessage");
        assert!(matches!(again.span_name, Cow::Borrowed(_)));
        assert!(std::ptr::eq(first.span_name.as_ref(), again.span_name.as_ref()), "kept once");
        assert_eq!(Names::of("SNS", "SendMessage").span_name, "SNS.SendMessage");
        let region = interned_region("eu-west-3");
        assert_eq!(region, "eu-west-3");
        assert!(std::ptr::eq(region.as_ref(), interned_region("eu-west-3").as_ref()));
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
