//! The views, on the synthetic blog-site spans (built with the OTLP proto types and serde,
//! exactly as the local runner's sink writes them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use flowtrace_report::*;

fn blog() -> Vec<SpanRecord> {
    let (spans, skipped) = parse_lines(&blog_jsonl());
    assert_eq!(skipped, 0);
    spans
}

fn blog_report() -> Report {
    Report::build(blog(), Focus::MostServices).unwrap()
}

#[test]
fn print_all_views() {
    let spans = blog();
    let h = health(&spans);
    let report = Report::build(spans, Focus::MostServices).unwrap();
    println!("{}", waterfall(&report));
    println!("{}", service_map(&report));
    println!("{}", health_table(&h));
}

#[test]
fn parses_otlp_json_lines_with_typed_attributes() {
    let spans = blog();
    assert_eq!(spans.len(), blog_spans("slow_analysis").len());
    let entry = &spans[0];
    assert_eq!(entry.service, "request-processor");
    assert_eq!(entry.trace_id, TRACE_A);
    assert_eq!(entry.span_id, "a000000000000001");
    assert_eq!(entry.parent_id, None);
    assert_eq!(entry.name, "POST /new_post");
    assert_eq!(entry.kind, SpanKind::Server);
    assert_eq!(entry.start_unix_nano, ms(180.0));
    assert_eq!(entry.end_unix_nano, ms(300.0));
    assert_eq!(entry.status.code, StatusCode::Unset);
    assert_eq!(entry.attributes.str("faas.trigger"), Some("http"));
    assert_eq!(entry.attributes.bool("faas.coldstart"), Some(true));
    assert_eq!(entry.attributes.i64("http.response.status_code"), Some(200));
    assert_eq!(entry.resource.str("cloud.provider"), Some("aws"));
    assert_eq!(entry.resource.i64("faas.max_memory"), Some(128 * 1024 * 1024));
    assert!(entry.is_invocation());
    assert_eq!(entry.invocation_id(), Some("rp-1"));

    let platform = spans.iter().find(|s| s.is_platform()).unwrap();
    assert_eq!(platform.parent_id.as_deref(), Some("a000000000000001"));
    assert!(!platform.is_invocation());
    let platform_cost = platform.attributes.f64("flowtrace.platform.cost_usd").unwrap();
    assert!((platform_cost - cost(122, 128)).abs() < 1e-18);
    assert_eq!(platform.attributes.f64("flowtrace.platform.billed_duration_ms"), Some(122.0));

    let put = spans.iter().find(|s| s.name == "DynamoDB.PutItem").unwrap();
    assert_eq!(put.aws_service(), Some("DynamoDB"));
    assert_eq!(put.attributes.str("aws.dynamodb.table_names"), Some("BlogPostsDB"));
    let sms = spans.iter().find(|s| s.name == "POST /sms").unwrap();
    assert_eq!(sms.http_target().as_deref(), Some("127.0.0.1:9002"));
    assert_eq!(sms.http_path().as_deref(), Some("/sms"));
    let timeout = spans.iter().find(|s| s.invocation_id() == Some("pa-1") && !s.is_synthesized()).unwrap();
    assert_eq!(timeout.status.code, StatusCode::Error);
    assert_eq!(timeout.status.message, TIMEOUT_MESSAGE);
    assert!(spans.iter().any(|s| s.invocation_id() == Some("pa-1") && s.is_synthesized() && s.is_invocation()));
}

#[test]
fn malformed_lines_are_skipped_and_counted() {
    let good = line(&blog_spans("slow_analysis").remove(0));
    let mut no_ids = blog_spans("slow_analysis").remove(2);
    no_ids.trace = "";
    let input = [
        "not json at all",
        good.as_str(),
        "",
        "   ",
        &good[..good.len() / 2],
        r#"{"scopeSpans": 5}"#,
        r#""a string""#,
        "42",
        &line(&no_ids),
        r#"{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"00"}]}]}"#,
        good.as_str(),
    ]
    .join("\n");
    let (spans, skipped) = parse_lines(&input);
    // 6 bad lines (prose, half a line, wrong types, a string, a number, bad hex) and 1 span
    // without a trace id.
    assert_eq!(skipped, 7);
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.name == "POST /new_post"));
}

#[test]
fn a_line_without_service_name_and_with_several_spans() {
    let json = format!(
        r#"{{"resource":{{"attributes":[{{"key":"faas.name","value":{{"stringValue":"f"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{TRACE_A}","spanId":"0000000000000001","name":"one","kind":1,"startTimeUnixNano":"5","endTimeUnixNano":"3"}},{{"traceId":"{TRACE_A}","spanId":"0000000000000002","parentSpanId":"0000000000000001","name":"two"}}]}}]}}
{{"scopeSpans":[{{"spans":[{{"traceId":"{TRACE_A}","spanId":"0000000000000003","name":"three"}}]}}]}}"#
    );
    let (spans, skipped) = parse_lines(&json);
    assert_eq!(skipped, 0);
    assert_eq!(
        spans.iter().map(|s| (s.service.as_str(), s.name.as_str())).collect::<Vec<_>>(),
        [("f", "one"), ("f", "two"), (UNKNOWN_SERVICE, "three")]
    );
    assert_eq!(spans[0].kind, SpanKind::Internal);
    assert_eq!((spans[0].start_unix_nano, spans[0].end_unix_nano), (5, 5), "an end before the start is clamped");
}

#[test]
fn empty_input() {
    assert_eq!(parse_lines(""), (vec![], 0));
    assert_eq!(parse_lines("\n\n  \n"), (vec![], 0));
    assert_eq!(Report::build(vec![], Focus::MostServices).unwrap_err(), ReportError::NoSpans);
    assert_eq!(Report::build(vec![], Focus::Trace(TRACE_A.into())).unwrap_err(), ReportError::NoSpans);
    assert!(health(&[]).is_empty());
    assert_eq!(health_table(&[]), "Health: no invocations found.\n");
}

#[test]
fn focus_picks_the_trace() {
    let id = |focus: Focus| Report::build(blog(), focus).map(|r| r.trace_id().to_owned());
    assert_eq!(id(Focus::MostServices).unwrap(), TRACE_A);
    assert_eq!(id(Focus::Invocation("db-1".into())).unwrap(), TRACE_A);
    assert_eq!(id(Focus::Invocation("rp-2".into())).unwrap(), TRACE_B);
    assert_eq!(id(Focus::Trace(TRACE_C.to_uppercase())).unwrap(), TRACE_C);
    assert_eq!(id(Focus::Trace("f".repeat(32))).unwrap_err(), ReportError::TraceNotFound("f".repeat(32)));
    assert_eq!(id(Focus::Invocation("nope".into())).unwrap_err(), ReportError::InvocationNotFound("nope".into()));
    let c = Report::build(blog(), Focus::Trace(TRACE_C.into())).unwrap();
    assert_eq!(c.services(), ["request-processor"]);
    assert_eq!(c.rows().len(), 2);
}

#[test]
fn waterfall_rows_follow_the_tree() {
    let report = blog_report();
    assert_eq!(report.trace_id(), TRACE_A);
    // The extension's synthesized copy of the timed-out invocation gives way to the function's.
    assert_eq!(report.spans().len(), 16);
    assert_eq!(report.start_unix_nano(), ms(0.0));
    assert_eq!(report.duration_ns(), 1_270_000_000);
    assert_eq!(report.services(), ["db-update", "kinesis-analysis", "post-analysis", "request-processor"]);
    let rows: Vec<(usize, &str, &str)> = report
        .rows()
        .iter()
        .map(|r| (r.depth, report.spans()[r.span].service.as_str(), report.spans()[r.span].name.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (0, "request-processor", "POST /new_post"),
            (1, "request-processor", "lambda.init"),
            (1, "request-processor", "lambda.platform"),
            (1, "request-processor", "POST /auth"),
            (1, "request-processor", "SNS.Publish"),
            (2, "post-analysis", "process Posts-Notifications"),
            (3, "post-analysis", "lambda.platform"),
            (3, "post-analysis", "POST /sms"),
            (3, "post-analysis", "Kinesis.PutRecord"),
            (4, "kinesis-analysis", "process Post-Analysis-Stream"),
            (5, "kinesis-analysis", "lambda.platform"),
            (5, "kinesis-analysis", "DynamoDB.PutItem"),
            (6, "db-update", "process BlogPostsDB"),
            (7, "db-update", "lambda.platform"),
            (7, "db-update", "DynamoDB.UpdateItem"),
            (3, "post-analysis", "slow_analysis"),
        ]
    );
    assert!(report.rows().iter().all(|r| r.missing_parent.is_none() && !r.cycle));
    let timed_out = &report.spans()[report.rows()[5].span];
    assert!(!timed_out.is_synthesized());
    assert_eq!(timed_out.kind, SpanKind::Consumer);

    let text = waterfall(&report);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 16, "{text}");
    assert_eq!(lines[0], format!("Trace {TRACE_A}: 16 spans, 4 services, 1270.0 ms"));
    assert!(lines[1].starts_with("service            operation"), "{}", lines[1]);
    assert_eq!(
        lines[2],
        "request-processor  POST /new_post                            180.0      120.0  |     #####                              |  cold start"
    );
    assert_eq!(
        lines[3],
        "request-processor    lambda.init                               0.0      180.0  |######                                  |"
    );
    assert_eq!(
        lines[4],
        "request-processor    lambda.platform                         180.0      121.5  |     #####                              |  billed 122 ms, 41/128 MB, $0.00000045"
    );
    assert_eq!(
        lines[7],
        format!(
            "post-analysis          process Posts-Notifications           270.0      950.0  |        !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!! |  ✗ {TIMEOUT_MESSAGE}"
        )
    );
    assert!(lines[17].contains("    slow_analysis  ") && lines[17].ends_with("✗ cut off by flowtrace: timeout"));
    assert!(lines[8].contains("✗ timeout: Sandbox.Timedout; billed 1000 ms, 60/128 MB, $0.0000023"), "{}", lines[8]);
    assert!(!text.contains("missing"));
}

#[test]
fn service_map_nodes_and_edges() {
    let report = blog_report();
    let map = report.map();
    let nodes: Vec<(&str, NodeKind, usize)> = map.nodes.iter().map(|n| (n.label.as_str(), n.kind, n.depth)).collect();
    assert_eq!(
        nodes,
        [
            ("API Gateway", NodeKind::ApiGateway, 0),
            ("request-processor", NodeKind::Function, 1),
            ("auth API 127.0.0.1:9001", NodeKind::Http, 2),
            ("SNS", NodeKind::Aws, 2),
            ("post-analysis", NodeKind::Function, 3),
            ("sms API 127.0.0.1:9002", NodeKind::Http, 4),
            ("Kinesis", NodeKind::Aws, 4),
            ("kinesis-analysis", NodeKind::Function, 5),
            ("DynamoDB", NodeKind::Aws, 6),
            ("db-update", NodeKind::Function, 7),
        ]
    );
    assert_eq!(map.nodes[3].details, ["Posts-Notifications"]);
    assert_eq!(map.nodes[8].details, ["BlogPostsDB"]);
    let edges: Vec<(usize, usize, u64, u64)> = map.edges.iter().map(|e| (e.from, e.to, e.count(), e.errors)).collect();
    assert_eq!(
        edges,
        [
            (0, 1, 1, 0),
            (1, 2, 1, 0),
            (1, 3, 1, 0),
            (3, 4, 1, 1),
            (4, 5, 1, 0),
            (4, 6, 1, 0),
            (6, 7, 1, 0),
            (7, 8, 1, 0),
            (8, 9, 1, 0),
            (9, 8, 1, 0),
        ]
    );
    let text = service_map(&report);
    let edge_lines: Vec<&str> = text.lines().filter(|l| l.contains('→')).map(str::trim).collect();
    assert_eq!(
        edge_lines,
        [
            "API Gateway → request-processor (POST /new_post ×1)",
            "request-processor → auth API 127.0.0.1:9001 (POST /auth ×1)",
            "request-processor → SNS (Publish ×1)",
            "SNS → post-analysis (process Posts-Notifications ×1, 1 error)",
            "post-analysis → sms API 127.0.0.1:9002 (POST /sms ×1)",
            "post-analysis → Kinesis (PutRecord ×1)",
            "Kinesis → kinesis-analysis (process Post-Analysis-Stream ×1)",
            "kinesis-analysis → DynamoDB (PutItem ×1)",
            "DynamoDB → db-update (process BlogPostsDB ×1)",
            "db-update → DynamoDB (UpdateItem ×1)",
        ]
    );
    assert!(text.starts_with("Service map: 10 nodes, 10 edges\n"));
    assert!(text.contains("  [aws]      SNS                      (Posts-Notifications)\n"), "{text}");
}

#[test]
fn service_map_counts_repeated_calls_and_errors() {
    // Trace B: one failed auth call under a failed invocation.
    let report = Report::build(blog(), Focus::Invocation("rp-2".into())).unwrap();
    let text = service_map(&report);
    assert!(text.contains("API Gateway → request-processor (POST /new_post ×1, 1 error)"), "{text}");
    assert!(text.contains("request-processor → auth API 127.0.0.1:9001 (POST /auth ×1, 1 error)"), "{text}");
    // A function that publishes three times, once failing, with no trigger attributes on the
    // consumer: the edge comes from the parent client span's service.
    let mut specs = blog_spans("slow_analysis");
    let publish = specs.iter().position(|s| s.name == "SNS.Publish").unwrap();
    for (i, id) in ["a0000000000000f1", "a0000000000000f2"].into_iter().enumerate() {
        let mut copy = blog_spans("slow_analysis").remove(publish);
        copy.id = id;
        copy.start_ms += 1.0 + i as f64;
        if i == 1 {
            copy.error = Some("AuthorizationError");
        }
        specs.push(copy);
    }
    let consumer = specs.iter_mut().find(|s| s.name == "process Posts-Notifications" && s.attrs.len() > 5).unwrap();
    consumer.attrs.retain(|(k, _)| *k != "flowtrace.trigger.source" && *k != "faas.trigger");
    let text: String = specs.iter().map(|s| line(s) + "\n").collect();
    let report = Report::build(parse_lines(&text).0, Focus::MostServices).unwrap();
    let map = service_map(&report);
    assert!(map.contains("request-processor → SNS (Publish ×3, 1 error)"), "{map}");
    assert!(map.contains("SNS → post-analysis (process Posts-Notifications ×1, 1 error)"), "{map}");
}

#[test]
fn health_per_function_over_all_traces() {
    let h = health(&blog());
    let names: Vec<&str> = h.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(names, ["request-processor", "post-analysis", "kinesis-analysis", "db-update"]);
    let rp = &h[0];
    assert_eq!((rp.invocations, rp.errors, rp.timeouts, rp.cold_starts), (3, 1, 0, 1));
    assert_eq!((rp.p50_ms, rp.p99_ms), (Some(90.3), Some(121.5)));
    assert_eq!(rp.billed_ms, 122 + 61 + 91);
    assert_eq!((rp.max_memory_used_mb, rp.memory_size_mb), (Some(45), Some(128)));
    assert!((rp.cost_usd - (cost(122, 128) + cost(61, 128) + cost(91, 128))).abs() < 1e-15);
    // The timed-out invocation counts once, though both its own span and the extension's exist.
    let pa = &h[1];
    assert_eq!((pa.invocations, pa.errors, pa.timeouts, pa.cold_starts), (1, 1, 1, 0));
    assert_eq!((pa.p50_ms, pa.p99_ms, pa.billed_ms), (Some(1000.0), Some(1000.0), 1000));
    assert!((pa.cost_usd - cost(1000, 128)).abs() < 1e-15);
    let ka = &h[2];
    assert_eq!((ka.invocations, ka.errors, ka.p50_ms, ka.memory_size_mb), (1, 0, Some(81.2), Some(256)));
    let du = &h[3];
    assert_eq!((du.invocations, du.billed_ms, du.max_memory_used_mb), (1, 61, Some(38)));

    let table = health_table(&h);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "Health and cost per function (all traces)");
    assert_eq!(
        lines[1],
        "function           invocations  errors  timeouts  cold  p50 ms  p99 ms  billed ms  mem MB     cost USD"
    );
    assert_eq!(
        lines[3],
        "request-processor            3       1         0     1    90.3   121.5        274  45/128   $0.0000012"
    );
    assert_eq!(
        lines[4],
        "post-analysis                1       1         1     0  1000.0  1000.0       1000  60/128   $0.0000023"
    );
    assert_eq!(
        lines[8],
        "total                        6       2         1     1                       1417           $0.0000043"
    );
}

#[test]
fn health_without_the_functions_span_uses_the_synthesized_one_and_platform_figures() {
    // Only the extension's spans survived: the synthesized invocation and the platform span.
    let specs: Vec<S> = blog_spans("slow_analysis")
        .into_iter()
        .filter(|s| {
            s.service == "post-analysis"
                && (s.attrs.iter().any(|(k, _)| *k == "flowtrace.synthesized") || s.name == "lambda.platform")
        })
        .collect();
    assert_eq!(specs.len(), 2);
    let text: String = specs.iter().map(|s| line(s) + "\n").collect();
    let h = health(&parse_lines(&text).0);
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].invocations, h[0].errors, h[0].timeouts, h[0].p50_ms), (1, 1, 1, Some(1000.0)));
    // With platform spans missing, the invocation span's own duration is used.
    let specs: Vec<S> = blog_spans("slow_analysis")
        .into_iter()
        .filter(|s| s.service == "db-update" && s.name != "lambda.platform")
        .collect();
    let text: String = specs.iter().map(|s| line(s) + "\n").collect();
    let h = health(&parse_lines(&text).0);
    assert_eq!((h[0].invocations, h[0].p50_ms, h[0].billed_ms, h[0].cost_usd), (1, Some(60.0), 0, 0.0));
    assert_eq!((h[0].max_memory_used_mb, h[0].memory_size_mb), (None, Some(128)), "size from faas.max_memory");
}

#[test]
fn spans_with_missing_parents_are_roots() {
    // post-analysis's spans arrive, but request-processor's never did.
    let text: String = blog_spans("slow_analysis")
        .iter()
        .filter(|s| s.service != "request-processor")
        .map(|s| line(s) + "\n")
        .collect();
    let report = Report::build(parse_lines(&text).0, Focus::Invocation("pa-1".into())).unwrap();
    let first = &report.rows()[0];
    assert_eq!(first.depth, 0);
    assert_eq!(first.missing_parent.as_deref(), Some("a000000000000004"));
    assert_eq!(report.rows().iter().filter(|r| r.missing_parent.is_some()).count(), 1);
    let text = waterfall(&report);
    assert!(text.contains("parent a000000000000004 is not in the file: shown as a root"), "{text}");
    assert!(text.ends_with("1 span(s) whose parent is missing from the file are shown as roots.\n"), "{text}");
    // Without the SNS span, the map still knows post-analysis was triggered by SNS.
    assert!(service_map(&report).contains("SNS → post-analysis"));
}

#[test]
fn parent_cycles_do_not_hang() {
    let mk = |id: &'static str, parent: &'static str, start: f64| S {
        service: "f",
        trace: TRACE_A,
        id,
        parent: Some(parent),
        name: format!("span {id}"),
        kind: opentelemetry_proto::tonic::trace::v1::span::SpanKind::Internal,
        start_ms: start,
        end_ms: start + 1.0,
        attrs: vec![],
        error: None,
    };
    let text = [
        mk("0000000000000001", "0000000000000002", 0.0),
        mk("0000000000000002", "0000000000000001", 1.0),
        mk("0000000000000003", "0000000000000003", 2.0),
    ]
    .iter()
    .map(|s| line(s) + "\n")
    .collect::<String>();
    let report = Report::build(parse_lines(&text).0, Focus::MostServices).unwrap();
    let rows: Vec<(usize, bool, bool)> =
        report.rows().iter().map(|r| (r.depth, r.missing_parent.is_some(), r.cycle)).collect();
    // The self-parented span and the 1 ⇄ 2 cycle are both broken into roots.
    assert_eq!(rows, [(0, false, true), (0, false, true), (1, false, false)]);
    let text = waterfall(&report);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert_eq!(text.matches("its parents form a cycle: shown as a root").count(), 2, "{text}");
}

#[test]
fn html_report_is_self_contained_and_escaped() {
    let spans = parse_lines(&blog_jsonl_with("<script>alert('x')</script> & \"quotes\"")).0;
    let h = health(&spans);
    let report = Report::build(spans, Focus::MostServices).unwrap();
    let page = html(&report, &h);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"), "a span name must not become markup");
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"));
    for external in ["src=", "href=", "<link", "@import", "url(http"] {
        assert!(!page.contains(external), "{external}");
    }
    assert_eq!(page.matches(r#"<g class="node "#).count(), 10);
    assert_eq!(page.matches(r#"<path class="edge"#).count(), 10);
    assert_eq!(page.matches(r#"<tr class="wf-row"#).count(), 16);
    assert_eq!(page.matches(r#"<tr class="fn-row">"#).count(), 4);
    assert!(page.contains(">auth API 127.0.0.1:9001</text>"));
    assert!(page.contains("waiting on slow_analysis"));
    assert!(page.contains("$0.0000043"));
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("flowtrace-report-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spans.jsonl");
    let mut bytes = blog_jsonl().into_bytes();
    bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
    std::fs::write(&path, &bytes).unwrap();
    let (spans, skipped) = load_counted(&path).unwrap();
    assert_eq!((spans.len(), skipped), (blog_spans("x").len(), 1));
    assert_eq!(load(&path).unwrap(), spans);
    let missing = load(dir.join("nope.jsonl")).unwrap_err();
    assert!(matches!(missing, LoadError::Io { .. }));
    assert!(missing.to_string().contains("nope.jsonl"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mangled_input_never_panics() {
    // A small deterministic fuzz: flip, drop and duplicate bytes of a real file, then run
    // every view on whatever still parses.
    let original = blog_jsonl().into_bytes();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..(1 + round % 40) {
            let at = (next() as usize) % bytes.len();
            match next() % 4 {
                0 => bytes[at] = next() as u8,
                1 => bytes[at] = b"0123456789abcdef{}[]\",:-"[(next() % 24) as usize],
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, bytes[at]),
            }
        }
        let (spans, _) = parse_lines(&String::from_utf8_lossy(&bytes));
        let h = health(&spans);
        let _ = health_table(&h);
        if let Ok(report) = Report::build(spans, Focus::MostServices) {
            let _ = waterfall(&report);
            let _ = service_map(&report);
            let page = html(&report, &h);
            assert!(!page.contains("<script"));
        }
    }
}
