//! PKCS#11 token objects, written once for every SQL backend ([`SqlExec`]).

use async_trait::async_trait;
use strongroom_model::{InstanceId, UnixMillis};

use super::exec::{Arg, SqlExec, SqlRow, Stmt};
use super::{count_of, instance_id, one, text};
use crate::{Result, StoreError, TokenObjectRecord, TokenObjectStore, Unique};

fn from_row(r: &impl SqlRow) -> Result<TokenObjectRecord> {
    Ok(TokenObjectRecord {
        instance: instance_id(r, "instance_id")?,
        space: r.text("space")?,
        id: r.text("id")?,
        private: r.boolean("private")?,
        data: r.bytes("data")?,
        version: r.int("version")?,
        created_at: UnixMillis(r.int("created_at")?),
        updated_at: UnixMillis(r.int("updated_at")?),
    })
}

#[async_trait]
impl<E: SqlExec> TokenObjectStore for E {
    async fn list_token_objects(
        &self,
        instance: InstanceId,
        space: &str,
    ) -> Result<Vec<TokenObjectRecord>> {
        let sql = "SELECT * FROM token_objects WHERE instance_id = $1 AND space = $2 ORDER BY id";
        let rows = self
            .fetch_all(sql, vec![text(instance), text(space)])
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn get_token_object(
        &self,
        instance: InstanceId,
        space: &str,
        id: &str,
    ) -> Result<TokenObjectRecord> {
        let sql = "SELECT * FROM token_objects WHERE instance_id = $1 AND space = $2 AND id = $3";
        let rows = self
            .fetch_all(sql, vec![text(instance), text(space), text(id)])
            .await?;
        from_row(&one(rows)?)
    }

    async fn all_token_objects(&self, instance: InstanceId) -> Result<Vec<TokenObjectRecord>> {
        let sql = "SELECT * FROM token_objects WHERE instance_id = $1 ORDER BY space, id";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(from_row).collect()
    }

    async fn put_token_object(
        &self,
        o: &TokenObjectRecord,
        expected: i64,
        max: u64,
    ) -> Result<i64> {
        if expected == 0 {
            let mut stmts: Vec<Stmt> = E::INSTANCE_LOCK
                .map(|lock| Stmt::new(lock, vec![text(o.instance)]))
                .into_iter()
                .collect();
            stmts.push(
                Stmt::new(
                    "INSERT INTO token_objects (instance_id, space, id, private, data, version, \
                     created_at, updated_at) SELECT $1, $2, $3, $4, $5, 1, $6, $6 \
                     WHERE $3 LIKE '#%' OR (SELECT COUNT(*) FROM token_objects \
                     WHERE instance_id = $1 AND id NOT LIKE '#%') < $7",
                    vec![
                        text(o.instance),
                        text(&o.space),
                        text(&o.id),
                        Arg::Bool(o.private),
                        Arg::Bytes(o.data.clone()),
                        Arg::Int(o.updated_at.0),
                        Arg::Int(i64::try_from(max).unwrap_or(i64::MAX)),
                    ],
                )
                .unique(Unique::TokenObject)
                .required(),
            );
            return match self.execute_all(stmts).await {
                Ok(_) => Ok(1),
                Err(StoreError::NotFound) => Err(StoreError::QuotaExceeded(max)),
                Err(e) => Err(e),
            };
        }
        let stmt = Stmt::new(
            "UPDATE token_objects SET data = $1, private = $2, version = version + 1, updated_at = $3 \
             WHERE instance_id = $4 AND space = $5 AND id = $6 AND version = $7",
            vec![
                Arg::Bytes(o.data.clone()),
                Arg::Bool(o.private),
                Arg::Int(o.updated_at.0),
                text(o.instance),
                text(&o.space),
                text(&o.id),
                Arg::Int(expected),
            ],
        )
        .required();
        match self.execute(stmt).await {
            Ok(_) => Ok(expected + 1),
            Err(StoreError::NotFound) => {
                let n = count_of(
                    &self
                        .fetch_all(
                            "SELECT COUNT(*) AS n FROM token_objects \
                             WHERE instance_id = $1 AND space = $2 AND id = $3",
                            vec![text(o.instance), text(&o.space), text(&o.id)],
                        )
                        .await?,
                )?;
                Err(if n > 0 {
                    StoreError::Conflict
                } else {
                    StoreError::NotFound
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_token_object(&self, instance: InstanceId, space: &str, id: &str) -> Result<()> {
        let sql = "DELETE FROM token_objects WHERE instance_id = $1 AND space = $2 AND id = $3";
        let args = vec![text(instance), text(space), text(id)];
        self.execute(Stmt::new(sql, args).required())
            .await
            .map(drop)
    }

    async fn clear_token_space(&self, instance: InstanceId, space: &str) -> Result<u64> {
        let sql = "DELETE FROM token_objects WHERE instance_id = $1 AND space = $2";
        self.execute(Stmt::new(sql, vec![text(instance), text(space)]))
            .await
    }
}
