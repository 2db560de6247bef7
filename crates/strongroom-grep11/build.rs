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
        .compile_fds(fds)?;
    Ok(())
}
