//! The mechanism table GREP11 answers with (GetMechanismList, GetMechanismInfo), and
//! the curve parameters.

use super::*;

/// A mechanism this server implements: code, CKF_* flags, min and max key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechInfo {
    /// CKM_* code.
    pub code: Ckm,
    /// Smallest key (bits for RSA/EC, bytes for secret keys).
    pub min: u64,
    /// Largest key.
    pub max: u64,
    /// CKF_* flags.
    pub flags: u64,
}

pub(super) const fn mi(code: Ckm, min: u64, max: u64, flags: u64) -> MechInfo {
    MechInfo {
        code,
        min,
        max,
        flags,
    }
}

pub(super) const ED: u64 = ckf::ENCRYPT | ckf::DECRYPT;
pub(super) const EDWU: u64 = ED | ckf::WRAP | ckf::UNWRAP;
pub(super) const SV: u64 = ckf::SIGN | ckf::VERIFY;
pub(super) const EC_FLAGS: u64 = ckf::EC_F_P | ckf::EC_NAMEDCURVE | ckf::EC_UNCOMPRESS;

/// Every mechanism implemented, in the order GetMechanismList reports them (CKM_RSA_PKCS
/// first, as IBM's examples expect).
pub const MECHANISMS: &[MechInfo] = &[
    mi(ckm::RSA_PKCS, 2048, 8192, EDWU | SV),
    mi(
        ckm::RSA_PKCS_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::RSA_PKCS_OAEP, 2048, 8192, EDWU),
    mi(ckm::RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_PKCS, 2048, 8192, SV),
    mi(
        ckm::RSA_X9_31_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::RSA_X9_31, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_X9_31, 2048, 8192, SV),
    mi(ckm::DSA_KEY_PAIR_GEN, 2048, 3072, ckf::GENERATE_KEY_PAIR),
    mi(ckm::DSA, 2048, 3072, SV),
    mi(ckm::DSA_SHA1, 2048, 3072, SV),
    mi(ckm::DSA_SHA224, 2048, 3072, SV),
    mi(ckm::DSA_SHA256, 2048, 3072, SV),
    mi(ckm::DSA_SHA384, 2048, 3072, SV),
    mi(ckm::DSA_SHA512, 2048, 3072, SV),
    mi(
        ckm::DH_PKCS_KEY_PAIR_GEN,
        2048,
        8192,
        ckf::GENERATE_KEY_PAIR,
    ),
    mi(ckm::DH_PKCS_DERIVE, 2048, 8192, ckf::DERIVE),
    mi(ckm::SHA224_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA256_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA384_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA512_RSA_PKCS, 2048, 8192, SV),
    mi(ckm::SHA1_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA224_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA256_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA384_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA512_RSA_PKCS_PSS, 2048, 8192, SV),
    mi(ckm::SHA512_224, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_224_HMAC, 1, 512, SV),
    mi(ckm::SHA512_224_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA512_256, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_256_HMAC, 1, 512, SV),
    mi(ckm::SHA512_256_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::DES2_KEY_GEN, 16, 16, ckf::GENERATE),
    mi(ckm::DES3_KEY_GEN, 24, 24, ckf::GENERATE),
    mi(ckm::DES3_ECB, 16, 24, EDWU),
    mi(ckm::DES3_CBC, 16, 24, EDWU),
    mi(ckm::DES3_CBC_PAD, 16, 24, EDWU),
    mi(ckm::DES3_CMAC, 24, 24, SV),
    mi(ckm::SHA_1, 0, 0, ckf::DIGEST),
    mi(ckm::SHA_1_HMAC, 1, 512, SV),
    mi(ckm::SHA_1_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA256, 0, 0, ckf::DIGEST),
    mi(ckm::SHA256_HMAC, 1, 512, SV),
    mi(ckm::SHA256_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA224, 0, 0, ckf::DIGEST),
    mi(ckm::SHA224_HMAC, 1, 512, SV),
    mi(ckm::SHA224_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA384, 0, 0, ckf::DIGEST),
    mi(ckm::SHA384_HMAC, 1, 512, SV),
    mi(ckm::SHA384_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::SHA512, 0, 0, ckf::DIGEST),
    mi(ckm::SHA512_HMAC, 1, 512, SV),
    mi(ckm::SHA512_HMAC_GENERAL, 1, 512, SV),
    mi(ckm::GENERIC_SECRET_KEY_GEN, 1, 512, ckf::GENERATE),
    mi(ckm::CONCATENATE_BASE_AND_KEY, 1, 512, ckf::DERIVE),
    mi(ckm::CONCATENATE_BASE_AND_DATA, 1, 512, ckf::DERIVE),
    mi(ckm::CONCATENATE_DATA_AND_BASE, 1, 512, ckf::DERIVE),
    mi(ckm::XOR_BASE_AND_DATA, 1, 512, ckf::DERIVE),
    mi(ckm::SHA1_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA256_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA384_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA512_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(ckm::SHA224_KEY_DERIVATION, 1, 512, ckf::DERIVE),
    mi(
        ckm::EC_KEY_PAIR_GEN,
        256,
        521,
        ckf::GENERATE_KEY_PAIR | EC_FLAGS,
    ),
    mi(ckm::ECDSA, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA1, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA224, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA256, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA384, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDSA_SHA512, 256, 521, SV | EC_FLAGS),
    mi(ckm::ECDH1_DERIVE, 256, 521, ckf::DERIVE | EC_FLAGS),
    mi(ckm::IBM_EC_X25519, 256, 256, ckf::DERIVE | EC_FLAGS),
    mi(ckm::AES_KEY_GEN, 16, 32, ckf::GENERATE),
    mi(ckm::AES_ECB, 16, 32, EDWU),
    mi(ckm::AES_CBC, 16, 32, EDWU),
    mi(ckm::AES_CBC_PAD, 16, 32, EDWU),
    mi(ckm::AES_GCM, 16, 32, EDWU),
    mi(ckm::AES_CMAC, 16, 32, SV),
    mi(ckm::AES_CMAC_GENERAL, 16, 32, SV),
    mi(ckm::IBM_SHA3_256, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA3_384, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA3_512, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_CMAC, 16, 32, SV),
    mi(ckm::IBM_ECDSA_SHA224, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA256, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA384, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_ECDSA_SHA512, 256, 521, SV | EC_FLAGS),
    mi(ckm::IBM_SHA512_256, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA512_224, 0, 0, ckf::DIGEST),
    mi(ckm::IBM_SHA512_256_HMAC, 1, 512, SV),
    mi(ckm::IBM_SHA512_224_HMAC, 1, 512, SV),
    mi(ckm::IBM_ED25519_SHA512, 256, 256, SV | EC_FLAGS),
    mi(ckm::IBM_EC_MULTIPLY, 256, 521, ckf::ENCRYPT | EC_FLAGS),
    // BIP32 / SLIP-0010 (secp256k1, P-256, Ed25519); the seed's size in bytes.
    mi(ckm::IBM_BTC_DERIVE, 16, 64, ckf::DERIVE | EC_FLAGS),
    // BIP340 Schnorr on secp256k1 (ECSGParm type 256) and BLS on BLS12-381 (type 6),
    // single-part; BLS signatures and public keys aggregate (sign and derive).
    mi(ckm::IBM_ECDSA_OTHER, 256, 381, SV | EC_FLAGS),
    mi(
        ckm::IBM_EC_AGGREGATE,
        381,
        381,
        ckf::SIGN | ckf::DERIVE | EC_FLAGS,
    ),
    mi(ckm::IBM_TRANSPORTKEY, 0, 0, ckf::UNWRAP),
    mi(ckm::IBM_ATTRIBUTEBOUND_WRAP, 0, 0, ckf::WRAP | ckf::UNWRAP),
    mi(ckm::DSA_PARAMETER_GEN, 2048, 3072, ckf::GENERATE),
    mi(ckm::DH_PKCS_PARAMETER_GEN, 2048, 8192, ckf::GENERATE),
    // FIPS 203/204 under PKCS#11 3.2's codes; sizes are CKP_* parameter sets (1 to 3).
    mi(ckm::ML_DSA_KEY_PAIR_GEN, 1, 3, ckf::GENERATE_KEY_PAIR),
    mi(ckm::ML_DSA, 1, 3, SV),
    mi(ckm::ML_KEM_KEY_PAIR_GEN, 1, 3, ckf::GENERATE_KEY_PAIR),
    mi(ckm::ML_KEM, 1, 3, ckf::DERIVE),
];

/// The info of one mechanism.
pub fn mechanism_info(code: Ckm) -> Option<MechInfo> {
    MECHANISMS.iter().copied().find(|m| m.code == code)
}

/// What a server offers of [`MECHANISMS`] (GetMechanismList, GetMechanismInfo) and so what
/// it refuses: with PKCS#1 v1.5 decryption switched off, `CKM_RSA_PKCS` without
/// `CKF_DECRYPT` and `CKF_UNWRAP`; in FIPS mode, only the uses [`fips::allowed_uses`] keeps,
/// and none of the mechanisms it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismPolicy {
    /// Whether `CKM_RSA_PKCS` decrypts and unwraps.
    pub rsa_pkcs1_decryption: bool,
    /// Whether only what FIPS 140-3 approves is offered.
    pub fips: bool,
}

impl Default for MechanismPolicy {
    fn default() -> Self {
        MechanismPolicy {
            rsa_pkcs1_decryption: true,
            fips: false,
        }
    }
}

impl MechanismPolicy {
    /// A mechanism's information as offered; `None` when it is not offered at all.
    pub fn info(&self, code: Ckm) -> Option<MechInfo> {
        let mut info = mechanism_info(code)?;
        if code == ckm::RSA_PKCS && !self.rsa_pkcs1_decryption {
            info.flags &= !(ckf::DECRYPT | ckf::UNWRAP);
        }
        if self.fips {
            info.flags &= fips::allowed_uses(code) | !fips::USES;
            if info.flags & fips::USES == 0 {
                return None;
            }
        }
        Some(info)
    }

    /// The mechanisms offered, in the table's order.
    pub fn list(&self) -> impl Iterator<Item = MechInfo> + '_ {
        MECHANISMS.iter().filter_map(|m| self.info(m.code))
    }
}

/// Curve of a CKA_EC_PARAMS value: a DER OID, or one of IBM's ASCII names.
pub fn curve_of_params(p: &[u8]) -> Option<Curve> {
    use crate::der::oid;
    if let Some((crate::der::tag::OID, c, [])) = crate::der::read_tlv(p) {
        return match c {
            x if x == oid::P256 => Some(Curve::P256),
            x if x == oid::P384 => Some(Curve::P384),
            x if x == oid::P521 => Some(Curve::P521),
            x if x == oid::SECP256K1 => Some(Curve::Secp256k1),
            x if x == oid::ED25519 => Some(Curve::Ed25519),
            x if x == oid::X25519 => Some(Curve::X25519),
            x if x == oid::BLS12_381 => Some(Curve::Bls12381),
            _ => None,
        };
    }
    match p {
        b"P-256" | b"secp256r1" | b"prime256v1" => Some(Curve::P256),
        b"P-384" | b"secp384r1" => Some(Curve::P384),
        b"P-521" | b"secp521r1" => Some(Curve::P521),
        b"secp256k1" => Some(Curve::Secp256k1),
        b"Ed25519" | b"ED25519" => Some(Curve::Ed25519),
        b"X25519" | b"curve25519" => Some(Curve::X25519),
        b"BLS12-381" | b"BLS12_381" => Some(Curve::Bls12381),
        _ => None,
    }
}

/// The DER of a curve's OID (CKA_EC_PARAMS).
pub fn params_of_curve(c: Curve) -> Vec<u8> {
    use crate::der::oid;
    let o = match c {
        Curve::P256 => oid::P256,
        Curve::P384 => oid::P384,
        Curve::P521 => oid::P521,
        Curve::Secp256k1 => oid::SECP256K1,
        Curve::Ed25519 => oid::ED25519,
        Curve::X25519 => oid::X25519,
        Curve::Bls12381 => oid::BLS12_381,
    };
    let mut out = Vec::new();
    crate::der::write_tlv(&mut out, crate::der::tag::OID, o);
    out
}
