//! `context_engine.v1.ContextEngine` over an [`Engine`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{authorize, Principal, Role, Rpc};
use super::convert::{
    answer_to_pb, context_request_from_pb, event_from_pb, outcome_to_pb, proactive_from_pb, proactive_to_pb,
    rank_items_from_pb, rank_items_to_pb,
};
use super::status::to_status;
use crate::engine::{Engine, EngineError};
use crate::pb;
use crate::pb::context_engine_server::ContextEngine;

/// Events over one `IngestStream` call. A stream is all or nothing for what
/// the server refuses (a foreign source, an undecodable message, a bound
/// passed): it is held in memory until the client closes it and only then
/// ingested, so these two bounds also bound that memory.
pub const MAX_STREAM_EVENTS: usize = 100_000;
/// Encoded bytes held for one `IngestStream` call (see [`MAX_STREAM_EVENTS`]).
pub const MAX_STREAM_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct ContextService {
    engine: Arc<Engine>,
}

impl ContextService {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A business may only send its own events; one foreign event refuses the
/// whole request, so nothing of a spoofed batch is stored.
fn check_sources(principal: &Principal, events: &[pb::ActivityEvent], base: usize) -> Result<(), Status> {
    if let Role::Business { source_id } = &principal.role {
        if let Some((i, e)) = events.iter().enumerate().find(|(_, e)| &e.source_id != source_id) {
            return Err(Status::permission_denied(format!(
                "events[{}].source_id: {} may only ingest events with source_id {source_id:?}, got {:?}; nothing was \
                 stored",
                base + i,
                principal.name(),
                e.source_id
            )));
        }
    }
    Ok(())
}

/// Runs one batch; returns the per-event results (indexes offset by `base`).
async fn ingest_batch(
    engine: &Engine,
    principal: &Principal,
    events: Vec<pb::ActivityEvent>,
    base: u32,
) -> Result<Vec<pb::EventResult>, Status> {
    check_sources(principal, &events, base as usize)?;
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let events = events.into_iter().map(event_from_pb).collect();
    let outcomes = engine.ingest(events, now()).await.map_err(to_status)?;
    Ok(outcomes
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (outcome, id))| outcome_to_pb(base + i as u32, id, outcome))
        .collect())
}

fn is_accepted(r: &pb::EventResult) -> bool {
    r.status == pb::IngestStatus::Accepted as i32
}

#[tonic::async_trait]
impl ContextEngine for ContextService {
    async fn ingest(&self, request: Request<pb::IngestRequest>) -> Result<Response<pb::IngestResponse>, Status> {
        let principal = authorize(&request, Rpc::Ingest)?;
        let results = ingest_batch(&self.engine, &principal, request.into_inner().events, 0).await?;
        let accepted = results.iter().filter(|r| is_accepted(r)).count() as u32;
        let rejected = results.len() as u32 - accepted;
        Ok(Response::new(pb::IngestResponse { results, accepted, rejected }))
    }

    async fn ingest_stream(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<pb::IngestResponse>, Status> {
        let principal = authorize(&request, Rpc::IngestStream)?;
        let mut stream = request.into_inner();
        // Checked as the messages arrive, stored only once the stream ended
        // cleanly: a refusal in its tenth message leaves nothing of the
        // first nine behind, like one unary request.
        let (mut held, mut events, mut bytes) = (Vec::new(), 0usize, 0usize);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|status| {
                // A message the decoder refuses (invalid UTF-8, a malformed
                // field, over the size limit) is the caller's error.
                let code = match status.code() {
                    tonic::Code::Internal if status.message().starts_with("failed to decode Protobuf message") => {
                        tonic::Code::InvalidArgument
                    }
                    tonic::Code::OutOfRange => tonic::Code::ResourceExhausted,
                    code => code,
                };
                Status::new(code, format!("request message {}: {}; nothing was stored", held.len(), status.message()))
            })?;
            if events + batch.events.len() > MAX_STREAM_EVENTS {
                return Err(Status::invalid_argument(format!(
                    "events: a stream carries at most {MAX_STREAM_EVENTS} events; nothing was stored; \
                     split the load into several streams"
                )));
            }
            bytes += prost::Message::encoded_len(&batch);
            if bytes > MAX_STREAM_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "a stream carries at most {MAX_STREAM_BYTES} bytes of events; nothing was stored; split the \
                     load into several streams"
                )));
            }
            check_sources(&principal, &batch.events, events)?;
            events += batch.events.len();
            held.push(batch.events);
        }
        let (mut seen, mut accepted, mut rejected_results) = (0u32, 0u32, Vec::new());
        for batch in held {
            let results = ingest_batch(&self.engine, &principal, batch, seen).await.map_err(|status| {
                Status::new(
                    status.code(),
                    format!("{} ({accepted} events of earlier messages were accepted)", status.message()),
                )
            })?;
            seen += results.len() as u32;
            for result in results {
                if is_accepted(&result) {
                    accepted += 1;
                } else {
                    rejected_results.push(result);
                }
            }
        }
        let rejected = rejected_results.len() as u32;
        Ok(Response::new(pb::IngestResponse { results: rejected_results, accepted, rejected }))
    }

    async fn get_context(
        &self,
        request: Request<pb::GetContextRequest>,
    ) -> Result<Response<pb::GetContextResponse>, Status> {
        let principal = authorize(&request, Rpc::GetContext)?;
        let request = context_request_from_pb(request.into_inner(), principal.name())
            .map_err(|e| to_status(EngineError::from(e)))?;
        let answer = self.engine.get_context(request, now()).await.map_err(to_status)?;
        Ok(Response::new(answer_to_pb(answer)))
    }

    async fn rank_items(
        &self,
        request: Request<pb::RankItemsRequest>,
    ) -> Result<Response<pb::RankItemsResponse>, Status> {
        let principal = authorize(&request, Rpc::RankItems)?;
        let request = rank_items_from_pb(request.into_inner(), principal.name());
        let answer = self.engine.rank_items(request, now()).await.map_err(to_status)?;
        Ok(Response::new(rank_items_to_pb(answer)))
    }

    async fn get_proactive_context(
        &self,
        request: Request<pb::GetProactiveContextRequest>,
    ) -> Result<Response<pb::GetProactiveContextResponse>, Status> {
        let principal = authorize(&request, Rpc::GetProactiveContext)?;
        let request =
            proactive_from_pb(request.into_inner(), principal.name()).map_err(|e| to_status(EngineError::from(e)))?;
        let answer = self.engine.proactive_context(request, now()).await.map_err(to_status)?;
        Ok(Response::new(proactive_to_pb(answer)))
    }

    async fn embed(&self, request: Request<pb::EmbedRequest>) -> Result<Response<pb::EmbedResponse>, Status> {
        authorize(&request, Rpc::Embed)?;
        let vectors = self.engine.embed(request.into_inner().texts).await.map_err(to_status)?;
        let embedder = self.engine.embedder();
        Ok(Response::new(pb::EmbedResponse {
            vectors: vectors.into_iter().map(|values| pb::Vector { values }).collect(),
            model: embedder.model_id().to_string(),
            dimension: embedder.dimension() as u32,
        }))
    }
}
