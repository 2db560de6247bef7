//! Envelope encryption with root keys: wrap, unwrap (with the rewrap of an old-version
//! ciphertext), rewrap.

use crate::action::Action;

use strongroom_engine::{envelope, Wdek};
use strongroom_model::{KeyKind, KeyState, Role};
use zeroize::Zeroizing;

use crate::auth::Ctx;
use crate::cache::{CachedKey, CachedVersion, Material};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

use crate::keys::*;

impl Service {
    pub(crate) fn root_for(k: &CachedKey) -> Result<()> {
        if k.record.kind != KeyKind::Root {
            return Err(ServiceError::new(
                ErrorKind::RootKeyRequired,
                "Requested action can only be completed with a root key",
            ));
        }
        Ok(())
    }

    pub(crate) fn usable_for(&self, k: &CachedKey, allowed: &[KeyState], verb: &str) -> Result<()> {
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

    pub(crate) fn wrap_with(
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

    pub(crate) fn open_wdek(
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
}
