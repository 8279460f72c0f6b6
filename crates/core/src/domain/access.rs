//! The access log: one record per answered context request, so a person can
//! see which of their activity was used, when, by whom and for what.

use serde::{Deserialize, Serialize};

use super::Purpose;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessedEvent {
    pub source_id: String,
    pub event_id: String,
    pub consent_version: u64,
}

/// Deliberately without the query text: the chat turn is the person's
/// words, and the log only needs to say what was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub access_id: String,
    pub user_id: String,
    pub caller: String,
    pub purpose: Purpose,
    /// Unix seconds.
    pub at: i64,
    pub events: Vec<AccessedEvent>,
}
