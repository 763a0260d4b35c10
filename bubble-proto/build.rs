//! Generates the protobuf bodies with a vendored protoc, so nobody installs one.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/bubble.proto");
    let mut config = prost_build::Config::new();
    // An explicit PROTOC wins (distributions that ship their own); otherwise
    // the vendored binary keeps a fresh machine free of manual installs.
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    config
        .bytes(["."])
        .compile_protos(&["proto/bubble.proto"], &["proto"])?;
    Ok(())
}
