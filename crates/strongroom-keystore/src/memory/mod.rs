//! [`MemoryStore`]: the keystore in process memory, for tests of the service and of the
//! front ends that need neither SQLite nor PostgreSQL. It keeps nothing across restarts
//! and is never offered to `serve`. It passes the same [`conformance`](crate::conformance)
//! suite as the SQL backends: every call is one critical section, so a call that fails
//! changes nothing, as a transaction would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, UnitId, UnixMillis};
use uuid::Uuid;

use crate::*;

mod kmip;
mod token_objects;

/// A key with what hangs off it.
struct StoredKey {
    rec: KeyRecord,
    versions: BTreeMap<u32, KeyVersionRecord>,
    last_synced_at: Option<UnixMillis>,
}

type InstanceKey = (InstanceId, KeyId);

/// Every table, as the SQL schema has them (the same keys, the same unique values).
#[derive(Default)]
struct Tables {
    instances: BTreeMap<InstanceId, InstanceRecord>,
    deleted_instances: BTreeMap<InstanceId, UnixMillis>,
    keys: BTreeMap<InstanceKey, StoredKey>,
    aliases: BTreeMap<(InstanceId, String), KeyId>,
    rings: BTreeMap<(InstanceId, String), KeyRingRecord>,
    import_tokens: BTreeMap<InstanceId, ImportTokenRecord>,
    policies: BTreeMap<(InstanceId, String), InstancePolicyRecord>,
    registrations: BTreeMap<(InstanceId, KeyId, String), RegistrationRecord>,
    jobs: BTreeMap<String, (String, i64)>,
    api_keys: BTreeMap<String, ApiKeyRecord>,
    service_ids: BTreeMap<String, ServiceIdRecord>,
    audit: BTreeMap<i64, AuditRecord>,
    placements: BTreeMap<UnitId, PlacementRecord>,
    unit_usage: BTreeMap<(InstanceId, String, UnitId), u64>,
    kmip_adapters: BTreeMap<(InstanceId, Uuid), KmipAdapterRecord>,
    kmip_certificates: BTreeMap<(InstanceId, Uuid), KmipCertificateRecord>,
    kmip_objects: BTreeMap<(InstanceId, Uuid), KmipObjectRecord>,
    token_objects: BTreeMap<(InstanceId, String, String), TokenObjectRecord>,
}

/// The keystore in memory (tests only).
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Tables>> {
        // A panic inside a critical section may have left a table half-written: refuse
        // every later call rather than answer from it.
        self.tables.lock().map_err(|_| {
            StoreError::Unavailable(Box::new(std::io::Error::other(
                "the in-memory keystore was poisoned by a panic",
            )))
        })
    }
}

fn u64_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn matches(k: &KeyRecord, f: &KeyFilter) -> bool {
    (f.states.is_empty() || f.states.contains(&k.state))
        && f.extractable
            .is_none_or(|x| k.kind == if x { KeyKind::Standard } else { KeyKind::Root })
        && f.key_ring.as_ref().is_none_or(|r| &k.key_ring == r)
        && f.within_rings
            .as_ref()
            .is_none_or(|rs| rs.contains(&k.key_ring))
}

/// The order of [`KeyStore::list_keys_sorted`]: unset dates first when ascending, last
/// when descending (as `NULL`s sort in the SQL backends' `ORDER BY`), ties by id.
fn compare(a: &KeyRecord, b: &KeyRecord, sort: &[(SortField, bool)]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn field(k: &KeyRecord, f: SortField) -> Option<i64> {
        match f {
            SortField::Id => Some(0),
            SortField::State => Some(k.state.code().into()),
            SortField::Extractable => Some(k.kind.code().into()),
            SortField::Imported => Some(k.imported.into()),
            SortField::CreationDate => Some(k.created_at.0),
            SortField::LastUpdateDate => Some(k.updated_at.0),
            SortField::LastRotateDate => k.last_rotated_at.map(|t| t.0),
            SortField::DeletionDate => k.deleted_at.map(|t| t.0),
            SortField::ExpirationDate => k.expiration.map(|t| t.0),
        }
    }
    for &(f, desc) in sort {
        let o = if f == SortField::Id {
            a.id.cmp(&b.id)
        } else {
            // `None < Some` puts unset dates first; reversing for descending puts them last.
            field(a, f).cmp(&field(b, f))
        };
        let o = if desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.id.cmp(&b.id)
}

fn page<T>(items: impl Iterator<Item = T>, offset: u64, limit: u32) -> Vec<T> {
    items
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect()
}

impl Tables {
    fn key(&self, instance: InstanceId, id: KeyId) -> Result<&StoredKey> {
        self.keys.get(&(instance, id)).ok_or(StoreError::NotFound)
    }

    /// The stored key that an optimistic write of `k` may change: `NotFound` when it is
    /// gone, `Conflict` when it changed since `k` was read.
    fn current(&mut self, k: &KeyRecord) -> Result<&mut StoredKey> {
        let stored = self
            .keys
            .get_mut(&(k.instance, k.id))
            .ok_or(StoreError::NotFound)?;
        if stored.rec.row_version != k.row_version {
            return Err(StoreError::Conflict);
        }
        Ok(stored)
    }

    /// Writes `k`'s changeable fields over the stored key (checked by [`Tables::current`])
    /// and counts the write.
    fn write(stored: &mut StoredKey, k: &KeyRecord) -> i64 {
        let fixed = &stored.rec;
        let next = KeyRecord {
            kind: fixed.kind,
            imported: fixed.imported,
            bits: fixed.bits,
            created_at: fixed.created_at,
            created_by: fixed.created_by.clone(),
            row_version: k.row_version + 1,
            ..k.clone()
        };
        stored.rec = next;
        k.row_version + 1
    }

    /// The keys of one instance, by id.
    fn stored_of(&self, instance: InstanceId) -> impl Iterator<Item = &StoredKey> {
        self.keys
            .range((instance, KeyId(Uuid::nil()))..=(instance, KeyId(Uuid::max())))
            .map(|(_, s)| s)
    }

    fn keys_of(&self, instance: InstanceId) -> impl Iterator<Item = &KeyRecord> {
        self.stored_of(instance).map(|s| &s.rec)
    }

    /// Checks that `keys` can all be inserted, as one transaction would.
    fn check_insert(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()> {
        let mut ids = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        for (k, versions) in keys {
            if self.keys.contains_key(&(k.instance, k.id)) || !ids.insert((k.instance, k.id)) {
                return Err(StoreError::AlreadyExists(Unique::Key));
            }
            for a in &k.aliases {
                if self.aliases.contains_key(&(k.instance, a.clone()))
                    || !aliases.insert((k.instance, a.clone()))
                {
                    return Err(StoreError::AlreadyExists(Unique::Alias));
                }
            }
            let mut seqs = BTreeSet::new();
            if versions.iter().any(|v| !seqs.insert(v.seq)) {
                return Err(StoreError::AlreadyExists(Unique::KeyVersion));
            }
        }
        Ok(())
    }

    fn insert(&mut self, k: &KeyRecord, versions: &[KeyVersionRecord]) {
        for a in &k.aliases {
            self.aliases.insert((k.instance, a.clone()), k.id);
        }
        let versions = versions.iter().map(|v| (v.seq, v.clone())).collect();
        let stored = StoredKey {
            rec: k.clone(),
            versions,
            last_synced_at: None,
        };
        self.keys.insert((k.instance, k.id), stored);
    }

    fn remove_key(&mut self, instance: InstanceId, id: KeyId) {
        self.keys.remove(&(instance, id));
        self.aliases
            .retain(|(i, _), k| !(*i == instance && *k == id));
        self.registrations
            .retain(|(i, k, _), _| !(*i == instance && *k == id));
    }

    fn kmip_adapter_exists(&self, instance: InstanceId, id: Uuid) -> bool {
        self.kmip_adapters.contains_key(&(instance, id))
    }

    fn kmip_objects_of<'a>(
        &'a self,
        instance: InstanceId,
        f: &'a KmipObjectFilter,
    ) -> impl Iterator<Item = &'a KmipObjectRecord> + 'a {
        let mut objects: Vec<&KmipObjectRecord> = self
            .kmip_objects
            .values()
            .filter(move |o| {
                o.instance == instance
                    && f.adapter.is_none_or(|a| o.adapter == a)
                    && f.object_type.is_none_or(|t| o.object_type == t)
                    && f.name.as_ref().is_none_or(|n| o.name.as_ref() == Some(n))
                    && f.algorithm.is_none_or(|a| o.algorithm == Some(a))
                    && (f.states.is_empty() || f.states.contains(&o.state))
            })
            .collect();
        objects.sort_by_key(|o| (o.created_at, o.id));
        objects.into_iter()
    }
}

/// Whether a version's blob is stamped with master key id `mk_id` (blob bytes 1..17).
fn under(blob: &[u8], mk_id: &[u8; 16]) -> bool {
    blob.get(BLOB_MK_ID_OFFSET..BLOB_MK_ID_OFFSET + 16) == Some(mk_id.as_slice())
}

#[async_trait]
impl KeyStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(drop)
    }

    async fn create_instance(&self, rec: &InstanceRecord) -> Result<()> {
        let mut t = self.lock()?;
        if t.instances.contains_key(&rec.id) || t.instances.values().any(|i| i.name == rec.name) {
            return Err(StoreError::AlreadyExists(Unique::Instance));
        }
        t.instances.insert(rec.id, rec.clone());
        Ok(())
    }

    async fn get_instance(&self, id: InstanceId) -> Result<InstanceRecord> {
        self.lock()?
            .instances
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list_instances(&self) -> Result<Vec<InstanceRecord>> {
        let mut all: Vec<InstanceRecord> = self.lock()?.instances.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    async fn delete_instance(&self, id: InstanceId, force: bool, now: UnixMillis) -> Result<()> {
        let mut t = self.lock()?;
        if !t.instances.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let keys = u64_of(t.keys_of(id).count());
        if keys > 0 && !force {
            return Err(StoreError::InstanceNotEmpty(keys));
        }
        t.placements.retain(|_, p| p.instance != id);
        t.token_objects.retain(|(i, ..), _| *i != id);
        t.keys.retain(|(i, _), _| *i != id);
        t.aliases.retain(|(i, _), _| *i != id);
        t.registrations.retain(|(i, ..), _| *i != id);
        t.api_keys.retain(|_, k| k.instance != id);
        t.service_ids.retain(|_, s| s.instance != id);
        t.rings.retain(|(i, _), _| *i != id);
        t.import_tokens.remove(&id);
        t.policies.retain(|(i, _), _| *i != id);
        t.kmip_certificates.retain(|(i, _), _| *i != id);
        t.kmip_objects.retain(|(i, _), _| *i != id);
        t.kmip_adapters.retain(|(i, _), _| *i != id);
        t.instances.remove(&id);
        t.deleted_instances.entry(id).or_insert(now);
        Ok(())
    }

    async fn instance_deleted(&self, id: InstanceId) -> Result<bool> {
        Ok(self.lock()?.deleted_instances.contains_key(&id))
    }

    async fn create_key(&self, key: &KeyRecord, first: &KeyVersionRecord) -> Result<()> {
        self.restore_keys(&[(key.clone(), vec![first.clone()])])
            .await
    }

    async fn create_key_within(
        &self,
        key: &KeyRecord,
        first: &KeyVersionRecord,
        max_keys: u64,
    ) -> Result<()> {
        let mut t = self.lock()?;
        if u64_of(t.keys_of(key.instance).count()) >= max_keys {
            return Err(StoreError::QuotaExceeded(max_keys));
        }
        let batch = [(key.clone(), vec![first.clone()])];
        t.check_insert(&batch)?;
        t.insert(key, std::slice::from_ref(first));
        Ok(())
    }

    async fn get_key(&self, instance: InstanceId, id: KeyId) -> Result<KeyRecord> {
        Ok(self.lock()?.key(instance, id)?.rec.clone())
    }

    async fn key_id_by_alias(&self, instance: InstanceId, alias: &str) -> Result<KeyId> {
        self.lock()?
            .aliases
            .get(&(instance, alias.to_string()))
            .copied()
            .ok_or(StoreError::NotFound)
    }

    async fn list_keys_sorted(
        &self,
        instance: InstanceId,
        filter: &KeyFilter,
        sort: &[(SortField, bool)],
        p: Page,
    ) -> Result<Vec<KeyRecord>> {
        let t = self.lock()?;
        let mut keys: Vec<&KeyRecord> =
            t.keys_of(instance).filter(|k| matches(k, filter)).collect();
        keys.sort_by(|a, b| compare(a, b, sort));
        Ok(page(keys.into_iter().cloned(), p.offset.into(), p.limit))
    }

    async fn count_keys(&self, instance: InstanceId, filter: &KeyFilter) -> Result<u64> {
        let t = self.lock()?;
        Ok(u64_of(
            t.keys_of(instance).filter(|k| matches(k, filter)).count(),
        ))
    }

    async fn key_versions(&self, instance: InstanceId, id: KeyId) -> Result<Vec<KeyVersionRecord>> {
        let t = self.lock()?;
        let versions: Vec<KeyVersionRecord> = t
            .key(instance, id)?
            .versions
            .values()
            .rev()
            .cloned()
            .collect();
        if versions.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(versions)
    }

    async fn versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
        after: Option<(KeyId, u32)>,
        limit: u32,
    ) -> Result<Vec<SealedVersion>> {
        let t = self.lock()?;
        let sealed = t
            .stored_of(instance)
            .flat_map(|s| s.versions.values().map(move |v| (s, v)))
            .filter(|(s, v)| after.is_none_or(|a| (s.rec.id, v.seq) > a) && !under(&v.blob, mk_id))
            .map(|(s, v)| SealedVersion {
                key: s.rec.id,
                kind: s.rec.kind,
                imported: s.rec.imported,
                seq: v.seq,
                version: v.id,
                blob: v.blob.clone(),
            });
        Ok(page(sealed, 0, limit))
    }

    async fn count_versions_not_under(
        &self,
        instance: InstanceId,
        mk_id: &[u8; 16],
    ) -> Result<u64> {
        let t = self.lock()?;
        let n = t
            .stored_of(instance)
            .flat_map(|s| s.versions.values())
            .filter(|v| !under(&v.blob, mk_id))
            .count();
        Ok(u64_of(n))
    }

    async fn replace_blobs(&self, instance: InstanceId, updates: &[BlobUpdate]) -> Result<u64> {
        let mut t = self.lock()?;
        let mut replaced = 0;
        for u in updates {
            let version = t
                .keys
                .get_mut(&(instance, u.key))
                .and_then(|s| s.versions.get_mut(&u.seq));
            if let Some(v) = version.filter(|v| v.blob == u.old) {
                v.blob.clone_from(&u.new);
                replaced += 1;
            }
        }
        Ok(replaced)
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<i64> {
        let mut t = self.lock()?;
        Ok(Tables::write(t.current(key)?, key))
    }

    async fn add_key_version(&self, key: &KeyRecord, version: &KeyVersionRecord) -> Result<i64> {
        let mut t = self.lock()?;
        let stored = t.current(key)?;
        if stored.versions.contains_key(&version.seq) {
            return Err(StoreError::Conflict);
        }
        stored.versions.insert(version.seq, version.clone());
        Ok(Tables::write(stored, key))
    }

    async fn add_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let mut t = self.lock()?;
        let name = (key.instance, alias.to_string());
        if t.aliases.contains_key(&name) {
            return Err(StoreError::AlreadyExists(Unique::Alias));
        }
        let next = Tables::write(t.current(key)?, key);
        t.aliases.insert(name, key.id);
        Ok(next)
    }

    async fn remove_alias(&self, key: &KeyRecord, alias: &str) -> Result<i64> {
        let mut t = self.lock()?;
        let name = (key.instance, alias.to_string());
        if t.aliases.get(&name) != Some(&key.id) {
            return Err(StoreError::NotFound);
        }
        let next = Tables::write(t.current(key)?, key);
        t.aliases.remove(&name);
        Ok(next)
    }

    async fn keys_with_rotation_policy(&self) -> Result<Vec<KeyRecord>> {
        let t = self.lock()?;
        Ok(t.keys
            .values()
            .map(|s| &s.rec)
            .filter(|k| k.rotation.as_ref().is_some_and(|r| r.enabled))
            .filter(|k| matches!(k.state, KeyState::Active | KeyState::Deactivated))
            .cloned()
            .collect())
    }

    async fn keys_expired_by(&self, now: UnixMillis) -> Result<Vec<KeyRecord>> {
        let t = self.lock()?;
        Ok(t.keys
            .values()
            .map(|s| &s.rec)
            .filter(|k| matches!(k.state, KeyState::Active | KeyState::Suspended))
            .filter(|k| k.expiration.is_some_and(|e| e <= now))
            .cloned()
            .collect())
    }

    async fn keys_deleted_by(&self, cutoff: UnixMillis) -> Result<Vec<KeyRecord>> {
        let t = self.lock()?;
        Ok(t.keys
            .values()
            .map(|s| &s.rec)
            .filter(|k| k.state == KeyState::Destroyed)
            .filter(|k| k.deleted_at.unwrap_or(k.state_changed_at) <= cutoff)
            .cloned()
            .collect())
    }

    async fn create_key_ring(&self, instance: InstanceId, ring: &KeyRingRecord) -> Result<()> {
        let mut t = self.lock()?;
        let id = (instance, ring.id.clone());
        if t.rings.contains_key(&id) {
            return Err(StoreError::AlreadyExists(Unique::KeyRing));
        }
        t.rings.insert(id, ring.clone());
        Ok(())
    }

    async fn list_key_rings(&self, instance: InstanceId) -> Result<Vec<KeyRingRecord>> {
        let t = self.lock()?;
        Ok(t.rings
            .iter()
            .filter(|((i, _), _)| *i == instance)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn delete_key_ring(&self, instance: InstanceId, id: &str, force: bool) -> Result<()> {
        let mut t = self.lock()?;
        let blocking = t
            .keys_of(instance)
            .filter(|k| k.key_ring == id && !(force && k.state == KeyState::Destroyed))
            .count();
        let name = (instance, id.to_string());
        if blocking > 0 {
            return Err(StoreError::RingNotEmpty(u64_of(blocking)));
        }
        if t.rings.remove(&name).is_none() {
            return Err(StoreError::NotFound);
        }
        for s in t.keys.values_mut() {
            if s.rec.instance == instance && s.rec.key_ring == id {
                s.rec.key_ring = "default".into();
                s.rec.row_version += 1;
            }
        }
        Ok(())
    }

    async fn put_import_token(
        &self,
        instance: InstanceId,
        token: &ImportTokenRecord,
    ) -> Result<()> {
        self.lock()?.import_tokens.insert(instance, token.clone());
        Ok(())
    }

    async fn get_import_token(&self, instance: InstanceId) -> Result<ImportTokenRecord> {
        self.lock()?
            .import_tokens
            .get(&instance)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn take_import_token_retrieval(&self, instance: InstanceId, id: KeyId) -> Result<u32> {
        let mut t = self.lock()?;
        let token = t
            .import_tokens
            .get_mut(&instance)
            .ok_or(StoreError::NotFound)?;
        if token.id != id || token.remaining == 0 {
            // Spent, or replaced by a newer token.
            return Err(StoreError::Conflict);
        }
        token.remaining -= 1;
        Ok(token.remaining)
    }

    async fn put_instance_policies(
        &self,
        instance: InstanceId,
        policies: &[InstancePolicyRecord],
    ) -> Result<()> {
        let mut t = self.lock()?;
        for p in policies {
            let slot = (instance, p.policy_type.clone());
            match t.policies.get_mut(&slot) {
                Some(old) => {
                    // An update keeps who first set the policy, and when.
                    old.enabled = p.enabled;
                    old.attributes.clone_from(&p.attributes);
                    old.updated_at = p.updated_at;
                    old.updated_by.clone_from(&p.updated_by);
                }
                None => {
                    t.policies.insert(slot, p.clone());
                }
            }
        }
        Ok(())
    }

    async fn list_instance_policies(
        &self,
        instance: InstanceId,
    ) -> Result<Vec<InstancePolicyRecord>> {
        let t = self.lock()?;
        Ok(t.policies
            .iter()
            .filter(|((i, _), _)| *i == instance)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn put_registration(&self, instance: InstanceId, reg: &RegistrationRecord) -> Result<()> {
        let mut t = self.lock()?;
        let slot = (instance, reg.key, reg.resource_crn.clone());
        match t.registrations.get_mut(&slot) {
            Some(old) => {
                *old = RegistrationRecord {
                    created_at: old.created_at,
                    created_by: old.created_by.clone(),
                    ..reg.clone()
                };
            }
            None => {
                t.registrations.insert(slot, reg.clone());
            }
        }
        Ok(())
    }

    async fn delete_registration(&self, instance: InstanceId, key: KeyId, crn: &str) -> Result<()> {
        self.lock()?
            .registrations
            .remove(&(instance, key, crn.to_string()))
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    async fn list_registrations(
        &self,
        instance: InstanceId,
        key: Option<KeyId>,
    ) -> Result<Vec<RegistrationRecord>> {
        let t = self.lock()?;
        Ok(t.registrations
            .iter()
            .filter(|((i, k, _), _)| *i == instance && key.is_none_or(|want| *k == want))
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn mark_synced(
        &self,
        instance: InstanceId,
        key: KeyId,
        at: UnixMillis,
        not_after: UnixMillis,
    ) -> Result<()> {
        let mut t = self.lock()?;
        let stored = t
            .keys
            .get_mut(&(instance, key))
            .ok_or(StoreError::NotFound)?;
        if stored.last_synced_at.is_some_and(|last| last > not_after) {
            return Err(StoreError::Conflict);
        }
        stored.last_synced_at = Some(at);
        Ok(())
    }

    fn changes(&self) -> Option<Box<dyn ChangeFeed>> {
        None
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<bool> {
        let mut t = self.lock()?;
        let free = t
            .jobs
            .get(job)
            .is_none_or(|(h, until)| h == holder || *until < now.0);
        if free {
            t.jobs
                .insert(job.to_string(), (holder.to_string(), now.0 + lease_ms));
        }
        Ok(free)
    }

    async fn restore_keys(&self, keys: &[(KeyRecord, Vec<KeyVersionRecord>)]) -> Result<()> {
        let mut t = self.lock()?;
        t.check_insert(keys)?;
        for (k, versions) in keys {
            t.insert(k, versions);
        }
        Ok(())
    }

    async fn purge_key(
        &self,
        instance: InstanceId,
        id: KeyId,
        expected_row_version: i64,
    ) -> Result<()> {
        let mut t = self.lock()?;
        if t.key(instance, id)?.rec.row_version != expected_row_version {
            return Err(StoreError::Conflict);
        }
        t.remove_key(instance, id);
        Ok(())
    }

    async fn create_api_key(&self, rec: &ApiKeyRecord) -> Result<()> {
        let mut t = self.lock()?;
        if let Some(sid) = &rec.service_id {
            // Only while its service ID exists.
            if t.service_ids
                .get(sid)
                .is_none_or(|s| s.instance != rec.instance)
            {
                return Err(StoreError::NotFound);
            }
        }
        if t.api_keys.contains_key(&rec.id) {
            return Err(StoreError::AlreadyExists(Unique::ApiKey));
        }
        t.api_keys.insert(rec.id.clone(), rec.clone());
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<ApiKeyRecord> {
        self.lock()?
            .api_keys
            .get(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list_api_keys(&self, instance: InstanceId) -> Result<Vec<ApiKeyRecord>> {
        let t = self.lock()?;
        let mut keys: Vec<ApiKeyRecord> = t
            .api_keys
            .values()
            .filter(|k| k.instance == instance)
            .cloned()
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn delete_api_key(&self, instance: InstanceId, id: &str) -> Result<()> {
        let mut t = self.lock()?;
        match t.api_keys.get(id) {
            Some(k) if k.instance == instance => {
                t.api_keys.remove(id);
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn create_service_id(&self, rec: &ServiceIdRecord) -> Result<()> {
        let mut t = self.lock()?;
        if t.service_ids.contains_key(&rec.id) {
            return Err(StoreError::AlreadyExists(Unique::ServiceId));
        }
        t.service_ids.insert(rec.id.clone(), rec.clone());
        Ok(())
    }

    async fn get_service_id(&self, instance: InstanceId, id: &str) -> Result<ServiceIdRecord> {
        self.lock()?
            .service_ids
            .get(id)
            .filter(|s| s.instance == instance)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn list_service_ids(&self, instance: InstanceId) -> Result<Vec<ServiceIdRecord>> {
        let t = self.lock()?;
        let mut ids: Vec<ServiceIdRecord> = t
            .service_ids
            .values()
            .filter(|s| s.instance == instance)
            .cloned()
            .collect();
        ids.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(ids)
    }

    async fn update_service_id(&self, rec: &ServiceIdRecord) -> Result<()> {
        let mut t = self.lock()?;
        let stored = t
            .service_ids
            .get_mut(&rec.id)
            .filter(|s| s.instance == rec.instance)
            .ok_or(StoreError::NotFound)?;
        stored.name.clone_from(&rec.name);
        stored.roles = rec.roles;
        stored.key_rings.clone_from(&rec.key_rings);
        Ok(())
    }

    async fn delete_service_id(&self, instance: InstanceId, id: &str) -> Result<()> {
        let mut t = self.lock()?;
        if t.service_ids.get(id).is_none_or(|s| s.instance != instance) {
            return Err(StoreError::NotFound);
        }
        t.service_ids.remove(id);
        t.api_keys
            .retain(|_, k| !(k.instance == instance && k.service_id.as_deref() == Some(id)));
        Ok(())
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let mut t = self.lock()?;
        let head = t.audit.keys().next_back().copied().unwrap_or(0);
        let contiguous = records
            .iter()
            .zip(head + 1..)
            .all(|(r, want)| r.seq == want);
        if !contiguous {
            return Err(StoreError::Conflict);
        }
        t.audit.extend(records.iter().map(|r| (r.seq, r.clone())));
        Ok(())
    }

    async fn audit_head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let t = self.lock()?;
        Ok(t.audit.values().next_back().map(|r| (r.seq, r.hash)))
    }

    async fn audit_usage(
        &self,
        instance: InstanceId,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<u64> {
        let t = self.lock()?;
        let n = t
            .audit
            .values()
            .filter(|r| r.instance == Some(instance) && r.at >= from && r.at < to)
            .count();
        Ok(u64_of(n))
    }

    async fn put_placement(&self, rec: &PlacementRecord) -> Result<()> {
        let mut t = self.lock()?;
        match t.placements.get_mut(&rec.unit) {
            Some(old) => {
                old.zone.clone_from(&rec.zone);
                old.region.clone_from(&rec.region);
            }
            None => {
                t.placements.insert(rec.unit, rec.clone());
            }
        }
        Ok(())
    }

    async fn list_placements(&self, instance: InstanceId) -> Result<Vec<PlacementRecord>> {
        let t = self.lock()?;
        let mut all: Vec<PlacementRecord> = t
            .placements
            .values()
            .filter(|p| p.instance == instance)
            .cloned()
            .collect();
        all.sort_by_key(|p| (p.created_at, p.unit));
        Ok(all)
    }

    async fn placement_regions(&self) -> Result<Vec<String>> {
        let t = self.lock()?;
        let regions: BTreeSet<String> = t
            .placements
            .values()
            .filter_map(|p| p.region.clone())
            .collect();
        Ok(regions.into_iter().collect())
    }

    async fn add_unit_usage(&self, counts: &[UnitUsage]) -> Result<()> {
        let mut t = self.lock()?;
        for c in counts {
            let n = t
                .unit_usage
                .entry((c.instance, c.month.clone(), c.unit))
                .or_default();
            *n = n.saturating_add(c.calls);
        }
        Ok(())
    }

    async fn unit_usage(&self, instance: InstanceId, month: &str) -> Result<Vec<UnitUsage>> {
        let t = self.lock()?;
        Ok(t.unit_usage
            .iter()
            .filter(|((i, m, _), _)| *i == instance && m == month)
            .map(|((_, _, unit), calls)| UnitUsage {
                instance,
                unit: *unit,
                month: month.to_string(),
                calls: *calls,
            })
            .collect())
    }

    async fn read_audit(&self, from: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let t = self.lock()?;
        Ok(page(
            t.audit.range(from..).map(|(_, r)| r.clone()),
            0,
            limit,
        ))
    }

    async fn read_instance_audit(
        &self,
        instance: InstanceId,
        q: &AuditQuery,
    ) -> Result<Vec<AuditRecord>> {
        let t = self.lock()?;
        let wanted = |r: &&AuditRecord| {
            r.instance == Some(instance)
                && q.from.is_none_or(|f| r.at >= f)
                && q.to.is_none_or(|to| r.at < to)
                && q.action.as_ref().is_none_or(|a| &r.action == a)
                && q.outcome.as_ref().is_none_or(|o| &r.outcome == o)
                && (!q.failures || r.outcome != "success")
                && q.key.as_ref().is_none_or(|k| r.key.as_ref() == Some(k))
        };
        let after = q.after.saturating_add(1);
        Ok(page(
            t.audit
                .range(after..)
                .map(|(_, r)| r)
                .filter(wanted)
                .cloned(),
            0,
            q.limit,
        ))
    }
}
