//! Integration tests: one binary, the real model, the real Qdrant Edge store
//! in a temporary directory, real gRPC on 127.0.0.1:0.

mod budget;
mod cluster;
mod common;
mod conformance;
mod consent;
mod crash;
mod erasure;
mod example;
mod feed;
mod grpc;
mod hostile;
mod observe;
mod parity;
mod ranking;
mod store;
