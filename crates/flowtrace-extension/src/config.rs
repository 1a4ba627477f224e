//! Configuration from the environment. A bad value gives one log line and the default.
//!
//! | variable | default | effect |
//! | --- | --- | --- |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | none (export off, logged) | base URL; `/v1/traces`, `/v1/metrics`, `/v1/logs` appended |
//! | `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` | from the above | full URL for one signal |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `..._{SIGNAL}_HEADERS` | none | `k=v,k2=v2`, values percent-decoded |
//! | `OTEL_EXPORTER_OTLP_COMPRESSION`, `..._{SIGNAL}_COMPRESSION` | `none` | `gzip` or `none` |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT` | `10000` | per export attempt, ms |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | anything else is logged; payloads pass through in the encoding they came in |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | function name | resource of the spans, logs and metrics the extension makes |
//! | `FLOWTRACE_OTLP_PORT` | `4318` | loopback receiver port (127.0.0.1 only) |
//! | `FLOWTRACE_TELEMETRY_HOST` | `sandbox.localdomain` | Telemetry listener host (bound, and sent in the subscription) |
//! | `FLOWTRACE_TELEMETRY_PORT` | `0` (any free port) | Telemetry listener port |
//! | `FLOWTRACE_BUFFER_BYTES` | `4194304` | buffer bound; the oldest payloads are dropped and counted |
//! | `FLOWTRACE_MAX_REQUEST_BYTES` | `4194304` | larger OTLP requests get 413 |
//! | `FLOWTRACE_FLUSH_BUDGET_MS` | `500` | how long the end of an invocation waits for its flush |
//! | `FLOWTRACE_SPAN_WAIT_MS` | `100` | after `runtimeDone`, wait this long for the wrapper's span |
//! | `FLOWTRACE_TIMEOUT_GRACE_MS` | `1000` | no `runtimeDone` this long after the deadline = timed out |
//! | `FLOWTRACE_FREQUENT_BELOW_MS` | `2000` | mean gap between invocations under which flushing moves to the background |
//! | `FLOWTRACE_BACKGROUND_FLUSH_MS` | `1000` | background flush interval |
//! | `FLOWTRACE_EXPORT_RETRIES` | `3` (max 10) | retries per export request (backoff 100 ms × 2ⁿ, ≤ 2 s, jitter) |
//! | `FLOWTRACE_ARCHITECTURE` | the binary's | `x86_64` or `arm64`, for prices |
//! | `FLOWTRACE_PRICE_PER_GB_SECOND` | x86_64 `0.0000166667`, arm64 `0.0000133334` | USD |
//! | `FLOWTRACE_PRICE_PER_MILLION_REQUESTS` | `0.20` | USD |
//! | `FLOWTRACE_LOG` | `info` | `error`, `warn`, `info`, `debug` |

use std::time::Duration;

use crate::cost::{Architecture, Pricing};
use crate::flush::FlushPolicy;
use crate::log::Level;

/// Where and how to export one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalTarget {
    /// The full URL (`.../v1/traces`).
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Gzip the body.
    pub gzip: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `AWS_LAMBDA_RUNTIME_API`: `host:port` of the Extensions and Telemetry APIs.
    pub runtime_api: String,
    /// The name to register under: the executable's file name.
    pub extension_name: String,
    /// `FLOWTRACE_LOG`.
    pub log_level: Level,
    /// `FLOWTRACE_OTLP_PORT`: the loopback OTLP/HTTP receiver's port.
    pub otlp_port: u16,
    /// `FLOWTRACE_TELEMETRY_HOST`: the host in the subscription URI (and the address bound).
    pub telemetry_host: String,
    /// `FLOWTRACE_TELEMETRY_PORT`: the Telemetry API listener's port; 0 picks a free one.
    pub telemetry_port: u16,
    /// `FLOWTRACE_BUFFER_BYTES`.
    pub buffer_bytes: usize,
    /// `FLOWTRACE_MAX_REQUEST_BYTES`.
    pub max_request_bytes: usize,
    /// `FLOWTRACE_FLUSH_BUDGET_MS`: how long the end of an invocation waits for a flush.
    pub flush_budget: Duration,
    /// `FLOWTRACE_SPAN_WAIT_MS`: after `platform.runtimeDone`, how long to wait for the
    /// wrapper's invocation span before deciding it will not come.
    pub span_wait: Duration,
    /// `FLOWTRACE_TIMEOUT_GRACE_MS`: with no `platform.runtimeDone` this long after the
    /// deadline, the invocation counts as timed out.
    pub timeout_grace: Duration,
    /// `FLOWTRACE_FREQUENT_BELOW_MS` and `FLOWTRACE_BACKGROUND_FLUSH_MS`.
    pub flush_policy: FlushPolicy,
    /// `FLOWTRACE_EXPORT_RETRIES`: retries after the first attempt.
    pub export_retries: u32,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: per attempt.
    pub export_timeout: Duration,
    /// Traces target; `None` when no endpoint is configured (export is off).
    pub traces: Option<SignalTarget>,
    /// Metrics target.
    pub metrics: Option<SignalTarget>,
    /// Logs target.
    pub logs: Option<SignalTarget>,
    /// `FLOWTRACE_ARCHITECTURE`.
    pub architecture: Architecture,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`: for the estimate of an invocation the platform
    /// never reported on.
    pub memory_size_mb: Option<u64>,
    /// Prices (`FLOWTRACE_PRICE_PER_GB_SECOND`, `FLOWTRACE_PRICE_PER_MILLION_REQUESTS`).
    pub pricing: Pricing,
    /// Resource attributes of the spans the extension makes.
    pub resource: Vec<(String, String)>,
}

/// Reads one setting, logging and falling back on a bad value.
fn parsed<T: std::str::FromStr>(lookup: &impl Fn(&str) -> Option<String>, key: &str, default: T) -> T {
    match lookup(key) {
        None => default,
        Some(raw) if raw.trim().is_empty() => default,
        Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
            crate::log!(Warn, "{key}={raw:?} is not valid; using the default");
            default
        }),
    }
}

fn millis(lookup: &impl Fn(&str) -> Option<String>, key: &str, default_ms: u64) -> Duration {
    Duration::from_millis(parsed(lookup, key, default_ms))
}

fn non_empty(lookup: &impl Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Decodes `%XX` escapes (the OTel header format percent-encodes values).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `k1=v1,k2=v2` (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`).
/// Entries without `=` or with an empty key are skipped with a log line.
pub fn parse_pairs(key: &str, text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .filter_map(|entry| match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Some((percent_decode(k.trim()), percent_decode(v.trim()))),
            _ => {
                crate::log!(Warn, "{key}: skipping {entry:?} (expected key=value)");
                None
            }
        })
        .collect()
}

fn signal_target(
    lookup: &impl Fn(&str) -> Option<String>,
    signal: &str,
    path: &str,
    own_port: u16,
) -> Option<SignalTarget> {
    let upper = signal.to_ascii_uppercase();
    let url = non_empty(lookup, &format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")).or_else(|| {
        non_empty(lookup, "OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}{path}", base.trim_end_matches('/')))
    })?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        crate::log!(Error, "the OTLP {signal} endpoint {url:?} is not an http(s) URL; {signal} will not be exported");
        return None;
    }
    let own = [format!("//127.0.0.1:{own_port}/"), format!("//localhost:{own_port}/")];
    if own.iter().any(|o| url.contains(o.as_str())) {
        crate::log!(
            Error,
            "the OTLP {signal} endpoint {url:?} is this extension's own receiver; not exporting {signal}"
        );
        return None;
    }
    let mut headers =
        lookup("OTEL_EXPORTER_OTLP_HEADERS").map(|h| parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", &h)).unwrap_or_default();
    let signal_headers_key = format!("OTEL_EXPORTER_OTLP_{upper}_HEADERS");
    if let Some(extra) = lookup(&signal_headers_key) {
        headers.extend(parse_pairs(&signal_headers_key, &extra));
    }
    let compression = non_empty(lookup, &format!("OTEL_EXPORTER_OTLP_{upper}_COMPRESSION"))
        .or_else(|| non_empty(lookup, "OTEL_EXPORTER_OTLP_COMPRESSION"));
    let gzip = match compression.as_deref() {
        None | Some("none") => false,
        Some("gzip") => true,
        Some(other) => {
            crate::log!(Warn, "OTLP compression {other:?} is not supported; sending uncompressed");
            false
        }
    };
    Some(SignalTarget { url, headers, gzip })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        let exe_name =
            std::env::current_exe().ok().and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned));
        Self::from_lookup(|key| std::env::var(key).ok(), exe_name)
    }

    /// Reads settings through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, exe_name: Option<String>) -> Self {
        let log_level = match non_empty(&lookup, "FLOWTRACE_LOG") {
            None => Level::Info,
            Some(raw) => Level::parse(&raw).unwrap_or_else(|| {
                crate::log!(Warn, "FLOWTRACE_LOG={raw:?} is not error|warn|info|debug; using info");
                Level::Info
            }),
        };
        crate::log::set_level(log_level);

        if let Some(protocol) = non_empty(&lookup, "OTEL_EXPORTER_OTLP_PROTOCOL")
            && protocol != "http/protobuf"
            && protocol != "http/json"
        {
            crate::log!(
                Warn,
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?} is not supported by the layer; exporting http/protobuf"
            );
        }

        let otlp_port = parsed(&lookup, "FLOWTRACE_OTLP_PORT", flowtrace_contract::EXTENSION_OTLP_PORT);
        let architecture = match non_empty(&lookup, "FLOWTRACE_ARCHITECTURE") {
            None => Architecture::current(),
            Some(raw) => Architecture::parse(&raw).unwrap_or_else(|| {
                crate::log!(Warn, "FLOWTRACE_ARCHITECTURE={raw:?} is not x86_64|arm64; using the build's");
                Architecture::current()
            }),
        };
        let defaults = Pricing::for_architecture(architecture);
        let mut pricing = Pricing {
            per_gb_second: parsed(&lookup, "FLOWTRACE_PRICE_PER_GB_SECOND", defaults.per_gb_second),
            per_million_requests: parsed(
                &lookup,
                "FLOWTRACE_PRICE_PER_MILLION_REQUESTS",
                defaults.per_million_requests,
            ),
        };
        if !(pricing.per_gb_second.is_finite() && pricing.per_gb_second >= 0.0) {
            crate::log!(Warn, "FLOWTRACE_PRICE_PER_GB_SECOND must be a non-negative number; using the default");
            pricing.per_gb_second = defaults.per_gb_second;
        }
        if !(pricing.per_million_requests.is_finite() && pricing.per_million_requests >= 0.0) {
            crate::log!(Warn, "FLOWTRACE_PRICE_PER_MILLION_REQUESTS must be a non-negative number; using the default");
            pricing.per_million_requests = defaults.per_million_requests;
        }

        let traces = signal_target(&lookup, "traces", "/v1/traces", otlp_port);
        if traces.is_none() {
            crate::log!(
                Warn,
                "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: spans are received but not exported"
            );
        }

        let mut resource = Vec::new();
        let function_name = non_empty(&lookup, "AWS_LAMBDA_FUNCTION_NAME");
        let service_name = non_empty(&lookup, "OTEL_SERVICE_NAME").or_else(|| function_name.clone());
        if let Some(name) = service_name {
            resource.push(("service.name".to_owned(), name));
        }
        resource.push(("cloud.provider".to_owned(), "aws".to_owned()));
        resource.push(("cloud.platform".to_owned(), "aws_lambda".to_owned()));
        if let Some(region) = non_empty(&lookup, "AWS_REGION") {
            resource.push(("cloud.region".to_owned(), region));
        }
        if let Some(name) = function_name {
            resource.push(("faas.name".to_owned(), name));
        }
        if let Some(version) = non_empty(&lookup, "AWS_LAMBDA_FUNCTION_VERSION") {
            resource.push(("faas.version".to_owned(), version));
        }
        if let Some(attributes) = lookup("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, v) in parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &attributes) {
                resource.retain(|(existing, _)| *existing != k);
                resource.push((k, v));
            }
        }

        let defaults_policy = FlushPolicy::default();
        let buffer_bytes = parsed(&lookup, "FLOWTRACE_BUFFER_BYTES", 4usize * 1024 * 1024).max(1024);
        Self {
            runtime_api: non_empty(&lookup, "AWS_LAMBDA_RUNTIME_API").unwrap_or_else(|| "127.0.0.1:9001".to_owned()),
            extension_name: exe_name.unwrap_or_else(|| "flowtrace-extension".to_owned()),
            log_level,
            otlp_port,
            telemetry_host: non_empty(&lookup, "FLOWTRACE_TELEMETRY_HOST")
                .unwrap_or_else(|| "sandbox.localdomain".to_owned()),
            telemetry_port: parsed(&lookup, "FLOWTRACE_TELEMETRY_PORT", 0),
            buffer_bytes,
            max_request_bytes: parsed(&lookup, "FLOWTRACE_MAX_REQUEST_BYTES", 4usize * 1024 * 1024).max(1024),
            flush_budget: millis(&lookup, "FLOWTRACE_FLUSH_BUDGET_MS", 500),
            span_wait: millis(&lookup, "FLOWTRACE_SPAN_WAIT_MS", 100),
            timeout_grace: millis(&lookup, "FLOWTRACE_TIMEOUT_GRACE_MS", 1000),
            flush_policy: FlushPolicy {
                frequent_below: millis(&lookup, "FLOWTRACE_FREQUENT_BELOW_MS", 2000),
                background_interval: millis(&lookup, "FLOWTRACE_BACKGROUND_FLUSH_MS", 1000),
                high_watermark: (buffer_bytes / 2).min(defaults_policy.high_watermark),
            },
            export_retries: parsed(&lookup, "FLOWTRACE_EXPORT_RETRIES", 3u32).min(10),
            export_timeout: millis(&lookup, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
            traces,
            metrics: signal_target(&lookup, "metrics", "/v1/metrics", otlp_port),
            logs: signal_target(&lookup, "logs", "/v1/logs", otlp_port),
            architecture,
            memory_size_mb: non_empty(&lookup, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|v| v.trim().parse().ok()),
            pricing,
            resource,
        }
    }

    /// The target for a signal.
    pub fn target(&self, signal: crate::buffer::Signal) -> Option<&SignalTarget> {
        match signal {
            crate::buffer::Signal::Traces => self.traces.as_ref(),
            crate::buffer::Signal::Metrics => self.metrics.as_ref(),
            crate::buffer::Signal::Logs => self.logs.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(move |k| map.get(k).cloned(), None)
    }

    #[test]
    fn endpoints_follow_the_otel_rules() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs/custom"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%3Db, bad ,k2=v2"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        let traces = c.traces.unwrap();
        assert_eq!(traces.url, "https://collector:4318/v1/traces");
        assert_eq!(traces.headers, vec![("x-api-key".into(), "a=b".into()), ("k2".into(), "v2".into())]);
        assert!(traces.gzip);
        assert_eq!(c.logs.unwrap().url, "http://logs/custom");
    }

    #[test]
    fn no_endpoint_means_no_export_and_own_port_is_refused() {
        assert!(config(&[]).traces.is_none());
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).traces.is_none());
        assert!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x")]).traces.is_none());
    }

    #[test]
    fn bad_values_fall_back() {
        let c = config(&[
            ("FLOWTRACE_OTLP_PORT", "ninety"),
            ("FLOWTRACE_BUFFER_BYTES", "-1"),
            ("FLOWTRACE_PRICE_PER_GB_SECOND", "-3"),
            ("FLOWTRACE_ARCHITECTURE", "arm64"),
        ]);
        assert_eq!(c.otlp_port, 4318);
        assert_eq!(c.buffer_bytes, 4 * 1024 * 1024);
        assert_eq!(c.architecture, Architecture::Arm64);
        assert!((c.pricing.per_gb_second - crate::cost::ARM64_PRICE_PER_GB_SECOND).abs() < 1e-15);
    }

    #[test]
    fn resource_from_lambda_env() {
        let c = config(&[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=s,team=t")]);
        assert!(c.resource.contains(&("service.name".into(), "s".into())));
        assert!(c.resource.contains(&("faas.name".into(), "f".into())));
        assert!(c.resource.contains(&("team".into(), "t".into())));
    }
}
