//! Domain types shared by every layer: activity events and their validation,
//! event families, stored records, context snippets and provenance.
//!
//! This module depends on nothing else in the crate and does no I/O; callers
//! pass `now` in. It deliberately knows nothing about protobuf, candle or
//! Qdrant: `api` converts to and from these types, `store` persists them.

mod access;
mod consent;
mod currency;
mod event;
mod ids;
mod record;
mod scope;

pub use access::{AccessRecord, AccessedEvent};
pub use consent::{ConsentGrant, ConsentState, Purpose};
pub use currency::is_iso_4217;
pub use scope::{Scope, SourceScope};

pub use event::{
    validate_user_id, ActivityEvent, Content, CustomData, EventFamily, FieldError, Limits, ACTION_SOURCES,
};
pub use ids::point_id;
pub use record::{ContextQuery, EventRecord, Provenance, RetrievalMode, Snippet, TimeWindow};
