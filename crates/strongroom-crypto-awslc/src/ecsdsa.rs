//! IBM's two EC-SDSA (Schnorr) forms of `CKM_IBM_ECDSA_OTHER`, on P-256 and secp256k1.
//!
//! No maintained crate implements EC-SDSA, so the scheme is written here from its
//! specifications over the group arithmetic of RustCrypto's `k256` and `p256` (the crates
//! BIP32 already uses; see docs/adr/0009-ec-sdsa.md). SHA-256 and the nonces come from
//! aws-lc. Signatures are `r ‖ s`, 32 bytes each.
//!
//! - [`EcSdsa::Standard`] (BSI TR-03111, ISO/IEC 14888-3): `W = k·G`,
//!   `r = SHA-256(x(W) ‖ y(W) ‖ M)`, `e = r mod n`, `s = k + e·d`. Verification computes
//!   `W' = s·G − e·P` and compares the hash of its coordinates with `r`.
//! - [`EcSdsa::CompressedMulti`] (IBM's "compressed multi", Zilliqa's Schnorr):
//!   `r = SHA-256(W ‖ P ‖ M) mod n` over compressed points, `s = k − r·d`; verification
//!   computes `W' = s·G + r·P`.
//!
//! A nonce, `e` or `s` of zero draws a new nonce, as both specifications say.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use k256::elliptic_curve::ff::{Field, PrimeField};
use k256::elliptic_curve::group::{Curve as _, Group};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint, ModulusSize, ToEncodedPoint};
use k256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, Scalar};
use strongroom_engine::provider::{CryptoError, Curve, EcSdsa};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of `r` and of `s`.
const HALF: usize = 32;

/// New nonces drawn before giving up (each draw fails with probability about 2⁻²²⁴ on
/// secp256k1 and 2⁻³² on P-256, whose order is just below 2²⁵⁶).
const TRIES: usize = 64;

/// Signs `msg` with the private key of `key` (P-256 or secp256k1) and a fresh nonce.
pub(crate) fn sign(
    form: EcSdsa,
    curve: Curve,
    key: &EcdsaKeyPair,
    public: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let d = key.private_key().as_be_bytes().map_err(|_| CryptoError)?;
    match curve {
        Curve::Secp256k1 => {
            sign_with::<k256::Secp256k1>(form, d.as_ref(), public, msg, random_nonce)
        }
        Curve::P256 => sign_with::<p256::NistP256>(form, d.as_ref(), public, msg, random_nonce),
        _ => Err(CryptoError),
    }
}

/// Whether `sig` is a signature of `msg` under the point `public` (SEC1, compressed or not).
pub(crate) fn verify(form: EcSdsa, curve: Curve, public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    match curve {
        Curve::Secp256k1 => verify_on::<k256::Secp256k1>(form, public, msg, sig),
        Curve::P256 => verify_on::<p256::NistP256>(form, public, msg, sig),
        _ => false,
    }
}

/// 32 random bytes from aws-lc, as a nonce if they are a non-zero scalar below the order.
fn random_nonce(out: &mut [u8; HALF]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| CryptoError)
}

fn sha256(parts: &[&[u8]]) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish()
}

/// A digest reduced modulo the group order.
fn reduced<C: CurveArithmetic>(h: &digest::Digest) -> Option<Scalar<C>> {
    let mut bytes = FieldBytes::<C>::default();
    if bytes.len() != h.as_ref().len() {
        return None;
    }
    bytes.copy_from_slice(h.as_ref());
    Some(<Scalar<C> as Reduce<C::Uint>>::reduce_bytes(&bytes))
}

fn point<C>(public: &[u8]) -> Option<C::ProjectivePoint>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let enc = EncodedPoint::<C>::from_bytes(public).ok()?;
    let p: Option<AffinePoint<C>> = AffinePoint::<C>::from_encoded_point(&enc).into();
    p.map(Into::into)
}

fn compressed<C>(p: &AffinePoint<C>) -> EncodedPoint<C>
where
    C: CurveArithmetic,
    AffinePoint<C>: ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    p.to_encoded_point(true)
}

/// The signature with nonces from `nonce` (the known-answer tests give a fixed one).
pub(crate) fn sign_with<C>(
    form: EcSdsa,
    d: &[u8],
    public: &[u8],
    msg: &[u8],
    mut nonce: impl FnMut(&mut [u8; HALF]) -> Result<(), CryptoError>,
) -> Result<Vec<u8>, CryptoError>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let mut d = crate::hd::scalar::<C>(d).ok_or(CryptoError)?;
    let signer = point::<C>(public).ok_or(CryptoError)?.to_affine();
    let signer = compressed::<C>(&signer);
    let mut k_bytes = Zeroizing::new([0u8; HALF]);
    let mut out = Err(CryptoError);
    for _ in 0..TRIES {
        nonce(&mut k_bytes)?;
        let Some(mut k) = crate::hd::scalar::<C>(k_bytes.as_ref()) else {
            continue;
        };
        let w = (C::ProjectivePoint::generator() * k).to_affine();
        let (r, e) = match form {
            EcSdsa::Standard => {
                let w = w.to_encoded_point(false);
                let h = sha256(&[w.as_bytes().get(1..).unwrap_or_default(), msg]);
                (h.as_ref().to_vec(), reduced::<C>(&h))
            }
            EcSdsa::CompressedMulti => {
                let h = sha256(&[compressed::<C>(&w).as_bytes(), signer.as_bytes(), msg]);
                let r = reduced::<C>(&h);
                (r.map(|r| r.to_repr().to_vec()).unwrap_or_default(), r)
            }
        };
        // A zero challenge would make `s` the nonce itself.
        let Some(e) = e.filter(|e| !bool::from(e.is_zero())) else {
            k.zeroize();
            continue;
        };
        let s = match form {
            EcSdsa::Standard => k + e * d,
            EcSdsa::CompressedMulti => k - e * d,
        };
        k.zeroize();
        if bool::from(s.is_zero()) {
            continue;
        }
        let mut sig = r;
        sig.extend_from_slice(&s.to_repr());
        out = Ok(sig);
        break;
    }
    d.zeroize();
    out
}

/// Verification on curve `C`.
fn verify_on<C>(form: EcSdsa, public: &[u8], msg: &[u8], sig: &[u8]) -> bool
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    if sig.len() != 2 * HALF {
        return false;
    }
    let (r, s) = sig.split_at(HALF);
    let (Some(p), Some(s)) = (point::<C>(public), crate::hd::scalar::<C>(s)) else {
        return false;
    };
    let g = C::ProjectivePoint::generator();
    match form {
        EcSdsa::Standard => {
            let mut h = FieldBytes::<C>::default();
            if h.len() != r.len() {
                return false;
            }
            h.copy_from_slice(r);
            let e = <Scalar<C> as Reduce<C::Uint>>::reduce_bytes(&h);
            if bool::from(e.is_zero()) {
                return false;
            }
            let w = g * s - p * e;
            if bool::from(w.is_identity()) {
                return false;
            }
            let w = w.to_affine().to_encoded_point(false);
            let again = sha256(&[w.as_bytes().get(1..).unwrap_or_default(), msg]);
            again.as_ref() == r
        }
        EcSdsa::CompressedMulti => {
            // `r` is a scalar here: below the order and not zero.
            let Some(r) = crate::hd::scalar::<C>(r) else {
                return false;
            };
            let w = g * s + p * r;
            if bool::from(w.is_identity()) {
                return false;
            }
            let signer = compressed::<C>(&p.to_affine());
            let h = sha256(&[
                compressed::<C>(&w.to_affine()).as_bytes(),
                signer.as_bytes(),
                msg,
            ]);
            reduced::<C>(&h) == Some(r)
        }
    }
}

#[cfg(test)]
mod tests {
    //! ISO/IEC 14888-3's EC-SDSA example on P-256 with SHA-256, and Zilliqa's Schnorr
    //! vectors on secp256k1 (tests/vectors/ecsdsa/; sources in tests/vectors/SOURCE.md):
    //! each signature reproduced from its key and nonce, and verified; then keys made here
    //! sign and verify in both forms on both curves, and altered inputs are refused.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use aws_lc_rs::signature::KeyPair;

    use crate::test_vectors::hx;

    fn vectors() -> serde_json::Value {
        crate::test_vectors::json("ecsdsa/ecsdsa.json")
    }

    /// The uncompressed public point of scalar `d` on `curve`, computed by aws-lc.
    fn public_of(curve: Curve, d: &[u8]) -> Vec<u8> {
        key(curve, d).public_key().as_ref().to_vec()
    }

    fn key(curve: Curve, d: &[u8]) -> EcdsaKeyPair {
        let (oid, alg): (&[u8], _) = match curve {
            Curve::P256 => (
                &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            _ => (
                &[0x2b, 0x81, 0x04, 0x00, 0x0a],
                &aws_lc_rs::signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            ),
        };
        // ECPrivateKey { version 1, privateKey, [0] namedCurve }
        let mut body = vec![0x02, 0x01, 0x01, 0x04, 0x20];
        body.extend_from_slice(d);
        body.extend_from_slice(&[0xa0, oid.len() as u8 + 2, 0x06, oid.len() as u8]);
        body.extend_from_slice(oid);
        let mut der = vec![0x30, body.len() as u8];
        der.extend_from_slice(&body);
        EcdsaKeyPair::from_private_key_der(alg, &der).unwrap()
    }

    fn fixed(k: Vec<u8>) -> impl FnMut(&mut [u8; HALF]) -> Result<(), CryptoError> {
        move |out| {
            out.copy_from_slice(&k);
            Ok(())
        }
    }

    #[test]
    fn iso_14888_3_example_on_p256() {
        let v = &vectors()["iso14888_3_p256_sha256"];
        let (d, k, msg, sig) = (hx(&v["d"]), hx(&v["k"]), hx(&v["msg"]), hx(&v["sig"]));
        let public = public_of(Curve::P256, &d);
        assert_eq!(public, hx(&v["public"]));
        let made =
            sign_with::<p256::NistP256>(EcSdsa::Standard, &d, &public, &msg, fixed(k)).unwrap();
        assert_eq!(hex::encode(&made), hex::encode(&sig));
        assert!(verify(EcSdsa::Standard, Curve::P256, &public, &msg, &sig));
        // The other form, another message, another key: refused.
        assert!(!verify(
            EcSdsa::CompressedMulti,
            Curve::P256,
            &public,
            &msg,
            &sig
        ));
        assert!(!verify(
            EcSdsa::Standard,
            Curve::P256,
            &public,
            b"abd",
            &sig
        ));
        let other = public_of(Curve::P256, &[7u8; 32]);
        assert!(!verify(EcSdsa::Standard, Curve::P256, &other, &msg, &sig));
    }

    #[test]
    fn zilliqa_vectors_on_secp256k1() {
        let all = vectors();
        let cases = all["zilliqa_schnorr_secp256k1"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for (i, v) in cases.iter().enumerate() {
            let (d, k, msg) = (hx(&v["priv"]), hx(&v["k"]), hx(&v["msg"]));
            let public = public_of(Curve::Secp256k1, &d);
            // The vector's public key is the compressed form of the same point.
            let p = point::<k256::Secp256k1>(&public).unwrap().to_affine();
            assert_eq!(
                compressed::<k256::Secp256k1>(&p).as_bytes(),
                hx(&v["pub"]).as_slice(),
                "case {i}"
            );
            let mut sig = hx(&v["r"]);
            sig.extend_from_slice(&hx(&v["s"]));
            let made =
                sign_with::<k256::Secp256k1>(EcSdsa::CompressedMulti, &d, &public, &msg, fixed(k))
                    .unwrap();
            assert_eq!(hex::encode(&made), hex::encode(&sig), "case {i}");
            assert!(
                verify(
                    EcSdsa::CompressedMulti,
                    Curve::Secp256k1,
                    &public,
                    &msg,
                    &sig
                ),
                "case {i}"
            );
            assert!(!verify(
                EcSdsa::Standard,
                Curve::Secp256k1,
                &public,
                &msg,
                &sig
            ));
        }
    }

    #[test]
    fn keys_sign_and_verify_in_both_forms_and_altered_input_is_refused() {
        for curve in [Curve::P256, Curve::Secp256k1] {
            for form in [EcSdsa::Standard, EcSdsa::CompressedMulti] {
                let mut d = [0u8; 32];
                aws_lc_rs::rand::SystemRandom::new().fill(&mut d).unwrap();
                d[0] &= 0x7f;
                let kp = key(curve, &d);
                let public = kp.public_key().as_ref().to_vec();
                let msg = b"move 10 coins";
                let sig = sign(form, curve, &kp, &public, msg).unwrap();
                assert_eq!(sig.len(), 64);
                assert!(
                    verify(form, curve, &public, msg, &sig),
                    "{curve:?} {form:?}"
                );
                // A fresh nonce each time.
                assert_ne!(sig, sign(form, curve, &kp, &public, msg).unwrap());
                for i in [0, 31, 32, 63] {
                    let mut bad = sig.clone();
                    bad[i] ^= 1;
                    assert!(!verify(form, curve, &public, msg, &bad), "byte {i}");
                }
                assert!(!verify(form, curve, &public, msg, &sig[..63]));
                assert!(!verify(
                    form,
                    curve,
                    &public,
                    msg,
                    &[sig.as_slice(), &[0]].concat()
                ));
                // s = 0 and s = n are not scalars of a signature.
                let mut zero = sig.clone();
                zero[32..].fill(0);
                assert!(!verify(form, curve, &public, msg, &zero));
                let mut big = sig.clone();
                big[32..].fill(0xff);
                assert!(!verify(form, curve, &public, msg, &big));
                // A point of the other curve, or no point at all.
                let other = match curve {
                    Curve::P256 => Curve::Secp256k1,
                    _ => Curve::P256,
                };
                assert!(!verify(form, other, &public, msg, &sig));
                assert!(!verify(form, curve, &public[..64], msg, &sig));
            }
        }
    }
}
