//! `CKM_IBM_ATTRIBUTEBOUND_WRAP`: a key exported together with its attributes, so that an
//! unwrap restores it with exactly those attributes. IBM's byte format is internal to the
//! HSM; Strongroom's (`docs/formats.md`, "attribute-bound wrap v1") is:
//!
//! ```text
//! "SRAB" ‖ 0x01 ‖ kek kind (1 = AES, 2 = RSA) ‖ len(ek) (2, BE) ‖ ek ‖ nonce (12) ‖
//! len(ct) (4, BE) ‖ ct ‖ mac (32)
//! ```
//!
//! The content `class (1) ‖ len(attrs) (2, BE) ‖ attribute block ‖ key material` is sealed
//! with AES-256-GCM under a content key: the AES wrapping key itself (`ek` empty), or a
//! random key encrypted to the RSA wrapping key with RSA-OAEP-SHA-256 (`ek`). The header
//! (everything before `ct`) is the GCM associated data. `mac` = HMAC-SHA-256 with the MAC
//! key's value over `"strongroom/ep11/attrbound/v1"` and everything before it. Wrapped key,
//! wrapping key and MAC key must all carry `CKA_IBM_ATTRBOUND = true`.

use zeroize::Zeroizing;

use super::attrs::Attrs;
use super::consts::{cka, ckm, cko, ckr, Ckk, Cko};
use super::Ep11;
use super::{err, may_wrap, permit, Body, Ep11Error, NewKey, Resolved, Role};
use crate::provider::{AeadAlg, AsymKind, DigestAlg, RsaPadding};
use crate::secret::KeyMaterial;

const MAGIC: &[u8] = b"SRAB";
const CONTEXT: &[u8] = b"strongroom/ep11/attrbound/v1";

fn bound(k: &Resolved, what: &str) -> Result<(), Ep11Error> {
    if k.attrs.flag(cka::IBM_ATTRBOUND) {
        Ok(())
    } else {
        err(
            ckr::KEY_FUNCTION_NOT_PERMITTED,
            format!("CKM_IBM_ATTRIBUTEBOUND_WRAP needs CKA_IBM_ATTRBOUND=true on the {what}"),
        )
    }
}

fn mac_value(m: &Resolved) -> Result<&[u8], Ep11Error> {
    match &m.body {
        Body::Secret(v) => Ok(v.expose()),
        _ => err(
            ckr::KEY_TYPE_INCONSISTENT,
            "the MAC key of an attribute-bound wrap is a secret key",
        ),
    }
}

fn bad() -> Ep11Error {
    Ep11Error::new(
        ckr::WRAPPED_KEY_INVALID,
        "the attribute-bound wrapped key cannot be unwrapped with these keys",
    )
}

impl Ep11<'_> {
    pub(super) fn attrbound_wrap(
        &self,
        key: &[u8],
        kek: &[u8],
        mac_key: &[u8],
    ) -> Result<Vec<u8>, Ep11Error> {
        let p = self.provider.as_ref();
        let k = self.resolve(key, Role::Key)?;
        let w = self.resolve(kek, Role::Wrapping)?;
        let m = self.resolve(mac_key, Role::Key)?;
        bound(&k, "key")?;
        bound(&w, "wrapping key")?;
        bound(&m, "MAC key")?;
        permit(&w, cka::WRAP, "CKA_WRAP", ckm::IBM_ATTRIBUTEBOUND_WRAP)?;
        may_wrap(&k, &w)?;
        let material: Zeroizing<Vec<u8>> = match &k.body {
            Body::Secret(v) => Zeroizing::new(v.expose().to_vec()),
            Body::Private(pk) => Zeroizing::new(pk.pkcs8().to_vec()),
            Body::Public(_) => return err(ckr::KEY_NOT_WRAPPABLE, "public keys are not wrapped"),
        };
        let block = k.attrs.encode();
        let mut content = Zeroizing::new(Vec::with_capacity(3 + block.len() + material.len()));
        content.push(u8::try_from(k.attrs.class().0).map_err(|_| bad())?);
        content.extend_from_slice(&u16::try_from(block.len()).map_err(|_| bad())?.to_be_bytes());
        content.extend_from_slice(&block);
        content.extend_from_slice(&material);
        let fail = |_| Ep11Error::new(ckr::GENERAL_ERROR, "attribute-bound wrap failed");
        let (kind, cek, ek): (u8, Zeroizing<Vec<u8>>, Vec<u8>) = match (&w.body, w.attrs.key_type())
        {
            (Body::Secret(v), super::consts::ckk::AES) => {
                (1, Zeroizing::new(v.expose().to_vec()), Vec::new())
            }
            (Body::Public(info), _) if matches!(info.kind, AsymKind::Rsa { .. }) => {
                let mut cek = Zeroizing::new(vec![0u8; 32]);
                p.fill_random(&mut cek).map_err(fail)?;
                let ek = p
                    .rsa_encrypt(RsaPadding::Oaep(DigestAlg::Sha256), info, &[], &cek)
                    .map_err(fail)?;
                (2, cek, ek)
            }
            _ => return err(
                ckr::WRAPPING_KEY_TYPE_INCONSISTENT,
                "the wrapping key of an attribute-bound wrap is an AES key or an RSA public key",
            ),
        };
        let mut out = MAGIC.to_vec();
        out.push(1);
        out.push(kind);
        out.extend_from_slice(&u16::try_from(ek.len()).map_err(|_| bad())?.to_be_bytes());
        out.extend_from_slice(&ek);
        let mut nonce = [0u8; 12];
        p.fill_random(&mut nonce).map_err(fail)?;
        out.extend_from_slice(&nonce);
        let aead = p.aead_key(AeadAlg::AesGcm, &cek).map_err(fail)?;
        let mut ct = content.to_vec();
        aead.seal(&nonce, &out, &mut ct).map_err(fail)?;
        out.extend_from_slice(&u32::try_from(ct.len()).map_err(|_| bad())?.to_be_bytes());
        out.extend_from_slice(&ct);
        let mac = p.hmac_sha256(mac_value(&m)?, &[CONTEXT, &out]);
        out.extend_from_slice(&mac);
        Ok(out)
    }

    pub(super) fn attrbound_unwrap(
        &self,
        kek: &[u8],
        mac_key: &[u8],
        wrapped: &[u8],
        key_type: Option<Ckk>,
    ) -> Result<NewKey, Ep11Error> {
        let p = self.provider.as_ref();
        let w = self.resolve(kek, Role::Unwrapping)?;
        let m = self.resolve(mac_key, Role::Key)?;
        bound(&w, "unwrapping key")?;
        bound(&m, "MAC key")?;
        permit(&w, cka::UNWRAP, "CKA_UNWRAP", ckm::IBM_ATTRIBUTEBOUND_WRAP)?;
        if wrapped.len() < 4 + 2 + 2 + 12 + 4 + 32 || !wrapped.starts_with(MAGIC) || wrapped[4] != 1
        {
            return Err(bad());
        }
        let (body, mac) = wrapped.split_at(wrapped.len() - 32);
        if !p.ct_eq(&p.hmac_sha256(mac_value(&m)?, &[CONTEXT, body]), mac) {
            return Err(bad());
        }
        let kind = body[5];
        let ek_len = usize::from(u16::from_be_bytes([body[6], body[7]]));
        let rest = body.get(8..).ok_or_else(bad)?;
        let (ek, rest) = (
            rest.get(..ek_len).ok_or_else(bad)?,
            rest.get(ek_len..).ok_or_else(bad)?,
        );
        let nonce: [u8; 12] = rest
            .get(..12)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        let ct_len = u32::from_be_bytes(
            rest.get(12..16)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let ct = rest.get(16..).ok_or_else(bad)?;
        if ct.len() != ct_len {
            return Err(bad());
        }
        // The GCM associated data: everything before len(ct).
        let header = &body[..body.len() - ct.len() - 4];
        let cek: Zeroizing<Vec<u8>> = match (kind, &w.body) {
            (1, Body::Secret(v)) if ek.is_empty() => Zeroizing::new(v.expose().to_vec()),
            (2, Body::Private(pk)) => pk
                .rsa_decrypt(RsaPadding::Oaep(DigestAlg::Sha256), &[], ek)
                .map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let aead = p.aead_key(AeadAlg::AesGcm, &cek).map_err(|_| bad())?;
        let mut content = Zeroizing::new(ct.to_vec());
        aead.open(&nonce, header, &mut content).map_err(|_| bad())?;
        let class = Cko(u64::from(*content.first().ok_or_else(bad)?));
        let block_len = usize::from(u16::from_be_bytes([
            *content.get(1).ok_or_else(bad)?,
            *content.get(2).ok_or_else(bad)?,
        ]));
        let block = content.get(3..3 + block_len).ok_or_else(bad)?;
        let mut attrs = Attrs::decode(block).ok_or_else(bad)?;
        let material = KeyMaterial::from_slice(content.get(3 + block_len..).ok_or_else(bad)?);
        if attrs.class() != class || !matches!(class, cko::SECRET_KEY | cko::PRIVATE_KEY) {
            return Err(bad());
        }
        if key_type.is_some_and(|kt| kt != attrs.key_type()) {
            return err(
                ckr::TEMPLATE_INCONSISTENT,
                "CKA_KEY_TYPE does not match the bound attributes",
            );
        }
        attrs.set(cka::LOCAL, super::AttrValue::Bool(false));
        attrs.set(cka::NEVER_EXTRACTABLE, super::AttrValue::Bool(false));
        if class == cko::SECRET_KEY {
            let checksum = self.check_value(attrs.key_type(), material.expose());
            let blob = self.seal_key(&attrs, &material)?;
            return Ok(NewKey {
                blob,
                checksum,
                attrs,
            });
        }
        let pk = p.prepare_private(material.expose()).map_err(|_| bad())?;
        let checksum = super::public_checksum(pk.public());
        let blob = self.seal_key(&attrs, &material)?;
        Ok(NewKey {
            blob,
            checksum,
            attrs,
        })
    }
}
