//! Whole-process figures for the flowtrace extension, each beside the probe extension
//! (`tests/bin/ext.rs`, std only, blocking) as the baseline in the same run:
//!
//! - exec → registered and exec → registered + subscribed, against lambda-simulator (the
//!   emulator's own timestamps of the registration and of the subscription, so polling
//!   adds nothing);
//! - idle RSS after start-up;
//! - loopback ingest rate (OTLP/HTTP protobuf, 100 spans a request, one keep-alive
//!   connection) and RSS after it, with an OTLP receiver as the backend.
//!
//! Run with `cargo bench -p flowtrace-tests --bench extension_process` (release build of
//! both binaries). Not a criterion bench: each sample is a fresh process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowtrace_tests::{LambdaEnv, OtlpReceiver, free_port, workspace_bin};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RUNS: usize = 15;

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

fn now_ns() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

struct Startup {
    registered_ms: f64,
    subscribed_ms: f64,
    idle_rss_kb: u64,
}

async fn startup(bin: &std::path::Path, env_vars: &[(&str, &str)]) -> Startup {
    let env = LambdaEnv::start().await.unwrap();
    env.simulator().enable_telemetry_capture().await;
    let t0 = now_ns();
    let child = env.spawn_extension(bin, env_vars).unwrap();
    env.wait_for_extensions(1, Duration::from_secs(10)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let subscribed = loop {
        let events = env.telemetry_events_of("platform.telemetrySubscription").await;
        if let Some(event) = events.first() {
            break event.time.timestamp_nanos_opt().unwrap();
        }
        assert!(Instant::now() < deadline, "no subscription\n{}", child.output());
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let registered = env.simulator().get_registered_extensions().await[0].registered_at.timestamp_nanos_opt().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    #[allow(clippy::cast_precision_loss)]
    Startup {
        registered_ms: (registered - t0) as f64 / 1e6,
        subscribed_ms: (subscribed - t0) as f64 / 1e6,
        idle_rss_kb: rss_kb(child.pid()),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn request(spans: usize) -> Vec<u8> {
    let span = |i: usize| Span {
        trace_id: vec![7; 16],
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        name: format!("span {i}"),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![KeyValue {
            key: "http.request.method".to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("GET".to_owned())) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: (0..spans).map(span).collect(), ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends `count` requests on one keep-alive connection; returns the elapsed time.
async fn ingest(port: u16, body: &[u8], count: usize) -> Duration {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    for _ in 0..count {
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        // Responses have empty bodies: read until the end of the head.
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let flowtrace = workspace_bin("flowtrace-extension", "flowtrace-extension").unwrap();
    let probe = workspace_bin("flowtrace-tests", "probe_extension").unwrap();
    for (label, bin) in [("flowtrace-extension", &flowtrace), ("probe_extension (baseline)", &probe)] {
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        println!("{label}: binary {:.2} MB (as built, not stripped)", size as f64 / 1e6);
    }

    let mut rows = Vec::new();
    for (label, bin) in [("flowtrace-extension", &flowtrace), ("probe_extension (baseline)", &probe)] {
        let mut registered = Vec::new();
        let mut subscribed = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..RUNS {
            let port = free_port().to_string();
            let s = startup(bin, &[("FLOWTRACE_OTLP_PORT", port.as_str()), ("FLOWTRACE_TELEMETRY_HOST", "127.0.0.1")])
                .await;
            registered.push(s.registered_ms);
            subscribed.push(s.subscribed_ms);
            #[allow(clippy::cast_precision_loss)]
            rss.push(s.idle_rss_kb as f64);
        }
        rows.push((label, median(registered), median(subscribed), median(rss)));
    }
    println!("\n{:<28} {:>16} {:>26} {:>14}", "extension", "exec→registered", "exec→registered+subscribed", "idle RSS");
    for (label, registered, subscribed, rss) in rows {
        println!("{label:<28} {registered:>13.2} ms {subscribed:>23.2} ms {:>11.1} MB", rss / 1024.0);
    }

    // Loaded: ingest through the extension to a real receiver.
    let receiver = OtlpReceiver::start().await.unwrap();
    let env = LambdaEnv::start().await.unwrap();
    let otlp_port = free_port();
    let port_text = otlp_port.to_string();
    let endpoint = receiver.endpoint();
    let child = env
        .spawn_extension(
            &flowtrace,
            &[
                ("FLOWTRACE_OTLP_PORT", port_text.as_str()),
                ("FLOWTRACE_TELEMETRY_HOST", "127.0.0.1"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("FLOWTRACE_LOG", "warn"),
            ],
        )
        .unwrap();
    env.wait_for_extensions(1, Duration::from_secs(10)).await.unwrap();
    let body = request(100);
    let _ = ingest(otlp_port, &body, 50).await; // warm-up
    let count = 2000;
    let elapsed = ingest(otlp_port, &body, count).await;
    #[allow(clippy::cast_precision_loss)]
    let spans_per_second = (count * 100) as f64 / elapsed.as_secs_f64();
    println!(
        "\nloopback ingest, 100 spans/request, one keep-alive connection: {count} requests in {elapsed:?} = {:.0} spans/s ({} B/request)",
        spans_per_second,
        body.len()
    );
    println!(
        "RSS after ingest (buffer bound 4 MiB, exporting to a local receiver): {:.1} MB",
        rss_kb(child.pid()) as f64 / 1024.0
    );
}
