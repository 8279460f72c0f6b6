//! The one core behind every client. `Engine` validates, verbalises, embeds
//! and stores events, and answers context queries; the gRPC service and the
//! `context-eval` binary both drive it and hold no logic of their own.
//!
//! It sees its collaborators only through [`EmbedHandle`] (an async face of
//! any `Embedder`) and [`VectorStore`]; the composition root (`app`) picks the
//! concrete ones. It reads no clock: callers pass `now` (unix seconds).

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::domain::{
    point_id, ActivityEvent, ContextQuery, EventRecord, FieldError, Limits, Provenance, Snippet,
};
use crate::embed::{EmbedError, EmbedHandle};
use crate::store::{SearchRequest, StoreError, StoreFilter, StoredPoint, VectorStore};
use crate::verbalize::verbalize;

/// Request-size limits enforced by the engine (on top of per-event [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    pub event: Limits,
    /// Events per `ingest` call.
    pub max_batch_events: usize,
    /// Characters in a context query.
    pub max_query_chars: usize,
    /// Snippets per answer, and the default when the request says 0.
    pub max_snippets: usize,
    pub default_snippets: usize,
    /// Texts per `embed` call and characters per text.
    pub max_embed_texts: usize,
    pub max_embed_chars: usize,
    /// Entries in a request's source / event-name restriction lists.
    pub max_filter_values: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            event: Limits::default(),
            max_batch_events: 1000,
            max_query_chars: 2048,
            max_snippets: 100,
            default_snippets: 8,
            max_embed_texts: 256,
            max_embed_chars: 8192,
            max_filter_values: 64,
        }
    }
}

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A field is missing or malformed.
    InvalidField,
    /// The same `(source_id, event_id)` came earlier in the same request.
    DuplicateInBatch,
}

/// What happened to one event of an ingest request.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    Accepted {
        point_id: String,
        text: String,
    },
    Rejected {
        reason: RejectReason,
        field: String,
        message: String,
    },
}

impl EventOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// A context request as it arrives, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextRequest {
    pub user_id: String,
    pub query: String,
    /// 0 means the default.
    pub limit: usize,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub event_names: Vec<String>,
    pub source_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request itself is malformed; `field` names the culprit.
    #[error("invalid {field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<FieldError> for EngineError {
    fn from(e: FieldError) -> Self {
        Self::InvalidArgument {
            field: e.field,
            message: e.message,
        }
    }
}

pub struct Engine {
    embedder: EmbedHandle,
    store: Arc<dyn VectorStore>,
    limits: EngineLimits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("embedder", &self.embedder)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Hex sha256 of the event's canonical JSON (struct field order, sorted maps).
pub fn content_hash(event: &ActivityEvent) -> String {
    let bytes = serde_json::to_vec(event).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

impl Engine {
    pub fn new(embedder: EmbedHandle, store: Arc<dyn VectorStore>, limits: EngineLimits) -> Self {
        Self {
            embedder,
            store,
            limits,
        }
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    pub fn embedder(&self) -> &EmbedHandle {
        &self.embedder
    }

    /// Validates every event, stores the valid ones, and reports per event.
    ///
    /// All-or-nothing for the valid events: they are embedded together and
    /// written in one store operation, so an overload or store failure returns
    /// an error with nothing written, never a half-applied batch.
    pub async fn ingest(
        &self,
        events: Vec<ActivityEvent>,
        now: i64,
    ) -> Result<Vec<EventOutcome>, EngineError> {
        if events.len() > self.limits.max_batch_events {
            return Err(EngineError::invalid(
                "events",
                format!(
                    "at most {} events per request, got {}",
                    self.limits.max_batch_events,
                    events.len()
                ),
            ));
        }
        let mut outcomes = Vec::with_capacity(events.len());
        let mut seen = HashSet::with_capacity(events.len());
        let mut accepted = Vec::new();
        for event in events {
            if let Err(e) = event.validate(&self.limits.event, now) {
                outcomes.push(EventOutcome::Rejected {
                    reason: RejectReason::InvalidField,
                    field: e.field,
                    message: e.message,
                });
                continue;
            }
            let id = point_id(&event.source_id, &event.event_id);
            if !seen.insert(id) {
                outcomes.push(EventOutcome::Rejected {
                    reason: RejectReason::DuplicateInBatch,
                    field: "event_id".into(),
                    message: format!(
                        "({}, {}) appears earlier in this request",
                        event.source_id, event.event_id
                    ),
                });
                continue;
            }
            let text = verbalize(&event);
            outcomes.push(EventOutcome::Accepted {
                point_id: id.to_string(),
                text: text.clone(),
            });
            let record = EventRecord {
                content_hash: content_hash(&event),
                event,
                text,
                ingested_at: now,
            };
            accepted.push((id, record));
        }
        if accepted.is_empty() {
            return Ok(outcomes);
        }
        let texts = accepted.iter().map(|(_, r)| r.text.clone()).collect();
        let vectors = self.embedder.embed(texts).await?;
        let points = accepted
            .into_iter()
            .zip(vectors)
            .map(|((id, record), vector)| StoredPoint { id, vector, record })
            .collect();
        self.store.upsert(points).await?;
        Ok(outcomes)
    }

    /// Checks a raw request and turns it into a [`ContextQuery`].
    pub fn validate_context(&self, request: ContextRequest) -> Result<ContextQuery, EngineError> {
        let limits = &self.limits;
        if request.user_id.is_empty() {
            return Err(EngineError::invalid("user_id", "required"));
        }
        if request.user_id.len() > limits.event.max_id_len
            || !request.user_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EngineError::invalid(
                "user_id",
                "expected at most 128 visible ASCII characters",
            ));
        }
        let query = request.query.trim();
        if query.is_empty() {
            return Err(EngineError::invalid("query", "required"));
        }
        if query.chars().count() > limits.max_query_chars {
            return Err(EngineError::invalid(
                "query",
                format!("longer than {} characters", limits.max_query_chars),
            ));
        }
        if request.limit > limits.max_snippets {
            return Err(EngineError::invalid(
                "limit",
                format!("at most {}, got {}", limits.max_snippets, request.limit),
            ));
        }
        if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
            if start > end {
                return Err(EngineError::invalid(
                    "time_window",
                    format!("start_time {start} is after end_time {end}"),
                ));
            }
        }
        for (field, values) in [
            ("event_names", &request.event_names),
            ("source_ids", &request.source_ids),
        ] {
            if values.len() > limits.max_filter_values {
                return Err(EngineError::invalid(
                    field,
                    format!("at most {} entries", limits.max_filter_values),
                ));
            }
            if values
                .iter()
                .any(|v| v.is_empty() || v.len() > limits.event.max_id_len)
            {
                return Err(EngineError::invalid(
                    field,
                    "entries must be non-empty ids of at most 128 bytes",
                ));
            }
        }
        Ok(ContextQuery {
            user_id: request.user_id,
            text: query.to_string(),
            limit: if request.limit == 0 {
                limits.default_snippets
            } else {
                request.limit
            },
            time_window: crate::domain::TimeWindow {
                start: request.start_time,
                end: request.end_time,
            },
            event_names: request.event_names,
            source_ids: request.source_ids,
        })
    }

    /// The user's stored events most similar to the query, best first.
    /// An unknown user simply has no events: the answer is empty.
    pub async fn get_context(&self, request: ContextRequest) -> Result<Vec<Snippet>, EngineError> {
        let query = self.validate_context(request)?;
        let vector = self.embedder.embed_one(query.text.clone()).await?;
        let mut filter = StoreFilter::for_user(query.user_id.clone());
        filter.source_ids = query.source_ids;
        filter.event_names = query.event_names;
        filter.time_window = query.time_window;
        let hits = self
            .store
            .search(SearchRequest {
                vector,
                filter,
                limit: query.limit,
            })
            .await?;
        Ok(hits
            .into_iter()
            // Defence in depth: the store filter already scopes to the user.
            .filter(|hit| hit.record.event.user_id == query.user_id)
            .map(|hit| {
                let record = hit.record;
                Snippet {
                    score: hit.score,
                    provenance: Provenance {
                        source_id: record.event.source_id,
                        event_id: record.event.event_id,
                        event_name: record.event.event_name,
                        event_time: record.event.event_time,
                        ingested_at: record.ingested_at,
                        point_id: hit.id.to_string(),
                        content_hash: record.content_hash,
                    },
                    text: record.text,
                }
            })
            .collect())
    }

    /// Embeds arbitrary texts with the engine's model.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Err(EngineError::invalid(
                "texts",
                "at least one text is required",
            ));
        }
        if texts.len() > self.limits.max_embed_texts {
            return Err(EngineError::invalid(
                "texts",
                format!(
                    "at most {} texts per request, got {}",
                    self.limits.max_embed_texts,
                    texts.len()
                ),
            ));
        }
        if let Some(i) = texts
            .iter()
            .position(|t| t.chars().count() > self.limits.max_embed_chars)
        {
            return Err(EngineError::invalid(
                format!("texts[{i}]"),
                format!("longer than {} characters", self.limits.max_embed_chars),
            ));
        }
        Ok(self.embedder.embed(texts).await?)
    }

    /// Flushes the store (shutdown, tests).
    pub async fn flush(&self) -> Result<(), EngineError> {
        Ok(self.store.flush().await?)
    }
}
