//! The focused trace: its spans in tree order, and its service map.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use flowtrace_contract::attr;
use thiserror::Error;

use crate::span::{
    AWS_DYNAMODB_TABLE_NAMES, AWS_KINESIS_STREAM_NAME, DB_COLLECTION_NAME, FAAS_TRIGGER, MESSAGING_DESTINATION_NAME,
    RPC_METHOD, SpanKind, SpanRecord,
};

/// Which trace a report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    /// The trace with this id (32 hex digits, any case).
    Trace(String),
    /// The trace containing the invocation span whose `faas.invocation_id` is this.
    Invocation(String),
    /// The trace with the most services (ties: the most spans, then the earliest start).
    MostServices,
}

/// Why no report could be built.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReportError {
    /// There are no spans at all.
    #[error("no spans to report on")]
    NoSpans,
    /// No span has this trace id.
    #[error("no span has trace id {0}")]
    TraceNotFound(String),
    /// No invocation has this id.
    #[error("no invocation span has faas.invocation_id {0}")]
    InvocationNotFound(String),
}

/// One waterfall row: a span and where it sits in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Index into [`Report::spans`].
    pub span: usize,
    /// Depth in the tree (0 for roots).
    pub depth: usize,
    /// For a root whose parent span is not in the file: that parent's id.
    pub missing_parent: Option<String>,
    /// For a span whose ancestors form a cycle (only possible in corrupt input): shown as a
    /// root.
    pub cycle: bool,
}

/// What a service-map node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A Lambda function (a service that has invocation spans, or that made calls).
    Function,
    /// The HTTP front door of a function: API Gateway, a Function URL, an ALB.
    ApiGateway,
    /// An AWS service called through the SDK or triggering a function (SNS, Kinesis...).
    Aws,
    /// An external HTTP API (`host:port`).
    Http,
}

impl NodeKind {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Function => "function",
            Self::ApiGateway => "api",
            Self::Aws => "aws",
            Self::Http => "http",
        }
    }
}

/// A service-map node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A unique key (`fn:NAME`, `aws:SERVICE`, `http:HOST:PORT`, `api:NAME`).
    pub key: String,
    /// The name shown.
    pub label: String,
    /// What it is.
    pub kind: NodeKind,
    /// Destinations seen on it (topics, streams, tables, queues), sorted.
    pub details: Vec<String>,
    /// Its distance from an entry node (a node nothing calls).
    pub depth: usize,
}

/// A service-map edge: calls from one node to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index of the caller in [`ServiceMap::nodes`].
    pub from: usize,
    /// Index of the callee in [`ServiceMap::nodes`].
    pub to: usize,
    /// The operations and how often each was called, in first-seen order.
    pub calls: Vec<(String, u64)>,
    /// How many of the calls failed.
    pub errors: u64,
}

impl Edge {
    /// The total number of calls.
    pub fn count(&self) -> u64 {
        self.calls.iter().map(|(_, n)| n).sum()
    }
}

/// The services of one trace and the calls between them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceMap {
    /// Nodes, ordered by depth, then by when they were first seen.
    pub nodes: Vec<Node>,
    /// Edges, ordered by when they were first seen.
    pub edges: Vec<Edge>,
}

/// One trace, ready to be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    trace_id: String,
    spans: Vec<SpanRecord>,
    rows: Vec<Row>,
    start_unix_nano: u64,
    end_unix_nano: u64,
    map: ServiceMap,
}

impl Report {
    /// Picks the trace `focus` names out of `spans` and lays it out. Spans that share a span
    /// id are shown once: the function's own span is preferred over one the extension
    /// synthesized for it.
    pub fn build(spans: Vec<SpanRecord>, focus: Focus) -> Result<Self, ReportError> {
        if spans.is_empty() {
            return Err(ReportError::NoSpans);
        }
        let trace_id = pick_trace(&spans, &focus)?;
        let spans = dedupe(spans.into_iter().filter(|s| s.trace_id == trace_id));
        let rows = tree(&spans);
        let start_unix_nano = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
        let end_unix_nano = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(start_unix_nano);
        let map = service_map(&spans);
        Ok(Self { trace_id, spans, rows, start_unix_nano, end_unix_nano, map })
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The trace's spans (deduplicated), in file order.
    pub fn spans(&self) -> &[SpanRecord] {
        &self.spans
    }

    /// The spans in tree order: roots by start time, each followed by its children (sorted by
    /// start time), depth first.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The earliest start in the trace.
    pub fn start_unix_nano(&self) -> u64 {
        self.start_unix_nano
    }

    /// The trace's span from the earliest start to the latest end, in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// The distinct services (resource `service.name`) in the trace, sorted.
    pub fn services(&self) -> Vec<&str> {
        self.spans.iter().map(|s| s.service.as_str()).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// The service map of the trace.
    pub fn map(&self) -> &ServiceMap {
        &self.map
    }
}

fn pick_trace(spans: &[SpanRecord], focus: &Focus) -> Result<String, ReportError> {
    match focus {
        Focus::Trace(id) => {
            let id = id.trim().to_ascii_lowercase();
            if spans.iter().any(|s| s.trace_id == id) { Ok(id) } else { Err(ReportError::TraceNotFound(id)) }
        }
        Focus::Invocation(id) => spans
            .iter()
            .find(|s| s.is_invocation() && s.invocation_id() == Some(id.as_str()))
            .or_else(|| spans.iter().find(|s| s.invocation_id() == Some(id.as_str())))
            .map(|s| s.trace_id.clone())
            .ok_or_else(|| ReportError::InvocationNotFound(id.clone())),
        Focus::MostServices => {
            // trace id → (services, span count, earliest start)
            let mut traces: HashMap<&str, (HashSet<&str>, usize, u64)> = HashMap::new();
            for span in spans {
                let entry = traces.entry(span.trace_id.as_str()).or_insert_with(|| (HashSet::new(), 0, u64::MAX));
                entry.0.insert(span.service.as_str());
                entry.1 += 1;
                entry.2 = entry.2.min(span.start_unix_nano);
            }
            traces
                .into_iter()
                .max_by(|(a_id, a), (b_id, b)| {
                    a.0.len().cmp(&b.0.len()).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)).then(b_id.cmp(a_id))
                })
                .map(|(id, _)| id.to_owned())
                .ok_or(ReportError::NoSpans)
        }
    }
}

/// One span per span id; a synthesized span gives way to the function's own.
fn dedupe(spans: impl Iterator<Item = SpanRecord>) -> Vec<SpanRecord> {
    let mut out: Vec<SpanRecord> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for span in spans {
        match seen.get(&span.span_id) {
            Some(&at) => {
                if out[at].is_synthesized() && !span.is_synthesized() {
                    out[at] = span;
                }
            }
            None => {
                seen.insert(span.span_id.clone(), out.len());
                out.push(span);
            }
        }
    }
    out
}

fn tree(spans: &[SpanRecord]) -> Vec<Row> {
    let index: HashMap<&str, usize> = spans.iter().enumerate().map(|(i, s)| (s.span_id.as_str(), i)).collect();
    let order = |a: &usize, b: &usize| {
        let (x, y) = (&spans[*a], &spans[*b]);
        x.start_unix_nano
            .cmp(&y.start_unix_nano)
            .then(y.end_unix_nano.cmp(&x.end_unix_nano))
            .then(x.name.cmp(&y.name))
            .then(x.span_id.cmp(&y.span_id))
    };
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_id.as_deref().and_then(|p| index.get(p)) {
            Some(&parent) if parent != i => children.entry(parent).or_default().push(i),
            _ => roots.push(i),
        }
    }
    for list in children.values_mut() {
        list.sort_by(order);
    }
    roots.sort_by(order);

    let mut rows = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    let walk = |root: usize, cycle: bool, rows: &mut Vec<Row>, visited: &mut Vec<bool>| {
        let mut stack = vec![(root, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            let parent = spans[i].parent_id.as_deref();
            let own_parent = parent.is_some_and(|p| index.get(p) == Some(&i));
            let missing_parent =
                if depth == 0 { parent.filter(|p| !index.contains_key(p)).map(str::to_owned) } else { None };
            rows.push(Row { span: i, depth, missing_parent, cycle: depth == 0 && (cycle || own_parent) });
            if let Some(kids) = children.get(&i) {
                for &kid in kids.iter().rev() {
                    stack.push((kid, depth + 1));
                }
            }
        }
    };
    for &root in &roots {
        walk(root, false, &mut rows, &mut visited);
    }
    // Whatever is left hangs off a cycle: break it at its earliest span.
    let mut rest: Vec<usize> = (0..spans.len()).filter(|i| !visited[*i]).collect();
    rest.sort_by(order);
    for i in rest {
        if !visited[i] {
            walk(i, true, &mut rows, &mut visited);
        }
    }
    rows
}

/// The node a trigger source (`flowtrace.trigger.source`) stands for.
fn trigger_node(source: &str) -> Option<(&'static str, &'static str, NodeKind)> {
    Some(match source {
        "apigw.rest" | "apigw.http" => ("api:API Gateway", "API Gateway", NodeKind::ApiGateway),
        "function_url" => ("api:Function URL", "Function URL", NodeKind::ApiGateway),
        "alb" => ("api:ALB", "ALB", NodeKind::ApiGateway),
        "sns" => ("aws:SNS", "SNS", NodeKind::Aws),
        "sqs" => ("aws:SQS", "SQS", NodeKind::Aws),
        "kinesis" => ("aws:Kinesis", "Kinesis", NodeKind::Aws),
        "dynamodb" => ("aws:DynamoDB", "DynamoDB", NodeKind::Aws),
        "eventbridge" => ("aws:EventBridge", "EventBridge", NodeKind::Aws),
        "schedule" => ("aws:EventBridge Scheduler", "EventBridge Scheduler", NodeKind::Aws),
        "s3" => ("aws:S3", "S3", NodeKind::Aws),
        "stepfunctions" => ("aws:Step Functions", "Step Functions", NodeKind::Aws),
        _ => return None,
    })
}

/// The destination a span names (topic, stream, table, queue).
fn destination(span: &SpanRecord) -> Option<String> {
    let a = &span.attributes;
    a.str(MESSAGING_DESTINATION_NAME)
        .or_else(|| a.str(AWS_KINESIS_STREAM_NAME))
        .or_else(|| a.str(DB_COLLECTION_NAME))
        .or_else(|| a.str(AWS_DYNAMODB_TABLE_NAMES))
        .map(str::to_owned)
}

#[derive(Default)]
struct MapBuilder {
    nodes: Vec<Node>,
    keys: HashMap<String, usize>,
    edges: Vec<Edge>,
    edge_keys: HashMap<(usize, usize), usize>,
    http_paths: HashMap<usize, BTreeSet<String>>,
}

impl MapBuilder {
    fn node(&mut self, key: &str, label: &str, kind: NodeKind) -> usize {
        if let Some(&at) = self.keys.get(key) {
            return at;
        }
        self.keys.insert(key.to_owned(), self.nodes.len());
        self.nodes.push(Node { key: key.to_owned(), label: label.to_owned(), kind, details: Vec::new(), depth: 0 });
        self.nodes.len() - 1
    }

    fn function(&mut self, name: &str) -> usize {
        self.node(&format!("fn:{name}"), name, NodeKind::Function)
    }

    fn detail(&mut self, node: usize, detail: Option<String>) {
        if let Some(detail) = detail
            && let Some(node) = self.nodes.get_mut(node)
            && !node.details.contains(&detail)
        {
            node.details.push(detail);
            node.details.sort();
        }
    }

    fn edge(&mut self, from: usize, to: usize, operation: &str, error: bool) {
        let at = *self.edge_keys.entry((from, to)).or_insert_with(|| {
            self.edges.push(Edge { from, to, calls: Vec::new(), errors: 0 });
            self.edges.len() - 1
        });
        if let Some(edge) = self.edges.get_mut(at) {
            match edge.calls.iter_mut().find(|(op, _)| op == operation) {
                Some((_, n)) => *n += 1,
                None => edge.calls.push((operation.to_owned(), 1)),
            }
            edge.errors += u64::from(error);
        }
    }

    fn finish(mut self) -> ServiceMap {
        // HTTP nodes: `auth API host:port` when every call went under one first path segment.
        for (&node, paths) in &self.http_paths {
            let segments: BTreeSet<&str> =
                paths.iter().map(|p| p.trim_start_matches('/').split('/').next().unwrap_or("")).collect();
            if let Some(node) = self.nodes.get_mut(node) {
                let host = node.key.trim_start_matches("http:").to_owned();
                node.label = match segments.into_iter().collect::<Vec<_>>().as_slice() {
                    [one] if !one.is_empty() && !one.starts_with('{') => format!("{one} API {host}"),
                    _ => format!("HTTP API {host}"),
                };
            }
        }
        // Depth: breadth first from the entry nodes (nothing calls them).
        let n = self.nodes.len();
        let mut incoming = vec![0usize; n];
        let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); n];
        for edge in &self.edges {
            if edge.from != edge.to {
                incoming[edge.to] += 1;
                outgoing[edge.from].push(edge.to);
            }
        }
        let mut depth: Vec<Option<usize>> = vec![None; n];
        let mut queue: VecDeque<usize> = (0..n).filter(|i| incoming[*i] == 0).collect();
        for &i in &queue {
            depth[i] = Some(0);
        }
        loop {
            while let Some(i) = queue.pop_front() {
                let next = depth[i].unwrap_or(0) + 1;
                for &to in &outgoing[i] {
                    if depth[to].is_none() {
                        depth[to] = Some(next);
                        queue.push_back(to);
                    }
                }
            }
            // A cycle nothing enters: start it at its first-seen node.
            match (0..n).find(|i| depth[*i].is_none()) {
                Some(i) => {
                    depth[i] = Some(0);
                    queue.push_back(i);
                }
                None => break,
            }
        }
        for (node, d) in self.nodes.iter_mut().zip(&depth) {
            node.depth = d.unwrap_or(0);
        }
        // Order nodes by depth, then first seen; remap the edges.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (self.nodes[i].depth, i));
        let mut new_index = vec![0usize; n];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let nodes = order.iter().map(|&i| self.nodes[i].clone()).collect();
        let edges = self
            .edges
            .into_iter()
            .map(|mut e| {
                e.from = new_index[e.from];
                e.to = new_index[e.to];
                e
            })
            .collect();
        ServiceMap { nodes, edges }
    }
}

fn service_map(spans: &[SpanRecord]) -> ServiceMap {
    let index: HashMap<&str, &SpanRecord> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut ordered: Vec<&SpanRecord> = spans.iter().collect();
    ordered.sort_by(|a, b| a.start_unix_nano.cmp(&b.start_unix_nano).then(a.span_id.cmp(&b.span_id)));
    let mut map = MapBuilder::default();
    for span in ordered {
        if span.is_invocation() {
            let function = map.function(&span.service);
            let parent = span.parent_id.as_deref().and_then(|p| index.get(p));
            let source = match span.attributes.str(attr::TRIGGER_SOURCE).and_then(trigger_node) {
                Some((key, label, kind)) => Some(map.node(key, label, kind)),
                None if span.attributes.str(FAAS_TRIGGER) == Some("http") => {
                    Some(map.node("api:API Gateway", "API Gateway", NodeKind::ApiGateway))
                }
                None => parent
                    .and_then(|p| p.aws_service())
                    .map(|service| map.node(&format!("aws:{service}"), service, NodeKind::Aws)),
            };
            if let Some(source) = source {
                map.detail(source, destination(span));
                map.edge(source, function, &span.name, span.is_error());
            }
        } else if span.is_platform() || span.is_init() {
            continue;
        } else if let Some(service) = span.aws_service() {
            let caller = map.function(&span.service);
            let target = map.node(&format!("aws:{service}"), service, NodeKind::Aws);
            map.detail(target, destination(span));
            let operation = span
                .attributes
                .str(RPC_METHOD)
                .map(str::to_owned)
                .unwrap_or_else(|| span.name.split_once('.').map_or(span.name.clone(), |(_, op)| op.to_owned()));
            map.edge(caller, target, &operation, span.is_error());
        } else if let Some(host) = span.http_target() {
            let caller = map.function(&span.service);
            let target = map.node(&format!("http:{host}"), &host, NodeKind::Http);
            if let Some(path) = span.http_path() {
                map.http_paths.entry(target).or_default().insert(path);
            }
            map.edge(caller, target, &span.name, span.is_error());
        } else if span.kind == SpanKind::Client || span.kind == SpanKind::Producer {
            // A call to something unnamed: keep the caller on the map.
            map.function(&span.service);
        }
    }
    map.finish()
}
