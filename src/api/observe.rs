//! The one tower layer in front of every gRPC service: request ids, a
//! tracing span per call, per-RPC metrics, and the server-wide in-flight
//! limit.
//!
//! Why not tower's `LoadShed` + `GlobalConcurrencyLimit`: they counted
//! health checks against the limit (so an overloaded engine also failed its
//! liveness probe, and a load balancer would pull a replica that was merely
//! busy), and a shed call never reached anything that could count it. This
//! layer exempts `grpc.health.v1` and counts every refusal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::Semaphore;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::metrics;

/// Header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// RPC names that may appear as a metric label; anything else is `other`,
/// so a client probing random paths cannot grow the label set.
const KNOWN_RPCS: &[&str] = &[
    "Ingest",
    "IngestStream",
    "GetContext",
    "Embed",
    "RankItems",
    "GetProactiveContext",
    "SetConsent",
    "ListConsents",
    "EraseUser",
    "GetErasureStatus",
    "ExplainAccess",
    "ExportUser",
    "ServerReflectionInfo",
];

#[derive(Clone)]
pub struct ObserveLayer {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

impl ObserveLayer {
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self { permits: Arc::new(Semaphore::new(max_in_flight)), max_in_flight }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, permits: self.permits.clone(), max_in_flight: self.max_in_flight }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

type ResponseBody = tonic::body::Body;

/// A client-supplied id is kept when it is short and plain; otherwise (or
/// when absent) a fresh UUID is used. Either way it is echoed back.
fn request_id<B>(request: &http::Request<B>) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// `/package.Service/Method` → `Method` when it is one of ours.
fn rpc_name(path: &str) -> &'static str {
    let method = path.rsplit('/').next().unwrap_or("");
    KNOWN_RPCS.iter().find(|known| **known == method).copied().unwrap_or("other")
}

/// The gRPC code of a response: in its headers for an error (trailers-only
/// response), absent (OK so far; trailers follow the body) otherwise.
fn response_code(response: &http::Response<ResponseBody>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok)
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// tonic answers a request message it cannot decode with INTERNAL (prost's
/// parse errors, invalid UTF-8 in a string field among them) and one over
/// the size limit with OUT_OF_RANGE. Both are the caller's fault: they are
/// rewritten to INVALID_ARGUMENT and RESOURCE_EXHAUSTED, with the decoder's
/// reason kept in the message. Only trailers-only responses (the error is
/// in the headers) are candidates; a handler's own statuses never carry
/// these messages.
fn client_error(response: http::Response<ResponseBody>) -> http::Response<ResponseBody> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else { return response };
    let message = status.message();
    let code = match status.code() {
        tonic::Code::Internal if message.starts_with("failed to decode Protobuf message") => {
            tonic::Code::InvalidArgument
        }
        tonic::Code::OutOfRange if message.contains("decoded message length too large") => {
            tonic::Code::ResourceExhausted
        }
        _ => return response,
    };
    tonic::Status::new(code, format!("request message: {message}")).into_http()
}

fn with_request_id(mut response: http::Response<ResponseBody>, id: &str) -> http::Response<ResponseBody> {
    if let Ok(value) = http::HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResponseBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<ResponseBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready handles this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Health checks bypass limits and metrics: they must answer while
        // the engine is saturated, and they are polled far too often to be
        // worth a series.
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(inner.call(request));
        }
        let rpc = rpc_name(request.uri().path());
        let id = request_id(&request);
        let m = metrics();
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            m.rpc_shed.with_label_values(&[rpc]).inc();
            m.rpc_requests.with_label_values(&[rpc, code_name(tonic::Code::ResourceExhausted)]).inc();
            tracing::debug!(request_id = %id, rpc, "shed: in-flight limit reached");
            let status = tonic::Status::resource_exhausted(format!(
                "the server is handling its maximum of {} calls; retry with backoff",
                self.max_in_flight
            ));
            let response = with_request_id(status.into_http(), &id);
            return Box::pin(async move { Ok(response) });
        };
        let span = tracing::info_span!("rpc", rpc, request_id = %id);
        let started = Instant::now();
        m.rpc_in_flight.inc();
        let future = inner.call(request);
        Box::pin(
            async move {
                let result = future.await;
                drop(permit);
                m.rpc_in_flight.dec();
                let elapsed = started.elapsed();
                match result {
                    Ok(response) => {
                        let response = client_error(response);
                        let code = response_code(&response);
                        let name = code_name(code);
                        m.rpc_requests.with_label_values(&[rpc, name]).inc();
                        m.rpc_duration.with_label_values(&[rpc, name]).observe(elapsed.as_secs_f64());
                        if matches!(code, tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss) {
                            tracing::warn!(code = name, elapsed_ms = elapsed.as_millis() as u64, "call failed");
                        } else {
                            tracing::debug!(code = name, elapsed_ms = elapsed.as_millis() as u64, "call answered");
                        }
                        Ok(with_request_id(response, &id))
                    }
                    Err(e) => {
                        m.rpc_requests.with_label_values(&[rpc, "TRANSPORT_ERROR"]).inc();
                        tracing::warn!(elapsed_ms = elapsed.as_millis() as u64, "call failed in transport");
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_labels_are_bounded() {
        assert_eq!(rpc_name("/context_engine.v1.ContextEngine/GetContext"), "GetContext");
        assert_eq!(rpc_name("/context_engine.v1.Privacy/EraseUser"), "EraseUser");
        assert_eq!(rpc_name("/x.Y/user-4711-secret"), "other");
        assert_eq!(rpc_name(""), "other");
    }

    /// Every method of our services gets its own label (a new RPC added to
    /// the proto but not to `KNOWN_RPCS` would be counted as `other`).
    #[test]
    fn every_proto_method_has_a_label() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let methods: Vec<String> =
            set.file.iter().flat_map(|f| &f.service).flat_map(|s| &s.method).filter_map(|m| m.name.clone()).collect();
        assert!(methods.len() >= 9, "{methods:?}");
        for method in methods {
            assert_eq!(rpc_name(&format!("/context_engine.v1.X/{method}")), method, "{method} has no metric label");
        }
    }

    #[test]
    fn request_ids_from_clients_are_kept_only_when_plain() {
        let with = |v: &str| http::Request::builder().header(REQUEST_ID_HEADER, v).body(()).unwrap();
        assert_eq!(request_id(&with("turn-42.a:b_c")), "turn-42.a:b_c");
        for bad in ["", "has space", "ünïcode", &"x".repeat(65)] {
            let id = request_id(&with(bad));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        let none = request_id(&http::Request::builder().body(()).unwrap());
        assert!(uuid::Uuid::parse_str(&none).is_ok());
    }
}
