//! Telemetry set-up: the tracer provider, its resource, the exporter (the flowtrace extension
//! when the layer is attached, else `OTEL_EXPORTER_OTLP_*`), the propagator and the `tracing`
//! bridge. Built once per process; everything per-invocation lives in the wrapper.

use crate::capture::PayloadCapture;
use crate::config::Config;
use crate::handoff::{DynSpanExporter, FlushOutcome, Handoff, HandoffProcessor};
use crate::propagation::{SharedPropagator, propagator_from_env_value};
use flowtrace_contract::{EXTENSION_PATH, START_NOTICE_PATH, StartNotice};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why telemetry could not be set up. The wrapper still runs the handler without it.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the configuration.
    #[error("flowtrace: cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Decides `faas.coldstart`, shared by every invocation in the process.
#[derive(Debug)]
pub(crate) struct ColdStart {
    first: AtomicBool,
    provisioned: bool,
    init_at: Instant,
    proactive_threshold: Duration,
}

impl ColdStart {
    pub(crate) fn new(initialization_type: Option<&str>, proactive_threshold: Duration) -> Self {
        Self {
            first: AtomicBool::new(true),
            provisioned: initialization_type == Some("provisioned-concurrency"),
            init_at: Instant::now(),
            proactive_threshold,
        }
    }

    /// True exactly once per process, for the first invocation, unless the environment was
    /// provisioned or initialised proactively (long before its first invocation).
    pub(crate) fn take(&self, now: Instant) -> bool {
        let first = self.first.swap(false, Ordering::AcqRel);
        first && !self.provisioned && now.duration_since(self.init_at) < self.proactive_threshold
    }
}

pub(crate) struct Inner {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) tracer: SdkTracer,
    pub(crate) handoff: Arc<Handoff>,
    pub(crate) config: Config,
    pub(crate) propagator: SharedPropagator,
    pub(crate) capture: Option<Arc<PayloadCapture>>,
    pub(crate) cold_start: ColdStart,
    pub(crate) notices: Option<Arc<StartNotices>>,
}

/// The process's telemetry: cheap to clone, shared by every invocation.
#[derive(Clone)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.inner.config)
            .field("handoff", &self.inner.handoff)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// A builder, for tests and for users who bring their own exporter.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// Sets up telemetry from the environment: `FLOWTRACE_*` and `OTEL_*` settings, the
    /// layer's presence, the Lambda variables. Installs the global tracer provider and
    /// propagator (so instrumented AWS and HTTP clients find them) and a `tracing`
    /// subscriber with the OpenTelemetry bridge, unless one is already set.
    ///
    /// Never fails: when the exporter cannot be built, spans are dropped with one log line.
    pub fn from_env() -> Self {
        let (config, config_warnings) = Config::from_lookup(|name| std::env::var(name).ok());
        let (propagator, mut warnings) = propagator_from_env_value(std::env::var("OTEL_PROPAGATORS").ok().as_deref());
        warnings.extend(config_warnings.iter().map(ToString::to_string));
        let layer_attached = std::path::Path::new(EXTENSION_PATH).exists();
        let explicit_extension = std::env::var("FLOWTRACE_EXTENSION_ENDPOINT").is_ok();
        let via_extension = layer_attached || explicit_extension;
        let exporter: Box<dyn DynSpanExporter> = match build_otlp_exporter(via_extension.then_some(&config)) {
            Ok(exporter) => Box::new(exporter),
            Err(error) => {
                warnings.push(format!("{error}; spans will not be exported"));
                Box::new(NoopExporter)
            }
        };
        let telemetry = Self::builder()
            .config(config)
            .propagator(propagator)
            .exporter_boxed(exporter)
            .resource(lambda_resource(|name| std::env::var(name).ok()))
            .start_notices(via_extension)
            .build();
        telemetry.install_global();
        // The subscriber comes last so the bridge uses this provider; warnings found on the
        // way are logged once it exists.
        crate::logging::init_subscriber(telemetry.tracer().clone());
        for warning in warnings {
            tracing::warn!(target: "flowtrace", "{warning}");
        }
        if std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p.trim().eq_ignore_ascii_case("grpc")) {
            tracing::warn!(target: "flowtrace", "flowtrace: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported; using http/protobuf");
        }
        telemetry
    }

    /// Makes this telemetry's provider and propagator the global ones.
    pub fn install_global(&self) {
        opentelemetry::global::set_tracer_provider(self.inner.provider.clone());
        opentelemetry::global::set_text_map_propagator(PropagatorHandle(self.clone()));
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The tracer flowtrace starts invocation spans with.
    pub fn tracer(&self) -> &SdkTracer {
        &self.inner.tracer
    }

    /// The tracer provider.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.inner.provider
    }

    /// The propagator used on both ends of every hop.
    pub fn propagator(&self) -> &(dyn opentelemetry::propagation::TextMapPropagator + Send + Sync) {
        self.inner.propagator.as_ref()
    }

    /// Ships every finished span now.
    pub async fn flush(&self) -> FlushOutcome {
        self.inner.handoff.flush().await
    }

    /// Flushes, then shuts the provider down.
    pub async fn shutdown(&self) {
        self.flush().await;
        if let Err(error) = self.inner.provider.shutdown() {
            tracing::debug!(target: "flowtrace", "flowtrace: tracer provider shutdown: {error}");
        }
    }

    /// Spans dropped (buffer full) and lost (export failed) since start-up.
    pub fn losses(&self) -> (u64, u64) {
        (self.inner.handoff.dropped_total(), self.inner.handoff.failed_total())
    }
}

/// Builds a [`Telemetry`].
#[derive(Default)]
pub struct TelemetryBuilder {
    config: Option<Config>,
    exporter: Option<Box<dyn DynSpanExporter>>,
    propagator: Option<SharedPropagator>,
    resource: Option<Resource>,
    start_notices: bool,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// Settings (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Where spans go (default: nowhere).
    pub fn exporter<E: opentelemetry_sdk::trace::SpanExporter + 'static>(self, exporter: E) -> Self {
        self.exporter_boxed(Box::new(exporter))
    }

    fn exporter_boxed(mut self, exporter: Box<dyn DynSpanExporter>) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// The propagator (default: W3C trace context + baggage + X-Ray).
    pub fn propagator(mut self, propagator: SharedPropagator) -> Self {
        self.propagator = Some(propagator);
        self
    }

    /// The resource (default: empty).
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Send start notices to the flowtrace extension (`config.extension_endpoint`).
    pub fn start_notices(mut self, enabled: bool) -> Self {
        self.start_notices = enabled;
        self
    }

    /// Builds the telemetry. Does not install anything globally.
    pub fn build(self) -> Telemetry {
        let config = self.config.unwrap_or_default();
        let resource = self.resource.unwrap_or_else(|| Resource::builder_empty().build());
        let mut exporter = self.exporter.unwrap_or_else(|| Box::new(NoopExporter));
        exporter.set_exporter_resource(&resource);
        let track_open = !config.timeout_margin.is_zero();
        let handoff = Arc::new(Handoff::new(exporter, config.buffer_max_bytes, config.flush_timeout, track_open));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(HandoffProcessor(handoff.clone()))
            .with_resource(resource)
            .build();
        let scope = InstrumentationScope::builder("flowtrace").with_version(env!("CARGO_PKG_VERSION")).build();
        let tracer = provider.tracer_with_scope(scope);
        let capture = config
            .capture_payloads
            .then(|| Arc::new(PayloadCapture::new(config.capture_max_bytes, config.mask_pattern.as_deref())));
        let cold_start = ColdStart::new(
            std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE").ok().as_deref(),
            config.proactive_init_threshold,
        );
        let notices = self.start_notices.then(|| Arc::new(StartNotices::new(&config.extension_endpoint)));
        let propagator = self.propagator.unwrap_or_else(crate::propagation::default_propagator);
        Telemetry {
            inner: Arc::new(Inner { provider, tracer, handoff, config, propagator, capture, cold_start, notices }),
        }
    }
}

/// The OTLP/HTTP exporter: to the extension on loopback when `extension` is given (it
/// forwards to `OTEL_EXPORTER_OTLP_*`), else straight to `OTEL_EXPORTER_OTLP_*`.
fn build_otlp_exporter(extension: Option<&Config>) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    // Chosen explicitly: with the `http-json` feature on, the crate's own default is JSON.
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(otlp_protocol(extension.is_some(), |name| std::env::var(name).ok()));
    let exporter = if let Some(config) = extension {
        builder
            .with_endpoint(format!("{}/v1/traces", config.extension_endpoint))
            .with_timeout(config.flush_timeout)
            .with_headers(Default::default())
            .build()?
    } else {
        builder.build()?
    };
    Ok(exporter)
}

/// HTTP/protobuf, unless `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`
/// asks for `http/json`. The extension always gets protobuf: it forwards bytes untouched.
fn otlp_protocol(to_extension: bool, lookup: impl Fn(&str) -> Option<String>) -> opentelemetry_otlp::Protocol {
    let requested = lookup("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| lookup("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match requested.as_deref().map(str::trim) {
        Some("http/json") if !to_extension => opentelemetry_otlp::Protocol::HttpJson,
        _ => opentelemetry_otlp::Protocol::HttpBinary,
    }
}

/// The resource every span of this function carries, from the Lambda environment plus
/// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` (which win).
pub fn lambda_resource(lookup: impl Fn(&str) -> Option<String>) -> Resource {
    let function_name = lookup("AWS_LAMBDA_FUNCTION_NAME");
    let mut attributes =
        vec![KeyValue::new(semconv::CLOUD_PROVIDER, "aws"), KeyValue::new(semconv::CLOUD_PLATFORM, "aws_lambda")];
    let mut push = |key: &'static str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            attributes.push(KeyValue::new(key, value));
        }
    };
    push(semconv::CLOUD_REGION, lookup("AWS_REGION"));
    push(semconv::FAAS_NAME, function_name.clone());
    push(semconv::FAAS_VERSION, lookup("AWS_LAMBDA_FUNCTION_VERSION"));
    push(semconv::FAAS_INSTANCE, lookup("AWS_LAMBDA_LOG_STREAM_NAME"));
    push(semconv::AWS_LOG_GROUP_NAMES, lookup("AWS_LAMBDA_LOG_GROUP_NAME"));
    if let Some(megabytes) = lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse::<i64>().ok()) {
        attributes.push(KeyValue::new(semconv::FAAS_MAX_MEMORY, megabytes * 1024 * 1024));
    }
    let service_name = lookup("OTEL_SERVICE_NAME").filter(|s| !s.is_empty()).or(function_name);
    let mut builder = Resource::builder_empty()
        .with_attributes(attributes)
        .with_detector(Box::new(opentelemetry_sdk::resource::EnvResourceDetector::new()));
    if let Some(service_name) = service_name {
        builder = builder.with_service_name(service_name);
    }
    builder.build()
}

/// Sends start notices to the extension, fire-and-forget.
pub(crate) struct StartNotices {
    client: reqwest::Client,
    url: String,
    warned: AtomicBool,
}

impl StartNotices {
    fn new(endpoint: &str) -> Self {
        let client =
            reqwest::Client::builder().timeout(Duration::from_millis(250)).no_proxy().build().unwrap_or_default();
        Self { client, url: format!("{endpoint}{START_NOTICE_PATH}"), warned: AtomicBool::new(false) }
    }

    /// Posts `notice` on a spawned task so the handler never waits for it.
    pub(crate) fn send(self: &Arc<Self>, notice: StartNotice) {
        let this = self.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            let body = serde_json::to_vec(&notice).unwrap_or_default();
            let result = this
                .client
                .post(&this.url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Err(error) = result
                && !this.warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    target: "flowtrace",
                    "flowtrace: the extension did not take the start notice ({error}); a function that dies mid-invocation may lose its invocation span. Logged once."
                );
            }
        });
    }
}

/// Lets the global propagator be the one this telemetry owns.
#[derive(Debug)]
struct PropagatorHandle(Telemetry);

impl opentelemetry::propagation::TextMapPropagator for PropagatorHandle {
    fn inject_context(&self, cx: &opentelemetry::Context, injector: &mut dyn opentelemetry::propagation::Injector) {
        self.0.inner.propagator.inject_context(cx, injector);
    }
    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        extractor: &dyn opentelemetry::propagation::Extractor,
    ) -> opentelemetry::Context {
        self.0.inner.propagator.extract_with_context(cx, extractor)
    }
    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        self.0.inner.propagator.fields()
    }
}

#[derive(Debug)]
struct NoopExporter;

impl opentelemetry_sdk::trace::SpanExporter for NoopExporter {
    async fn export(&self, _batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Key;
    use std::collections::HashMap;

    #[test]
    fn protocol_is_protobuf_unless_json_is_asked_for() {
        use opentelemetry_otlp::Protocol;
        let none = |_: &str| None;
        let json = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_owned());
        let grpc = |_: &str| Some("grpc".to_owned());
        assert_eq!(otlp_protocol(false, none), Protocol::HttpBinary);
        assert_eq!(otlp_protocol(false, json), Protocol::HttpJson);
        assert_eq!(otlp_protocol(true, json), Protocol::HttpBinary);
        assert_eq!(otlp_protocol(false, grpc), Protocol::HttpBinary);
    }

    #[test]
    fn cold_start_is_true_once() {
        let cold = ColdStart::new(None, Duration::from_secs(10));
        let now = Instant::now();
        assert!(cold.take(now));
        assert!(!cold.take(now));
    }

    #[test]
    fn provisioned_concurrency_is_never_cold() {
        let cold = ColdStart::new(Some("provisioned-concurrency"), Duration::from_secs(10));
        assert!(!cold.take(Instant::now()));
    }

    #[test]
    fn proactive_init_is_not_cold() {
        let cold = ColdStart::new(Some("on-demand"), Duration::from_millis(5));
        assert!(!cold.take(Instant::now() + Duration::from_secs(60)));
    }

    #[test]
    fn resource_comes_from_the_lambda_environment() {
        let vars: HashMap<&str, &str> = [
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]abc"),
            ("AWS_REGION", "eu-west-1"),
        ]
        .into_iter()
        .collect();
        let resource = lambda_resource(|name| vars.get(name).map(|v| (*v).to_owned()));
        let get = |key: &'static str| resource.get(&Key::from_static_str(key)).map(|v| v.to_string());
        assert_eq!(get(semconv::SERVICE_NAME).as_deref(), Some("orders"));
        assert_eq!(get(semconv::FAAS_NAME).as_deref(), Some("orders"));
        assert_eq!(get(semconv::FAAS_MAX_MEMORY).as_deref(), Some("134217728"));
        assert_eq!(get(semconv::FAAS_INSTANCE).as_deref(), Some("2026/11/24/[$LATEST]abc"));
        assert_eq!(get(semconv::CLOUD_REGION).as_deref(), Some("eu-west-1"));
        assert_eq!(get(semconv::CLOUD_PLATFORM).as_deref(), Some("aws_lambda"));
    }

    #[test]
    fn otel_service_name_wins() {
        let resource = lambda_resource(|name| match name {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("orders".into()),
            "OTEL_SERVICE_NAME" => Some("checkout".into()),
            _ => None,
        });
        assert_eq!(
            resource.get(&Key::from_static_str(semconv::SERVICE_NAME)).map(|v| v.to_string()).as_deref(),
            Some("checkout")
        );
    }
}
