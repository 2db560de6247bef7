//! [`KeyStore`] for every SQL backend ([`SqlExec`]).

use async_trait::async_trait;
use strongroom_model::{InstanceId, KeyId, UnixMillis};

use super::keys::{insert_key, insert_version, key_order, key_where, update_key};
use super::*;
use crate::{AuditQuery, BlobUpdate, ChangeFeed, KeyFilter, KeyStore, Page, SortField, Unique};

/// The tables whose rows belong to one instance, children before parents.
const INSTANCE_TABLES: [&str; 14] = [
    "placements",
    "token_objects",
    "key_versions",
    "aliases",
    "registrations",
    "keys",
    "api_keys",
    "service_ids",
    "key_rings",
    "import_tokens",
    "instance_policies",
    "kmip_certificates",
    "kmip_objects",
    "kmip_adapters",
];

/// The tables whose rows belong to one key.
const KEY_TABLES: [&str; 3] = ["key_versions", "aliases", "registrations"];

fn key_args(instance: InstanceId, id: KeyId) -> Vec<Arg> {
    vec![text(instance), text(id)]
}

async fn count<E: SqlExec>(db: &E, sql: &str, args: Vec<Arg>) -> Result<u64> {
    count_of(&db.fetch_all(sql, args).await?)
}

async fn keys_where<E: SqlExec>(db: &E, sql: &str, args: Vec<Arg>) -> Result<Vec<KeyRecord>> {
    db.fetch_all(sql, args)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
}

/// Why an optimistic write of a key changed nothing: the key changed since it was read
/// (`Conflict`), or it is gone (`NotFound`).
async fn not_updated<E: SqlExec>(db: &E, instance: InstanceId, id: KeyId) -> StoreError {
    let exists = count(
        db,
        "SELECT COUNT(*) AS n FROM keys WHERE instance_id = $1 AND id = $2",
        key_args(instance, id),
    )
    .await;
    match exists {
        Ok(0) => StoreError::NotFound,
        Ok(_) => StoreError::Conflict,
        Err(e) => e,
    }
}

/// Runs a transaction whose required statements are optimistic writes of `key`, and
/// answers the key's next `row_version`.
async fn write_key<E: SqlExec>(db: &E, key: &KeyRecord, stmts: Vec<Stmt>) -> Result<i64> {
    match db.execute_all(stmts).await {
        Ok(_) => Ok(key.row_version + 1),
        Err(StoreError::NotFound) => Err(not_updated(db, key.instance, key.id).await),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl<E: SqlExec> KeyStore for E {
    fn backend(&self) -> &'static str {
        E::BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.fetch_all("SELECT 1 AS n", vec![]).await.map(drop)
    }

    async fn create_instance(&self, rec: &InstanceRecord) -> Result<()> {
        let args = vec![text(rec.id), text(&rec.name), Arg::Int(rec.created_at.0)];
        let sql = "INSERT INTO instances (id, name, created_at) VALUES ($1, $2, $3)";
        self.execute(Stmt::new(sql, args).unique(Unique::Instance))
            .await
            .map(drop)
    }

    async fn get_instance(&self, id: InstanceId) -> Result<InstanceRecord> {
        let sql = "SELECT id, name, created_at FROM instances WHERE id = $1";
        instance_from_row(&one(self.fetch_all(sql, vec![text(id)]).await?)?)
    }

    async fn list_instances(&self) -> Result<Vec<InstanceRecord>> {
        let sql = "SELECT id, name, created_at FROM instances ORDER BY name";
        let rows = self.fetch_all(sql, vec![]).await?;
        rows.iter().map(instance_from_row).collect()
    }

    async fn delete_instance(&self, id: InstanceId, force: bool, now: UnixMillis) -> Result<()> {
        // The first statement holds the instance and refuses while it has keys (unless
        // forced); the last one must find the instance.
        let mut stmts = vec![Stmt::new(
            "UPDATE instances SET name = name WHERE id = $1 AND \
             ($2 OR NOT EXISTS (SELECT 1 FROM keys WHERE instance_id = $1))",
            vec![text(id), Arg::Bool(force)],
        )
        .required()];
        stmts.extend(INSTANCE_TABLES.iter().map(|table| {
            Stmt::new(
                format!("DELETE FROM {table} WHERE instance_id = $1"),
                vec![text(id)],
            )
        }));
        stmts.push(Stmt::new("DELETE FROM instances WHERE id = $1", vec![text(id)]).required());
        stmts.push(Stmt::new(
            "INSERT INTO deleted_instances (id, deleted_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING",
            vec![text(id), Arg::Int(now.0)],
        ));
        match self.execute_all(stmts).await {
            Err(StoreError::NotFound) => {
                let keys = count(
                    self,
                    "SELECT COUNT(*) AS n FROM keys WHERE instance_id = $1",
                    vec![text(id)],
                )
                .await?;
                Err(match self.get_instance(id).await {
                    Ok(_) if keys > 0 => StoreError::InstanceNotEmpty(keys),
                    Ok(_) => StoreError::Conflict,
                    Err(e) => e,
                })
            }
            other => other.map(drop),
        }
    }

    async fn instance_deleted(&self, id: InstanceId) -> Result<bool> {
        let sql = "SELECT COUNT(*) AS n FROM deleted_instances WHERE id = $1";
        Ok(count(self, sql, vec![text(id)]).await? > 0)
    }

    async fn create_key(&self, k: &KeyRecord, first: &KeyVersionRecord) -> Result<()> {
        // A new key is a restore of a key with one version: one code path, one transaction.
        self.restore_keys(&[(k.clone(), vec![first.clone()])]).await
    }

    async fn create_key_within(
        &self,
        k: &KeyRecord,
        first: &KeyVersionRecord,
        max_keys: u64,
    ) -> Result<()> {
        let mut stmts: Vec<Stmt> = E::INSTANCE_LOCK
            .map(|lock| Stmt::new(lock, vec![text(k.instance)]))
            .into_iter()
            .collect();
        stmts.extend(insert_key(k, std::slice::from_ref(first), Some(max_keys)));
        match self.execute_all(stmts).await {
            Err(StoreError::NotFound) => Err(StoreError::QuotaExceeded(max_keys)),
            other => other.map(drop),
        }
    }

    async fn get_key(&self, instance: InstanceId, id: KeyId) -> Result<KeyRecord> {
        let sql = "SELECT * FROM keys WHERE instance_id = $1 AND id = $2";
        key_from_row(&one(self.fetch_all(sql, key_args(instance, id)).await?)?)
    }

    async fn key_id_by_alias(&self, instance: InstanceId, alias: &str) -> Result<KeyId> {
        let sql = "SELECT key_id FROM aliases WHERE instance_id = $1 AND alias = $2";
        let rows = self
            .fetch_all(sql, vec![text(instance), text(alias)])
            .await?;
        key_id(&one(rows)?, "key_id")
    }

    async fn list_keys_sorted(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        sort: &[(SortField, bool)],
        page: Page,
    ) -> Result<Vec<KeyRecord>> {
        let (clause, mut args) = key_where(instance, filter);
        let n = args.len();
        args.extend([Arg::Int(page.limit.into()), Arg::Int(page.offset.into())]);
        let sql = format!(
            "SELECT * FROM keys{clause}{} LIMIT ${} OFFSET ${}",
            key_order(sort),
            n + 1,
            n + 2
        );
        keys_where(self, &sql, args).await
    }

    async fn count_keys(&self, instance: InstanceId, filter: &KeyFilter) -> Result<u64> {
        let (clause, args) = key_where(instance, filter);
        count(
            self,
            &format!("SELECT COUNT(*) AS n FROM keys{clause}"),
            args,
        )
        .await
    }

    async fn key_versions(&self, instance: InstanceId, id: KeyId) -> Result<Vec<KeyVersionRecord>> {
        let sql = "SELECT seq, id, created_at, blob FROM key_versions \
                   WHERE instance_id = $1 AND key_id = $2 ORDER BY seq DESC";
        let rows = self.fetch_all(sql, key_args(instance, id)).await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        rows.iter().map(version_from_row).collect()
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
        let order = E::BYTE_ORDER;
        let sql = format!(
            "SELECT v.key_id, v.seq, v.id, v.blob, k.kind, k.imported FROM key_versions v \
             JOIN keys k ON k.instance_id = v.instance_id AND k.id = v.key_id \
             WHERE v.instance_id = $1 AND substr(v.blob, 2, 16) <> $2 \
               AND (v.key_id{order} > $3 OR (v.key_id = $3 AND v.seq > $4)) \
             ORDER BY v.key_id{order}, v.seq LIMIT $5"
        );
        let args = vec![
            text(instance),
            Arg::Bytes(mk_id.to_vec()),
            Arg::Text(after_key),
            Arg::Int(after_seq),
            Arg::Int(limit.into()),
        ];
        let rows = self.fetch_all(&sql, args).await?;
        rows.iter().map(sealed_from_row).collect()
    }

    async fn count_versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
    ) -> Result<u64> {
        let sql = "SELECT COUNT(*) AS n FROM key_versions \
                   WHERE instance_id = $1 AND substr(blob, 2, 16) <> $2";
        count(self, sql, vec![text(instance), Arg::Bytes(mk_id.to_vec())]).await
    }

    async fn replace_blobs(&self, instance: InstanceId, updates: &[BlobUpdate]) -> Result<u64> {
        let stmts = updates
            .iter()
            .map(|u| {
                Stmt::new(
                    "UPDATE key_versions SET blob = $1 \
                     WHERE instance_id = $2 AND key_id = $3 AND seq = $4 AND blob = $5",
                    vec![
                        Arg::Bytes(u.new.clone()),
                        text(instance),
                        text(u.key),
                        Arg::Int(u.seq.into()),
                        Arg::Bytes(u.old.clone()),
                    ],
                )
            })
            .collect();
        Ok(self.execute_all(stmts).await?.iter().sum())
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<i64> {
        write_key(self, key, vec![update_key(key)]).await
    }

    async fn add_key_version(&self, key: &KeyRecord, v: &KeyVersionRecord) -> Result<i64> {
        write_key(self, key, vec![update_key(key), insert_version(key, v)]).await
    }

    async fn add_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let insert = Stmt::new(
            "INSERT INTO aliases (instance_id, alias, key_id) VALUES ($1, $2, $3)",
            vec![text(key.instance), text(alias), text(key.id)],
        )
        .unique(Unique::Alias);
        write_key(self, key, vec![insert, update_key(key)]).await
    }

    async fn remove_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let args = vec![text(key.instance), text(alias), text(key.id)];
        let sql = "DELETE FROM aliases WHERE instance_id = $1 AND alias = $2 AND key_id = $3";
        // The alias must exist; only then is a failed update a stale read.
        let found = "SELECT COUNT(*) AS n FROM aliases \
                     WHERE instance_id = $1 AND alias = $2 AND key_id = $3";
        if count(self, found, args.clone()).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let delete = Stmt::new(sql, args).required();
        write_key(self, key, vec![delete, update_key(key)]).await
    }

    async fn keys_with_rotation_policy(&self) -> Result<Vec<KeyRecord>> {
        let sql = "SELECT * FROM keys WHERE rotation_enabled AND state IN (1, 3) \
                   ORDER BY instance_id, id";
        keys_where(self, sql, vec![]).await
    }

    async fn keys_expired_by(&self, now: UnixMillis) -> Result<Vec<KeyRecord>> {
        let sql = "SELECT * FROM keys WHERE state IN (1, 2) AND expiration IS NOT NULL \
                   AND expiration <= $1 ORDER BY instance_id, id";
        keys_where(self, sql, vec![Arg::Int(now.0)]).await
    }

    async fn keys_deleted_by(&self, cutoff: UnixMillis) -> Result<Vec<KeyRecord>> {
        let sql = "SELECT * FROM keys WHERE state = 5 \
                   AND COALESCE(deleted_at, state_changed_at) <= $1 ORDER BY instance_id, id";
        keys_where(self, sql, vec![Arg::Int(cutoff.0)]).await
    }

    async fn create_key_ring(&self, instance: InstanceId, ring: &KeyRingRecord) -> Result<()> {
        let sql = "INSERT INTO key_rings (instance_id, id, created_at, created_by) \
                   VALUES ($1, $2, $3, $4)";
        let args = vec![
            text(instance),
            text(&ring.id),
            Arg::Int(ring.created_at.0),
            text(&ring.created_by),
        ];
        self.execute(Stmt::new(sql, args).unique(Unique::KeyRing))
            .await
            .map(drop)
    }

    async fn list_key_rings(&self, instance: InstanceId) -> Result<Vec<KeyRingRecord>> {
        let sql = "SELECT id, created_at, created_by FROM key_rings WHERE instance_id = $1 \
                   ORDER BY id";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(ring_from_row).collect()
    }

    async fn delete_key_ring(&self, instance: InstanceId, id: &str, force: bool) -> Result<()> {
        // Without force any key blocks the ring; with it, only keys not destroyed do, and
        // destroyed ones move to the default ring.
        let blocking = if force {
            "SELECT COUNT(*) AS n FROM keys WHERE instance_id = $1 AND key_ring = $2 AND state <> 5"
        } else {
            "SELECT COUNT(*) AS n FROM keys WHERE instance_id = $1 AND key_ring = $2"
        };
        let args = || vec![text(instance), text(id)];
        let delete = format!(
            "DELETE FROM key_rings WHERE instance_id = $1 AND id = $2 AND NOT EXISTS ({})",
            blocking.replace("COUNT(*) AS n", "1")
        );
        let stmts = vec![
            Stmt::new(delete, args()).required(),
            Stmt::new(
                "UPDATE keys SET key_ring = 'default', row_version = row_version + 1 \
                 WHERE instance_id = $1 AND key_ring = $2",
                args(),
            ),
        ];
        match self.execute_all(stmts).await {
            Err(StoreError::NotFound) => match count(self, blocking, args()).await? {
                0 => Err(StoreError::NotFound),
                n => Err(StoreError::RingNotEmpty(n)),
            },
            other => other.map(drop),
        }
    }

    async fn put_import_token(&self, instance: InstanceId, t: &ImportTokenRecord) -> Result<()> {
        let sql = "INSERT INTO import_tokens (instance_id, id, created_at, expires_at, \
                   max_retrievals, remaining, public_key, private_blob, nonce) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (instance_id) DO UPDATE \
                   SET id = excluded.id, created_at = excluded.created_at, \
                   expires_at = excluded.expires_at, max_retrievals = excluded.max_retrievals, \
                   remaining = excluded.remaining, public_key = excluded.public_key, \
                   private_blob = excluded.private_blob, nonce = excluded.nonce";
        let args = vec![
            text(instance),
            text(t.id),
            Arg::Int(t.created_at.0),
            Arg::Int(t.expires_at.0),
            Arg::Int(t.max_retrievals.into()),
            Arg::Int(t.remaining.into()),
            Arg::Bytes(t.public_key.clone()),
            Arg::Bytes(t.private_blob.clone()),
            Arg::Bytes(t.nonce.clone()),
        ];
        self.execute(Stmt::new(sql, args)).await.map(drop)
    }

    async fn get_import_token(&self, instance: InstanceId) -> Result<ImportTokenRecord> {
        let sql = "SELECT * FROM import_tokens WHERE instance_id = $1";
        import_token_from_row(&one(self.fetch_all(sql, vec![text(instance)]).await?)?)
    }

    async fn take_import_token_retrieval(&self, instance: InstanceId, id: KeyId) -> Result<u32> {
        let sql = "UPDATE import_tokens SET remaining = remaining - 1 \
                   WHERE instance_id = $1 AND id = $2 AND remaining > 0 RETURNING remaining";
        match self.fetch_write(sql, key_args(instance, id)).await?.first() {
            Some(r) => u32_of(r.int("remaining")?, "remaining"),
            // Spent or replaced, if the instance has a token at all.
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
        let stmts = policies
            .iter()
            .map(|p| {
                Stmt::new(
                    "INSERT INTO instance_policies (instance_id, policy_type, enabled, attributes, \
                     created_at, created_by, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (instance_id, policy_type) DO UPDATE SET enabled = excluded.enabled, \
                     attributes = excluded.attributes, updated_at = excluded.updated_at, \
                     updated_by = excluded.updated_by",
                    vec![
                        text(instance),
                        text(&p.policy_type),
                        Arg::Bool(p.enabled),
                        text(&p.attributes),
                        Arg::Int(p.created_at.0),
                        text(&p.created_by),
                        Arg::Int(p.updated_at.0),
                        text(&p.updated_by),
                    ],
                )
            })
            .collect();
        self.execute_all(stmts).await.map(drop)
    }

    async fn list_instance_policies(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<InstancePolicyRecord>> {
        let sql = "SELECT * FROM instance_policies WHERE instance_id = $1 ORDER BY policy_type";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn put_registration(&self, instance: InstanceId, r: &RegistrationRecord) -> Result<()> {
        let sql = "INSERT INTO registrations (instance_id, key_id, resource_crn, description, \
                   metadata, prevent_deletion, key_version_id, created_at, created_by, updated_at, \
                   updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                   ON CONFLICT (instance_id, key_id, resource_crn) DO UPDATE SET \
                   description = excluded.description, metadata = excluded.metadata, \
                   prevent_deletion = excluded.prevent_deletion, \
                   key_version_id = excluded.key_version_id, updated_at = excluded.updated_at, \
                   updated_by = excluded.updated_by";
        let args = vec![
            text(instance),
            text(r.key),
            text(&r.resource_crn),
            Arg::OptText(r.description.clone()),
            Arg::OptText(r.metadata.clone()),
            Arg::Bool(r.prevent_deletion),
            text(r.key_version),
            Arg::Int(r.created_at.0),
            text(&r.created_by),
            Arg::Int(r.updated_at.0),
            text(&r.updated_by),
        ];
        self.execute(Stmt::new(sql, args)).await.map(drop)
    }

    async fn delete_registration(&self, instance: InstanceId, key: KeyId, crn: &str) -> Result<()> {
        let sql = "DELETE FROM registrations \
                   WHERE instance_id = $1 AND key_id = $2 AND resource_crn = $3";
        let args = vec![text(instance), text(key), text(crn)];
        self.execute(Stmt::new(sql, args).required())
            .await
            .map(drop)
    }

    async fn list_registrations(
        &self,
        instance: InstanceId,
        key: Option<KeyId>,
    ) -> Result<Vec<RegistrationRecord>> {
        let rows = match key {
            Some(k) => {
                let sql = "SELECT * FROM registrations WHERE instance_id = $1 AND key_id = $2 \
                           ORDER BY key_id, resource_crn";
                self.fetch_all(sql, key_args(instance, k)).await?
            }
            None => {
                let sql = "SELECT * FROM registrations WHERE instance_id = $1 \
                           ORDER BY key_id, resource_crn";
                self.fetch_all(sql, vec![text(instance)]).await?
            }
        };
        rows.iter().map(registration_from_row).collect()
    }

    async fn mark_synced(
        &self,
        instance: InstanceId,
        key: KeyId,
        at: UnixMillis,
        not_after: UnixMillis,
    ) -> Result<()> {
        let sql = "UPDATE keys SET last_synced_at = $1 WHERE instance_id = $2 AND id = $3 \
                   AND (last_synced_at IS NULL OR last_synced_at <= $4)";
        let args = vec![
            Arg::Int(at.0),
            text(instance),
            text(key),
            Arg::Int(not_after.0),
        ];
        match self.execute(Stmt::new(sql, args).required()).await {
            Err(StoreError::NotFound) => Err(not_updated(self, instance, key).await),
            other => other.map(drop),
        }
    }

    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        SqlExec::changes(self)
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<bool> {
        let sql = "INSERT INTO jobs (name, holder, lease_until) VALUES ($1, $2, $3) \
                   ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                   lease_until = excluded.lease_until \
                   WHERE jobs.holder = excluded.holder OR jobs.lease_until < $4";
        let args = vec![
            text(job),
            text(holder),
            Arg::Int(now.0 + lease_ms),
            Arg::Int(now.0),
        ];
        Ok(self.execute(Stmt::new(sql, args)).await? > 0)
    }

    async fn restore_keys(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()> {
        let stmts = keys
            .iter()
            .flat_map(|(k, versions)| insert_key(k, versions, None))
            .collect();
        self.execute_all(stmts).await.map(drop)
    }

    async fn purge_key(
        &self,
        instance: InstanceId,
        id: KeyId,
        expected_row_version: i64,
    ) -> Result<()> {
        let mut args = key_args(instance, id);
        args.push(Arg::Int(expected_row_version));
        let mut stmts = vec![Stmt::new(
            "DELETE FROM keys WHERE instance_id = $1 AND id = $2 AND row_version = $3",
            args,
        )
        .required()];
        stmts.extend(KEY_TABLES.iter().map(|table| {
            Stmt::new(
                format!("DELETE FROM {table} WHERE instance_id = $1 AND key_id = $2"),
                key_args(instance, id),
            )
        }));
        match self.execute_all(stmts).await {
            Err(StoreError::NotFound) => Err(not_updated(self, instance, id).await),
            other => other.map(drop),
        }
    }

    async fn create_api_key(&self, rec: &ApiKeyRecord) -> Result<()> {
        let sql = "INSERT INTO api_keys \
                   (id, instance_id, name, roles, secret_hash, created_at, service_id, key_rings) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let args = vec![
            text(&rec.id),
            text(rec.instance),
            text(&rec.name),
            Arg::Int(rec.roles.0.into()),
            Arg::Bytes(rec.secret_hash.to_vec()),
            Arg::Int(rec.created_at.0),
            Arg::OptText(rec.service_id.clone()),
            key_rings_arg(&rec.key_rings),
        ];
        let mut stmts = Vec::new();
        if let Some(sid) = &rec.service_id {
            // The key is added only while its service ID exists, in one transaction.
            let check = "UPDATE service_ids SET name = name WHERE instance_id = $1 AND id = $2";
            stmts.push(Stmt::new(check, vec![text(rec.instance), text(sid)]).required());
        }
        stmts.push(Stmt::new(sql, args).unique(Unique::ApiKey));
        self.execute_all(stmts).await.map(drop)
    }

    async fn get_api_key(&self, id: &str) -> Result<ApiKeyRecord> {
        let rows = self
            .fetch_all("SELECT * FROM api_keys WHERE id = $1", vec![text(id)])
            .await?;
        api_key_from_row(&one(rows)?)
    }

    async fn list_api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>> {
        let sql = "SELECT * FROM api_keys WHERE instance_id = $1 ORDER BY created_at, id";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn delete_api_key(&self, instance: InstanceId, id: &str) -> Result<()> {
        let sql = "DELETE FROM api_keys WHERE instance_id = $1 AND id = $2";
        let args = vec![text(instance), text(id)];
        self.execute(Stmt::new(sql, args).required())
            .await
            .map(drop)
    }

    async fn put_placement(&self, rec: &PlacementRecord) -> Result<()> {
        let sql =
            "INSERT INTO placements (unit_id, instance_id, recovery, zone, region, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (unit_id) DO UPDATE SET zone = excluded.zone, region = excluded.region";
        let args = vec![
            text(rec.unit),
            text(rec.instance),
            Arg::Bool(rec.recovery),
            Arg::OptText(rec.zone.clone()),
            Arg::OptText(rec.region.clone()),
            Arg::Int(rec.created_at.0),
        ];
        self.execute(Stmt::new(sql, args)).await.map(drop)
    }

    async fn list_placements(&self, instance: InstanceId) -> Result<Vec<PlacementRecord>> {
        let sql = "SELECT * FROM placements WHERE instance_id = $1 ORDER BY created_at, unit_id";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(placement_from_row).collect()
    }

    async fn placement_regions(&self) -> Result<Vec<String>> {
        let sql = "SELECT DISTINCT region FROM placements WHERE region IS NOT NULL ORDER BY region";
        let rows = self.fetch_all(sql, vec![]).await?;
        rows.iter().map(|r| r.text("region")).collect()
    }

    async fn create_service_id(&self, rec: &ServiceIdRecord) -> Result<()> {
        let sql = "INSERT INTO service_ids (id, instance_id, name, roles, key_rings, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let args = vec![
            text(&rec.id),
            text(rec.instance),
            text(&rec.name),
            Arg::Int(rec.roles.0.into()),
            key_rings_arg(&rec.key_rings),
            Arg::Int(rec.created_at.0),
        ];
        self.execute(Stmt::new(sql, args).unique(Unique::ServiceId))
            .await
            .map(drop)
    }

    async fn get_service_id(&self, instance: InstanceId, id: &str) -> Result<ServiceIdRecord> {
        let sql = "SELECT * FROM service_ids WHERE instance_id = $1 AND id = $2";
        let rows = self.fetch_all(sql, vec![text(instance), text(id)]).await?;
        service_id_from_row(&one(rows)?)
    }

    async fn list_service_ids(&self, instance: InstanceId) -> Result<Vec<ServiceIdRecord>> {
        let sql = "SELECT * FROM service_ids WHERE instance_id = $1 ORDER BY created_at, id";
        let rows = self.fetch_all(sql, vec![text(instance)]).await?;
        rows.iter().map(service_id_from_row).collect()
    }

    async fn update_service_id(&self, rec: &ServiceIdRecord) -> Result<()> {
        let sql = "UPDATE service_ids SET name = $3, roles = $4, key_rings = $5 \
                   WHERE instance_id = $1 AND id = $2";
        let args = vec![
            text(rec.instance),
            text(&rec.id),
            text(&rec.name),
            Arg::Int(rec.roles.0.into()),
            key_rings_arg(&rec.key_rings),
        ];
        self.execute(Stmt::new(sql, args).required())
            .await
            .map(drop)
    }

    async fn delete_service_id(&self, instance: InstanceId, id: &str) -> Result<()> {
        let args = || vec![text(instance), text(id)];
        let stmts = vec![
            Stmt::new(
                "DELETE FROM api_keys WHERE instance_id = $1 AND service_id = $2",
                args(),
            ),
            Stmt::new(
                "DELETE FROM service_ids WHERE instance_id = $1 AND id = $2",
                args(),
            )
            .required(),
        ];
        self.execute_all(stmts).await.map(drop)
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        if records.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
            return Err(StoreError::Conflict);
        }
        self.insert_audit(records).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let sql = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        match self.fetch_audit(sql, vec![]).await?.first() {
            None => Ok(None),
            Some(r) => Ok(Some((
                r.int("seq")?,
                hash32(r.bytes("hash")?, "audit hash")?,
            ))),
        }
    }

    async fn audit_usage(
        &self,
        instance: InstanceId,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<u64> {
        let sql = "SELECT COUNT(*) AS n FROM audit WHERE instance_id = $1 AND at >= $2 AND at < $3";
        let args = vec![text(instance), Arg::Int(from.0), Arg::Int(to.0)];
        count_of(&self.fetch_audit(sql, args).await?)
    }

    async fn add_unit_usage(&self, counts: &[UnitUsage]) -> Result<()> {
        let stmts = counts
            .iter()
            .map(|c| {
                Stmt::new(
                    "INSERT INTO unit_usage (instance_id, month, unit_id, calls) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, month, unit_id) \
                     DO UPDATE SET calls = unit_usage.calls + excluded.calls",
                    vec![
                        text(c.instance),
                        text(&c.month),
                        text(c.unit),
                        Arg::Int(i64::try_from(c.calls).unwrap_or(i64::MAX)),
                    ],
                )
            })
            .collect();
        self.execute_all(stmts).await.map(drop)
    }

    async fn unit_usage(&self, instance: InstanceId, month: &str) -> Result<Vec<UnitUsage>> {
        let sql = "SELECT unit_id, calls FROM unit_usage WHERE instance_id = $1 AND month = $2 \
                   ORDER BY unit_id";
        let rows = self
            .fetch_all(sql, vec![text(instance), text(month)])
            .await?;
        rows.iter()
            .map(|r| usage_from_row(r, instance, month))
            .collect()
    }

    async fn read_instance_audit(
        &self,
        instance: InstanceId,
        q: &AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from("SELECT * FROM audit WHERE instance_id = $1 AND seq > $2");
        let mut args = vec![text(instance), Arg::Int(q.after)];
        let filters = [
            ("at >=", q.from.map(|f| Arg::Int(f.0))),
            ("at <", q.to.map(|t| Arg::Int(t.0))),
            ("action =", q.action.as_deref().map(text)),
            ("outcome =", q.outcome.as_deref().map(text)),
            ("outcome <>", q.failures.then(|| text("success"))),
            ("key =", q.key.as_deref().map(text)),
        ];
        for (clause, arg) in filters {
            if let Some(arg) = arg {
                args.push(arg);
                sql.push_str(&format!(" AND {clause} ${}", args.len()));
            }
        }
        args.push(Arg::Int(q.limit.into()));
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", args.len()));
        let rows = self.fetch_audit(&sql, args).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn read_audit(&self, from: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let sql = "SELECT * FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2";
        let rows = self
            .fetch_audit(sql, vec![Arg::Int(from), Arg::Int(limit.into())])
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
