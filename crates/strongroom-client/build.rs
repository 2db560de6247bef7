// With the `grep11` feature, compiles the GREP11 client from the front end's protos (one
// source of field numbers) with protox, so no protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("CARGO_FEATURE_GREP11").is_none() {
        return Ok(());
    }
    let dir = "../strongroom-grep11/proto";
    let files = [
        "server.proto",
        "errors.proto",
        "status.proto",
        "keystore.proto",
    ]
    .map(|f| format!("{dir}/{f}"));
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(&files, [dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
