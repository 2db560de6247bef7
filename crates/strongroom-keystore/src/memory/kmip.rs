//! KMIP objects, adapters and certificates in memory.

use super::*;

#[async_trait]
impl KmipStore for MemoryStore {
    async fn create_kmip_adapter(&self, a: &KmipAdapterRecord, max: u32) -> Result<()> {
        let mut t = self.lock()?;
        let of_instance = t
            .kmip_adapters
            .values()
            .filter(|x| x.instance == a.instance);
        if u64_of(of_instance.clone().count()) >= u64::from(max) {
            return Err(StoreError::QuotaExceeded(max.into()));
        }
        let taken = of_instance.clone().any(|x| x.name == a.name)
            || t.kmip_adapters.contains_key(&(a.instance, a.id));
        if taken {
            return Err(StoreError::AlreadyExists(Unique::KmipAdapter));
        }
        t.kmip_adapters.insert((a.instance, a.id), a.clone());
        Ok(())
    }

    async fn list_kmip_adapters(&self, instance: InstanceId) -> Result<Vec<KmipAdapterRecord>> {
        let t = self.lock()?;
        let mut all: Vec<KmipAdapterRecord> = t
            .kmip_adapters
            .values()
            .filter(|a| a.instance == instance)
            .cloned()
            .collect();
        all.sort_by_key(|a| (a.created_at, a.id));
        Ok(all)
    }

    async fn delete_kmip_adapter(&self, instance: InstanceId, id: Uuid) -> Result<()> {
        let mut t = self.lock()?;
        let live = KmipObjectFilter {
            adapter: Some(id),
            states: LIVE_STATES.to_vec(),
            ..KmipObjectFilter::default()
        };
        let live = u64_of(t.kmip_objects_of(instance, &live).count());
        if !t.kmip_adapter_exists(instance, id) {
            return Err(StoreError::NotFound);
        }
        if live > 0 {
            return Err(StoreError::AdapterNotEmpty(live));
        }
        t.kmip_adapters.remove(&(instance, id));
        t.kmip_certificates
            .retain(|_, c| !(c.instance == instance && c.adapter == id));
        t.kmip_objects
            .retain(|_, o| !(o.instance == instance && o.adapter == id));
        Ok(())
    }

    async fn add_kmip_certificate(&self, c: &KmipCertificateRecord, max: u32) -> Result<()> {
        let mut t = self.lock()?;
        if !t.kmip_adapter_exists(c.instance, c.adapter) {
            return Err(StoreError::NotFound);
        }
        let of_adapter = t
            .kmip_certificates
            .values()
            .filter(|x| x.instance == c.instance && x.adapter == c.adapter);
        if u64_of(of_adapter.clone().count()) >= u64::from(max) {
            return Err(StoreError::QuotaExceeded(max.into()));
        }
        let taken = of_adapter.clone().any(|x| x.name == c.name)
            || t.kmip_certificates
                .values()
                .any(|x| x.fingerprint == c.fingerprint)
            || t.kmip_certificates.contains_key(&(c.instance, c.id));
        if taken {
            return Err(StoreError::AlreadyExists(Unique::KmipCertificate));
        }
        t.kmip_certificates.insert((c.instance, c.id), c.clone());
        Ok(())
    }

    async fn list_kmip_certificates(
        &self,
        instance: InstanceId,
        adapter: Uuid,
    ) -> Result<Vec<KmipCertificateRecord>> {
        let t = self.lock()?;
        let mut all: Vec<KmipCertificateRecord> = t
            .kmip_certificates
            .values()
            .filter(|c| c.instance == instance && c.adapter == adapter)
            .cloned()
            .collect();
        all.sort_by_key(|c| (c.created_at, c.id));
        Ok(all)
    }

    async fn delete_kmip_certificate(
        &self,
        instance: InstanceId,
        adapter: Uuid,
        id: Uuid,
    ) -> Result<()> {
        let mut t = self.lock()?;
        match t.kmip_certificates.get(&(instance, id)) {
            Some(c) if c.adapter == adapter => {
                t.kmip_certificates.remove(&(instance, id));
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn kmip_certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<KmipCertificateRecord> {
        let t = self.lock()?;
        t.kmip_certificates
            .values()
            .find(|c| c.fingerprint == fingerprint)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn kmip_fingerprints(&self) -> Result<Vec<String>> {
        let t = self.lock()?;
        Ok(t.kmip_certificates
            .values()
            .map(|c| c.fingerprint.clone())
            .collect())
    }

    async fn get_kmip_object(&self, instance: InstanceId, id: Uuid) -> Result<KmipObjectRecord> {
        self.lock()?
            .kmip_objects
            .get(&(instance, id))
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    async fn update_kmip_object(&self, o: &KmipObjectRecord) -> Result<i64> {
        self.write_kmip_objects(&[], std::slice::from_ref(o), u64::MAX)
            .await
            .map(|()| o.row_version + 1)
    }

    async fn write_kmip_objects(
        &self,
        new: &[KmipObjectRecord],
        replaced: &[KmipObjectRecord],
        max_live: u64,
    ) -> Result<()> {
        let mut t = self.lock()?;
        // Everything is checked before anything is written: all or nothing.
        if let Some(o) = new.first() {
            let live = u64_of(
                t.kmip_objects_of(o.instance, &KmipObjectFilter::live())
                    .count(),
            );
            if live.saturating_add(u64_of(new.len())) > max_live {
                return Err(StoreError::QuotaExceeded(max_live));
            }
        }
        for o in new {
            if t.kmip_objects.contains_key(&(o.instance, o.id)) {
                return Err(StoreError::AlreadyExists(Unique::KmipObject));
            }
        }
        for o in replaced {
            let stored = t
                .kmip_objects
                .get(&(o.instance, o.id))
                .ok_or(StoreError::NotFound)?;
            if stored.row_version != o.row_version {
                return Err(StoreError::Conflict);
            }
        }
        for o in new {
            t.kmip_objects.insert((o.instance, o.id), o.clone());
        }
        for o in replaced {
            let next = KmipObjectRecord {
                row_version: o.row_version + 1,
                ..o.clone()
            };
            t.kmip_objects.insert((o.instance, o.id), next);
        }
        Ok(())
    }

    async fn list_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<KmipObjectRecord>> {
        let t = self.lock()?;
        Ok(page(
            t.kmip_objects_of(instance, filter).cloned(),
            offset,
            limit,
        ))
    }

    async fn count_kmip_objects(
        &self,
        instance: InstanceId,
        filter: &KmipObjectFilter,
    ) -> Result<u64> {
        let t = self.lock()?;
        Ok(u64_of(t.kmip_objects_of(instance, filter).count()))
    }
}
