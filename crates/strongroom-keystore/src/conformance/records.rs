//! Cases on instances, keys, versions, concurrency, blobs, usage, deletion, API keys and
//! the audit chain.

use std::sync::Arc;

use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, Role, Roles, UnixMillis, VersionId};

use super::*;

/// Instances can be created, read and listed; duplicates are refused.
pub async fn instances_round_trip(s: Arc<dyn KeyStore>) {
    let i = instance("a");
    s.create_instance(&i).await.unwrap();
    assert_eq!(s.get_instance(i.id).await.unwrap(), i);
    assert!(matches!(
        s.create_instance(&i).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let same_name = InstanceRecord {
        id: InstanceId::random(),
        ..i.clone()
    };
    assert!(matches!(
        s.create_instance(&same_name).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(s.list_instances().await.unwrap().contains(&i));
    assert!(matches!(
        s.get_instance(InstanceId::random()).await,
        Err(StoreError::NotFound)
    ));
    s.ping().await.unwrap();
}

/// Nothing of one instance is visible from another.
pub async fn instance_isolation(s: Arc<dyn KeyStore>) {
    let a = new_instance(s.as_ref()).await;
    let b = new_instance(s.as_ref()).await;
    let (mut k, v) = key(a, "k");
    k.aliases = vec!["shared-name".into()];
    s.create_key(&k, &v).await.unwrap();
    assert!(matches!(
        s.get_key(b, k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.key_versions(b, k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.key_id_by_alias(b, "shared-name").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.count_keys(b, &KeyFilter::default()).await.unwrap(), 0);
    assert!(s
        .list_keys(
            b,
            &KeyFilter::default(),
            Page {
                limit: 10,
                offset: 0
            }
        )
        .await
        .unwrap()
        .is_empty());
    // The same alias may exist in another instance.
    let (mut k2, v2) = key(b, "k2");
    k2.aliases = vec!["shared-name".into()];
    s.create_key(&k2, &v2).await.unwrap();
    let mut wrong = k.clone();
    wrong.instance = b;
    assert!(matches!(
        s.update_key(&wrong).await,
        Err(StoreError::NotFound | StoreError::Conflict)
    ));
    assert!(s.purge_key(b, k.id, k.row_version).await.is_err());
    assert_eq!(s.get_key(a, k.id).await.unwrap(), k);
}

/// Keys round-trip exactly.
pub async fn key_create_get_list_count(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut k, v) = key(i, "named");
    k.aliases = vec!["one".into(), "two".into()];
    k.expiration = Some(t(99));
    s.create_key(&k, &v).await.unwrap();
    assert_eq!(s.get_key(i, k.id).await.unwrap(), k);
    assert_eq!(s.key_versions(i, k.id).await.unwrap(), vec![v.clone()]);
    assert_eq!(s.key_id_by_alias(i, "two").await.unwrap(), k.id);
    assert!(matches!(
        s.create_key(&k, &v).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(s.count_keys(i, &KeyFilter::default()).await.unwrap(), 1);
    let listed = s
        .list_keys(
            i,
            &KeyFilter::default(),
            Page {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed, vec![k]);
}

/// An alias taken in an instance refuses the whole key; nothing is written.
pub async fn aliases_are_unique_per_instance(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut a, va) = key(i, "a");
    a.aliases = vec!["taken".into()];
    s.create_key(&a, &va).await.unwrap();
    let (mut b, vb) = key(i, "b");
    b.aliases = vec!["fresh".into(), "taken".into()];
    assert!(matches!(
        s.create_key(&b, &vb).await,
        Err(StoreError::AlreadyExists(Unique::Alias))
    ));
    assert!(matches!(
        s.get_key(i, b.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.key_id_by_alias(i, "fresh").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.count_keys(i, &KeyFilter::default()).await.unwrap(), 1);
}

/// Two writers that read the same row_version: exactly one wins.
pub async fn optimistic_concurrency_one_winner(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (k, v) = key(i, "k");
    s.create_key(&k, &v).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..8u32 {
        let s = Arc::clone(&s);
        let mut k = k.clone();
        tasks.push(tokio::spawn(async move {
            let nv = KeyVersionRecord {
                id: VersionId::random(),
                seq: 1,
                created_at: t(10),
                blob: vec![n as u8],
            };
            k.current_version = nv.id;
            k.version_count = 2;
            k.last_rotated_at = Some(t(10));
            s.add_key_version(&k, &nv).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(rv) => {
                assert_eq!(rv, k.row_version + 1);
                wins += 1;
            }
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(s.key_versions(i, k.id).await.unwrap().len(), 2);
    let now = s.get_key(i, k.id).await.unwrap();
    assert_eq!(now.row_version, k.row_version + 1);
    let mut stale = k.clone();
    stale.state = KeyState::Suspended;
    assert!(matches!(
        s.update_key(&stale).await,
        Err(StoreError::Conflict)
    ));
    let mut fresh = now.clone();
    fresh.state = KeyState::Suspended;
    assert_eq!(s.update_key(&fresh).await.unwrap(), now.row_version + 1);
    assert_eq!(s.get_key(i, k.id).await.unwrap().state, KeyState::Suspended);
}

/// Versions come back newest first with their blobs intact.
pub async fn versions_newest_first(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut k, v) = key(i, "k");
    s.create_key(&k, &v).await.unwrap();
    let mut ids = vec![v.id];
    for n in 1..5u32 {
        let nv = KeyVersionRecord {
            id: VersionId::random(),
            seq: n,
            created_at: t(i64::from(n) * 10),
            blob: vec![n as u8; 70],
        };
        k.current_version = nv.id;
        k.version_count = n + 1;
        k.row_version = s.add_key_version(&k, &nv).await.unwrap();
        ids.push(nv.id);
    }
    let got = s.key_versions(i, k.id).await.unwrap();
    ids.reverse();
    assert_eq!(got.iter().map(|v| v.id).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].blob, vec![4u8; 70]);
    assert_eq!(s.get_key(i, k.id).await.unwrap().version_count, 5);
}

/// Master key rotation: versions are found by the master key id stamped in their blob,
/// paged by (key, seq), and replaced only if unchanged (compare-and-swap).
pub async fn blobs_rewrap_by_master_key(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let other = new_instance(s.as_ref()).await;
    let stamped = |mk: u8, fill: u8| {
        let mut b = vec![1u8];
        b.extend_from_slice(&[mk; 16]);
        b.extend_from_slice(&[fill; 60]);
        b
    };
    let mut keys = Vec::new();
    for n in 0..5u8 {
        let (mut k, mut v) = key(i, &format!("k{n}"));
        v.blob = stamped(0xAA, n);
        s.create_key(&k, &v).await.unwrap();
        let nv = KeyVersionRecord {
            id: VersionId::random(),
            seq: 1,
            created_at: t(5),
            blob: stamped(if n == 0 { 0xBB } else { 0xAA }, n + 100),
        };
        k.current_version = nv.id;
        k.version_count = 2;
        s.add_key_version(&k, &nv).await.unwrap();
        keys.push(k.id);
    }
    let (ok, mut ov) = key(other, "o");
    ov.blob = stamped(0xAA, 9);
    s.create_key(&ok, &ov).await.unwrap();
    keys.sort();
    assert_eq!(s.count_versions_not_under(i, &[0xBB; 16]).await.unwrap(), 9);
    assert_eq!(s.count_versions_not_under(i, &[0xAA; 16]).await.unwrap(), 1);
    // Paging in (key, seq) order.
    let first = s.versions_not_under(i, &[0xBB; 16], None, 4).await.unwrap();
    assert_eq!(first.len(), 4);
    let last = first.last().map(|v| (v.key, v.seq)).unwrap();
    let rest = s
        .versions_not_under(i, &[0xBB; 16], Some(last), 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 5);
    let all: Vec<(KeyId, u32)> = first
        .iter()
        .chain(rest.iter())
        .map(|v| (v.key, v.seq))
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert!(first
        .iter()
        .chain(rest.iter())
        .all(|v| v.blob[1..17] == [0xAA; 16]));
    assert!(first
        .iter()
        .all(|v| v.kind == KeyKind::Root || v.kind == KeyKind::Standard));
    // Compare-and-swap: a stale expected value is left alone.
    let mut updates: Vec<BlobUpdate> = first
        .iter()
        .chain(rest.iter())
        .map(|v| BlobUpdate {
            key: v.key,
            seq: v.seq,
            old: v.blob.clone(),
            new: stamped(0xBB, v.blob[20]),
        })
        .collect();
    updates[0].old = stamped(0xCC, 0);
    assert_eq!(s.replace_blobs(i, &updates).await.unwrap(), 8);
    assert_eq!(s.count_versions_not_under(i, &[0xBB; 16]).await.unwrap(), 1);
    assert_eq!(s.replace_blobs(i, &updates).await.unwrap(), 0, "idempotent");
    // The other instance is untouched.
    assert_eq!(
        s.count_versions_not_under(other, &[0xAA; 16])
            .await
            .unwrap(),
        0
    );
    let versions = s.key_versions(i, keys[1]).await.unwrap();
    assert!(versions
        .iter()
        .all(|v| v.blob[1..17] == [0xBB; 16] || v.blob == updates[0].old));
}

/// Metering per crypto unit: counts add up per (instance, month, unit).
pub async fn unit_usage_adds_up(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let other = new_instance(s.as_ref()).await;
    let (u1, u2) = (
        strongroom_model::UnitId::random(),
        strongroom_model::UnitId::random(),
    );
    let usage = |instance, unit, month: &str, calls| UnitUsage {
        instance,
        unit,
        month: month.into(),
        calls,
    };
    s.add_unit_usage(&[
        usage(i, u1, "2026-11", 5),
        usage(i, u2, "2026-11", 2),
        usage(other, u1, "2026-11", 9),
    ])
    .await
    .unwrap();
    s.add_unit_usage(&[usage(i, u1, "2026-11", 3), usage(i, u1, "2026-12", 1)])
        .await
        .unwrap();
    s.add_unit_usage(&[]).await.unwrap();
    let mut got = s.unit_usage(i, "2026-11").await.unwrap();
    got.sort_by_key(|u| u.calls);
    assert_eq!(
        got,
        vec![usage(i, u2, "2026-11", 2), usage(i, u1, "2026-11", 8)]
    );
    assert_eq!(
        s.unit_usage(i, "2026-12").await.unwrap(),
        vec![usage(i, u1, "2026-12", 1)]
    );
    assert!(s.unit_usage(i, "2026-10").await.unwrap().is_empty());
}

/// Deleting an instance is refused while it holds keys; forced, it erases everything.
pub async fn delete_instance_rules(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (k, v) = key(i, "k");
    s.create_key(&k, &v).await.unwrap();
    s.create_api_key(&api_key(i, "x")).await.unwrap();
    let policy = InstancePolicyRecord {
        policy_type: "allowedIP".into(),
        enabled: true,
        attributes: r#"{"allowed_ip":["10.0.0.0/8"]}"#.into(),
        created_at: t(1),
        created_by: "a".into(),
        updated_at: t(1),
        updated_by: "a".into(),
    };
    s.put_instance_policies(i, &[policy]).await.unwrap();
    assert!(matches!(
        s.delete_instance(i, false, UnixMillis(5)).await,
        Err(StoreError::InstanceNotEmpty(1))
    ));
    assert!(s.get_instance(i).await.is_ok());
    assert!(
        !s.instance_deleted(i).await.unwrap(),
        "refused: no tombstone"
    );
    s.delete_instance(i, true, UnixMillis(5)).await.unwrap();
    assert!(
        s.instance_deleted(i).await.unwrap(),
        "a deleted instance leaves a tombstone"
    );
    assert!(matches!(s.get_instance(i).await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.get_key(i, k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_api_key(&format!("x-{i}")).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.list_instance_policies(i).await.unwrap().is_empty(),
        "instance policies go with the instance"
    );
    let empty = new_instance(s.as_ref()).await;
    s.delete_instance(empty, false, UnixMillis(6))
        .await
        .unwrap();
    assert!(s.instance_deleted(empty).await.unwrap());
    assert!(matches!(
        s.delete_instance(empty, false, UnixMillis(7)).await,
        Err(StoreError::NotFound)
    ));
}

/// Purge erases a key, its versions and aliases; a stale row_version is refused.
pub async fn purge_erases_everything(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut k, v) = key(i, "k");
    k.aliases = vec!["gone-soon".into()];
    s.create_key(&k, &v).await.unwrap();
    assert!(matches!(
        s.purge_key(i, k.id, k.row_version + 7).await,
        Err(StoreError::Conflict)
    ));
    s.purge_key(i, k.id, k.row_version).await.unwrap();
    assert!(matches!(
        s.get_key(i, k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.key_versions(i, k.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.key_id_by_alias(i, "gone-soon").await,
        Err(StoreError::NotFound)
    ));
    let (mut k2, v2) = key(i, "k2");
    k2.aliases = vec!["gone-soon".into()];
    s.create_key(&k2, &v2).await.unwrap();
}

/// An API key record of `instance` whose id starts with `id`.
pub fn api_key(instance: InstanceId, id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: format!("{id}-{instance}"),
        instance,
        name: "ci".into(),
        roles: Roles::of(&[Role::Writer, Role::KeyPurge]),
        secret_hash: [9; 32],
        created_at: t(5),
        service_id: None,
        key_rings: Some(vec!["payments".into(), "ops-2".into()]),
    }
}

/// Placements of crypto units round-trip per instance, and their regions are listed once.
pub async fn placements_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let place =
        |n: i64, recovery: bool, zone: Option<&str>, region: Option<&str>| PlacementRecord {
            unit: strongroom_model::UnitId::random(),
            instance: i,
            recovery,
            zone: zone.map(String::from),
            region: region.map(String::from),
            created_at: t(n),
        };
    let a = place(1, false, Some("zone-a"), Some("eu-1"));
    let b = place(2, true, None, None);
    let c = place(3, true, Some("zone-d"), Some("us-2"));
    for p in [&a, &b, &c] {
        s.put_placement(p).await.unwrap();
    }
    // Placing a unit again records where it runs now, keeping when it was made.
    let moved = PlacementRecord {
        zone: Some("zone-b".into()),
        created_at: t(99),
        ..a.clone()
    };
    s.put_placement(&moved).await.unwrap();
    let a = PlacementRecord {
        zone: Some("zone-b".into()),
        ..a
    };
    assert_eq!(
        s.list_placements(i).await.unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    let regions = s.placement_regions().await.unwrap();
    assert!(regions.contains(&"eu-1".to_string()) && regions.contains(&"us-2".to_string()));
    assert_eq!(
        regions.iter().filter(|r| *r == "eu-1").count(),
        1,
        "{regions:?}"
    );
    assert!(s
        .list_placements(InstanceId::random())
        .await
        .unwrap()
        .is_empty());
    // They go with their instance.
    s.delete_instance(i, false, t(9)).await.unwrap();
    assert!(s.list_placements(i).await.unwrap().is_empty());
}

/// Service IDs round-trip with their key rings; their API keys are added only while they
/// exist and go with them.
pub async fn service_ids_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let mut sid = ServiceIdRecord {
        id: format!("ServiceId-{i}"),
        instance: i,
        name: "batch job".into(),
        roles: Roles::of(&[Role::Writer]),
        key_rings: None,
        created_at: t(6),
    };
    s.create_service_id(&sid).await.unwrap();
    assert!(matches!(
        s.create_service_id(&sid).await,
        Err(StoreError::AlreadyExists(Unique::ServiceId))
    ));
    assert_eq!(s.get_service_id(i, &sid.id).await.unwrap(), sid);
    sid.roles = Roles::of(&[Role::Reader]);
    sid.key_rings = Some(vec!["payments".into()]);
    s.update_service_id(&sid).await.unwrap();
    assert_eq!(s.list_service_ids(i).await.unwrap(), vec![sid.clone()]);
    // Two API keys of the service ID, and one of its own.
    let of_sid = |n: &str| ApiKeyRecord {
        service_id: Some(sid.id.clone()),
        key_rings: None,
        roles: Roles(0),
        ..api_key(i, n)
    };
    let (k1, k2, own) = (of_sid("s1"), of_sid("s2"), api_key(i, "own"));
    for k in [&k1, &k2, &own] {
        s.create_api_key(k).await.unwrap();
    }
    assert_eq!(s.get_api_key(&k2.id).await.unwrap(), k2);
    // No key for a service ID that does not exist, or of another instance.
    let stray = ApiKeyRecord {
        service_id: Some("ServiceId-none".into()),
        ..api_key(i, "stray")
    };
    assert!(matches!(
        s.create_api_key(&stray).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_api_key(&stray.id).await,
        Err(StoreError::NotFound)
    ));
    let other = new_instance(s.as_ref()).await;
    assert!(matches!(
        s.get_service_id(other, &sid.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_service_id(other, &sid.id).await,
        Err(StoreError::NotFound)
    ));
    s.delete_service_id(i, &sid.id).await.unwrap();
    assert!(matches!(
        s.get_api_key(&k1.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_api_key(&k2.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.get_api_key(&own.id).await.unwrap(), own);
    assert!(s.list_service_ids(i).await.unwrap().is_empty());
    assert!(matches!(
        s.update_service_id(&sid).await,
        Err(StoreError::NotFound)
    ));
}

/// API keys round-trip; ids are unique.
pub async fn api_keys_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let a = api_key(i, "a");
    s.create_api_key(&a).await.unwrap();
    assert!(matches!(
        s.create_api_key(&a).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(s.get_api_key(&a.id).await.unwrap(), a);
    assert_eq!(s.list_api_keys(i).await.unwrap(), vec![a.clone()]);
    assert!(matches!(
        s.delete_api_key(InstanceId::random(), &a.id).await,
        Err(StoreError::NotFound)
    ));
    s.delete_api_key(i, &a.id).await.unwrap();
    assert!(matches!(
        s.get_api_key(&a.id).await,
        Err(StoreError::NotFound)
    ));
}

/// Audit records append in sequence and read back exactly; gaps and replays are refused.
pub async fn audit_chain_append_and_read(s: Arc<dyn KeyStore>) {
    let start = s.audit_head().await.unwrap().map_or(0, |(seq, _)| seq);
    // Every field differs from row to row, and some rows name no instance or no key, so a
    // column or a row out of place reads back differently.
    let rec = |seq: i64| AuditRecord {
        seq,
        at: t(seq),
        instance: (seq % 3 != 0).then(InstanceId::random),
        principal: format!("p{seq}"),
        action: "kms.secrets.wrap".into(),
        key: (seq % 4 != 0).then(|| format!("k{seq}")),
        outcome: if seq % 2 == 0 { "success" } else { "not_found" }.into(),
        status: if seq % 2 == 0 { 200 } else { 404 },
        correlation_id: format!("c{seq}"),
        prev_hash: [seq as u8; 32],
        hash: [(seq + 1) as u8; 32],
    };
    let batch: Vec<_> = (start + 1..=start + 3).map(rec).collect();
    s.append_audit(&batch).await.unwrap();
    assert_eq!(
        s.audit_head().await.unwrap(),
        Some((start + 3, batch[2].hash))
    );
    assert!(matches!(
        s.append_audit(&[rec(start + 2)]).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.append_audit(&[rec(start + 5)]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.read_audit(start + 1, 10).await.unwrap(), batch);
    assert_eq!(
        s.read_audit(start + 2, 1).await.unwrap(),
        vec![batch[1].clone()]
    );
    // Every batch size on both sides of the sizes a backend keeps prepared, each twice, and
    // a refused replay of a kept size between them: a statement taken from the cache binds
    // its rows afresh, and a refusal leaves it usable.
    let mut next = start + 4;
    for size in (1..=70).chain(1..=70) {
        let batch: Vec<_> = (next..next + size).map(rec).collect();
        s.append_audit(&batch).await.unwrap();
        assert_eq!(s.read_audit(next, 100).await.unwrap(), batch, "{size} rows");
        if size == 5 {
            assert!(matches!(
                s.append_audit(&batch).await,
                Err(StoreError::Conflict)
            ));
        }
        next += size;
    }
    assert_eq!(
        s.audit_head().await.unwrap().map(|(seq, _)| seq),
        Some(next - 1)
    );
    // A batch with a gap inside is refused whole: its first rows do not land either.
    let gapped: Vec<_> = (next..next + 3)
        .chain(next + 4..next + 6)
        .map(rec)
        .collect();
    assert!(matches!(
        s.append_audit(&gapped).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        s.audit_head().await.unwrap().map(|(seq, _)| seq),
        Some(next - 1)
    );
    assert!(s.read_audit(next, 10).await.unwrap().is_empty());
}

/// The database's own guard of the audit chain, for a backend's test that writes around the
/// store (the store checks a batch before it sends it, so the cases above never reach that
/// guard). `run` executes a statement directly and tells how the database refused it
/// (`None`: it ran); `blob` is the backend's expression for a 32-byte hash; `refusals` are
/// texts that the refusal of an out-of-sequence row, of a taken number and of a change to a
/// record contain. A refused statement leaves nothing behind.
pub async fn audit_guard(
    s: Arc<dyn KeyStore>,
    blob: &str,
    run: impl AsyncFn(String) -> Option<String>,
    refusals: [&str; 3],
) {
    let insert = |seqs: &[i64]| {
        let rows: Vec<String> = seqs
            .iter()
            .map(|n| format!("({n}, 0, NULL, 'p', 'a', NULL, 'success', 200, 'c', {blob}, {blob})"))
            .collect();
        format!(
            "INSERT INTO audit (seq, at, instance_id, principal, action, key, outcome, \
             status, correlation_id, prev_hash, hash) VALUES {}",
            rows.join(", ")
        )
    };
    let stored = async || s.read_audit(1, 100).await.unwrap().len();
    assert_eq!(run(insert(&[1, 2, 3])).await, None);
    let [out_of_sequence, taken, changed] = refusals;
    let refused = [
        (
            insert(&[4, 5, 7]),
            out_of_sequence,
            "a gap inside the statement",
        ),
        (
            insert(&[5, 6]),
            out_of_sequence,
            "a gap after the newest record",
        ),
        (insert(&[0]), out_of_sequence, "a number before the first"),
        (insert(&[3, 4]), taken, "a taken number"),
        (
            "UPDATE audit SET outcome = 'x' WHERE seq = 2".into(),
            changed,
            "an update",
        ),
        (
            "DELETE FROM audit WHERE seq = 3".into(),
            changed,
            "a deletion",
        ),
    ];
    for (sql, want, what) in refused {
        let got = run(sql).await;
        assert!(
            got.as_deref().is_some_and(|g| g.contains(want)),
            "{what}: {got:?}"
        );
        assert_eq!(stored().await, 3, "{what}: nothing lands");
    }
    assert_eq!(run(insert(&[4, 5, 6])).await, None);
    assert_eq!(stored().await, 6);
}

/// An instance's audit records read back by filter: only that instance's, in order, from a
/// cursor, by time window, action, outcome, failures and key.
pub async fn instance_audit_filters(s: Arc<dyn KeyStore>) {
    let start = s.audit_head().await.unwrap().map_or(0, |(seq, _)| seq);
    let (a, b) = (InstanceId::random(), InstanceId::random());
    let rec = |n: i64, instance: InstanceId, action: &str, outcome: &str, key: &str| AuditRecord {
        seq: start + n,
        at: t(n * 1000),
        instance: Some(instance),
        principal: "p".into(),
        action: action.into(),
        key: Some(key.into()),
        outcome: outcome.into(),
        status: if outcome == "success" { 200 } else { 404 },
        correlation_id: "c".into(),
        prev_hash: [n as u8; 32],
        hash: [(n + 1) as u8; 32],
    };
    let all = vec![
        rec(1, a, "kms.secrets.wrap", "success", "k1"),
        rec(2, b, "kms.secrets.wrap", "success", "k1"),
        rec(3, a, "kms.secrets.unwrap", "key_not_found", "k2"),
        rec(4, a, "kms.secrets.wrap", "success", "k2"),
        rec(5, a, "kms.secrets.read", "forbidden", "k1"),
    ];
    s.append_audit(&all).await.unwrap();
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            after: start,
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let seqs = |v: Vec<AuditRecord>| v.iter().map(|r| r.seq - start).collect::<Vec<_>>();
    let read = |q: AuditQuery, i: InstanceId| {
        let s = Arc::clone(&s);
        async move { seqs(s.read_instance_audit(i, &q).await.unwrap()) }
    };
    assert_eq!(read(q(|_| {}), a).await, vec![1, 3, 4, 5]);
    assert_eq!(
        read(q(|_| {}), b).await,
        vec![2],
        "never another instance's"
    );
    assert_eq!(read(q(|q| q.limit = 2), a).await, vec![1, 3]);
    let mut cursor = q(|_| {});
    cursor.after = start + 3;
    assert_eq!(read(cursor, a).await, vec![4, 5]);
    assert_eq!(
        read(
            q(|q| {
                q.from = Some(t(3000));
                q.to = Some(t(5000));
            }),
            a
        )
        .await,
        vec![3, 4]
    );
    assert_eq!(
        read(q(|q| q.action = Some("kms.secrets.wrap".into())), a).await,
        vec![1, 4]
    );
    assert_eq!(
        read(q(|q| q.outcome = Some("forbidden".into())), a).await,
        vec![5]
    );
    assert_eq!(read(q(|q| q.failures = true), a).await, vec![3, 5]);
    assert_eq!(read(q(|q| q.key = Some("k2".into())), a).await, vec![3, 4]);
}

/// A caller that goes away in the middle of a write (its future dropped at any await, as a
/// request is when its client disconnects) leaves the store as usable as before, and every
/// write it acknowledged is there.
pub async fn dropped_writes_leave_the_store_usable(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let mut acked = Vec::new();
    let mut cut = 0;
    for n in 0..400u64 {
        let (k, v) = key(i, &format!("k{n}"));
        let within = std::time::Duration::from_micros(n % 80 * 20);
        match tokio::time::timeout(within, s.create_key(&k, &v)).await {
            Ok(r) => {
                r.unwrap();
                acked.push(k.id);
            }
            Err(_) => cut += 1,
        }
    }
    // The in-memory store finishes every write at its first poll: nothing to cut there.
    assert!(
        cut > 0 || s.backend() == "memory",
        "no write was cut off ({})",
        s.backend()
    );
    let (k, v) = key(i, "after");
    s.create_key(&k, &v).await.unwrap();
    acked.push(k.id);
    for id in acked {
        s.get_key(i, id).await.unwrap();
    }
}
