//! Property tests for everything that parses outside input: URLs, bodies, host patterns and
//! settings. Nothing panics, and no query value or secret survives redaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowtrace_reqwest::redact::{Masker, redact_url};
use flowtrace_reqwest::{HostPattern, HttpConfig};
use proptest::prelude::*;

proptest! {
    #[test]
    fn query_values_never_survive_redaction(
        path in "(/[a-z0-9]{0,8}){0,3}",
        pairs in proptest::collection::vec(("[a-zA-Z_]{1,8}", "[a-zA-Z0-9]{1,12}"), 1..5),
    ) {
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=SECRET{v}")).collect();
        let url = reqwest::Url::parse(&format!("https://api.example.com{path}?{}", query.join("&"))).unwrap();
        let redacted = redact_url(&url, true);
        prop_assert!(!redacted.contains("SECRET"), "{redacted}");
        for (key, _) in &pairs {
            prop_assert!(redacted.contains(&format!("{key}=REDACTED")), "{redacted}");
        }
    }

    #[test]
    fn any_url_redacts_without_panicking(text in "\\PC{0,80}", redact in any::<bool>()) {
        if let Ok(url) = reqwest::Url::parse(&format!("https://h.example/{text}")) {
            let _ = redact_url(&url, redact);
        }
    }

    #[test]
    fn any_body_renders_within_its_bound(body in proptest::collection::vec(any::<u8>(), 0..512), max in 1usize..256) {
        let masker = Masker::new(Some("card"));
        for content_type in [None, Some("application/json"), Some("application/x-www-form-urlencoded"), Some("text/plain")] {
            let rendered = masker.render_body(&body, content_type, max);
            prop_assert!(rendered.len() <= max + 64, "{} > {max}", rendered.len());
        }
    }

    #[test]
    fn secrets_in_json_bodies_are_always_masked(
        key in "(password|api_key|clientSecret|x-amz-security-token|Cookie|refreshToken)",
        value in "[a-z]{6,12}",
        depth in 0usize..4,
    ) {
        let mut json = serde_json::json!({ key.as_str(): format!("VALUE{value}") });
        for _ in 0..depth {
            json = serde_json::json!({ "nested": [json] });
        }
        let rendered = Masker::new(None).render_body(json.to_string().as_bytes(), Some("application/json"), 1 << 20);
        prop_assert!(!rendered.contains("VALUE"), "{rendered}");
    }

    #[test]
    fn host_patterns_and_settings_never_panic(pattern in "\\PC{0,40}", value in "\\PC{0,60}") {
        if let Some(p) = HostPattern::parse(&pattern) {
            let _ = p.matches("api.example.com", Some(443));
        }
        let (config, _) = HttpConfig::from_lookup(|_| Some(value.clone()));
        let _ = config.may_propagate_to("api.example.com", Some(443));
        let _ = config.peer_service("api.example.com", None);
    }
}
