//! `context_engine.v1.Privacy`: consent, erasure, access log and export, for
//! a privacy service acting for people (role `privacy`).

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::auth::{authorize, Rpc};
use super::convert::{
    access_to_pb, erasure_status_to_pb, exported_to_pb, grant_to_pb, purpose_from_pb, receipt_to_pb, state_from_pb,
};
use super::service::now;
use super::status::to_status;
use crate::engine::Engine;
use crate::pb;
use crate::pb::privacy_server::Privacy;

/// Events per `ExportUser` message: small enough to stay far below the
/// message size limit.
const EXPORT_PAGE: usize = 500;
/// Pages buffered between the exporting task and a slow client.
const EXPORT_BUFFER: usize = 4;

#[derive(Debug, Clone)]
pub struct PrivacyService {
    engine: Arc<Engine>,
}

impl PrivacyService {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportUserResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Privacy for PrivacyService {
    async fn set_consent(
        &self,
        request: Request<pb::SetConsentRequest>,
    ) -> Result<Response<pb::SetConsentResponse>, Status> {
        authorize(&request, Rpc::SetConsent)?;
        let r = request.into_inner();
        let change = self
            .engine
            .set_consent(&r.user_id, &r.source_id, purpose_from_pb(r.purpose), state_from_pb(r.state), now())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SetConsentResponse {
            grant: Some(grant_to_pb(change.grant)),
            changed: change.changed,
            purged_events: change.purged_events as u64,
            purge_ticket: change.purge_ticket,
        }))
    }

    async fn list_consents(
        &self,
        request: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        authorize(&request, Rpc::ListConsents)?;
        let grants = self.engine.list_consents(&request.into_inner().user_id).await.map_err(to_status)?;
        Ok(Response::new(pb::ListConsentsResponse { grants: grants.into_iter().map(grant_to_pb).collect() }))
    }

    async fn erase_user(&self, request: Request<pb::EraseUserRequest>) -> Result<Response<pb::ErasureReceipt>, Status> {
        authorize(&request, Rpc::EraseUser)?;
        let receipt = self.engine.erase_user(&request.into_inner().user_id, now()).await.map_err(to_status)?;
        Ok(Response::new(receipt_to_pb(receipt)))
    }

    async fn get_erasure_status(
        &self,
        request: Request<pb::GetErasureStatusRequest>,
    ) -> Result<Response<pb::ErasureStatus>, Status> {
        authorize(&request, Rpc::GetErasureStatus)?;
        let ticket = request.into_inner().purge_ticket;
        let state = self.engine.erasure_status(ticket).await.map_err(to_status)?;
        Ok(Response::new(erasure_status_to_pb(ticket, state)))
    }

    async fn explain_access(
        &self,
        request: Request<pb::ExplainAccessRequest>,
    ) -> Result<Response<pb::ExplainAccessResponse>, Status> {
        authorize(&request, Rpc::ExplainAccess)?;
        let r = request.into_inner();
        let records = self.engine.explain_access(&r.user_id, r.limit as usize).await.map_err(to_status)?;
        Ok(Response::new(pb::ExplainAccessResponse { records: records.into_iter().map(access_to_pb).collect() }))
    }

    type ExportUserStream = ExportStream;

    /// Streams the user's consents, then their events in pages. The first
    /// page is read before the stream starts, so a bad request fails as a
    /// plain error.
    async fn export_user(&self, request: Request<pb::ExportUserRequest>) -> Result<Response<ExportStream>, Status> {
        authorize(&request, Rpc::ExportUser)?;
        let user_id = request.into_inner().user_id;
        let consents = self.engine.list_consents(&user_id).await.map_err(to_status)?;
        let first = self.engine.export_page(&user_id, None, EXPORT_PAGE).await.map_err(to_status)?;
        // Bounded: the exporter runs at most a few pages ahead of the client.
        let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_BUFFER);
        let engine = Arc::clone(&self.engine);
        tokio::spawn(async move {
            let mut page = first;
            let mut consents = consents.into_iter().map(grant_to_pb).collect();
            loop {
                let message = pb::ExportUserResponse {
                    events: page.records.into_iter().map(|(_, r)| exported_to_pb(r)).collect(),
                    consents: std::mem::take(&mut consents),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return; // the client went away
                }
                let Some(from) = page.next else { return };
                match engine.export_page(&user_id, Some(from), EXPORT_PAGE).await {
                    Ok(next) => page = next,
                    Err(e) => {
                        let _ = tx.send(Err(to_status(e))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}
