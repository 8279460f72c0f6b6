//! Protobuf ⇄ domain conversions. Mechanical by design: proto3 defaults
//! (empty strings, zero) map to "absent", and nothing is validated here; the
//! engine validates.

use crate::domain::{ActivityEvent, Content, CustomData, Snippet};
use crate::engine::{ContextRequest, EventOutcome, RejectReason};
use crate::pb;

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
                .map(|c| Content {
                    id: c.id,
                    quantity: c.quantity,
                    item_price: c.item_price,
                    title: c.title,
                })
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
                .map(|c| pb::Content {
                    id: c.id,
                    quantity: c.quantity,
                    item_price: c.item_price,
                    title: c.title,
                })
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

pub fn context_request_from_pb(r: pb::GetContextRequest) -> ContextRequest {
    let window = r.time_window.unwrap_or_default();
    ContextRequest {
        user_id: r.user_id,
        query: r.query,
        limit: r.limit as usize,
        start_time: (window.start_time != 0).then_some(window.start_time),
        end_time: (window.end_time != 0).then_some(window.end_time),
        event_names: r.event_names,
        source_ids: r.source_ids,
    }
}

pub fn snippet_to_pb(s: Snippet) -> pb::Snippet {
    let p = s.provenance;
    pb::Snippet {
        text: s.text,
        score: s.score,
        provenance: Some(pb::Provenance {
            source_id: p.source_id,
            event_id: p.event_id,
            event_name: p.event_name,
            event_time: p.event_time,
            ingested_at: p.ingested_at,
            point_id: p.point_id,
            content_hash: p.content_hash,
        }),
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
        EventOutcome::Rejected {
            reason,
            field,
            message,
        } => pb::EventResult {
            index,
            event_id,
            status: pb::IngestStatus::Rejected as i32,
            reason: match reason {
                RejectReason::InvalidField => pb::RejectReason::InvalidField,
                RejectReason::DuplicateInBatch => pb::RejectReason::DuplicateInBatch,
            } as i32,
            field,
            message,
            ..Default::default()
        },
    }
}
