//! The byte formats of GREP11 key objects and operation states (`docs/formats.md`):
//!
//! * sealed object (secret and private keys), format 0x0B:
//!   `0x0B ‖ class (1) ‖ attribute block length (2, BE) ‖ attribute block ‖ blob v1`, where
//!   the blob v1 holds the raw secret value or the PKCS#8 private key and is bound to the
//!   instance and to `SHA-256("strongroom/ep11/object/v1" ‖ everything before the blob)`.
//! * MACed SPKI (public keys): `SPKI ‖ OCTET STRING(master key id, 16) ‖ OCTET STRING(attribute
//!   block) ‖ OCTET STRING(MAC, 32)`; MAC = HMAC-SHA-256(HKDF(MK, "strongroom/ep11/spki-mac/v1"),
//!   "strongroom/ep11/spki/v1" ‖ instance ‖ len(SPKI) (4, BE) ‖ SPKI ‖ master key id ‖ attributes).
//!   DER readers that ignore trailing data (Go `asn1.Unmarshal`) read the SPKI.
//! * state, format 0x5B: `0x5B ‖ operation (1) ‖ blob v1` of the serialised state, bound to the
//!   instance and to `SHA-256("strongroom/ep11/state/v1" ‖ 0x5B ‖ operation)`.

use strongroom_model::{InstanceId, KeyId, KeyKind, VersionId};
use uuid::Uuid;

use crate::blob::{self, BlobBinding};
use crate::der::{self, tag};
use crate::secret::{KeyMaterial, MasterKey};
use crate::{CryptoProvider, EngineError, MkId};

use super::attrs::Attrs;

/// First byte of a sealed object.
pub const OBJECT_V1: u8 = 0x0B;
/// First byte of a state.
pub const STATE_V1: u8 = 0x5B;
const OBJECT_CONTEXT: &[u8] = b"strongroom/ep11/object/v1";
const STATE_CONTEXT: &[u8] = b"strongroom/ep11/state/v1";
const SPKI_MAC_INFO: &[u8] = b"strongroom/ep11/spki-mac/v1";
const SPKI_CONTEXT: &[u8] = b"strongroom/ep11/spki/v1";

fn binding(
    p: &dyn CryptoProvider,
    instance: InstanceId,
    context: &[u8],
    header: &[u8],
) -> BlobBinding {
    let h = p.sha256(&[context, header]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    BlobBinding {
        instance,
        key: KeyId(Uuid::from_bytes(id)),
        version: VersionId(Uuid::nil()),
        kind: KeyKind::Standard,
        imported: false,
    }
}

/// What a key blob is, read without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A sealed secret or private key.
    Sealed {
        /// Object class.
        class: u8,
        /// The bound attributes.
        attrs: Attrs,
        /// Everything before the inner blob (bound).
        header: &'a [u8],
        /// The inner blob v1.
        inner: &'a [u8],
    },
    /// A MACed SPKI.
    Public {
        /// The DER SPKI.
        spki: &'a [u8],
        /// The master key id of the MAC.
        mk: MkId,
        /// The attributes.
        attrs: Attrs,
        /// Encoded attribute block (as MACed).
        attr_block: &'a [u8],
        /// The MAC.
        mac: &'a [u8],
    },
    /// A plain DER SPKI (no MAC): usable to verify only.
    RawSpki(&'a [u8]),
}

/// Reads a key blob's structure.
pub fn parse(b: &[u8]) -> Option<Parsed<'_>> {
    match *b.first()? {
        OBJECT_V1 => {
            let class = *b.get(1)?;
            let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
            let attr_block = b.get(4..4 + len)?;
            let attrs = Attrs::decode(attr_block)?;
            let (header, inner) = b.split_at(4 + len);
            Some(Parsed::Sealed {
                class,
                attrs,
                header,
                inner,
            })
        }
        tag::SEQUENCE => {
            let n = der::tlv_len(b)?;
            let (spki, trailer) = b.split_at(n);
            if trailer.is_empty() {
                return Some(Parsed::RawSpki(spki));
            }
            let (mk, rest) = der::expect(trailer, tag::OCTET_STRING)?;
            let (attr_block, rest) = der::expect(rest, tag::OCTET_STRING)?;
            let (mac, rest) = der::expect(rest, tag::OCTET_STRING)?;
            if !rest.is_empty() || mac.len() != 32 {
                return None;
            }
            Some(Parsed::Public {
                spki,
                mk: MkId(mk.try_into().ok()?),
                attrs: Attrs::decode(attr_block)?,
                attr_block,
                mac,
            })
        }
        _ => None,
    }
}

/// Splits bytes made of several public key blobs joined end to end (IBM's second BLS
/// verification form: a KeyBlob whose first blob is the signers' public key blobs joined).
/// None unless there are at least two, each a whole public key blob.
pub fn split_public_blobs(mut b: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if *b.first()? != tag::SEQUENCE {
            return None;
        }
        let spki_len = der::tlv_len(b)?;
        let mut rest = b.get(spki_len..)?;
        for _ in 0..3 {
            let (_, r) = der::expect(rest, tag::OCTET_STRING)?;
            rest = r;
        }
        let (one, tail) = b.split_at(b.len() - rest.len());
        if !matches!(parse(one)?, Parsed::Public { .. }) {
            return None;
        }
        out.push(one);
        b = tail;
    }
    (out.len() >= 2).then_some(out)
}

/// The master key id a blob depends on (None for a raw SPKI).
pub fn mk_of(b: &[u8]) -> Result<Option<MkId>, EngineError> {
    match parse(b).ok_or(EngineError::BlobMalformed)? {
        Parsed::Sealed { inner, .. } => blob::blob_mk_id(inner).map(Some),
        Parsed::Public { mk, .. } => Ok(Some(mk)),
        Parsed::RawSpki(_) => Ok(None),
    }
}

/// Seals a secret or private key.
pub(crate) fn seal_object(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    attrs: &Attrs,
    material: &KeyMaterial,
) -> Result<Vec<u8>, EngineError> {
    let block = attrs.encode();
    let len = u16::try_from(block.len()).map_err(|_| EngineError::BlobMalformed)?;
    let mut out = Vec::with_capacity(4 + block.len() + 77 + material.len());
    out.push(OBJECT_V1);
    out.push(u8::try_from(attrs.class().0).map_err(|_| EngineError::BlobMalformed)?);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&block);
    let inner = seal_bound(p, mk, mk_id, instance, OBJECT_CONTEXT, &out, material)?;
    out.extend_from_slice(&inner);
    Ok(out)
}

/// Opens a sealed object under `mk` (the caller picked the register by the stamped id).
pub(crate) fn open_object(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    header: &[u8],
    inner: &[u8],
) -> Result<KeyMaterial, EngineError> {
    let b = binding(p, instance, OBJECT_CONTEXT, header);
    blob::open(p, mk, mk_id, &b, inner)
}

fn spki_mac(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    spki: &[u8],
    attr_block: &[u8],
) -> Result<[u8; 32], EngineError> {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    p.hkdf_sha256(&[], mk.expose(), SPKI_MAC_INFO, k.as_mut())?;
    let len = u32::try_from(spki.len()).map_err(|_| EngineError::BlobMalformed)?;
    Ok(p.hmac_sha256(
        k.as_ref(),
        &[
            SPKI_CONTEXT,
            instance.as_bytes(),
            &len.to_be_bytes(),
            spki,
            &mk_id.0,
            attr_block,
        ],
    ))
}

/// Builds a MACed SPKI.
pub(crate) fn mac_spki(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    spki: &[u8],
    attrs: &Attrs,
) -> Result<Vec<u8>, EngineError> {
    let block = attrs.encode();
    let mac = spki_mac(p, mk, mk_id, instance, spki, &block)?;
    let mut out = spki.to_vec();
    der::write_tlv(&mut out, tag::OCTET_STRING, &mk_id.0);
    der::write_tlv(&mut out, tag::OCTET_STRING, &block);
    der::write_tlv(&mut out, tag::OCTET_STRING, &mac);
    Ok(out)
}

/// Checks the MAC of a MACed SPKI.
pub(crate) fn check_spki(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    spki: &[u8],
    attr_block: &[u8],
    mac: &[u8],
) -> Result<(), EngineError> {
    let want = spki_mac(p, mk, mk_id, instance, spki, attr_block)?;
    if p.ct_eq(&want, mac) {
        Ok(())
    } else {
        Err(EngineError::BlobAuthFailed)
    }
}

/// A blob v1 of `material` bound to the instance and to `context ‖ header`.
fn seal_bound(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    context: &[u8],
    header: &[u8],
    material: &KeyMaterial,
) -> Result<Vec<u8>, EngineError> {
    let b = binding(p, instance, context, header);
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    p.fill_random(&mut salt)?;
    p.fill_random(&mut nonce)?;
    blob::seal_with(p, mk, mk_id, &b, material, &salt, &nonce)
}

/// Seals an operation state.
pub(crate) fn seal_state(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    op: u8,
    body: &KeyMaterial,
) -> Result<Vec<u8>, EngineError> {
    let header = [STATE_V1, op];
    let inner = seal_bound(p, mk, mk_id, instance, STATE_CONTEXT, &header, body)?;
    let mut out = header.to_vec();
    out.extend_from_slice(&inner);
    Ok(out)
}

/// The operation a state belongs to, and its inner blob, without opening it.
pub fn state_op(state: &[u8]) -> Option<(u8, &[u8])> {
    match state {
        [STATE_V1, op, inner @ ..] => Some((*op, inner)),
        _ => None,
    }
}

/// Opens a state's inner blob.
pub(crate) fn open_state(
    p: &dyn CryptoProvider,
    mk: &MasterKey,
    mk_id: MkId,
    instance: InstanceId,
    op: u8,
    inner: &[u8],
) -> Result<KeyMaterial, EngineError> {
    let b = binding(p, instance, STATE_CONTEXT, &[STATE_V1, op]);
    blob::open(p, mk, mk_id, &b, inner)
}

#[cfg(test)]
mod tests {
    //! Property tests of the sealed formats: a key object, an operation State and a WDEK
    //! open to what was sealed, and any one changed byte is refused.
    use proptest::prelude::*;
    use strongroom_model::VersionId;

    use super::*;
    use crate::envelope::{self, WrappingKey};
    use crate::ep11::{cka, cko, AttrValue, Cka};
    use crate::test_provider::TestProvider;

    const P: TestProvider = TestProvider;

    fn unit() -> (MasterKey, MkId, InstanceId) {
        let mk = MasterKey::from_bytes([0x42; 32]);
        let id = crate::mk_id(&P, &mk);
        (mk, id, InstanceId(Uuid::from_bytes([7; 16])))
    }

    fn attrs() -> impl Strategy<Value = Attrs> {
        let value = prop_oneof![
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(AttrValue::Bytes),
        ];
        proptest::collection::btree_map((1u64..0x200).prop_map(Cka), value, 0..6).prop_map(|m| {
            let mut a = Attrs(m);
            a.set(cka::CLASS, AttrValue::Int(cko::SECRET_KEY.0 as i64));
            a
        })
    }

    /// `bytes` with one byte changed (`flip` is never 0).
    fn changed(bytes: &[u8], at: prop::sample::Index, flip: u8) -> Vec<u8> {
        let mut bad = bytes.to_vec();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        bad
    }

    /// Opens a key object as the engine does: parse, then open the inner blob.
    fn open_key(blob: &[u8]) -> Option<(Attrs, Vec<u8>)> {
        let (mk, id, instance) = unit();
        let Parsed::Sealed {
            attrs,
            header,
            inner,
            ..
        } = parse(blob)?
        else {
            return None;
        };
        let m = open_object(&P, &mk, id, instance, header, inner).ok()?;
        Some((attrs, m.expose().to_vec()))
    }

    fn open_state_blob(state: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (mk, id, instance) = unit();
        let (op, inner) = state_op(state)?;
        let body = open_state(&P, &mk, id, instance, op, inner).ok()?;
        Some((op, body.expose().to_vec()))
    }

    /// Opens a MACed public key blob: its SPKI and attributes, if the MAC checks.
    fn open_public(blob: &[u8]) -> Option<(Vec<u8>, Attrs)> {
        let (mk, id, instance) = unit();
        let Parsed::Public {
            spki,
            mk: stamped,
            attrs,
            attr_block,
            mac,
        } = parse(blob)?
        else {
            return None;
        };
        check_spki(&P, &mk, stamped, instance, spki, attr_block, mac).ok()?;
        (stamped == id).then(|| (spki.to_vec(), attrs))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn key_objects_round_trip_and_any_changed_byte_is_refused(
            a in attrs(),
            material in proptest::collection::vec(any::<u8>(), 1..80),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mk, id, instance) = unit();
            let blob = seal_object(&P, &mk, id, instance, &a, &KeyMaterial::from_slice(&material))
                .expect("seal");
            prop_assert_eq!(open_key(&blob), Some((a, material)));
            let bad = changed(&blob, at, flip);
            prop_assert_eq!(open_key(&bad), None);
            prop_assert_eq!(open_key(&blob[..blob.len() - 1]), None);
        }

        #[test]
        fn maced_public_keys_round_trip_and_any_changed_byte_is_refused(
            a in attrs(),
            inner in proptest::collection::vec(any::<u8>(), 1..120),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mk, id, instance) = unit();
            let mut spki = vec![tag::SEQUENCE, u8::try_from(inner.len()).expect("short")];
            spki.extend_from_slice(&inner);
            let blob = mac_spki(&P, &mk, id, instance, &spki, &a).expect("mac");
            prop_assert_eq!(open_public(&blob), Some((spki, a)));
            let bad = changed(&blob, at, flip);
            // Whatever the change, no MACed key comes out (a change may leave a plain SPKI,
            // which the engine accepts to verify with only, without attributes).
            prop_assert_eq!(open_public(&bad), None);
        }

        #[test]
        fn states_round_trip_and_any_changed_byte_is_refused(
            op in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..200),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mk, id, instance) = unit();
            let state = seal_state(&P, &mk, id, instance, op, &KeyMaterial::from_slice(&body))
                .expect("seal");
            prop_assert_eq!(open_state_blob(&state), Some((op, body)));
            let bad = changed(&state, at, flip);
            prop_assert_eq!(open_state_blob(&bad), None);
        }

        #[test]
        fn wdeks_round_trip_and_any_changed_byte_is_refused(
            dek in proptest::collection::vec(any::<u8>(), 1..64),
            aad in proptest::collection::vec("[a-z0-9-]{0,12}", 0..3),
            handle in any::<[u8; 16]>(),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let wk = WrappingKey::new(&P, &KeyMaterial::from_slice(&[0x24; 32])).expect("key");
            let open = |w: &[u8]| -> Option<(VersionId, Vec<u8>)> {
                let parsed = envelope::Wdek::parse(w).ok()?;
                let dek = envelope::unwrap(&wk, &parsed, &aad).ok()?;
                Some((parsed.handle, dek.to_vec()))
            };
            let handle = VersionId(Uuid::from_bytes(handle));
            let w = envelope::wrap(&P, &wk, handle, &dek, &aad).expect("wrap");
            prop_assert_eq!(open(&w), Some((handle, dek)));
            let bad = changed(&w, at, flip);
            prop_assert_eq!(open(&bad), None);
        }
    }
}
