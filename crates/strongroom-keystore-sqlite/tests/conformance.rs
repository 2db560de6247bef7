//! The shared keystore conformance suite against SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

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
