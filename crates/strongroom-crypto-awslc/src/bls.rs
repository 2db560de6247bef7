//! BLS12-381 signatures from supranational's `blst` (aws-lc has no pairings; see
//! docs/adr/0005-curve-arithmetic-for-ibm-mechanisms.md), in Ethereum's ciphersuite:
//! public keys in G1 (48 bytes compressed), signatures in G2 (96 bytes compressed),
//! `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`. Every point read is checked to be in its
//! subgroup, and a public key may not be the point at infinity.
//!
//! Keys travel as EC keys with IBM's BLS12-381 curve OID: an RFC 5915 ECPrivateKey holding
//! the 32-byte scalar inside PKCS#8, and an SPKI holding the compressed public key.

use aws_lc_rs::rand::SecureRandom;
use blst::min_pk::{AggregatePublicKey, AggregateSignature, PublicKey, SecretKey, Signature};
use blst::BLST_ERROR;
use strongroom_engine::der::{self, oid, tag};
use strongroom_engine::provider::{AsymKind, CryptoError, Curve, PublicInfo};
use zeroize::Zeroizing;

/// The ciphersuite's domain separation tag (proof-of-possession scheme, as Ethereum).
const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A BLS private key (blst zeroizes it on drop).
pub(crate) struct BlsKey(SecretKey);

/// A fresh key pair: (PKCS#8, public key).
pub(crate) fn generate() -> Result<(Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
    let mut ikm = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(ikm.as_mut())
        .map_err(|_| CryptoError)?;
    let sk = SecretKey::key_gen(ikm.as_ref(), &[]).map_err(|_| CryptoError)?;
    let d = Zeroizing::new(sk.to_bytes());
    Ok((pkcs8_of(d.as_ref()), public_of(&sk)?))
}

/// PKCS#8 { id-ecPublicKey, BLS12-381 } around ECPrivateKey { 1, scalar }.
fn pkcs8_of(d: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut ec = Zeroizing::new(Vec::with_capacity(40));
    der::write_tlv(&mut ec, tag::INTEGER, &[1]);
    der::write_tlv(&mut ec, tag::OCTET_STRING, d);
    let mut sec1 = Zeroizing::new(Vec::with_capacity(42));
    der::write_tlv(&mut sec1, tag::SEQUENCE, &ec);
    let mut alg = Vec::new();
    der::write_tlv(&mut alg, tag::OID, oid::EC_PUBLIC_KEY);
    der::write_tlv(&mut alg, tag::OID, oid::BLS12_381);
    let mut body = Zeroizing::new(Vec::with_capacity(80));
    der::write_tlv(&mut body, tag::INTEGER, &[0]);
    der::write_tlv(&mut body, tag::SEQUENCE, &alg);
    der::write_tlv(&mut body, tag::OCTET_STRING, &sec1);
    let mut out = Zeroizing::new(Vec::with_capacity(96));
    der::write_tlv(&mut out, tag::SEQUENCE, &body);
    out
}

fn public_of(sk: &SecretKey) -> Result<PublicInfo, CryptoError> {
    public_info(&sk.sk_to_pk().compress())
}

/// The public key of a compressed G1 point (checked: on the curve, in the subgroup, not
/// the point at infinity).
pub(crate) fn public_info(raw: &[u8]) -> Result<PublicInfo, CryptoError> {
    PublicKey::key_validate(raw).map_err(|_| CryptoError)?;
    Ok(PublicInfo {
        kind: AsymKind::Ec(Curve::Bls12381),
        raw: raw.to_vec(),
        spki: der::build_spki(oid::EC_PUBLIC_KEY, Some(oid::BLS12_381), raw),
    })
}

/// Reads the PKCS#8 [`generate`] writes: (key, public key).
pub(crate) fn prepare(pkcs8: &[u8]) -> Result<(BlsKey, PublicInfo), CryptoError> {
    let sec1 = der::pkcs8_private_key(pkcs8).ok_or(CryptoError)?;
    let (ec, _) = der::expect(sec1, tag::SEQUENCE).ok_or(CryptoError)?;
    let (_version, rest) = der::expect(ec, tag::INTEGER).ok_or(CryptoError)?;
    let (d, _) = der::expect(rest, tag::OCTET_STRING).ok_or(CryptoError)?;
    let sk = SecretKey::from_bytes(d).map_err(|_| CryptoError)?;
    let public = public_of(&sk)?;
    Ok((BlsKey(sk), public))
}

impl BlsKey {
    /// Signs `msg`: a 96-byte compressed G2 point.
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg, DST, &[]).compress().to_vec()
    }
}

/// Verifies a signature by a compressed public key.
pub(crate) fn verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        PublicKey::key_validate(public),
        Signature::sig_validate(sig, true),
    ) else {
        return false;
    };
    sig.verify(false, msg, DST, &[], &pk, false) == BLST_ERROR::BLST_SUCCESS
}

/// The aggregate of signatures (each checked to be in G2; the point at infinity may be one).
pub(crate) fn aggregate_signatures(sigs: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
    let parsed = sigs
        .iter()
        .map(|s| Signature::sig_validate(s, false))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CryptoError)?;
    let refs: Vec<&Signature> = parsed.iter().collect();
    let agg = AggregateSignature::aggregate(&refs, false).map_err(|_| CryptoError)?;
    Ok(agg.to_signature().compress().to_vec())
}

/// The aggregate of public keys (each checked, none the point at infinity).
pub(crate) fn aggregate_public_keys(keys: &[&[u8]]) -> Result<PublicInfo, CryptoError> {
    let parsed = keys
        .iter()
        .map(|k| PublicKey::key_validate(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CryptoError)?;
    let refs: Vec<&PublicKey> = parsed.iter().collect();
    let agg = AggregatePublicKey::aggregate(&refs, false).map_err(|_| CryptoError)?;
    public_info(&agg.to_public_key().compress())
}

#[cfg(test)]
mod tests {
    //! Ethereum's BLS vectors (tests/vectors/bls/ethereum.json; source in
    //! tests/vectors/SOURCE.md): keys, signatures, aggregates, aggregate verification.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    use crate::test_vectors::hx as h;

    fn vectors() -> serde_json::Value {
        crate::test_vectors::json("bls/ethereum.json")
    }

    #[test]
    fn ethereum_vectors() {
        let v = vectors();
        for k in v["keys"].as_array().unwrap() {
            let (key, public) = prepare(&pkcs8_of(&h(&k["private"]))).unwrap();
            assert_eq!(public.raw, h(&k["public"]));
            assert_eq!(
                prepare(&pkcs8_of(&h(&k["private"]))).unwrap().1.spki,
                public.spki
            );
            drop(key);
        }
        for c in v["sign"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let r = prepare(&pkcs8_of(&h(&c["private"])));
            if c["signature"].is_null() {
                assert!(r.is_err(), "{name}: the zero key is refused");
                continue;
            }
            let (key, public) = r.unwrap();
            let msg = h(&c["message"]);
            let sig = key.sign(&msg);
            assert_eq!(sig, h(&c["signature"]), "{name}");
            assert!(verify(&public.raw, &msg, &sig), "{name}");
            assert!(
                !verify(&public.raw, &[msg.as_slice(), b"!"].concat(), &sig),
                "{name}"
            );
        }
        for c in v["aggregate"].as_array().unwrap() {
            let sigs: Vec<Vec<u8>> = c["signatures"].as_array().unwrap().iter().map(h).collect();
            let refs: Vec<&[u8]> = sigs.iter().map(Vec::as_slice).collect();
            let got = aggregate_signatures(&refs);
            match c["aggregate"].is_null() {
                true => assert!(got.is_err(), "{}", c["name"]),
                false => assert_eq!(got.unwrap(), h(&c["aggregate"]), "{}", c["name"]),
            }
        }
        for c in v["fast_aggregate_verify"].as_array().unwrap() {
            let keys: Vec<Vec<u8>> = c["publics"].as_array().unwrap().iter().map(h).collect();
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let ok = aggregate_public_keys(&refs)
                .is_ok_and(|pk| verify(&pk.raw, &h(&c["message"]), &h(&c["signature"])));
            assert_eq!(ok, c["valid"].as_bool().unwrap(), "{}", c["name"]);
        }
        // The point at infinity is no public key.
        assert!(public_info(&{
            let mut inf = vec![0u8; 48];
            inf[0] = 0xc0;
            inf
        })
        .is_err());
    }

    #[test]
    fn generated_keys_sign_and_survive_their_encoding() {
        let (pkcs8, public) = generate().unwrap();
        let (key, again) = prepare(&pkcs8).unwrap();
        assert_eq!(again, public);
        assert_eq!(public.raw.len(), 48);
        let sig = key.sign(b"m");
        assert_eq!(sig.len(), 96);
        assert!(verify(&public.raw, b"m", &sig));
    }
}
