//! Command-line and environment configuration. Raw arguments are parsed once
//! by clap (every flag also reads an environment variable), then validated
//! into the typed configs the rest of the program uses.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::embed::candle::DeviceChoice;
use crate::embed::BatchConfig;

#[derive(Debug, Parser)]
#[command(
    name = "context-engine",
    version,
    about = "Consent-scoped context engine (gRPC)"
)]
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
    /// Embed stdin (one text per line) in process; print one JSON array per line.
    Embed(EmbedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Folder with config.json, tokenizer.json and model.safetensors.
    #[arg(
        long,
        env = "CONTEXT_ENGINE_MODEL_DIR",
        default_value = "models/all-MiniLM-L6-v2"
    )]
    pub model_dir: PathBuf,
    /// Where the model runs.
    #[arg(
        long,
        env = "CONTEXT_ENGINE_DEVICE",
        value_enum,
        default_value = "auto"
    )]
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
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server address.
    #[arg(
        long,
        env = "CONTEXT_ENGINE_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
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
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// The chat turn.
    pub text: String,
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
            return Err(ConfigError {
                flag: "embed-queue",
                message: "expected 1..=65536".into(),
            });
        }
        if a.embed_batch == 0 || a.embed_batch > 4096 {
            return Err(ConfigError {
                flag: "embed-batch",
                message: "expected 1..=4096".into(),
            });
        }
        Ok(Self {
            listen: a.listen,
            data_dir: a.data_dir,
            model_dir: a.model.model_dir,
            device: a.model.device,
            batch: BatchConfig {
                queue_capacity: a.embed_queue,
                max_batch_texts: a.embed_batch,
            },
        })
    }
}
