//! The one mapping from engine errors to gRPC status codes. Exhaustive on
//! purpose (no `_` arm): a new error variant does not compile until someone
//! decides its code.

use tonic::{Code, Status};

use crate::embed::EmbedError;
use crate::engine::EngineError;
use crate::store::StoreError;

pub fn to_status(err: EngineError) -> Status {
    let message = err.to_string();
    let code = match &err {
        EngineError::InvalidArgument { .. } => Code::InvalidArgument,
        EngineError::Embed(e) => match e {
            EmbedError::Overloaded { .. } => Code::ResourceExhausted,
            EmbedError::Stopped => Code::Unavailable,
            EmbedError::Model { .. } => Code::Internal,
            EmbedError::Load { .. } => Code::FailedPrecondition,
            EmbedError::DeviceUnavailable { .. } => Code::FailedPrecondition,
        },
        EngineError::Store(e) => match e {
            StoreError::Incompatible { .. } => Code::FailedPrecondition,
            StoreError::CorruptPayload { .. } => Code::DataLoss,
            StoreError::Backend { .. } => Code::Internal,
            StoreError::Unavailable { .. } => Code::Unavailable,
            StoreError::Closed => Code::Unavailable,
            StoreError::Conflict { .. } => Code::Aborted,
        },
    };
    Status::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let invalid = EngineError::InvalidArgument { field: "query".into(), message: "required".into() };
        let status = to_status(invalid);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("query"));
        assert_eq!(to_status(EmbedError::Overloaded { capacity: 1 }.into()).code(), Code::ResourceExhausted);
        assert_eq!(to_status(StoreError::Closed.into()).code(), Code::Unavailable);
        let down = StoreError::Unavailable { operation: "search", message: "connection refused".into() };
        assert_eq!(to_status(down.into()).code(), Code::Unavailable);
    }
}
