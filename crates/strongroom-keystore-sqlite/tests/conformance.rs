//! The shared keystore conformance suite against SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_keystore::conformance::audit_guard;
use strongroom_keystore::KeyStore;
use strongroom_keystore_sqlite::SqliteStore;

async fn fresh() -> Arc<dyn KeyStore> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystore.db");
    // Keep the directory for the life of the test process.
    std::mem::forget(dir);
    Arc::new(SqliteStore::open(&path).await.unwrap())
}

strongroom_keystore::conformance_tests!(fresh());

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ks.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let i = strongroom_keystore::conformance::instance("persist");
    s.create_instance(&i).await.unwrap();
    s.close().await;
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.get_instance(i.id).await.unwrap(), i);
}

/// The audit file itself keeps the chain whole against a writer that goes around the store:
/// its triggers refuse rows out of sequence (a taken number too, before the primary key) and
/// changes.
#[tokio::test]
async fn the_audit_file_refuses_rows_out_of_sequence_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ks.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let url = format!("sqlite://{}", SqliteStore::audit_path(&path).display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let message = async |sql: String| Some(sqlx::query(&sql).execute(&db).await.err()?.to_string());
    let gaps = "audit records must continue the chain without gaps";
    let refusals = [gaps, gaps, "the audit log is append-only"];
    let blob = "zeroblob(32)";
    audit_guard(Arc::new(store), blob, message, refusals).await;
}
