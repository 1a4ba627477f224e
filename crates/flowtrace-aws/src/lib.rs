//! OpenTelemetry spans for every AWS SDK call, and trace context carried across SNS, SQS,
//! Kinesis, DynamoDB (Streams), EventBridge and Lambda Invoke, so that the consumer functions
//! wrapped by `#[flowtrace::main]` continue the producer's trace.
//!
//! One line per client:
//!
//! ```no_run
//! # #[cfg(feature = "sqs")]
//! # async fn example(sdk_config: aws_types::SdkConfig) {
//! // from a loaded `SdkConfig`
//! let sqs = flowtrace_aws::sqs_client(&sdk_config);
//! // or from a service config builder you already have
//! let sqs = aws_sdk_sqs::Client::from_conf(
//!     flowtrace_aws::instrument(aws_sdk_sqs::config::Builder::from(&sdk_config)).build(),
//! );
//! # }
//! ```
//!
//! Any other `aws-sdk-*` client gets spans (without injection) from
//! `.interceptor(flowtrace_aws::FlowtraceInterceptor::new())` on its config builder.
//!
//! Every call is a span named `Service.Operation` (`SQS.SendMessage`), of kind PRODUCER for
//! the calls that send messages (SNS `Publish*`, SQS `SendMessage*`, Kinesis `PutRecord*`,
//! EventBridge `PutEvents`) and CLIENT otherwise. It covers every retry (`aws.request.attempts`)
//! and records `rpc.*`, `aws.region`, `aws.request_id`, `http.response.status_code`, the
//! service's own attributes and, on failure, `error.type` / `aws.error.code` with status Error.
//! The error the caller gets is never changed.
//!
//! Injection happens before the request is serialised and signed, and never changes what the
//! call means; where a limit would be passed it is skipped with a `flowtrace.injection.skipped`
//! span event saying why:
//!
//! | call | where the context goes | skipped when |
//! | --- | --- | --- |
//! | SQS `SendMessage`, `SendMessageBatch` | `traceparent`/`tracestate` message attributes; `AWSTraceHeader` system attribute (X-Ray) | more than 10 attributes, or 256 KiB |
//! | SNS `Publish`, `PublishBatch` | `traceparent`/`tracestate` message attributes | more than 10 attributes, 256 KiB, `MessageStructure=json` |
//! | Kinesis `PutRecord`, `PutRecords` | the reserved key (`_flowtrace`) in JSON-object data | data that is not a JSON object; a record over 1 MiB |
//! | DynamoDB `PutItem`, `UpdateItem`, `BatchWriteItem`, `TransactWriteItems` | the reserved attribute (a map), merged into the `UpdateExpression` with flowtrace's own placeholders | an item over 400 KB; excluded tables |
//! | EventBridge `PutEvents` | the reserved key in `Detail`; `TraceHeader` | detail that is not a JSON object; 256 KiB |
//! | Lambda `Invoke` | `ClientContext.custom` | a client context over 3583 bytes, or one that is not base64 JSON |
//!
//! `UpdateItem` with `ReturnValues=UPDATED_NEW|UPDATED_OLD` returns the user's changes only
//! (the reserved attribute is taken out of the output). The reserved attribute is otherwise
//! part of the item, as `GetItem`, `Query` and `ALL_NEW`/`ALL_OLD` show; it adds about 100
//! bytes to each item, and an `UpdateItem` that changes nothing else still changes it.
//! Exclude tables with [`ConfigBuilder::dynamodb_tables_deny`] where that matters.
//!
//! DynamoDB spans also get `aws.dynamodb.item_key_hash`
//! ([`flowtrace_contract::dynamodb_item_key_hash`] of table + primary key), which the consumer
//! computes from a stream record's `Keys`, so KEYS_ONLY streams and deletes can be joined too.
//!
//! Configuration: [`Config`] (builder, or `FLOWTRACE_AWS_*` variables read once).
#![warn(missing_docs)]

mod config;
#[cfg(feature = "from-env")]
pub mod from_env;
mod inject;
mod interceptor;
mod services;

pub use config::{Config, ConfigBuilder, ConfigError, Service};
pub use interceptor::FlowtraceInterceptor;

/// A service config builder that can take the flowtrace interceptor
/// (`aws_sdk_<service>::config::Builder` for each service feature that is on).
pub trait Instrumentable: Sized {
    /// Adds `interceptor` to the builder.
    fn with_interceptor(self, interceptor: FlowtraceInterceptor) -> Self;
}

/// Adds the flowtrace interceptor, configured from the environment, to a service config
/// builder.
///
/// ```no_run
/// # #[cfg(feature = "kinesis")]
/// # fn example(sdk_config: &aws_types::SdkConfig) {
/// let config = flowtrace_aws::instrument(aws_sdk_kinesis::config::Builder::from(sdk_config)).build();
/// let kinesis = aws_sdk_kinesis::Client::from_conf(config);
/// # }
/// ```
pub fn instrument<B: Instrumentable>(builder: B) -> B {
    builder.with_interceptor(FlowtraceInterceptor::new())
}

/// [`instrument`] with an explicit configuration.
pub fn instrument_with<B: Instrumentable>(builder: B, config: Config) -> B {
    builder.with_interceptor(FlowtraceInterceptor::with_config(config))
}

macro_rules! service_client {
    ($feature:literal, $krate:ident, $function:ident, $name:literal) => {
        #[cfg(feature = $feature)]
        impl Instrumentable for $krate::config::Builder {
            fn with_interceptor(self, interceptor: FlowtraceInterceptor) -> Self {
                self.interceptor(interceptor)
            }
        }

        #[doc = concat!("An instrumented ", $name, " client built from `sdk_config`.")]
        ///
        /// ```no_run
        /// # async fn example(sdk_config: aws_types::SdkConfig) {
        #[doc = concat!("let client = flowtrace_aws::", stringify!($function), "(&sdk_config);")]
        /// # }
        /// ```
        #[cfg(feature = $feature)]
        pub fn $function(sdk_config: &aws_types::SdkConfig) -> $krate::Client {
            $krate::Client::from_conf(instrument($krate::config::Builder::from(sdk_config)).build())
        }
    };
}

service_client!("sns", aws_sdk_sns, sns_client, "SNS");
service_client!("sqs", aws_sdk_sqs, sqs_client, "SQS");
service_client!("kinesis", aws_sdk_kinesis, kinesis_client, "Kinesis");
service_client!("dynamodb", aws_sdk_dynamodb, dynamodb_client, "DynamoDB");
service_client!("eventbridge", aws_sdk_eventbridge, eventbridge_client, "EventBridge");
service_client!("lambda", aws_sdk_lambda, lambda_client, "Lambda");
