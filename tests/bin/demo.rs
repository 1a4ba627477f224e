//! `make demo`: the blog site under `flowtrace local` (moto, every function under a local
//! Lambda environment with the flowtrace extension), a blog post over HTTP, a slow post that
//! times out, then Ctrl-C; then what flowtrace collected: the stitched trace as a waterfall,
//! the service map, health and cost per function, and `target/flowtrace/report.html`.

use std::path::PathBuf;

use flowtrace_report::{Focus, Report, health, health_table, html, service_map, waterfall};
use flowtrace_tests::{blog_demo, workspace_root};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let out_dir: PathBuf = workspace_root().join("target").join("flowtrace");
    let echo = std::env::var("FLOWTRACE_DEMO_VERBOSE").is_ok_and(|v| v == "1");
    println!("Starting the blog site with `flowtrace local` (template.yaml) ...");
    let run = blog_demo::run(&out_dir, echo).await?;
    println!("HTTP API: {}", run.http_endpoint);
    println!("POST /new_post → {} (post {})", run.post.0, run.post.1);
    println!(
        "POST /new_post, a slow post → {} (post {}); post-analysis times out on it",
        run.slow_post.0, run.slow_post.1
    );
    println!(
        "Ctrl-C → flowtrace local stopped ({}), {} process(es) it had started are gone\n",
        run.exit,
        run.descendants.iter().filter(|pid| !blog_demo::is_alive(**pid)).count()
    );

    let functions = health(&run.spans);
    let report = Report::build(run.spans.clone(), Focus::Invocation(run.post.1.clone()))?;
    println!("{}", waterfall(&report));
    println!("{}", service_map(&report));
    println!("{}", health_table(&functions));

    let slow = Report::build(run.spans.clone(), Focus::Invocation(run.slow_post.1.clone()))?;
    println!("The slow post's trace:\n\n{}", waterfall(&slow));

    let page = out_dir.join("report.html");
    std::fs::write(&page, html(&report, &functions))?;
    println!("Spans: {}", out_dir.join("spans.jsonl").display());
    println!("Report: {}", page.display());
    Ok(())
}
