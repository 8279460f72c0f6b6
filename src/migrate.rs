//! `context-engine migrate`: copies a store (consent ledger, access log,
//! event points) from one backend to another, page by page, optionally
//! re-embedding every event with the current model; then verifies counts
//! and a sample of points.
//!
//! Idempotent: points keep their ids, so running it again (after an
//! interruption) rewrites the same points. Run it with the engine stopped:
//! an erasure or revocation that lands in the source during a copy would
//! not reach the destination. (An Edge source cannot be opened while a
//! server holds it.)

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::domain::EventRecord;
use crate::embed::EmbedHandle;
use crate::store::{
    CollectionKind, EdgeOptions, EdgeStore, QdrantOptions, QdrantStore, RawPoint, RawStore, StoreError, StoreManifest,
};

/// One side of a migration.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Edge(std::path::PathBuf),
    Qdrant(String),
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("edge", path)) if !path.is_empty() => Ok(Self::Edge(path.into())),
            Some(("qdrant", url)) if !url.is_empty() => Ok(Self::Qdrant(url.to_string())),
            _ => Err(format!("expected edge:PATH or qdrant:URL, got {s:?}")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edge(path) => write!(f, "edge:{}", path.display()),
            Self::Qdrant(url) => write!(f, "qdrant:{url}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding: {0}")]
    Embed(#[from] crate::embed::EmbedError),
    #[error("{0}")]
    Invalid(String),
    #[error("verification failed: {0}")]
    Verify(String),
}

/// What a run did, per collection.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MigrationReport {
    /// (collection, points copied, source total, destination total).
    pub collections: Vec<(String, usize, usize, usize)>,
    /// Points compared field by field at the end.
    pub verified_sample: usize,
    pub reembedded: bool,
}

/// Options of [`migrate`].
pub struct MigrateOptions {
    pub batch: usize,
    pub verify_sample: usize,
    /// Re-embed events with this model (the destination is made for it).
    pub reembed: Option<(EmbedHandle, StoreManifest)>,
    pub progress: bool,
}

/// What the store at `endpoint` was made for.
/// `qdrant` holds the server settings; its URL is replaced by the endpoint's.
pub async fn read_manifest(endpoint: &Endpoint, qdrant: &QdrantOptions) -> Result<StoreManifest, StoreError> {
    match endpoint {
        Endpoint::Edge(path) => EdgeStore::read_manifest(path),
        Endpoint::Qdrant(url) => {
            QdrantStore::read_manifest(&QdrantOptions { url: url.clone(), ..qdrant.clone() }).await
        }
    }
}

/// Opens (or creates) the store at `endpoint` for `manifest`.
pub async fn open(
    endpoint: &Endpoint,
    manifest: &StoreManifest,
    qdrant: &QdrantOptions,
) -> Result<Arc<dyn RawStore>, StoreError> {
    match endpoint {
        Endpoint::Edge(path) => {
            let options = EdgeOptions {
                data_dir: path.clone(),
                dimension: manifest.dimension,
                model_id: manifest.model_id.clone(),
                bm25_avg_len: manifest.bm25_avg_len,
            };
            let store = tokio::task::spawn_blocking(move || EdgeStore::open(&options))
                .await
                .map_err(|e| StoreError::Backend { operation: "open", message: e.to_string() })??;
            Ok(Arc::new(store))
        }
        Endpoint::Qdrant(url) => {
            let options = QdrantOptions { url: url.clone(), ..qdrant.clone() };
            Ok(Arc::new(QdrantStore::connect(&options, manifest).await?))
        }
    }
}

fn bar(progress: bool, total: usize, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} points {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Re-verbalises and re-embeds a page of event points.
async fn reembed(embedder: &EmbedHandle, points: &mut [RawPoint]) -> Result<(), MigrateError> {
    let mut texts = Vec::with_capacity(points.len());
    for point in points.iter_mut() {
        let mut record: EventRecord = crate::store::from_payload(&point.id.to_string(), point.payload.clone())?;
        record.text = crate::verbalize::verbalize(&record.event);
        // The injection score was computed from the old text and vector:
        // drop it, so screening rescores the record from the new ones.
        record.injection_score = None;
        record.injection_head = None;
        texts.push(record.text.clone());
        point.payload = crate::store::event_payload(&record)?;
    }
    let vectors = embedder.embed(texts).await?;
    for (point, vector) in points.iter_mut().zip(vectors) {
        point.vector = Some(vector);
    }
    Ok(())
}

/// Copies every collection of `from` into `to`, then verifies.
pub async fn migrate(
    from: &dyn RawStore,
    to: &dyn RawStore,
    options: &MigrateOptions,
) -> Result<MigrationReport, MigrateError> {
    if options.batch == 0 {
        return Err(MigrateError::Invalid("--batch must be at least 1".into()));
    }
    let mut report = MigrationReport { reembedded: options.reembed.is_some(), ..Default::default() };
    let mut sample: Vec<(CollectionKind, Uuid)> = Vec::new();
    for kind in CollectionKind::ALL {
        let total = from.total(kind).await?;
        let bar = bar(options.progress, total, kind.as_str());
        // Sample ids spread over the whole collection.
        let stride = (total / options.verify_sample.max(1)).max(1);
        let (mut copied, mut from_id) = (0usize, None);
        loop {
            let (mut points, next) = from.export_page(kind, from_id, options.batch).await?;
            if points.is_empty() {
                break;
            }
            for (i, point) in points.iter().enumerate() {
                if (copied + i) % stride == 0 && sample.len() < options.verify_sample * 3 {
                    sample.push((kind, point.id));
                }
            }
            if let (CollectionKind::Activity, Some((embedder, _))) = (kind, &options.reembed) {
                reembed(embedder, &mut points).await?;
            }
            copied += points.len();
            to.import(kind, points).await?;
            bar.set_position(copied as u64);
            match next {
                Some(next) => from_id = Some(next),
                None => break,
            }
        }
        bar.finish();
        let destination = to.total(kind).await?;
        report.collections.push((kind.as_str().to_string(), copied, total, destination));
        if copied != total || destination != total {
            return Err(MigrateError::Verify(format!(
                "{}: source has {total} points, {copied} were copied, destination has {destination} \
                 (a destination that held other points before, or writes to the source during the copy)",
                kind.as_str()
            )));
        }
    }
    for kind in CollectionKind::ALL {
        let ids: Vec<Uuid> = sample.iter().filter(|(k, _)| *k == kind).map(|(_, id)| *id).collect();
        if ids.is_empty() {
            continue;
        }
        let mut source = from.fetch(kind, ids.clone()).await?;
        let mut copy = to.fetch(kind, ids.clone()).await?;
        source.sort_by_key(|p| p.id);
        copy.sort_by_key(|p| p.id);
        if copy.len() != source.len() {
            return Err(MigrateError::Verify(format!(
                "{}: {} of {} sampled points are missing in the destination",
                kind.as_str(),
                source.len() - copy.len().min(source.len()),
                source.len()
            )));
        }
        for (a, b) in source.iter().zip(&copy) {
            let same = if options.reembed.is_some() && kind == CollectionKind::Activity {
                // The vector and the text may change; the event may not.
                let event = |p: &RawPoint| {
                    crate::store::payload::from_payload::<EventRecord>(&p.id.to_string(), p.payload.clone())
                        .map(|r| r.event)
                        .ok()
                };
                a.id == b.id && event(a).is_some() && event(a) == event(b)
            } else {
                a.id == b.id && a.payload == b.payload && vectors_match(&a.vector, &b.vector)
            };
            if !same {
                return Err(MigrateError::Verify(format!("{}: point {} differs after the copy", kind.as_str(), a.id)));
            }
        }
        report.verified_sample += source.len();
    }
    Ok(report)
}

/// Equal up to float round trips through a server (cosine storage
/// normalises vectors; ours are unit length already).
fn vectors_match(a: &Option<Vec<f32>>, b: &Option<Vec<f32>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5),
        _ => false,
    }
}
