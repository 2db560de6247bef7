//! `CKM_IBM_BTC_DERIVE` through the EP11 engine, as a GREP11 client drives it: the seed
//! imported as a generic secret, each step a DeriveKey whose CheckSum (the child's chain
//! code) feeds the next one. Checked against the BIP32 and SLIP-0010 vectors
//! (tests/vectors/hd/hd.json, sources in tests/vectors/SOURCE.md), with every bad input
//! answered by its CKR code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, ckr, Cka, Ckr};
use strongroom_engine::ep11::*;
use strongroom_engine::provider::Curve;
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_model::InstanceId;

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

fn t(items: &[(Cka, AttrValue)]) -> Template {
    items.iter().cloned().collect()
}

fn unit() -> CryptoUnit {
    let p: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    let mut u = CryptoUnit::new(Arc::clone(&p)).unwrap();
    u.set_instance(InstanceId::random());
    u.set_current_master_key(MasterKey::random(p.as_ref()).unwrap());
    u
}

/// A seed as IBM's example brings one in: a generic secret that may derive, imported with
/// UnwrapKey under an AES key.
fn import_seed(u: &CryptoUnit, seed: &[u8], derive: bool) -> Vec<u8> {
    let kek = u
        .ep11()
        .generate_key(
            &Mech::new(ckm::AES_KEY_GEN),
            &t(&[
                (cka::VALUE_LEN, AttrValue::Int(32)),
                (cka::ENCRYPT, AttrValue::Bool(true)),
                (cka::UNWRAP, AttrValue::Bool(true)),
            ]),
        )
        .unwrap()
        .blob;
    let mech = Mech {
        code: ckm::AES_CBC_PAD,
        param: MechParam::Bytes(vec![0; 16]),
    };
    let wrapped = u
        .ep11()
        .single(Op::Encrypt, &mech, &kek, seed, &[])
        .unwrap();
    let tm = t(&[
        (cka::CLASS, AttrValue::ulong(cko::SECRET_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::GENERIC_SECRET)),
        (cka::DERIVE, AttrValue::Bool(derive)),
        (cka::IBM_USE_AS_DATA, AttrValue::Bool(true)),
    ]);
    u.ep11()
        .unwrap(&mech, &kek, &[], &wrapped, &tm)
        .unwrap()
        .blob
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
