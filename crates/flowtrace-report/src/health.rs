//! Health and cost per function, over every span of the file.

use std::collections::{BTreeMap, HashMap};

use flowtrace_contract::attr;

use crate::span::{FAAS_COLDSTART, SpanRecord};
use crate::text::{Align, clean, format_ms, format_usd, table};

/// Health and cost of one function.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FunctionHealth {
    /// The function (its spans' `service.name`).
    pub function: String,
    /// Distinct invocations (by `faas.invocation_id`).
    pub invocations: u64,
    /// Invocations that failed: the invocation span's status is Error, or the platform's
    /// status is not `success`. Timeouts are errors too.
    pub errors: u64,
    /// Invocations that timed out (`flowtrace.cut_off = timeout` on the invocation span, or
    /// platform status `timeout`).
    pub timeouts: u64,
    /// Invocations that were cold starts (`faas.coldstart = true`, an init duration on the
    /// platform span, or a `lambda.init` span).
    pub cold_starts: u64,
    /// Median duration in ms (nearest rank). The platform's duration when known, else the
    /// invocation span's.
    pub p50_ms: Option<f64>,
    /// 99th percentile duration in ms (nearest rank).
    pub p99_ms: Option<f64>,
    /// Billed duration, summed, in ms.
    pub billed_ms: u64,
    /// The most memory any invocation used, in MB.
    pub max_memory_used_mb: Option<u64>,
    /// The function's configured memory, in MB.
    pub memory_size_mb: Option<u64>,
    /// The cost in USD, summed.
    pub cost_usd: f64,
}

#[derive(Default)]
struct Invocation {
    first_start: u64,
    span_duration_ms: Option<f64>,
    synthesized_only: bool,
    span_error: bool,
    cut_off_timeout: bool,
    cold: bool,
    platform_duration_ms: Option<f64>,
    platform_status: Option<String>,
    billed_ms: Option<u64>,
    max_memory_mb: Option<u64>,
    memory_size_mb: Option<u64>,
    cost_usd: Option<f64>,
}

fn ms(ns: u64) -> f64 {
    // Durations are far below 2^53 ns.
    #[allow(clippy::cast_precision_loss)]
    let ms = ns as f64 / 1e6;
    ms
}

fn non_negative(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// The nearest-rank percentile `p` (0–100) of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Ranks are small positive integers.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Health per function over all `spans` (every trace), ordered by each function's first
/// invocation. Each invocation counts once, however many spans describe it (the function's
/// invocation span, a span the extension synthesized for it, its platform and init spans).
pub fn health(spans: &[SpanRecord]) -> Vec<FunctionHealth> {
    // (function, invocation id) → what is known.
    let mut invocations: HashMap<(&str, &str), Invocation> = HashMap::new();
    let mut memory_from_resource: HashMap<&str, u64> = HashMap::new();
    for span in spans {
        let Some(id) = span.invocation_id() else { continue };
        if !(span.is_invocation() || span.is_platform() || span.is_init()) {
            continue;
        }
        let inv = invocations.entry((span.service.as_str(), id)).or_insert_with(|| Invocation {
            first_start: u64::MAX,
            synthesized_only: true,
            ..Invocation::default()
        });
        inv.first_start = inv.first_start.min(span.start_unix_nano);
        let a = &span.attributes;
        if span.is_invocation() {
            let synthesized = span.is_synthesized();
            // The function's own span wins over a synthesized one for the duration.
            if inv.span_duration_ms.is_none() || (inv.synthesized_only && !synthesized) {
                inv.span_duration_ms = Some(ms(span.duration_ns()));
            }
            inv.synthesized_only &= synthesized;
            inv.span_error |= span.is_error();
            inv.cut_off_timeout |= a.str(attr::CUT_OFF) == Some("timeout");
            inv.cold |= a.bool(FAAS_COLDSTART) == Some(true);
            if let Some(status) = a.str(attr::PLATFORM_STATUS) {
                inv.platform_status.get_or_insert_with(|| status.to_owned());
            }
        } else if span.is_init() {
            inv.cold = true;
        } else {
            inv.platform_duration_ms = a.f64(attr::PLATFORM_DURATION_MS).or(inv.platform_duration_ms);
            if let Some(status) = a.str(attr::PLATFORM_STATUS) {
                inv.platform_status = Some(status.to_owned());
            }
            inv.billed_ms = non_negative(a.i64(attr::PLATFORM_BILLED_DURATION_MS)).or(inv.billed_ms);
            inv.max_memory_mb = non_negative(a.i64(attr::PLATFORM_MAX_MEMORY_USED_MB)).or(inv.max_memory_mb);
            inv.memory_size_mb = non_negative(a.i64(attr::PLATFORM_MEMORY_SIZE_MB)).or(inv.memory_size_mb);
            inv.cost_usd = a.f64(attr::PLATFORM_COST_USD).filter(|c| *c >= 0.0).or(inv.cost_usd);
            inv.cold |= a.f64(attr::PLATFORM_INIT_DURATION_MS).is_some();
        }
        // `faas.max_memory` is in bytes.
        if let Some(bytes) = non_negative(span.resource.i64("faas.max_memory")) {
            memory_from_resource.entry(span.service.as_str()).or_insert(bytes / (1024 * 1024));
        }
    }

    let mut per_function: BTreeMap<&str, (u64, FunctionHealth, Vec<f64>)> = BTreeMap::new();
    for ((function, _), inv) in invocations {
        let (first, h, durations) = per_function.entry(function).or_insert_with(|| {
            (u64::MAX, FunctionHealth { function: function.to_owned(), ..FunctionHealth::default() }, Vec::new())
        });
        *first = (*first).min(inv.first_start);
        h.invocations += 1;
        let platform_failed = inv.platform_status.as_deref().is_some_and(|s| s != "success");
        let timed_out = inv.cut_off_timeout || inv.platform_status.as_deref() == Some("timeout");
        h.errors += u64::from(inv.span_error || platform_failed || timed_out);
        h.timeouts += u64::from(timed_out);
        h.cold_starts += u64::from(inv.cold);
        if let Some(d) = inv.platform_duration_ms.or(inv.span_duration_ms) {
            durations.push(d);
        }
        h.billed_ms += inv.billed_ms.unwrap_or(0);
        h.max_memory_used_mb = h.max_memory_used_mb.max(inv.max_memory_mb);
        h.memory_size_mb = h.memory_size_mb.max(inv.memory_size_mb);
        h.cost_usd += inv.cost_usd.unwrap_or(0.0);
    }
    let mut out: Vec<(u64, FunctionHealth)> = per_function
        .into_values()
        .map(|(first, mut h, mut durations)| {
            durations.sort_by(f64::total_cmp);
            h.p50_ms = percentile(&durations, 50.0);
            h.p99_ms = percentile(&durations, 99.0);
            if h.memory_size_mb.is_none() {
                h.memory_size_mb = memory_from_resource.get(h.function.as_str()).copied();
            }
            (first, h)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.function.cmp(&b.1.function)));
    out.into_iter().map(|(_, h)| h).collect()
}

/// The memory column: `used/size MB`, or what is known of it.
pub(crate) fn memory_text(h: &FunctionHealth) -> String {
    match (h.max_memory_used_mb, h.memory_size_mb) {
        (Some(used), Some(size)) => format!("{used}/{size}"),
        (Some(used), None) => used.to_string(),
        (None, Some(size)) => format!("-/{size}"),
        (None, None) => "-".to_owned(),
    }
}

/// The health table as text, with a total row.
pub fn health_table(health: &[FunctionHealth]) -> String {
    if health.is_empty() {
        return "Health: no invocations found.\n".to_owned();
    }
    let header = ["function", "invocations", "errors", "timeouts", "cold", "p50 ms", "p99 ms", "billed ms", "mem MB"];
    let mut rows: Vec<Vec<String>> = health
        .iter()
        .map(|h| {
            vec![
                clean(&h.function, 40),
                h.invocations.to_string(),
                h.errors.to_string(),
                h.timeouts.to_string(),
                h.cold_starts.to_string(),
                h.p50_ms.map_or_else(|| "-".to_owned(), format_ms),
                h.p99_ms.map_or_else(|| "-".to_owned(), format_ms),
                h.billed_ms.to_string(),
                memory_text(h),
                format_usd(h.cost_usd),
            ]
        })
        .collect();
    let sum = |f: fn(&FunctionHealth) -> u64| health.iter().map(f).sum::<u64>().to_string();
    rows.push(vec![
        "total".to_owned(),
        sum(|h| h.invocations),
        sum(|h| h.errors),
        sum(|h| h.timeouts),
        sum(|h| h.cold_starts),
        String::new(),
        String::new(),
        sum(|h| h.billed_ms),
        String::new(),
        format_usd(health.iter().map(|h| h.cost_usd).sum()),
    ]);
    let mut header: Vec<String> = header.iter().map(|s| (*s).to_owned()).collect();
    header.push("cost USD".to_owned());
    let mut align = vec![Align::Left];
    align.extend(std::iter::repeat_n(Align::Right, header.len() - 1));
    format!("Health and cost per function (all traces)\n{}", table(&header, &rows, &align, Some(rows.len() - 1)))
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[1.0, 2.0], f64::NAN), Some(1.0));
    }
}
