//! KMIP's transitions on time, written down. Every read and every use already sees the
//! state an object's dates have brought ([`StoredAttributes::state_at`]); this background
//! job writes that state into the keystore's row, so that what reads rows by state (the
//! management API's filter and counts) agrees, and so that each transition is in the audit
//! log.

use strongroom_keystore::{KmipObjectFilter, StoreError};
use uuid::Uuid;

use super::model::*;
use super::objects::{state_of, stored};
use crate::action::Action;
use crate::audit::{AuditEvent, Outcome};
use crate::error::Result;
use crate::Service;

/// Rows read per page while looking for due objects.
const PAGE: u32 = 1000;

impl Service {
    /// Writes the state of every KMIP object whose Activation or Deactivation Date has
    /// come, across all instances, and audits each as `kmip.transition` by the
    /// `scheduler`. The Last Change Date stays: clients saw the new state already. Returns
    /// how many objects moved.
    pub async fn apply_kmip_dates(&self) -> Result<usize> {
        let now = self.clock.now();
        let secs = now.0.div_euclid(1000);
        // Only Pre-Active and Active objects move with time.
        let filter = KmipObjectFilter {
            states: vec![KmipState::PreActive.code(), KmipState::Active.code()],
            ..KmipObjectFilter::default()
        };
        let mut moved = 0;
        for instance in self.store.list_instances().await? {
            // The due objects first: a row that moves leaves the filter and would shift
            // the pages read after it.
            let mut due: Vec<Uuid> = Vec::new();
            let mut offset = 0u64;
            loop {
                let page = self
                    .store
                    .list_kmip_objects(instance.id, &filter, offset, PAGE)
                    .await?;
                for r in &page {
                    if stored(r)?.state_at(state_of(r)?, secs).code() != r.state {
                        due.push(r.id);
                    }
                }
                if page.len() < PAGE as usize {
                    break;
                }
                offset += u64::from(PAGE);
            }
            for id in due {
                if self.write_kmip_date_state(instance.id, id, secs).await? {
                    moved += 1;
                    self.audit
                        .record(
                            AuditEvent {
                                instance: Some(instance.id),
                                principal: "scheduler".into(),
                                action: Action::KmipTransition,
                                key: Some(id.to_string()),
                                outcome: Outcome::Success,
                                correlation_id: format!("kmip-dates-{}", now.0),
                            },
                            true,
                        )
                        .await?;
                }
            }
        }
        Ok(moved)
    }

    /// Writes object `id`'s state at `secs` if it differs from its row's; whether it did.
    /// A concurrent change is read again; an object gone or changed to another state by a
    /// client is left as it is.
    async fn write_kmip_date_state(
        &self,
        instance: strongroom_model::InstanceId,
        id: Uuid,
        secs: i64,
    ) -> Result<bool> {
        for _ in 0..8 {
            let mut r = match self.store.get_kmip_object(instance, id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            let next = stored(&r)?.state_at(state_of(&r)?, secs).code();
            if next == r.state {
                return Ok(false);
            }
            r.state = next;
            let written = self.store.update_kmip_object(&r).await;
            self.kmip_cache.remove(&(instance, id));
            match written {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }
}
