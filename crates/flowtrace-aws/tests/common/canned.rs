//! An `HttpClient` that answers every request with one canned response, without the network,
//! and remembers the requests it saw (headers and body).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A request as the client sent it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Response = (u16, Vec<(String, String)>, &'static str);

/// A response to give: status, headers, body.
pub type CannedResponse<'a> = (u16, &'a [(&'a str, &'a str)], &'static str);

#[derive(Debug, Clone)]
pub struct Canned {
    responses: Vec<Response>,
    next: Arc<AtomicUsize>,
    record: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Canned {
    pub fn new(status: u16, headers: &[(&str, &str)], body: &'static str) -> Self {
        Self::sequence(&[(status, headers, body)])
    }

    /// Answers with each response in turn, then repeats the last one.
    pub fn sequence(responses: &[CannedResponse<'_>]) -> Self {
        let responses = responses
            .iter()
            .map(|(status, headers, body)| {
                (*status, headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(), *body)
            })
            .collect();
        Self { responses, next: Arc::default(), record: true, seen: Arc::default() }
    }

    /// Does not keep the requests (for benchmarks).
    pub fn forgetful(mut self) -> Self {
        self.record = false;
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.record {
            let headers = request.headers().iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            let body = request.body().bytes().unwrap_or_default().to_vec();
            self.seen.lock().unwrap().push(Seen { headers, body });
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed).min(self.responses.len() - 1);
        let (status, headers, body) = &self.responses[index];
        let mut response = HttpResponse::new(StatusCode::try_from(*status).unwrap(), SdkBody::from(*body));
        for (name, value) in headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
