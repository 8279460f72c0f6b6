//! # context_engine: the server crate
//!
//! A consent-scoped context engine: businesses push people's permitted
//! off-platform activity as typed, Conversions-API-shaped events; the engine
//! turns each event into one canonical sentence (deterministic templates, no
//! LLM on the write path), embeds it with a BERT sentence model (our
//! `bert-cpu` kernels on CPU, candle on CUDA), stores it in Qdrant (Edge in
//! process, or a server), and answers "what is the best context for this
//! chat turn of this user?" with ranked, token-budgeted, prompt-safe
//! snippets that carry their provenance.
//!
//! ## Crates (one per layer; ARCHITECTURE.md)
//!
//! ```text
//!  context-engine (this crate: api, app, config, migrate, the binary)
//!      │
//!  ce-engine ──────────────┬──────────────┐
//!      │                   │              │
//!  ce-embed (bert-cpu)   ce-store       ce-core (domain, policy, verbalize, rank, block)
//!      │                   │   └──────────┤
//!  ce-metrics ◄────────────┘            ce-screen (the injection detector)
//!
//!  context-eval, context-bench ──► this crate, in process
//! ```
//!
//! Each crate depends only on the crates below it, so a wrong import is a
//! compile error. This crate owns the gRPC [`api`], the composition root
//! [`app`] (the only place that names concrete backends), the flags
//! ([`config`]), the store migration ([`migrate`]), the model-file check
//! ([`model_files`]), the budget tokenizer ([`tokens`]) and the metrics
//! endpoint ([`metrics`]). For the binaries, the evaluation tool, the
//! benchmarks and the integration tests it re-exports the layers under one
//! roof ([`domain`], [`policy`], [`verbalize`], [`rank`], [`render`],
//! [`embed`], [`store`], [`engine`]).

pub mod api;
pub mod app;
pub mod config;
pub mod metrics;
pub mod migrate;
pub mod model_files;
pub mod tokens;

pub use ce_core::{domain, policy, rank, verbalize};
pub use ce_embed as embed;
pub use ce_engine as engine;
pub use ce_store as store;

/// The prompt-safe block format (`ce_core::block`) and the injection
/// detector (`ce-screen`), under the name the layers had before the split.
pub mod render {
    pub use ce_core::block::*;
    pub use ce_screen::{
        learned, ngrams, screen, InjectionHead, NgramModel, NgramSpec, RuleScreener, Screener, Screening, Signal,
    };
}

/// Generated protobuf and gRPC code for `context_engine.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("context_engine.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/context_engine_descriptor.bin"));
}
