//! Registrations (cloud resources that use a key, which can block its deletion), `sync`
//! and key-event acknowledgements.

use crate::action::Action;
use strongroom_keystore::{KeyRecord, Page, RegistrationRecord, StoreError};
use strongroom_model::{KeyId, KeyKind, KeyState, Role, UnixMillis, VersionId};

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::effective_state;
use crate::Service;

/// `sync` may run once per this many seconds per key.
pub const SYNC_EVERY_SECS: i64 = 3600;

/// How a registration write treats an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationWrite {
    /// POST: must not exist.
    Create,
    /// PUT: create or replace.
    Replace,
    /// PATCH: must exist; absent fields keep their values.
    Update,
}

/// Fields of a registration write.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    /// Forbid deleting the key.
    pub prevent_key_deletion: Option<bool>,
    /// Free text.
    pub description: Option<String>,
    /// Free text of the registering service.
    pub metadata: Option<String>,
    /// The key version used (default: the newest).
    pub key_version: Option<VersionId>,
}

/// A registration with its key's name, as listed.
#[derive(Debug, Clone)]
pub struct RegistrationView {
    /// The registration.
    pub record: RegistrationRecord,
    /// The key's name.
    pub key_name: String,
    /// Creation time of the registered key version.
    pub key_version_created_at: Option<UnixMillis>,
}

/// Matches a CRN against a query whose trailing segments may be `*`.
pub fn crn_matches(crn: &str, query: &str) -> bool {
    match query.find('*') {
        Some(i) => crn.starts_with(&query[..i]),
        None => crn == query,
    }
}

fn validate_crn(crn: &str) -> Result<()> {
    if !crn.starts_with("crn:")
        || crn.len() > 512
        || crn.split(':').count() < 8
        || crn.contains('*')
    {
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            "resourceCrn",
            "the resource CRN must be a full CRN (crn:v1:…) of at most 512 characters",
        ));
    }
    Ok(())
}

impl Service {
    async fn key_record(&self, ctx: &Ctx, id: KeyId) -> Result<KeyRecord> {
        self.store
            .get_key(ctx.instance, id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ServiceError::new(ErrorKind::KeyNotFound, "key does not exist")
                }
                other => other.into(),
            })
    }

    /// Lists registrations of one key (`key`) or of all keys, filtered by a CRN query
    /// (trailing `*` wildcard) and `preventKeyDeletion`; returns the page and the total.
    pub async fn list_registrations(
        &self,
        ctx: &Ctx,
        key: Option<&str>,
        crn_query: Option<&str>,
        prevent: Option<bool>,
        page: Page,
    ) -> Result<(Vec<RegistrationView>, usize)> {
        let op = async {
            let key_id = match key {
                Some(k) => Some(self.resolve(ctx, k).await?),
                None if ctx.principal.key_rings.is_some() => {
                    return Err(ServiceError::new(
                        ErrorKind::Forbidden,
                        "The user does not have access to the specified resource: the user's access is limited to key rings; list the registrations of one key",
                    ));
                }
                None => None,
            };
            if let Some(k) = key_id {
                self.key_record(ctx, k).await?;
            }
            let all: Vec<RegistrationRecord> = self
                .store
                .list_registrations(ctx.instance, key_id)
                .await?
                .into_iter()
                .filter(|r| crn_query.is_none_or(|q| crn_matches(&r.resource_crn, q)))
                .filter(|r| prevent.is_none_or(|p| r.prevent_deletion == p))
                .collect();
            let total = all.len();
            let mut out = Vec::new();
            for r in all
                .into_iter()
                .skip(page.offset as usize)
                .take(page.limit as usize)
            {
                let (key_name, at) = match self.store.get_key(ctx.instance, r.key).await {
                    Ok(k) => {
                        let at = self
                            .store
                            .key_versions(ctx.instance, r.key)
                            .await
                            .ok()
                            .and_then(|vs| {
                                vs.into_iter()
                                    .find(|v| v.id == r.key_version)
                                    .map(|v| v.created_at)
                            });
                        (k.name, at)
                    }
                    Err(_) => (String::new(), None),
                };
                out.push(RegistrationView {
                    record: r,
                    key_name,
                    key_version_created_at: at,
                });
            }
            Ok((out, total))
        };
        self.audited(ctx, Action::RegistrationsList, Role::Reader, key, op)
            .await
    }

    /// Creates, replaces or updates a registration of `key` for `crn`.
    pub async fn write_registration(
        &self,
        ctx: &Ctx,
        key: &str,
        crn: &str,
        input: RegistrationInput,
        mode: RegistrationWrite,
    ) -> Result<RegistrationRecord> {
        let op = async {
            validate_crn(crn)?;
            if let Some(d) = &input.description {
                crate::text::check_display_text(
                    "description",
                    d,
                    crate::keys::MAX_DESCRIPTION,
                    false,
                )?;
            }
            let id = self.resolve(ctx, key).await?;
            let rec = self.key_record(ctx, id).await?;
            if rec.kind != KeyKind::Root {
                return Err(ServiceError::new(
                    ErrorKind::RegistrationRootRequired,
                    "Requested action can only be completed with a root key",
                ));
            }
            if effective_state(&rec, self.clock.now()) != KeyState::Active {
                return Err(ServiceError::new(
                    ErrorKind::RegistrationKeyInvalidState,
                    "Key is not in a valid state: registrations need an active key",
                ));
            }
            let existing = self
                .store
                .list_registrations(ctx.instance, Some(id))
                .await?
                .into_iter()
                .find(|r| r.resource_crn == crn);
            match (mode, &existing) {
                (RegistrationWrite::Create, Some(_)) => {
                    return Err(ServiceError::new(
                        ErrorKind::AlreadyExists,
                        "a registration for this resource CRN already exists on the key",
                    ));
                }
                (RegistrationWrite::Update, None) => {
                    return Err(ServiceError::new(
                        ErrorKind::RegistrationNotFound,
                        "the key has no registration for this resource CRN",
                    ));
                }
                _ => {}
            }
            let version = match input.key_version {
                Some(v) => {
                    let versions = self.store.key_versions(ctx.instance, id).await?;
                    let pos = versions.iter().position(|x| x.id == v).ok_or_else(|| {
                        ServiceError::field(
                            ErrorKind::KeyVersionInvalid,
                            "keyVersionId",
                            "keyVersionId is not a version of this key",
                        )
                    })?;
                    // A registration may only move to the same or a newer version.
                    if let Some(old) = existing
                        .as_ref()
                        .and_then(|e| versions.iter().position(|x| x.id == e.key_version))
                    {
                        if pos > old {
                            return Err(ServiceError::field(
                                ErrorKind::KeyVersionInvalid,
                                "keyVersionId",
                                "a registration cannot move to an older key version",
                            ));
                        }
                    }
                    v
                }
                None => existing
                    .as_ref()
                    .map_or(rec.current_version, |e| e.key_version),
            };
            let now = self.clock.now();
            let by = ctx.principal.subject.clone();
            let keep = mode == RegistrationWrite::Update;
            let reg = RegistrationRecord {
                key: id,
                resource_crn: crn.to_string(),
                description: input.description.or_else(|| {
                    if keep {
                        existing.as_ref().and_then(|e| e.description.clone())
                    } else {
                        None
                    }
                }),
                metadata: input.metadata.or_else(|| {
                    if keep {
                        existing.as_ref().and_then(|e| e.metadata.clone())
                    } else {
                        None
                    }
                }),
                prevent_deletion: input
                    .prevent_key_deletion
                    .unwrap_or(keep && existing.as_ref().is_some_and(|e| e.prevent_deletion)),
                key_version: version,
                created_at: existing.as_ref().map_or(now, |e| e.created_at),
                created_by: existing
                    .as_ref()
                    .map_or_else(|| by.clone(), |e| e.created_by.clone()),
                updated_at: now,
                updated_by: by,
            };
            self.store.put_registration(ctx.instance, &reg).await?;
            Ok(reg)
        };
        let action = match mode {
            RegistrationWrite::Create => Action::RegistrationsCreate,
            RegistrationWrite::Replace => Action::RegistrationsReplace,
            RegistrationWrite::Update => Action::RegistrationsUpdate,
        };
        self.audited(ctx, action, Role::Manager, Some(key), op)
            .await
    }

    /// Deletes a registration.
    pub async fn delete_registration(&self, ctx: &Ctx, key: &str, crn: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, key).await?;
            self.store
                .delete_registration(ctx.instance, id, crn)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => ServiceError::new(
                        ErrorKind::RegistrationNotFound,
                        "the key has no registration for this resource CRN",
                    ),
                    other => other.into(),
                })
        };
        self.audited(
            ctx,
            Action::RegistrationsDelete,
            Role::Manager,
            Some(key),
            op,
        )
        .await
    }

    /// Refuses deletion of a key that registrations protect.
    pub(crate) async fn check_registrations_allow_delete(
        &self,
        ctx: &Ctx,
        id: KeyId,
        force: bool,
    ) -> Result<()> {
        let regs = self
            .store
            .list_registrations(ctx.instance, Some(id))
            .await?;
        if let Some(r) = regs.iter().find(|r| r.prevent_deletion) {
            return Err(ServiceError::new(
                ErrorKind::PreventKeyDeletion,
                format!("Key could not be deleted: the resource {} forbids deleting this key (preventKeyDeletion); delete that resource first", r.resource_crn),
            ));
        }
        if !regs.is_empty() && !force {
            let crns: Vec<&str> = regs.iter().map(|r| r.resource_crn.as_str()).collect();
            return Err(ServiceError::new(
                ErrorKind::ProtectedResource,
                format!("Key is protecting one or more cloud resources ({}); delete with force=true to delete it anyway", crns.join(", ")),
            ));
        }
        Ok(())
    }

    /// Asks integrated services to re-read the key's state (at most once per hour).
    pub async fn sync_key(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, key).await?;
            let now = self.clock.now();
            self.store
                .mark_synced(ctx.instance, id, now, now.plus_secs(-SYNC_EVERY_SECS))
                .await
                .map_err(|e| match e {
                    StoreError::Conflict => ServiceError::new(
                        ErrorKind::TooEarly,
                        "A key can be synced once per hour; retry later",
                    ),
                    StoreError::NotFound => {
                        ServiceError::new(ErrorKind::KeyNotFound, "key does not exist")
                    }
                    other => other.into(),
                })
        };
        self.audited(ctx, Action::SecretsSync, Role::Manager, Some(key), op)
            .await
    }

    /// Records a key-event acknowledgement from an integrated service (audited; no state).
    pub async fn acknowledge_event(
        &self,
        ctx: &Ctx,
        event_id: &str,
        key_version: Option<&str>,
    ) -> Result<()> {
        let op = async {
            if event_id.is_empty() || event_id.len() > 128 {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "eventId",
                    "eventId must be 1 to 128 characters",
                ));
            }
            if let Some(v) = key_version {
                v.parse::<VersionId>().map_err(|_| {
                    ServiceError::field(
                        ErrorKind::InvalidField,
                        "keyStateData.keyVersion",
                        "keyVersion must be a key version id",
                    )
                })?;
            }
            Ok(())
        };
        self.audited(
            ctx,
            Action::SecretsEventAck,
            Role::Writer,
            Some(event_id),
            op,
        )
        .await
    }
}
