//! Envelope encryption of data encryption keys (DEKs) under a root key version: the
//! "wrapped DEK" (WDEK) that Key Protect clients store. Format v1, documented in
//! `docs/formats.md`; clients see it base64-encoded and treat it as opaque.
//!
//! ```text
//! offset size  field
//! 0      1     format version (0x01)
//! 1      16    handle: id of the root key version that wrapped the DEK
//! 17     12    AES-GCM nonce (random)
//! 29     n+16  AES-GCM ciphertext of the DEK, then the 16-byte tag
//! ```
//!
//! AAD = "strongroom/wdek/v1" ‖ bytes 0..29 ‖ u32be(count) ‖ for each caller AAD string:
//! u32be(len) ‖ UTF-8 bytes. The AES key size is the root key version's (128/192/256).

use strongroom_model::VersionId;
use zeroize::Zeroizing;

use crate::provider::{AeadAlg, AeadKey, CryptoProvider};
use crate::secret::KeyMaterial;
use crate::EngineError;

/// The WDEK format version written today.
pub const WDEK_V1: u8 = 1;
const HEADER: usize = 29;
const TAG_LEN: usize = 16;
const LABEL: &[u8] = b"strongroom/wdek/v1";

/// A root key version prepared for wrapping (key schedule done once, cached by the service).
pub struct WrappingKey {
    aead: Box<dyn AeadKey>,
    bits: u16,
}

impl WrappingKey {
    /// Prepares root key material (16, 24 or 32 bytes).
    pub fn new(p: &dyn CryptoProvider, material: &KeyMaterial) -> Result<Self, EngineError> {
        let bits = match material.len() {
            16 => 128,
            24 => 192,
            32 => 256,
            _ => return Err(EngineError::InvalidKeyLength),
        };
        Ok(WrappingKey {
            aead: p.aead_key(AeadAlg::AesGcm, material.expose())?,
            bits,
        })
    }
    /// AES key size in bits.
    pub fn bits(&self) -> u16 {
        self.bits
    }
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappingKey(AES-{}-GCM, <redacted>)", self.bits)
    }
}

/// A parsed WDEK (borrowing the caller's bytes).
#[derive(Debug, Clone, Copy)]
pub struct Wdek<'a> {
    /// The key version that wrapped it.
    pub handle: VersionId,
    nonce: [u8; 12],
    header: &'a [u8],
    body: &'a [u8],
}

impl<'a> Wdek<'a> {
    /// Parses WDEK bytes; checks structure only (authenticity is checked by [`unwrap`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EngineError> {
        if bytes.len() < HEADER + TAG_LEN || bytes.first() != Some(&WDEK_V1) {
            return Err(EngineError::CiphertextMalformed);
        }
        let (header, body) = bytes.split_at(HEADER);
        let mut handle = [0u8; 16];
        handle.copy_from_slice(header.get(1..17).ok_or(EngineError::CiphertextMalformed)?);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(header.get(17..29).ok_or(EngineError::CiphertextMalformed)?);
        Ok(Wdek {
            handle: VersionId(uuid::Uuid::from_bytes(handle)),
            nonce,
            header,
            body,
        })
    }
}

fn aad_bytes(header: &[u8], aad: &[String]) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::with_capacity(
        LABEL.len() + header.len() + 4 + aad.iter().map(|s| s.len() + 4).sum::<usize>(),
    );
    out.extend_from_slice(LABEL);
    out.extend_from_slice(header);
    let count = u32::try_from(aad.len()).map_err(|_| EngineError::AadTooLarge)?;
    out.extend_from_slice(&count.to_be_bytes());
    for s in aad {
        let len = u32::try_from(s.len()).map_err(|_| EngineError::AadTooLarge)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    Ok(out)
}

/// Wraps `dek` under `key` (version `handle`), binding the caller's `aad` strings.
pub fn wrap(
    p: &dyn CryptoProvider,
    key: &WrappingKey,
    handle: VersionId,
    dek: &[u8],
    aad: &[String],
) -> Result<Vec<u8>, EngineError> {
    let mut nonce = [0u8; 12];
    p.fill_random(&mut nonce)?;
    wrap_with_nonce(key, handle, dek, aad, nonce)
}

pub(crate) fn wrap_with_nonce(
    key: &WrappingKey,
    handle: VersionId,
    dek: &[u8],
    aad: &[String],
    nonce: [u8; 12],
) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::with_capacity(HEADER + dek.len() + TAG_LEN);
    out.push(WDEK_V1);
    out.extend_from_slice(handle.as_bytes());
    out.extend_from_slice(&nonce);
    let full_aad = aad_bytes(&out, aad)?;
    let mut body = Vec::with_capacity(dek.len() + TAG_LEN);
    body.extend_from_slice(dek);
    key.aead.seal(&nonce, &full_aad, &mut body)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Unwraps a parsed WDEK with `key`. Any failure (wrong key, wrong AAD, tampering) is the
/// same error: no oracle.
pub fn unwrap(
    key: &WrappingKey,
    wdek: &Wdek<'_>,
    aad: &[String],
) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let full_aad = aad_bytes(wdek.header, aad)?;
    let mut buf = Zeroizing::new(wdek.body.to_vec());
    key.aead
        .open(&wdek.nonce, &full_aad, &mut buf)
        .map_err(|_| EngineError::CiphertextAuthFailed)?;
    Ok(buf)
}
