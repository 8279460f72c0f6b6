//! Command-line and environment configuration. Raw arguments are parsed once
//! by clap (every flag also reads an environment variable), then validated
//! into the typed configs the rest of the program uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::ApiKeys;
use crate::app::AppConfig;
use crate::domain::{ConsentState, Purpose, RetrievalMode};
use crate::embed::{BatchConfig, CpuKernels, CpuPrecision, DeviceChoice, ModelOptions};
use crate::rank::{Fusion, FusionKind};
use crate::render::InjectionPolicy;

#[derive(Debug, Parser)]
#[command(name = "context-engine", version, about = "Consent-scoped context engine (gRPC)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server (Qdrant Edge in process by default, or a Qdrant server).
    Serve(ServeArgs),
    /// Copy a store (events, consent ledger, access log) to another backend,
    /// optionally re-embedding every event with the current model.
    Migrate(MigrateArgs),
    /// Send events from a JSON-lines file to a running server.
    Ingest(IngestArgs),
    /// Ask a running server for context.
    Query(QueryArgs),
    /// Grant or revoke consent on a running server (one, or a JSON-lines file).
    Consent(ConsentArgs),
    /// Erase a person on a running server; with --wait, until the physical
    /// purge is done.
    Erase(EraseArgs),
    /// Embed stdin (one text per line) in process; print one JSON array per line.
    Embed(EmbedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Folder with config.json, tokenizer.json and model.safetensors.
    #[arg(long, env = "CONTEXT_ENGINE_MODEL_DIR", default_value = "models/all-MiniLM-L6-v2")]
    pub model_dir: PathBuf,
    /// Where the model runs.
    #[arg(long, env = "CONTEXT_ENGINE_DEVICE", value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU forward pass: our padding-free kernels with BLAS if a library can
    /// be opened (auto), BLAS required, portable kernels, or candle's.
    #[arg(long, env = "CONTEXT_ENGINE_CPU_KERNELS", value_enum, default_value = "auto")]
    pub cpu_kernels: CpuKernels,
    /// Arithmetic of the CPU kernels' dense layers: auto (bf16 where the CPU
    /// multiplies bf16 in hardware, else f32), f32, bf16x3 (Intel AMX, f32
    /// parity), or bf16 (AMX or AVX-512 BF16; parity 0.99997).
    #[arg(long, env = "CONTEXT_ENGINE_CPU_PRECISION", value_enum, default_value = "auto")]
    pub cpu_precision: CpuPrecision,
    /// Threads of the CPU forward pass (0 = one per core).
    #[arg(long, env = "CONTEXT_ENGINE_EMBED_THREADS", default_value_t = 0)]
    pub embed_threads: usize,
    /// BLAS shared library to open (default: libopenblas.so.0, then MKL, BLIS).
    #[arg(long, env = "CONTEXT_ENGINE_BLAS_LIBRARY")]
    pub blas_library: Option<String>,
    /// Kernel tuning, for measurement: products with at most this many rows
    /// use the packed kernels instead of BLAS.
    #[arg(long, env = "BERT_CPU_PACKED_MAX_ROWS", hide = true, default_value_t = bert_cpu_defaults().tuning.packed_max_rows)]
    pub cpu_packed_max_rows: usize,
    /// Kernel tuning, for measurement: batches of at most this many tokens
    /// run on one thread.
    #[arg(long, env = "BERT_CPU_SERIAL_MAX_TOKENS", hide = true, default_value_t = bert_cpu_defaults().tuning.serial_max_tokens)]
    pub cpu_serial_max_tokens: usize,
}

fn bert_cpu_defaults() -> ModelOptions {
    ModelOptions::new("")
}

impl ModelArgs {
    /// Loading options for these flags.
    pub fn options(&self) -> ModelOptions {
        let mut options = ModelOptions::new(&self.model_dir);
        options.device = self.device;
        options.cpu_kernels = self.cpu_kernels;
        options.cpu_precision = self.cpu_precision;
        options.threads = self.embed_threads;
        options.blas_library = self.blas_library.clone();
        options.tuning.packed_max_rows = self.cpu_packed_max_rows;
        options.tuning.serial_max_tokens = self.cpu_serial_max_tokens;
        options
    }
}

/// Backend selection, shared by `serve` and `migrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// Qdrant Edge in process, under --data-dir.
    Edge,
    /// A Qdrant server or cluster at --qdrant-url.
    Qdrant,
}

#[derive(Debug, Clone, Args)]
pub struct QdrantArgs {
    /// gRPC URL of the Qdrant server (port 6334), for `--store qdrant`.
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_URL")]
    pub qdrant_url: Option<String>,
    /// API key of the Qdrant server.
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Collections are <prefix>_activity, <prefix>_consent, <prefix>_access.
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_COLLECTION_PREFIX", default_value = "context_engine")]
    pub qdrant_collection_prefix: String,
    /// Shards of newly created collections (default: the server's).
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_SHARDS")]
    pub qdrant_shards: Option<u32>,
    /// Replication factor of newly created collections (default: the server's).
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_REPLICATION_FACTOR")]
    pub qdrant_replication_factor: Option<u32>,
    /// Replication factor of a newly created consent ledger (default:
    /// --qdrant-replication-factor); every ledger write must reach all of them.
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_CONSENT_REPLICATION_FACTOR")]
    pub qdrant_consent_replication_factor: Option<u32>,
    /// Timeout of one Qdrant request, in seconds (transient failures are
    /// retried 3 times with backoff).
    #[arg(long, env = "CONTEXT_ENGINE_QDRANT_TIMEOUT", default_value_t = 10)]
    pub qdrant_timeout: u64,
}

impl QdrantArgs {
    /// The server config for a URL (given, or `--qdrant-url`).
    pub fn config(&self, url: Option<&str>) -> Result<crate::store::QdrantOptions, ConfigError> {
        let url = url.or(self.qdrant_url.as_deref()).ok_or_else(|| ConfigError {
            flag: "qdrant-url",
            message: "required with --store qdrant (e.g. http://localhost:6334)".into(),
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError {
                flag: "qdrant-url",
                message: format!("expected http(s)://host:port, got {url:?}"),
            });
        }
        if self.qdrant_timeout == 0 {
            return Err(ConfigError { flag: "qdrant-timeout", message: "expected at least 1 second".into() });
        }
        let prefix = &self.qdrant_collection_prefix;
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(ConfigError {
                flag: "qdrant-collection-prefix",
                message: format!("expected letters, digits, _ or -, got {prefix:?}"),
            });
        }
        for (flag, value) in [
            ("qdrant-shards", self.qdrant_shards),
            ("qdrant-replication-factor", self.qdrant_replication_factor),
            ("qdrant-consent-replication-factor", self.qdrant_consent_replication_factor),
        ] {
            if value == Some(0) {
                return Err(ConfigError { flag, message: "expected at least 1".into() });
            }
        }
        let mut config = crate::store::QdrantOptions::new(url);
        config.api_key = self.qdrant_api_key.clone();
        config.collection_prefix = prefix.clone();
        config.shard_number = self.qdrant_shards;
        config.replication_factor = self.qdrant_replication_factor;
        config.consent_replication_factor = self.qdrant_consent_replication_factor;
        config.timeout = std::time::Duration::from_secs(self.qdrant_timeout);
        Ok(config)
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Source: `edge:PATH` or `qdrant:URL`.
    #[arg(long)]
    pub from: String,
    /// Destination: `edge:PATH` or `qdrant:URL`.
    #[arg(long)]
    pub to: String,
    /// Re-embed every event with the model of --model-dir (from the full
    /// event kept in each payload) instead of copying its vector; the
    /// destination is made for that model.
    #[arg(long)]
    pub reembed: bool,
    /// Points per page read and written.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Event ids compared between source and destination at the end.
    #[arg(long, default_value_t = 200)]
    pub verify_sample: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub qdrant: QdrantArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CONTEXT_ENGINE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Where the embedded store keeps its files.
    #[arg(long, env = "CONTEXT_ENGINE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Where events, the consent ledger and the access log live.
    #[arg(long, env = "CONTEXT_ENGINE_STORE", value_enum, default_value = "edge")]
    pub store: StoreKind,
    #[command(flatten)]
    pub qdrant: QdrantArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Embedding requests that may wait for the model before new ones are
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "CONTEXT_ENGINE_EMBED_QUEUE", default_value_t = 256)]
    pub embed_queue: usize,
    /// Texts of concurrent requests merged into one model call.
    #[arg(long, env = "CONTEXT_ENGINE_EMBED_BATCH", default_value_t = 64)]
    pub embed_batch: usize,
    /// Calls handled at once (all connections); more are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "CONTEXT_ENGINE_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Threads of tokio's blocking pool (store reads and writes, ranking):
    /// default 4 × the cores. More only time-slice the same cores.
    #[arg(long, env = "CONTEXT_ENGINE_BLOCKING_THREADS")]
    pub blocking_threads: Option<usize>,
    /// Seconds calls in flight get to finish after SIGTERM before the store
    /// is flushed and the process exits anyway.
    #[arg(long, env = "CONTEXT_ENGINE_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`, plain
    /// HTTP); not served when unset. Keep it on a private interface.
    #[arg(long, env = "CONTEXT_ENGINE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Query vectors kept for a person repeating a query (0 = no cache).
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_CACHE", default_value_t = 1024)]
    pub query_cache: usize,
    /// File of API keys, one `principal=key` per line (principals:
    /// `business:<source_id>`, `orchestrator`, `privacy`).
    #[arg(long, env = "CONTEXT_ENGINE_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// API keys inline, comma-separated `principal=key` pairs.
    #[arg(long, env = "CONTEXT_ENGINE_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    #[command(flatten)]
    pub ranking: RankingArgs,
}

/// Server-wide ranking defaults (a request may override most of them).
#[derive(Debug, Clone, Args)]
pub struct RankingArgs {
    /// tokenizer.json of the target LLM, for counting the context budget
    /// (default: the embedding model's tokenizer).
    #[arg(long, env = "CONTEXT_ENGINE_BUDGET_TOKENIZER")]
    pub budget_tokenizer: Option<PathBuf>,
    /// The learned injection head scored at ingest: `shipped` (the head in
    /// ce-screen/data), `none` (rules only), or the path of a head file
    /// (`ce-injection-head/2`, written by `context-eval injection-train`).
    #[arg(long, env = "CONTEXT_ENGINE_INJECTION_HEAD", default_value = "shipped")]
    pub injection_head: String,
    /// Token budget of the rendered context when a request says 0.
    #[arg(long, env = "CONTEXT_ENGINE_DEFAULT_MAX_TOKENS", default_value_t = 512)]
    pub default_max_tokens: usize,
    /// Candidate lists searched.
    #[arg(long, env = "CONTEXT_ENGINE_RETRIEVAL_MODE", value_enum, default_value = "hybrid")]
    pub retrieval_mode: RetrievalMode,
    /// How hybrid mode fuses the dense and sparse lists.
    #[arg(long, env = "CONTEXT_ENGINE_FUSION", value_enum, default_value = "convex")]
    pub fusion: FusionKind,
    /// Weight of the dense score under `--fusion convex`, in [0, 1].
    #[arg(long, env = "CONTEXT_ENGINE_DENSE_WEIGHT", default_value_t = 0.7)]
    pub dense_weight: f32,
    /// Decay scores with event age.
    #[arg(long, env = "CONTEXT_ENGINE_RECENCY", default_value_t = true, action = clap::ArgAction::Set)]
    pub recency: bool,
    /// Share of relevance an infinitely old event keeps, in [0, 1].
    #[arg(long, env = "CONTEXT_ENGINE_RECENCY_FLOOR", default_value_t = 0.35)]
    pub recency_floor: f32,
    /// MMR diversity in [0, 1] (0: off).
    #[arg(long, env = "CONTEXT_ENGINE_DIVERSITY", default_value_t = 0.2)]
    pub diversity: f32,
    /// Snippets whose untrusted text reads like instructions are dropped, or
    /// kept neutralised and flagged.
    #[arg(long, env = "CONTEXT_ENGINE_INJECTION_POLICY", value_enum, default_value = "drop")]
    pub injection_policy: InjectionPolicy,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server address.
    #[arg(long, env = "CONTEXT_ENGINE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// API key sent as `authorization: Bearer <key>` (not needed against a
    /// server in local development mode).
    #[arg(long, env = "CONTEXT_ENGINE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// JSON-lines file of events (one ActivityEvent object per line).
    #[arg(long, env = "CONTEXT_ENGINE_INGEST_FILE")]
    pub file: PathBuf,
    /// Events per request.
    #[arg(long, env = "CONTEXT_ENGINE_INGEST_BATCH", default_value_t = 500)]
    pub batch: usize,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Whose context.
    #[arg(long, env = "CONTEXT_ENGINE_USER")]
    pub user: String,
    /// Number of snippets (0: server default).
    #[arg(long, alias = "limit", env = "CONTEXT_ENGINE_QUERY_MAX_SNIPPETS", default_value_t = 0)]
    pub max_snippets: u32,
    /// Token budget of the rendered context (0: server default).
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_MAX_TOKENS", default_value_t = 0)]
    pub max_tokens: u32,
    /// Print the rendered context block after the snippets.
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_SHOW_RENDERED")]
    pub show_rendered: bool,
    /// What the context is for.
    #[arg(long, env = "CONTEXT_ENGINE_PURPOSE", value_enum, default_value = "chat-assistant")]
    pub purpose: Purpose,
    /// Send the same request this many more times on one connection and
    /// print latency percentiles (a quick check, not a benchmark).
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_REPEAT", default_value_t = 0)]
    pub repeat: usize,
    /// The chat turn.
    pub text: String,
}

#[derive(Debug, Clone, Args)]
pub struct ConsentArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// JSON-lines file of `{"user_id", "source_id", "purpose", "state"}`
    /// (purpose `chat_assistant` | `feed_ranking`, state `granted` | `revoked`).
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_FILE", conflicts_with_all = ["user", "source"])]
    pub file: Option<PathBuf>,
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_USER", requires = "source")]
    pub user: Option<String>,
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_SOURCE", requires = "user")]
    pub source: Option<String>,
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_PURPOSE", value_enum, default_value = "chat-assistant")]
    pub purpose: Purpose,
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_STATE", value_enum, default_value = "granted")]
    pub state: ConsentState,
}

#[derive(Debug, Clone, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Whose data.
    #[arg(long)]
    pub user: String,
    /// Poll GetErasureStatus until the purge is done and print how long it took.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Validated server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Empty: local development mode (loopback only).
    pub keys: ApiKeys,
    pub app: AppConfig,
    pub serve: crate::api::ServeOptions,
    pub shutdown_grace: std::time::Duration,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Threads of tokio's blocking pool (`--blocking-threads`).
    pub blocking_threads: usize,
}

/// `--blocking-threads` when not given: 4 × the cores. Under 32 clients on
/// 2 cores tokio's default (512) held ~38 threads time-slicing each other's
/// store reads; capped at 8, GetContext served 1.10× the calls/s (median of
/// nine interleaved pairs, ARCHITECTURE.md, Bounded queues).
pub fn default_blocking_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(2, usize::from)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = ConfigError;

    fn try_from(a: ServeArgs) -> Result<Self, ConfigError> {
        if a.embed_queue == 0 || a.embed_queue > 65_536 {
            return Err(ConfigError { flag: "embed-queue", message: "expected 1..=65536".into() });
        }
        if a.max_in_flight == 0 || a.max_in_flight > 1_000_000 {
            return Err(ConfigError { flag: "max-in-flight", message: "expected 1..=1000000".into() });
        }
        let blocking_threads = a.blocking_threads.unwrap_or_else(default_blocking_threads);
        if !(4..=4096).contains(&blocking_threads) {
            // Fewer than 4 could leave a purge, a merge and a journal sync
            // holding every thread while reads wait.
            return Err(ConfigError { flag: "blocking-threads", message: "expected 4..=4096".into() });
        }
        if a.embed_batch == 0 || a.embed_batch > 4096 {
            return Err(ConfigError { flag: "embed-batch", message: "expected 1..=4096".into() });
        }
        let mut keys = ApiKeys::default();
        if let Some(path) = &a.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                flag: "api-keys-file",
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            let before = keys.len();
            keys.add_from_text(&text).map_err(|message| ConfigError { flag: "api-keys-file", message })?;
            if keys.len() == before {
                // An empty or all-comment file would otherwise start the
                // keyless local mode: refuse instead of failing open.
                return Err(ConfigError {
                    flag: "api-keys-file",
                    message: format!("{} holds no keys (expected principal=key lines)", path.display()),
                });
            }
        }
        if let Some(text) = &a.api_keys {
            keys.add_from_text(text).map_err(|message| ConfigError { flag: "api-keys", message })?;
        }
        if keys.is_empty() && !a.listen.ip().is_loopback() {
            return Err(ConfigError {
                flag: "listen",
                message: format!(
                    "{} is not a loopback address and no API keys are configured; set --api-keys-file or \
                     --api-keys (local development mode without keys is loopback-only)",
                    a.listen
                ),
            });
        }
        let r = &a.ranking;
        let unit = |flag: &'static str, v: f32| {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError { flag, message: format!("expected a number in [0, 1], got {v}") })
            }
        };
        let mut app = AppConfig::new(&a.model.model_dir, a.data_dir);
        app.store = match a.store {
            StoreKind::Edge => crate::app::StoreConfig::Edge,
            StoreKind::Qdrant => crate::app::StoreConfig::Qdrant(a.qdrant.config(None)?),
        };
        app.model = a.model.options();
        app.batch = BatchConfig { queue_capacity: a.embed_queue, max_batch_texts: a.embed_batch };
        app.engine.query_cache = a.query_cache;
        app.budget_tokenizer = r.budget_tokenizer.clone();
        app.injection_head = match r.injection_head.as_str() {
            "shipped" => crate::app::HeadChoice::Shipped,
            "none" => crate::app::HeadChoice::None,
            "" => {
                return Err(ConfigError { flag: "injection-head", message: "expected shipped, none or a path".into() })
            }
            path => crate::app::HeadChoice::File(PathBuf::from(path)),
        };
        let limits = &mut app.engine.limits;
        if r.default_max_tokens == 0 || r.default_max_tokens > limits.max_tokens {
            return Err(ConfigError {
                flag: "default-max-tokens",
                message: format!("expected 1..={}", limits.max_tokens),
            });
        }
        limits.default_max_tokens = r.default_max_tokens;
        let ranking = &mut app.engine.ranking;
        ranking.mode = r.retrieval_mode;
        ranking.fusion = match r.fusion {
            FusionKind::Rrf => Fusion::Rrf { k: 60.0 },
            FusionKind::Convex => Fusion::Convex { dense_weight: unit("dense-weight", r.dense_weight)? },
        };
        ranking.recency = r.recency;
        ranking.recency_floor = unit("recency-floor", r.recency_floor)?;
        ranking.diversity = unit("diversity", r.diversity)?;
        ranking.injection_policy = r.injection_policy;
        Ok(Self {
            keys,
            listen: a.listen,
            app,
            serve: crate::api::ServeOptions { max_in_flight: a.max_in_flight },
            shutdown_grace: std::time::Duration::from_secs(a.shutdown_grace),
            metrics_listen: a.metrics_listen,
            blocking_threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: &str, keys: Option<&str>) -> ServeArgs {
        let mut argv = vec!["context-engine", "serve", "--listen", listen];
        if let Some(k) = keys {
            argv.extend(["--api-keys", k]);
        }
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keyless_mode_is_loopback_only() {
        assert!(ServeConfig::try_from(args("127.0.0.1:0", None)).unwrap().keys.is_empty());
        assert!(ServeConfig::try_from(args("[::1]:0", None)).is_ok());
        let err = ServeConfig::try_from(args("0.0.0.0:50051", None)).unwrap_err();
        assert_eq!(err.flag, "listen");
        let ok = ServeConfig::try_from(args("0.0.0.0:50051", Some("orchestrator=0123456789abcdef0123"))).unwrap();
        assert_eq!(ok.keys.len(), 1);
        assert!(!format!("{ok:?}").contains("0123456789abcdef"), "keys are redacted in Debug");
    }

    #[test]
    fn a_keys_file_without_keys_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("empty", ""), ("comments", "# keys go here\n\n   \n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let err = parse(&["--api-keys-file", path.to_str().unwrap()]).unwrap_err();
            assert_eq!(err.flag, "api-keys-file", "{name}");
            assert!(err.message.contains("no keys"), "{name}: {}", err.message);
        }
        let path = dir.path().join("one");
        std::fs::write(&path, "# one key\norchestrator=0123456789abcdef0123\n").unwrap();
        assert_eq!(parse(&["--api-keys-file", path.to_str().unwrap()]).unwrap().keys.len(), 1);
    }

    fn parse(argv: &[&str]) -> Result<ServeConfig, ConfigError> {
        let argv = ["context-engine", "serve"].iter().chain(argv).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => ServeConfig::try_from(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blocking_threads_default_to_four_per_core_and_are_checked() {
        assert_eq!(parse(&[]).unwrap().blocking_threads, default_blocking_threads());
        assert!(default_blocking_threads() >= 4);
        assert_eq!(parse(&["--blocking-threads", "16"]).unwrap().blocking_threads, 16);
        for bad in ["0", "3", "4097"] {
            assert_eq!(parse(&["--blocking-threads", bad]).unwrap_err().flag, "blocking-threads", "{bad}");
        }
    }

    #[test]
    fn qdrant_store_flags_are_checked_and_the_key_never_shown() {
        assert!(matches!(parse(&[]).unwrap().app.store, crate::app::StoreConfig::Edge));
        assert_eq!(parse(&["--store", "qdrant"]).unwrap_err().flag, "qdrant-url");
        let bad = parse(&["--store", "qdrant", "--qdrant-url", "qdrant:6334"]).unwrap_err();
        assert_eq!(bad.flag, "qdrant-url");
        let bad = parse(&["--store", "qdrant", "--qdrant-url", "http://q:6334", "--qdrant-collection-prefix", "a b"]);
        assert_eq!(bad.unwrap_err().flag, "qdrant-collection-prefix");
        let zero =
            parse(&["--store", "qdrant", "--qdrant-url", "http://q:6334", "--qdrant-consent-replication-factor", "0"]);
        assert_eq!(zero.unwrap_err().flag, "qdrant-consent-replication-factor");
        let ok = parse(&[
            "--store",
            "qdrant",
            "--qdrant-url",
            "http://q:6334",
            "--qdrant-api-key",
            "secret-qdrant-key-42",
            "--qdrant-replication-factor",
            "2",
        ])
        .unwrap();
        match &ok.app.store {
            crate::app::StoreConfig::Qdrant(q) => {
                assert_eq!((q.url.as_str(), q.replication_factor), ("http://q:6334", Some(2)));
                assert_eq!(q.api_key.as_deref(), Some("secret-qdrant-key-42"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{ok:?}").contains("secret-qdrant-key-42"), "the Qdrant key is redacted in Debug");
    }
}
