//! Key rings and aliases: grouping keys within an instance, and naming them.

use crate::action::Action;
use strongroom_keystore::{KeyRingRecord, StoreError};
use strongroom_model::Role;

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::keys::MAX_ALIASES;
use crate::mutation::MutateOutcome;
use crate::{KeyRing, Service};

/// The ring every instance has and new keys land in.
pub const DEFAULT_RING: &str = "default";
/// Key rings per instance, besides `default`.
pub const MAX_KEY_RINGS: usize = 50;

fn ring_not_found(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorKind::KeyRingNotFound,
        format!("key ring '{id}' does not exist"),
    )
}

fn validate_ring_id(id: &str) -> Result<()> {
    if id.len() < 2 || id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ServiceError::field(
            ErrorKind::InvalidField,
            "key_ring_id",
            "a key ring id must be 2 to 100 characters of A-Z, a-z, 0-9 and '-'",
        ));
    }
    Ok(())
}

impl Service {
    /// Fails unless `ring` exists in the caller's instance.
    pub(crate) async fn require_ring(&self, ctx: &Ctx, ring: &str) -> Result<()> {
        if ring == DEFAULT_RING
            || self
                .store
                .list_key_rings(ctx.instance)
                .await?
                .iter()
                .any(|r| r.id == ring)
        {
            Ok(())
        } else {
            Err(ring_not_found(ring))
        }
    }

    /// Lists key rings, `default` first.
    pub async fn list_key_rings(&self, ctx: &Ctx) -> Result<Vec<KeyRing>> {
        let op = async {
            let mut rings = vec![KeyRing {
                id: DEFAULT_RING.into(),
                created: None,
            }];
            let stored = self.store.list_key_rings(ctx.instance).await?;
            rings.extend(stored.into_iter().map(KeyRing::from));
            // A caller limited to key rings sees only its own.
            if let Some(mine) = &ctx.principal.key_rings {
                rings.retain(|r| mine.contains(&r.id));
            }
            Ok(rings)
        };
        self.audited(ctx, Action::KeyRingsList, Role::Reader, None, op)
            .await
    }

    /// Creates a key ring (at most 50 per instance).
    pub async fn create_key_ring(&self, ctx: &Ctx, id: &str) -> Result<KeyRing> {
        let op = async {
            validate_ring_id(id)?;
            if id == DEFAULT_RING {
                return Err(ServiceError::new(
                    ErrorKind::AlreadyExists,
                    "the 'default' key ring always exists",
                ));
            }
            if self.store.list_key_rings(ctx.instance).await?.len() >= MAX_KEY_RINGS {
                return Err(ServiceError::new(
                    ErrorKind::LimitReached,
                    format!(
                        "an instance can have at most {MAX_KEY_RINGS} key rings besides 'default'"
                    ),
                ));
            }
            let rec = KeyRingRecord {
                id: id.to_string(),
                created_at: self.clock.now(),
                created_by: ctx.principal.subject.clone(),
            };
            self.store
                .create_key_ring(ctx.instance, &rec)
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists(_) => ServiceError::new(
                        ErrorKind::AlreadyExists,
                        format!("key ring '{id}' already exists"),
                    ),
                    other => other.into(),
                })?;
            Ok(KeyRing::from(rec))
        };
        self.audited(ctx, Action::KeyRingsCreate, Role::Manager, Some(id), op)
            .await
    }

    /// Deletes a key ring: refused while it holds keys; with `force`, destroyed keys move to
    /// `default` and only keys in other states block the deletion.
    pub async fn delete_key_ring(&self, ctx: &Ctx, id: &str, force: bool) -> Result<()> {
        let op = async {
            if id == DEFAULT_RING {
                return Err(ServiceError::new(
                    ErrorKind::InvalidField,
                    "the 'default' key ring cannot be deleted",
                ));
            }
            self.store
                .delete_key_ring(ctx.instance, id, force)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => ring_not_found(id),
                    other => other.into(),
                })?;
            self.cache.remove_instance(ctx.instance);
            Ok(())
        };
        self.audited(ctx, Action::KeyRingsDelete, Role::Manager, Some(id), op)
            .await
    }

    /// Moves a key to another ring (`PATCH /keys/{id}`). `current` (the request's
    /// `X-Kms-Key-Ring`), when given, must be the key's ring.
    pub async fn move_key(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        current: Option<&str>,
        target: &str,
    ) -> Result<crate::KeyMetadata> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.require_key_ring(ctx, target)?;
            self.require_ring(ctx, target).await?;
            let current = current.map(String::from);
            let target = target.to_string();
            self.mutate(ctx, id, move |rec, now| {
                if let Some(c) = &current {
                    if *c != rec.key_ring {
                        return Err(ServiceError::field(
                            ErrorKind::InvalidField,
                            "X-Kms-Key-Ring",
                            format!("the key is in key ring '{}', not '{c}'", rec.key_ring),
                        ));
                    }
                }
                rec.key_ring = target;
                let mut shown = rec.clone();
                shown.row_version += 1;
                shown.updated_at = now;
                Ok(MutateOutcome::Update(shown))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsPatch,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }

    /// Adds an alias to a key (at most 5 per key, unique in the instance).
    pub async fn create_key_alias(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        alias: &str,
    ) -> Result<(strongroom_model::KeyId, strongroom_model::UnixMillis)> {
        let op = async {
            crate::keys::validate_alias(alias)?;
            let id = self.resolve(ctx, id_or_alias).await?;
            let alias = alias.to_string();
            self.mutate(ctx, id, move |rec, now| {
                if rec.aliases.contains(&alias) {
                    return Err(ServiceError::field(
                        ErrorKind::AliasTaken,
                        "alias",
                        format!("the key already has the alias '{alias}'"),
                    ));
                }
                if rec.aliases.len() >= MAX_ALIASES {
                    return Err(ServiceError::new(
                        ErrorKind::LimitReached,
                        format!("a key can have at most {MAX_ALIASES} aliases"),
                    ));
                }
                rec.aliases.push(alias.clone());
                Ok(MutateOutcome::AddAlias(alias, (rec.id, now)))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsCreateAlias,
            Role::Writer,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Removes an alias from a key; the alias can be reused at once.
    pub async fn delete_key_alias(&self, ctx: &Ctx, id_or_alias: &str, alias: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let alias = alias.to_string();
            self.mutate(ctx, id, move |rec, _now| {
                if !rec.aliases.contains(&alias) {
                    return Err(ServiceError::new(
                        ErrorKind::KeyNotFound,
                        format!("the key has no alias '{alias}'"),
                    ));
                }
                rec.aliases.retain(|a| *a != alias);
                Ok(MutateOutcome::RemoveAlias(alias, ()))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsDeleteAlias,
            Role::Writer,
            Some(id_or_alias),
            op,
        )
        .await
    }
}
