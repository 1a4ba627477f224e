//! Masking secrets in captured payloads, one set of rules for the wrapper's event and response
//! capture and the HTTP client's body capture. Behind the `mask` feature so the extension does
//! not pay for `serde_json` and `regex-lite`.

use regex_lite::Regex;
use serde_json::Value;

/// What a masked value is replaced with.
pub const MASK: &str = "****";

/// Key fragments that always mark a secret, matched case-insensitively anywhere in the key.
const SECRET_KEY_FRAGMENTS: [&str; 8] =
    ["password", "passwd", "secret", "token", "key", "credential", "authorization", "cookie"];

/// Decides which keys hold secrets and masks their values.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    extra: Option<Regex>,
}

impl Masker {
    /// `extra_pattern` is a case-insensitive regex matched against keys, beside the built-in
    /// secret names. An invalid pattern is ignored (configuration parsing warns about it).
    pub fn new(extra_pattern: Option<&str>) -> Self {
        Self { extra: extra_pattern.and_then(|p| Regex::new(&format!("(?i){p}")).ok()) }
    }

    /// Whether values under `key` are masked: keys containing password, passwd, secret, token,
    /// key, credential, authorization or cookie, `X-Amz-Security-Token`, and the extra pattern.
    pub fn is_secret_key(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        SECRET_KEY_FRAGMENTS.iter().any(|fragment| lower.contains(fragment))
            || lower == "x-amz-security-token"
            || self.extra.as_ref().is_some_and(|re| re.is_match(key))
    }

    /// Masks secret values at any depth, including inside strings that hold JSON (SQS bodies,
    /// SNS messages).
    pub fn mask(&self, value: &mut Value) {
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

/// Truncates to at most `max_bytes` bytes on a character boundary, saying how much was cut.
pub fn truncate(mut text: String, max_bytes: usize) -> String {
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
    fn secret_keys_are_masked_at_any_depth_and_inside_json_strings() {
        let masker = Masker::new(Some("^ssn$"));
        let mut value = json!({
            "Password": "hunter2", "ssn": "123", "name": "ada",
            "headers": {"Authorization": "Bearer x", "X-Amz-Security-Token": "t"},
            "body": json!({"apiKey": "k"}).to_string(),
        });
        masker.mask(&mut value);
        let text = value.to_string();
        for secret in ["hunter2", "\"123\"", "Bearer x", "\"t\"", "\\\"k\\\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("ada"));
    }

    #[test]
    fn truncation_cuts_on_a_char_boundary() {
        let cut = truncate("éééééé".to_owned(), 5);
        assert!(cut.starts_with("éé") && cut.contains("[truncated 8 of 12 bytes]"), "{cut}");
        assert_eq!(truncate("short".to_owned(), 10), "short");
    }
}
