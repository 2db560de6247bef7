//! BIP32 and SLIP-0010 key trees. aws-lc-rs computes HMAC-SHA-512 and makes and reads the
//! keys; the arithmetic it does not expose (adding scalars modulo the group order, adding
//! points) comes from RustCrypto's `k256` (secp256k1) and `p256` (P-256), see
//! docs/adr/0005-curve-arithmetic-for-ibm-mechanisms.md.

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use k256::elliptic_curve::ff::{Field, PrimeField};
use k256::elliptic_curve::group::{Curve as _, Group};
use k256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use k256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, Scalar};
use strongroom_engine::der::{self, oid};
use strongroom_engine::provider::{
    Curve, HdChild, HdError, HdParent, HdScheme, PublicInfo, HD_HARDENED,
};
use zeroize::{Zeroize, Zeroizing};

/// The HMAC keys of the master key generation (BIP32; SLIP-0010 per curve).
const BITCOIN_SEED: &[u8] = b"Bitcoin seed";
const NIST256P1_SEED: &[u8] = b"Nist256p1 seed";
const ED25519_SEED: &[u8] = b"ed25519 seed";

/// One derivation step (see [`strongroom_engine::provider::CryptoProvider::hd_derive`]).
pub(crate) fn derive(
    scheme: HdScheme,
    curve: Curve,
    parent: HdParent<'_>,
    index: u32,
) -> Result<HdChild, HdError> {
    let slip10 = scheme == HdScheme::Slip10;
    match (scheme, curve) {
        (_, Curve::Secp256k1) => {
            weierstrass::<k256::Secp256k1>(curve, BITCOIN_SEED, slip10, parent, index)
        }
        (HdScheme::Slip10, Curve::P256) => {
            weierstrass::<p256::NistP256>(curve, NIST256P1_SEED, true, parent, index)
        }
        (HdScheme::Slip10, Curve::Ed25519) => ed25519(parent, index),
        _ => Err(HdError::Curve),
    }
}

/// HMAC-SHA-512 of `data` under `key`, split into its halves (IL, IR).
fn hmac512(key: &[u8], data: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let k = hmac::Key::new(hmac::HMAC_SHA512, key);
    let mut ctx = hmac::Context::with_key(&k);
    for d in data {
        ctx.update(d);
    }
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn halves(i: &[u8; 64]) -> (&[u8], [u8; 32]) {
    let mut ir = [0u8; 32];
    ir.copy_from_slice(&i[32..]);
    (&i[..32], ir)
}

/// Big-endian bytes as a scalar, if below the group order and not zero (BIP32's
/// `parse256(IL)`; EC-SDSA's private keys, nonces and signature halves).
pub(crate) fn scalar<C: CurveArithmetic>(il: &[u8]) -> Option<Scalar<C>> {
    let mut repr = FieldBytes::<C>::default();
    if repr.len() != il.len() {
        return None;
    }
    repr.copy_from_slice(il);
    let s: Option<Scalar<C>> = Scalar::<C>::from_repr(repr).into();
    s.filter(|s| !bool::from(s.is_zero()))
}

/// `serP`: the compressed encoding of a point.
fn compressed<C>(p: &C::ProjectivePoint) -> Vec<u8>
where
    C: CurveArithmetic,
    AffinePoint<C>: ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    p.to_affine().to_encoded_point(true).as_bytes().to_vec()
}

/// BIP32 and SLIP-0010 on a short Weierstrass curve. `retry` is SLIP-0010's rule for an
/// invalid key (hash again); BIP32 has none: the seed or the index gives no key.
fn weierstrass<C>(
    curve: Curve,
    seed_key: &[u8],
    retry: bool,
    parent: HdParent<'_>,
    index: u32,
) -> Result<HdChild, HdError>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let ser32 = index.to_be_bytes();
    match parent {
        HdParent::Seed(seed) => {
            let mut data = Zeroizing::new(seed.to_vec());
            loop {
                let i = hmac512(seed_key, &[&data]);
                let (il, ir) = halves(&i);
                if let Some(k) = scalar::<C>(il) {
                    return private_child::<C>(curve, k, ir);
                }
                if !retry {
                    return Err(HdError::Parent);
                }
                // SLIP-0010: hash the whole of I again.
                data = Zeroizing::new(i.to_vec());
            }
        }
        HdParent::Private { pkcs8, chain } => {
            let k = parent_scalar::<C>(curve, pkcs8)?;
            let mut data = Zeroizing::new(if index >= HD_HARDENED {
                let mut repr = k.to_repr();
                let d = [&[0u8][..], &repr, &ser32].concat();
                repr.zeroize();
                d
            } else {
                let point = C::ProjectivePoint::generator() * k;
                [compressed::<C>(&point), ser32.to_vec()].concat()
            });
            loop {
                let i = hmac512(chain, &[&data]);
                let (il, ir) = halves(&i);
                if let Some(t) = scalar::<C>(il) {
                    let child = t + k;
                    if !bool::from(child.is_zero()) {
                        return private_child::<C>(curve, child, ir);
                    }
                }
                if !retry {
                    return Err(HdError::NoChild);
                }
                data = Zeroizing::new([&[1u8][..], &ir, &ser32].concat());
            }
        }
        HdParent::Public { public, chain } => {
            if index >= HD_HARDENED {
                return Err(HdError::Hardened);
            }
            let p = k256::elliptic_curve::PublicKey::<C>::from_sec1_bytes(&public.raw)
                .map_err(|_| HdError::Parent)?
                .to_projective();
            let mut data = [compressed::<C>(&p), ser32.to_vec()].concat();
            loop {
                let i = hmac512(chain, &[&data]);
                let (il, ir) = halves(&i);
                if let Some(t) = scalar::<C>(il) {
                    let q = C::ProjectivePoint::generator() * t + p;
                    if !bool::from(q.is_identity()) {
                        let point = q.to_affine().to_encoded_point(false);
                        return Ok(HdChild {
                            private: None,
                            public: ec_public(curve, point.as_bytes())?,
                            chain: ir,
                        });
                    }
                }
                if !retry {
                    return Err(HdError::NoChild);
                }
                data = [&[1u8][..], &ir, &ser32].concat();
            }
        }
    }
}

/// The private scalar of an EC PKCS#8 on `curve`.
fn parent_scalar<C: CurveArithmetic>(curve: Curve, pkcs8: &[u8]) -> Result<Scalar<C>, HdError> {
    let alg = crate::pkcs11::ecdsa_alg(curve).map_err(|_| HdError::Curve)?;
    let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| HdError::Parent)?;
    let bin = kp
        .private_key()
        .as_be_bytes()
        .map_err(|_| HdError::Parent)?;
    scalar::<C>(bin.as_ref()).ok_or(HdError::Parent)
}

/// A child private key: its PKCS#8 (made by aws-lc from an RFC 5915 ECPrivateKey) and
/// public key.
fn private_child<C: CurveArithmetic>(
    curve: Curve,
    mut k: Scalar<C>,
    chain: [u8; 32],
) -> Result<HdChild, HdError> {
    let mut d = k.to_repr();
    k.zeroize();
    let curve_oid = crate::pkcs11::curve_oid(curve);
    // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters }
    let mut body = Zeroizing::new(Vec::with_capacity(64));
    der::write_tlv(&mut body, 0x02, &[1]);
    der::write_tlv(&mut body, 0x04, &d);
    d.zeroize();
    let mut named = Vec::new();
    der::write_tlv(&mut named, 0x06, curve_oid);
    der::write_tlv(&mut body, 0xa0, &named);
    let mut sec1 = Zeroizing::new(Vec::with_capacity(80));
    der::write_tlv(&mut sec1, 0x30, &body);
    let alg = crate::pkcs11::ecdsa_alg(curve).map_err(|_| HdError::Curve)?;
    let kp = EcdsaKeyPair::from_private_key_der(alg, &sec1).map_err(|_| HdError::Parent)?;
    child_of(kp.to_pkcs8v1(), chain)
}

/// A derived private key from its PKCS#8 (as aws-lc encoded it), with its public key.
fn child_of(
    pkcs8: Result<aws_lc_rs::pkcs8::Document, aws_lc_rs::error::Unspecified>,
    chain: [u8; 32],
) -> Result<HdChild, HdError> {
    let pkcs8 = Zeroizing::new(pkcs8.map_err(|_| HdError::Parent)?.as_ref().to_vec());
    let public = crate::pkcs11::prepare(&pkcs8)
        .map_err(|_| HdError::Parent)?
        .public()
        .clone();
    Ok(HdChild {
        private: Some(pkcs8),
        public,
        chain,
    })
}

fn ec_public(curve: Curve, point: &[u8]) -> Result<PublicInfo, HdError> {
    let spki = der::build_spki(
        oid::EC_PUBLIC_KEY,
        Some(crate::pkcs11::curve_oid(curve)),
        point,
    );
    crate::pkcs11::public_info(&spki).map_err(|_| HdError::Parent)
}

/// SLIP-0010 on Ed25519: the key is IL itself, and only hardened private derivation exists.
fn ed25519(parent: HdParent<'_>, index: u32) -> Result<HdChild, HdError> {
    let i = match parent {
        HdParent::Seed(seed) => hmac512(ED25519_SEED, &[seed]),
        HdParent::Private { pkcs8, chain } => {
            if index < HD_HARDENED {
                return Err(HdError::Hardened);
            }
            let kp =
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| HdError::Parent)?;
            let seed = kp.seed().map_err(|_| HdError::Parent)?;
            let bin = seed.as_be_bytes().map_err(|_| HdError::Parent)?;
            hmac512(chain, &[&[0u8], bin.as_ref(), &index.to_be_bytes()])
        }
        HdParent::Public { .. } => return Err(HdError::Hardened),
    };
    let (il, ir) = halves(&i);
    let kp = Ed25519KeyPair::from_seed_unchecked(il).map_err(|_| HdError::Parent)?;
    child_of(kp.to_pkcs8v1(), ir)
}
