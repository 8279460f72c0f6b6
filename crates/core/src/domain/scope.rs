//! Which stored events an operation may touch. A [`Scope`] always names one
//! user: there is no constructor without a user id, so no read or delete can
//! span users.

use super::{ActivityEvent, TimeWindow};

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

    /// Whether `event` lies in this scope: the semantics of the store filter
    /// (`ce_store::payload::scope_filter_json`) in code, for checking what a
    /// store returned and for in-memory stores.
    pub fn admits(&self, event: &ActivityEvent) -> bool {
        if event.user_id != self.user_id {
            return false;
        }
        if let SourceScope::Only(sources) = &self.sources {
            if !sources.contains(&event.source_id) {
                return false;
            }
        }
        if !self.event_names.is_empty() && !self.event_names.contains(&event.event_name) {
            return false;
        }
        if !self.event_families.is_empty() && !self.event_families.iter().any(|f| f == event.family().as_str()) {
            return false;
        }
        let window = self.time_window;
        window.start.is_none_or(|s| event.event_time >= s) && window.end.is_none_or(|e| event.event_time <= e)
    }

    /// True when the scope cannot match anything (an empty source list).
    pub fn is_empty(&self) -> bool {
        matches!(&self.sources, SourceScope::Only(s) if s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, source: &str, name: &str, time: i64) -> ActivityEvent {
        ActivityEvent {
            user_id: user.into(),
            source_id: source.into(),
            event_name: name.into(),
            event_time: time,
            ..Default::default()
        }
    }

    /// Each part of the scope refuses what lies outside it, as the store
    /// filter does.
    #[test]
    fn admits_only_what_the_filter_would() {
        let e = event("ann", "shop", "Purchase", 100);
        assert!(Scope::whole_user("ann").admits(&e));
        assert!(!Scope::whole_user("bob").admits(&e), "another user");
        assert!(Scope::user_sources("ann", vec!["shop".into()]).admits(&e));
        assert!(!Scope::user_sources("ann", vec!["games".into()]).admits(&e), "another source");
        assert!(!Scope::user_sources("ann", vec![]).admits(&e), "no source admits nothing");
        let mut names = Scope::whole_user("ann");
        names.event_names = vec!["ViewContent".into()];
        assert!(!names.admits(&e), "another event name");
        names.event_names.push("Purchase".into());
        assert!(names.admits(&e));
        let mut families = Scope::whole_user("ann");
        families.event_families = vec!["view".into()];
        assert!(!families.admits(&e), "another family");
        families.event_families = vec![e.family().as_str().to_string()];
        assert!(families.admits(&e));
        let mut window = Scope::whole_user("ann");
        window.time_window = TimeWindow { start: Some(101), end: None };
        assert!(!window.admits(&e), "before the window");
        window.time_window = TimeWindow { start: Some(50), end: Some(99) };
        assert!(!window.admits(&e), "after the window");
        window.time_window = TimeWindow { start: Some(100), end: Some(100) };
        assert!(window.admits(&e), "bounds are inclusive");
    }
}
