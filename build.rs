//! Compiles proto/gateway.proto with tonic-prost-build (client and server stubs).
//! protoc comes from the protoc-bin-vendored crate, so no system protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; PROTOC is read by prost-build below.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/gateway.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/gateway.proto");
    Ok(())
}
