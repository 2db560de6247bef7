//! Secure import: per-instance import tokens (a transport key and a nonce) so that root key
//! material travels encrypted to the service, as Key Protect and HPCS do it.
//!
//! With Key Protect's RSA-4096 token, the importer encrypts the material with RSA-OAEP
//! (SHA-256; SHA-1 for the HPCS variant) to the token's public key. With Strongroom's
//! ML-KEM token (an extension, against harvest-now-decrypt-later), the importer encapsulates
//! to the token's ML-KEM public key and wraps the material with AES-256-KWP under the
//! 32-byte shared secret: `payload = ciphertext ‖ KWP(secret, material)`.
//!
//! Either way the importer proves it holds the material by encrypting the token's nonce with
//! it: AES-GCM with a 12-byte IV (RSA-OAEP-SHA-256 and ML-KEM) or AES-CBC with PKCS#7
//! padding and a 16-byte IV (the HPCS variant, RSA-OAEP-SHA-1).

use crate::action::Action;
use strongroom_engine::provider::{AsymKind, MlKemSet};
use strongroom_engine::{AeadAlg, BlobBinding, CryptoProvider, KeyMaterial, OaepHash};
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

/// The transport key of an import token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKey {
    /// RSA-4096, Key Protect's and HPCS's token.
    #[default]
    Rsa4096,
    /// ML-KEM-768 (FIPS 203), a Strongroom extension.
    MlKem768,
    /// ML-KEM-1024 (FIPS 203), a Strongroom extension.
    MlKem1024,
}

impl TransportKey {
    /// The name on the wire (`transportKeyAlgorithm`).
    pub fn name(self) -> &'static str {
        match self {
            TransportKey::Rsa4096 => "RSA_4096",
            TransportKey::MlKem768 => "ML_KEM_768",
            TransportKey::MlKem1024 => "ML_KEM_1024",
        }
    }

    /// Every transport key, by wire name.
    pub fn parse(s: &str) -> Option<TransportKey> {
        [
            TransportKey::Rsa4096,
            TransportKey::MlKem768,
            TransportKey::MlKem1024,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }

    /// The key kind generated for the token.
    fn kind(self) -> AsymKind {
        match self {
            TransportKey::Rsa4096 => AsymKind::Rsa {
                bits: IMPORT_TOKEN_RSA_BITS as u32,
            },
            TransportKey::MlKem768 => AsymKind::MlKem(MlKemSet::K768),
            TransportKey::MlKem1024 => AsymKind::MlKem(MlKemSet::K1024),
        }
    }

    fn of(kind: AsymKind) -> Option<TransportKey> {
        match kind {
            AsymKind::Rsa { .. } => Some(TransportKey::Rsa4096),
            AsymKind::MlKem(MlKemSet::K768) => Some(TransportKey::MlKem768),
            AsymKind::MlKem(MlKemSet::K1024) => Some(TransportKey::MlKem1024),
            _ => None,
        }
    }
}

/// How the key material of a secure import was encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportAlgorithm {
    /// RSA-OAEP to an RSA token (`RSAES_OAEP_SHA_256`, or `RSAES_OAEP_SHA_1` for HPCS).
    RsaOaep(OaepHash),
    /// ML-KEM encapsulation to an ML-KEM token, then AES-256-KWP under the shared secret
    /// (`ML_KEM_AES_256_KWP`, a Strongroom extension).
    MlKemAesKwp,
}

/// Encryption details of a secure import.
#[derive(Clone)]
pub struct SecureImport {
    /// The token nonce encrypted with the key material.
    pub encrypted_nonce: Vec<u8>,
    /// The IV used for the nonce.
    pub iv: Vec<u8>,
    /// How the material was encrypted.
    pub algorithm: ImportAlgorithm,
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
    /// The kind of transport key.
    pub transport: TransportKey,
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
        transport: TransportKey,
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
            let (pkcs8, spki) = tokio::task::spawn_blocking(move || {
                p.asym_generate(transport.kind())
                    .map(|(k, public)| (k, public.spki))
            })
            .await
            .map_err(|_| ServiceError::new(ErrorKind::Internal, "key generation task failed"))?
            .map_err(|_| {
                ServiceError::new(ErrorKind::Internal, "transport key generation failed")
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
                transport,
                public_key: None,
                nonce: None,
            })
        };
        self.audited(ctx, Action::ImportTokenCreate, Role::Manager, None, op)
            .await
    }

    /// The instance's import token, refused as expired (`if_expired`) past its expiry.
    async fn live_import_token(&self, ctx: &Ctx, if_expired: &str) -> Result<ImportTokenRecord> {
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
            return Err(expired(if_expired));
        }
        Ok(tok)
    }

    /// Retrieves the import token's public key and nonce, using one retrieval.
    pub async fn get_import_token(&self, ctx: &Ctx) -> Result<ImportTokenInfo> {
        let op = async {
            let tok = self.live_import_token(
                ctx,
                "Import Token could not be retrieved: the import token has expired; create a new one",
            )
            .await?;
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
                transport: token_transport(self.unit(ctx.instance)?.provider(), &tok)?,
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
        let tok = self
            .live_import_token(
                ctx,
                "The import token has expired; create a new one and encrypt the key again",
            )
            .await?;
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
        let undecryptable = || {
            ServiceError::field(
                ErrorKind::InvalidField,
                "payload",
                "The field 'payload' cannot be decrypted with the current import token (was it encrypted for an older token, or with another algorithm?)",
            )
        };
        let transport = token_transport(p, &tok)?;
        let material = match (s.algorithm, transport) {
            (ImportAlgorithm::RsaOaep(hash), TransportKey::Rsa4096) => p
                .rsa_oaep_decrypt(pkcs8.expose(), hash, sealed)
                .map_err(|_| undecryptable())?,
            (ImportAlgorithm::MlKemAesKwp, TransportKey::MlKem768 | TransportKey::MlKem1024) => {
                let AsymKind::MlKem(set) = transport.kind() else {
                    return Err(undecryptable());
                };
                let Some((ct, wrapped)) = sealed.split_at_checked(set.ciphertext_len()) else {
                    return Err(undecryptable());
                };
                // Decapsulation never fails on a well-sized ciphertext (implicit rejection):
                // a wrong one yields a wrong secret, and the KWP integrity check refuses it.
                let secret = p
                    .prepare_private(pkcs8.expose())
                    .and_then(|k| k.decapsulate(ct))
                    .map_err(|_| undecryptable())?;
                p.aes_kwp_unwrap(&secret, wrapped)
                    .map_err(|_| undecryptable())?
            }
            (algorithm, transport) => {
                return Err(ServiceError::field(
                    ErrorKind::InvalidField,
                    "encryptionAlgorithm",
                    format!(
                        "encryptionAlgorithm {} does not fit the current import token, whose transport key is {}",
                        algorithm_name(algorithm),
                        transport.name()
                    ),
                ))
            }
        };
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
            ImportAlgorithm::RsaOaep(OaepHash::Sha256) | ImportAlgorithm::MlKemAesKwp => {
                let iv: [u8; 12] = s.iv.as_slice().try_into().map_err(|_| bad_iv())?;
                let key = p
                    .aead_key(AeadAlg::AesGcm, &material)
                    .map_err(|_| bad_iv())?;
                let mut buf = s.encrypted_nonce.clone();
                key.open(&iv, &[], &mut buf).map_err(|_| bad_iv())?;
                Zeroizing::new(buf)
            }
            ImportAlgorithm::RsaOaep(OaepHash::Sha1) => {
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

/// The kind of a stored token's transport key, read from its public key.
fn token_transport(p: &dyn CryptoProvider, tok: &ImportTokenRecord) -> Result<TransportKey> {
    p.public_info(&tok.public_key)
        .ok()
        .and_then(|i| TransportKey::of(i.kind))
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Internal,
                "the import token's public key is unreadable",
            )
        })
}

/// The wire name of an import algorithm.
pub fn algorithm_name(a: ImportAlgorithm) -> &'static str {
    match a {
        ImportAlgorithm::RsaOaep(OaepHash::Sha256) => "RSAES_OAEP_SHA_256",
        ImportAlgorithm::RsaOaep(OaepHash::Sha1) => "RSAES_OAEP_SHA_1",
        ImportAlgorithm::MlKemAesKwp => "ML_KEM_AES_256_KWP",
    }
}
