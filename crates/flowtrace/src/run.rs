//! Entry points: what `#[flowtrace::main]` calls, and the same without the macro.

use crate::{FlowtraceLayer, Telemetry, TracedHandler};
use futures_util::Stream;
use lambda_runtime::{Diagnostic, Error, IntoFunctionResponse, LambdaEvent, Runtime};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::future::Future;
use tower::Service;

/// Runs `handler` on the Lambda Runtime API with tracing set up from the environment — what
/// `#[flowtrace::main]` does, for handlers that are tower services or closures.
///
/// ```no_run
/// use lambda_runtime::{service_fn, Error, LambdaEvent};
/// use serde_json::Value;
///
/// async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
///     Ok(event.payload)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Error> {
///     flowtrace::run(service_fn(handler)).await
/// }
/// ```
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S> + Serialize,
    B: Serialize,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<Error> + Send + Debug,
{
    run_with(Telemetry::from_env(), handler).await
}

/// [`run`] with telemetry you built yourself.
pub async fn run_with<A, F, R, B, S, D, E>(telemetry: Telemetry, handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S> + Serialize,
    B: Serialize,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<Error> + Send + Debug,
{
    let layer = FlowtraceLayer::new(telemetry.clone()).with_traced_handler();
    let result = Runtime::new(TracedHandler::new(handler)).layer(layer).run().await;
    telemetry.shutdown().await;
    result
}

/// [`run`] for Lambda Managed Instances: with `AWS_LAMBDA_MAX_CONCURRENCY` > 1, many
/// invocations run at once in this process, each with its own span and context.
#[cfg(feature = "concurrency")]
pub async fn run_concurrent<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R> + Clone + Send + 'static,
    F::Future: Future<Output = Result<R, F::Error>> + Send + 'static,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de> + Send + 'static,
    R: IntoFunctionResponse<B, S> + Serialize + Send + 'static,
    B: Serialize + Send + 'static,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send + 'static,
    E: Into<Error> + Send + Debug + 'static,
{
    let telemetry = Telemetry::from_env();
    let layer = FlowtraceLayer::new(telemetry.clone()).with_traced_handler();
    let result = Runtime::new(TracedHandler::new(handler)).layer(layer).run_concurrent().await;
    telemetry.shutdown().await;
    result
}

/// Builds the Tokio runtime and runs `handler`: the body of the `main` that
/// `#[flowtrace::main]` generates.
pub fn start<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S> + Serialize,
    B: Serialize,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<Error> + Send + Debug,
{
    require_lambda_environment()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(handler))
}

/// `lambda_runtime` panics without its variables; say plainly what is missing instead.
fn require_lambda_environment() -> Result<(), Error> {
    let missing: Vec<&str> = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ]
    .into_iter()
    .filter(|name| std::env::var_os(name).is_none())
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "this is a Lambda function: run it on AWS Lambda, under `cargo lambda watch`, or `flowtrace local` ({} not set)",
            missing.join(", ")
        )
        .into())
    }
}

/// [`start`] with [`run_concurrent`]: the body of `#[flowtrace::main(concurrent)]`.
#[cfg(feature = "concurrency")]
pub fn start_concurrent<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R> + Clone + Send + 'static,
    F::Future: Future<Output = Result<R, F::Error>> + Send + 'static,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de> + Send + 'static,
    R: IntoFunctionResponse<B, S> + Serialize + Send + 'static,
    B: Serialize + Send + 'static,
    S: Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send + 'static,
    E: Into<Error> + Send + Debug + 'static,
{
    require_lambda_environment()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_concurrent(handler))
}

/// Reached only without the `concurrency` feature, to say so at compile time.
#[cfg(not(feature = "concurrency"))]
#[diagnostic::on_unimplemented(
    message = "#[flowtrace::main(concurrent)] needs flowtrace's `concurrency` feature",
    label = "enable it: flowtrace = {{ features = [\"concurrency\"] }}"
)]
pub trait ConcurrencyFeatureEnabled {}

/// Reached only without the `concurrency` feature, to say so at compile time.
#[cfg(not(feature = "concurrency"))]
pub fn start_concurrent<F: ConcurrencyFeatureEnabled>(_handler: F) -> Result<(), Error> {
    Err("flowtrace's `concurrency` feature is disabled".into())
}
