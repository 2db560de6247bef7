//! KMIP objects in the service: the KMIP state machine as a table checked against the
//! service, material sealed under the adapter's root key and bound to its object,
//! isolation between adapters and instances, backups, and crypto-shredding.

use base64::Engine as _;
use strongroom_keystore::{KmipObjectFilter, KmipStore};

use super::*;
use crate::kmip::*;

/// A structurally valid certificate (SEQUENCE { tbs, algorithm, signature }) with a unique
/// serial, which is all that registration checks before fingerprinting it.
fn cert_pem() -> String {
    let serial = uuid::Uuid::new_v4();
    let mut tbs = vec![0x30, 0x12, 0x02, 0x10];
    tbs.extend_from_slice(serial.as_bytes());
    let mut body = tbs;
    body.extend_from_slice(&[0x30, 0x02, 0x05, 0x00, 0x03, 0x01, 0x00]);
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend_from_slice(&body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
}

/// An adapter on `instance` with a fresh root key, and a KMIP session through it.
async fn session(f: &Fixture, instance: InstanceId, name: &str) -> KmipSession {
    let ctx = f.ctx(instance, &[Role::Manager]).await;
    let crk = f
        .svc
        .create_key(&ctx, root(&format!("{name}-root")))
        .await
        .unwrap();
    f.svc
        .create_kmip_adapter(
            &ctx,
            NewKmipAdapter {
                name: Some(name.into()),
                description: None,
                profile: KMIP_PROFILE_NATIVE.into(),
                crk_id: Some(crk.record.id.to_string()),
                allow_expiring_key: false,
            },
        )
        .await
        .unwrap();
    let pem = f
        .svc
        .add_kmip_certificate(&ctx, name, Some(format!("{name}-cert")), &cert_pem())
        .await
        .unwrap();
    f.svc
        .kmip_connect(&pem.fingerprint, None, crate::Network::Public, "c".into())
        .await
        .unwrap()
}

async fn aes(f: &Fixture, s: &KmipSession) -> String {
    f.svc
        .kmip_create(s, algorithm::AES, 256, vec![])
        .await
        .unwrap()
        .to_string()
}

/// A CreateKeyPair of ECDSA on P-256, with `public` in the public key's template.
async fn p256_pair(
    f: &Fixture,
    s: &KmipSession,
    public: Vec<Attribute>,
) -> Result<(uuid::Uuid, uuid::Uuid)> {
    f.svc
        .kmip_create_key_pair(
            s,
            KmipKeyPairSpec::Ec(curve::P_256),
            algorithm::ECDSA,
            vec![],
            public,
        )
        .await
}

async fn state(f: &Fixture, s: &KmipSession, id: &str) -> u32 {
    let attrs = f
        .svc
        .kmip_attributes(s, id, Action::KmipGetAttributes)
        .await
        .unwrap();
    match attrs
        .iter()
        .find(|a| a.name == names::STATE)
        .map(|a| &a.value)
    {
        Some(AttrValue::Enum(v)) => *v,
        other => panic!("no state: {other:?}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Activate,
    RevokeCompromise,
    RevokeOther,
    Destroy,
}

/// KMIP 1.4 §3.22 (the transitions this server implements): what each step does from each
/// state, `None` where it is refused.
fn model(state: u32, step: Step) -> Option<u32> {
    match (step, state) {
        (Step::Activate, 1) => Some(2),
        (Step::RevokeCompromise, 1..=4) => Some(4),
        (Step::RevokeOther, 1 | 2) => Some(3),
        (Step::Destroy, 1 | 3) => Some(5),
        (Step::Destroy, 4) => Some(6),
        _ => None,
    }
}

#[tokio::test]
async fn the_kmip_state_machine_follows_the_specification_table() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "vcenter").await;
    let steps = [
        Step::Activate,
        Step::RevokeCompromise,
        Step::RevokeOther,
        Step::Destroy,
    ];
    // Every sequence of up to three steps from a fresh key.
    for a in steps {
        for b in steps {
            for c in steps {
                let id = aes(&f, &s).await;
                let mut expect = 1;
                for step in [a, b, c] {
                    let r = match step {
                        Step::Activate => f.svc.kmip_activate(&s, &id).await,
                        Step::RevokeCompromise => {
                            f.svc
                                .kmip_revoke(&s, &id, RevocationReason::Compromise, 2, None, None)
                                .await
                        }
                        Step::RevokeOther => {
                            f.svc
                                .kmip_revoke(&s, &id, RevocationReason::Other(6), 6, None, None)
                                .await
                        }
                        Step::Destroy => f.svc.kmip_destroy(&s, &id).await,
                    };
                    match model(expect, step) {
                        Some(next) => {
                            assert!(r.is_ok(), "{step:?} from {expect} refused: {r:?}");
                            expect = next;
                        }
                        None => assert!(r.is_err(), "{step:?} from {expect} allowed"),
                    }
                    assert_eq!(state(&f, &s, &id).await, expect, "after {a:?} {b:?} {c:?}");
                }
                // Material exists exactly while the object is not destroyed.
                let got = f.svc.kmip_get(&s, &id).await;
                assert_eq!(got.is_ok(), expect < 5, "{a:?} {b:?} {c:?}");
                // Done with it: the instance's quota (12) counts live objects.
                if expect < 5 {
                    f.svc
                        .kmip_revoke(&s, &id, RevocationReason::Compromise, 2, None, None)
                        .await
                        .unwrap();
                    f.svc.kmip_destroy(&s, &id).await.unwrap();
                }
            }
        }
    }
}

#[tokio::test]
async fn material_is_wrapped_bound_to_its_object_and_isolated() {
    let f = fixture().await;
    let i1 = f.instance().await;
    let s1 = session(&f, i1, "a1").await;
    let s1b = session(&f, i1, "a2").await;
    let s2 = session(&f, f.instance().await, "b1").await;
    let x = aes(&f, &s1).await;
    let y = aes(&f, &s1).await;
    let key = f.svc.kmip_get(&s1, &x).await.unwrap().material;

    // The keystore holds neither the key nor anything that opens under another id.
    let ux = uuid::Uuid::parse_str(&x).unwrap();
    let uy = uuid::Uuid::parse_str(&y).unwrap();
    let rx = f.store.get_kmip_object(i1, ux).await.unwrap();
    let sealed = rx.material.clone().unwrap();
    assert!(!sealed.windows(key.len()).any(|w| w == key.as_slice()));
    let mut ry = f.store.get_kmip_object(i1, uy).await.unwrap();
    ry.material = Some(sealed);
    f.store.update_kmip_object(&ry).await.unwrap();
    assert!(
        f.svc.kmip_get(&s1, &y).await.is_err(),
        "material moved to another object opened"
    );

    // Another adapter of the instance, and another instance, see nothing.
    for other in [&s1b, &s2] {
        assert_eq!(
            kind(f.svc.kmip_get(other, &x).await),
            ErrorKind::KmipObjectNotFound
        );
        assert_eq!(
            kind(f.svc.kmip_destroy(other, &x).await),
            ErrorKind::KmipObjectNotFound
        );
        assert!(!f
            .svc
            .kmip_locate(other, KmipLocate::default())
            .await
            .unwrap()
            .0
            .contains(&ux));
    }
}

#[tokio::test]
async fn kmip_records_survive_a_backup_and_are_shredded_with_their_instance() {
    let f = fixture().await;
    let inst = f.instance().await;
    let s = session(&f, inst, "vsan").await;
    let kept = aes(&f, &s).await;
    let gone = aes(&f, &s).await;
    f.svc.kmip_destroy(&s, &gone).await.unwrap();
    let p = AwsLcProvider;
    let (archive, sum) = backup::export_archive(f.store.as_ref(), &p, None, UnixMillis(0), None)
        .await
        .unwrap();
    assert_eq!(sum.kmip_objects, 2);

    let dir = tempfile::tempdir().unwrap();
    let fresh = SqliteStore::open(&dir.path().join("restored.db"))
        .await
        .unwrap();
    let restored = backup::restore_archive(&fresh, &archive, &p, None)
        .await
        .unwrap();
    assert_eq!(restored.kmip_objects, 2);
    let all = KmipObjectFilter {
        states: vec![1, 2, 3, 4, 5, 6],
        ..KmipObjectFilter::default()
    };
    let before = f.store.list_kmip_objects(inst, &all, 0, 10).await.unwrap();
    let after = fresh.list_kmip_objects(inst, &all, 0, 10).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(
        f.store.list_kmip_adapters(inst).await.unwrap(),
        fresh.list_kmip_adapters(inst).await.unwrap()
    );
    assert_eq!(
        f.store.kmip_fingerprints().await.unwrap(),
        fresh.kmip_fingerprints().await.unwrap()
    );

    // A version 1 reader's view: the format version says it is newer.
    let header: serde_json::Value =
        serde_json::from_slice(archive.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(header["version"], crate::backup::BACKUP_FORMAT_VERSION);

    // Deleting the instance (forced past its keys, as the store does once they are purged)
    // takes every KMIP record with it.
    f.svc
        .kmip_revoke(&s, &kept, RevocationReason::Compromise, 2, None, None)
        .await
        .unwrap();
    f.store
        .delete_instance(inst, true, UnixMillis(1))
        .await
        .unwrap();
    assert!(f
        .store
        .list_kmip_objects(inst, &all, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(f.store.list_kmip_adapters(inst).await.unwrap().is_empty());
    assert!(f.store.kmip_fingerprints().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_instance_quota_bounds_live_kmip_objects() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "quota").await;
    // The fixture allows 12 keys per instance; the adapter's root key is one of the keys,
    // and KMIP objects are counted on their own.
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(aes(&f, &s).await);
    }
    assert_eq!(
        kind(f.svc.kmip_create(&s, algorithm::AES, 256, vec![]).await),
        ErrorKind::LimitReached
    );
    // ReKey at the limit is refused, and leaves the existing key as it was.
    let before = f
        .store
        .get_kmip_object(s.ctx.instance, ids[1].parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.kmip_rekey(&s, &ids[1], None).await),
        ErrorKind::LimitReached
    );
    let after = f
        .store
        .get_kmip_object(s.ctx.instance, before.id)
        .await
        .unwrap();
    assert_eq!(after, before);
    // A destroyed object frees its place; a key pair needs two, so it is refused whole,
    // and no lone private key is left behind.
    f.svc.kmip_destroy(&s, &ids[0]).await.unwrap();
    let live = || async {
        f.store
            .count_kmip_objects(s.ctx.instance, &KmipObjectFilter::live())
            .await
            .unwrap()
    };
    assert_eq!(
        kind(p256_pair(&f, &s, vec![]).await),
        ErrorKind::LimitReached
    );
    assert_eq!(live().await, 11);
    aes(&f, &s).await;
    assert_eq!(
        kind(f.svc.kmip_create(&s, algorithm::AES, 256, vec![]).await),
        ErrorKind::LimitReached
    );
}

/// Concurrent Creates with room for two objects: two are stored, the others refused. The quota is counted in the write's own transaction, so no two writers
/// pass it together. (On SQLite, where they interleave.)
#[tokio::test]
async fn concurrent_creates_cannot_pass_the_quota_together() {
    let f = node_fixture().await;
    let s = session(&f, f.instance().await, "race").await;
    for _ in 0..10 {
        aes(&f, &s).await;
    }
    let create = || f.svc.kmip_create(&s, algorithm::AES, 256, vec![]);
    let (a, b, c, d, e) = tokio::join!(create(), create(), create(), create(), create());
    let stored = [&a, &b, &c, &d, &e].map(|r| r.is_ok());
    assert_eq!(stored.iter().filter(|ok| **ok).count(), 2, "{stored:?}");
    for r in [a, b, c, d, e].into_iter().filter(Result::is_err) {
        assert_eq!(kind(r), ErrorKind::LimitReached);
    }
    let live = f
        .store
        .count_kmip_objects(s.ctx.instance, &KmipObjectFilter::live())
        .await
        .unwrap();
    assert_eq!(live, 12);
}

/// A CreateKeyPair whose public template is refused stores neither key. (That an accepted
/// one stores both, linked, is tested end to end in the binary's KMIP tests: the test
/// provider here makes no key pairs.)
#[tokio::test]
async fn a_key_pair_with_a_refused_template_stores_neither_key() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "pair").await;
    let read_only = vec![Attribute::new(names::STATE, AttrValue::Enum(2))];
    assert_eq!(
        kind(p256_pair(&f, &s, read_only).await),
        ErrorKind::KmipAttributeReadOnly
    );
    let all = KmipObjectFilter::default();
    assert_eq!(
        f.store
            .count_kmip_objects(s.ctx.instance, &all)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn rekey_links_the_two_keys_and_every_operation_is_audited_as_kmip() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "rekey").await;
    let old = f
        .svc
        .kmip_create(
            &s,
            algorithm::AES,
            128,
            vec![
                Attribute::new("x-vm", AttrValue::Text("vm-7".into())),
                Attribute::new(names::NAME, name_value("disk-7")),
            ],
        )
        .await
        .unwrap()
        .to_string();
    f.svc.kmip_activate(&s, &old).await.unwrap();
    let before = f.svc.kmip_get(&s, &old).await.unwrap().material;
    let new = f.svc.kmip_rekey(&s, &old, None).await.unwrap().to_string();
    let fresh = f.svc.kmip_get(&s, &new).await.unwrap();
    assert_eq!(fresh.state, KmipState::Active);
    assert_eq!(
        (fresh.algorithm, fresh.length),
        (Some(algorithm::AES), Some(128))
    );
    assert_ne!(fresh.material, before, "ReKey made the same key");
    let link_to = |attrs: &[Attribute], ty: u32| {
        attrs
            .iter()
            .filter(|a| a.name == names::LINK)
            .find(|a| a.value.field(field::LINK_TYPE) == Some(&AttrValue::Enum(ty)))
            .and_then(|a| a.value.field(field::LINKED_OBJECT_IDENTIFIER))
            .and_then(AttrValue::text)
            .map(str::to_string)
    };
    let new_attrs = f
        .svc
        .kmip_attributes(&s, &new, Action::KmipGetAttributes)
        .await
        .unwrap();
    let old_attrs = f
        .svc
        .kmip_attributes(&s, &old, Action::KmipGetAttributes)
        .await
        .unwrap();
    assert_eq!(
        link_to(&new_attrs, link_type::REPLACED_OBJECT),
        Some(old.clone())
    );
    assert_eq!(
        link_to(&old_attrs, link_type::REPLACEMENT_OBJECT),
        Some(new.clone())
    );
    assert!(new_attrs.contains(&Attribute::new("x-vm", AttrValue::Text("vm-7".into()))));
    // The replacement takes over the name: the existing key keeps its other attributes.
    let named = Attribute::new(names::NAME, name_value("disk-7"));
    assert!(new_attrs.contains(&named), "{new_attrs:?}");
    assert!(
        !old_attrs.iter().any(|a| a.name == names::NAME),
        "{old_attrs:?}"
    );
    assert!(old_attrs.contains(&Attribute::new("x-vm", AttrValue::Text("vm-7".into()))));
    let by_name = KmipLocate {
        name: Some("disk-7".into()),
        ..KmipLocate::default()
    };
    let (found, _) = f.svc.kmip_locate(&s, by_name).await.unwrap();
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![new.clone()]
    );

    // The audit log names each KMIP operation, with the certificate as the principal.
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let recs = f.store.read_audit(head - 20, 30).await.unwrap();
    let actions: Vec<&str> = recs
        .iter()
        .filter(|r| r.principal == s.certificate.to_string())
        .map(|r| r.action.as_str())
        .collect();
    for a in [
        "kmip.connect",
        "kmip.create",
        "kmip.get",
        "kmip.rekey",
        "kmip.get_attributes",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

/// A KMIP Sign of an object that does not exist, with ECDSA and `hash`: its refusal.
async fn sign_missing(f: &Fixture, s: &KmipSession, hash: KmipHash) -> ServiceError {
    let id = uuid::Uuid::new_v4().to_string();
    f.svc
        .kmip_sign(s, &id, KmipSignature::Ecdsa(hash), b"m")
        .await
        .unwrap_err()
}

/// Under the FIPS policy KMIP makes no SHA-1 signature: the request is refused before any
/// key is looked at, where without the policy it goes on to the key.
#[tokio::test]
async fn the_fips_policy_makes_no_sha1_signatures() {
    let f = fixture_with_config(ServiceConfig {
        fips_policy: true,
        ..test_config(true)
    })
    .await;
    assert!(f.svc.mechanism_policy().fips);
    let instance = f.instance().await;
    let s = session(&f, instance, "fips").await;
    let e = sign_missing(&f, &s, KmipHash::Sha1).await;
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
    assert!(e.message.contains("FIPS"), "{e}");
    // SHA-256 goes on to the key (which does not exist).
    let e = sign_missing(&f, &s, KmipHash::Sha256).await;
    assert_ne!(e.kind, ErrorKind::Unsupported, "{e}");

    let plain = fixture().await;
    assert_eq!(plain.svc.mechanism_policy().fips, plain.svc.fips_mode());
    let instance = plain.instance().await;
    let s = session(&plain, instance, "plain").await;
    let e = sign_missing(&plain, &s, KmipHash::Sha1).await;
    assert_ne!(e.kind, ErrorKind::Unsupported, "{e}");
}

fn date(name: &str, t: i64) -> Attribute {
    Attribute::new(name, AttrValue::DateTime(t))
}

/// A new AES-128 key with these dates.
async fn aes_dated(f: &Fixture, s: &KmipSession, dates: &[(&str, i64)]) -> String {
    let attrs = dates.iter().map(|(n, t)| date(n, *t)).collect();
    f.svc
        .kmip_create(s, algorithm::AES, 128, attrs)
        .await
        .unwrap()
        .to_string()
}

/// Seconds since the epoch on the fixture's clock.
fn secs_now(f: &Fixture) -> i64 {
    f.svc.now().0.div_euclid(1000)
}

/// The ids Locate finds in `state`.
async fn located(f: &Fixture, s: &KmipSession, state: KmipState) -> Vec<String> {
    let q = KmipLocate {
        state: Some(state.code()),
        ..KmipLocate::default()
    };
    let (ids, _) = f.svc.kmip_locate(s, q).await.unwrap();
    ids.iter().map(ToString::to_string).collect()
}

/// Every attribute of an object, as GetAttributes reports them.
async fn attributes_of(f: &Fixture, s: &KmipSession, id: &str) -> Vec<Attribute> {
    f.svc
        .kmip_attributes(s, id, Action::KmipGetAttributes)
        .await
        .unwrap()
}

/// A date attribute of an object, as GetAttributes reports it.
async fn date_of(f: &Fixture, s: &KmipSession, id: &str, name: &str) -> Option<i64> {
    attributes_of(f, s, id)
        .await
        .iter()
        .find(|a| a.name == name)
        .map(|a| match a.value {
            AttrValue::DateTime(t) => t,
            ref other => panic!("{name} is {other:?}"),
        })
}

#[tokio::test]
async fn dates_that_come_move_an_object_on_and_cannot_be_moved_back() {
    let f = fixture().await;
    let i = f.instance().await;
    let s = session(&f, i, "dates").await;
    let admin = f.ctx(i, &[Role::Manager]).await;
    let t0 = secs_now(&f);
    let id = aes_dated(
        &f,
        &s,
        &[
            (names::ACTIVATION_DATE, t0 + 100),
            (names::DEACTIVATION_DATE, t0 + 200),
        ],
    )
    .await;
    let cbc = KmipCipher::AesCbc { pad: true };
    let iv = Some(vec![7u8; 16]);
    let encrypt = || f.svc.kmip_encrypt(&s, &id, cbc, iv.clone(), b"", b"data");
    let listed = || async {
        f.svc
            .get_kmip_object(&admin, "dates", &id)
            .await
            .unwrap()
            .state
    };

    // Before its Activation Date: Pre-Active, and it protects nothing.
    assert_eq!(state(&f, &s, &id).await, 1);
    assert_eq!(kind(encrypt().await), ErrorKind::InvalidKeyState);
    assert_eq!(
        located(&f, &s, KmipState::PreActive).await,
        vec![id.clone()]
    );

    // The Activation Date comes: Active for every reader and every use, with no write.
    f.clock.advance(100);
    assert_eq!(state(&f, &s, &id).await, 2);
    assert_eq!(listed().await, 2);
    assert_eq!(located(&f, &s, KmipState::Active).await, vec![id.clone()]);
    assert!(located(&f, &s, KmipState::PreActive).await.is_empty());
    let (ciphertext, _, _) = encrypt().await.unwrap();
    // The scheduler writes the new state into the row, for the management API's state
    // filter and counts, once, and audits it.
    let in_state = |st: u32| {
        let (f, admin) = (&f, &admin);
        async move {
            let (objects, total) = f
                .svc
                .list_kmip_objects(admin, "dates", vec![st], 0, 10)
                .await
                .unwrap();
            let ids: Vec<String> = objects.iter().map(|o| o.id.to_string()).collect();
            assert_eq!(total, ids.len() as u64);
            ids
        }
    };
    assert!(in_state(2).await.is_empty(), "the row is still Pre-Active");
    assert_eq!(f.svc.apply_kmip_dates().await.unwrap(), 1);
    assert_eq!(f.svc.apply_kmip_dates().await.unwrap(), 0);
    assert_eq!(in_state(2).await, vec![id.clone()]);
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let recs = f.store.read_audit(head - 5, 10).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "kmip.transition"
        && r.principal == "scheduler"
        && r.key.as_deref() == Some(id.as_str())));
    assert_eq!(
        kind(f.svc.kmip_activate(&s, &id).await),
        ErrorKind::InvalidKeyState
    );
    // Its Activation Date has come and stays; its Deactivation Date may still move.
    let moved = f
        .svc
        .kmip_modify_attribute(&s, &id, date(names::ACTIVATION_DATE, t0 + 500), None)
        .await;
    assert_eq!(kind(moved), ErrorKind::InvalidKeyState);
    assert_eq!(
        kind(
            f.svc
                .kmip_delete_attribute(&s, &id, names::ACTIVATION_DATE, None)
                .await
        ),
        ErrorKind::InvalidKeyState
    );
    f.svc
        .kmip_modify_attribute(&s, &id, date(names::DEACTIVATION_DATE, t0 + 300), None)
        .await
        .unwrap();
    assert_eq!(state(&f, &s, &id).await, 2);

    // The Deactivation Date comes: Deactivated. It decrypts, no longer encrypts, and a
    // Deactivated object is destroyed without a Revoke.
    f.clock.advance(199);
    assert_eq!(state(&f, &s, &id).await, 2, "one second early");
    f.clock.advance(1);
    assert_eq!(state(&f, &s, &id).await, 3);
    assert_eq!(listed().await, 3);
    assert_eq!(
        located(&f, &s, KmipState::Deactivated).await,
        vec![id.clone()]
    );
    assert!(located(&f, &s, KmipState::Active).await.is_empty());
    assert_eq!(f.svc.apply_kmip_dates().await.unwrap(), 1);
    assert_eq!(in_state(3).await, vec![id.clone()]);
    assert_eq!(kind(encrypt().await), ErrorKind::InvalidKeyState);
    let plain = f
        .svc
        .kmip_decrypt(&s, &id, cbc, iv.clone(), b"", &ciphertext, None)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), b"data");
    for undo in [
        f.svc
            .kmip_delete_attribute(&s, &id, names::DEACTIVATION_DATE, None)
            .await
            .map(|_| ()),
        f.svc
            .kmip_modify_attribute(&s, &id, date(names::DEACTIVATION_DATE, t0 + 900), None)
            .await
            .map(|_| ()),
    ] {
        assert_eq!(kind(undo), ErrorKind::InvalidKeyState);
    }
    assert_eq!(state(&f, &s, &id).await, 3);
    f.svc.kmip_destroy(&s, &id).await.unwrap();
    assert_eq!(state(&f, &s, &id).await, 5);

    // Dates that have already come at Create make a Deactivated object at once.
    let now = secs_now(&f);
    let late = aes_dated(
        &f,
        &s,
        &[
            (names::ACTIVATION_DATE, now - 10),
            (names::DEACTIVATION_DATE, now),
        ],
    )
    .await;
    assert_eq!(state(&f, &s, &late).await, 3);
    // Activate and Revoke set their dates to now, over the ones a client set.
    let early = aes_dated(
        &f,
        &s,
        &[
            (names::ACTIVATION_DATE, t0 + 10_000),
            (names::DEACTIVATION_DATE, t0 + 20_000),
        ],
    )
    .await;
    f.svc.kmip_activate(&s, &early).await.unwrap();
    let now = secs_now(&f);
    assert_eq!(
        date_of(&f, &s, &early, names::ACTIVATION_DATE).await,
        Some(now)
    );
    f.svc
        .kmip_revoke(&s, &early, RevocationReason::Other(6), 6, None, None)
        .await
        .unwrap();
    assert_eq!(
        date_of(&f, &s, &early, names::DEACTIVATION_DATE).await,
        Some(now)
    );

    // An Active key processes from its Process Start Date, and protects until its Protect
    // Stop Date.
    let windowed = aes_dated(
        &f,
        &s,
        &[
            (names::ACTIVATION_DATE, now),
            (names::PROCESS_START_DATE, now + 50),
            (names::PROTECT_STOP_DATE, now + 100),
        ],
    )
    .await;
    let use_it = |decrypting: bool, data: Vec<u8>| {
        let (f, s, id, iv) = (&f, &s, windowed.clone(), iv.clone());
        async move {
            if decrypting {
                f.svc
                    .kmip_decrypt(s, &id, cbc, iv, b"", &data, None)
                    .await
                    .map(|p| p.to_vec())
            } else {
                f.svc
                    .kmip_encrypt(s, &id, cbc, iv, b"", &data)
                    .await
                    .map(|(c, _, _)| c)
            }
        }
    };
    let sealed = use_it(false, b"early".to_vec()).await.unwrap();
    assert_eq!(
        kind(use_it(true, sealed.clone()).await),
        ErrorKind::InvalidKeyState
    );
    f.clock.advance(50);
    assert_eq!(use_it(true, sealed.clone()).await.unwrap(), b"early");
    f.clock.advance(50);
    assert_eq!(
        kind(use_it(false, b"late".to_vec()).await),
        ErrorKind::InvalidKeyState
    );
    assert_eq!(use_it(true, sealed).await.unwrap(), b"early");
    assert_eq!(
        state(&f, &s, &windowed).await,
        2,
        "the dates limit use, not state"
    );
}

#[tokio::test]
async fn rekey_copies_the_existing_dates_or_moves_them_by_the_offset() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "rekey-dates").await;
    let t0 = secs_now(&f);
    let dates = [
        (names::ACTIVATION_DATE, t0 - 50),
        (names::PROCESS_START_DATE, t0 - 40),
        (names::PROTECT_STOP_DATE, t0 + 900),
        (names::DEACTIVATION_DATE, t0 + 1000),
    ];
    let mut attrs: Vec<Attribute> = dates.iter().map(|(n, t)| date(n, *t)).collect();
    attrs.push(date(names::COMPROMISE_OCCURRENCE_DATE, t0 - 5));
    let old = f
        .svc
        .kmip_create(&s, algorithm::AES, 256, attrs)
        .await
        .unwrap()
        .to_string();
    assert_eq!(state(&f, &s, &old).await, 2);

    // No Offset: the four dates are copied, and the compromise is not.
    let copied = f.svc.kmip_rekey(&s, &old, None).await.unwrap().to_string();
    for (name, t) in dates {
        assert_eq!(date_of(&f, &s, &copied, name).await, Some(t), "{name}");
    }
    assert_eq!(
        date_of(&f, &s, &copied, names::COMPROMISE_OCCURRENCE_DATE).await,
        None
    );
    assert_eq!(state(&f, &s, &copied).await, 2);

    // An Offset: Activation Date = now + Offset, the others moved as much (110 s).
    let moved = f
        .svc
        .kmip_rekey(&s, &old, Some(60))
        .await
        .unwrap()
        .to_string();
    for (name, t) in dates {
        assert_eq!(date_of(&f, &s, &moved, name).await, Some(t + 110), "{name}");
    }
    assert_eq!(state(&f, &s, &moved).await, 1, "Pre-Active until now + 60");
    f.clock.advance(60);
    assert_eq!(state(&f, &s, &moved).await, 2);

    // A Pre-Active key without dates gives a Pre-Active replacement; with an Offset of 0
    // an Active one, with nothing else to move.
    let pending = aes(&f, &s).await;
    let still = f
        .svc
        .kmip_rekey(&s, &pending, None)
        .await
        .unwrap()
        .to_string();
    assert_eq!(state(&f, &s, &still).await, 1);
    let at_once = f
        .svc
        .kmip_rekey(&s, &pending, Some(0))
        .await
        .unwrap()
        .to_string();
    assert_eq!(state(&f, &s, &at_once).await, 2);
    assert_eq!(
        date_of(&f, &s, &at_once, names::ACTIVATION_DATE).await,
        Some(secs_now(&f))
    );
    assert_eq!(
        date_of(&f, &s, &at_once, names::DEACTIVATION_DATE).await,
        None
    );

    // A key revoked after 100 s of use: with an Offset of 0 its replacement is Active
    // now and deactivates after as long.
    let used = aes(&f, &s).await;
    f.svc.kmip_activate(&s, &used).await.unwrap();
    f.clock.advance(100);
    f.svc
        .kmip_revoke(&s, &used, RevocationReason::Other(6), 6, None, None)
        .await
        .unwrap();
    let next = f
        .svc
        .kmip_rekey(&s, &used, Some(0))
        .await
        .unwrap()
        .to_string();
    let now = secs_now(&f);
    assert_eq!(state(&f, &s, &next).await, 2);
    assert_eq!(
        date_of(&f, &s, &next, names::DEACTIVATION_DATE).await,
        Some(now + 100)
    );
}

#[tokio::test]
async fn locate_reads_every_page_and_counts_every_match() {
    let f = fixture().await;
    let s = session(&f, f.instance().await, "pages").await;
    // More objects than a page (3 in tests); every other one tagged.
    let tag = || Attribute::new("x-batch", AttrValue::Text("b".into()));
    let mut tagged = Vec::new();
    for n in 0..8 {
        let attrs = if n % 2 == 0 { vec![tag()] } else { vec![] };
        let id = f
            .svc
            .kmip_create(&s, algorithm::AES, 128, attrs)
            .await
            .unwrap()
            .to_string();
        if n % 2 == 0 {
            tagged.push(id);
        }
    }
    let locate = |q: KmipLocate| {
        let (f, s) = (&f, &s);
        async move {
            let (ids, matched) = f.svc.kmip_locate(s, q).await.unwrap();
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            (ids, matched)
        }
    };
    let page = |offset: u64, max_items: Option<u32>| KmipLocate {
        offset,
        max_items,
        ..KmipLocate::default()
    };

    // Criteria matched here (an attribute, a state): every page is read.
    let by_tag = |offset, max| KmipLocate {
        attributes: vec![tag()],
        ..page(offset, max)
    };
    let (found, matched) = locate(by_tag(0, None)).await;
    assert_eq!(matched, 4);
    let mut sorted = found.clone();
    sorted.sort();
    tagged.sort();
    assert_eq!(sorted, tagged);
    assert_eq!(locate(by_tag(1, Some(2))).await, (found[1..3].to_vec(), 4));
    assert_eq!(locate(by_tag(3, Some(5))).await, (found[3..].to_vec(), 4));

    // The keystore's filter alone: it counts and pages, in the same order.
    let (everything, total) = locate(page(0, None)).await;
    assert_eq!((everything.len(), total), (8, 8));
    assert_eq!(
        locate(page(5, Some(2))).await,
        (everything[5..7].to_vec(), 8)
    );
    let pre_active = |offset, max| KmipLocate {
        state: Some(KmipState::PreActive.code()),
        ..page(offset, max)
    };
    assert_eq!(locate(pre_active(0, None)).await, (everything.clone(), 8));
    assert_eq!(
        locate(pre_active(6, Some(9))).await,
        (everything[6..].to_vec(), 8)
    );
}

mod usage;
