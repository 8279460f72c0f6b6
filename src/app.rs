//! Composition root: the only place that names concrete backends (candle,
//! Qdrant Edge). Everything it returns is seen by the rest of the program
//! through traits and the [`Engine`].

use std::path::Path;
use std::sync::Arc;

use crate::embed::candle::{CandleEmbedder, CandleOptions, DeviceChoice};
use crate::embed::{BatchConfig, EmbedError, EmbedHandle};
use crate::engine::{Engine, EngineLimits};
use crate::model_files::{self, ModelFilesError};
use crate::store::{EdgeOptions, EdgeStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    ModelFiles(#[from] ModelFilesError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running engine and the concrete store under it (kept for shutdown and
/// for tests that inspect the store directly).
pub struct App {
    pub engine: Arc<Engine>,
    pub store: EdgeStore,
}

/// Verifies the model files against the manifest, then loads the model.
pub fn load_embedder(model_dir: &Path, device: DeviceChoice) -> Result<CandleEmbedder, AppError> {
    model_files::verify(model_dir)?;
    let mut options = CandleOptions::new(model_dir);
    options.device = device;
    Ok(CandleEmbedder::load(&options)?)
}

/// Builds an engine on candle + Qdrant Edge. Blocking (model load, store open).
pub fn build(model_dir: &Path, device: DeviceChoice, data_dir: &Path, batch: BatchConfig) -> Result<App, AppError> {
    let embedder = load_embedder(model_dir, device)?;
    let model_id = crate::embed::Embedder::model_id(&embedder).to_string();
    let dimension = crate::embed::Embedder::dimension(&embedder);
    let store = EdgeStore::open(&EdgeOptions { data_dir: data_dir.to_path_buf(), dimension, model_id })?;
    let handle = EmbedHandle::spawn(Box::new(embedder), batch)?;
    let engine = Arc::new(Engine::new(handle, Arc::new(store.clone()), EngineLimits::default()));
    Ok(App { engine, store })
}
