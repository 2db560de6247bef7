//! The shared keystore conformance suite against a real PostgreSQL. The database URL comes
//! from `STRONGROOM_TEST_POSTGRES_URL` (scripts/test starts a server on loopback and sets
//! it). Without it the tests fail: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_keystore::KeyStore;
use strongroom_keystore_postgres::{PgSettings, PgStore};

async fn fresh() -> Arc<dyn KeyStore> {
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
    Arc::new(
        PgStore::connect(&url, &PgSettings::default())
            .await
            .unwrap(),
    )
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
