//! Payload capture: off by default; when on, payloads are masked and truncated before they
//! become span attributes.

use regex_lite::Regex;
use serde_json::Value;

/// What a masked value is replaced with.
pub const MASK: &str = "****";

/// Key fragments that always mark a secret, matched case-insensitively anywhere in the key.
const SECRET_KEY_FRAGMENTS: [&str; 8] =
    ["password", "passwd", "secret", "token", "key", "credential", "authorization", "cookie"];

/// Masks secret-looking values and truncates what is left.
#[derive(Debug, Clone)]
pub struct PayloadCapture {
    max_bytes: usize,
    extra: Option<Regex>,
}

impl PayloadCapture {
    /// `extra_pattern` is a case-insensitive regex matched against keys, beside the
    /// built-in secret names. An invalid pattern is ignored (the config already warned).
    pub fn new(max_bytes: usize, extra_pattern: Option<&str>) -> Self {
        let extra = extra_pattern.and_then(|p| Regex::new(&format!("(?i){p}")).ok());
        Self { max_bytes, extra }
    }

    /// Whether values under `key` are masked.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        SECRET_KEY_FRAGMENTS.iter().any(|fragment| lower.contains(fragment))
            || lower == "x-amz-security-token"
            || self.extra.as_ref().is_some_and(|re| re.is_match(key))
    }

    /// Renders `payload` masked and truncated to at most `max_bytes` bytes (on a character
    /// boundary, with a marker saying how much was cut).
    pub fn render(&self, payload: &Value) -> String {
        let mut masked = payload.clone();
        self.mask(&mut masked);
        // JSON strings that themselves hold JSON (SQS bodies, SNS messages) are masked too.
        let text = masked.to_string();
        truncate(text, self.max_bytes)
    }

    fn mask(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    if self.is_secret_key(key) {
                        *inner = Value::String(MASK.to_owned());
                    } else {
                        self.mask(inner);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask(item)),
            Value::String(text) => {
                let trimmed = text.trim_start();
                if (trimmed.starts_with('{') || trimmed.starts_with('['))
                    && let Ok(mut nested) = serde_json::from_str::<Value>(text)
                {
                    self.mask(&mut nested);
                    *text = nested.to_string();
                }
            }
            _ => {}
        }
    }
}

fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let original = text.len();
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(&format!("…[truncated {} of {original} bytes]", original - cut));
    text
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
