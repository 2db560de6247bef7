//! `serve --fips-policy`: GREP11 lists and serves only what FIPS 140-3 approves
//! (docs/fips.md); the same policy a FIPS build always has.

use super::*;

#[tokio::test]
async fn example_fips_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--fips-policy"]);
    let health: serde_json::Value = reqwest::get(format!("{}/health", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["fips_policy"], true, "{health}");
    let mut g = G::new(&s).await;

    step("GetMechanismList leaves out what FIPS mode refuses; GetMechanismInfo refuses it too");
    let r = g.r(pb::GetMechanismListRequest {});
    let list = g.c.get_mechanism_list(r).await.unwrap().into_inner().mechs;
    for kept in [
        ckm::AES_KEY_GEN,
        ckm::AES_GCM,
        ckm::ECDSA_SHA256,
        ckm::ML_KEM,
    ] {
        assert!(list.contains(&kept.0), "0x{:x} is listed", kept.0);
    }
    for gone in [
        ckm::DES3_KEY_GEN,
        ckm::IBM_BTC_DERIVE,
        ckm::IBM_EC_X25519,
        ckm::ML_DSA_KEY_PAIR_GEN,
    ] {
        assert!(!list.contains(&gone.0), "0x{:x} is not listed", gone.0);
        let r = g.r(pb::GetMechanismInfoRequest { mech: gone.0 });
        assert_eq!(
            ckr_of(g.c.get_mechanism_info(r).await),
            ckr::MECHANISM_INVALID
        );
    }
    let flags = g.mech_flags(ckm::RSA_PKCS).await;
    assert_eq!(
        flags & (0x100 | 0x200),
        0,
        "CKM_RSA_PKCS neither encrypts nor decrypts"
    );
    assert_ne!(flags & 0x800, 0, "CKM_RSA_PKCS signs");

    step("What is not listed is refused: Triple-DES keys, secp256k1 keys");
    let r = g.r(pb::GenerateKeyRequest {
        mech: m(ckm::DES3_KEY_GEN),
        template: tm(&[(cka::ENCRYPT, b(true))]),
    });
    assert_eq!(ckr_of(g.c.generate_key(r).await), ckr::MECHANISM_INVALID);
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::EC_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::EC_PARAMS, by(SECP256K1))]),
        priv_key_template: tm(&[(cka::SIGN, b(true))]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::CURVE_NOT_SUPPORTED
    );

    step("What is approved works as before: AES-GCM, ECDSA on P-256");
    let aes = g.gen_key(ckm::AES_KEY_GEN, &aes_template(32)).await;
    assert!(!aes.key_bytes.is_empty());
    let (public, private) = g.p256_pair().await;
    let sig = g.sign1(m(ckm::ECDSA_SHA256), &private, SIGN_DATA).await;
    g.verify1(m(ckm::ECDSA_SHA256), &public, SIGN_DATA, &sig)
        .await
        .unwrap();
}
