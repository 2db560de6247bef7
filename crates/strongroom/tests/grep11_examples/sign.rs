//! Signatures and verification, including DSA and PKCS#1 v1.5.

use super::*;

#[tokio::test]
async fn examples_sign_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    step("26-28: an AES key with SIGN/VERIFY used for CKM_SHA256_HMAC.");
    let k = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::SIGN, b(true)),
                (cka::VERIFY, b(true)),
            ],
        )
        .await
        .key_bytes;
    let tag = g.sign_verify_all(m(ckm::SHA256_HMAC), &k, &k, true).await;
    assert_eq!(tag.len(), 32);

    step("29-31: RSA SHA512_RSA_PKCS; 32-34: SHA512_RSA_PKCS_PSS with SHA-512 MGF1.");
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, i(65537)),
                (cka::VERIFY, b(true)),
            ],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let s1 = g
        .sign_verify_all(m(ckm::SHA512_RSA_PKCS), &private, &public, true)
        .await;
    assert_eq!(
        s1,
        g.sign1(m(ckm::SHA512_RSA_PKCS), &private, SIGN_DATA).await,
        "PKCS#1 v1.5 is deterministic"
    );
    let pss = Some(Mechanism {
        mechanism: ckm::SHA512_RSA_PKCS_PSS.0,
        parameter: Some(Parameter::RsapssParameter(pb::RsapssParm {
            hash_mech: ckm::SHA512.0,
            mgf: 4,
            salt_byte_count: 0,
        })),
    });
    g.sign_verify_all(pss, &private, &public, true).await;

    step("38-39: secp256k1 with CKM_ECDSA over the 28 bytes as the hash; 40: P-256 ECDSA_SHA512 multi-part.");
    let (public, private) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(SECP256K1)), (cka::VERIFY, b(true))],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let sig = g
        .sign_verify_all(m(ckm::ECDSA), &private, &public, false)
        .await;
    assert_eq!(sig.len(), 64);
    let (p256_pub, p256_priv) = g.p256_pair().await;
    g.sign_verify_all(m(ckm::ECDSA_SHA512), &p256_priv, &p256_pub, true)
        .await;
    step("CKM_ECDSA cannot do multi-part.");
    let r = g.r(pb::SignInitRequest {
        mech: m(ckm::ECDSA),
        priv_key: kb(&p256_priv),
        ..Default::default()
    });
    let state = g.c.sign_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::SignUpdateRequest {
        state,
        data: vec![1; 32],
    });
    assert_eq!(ckr_of(g.c.sign_update(r).await), ckr::MECHANISM_INVALID);

    step("41: a tampered signature gives CKR_SIGNATURE_INVALID; 59: another key's too.");
    let mut sig = g.sign1(m(ckm::ECDSA), &p256_priv, &[7; 32]).await;
    sig[0] ^= 0x01; // a flipped bit: setting a byte could leave it as it was
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &p256_pub, &[7; 32], &sig)
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );
    let sig = g.sign1(m(ckm::ECDSA), &private, &[7; 32]).await;
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &p256_pub, &[7; 32], &sig)
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );

    step("42-43: Ed25519 (EC_PARAMS = the Ed25519 OID) single and Init+one-shot.");
    let (ed_pub, ed_priv) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[
                (cka::EC_PARAMS, by(ED25519)),
                (cka::VERIFY, b(true)),
                (cka::EXTRACTABLE, b(false)),
            ],
            &[(cka::SIGN, b(true)), (cka::EXTRACTABLE, b(false))],
        )
        .await;
    let sig = g
        .sign_verify_all(m(ckm::IBM_ED25519_SHA512), &ed_priv, &ed_pub, false)
        .await;
    assert_eq!(sig.len(), 64);
    step(
        "Older negative tests: no SignUpdate for Ed25519; an ECDSA key with the Ed25519 mechanism.",
    );
    let r = g.r(pb::SignInitRequest {
        mech: m(ckm::IBM_ED25519_SHA512),
        priv_key: kb(&ed_priv),
        ..Default::default()
    });
    let state = g.c.sign_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::SignUpdateRequest {
        state,
        data: vec![1],
    });
    assert_eq!(ckr_of(g.c.sign_update(r).await), ckr::MECHANISM_INVALID);
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::IBM_ED25519_SHA512),
        data: vec![1],
        priv_key: kb(&p256_priv),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.sign_single(r).await), ckr::KEY_TYPE_INCONSISTENT);
    step("A key without CKA_SIGN may not sign.");
    let (_, no_sign) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256))],
            &[(cka::DERIVE, b(true))],
        )
        .await;
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::ECDSA),
        data: vec![1; 32],
        priv_key: kb(&no_sign),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.sign_single(r).await),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
}

#[tokio::test]
async fn examples_dsa_and_v1_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    step("15: DSA parameters (in the clear), then a key pair in them; 35-37: CKM_DSA_SHA1 three ways.");
    let params = g
        .gen_key(
            strongroom_grep11::ckm::DSA_PARAMETER_GEN,
            &[(cka::PRIME_BITS, i(2048))],
        )
        .await;
    assert_eq!(params.key.as_ref().unwrap().key_blobs[0], params.key_bytes);
    let (public, private) = g
        .gen_pair(
            strongroom_grep11::ckm::DSA_KEY_PAIR_GEN,
            &[
                (cka::IBM_STRUCT_PARAMS, by(&params.key_bytes)),
                (cka::VERIFY, b(true)),
            ],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let sig = g
        .sign_verify_all(m(strongroom_grep11::ckm::DSA_SHA1), &private, &public, true)
        .await;
    assert_eq!(sig.len(), 64);
    g.sign_verify_all(
        m(strongroom_grep11::ckm::DSA_SHA256),
        &private,
        &public,
        true,
    )
    .await;
    let mut bad = sig.clone();
    bad[5] ^= 1;
    assert_eq!(
        ckr_of(
            g.verify1(
                m(strongroom_grep11::ckm::DSA_SHA1),
                &public,
                SIGN_DATA,
                &bad
            )
            .await
            .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );
    step("Parameters that are not DER Dss-Parms.");
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(strongroom_grep11::ckm::DSA_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::IBM_STRUCT_PARAMS, by(b"junk"))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::DOMAIN_PARAMS_INVALID
    );

    step("The v1 examples: RSA-2048 with public exponent 17 (0x11), CKM_SHA1_RSA_PKCS, and raw CKM_RSA_PKCS over caller data.");
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, i(17)),
                (cka::VERIFY, b(true)),
            ],
            &[(cka::SIGN, b(true))],
        )
        .await;
    g.sign_verify_all(
        m(strongroom_grep11::ckm::SHA1_RSA_PKCS),
        &private,
        &public,
        true,
    )
    .await;
    g.sign_verify_all(m(ckm::RSA_PKCS), &private, &public, false)
        .await;
    let r = g.r(pb::GetAttributeValueRequest {
        object: public.clone(),
        attributes: tm(&[(cka::MODULUS_BITS, i(0))]),
        ..Default::default()
    });
    assert_eq!(
        g.c.get_attribute_value(r)
            .await
            .unwrap()
            .into_inner()
            .attributes
            .get(&cka::MODULUS_BITS.0),
        Some(&i(2048))
    );
}
