//! What the engine stores per event and what it hands back per snippet.

use serde::{Deserialize, Serialize};

use super::{ActivityEvent, Purpose};

/// The stored form of one accepted event: the full event (so the store can be
/// re-embedded from itself), its canonical sentence and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event: ActivityEvent,
    /// Canonical sentence produced by `verbalize`; this is what was embedded.
    pub text: String,
    /// Unix seconds when the engine accepted the event.
    pub ingested_at: i64,
    /// Hex sha256 of the event's canonical JSON.
    pub content_hash: String,
}

/// Inclusive time bounds in unix seconds; `None` leaves a side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// A validated context request. `user_id` is not optional: there is no way
/// to build a query that spans users.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextQuery {
    pub user_id: String,
    pub purpose: Purpose,
    pub text: String,
    pub limit: usize,
    pub time_window: TimeWindow,
    pub event_names: Vec<String>,
    pub source_ids: Vec<String>,
}

/// Where a snippet came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub source_id: String,
    pub event_id: String,
    pub event_name: String,
    pub event_time: i64,
    pub ingested_at: i64,
    pub point_id: String,
    pub content_hash: String,
    /// Version of the consent grant that allowed the snippet out.
    pub consent_version: u64,
}

/// One piece of context for a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    pub text: String,
    pub score: f32,
    pub provenance: Provenance,
}
