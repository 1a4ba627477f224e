//! Per-invocation health metrics as OTLP metrics (delta temporality, one data point per
//! invocation; backends sum them): invocations, errors, timeouts, cold starts, duration and
//! billed duration histograms, max memory used, cost, and the extension's drop counter.

use crate::proto::Writer;
use crate::spans::AttrValue;
use crate::telemetry::Done;

/// Histogram bucket bounds for durations, in milliseconds.
pub const DURATION_BOUNDS_MS: [f64; 14] =
    [1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0, 30_000.0, 60_000.0];

/// Metric names.
pub mod names {
    /// Invocations (sum).
    pub const INVOCATIONS: &str = "faas.invocations";
    /// Invocations whose status was not success (sum).
    pub const ERRORS: &str = "faas.errors";
    /// Invocations that timed out (sum).
    pub const TIMEOUTS: &str = "faas.timeouts";
    /// Invocations that ran out of memory (sum).
    pub const OOMS: &str = "flowtrace.faas.oom";
    /// Cold starts (sum).
    pub const COLDSTARTS: &str = "faas.coldstarts";
    /// Duration (histogram, ms).
    pub const DURATION: &str = "flowtrace.faas.duration";
    /// Billed duration (histogram, ms).
    pub const BILLED_DURATION: &str = "flowtrace.faas.billed_duration";
    /// Max memory used (gauge, MB).
    pub const MAX_MEMORY: &str = "flowtrace.faas.max_memory_used";
    /// Cost (sum, USD).
    pub const COST: &str = "flowtrace.faas.cost";
    /// Payloads the extension dropped so far (cumulative sum).
    pub const DROPPED: &str = "flowtrace.extension.dropped";
}

/// One invocation's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationFigures<'a> {
    /// `platform.report`.
    pub report: &'a Done,
    /// Whether it was a cold start.
    pub cold_start: bool,
    /// Its cost, when known.
    pub cost: Option<f64>,
    /// Its start.
    pub start_unix_nano: u64,
    /// Now.
    pub time_unix_nano: u64,
    /// The extension's drops so far.
    pub dropped_total: u64,
    /// When the extension started (the cumulative counter's start).
    pub process_start_unix_nano: u64,
}

const DELTA: u64 = 1;
const CUMULATIVE: u64 = 2;

fn sum_int(w: &mut Writer, name: &str, unit: &str, value: u64, start: u64, time: u64, temporality: u64) {
    w.message(2, |m| {
        m.string(1, name);
        m.string(3, unit);
        m.message(7, |sum| {
            sum.message(1, |p| {
                p.fixed64(2, start);
                p.fixed64(3, time);
                p.fixed64(6, value); // as_int (sfixed64)
            });
            sum.uint(2, temporality);
            sum.uint(3, 1);
        });
    });
}

fn sum_double(w: &mut Writer, name: &str, unit: &str, value: f64, start: u64, time: u64) {
    w.message(2, |m| {
        m.string(1, name);
        m.string(3, unit);
        m.message(7, |sum| {
            sum.message(1, |p| {
                p.fixed64(2, start);
                p.fixed64(3, time);
                p.double(4, value);
            });
            sum.uint(2, DELTA);
            sum.uint(3, 1);
        });
    });
}

fn gauge_int(w: &mut Writer, name: &str, unit: &str, value: u64, time: u64) {
    w.message(2, |m| {
        m.string(1, name);
        m.string(3, unit);
        m.message(5, |gauge| {
            gauge.message(1, |p| {
                p.fixed64(3, time);
                p.fixed64(6, value);
            });
        });
    });
}

fn histogram(w: &mut Writer, name: &str, value_ms: f64, start: u64, time: u64) {
    let bucket = DURATION_BOUNDS_MS.iter().position(|b| value_ms <= *b).unwrap_or(DURATION_BOUNDS_MS.len());
    w.message(2, |m| {
        m.string(1, name);
        m.string(3, "ms");
        m.message(9, |h| {
            h.message(1, |p| {
                p.fixed64(2, start);
                p.fixed64(3, time);
                p.fixed64(4, 1);
                p.double(5, value_ms);
                let mut counts = Writer::new();
                for i in 0..=DURATION_BOUNDS_MS.len() {
                    counts.raw_fixed64(u64::from(i == bucket));
                }
                p.bytes(6, &counts.into_bytes());
                let mut bounds = Writer::new();
                for b in DURATION_BOUNDS_MS {
                    bounds.raw_fixed64(b.to_bits());
                }
                p.bytes(7, &bounds.into_bytes());
                p.double(11, value_ms); // min
                p.double(12, value_ms); // max
            });
            h.uint(2, DELTA);
        });
    });
}

/// Encodes one invocation's metrics as an `ExportMetricsServiceRequest`.
pub fn encode(resource: &[(String, String)], figures: &InvocationFigures<'_>) -> Vec<u8> {
    let report = figures.report;
    let (start, time) = (figures.start_unix_nano.min(figures.time_unix_nano), figures.time_unix_nano);
    let failed = report.status != "success";
    let timed_out = report.status == "timeout";
    let oom = report.error_type.as_deref().is_some_and(|t| t.contains("OutOfMemory"));
    let mut w = Writer::new();
    w.message(1, |rm| {
        rm.message(1, |res| {
            for (k, v) in resource {
                crate::spans::write_key_value(res, 1, k, &AttrValue::Str(v.clone()));
            }
        });
        rm.message(2, |sm| {
            sm.message(1, |scope| {
                scope.string(1, "flowtrace-extension");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            sum_int(sm, names::INVOCATIONS, "{invocation}", 1, start, time, DELTA);
            sum_int(sm, names::ERRORS, "{invocation}", u64::from(failed), start, time, DELTA);
            sum_int(sm, names::TIMEOUTS, "{invocation}", u64::from(timed_out), start, time, DELTA);
            sum_int(sm, names::OOMS, "{invocation}", u64::from(oom), start, time, DELTA);
            sum_int(sm, names::COLDSTARTS, "{invocation}", u64::from(figures.cold_start), start, time, DELTA);
            if let Some(ms) = report.metrics.duration_ms {
                histogram(sm, names::DURATION, ms, start, time);
            }
            if let Some(ms) = report.metrics.billed_duration_ms {
                // Billed durations are whole milliseconds far below 2^53.
                #[allow(clippy::cast_precision_loss)]
                histogram(sm, names::BILLED_DURATION, ms as f64, start, time);
            }
            if let Some(mb) = report.metrics.max_memory_used_mb {
                gauge_int(sm, names::MAX_MEMORY, "MB", mb, time);
            }
            if let Some(cost) = figures.cost {
                sum_double(sm, names::COST, "USD", cost, start, time);
            }
            sum_int(
                sm,
                names::DROPPED,
                "{payload}",
                figures.dropped_total,
                figures.process_start_unix_nano,
                time,
                CUMULATIVE,
            );
        });
    });
    w.into_bytes()
}
