//! Synthetic `spans.jsonl` built with the same OTLP proto types (and serde) the local
//! runner's sink uses: the blog-site demo trace plus two more request-processor traces.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};

/// 2025-11-24T16:00:00Z.
pub const T0: u64 = 1_764_000_000_000_000_000;
pub const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const TRACE_B: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
pub const TRACE_C: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

pub enum V {
    S(&'static str),
    O(String),
    B(bool),
    I(i64),
    D(f64),
    A(&'static [&'static str]),
}

fn any(v: &V) -> AnyValue {
    let value = match v {
        V::S(s) => any_value::Value::StringValue((*s).to_owned()),
        V::O(s) => any_value::Value::StringValue(s.clone()),
        V::B(b) => any_value::Value::BoolValue(*b),
        V::I(i) => any_value::Value::IntValue(*i),
        V::D(d) => any_value::Value::DoubleValue(*d),
        V::A(values) => any_value::Value::ArrayValue(ArrayValue {
            values: values
                .iter()
                .map(|s| AnyValue { value: Some(any_value::Value::StringValue((*s).to_owned())) })
                .collect(),
        }),
    };
    AnyValue { value: Some(value) }
}

fn kvs(attrs: &[(&str, V)]) -> Vec<KeyValue> {
    attrs.iter().map(|(k, v)| KeyValue { key: (*k).to_owned(), value: Some(any(v)), ..Default::default() }).collect()
}

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

pub fn ms(ms: f64) -> u64 {
    T0 + (ms * 1_000_000.0).round() as u64
}

/// One span, as a description.
pub struct S {
    pub service: &'static str,
    pub trace: &'static str,
    pub id: &'static str,
    pub parent: Option<&'static str>,
    pub name: String,
    pub kind: span::SpanKind,
    pub start_ms: f64,
    pub end_ms: f64,
    pub attrs: Vec<(&'static str, V)>,
    pub error: Option<&'static str>,
}

/// The span as one line of `spans.jsonl`, exactly as the sink writes it.
pub fn line(s: &S) -> String {
    let memory: i64 = match s.service {
        "kinesis-analysis" => 256,
        _ => 128,
    };
    let resource = Resource {
        attributes: kvs(&[
            ("service.name", V::S(s.service)),
            ("faas.name", V::S(s.service)),
            ("cloud.provider", V::S("aws")),
            ("cloud.region", V::S("us-east-1")),
            ("faas.max_memory", V::I(memory * 1024 * 1024)),
        ]),
        ..Default::default()
    };
    let span = Span {
        trace_id: bytes(s.trace),
        span_id: bytes(s.id),
        parent_span_id: s.parent.map(bytes).unwrap_or_default(),
        name: s.name.clone(),
        kind: s.kind as i32,
        start_time_unix_nano: ms(s.start_ms),
        end_time_unix_nano: ms(s.end_ms),
        attributes: kvs(&s.attrs),
        status: s.error.map(|m| Status { message: m.to_owned(), code: status::StatusCode::Error as i32 }),
        ..Default::default()
    };
    let rs = ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "flowtrace".into(),
                version: "0.1.0".into(),
                ..Default::default()
            }),
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    };
    serde_json::to_string(&rs).unwrap()
}

/// billed GB-s × the x86_64 price + the per-request price, as the extension computes it.
pub fn cost(billed_ms: u64, memory_mb: u64) -> f64 {
    (billed_ms as f64 / 1000.0) * (memory_mb as f64 / 1024.0) * 0.000_016_666_7 + 0.2 / 1_000_000.0
}

#[allow(clippy::too_many_arguments)]
pub fn platform(
    service: &'static str,
    trace: &'static str,
    id: &'static str,
    parent: &'static str,
    invocation: &'static str,
    start_ms: f64,
    duration_ms: f64,
    billed_ms: u64,
    memory_mb: u64,
    used_mb: i64,
    init_ms: Option<f64>,
    status: &'static str,
) -> S {
    let mut attrs = vec![
        ("faas.invocation_id", V::S(invocation)),
        ("flowtrace.platform.status", V::S(status)),
        ("flowtrace.platform.architecture", V::S("x86_64")),
        ("flowtrace.platform.duration_ms", V::D(duration_ms)),
        ("flowtrace.platform.billed_duration_ms", V::I(billed_ms as i64)),
        ("flowtrace.platform.memory_size_mb", V::I(memory_mb as i64)),
        ("flowtrace.platform.max_memory_used_mb", V::I(used_mb)),
    ];
    if let Some(init) = init_ms {
        attrs.push(("flowtrace.platform.init_duration_ms", V::D(init)));
    }
    attrs.push(("flowtrace.platform.cost_usd", V::D(cost(billed_ms, memory_mb))));
    let error = match status {
        "success" => None,
        "timeout" => {
            attrs.push(("flowtrace.platform.error_type", V::S("Sandbox.Timedout")));
            Some("timeout: Sandbox.Timedout")
        }
        _ => Some("error"),
    };
    S {
        service,
        trace,
        id,
        parent: Some(parent),
        name: "lambda.platform".into(),
        kind: span::SpanKind::Internal,
        start_ms,
        end_ms: start_ms + duration_ms,
        attrs,
        error,
    }
}

pub const TIMEOUT_MESSAGE: &str = "timeout: the invocation was about to exceed its deadline, waiting on slow_analysis";

/// The blog-site trace (A), a warm request-processor invocation whose auth call failed (B),
/// and a plain warm one (C).
pub fn blog_spans(slow_name: &'static str) -> Vec<S> {
    use span::SpanKind::{Client, Consumer, Internal, Producer, Server};
    let rp = "request-processor";
    let pa = "post-analysis";
    let ka = "kinesis-analysis";
    let du = "db-update";
    vec![
        // request-processor: cold start, API Gateway trigger.
        S {
            service: rp,
            trace: TRACE_A,
            id: "a000000000000001",
            parent: None,
            name: "POST /new_post".into(),
            kind: Server,
            start_ms: 180.0,
            end_ms: 300.0,
            attrs: vec![
                ("faas.trigger", V::S("http")),
                ("flowtrace.trigger.source", V::S("apigw.http")),
                ("http.request.method", V::S("POST")),
                ("http.route", V::S("/new_post")),
                ("http.response.status_code", V::I(200)),
                ("faas.invocation_id", V::S("rp-1")),
                ("faas.coldstart", V::B(true)),
                ("cloud.resource_id", V::S("arn:aws:lambda:us-east-1:123456789012:function:request-processor")),
            ],
            error: None,
        },
        S {
            service: rp,
            trace: TRACE_A,
            id: "a000000000000002",
            parent: Some("a000000000000001"),
            name: "lambda.init".into(),
            kind: Internal,
            start_ms: 0.0,
            end_ms: 180.0,
            attrs: vec![
                ("faas.coldstart", V::B(true)),
                ("flowtrace.platform.init_duration_ms", V::D(180.0)),
                ("faas.invocation_id", V::S("rp-1")),
            ],
            error: None,
        },
        S {
            service: rp,
            trace: TRACE_A,
            id: "a000000000000003",
            parent: Some("a000000000000001"),
            name: "POST /auth".into(),
            kind: Client,
            start_ms: 185.0,
            end_ms: 215.0,
            attrs: vec![
                ("http.request.method", V::S("POST")),
                ("server.address", V::S("127.0.0.1")),
                ("server.port", V::I(9001)),
                ("url.full", V::S("http://127.0.0.1:9001/auth")),
                ("http.response.status_code", V::I(200)),
            ],
            error: None,
        },
        S {
            service: rp,
            trace: TRACE_A,
            id: "a000000000000004",
            parent: Some("a000000000000001"),
            name: "SNS.Publish".into(),
            kind: Producer,
            start_ms: 220.0,
            end_ms: 260.0,
            attrs: vec![
                ("rpc.system", V::S("aws-api")),
                ("rpc.service", V::S("SNS")),
                ("rpc.method", V::S("Publish")),
                ("messaging.system", V::S("aws.sns")),
                ("messaging.destination.name", V::S("Posts-Notifications")),
                ("aws.sns.topic.arn", V::S("arn:aws:sns:us-east-1:123456789012:Posts-Notifications")),
                ("messaging.message.id", V::S("m-1")),
            ],
            error: None,
        },
        platform(
            rp,
            TRACE_A,
            "a000000000000005",
            "a000000000000001",
            "rp-1",
            180.0,
            121.5,
            122,
            128,
            41,
            Some(180.0),
            "success",
        ),
        // post-analysis: SNS trigger; times out waiting on the slow call.
        S {
            service: pa,
            trace: TRACE_A,
            id: "a000000000000006",
            parent: Some("a000000000000004"),
            name: "process Posts-Notifications".into(),
            kind: Consumer,
            start_ms: 270.0,
            end_ms: 1220.0,
            attrs: vec![
                ("faas.trigger", V::S("pubsub")),
                ("flowtrace.trigger.source", V::S("sns")),
                ("messaging.system", V::S("aws.sns")),
                ("messaging.destination.name", V::S("Posts-Notifications")),
                ("messaging.message.id", V::S("m-1")),
                ("faas.invocation_id", V::S("pa-1")),
                ("faas.coldstart", V::B(false)),
                ("flowtrace.cut_off", V::S("timeout")),
            ],
            error: Some(TIMEOUT_MESSAGE),
        },
        S {
            service: pa,
            trace: TRACE_A,
            id: "a000000000000007",
            parent: Some("a000000000000006"),
            name: "POST /sms".into(),
            kind: Client,
            start_ms: 275.0,
            end_ms: 300.0,
            attrs: vec![
                ("http.request.method", V::S("POST")),
                ("server.address", V::S("127.0.0.1")),
                ("server.port", V::I(9002)),
                ("url.full", V::S("http://127.0.0.1:9002/sms?to=%2B1555")),
                ("http.response.status_code", V::I(202)),
            ],
            error: None,
        },
        S {
            service: pa,
            trace: TRACE_A,
            id: "a000000000000008",
            parent: Some("a000000000000006"),
            name: "Kinesis.PutRecord".into(),
            kind: Producer,
            start_ms: 305.0,
            end_ms: 330.0,
            attrs: vec![
                ("rpc.system", V::S("aws-api")),
                ("rpc.service", V::S("Kinesis")),
                ("rpc.method", V::S("PutRecord")),
                ("aws.kinesis.stream_name", V::S("Post-Analysis-Stream")),
                ("messaging.destination.name", V::S("Post-Analysis-Stream")),
            ],
            error: None,
        },
        S {
            service: pa,
            trace: TRACE_A,
            id: "a000000000000009",
            parent: Some("a000000000000006"),
            name: slow_name.into(),
            kind: Internal,
            start_ms: 335.0,
            end_ms: 1220.0,
            attrs: vec![("flowtrace.cut_off", V::S("timeout"))],
            error: Some("cut off by flowtrace: timeout"),
        },
        platform(
            pa,
            TRACE_A,
            "a00000000000000a",
            "a000000000000006",
            "pa-1",
            270.0,
            1000.0,
            1000,
            128,
            60,
            None,
            "timeout",
        ),
        // The extension's synthesized span for the same invocation (same span id).
        S {
            service: pa,
            trace: TRACE_A,
            id: "a000000000000006",
            parent: Some("a000000000000004"),
            name: "process Posts-Notifications".into(),
            kind: Server,
            start_ms: 270.0,
            end_ms: 1270.0,
            attrs: vec![
                ("faas.invocation_id", V::S("pa-1")),
                ("flowtrace.synthesized", V::B(true)),
                ("flowtrace.platform.status", V::S("timeout")),
                ("flowtrace.platform.reason", V::S("timeout: Sandbox.Timedout")),
            ],
            error: Some("timeout: Sandbox.Timedout"),
        },
        // kinesis-analysis: Kinesis trigger.
        S {
            service: ka,
            trace: TRACE_A,
            id: "a00000000000000b",
            parent: Some("a000000000000008"),
            name: "process Post-Analysis-Stream".into(),
            kind: Consumer,
            start_ms: 400.0,
            end_ms: 480.0,
            attrs: vec![
                ("faas.trigger", V::S("datasource")),
                ("flowtrace.trigger.source", V::S("kinesis")),
                ("messaging.destination.name", V::S("Post-Analysis-Stream")),
                ("faas.invocation_id", V::S("ka-1")),
                ("faas.coldstart", V::B(false)),
            ],
            error: None,
        },
        S {
            service: ka,
            trace: TRACE_A,
            id: "a00000000000000c",
            parent: Some("a00000000000000b"),
            name: "DynamoDB.PutItem".into(),
            kind: Client,
            start_ms: 410.0,
            end_ms: 440.0,
            attrs: vec![
                ("rpc.system", V::S("aws-api")),
                ("rpc.service", V::S("DynamoDB")),
                ("rpc.method", V::S("PutItem")),
                ("db.system.name", V::S("aws.dynamodb")),
                ("db.collection.name", V::S("BlogPostsDB")),
                ("aws.dynamodb.table_names", V::A(&["BlogPostsDB"])),
            ],
            error: None,
        },
        platform(
            ka,
            TRACE_A,
            "a00000000000000d",
            "a00000000000000b",
            "ka-1",
            400.0,
            81.2,
            82,
            256,
            70,
            None,
            "success",
        ),
        // db-update: DynamoDB stream trigger.
        S {
            service: du,
            trace: TRACE_A,
            id: "a00000000000000e",
            parent: Some("a00000000000000c"),
            name: "process BlogPostsDB".into(),
            kind: Consumer,
            start_ms: 500.0,
            end_ms: 560.0,
            attrs: vec![
                ("faas.trigger", V::S("datasource")),
                ("flowtrace.trigger.source", V::S("dynamodb")),
                ("faas.invocation_id", V::S("db-1")),
                ("faas.coldstart", V::B(false)),
            ],
            error: None,
        },
        S {
            service: du,
            trace: TRACE_A,
            id: "a00000000000000f",
            parent: Some("a00000000000000e"),
            name: "DynamoDB.UpdateItem".into(),
            kind: Client,
            start_ms: 510.0,
            end_ms: 530.0,
            attrs: vec![
                ("rpc.system", V::S("aws-api")),
                ("rpc.service", V::S("DynamoDB")),
                ("rpc.method", V::S("UpdateItem")),
                ("db.collection.name", V::S("BlogPostsDB")),
            ],
            error: None,
        },
        platform(
            du,
            TRACE_A,
            "a000000000000010",
            "a00000000000000e",
            "db-1",
            500.0,
            60.4,
            61,
            128,
            38,
            None,
            "success",
        ),
        // Trace B: a warm request-processor invocation whose auth call failed.
        S {
            service: rp,
            trace: TRACE_B,
            id: "b000000000000001",
            parent: None,
            name: "POST /new_post".into(),
            kind: Server,
            start_ms: 5000.0,
            end_ms: 5060.0,
            attrs: vec![
                ("faas.trigger", V::S("http")),
                ("flowtrace.trigger.source", V::S("apigw.http")),
                ("faas.invocation_id", V::S("rp-2")),
                ("faas.coldstart", V::B(false)),
                ("http.response.status_code", V::I(502)),
            ],
            error: Some("HTTP 502"),
        },
        S {
            service: rp,
            trace: TRACE_B,
            id: "b000000000000002",
            parent: Some("b000000000000001"),
            name: "POST /auth".into(),
            kind: Client,
            start_ms: 5005.0,
            end_ms: 5050.0,
            attrs: vec![
                ("server.address", V::S("127.0.0.1")),
                ("server.port", V::I(9001)),
                ("url.full", V::S("http://127.0.0.1:9001/auth")),
                ("http.response.status_code", V::I(503)),
            ],
            error: Some("HTTP 503 Service Unavailable"),
        },
        platform(
            rp,
            TRACE_B,
            "b000000000000003",
            "b000000000000001",
            "rp-2",
            5000.0,
            60.2,
            61,
            128,
            45,
            None,
            "success",
        ),
        // Trace C: a plain warm invocation.
        S {
            service: rp,
            trace: TRACE_C,
            id: "c000000000000001",
            parent: None,
            name: "POST /new_post".into(),
            kind: Server,
            start_ms: 9000.0,
            end_ms: 9090.0,
            attrs: vec![
                ("faas.trigger", V::S("http")),
                ("faas.invocation_id", V::S("rp-3")),
                ("faas.coldstart", V::B(false)),
            ],
            error: None,
        },
        platform(
            rp,
            TRACE_C,
            "c000000000000002",
            "c000000000000001",
            "rp-3",
            9000.0,
            90.3,
            91,
            128,
            43,
            None,
            "success",
        ),
    ]
}

/// The whole file.
pub fn blog_jsonl() -> String {
    blog_jsonl_with("slow_analysis")
}

/// The whole file, with the hanging span named `slow_name`.
pub fn blog_jsonl_with(slow_name: &'static str) -> String {
    let mut out = String::new();
    for s in blog_spans(slow_name) {
        out.push_str(&line(&s));
        out.push('\n');
    }
    out
}
