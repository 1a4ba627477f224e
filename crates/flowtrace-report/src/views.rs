//! The text views: the waterfall and the service map.

use flowtrace_contract::attr;

use crate::report::{Edge, Report, Row, ServiceMap};
use crate::span::SpanRecord;
use crate::text::{Align, clean, format_ms, format_usd, ns_to_ms, pad, width};

/// Width of the waterfall's timeline column, in characters.
pub const BAR_WIDTH: usize = 40;
/// Indentation is capped at this depth, so a corrupt, very deep tree stays readable.
const MAX_INDENT_DEPTH: usize = 24;

/// The first and last bar cell (inclusive) of a span, on a timeline `cells` wide.
pub(crate) fn bar_cells(offset_ns: u64, duration_ns: u64, total_ns: u64, cells: usize) -> (usize, usize) {
    if total_ns == 0 || cells == 0 {
        return (0, cells.saturating_sub(1));
    }
    let scale = |ns: u64| -> f64 {
        // Nanoseconds to a cell position: far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let position = ns as f64 / total_ns as f64 * cells as f64;
        position
    };
    // Small, non-negative positions.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let first = (scale(offset_ns).floor() as usize).min(cells - 1);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let end = scale(offset_ns.saturating_add(duration_ns)).ceil() as usize;
    (first, end.clamp(first + 1, cells) - 1)
}

/// What the last column says about a row: the error status, a cut-off, a missing parent.
pub(crate) fn row_notes(span: &SpanRecord, row: &Row) -> Vec<String> {
    let mut notes = Vec::new();
    if span.is_error() {
        let message = if span.status.message.is_empty() { "error" } else { span.status.message.as_str() };
        notes.push(format!("✗ {}", clean(message, 160)));
    }
    if let Some(reason) = span.attributes.str(attr::CUT_OFF)
        && !span.status.message.contains("cut off")
        && !span.status.message.contains(reason)
    {
        notes.push(format!("cut off ({})", clean(reason, 40)));
    }
    if span.is_invocation() && span.attributes.bool(crate::span::FAAS_COLDSTART) == Some(true) {
        notes.push("cold start".to_owned());
    }
    if span.is_platform() {
        let a = &span.attributes;
        let mut figures = Vec::new();
        if let Some(billed) = a.i64(attr::PLATFORM_BILLED_DURATION_MS) {
            figures.push(format!("billed {billed} ms"));
        }
        match (a.i64(attr::PLATFORM_MAX_MEMORY_USED_MB), a.i64(attr::PLATFORM_MEMORY_SIZE_MB)) {
            (Some(used), Some(size)) => figures.push(format!("{used}/{size} MB")),
            (Some(used), None) => figures.push(format!("{used} MB")),
            _ => {}
        }
        if let Some(cost) = a.f64(attr::PLATFORM_COST_USD) {
            figures.push(format_usd(cost));
        }
        if !figures.is_empty() {
            notes.push(figures.join(", "));
        }
    }
    if span.is_synthesized() {
        notes.push("synthesized by the extension".to_owned());
    }
    if let Some(parent) = &row.missing_parent {
        notes.push(format!("parent {} is not in the file: shown as a root", clean(parent, 32)));
    }
    if row.cycle {
        notes.push("its parents form a cycle: shown as a root".to_owned());
    }
    notes
}

/// The focused trace as a text waterfall: one row per span in tree order, with service,
/// operation (indented by depth), start offset and duration in ms, a bar on the trace's
/// timeline, and notes (errors with their status message, cut-offs, missing parents).
pub fn waterfall(report: &Report) -> String {
    let total = report.duration_ns();
    let spans = report.spans();
    let mut out = format!(
        "Trace {}: {} spans, {} services, {} ms\n",
        report.trace_id(),
        spans.len(),
        report.services().len(),
        format_ms(ns_to_ms(total))
    );
    let mut service_width = width("service");
    let mut operation_width = width("operation");
    let mut cells = Vec::with_capacity(report.rows().len());
    for row in report.rows() {
        let Some(span) = spans.get(row.span) else { continue };
        let service = clean(&span.service, 28);
        let operation = format!("{}{}", "  ".repeat(row.depth.min(MAX_INDENT_DEPTH)), clean(&span.name, 48));
        service_width = service_width.max(width(&service));
        operation_width = operation_width.max(width(&operation));
        cells.push((row, span, service, operation));
    }
    out.push_str(&format!(
        "{}  {}  {:>9}  {:>9}  {}\n",
        pad("service", service_width, Align::Left),
        pad("operation", operation_width, Align::Left),
        "start ms",
        "dur ms",
        pad("timeline", BAR_WIDTH + 2, Align::Left).trim_end()
    ));
    let mut orphans = 0;
    for (row, span, service, operation) in cells {
        let offset = span.start_unix_nano.saturating_sub(report.start_unix_nano());
        let (first, last) = bar_cells(offset, span.duration_ns(), total, BAR_WIDTH);
        let fill = if span.is_error() { '!' } else { '#' };
        let bar: String = (0..BAR_WIDTH).map(|i| if i >= first && i <= last { fill } else { ' ' }).collect();
        let notes = row_notes(span, row);
        orphans += usize::from(row.missing_parent.is_some());
        let line = format!(
            "{}  {}  {:>9}  {:>9}  |{bar}|  {}",
            pad(&service, service_width, Align::Left),
            pad(&operation, operation_width, Align::Left),
            format_ms(ns_to_ms(offset)),
            format_ms(ns_to_ms(span.duration_ns())),
            notes.join("; ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if orphans > 0 {
        out.push_str(&format!("{orphans} span(s) whose parent is missing from the file are shown as roots.\n"));
    }
    out
}

fn edge_calls(edge: &Edge) -> String {
    let calls: Vec<String> = edge.calls.iter().map(|(op, n)| format!("{} ×{n}", clean(op, 48))).collect();
    let mut text = calls.join(", ");
    match edge.errors {
        0 => {}
        1 => text.push_str(", 1 error"),
        n => text.push_str(&format!(", {n} errors")),
    }
    text
}

/// The label of an edge, as both views show it (`Publish ×1, 1 error`).
pub(crate) fn edge_label(edge: &Edge) -> String {
    edge_calls(edge)
}

/// The service map of the focused trace as text: the nodes (by depth from the entry), then
/// one line per edge, `caller → callee (Operation ×count, N errors)`.
pub fn service_map(report: &Report) -> String {
    let map: &ServiceMap = report.map();
    let mut out = format!("Service map: {} nodes, {} edges\n", map.nodes.len(), map.edges.len());
    let label_width = map.nodes.iter().map(|n| width(&clean(&n.label, 48))).max().unwrap_or(0);
    for node in &map.nodes {
        let details = if node.details.is_empty() {
            String::new()
        } else {
            format!("  ({})", node.details.iter().map(|d| clean(d, 48)).collect::<Vec<_>>().join(", "))
        };
        let line = format!(
            "  {:<10} {}{details}",
            format!("[{}]", node.kind.as_str()),
            pad(&clean(&node.label, 48), label_width, Align::Left)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    for edge in &map.edges {
        let (Some(from), Some(to)) = (map.nodes.get(edge.from), map.nodes.get(edge.to)) else { continue };
        out.push_str(&format!("  {} → {} ({})\n", clean(&from.label, 48), clean(&to.label, 48), edge_calls(edge)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::bar_cells;

    #[test]
    fn bars_cover_at_least_one_cell_and_stay_inside() {
        assert_eq!(bar_cells(0, 100, 100, 40), (0, 39));
        assert_eq!(bar_cells(0, 0, 100, 40), (0, 0));
        assert_eq!(bar_cells(100, 0, 100, 40), (39, 39));
        assert_eq!(bar_cells(50, 25, 100, 40), (20, 29));
        assert_eq!(bar_cells(10, 10, 0, 40), (0, 39), "a zero-length trace fills the bar");
        assert_eq!(bar_cells(u64::MAX, u64::MAX, 1, 40), (39, 39));
    }
}
