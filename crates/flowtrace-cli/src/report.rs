//! `flowtrace report`: the waterfall, service map and health table of collected spans.

use std::path::PathBuf;

use flowtrace_report::{Focus, Report, health, health_table, html, load_counted, service_map, waterfall};

pub const USAGE: &str = "\
usage: flowtrace report [SPANS.jsonl] [--trace TRACE_ID | --invocation REQUEST_ID] [--html OUT.html]

  report    print the stitched trace as a waterfall, the service map, and health and
            cost per function, from the spans `flowtrace local` collected (default
            target/flowtrace/spans.jsonl). The trace shown is the one with the most
            services unless --trace or --invocation picks one. --html also writes the
            same views as one self-contained HTML page.";

/// Why `report` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReportCliError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// The spans file could not be read.
    #[error(transparent)]
    Load(#[from] flowtrace_report::LoadError),
    /// No trace to show.
    #[error(transparent)]
    Report(#[from] flowtrace_report::ReportError),
    /// The HTML could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    spans: PathBuf,
    focus: Focus,
    html: Option<PathBuf>,
}

impl Args {
    pub fn parse(args: &[String]) -> Result<Self, ReportCliError> {
        let mut spans = None;
        let mut focus = Focus::MostServices;
        let mut html = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value =
                || rest.next().cloned().ok_or_else(|| ReportCliError::Usage(format!("{arg} needs a value")));
            match arg.as_str() {
                "--trace" => focus = Focus::Trace(value()?),
                "--invocation" => focus = Focus::Invocation(value()?),
                "--html" => html = Some(PathBuf::from(value()?)),
                flag if flag.starts_with("--") => return Err(ReportCliError::Usage(format!("unknown option {flag}"))),
                path if spans.is_none() => spans = Some(PathBuf::from(path)),
                extra => return Err(ReportCliError::Usage(format!("unexpected argument {extra}"))),
            }
        }
        Ok(Self { spans: spans.unwrap_or_else(|| PathBuf::from("target/flowtrace/spans.jsonl")), focus, html })
    }
}

/// The text report; writes the HTML when asked.
pub fn run(args: Args) -> Result<String, ReportCliError> {
    let (spans, skipped) = load_counted(&args.spans)?;
    if skipped > 0 {
        eprintln!(
            "flowtrace report: skipped {skipped} line(s) of {} that are not OTLP-JSON spans",
            args.spans.display()
        );
    }
    let functions = health(&spans);
    let report = Report::build(spans, args.focus)?;
    if let Some(path) = &args.html {
        std::fs::write(path, html(&report, &functions))
            .map_err(|source| ReportCliError::Write { path: path.clone(), source })?;
    }
    Ok(format!("{}\n{}\n{}", waterfall(&report), service_map(&report), health_table(&functions)))
}
