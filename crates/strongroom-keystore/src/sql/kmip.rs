//! KMIP's tables, written once for every SQL backend ([`SqlExec`]).

use async_trait::async_trait;
use strongroom_model::{InstanceId, KeyId, UnixMillis};
use uuid::Uuid;

use super::exec::{Arg, SqlExec, SqlRow, Stmt};
use super::{count_of, text, u32_of, uuid_of};
use crate::{
    KmipAdapterRecord, KmipCertificateRecord, KmipObjectFilter, KmipObjectRecord, KmipStore,
    Result, StoreError, Unique,
};

fn adapter_from_row(r: &impl SqlRow) -> Result<KmipAdapterRecord> {
    Ok(KmipAdapterRecord {
        instance: InstanceId(uuid_of(r.text("instance_id")?, "instance id")?),
        id: uuid_of(r.text("id")?, "adapter id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        profile: r.text("profile")?,
        crk_id: KeyId(uuid_of(r.text("crk_id")?, "root key id")?),
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
        updated_at: UnixMillis(r.int("updated_at")?),
        updated_by: r.text("updated_by")?,
    })
}

fn certificate_from_row(r: &impl SqlRow) -> Result<KmipCertificateRecord> {
    Ok(KmipCertificateRecord {
        instance: InstanceId(uuid_of(r.text("instance_id")?, "instance id")?),
        adapter: uuid_of(r.text("adapter_id")?, "adapter id")?,
        id: uuid_of(r.text("id")?, "certificate id")?,
        name: r.text("name")?,
        pem: r.text("pem")?,
        fingerprint: r.text("fingerprint")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
    })
}

fn object_from_row(r: &impl SqlRow) -> Result<KmipObjectRecord> {
    Ok(KmipObjectRecord {
        instance: InstanceId(uuid_of(r.text("instance_id")?, "instance id")?),
        adapter: uuid_of(r.text("adapter_id")?, "adapter id")?,
        id: uuid_of(r.text("id")?, "object id")?,
        object_type: u32_of(r.int("object_type")?, "object type")?,
        state: u32_of(r.int("state")?, "state")?,
        name: r.opt_text("name")?,
        algorithm: r
            .opt_int("algorithm")?
            .map(|a| u32_of(a, "algorithm"))
            .transpose()?,
        row_version: r.int("row_version")?,
        created_at: UnixMillis(r.int("created_at")?),
        created_by: r.text("created_by")?,
        updated_at: UnixMillis(r.int("updated_at")?),
        destroyed_at: r.opt_int("destroyed_at")?.map(UnixMillis),
        attributes: r.bytes("attributes")?,
        material: r.opt_bytes("material")?,
    })
}

/// `WHERE` clauses and parameters of an object filter, numbered from `$2` (`$1` is the
/// instance).
fn object_where(instance: InstanceId, f: &KmipObjectFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from(" WHERE instance_id = $1");
    let mut args = vec![text(instance)];
    let mut push = |clause: &str, arg: Arg, args: &mut Vec<Arg>| {
        args.push(arg);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(a) = f.adapter {
        push(" AND adapter_id = ?", text(a), &mut args);
    }
    if let Some(t) = f.object_type {
        push(" AND object_type = ?", Arg::Int(t.into()), &mut args);
    }
    if let Some(n) = &f.name {
        push(" AND name = ?", text(n), &mut args);
    }
    if let Some(a) = f.algorithm {
        push(" AND algorithm = ?", Arg::Int(a.into()), &mut args);
    }
    if !f.states.is_empty() {
        // States are numbers the caller chose from a closed set; they are inlined.
        let list: Vec<String> = f.states.iter().map(u32::to_string).collect();
        sql.push_str(&format!(" AND state IN ({})", list.join(", ")));
    }
    (sql, args)
}

#[async_trait]
impl<E: SqlExec> KmipStore for E {
    async fn create_kmip_adapter(&self, a: &KmipAdapterRecord, max: u32) -> Result<()> {
        let n = self
            .execute(Stmt::new("INSERT INTO kmip_adapters (instance_id, id, name, description, profile, crk_id, \
                 created_at, created_by, updated_at, updated_by) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE (SELECT COUNT(*) FROM kmip_adapters WHERE instance_id = $1) < $11",
                vec![
                    text(a.instance),
                    text(a.id),
                    text(&a.name),
                    Arg::OptText(a.description.clone()),
                    text(&a.profile),
                    text(a.crk_id),
                    Arg::Int(a.created_at.0),
                    text(&a.created_by),
                    Arg::Int(a.updated_at.0),
                    text(&a.updated_by),
                    Arg::Int(max.into()),
                ]).unique(Unique::KmipAdapter))
            .await?;
        if n == 0 {
            return Err(StoreError::QuotaExceeded(max.into()));
        }
        Ok(())
    }

    async fn list_kmip_adapters(&self, instance: InstanceId) -> Result<Vec<KmipAdapterRecord>> {
        self.fetch_all(
            "SELECT * FROM kmip_adapters WHERE instance_id = $1 ORDER BY created_at, id",
            vec![text(instance)],
        )
        .await?
        .iter()
        .map(adapter_from_row)
        .collect()
    }

    async fn delete_kmip_adapter(&self, instance: InstanceId, id: Uuid) -> Result<()> {
        let args = || vec![text(instance), text(id)];
        let deleted = self
            .execute_all(vec![
                Stmt::new(
                    "DELETE FROM kmip_adapters WHERE instance_id = $1 AND id = $2 AND NOT EXISTS \
                          (SELECT 1 FROM kmip_objects WHERE instance_id = $1 AND adapter_id = $2 \
                          AND state NOT IN (5, 6))",
                    args(),
                )
                .unique(Unique::KmipAdapter)
                .required(),
                Stmt::new(
                    "DELETE FROM kmip_certificates WHERE instance_id = $1 AND adapter_id = $2",
                    args(),
                )
                .unique(Unique::KmipCertificate),
                Stmt::new(
                    "DELETE FROM kmip_objects WHERE instance_id = $1 AND adapter_id = $2",
                    args(),
                )
                .unique(Unique::KmipObject),
            ])
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => {
                let live = self
                    .count_kmip_objects(
                        instance,
                        &KmipObjectFilter {
                            adapter: Some(id),
                            states: crate::LIVE_STATES.to_vec(),
                            ..KmipObjectFilter::default()
                        },
                    )
                    .await?;
                let exists = !self
                    .fetch_all(
                        "SELECT id FROM kmip_adapters WHERE instance_id = $1 AND id = $2",
                        args(),
                    )
                    .await?
                    .is_empty();
                Err(if exists && live > 0 {
                    StoreError::AdapterNotEmpty(live)
                } else {
                    StoreError::NotFound
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn add_kmip_certificate(&self, c: &KmipCertificateRecord, max: u32) -> Result<()> {
        let n = self
            .execute(Stmt::new("INSERT INTO kmip_certificates (instance_id, adapter_id, id, name, pem, fingerprint, \
                 created_at, created_by) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                 WHERE EXISTS (SELECT 1 FROM kmip_adapters WHERE instance_id = $1 AND id = $2) \
                 AND (SELECT COUNT(*) FROM kmip_certificates WHERE instance_id = $1 AND adapter_id = $2) < $9",
                vec![
                    text(c.instance),
                    text(c.adapter),
                    text(c.id),
                    text(&c.name),
                    text(&c.pem),
                    text(&c.fingerprint),
                    Arg::Int(c.created_at.0),
                    text(&c.created_by),
                    Arg::Int(max.into()),
                ]).unique(Unique::KmipCertificate))
            .await?;
        if n == 0 {
            let exists = !self
                .fetch_all(
                    "SELECT id FROM kmip_adapters WHERE instance_id = $1 AND id = $2",
                    vec![text(c.instance), text(c.adapter)],
                )
                .await?
                .is_empty();
            return Err(if exists {
                StoreError::QuotaExceeded(max.into())
            } else {
                StoreError::NotFound
            });
        }
        Ok(())
    }

    async fn list_kmip_certificates(
        &self,
        instance: InstanceId,
        adapter: Uuid,
    ) -> Result<Vec<KmipCertificateRecord>> {
        self.fetch_all(
            "SELECT * FROM kmip_certificates WHERE instance_id = $1 AND adapter_id = $2 \
             ORDER BY created_at, id",
            vec![text(instance), text(adapter)],
        )
        .await?
        .iter()
        .map(certificate_from_row)
        .collect()
    }

    async fn delete_kmip_certificate(
        &self,
        instance: InstanceId,
        adapter: Uuid,
        id: Uuid,
    ) -> Result<()> {
        let n = self
            .execute(Stmt::new("DELETE FROM kmip_certificates WHERE instance_id = $1 AND adapter_id = $2 AND id = $3",
                vec![text(instance), text(adapter), text(id)]).unique(Unique::KmipCertificate))
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn kmip_certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<KmipCertificateRecord> {
        self.fetch_all(
            "SELECT * FROM kmip_certificates WHERE fingerprint = $1",
            vec![text(fingerprint)],
        )
        .await?
        .first()
        .map(certificate_from_row)
        .unwrap_or(Err(StoreError::NotFound))
    }

    async fn kmip_fingerprints(&self) -> Result<Vec<String>> {
        self.fetch_all("SELECT fingerprint FROM kmip_certificates", vec![])
            .await?
            .iter()
            .map(|r| r.text("fingerprint"))
            .collect()
    }

    async fn get_kmip_object(&self, instance: InstanceId, id: Uuid) -> Result<KmipObjectRecord> {
        self.fetch_all(
            "SELECT * FROM kmip_objects WHERE instance_id = $1 AND id = $2",
            vec![text(instance), text(id)],
        )
        .await?
        .first()
        .map(object_from_row)
        .unwrap_or(Err(StoreError::NotFound))
    }

    async fn update_kmip_object(&self, o: &KmipObjectRecord) -> Result<i64> {
        if self.execute(replace_object(o)).await? == 1 {
            return Ok(o.row_version + 1);
        }
        Err(missed(self, std::slice::from_ref(o)).await)
    }

    async fn write_kmip_objects(
        &self,
        new: &[KmipObjectRecord],
        replaced: &[KmipObjectRecord],
        max_live: u64,
    ) -> Result<()> {
        let bounded = new.first().filter(|_| max_live < u64::MAX);
        let mut stmts: Vec<Stmt> = bounded
            .and_then(|o| E::INSTANCE_LOCK.map(|lock| Stmt::new(lock, vec![text(o.instance)])))
            .into_iter()
            .collect();
        for (n, o) in new.iter().enumerate() {
            stmts.push(match bounded {
                Some(_) if n == 0 => insert_object_within(o, new.len(), max_live),
                _ => insert_object(o),
            });
        }
        stmts.extend(replaced.iter().map(|o| replace_object(o).required()));
        match self.execute_all(stmts).await {
            Err(StoreError::NotFound) => {
                if let Some(o) = bounded {
                    let live = self
                        .count_kmip_objects(o.instance, &KmipObjectFilter::live())
                        .await?;
                    if live.saturating_add(u64::try_from(new.len()).unwrap_or(u64::MAX)) > max_live
                    {
                        return Err(StoreError::QuotaExceeded(max_live));
                    }
                }
                Err(missed(self, replaced).await)
            }
            other => other.map(|_| ()),
        }
    }

    async fn list_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<KmipObjectRecord>> {
        let (clauses, mut args) = object_where(instance, filter);
        let n = args.len();
        args.push(Arg::Int(limit.into()));
        args.push(Arg::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT * FROM kmip_objects{clauses} ORDER BY created_at, id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        self.fetch_all(&sql, args)
            .await?
            .iter()
            .map(object_from_row)
            .collect()
    }

    async fn count_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
    ) -> Result<u64> {
        let (clauses, args) = object_where(instance, filter);
        count_of(
            &self
                .fetch_all(
                    &format!("SELECT COUNT(*) AS n FROM kmip_objects{clauses}"),
                    args,
                )
                .await?,
        )
    }
}

/// Why replacing `objects` changed no row: one is gone (`NotFound`), or else one changed
/// since it was read (`Conflict`).
async fn missed<E: SqlExec>(e: &E, objects: &[KmipObjectRecord]) -> StoreError {
    for o in objects {
        match e.get_kmip_object(o.instance, o.id).await {
            Ok(_) => {}
            Err(err) => return err,
        }
    }
    StoreError::Conflict
}

/// The INSERT of a new object.
fn insert_object(o: &KmipObjectRecord) -> Stmt {
    Stmt::new(
        format!("{INSERT_OBJECT} VALUES ({OBJECT_VALUES})"),
        object_args(o),
    )
    .unique(Unique::KmipObject)
}

/// The INSERT of the first of `n` new objects, which adds no row (and so rolls its
/// transaction back) unless the instance's live objects leave room for `n` under `max`.
fn insert_object_within(o: &KmipObjectRecord, n: usize, max: u64) -> Stmt {
    let live = crate::LIVE_STATES.map(|s| s.to_string()).join(", ");
    let mut args = object_args(o);
    args.push(Arg::Int(i64::try_from(n).unwrap_or(i64::MAX)));
    args.push(Arg::Int(i64::try_from(max).unwrap_or(i64::MAX)));
    Stmt::new(
        format!(
            "{INSERT_OBJECT} SELECT {OBJECT_VALUES} WHERE (SELECT COUNT(*) FROM kmip_objects \
             WHERE instance_id = $1 AND state IN ({live})) + $15 <= $16"
        ),
        args,
    )
    .unique(Unique::KmipObject)
    .required()
}

/// An INSERT of an object's columns, in the order of [`object_args`].
const INSERT_OBJECT: &str = "INSERT INTO kmip_objects (instance_id, adapter_id, id, \
     object_type, state, name, algorithm, row_version, created_at, created_by, updated_at, \
     destroyed_at, attributes, material)";
/// The placeholders of [`object_args`].
const OBJECT_VALUES: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14";

/// The UPDATE that replaces an object at `o.row_version` and moves it to the next one.
fn replace_object(o: &KmipObjectRecord) -> Stmt {
    let mut args = object_args(o);
    args[7] = Arg::Int(o.row_version + 1);
    args.push(Arg::Int(o.row_version));
    Stmt::new(
        "UPDATE kmip_objects SET adapter_id = $2, object_type = $4, state = $5, name = $6, \
         algorithm = $7, row_version = $8, created_at = $9, created_by = $10, updated_at = $11, \
         destroyed_at = $12, attributes = $13, material = $14 \
         WHERE instance_id = $1 AND id = $3 AND row_version = $15",
        args,
    )
    .unique(Unique::KmipObject)
}

fn object_args(o: &KmipObjectRecord) -> Vec<Arg> {
    vec![
        text(o.instance),
        text(o.adapter),
        text(o.id),
        Arg::Int(o.object_type.into()),
        Arg::Int(o.state.into()),
        Arg::OptText(o.name.clone()),
        Arg::OptInt(o.algorithm.map(i64::from)),
        Arg::Int(o.row_version),
        Arg::Int(o.created_at.0),
        text(&o.created_by),
        Arg::Int(o.updated_at.0),
        Arg::OptInt(o.destroyed_at.map(|t| t.0)),
        Arg::Bytes(o.attributes.clone()),
        Arg::OptBytes(o.material.clone()),
    ]
}
