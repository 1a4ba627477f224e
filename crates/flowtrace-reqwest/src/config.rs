//! The HTTP client's settings (`FLOWTRACE_HTTP_*`), read once per process.
//!
//! A bad value never fails anything: it produces one warning and the default. Parsing is a
//! pure function over a lookup, so tests never touch the process environment.

use std::fmt;
use std::sync::OnceLock;

/// A host pattern in an allow, deny, skip or peer-service list.
///
/// - `*` matches every host;
/// - `*.example.com` matches every subdomain of `example.com` (not `example.com` itself);
/// - `host:port` matches that host on that port only;
/// - anything else matches that host exactly (case-insensitively), on any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(Pattern);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Suffix(String),
    Exact(String),
    Authority(String, u16),
}

impl HostPattern {
    /// Parses a pattern; `None` for an empty one or a `host:port` whose port is not a number.
    pub fn parse(pattern: &str) -> Option<Self> {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern.is_empty() {
            return None;
        }
        if pattern == "*" {
            return Some(Self(Pattern::Any));
        }
        if let Some(rest) = pattern.strip_prefix("*.") {
            return (!rest.is_empty()).then(|| Self(Pattern::Suffix(format!(".{rest}"))));
        }
        // `[::1]:8080`, `127.0.0.1:9001`, `localhost:4318`; a bare IPv6 address has no port.
        if let Some((host, port)) = pattern.rsplit_once(':')
            && (!host.contains(':') || host.ends_with(']'))
        {
            let port = port.parse().ok()?;
            return Some(Self(Pattern::Authority(host.to_owned(), port)));
        }
        Some(Self(Pattern::Exact(pattern)))
    }

    /// Whether `host` (lowercase, as a URL gives it) on `port` matches.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        match &self.0 {
            Pattern::Any => true,
            Pattern::Suffix(suffix) => host.len() > suffix.len() && ends_with_ignore_case(host, suffix),
            Pattern::Exact(exact) => host.eq_ignore_ascii_case(exact),
            Pattern::Authority(exact, p) => Some(*p) == port && host.eq_ignore_ascii_case(exact),
        }
    }
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len() && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Pattern::Any => f.write_str("*"),
            Pattern::Suffix(suffix) => write!(f, "*{suffix}"),
            Pattern::Exact(host) => f.write_str(host),
            Pattern::Authority(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// Readable `peer.service` names for well-known third-party APIs, used after the user's own
/// entries. First match wins.
pub const DEFAULT_PEER_SERVICES: &[(&str, &str)] = &[
    ("api.stripe.com", "stripe"),
    ("api.twilio.com", "twilio"),
    ("verify.twilio.com", "twilio"),
    ("api.sendgrid.com", "sendgrid"),
    ("api.mailgun.net", "mailgun"),
    ("api.eu.mailgun.net", "mailgun"),
    ("api.postmarkapp.com", "postmark"),
    ("api.resend.com", "resend"),
    ("rest.nexmo.com", "vonage"),
    ("api.nexmo.com", "vonage"),
    ("api.paypal.com", "paypal"),
    ("api-m.paypal.com", "paypal"),
    ("api-m.sandbox.paypal.com", "paypal"),
    ("connect.squareup.com", "square"),
    ("api.braintreegateway.com", "braintree"),
    ("*.adyen.com", "adyen"),
    ("api.openai.com", "openai"),
    ("api.anthropic.com", "anthropic"),
    ("api.github.com", "github"),
    ("gitlab.com", "gitlab"),
    ("hooks.slack.com", "slack"),
    ("slack.com", "slack"),
    ("discord.com", "discord"),
    ("api.pagerduty.com", "pagerduty"),
    ("events.pagerduty.com", "pagerduty"),
    ("*.sentry.io", "sentry"),
    ("api.segment.io", "segment"),
    ("api.hubapi.com", "hubspot"),
    ("*.salesforce.com", "salesforce"),
    ("*.myshopify.com", "shopify"),
    ("*.algolia.net", "algolia"),
    ("api.mapbox.com", "mapbox"),
    ("graph.microsoft.com", "microsoft-graph"),
    ("login.microsoftonline.com", "microsoft-identity"),
    ("fcm.googleapis.com", "firebase-cloud-messaging"),
    ("oauth2.googleapis.com", "google-oauth"),
    ("*.googleapis.com", "google-apis"),
    ("*.auth0.com", "auth0"),
    ("*.okta.com", "okta"),
    ("api.cloudflare.com", "cloudflare"),
];

/// The HTTP client's settings. Every field has a documented default (see the crate README).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// `FLOWTRACE_HTTP_ENABLED`: when false, requests pass through untouched. Default true.
    pub enabled: bool,
    /// `FLOWTRACE_HTTP_PROPAGATE_ALLOW`: inject context only into these hosts. `None` (the
    /// default) means every host not denied.
    pub propagate_allow: Option<Vec<HostPattern>>,
    /// `FLOWTRACE_HTTP_PROPAGATE_DENY`: never inject context into these hosts (wins over the
    /// allow list). Default empty.
    pub propagate_deny: Vec<HostPattern>,
    /// `FLOWTRACE_HTTP_PEER_SERVICES`: `peer.service` names by host, tried before
    /// [`DEFAULT_PEER_SERVICES`].
    pub peer_services: Vec<(HostPattern, String)>,
    /// `FLOWTRACE_HTTP_REDACT_QUERY`: replace every query value in `url.full` with
    /// `REDACTED`. Default true. Values under secret-looking keys are redacted either way.
    pub redact_query: bool,
    /// `FLOWTRACE_HTTP_CAPTURE_BODIES`: record request and response bodies, masked and
    /// truncated. Default false.
    pub capture_bodies: bool,
    /// `FLOWTRACE_HTTP_CAPTURE_MAX_BYTES`: truncate captured bodies to this size. Default 4096.
    pub capture_max_bytes: usize,
    /// `FLOWTRACE_HTTP_MASK_PATTERN` (else `FLOWTRACE_MASK_PATTERN`): extra key pattern (a
    /// regex, case-insensitive) whose values are masked in captured bodies.
    pub mask_pattern: Option<String>,
    /// Hosts whose requests are never traced: the Lambda Runtime API
    /// (`AWS_LAMBDA_RUNTIME_API`), the flowtrace extension (`FLOWTRACE_EXTENSION_ENDPOINT`,
    /// default `127.0.0.1:4318` and `localhost:4318`), plus `FLOWTRACE_HTTP_SKIP`.
    pub skip: Vec<HostPattern>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            propagate_allow: None,
            propagate_deny: Vec::new(),
            peer_services: Vec::new(),
            redact_query: true,
            capture_bodies: false,
            capture_max_bytes: 4096,
            mask_pattern: None,
            skip: default_skip(None, None),
        }
    }
}

fn default_skip(runtime_api: Option<&str>, extension_endpoint: Option<&str>) -> Vec<HostPattern> {
    let port = flowtrace_contract::EXTENSION_OTLP_PORT;
    let mut skip: Vec<HostPattern> = match extension_endpoint.and_then(authority_of) {
        Some(authority) => HostPattern::parse(&authority).into_iter().collect(),
        None => [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
            .iter()
            .filter_map(|p| HostPattern::parse(p))
            .collect(),
    };
    if let Some(runtime) = runtime_api.and_then(|r| HostPattern::parse(r.trim_end_matches('/'))) {
        skip.push(runtime);
    }
    skip
}

/// `host:port` of an endpoint URL such as `http://127.0.0.1:4318/`.
fn authority_of(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint.trim()).ok()?;
    Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?))
}

/// Logs one configuration warning: through `tracing` once a subscriber is set (flowtrace
/// sets one), else on stderr, which Lambda sends to CloudWatch Logs too, so it is never lost
/// when the client is built before the subscriber.
pub(crate) fn log_warning(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "flowtrace", "{message}");
    } else {
        eprintln!("{message}");
    }
}

/// A setting whose value could not be used; the default was taken instead.
pub use flowtrace_contract::ConfigWarning;

impl HttpConfig {
    /// The settings from the process environment, read once per process; the first call
    /// logs one line per bad value.
    pub fn from_env() -> Self {
        static ENV: OnceLock<HttpConfig> = OnceLock::new();
        ENV.get_or_init(|| {
            let (config, warnings) = Self::from_lookup(|name| std::env::var(name).ok());
            for warning in warnings {
                log_warning(&warning.to_string());
            }
            config
        })
        .clone()
    }

    /// Reads the settings through `lookup`, returning the warnings instead of logging them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<ConfigWarning>) {
        let mut warnings = Vec::new();
        let defaults = Self::default();
        let mut warn = |name: &'static str, value: &str, expected: &'static str| {
            warnings.push(ConfigWarning { name, value: value.to_owned(), expected });
        };

        let mut bool_var = |name: &'static str, default: bool| match lookup(name) {
            None => default,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "" => default,
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    warn(name, &value, "true or false");
                    default
                }
            },
        };
        let enabled = bool_var("FLOWTRACE_HTTP_ENABLED", defaults.enabled);
        let redact_query = bool_var("FLOWTRACE_HTTP_REDACT_QUERY", defaults.redact_query);
        let capture_bodies = bool_var("FLOWTRACE_HTTP_CAPTURE_BODIES", defaults.capture_bodies);

        let mut warn = |name: &'static str, value: &str, expected: &'static str| {
            warnings.push(ConfigWarning { name, value: value.to_owned(), expected });
        };
        let capture_max_bytes = match lookup("FLOWTRACE_HTTP_CAPTURE_MAX_BYTES") {
            None => defaults.capture_max_bytes,
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    warn("FLOWTRACE_HTTP_CAPTURE_MAX_BYTES", &value, "a positive number of bytes");
                    defaults.capture_max_bytes
                }
            },
        };
        let mut hosts = |name: &'static str| -> Option<Vec<HostPattern>> {
            let value = lookup(name)?;
            let parsed: Option<Vec<HostPattern>> =
                value.split(',').filter(|p| !p.trim().is_empty()).map(HostPattern::parse).collect();
            if parsed.is_none() {
                warn(
                    name,
                    &value,
                    "a comma-separated list of hosts (`api.example.com`, `*.example.com`, `host:port`, `*`)",
                );
            }
            parsed
        };
        let propagate_allow = hosts("FLOWTRACE_HTTP_PROPAGATE_ALLOW");
        let propagate_deny = hosts("FLOWTRACE_HTTP_PROPAGATE_DENY").unwrap_or_default();
        let extra_skip = hosts("FLOWTRACE_HTTP_SKIP").unwrap_or_default();
        let peer_services = match lookup("FLOWTRACE_HTTP_PEER_SERVICES") {
            None => Vec::new(),
            Some(value) => {
                let parsed: Option<Vec<(HostPattern, String)>> = value
                    .split(',')
                    .filter(|entry| !entry.trim().is_empty())
                    .map(|entry| {
                        let (host, name) = entry.split_once('=')?;
                        let name = name.trim();
                        (!name.is_empty()).then_some(())?;
                        Some((HostPattern::parse(host)?, name.to_owned()))
                    })
                    .collect();
                parsed.unwrap_or_else(|| {
                    warn("FLOWTRACE_HTTP_PEER_SERVICES", &value, "a comma-separated list of host=name");
                    Vec::new()
                })
            }
        };
        let mask_pattern = match lookup("FLOWTRACE_HTTP_MASK_PATTERN").or_else(|| lookup("FLOWTRACE_MASK_PATTERN")) {
            Some(pattern) if !pattern.trim().is_empty() => {
                if regex_lite::Regex::new(&pattern).is_ok() {
                    Some(pattern)
                } else {
                    warn("FLOWTRACE_HTTP_MASK_PATTERN", &pattern, "a valid regular expression");
                    None
                }
            }
            _ => None,
        };
        let mut skip = default_skip(
            lookup("AWS_LAMBDA_RUNTIME_API").as_deref(),
            lookup("FLOWTRACE_EXTENSION_ENDPOINT").as_deref(),
        );
        skip.extend(extra_skip);
        let config = Self {
            enabled,
            propagate_allow,
            propagate_deny,
            peer_services,
            redact_query,
            capture_bodies,
            capture_max_bytes,
            mask_pattern,
            skip,
        };
        (config, warnings)
    }

    /// Whether requests to `host:port` are never traced.
    pub fn is_skipped(&self, host: &str, port: Option<u16>) -> bool {
        self.skip.iter().any(|p| p.matches(host, port))
    }

    /// Whether trace context may be injected into requests to `host:port`.
    pub fn may_propagate_to(&self, host: &str, port: Option<u16>) -> bool {
        let allowed = self.propagate_allow.as_ref().is_none_or(|allow| allow.iter().any(|p| p.matches(host, port)));
        allowed && !self.propagate_deny.iter().any(|p| p.matches(host, port))
    }

    /// The `peer.service` name for `host:port`: the user's entries first, then
    /// [`DEFAULT_PEER_SERVICES`].
    pub fn peer_service(&self, host: &str, port: Option<u16>) -> Option<&str> {
        if let Some((_, name)) = self.peer_services.iter().find(|(p, _)| p.matches(host, port)) {
            return Some(name);
        }
        let defaults = default_peer_services();
        if let Some(name) = defaults.exact.get(host) {
            return Some(name);
        }
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let lower = host.to_ascii_lowercase();
            if let Some(name) = defaults.exact.get(lower.as_str()) {
                return Some(name);
            }
        }
        defaults.wildcard.iter().find(|(p, _)| p.matches(host, port)).map(|(_, name)| *name)
    }
}

/// [`DEFAULT_PEER_SERVICES`], indexed: exact hosts in a map (they win over wildcards), the
/// few wildcard patterns in order.
struct DefaultPeerServices {
    exact: std::collections::HashMap<&'static str, &'static str>,
    wildcard: Vec<(HostPattern, &'static str)>,
}

fn default_peer_services() -> &'static DefaultPeerServices {
    static DEFAULTS: OnceLock<DefaultPeerServices> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let (wildcard, exact): (Vec<_>, Vec<_>) =
            DEFAULT_PEER_SERVICES.iter().partition(|(host, _)| host.contains('*'));
        DefaultPeerServices {
            exact: exact.into_iter().copied().collect(),
            wildcard: wildcard
                .into_iter()
                .filter_map(|(host, name)| Some((HostPattern::parse(host)?, *name)))
                .collect(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_without_variables() {
        let (config, warnings) = HttpConfig::from_lookup(lookup(&[]));
        assert!(warnings.is_empty());
        assert_eq!(config, HttpConfig::default());
        assert!(config.is_skipped("127.0.0.1", Some(4318)));
        assert!(config.is_skipped("localhost", Some(4318)));
        assert!(!config.is_skipped("127.0.0.1", Some(4319)));
        assert!(config.may_propagate_to("api.stripe.com", Some(443)));
        assert_eq!(config.peer_service("api.stripe.com", Some(443)), Some("stripe"));
        assert_eq!(config.peer_service("sheets.googleapis.com", Some(443)), Some("google-apis"));
        assert_eq!(config.peer_service("fcm.googleapis.com", Some(443)), Some("firebase-cloud-messaging"));
        assert_eq!(config.peer_service("API.Stripe.com", Some(443)), Some("stripe"));
        assert_eq!(config.peer_service("example.com", Some(443)), None);
        assert!(DEFAULT_PEER_SERVICES.iter().all(|(host, _)| host.to_ascii_lowercase() == *host));
    }

    #[test]
    fn every_variable_is_read() {
        let (config, warnings) = HttpConfig::from_lookup(lookup(&[
            ("FLOWTRACE_HTTP_ENABLED", "false"),
            ("FLOWTRACE_HTTP_PROPAGATE_ALLOW", "*.internal.example.com, api.example.com"),
            ("FLOWTRACE_HTTP_PROPAGATE_DENY", "legacy.internal.example.com"),
            ("FLOWTRACE_HTTP_PEER_SERVICES", "api.example.com=orders-api,*.payments.example.com=payments"),
            ("FLOWTRACE_HTTP_REDACT_QUERY", "off"),
            ("FLOWTRACE_HTTP_CAPTURE_BODIES", "true"),
            ("FLOWTRACE_HTTP_CAPTURE_MAX_BYTES", "100"),
            ("FLOWTRACE_MASK_PATTERN", "^ssn$"),
            ("FLOWTRACE_HTTP_SKIP", "health.example.com"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("FLOWTRACE_EXTENSION_ENDPOINT", "http://127.0.0.1:7777"),
        ]));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!config.enabled && !config.redact_query && config.capture_bodies);
        assert_eq!(config.capture_max_bytes, 100);
        assert_eq!(config.mask_pattern.as_deref(), Some("^ssn$"));
        assert!(config.may_propagate_to("orders.internal.example.com", Some(443)));
        assert!(config.may_propagate_to("api.example.com", Some(443)));
        assert!(!config.may_propagate_to("legacy.internal.example.com", Some(443)));
        assert!(!config.may_propagate_to("api.stripe.com", Some(443)));
        assert_eq!(config.peer_service("api.example.com", None), Some("orders-api"));
        assert_eq!(config.peer_service("eu.payments.example.com", None), Some("payments"));
        assert!(config.is_skipped("127.0.0.1", Some(9001)));
        assert!(config.is_skipped("127.0.0.1", Some(7777)));
        assert!(!config.is_skipped("127.0.0.1", Some(4318)), "an explicit endpoint replaces the default");
        assert!(config.is_skipped("health.example.com", Some(80)));
    }

    #[test]
    fn bad_values_warn_once_each_and_fall_back() {
        let (config, warnings) = HttpConfig::from_lookup(lookup(&[
            ("FLOWTRACE_HTTP_ENABLED", "maybe"),
            ("FLOWTRACE_HTTP_CAPTURE_MAX_BYTES", "-3"),
            ("FLOWTRACE_HTTP_PEER_SERVICES", "no-equals-sign"),
            ("FLOWTRACE_HTTP_PROPAGATE_DENY", "host:notaport"),
            ("FLOWTRACE_HTTP_MASK_PATTERN", "("),
        ]));
        let names: Vec<&str> = warnings.iter().map(|w| w.name).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(config, HttpConfig::default());
        assert!(warnings[0].to_string().contains("FLOWTRACE_HTTP_ENABLED=\"maybe\""));
    }

    #[test]
    fn host_patterns() {
        let suffix = HostPattern::parse("*.Example.com").unwrap();
        assert!(suffix.matches("a.example.com", None) && suffix.matches("b.a.EXAMPLE.com", Some(1)));
        assert!(!suffix.matches("example.com", None) && !suffix.matches("badexample.com", None));
        let authority = HostPattern::parse("localhost:4318").unwrap();
        assert!(authority.matches("localhost", Some(4318)) && !authority.matches("localhost", Some(80)));
        assert!(HostPattern::parse("*").unwrap().matches("anything", None));
        assert!(HostPattern::parse("[::1]:9001").unwrap().matches("[::1]", Some(9001)));
        assert!(HostPattern::parse("::1").unwrap().matches("::1", None));
        assert_eq!(HostPattern::parse(" "), None);
        assert_eq!(HostPattern::parse("*.x.com").unwrap().to_string(), "*.x.com");
    }
}
