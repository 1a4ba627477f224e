//! `flowtrace local`: the template's application on this machine (see `flowtrace_local`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowtrace_local::{LocalApp, LocalOptions, Outcome};

pub const USAGE: &str = "\
usage: flowtrace local [--template template.yaml] [--parameter-overrides K=V ...]
                       [--http-port PORT] [--out-dir DIR] [--function ID ...]
                       [--invoke FUNCTION[=EVENT.json]] [--no-build] [--release]
                       [--bin-dir DIR] [--extension PATH | --no-extension] [--quiet]

  local     run the SAM application on this machine: moto for the AWS resources,
            each function under a local Lambda Runtime/Extensions/Telemetry API with
            the flowtrace extension, the HTTP API on 127.0.0.1, and pollers for SNS,
            SQS, Kinesis and DynamoDB streams. Spans go to DIR/spans.jsonl (default
            target/flowtrace), and also to OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
            Builds the functions and the extension with cargo first (--no-build: not).
            --invoke runs one invocation (EVENT.json, or {}) and exits; otherwise it
            runs until Ctrl-C, then stops everything it started.";

/// Why `local` could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// Building the functions or the extension failed.
    #[error("build: {0}")]
    Build(String),
    /// The run failed.
    #[error(transparent)]
    Run(#[from] flowtrace_local::Error),
    /// An event file could not be read.
    #[error("{path}: {message}")]
    Event {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    template: PathBuf,
    overrides: BTreeMap<String, String>,
    http_port: u16,
    out_dir: Option<PathBuf>,
    functions: Vec<String>,
    invoke: Option<(String, Option<PathBuf>)>,
    build: bool,
    release: bool,
    bin_dir: Option<PathBuf>,
    extension: Option<PathBuf>,
    no_extension: bool,
    quiet: bool,
}

impl Args {
    pub fn parse(args: &[String]) -> Result<Self, LocalError> {
        let mut parsed = Self {
            template: PathBuf::from("template.yaml"),
            overrides: BTreeMap::new(),
            http_port: 0,
            out_dir: None,
            functions: Vec::new(),
            invoke: None,
            build: true,
            release: false,
            bin_dir: None,
            extension: None,
            no_extension: false,
            quiet: false,
        };
        let mut rest = args.iter().peekable();
        let value = |flag: &str, next: Option<&String>| {
            next.cloned().ok_or_else(|| LocalError::Usage(format!("{flag} needs a value")))
        };
        while let Some(arg) = rest.next() {
            match arg.as_str() {
                "--template" | "-t" => parsed.template = PathBuf::from(value(arg, rest.next())?),
                "--parameter-overrides" => {
                    // SAM's form: any number of Key=Value words after the flag.
                    while let Some(pair) = rest.next_if(|word| !word.starts_with("--")) {
                        let (key, val) = pair
                            .split_once('=')
                            .ok_or_else(|| LocalError::Usage(format!("--parameter-overrides: {pair} is not K=V")))?;
                        parsed.overrides.insert(key.to_owned(), val.to_owned());
                    }
                }
                "--http-port" => {
                    let port = value(arg, rest.next())?;
                    parsed.http_port =
                        port.parse().map_err(|_| LocalError::Usage(format!("--http-port: {port} is not a port")))?;
                }
                "--out-dir" => parsed.out_dir = Some(PathBuf::from(value(arg, rest.next())?)),
                "--function" => parsed.functions.push(value(arg, rest.next())?),
                "--invoke" => {
                    let target = value(arg, rest.next())?;
                    parsed.invoke = Some(match target.split_once('=') {
                        Some((function, event)) => (function.to_owned(), Some(PathBuf::from(event))),
                        None => (target, None),
                    });
                }
                "--no-build" => parsed.build = false,
                "--release" => parsed.release = true,
                "--bin-dir" => parsed.bin_dir = Some(PathBuf::from(value(arg, rest.next())?)),
                "--extension" => parsed.extension = Some(PathBuf::from(value(arg, rest.next())?)),
                "--no-extension" => parsed.no_extension = true,
                "--quiet" | "-q" => parsed.quiet = true,
                other => return Err(LocalError::Usage(format!("unexpected argument {other}"))),
            }
        }
        Ok(parsed)
    }
}

pub fn run(args: Args) -> Result<(), LocalError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LocalError::Run(flowtrace_local::Error::io("start the async runtime", e)))?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<(), LocalError> {
    let template_dir = args.template.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let template_dir = if template_dir.as_os_str().is_empty() { PathBuf::from(".") } else { template_dir };
    let profile = if args.release { "release" } else { "debug" };
    let target_dir = cargo_target_dir(&template_dir)?;
    if args.build {
        build(&args, &template_dir)?;
    }
    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| target_dir.join(profile));
    let extension = if args.no_extension {
        None
    } else {
        let path = args.extension.clone().unwrap_or_else(|| bin_dir.join("flowtrace-extension"));
        if !path.is_file() {
            return Err(LocalError::Build(format!(
                "no flowtrace extension at {} (build it with `cargo build -p flowtrace-extension`, or pass --extension PATH or --no-extension)",
                path.display()
            )));
        }
        Some(path)
    };
    let mut options = LocalOptions::new(&args.template);
    options.parameter_overrides = args.overrides.clone();
    options.out_dir = args.out_dir.clone().unwrap_or_else(|| target_dir.join("flowtrace"));
    options.forward_to = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.trim().is_empty());
    options.http_port = args.http_port;
    options.bin_dir = bin_dir;
    options.extension = extension;
    options.only = args.functions.clone();
    options.echo_output = !args.quiet;

    let app = LocalApp::start(options).await?;
    print_summary(&app);

    let result = match &args.invoke {
        Some((function, event)) => invoke_once(&app, function, event.as_deref()).await,
        None => {
            println!("flowtrace local: ready (Ctrl-C stops everything)");
            wait_for_signal().await;
            println!("flowtrace local: stopping");
            Ok(())
        }
    };
    let spans_path = app.spans_path().to_path_buf();
    let functions: Vec<(String, flowtrace_local::FunctionStats)> =
        app.functions().iter().map(|f| (f.name.clone(), f.host.stats())).collect();
    app.shutdown().await;
    for (name, stats) in functions {
        if stats.invocations > 0 {
            println!(
                "  {name}: {} invocation(s), {} environment(s) started, {} timeout(s), {} crash(es)",
                stats.invocations, stats.environments, stats.timeouts, stats.crashes
            );
        }
    }
    println!("flowtrace local: stopped; spans are in {}", spans_path.display());
    result
}

fn print_summary(app: &LocalApp) {
    println!("flowtrace local: moto at {}", app.moto_endpoint());
    if let Some(url) = app.http_endpoint() {
        println!("flowtrace local: HTTP API at {url}");
    }
    for function in app.functions() {
        let sources = if function.sources.is_empty() { "invoke only".to_owned() } else { function.sources.join(", ") };
        println!("flowtrace local: function {} ← {sources}", function.name);
    }
    println!("flowtrace local: spans → {}", app.spans_path().display());
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !endpoint.trim().is_empty()
    {
        println!("flowtrace local: forwarding OTLP to {endpoint}");
    }
}

async fn invoke_once(app: &LocalApp, function: &str, event: Option<&Path>) -> Result<(), LocalError> {
    let event = match event {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| LocalError::Event { path: path.to_path_buf(), message: e.to_string() })?;
            serde_json::from_str(&text)
                .map_err(|e| LocalError::Event { path: path.to_path_buf(), message: format!("not JSON: {e}") })?
        }
        None => serde_json::json!({}),
    };
    let invocation = app.invoke(function, event).await?;
    let outcome = match &invocation.outcome {
        Outcome::Response(body) => serde_json::json!({"response": body}),
        Outcome::Error(error) => {
            serde_json::json!({"error": {"errorType": error.error_type, "errorMessage": error.error_message}})
        }
        Outcome::Timeout => serde_json::json!({"timeout": true}),
        Outcome::Crashed(why) => serde_json::json!({"crashed": why}),
    };
    println!(
        "{}",
        serde_json::json!({"requestId": invocation.request_id, "durationMs": invocation.elapsed.as_millis() as u64, "outcome": outcome})
    );
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// `cargo metadata`'s target directory for the workspace the template lives in.
fn cargo_target_dir(dir: &Path) -> Result<PathBuf, LocalError> {
    let output = Command::new(cargo())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .map_err(|e| LocalError::Build(format!("cargo metadata: {e}")))?;
    if !output.status.success() {
        return Err(LocalError::Build(format!(
            "cargo metadata in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| LocalError::Build(format!("cargo metadata: {e}")))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| LocalError::Build("cargo metadata gave no target_directory".into()))
}

/// Builds every function's crate (its `CodeUri`) and the flowtrace extension.
fn build(args: &Args, template_dir: &Path) -> Result<(), LocalError> {
    let cx =
        flowtrace_sam::Context { parameter_overrides: args.overrides.clone(), ..flowtrace_sam::Context::default() };
    let template = flowtrace_sam::Template::from_path(&args.template, &cx)
        .map_err(|e| LocalError::Build(format!("{}: {e}", args.template.display())))?;
    let mut manifests: Vec<PathBuf> = template
        .functions
        .iter()
        .filter(|f| {
            args.functions.is_empty() || args.functions.iter().any(|o| *o == f.logical_id || *o == f.function_name)
        })
        .filter_map(|f| f.code_uri.as_ref())
        .map(|code_uri| template_dir.join(code_uri).join("Cargo.toml"))
        .collect();
    manifests.sort();
    manifests.dedup();
    for manifest in manifests {
        cargo_build(template_dir, &["build", "--bins", "--manifest-path", &manifest.to_string_lossy()], args.release)?;
    }
    if !args.no_extension && args.extension.is_none() {
        cargo_build(template_dir, &["build", "-p", "flowtrace-extension"], args.release)?;
    }
    Ok(())
}

fn cargo_build(dir: &Path, cargo_args: &[&str], release: bool) -> Result<(), LocalError> {
    let mut command = Command::new(cargo());
    command.args(cargo_args).current_dir(dir);
    if release {
        command.arg("--release");
    }
    let status = command.status().map_err(|e| LocalError::Build(format!("cargo {}: {e}", cargo_args.join(" "))))?;
    if status.success() {
        Ok(())
    } else {
        Err(LocalError::Build(format!("cargo {} failed ({status})", cargo_args.join(" "))))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, LocalError> {
        Args::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn sam_style_overrides_and_flags_parse() {
        let args = parse(&[
            "--template",
            "app/template.yaml",
            "--parameter-overrides",
            "AuthApiUrl=http://127.0.0.1:1/auth",
            "SlowMs=5",
            "--http-port",
            "8080",
            "--invoke",
            "HelloFunction=event.json",
            "--no-build",
        ])
        .unwrap();
        assert_eq!(args.template, PathBuf::from("app/template.yaml"));
        assert_eq!(args.overrides["AuthApiUrl"], "http://127.0.0.1:1/auth");
        assert_eq!(args.overrides["SlowMs"], "5");
        assert_eq!(args.http_port, 8080);
        assert_eq!(args.invoke, Some(("HelloFunction".to_owned(), Some(PathBuf::from("event.json")))));
        assert!(!args.build);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [&["--http-port", "x"][..], &["--parameter-overrides", "novalue"], &["--template"], &["--bogus"]] {
            assert!(matches!(parse(bad), Err(LocalError::Usage(_))), "{bad:?}");
        }
    }
}
