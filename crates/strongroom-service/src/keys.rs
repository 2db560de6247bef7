//! Keys: create and import, read, list, versions, envelope wrap/unwrap/rewrap, rotation and
//! the lifecycle (disable, enable, delete, restore, purge) with Key Protect's timing rules.

use crate::action::Action;
use std::sync::Arc;

use strongroom_engine::{envelope, BlobBinding, EngineError, KeyMaterial, Wdek};
use strongroom_keystore::{KeyFilter, KeyRecord, KeyVersionRecord, Page, StoreError};
use strongroom_model::{
    InstanceId, KeyId, KeyKind, KeyState, LifecycleEvent, Role, TransitionError, UnixMillis,
    VersionId,
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

const RESERVED_ALIASES: [&str; 17] = [
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

fn invalid(field: &'static str, msg: impl Into<String>) -> ServiceError {
    ServiceError::field(ErrorKind::InvalidField, field, msg)
}

fn key_not_found() -> ServiceError {
    ServiceError::new(ErrorKind::KeyNotFound, "key does not exist")
}

fn bad_ciphertext() -> ServiceError {
    invalid("ciphertext", "The field 'ciphertext' must be: the original base64 encoded ciphertext from the wrap operation (also check that the aad matches)")
}

fn engine_err(e: EngineError) -> ServiceError {
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

fn validate_aad(aad: &[String]) -> Result<()> {
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

fn transition(
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
    pub(crate) async fn resolve(&self, ctx: &Ctx, id_or_alias: &str) -> Result<KeyId> {
        if let Ok(id) = id_or_alias.parse::<KeyId>() {
            return Ok(id);
        }
        if uuid::Uuid::parse_str(id_or_alias).is_ok() || id_or_alias.is_empty() {
            return Err(key_not_found());
        }
        match self.store.key_id_by_alias(ctx.instance, id_or_alias).await {
            Ok(id) => Ok(id),
            Err(StoreError::NotFound) => Err(key_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads a key with its opened material, from the cache when possible.
    async fn load(&self, ctx: &Ctx, id: KeyId) -> Result<Arc<CachedKey>> {
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

    async fn load_from_store(&self, ctx: &Ctx, id: KeyId) -> Result<CachedKey> {
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

    async fn create_key_inner(&self, ctx: &Ctx, req: CreateKey) -> Result<KeyView> {
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
            Role::Writer,
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
            let recs = self.store.list_keys(ctx.instance, filter, page).await?;
            Ok(recs.iter().map(|r| self.view(r)).collect())
        };
        self.audited(ctx, Action::SecretsList, Role::Reader, None, op)
            .await
    }

    /// Counts keys (`HEAD /keys`).
    pub async fn count_keys(&self, ctx: &Ctx, filter: &KeyFilter) -> Result<u64> {
        let op = async { Ok(self.store.count_keys(ctx.instance, filter).await?) };
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

    fn root_for(k: &CachedKey) -> Result<()> {
        if k.record.kind != KeyKind::Root {
            return Err(ServiceError::new(
                ErrorKind::RootKeyRequired,
                "Requested action can only be completed with a root key",
            ));
        }
        Ok(())
    }

    fn usable_for(&self, k: &CachedKey, allowed: &[KeyState], verb: &str) -> Result<()> {
        let state = effective_state(&k.record, self.clock.now());
        if allowed.contains(&state) {
            return Ok(());
        }
        Err(match state {
            KeyState::Deactivated => ServiceError::new(
                ErrorKind::KeyExpired,
                format!("The key has expired: it cannot be used to {verb}"),
            ),
            s => ServiceError::new(
                ErrorKind::InvalidKeyState,
                format!(
                    "Key is in state {} ({s:?}): it cannot be used to {verb}",
                    s.code()
                ),
            ),
        })
    }

    fn wrap_with(
        &self,
        ctx: &Ctx,
        k: &CachedKey,
        dek: &[u8],
        aad: &[String],
    ) -> Result<(Vec<u8>, VersionInfo)> {
        let newest = k
            .newest()
            .ok_or_else(|| ServiceError::new(ErrorKind::Internal, "key has no versions"))?;
        let Material::Root(wk) = &newest.material else {
            return Err(ServiceError::new(
                ErrorKind::RootKeyRequired,
                "Requested action can only be completed with a root key",
            ));
        };
        let unit = self.unit(ctx.instance)?;
        let ct = unit.wrap(wk, newest.id, dek, aad).map_err(engine_err)?;
        Ok((
            ct,
            VersionInfo {
                id: newest.id,
                created_at: newest.created_at,
            },
        ))
    }

    /// Wraps a caller DEK, or a generated 32-byte DEK when `plaintext` is `None`.
    pub async fn wrap(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        plaintext: Option<Zeroizing<Vec<u8>>>,
        aad: &[String],
    ) -> Result<Wrapped> {
        let op = async {
            validate_aad(aad)?;
            if let Some(p) = &plaintext {
                if p.len() > MAX_PAYLOAD {
                    return Err(invalid(
                        "plaintext",
                        format!("The field 'plaintext' must be at most {MAX_PAYLOAD} bytes"),
                    ));
                }
            }
            let id = self.resolve(ctx, id_or_alias).await?;
            let k = self.load(ctx, id).await?;
            Self::root_for(&k)?;
            self.usable_for(&k, &[KeyState::Active], "wrap")?;
            let (dek, generated) = match plaintext {
                Some(p) => (p, false),
                None => {
                    let m = self
                        .unit(ctx.instance)?
                        .generate(GENERATED_LEN)
                        .map_err(engine_err)?;
                    (Zeroizing::new(m.expose().to_vec()), true)
                }
            };
            let (ciphertext, key_version) = self.wrap_with(ctx, &k, &dek, aad)?;
            Ok(Wrapped {
                generated: generated.then_some(dek),
                ciphertext,
                key_version,
            })
        };
        self.audited(
            ctx,
            Action::SecretsWrap,
            Role::Reader,
            Some(id_or_alias),
            op,
        )
        .await
    }

    fn open_wdek(
        k: &CachedKey,
        ciphertext: &[u8],
        aad: &[String],
    ) -> Result<(Zeroizing<Vec<u8>>, VersionInfo)> {
        let wdek = Wdek::parse(ciphertext).map_err(|_| bad_ciphertext())?;
        let try_version = |v: &CachedVersion| match &v.material {
            Material::Root(wk) => envelope::unwrap(wk, &wdek, aad).ok(),
            Material::Standard(_) => None,
        };
        // The version named by the handle first; then the key's other versions (a key
        // whose material was imported again under another version still unwraps).
        if let Some(v) = k.version(wdek.handle) {
            if let Some(p) = try_version(v) {
                return Ok((
                    p,
                    VersionInfo {
                        id: v.id,
                        created_at: v.created_at,
                    },
                ));
            }
        }
        for v in k.versions.iter().filter(|v| v.id != wdek.handle) {
            if let Some(p) = try_version(v) {
                return Ok((
                    p,
                    VersionInfo {
                        id: v.id,
                        created_at: v.created_at,
                    },
                ));
            }
        }
        Err(bad_ciphertext())
    }

    /// Unwraps a WDEK; when it was made by an older version, also returns it re-wrapped.
    pub async fn unwrap(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        ciphertext: &[u8],
        aad: &[String],
    ) -> Result<Unwrapped> {
        let op = async {
            validate_aad(aad)?;
            let id = self.resolve(ctx, id_or_alias).await?;
            let k = self.load(ctx, id).await?;
            Self::root_for(&k)?;
            self.usable_for(&k, &[KeyState::Active, KeyState::Deactivated], "unwrap")?;
            let (plaintext, key_version) = Self::open_wdek(&k, ciphertext, aad)?;
            let rewrapped = match k.newest() {
                Some(n) if n.id != key_version.id => {
                    Some(self.wrap_with(ctx, &k, &plaintext, aad)?)
                }
                _ => None,
            };
            Ok(Unwrapped {
                plaintext,
                key_version,
                rewrapped,
            })
        };
        self.audited(
            ctx,
            Action::SecretsUnwrap,
            Role::Writer,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Re-wraps a WDEK with the key's newest version, without returning the DEK.
    pub async fn rewrap(
        &self,
        ctx: &Ctx,
        id_or_alias: &str,
        ciphertext: &[u8],
        aad: &[String],
    ) -> Result<Rewrapped> {
        let op = async {
            validate_aad(aad)?;
            let id = self.resolve(ctx, id_or_alias).await?;
            let k = self.load(ctx, id).await?;
            Self::root_for(&k)?;
            self.usable_for(&k, &[KeyState::Active, KeyState::Deactivated], "rewrap")?;
            let (plaintext, key_version) = Self::open_wdek(&k, ciphertext, aad)?;
            let (ciphertext, rewrapped_key_version) = self.wrap_with(ctx, &k, &plaintext, aad)?;
            Ok(Rewrapped {
                ciphertext,
                key_version,
                rewrapped_key_version,
            })
        };
        self.audited(
            ctx,
            Action::SecretsRewrap,
            Role::Writer,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Runs a read-modify-write of one key under its stripe lock, from the stored record,
    /// and drops the cached entry afterwards.
    pub(crate) async fn mutate<T, F>(&self, ctx: &Ctx, id: KeyId, f: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut KeyRecord, UnixMillis) -> Result<MutateOutcome<T>>,
    {
        self.mutate_in(ctx.instance, id, f).await
    }

    /// [`Service::mutate`] for a known instance (background jobs have no request).
    pub(crate) async fn mutate_in<T, F>(&self, instance: InstanceId, id: KeyId, f: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut KeyRecord, UnixMillis) -> Result<MutateOutcome<T>>,
    {
        let ck = (instance, id);
        let _guard = self.cache.stripe(&ck).lock().await;
        let mut rec = match self.store.get_key(instance, id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(key_not_found()),
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let outcome = f(&mut rec, now)?;
        let result = match outcome {
            MutateOutcome::Update(v) => {
                rec.updated_at = now;
                self.store.update_key(&rec).await.map(|_| v)
            }
            MutateOutcome::AddVersion(version, v) => {
                rec.updated_at = now;
                self.store.add_key_version(&rec, &version).await.map(|_| v)
            }
            MutateOutcome::Purge(v) => self
                .store
                .purge_key(instance, id, rec.row_version)
                .await
                .map(|_| v),
            MutateOutcome::AddAlias(alias, v) => {
                rec.updated_at = now;
                self.store.add_alias(&rec, &alias).await.map(|_| v)
            }
            MutateOutcome::RemoveAlias(alias, v) => {
                rec.updated_at = now;
                self.store.remove_alias(&rec, &alias).await.map(|_| v)
            }
        };
        self.cache.remove(&ck);
        result.map_err(|e| match e {
            StoreError::NotFound => key_not_found(),
            other => other.into(),
        })
    }

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

    /// Disables (suspends) an active root key.
    pub async fn disable(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, |rec, now| {
                if rec.kind != KeyKind::Root {
                    return Err(ServiceError::new(
                        ErrorKind::RootKeyRequired,
                        "Requested action can only be completed with a root key",
                    ));
                }
                rec.state = transition(rec, now, LifecycleEvent::Disable, "disabled")?;
                rec.state_changed_at = now;
                Ok(MutateOutcome::Update(()))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsDisable,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
    }

    /// Enables a suspended root key, at least 30 seconds after it was disabled.
    pub async fn enable(&self, ctx: &Ctx, id_or_alias: &str) -> Result<()> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, |rec, now| {
                if rec.kind != KeyKind::Root {
                    return Err(ServiceError::new(
                        ErrorKind::RootKeyRequired,
                        "Requested action can only be completed with a root key",
                    ));
                }
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
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsEnable,
            Role::Manager,
            Some(id_or_alias),
            op,
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
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, |rec, now| {
                if rec.state != KeyState::Destroyed {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidKeyState,
                        format!("Key is in state {}: only deleted keys can be restored", rec.state.code()),
                    ));
                }
                let deleted = rec.deleted_at.unwrap_or(rec.state_changed_at);
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
        };
        self.audited(
            ctx,
            Action::SecretsRestore,
            Role::Manager,
            Some(id_or_alias),
            op,
        )
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }

    /// Purges a deleted key for good, at least 4 hours after deletion (KeyPurge role).
    pub async fn purge(&self, ctx: &Ctx, id_or_alias: &str) -> Result<crate::KeyMetadata> {
        let op = async {
            let id = self.resolve(ctx, id_or_alias).await?;
            self.mutate(ctx, id, |rec, now| {
                if rec.state != KeyState::Destroyed {
                    return Err(ServiceError::new(
                        ErrorKind::InvalidKeyState,
                        format!(
                            "Key is in state {}: only deleted keys can be purged",
                            rec.state.code()
                        ),
                    ));
                }
                let deleted = rec.deleted_at.unwrap_or(rec.state_changed_at);
                if now.secs_since(deleted) < PURGE_AFTER_SECS {
                    return Err(ServiceError::new(
                        ErrorKind::TooEarly,
                        "A deleted key can be purged 4 hours after deletion; retry later",
                    ));
                }
                Ok(MutateOutcome::Purge(rec.clone()))
            })
            .await
        };
        self.audited(
            ctx,
            Action::SecretsPurge,
            Role::KeyPurge,
            Some(id_or_alias),
            op,
        )
        .await
        .map(|r| crate::KeyMetadata::from(&r))
    }
}

/// The record as the store will hold it once `rec` is written at `now`: the store bumps the
/// row version and stamps the update time, so a mutation that returns the key shows those.
fn as_written(rec: &KeyRecord, now: strongroom_model::UnixMillis) -> KeyRecord {
    let mut shown = rec.clone();
    shown.row_version += 1;
    shown.updated_at = now;
    shown
}

/// What a mutation writes.
pub(crate) enum MutateOutcome<T> {
    Update(T),
    AddVersion(KeyVersionRecord, T),
    Purge(T),
    AddAlias(String, T),
    RemoveAlias(String, T),
}
