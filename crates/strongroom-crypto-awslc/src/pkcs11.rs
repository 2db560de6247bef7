//! The PKCS#11 mechanisms of the GREP11 front end on the safe aws-lc-rs API: block ciphers,
//! MACs, RSA, ECDSA, Ed25519 and ECDH. Everything here is a thin call into aws-lc-rs; the
//! PKCS#11 rules (attributes, multi-part state, padding of ECDSA digests) live in the engine.
// The triple-DES constants are deprecated in aws-lc-rs ("legacy use only"); GREP11 serves
// them for existing applications, and only this module names them.
#![allow(deprecated)]

use aws_lc_rs::agreement;
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey, AES_128, AES_192, AES_256,
    DES_EDE3_FOR_LEGACY_USE_ONLY, DES_EDE_FOR_LEGACY_USE_ONLY,
};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    self, KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use aws_lc_rs::{cmac, digest, hmac};
use strongroom_engine::der::{self, oid};
use strongroom_engine::provider::{
    AsymKind, BlockCipher, CipherMode, CryptoError, Curve, DigestAlg, MacAlg, PreparedPrivate,
    PublicInfo, RsaPadding, SignScheme,
};
use zeroize::Zeroizing;

fn cipher_alg(
    cipher: BlockCipher,
    key: &[u8],
) -> Result<&'static aws_lc_rs::cipher::Algorithm, CryptoError> {
    Ok(match (cipher, key.len()) {
        (BlockCipher::Aes, 16) => &AES_128,
        (BlockCipher::Aes, 24) => &AES_192,
        (BlockCipher::Aes, 32) => &AES_256,
        (BlockCipher::Des3, 16) => &DES_EDE_FOR_LEGACY_USE_ONLY,
        (BlockCipher::Des3, 24) => &DES_EDE3_FOR_LEGACY_USE_ONLY,
        _ => return Err(CryptoError),
    })
}

fn enc_ctx(
    cipher: BlockCipher,
    mode: CipherMode,
    iv: &[u8],
) -> Result<EncryptionContext, CryptoError> {
    match (mode, cipher) {
        (CipherMode::Ecb, _) if iv.is_empty() => Ok(EncryptionContext::None),
        (CipherMode::Ecb, _) => Err(CryptoError),
        (_, BlockCipher::Aes) => {
            let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError)?;
            Ok(EncryptionContext::Iv128(FixedLength::from(iv)))
        }
        (_, BlockCipher::Des3) => {
            let iv: [u8; 8] = iv.try_into().map_err(|_| CryptoError)?;
            Ok(EncryptionContext::Iv64(FixedLength::from(iv)))
        }
    }
}

fn dec_ctx(
    cipher: BlockCipher,
    mode: CipherMode,
    iv: &[u8],
) -> Result<DecryptionContext, CryptoError> {
    match (mode, cipher) {
        (CipherMode::Ecb, _) if iv.is_empty() => Ok(DecryptionContext::None),
        (CipherMode::Ecb, _) => Err(CryptoError),
        (_, BlockCipher::Aes) => {
            let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError)?;
            Ok(DecryptionContext::Iv128(FixedLength::from(iv)))
        }
        (_, BlockCipher::Des3) => {
            let iv: [u8; 8] = iv.try_into().map_err(|_| CryptoError)?;
            Ok(DecryptionContext::Iv64(FixedLength::from(iv)))
        }
    }
}

pub(crate) fn block_encrypt(
    cipher: BlockCipher,
    mode: CipherMode,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let alg = cipher_alg(cipher, key)?;
    let unbound = UnboundCipherKey::new(alg, key).map_err(|_| CryptoError)?;
    let ctx = enc_ctx(cipher, mode, iv)?;
    let mut buf = data.to_vec();
    match mode {
        CipherMode::Ecb | CipherMode::Cbc => {
            if !data.len().is_multiple_of(cipher.block_len()) {
                return Err(CryptoError);
            }
            if data.is_empty() {
                return Ok(buf);
            }
            let k = if mode == CipherMode::Ecb {
                EncryptingKey::ecb(unbound)
            } else {
                EncryptingKey::cbc(unbound)
            }
            .map_err(|_| CryptoError)?;
            k.less_safe_encrypt(&mut buf, ctx)
                .map_err(|_| CryptoError)?;
        }
        CipherMode::CbcPad => {
            let k = PaddedBlockEncryptingKey::cbc_pkcs7(unbound).map_err(|_| CryptoError)?;
            k.less_safe_encrypt(&mut buf, ctx)
                .map_err(|_| CryptoError)?;
        }
    }
    Ok(buf)
}

pub(crate) fn block_decrypt(
    cipher: BlockCipher,
    mode: CipherMode,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let alg = cipher_alg(cipher, key)?;
    let unbound = UnboundCipherKey::new(alg, key).map_err(|_| CryptoError)?;
    let ctx = dec_ctx(cipher, mode, iv)?;
    if !data.len().is_multiple_of(cipher.block_len())
        || (mode == CipherMode::CbcPad && data.is_empty())
    {
        return Err(CryptoError);
    }
    let mut buf = Zeroizing::new(data.to_vec());
    if data.is_empty() {
        return Ok(buf);
    }
    let len = match mode {
        CipherMode::Ecb | CipherMode::Cbc => {
            let k = if mode == CipherMode::Ecb {
                DecryptingKey::ecb(unbound)
            } else {
                DecryptingKey::cbc(unbound)
            }
            .map_err(|_| CryptoError)?;
            k.decrypt(&mut buf, ctx).map_err(|_| CryptoError)?.len()
        }
        CipherMode::CbcPad => {
            let k = PaddedBlockDecryptingKey::cbc_pkcs7(unbound).map_err(|_| CryptoError)?;
            k.decrypt(&mut buf, ctx).map_err(|_| CryptoError)?.len()
        }
    };
    buf.truncate(len);
    Ok(buf)
}

pub(crate) fn mac(alg: MacAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match alg {
        MacAlg::Hmac(d) => {
            let a = match d {
                DigestAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                DigestAlg::Sha224 => hmac::HMAC_SHA224,
                DigestAlg::Sha256 => hmac::HMAC_SHA256,
                DigestAlg::Sha384 => hmac::HMAC_SHA384,
                DigestAlg::Sha512 => hmac::HMAC_SHA512,
                DigestAlg::Sha512_224 => return crate::sys::hmac_sha512_t(false, key, data),
                DigestAlg::Sha512_256 => return crate::sys::hmac_sha512_t(true, key, data),
                _ => return Err(CryptoError),
            };
            Ok(hmac::sign(&hmac::Key::new(a, key), data).as_ref().to_vec())
        }
        MacAlg::Cmac(c) => {
            let a = match (c, key.len()) {
                (BlockCipher::Aes, 16) => cmac::AES_128,
                (BlockCipher::Aes, 24) => cmac::AES_192,
                (BlockCipher::Aes, 32) => cmac::AES_256,
                (BlockCipher::Des3, 24) => cmac::DES_EDE3_FOR_LEGACY_USE_ONLY,
                _ => return Err(CryptoError),
            };
            let k = cmac::Key::new(a, key).map_err(|_| CryptoError)?;
            Ok(cmac::sign(&k, data)
                .map_err(|_| CryptoError)?
                .as_ref()
                .to_vec())
        }
    }
}

pub(crate) fn ecdsa_alg(
    curve: Curve,
) -> Result<&'static signature::EcdsaSigningAlgorithm, CryptoError> {
    Ok(match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        Curve::Ed25519 | Curve::X25519 | Curve::Bls12381 => return Err(CryptoError),
    })
}

fn ecdsa_verify_alg(curve: Curve) -> Option<&'static signature::EcdsaVerificationAlgorithm> {
    Some(match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED,
        Curve::Ed25519 | Curve::X25519 | Curve::Bls12381 => return None,
    })
}

fn native_digest(curve: Curve) -> &'static digest::Algorithm {
    match curve {
        Curve::P384 => &digest::SHA384,
        Curve::P521 => &digest::SHA512,
        _ => &digest::SHA256,
    }
}

pub(crate) fn curve_oid(curve: Curve) -> &'static [u8] {
    match curve {
        Curve::P256 => oid::P256,
        Curve::P384 => oid::P384,
        Curve::P521 => oid::P521,
        Curve::Secp256k1 => oid::SECP256K1,
        Curve::Ed25519 => oid::ED25519,
        Curve::X25519 => oid::X25519,
        Curve::Bls12381 => oid::BLS12_381,
    }
}

fn curve_of_oid(c: &[u8]) -> Result<Curve, CryptoError> {
    Ok(match c {
        x if x == oid::P256 => Curve::P256,
        x if x == oid::P384 => Curve::P384,
        x if x == oid::P521 => Curve::P521,
        x if x == oid::SECP256K1 => Curve::Secp256k1,
        x if x == oid::ED25519 => Curve::Ed25519,
        x if x == oid::X25519 => Curve::X25519,
        x if x == oid::BLS12_381 => Curve::Bls12381,
        _ => return Err(CryptoError),
    })
}

fn rsa_sign_encoding(
    scheme: SignScheme,
) -> Result<
    (
        &'static dyn signature::RsaEncoding,
        &'static digest::Algorithm,
    ),
    CryptoError,
> {
    Ok(match scheme {
        SignScheme::RsaPkcs1(DigestAlg::Sha256) => (&signature::RSA_PKCS1_SHA256, &digest::SHA256),
        SignScheme::RsaPkcs1(DigestAlg::Sha384) => (&signature::RSA_PKCS1_SHA384, &digest::SHA384),
        SignScheme::RsaPkcs1(DigestAlg::Sha512) => (&signature::RSA_PKCS1_SHA512, &digest::SHA512),
        SignScheme::RsaPss(DigestAlg::Sha256) => (&signature::RSA_PSS_SHA256, &digest::SHA256),
        SignScheme::RsaPss(DigestAlg::Sha384) => (&signature::RSA_PSS_SHA384, &digest::SHA384),
        SignScheme::RsaPss(DigestAlg::Sha512) => (&signature::RSA_PSS_SHA512, &digest::SHA512),
        _ => return Err(CryptoError),
    })
}

fn rsa_verify_params(scheme: SignScheme) -> Option<&'static signature::RsaParameters> {
    Some(match scheme {
        SignScheme::RsaPkcs1(DigestAlg::Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        SignScheme::RsaPkcs1(DigestAlg::Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        SignScheme::RsaPkcs1(DigestAlg::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        SignScheme::RsaPss(DigestAlg::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
        SignScheme::RsaPss(DigestAlg::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
        SignScheme::RsaPss(DigestAlg::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn oaep_alg(h: DigestAlg) -> Result<&'static rsa::OaepAlgorithm, CryptoError> {
    Ok(match h {
        DigestAlg::Sha1 => &rsa::OAEP_SHA1_MGF1SHA1,
        DigestAlg::Sha256 => &rsa::OAEP_SHA256_MGF1SHA256,
        DigestAlg::Sha384 => &rsa::OAEP_SHA384_MGF1SHA384,
        DigestAlg::Sha512 => &rsa::OAEP_SHA512_MGF1SHA512,
        _ => return Err(CryptoError),
    })
}

fn der_of<T: AsDer<aws_lc_rs::encoding::PublicKeyX509Der<'static>>>(
    k: &T,
) -> Result<Vec<u8>, CryptoError> {
    Ok(k.as_der().map_err(|_| CryptoError)?.as_ref().to_vec())
}

enum Key {
    Rsa {
        sign: rsa::KeyPair,
        decrypt: PrivateDecryptingKey,
        /// The same key for the C API (raw PKCS#1 signing).
        raw: crate::sys::Pkey,
    },
    Ec {
        curve: Curve,
        sign: EcdsaKeyPair,
        agree: Option<agreement::PrivateKey>,
        /// The same key for the C API (ECDH on secp256k1, EC multiply).
        raw: Option<crate::sys::Pkey>,
        /// The BIP340 form of a secp256k1 key, made on its first Schnorr signature.
        schnorr: std::sync::OnceLock<k256::schnorr::SigningKey>,
    },
    Ed25519(Ed25519KeyPair),
    X25519(agreement::PrivateKey),
    Bls(crate::bls::BlsKey),
    Dsa(crate::sys::Pkey),
    Dh {
        params: Vec<u8>,
        x: Zeroizing<Vec<u8>>,
    },
    /// ML-DSA or ML-KEM.
    Pq(crate::pq::PqKey),
}

struct Prepared {
    key: Key,
    public: PublicInfo,
    pkcs8: Zeroizing<Vec<u8>>,
}

pub(crate) fn prepare(pkcs8: &[u8]) -> Result<Box<dyn PreparedPrivate>, CryptoError> {
    let alg = der::pkcs8_algorithm(pkcs8).ok_or(CryptoError)?;
    let (key, public) = match alg.oid {
        o if o == oid::RSA => {
            let sign = rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError)?;
            let decrypt = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError)?;
            let raw = crate::sys::Pkey::private(pkcs8).ok_or(CryptoError)?;
            let spki = der_of(sign.public_key())?;
            let public = PublicInfo {
                kind: AsymKind::Rsa {
                    bits: u32::try_from(decrypt.key_size_bits()).map_err(|_| CryptoError)?,
                },
                raw: sign.public_key().as_ref().to_vec(),
                spki,
            };
            (Key::Rsa { sign, decrypt, raw }, public)
        }
        o if o == oid::EC_PUBLIC_KEY && alg.curve == oid::BLS12_381 => {
            let (k, public) = crate::bls::prepare(pkcs8)?;
            (Key::Bls(k), public)
        }
        o if o == oid::EC_PUBLIC_KEY => {
            let curve = curve_of_oid(alg.curve)?;
            let sign =
                EcdsaKeyPair::from_pkcs8(ecdsa_alg(curve)?, pkcs8).map_err(|_| CryptoError)?;
            let agree = match curve {
                Curve::P256 => Some(&agreement::ECDH_P256),
                Curve::P384 => Some(&agreement::ECDH_P384),
                Curve::P521 => Some(&agreement::ECDH_P521),
                _ => None,
            }
            .map(|a| agreement::PrivateKey::from_private_key_der(a, pkcs8))
            .transpose()
            .map_err(|_| CryptoError)?;
            let raw = Some(crate::sys::Pkey::private(pkcs8).ok_or(CryptoError)?);
            let public = PublicInfo {
                kind: AsymKind::Ec(curve),
                raw: sign.public_key().as_ref().to_vec(),
                spki: der_of(sign.public_key())?,
            };
            (
                Key::Ec {
                    curve,
                    sign,
                    agree,
                    raw,
                    schnorr: std::sync::OnceLock::new(),
                },
                public,
            )
        }
        o if o == oid::DH => {
            let k = der::dh_pkcs8(pkcs8).ok_or(CryptoError)?;
            let (params, x) = (k.params.to_vec(), Zeroizing::new(k.value.to_vec()));
            // The public value is not stored in PKCS#8: recompute it (g^x mod p).
            let public = dh_public_of(&params, &x)?;
            (Key::Dh { params, x }, public)
        }
        o if o == oid::DSA => {
            let k = crate::sys::Pkey::private(pkcs8).ok_or(CryptoError)?;
            let public = dsa_public(&k.to_spki()?)?;
            (Key::Dsa(k), public)
        }
        o if o == oid::ED25519 => {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| CryptoError)?;
            let public = PublicInfo {
                kind: AsymKind::Ec(Curve::Ed25519),
                raw: kp.public_key().as_ref().to_vec(),
                spki: der_of(kp.public_key())?,
            };
            (Key::Ed25519(kp), public)
        }
        o if o == oid::X25519 => {
            // RFC 8410: the privateKey OCTET STRING holds a CurvePrivateKey OCTET STRING.
            let inner = der::pkcs8_private_key(pkcs8).ok_or(CryptoError)?;
            let (raw, rest) = der::expect(inner, der::tag::OCTET_STRING).ok_or(CryptoError)?;
            if !rest.is_empty() {
                return Err(CryptoError);
            }
            let sk = agreement::PrivateKey::from_private_key(&agreement::X25519, raw)
                .map_err(|_| CryptoError)?;
            let point = sk.compute_public_key().map_err(|_| CryptoError)?;
            let public = public_25519(Curve::X25519, point.as_ref())?;
            (Key::X25519(sk), public)
        }
        o => {
            let kind = crate::pq::kind_of_oid(o).ok_or(CryptoError)?;
            let (k, public) = crate::pq::prepare(kind, pkcs8)?;
            (Key::Pq(k), public)
        }
    };
    Ok(Box::new(Prepared {
        key,
        public,
        pkcs8: Zeroizing::new(pkcs8.to_vec()),
    }))
}

impl PreparedPrivate for Prepared {
    fn public(&self) -> &PublicInfo {
        &self.public
    }

    fn sign(&self, scheme: SignScheme, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match (&self.key, scheme) {
            (Key::Rsa { raw, .. }, SignScheme::RsaPkcs1Raw) => {
                crate::sys::rsa_sign_pkcs1_raw(raw, data)
            }
            (Key::Rsa { raw, .. }, SignScheme::RsaX931) => crate::sys::rsa_x931_sign(raw, data),
            (Key::Rsa { raw, .. }, SignScheme::RsaPssWith { hash, mgf, salt }) => {
                crate::sys::rsa_pss_sign(
                    raw,
                    crate::sys::md(hash)?,
                    crate::sys::md(mgf)?,
                    salt as usize,
                    data,
                )
            }
            (Key::Rsa { sign, .. }, SignScheme::RsaPkcs1(_) | SignScheme::RsaPss(_)) => {
                let (enc, dalg) = rsa_sign_encoding(scheme)?;
                let d = digest::Digest::import_less_safe(data, dalg).map_err(|_| CryptoError)?;
                let mut sig = vec![0u8; sign.public_modulus_len()];
                sign.sign_digest(enc, &d, &mut sig)
                    .map_err(|_| CryptoError)?;
                Ok(sig)
            }
            (Key::Ec { curve, sign, .. }, SignScheme::EcdsaDigest) => {
                let d = digest::Digest::import_less_safe(data, native_digest(*curve))
                    .map_err(|_| CryptoError)?;
                Ok(sign
                    .sign_digest(&d)
                    .map_err(|_| CryptoError)?
                    .as_ref()
                    .to_vec())
            }
            (
                Key::Ec {
                    curve: Curve::Secp256k1,
                    sign,
                    schnorr,
                    ..
                },
                SignScheme::Bip340,
            ) => {
                if schnorr.get().is_none() {
                    // A concurrent first signature may set it first: either key is the same.
                    let _ = schnorr.set(crate::bip340::signing_key(sign)?);
                }
                crate::bip340::sign(schnorr.get().ok_or(CryptoError)?, data)
            }
            (Key::Ec { curve, sign, .. }, SignScheme::EcSdsa(form)) => {
                crate::ecsdsa::sign(form, *curve, sign, &self.public.raw, data)
            }
            (Key::Bls(k), SignScheme::Bls) => Ok(k.sign(data)),
            (Key::Dsa(k), SignScheme::DsaDigest) => crate::sys::dsa_sign(k, data),
            (Key::Ed25519(kp), SignScheme::Ed25519) => Ok(kp
                .try_sign(data)
                .map_err(|_| CryptoError)?
                .as_ref()
                .to_vec()),
            (Key::Pq(k), SignScheme::MlDsa) => k.ml_dsa_sign(&[], data),
            _ => Err(CryptoError),
        }
    }

    fn ml_dsa_sign(&self, context: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.key {
            Key::Pq(k) => k.ml_dsa_sign(context, msg),
            _ => Err(CryptoError),
        }
    }

    fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.key {
            Key::Pq(k) => k.decapsulate(ciphertext),
            _ => Err(CryptoError),
        }
    }

    fn rsa_decrypt(
        &self,
        padding: RsaPadding,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Key::Rsa { decrypt, raw, .. } = &self.key else {
            return Err(CryptoError);
        };
        if let RsaPadding::OaepWith { hash, mgf } = padding {
            return crate::sys::rsa_oaep(
                raw,
                true,
                crate::sys::md(hash)?,
                crate::sys::md(mgf)?,
                label,
                ciphertext,
            );
        }
        let mut out = Zeroizing::new(vec![0u8; decrypt.key_size_bytes()]);
        let len = match padding {
            RsaPadding::Pkcs1 => Pkcs1PrivateDecryptingKey::new(decrypt.clone())
                .map_err(|_| CryptoError)?
                .decrypt(ciphertext, &mut out)
                .map_err(|_| CryptoError)?
                .len(),
            RsaPadding::OaepWith { .. } => return Err(CryptoError),
            RsaPadding::Oaep(h) => OaepPrivateDecryptingKey::new(decrypt.clone())
                .map_err(|_| CryptoError)?
                .decrypt(oaep_alg(h)?, ciphertext, &mut out, Some(label))
                .map_err(|_| CryptoError)?
                .len(),
        };
        out.truncate(len);
        Ok(out)
    }

    fn agree(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.key {
            Key::Dh { params, x } => crate::sys::dh_agree(params, x, peer_point),
            Key::Ec {
                agree: Some(sk), ..
            } => {
                let peer = agreement::UnparsedPublicKey::new(sk.algorithm(), peer_point);
                agreement::agree(sk, peer, CryptoError, |z| Ok(Zeroizing::new(z.to_vec())))
            }
            Key::Ec { raw: Some(k), .. } => crate::sys::ecdh_raw(k, peer_point),
            // aws-lc refuses a peer point of small order (an all-zero secret).
            Key::X25519(sk) => {
                let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer_point);
                agreement::agree(sk, peer, CryptoError, |z| Ok(Zeroizing::new(z.to_vec())))
            }
            _ => Err(CryptoError),
        }
    }

    fn ec_multiply(&self, point: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match &self.key {
            Key::Ec { raw: Some(k), .. } => crate::sys::ec_multiply(k, point),
            _ => Err(CryptoError),
        }
    }

    fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

pub(crate) fn generate(kind: AsymKind) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
    let pkcs8 = match kind {
        AsymKind::Rsa { bits } => {
            let size = match bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                8192 => KeySize::Rsa8192,
                _ => return Err(CryptoError),
            };
            let kp = rsa::KeyPair::generate(size).map_err(|_| CryptoError)?;
            let doc: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().map_err(|_| CryptoError)?;
            Zeroizing::new(doc.as_ref().to_vec())
        }
        AsymKind::Ec(Curve::Ed25519) => {
            let kp = Ed25519KeyPair::generate().map_err(|_| CryptoError)?;
            Zeroizing::new(kp.to_pkcs8v1().map_err(|_| CryptoError)?.as_ref().to_vec())
        }
        AsymKind::Ec(Curve::Bls12381) => return crate::bls::generate(),
        AsymKind::Ec(Curve::X25519) => {
            use aws_lc_rs::encoding::{AsBigEndian, Curve25519SeedBin};
            let sk =
                agreement::PrivateKey::generate(&agreement::X25519).map_err(|_| CryptoError)?;
            let seed: Curve25519SeedBin = sk.as_be_bytes().map_err(|_| CryptoError)?;
            let mut inner = Zeroizing::new(Vec::with_capacity(34));
            der::write_tlv(&mut inner, der::tag::OCTET_STRING, seed.as_ref());
            Zeroizing::new(der::build_pkcs8(oid::X25519, &inner))
        }
        AsymKind::Ec(curve) => {
            let kp = EcdsaKeyPair::generate(ecdsa_alg(curve)?).map_err(|_| CryptoError)?;
            Zeroizing::new(kp.to_pkcs8v1().map_err(|_| CryptoError)?.as_ref().to_vec())
        }
        AsymKind::MlDsa(_) | AsymKind::MlKem(_) => crate::pq::generate(kind)?,
        AsymKind::Dsa { .. } | AsymKind::Dh { .. } => return Err(CryptoError),
    };
    let public = prepare(&pkcs8)?.public().clone();
    Ok((pkcs8, public))
}

fn dh_public(spki: &[u8]) -> Result<PublicInfo, CryptoError> {
    let k = der::dh_spki(spki).ok_or(CryptoError)?;
    let p = der::read_tlv(k.params)
        .and_then(|(_, c, _)| der::expect(c, der::tag::INTEGER))
        .and_then(|(p, _)| der::uint_value(p))
        .ok_or(CryptoError)?;
    let bits = u32::try_from(p.len() * 8 - p.first().map_or(8, |b| b.leading_zeros() as usize))
        .map_err(|_| CryptoError)?;
    if bits < 2048 || k.value.is_empty() {
        return Err(CryptoError);
    }
    Ok(PublicInfo {
        kind: AsymKind::Dh { bits },
        raw: k.value.to_vec(),
        spki: spki.to_vec(),
    })
}

/// The public value y = g^x mod p of a stored DH key (agreement of x with g itself).
fn dh_public_of(params: &[u8], x: &[u8]) -> Result<PublicInfo, CryptoError> {
    let g = der::read_tlv(params)
        .and_then(|(_, c, _)| der::expect(c, der::tag::INTEGER))
        .and_then(|(_, rest)| der::expect(rest, der::tag::INTEGER))
        .and_then(|(g, _)| der::uint_value(g))
        .ok_or(CryptoError)?;
    let y = crate::sys::dh_agree(params, x, g)?;
    let skip = y.iter().take_while(|b| **b == 0).count();
    let (_, spki) = der::dh_encode(params, &[1], &y[skip..]);
    dh_public(&spki)
}

pub(crate) fn dh_generate(params: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
    let (x, y, _) = crate::sys::dh_generate(params)?;
    let (pkcs8, spki) = der::dh_encode(params, &x, &y);
    Ok((Zeroizing::new(pkcs8), dh_public(&spki)?))
}

fn dsa_public(spki: &[u8]) -> Result<PublicInfo, CryptoError> {
    let k = crate::sys::Pkey::public(spki).ok_or(CryptoError)?;
    let (bits, q_len) = k.dsa_sizes()?;
    let (_, key) = der::spki(spki).ok_or(CryptoError)?;
    Ok(PublicInfo {
        kind: AsymKind::Dsa {
            bits,
            q_len: u8::try_from(q_len).map_err(|_| CryptoError)?,
        },
        raw: key.to_vec(),
        spki: spki.to_vec(),
    })
}

pub(crate) fn rsa_generate_with(
    bits: u32,
    e: u64,
) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
    let k = crate::sys::rsa_generate(bits, e)?;
    let pkcs8 = k.to_pkcs8()?;
    let public = prepare(&pkcs8)?.public().clone();
    if public.kind != (AsymKind::Rsa { bits }) {
        return Err(CryptoError);
    }
    Ok((pkcs8, public))
}

pub(crate) fn dsa_generate(params: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
    let k = crate::sys::dsa_generate(params)?;
    let public = dsa_public(&k.to_spki()?)?;
    Ok((k.to_pkcs8()?, public))
}

/// An Ed25519 or X25519 public key: 32 bytes, with RFC 8410's SPKI.
fn public_25519(curve: Curve, key: &[u8]) -> Result<PublicInfo, CryptoError> {
    if key.len() != 32 {
        return Err(CryptoError);
    }
    Ok(PublicInfo {
        kind: AsymKind::Ec(curve),
        raw: key.to_vec(),
        spki: der::build_spki(curve_oid(curve), None, key),
    })
}

pub(crate) fn public_info(spki: &[u8]) -> Result<PublicInfo, CryptoError> {
    let (alg, key) = der::spki(spki).ok_or(CryptoError)?;
    match alg.oid {
        o if o == oid::DSA => dsa_public(spki),
        o if o == oid::DH => dh_public(spki),
        o if o == oid::RSA => {
            let k = PublicEncryptingKey::from_der(spki).map_err(|_| CryptoError)?;
            Ok(PublicInfo {
                kind: AsymKind::Rsa {
                    bits: u32::try_from(k.key_size_bits()).map_err(|_| CryptoError)?,
                },
                raw: key.to_vec(),
                spki: spki.to_vec(),
            })
        }
        // IBM's EP11 writes Ed25519 keys as id-ecPublicKey with the Ed25519 curve OID;
        // accept that form and answer with RFC 8410's.
        o if (o == oid::EC_PUBLIC_KEY && alg.curve == oid::ED25519) || o == oid::ED25519 => {
            public_25519(Curve::Ed25519, key)
        }
        o if o == oid::X25519 && alg.curve.is_empty() => public_25519(Curve::X25519, key),
        o if o == oid::EC_PUBLIC_KEY && alg.curve == oid::BLS12_381 => crate::bls::public_info(key),
        o if o == oid::EC_PUBLIC_KEY => {
            let curve = curve_of_oid(alg.curve)?;
            let v = ecdsa_verify_alg(curve).ok_or(CryptoError)?;
            // Parsing validates the point (on the curve, not infinity).
            signature::ParsedPublicKey::new(v, key).map_err(|_| CryptoError)?;
            Ok(PublicInfo {
                kind: AsymKind::Ec(curve),
                raw: key.to_vec(),
                spki: der::build_spki(oid::EC_PUBLIC_KEY, Some(curve_oid(curve)), key),
            })
        }
        o => match crate::pq::kind_of_oid(o) {
            // No parameters follow a post-quantum algorithm OID.
            Some(kind) if alg.curve.is_empty() => crate::pq::public_info(kind, key),
            _ => Err(CryptoError),
        },
    }
}

pub(crate) fn verify(scheme: SignScheme, public: &PublicInfo, data: &[u8], sig: &[u8]) -> bool {
    match (public.kind, scheme) {
        (AsymKind::Ec(Curve::Bls12381), SignScheme::Bls) => {
            crate::bls::verify(&public.raw, data, sig)
        }
        (AsymKind::Ec(Curve::Secp256k1), SignScheme::Bip340) => {
            crate::bip340::verify(&public.raw, data, sig)
        }
        (AsymKind::Ec(curve), SignScheme::EcSdsa(form)) => {
            crate::ecsdsa::verify(form, curve, &public.raw, data, sig)
        }
        (AsymKind::Dsa { .. }, SignScheme::DsaDigest) => crate::sys::Pkey::public(&public.spki)
            .is_some_and(|k| crate::sys::dsa_verify(&k, data, sig)),
        (AsymKind::Rsa { .. }, SignScheme::RsaPssWith { hash, mgf, salt }) => {
            let (Some(k), Ok(h), Ok(m)) = (
                crate::sys::Pkey::public(&public.spki),
                crate::sys::md(hash),
                crate::sys::md(mgf),
            ) else {
                return false;
            };
            crate::sys::rsa_pss_verify(&k, h, m, salt as usize, data, sig)
        }
        (AsymKind::Rsa { .. }, SignScheme::RsaX931) => crate::sys::Pkey::public(&public.spki)
            .is_some_and(|k| crate::sys::rsa_x931_verify(&k, data, sig)),
        (AsymKind::Rsa { .. }, SignScheme::RsaPkcs1Raw) => {
            let Some(k) = crate::sys::Pkey::public(&public.spki) else {
                return false;
            };
            match crate::sys::rsa_recover_pkcs1_raw(&k, sig) {
                Ok(got) => {
                    got.len() == data.len()
                        && aws_lc_rs::constant_time::verify_slices_are_equal(&got, data).is_ok()
                }
                Err(_) => false,
            }
        }
        (AsymKind::Rsa { .. }, SignScheme::RsaPkcs1(_) | SignScheme::RsaPss(_)) => {
            let (Some(params), Ok((_, dalg))) =
                (rsa_verify_params(scheme), rsa_sign_encoding(scheme))
            else {
                return false;
            };
            let Ok(d) = digest::Digest::import_less_safe(data, dalg) else {
                return false;
            };
            signature::UnparsedPublicKey::new(params, &public.spki)
                .verify_digest(&d, sig)
                .is_ok()
        }
        (AsymKind::Ec(Curve::Ed25519), SignScheme::Ed25519) => {
            signature::UnparsedPublicKey::new(&signature::ED25519, &public.raw)
                .verify(data, sig)
                .is_ok()
        }
        (AsymKind::MlDsa(_), SignScheme::MlDsa) => crate::pq::ml_dsa_verify(public, &[], data, sig),
        (AsymKind::Ec(curve), SignScheme::EcdsaDigest) => {
            let Some(v) = ecdsa_verify_alg(curve) else {
                return false;
            };
            let Ok(d) = digest::Digest::import_less_safe(data, native_digest(curve)) else {
                return false;
            };
            signature::UnparsedPublicKey::new(v, &public.raw)
                .verify_digest(&d, sig)
                .is_ok()
        }
        _ => false,
    }
}

pub(crate) fn rsa_encrypt(
    padding: RsaPadding,
    public: &PublicInfo,
    label: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if let RsaPadding::OaepWith { hash, mgf } = padding {
        let k = crate::sys::Pkey::public(&public.spki).ok_or(CryptoError)?;
        return crate::sys::rsa_oaep(
            &k,
            false,
            crate::sys::md(hash)?,
            crate::sys::md(mgf)?,
            label,
            plaintext,
        )
        .map(|v| v.to_vec());
    }
    let k = PublicEncryptingKey::from_der(&public.spki).map_err(|_| CryptoError)?;
    let mut out = vec![0u8; k.key_size_bytes()];
    let len = match padding {
        RsaPadding::Pkcs1 => Pkcs1PublicEncryptingKey::new(k)
            .map_err(|_| CryptoError)?
            .encrypt(plaintext, &mut out)
            .map_err(|_| CryptoError)?
            .len(),
        RsaPadding::Oaep(h) => OaepPublicEncryptingKey::new(k)
            .map_err(|_| CryptoError)?
            .encrypt(oaep_alg(h)?, plaintext, &mut out, Some(label))
            .map_err(|_| CryptoError)?
            .len(),
        RsaPadding::OaepWith { .. } => return Err(CryptoError),
    };
    out.truncate(len);
    Ok(out)
}
