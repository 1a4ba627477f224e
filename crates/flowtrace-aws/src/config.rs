//! What flowtrace-aws injects where: per-service switches, the reserved key, DynamoDB table
//! allow/deny lists and key schemas. Built with [`Config::builder`], or read once from the
//! environment ([`Config::from_env`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The longest reserved key accepted (DynamoDB attribute names may be longer, but a key this
/// long is surely a mistake).
const MAX_RESERVED_KEY_LEN: usize = 64;

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The reserved key is empty, too long, or has characters other than ASCII letters,
    /// digits, `_`, `-` and `.`.
    #[error("invalid reserved key {0:?}: use 1-64 ASCII letters, digits, '_', '-' or '.'")]
    InvalidReservedKey(String),
    /// A boolean setting that is not `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`).
    #[error("invalid boolean {value:?} for {name}")]
    InvalidBool {
        /// The setting.
        name: String,
        /// The value given.
        value: String,
    },
    /// A DynamoDB key schema list that is not `Table=pk[,sk];Other=id`.
    #[error("invalid DynamoDB key schema {0:?}: expected `Table=pk[,sk];Other=id`")]
    InvalidKeySchema(String),
}

/// The AWS services flowtrace-aws can inject trace context into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// SNS `Publish` / `PublishBatch`: message attributes.
    Sns,
    /// SQS `SendMessage` / `SendMessageBatch`: message attributes and `AWSTraceHeader`.
    Sqs,
    /// Kinesis `PutRecord` / `PutRecords`: the reserved key in JSON-object data.
    Kinesis,
    /// DynamoDB `PutItem`, `UpdateItem`, `BatchWriteItem`, `TransactWriteItems`: the reserved
    /// attribute.
    DynamoDb,
    /// EventBridge `PutEvents`: the reserved key in `Detail`, and `TraceHeader`.
    EventBridge,
    /// Lambda `Invoke`: `ClientContext.custom`.
    Lambda,
}

impl Service {
    const ALL: [Service; 6] =
        [Service::Sns, Service::Sqs, Service::Kinesis, Service::DynamoDb, Service::EventBridge, Service::Lambda];

    fn index(self) -> usize {
        match self {
            Service::Sns => 0,
            Service::Sqs => 1,
            Service::Kinesis => 2,
            Service::DynamoDb => 3,
            Service::EventBridge => 4,
            Service::Lambda => 5,
        }
    }

    fn env_suffix(self) -> &'static str {
        match self {
            Service::Sns => "SNS",
            Service::Sqs => "SQS",
            Service::Kinesis => "KINESIS",
            Service::DynamoDb => "DYNAMODB",
            Service::EventBridge => "EVENTBRIDGE",
            Service::Lambda => "LAMBDA",
        }
    }
}

/// flowtrace-aws settings. Cheap to clone (shared).
///
/// | variable | default | effect |
/// | --- | --- | --- |
/// | `FLOWTRACE_AWS_INJECT` | `true` | `false` turns injection off for every service (spans stay) |
/// | `FLOWTRACE_AWS_INJECT_SNS`, `_SQS`, `_KINESIS`, `_DYNAMODB`, `_EVENTBRIDGE`, `_LAMBDA` | `true` | per-service injection |
/// | `FLOWTRACE_RESERVED_KEY` | `_flowtrace` | the key in Kinesis data, DynamoDB items, EventBridge detail (shared with the wrapper) |
/// | `FLOWTRACE_AWS_DYNAMODB_TABLES_ALLOW` | all tables | comma-separated table names (a trailing `*` matches a prefix) to inject into |
/// | `FLOWTRACE_AWS_DYNAMODB_TABLES_DENY` | none | tables never to inject into (wins over allow) |
/// | `FLOWTRACE_AWS_DYNAMODB_KEYS` | learned | key attributes per table, `Posts=pk,sk;Users=id`, for the item key hash of `PutItem` |
#[derive(Debug, Clone)]
pub struct Config {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    inject: [bool; 6],
    reserved_key: String,
    tables_allow: Option<Vec<String>>,
    tables_deny: Vec<String>,
    key_schemas: HashMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                inject: [true; 6],
                reserved_key: flowtrace_contract::DEFAULT_RESERVED_KEY.to_owned(),
                tables_allow: None,
                tables_deny: Vec::new(),
                key_schemas: HashMap::new(),
            }),
        }
    }
}

impl Config {
    /// A builder starting from the defaults (injection everywhere, key `_flowtrace`).
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { inner: Config::default().inner.as_ref().clone() }
    }

    /// The configuration from the `FLOWTRACE_AWS_*` variables (and `FLOWTRACE_RESERVED_KEY`),
    /// read once per process. A bad value logs one line and uses the default.
    pub fn from_env() -> Config {
        static FROM_ENV: OnceLock<Config> = OnceLock::new();
        FROM_ENV.get_or_init(|| Self::from_lookup(|name| std::env::var(name).ok())).clone()
    }

    /// [`Config::from_env`] over any variable lookup (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mut builder = Config::builder();
        let warn = |error: ConfigError| {
            tracing::warn!(target: "flowtrace", "flowtrace-aws: {error}; using the default");
        };
        let all = match lookup("FLOWTRACE_AWS_INJECT") {
            Some(value) => parse_bool("FLOWTRACE_AWS_INJECT", &value).unwrap_or_else(|error| {
                warn(error);
                true
            }),
            None => true,
        };
        for service in Service::ALL {
            let name = format!("FLOWTRACE_AWS_INJECT_{}", service.env_suffix());
            let on = match lookup(&name) {
                Some(value) => parse_bool(&name, &value).unwrap_or_else(|error| {
                    warn(error);
                    true
                }),
                None => true,
            };
            builder = builder.inject(service, all && on);
        }
        if let Some(key) = lookup("FLOWTRACE_RESERVED_KEY") {
            match validate_reserved_key(key.trim()) {
                Ok(()) => builder.inner.reserved_key = key.trim().to_owned(),
                Err(error) => warn(error),
            }
        }
        if let Some(allow) = lookup("FLOWTRACE_AWS_DYNAMODB_TABLES_ALLOW") {
            builder.inner.tables_allow = Some(split_list(&allow));
        }
        if let Some(deny) = lookup("FLOWTRACE_AWS_DYNAMODB_TABLES_DENY") {
            builder.inner.tables_deny = split_list(&deny);
        }
        if let Some(keys) = lookup("FLOWTRACE_AWS_DYNAMODB_KEYS") {
            match parse_key_schemas(&keys) {
                Ok(schemas) => builder.inner.key_schemas = schemas,
                Err(error) => warn(error),
            }
        }
        Config { inner: Arc::new(builder.inner) }
    }

    /// Whether context is injected into calls to `service`.
    pub fn injects(&self, service: Service) -> bool {
        self.inner.inject.get(service.index()).copied().unwrap_or(false)
    }

    /// The reserved key carrying context in Kinesis data, DynamoDB items and EventBridge
    /// detail.
    pub fn reserved_key(&self) -> &str {
        &self.inner.reserved_key
    }

    /// Whether context may be injected into items of DynamoDB table `table` (a name or ARN).
    pub fn injects_into_table(&self, table: &str) -> bool {
        let table = table_name(table);
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => table.starts_with(prefix),
            None => pattern == table,
        };
        if self.inner.tables_deny.iter().any(matches) {
            return false;
        }
        self.inner.tables_allow.as_ref().is_none_or(|allow| allow.iter().any(matches))
    }

    /// The configured key attribute names of `table`, if any.
    pub fn key_schema(&self, table: &str) -> Option<&[String]> {
        self.inner.key_schemas.get(table_name(table)).map(Vec::as_slice)
    }
}

/// Builds a [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    inner: Inner,
}

impl ConfigBuilder {
    /// Turns injection into `service`'s calls on or off (spans are recorded either way).
    pub fn inject(mut self, service: Service, on: bool) -> Self {
        if let Some(slot) = self.inner.inject.get_mut(service.index()) {
            *slot = on;
        }
        self
    }

    /// Turns injection off for every service.
    pub fn inject_none(mut self) -> Self {
        self.inner.inject = [false; 6];
        self
    }

    /// The reserved key (default `_flowtrace`). It must match the consumers' (the wrapper's
    /// `FLOWTRACE_RESERVED_KEY`).
    pub fn reserved_key(mut self, key: impl Into<String>) -> Self {
        self.inner.reserved_key = key.into();
        self
    }

    /// Injects only into these DynamoDB tables (a trailing `*` matches a prefix).
    pub fn dynamodb_tables_allow<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.inner.tables_allow = Some(tables.into_iter().map(Into::into).collect());
        self
    }

    /// Never injects into these DynamoDB tables (a trailing `*` matches a prefix). Wins over
    /// the allow list.
    pub fn dynamodb_tables_deny<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.inner.tables_deny = tables.into_iter().map(Into::into).collect();
        self
    }

    /// The key attributes of `table` (partition key, then sort key), so that `PutItem` spans
    /// get the item key hash without the table's schema having been seen.
    pub fn dynamodb_key_schema<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        table: impl Into<String>,
        key_attributes: I,
    ) -> Self {
        self.inner.key_schemas.insert(table.into(), key_attributes.into_iter().map(Into::into).collect());
        self
    }

    /// The configuration, or why it cannot be used.
    pub fn build(self) -> Result<Config, ConfigError> {
        validate_reserved_key(&self.inner.reserved_key)?;
        Ok(Config { inner: Arc::new(self.inner) })
    }
}

fn validate_reserved_key(key: &str) -> Result<(), ConfigError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_RESERVED_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid { Ok(()) } else { Err(ConfigError::InvalidReservedKey(key.to_owned())) }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::InvalidBool { name: name.to_owned(), value: value.to_owned() }),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn parse_key_schemas(value: &str) -> Result<HashMap<String, Vec<String>>, ConfigError> {
    let mut schemas = HashMap::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (table, keys) = entry.split_once('=').ok_or_else(|| ConfigError::InvalidKeySchema(value.to_owned()))?;
        let keys = split_list(keys);
        if table.trim().is_empty() || keys.is_empty() || keys.len() > 2 {
            return Err(ConfigError::InvalidKeySchema(value.to_owned()));
        }
        schemas.insert(table.trim().to_owned(), keys);
    }
    Ok(schemas)
}

/// `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME[/...]` → `NAME`; a name stays as it is.
pub(crate) fn table_name(table: &str) -> &str {
    // A plain name (the common case) is returned without searching it.
    if !table.starts_with("arn:") {
        return table;
    }
    match table.split_once(":table/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => rest.split('/').next().unwrap_or(rest),
        _ => table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_inject_everywhere() {
        let config = Config::from_lookup(env(&[]));
        assert!(Service::ALL.iter().all(|s| config.injects(*s)));
        assert_eq!(config.reserved_key(), "_flowtrace");
        assert!(config.injects_into_table("Posts"));
    }

    #[test]
    fn env_switches_lists_and_bad_values_fall_back() {
        let config = Config::from_lookup(env(&[
            ("FLOWTRACE_AWS_INJECT_SQS", "false"),
            ("FLOWTRACE_AWS_INJECT_SNS", "maybe"),
            ("FLOWTRACE_RESERVED_KEY", "bad key!"),
            ("FLOWTRACE_AWS_DYNAMODB_TABLES_ALLOW", "Posts, Audit*"),
            ("FLOWTRACE_AWS_DYNAMODB_TABLES_DENY", "AuditSecret"),
            ("FLOWTRACE_AWS_DYNAMODB_KEYS", "Posts=pk,sk;Users=id"),
        ]));
        assert!(!config.injects(Service::Sqs));
        assert!(config.injects(Service::Sns), "a bad boolean keeps the default");
        assert_eq!(config.reserved_key(), "_flowtrace", "a bad key keeps the default");
        assert!(config.injects_into_table("Posts"));
        assert!(config.injects_into_table("arn:aws:dynamodb:us-east-1:1:table/AuditLog"));
        assert!(!config.injects_into_table("AuditSecret"));
        assert!(!config.injects_into_table("Other"));
        assert_eq!(config.key_schema("Posts"), Some(&["pk".to_owned(), "sk".to_owned()][..]));

        let off = Config::from_lookup(env(&[("FLOWTRACE_AWS_INJECT", "off"), ("FLOWTRACE_RESERVED_KEY", "_t")]));
        assert!(!off.injects(Service::Lambda));
        assert_eq!(off.reserved_key(), "_t");
    }

    #[test]
    fn builder_validates_the_reserved_key() {
        assert!(Config::builder().reserved_key("").build().is_err());
        assert!(Config::builder().reserved_key("has space").build().is_err());
        let config = Config::builder().reserved_key("_trace").inject(Service::Kinesis, false).build().unwrap();
        assert!(!config.injects(Service::Kinesis));
        assert!(config.injects(Service::Sqs));
    }
}
