//! The SQLite keystore: one file, WAL journal, `synchronous = FULL` so that every
//! acknowledged write survives a crash or power loss. Writes go through a single
//! connection (SQLite has one writer anyway; this avoids lock upgrade failures), reads
//! through a small pool. Schema changes are numbered migrations in `migrations/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use strongroom_keystore::sql::{bind_all, to_completion, Arg, SqlExec, Stmt};
use strongroom_keystore::{AuditRecord, Result, StoreError};

mod audit;
use audit::{append_audit, AUDIT_STATEMENT_CACHE};

/// The SQLite keystore.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    audit: SqlitePool,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::Unavailable(Box::new(other)),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Creates an empty file at `path` with mode 0600 unless it exists (SQLite takes an empty
/// file as a new database).
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(Box::new(e))),
    }
}

impl SqliteStore {
    /// The audit database that belongs to the keystore file `path` (`keystore.db` →
    /// `keystore-audit.db`).
    pub fn audit_path(path: &Path) -> std::path::PathBuf {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("keystore");
        path.with_file_name(format!("{stem}-audit.db"))
    }

    /// Opens (creating if needed) the keystore file at `path` and its audit file, and
    /// applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        // Both files are created readable by the owner only; SQLite gives its -wal and -shm
        // files the mode of the database file.
        create_private_file(path)?;
        create_private_file(&Self::audit_path(path))?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-8000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await
            .map_err(unavailable)?;
        // A schema that a newer release has already expanded (a rolling upgrade, or a
        // node rolled back) is served as it is: migrations only add, and the newer
        // release's extra tables and nullable columns are unknown here and left alone.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
            .run(&write)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(true).pragma("cache_size", "-2000"))
            .await
            .map_err(unavailable)?;
        // The audit file commits with synchronous=NORMAL: a committed record is in the WAL
        // and survives a crash of the process; it reaches the disk at the next checkpoint.
        let audit_opts = SqliteConnectOptions::new()
            .filename(Self::audit_path(path))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(AUDIT_STATEMENT_CACHE);
        let audit = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(audit_opts)
            .await
            .map_err(unavailable)?;
        sqlx::migrate!("./migrations-audit")
            .run(&audit)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(SqliteStore { write, read, audit })
    }

    /// Opens an existing keystore read-only (for offline tools such as `audit verify`).
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::NotFound);
        }
        let ro = |p: &Path| {
            SqliteConnectOptions::new()
                .filename(p)
                .read_only(true)
                .busy_timeout(Duration::from_secs(10))
        };
        let read = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(ro(path))
            .await
            .map_err(unavailable)?;
        let audit = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(ro(&Self::audit_path(path)))
            .await
            .map_err(unavailable)?;
        Ok(SqliteStore {
            write: read.clone(),
            read,
            audit,
        })
    }

    /// Closes the pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
        self.audit.close().await;
    }
}

/// SQLite's extended result code for a constraint raised by a trigger.
const SQLITE_CONSTRAINT_TRIGGER: &str = "1811";

fn collision_or(e: sqlx::Error, stmt: &Stmt) -> StoreError {
    if is_unique_violation(&e) {
        stmt.collision()
    } else {
        unavailable(e)
    }
}

/// The statements of one write transaction on the writer connection.
async fn write_all(write: SqlitePool, stmts: Vec<Stmt>) -> Result<Vec<u64>> {
    // BEGIN/COMMIT by hand on the one writer connection, and an explicit ROLLBACK on any
    // failure, COMMIT's included: after SQLITE_FULL or an I/O error SQLite may or may not
    // have rolled the transaction back itself, and a transaction left open would swallow
    // every later write of this connection uncommitted — acknowledged, then lost
    // (tests/chaos.rs fills the disk to show it does not happen).
    let mut conn = write.acquire().await.map_err(unavailable)?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let run = async {
        let mut counts = Vec::with_capacity(stmts.len());
        for s in &stmts {
            let n = bind_all(sqlx::query(&s.sql), s.args.clone())
                .execute(&mut *conn)
                .await
                .map_err(|e| collision_or(e, s))?
                .rows_affected();
            if s.required && n == 0 {
                return Err(StoreError::NotFound);
            }
            counts.push(n);
        }
        sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(counts)
    }
    .await;
    if run.is_err() {
        // Fails harmlessly when SQLite has already rolled back.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    run
}

/// The shared SQL (`strongroom_keystore::sql`) runs here: changes on the one writer
/// connection, queries on the read pool, the audit log in its own file. Writes run to their
/// end whatever becomes of the caller ([`to_completion`]).
#[async_trait]
impl SqlExec for SqliteStore {
    type Row = sqlx::sqlite::SqliteRow;
    const BACKEND: &'static str = "sqlite";

    async fn execute(&self, stmt: Stmt) -> Result<u64> {
        let write = self.write.clone();
        to_completion(async move {
            let n = bind_all(sqlx::query(&stmt.sql), stmt.args.clone())
                .execute(&write)
                .await
                .map_err(|e| collision_or(e, &stmt))?
                .rows_affected();
            if stmt.required && n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(n)
        })
        .await
    }

    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>> {
        to_completion(write_all(self.write.clone(), stmts)).await
    }

    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        bind_all(sqlx::query(sql), args)
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)
    }

    async fn fetch_write(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        bind_all(sqlx::query(sql), args)
            .fetch_all(&self.write)
            .await
            .map_err(unavailable)
    }

    async fn fetch_audit(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        bind_all(sqlx::query(sql), args)
            .fetch_all(&self.audit)
            .await
            .map_err(unavailable)
    }

    async fn insert_audit(&self, records: &[AuditRecord]) -> Result<()> {
        to_completion(append_audit(self.audit.clone(), records.to_vec())).await
    }
}
