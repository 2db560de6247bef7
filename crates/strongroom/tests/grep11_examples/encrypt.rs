//! Encryption and decryption, single and multi-part.

use super::*;

#[tokio::test]
async fn examples_encrypt_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    step("16-18: AES-256 CBC_PAD single, Init+one-shot, multi-part (split at 16).");
    let key = g.aes256().await;
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN)
        .await
        .unwrap();
    assert_eq!(ct.len(), 48);
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await.unwrap(),
        PLAIN
    );
    assert_eq!(
        g.enc_psp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN)
            .await,
        ct
    );
    assert_eq!(
        g.enc_psp(true, mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN, 16)
            .await,
        ct
    );
    assert_eq!(
        g.enc_pmp(true, mb(ckm::AES_CBC_PAD, &iv), &key, &ct, 16)
            .await,
        PLAIN
    );
    step("The older JS example splits at 20 (not a block boundary).");
    assert_eq!(
        g.enc_pmp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN, 20)
            .await,
        ct
    );

    step("19-21: DES3 CBC_PAD with an 8-byte IV.");
    let des = g
        .gen_key(
            ckm::DES3_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let iv8 = g.random(8).await;
    let ct = g
        .enc1(mb(ckm::DES3_CBC_PAD, &iv8), &des, PLAIN)
        .await
        .unwrap();
    assert_eq!(ct.len(), 48);
    assert_eq!(
        g.enc_psp(true, mb(ckm::DES3_CBC_PAD, &iv8), &des, &ct)
            .await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(true, mb(ckm::DES3_CBC_PAD, &iv8), &des, &ct, 16)
            .await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(false, mb(ckm::DES3_CBC_PAD, &iv8), &des, PLAIN, 16)
            .await,
        ct
    );

    step("22-25: RSA OAEP (SHA-1) and PKCS#1 v1.5, single and Init+one-shot.");
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, by(&[1, 0, 1])),
                (cka::ENCRYPT, b(true)),
            ],
            &[(cka::DECRYPT, b(true))],
        )
        .await;
    let oaep = Some(Mechanism {
        mechanism: ckm::RSA_PKCS_OAEP.0,
        parameter: Some(Parameter::RsaoaepParameter(pb::RsaoaepParm {
            hash_mech: ckm::SHA_1.0,
            mgf: 1,
            encoding_parm_type: 0,
            encoding_parm: vec![],
        })),
    });
    for mech in [oaep, m(ckm::RSA_PKCS)] {
        let ct = g.enc1(mech.clone(), &public, PLAIN).await.unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(g.dec1(mech.clone(), &private, &ct).await.unwrap(), PLAIN);
        let ct2 = g.enc_psp(false, mech.clone(), &public, PLAIN).await;
        assert_ne!(ct2, ct, "RSA encryption is randomised");
        assert_eq!(g.enc_psp(true, mech.clone(), &private, &ct2).await, PLAIN);
        step("No RSA multi-part: Update is refused.");
        let r = g.r(pb::EncryptInitRequest {
            mech: mech.clone(),
            key: kb(&public),
            ..Default::default()
        });
        let state = g.c.encrypt_init(r).await.unwrap().into_inner().state;
        let r = g.r(pb::EncryptUpdateRequest {
            state,
            plain: PLAIN.to_vec(),
        });
        assert_eq!(ckr_of(g.c.encrypt_update(r).await), ckr::MECHANISM_INVALID);
    }
    step("Decrypting with the public key, or encrypting with the private key, is refused.");
    assert_eq!(
        ckr_of(
            g.dec1(m(ckm::RSA_PKCS), &public, &[0; 256])
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );

    step("55: ReencryptSingle from key A/IV_A to key B/IV_B.");
    let a = g.aes256().await;
    let bk = g.aes256().await;
    let (iva, ivb) = (g.random(16).await, g.random(16).await);
    let ct = g.enc1(mb(ckm::AES_CBC_PAD, &iva), &a, PLAIN).await.unwrap();
    let r = g.r(pb::ReencryptSingleRequest {
        dec_mech: mb(ckm::AES_CBC_PAD, &iva),
        enc_mech: mb(ckm::AES_CBC_PAD, &ivb),
        ciphered: ct,
        dec_key: kb(&a),
        enc_key: kb(&bk),
        ..Default::default()
    });
    let re =
        g.c.reencrypt_single(r)
            .await
            .unwrap()
            .into_inner()
            .reciphered;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &ivb), &bk, &re).await.unwrap(),
        PLAIN
    );

    step("AES-GCM (12-byte IV in ParameterB, 16-byte tag), single and multi-part.");
    let iv12 = g.random(12).await;
    let ct = g.enc1(mb(ckm::AES_GCM, &iv12), &a, PLAIN).await.unwrap();
    assert_eq!(ct.len(), PLAIN.len() + 16);
    assert_eq!(
        g.enc_pmp(true, mb(ckm::AES_GCM, &iv12), &a, &ct, 5).await,
        PLAIN
    );
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert_eq!(
        ckr_of(
            g.dec1(mb(ckm::AES_GCM, &iv12), &a, &bad)
                .await
                .map(tonic::Response::new)
        ),
        ckr::ENCRYPTED_DATA_INVALID
    );
}
