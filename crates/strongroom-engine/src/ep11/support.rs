//! Small helpers shared by the operation families: DigestInfo prefixes, public-key
//! attributes and checksums.

use super::*;

/// The DER DigestInfo prefix of a hash (RFC 8017 §9.2, note 1), for hash-then-raw-RSA.
pub(super) fn digest_info(h: DigestAlg) -> Vec<u8> {
    let hex = match h {
        DigestAlg::Sha1 => "3021300906052b0e03021a05000414",
        DigestAlg::Sha224 => "302d300d06096086480165030402040500041c",
        _ => "",
    };
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

pub(super) fn unreachable_plan() -> Result<Vec<u8>, Ep11Error> {
    err(
        ckr::GENERAL_ERROR,
        "internal: cipher plan reached the buffered path",
    )
}

pub(super) fn key_type_of(k: AsymKind) -> Ckk {
    match k {
        AsymKind::Rsa { .. } => ckk::RSA,
        AsymKind::Ec(_) => ckk::EC,
        AsymKind::Dsa { .. } => ckk::DSA,
        AsymKind::Dh { .. } => ckk::DH,
        AsymKind::MlDsa(_) => ckk::ML_DSA,
        AsymKind::MlKem(_) => ckk::ML_KEM,
    }
}

pub(super) fn add_public_attrs(a: &mut Attrs, info: &PublicInfo) {
    match info.kind {
        AsymKind::Rsa { bits } => a.set(cka::MODULUS_BITS, AttrValue::Int(i64::from(bits))),
        AsymKind::Ec(c) => {
            a.set(cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(c)));
            if a.class() == cko::PUBLIC_KEY {
                a.set(cka::EC_POINT, AttrValue::Bytes(info.raw.clone()));
            }
        }
        AsymKind::Dsa { bits, .. } | AsymKind::Dh { bits } => {
            a.set(cka::PRIME_BITS, AttrValue::Int(i64::from(bits)))
        }
        AsymKind::MlDsa(s) => a.set(cka::PARAMETER_SET, AttrValue::ulong(ckp_of_dsa(s))),
        AsymKind::MlKem(s) => a.set(cka::PARAMETER_SET, AttrValue::ulong(ckp_of_kem(s))),
    }
}

/// CheckSum of an asymmetric key (UnwrapKey, GenerateKeyPair): SPKI ‖ bit length (4, BE).
pub(super) fn public_checksum(info: &PublicInfo) -> Vec<u8> {
    let bits = match info.kind {
        AsymKind::Rsa { bits } | AsymKind::Dsa { bits, .. } | AsymKind::Dh { bits } => bits,
        AsymKind::Ec(Curve::Ed25519 | Curve::X25519) => 255,
        AsymKind::Ec(c) => match c {
            Curve::P521 => 521,
            Curve::P384 => 384,
            Curve::Bls12381 => 381,
            _ => 256,
        },
        AsymKind::MlDsa(s) => (s.public_key_len() * 8) as u32,
        AsymKind::MlKem(s) => (s.public_key_len() * 8) as u32,
    };
    let mut out = info.spki.clone();
    out.extend_from_slice(&bits.to_be_bytes());
    out
}

/// The CKP_* number of an ML-DSA parameter set.
pub(super) fn ckp_of_dsa(s: MlDsaSet) -> u64 {
    match s {
        MlDsaSet::P44 => ckp::ML_DSA_44,
        MlDsaSet::P65 => ckp::ML_DSA_65,
        MlDsaSet::P87 => ckp::ML_DSA_87,
    }
}

/// The CKP_* number of an ML-KEM parameter set.
pub(super) fn ckp_of_kem(s: MlKemSet) -> u64 {
    match s {
        MlKemSet::K512 => ckp::ML_KEM_512,
        MlKemSet::K768 => ckp::ML_KEM_768,
        MlKemSet::K1024 => ckp::ML_KEM_1024,
    }
}
