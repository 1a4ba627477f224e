//! A minimal Lambda extension for harness tests, on std only (blocking HTTP/1.1).
//!
//! It registers for INVOKE and SHUTDOWN, subscribes to platform telemetry with a listener on
//! 127.0.0.1, and prints one line per thing it sees:
//! `ext: registered <id>`, `ext: INVOKE <request id>`, `ext: telemetry <type> <request id>`,
//! `ext: SHUTDOWN <reason>`. It exits 0 after SHUTDOWN.
//!
//! Like a telemetry extension should, after an INVOKE it waits (up to 1 s) for the
//! invocation's `platform.runtimeDone` before calling `/next` again, since the environment
//! may be frozen as soon as every extension is back in `/next`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// An HTTP/1.1 request or response: its first line, headers and body.
struct Message {
    first: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn status(&self) -> u16 {
        self.first.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads a request or response head and its Content-Length body.
fn read_message(stream: &mut impl BufRead) -> Fallible<Message> {
    let mut first = String::new();
    stream.read_line(&mut first)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            stream.read_exact(&mut body)?;
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok(Message { first: first.trim_end().to_owned(), headers, body })
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Fallible<Message> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let mut stream = TcpStream::connect(&api)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    read_message(&mut BufReader::new(stream))
}

/// Request ids whose `platform.runtimeDone` arrived.
type Done = Arc<(Mutex<HashSet<String>>, Condvar)>;

/// Accepts telemetry batches and prints each event.
fn serve_telemetry(listener: TcpListener, done: &Done) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Ok(reader) = stream.try_clone() else { continue };
        if let Ok(message) = read_message(&mut BufReader::new(reader)) {
            let events: Vec<Value> = serde_json::from_slice(&message.body).unwrap_or_default();
            for event in events {
                let kind = event["type"].as_str().unwrap_or("?");
                let request_id = event["record"]["requestId"].as_str().unwrap_or("-");
                println!("ext: telemetry {kind} {request_id}");
                if kind == "platform.runtimeDone" {
                    let (set, changed) = &**done;
                    set.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(request_id.to_owned());
                    changed.notify_all();
                }
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

fn main() -> Fallible<()> {
    let registered = request(
        "POST",
        "/2020-01-01/extension/register",
        &[("Lambda-Extension-Name", "ext")],
        Some(&json!({"events": ["INVOKE", "SHUTDOWN"]})),
    )?;
    let id = registered.header("Lambda-Extension-Identifier").ok_or("no extension id")?.to_owned();
    println!("ext: registered {id}");

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let done: Done = Arc::default();
    let seen = Arc::clone(&done);
    std::thread::spawn(move || serve_telemetry(listener, &seen));
    let subscribed = request(
        "PUT",
        "/2022-07-01/telemetry",
        &[("Lambda-Extension-Identifier", &id), ("Lambda-Extension-Name", "ext")],
        Some(&json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
            "destination": {"protocol": "HTTP", "URI": format!("http://sandbox.localdomain:{port}")},
        })),
    )?;
    println!("ext: subscribed {}", subscribed.status());

    loop {
        let next = request("GET", "/2020-01-01/extension/event/next", &[("Lambda-Extension-Identifier", &id)], None)?;
        let event: Value = serde_json::from_slice(&next.body)?;
        match event["eventType"].as_str() {
            Some("INVOKE") => {
                let request_id = event["requestId"].as_str().unwrap_or("?");
                println!("ext: INVOKE {request_id}");
                let (set, changed) = &*done;
                let guard = set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let (guard, wait) = changed
                    .wait_timeout_while(guard, Duration::from_secs(1), |set| !set.contains(request_id))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                drop(guard);
                if wait.timed_out() {
                    println!("ext: no runtimeDone for {request_id}");
                }
            }
            Some("SHUTDOWN") => {
                println!("ext: SHUTDOWN {}", event["shutdownReason"].as_str().unwrap_or("?"));
                return Ok(());
            }
            other => println!("ext: unexpected event {other:?} (HTTP {})", next.status()),
        }
    }
}
