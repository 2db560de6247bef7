//! Engine-level tests of the EP11 semantics (the gRPC tests replay IBM's examples).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{secret_key, t, unit, unit_for};
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, ckr, Cka};
use strongroom_engine::ep11::*;
use strongroom_engine::provider::Curve;
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_model::InstanceId;

fn aes(u: &CryptoUnit, extra: &[(Cka, AttrValue)]) -> Vec<u8> {
    let mut tm = t(&[
        (cka::VALUE_LEN, AttrValue::Int(32)),
        (cka::ENCRYPT, AttrValue::Bool(true)),
        (cka::DECRYPT, AttrValue::Bool(true)),
    ]);
    tm.extend(extra.iter().cloned());
    u.ep11()
        .generate_key(&Mech::new(ckm::AES_KEY_GEN), &tm)
        .unwrap()
        .blob
}

fn cbc(iv: &[u8]) -> Mech {
    Mech {
        code: ckm::AES_CBC_PAD,
        param: MechParam::Bytes(iv.to_vec()),
    }
}

#[test]
fn aes_cbc_pad_multi_part_equals_single_part() {
    let u = unit();
    let k = aes(&u, &[]);
    let iv = [7u8; 16];
    let plain: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let single = u
        .ep11()
        .single(Op::Encrypt, &cbc(&iv), &k, &plain, &[])
        .unwrap();
    for split in [0usize, 1, 15, 16, 17, 500, 999, 1000] {
        let st = u.ep11().init(Op::Encrypt, &cbc(&iv), &k).unwrap();
        let (st, mut out) = u.ep11().update(Op::Encrypt, &st, &plain[..split]).unwrap();
        let (st, o2) = u.ep11().update(Op::Encrypt, &st, &plain[split..]).unwrap();
        out.extend(o2);
        out.extend(u.ep11().finish(Op::Encrypt, &st, &[], &[]).unwrap());
        assert_eq!(out, single, "split {split}");
        let st = u.ep11().init(Op::Decrypt, &cbc(&iv), &k).unwrap();
        let (st, mut back) = u.ep11().update(Op::Decrypt, &st, &single[..split]).unwrap();
        let (st, b2) = u.ep11().update(Op::Decrypt, &st, &single[split..]).unwrap();
        back.extend(b2);
        back.extend(u.ep11().finish(Op::Decrypt, &st, &[], &[]).unwrap());
        assert_eq!(back, plain, "split {split}");
    }
}

#[test]
fn states_are_single_use_and_bound_to_their_operation() {
    let u = unit();
    let k = aes(&u, &[]);
    let st = u.ep11().init(Op::Encrypt, &cbc(&[1; 16]), &k).unwrap();
    let (_, _) = u.ep11().update(Op::Encrypt, &st, b"abc").unwrap();
    assert_eq!(
        u.ep11().update(Op::Encrypt, &st, b"abc").unwrap_err().ckr,
        ckr::OPERATION_NOT_INITIALIZED
    );
    let st = u.ep11().init(Op::Encrypt, &cbc(&[1; 16]), &k).unwrap();
    assert_eq!(
        u.ep11().finish(Op::Decrypt, &st, &[], &[]).unwrap_err().ckr,
        ckr::OPERATION_NOT_INITIALIZED
    );
    let mut bad = st.clone();
    let n = bad.len() - 1;
    bad[n] ^= 1;
    assert_eq!(
        u.ep11()
            .finish(Op::Encrypt, &bad, &[], &[])
            .unwrap_err()
            .ckr,
        ckr::OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        u.ep11()
            .finish(Op::Encrypt, &st[..10], &[], &[])
            .unwrap_err()
            .ckr,
        ckr::OPERATION_NOT_INITIALIZED
    );
    // Another instance's unit (same master key bytes are irrelevant: binding differs).
    let other = unit();
    assert_eq!(
        other
            .ep11()
            .finish(Op::Encrypt, &st, &[], &[])
            .unwrap_err()
            .ckr,
        ckr::IBM_WKID_MISMATCH
    );
}

#[test]
fn attributes_are_enforced() {
    let u = unit();
    let enc_only = u
        .ep11()
        .generate_key(
            &Mech::new(ckm::AES_KEY_GEN),
            &t(&[
                (cka::VALUE_LEN, AttrValue::Int(16)),
                (cka::ENCRYPT, AttrValue::Bool(true)),
            ]),
        )
        .unwrap()
        .blob;
    let ct = u
        .ep11()
        .single(Op::Encrypt, &cbc(&[0; 16]), &enc_only, b"x", &[])
        .unwrap();
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &cbc(&[0; 16]), &enc_only, &ct, &[])
            .unwrap_err()
            .ckr,
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
    // Not extractable by default: cannot be wrapped.
    let kek = aes(&u, &[(cka::WRAP, AttrValue::Bool(true))]);
    assert_eq!(
        u.ep11()
            .wrap(&cbc(&[0; 16]), &enc_only, &kek, &[])
            .unwrap_err()
            .ckr,
        ckr::KEY_UNEXTRACTABLE
    );
    // The attributes are bound: flipping a byte of the attribute block breaks the blob.
    let mut tampered = enc_only.clone();
    tampered[20] ^= 1;
    let e = u
        .ep11()
        .single(Op::Encrypt, &cbc(&[0; 16]), &tampered, b"x", &[])
        .unwrap_err();
    assert_eq!(e.ckr, ckr::KEY_HANDLE_INVALID);
    // SetAttributeValue may only add protection.
    let ext = aes(&u, &[(cka::EXTRACTABLE, AttrValue::Bool(true))]);
    let (less, a) = u
        .ep11()
        .set_attributes(&ext, &t(&[(cka::EXTRACTABLE, AttrValue::Bool(false))]))
        .unwrap();
    assert!(!a.flag(cka::EXTRACTABLE));
    assert_eq!(
        u.ep11()
            .set_attributes(&less, &t(&[(cka::EXTRACTABLE, AttrValue::Bool(true))]))
            .unwrap_err()
            .ckr,
        ckr::ATTRIBUTE_READ_ONLY
    );
}

/// CKA_ALLOWED_MECHANISMS as GREP11 carries it: 8 bytes big-endian per mechanism.
fn allowed(mechs: &[consts::Ckm]) -> (Cka, AttrValue) {
    let b = mechs.iter().flat_map(|m| m.0.to_be_bytes()).collect();
    (cka::ALLOWED_MECHANISMS, AttrValue::Bytes(b))
}

#[test]
fn allowed_mechanisms_bind_a_key_to_its_mechanisms_in_every_use() {
    let u = unit();
    let e = u.ep11();
    let gcm = Mech {
        code: ckm::AES_GCM,
        param: MechParam::Bytes(vec![1; 12]),
    };
    let k = aes(&u, &[allowed(&[ckm::AES_GCM])]);
    let ct = e.single(Op::Encrypt, &gcm, &k, b"x", &[]).unwrap();
    assert_eq!(e.single(Op::Decrypt, &gcm, &k, &ct, &[]).unwrap(), b"x");
    // Every entry into a use checks the list: single, Init, and a State's later steps.
    let refused = e
        .single(Op::Encrypt, &cbc(&[0; 16]), &k, b"x", &[])
        .unwrap_err();
    assert_eq!(refused.ckr, ckr::MECHANISM_INVALID);
    assert!(
        refused.detail.contains("CKA_ALLOWED_MECHANISMS"),
        "{refused:?}"
    );
    assert_eq!(
        e.init(Op::Decrypt, &cbc(&[0; 16]), &k).unwrap_err().ckr,
        ckr::MECHANISM_INVALID
    );
    // The list is bound into the blob and reported back as it was given.
    let a = e.get_attributes(&k, &[cka::ALLOWED_MECHANISMS]).unwrap();
    assert_eq!(
        a.0.get(&cka::ALLOWED_MECHANISMS),
        Some(&allowed(&[ckm::AES_GCM]).1)
    );
    // It cannot be changed afterwards, not even to a longer list.
    assert_eq!(
        e.set_attributes(&k, &t(&[allowed(&[ckm::AES_GCM, ckm::AES_CBC_PAD])]))
            .unwrap_err()
            .ckr,
        ckr::ATTRIBUTE_VALUE_INVALID
    );
    // An empty list restricts nothing (SoftHSM2 reads it so).
    let any = aes(&u, &[allowed(&[])]);
    e.single(Op::Encrypt, &cbc(&[0; 16]), &any, b"x", &[])
        .unwrap();

    // Wrapping keys: the wrap mechanism must be on the KEK's list; unwrapping too.
    let kek = aes(
        &u,
        &[
            (cka::WRAP, AttrValue::Bool(true)),
            (cka::UNWRAP, AttrValue::Bool(true)),
            allowed(&[ckm::AES_CBC_PAD]),
        ],
    );
    let payload = aes(&u, &[(cka::EXTRACTABLE, AttrValue::Bool(true))]);
    assert_eq!(
        e.wrap(&Mech::new(ckm::AES_ECB), &payload, &kek, &[])
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_INVALID
    );
    let kwp = cbc(&[0; 16]);
    let wrapped = e.wrap(&kwp, &payload, &kek, &[]).unwrap();
    let template = t(&[
        (cka::CLASS, AttrValue::Int(cko::SECRET_KEY.0 as i64)),
        (cka::KEY_TYPE, AttrValue::Int(ckk::AES.0 as i64)),
        (cka::ENCRYPT, AttrValue::Bool(true)),
        allowed(&[ckm::AES_CBC_PAD]),
    ]);
    assert_eq!(
        e.unwrap(&Mech::new(ckm::AES_ECB), &kek, &[], &wrapped, &template)
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_INVALID
    );
    let back = e.unwrap(&kwp, &kek, &[], &wrapped, &template).unwrap();
    // The unwrapped key carries the list its template gave.
    e.single(Op::Encrypt, &cbc(&[0; 16]), &back.blob, b"x", &[])
        .unwrap();
    assert_eq!(
        e.single(Op::Encrypt, &gcm, &back.blob, b"x", &[])
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_INVALID
    );

    // Derivation: the base key's list must name the derivation mechanism.
    let base = e
        .generate_key(
            &Mech::new(ckm::GENERIC_SECRET_KEY_GEN),
            &t(&[
                (cka::VALUE_LEN, AttrValue::Int(32)),
                (cka::DERIVE, AttrValue::Bool(true)),
                allowed(&[ckm::SHA256_KEY_DERIVATION]),
            ]),
        )
        .unwrap()
        .blob;
    let derived = t(&[
        (cka::KEY_TYPE, AttrValue::Int(ckk::GENERIC_SECRET.0 as i64)),
        (cka::VALUE_LEN, AttrValue::Int(16)),
    ]);
    assert_eq!(
        e.derive(&Mech::new(ckm::SHA1_KEY_DERIVATION), &base, &derived)
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_INVALID
    );
    e.derive(&Mech::new(ckm::SHA256_KEY_DERIVATION), &base, &derived)
        .unwrap();

    // Malformed lists are refused when the key is made.
    for bad in [
        AttrValue::Bytes(vec![0; 12]),
        AttrValue::Int(1),
        AttrValue::Bytes(vec![0; 8 * 257]),
    ] {
        let mut tm = t(&[
            (cka::VALUE_LEN, AttrValue::Int(32)),
            (cka::ENCRYPT, AttrValue::Bool(true)),
        ]);
        tm.insert(cka::ALLOWED_MECHANISMS, bad);
        assert_eq!(
            e.generate_key(&Mech::new(ckm::AES_KEY_GEN), &tm)
                .unwrap_err()
                .ckr,
            ckr::ATTRIBUTE_VALUE_INVALID
        );
    }
}

#[test]
fn wrong_key_types_and_templates_are_refused() {
    let u = unit();
    let k = aes(&u, &[(cka::SIGN, AttrValue::Bool(true))]);
    let e = u
        .ep11()
        .single(Op::Sign, &Mech::new(ckm::ECDSA), &k, &[1; 32], &[])
        .unwrap_err();
    assert_eq!(e.ckr, ckr::KEY_TYPE_INCONSISTENT);
    let e = u
        .ep11()
        .generate_key(
            &Mech::new(ckm::AES_KEY_GEN),
            &t(&[(cka::VALUE_LEN, AttrValue::Int(17))]),
        )
        .unwrap_err();
    assert_eq!(e.ckr, ckr::ATTRIBUTE_VALUE_INVALID);
    let e = u
        .ep11()
        .generate_key(
            &Mech::new(ckm::AES_KEY_GEN),
            &t(&[
                (cka::VALUE_LEN, AttrValue::Int(16)),
                (cka::KEY_TYPE, AttrValue::ulong(ckk::DES3)),
            ]),
        )
        .unwrap_err();
    assert_eq!(e.ckr, ckr::TEMPLATE_INCONSISTENT);
    let e = u
        .ep11()
        .generate_key(
            &Mech::new(ckm::AES_KEY_GEN),
            &t(&[
                (cka::CLASS, AttrValue::ulong(cko::PRIVATE_KEY)),
                (cka::VALUE_LEN, AttrValue::Int(16)),
            ]),
        )
        .unwrap_err();
    assert_eq!(e.ckr, ckr::TEMPLATE_INCONSISTENT);
}

#[test]
fn ec_sign_verify_and_ecdh_agree() {
    let u = unit();
    let params = params_of_curve(Curve::P256);
    let gen = || {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[
                    (cka::EC_PARAMS, AttrValue::Bytes(params.clone())),
                    (cka::VERIFY, AttrValue::Bool(true)),
                ]),
                &t(&[
                    (cka::SIGN, AttrValue::Bool(true)),
                    (cka::DERIVE, AttrValue::Bool(true)),
                ]),
            )
            .unwrap()
    };
    let (a_pub, a_priv) = gen();
    let (b_pub, b_priv) = gen();
    let sig = u
        .ep11()
        .single(
            Op::Sign,
            &Mech::new(ckm::ECDSA_SHA256),
            &a_priv.blob,
            b"hello",
            &[],
        )
        .unwrap();
    assert_eq!(sig.len(), 64);
    u.ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::ECDSA_SHA256),
            &a_pub.blob,
            b"hello",
            &sig,
        )
        .unwrap();
    let e = u
        .ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::ECDSA_SHA256),
            &b_pub.blob,
            b"hello",
            &sig,
        )
        .unwrap_err();
    assert_eq!(e.ckr, ckr::SIGNATURE_INVALID);
    // The MACed SPKI starts with a plain SPKI that verifies too.
    let n = strongroom_engine::der::tlv_len(&a_pub.blob).unwrap();
    u.ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::ECDSA_SHA256),
            &a_pub.blob[..n],
            b"hello",
            &sig,
        )
        .unwrap();
    let point = |k: &NewKey| match k.attrs.0.get(&cka::EC_POINT) {
        Some(AttrValue::Bytes(b)) => b.clone(),
        _ => panic!("no point"),
    };
    let tmpl = t(&[
        (cka::KEY_TYPE, AttrValue::ulong(ckk::AES)),
        (cka::VALUE_LEN, AttrValue::Int(16)),
        (cka::ENCRYPT, AttrValue::Bool(true)),
        (cka::DECRYPT, AttrValue::Bool(true)),
    ]);
    let ka = u
        .ep11()
        .derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point(&b_pub)),
            },
            &a_priv.blob,
            &tmpl,
        )
        .unwrap();
    let kb = u
        .ep11()
        .derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point(&a_pub)),
            },
            &b_priv.blob,
            &tmpl,
        )
        .unwrap();
    assert_eq!(ka.checksum, kb.checksum);
    let ct = u
        .ep11()
        .single(Op::Encrypt, &cbc(&[3; 16]), &ka.blob, b"hello world!", &[])
        .unwrap();
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &cbc(&[3; 16]), &kb.blob, &ct, &[])
            .unwrap(),
        b"hello world!"
    );
}

#[test]
fn rewrap_moves_blobs_to_the_new_master_key() {
    let instance = InstanceId::random();
    let old = MasterKey::random(&AwsLcProvider).unwrap();
    let mut u = unit_for(instance, old);
    let k = aes(&u, &[]);
    let ct = u
        .ep11()
        .single(Op::Encrypt, &cbc(&[5; 16]), &k, b"before", &[])
        .unwrap();
    let new_mk = MasterKey::random(&AwsLcProvider).unwrap();
    let copy = MasterKey::from_bytes(*new_mk.expose());
    // Committed, not yet rotating: RewrapKeyBlob already targets the new key.
    u.set_next_master_key(new_mk, false);
    let k2 = u.ep11().rewrap(&k).unwrap();
    assert_ne!(k2, k);
    assert_eq!(u.ep11().rewrap(&k2).unwrap(), k2);
    // After finalize only the new key is held: the old blob is refused, the new one works.
    let u = unit_for(instance, copy);
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &cbc(&[5; 16]), &k, &ct, &[])
            .unwrap_err()
            .ckr,
        ckr::IBM_WKID_MISMATCH
    );
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &cbc(&[5; 16]), &k2, &ct, &[])
            .unwrap(),
        b"before"
    );
}

#[test]
fn blobs_of_another_instance_never_open_even_under_the_same_master_key() {
    let mk = [7u8; 32];
    let a = unit_for(InstanceId::random(), MasterKey::from_bytes(mk));
    let b = unit_for(InstanceId::random(), MasterKey::from_bytes(mk));
    let k = aes(&a, &[]);
    let e = b
        .ep11()
        .single(Op::Encrypt, &cbc(&[0; 16]), &k, b"x", &[])
        .unwrap_err();
    assert_eq!(e.ckr, ckr::KEY_HANDLE_INVALID);
    let st = a.ep11().init(Op::Encrypt, &cbc(&[0; 16]), &k).unwrap();
    let e = b.ep11().finish(Op::Encrypt, &st, b"x", &[]).unwrap_err();
    assert_eq!(e.ckr, ckr::OPERATION_NOT_INITIALIZED);
    // Truncated anywhere: a clear error, never a panic.
    for n in 0..k.len() {
        let e = a
            .ep11()
            .single(Op::Encrypt, &cbc(&[0; 16]), &k[..n], b"x", &[])
            .unwrap_err();
        assert_eq!(e.ckr, ckr::KEY_HANDLE_INVALID, "truncated at {n}");
    }
    // Any single flipped bit: refused.
    for i in 0..k.len() {
        let mut t = k.clone();
        t[i] ^= 0x80;
        let e = a
            .ep11()
            .single(Op::Encrypt, &cbc(&[0; 16]), &t, b"x", &[])
            .unwrap_err();
        assert!(
            matches!(e.ckr, ckr::KEY_HANDLE_INVALID | ckr::IBM_WKID_MISMATCH),
            "byte {i}: {e}"
        );
    }
}

#[test]
fn raw_rsa_pkcs_over_a_digest_info_is_the_sha256_rsa_signature() {
    let u = unit();
    let (public, private) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[(cka::SIGN, AttrValue::Bool(true))]),
        )
        .unwrap();
    let msg = b"This data needs to be signed";
    let safe = u
        .ep11()
        .single(
            Op::Sign,
            &Mech::new(ckm::SHA256_RSA_PKCS),
            &private.blob,
            msg,
            &[],
        )
        .unwrap();
    let mut di = hex::decode("3031300d060960864801650304020105000420").unwrap();
    di.extend(
        u.ep11()
            .single(Op::Digest, &Mech::new(ckm::SHA256), &[], msg, &[])
            .unwrap(),
    );
    let raw = u
        .ep11()
        .single(Op::Sign, &Mech::new(ckm::RSA_PKCS), &private.blob, &di, &[])
        .unwrap();
    assert_eq!(raw, safe);
    u.ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::RSA_PKCS),
            &public.blob,
            &di,
            &raw,
        )
        .unwrap();
    u.ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::SHA256_RSA_PKCS),
            &public.blob,
            msg,
            &raw,
        )
        .unwrap();
    let mut other = di.clone();
    other[30] ^= 1;
    assert_eq!(
        u.ep11()
            .single(
                Op::Verify,
                &Mech::new(ckm::RSA_PKCS),
                &public.blob,
                &other,
                &raw
            )
            .unwrap_err()
            .ckr,
        ckr::SIGNATURE_INVALID
    );
    // SHA-1 and SHA-224 signatures go the same way (hash, DigestInfo, raw RSA).
    for m in [ckm::SHA1_RSA_PKCS, ckm::SHA224_RSA_PKCS] {
        let s = u
            .ep11()
            .single(Op::Sign, &Mech::new(m), &private.blob, msg, &[])
            .unwrap();
        u.ep11()
            .single(Op::Verify, &Mech::new(m), &public.blob, msg, &s)
            .unwrap();
        let st = u
            .ep11()
            .init(Op::Sign, &Mech::new(m), &private.blob)
            .unwrap();
        let (st, _) = u.ep11().update(Op::Sign, &st, &msg[..5]).unwrap();
        assert_eq!(
            u.ep11().finish(Op::Sign, &st, &msg[5..], &[]).unwrap(),
            s,
            "PKCS#1 v1.5 is deterministic"
        );
    }
    // Too much data for the padding.
    assert_eq!(
        u.ep11()
            .single(
                Op::Sign,
                &Mech::new(ckm::RSA_PKCS),
                &private.blob,
                &[0; 246],
                &[]
            )
            .unwrap_err()
            .ckr,
        ckr::DATA_LEN_RANGE
    );
}

#[test]
fn secp256k1_ecdh_agrees() {
    let u = unit();
    let params = params_of_curve(Curve::Secp256k1);
    let gen = || {
        u.ep11()
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &t(&[(cka::EC_PARAMS, AttrValue::Bytes(params.clone()))]),
                &t(&[(cka::DERIVE, AttrValue::Bool(true))]),
            )
            .unwrap()
    };
    let ((a_pub, a_priv), (b_pub, b_priv)) = (gen(), gen());
    let point = |k: &NewKey| match k.attrs.0.get(&cka::EC_POINT) {
        Some(AttrValue::Bytes(b)) => b.clone(),
        _ => panic!("no point"),
    };
    let tmpl = t(&[(cka::VALUE_LEN, AttrValue::Int(32))]);
    let ka = u
        .ep11()
        .derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point(&b_pub)),
            },
            &a_priv.blob,
            &tmpl,
        )
        .unwrap();
    let kb = u
        .ep11()
        .derive(
            &Mech {
                code: ckm::ECDH1_DERIVE,
                param: MechParam::Bytes(point(&a_pub)),
            },
            &b_priv.blob,
            &tmpl,
        )
        .unwrap();
    assert_eq!(ka.checksum, kb.checksum);
}

#[test]
fn generic_secret_derivations_and_the_extractable_rule() {
    let u = unit();
    let gen = |ext: bool| {
        u.ep11()
            .generate_key(
                &Mech::new(ckm::GENERIC_SECRET_KEY_GEN),
                &t(&[
                    (cka::VALUE_LEN, AttrValue::Int(16)),
                    (cka::DERIVE, AttrValue::Bool(true)),
                    (cka::EXTRACTABLE, AttrValue::Bool(ext)),
                ]),
            )
            .unwrap()
            .blob
    };
    let (locked, open) = (gen(false), gen(true));
    let wants_ext = t(&[(cka::EXTRACTABLE, AttrValue::Bool(true))]);
    let m = |code, p: &[u8]| Mech {
        code,
        param: MechParam::Bytes(p.to_vec()),
    };
    // Exporting a non-extractable key through a derivation is refused.
    for code in [
        ckm::CONCATENATE_BASE_AND_DATA,
        ckm::XOR_BASE_AND_DATA,
        ckm::SHA256_KEY_DERIVATION,
    ] {
        let mech = if code == ckm::SHA256_KEY_DERIVATION {
            Mech::new(code)
        } else {
            m(code, &[1; 4])
        };
        assert_eq!(
            u.ep11().derive(&mech, &locked, &wants_ext).unwrap_err().ckr,
            ckr::TEMPLATE_INCONSISTENT,
            "{code:x}"
        );
    }
    assert_eq!(
        u.ep11()
            .derive(
                &m(ckm::CONCATENATE_BASE_AND_KEY, &locked),
                &open,
                &wants_ext
            )
            .unwrap_err()
            .ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    // Lengths: base ‖ data, data ‖ base, base ⊕ data (as long as the base), base ‖ key.
    let len = |k: &NewKey| k.attrs.ulong(cka::VALUE_LEN).unwrap();
    assert_eq!(
        len(&u
            .ep11()
            .derive(
                &m(ckm::CONCATENATE_BASE_AND_DATA, &[1; 4]),
                &locked,
                &Template::new()
            )
            .unwrap()),
        20
    );
    assert_eq!(
        len(&u
            .ep11()
            .derive(
                &m(ckm::CONCATENATE_DATA_AND_BASE, &[1; 4]),
                &locked,
                &Template::new()
            )
            .unwrap()),
        20
    );
    assert_eq!(
        len(&u
            .ep11()
            .derive(
                &m(ckm::XOR_BASE_AND_DATA, &[1; 20]),
                &locked,
                &Template::new()
            )
            .unwrap()),
        16
    );
    // A key holding only part of the base key's bytes could be guessed a byte at a time
    // (a MAC or DigestKey oracle): XOR with less data than the base key, and any shorter
    // CKA_VALUE_LEN of a derivation that copies the base key, are refused.
    assert_eq!(
        u.ep11()
            .derive(
                &m(ckm::XOR_BASE_AND_DATA, &[1; 4]),
                &locked,
                &Template::new()
            )
            .unwrap_err()
            .ckr,
        ckr::MECHANISM_PARAM_INVALID
    );
    let one_byte_more = t(&[
        (cka::VALUE_LEN, AttrValue::Int(16)),
        (cka::SIGN, AttrValue::Bool(true)),
    ]);
    for (code, data) in [
        (ckm::CONCATENATE_DATA_AND_BASE, &[7u8; 15][..]),
        (ckm::CONCATENATE_BASE_AND_DATA, &[7u8; 15][..]),
        (ckm::XOR_BASE_AND_DATA, &[7u8; 16][..]),
        (ckm::CONCATENATE_BASE_AND_KEY, &open[..]),
    ] {
        let mut short = one_byte_more.clone();
        if code == ckm::XOR_BASE_AND_DATA {
            short.insert(cka::VALUE_LEN, AttrValue::Int(1));
        }
        let e = u
            .ep11()
            .derive(&m(code, data), &locked, &short)
            .unwrap_err();
        assert_eq!(e.ckr, ckr::TEMPLATE_INCONSISTENT, "{code:x}: {e:?}");
    }
    // Hash derivations may be shortened: a prefix of a digest tells nothing of the base.
    let short_hash = u
        .ep11()
        .derive(
            &Mech::new(ckm::SHA256_KEY_DERIVATION),
            &locked,
            &one_byte_more,
        )
        .unwrap();
    assert_eq!(len(&short_hash), 16);
    assert_eq!(
        len(&u
            .ep11()
            .derive(
                &m(ckm::CONCATENATE_BASE_AND_KEY, &open),
                &locked,
                &Template::new()
            )
            .unwrap()),
        32
    );
    // XOR with data twice gives the base back: same check value.
    let x1 = u
        .ep11()
        .derive(
            &m(ckm::XOR_BASE_AND_DATA, &[0x5a; 16]),
            &open,
            &t(&[
                (cka::DERIVE, AttrValue::Bool(true)),
                (cka::EXTRACTABLE, AttrValue::Bool(true)),
            ]),
        )
        .unwrap();
    let x2 = u
        .ep11()
        .derive(
            &m(ckm::XOR_BASE_AND_DATA, &[0x5a; 16]),
            &x1.blob,
            &Template::new(),
        )
        .unwrap();
    let same = u
        .ep11()
        .derive(
            &m(ckm::XOR_BASE_AND_DATA, &[0; 16]),
            &open,
            &Template::new(),
        )
        .unwrap();
    assert_eq!(x2.checksum, same.checksum);

    // A key that may leave only under trusted KEKs cannot be copied by a derivation into
    // one that may leave under any KEK: as base key, as the second key, or as a BIP32 seed.
    let guarded = secret_key(&u, &[cka::DERIVE, cka::EXTRACTABLE, cka::WRAP_WITH_TRUSTED]);
    let still_guarded = t(&[
        (cka::EXTRACTABLE, AttrValue::Bool(true)),
        (cka::WRAP_WITH_TRUSTED, AttrValue::Bool(true)),
    ]);
    for (mech, base) in [
        (m(ckm::XOR_BASE_AND_DATA, &[0; 32]), &guarded),
        (m(ckm::CONCATENATE_BASE_AND_DATA, &[1]), &guarded),
        (m(ckm::CONCATENATE_BASE_AND_KEY, &guarded), &open),
    ] {
        let e = u.ep11().derive(&mech, base, &wants_ext).unwrap_err();
        assert_eq!(e.ckr, ckr::TEMPLATE_INCONSISTENT, "{mech:?}");
        assert!(e.detail.contains("trusted"), "{e:?}");
        let kept = u.ep11().derive(&mech, base, &still_guarded).unwrap();
        assert!(kept.attrs.flag(cka::WRAP_WITH_TRUSTED));
        // Not extractable at all is fine too.
        u.ep11().derive(&mech, base, &Template::new()).unwrap();
    }
    let btc = Mech {
        code: ckm::IBM_BTC_DERIVE,
        param: MechParam::BtcDerive {
            kind: strongroom_model::pkcs11::btc::BIP32_MASTERK,
            index: 0,
            chain: Vec::new(),
            version: 1,
        },
    };
    let secp256k1 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
    let child = t(&[
        (cka::EXTRACTABLE, AttrValue::Bool(true)),
        (cka::SIGN, AttrValue::Bool(true)),
        (cka::EC_PARAMS, AttrValue::Bytes(secp256k1)),
    ]);
    assert_eq!(
        u.ep11().derive(&btc, &guarded, &child).unwrap_err().ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    let mut guarded_child = child.clone();
    guarded_child.insert(cka::WRAP_WITH_TRUSTED, AttrValue::Bool(true));
    u.ep11().derive(&btc, &guarded, &guarded_child).unwrap();
}

#[test]
fn pss_and_oaep_with_any_hash_and_mgf() {
    let u = unit();
    let (public, private) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::VERIFY, AttrValue::Bool(true)),
                (cka::ENCRYPT, AttrValue::Bool(true)),
            ]),
            &t(&[
                (cka::SIGN, AttrValue::Bool(true)),
                (cka::DECRYPT, AttrValue::Bool(true)),
            ]),
        )
        .unwrap();
    for (code, hash, mgf, salt) in [
        (ckm::SHA1_RSA_PKCS_PSS, ckm::SHA_1, 1, 20),
        (ckm::SHA224_RSA_PKCS_PSS, ckm::SHA224, 5, 0),
        (ckm::SHA256_RSA_PKCS_PSS, ckm::SHA256, 1, 10),
        (ckm::SHA512_RSA_PKCS_PSS, ckm::SHA512, 4, 64),
    ] {
        let m = Mech {
            code,
            param: MechParam::Pss { hash, mgf, salt },
        };
        let s1 = u
            .ep11()
            .single(Op::Sign, &m, &private.blob, b"msg", &[])
            .unwrap();
        let s2 = u
            .ep11()
            .single(Op::Sign, &m, &private.blob, b"msg", &[])
            .unwrap();
        assert_ne!(s1, s2, "PSS is randomised");
        u.ep11()
            .single(Op::Verify, &m, &public.blob, b"msg", &s1)
            .unwrap();
        assert_eq!(
            u.ep11()
                .single(Op::Verify, &m, &public.blob, b"msh", &s1)
                .unwrap_err()
                .ckr,
            ckr::SIGNATURE_INVALID
        );
        // A different MGF or salt does not verify.
        let other = Mech {
            code,
            param: MechParam::Pss {
                hash,
                mgf: if mgf == 1 { 2 } else { 1 },
                salt,
            },
        };
        assert_eq!(
            u.ep11()
                .single(Op::Verify, &other, &public.blob, b"msg", &s1)
                .unwrap_err()
                .ckr,
            ckr::SIGNATURE_INVALID
        );
    }
    for (hash, mgf) in [(ckm::SHA224, 5), (ckm::SHA256, 1), (ckm::SHA512, 2)] {
        let m = Mech {
            code: ckm::RSA_PKCS_OAEP,
            param: MechParam::Oaep {
                hash,
                mgf,
                label: b"label".to_vec(),
            },
        };
        let ct = u
            .ep11()
            .single(Op::Encrypt, &m, &public.blob, b"secret", &[])
            .unwrap();
        assert_eq!(
            u.ep11()
                .single(Op::Decrypt, &m, &private.blob, &ct, &[])
                .unwrap(),
            b"secret"
        );
        let wrong = Mech {
            code: ckm::RSA_PKCS_OAEP,
            param: MechParam::Oaep {
                hash,
                mgf,
                label: b"other".to_vec(),
            },
        };
        assert_eq!(
            u.ep11()
                .single(Op::Decrypt, &wrong, &private.blob, &ct, &[])
                .unwrap_err()
                .ckr,
            ckr::ENCRYPTED_DATA_INVALID
        );
    }
}

#[test]
fn multi_part_digests_and_signatures_keep_a_small_state_for_any_length() {
    let u = unit();
    let chunk: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    // 5 MiB through DigestUpdate: more than a single call may carry.
    let mut st = u
        .ep11()
        .init(Op::Digest, &Mech::new(ckm::SHA256), &[])
        .unwrap();
    for _ in 0..5 {
        st = u.ep11().update(Op::Digest, &st, &chunk).unwrap().0;
        assert!(
            st.len() < 600,
            "the State holds the hash state, not the data ({} bytes)",
            st.len()
        );
    }
    let streamed = u.ep11().finish(Op::Digest, &st, &[], &[]).unwrap();
    let whole: Vec<u8> = chunk
        .iter()
        .copied()
        .cycle()
        .take(5 * chunk.len())
        .collect();
    let want =
        strongroom_crypto_awslc::AwsLcProvider.digest(strongroom_engine::DigestAlg::Sha256, &whole);
    assert_eq!(streamed, want);
    // Hash-then-sign: the streamed signature equals the single-call one (PKCS#1 v1.5).
    let (public, private) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[(cka::SIGN, AttrValue::Bool(true))]),
        )
        .unwrap();
    let data = &whole[..3 * chunk.len()];
    let single = u
        .ep11()
        .single(
            Op::Sign,
            &Mech::new(ckm::SHA384_RSA_PKCS),
            &private.blob,
            data,
            &[],
        )
        .unwrap();
    let mut st = u
        .ep11()
        .init(Op::Sign, &Mech::new(ckm::SHA384_RSA_PKCS), &private.blob)
        .unwrap();
    for part in data.chunks(700_001) {
        st = u.ep11().update(Op::Sign, &st, part).unwrap().0;
    }
    assert_eq!(u.ep11().finish(Op::Sign, &st, &[], &[]).unwrap(), single);
    let mut st = u
        .ep11()
        .init(Op::Verify, &Mech::new(ckm::SHA384_RSA_PKCS), &public.blob)
        .unwrap();
    for part in data.chunks(1_000_000) {
        st = u.ep11().update(Op::Verify, &st, part).unwrap().0;
    }
    u.ep11().finish(Op::Verify, &st, &[], &single).unwrap();
    // SHA-3 has no exportable state here: its multi-part data is buffered, up to a limit.
    let mut st = u
        .ep11()
        .init(Op::Digest, &Mech::new(ckm::IBM_SHA3_256), &[])
        .unwrap();
    st = u.ep11().update(Op::Digest, &st, &chunk[..1000]).unwrap().0;
    assert_eq!(
        u.ep11().update(Op::Digest, &st, &chunk).unwrap_err().ckr,
        ckr::DATA_LEN_RANGE
    );
}

#[test]
fn x931_signatures() {
    let u = unit();
    let (public, private) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_X9_31_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[(cka::SIGN, AttrValue::Bool(true))]),
        )
        .unwrap();
    let msg = b"X9.31 still signs some old payment systems";
    let s1 = u
        .ep11()
        .single(
            Op::Sign,
            &Mech::new(ckm::SHA1_RSA_X9_31),
            &private.blob,
            msg,
            &[],
        )
        .unwrap();
    u.ep11()
        .single(
            Op::Verify,
            &Mech::new(ckm::SHA1_RSA_X9_31),
            &public.blob,
            msg,
            &s1,
        )
        .unwrap();
    // The raw mechanism takes hash ‖ 0x33 ‖ 0xCC and gives the same (deterministic) signature.
    let mut input = u
        .ep11()
        .single(Op::Digest, &Mech::new(ckm::SHA_1), &[], msg, &[])
        .unwrap();
    input.extend_from_slice(&[0x33, 0xCC]);
    assert_eq!(
        u.ep11()
            .single(
                Op::Sign,
                &Mech::new(ckm::RSA_X9_31),
                &private.blob,
                &input,
                &[]
            )
            .unwrap(),
        s1
    );
    let mut bad = s1.clone();
    bad[7] ^= 1;
    assert_eq!(
        u.ep11()
            .single(
                Op::Verify,
                &Mech::new(ckm::SHA1_RSA_X9_31),
                &public.blob,
                msg,
                &bad
            )
            .unwrap_err()
            .ckr,
        ckr::SIGNATURE_INVALID
    );
    // Multi-part gives the same signature.
    let st = u
        .ep11()
        .init(Op::Sign, &Mech::new(ckm::SHA1_RSA_X9_31), &private.blob)
        .unwrap();
    let (st, _) = u.ep11().update(Op::Sign, &st, &msg[..9]).unwrap();
    assert_eq!(u.ep11().finish(Op::Sign, &st, &msg[9..], &[]).unwrap(), s1);
    // X9.31 key sizes are 1024 + 256·s bits.
    let e = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_X9_31_KEY_PAIR_GEN),
            &t(&[(cka::MODULUS_BITS, AttrValue::Int(2176))]),
            &Template::new(),
        )
        .unwrap_err();
    assert_eq!(e.ckr, ckr::KEY_SIZE_RANGE);
}

#[test]
fn pkcs1_v15_decryption_can_be_switched_off_and_leaves_signing_and_oaep() {
    let mut u = unit();
    let (public, private) = u
        .ep11()
        .generate_key_pair(
            &Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            &t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::ENCRYPT, AttrValue::Bool(true)),
                (cka::WRAP, AttrValue::Bool(true)),
                (cka::VERIFY, AttrValue::Bool(true)),
            ]),
            &t(&[
                (cka::DECRYPT, AttrValue::Bool(true)),
                (cka::UNWRAP, AttrValue::Bool(true)),
                (cka::SIGN, AttrValue::Bool(true)),
            ]),
        )
        .unwrap();
    let pkcs1 = Mech::new(ckm::RSA_PKCS);
    let aes = common::aes_key(&u, &[cka::ENCRYPT, cka::EXTRACTABLE]);
    let ct = u
        .ep11()
        .single(Op::Encrypt, &pkcs1, &public.blob, b"secret", &[])
        .unwrap();
    let wrapped = u.ep11().wrap(&pkcs1, &aes, &public.blob, &[]).unwrap();
    let aes_template = t(&[
        (cka::CLASS, AttrValue::Int(cko::SECRET_KEY.0 as i64)),
        (cka::KEY_TYPE, AttrValue::Int(ckk::AES.0 as i64)),
        (cka::ENCRYPT, AttrValue::Bool(true)),
    ]);
    // Allowed by default: decrypt and unwrap work, and the mechanism offers them.
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &pkcs1, &private.blob, &ct, &[])
            .unwrap(),
        b"secret"
    );
    u.ep11()
        .unwrap(&pkcs1, &private.blob, &[], &wrapped, &aes_template)
        .unwrap();
    let flags = |u: &CryptoUnit| u.ep11().mechanism_info(ckm::RSA_PKCS).unwrap().flags;
    assert_ne!(flags(&u) & 0x200, 0, "CKF_DECRYPT");
    assert_ne!(flags(&u) & 0x40000, 0, "CKF_UNWRAP");

    u.refuse_rsa_pkcs1_decryption();
    assert!(!u.rsa_pkcs1_decryption());
    let refused = |e: Ep11Error| {
        assert_eq!(e.ckr, ckr::MECHANISM_INVALID);
        assert!(e.detail.contains("switched off"), "{}", e.detail);
    };
    refused(
        u.ep11()
            .single(Op::Decrypt, &pkcs1, &private.blob, &ct, &[])
            .unwrap_err(),
    );
    refused(
        u.ep11()
            .init(Op::Decrypt, &pkcs1, &private.blob)
            .unwrap_err(),
    );
    refused(
        u.ep11()
            .unwrap(&pkcs1, &private.blob, &[], &wrapped, &aes_template)
            .unwrap_err(),
    );
    assert_eq!(flags(&u) & (0x200 | 0x40000), 0);
    // Encrypting, wrapping, signing and verifying with CKM_RSA_PKCS stay; OAEP decrypts.
    assert_ne!(flags(&u) & 0x100, 0, "CKF_ENCRYPT");
    u.ep11()
        .single(Op::Encrypt, &pkcs1, &public.blob, b"secret", &[])
        .unwrap();
    let di = [0x30; 51];
    let sig = u
        .ep11()
        .single(Op::Sign, &pkcs1, &private.blob, &di, &[])
        .unwrap();
    u.ep11()
        .single(Op::Verify, &pkcs1, &public.blob, &di, &sig)
        .unwrap();
    let oaep = Mech {
        code: ckm::RSA_PKCS_OAEP,
        param: MechParam::Oaep {
            hash: ckm::SHA256,
            mgf: 2,
            label: vec![],
        },
    };
    let ct = u
        .ep11()
        .single(Op::Encrypt, &oaep, &public.blob, b"secret", &[])
        .unwrap();
    assert_eq!(
        u.ep11()
            .single(Op::Decrypt, &oaep, &private.blob, &ct, &[])
            .unwrap(),
        b"secret"
    );
}

mod attribute_bound_wrap {
    //! Property test of the attribute-bound wrap (v1, `CKM_IBM_ATTRIBUTEBOUND_WRAP`): a key
    //! wrapped with its attributes unwraps to the same value with the same attributes, and
    //! any one changed byte or a truncation is refused as an invalid wrapped key.
    use super::*;
    use proptest::prelude::*;

    fn attr_key(
        u: &CryptoUnit,
        mech: strongroom_engine::ep11::consts::Ckm,
        extra: &[(Cka, AttrValue)],
    ) -> NewKey {
        let mut tm = t(&[
            (cka::VALUE_LEN, AttrValue::Int(32)),
            (cka::IBM_ATTRBOUND, AttrValue::Bool(true)),
        ]);
        tm.extend(extra.iter().cloned());
        u.ep11().generate_key(&Mech::new(mech), &tm).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn a_key_round_trips_with_its_attributes_and_any_changed_byte_is_refused(
            usage in any::<[bool; 4]>(),
            label in proptest::collection::vec(any::<u8>(), 0..24),
            id in proptest::collection::vec(any::<u8>(), 0..12),
            len in prop::sample::select(vec![16i64, 24, 32]),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let u = unit();
            let kek = attr_key(&u, ckm::AES_KEY_GEN, &[
                (cka::WRAP, AttrValue::Bool(true)),
                (cka::UNWRAP, AttrValue::Bool(true)),
            ]);
            let mac = attr_key(&u, ckm::GENERIC_SECRET_KEY_GEN, &[]);
            let flags = [cka::ENCRYPT, cka::DECRYPT, cka::SIGN, cka::VERIFY];
            let mut extra: Vec<(Cka, AttrValue)> = flags
                .iter()
                .zip(usage)
                .map(|(a, on)| (*a, AttrValue::Bool(on)))
                .collect();
            extra.extend([
                (cka::EXTRACTABLE, AttrValue::Bool(true)),
                (cka::VALUE_LEN, AttrValue::Int(len)),
                (cka::LABEL, AttrValue::Bytes(label)),
                (cka::ID, AttrValue::Bytes(id)),
            ]);
            let key = attr_key(&u, ckm::AES_KEY_GEN, &extra);
            let abw = Mech::new(ckm::IBM_ATTRIBUTEBOUND_WRAP);
            let wrapped = u.ep11().wrap(&abw, &key.blob, &kek.blob, &mac.blob).unwrap();
            let unwrap = |w: &[u8]| {
                u.ep11().unwrap(&abw, &kek.blob, &mac.blob, w, &t(&[(cka::KEY_TYPE, AttrValue::ulong(ckk::AES.0))]))
            };
            let back = unwrap(&wrapped).unwrap();
            prop_assert_eq!(&back.checksum, &key.checksum);
            for a in flags.iter().chain(&[cka::CLASS, cka::KEY_TYPE, cka::VALUE_LEN, cka::LABEL, cka::ID, cka::EXTRACTABLE, cka::IBM_ATTRBOUND]) {
                prop_assert_eq!(back.attrs.0.get(a), key.attrs.0.get(a), "attribute {:?}", a);
            }
            prop_assert_eq!(back.attrs.0.get(&cka::LOCAL), Some(&AttrValue::Bool(false)));
            let mut bad = wrapped.clone();
            let i = at.index(bad.len());
            bad[i] ^= flip;
            prop_assert_eq!(unwrap(&bad).map(|_| ()).unwrap_err().ckr, ckr::WRAPPED_KEY_INVALID);
            let short = &wrapped[..at.index(wrapped.len())];
            prop_assert_eq!(unwrap(short).map(|_| ()).unwrap_err().ckr, ckr::WRAPPED_KEY_INVALID);
        }
    }
}
