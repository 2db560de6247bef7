//! The production [`CryptoProvider`] on aws-lc-rs. This is the only crate of Strongroom that
//! calls aws-lc; every other crate reaches cryptography through the provider trait.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::{constant_time, digest, hkdf, hmac, rand};
use strongroom_engine::provider::{AeadAlg, AeadKey, CryptoError, CryptoProvider, OaepHash};
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

impl CryptoProvider for AwsLcProvider {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
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

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&k);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
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
}

#[cfg(test)]
mod tests;
