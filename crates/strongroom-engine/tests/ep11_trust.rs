//! `CKA_TRUSTED` and `CKA_WRAP_WITH_TRUSTED`: a guarded key leaves only under a KEK the
//! security officer made, and no call of another caller (generation, SetAttributeValue, an
//! attribute-bound unwrap, a decryption, a round trip through the trusted KEK) undoes that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{aes_key, aes_key_by, aes_template, secret_key, t, unit};
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, ckr, Cka};
use strongroom_engine::ep11::*;
use strongroom_engine::CryptoUnit;

/// A KEK that wraps and unwraps, extractable itself (so that attribute-bound wraps can
/// move it).
const KEK: [Cka; 3] = [cka::WRAP, cka::UNWRAP, cka::EXTRACTABLE];
/// [`KEK`], trusted.
const TRUSTED_KEK: [Cka; 4] = [cka::WRAP, cka::UNWRAP, cka::EXTRACTABLE, cka::TRUSTED];
/// A key that may leave only under a trusted KEK.
const GUARDED: [Cka; 2] = [cka::EXTRACTABLE, cka::WRAP_WITH_TRUSTED];

fn cbc_pad() -> Mech {
    Mech {
        code: ckm::AES_CBC_PAD,
        param: MechParam::Bytes(vec![0; 16]),
    }
}

fn oaep() -> Mech {
    Mech {
        code: ckm::RSA_PKCS_OAEP,
        param: MechParam::Oaep {
            hash: ckm::SHA256,
            mgf: 2, // CKG_MGF1_SHA256
            label: Vec::new(),
        },
    }
}

fn rsa_pair(ep: Ep11<'_>, private: &[Cka]) -> Result<(NewKey, NewKey), Ep11Error> {
    let public = t(&[
        (cka::MODULUS_BITS, AttrValue::Int(2048)),
        (cka::WRAP, AttrValue::Bool(true)),
        (cka::TRUSTED, AttrValue::Bool(true)),
    ]);
    let private: Template = private
        .iter()
        .map(|a| (*a, AttrValue::Bool(true)))
        .collect();
    ep.generate_key_pair(&Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN), &public, &private)
}

/// An AES unwrap template: the class and type, and the flags `set`.
fn unwrapped_aes(set: &[Cka]) -> Template {
    let mut tm = t(&[
        (cka::CLASS, AttrValue::Int(cko::SECRET_KEY.0 as i64)),
        (cka::KEY_TYPE, AttrValue::Int(ckk::AES.0 as i64)),
    ]);
    tm.extend(set.iter().map(|a| (*a, AttrValue::Bool(true))));
    tm
}

fn officer(u: &CryptoUnit) -> Ep11<'_> {
    u.ep11().as_officer(true)
}

#[test]
fn only_the_officer_generates_trusted_keys_and_a_trusted_pair_is_trusted_on_both_halves() {
    let u = unit();
    let gen = Mech::new(ckm::AES_KEY_GEN);
    let e = u
        .ep11()
        .generate_key(&gen, &aes_template(&TRUSTED_KEK))
        .unwrap_err();
    assert_eq!(e.ckr, ckr::ATTRIBUTE_READ_ONLY);
    assert!(e.detail.contains("security officer"), "{e:?}");
    assert_eq!(
        rsa_pair(u.ep11(), &[cka::UNWRAP]).unwrap_err().ckr,
        ckr::ATTRIBUTE_READ_ONLY
    );
    aes_key_by(officer(&u), &TRUSTED_KEK);
    let (public, private) = rsa_pair(officer(&u), &[cka::UNWRAP]).unwrap();
    assert!(public.attrs.flag(cka::TRUSTED));
    assert!(private.attrs.flag(cka::TRUSTED));
}

#[test]
fn only_the_officer_turns_a_key_trusted_and_anyone_may_lift_it() {
    let u = unit();
    let own = aes_key(&u, &KEK);
    let trust = t(&[(cka::TRUSTED, AttrValue::Bool(true))]);
    assert_eq!(
        u.ep11().set_attributes(&own, &trust).unwrap_err().ckr,
        ckr::ATTRIBUTE_READ_ONLY
    );
    let (trusted, _) = officer(&u).set_attributes(&own, &trust).unwrap();
    // Changing another attribute of a trusted key, or lifting the flag, needs no officer.
    u.ep11()
        .set_attributes(&trusted, &t(&[(cka::EXTRACTABLE, AttrValue::Bool(false))]))
        .unwrap();
    u.ep11()
        .set_attributes(&trusted, &t(&[(cka::TRUSTED, AttrValue::Bool(false))]))
        .unwrap();
}

#[test]
fn a_guarded_key_leaves_only_under_a_trusted_kek() {
    let u = unit();
    let guarded = aes_key(&u, &GUARDED);
    let own = aes_key(&u, &KEK);
    assert_eq!(
        u.ep11()
            .wrap(&cbc_pad(), &guarded, &own, &[])
            .unwrap_err()
            .ckr,
        ckr::KEY_NOT_WRAPPABLE
    );
    let kek = aes_key_by(officer(&u), &TRUSTED_KEK);
    u.ep11().wrap(&cbc_pad(), &guarded, &kek, &[]).unwrap();
}

#[test]
fn a_round_trip_through_a_trusted_kek_keeps_the_mark() {
    let u = unit();
    let user = u.ep11();
    let guarded = aes_key(&u, &GUARDED);
    let kek = aes_key_by(officer(&u), &TRUSTED_KEK);
    let w = user.wrap(&cbc_pad(), &guarded, &kek, &[]).unwrap();
    let back = |set: &[Cka]| user.unwrap(&cbc_pad(), &kek, &[], &w, &unwrapped_aes(set));
    assert_eq!(
        back(&[cka::EXTRACTABLE]).unwrap_err().ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    back(&GUARDED).unwrap();
    back(&[]).unwrap();

    // The same through a trusted RSA pair: its private half keeps the mark too.
    let (public, private) = rsa_pair(officer(&u), &[cka::UNWRAP]).unwrap();
    let w = user.wrap(&oaep(), &guarded, &public.blob, &[]).unwrap();
    let back = |set: &[Cka]| user.unwrap(&oaep(), &private.blob, &[], &w, &unwrapped_aes(set));
    assert_eq!(
        back(&[cka::EXTRACTABLE]).unwrap_err().ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    back(&GUARDED).unwrap();
}

#[test]
fn a_trusted_key_never_decrypts() {
    let u = unit();
    let gen = Mech::new(ckm::AES_KEY_GEN);
    let mut decrypting = TRUSTED_KEK.to_vec();
    decrypting.push(cka::DECRYPT);
    assert_eq!(
        officer(&u)
            .generate_key(&gen, &aes_template(&decrypting))
            .unwrap_err()
            .ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    assert_eq!(
        rsa_pair(officer(&u), &[cka::UNWRAP, cka::DECRYPT])
            .unwrap_err()
            .ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    // Nor later, in either order.
    let decrypt = t(&[(cka::DECRYPT, AttrValue::Bool(true))]);
    let kek = aes_key_by(officer(&u), &TRUSTED_KEK);
    assert_eq!(
        officer(&u).set_attributes(&kek, &decrypt).unwrap_err().ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
    let decrypting_own = aes_key(&u, &[cka::WRAP, cka::DECRYPT]);
    assert_eq!(
        officer(&u)
            .set_attributes(
                &decrypting_own,
                &t(&[(cka::TRUSTED, AttrValue::Bool(true))])
            )
            .unwrap_err()
            .ckr,
        ckr::TEMPLATE_INCONSISTENT
    );
}

#[test]
fn attribute_bound_wraps_keep_trust_with_the_officer() {
    let u = unit();
    let user = u.ep11();
    let bound = |set: &[Cka]| [set, &[cka::IBM_ATTRBOUND]].concat();
    let mac = secret_key(&u, &bound(&[cka::SIGN, cka::VERIFY]));
    let ab = Mech::new(ckm::IBM_ATTRIBUTEBOUND_WRAP);
    let kek = aes_key_by(officer(&u), &bound(&[cka::WRAP, cka::UNWRAP]));
    let trusted_kek = aes_key_by(officer(&u), &bound(&TRUSTED_KEK));

    // Restoring a trusted key restores CKA_TRUSTED: the officer's call.
    let wrapped = user.wrap(&ab, &trusted_kek, &kek, &mac).unwrap();
    assert_eq!(
        user.unwrap(&ab, &kek, &mac, &wrapped, &Template::new())
            .unwrap_err()
            .ckr,
        ckr::ATTRIBUTE_READ_ONLY
    );
    let back = officer(&u)
        .unwrap(&ab, &kek, &mac, &wrapped, &Template::new())
        .unwrap();
    assert!(back.attrs.flag(cka::TRUSTED));

    // A guarded key goes only to a trusted KEK, as with a plain wrap.
    let guarded = aes_key(&u, &bound(&GUARDED));
    assert_eq!(
        user.wrap(&ab, &guarded, &kek, &mac).unwrap_err().ckr,
        ckr::KEY_NOT_WRAPPABLE
    );
    user.wrap(&ab, &guarded, &trusted_kek, &mac).unwrap();
}
