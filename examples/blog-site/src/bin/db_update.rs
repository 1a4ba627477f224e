//! db-update: the DynamoDB stream of the posts table (NEW_AND_OLD_IMAGES), the pipeline's
//! last step.
//!
//! For a new post (INSERT) it logs the post and marks it `processed = true` with UpdateItem.
//! That update arrives here again as a MODIFY, which is only logged, so there is no loop.
//! Each change gets its own [`flowtrace::RecordSpan`], continuing the trace of the write.

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use blog_site::{MissingEnv, required_env};
use lambda_runtime::{Error, LambdaEvent};
use opentelemetry::trace::FutureExt as _;
use serde_json::Value;
use tokio::sync::OnceCell;

/// The instrumented DynamoDB client, created on first use.
static DYNAMODB: OnceCell<aws_sdk_dynamodb::Client> = OnceCell::const_new();

/// Why a change could not be handled.
#[derive(Debug, thiserror::Error)]
enum UpdateError {
    /// The function is missing part of its configuration.
    #[error(transparent)]
    Config(#[from] MissingEnv),
    /// The change has no string key `id`.
    #[error("change {0} has no string key \"id\"")]
    NoId(String),
    /// DynamoDB refused the update.
    #[error("UpdateItem of post {id} in {table} failed: {message}")]
    UpdateItem {
        /// The post's id.
        id: String,
        /// The table.
        table: String,
        /// The SDK's error, with its causes.
        message: String,
    },
}

#[flowtrace::main]
async fn handler(event: LambdaEvent<Event>) -> Result<(), Error> {
    for record in &event.payload.records {
        let span = flowtrace::RecordSpan::start(record);
        let handled = bookkeep(record).with_context(span.context().clone()).await;
        if let Err(error) = handled {
            span.fail(error.to_string());
            span.end();
            return Err(error.into());
        }
        span.end();
    }
    Ok(())
}

/// Logs one change; marks newly inserted posts as processed.
#[tracing::instrument(skip_all, fields(event_name = %record.event_name, event_id = %record.event_id))]
async fn bookkeep(record: &EventRecord) -> Result<(), UpdateError> {
    let id = string_key(record, "id").ok_or_else(|| UpdateError::NoId(record.event_id.clone()))?;
    match record.event_name.as_str() {
        "INSERT" => {
            tracing::info!(post.id = %id, "new post stored");
            mark_processed(&id).await
        }
        other => {
            tracing::info!(post.id = %id, change = other, "post changed");
            Ok(())
        }
    }
}

/// The string value of key attribute `name` (`{"id": {"S": "..."}}` in the stream record).
fn string_key(record: &EventRecord, name: &str) -> Option<String> {
    let keys = serde_json::to_value(&record.change.keys).ok()?;
    match keys.get(name)? {
        Value::String(value) => Some(value.clone()),
        Value::Object(typed) => typed.get("S")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// `SET processed = true` on the post.
#[tracing::instrument]
async fn mark_processed(id: &str) -> Result<(), UpdateError> {
    let table = required_env("POSTS_TABLE_NAME")?;
    let dynamodb = DYNAMODB.get_or_init(flowtrace::aws::from_env::dynamodb_client).await;
    dynamodb
        .update_item()
        .table_name(&table)
        .key("id", AttributeValue::S(id.to_owned()))
        .update_expression("SET #processed = :processed")
        .expression_attribute_names("#processed", "processed")
        .expression_attribute_values(":processed", AttributeValue::Bool(true))
        .send()
        .await
        .map_err(|e| UpdateError::UpdateItem {
            id: id.to_owned(),
            table: table.clone(),
            message: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        })?;
    Ok(())
}
