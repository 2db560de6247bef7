//! The SQLite keystore: one file, WAL journal, `synchronous = FULL` so that every
//! acknowledged write survives a crash or power loss. Writes go through a single
//! connection (SQLite has one writer anyway; this avoids lock upgrade failures), reads
//! through a small pool. Schema changes are numbered migrations in `migrations/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use strongroom_keystore::sql::{
    api_key_from_row, audit_from_row, bind_all, instance_from_row, key_from_row,
    registration_from_row, Arg, SqlExec, Stmt,
};
use strongroom_keystore::*;
use strongroom_model::{InstanceId, KeyId, KeyKind, UnitId, UnixMillis, VersionId};

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

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
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
        sqlx::migrate!("./migrations")
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
            .busy_timeout(Duration::from_secs(10));
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

fn parse_uuid(s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::from_str(s).map_err(|_| corrupt("uuid"))
}

fn push_filter<'a>(q: &mut QueryBuilder<'a, Sqlite>, instance: InstanceId, f: &'a KeyFilter) {
    q.push(" WHERE instance_id = ")
        .push_bind(instance.to_string());
    if !f.states.is_empty() {
        q.push(" AND state IN (");
        let mut sep = q.separated(", ");
        for s in &f.states {
            sep.push_bind(i64::from(s.code()));
        }
        sep.push_unseparated(")");
    }
    if let Some(x) = f.extractable {
        let kind = if x { KeyKind::Standard } else { KeyKind::Root };
        q.push(" AND kind = ").push_bind(i64::from(kind.code()));
    }
    if let Some(ring) = &f.key_ring {
        q.push(" AND key_ring = ").push_bind(ring.as_str());
    }
}

/// Rows per audit INSERT statement (11 parameters each, far below SQLite's limit).
use strongroom_keystore::AUDIT_CHUNK;
/// SQLite's extended result code for a constraint raised by a trigger.
const SQLITE_CONSTRAINT_TRIGGER: &str = "1811";

/// Sets the policy columns of a new key (same transaction as its insert).
const POLICY_COLUMNS: &str = "UPDATE keys SET rotation_enabled = ?, rotation_interval_month = ?, rotation_policy_at = ?, \
    rotation_policy_by = ?, dual_auth_enabled = ?, dual_auth_policy_at = ?, dual_auth_policy_by = ?, \
    deletion_authorized_by = ?, deletion_authorized_at = ? WHERE instance_id = ? AND id = ?";

const UPDATE_KEY: &str = "UPDATE keys SET name = ?, description = ?, state = ?, key_ring = ?, updated_at = ?, \
    state_changed_at = ?, expiration = ?, last_rotated_at = ?, deleted_at = ?, deleted_by = ?, current_version = ?, \
    current_version_at = ?, version_count = ?, aliases = ?, rotation_enabled = ?, rotation_interval_month = ?, \
    rotation_policy_at = ?, rotation_policy_by = ?, dual_auth_enabled = ?, dual_auth_policy_at = ?, dual_auth_policy_by = ?, \
    deletion_authorized_by = ?, deletion_authorized_at = ?, row_version = row_version + 1 \
    WHERE instance_id = ? AND id = ? AND row_version = ?";

async fn update_in<'c, E>(exec: E, k: &KeyRecord) -> std::result::Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let r = sqlx::query(UPDATE_KEY)
        .bind(&k.name)
        .bind(&k.description)
        .bind(i64::from(k.state.code()))
        .bind(&k.key_ring)
        .bind(k.updated_at.0)
        .bind(k.state_changed_at.0)
        .bind(k.expiration.map(|t| t.0))
        .bind(k.last_rotated_at.map(|t| t.0))
        .bind(k.deleted_at.map(|t| t.0))
        .bind(&k.deleted_by)
        .bind(k.current_version.to_string())
        .bind(k.current_version_at.0)
        .bind(k.version_count)
        .bind(k.aliases.join("\n"))
        .bind(k.rotation.as_ref().map(|p| p.enabled))
        .bind(k.rotation.as_ref().map(|p| i64::from(p.interval_month)))
        .bind(k.rotation.as_ref().map(|p| p.updated_at.0))
        .bind(k.rotation.as_ref().map(|p| p.updated_by.as_str()))
        .bind(k.dual_auth.as_ref().map(|p| p.enabled))
        .bind(k.dual_auth.as_ref().map(|p| p.updated_at.0))
        .bind(k.dual_auth.as_ref().map(|p| p.updated_by.as_str()))
        .bind(k.deletion_auth.as_ref().map(|d| d.by.as_str()))
        .bind(k.deletion_auth.as_ref().map(|d| d.at.0))
        .bind(k.instance.to_string())
        .bind(k.id.to_string())
        .bind(k.row_version)
        .execute(exec)
        .await?;
    Ok(r.rows_affected())
}

impl SqliteStore {
    async fn exists(&self, instance: InstanceId, id: KeyId) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM keys WHERE instance_id = ? AND id = ?")
                .bind(instance.to_string())
                .bind(id.to_string())
                .fetch_one(&self.write)
                .await
                .map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn not_updated(&self, instance: InstanceId, id: KeyId) -> StoreError {
        match self.exists(instance, id).await {
            Ok(true) => StoreError::Conflict,
            Ok(false) => StoreError::NotFound,
            Err(e) => e,
        }
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn create_instance(&self, rec: &InstanceRecord) -> Result<()> {
        sqlx::query("INSERT INTO instances (id, name, created_at) VALUES (?, ?, ?)")
            .bind(rec.id.to_string())
            .bind(&rec.name)
            .bind(rec.created_at.0)
            .execute(&self.write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(Unique::Instance)
                } else {
                    unavailable(e)
                }
            })?;
        Ok(())
    }

    async fn get_instance(&self, id: InstanceId) -> Result<InstanceRecord> {
        let r = sqlx::query("SELECT id, name, created_at FROM instances WHERE id = ?")
            .bind(id.to_string())
            .fetch_one(&self.read)
            .await
            .map_err(unavailable)?;
        instance_from_row(&r)
    }

    async fn list_instances(&self) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM instances ORDER BY name")
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        rows.iter().map(instance_from_row).collect()
    }

    async fn delete_instance(&self, id: InstanceId, force: bool, now: UnixMillis) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keys WHERE instance_id = ?")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        if n > 0 && !force {
            return Err(StoreError::InstanceNotEmpty(u64::try_from(n).unwrap_or(0)));
        }
        for table in [
            "key_versions",
            "aliases",
            "keys",
            "api_keys",
            "key_rings",
            "import_tokens",
            "instance_policies",
            "registrations",
            "kmip_certificates",
            "kmip_objects",
            "kmip_adapters",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE instance_id = ?"))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let r = sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT OR IGNORE INTO deleted_instances (id, deleted_at) VALUES (?, ?)")
            .bind(id.to_string())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_key(&self, k: &KeyRecord, first: &KeyVersionRecord) -> Result<()> {
        // A new key is a restore of a key with one version: one code path, one transaction.
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        insert_key(&mut tx, k, std::slice::from_ref(first)).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn get_key(&self, instance: InstanceId, id: KeyId) -> Result<KeyRecord> {
        let r = sqlx::query("SELECT * FROM keys WHERE instance_id = ? AND id = ?")
            .bind(instance.to_string())
            .bind(id.to_string())
            .fetch_one(&self.read)
            .await
            .map_err(unavailable)?;
        key_from_row(&r)
    }

    async fn key_id_by_alias(&self, instance: InstanceId, alias: &str) -> Result<KeyId> {
        let id: String =
            sqlx::query_scalar("SELECT key_id FROM aliases WHERE instance_id = ? AND alias = ?")
                .bind(instance.to_string())
                .bind(alias)
                .fetch_one(&self.read)
                .await
                .map_err(unavailable)?;
        Ok(KeyId(parse_uuid(&id)?))
    }

    async fn list_keys(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Vec<KeyRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM keys");
        push_filter(&mut q, instance, filter);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.limit));
        q.push(" OFFSET ").push_bind(i64::from(page.offset));
        let rows = q.build().fetch_all(&self.read).await.map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn count_keys(&self, instance: InstanceId, filter: &KeyFilter) -> Result<u64> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM keys");
        push_filter(&mut q, instance, filter);
        let n: i64 = q
            .build_query_scalar()
            .fetch_one(&self.read)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn key_versions(&self, instance: InstanceId, id: KeyId) -> Result<Vec<KeyVersionRecord>> {
        let rows = sqlx::query("SELECT seq, id, created_at, blob FROM key_versions WHERE instance_id = ? AND key_id = ? ORDER BY seq DESC")
            .bind(instance.to_string())
            .bind(id.to_string())
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        rows.iter()
            .map(|r| {
                let g = strongroom_keystore::sql::undecodable;
                Ok(KeyVersionRecord {
                    seq: r.try_get("seq").map_err(g)?,
                    id: VersionId(parse_uuid(r.try_get("id").map_err(g)?)?),
                    created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
                    blob: r.try_get("blob").map_err(g)?,
                })
            })
            .collect()
    }

    async fn versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
        after: Option<(KeyId, u32)>,
        limit: u32,
    ) -> Result<Vec<SealedVersion>> {
        let (after_key, after_seq) = match after {
            Some((k, s)) => (k.to_string(), i64::from(s)),
            None => (String::new(), -1),
        };
        let rows = sqlx::query(
            "SELECT v.key_id, v.seq, v.id, v.blob, k.kind, k.imported FROM key_versions v \
             JOIN keys k ON k.instance_id = v.instance_id AND k.id = v.key_id \
             WHERE v.instance_id = ? AND substr(v.blob, 2, 16) <> ? \
               AND (v.key_id > ? OR (v.key_id = ? AND v.seq > ?)) \
             ORDER BY v.key_id, v.seq LIMIT ?",
        )
        .bind(instance.to_string())
        .bind(mk_id.as_slice())
        .bind(&after_key)
        .bind(&after_key)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let g = strongroom_keystore::sql::undecodable;
                Ok(SealedVersion {
                    key: KeyId(parse_uuid(r.try_get("key_id").map_err(g)?)?),
                    seq: r.try_get("seq").map_err(g)?,
                    version: VersionId(parse_uuid(r.try_get("id").map_err(g)?)?),
                    blob: r.try_get("blob").map_err(g)?,
                    kind: KeyKind::from_code(r.try_get("kind").map_err(g)?)
                        .ok_or_else(|| StoreError::Corrupt("kind".into()))?,
                    imported: r.try_get("imported").map_err(g)?,
                })
            })
            .collect()
    }

    async fn count_versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM key_versions WHERE instance_id = ? AND substr(blob, 2, 16) <> ?",
        )
        .bind(instance.to_string())
        .bind(mk_id.as_slice())
        .fetch_one(&self.read)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn replace_blobs(&self, instance: InstanceId, updates: &[BlobUpdate]) -> Result<u64> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let mut n = 0;
        for u in updates {
            n += sqlx::query("UPDATE key_versions SET blob = ? WHERE instance_id = ? AND key_id = ? AND seq = ? AND blob = ?")
                .bind(&u.new)
                .bind(instance.to_string())
                .bind(u.key.to_string())
                .bind(u.seq)
                .bind(&u.old)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected();
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(n)
    }

    async fn add_unit_usage(&self, counts: &[UnitUsage]) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        for c in counts {
            sqlx::query("INSERT INTO unit_usage (instance_id, month, unit_id, calls) VALUES (?, ?, ?, ?) ON CONFLICT (instance_id, month, unit_id) DO UPDATE SET calls = calls + excluded.calls")
                .bind(c.instance.to_string())
                .bind(&c.month)
                .bind(c.unit.to_string())
                .bind(i64::try_from(c.calls).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn unit_usage(&self, instance: InstanceId, month: &str) -> Result<Vec<UnitUsage>> {
        let rows = sqlx::query("SELECT unit_id, calls FROM unit_usage WHERE instance_id = ? AND month = ? ORDER BY unit_id")
            .bind(instance.to_string())
            .bind(month)
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let g = strongroom_keystore::sql::undecodable;
                Ok(UnitUsage {
                    instance,
                    unit: UnitId(parse_uuid(r.try_get("unit_id").map_err(g)?)?),
                    month: month.to_string(),
                    calls: u64::try_from(r.try_get::<i64, _>("calls").map_err(g)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<i64> {
        let n = update_in(&self.write, key).await.map_err(unavailable)?;
        if n == 0 {
            return Err(self.not_updated(key.instance, key.id).await);
        }
        Ok(key.row_version + 1)
    }

    async fn add_key_version(&self, key: &KeyRecord, v: &KeyVersionRecord) -> Result<i64> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let n = update_in(&mut *tx, key).await.map_err(unavailable)?;
        if n == 0 {
            drop(tx);
            return Err(self.not_updated(key.instance, key.id).await);
        }
        sqlx::query("INSERT INTO key_versions (instance_id, key_id, seq, id, created_at, blob) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(key.instance.to_string())
            .bind(key.id.to_string())
            .bind(v.seq)
            .bind(v.id.to_string())
            .bind(v.created_at.0)
            .bind(&v.blob)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict } else { unavailable(e) })?;
        tx.commit().await.map_err(unavailable)?;
        Ok(key.row_version + 1)
    }

    async fn add_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO aliases (instance_id, alias, key_id) VALUES (?, ?, ?)")
            .bind(key.instance.to_string())
            .bind(alias)
            .bind(key.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(Unique::Alias)
                } else {
                    unavailable(e)
                }
            })?;
        if update_in(&mut *tx, key).await.map_err(unavailable)? == 0 {
            drop(tx);
            return Err(self.not_updated(key.instance, key.id).await);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(key.row_version + 1)
    }

    async fn remove_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let r =
            sqlx::query("DELETE FROM aliases WHERE instance_id = ? AND alias = ? AND key_id = ?")
                .bind(key.instance.to_string())
                .bind(alias)
                .bind(key.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if update_in(&mut *tx, key).await.map_err(unavailable)? == 0 {
            drop(tx);
            return Err(self.not_updated(key.instance, key.id).await);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(key.row_version + 1)
    }

    async fn keys_with_rotation_policy(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE rotation_enabled = 1 AND state IN (1, 3) ORDER BY instance_id, id")
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn put_import_token(&self, instance: InstanceId, t: &ImportTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO import_tokens (instance_id, id, created_at, expires_at, max_retrievals, remaining, \
             public_key, private_blob, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(instance.to_string())
        .bind(t.id.to_string())
        .bind(t.created_at.0)
        .bind(t.expires_at.0)
        .bind(t.max_retrievals)
        .bind(t.remaining)
        .bind(&t.public_key)
        .bind(&t.private_blob)
        .bind(&t.nonce)
        .execute(&self.write)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn get_import_token(&self, instance: InstanceId) -> Result<ImportTokenRecord> {
        let r = sqlx::query("SELECT * FROM import_tokens WHERE instance_id = ?")
            .bind(instance.to_string())
            .fetch_one(&self.write)
            .await
            .map_err(unavailable)?;
        let g = strongroom_keystore::sql::undecodable;
        Ok(ImportTokenRecord {
            id: KeyId(parse_uuid(r.try_get("id").map_err(g)?)?),
            created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
            expires_at: UnixMillis(r.try_get("expires_at").map_err(g)?),
            max_retrievals: r.try_get("max_retrievals").map_err(g)?,
            remaining: r.try_get("remaining").map_err(g)?,
            public_key: r.try_get("public_key").map_err(g)?,
            private_blob: r.try_get("private_blob").map_err(g)?,
            nonce: r.try_get("nonce").map_err(g)?,
        })
    }

    async fn take_import_token_retrieval(&self, instance: InstanceId, id: KeyId) -> Result<u32> {
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE import_tokens SET remaining = remaining - 1 WHERE instance_id = ? AND id = ? AND remaining > 0 RETURNING remaining",
        )
        .bind(instance.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.write)
        .await
        .map_err(unavailable)?;
        match left {
            Some(n) => Ok(u32::try_from(n).unwrap_or(0)),
            None => match self.get_import_token(instance).await {
                Ok(_) => Err(StoreError::Conflict),
                Err(e) => Err(e),
            },
        }
    }

    async fn put_instance_policies(
        &self,
        instance: InstanceId,
        policies: &[InstancePolicyRecord],
    ) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        for p in policies {
            sqlx::query(
                "INSERT INTO instance_policies (instance_id, policy_type, enabled, attributes, created_at, created_by, updated_at, updated_by) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, policy_type) DO UPDATE SET \
                 enabled = excluded.enabled, attributes = excluded.attributes, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(instance.to_string())
            .bind(&p.policy_type)
            .bind(p.enabled)
            .bind(&p.attributes)
            .bind(p.created_at.0)
            .bind(&p.created_by)
            .bind(p.updated_at.0)
            .bind(&p.updated_by)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn list_instance_policies(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<InstancePolicyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM instance_policies WHERE instance_id = ? ORDER BY policy_type",
        )
        .bind(instance.to_string())
        .fetch_all(&self.write)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let g = strongroom_keystore::sql::undecodable;
                Ok(InstancePolicyRecord {
                    policy_type: r.try_get("policy_type").map_err(g)?,
                    enabled: r.try_get("enabled").map_err(g)?,
                    attributes: r.try_get("attributes").map_err(g)?,
                    created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
                    created_by: r.try_get("created_by").map_err(g)?,
                    updated_at: UnixMillis(r.try_get("updated_at").map_err(g)?),
                    updated_by: r.try_get("updated_by").map_err(g)?,
                })
            })
            .collect()
    }

    async fn put_registration(&self, instance: InstanceId, r: &RegistrationRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO registrations (instance_id, key_id, resource_crn, description, metadata, prevent_deletion, key_version_id, \
             created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (instance_id, key_id, resource_crn) DO UPDATE SET description = excluded.description, \
             metadata = excluded.metadata, prevent_deletion = excluded.prevent_deletion, key_version_id = excluded.key_version_id, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(instance.to_string())
        .bind(r.key.to_string())
        .bind(&r.resource_crn)
        .bind(&r.description)
        .bind(&r.metadata)
        .bind(r.prevent_deletion)
        .bind(r.key_version.to_string())
        .bind(r.created_at.0)
        .bind(&r.created_by)
        .bind(r.updated_at.0)
        .bind(&r.updated_by)
        .execute(&self.write)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_registration(&self, instance: InstanceId, key: KeyId, crn: &str) -> Result<()> {
        let r = sqlx::query(
            "DELETE FROM registrations WHERE instance_id = ? AND key_id = ? AND resource_crn = ?",
        )
        .bind(instance.to_string())
        .bind(key.to_string())
        .bind(crn)
        .execute(&self.write)
        .await
        .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_registrations(
        &self,
        instance: InstanceId,
        key: Option<KeyId>,
    ) -> Result<Vec<RegistrationRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM registrations WHERE instance_id = ");
        q.push_bind(instance.to_string());
        if let Some(k) = key {
            q.push(" AND key_id = ").push_bind(k.to_string());
        }
        q.push(" ORDER BY key_id, resource_crn");
        let rows = q
            .build()
            .fetch_all(&self.write)
            .await
            .map_err(unavailable)?;
        rows.iter().map(registration_from_row).collect()
    }

    async fn mark_synced(
        &self,
        instance: InstanceId,
        key: KeyId,
        at: UnixMillis,
        not_after: UnixMillis,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE keys SET last_synced_at = ? WHERE instance_id = ? AND id = ? AND (last_synced_at IS NULL OR last_synced_at <= ?)",
        )
        .bind(at.0)
        .bind(instance.to_string())
        .bind(key.to_string())
        .bind(not_after.0)
        .execute(&self.write)
        .await
        .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(self.not_updated(instance, key).await);
        }
        Ok(())
    }

    async fn keys_expired_by(&self, now: UnixMillis) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE state IN (1, 2) AND expiration IS NOT NULL AND expiration <= ? ORDER BY instance_id, id")
            .bind(now.0)
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn keys_deleted_by(&self, cutoff: UnixMillis) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE state = 5 AND COALESCE(deleted_at, state_changed_at) <= ? ORDER BY instance_id, id")
            .bind(cutoff.0)
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn instance_deleted(&self, id: InstanceId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deleted_instances WHERE id = ?")
            .bind(id.to_string())
            .fetch_one(&self.read)
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        // One node owns an SQLite file: its own writes already update its caches.
        None
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO jobs (name, holder, lease_until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET \
             holder = excluded.holder, lease_until = excluded.lease_until WHERE jobs.holder = excluded.holder OR jobs.lease_until < ?",
        )
        .bind(job)
        .bind(holder)
        .bind(now.0 + lease_ms)
        .bind(now.0)
        .execute(&self.write)
        .await
        .map_err(unavailable)?;
        Ok(r.rows_affected() > 0)
    }

    async fn restore_keys(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        for (k, versions) in keys {
            insert_key(&mut tx, k, versions).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_key_within(
        &self,
        k: &KeyRecord,
        first: &KeyVersionRecord,
        max_keys: u64,
    ) -> Result<()> {
        // One writer connection: the count and the insert cannot interleave with another write.
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keys WHERE instance_id = ?")
            .bind(k.instance.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        if u64::try_from(n).unwrap_or(0) >= max_keys {
            return Err(StoreError::QuotaExceeded(max_keys));
        }
        insert_key(&mut tx, k, std::slice::from_ref(first)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_key_ring(&self, instance: InstanceId, ring: &KeyRingRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO key_rings (instance_id, id, created_at, created_by) VALUES (?, ?, ?, ?)",
        )
        .bind(instance.to_string())
        .bind(&ring.id)
        .bind(ring.created_at.0)
        .bind(&ring.created_by)
        .execute(&self.write)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(Unique::KeyRing)
            } else {
                unavailable(e)
            }
        })?;
        Ok(())
    }

    async fn list_key_rings(&self, instance: InstanceId) -> Result<Vec<KeyRingRecord>> {
        let rows = sqlx::query(
            "SELECT id, created_at, created_by FROM key_rings WHERE instance_id = ? ORDER BY id",
        )
        .bind(instance.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let g = strongroom_keystore::sql::undecodable;
                Ok(KeyRingRecord {
                    id: r.try_get("id").map_err(g)?,
                    created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
                    created_by: r.try_get("created_by").map_err(g)?,
                })
            })
            .collect()
    }

    async fn delete_key_ring(&self, instance: InstanceId, id: &str, force: bool) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let blocking = if force {
            "SELECT COUNT(*) FROM keys WHERE instance_id = ? AND key_ring = ? AND state != 5"
        } else {
            "SELECT COUNT(*) FROM keys WHERE instance_id = ? AND key_ring = ?"
        };
        let n: i64 = sqlx::query_scalar(blocking)
            .bind(instance.to_string())
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        if n > 0 {
            return Err(StoreError::RingNotEmpty(u64::try_from(n).unwrap_or(0)));
        }
        let r = sqlx::query("DELETE FROM key_rings WHERE instance_id = ? AND id = ?")
            .bind(instance.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE keys SET key_ring = 'default', row_version = row_version + 1 WHERE instance_id = ? AND key_ring = ?")
            .bind(instance.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn purge_key(
        &self,
        instance: InstanceId,
        id: KeyId,
        expected_row_version: i64,
    ) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let r =
            sqlx::query("DELETE FROM keys WHERE instance_id = ? AND id = ? AND row_version = ?")
                .bind(instance.to_string())
                .bind(id.to_string())
                .bind(expected_row_version)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            drop(tx);
            return Err(self.not_updated(instance, id).await);
        }
        for table in ["key_versions", "aliases", "registrations"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE instance_id = ? AND key_id = ?"
            ))
            .bind(instance.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn create_api_key(&self, rec: &ApiKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, instance_id, name, roles, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&rec.id)
            .bind(rec.instance.to_string())
            .bind(&rec.name)
            .bind(i64::from(rec.roles.0))
            .bind(rec.secret_hash.to_vec())
            .bind(rec.created_at.0)
            .execute(&self.write)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(Unique::ApiKey) } else { unavailable(e) })?;
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<ApiKeyRecord> {
        let r = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_one(&self.read)
            .await
            .map_err(unavailable)?;
        api_key_from_row(&r)
    }

    async fn list_api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE instance_id = ? ORDER BY created_at, id")
                .bind(instance.to_string())
                .fetch_all(&self.read)
                .await
                .map_err(unavailable)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn delete_api_key(&self, instance: InstanceId, id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM api_keys WHERE instance_id = ? AND id = ?")
            .bind(instance.to_string())
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        if records.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
            return Err(StoreError::Conflict);
        }
        // One multi-row statement per chunk; the `audit_contiguous` trigger refuses gaps
        // and the primary key refuses replays, so no read is needed before the write.
        let mut conn = self.audit.acquire().await.map_err(unavailable)?;
        let mut tx = (records.len() > AUDIT_CHUNK).then_some(());
        if tx.is_some() {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        for chunk in records.chunks(AUDIT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit (seq, at, instance_id, principal, action, key, outcome, status, correlation_id, prev_hash, hash) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.seq)
                    .push_bind(r.at.0)
                    .push_bind(r.instance.map(|i| i.to_string()))
                    .push_bind(r.principal.as_str())
                    .push_bind(r.action.as_str())
                    .push_bind(r.key.as_deref())
                    .push_bind(r.outcome.as_str())
                    .push_bind(i64::from(r.status))
                    .push_bind(r.correlation_id.as_str())
                    .push_bind(r.prev_hash.to_vec())
                    .push_bind(r.hash.to_vec());
            });
            let keep = strongroom_keystore::keep_audit_statement(chunk.len());
            if let Err(e) = q.build().persistent(keep).execute(&mut *conn).await {
                if tx.take().is_some() {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                }
                return Err(match &e {
                    sqlx::Error::Database(d)
                        if d.is_unique_violation()
                            || d.code().as_deref() == Some(SQLITE_CONSTRAINT_TRIGGER) =>
                    {
                        StoreError::Conflict
                    }
                    _ => unavailable(e),
                });
            }
        }
        if tx.is_some() {
            sqlx::query("COMMIT")
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn audit_usage(
        &self,
        instance: InstanceId,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit WHERE instance_id = ? AND at >= ? AND at < ?",
        )
        .bind(instance.to_string())
        .bind(from.0)
        .bind(to.0)
        .fetch_one(&self.audit)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn audit_head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.audit)
            .await
            .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let seq: i64 = r
                    .try_get("seq")
                    .map_err(strongroom_keystore::sql::undecodable)?;
                let hash: Vec<u8> = r
                    .try_get("hash")
                    .map_err(strongroom_keystore::sql::undecodable)?;
                Ok(Some((
                    seq,
                    hash.try_into().map_err(|_| corrupt("audit hash"))?,
                )))
            }
        }
    }

    async fn read_audit(&self, from: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?")
            .bind(from)
            .bind(i64::from(limit))
            .fetch_all(&self.audit)
            .await
            .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// Inserts a key with its versions and aliases in the caller's transaction.
async fn insert_key(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    k: &KeyRecord,
    versions: &[KeyVersionRecord],
) -> Result<()> {
    sqlx::query(
            "INSERT INTO keys (instance_id, id, name, description, aliases, kind, imported, bits, state, key_ring, \
             created_at, created_by, updated_at, state_changed_at, expiration, last_rotated_at, deleted_at, deleted_by, \
             current_version, current_version_at, version_count, row_version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(k.instance.to_string())
        .bind(k.id.to_string())
        .bind(&k.name)
        .bind(&k.description)
        .bind(k.aliases.join("\n"))
        .bind(i64::from(k.kind.code()))
        .bind(k.imported)
        .bind(k.bits)
        .bind(i64::from(k.state.code()))
        .bind(&k.key_ring)
        .bind(k.created_at.0)
        .bind(&k.created_by)
        .bind(k.updated_at.0)
        .bind(k.state_changed_at.0)
        .bind(k.expiration.map(|t| t.0))
        .bind(k.last_rotated_at.map(|t| t.0))
        .bind(k.deleted_at.map(|t| t.0))
        .bind(&k.deleted_by)
        .bind(k.current_version.to_string())
        .bind(k.current_version_at.0)
        .bind(k.version_count)
        .bind(k.row_version)
        .execute(&mut **tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(Unique::Key) } else { unavailable(e) })?;
    sqlx::query(POLICY_COLUMNS)
        .bind(k.rotation.as_ref().map(|p| p.enabled))
        .bind(k.rotation.as_ref().map(|p| i64::from(p.interval_month)))
        .bind(k.rotation.as_ref().map(|p| p.updated_at.0))
        .bind(k.rotation.as_ref().map(|p| p.updated_by.as_str()))
        .bind(k.dual_auth.as_ref().map(|p| p.enabled))
        .bind(k.dual_auth.as_ref().map(|p| p.updated_at.0))
        .bind(k.dual_auth.as_ref().map(|p| p.updated_by.as_str()))
        .bind(k.deletion_auth.as_ref().map(|d| d.by.as_str()))
        .bind(k.deletion_auth.as_ref().map(|d| d.at.0))
        .bind(k.instance.to_string())
        .bind(k.id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for alias in &k.aliases {
        sqlx::query("INSERT INTO aliases (instance_id, alias, key_id) VALUES (?, ?, ?)")
            .bind(k.instance.to_string())
            .bind(alias)
            .bind(k.id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(Unique::Alias)
                } else {
                    unavailable(e)
                }
            })?;
    }
    for v in versions {
        sqlx::query("INSERT INTO key_versions (instance_id, key_id, seq, id, created_at, blob) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(k.instance.to_string())
                .bind(k.id.to_string())
                .bind(v.seq)
                .bind(v.id.to_string())
                .bind(v.created_at.0)
                .bind(&v.blob)
                .execute(&mut **tx)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(Unique::KeyVersion) } else { unavailable(e) })?;
    }
    Ok(())
}

/// Shared SQL (`strongroom_keystore::sql`) runs here: changes on the writer connection,
/// queries on the read pool.
#[async_trait]
impl SqlExec for SqliteStore {
    type Row = sqlx::sqlite::SqliteRow;

    async fn execute(&self, sql: &str, args: Vec<Arg>, unique: Unique) -> Result<u64> {
        bind_all(sqlx::query(sql), args)
            .execute(&self.write)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| unique_or(e, unique))
    }

    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>> {
        let mut tx = self.write.begin().await.map_err(unavailable)?;
        let mut counts = Vec::with_capacity(stmts.len());
        for s in stmts {
            let n = bind_all(sqlx::query(s.sql), s.args)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or(e, s.unique))?
                .rows_affected();
            if s.required && n == 0 {
                return Err(StoreError::NotFound);
            }
            counts.push(n);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(counts)
    }

    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        bind_all(sqlx::query(sql), args)
            .fetch_all(&self.read)
            .await
            .map_err(unavailable)
    }
}

fn unique_or(e: sqlx::Error, unique: Unique) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::AlreadyExists(unique)
    } else {
        unavailable(e)
    }
}
