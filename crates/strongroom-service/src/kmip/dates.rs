//! KMIP's transitions on time, written down. Every read and every use already sees the
//! state an object's dates have brought ([`StoredAttributes::state_at`]); this background
//! job writes that state into the keystore's row, so that what reads rows by state (the
//! management API's filter and counts) agrees, and so that each transition is in the audit
//! log.

use strongroom_keystore::{KmipObjectFilter, KmipObjectRecord, StoreError};

use super::model::*;
use super::objects::{state_now, stored};
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
        let secs = self.kmip_now();
        // Only Pre-Active and Active objects move with time.
        let filter = KmipObjectFilter {
            states: vec![KmipState::PreActive.code(), KmipState::Active.code()],
            ..KmipObjectFilter::default()
        };
        let mut moved = 0;
        for instance in self.store.list_instances().await? {
            // The due rows first: a row that moves leaves the filter and would shift the
            // pages read after it.
            let mut due: Vec<KmipObjectRecord> = Vec::new();
            let mut offset = 0u64;
            loop {
                let page = self
                    .store
                    .list_kmip_objects(instance.id, &filter, offset, PAGE)
                    .await?;
                let read = page.len();
                for r in page {
                    if state_now(&r, &stored(&r)?, secs)?.code() != r.state {
                        due.push(r);
                    }
                }
                if read < PAGE as usize {
                    break;
                }
                offset += u64::from(PAGE);
            }
            for r in due {
                let id = r.id;
                if self.write_kmip_date_state(r, secs).await? {
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

    /// Writes row `r` in its state at `secs` if that differs from the row's; whether it did.
    /// After a concurrent change the row is read again; an object gone, or moved to another
    /// state by a client, is left as it is.
    async fn write_kmip_date_state(&self, mut r: KmipObjectRecord, secs: i64) -> Result<bool> {
        for _ in 0..8 {
            let next = state_now(&r, &stored(&r)?, secs)?.code();
            if next == r.state {
                return Ok(false);
            }
            r.state = next;
            let written = self.store.update_kmip_object(&r).await;
            self.kmip_cache.remove(&(r.instance, r.id));
            match written {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => {}
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            r = match self.store.get_kmip_object(r.instance, r.id).await {
                Ok(fresh) => fresh,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
        }
        Ok(false)
    }
}
