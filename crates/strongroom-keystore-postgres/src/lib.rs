//! The PostgreSQL keystore: several Strongroom nodes share one database. Every statement
//! runs with a bounded `statement_timeout` and pool acquire time, so a stuck database makes
//! requests fail fast with a retryable error instead of hanging; serialization failures and
//! deadlocks are retried. Writes use the same optimistic `row_version` rule as every backend.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use strongroom_keystore::sql::{
    api_key_from_row, audit_from_row, bind_all, instance_from_row, key_from_row,
    registration_from_row, Arg, SqlExec, Stmt,
};
use strongroom_keystore::*;
use strongroom_model::{InstanceId, KeyId, KeyKind, UnitId, UnixMillis, VersionId};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Longest a statement may run.
    pub statement_timeout: Duration,
    /// Longest a request waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 16,
        }
    }
}

/// The PostgreSQL keystore.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    changes: tokio::sync::broadcast::Sender<Change>,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::Unavailable(Box::new(other)),
    }
}

fn code_of(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn is_unique(e: &sqlx::Error) -> bool {
    code_of(e).as_deref() == Some("23505")
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn g(e: sqlx::Error) -> StoreError {
    strongroom_keystore::sql::undecodable(e)
}

fn uuid(s: String) -> Result<uuid::Uuid> {
    uuid::Uuid::from_str(&s).map_err(|_| corrupt("uuid"))
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what))
}

/// Runs `op` again on serialization failures and deadlocks (SQLSTATE 40001, 40P01).
async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, RetryableError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(RetryableError::Sql(e))
                if matches!(code_of(&e).as_deref(), Some("40001" | "40P01")) && attempt < 5 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            Err(RetryableError::Sql(e)) => return Err(unavailable(e)),
            Err(RetryableError::Store(e)) => return Err(e),
        }
    }
}

enum RetryableError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for RetryableError {
    fn from(e: sqlx::Error) -> Self {
        RetryableError::Sql(e)
    }
}

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str, s: &PgSettings) -> Result<Self> {
        let ms = s.statement_timeout.as_millis().to_string();
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?
            .options([
                ("statement_timeout", ms.as_str()),
                ("lock_timeout", ms.as_str()),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(s.max_connections)
            .acquire_timeout(s.acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let (changes, _) = tokio::sync::broadcast::channel(4096);
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
            .await
            .map_err(unavailable)?;
        listener
            .listen("strongroom_changes")
            .await
            .map_err(unavailable)?;
        let feed = changes.clone();
        let watched = pool.clone();
        tokio::spawn(async move {
            while !watched.is_closed() {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        let _ = feed.send(parse_change(n.payload()));
                    }
                    // The connection dropped: notifications may be lost, so flush everything.
                    Ok(None) => {
                        let _ = feed.send(Change::All);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed interrupted; caches flushed");
                        let _ = feed.send(Change::All);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(PgStore { pool, changes })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn not_updated(&self, instance: InstanceId, id: KeyId) -> StoreError {
        match sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM keys WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.to_string())
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await
        {
            Ok(n) if n > 0 => StoreError::Conflict,
            Ok(_) => StoreError::NotFound,
            Err(e) => unavailable(e),
        }
    }
}

/// The change feed of one subscriber.
struct Feed(tokio::sync::broadcast::Receiver<Change>);

#[async_trait]
impl ChangeFeed for Feed {
    async fn next(&mut self) -> Option<Change> {
        use tokio::sync::broadcast::error::RecvError;
        match self.0.recv().await {
            Ok(c) => Some(c),
            Err(RecvError::Lagged(_)) => Some(Change::All),
            Err(RecvError::Closed) => None,
        }
    }
}

fn parse_change(payload: &str) -> Change {
    let mut parts = payload.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("k"), Some(i), Some(k)) => match (i.parse(), k.parse()) {
            (Ok(i), Ok(k)) => Change::Key(i, k),
            _ => Change::All,
        },
        (Some("o"), Some(i), Some(o)) => match (i.parse(), o.parse()) {
            (Ok(i), Ok(o)) => Change::KmipObject(i, o),
            _ => Change::All,
        },
        (Some("i"), Some(i), None) => i.parse().map(Change::Instance).unwrap_or(Change::All),
        _ => Change::All,
    }
}

use strongroom_keystore::sql::KEY_COLUMNS;

fn push_key_values<'a>(
    b: &mut sqlx::query_builder::Separated<'_, 'a, Postgres, &'static str>,
    k: &'a KeyRecord,
) {
    b.push_bind(k.instance.to_string())
        .push_bind(k.id.to_string())
        .push_bind(&k.name)
        .push_bind(&k.description)
        .push_bind(k.aliases.join("\n"))
        .push_bind(i64::from(k.kind.code()))
        .push_bind(k.imported)
        .push_bind(i64::from(k.bits))
        .push_bind(i64::from(k.state.code()))
        .push_bind(&k.key_ring)
        .push_bind(k.created_at.0)
        .push_bind(&k.created_by)
        .push_bind(k.updated_at.0)
        .push_bind(k.state_changed_at.0)
        .push_bind(k.expiration.map(|t| t.0))
        .push_bind(k.last_rotated_at.map(|t| t.0))
        .push_bind(k.deleted_at.map(|t| t.0))
        .push_bind(&k.deleted_by)
        .push_bind(k.current_version.to_string())
        .push_bind(k.current_version_at.0)
        .push_bind(i64::from(k.version_count))
        .push_bind(k.row_version)
        .push_bind(k.rotation.as_ref().map(|p| p.enabled))
        .push_bind(k.rotation.as_ref().map(|p| i64::from(p.interval_month)))
        .push_bind(k.rotation.as_ref().map(|p| p.updated_at.0))
        .push_bind(k.rotation.as_ref().map(|p| p.updated_by.clone()))
        .push_bind(k.dual_auth.as_ref().map(|p| p.enabled))
        .push_bind(k.dual_auth.as_ref().map(|p| p.updated_at.0))
        .push_bind(k.dual_auth.as_ref().map(|p| p.updated_by.clone()))
        .push_bind(k.deletion_auth.as_ref().map(|d| d.by.clone()))
        .push_bind(k.deletion_auth.as_ref().map(|d| d.at.0));
}

/// Writes a key's mutable columns if its row_version is the one read; returns rows changed.
async fn update_in<'c, E>(exec: E, k: &KeyRecord) -> std::result::Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    let r = sqlx::query(
        "UPDATE keys SET name = $1, description = $2, state = $3, key_ring = $4, updated_at = $5, state_changed_at = $6, \
         expiration = $7, last_rotated_at = $8, deleted_at = $9, deleted_by = $10, current_version = $11, \
         current_version_at = $12, version_count = $13, aliases = $14, rotation_enabled = $15, rotation_interval_month = $16, \
         rotation_policy_at = $17, rotation_policy_by = $18, dual_auth_enabled = $19, dual_auth_policy_at = $20, \
         dual_auth_policy_by = $21, deletion_authorized_by = $22, deletion_authorized_at = $23, row_version = row_version + 1 \
         WHERE instance_id = $24 AND id = $25 AND row_version = $26",
    )
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
    .bind(i64::from(k.version_count))
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

fn push_filter<'a>(q: &mut QueryBuilder<'a, Postgres>, instance: InstanceId, f: &'a KeyFilter) {
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

#[async_trait]
impl KeyStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn create_instance(&self, rec: &InstanceRecord) -> Result<()> {
        sqlx::query("INSERT INTO instances (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(rec.id.to_string())
            .bind(&rec.name)
            .bind(rec.created_at.0)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::AlreadyExists(Unique::Instance)
                } else {
                    unavailable(e)
                }
            })?;
        Ok(())
    }

    async fn get_instance(&self, id: InstanceId) -> Result<InstanceRecord> {
        let r = sqlx::query("SELECT * FROM instances WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        instance_from_row(&r)
    }

    async fn list_instances(&self) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query("SELECT * FROM instances ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(instance_from_row).collect()
    }

    async fn delete_instance(&self, id: InstanceId, force: bool, now: UnixMillis) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keys WHERE instance_id = $1")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 && !force {
                return Err(RetryableError::Store(StoreError::InstanceNotEmpty(
                    u64::try_from(n).unwrap_or(0),
                )));
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
                sqlx::query(&format!("DELETE FROM {table} WHERE instance_id = $1"))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let r = sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(RetryableError::Store(StoreError::NotFound));
            }
            sqlx::query(
                "INSERT INTO deleted_instances (id, deleted_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_key(&self, k: &KeyRecord, first: &KeyVersionRecord) -> Result<()> {
        // A new key is a restore of a key with one version: one code path, one transaction.
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            insert_key(&mut tx, k, std::slice::from_ref(first)).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn get_key(&self, instance: InstanceId, id: KeyId) -> Result<KeyRecord> {
        let r = sqlx::query("SELECT * FROM keys WHERE instance_id = $1 AND id = $2")
            .bind(instance.to_string())
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        key_from_row(&r)
    }

    async fn key_id_by_alias(&self, instance: InstanceId, alias: &str) -> Result<KeyId> {
        let id: String =
            sqlx::query_scalar("SELECT key_id FROM aliases WHERE instance_id = $1 AND alias = $2")
                .bind(instance.to_string())
                .bind(alias)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(KeyId(uuid(id)?))
    }

    async fn list_keys(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Vec<KeyRecord>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM keys");
        push_filter(&mut q, instance, filter);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.limit));
        q.push(" OFFSET ").push_bind(i64::from(page.offset));
        let rows = q.build().fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn count_keys(&self, instance: InstanceId, filter: &KeyFilter) -> Result<u64> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM keys");
        push_filter(&mut q, instance, filter);
        let n: i64 = q
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn key_versions(&self, instance: InstanceId, id: KeyId) -> Result<Vec<KeyVersionRecord>> {
        let rows = sqlx::query("SELECT seq, id, created_at, blob FROM key_versions WHERE instance_id = $1 AND key_id = $2 ORDER BY seq DESC")
            .bind(instance.to_string())
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        rows.iter()
            .map(|r| {
                Ok(KeyVersionRecord {
                    seq: u32_of(r.try_get("seq").map_err(g)?, "seq")?,
                    id: VersionId(uuid(r.try_get("id").map_err(g)?)?),
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
             WHERE v.instance_id = $1 AND substring(v.blob from 2 for 16) <> $2 \
               AND (v.key_id COLLATE \"C\" > $3 OR (v.key_id = $3 AND v.seq > $4)) \
             ORDER BY v.key_id COLLATE \"C\", v.seq LIMIT $5",
        )
        .bind(instance.to_string())
        .bind(mk_id.as_slice())
        .bind(&after_key)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(SealedVersion {
                    key: KeyId(uuid(r.try_get("key_id").map_err(g)?)?),
                    seq: u32_of(r.try_get("seq").map_err(g)?, "seq")?,
                    version: VersionId(uuid(r.try_get("id").map_err(g)?)?),
                    blob: r.try_get("blob").map_err(g)?,
                    kind: KeyKind::from_code(r.try_get("kind").map_err(g)?)
                        .ok_or_else(|| corrupt("kind"))?,
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
            "SELECT COUNT(*) FROM key_versions WHERE instance_id = $1 AND substring(blob from 2 for 16) <> $2",
        )
        .bind(instance.to_string())
        .bind(mk_id.as_slice())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn replace_blobs(&self, instance: InstanceId, updates: &[BlobUpdate]) -> Result<u64> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut n = 0;
            for u in updates {
                n += sqlx::query("UPDATE key_versions SET blob = $1 WHERE instance_id = $2 AND key_id = $3 AND seq = $4 AND blob = $5")
                    .bind(&u.new)
                    .bind(instance.to_string())
                    .bind(u.key.to_string())
                    .bind(i64::from(u.seq))
                    .bind(&u.old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    async fn add_unit_usage(&self, counts: &[UnitUsage]) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            for c in counts {
                sqlx::query("INSERT INTO unit_usage (instance_id, month, unit_id, calls) VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, month, unit_id) DO UPDATE SET calls = unit_usage.calls + excluded.calls")
                    .bind(c.instance.to_string())
                    .bind(&c.month)
                    .bind(c.unit.to_string())
                    .bind(i64::try_from(c.calls).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn unit_usage(&self, instance: InstanceId, month: &str) -> Result<Vec<UnitUsage>> {
        let rows = sqlx::query("SELECT unit_id, calls FROM unit_usage WHERE instance_id = $1 AND month = $2 ORDER BY unit_id")
            .bind(instance.to_string())
            .bind(month)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(UnitUsage {
                    instance,
                    unit: UnitId(uuid(r.try_get("unit_id").map_err(g)?)?),
                    month: month.to_string(),
                    calls: u64::try_from(r.try_get::<i64, _>("calls").map_err(g)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<i64> {
        let n = retrying(|| async { Ok(update_in(&self.pool, key).await?) }).await?;
        if n == 0 {
            return Err(self.not_updated(key.instance, key.id).await);
        }
        Ok(key.row_version + 1)
    }

    async fn add_key_version(&self, key: &KeyRecord, v: &KeyVersionRecord) -> Result<i64> {
        let done = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            if update_in(&mut *tx, key).await? == 0 {
                return Ok(false);
            }
            let r = sqlx::query("INSERT INTO key_versions (instance_id, key_id, seq, id, created_at, blob) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(key.instance.to_string())
                .bind(key.id.to_string())
                .bind(i64::from(v.seq))
                .bind(v.id.to_string())
                .bind(v.created_at.0)
                .bind(&v.blob)
                .execute(&mut *tx)
                .await;
            if let Err(e) = r {
                return Err(if is_unique(&e) { RetryableError::Store(StoreError::Conflict) } else { e.into() });
            }
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        if !done {
            return Err(self.not_updated(key.instance, key.id).await);
        }
        Ok(key.row_version + 1)
    }

    async fn add_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let done = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let r =
                sqlx::query("INSERT INTO aliases (instance_id, alias, key_id) VALUES ($1, $2, $3)")
                    .bind(key.instance.to_string())
                    .bind(alias)
                    .bind(key.id.to_string())
                    .execute(&mut *tx)
                    .await;
            if let Err(e) = r {
                return Err(if is_unique(&e) {
                    RetryableError::Store(StoreError::AlreadyExists(Unique::Alias))
                } else {
                    e.into()
                });
            }
            if update_in(&mut *tx, key).await? == 0 {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        if !done {
            return Err(self.not_updated(key.instance, key.id).await);
        }
        Ok(key.row_version + 1)
    }

    async fn remove_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let done = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "DELETE FROM aliases WHERE instance_id = $1 AND alias = $2 AND key_id = $3",
            )
            .bind(key.instance.to_string())
            .bind(alias)
            .bind(key.id.to_string())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Err(RetryableError::Store(StoreError::NotFound));
            }
            if update_in(&mut *tx, key).await? == 0 {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        if !done {
            return Err(self.not_updated(key.instance, key.id).await);
        }
        Ok(key.row_version + 1)
    }

    async fn keys_with_rotation_policy(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE rotation_enabled AND state IN (1, 3) ORDER BY instance_id, id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn put_import_token(&self, instance: InstanceId, t: &ImportTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO import_tokens (instance_id, id, created_at, expires_at, max_retrievals, remaining, public_key, private_blob, nonce) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (instance_id) DO UPDATE SET id = excluded.id, \
             created_at = excluded.created_at, expires_at = excluded.expires_at, max_retrievals = excluded.max_retrievals, \
             remaining = excluded.remaining, public_key = excluded.public_key, private_blob = excluded.private_blob, nonce = excluded.nonce",
        )
        .bind(instance.to_string())
        .bind(t.id.to_string())
        .bind(t.created_at.0)
        .bind(t.expires_at.0)
        .bind(i64::from(t.max_retrievals))
        .bind(i64::from(t.remaining))
        .bind(&t.public_key)
        .bind(&t.private_blob)
        .bind(&t.nonce)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn get_import_token(&self, instance: InstanceId) -> Result<ImportTokenRecord> {
        let r = sqlx::query("SELECT * FROM import_tokens WHERE instance_id = $1")
            .bind(instance.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(ImportTokenRecord {
            id: KeyId(uuid(r.try_get("id").map_err(g)?)?),
            created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
            expires_at: UnixMillis(r.try_get("expires_at").map_err(g)?),
            max_retrievals: u32_of(r.try_get("max_retrievals").map_err(g)?, "max_retrievals")?,
            remaining: u32_of(r.try_get("remaining").map_err(g)?, "remaining")?,
            public_key: r.try_get("public_key").map_err(g)?,
            private_blob: r.try_get("private_blob").map_err(g)?,
            nonce: r.try_get("nonce").map_err(g)?,
        })
    }

    async fn take_import_token_retrieval(&self, instance: InstanceId, id: KeyId) -> Result<u32> {
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE import_tokens SET remaining = remaining - 1 WHERE instance_id = $1 AND id = $2 AND remaining > 0 RETURNING remaining",
        )
        .bind(instance.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match left {
            Some(n) => u32_of(n, "remaining"),
            None => self
                .get_import_token(instance)
                .await
                .and(Err(StoreError::Conflict)),
        }
    }

    async fn put_instance_policies(
        &self,
        instance: InstanceId,
        policies: &[InstancePolicyRecord],
    ) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            for p in policies {
                sqlx::query(
                    "INSERT INTO instance_policies (instance_id, policy_type, enabled, attributes, created_at, created_by, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (instance_id, policy_type) DO UPDATE SET \
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
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn list_instance_policies(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<InstancePolicyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM instance_policies WHERE instance_id = $1 ORDER BY policy_type",
        )
        .bind(instance.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
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
             created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
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
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_registration(&self, instance: InstanceId, key: KeyId, crn: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM registrations WHERE instance_id = $1 AND key_id = $2 AND resource_crn = $3")
            .bind(instance.to_string())
            .bind(key.to_string())
            .bind(crn)
            .execute(&self.pool)
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
        let mut q =
            QueryBuilder::<Postgres>::new("SELECT * FROM registrations WHERE instance_id = ");
        q.push_bind(instance.to_string());
        if let Some(k) = key {
            q.push(" AND key_id = ").push_bind(k.to_string());
        }
        q.push(" ORDER BY key_id, resource_crn");
        let rows = q.build().fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(registration_from_row).collect()
    }

    async fn mark_synced(
        &self,
        instance: InstanceId,
        key: KeyId,
        at: UnixMillis,
        not_after: UnixMillis,
    ) -> Result<()> {
        let r = sqlx::query("UPDATE keys SET last_synced_at = $1 WHERE instance_id = $2 AND id = $3 AND (last_synced_at IS NULL OR last_synced_at <= $4)")
            .bind(at.0)
            .bind(instance.to_string())
            .bind(key.to_string())
            .bind(not_after.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if r.rows_affected() == 0 {
            return Err(self.not_updated(instance, key).await);
        }
        Ok(())
    }

    async fn keys_expired_by(&self, now: UnixMillis) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE state IN (1, 2) AND expiration IS NOT NULL AND expiration <= $1 ORDER BY instance_id, id")
            .bind(now.0)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn keys_deleted_by(&self, cutoff: UnixMillis) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM keys WHERE state = 5 AND COALESCE(deleted_at, state_changed_at) <= $1 ORDER BY instance_id, id")
            .bind(cutoff.0)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn instance_deleted(&self, id: InstanceId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deleted_instances WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        Some(Box::new(Feed(self.changes.subscribe())))
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO jobs (name, holder, lease_until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET \
             holder = excluded.holder, lease_until = excluded.lease_until WHERE jobs.holder = excluded.holder OR jobs.lease_until < $4",
        )
        .bind(job)
        .bind(holder)
        .bind(now.0 + lease_ms)
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(r.rows_affected() > 0)
    }

    async fn restore_keys(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            for (k, versions) in keys {
                insert_key(&mut tx, k, versions).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_key_within(
        &self,
        k: &KeyRecord,
        first: &KeyVersionRecord,
        max_keys: u64,
    ) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            // Serializes creations of one instance across every node until commit.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(k.instance.to_string())
                .execute(&mut *tx)
                .await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keys WHERE instance_id = $1")
                .bind(k.instance.to_string())
                .fetch_one(&mut *tx)
                .await?;
            if u64::try_from(n).unwrap_or(0) >= max_keys {
                return Err(RetryableError::Store(StoreError::QuotaExceeded(max_keys)));
            }
            insert_key(&mut tx, k, std::slice::from_ref(first)).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_key_ring(&self, instance: InstanceId, ring: &KeyRingRecord) -> Result<()> {
        sqlx::query("INSERT INTO key_rings (instance_id, id, created_at, created_by) VALUES ($1, $2, $3, $4)")
            .bind(instance.to_string())
            .bind(&ring.id)
            .bind(ring.created_at.0)
            .bind(&ring.created_by)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique(&e) { StoreError::AlreadyExists(Unique::KeyRing) } else { unavailable(e) })?;
        Ok(())
    }

    async fn list_key_rings(&self, instance: InstanceId) -> Result<Vec<KeyRingRecord>> {
        let rows = sqlx::query(
            "SELECT id, created_at, created_by FROM key_rings WHERE instance_id = $1 ORDER BY id",
        )
        .bind(instance.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(KeyRingRecord {
                    id: r.try_get("id").map_err(g)?,
                    created_at: UnixMillis(r.try_get("created_at").map_err(g)?),
                    created_by: r.try_get("created_by").map_err(g)?,
                })
            })
            .collect()
    }

    async fn delete_key_ring(&self, instance: InstanceId, id: &str, force: bool) -> Result<()> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let blocking = if force {
                "SELECT COUNT(*) FROM keys WHERE instance_id = $1 AND key_ring = $2 AND state <> 5"
            } else {
                "SELECT COUNT(*) FROM keys WHERE instance_id = $1 AND key_ring = $2"
            };
            let n: i64 = sqlx::query_scalar(blocking).bind(instance.to_string()).bind(id).fetch_one(&mut *tx).await?;
            if n > 0 {
                return Err(RetryableError::Store(StoreError::RingNotEmpty(u64::try_from(n).unwrap_or(0))));
            }
            let r = sqlx::query("DELETE FROM key_rings WHERE instance_id = $1 AND id = $2").bind(instance.to_string()).bind(id).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(RetryableError::Store(StoreError::NotFound));
            }
            sqlx::query("UPDATE keys SET key_ring = 'default', row_version = row_version + 1 WHERE instance_id = $1 AND key_ring = $2")
                .bind(instance.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn purge_key(
        &self,
        instance: InstanceId,
        id: KeyId,
        expected_row_version: i64,
    ) -> Result<()> {
        let done = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "DELETE FROM keys WHERE instance_id = $1 AND id = $2 AND row_version = $3",
            )
            .bind(instance.to_string())
            .bind(id.to_string())
            .bind(expected_row_version)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            for table in ["key_versions", "aliases", "registrations"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE instance_id = $1 AND key_id = $2"
                ))
                .bind(instance.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await?;
        if !done {
            return Err(self.not_updated(instance, id).await);
        }
        Ok(())
    }

    async fn create_api_key(&self, rec: &ApiKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, instance_id, name, roles, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&rec.id)
            .bind(rec.instance.to_string())
            .bind(&rec.name)
            .bind(i64::from(rec.roles.0))
            .bind(rec.secret_hash.to_vec())
            .bind(rec.created_at.0)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique(&e) { StoreError::AlreadyExists(Unique::ApiKey) } else { unavailable(e) })?;
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<ApiKeyRecord> {
        let r = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        api_key_from_row(&r)
    }

    async fn list_api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>> {
        let rows =
            sqlx::query("SELECT * FROM api_keys WHERE instance_id = $1 ORDER BY created_at, id")
                .bind(instance.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn delete_api_key(&self, instance: InstanceId, id: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM api_keys WHERE instance_id = $1 AND id = $2")
            .bind(instance.to_string())
            .bind(id)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for chunk in records.chunks(strongroom_keystore::AUDIT_CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO audit (seq, at, instance_id, principal, action, key, outcome, status, correlation_id, prev_hash, hash) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.seq)
                    .push_bind(r.at.0)
                    .push_bind(r.instance.map(|i| i.to_string()))
                    .push_bind(r.principal.clone())
                    .push_bind(r.action.clone())
                    .push_bind(r.key.clone())
                    .push_bind(r.outcome.clone())
                    .push_bind(i64::from(r.status))
                    .push_bind(r.correlation_id.clone())
                    .push_bind(r.prev_hash.to_vec())
                    .push_bind(r.hash.to_vec());
            });
            let keep = strongroom_keystore::keep_audit_statement(chunk.len());
            if let Err(e) = q.build().persistent(keep).execute(&mut *tx).await {
                return Err(match code_of(&e).as_deref() {
                    Some("23505" | "SR001") => StoreError::Conflict,
                    _ => unavailable(e),
                });
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn audit_usage(
        &self,
        instance: InstanceId,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit WHERE instance_id = $1 AND at >= $2 AND at < $3",
        )
        .bind(instance.to_string())
        .bind(from.0)
        .bind(to.0)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn audit_head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let hash: Vec<u8> = r.try_get("hash").map_err(g)?;
                Ok(Some((
                    r.try_get("seq").map_err(g)?,
                    hash.try_into().map_err(|_| corrupt("audit hash"))?,
                )))
            }
        }
    }

    async fn read_audit(&self, from: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(from)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// Inserts a key with its versions and aliases in the caller's transaction.
async fn insert_key(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    k: &KeyRecord,
    versions: &[KeyVersionRecord],
) -> std::result::Result<(), RetryableError> {
    let mut q = QueryBuilder::<Postgres>::new(format!("INSERT INTO keys ({KEY_COLUMNS}) VALUES ("));
    {
        let mut sep = q.separated(", ");
        push_key_values(&mut sep, k);
    }
    q.push(")");
    if let Err(e) = q.build().execute(&mut **tx).await {
        return Err(if is_unique(&e) {
            RetryableError::Store(StoreError::AlreadyExists(Unique::Key))
        } else {
            e.into()
        });
    }
    for alias in &k.aliases {
        let r = sqlx::query("INSERT INTO aliases (instance_id, alias, key_id) VALUES ($1, $2, $3)")
            .bind(k.instance.to_string())
            .bind(alias)
            .bind(k.id.to_string())
            .execute(&mut **tx)
            .await;
        if let Err(e) = r {
            return Err(if is_unique(&e) {
                RetryableError::Store(StoreError::AlreadyExists(Unique::Alias))
            } else {
                e.into()
            });
        }
    }
    for v in versions {
        sqlx::query("INSERT INTO key_versions (instance_id, key_id, seq, id, created_at, blob) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(k.instance.to_string())
                    .bind(k.id.to_string())
                    .bind(i64::from(v.seq))
                    .bind(v.id.to_string())
                    .bind(v.created_at.0)
                    .bind(&v.blob)
                    .execute(&mut **tx)
                    .await?;
    }
    Ok(())
}

/// Shared SQL (`strongroom_keystore::sql`) runs here, on the one pool.
#[async_trait]
impl SqlExec for PgStore {
    type Row = sqlx::postgres::PgRow;

    async fn execute(&self, sql: &str, args: Vec<Arg>, unique: Unique) -> Result<u64> {
        bind_all(sqlx::query(sql), args)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::AlreadyExists(unique)
                } else {
                    unavailable(e)
                }
            })
    }

    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut counts = Vec::with_capacity(stmts.len());
            for s in &stmts {
                let r = bind_all(sqlx::query(s.sql), s.args.clone())
                    .execute(&mut *tx)
                    .await;
                let n = match r {
                    Ok(r) => r.rows_affected(),
                    Err(e) if is_unique(&e) => {
                        return Err(RetryableError::Store(StoreError::AlreadyExists(s.unique)))
                    }
                    Err(e) => return Err(e.into()),
                };
                if s.required && n == 0 {
                    return Err(RetryableError::Store(StoreError::NotFound));
                }
                counts.push(n);
            }
            tx.commit().await?;
            Ok(counts)
        })
        .await
    }

    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        bind_all(sqlx::query(sql), args)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }
}
