//! `flowtrace local`: a SAM application on one machine, without AWS and without docker.
//!
//! - [`Moto`]: a moto server (AWS service mocks) on loopback, and a minimal client for it.
//! - [`LambdaEnv`]: one function's Lambda execution environment. It wraps
//!   [`lambda_simulator::Simulator`] (Runtime, Extensions and Telemetry APIs, freeze/thaw) and
//!   adds invocations with chosen headers, the deadline enforced as Lambda does, and the
//!   function and extension processes with captured output.
//! - [`OtlpSink`]: an OTLP/HTTP receiver that writes one OTLP-JSON span per line to a file
//!   and forwards to a real backend when one is configured.
//! - [`ChildProcess`]: a spawned binary whose output is captured (bounded), killed on drop.
//!
//! Every wait is bounded and fails with [`Error::Timeout`] carrying what was seen so far.

#![warn(missing_docs)]

mod apigw;
mod app;
mod error;
mod function;
mod lambda;
mod moto;
mod net;
mod process;
mod sink;

pub use apigw::{ApiKind, GatewaySpan, Matched, Route, match_route};
pub use app::{LocalApp, LocalOptions, RunningFunction};
pub use error::{Error, Result};
pub use function::{FunctionHost, FunctionSpec, FunctionStats};
pub use lambda::{FunctionError, Invocation, Invoke, LambdaConfig, LambdaEnv, Outcome, ShutdownReport};
pub use moto::{MOTO_ACCOUNT, MOTO_REGION, Moto, python_env, xml_values};
pub use net::free_port;
pub use process::{ChildProcess, SpawnSpec, Stream};
pub use sink::{OtlpSink, SinkStats, span_lines};

/// Re-exported so callers can use the simulator's types (shutdown reasons, telemetry events)
/// without a direct dependency.
pub use lambda_simulator;
