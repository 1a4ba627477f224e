//! Renders the HTML report in headless Chromium: the page must lay out with its SVG service
//! map, waterfall rows and health table, and a screenshot must come out.
//!
//! Skipped (with a message) when Chromium is not installed, unless
//! `FLOWTRACE_REQUIRE_CHROMIUM=1`, which makes a missing Chromium a failure.
//! `FLOWTRACE_CHROMIUM` points at another binary; `FLOWTRACE_RENDER_PNG=path` keeps a copy of
//! the screenshot; `FLOWTRACE_KEEP_RENDER=1` keeps the temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flowtrace_report::{Focus, Report, health, html, parse_lines};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser: `FLOWTRACE_CHROMIUM` when set, else the Debian package's binary.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("FLOWTRACE_CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    path.exists().then_some(path)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("flowtrace-report-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("FLOWTRACE_KEEP_RENDER").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs Chromium headless with `extra` flags on `page`, with a fresh profile, and a time
/// limit. Returns stdout.
fn run_chromium(binary: &Path, profile: &Path, extra: &[String], page: &Path) -> String {
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(binary) = chromium() else {
        if std::env::var("FLOWTRACE_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!(
                "FLOWTRACE_REQUIRE_CHROMIUM=1 but Chromium ({CHROMIUM}) is not installed: apt-get install -y chromium"
            );
        }
        eprintln!(
            "SKIPPED html_report_renders_in_headless_chromium: Chromium ({CHROMIUM}) is not installed \
             (apt-get install -y chromium; set FLOWTRACE_REQUIRE_CHROMIUM=1 to make this a failure)"
        );
        return;
    };
    let spans = parse_lines(&common::blog_jsonl_with("slow_analysis <script>")).0;
    let functions = health(&spans);
    let report = Report::build(spans, Focus::MostServices).unwrap();
    let page = html(&report, &functions);

    let dir = TempDir::new("render");
    let file = dir.0.join("report.html");
    std::fs::write(&file, &page).unwrap();

    // The DOM as Chromium parsed it.
    let dom = run_chromium(&binary, &dir.0.join("profile-dom"), &["--dump-dom".to_owned()], &file);
    assert!(dom.contains("<svg class=\"map\""), "no SVG map in the DOM:\n{dom}");
    assert_eq!(dom.matches("<g class=\"node ").count(), 10, "map nodes");
    for label in [
        "API Gateway",
        "request-processor",
        "SNS",
        "post-analysis",
        "Kinesis",
        "kinesis-analysis",
        "DynamoDB",
        "db-update",
        "auth API 127.0.0.1:9001",
        "sms API 127.0.0.1:9002",
    ] {
        assert!(dom.contains(&format!(">{label}</text>")), "map node {label} missing");
    }
    assert_eq!(dom.matches("<path class=\"edge").count(), 10, "map edges");
    assert_eq!(dom.matches("<tr class=\"wf-row").count(), 16, "waterfall rows");
    assert_eq!(dom.matches("<tr class=\"fn-row\">").count(), 4, "health rows");
    assert!(dom.contains("<table class=\"health\">"));
    assert!(dom.contains("slow_analysis &lt;script&gt;"), "the span name stays text");
    assert!(!dom.contains("<script"), "no script element may appear");

    // A screenshot: a real PNG, of a real size, not one flat colour.
    let png = dir.0.join("report.png");
    run_chromium(
        &binary,
        &dir.0.join("profile-shot"),
        &[format!("--screenshot={}", png.display()), "--window-size=1600,1400".to_owned()],
        &file,
    );
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1600, 1400));
    // A blank page compresses to a few kB; this one has text, boxes and bars.
    assert!(bytes.len() > 40_000, "screenshot is only {} bytes", bytes.len());
    if let Some(keep) = std::env::var_os("FLOWTRACE_RENDER_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
}
