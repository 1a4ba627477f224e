//! Reports on the spans flowtrace collected: the views `make demo` prints and the HTML
//! report `flowtrace report` writes.
//!
//! The input is the local runner's `spans.jsonl`: one OTLP-JSON `ResourceSpans` per line.
//!
//! ```no_run
//! use flowtrace_report::{Focus, Report, health, health_table, html, load, service_map, waterfall};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spans = load("target/flowtrace/spans.jsonl")?;
//! let functions = health(&spans);
//! let report = Report::build(spans, Focus::MostServices)?;
//! println!("{}", waterfall(&report));
//! println!("{}", service_map(&report));
//! println!("{}", health_table(&functions));
//! std::fs::write("report.html", html(&report, &functions))?;
//! # Ok(())
//! # }
//! ```
//!
//! Everything but [`load`] and [`load_counted`] is pure.
#![warn(missing_docs)]

mod health;
mod html;
mod report;
mod span;
mod text;
mod views;

pub use health::{FunctionHealth, health, health_table, percentile};
pub use html::html;
pub use report::{Edge, Focus, Node, NodeKind, Report, ReportError, Row, ServiceMap};
pub use span::{
    AttrValue, Attributes, LoadError, SpanKind, SpanLink, SpanRecord, Status, StatusCode, UNKNOWN_SERVICE, load,
    load_counted, parse_lines,
};
pub use text::{escape_html, format_usd};
pub use views::{BAR_WIDTH, service_map, waterfall};
