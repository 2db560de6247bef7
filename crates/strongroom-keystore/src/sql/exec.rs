//! The seam between shared SQL and a backend. Queries written once (in `$1, $2, …`
//! placeholders, which sqlx binds by number on SQLite as on PostgreSQL) run through
//! [`SqlExec`], which a backend implements with its own pools; rows are read through
//! [`SqlRow`], implemented here once for every sqlx row type.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use super::col;
use crate::{Result, Unique};

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
{
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
            Arg::OptBytes(v) => q.bind(v),
        };
    }
    q
}

/// One statement of a transaction.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// The SQL, with `$n` placeholders.
    pub sql: &'static str,
    /// Its parameters.
    pub args: Vec<Arg>,
    /// What a unique violation means.
    pub unique: Unique,
    /// Roll back unless it changes a row.
    pub required: bool,
}

/// Runs shared SQL on a backend's connections.
#[async_trait]
pub trait SqlExec: Send + Sync {
    /// The backend's row type.
    type Row: SqlRow + Send;
    /// Runs a statement that changes rows and returns how many it changed. A unique
    /// constraint violation is `AlreadyExists(unique)`.
    async fn execute(&self, sql: &str, args: Vec<Arg>, unique: Unique) -> Result<u64>;
    /// Runs statements in one transaction and returns how many rows each changed. If a
    /// statement marked `required` changes no row, everything is rolled back and the
    /// answer is `NotFound`.
    async fn execute_all(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>>;
    /// Runs a query and returns its rows.
    async fn fetch_all(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Self::Row>>;
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
}
