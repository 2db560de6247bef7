//! The crypto unit engine: a software HSM domain. It holds the master key register, seals
//! and opens key blobs, generates key material and wraps data keys. It is sans-I/O and
//! synchronous: no files, sockets, clock or async runtime; randomness and primitives come
//! from a [`CryptoProvider`] passed in. It never sees the keystore.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod blob;
pub mod der;
pub mod envelope;
pub mod ep11;
pub mod provider;
pub mod secret;
mod selftest;
#[cfg(feature = "test-provider")]
pub mod test_provider;

use std::fmt;
use std::sync::Arc;

pub use blob::{blob_mk_id, BlobBinding};
pub use envelope::{Wdek, WrappingKey};
pub use provider::{
    AeadAlg, AeadKey, CryptoError, CryptoProvider, DigestAlg, HmacSha256Key, OaepHash, SigAlg,
};
pub use secret::{KeyMaterial, MasterKey, MASTER_KEY_LEN};
pub use selftest::{compute_format_vectors, run_self_tests};

/// A master key id (verification pattern): the first 16 bytes of
/// HKDF-SHA-256(salt = "", IKM = master key, info = "strongroom/mk-id/v1").
/// It identifies a master key without revealing it; blobs are stamped with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MkId(pub [u8; 16]);

impl MkId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MkId({})", self.to_hex())
    }
}

impl fmt::Display for MkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Errors of the engine. Crypto failures carry no detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The unit holds no valid master key.
    #[error("crypto unit not initialized: no current master key")]
    NotInitialized,
    /// The blob is sealed under another master key.
    #[error("key blob is sealed under master key {blob}, not the unit's current master key")]
    WrongMasterKey {
        /// The master key id stamped in the blob.
        blob: MkId,
    },
    /// The blob is not a well-formed blob.
    #[error("key blob is malformed")]
    BlobMalformed,
    /// The blob failed authentication (tampered, or bound to something else).
    #[error("key blob failed authentication")]
    BlobAuthFailed,
    /// The ciphertext is not a well-formed WDEK.
    #[error("ciphertext is malformed")]
    CiphertextMalformed,
    /// The ciphertext failed authentication (tampered, wrong key or wrong AAD).
    #[error("ciphertext failed authentication")]
    CiphertextAuthFailed,
    /// AAD too large to encode.
    #[error("additional authenticated data too large")]
    AadTooLarge,
    /// Key material of an unsupported length.
    #[error("invalid key length")]
    InvalidKeyLength,
    /// A start-up known-answer test failed; the unit refuses to serve.
    #[error("crypto self-test failed: {0}")]
    SelfTestFailed(&'static str),
    /// A primitive failed.
    #[error("cryptographic operation failed")]
    Crypto,
}

impl From<CryptoError> for EngineError {
    fn from(_: CryptoError) -> Self {
        EngineError::Crypto
    }
}

/// A crypto unit: the current master key register plus the provider.
pub struct CryptoUnit {
    provider: Arc<dyn CryptoProvider>,
    current: Option<(MasterKey, MkId)>,
    /// A committed new master key: blobs under it open; with `write_next`, new blobs are
    /// sealed under it (rotation in progress).
    next: Option<(MasterKey, MkId)>,
    write_next: bool,
    /// The instance whose keys this unit serves (binds GREP11 blobs and states).
    instance: Option<strongroom_model::InstanceId>,
    ep11: ep11::Ep11Cache,
    /// Whether `CKM_RSA_PKCS` decrypts and unwraps (PKCS#1 v1.5 decryption; see
    /// [`CryptoUnit::refuse_rsa_pkcs1_decryption`]).
    rsa_pkcs1_decryption: bool,
    /// Whether only what FIPS 140-3 approves is offered (the provider's FIPS mode, or
    /// [`CryptoUnit::enforce_fips_policy`]).
    fips_policy: bool,
}

impl fmt::Debug for CryptoUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoUnit")
            .field("provider", &self.provider.name())
            .field("current_mk", &self.current.as_ref().map(|(_, id)| *id))
            .field("next_mk", &self.next.as_ref().map(|(_, id)| *id))
            .field("write_next", &self.write_next)
            .finish()
    }
}

impl CryptoUnit {
    /// Creates a unit in the "no master key" state after running the known-answer self
    /// tests; a unit whose provider fails them is never created.
    pub fn new(provider: Arc<dyn CryptoProvider>) -> Result<Self, EngineError> {
        run_self_tests(provider.as_ref())?;
        Ok(CryptoUnit {
            current: None,
            next: None,
            write_next: false,
            instance: None,
            ep11: ep11::Ep11Cache::default(),
            rsa_pkcs1_decryption: true,
            fips_policy: provider.fips_mode(),
            provider,
        })
    }

    /// Switches PKCS#1 v1.5 decryption off: `CKM_RSA_PKCS` no longer decrypts or unwraps
    /// (a padding oracle, Bleichenbacher and Marvin, needs only that), and the mechanism
    /// list no longer offers it for them. Signing and verifying with it stay.
    pub fn refuse_rsa_pkcs1_decryption(&mut self) {
        self.rsa_pkcs1_decryption = false;
    }

    /// Offers and serves only what FIPS 140-3 approves ([`ep11::fips`]), as a unit whose
    /// provider runs in FIPS mode always does.
    pub fn enforce_fips_policy(&mut self) {
        self.fips_policy = true;
    }

    /// Whether this unit offers and serves only what FIPS 140-3 approves.
    pub fn fips_policy(&self) -> bool {
        self.fips_policy
    }

    /// Whether `CKM_RSA_PKCS` decrypts and unwraps on this unit.
    pub fn rsa_pkcs1_decryption(&self) -> bool {
        self.rsa_pkcs1_decryption
    }

    /// Binds the unit to the instance whose GREP11 blobs and states it seals and opens.
    pub fn set_instance(&mut self, instance: strongroom_model::InstanceId) {
        self.instance = Some(instance);
    }

    /// The provider.
    pub fn provider(&self) -> &dyn CryptoProvider {
        self.provider.as_ref()
    }

    /// A shared handle on the provider.
    pub fn provider_arc(&self) -> Arc<dyn CryptoProvider> {
        Arc::clone(&self.provider)
    }

    /// Loads a master key into the current register.
    pub fn set_current_master_key(&mut self, mk: MasterKey) -> MkId {
        let id = mk_id(self.provider.as_ref(), &mk);
        self.current = Some((mk, id));
        id
    }

    /// Loads a committed new master key: blobs sealed under it open; with `write_next`
    /// new blobs are sealed under it.
    pub fn set_next_master_key(&mut self, mk: MasterKey, write_next: bool) -> MkId {
        let id = mk_id(self.provider.as_ref(), &mk);
        self.next = Some((mk, id));
        self.write_next = write_next;
        id
    }

    /// The master key id new blobs are sealed under.
    pub fn sealing_mk_id(&self) -> Option<MkId> {
        self.sealing().ok().map(|(_, id)| id)
    }

    /// The current master key id, if the register is valid.
    pub fn current_mk_id(&self) -> Option<MkId> {
        self.current.as_ref().map(|(_, id)| *id)
    }

    fn current(&self) -> Result<(&MasterKey, MkId), EngineError> {
        self.current
            .as_ref()
            .map(|(k, id)| (k, *id))
            .ok_or(EngineError::NotInitialized)
    }

    fn sealing(&self) -> Result<(&MasterKey, MkId), EngineError> {
        match (&self.next, self.write_next) {
            (Some((k, id)), true) => Ok((k, *id)),
            _ => self.current(),
        }
    }

    /// The register a blob belongs to, by the master key id stamped in it.
    fn register_for(&self, blob: &[u8]) -> Result<(&MasterKey, MkId), EngineError> {
        let stamped = blob_mk_id(blob)?;
        let (cur, cur_id) = self.current()?;
        if stamped == cur_id {
            return Ok((cur, cur_id));
        }
        match &self.next {
            Some((k, id)) if *id == stamped => Ok((k, *id)),
            _ => Err(EngineError::WrongMasterKey { blob: stamped }),
        }
    }

    /// Generates `len` bytes of fresh key material.
    pub fn generate(&self, len: usize) -> Result<KeyMaterial, EngineError> {
        let mut v = vec![0u8; len];
        self.provider.fill_random(&mut v)?;
        Ok(KeyMaterial::new(v))
    }

    /// Seals key material into a blob bound to `binding` under the current master key.
    pub fn seal_blob(
        &self,
        binding: &BlobBinding,
        material: &KeyMaterial,
    ) -> Result<Vec<u8>, EngineError> {
        let (mk, id) = self.sealing()?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        self.provider.fill_random(&mut salt)?;
        self.provider.fill_random(&mut nonce)?;
        blob::seal_with(
            self.provider.as_ref(),
            mk,
            id,
            binding,
            material,
            &salt,
            &nonce,
        )
    }

    /// Opens a blob sealed under the current master key and bound to `binding`.
    pub fn open_blob(
        &self,
        binding: &BlobBinding,
        blob: &[u8],
    ) -> Result<KeyMaterial, EngineError> {
        let (mk, id) = self.register_for(blob)?;
        blob::open(self.provider.as_ref(), mk, id, binding, blob)
    }

    /// `RewrapKeyBlob`: re-seals a blob under the master key new blobs are sealed under
    /// (the committed new key during a rotation). Returns `None` when the blob is already
    /// sealed under it (idempotent).
    pub fn rewrap_blob(
        &self,
        binding: &BlobBinding,
        blob: &[u8],
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let (_, target) = self.sealing()?;
        if blob_mk_id(blob)? == target {
            return Ok(None);
        }
        let material = self.open_blob(binding, blob)?;
        self.seal_blob(binding, &material).map(Some)
    }

    /// Prepares root key material for wrapping.
    pub fn wrapping_key(&self, material: &KeyMaterial) -> Result<WrappingKey, EngineError> {
        WrappingKey::new(self.provider.as_ref(), material)
    }

    /// Wraps a DEK (see [`envelope`]).
    pub fn wrap(
        &self,
        key: &WrappingKey,
        handle: strongroom_model::VersionId,
        dek: &[u8],
        aad: &[String],
    ) -> Result<Vec<u8>, EngineError> {
        envelope::wrap(self.provider.as_ref(), key, handle, dek, aad)
    }
}

/// Computes the master key id of `mk`.
pub fn mk_id(p: &dyn CryptoProvider, mk: &MasterKey) -> MkId {
    let mut out = [0u8; 16];
    // HKDF with a 16-byte output cannot fail; fall back to a hash that can't collide with a
    // real id only if the provider misbehaves (self-tests would have caught that).
    if p.hkdf_sha256(&[], mk.expose(), b"strongroom/mk-id/v1", &mut out)
        .is_err()
    {
        let h = p.sha256(&[b"strongroom/mk-id/v1", mk.expose()]);
        out.copy_from_slice(&h[..16]);
    }
    MkId(out)
}
