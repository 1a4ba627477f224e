//! The hand-off: a span processor that holds ended spans until the wrapper says the response
//! has been posted, then ships them in one export.
//!
//! Holding spans instead of exporting them as they end keeps export off the response path.
//! The buffer is bounded in bytes; past the bound the oldest spans are dropped and counted,
//! never blocking the function. Open spans are remembered per invocation so the timeout
//! guard can end them before Lambda kills the process.

use flowtrace_contract::attr;
use futures_util::future::BoxFuture;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// A span exporter behind a trait object (`SpanExporter` returns `impl Future`, so it cannot
/// be one itself).
pub trait DynSpanExporter: Send + Sync + fmt::Debug {
    /// Exports a batch.
    fn export_boxed(&self, batch: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult>;
    /// Shuts the exporter down.
    fn shutdown_exporter(&self) -> OTelSdkResult;
    /// Sets the resource the exporter sends with every batch.
    fn set_exporter_resource(&mut self, resource: &opentelemetry_sdk::Resource);
}

impl<E: SpanExporter> DynSpanExporter for E {
    fn export_boxed(&self, batch: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult> {
        Box::pin(self.export(batch))
    }
    fn shutdown_exporter(&self) -> OTelSdkResult {
        self.shutdown()
    }
    fn set_exporter_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.set_resource(resource);
    }
}

/// Marks a context as belonging to one invocation, so spans started under it can be found
/// by the timeout guard. Carried as an OpenTelemetry context value, never in a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InvocationKey(pub SpanId);

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Spans handed to the exporter and accepted.
    pub exported: usize,
    /// Spans lost because the export failed or timed out.
    pub failed: usize,
    /// Spans dropped from the buffer (bound reached) since the previous flush.
    pub dropped: u64,
}

#[derive(Default)]
struct State {
    pending: VecDeque<(SpanData, usize)>,
    pending_bytes: usize,
    dropped_since_flush: u64,
    open: HashMap<SpanId, (InvocationKey, SpanData)>,
    cut_off: HashSet<SpanId>,
}

/// The shared hand-off buffer. Cloned cheaply through `Arc`.
pub struct Handoff {
    exporter: Box<dyn DynSpanExporter>,
    state: Mutex<State>,
    max_bytes: usize,
    flush_timeout: Duration,
    track_open: bool,
    dropped_total: AtomicU64,
    failed_total: AtomicU64,
}

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff")
            .field("exporter", &self.exporter)
            .field("max_bytes", &self.max_bytes)
            .field("flush_timeout", &self.flush_timeout)
            .field("track_open", &self.track_open)
            .finish_non_exhaustive()
    }
}

/// Spans whose real end arrives after they were cut off are discarded; remember at most this
/// many of them so a function that times out again and again cannot grow memory.
const MAX_REMEMBERED_CUT_OFFS: usize = 10_000;

impl Handoff {
    /// A hand-off in front of `exporter`. `track_open` enables the timeout guard's
    /// bookkeeping of open spans.
    pub fn new(
        exporter: Box<dyn DynSpanExporter>,
        max_bytes: usize,
        flush_timeout: Duration,
        track_open: bool,
    ) -> Self {
        Self {
            exporter,
            state: Mutex::new(State::default()),
            max_bytes,
            flush_timeout,
            track_open,
            dropped_total: AtomicU64::new(0),
            failed_total: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spans waiting for the next flush.
    pub fn pending_len(&self) -> usize {
        self.state().pending.len()
    }

    /// Spans dropped because the buffer was full, since start-up.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Spans lost to failed exports, since start-up.
    pub fn failed_total(&self) -> u64 {
        self.failed_total.load(Ordering::Relaxed)
    }

    fn push(&self, state: &mut State, span: SpanData) {
        let size = approximate_size(&span);
        state.pending_bytes += size;
        state.pending.push_back((span, size));
        while state.pending_bytes > self.max_bytes && state.pending.len() > 1 {
            if let Some((_, dropped_size)) = state.pending.pop_front() {
                state.pending_bytes -= dropped_size;
                state.dropped_since_flush += 1;
                self.dropped_total.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Ends every span still open under `invocation` as of `now`, marked as cut off by
    /// `reason`, and queues them. Their real ends, if they ever come, are discarded.
    pub(crate) fn cut_off(&self, invocation: InvocationKey, reason: &'static str, now: SystemTime) -> Vec<String> {
        let mut state = self.state();
        // Oldest first, so the status reads from the outermost waiting call inward, the same
        // way on every run.
        let mut open: Vec<(SystemTime, [u8; 8])> = state
            .open
            .iter()
            .filter(|(_, (key, _))| *key == invocation)
            .map(|(id, (_, span))| (span.start_time, id.to_bytes()))
            .collect();
        open.sort_unstable();
        let ids: Vec<SpanId> = open.into_iter().map(|(_, id)| SpanId::from_bytes(id)).collect();
        let mut names = Vec::with_capacity(ids.len());
        if state.cut_off.len() + ids.len() > MAX_REMEMBERED_CUT_OFFS {
            state.cut_off.clear();
        }
        for id in ids {
            let Some((_, mut span)) = state.open.remove(&id) else { continue };
            span.end_time = now;
            span.status = Status::error(format!("cut off by flowtrace: {reason}"));
            span.attributes.push(KeyValue::new(attr::CUT_OFF, reason));
            names.push(span.name.to_string());
            state.cut_off.insert(id);
            self.push(&mut state, span);
        }
        names
    }

    /// Forgets the open spans of a finished invocation: spans that outlive it (in spawned
    /// tasks) are exported when they end but can no longer be cut off.
    pub(crate) fn finish_invocation(&self, invocation: InvocationKey) {
        if self.track_open {
            self.state().open.retain(|_, (key, _)| *key != invocation);
        }
    }

    /// Exports everything pending, within the flush timeout. Never fails: losses are
    /// counted, logged and returned.
    pub async fn flush(&self) -> FlushOutcome {
        let (batch, dropped) = {
            let mut state = self.state();
            state.pending_bytes = 0;
            let batch: Vec<SpanData> = state.pending.drain(..).map(|(span, _)| span).collect();
            (batch, std::mem::take(&mut state.dropped_since_flush))
        };
        if dropped > 0 {
            tracing::warn!(
                target: "flowtrace",
                dropped,
                dropped_total = self.dropped_total(),
                "flowtrace: span buffer full (FLOWTRACE_BUFFER_MAX_BYTES); dropped the oldest spans"
            );
        }
        let count = batch.len();
        if count == 0 {
            return FlushOutcome { dropped, ..FlushOutcome::default() };
        }
        let result = tokio::time::timeout(self.flush_timeout, self.exporter.export_boxed(batch)).await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("timed out after {:?} (FLOWTRACE_FLUSH_TIMEOUT_MS)", self.flush_timeout)),
        };
        match failure {
            None => FlushOutcome { exported: count, failed: 0, dropped },
            Some(reason) => {
                let failed_total = self.failed_total.fetch_add(count as u64, Ordering::Relaxed) + count as u64;
                tracing::warn!(target: "flowtrace", lost = count, failed_total, "flowtrace: span export failed: {reason}");
                FlushOutcome { exported: 0, failed: count, dropped }
            }
        }
    }
}

/// A rough wire size, cheap to compute: enough to bound memory, not to bill by.
fn approximate_size(span: &SpanData) -> usize {
    let value_size = |kv: &KeyValue| kv.key.as_str().len() + kv.value.as_str().len() + 8;
    96 + span.name.len()
        + span.attributes.iter().map(value_size).sum::<usize>()
        + span
            .events
            .iter()
            .map(|e| 32 + e.name.len() + e.attributes.iter().map(value_size).sum::<usize>())
            .sum::<usize>()
        + span.links.iter().map(|l| 48 + l.attributes.iter().map(value_size).sum::<usize>()).sum::<usize>()
}

/// The `SpanProcessor` face of a [`Handoff`].
#[derive(Debug, Clone)]
pub struct HandoffProcessor(pub Arc<Handoff>);

impl SpanProcessor for HandoffProcessor {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if !self.0.track_open {
            return;
        }
        let Some(key) = cx.get::<InvocationKey>().copied() else { return };
        if let Some(data) = span.exported_data() {
            let id = data.span_context.span_id();
            self.0.state().open.insert(id, (key, data));
        }
    }

    fn on_end(&self, span: SpanData) {
        let mut state = self.0.state();
        let id = span.span_context.span_id();
        if self.0.track_open {
            state.open.remove(&id);
            if state.cut_off.remove(&id) {
                return;
            }
        }
        if span.span_context.is_sampled() {
            self.0.push(&mut state, span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Flushing is async and driven by the wrapper after each response.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.0.exporter.shutdown_exporter()
    }

    // The exporter is shared behind an `Arc` by now; `TelemetryBuilder::build` gives it the
    // resource before that.
    fn set_resource(&mut self, _resource: &opentelemetry_sdk::Resource) {}
}
