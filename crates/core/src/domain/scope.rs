//! Which stored events an operation may touch. A [`Scope`] always names one
//! user: there is no constructor without a user id, so no read or delete can
//! span users.

use super::TimeWindow;

/// Sources a scope admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceScope {
    /// Every source of the user: only for the person's own privacy operations
    /// (count, export, erase), never for retrieval.
    AnySource,
    /// Exactly these sources. An empty list admits nothing (it never means
    /// "all").
    Only(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    user_id: String,
    sources: SourceScope,
    pub event_names: Vec<String>,
    /// Event families (`purchase`, `view`, ...; see `EventFamily::as_str`).
    pub event_families: Vec<String>,
    pub time_window: TimeWindow,
}

impl Scope {
    /// All of one user's events (privacy operations, tests).
    pub fn whole_user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            sources: SourceScope::AnySource,
            event_names: Vec::new(),
            event_families: Vec::new(),
            time_window: TimeWindow::default(),
        }
    }

    /// One user's events from the given sources only.
    pub fn user_sources(user_id: impl Into<String>, sources: Vec<String>) -> Self {
        Self { sources: SourceScope::Only(sources), ..Self::whole_user(user_id) }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn sources(&self) -> &SourceScope {
        &self.sources
    }

    /// True when the scope cannot match anything (an empty source list).
    pub fn is_empty(&self) -> bool {
        matches!(&self.sources, SourceScope::Only(s) if s.is_empty())
    }
}
