//! Rolling upgrades: nodes of two releases serve one keystore. Migrations only add (checked
//! over every migration file of both SQL backends), and a store opens a database whose
//! schema a newer release has already expanded, and works in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sqlx::Connection as _;
use strongroom_keystore::conformance::{api_key, instance, key};
use strongroom_keystore::KeyStore;
use strongroom_keystore_sqlite::SqliteStore;

/// The statements of a migration file, comments removed, in upper case.
fn statements(sql: &str) -> Vec<String> {
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Why `stmt`, one of the statements of a migration file `all`, would break a node of the
/// previous release, if it would. A trigger is no name a release reads or writes: one that
/// the same file creates again under its name (a check replaced by an equivalent one) may
/// be dropped.
fn contracts(stmt: &str, all: &[String]) -> Option<&'static str> {
    if let Some(name) = stmt
        .strip_prefix("DROP TRIGGER ")
        .and_then(|rest| rest.split_whitespace().next())
    {
        let again = format!("CREATE TRIGGER {name} ");
        if all.iter().any(|s| s.starts_with(&again)) {
            return None;
        }
    }
    if stmt.starts_with("DROP ") || stmt.contains(" DROP ") {
        return Some("drops something the previous release reads");
    }
    if stmt.contains(" RENAME ") {
        return Some("renames something the previous release names");
    }
    if stmt.contains(" ALTER COLUMN ") {
        return Some("changes a column the previous release writes");
    }
    if stmt.contains(" ADD COLUMN ") && stmt.contains("NOT NULL") && !stmt.contains("DEFAULT") {
        return Some(
            "adds a NOT NULL column without a default, which the previous release's INSERTs lack",
        );
    }
    None
}

#[test]
fn the_contract_check_catches_what_breaks_a_previous_release() {
    for bad in [
        "DROP TABLE keys",
        "ALTER TABLE keys DROP COLUMN name",
        "ALTER TABLE keys RENAME COLUMN name TO label",
        "ALTER TABLE keys ALTER COLUMN name TYPE BYTEA",
        "ALTER TABLE keys ADD COLUMN owner TEXT NOT NULL",
        "DROP TRIGGER audit_contiguous ON audit",
        "DROP TRIGGER audit_contiguous ON audit; CREATE TRIGGER audit_other AFTER INSERT ON audit",
        "DROP FUNCTION audit_contiguous()",
    ] {
        let all = statements(bad);
        assert!(contracts(&all[0], &all).is_some(), "{bad}");
    }
    for good in [
        "CREATE TABLE t (a TEXT NOT NULL)",
        "ALTER TABLE keys ADD COLUMN owner TEXT",
        "ALTER TABLE keys ADD COLUMN n INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX k ON keys (name) -- drop later",
        "DROP TRIGGER audit_contiguous ON audit; CREATE TRIGGER audit_contiguous AFTER INSERT ON audit",
    ] {
        let all = statements(good);
        assert!(contracts(&all[0], &all).is_none(), "{good}");
    }
}

#[test]
fn migrations_only_expand() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        "strongroom-keystore-sqlite/migrations",
        "strongroom-keystore-sqlite/migrations-audit",
        "strongroom-keystore-postgres/migrations",
    ];
    let mut files = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let sql = std::fs::read_to_string(&path).unwrap();
            let all = statements(&sql);
            for stmt in &all {
                if let Some(why) = contracts(stmt, &all) {
                    panic!("{}: `{stmt}` {why}; contract in a later release instead (docs/runbooks/upgrade.md)", path.display());
                }
            }
            files += 1;
        }
    }
    assert!(files >= 20, "found only {files} migration files");
}

#[tokio::test]
async fn a_schema_expanded_by_a_newer_release_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ks.db");
    let s = SqliteStore::open(&path).await.unwrap();
    let i = instance("before");
    s.create_instance(&i).await.unwrap();
    s.close().await;
    // What a newer release's migration would do: a table, nullable columns, and its entry
    // in the migration history, which this release does not carry.
    let url = format!("sqlite://{}", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for stmt in [
        "CREATE TABLE future_things (id TEXT PRIMARY KEY, data BLOB)",
        "ALTER TABLE keys ADD COLUMN future_label TEXT",
        "ALTER TABLE api_keys ADD COLUMN future_flag INTEGER",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'a newer release', 1, x'00', 0)",
    ] {
        sqlx::query(stmt).execute(&mut db).await.unwrap();
    }
    db.close().await.unwrap();

    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.get_instance(i.id).await.unwrap(), i);
    let (k, v) = key(i.id, "after");
    s.create_key(&k, &v).await.unwrap();
    assert_eq!(s.get_key(i.id, k.id).await.unwrap(), k);
    let a = api_key(i.id, "after");
    s.create_api_key(&a).await.unwrap();
    assert_eq!(s.get_api_key(&a.id).await.unwrap(), a);
    s.close().await;
}
