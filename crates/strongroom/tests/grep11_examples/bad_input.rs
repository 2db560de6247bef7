//! Bad input: each refusal gets its CKR code and changes nothing.

use super::*;

#[tokio::test]
async fn bad_input_gets_its_ckr_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    let key = g.aes256().await;
    let iv = [1u8; 16];

    step("Tampered and truncated key blobs.");
    let mut t = key.clone();
    let n = t.len() - 5;
    t[n] ^= 1;
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &t, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &key[..40], PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &[], PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    step("Templates: conflicting class, unknown attribute, read-only attribute, wrong value type, a length the key type does not have, a missing length.");
    for (tmpl, want) in [
        (
            vec![
                (cka::VALUE_LEN, i(16)),
                (cka::CLASS, i(cko::PRIVATE_KEY.0 as i64)),
            ],
            ckr::TEMPLATE_INCONSISTENT,
        ),
        (
            vec![
                (cka::VALUE_LEN, i(16)),
                (cka::KEY_TYPE, i(ckk::DES3.0 as i64)),
            ],
            ckr::TEMPLATE_INCONSISTENT,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (Cka(0x4242), b(true))],
            ckr::ATTRIBUTE_TYPE_INVALID,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (cka::NEVER_EXTRACTABLE, b(true))],
            ckr::ATTRIBUTE_READ_ONLY,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (cka::ENCRYPT, by(b"yes"))],
            ckr::ATTRIBUTE_VALUE_INVALID,
        ),
        (vec![(cka::VALUE_LEN, i(20))], ckr::ATTRIBUTE_VALUE_INVALID),
        (vec![(cka::ENCRYPT, b(true))], ckr::TEMPLATE_INCOMPLETE),
    ] {
        let r = g.r(pb::GenerateKeyRequest {
            mech: m(ckm::AES_KEY_GEN),
            template: tm(&tmpl),
        });
        assert_eq!(ckr_of(g.c.generate_key(r).await), want, "{tmpl:?}");
    }
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::EC_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::EC_PARAMS, by(&[0x06, 0x03, 0x2b, 0x65, 0x6f]))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::CURVE_NOT_SUPPORTED
    );
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::RSA_PKCS_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::MODULUS_BITS, i(2048)), (cka::PUBLIC_EXPONENT, i(3))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::ATTRIBUTE_VALUE_INVALID
    );
    step("Wrong key type for the mechanism; unknown mechanism; a bad IV.");
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::DES3_CBC_PAD, &[0; 8]), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        ckr_of(
            g.enc1(m(Ckm(0x8888)), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::MECHANISM_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &[0; 8]), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC, &iv), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::DATA_LEN_RANGE
    );
    assert_eq!(
        ckr_of(
            g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &[0; 33])
                .await
                .map(tonic::Response::new)
        ),
        ckr::ENCRYPTED_DATA_LEN_RANGE
    );
    step("Oversized data (over the 4 MiB limit, under the message limit).");
    let big = vec![0u8; 4 * 1024 * 1024 + 16];
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &key, &big)
                .await
                .map(tonic::Response::new)
        ),
        ckr::DATA_LEN_RANGE
    );
    let r = g.r(pb::DigestSingleRequest {
        mech: m(ckm::SHA256),
        data: big,
    });
    assert_eq!(ckr_of(g.c.digest_single(r).await), ckr::DATA_LEN_RANGE);

    step("States: reused, from another operation, tampered, truncated, garbage.");
    let r = g.r(pb::EncryptInitRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&key),
        ..Default::default()
    });
    let st = g.c.encrypt_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::EncryptUpdateRequest {
        state: st.clone(),
        plain: PLAIN.to_vec(),
    });
    g.c.encrypt_update(r).await.unwrap();
    let r = g.r(pb::EncryptUpdateRequest {
        state: st.clone(),
        plain: PLAIN.to_vec(),
    });
    assert_eq!(
        ckr_of(g.c.encrypt_update(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    let r = g.r(pb::EncryptInitRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&key),
        ..Default::default()
    });
    let st = g.c.encrypt_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::DecryptFinalRequest { state: st.clone() });
    assert_eq!(
        ckr_of(g.c.decrypt_final(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    let r = g.r(pb::DigestFinalRequest { state: st.clone() });
    assert_eq!(
        ckr_of(g.c.digest_final(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    for bad in [
        st[..st.len() - 1].to_vec(),
        {
            let mut x = st.clone();
            x[30] ^= 4;
            x
        },
        b"garbage".to_vec(),
        vec![],
    ] {
        let r = g.r(pb::EncryptFinalRequest { state: bad });
        assert_eq!(
            ckr_of(g.c.encrypt_final(r).await),
            ckr::OPERATION_NOT_INITIALIZED
        );
    }
    step("The untouched State still works after all that (nothing was consumed by the failures).");
    let r = g.r(pb::EncryptRequest {
        state: st,
        plain: PLAIN.to_vec(),
    });
    let ct = g.c.encrypt(r).await.unwrap().into_inner().ciphered;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await.unwrap(),
        PLAIN
    );
    step("A Verify with a signature of the wrong length.");
    let (public, private) = g.p256_pair().await;
    let sig = g.sign1(m(ckm::ECDSA), &private, &[3; 32]).await;
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &public, &[3; 32], &sig[..63])
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_LEN_RANGE
    );
    step("A public key as the signing key.");
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::ECDSA),
        data: vec![1; 32],
        priv_key: kb(&public),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.sign_single(r).await), ckr::KEY_TYPE_INCONSISTENT);
    step("The server is still healthy.");
    assert_eq!(g.random(16).await.len(), 16);
}

/// `serve --rsa-pkcs1-decryption refuse`: CKM_RSA_PKCS no longer decrypts or unwraps over
/// GREP11 (a PKCS#1 v1.5 padding oracle needs only that), the mechanism says so, and
/// encryption, signatures and OAEP go on.
#[tokio::test]
async fn pkcs1_v15_decryption_refused_by_the_server_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--rsa-pkcs1-decryption", "refuse"]);
    let mut g = G::new(&s).await;
    let flags = g.mech_flags(ckm::RSA_PKCS).await;
    assert_eq!(
        flags & (0x200 | 0x40000),
        0,
        "no CKF_DECRYPT, no CKF_UNWRAP"
    );
    assert_ne!(flags & (0x100 | 0x800), 0, "CKF_ENCRYPT and CKF_SIGN stay");
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::ENCRYPT, b(true)),
                (cka::WRAP, b(true)),
            ],
            &[
                (cka::DECRYPT, b(true)),
                (cka::UNWRAP, b(true)),
                (cka::SIGN, b(true)),
            ],
        )
        .await;
    let ct = g.enc1(m(ckm::RSA_PKCS), &public, b"secret").await.unwrap();
    let refused = g.dec1(m(ckm::RSA_PKCS), &private, &ct).await;
    assert_eq!(
        ckr_of(refused.map(tonic::Response::new)),
        ckr::MECHANISM_INVALID
    );
    let aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[(cka::VALUE_LEN, i(16)), (cka::EXTRACTABLE, b(true))],
        )
        .await;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key: aes.key.clone(),
        ke_k: kb(&public),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped,
        mech: m(ckm::RSA_PKCS),
        template: tm(&[
            (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
            (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
            (cka::VALUE_LEN, i(16)),
        ]),
        ke_k: kb(&private),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::MECHANISM_INVALID);
    // Signing with CKM_RSA_PKCS stays.
    let sig = g.sign1(m(ckm::RSA_PKCS), &private, &[0x30; 51]).await;
    assert_eq!(sig.len(), 256);
    // An invalid value of the setting stops the server with a clear message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["serve", "--dev", "--rsa-pkcs1-decryption", "maybe"])
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'allow' or 'refuse'"));
}
