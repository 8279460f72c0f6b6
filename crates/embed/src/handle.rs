//! The async face of an [`Embedder`]: one worker thread owns the model; async
//! callers send jobs through a bounded queue and await a oneshot reply.
//!
//! Concurrent requests are merged into one forward pass up to a text budget
//! (text-embeddings-inference's dynamic batching); callers that went away
//! before their turn are skipped; a full queue is refused at once with
//! [`EmbedError::Overloaded`] instead of growing without bound.

use std::sync::Arc;
use std::thread;

use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, Embedder};
use ce_metrics::metrics;

/// Queue and batching limits of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Jobs (requests, each with any number of texts) that may wait for the
    /// model. Bounded so that overload turns into RESOURCE_EXHAUSTED quickly
    /// instead of unbounded memory and latency; 256 jobs is several seconds
    /// of work on 2 cores, more than any caller's deadline.
    pub queue_capacity: usize,
    /// Texts merged from several waiting jobs into one model call. The
    /// backend splits large calls further by its own token budget.
    pub max_batch_texts: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { queue_capacity: 256, max_batch_texts: 64 }
    }
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Cheap to clone; every clone feeds the same worker. The worker stops when
/// the last handle is dropped.
#[derive(Clone)]
pub struct EmbedHandle {
    tx: mpsc::Sender<Job>,
    capacity: usize,
    dimension: usize,
    model_id: Arc<str>,
}

impl std::fmt::Debug for EmbedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedHandle")
            .field("model_id", &self.model_id)
            .field("dimension", &self.dimension)
            .field("queue_capacity", &self.capacity)
            .finish()
    }
}

impl EmbedHandle {
    /// Moves `embedder` onto a new thread named `embed-worker`.
    pub fn spawn(embedder: Box<dyn Embedder>, config: BatchConfig) -> Result<Self, EmbedError> {
        let capacity = config.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let dimension = embedder.dimension();
        let model_id: Arc<str> = embedder.model_id().into();
        thread::Builder::new()
            .name("embed-worker".into())
            .spawn(move || worker(embedder, rx, config.max_batch_texts.max(1)))
            .map_err(|e| EmbedError::Model { message: format!("cannot start worker thread: {e}") })?;
        Ok(Self { tx, capacity, dimension, model_id })
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Embeds `texts`, waiting for the worker without blocking the runtime.
    /// Dropping the returned future abandons the job: the worker skips it.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Job { texts, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                metrics().embed_overloaded.inc();
                EmbedError::Overloaded { capacity: self.capacity }
            }
            mpsc::error::TrySendError::Closed(_) => EmbedError::Stopped,
        })?;
        metrics().embed_queue_depth.set((self.tx.max_capacity() - self.tx.capacity()) as i64);
        rx.await.map_err(|_| EmbedError::Stopped)?
    }

    /// Embeds a single text.
    pub async fn embed_one(&self, text: String) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed(vec![text]).await?;
        vectors.pop().ok_or_else(|| EmbedError::Model { message: "model returned no vector".into() })
    }
}

fn worker(mut embedder: Box<dyn Embedder>, mut rx: mpsc::Receiver<Job>, max_batch_texts: usize) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut total = jobs[0].texts.len();
        while total < max_batch_texts {
            match rx.try_recv() {
                Ok(job) => {
                    total += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let m = metrics();
        m.embed_queue_depth.set(rx.len() as i64);
        // Callers that gave up (deadline, disconnect) cost no model time.
        let waiting = jobs.len();
        jobs.retain(|job| !job.reply.is_closed());
        m.embed_abandoned.inc_by((waiting - jobs.len()) as u64);
        if jobs.is_empty() {
            continue;
        }
        let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
        m.embed_batch_texts.observe(texts.len() as f64);
        let _timer = m.embed_batch_duration.start_timer();
        match embedder.embed(&texts) {
            Ok(vectors) if vectors.len() == texts.len() => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Ok(vectors) => {
                let err =
                    EmbedError::Model { message: format!("expected {} vectors, got {}", texts.len(), vectors.len()) };
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
            Err(err) => {
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}
