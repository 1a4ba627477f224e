//! Instrumented clients configured from the environment (region, credentials, endpoints),
//! as a Lambda function's are: one line, no configuration to pass around.
//!
//! ```no_run
//! # #[cfg(feature = "kinesis")]
//! # async fn example() {
//! let kinesis = flowtrace_aws::from_env::kinesis_client().await;
//! # }
//! ```
//!
//! The environment's configuration is loaded once per process and shared by every client.

use aws_types::SdkConfig;
use std::sync::OnceLock;

/// The environment's AWS configuration (`aws_config::defaults` with the latest behavior
/// version), loaded on first use and shared afterwards.
pub async fn sdk_config() -> SdkConfig {
    static CONFIG: OnceLock<SdkConfig> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return config.clone();
    }
    let loaded = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    CONFIG.get_or_init(|| loaded).clone()
}

macro_rules! from_env_client {
    ($feature:literal, $krate:ident, $function:ident, $name:literal) => {
        #[doc = concat!("An instrumented ", $name, " client configured from the environment.")]
        #[cfg(feature = $feature)]
        pub async fn $function() -> $krate::Client {
            crate::$function(&sdk_config().await)
        }
    };
}

from_env_client!("sns", aws_sdk_sns, sns_client, "SNS");
from_env_client!("sqs", aws_sdk_sqs, sqs_client, "SQS");
from_env_client!("kinesis", aws_sdk_kinesis, kinesis_client, "Kinesis");
from_env_client!("dynamodb", aws_sdk_dynamodb, dynamodb_client, "DynamoDB");
from_env_client!("eventbridge", aws_sdk_eventbridge, eventbridge_client, "EventBridge");
from_env_client!("lambda", aws_sdk_lambda, lambda_client, "Lambda");
