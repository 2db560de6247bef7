//! Secure import: per-instance import tokens (an RSA-4096 transport key and a nonce) so that
//! root key material travels encrypted to the service, as Key Protect and HPCS do it.
//!
//! The importer encrypts the material with RSA-OAEP (SHA-256; SHA-1 for the HPCS variant)
//! to the token's public key, and proves it holds the material by encrypting the token's
//! nonce with it: AES-GCM with a 12-byte IV (SHA-256 variant) or AES-CBC with PKCS#7 padding
//! and a 16-byte IV (HPCS variant).

use crate::action::Action;
use strongroom_engine::{AeadAlg, BlobBinding, KeyMaterial, OaepHash};
use strongroom_keystore::{ImportTokenRecord, StoreError};
use strongroom_model::{KeyId, KeyKind, Role, UnixMillis, VersionId};
use zeroize::Zeroizing;

use crate::auth::Ctx;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::Service;

/// Size of the transport key.
pub const IMPORT_TOKEN_RSA_BITS: usize = 4096;
/// Token lifetime bounds and default, seconds.
pub const IMPORT_TOKEN_EXPIRATION: (i64, i64, i64) = (300, 86_400, 600);
/// Retrieval bounds and default.
pub const IMPORT_TOKEN_RETRIEVALS: (i64, i64, i64) = (1, 500, 1);

/// Encryption details of a secure import.
#[derive(Clone)]
pub struct SecureImport {
    /// The token nonce encrypted with the key material.
    pub encrypted_nonce: Vec<u8>,
    /// The IV used for the nonce.
    pub iv: Vec<u8>,
    /// RSA-OAEP hash (`RSAES_OAEP_SHA_256`, or `RSAES_OAEP_SHA_1` for HPCS).
    pub algorithm: OaepHash,
}

impl std::fmt::Debug for SecureImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecureImport({:?})", self.algorithm)
    }
}

/// An import token as callers see it.
#[derive(Debug, Clone)]
pub struct ImportTokenInfo {
    /// Creation time.
    pub created_at: UnixMillis,
    /// Expiry.
    pub expires_at: UnixMillis,
    /// Allowed retrievals.
    pub max_retrievals: u32,
    /// Retrievals left.
    pub remaining: u32,
    /// Lifetime requested, seconds.
    pub expiration_secs: i64,
    /// SubjectPublicKeyInfo DER (only from `get_import_token`).
    pub public_key: Option<Vec<u8>>,
    /// The nonce (only from `get_import_token`).
    pub nonce: Option<Vec<u8>>,
}

fn expired(msg: &str) -> ServiceError {
    ServiceError::new(ErrorKind::ImportTokenExpired, msg.to_string())
}

fn transport_binding(instance: strongroom_model::InstanceId, id: KeyId) -> BlobBinding {
    BlobBinding {
        instance,
        key: id,
        version: VersionId::from(id),
        kind: KeyKind::TransportKey,
        imported: false,
    }
}

impl Service {
    /// Creates the instance's import token (replacing any previous one).
    pub async fn create_import_token(
        &self,
        ctx: &Ctx,
        expiration: Option<i64>,
        max_retrievals: Option<i64>,
    ) -> Result<ImportTokenInfo> {
        let op = async {
            let (lo, hi, def) = IMPORT_TOKEN_EXPIRATION;
            let expiration = expiration.unwrap_or(def);
            if !(lo..=hi).contains(&expiration) {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "expiration",
                    format!("expiration must be between {lo} and {hi} seconds"),
                ));
            }
            let (lo, hi, def) = IMPORT_TOKEN_RETRIEVALS;
            let retrievals = max_retrievals.unwrap_or(def);
            if !(lo..=hi).contains(&retrievals) {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "maxAllowedRetrievals",
                    format!("maxAllowedRetrievals must be between {lo} and {hi}"),
                ));
            }
            let unit = self.unit(ctx.instance)?;
            let p = unit.provider_arc();
            // RSA-4096 generation takes a while: keep it off the async workers.
            let (pkcs8, spki) =
                tokio::task::spawn_blocking(move || p.rsa_generate(IMPORT_TOKEN_RSA_BITS))
                    .await
                    .map_err(|_| {
                        ServiceError::new(ErrorKind::Internal, "key generation task failed")
                    })?
                    .map_err(|_| {
                        ServiceError::new(ErrorKind::Internal, "RSA key generation failed")
                    })?;
            let id = KeyId::random();
            let blob = unit
                .seal_blob(
                    &transport_binding(ctx.instance, id),
                    &KeyMaterial::from_slice(&pkcs8),
                )
                .map_err(|e| {
                    ServiceError::new(
                        ErrorKind::Internal,
                        format!("cannot seal the transport key: {e}"),
                    )
                })?;
            let nonce = unit
                .generate(12)
                .map_err(|_| ServiceError::new(ErrorKind::Internal, "random generator failed"))?;
            let now = self.clock.now();
            let rec = ImportTokenRecord {
                id,
                created_at: now,
                expires_at: now.plus_secs(expiration),
                max_retrievals: u32::try_from(retrievals).unwrap_or(1),
                remaining: u32::try_from(retrievals).unwrap_or(1),
                public_key: spki,
                private_blob: blob,
                nonce: nonce.expose().to_vec(),
            };
            self.store.put_import_token(ctx.instance, &rec).await?;
            Ok(ImportTokenInfo {
                created_at: rec.created_at,
                expires_at: rec.expires_at,
                max_retrievals: rec.max_retrievals,
                remaining: rec.remaining,
                expiration_secs: expiration,
                public_key: None,
                nonce: None,
            })
        };
        self.audited(ctx, Action::ImportTokenCreate, Role::Manager, None, op)
            .await
    }

    /// Retrieves the import token's public key and nonce, using one retrieval.
    pub async fn get_import_token(&self, ctx: &Ctx) -> Result<ImportTokenInfo> {
        let op = async {
            let tok = match self.store.get_import_token(ctx.instance).await {
                Ok(t) => t,
                Err(StoreError::NotFound) => {
                    return Err(expired(
                        "No import token exists: create one with POST /api/v2/import_token",
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            if tok.expires_at <= self.clock.now() {
                return Err(expired("Import Token could not be retrieved: the import token has expired; create a new one"));
            }
            let remaining = match self
                .store
                .take_import_token_retrieval(ctx.instance, tok.id)
                .await
            {
                Ok(n) => n,
                Err(StoreError::Conflict) => {
                    return Err(expired("Import Token could not be retrieved: it was retrieved the maximum number of times; create a new one"));
                }
                Err(e) => return Err(e.into()),
            };
            Ok(ImportTokenInfo {
                created_at: tok.created_at,
                expires_at: tok.expires_at,
                max_retrievals: tok.max_retrievals,
                remaining,
                expiration_secs: tok.expires_at.secs_since(tok.created_at),
                public_key: Some(tok.public_key),
                nonce: Some(tok.nonce),
            })
        };
        self.audited(ctx, Action::ImportTokenRead, Role::Writer, None, op)
            .await
    }

    /// Decrypts securely imported key material and checks the nonce proof.
    pub(crate) async fn open_secure_import(
        &self,
        ctx: &Ctx,
        sealed: &[u8],
        s: &SecureImport,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tok = match self.store.get_import_token(ctx.instance).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => {
                return Err(expired(
                    "No import token exists: create one with POST /api/v2/import_token",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if tok.expires_at <= self.clock.now() {
            return Err(expired(
                "The import token has expired; create a new one and encrypt the key again",
            ));
        }
        let unit = self.unit(ctx.instance)?;
        let p = unit.provider();
        let pkcs8 = unit
            .open_blob(&transport_binding(ctx.instance, tok.id), &tok.private_blob)
            .map_err(|e| match e {
                // Import tokens are not re-encrypted by a master key rotation (they live
                // minutes); one made before the rotation is simply stale.
                strongroom_engine::EngineError::WrongMasterKey { .. } => expired(
                    "The import token was created under a previous master key (the master key was rotated since); create a new import token and encrypt the key again",
                ),
                e => ServiceError::new(
                    ErrorKind::Internal,
                    format!("cannot open the transport key: {e}"),
                ),
            })?;
        let material = p.rsa_oaep_decrypt(pkcs8.expose(), s.algorithm, sealed).map_err(|_| {
            ServiceError::field(
                ErrorKind::InvalidField,
                "payload",
                "The field 'payload' cannot be decrypted with the current import token (was it encrypted for an older token, or with another algorithm?)",
            )
        })?;
        if ![16, 24, 32].contains(&material.len()) {
            return Err(ServiceError::field(
                ErrorKind::InvalidField,
                "payload",
                "the imported key material must be 16, 24 or 32 bytes",
            ));
        }
        let bad_iv = || {
            ServiceError::new(
                ErrorKind::IncorrectNonceIv,
                "The encrypted nonce could not be decrypted with the key material and the given IV",
            )
        };
        let nonce = match s.algorithm {
            OaepHash::Sha256 => {
                let iv: [u8; 12] = s.iv.as_slice().try_into().map_err(|_| bad_iv())?;
                let key = p
                    .aead_key(AeadAlg::AesGcm, &material)
                    .map_err(|_| bad_iv())?;
                let mut buf = s.encrypted_nonce.clone();
                key.open(&iv, &[], &mut buf).map_err(|_| bad_iv())?;
                Zeroizing::new(buf)
            }
            OaepHash::Sha1 => {
                let iv: [u8; 16] = s.iv.as_slice().try_into().map_err(|_| bad_iv())?;
                p.aes_cbc_pkcs7_decrypt(&material, &iv, &s.encrypted_nonce)
                    .map_err(|_| bad_iv())?
            }
        };
        if !p.ct_eq(&nonce, &tok.nonce) {
            return Err(ServiceError::new(
                ErrorKind::IncorrectNonce,
                "The encrypted nonce given does not match the nonce of the import token",
            ));
        }
        Ok(material)
    }
}
