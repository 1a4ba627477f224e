//! The outer half of the wrapper: a tower `Layer` over `lambda_runtime`'s
//! `Service<LambdaInvocation>`. It sees every invocation before deserialisation and completes
//! only after the response has been posted, so it starts the invocation span, arms the
//! timeout guard, and hands spans off once the caller already has its answer.

use crate::handoff::{FlushOutcome, InvocationKey};
use crate::invocation::{self, InvocationPlan};
use crate::telemetry::Telemetry;
use crate::trigger;
use flowtrace_contract::{StartNotice, attr};
use futures_util::future::BoxFuture;
use lambda_runtime::{Error, LambdaInvocation};
use opentelemetry::trace::{FutureExt as _, SpanContext, Status, TraceContextExt, Tracer as _, WithContext};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

/// What the inner handler wrapper needs to know about its invocation. Travels in the
/// OpenTelemetry context, so concurrent invocations never share it.
#[derive(Debug)]
pub(crate) struct InvocationScope {
    pub(crate) is_http: bool,
    pub(crate) capture: Option<Arc<crate::capture::PayloadCapture>>,
    pub(crate) handler_ran: AtomicBool,
}

/// The tower layer that traces every invocation. See [`crate::run`] for the usual set-up.
#[derive(Debug, Clone)]
pub struct FlowtraceLayer {
    telemetry: Telemetry,
    traced_handler: bool,
}

impl FlowtraceLayer {
    /// A layer using `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        Self { telemetry, traced_handler: false }
    }

    /// Declares that the handler is wrapped in [`crate::TracedHandler`], so an invocation whose
    /// handler never ran (its event did not deserialise) is marked as an error.
    pub fn with_traced_handler(mut self) -> Self {
        self.traced_handler = true;
        self
    }
}

impl<S> Layer<S> for FlowtraceLayer {
    type Service = FlowtraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlowtraceService { inner, telemetry: self.telemetry.clone(), traced_handler: self.traced_handler }
    }
}

/// The service made by [`FlowtraceLayer`].
#[derive(Debug, Clone)]
pub struct FlowtraceService<S> {
    inner: S,
    telemetry: Telemetry,
    traced_handler: bool,
}

impl<S> Service<LambdaInvocation> for FlowtraceService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = FlowtraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: LambdaInvocation) -> Self::Future {
        if !self.telemetry.config().enabled {
            let inner = self.inner.call(request).with_context(Context::new()).instrument(tracing::Span::none());
            return FlowtraceFuture::new(inner, None, None);
        }
        let invocation = Invocation::start(&self.telemetry, &request, self.traced_handler);
        let log_span = tracing::info_span!(
            target: crate::logging::INVOCATION_LOG_TARGET,
            "invocation",
            requestId = %request.context.request_id,
            traceId = %invocation.span_context.trace_id(),
            spanId = %invocation.span_context.span_id(),
        );
        let inner = {
            let _attached = invocation.cx.clone().attach();
            let _entered = log_span.enter();
            self.inner.call(request)
        };
        let guard = invocation.guard_delay.map(|delay| Box::pin(tokio::time::sleep(delay)));
        let inner = inner.with_context(invocation.cx.clone()).instrument(log_span);
        FlowtraceFuture::new(inner, Some(invocation), guard)
    }
}

/// Per-invocation state, owned by the invocation's future.
struct Invocation {
    telemetry: Telemetry,
    cx: Context,
    span_context: SpanContext,
    key: InvocationKey,
    scope: Arc<InvocationScope>,
    guard_delay: Option<Duration>,
    traced_handler: bool,
}

impl Invocation {
    fn start(telemetry: &Telemetry, request: &LambdaInvocation, traced_handler: bool) -> Self {
        let inner = &telemetry.inner;
        let config = &inner.config;
        let lambda = &request.context;
        let cold_start = inner.cold_start.take(Instant::now());
        let capture = inner.capture.clone();
        let InvocationPlan { trigger, name, kind, mut attributes, parent, links, remaining, event } = invocation::plan(
            &request.body,
            lambda,
            config,
            inner.propagator.as_ref(),
            cold_start,
            SystemTime::now(),
            capture.is_some(),
        );
        if let Some(capture) = &capture
            && !event.is_null()
        {
            attributes.push(KeyValue::new(attr::EVENT_PAYLOAD, capture.render(&event)));
        }
        let parent_cx = match &parent {
            Some(sc) => Context::new().with_remote_span_context(sc.clone()),
            None => Context::new(),
        };
        let notice_name = inner.notices.is_some().then(|| name.clone());
        let start_time = SystemTime::now();
        let span = inner
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(start_time)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&inner.tracer, &parent_cx);
        let span_context = opentelemetry::trace::Span::span_context(&span).clone();
        let key = InvocationKey(span_context.span_id());
        let scope = Arc::new(InvocationScope {
            is_http: trigger.source.is_some_and(trigger::TriggerSource::is_http),
            capture,
            handler_ran: AtomicBool::new(false),
        });
        // The telemetry rides along so per-record spans (`RecordSpan`) use this pipeline.
        let cx = parent_cx.with_span(span).with_value(key).with_value(scope.clone()).with_value(telemetry.clone());

        if let (Some(notices), Some(name)) = (&inner.notices, notice_name) {
            notices.send(StartNotice {
                request_id: lambda.request_id.clone(),
                trace_id: span_context.trace_id().to_string(),
                span_id: span_context.span_id().to_string(),
                parent_span_id: parent.as_ref().map(|p| p.span_id().to_string()),
                name,
                start_time_unix_nano: unix_nanos(start_time),
                sampled: span_context.is_sampled(),
            });
        }

        let margin = config.timeout_margin;
        let guard_delay = remaining.filter(|r| !margin.is_zero() && *r > margin).map(|r| r - margin);
        Self { telemetry: telemetry.clone(), cx, span_context, key, scope, guard_delay, traced_handler }
    }

    /// The deadline is near: end the invocation span and every span still open under it,
    /// so the trace shows which call was hanging, and hand them off before Lambda kills us.
    fn fire_timeout_guard(&self) -> BoxFuture<'static, FlushOutcome> {
        let now = SystemTime::now();
        let cut = self.telemetry.inner.handoff.cut_off(self.key, "timeout", now);
        let span = self.cx.span();
        let mut event = vec![KeyValue::new(attr::CUT_OFF, "timeout")];
        if !cut.is_empty() {
            event.push(KeyValue::new(attr::CUT_OFF_SPANS, cut.join(", ")));
        }
        span.add_event("flowtrace.timeout", event);
        span.set_attribute(KeyValue::new(attr::CUT_OFF, "timeout"));
        let description = match cut.as_slice() {
            [] => "timeout: the invocation was about to exceed its deadline".to_owned(),
            spans => {
                format!("timeout: the invocation was about to exceed its deadline, waiting on {}", spans.join(", "))
            }
        };
        span.set_status(Status::error(description));
        span.end_with_timestamp(now);
        let telemetry = self.telemetry.clone();
        Box::pin(async move { telemetry.flush().await })
    }

    /// The response is posted (or the runtime failed): close the span.
    fn finish(&self, result: &Result<(), Error>) {
        let span = self.cx.span();
        if let Err(error) = result {
            span.set_status(Status::error(format!("lambda runtime error: {error}")));
        } else if self.traced_handler && !self.scope.handler_ran.load(Ordering::Acquire) {
            span.set_status(Status::error("the event could not be deserialized into the handler's input type"));
        }
        span.end();
        self.telemetry.inner.handoff.finish_invocation(self.key);
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pin_project! {
    /// The future of one traced invocation: drives the handler, fires the timeout guard if
    /// the deadline comes close, and hands spans off after the response is posted.
    pub struct FlowtraceFuture<F> {
        #[pin]
        inner: Instrumented<WithContext<F>>,
        invocation: Option<Invocation>,
        guard: Option<Pin<Box<tokio::time::Sleep>>>,
        guard_flush: Option<BoxFuture<'static, FlushOutcome>>,
        final_flush: Option<BoxFuture<'static, ()>>,
        result: Option<Result<(), Error>>,
    }
}

impl<F> FlowtraceFuture<F> {
    fn new(
        inner: Instrumented<WithContext<F>>,
        invocation: Option<Invocation>,
        guard: Option<Pin<Box<tokio::time::Sleep>>>,
    ) -> Self {
        Self { inner, invocation, guard, guard_flush: None, final_flush: None, result: None }
    }
}

impl<F> std::fmt::Debug for FlowtraceFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowtraceFuture").finish_non_exhaustive()
    }
}

impl<F> Future for FlowtraceFuture<F>
where
    F: Future<Output = Result<(), Error>>,
{
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(final_flush) = this.final_flush.as_mut() {
                ready!(final_flush.as_mut().poll(task));
                *this.final_flush = None;
                return Poll::Ready(this.result.take().unwrap_or(Ok(())));
            }
            if let Some(guard_flush) = this.guard_flush.as_mut()
                && guard_flush.as_mut().poll(task).is_ready()
            {
                *this.guard_flush = None;
            }
            if let Some(guard) = this.guard.as_mut()
                && guard.as_mut().poll(task).is_ready()
            {
                *this.guard = None;
                if let Some(invocation) = this.invocation.as_ref() {
                    tracing::warn!(target: "flowtrace", "flowtrace: the invocation is about to time out; handing off its spans");
                    *this.guard_flush = Some(invocation.fire_timeout_guard());
                }
                continue;
            }
            let result = ready!(this.inner.as_mut().poll(task));
            *this.guard = None;
            let Some(invocation) = this.invocation.take() else {
                return Poll::Ready(result);
            };
            invocation.finish(&result);
            *this.result = Some(result);
            let pending_guard_flush = this.guard_flush.take();
            let telemetry = invocation.telemetry.clone();
            *this.final_flush = Some(Box::pin(async move {
                if let Some(guard_flush) = pending_guard_flush {
                    guard_flush.await;
                }
                telemetry.flush().await;
            }));
        }
    }
}
