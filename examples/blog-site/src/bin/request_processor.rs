//! request-processor: `POST /new_post` behind API Gateway (HTTP API).
//!
//! Validates the post, asks the auth API (`AUTH_API_URL`) whether its author may post, and
//! publishes it to the SNS topic `POSTS_TOPIC_ARN`. Answers 201 with the post's id; 400 for an
//! invalid post, 401 when the auth API says no, 502 when the auth API cannot be reached or
//! fails. A failed publish is a function error (Lambda answers 500).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use blog_site::{AuthDecision, MissingEnv, NewPost, Post, required_env};
use flowtrace::http::RouteExt as _;
use flowtrace::http::reqwest_middleware::ClientWithMiddleware;
use http::StatusCode;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;
use std::sync::LazyLock;
use tokio::sync::OnceCell;

/// The instrumented HTTP client, shared by every invocation of this process.
static HTTP: LazyLock<ClientWithMiddleware> = LazyLock::new(flowtrace::http::client);
/// The instrumented SNS client, created on first use.
static SNS: OnceCell<aws_sdk_sns::Client> = OnceCell::const_new();

/// Why the auth API did not let the post through.
#[derive(Debug, thiserror::Error)]
enum AuthError {
    /// The auth API answered: this author may not post.
    #[error("not allowed to post: {0}")]
    Denied(String),
    /// The auth API could not be reached, failed, or answered something unreadable.
    #[error("the auth API is unavailable: {0}")]
    Unavailable(String),
}

/// What fails the invocation (rather than being answered with a 4xx or 502).
#[derive(Debug, thiserror::Error)]
enum ProcessError {
    /// The function is missing part of its configuration.
    #[error(transparent)]
    Config(#[from] MissingEnv),
    /// SNS refused the post.
    #[error("publishing the post to {topic} failed: {message}")]
    Publish {
        /// The topic ARN.
        topic: String,
        /// The SDK's error, with its causes.
        message: String,
    },
    /// The post could not be encoded (it always can).
    #[error("encoding the post: {0}")]
    Encode(#[from] serde_json::Error),
}

#[flowtrace::main]
async fn handler(event: LambdaEvent<ApiGatewayV2httpRequest>) -> Result<ApiGatewayV2httpResponse, Error> {
    let new_post = match parse(&event.payload) {
        Ok(post) => post,
        Err(message) => return Ok(respond(StatusCode::BAD_REQUEST, &json!({ "error": message }))),
    };
    match authorize(&new_post).await {
        Ok(()) => {}
        Err(error @ AuthError::Denied(_)) => {
            return Ok(respond(StatusCode::UNAUTHORIZED, &json!({ "error": error.to_string() })));
        }
        Err(error @ AuthError::Unavailable(_)) => {
            tracing::warn!(%error, "auth API unavailable");
            return Ok(respond(StatusCode::BAD_GATEWAY, &json!({ "error": error.to_string() })));
        }
    }
    let post = Post { id: event.context.request_id.clone(), post: new_post };
    publish(&post).await?;
    tracing::info!(post.id = %post.id, "post accepted");
    Ok(respond(StatusCode::CREATED, &json!({ "id": post.id })))
}

/// The post in the request body (JSON, possibly base64-encoded by API Gateway), validated.
#[tracing::instrument(skip_all)]
fn parse(request: &ApiGatewayV2httpRequest) -> Result<NewPost, String> {
    let raw = request.body.as_deref().unwrap_or_default();
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(raw).map_err(|e| format!("body is not base64: {e}"))?
    } else {
        raw.as_bytes().to_vec()
    };
    let post: NewPost = serde_json::from_slice(&bytes).map_err(|e| format!("invalid post: {e}"))?;
    post.validate().map_err(|e| e.to_string())?;
    Ok(post)
}

/// Asks the auth API whether `post.author` may post.
#[tracing::instrument(skip_all, fields(author = %post.author))]
async fn authorize(post: &NewPost) -> Result<(), AuthError> {
    let url = required_env("AUTH_API_URL").map_err(|e| AuthError::Unavailable(e.to_string()))?;
    let response = HTTP
        .post(&url)
        .route("/auth")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(json!({ "author": post.author }).to_string())
        .send()
        .await
        .map_err(|e| AuthError::Unavailable(e.to_string()))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(AuthError::Unavailable(format!("it answered {status}")));
    }
    let body = response.bytes().await.map_err(|e| AuthError::Unavailable(e.to_string()))?;
    let decision: Option<AuthDecision> = serde_json::from_slice(&body).ok();
    match (status, decision) {
        (status, Some(AuthDecision { allowed: true, .. })) if status.is_success() => Ok(()),
        (_, Some(AuthDecision { reason, .. })) => Err(AuthError::Denied(reason.unwrap_or_else(|| status.to_string()))),
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, None) => Err(AuthError::Denied(status.to_string())),
        (status, None) => Err(AuthError::Unavailable(format!("unreadable answer ({status})"))),
    }
}

/// Publishes `post` to the posts topic; the SNS.Publish span carries the trace to post-analysis.
#[tracing::instrument(skip_all, fields(post.id = %post.id))]
async fn publish(post: &Post) -> Result<(), ProcessError> {
    let topic = required_env("POSTS_TOPIC_ARN")?;
    let sns = SNS.get_or_init(flowtrace::aws::from_env::sns_client).await;
    sns.publish().topic_arn(&topic).subject("new post").message(serde_json::to_string(post)?).send().await.map_err(
        |e| ProcessError::Publish {
            topic: topic.clone(),
            message: aws_sdk_sns::error::DisplayErrorContext(&e).to_string(),
        },
    )?;
    Ok(())
}

/// A JSON response.
fn respond(status: StatusCode, body: &serde_json::Value) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status.as_u16());
    response.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}
