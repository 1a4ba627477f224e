//! What the extension knows about each invocation: the wrapper's start notice, whether the
//! invocation span arrived, and the platform's telemetry. It decides which spans the
//! extension adds: the platform span (child of the invocation span), the init span on a
//! cold start, and the invocation span itself when the function died before handing it off.
//!
//! Synchronous and free of I/O, so it can be tested directly.

use std::collections::{HashMap, VecDeque};

use flowtrace_contract::{
    INIT_SPAN_NAME, INSIGHT_HIGH_MEMORY_EVENT, INSIGHT_NEAR_TIMEOUT_EVENT, PLATFORM_SPAN_NAME, StartNotice, attr,
};
use thiserror::Error;

use crate::cost::{Architecture, Pricing};
use crate::spans::{
    AttrValue, Kind, OutLog, OutSpan, SpanEvent, encode, encode_logs, parse_hex, parse_xray, random_id,
};
use crate::telemetry::{Done, Event, EventKind, FunctionLog};

/// How many invocations are remembered at most (older ones are forgotten).
const MAX_TRACKED: usize = 256;

/// A start notice that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoticeError {
    /// The trace id is not 32 hex digits.
    #[error("traceId {0:?} is not 32 hex digits")]
    TraceId(String),
    /// The span id is not 16 hex digits.
    #[error("spanId {0:?} is not 16 hex digits")]
    SpanId(String),
    /// The parent span id is not 16 hex digits.
    #[error("parentSpanId {0:?} is not 16 hex digits")]
    ParentSpanId(String),
    /// The request id is empty.
    #[error("requestId is empty")]
    RequestId,
}

#[derive(Debug, Clone)]
struct Notice {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    name: String,
    start_time_unix_nano: u64,
    sampled: bool,
}

#[derive(Debug, Default)]
struct Invocation {
    xray: Option<String>,
    invoked_at_unix_nano: u64,
    deadline_unix_nano: u64,
    start_time_unix_nano: Option<u64>,
    notice: Option<Notice>,
    span_seen: bool,
    runtime_done: Option<Done>,
    report: Option<Done>,
    /// No `platform.runtimeDone` by the deadline (plus grace).
    missed_deadline: bool,
    finished: bool,
    platform_emitted: bool,
    trace: Option<([u8; 16], Option<[u8; 8]>)>,
}

impl Invocation {
    /// The trace and parent the extension's spans go into.
    fn trace(&mut self) -> ([u8; 16], Option<[u8; 8]>) {
        if let Some(trace) = self.trace {
            return trace;
        }
        let trace = match &self.notice {
            Some(notice) => (notice.trace_id, Some(notice.span_id)),
            None => self.xray.as_deref().and_then(parse_xray).unwrap_or_else(|| (random_id(), None)),
        };
        self.trace = Some(trace);
        trace
    }
}

#[derive(Debug, Default)]
struct Init {
    start_unix_nano: Option<u64>,
    duration_ms: Option<f64>,
    initialization_type: Option<String>,
    emitted: bool,
}

/// The invocation tracker.
#[derive(Debug)]
pub struct Tracker {
    resource: Vec<(String, String)>,
    pricing: Pricing,
    architecture: Architecture,
    invocations: HashMap<String, Invocation>,
    order: VecDeque<String>,
    expected: HashMap<[u8; 8], String>,
    init: Init,
    current: Option<String>,
    cold_request: Option<String>,
    memory_size_mb: Option<u64>,
}

fn ms_to_ns(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // Durations are far below u64::MAX nanoseconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ns = (ms * 1_000_000.0) as u64;
        ns
    } else {
        0
    }
}

fn int(value: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The share of a limit at which an insight is raised.
pub const INSIGHT_THRESHOLD: f64 = 0.8;

/// Insight events: duration ≥ 80 % of the timeout budget (`deadline - start`), max memory
/// ≥ 80 % of the memory size.
pub fn insights(metrics: &crate::telemetry::Metrics, start: u64, deadline: u64, at: u64) -> Vec<SpanEvent> {
    let mut events = Vec::new();
    if let Some(duration_ms) = metrics.duration_ms
        && deadline > start
    {
        // Budgets are minutes at most: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let budget_ms = (deadline - start) as f64 / 1e6;
        if duration_ms >= INSIGHT_THRESHOLD * budget_ms {
            events.push(SpanEvent {
                name: INSIGHT_NEAR_TIMEOUT_EVENT,
                time_unix_nano: at,
                attributes: vec![
                    (attr::PLATFORM_DURATION_MS, AttrValue::Double(duration_ms)),
                    (attr::DEADLINE_BUDGET_MS, AttrValue::Double(budget_ms)),
                ],
            });
        }
    }
    if let (Some(used), Some(size)) = (metrics.max_memory_used_mb, metrics.memory_size_mb)
        && size > 0
    {
        #[allow(clippy::cast_precision_loss)]
        let share = used as f64 / size as f64;
        if share >= INSIGHT_THRESHOLD {
            events.push(SpanEvent {
                name: INSIGHT_HIGH_MEMORY_EVENT,
                time_unix_nano: at,
                attributes: vec![
                    (attr::PLATFORM_MAX_MEMORY_USED_MB, int(used)),
                    (attr::PLATFORM_MEMORY_SIZE_MB, int(size)),
                ],
            });
        }
    }
    events
}

impl Tracker {
    /// A tracker whose spans carry `resource`, priced with `pricing`.
    pub fn new(resource: Vec<(String, String)>, pricing: Pricing, architecture: Architecture) -> Self {
        Self {
            resource,
            pricing,
            architecture,
            invocations: HashMap::new(),
            order: VecDeque::new(),
            expected: HashMap::new(),
            init: Init::default(),
            current: None,
            cold_request: None,
            memory_size_mb: None,
        }
    }

    /// The function's memory size, for estimates (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub fn set_memory_size_mb(&mut self, memory_size_mb: Option<u64>) {
        self.memory_size_mb = memory_size_mb;
    }

    /// The invocation had no `platform.runtimeDone` by its deadline: it timed out. Should
    /// its `platform.report` never come either (the sandbox was torn down), its platform
    /// span is estimated from the deadline, and says so.
    pub fn on_missed_deadline(&mut self, request_id: &str) {
        if let Some(invocation) = self.invocations.get_mut(request_id) {
            invocation.missed_deadline = true;
        }
    }

    fn entry(&mut self, request_id: &str) -> &mut Invocation {
        if !self.invocations.contains_key(request_id) {
            while self.order.len() >= MAX_TRACKED {
                if let Some(old) = self.order.pop_front()
                    && let Some(forgotten) = self.invocations.remove(&old)
                    && let Some(notice) = forgotten.notice
                {
                    self.expected.remove(&notice.span_id);
                }
            }
            self.order.push_back(request_id.to_owned());
        }
        self.invocations.entry(request_id.to_owned()).or_default()
    }

    /// An INVOKE event from the Extensions API.
    pub fn on_invoke(&mut self, request_id: &str, xray: Option<String>, now_unix_nano: u64) {
        self.current = Some(request_id.to_owned());
        let invocation = self.entry(request_id);
        invocation.xray = xray;
        invocation.invoked_at_unix_nano = now_unix_nano;
    }

    /// Encodes function log lines as OTLP logs, each correlated with its invocation (the
    /// record's `requestId`, else the invocation running now) and its invocation span.
    pub fn encode_logs(&mut self, lines: Vec<(u64, FunctionLog)>) -> Vec<u8> {
        let mut logs = Vec::with_capacity(lines.len());
        for (time_unix_nano, line) in lines {
            let request_id = line.request_id.or_else(|| self.current.clone());
            let trace = request_id.as_deref().and_then(|id| self.invocations.get_mut(id)).map(Invocation::trace);
            logs.push(OutLog { time_unix_nano, message: line.message, level: line.level, request_id, trace });
        }
        encode_logs(&self.resource, &logs)
    }

    /// The invocation's deadline (from INVOKE), for the near-timeout insight.
    pub fn on_deadline(&mut self, request_id: &str, deadline_unix_nano: u64) {
        self.entry(request_id).deadline_unix_nano = deadline_unix_nano;
    }

    /// A start notice from the wrapper.
    pub fn on_notice(&mut self, notice: &StartNotice) -> Result<(), NoticeError> {
        if notice.request_id.is_empty() {
            return Err(NoticeError::RequestId);
        }
        let trace_id =
            parse_hex::<16>(&notice.trace_id).ok_or_else(|| NoticeError::TraceId(notice.trace_id.clone()))?;
        let span_id = parse_hex::<8>(&notice.span_id).ok_or_else(|| NoticeError::SpanId(notice.span_id.clone()))?;
        let parent_span_id = match &notice.parent_span_id {
            None => None,
            Some(p) => Some(parse_hex::<8>(p).ok_or_else(|| NoticeError::ParentSpanId(p.clone()))?),
        };
        let parsed = Notice {
            trace_id,
            span_id,
            parent_span_id,
            name: notice.name.clone(),
            start_time_unix_nano: notice.start_time_unix_nano,
            sampled: notice.sampled,
        };
        let invocation = self.entry(&notice.request_id);
        invocation.notice = Some(parsed);
        if !invocation.span_seen {
            self.expected.insert(span_id, notice.request_id.clone());
        }
        Ok(())
    }

    /// Whether any start notice is waiting for its invocation span.
    pub fn expects_spans(&self) -> bool {
        !self.expected.is_empty()
    }

    /// Span ids seen in the function's OTLP. Returns whether one was an invocation span
    /// the tracker was waiting for.
    pub fn on_span_id(&mut self, span_id: &[u8]) -> bool {
        let Ok(id) = <[u8; 8]>::try_from(span_id) else { return false };
        let Some(request_id) = self.expected.remove(&id) else { return false };
        if let Some(invocation) = self.invocations.get_mut(&request_id) {
            invocation.span_seen = true;
        }
        true
    }

    /// A telemetry event. Returns encoded spans to export.
    pub fn on_event(&mut self, event: Event) -> Option<Vec<u8>> {
        match event.kind {
            EventKind::InitStart(init) => {
                self.init.start_unix_nano = Some(event.time_unix_nano).filter(|t| *t > 0);
                self.init.initialization_type = init.initialization_type;
                None
            }
            EventKind::InitReport(init) => {
                self.init.duration_ms = init.metrics.duration_ms.or(self.init.duration_ms);
                None
            }
            EventKind::InitRuntimeDone(_) | EventKind::FunctionLog(_) | EventKind::Other(_) => None,
            EventKind::Start(start) => {
                let time = event.time_unix_nano;
                self.current = Some(start.request_id.clone());
                let invocation = self.entry(&start.request_id);
                if time > 0 {
                    invocation.start_time_unix_nano = Some(time);
                }
                if invocation.xray.is_none() {
                    invocation.xray = start.tracing.and_then(|t| t.value);
                }
                None
            }
            EventKind::RuntimeDone(done) => {
                let request_id = done.request_id.clone();
                self.entry(&request_id).runtime_done = Some(done);
                None
            }
            EventKind::Report(done) => {
                let request_id = done.request_id.clone();
                if let Some(init_ms) = done.metrics.init_duration_ms {
                    self.init.duration_ms.get_or_insert(init_ms);
                }
                self.entry(&request_id).report = Some(done);
                self.platform_spans(&request_id, event.time_unix_nano)
            }
        }
    }

    /// The health metrics of an invocation whose `platform.report` arrived, as an OTLP
    /// metrics request; `dropped_total` is the extension's drop count so far.
    pub fn metrics_for(&self, request_id: &str, dropped_total: u64, process_start_unix_nano: u64) -> Option<Vec<u8>> {
        let invocation = self.invocations.get(request_id)?;
        let report = invocation.report.as_ref()?;
        let m = &report.metrics;
        let cost = match (m.billed_duration_ms, m.memory_size_mb) {
            (Some(billed), Some(memory)) => Some(self.pricing.invocation_cost(billed, memory)),
            _ => None,
        };
        let start = invocation.start_time_unix_nano.unwrap_or(invocation.invoked_at_unix_nano);
        let time = start.saturating_add(m.duration_ms.map_or(0, ms_to_ns));
        let figures = crate::metrics::InvocationFigures {
            report,
            cold_start: m.init_duration_ms.is_some() || self.cold_request.as_deref() == Some(request_id),
            cost,
            start_unix_nano: start,
            time_unix_nano: time,
            dropped_total,
            process_start_unix_nano,
        };
        Some(crate::metrics::encode(&self.resource, &figures))
    }

    /// The `platform.runtimeDone` of an invocation, once it arrived.
    pub fn runtime_done(&self, request_id: &str) -> Option<&Done> {
        self.invocations.get(request_id).and_then(|i| i.runtime_done.as_ref())
    }

    /// Whether an invocation that ended (`platform.runtimeDone`) still waits for its
    /// `platform.report`: the billed duration, memory and cost come only with the report,
    /// which Lambda delivers after the environment thaws, possibly only at SHUTDOWN.
    pub fn awaiting_reports(&self) -> bool {
        self.invocations.values().any(|i| i.runtime_done.is_some() && i.report.is_none() && !i.platform_emitted)
    }

    /// Whether the invocation has a sampled start notice whose span has not arrived.
    pub fn awaiting_span(&self, request_id: &str) -> bool {
        self.invocations.get(request_id).is_some_and(|i| !i.span_seen && i.notice.as_ref().is_some_and(|n| n.sampled))
    }

    /// Ends the extension's handling of an invocation: when the function died (the platform
    /// says `timeout`/`failure`, or `fallback_reason` says why no `runtimeDone` came)
    /// and its invocation span never arrived, returns the synthesized invocation span.
    pub fn finish(&mut self, request_id: &str, fallback_reason: Option<&str>, now_unix_nano: u64) -> Option<Vec<u8>> {
        let invocation = self.invocations.get_mut(request_id)?;
        if invocation.finished {
            return None;
        }
        invocation.finished = true;
        let (status, error_type, duration_ms) = match &invocation.runtime_done {
            Some(done) => (done.status.clone(), done.error_type.clone(), done.metrics.duration_ms),
            None => (fallback_reason?.to_owned(), None, None),
        };
        // `error`: the runtime posted the error itself, so the wrapper is alive and hands its
        // span off (maybe a little later); only a dead function needs the extension's span.
        if status == "success" || status == "error" || invocation.span_seen {
            return None;
        }
        let notice = invocation.notice.clone().filter(|n| n.sampled)?;
        self.expected.remove(&notice.span_id);
        let end = match duration_ms {
            Some(ms) => notice.start_time_unix_nano.saturating_add(ms_to_ns(ms)),
            None => now_unix_nano.max(notice.start_time_unix_nano),
        };
        let reason = match &error_type {
            Some(error_type) => format!("{status}: {error_type}"),
            None => format!("the function ended with status {status} before handing off its invocation span"),
        };
        let mut attributes = vec![
            ("faas.invocation_id", AttrValue::Str(request_id.to_owned())),
            (attr::SYNTHESIZED, AttrValue::Bool(true)),
            (attr::PLATFORM_STATUS, AttrValue::Str(status.clone())),
            (attr::PLATFORM_REASON, AttrValue::Str(reason.clone())),
        ];
        if let Some(error_type) = &error_type {
            attributes.push((attr::PLATFORM_ERROR_TYPE, AttrValue::Str(error_type.clone())));
        }
        let span = OutSpan {
            trace_id: notice.trace_id,
            span_id: notice.span_id,
            parent_span_id: notice.parent_span_id,
            name: notice.name.clone(),
            kind: Kind::Server,
            start_time_unix_nano: notice.start_time_unix_nano,
            end_time_unix_nano: end,
            attributes,
            error: Some(reason.clone()),
            events: vec![SpanEvent {
                name: "exception",
                time_unix_nano: end,
                attributes: vec![
                    ("exception.type", AttrValue::Str(error_type.unwrap_or_else(|| status.clone()))),
                    ("exception.message", AttrValue::Str(reason)),
                ],
            }],
        };
        Some(encode(&self.resource, &[span]))
    }

    /// The platform span (and the init span on a cold start) of an invocation whose
    /// `platform.report` (or, at shutdown, whatever) arrived.
    fn platform_spans(&mut self, request_id: &str, now_unix_nano: u64) -> Option<Vec<u8>> {
        let pricing = self.pricing;
        let architecture = self.architecture;
        let invocation = self.invocations.get_mut(request_id)?;
        if invocation.platform_emitted {
            return None;
        }
        let reported = invocation.report.clone().or_else(|| invocation.runtime_done.clone());
        let estimated = reported.is_none();
        let done = match reported {
            Some(done) => done,
            None if invocation.missed_deadline => estimated_timeout(
                request_id,
                invocation.invoked_at_unix_nano,
                invocation.deadline_unix_nano,
                self.memory_size_mb,
            ),
            None => return None,
        };
        invocation.platform_emitted = true;
        let (trace_id, parent) = invocation.trace();
        let duration_ns = done.metrics.duration_ms.map_or(0, ms_to_ns);
        let start = invocation
            .start_time_unix_nano
            .or(invocation.notice.as_ref().map(|n| n.start_time_unix_nano))
            .filter(|t| *t > 0)
            .or(Some(invocation.invoked_at_unix_nano).filter(|t| *t > 0))
            .unwrap_or_else(|| now_unix_nano.saturating_sub(duration_ns));
        let mut attributes = vec![
            ("faas.invocation_id", AttrValue::Str(request_id.to_owned())),
            (attr::PLATFORM_STATUS, AttrValue::Str(done.status.clone())),
            (attr::PLATFORM_ARCHITECTURE, AttrValue::Str(architecture.as_str().to_owned())),
        ];
        let m = &done.metrics;
        if let Some(v) = m.duration_ms {
            attributes.push((attr::PLATFORM_DURATION_MS, AttrValue::Double(v)));
        }
        if let Some(v) = m.billed_duration_ms {
            attributes.push((attr::PLATFORM_BILLED_DURATION_MS, int(v)));
        }
        if let Some(v) = m.memory_size_mb {
            attributes.push((attr::PLATFORM_MEMORY_SIZE_MB, int(v)));
        }
        if let Some(v) = m.max_memory_used_mb {
            attributes.push((attr::PLATFORM_MAX_MEMORY_USED_MB, int(v)));
        }
        if let Some(v) = m.init_duration_ms {
            attributes.push((attr::PLATFORM_INIT_DURATION_MS, AttrValue::Double(v)));
        }
        if let (Some(billed), Some(memory)) = (m.billed_duration_ms, m.memory_size_mb) {
            attributes.push((attr::PLATFORM_COST_USD, AttrValue::Double(pricing.invocation_cost(billed, memory))));
        }
        if let Some(error_type) = &done.error_type {
            attributes.push((attr::PLATFORM_ERROR_TYPE, AttrValue::Str(error_type.clone())));
        }
        if estimated {
            attributes.push((attr::PLATFORM_ESTIMATED, AttrValue::Bool(true)));
        }
        let error = (done.status != "success").then(|| match &done.error_type {
            Some(t) => format!("{}: {t}", done.status),
            None => done.status.clone(),
        });
        let end = start.saturating_add(duration_ns);
        let events = insights(m, start, invocation.deadline_unix_nano, end);
        let mut spans = vec![OutSpan {
            trace_id,
            span_id: random_id(),
            parent_span_id: parent,
            name: PLATFORM_SPAN_NAME.to_owned(),
            kind: Kind::Internal,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            error,
            events,
        }];
        let cold_duration = m.init_duration_ms.or(self.init.duration_ms);
        if !self.init.emitted
            && let Some(init_ms) = cold_duration
        {
            self.init.emitted = true;
            self.cold_request = Some(request_id.to_owned());
            let init_ns = ms_to_ns(init_ms);
            let init_start = self.init.start_unix_nano.unwrap_or_else(|| start.saturating_sub(init_ns));
            let mut attributes = vec![
                ("faas.coldstart", AttrValue::Bool(true)),
                (attr::PLATFORM_INIT_DURATION_MS, AttrValue::Double(init_ms)),
                ("faas.invocation_id", AttrValue::Str(request_id.to_owned())),
            ];
            if let Some(kind) = &self.init.initialization_type {
                attributes.push(("aws.lambda.initialization_type", AttrValue::Str(kind.clone())));
            }
            spans.push(OutSpan {
                trace_id,
                span_id: random_id(),
                parent_span_id: parent,
                name: INIT_SPAN_NAME.to_owned(),
                kind: Kind::Internal,
                start_time_unix_nano: init_start,
                end_time_unix_nano: init_start.saturating_add(init_ns),
                attributes,
                error: None,
                events: Vec::new(),
            });
        }
        Some(encode(&self.resource, &spans))
    }

    /// SHUTDOWN: synthesizes the invocation spans of unfinished invocations that died, and
    /// the platform spans not yet emitted. Returns the encoded payloads.
    pub fn on_shutdown(&mut self, reason: &str, now_unix_nano: u64) -> Vec<Vec<u8>> {
        let ids: Vec<String> = self.order.iter().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            let fallback = format!("shutdown ({reason})");
            out.extend(self.finish(&id, Some(&fallback), now_unix_nano));
            out.extend(self.platform_spans(&id, now_unix_nano));
        }
        out
    }
}

/// What the platform would have reported for an invocation that timed out: it ran, and was
/// billed, from its start to its deadline.
fn estimated_timeout(request_id: &str, invoked_at: u64, deadline: u64, memory_size_mb: Option<u64>) -> Done {
    let duration_ms = (deadline > invoked_at && invoked_at > 0).then(|| (deadline - invoked_at) as f64 / 1e6);
    Done {
        request_id: request_id.to_owned(),
        status: "timeout".to_owned(),
        error_type: Some("Sandbox.Timedout".to_owned()),
        metrics: crate::telemetry::Metrics {
            duration_ms,
            billed_duration_ms: duration_ms.map(|ms| ms.ceil() as u64),
            memory_size_mb,
            ..crate::telemetry::Metrics::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::parse_batch;

    fn tracker() -> Tracker {
        Tracker::new(vec![], Pricing::for_architecture(Architecture::X86_64), Architecture::X86_64)
    }

    fn notice(request_id: &str) -> StartNotice {
        StartNotice {
            request_id: request_id.into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            parent_span_id: None,
            name: "hello".into(),
            start_time_unix_nano: 1_000,
            sampled: true,
        }
    }

    fn feed(t: &mut Tracker, json: &str) -> Vec<Vec<u8>> {
        parse_batch(json.as_bytes()).unwrap().into_iter().filter_map(|e| t.on_event(e)).collect()
    }

    #[test]
    fn timeout_without_span_is_synthesized() {
        let mut t = tracker();
        t.on_invoke("r1", None, 500);
        t.on_notice(&notice("r1")).unwrap();
        feed(
            &mut t,
            r#"[{"type":"platform.runtimeDone","record":{"requestId":"r1","status":"timeout","errorType":"Sandbox.Timedout","metrics":{"durationMs":3.0}}}]"#,
        );
        assert!(t.awaiting_span("r1"));
        let body = t.finish("r1", None, 10).expect("synthesized");
        let mut ids = Vec::new();
        crate::proto::scan_trace_request(&body, |s| ids.push(s.span_id.to_vec())).unwrap();
        assert_eq!(ids, vec![vec![0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]]);
        assert!(t.finish("r1", None, 10).is_none(), "only once");
    }

    #[test]
    fn arrived_span_or_success_is_not_synthesized() {
        let mut t = tracker();
        t.on_notice(&notice("r1")).unwrap();
        assert!(t.expects_spans());
        assert!(t.on_span_id(&[0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]));
        assert!(!t.expects_spans());
        feed(&mut t, r#"[{"type":"platform.runtimeDone","record":{"requestId":"r1","status":"failure"}}]"#);
        assert!(t.finish("r1", None, 10).is_none());

        for status in ["success", "error"] {
            let mut t = tracker();
            t.on_notice(&notice("r2")).unwrap();
            feed(
                &mut t,
                &format!(r#"[{{"type":"platform.runtimeDone","record":{{"requestId":"r2","status":"{status}"}}}}]"#),
            );
            assert!(t.finish("r2", None, 10).is_none(), "{status}");
        }
    }

    #[test]
    fn no_runtime_done_uses_the_fallback_reason() {
        let mut t = tracker();
        t.on_invoke("r1", None, 1);
        t.on_notice(&notice("r1")).unwrap();
        assert!(t.finish("r1", Some("timeout"), 10).is_some());
    }

    #[test]
    fn report_yields_platform_and_init_spans_once() {
        let mut t = tracker();
        t.on_invoke("r1", Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into()), 1);
        let out = feed(
            &mut t,
            r#"[{"time":"2026-01-01T00:00:00Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init"}},
                {"time":"2026-01-01T00:00:01Z","type":"platform.report","record":{"requestId":"r1","status":"success","metrics":{"durationMs":10.0,"billedDurationMs":10,"memorySizeMB":128,"maxMemoryUsedMB":30,"initDurationMs":50.0}}}]"#,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(crate::proto::scan_trace_request(&out[0], |s| assert_eq!(s.trace_id[0], 0x57)).unwrap(), 2);
        assert!(t.on_shutdown("spindown", 5).is_empty());
    }

    #[test]
    fn a_timeout_the_platform_never_reported_gets_an_estimated_platform_span() {
        let contains = |haystack: &[u8], needle: &str| haystack.windows(needle.len()).any(|w| w == needle.as_bytes());
        let mut t = tracker();
        t.set_memory_size_mb(Some(128));
        t.on_invoke("r1", None, 1_000_000_000);
        t.on_deadline("r1", 4_000_000_000);
        assert!(t.on_shutdown("spindown", 5_000_000_000).is_empty(), "no deadline missed, nothing to estimate");

        let mut t = tracker();
        t.set_memory_size_mb(Some(128));
        t.on_invoke("r1", None, 1_000_000_000);
        t.on_deadline("r1", 4_000_000_000);
        t.on_missed_deadline("r1");
        let out = t.on_shutdown("timeout", 5_000_000_000);
        assert_eq!(out.len(), 1);
        for needle in [PLATFORM_SPAN_NAME, attr::PLATFORM_ESTIMATED, "Sandbox.Timedout", attr::PLATFORM_COST_USD] {
            assert!(contains(&out[0], needle), "{needle}");
        }
        assert!(t.on_shutdown("timeout", 6_000_000_000).is_empty(), "once");

        // The real report, when it comes, wins over the estimate.
        let mut t = tracker();
        t.on_invoke("r2", None, 1_000_000_000);
        t.on_missed_deadline("r2");
        let out = feed(
            &mut t,
            r#"[{"time":"2026-01-01T00:00:01Z","type":"platform.report","record":{"requestId":"r2","status":"timeout","errorType":"Sandbox.Timedout","metrics":{"durationMs":3000.0,"billedDurationMs":3000,"memorySizeMB":128,"maxMemoryUsedMB":30}}}]"#,
        );
        assert_eq!(out.len(), 1);
        assert!(!contains(&out[0], attr::PLATFORM_ESTIMATED));
    }

    #[test]
    fn insights_at_80_percent() {
        use crate::telemetry::Metrics;
        let m = |duration: f64, used: u64| Metrics {
            duration_ms: Some(duration),
            max_memory_used_mb: Some(used),
            memory_size_mb: Some(100),
            ..Metrics::default()
        };
        let s = 1_000_000_000;
        let names = |e: Vec<SpanEvent>| e.iter().map(|e| e.name).collect::<Vec<_>>();
        assert!(insights(&m(799.0, 79), 0, s, 0).is_empty());
        assert_eq!(names(insights(&m(800.0, 80), 0, s, 0)), [INSIGHT_NEAR_TIMEOUT_EVENT, INSIGHT_HIGH_MEMORY_EVENT]);
        assert!(insights(&m(5000.0, 1), 0, 0, 0).is_empty(), "no deadline known, no timeout insight");
    }

    #[test]
    fn bad_notices_are_refused() {
        let mut t = tracker();
        let mut n = notice("r1");
        n.trace_id = "xyz".into();
        assert!(matches!(t.on_notice(&n), Err(NoticeError::TraceId(_))));
        let mut n = notice("");
        n.request_id.clear();
        assert_eq!(t.on_notice(&n), Err(NoticeError::RequestId));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = tracker();
        for i in 0..(MAX_TRACKED * 3) {
            t.on_invoke(&format!("r{i}"), None, 1);
        }
        assert!(t.invocations.len() <= MAX_TRACKED);
    }
}
