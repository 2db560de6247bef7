//! Property test of the backup archive (v4) as a whole: a keystore holding every kind of
//! record an archive carries is exported, restored into an empty keystore and exported again,
//! and the two archives are the same bytes; any one changed byte of an archive, or a cut one,
//! is refused by `verify` and by `restore`, which then writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_keystore::MemoryStore;
use strongroom_keystore::{KmipAdapterRecord, KmipCertificateRecord, TokenObjectRecord};

use super::tests::{key_record, ms, text, uuid};
use super::*;

/// One instance's records, consistent with each other (keys in existing rings, API keys of
/// existing service IDs, registrations of existing key versions, objects of existing
/// adapters).
#[derive(Debug, Clone)]
struct World {
    instance: InstanceRecord,
    rings: Vec<KeyRingRecord>,
    keys: Vec<(KeyRecord, Vec<KeyVersionRecord>)>,
    service_ids: Vec<ServiceIdRecord>,
    api_keys: Vec<ApiKeyRecord>,
    policies: Vec<InstancePolicyRecord>,
    adapters: Vec<(KmipAdapterRecord, Vec<KmipCertificateRecord>)>,
    kmip_objects: Vec<KmipObjectRecord>,
    token_objects: Vec<TokenObjectRecord>,
    registrations: Vec<RegistrationRecord>,
}

fn world() -> impl Strategy<Value = World> {
    let head = (
        uuid(),
        text(),
        ms(),
        proptest::collection::vec((ms(), text()), 0..3),
    );
    let keys = proptest::collection::vec(key_record(), 0..5);
    let grants = proptest::collection::vec(
        (
            text(),
            0u8..32,
            ms(),
            any::<bool>(),
            any::<[u8; 32]>(),
            any::<bool>(),
        ),
        0..3,
    );
    let policies = proptest::collection::vec((any::<bool>(), text(), ms(), ms(), text()), 0..3);
    let kmip = proptest::collection::vec(
        (
            uuid(),
            proptest::option::of(text()),
            (ms(), text()),
            proptest::collection::vec((uuid(), text(), ms()), 0..2),
            proptest::collection::vec(
                (
                    uuid(),
                    (
                        1u32..=8,
                        1u32..=6,
                        proptest::option::of(text()),
                        proptest::option::of(any::<u32>()),
                    ),
                    (any::<i64>(), ms(), proptest::option::of(ms())),
                    proptest::collection::vec(any::<u8>(), 0..40),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                ),
                0..3,
            ),
        ),
        0..2,
    );
    let tokens = proptest::collection::vec(
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<i64>(),
            ms(),
            ms(),
        ),
        0..3,
    );
    let regs = proptest::collection::vec(
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<bool>(),
            ms(),
        ),
        0..3,
    );
    (head, keys, grants, policies, kmip, tokens, regs).prop_map(
        |((iid, iname, icreated, rings), keys, grants, policies, kmip, tokens, regs)| {
            let instance = InstanceRecord {
                id: InstanceId(iid),
                name: iname,
                created_at: icreated,
            };
            let rings: Vec<KeyRingRecord> = rings
                .into_iter()
                .enumerate()
                .map(|(n, (at, by))| KeyRingRecord {
                    id: format!("ring-{n}"),
                    created_at: at,
                    created_by: by,
                })
                .collect();
            let ring_of = |n: usize| {
                rings
                    .get(n % rings.len().max(1))
                    .map_or("default".to_string(), |r| r.id.clone())
            };
            let keys: Vec<(KeyRecord, Vec<KeyVersionRecord>)> = keys
                .into_iter()
                .enumerate()
                .filter(|(_, (_, vs))| !vs.is_empty())
                .map(|(n, (mut k, mut vs))| {
                    // As a keystore lists them: newest first, the newest the current one.
                    let count = vs.len();
                    for (j, v) in vs.iter_mut().enumerate() {
                        v.seq = u32::try_from(count - j).expect("few");
                    }
                    k.current_version = vs[0].id;
                    k.version_count = u32::try_from(count).expect("few");
                    k.instance = instance.id;
                    k.key_ring = ring_of(n);
                    // Aliases are unique in an instance.
                    k.aliases = k
                        .aliases
                        .iter()
                        .enumerate()
                        .map(|(j, a)| format!("{a}-{n}-{j}"))
                        .collect();
                    (k, vs)
                })
                .collect();
            let mut service_ids = Vec::new();
            let mut api_keys = Vec::new();
            for (n, (name, roles, at, with_sid, hash, limited)) in grants.into_iter().enumerate() {
                let rings_of = limited.then(|| vec![ring_of(n)]);
                let sid = with_sid.then(|| {
                    let s = ServiceIdRecord {
                        id: format!("ServiceId-{}", uuid::Uuid::from_u128(n as u128 + 1)),
                        instance: instance.id,
                        name: format!("{name}-sid-{n}"),
                        roles: Roles(roles),
                        key_rings: rings_of.clone(),
                        created_at: at,
                    };
                    service_ids.push(s.clone());
                    s.id
                });
                api_keys.push(ApiKeyRecord {
                    id: format!("{n:016x}"),
                    instance: instance.id,
                    name: format!("{name}-{n}"),
                    roles: Roles(roles),
                    secret_hash: hash,
                    created_at: at,
                    service_id: sid,
                    key_rings: rings_of,
                });
            }
            let policies = policies
                .into_iter()
                .enumerate()
                .map(|(n, (enabled, by, c, u, attr))| InstancePolicyRecord {
                    policy_type: format!("policy{n}"),
                    enabled,
                    attributes: serde_json::json!({ "a": attr }).to_string(),
                    created_at: c,
                    created_by: by.clone(),
                    updated_at: u,
                    updated_by: by,
                })
                .collect();
            let crk = keys.first().map_or(KeyId(uuid::Uuid::nil()), |(k, _)| k.id);
            let mut adapters = Vec::new();
            let mut kmip_objects = Vec::new();
            for (n, (aid, description, (at, by), certs, objects)) in kmip.into_iter().enumerate() {
                let adapter = KmipAdapterRecord {
                    instance: instance.id,
                    id: aid,
                    name: format!("adapter-{n}"),
                    description,
                    profile: "native_1.0".into(),
                    crk_id: crk,
                    created_at: at,
                    created_by: by.clone(),
                    updated_at: at,
                    updated_by: by.clone(),
                };
                let certs = certs
                    .into_iter()
                    .enumerate()
                    .map(|(c, (cid, pem, cat))| KmipCertificateRecord {
                        instance: instance.id,
                        adapter: aid,
                        id: cid,
                        name: format!("cert-{n}-{c}"),
                        pem,
                        fingerprint: format!("{n:02x}{c:062x}"),
                        created_at: cat,
                        created_by: by.clone(),
                    })
                    .collect();
                adapters.push((adapter, certs));
                for (
                    oid,
                    (object_type, state, name, algorithm),
                    (row, updated, destroyed),
                    attributes,
                    material,
                ) in objects
                {
                    kmip_objects.push(KmipObjectRecord {
                        instance: instance.id,
                        adapter: aid,
                        id: oid,
                        object_type,
                        state,
                        name,
                        algorithm,
                        row_version: row,
                        created_at: at,
                        created_by: by.clone(),
                        updated_at: updated,
                        destroyed_at: destroyed,
                        attributes,
                        material,
                    });
                }
            }
            let token_objects = tokens
                .into_iter()
                .enumerate()
                .map(|(n, (private, data, version, c, u))| TokenObjectRecord {
                    instance: instance.id,
                    space: format!("space-{}", n % 2),
                    id: format!("object-{n}"),
                    private,
                    data,
                    version,
                    created_at: c,
                    updated_at: u,
                })
                .collect();
            let versioned: Vec<&(KeyRecord, Vec<KeyVersionRecord>)> =
                keys.iter().filter(|(_, vs)| !vs.is_empty()).collect();
            let registrations = regs
                .into_iter()
                .enumerate()
                .filter_map(|(n, (by, description, metadata, prevent, at))| {
                    let (k, vs) = versioned.get(n % versioned.len().max(1))?;
                    Some(RegistrationRecord {
                        key: k.id,
                        resource_crn: format!(
                            "crn:v1:bluemix:public:cloud-object-storage:global:a/1::bucket:{n}"
                        ),
                        description,
                        metadata,
                        prevent_deletion: prevent,
                        key_version: vs[0].id,
                        created_at: at,
                        created_by: by.clone(),
                        updated_at: at,
                        updated_by: by,
                    })
                })
                .collect();
            World {
                instance,
                rings,
                keys,
                service_ids,
                api_keys,
                policies,
                adapters,
                kmip_objects,
                token_objects,
                registrations,
            }
        },
    )
}

async fn store_of(w: &World) -> MemoryStore {
    let s = MemoryStore::new();
    let i = w.instance.id;
    s.create_instance(&w.instance).await.unwrap();
    for r in &w.rings {
        s.create_key_ring(i, r).await.unwrap();
    }
    s.restore_keys(&w.keys).await.unwrap();
    for sid in &w.service_ids {
        s.create_service_id(sid).await.unwrap();
    }
    for a in &w.api_keys {
        s.create_api_key(a).await.unwrap();
    }
    s.put_instance_policies(i, &w.policies).await.unwrap();
    for (a, certs) in &w.adapters {
        s.create_kmip_adapter(a, u32::MAX).await.unwrap();
        for c in certs {
            s.add_kmip_certificate(c, u32::MAX).await.unwrap();
        }
    }
    for o in &w.kmip_objects {
        s.write_kmip_objects(std::slice::from_ref(o), &[], u64::MAX)
            .await
            .unwrap();
    }
    for o in &w.token_objects {
        s.put_token_object(o, 0, u64::MAX).await.unwrap();
    }
    for r in &w.registrations {
        s.put_registration(i, r).await.unwrap();
    }
    s
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn an_archive_restores_to_the_same_archive_and_any_changed_byte_is_refused(
        w in world(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let p = AwsLcProvider;
        let now = UnixMillis(1_700_000_000_000);
        let rt = runtime();
        let (archive, sum) = rt.block_on(async {
            export_archive(&store_of(&w).await, &p, None, now, None).await.unwrap()
        });
        prop_assert_eq!(sum.instances, 1);
        prop_assert_eq!(sum.keys, w.keys.len() as u64);
        prop_assert_eq!(sum.kmip_objects, w.kmip_objects.len() as u64);
        prop_assert_eq!(sum.token_objects, w.token_objects.len() as u64);
        let restored = MemoryStore::new();
        let again = rt.block_on(async {
            restore_archive(&restored, &archive, &p, None).await.unwrap();
            export_archive(&restored, &p, None, now, None).await.unwrap().0
        });
        prop_assert!(archive == again, "the restored keystore exports another archive");

        let mut bad = archive.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        prop_assert!(verify_archive(&bad, &p, None).is_err(), "byte {} changed and verified", i);
        let cut = &archive[..i];
        prop_assert!(verify_archive(cut, &p, None).is_err(), "cut at {} and verified", i);
        let empty = MemoryStore::new();
        rt.block_on(async {
            prop_assert!(restore_archive(&empty, &bad, &p, None).await.is_err());
            prop_assert!(empty.list_instances().await.unwrap().is_empty());
            Ok(())
        })?;
    }
}

/// Every byte of a small archive, changed to every other value, and every cut of it, is
/// refused: the trailer line and the newline that ends it are not covered by the checksum,
/// so they are checked byte for byte (a final newline turned into another space once
/// verified).
#[test]
fn every_change_to_a_small_archive_is_refused_including_its_final_newline() {
    let w = World {
        instance: InstanceRecord {
            id: InstanceId(::uuid::Uuid::nil()),
            name: String::new(),
            created_at: UnixMillis(0),
        },
        rings: vec![],
        keys: vec![],
        service_ids: vec![],
        api_keys: vec![],
        policies: vec![],
        adapters: vec![],
        kmip_objects: vec![],
        token_objects: vec![],
        registrations: vec![],
    };
    let p = AwsLcProvider;
    let (archive, _) = runtime().block_on(async {
        export_archive(&store_of(&w).await, &p, None, UnixMillis(0), None)
            .await
            .unwrap()
    });
    assert!(verify_archive(&archive, &p, None).is_ok());
    assert_eq!(archive.last(), Some(&b'\n'));
    for i in 0..archive.len() {
        for flip in 1u8..=255 {
            let mut bad = archive.clone();
            bad[i] ^= flip;
            assert!(
                verify_archive(&bad, &p, None).is_err(),
                "byte {i} of {} xor {flip:#04x} verified",
                archive.len()
            );
        }
        assert!(
            verify_archive(&archive[..i], &p, None).is_err(),
            "cut at {i} verified"
        );
    }
    for extra in [&b"\n"[..], b" ", b"\r\n", b"{}\n"] {
        let longer = [archive.as_slice(), extra].concat();
        assert!(
            verify_archive(&longer, &p, None).is_err(),
            "{extra:?} appended verified"
        );
    }
}

/// An archive with the checksum recomputed after a change, as anyone who can write to the
/// backup store can do: `extra` inserted before the trailer.
fn forged(archive: &[u8], extra: &str, keep_mac: bool) -> Vec<u8> {
    let text = std::str::from_utf8(archive).unwrap();
    let body_end = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let mut trailer: Value = serde_json::from_str(&text[body_end..]).unwrap();
    let body = format!("{}{extra}", &text[..body_end]);
    let records = trailer["records"].as_u64().unwrap() + extra.lines().count() as u64;
    trailer["records"] = json!(records);
    trailer["sha256"] = json!(hex(&AwsLcProvider.sha256(&[body.as_bytes()])));
    if !keep_mac {
        trailer.as_object_mut().unwrap().remove("hmac");
    }
    format!("{body}{trailer}\n").into_bytes()
}

/// With a backup key, an archive that someone changed and re-checksummed (here: an API key
/// with Manager added, which a restore would bring back), or whose code they removed, or
/// that another key wrote, is refused by `verify` and by `restore`, which writes nothing.
/// Without the key the same forgery passes: only the key tells them apart.
#[test]
fn a_backup_key_refuses_forged_archives_that_the_checksum_accepts() {
    let p = AwsLcProvider;
    let key = ArchiveKey::derive(&p, &[0x5a; 32]).unwrap();
    let other = ArchiveKey::derive(&p, &[0x5b; 32]).unwrap();
    assert!(ArchiveKey::derive(&p, &[0x5a; 31]).is_err());
    let rt = runtime();
    let w = {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        world().new_tree(&mut runner).unwrap().current()
    };
    let now = UnixMillis(1_700_000_000_000);
    let (archive, sum) = rt.block_on(async {
        export_archive(&store_of(&w).await, &p, None, now, Some(&key))
            .await
            .unwrap()
    });
    assert_eq!(sum.authenticity, Authenticity::Verified);
    let ok = verify_archive(&archive, &p, Some(&key)).unwrap();
    assert_eq!(ok.authenticity, Authenticity::Verified);
    assert_eq!(
        verify_archive(&archive, &p, None).unwrap().authenticity,
        Authenticity::NotChecked
    );
    let plain = rt.block_on(async {
        export_archive(&store_of(&w).await, &p, None, now, None)
            .await
            .unwrap()
            .0
    });
    assert_eq!(
        verify_archive(&plain, &p, None).unwrap().authenticity,
        Authenticity::Unauthenticated
    );

    let intruder = json!({"type": "api_key", "instance": w.instance.id.to_string(),
        "id": "intruder", "name": "intruder", "roles": 7,
        "secret_hash": STANDARD.encode([0u8; 32]), "created_at": 0})
    .to_string()
        + "\n";
    // Without a key, the forgery restores, intruder included.
    let fooled = MemoryStore::new();
    rt.block_on(async {
        let sum = restore_archive(&fooled, &forged(&archive, &intruder, false), &p, None)
            .await
            .unwrap();
        assert_eq!(sum.authenticity, Authenticity::Unauthenticated);
        let keys = fooled.list_api_keys(w.instance.id).await.unwrap();
        assert!(keys.iter().any(|k| k.id == "intruder"));
    });
    let cases = [
        ("an API key added", forged(&archive, &intruder, true)),
        ("the code removed", forged(&archive, "", false)),
        (
            "an API key added and the code removed",
            forged(&archive, &intruder, false),
        ),
        ("written without the key", plain.clone()),
    ];
    for (what, bad) in &cases {
        assert!(
            verify_archive(bad, &p, None).is_ok(),
            "{what}: the checksum alone"
        );
        let e = verify_archive(bad, &p, Some(&key)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadBody, "{what}");
        let empty = MemoryStore::new();
        rt.block_on(async {
            assert!(restore_archive(&empty, bad, &p, Some(&key)).await.is_err());
            assert!(empty.list_instances().await.unwrap().is_empty(), "{what}");
        });
    }
    assert!(verify_archive(&archive, &p, Some(&other))
        .unwrap_err()
        .message
        .contains("another key"));
    // The genuine archive restores with its key.
    let restored = MemoryStore::new();
    let sum = rt
        .block_on(restore_archive(&restored, &archive, &p, Some(&key)))
        .unwrap();
    assert_eq!(sum.authenticity, Authenticity::Verified);
    assert_eq!(sum.instances, 1);
}
