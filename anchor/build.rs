//! Compiles `proto/admin.proto` (the admin gRPC API) into Rust in `OUT_DIR`.
//!
//! No `protoc` is needed: `protox`, a protobuf compiler written in Rust,
//! parses the file into a `FileDescriptorSet`, from which `tonic-prost-build`
//! generates the messages, the server trait and a transport-agnostic client
//! (no `connect()`: `src/admin_client.rs` builds its own channel). The
//! encoded `FileDescriptorSet` is written to `OUT_DIR/admin_descriptor.bin`
//! for gRPC server reflection (`src/admin.rs`).

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/admin.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("admin_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
