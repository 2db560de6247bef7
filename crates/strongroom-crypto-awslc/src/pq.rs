//! The post-quantum keys on the safe aws-lc-rs API: ML-DSA (FIPS 204) signatures and ML-KEM
//! (FIPS 203) encapsulation. A context string for ML-DSA, which the safe API does not take,
//! goes through [`crate::sys`].
//!
//! Encodings: public keys are SubjectPublicKeyInfo with the NIST OIDs and the raw key in the
//! BIT STRING. ML-DSA private keys are aws-lc's PKCS#8 (the 32-byte seed form); ML-KEM private
//! keys are PKCS#8 with the `expandedKey` choice (the FIPS 203 decapsulation key as an OCTET
//! STRING), since aws-lc-rs keeps no seed for ML-KEM.

use aws_lc_rs::kem::{
    Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_1024, ML_KEM_512, ML_KEM_768,
};
use aws_lc_rs::signature::{
    self, KeyPair as _, PqdsaKeyPair, PqdsaSigningAlgorithm, PqdsaVerificationAlgorithm,
};
use strongroom_engine::der::{self, oid};
use strongroom_engine::provider::{AsymKind, CryptoError, MlDsaSet, MlKemSet, PublicInfo};
use zeroize::Zeroizing;

type KemAlg = aws_lc_rs::kem::Algorithm<aws_lc_rs::kem::AlgorithmId>;

fn dsa_signing(s: MlDsaSet) -> &'static PqdsaSigningAlgorithm {
    match s {
        MlDsaSet::P44 => &signature::ML_DSA_44_SIGNING,
        MlDsaSet::P65 => &signature::ML_DSA_65_SIGNING,
        MlDsaSet::P87 => &signature::ML_DSA_87_SIGNING,
    }
}

fn dsa_verifying(s: MlDsaSet) -> &'static PqdsaVerificationAlgorithm {
    match s {
        MlDsaSet::P44 => &signature::ML_DSA_44,
        MlDsaSet::P65 => &signature::ML_DSA_65,
        MlDsaSet::P87 => &signature::ML_DSA_87,
    }
}

fn dsa_oid(s: MlDsaSet) -> &'static [u8] {
    match s {
        MlDsaSet::P44 => oid::ML_DSA_44,
        MlDsaSet::P65 => oid::ML_DSA_65,
        MlDsaSet::P87 => oid::ML_DSA_87,
    }
}

fn kem_alg(s: MlKemSet) -> &'static KemAlg {
    match s {
        MlKemSet::K512 => &ML_KEM_512,
        MlKemSet::K768 => &ML_KEM_768,
        MlKemSet::K1024 => &ML_KEM_1024,
    }
}

fn kem_oid(s: MlKemSet) -> &'static [u8] {
    match s {
        MlKemSet::K512 => oid::ML_KEM_512,
        MlKemSet::K768 => oid::ML_KEM_768,
        MlKemSet::K1024 => oid::ML_KEM_1024,
    }
}

/// The post-quantum kind an algorithm OID names, if any.
pub(crate) fn kind_of_oid(o: &[u8]) -> Option<AsymKind> {
    MlDsaSet::ALL
        .into_iter()
        .find(|s| dsa_oid(*s) == o)
        .map(AsymKind::MlDsa)
        .or_else(|| {
            MlKemSet::ALL
                .into_iter()
                .find(|s| kem_oid(*s) == o)
                .map(AsymKind::MlKem)
        })
}

/// A post-quantum private key, parsed once.
pub(crate) enum PqKey {
    MlDsa {
        pair: PqdsaKeyPair,
        /// The same key for the C API (signatures with a context string).
        raw: crate::sys::Pkey,
    },
    MlKem(DecapsulationKey),
}

/// Parses a PKCS#8 post-quantum private key of `kind`.
pub(crate) fn prepare(kind: AsymKind, pkcs8: &[u8]) -> Result<(PqKey, PublicInfo), CryptoError> {
    match kind {
        AsymKind::MlDsa(s) => {
            let pair = PqdsaKeyPair::from_pkcs8(dsa_signing(s), pkcs8).map_err(|_| CryptoError)?;
            let raw = crate::sys::Pkey::private(pkcs8).ok_or(CryptoError)?;
            let key = pair.public_key().as_ref().to_vec();
            let public = PublicInfo {
                kind,
                spki: der::build_spki(dsa_oid(s), None, &key),
                raw: key,
            };
            Ok((PqKey::MlDsa { pair, raw }, public))
        }
        AsymKind::MlKem(s) => {
            let inner = der::pkcs8_private_key(pkcs8).ok_or(CryptoError)?;
            let (dk, rest) = der::expect(inner, der::tag::OCTET_STRING).ok_or(CryptoError)?;
            if !rest.is_empty() {
                return Err(CryptoError);
            }
            let ek = embedded_ek(s, dk)?.to_vec();
            if !modulus_ok(&ek[..ek.len() - 32]) {
                return Err(CryptoError);
            }
            EncapsulationKey::new(kem_alg(s), &ek).map_err(|_| CryptoError)?;
            let dk = DecapsulationKey::new(kem_alg(s), dk).map_err(|_| CryptoError)?;
            let public = PublicInfo {
                kind,
                spki: der::build_spki(kem_oid(s), None, &ek),
                raw: ek,
            };
            Ok((PqKey::MlKem(dk), public))
        }
        _ => Err(CryptoError),
    }
}

/// The modulus check of FIPS 203 §7.2 on the polynomial part of an encapsulation key:
/// every 12-bit coefficient is below q = 3329 (ByteEncode12(ByteDecode12(t)) = t).
fn modulus_ok(t: &[u8]) -> bool {
    t.len().is_multiple_of(3)
        && t.chunks_exact(3).all(|b| {
            let lo = u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8);
            let hi = u16::from(b[1] >> 4) | (u16::from(b[2]) << 4);
            lo < 3329 && hi < 3329
        })
}

/// The encapsulation key inside a FIPS 203 decapsulation key (dk_PKE ‖ ek ‖ H(ek) ‖ z),
/// after the hash check of FIPS 203 §7.3 (a dk whose H(ek) does not match is refused).
fn embedded_ek(s: MlKemSet, dk: &[u8]) -> Result<&[u8], CryptoError> {
    let pke = s.public_key_len() - 32;
    let ek_len = s.public_key_len();
    if dk.len() != pke + ek_len + 64 {
        return Err(CryptoError);
    }
    let ek = &dk[pke..pke + ek_len];
    let h = &dk[pke + ek_len..pke + ek_len + 32];
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, ek);
    aws_lc_rs::constant_time::verify_slices_are_equal(d.as_ref(), h).map_err(|_| CryptoError)?;
    Ok(ek)
}

/// A new key pair of `kind`: its PKCS#8.
pub(crate) fn generate(kind: AsymKind) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    match kind {
        AsymKind::MlDsa(s) => {
            let pair = PqdsaKeyPair::generate(dsa_signing(s)).map_err(|_| CryptoError)?;
            Ok(Zeroizing::new(
                pair.to_pkcs8v1()
                    .map_err(|_| CryptoError)?
                    .as_ref()
                    .to_vec(),
            ))
        }
        AsymKind::MlKem(s) => {
            let dk = DecapsulationKey::generate(kem_alg(s)).map_err(|_| CryptoError)?;
            let bytes = dk.key_bytes().map_err(|_| CryptoError)?;
            let mut inner = Zeroizing::new(Vec::new());
            der::write_tlv(&mut inner, der::tag::OCTET_STRING, bytes.as_ref());
            Ok(Zeroizing::new(der::build_pkcs8(kem_oid(s), &inner)))
        }
        _ => Err(CryptoError),
    }
}

/// The public info of a post-quantum SubjectPublicKeyInfo with key bits `key`: the key is
/// parsed (length and, for ML-KEM, the modulus check of FIPS 203 §7.2).
pub(crate) fn public_info(kind: AsymKind, key: &[u8]) -> Result<PublicInfo, CryptoError> {
    let spki = match kind {
        AsymKind::MlDsa(s) => {
            if key.len() != s.public_key_len() {
                return Err(CryptoError);
            }
            signature::ParsedPublicKey::new(dsa_verifying(s), key).map_err(|_| CryptoError)?;
            der::build_spki(dsa_oid(s), None, key)
        }
        AsymKind::MlKem(s) => {
            if key.len() != s.public_key_len() || !modulus_ok(&key[..key.len() - 32]) {
                return Err(CryptoError);
            }
            EncapsulationKey::new(kem_alg(s), key).map_err(|_| CryptoError)?;
            der::build_spki(kem_oid(s), None, key)
        }
        _ => return Err(CryptoError),
    };
    Ok(PublicInfo {
        kind,
        raw: key.to_vec(),
        spki,
    })
}

impl PqKey {
    /// Pure ML-DSA with a context string: the safe API for the empty context, the C API
    /// otherwise (refused in a FIPS build: [`CONTEXTS`]).
    pub(crate) fn ml_dsa_sign(&self, context: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let PqKey::MlDsa { pair, raw } = self else {
            return Err(CryptoError);
        };
        if !context.is_empty() {
            if !CONTEXTS {
                return Err(CryptoError);
            }
            return crate::sys::ml_dsa_sign(raw, context, msg);
        }
        let mut sig = vec![0u8; pair.algorithm().signature_len()];
        let n = pair.sign(msg, &mut sig).map_err(|_| CryptoError)?;
        sig.truncate(n);
        Ok(sig)
    }

    pub(crate) fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let PqKey::MlKem(dk) = self else {
            return Err(CryptoError);
        };
        let ss = dk
            .decapsulate(Ciphertext::from(ct))
            .map_err(|_| CryptoError)?;
        Ok(Zeroizing::new(ss.as_ref().to_vec()))
    }
}

/// Verifies a pure ML-DSA signature with a context string.
pub(crate) fn ml_dsa_verify(public: &PublicInfo, context: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let AsymKind::MlDsa(s) = public.kind else {
        return false;
    };
    if sig.len() != s.signature_len() {
        return false;
    }
    if context.is_empty() {
        return signature::UnparsedPublicKey::new(dsa_verifying(s), &public.raw)
            .verify(msg, sig)
            .is_ok();
    }
    CONTEXTS
        && crate::sys::Pkey::public(&public.spki)
            .is_some_and(|k| crate::sys::ml_dsa_verify(&k, context, msg, sig))
}

/// Whether ML-DSA takes a non-empty context string. The FIPS module that aws-lc-fips-sys
/// 0.14 builds signs and verifies only with the empty context, so a FIPS build refuses the
/// others instead of asking the module.
pub(crate) const CONTEXTS: bool = !cfg!(feature = "fips");

/// ML-KEM encapsulation to `public`: (ciphertext, shared secret).
pub(crate) fn encapsulate(
    public: &PublicInfo,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
    let AsymKind::MlKem(s) = public.kind else {
        return Err(CryptoError);
    };
    let ek = EncapsulationKey::new(kem_alg(s), &public.raw).map_err(|_| CryptoError)?;
    let (ct, ss) = ek.encapsulate().map_err(|_| CryptoError)?;
    Ok((ct.as_ref().to_vec(), Zeroizing::new(ss.as_ref().to_vec())))
}

/// The SPKI DER aws-lc writes for an ML-DSA key (to check our encoding against its own).
#[cfg(test)]
pub(crate) fn aws_lc_spki(pkcs8: &[u8], s: MlDsaSet) -> Vec<u8> {
    use aws_lc_rs::encoding::AsDer;
    let pair = PqdsaKeyPair::from_pkcs8(dsa_signing(s), pkcs8).unwrap();
    pair.public_key().as_der().unwrap().as_ref().to_vec()
}
