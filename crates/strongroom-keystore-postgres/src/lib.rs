//! The PostgreSQL keystore: several Strongroom nodes share one database. Every statement
//! runs with a bounded `statement_timeout` and pool acquire time, so a stuck database makes
//! requests fail fast with a retryable error instead of hanging; serialization failures and
//! deadlocks are retried. Writes use the same optimistic `row_version` rule as every backend.
//!
//! A URL may name several servers of one replicated database (libpq's multi-host form,
//! `postgres://user@h1:5432,h2:5432/db`): the store then works with whichever accepts writes,
//! and when it loses the database it looks for the primary again, so that it follows a
//! failover by itself.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod hosts;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use strongroom_keystore::sql::{bind_all, to_completion, Arg, SqlExec, Stmt};
use strongroom_keystore::{AuditRecord, Change, ChangeFeed, Result, StoreError};

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

/// How long the probe waits while the database is known to be away (the last operation
/// failed for want of it): a database that is back needs far less to show it.
const DEGRADED_DEADLINE: Duration = Duration::from_secs(2);

/// The PostgreSQL keystore.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Longest any operation may take, measured here: `statement_timeout` is the server's,
    /// and a database cut off by the network (packets dropped, not refused) never answers.
    deadline: Duration,
    /// Set when an operation failed for want of the database; the next success flushes
    /// every cache ([`Change::All`]): what changed meanwhile may have been missed.
    degraded: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set while one operation probes a degraded database.
    probing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The servers the URL names, and which of them the pool connects to.
    servers: Arc<Servers>,
}

/// The servers of one replicated database, and the pool's current choice among them.
#[derive(Debug)]
struct Servers {
    options: Vec<PgConnectOptions>,
    current: AtomicUsize,
    /// When the pool last moved to another server, in nanoseconds after `epoch`: connections
    /// opened before that lead to the old one and are not used again.
    moved_at: AtomicU64,
    epoch: Instant,
}

impl Servers {
    fn several(&self) -> bool {
        self.options.len() > 1
    }

    fn name(&self, i: usize) -> String {
        let o = &self.options[i];
        format!("{}:{}", o.get_host(), o.get_port())
    }

    /// Whether a connection opened `age` ago predates the last move.
    fn stale(&self, age: Duration) -> bool {
        let opened = self.epoch.elapsed().saturating_sub(age);
        (opened.as_nanos() as u64) < self.moved_at.load(Ordering::Acquire)
    }

    /// The first server, in the URL's order, that answers within `each` and accepts writes.
    async fn find_primary(&self, each: Duration) -> Result<usize> {
        let mut seen = Vec::with_capacity(self.options.len());
        for (i, o) in self.options.iter().enumerate() {
            let answer = tokio::time::timeout(each, async {
                let mut c = PgConnection::connect_with(o).await?;
                let standby = read_only(&mut c).await;
                let _ = c.close().await;
                standby
            })
            .await;
            match answer {
                Ok(Ok(false)) => return Ok(i),
                Ok(Ok(true)) => seen.push(format!("{} is read-only", self.name(i))),
                Ok(Err(e)) => seen.push(format!("{}: {e}", self.name(i))),
                Err(_) => seen.push(format!("{} did not answer within {each:?}", self.name(i))),
            }
        }
        Err(StoreError::Unavailable(Box::new(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            format!("no server accepts writes ({})", seen.join("; ")),
        ))))
    }
}

/// Several servers are named to survive a failover; with asynchronous replication a
/// failover can still lose the last writes the old primary acknowledged. Said once, at start.
async fn warn_if_asynchronous(pool: &PgPool) {
    let show = |what: &'static str| async move {
        sqlx::query_scalar::<_, String>(what)
            .fetch_one(pool)
            .await
            .unwrap_or_default()
    };
    let standbys = show("SHOW synchronous_standby_names").await;
    let commit = show("SHOW synchronous_commit").await;
    if standbys.trim().is_empty() || matches!(commit.as_str(), "off" | "local") {
        tracing::warn!(
            synchronous_standby_names = %standbys,
            synchronous_commit = %commit,
            "the primary replicates asynchronously: a failover can lose writes it has \
             acknowledged; set synchronous_standby_names (docs/runbooks/postgresql-replication.md)"
        );
    }
}

/// Whether the server behind `c` refuses writes: a standby, or a promoted standby that its
/// failover manager keeps read-only until the old primary is known to be down (libpq's test
/// for `target_session_attrs=read-write`).
async fn read_only(c: &mut PgConnection) -> std::result::Result<bool, sqlx::Error> {
    let v: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(c)
        .await?;
    Ok(v == "on")
}

/// Clears the probing flag when the probe ends, however it ends.
struct ProbeDone<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ProbeDone<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
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
    /// Connects to `url` (with several hosts: to the one that accepts writes) and applies
    /// migrations.
    pub async fn connect(url: &str, s: &PgSettings) -> Result<Self> {
        let ms = s.statement_timeout.as_millis().to_string();
        // A node cut off in the middle of a transaction would otherwise hold its locks (the
        // instance's creation lock among them) until the kernel gives the connection up,
        // minutes later, and stall every other node: the server ends such a transaction, and
        // before the others' lock waits run out, so that they are delayed, not refused.
        let idle_ms = (s.statement_timeout * 4 / 5)
            .max(Duration::from_secs(1))
            .as_millis()
            .to_string();
        let options = hosts::split(url)
            .iter()
            .map(|u| {
                PgConnectOptions::from_str(u).map(|o| {
                    o.options([
                        ("statement_timeout", ms.as_str()),
                        ("lock_timeout", ms.as_str()),
                        ("idle_in_transaction_session_timeout", idle_ms.as_str()),
                    ])
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let servers = Arc::new(Servers {
            options,
            current: AtomicUsize::new(0),
            moved_at: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let mut pool_options = PgPoolOptions::new()
            .max_connections(s.max_connections)
            .acquire_timeout(s.acquire_timeout);
        if servers.several() {
            let first = servers.find_primary(s.acquire_timeout).await?;
            servers.current.store(first, Ordering::Release);
            tracing::info!(server = %servers.name(first), "connected to the primary");
            let known = servers.clone();
            pool_options = pool_options
                // A server chosen as the primary may since have become a standby.
                .after_connect(|c, _| {
                    Box::pin(async move {
                        if read_only(c).await? {
                            return Err(sqlx::Error::Io(std::io::Error::new(
                                std::io::ErrorKind::ConnectionRefused,
                                "the server is read-only (a standby), not the primary",
                            )));
                        }
                        Ok(())
                    })
                })
                .before_acquire(move |_, meta| {
                    let usable = !known.stale(meta.age);
                    Box::pin(async move { Ok(usable) })
                });
        }
        let first = servers.options[servers.current.load(Ordering::Acquire)].clone();
        let pool = pool_options
            .connect_with(first)
            .await
            .map_err(unavailable)?;
        if servers.several() {
            warn_if_asynchronous(&pool).await;
        }
        // A schema that a newer release has already expanded (a rolling upgrade, or a
        // node rolled back) is served as it is: migrations only add, and the newer
        // release's extra tables and nullable columns are unknown here and left alone.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
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
                    // The node is shutting down and closed its pool: nothing was lost.
                    Err(sqlx::Error::PoolClosed) => break,
                    Err(_) if watched.is_closed() => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed interrupted; caches flushed");
                        let _ = feed.send(Change::All);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(PgStore {
            pool,
            changes,
            // Acquiring a connection, then a transaction of bounded statements.
            deadline: s.acquire_timeout + s.statement_timeout + Duration::from_secs(1),
            degraded: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            probing: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            servers,
        })
    }

    /// Runs a write in a task of its own ([`to_completion`]), so that a caller that goes away
    /// does not cut it off mid-transaction, and within the store's deadline, so that a write
    /// whose database went silent (a partition: no answer, no error) gives up its connection
    /// instead of holding it until the kernel gives up.
    fn detached<T: Send + 'static>(
        &self,
        op: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T>> {
        let deadline = self.deadline;
        to_completion(async move {
            tokio::time::timeout(deadline, op)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(Box::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the database did not answer within {deadline:?}"),
                    ))))
                })
        })
    }

    /// With several servers: finds the one that accepts writes now and, when it is another
    /// than before, points the pool at it. Connections to the old one are not used again.
    async fn follow_primary(&self, within: Duration) -> Result<()> {
        let s = &self.servers;
        if !s.several() {
            return Ok(());
        }
        let each = within / s.options.len() as u32;
        let found = s.find_primary(each).await?;
        let before = s.current.swap(found, Ordering::AcqRel);
        if found != before {
            self.pool.set_connect_options(s.options[found].clone());
            let now = s.epoch.elapsed().as_nanos() as u64;
            s.moved_at.store(now, Ordering::Release);
            tracing::warn!(from = %s.name(before), to = %s.name(found), "the primary moved; following it");
        }
        Ok(())
    }

    /// Runs one keystore operation within the deadline. A failure for want of the database
    /// (refused, or no answer in time) marks the store degraded and drops every cache; while
    /// it is degraded, one operation
    /// at a time probes the database with a short deadline and the others fail at once, so a
    /// node cut off answers its clients in seconds. The first success after that tells every
    /// subscriber to drop its caches: the change notifications sent meanwhile may arrive late
    /// or never.
    async fn guarded<T>(&self, op: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let unavailable = |what: String| {
            Err(StoreError::Unavailable(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                what,
            ))))
        };
        let mut _probe = None;
        let deadline = if self.degraded.load(Ordering::Relaxed) {
            if self.probing.swap(true, Ordering::AcqRel) {
                return unavailable("the database is unreachable (a probe is under way)".into());
            }
            _probe = Some(ProbeDone(&self.probing));
            self.deadline.min(DEGRADED_DEADLINE)
        } else {
            self.deadline
        };
        // The probe first looks for the primary: the database may be back on another server.
        let probe = _probe.is_some();
        let run = async {
            if probe {
                self.follow_primary(deadline / 2).await?;
            }
            op.await
        };
        let r = match tokio::time::timeout(deadline, run).await {
            Ok(r) => r,
            Err(_) => unavailable(format!("the database did not answer within {deadline:?}")),
        };
        match &r {
            // Cached entries may go stale from now on, unseen: drop them, so that the node
            // answers from the database or not at all.
            Err(StoreError::Unavailable(_)) if !self.degraded.swap(true, Ordering::Relaxed) => {
                tracing::warn!("the database does not answer; caches flushed");
                let _ = self.changes.send(Change::All);
            }
            Ok(_) if self.degraded.swap(false, Ordering::Relaxed) => {
                tracing::warn!("the database answers again; caches flushed");
                let _ = self.changes.send(Change::All);
            }
            _ => {}
        }
        r
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
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
        (Some("c"), Some(i), None) => i.parse().map(Change::Credentials).unwrap_or(Change::All),
        _ => Change::All,
    }
}

/// The shared SQL (`strongroom_keystore::sql`) runs here, on the one pool. Transactions
/// that meet a serialization failure or a deadlock run again.
#[async_trait]
impl SqlExec for PgStore {
    type Row = sqlx::postgres::PgRow;
    const BACKEND: &'static str = "postgres";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    // Serializes the creations of one instance across every node until commit.
    const INSTANCE_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtext($1))");

    async fn execute(&self, stmt: Stmt) -> Result<u64> {
        self.execute_all(vec![stmt]).await.map(|n| n[0])
    }

    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>> {
        let pool = self.pool.clone();
        self.guarded(self.detached(async move { retrying(|| transaction(&pool, &stmts)).await }))
            .await
    }

    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        self.guarded(async {
            bind_all(sqlx::query(sql), args)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn fetch_write(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        self.fetch_all(sql, args).await
    }

    async fn insert_audit(&self, records: &[AuditRecord]) -> Result<()> {
        self.guarded(self.detached(append_audit(self.pool.clone(), records.to_vec())))
            .await
    }

    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        Some(Box::new(Feed(self.changes.subscribe())))
    }
}

/// The statements of one transaction, committed together.
async fn transaction(
    pool: &PgPool,
    stmts: &[Stmt],
) -> std::result::Result<Vec<u64>, RetryableError> {
    let mut tx = pool.begin().await?;
    let mut counts = Vec::with_capacity(stmts.len());
    for s in stmts {
        let r = bind_all(sqlx::query(&s.sql), s.args.clone())
            .execute(&mut *tx)
            .await;
        let n = match r {
            Ok(r) => r.rows_affected(),
            Err(e) if is_unique(&e) => return Err(RetryableError::Store(s.collision())),
            Err(e) => return Err(e.into()),
        };
        if s.required && n == 0 {
            return Err(RetryableError::Store(StoreError::NotFound));
        }
        counts.push(n);
    }
    tx.commit().await?;
    Ok(counts)
}

/// Appends a batch of audit records with one statement whatever the batch's size: the
/// columns travel as eleven arrays and `unnest` turns them back into rows, stored in chain
/// order (the `audit_contiguous` trigger checks the statement's rows together: migration
/// 0011). So every connection keeps a single prepared statement for the audit log, where a
/// statement of one row per `VALUES` tuple would have a text, a parse and a plan of its own
/// for every batch size.
const AUDIT_INSERT: &str = "INSERT INTO audit (seq, at, instance_id, principal, action, key, \
     outcome, status, correlation_id, prev_hash, hash) \
     SELECT seq, at, instance_id, principal, action, key, outcome, status, correlation_id, \
     prev_hash, hash \
     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::bigint[], $9::text[], $10::bytea[], $11::bytea[]) WITH ORDINALITY \
     AS r(seq, at, instance_id, principal, action, key, outcome, status, correlation_id, \
     prev_hash, hash, n) \
     ORDER BY n";

/// Audit records appended in one statement.
async fn append_audit(pool: PgPool, records: Vec<AuditRecord>) -> Result<()> {
    let column = |f: fn(&AuditRecord) -> i64| records.iter().map(f).collect::<Vec<_>>();
    let text =
        |f: fn(&AuditRecord) -> &str| records.iter().map(|r| f(r).to_owned()).collect::<Vec<_>>();
    let q = sqlx::query(AUDIT_INSERT)
        .bind(column(|r| r.seq))
        .bind(column(|r| r.at.0))
        .bind(
            records
                .iter()
                .map(|r| r.instance.map(|i| i.to_string()))
                .collect::<Vec<_>>(),
        )
        .bind(text(|r| &r.principal))
        .bind(text(|r| &r.action))
        .bind(records.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
        .bind(text(|r| &r.outcome))
        .bind(column(|r| r.status.into()))
        .bind(text(|r| &r.correlation_id))
        .bind(
            records
                .iter()
                .map(|r| r.prev_hash.to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(records.iter().map(|r| r.hash.to_vec()).collect::<Vec<_>>());
    // One statement is one transaction: the batch lands whole or not at all, in one round
    // trip.
    match q.execute(&pool).await {
        Ok(_) => Ok(()),
        // A taken sequence number, or a gap the trigger refuses.
        Err(e) if matches!(code_of(&e).as_deref(), Some("23505" | "SR001")) => {
            Err(StoreError::Conflict)
        }
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_model::{InstanceId, KeyId};

    #[test]
    fn change_notices_parse_and_anything_else_flushes_every_cache() {
        let i = InstanceId::random();
        let k = KeyId::random();
        let o = uuid::Uuid::new_v4();
        assert_eq!(parse_change(&format!("k:{i}:{k}")), Change::Key(i, k));
        assert_eq!(
            parse_change(&format!("o:{i}:{o}")),
            Change::KmipObject(i, o)
        );
        assert_eq!(parse_change(&format!("i:{i}")), Change::Instance(i));
        assert_eq!(parse_change(&format!("c:{i}")), Change::Credentials(i));
        for other in [
            "",
            "c:",
            "c:not-a-uuid",
            &format!("c:{i}:x"),
            &format!("x:{i}"),
        ] {
            assert_eq!(parse_change(other), Change::All, "{other:?}");
        }
    }
}
