// `sqlx::migrate!` embeds the migration files when the crate compiles; cargo rebuilds it
// when one is added or changed only if told to watch the folders.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-audit");
}
