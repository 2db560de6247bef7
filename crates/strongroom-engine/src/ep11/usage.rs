//! Whether a key may serve an operation: usage attributes, key types against plans,
//! signature sizes.

use super::*;

/// The usage attribute an operation needs.
pub(super) fn usage_attr(op: Op) -> (Cka, &'static str) {
    match op {
        Op::Encrypt => (cka::ENCRYPT, "CKA_ENCRYPT"),
        Op::Decrypt => (cka::DECRYPT, "CKA_DECRYPT"),
        Op::Sign => (cka::SIGN, "CKA_SIGN"),
        Op::Verify => (cka::VERIFY, "CKA_VERIFY"),
        Op::Digest => (cka::DERIVE, "CKA_DERIVE"),
    }
}

/// Whether `k` may serve `mech` in the use `attr` (named `name`) stands for: the usage
/// attribute is true, and the key's CKA_ALLOWED_MECHANISMS names `mech` (or is absent).
pub(super) fn permit(k: &Resolved, attr: Cka, name: &str, mech: Ckm) -> Result<(), Ep11Error> {
    if !k.attrs.flag(attr) {
        return err(
            ckr::KEY_FUNCTION_NOT_PERMITTED,
            format!("the key's {name} attribute is false"),
        );
    }
    if !k.attrs.allows(mech) {
        return err(
            ckr::MECHANISM_INVALID,
            format!("the key's CKA_ALLOWED_MECHANISMS does not name mechanism 0x{mech:x}"),
        );
    }
    Ok(())
}

/// Whether the key `k` may leave wrapped under `w`: it is extractable, and a key marked
/// `CKA_WRAP_WITH_TRUSTED` goes only to a `CKA_TRUSTED` wrapping key. Every wrap (plain or
/// attribute-bound) asks this.
pub(super) fn may_wrap(k: &Resolved, w: &Resolved) -> Result<(), Ep11Error> {
    if !k.attrs.flag(cka::EXTRACTABLE) {
        return err(
            ckr::KEY_UNEXTRACTABLE,
            "the key's CKA_EXTRACTABLE attribute is false",
        );
    }
    if k.attrs.flag(cka::WRAP_WITH_TRUSTED) && !w.attrs.flag(cka::TRUSTED) {
        return err(
            ckr::KEY_NOT_WRAPPABLE,
            "the key may only be wrapped by a CKA_TRUSTED key",
        );
    }
    Ok(())
}

/// Whether the attributes pair CKA_TRUSTED with CKA_DECRYPT: a trusted key that decrypts
/// would decrypt what it wrapped, and so hand out the keys CKA_WRAP_WITH_TRUSTED protects.
pub(super) fn decrypting_trust(a: &Attrs) -> bool {
    a.flag(cka::TRUSTED) && a.flag(cka::DECRYPT)
}

/// The refusal of [`decrypting_trust`].
pub(super) fn decrypting_trust_refused() -> Ep11Error {
    Ep11Error::new(
        ckr::TEMPLATE_INCONSISTENT,
        "a CKA_TRUSTED key cannot have CKA_DECRYPT: it could decrypt the keys it wraps",
    )
}

/// Refuses a derived key (template `t`) that would be easier to take out than `source`, a
/// key whose value goes into it (`which` names it): not extractable if the source is not,
/// and, if the source may be wrapped only by trusted keys, not otherwise. Without this,
/// `CONCATENATE_BASE_AND_DATA` or an XOR with zeros would copy a key out from under its
/// protection.
pub(super) fn no_easier_to_export(
    source: &Resolved,
    t: &Template,
    which: &str,
) -> Result<(), Ep11Error> {
    if !attrs::flag_of(t, cka::EXTRACTABLE) {
        return Ok(());
    }
    if !source.attrs.flag(cka::EXTRACTABLE) {
        return err(
            ckr::TEMPLATE_INCONSISTENT,
            format!("the {which} is not extractable, so a key derived from it cannot be"),
        );
    }
    if source.attrs.flag(cka::WRAP_WITH_TRUSTED) && !attrs::flag_of(t, cka::WRAP_WITH_TRUSTED) {
        return err(
            ckr::TEMPLATE_INCONSISTENT,
            format!(
                "the {which} may be wrapped only by trusted keys, so a key derived from it \
                 must have CKA_WRAP_WITH_TRUSTED too (or not be extractable)"
            ),
        );
    }
    Ok(())
}

pub(super) fn type_mismatch(plan: &Plan) -> Ep11Error {
    Ep11Error::new(
        ckr::KEY_TYPE_INCONSISTENT,
        format!(
            "the key's type does not fit the mechanism ({})",
            plan_name(plan)
        ),
    )
}

pub(super) fn plan_name(plan: &Plan) -> &'static str {
    match plan {
        Plan::Cipher {
            cipher: BlockCipher::Aes,
            ..
        }
        | Plan::Gcm { .. } => "an AES key is needed",
        Plan::Cipher { .. } => "a DES2 or DES3 key is needed",
        Plan::Rsa { .. } => "an RSA key is needed",
        Plan::Digest(_) => "no key",
        Plan::EcMultiply => "an EC private key on P-256, P-384, P-521 or secp256k1 is needed",
        Plan::Sign {
            scheme: SignScheme::DsaDigest,
            ..
        } => "a DSA key is needed",
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Aes),
            ..
        } => "an AES key is needed",
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Des3),
            ..
        } => "a DES3 key is needed",
        Plan::Mac { .. } => "a secret key is needed",
        Plan::Sign {
            scheme:
                SignScheme::RsaPkcs1(_)
                | SignScheme::RsaPss(_)
                | SignScheme::RsaPssWith { .. }
                | SignScheme::RsaPkcs1Raw
                | SignScheme::RsaX931,
            ..
        } => "an RSA key is needed",
        Plan::Sign {
            scheme: SignScheme::EcdsaDigest,
            ..
        } => "an EC key on P-256, P-384, P-521 or secp256k1 is needed",
        Plan::Sign {
            scheme: SignScheme::Ed25519,
            ..
        } => "an Ed25519 key is needed",
        Plan::Sign {
            scheme: SignScheme::Bip340,
            ..
        } => "BIP340 Schnorr signs with a secp256k1 key",
        Plan::Sign {
            scheme: SignScheme::Bls,
            ..
        } => "BLS signs with a BLS12-381 key",
        Plan::Sign {
            scheme: SignScheme::EcSdsa(_),
            ..
        } => "EC-SDSA signs with a P-256 or secp256k1 key",
        Plan::Sign {
            scheme: SignScheme::MlDsa,
            ..
        } => "an ML-DSA key is needed",
    }
}

pub(super) fn kind_of(k: &Resolved) -> Option<AsymKind> {
    match &k.body {
        Body::Private(p) => Some(p.public().kind),
        Body::Public(p) => Some(p.kind),
        Body::Secret(_) => None,
    }
}

/// Checks that the key fits the plan (type and, for asymmetric keys, the half needed).
pub(super) fn fits(plan: &Plan, op: Op, k: &Resolved) -> Result<(), Ep11Error> {
    let kt = k.attrs.key_type();
    let private_op = matches!(op, Op::Decrypt | Op::Sign);
    let ok = match plan {
        Plan::Cipher {
            cipher: BlockCipher::Aes,
            ..
        }
        | Plan::Gcm { .. } => kt == ckk::AES && matches!(k.body, Body::Secret(_)),
        Plan::Cipher { .. } => {
            matches!(kt, ckk::DES2 | ckk::DES3) && matches!(k.body, Body::Secret(_))
        }
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Aes),
            ..
        } => kt == ckk::AES,
        Plan::Mac {
            alg: MacAlg::Cmac(BlockCipher::Des3),
            ..
        } => kt == ckk::DES3,
        Plan::Mac { .. } => {
            matches!(k.body, Body::Secret(_)) && !matches!(kt, ckk::DES2 | ckk::DES3)
        }
        Plan::Rsa { .. }
        | Plan::Sign {
            scheme:
                SignScheme::RsaPkcs1(_)
                | SignScheme::RsaPss(_)
                | SignScheme::RsaPssWith { .. }
                | SignScheme::RsaPkcs1Raw
                | SignScheme::RsaX931,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Rsa { .. }))
        }
        Plan::Sign {
            scheme: SignScheme::EcdsaDigest,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Ec(c)) if c.is_ecdsa())
        }
        Plan::Sign {
            scheme: SignScheme::DsaDigest,
            ..
        } => matches!(kind_of(k), Some(AsymKind::Dsa { .. })),
        Plan::Sign {
            scheme: SignScheme::Ed25519,
            ..
        } => {
            matches!(kind_of(k), Some(AsymKind::Ec(Curve::Ed25519)))
        }
        Plan::Sign {
            scheme: SignScheme::MlDsa,
            ..
        } => matches!(kind_of(k), Some(AsymKind::MlDsa(_))),
        Plan::Sign {
            scheme: SignScheme::Bip340,
            ..
        } => matches!(kind_of(k), Some(AsymKind::Ec(Curve::Secp256k1))),
        Plan::Sign {
            scheme: SignScheme::Bls,
            ..
        } => matches!(kind_of(k), Some(AsymKind::Ec(Curve::Bls12381))),
        Plan::Sign {
            scheme: SignScheme::EcSdsa(_),
            ..
        } => matches!(
            kind_of(k),
            Some(AsymKind::Ec(Curve::P256 | Curve::Secp256k1))
        ),
        Plan::Digest(_) => true,
        Plan::EcMultiply => {
            matches!(&k.body, Body::Private(_))
                && matches!(kind_of(k), Some(AsymKind::Ec(c)) if c.is_ecdsa())
        }
    };
    if !ok {
        return Err(type_mismatch(plan));
    }
    let asym = matches!(
        plan,
        Plan::Rsa { .. }
            | Plan::Sign {
                scheme: SignScheme::RsaPkcs1(_)
                    | SignScheme::RsaPss(_)
                    | SignScheme::RsaPssWith { .. }
                    | SignScheme::RsaPkcs1Raw
                    | SignScheme::RsaX931
                    | SignScheme::EcdsaDigest
                    | SignScheme::DsaDigest
                    | SignScheme::Ed25519
                    | SignScheme::Bip340
                    | SignScheme::Bls
                    | SignScheme::EcSdsa(_)
                    | SignScheme::MlDsa,
                ..
            }
    );
    if asym {
        match (&k.body, private_op) {
            (Body::Private(_), true) | (Body::Public(_), false) => {}
            (_, true) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    format!("{} needs the private key", op.name()),
                )
            }
            (_, false) => {
                return err(
                    ckr::KEY_TYPE_INCONSISTENT,
                    format!("{} needs the public key", op.name()),
                )
            }
        }
    }
    Ok(())
}

/// ECDSA input rule: a digest longer than the curve's is cut to its leading bytes, a
/// shorter one is left-padded with zeros (standard ECDSA truncation for byte lengths).
pub(super) fn fit_digest(curve: Curve, d: &[u8]) -> Result<Vec<u8>, Ep11Error> {
    let n = curve.digest_len();
    if d.is_empty() {
        return err(ckr::DATA_LEN_RANGE, "CKM_ECDSA needs a non-empty digest");
    }
    if d.len() > n && curve == Curve::P521 {
        return err(
            ckr::DATA_LEN_RANGE,
            "CKM_ECDSA on P-521 takes at most 64 bytes",
        );
    }
    if d.len() >= n {
        return Ok(d[..n].to_vec());
    }
    let mut v = vec![0u8; n - d.len()];
    v.extend_from_slice(d);
    Ok(v)
}

pub(super) fn sig_len(k: &Resolved, scheme: SignScheme) -> usize {
    match (kind_of(k), scheme) {
        (Some(AsymKind::Rsa { bits }), _) => (bits as usize).div_ceil(8),
        (Some(AsymKind::Dsa { q_len, .. }), _) => 2 * usize::from(q_len),
        (Some(AsymKind::Ec(Curve::Ed25519)), _) => 64,
        (Some(AsymKind::Ec(c)), _) => 2 * c.field_len(),
        (Some(AsymKind::MlDsa(s)), _) => s.signature_len(),
        _ => 0,
    }
}
