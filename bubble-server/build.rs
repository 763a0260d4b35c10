//! Generates the node-to-node gRPC service (`cluster.proto`), reusing the
//! client protocol's messages from `bubble_proto::pb`.

//! Only with the `cluster` feature: a single node needs no gRPC.

#[cfg(not(feature = "cluster"))]
fn main() {}

#[cfg(feature = "cluster")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../bubble-proto/proto/cluster.proto");
    let mut config = tonic_prost_build::Config::new();
    // An explicit PROTOC wins; otherwise the vendored one (nothing to install).
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    config.extern_path(".bubble.v1", "::bubble_proto::pb");
    config.bytes(["."]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["../bubble-proto/proto/cluster.proto"],
        &["../bubble-proto/proto"],
    )?;
    Ok(())
}
