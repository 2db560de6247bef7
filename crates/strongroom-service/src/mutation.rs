//! The read-modify-write of one key: under its stripe lock, from the stored record, with the
//! store's optimistic concurrency, dropping the cached entry afterwards. Every change of a
//! key's metadata goes through here (the lifecycle, rotation, rings, aliases, policies, the
//! background jobs).

use strongroom_keystore::{KeyRecord, KeyVersionRecord, StoreError};
use strongroom_model::{InstanceId, KeyId, UnixMillis};

use crate::auth::Ctx;
use crate::error::Result;
use crate::keys::key_not_found;
use crate::Service;

/// What a mutation writes.
pub(crate) enum MutateOutcome<T> {
    Update(T),
    AddVersion(KeyVersionRecord, T),
    Purge(T),
    AddAlias(String, T),
    RemoveAlias(String, T),
}

impl Service {
    /// Runs a read-modify-write of one key under its stripe lock, from the stored record,
    /// and drops the cached entry afterwards.
    pub(crate) async fn mutate<T, F>(&self, ctx: &Ctx, id: KeyId, f: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut KeyRecord, UnixMillis) -> Result<MutateOutcome<T>>,
    {
        self.mutate_in(ctx.instance, id, f).await
    }

    /// [`Service::mutate`] for a known instance (background jobs have no request).
    pub(crate) async fn mutate_in<T, F>(&self, instance: InstanceId, id: KeyId, f: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut KeyRecord, UnixMillis) -> Result<MutateOutcome<T>>,
    {
        let ck = (instance, id);
        let _guard = self.cache.stripe(&ck).lock().await;
        let mut rec = match self.store.get_key(instance, id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(key_not_found()),
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let outcome = f(&mut rec, now)?;
        let result = match outcome {
            MutateOutcome::Update(v) => {
                rec.updated_at = now;
                self.store.update_key(&rec).await.map(|_| v)
            }
            MutateOutcome::AddVersion(version, v) => {
                rec.updated_at = now;
                self.store.add_key_version(&rec, &version).await.map(|_| v)
            }
            MutateOutcome::Purge(v) => self
                .store
                .purge_key(instance, id, rec.row_version)
                .await
                .map(|_| v),
            MutateOutcome::AddAlias(alias, v) => {
                rec.updated_at = now;
                self.store.add_alias(&rec, &alias).await.map(|_| v)
            }
            MutateOutcome::RemoveAlias(alias, v) => {
                rec.updated_at = now;
                self.store.remove_alias(&rec, &alias).await.map(|_| v)
            }
        };
        self.cache.remove(&ck);
        result.map_err(|e| match e {
            StoreError::NotFound => key_not_found(),
            other => other.into(),
        })
    }
}
