//! kinesis-analysis: reads post analyses from the Kinesis stream and stores each post in the
//! DynamoDB table `POSTS_TABLE_NAME` (PutItem, key `id`).
//!
//! Each record gets its own [`flowtrace::RecordSpan`], so a batch holding records of several
//! requests continues each request's trace. A record that cannot be stored fails the batch
//! (Kinesis retries it); one that is not an analysis is skipped and its span marked failed.

use aws_lambda_events::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use blog_site::{MissingEnv, PostAnalysis, required_env};
use lambda_runtime::{Error, LambdaEvent};
use opentelemetry::trace::FutureExt as _;
use tokio::sync::OnceCell;

/// The instrumented DynamoDB client, created on first use.
static DYNAMODB: OnceCell<aws_sdk_dynamodb::Client> = OnceCell::const_new();

/// Why a record was not stored.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    /// The function is missing part of its configuration.
    #[error(transparent)]
    Config(#[from] MissingEnv),
    /// The record's data is not a post analysis (skipped, not retried).
    #[error("record {sequence_number} is not a post analysis: {source}")]
    NotAnAnalysis {
        /// The Kinesis sequence number.
        sequence_number: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
    /// DynamoDB refused the item.
    #[error("PutItem of post {id} into {table} failed: {message}")]
    PutItem {
        /// The post's id.
        id: String,
        /// The table.
        table: String,
        /// The SDK's error, with its causes.
        message: String,
    },
}

#[flowtrace::main]
async fn handler(event: LambdaEvent<KinesisEvent>) -> Result<(), Error> {
    for record in &event.payload.records {
        let span = flowtrace::RecordSpan::start(record);
        let stored = store(record).with_context(span.context().clone()).await;
        match stored {
            Ok(()) => span.end(),
            Err(error @ StoreError::NotAnAnalysis { .. }) => {
                tracing::warn!(%error, "record skipped");
                span.fail(error.to_string());
                span.end();
            }
            Err(error) => {
                span.fail(error.to_string());
                span.end();
                return Err(error.into());
            }
        }
    }
    Ok(())
}

/// Decodes one record and puts the post's analysis into the table.
#[tracing::instrument(skip_all, fields(sequence_number = %record.kinesis.sequence_number))]
async fn store(record: &KinesisEventRecord) -> Result<(), StoreError> {
    let analysis: PostAnalysis = serde_json::from_slice(&record.kinesis.data.0).map_err(|source| {
        StoreError::NotAnAnalysis { sequence_number: record.kinesis.sequence_number.clone(), source }
    })?;
    let table = required_env("POSTS_TABLE_NAME")?;
    let dynamodb = DYNAMODB.get_or_init(flowtrace::aws::from_env::dynamodb_client).await;
    dynamodb
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S(analysis.id.clone()))
        .item("title", AttributeValue::S(analysis.title.clone()))
        .item("author", AttributeValue::S(analysis.author.clone()))
        .item("word_count", AttributeValue::N(analysis.word_count.to_string()))
        .item("char_count", AttributeValue::N(analysis.char_count.to_string()))
        .item("sentence_count", AttributeValue::N(analysis.sentence_count.to_string()))
        .item("reading_time_secs", AttributeValue::N(analysis.reading_time_secs.to_string()))
        .item("notified", AttributeValue::Bool(analysis.notified))
        .send()
        .await
        .map_err(|e| StoreError::PutItem {
            id: analysis.id.clone(),
            table: table.clone(),
            message: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        })?;
    tracing::info!(post.id = %analysis.id, "post stored");
    Ok(())
}
