//! Consent as a retrieval predicate. Pure: the engine reads the ledger from
//! the store and hands a [`ConsentSnapshot`] in; this module decides.
//!
//! * [`ConsentSnapshot::ingest_decision`]: may this event be stored at all?
//! * [`retrieval_scope`]: the one builder of every retrieval scope: user +
//!   sources permitted for the purpose (∩ what the request asked for).
//! * [`post_check`]: per hit, re-verify user and consent before anything
//!   leaves the engine.
//!
//! Fail closed everywhere: no grant means no use; an empty permitted set
//! means an empty answer, never "all sources".

use std::collections::BTreeMap;

use crate::domain::{ActivityEvent, ConsentGrant, ContextQuery, Purpose, Scope};

/// The ledger entries of one user, read once per operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentSnapshot {
    user_id: String,
    grants: Vec<ConsentGrant>,
}

/// Why an event may not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestDenial {
    /// No purpose is currently granted for the event's (user, source).
    NoConsent,
    /// The business flagged the event Limited Data Use.
    LimitedDataUse,
}

/// Verdict on one search hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostCheck {
    Allowed {
        consent_version: u64,
    },
    /// The hit belongs to another user: the store filter failed. An alarm.
    ForeignUser,
    /// The hit's source is not permitted for the purpose. An alarm.
    NotPermitted,
}

impl ConsentSnapshot {
    /// Keeps only `user_id`'s entries, whatever the store returned.
    pub fn new(user_id: impl Into<String>, grants: impl IntoIterator<Item = ConsentGrant>) -> Self {
        let user_id = user_id.into();
        let grants = grants.into_iter().filter(|g| g.user_id == user_id).collect();
        Self { user_id, grants }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn grants(&self) -> &[ConsentGrant] {
        &self.grants
    }

    /// Sources with an active grant for `purpose`, with the grant's version.
    pub fn permitted(&self, purpose: Purpose) -> BTreeMap<String, u64> {
        self.grants
            .iter()
            .filter(|g| g.purpose == purpose && g.is_granted())
            .map(|g| (g.source_id.clone(), g.version))
            .collect()
    }

    /// Whether the ledger holds any entry for the person (granted or
    /// revoked). A person without one has never been known to the engine,
    /// or has been erased.
    pub fn knows_user(&self) -> bool {
        !self.grants.is_empty()
    }

    /// Whether any purpose is granted for `(user, source_id)`.
    pub fn any_purpose_granted(&self, source_id: &str) -> bool {
        self.grants.iter().any(|g| g.source_id == source_id && g.is_granted())
    }

    /// May `event` be stored? LDU first: a flagged event is refused even
    /// with consent.
    pub fn ingest_decision(&self, event: &ActivityEvent) -> Result<(), IngestDenial> {
        if event.data_processing_options.iter().any(|o| o.trim().eq_ignore_ascii_case("LDU")) {
            return Err(IngestDenial::LimitedDataUse);
        }
        if event.user_id != self.user_id || !self.any_purpose_granted(&event.source_id) {
            return Err(IngestDenial::NoConsent);
        }
        Ok(())
    }
}

/// The scope a context query may search, with the consent version per
/// permitted source; `None` when nothing is permitted (answer empty, do not
/// search).
pub fn retrieval_scope(query: &ContextQuery, snapshot: &ConsentSnapshot) -> Option<(Scope, BTreeMap<String, u64>)> {
    if snapshot.user_id() != query.user_id {
        return None;
    }
    let mut permitted = snapshot.permitted(query.purpose);
    if !query.source_ids.is_empty() {
        permitted.retain(|source, _| query.source_ids.contains(source));
    }
    if permitted.is_empty() {
        return None;
    }
    let mut scope = Scope::user_sources(query.user_id.clone(), permitted.keys().cloned().collect());
    scope.event_names = query.event_names.clone();
    scope.event_families = query.event_families.clone();
    scope.time_window = query.time_window;
    Some((scope, permitted))
}

/// Re-verifies one hit against the user and the snapshot the query used.
pub fn post_check(user_id: &str, permitted: &BTreeMap<String, u64>, hit_user: &str, hit_source: &str) -> PostCheck {
    if hit_user != user_id {
        return PostCheck::ForeignUser;
    }
    match permitted.get(hit_source) {
        Some(&consent_version) => PostCheck::Allowed { consent_version },
        None => PostCheck::NotPermitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConsentState, SourceScope, TimeWindow};

    fn grant(user: &str, source: &str, purpose: Purpose, state: ConsentState, version: u64) -> ConsentGrant {
        ConsentGrant {
            user_id: user.into(),
            source_id: source.into(),
            purpose,
            state,
            version,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn query(sources: &[&str]) -> ContextQuery {
        ContextQuery {
            user_id: "u".into(),
            purpose: Purpose::ChatAssistant,
            text: "q".into(),
            limit: 5,
            time_window: TimeWindow::default(),
            event_names: vec![],
            event_families: vec![],
            source_ids: sources.iter().map(|s| s.to_string()).collect(),
            max_tokens: 512,
        }
    }

    fn snapshot() -> ConsentSnapshot {
        ConsentSnapshot::new(
            "u",
            [
                grant("u", "a", Purpose::ChatAssistant, ConsentState::Granted, 1),
                grant("u", "b", Purpose::ChatAssistant, ConsentState::Revoked, 2),
                grant("u", "c", Purpose::FeedRanking, ConsentState::Granted, 3),
                grant("other", "d", Purpose::ChatAssistant, ConsentState::Granted, 1),
            ],
        )
    }

    #[test]
    fn scope_is_the_permitted_sources_for_the_purpose() {
        let (scope, permitted) = retrieval_scope(&query(&[]), &snapshot()).unwrap();
        assert_eq!(scope.user_id(), "u");
        assert_eq!(scope.sources(), &SourceScope::Only(vec!["a".into()]));
        assert_eq!(permitted, BTreeMap::from([("a".to_string(), 1)]));
    }

    #[test]
    fn requested_sources_narrow_but_never_widen() {
        assert!(retrieval_scope(&query(&["b", "c", "d"]), &snapshot()).is_none());
        let (scope, _) = retrieval_scope(&query(&["a", "b"]), &snapshot()).unwrap();
        assert_eq!(scope.sources(), &SourceScope::Only(vec!["a".into()]));
    }

    #[test]
    fn nothing_permitted_means_no_search() {
        assert!(retrieval_scope(&query(&[]), &ConsentSnapshot::new("u", [])).is_none());
        let mut q = query(&[]);
        q.user_id = "someone-else".into();
        assert!(retrieval_scope(&q, &snapshot()).is_none(), "a snapshot of another user permits nothing");
    }

    #[test]
    fn post_check_catches_foreign_users_and_unpermitted_sources() {
        let permitted = BTreeMap::from([("a".to_string(), 7)]);
        assert_eq!(post_check("u", &permitted, "u", "a"), PostCheck::Allowed { consent_version: 7 });
        assert_eq!(post_check("u", &permitted, "v", "a"), PostCheck::ForeignUser);
        assert_eq!(post_check("u", &permitted, "u", "b"), PostCheck::NotPermitted);
    }

    #[test]
    fn ingest_needs_some_purpose_and_no_ldu() {
        let s = snapshot();
        let mut e = ActivityEvent { user_id: "u".into(), source_id: "c".into(), ..Default::default() };
        assert_eq!(s.ingest_decision(&e), Ok(()), "a feed-ranking grant is enough to store");
        e.source_id = "b".into();
        assert_eq!(s.ingest_decision(&e), Err(IngestDenial::NoConsent), "revoked");
        e.source_id = "d".into();
        assert_eq!(s.ingest_decision(&e), Err(IngestDenial::NoConsent), "another user's grant");
        e.source_id = "a".into();
        e.data_processing_options = vec!["ldu".into()];
        assert_eq!(s.ingest_decision(&e), Err(IngestDenial::LimitedDataUse));
    }
}
