//! Local stand-ins for the blog site's external APIs, on `127.0.0.1`:
//!
//! - `POST /auth` `{"author": "..."}` → `200 {"allowed": true}`, or `403 {"allowed": false,
//!   "reason": "..."}` for the authors in `AUTH_DENIED_AUTHORS`;
//! - `POST /sms` `{"to": "...", "text": "..."}` → `200 {"message_id": "sms-N"}`.
//!
//! Settings (environment): `EXTERNAL_APIS_PORT` (default 9090; 0 picks a free port),
//! `EXTERNAL_APIS_LATENCY_MS` (added to every answer, default 0), `AUTH_DENIED_AUTHORS`
//! (comma-separated, default `mallory`), `EXTERNAL_APIS_FAIL` (comma-separated among `auth`,
//! `sms`: those answer 503). It prints `listening on http://127.0.0.1:PORT` once ready and
//! stops on Ctrl-C or SIGTERM.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the stand-ins do, from the environment.
#[derive(Debug)]
struct Settings {
    port: u16,
    latency: Duration,
    denied: Vec<String>,
    failing: Vec<String>,
    sms_sent: AtomicU64,
}

/// A setting that does not parse.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    /// An environment variable has a value that does not parse.
    #[error("{name}={value:?} is not a valid number")]
    BadNumber {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// Binding or serving failed.
    #[error("serving on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Settings {
    fn from_env() -> Result<Self, ServeError> {
        let list = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Self {
            port: number("EXTERNAL_APIS_PORT", 9090)?,
            latency: Duration::from_millis(number("EXTERNAL_APIS_LATENCY_MS", 0)?),
            denied: list("AUTH_DENIED_AUTHORS", "mallory"),
            failing: list("EXTERNAL_APIS_FAIL", ""),
            sms_sent: AtomicU64::new(0),
        })
    }
}

fn number<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ServeError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|_| ServeError::BadNumber { name, value })
        }
        _ => Ok(default),
    }
}

/// The body of `POST /auth`.
#[derive(Debug, Deserialize)]
struct AuthRequest {
    author: String,
}

/// The body of `POST /sms`.
#[derive(Debug, Deserialize)]
struct SmsRequest {
    to: String,
    text: String,
}

async fn auth(State(settings): State<Arc<Settings>>, Json(request): Json<AuthRequest>) -> (StatusCode, Json<Value>) {
    tokio::time::sleep(settings.latency).await;
    if settings.failing.iter().any(|f| f == "auth") {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "auth is down" })));
    }
    if settings.denied.contains(&request.author.to_lowercase()) {
        let reason = format!("{} may not post", request.author);
        return (StatusCode::FORBIDDEN, Json(json!({ "allowed": false, "reason": reason })));
    }
    (StatusCode::OK, Json(json!({ "allowed": true })))
}

async fn sms(State(settings): State<Arc<Settings>>, Json(request): Json<SmsRequest>) -> (StatusCode, Json<Value>) {
    tokio::time::sleep(settings.latency).await;
    if settings.failing.iter().any(|f| f == "sms") {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "sms is down" })));
    }
    let n = settings.sms_sent.fetch_add(1, Ordering::Relaxed) + 1;
    println!("sms {n} to {}: {}", request.to, request.text);
    (StatusCode::OK, Json(json!({ "message_id": format!("sms-{n}") })))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[tokio::main]
async fn main() -> Result<(), ServeError> {
    let settings = Arc::new(Settings::from_env()?);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Io { addr, source })?;
    let bound = listener.local_addr().map_err(|source| ServeError::Io { addr, source })?;
    let app = Router::new().route("/auth", post(auth)).route("/sms", post(sms)).with_state(settings);
    println!("listening on http://{bound}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| ServeError::Io { addr: bound, source })
}
