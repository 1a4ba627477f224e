//! post-analysis: subscribed to the SNS topic of new posts.
//!
//! Texts the author through the SMS API (`SMS_API_URL`), analyses the post (words, sentences,
//! reading time) and puts the analysis on the Kinesis stream `ANALYSIS_STREAM_NAME` as JSON.
//!
//! The slow path, for the timeout demo: when `SLOW_MS` is set, or the post's title contains
//! "slow" (then `SLOW_MS`, else 30 s), the analysis waits that long in `slow_analysis` first.
//! Past the function's timeout, the trace shows `slow_analysis` as the call that hung.

use aws_lambda_events::sns::SnsEvent;
use blog_site::{MissingEnv, Post, PostAnalysis, SmsReceipt, required_env};
use flowtrace::http::RouteExt as _;
use flowtrace::http::reqwest_middleware::ClientWithMiddleware;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long the slow path waits when the title asks for it and `SLOW_MS` is not set.
const DEFAULT_SLOW: Duration = Duration::from_secs(30);

/// The instrumented HTTP client, shared by every invocation of this process.
static HTTP: LazyLock<ClientWithMiddleware> = LazyLock::new(flowtrace::http::client);
/// The instrumented Kinesis client, created on first use.
static KINESIS: OnceCell<aws_sdk_kinesis::Client> = OnceCell::const_new();

/// What fails an invocation.
#[derive(Debug, thiserror::Error)]
enum AnalysisError {
    /// The function is missing part of its configuration.
    #[error(transparent)]
    Config(#[from] MissingEnv),
    /// The SNS message is not a post.
    #[error("message {message_id} is not a post: {source}")]
    NotAPost {
        /// The SNS message id.
        message_id: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
    /// Kinesis refused the analysis.
    #[error("putting the analysis on {stream} failed: {message}")]
    PutRecord {
        /// The stream name.
        stream: String,
        /// The SDK's error, with its causes.
        message: String,
    },
}

/// Why the SMS was not sent (not fatal: the analysis records `notified: false`).
#[derive(Debug, thiserror::Error)]
enum SmsError {
    /// The function is missing part of its configuration.
    #[error(transparent)]
    Config(#[from] MissingEnv),
    /// The request failed.
    #[error("SMS API request failed: {0}")]
    Request(String),
    /// The SMS API refused.
    #[error("SMS API answered {0}")]
    Status(http::StatusCode),
}

#[flowtrace::main]
async fn handler(event: LambdaEvent<SnsEvent>) -> Result<(), Error> {
    for record in &event.payload.records {
        let post: Post = serde_json::from_str(&record.sns.message)
            .map_err(|source| AnalysisError::NotAPost { message_id: record.sns.message_id.clone(), source })?;
        analyse(&post).await?;
    }
    Ok(())
}

/// Notifies the author, analyses the post and hands the analysis on.
#[tracing::instrument(skip_all, fields(post.id = %post.id))]
async fn analyse(post: &Post) -> Result<(), AnalysisError> {
    if let Some(delay) = slow_path(post) {
        slow_analysis(delay).await;
    }
    let notified = match notify(post).await {
        Ok(receipt) => {
            tracing::info!(sms.message_id = %receipt.message_id, "author notified");
            true
        }
        Err(error) => {
            tracing::warn!(%error, "author not notified");
            false
        }
    };
    let analysis = PostAnalysis::of(post, notified);
    put_analysis(&analysis).await
}

/// The slow path's delay, when it is on: `SLOW_MS`, or a title containing "slow".
fn slow_path(post: &Post) -> Option<Duration> {
    let configured =
        std::env::var("SLOW_MS").ok().and_then(|ms| ms.trim().parse::<u64>().ok()).map(Duration::from_millis);
    if post.post.title.to_lowercase().contains("slow") {
        return Some(configured.unwrap_or(DEFAULT_SLOW));
    }
    configured
}

/// A deliberately slow step (a stand-in for a heavy model or a slow dependency).
#[tracing::instrument]
async fn slow_analysis(delay: Duration) {
    tokio::time::sleep(delay).await;
}

/// Texts the author that their post is being published.
#[tracing::instrument(skip_all)]
async fn notify(post: &Post) -> Result<SmsReceipt, SmsError> {
    let url = required_env("SMS_API_URL")?;
    let text = format!("Your post \"{}\" is being published.", post.post.title);
    let response = HTTP
        .post(&url)
        .route("/sms")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(json!({ "to": post.post.phone, "text": text }).to_string())
        .send()
        .await
        .map_err(|e| SmsError::Request(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(SmsError::Status(status));
    }
    let body = response.bytes().await.map_err(|e| SmsError::Request(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| SmsError::Request(format!("unreadable answer: {e}")))
}

/// PutRecord of the analysis, as JSON (flowtrace adds the trace context to it).
#[tracing::instrument(skip_all, fields(post.id = %analysis.id))]
async fn put_analysis(analysis: &PostAnalysis) -> Result<(), AnalysisError> {
    let stream = required_env("ANALYSIS_STREAM_NAME")?;
    let data = serde_json::to_vec(analysis)
        .map_err(|e| AnalysisError::PutRecord { stream: stream.clone(), message: format!("encoding: {e}") })?;
    let kinesis = KINESIS.get_or_init(flowtrace::aws::from_env::kinesis_client).await;
    kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key(&analysis.id)
        .data(aws_sdk_kinesis::primitives::Blob::new(data))
        .send()
        .await
        .map_err(|e| AnalysisError::PutRecord {
            stream: stream.clone(),
            message: aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string(),
        })?;
    Ok(())
}
