//! # ce-embed: text → vector
//!
//! Owns the [`Embedder`] trait (a small synchronous backend, in the style of
//! text-embeddings-inference's `backends/core`), the async [`EmbedHandle`]
//! that runs a backend on its own thread behind a bounded queue with dynamic
//! batching, the model's configuration vocabulary ([`ModelOptions`],
//! [`DeviceChoice`], [`CpuKernels`], [`CpuPrecision`]) and the BERT backend
//! ([`BertEmbedder`]): tokenizer + forward pass + mean pooling, with the
//! forward pass on our `bert-cpu` kernels (CPU default) or on candle tensors
//! (`candle_bert`: CUDA, or `--cpu-kernels candle`).
//!
//! Nothing outside this crate sees a candle type: callers hand in strings and
//! get back `Vec<f32>`s, L2-normalised. Depends on nothing else of the
//! workspace but `bert-cpu` and `ce-metrics`.

pub mod candle_bert;
mod handle;
mod model;
mod options;

/// The environment variable that caps our CPU kernels' instruction sets
/// (`avx2`, `baseline`; see `bert_cpu::cpu`).
pub use bert_cpu::cpu::ENV as CPU_ISA_ENV;
pub use handle::{BatchConfig, EmbedHandle};
pub use model::BertEmbedder;
pub use options::{CpuKernels, CpuPrecision, DeviceChoice, ModelOptions};

/// A synchronous embedding backend. It runs on the worker thread that
/// [`EmbedHandle`] owns, never on the async runtime.
pub trait Embedder: Send + 'static {
    /// A name for the model and its revision, e.g. `all-MiniLM-L6-v2`.
    fn model_id(&self) -> &str;
    /// Length of every vector this backend returns.
    fn dimension(&self) -> usize;
    /// One L2-normalised vector per text, in input order.
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// The queue in front of the model is full; the caller should back off.
    #[error("embedding queue is full ({capacity} requests waiting)")]
    Overloaded { capacity: usize },
    /// The worker thread is gone (shutdown, or it panicked).
    #[error("embedding worker has stopped")]
    Stopped,
    /// The model failed on this input.
    #[error("embedding model failed: {message}")]
    Model { message: String },
    /// Loading the model failed.
    #[error("cannot load model from {path}: {message}")]
    Load { path: String, message: String },
    /// `--device cuda` was asked for but no usable GPU (or no CUDA build).
    #[error("device {requested} is not available: {message}")]
    DeviceUnavailable { requested: String, message: String },
}

/// Cosine similarity of two vectors (not assumed normalised).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}
