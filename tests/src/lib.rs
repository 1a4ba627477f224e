//! Shared harness for flowtrace end-to-end tests.
//!
//! The pieces, each usable on its own:
//!
//! - [`LambdaEnv`]: a Lambda execution environment on `127.0.0.1` and a free port. It wraps
//!   [`lambda_simulator::Simulator`] (Runtime, Extensions and Telemetry APIs, freeze/thaw) and
//!   adds what a test needs on top: invocations with chosen headers, awaiting the function's
//!   answer with the deadline enforced, function and extension processes with captured output.
//! - [`OtlpReceiver`]: an OTLP/HTTP receiver on a free port that decodes what exporters send
//!   and hands back [`Span`]s to query, with fault injection for slow or failing collectors.
//!   It also feeds a [`mock_collector::MockCollector`] for its fluent assertions.
//! - [`ChildProcess`]: a spawned binary whose stdout and stderr are captured, printed when the
//!   test panics, and which is killed on drop.
//! - [`workspace_bin`] / [`workspace_example`]: build a binary of the workspace once per test
//!   process, in the same target directory and profile, and return its path.
//! - [`free_port`], [`fixture`]: small helpers.
//!
//! Every wait in here is bounded: each takes a timeout or uses a default one, and fails with
//! [`Error::Timeout`] carrying what was seen so far.
//!
//! A typical end-to-end test of a wrapped handler:
//!
//! ```no_run
//! use std::time::Duration;
//! use flowtrace_tests::{fixture, workspace_bin, Invoke, LambdaEnv, OtlpReceiver, SpanQuery};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let collector = OtlpReceiver::start().await?;
//! let env = LambdaEnv::start().await?;
//! let handler = workspace_bin("hello", "hello")?;
//! let endpoint = collector.endpoint();
//! env.spawn_function(&handler, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await?;
//!
//! let invocation = env
//!     .invoke(Invoke::new(fixture("sqs-single-traceparent")).trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"))
//!     .await?;
//! invocation.response()?;
//!
//! let spans = collector.wait_for_spans(1, Duration::from_secs(5)).await?;
//! let root = spans.one_named("hello")?;
//! assert_eq!(root.attr_str("faas.invocation_id"), Some(invocation.request_id.as_str()));
//! # Ok(())
//! # }
//! ```
//!
//! Extensions are spawned before the function: [`LambdaEnv::spawn_extension`], then
//! [`LambdaEnv::wait_for_extensions`], then [`LambdaEnv::spawn_function`] (its first `/next`
//! closes registration, as in Lambda). Set [`LambdaConfig::freeze`] to have the processes
//! SIGSTOPped after each invocation and SIGCONTed on the next.

// Test-only code: the harness panics on broken test set-ups (a fixture that does not exist,
// no free port) rather than making every test thread a `Result` through trivial helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binaries;
pub mod blog_demo;
mod otlp;
mod util;

pub use binaries::{workspace_bin, workspace_example};
// The emulator, moto and process handling are the product's own (`flowtrace local`); the
// tests use exactly the same code.
pub use flowtrace_local::{
    ChildProcess, Error, FunctionError, Invocation, Invoke, LambdaConfig, LambdaEnv, MOTO_ACCOUNT, MOTO_REGION, Moto,
    Outcome, Result, ShutdownReport, SpawnSpec, Stream, lambda_simulator, python_env, xml_values,
};
pub use otlp::{
    AnyValue, Attributes, Behaviour, Event, ExportRequest, Link, OtlpReceiver, Span, SpanKind, SpanQuery, Status,
    StatusCode,
};
pub use util::{fixture, fixture_path, free_port, try_fixture, workspace_root};

/// Re-exported for its fluent assertions on what the [`OtlpReceiver`] received.
pub use mock_collector;
