//! The flowtrace Lambda extension, as a library so it can be tested.
//!
//! It registers with the Extensions API (INVOKE, SHUTDOWN), subscribes to the Telemetry API
//! (platform and function events), receives OTLP/HTTP from the function on 127.0.0.1 only,
//! buffers it (bounded in bytes, dropping the oldest), and exports it to the backend named by
//! the standard `OTEL_EXPORTER_OTLP_*` variables, without decoding what passes through. From
//! the Telemetry API it adds a platform span per invocation (duration, billed duration,
//! memory, status, cost), an init span on cold starts, and — when the function died before
//! handing off its invocation span — the invocation span itself, from the wrapper's start
//! notice, with status Error and the platform's reason.
//!
//! The pieces are small actors wired by [`run`]: the Extensions API loop ([`api`]), the
//! Telemetry listener and the OTLP receiver ([`receiver`]), the buffer ([`buffer`]), the
//! exporter ([`exporter`]); [`flush::decide`] is the pure function that decides when to flush.
//!
//! ```no_run
//! # async fn example() -> Result<(), flowtrace_extension::RunError> {
//! let config = flowtrace_extension::config::Config::from_env();
//! flowtrace_extension::run(config).await
//! # }
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod buffer;
pub mod config;
pub mod cost;
pub mod exporter;
pub mod flush;
pub mod log;
pub mod metrics;
pub mod proto;
pub mod receiver;
pub mod shared;
pub mod spans;
pub mod telemetry;
pub mod tracker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::TcpListener;

use crate::api::{Api, ApiError, NextEvent};
use crate::config::Config;
use crate::exporter::Exporter;
use crate::flush::{FlushDecision, Trigger, decide};
use crate::shared::{Shared, bump, lock, now_unix_nano, wait_until};

/// Why the extension stopped before SHUTDOWN.
#[derive(Debug, Error)]
pub enum RunError {
    /// The Extensions API failed (registration, or `/event/next`).
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// How many times a failing `/event/next` is retried before the extension gives up.
const NEXT_RETRIES: u32 = 3;

/// At most this long at SHUTDOWN for the last invocations' `platform.report`.
const SHUTDOWN_REPORT_WAIT: Duration = Duration::from_millis(500);

/// How often the background flush decision is taken.
const TICK: Duration = Duration::from_millis(100);

/// Binds the Telemetry API listener: the configured host (resolved) and port; if the host
/// does not resolve, 127.0.0.1.
async fn bind_telemetry(config: &Config) -> Option<TcpListener> {
    let host = config.telemetry_host.as_str();
    let port = config.telemetry_port;
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => match tokio::net::lookup_host((host, port)).await.ok().and_then(|mut a| a.next()) {
            Some(addr) => addr,
            None => {
                crate::log!(Warn, "FLOWTRACE_TELEMETRY_HOST {host:?} does not resolve; listening on 127.0.0.1");
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
            }
        },
    };
    match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            crate::log!(Error, "cannot listen for telemetry on {addr}: {error}; no platform data");
            None
        }
    }
}

fn millis_until(deadline_ms: u64) -> Duration {
    let now_ms = now_unix_nano() / 1_000_000;
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Runs the extension until SHUTDOWN.
pub async fn run(config: Config) -> Result<(), RunError> {
    let started = Instant::now();
    let api = Api::new(&config.runtime_api);
    let name = config.extension_name.clone();

    let otlp = TcpListener::bind((Ipv4Addr::LOCALHOST, config.otlp_port)).await;
    let telemetry = bind_telemetry(&config).await;
    let id = api.register(&name).await?;

    let shared = Arc::new(Shared::new(config));
    let exporter = Exporter::new(Arc::clone(&shared));
    match otlp {
        Ok(listener) => {
            tokio::spawn(receiver::serve(listener, Arc::clone(&shared), receiver::handle_otlp));
        }
        Err(error) => crate::log!(
            Error,
            "cannot listen for OTLP on 127.0.0.1:{}: {error}; the function's spans will not reach the layer",
            shared.config.otlp_port
        ),
    }
    if let Some(listener) = telemetry {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(shared.config.telemetry_port);
        tokio::spawn(receiver::serve(listener, Arc::clone(&shared), receiver::handle_telemetry));
        let uri = format!("http://{}:{port}", shared.config.telemetry_host);
        if let Err(error) = api.subscribe(&id, &name, &uri).await {
            crate::log!(Error, "telemetry subscription failed: {error}; no platform data");
        }
    }
    crate::log!(Info, "registered and subscribed in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);

    tokio::spawn(background_flush(Arc::clone(&shared), Arc::clone(&exporter)));

    let mut failures = 0u32;
    loop {
        let event = match api.next(&id).await {
            Ok(event) => {
                failures = 0;
                event
            }
            Err(ApiError::Event(error)) => {
                crate::log!(Warn, "skipping an unreadable event: {error}");
                continue;
            }
            Err(error) if failures < NEXT_RETRIES => {
                failures += 1;
                crate::log!(Warn, "event/next failed ({error}); retry {failures} of {NEXT_RETRIES}");
                tokio::time::sleep(Duration::from_millis(50) * failures).await;
                continue;
            }
            Err(error) => {
                // Nothing buffered may be lost on the way out.
                exporter.flush(Duration::from_secs(1)).await;
                return Err(error.into());
            }
        };
        match event {
            NextEvent::Invoke { request_id, deadline_ms, tracing } => {
                on_invoke(&shared, &exporter, &request_id, deadline_ms, tracing.and_then(|t| t.value)).await;
            }
            NextEvent::Shutdown { shutdown_reason, deadline_ms } => {
                let budget = if deadline_ms == 0 {
                    Duration::from_millis(1500)
                } else {
                    millis_until(deadline_ms).saturating_sub(Duration::from_millis(100))
                };
                // The last invocation's platform.report is often still on its way: give it a
                // bounded moment, so its billed duration, memory and cost are not lost.
                let report_wait = (budget / 3).min(SHUTDOWN_REPORT_WAIT);
                if !wait_until(&shared, report_wait, || !lock(&shared.tracker).awaiting_reports()).await {
                    crate::log!(Info, "SHUTDOWN: a platform.report did not arrive; its platform span has no billing");
                }
                let spans = lock(&shared.tracker).on_shutdown(&shutdown_reason, now_unix_nano());
                for body in spans {
                    shared.push_spans(body);
                }
                let flushed = exporter.flush(budget).await;
                let stats = serde_json::to_string(&shared.stats()).unwrap_or_default();
                crate::log!(
                    Info,
                    "SHUTDOWN ({shutdown_reason}): {} flush; stats {stats}",
                    if flushed { "completed" } else { "unfinished" }
                );
                return Ok(());
            }
        }
    }
}

async fn on_invoke(
    shared: &Arc<Shared>,
    exporter: &Arc<Exporter>,
    request_id: &str,
    deadline_ms: u64,
    xray: Option<String>,
) {
    shared.invocation_started();
    {
        let mut tracker = lock(&shared.tracker);
        tracker.on_invoke(request_id, xray, now_unix_nano());
        tracker.on_deadline(request_id, deadline_ms.saturating_mul(1_000_000));
    }
    let until = if deadline_ms == 0 { Duration::from_secs(900) } else { millis_until(deadline_ms) };
    let done = wait_until(shared, until + shared.config.timeout_grace, || {
        lock(&shared.tracker).runtime_done(request_id).is_some()
    })
    .await;
    if !done {
        crate::log!(Warn, "no platform.runtimeDone for {request_id} by its deadline; counting it as timed out");
        lock(&shared.tracker).on_missed_deadline(request_id);
    }
    wait_until(shared, shared.config.span_wait, || !lock(&shared.tracker).awaiting_span(request_id)).await;
    let synthesized = lock(&shared.tracker).finish(request_id, (!done).then_some("timeout"), now_unix_nano());
    if let Some(body) = synthesized {
        crate::log!(Info, "the invocation span of {request_id} never arrived; emitting it with status Error");
        bump(&shared.counters.synthesized_spans, 1);
        shared.push_spans(body);
    }
    shared.in_invocation.store(false, Ordering::Relaxed);
    if decide(&shared.config.flush_policy, Trigger::InvocationEnd, &shared.flush_state()) == FlushDecision::Now
        && !exporter.flush(shared.config.flush_budget).await
    {
        crate::log!(Debug, "flush still running after the budget; it continues in the background");
    }
}

async fn background_flush(shared: Arc<Shared>, exporter: Arc<Exporter>) {
    loop {
        let trigger = tokio::select! {
            () = tokio::time::sleep(TICK) => Trigger::Tick,
            () = shared.pressure.notified() => Trigger::Buffered,
        };
        if decide(&shared.config.flush_policy, trigger, &shared.flush_state()) == FlushDecision::Now {
            // Starts the flush (or leaves the running one alone) without waiting.
            exporter.flush(Duration::ZERO).await;
        }
    }
}
