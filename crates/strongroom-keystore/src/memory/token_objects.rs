//! The PKCS#11 library's token objects in memory.

use super::*;

#[async_trait]
impl TokenObjectStore for MemoryStore {
    async fn list_token_objects(
        &self,
        instance: InstanceId,
        space: &str,
    ) -> Result<Vec<TokenObjectRecord>> {
        let t = self.lock()?;
        Ok(t.token_objects
            .iter()
            .filter(|((i, s, _), _)| *i == instance && s == space)
            .map(|(_, o)| o.clone())
            .collect())
    }

    async fn get_token_object(
        &self,
        instance: InstanceId,
        space: &str,
        id: &str,
    ) -> Result<TokenObjectRecord> {
        let t = self.lock()?;
        t.token_objects
            .get(&(instance, space.to_string(), id.to_string()))
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn all_token_objects(&self, instance: InstanceId) -> Result<Vec<TokenObjectRecord>> {
        let t = self.lock()?;
        Ok(t.token_objects
            .iter()
            .filter(|((i, ..), _)| *i == instance)
            .map(|(_, o)| o.clone())
            .collect())
    }

    async fn put_token_object(
        &self,
        rec: &TokenObjectRecord,
        expected: i64,
        max: u64,
    ) -> Result<i64> {
        let mut t = self.lock()?;
        let slot = (rec.instance, rec.space.clone(), rec.id.clone());
        if expected == 0 {
            let control = |id: &str| id.starts_with(crate::CONTROL_PREFIX);
            let held = t
                .token_objects
                .keys()
                .filter(|(i, _, id)| *i == rec.instance && !control(id))
                .count();
            if !control(&rec.id) && u64_of(held) >= max {
                return Err(StoreError::QuotaExceeded(max));
            }
            if t.token_objects.contains_key(&slot) {
                return Err(StoreError::AlreadyExists(Unique::TokenObject));
            }
            let created = TokenObjectRecord {
                version: 1,
                created_at: rec.updated_at,
                ..rec.clone()
            };
            t.token_objects.insert(slot, created);
            return Ok(1);
        }
        let stored = t.token_objects.get_mut(&slot).ok_or(StoreError::NotFound)?;
        if stored.version != expected {
            return Err(StoreError::Conflict);
        }
        stored.data.clone_from(&rec.data);
        stored.private = rec.private;
        stored.version = expected + 1;
        stored.updated_at = rec.updated_at;
        Ok(expected + 1)
    }

    async fn delete_token_object(&self, instance: InstanceId, space: &str, id: &str) -> Result<()> {
        self.lock()?
            .token_objects
            .remove(&(instance, space.to_string(), id.to_string()))
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    async fn clear_token_space(&self, instance: InstanceId, space: &str) -> Result<u64> {
        let mut t = self.lock()?;
        let before = t.token_objects.len();
        t.token_objects
            .retain(|(i, s, _), _| !(*i == instance && s == space));
        Ok(u64_of(before - t.token_objects.len()))
    }
}
