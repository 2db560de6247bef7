//! Mechanism lists, random numbers, digests and key generation.

use super::*;

#[tokio::test]
async fn examples_mechanisms_random_digest_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    step("1-2: the list starts with CKM_RSA_PKCS; its info names our RSA sizes.");
    let r = g.r(pb::GetMechanismListRequest {});
    let list = g.c.get_mechanism_list(r).await.unwrap().into_inner().mechs;
    assert_eq!(list[0], ckm::RSA_PKCS.0);
    let r = g.r(pb::GetMechanismInfoRequest {
        mech: ckm::RSA_PKCS.0,
    });
    let info =
        g.c.get_mechanism_info(r)
            .await
            .unwrap()
            .into_inner()
            .mech_info
            .unwrap();
    assert_eq!((info.min_key_size, info.max_key_size), (2048, 8192));
    step("3");
    assert_eq!(g.random(4096).await.len(), 4096);
    step("4-6: digest single, Init+Digest, Init+Update×2+Final.");
    let data = b"This is data that is longer than 64 bytes. This is the data that is longer than 64 bytes.";
    let want = "b036abead70a9739648ab94d556bf120494eab3a470b5ee12be559b9dbc8c408";
    let r = g.r(pb::DigestSingleRequest {
        mech: m(ckm::SHA256),
        data: data.to_vec(),
    });
    assert_eq!(
        hex::encode(g.c.digest_single(r).await.unwrap().into_inner().digest),
        want
    );
    let r = g.r(pb::DigestInitRequest {
        mech: m(ckm::SHA256),
    });
    let state = g.c.digest_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::DigestRequest {
        state,
        data: data.to_vec(),
    });
    assert_eq!(
        hex::encode(g.c.digest(r).await.unwrap().into_inner().digest),
        want
    );
    let r = g.r(pb::DigestInitRequest {
        mech: m(ckm::SHA256),
    });
    let mut state = g.c.digest_init(r).await.unwrap().into_inner().state;
    for part in [&data[..64], &data[64..]] {
        let r = g.r(pb::DigestUpdateRequest {
            state,
            data: part.to_vec(),
        });
        state = g.c.digest_update(r).await.unwrap().into_inner().state;
    }
    let r = g.r(pb::DigestFinalRequest { state });
    assert_eq!(
        hex::encode(g.c.digest_final(r).await.unwrap().into_inner().digest),
        want
    );

    step("7-11: key generation.");
    let k = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[
                (cka::KEY_TYPE, i(ckk::GENERIC_SECRET.0 as i64)),
                (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
                (cka::VALUE_LEN, i(16)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    assert_eq!(k.check_sum.len(), 7);
    assert_eq!(&k.check_sum[3..], &128u32.to_be_bytes());
    let k = g.gen_key(ckm::AES_KEY_GEN, &aes_template(32)).await;
    assert_eq!(k.key.as_ref().unwrap().key_blobs[0], k.key_bytes);
    let attrs = &k.key.as_ref().unwrap().attributes;
    assert_eq!(attrs.get(&cka::VALUE_LEN.0), Some(&i(32)));
    assert_eq!(attrs.get(&cka::LOCAL.0), Some(&b(true)));
    let d = g.gen_key(ckm::DES3_KEY_GEN, &aes_template(32)).await; // VALUE_LEN 32 is tolerated
    assert_eq!(&d.check_sum[3..], &192u32.to_be_bytes());
    g.gen_pair(
        ckm::RSA_PKCS_KEY_PAIR_GEN,
        &[
            (cka::MODULUS_BITS, i(4096)),
            (cka::PUBLIC_EXPONENT, i(65537)),
            (cka::ENCRYPT, b(true)),
            (cka::VERIFY, b(true)),
        ],
        &[
            (cka::PRIVATE, b(true)),
            (cka::SENSITIVE, b(true)),
            (cka::SIGN, b(true)),
            (cka::DECRYPT, b(true)),
            (cka::EXTRACTABLE, b(true)),
        ],
    )
    .await;
    let (public, _) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(SECP256K1)), (cka::VERIFY, b(true))],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    assert_eq!(point_of(&public).len(), 65);
}
