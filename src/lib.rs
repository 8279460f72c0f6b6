//! # context_engine
//!
//! A consent-scoped context engine: businesses push people's permitted
//! off-platform activity as typed, Conversions-API-shaped events; the engine
//! turns each event into one canonical sentence (deterministic templates, no
//! LLM on the write path), embeds it with a candle BERT model, stores it in
//! Qdrant, and answers "what is the best context for this chat turn of this
//! user?" with ranked snippets that carry their provenance.
//!
//! ## Layers
//!
//! ```text
//!  gRPC (tonic) ──► api ──► Engine ──► embed  (Embedder trait; candle BERT; batching worker)
//!                             │──────► store  (VectorStore trait; Qdrant Edge)
//!                             └──────► verbalize + domain (validation, templates)
//!  eval (context-eval) ─────► the same Engine, in process
//! ```
//!
//! * [`domain`] and [`verbalize`] are pure: no I/O, no clock reads (`now` is
//!   passed in).
//! * [`embed`] and [`store`] depend on `domain` and their external crates only;
//!   no candle tensor leaves `embed`, no Qdrant type leaves `store`.
//! * [`engine`] is the one core both clients (the gRPC service and the eval
//!   binary) drive; [`api`] only converts protobuf ⇄ domain and maps errors.
//! * [`app`] is the composition root: the only module that names concrete
//!   backends.

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod embed;
pub mod engine;
pub mod metrics;
pub mod migrate;
pub mod model_files;
pub mod policy;
pub mod rank;
pub mod render;
pub mod store;
pub mod tokens;
pub mod verbalize;

/// Generated protobuf and gRPC code for `context_engine.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("context_engine.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/context_engine_descriptor.bin"));
}
