//! The shared keystore conformance suite against a real PostgreSQL. The database URL comes
//! from `STRONGROOM_TEST_POSTGRES_URL` (scripts/test starts a server on loopback and sets
//! it). Without it the tests fail: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_keystore::conformance::audit_guard;
use strongroom_keystore::KeyStore;
use strongroom_keystore_postgres::{PgSettings, PgStore};

async fn fresh() -> Arc<dyn KeyStore> {
    Arc::new(fresh_store().await.0)
}

/// A store on a database of its own, and that database's URL.
async fn fresh_store() -> (PgStore, String) {
    let base = std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .expect("STRONGROOM_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL on loopback");
    // One database per test, so that tests run in parallel without seeing each other's audit chain.
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to the test PostgreSQL");
    let name = format!("sr_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = match base.rsplit_once('/') {
        Some((prefix, _)) => format!("{prefix}/{name}"),
        None => panic!("STRONGROOM_TEST_POSTGRES_URL must end with a database name"),
    };
    let store = PgStore::connect(&url, &PgSettings::default())
        .await
        .unwrap();
    (store, url)
}

strongroom_keystore::conformance_tests!(fresh());

#[tokio::test]
async fn an_unreachable_database_fails_fast_and_clearly() {
    let settings = PgSettings {
        acquire_timeout: std::time::Duration::from_millis(500),
        ..PgSettings::default()
    };
    let started = std::time::Instant::now();
    let r = PgStore::connect("postgres://nobody@127.0.0.1:1/none", &settings).await;
    assert!(matches!(
        r,
        Err(strongroom_keystore::StoreError::Unavailable(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The database itself keeps the audit chain whole against a writer that goes around the
/// store: statements out of sequence are refused by migration 0011's check (SR001), taken
/// numbers by the primary key (23505), changes by 0001's trigger (SR002).
#[tokio::test]
async fn the_database_refuses_audit_rows_out_of_sequence_and_changes() {
    let (store, url) = fresh_store().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let code = async |sql: String| {
        let e = sqlx::query(&sql).execute(&db).await.err()?;
        Some(e.as_database_error()?.code()?.into_owned())
    };
    let refusals = ["SR001", "23505", "SR002"];
    let blob = "decode(repeat('00', 32), 'hex')";
    audit_guard(Arc::new(store), blob, code, refusals).await;
}
