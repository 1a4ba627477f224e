//! Spans as the report sees them, and the loader for the local runner's `spans.jsonl`.

use std::path::{Path, PathBuf};

use flowtrace_contract::{INIT_SPAN_NAME, PLATFORM_SPAN_NAME, attr};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, span, status};
use thiserror::Error;

/// `faas.invocation_id`.
pub const FAAS_INVOCATION_ID: &str = "faas.invocation_id";
/// `faas.coldstart`.
pub const FAAS_COLDSTART: &str = "faas.coldstart";
/// `faas.trigger`.
pub const FAAS_TRIGGER: &str = "faas.trigger";
/// `rpc.system`.
pub const RPC_SYSTEM: &str = "rpc.system";
/// `rpc.service`.
pub const RPC_SERVICE: &str = "rpc.service";
/// `rpc.method`.
pub const RPC_METHOD: &str = "rpc.method";
/// `server.address`.
pub const SERVER_ADDRESS: &str = "server.address";
/// `server.port`.
pub const SERVER_PORT: &str = "server.port";
/// `url.full`.
pub const URL_FULL: &str = "url.full";
/// `messaging.destination.name`.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// `aws.dynamodb.table_names`.
pub const AWS_DYNAMODB_TABLE_NAMES: &str = "aws.dynamodb.table_names";
/// `db.collection.name`.
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
/// `aws.kinesis.stream_name`.
pub const AWS_KINESIS_STREAM_NAME: &str = "aws.kinesis.stream_name";
/// `service.name` (resource).
pub const SERVICE_NAME: &str = "service.name";
/// `faas.name` (resource).
pub const FAAS_NAME: &str = "faas.name";

/// The service name of spans whose resource names none.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Why a span file could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

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
    /// An array.
    Array(Vec<AttrValue>),
    /// Bytes, as lowercase hex.
    Bytes(String),
    /// A key-value list.
    Map(Vec<(String, AttrValue)>),
    /// No value.
    Empty,
}

impl AttrValue {
    fn from_any(value: Option<&AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Self::Str(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Self::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Self::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Self::Double(*d),
            Some(any_value::Value::ArrayValue(a)) => {
                Self::Array(a.values.iter().map(|v| Self::from_any(Some(v))).collect())
            }
            Some(any_value::Value::KvlistValue(list)) => {
                Self::Map(list.values.iter().map(|kv| (kv.key.clone(), Self::from_any(kv.value.as_ref()))).collect())
            }
            Some(any_value::Value::BytesValue(b)) => Self::Bytes(hex(b)),
            Some(any_value::Value::StringValueStrindex(_)) | None => Self::Empty,
        }
    }

    /// The value as text, as a report shows it.
    pub fn to_text(&self) -> String {
        match self {
            Self::Str(s) | Self::Bytes(s) => s.clone(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Double(d) => d.to_string(),
            Self::Array(values) => values.iter().map(Self::to_text).collect::<Vec<_>>().join(", "),
            Self::Map(values) => {
                values.iter().map(|(k, v)| format!("{k}={}", v.to_text())).collect::<Vec<_>>().join(", ")
            }
            Self::Empty => String::new(),
        }
    }
}

/// Attributes with typed lookups. The first value of a repeated key wins.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes(pub Vec<(String, AttrValue)>);

impl Attributes {
    fn from_proto(attributes: &[KeyValue]) -> Self {
        Self(attributes.iter().map(|kv| (kv.key.clone(), AttrValue::from_any(kv.value.as_ref()))).collect())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string value (a non-empty string; the first element of a string array).
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            AttrValue::Str(s) => Some(s.as_str()),
            AttrValue::Array(values) => match values.first()? {
                AttrValue::Str(s) => Some(s.as_str()),
                _ => None,
            },
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }

    /// An integer value (also from a whole double or a numeric string).
    pub fn i64(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            AttrValue::Int(i) => Some(*i),
            // Whole, in range: checked just above.
            #[allow(clippy::cast_possible_truncation)]
            AttrValue::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Some(*d as i64),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A float value (also from an integer or a numeric string).
    pub fn f64(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            // Report figures are far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Double(d) => Some(*d),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|v: &f64| v.is_finite())
    }

    /// A boolean value (also from the strings `true` and `false`).
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            AttrValue::Bool(b) => Some(*b),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// A span's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Unspecified.
    Unspecified,
    /// Internal.
    Internal,
    /// Server.
    Server,
    /// Client.
    Client,
    /// Producer.
    Producer,
    /// Consumer.
    Consumer,
}

impl SpanKind {
    fn from_proto(kind: i32) -> Self {
        match span::SpanKind::try_from(kind) {
            Ok(span::SpanKind::Internal) => Self::Internal,
            Ok(span::SpanKind::Server) => Self::Server,
            Ok(span::SpanKind::Client) => Self::Client,
            Ok(span::SpanKind::Producer) => Self::Producer,
            Ok(span::SpanKind::Consumer) => Self::Consumer,
            Ok(span::SpanKind::Unspecified) | Err(_) => Self::Unspecified,
        }
    }

    /// The kind in lowercase, as the HTML report shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// A span's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// Unset.
    Unset,
    /// Ok.
    Ok,
    /// Error.
    Error,
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The code.
    pub code: StatusCode,
    /// The message (empty when there is none).
    pub message: String,
}

/// A span link.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    /// The linked trace id, lowercase hex.
    pub trace_id: String,
    /// The linked span id, lowercase hex.
    pub span_id: String,
    /// The link's attributes.
    pub attributes: Attributes,
}

/// One span of the file, with its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// `service.name` of the resource (else `faas.name`, else [`UNKNOWN_SERVICE`]).
    pub service: String,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id, 16 lowercase hex digits; `None` for a root.
    pub parent_id: Option<String>,
    /// The span's name.
    pub name: String,
    /// The span's kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, nanoseconds since the Unix epoch (never before the start).
    pub end_unix_nano: u64,
    /// The status.
    pub status: Status,
    /// The span's attributes.
    pub attributes: Attributes,
    /// The span's links.
    pub links: Vec<SpanLink>,
    /// The resource's attributes.
    pub resource: Attributes,
}

impl SpanRecord {
    /// The duration in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// Whether the status is Error.
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }

    /// The extension's platform span (`lambda.platform`).
    pub fn is_platform(&self) -> bool {
        self.name == PLATFORM_SPAN_NAME && self.attributes.get(FAAS_INVOCATION_ID).is_some()
    }

    /// The extension's init span (`lambda.init`).
    pub fn is_init(&self) -> bool {
        self.name == INIT_SPAN_NAME && self.attributes.get(FAAS_INVOCATION_ID).is_some()
    }

    /// An invocation span: the wrapper's, or one the extension synthesized.
    pub fn is_invocation(&self) -> bool {
        self.attributes.str(FAAS_INVOCATION_ID).is_some() && !self.is_platform() && !self.is_init()
    }

    /// Whether the extension synthesized this span (`flowtrace.synthesized = true`).
    pub fn is_synthesized(&self) -> bool {
        self.attributes.bool(attr::SYNTHESIZED) == Some(true)
    }

    /// `faas.invocation_id`.
    pub fn invocation_id(&self) -> Option<&str> {
        self.attributes.str(FAAS_INVOCATION_ID)
    }

    /// The AWS service of an AWS SDK client span (`rpc.system = aws-api`): `rpc.service`.
    pub fn aws_service(&self) -> Option<&str> {
        if self.attributes.str(RPC_SYSTEM) == Some("aws-api") {
            self.attributes.str(RPC_SERVICE).or_else(|| self.name.split_once('.').map(|(service, _)| service))
        } else {
            None
        }
    }

    /// `host:port` of an outbound HTTP client span (not an AWS SDK call).
    pub fn http_target(&self) -> Option<String> {
        if self.kind != SpanKind::Client || self.aws_service().is_some() || self.attributes.get(RPC_SYSTEM).is_some() {
            return None;
        }
        let url = self.attributes.str(URL_FULL).and_then(split_url);
        let host = self.attributes.str(SERVER_ADDRESS).map(str::to_owned).or_else(|| url.as_ref().map(|u| u.0.clone()));
        let host = host?;
        let port = self.attributes.i64(SERVER_PORT).map(|p| p.to_string()).or_else(|| url.and_then(|u| u.1));
        Some(match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    /// The path of an HTTP client span's URL (from `url.full`, else the span name
    /// `METHOD /path`).
    pub fn http_path(&self) -> Option<String> {
        let from_url = self.attributes.str(URL_FULL).and_then(|url| {
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            rest.find('/').map(|at| rest[at..].split(['?', '#']).next().unwrap_or("/").to_owned())
        });
        from_url
            .or_else(|| self.name.split_once(' ').map(|(_, path)| path.to_owned()).filter(|path| path.starts_with('/')))
    }
}

/// `scheme://host[:port]/...` → (host, port).
fn split_url(url: &str) -> Option<(String, Option<String>)> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if authority.is_empty() {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return Some((host.to_owned(), after.strip_prefix(':').map(str::to_owned)));
    }
    Some(match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() => {
            (host.to_owned(), Some(port.to_owned()))
        }
        _ => (authority.to_owned(), None),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn record(span: &Span, service: &str, resource: &Attributes) -> Option<SpanRecord> {
    if span.trace_id.len() != 16 || span.span_id.len() != 8 {
        return None;
    }
    let parent_id = (span.parent_span_id.len() == 8 && span.parent_span_id.iter().any(|b| *b != 0))
        .then(|| hex(&span.parent_span_id));
    let status = match &span.status {
        Some(s) => Status {
            code: match status::StatusCode::try_from(s.code) {
                Ok(status::StatusCode::Error) => StatusCode::Error,
                Ok(status::StatusCode::Ok) => StatusCode::Ok,
                _ => StatusCode::Unset,
            },
            message: s.message.clone(),
        },
        None => Status { code: StatusCode::Unset, message: String::new() },
    };
    Some(SpanRecord {
        service: service.to_owned(),
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_id,
        name: span.name.clone(),
        kind: SpanKind::from_proto(span.kind),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano.max(span.start_time_unix_nano),
        status,
        attributes: Attributes::from_proto(&span.attributes),
        links: span
            .links
            .iter()
            .map(|link| SpanLink {
                trace_id: hex(&link.trace_id),
                span_id: hex(&link.span_id),
                attributes: Attributes::from_proto(&link.attributes),
            })
            .collect(),
        resource: resource.clone(),
    })
}

/// Parses `spans.jsonl`: one OTLP-JSON `ResourceSpans` per line (every span of every scope
/// is taken). Blank lines are ignored. Returns the spans and how many lines or spans were
/// skipped: lines that are not a `ResourceSpans`, and spans without a valid trace or span id.
pub fn parse_lines(text: &str) -> (Vec<SpanRecord>, usize) {
    let mut spans = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(resource_spans) = serde_json::from_str::<ResourceSpans>(line) else {
            skipped += 1;
            continue;
        };
        let resource =
            resource_spans.resource.as_ref().map(|r| Attributes::from_proto(&r.attributes)).unwrap_or_default();
        let service = resource.str(SERVICE_NAME).or_else(|| resource.str(FAAS_NAME)).unwrap_or(UNKNOWN_SERVICE);
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                match record(span, service, &resource) {
                    Some(record) => spans.push(record),
                    None => skipped += 1,
                }
            }
        }
    }
    (spans, skipped)
}

/// Reads and parses a `spans.jsonl` file, dropping what cannot be used (see
/// [`load_counted`] for how much that was).
pub fn load(path: impl AsRef<Path>) -> Result<Vec<SpanRecord>, LoadError> {
    load_counted(path).map(|(spans, _)| spans)
}

/// Reads and parses a `spans.jsonl` file: the spans, in file order, and how many lines or
/// spans were skipped (see [`parse_lines`]). Bytes that are not UTF-8 only spoil their line.
pub fn load_counted(path: impl AsRef<Path>) -> Result<(Vec<SpanRecord>, usize), LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    Ok(parse_lines(&String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_host_and_port() {
        let s = |url| split_url(url).map(|(h, p)| (h, p.unwrap_or_default()));
        assert_eq!(s("http://127.0.0.1:9001/auth?x=1"), Some(("127.0.0.1".into(), "9001".into())));
        assert_eq!(s("https://user:pw@api.example.com/x"), Some(("api.example.com".into(), String::new())));
        assert_eq!(s("http://[::1]:8080/"), Some(("::1".into(), "8080".into())));
        assert_eq!(s("http:///nohost"), None);
        assert_eq!(s("not a url"), None);
    }
}
