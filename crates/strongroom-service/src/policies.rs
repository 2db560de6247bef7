//! Per-key policies: rotation (with the scheduler that applies it) and dual authorization
//! delete (`setKeyForDeletion` / `unsetKeyForDeletion`).

use crate::action::Action;
use strongroom_keystore::{DeletionAuthorization, DualAuthPolicy, KeyRecord, RotationPolicy};
use strongroom_model::{KeyKind, KeyState, Role, UnixMillis};

use crate::audit::AuditEvent;
use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::effective_state;
use crate::mutation::MutateOutcome;
use crate::Service;

/// A deletion authorization stays valid this long (7 days).
pub const DELETION_AUTH_SECS: i64 = 7 * 86_400;
/// One rotation-policy month, in seconds (30 days).
pub const POLICY_MONTH_SECS: i64 = 30 * 86_400;

/// A key's policies as callers see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicies {
    /// Rotation policy, if set.
    pub rotation: Option<RotationPolicy>,
    /// Dual authorization delete policy, if set.
    pub dual_auth: Option<DualAuthPolicy>,
}

/// A requested change of the rotation policy. `None` fields keep the stored value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationChange {
    /// Turn automatic rotation on or off.
    pub enabled: Option<bool>,
    /// Interval in months (1–12).
    pub interval_month: Option<i64>,
}

fn not_dual_auth() -> ServiceError {
    ServiceError::new(
        ErrorKind::NotDualAuth,
        "The key is not dual auth enabled: it has no dual authorization delete policy",
    )
}

/// Deleting a dual-auth key needs a still-valid authorization from another user.
pub(crate) fn check_dual_auth_delete(
    rec: &KeyRecord,
    deleter: &str,
    now: UnixMillis,
) -> Result<()> {
    if !rec.dual_auth.as_ref().is_some_and(|d| d.enabled) {
        return Ok(());
    }
    match &rec.deletion_auth {
        Some(a) if a.by != deleter && now.secs_since(a.at) <= DELETION_AUTH_SECS => Ok(()),
        Some(a) if a.by == deleter => Err(ServiceError::new(
            ErrorKind::AuthorizationsNotMet,
            "1 prior authorization(s) are required for deletion: the key was set for deletion by the same user; another user must delete it",
        )),
        _ => Err(ServiceError::new(
            ErrorKind::AuthorizationsNotMet,
            "1 prior authorization(s) are required for deletion: another user must call setKeyForDeletion first (valid for 7 days)",
        )),
    }
}

/// When a key with `policy` is next due for rotation.
pub fn rotation_due_at(rec: &KeyRecord, policy: &RotationPolicy) -> UnixMillis {
    rec.last_rotated_at
        .unwrap_or(rec.created_at)
        .plus_secs(i64::from(policy.interval_month) * POLICY_MONTH_SECS)
}

impl Service {
    /// Reads a key's policies.
    pub async fn get_key_policies(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
    ) -> Result<(strongroom_model::KeyId, KeyPolicies)> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let rec = self
                .store
                .get_key(ctx.instance, id)
                .await
                .map_err(|e| match e {
                    strongroom_keystore::StoreError::NotFound => {
                        ServiceError::new(ErrorKind::KeyNotFound, "key does not exist")
                    }
                    other => other.into(),
                })?;
            Ok((
                id,
                KeyPolicies {
                    rotation: rec.rotation,
                    dual_auth: rec.dual_auth,
                },
            ))
        };
        self.audited(
            ctx,
            Action::PoliciesRead,
            Role::Reader,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Sets a key's policies. A rotation change without `interval_month` keeps the stored
    /// interval; dual authorization, once enabled, cannot be disabled.
    pub async fn put_key_policies(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        rotation: Option<RotationChange>,
        dual_auth: Option<bool>,
    ) -> Result<(strongroom_model::KeyId, KeyPolicies)> {
        let op = async {
            if rotation.is_none() && dual_auth.is_none() {
                return Err(ServiceError::new(
                    ErrorKind::BadBody,
                    "Invalid body data was passed: give a rotation and/or a dualAuthDelete policy",
                ));
            }
            let id = self.resolve(ctx, id_or_alias).await?;
            let by = ctx.principal.subject.clone();
            self.mutate(ctx, id, move |rec, now| {
                if effective_state(rec, now) == KeyState::Destroyed {
                    return Err(ServiceError::new(ErrorKind::InvalidKeyState, "Key is deleted: its policies cannot be changed"));
                }
                if let Some(change) = rotation {
                    if rec.kind != KeyKind::Root {
                        return Err(ServiceError::new(ErrorKind::RootKeyRequired, "Rotation policies apply to root keys only"));
                    }
                    let interval = match (change.interval_month, &rec.rotation) {
                        (Some(m), _) => m,
                        (None, Some(p)) => i64::from(p.interval_month),
                        (None, None) => {
                            return Err(ServiceError::field(ErrorKind::InvalidField, "interval_month", "interval_month is required for a new rotation policy (1 to 12)"));
                        }
                    };
                    let interval = u8::try_from(interval).ok().filter(|m| (1..=12).contains(m)).ok_or_else(|| {
                        ServiceError::field(ErrorKind::InvalidField, "interval_month", "interval_month must be between 1 to 12")
                    })?;
                    let enabled = change.enabled.unwrap_or(true);
                    if enabled && rec.imported {
                        return Err(ServiceError::field(ErrorKind::InvalidField, "rotation", "Automatic rotation is not available for imported keys: rotate them with a new payload"));
                    }
                    rec.rotation = Some(RotationPolicy { enabled, interval_month: interval, updated_at: now, updated_by: by.clone() });
                }
                if let Some(enabled) = dual_auth {
                    let was = rec.dual_auth.as_ref().is_some_and(|d| d.enabled);
                    if was && !enabled {
                        return Err(ServiceError::field(ErrorKind::InvalidField, "dualAuthDelete", "dual authorization delete cannot be disabled once enabled on a key"));
                    }
                    rec.dual_auth = Some(DualAuthPolicy { enabled, updated_at: now, updated_by: by.clone() });
                }
                Ok(MutateOutcome::Update(KeyPolicies { rotation: rec.rotation.clone(), dual_auth: rec.dual_auth.clone() }))
            })
            .await
            .map(|p| (id, p))
        };
        self.audited(
            ctx,
            Action::PoliciesWrite,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// First authorization to delete a dual-auth key (valid for 7 days).
    pub async fn set_key_for_deletion(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let by = ctx.principal.subject.clone();
            self.mutate(ctx, id, move |rec, now| {
                if !rec.dual_auth.as_ref().is_some_and(|d| d.enabled) {
                    return Err(not_dual_auth());
                }
                if rec.state == KeyState::Destroyed {
                    return Err(ServiceError::new(
                        ErrorKind::KeyDeleted,
                        "Key has already been deleted",
                    ));
                }
                rec.deletion_auth = Some(DeletionAuthorization { by, at: now });
                Ok(MutateOutcome::Update(()))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsSetKeyForDeletion,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Withdraws a deletion authorization.
    pub async fn unset_key_for_deletion(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, move |rec, _now| {
                if !rec.dual_auth.as_ref().is_some_and(|d| d.enabled) {
                    return Err(not_dual_auth());
                }
                rec.deletion_auth = None;
                Ok(MutateOutcome::Update(()))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsUnsetKeyForDeletion,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Rotates every key whose enabled rotation policy is due, across all instances; each
    /// rotation is audited with the principal `scheduler`. Returns the number rotated.
    /// Runs on a timer in the server; tests call it after moving the clock.
    pub async fn rotate_due_keys(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut rotated = 0;
        for rec in self.store.keys_with_rotation_policy().await? {
            let Some(policy) = rec.rotation.as_ref().filter(|p| p.enabled) else {
                continue;
            };
            if rec.imported
                || effective_state(&rec, now) != KeyState::Active
                || rotation_due_at(&rec, policy) > now
            {
                continue;
            }
            let result = self.rotate_in(rec.instance, rec.id, None).await;
            let outcome = crate::audit::Outcome::of(&result);
            if let Err(e) = &result {
                tracing::warn!(instance = %rec.instance, key = %rec.id, error = %e, "scheduled rotation failed");
            } else {
                rotated += 1;
            }
            self.audit
                .record(
                    AuditEvent {
                        instance: Some(rec.instance),
                        principal: "scheduler".into(),
                        action: Action::SecretsRotate,
                        key: Some(rec.id.to_string()),
                        outcome,
                        correlation_id: format!("rotation-policy-{}", now.0),
                    },
                    true,
                )
                .await?;
        }
        Ok(rotated)
    }
}

impl Service {
    /// Moves keys whose expiration date has passed to state 3 (Deactivated), recording each
    /// as `kms.secrets.expire` by the `scheduler`. Reads already show them as deactivated;
    /// this makes lists, filters and counts agree. Returns the number changed.
    pub async fn deactivate_expired_keys(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut changed = 0;
        for rec in self.store.keys_expired_by(now).await? {
            let result = self
                .mutate_in(rec.instance, rec.id, |r, now| {
                    if !matches!(r.state, KeyState::Active | KeyState::Suspended)
                        || r.expiration.is_none_or(|e| e > now)
                    {
                        return Err(ServiceError::new(
                            ErrorKind::Conflict,
                            "key changed meanwhile",
                        ));
                    }
                    r.state = KeyState::Deactivated;
                    r.state_changed_at = now;
                    Ok(MutateOutcome::Update(()))
                })
                .await;
            if result.is_ok() {
                changed += 1;
                self.audit
                    .record(
                        AuditEvent {
                            instance: Some(rec.instance),
                            principal: "scheduler".into(),
                            action: Action::SecretsExpire,
                            key: Some(rec.id.to_string()),
                            outcome: crate::audit::Outcome::Success,
                            correlation_id: format!("expiration-{}", now.0),
                        },
                        true,
                    )
                    .await?;
            }
        }
        Ok(changed)
    }
}

impl Service {
    /// Purges every deleted key whose `purgeScheduledOn` (deletion + 90 days) has come,
    /// across all instances: its sealed versions, aliases and registrations leave the
    /// keystore, and every node drops it from its cache (the purge is a key change on the
    /// feed). Each purge is audited as `kms.secrets.purge` by the `scheduler`. Returns the
    /// number purged.
    pub async fn purge_due_keys(&self) -> Result<usize> {
        let now = self.clock.now();
        let cutoff = UnixMillis(now.0 - crate::keys::AUTO_PURGE_SECS * 1000);
        let mut purged = 0;
        for rec in self.store.keys_deleted_by(cutoff).await? {
            let result = self
                .mutate_in(rec.instance, rec.id, |r, now| {
                    let deleted = r.deleted_at.unwrap_or(r.state_changed_at);
                    if r.state != KeyState::Destroyed
                        || now.secs_since(deleted) < crate::keys::AUTO_PURGE_SECS
                    {
                        return Err(ServiceError::new(
                            ErrorKind::Conflict,
                            "key changed meanwhile",
                        ));
                    }
                    Ok(MutateOutcome::Purge(()))
                })
                .await;
            match result {
                Ok(()) => {
                    purged += 1;
                    self.audit
                        .record(
                            AuditEvent {
                                instance: Some(rec.instance),
                                principal: "scheduler".into(),
                                action: Action::SecretsPurge,
                                key: Some(rec.id.to_string()),
                                outcome: crate::audit::Outcome::Success,
                                correlation_id: format!("purge-{}", now.0),
                            },
                            true,
                        )
                        .await?;
                }
                Err(e) if e.kind == ErrorKind::Conflict => {}
                Err(e) => {
                    tracing::warn!(instance = %rec.instance, key = %rec.id, error = %e, "scheduled purge failed; retried on the next run")
                }
            }
        }
        Ok(purged)
    }
}
