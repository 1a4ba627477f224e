//! `flowtrace local` end to end: the repository's `template.yaml` run as a user runs it (the
//! CLI as a process, moto, every blog-site function under a local Lambda environment with
//! the real flowtrace extension), a post over HTTP, a slow post that times out, Ctrl-C. The
//! assertions read only what the runner wrote to `spans.jsonl`.

use std::collections::BTreeSet;

use flowtrace_report::{Focus, Report, SpanKind, SpanRecord, StatusCode, health, html};
use flowtrace_tests::blog_demo::{self, DemoRun};
use flowtrace_tests::{ChildProcess, OtlpReceiver, python_env, workspace_bin, workspace_root};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const FUNCTIONS: [&str; 4] = ["request-processor", "post-analysis", "kinesis-analysis", "db-update"];

fn one<'a>(spans: &'a [SpanRecord], what: &str, matches: impl Fn(&SpanRecord) -> bool) -> TestResult<&'a SpanRecord> {
    let found: Vec<&SpanRecord> = spans.iter().filter(|s| matches(s)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!("{} spans are {what}: {found:#?}", found.len()).into()),
    }
}

fn by_id<'a>(spans: &'a [SpanRecord], span_id: &str) -> Option<&'a SpanRecord> {
    spans.iter().find(|s| s.span_id == span_id)
}

/// Whether `span` is `ancestor` or below it.
fn descends_from(spans: &[SpanRecord], span: &SpanRecord, ancestor: &SpanRecord) -> bool {
    let mut current = Some(span);
    for _ in 0..=spans.len() {
        let Some(s) = current else { return false };
        if s.span_id == ancestor.span_id {
            return true;
        }
        current = s.parent_id.as_deref().and_then(|p| by_id(spans, p));
    }
    false
}

fn invocation<'a>(spans: &'a [SpanRecord], service: &str) -> TestResult<&'a SpanRecord> {
    one(spans, &format!("invocations of {service}"), |s| s.service == service && s.is_invocation())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_is_one_trace_through_the_whole_app_and_a_timeout_stays_in_its_trace() -> TestResult {
    let out_dir = std::env::temp_dir().join(format!("flowtrace-local-e2e-{}", std::process::id()));
    let run: DemoRun = blog_demo::run(&out_dir, false).await?;
    let output = &run.output;

    // The post was accepted; the slow one too (post-analysis times out later, asynchronously).
    assert_eq!(run.post.0, 201, "{output}");
    assert_eq!(run.slow_post.0, 201, "{output}");

    // Exactly one trace for the request: everything collected before the slow post.
    let spans = &run.spans_before_slow_post;
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    for service in FUNCTIONS {
        assert!(services.contains(service), "no spans from {service}: {services:?}");
    }

    // API → request-processor → SNS.Publish → post-analysis → Kinesis.PutRecord →
    // kinesis-analysis → DynamoDB.PutItem → db-update, parent by parent.
    let gateway = one(spans, "the gateway's span", |s| {
        s.name == "POST /new_post" && s.kind == SpanKind::Server && s.parent_id.is_none()
    })?;
    assert_eq!(gateway.service, "BlogApi");
    assert_eq!(gateway.attributes.i64("http.response.status_code"), Some(201));
    let request = invocation(spans, "request-processor")?;
    assert_eq!(request.invocation_id(), Some(run.post.1.as_str()), "the post id is request-processor's request id");
    assert_eq!(request.parent_id.as_deref(), Some(gateway.span_id.as_str()));
    assert_eq!(request.attributes.str("faas.trigger"), Some("http"));
    let publish = one(spans, "SNS.Publish", |s| s.name == "SNS.Publish")?;
    assert!(descends_from(spans, publish, request));
    let analysis = invocation(spans, "post-analysis")?;
    assert_eq!(analysis.parent_id.as_deref(), Some(publish.span_id.as_str()));
    let put_record = one(spans, "Kinesis.PutRecord", |s| s.name == "Kinesis.PutRecord")?;
    assert!(descends_from(spans, put_record, analysis));
    let stored = invocation(spans, "kinesis-analysis")?;
    assert_eq!(stored.parent_id.as_deref(), Some(put_record.span_id.as_str()));
    let put_item = one(spans, "DynamoDB.PutItem", |s| s.name == "DynamoDB.PutItem")?;
    assert!(descends_from(spans, put_item, stored));
    // db-update sees the INSERT (and then its own MODIFY); the INSERT continues PutItem.
    let updates: Vec<&SpanRecord> = spans.iter().filter(|s| s.service == "db-update" && s.is_invocation()).collect();
    assert!(updates.iter().any(|u| u.parent_id.as_deref() == Some(put_item.span_id.as_str())), "{updates:#?}");
    let update_item = spans.iter().find(|s| s.name == "DynamoDB.UpdateItem").ok_or("no DynamoDB.UpdateItem")?;
    assert!(updates.iter().any(|u| descends_from(spans, update_item, u)));

    // Both external APIs, as HTTP client spans under the functions that call them.
    let auth = one(spans, "POST /auth", |s| s.name == "POST /auth")?;
    assert_eq!(auth.kind, SpanKind::Client);
    assert_eq!(auth.attributes.i64("server.port"), Some(i64::from(run.auth_port)));
    assert_eq!(auth.attributes.i64("http.response.status_code"), Some(200));
    assert!(descends_from(spans, auth, request));
    let sms = one(spans, "POST /sms", |s| s.name == "POST /sms")?;
    assert_eq!(sms.attributes.i64("server.port"), Some(i64::from(run.sms_port)));
    assert!(descends_from(spans, sms, analysis));

    // The platform's figures for every invocation, from the extension.
    for invocation in run.spans.iter().filter(|s| s.is_invocation() && FUNCTIONS.contains(&s.service.as_str())) {
        let id = invocation.invocation_id().ok_or("no id")?;
        let platform =
            one(&run.spans, &format!("platform spans of {id}"), |s| s.is_platform() && s.invocation_id() == Some(id))?;
        assert_eq!(platform.trace_id, invocation.trace_id, "{platform:#?}");
        let billed = platform.attributes.i64("flowtrace.platform.billed_duration_ms");
        assert!(billed.is_some_and(|ms| ms >= 1), "{} {id}: {platform:#?}", invocation.service);
        assert_eq!(platform.attributes.i64("flowtrace.platform.memory_size_mb"), Some(128), "{platform:#?}");
        let cost = platform.attributes.f64("flowtrace.platform.cost_usd").ok_or("no cost")?;
        assert!(cost > 0.0 && cost < 0.001, "{cost}");
        // Only the platform's own report knows the memory used; a timed-out sandbox torn down
        // before reporting gets an estimate from its deadline, marked as such.
        if platform.attributes.bool("flowtrace.platform.estimated") != Some(true) {
            assert!(platform.attributes.i64("flowtrace.platform.max_memory_used_mb").is_some(), "{platform:#?}");
        }
    }
    // Cold starts: every function's first invocation is one.
    for service in FUNCTIONS {
        let cold = run
            .spans
            .iter()
            .filter(|s| s.service == service && s.is_invocation() && s.attributes.bool("faas.coldstart") == Some(true))
            .count();
        assert!(cold >= 1, "{service} had no cold start");
    }

    // The slow post: post-analysis times out in the slow post's trace, naming the hanging call.
    let slow_request = one(&run.spans, "the slow post's request", |s| {
        s.is_invocation() && s.invocation_id() == Some(run.slow_post.1.as_str())
    })?;
    let timed_out = one(&run.spans, "the timed-out analysis", |s| {
        s.service == "post-analysis" && s.is_invocation() && s.trace_id == slow_request.trace_id
    })?;
    assert_eq!(timed_out.status.code, StatusCode::Error);
    assert!(timed_out.status.message.contains("slow_analysis"), "{:?}", timed_out.status);
    let hanging = one(&run.spans, "slow_analysis", |s| s.name == "slow_analysis")?;
    assert_eq!(hanging.trace_id, slow_request.trace_id);
    assert!(descends_from(&run.spans, hanging, timed_out));
    let platform = one(&run.spans, "the timeout's platform span", |s| {
        s.is_platform() && s.invocation_id() == timed_out.invocation_id()
    })?;
    assert_eq!(platform.attributes.str("flowtrace.platform.status"), Some("timeout"), "{platform:#?}");
    assert!(!run.spans.iter().any(|s| s.name == "Kinesis.PutRecord" && s.trace_id == slow_request.trace_id));

    // The report of that run: every hop is a node of the map, and the page carries it.
    let report = Report::build(run.spans.clone(), Focus::Invocation(run.post.1.clone()))?;
    let labels: Vec<&str> = report.map().nodes.iter().map(|n| n.label.as_str()).collect();
    let auth_node = format!("auth API 127.0.0.1:{}", run.auth_port);
    let sms_node = format!("sms API 127.0.0.1:{}", run.sms_port);
    for node in
        ["API Gateway", "SNS", "Kinesis", "DynamoDB", auth_node.as_str(), sms_node.as_str()].iter().chain(&FUNCTIONS)
    {
        assert!(labels.contains(node), "no {node} in the map: {labels:?}");
    }
    assert_eq!(report.map().edges.len(), 10, "{:#?}", report.map().edges);
    let functions = health(&run.spans);
    let page = html(&report, &functions);
    assert!(page.contains("<svg") && page.contains("db-update") && page.contains(&sms_node), "{page}");
    let analysis_health = functions.iter().find(|f| f.function == "post-analysis").ok_or("no post-analysis health")?;
    assert_eq!((analysis_health.invocations, analysis_health.timeouts), (2, 1), "{analysis_health:?}");
    assert!(analysis_health.cost_usd > 0.0);

    // Ctrl-C stopped everything it started: moto, the functions, the extensions, the port.
    assert!(run.exit.success(), "{}: {output}", run.exit);
    assert!(output.contains("flowtrace local: stopped"), "{output}");
    assert!(run.descendants.len() >= 9, "moto + 4 functions + 4 extensions: {:?}", run.descendants);
    let alive: Vec<u32> = run.descendants.iter().copied().filter(|pid| blog_demo::is_alive(*pid)).collect();
    assert!(alive.is_empty(), "left running: {alive:?}");
    let address = run.http_endpoint.trim_start_matches("http://").to_owned();
    assert!(std::net::TcpStream::connect(&address).is_err(), "{address} still listens");
    let _ = std::fs::remove_dir_all(&run.out_dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_runs_one_function_once_and_forwards_to_the_configured_backend() -> TestResult {
    let flowtrace = workspace_bin("flowtrace-cli", "flowtrace")?;
    let extension = workspace_bin("flowtrace-extension", "flowtrace-extension")?;
    workspace_bin("hello", "hello")?;
    let bin_dir = extension.parent().ok_or("no bin dir")?.to_string_lossy().into_owned();
    let backend = OtlpReceiver::start().await?;
    let out_dir = std::env::temp_dir().join(format!("flowtrace-local-invoke-{}", std::process::id()));
    let event = out_dir.join("event.json");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(&event, r#"{"name": "local"}"#)?;

    let template = workspace_root().join("template.yaml").to_string_lossy().into_owned();
    let extension = extension.to_string_lossy().into_owned();
    let out = out_dir.to_string_lossy().into_owned();
    let target = format!("HelloFunction={}", event.display());
    let endpoint = backend.endpoint();
    let mut env = python_env();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = ChildProcess::spawn(
        "flowtrace local",
        &flowtrace,
        &[
            "local",
            "--template",
            &template,
            "--no-build",
            "--bin-dir",
            &bin_dir,
            "--extension",
            &extension,
            "--out-dir",
            &out,
            "--function",
            "HelloFunction",
            "--invoke",
            &target,
            "--quiet",
        ],
        &env,
    )?;
    let status = local.wait_exit(std::time::Duration::from_secs(60)).await?;
    assert!(status.success(), "{}", local.output());
    let output = local.output();
    let answer = output.lines().find(|l| l.starts_with('{')).ok_or_else(|| format!("no answer in {output}"))?;
    let answer: serde_json::Value = serde_json::from_str(answer)?;
    assert_eq!(answer["outcome"]["response"]["greeting"], "hello, local", "{answer}");
    let request_id = answer["requestId"].as_str().ok_or("no request id")?;

    // Forwarded to the backend, unchanged, and kept in spans.jsonl too.
    let spans = backend
        .wait_until("hello's invocation and platform spans", std::time::Duration::from_secs(10), |spans| {
            spans.iter().filter(|s| s.attr_str("faas.invocation_id") == Some(request_id)).count() >= 2
        })
        .await?;
    assert!(spans.iter().any(|s| s.name == "lambda.platform"), "{spans:#?}");
    let text = std::fs::read_to_string(out_dir.join("spans.jsonl"))?;
    let (local_spans, skipped) = flowtrace_report::parse_lines(&text);
    assert_eq!(skipped, 0);
    assert!(
        local_spans.iter().any(|s| s.is_invocation() && s.invocation_id() == Some(request_id)),
        "{local_spans:#?}\n{output}"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
    Ok(())
}
