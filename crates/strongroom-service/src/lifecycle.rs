//! The key lifecycle with Key Protect's timing rules: rotate, disable, enable, delete,
//! restore, purge.

use crate::action::Action;

use strongroom_engine::{BlobBinding, KeyMaterial};
use strongroom_keystore::{KeyRecord, KeyVersionRecord};
use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, LifecycleEvent, Role, VersionId};
use zeroize::Zeroizing;

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

use crate::keys::*;
use crate::mutation::MutateOutcome;

impl Service {
    /// Rotates key `id` of `instance` (requests and the rotation scheduler).
    pub(crate) async fn rotate_in(
        &self,
        instance: InstanceId,
        id: KeyId,
        payload: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<VersionInfo> {
        let unit = self.unit(instance)?;
        self.mutate_in(instance, id, move |rec, now| {
                if rec.kind != KeyKind::Root {
                    return Err(ServiceError::new(ErrorKind::RootKeyRequired, "Requested action can only be completed with a root key"));
                }
                // Key Protect refuses to rotate an expired key (state 3): a new version
                // would outlive the expiration it inherits. Only Active keys rotate.
                let state = effective_state(rec, now);
                if state != KeyState::Active {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidKeyState,
                        format!("Key is in state {} ({state:?}): key could not be rotated", state.code()),
                    ));
                }
                if let Some(last) = rec.last_rotated_at {
                    if now.secs_since(last) < ROTATE_EVERY_SECS {
                        return Err(ServiceError::new(
                            ErrorKind::RotationNotPermitted,
                            "This root key was rotated within the last hour; a key can be rotated once per hour",
                        ));
                    }
                }
                let material = match (rec.imported, payload) {
                    (true, None) => {
                        return Err(ServiceError::new(ErrorKind::PayloadRequired, "Rotating an imported root key requires a payload with the new key material"));
                    }
                    (false, Some(_)) => {
                        return Err(invalid("payload", "The field 'payload' is only accepted when rotating an imported root key"));
                    }
                    (true, Some(p)) if ![16, 24, 32].contains(&p.len()) => {
                        return Err(invalid("payload", "The field 'payload' must be: a base64 encoded 128, 192 or 256 bit key"));
                    }
                    (true, Some(p)) => KeyMaterial::from_slice(&p),
                    (false, None) => unit.generate(GENERATED_LEN).map_err(engine_err)?,
                };
                let version = VersionId::random();
                let binding = BlobBinding { instance, key: rec.id, version, kind: rec.kind, imported: rec.imported };
                let blob = unit.seal_blob(&binding, &material).map_err(engine_err)?;
                let seq = rec.version_count;
                rec.current_version = version;
                rec.current_version_at = now;
                rec.version_count += 1;
                rec.last_rotated_at = Some(now);
                rec.bits = u32::try_from(material.len() * 8).unwrap_or(u32::MAX);
                let info = VersionInfo { id: version, created_at: now };
                Ok(MutateOutcome::AddVersion(KeyVersionRecord { id: version, seq, created_at: now, blob }, info))
            })
        .await
    }

    /// Rotates a root key: a new version with fresh material, or with `payload` for
    /// imported keys. Older versions keep unwrapping.
    pub async fn rotate(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        payload: Option<Zeroizing<Vec<u8>>>,
        secure: Option<crate::SecureImport>,
    ) -> Result<VersionInfo> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let payload = match (secure, payload) {
                (Some(secure), Some(sealed)) => {
                    Some(self.open_secure_import(ctx, &sealed, &secure).await?)
                }
                (Some(_), None) => {
                    return Err(invalid(
                        "payload",
                        "secure import needs the encrypted 'payload'",
                    ))
                }
                (None, p) => p,
            };
            self.rotate_in(ctx.instance, id, payload).await
        };
        self.audited(
            ctx,
            Action::SecretsRotate,
            Role::Writer,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// One audited change of the key `id_or_alias`: `change` runs on its record under the
    /// key's lock, and what it returns is written (see [`Service::mutate`]).
    async fn change_key<T, F>(
        &self,
        ctx: &Ctx,
        action: Action,
        role: Role,
        id_or_alias: &str,
        change: F,
    ) -> Result<T>
    where
        F: for<'a> FnOnce(
            &'a mut KeyRecord,
            strongroom_model::UnixMillis,
        ) -> Result<MutateOutcome<T>>,
    {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, change).await
        };
        self.audited(ctx, action, role, Some(id_or_alias), op).await
    }

    /// Disables (suspends) an active root key.
    pub async fn disable(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        self.change_key(
            ctx,
            Action::SecretsDisable,
            Role::Manager,
            id_or_alias,
            |rec, now| {
                require_root(rec)?;
                rec.state = transition(rec, now, LifecycleEvent::Disable, "disabled")?;
                rec.state_changed_at = now;
                Ok(MutateOutcome::Update(()))
            },
        )
        .await
    }

    /// Enables a suspended root key, at least 30 seconds after it was disabled.
    pub async fn enable(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        self.change_key(
            ctx,
            Action::SecretsEnable,
            Role::Manager,
            id_or_alias,
            |rec, now| {
                require_root(rec)?;
                if effective_state(rec, now) == KeyState::Deactivated {
                    return Err(ServiceError::new(
                        ErrorKind::KeyExpired,
                        "The key has expired and cannot be enabled",
                    ));
                }
                let next = transition(rec, now, LifecycleEvent::Enable, "enabled")?;
                if now.secs_since(rec.state_changed_at) < COOLDOWN_SECS {
                    return Err(ServiceError::new(
                        ErrorKind::TooEarly,
                        "A key can be enabled 30 seconds after it was disabled; retry later",
                    ));
                }
                rec.state = next;
                rec.state_changed_at = now;
                Ok(MutateOutcome::Update(()))
            },
        )
        .await
    }

    /// Deletes a key (state 5): restorable for 30 days, purgeable after 4 hours. Keys with
    /// registrations need `force`; a `preventKeyDeletion` registration blocks even that.
    pub async fn delete(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        force: bool,
    ) -> Result<crate::KeyMetadata> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.check_registrations_allow_delete(ctx, id, force)
                .await?;
            let by = ctx.principal.subject.clone();
            self.mutate(ctx, id, move |rec, now| {
                let next = transition(rec, now, LifecycleEvent::Delete, "deleted")?;
                crate::policies::check_dual_auth_delete(rec, &by, now)?;
                rec.state = next;
                rec.state_changed_at = now;
                rec.deleted_at = Some(now);
                rec.deleted_by = Some(by);
                rec.deletion_auth = None;
                Ok(MutateOutcome::Update(as_written(rec, now)))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsDelete,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }

    /// Restores a deleted key: at least 30 seconds and at most 30 days after deletion, and
    /// only if it has not expired.
    pub async fn restore(&self, ctx: &Ctx, id_or_alias: &str) -> Result<crate::KeyMetadata> {
        self.change_key(ctx, Action::SecretsRestore, Role::Manager, id_or_alias, |rec, now| {
            let deleted = deleted_at(rec, "restored")?;
            if now.secs_since(deleted) < COOLDOWN_SECS {
                return Err(ServiceError::new(ErrorKind::TooEarly, "A key can be restored 30 seconds after it was deleted; retry later"));
            }
            if now.secs_since(deleted) > RESTORE_WITHIN_SECS {
                return Err(ServiceError::new(ErrorKind::RestoreExpired, "Key restoration has expired: keys can be restored within 30 days of deletion"));
            }
            if rec.expiration.is_some_and(|e| e <= now) {
                return Err(ServiceError::new(ErrorKind::KeyExpired, "The key has expired and cannot be restored"));
            }
            rec.state = KeyState::Destroyed.transition(LifecycleEvent::Restore { expired: false }).map_err(|_| {
                ServiceError::new(ErrorKind::InvalidKeyState, "key could not be restored")
            })?;
            rec.state_changed_at = now;
            rec.deleted_at = None;
            rec.deleted_by = None;
            Ok(MutateOutcome::Update(as_written(rec, now)))
        })
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }

    /// Purges a deleted key for good, at least 4 hours after deletion (KeyPurge role).
    pub async fn purge(&self, ctx: &Ctx, id_or_alias: &str) -> Result<crate::KeyMetadata> {
        self.change_key(
            ctx,
            Action::SecretsPurge,
            Role::KeyPurge,
            id_or_alias,
            |rec, now| {
                let deleted = deleted_at(rec, "purged")?;
                if now.secs_since(deleted) < PURGE_AFTER_SECS {
                    return Err(ServiceError::new(
                        ErrorKind::TooEarly,
                        "A deleted key can be purged 4 hours after deletion; retry later",
                    ));
                }
                Ok(MutateOutcome::Purge(rec.clone()))
            },
        )
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }
}

/// When a deleted key was deleted; a key in any other state cannot be `done` (restored,
/// purged).
fn deleted_at(rec: &KeyRecord, done: &str) -> Result<strongroom_model::UnixMillis> {
    if rec.state != KeyState::Destroyed {
        return Err(ServiceError::new(
            ErrorKind::InvalidKeyState,
            format!(
                "Key is in state {}: only deleted keys can be {done}",
                rec.state.code()
            ),
        ));
    }
    Ok(rec.deleted_at.unwrap_or(rec.state_changed_at))
}

/// Disable and enable act on root keys only.
fn require_root(rec: &KeyRecord) -> Result<()> {
    if rec.kind == KeyKind::Root {
        return Ok(());
    }
    Err(ServiceError::new(
        ErrorKind::RootKeyRequired,
        "Requested action can only be completed with a root key",
    ))
}

/// The record as the store will hold it once `rec` is written at `now`: the store bumps the
/// row version and stamps the update time, so a mutation that returns the key shows those.
fn as_written(rec: &KeyRecord, now: strongroom_model::UnixMillis) -> KeyRecord {
    let mut shown = rec.clone();
    shown.row_version += 1;
    shown.updated_at = now;
    shown
}
