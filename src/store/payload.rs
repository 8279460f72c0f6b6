//! The JSON payload layout of an event point and the Qdrant filter JSON for a
//! [`StoreFilter`]. Shared by every Qdrant backend so they store and filter
//! identically. Qdrant's own types deserialize from this JSON (the REST
//! API's format), which keeps us off its internal constructors.

use serde_json::{json, Map, Value};

use super::{StoreError, StoreFilter, SCHEMA_VERSION};
use crate::domain::EventRecord;

/// Fields with a payload index, and the index each gets.
pub fn indexes() -> [(&'static str, Value); 4] {
    [
        // Tenant index: points of one user are stored together, and a
        // user-filtered search touches only them.
        ("user_id", json!({"type": "keyword", "is_tenant": true})),
        ("source_id", json!({"type": "keyword"})),
        ("event_name", json!({"type": "keyword"})),
        (
            "event_time",
            json!({"type": "integer", "lookup": false, "range": true}),
        ),
    ]
}

/// Flat, indexed copies of the fields filters use, next to the full record.
pub fn to_payload(record: &EventRecord) -> Result<Map<String, Value>, StoreError> {
    let record_json = serde_json::to_value(record).map_err(|e| StoreError::Backend {
        operation: "encode payload",
        message: e.to_string(),
    })?;
    let mut map = Map::new();
    map.insert("user_id".into(), json!(record.event.user_id));
    map.insert("source_id".into(), json!(record.event.source_id));
    map.insert("event_name".into(), json!(record.event.event_name));
    map.insert("event_time".into(), json!(record.event.event_time));
    map.insert("schema".into(), json!(SCHEMA_VERSION));
    map.insert("record".into(), record_json);
    Ok(map)
}

pub fn from_payload(id: &str, mut payload: Map<String, Value>) -> Result<EventRecord, StoreError> {
    let record = payload
        .remove("record")
        .ok_or_else(|| StoreError::CorruptPayload {
            id: id.to_string(),
            message: "no `record` field".into(),
        })?;
    serde_json::from_value(record).map_err(|e| StoreError::CorruptPayload {
        id: id.to_string(),
        message: e.to_string(),
    })
}

/// The one translation of a [`StoreFilter`] into a Qdrant filter. The user
/// condition is unconditional.
pub fn filter_json(filter: &StoreFilter) -> Value {
    let mut must = vec![json!({"key": "user_id", "match": {"value": filter.user_id()}})];
    if !filter.source_ids.is_empty() {
        must.push(json!({"key": "source_id", "match": {"any": filter.source_ids}}));
    }
    if !filter.event_names.is_empty() {
        must.push(json!({"key": "event_name", "match": {"any": filter.event_names}}));
    }
    let window = filter.time_window;
    if window.start.is_some() || window.end.is_some() {
        let mut range = Map::new();
        if let Some(start) = window.start {
            range.insert("gte".into(), json!(start));
        }
        if let Some(end) = window.end {
            range.insert("lte".into(), json!(end));
        }
        must.push(json!({"key": "event_time", "range": range}));
    }
    json!({ "must": must })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TimeWindow;

    #[test]
    fn user_condition_is_always_first() {
        let mut f = StoreFilter::for_user("u1");
        assert_eq!(
            filter_json(&f),
            json!({"must": [{"key": "user_id", "match": {"value": "u1"}}]})
        );
        f.source_ids = vec!["a".into()];
        f.time_window = TimeWindow {
            start: Some(10),
            end: None,
        };
        let v = filter_json(&f);
        assert_eq!(v["must"][0]["match"]["value"], "u1");
        assert_eq!(v["must"][1]["match"]["any"], json!(["a"]));
        assert_eq!(v["must"][2]["range"], json!({"gte": 10}));
    }
}
