//! Ranking: from the store's candidate lists to the few snippets that best
//! serve one chat turn, packed into a token budget. Pure: no I/O and no
//! clock (`now` is passed in).
//!
//! Pipeline, each step its own module:
//! 1. [`score`]: fuse the dense and sparse lists into one relevance, then
//!    decay it by event age with a per-family half-life;
//! 2. drop what scores below `min_score`;
//! 3. [`collapse`]: merge repeats of one item into one group;
//! 4. [`mmr`]: order the groups by maximal marginal relevance (diversity);
//! 5. [`pack`]: screen each for injection, then pack by value into the
//!    token budget and render the prompt-ready block.
//!
//! Consent is not decided here: the engine hands in only candidates that
//! passed the policy's post-check, each with its grant's version.

pub mod collapse;
pub mod feed;
pub mod mmr;
pub mod options;
pub mod pack;
pub mod proactive;
pub mod score;

pub use options::{Fusion, FusionKind, HalfLives, RankingOptions, RankingOverrides};
pub use pack::{CountTokens, Packed};

use crate::block::InjectionPolicy;
use crate::domain::EventRecord;
use ce_screen::{InjectionHead, RuleScreener, Screener};
pub use collapse::Group;

/// One stored event that some candidate list returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub point_id: String,
    pub record: EventRecord,
    /// Its dense vector (unit length).
    pub vector: Vec<f32>,
    /// 0-based position in the dense / sparse list, if it was in it.
    pub dense_rank: Option<usize>,
    pub sparse_rank: Option<usize>,
    /// Raw BM25 score, if the sparse list had it.
    pub sparse_score: Option<f32>,
    /// Version of the consent grant that lets it out.
    pub consent_version: u64,
}

/// Counts from one ranking, for the response's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RankStats {
    pub candidates: usize,
    pub below_min_score: usize,
    /// Events merged into another event's snippet.
    pub collapsed: usize,
}

/// Candidates grouped and ordered, before packing.
#[derive(Debug, Clone, Default)]
pub struct Ranking {
    pub candidates: Vec<Candidate>,
    pub groups: Vec<Group>,
    /// Indexes into `groups`, best first.
    pub order: Vec<usize>,
    pub stats: RankStats,
    /// Set by the caller when a candidate list came back full (see
    /// `pack::PackRequest::lists_full`).
    pub lists_full: bool,
}

/// Steps 1-4 of the pipeline.
pub fn rank(query: &[f32], candidates: Vec<Candidate>, options: &RankingOptions, now: i64) -> Ranking {
    let total = candidates.len();
    let scores = score::scores(query, &candidates, options, now);
    let (candidates, scores): (Vec<Candidate>, Vec<f32>) =
        candidates.into_iter().zip(scores).filter(|(_, s)| *s >= options.min_score).unzip();
    let groups = collapse::group(&candidates, &scores, options.collapse);
    let order = mmr::order(&groups, &candidates, options.diversity);
    let stats = RankStats {
        candidates: total,
        below_min_score: total - candidates.len(),
        collapsed: candidates.len() - groups.len(),
    };
    Ranking { candidates, groups, order, stats, lists_full: false }
}

/// Step 5: screening (with the rule detector), packing and rendering.
pub fn pack(
    ranking: &Ranking,
    max_snippets: usize,
    max_tokens: usize,
    policy: InjectionPolicy,
    counter: &dyn CountTokens,
) -> Packed {
    pack_with(ranking, max_snippets, max_tokens, policy, counter, &RuleScreener, None)
}

/// Step 5 with the given injection detector.
pub fn pack_with(
    ranking: &Ranking,
    max_snippets: usize,
    max_tokens: usize,
    policy: InjectionPolicy,
    counter: &dyn CountTokens,
    screener: &dyn Screener,
    learned: Option<&InjectionHead>,
) -> Packed {
    pack::pack(
        pack::PackRequest {
            candidates: &ranking.candidates,
            groups: &ranking.groups,
            order: &ranking.order,
            max_snippets,
            max_tokens,
            policy,
            lists_full: ranking.lists_full,
            screener,
            learned,
        },
        counter,
    )
}
