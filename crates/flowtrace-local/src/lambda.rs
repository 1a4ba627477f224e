//! A Lambda execution environment for end-to-end tests.
//!
//! [`LambdaEnv`] wraps [`lambda_simulator::Simulator`], which serves the Runtime API
//! (`/2018-06-01/runtime/...`), the Extensions API (`/2020-01-01/extension/...`) and the
//! Telemetry API (`/2022-07-01/telemetry`) on one port of 127.0.0.1, and freezes registered
//! processes with SIGSTOP/SIGCONT between invocations. On top it adds:
//!
//! - invocations with a chosen request id, X-Ray trace header, client context, deadline and
//!   function ARN ([`Invoke`]);
//! - awaiting the function's answer ([`Outcome`]) with the deadline enforced the way Lambda
//!   does it: no answer by the deadline is a timeout and the function process is killed
//!   (the simulator itself only sets the deadline header);
//! - crash detection: the function process exiting before it answers;
//! - function and extension processes spawned with Lambda's environment, their output
//!   captured, killed when the environment is dropped.
//!
//! The order of a run with an extension is Lambda's: spawn the extension, wait for it to
//! register, then spawn the function (its first `/next` closes registration).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lambda_simulator::{
    FreezeMode, InvocationStatus, ShutdownReason, Simulator, TelemetryEvent, invocation::Invocation as SimInvocation,
};
use serde_json::Value;

use crate::process::{ChildProcess, SpawnSpec};
use crate::{Error, Result};

/// The account id used in ARNs.
pub const ACCOUNT_ID: &str = "123456789012";

/// How often invocation state and process liveness are checked while waiting.
const POLL: Duration = Duration::from_millis(5);

/// The function's configuration, and the emulator's knobs.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub function_version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, and the memory the platform reports.
    pub memory_size_mb: u32,
    /// `AWS_REGION`.
    pub region: String,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub log_group_name: String,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream_name: String,
    /// The function timeout: each invocation's deadline is this long after it is queued,
    /// unless [`Invoke::timeout`] says otherwise.
    pub timeout: Duration,
    /// Extra time after the deadline before an invocation counts as timed out, for
    /// scheduling jitter on a loaded 2-core machine.
    pub timeout_grace: Duration,
    /// Kill the function when an invocation times out, as Lambda does.
    pub kill_on_timeout: bool,
    /// How long the runtime gets to make its first `/next` call after being spawned.
    pub init_timeout: Duration,
    /// Freeze (SIGSTOP) the function and extensions after each invocation, thaw (SIGCONT)
    /// on the next one.
    pub freeze: bool,
    /// How long the simulator waits for extensions to call `/next` after an invocation
    /// before it emits `platform.report` and freezes.
    pub extension_ready_timeout: Duration,
    /// How long extensions get to finish after SHUTDOWN.
    pub shutdown_timeout: Duration,
    /// Print the function's and extensions' output live, prefixed with the function name.
    pub echo_output: bool,
    /// Put the function and extensions in process groups of their own: a terminal's Ctrl-C
    /// then reaches only the runner, which shuts them down in order.
    pub own_process_groups: bool,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        Self {
            function_name: "flowtrace-e2e".to_owned(),
            function_version: "$LATEST".to_owned(),
            memory_size_mb: 128,
            region: "us-east-1".to_owned(),
            log_group_name: "/aws/lambda/flowtrace-e2e".to_owned(),
            log_stream_name: "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef".to_owned(),
            timeout: Duration::from_secs(5),
            timeout_grace: Duration::from_millis(250),
            kill_on_timeout: true,
            init_timeout: Duration::from_secs(10),
            freeze: false,
            extension_ready_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(2),
            echo_output: false,
            own_process_groups: false,
        }
    }
}

/// One invocation to queue. Anything not set gets the emulator's default: a fresh request
/// id, a fresh `Root=1-...` trace header, the configured function timeout, the function's
/// unqualified ARN, no client context.
#[derive(Debug, Clone)]
pub struct Invoke {
    payload: Value,
    request_id: Option<String>,
    trace_id: Option<String>,
    client_context: Option<String>,
    cognito_identity: Option<String>,
    timeout: Option<Duration>,
    function_arn: Option<String>,
}

impl Invoke {
    /// An invocation with this event.
    pub fn new(payload: Value) -> Self {
        Self {
            payload,
            request_id: None,
            trace_id: None,
            client_context: None,
            cognito_identity: None,
            timeout: None,
            function_arn: None,
        }
    }

    /// `Lambda-Runtime-Aws-Request-Id`.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// `Lambda-Runtime-Trace-Id`, e.g. `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
    #[must_use]
    pub fn trace_id(mut self, header: impl Into<String>) -> Self {
        self.trace_id = Some(header.into());
        self
    }

    /// `Lambda-Runtime-Client-Context`, as the JSON Lambda sends (`{"client":{...},"custom":{...},"env":{...}}`).
    #[must_use]
    pub fn client_context(mut self, context: &Value) -> Self {
        self.client_context = Some(context.to_string());
        self
    }

    /// `Lambda-Runtime-Client-Context`, raw (to test malformed values).
    #[must_use]
    pub fn client_context_raw(mut self, raw: impl Into<String>) -> Self {
        self.client_context = Some(raw.into());
        self
    }

    /// `Lambda-Runtime-Cognito-Identity`, raw JSON.
    #[must_use]
    pub fn cognito_identity_raw(mut self, raw: impl Into<String>) -> Self {
        self.cognito_identity = Some(raw.into());
        self
    }

    /// The deadline (`Lambda-Runtime-Deadline-Ms`) is this long after queueing.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `Lambda-Runtime-Invoked-Function-Arn` (e.g. qualified with an alias).
    #[must_use]
    pub fn function_arn(mut self, arn: impl Into<String>) -> Self {
        self.function_arn = Some(arn.into());
        self
    }
}

/// What the function posted to `/error` (or what the panic layer made of a panic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
    /// `stackTrace`, when sent.
    pub stack_trace: Option<Vec<String>>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body posted to `/response`.
    Response(Value),
    /// The body posted to `/error`.
    Error(FunctionError),
    /// No answer by the deadline (plus grace). The function was killed if
    /// [`LambdaConfig::kill_on_timeout`].
    Timeout,
    /// The function process exited before answering.
    Crashed(String),
}

/// A finished invocation: what was sent and how it ended.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id (`Lambda-Runtime-Aws-Request-Id`).
    pub request_id: String,
    /// The `Lambda-Runtime-Trace-Id` header sent.
    pub trace_id: String,
    /// The `Lambda-Runtime-Deadline-Ms` header sent.
    pub deadline_ms: i64,
    /// The `Lambda-Runtime-Invoked-Function-Arn` header sent.
    pub invoked_function_arn: String,
    /// How it ended.
    pub outcome: Outcome,
    /// From queueing to the answer (or to the timeout).
    pub elapsed: Duration,
}

impl Invocation {
    /// The response body, or an error describing the other outcome.
    pub fn response(&self) -> Result<&Value> {
        match &self.outcome {
            Outcome::Response(body) => Ok(body),
            other => Err(Error::NotFound(format!("invocation {} did not respond: {other:?}", self.request_id))),
        }
    }

    /// The error the function reported, or an error describing the other outcome.
    pub fn error(&self) -> Result<&FunctionError> {
        match &self.outcome {
            Outcome::Error(error) => Ok(error),
            other => Err(Error::NotFound(format!("invocation {} did not report an error: {other:?}", self.request_id))),
        }
    }
}

/// What [`LambdaEnv::shutdown`] observed.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// The function's exit status; `None` if it had to be killed and was not reaped.
    pub function_exit: Option<ExitStatus>,
    /// Each extension's label and exit status; `None` if it was still running at the end of
    /// the shutdown timeout and had to be killed.
    pub extension_exits: Vec<(String, Option<ExitStatus>)>,
}

#[derive(Debug, Clone)]
struct Sent {
    trace_id: String,
    deadline_ms: i64,
    invoked_function_arn: String,
    queued: Instant,
    deadline: Instant,
}

/// A Lambda execution environment: the emulator plus the processes it runs.
///
/// Dropping it kills the processes (each prints its output if the test is panicking) and
/// stops serving when the test's tokio runtime ends.
pub struct LambdaEnv {
    sim: Simulator,
    config: LambdaConfig,
    function: Mutex<Option<ChildProcess>>,
    extensions: Mutex<Vec<ChildProcess>>,
    sent: Mutex<HashMap<String, Sent>>,
}

impl std::fmt::Debug for LambdaEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaEnv")
            .field("runtime_api", &self.runtime_api())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LambdaEnv {
    /// Starts the emulator with the default configuration.
    pub async fn start() -> Result<Self> {
        Self::start_with(LambdaConfig::default()).await
    }

    /// Starts the emulator on 127.0.0.1 and a free port.
    pub async fn start_with(config: LambdaConfig) -> Result<Self> {
        let sim = Simulator::builder()
            .function_name(config.function_name.clone())
            .function_version(config.function_version.clone())
            .memory_size_mb(config.memory_size_mb)
            .region(config.region.clone())
            .invocation_timeout(config.timeout)
            .init_timeout(config.init_timeout)
            .extension_ready_timeout(config.extension_ready_timeout)
            .shutdown_timeout(config.shutdown_timeout)
            .freeze_mode(if config.freeze { FreezeMode::Process } else { FreezeMode::None })
            .build()
            .await
            .map_err(|e| Error::Emulator(e.to_string()))?;
        Ok(Self {
            sim,
            config,
            function: Mutex::new(None),
            extensions: Mutex::new(Vec::new()),
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// The underlying simulator, for what this wrapper does not cover (telemetry delivery
    /// policies, extension readiness and overhead, phases).
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &LambdaConfig {
        &self.config
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        format!("127.0.0.1:{}", self.sim.addr().port())
    }

    /// The function's unqualified ARN.
    pub fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}", self.config.region, self.config.function_name)
    }

    /// The environment Lambda gives the function and its extensions: `AWS_LAMBDA_RUNTIME_API`,
    /// `AWS_LAMBDA_FUNCTION_NAME`, `_MEMORY_SIZE`, `_VERSION`, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`, `AWS_EXECUTION_ENV`, `LAMBDA_TASK_ROOT`, `TZ`, ...
    /// It has no `AWS_LAMBDA_FUNCTION_ARN`: Lambda does not set one.
    pub fn lambda_env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self.sim.lambda_env_vars().into_iter().collect();
        env.insert("AWS_LAMBDA_LOG_GROUP_NAME".to_owned(), self.config.log_group_name.clone());
        env.insert("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), self.config.log_stream_name.clone());
        env.insert("AWS_LAMBDA_RUNTIME_API".to_owned(), self.runtime_api());
        env
    }

    fn spawn(&self, label: &str, bin: &Path, env: &[(&str, &str)]) -> Result<ChildProcess> {
        let mut full = self.lambda_env();
        full.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let child = ChildProcess::spawn_spec(SpawnSpec {
            label: format!("{} {label}", self.config.function_name),
            program: bin,
            args: Vec::<OsString>::new(),
            env: full,
            reap: !self.config.freeze,
            echo: self.config.echo_output,
            own_process_group: self.config.own_process_groups,
        })?;
        if self.config.freeze {
            self.sim.register_freeze_pid(child.pid());
        }
        Ok(child)
    }

    /// Spawns the function binary with Lambda's environment plus `env`, and waits until it
    /// is ready (its first `/next` call), failing early if it exits or reports an init error.
    pub async fn spawn_function(&self, bin: impl AsRef<Path>, env: &[(&str, &str)]) -> Result<ChildProcess> {
        let child = self.spawn("function", bin.as_ref(), env)?;
        if let Some(old) = lock(&self.function).replace(child.clone()) {
            old.kill();
        }
        let deadline = Instant::now() + self.config.init_timeout;
        loop {
            if self.sim.is_initialized().await {
                return Ok(child);
            }
            if let Some(error) = self.sim.get_init_error().await {
                return Err(Error::Process(format!("function reported an init error: {error}\n{}", child.output())));
            }
            if let Some(status) = child.try_exit() {
                return Err(Error::Process(format!("function exited during init ({status})\n{}", child.output())));
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout("the function's first /next", self.config.init_timeout, child.output()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Spawns an extension binary with Lambda's environment plus `env`. Spawn extensions
    /// before the function and [`wait_for_extensions`](Self::wait_for_extensions): the
    /// function's first `/next` closes registration.
    pub fn spawn_extension(&self, bin: impl AsRef<Path>, env: &[(&str, &str)]) -> Result<ChildProcess> {
        let label = format!("extension-{}", lock(&self.extensions).len());
        let child = self.spawn(&label, bin.as_ref(), env)?;
        lock(&self.extensions).push(child.clone());
        Ok(child)
    }

    /// Waits until `count` extensions have registered.
    pub async fn wait_for_extensions(&self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.sim.extension_count().await >= count {
                return Ok(());
            }
            let exited: Vec<String> = lock(&self.extensions)
                .iter()
                .filter_map(|ext| ext.try_exit().map(|s| format!("{} exited ({s})", ext.label())))
                .collect();
            if !exited.is_empty() {
                return Err(Error::Process(format!(
                    "{} before {count} extension(s) registered\n{}",
                    exited.join(", "),
                    self.output()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout(format!("{count} extension(s) to register"), timeout, self.output()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current function process, if one was spawned.
    pub fn function(&self) -> Option<ChildProcess> {
        lock(&self.function).clone()
    }

    /// The extension processes, in spawn order.
    pub fn extensions(&self) -> Vec<ChildProcess> {
        lock(&self.extensions).clone()
    }

    /// The output of every process, labelled, for failure messages.
    pub fn output(&self) -> String {
        let mut out = String::new();
        let processes = self.function().into_iter().chain(self.extensions()).collect::<Vec<_>>();
        for process in processes {
            out.push_str(&format!("--- {} (pid {}) ---\n", process.label(), process.pid()));
            out.push_str(&process.output());
        }
        out
    }

    /// Queues an invocation and returns its request id without waiting.
    pub async fn enqueue(&self, invoke: Invoke) -> Result<String> {
        let timeout = invoke.timeout.unwrap_or(self.config.timeout);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut inv = SimInvocation::new(invoke.payload, timeout_ms);
        if let Some(id) = invoke.request_id {
            inv.request_id.clone_from(&id);
            inv.aws_request_id = id;
        }
        if let Some(trace_id) = invoke.trace_id {
            inv.trace_id = trace_id;
        }
        inv.invoked_function_arn = invoke.function_arn.unwrap_or_else(|| self.function_arn());
        inv.client_context = invoke.client_context;
        inv.cognito_identity = invoke.cognito_identity;

        let request_id = inv.request_id.clone();
        if lock(&self.sent).contains_key(&request_id) {
            return Err(Error::Emulator(format!("request id {request_id} already used")));
        }
        let now = Instant::now();
        let sent = Sent {
            trace_id: inv.trace_id.clone(),
            deadline_ms: inv.deadline_ms(),
            invoked_function_arn: inv.invoked_function_arn.clone(),
            queued: now,
            deadline: now + timeout,
        };
        lock(&self.sent).insert(request_id.clone(), sent);
        Ok(self.sim.enqueue(inv).await)
    }

    /// Waits for a queued invocation to end: a response, an error, the function exiting, or
    /// the deadline (plus [`LambdaConfig::timeout_grace`]) passing.
    pub async fn wait_for(&self, request_id: &str) -> Result<Invocation> {
        let sent = lock(&self.sent)
            .get(request_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no invocation {request_id} was queued")))?;
        let give_up = sent.deadline + self.config.timeout_grace;
        let finish = |outcome: Outcome| Invocation {
            request_id: request_id.to_owned(),
            trace_id: sent.trace_id.clone(),
            deadline_ms: sent.deadline_ms,
            invoked_function_arn: sent.invoked_function_arn.clone(),
            outcome,
            elapsed: sent.queued.elapsed(),
        };
        loop {
            if let Some(outcome) = self.settled(request_id).await? {
                return Ok(finish(outcome));
            }
            if let Some(function) = self.function()
                && let Some(status) = function.try_exit()
            {
                // It may have answered just before exiting.
                if let Some(outcome) = self.settled(request_id).await? {
                    return Ok(finish(outcome));
                }
                let started = self
                    .sim
                    .get_invocation_state(request_id)
                    .await
                    .is_some_and(|s| s.status != InvocationStatus::Pending);
                let exited = format!("the function exited ({status})");
                if started {
                    return Ok(finish(Outcome::Crashed(exited)));
                }
                let output = function.output();
                return Err(Error::Process(format!("invocation {request_id} is queued but {exited}\n{output}")));
            }
            if Instant::now() >= give_up {
                if self.config.kill_on_timeout
                    && let Some(function) = self.function()
                {
                    function.kill();
                }
                return Ok(finish(Outcome::Timeout));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn settled(&self, request_id: &str) -> Result<Option<Outcome>> {
        let state = self
            .sim
            .get_invocation_state(request_id)
            .await
            .ok_or_else(|| Error::NotFound(format!("the emulator has no invocation {request_id}")))?;
        Ok(match state.status {
            InvocationStatus::Success => state.response.map(|r| Outcome::Response(r.payload)),
            InvocationStatus::Error => state.error.map(|e| {
                Outcome::Error(FunctionError {
                    error_type: e.error_type,
                    error_message: e.error_message,
                    stack_trace: e.stack_trace,
                })
            }),
            InvocationStatus::Timeout => Some(Outcome::Timeout),
            InvocationStatus::Pending | InvocationStatus::InProgress => None,
        })
    }

    /// Queues an invocation and waits for it to end (bounded by its deadline).
    pub async fn invoke(&self, invoke: Invoke) -> Result<Invocation> {
        let id = self.enqueue(invoke).await?;
        self.wait_for(&id).await
    }

    /// Invokes with just an event.
    pub async fn invoke_event(&self, event: Value) -> Result<Invocation> {
        self.invoke(Invoke::new(event)).await
    }

    /// The request ids the emulator knows, in the order they were queued.
    pub async fn request_ids(&self) -> Vec<String> {
        let sent = lock(&self.sent).clone();
        let mut states = self.sim.get_all_invocation_states().await;
        states.sort_by_key(|s| sent.get(&s.invocation.request_id).map(|s| s.queued));
        states.into_iter().map(|s| s.invocation.request_id).collect()
    }

    /// The request ids the runtime fetched from `/next` (started, whatever the outcome).
    pub async fn delivered_request_ids(&self) -> Vec<String> {
        let mut states = self.sim.get_all_invocation_states().await;
        states.retain(|s| s.started_at.is_some());
        states.sort_by_key(|s| s.started_at);
        states.into_iter().map(|s| s.invocation.request_id).collect()
    }

    /// Every platform telemetry event the emulator produced so far (captured whether or not
    /// an extension subscribed).
    pub async fn telemetry_events(&self) -> Vec<TelemetryEvent> {
        self.sim.get_telemetry_events().await
    }

    /// The telemetry events of one type, e.g. `platform.runtimeDone`.
    pub async fn telemetry_events_of(&self, event_type: &str) -> Vec<TelemetryEvent> {
        self.sim.get_telemetry_events_by_type(event_type).await
    }

    /// Waits until the environment is frozen (needs [`LambdaConfig::freeze`]).
    pub async fn wait_for_frozen(&self, timeout: Duration) -> Result<()> {
        self.sim
            .wait_for_frozen(timeout)
            .await
            .map_err(|e| Error::timeout("the environment to freeze", timeout, e.to_string()))
    }

    /// Whether the environment is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.sim.is_frozen()
    }

    /// Shuts down the way Lambda does: SIGTERM to the runtime when extensions are registered
    /// (SIGKILL after 500 ms, or at once without extensions), then SHUTDOWN with `reason` to
    /// the extensions, which get [`LambdaConfig::shutdown_timeout`] to exit before they are
    /// killed.
    pub async fn shutdown(self, reason: ShutdownReason) -> Result<ShutdownReport> {
        let extensions = self.extensions();
        let function_exit = match self.function() {
            Some(function) if !extensions.is_empty() => {
                // A frozen runtime would not see SIGTERM until thawed.
                let _ = function.resume();
                function.terminate()?;
                match function.wait_exit(Duration::from_millis(500)).await {
                    Ok(status) => Some(status),
                    Err(_) => function.kill(),
                }
            }
            Some(function) => function.kill(),
            None => None,
        };

        let shutdown_timeout = self.config.shutdown_timeout;
        // Frozen extensions would never see SHUTDOWN.
        for extension in &extensions {
            let _ = extension.resume();
        }
        self.sim.graceful_shutdown(reason).await;

        let mut extension_exits = Vec::new();
        for extension in extensions {
            let exit = match extension.wait_exit(shutdown_timeout).await {
                Ok(status) => Some(status),
                Err(_) => {
                    extension.kill();
                    None
                }
            };
            extension_exits.push((extension.label().to_owned(), exit));
        }
        Ok(ShutdownReport { function_exit, extension_exits })
    }
}
