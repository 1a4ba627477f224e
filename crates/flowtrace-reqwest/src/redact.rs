//! What may leave the process in a span: `url.full` without credentials or query values,
//! and bodies masked and truncated, with the same rules as the wrapper's payload capture
//! (`flowtrace_contract::mask`).

use serde_json::Value;

pub use flowtrace_contract::mask::{MASK, truncate};

/// What a redacted URL part is replaced with (as the HTTP semantic conventions say).
pub const REDACTED: &str = "REDACTED";

/// Query keys whose values are redacted even when query redaction is off: the semantic
/// conventions' list of signature parameters (beside the secret key fragments).
const SIGNATURE_QUERY_KEYS: [&str; 4] = ["signature", "sig", "x-goog-signature", "x-amz-signature"];

/// Masks secret-looking keys in captured bodies.
#[derive(Debug, Clone)]
pub struct Masker {
    shared: flowtrace_contract::mask::Masker,
}

impl Masker {
    /// `extra_pattern` is a case-insensitive regex matched against keys, beside the
    /// built-in secret names. An invalid pattern is ignored (the config already warned).
    pub fn new(extra_pattern: Option<&str>) -> Self {
        Self { shared: flowtrace_contract::mask::Masker::new(extra_pattern) }
    }

    /// Whether values under `key` are masked.
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.shared.is_secret_key(key)
    }

    /// Renders a body for a span: JSON is masked at any depth (also JSON inside JSON
    /// strings), form-encoded bodies have their secret values masked, other text is kept as
    /// it is, and binary bodies are not captured. The result is truncated to `max_bytes`.
    pub fn render_body(&self, body: &[u8], content_type: Option<&str>, max_bytes: usize) -> String {
        let content_type = content_type.unwrap_or("").to_ascii_lowercase();
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(_) => return format!("[binary body of {} bytes not captured]", body.len()),
        };
        let trimmed = text.trim_start();
        let rendered = if content_type.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
            match serde_json::from_str::<Value>(text) {
                Ok(mut value) => {
                    self.shared.mask(&mut value);
                    value.to_string()
                }
                Err(_) => text.to_owned(),
            }
        } else if content_type.contains("x-www-form-urlencoded") {
            self.mask_form(text)
        } else {
            text.to_owned()
        };
        truncate(rendered, max_bytes)
    }

    fn mask_form(&self, form: &str) -> String {
        form.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if self.is_secret_key(&percent_decode_lossy(key)) => format!("{key}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Decodes `%XX` and `+` well enough to match key names; invalid escapes stay as they are.
fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url.full` as the span records it: user and password replaced by `REDACTED`, the
/// fragment dropped, and query values replaced by `REDACTED` (all of them when
/// `redact_query`, else those under secret-looking or signature keys). Keys are kept.
pub fn redact_url(url: &reqwest::Url, redact_query: bool) -> String {
    if url.username().is_empty() && url.password().is_none() {
        // The common case, without re-parsing: in a serialised URL the first `?` starts the
        // query and the first `#` the fragment (anywhere else they are percent-encoded).
        let text = url.as_str();
        let text = text.split_once('#').map_or(text, |(before, _)| before);
        return match text.split_once('?') {
            Some((before, query)) if !query.is_empty() => {
                format!("{before}?{}", redact_query_string(query, redact_query))
            }
            Some((before, _)) => before.to_owned(),
            None => text.to_owned(),
        };
    }
    let mut url = url.clone();
    url.set_fragment(None);
    if !url.username().is_empty() || url.password().is_some() {
        // Setting credentials fails only for URLs that cannot have them (no host), which
        // then have none to redact.
        let _ = url.set_username(REDACTED);
        let _ = url.set_password(Some(REDACTED));
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        let redacted = redact_query_string(query, redact_query);
        url.set_query(Some(&redacted));
    }
    url.into()
}

fn redact_query_string(query: &str, all: bool) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if all || is_secret_query_key(key) => {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out
}

fn is_secret_query_key(key: &str) -> bool {
    let key = percent_decode_lossy(key);
    flowtrace_contract::mask::Masker::default().is_secret_key(&key)
        || SIGNATURE_QUERY_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn query_values_and_credentials_are_redacted() {
        assert_eq!(
            redact_url(&url("https://ada:hunter2@api.example.com:8443/posts/1?q=rust&page=2&flag#frag"), true),
            "https://REDACTED:REDACTED@api.example.com:8443/posts/1?q=REDACTED&page=REDACTED&flag"
        );
        assert_eq!(redact_url(&url("http://example.com/a/b"), true), "http://example.com/a/b");
        assert_eq!(redact_url(&url("http://example.com/a?#f"), true), "http://example.com/a");
        assert_eq!(redact_url(&url("http://example.com/a?x=1#f?y=2"), true), "http://example.com/a?x=REDACTED");
        assert_eq!(redact_url(&url("http://example.com/a%3Fb?c=d"), true), "http://example.com/a%3Fb?c=REDACTED");
    }

    #[test]
    fn without_query_redaction_secret_values_still_go() {
        let redacted = redact_url(
            &url("https://s3.example.com/o?X-Amz-Signature=abc&api_key=k&access%5Ftoken=t&sig=s&q=rust"),
            false,
        );
        assert_eq!(
            redacted,
            "https://s3.example.com/o?X-Amz-Signature=REDACTED&api_key=REDACTED&access%5Ftoken=REDACTED&sig=REDACTED&q=rust"
        );
    }

    #[test]
    fn json_bodies_are_masked_at_any_depth() {
        let masker = Masker::new(None);
        let body = br#"{"user":"ada","Password":"hunter2","nested":{"apiKey":"k1","list":[{"client_secret":"s3"}]},"inner":"{\"token\":\"t0\"}"}"#;
        let rendered = masker.render_body(body, Some("application/json"), 10_000);
        for secret in ["hunter2", "k1", "s3", "t0"] {
            assert!(!rendered.contains(secret), "{secret} leaked: {rendered}");
        }
        assert!(rendered.contains("ada"), "{rendered}");
    }

    #[test]
    fn form_bodies_and_user_patterns_are_masked() {
        let masker = Masker::new(Some("^ssn$"));
        let rendered = masker.render_body(
            b"grant_type=client_credentials&client%5Fsecret=s3&password=p&ssn=123&name=x",
            Some("application/x-www-form-urlencoded"),
            10_000,
        );
        assert_eq!(rendered, "grant_type=client_credentials&client%5Fsecret=****&password=****&ssn=****&name=x");
    }

    #[test]
    fn binary_bodies_are_not_captured_and_text_is_truncated() {
        let masker = Masker::new(None);
        assert_eq!(masker.render_body(&[0xff, 0xfe, 0x00], None, 100), "[binary body of 3 bytes not captured]");
        let rendered = masker.render_body("ééééééééé".as_bytes(), Some("text/plain"), 5);
        assert!(rendered.starts_with("éé…[truncated"), "{rendered}");
    }

    #[test]
    fn percent_decoding_never_panics() {
        for text in ["%", "%4", "%zz", "a%41", "+%", "%%%", "é%"] {
            let _ = percent_decode_lossy(text);
        }
        assert_eq!(percent_decode_lossy("a%41+b"), "aA b");
    }
}
