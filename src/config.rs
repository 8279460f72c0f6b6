//! Command-line and environment configuration. Raw arguments are parsed once
//! by clap (every flag also reads an environment variable), then validated
//! into the typed configs the rest of the program uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::ApiKeys;
use crate::domain::{ConsentState, Purpose};
use crate::embed::candle::DeviceChoice;
use crate::embed::BatchConfig;

#[derive(Debug, Parser)]
#[command(name = "context-engine", version, about = "Consent-scoped context engine (gRPC)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server on the embedded Qdrant Edge store.
    Serve(ServeArgs),
    /// Send events from a JSON-lines file to a running server.
    Ingest(IngestArgs),
    /// Ask a running server for context.
    Query(QueryArgs),
    /// Grant or revoke consent on a running server (one, or a JSON-lines file).
    Consent(ConsentArgs),
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
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CONTEXT_ENGINE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Where the embedded store keeps its files.
    #[arg(long, env = "CONTEXT_ENGINE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Embedding requests that may wait for the model before new ones are
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "CONTEXT_ENGINE_EMBED_QUEUE", default_value_t = 256)]
    pub embed_queue: usize,
    /// Texts of concurrent requests merged into one model call.
    #[arg(long, env = "CONTEXT_ENGINE_EMBED_BATCH", default_value_t = 64)]
    pub embed_batch: usize,
    /// File of API keys, one `principal=key` per line (principals:
    /// `business:<source_id>`, `orchestrator`, `privacy`).
    #[arg(long, env = "CONTEXT_ENGINE_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// API keys inline, comma-separated `principal=key` pairs.
    #[arg(long, env = "CONTEXT_ENGINE_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
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
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_LIMIT", default_value_t = 0)]
    pub limit: u32,
    /// What the context is for.
    #[arg(long, env = "CONTEXT_ENGINE_PURPOSE", value_enum, default_value = "chat-assistant")]
    pub purpose: PurposeArg,
    /// Send the same request this many more times on one connection and
    /// print latency percentiles (a quick check, not a benchmark).
    #[arg(long, env = "CONTEXT_ENGINE_QUERY_REPEAT", default_value_t = 0)]
    pub repeat: usize,
    /// The chat turn.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PurposeArg {
    ChatAssistant,
    FeedRanking,
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Self {
        match p {
            PurposeArg::ChatAssistant => Purpose::ChatAssistant,
            PurposeArg::FeedRanking => Purpose::FeedRanking,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    Granted,
    Revoked,
}

impl From<StateArg> for ConsentState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Granted => ConsentState::Granted,
            StateArg::Revoked => ConsentState::Revoked,
        }
    }
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
    pub purpose: PurposeArg,
    #[arg(long, env = "CONTEXT_ENGINE_CONSENT_STATE", value_enum, default_value = "granted")]
    pub state: StateArg,
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
    pub data_dir: PathBuf,
    pub model_dir: PathBuf,
    pub device: DeviceChoice,
    pub batch: BatchConfig,
    /// Empty: local development mode (loopback only).
    pub keys: ApiKeys,
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
        if a.embed_batch == 0 || a.embed_batch > 4096 {
            return Err(ConfigError { flag: "embed-batch", message: "expected 1..=4096".into() });
        }
        let mut keys = ApiKeys::default();
        if let Some(path) = &a.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                flag: "api-keys-file",
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            keys.add_from_text(&text).map_err(|message| ConfigError { flag: "api-keys-file", message })?;
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
        Ok(Self {
            keys,
            listen: a.listen,
            data_dir: a.data_dir,
            model_dir: a.model.model_dir,
            device: a.model.device,
            batch: BatchConfig { queue_capacity: a.embed_queue, max_batch_texts: a.embed_batch },
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
}
