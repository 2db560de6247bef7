//! Key derivation, wrapping, import and export.

use super::*;

#[tokio::test]
async fn examples_derive_wrap_import_export() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    step("47: ECDH on P-256, peer point in ParameterB; AES keys from both sides interoperate.");
    let pair = |g: &mut G| {
        g.r(pb::GenerateKeyPairRequest {
            mech: m(ckm::EC_KEY_PAIR_GEN),
            pub_key_template: tm(&[(cka::EC_PARAMS, by(P256)), (cka::EXTRACTABLE, b(false))]),
            priv_key_template: tm(&[(cka::DERIVE, b(true)), (cka::EXTRACTABLE, b(false))]),
        })
    };
    let r = pair(&mut g);
    let alice = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let r = pair(&mut g);
    let bob = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let aes_t = tm(&[
        (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
        (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
        (cka::VALUE_LEN, i(16)),
        (cka::ENCRYPT, b(true)),
        (cka::DECRYPT, b(true)),
    ]);
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &point_of(&bob.pub_key_bytes)),
        template: aes_t.clone(),
        base_key: alice.priv_key.clone(),
        ..Default::default()
    });
    let ka = g.c.derive_key(r).await.unwrap().into_inner();
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &point_of(&alice.pub_key_bytes)),
        template: aes_t.clone(),
        base_key: bob.priv_key.clone(),
        ..Default::default()
    });
    let kb_ = g.c.derive_key(r).await.unwrap().into_inner();
    let iv = g.random(16).await;
    let ct = g
        .enc1(
            mb(ckm::AES_CBC_PAD, &iv),
            &ka.new_key_bytes,
            b"hello world!",
        )
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &kb_.new_key_bytes, &ct)
            .await
            .unwrap(),
        b"hello world!"
    );
    step("A point not on the curve is refused.");
    let mut bad = point_of(&bob.pub_key_bytes);
    bad[10] ^= 1;
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &bad),
        template: aes_t.clone(),
        base_key: alice.priv_key.clone(),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.derive_key(r).await),
        ckr::MECHANISM_PARAM_INVALID
    );

    step("48: wrap an AES-128 key with RSA PKCS#1 and unwrap it; check values match.");
    let aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(16)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    let (rsa_pub, rsa_priv) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::ENCRYPT, b(true)),
                (cka::WRAP, b(true)),
            ],
            &[(cka::DECRYPT, b(true)), (cka::UNWRAP, b(true))],
        )
        .await;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key: aes.key.clone(),
        ke_k: kb(&rsa_pub),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: wrapped.clone(),
        mech: m(ckm::RSA_PKCS),
        template: tm(&[
            (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
            (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
            (cka::VALUE_LEN, i(16)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
        ]),
        ke_k: kb(&rsa_priv),
        ..Default::default()
    });
    let un = g.c.unwrap_key(r).await.unwrap().into_inner();
    assert_eq!(un.check_sum[..3], aes.check_sum[..3]);
    assert_eq!(
        un.unwrapped.as_ref().unwrap().attributes.get(&cka::LOCAL.0),
        Some(&b(false))
    );
    step("The v1 layout: the same wrap with the key blobs as plain bytes at the old numbers.");
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key_v1: aes.key_bytes.clone(),
        ke_kv1: rsa_pub.clone(),
        ..Default::default()
    });
    let wrapped_v1 = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    assert_eq!(wrapped_v1.len(), 256);
    step("A wrapped key that does not decrypt: one answer.");
    let mut bad = wrapped.clone();
    bad[100] ^= 1;
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: bad,
        mech: m(ckm::RSA_PKCS),
        template: tm(&[(cka::KEY_TYPE, i(ckk::AES.0 as i64))]),
        ke_k: kb(&rsa_priv),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);

    step("50: clear-key import under an AES key (EncryptSingle + UnwrapKey), use, export again.");
    let base = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::WRAP, b(true)),
                (cka::UNWRAP, b(true)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let raw =
        hex::decode("84eb31c184aee86791bf095045914adbcbe08823b40024f02977b46c15e84d64").unwrap();
    let iv = g.random(16).await;
    let enc_raw = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &base, &raw)
        .await
        .unwrap();
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: enc_raw,
        mech: mb(ckm::AES_CBC_PAD, &iv),
        template: tm(&[
            (cka::VALUE_LEN, i(32)),
            (cka::WRAP, b(true)),
            (cka::UNWRAP, b(true)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
            (cka::EXTRACTABLE, b(true)),
            (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
            (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
        ]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let imported =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &imported, PLAIN)
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &imported, &ct)
            .await
            .unwrap(),
        PLAIN
    );
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&imported),
        ke_k: kb(&base),
        ..Default::default()
    });
    let exported = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &base, &exported)
            .await
            .unwrap(),
        raw
    );

    step("52 + 54: export an EC private key as PKCS#8 under AES, import it back, sign with the import and verify with the original public key (imported through TRANSPORTKEY).");
    let (ec_pub, ec_priv) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256)), (cka::VERIFY, b(true))],
            &[(cka::SIGN, b(true)), (cka::EXTRACTABLE, b(true))],
        )
        .await;
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&ec_priv),
        ke_k: kb(&base),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let pkcs8 = g
        .dec1(mb(ckm::AES_CBC_PAD, &iv), &base, &wrapped)
        .await
        .unwrap();
    let alg = strongroom_engine::der::pkcs8_algorithm(&pkcs8).expect("a PKCS#8 PrivateKeyInfo");
    assert_eq!(alg.curve, &P256[2..]);
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped,
        mech: mb(ckm::AES_CBC_PAD, &iv),
        template: tm(&[
            (cka::SIGN, b(true)),
            (cka::PRIVATE, b(true)),
            (cka::SENSITIVE, b(true)),
            (cka::KEY_TYPE, i(ckk::EC.0 as i64)),
            (cka::CLASS, i(cko::PRIVATE_KEY.0 as i64)),
        ]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let back =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let n = strongroom_engine::der::tlv_len(&ec_pub).unwrap();
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: ec_pub[..n].to_vec(),
        mech: m(ckm::IBM_TRANSPORTKEY),
        template: tm(&[(cka::VERIFY, b(true))]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let maced =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let sig = g.sign1(m(ckm::ECDSA_SHA256), &back, PLAIN).await;
    g.verify1(m(ckm::ECDSA_SHA256), &maced, PLAIN, &sig)
        .await
        .unwrap();
    g.verify1(m(ckm::ECDSA_SHA256), &ec_pub, PLAIN, &sig)
        .await
        .unwrap();
    step("A key that is not extractable cannot be wrapped.");
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&back),
        ke_k: kb(&base),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.wrap_key(r).await), ckr::KEY_UNEXTRACTABLE);

    step("56: RewrapKeyBlob outside a rotation returns the blob as it is (already current).");
    let r = g.r(pb::RewrapKeyBlobRequest {
        wrapped_key: kb(&base),
        ..Default::default()
    });
    let same = g.c.rewrap_key_blob(r).await.unwrap().into_inner();
    assert_eq!(same.rewrapped_key_bytes, base);
    assert_eq!(same.rewrapped_key.unwrap().key_blobs[0], base);

    step("Attributes: read, and change towards more protection only.");
    let r = g.r(pb::GetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::EXTRACTABLE, b(false)), (cka::VALUE_LEN, i(0))]),
        ..Default::default()
    });
    let a = g.c.get_attribute_value(r).await.unwrap().into_inner();
    assert_eq!(a.attributes.get(&cka::EXTRACTABLE.0), Some(&b(true)));
    assert_eq!(
        a.attributes_bytes.get(&cka::VALUE_LEN.0),
        Some(&16i64.to_be_bytes().to_vec())
    );
    let r = g.r(pb::GetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::VALUE, b(false))]),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.get_attribute_value(r).await),
        ckr::ATTRIBUTE_SENSITIVE
    );
    let r = g.r(pb::SetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::EXTRACTABLE, b(false))]),
    });
    let locked =
        g.c.set_attribute_value(r)
            .await
            .unwrap()
            .into_inner()
            .object;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key: kb(&locked),
        ke_k: kb(&rsa_pub),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.wrap_key(r).await), ckr::KEY_UNEXTRACTABLE);
    let r = g.r(pb::SetAttributeValueRequest {
        object: locked,
        attributes: tm(&[(cka::EXTRACTABLE, b(true))]),
    });
    assert_eq!(
        ckr_of(g.c.set_attribute_value(r).await),
        ckr::ATTRIBUTE_READ_ONLY
    );
}

#[tokio::test]
async fn examples_dh_keygen_and_derive() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    step("14: DH parameters, then Alice's and Bob's key pairs in them.");
    let params = g
        .gen_key(
            strongroom_grep11::ckm::DH_PKCS_PARAMETER_GEN,
            &[(cka::PRIME_BITS, i(2048))],
        )
        .await
        .key_bytes;
    let pair = |g: &mut G| {
        g.r(pb::GenerateKeyPairRequest {
            mech: m(strongroom_grep11::ckm::DH_PKCS_KEY_PAIR_GEN),
            pub_key_template: tm(&[
                (cka::DERIVE, b(true)),
                (cka::EXTRACTABLE, b(false)),
                (cka::IBM_STRUCT_PARAMS, by(&params)),
            ]),
            priv_key_template: tm(&[
                (cka::DERIVE, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
                (cka::EXTRACTABLE, b(false)),
            ]),
        })
    };
    let r = pair(&mut g);
    let alice = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let r = pair(&mut g);
    let bob = g.c.generate_key_pair(r).await.unwrap().into_inner();
    step(
        "46: each side derives an AES key from the other's public value (the INTEGER in the SPKI).",
    );
    let y = |maced: &[u8]| {
        let n = strongroom_engine::der::tlv_len(maced).unwrap();
        strongroom_engine::der::dh_spki(&maced[..n])
            .unwrap()
            .value
            .to_vec()
    };
    let aes_t = tm(&[
        (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
        (cka::KEY_TYPE, i(ckk::AES.0 as i64)),
        (cka::VALUE_LEN, i(16)),
        (cka::ENCRYPT, b(true)),
        (cka::DECRYPT, b(true)),
    ]);
    let derive = |g: &mut G, peer: Vec<u8>, base: Option<KeyBlob>| {
        g.r(pb::DeriveKeyRequest {
            mech: mb(strongroom_grep11::ckm::DH_PKCS_DERIVE, &peer),
            template: aes_t.clone(),
            base_key: base,
            ..Default::default()
        })
    };
    let r = derive(&mut g, y(&bob.pub_key_bytes), alice.priv_key.clone());
    let ka = g.c.derive_key(r).await.unwrap().into_inner().new_key_bytes;
    let r = derive(&mut g, y(&alice.pub_key_bytes), bob.priv_key.clone());
    let kb_ = g.c.derive_key(r).await.unwrap().into_inner().new_key_bytes;
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &ka, b"hello world!")
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &kb_, &ct).await.unwrap(),
        b"hello world!"
    );
    step("A peer value of 1 (a small-subgroup attack) is refused.");
    let r = derive(&mut g, vec![1], alice.priv_key.clone());
    assert_eq!(
        ckr_of(g.c.derive_key(r).await),
        ckr::MECHANISM_PARAM_INVALID
    );
    step("Sizes that are not RFC 7919 groups.");
    let r = g.r(pb::GenerateKeyRequest {
        mech: m(strongroom_grep11::ckm::DH_PKCS_PARAMETER_GEN),
        template: tm(&[(cka::PRIME_BITS, i(1024))]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key(r).await),
        ckr::ATTRIBUTE_VALUE_INVALID
    );
}

#[tokio::test]
async fn example_attribute_bound_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    step("49: MAC key, AES key and RSA pair all CKA_IBM_ATTRBOUND; wrap with the public key and the MAC key, unwrap with the private key and the MAC key; the attributes travel along.");
    let mac = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[
                (cka::KEY_TYPE, i(ckk::GENERIC_SECRET.0 as i64)),
                (cka::CLASS, i(cko::SECRET_KEY.0 as i64)),
                (cka::VALUE_LEN, i(32)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
        )
        .await
        .key_bytes;
    let aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
                (cka::EXTRACTABLE, b(true)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
        )
        .await;
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::WRAP, b(true)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
            &[(cka::UNWRAP, b(true)), (cka::IBM_ATTRBOUND, b(true))],
        )
        .await;
    let abw = strongroom_grep11::ckm::IBM_ATTRIBUTEBOUND_WRAP;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(abw),
        key: aes.key.clone(),
        ke_k: kb(&public),
        mac_key: kb(&mac),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let unwrap = |g: &mut G, wrapped: Vec<u8>, mac_key: &[u8]| {
        g.r(pb::UnwrapKeyRequest {
            wrapped,
            mech: m(abw),
            template: tm(&[(cka::KEY_TYPE, i(ckk::AES.0 as i64))]),
            ke_k: kb(&private),
            mac_key: kb(mac_key),
            ..Default::default()
        })
    };
    let r = unwrap(&mut g, wrapped.clone(), &mac);
    let un = g.c.unwrap_key(r).await.unwrap().into_inner();
    assert_eq!(un.check_sum[..3], aes.check_sum[..3]);
    let attrs = &un.unwrapped.as_ref().unwrap().attributes;
    assert_eq!(
        (attrs.get(&cka::ENCRYPT.0), attrs.get(&cka::IBM_ATTRBOUND.0)),
        (Some(&b(true)), Some(&b(true)))
    );
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &aes.key_bytes, PLAIN)
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &un.unwrapped_bytes, &ct)
            .await
            .unwrap(),
        PLAIN
    );
    step("Another MAC key, or a changed byte: refused.");
    let other_mac = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[(cka::VALUE_LEN, i(32)), (cka::IBM_ATTRBOUND, b(true))],
        )
        .await
        .key_bytes;
    let r = unwrap(&mut g, wrapped.clone(), &other_mac);
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);
    let mut bad = wrapped.clone();
    bad[40] ^= 1;
    let r = unwrap(&mut g, bad, &mac);
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);
    step("A key without CKA_IBM_ATTRBOUND cannot take part.");
    let plain_aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[(cka::VALUE_LEN, i(16)), (cka::EXTRACTABLE, b(true))],
        )
        .await
        .key_bytes;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(abw),
        key: kb(&plain_aes),
        ke_k: kb(&public),
        mac_key: kb(&mac),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.wrap_key(r).await),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
}
