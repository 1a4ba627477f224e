//! flowtrace: automatic OpenTelemetry tracing for Rust functions on AWS Lambda.
//!
//! ```no_run
//! use lambda_runtime::{Error, LambdaEvent};
//! use serde_json::Value;
//!
//! #[flowtrace::main]
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
//!     Ok(event.payload)
//! }
//! ```
//!
//! Every invocation becomes a span that continues the trace its event carried (HTTP
//! headers, SNS/SQS attributes, Kinesis data, DynamoDB images, EventBridge detail, Lambda
//! client context), and spans are handed off only after the response has been posted.
#![warn(missing_docs)]

pub mod capture;
pub mod config;
mod handler;
pub mod handoff;
pub mod invocation;
mod layer;
pub mod logging;
pub mod propagation;
mod record;
mod run;
pub mod telemetry;
pub mod trigger;

pub use config::Config;
pub use handler::{TracedHandler, TracedHandlerFuture};
pub use lambda_runtime::{self, Error, LambdaEvent};
pub use layer::{FlowtraceFuture, FlowtraceLayer, FlowtraceService};
pub use record::RecordSpan;
#[cfg(feature = "concurrency")]
pub use run::run_concurrent;
pub use run::{run, run_with};
pub use telemetry::{Telemetry, TelemetryBuilder};

#[cfg(feature = "macros")]
pub use flowtrace_macros::main;

/// The instrumented HTTP client: a CLIENT span per request and trace context for the services
/// you own. `flowtrace::http::client()` is a ready `reqwest` client.
#[cfg(feature = "reqwest")]
pub mod http {
    pub use flowtrace_reqwest::*;
}

/// Instrumented AWS SDK clients: a span per call and trace context injected into SNS, SQS,
/// Kinesis, DynamoDB, EventBridge and Lambda Invoke payloads (features `aws-sns`, `aws-sqs`, ...).
#[cfg(feature = "aws")]
pub mod aws {
    pub use flowtrace_aws::*;
}

/// Used by the code `#[flowtrace::main]` expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::run::{start, start_concurrent};
    pub use lambda_runtime::service_fn;
}
