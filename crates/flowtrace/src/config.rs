//! flowtrace's own settings (`FLOWTRACE_*`), read once at start-up.
//!
//! A bad value never fails anything: it produces one warning and the default. Parsing is a
//! pure function over a lookup, so tests never touch the process environment.

use std::str::FromStr;
use std::time::Duration;

/// Where the invocation span's parent may come from when the event carries no context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XrayParent {
    /// Use the X-Ray trace header (`_X_AMZN_TRACE_ID` / the invocation's trace id) only when
    /// the event carried no context. The default.
    #[default]
    Fallback,
    /// Never use the X-Ray header as a parent.
    Ignore,
}

impl FromStr for XrayParent {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fallback" => Ok(Self::Fallback),
            "ignore" | "never" | "off" => Ok(Self::Ignore),
            _ => Err(()),
        }
    }
}

/// flowtrace's settings. Every field has a documented default (see the README).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `FLOWTRACE_ENABLED`: when false the wrapper only runs the handler. Default true.
    pub enabled: bool,
    /// `FLOWTRACE_CAPTURE_PAYLOADS`: record event and response payloads. Default false.
    pub capture_payloads: bool,
    /// `FLOWTRACE_CAPTURE_MAX_BYTES`: truncate captured payloads to this size. Default 4096.
    pub capture_max_bytes: usize,
    /// `FLOWTRACE_MASK_PATTERN`: extra key pattern (a regex, case-insensitive) whose values
    /// are masked in captured payloads, beside the built-in secret names.
    pub mask_pattern: Option<String>,
    /// `FLOWTRACE_XRAY_PARENT`: `fallback` (default) or `ignore`.
    pub xray_parent: XrayParent,
    /// `FLOWTRACE_TIMEOUT_MARGIN_MS`: the timeout guard fires this long before the deadline.
    /// 0 disables it. Default 100 ms.
    pub timeout_margin: Duration,
    /// `FLOWTRACE_RESERVED_KEY`: the key carrying context in Kinesis data, DynamoDB items
    /// and EventBridge detail. Default `_flowtrace`.
    pub reserved_key: String,
    /// `FLOWTRACE_FLUSH_TIMEOUT_MS`: the longest a hand-off may take. Default 2000 ms.
    pub flush_timeout: Duration,
    /// `FLOWTRACE_BUFFER_MAX_BYTES`: bound on spans waiting for hand-off; past it the oldest
    /// are dropped and counted. Default 4 MiB.
    pub buffer_max_bytes: usize,
    /// `FLOWTRACE_EXTENSION_ENDPOINT`: the flowtrace extension's loopback endpoint. Default
    /// `http://127.0.0.1:4318`, used when the layer is attached.
    pub extension_endpoint: String,
    /// `FLOWTRACE_PROACTIVE_INIT_MS`: a first invocation arriving longer than this after
    /// init is not a cold start (Lambda initialised the environment ahead of time). Default
    /// 10000 ms.
    pub proactive_init_threshold: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            capture_payloads: false,
            capture_max_bytes: 4096,
            mask_pattern: None,
            xray_parent: XrayParent::Fallback,
            timeout_margin: Duration::from_millis(100),
            reserved_key: flowtrace_contract::DEFAULT_RESERVED_KEY.to_owned(),
            flush_timeout: Duration::from_millis(2000),
            buffer_max_bytes: 4 * 1024 * 1024,
            extension_endpoint: format!("http://127.0.0.1:{}", flowtrace_contract::EXTENSION_OTLP_PORT),
            proactive_init_threshold: Duration::from_secs(10),
        }
    }
}

/// A setting whose value could not be used; the default was taken instead.
pub use flowtrace_contract::ConfigWarning;

impl Config {
    /// Reads the settings from the process environment, logging one line per bad value.
    pub fn from_env() -> Self {
        let (config, warnings) = Self::from_lookup(|name| std::env::var(name).ok());
        for warning in warnings {
            tracing::warn!(target: "flowtrace", "{warning}");
        }
        config
    }

    /// Reads the settings through `lookup`, returning the warnings instead of logging them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<ConfigWarning>) {
        let mut reader = Reader { lookup, warnings: Vec::new() };
        let defaults = Self::default();
        let mask_pattern = reader.raw("FLOWTRACE_MASK_PATTERN").filter(|p| !p.trim().is_empty()).and_then(|pattern| {
            match regex_lite::Regex::new(&pattern) {
                Ok(_) => Some(pattern),
                Err(_) => {
                    reader.warn("FLOWTRACE_MASK_PATTERN", pattern, "a valid regular expression");
                    None
                }
            }
        });
        let reserved_key = reader
            .raw("FLOWTRACE_RESERVED_KEY")
            .and_then(|key| {
                let valid = !key.is_empty()
                    && key.len() <= 64
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if valid {
                    Some(key)
                } else {
                    reader.warn("FLOWTRACE_RESERVED_KEY", key, "1 to 64 characters of [A-Za-z0-9_-]");
                    None
                }
            })
            .unwrap_or(defaults.reserved_key);
        let config = Self {
            enabled: reader.parse_bool("FLOWTRACE_ENABLED", defaults.enabled),
            capture_payloads: reader.parse_bool("FLOWTRACE_CAPTURE_PAYLOADS", defaults.capture_payloads),
            capture_max_bytes: reader.parse(
                "FLOWTRACE_CAPTURE_MAX_BYTES",
                defaults.capture_max_bytes,
                "a number of bytes",
            ),
            mask_pattern,
            xray_parent: reader.parse("FLOWTRACE_XRAY_PARENT", defaults.xray_parent, "`fallback` or `ignore`"),
            timeout_margin: reader.parse_millis("FLOWTRACE_TIMEOUT_MARGIN_MS", defaults.timeout_margin),
            reserved_key,
            flush_timeout: reader.parse_millis("FLOWTRACE_FLUSH_TIMEOUT_MS", defaults.flush_timeout),
            buffer_max_bytes: reader.parse(
                "FLOWTRACE_BUFFER_MAX_BYTES",
                defaults.buffer_max_bytes,
                "a number of bytes",
            ),
            extension_endpoint: reader
                .raw("FLOWTRACE_EXTENSION_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_owned())
                .unwrap_or(defaults.extension_endpoint),
            proactive_init_threshold: reader
                .parse_millis("FLOWTRACE_PROACTIVE_INIT_MS", defaults.proactive_init_threshold),
        };
        (config, reader.warnings)
    }
}

struct Reader<L> {
    lookup: L,
    warnings: Vec<ConfigWarning>,
}

impl<L: Fn(&str) -> Option<String>> Reader<L> {
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn warn(&mut self, name: &'static str, value: String, expected: &'static str) {
        self.warnings.push(ConfigWarning { name, value, expected });
    }

    fn parse<T: FromStr>(&mut self, name: &'static str, default: T, expected: &'static str) -> T {
        match self.raw(name) {
            None => default,
            Some(value) => match value.trim().parse() {
                Ok(parsed) => parsed,
                Err(_) => {
                    self.warn(name, value, expected);
                    default
                }
            },
        }
    }

    fn parse_bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.raw(name) {
            None => default,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    self.warn(name, value, "true or false");
                    default
                }
            },
        }
    }

    fn parse_millis(&mut self, name: &'static str, default: Duration) -> Duration {
        let millis = self.parse(name, u64::MAX, "a number of milliseconds");
        if millis == u64::MAX { default } else { Duration::from_millis(millis) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> (Config, Vec<ConfigWarning>) {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn empty_environment_gives_documented_defaults() {
        let (config, warnings) = read(&[]);
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
        assert!(!config.capture_payloads);
        assert_eq!(config.reserved_key, "_flowtrace");
        assert_eq!(config.timeout_margin, Duration::from_millis(100));
    }

    #[test]
    fn valid_values_are_taken() {
        let (config, warnings) = read(&[
            ("FLOWTRACE_ENABLED", "false"),
            ("FLOWTRACE_CAPTURE_PAYLOADS", "1"),
            ("FLOWTRACE_CAPTURE_MAX_BYTES", "128"),
            ("FLOWTRACE_MASK_PATTERN", "^ssn$"),
            ("FLOWTRACE_XRAY_PARENT", "IGNORE"),
            ("FLOWTRACE_TIMEOUT_MARGIN_MS", "0"),
            ("FLOWTRACE_RESERVED_KEY", "_trace"),
            ("FLOWTRACE_EXTENSION_ENDPOINT", "http://127.0.0.1:9999/"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!config.enabled);
        assert!(config.capture_payloads);
        assert_eq!(config.capture_max_bytes, 128);
        assert_eq!(config.mask_pattern.as_deref(), Some("^ssn$"));
        assert_eq!(config.xray_parent, XrayParent::Ignore);
        assert_eq!(config.timeout_margin, Duration::ZERO);
        assert_eq!(config.reserved_key, "_trace");
        assert_eq!(config.extension_endpoint, "http://127.0.0.1:9999");
    }

    #[test]
    fn each_bad_value_gives_one_warning_and_the_default() {
        let (config, warnings) = read(&[
            ("FLOWTRACE_ENABLED", "maybe"),
            ("FLOWTRACE_CAPTURE_MAX_BYTES", "-4"),
            ("FLOWTRACE_MASK_PATTERN", "(unclosed"),
            ("FLOWTRACE_XRAY_PARENT", "sometimes"),
            ("FLOWTRACE_TIMEOUT_MARGIN_MS", "soon"),
            ("FLOWTRACE_RESERVED_KEY", "has space"),
        ]);
        assert_eq!(config, Config::default());
        let names: Vec<&str> = warnings.iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "FLOWTRACE_MASK_PATTERN",
                "FLOWTRACE_RESERVED_KEY",
                "FLOWTRACE_ENABLED",
                "FLOWTRACE_CAPTURE_MAX_BYTES",
                "FLOWTRACE_XRAY_PARENT",
                "FLOWTRACE_TIMEOUT_MARGIN_MS",
            ]
        );
        let line = warnings[0].to_string();
        assert!(line.contains("FLOWTRACE_MASK_PATTERN") && line.contains("using the default"), "{line}");
    }
}
