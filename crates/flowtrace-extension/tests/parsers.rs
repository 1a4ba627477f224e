//! Property tests: no parser that sees outside input panics, whatever it is given.

use flowtrace_extension::buffer::{Format, Signal};
use flowtrace_extension::proto::{Writer, check_message, scan_trace_request};
use flowtrace_extension::receiver::inspect;
use flowtrace_extension::telemetry::{parse_batch, parse_event, parse_rfc3339};
use flowtrace_extension::tracker::Tracker;
use proptest::prelude::*;

fn tracker() -> Tracker {
    use flowtrace_extension::cost::{Architecture, Pricing};
    Tracker::new(vec![], Pricing::for_architecture(Architecture::X86_64), Architecture::X86_64)
}

/// Arbitrary JSON values, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|n| serde_json::json!(n)),
        "[a-zA-Z.:0-9-]{0,12}".prop_map(serde_json::Value::String),
        prop_oneof![
            Just("platform.runtimeDone"),
            Just("platform.report"),
            Just("platform.start"),
            Just("platform.initStart"),
            Just("platform.initReport"),
            Just("function"),
            Just("requestId"),
            Just("2026-01-01T00:00:00.123Z"),
        ]
        .prop_map(|s| serde_json::Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("time".to_owned()),
                    Just("record".to_owned()),
                    Just("requestId".to_owned()),
                    Just("status".to_owned()),
                    Just("metrics".to_owned()),
                    Just("durationMs".to_owned()),
                    Just("billedDurationMs".to_owned()),
                    Just("memorySizeMB".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Byte strings that look somewhat like protobuf: valid fragments mixed with noise.
fn protobufish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..16),
            (1u32..20, prop::collection::vec(any::<u8>(), 0..24)).prop_map(|(field, bytes)| {
                let mut w = Writer::new();
                w.bytes(field, &bytes);
                w.into_bytes()
            }),
            (1u32..20, any::<u64>()).prop_map(|(field, v)| {
                let mut w = Writer::new();
                w.uint(field, v);
                w.into_bytes()
            }),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn protobuf_scanners_never_panic(body in protobufish()) {
        let _ = scan_trace_request(&body, |_| {});
        let _ = check_message(&body);
        let mut t = tracker();
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            for format in [Format::Protobuf, Format::Json] {
                let _ = inspect(signal, format, &body, |id| { t.on_span_id(id); });
            }
        }
    }

    #[test]
    fn nested_valid_protobuf_scans(spans in prop::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>()), 0..10)) {
        let mut w = Writer::new();
        w.message(1, |rs| rs.message(2, |ss| for (trace, span) in &spans {
            ss.message(2, |s| { s.bytes(1, trace); s.bytes(2, span); });
        }));
        let body = w.into_bytes();
        let mut seen = Vec::new();
        prop_assert_eq!(scan_trace_request(&body, |ids| seen.push(ids.span_id.to_vec())), Ok(spans.len()));
        prop_assert_eq!(seen, spans.iter().map(|(_, s)| s.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn telemetry_batches_never_panic(batch in prop::collection::vec(json(), 0..8)) {
        let body = serde_json::to_vec(&batch).unwrap();
        let events = parse_batch(&body).unwrap();
        let mut t = tracker();
        t.on_invoke("r", None, 1);
        for event in events {
            let _ = t.on_event(event);
        }
        let _ = t.finish("r", Some("timeout"), 2);
        let _ = t.on_shutdown("spindown", 3);
    }

    #[test]
    fn telemetry_events_never_panic(value in json()) {
        let _ = parse_event(value);
    }

    #[test]
    fn raw_telemetry_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_batch(&body);
        let _ = inspect(Signal::Traces, Format::Json, &body, |_| {});
    }

    #[test]
    fn timestamps_never_panic(text in "\\PC{0,40}", digits in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?") {
        let _ = parse_rfc3339(&text);
        let _ = parse_rfc3339(&digits);
    }

    #[test]
    fn header_pairs_never_panic(text in "\\PC{0,60}") {
        let _ = flowtrace_extension::config::parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", &text);
    }
}
