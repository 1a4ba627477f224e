//! flowtrace: automatic OpenTelemetry tracing for Rust functions on AWS Lambda.
#![warn(missing_docs)]

pub mod trigger;
