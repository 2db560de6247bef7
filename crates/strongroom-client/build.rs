// With the `grep11` feature, compiles the GREP11 client from the front end's protos (one
// source of field numbers) with protox, so no protoc is needed. It also writes, for the lean
// unary client (`grep11::unary`), which method path and response type go with each request
// message, from the same descriptors, so that no hand-kept table can drift from the protos.
use std::fmt::Write as _;

/// The Rust module each protobuf package is compiled into, relative to `crate::grep11`.
const MODULES: [(&str, &str); 2] = [("grep11", "pb"), ("strongroom.keystore", "keystore")];

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
    println!("cargo:rerun-if-changed=build.rs");
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(&files, [dir])?;
    let mut unary = String::new();
    let mut seen = std::collections::HashSet::new();
    for file in &fds.file {
        let package = file.package();
        if file.service.is_empty() {
            continue;
        }
        let module = MODULES
            .iter()
            .find(|(p, _)| *p == package)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("no Rust module is named for package {package}"))?;
        let local = |t: &str| -> Result<String, String> {
            t.strip_prefix(&format!(".{package}."))
                .map(|n| format!("{module}::{n}"))
                .ok_or_else(|| format!("{t} is not a message of package {package}"))
        };
        for service in &file.service {
            for m in &service.method {
                let (req, resp) = (local(m.input_type())?, local(m.output_type())?);
                if !seen.insert(req.clone()) {
                    return Err(format!("{req} is the request of two methods").into());
                }
                writeln!(
                    unary,
                    "impl Unary for {req} {{ const PATH: &'static str = \"/{package}.{}/{}\"; type Response = {resp}; }}",
                    service.name(),
                    m.name()
                )?;
            }
        }
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("unary_methods.rs"), unary)?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
