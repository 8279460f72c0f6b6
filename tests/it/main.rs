//! Integration tests: one binary, the real model, the real Qdrant Edge store
//! in a temporary directory, real gRPC on 127.0.0.1:0.

mod common;
mod consent;
mod grpc;
mod parity;
mod store;
