//! Key blobs: key material sealed under a master key. Format v1, documented byte by byte
//! in `docs/formats.md`:
//!
//! ```text
//! offset size  field
//! 0      1     format version (0x01)
//! 1      16    master key id (verification pattern of the sealing master key)
//! 17     32    HKDF salt (random per blob)
//! 49     12    AES-GCM nonce (random per blob)
//! 61     n+16  AES-256-GCM ciphertext of the material, then the 16-byte tag
//! ```
//!
//! blob key = HKDF-SHA-256(salt, IKM = master key, info = "strongroom/blob/v1", L = 32);
//! AAD = bytes 0..61 ‖ instance id (16) ‖ key id (16) ‖ version id (16) ‖ kind (1) ‖ imported (1).

use strongroom_model::{InstanceId, KeyId, KeyKind, VersionId};
use zeroize::Zeroizing;

use crate::provider::{AeadAlg, CryptoProvider};
use crate::secret::{KeyMaterial, MasterKey};
use crate::{EngineError, MkId};

/// The blob format version written today.
pub const BLOB_V1: u8 = 1;
/// Header length of a v1 blob.
pub const BLOB_V1_HEADER: usize = 61;
const BLOB_INFO: &[u8] = b"strongroom/blob/v1";
const TAG_LEN: usize = 16;

/// What a blob is bound to. Opening a blob with any other binding fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobBinding {
    /// The instance that owns the key.
    pub instance: InstanceId,
    /// The key.
    pub key: KeyId,
    /// The key version.
    pub version: VersionId,
    /// Root or standard.
    pub kind: KeyKind,
    /// Whether the material was imported.
    pub imported: bool,
}

impl BlobBinding {
    fn encode(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + 50);
        aad.extend_from_slice(header);
        aad.extend_from_slice(self.instance.as_bytes());
        aad.extend_from_slice(self.key.as_bytes());
        aad.extend_from_slice(self.version.as_bytes());
        aad.push(self.kind.code());
        aad.push(u8::from(self.imported));
        aad
    }
}

/// The master key id stamped into a blob, read without opening it.
pub fn blob_mk_id(blob: &[u8]) -> Result<MkId, EngineError> {
    if blob.len() < BLOB_V1_HEADER + TAG_LEN || blob.first() != Some(&BLOB_V1) {
        return Err(EngineError::BlobMalformed);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(blob.get(1..17).ok_or(EngineError::BlobMalformed)?);
    Ok(MkId(id))
}

pub(crate) fn seal_with(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    binding: &BlobBinding,
    material: &KeyMaterial,
    salt: &[u8; 32],
    nonce: &[u8; 12],
) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::with_capacity(BLOB_V1_HEADER + material.len() + TAG_LEN);
    out.push(BLOB_V1);
    out.extend_from_slice(&mk_id.0);
    out.extend_from_slice(salt);
    out.extend_from_slice(nonce);
    let aad = binding.encode(&out);
    let key = blob_key(p, mk, salt)?;
    let mut body = Vec::with_capacity(material.len() + TAG_LEN);
    body.extend_from_slice(material.expose());
    key.seal(nonce, &aad, &mut body)?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    binding: &BlobBinding,
    blob: &[u8],
) -> Result<KeyMaterial, EngineError> {
    let stamped = blob_mk_id(blob)?;
    if stamped != mk_id {
        return Err(EngineError::WrongMasterKey { blob: stamped });
    }
    let (header, body) = blob.split_at(BLOB_V1_HEADER);
    let mut salt = [0u8; 32];
    salt.copy_from_slice(header.get(17..49).ok_or(EngineError::BlobMalformed)?);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(header.get(49..61).ok_or(EngineError::BlobMalformed)?);
    let aad = binding.encode(header);
    let key = blob_key(p, mk, &salt)?;
    let mut buf = body.to_vec();
    match key.open(&nonce, &aad, &mut buf) {
        Ok(()) => Ok(KeyMaterial::new(buf)),
        Err(_) => {
            zeroize::Zeroize::zeroize(&mut buf);
            Err(EngineError::BlobAuthFailed)
        }
    }
}

fn blob_key(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    salt: &[u8; 32],
) -> Result<Box<dyn crate::provider::AeadKey>, EngineError> {
    let mut k = Zeroizing::new([0u8; 32]);
    p.hkdf_sha256(salt, mk.expose(), BLOB_INFO, k.as_mut())?;
    Ok(p.aead_key(AeadAlg::AesGcm, k.as_ref())?)
}

#[cfg(test)]
mod tests {
    //! Property test of the key blob (v1): it opens to what was sealed, under the binding it
    //! was sealed with only, and any one changed byte or a truncation is refused.
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::test_provider::TestProvider;

    const P: TestProvider = TestProvider;

    fn binding() -> impl Strategy<Value = BlobBinding> {
        let kind = prop_oneof![
            Just(KeyKind::Root),
            Just(KeyKind::Standard),
            Just(KeyKind::TransportKey)
        ];
        (any::<[[u8; 16]; 3]>(), kind, any::<bool>()).prop_map(|([i, k, v], kind, imported)| {
            BlobBinding {
                instance: InstanceId(Uuid::from_bytes(i)),
                key: KeyId(Uuid::from_bytes(k)),
                version: VersionId(Uuid::from_bytes(v)),
                kind,
                imported,
            }
        })
    }

    /// `b` with one of its five fields changed (`which` picks the field).
    fn rebound(b: &BlobBinding, which: u8) -> BlobBinding {
        let other = |u: &Uuid| {
            let mut bytes = *u.as_bytes();
            bytes[0] ^= 1;
            Uuid::from_bytes(bytes)
        };
        let mut c = *b;
        match which % 5 {
            0 => c.instance = InstanceId(other(&b.instance.0)),
            1 => c.key = KeyId(other(&b.key.0)),
            2 => c.version = VersionId(other(&b.version.0)),
            3 => {
                c.kind = match b.kind {
                    KeyKind::Root => KeyKind::Standard,
                    KeyKind::Standard | KeyKind::TransportKey => KeyKind::Root,
                }
            }
            _ => c.imported = !b.imported,
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn key_blobs_round_trip_and_any_changed_byte_or_binding_is_refused(
            b in binding(),
            material in proptest::collection::vec(any::<u8>(), 0..96),
            salt in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            which in any::<u8>(),
        ) {
            let mk = MasterKey::from_bytes([0x42; 32]);
            let id = crate::mk_id(&P, &mk);
            let blob = seal_with(&P, &mk, id, &b, &KeyMaterial::from_slice(&material), &salt, &nonce)
                .expect("seal");
            prop_assert_eq!(blob.len(), BLOB_V1_HEADER + material.len() + TAG_LEN);
            prop_assert_eq!(blob_mk_id(&blob).expect("stamped"), id);
            let open_with = |binding: &BlobBinding, bytes: &[u8]| {
                open(&P, &mk, id, binding, bytes).map(|m| m.expose().to_vec()).ok()
            };
            prop_assert_eq!(open_with(&b, &blob), Some(material));
            let mut bad = blob.clone();
            let i = at.index(bad.len());
            bad[i] ^= flip;
            prop_assert_eq!(open_with(&b, &bad), None);
            prop_assert_eq!(open_with(&b, &blob[..blob.len() - 1]), None);
            prop_assert_eq!(open_with(&rebound(&b, which), &blob), None);
            // Under another master key it is refused as such, before any decryption.
            let other = MasterKey::from_bytes([0x43; 32]);
            let other_id = crate::mk_id(&P, &other);
            let refused = open(&P, &other, other_id, &b, &blob);
            let names_its_key = matches!(refused, Err(EngineError::WrongMasterKey { blob: s }) if s == id);
            prop_assert!(names_its_key, "{:?}", refused.map(|_| ()));
        }
    }
}
