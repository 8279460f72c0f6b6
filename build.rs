//! Compiles `proto/` into Rust with protox (a pure-Rust protobuf compiler, so no
//! `protoc` binary is needed) and tonic-prost-build, and writes the encoded
//! file descriptor set that the gRPC reflection service serves.

use std::path::PathBuf;

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/context_engine/v1/context_engine.proto";
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("context_engine_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}
