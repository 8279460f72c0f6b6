//! Consent: who may use whose activity from which business, for what.
//!
//! A grant is keyed by `(user_id, source_id, purpose)`. No grant means no use
//! (fail closed); a revoked grant is kept, with its version bumped, so the
//! ledger remembers that the person said no.

use serde::{Deserialize, Serialize};

/// What the activity may be used for. Closed set: a purpose the engine does
/// not know cannot be granted, asked for, or defaulted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Purpose {
    /// Context for a chat assistant's replies.
    ChatAssistant,
    /// Ranking of a feed.
    FeedRanking,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::ChatAssistant, Purpose::FeedRanking];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatAssistant => "chat_assistant",
            Self::FeedRanking => "feed_ranking",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ConsentState {
    Granted,
    Revoked,
}

/// One entry of the consent ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentGrant {
    pub user_id: String,
    pub source_id: String,
    pub purpose: Purpose,
    pub state: ConsentState,
    /// Starts at 1 and grows by one with every change of state; a repeated
    /// grant or revoke (same state) leaves it unchanged.
    pub version: u64,
    /// Unix seconds of the first grant ever recorded for this key.
    pub created_at: i64,
    /// Unix seconds of the last change of state.
    pub updated_at: i64,
}

impl ConsentGrant {
    pub fn is_granted(&self) -> bool {
        self.state == ConsentState::Granted
    }

    /// The ledger entry after asking for `state` at `now`; `None` when nothing
    /// changes (set-consent is idempotent).
    pub fn transition(
        previous: Option<&ConsentGrant>,
        key: (&str, &str, Purpose),
        state: ConsentState,
        now: i64,
    ) -> Option<ConsentGrant> {
        match previous {
            Some(p) if p.state == state => None,
            Some(p) => Some(ConsentGrant { state, version: p.version + 1, updated_at: now, ..p.clone() }),
            None => Some(ConsentGrant {
                user_id: key.0.to_string(),
                source_id: key.1.to_string(),
                purpose: key.2,
                state,
                version: 1,
                created_at: now,
                updated_at: now,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_idempotent_and_versioned() {
        let key = ("u", "s", Purpose::ChatAssistant);
        let g1 = ConsentGrant::transition(None, key, ConsentState::Granted, 10).unwrap();
        assert_eq!((g1.version, g1.created_at, g1.updated_at), (1, 10, 10));
        assert!(ConsentGrant::transition(Some(&g1), key, ConsentState::Granted, 20).is_none());
        let g2 = ConsentGrant::transition(Some(&g1), key, ConsentState::Revoked, 30).unwrap();
        assert_eq!((g2.version, g2.created_at, g2.updated_at, g2.is_granted()), (2, 10, 30, false));
        let g3 = ConsentGrant::transition(Some(&g2), key, ConsentState::Granted, 40).unwrap();
        assert_eq!(g3.version, 3);
    }
}
