//! The gRPC face of the engine: protobuf ⇄ domain conversion, the
//! `ContextEngine` service, gRPC health and reflection, and the one mapping
//! from engine errors to `Status`. No ranking, validation or storage logic
//! lives here.
//!
//! [`serve`] takes a bound listener and a shutdown future (mini-redis
//! style), so tests bind `127.0.0.1:0` and never sleep.

pub mod auth;
mod convert;
pub mod observe;
mod privacy;
mod service;
mod status;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::pb::context_engine_server::ContextEngineServer;
use crate::pb::privacy_server::PrivacyServer;

pub use auth::{ApiKeys, BearerKey};
pub use convert::{context_request_from_pb, event_from_pb, event_to_pb, purpose_to_pb, state_to_pb};
pub use privacy::PrivacyService;
pub use service::ContextService;
pub use status::to_status;

/// Largest request message accepted, in bytes. An ingest batch of 1000
/// events of typical size is ~1 MiB; 8 MiB leaves room for maximal events
/// while bounding what one request can make us buffer.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the engine (plus `grpc.health.v1` and reflection) on `listener`
/// until `shutdown` completes, then stops accepting and drains in-flight calls.
/// `keys` decides who may call what (empty: local development mode).
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    keys: ApiKeys,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with(listener, engine, keys, ServeOptions::default(), shutdown).await
}

/// Server-wide limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Calls being handled at once, all connections together (reflection
    /// included, health checks exempt); one more is refused at once with
    /// RESOURCE_EXHAUSTED instead of queueing.
    pub max_in_flight: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { max_in_flight: 256 }
    }
}

pub async fn serve_with(
    listener: TcpListener,
    engine: Arc<Engine>,
    keys: ApiKeys,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ContextEngineServer<ContextService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    health_reporter.set_serving::<PrivacyServer<PrivacyService>>().await;
    let service = ContextEngineServer::new(ContextService::new(engine.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let privacy = PrivacyServer::new(PrivacyService::new(engine))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let intercept = keys.interceptor();
    tonic::transport::Server::builder()
        // Request ids, spans, metrics, and the in-flight limit: a call
        // beyond it is refused with RESOURCE_EXHAUSTED, never queued.
        .layer(observe::ObserveLayer::new(options.max_in_flight))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(tonic::service::interceptor::InterceptedService::new(service, intercept.clone()))
        .add_service(tonic::service::interceptor::InterceptedService::new(privacy, intercept))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a small response waits for the client's
            // delayed ACK (Nagle): ~40 ms added to every unary call.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                shutdown.await;
                // Health turns NOT_SERVING before the listener closes, so a
                // load balancer polling it stops sending new calls; calls in
                // flight then finish (tonic drains them) and the caller
                // flushes the store.
                health_reporter.set_not_serving::<ContextEngineServer<ContextService>>().await;
                health_reporter.set_not_serving::<PrivacyServer<PrivacyService>>().await;
                tracing::info!("shutdown requested: health is NOT_SERVING, draining calls in flight");
            },
        )
        .await?;
    Ok(())
}
