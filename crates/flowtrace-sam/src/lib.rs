//! What `flowtrace local` needs to run a SAM application on one machine:
//!
//! - [`template`]: a SAM/CloudFormation template read into functions, event sources and
//!   resources, with intrinsic functions resolved against the caller's physical values;
//! - [`events`]: the Lambda events AWS's event sources deliver (API Gateway, SNS, SQS,
//!   Kinesis, DynamoDB Streams, EventBridge), built from what moto's APIs return.
//!
//! Both are pure: nothing here does I/O except [`template::Template::from_path`].
#![warn(missing_docs)]

pub mod events;
pub mod template;

pub use template::{
    Context, Event, EventKind, Expr, Function, Physical, PhysicalMap, ResolveError, Template, TemplateError,
};
