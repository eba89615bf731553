//! Generate the messages and the tonic client from `protos/` at build time.
//!
//! protox parses the `.proto` files in Rust, so neither protoc nor a protoc
//! plugin has to be installed; tonic-prost-build then writes
//! `execution.v1.rs` (prost messages with the tonic client inside) into
//! `OUT_DIR`, where `src/lib.rs` includes it. Nothing generated is committed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protos");
    let proto = protos.join("execution/v1/execution.proto");
    // Rebuild when any proto changes (a directory is watched for every file in it).
    println!("cargo:rerun-if-changed={}", protos.display());
    // protox::compile keeps the proto's comments (source info), so the generated
    // types carry the API manual's documentation; the well-known types
    // (google/protobuf/timestamp.proto) are built into protox.
    let descriptors = protox::compile([&proto], [&protos])?;
    tonic_prost_build::configure()
        // A client library: no server traits (and no server features of tonic).
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
