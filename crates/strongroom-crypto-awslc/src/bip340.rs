//! BIP340 Schnorr signatures on secp256k1, from RustCrypto's `k256` (aws-lc-rs has no
//! Schnorr; see docs/adr/0005-curve-arithmetic-for-ibm-mechanisms.md). The key stays an
//! aws-lc ECDSA key; its BIP340 form is made once per opened key and zeroized with it.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use k256::schnorr::{Signature, SigningKey, VerifyingKey};
use strongroom_engine::provider::CryptoError;

/// The BIP340 signing key of an aws-lc secp256k1 key (zeroized when dropped).
pub(crate) fn signing_key(key: &EcdsaKeyPair) -> Result<SigningKey, CryptoError> {
    let d = key.private_key().as_be_bytes().map_err(|_| CryptoError)?;
    SigningKey::from_bytes(d.as_ref()).map_err(|_| CryptoError)
}

/// Signs `msg` (any length, BIP340 as revised in 2022) with fresh auxiliary randomness.
pub(crate) fn sign(sk: &SigningKey, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut aux = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(aux.as_mut())
        .map_err(|_| CryptoError)?;
    sign_with(sk, msg, &aux)
}

/// Signs with the given auxiliary randomness (the known-answer tests fix it).
pub(crate) fn sign_with(
    sk: &SigningKey,
    msg: &[u8],
    aux: &[u8; 32],
) -> Result<Vec<u8>, CryptoError> {
    let sig = sk.sign_raw(msg, aux).map_err(|_| CryptoError)?;
    Ok(sig.to_bytes().to_vec())
}

/// Verifies under the x-only form of an uncompressed or compressed secp256k1 point.
pub(crate) fn verify(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let x = match point {
        [0x04, rest @ ..] if rest.len() == 64 => &rest[..32],
        [0x02 | 0x03, rest @ ..] if rest.len() == 32 => rest,
        _ => return false,
    };
    let (Ok(vk), Ok(sig)) = (VerifyingKey::from_bytes(x), Signature::try_from(sig)) else {
        return false;
    };
    vk.verify_raw(msg, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    //! BIP340's own vectors (tests/vectors/bip340/test-vectors.csv; source in
    //! tests/vectors/SOURCE.md): every signature reproduced from its key and auxiliary
    //! randomness, every verification result matched.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A secp256k1 key from its secret scalar, through an RFC 5915 ECPrivateKey.
    fn key(d: &[u8]) -> EcdsaKeyPair {
        let mut der = hex::decode("30250201010420").unwrap();
        der.extend_from_slice(d);
        EcdsaKeyPair::from_private_key_der(
            &aws_lc_rs::signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            &der,
        )
        .unwrap()
    }

    #[test]
    fn bip340_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/bip340/test-vectors.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let (mut signed, mut verified) = (0, 0);
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.splitn(8, ',').collect();
            let h = |s: &str| hex::decode(s).unwrap();
            let (msg, sig, ok) = (h(f[4]), h(f[5]), f[6] == "TRUE");
            if !f[1].is_empty() {
                let aux: [u8; 32] = h(f[3]).try_into().unwrap();
                assert_eq!(
                    sign_with(&signing_key(&key(&h(f[1]))).unwrap(), &msg, &aux).unwrap(),
                    sig,
                    "vector {}",
                    f[0]
                );
                signed += 1;
            }
            let point = [&[2u8][..], &h(f[2])].concat();
            assert_eq!(verify(&point, &msg, &sig), ok, "vector {}: {}", f[0], f[7]);
            verified += 1;
        }
        assert_eq!((signed, verified), (8, 19));
    }
}
