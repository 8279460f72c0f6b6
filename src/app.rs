//! Composition root: the only place that names concrete backends (the BERT
//! embedder, Qdrant Edge or a Qdrant server). Everything it returns is seen by the rest of the program
//! through traits and the [`Engine`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::embed::{BatchConfig, BertEmbedder, DeviceChoice, EmbedError, EmbedHandle, ModelOptions};
use crate::engine::{Engine, EngineConfig};
use crate::model_files::{self, ModelFilesError};
use crate::store::{
    EdgeOptions, EdgeStore, Instrumented, QdrantOptions, QdrantStore, StoreError, StoreManifest, VectorStore,
    DEFAULT_BM25_AVG_LEN,
};
use crate::tokens::{HfTokenCounter, TokenizerError};
use ce_screen::InjectionHead;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    ModelFiles(#[from] ModelFilesError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("injection head: {0}")]
    InjectionHead(String),
}

/// Which learned injection head the engine scores events with.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum HeadChoice {
    /// The head shipped in `ce-screen` (`crates/screen/data/`).
    #[default]
    Shipped,
    /// Rules only.
    None,
    /// A head file (`ce-injection-head/2`, or `/1`: layers only).
    File(PathBuf),
}

impl HeadChoice {
    /// Loads the head; `dimension` is the embedding model's.
    pub fn load(&self, dimension: usize) -> Result<Option<Arc<InjectionHead>>, AppError> {
        let head = match self {
            Self::None => return Ok(None),
            Self::Shipped => ce_screen::default_head().clone(),
            Self::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AppError::InjectionHead(format!("cannot read {}: {e}", path.display())))?;
                InjectionHead::from_json(&path.display().to_string(), &text).map_err(AppError::InjectionHead)?
            }
        };
        if head.dimension() != dimension {
            return Err(AppError::InjectionHead(format!(
                "{} reads {}-value embeddings; the model gives {dimension}",
                head.name(),
                head.dimension()
            )));
        }
        Ok(Some(Arc::new(head)))
    }
}

/// Which backend holds events, the consent ledger and the access log.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// Qdrant Edge, in process, under `data_dir`.
    #[default]
    Edge,
    /// A Qdrant server or cluster.
    Qdrant(QdrantOptions),
}

/// Opens (or creates) the configured store for `manifest`. Blocking.
pub fn open_store(
    store: &StoreConfig,
    data_dir: &Path,
    manifest: &StoreManifest,
) -> Result<Arc<dyn VectorStore>, StoreError> {
    match store {
        StoreConfig::Edge => Ok(Arc::new(EdgeStore::open(&EdgeOptions {
            data_dir: data_dir.to_path_buf(),
            dimension: manifest.dimension,
            model_id: manifest.model_id.clone(),
            bm25_avg_len: manifest.bm25_avg_len,
        })?)),
        StoreConfig::Qdrant(options) => {
            let connect = QdrantStore::connect(options, manifest);
            let store = match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.block_on(connect)?,
                Err(_) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Backend { operation: "connect", message: e.to_string() })?
                    .block_on(connect)?,
            };
            Ok(Arc::new(store))
        }
    }
}

/// Everything `build` needs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The embedding model: folder, device, kernels, precision, threads.
    pub model: ModelOptions,
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub batch: BatchConfig,
    pub engine: EngineConfig,
    /// tokenizer.json that counts the context budget; the embedding model's
    /// when `None`.
    pub budget_tokenizer: Option<PathBuf>,
    /// BM25 `avg_len` of a new store (see `EdgeOptions`).
    pub bm25_avg_len: f64,
    /// The learned injection head (the shipped one by default).
    pub injection_head: HeadChoice,
}

impl AppConfig {
    /// Defaults for everything but the two folders.
    pub fn new(model_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            model: ModelOptions::new(model_dir),
            data_dir: data_dir.into(),
            store: StoreConfig::Edge,
            batch: BatchConfig::default(),
            engine: EngineConfig::default(),
            budget_tokenizer: None,
            bm25_avg_len: DEFAULT_BM25_AVG_LEN,
            injection_head: HeadChoice::Shipped,
        }
    }
}

/// A running engine and the store under it (kept for shutdown and for
/// tests that inspect the store directly).
pub struct App {
    pub engine: Arc<Engine>,
    pub store: Arc<dyn VectorStore>,
}

/// Verifies the model files against the manifest, then loads the model with
/// default kernels and threads.
pub fn load_embedder(model_dir: &Path, device: DeviceChoice) -> Result<BertEmbedder, AppError> {
    let mut options = ModelOptions::new(model_dir);
    options.device = device;
    load_embedder_with(&options)
}

/// Verifies the model files against the manifest, then loads the model.
pub fn load_embedder_with(options: &ModelOptions) -> Result<BertEmbedder, AppError> {
    model_files::verify(&options.model_dir)?;
    let embedder = BertEmbedder::load(options)?;
    tracing::info!(backend = %embedder.backend(), "embedding model loaded");
    Ok(embedder)
}

/// Builds an engine on the BERT embedder and the configured store. Blocking
/// (model load, store open).
pub fn build(config: &AppConfig) -> Result<App, AppError> {
    let embedder = load_embedder_with(&config.model)?;
    let model_id = crate::embed::Embedder::model_id(&embedder).to_string();
    let dimension = crate::embed::Embedder::dimension(&embedder);
    let counter = match &config.budget_tokenizer {
        Some(path) => HfTokenCounter::load(path)?,
        None => HfTokenCounter::load(&config.model.model_dir.join("tokenizer.json"))?,
    };
    let head = config.injection_head.load(dimension)?;
    let manifest = StoreManifest::current(model_id, dimension, config.bm25_avg_len);
    let store = open_store(&config.store, &config.data_dir, &manifest)?;
    // Compiles the injection detector's phrase tables now, not in the first query.
    let _ = crate::render::screen("");
    let handle = EmbedHandle::spawn(Box::new(embedder), config.batch)?;
    let engine = Arc::new(
        Engine::new(handle, Arc::new(Instrumented::new(store.clone())), Arc::new(counter), config.engine)
            .with_injection_head(head),
    );
    Ok(App { engine, store })
}
