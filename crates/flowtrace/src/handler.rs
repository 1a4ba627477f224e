//! The inner half of the wrapper: wraps the user's handler to see what the outer layer
//! cannot — its result. `Err`, a panic or an HTTP 5xx response marks the invocation span as
//! an error with an exception event; nothing about the result changes.

use crate::layer::InvocationScope;
use flowtrace_contract::attr;
use lambda_runtime::{Diagnostic, LambdaEvent};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use pin_project_lite::pin_project;
use serde::Serialize;
use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tower::Service;

/// Wraps a handler service so its outcome lands on the invocation span. Use it with
/// [`crate::FlowtraceLayer`]; [`crate::run`] sets both up.
///
/// Errors reach `lambda_runtime` as the same [`Diagnostic`] it would have built itself, and
/// panics are resumed, so the Lambda response is unchanged.
#[derive(Debug, Clone)]
pub struct TracedHandler<F> {
    inner: F,
}

impl<F> TracedHandler<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F, A, R> Service<LambdaEvent<A>> for TracedHandler<F>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Error: Into<Diagnostic>,
    R: Serialize,
{
    type Response = R;
    type Error = Diagnostic;
    type Future = TracedHandlerFuture<F::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, event: LambdaEvent<A>) -> Self::Future {
        let cx = Context::current();
        let traced = cx.get::<Arc<InvocationScope>>().cloned().map(|scope| {
            scope.handler_ran.store(true, Ordering::Release);
            (cx, scope)
        });
        let inner = match catch_unwind(AssertUnwindSafe(|| self.inner.call(event))) {
            Ok(future) => future,
            Err(panic) => {
                if let Some((cx, _)) = &traced {
                    record_panic(cx, panic.as_ref());
                }
                resume_unwind(panic)
            }
        };
        TracedHandlerFuture { inner, traced }
    }
}

pin_project! {
    /// The future of a [`TracedHandler`] call.
    pub struct TracedHandlerFuture<Fut> {
        #[pin]
        inner: Fut,
        traced: Option<(Context, Arc<InvocationScope>)>,
    }
}

impl<Fut> std::fmt::Debug for TracedHandlerFuture<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedHandlerFuture").finish_non_exhaustive()
    }
}

impl<Fut, R, E> Future for TracedHandlerFuture<Fut>
where
    Fut: Future<Output = Result<R, E>>,
    E: Into<Diagnostic>,
    R: Serialize,
{
    type Output = Result<R, Diagnostic>;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = match catch_unwind(AssertUnwindSafe(|| inner.poll(task))) {
            Ok(polled) => polled,
            Err(panic) => {
                if let Some((cx, _)) = this.traced.as_ref() {
                    record_panic(cx, panic.as_ref());
                }
                resume_unwind(panic)
            }
        };
        let Poll::Ready(result) = polled else { return Poll::Pending };
        let result = result.map_err(Into::into);
        if let Some((cx, scope)) = this.traced.take() {
            match &result {
                Ok(response) => record_response(&cx, &scope, response),
                Err(diagnostic) => record_error(&cx, &diagnostic.error_type, &diagnostic.error_message),
            }
        }
        Poll::Ready(result)
    }
}

fn record_error(cx: &Context, error_type: &str, message: &str) {
    let span = cx.span();
    span.add_event(
        "exception",
        vec![
            KeyValue::new(semconv::EXCEPTION_TYPE, error_type.to_owned()),
            KeyValue::new(semconv::EXCEPTION_MESSAGE, message.to_owned()),
        ],
    );
    span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.to_owned()));
    span.set_status(Status::error(message.to_owned()));
}

fn record_panic(cx: &Context, panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".to_owned());
    record_error(cx, "panic", &message);
}

fn record_response<R: Serialize>(cx: &Context, scope: &InvocationScope, response: &R) {
    if !scope.is_http && scope.capture.is_none() {
        return;
    }
    let Ok(value) = serde_json::to_value(response) else { return };
    let span = cx.span();
    if scope.is_http
        && let Some(status) = value.get("statusCode").and_then(serde_json::Value::as_u64)
    {
        span.set_attribute(KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, status as i64));
        if status >= 500 {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
            span.set_status(Status::error(format!("HTTP {status}")));
        }
    }
    if let Some(capture) = &scope.capture {
        span.set_attribute(KeyValue::new(attr::RESPONSE_PAYLOAD, capture.render(&value)));
    }
}
