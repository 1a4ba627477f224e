//! One function's execution environment, as Lambda runs it: the flowtrace extension started
//! first, then the function; one invocation at a time; frozen between invocations; and after
//! a timeout or a crash, the environment shut down (the extension gets SHUTDOWN and flushes)
//! and a fresh one started, cold, for the next invocation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_simulator::ShutdownReason;

use crate::lambda::{Invocation, Invoke, LambdaConfig, LambdaEnv, Outcome};
use crate::{Error, Result, free_port};

/// How long a shutdown waits for the last invocation to wind down.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the extension gets to register.
const EXTENSION_REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// What it takes to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`, and its service name).
    pub name: String,
    /// The function's binary (`bootstrap`).
    pub binary: PathBuf,
    /// The flowtrace extension's binary, attached as the layer would attach it.
    pub extension: Option<PathBuf>,
    /// The function's environment variables (the template's, resolved, plus the AWS SDK's
    /// settings for moto). The extension gets them too, as on Lambda.
    pub env: BTreeMap<String, String>,
    /// Extra environment variables for the extension only.
    pub extension_env: BTreeMap<String, String>,
    /// The function timeout.
    pub timeout: Duration,
    /// The memory size.
    pub memory_mb: u32,
    /// The region.
    pub region: String,
    /// Where the extension exports OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: String,
    /// Print the processes' output live.
    pub echo_output: bool,
}

/// Counters over the environment's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Invocations sent.
    pub invocations: u64,
    /// Execution environments started (cold starts).
    pub environments: u64,
    /// Invocations that timed out.
    pub timeouts: u64,
    /// Invocations during which the function process died.
    pub crashes: u64,
}

/// A function that can be invoked; starts its environment on first use.
#[derive(Debug)]
pub struct FunctionHost {
    spec: FunctionSpec,
    /// The environment, and whether it has run an invocation.
    running: tokio::sync::Mutex<Option<(LambdaEnv, bool)>>,
    invocations: AtomicU64,
    environments: AtomicU64,
    timeouts: AtomicU64,
    crashes: AtomicU64,
}

impl FunctionHost {
    /// A host for `spec`; nothing runs until the first invocation (or [`FunctionHost::warm`]).
    pub fn new(spec: FunctionSpec) -> Self {
        Self {
            spec,
            running: tokio::sync::Mutex::new(None),
            invocations: AtomicU64::new(0),
            environments: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Counters so far.
    pub fn stats(&self) -> FunctionStats {
        FunctionStats {
            invocations: self.invocations.load(Ordering::Relaxed),
            environments: self.environments.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            crashes: self.crashes.load(Ordering::Relaxed),
        }
    }

    /// Starts the execution environment now, if it is not running: init errors show at
    /// start-up rather than on the first event.
    pub async fn warm(&self) -> Result<()> {
        let mut running = self.running.lock().await;
        if running.is_none() {
            *running = Some((self.start_environment().await?, false));
        }
        Ok(())
    }

    /// Invokes the function with `event` and waits for the outcome (bounded by the
    /// function's timeout). Invocations of one function run one at a time, as with a
    /// reserved concurrency of one.
    pub async fn invoke(&self, event: serde_json::Value) -> Result<Invocation> {
        let mut running = self.running.lock().await;
        if running.is_none() {
            *running = Some((self.start_environment().await?, false));
        }
        let (env, invoked) = running.as_mut().ok_or_else(|| Error::Emulator("no execution environment".into()))?;
        *invoked = true;
        self.invocations.fetch_add(1, Ordering::Relaxed);
        let invocation = env.invoke(Invoke::new(event).timeout(self.spec.timeout)).await?;
        let reason = match &invocation.outcome {
            Outcome::Timeout => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Some(ShutdownReason::Timeout)
            }
            Outcome::Crashed(_) => {
                self.crashes.fetch_add(1, Ordering::Relaxed);
                Some(ShutdownReason::Failure)
            }
            Outcome::Response(_) | Outcome::Error(_) => None,
        };
        if let Some(reason) = reason
            && let Some((env, _)) = running.take()
        {
            // As Lambda does: the environment is gone; the next invocation starts cold.
            if let Err(error) = env.shutdown(reason).await {
                eprintln!("flowtrace local: {}: shutting the environment down: {error}", self.spec.name);
            }
        }
        Ok(invocation)
    }

    /// Shuts the environment down (SIGTERM to the function, SHUTDOWN to the extension, which
    /// flushes), if it is running.
    pub async fn shutdown(&self) {
        let Some((env, invoked)) = self.running.lock().await.take() else { return };
        // An invocation that just answered is not over until the extension is done with it
        // (the wrapper's hand-off, the flush) and the environment freezes; SIGTERM before
        // that could cut the hand-off short.
        if invoked && env.wait_for_frozen(IDLE_TIMEOUT).await.is_err() {
            eprintln!("flowtrace local: {}: not idle after {IDLE_TIMEOUT:?}; shutting down anyway", self.spec.name);
        }
        if let Err(error) = env.shutdown(ShutdownReason::Spindown).await {
            eprintln!("flowtrace local: {}: shutting down: {error}", self.spec.name);
        }
    }

    async fn start_environment(&self) -> Result<LambdaEnv> {
        let spec = &self.spec;
        let env = LambdaEnv::start_with(LambdaConfig {
            function_name: spec.name.clone(),
            memory_size_mb: spec.memory_mb,
            region: spec.region.clone(),
            log_group_name: format!("/aws/lambda/{}", spec.name),
            timeout: spec.timeout,
            freeze: true,
            echo_output: spec.echo_output,
            own_process_groups: true,
            ..LambdaConfig::default()
        })
        .await?;
        let mut function_env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(extension) = &spec.extension {
            let otlp_port = free_port()?.to_string();
            let mut vars = function_env.clone();
            vars.extend([
                ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), spec.otlp_endpoint.clone()),
                ("FLOWTRACE_OTLP_PORT".to_owned(), otlp_port.clone()),
                ("FLOWTRACE_TELEMETRY_HOST".to_owned(), "127.0.0.1".to_owned()),
                ("FLOWTRACE_TELEMETRY_PORT".to_owned(), "0".to_owned()),
            ]);
            vars.extend(spec.extension_env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            env.spawn_extension(extension, &vars)?;
            env.wait_for_extensions(1, EXTENSION_REGISTER_TIMEOUT).await?;
            function_env.push(("FLOWTRACE_EXTENSION_ENDPOINT".to_owned(), format!("http://127.0.0.1:{otlp_port}")));
        } else {
            function_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), spec.otlp_endpoint.clone()));
        }
        let vars: Vec<(&str, &str)> = function_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.spawn_function(&spec.binary, &vars).await?;
        self.environments.fetch_add(1, Ordering::Relaxed);
        Ok(env)
    }
}
