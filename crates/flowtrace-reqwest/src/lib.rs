//! flowtrace-reqwest: an OpenTelemetry CLIENT span for every outbound reqwest request, and
//! the trace context in its headers, so the service on the other end continues the trace.
//!
//! ```no_run
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! use flowtrace_reqwest::RouteExt as _;
//!
//! let client = flowtrace_reqwest::client(); // once, then share it
//! let post = client.get("https://api.example.com/posts/42").route("/posts/{id}").send().await?;
//! # let _ = post;
//! # Ok(())
//! # }
//! ```
//!
//! Each request becomes a span named `GET` (or `GET /posts/{id}` with a [`RouteTemplate`]),
//! a child of [`opentelemetry::Context::current()`] — the invocation span inside a
//! flowtrace-wrapped handler — with the HTTP semantic conventions: `http.request.method`,
//! `url.full` (credentials and query values redacted), `server.address`, `server.port`,
//! `http.response.status_code`, `network.protocol.version`, `error.type`, body sizes, and
//! `peer.service` / `service.peer.name` for well-known APIs and the hosts you name. Transport
//! errors and 4xx/5xx responses set status Error, as the conventions ask of client spans.
//!
//! `traceparent`/`tracestate` (and whatever else the propagator writes) are injected, except
//! into requests already signed with SigV4 and into hosts denied by the allow/deny lists.
//! Headers are never recorded, so `Authorization`, `Cookie`, `Set-Cookie` and
//! `X-Amz-Security-Token` never reach a span. Body capture is off by default; when on, bodies
//! are masked and truncated. Requests to the Lambda Runtime API and to the flowtrace extension
//! are never traced.
//!
//! Settings come from `FLOWTRACE_HTTP_*` (see [`HttpConfig`]) and can be overridden with
//! [`HttpTracing::builder`]. The tracer provider and propagator default to the global ones
//! that `flowtrace` installs.
#![warn(missing_docs)]

pub mod config;
mod middleware;
pub mod redact;

pub use config::{DEFAULT_PEER_SERVICES, HostPattern, HttpConfig};
pub use middleware::{HttpTracing, HttpTracingBuilder, RouteExt, RouteTemplate};
pub use reqwest_middleware::{self, ClientWithMiddleware};

/// Why a ready-made client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// reqwest could not build the client (for instance, no TLS backend could start).
    #[error("flowtrace: cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// A reqwest client with tracing, configured from the environment. Build it once and share
/// it: it holds the connection pool.
///
/// Panics, as `reqwest::Client::new` does, only if no TLS backend can be initialised; see
/// [`try_client`] for the fallible form.
///
/// ```no_run
/// let client = flowtrace_reqwest::client();
/// ```
pub fn client() -> ClientWithMiddleware {
    with_tracing(reqwest::Client::new())
}

/// Like [`client`], returning an error instead of panicking.
///
/// ```no_run
/// let client = flowtrace_reqwest::try_client()?;
/// # Ok::<(), flowtrace_reqwest::ClientError>(())
/// ```
pub fn try_client() -> Result<ClientWithMiddleware, ClientError> {
    Ok(with_tracing(reqwest::Client::builder().build()?))
}

/// Adds tracing, configured from the environment, to a client you built yourself.
///
/// ```no_run
/// use std::time::Duration;
///
/// let client = flowtrace_reqwest::with_tracing(
///     reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
/// );
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn with_tracing(client: reqwest::Client) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client).with(HttpTracing::from_env()).build()
}
