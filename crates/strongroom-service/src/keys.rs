//! Keys: create and import, read, list, versions. Changes of a key go through `mutation.rs`;
//! the lifecycle and rotation are in `lifecycle.rs`, envelope encryption in `wrapping.rs`.

use crate::action::Action;
use std::sync::Arc;

use strongroom_engine::{BlobBinding, EngineError, KeyMaterial};
use strongroom_keystore::{KeyFilter, KeyRecord, KeyVersionRecord, Page, StoreError};
use strongroom_model::{
    KeyId, KeyKind, KeyState, LifecycleEvent, Role, TransitionError, UnixMillis, VersionId,
};
use zeroize::Zeroizing;

use crate::auth::Ctx;
use crate::cache::{CachedKey, CachedVersion, Material};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// Cool-down after disable before enable, and after delete before restore.
pub const COOLDOWN_SECS: i64 = 30;
/// A deleted key can be purged after this many seconds (4 hours).
pub const PURGE_AFTER_SECS: i64 = 4 * 3600;
/// A deleted key can be restored within this many seconds (30 days).
pub const RESTORE_WITHIN_SECS: i64 = 30 * 86_400;
/// Deleted keys are purged automatically after this many seconds (90 days).
pub const AUTO_PURGE_SECS: i64 = 90 * 86_400;
/// A key can be rotated at most once per this many seconds (1 hour).
pub const ROTATE_EVERY_SECS: i64 = 3600;
/// Largest standard key payload, and largest plaintext accepted by wrap.
pub const MAX_PAYLOAD: usize = 7500;
/// Size of a generated DEK and of a generated key.
pub const GENERATED_LEN: usize = 32;
/// Limits on names and descriptions.
pub const MAX_NAME: usize = 90;
/// Maximum description length.
pub const MAX_DESCRIPTION: usize = 240;
/// Maximum aliases per key.
pub const MAX_ALIASES: usize = 5;
/// Maximum length of one AAD string, and number of AAD strings.
pub const MAX_AAD_LEN: usize = 255;
/// Maximum number of AAD strings.
pub const MAX_AAD_COUNT: usize = 32;

pub(crate) const RESERVED_ALIASES: [&str; 17] = [
    "allowed_ip",
    "key",
    "keys",
    "metadata",
    "policy",
    "policies",
    "registration",
    "registrations",
    "ring",
    "rings",
    "rotate",
    "wrap",
    "unwrap",
    "rewrap",
    "version",
    "versions",
    "default",
];

/// A request to create or import a key.
pub struct CreateKey {
    /// Name (1–90 characters).
    pub name: String,
    /// Optional description (≤ 240 characters).
    pub description: Option<String>,
    /// Up to 5 aliases.
    pub aliases: Vec<String>,
    /// Root or standard.
    pub kind: KeyKind,
    /// Imported material; generated when `None`.
    pub payload: Option<Zeroizing<Vec<u8>>>,
    /// Optional expiration (must be in the future).
    pub expiration: Option<UnixMillis>,
    /// Key ring (`default` when `None`); it must exist.
    pub key_ring: Option<String>,
    /// Secure import: `payload` is encrypted to the instance's import token.
    pub secure: Option<crate::SecureImport>,
    /// Per-key policies that override the instance's (`keys_with_policy_overrides`).
    pub overrides: Option<crate::PolicyOverrides>,
}

/// A key as shown to a caller: metadata with its effective state, plus the material of a
/// standard key when it was asked for.
pub struct KeyView {
    /// Metadata; `state` is the effective state (expired keys show Deactivated).
    pub record: crate::KeyMetadata,
    /// Standard key material (only from `get_key`).
    pub payload: Option<Zeroizing<Vec<u8>>>,
}

/// A key version as shown to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionInfo {
    /// Version id.
    pub id: VersionId,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// Result of `wrap`.
pub struct Wrapped {
    /// The generated DEK, when the caller did not send one.
    pub generated: Option<Zeroizing<Vec<u8>>>,
    /// The WDEK bytes (adapters base64-encode them).
    pub ciphertext: Vec<u8>,
    /// The version that wrapped it (the newest).
    pub key_version: VersionInfo,
}

/// Result of `unwrap`.
pub struct Unwrapped {
    /// The DEK.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The version the ciphertext was made with.
    pub key_version: VersionInfo,
    /// When that version is not the newest: the DEK re-wrapped with the newest version.
    pub rewrapped: Option<(Vec<u8>, VersionInfo)>,
}

/// Result of `rewrap`.
pub struct Rewrapped {
    /// The WDEK under the newest version.
    pub ciphertext: Vec<u8>,
    /// The version the input ciphertext was made with.
    pub key_version: VersionInfo,
    /// The newest version, which made `ciphertext`.
    pub rewrapped_key_version: VersionInfo,
}

pub(crate) fn invalid(field: &'static str, msg: impl Into<String>) -> ServiceError {
    ServiceError::field(ErrorKind::InvalidField, field, msg)
}

pub(crate) fn key_not_found() -> ServiceError {
    ServiceError::new(ErrorKind::KeyNotFound, "key does not exist")
}

pub(crate) fn bad_ciphertext() -> ServiceError {
    invalid("ciphertext", "The field 'ciphertext' must be: the original base64 encoded ciphertext from the wrap operation (also check that the aad matches)")
}

pub(crate) fn engine_err(e: EngineError) -> ServiceError {
    match e {
        EngineError::NotInitialized => {
            ServiceError::new(ErrorKind::UnitNotInitialized, "crypto unit not initialized")
        }
        EngineError::WrongMasterKey { blob } => {
            tracing::error!(%blob, "key blob sealed under a master key this unit does not hold");
            ServiceError::new(
                ErrorKind::UnitNotInitialized,
                "key material is sealed under a master key the crypto unit does not hold",
            )
        }
        other => {
            tracing::error!(error = %other, "crypto unit failure");
            ServiceError::new(ErrorKind::Internal, "crypto unit failure")
        }
    }
}

/// The state callers see: a passed expiration date deactivates Active and Suspended keys.
pub fn effective_state(rec: &KeyRecord, now: UnixMillis) -> KeyState {
    match (rec.state, rec.expiration) {
        (KeyState::Active | KeyState::Suspended, Some(exp)) if exp <= now => KeyState::Deactivated,
        (s, _) => s,
    }
}

pub(crate) fn validate_alias(a: &str) -> Result<()> {
    let ok_chars = a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if a.len() < 2 || a.len() > MAX_NAME || !ok_chars {
        return Err(invalid(
            "aliases",
            format!("alias '{a}' must be 2 to 90 characters of A-Z, a-z, 0-9, '-' and '_'"),
        ));
    }
    if uuid::Uuid::parse_str(a).is_ok() {
        return Err(invalid(
            "aliases",
            format!("alias '{a}' must not be a UUID"),
        ));
    }
    if RESERVED_ALIASES.contains(&a.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            "aliases",
            format!("alias '{a}' is a reserved word"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_aad(aad: &[String]) -> Result<()> {
    if aad.len() > MAX_AAD_COUNT {
        return Err(invalid(
            "aad",
            format!("at most {MAX_AAD_COUNT} aad strings are accepted"),
        ));
    }
    if aad.iter().any(|s| s.len() > MAX_AAD_LEN) {
        return Err(invalid(
            "aad",
            format!("each aad string must be at most {MAX_AAD_LEN} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn transition(
    rec: &KeyRecord,
    now: UnixMillis,
    ev: LifecycleEvent,
    verb: &str,
) -> Result<KeyState> {
    effective_state(rec, now)
        .transition(ev)
        .map_err(|e| match e {
            TransitionError::AlreadyDeleted => {
                ServiceError::new(ErrorKind::KeyDeleted, "Key has already been deleted")
            }
            TransitionError::NotAllowed { from, .. } => ServiceError::new(
                ErrorKind::InvalidKeyState,
                format!(
                    "Key is in state {} ({from:?}): key could not be {verb}",
                    from.code()
                ),
            ),
        })
}

impl Service {
    /// Resolves an id or alias to a key id within the caller's instance.
    /// A caller limited to key rings resolves only keys of its rings.
    pub(crate) async fn resolve(&self, ctx: &Ctx, id_or_alias: &str) -> Result<KeyId> {
        let id = if let Ok(id) = id_or_alias.parse::<KeyId>() {
            id
        } else if uuid::Uuid::parse_str(id_or_alias).is_ok() || id_or_alias.is_empty() {
            return Err(key_not_found());
        } else {
            match self.store.key_id_by_alias(ctx.instance, id_or_alias).await {
                Ok(id) => id,
                Err(StoreError::NotFound) => return Err(key_not_found()),
                Err(e) => return Err(e.into()),
            }
        };
        if ctx.principal.key_rings.is_some() {
            let ring = match self.cache.get(&(ctx.instance, id)) {
                Some(k) => k.record.key_ring.clone(),
                None => match self.store.get_key(ctx.instance, id).await {
                    Ok(r) => r.key_ring,
                    Err(StoreError::NotFound) => return Err(key_not_found()),
                    Err(e) => return Err(e.into()),
                },
            };
            self.require_key_ring(ctx, &ring)?;
        }
        Ok(id)
    }

    /// `filter`, narrowed to the caller's key rings.
    pub(crate) fn within_rings(&self, ctx: &Ctx, filter: &KeyFilter) -> Result<KeyFilter> {
        if let Some(ring) = &filter.key_ring {
            self.require_key_ring(ctx, ring)?;
        }
        Ok(KeyFilter {
            within_rings: ctx.principal.key_rings.clone(),
            ..filter.clone()
        })
    }

    /// Loads a key with its opened material, from the cache when possible.
    pub(crate) async fn load(&self, ctx: &Ctx, id: KeyId) -> Result<Arc<CachedKey>> {
        use std::sync::atomic::Ordering::Relaxed;
        let ck = (ctx.instance, id);
        if let Some(hit) = self.cache.get(&ck) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            return Ok(hit);
        }
        let _guard = self.cache.stripe(&ck).lock().await;
        if let Some(hit) = self.cache.get(&ck) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            return Ok(hit);
        }
        self.stats.cache_misses.fetch_add(1, Relaxed);
        let loaded = Arc::new(self.load_from_store(ctx, id).await?);
        self.cache.put(ck, Arc::clone(&loaded));
        Ok(loaded)
    }

    pub(crate) async fn load_from_store(&self, ctx: &Ctx, id: KeyId) -> Result<CachedKey> {
        let record = match self.store.get_key(ctx.instance, id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(key_not_found()),
            Err(e) => return Err(e.into()),
        };
        let mut versions = Vec::new();
        if record.state != KeyState::Destroyed {
            let unit = self.unit(ctx.instance)?;
            for v in self.store.key_versions(ctx.instance, id).await? {
                let binding = BlobBinding {
                    instance: ctx.instance,
                    key: id,
                    version: v.id,
                    kind: record.kind,
                    imported: record.imported,
                };
                let m = unit.open_blob(&binding, &v.blob).map_err(engine_err)?;
                let material = match record.kind {
                    KeyKind::Root => Material::Root(unit.wrapping_key(&m).map_err(engine_err)?),
                    KeyKind::Standard => Material::Standard(m),
                    KeyKind::TransportKey => {
                        return Err(ServiceError::new(
                            ErrorKind::Internal,
                            "stored key has an unexpected kind",
                        ));
                    }
                };
                versions.push(CachedVersion {
                    id: v.id,
                    created_at: v.created_at,
                    material,
                });
            }
        }
        Ok(CachedKey { record, versions })
    }

    /// What callers see of `rec`: its effective state (expired keys show Deactivated).
    pub(crate) fn view(&self, rec: &KeyRecord) -> crate::KeyMetadata {
        crate::KeyMetadata::of(rec, effective_state(rec, self.clock.now()))
    }

    /// Creates (generates or imports) a key.
    pub async fn create_key(&self, ctx: &Ctx, req: CreateKey) -> Result<KeyView> {
        self.audited(
            ctx,
            Action::SecretsCreate,
            Role::Writer,
            None,
            self.create_key_inner(ctx, req),
        )
        .await
    }

    pub(crate) async fn create_key_inner(&self, ctx: &Ctx, req: CreateKey) -> Result<KeyView> {
        let now = self.clock.now();
        let name = req.name.trim().to_string();
        crate::text::check_display_text("name", &name, MAX_NAME, true)?;
        if let Some(d) = &req.description {
            crate::text::check_display_text("description", d, MAX_DESCRIPTION, false)?;
        }
        if req.aliases.len() > MAX_ALIASES {
            return Err(invalid(
                "aliases",
                format!("a key can have at most {MAX_ALIASES} aliases"),
            ));
        }
        for (i, a) in req.aliases.iter().enumerate() {
            validate_alias(a)?;
            if req.aliases[..i].contains(a) {
                return Err(invalid("aliases", format!("alias '{a}' is given twice")));
            }
        }
        if let Some(exp) = req.expiration {
            if exp <= now {
                return Err(invalid(
                    "expirationDate",
                    "The field 'expirationDate' must be in the future",
                ));
            }
        }
        let key_ring = req
            .key_ring
            .clone()
            .unwrap_or_else(|| crate::DEFAULT_RING.to_string());
        self.require_key_ring(ctx, &key_ring)?;
        self.require_ring(ctx, &key_ring).await?;
        if req.kind == KeyKind::TransportKey {
            return Err(ServiceError::new(
                ErrorKind::BadBody,
                "only root and standard keys can be created",
            ));
        }
        let mut req = req;
        let was_secure = req.secure.is_some();
        if let Some(secure) = req.secure.take() {
            if req.kind != KeyKind::Root {
                return Err(invalid(
                    "encryptedNonce",
                    "secure import with an import token applies to root keys only",
                ));
            }
            let sealed = req
                .payload
                .take()
                .ok_or_else(|| invalid("payload", "secure import needs the encrypted 'payload'"))?;
            req.payload = Some(self.open_secure_import(ctx, &sealed, &secure).await?);
        }
        let imported = req.payload.is_some();
        let material = match (&req.payload, req.kind) {
            (Some(p), KeyKind::Root) if ![16, 24, 32].contains(&p.len()) => {
                return Err(invalid("payload", "The field 'payload' must be: a base64 encoded 128, 192 or 256 bit key for a root key"));
            }
            (Some(p), KeyKind::Standard) if p.is_empty() || p.len() > MAX_PAYLOAD => {
                return Err(invalid("payload", format!("The field 'payload' must be: 1 to {MAX_PAYLOAD} bytes of base64 encoded data")));
            }
            (Some(p), _) => KeyMaterial::from_slice(p),
            (None, _) => self
                .unit(ctx.instance)?
                .generate(GENERATED_LEN)
                .map_err(engine_err)?,
        };
        let unit = self.unit(ctx.instance)?;
        let id = KeyId::random();
        let version = VersionId::from(id);
        let binding = BlobBinding {
            instance: ctx.instance,
            key: id,
            version,
            kind: req.kind,
            imported,
        };
        let blob = unit.seal_blob(&binding, &material).map_err(engine_err)?;
        let (rotation, dual_auth) = self
            .apply_creation_policies(ctx, req.kind, imported, was_secure, req.overrides, now)
            .await?;
        let record = KeyRecord {
            instance: ctx.instance,
            id,
            name,
            description: req.description,
            aliases: req.aliases,
            kind: req.kind,
            imported,
            bits: u32::try_from(material.len() * 8).unwrap_or(u32::MAX),
            state: KeyState::Active,
            key_ring: key_ring.clone(),
            created_at: now,
            created_by: ctx.principal.subject.clone(),
            updated_at: now,
            state_changed_at: now,
            expiration: req.expiration,
            last_rotated_at: None,
            deleted_at: None,
            deleted_by: None,
            current_version: version,
            current_version_at: now,
            version_count: 1,
            row_version: 1,
            rotation,
            dual_auth,
            deletion_auth: None,
        };
        let first = KeyVersionRecord {
            id: version,
            seq: 0,
            created_at: now,
            blob,
        };
        match self.config.max_keys_per_instance {
            // Counted and inserted atomically by the keystore (across nodes on PostgreSQL).
            Some(max) => self.store.create_key_within(&record, &first, max).await?,
            None => self.store.create_key(&record, &first).await?,
        }
        let payload = match req.kind {
            KeyKind::Standard => Some(Zeroizing::new(material.expose().to_vec())),
            KeyKind::Root | KeyKind::TransportKey => None,
        };
        Ok(KeyView {
            record: crate::KeyMetadata::from(&record),
            payload,
        })
    }

    /// Reads a key; standard keys include their material.
    pub async fn get_key(&self, ctx: &Ctx, id_or_alias: &str) -> Result<KeyView> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let k = self.load(ctx, id).await?;
            let payload = match (k.record.kind, k.newest()) {
                (
                    KeyKind::Standard,
                    Some(CachedVersion {
                        material: Material::Standard(m),
                        ..
                    }),
                ) => Some(Zeroizing::new(m.expose().to_vec())),
                _ => None,
            };
            Ok(KeyView {
                record: self.view(&k.record),
                payload,
            })
        };
        self.audited(
            ctx,
            Action::SecretsRead,
            Role::ReaderPlus,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Reads a key's metadata (no material).
    pub async fn get_key_metadata(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
    ) -> Result<crate::KeyMetadata> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            match self.cache.get(&(ctx.instance, id)) {
                Some(k) => Ok(self.view(&k.record)),
                None => match self.store.get_key(ctx.instance, id).await {
                    Ok(r) => Ok(self.view(&r)),
                    Err(StoreError::NotFound) => Err(key_not_found()),
                    Err(e) => Err(e.into()),
                },
            }
        };
        self.audited(
            ctx,
            Action::SecretsReadMetadata,
            Role::Reader,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Lists keys (no material).
    pub async fn list_keys(
        &self,
        ctx: &Ctx,
        filter: &KeyFilter,
        page: Page,
    ) -> Result<Vec<crate::KeyMetadata>> {
        let op = async {
            let filter = self.within_rings(ctx, filter)?;
            let recs = self.store.list_keys(ctx.instance, &filter, page).await?;
            Ok(recs.iter().map(|r| self.view(r)).collect())
        };
        self.audited(ctx, Action::SecretsList, Role::Reader, None, op)
            .await
    }

    /// Counts keys (`HEAD /keys`).
    pub async fn count_keys(&self, ctx: &Ctx, filter: &KeyFilter) -> Result<u64> {
        let op = async {
            let filter = self.within_rings(ctx, filter)?;
            Ok(self.store.count_keys(ctx.instance, &filter).await?)
        };
        self.audited(ctx, Action::SecretsHead, Role::Reader, None, op)
            .await
    }

    /// Lists a key's versions, newest first, with the total count.
    pub async fn key_versions(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        page: Page,
        all_states: bool,
    ) -> Result<(Vec<VersionInfo>, u64)> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            let rec = match self.store.get_key(ctx.instance, id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Err(key_not_found()),
                Err(e) => return Err(e.into()),
            };
            let state = effective_state(&rec, self.clock.now());
            if state != KeyState::Active && !all_states {
                return Err(ServiceError::new(
                    ErrorKind::InvalidKeyState,
                    format!("Key is in state {}: pass allKeyStates=true to list the versions of a key that is not active", state.code()),
                ));
            }
            let all = self.store.key_versions(ctx.instance, id).await?;
            let total = all.len() as u64;
            let items = all
                .into_iter()
                .skip(page.offset as usize)
                .take(page.limit as usize)
                .map(|v| VersionInfo {
                    id: v.id,
                    created_at: v.created_at,
                })
                .collect();
            Ok((items, total))
        };
        self.audited(
            ctx,
            Action::SecretsListKeyVersions,
            Role::Reader,
            Some(id_or_alias),
            op,
        )
        .await
    }
}
