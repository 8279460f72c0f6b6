//! # ce-metrics: Prometheus metrics of the whole process
//!
//! The HTTP endpoint that serves them (`--metrics-listen`) is the server's
//! (`context_engine::metrics::serve`); this crate holds only the registry, so
//! that the embed, store and engine crates can record without depending on a
//! web framework.
//!
//! One registry per process ([`metrics`]): every layer records into it
//! without the handle being threaded through constructors. No label ever
//! carries personal data: labels are RPC names, gRPC codes, store
//! operations and fixed reason names, so the label sets are bounded.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets (seconds) for RPCs and store operations: 0.25 ms … 10 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every metric the engine exports.
pub struct Metrics {
    registry: Registry,
    /// Calls answered, by RPC (method name) and gRPC code name.
    pub rpc_requests: IntCounterVec,
    /// Time from the call's arrival to its response headers, by RPC and code.
    pub rpc_duration: HistogramVec,
    /// Calls being handled now (health checks excluded).
    pub rpc_in_flight: IntGauge,
    /// Calls refused at once because `--max-in-flight` calls were running.
    pub rpc_shed: IntCounterVec,
    /// Texts per model forward pass (after merging waiting requests).
    pub embed_batch_texts: Histogram,
    /// Time of one model forward pass.
    pub embed_batch_duration: Histogram,
    /// Embedding requests waiting for the model.
    pub embed_queue_depth: IntGauge,
    /// Embedding requests refused because the queue was full.
    pub embed_overloaded: IntCounter,
    /// Embedding requests skipped because their caller had gone.
    pub embed_abandoned: IntCounter,
    /// Query embeddings served from the cache (`hit`) or computed (`miss`).
    pub query_cache: IntCounterVec,
    /// Ingested events by outcome (`accepted`/`rejected`) and reason.
    pub ingest_events: IntCounterVec,
    /// Consent denials: events refused at ingest for lack of a grant
    /// (`ingest`), context calls for a purpose the person permitted nothing
    /// for (`get_context`).
    pub consent_denials: IntCounterVec,
    /// Store hits the consent post-check removed: must stay 0 (each one is
    /// also an error log line).
    pub consent_post_check_removed: IntCounter,
    /// Snippets by fate: `returned`, `flagged` (kept, neutralised),
    /// `dropped_injection`, `dropped_budget`.
    pub snippets: IntCounterVec,
    /// Store operation latency by operation and outcome (`ok`/`error`).
    pub store_duration: HistogramVec,
    /// Resident set size of the process, refreshed at every scrape.
    pub process_resident_bytes: IntGauge,
    /// User + system CPU time of the process, from `/proc/self/stat`.
    pub process_cpu_seconds: prometheus::Gauge,
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            let metric = HistogramVec::new(opts, labels).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        Self {
            rpc_requests: counter_vec(
                "context_engine_rpc_requests_total",
                "gRPC calls answered, by RPC and status code",
                &["rpc", "code"],
            ),
            rpc_duration: histogram_vec(
                "context_engine_rpc_duration_seconds",
                "gRPC call latency until the response, by RPC and status code",
                &["rpc", "code"],
            ),
            rpc_in_flight: gauge("context_engine_rpc_in_flight", "gRPC calls being handled (health checks excluded)"),
            rpc_shed: counter_vec(
                "context_engine_rpc_shed_total",
                "gRPC calls refused with RESOURCE_EXHAUSTED because --max-in-flight calls were running",
                &["rpc"],
            ),
            embed_batch_texts: histogram(
                "context_engine_embed_batch_texts",
                "texts per model forward pass",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            embed_batch_duration: histogram(
                "context_engine_embed_batch_duration_seconds",
                "time of one model forward pass",
                LATENCY_BUCKETS.to_vec(),
            ),
            embed_queue_depth: gauge("context_engine_embed_queue_depth", "embedding requests waiting for the model"),
            embed_overloaded: counter(
                "context_engine_embed_overloaded_total",
                "embedding requests refused because the queue was full",
            ),
            embed_abandoned: counter(
                "context_engine_embed_abandoned_total",
                "embedding requests skipped because the caller had gone (deadline, disconnect)",
            ),
            query_cache: counter_vec(
                "context_engine_query_cache_total",
                "query embeddings served from the cache (hit) or computed (miss)",
                &["result"],
            ),
            ingest_events: counter_vec(
                "context_engine_ingest_events_total",
                "ingested events by outcome and reason",
                &["outcome", "reason"],
            ),
            consent_denials: counter_vec(
                "context_engine_consent_denials_total",
                "events refused for lack of consent (stage=ingest), calls for a purpose nothing is permitted \
                 for (stage=get_context, rank_items, get_proactive_context)",
                &["stage"],
            ),
            consent_post_check_removed: counter(
                "context_engine_consent_post_check_removed_total",
                "store hits removed by the consent post-check (must stay 0)",
            ),
            snippets: counter_vec(
                "context_engine_snippets_total",
                "snippets by fate: returned, flagged (kept neutralised), dropped_injection, dropped_budget",
                &["fate"],
            ),
            store_duration: histogram_vec(
                "context_engine_store_operation_duration_seconds",
                "vector store operation latency by operation and outcome",
                &["operation", "outcome"],
            ),
            process_resident_bytes: gauge(
                "context_engine_process_resident_memory_bytes",
                "resident set size of the engine process",
            ),
            process_cpu_seconds: {
                let g = prometheus::Gauge::new(
                    "context_engine_process_cpu_seconds",
                    "user + system CPU time of the engine process (divide its change by the calls served for \
                     CPU per call)",
                )
                .expect("valid metric");
                registry.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            registry,
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.process_resident_bytes.set(rss as i64);
        }
        if let Some(cpu) = cpu_seconds() {
            self.process_cpu_seconds.set(cpu);
        }
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// User + system CPU seconds from `/proc/self/stat` (Linux, 100 ticks per
/// second as on every Linux we run on); `None` elsewhere.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so split after
    // its closing parenthesis): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
