//! Generates the `BusinessService` server (and a client, for the tests)
//! from bubble's `business.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../bubble-proto/proto/business.proto";
    println!("cargo:rerun-if-changed={proto}");
    let mut config = tonic_prost_build::Config::new();
    // An explicit PROTOC wins; otherwise the vendored one (nothing to install).
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    config.bytes(["."]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &[proto],
        &["../../bubble-proto/proto"],
    )?;
    Ok(())
}
