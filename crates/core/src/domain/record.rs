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
    /// Probability from the learned injection head that `text` carries
    /// instructions, computed at ingest from its embedding and its
    /// character n-grams (so a context call pays nothing for it). Absent on
    /// records written before the head existed or by an engine without one;
    /// screening then scores the stored vector and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injection_score: Option<f32>,
    /// Which head computed `injection_score` (`InjectionHead::id`). A score
    /// from another head (or without this field) is recomputed at read time
    /// from the stored vector and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injection_head: Option<String>,
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
    /// Event families (`purchase`, `view`, ...).
    pub event_families: Vec<String>,
    pub source_ids: Vec<String>,
    /// Token budget of the rendered block.
    pub max_tokens: usize,
}

/// Which candidate lists a query draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RetrievalMode {
    /// Nearest neighbours of the query embedding.
    Dense,
    /// BM25 term matching (exact names, brands, titles).
    Sparse,
    /// Both, fused.
    Hybrid,
}

impl RetrievalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Sparse => "sparse",
            Self::Hybrid => "hybrid",
        }
    }
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
    /// Short id (`c1`, `c2`, ...) that marks this snippet in the rendered
    /// block; maps the model's citations back to `provenance`.
    pub citation_id: String,
    /// Prompt-safe sentence (sanitised; neutralised when flagged).
    pub text: String,
    pub score: f32,
    /// Event family of the snippet (`purchase`, `view`, ...).
    pub family: String,
    /// Provenance of the most recent event the snippet stands for.
    pub provenance: Provenance,
    /// How many retrieved events the snippet stands for (> 1 when repeats
    /// were collapsed) and when the first of them happened. Counted among
    /// the candidates: when a candidate list came back full, the store may
    /// hold more repeats, and the text then says "at least N times".
    pub occurrences: u32,
    pub first_event_time: i64,
    /// Event ids of the other events collapsed into this snippet.
    pub collapsed_event_ids: Vec<String>,
    /// Injection signals found in the snippet's untrusted text; non-empty
    /// only under the neutralise policy (the drop policy removes them).
    pub flags: Vec<String>,
}
