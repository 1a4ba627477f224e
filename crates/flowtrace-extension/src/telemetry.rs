//! Telemetry API batches: parsing the events the extension uses. Unknown event types are
//! ignored; a malformed event is skipped with a log line and never stops the batch.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

/// A batch that is not a JSON array.
#[derive(Debug, Error)]
pub enum BatchError {
    /// Not JSON, or not an array.
    #[error("telemetry batch is not a JSON array: {0}")]
    NotAnArray(#[from] serde_json::Error),
}

/// `record.metrics` of `platform.report` (and `platform.runtimeDone`, which has fewer).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// `durationMs`.
    #[serde(default)]
    pub duration_ms: Option<f64>,
    /// `billedDurationMs`.
    #[serde(default)]
    pub billed_duration_ms: Option<u64>,
    /// `memorySizeMB`.
    #[serde(default, rename = "memorySizeMB")]
    pub memory_size_mb: Option<u64>,
    /// `maxMemoryUsedMB`.
    #[serde(default, rename = "maxMemoryUsedMB")]
    pub max_memory_used_mb: Option<u64>,
    /// `initDurationMs` (cold starts).
    #[serde(default)]
    pub init_duration_ms: Option<f64>,
}

/// `record.tracing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// `X-Amzn-Trace-Id`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `Root=1-...;Parent=...;Sampled=1`.
    #[serde(default)]
    pub value: Option<String>,
}

/// The end of an invocation as the platform saw it (`platform.runtimeDone` or `platform.report`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    /// The request id.
    pub request_id: String,
    /// `success`, `error`, `failure` or `timeout`.
    #[serde(default = "unknown")]
    pub status: String,
    /// e.g. `Runtime.ExitError`, `Sandbox.Timedout`.
    #[serde(default)]
    pub error_type: Option<String>,
    /// The metrics.
    #[serde(default)]
    pub metrics: Metrics,
}

fn unknown() -> String {
    "unknown".to_owned()
}

/// `platform.start`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// The request id.
    pub request_id: String,
    /// The X-Ray context, when active tracing is on.
    #[serde(default)]
    pub tracing: Option<Tracing>,
}

/// `platform.initStart`, `platform.initRuntimeDone`, `platform.initReport`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Init {
    /// `on-demand`, `provisioned-concurrency`, `snap-start`.
    #[serde(default)]
    pub initialization_type: Option<String>,
    /// `success`, `error`, `failure`.
    #[serde(default)]
    pub status: Option<String>,
    /// `durationMs` in `initReport`.
    #[serde(default)]
    pub metrics: Metrics,
}

/// A function log line: text, or a JSON log record (`{"level","message","requestId",...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLog {
    /// The text (or the JSON record's `message`, or the whole record).
    pub message: String,
    /// The JSON record's `requestId`.
    pub request_id: Option<String>,
    /// The JSON record's `level`.
    pub level: Option<String>,
}

impl FunctionLog {
    fn from_record(record: Value) -> Self {
        match record {
            Value::String(message) => Self { message, request_id: None, level: None },
            Value::Object(map) => {
                let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
                let (request_id, level) = (text("requestId"), text("level"));
                let message = text("message").unwrap_or_else(|| Value::Object(map.clone()).to_string());
                Self { message, request_id, level }
            }
            other => Self { message: other.to_string(), request_id: None, level: None },
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `platform.initStart`.
    InitStart(Init),
    /// `platform.initRuntimeDone`.
    InitRuntimeDone(Init),
    /// `platform.initReport`.
    InitReport(Init),
    /// `platform.start`.
    Start(Start),
    /// `platform.runtimeDone`.
    RuntimeDone(Done),
    /// `platform.report`.
    Report(Done),
    /// A `function` log line.
    FunctionLog(FunctionLog),
    /// Anything else (other platform events, extension logs).
    Other(String),
}

/// One event with its time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `time`, in nanoseconds since the Unix epoch (0 when missing or unparsable).
    pub time_unix_nano: u64,
    /// The event.
    pub kind: EventKind,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    time: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    record: Value,
}

/// Parses an RFC 3339 timestamp (`2022-10-12T00:00:15.064Z`, offsets allowed) into
/// nanoseconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut nanos: i64 = 0;
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let digits = text.get(start..pos)?;
        if digits.is_empty() {
            return None;
        }
        let kept = &digits[..digits.len().min(9)];
        nanos = kept.parse::<i64>().ok()? * 10i64.pow(9 - u32::try_from(kept.len()).ok()?);
    }
    let offset_seconds = match text.get(pos..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let hours = num(pos + 1..pos + 3)?;
            let minutes = num(pos + 4..pos + 6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    u64::try_from(seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?).ok()
}

fn typed<T: for<'de> Deserialize<'de>>(kind: &str, record: Value) -> Option<T> {
    serde_json::from_value(record)
        .map_err(|error| crate::log!(Warn, "skipping a malformed {kind} telemetry event: {error}"))
        .ok()
}

/// Parses one event; `None` (with a log line) when it is malformed.
pub fn parse_event(value: Value) -> Option<Event> {
    let raw: RawEvent = serde_json::from_value(value)
        .map_err(|error| crate::log!(Warn, "skipping a malformed telemetry event: {error}"))
        .ok()?;
    let time_unix_nano = raw.time.as_deref().and_then(parse_rfc3339).unwrap_or(0);
    let kind = match raw.kind.as_str() {
        "platform.initStart" => EventKind::InitStart(typed(&raw.kind, raw.record)?),
        "platform.initRuntimeDone" => EventKind::InitRuntimeDone(typed(&raw.kind, raw.record)?),
        "platform.initReport" => EventKind::InitReport(typed(&raw.kind, raw.record)?),
        "platform.start" => EventKind::Start(typed(&raw.kind, raw.record)?),
        "platform.runtimeDone" => EventKind::RuntimeDone(typed(&raw.kind, raw.record)?),
        "platform.report" => EventKind::Report(typed(&raw.kind, raw.record)?),
        "function" => EventKind::FunctionLog(FunctionLog::from_record(raw.record)),
        _ => EventKind::Other(raw.kind),
    };
    Some(Event { time_unix_nano, kind })
}

/// Parses a batch (the body Lambda POSTs to the listener). Malformed events are skipped.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, BatchError> {
    let values: Vec<Value> = serde_json::from_slice(body)?;
    Ok(values.into_iter().filter_map(parse_event).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(parse_rfc3339("2022-10-12T00:00:15.064Z"), Some(1_665_532_815_064_000_000));
        assert_eq!(parse_rfc3339("2022-10-12T02:00:15.064+02:00"), Some(1_665_532_815_064_000_000));
        assert_eq!(parse_rfc3339("2022-10-12T00:00:15.123456789123Z"), Some(1_665_532_815_123_456_789));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2022-13-12T00:00:15Z"), None);
    }

    #[test]
    fn parses_a_batch_and_skips_bad_events() {
        let body = br#"[
          {"time":"2022-10-12T00:00:15.064Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"timeout","errorType":"Sandbox.Timedout","metrics":{"durationMs":3000.0}}},
          {"time":"2022-10-12T00:00:15.064Z","type":"platform.report","record":{"requestId":"r1","status":"timeout","metrics":{"durationMs":3000.0,"billedDurationMs":3000,"memorySizeMB":128,"maxMemoryUsedMB":20,"initDurationMs":12.5}}},
          {"type":"platform.report","record":{"status":"x"}},
          {"type":"function","record":"hello\n"},
          42,
          {"type":"platform.extension","record":{}}
        ]"#;
        let events = parse_batch(body).unwrap();
        assert_eq!(events.len(), 4);
        let EventKind::RuntimeDone(done) = &events[0].kind else { panic!("{events:?}") };
        assert_eq!(done.status, "timeout");
        assert_eq!(done.error_type.as_deref(), Some("Sandbox.Timedout"));
        let EventKind::Report(report) = &events[1].kind else { panic!() };
        assert_eq!(report.metrics.billed_duration_ms, Some(3000));
        assert_eq!(report.metrics.memory_size_mb, Some(128));
        assert_eq!(
            events[2].kind,
            EventKind::FunctionLog(FunctionLog { message: "hello\n".into(), request_id: None, level: None })
        );
    }

    #[test]
    fn not_an_array_is_an_error() {
        assert!(parse_batch(b"{}").is_err());
        assert!(parse_batch(b"").is_err());
    }
}
