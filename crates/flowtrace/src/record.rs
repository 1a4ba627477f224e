//! Per-record spans for batches: one span per SQS message, Kinesis record or DynamoDB change,
//! parented on the trace that record came from.
//!
//! A batch from many upstream traces gets an invocation span with one link per record. When the
//! handler processes records one by one, a [`RecordSpan`] around each gives every upstream
//! trace its own continuation, and links back to the invocation span.

use crate::telemetry::Telemetry;
use crate::trigger::{self, EventEnvelope};
use opentelemetry::trace::{FutureExt as _, Link, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::Serialize;
use std::future::Future;

/// A span for one record of a batch. It ends when dropped, or with [`RecordSpan::end`].
///
/// ```no_run
/// use aws_lambda_events::event::sqs::SqsEvent;
/// use lambda_runtime::{Error, LambdaEvent};
///
/// #[flowtrace::main]
/// async fn handler(event: LambdaEvent<SqsEvent>) -> Result<(), Error> {
///     for message in event.payload.records {
///         let span = flowtrace::RecordSpan::start(&message);
///         span.run(async {
///             // work on `message`: spans and outgoing calls here continue its trace
///         })
///         .await;
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct RecordSpan {
    cx: Context,
}

impl RecordSpan {
    /// Starts a span for `record` (an SQS message, SNS record, Kinesis or DynamoDB stream
    /// record, as typed by `aws_lambda_events` or as JSON). When the invocation span already
    /// continues the record's trace, or the record carried no context, the record span nests
    /// under the invocation span. Otherwise (a batch from many upstreams) its parent is the
    /// context the record carried, and it links to the invocation span.
    pub fn start<R: Serialize + ?Sized>(record: &R) -> Self {
        Self::start_with_context(record, &Context::current())
    }

    /// [`RecordSpan::start`] under an explicit invocation context.
    pub fn start_with_context<R: Serialize + ?Sized>(record: &R, invocation: &Context) -> Self {
        let telemetry = invocation.get::<Telemetry>();
        let event = match serde_json::to_value(record) {
            Ok(value) => serde_json::json!({ "Records": [value] }),
            Err(error) => {
                tracing::debug!(target: "flowtrace", "flowtrace: record is not serializable ({error}); span without context");
                serde_json::Value::Null
            }
        };
        let reserved_key =
            telemetry.map_or(flowtrace_contract::DEFAULT_RESERVED_KEY, |t| t.config().reserved_key.as_str());
        let envelope = EventEnvelope { client_context_custom: None, reserved_key };
        let described = match telemetry {
            Some(telemetry) => trigger::detect(&event, envelope, telemetry.propagator()),
            None => opentelemetry::global::get_text_map_propagator(|propagator| {
                trigger::detect(&event, envelope, propagator)
            }),
        };
        let record_context = described.records.into_iter().next().unwrap_or_default();
        let invocation_span = invocation.span().span_context().clone();

        let mut attributes = described.attributes;
        attributes.extend(record_context.attributes);
        let mut links = Vec::new();
        let parent_cx = match record_context.parent {
            // The invocation already continues this record's trace (one record, or a batch from
            // one upstream): nest under it rather than beside it.
            Some(upstream) if upstream.trace_id() == invocation_span.trace_id() => invocation.clone(),
            Some(upstream) => {
                if invocation_span.is_valid() {
                    links.push(Link::with_context(invocation_span));
                }
                // Keeps the invocation's values (timeout-guard bookkeeping) under the new parent.
                invocation.with_remote_span_context(upstream)
            }
            None => invocation.clone(),
        };
        let name = described.span_name.unwrap_or_else(|| "process record".to_owned());
        let builder = opentelemetry::trace::SpanBuilder::from_name(name)
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .with_links(links);
        let cx = match telemetry {
            Some(telemetry) => {
                let span = builder.start_with_context(telemetry.tracer(), &parent_cx);
                parent_cx.with_span(span)
            }
            None => {
                let tracer = opentelemetry::global::tracer("flowtrace");
                let span = builder.start_with_context(&tracer, &parent_cx);
                parent_cx.with_span(span)
            }
        };
        Self { cx }
    }

    /// The record span's context: attach it, or pass it to work that should nest under it.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Runs `work` with this span as the current context, then ends it.
    pub async fn run<F: Future>(self, work: F) -> F::Output {
        let output = work.with_context(self.cx.clone()).await;
        self.end();
        output
    }

    /// Runs fallible `work` with this span as the current context, marks the span failed when
    /// it returns `Err`, then ends it. The result is returned unchanged.
    pub async fn run_result<F, T, E>(self, work: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let output = work.with_context(self.cx.clone()).await;
        if let Err(error) = &output {
            self.fail(error.to_string());
        }
        self.end();
        output
    }

    /// Marks the record as failed; the span ends with status Error.
    pub fn fail(&self, message: impl Into<String>) {
        let message = message.into();
        let span = self.cx.span();
        span.add_event(
            "exception",
            vec![KeyValue::new(opentelemetry_semantic_conventions::attribute::EXCEPTION_MESSAGE, message.clone())],
        );
        span.set_status(Status::error(message));
    }

    /// Ends the span now.
    pub fn end(self) {
        self.cx.span().end();
    }
}
