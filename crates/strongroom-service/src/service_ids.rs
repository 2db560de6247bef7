//! Service IDs: identities of an instance whose API keys share one grant (roles, over the
//! whole instance or some of its key rings). An application's API key is rotated by adding
//! a second key to its service ID and deleting the first; the access stays as it was. A
//! token exchanged with a service ID's key carries the service ID's grant of that moment.

use strongroom_keystore::{ServiceIdRecord, StoreError};
use strongroom_model::InstanceId;

use crate::action::Action;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::instances::AdminCtx;
use crate::{Grant, Service, ServiceIdInfo};

fn service_id_not_found() -> ServiceError {
    ServiceError::new(ErrorKind::ServiceIdNotFound, "service ID does not exist")
}

/// A keystore error on a service ID: `NotFound` is an unknown service ID.
pub(crate) fn service_id_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => service_id_not_found(),
        other => other.into(),
    }
}

impl Service {
    /// Fails unless `grant` names at least one role, and only key rings of `instance`.
    pub(crate) async fn check_grant(&self, instance: InstanceId, grant: &Grant) -> Result<()> {
        if !grant.roles.is_valid() {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "roles",
                "at least one of Reader, ReaderPlus, Writer, Manager, KeyPurge is required",
            ));
        }
        let Some(rings) = &grant.key_rings else {
            return Ok(());
        };
        if rings.is_empty() {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "key_rings",
                "name at least one key ring, or leave key_rings out for the whole instance",
            ));
        }
        let existing = self.store.list_key_rings(instance).await?;
        for ring in rings {
            if ring != crate::rings::DEFAULT_RING && !existing.iter().any(|r| &r.id == ring) {
                return Err(ServiceError::field(
                    ErrorKind::KeyRingNotFound,
                    "key_rings",
                    format!("key ring '{ring}' does not exist in the instance"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) async fn service_id_record(
        &self,
        instance: InstanceId,
        id: &str,
    ) -> Result<ServiceIdRecord> {
        self.store
            .get_service_id(instance, id)
            .await
            .map_err(service_id_error)
    }

    /// Creates a service ID of `instance` with `grant`; its API keys are created with
    /// `create_api_key` and [`crate::Access::ServiceId`].
    pub async fn create_service_id(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        name: &str,
        grant: Grant,
    ) -> Result<ServiceIdInfo> {
        let r = async {
            crate::text::check_display_text("name", name, 100, true)?;
            self.require_instance(instance).await?;
            self.check_grant(instance, &grant).await?;
            let record = ServiceIdRecord {
                id: format!("ServiceId-{}", uuid::Uuid::new_v4()),
                instance,
                name: name.to_string(),
                roles: grant.roles,
                key_rings: grant.key_rings,
                created_at: self.clock.now(),
            };
            self.store.create_service_id(&record).await?;
            Ok(ServiceIdInfo::from(&record))
        }
        .await;
        self.admin_audited(ctx, Action::AdminServiceIdsCreate, Some(instance), r)
            .await
    }

    /// Lists an instance's service IDs.
    pub async fn list_service_ids(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
    ) -> Result<Vec<ServiceIdInfo>> {
        let r = async {
            self.require_instance(instance).await?;
            let list = self.store.list_service_ids(instance).await?;
            Ok(list.iter().map(ServiceIdInfo::from).collect())
        }
        .await;
        self.admin_audited(ctx, Action::AdminServiceIdsList, Some(instance), r)
            .await
    }

    /// Replaces a service ID's grant. Tokens already issued for its API keys act with the
    /// new grant: at once on this node, and on the others as soon as they hear of it
    /// ([`crate::credentials`]).
    pub async fn update_service_id(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        id: &str,
        grant: Grant,
    ) -> Result<ServiceIdInfo> {
        let r = async {
            let mut record = self.service_id_record(instance, id).await?;
            self.check_grant(instance, &grant).await?;
            record.roles = grant.roles;
            record.key_rings = grant.key_rings;
            let updated = self
                .store
                .update_service_id(&record)
                .await
                .map_err(service_id_error);
            self.credentials.forget(Some(instance));
            updated?;
            Ok(ServiceIdInfo::from(&record))
        }
        .await;
        self.admin_audited(ctx, Action::AdminServiceIdsUpdate, Some(instance), r)
            .await
    }

    /// Deletes a service ID and all its API keys; tokens already issued for them stop
    /// working, as with [`Service::delete_api_key`].
    pub async fn delete_service_id(
        &self,
        ctx: &AdminCtx,
        instance: InstanceId,
        id: &str,
    ) -> Result<()> {
        let r = self
            .store
            .delete_service_id(instance, id)
            .await
            .map_err(service_id_error);
        self.credentials.forget(Some(instance));
        self.admin_audited(ctx, Action::AdminServiceIdsDelete, Some(instance), r)
            .await
    }
}
