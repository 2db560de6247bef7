//! The audit file's appends: multi-row INSERT statements, of which the common batch sizes
//! stay prepared on the audit file's one connection. PostgreSQL appends a batch of any size
//! in one statement over arrays, so all of this is SQLite's alone.

use sqlx::sqlite::SqlitePool;
use strongroom_keystore::sql::{bind_all, Arg};
use strongroom_keystore::{AuditRecord, Result, StoreError};

use crate::{unavailable, SQLITE_CONSTRAINT_TRIGGER};

/// Rows per multi-row audit INSERT statement.
const AUDIT_CHUNK: usize = 500;

/// Whether the audit INSERT of `rows` rows stays prepared on its connection, when batches of
/// up to `small` rows are kept. Each row count is its own statement text: only full chunks
/// and batches up to `small` rows are kept, since caching every size up to [`AUDIT_CHUNK`]
/// held tens of megabytes.
fn keep_audit_statement(rows: usize, small: usize) -> bool {
    rows == AUDIT_CHUNK || rows <= small
}

/// A multi-row insert of audit records with its parameters, 11 a record. Parameters are anonymous
/// (`?`, bound in order): SQLite looks a numbered parameter's name up by a linear scan each
/// time the driver binds one, which made a chunk of 500 audit rows (5,500 parameters) cost
/// quadratic time, half of the server's CPU under load.
fn audit_insert(records: &[AuditRecord]) -> (String, Vec<Arg>) {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let sql = format!(
        "INSERT INTO audit (seq, at, instance_id, principal, action, key, outcome, status, \
         correlation_id, prev_hash, hash) VALUES {}",
        vec![ROW; records.len()].join(", ")
    );
    let args = records
        .iter()
        .flat_map(|r| {
            [
                Arg::Int(r.seq),
                Arg::Int(r.at.0),
                Arg::OptText(r.instance.map(|i| i.to_string())),
                Arg::text(&r.principal),
                Arg::text(&r.action),
                Arg::OptText(r.key.clone()),
                Arg::text(&r.outcome),
                Arg::Int(r.status.into()),
                Arg::text(&r.correlation_id),
                Arg::Bytes(r.prev_hash.to_vec()),
                Arg::Bytes(r.hash.to_vec()),
            ]
        })
        .collect();
    (sql, args)
}

/// The audit batches kept prepared: every size up to 64 rows. The audit file has one
/// connection of its own, so one cache holds them (a few hundred kilobytes), and the
/// batches that a busy GREP11 listener gathers in the writer's 2 ms linger (20 to 60
/// records) skip SQLite's parser.
const AUDIT_KEPT_ROWS: usize = 64;

/// Statements the audit connection keeps prepared: the [`AUDIT_KEPT_ROWS`] batch sizes, the
/// full chunk, and the head and read queries.
pub(crate) const AUDIT_STATEMENT_CACHE: usize = 128;

/// Audit records appended to the audit file, in one transaction when they need several
/// statements.
pub(crate) async fn append_audit(audit: SqlitePool, records: Vec<AuditRecord>) -> Result<()> {
    // One multi-row statement per chunk; the `audit_contiguous` trigger refuses gaps and the
    // primary key refuses replays, so no read is needed before the write.
    let mut conn = audit.acquire().await.map_err(unavailable)?;
    let mut tx = (records.len() > AUDIT_CHUNK).then_some(());
    if tx.is_some() {
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    for chunk in records.chunks(AUDIT_CHUNK) {
        let (sql, args) = audit_insert(chunk);
        let keep = keep_audit_statement(chunk.len(), AUDIT_KEPT_ROWS);
        let q = bind_all(sqlx::query(&sql), args).persistent(keep);
        if let Err(e) = q.execute(&mut *conn).await {
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
        if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
            // As in write_all: never leave this connection inside a transaction.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(unavailable(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_model::UnixMillis;

    fn record(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            at: UnixMillis(1_000 + seq),
            instance: None,
            principal: format!("p{seq}"),
            action: "keys.create".into(),
            key: Some(format!("k{seq}")),
            outcome: "success".into(),
            status: 201,
            correlation_id: format!("c{seq}"),
            prev_hash: [seq as u8; 32],
            hash: [seq as u8 + 1; 32],
        }
    }

    #[test]
    fn an_insert_has_one_row_group_and_eleven_parameters_per_record_in_chain_order() {
        let records: Vec<_> = (7..10).map(record).collect();
        let (sql, args) = audit_insert(&records);
        assert_eq!(sql.matches("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").count(), 3);
        assert_eq!(sql.matches('?').count(), args.len());
        assert_eq!(args.len(), 33);
        let seqs: Vec<_> = args
            .iter()
            .step_by(11)
            .map(|a| match a {
                Arg::Int(n) => *n,
                _ => -1,
            })
            .collect();
        assert_eq!(seqs, [7, 8, 9]);
    }

    #[test]
    fn full_chunks_and_small_batches_stay_prepared_and_other_sizes_do_not() {
        assert!(keep_audit_statement(1, 64));
        assert!(keep_audit_statement(64, 64));
        assert!(!keep_audit_statement(65, 64));
        assert!(!keep_audit_statement(AUDIT_CHUNK - 1, 64));
        assert!(keep_audit_statement(AUDIT_CHUNK, 64));
    }
}
