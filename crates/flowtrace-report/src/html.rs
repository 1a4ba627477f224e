//! The self-contained HTML report: inline CSS and SVG, no script, no external resource.
//! Every string that comes from a span is escaped.

use std::fmt::Write as _;

use crate::health::{FunctionHealth, memory_text};
use crate::report::{NodeKind, Report, ServiceMap};
use crate::text::{escape_html as esc, format_ms, format_usd, ns_to_ms};
use crate::views::{edge_label, row_notes};

const NODE_W: f64 = 176.0;
const NODE_H: f64 = 52.0;
const GAP_X: f64 = 112.0;
const GAP_Y: f64 = 44.0;
const MARGIN: f64 = 24.0;
/// Room under the nodes for edges that go back (or stay in their column).
const BACK_ROOM: f64 = 90.0;

const CSS: &str = r#"
:root { --fn:#f59e0b; --api:#8b5cf6; --aws:#3b82f6; --http:#64748b; --err:#dc2626; --ok:#0f766e; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #0f172a; background: #f8fafc; }
header { background: #0f172a; color: #f8fafc; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; color: #cbd5e1; font-size: 13px; }
header code { color: #fde68a; }
main { padding: 8px 24px 32px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 16px; margin: 16px 0; overflow-x: auto; }
h2 { font-size: 16px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 3px 8px; text-align: left; white-space: nowrap; border-bottom: 1px solid #f1f5f9; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: #475569; border-bottom: 1px solid #cbd5e1; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.wf td.op { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.wf td.svc { color: #475569; }
.wf td.tl { width: 40%; min-width: 280px; }
.track { position: relative; height: 14px; background: #f1f5f9; border-radius: 3px; }
.bar { position: absolute; top: 0; bottom: 0; min-width: 2px; border-radius: 3px; background: var(--ok); }
.bar.k-function { background: var(--fn); }
.bar.k-client { background: var(--aws); }
.bar.k-platform { background: #94a3b8; }
.bar.err { background: var(--err); }
.notes { color: var(--err); font-size: 12px; white-space: normal; min-width: 200px; }
.notes.info { color: #64748b; }
tr.wf-row.error td.op { color: var(--err); font-weight: 600; }
tr.total td { font-weight: 600; border-top: 2px solid #cbd5e1; }
td.bad { color: var(--err); font-weight: 600; }
svg.map { display: block; max-width: 100%; height: auto; }
svg.map .node rect { stroke-width: 2; rx: 8; }
svg.map .node.function rect { fill: #fef3c7; stroke: var(--fn); }
svg.map .node.api rect { fill: #ede9fe; stroke: var(--api); }
svg.map .node.aws rect { fill: #dbeafe; stroke: var(--aws); }
svg.map .node.http rect { fill: #f1f5f9; stroke: var(--http); }
svg.map .node text { font-size: 13px; text-anchor: middle; fill: #0f172a; }
svg.map .node text.kind { font-size: 10px; fill: #475569; text-transform: uppercase; letter-spacing: .05em; }
svg.map .node text.detail { font-size: 11px; fill: #334155; }
svg.map path.edge { fill: none; stroke: #475569; stroke-width: 1.6; }
svg.map path.edge.err { stroke: var(--err); }
svg.map text.edge-label { font-size: 11px; text-anchor: middle; fill: #1e293b; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
svg.map text.edge-label.err { fill: var(--err); }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; color: #475569; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.empty { color: #64748b; }
"#;

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Trace durations are far below 2^53 ns.
    #[allow(clippy::cast_precision_loss)]
    let share = part as f64 / total as f64 * 100.0;
    share.clamp(0.0, 100.0)
}

fn waterfall_section(report: &Report, out: &mut String) {
    let total = report.duration_ns();
    let _ = write!(
        out,
        r#"<section id="waterfall"><h2>Waterfall</h2><div class="legend"><span><i style="background:var(--fn)"></i>invocation</span><span><i style="background:var(--aws)"></i>client call</span><span><i style="background:#94a3b8"></i>platform</span><span><i style="background:var(--ok)"></i>other</span><span><i style="background:var(--err)"></i>error</span></div>
<table class="wf"><thead><tr><th>service</th><th>operation</th><th class="num">start ms</th><th class="num">dur ms</th><th>timeline ({} ms)</th><th>notes</th></tr></thead><tbody>
"#,
        format_ms(ns_to_ms(total))
    );
    for row in report.rows() {
        let Some(span) = report.spans().get(row.span) else { continue };
        let offset = span.start_unix_nano.saturating_sub(report.start_unix_nano());
        let left = percent(offset, total);
        let width = percent(span.duration_ns(), total).min(100.0 - left);
        let class = if span.is_invocation() {
            "k-function"
        } else if span.is_platform() || span.is_init() {
            "k-platform"
        } else if span.aws_service().is_some() || span.http_target().is_some() {
            "k-client"
        } else {
            "k-other"
        };
        let error = if span.is_error() { " err" } else { "" };
        let notes = row_notes(span, row);
        let notes_class = if span.is_error() { "notes" } else { "notes info" };
        let _ = writeln!(
            out,
            r#"<tr class="wf-row{}" data-depth="{}"><td class="svc">{}</td><td class="op" style="padding-left:{}px" title="{}">{}</td><td class="num">{}</td><td class="num">{}</td><td class="tl"><div class="track"><div class="bar {class}{error}" style="left:{left:.3}%;width:{width:.3}%"></div></div></td><td class="{notes_class}">{}</td></tr>"#,
            if span.is_error() { " error" } else { "" },
            row.depth,
            esc(&short(&span.service, 40)),
            8 + 16 * row.depth.min(24),
            esc(&span.name),
            esc(&short(&span.name, 80)),
            format_ms(ns_to_ms(offset)),
            format_ms(ns_to_ms(span.duration_ns())),
            esc(&notes.join("; ")),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

struct Placed {
    x: f64,
    y: f64,
}

fn kind_class(kind: NodeKind) -> &'static str {
    kind.as_str()
}

fn kind_title(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Function => "Lambda function",
        NodeKind::ApiGateway => "HTTP entry",
        NodeKind::Aws => "AWS service",
        NodeKind::Http => "external API",
    }
}

/// The service map drawn as SVG: columns by depth from the entry, left to right.
pub(crate) fn map_svg(map: &ServiceMap) -> String {
    if map.nodes.is_empty() {
        return r#"<p class="empty">No services in this trace.</p>"#.to_owned();
    }
    let columns = map.nodes.iter().map(|n| n.depth).max().unwrap_or(0) + 1;
    let mut per_column = vec![0usize; columns];
    for node in &map.nodes {
        per_column[node.depth] += 1;
    }
    let tallest = per_column.iter().copied().max().unwrap_or(1);
    let pitch = NODE_H + GAP_Y;
    // Column and row counts are small.
    #[allow(clippy::cast_precision_loss)]
    let (columns_f, tallest_f) = (columns as f64, tallest as f64);
    let mut slot = vec![0usize; columns];
    let mut placed = Vec::with_capacity(map.nodes.len());
    for node in &map.nodes {
        #[allow(clippy::cast_precision_loss)]
        let (depth, index, count) = (node.depth as f64, slot[node.depth] as f64, per_column[node.depth] as f64);
        slot[node.depth] += 1;
        let x = MARGIN + depth * (NODE_W + GAP_X);
        let y = MARGIN + (tallest_f - count) * pitch / 2.0 + index * pitch;
        placed.push(Placed { x, y });
    }
    let back_edges = map.edges.iter().any(|e| map.nodes[e.to].depth <= map.nodes[e.from].depth);
    let width = MARGIN * 2.0 + columns_f * NODE_W + (columns_f - 1.0) * GAP_X;
    let height =
        MARGIN * 2.0 + tallest_f * NODE_H + (tallest_f - 1.0) * GAP_Y + if back_edges { BACK_ROOM } else { 0.0 };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg class="map" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="service map">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker><marker id="arrow-err" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#dc2626"/></marker></defs>"##
    );
    let mut labels = String::new();
    for edge in &map.edges {
        let (Some(from), Some(to)) = (placed.get(edge.from), placed.get(edge.to)) else { continue };
        let forward = map.nodes[edge.to].depth > map.nodes[edge.from].depth;
        let (d, lx, ly) = if forward {
            let (x1, y1) = (from.x + NODE_W, from.y + NODE_H / 2.0);
            let (x2, y2) = (to.x, to.y + NODE_H / 2.0);
            let dx = (x2 - x1) / 2.0;
            (
                format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + dx, x2 - dx),
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 5.0,
            )
        } else {
            // Back (or same-column) edge: loop under the nodes.
            let (x1, y1) = (from.x + NODE_W / 2.0 + 12.0, from.y + NODE_H);
            let (x2, y2) = (to.x + NODE_W / 2.0 - 12.0, to.y + NODE_H);
            let bottom = y1.max(y2) + BACK_ROOM * 0.75;
            (
                format!("M{x1:.1},{y1:.1} C{x1:.1},{bottom:.1} {x2:.1},{bottom:.1} {x2:.1},{y2:.1}"),
                (x1 + x2) / 2.0,
                y1.max(y2) + BACK_ROOM * 0.5 + 4.0,
            )
        };
        let error = edge.errors > 0;
        let _ = writeln!(
            svg,
            r#"<path class="edge{}" d="{d}" marker-end="url(#{})"><title>{} → {}</title></path>"#,
            if error { " err" } else { "" },
            if error { "arrow-err" } else { "arrow" },
            esc(&map.nodes[edge.from].label),
            esc(&map.nodes[edge.to].label),
        );
        // Two short lines, so labels fit between the columns: the operations, then the counts.
        let operations: Vec<&str> = edge.calls.iter().map(|(op, _)| op.as_str()).collect();
        let mut counts = format!("×{}", edge.count());
        match edge.errors {
            0 => {}
            1 => counts.push_str(" · 1 error"),
            n => counts.push_str(&format!(" · {n} errors")),
        }
        let (first_y, second_y) = if forward { (ly - 13.0, ly) } else { (ly, ly + 13.0) };
        let class = if error { "edge-label err" } else { "edge-label" };
        let _ = writeln!(
            labels,
            r#"<g class="edge-text"><title>{}</title><text class="{class}" x="{lx:.1}" y="{first_y:.1}">{}</text><text class="{class}" x="{lx:.1}" y="{second_y:.1}">{}</text></g>"#,
            esc(&edge_label(edge)),
            esc(&short(&operations.join(", "), 24)),
            esc(&counts),
        );
    }
    for (node, at) in map.nodes.iter().zip(&placed) {
        let cx = at.x + NODE_W / 2.0;
        let detail = if node.details.is_empty() { String::new() } else { node.details.join(", ") };
        let _ = writeln!(
            svg,
            r#"<g class="node {}" data-key="{}"><title>{}{}</title><rect x="{:.1}" y="{:.1}" width="{NODE_W:.0}" height="{NODE_H:.0}" rx="8"/><text class="kind" x="{cx:.1}" y="{:.1}">{}</text><text class="label" x="{cx:.1}" y="{:.1}">{}</text>{}</g>"#,
            kind_class(node.kind),
            esc(&node.key),
            esc(&node.label),
            if detail.is_empty() { String::new() } else { format!(" ({})", esc(&detail)) },
            at.x,
            at.y,
            at.y + 13.0,
            kind_title(node.kind),
            at.y + if detail.is_empty() { 35.0 } else { 30.0 },
            esc(&short(&node.label, 24)),
            if detail.is_empty() {
                String::new()
            } else {
                format!(
                    r#"<text class="detail" x="{cx:.1}" y="{:.1}">{}</text>"#,
                    at.y + 45.0,
                    esc(&short(&detail, 28))
                )
            },
        );
    }
    svg.push_str(&labels);
    svg.push_str("</svg>");
    svg
}

fn health_section(health: &[FunctionHealth], out: &mut String) {
    out.push_str(
        r#"<section id="health"><h2>Health and cost per function <small>(all traces in the file)</small></h2>"#,
    );
    if health.is_empty() {
        out.push_str(r#"<p class="empty">No invocations found.</p></section>"#);
        return;
    }
    out.push_str(
        r#"<table class="health"><thead><tr><th>function</th><th class="num">invocations</th><th class="num">errors</th><th class="num">timeouts</th><th class="num">cold starts</th><th class="num">p50 ms</th><th class="num">p99 ms</th><th class="num">billed ms</th><th class="num">max mem / size MB</th><th class="num">cost USD</th></tr></thead><tbody>
"#,
    );
    let bad = |n: u64| if n > 0 { "num bad" } else { "num" };
    let dash = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format_ms);
    for h in health {
        let _ = writeln!(
            out,
            r#"<tr class="fn-row"><td>{}</td><td class="num">{}</td><td class="{}">{}</td><td class="{}">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(&h.function),
            h.invocations,
            bad(h.errors),
            h.errors,
            bad(h.timeouts),
            h.timeouts,
            h.cold_starts,
            dash(h.p50_ms),
            dash(h.p99_ms),
            h.billed_ms,
            esc(&memory_text(h)),
            format_usd(h.cost_usd),
        );
    }
    let sum = |f: fn(&FunctionHealth) -> u64| health.iter().map(f).sum::<u64>();
    let _ = writeln!(
        out,
        r#"<tr class="total"><td>total</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td></td><td></td><td class="num">{}</td><td></td><td class="num">{}</td></tr>"#,
        sum(|h| h.invocations),
        sum(|h| h.errors),
        sum(|h| h.timeouts),
        sum(|h| h.cold_starts),
        sum(|h| h.billed_ms),
        format_usd(health.iter().map(|h| h.cost_usd).sum()),
    );
    out.push_str("</tbody></table></section>\n");
}

/// The report as one self-contained HTML page: the waterfall as bars, the service map drawn
/// as SVG, and the health table. No script and no external resource; every string from the
/// spans is escaped.
pub fn html(report: &Report, health: &[FunctionHealth]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>flowtrace report: trace {}</title><style>{CSS}</style></head>
<body><header><h1>flowtrace report</h1><p>trace <code>{}</code> · {} spans · {} services · {} ms</p></header><main>
"#,
        esc(report.trace_id()),
        esc(report.trace_id()),
        report.spans().len(),
        report.services().len(),
        format_ms(ns_to_ms(report.duration_ns())),
    );
    let map = report.map();
    let _ = writeln!(
        out,
        r#"<section id="service-map"><h2>Service map <small>({} nodes, {} edges)</small></h2>{}</section>"#,
        map.nodes.len(),
        map.edges.len(),
        map_svg(map)
    );
    waterfall_section(report, &mut out);
    health_section(health, &mut out);
    out.push_str("</main></body></html>\n");
    out
}
