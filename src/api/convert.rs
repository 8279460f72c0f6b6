//! Protobuf ⇄ domain conversions. Mechanical by design: proto3 defaults
//! (empty strings, zero) map to "absent", and nothing is validated here; the
//! engine validates.

use crate::domain::{
    AccessRecord, ActivityEvent, ConsentGrant, ConsentState, Content, CustomData, EventRecord, FieldError, Provenance,
    Purpose, RetrievalMode, Snippet,
};
use crate::engine::feed::{FeedItem, ProactiveAnswer, ProactiveRequest, RankItemsAnswer, RankItemsRequest};
use crate::engine::{ContextAnswer, ContextRequest, ContextStats, ErasureReceipt, EventOutcome, RejectReason};
use crate::pb;
use crate::rank::proactive::Reason;
use crate::rank::RankingOverrides;
use crate::render::InjectionPolicy;
use crate::store::PurgeState;

pub fn event_from_pb(e: pb::ActivityEvent) -> ActivityEvent {
    let data = e.custom_data.unwrap_or_default();
    ActivityEvent {
        event_id: e.event_id,
        user_id: e.user_id,
        source_id: e.source_id,
        source_name: e.source_name,
        event_name: e.event_name,
        event_time: e.event_time,
        action_source: e.action_source,
        custom_data: CustomData {
            content_name: data.content_name,
            content_category: data.content_category,
            content_ids: data.content_ids,
            contents: data
                .contents
                .into_iter()
                .map(|c| Content { id: c.id, quantity: c.quantity, item_price: c.item_price, title: c.title })
                .collect(),
            value: data.value,
            currency: data.currency,
            num_items: data.num_items,
            search_string: data.search_string,
            status: data.status,
            content_type: data.content_type,
            properties: data.properties.into_iter().collect(),
        },
        event_source_url: e.event_source_url,
        data_processing_options: e.data_processing_options,
    }
}

pub fn event_to_pb(e: ActivityEvent) -> pb::ActivityEvent {
    let d = e.custom_data;
    pb::ActivityEvent {
        event_id: e.event_id,
        user_id: e.user_id,
        source_id: e.source_id,
        source_name: e.source_name,
        event_name: e.event_name,
        event_time: e.event_time,
        action_source: e.action_source,
        custom_data: Some(pb::CustomData {
            content_name: d.content_name,
            content_category: d.content_category,
            content_ids: d.content_ids,
            contents: d
                .contents
                .into_iter()
                .map(|c| pb::Content { id: c.id, quantity: c.quantity, item_price: c.item_price, title: c.title })
                .collect(),
            value: d.value,
            currency: d.currency,
            num_items: d.num_items,
            search_string: d.search_string,
            status: d.status,
            content_type: d.content_type,
            properties: d.properties.into_iter().collect(),
        }),
        event_source_url: e.event_source_url,
        data_processing_options: e.data_processing_options,
    }
}

pub fn purpose_from_pb(value: i32) -> Option<Purpose> {
    match pb::Purpose::try_from(value).ok()? {
        pb::Purpose::Unspecified => None,
        pb::Purpose::ChatAssistant => Some(Purpose::ChatAssistant),
        pb::Purpose::FeedRanking => Some(Purpose::FeedRanking),
    }
}

pub fn purpose_to_pb(purpose: Purpose) -> pb::Purpose {
    match purpose {
        Purpose::ChatAssistant => pb::Purpose::ChatAssistant,
        Purpose::FeedRanking => pb::Purpose::FeedRanking,
    }
}

pub fn state_from_pb(value: i32) -> Option<ConsentState> {
    match pb::ConsentState::try_from(value).ok()? {
        pb::ConsentState::Unspecified => None,
        pb::ConsentState::Granted => Some(ConsentState::Granted),
        pb::ConsentState::Revoked => Some(ConsentState::Revoked),
    }
}

pub fn state_to_pb(state: ConsentState) -> pb::ConsentState {
    match state {
        ConsentState::Granted => pb::ConsentState::Granted,
        ConsentState::Revoked => pb::ConsentState::Revoked,
    }
}

pub fn grant_to_pb(g: ConsentGrant) -> pb::ConsentGrant {
    pb::ConsentGrant {
        user_id: g.user_id,
        source_id: g.source_id,
        purpose: purpose_to_pb(g.purpose) as i32,
        state: state_to_pb(g.state) as i32,
        version: g.version,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

pub fn receipt_to_pb(r: ErasureReceipt) -> pb::ErasureReceipt {
    pb::ErasureReceipt {
        user_id: r.user_id,
        events_removed: r.events_removed as u64,
        consents_removed: r.consents_removed as u64,
        access_records_removed: r.access_records_removed as u64,
        erased_at: r.erased_at,
        remaining_points: r.remaining_points as u64,
        remaining_consents: r.remaining_consents as u64,
        remaining_access_records: r.remaining_access_records as u64,
        state: erasure_state_to_pb(r.purge_state) as i32,
        purge_ticket: r.purge_ticket,
        purge_due_by: r.purge_due_by,
    }
}

pub fn erasure_state_to_pb(state: PurgeState) -> pb::ErasureState {
    match state {
        PurgeState::Pending | PurgeState::Unknown => pb::ErasureState::LogicallyErased,
        PurgeState::Purged { .. } => pb::ErasureState::Purged,
        PurgeState::NotSupported => pb::ErasureState::PurgeNotSupported,
        PurgeState::SegmentsVacuumed { .. } => pb::ErasureState::SegmentsVacuumed,
    }
}

pub fn erasure_status_to_pb(ticket: u64, state: PurgeState) -> pb::ErasureStatus {
    let purged_at = match state {
        PurgeState::Purged { at } | PurgeState::SegmentsVacuumed { at } => at,
        _ => 0,
    };
    pb::ErasureStatus { purge_ticket: ticket, state: erasure_state_to_pb(state) as i32, purged_at }
}

pub fn access_to_pb(r: AccessRecord) -> pb::AccessRecord {
    pb::AccessRecord {
        access_id: r.access_id,
        user_id: r.user_id,
        caller: r.caller,
        purpose: purpose_to_pb(r.purpose) as i32,
        at: r.at,
        events: r
            .events
            .into_iter()
            .map(|e| pb::AccessedEvent {
                source_id: e.source_id,
                event_id: e.event_id,
                consent_version: e.consent_version,
            })
            .collect(),
    }
}

pub fn exported_to_pb(r: EventRecord) -> pb::ExportedEvent {
    pb::ExportedEvent {
        event: Some(event_to_pb(r.event)),
        text: r.text,
        ingested_at: r.ingested_at,
        content_hash: r.content_hash,
    }
}

fn unknown_enum(field: &str, value: i32) -> FieldError {
    FieldError { field: field.to_string(), message: format!("unknown value {value}") }
}

fn ranking_from_pb(r: pb::RankingOptions) -> Result<RankingOverrides, FieldError> {
    let mode = match pb::RetrievalMode::try_from(r.mode).map_err(|_| unknown_enum("ranking.mode", r.mode))? {
        pb::RetrievalMode::Unspecified => None,
        pb::RetrievalMode::Dense => Some(RetrievalMode::Dense),
        pb::RetrievalMode::Sparse => Some(RetrievalMode::Sparse),
        pb::RetrievalMode::Hybrid => Some(RetrievalMode::Hybrid),
    };
    let policy = r.injection_policy;
    let injection_policy =
        match pb::InjectionPolicy::try_from(policy).map_err(|_| unknown_enum("ranking.injection_policy", policy))? {
            pb::InjectionPolicy::Unspecified => None,
            pb::InjectionPolicy::Drop => Some(InjectionPolicy::Drop),
            pb::InjectionPolicy::Neutralize => Some(InjectionPolicy::Neutralize),
        };
    let mut half_life_days: Vec<(String, f64)> = r.half_life_days.into_iter().collect();
    half_life_days.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(RankingOverrides {
        mode,
        recency: r.recency,
        half_life_days,
        collapse: r.collapse,
        diversity: r.diversity,
        min_score: r.min_score,
        injection_policy,
    })
}

pub fn context_request_from_pb(r: pb::GetContextRequest, caller: String) -> Result<ContextRequest, FieldError> {
    let window = r.time_window.unwrap_or_default();
    Ok(ContextRequest {
        user_id: r.user_id,
        purpose: purpose_from_pb(r.purpose),
        caller,
        query: r.query,
        max_snippets: r.max_snippets as usize,
        max_tokens: r.max_tokens as usize,
        start_time: (window.start_time != 0).then_some(window.start_time),
        end_time: (window.end_time != 0).then_some(window.end_time),
        event_names: r.event_names,
        event_families: r.event_families,
        source_ids: r.source_ids,
        ranking: ranking_from_pb(r.ranking.unwrap_or_default())?,
        exact_search: false,
    })
}

pub fn snippet_to_pb(s: Snippet) -> pb::Snippet {
    pb::Snippet {
        text: s.text,
        score: s.score,
        provenance: Some(provenance_to_pb(s.provenance)),
        citation_id: s.citation_id,
        family: s.family,
        occurrences: s.occurrences,
        first_event_time: s.first_event_time,
        collapsed_event_ids: s.collapsed_event_ids,
        flags: s.flags,
    }
}

fn stats_to_pb(s: ContextStats) -> pb::ContextStats {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    pb::ContextStats {
        candidates: n(s.candidates),
        consent_removed: n(s.consent_removed),
        below_min_score: n(s.below_min_score),
        collapsed: n(s.collapsed),
        flagged: n(s.flagged),
        dropped_injection: n(s.dropped_injection),
        dropped_budget: n(s.dropped_budget),
        tokens_used: n(s.tokens_used),
        token_budget: n(s.token_budget),
        embedding_cached: s.embedding_cached,
        latency: Some(pb::LatencyBreakdown {
            embed_us: s.embed_us,
            search_us: s.search_us,
            rank_us: s.rank_us,
            render_us: s.render_us,
            total_us: s.total_us,
            ledger_us: s.ledger_us,
            access_log_us: s.access_log_us,
        }),
    }
}

pub fn answer_to_pb(a: ContextAnswer) -> pb::GetContextResponse {
    pb::GetContextResponse {
        snippets: a.snippets.into_iter().map(snippet_to_pb).collect(),
        rendered_context: a.rendered_context,
        stats: Some(stats_to_pb(a.stats)),
    }
}

pub fn outcome_to_pb(index: u32, event_id: String, outcome: EventOutcome) -> pb::EventResult {
    match outcome {
        EventOutcome::Accepted { point_id, text } => pb::EventResult {
            index,
            event_id,
            status: pb::IngestStatus::Accepted as i32,
            point_id,
            text,
            ..Default::default()
        },
        EventOutcome::Rejected { reason, field, message } => pb::EventResult {
            index,
            event_id,
            status: pb::IngestStatus::Rejected as i32,
            reason: match reason {
                RejectReason::InvalidField => pb::RejectReason::InvalidField,
                RejectReason::DuplicateInBatch => pb::RejectReason::DuplicateInBatch,
                RejectReason::NoConsent => pb::RejectReason::NoConsent,
                RejectReason::LimitedDataUse => pb::RejectReason::LimitedDataUse,
            } as i32,
            field,
            message,
            ..Default::default()
        },
    }
}

fn policy_from_pb(field: &str, value: i32) -> Result<Option<InjectionPolicy>, FieldError> {
    Ok(match pb::InjectionPolicy::try_from(value).map_err(|_| unknown_enum(field, value))? {
        pb::InjectionPolicy::Unspecified => None,
        pb::InjectionPolicy::Drop => Some(InjectionPolicy::Drop),
        pb::InjectionPolicy::Neutralize => Some(InjectionPolicy::Neutralize),
    })
}

pub fn rank_items_from_pb(r: pb::RankItemsRequest, caller: String) -> RankItemsRequest {
    RankItemsRequest {
        user_id: r.user_id,
        purpose: purpose_from_pb(r.purpose),
        caller,
        items: r
            .items
            .into_iter()
            .map(|i| FeedItem { item_id: i.item_id, text: i.text, category: i.category, source_id: i.source_id })
            .collect(),
        evidence_items: r.evidence_items as usize,
        evidence_per_item: r.evidence_per_item as usize,
    }
}

fn provenance_to_pb(p: Provenance) -> pb::Provenance {
    pb::Provenance {
        source_id: p.source_id,
        event_id: p.event_id,
        event_name: p.event_name,
        event_time: p.event_time,
        ingested_at: p.ingested_at,
        point_id: p.point_id,
        content_hash: p.content_hash,
        consent_version: p.consent_version,
    }
}

pub fn rank_items_to_pb(a: RankItemsAnswer) -> pb::RankItemsResponse {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    pb::RankItemsResponse {
        items: a
            .items
            .into_iter()
            .map(|i| pb::RankedItem {
                item_id: i.item_id,
                score: i.score,
                rank: n(i.rank),
                similarity: i.similarity,
                category_affinity: i.category_affinity,
                source_affinity: i.source_affinity,
                evidence: i
                    .evidence
                    .into_iter()
                    .map(|e| pb::ItemEvidence {
                        text: e.text,
                        provenance: Some(provenance_to_pb(e.provenance)),
                        similarity: e.similarity,
                        recency: e.recency,
                    })
                    .collect(),
            })
            .collect(),
        stats: Some(pb::RankItemsStats {
            events_considered: n(a.stats.events_considered),
            items_embedded: n(a.stats.items_embedded),
            items_cached: n(a.stats.items_cached),
            embed_us: a.stats.embed_us,
            fetch_us: a.stats.fetch_us,
            score_us: a.stats.score_us,
            total_us: a.stats.total_us,
            consent_removed: n(a.stats.consent_removed),
            activity_truncated: a.stats.activity_truncated,
        }),
    }
}

pub fn proactive_from_pb(r: pb::GetProactiveContextRequest, caller: String) -> Result<ProactiveRequest, FieldError> {
    Ok(ProactiveRequest {
        user_id: r.user_id,
        purpose: purpose_from_pb(r.purpose),
        caller,
        max_snippets: r.max_snippets as usize,
        max_tokens: r.max_tokens as usize,
        horizon_days: r.horizon_days,
        recent_days: r.recent_days,
        injection_policy: policy_from_pb("injection_policy", r.injection_policy)?,
    })
}

pub fn proactive_to_pb(a: ProactiveAnswer) -> pb::GetProactiveContextResponse {
    pb::GetProactiveContextResponse {
        items: a
            .items
            .into_iter()
            .map(|i| pb::ProactiveItem {
                snippet: Some(snippet_to_pb(i.snippet)),
                reason: match i.reason {
                    Reason::Upcoming => pb::ProactiveReason::Upcoming,
                    Reason::RecentPurchase => pb::ProactiveReason::RecentPurchase,
                    Reason::Interest => pb::ProactiveReason::Interest,
                } as i32,
                due_time: i.due_time,
                cluster_size: u32::try_from(i.cluster_size).unwrap_or(u32::MAX),
            })
            .collect(),
        rendered_context: a.rendered_context,
        stats: Some(stats_to_pb(a.stats)),
    }
}
