//! The whole application on one machine: the template's resources in moto, each function
//! under its own local Lambda environment with the flowtrace extension, the HTTP API on a
//! loopback port, and pollers that turn what lands in topics, queues and streams into the
//! events Lambda would deliver.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use flowtrace_sam::events::{self, HttpApiRoute, HttpRequest, KinesisRecord, RestApiRoute, SqsMessage};
use flowtrace_sam::{Context, EventKind, PhysicalMap, Template};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apigw::{ApiKind, GatewaySpan, Route, match_route};
use crate::function::{FunctionHost, FunctionSpec};
use crate::lambda::{Invocation, Outcome};
use crate::{Error, MOTO_ACCOUNT, MOTO_REGION, Moto, OtlpSink, Result};

/// How `flowtrace local` runs an application.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The SAM template.
    pub template: PathBuf,
    /// Parameter values replacing the template's defaults.
    pub parameter_overrides: BTreeMap<String, String>,
    /// Where `spans.jsonl` is written.
    pub out_dir: PathBuf,
    /// Forward OTLP to this backend too (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub forward_to: Option<String>,
    /// The HTTP API's port on 127.0.0.1; 0 picks a free one.
    pub http_port: u16,
    /// The directory holding the function binaries (`Metadata.BuildProperties.Binary`).
    pub bin_dir: PathBuf,
    /// The flowtrace extension's binary; `None` runs the functions without it.
    pub extension: Option<PathBuf>,
    /// Only these functions (logical ids or function names); all when empty.
    pub only: Vec<String>,
    /// Print the functions' and extensions' output live.
    pub echo_output: bool,
    /// How often the pollers look for new messages and records.
    pub poll_interval: Duration,
    /// Extra environment variables for every function (e.g. `FLOWTRACE_*` settings).
    pub function_env: BTreeMap<String, String>,
}

impl LocalOptions {
    /// Options for `template` with everything else at its default: output in
    /// `target/flowtrace`, binaries in `target/debug`, a free HTTP port.
    pub fn new(template: impl Into<PathBuf>) -> Self {
        Self {
            template: template.into(),
            parameter_overrides: BTreeMap::new(),
            out_dir: PathBuf::from("target/flowtrace"),
            forward_to: None,
            http_port: 0,
            bin_dir: PathBuf::from("target/debug"),
            extension: None,
            only: Vec::new(),
            echo_output: false,
            poll_interval: Duration::from_millis(100),
            function_env: BTreeMap::new(),
        }
    }
}

/// One function of the running application.
#[derive(Debug, Clone)]
pub struct RunningFunction {
    /// The logical id.
    pub logical_id: String,
    /// The function name.
    pub name: String,
    /// What drives it, for the start-up summary (`HttpApi POST /new_post`, `SNS Posts`, ...).
    pub sources: Vec<String>,
    /// Its host.
    pub host: Arc<FunctionHost>,
}

/// The running application. [`LocalApp::shutdown`] stops everything it started; dropping it
/// kills what is left.
#[derive(Debug)]
pub struct LocalApp {
    template: Template,
    moto: Arc<Moto>,
    sink: Arc<OtlpSink>,
    functions: Vec<RunningFunction>,
    http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Everything the pollers and the HTTP front share.
#[derive(Debug)]
struct Shared {
    moto_endpoint: String,
    moto: MotoClient,
    sink: Arc<OtlpSink>,
    region: String,
}

/// moto's JSON and query APIs, for the pollers (cheap to clone).
#[derive(Debug, Clone)]
struct MotoClient {
    moto: Arc<Moto>,
}

impl LocalApp {
    /// Starts moto and the sink, creates the template's resources, and starts the HTTP API and
    /// the pollers. Function environments start on their first event (cold), or right away
    /// for the functions [`LocalApp::warm`] is asked for.
    pub async fn start(options: LocalOptions) -> Result<Self> {
        let cx = Context {
            region: MOTO_REGION.to_owned(),
            account_id: MOTO_ACCOUNT.to_owned(),
            parameter_overrides: options.parameter_overrides.clone(),
            ..Context::default()
        };
        let template = Template::from_path(&options.template, &cx)
            .map_err(|e| Error::Process(format!("template {}: {e}", options.template.display())))?;
        for warning in &template.warnings {
            eprintln!("flowtrace local: template: {warning}");
        }
        let moto = Arc::new(Moto::start().await?);
        let sink = Arc::new(OtlpSink::start(options.out_dir.join("spans.jsonl"), options.forward_to.clone()).await?);
        let client = MotoClient { moto: Arc::clone(&moto) };
        let physical = create_resources(&template, &client).await?;

        let shared = Arc::new(Shared {
            moto_endpoint: moto.endpoint(),
            moto: client.clone(),
            sink: Arc::clone(&sink),
            region: MOTO_REGION.to_owned(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut functions = Vec::new();
        let mut routes = Vec::new();
        let mut hosts: HashMap<String, Arc<FunctionHost>> = HashMap::new();
        for function in &template.functions {
            if !options.only.is_empty()
                && !options.only.iter().any(|o| *o == function.logical_id || *o == function.function_name)
            {
                continue;
            }
            let mut env = template
                .resolve_environment(function, &physical)
                .map_err(|e| Error::Process(format!("{}: environment: {e}", function.logical_id)))?;
            env.extend(moto.sdk_env().into_iter().map(|(k, v)| (k.to_owned(), v)));
            env.extend(options.function_env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let binary = options.bin_dir.join(&function.binary);
            if !binary.is_file() {
                return Err(Error::Process(format!(
                    "{}: no binary {} (build it, or pass --bin-dir)",
                    function.logical_id,
                    binary.display()
                )));
            }
            let host = Arc::new(FunctionHost::new(FunctionSpec {
                name: function.function_name.clone(),
                binary,
                extension: options.extension.clone(),
                env,
                extension_env: BTreeMap::from([("FLOWTRACE_ARCHITECTURE".to_owned(), function.architecture.clone())]),
                timeout: function.timeout,
                memory_mb: function.memory_mb,
                region: MOTO_REGION.to_owned(),
                otlp_endpoint: sink.endpoint(),
                echo_output: options.echo_output,
            }));
            hosts.insert(function.logical_id.clone(), Arc::clone(&host));
            let mut sources = Vec::new();
            for event in &function.events {
                let source = match &event.kind {
                    EventKind::HttpApi { api, method, path } => {
                        let route = Route {
                            function: function.logical_id.clone(),
                            api: api.clone().unwrap_or_else(|| "ServerlessHttpApi".to_owned()),
                            kind: ApiKind::Http,
                            method: method.to_ascii_uppercase(),
                            path: path.clone(),
                        };
                        let described = format!("HttpApi {}", route.route_key());
                        routes.push(route);
                        described
                    }
                    EventKind::Api { method, path } => {
                        let route = Route {
                            function: function.logical_id.clone(),
                            api: "ServerlessRestApi".to_owned(),
                            kind: ApiKind::Rest,
                            method: method.to_ascii_uppercase(),
                            path: path.clone(),
                        };
                        let described = format!("Api {}", route.route_key());
                        routes.push(route);
                        described
                    }
                    EventKind::Sns { topic, filter_policy, .. } => {
                        let topic_arn = resolve_required(&template, topic, &physical, &function.logical_id)?;
                        let filter = match filter_policy {
                            Some(expr) => template
                                .resolve_json(expr, &physical)
                                .map_err(|e| Error::Process(format!("{}: FilterPolicy: {e}", function.logical_id)))?,
                            None => None,
                        };
                        let queue = format!("flowtrace-local-{}-{}", function.logical_id, event.name);
                        let (queue_url, subscription_arn) =
                            client.subscribe_through_queue(&topic_arn, &queue, filter.as_ref()).await?;
                        tasks.push(tokio::spawn(poll_sns(
                            Arc::clone(&shared),
                            Arc::clone(&host),
                            queue_url,
                            subscription_arn,
                            options.poll_interval,
                            stopped.clone(),
                        )));
                        format!("SNS {topic_arn}")
                    }
                    EventKind::Sqs { queue, batch_size } => {
                        let queue_arn = resolve_required(&template, queue, &physical, &function.logical_id)?;
                        let queue_url = queue_url_of(&shared.moto_endpoint, &queue_arn)?;
                        tasks.push(tokio::spawn(poll_sqs(
                            Arc::clone(&shared),
                            Arc::clone(&host),
                            queue_url,
                            queue_arn.clone(),
                            (*batch_size).clamp(1, 10),
                            options.poll_interval,
                            stopped.clone(),
                        )));
                        format!("SQS {queue_arn} (batch {batch_size})")
                    }
                    EventKind::Kinesis { stream, batch_size, .. } => {
                        let stream_arn = resolve_required(&template, stream, &physical, &function.logical_id)?;
                        tasks.extend(
                            spawn_stream_pollers(
                                &shared,
                                &host,
                                StreamKind::Kinesis,
                                &stream_arn,
                                *batch_size,
                                &options,
                                &stopped,
                            )
                            .await?,
                        );
                        format!("Kinesis {stream_arn} (batch {batch_size})")
                    }
                    EventKind::DynamoDb { stream, batch_size, .. } => {
                        let stream_arn = resolve_required(&template, stream, &physical, &function.logical_id)?;
                        tasks.extend(
                            spawn_stream_pollers(
                                &shared,
                                &host,
                                StreamKind::DynamoDb,
                                &stream_arn,
                                *batch_size,
                                &options,
                                &stopped,
                            )
                            .await?,
                        );
                        format!("DynamoDB {stream_arn} (batch {batch_size})")
                    }
                    EventKind::Schedule { schedule, input, enabled } if *enabled => {
                        let Some(period) = rate(schedule) else {
                            eprintln!(
                                "flowtrace local: {}: schedule {schedule:?} is not driven locally (only rate(...) is); invoke it with --invoke",
                                function.logical_id
                            );
                            continue;
                        };
                        let input = match input {
                            Some(text) => Some(serde_json::from_str::<Value>(text).map_err(|e| {
                                Error::Process(format!("{}: schedule Input is not JSON: {e}", function.logical_id))
                            })?),
                            None => None,
                        };
                        let rule_arn = format!(
                            "arn:aws:events:{MOTO_REGION}:{MOTO_ACCOUNT}:rule/{}-{}",
                            function.logical_id, event.name
                        );
                        tasks.push(tokio::spawn(run_schedule(
                            Arc::clone(&host),
                            rule_arn,
                            input,
                            period,
                            stopped.clone(),
                        )));
                        format!("Schedule {schedule}")
                    }
                    other => {
                        eprintln!(
                            "flowtrace local: {}: event {} ({other:?}) is not driven locally; invoke it with --invoke",
                            function.logical_id, event.name
                        );
                        continue;
                    }
                };
                sources.push(source);
            }
            functions.push(RunningFunction {
                logical_id: function.logical_id.clone(),
                name: function.function_name.clone(),
                sources,
                host,
            });
        }

        let http_addr = if routes.is_empty() {
            None
        } else {
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, options.http_port))
                .await
                .map_err(|e| Error::io(format!("bind the HTTP API on 127.0.0.1:{}", options.http_port), e))?;
            let addr = listener.local_addr().map_err(|e| Error::io("the HTTP API's address", e))?;
            let front = Arc::new(HttpFront {
                routes,
                hosts: hosts.clone(),
                shared: Arc::clone(&shared),
                template_apis: api_stages(&template),
            });
            let app = axum::Router::new().fallback(serve_http).with_state(front);
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
            }));
            Some(addr)
        };
        drop(shared);
        Ok(Self { template, moto, sink, functions, http_addr, stop, tasks })
    }

    /// The template as read.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// moto's endpoint (`AWS_ENDPOINT_URL` for a client that wants to look at the resources).
    pub fn moto_endpoint(&self) -> String {
        self.moto.endpoint()
    }

    /// The HTTP API's base URL, when the template has `Api`/`HttpApi` events.
    pub fn http_endpoint(&self) -> Option<String> {
        self.http_addr.map(|addr| format!("http://{addr}"))
    }

    /// The spans file.
    pub fn spans_path(&self) -> &Path {
        self.sink.path()
    }

    /// The sink (its counters).
    pub fn sink(&self) -> &OtlpSink {
        &self.sink
    }

    /// The functions that run.
    pub fn functions(&self) -> &[RunningFunction] {
        &self.functions
    }

    /// The function with this logical id or name.
    pub fn function(&self, id_or_name: &str) -> Option<&RunningFunction> {
        self.functions.iter().find(|f| f.logical_id == id_or_name || f.name == id_or_name)
    }

    /// Invokes a function directly with `event` (`--invoke`).
    pub async fn invoke(&self, id_or_name: &str, event: Value) -> Result<Invocation> {
        let function =
            self.function(id_or_name).ok_or_else(|| Error::NotFound(format!("no function {id_or_name} runs")))?;
        function.host.invoke(event).await
    }

    /// Starts every function's environment now.
    pub async fn warm(&self) -> Result<()> {
        for function in &self.functions {
            function.host.warm().await?;
        }
        Ok(())
    }

    /// Stops the pollers and the HTTP API, shuts every environment down (each extension
    /// gets SHUTDOWN and flushes), then stops the sink and moto.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                eprintln!("flowtrace local: a poller did not stop in time");
            }
        }
        let mut shutdowns = tokio::task::JoinSet::new();
        for function in &self.functions {
            let host = Arc::clone(&function.host);
            shutdowns.spawn(async move { host.shutdown().await });
        }
        while shutdowns.join_next().await.is_some() {}
    }
}

impl Drop for LocalApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn resolve_required(
    template: &Template,
    expr: &flowtrace_sam::Expr,
    physical: &PhysicalMap,
    function: &str,
) -> Result<String> {
    template
        .resolve(expr, physical)
        .map_err(|e| Error::Process(format!("{function}: {e}")))?
        .ok_or_else(|| Error::Process(format!("{function}: an event source resolves to nothing")))
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` → moto's queue URL.
fn queue_url_of(moto_endpoint: &str, queue_arn: &str) -> Result<String> {
    let mut parts = queue_arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(Error::Process(format!("not a queue ARN: {queue_arn}")));
    };
    Ok(format!("{moto_endpoint}/{account}/{name}"))
}

fn api_stages(template: &Template) -> HashMap<String, String> {
    template.apis.iter().map(|api| (api.logical_id.clone(), api.stage.clone())).collect()
}

/// Creates the topics, queues, streams and tables in moto, and returns their physical values
/// for the template's `!Ref` and `!GetAtt`.
async fn create_resources(template: &Template, moto: &MotoClient) -> Result<PhysicalMap> {
    let region = MOTO_REGION;
    let account = MOTO_ACCOUNT;
    let mut physical = PhysicalMap::new();
    for topic in &template.topics {
        let arn = moto.moto.create_topic(&topic.name).await?;
        physical.insert_ref(&topic.logical_id, &arn);
        physical.insert_att(&topic.logical_id, "TopicArn", &arn);
        physical.insert_att(&topic.logical_id, "TopicName", &topic.name);
    }
    for queue in &template.queues {
        let mut body = json!({"QueueName": queue.name});
        if queue.fifo {
            body["Attributes"] = json!({"FifoQueue": "true"});
        }
        let created = moto.moto.json_call("sqs", "AmazonSQS.CreateQueue", &body).await?;
        let url = created["QueueUrl"].as_str().unwrap_or_default().to_owned();
        let arn = format!("arn:aws:sqs:{region}:{account}:{}", queue.name);
        physical.insert_ref(&queue.logical_id, &url);
        physical.insert_att(&queue.logical_id, "Arn", &arn);
        physical.insert_att(&queue.logical_id, "QueueName", &queue.name);
        physical.insert_att(&queue.logical_id, "QueueUrl", &url);
    }
    for stream in &template.streams {
        let shards = match stream.mode {
            flowtrace_sam::template::StreamMode::Provisioned { shard_count } => shard_count.max(1),
            flowtrace_sam::template::StreamMode::OnDemand => 1,
        };
        moto.moto
            .json_call(
                "kinesis",
                "Kinesis_20131202.CreateStream",
                &json!({"StreamName": stream.name, "ShardCount": shards}),
            )
            .await?;
        let arn = format!("arn:aws:kinesis:{region}:{account}:stream/{}", stream.name);
        physical.insert_ref(&stream.logical_id, &stream.name);
        physical.insert_att(&stream.logical_id, "Arn", &arn);
    }
    for table in &template.tables {
        let mut body = json!({
            "TableName": table.name,
            "KeySchema": table.key_schema.iter().map(|k| json!({"AttributeName": k.attribute_name, "KeyType": k.key_type})).collect::<Vec<_>>(),
            "AttributeDefinitions": table.attribute_definitions.iter().map(|a| json!({"AttributeName": a.attribute_name, "AttributeType": a.attribute_type})).collect::<Vec<_>>(),
            "BillingMode": "PAY_PER_REQUEST",
        });
        if let Some(view) = &table.stream_view_type {
            body["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        let created = moto.moto.json_call("dynamodb", "DynamoDB_20120810.CreateTable", &body).await?;
        let arn = format!("arn:aws:dynamodb:{region}:{account}:table/{}", table.name);
        physical.insert_ref(&table.logical_id, &table.name);
        physical.insert_att(&table.logical_id, "Arn", &arn);
        if let Some(stream_arn) = created["TableDescription"]["LatestStreamArn"].as_str() {
            physical.insert_att(&table.logical_id, "StreamArn", stream_arn);
        }
    }
    for function in &template.functions {
        let arn = format!("arn:aws:lambda:{region}:{account}:function:{}", function.function_name);
        physical.insert_ref(&function.logical_id, &function.function_name);
        physical.insert_att(&function.logical_id, "Arn", &arn);
    }
    for api in &template.apis {
        physical.insert_ref(&api.logical_id, api.logical_id.to_ascii_lowercase());
    }
    for layer in &template.layers {
        let arn = format!("arn:aws:lambda:{region}:{account}:layer:{}:1", layer.logical_id);
        physical.insert_ref(&layer.logical_id, &arn);
    }
    Ok(physical)
}

impl MotoClient {
    /// A queue subscribed to `topic_arn` (the SNS envelope, not raw delivery), as SAM's
    /// `SqsSubscription` does it, and the queue's URL and the subscription's ARN.
    async fn subscribe_through_queue(
        &self,
        topic_arn: &str,
        queue: &str,
        filter_policy: Option<&Value>,
    ) -> Result<(String, String)> {
        let (url, arn) = self.moto.create_queue(queue).await?;
        let policy = filter_policy.map(Value::to_string);
        let mut params =
            vec![("Action", "Subscribe"), ("TopicArn", topic_arn), ("Protocol", "sqs"), ("Endpoint", arn.as_str())];
        if let Some(policy) = &policy {
            params.extend([("Attributes.entry.1.key", "FilterPolicy"), ("Attributes.entry.1.value", policy.as_str())]);
        }
        let xml = self.moto.query("sns", &params).await?;
        let subscription = crate::xml_values(&xml, "SubscriptionArn")
            .into_iter()
            .next()
            .ok_or_else(|| Error::Process(format!("moto did not subscribe {queue} to {topic_arn}: {xml}")))?;
        Ok((url, subscription))
    }

    async fn receive(&self, queue_url: &str, max: u32) -> Result<Vec<SqsMessage>> {
        let answer = self
            .moto
            .json_call(
                "sqs",
                "AmazonSQS.ReceiveMessage",
                &json!({
                    "QueueUrl": queue_url,
                    "MaxNumberOfMessages": max,
                    "AttributeNames": ["All"],
                    "MessageSystemAttributeNames": ["All"],
                    "MessageAttributeNames": ["All"],
                }),
            )
            .await?;
        Ok(answer["Messages"].as_array().map(|messages| messages.iter().map(sqs_message).collect()).unwrap_or_default())
    }

    async fn delete(&self, queue_url: &str, receipt_handle: &str) -> Result<()> {
        self.moto
            .json_call(
                "sqs",
                "AmazonSQS.DeleteMessage",
                &json!({"QueueUrl": queue_url, "ReceiptHandle": receipt_handle}),
            )
            .await
            .map(drop)
    }

    /// Each shard of the stream, with an iterator at its beginning.
    async fn shard_iterators(&self, kind: StreamKind, stream_arn: &str) -> Result<Vec<(String, String)>> {
        let stream = kind.stream_parameter(stream_arn);
        let (list_target, shards_at) = match kind {
            StreamKind::Kinesis => ("Kinesis_20131202.ListShards", "/Shards"),
            StreamKind::DynamoDb => ("DynamoDBStreams_20120810.DescribeStream", "/StreamDescription/Shards"),
        };
        let listed = self.moto.json_call(kind.service(), list_target, &stream).await?;
        let mut out = Vec::new();
        for shard in listed.pointer(shards_at).and_then(Value::as_array).into_iter().flatten() {
            let Some(shard_id) = shard["ShardId"].as_str() else { continue };
            let mut request = stream.clone();
            request["ShardId"] = json!(shard_id);
            // The resources are created just before the pollers start, so `LATEST` would only
            // lose what arrives in between: every starting position reads from the beginning.
            request["ShardIteratorType"] = json!("TRIM_HORIZON");
            let iterator = self.moto.json_call(kind.service(), kind.target("GetShardIterator"), &request).await?;
            if let Some(iterator) = iterator["ShardIterator"].as_str() {
                out.push((shard_id.to_owned(), iterator.to_owned()));
            }
        }
        Ok(out)
    }
}

fn sqs_message(message: &Value) -> SqsMessage {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let attributes = message["Attributes"]
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let message_attributes = message["MessageAttributes"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        events::SqsMessageAttribute {
                            data_type: text(&value["DataType"]),
                            string_value: value["StringValue"].as_str().map(str::to_owned),
                            binary_value: value["BinaryValue"].as_str().map(str::to_owned),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    SqsMessage {
        message_id: text(&message["MessageId"]),
        receipt_handle: text(&message["ReceiptHandle"]),
        body: text(&message["Body"]),
        attributes,
        message_attributes,
    }
}

/// Waits `interval`, or returns false when asked to stop.
async fn keep_going(stopped: &mut watch::Receiver<bool>, interval: Duration) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(interval) => !*stopped.borrow(),
        _ = stopped.changed() => false,
    }
}

/// A one-line account of an invocation that did not succeed.
fn failure(invocation: &Invocation) -> Option<String> {
    match &invocation.outcome {
        Outcome::Response(_) => None,
        Outcome::Error(error) => Some(format!("{}: {}", error.error_type, error.error_message)),
        Outcome::Timeout => Some("timed out".to_owned()),
        Outcome::Crashed(why) => Some(format!("crashed ({why})")),
    }
}

async fn poll_sns(
    shared: Arc<Shared>,
    host: Arc<FunctionHost>,
    queue_url: String,
    subscription_arn: String,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while keep_going(&mut stopped, interval).await {
        let messages = match shared.moto.receive(&queue_url, 10).await {
            Ok(messages) => messages,
            Err(error) => {
                eprintln!("flowtrace local: SNS → {}: {error}", host.name());
                continue;
            }
        };
        for message in messages {
            // SNS invokes once per notification.
            match serde_json::from_str::<Value>(&message.body) {
                Ok(envelope) => {
                    let event = events::sns_event(&envelope, &subscription_arn);
                    match host.invoke(event).await {
                        Ok(invocation) => {
                            if let Some(why) = failure(&invocation) {
                                // Lambda retries asynchronous invocations twice, minutes apart;
                                // locally the notification is dropped after one attempt.
                                eprintln!(
                                    "flowtrace local: {} {why} on SNS message {} (not retried locally)",
                                    host.name(),
                                    message.message_id
                                );
                            }
                        }
                        Err(error) => eprintln!("flowtrace local: {}: {error}", host.name()),
                    }
                }
                Err(error) => eprintln!(
                    "flowtrace local: SNS → {}: message {} is not an SNS envelope ({error}); dropped",
                    host.name(),
                    message.message_id
                ),
            }
            if let Err(error) = shared.moto.delete(&queue_url, &message.receipt_handle).await {
                eprintln!("flowtrace local: SNS → {}: {error}", host.name());
            }
        }
    }
}

async fn poll_sqs(
    shared: Arc<Shared>,
    host: Arc<FunctionHost>,
    queue_url: String,
    queue_arn: String,
    batch_size: u32,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while keep_going(&mut stopped, interval).await {
        let messages = match shared.moto.receive(&queue_url, batch_size).await {
            Ok(messages) if !messages.is_empty() => messages,
            Ok(_) => continue,
            Err(error) => {
                eprintln!("flowtrace local: SQS → {}: {error}", host.name());
                continue;
            }
        };
        let event = events::sqs_event(&messages, &queue_arn, &shared.region);
        match host.invoke(event).await {
            Ok(invocation) => match failure(&invocation) {
                // As Lambda: a failed batch stays on the queue and comes back after the
                // visibility timeout.
                Some(why) => eprintln!(
                    "flowtrace local: {} {why}; the {} message(s) return after the visibility timeout",
                    host.name(),
                    messages.len()
                ),
                None => {
                    for message in &messages {
                        if let Err(error) = shared.moto.delete(&queue_url, &message.receipt_handle).await {
                            eprintln!("flowtrace local: SQS → {}: {error}", host.name());
                        }
                    }
                }
            },
            Err(error) => eprintln!("flowtrace local: {}: {error}", host.name()),
        }
    }
}

/// The period of a `rate(N minute|minutes|hour|hours|day|days)` schedule; `None` for anything
/// else (`cron(...)` is not driven locally).
fn rate(schedule: &str) -> Option<Duration> {
    let inner = schedule.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(char::is_whitespace)?;
    let count: u64 = count.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count.checked_mul(seconds)?))
}

/// Invokes the function every `period`, the first time one period after start, as
/// EventBridge Scheduler does for a new rate schedule.
async fn run_schedule(
    host: Arc<FunctionHost>,
    rule_arn: String,
    input: Option<Value>,
    period: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while keep_going(&mut stopped, period).await {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let event = events::schedule_event(&rule_arn, &id, now_millis(), input.as_ref());
        match host.invoke(event).await {
            Ok(invocation) => {
                if let Some(why) = failure(&invocation) {
                    eprintln!("flowtrace local: {} {why} on its schedule {rule_arn}", host.name());
                }
            }
            Err(error) => eprintln!("flowtrace local: {}: {error}", host.name()),
        }
    }
}

/// A shard being read, and where.
#[derive(Debug)]
struct StreamShard {
    stream_arn: String,
    shard_id: String,
    iterator: String,
}

/// How often a failed stream batch is tried before it is skipped (Lambda's default is to
/// retry until the records expire, which would stall a local run).
const STREAM_ATTEMPTS: u32 = 2;

/// A stream an event source mapping reads: Kinesis, or a DynamoDB table's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Kinesis,
    DynamoDb,
}

impl StreamKind {
    /// moto's service for the JSON protocol.
    fn service(self) -> &'static str {
        match self {
            Self::Kinesis => "kinesis",
            Self::DynamoDb => "dynamodb",
        }
    }

    /// `X-Amz-Target` of `operation`.
    fn target(self, operation: &str) -> &'static str {
        match (self, operation) {
            (Self::Kinesis, "GetShardIterator") => "Kinesis_20131202.GetShardIterator",
            (Self::Kinesis, _) => "Kinesis_20131202.GetRecords",
            (Self::DynamoDb, "GetShardIterator") => "DynamoDBStreams_20120810.GetShardIterator",
            (Self::DynamoDb, _) => "DynamoDBStreams_20120810.GetRecords",
        }
    }

    /// How requests name the stream: Kinesis by name, DynamoDB Streams by ARN.
    fn stream_parameter(self, stream_arn: &str) -> Value {
        match self {
            Self::Kinesis => json!({"StreamName": stream_arn.rsplit('/').next().unwrap_or(stream_arn)}),
            Self::DynamoDb => json!({"StreamArn": stream_arn}),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Kinesis => "Kinesis",
            Self::DynamoDb => "DynamoDB stream",
        }
    }

    /// The Lambda event for a `GetRecords` batch.
    fn event(self, records: &[Value], shard: &StreamShard, region: &str, function: &str) -> Value {
        match self {
            Self::Kinesis => {
                let records: Vec<KinesisRecord> = records
                    .iter()
                    .map(|r| KinesisRecord {
                        partition_key: r["PartitionKey"].as_str().unwrap_or_default().to_owned(),
                        sequence_number: r["SequenceNumber"].as_str().unwrap_or_default().to_owned(),
                        data_base64: r["Data"].as_str().unwrap_or_default().to_owned(),
                        approximate_arrival_timestamp: r["ApproximateArrivalTimestamp"]
                            .as_f64()
                            .unwrap_or_else(now_seconds),
                    })
                    .collect();
                let role = format!("arn:aws:iam::{MOTO_ACCOUNT}:role/{function}");
                events::kinesis_event(&records, &shard.stream_arn, &shard.shard_id, region, &role)
            }
            Self::DynamoDb => events::dynamodb_event(records, &shard.stream_arn, region),
        }
    }
}

/// One poller per shard of the stream.
async fn spawn_stream_pollers(
    shared: &Arc<Shared>,
    host: &Arc<FunctionHost>,
    kind: StreamKind,
    stream_arn: &str,
    batch_size: u32,
    options: &LocalOptions,
    stopped: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    Ok(shared
        .moto
        .shard_iterators(kind, stream_arn)
        .await?
        .into_iter()
        .map(|(shard_id, iterator)| {
            tokio::spawn(poll_stream(
                Arc::clone(shared),
                Arc::clone(host),
                kind,
                StreamShard { stream_arn: stream_arn.to_owned(), shard_id, iterator },
                batch_size,
                options.poll_interval,
                stopped.clone(),
            ))
        })
        .collect())
}

async fn poll_stream(
    shared: Arc<Shared>,
    host: Arc<FunctionHost>,
    kind: StreamKind,
    mut shard: StreamShard,
    batch_size: u32,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while keep_going(&mut stopped, interval).await {
        // DynamoDB Streams' GetRecords takes the iterator alone; Kinesis's also the stream.
        let mut request = match kind {
            StreamKind::Kinesis => kind.stream_parameter(&shard.stream_arn),
            StreamKind::DynamoDb => json!({}),
        };
        request["ShardIterator"] = json!(shard.iterator);
        request["Limit"] = json!(batch_size);
        let answer = match shared.moto.moto.json_call(kind.service(), kind.target("GetRecords"), &request).await {
            Ok(answer) => answer,
            Err(error) => {
                eprintln!("flowtrace local: {} → {}: {error}", kind.label(), host.name());
                continue;
            }
        };
        if let Some(next) = answer["NextShardIterator"].as_str() {
            next.clone_into(&mut shard.iterator);
        }
        let records = answer["Records"].as_array().map(Vec::as_slice).unwrap_or_default();
        if records.is_empty() {
            continue;
        }
        let event = kind.event(records, &shard, &shared.region, host.name());
        deliver_stream_batch(&host, event, kind.label(), records.len()).await;
    }
}

async fn deliver_stream_batch(host: &FunctionHost, event: Value, source: &str, records: usize) {
    for attempt in 1..=STREAM_ATTEMPTS {
        match host.invoke(event.clone()).await {
            Ok(invocation) => match failure(&invocation) {
                None => return,
                Some(why) => eprintln!(
                    "flowtrace local: {} {why} on a {source} batch of {records} (attempt {attempt} of {STREAM_ATTEMPTS})",
                    host.name()
                ),
            },
            Err(error) => eprintln!("flowtrace local: {}: {error}", host.name()),
        }
    }
    eprintln!(
        "flowtrace local: {}: skipping a {source} batch of {records} after {STREAM_ATTEMPTS} attempts",
        host.name()
    );
}

fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The HTTP API.
#[derive(Debug)]
struct HttpFront {
    routes: Vec<Route>,
    hosts: HashMap<String, Arc<FunctionHost>>,
    shared: Arc<Shared>,
    template_apis: HashMap<String, String>,
}

async fn serve_http(
    State(front): State<Arc<HttpFront>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut header_map: HashMap<String, String> = HashMap::new();
    let mut header_list: Vec<(String, String)> = Vec::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map.insert(name.as_str().to_owned(), value.clone());
        header_list.push((name.as_str().to_owned(), value));
    }
    let gateway = GatewaySpan::start(&header_map);
    let matched = match_route(&front.routes, method.as_str(), &path);
    let (status, response) = match &matched {
        None => (404, json_response(404, &json!({"message": "Not Found"}))),
        Some(matched) => {
            // The function continues the gateway's span, not the caller's.
            header_list.retain(|(name, _)| name != "traceparent" && name != "tracestate");
            header_list.extend(gateway.context_headers());
            let request = HttpRequest {
                method: method.as_str().to_owned(),
                path: path.clone(),
                raw_query: uri.query().unwrap_or_default().to_owned(),
                headers: header_list,
                body: body.to_vec(),
                source_ip: peer.ip().to_string(),
            };
            let route = matched.route;
            let stage = front.template_apis.get(&route.api).cloned();
            let request_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            let event = match route.kind {
                ApiKind::Http => events::http_api_event(
                    &request,
                    &HttpApiRoute {
                        api_id: route.api.to_ascii_lowercase(),
                        route_key: route.route_key(),
                        stage: stage.unwrap_or_else(|| "$default".to_owned()),
                    },
                    &request_id,
                    now_millis(),
                ),
                ApiKind::Rest => events::rest_api_event(
                    &request,
                    &RestApiRoute {
                        api_id: route.api.to_ascii_lowercase(),
                        resource: route.path.clone(),
                        stage: stage.unwrap_or_else(|| "Prod".to_owned()),
                    },
                    &request_id,
                    now_millis(),
                ),
            };
            match front.hosts.get(&route.function) {
                None => (500, json_response(500, &json!({"message": "Internal Server Error"}))),
                Some(host) => match host.invoke(event).await {
                    Ok(Invocation { outcome: Outcome::Response(value), .. }) => {
                        let answer = events::http_response(&value);
                        let status = answer.status;
                        let mut builder = Response::builder().status(status);
                        for (name, value) in &answer.headers {
                            builder = builder.header(name, value);
                        }
                        let response = builder
                            .body(Body::from(answer.body))
                            .unwrap_or_else(|_| json_response(502, &json!({"message": "Bad Gateway"})));
                        (status, response)
                    }
                    Ok(Invocation { outcome: Outcome::Timeout, .. }) => {
                        (503, json_response(503, &json!({"message": "Service Unavailable"})))
                    }
                    Ok(_) => (500, json_response(500, &json!({"message": "Internal Server Error"}))),
                    Err(error) => {
                        eprintln!("flowtrace local: {} {path}: {error}", method);
                        (500, json_response(500, &json!({"message": "Internal Server Error"})))
                    }
                },
            }
        }
    };
    let span = gateway.finish(matched.as_ref().map(|m| m.route), method.as_str(), &path, status);
    if let Err(error) = front.shared.sink.record(span) {
        eprintln!("flowtrace local: the gateway span: {error}");
    }
    response
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SAM's `SqsSubscription` with a `FilterPolicy`: only matching notifications reach the
    /// function's queue (moto applies the policy, as SNS does).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sns_subscriptions_go_through_a_queue_and_honour_the_filter_policy() {
        let moto = MotoClient { moto: Arc::new(Moto::start().await.unwrap()) };
        let topic = moto.moto.create_topic("posts").await.unwrap();
        let policy = json!({"kind": ["new"]});
        let (queue_url, subscription) =
            moto.subscribe_through_queue(&topic, "posts-to-fn", Some(&policy)).await.unwrap();
        assert!(subscription.starts_with(&topic), "{subscription}");
        for (message, kind) in [("skipped", "edit"), ("delivered", "new")] {
            moto.moto
                .query(
                    "sns",
                    &[
                        ("Action", "Publish"),
                        ("TopicArn", &topic),
                        ("Message", message),
                        ("MessageAttributes.entry.1.Name", "kind"),
                        ("MessageAttributes.entry.1.Value.DataType", "String"),
                        ("MessageAttributes.entry.1.Value.StringValue", kind),
                    ],
                )
                .await
                .unwrap();
        }
        let messages = moto.receive(&queue_url, 10).await.unwrap();
        assert_eq!(messages.len(), 1, "{messages:?}");
        let envelope: Value = serde_json::from_str(&messages[0].body).unwrap();
        assert_eq!(envelope["Message"], "delivered");
        let event = events::sns_event(&envelope, &subscription);
        assert_eq!(event["Records"][0]["Sns"]["MessageAttributes"]["kind"]["Value"], "new", "{event}");
        moto.delete(&queue_url, &messages[0].receipt_handle).await.unwrap();
        assert!(moto.receive(&queue_url, 10).await.unwrap().is_empty());
    }

    #[test]
    fn rate_schedules_are_driven_and_others_are_not() {
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate(" rate(5 minutes) "), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        for other in
            ["cron(0 12 * * ? *)", "rate(0 minutes)", "rate(x minutes)", "rate(5 weeks)", "rate(5)", "", "rate("]
        {
            assert_eq!(rate(other), None, "{other}");
        }
    }

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url_of("http://127.0.0.1:5000", "arn:aws:sqs:us-east-1:123456789012:posts").unwrap(),
            "http://127.0.0.1:5000/123456789012/posts"
        );
        assert!(queue_url_of("http://x", "posts").is_err());
    }

    #[test]
    fn sqs_json_messages_become_event_messages() {
        let message = sqs_message(&json!({
            "MessageId": "m-1",
            "ReceiptHandle": "r-1",
            "Body": "hello",
            "Attributes": {"AWSTraceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", "SentTimestamp": "1"},
            "MessageAttributes": {"traceparent": {"DataType": "String", "StringValue": "00-abc"}}
        }));
        assert_eq!(message.message_id, "m-1");
        assert_eq!(message.attributes["AWSTraceHeader"], "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
        assert_eq!(message.message_attributes["traceparent"].string_value.as_deref(), Some("00-abc"));
        let empty = sqs_message(&json!({}));
        assert_eq!(empty.body, "");
    }
}
