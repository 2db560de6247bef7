//! Links the library with `-z nodelete`: a `dlclose` (p11-kit releases modules that way)
//! leaves it mapped, because the `pthread_atfork` handler it registers (src/ffi/fork.rs)
//! must stay callable for the life of the process.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
