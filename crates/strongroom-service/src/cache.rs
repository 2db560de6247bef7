//! The bounded cache of unwrapped keys (least recently used). Entries hold prepared root
//! keys and standard key material; both zeroize when the last reference drops (aws-lc
//! cleanses the AES key schedule when it frees it). Misses and writes of one key are
//! serialized by a striped lock so that a stale read can never overwrite a newer entry.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use strongroom_engine::{KeyMaterial, WrappingKey};
use strongroom_keystore::KeyRecord;
use strongroom_model::{InstanceId, KeyId, UnixMillis, VersionId};

/// One version's usable material.
pub(crate) enum Material {
    Root(WrappingKey),
    Standard(KeyMaterial),
}

/// One cached version.
pub(crate) struct CachedVersion {
    pub id: VersionId,
    pub created_at: UnixMillis,
    pub material: Material,
}

/// A key with its opened versions (newest first).
pub(crate) struct CachedKey {
    pub record: KeyRecord,
    pub versions: Vec<CachedVersion>,
}

impl CachedKey {
    pub fn version(&self, id: VersionId) -> Option<&CachedVersion> {
        self.versions.iter().find(|v| v.id == id)
    }
    pub fn newest(&self) -> Option<&CachedVersion> {
        self.versions.first()
    }
}

type CacheKey = (InstanceId, KeyId);

pub(crate) struct KeyCache {
    lru: Mutex<LruCache<CacheKey, Arc<CachedKey>>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        KeyCache {
            lru: Mutex::new(LruCache::new(cap)),
            stripes: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    pub fn get(&self, k: &CacheKey) -> Option<Arc<CachedKey>> {
        self.lru.lock().ok()?.get(k).cloned()
    }

    pub fn put(&self, k: CacheKey, v: Arc<CachedKey>) {
        if let Ok(mut l) = self.lru.lock() {
            l.put(k, v);
        }
    }

    pub fn remove(&self, k: &CacheKey) {
        if let Ok(mut l) = self.lru.lock() {
            l.pop(k);
        }
    }

    pub fn remove_instance(&self, instance: InstanceId) {
        if let Ok(mut l) = self.lru.lock() {
            let doomed: Vec<CacheKey> = l
                .iter()
                .filter(|(k, _)| k.0 == instance)
                .map(|(k, _)| *k)
                .collect();
            for k in doomed {
                l.pop(&k);
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut l) = self.lru.lock() {
            l.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.lru.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// The lock that serializes loads and writes of one key.
    pub fn stripe(&self, k: &CacheKey) -> &tokio::sync::Mutex<()> {
        self.stripe_of(k.1.as_bytes())
    }

    /// The same locks for any object with a UUID (KMIP objects): changes of one object
    /// on this node queue instead of racing each other's compare-and-swap.
    pub fn stripe_of(&self, id: &[u8; 16]) -> &tokio::sync::Mutex<()> {
        let idx = usize::from(id[15]) % self.stripes.len();
        &self.stripes[idx]
    }
}
