//! The blog-site demo, driven the way a user would: the external API stand-ins, then
//! `flowtrace local` on the repository's `template.yaml` (as a process), a blog post over
//! HTTP, then a slow post that times out, then Ctrl-C. `make demo` prints what it collected;
//! the `local` end-to-end test asserts on it. Both run exactly this.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowtrace_report::{SpanRecord, parse_lines};
use serde_json::{Value, json};

use crate::{ChildProcess, Error, Result, free_port, python_env, workspace_bin, workspace_root};

/// How long the app gets to start (moto's start and resource creation included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a post's spans get to reach the file.
const SPANS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `flowtrace local` gets to stop after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What one demo run did and collected.
#[derive(Debug)]
pub struct DemoRun {
    /// The directory holding `spans.jsonl` (and the report, once written).
    pub out_dir: PathBuf,
    /// The HTTP API's base URL while it ran.
    pub http_endpoint: String,
    /// The auth API stand-in's port.
    pub auth_port: u16,
    /// The SMS API stand-in's port.
    pub sms_port: u16,
    /// The accepted post: HTTP status and the id request-processor gave it (its request id).
    pub post: (u16, String),
    /// The slow post: HTTP status and id.
    pub slow_post: (u16, String),
    /// Every span collected, in file order.
    pub spans: Vec<SpanRecord>,
    /// The spans collected before the slow post was sent.
    pub spans_before_slow_post: Vec<SpanRecord>,
    /// `flowtrace local`'s exit status after Ctrl-C.
    pub exit: std::process::ExitStatus,
    /// `flowtrace local`'s output.
    pub output: String,
    /// The processes `flowtrace local` had started (pids), seen just before Ctrl-C.
    pub descendants: Vec<u32>,
}

/// A blog post as request-processor takes it.
pub fn post(title: &str) -> Value {
    json!({
        "title": title,
        "body": "One trace across every hop. It just works!",
        "author": "ada",
        "phone": "+44 20 7946 0958"
    })
}

/// Runs the demo, writing spans under `out_dir`. `echo` prints `flowtrace local`'s output
/// live.
pub async fn run(out_dir: &Path, echo: bool) -> Result<DemoRun> {
    let flowtrace = workspace_bin("flowtrace-cli", "flowtrace")?;
    let external_apis = workspace_bin("blog-site", "external_apis")?;
    let extension = workspace_bin("flowtrace-extension", "flowtrace-extension")?;
    for bin in ["request_processor", "post_analysis", "kinesis_analysis", "db_update"] {
        workspace_bin("blog-site", bin)?;
    }
    workspace_bin("hello", "hello")?;
    let bin_dir = extension.parent().map(Path::to_path_buf).unwrap_or_default();

    // Two stand-ins, as the auth and the SMS provider are two services.
    let mut apis = Vec::new();
    let mut ports = Vec::new();
    for name in ["auth-api", "sms-api"] {
        let port = free_port();
        let api = ChildProcess::spawn(
            name,
            &external_apis,
            &[],
            &[("EXTERNAL_APIS_PORT", port.to_string().as_str()), ("AUTH_DENIED_AUTHORS", "mallory")],
        )?;
        api.wait_for_output("listening on", Duration::from_secs(10)).await?;
        apis.push(api);
        ports.push(port);
    }
    let (auth_port, sms_port) = (ports[0], ports[1]);

    let template = workspace_root().join("template.yaml");
    let auth = format!("AuthApiUrl=http://127.0.0.1:{auth_port}/auth");
    let sms = format!("SmsApiUrl=http://127.0.0.1:{sms_port}/sms");
    let template_arg = template.to_string_lossy().into_owned();
    let out_arg = out_dir.to_string_lossy().into_owned();
    let bin_arg = bin_dir.to_string_lossy().into_owned();
    let extension_arg = extension.to_string_lossy().into_owned();
    let args = [
        "local",
        "--template",
        template_arg.as_str(),
        "--no-build",
        "--bin-dir",
        bin_arg.as_str(),
        "--extension",
        extension_arg.as_str(),
        "--out-dir",
        out_arg.as_str(),
        "--parameter-overrides",
        auth.as_str(),
        sms.as_str(),
    ];
    // moto is a Python program: the runner needs the interpreter's environment.
    let env = python_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = if echo {
        ChildProcess::spawn_spec(crate::SpawnSpec {
            label: "flowtrace local".to_owned(),
            program: &flowtrace,
            args: args.iter().map(std::ffi::OsString::from).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            reap: true,
            echo: true,
            own_process_group: false,
        })?
    } else {
        ChildProcess::spawn("flowtrace local", &flowtrace, &args, &env)?
    };
    let ready = local.wait_for_output("HTTP API at ", START_TIMEOUT).await?;
    let http_endpoint = ready
        .split("HTTP API at ")
        .nth(1)
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| Error::Process(format!("no URL in {ready:?}")))?;
    local.wait_for_output("ready", START_TIMEOUT).await?;
    let spans_path = out_dir.join("spans.jsonl");

    // 1. A post, through all four functions.
    let client = reqwest::Client::new();
    let accepted = send_post(&client, &http_endpoint, &post("Tracing a serverless blog")).await?;
    let post_id = accepted.1.clone();
    let spans_before_slow_post = wait_for_spans(&spans_path, &local, "the post's update in db-update", |spans| {
        // The platform's figures for an invocation come with its `platform.report`, which
        // Lambda delivers when the environment next thaws (or at shutdown): not waited for.
        spans.iter().any(|s| s.name == "DynamoDB.UpdateItem" && s.service == "db-update")
    })
    .await?;

    // 2. A slow post: post-analysis hangs past its timeout.
    let slow = send_post(&client, &http_endpoint, &post("A slow post")).await?;
    wait_for_spans(&spans_path, &local, "post-analysis timing out", |spans| {
        spans.iter().any(|s| s.service == "post-analysis" && s.is_error() && s.is_invocation())
    })
    .await?;

    // 3. Ctrl-C.
    let descendants = descendants_of(local.pid());
    let pid = i32::try_from(local.pid()).map_err(|_| Error::Process("pid out of range".into()))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGINT)
        .map_err(|e| Error::io("SIGINT flowtrace local", e.into()))?;
    let exit = local.wait_exit(STOP_TIMEOUT).await?;
    drop(apis);
    let text =
        std::fs::read_to_string(&spans_path).map_err(|e| Error::io(format!("read {}", spans_path.display()), e))?;
    let (spans, skipped) = parse_lines(&text);
    if skipped > 0 {
        return Err(Error::Process(format!("{skipped} line(s) of {} are not spans", spans_path.display())));
    }
    Ok(DemoRun {
        out_dir: out_dir.to_path_buf(),
        http_endpoint,
        auth_port,
        sms_port,
        post: (accepted.0, post_id),
        slow_post: slow,
        spans,
        spans_before_slow_post,
        exit,
        output: local.output(),
        descendants,
    })
}

/// POSTs a post to `/new_post`; returns the status and the id in the answer.
async fn send_post(client: &reqwest::Client, endpoint: &str, post: &Value) -> Result<(u16, String)> {
    let response = client
        .post(format!("{endpoint}/new_post"))
        .header("content-type", "application/json")
        .body(post.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| Error::Process(format!("POST /new_post: {e}")))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| Error::Process(format!("POST /new_post answer: {e}")))?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    Ok((status, id))
}

/// Waits until the spans file satisfies `done`.
async fn wait_for_spans(
    path: &Path,
    local: &ChildProcess,
    what: &str,
    done: impl Fn(&[SpanRecord]) -> bool,
) -> Result<Vec<SpanRecord>> {
    let deadline = Instant::now() + SPANS_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let (spans, _) = parse_lines(&text);
        if done(&spans) {
            return Ok(spans);
        }
        if let Some(status) = local.try_exit() {
            return Err(Error::Process(format!("flowtrace local exited ({status}) before {what}\n{}", local.output())));
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = spans.iter().map(|s| format!("{}:{}", s.service, s.name)).collect();
            return Err(Error::timeout(what, SPANS_TIMEOUT, format!("{names:?}\n{}", local.output())));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every live descendant of `pid` (Linux `/proc`).
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat"))
                && let Some((_, rest)) = stat.rsplit_once(')')
                && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok())
            {
                parents.push((child, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(child, _)| *child));
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is still a live (not zombie) process.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
        .is_some_and(|state| state != 'Z' && state != 'X')
}
