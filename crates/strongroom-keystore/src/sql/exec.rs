//! The seam between shared SQL and a backend. Queries written once (in `$1, $2, …`
//! placeholders, which sqlx binds by number on SQLite as on PostgreSQL) run through
//! [`SqlExec`], which a backend implements with its own pools; rows are read through
//! [`SqlRow`], implemented here once for every sqlx row type.

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use super::col;
use crate::{AuditRecord, ChangeFeed, Result, StoreError, Unique};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// TEXT.
    Text(String),
    /// TEXT or NULL.
    OptText(Option<String>),
    /// 64-bit integer.
    Int(i64),
    /// 64-bit integer or NULL.
    OptInt(Option<i64>),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Bytes or NULL.
    OptBytes(Option<Vec<u8>>),
    /// Boolean (an integer 0 or 1 on SQLite).
    Bool(bool),
    /// Boolean or NULL.
    OptBool(Option<bool>),
}

impl Arg {
    /// TEXT from anything displayed (ids, names).
    pub fn text(v: impl ToString) -> Arg {
        Arg::Text(v.to_string())
    }
}

/// Binds `args` in order to a query of any sqlx database that stores these types.
pub fn bind_all<'q, DB>(
    mut q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Option<bool>: Encode<'q, DB> + Type<DB>,
{
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::OptBytes(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::OptBool(v) => q.bind(v),
        };
    }
    q
}

/// One statement of a transaction.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// The SQL, with `$n` placeholders.
    pub sql: Cow<'static, str>,
    /// Its parameters.
    pub args: Vec<Arg>,
    /// What a unique violation means: `AlreadyExists(unique)`, or with `None` a
    /// `Conflict` (a concurrent writer took the row first).
    pub unique: Option<Unique>,
    /// Roll back unless it changes a row.
    pub required: bool,
}

impl Stmt {
    /// A statement that may change no row, where a unique violation is a `Conflict`.
    pub fn new(sql: impl Into<Cow<'static, str>>, args: Vec<Arg>) -> Self {
        Stmt {
            sql: sql.into(),
            args,
            unique: None,
            required: false,
        }
    }

    /// A unique violation here means `unique` is taken.
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// The transaction rolls back (`NotFound`) unless this changes a row.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The error a unique violation of this statement stands for.
    pub fn collision(&self) -> StoreError {
        self.unique
            .map_or(StoreError::Conflict, StoreError::AlreadyExists)
    }
}

/// Runs shared SQL on a backend's connections. A backend implements this, and gets
/// [`KeyStore`](crate::KeyStore) and [`KmipStore`](crate::KmipStore) from the queries in
/// this module; what differs between SQL dialects is said by the constants.
#[async_trait]
pub trait SqlExec: Send + Sync + 'static {
    /// The backend's row type.
    type Row: SqlRow + Send;
    /// The backend's name, as `KeyStore::backend` reports it.
    const BACKEND: &'static str;
    /// Follows a text column in `ORDER BY` and comparisons used for paging, so that text
    /// orders by its bytes on every backend (PostgreSQL's default collation does not).
    const BYTE_ORDER: &'static str = "";
    /// Runs first in a transaction that counts an instance's rows before adding one
    /// (`$1` is the instance id), so that two nodes cannot both pass the count. `None`
    /// where the backend has a single writer.
    const INSTANCE_LOCK: Option<&'static str> = None;
    /// Runs a statement that changes rows and returns how many it changed. A unique
    /// constraint violation is [`Stmt::collision`]; a `required` statement that changes
    /// no row is `NotFound`.
    async fn execute(&self, stmt: Stmt) -> Result<u64>;
    /// Runs statements in one transaction and returns how many rows each changed. If a
    /// statement marked `required` changes no row, everything is rolled back and the
    /// answer is `NotFound`.
    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>>;
    /// Runs a query and returns its rows.
    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>>;
    /// Runs a statement that changes rows and returns rows (`RETURNING`) on the writer.
    async fn fetch_write(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>>;
    /// Runs a query of the audit log (which a backend may keep apart).
    async fn fetch_audit(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>> {
        self.fetch_all(sql, args).await
    }
    /// Appends audit records whose sequence numbers the caller checked are contiguous.
    /// A record whose number is taken, or that leaves a gap, is a `Conflict`.
    async fn insert_audit(&self, records: &[AuditRecord]) -> Result<()>;
    /// The stream of other nodes' changes, where the backend is shared.
    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        None
    }
}

/// Reads a column of a row, keeping the driver's error as the source.
pub trait SqlRow {
    /// TEXT.
    fn text(&self, c: &'static str) -> Result<String>;
    /// TEXT or NULL.
    fn opt_text(&self, c: &'static str) -> Result<Option<String>>;
    /// 64-bit integer.
    fn int(&self, c: &'static str) -> Result<i64>;
    /// 64-bit integer or NULL.
    fn opt_int(&self, c: &'static str) -> Result<Option<i64>>;
    /// Bytes.
    fn bytes(&self, c: &'static str) -> Result<Vec<u8>>;
    /// Bytes or NULL.
    fn opt_bytes(&self, c: &'static str) -> Result<Option<Vec<u8>>>;
    /// Boolean.
    fn boolean(&self, c: &'static str) -> Result<bool>;
    /// Boolean or NULL.
    fn opt_boolean(&self, c: &'static str) -> Result<Option<bool>>;
}

impl<R> SqlRow for R
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<bool>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, c: &'static str) -> Result<String> {
        col(self, c)
    }
    fn opt_text(&self, c: &'static str) -> Result<Option<String>> {
        col(self, c)
    }
    fn int(&self, c: &'static str) -> Result<i64> {
        col(self, c)
    }
    fn opt_int(&self, c: &'static str) -> Result<Option<i64>> {
        col(self, c)
    }
    fn bytes(&self, c: &'static str) -> Result<Vec<u8>> {
        col(self, c)
    }
    fn opt_bytes(&self, c: &'static str) -> Result<Option<Vec<u8>>> {
        col(self, c)
    }
    fn boolean(&self, c: &'static str) -> Result<bool> {
        col(self, c)
    }
    fn opt_boolean(&self, c: &'static str) -> Result<Option<bool>> {
        col(self, c)
    }
}

/// Runs a write to its end in a task of its own. The caller's future may be dropped at any
/// await (a client that goes away drops its request; a deadline runs out), and a write cut
/// off between `BEGIN` and `COMMIT` would leave its connection inside the transaction: the
/// later writes on that connection would fail, or worse, be acknowledged inside a
/// transaction that never commits. A backend runs every write through this.
pub async fn to_completion<T: Send + 'static>(
    op: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(op)
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?
}
