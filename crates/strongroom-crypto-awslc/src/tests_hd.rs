//! BIP32 and SLIP-0010 against their published vectors (tests/vectors/hd/hd.json; sources
//! and licences in tests/vectors/SOURCE.md): every chain code, private key and public key
//! along each path, and every non-hardened step again from the parent's public key alone.

use super::*;
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use strongroom_engine::provider::{HdError, HD_HARDENED};

use crate::test_vectors::hx;

fn vectors() -> Vec<serde_json::Value> {
    serde_json::from_value(crate::test_vectors::json("hd/hd.json")).unwrap()
}

fn curve(name: &str) -> Curve {
    match name {
        "secp256k1" => Curve::Secp256k1,
        "P-256" => Curve::P256,
        "Ed25519" => Curve::Ed25519,
        other => panic!("unknown curve {other}"),
    }
}

/// The last index of a path like `m/0H/1`.
fn last_index(path: &str) -> Option<u32> {
    let step = path.rsplit('/').next()?;
    if step == "m" {
        return None;
    }
    Some(match step.strip_suffix('H') {
        Some(n) => n.parse::<u32>().unwrap() + HD_HARDENED,
        None => step.parse().unwrap(),
    })
}

/// The vectors' form of a key: SEC1 compressed for EC, `00 ‖ key` for Ed25519.
fn public_as_in_vectors(c: Curve, raw: &[u8]) -> Vec<u8> {
    match c {
        Curve::Ed25519 => [&[0u8][..], raw].concat(),
        _ => {
            let parity = raw[64] & 1;
            [&[2 + parity][..], &raw[1..33]].concat()
        }
    }
}

fn private_of(c: Curve, pkcs8: &[u8]) -> Vec<u8> {
    match c {
        Curve::Ed25519 => {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).unwrap();
            kp.seed().unwrap().as_be_bytes().unwrap().as_ref().to_vec()
        }
        _ => {
            let alg = crate::pkcs11::ecdsa_alg(c).unwrap();
            let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8).unwrap();
            kp.private_key().as_be_bytes().unwrap().as_ref().to_vec()
        }
    }
}

#[test]
fn bip32_and_slip10_vectors_derive_every_key_and_chain_code() {
    let p = AwsLcProvider;
    let mut checked = 0;
    for v in vectors() {
        let c = curve(v["curve"].as_str().unwrap());
        let seed = hx(&v["seed"]);
        for scheme in v["schemes"].as_array().unwrap() {
            let scheme = match scheme.as_str().unwrap() {
                "bip32" => HdScheme::Bip32,
                _ => HdScheme::Slip10,
            };
            let mut parent: Option<HdChild> = None;
            for step in v["chains"].as_array().unwrap() {
                let path = step["path"].as_str().unwrap();
                let what = format!("{} {scheme:?} {path}", v["name"]);
                let child = match (&parent, last_index(path)) {
                    (None, None) => p.hd_derive(scheme, c, HdParent::Seed(&seed), 0),
                    (Some(par), Some(i)) => {
                        let pkcs8 = par.private.as_ref().unwrap();
                        let got = p.hd_derive(
                            scheme,
                            c,
                            HdParent::Private {
                                pkcs8,
                                chain: &par.chain,
                            },
                            i,
                        );
                        // The same child's public key from the parent's public key alone.
                        let from_public = p.hd_derive(
                            scheme,
                            c,
                            HdParent::Public {
                                public: &par.public,
                                chain: &par.chain,
                            },
                            i,
                        );
                        if i >= HD_HARDENED || c == Curve::Ed25519 {
                            assert_eq!(from_public.err(), Some(HdError::Hardened), "{what}");
                        } else {
                            let pubchild = from_public.unwrap();
                            assert!(pubchild.private.is_none());
                            assert_eq!(
                                public_as_in_vectors(c, &pubchild.public.raw),
                                hx(&step["public"]),
                                "{what} (public derivation)"
                            );
                            assert_eq!(pubchild.chain.to_vec(), hx(&step["chain_code"]), "{what}");
                        }
                        got
                    }
                    _ => panic!("{what}: a path must start at m"),
                }
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(child.chain.to_vec(), hx(&step["chain_code"]), "{what}");
                let pkcs8 = child.private.as_ref().unwrap();
                assert_eq!(private_of(c, pkcs8), hx(&step["private"]), "{what}");
                assert_eq!(
                    public_as_in_vectors(c, &child.public.raw),
                    hx(&step["public"]),
                    "{what}"
                );
                assert_eq!(child.public.kind, AsymKind::Ec(c), "{what}");
                checked += 1;
                parent = Some(child);
            }
        }
    }
    assert_eq!(checked, 54);
}

#[test]
fn bip32_is_secp256k1_only_and_ed25519_has_no_normal_children() {
    let p = AwsLcProvider;
    let seed = [7u8; 32];
    for c in [Curve::P256, Curve::P384, Curve::Ed25519] {
        assert_eq!(
            p.hd_derive(HdScheme::Bip32, c, HdParent::Seed(&seed), 0)
                .err(),
            Some(HdError::Curve)
        );
    }
    assert_eq!(
        p.hd_derive(HdScheme::Slip10, Curve::P384, HdParent::Seed(&seed), 0)
            .err(),
        Some(HdError::Curve)
    );
    let m = p
        .hd_derive(HdScheme::Slip10, Curve::Ed25519, HdParent::Seed(&seed), 0)
        .unwrap();
    let pkcs8 = m.private.as_ref().unwrap();
    let normal = HdParent::Private {
        pkcs8,
        chain: &m.chain,
    };
    assert_eq!(
        p.hd_derive(HdScheme::Slip10, Curve::Ed25519, normal, 1)
            .err(),
        Some(HdError::Hardened)
    );
    // A parent that is not a key of the curve named is refused, not misread.
    let k1 = p
        .hd_derive(HdScheme::Bip32, Curve::Secp256k1, HdParent::Seed(&seed), 0)
        .unwrap();
    let wrong = HdParent::Private {
        pkcs8: k1.private.as_ref().unwrap(),
        chain: &k1.chain,
    };
    assert_eq!(
        p.hd_derive(HdScheme::Slip10, Curve::P256, wrong, 1).err(),
        Some(HdError::Parent)
    );
}
