//! The blog-site example's request-processor end to end: the function, built as it ships
//! (`-p blog-site`), runs under the Lambda Runtime API emulator with the local stand-ins for
//! its external APIs (`external_apis`) and a moto server for SNS, and exports OTLP/HTTP to a
//! local receiver.

use std::time::Duration;

use flowtrace_tests::{
    ChildProcess, Invocation, Invoke, LambdaConfig, LambdaEnv, Moto, OtlpReceiver, Outcome, Span, SpanKind, StatusCode,
    free_port, workspace_bin,
};
use serde_json::{Value, json};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
/// The upstream API Gateway request's trace: the invocation continues it.
const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const UPSTREAM_SPAN_ID: &str = "eee19b7ec3c1b174";

/// An API Gateway HTTP API (v2) event for `POST /new_post` with `body` as its JSON body.
fn new_post_event(body: &Value) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /new_post",
        "rawPath": "/new_post",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "blogapi.execute-api.us-east-1.amazonaws.com",
            "traceparent": format!("00-{TRACE_ID}-{UPSTREAM_SPAN_ID}-01"),
            "user-agent": "curl/8.5.0"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "blogapi",
            "domainName": "blogapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "blogapi",
            "http": {
                "method": "POST",
                "path": "/new_post",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "blog-site-e2e",
            "routeKey": "POST /new_post",
            "stage": "$default",
            "time": "24/Nov/2026:23:45:00 +0000",
            "timeEpoch": 1795650300000_u64
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

fn post(author: &str) -> Value {
    json!({
        "title": "Tracing a serverless blog",
        "body": "One trace across every hop. It just works!",
        "author": author,
        "phone": "+44 20 7946 0958"
    })
}

/// The status code and JSON body of an API Gateway v2 response.
fn http_answer(invocation: &Invocation) -> TestResult<(i64, Value)> {
    let response = invocation.response()?;
    let status = response["statusCode"].as_i64().ok_or_else(|| format!("no statusCode in {response}"))?;
    let body = response["body"].as_str().ok_or_else(|| format!("no body in {response}"))?;
    Ok((status, serde_json::from_str(body)?))
}

/// Everything request-processor needs, started on loopback; all of it stops on drop.
struct App {
    moto: Moto,
    _apis: ChildProcess,
    receiver: OtlpReceiver,
    env: LambdaEnv,
    _function: ChildProcess,
    queue_url: String,
    topic_arn: String,
    apis_port: String,
}

impl App {
    /// moto with the posts topic and an SQS queue subscribed to it, the external API
    /// stand-ins, an OTLP receiver, and request-processor under the emulator.
    async fn start() -> TestResult<Self> {
        let request_processor = workspace_bin("blog-site", "request_processor")?;
        let external_apis = workspace_bin("blog-site", "external_apis")?;

        let moto = Moto::start().await?;
        let topic_arn = moto.create_topic("Posts-Notifications").await?;
        let (queue_url, queue_arn) = moto.create_queue("posts-copy").await?;
        moto.subscribe_queue(&topic_arn, &queue_arn).await?;

        let port = free_port().to_string();
        let apis = ChildProcess::spawn(
            "external_apis",
            &external_apis,
            &[],
            &[("EXTERNAL_APIS_PORT", port.as_str()), ("AUTH_DENIED_AUTHORS", "mallory")],
        )?;
        apis.wait_for_output("listening on", WAIT).await?;

        let receiver = OtlpReceiver::start().await?;
        let env = LambdaEnv::start_with(LambdaConfig {
            function_name: "request-processor".to_owned(),
            ..LambdaConfig::default()
        })
        .await?;
        let endpoint = receiver.endpoint();
        let auth_url = format!("http://127.0.0.1:{port}/auth");
        let sdk_env = moto.sdk_env();
        let mut vars: Vec<(&str, &str)> = sdk_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.extend([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("AUTH_API_URL", auth_url.as_str()),
            ("POSTS_TOPIC_ARN", topic_arn.as_str()),
        ]);
        let function = env.spawn_function(&request_processor, &vars).await?;
        Ok(Self { moto, _apis: apis, receiver, env, _function: function, queue_url, topic_arn, apis_port: port })
    }

    /// Starts `bin` of blog-site under a new emulator, exporting to the same receiver, with
    /// moto's SDK settings plus `vars`.
    async fn spawn(
        &self,
        bin: &str,
        function_name: &str,
        vars: &[(&str, &str)],
    ) -> TestResult<(LambdaEnv, ChildProcess)> {
        let path = workspace_bin("blog-site", bin)?;
        let env =
            LambdaEnv::start_with(LambdaConfig { function_name: function_name.to_owned(), ..LambdaConfig::default() })
                .await?;
        let endpoint = self.receiver.endpoint();
        let sdk_env = self.moto.sdk_env();
        let mut all: Vec<(&str, &str)> = sdk_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()));
        all.extend_from_slice(vars);
        let function = env.spawn_function(&path, &all).await?;
        Ok((env, function))
    }

    async fn new_post(&self, body: &Value) -> TestResult<Invocation> {
        Ok(self.env.invoke(Invoke::new(new_post_event(body)).timeout(WAIT)).await?)
    }

    /// The invocation span of `request_id` and every span of its trace exported so far,
    /// once the spans `done` asks for are there.
    async fn trace_of(&self, request_id: &str, done: impl Fn(&[Span]) -> bool) -> TestResult<(Span, Vec<Span>)> {
        let is_invocation = |s: &Span| s.attr_str("faas.invocation_id") == Some(request_id);
        let spans = self
            .receiver
            .wait_until(&format!("the spans of {request_id}"), WAIT, |spans| {
                spans.iter().any(is_invocation) && done(spans)
            })
            .await?;
        let invocation = spans.iter().find(|s| is_invocation(s)).cloned().ok_or("vanished")?;
        let trace = spans.into_iter().filter(|s| s.trace_id == invocation.trace_id).collect();
        Ok((invocation, trace))
    }
}

/// Whether `span` is `ancestor` or below it in `trace`.
fn descends_from(span: &Span, ancestor: &Span, trace: &[Span]) -> bool {
    let mut current = span.clone();
    for _ in 0..trace.len() + 1 {
        if current.span_id == ancestor.span_id {
            return true;
        }
        let Some(parent) = current.parent_span_id.as_deref() else { return false };
        let Some(next) = trace.iter().find(|s| s.span_id == parent) else { return false };
        current = next.clone();
    }
    false
}

fn named<'a>(trace: &'a [Span], name: &str) -> Vec<&'a Span> {
    trace.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_post_is_authorized_published_and_traced() -> TestResult {
    let app = App::start().await?;

    let accepted = app.new_post(&post("ada")).await?;
    let (status, body) = http_answer(&accepted)?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], accepted.request_id.as_str());

    // The post reached SNS: the subscribed queue holds the SNS envelope with the post.
    let messages = app.moto.receive_messages(&app.queue_url, WAIT).await?;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let envelope: Value = serde_json::from_str(&messages[0])?;
    let published: Value = serde_json::from_str(envelope["Message"].as_str().ok_or("no Message")?)?;
    assert_eq!(published["id"], accepted.request_id.as_str());
    assert_eq!(published["author"], "ada");
    assert_eq!(published["title"], "Tracing a serverless blog");

    // One trace: API Gateway's → the invocation → the auth call and SNS.Publish under it.
    let (invocation, trace) = app
        .trace_of(&accepted.request_id, |spans| {
            spans.iter().any(|s| s.name == "SNS.Publish") && spans.iter().any(|s| s.name == "POST /auth")
        })
        .await?;
    assert_eq!(invocation.trace_id, TRACE_ID);
    assert_eq!(invocation.parent_span_id.as_deref(), Some(UPSTREAM_SPAN_ID));
    assert_eq!(invocation.kind, SpanKind::Server);
    assert_eq!(invocation.attr_str("faas.trigger"), Some("http"));
    assert_eq!(invocation.name, "POST /new_post");
    assert_eq!(invocation.status.code, StatusCode::Unset);

    let auth = named(&trace, "POST /auth");
    assert_eq!(auth.len(), 1, "{trace:#?}");
    let auth = auth[0];
    assert_eq!(auth.kind, SpanKind::Client);
    assert_eq!(auth.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(auth.attr_str("url.template"), Some("/auth"));
    assert!(descends_from(auth, &invocation, &trace), "auth call {auth} is not under {invocation}");
    // Exactly: invocation → authorize (#[tracing::instrument]) → POST /auth.
    let authorize = named(&trace, "authorize");
    assert_eq!(authorize.len(), 1, "{trace:#?}");
    assert!(authorize[0].is_child_of(&invocation) && auth.is_child_of(authorize[0]), "{trace:#?}");

    let publish = named(&trace, "SNS.Publish");
    assert_eq!(publish.len(), 1, "{trace:#?}");
    let publish = publish[0];
    assert!(matches!(publish.kind, SpanKind::Producer | SpanKind::Client), "{publish}");
    assert_eq!(publish.status.code, StatusCode::Unset, "{publish}");
    assert!(descends_from(publish, &invocation, &trace), "SNS.Publish {publish} is not under {invocation}");
    // Exactly: invocation → publish (#[tracing::instrument]) → SNS.Publish.
    let publish_fn = named(&trace, "publish");
    assert_eq!(publish_fn.len(), 1, "{trace:#?}");
    assert!(publish_fn[0].is_child_of(&invocation) && publish.is_child_of(publish_fn[0]), "{trace:#?}");

    // The published message carries SNS.Publish's context on to post-analysis.
    let traceparent = envelope["MessageAttributes"]["traceparent"]["Value"].as_str().ok_or("no traceparent")?;
    assert_eq!(traceparent, format!("00-{TRACE_ID}-{}-01", publish.span_id));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_unauthorized_posts_are_refused_and_nothing_is_published() -> TestResult {
    let app = App::start().await?;

    // 400: a post without a phone number. The auth API is never asked.
    let mut incomplete = post("ada");
    incomplete["phone"] = json!("");
    let invalid = app.new_post(&incomplete).await?;
    let (status, body) = http_answer(&invalid)?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "phone must not be empty");
    let (invocation, trace) = app.trace_of(&invalid.request_id, |_| true).await?;
    assert_eq!(invocation.status.code, StatusCode::Unset, "a 400 is not the function's error");
    assert!(named(&trace, "POST /auth").is_empty(), "{trace:#?}");

    // 400: not JSON at all.
    let garbage = app.env.invoke(Invoke::new(new_post_event(&json!("not a post"))).timeout(WAIT)).await?;
    assert_eq!(http_answer(&garbage)?.0, 400);

    // 401: the auth API refuses the author (403); its client span is an error, the
    // invocation is not.
    let refused = app.new_post(&post("mallory")).await?;
    let (status, body) = http_answer(&refused)?;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("mallory may not post")), "{body}");
    let (invocation, trace) =
        app.trace_of(&refused.request_id, |spans| spans.iter().any(|s| s.name == "POST /auth")).await?;
    let auth = named(&trace, "POST /auth");
    assert_eq!(auth.len(), 1, "{trace:#?}");
    assert_eq!(auth[0].attr_i64("http.response.status_code"), Some(403));
    assert_eq!(auth[0].status.code, StatusCode::Error);
    assert!(descends_from(auth[0], &invocation, &trace));
    assert!(named(&trace, "SNS.Publish").is_empty(), "{trace:#?}");

    // Nothing reached the topic.
    let xml = app
        .moto
        .query(
            "sqs",
            &[
                ("Action", "GetQueueAttributes"),
                ("QueueUrl", &app.queue_url),
                ("AttributeName.1", "ApproximateNumberOfMessages"),
            ],
        )
        .await?;
    assert!(xml.contains("<Value>0</Value>"), "{xml}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_api_that_is_down_gives_502() -> TestResult {
    let request_processor = workspace_bin("blog-site", "request_processor")?;
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let endpoint = receiver.endpoint();
    // Nothing listens here.
    let dead = format!("http://127.0.0.1:{}/auth", free_port());
    let _function = env
        .spawn_function(
            &request_processor,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("AUTH_API_URL", dead.as_str()),
                ("POSTS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:Posts-Notifications"),
            ],
        )
        .await?;
    let down = env.invoke(Invoke::new(new_post_event(&post("ada"))).timeout(WAIT)).await?;
    let (status, body) = http_answer(&down)?;
    assert_eq!(status, 502, "{body}");
    let auth = receiver.wait_for_span("POST /auth", WAIT).await?;
    assert_eq!(auth.status.code, StatusCode::Error);
    assert_eq!(auth.attr_str("error.type"), Some("connection_refused"));
    Ok(())
}

/// The invocation span of `request_id` among `spans`.
fn invocation_of<'a>(spans: &'a [Span], request_id: &str) -> TestResult<&'a Span> {
    Ok(spans.iter().find(|s| s.attr_str("faas.invocation_id") == Some(request_id)).ok_or("no invocation span")?)
}

/// The RecordSpan of a one-record batch: the invocation already continues the record's trace,
/// so the record span nests under the invocation span.
fn record_span_of<'a>(spans: &'a [Span], invocation: &Span) -> TestResult<&'a Span> {
    Ok(spans
        .iter()
        .find(|s| s.is_child_of(invocation) && s.kind == SpanKind::Consumer)
        .ok_or_else(|| format!("no record span for {invocation}"))?)
}

/// The one span named `name` below `ancestor`.
fn one_under<'a>(spans: &'a [Span], name: &str, ancestor: &Span) -> TestResult<&'a Span> {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name && descends_from(s, ancestor, spans)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!("{} spans named {name} under {ancestor}", found.len()).into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_is_one_trace_through_all_four_functions() -> TestResult {
    let app = App::start().await?;
    let moto = &app.moto;
    // The stream and the table (with its NEW_AND_OLD_IMAGES stream), as template.yaml has them.
    moto.json_call(
        "kinesis",
        "Kinesis_20131202.CreateStream",
        &json!({"StreamName": "Post-Analysis-Stream", "ShardCount": 1}),
    )
    .await?;
    let table = moto
        .json_call(
            "dynamodb",
            "DynamoDB_20120810.CreateTable",
            &json!({
                "TableName": "BlogPostsDB",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
            }),
        )
        .await?;
    let table_stream = table["TableDescription"]["LatestStreamArn"].as_str().ok_or("no stream ARN")?.to_owned();

    // 1. request-processor.
    let accepted = app.new_post(&post("ada")).await?;
    assert_eq!(http_answer(&accepted)?.0, 201);
    let messages = app.moto.receive_messages(&app.queue_url, WAIT).await?;
    let envelope: Value = serde_json::from_str(&messages[0])?;

    // 2. post-analysis, with the SNS event Lambda would build from that notification.
    let sms_url = format!("http://127.0.0.1:{}/sms", app.apis_port);
    let (analysis_env, _analysis) = app
        .spawn(
            "post_analysis",
            "post-analysis",
            &[("SMS_API_URL", sms_url.as_str()), ("ANALYSIS_STREAM_NAME", "Post-Analysis-Stream")],
        )
        .await?;
    let sns_event = json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:post-analysis", app.topic_arn),
        "Sns": envelope,
    }]});
    let analysed = analysis_env.invoke(Invoke::new(sns_event).timeout(WAIT)).await?;
    analysed.response()?;

    // 3. kinesis-analysis, with the record post-analysis put on the stream.
    let shards = moto
        .json_call("kinesis", "Kinesis_20131202.ListShards", &json!({"StreamName": "Post-Analysis-Stream"}))
        .await?;
    let shard_id = shards["Shards"][0]["ShardId"].as_str().ok_or("no shard")?;
    let iterator = moto
        .json_call(
            "kinesis",
            "Kinesis_20131202.GetShardIterator",
            &json!({"StreamName": "Post-Analysis-Stream", "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await?;
    let records = moto
        .json_call("kinesis", "Kinesis_20131202.GetRecords", &json!({"ShardIterator": iterator["ShardIterator"]}))
        .await?;
    let record = &records["Records"][0];
    let sequence_number = record["SequenceNumber"].as_str().ok_or("no record on the stream")?;
    let kinesis_event = json!({"Records": [{
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence_number,
            "data": record["Data"],
            "approximateArrivalTimestamp": 1_795_650_300.5
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{shard_id}:{sequence_number}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/kinesis-analysis",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/Post-Analysis-Stream"
    }]});
    let (kinesis_env, _kinesis) =
        app.spawn("kinesis_analysis", "kinesis-analysis", &[("POSTS_TABLE_NAME", "BlogPostsDB")]).await?;
    let stored = kinesis_env.invoke(Invoke::new(kinesis_event).timeout(WAIT)).await?;
    stored.response()?;

    // 4. db-update, with the INSERT from the table's stream.
    let stream = moto
        .json_call("dynamodb", "DynamoDBStreams_20120810.DescribeStream", &json!({"StreamArn": table_stream}))
        .await?;
    let shard_id = stream["StreamDescription"]["Shards"][0]["ShardId"].as_str().ok_or("no stream shard")?;
    let iterator = moto
        .json_call(
            "dynamodb",
            "DynamoDBStreams_20120810.GetShardIterator",
            &json!({"StreamArn": table_stream, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await?;
    let changes = moto
        .json_call(
            "dynamodb",
            "DynamoDBStreams_20120810.GetRecords",
            &json!({"ShardIterator": iterator["ShardIterator"]}),
        )
        .await?;
    let mut insert = changes["Records"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["eventName"] == "INSERT"))
        .cloned()
        .ok_or("no INSERT")?;
    insert["eventSourceARN"] = json!(table_stream);
    let (update_env, _update) = app.spawn("db_update", "db-update", &[("POSTS_TABLE_NAME", "BlogPostsDB")]).await?;
    let updated = update_env.invoke(Invoke::new(json!({"Records": [insert]})).timeout(WAIT)).await?;
    updated.response()?;

    // The post is stored, analysed and marked processed.
    let item = moto
        .json_call(
            "dynamodb",
            "DynamoDB_20120810.GetItem",
            &json!({"TableName": "BlogPostsDB", "Key": {"id": {"S": accepted.request_id}}}),
        )
        .await?;
    assert_eq!(item["Item"]["processed"]["BOOL"], true, "{item}");
    assert_eq!(item["Item"]["word_count"]["N"], "8", "{item}");
    assert_eq!(item["Item"]["notified"]["BOOL"], true, "{item}");

    // One trace: request-processor → SNS.Publish → post-analysis → Kinesis.PutRecord →
    // kinesis-analysis → DynamoDB.PutItem → db-update, with both external APIs.
    let ids = [&accepted.request_id, &analysed.request_id, &stored.request_id, &updated.request_id];
    let spans = app
        .receiver
        .wait_until("the four invocations and the update", WAIT, |spans| {
            ids.iter().all(|id| spans.iter().any(|s| s.attr_str("faas.invocation_id") == Some(id.as_str())))
                && spans.iter().any(|s| s.name == "DynamoDB.UpdateItem")
        })
        .await?;
    let trace: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let request = invocation_of(&trace, &accepted.request_id)?;
    let analysis = invocation_of(&trace, &analysed.request_id)?;
    let kinesis = invocation_of(&trace, &stored.request_id)?;
    let update = invocation_of(&trace, &updated.request_id)?;
    for (span, service) in [
        (request, "request-processor"),
        (analysis, "post-analysis"),
        (kinesis, "kinesis-analysis"),
        (update, "db-update"),
    ] {
        assert_eq!(span.resource_str("service.name"), Some(service), "{span}");
        assert_eq!(span.status.code, StatusCode::Unset, "{span}");
    }

    one_under(&trace, "POST /auth", request)?;
    let publish = one_under(&trace, "SNS.Publish", request)?;
    assert!(analysis.is_child_of(publish), "post-analysis {analysis} under {publish}");
    let sms = one_under(&trace, "POST /sms", analysis)?;
    assert_eq!(sms.attr_i64("http.response.status_code"), Some(200));
    let put_record = one_under(&trace, "Kinesis.PutRecord", analysis)?;
    // The invocation continues the record's trace, so each record's RecordSpan nests under the
    // invocation span, and the work happens under the record span.
    let kinesis_record = record_span_of(&trace, kinesis)?;
    assert!(kinesis.is_child_of(put_record), "{kinesis} under {put_record}");
    let put_item = one_under(&trace, "DynamoDB.PutItem", kinesis_record)?;
    assert!(descends_from(update, put_item, &trace), "db-update {update} under {put_item}");
    let update_record = record_span_of(&trace, update)?;
    assert!(update.is_child_of(put_item), "{update} under {put_item}");
    one_under(&trace, "DynamoDB.UpdateItem", update_record)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_post_analysis_times_out_and_the_trace_names_the_hanging_call() -> TestResult {
    let app = App::start().await?;
    let mut slow = post("ada");
    slow["title"] = json!("A slow post");
    let accepted = app.new_post(&slow).await?;
    assert_eq!(http_answer(&accepted)?.0, 201);
    let messages = app.moto.receive_messages(&app.queue_url, WAIT).await?;
    let envelope: Value = serde_json::from_str(&messages[0])?;

    let sms_url = format!("http://127.0.0.1:{}/sms", app.apis_port);
    let (analysis_env, _analysis) = app
        .spawn(
            "post_analysis",
            "post-analysis",
            &[
                ("SMS_API_URL", sms_url.as_str()),
                ("ANALYSIS_STREAM_NAME", "Post-Analysis-Stream"),
                ("SLOW_MS", "5000"),
                ("FLOWTRACE_TIMEOUT_MARGIN_MS", "200"),
            ],
        )
        .await?;
    let sns_event = json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:post-analysis", app.topic_arn),
        "Sns": envelope,
    }]});
    // One second to live; the slow path waits five.
    let hung = analysis_env.invoke(Invoke::new(sns_event).timeout(Duration::from_secs(1))).await?;
    assert_eq!(hung.outcome, Outcome::Timeout);

    let (invocation, trace) =
        app.trace_of(&hung.request_id, |spans| spans.iter().any(|s| s.name == "slow_analysis")).await?;
    assert_eq!(invocation.trace_id, TRACE_ID, "the timed-out invocation stays in the request's trace");
    assert_eq!(invocation.status.code, StatusCode::Error);
    assert!(
        invocation.status.message.contains("waiting on") && invocation.status.message.contains("slow_analysis"),
        "{:?}",
        invocation.status
    );
    assert_eq!(invocation.attr_str("flowtrace.cut_off"), Some("timeout"));
    let hanging = one_under(&trace, "slow_analysis", &invocation)?;
    assert_eq!(hanging.attr_str("flowtrace.cut_off"), Some("timeout"));
    assert_eq!(hanging.status.code, StatusCode::Error);
    assert!(named(&trace, "Kinesis.PutRecord").is_empty(), "nothing was put after the hang: {trace:#?}");
    Ok(())
}
