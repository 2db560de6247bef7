//! A per-node cache of opened KMIP objects, for Get and the cryptographic operations.

use std::sync::Mutex;

use strongroom_keystore::KmipObjectRecord;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::admin::object_not_found;
use super::model::*;
use super::objects::{state_of, stored, KmipManaged, KmipSession};
use crate::error::Result;
use crate::Service;

/// An object as the read paths use it: the row, its parsed attributes, and its value
/// opened (none once destroyed). Kept per node for Get and the cryptographic operations,
/// dropped on every change made through this node and on every change the keystore's feed
/// reports from other nodes.
pub(crate) struct CachedKmip {
    pub record: KmipObjectRecord,
    pub stored: StoredAttributes,
    pub material: Option<Zeroizing<Vec<u8>>>,
}

impl CachedKmip {
    /// The object with its value; `None` once destroyed.
    pub(crate) fn managed(&self, now: i64) -> Option<KmipManaged> {
        let state = KmipState::from_code(self.record.state)
            .filter(|s| !s.is_destroyed())
            .map(|s| self.stored.state_at(s, now))?;
        let date = |name: &str| self.stored.date(name);
        Some(KmipManaged {
            id: self.record.id,
            object_type: self.record.object_type,
            state,
            format: self.stored.format,
            algorithm: self.stored.algorithm,
            length: self.stored.length,
            subtype: self.stored.subtype,
            presented: self.stored.presented.unwrap_or(self.stored.format),
            material: self.material.clone()?,
            protect_stopped: date(names::PROTECT_STOP_DATE).is_some_and(|t| t <= now),
            process_pending: date(names::PROCESS_START_DATE).is_some_and(|t| t > now),
            usage_mask: self.stored.usage_mask(),
            limited: self.stored.usage_limits().is_some(),
        })
    }
}

type KmipCacheKey = (strongroom_model::InstanceId, Uuid);

/// A bounded cache of opened KMIP objects. `epoch` moves on every eviction, so that a read
/// that raced with a change does not put back what the change replaced.
pub(crate) struct KmipCache {
    lru: Mutex<lru::LruCache<KmipCacheKey, std::sync::Arc<CachedKmip>>>,
    epoch: std::sync::atomic::AtomicU64,
}

impl KmipCache {
    pub(crate) fn new(capacity: usize) -> KmipCache {
        let cap =
            std::num::NonZeroUsize::new(capacity.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        KmipCache {
            lru: Mutex::new(lru::LruCache::new(cap)),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }
    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn get(&self, k: &KmipCacheKey) -> Option<std::sync::Arc<CachedKmip>> {
        self.lru.lock().ok()?.get(k).cloned()
    }
    fn put_if_unchanged(&self, k: KmipCacheKey, v: std::sync::Arc<CachedKmip>, epoch: u64) {
        if let Ok(mut l) = self.lru.lock() {
            if self.epoch() == epoch {
                l.put(k, v);
            }
        }
    }
    /// Drops one object.
    pub(crate) fn remove(&self, k: &KmipCacheKey) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut l) = self.lru.lock() {
            l.pop(k);
        }
    }
    /// Drops every object of an instance (`None`: of every instance).
    pub(crate) fn clear(&self, instance: Option<strongroom_model::InstanceId>) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut l) = self.lru.lock() {
            match instance {
                None => l.clear(),
                Some(i) => {
                    let doomed: Vec<KmipCacheKey> = l
                        .iter()
                        .filter(|(k, _)| k.0 == i)
                        .map(|(k, _)| *k)
                        .collect();
                    for k in doomed {
                        l.pop(&k);
                    }
                }
            }
        }
    }
}

impl Service {
    /// An object of this connection's adapter, opened, from the cache or the keystore.
    pub(crate) async fn kmip_cached(
        &self,
        s: &KmipSession,
        id: &str,
    ) -> Result<std::sync::Arc<CachedKmip>> {
        let uid = Uuid::parse_str(id).map_err(|_| object_not_found())?;
        let key = (s.ctx.instance, uid);
        if let Some(hit) = self.kmip_cache.get(&key) {
            if hit.record.adapter != s.adapter {
                return Err(object_not_found());
            }
            return Ok(hit);
        }
        let epoch = self.kmip_cache.epoch();
        let record = self.kmip_record(s, id).await?;
        let stored = stored(&record)?;
        let material = if state_of(&record)?.is_destroyed() {
            None
        } else {
            Some(self.open_kmip_material(s, &record).await?)
        };
        let entry = std::sync::Arc::new(CachedKmip {
            record,
            stored,
            material,
        });
        self.kmip_cache
            .put_if_unchanged(key, std::sync::Arc::clone(&entry), epoch);
        Ok(entry)
    }
}
