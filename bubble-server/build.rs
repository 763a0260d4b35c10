//! Generates the gRPC services: the router to business services and the
//! send hook (`business.proto`, always), and the node-to-node bus
//! (`cluster.proto`, only with the `cluster` feature: a single node needs
//! no bus), which reuses the client protocol's messages from
//! `bubble_proto::pb`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut protos = vec!["../bubble-proto/proto/business.proto"];
    if std::env::var_os("CARGO_FEATURE_CLUSTER").is_some() {
        protos.push("../bubble-proto/proto/cluster.proto");
    }
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = tonic_prost_build::Config::new();
    // An explicit PROTOC wins; otherwise the vendored one (nothing to install).
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    config.extern_path(".bubble.v1", "::bubble_proto::pb");
    config.bytes(["."]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &protos,
        &["../bubble-proto/proto"],
    )?;
    Ok(())
}
