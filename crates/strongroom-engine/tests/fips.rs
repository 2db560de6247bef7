//! FIPS mode: what a unit offers and refuses under the FIPS policy, and that docs/fips.md
//! says the same. `scripts/test` runs this file on the FIPS build as well, where every unit
//! is under the policy because its provider is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{t, unit_for};
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckf, ckk, ckm, cko, ckp, ckr, Ckm};
use strongroom_engine::ep11::fips::{allowed_uses, USES};
use strongroom_engine::ep11::*;
use strongroom_engine::provider::Curve;
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_model::InstanceId;

/// Two units of one instance with one master key: `plain` as the provider makes it, and
/// `fips` under the FIPS policy. On a FIPS build both are under the policy.
fn units() -> (CryptoUnit, CryptoUnit) {
    let instance = InstanceId::random();
    let mk = MasterKey::random(&AwsLcProvider).unwrap();
    let copy = MasterKey::from_bytes(*mk.expose());
    let plain = unit_for(instance, mk);
    let mut fips = unit_for(instance, copy);
    fips.enforce_fips_policy();
    (plain, fips)
}

fn ec_pair(u: &CryptoUnit, c: Curve) -> Result<(NewKey, NewKey), Ep11Error> {
    u.ep11().generate_key_pair(
        &Mech::new(ckm::EC_KEY_PAIR_GEN),
        &t(&[
            (cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(c))),
            (cka::VERIFY, AttrValue::Bool(true)),
        ]),
        &t(&[
            (cka::SIGN, AttrValue::Bool(true)),
            (cka::DERIVE, AttrValue::Bool(true)),
        ]),
    )
}

fn rsa_pair(u: &CryptoUnit) -> (NewKey, NewKey) {
    u.ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::ENCRYPT, AttrValue::Bool(true)),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[
                (cka::DECRYPT, AttrValue::Bool(true)),
                (cka::SIGN, AttrValue::Bool(true)),
            ]),
        )
        .unwrap()
}

fn refused(r: Result<impl std::fmt::Debug, Ep11Error>, ckr: strongroom_engine::ep11::consts::Ckr) {
    let e = r.expect_err("refused in FIPS mode");
    assert_eq!(e.ckr, ckr, "{}", e.detail);
    assert!(
        e.detail.contains("FIPS"),
        "the refusal says why: {}",
        e.detail
    );
}

#[test]
fn a_fips_provider_puts_every_unit_under_the_policy() {
    if std::env::var_os("STRONGROOM_EXPECT_FIPS").is_some() {
        assert!(
            AwsLcProvider.fips_mode(),
            "scripts/test runs this on the FIPS build"
        );
    }
    let u = CryptoUnit::new(std::sync::Arc::new(AwsLcProvider)).unwrap();
    assert_eq!(u.fips_policy(), AwsLcProvider.fips_mode());
    assert_eq!(u.ep11().mechanism_policy().fips, AwsLcProvider.fips_mode());
}

#[test]
fn the_policy_lists_approved_uses_only() {
    let (_, u) = units();
    let policy = u.ep11().mechanism_policy();
    assert!(policy.fips);
    let listed: Vec<MechInfo> = policy.list().collect();
    for m in &listed {
        assert_ne!(m.flags & USES, 0, "0x{:x} is listed with no use", m.code);
        assert_eq!(
            m.flags & USES & !allowed_uses(m.code),
            0,
            "0x{:x} lists a use FIPS mode refuses",
            m.code
        );
    }
    let info = |c: Ckm| u.ep11().mechanism_info(c);
    for gone in [
        ckm::DES3_KEY_GEN,
        ckm::DES2_KEY_GEN,
        ckm::DH_PKCS_KEY_PAIR_GEN,
        ckm::DSA_KEY_PAIR_GEN,
        ckm::RSA_X9_31_KEY_PAIR_GEN,
        ckm::IBM_EC_X25519,
        ckm::IBM_BTC_DERIVE,
        ckm::IBM_ECDSA_OTHER,
        ckm::IBM_EC_AGGREGATE,
        ckm::CONCATENATE_BASE_AND_KEY,
        ckm::SHA256_KEY_DERIVATION,
        ckm::ML_DSA_KEY_PAIR_GEN,
        ckm::ML_DSA,
    ] {
        assert_eq!(info(gone), None, "0x{gone:x} is not offered");
        assert!(!listed.iter().any(|m| m.code == gone));
    }
    let uses = |c: Ckm| info(c).unwrap().flags & USES;
    assert_eq!(uses(ckm::RSA_PKCS), ckf::SIGN | ckf::VERIFY);
    assert_eq!(uses(ckm::DES3_CBC), ckf::DECRYPT | ckf::UNWRAP);
    assert_eq!(uses(ckm::SHA1_RSA_PKCS), ckf::VERIFY);
    assert_eq!(uses(ckm::ECDSA_SHA1), ckf::VERIFY);
    for whole in [
        ckm::AES_GCM,
        ckm::AES_KEY_GEN,
        ckm::RSA_PKCS_OAEP,
        ckm::SHA256_RSA_PKCS_PSS,
        ckm::ECDSA_SHA256,
        ckm::ECDH1_DERIVE,
        ckm::IBM_ED25519_SHA512,
        ckm::ML_KEM_KEY_PAIR_GEN,
        ckm::ML_KEM,
        ckm::SHA256_HMAC,
    ] {
        assert_eq!(
            info(whole),
            mechanism_info(whole),
            "0x{whole:x} keeps every use"
        );
    }
    // Without the policy (and on a build that is not FIPS) everything is offered.
    if !AwsLcProvider.fips_mode() {
        let (plain, _) = units();
        assert_eq!(
            plain.ep11().mechanism_policy().list().count(),
            MECHANISMS.len()
        );
    }
}

#[test]
fn the_policy_refuses_what_it_does_not_offer() {
    let (_, u) = units();
    let e = u.ep11();
    refused(
        e.generate_key(
            &Mech::new(ckm::DES3_KEY_GEN),
            &t(&[(cka::ENCRYPT, AttrValue::Bool(true))]),
        ),
        ckr::MECHANISM_INVALID,
    );
    refused(ec_pair(&u, Curve::Secp256k1), ckr::CURVE_NOT_SUPPORTED);
    refused(ec_pair(&u, Curve::X25519), ckr::CURVE_NOT_SUPPORTED);
    refused(
        e.generate_key_pair(
            &Mech::new(ckm::ML_DSA_KEY_PAIR_GEN),
            &t(&[(cka::PARAMETER_SET, AttrValue::ulong(ckp::ML_DSA_65))]),
            &Template::new(),
        ),
        ckr::MECHANISM_INVALID,
    );

    // What is approved works: P-256 ECDSA, Ed25519, RSA signatures and OAEP, ML-KEM.
    let (p256_pub, p256_priv) = ec_pair(&u, Curve::P256).unwrap();
    let sig = e
        .single(
            Op::Sign,
            &Mech::new(ckm::ECDSA_SHA256),
            &p256_priv.blob,
            b"m",
            &[],
        )
        .unwrap();
    e.single(
        Op::Verify,
        &Mech::new(ckm::ECDSA_SHA256),
        &p256_pub.blob,
        b"m",
        &sig,
    )
    .unwrap();
    ec_pair(&u, Curve::Ed25519).unwrap();
    e.generate_key_pair(
        &Mech::new(ckm::ML_KEM_KEY_PAIR_GEN),
        &t(&[(cka::PARAMETER_SET, AttrValue::ulong(ckp::ML_KEM_768))]),
        &Template::new(),
    )
    .unwrap();
    let (rsa_pub, rsa_priv) = rsa_pair(&u);
    let di = [0x30; 51];
    let rsa_sig = e
        .single(
            Op::Sign,
            &Mech::new(ckm::RSA_PKCS),
            &rsa_priv.blob,
            &di,
            &[],
        )
        .unwrap();
    e.single(
        Op::Verify,
        &Mech::new(ckm::RSA_PKCS),
        &rsa_pub.blob,
        &di,
        &rsa_sig,
    )
    .unwrap();
    // PKCS#1 v1.5 encryption is not: RSA key transport takes OAEP.
    refused(
        e.single(
            Op::Encrypt,
            &Mech::new(ckm::RSA_PKCS),
            &rsa_pub.blob,
            b"k",
            &[],
        ),
        ckr::MECHANISM_INVALID,
    );
    refused(
        e.init(Op::Decrypt, &Mech::new(ckm::RSA_PKCS), &rsa_priv.blob),
        ckr::MECHANISM_INVALID,
    );
    // SHA-1 signatures are made no more.
    refused(
        e.single(
            Op::Sign,
            &Mech::new(ckm::SHA1_RSA_PKCS),
            &rsa_priv.blob,
            b"m",
            &[],
        ),
        ckr::MECHANISM_INVALID,
    );
    refused(
        e.init(Op::Sign, &Mech::new(ckm::ECDSA_SHA1), &p256_priv.blob),
        ckr::MECHANISM_INVALID,
    );
}

/// Keys and data from before: a unit that comes under the policy still verifies SHA-1
/// signatures and decrypts Triple-DES, but no longer makes either, and no longer uses a
/// secp256k1 key at all.
#[test]
fn legacy_keys_only_process_what_exists() {
    let (plain, u) = units();
    if plain.fips_policy() {
        // A FIPS build cannot make the keys of before; the other tests cover it.
        return;
    }
    let (rsa_pub, rsa_priv) = rsa_pair(&plain);
    let sha1 = Mech::new(ckm::SHA1_RSA_PKCS);
    let old_sig = plain
        .ep11()
        .single(Op::Sign, &sha1, &rsa_priv.blob, b"signed in 2019", &[])
        .unwrap();
    u.ep11()
        .single(
            Op::Verify,
            &sha1,
            &rsa_pub.blob,
            b"signed in 2019",
            &old_sig,
        )
        .unwrap();
    refused(
        u.ep11()
            .single(Op::Sign, &sha1, &rsa_priv.blob, b"new", &[]),
        ckr::MECHANISM_INVALID,
    );

    let des3 = plain
        .ep11()
        .generate_key(
            &Mech::new(ckm::DES3_KEY_GEN),
            &t(&[
                (cka::ENCRYPT, AttrValue::Bool(true)),
                (cka::DECRYPT, AttrValue::Bool(true)),
            ]),
        )
        .unwrap();
    let cbc = Mech {
        code: ckm::DES3_CBC_PAD,
        param: MechParam::Bytes(vec![7; 8]),
    };
    let ct = plain
        .ep11()
        .single(Op::Encrypt, &cbc, &des3.blob, b"old data", &[])
        .unwrap();
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &cbc, &des3.blob, &ct, &[])
            .unwrap(),
        b"old data"
    );
    refused(
        u.ep11().single(Op::Encrypt, &cbc, &des3.blob, b"new", &[]),
        ckr::MECHANISM_INVALID,
    );

    let (k1_pub, k1_priv) = ec_pair(&plain, Curve::Secp256k1).unwrap();
    let k1_sig = plain
        .ep11()
        .single(
            Op::Sign,
            &Mech::new(ckm::ECDSA),
            &k1_priv.blob,
            &[1; 32],
            &[],
        )
        .unwrap();
    refused(
        u.ep11().single(
            Op::Sign,
            &Mech::new(ckm::ECDSA),
            &k1_priv.blob,
            &[1; 32],
            &[],
        ),
        ckr::CURVE_NOT_SUPPORTED,
    );
    refused(
        u.ep11().single(
            Op::Verify,
            &Mech::new(ckm::ECDSA),
            &k1_pub.blob,
            &[1; 32],
            &k1_sig,
        ),
        ckr::CURVE_NOT_SUPPORTED,
    );
    let point = match k1_pub.attrs.0.get(&cka::EC_POINT) {
        Some(AttrValue::Bytes(b)) => b.clone(),
        _ => panic!("no EC point"),
    };
    refused(
        u.ep11().derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point),
            },
            &k1_priv.blob,
            &t(&[
                (cka::CLASS, AttrValue::ulong(cko::SECRET_KEY)),
                (cka::KEY_TYPE, AttrValue::ulong(ckk::GENERIC_SECRET)),
                (cka::VALUE_LEN, AttrValue::Int(32)),
            ]),
        ),
        ckr::CURVE_NOT_SUPPORTED,
    );
}

/// docs/fips.md's table names every mechanism of the table with what FIPS mode allows of
/// it, as the code decides.
#[test]
fn the_documented_table_is_the_policy() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/fips.md"))
        .unwrap();
    let mut rows = std::collections::HashMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(hex) = cells[2]
            .strip_prefix("`0x")
            .and_then(|h| h.strip_suffix('`'))
        else {
            continue;
        };
        let code = Ckm(u64::from_str_radix(hex, 16).unwrap());
        rows.insert(code, cells[3].to_string());
    }
    for m in MECHANISMS {
        let allowed = allowed_uses(m.code) & m.flags;
        let want = if allowed == m.flags & USES {
            "approved"
        } else if allowed == 0 {
            "refused"
        } else {
            "only"
        };
        let got = rows
            .get(&m.code)
            .unwrap_or_else(|| panic!("docs/fips.md has no row for 0x{:x}", m.code));
        assert!(
            got.starts_with(want),
            "docs/fips.md says '{got}' for 0x{:x}; the policy: {want}",
            m.code
        );
    }
    assert_eq!(
        rows.len(),
        MECHANISMS.len(),
        "no row for a mechanism not in the table"
    );
}
