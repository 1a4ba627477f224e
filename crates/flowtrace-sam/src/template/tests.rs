//! Tests: the template we ship, every intrinsic, long forms, malformed templates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn shipped(cx: &Context) -> Template {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    Template::from_path(path, cx).unwrap()
}

fn physical() -> PhysicalMap {
    let mut p = PhysicalMap::new();
    p.insert_ref("PostsTopic", "arn:aws:sns:us-east-1:123456789012:Posts-Notifications")
        .insert_ref("AnalysisStream", "Post-Analysis-Stream")
        .insert_ref("PostsTable", "BlogPostsDB")
        .insert_ref("FlowtraceLayer", "arn:aws:lambda:us-east-1:123456789012:layer:flowtrace:1")
        .insert_ref("BlogApi", "blogapi")
        .insert_att("AnalysisStream", "Arn", "arn:aws:kinesis:us-east-1:123456789012:stream/Post-Analysis-Stream")
        .insert_att("PostsTable", "StreamArn", "arn:aws:dynamodb:us-east-1:123456789012:table/BlogPostsDB/stream/x");
    p
}

#[test]
fn the_shipped_template_has_the_blog_site_and_hello() {
    let t = shipped(&Context::default());
    let names: Vec<&str> = t.functions.iter().map(|f| f.logical_id.as_str()).collect();
    assert_eq!(
        names,
        [
            "HelloFunction",
            "RequestProcessorFunction",
            "PostAnalysisFunction",
            "KinesisAnalysisFunction",
            "DbUpdateFunction"
        ]
    );
    let hello = t.function("HelloFunction").unwrap();
    assert_eq!(hello.binary, "hello");
    assert_eq!(hello.function_name, "hello", "FunctionName");
    assert_eq!(hello.code_uri.as_deref(), Some("./examples/hello"));
    assert_eq!(hello.build_method.as_deref(), Some("rust-cargolambda"));
    assert!(hello.events.is_empty());
    // Globals merged.
    for f in &t.functions {
        // post-analysis overrides the global timeout, so its slow path times out quickly.
        let timeout = if f.logical_id == "PostAnalysisFunction" { 3 } else { 10 };
        assert_eq!(f.timeout, Duration::from_secs(timeout), "{}", f.logical_id);
        assert_eq!(f.memory_mb, 128);
        assert_eq!(f.runtime.as_deref(), Some("provided.al2023"));
        assert_eq!(f.handler, "bootstrap");
        assert_eq!(f.architecture, "x86_64");
        assert_eq!(f.layers, vec![Expr::Ref("FlowtraceLayer".to_owned())]);
        assert!(f.environment.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"), "{}", f.logical_id);
    }

    let rp = t.function("RequestProcessorFunction").unwrap();
    assert_eq!(rp.binary, "request_processor");
    assert_eq!(
        rp.events,
        vec![Event {
            name: "NewPost".to_owned(),
            kind: EventKind::HttpApi {
                api: Some("BlogApi".to_owned()),
                method: "POST".to_owned(),
                path: "/new_post".to_owned()
            }
        }]
    );
    let pa = t.function("PostAnalysisFunction").unwrap();
    assert_eq!(
        pa.events[0].kind,
        EventKind::Sns { topic: Expr::Ref("PostsTopic".to_owned()), sqs_subscription: false, filter_policy: None }
    );
    let ka = t.function("KinesisAnalysisFunction").unwrap();
    assert_eq!(
        ka.events[0].kind,
        EventKind::Kinesis {
            stream: Expr::GetAtt { logical_id: "AnalysisStream".to_owned(), attribute: "Arn".to_owned() },
            starting_position: "TRIM_HORIZON".to_owned(),
            batch_size: 10
        }
    );
    let db = t.function("DbUpdateFunction").unwrap();
    let EventKind::DynamoDb { stream, starting_position, batch_size } = &db.events[0].kind else { panic!() };
    assert_eq!((starting_position.as_str(), *batch_size), ("TRIM_HORIZON", 10));
    assert_eq!(
        t.resolve(stream, &physical()).unwrap().as_deref(),
        Some("arn:aws:dynamodb:us-east-1:123456789012:table/BlogPostsDB/stream/x")
    );

    // Resources.
    assert_eq!(
        t.topics,
        vec![Topic { logical_id: "PostsTopic".into(), name: "Posts-Notifications".into(), fifo: false }]
    );
    assert_eq!(
        t.streams,
        vec![Stream {
            logical_id: "AnalysisStream".into(),
            name: "Post-Analysis-Stream".into(),
            mode: StreamMode::OnDemand
        }]
    );
    let table = &t.tables[0];
    assert_eq!(table.name, "BlogPostsDB");
    assert_eq!(table.billing_mode, "PAY_PER_REQUEST");
    assert_eq!(table.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    assert_eq!(table.key_schema, vec![KeySchemaElement { attribute_name: "id".into(), key_type: "HASH".into() }]);
    assert_eq!(
        table.attribute_definitions,
        vec![AttributeDefinition { attribute_name: "id".into(), attribute_type: "S".into() }]
    );
    assert_eq!(
        t.apis,
        vec![Api { logical_id: "BlogApi".into(), kind: ApiKind::Http, stage: "$default".into(), implicit: false }]
    );
    assert_eq!(
        t.layers,
        vec![Layer {
            logical_id: "FlowtraceLayer".into(),
            name: "flowtrace".into(),
            content_uri: Some("layer/flowtrace-layer-x86_64.zip".into())
        }]
    );
    assert!(t.queues.is_empty());
    assert!(t.ignored.is_empty(), "{:?}", t.ignored);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(t.physical_name("PostsTopic").unwrap(), "Posts-Notifications");
    assert_eq!(t.physical_name("BlogApi").unwrap(), "flowtrace-local-BlogApi");
    assert!(matches!(t.physical_name("Nope"), Err(ResolveError::UnknownReference(_))));

    // Outputs.
    let url = t.resolve(&t.outputs["NewPostUrl"], &physical()).unwrap();
    assert_eq!(url.as_deref(), Some("https://blogapi.execute-api.us-east-1.amazonaws.com/new_post"));
}

#[test]
fn the_shipped_environment_resolves_with_and_without_overrides() {
    let t = shipped(&Context::default());
    assert_eq!(t.condition("HasSlowMs"), Some(false));
    assert_eq!(t.condition("HasOtlpEndpoint"), Some(false));
    let env = t.resolve_environment(t.function("PostAnalysisFunction").unwrap(), &physical()).unwrap();
    assert_eq!(
        env,
        BTreeMap::from([
            ("ANALYSIS_STREAM_NAME".to_owned(), "Post-Analysis-Stream".to_owned()),
            ("SMS_API_URL".to_owned(), "http://127.0.0.1:9090/sms".to_owned()),
        ])
    );
    let env = t.resolve_environment(t.function("RequestProcessorFunction").unwrap(), &physical()).unwrap();
    assert_eq!(env["POSTS_TOPIC_ARN"], "arn:aws:sns:us-east-1:123456789012:Posts-Notifications");
    assert_eq!(env["AUTH_API_URL"], "http://127.0.0.1:9090/auth");
    let env = t.resolve_environment(t.function("KinesisAnalysisFunction").unwrap(), &physical()).unwrap();
    assert_eq!(env["POSTS_TABLE_NAME"], "BlogPostsDB");
    // Without the physical values, a resource reference is a clear error.
    assert_eq!(
        t.resolve_environment(t.function("KinesisAnalysisFunction").unwrap(), &NoPhysical),
        Err(ResolveError::NoPhysicalValue("PostsTable".to_owned()))
    );

    let cx = Context {
        parameter_overrides: BTreeMap::from([
            ("SlowMs".to_owned(), "5000".to_owned()),
            ("OtlpEndpoint".to_owned(), "http://127.0.0.1:4318".to_owned()),
        ]),
        ..Context::default()
    };
    let t = shipped(&cx);
    assert_eq!(t.condition("HasSlowMs"), Some(true));
    let env = t.resolve_environment(t.function("PostAnalysisFunction").unwrap(), &physical()).unwrap();
    assert_eq!(env["SLOW_MS"], "5000");
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://127.0.0.1:4318");
    assert_eq!(t.parameter_value("SlowMs"), Some("5000"));
}

const BASE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Subnets: {Type: CommaDelimitedList, Default: "a, b,c"}
  Nothing: {Type: String}
Mappings:
  Sizes:
    dev: {Memory: 256}
    prod: {Memory: 1024}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, {"Fn::Equals": [{"Ref": "AWS::Region"}, eu-west-1]}]
  Either: {"Fn::Or": [{"Condition": "IsProd"}, !Condition IsDev]}
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Fifo:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true, VisibilityTimeout: 60}
"#;

fn base() -> Template {
    Template::parse(BASE, &Context { region: "eu-west-1".into(), ..Context::default() }).unwrap()
}

fn expr(yaml: &str) -> Expr {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    Expr::from_yaml(&value, "test").unwrap()
}

fn resolve(t: &Template, yaml: &str) -> Result<Option<String>, ResolveError> {
    t.resolve(&expr(yaml), &physical_for_base())
}

fn physical_for_base() -> PhysicalMap {
    let mut p = PhysicalMap::new();
    p.insert_ref("Queue", "http://localhost/q").insert_att("Queue", "Arn", "arn:aws:sqs:eu-west-1:123456789012:q");
    p
}

#[test]
fn conditions_parameters_and_pseudo_parameters() {
    let t = base();
    assert_eq!(t.condition("IsProd"), Some(false));
    assert_eq!(t.condition("IsDev"), Some(true));
    assert_eq!(t.condition("Both"), Some(true));
    assert_eq!(t.condition("Either"), Some(true));
    assert_eq!(resolve(&t, "!Ref AWS::Region").unwrap().as_deref(), Some("eu-west-1"));
    assert_eq!(resolve(&t, "!Ref AWS::AccountId").unwrap().as_deref(), Some("123456789012"));
    assert_eq!(resolve(&t, "!Ref AWS::Partition").unwrap().as_deref(), Some("aws"));
    assert_eq!(resolve(&t, "!Ref AWS::StackName").unwrap().as_deref(), Some("flowtrace-local"));
    assert_eq!(resolve(&t, "!Ref AWS::URLSuffix").unwrap().as_deref(), Some("amazonaws.com"));
    assert_eq!(resolve(&t, "!Ref AWS::NoValue").unwrap(), None);
    assert_eq!(resolve(&t, "!Ref Stage").unwrap().as_deref(), Some("dev"));
    assert_eq!(resolve(&t, "!Ref Nothing"), Err(ResolveError::MissingParameter("Nothing".into())));
    assert_eq!(resolve(&t, "!Ref Missing"), Err(ResolveError::UnknownReference("Missing".into())));
    assert_eq!(resolve(&t, "!Ref Queue").unwrap().as_deref(), Some("http://localhost/q"));
    assert_eq!(resolve(&t, "!Ref Fifo"), Err(ResolveError::NoPhysicalValue("Fifo".into())));
    assert_eq!(t.resolve_list(&expr("!Ref Subnets"), &NoPhysical).unwrap().unwrap(), ["a", "b", "c"]);
    // Overrides win; a value outside AllowedValues is refused.
    let prod = Context { parameter_overrides: BTreeMap::from([("Stage".into(), "prod".into())]), ..Context::default() };
    let t = Template::parse(BASE, &prod).unwrap();
    assert_eq!(t.condition("IsProd"), Some(true));
    assert_eq!(t.condition("Both"), Some(false));
    let bad = Context { parameter_overrides: BTreeMap::from([("Stage".into(), "qa".into())]), ..Context::default() };
    let err = Template::parse(BASE, &bad).unwrap_err().to_string();
    assert!(err.contains("Parameters.Stage") && err.contains("qa"), "{err}");
    let unknown = Context { parameter_overrides: BTreeMap::from([("Nope".into(), "x".into())]), ..Context::default() };
    assert!(Template::parse(BASE, &unknown).unwrap().warnings[0].contains("Nope"));
}

#[test]
fn every_intrinsic_short_and_long() {
    let t = base();
    let cases: &[(&str, Option<&str>)] = &[
        ("!GetAtt Queue.Arn", Some("arn:aws:sqs:eu-west-1:123456789012:q")),
        ("{'Fn::GetAtt': [Queue, Arn]}", Some("arn:aws:sqs:eu-west-1:123456789012:q")),
        ("!Sub '${AWS::StackName}-${Stage}-x'", Some("flowtrace-local-dev-x")),
        ("!Sub 'q=${Queue} arn=${Queue.Arn}'", Some("q=http://localhost/q arn=arn:aws:sqs:eu-west-1:123456789012:q")),
        ("!Sub 'literal ${!Stage} and $ {x}'", Some("literal ${Stage} and $ {x}")),
        ("!Sub ['${A}-${B}', {A: one, B: !Ref Stage}]", Some("one-dev")),
        ("{'Fn::Sub': '${AWS::Region}'}", Some("eu-west-1")),
        ("!Join ['-', [a, !Ref Stage, !Ref 'AWS::NoValue', c]]", Some("a-dev-c")),
        ("{'Fn::Join': ['', [x, y]]}", Some("xy")),
        ("!Join [',', !Ref Subnets]", Some("a,b,c")),
        ("!Select [1, [x, y, z]]", Some("y")),
        ("!Select ['2', !Split [',', 'p,q,r']]", Some("r")),
        ("!Select [0, !Ref Subnets]", Some("a")),
        ("!If [IsProd, big, small]", Some("small")),
        ("{'Fn::If': [IsDev, !Ref AWS::NoValue, x]}", None),
        ("!FindInMap [Sizes, !Ref Stage, Memory]", Some("256")),
        ("{'Fn::FindInMap': [Sizes, prod, Memory]}", Some("1024")),
        ("!Select [0, !GetAZs '']", Some("eu-west-1a")),
        ("!Base64 hello", Some("aGVsbG8=")),
        ("!Equals [a, a]", Some("true")),
        ("!Not [!Equals [a, a]]", Some("false")),
        ("!Or [!Condition IsProd, !Condition IsDev]", Some("true")),
        ("!And [!Condition IsProd, !Condition IsDev]", Some("false")),
        ("42", Some("42")),
        ("true", Some("true")),
        ("~", None),
    ];
    for (yaml, expected) in cases {
        assert_eq!(resolve(&t, yaml).unwrap().as_deref(), *expected, "{yaml}");
    }
    let errors: &[(&str, &str)] = &[
        ("!Select [5, [x]]", "out of"),
        ("!Select [x, [x]]", "not a number"),
        ("!If [Unknown, a, b]", "Unknown"),
        ("!FindInMap [Sizes, qa, Memory]", "no such entry"),
        ("!GetAtt Queue.QueueName", "Queue.QueueName"),
        ("!GetAtt Ghost.Arn", "Ghost"),
        ("!Sub '${Ghost}'", "Ghost"),
        ("!ImportValue shared", "Fn::ImportValue"),
        ("!Split ['', abc]", "delimiter"),
        ("[a, b]", "list"),
        ("{a: b}", "mapping"),
    ];
    for (yaml, fragment) in errors {
        let err = resolve(&t, yaml).unwrap_err().to_string();
        assert!(err.contains(fragment), "{yaml}: {err}");
    }
    assert_eq!(
        t.resolve_json(
            &expr("{a: [1, !Ref Stage, !Ref AWS::NoValue], b: !If [IsProd, x, !Ref AWS::NoValue], c: true}"),
            &NoPhysical
        )
        .unwrap()
        .unwrap(),
        serde_json::json!({"a": [1, "dev"], "c": true})
    );
    assert_eq!(expr("!Sub '${Queue.Arn}-${Stage}-${AWS::Region}'").references(), ["AWS::Region", "Queue", "Stage"]);
}

#[test]
fn malformed_templates_are_clear_errors() {
    let cx = Context::default();
    let cases: &[(&str, &str)] = &[
        ("", "expected a mapping"),
        (": : :", "YAML"),
        ("- a\n- b", "expected a mapping"),
        ("Resources: {}", "no resources"),
        ("Resources: {X: {Properties: {}}}", "Resources.X: no Type"),
        ("Resources: {X: 3}", "Resources.X"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {VisibilityTimeout: soon}}}", "VisibilityTimeout"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt [a]}}}", "Fn::GetAtt"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub 'a${b'}}}", "unclosed"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {QueueName: !If [a, b]}}}", "Fn::If"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {QueueName: !Join [a]}}}", "Fn::Join"),
        ("Resources: {X: {Type: AWS::SQS::Queue, Properties: {QueueName: !Ref Y}}}", "QueueName"),
        ("Conditions: {A: !Condition B, B: !Condition A}\nResources: {X: {Type: AWS::SNS::Topic}}", "circular"),
        ("Conditions: {A: !Condition Z}\nResources: {X: {Type: AWS::SNS::Topic}}", "Z"),
        ("Conditions: {A: x}\nResources: {X: {Type: AWS::SNS::Topic}}", "condition must be"),
        ("Resources: {X: {Type: AWS::SNS::Topic, Condition: Nope}}", "Nope"),
        ("Resources: {T: {Type: AWS::DynamoDB::Table, Properties: {}}}", "KeySchema"),
        ("Resources: {F: {Type: AWS::Serverless::Function, Properties: {Events: {E: {Properties: {}}}}}}", "Type"),
        ("Resources: {F: {Type: AWS::Serverless::Function, Properties: {Events: {E: {Type: SQS}}}}}", "needs Queue"),
        ("Resources: {F: {Type: AWS::Serverless::Function, Properties: {Timeout: -1}}}", "Timeout"),
        ("Resources: {F: {Type: AWS::Serverless::Function, Properties: {MemorySize: 99999999999}}}", "too large"),
    ];
    for (yaml, fragment) in cases {
        let err = Template::parse(yaml, &cx).unwrap_err().to_string();
        assert!(err.contains(fragment), "{yaml}: {err}");
    }
    let missing = Template::from_path("/nonexistent/template.yaml", &cx).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/template.yaml"), "{missing}");
}

#[test]
fn events_resources_globals_and_unknown_types() {
    let yaml = r#"
Globals:
  Function:
    Timeout: 30
    Layers: [arn:aws:lambda:us-east-1:1:layer:g:1]
    Environment: {Variables: {A: global, B: global}}
Conditions:
  Never: !Equals [a, b]
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Queue: {Type: AWS::SQS::Queue, Properties: {QueueName: !Sub "${AWS::StackName}-jobs"}}
  Shards: {Type: AWS::Kinesis::Stream, Properties: {ShardCount: 4}}
  Simple: {Type: AWS::Serverless::SimpleTable, Properties: {PrimaryKey: {Name: pk, Type: Number}}}
  Bucket: {Type: AWS::S3::Bucket}
  Skipped: {Type: AWS::SNS::Topic, Condition: Never}
  Rest: {Type: AWS::Serverless::Api, Properties: {StageName: v1}}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: worker
      Handler: main
      Timeout: 5
      MemorySize: 512
      Architectures: [arm64]
      Layers: [!Ref Other]
      Environment: {Variables: {B: own, C: !Ref Topic}}
      Events:
        Http: {Type: HttpApi}
        Rest: {Type: Api, Properties: {Method: get, Path: '/items/{id}'}}
        Note:
          Type: SNS
          Properties:
            Topic: !Ref Topic
            SqsSubscription: true
            FilterPolicy: {kind: [a]}
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
        Stream: {Type: Kinesis, Properties: {Stream: !GetAtt Shards.Arn, StartingPosition: LATEST}}
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute), Input: '{"x":1}'}}
        Rule: {Type: EventBridgeRule, Properties: {Pattern: {source: [app]}, EventBusName: bus}}
        Upload: {Type: S3, Properties: {Bucket: !Ref Bucket, Events: 's3:ObjectCreated:*'}}
  Other: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: {Bucket: b, Key: k}}}
"#;
    let t = Template::parse(yaml, &Context::default()).unwrap();
    let f = t.function("Worker").unwrap();
    assert_eq!(f.function_name, "worker");
    assert_eq!(f.handler, "main");
    assert_eq!(f.binary, "bootstrap");
    assert_eq!(f.timeout, Duration::from_secs(5));
    assert_eq!(f.memory_mb, 512);
    assert_eq!(f.architecture, "arm64");
    assert_eq!(f.layers, vec![Expr::String("arn:aws:lambda:us-east-1:1:layer:g:1".into()), Expr::Ref("Other".into())]);
    assert_eq!(f.environment["A"], Expr::String("global".into()));
    assert_eq!(f.environment["B"], Expr::String("own".into()));
    assert_eq!(f.environment["C"], Expr::Ref("Topic".into()));
    let kinds: BTreeMap<&str, &EventKind> = f.events.iter().map(|e| (e.name.as_str(), &e.kind)).collect();
    assert_eq!(kinds["Http"], &EventKind::HttpApi { api: None, method: "ANY".into(), path: "$default".into() });
    assert_eq!(kinds["Rest"], &EventKind::Api { method: "get".into(), path: "/items/{id}".into() });
    let EventKind::Sns { sqs_subscription, filter_policy, .. } = kinds["Note"] else { panic!() };
    assert!(*sqs_subscription);
    assert_eq!(
        t.resolve_json(filter_policy.as_ref().unwrap(), &NoPhysical).unwrap(),
        Some(serde_json::json!({"kind": ["a"]}))
    );
    assert!(matches!(kinds["Jobs"], EventKind::Sqs { batch_size: 10, .. }));
    assert!(matches!(kinds["Stream"], EventKind::Kinesis { batch_size: 100, .. }));
    assert_eq!(
        kinds["Tick"],
        &EventKind::Schedule { schedule: "rate(1 minute)".into(), input: Some(r#"{"x":1}"#.into()), enabled: true }
    );
    assert!(matches!(kinds["Rule"], EventKind::EventBridgeRule { bus: Some(_), .. }));
    assert_eq!(kinds["Upload"], &EventKind::Other { kind: "S3".into() });
    assert_eq!(t.warnings.len(), 1);
    assert!(t.warnings[0].contains("Upload") && t.warnings[0].contains("S3"), "{:?}", t.warnings);

    assert_eq!(t.physical_name("Topic").unwrap(), "flowtrace-local-Topic");
    assert_eq!(t.physical_name("Queue").unwrap(), "flowtrace-local-jobs");
    assert_eq!(t.physical_name("Worker").unwrap(), "worker");
    assert_eq!(t.streams[0].mode, StreamMode::Provisioned { shard_count: 4 });
    assert_eq!(t.queues[0].visibility_timeout, Duration::from_secs(30));
    let simple = &t.tables[0];
    assert!(simple.simple);
    assert_eq!(simple.billing_mode, "PAY_PER_REQUEST");
    assert_eq!(simple.attribute_definitions[0].attribute_type, "N");
    assert_eq!(simple.key_schema[0].attribute_name, "pk");
    assert_eq!(t.layers[0].content_uri, None);
    let ignored: Vec<&str> = t.ignored.iter().map(|r| r.logical_id.as_str()).collect();
    assert_eq!(ignored, ["Bucket", "Skipped"]);
    let apis: Vec<(&str, ApiKind, &str, bool)> =
        t.apis.iter().map(|a| (a.logical_id.as_str(), a.kind, a.stage.as_str(), a.implicit)).collect();
    assert_eq!(
        apis,
        [
            ("Rest", ApiKind::Rest, "v1", false),
            ("ServerlessHttpApi", ApiKind::Http, "$default", true),
            ("ServerlessRestApi", ApiKind::Rest, "Prod", true)
        ]
    );

    let base = base();
    assert_eq!(base.queues[1].name, "flowtrace-local-Fifo.fifo");
    assert!(base.queues[1].fifo);
    assert_eq!(base.queues[1].visibility_timeout, Duration::from_secs(60));
}

#[test]
fn json_templates_and_deep_nesting_do_not_panic() {
    let json = r#"{"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]}}}}}"#;
    let t = Template::parse(json, &Context::default()).unwrap();
    assert_eq!(t.topics[0].name, "a-us-east-1");
    let mut deep = "x".to_owned();
    for _ in 0..200 {
        deep = format!("!Base64 [{deep}]");
    }
    // Either an error or a value, never a panic or a stack overflow.
    let t = base();
    if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&deep)
        && let Ok(e) = Expr::from_yaml(&value, "deep")
    {
        let _ = t.resolve(&e, &NoPhysical);
    }
}
