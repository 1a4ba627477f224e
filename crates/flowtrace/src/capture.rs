//! Payload capture: off by default; when on, payloads are masked and truncated before they
//! become span attributes.

use flowtrace_contract::mask::{Masker, truncate};
use serde_json::Value;

/// What a masked value is replaced with.
pub use flowtrace_contract::mask::MASK;

/// Masks secret-looking values and truncates what is left.
#[derive(Debug, Clone)]
pub struct PayloadCapture {
    max_bytes: usize,
    masker: Masker,
}

impl PayloadCapture {
    /// `extra_pattern` is a case-insensitive regex matched against keys, beside the
    /// built-in secret names. An invalid pattern is ignored (the config already warned).
    pub fn new(max_bytes: usize, extra_pattern: Option<&str>) -> Self {
        Self { max_bytes, masker: Masker::new(extra_pattern) }
    }

    /// Whether values under `key` are masked.
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.masker.is_secret_key(key)
    }

    /// Renders `payload` masked and truncated to at most `max_bytes` bytes (on a character
    /// boundary, with a marker saying how much was cut).
    pub fn render(&self, payload: &Value) -> String {
        let mut masked = payload.clone();
        self.masker.mask(&mut masked);
        truncate(masked.to_string(), self.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_secret_keys_are_masked_at_any_depth() {
        let capture = PayloadCapture::new(10_000, None);
        let rendered = capture.render(&json!({
            "user": "ada",
            "Password": "hunter2",
            "headers": {"Authorization": "Bearer abc", "Cookie": "s=1", "X-Amz-Security-Token": "t", "accept": "*/*"},
            "items": [{"apiKey": "k1", "client_secret": "s"}],
            "AccessToken": "tok",
        }));
        for secret in ["hunter2", "Bearer abc", "s=1", "\"t\"", "k1", "\"s\"", "tok"] {
            assert!(!rendered.contains(secret), "{secret} leaked: {rendered}");
        }
        assert!(rendered.contains("ada") && rendered.contains("*/*"), "{rendered}");
    }

    #[test]
    fn json_inside_strings_is_masked_too() {
        let capture = PayloadCapture::new(10_000, None);
        let body = json!({"password": "p4ss", "msg": "hi"}).to_string();
        let rendered = capture.render(&json!({"Records": [{"body": body}]}));
        assert!(!rendered.contains("p4ss"), "{rendered}");
        assert!(rendered.contains("hi"), "{rendered}");
    }

    #[test]
    fn user_pattern_masks_more_keys() {
        let capture = PayloadCapture::new(10_000, Some("^ssn$|card"));
        let rendered = capture.render(&json!({"SSN": "123-45", "creditCardNumber": "4111", "name": "x"}));
        assert!(!rendered.contains("123-45") && !rendered.contains("4111"), "{rendered}");
        assert!(rendered.contains("\"name\":\"x\""));
    }

    #[test]
    fn truncation_respects_char_boundaries_and_says_so() {
        let capture = PayloadCapture::new(10, None);
        let rendered = capture.render(&json!({"text": "ééééééééé"}));
        assert!(rendered.starts_with("{\"text\":\""), "{rendered}");
        assert!(rendered.contains("[truncated"), "{rendered}");
        assert!(rendered.len() < 60);
    }
}
