//! [`TestProvider`]: a [`CryptoProvider`] for tests of the service and of the front ends
//! that should build without aws-lc (its C build is most of a clean build's time). It
//! implements what a crypto unit needs to start, seal key blobs and serve the Key Protect
//! API — hashes, HMAC, HKDF, PBKDF2, AES-GCM, AES-CBC, AES-CMAC, AES-KWP and Ed25519 —
//! through the RustCrypto and dalek crates (ADR 0008), and answers [`CryptoError`] for the
//! rest (RSA, ECDSA, HPKE, post-quantum, BIP32, …), so that a test that needs those uses
//! the production provider. It is never offered to `serve`.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce};
use hmac::Mac;
use sha2::Digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::provider::*;

/// The test provider (tests only; see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct TestProvider;

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

enum Gcm {
    K128(Box<Aes128Gcm>),
    K192(Box<Aes192Gcm>),
    K256(Box<Aes256Gcm>),
}

impl AeadKey for Gcm {
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let n = Nonce::from_slice(nonce);
        match self {
            Gcm::K128(k) => k.encrypt_in_place(n, aad, in_out),
            Gcm::K192(k) => k.encrypt_in_place(n, aad, in_out),
            Gcm::K256(k) => k.encrypt_in_place(n, aad, in_out),
        }
        .map_err(|_| CryptoError)
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], in_out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let n = Nonce::from_slice(nonce);
        match self {
            Gcm::K128(k) => k.decrypt_in_place(n, aad, in_out),
            Gcm::K192(k) => k.decrypt_in_place(n, aad, in_out),
            Gcm::K256(k) => k.decrypt_in_place(n, aad, in_out),
        }
        .map_err(|_| CryptoError)
    }
}

fn hash_parts<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn hmac_of<D>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>
where
    D: Digest + hmac::digest::core_api::BlockSizeUser,
{
    let mut m = <hmac::SimpleHmac<D> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError)?;
    m.update(data);
    Ok(m.finalize().into_bytes().to_vec())
}

/// The Ed25519 key of a PKCS#8 document (RFC 8410).
fn ed25519_key(pkcs8: &[u8]) -> Result<ed25519_dalek::SigningKey, CryptoError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8).map_err(|_| CryptoError)
}

/// AES-CBC with the AES of `C`: whole blocks, or PKCS#7 padding with `pad`, either way.
fn cbc_run<C>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    pad: bool,
    encrypt: bool,
) -> Result<Vec<u8>, CryptoError>
where
    C: cbc::cipher::BlockCipher
        + cbc::cipher::BlockEncrypt
        + cbc::cipher::BlockDecrypt
        + cbc::cipher::KeyInit,
{
    use cbc::cipher::block_padding::{NoPadding, Pkcs7};
    use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
    let bad = |_| CryptoError;
    if encrypt {
        let enc = cbc::Encryptor::<C>::new_from_slices(key, iv).map_err(bad)?;
        return match pad {
            true => Ok(enc.encrypt_padded_vec_mut::<Pkcs7>(data)),
            false if data.len().is_multiple_of(16) => {
                Ok(enc.encrypt_padded_vec_mut::<NoPadding>(data))
            }
            false => Err(CryptoError),
        };
    }
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(bad)?;
    match pad {
        true => dec.decrypt_padded_vec_mut::<Pkcs7>(data),
        false => dec.decrypt_padded_vec_mut::<NoPadding>(data),
    }
    .map_err(|_| CryptoError)
}

impl TestProvider {
    /// AES-CBC under a 128-, 192- or 256-bit key.
    fn aes_cbc(
        key: &[u8],
        iv: &[u8],
        data: &[u8],
        pad: bool,
        encrypt: bool,
    ) -> Result<Vec<u8>, CryptoError> {
        match key.len() {
            16 => cbc_run::<aes::Aes128>(key, iv, data, pad, encrypt),
            24 => cbc_run::<aes::Aes192>(key, iv, data, pad, encrypt),
            32 => cbc_run::<aes::Aes256>(key, iv, data, pad, encrypt),
            _ => Err(CryptoError),
        }
    }
}

/// An HMAC-SHA-256 state with the key's pads absorbed; each message starts from a copy.
struct PreparedHmac(hmac::Hmac<sha2::Sha256>);

impl HmacSha256Key for PreparedHmac {
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

impl CryptoProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test provider (RustCrypto; tests only)"
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::getrandom(out).map_err(|_| CryptoError)
    }

    fn aead_key(&self, alg: AeadAlg, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        let AeadAlg::AesGcm = alg;
        let bad = |_| CryptoError;
        Ok(Box::new(match key.len() {
            16 => Gcm::K128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?)),
            24 => Gcm::K192(Box::new(Aes192Gcm::new_from_slice(key).map_err(bad)?)),
            32 => Gcm::K256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?)),
            _ => return Err(CryptoError),
        }))
    }

    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
            .expand(info, out)
            .map_err(|_| CryptoError)
    }

    fn hmac_sha256_key(&self, key: &[u8]) -> Box<dyn HmacSha256Key> {
        Box::new(PreparedHmac(
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        ))
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&hash_parts::<sha2::Sha256>(parts));
        out
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        a.ct_eq(b).into()
    }

    fn rsa_generate(&self, _bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        Err(CryptoError)
    }

    fn rsa_oaep_decrypt(
        &self,
        _: &[u8],
        _: OaepHash,
        _: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError)
    }

    fn rsa_oaep_encrypt(&self, _: &[u8], _: OaepHash, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn aes_cbc_pkcs7_decrypt(
        &self,
        key: &[u8],
        iv: &[u8; 16],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Self::aes_cbc(key, iv, ciphertext, true, false).map(Zeroizing::new)
    }

    fn sig_generate(&self, alg: SigAlg) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        if alg != SigAlg::Ed25519 {
            return Err(CryptoError);
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        self.fill_random(seed.as_mut())?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pkcs8 = key.to_pkcs8_der().map_err(|_| CryptoError)?;
        Ok((
            Zeroizing::new(pkcs8.as_bytes().to_vec()),
            key.verifying_key().to_bytes().to_vec(),
        ))
    }

    fn pbkdf2_hmac_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if iterations == 0 || out.is_empty() || out.len() > 1024 {
            return Err(CryptoError);
        }
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, out);
        Ok(())
    }

    fn ec_private_to_pkcs8(&self, _: SigAlg, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError)
    }

    fn sig_public_key(&self, alg: SigAlg, pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if alg != SigAlg::Ed25519 {
            return Err(CryptoError);
        }
        Ok(ed25519_key(pkcs8)?.verifying_key().to_bytes().to_vec())
    }

    fn sig_sign(&self, alg: SigAlg, pkcs8: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use ed25519_dalek::Signer;
        if alg != SigAlg::Ed25519 {
            return Err(CryptoError);
        }
        Ok(ed25519_key(pkcs8)?.sign(msg).to_bytes().to_vec())
    }

    fn sig_verify(&self, alg: SigAlg, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(pk), Ok(sig)) = (
            <[u8; 32]>::try_from(public_key),
            ed25519_dalek::Signature::from_slice(sig),
        ) else {
            return false;
        };
        alg == SigAlg::Ed25519
            && ed25519_dalek::VerifyingKey::from_bytes(&pk)
                .is_ok_and(|k| k.verify_strict(msg, &sig).is_ok())
    }

    fn hpke_generate(&self) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        Err(CryptoError)
    }

    fn hpke_seal(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn hpke_open(
        &self,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        Err(CryptoError)
    }

    fn argon2id(
        &self,
        _: &[u8],
        _: &[u8],
        _: u32,
        _: u32,
        _: u32,
        _: &mut [u8],
    ) -> Result<(), CryptoError> {
        Err(CryptoError)
    }

    fn digest(&self, alg: DigestAlg, data: &[u8]) -> Vec<u8> {
        let parts = [data];
        match alg {
            DigestAlg::Sha1 => hash_parts::<sha1::Sha1>(&parts),
            DigestAlg::Sha224 => hash_parts::<sha2::Sha224>(&parts),
            DigestAlg::Sha256 => hash_parts::<sha2::Sha256>(&parts),
            DigestAlg::Sha384 => hash_parts::<sha2::Sha384>(&parts),
            DigestAlg::Sha512 => hash_parts::<sha2::Sha512>(&parts),
            DigestAlg::Sha512_256 => hash_parts::<sha2::Sha512_256>(&parts),
            DigestAlg::Sha512_224 => hash_parts::<sha2::Sha512_224>(&parts),
            DigestAlg::Sha3_256 => hash_parts::<sha3::Sha3_256>(&parts),
            DigestAlg::Sha3_384 => hash_parts::<sha3::Sha3_384>(&parts),
            DigestAlg::Sha3_512 => hash_parts::<sha3::Sha3_512>(&parts),
        }
    }

    fn digest_state_new(&self, _alg: DigestAlg) -> Option<Vec<u8>> {
        // No exportable states: callers buffer multi-part digests.
        None
    }

    fn digest_state_update(
        &self,
        _: DigestAlg,
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn digest_state_finish(&self, _: DigestAlg, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn block_encrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match (cipher, mode) {
            (BlockCipher::Aes, CipherMode::Cbc) => Self::aes_cbc(key, iv, data, false, true),
            (BlockCipher::Aes, CipherMode::CbcPad) => Self::aes_cbc(key, iv, data, true, true),
            _ => Err(CryptoError),
        }
    }

    fn block_decrypt(
        &self,
        cipher: BlockCipher,
        mode: CipherMode,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match (cipher, mode) {
            (BlockCipher::Aes, CipherMode::Cbc) => Self::aes_cbc(key, iv, data, false, false),
            (BlockCipher::Aes, CipherMode::CbcPad) => Self::aes_cbc(key, iv, data, true, false),
            _ => Err(CryptoError),
        }
        .map(Zeroizing::new)
    }

    fn mac(&self, alg: MacAlg, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        macro_rules! cmac_of {
            ($aes:ty) => {{
                let mut m =
                    <cmac::Cmac<$aes> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError)?;
                m.update(data);
                Ok(m.finalize().into_bytes().to_vec())
            }};
        }
        match alg {
            MacAlg::Hmac(DigestAlg::Sha1) => hmac_of::<sha1::Sha1>(key, data),
            MacAlg::Hmac(DigestAlg::Sha256) => hmac_of::<sha2::Sha256>(key, data),
            MacAlg::Hmac(DigestAlg::Sha384) => hmac_of::<sha2::Sha384>(key, data),
            MacAlg::Hmac(DigestAlg::Sha512) => hmac_of::<sha2::Sha512>(key, data),
            MacAlg::Cmac(BlockCipher::Aes) => match key.len() {
                16 => cmac_of!(aes::Aes128),
                24 => cmac_of!(aes::Aes192),
                32 => cmac_of!(aes::Aes256),
                _ => Err(CryptoError),
            },
            _ => Err(CryptoError),
        }
    }

    fn aes_kwp_wrap(&self, kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let bad = |_| CryptoError;
        match kek.len() {
            16 => aes_kw::KekAes128::try_from(kek)
                .map_err(bad)?
                .wrap_with_padding_vec(plaintext),
            32 => aes_kw::KekAes256::try_from(kek)
                .map_err(bad)?
                .wrap_with_padding_vec(plaintext),
            _ => return Err(CryptoError),
        }
        .map_err(|_| CryptoError)
    }

    fn aes_kwp_unwrap(
        &self,
        kek: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let bad = |_| CryptoError;
        match kek.len() {
            16 => aes_kw::KekAes128::try_from(kek)
                .map_err(bad)?
                .unwrap_with_padding_vec(ciphertext),
            32 => aes_kw::KekAes256::try_from(kek)
                .map_err(bad)?
                .unwrap_with_padding_vec(ciphertext),
            _ => return Err(CryptoError),
        }
        .map(Zeroizing::new)
        .map_err(|_| CryptoError)
    }

    fn bls_aggregate_signatures(&self, _: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn bls_aggregate_public_keys(&self, _: &[&[u8]]) -> Result<PublicInfo, CryptoError> {
        Err(CryptoError)
    }

    fn hd_derive(
        &self,
        _: HdScheme,
        _: Curve,
        _: HdParent<'_>,
        _: u32,
    ) -> Result<HdChild, HdError> {
        Err(HdError::Curve)
    }

    fn asym_generate(&self, _: AsymKind) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        Err(CryptoError)
    }

    fn rsa_generate_with(
        &self,
        _: u32,
        _: u64,
    ) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        Err(CryptoError)
    }

    fn dsa_parameters(&self, _: u32) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn dsa_generate(&self, _: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        Err(CryptoError)
    }

    fn dh_parameters(&self, _: u32) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }

    fn dh_generate(&self, _: &[u8]) -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        Err(CryptoError)
    }

    fn prepare_private(&self, _: &[u8]) -> Result<Box<dyn PreparedPrivate>, CryptoError> {
        Err(CryptoError)
    }

    fn public_info(&self, _: &[u8]) -> Result<PublicInfo, CryptoError> {
        Err(CryptoError)
    }

    fn verify(&self, _: SignScheme, _: &PublicInfo, _: &[u8], _: &[u8]) -> bool {
        false
    }

    fn rsa_encrypt(
        &self,
        _: RsaPadding,
        _: &PublicInfo,
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_start_up_self_tests() {
        crate::run_self_tests(&TestProvider).expect("known answers");
    }

    #[test]
    fn ed25519_signs_and_verifies_and_refuses_a_changed_message() {
        let p = TestProvider;
        let (pkcs8, public) = p.sig_generate(SigAlg::Ed25519).unwrap();
        assert_eq!(p.sig_public_key(SigAlg::Ed25519, &pkcs8).unwrap(), public);
        let sig = p.sig_sign(SigAlg::Ed25519, &pkcs8, b"status").unwrap();
        assert!(p.sig_verify(SigAlg::Ed25519, &public, b"status", &sig));
        assert!(!p.sig_verify(SigAlg::Ed25519, &public, b"statuS", &sig));
        assert!(p.sig_generate(SigAlg::EcdsaP256Sha256).is_err());
    }

    #[test]
    fn aes_kwp_round_trips_and_refuses_a_changed_ciphertext() {
        let p = TestProvider;
        let kek = [9u8; 32];
        let mut wrapped = p.aes_kwp_wrap(&kek, b"twenty-one bytes long").unwrap();
        assert_eq!(
            &*p.aes_kwp_unwrap(&kek, &wrapped).unwrap(),
            b"twenty-one bytes long"
        );
        wrapped[3] ^= 1;
        assert!(p.aes_kwp_unwrap(&kek, &wrapped).is_err());
    }
}
