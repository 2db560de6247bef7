//! The shared keystore conformance suite against a real PostgreSQL. The database URL comes
//! from `STRONGROOM_TEST_POSTGRES_URL` (scripts/test starts a server on loopback and sets
//! it). Without it the tests fail: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

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
/// store (which checks a batch before sending it): an INSERT statement lands only if its rows
/// are consecutive and continue the newest record, taken numbers are refused, and records are
/// never changed or removed. A refused statement leaves nothing behind.
#[tokio::test]
async fn the_database_refuses_audit_rows_out_of_sequence_and_changes() {
    let (store, url) = fresh_store().await;
    store.close().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let insert = |seqs: &[i64]| {
        let rows: Vec<String> = seqs
            .iter()
            .map(|s| {
                format!("({s}, 0, NULL, 'p', 'a', NULL, 'success', 200, 'c', '\\x00', '\\x00')")
            })
            .collect();
        format!(
            "INSERT INTO audit (seq, at, instance_id, principal, action, key, outcome, status, \
             correlation_id, prev_hash, hash) VALUES {}",
            rows.join(", ")
        )
    };
    let code = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| match r {
        Err(sqlx::Error::Database(d)) => d.code().map(|c| c.to_string()),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    sqlx::query(&insert(&[1, 2, 3])).execute(&db).await.unwrap();
    for (seqs, why) in [
        (&[4, 5, 7][..], "a gap inside the statement"),
        (&[5, 6][..], "a gap after the newest record"),
        (&[0][..], "a number before the first"),
    ] {
        assert_eq!(
            code(sqlx::query(&insert(seqs)).execute(&db).await).as_deref(),
            Some("SR001"),
            "{why}"
        );
        assert_eq!(count().await, 3, "{why}: nothing lands");
    }
    assert_eq!(
        code(sqlx::query(&insert(&[3, 4])).execute(&db).await).as_deref(),
        Some("23505"),
        "a taken number"
    );
    assert_eq!(count().await, 3);
    for change in [
        "UPDATE audit SET outcome = 'x' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 3",
    ] {
        assert_eq!(
            code(sqlx::query(change).execute(&db).await).as_deref(),
            Some("SR002"),
            "{change}"
        );
    }
    sqlx::query(&insert(&[4, 5, 6])).execute(&db).await.unwrap();
    assert_eq!(count().await, 6);
}
