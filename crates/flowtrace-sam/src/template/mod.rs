//! A SAM/CloudFormation template, read into a model of what a local runner needs: functions
//! (with `Globals.Function` merged in) and their event sources, topics, queues, streams,
//! tables, APIs and layers.
//!
//! Parameters, pseudo parameters, conditions and mappings are resolved by the template itself;
//! physical names and attributes of resources come from the caller through [`Physical`].

mod expr;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

pub use expr::Expr;
use resolve::Resolver;
pub use resolve::{NoPhysical, Physical, PhysicalMap, ResolveError};

/// Why a template could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("the template is not valid YAML: {0}")]
    Yaml(String),
    /// Something in the template is not what CloudFormation or SAM accepts.
    #[error("{at}: {message}")]
    Invalid {
        /// Where (`Resources.MyQueue.Properties.VisibilityTimeout`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A value that must be known before any resource exists could not be resolved.
    #[error("{at}: {source}")]
    Resolve {
        /// Where.
        at: String,
        /// Why.
        #[source]
        source: ResolveError,
    },
}

impl TemplateError {
    pub(crate) fn invalid(at: &str, message: impl Into<String>) -> Self {
        Self::Invalid { at: at.to_owned(), message: message.into() }
    }
}

/// Where the stack "runs": the values of the pseudo parameters, and parameter overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account_id: String,
    /// `AWS::StackName`, also the prefix of generated names.
    pub stack_name: String,
    /// `AWS::Partition`.
    pub partition: String,
    /// `AWS::URLSuffix`.
    pub url_suffix: String,
    /// Parameter values that replace the defaults (`--parameter-overrides`).
    pub parameter_overrides: BTreeMap<String, String>,
}

impl Default for Context {
    /// `us-east-1`, account `123456789012` (moto's), stack `flowtrace-local`.
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            stack_name: "flowtrace-local".to_owned(),
            partition: "aws".to_owned(),
            url_suffix: "amazonaws.com".to_owned(),
            parameter_overrides: BTreeMap::new(),
        }
    }
}

/// A template parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// `Type` (`String`, `Number`, `CommaDelimitedList`, ...).
    pub kind: String,
    /// `Default`.
    pub default: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `AllowedValues`.
    pub allowed_values: Vec<String>,
    /// The value in force: the override, else the default.
    pub value: Option<String>,
}

impl Parameter {
    /// Whether `!Ref` gives a list (`CommaDelimitedList`, `List<...>`).
    pub fn is_list(&self) -> bool {
        self.kind == "CommaDelimitedList" || self.kind.starts_with("List<")
    }
}

/// An `AWS::Serverless::Function`, with `Globals.Function` merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The logical id.
    pub logical_id: String,
    /// `FunctionName`, else the logical id.
    pub function_name: String,
    /// `CodeUri` when it is a path.
    pub code_uri: Option<String>,
    /// `Metadata.BuildProperties.Binary`, else `bootstrap`.
    pub binary: String,
    /// `Metadata.BuildMethod` (`rust-cargolambda`).
    pub build_method: Option<String>,
    /// `Handler` (`bootstrap` when not given).
    pub handler: String,
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `Timeout` (3 s by default).
    pub timeout: Duration,
    /// `MemorySize` in MB (128 by default).
    pub memory_mb: u32,
    /// The first of `Architectures` (`x86_64` by default).
    pub architecture: String,
    /// `Environment.Variables`, unresolved (a value may be `!Ref AWS::NoValue`).
    pub environment: BTreeMap<String, Expr>,
    /// `Layers` (the global ones first).
    pub layers: Vec<Expr>,
    /// `Events`.
    pub events: Vec<Event>,
}

/// One entry of a function's `Events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's name (the key under `Events`).
    pub name: String,
    /// What it is.
    pub kind: EventKind,
}

/// The event sources a local runner drives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `HttpApi` (API Gateway HTTP API, payload 2.0).
    HttpApi {
        /// The `AWS::Serverless::HttpApi` logical id of `ApiId`; `None` is the implicit
        /// `ServerlessHttpApi`.
        api: Option<String>,
        /// `Method` (`ANY` when not given; `ANY` matches every method).
        method: String,
        /// `Path` (`$default` when not given: the catch-all route).
        path: String,
    },
    /// `Api` (API Gateway REST API, payload 1.0).
    Api {
        /// `Method` (lower or upper case as written; `any` matches every method).
        method: String,
        /// `Path` (the resource path, `/posts/{id}`).
        path: String,
    },
    /// `SNS`.
    Sns {
        /// `Topic` (an ARN: usually `!Ref Topic`).
        topic: Expr,
        /// `SqsSubscription`: deliver through an SQS queue (true or a map).
        sqs_subscription: bool,
        /// `FilterPolicy`, unresolved (see [`Template::resolve_json`]).
        filter_policy: Option<Expr>,
    },
    /// `SQS`.
    Sqs {
        /// `Queue` (an ARN).
        queue: Expr,
        /// `BatchSize` (10 by default).
        batch_size: u32,
    },
    /// `Kinesis`.
    Kinesis {
        /// `Stream` (an ARN).
        stream: Expr,
        /// `StartingPosition` (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`; `LATEST` by default).
        starting_position: String,
        /// `BatchSize` (100 by default).
        batch_size: u32,
    },
    /// `DynamoDB`.
    DynamoDb {
        /// `Stream` (a stream ARN).
        stream: Expr,
        /// `StartingPosition` (`LATEST` by default).
        starting_position: String,
        /// `BatchSize` (100 by default).
        batch_size: u32,
    },
    /// `Schedule` or `ScheduleV2`.
    Schedule {
        /// `Schedule` / `ScheduleExpression`: `rate(5 minutes)`, `cron(...)`.
        schedule: String,
        /// `Input`: the JSON text delivered instead of the scheduled event.
        input: Option<String>,
        /// `Enabled` / `State` (true by default).
        enabled: bool,
    },
    /// `EventBridgeRule` or `CloudWatchEvent`.
    EventBridgeRule {
        /// `Pattern`, unresolved (see [`Template::resolve_json`]).
        pattern: Expr,
        /// `EventBusName` (the default bus when `None`).
        bus: Option<Expr>,
    },
    /// Any other type: kept, listed in [`Template::warnings`], not driven.
    Other {
        /// The `Type`.
        kind: String,
    },
}

/// An `AWS::SNS::Topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The logical id.
    pub logical_id: String,
    /// `TopicName`, or the generated name.
    pub name: String,
    /// `FifoTopic`.
    pub fifo: bool,
}

/// An `AWS::SQS::Queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// The logical id.
    pub logical_id: String,
    /// `QueueName`, or the generated name (ending in `.fifo` for FIFO queues).
    pub name: String,
    /// `FifoQueue`.
    pub fifo: bool,
    /// `VisibilityTimeout` (30 s by default).
    pub visibility_timeout: Duration,
}

/// How a Kinesis stream is provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// `ShardCount` shards (1 by default).
    Provisioned {
        /// The number of shards.
        shard_count: u32,
    },
    /// `StreamModeDetails.StreamMode: ON_DEMAND`.
    OnDemand,
}

/// An `AWS::Kinesis::Stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The logical id.
    pub logical_id: String,
    /// `Name`, or the generated name.
    pub name: String,
    /// Provisioned or on demand.
    pub mode: StreamMode,
}

/// One `KeySchema` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchemaElement {
    /// `AttributeName`.
    pub attribute_name: String,
    /// `KeyType`: `HASH` or `RANGE`.
    pub key_type: String,
}

/// One `AttributeDefinitions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDefinition {
    /// `AttributeName`.
    pub attribute_name: String,
    /// `AttributeType`: `S`, `N` or `B`.
    pub attribute_type: String,
}

/// An `AWS::DynamoDB::Table` or `AWS::Serverless::SimpleTable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The logical id.
    pub logical_id: String,
    /// `TableName`, or the generated name.
    pub name: String,
    /// `KeySchema`.
    pub key_schema: Vec<KeySchemaElement>,
    /// `AttributeDefinitions`.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// `BillingMode` (`PROVISIONED` by default for tables, `PAY_PER_REQUEST` for simple tables
    /// without `ProvisionedThroughput`).
    pub billing_mode: String,
    /// `StreamSpecification.StreamViewType`: the table has a stream when set.
    pub stream_view_type: Option<String>,
    /// Whether it is an `AWS::Serverless::SimpleTable`.
    pub simple: bool,
}

/// Which kind of API Gateway API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `AWS::Serverless::HttpApi` (payload 2.0).
    Http,
    /// `AWS::Serverless::Api` (REST, payload 1.0).
    Rest,
}

/// An API Gateway API: declared, or implicit (`ServerlessHttpApi`, `ServerlessRestApi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// The logical id.
    pub logical_id: String,
    /// HTTP or REST.
    pub kind: ApiKind,
    /// `StageName` (`$default` for HTTP APIs, `Prod` for REST APIs by default).
    pub stage: String,
    /// Whether SAM creates it implicitly for events without an API id.
    pub implicit: bool,
}

/// An `AWS::Serverless::LayerVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The logical id.
    pub logical_id: String,
    /// `LayerName`, or the logical id.
    pub name: String,
    /// `ContentUri` when it is a path.
    pub content_uri: Option<String>,
}

/// A resource this crate does not model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredResource {
    /// The logical id.
    pub logical_id: String,
    /// The `Type`.
    pub kind: String,
}

/// A SAM template.
#[derive(Debug, Clone)]
pub struct Template {
    /// `Description`.
    pub description: Option<String>,
    /// The pseudo parameter values and overrides it was read with.
    pub context: Context,
    /// `Parameters`, with the values in force.
    pub parameters: BTreeMap<String, Parameter>,
    /// `Conditions`, evaluated.
    pub conditions: BTreeMap<String, bool>,
    /// The functions whose condition (if any) holds.
    pub functions: Vec<Function>,
    /// SNS topics.
    pub topics: Vec<Topic>,
    /// SQS queues.
    pub queues: Vec<Queue>,
    /// Kinesis streams.
    pub streams: Vec<Stream>,
    /// DynamoDB tables.
    pub tables: Vec<Table>,
    /// API Gateway APIs, declared and implicit.
    pub apis: Vec<Api>,
    /// Layers.
    pub layers: Vec<Layer>,
    /// Resources not modelled (and those whose condition is false).
    pub ignored: Vec<IgnoredResource>,
    /// `Outputs`, unresolved.
    pub outputs: BTreeMap<String, Expr>,
    /// Things a local run will not do as AWS would (unknown event types, ...).
    pub warnings: Vec<String>,
    mappings: BTreeMap<String, Expr>,
    /// Logical id → Type, for every resource.
    resource_types: BTreeMap<String, String>,
    /// Logical id → physical name, for named resources.
    names: BTreeMap<String, String>,
}

fn mapping_at<'a>(value: &'a Yaml, at: &str) -> Result<&'a serde_yaml_ng::Mapping, TemplateError> {
    value.as_mapping().ok_or_else(|| TemplateError::invalid(at, "expected a mapping"))
}

/// `section`'s entries as (string key, value).
fn entries<'a>(value: Option<&'a Yaml>, at: &str) -> Result<Vec<(String, &'a Yaml)>, TemplateError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    if value.is_null() {
        return Ok(Vec::new());
    }
    mapping_at(value, at)?
        .iter()
        .map(|(k, v)| {
            expr::scalar_key(k).map(|k| (k, v)).ok_or_else(|| TemplateError::invalid(at, "a key is not a string"))
        })
        .collect()
}

fn exprs(value: Option<&Yaml>, at: &str) -> Result<BTreeMap<String, Expr>, TemplateError> {
    entries(value, at)?.into_iter().map(|(k, v)| Expr::from_yaml(v, &format!("{at}.{k}")).map(|e| (k, e))).collect()
}

fn scalar_string(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A template-reading session: the parts resolution needs, before the model exists.
struct Reader<'a> {
    cx: &'a Context,
    parameters: BTreeMap<String, Parameter>,
    conditions: BTreeMap<String, bool>,
    mappings: BTreeMap<String, Expr>,
    resource_types: BTreeMap<String, String>,
}

impl Reader<'_> {
    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            cx: self.cx,
            parameters: &self.parameters,
            conditions: &self.conditions,
            mappings: &self.mappings,
            resources: &self.resource_types,
            physical: &NoPhysical,
        }
    }

    /// Resolves a value that must be known statically.
    fn string(&self, expr: Option<&Expr>, at: &str) -> Result<Option<String>, TemplateError> {
        let Some(expr) = expr else { return Ok(None) };
        self.resolver().string(expr).map_err(|source| TemplateError::Resolve { at: at.to_owned(), source })
    }

    fn number(&self, expr: Option<&Expr>, at: &str) -> Result<Option<u64>, TemplateError> {
        let Some(text) = self.string(expr, at)? else { return Ok(None) };
        text.trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| TemplateError::invalid(at, format!("{text:?} is not a whole number")))
    }

    fn u32(&self, expr: Option<&Expr>, at: &str) -> Result<Option<u32>, TemplateError> {
        self.number(expr, at)?
            .map(|n| u32::try_from(n).map_err(|_| TemplateError::invalid(at, format!("{n} is too large"))))
            .transpose()
    }

    fn bool(&self, expr: Option<&Expr>, at: &str) -> Result<Option<bool>, TemplateError> {
        match self.string(expr, at)?.as_deref() {
            None => Ok(None),
            Some("true" | "True" | "TRUE") => Ok(Some(true)),
            Some("false" | "False" | "FALSE") => Ok(Some(false)),
            Some(other) => Err(TemplateError::invalid(at, format!("{other:?} is not true or false"))),
        }
    }

    fn evaluate_condition(
        &mut self,
        name: &str,
        raw: &BTreeMap<String, Expr>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<bool, TemplateError> {
        if let Some(done) = self.conditions.get(name) {
            return Ok(*done);
        }
        let at = format!("Conditions.{name}");
        let expr = raw.get(name).ok_or_else(|| TemplateError::Resolve {
            at: at.clone(),
            source: ResolveError::UnknownCondition(name.to_owned()),
        })?;
        if !visiting.insert(name.to_owned()) {
            return Err(TemplateError::Resolve { at, source: ResolveError::TooDeep(format!("condition {name}")) });
        }
        for dependency in expr.condition_names() {
            self.evaluate_condition(&dependency, raw, visiting)?;
        }
        let value = match self.resolver().eval(expr, 0) {
            Ok(resolve::Val::Bool(b)) => b,
            Ok(_) => {
                return Err(TemplateError::invalid(&at, "a condition must be !Equals, !Not, !And, !Or or !Condition"));
            }
            Err(source) => return Err(TemplateError::Resolve { at, source }),
        };
        visiting.remove(name);
        self.conditions.insert(name.to_owned(), value);
        Ok(value)
    }
}

impl Template {
    /// Reads the template at `path`.
    pub fn from_path(path: impl AsRef<Path>, cx: &Context) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| TemplateError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, cx)
    }

    /// Reads a template from its YAML (or JSON) text.
    pub fn parse(text: &str, cx: &Context) -> Result<Self, TemplateError> {
        let root: Yaml = serde_yaml_ng::from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        let root = mapping_at(&root, "the template")?;
        let section = |name: &str| root.get(name);
        let mut warnings = Vec::new();

        // Parameters.
        let mut parameters = BTreeMap::new();
        for (name, value) in entries(section("Parameters"), "Parameters")? {
            let at = format!("Parameters.{name}");
            let map = mapping_at(value, &at)?;
            let kind = map.get("Type").and_then(scalar_string).unwrap_or_else(|| "String".to_owned());
            let default = map.get("Default").and_then(|d| match d {
                Yaml::Sequence(items) => Some(items.iter().filter_map(scalar_string).collect::<Vec<_>>().join(",")),
                other => scalar_string(other),
            });
            let description = map.get("Description").and_then(scalar_string);
            let allowed_values = match map.get("AllowedValues") {
                Some(Yaml::Sequence(items)) => items.iter().filter_map(scalar_string).collect(),
                _ => Vec::new(),
            };
            let value = cx.parameter_overrides.get(&name).cloned().or_else(|| default.clone());
            if let Some(v) = &value
                && !allowed_values.is_empty()
                && !allowed_values.contains(v)
            {
                return Err(TemplateError::invalid(&at, format!("{v:?} is not one of {allowed_values:?}")));
            }
            parameters.insert(name, Parameter { kind, default, description, allowed_values, value });
        }
        for name in cx.parameter_overrides.keys() {
            if !parameters.contains_key(name) {
                warnings.push(format!("parameter override {name} names no parameter of the template"));
            }
        }

        // Resources: types first, for !Ref.
        let resources = entries(section("Resources"), "Resources")?;
        if resources.is_empty() {
            return Err(TemplateError::invalid("Resources", "the template has no resources"));
        }
        let mut resource_types = BTreeMap::new();
        for (logical_id, value) in &resources {
            let at = format!("Resources.{logical_id}");
            let kind = mapping_at(value, &at)?
                .get("Type")
                .and_then(Yaml::as_str)
                .ok_or_else(|| TemplateError::invalid(&at, "no Type"))?;
            resource_types.insert(logical_id.clone(), kind.to_owned());
        }

        let mut reader = Reader {
            cx,
            parameters,
            conditions: BTreeMap::new(),
            mappings: exprs(section("Mappings"), "Mappings")?,
            resource_types,
        };

        // Conditions.
        let raw_conditions = exprs(section("Conditions"), "Conditions")?;
        for name in raw_conditions.keys() {
            reader.evaluate_condition(name, &raw_conditions, &mut BTreeSet::new())?;
        }

        // Globals.Function.
        let globals = match section("Globals").and_then(|g| g.get("Function")) {
            Some(value) => exprs(Some(value), "Globals.Function")?,
            None => BTreeMap::new(),
        };

        let mut template = Template {
            description: section("Description").and_then(scalar_string),
            context: cx.clone(),
            parameters: BTreeMap::new(),
            conditions: BTreeMap::new(),
            functions: Vec::new(),
            topics: Vec::new(),
            queues: Vec::new(),
            streams: Vec::new(),
            tables: Vec::new(),
            apis: Vec::new(),
            layers: Vec::new(),
            ignored: Vec::new(),
            outputs: BTreeMap::new(),
            warnings,
            mappings: BTreeMap::new(),
            resource_types: BTreeMap::new(),
            names: BTreeMap::new(),
        };

        for (logical_id, value) in &resources {
            let at = format!("Resources.{logical_id}");
            let map = mapping_at(value, &at)?;
            let kind = reader.resource_types.get(logical_id).cloned().unwrap_or_default();
            if let Some(condition) = map.get("Condition") {
                let name =
                    scalar_string(condition).ok_or_else(|| TemplateError::invalid(&at, "Condition is not a name"))?;
                let holds = reader.conditions.get(&name).copied().ok_or_else(|| TemplateError::Resolve {
                    at: format!("{at}.Condition"),
                    source: ResolveError::UnknownCondition(name.clone()),
                })?;
                if !holds {
                    template.ignored.push(IgnoredResource { logical_id: logical_id.clone(), kind });
                    continue;
                }
            }
            let properties = match map.get("Properties") {
                Some(p) => exprs(Some(p), &format!("{at}.Properties"))?,
                None => BTreeMap::new(),
            };
            let metadata = match map.get("Metadata") {
                Some(m) => exprs(Some(m), &format!("{at}.Metadata"))?,
                None => BTreeMap::new(),
            };
            template.read_resource(&reader, logical_id, &kind, &properties, &metadata, &globals, &at)?;
        }

        template.outputs = match section("Outputs") {
            Some(outputs) => entries(Some(outputs), "Outputs")?
                .into_iter()
                .filter_map(|(name, v)| v.get("Value").map(|value| (name, value)))
                .map(|(name, value)| Expr::from_yaml(value, &format!("Outputs.{name}.Value")).map(|e| (name, e)))
                .collect::<Result<_, _>>()?,
            None => BTreeMap::new(),
        };
        template.add_implicit_apis();
        let Reader { parameters, conditions, mappings, resource_types, .. } = reader;
        template.parameters = parameters;
        template.conditions = conditions;
        template.mappings = mappings;
        template.resource_types = resource_types;
        Ok(template)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_resource(
        &mut self,
        reader: &Reader<'_>,
        logical_id: &str,
        kind: &str,
        properties: &BTreeMap<String, Expr>,
        metadata: &BTreeMap<String, Expr>,
        globals: &BTreeMap<String, Expr>,
        at: &str,
    ) -> Result<(), TemplateError> {
        let prop = |name: &str| properties.get(name);
        let prop_at = |name: &str| format!("{at}.Properties.{name}");
        let generated = |suffix: &str| format!("{}-{logical_id}{suffix}", self.context.stack_name);
        let id = logical_id.to_owned();
        match kind {
            "AWS::Serverless::Function" => {
                let function = self.read_function(reader, logical_id, properties, metadata, globals, at)?;
                self.names.insert(id, function.function_name.clone());
                self.functions.push(function);
            }
            "AWS::SNS::Topic" => {
                let fifo = reader.bool(prop("FifoTopic"), &prop_at("FifoTopic"))?.unwrap_or(false);
                let name = reader
                    .string(prop("TopicName"), &prop_at("TopicName"))?
                    .unwrap_or_else(|| generated(if fifo { ".fifo" } else { "" }));
                self.names.insert(id.clone(), name.clone());
                self.topics.push(Topic { logical_id: id, name, fifo });
            }
            "AWS::SQS::Queue" => {
                let fifo = reader.bool(prop("FifoQueue"), &prop_at("FifoQueue"))?.unwrap_or(false);
                let name = reader
                    .string(prop("QueueName"), &prop_at("QueueName"))?
                    .unwrap_or_else(|| generated(if fifo { ".fifo" } else { "" }));
                let visibility = reader.number(prop("VisibilityTimeout"), &prop_at("VisibilityTimeout"))?.unwrap_or(30);
                self.names.insert(id.clone(), name.clone());
                self.queues.push(Queue {
                    logical_id: id,
                    name,
                    fifo,
                    visibility_timeout: Duration::from_secs(visibility),
                });
            }
            "AWS::Kinesis::Stream" => {
                let name = reader.string(prop("Name"), &prop_at("Name"))?.unwrap_or_else(|| generated(""));
                let on_demand = reader
                    .string(prop("StreamModeDetails").and_then(|m| m.get("StreamMode")), &prop_at("StreamModeDetails"))?
                    .is_some_and(|m| m == "ON_DEMAND");
                let mode = if on_demand {
                    StreamMode::OnDemand
                } else {
                    StreamMode::Provisioned {
                        shard_count: reader.u32(prop("ShardCount"), &prop_at("ShardCount"))?.unwrap_or(1),
                    }
                };
                self.names.insert(id.clone(), name.clone());
                self.streams.push(Stream { logical_id: id, name, mode });
            }
            "AWS::DynamoDB::Table" => {
                let name = reader.string(prop("TableName"), &prop_at("TableName"))?.unwrap_or_else(|| generated(""));
                let mut key_schema = Vec::new();
                for (i, entry) in list_items(prop("KeySchema")).iter().enumerate() {
                    let at = format!("{}[{i}]", prop_at("KeySchema"));
                    key_schema.push(KeySchemaElement {
                        attribute_name: required(reader, entry.get("AttributeName"), &at, "AttributeName")?,
                        key_type: required(reader, entry.get("KeyType"), &at, "KeyType")?,
                    });
                }
                if key_schema.is_empty() {
                    return Err(TemplateError::invalid(&prop_at("KeySchema"), "a table needs a KeySchema"));
                }
                let mut attribute_definitions = Vec::new();
                for (i, entry) in list_items(prop("AttributeDefinitions")).iter().enumerate() {
                    let at = format!("{}[{i}]", prop_at("AttributeDefinitions"));
                    attribute_definitions.push(AttributeDefinition {
                        attribute_name: required(reader, entry.get("AttributeName"), &at, "AttributeName")?,
                        attribute_type: required(reader, entry.get("AttributeType"), &at, "AttributeType")?,
                    });
                }
                let billing_mode = reader
                    .string(prop("BillingMode"), &prop_at("BillingMode"))?
                    .unwrap_or_else(|| "PROVISIONED".to_owned());
                let stream_view_type = reader.string(
                    prop("StreamSpecification").and_then(|s| s.get("StreamViewType")),
                    &prop_at("StreamSpecification.StreamViewType"),
                )?;
                self.names.insert(id.clone(), name.clone());
                self.tables.push(Table {
                    logical_id: id,
                    name,
                    key_schema,
                    attribute_definitions,
                    billing_mode,
                    stream_view_type,
                    simple: false,
                });
            }
            "AWS::Serverless::SimpleTable" => {
                let name = reader.string(prop("TableName"), &prop_at("TableName"))?.unwrap_or_else(|| generated(""));
                let key = prop("PrimaryKey");
                let key_name = reader
                    .string(key.and_then(|k| k.get("Name")), &prop_at("PrimaryKey.Name"))?
                    .unwrap_or_else(|| "id".to_owned());
                let key_type = reader
                    .string(key.and_then(|k| k.get("Type")), &prop_at("PrimaryKey.Type"))?
                    .unwrap_or_else(|| "String".to_owned());
                let attribute_type = match key_type.as_str() {
                    "String" => "S",
                    "Number" => "N",
                    "Binary" => "B",
                    other => {
                        return Err(TemplateError::invalid(
                            &prop_at("PrimaryKey.Type"),
                            format!("{other:?} is not String, Number or Binary"),
                        ));
                    }
                };
                let billing_mode =
                    if prop("ProvisionedThroughput").is_some() { "PROVISIONED" } else { "PAY_PER_REQUEST" };
                self.names.insert(id.clone(), name.clone());
                self.tables.push(Table {
                    logical_id: id,
                    name,
                    key_schema: vec![KeySchemaElement {
                        attribute_name: key_name.clone(),
                        key_type: "HASH".to_owned(),
                    }],
                    attribute_definitions: vec![AttributeDefinition {
                        attribute_name: key_name,
                        attribute_type: attribute_type.to_owned(),
                    }],
                    billing_mode: billing_mode.to_owned(),
                    stream_view_type: None,
                    simple: true,
                });
            }
            "AWS::Serverless::HttpApi" | "AWS::Serverless::Api" => {
                let http = kind == "AWS::Serverless::HttpApi";
                let stage = reader
                    .string(prop("StageName"), &prop_at("StageName"))?
                    .unwrap_or_else(|| if http { "$default" } else { "Prod" }.to_owned());
                self.apis.push(Api {
                    logical_id: id,
                    kind: if http { ApiKind::Http } else { ApiKind::Rest },
                    stage,
                    implicit: false,
                });
            }
            "AWS::Serverless::LayerVersion" => {
                let name = reader.string(prop("LayerName"), &prop_at("LayerName"))?.unwrap_or_else(|| id.clone());
                let content_uri = match prop("ContentUri") {
                    Some(Expr::Map(_)) | None => None,
                    Some(uri) => reader.string(Some(uri), &prop_at("ContentUri"))?,
                };
                self.names.insert(id.clone(), name.clone());
                self.layers.push(Layer { logical_id: id, name, content_uri });
            }
            other => {
                let name_property = match other {
                    "AWS::Lambda::Function" => Some("FunctionName"),
                    "AWS::Events::Rule" | "AWS::Events::EventBus" => Some("Name"),
                    "AWS::S3::Bucket" => Some("BucketName"),
                    "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => Some("StateMachineName"),
                    _ => None,
                };
                if let Some(property) = name_property
                    && let Ok(Some(name)) = reader.string(prop(property), &prop_at(property))
                {
                    self.names.insert(id.clone(), name);
                }
                self.ignored.push(IgnoredResource { logical_id: id, kind: other.to_owned() });
            }
        }
        Ok(())
    }

    fn read_function(
        &mut self,
        reader: &Reader<'_>,
        logical_id: &str,
        own: &BTreeMap<String, Expr>,
        metadata: &BTreeMap<String, Expr>,
        globals: &BTreeMap<String, Expr>,
        at: &str,
    ) -> Result<Function, TemplateError> {
        // The function's properties win; environment variables merge; layers add up.
        let prop = |name: &str| own.get(name).or_else(|| globals.get(name));
        let prop_at = |name: &str| {
            if own.contains_key(name) { format!("{at}.Properties.{name}") } else { format!("Globals.Function.{name}") }
        };
        let mut environment = BTreeMap::new();
        for source in [globals, own] {
            match source.get("Environment").and_then(|e| e.get("Variables")) {
                Some(Expr::Map(vars)) => environment.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Some(Expr::Null) | None => {}
                Some(_) => {
                    return Err(TemplateError::invalid(
                        &format!("{at}.Properties.Environment.Variables"),
                        "expected a mapping",
                    ));
                }
            }
        }
        let mut layers = Vec::new();
        for source in [globals, own] {
            match source.get("Layers") {
                Some(Expr::List(items)) => layers.extend(items.iter().cloned()),
                Some(Expr::Null) | None => {}
                Some(other) => layers.push(other.clone()),
            }
        }
        let function_name =
            reader.string(prop("FunctionName"), &prop_at("FunctionName"))?.unwrap_or_else(|| logical_id.to_owned());
        let code_uri = match prop("CodeUri") {
            Some(Expr::Map(_)) | None => None,
            Some(uri) => reader.string(Some(uri), &prop_at("CodeUri"))?,
        };
        let binary = reader
            .string(metadata.get("BuildProperties").and_then(|b| b.get("Binary")), &format!("{at}.Metadata"))?
            .unwrap_or_else(|| "bootstrap".to_owned());
        let build_method = reader.string(metadata.get("BuildMethod"), &format!("{at}.Metadata.BuildMethod"))?;
        let handler = reader.string(prop("Handler"), &prop_at("Handler"))?.unwrap_or_else(|| "bootstrap".to_owned());
        let runtime = reader.string(prop("Runtime"), &prop_at("Runtime"))?;
        let timeout = reader.number(prop("Timeout"), &prop_at("Timeout"))?.unwrap_or(3);
        let memory_mb = reader.u32(prop("MemorySize"), &prop_at("MemorySize"))?.unwrap_or(128);
        let architecture = match prop("Architectures") {
            Some(architectures) => reader
                .resolver()
                .list(architectures)
                .map_err(|source| TemplateError::Resolve { at: prop_at("Architectures"), source })?
                .and_then(|list| list.into_iter().next()),
            None => None,
        }
        .unwrap_or_else(|| "x86_64".to_owned());

        let mut events = Vec::new();
        if let Some(declared) = own.get("Events") {
            let Expr::Map(declared) = declared else {
                return Err(TemplateError::invalid(&format!("{at}.Properties.Events"), "expected a mapping"));
            };
            for (name, event) in declared {
                let event_at = format!("{at}.Properties.Events.{name}");
                let kind = self.read_event(reader, logical_id, name, event, &event_at)?;
                events.push(Event { name: name.clone(), kind });
            }
        }
        Ok(Function {
            logical_id: logical_id.to_owned(),
            function_name,
            code_uri,
            binary,
            build_method,
            handler,
            runtime,
            timeout: Duration::from_secs(timeout),
            memory_mb,
            architecture,
            environment,
            layers,
            events,
        })
    }

    fn read_event(
        &mut self,
        reader: &Reader<'_>,
        function: &str,
        name: &str,
        event: &Expr,
        at: &str,
    ) -> Result<EventKind, TemplateError> {
        let kind = reader
            .string(event.get("Type"), &format!("{at}.Type"))?
            .ok_or_else(|| TemplateError::invalid(at, "an event needs a Type"))?;
        let empty = Expr::Map(BTreeMap::new());
        let properties = event.get("Properties").unwrap_or(&empty);
        let prop = |key: &str| properties.get(key);
        let prop_at = |key: &str| format!("{at}.Properties.{key}");
        let need = |key: &str| -> Result<Expr, TemplateError> {
            prop(key)
                .cloned()
                .ok_or_else(|| TemplateError::invalid(&prop_at(key), format!("a {kind} event needs {key}")))
        };
        let string = |key: &str| reader.string(prop(key), &prop_at(key));
        Ok(match kind.as_str() {
            "HttpApi" => {
                let api = match prop("ApiId") {
                    None => None,
                    Some(Expr::Ref(id)) => Some(id.clone()),
                    Some(_) => return Err(TemplateError::invalid(&prop_at("ApiId"), "expected !Ref of an HttpApi")),
                };
                EventKind::HttpApi {
                    api,
                    method: string("Method")?.unwrap_or_else(|| "ANY".to_owned()),
                    path: string("Path")?.unwrap_or_else(|| "$default".to_owned()),
                }
            }
            "Api" => EventKind::Api {
                method: string("Method")?
                    .ok_or_else(|| TemplateError::invalid(&prop_at("Method"), "an Api event needs Method"))?,
                path: string("Path")?
                    .ok_or_else(|| TemplateError::invalid(&prop_at("Path"), "an Api event needs Path"))?,
            },
            "SNS" => EventKind::Sns {
                topic: need("Topic")?,
                sqs_subscription: match prop("SqsSubscription") {
                    None | Some(Expr::Null) => false,
                    Some(Expr::Map(_)) => true,
                    Some(other) => reader.bool(Some(other), &prop_at("SqsSubscription"))?.unwrap_or(false),
                },
                filter_policy: prop("FilterPolicy").cloned(),
            },
            "SQS" => EventKind::Sqs {
                queue: need("Queue")?,
                batch_size: reader.u32(prop("BatchSize"), &prop_at("BatchSize"))?.unwrap_or(10),
            },
            "Kinesis" | "DynamoDB" => {
                let stream = need("Stream")?;
                let starting_position = string("StartingPosition")?.unwrap_or_else(|| "LATEST".to_owned());
                let batch_size = reader.u32(prop("BatchSize"), &prop_at("BatchSize"))?.unwrap_or(100);
                if kind == "Kinesis" {
                    EventKind::Kinesis { stream, starting_position, batch_size }
                } else {
                    EventKind::DynamoDb { stream, starting_position, batch_size }
                }
            }
            "Schedule" | "ScheduleV2" => {
                let key = if kind == "Schedule" { "Schedule" } else { "ScheduleExpression" };
                let schedule = string(key)?
                    .ok_or_else(|| TemplateError::invalid(&prop_at(key), format!("a {kind} event needs {key}")))?;
                let enabled = match (reader.bool(prop("Enabled"), &prop_at("Enabled"))?, string("State")?) {
                    (Some(enabled), _) => enabled,
                    (None, Some(state)) => state == "ENABLED",
                    (None, None) => true,
                };
                EventKind::Schedule { schedule, input: string("Input")?, enabled }
            }
            "EventBridgeRule" | "CloudWatchEvent" => {
                EventKind::EventBridgeRule { pattern: need("Pattern")?, bus: prop("EventBusName").cloned() }
            }
            other => {
                self.warnings
                    .push(format!("{function}: event {name} has type {other}, which a local run does not drive"));
                EventKind::Other { kind: other.to_owned() }
            }
        })
    }

    /// Adds `ServerlessHttpApi` / `ServerlessRestApi` when events use them.
    fn add_implicit_apis(&mut self) {
        let mut implicit = Vec::new();
        for event in self.functions.iter().flat_map(|f| &f.events) {
            match &event.kind {
                EventKind::HttpApi { api: None, .. } => implicit.push(("ServerlessHttpApi", ApiKind::Http, "$default")),
                EventKind::Api { .. } => implicit.push(("ServerlessRestApi", ApiKind::Rest, "Prod")),
                _ => {}
            }
        }
        for (logical_id, kind, stage) in implicit {
            if !self.apis.iter().any(|a| a.logical_id == logical_id) {
                self.apis.push(Api {
                    logical_id: logical_id.to_owned(),
                    kind,
                    stage: stage.to_owned(),
                    implicit: true,
                });
            }
        }
    }

    fn resolver<'a>(&'a self, physical: &'a dyn Physical) -> Resolver<'a> {
        Resolver {
            cx: &self.context,
            parameters: &self.parameters,
            conditions: &self.conditions,
            mappings: &self.mappings,
            resources: &self.resource_types,
            physical,
        }
    }

    /// Resolves `expr` to a string; `None` is `AWS::NoValue`.
    pub fn resolve(&self, expr: &Expr, physical: &dyn Physical) -> Result<Option<String>, ResolveError> {
        self.resolver(physical).string(expr)
    }

    /// Resolves a list-valued `expr` (`!Split`, a `CommaDelimitedList` parameter, a list); a
    /// string becomes a one-element list.
    pub fn resolve_list(&self, expr: &Expr, physical: &dyn Physical) -> Result<Option<Vec<String>>, ResolveError> {
        self.resolver(physical).list(expr)
    }

    /// Resolves a structured value (a filter policy, an event pattern) to JSON, dropping
    /// members and items that are `AWS::NoValue`.
    pub fn resolve_json(&self, expr: &Expr, physical: &dyn Physical) -> Result<Option<Value>, ResolveError> {
        self.resolver(physical).json(expr, 0)
    }

    /// A function's environment, resolved; variables that are `AWS::NoValue` are left out.
    pub fn resolve_environment(
        &self,
        function: &Function,
        physical: &dyn Physical,
    ) -> Result<BTreeMap<String, String>, ResolveError> {
        let mut out = BTreeMap::new();
        for (name, expr) in &function.environment {
            if let Some(value) = self.resolve(expr, physical)? {
                out.insert(name.clone(), value);
            }
        }
        Ok(out)
    }

    /// The value of a condition.
    pub fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }

    /// The value in force of a parameter.
    pub fn parameter_value(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).and_then(|p| p.value.as_deref())
    }

    /// The `Type` of a resource.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resource_types.get(logical_id).map(String::as_str)
    }

    /// The function with this logical id.
    pub fn function(&self, logical_id: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    /// The name a resource gets: its explicit name property (`TopicName`, `QueueName`, `Name`,
    /// `TableName`, `FunctionName`, `LayerName`), else `{stack}-{logical_id}` (with `.fifo`
    /// for FIFO queues and topics).
    pub fn physical_name(&self, logical_id: &str) -> Result<String, ResolveError> {
        if let Some(name) = self.names.get(logical_id) {
            return Ok(name.clone());
        }
        if self.resource_types.contains_key(logical_id) {
            return Ok(format!("{}-{logical_id}", self.context.stack_name));
        }
        Err(ResolveError::UnknownReference(logical_id.to_owned()))
    }
}

fn list_items(expr: Option<&Expr>) -> &[Expr] {
    match expr {
        Some(Expr::List(items)) => items,
        _ => &[],
    }
}

fn required(reader: &Reader<'_>, expr: Option<&Expr>, at: &str, key: &str) -> Result<String, TemplateError> {
    reader.string(expr, &format!("{at}.{key}"))?.ok_or_else(|| TemplateError::invalid(at, format!("{key} is missing")))
}
