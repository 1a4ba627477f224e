//! `flowtrace inspect`: the wrapper's own planning function, run on a file.

use flowtrace::Config;
use flowtrace::invocation;
use flowtrace::propagation::propagator_from_env_value;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// Why `inspect` could not answer. An event it does not recognise is not an error.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The context file is not the JSON `inspect` expects.
    #[error("{path} is not a valid context file: {source}")]
    Context {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    event: PathBuf,
    context: Option<PathBuf>,
}

impl Args {
    pub fn parse(args: &[String]) -> Result<Self, InspectError> {
        let mut event = None;
        let mut context = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--context" => {
                    let path = rest.next().ok_or_else(|| InspectError::Usage("--context needs a file".into()))?;
                    context = Some(PathBuf::from(path));
                }
                flag if flag.starts_with("--") => return Err(InspectError::Usage(format!("unknown option {flag}"))),
                path if event.is_none() => event = Some(PathBuf::from(path)),
                extra => return Err(InspectError::Usage(format!("unexpected argument {extra}"))),
            }
        }
        let event = event.ok_or_else(|| InspectError::Usage("EVENT.json is missing".into()))?;
        Ok(Self { event, context })
    }
}

/// The invocation context, as a test event's companion file gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct InspectContext {
    request_id: Option<String>,
    function_name: Option<String>,
    invoked_function_arn: Option<String>,
    xray_trace_id: Option<String>,
    deadline_ms: Option<u64>,
    client_context: Option<InspectClientContext>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InspectClientContext {
    custom: HashMap<String, String>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, InspectError> {
    std::fs::read(path).map_err(|source| InspectError::Read { path: path.clone(), source })
}

fn lambda_context(given: InspectContext) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = given.request_id.unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into());
    context.invoked_function_arn = given.invoked_function_arn.unwrap_or_default();
    context.xray_trace_id = given.xray_trace_id;
    context.deadline = given.deadline_ms.unwrap_or(0);
    // lambda_runtime does not export `ClientContext`; it deserialises, so build it that way.
    context.client_context =
        given.client_context.and_then(|c| serde_json::from_value(serde_json::json!({ "custom": c.custom })).ok());
    let function_name = given
        .function_name
        .or_else(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
        .unwrap_or_else(|| "function".into());
    context.env_config = Arc::new(lambda_runtime::Config { function_name, ..Default::default() });
    context
}

/// Plans the invocation exactly as the wrapper does (as a first, cold invocation) and
/// renders it.
pub fn run(args: &Args) -> Result<String, InspectError> {
    let event = read(&args.event)?;
    let given = match &args.context {
        Some(path) => serde_json::from_slice(&read(path)?)
            .map_err(|source| InspectError::Context { path: path.clone(), source })?,
        None => InspectContext::default(),
    };
    let (config, warnings) = Config::from_lookup(|name| std::env::var(name).ok());
    let (propagator, propagator_warnings) =
        propagator_from_env_value(std::env::var("OTEL_PROPAGATORS").ok().as_deref());
    for warning in warnings.iter().map(ToString::to_string).chain(propagator_warnings) {
        eprintln!("{warning}");
    }
    let plan =
        invocation::plan(&event, &lambda_context(given), &config, propagator.as_ref(), true, SystemTime::now(), false);
    Ok(serde_json::to_string_pretty(&plan.to_json()).unwrap_or_default())
}
