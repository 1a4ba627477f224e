//! The spans the extension makes itself, encoded as an OTLP `ExportTraceServiceRequest`.

use crate::proto::Writer;

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
}

/// A key and a value.
pub type Attr = (&'static str, AttrValue);

/// OTLP span kinds used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SPAN_KIND_INTERNAL`.
    Internal = 1,
    /// `SPAN_KIND_SERVER`.
    Server = 2,
}

/// A span event.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// Its name.
    pub name: &'static str,
    /// When.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: Vec<Attr>,
}

/// A span to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct OutSpan {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Parent span id.
    pub parent_span_id: Option<[u8; 8]>,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Start.
    pub start_time_unix_nano: u64,
    /// End.
    pub end_time_unix_nano: u64,
    /// Attributes.
    pub attributes: Vec<Attr>,
    /// `Some(message)` for status Error; `None` for Unset.
    pub error: Option<String>,
    /// Events.
    pub events: Vec<SpanEvent>,
}

fn any_value(w: &mut Writer, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => w.string(1, s),
        AttrValue::Bool(b) => w.uint(2, u64::from(*b)),
        // int64 is encoded as its two's complement bits.
        #[allow(clippy::cast_sign_loss)]
        AttrValue::Int(i) => w.uint(3, *i as u64),
        AttrValue::Double(d) => w.double(4, *d),
    }
}

/// Writes an OTLP `KeyValue` as field `field` of the message `w` is writing.
pub fn write_key_value(w: &mut Writer, field: u32, key: &str, value: &AttrValue) {
    key_value(w, field, key, value);
}

fn key_value(w: &mut Writer, field: u32, key: &str, value: &AttrValue) {
    w.message(field, |kv| {
        kv.string(1, key);
        kv.message(2, |v| any_value(v, value));
    });
}

/// Encodes `spans` under one resource and the `flowtrace-extension` scope.
pub fn encode(resource: &[(String, String)], spans: &[OutSpan]) -> Vec<u8> {
    let mut w = Writer::new();
    w.message(1, |rs| {
        rs.message(1, |res| {
            for (k, v) in resource {
                key_value(res, 1, k, &AttrValue::Str(v.clone()));
            }
        });
        rs.message(2, |ss| {
            ss.message(1, |scope| {
                scope.string(1, "flowtrace-extension");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            for span in spans {
                ss.message(2, |s| {
                    s.bytes(1, &span.trace_id);
                    s.bytes(2, &span.span_id);
                    if let Some(parent) = &span.parent_span_id {
                        s.bytes(4, parent);
                    }
                    s.string(5, &span.name);
                    s.uint(6, span.kind as u64);
                    s.fixed64(7, span.start_time_unix_nano);
                    s.fixed64(8, span.end_time_unix_nano.max(span.start_time_unix_nano));
                    for (k, v) in &span.attributes {
                        key_value(s, 9, k, v);
                    }
                    for event in &span.events {
                        s.message(11, |e| {
                            e.fixed64(1, event.time_unix_nano);
                            e.string(2, event.name);
                            for (k, v) in &event.attributes {
                                key_value(e, 3, k, v);
                            }
                        });
                    }
                    if let Some(message) = &span.error {
                        s.message(15, |status| {
                            status.string(2, message);
                            status.uint(3, 2);
                        });
                    }
                });
            }
        });
    });
    w.into_bytes()
}

/// Parses lowercase or uppercase hex of exactly `N` bytes.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A random non-zero id.
pub fn random_id<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    loop {
        for byte in &mut out {
            *byte = fastrand::u8(..);
        }
        if out.iter().any(|b| *b != 0) {
            return out;
        }
    }
}

/// The trace id and parent span id in an X-Ray header
/// (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`).
pub fn parse_xray(header: &str) -> Option<([u8; 16], Option<[u8; 8]>)> {
    let mut trace = None;
    let mut parent = None;
    for part in header.split(';') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Root" => {
                let mut pieces = v.trim().split('-');
                let (Some("1"), Some(time), Some(rest), None) =
                    (pieces.next(), pieces.next(), pieces.next(), pieces.next())
                else {
                    return None;
                };
                trace = parse_hex::<16>(&format!("{time}{rest}"));
            }
            "Parent" => parent = parse_hex::<8>(v.trim()),
            _ => {}
        }
    }
    trace.map(|t| (t, parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_xray() {
        assert_eq!(parse_hex::<2>("0aFF"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0aF"), None);
        assert_eq!(parse_hex::<2>("zzzz"), None);
        let (trace, parent) =
            parse_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1").unwrap();
        assert_eq!(trace[0], 0x57);
        assert_eq!(parent.unwrap()[0], 0x53);
        assert!(parse_xray("Root=2-x").is_none());
    }

    #[test]
    fn encoded_spans_scan_back() {
        let span = OutSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            name: "x".into(),
            kind: Kind::Internal,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![("a", AttrValue::Int(-1)), ("b", AttrValue::Double(0.5))],
            error: Some("boom".into()),
            events: vec![SpanEvent { name: "e", time_unix_nano: 1, attributes: vec![] }],
        };
        let body = encode(&[("service.name".into(), "s".into())], &[span]);
        let mut ids = Vec::new();
        crate::proto::scan_trace_request(&body, |s| ids.push(s.span_id.to_vec())).unwrap();
        assert_eq!(ids, vec![vec![2; 8]]);
    }
}

/// A function log line to export as an OTLP log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutLog {
    /// When the platform saw it.
    pub time_unix_nano: u64,
    /// The text.
    pub message: String,
    /// The level the function gave it (JSON logs), e.g. `INFO`.
    pub level: Option<String>,
    /// The invocation it belongs to.
    pub request_id: Option<String>,
    /// The trace and span (the invocation span) it correlates with.
    pub trace: Option<([u8; 16], Option<[u8; 8]>)>,
}

/// The OTLP severity number for a level name.
pub fn severity_number(level: &str) -> u64 {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" => 17,
        "FATAL" | "CRITICAL" => 21,
        _ => 0,
    }
}

/// Encodes log records as an `ExportLogsServiceRequest`.
pub fn encode_logs(resource: &[(String, String)], logs: &[OutLog]) -> Vec<u8> {
    let mut w = Writer::new();
    w.message(1, |rl| {
        rl.message(1, |res| {
            for (k, v) in resource {
                key_value(res, 1, k, &AttrValue::Str(v.clone()));
            }
        });
        rl.message(2, |sl| {
            sl.message(1, |scope| {
                scope.string(1, "flowtrace-extension");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            for log in logs {
                sl.message(2, |r| {
                    r.fixed64(1, log.time_unix_nano);
                    if let Some(level) = &log.level {
                        r.uint(2, severity_number(level));
                        r.string(3, level);
                    }
                    r.message(5, |body| body.string(1, log.message.trim_end_matches(['\n', '\r'])));
                    if let Some(id) = &log.request_id {
                        key_value(r, 6, "faas.invocation_id", &AttrValue::Str(id.clone()));
                    }
                    if let Some((trace_id, span_id)) = &log.trace {
                        r.bytes(9, trace_id);
                        if let Some(span_id) = span_id {
                            r.bytes(10, span_id);
                        }
                    }
                    r.fixed64(11, log.time_unix_nano);
                });
            }
        });
    });
    w.into_bytes()
}
