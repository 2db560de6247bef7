//! The production [`CryptoProvider`] on aws-lc-rs. This is the only crate of Strongroom that
//! calls aws-lc; every other crate reaches cryptography through the provider trait.
// `unsafe` is allowed in one module only: `sys`, the calls into aws-lc's C API.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bip340;
mod bls;
mod ecsdsa;
mod hd;
mod pkcs11;
mod pq;
mod sys;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::{constant_time, digest, hkdf, hmac, rand};
use strongroom_engine::provider::{
    AeadAlg, AeadKey, AsymKind, BlockCipher, CipherMode, CryptoError, CryptoProvider, Curve,
    DigestAlg, HdChild, HdError, HdParent, HdScheme, HmacSha256Key, MacAlg, OaepHash,
    PreparedPrivate, PublicInfo, RsaPadding, SigAlg, SignScheme,
};
use zeroize::Zeroizing;

/// The aws-lc-rs provider (stateless).
#[derive(Debug, Default, Clone, Copy)]
pub struct AwsLcProvider;

struct GcmKey(LessSafeKey);

impl AeadKey for GcmKey {
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map_err(|_| CryptoError)
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let len = self
            .0
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map_err(|_| CryptoError)?
            .len();
        in_out.truncate(len);
        Ok(())
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// An HMAC-SHA-256 key whose pads aws-lc hashed once; each message starts from a copy of
/// that state.
struct PreparedHmac(hmac::Key);

impl HmacSha256Key for PreparedHmac {
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

impl CryptoProvider for AwsLcProvider {
    fn name(&self) -> &'static str {
        if cfg!(feature = "fips") {
            "aws-lc-rs (FIPS module)"
        } else {
            "aws-lc-rs"
        }
    }

    fn fips_mode(&self) -> bool {
        // Built with the `fips` feature, aws-lc-rs links aws-lc's FIPS module and says
        // whether it runs in its approved mode; otherwise it never does.
        cfg!(feature = "fips") && aws_lc_rs::try_fips_mode().is_ok()
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        rand::SystemRandom::new().fill(out).map_err(|_| CryptoError)
    }

    fn aead_key(&self, alg: AeadAlg, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        match alg {
            AeadAlg::AesGcm => {
                let algorithm = match key.len() {
                    16 => &AES_128_GCM,
                    24 => &AES_192_GCM,
                    32 => &AES_256_GCM,
                    _ => return Err(CryptoError),
                };
                let unbound = UnboundKey::new(algorithm, key).map_err(|_| CryptoError)?;
                Ok(Box::new(GcmKey(LessSafeKey::new(unbound))))
            }
        }
    }

    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        let info = [info];
        prk.expand(&info, Len(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| CryptoError)
    }

    fn hmac_sha256_key(&self, key: &[u8]) -> Box<dyn HmacSha256Key> {
        Box::new(PreparedHmac(hmac::Key::new(hmac::HMAC_SHA256, key)))
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(a, b).is_ok()
    }

    fn rsa_generate(&self, bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(CryptoError),
        };
        let key = PrivateDecryptingKey::generate(size).map_err(|_| CryptoError)?;
        let pkcs8 = Zeroizing::new(key.as_der().map_err(|_| CryptoError)?.as_ref().to_vec());
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError)?
            .as_ref()
            .to_vec();
        Ok((pkcs8, spki))
    }

    fn rsa_oaep_decrypt(
        &self,
        pkcs8: &[u8],
        hash: OaepHash,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use aws_lc_rs::rsa::{
            OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1,
            OAEP_SHA256_MGF1SHA256,
        };
        let key = OaepPrivateDecryptingKey::new(
            PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError)?,
        )
        .map_err(|_| CryptoError)?;
        let alg = match hash {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        };
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let n = key
            .decrypt(alg, ciphertext, &mut out, None)
            .map_err(|_| CryptoError)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn aes_kwp_wrap(&self, kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::key_wrap::KeyWrapPadded as _;
        // KWP pads to a multiple of 8 and adds one 8-byte block.
        let mut out = vec![0u8; plaintext.len().div_ceil(8) * 8 + 8];
        let n = kwp_key(kek)?
            .wrap_with_padding(plaintext, &mut out)
            .map_err(|_| CryptoError)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn aes_kwp_unwrap(
        &self,
        kek: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use aws_lc_rs::key_wrap::KeyWrapPadded as _;
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
        let n = kwp_key(kek)?
            .unwrap_with_padding(ciphertext, &mut out)
            .map_err(|_| CryptoError)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn rsa_oaep_encrypt(
        &self,
        spki: &[u8],
        hash: OaepHash,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::rsa::{
            OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
            OAEP_SHA256_MGF1SHA256,
        };
        let key = OaepPublicEncryptingKey::new(
            PublicEncryptingKey::from_der(spki).map_err(|_| CryptoError)?,
        )
        .map_err(|_| CryptoError)?;
        let alg = match hash {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
        };
        let mut out = vec![0u8; key.ciphertext_size()];
        let n = key
            .encrypt(alg, plaintext, &mut out, None)
            .map_err(|_| CryptoError)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    fn aes_cbc_pkcs7_decrypt(
        &self,
        key: &[u8],
        iv: &[u8; 16],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use aws_lc_rs::cipher::{
            DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey, AES_128, AES_192,
            AES_256,
        };
        use aws_lc_rs::iv::FixedLength;
        let alg = match key.len() {
            16 => &AES_128,
            24 => &AES_192,
            32 => &AES_256,
            _ => return Err(CryptoError),
        };
        let k = PaddedBlockDecryptingKey::cbc_pkcs7(
            UnboundCipherKey::new(alg, key).map_err(|_| CryptoError)?,
        )
        .map_err(|_| CryptoError)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let n = k
            .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(*iv)))
            .map_err(|_| CryptoError)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    fn sig_generate(&self, alg: SigAlg) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
        let rng = rand::SystemRandom::new();
        let pkcs8 = match ecdsa_signing(alg) {
            None => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CryptoError)?,
            Some(a) => EcdsaKeyPair::generate_pkcs8(a, &rng).map_err(|_| CryptoError)?,
        };
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let public = Self::sig_keypair(alg, &pkcs8)?.public();
        Ok((pkcs8, public))
    }

    fn pbkdf2_hmac_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let n = std::num::NonZeroU32::new(iterations).ok_or(CryptoError)?;
        if out.is_empty() || out.len() > 1024 {
            return Err(CryptoError);
        }
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            n,
            salt,
            password,
            out,
        );
        Ok(())
    }

    fn ec_private_to_pkcs8(
        &self,
        alg: SigAlg,
        der: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let a = ecdsa_signing(alg).ok_or(CryptoError)?;
        let k = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(a, der)
            .map_err(|_| CryptoError)?;
        let doc = k.to_pkcs8v1().map_err(|_| CryptoError)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    fn sig_public_key(&self, alg: SigAlg, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(Self::sig_keypair(alg, pkcs8)?.public())
    }

    fn sig_sign(&self, alg: SigAlg, pkcs8: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match Self::sig_keypair(alg, pkcs8)? {
            SigKeyPair::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
            SigKeyPair::Ec(k) => k
                .sign(&rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError),
        }
    }

    fn sig_verify(&self, alg: SigAlg, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        use aws_lc_rs::signature::{
            UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1,
            ECDSA_P521_SHA512_ASN1, ED25519,
        };
        let v: &'static dyn VerificationAlgorithm = match alg {
            SigAlg::Ed25519 => &ED25519,
            SigAlg::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
            SigAlg::EcdsaP521Sha512 => &ECDSA_P521_SHA512_ASN1,
        };
        UnparsedPublicKey::new(v, public_key)
            .verify(msg, sig)
            .is_ok()
    }

    fn hpke_generate(&self) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        use hpke::{Kem as _, Serializable as _};
        let mut ikm = Zeroizing::new([0u8; 32]);
        self.fill_random(ikm.as_mut())?;
        let (sk, pk) = HpkeKem::derive_keypair(ikm.as_ref());
        Ok((
            Zeroizing::new(sk.to_bytes().to_vec()),
            pk.to_bytes().to_vec(),
        ))
    }

    fn hpke_seal(
        &self,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use hpke::{Deserializable as _, Serializable as _};
        let pk =
            <HpkeKem as hpke::Kem>::PublicKey::from_bytes(public_key).map_err(|_| CryptoError)?;
        let mut rng = PrefilledRng::new()?;
        let (enc, ct) = hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem, _>(
            &hpke::OpModeS::Base,
            &pk,
            info,
            plaintext,
            aad,
            &mut rng,
        )
        .map_err(|_| CryptoError)?;
        if rng.exhausted {
            return Err(CryptoError);
        }
        let mut out = enc.to_bytes().to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn hpke_open(
        &self,
        private_key: &[u8],
        info: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        use hpke::Deserializable as _;
        let sk =
            <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(private_key).map_err(|_| CryptoError)?;
        if sealed.len() < HPKE_ENC_LEN {
            return Err(CryptoError);
        }
        let (enc, ct) = sealed.split_at(HPKE_ENC_LEN);
        let enc = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| CryptoError)?;
        hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
            &hpke::OpModeR::Base,
            &sk,
            &enc,
            info,
            ct,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError)
    }

    fn digest(&self, alg: DigestAlg, data: &[u8]) -> Vec<u8> {
        let a = match alg {
            DigestAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha224 => &digest::SHA224,
            DigestAlg::Sha256 => &digest::SHA256,
            DigestAlg::Sha384 => &digest::SHA384,
            DigestAlg::Sha512 => &digest::SHA512,
            DigestAlg::Sha512_256 => &digest::SHA512_256,
            DigestAlg::Sha3_256 => &digest::SHA3_256,
            DigestAlg::Sha3_384 => &digest::SHA3_384,
            DigestAlg::Sha3_512 => &digest::SHA3_512,
            DigestAlg::Sha512_224 => return sys::sha512_224(data),
        };
        digest::digest(a, data).as_ref().to_vec()
    }

    fn block_encrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        pkcs11::block_encrypt(cipher, mode, key, iv, data)
    }

    fn block_decrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        pkcs11::block_decrypt(cipher, mode, key, iv, data)
    }

    fn mac(&self, alg: MacAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        pkcs11::mac(alg, key, data)
    }

    fn bls_aggregate_signatures(&self, sigs: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
        bls::aggregate_signatures(sigs)
    }

    fn bls_aggregate_public_keys(&self, keys: &[&[u8]]) -> Result<PublicInfo, CryptoError> {
        bls::aggregate_public_keys(keys)
    }

    fn hd_derive(
        &self,
        scheme: HdScheme,
        curve: Curve,
        parent: HdParent<'_>,
        index: u32,
    ) -> Result<HdChild, HdError> {
        hd::derive(scheme, curve, parent, index)
    }

    fn asym_generate(
        &self,
        kind: AsymKind,
    ) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        pkcs11::generate(kind)
    }

    fn rsa_generate_with(
        &self,
        bits: u32,
        exponent: u64,
    ) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        pkcs11::rsa_generate_with(bits, exponent)
    }

    fn dsa_parameters(&self, bits: u32) -> Result<Vec<u8>, CryptoError> {
        sys::dsa_parameters(bits)
    }

    fn dsa_generate(&self, params: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        pkcs11::dsa_generate(params)
    }

    fn dh_parameters(&self, bits: u32) -> Result<Vec<u8>, CryptoError> {
        sys::dh_rfc7919(bits)
    }

    fn dh_generate(&self, params: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        pkcs11::dh_generate(params)
    }

    fn prepare_private(&self, pkcs8: &[u8]) -> Result<Box<dyn PreparedPrivate>, CryptoError> {
        pkcs11::prepare(pkcs8)
    }

    fn public_info(&self, spki: &[u8]) -> Result<PublicInfo, CryptoError> {
        pkcs11::public_info(spki)
    }

    fn verify(&self, scheme: SignScheme, public: &PublicInfo, data: &[u8], sig: &[u8]) -> bool {
        pkcs11::verify(scheme, public, data, sig)
    }

    fn ml_dsa_verify(&self, public: &PublicInfo, context: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        pq::ml_dsa_verify(public, context, msg, sig)
    }

    fn ml_kem_encapsulate(
        &self,
        public: &PublicInfo,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
        pq::encapsulate(public)
    }

    fn rsa_encrypt(
        &self,
        padding: RsaPadding,
        public: &PublicInfo,
        label: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        pkcs11::rsa_encrypt(padding, public, label, plaintext)
    }

    fn digest_state_new(&self, alg: DigestAlg) -> Option<Vec<u8>> {
        sys::digest_state_new(alg)
    }

    fn digest_state_update(
        &self,
        alg: DigestAlg,
        state: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        sys::digest_state_update(alg, state, data)
    }

    fn digest_state_finish(&self, alg: DigestAlg, state: &[u8]) -> Result<Vec<u8>, CryptoError> {
        sys::digest_state_finish(alg, state)
    }

    fn argon2id(
        &self,
        password: &[u8],
        salt: &[u8],
        m_kib: u32,
        t: u32,
        p: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let params = argon2::Params::new(m_kib, t, p, Some(out.len())).map_err(|_| CryptoError)?;
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(password, salt, out)
            .map_err(|_| CryptoError)
    }
}

/// A random generator for the `hpke` crate, fed from aws-lc: it serves bytes drawn in advance
/// (so a failure of the system generator is an error, not a panic) and records exhaustion.
struct PrefilledRng {
    buf: Zeroizing<[u8; 64]>,
    used: usize,
    exhausted: bool,
}

impl PrefilledRng {
    fn new() -> Result<Self, CryptoError> {
        let mut buf = Zeroizing::new([0u8; 64]);
        rand::SystemRandom::new()
            .fill(buf.as_mut())
            .map_err(|_| CryptoError)?;
        Ok(PrefilledRng {
            buf,
            used: 0,
            exhausted: false,
        })
    }
}

impl rand_core::RngCore for PrefilledRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        match self.buf.get(self.used..self.used + dst.len()) {
            Some(src) => {
                dst.copy_from_slice(src);
                self.used += dst.len();
            }
            None => {
                dst.fill(0);
                self.exhausted = true;
            }
        }
    }
}

impl rand_core::CryptoRng for PrefilledRng {}

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::AesGcm256;
const HPKE_ENC_LEN: usize = 32;

fn ecdsa_signing(alg: SigAlg) -> Option<&'static aws_lc_rs::signature::EcdsaSigningAlgorithm> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING};
    match alg {
        SigAlg::Ed25519 => None,
        SigAlg::EcdsaP256Sha256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
        SigAlg::EcdsaP521Sha512 => Some(&ECDSA_P521_SHA512_ASN1_SIGNING),
    }
}

impl AwsLcProvider {
    fn sig_keypair(alg: SigAlg, pkcs8: &[u8]) -> Result<SigKeyPair, CryptoError> {
        use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
        match ecdsa_signing(alg) {
            None => Ed25519KeyPair::from_pkcs8(pkcs8)
                .map(SigKeyPair::Ed)
                .map_err(|_| CryptoError),
            Some(a) => EcdsaKeyPair::from_pkcs8(a, pkcs8)
                .map(SigKeyPair::Ec)
                .map_err(|_| CryptoError),
        }
    }
}

enum SigKeyPair {
    Ed(aws_lc_rs::signature::Ed25519KeyPair),
    Ec(aws_lc_rs::signature::EcdsaKeyPair),
}

impl SigKeyPair {
    fn public(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        match self {
            SigKeyPair::Ed(k) => k.public_key().as_ref().to_vec(),
            SigKeyPair::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hd;
#[cfg(test)]
mod tests_pq;

/// An AES key-encryption key of the key's size (aws-lc-rs wraps under AES-128 and AES-256).
fn kwp_key(kek: &[u8]) -> Result<aws_lc_rs::key_wrap::AesKek, CryptoError> {
    use aws_lc_rs::key_wrap::{AesKek, AES_128, AES_256};
    let cipher = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => return Err(CryptoError),
    };
    AesKek::new(cipher, kek).map_err(|_| CryptoError)
}
