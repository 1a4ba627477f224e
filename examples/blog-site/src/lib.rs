//! Shared pieces of the blog-site functions: the post as it travels through the pipeline,
//! its validation and analysis, and configuration from the environment.
//!
//! ```text
//! POST /new_post (API Gateway)
//!   → request-processor   validates, calls the auth API over HTTP, publishes to SNS
//!   → post-analysis       (SNS) calls the SMS API over HTTP, PutRecord to Kinesis
//!   → kinesis-analysis    (Kinesis) PutItem into DynamoDB
//!   → db-update           (DynamoDB stream) final bookkeeping
//! ```

use serde::{Deserialize, Serialize};

/// The longest title a post may have, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest body a post may have, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;

/// A required environment variable is missing or empty.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub &'static str);

/// The value of the environment variable `name`, which must be set and non-empty.
pub fn required_env(name: &'static str) -> Result<String, MissingEnv> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(MissingEnv(name)),
    }
}

/// The body of `POST /new_post`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPost {
    /// The post's title.
    pub title: String,
    /// The post's text.
    pub body: String,
    /// Who wrote it; the auth API decides whether they may post.
    pub author: String,
    /// Where the author is notified by SMS once the post is analysed.
    pub phone: String,
}

/// Why a [`NewPost`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A field is longer than allowed.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// The phone number is not `+` and 7 to 15 digits.
    #[error("phone must be an international number: '+' and 7 to 15 digits")]
    Phone,
}

impl NewPost {
    /// Checks every field: all are required, title and body are bounded, the phone number
    /// is international (E.164: `+` and 7 to 15 digits, spaces and dashes allowed).
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in
            [("title", &self.title), ("body", &self.body), ("author", &self.author), ("phone", &self.phone)]
        {
            if value.trim().is_empty() {
                return Err(ValidationError::Empty(field));
            }
        }
        for (field, value, max) in [("title", &self.title, MAX_TITLE_CHARS), ("body", &self.body, MAX_BODY_CHARS)] {
            if value.chars().count() > max {
                return Err(ValidationError::TooLong { field, max });
            }
        }
        let Some(number) = self.phone.trim().strip_prefix('+') else { return Err(ValidationError::Phone) };
        let digits = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect::<String>();
        if !(7..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ValidationError::Phone);
        }
        Ok(())
    }
}

/// A post accepted by request-processor: the message published to SNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The post's id (request-processor's Lambda request id).
    pub id: String,
    /// The post as it was submitted.
    #[serde(flatten)]
    pub post: NewPost,
}

/// What post-analysis computes for a post: the record it puts on the Kinesis stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostAnalysis {
    /// The post's id.
    pub id: String,
    /// The post's title.
    pub title: String,
    /// The post's author.
    pub author: String,
    /// Words in the body.
    pub word_count: u64,
    /// Characters in the body.
    pub char_count: u64,
    /// Sentences in the body (runs ending in `.`, `!` or `?`, or the end of the text).
    pub sentence_count: u64,
    /// Reading time at 200 words a minute, rounded up to whole seconds.
    pub reading_time_secs: u64,
    /// Whether the author was notified by SMS.
    pub notified: bool,
}

impl PostAnalysis {
    /// Analyses `post`; `notified` says whether the SMS went out.
    pub fn of(post: &Post, notified: bool) -> Self {
        let body = &post.post.body;
        let word_count = count(body.split_whitespace().count());
        let sentence_count =
            count(body.split(['.', '!', '?']).filter(|sentence| sentence.chars().any(char::is_alphanumeric)).count());
        Self {
            id: post.id.clone(),
            title: post.post.title.clone(),
            author: post.post.author.clone(),
            word_count,
            char_count: count(body.chars().count()),
            sentence_count,
            reading_time_secs: (word_count * 60).div_ceil(200),
            notified,
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The auth API's answer to `POST /auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthDecision {
    /// Whether the author may post.
    pub allowed: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The SMS API's answer to `POST /sms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsReceipt {
    /// The message id the SMS API gave the text.
    pub message_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> NewPost {
        NewPost {
            title: "Hello".into(),
            body: "One two three. Four five! Six?".into(),
            author: "ada".into(),
            phone: "+44 20 7946 0958".into(),
        }
    }

    #[test]
    fn a_complete_post_is_valid() {
        assert_eq!(post().validate(), Ok(()));
    }

    #[test]
    fn bad_posts_are_refused_with_the_reason() {
        let empty = NewPost { title: " ".into(), ..post() };
        assert_eq!(empty.validate(), Err(ValidationError::Empty("title")));
        let long = NewPost { title: "x".repeat(MAX_TITLE_CHARS + 1), ..post() };
        assert_eq!(long.validate(), Err(ValidationError::TooLong { field: "title", max: MAX_TITLE_CHARS }));
        for phone in ["0123456", "+12", "+1234567890123456", "+12345abc"] {
            let bad = NewPost { phone: phone.into(), ..post() };
            assert_eq!(bad.validate(), Err(ValidationError::Phone), "{phone}");
        }
    }

    #[test]
    fn analysis_counts_words_sentences_and_reading_time() {
        let analysis = PostAnalysis::of(&Post { id: "p1".into(), post: post() }, true);
        assert_eq!(analysis.word_count, 6);
        assert_eq!(analysis.sentence_count, 3);
        assert_eq!(analysis.char_count, 30);
        assert_eq!(analysis.reading_time_secs, 2);
        assert!(analysis.notified);
    }

    #[test]
    fn the_published_post_is_flat_json() {
        let json = serde_json::to_value(Post { id: "p1".into(), post: post() }).unwrap_or_default();
        assert_eq!(json["id"], "p1");
        assert_eq!(json["title"], "Hello");
    }
}
