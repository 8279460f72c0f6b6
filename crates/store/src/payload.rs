//! The JSON payload layouts (events, consent ledger, access log) and the
//! Qdrant filter JSON for a [`Scope`]. Shared by every Qdrant backend so they
//! store and filter identically. Qdrant's own types deserialize from this JSON
//! (the REST API's format), which keeps us off its internal constructors.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::{StoreError, SCHEMA_VERSION};
use ce_core::domain::{AccessRecord, ConsentGrant, EventRecord, Scope, SourceScope};

/// Fields with a payload index on event points, and the index each gets.
pub fn event_indexes() -> Vec<(&'static str, Value)> {
    vec![
        // Tenant index: one user's points are stored together, and a
        // user-filtered search touches only them.
        ("user_id", json!({"type": "keyword", "is_tenant": true})),
        // Filters only: no HNSW sub-graphs per source, name or family
        // (those are built for every value of an indexed field otherwise).
        ("source_id", json!({"type": "keyword", "enable_hnsw": false})),
        ("event_name", json!({"type": "keyword", "enable_hnsw": false})),
        ("family", json!({"type": "keyword", "enable_hnsw": false})),
        ("event_time", json!({"type": "integer", "lookup": false, "range": true, "enable_hnsw": false})),
    ]
}

/// Indexes of the consent ledger.
pub fn consent_indexes() -> Vec<(&'static str, Value)> {
    vec![("user_id", json!({"type": "keyword", "is_tenant": true}))]
}

/// Indexes of the access log (`at` orders a user's records).
pub fn access_indexes() -> Vec<(&'static str, Value)> {
    vec![
        ("user_id", json!({"type": "keyword", "is_tenant": true})),
        ("at", json!({"type": "integer", "lookup": false, "range": true})),
    ]
}

/// The full record as one JSON string field. Reading a payload back is most
/// of a search's cost (the store parses every payload into a JSON tree):
/// one string instead of a nested object makes that parse a single scan, and
/// ours a typed parse. Records written as nested objects (stores made before
/// 2026-11-29) still read; see [`from_payload`].
fn encode<T: Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_string(value)
        .map(Value::String)
        .map_err(|e| StoreError::Backend { operation: "encode payload", message: e.to_string() })
}

/// Flat, indexed copies of the fields filters use, next to the full record.
pub fn event_payload(record: &EventRecord) -> Result<Map<String, Value>, StoreError> {
    let mut map = Map::new();
    map.insert("user_id".into(), json!(record.event.user_id));
    map.insert("source_id".into(), json!(record.event.source_id));
    map.insert("event_name".into(), json!(record.event.event_name));
    map.insert("family".into(), json!(record.event.family().as_str()));
    map.insert("event_time".into(), json!(record.event.event_time));
    map.insert("schema".into(), json!(SCHEMA_VERSION));
    map.insert("record".into(), encode(record)?);
    Ok(map)
}

pub fn consent_payload(grant: &ConsentGrant) -> Result<Map<String, Value>, StoreError> {
    let mut map = Map::new();
    map.insert("user_id".into(), json!(grant.user_id));
    // Top level, so a conditional write can filter on it (`put_consent_if`).
    map.insert("version".into(), json!(grant.version));
    map.insert("record".into(), encode(grant)?);
    Ok(map)
}

pub fn access_payload(record: &AccessRecord) -> Result<Map<String, Value>, StoreError> {
    let mut map = Map::new();
    map.insert("user_id".into(), json!(record.user_id));
    map.insert("at".into(), json!(record.at));
    map.insert("record".into(), encode(record)?);
    Ok(map)
}

/// Reads the `record` field of any of our payloads: a JSON string (current)
/// or a nested object (stores written before 2026-11-29).
pub fn from_payload<T: DeserializeOwned>(id: &str, mut payload: Map<String, Value>) -> Result<T, StoreError> {
    let record = payload
        .remove("record")
        .ok_or_else(|| StoreError::CorruptPayload { id: id.to_string(), message: "no `record` field".into() })?;
    match record {
        Value::String(text) => serde_json::from_str(&text),
        nested => serde_json::from_value(nested),
    }
    .map_err(|e| StoreError::CorruptPayload { id: id.to_string(), message: e.to_string() })
}

/// A page of event points from scrolled rows `(id, dense vector, payload)`;
/// with `vectors`, every row must carry its vector.
pub fn event_page(
    rows: impl IntoIterator<Item = (Uuid, Option<Vec<f32>>, Map<String, Value>)>,
    next: Option<Uuid>,
    vectors: bool,
) -> Result<crate::Page, StoreError> {
    let mut page = crate::Page { next, ..Default::default() };
    for (id, vector, payload) in rows {
        page.records.push((id, from_payload::<EventRecord>(&id.to_string(), payload)?));
        if vectors {
            page.vectors.push(
                vector.ok_or_else(|| StoreError::CorruptPayload {
                    id: id.to_string(),
                    message: "no dense vector".into(),
                })?,
            );
        }
    }
    Ok(page)
}

/// Ledger point id: one point per `(user, source, purpose)`.
pub fn consent_point_id(grant: &ConsentGrant) -> Uuid {
    ce_core::domain::point_id(
        &format!("consent\0{}", grant.user_id),
        &format!("{}\0{}", grant.source_id, grant.purpose.as_str()),
    )
}

/// Filter on the user only (ledger and access log).
pub fn user_filter_json(user_id: &str) -> Value {
    json!({ "must": [{"key": "user_id", "match": {"value": user_id}}] })
}

/// Filter on any of these users (ledger reads for an ingest batch).
pub fn users_filter_json(user_ids: &[String]) -> Value {
    json!({ "must": [{"key": "user_id", "match": {"any": user_ids}}] })
}

/// The one translation of a [`Scope`] into a Qdrant filter. The user
/// condition is unconditional. Callers must not search an empty scope (see
/// [`Scope::is_empty`]); it is still translated to a filter that matches
/// nothing rather than everything.
pub fn scope_filter_json(scope: &Scope) -> Value {
    let mut must = vec![json!({"key": "user_id", "match": {"value": scope.user_id()}})];
    match scope.sources() {
        SourceScope::AnySource => {}
        SourceScope::Only(sources) if sources.is_empty() => {
            must.push(json!({"has_id": []}));
        }
        SourceScope::Only(sources) => must.push(json!({"key": "source_id", "match": {"any": sources}})),
    }
    if !scope.event_names.is_empty() {
        must.push(json!({"key": "event_name", "match": {"any": scope.event_names}}));
    }
    if !scope.event_families.is_empty() {
        must.push(json!({"key": "family", "match": {"any": scope.event_families}}));
    }
    let window = scope.time_window;
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
    use ce_core::domain::TimeWindow;

    #[test]
    fn user_condition_is_always_first() {
        let scope = Scope::whole_user("u1");
        assert_eq!(scope_filter_json(&scope), json!({"must": [{"key": "user_id", "match": {"value": "u1"}}]}));
        let mut scope = Scope::user_sources("u1", vec!["a".into()]);
        scope.time_window = TimeWindow { start: Some(10), end: None };
        let v = scope_filter_json(&scope);
        assert_eq!(v["must"][0]["match"]["value"], "u1");
        assert_eq!(v["must"][1]["match"]["any"], json!(["a"]));
        assert_eq!(v["must"][2]["range"], json!({"gte": 10}));
    }

    #[test]
    fn records_are_one_string_field_and_nested_ones_still_read() {
        let record = EventRecord {
            event: ce_core::domain::ActivityEvent {
                event_id: "e1".into(),
                user_id: "u1".into(),
                source_id: "shop".into(),
                event_name: "Purchase".into(),
                event_time: 1_790_000_000,
                ..Default::default()
            },
            text: "Purchased \"boots\" — 2 × at Acme".into(),
            ingested_at: 1_790_000_100,
            content_hash: "h".into(),
            injection_score: Some(0.25),
            injection_head: Some("0123456789ab".into()),
        };
        let payload = event_payload(&record).unwrap();
        assert!(payload["record"].is_string(), "{payload:?}");
        assert_eq!(payload["user_id"], "u1", "filter fields stay flat");
        assert_eq!(from_payload::<EventRecord>("p", payload).unwrap(), record);
        // A store written before the change holds the record as an object.
        let mut old = event_payload(&record).unwrap();
        old.insert("record".into(), serde_json::to_value(&record).unwrap());
        assert_eq!(from_payload::<EventRecord>("p", old).unwrap(), record);
        let mut broken = event_payload(&record).unwrap();
        broken.insert("record".into(), json!("{not json"));
        assert!(matches!(from_payload::<EventRecord>("p", broken), Err(StoreError::CorruptPayload { .. })));
    }

    #[test]
    fn empty_source_list_matches_nothing() {
        let v = scope_filter_json(&Scope::user_sources("u1", vec![]));
        assert_eq!(v["must"][1], json!({"has_id": []}));
    }
}
