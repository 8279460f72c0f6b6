//! # ce-core: the engine's vocabulary and its pure logic
//!
//! Everything here is pure: no I/O, no clock reads (`now` is passed in), no
//! model, no store. It is what every other crate of the workspace speaks.
//!
//! * [`domain`]: `ActivityEvent` (Conversions-API shape) and its per-field
//!   validation, event families, `EventRecord`, `Snippet`, `Provenance`,
//!   deterministic point ids, `Purpose`, `ConsentGrant` (versioned
//!   transitions), `AccessRecord`, `Scope` (always one user).
//! * [`policy`]: the consent snapshot (ingest decision incl. LDU),
//!   `retrieval_scope` (the only builder of retrieval scopes), `post_check`.
//! * [`verbalize`]: typed event → one canonical sentence.
//! * [`rank`]: fusion, recency, collapse, MMR, and token-budget packing
//!   (screening each line through a `ce_screen::Screener`).
//! * [`block`]: the prompt-ready block format and the sanitising guarantee
//!   (`sanitize`, `neutralize`).
//!
//! Depends on `ce-screen` (the injection detector) and nothing else of the
//! workspace.

pub mod block;
pub mod domain;
pub mod policy;
pub mod rank;
pub mod verbalize;
