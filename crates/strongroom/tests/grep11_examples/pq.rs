//! Beyond IBM's catalogue: ML-DSA (FIPS 204) and ML-KEM (FIPS 203) under PKCS#11 3.2's codes,
//! and the refusals of bad input (wrong parameter sets, truncated signatures and ciphertexts,
//! keys of the wrong type).

use super::*;

const MSG: &[u8] = b"post-quantum message";

#[tokio::test]
async fn ml_dsa_signs_and_verifies_with_contexts_over_grep11() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    step("The mechanisms are listed, with their parameter-set range.");
    let list =
        g.c.get_mechanism_list(g.r(pb::GetMechanismListRequest {}))
            .await
            .unwrap()
            .into_inner()
            .mechs;
    for code in [
        ckm::ML_DSA_KEY_PAIR_GEN,
        ckm::ML_DSA,
        ckm::ML_KEM_KEY_PAIR_GEN,
        ckm::ML_KEM,
    ] {
        assert!(list.contains(&code.0), "{code:?} is listed");
        let info =
            g.c.get_mechanism_info(g.r(pb::GetMechanismInfoRequest { mech: code.0 }))
                .await
                .unwrap()
                .into_inner()
                .mech_info
                .unwrap();
        assert_eq!((info.min_key_size, info.max_key_size), (1, 3));
    }

    for (set, sig_len, pk_len) in [
        (1i64, 2420usize, 1312usize),
        (2, 3309, 1952),
        (3, 4627, 2592),
    ] {
        step(&format!(
            "ML-DSA parameter set {set}: generate, sign, verify."
        ));
        let (public, private) = g
            .gen_pair(
                ckm::ML_DSA_KEY_PAIR_GEN,
                &[(cka::PARAMETER_SET, i(set)), (cka::VERIFY, b(true))],
                &[(cka::SIGN, b(true))],
            )
            .await;
        let r = g.r(pb::GetAttributeValueRequest {
            object: public.clone(),
            attributes: tm(&[(cka::KEY_TYPE, i(0)), (cka::PARAMETER_SET, i(0))]),
            ..Default::default()
        });
        let a = g.c.get_attribute_value(r).await.unwrap().into_inner();
        assert_eq!(
            a.attributes_bytes.get(&cka::KEY_TYPE.0),
            Some(&(ckk::ML_DSA.0 as i64).to_be_bytes().to_vec())
        );
        assert_eq!(
            a.attributes_bytes.get(&cka::PARAMETER_SET.0),
            Some(&set.to_be_bytes().to_vec())
        );
        let sig = g.sign1(m(ckm::ML_DSA), &private, MSG).await;
        assert_eq!(sig.len(), sig_len);
        g.verify1(m(ckm::ML_DSA), &public, MSG, &sig).await.unwrap();
        // Hedged: two signatures of one message differ, and both verify.
        let again = g.sign1(m(ckm::ML_DSA), &private, MSG).await;
        assert_ne!(sig, again);
        g.verify1(m(ckm::ML_DSA), &public, MSG, &again)
            .await
            .unwrap();

        step("A context string binds the signature; a wrong one fails.");
        let ctx_sig = g.sign1(mb(ckm::ML_DSA, b"strongroom"), &private, MSG).await;
        g.verify1(mb(ckm::ML_DSA, b"strongroom"), &public, MSG, &ctx_sig)
            .await
            .unwrap();
        assert_eq!(
            ckr_of_unit(g.verify1(m(ckm::ML_DSA), &public, MSG, &ctx_sig).await),
            ckr::SIGNATURE_INVALID
        );
        assert_eq!(
            ckr_of_unit(
                g.verify1(mb(ckm::ML_DSA, b"other"), &public, MSG, &ctx_sig)
                    .await
            ),
            ckr::SIGNATURE_INVALID
        );

        step("Bad input: a truncated signature, another message, a 256-byte context.");
        assert_eq!(
            ckr_of_unit(
                g.verify1(m(ckm::ML_DSA), &public, MSG, &sig[..sig.len() - 1])
                    .await
            ),
            ckr::SIGNATURE_LEN_RANGE
        );
        assert_eq!(
            ckr_of_unit(
                g.verify1(m(ckm::ML_DSA), &public, b"other message", &sig)
                    .await
            ),
            ckr::SIGNATURE_INVALID
        );
        let r = g.r(pb::SignSingleRequest {
            mech: mb(ckm::ML_DSA, &[1; 256]),
            data: MSG.to_vec(),
            priv_key: kb(&private),
            ..Default::default()
        });
        assert_eq!(
            ckr_of(g.c.sign_single(r).await),
            ckr::MECHANISM_PARAM_INVALID
        );

        step("The public key's SPKI (from the checksum) verifies on its own, as a raw SPKI blob.");
        let spki = public_spki(&mut g, &public).await;
        assert_eq!(spki.len(), pk_len + 22);
        g.verify1(m(ckm::ML_DSA), &spki, MSG, &sig).await.unwrap();
    }

    step("Wrong parameter sets: 0, 4, missing, and disagreeing templates.");
    for (public, private, want) in [
        (
            vec![(cka::PARAMETER_SET, i(0))],
            vec![],
            ckr::ATTRIBUTE_VALUE_INVALID,
        ),
        (
            vec![(cka::PARAMETER_SET, i(4))],
            vec![],
            ckr::ATTRIBUTE_VALUE_INVALID,
        ),
        (vec![], vec![], ckr::TEMPLATE_INCOMPLETE),
        (
            vec![(cka::PARAMETER_SET, i(1))],
            vec![(cka::PARAMETER_SET, i(2))],
            ckr::TEMPLATE_INCONSISTENT,
        ),
    ] {
        let r = g.r(pb::GenerateKeyPairRequest {
            mech: m(ckm::ML_DSA_KEY_PAIR_GEN),
            pub_key_template: tm(&public),
            priv_key_template: tm(&private),
        });
        assert_eq!(
            ckr_of(g.c.generate_key_pair(r).await),
            want,
            "{public:?} {private:?}"
        );
    }

    step("A key of the wrong type: an EC key with CKM_ML_DSA, an ML-DSA key with ECDSA.");
    let (ec_pub, ec_priv) = g.p256_pair().await;
    let (_, ml_priv) = g
        .gen_pair(
            ckm::ML_DSA_KEY_PAIR_GEN,
            &[(cka::PARAMETER_SET, i(2)), (cka::VERIFY, b(true))],
            &[(cka::SIGN, b(true))],
        )
        .await;
    for (mech, key) in [(ckm::ML_DSA, &ec_priv), (ckm::ECDSA_SHA256, &ml_priv)] {
        let r = g.r(pb::SignSingleRequest {
            mech: m(mech),
            data: MSG.to_vec(),
            priv_key: kb(key),
            ..Default::default()
        });
        assert_eq!(ckr_of(g.c.sign_single(r).await), ckr::KEY_TYPE_INCONSISTENT);
    }
    assert_eq!(
        ckr_of_unit(g.verify1(m(ckm::ML_DSA), &ec_pub, MSG, &[0; 3309]).await),
        ckr::KEY_TYPE_INCONSISTENT
    );
}

#[tokio::test]
async fn ml_kem_encapsulates_to_a_key_blob_and_decapsulates_over_grep11() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    let aes = |extra: &[(Cka, AttributeValue)]| {
        let mut t = vec![
            (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
            (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
            (cka::VALUE_LEN, i(32)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
        ];
        t.extend_from_slice(extra);
        t
    };

    for (set, ct_len) in [(1i64, 768usize), (2, 1088), (3, 1568)] {
        step(&format!(
            "ML-KEM parameter set {set}: generate; DeriveKey with the public key encapsulates."
        ));
        let (public, private) = g
            .gen_pair(
                ckm::ML_KEM_KEY_PAIR_GEN,
                &[(cka::PARAMETER_SET, i(set)), (cka::DERIVE, b(true))],
                &[(cka::DERIVE, b(true))],
            )
            .await;
        let r = g.r(pb::DeriveKeyRequest {
            mech: m(ckm::ML_KEM),
            template: tm(&aes(&[])),
            base_key: kb(&public),
            ..Default::default()
        });
        let sent = g.c.derive_key(r).await.unwrap().into_inner();
        assert_eq!(
            sent.check_sum.len(),
            7 + ct_len,
            "check value, then the ciphertext"
        );
        let ct = sent.check_sum[7..].to_vec();

        step("DeriveKey with the private key and the ciphertext decapsulates to the same key.");
        let r = g.r(pb::DeriveKeyRequest {
            mech: mb(ckm::ML_KEM, &ct),
            template: tm(&aes(&[])),
            base_key: kb(&private),
            ..Default::default()
        });
        let got = g.c.derive_key(r).await.unwrap().into_inner();
        assert_eq!(
            got.check_sum,
            sent.check_sum[..7],
            "same AES key, same check value"
        );
        let iv = [7u8; 16];
        let c = g
            .enc1(mb(ckm::AES_CBC_PAD, &iv), &sent.new_key_bytes, PLAIN)
            .await
            .unwrap();
        assert_eq!(
            g.dec1(mb(ckm::AES_CBC_PAD, &iv), &got.new_key_bytes, &c)
                .await
                .unwrap(),
            PLAIN
        );

        step("A modified ciphertext gives another key (implicit rejection); a truncated one is refused.");
        let mut bad = ct.clone();
        bad[10] ^= 0x40;
        let r = g.r(pb::DeriveKeyRequest {
            mech: mb(ckm::ML_KEM, &bad),
            template: tm(&aes(&[])),
            base_key: kb(&private),
            ..Default::default()
        });
        let other = g.c.derive_key(r).await.unwrap().into_inner();
        assert_ne!(other.check_sum, sent.check_sum[..7]);
        let r = g.r(pb::DeriveKeyRequest {
            mech: mb(ckm::ML_KEM, &ct[..ct_len - 1]),
            template: tm(&aes(&[])),
            base_key: kb(&private),
            ..Default::default()
        });
        assert_eq!(
            ckr_of(g.c.derive_key(r).await),
            ckr::ENCRYPTED_DATA_LEN_RANGE
        );
        let r = g.r(pb::DeriveKeyRequest {
            mech: m(ckm::ML_KEM),
            template: tm(&aes(&[])),
            base_key: kb(&private),
            ..Default::default()
        });
        assert_eq!(
            ckr_of(g.c.derive_key(r).await),
            ckr::MECHANISM_PARAM_INVALID
        );
    }

    step("Keys of the wrong type, and a key without CKA_DERIVE.");
    let (ml_dsa_pub, _) = g
        .gen_pair(
            ckm::ML_DSA_KEY_PAIR_GEN,
            &[(cka::PARAMETER_SET, i(2)), (cka::DERIVE, b(true))],
            &[],
        )
        .await;
    let r = g.r(pb::DeriveKeyRequest {
        mech: m(ckm::ML_KEM),
        template: tm(&aes(&[])),
        base_key: kb(&ml_dsa_pub),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.derive_key(r).await), ckr::KEY_TYPE_INCONSISTENT);
    let (no_derive, _) = g
        .gen_pair(ckm::ML_KEM_KEY_PAIR_GEN, &[(cka::PARAMETER_SET, i(2))], &[])
        .await;
    let r = g.r(pb::DeriveKeyRequest {
        mech: m(ckm::ML_KEM),
        template: tm(&aes(&[])),
        base_key: kb(&no_derive),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.derive_key(r).await),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::ML_KEM_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::PARAMETER_SET, i(9))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::ATTRIBUTE_VALUE_INVALID
    );
}

fn ckr_of_unit(r: Result<(), tonic::Status>) -> Ckr {
    let st = r.expect_err("the call must fail");
    let e = grep11_error_of(&st).unwrap_or_else(|| panic!("no Grep11Error in {st:?}"));
    Ckr(e.code)
}

/// The plain SubjectPublicKeyInfo of a public key blob: its PUBLIC_KEY_INFO attribute.
async fn public_spki(g: &mut G, public: &[u8]) -> Vec<u8> {
    let r = g.r(pb::GetAttributeValueRequest {
        object: public.to_vec(),
        attributes: tm(&[(cka::PUBLIC_KEY_INFO, by(&[]))]),
        ..Default::default()
    });
    let a = g.c.get_attribute_value(r).await.unwrap().into_inner();
    a.attributes_bytes
        .get(&cka::PUBLIC_KEY_INFO.0)
        .cloned()
        .or_else(|| match a.attributes.get(&cka::PUBLIC_KEY_INFO.0) {
            Some(AttributeValue {
                one_attr: Some(OneAttr::AttributeB(v)),
            }) => Some(v.clone()),
            _ => None,
        })
        .expect("CKA_PUBLIC_KEY_INFO")
}
