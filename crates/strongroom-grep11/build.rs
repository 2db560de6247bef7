// Compiles the GREP11 protos with protox (no protoc needed).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/server.proto",
        "proto/errors.proto",
        "proto/status.proto",
        "proto/keystore.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Key blobs (4 KB for an ML-DSA-65 private key) stay in the buffer the request was
        // received into instead of being copied out of it.
        .bytes(".grep11.KeyBlob.KeyBlobs")
        .compile_fds(fds)?;
    Ok(())
}
