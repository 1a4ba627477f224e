//! A local HTTP server for the client tests, on 127.0.0.1 and a free port, that records what
//! it received; and span helpers.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_sdk::trace::SpanData;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server received: the path with its query, the headers, the body.
#[derive(Debug, Clone)]
pub struct Received {
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

type Custom = Arc<dyn Fn(Received) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

#[derive(Clone)]
struct ServerState {
    received: Arc<Mutex<Vec<Received>>>,
    custom: Option<Custom>,
}

/// A running test server.
pub struct TestServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    /// The canned routes: `/ok` 200, `/missing` 404, `/fail` 500, `/slow` answers after 5 s,
    /// `/json` a JSON body with a secret and a `Set-Cookie`, `/echo` echoes the request body.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Every request goes to `handler`.
    pub async fn start_custom<F, Fut>(handler: F) -> Self
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        Self::start_with(Some(Arc::new(move |r| Box::pin(handler(r))))).await
    }

    async fn start_with(custom: Option<Custom>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState { received: received.clone(), custom };
        let app = axum::Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The one request the server received so far.
    pub fn only_request(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "{received:#?}");
        received.into_iter().next().unwrap()
    }
}

async fn handle(State(state): State<ServerState>, request: Request) -> Response {
    let uri = request.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default().to_vec();
    let received = Received { uri, headers, body };
    state.received.lock().unwrap().push(received.clone());
    if let Some(custom) = &state.custom {
        return custom(received).await;
    }
    let path = received.uri.split('?').next().unwrap_or_default().to_owned();
    match path.as_str() {
        "/ok" => (StatusCode::OK, "ok").into_response(),
        "/missing" => (StatusCode::NOT_FOUND, "no such thing").into_response(),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late").into_response()
        }
        "/json" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::SET_COOKIE, "session=server-cookie-value; HttpOnly")
            .body(Body::from(r#"{"name":"ada","access_token":"server-token-value"}"#))
            .unwrap(),
        "/echo" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(received.body))
            .unwrap(),
        _ => (StatusCode::NOT_FOUND, "unknown route").into_response(),
    }
}

/// A free port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

/// Every attribute and event attribute of `spans`, as text, for leak checks.
pub fn all_text(spans: &[SpanData]) -> String {
    let mut text = String::new();
    for span in spans {
        text.push_str(&span.name);
        for kv in span.attributes.iter().chain(span.events.iter().flat_map(|e| e.attributes.iter())) {
            text.push_str(&format!(" {}={}", kv.key, kv.value));
        }
        if let opentelemetry::trace::Status::Error { description } = &span.status {
            text.push_str(description);
        }
        text.push('\n');
    }
    text
}
