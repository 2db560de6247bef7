//! The conformance suite every [`KeyStore`] backend must pass. A backend's tests invoke
//! [`conformance_tests!`](crate::conformance_tests) with an async factory of fresh stores;
//! the macro expands to one test per case below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, Role, Roles, UnixMillis, VersionId};

use crate::*;

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an async expression
/// returning a fresh `Arc<dyn KeyStore>` each time it is evaluated.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@case $factory,
            instances_round_trip, instance_isolation, key_create_get_list_count,
            aliases_are_unique_per_instance, optimistic_concurrency_one_winner,
            versions_newest_first, delete_instance_rules, purge_erases_everything,
            api_keys_round_trip, audit_chain_append_and_read, list_filters_and_pages,
            aliases_add_and_remove, key_rings_rules, policies_round_trip, import_tokens_round_trip, instance_policies_round_trip, registrations_round_trip, job_leases, restore_keeps_everything, key_quota_is_atomic, blobs_rewrap_by_master_key, unit_usage_adds_up, deleted_keys_are_found_for_purging);
    };
    (@case $factory:expr, $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $factory.await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

fn t(ms: i64) -> UnixMillis {
    UnixMillis(1_700_000_000_000 + ms)
}

/// A fresh instance record.
pub fn instance(name: &str) -> InstanceRecord {
    InstanceRecord {
        id: InstanceId::random(),
        name: format!("{name}-{}", InstanceId::random()),
        created_at: t(0),
    }
}

/// A fresh active root key record of `instance` and its first version.
pub fn key(instance: InstanceId, name: &str) -> (KeyRecord, KeyVersionRecord) {
    let id = KeyId::random();
    let v = VersionId::from(id);
    (
        KeyRecord {
            instance,
            id,
            name: name.to_string(),
            description: Some("d".into()),
            aliases: vec![],
            kind: KeyKind::Root,
            imported: false,
            bits: 256,
            state: KeyState::Active,
            key_ring: "default".into(),
            created_at: t(1),
            created_by: "tester".into(),
            updated_at: t(1),
            state_changed_at: t(1),
            expiration: None,
            last_rotated_at: None,
            deleted_at: None,
            deleted_by: None,
            current_version: v,
            current_version_at: t(1),
            version_count: 1,
            row_version: 1,
            rotation: None,
            dual_auth: None,
            deletion_auth: None,
        },
        KeyVersionRecord {
            id: v,
            seq: 0,
            created_at: t(1),
            blob: vec![1, 2, 3, 4],
        },
    )
}

async fn new_instance(s: &dyn KeyStore) -> InstanceId {
    let i = instance("conf");
    s.create_instance(&i).await.expect("create instance");
    i.id
}

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

fn api_key(instance: InstanceId, id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: format!("{id}-{instance}"),
        instance,
        name: "ci".into(),
        roles: Roles::of(&[Role::Writer, Role::KeyPurge]),
        secret_hash: [9; 32],
        created_at: t(5),
    }
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
    let rec = |seq: i64| AuditRecord {
        seq,
        at: t(seq),
        instance: Some(InstanceId::random()),
        principal: "p".into(),
        action: "kms.secrets.wrap".into(),
        key: Some("k".into()),
        outcome: "success".into(),
        status: 200,
        correlation_id: "c".into(),
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
}

/// Filters by state, extractable and ring; pages by offset and limit in id order.
pub async fn list_filters_and_pages(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let mut all = Vec::new();
    for n in 0..10 {
        let (mut k, v) = key(i, &format!("k{n}"));
        if n % 2 == 0 {
            k.kind = KeyKind::Standard;
        }
        if n % 5 == 0 {
            k.state = KeyState::Destroyed;
        }
        if n == 3 {
            k.key_ring = "ring-a".into();
        }
        s.create_key(&k, &v).await.unwrap();
        all.push(k);
    }
    all.sort_by_key(|k| k.id.to_string());
    let f = |states: Vec<KeyState>, extractable: Option<bool>, ring: Option<&str>| KeyFilter {
        states,
        extractable,
        key_ring: ring.map(String::from),
    };
    assert_eq!(
        s.count_keys(i, &f(vec![KeyState::Destroyed], None, None))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.count_keys(i, &f(vec![], Some(true), None)).await.unwrap(),
        5
    );
    assert_eq!(
        s.count_keys(i, &f(vec![KeyState::Active], Some(false), None))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        s.count_keys(i, &f(vec![], None, Some("ring-a")))
            .await
            .unwrap(),
        1
    );
    let page = s
        .list_keys(
            i,
            &KeyFilter::default(),
            Page {
                limit: 4,
                offset: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(page, all[3..7].to_vec());
    let tail = s
        .list_keys(
            i,
            &KeyFilter::default(),
            Page {
                limit: 100,
                offset: 8,
            },
        )
        .await
        .unwrap();
    assert_eq!(tail.len(), 2);
}

/// Aliases can be added and removed; a taken alias refuses the change; stale writes fail.
pub async fn aliases_add_and_remove(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut a, va) = key(i, "a");
    a.aliases = vec!["first".into()];
    s.create_key(&a, &va).await.unwrap();
    let (b, vb) = key(i, "b");
    s.create_key(&b, &vb).await.unwrap();
    let mut a2 = a.clone();
    a2.aliases.push("second".into());
    a2.row_version = s.add_alias(&a2, "second").await.unwrap();
    assert_eq!(s.key_id_by_alias(i, "second").await.unwrap(), a.id);
    assert_eq!(
        s.get_key(i, a.id).await.unwrap().aliases,
        vec!["first".to_string(), "second".to_string()]
    );
    let mut b2 = b.clone();
    b2.aliases.push("second".into());
    assert!(matches!(
        s.add_alias(&b2, "second").await,
        Err(StoreError::AlreadyExists(Unique::Alias))
    ));
    assert!(
        s.get_key(i, b.id).await.unwrap().aliases.is_empty(),
        "nothing written"
    );
    let mut stale = a.clone();
    stale.aliases.push("third".into());
    assert!(matches!(
        s.add_alias(&stale, "third").await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.key_id_by_alias(i, "third").await,
        Err(StoreError::NotFound)
    ));
    let mut a3 = a2.clone();
    a3.aliases.retain(|x| x != "first");
    s.remove_alias(&a3, "first").await.unwrap();
    assert!(matches!(
        s.key_id_by_alias(i, "first").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.get_key(i, a.id).await.unwrap().aliases,
        vec!["second".to_string()]
    );
}

/// Rings: unique per instance; deletion refused while keys remain; force moves destroyed keys.
pub async fn key_rings_rules(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let ring = KeyRingRecord {
        id: "ring-a".into(),
        created_at: t(3),
        created_by: "me".into(),
    };
    s.create_key_ring(i, &ring).await.unwrap();
    assert!(matches!(
        s.create_key_ring(i, &ring).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let other = new_instance(s.as_ref()).await;
    s.create_key_ring(other, &ring).await.unwrap();
    assert_eq!(s.list_key_rings(i).await.unwrap(), vec![ring.clone()]);
    let (mut k, v) = key(i, "k");
    k.key_ring = "ring-a".into();
    s.create_key(&k, &v).await.unwrap();
    assert!(matches!(
        s.delete_key_ring(i, "ring-a", false).await,
        Err(StoreError::RingNotEmpty(1))
    ));
    assert!(matches!(
        s.delete_key_ring(i, "ring-a", true).await,
        Err(StoreError::RingNotEmpty(1))
    ));
    k.state = KeyState::Destroyed;
    k.row_version = s.update_key(&k).await.unwrap();
    assert!(matches!(
        s.delete_key_ring(i, "ring-a", false).await,
        Err(StoreError::RingNotEmpty(1))
    ));
    s.delete_key_ring(i, "ring-a", true).await.unwrap();
    assert_eq!(s.get_key(i, k.id).await.unwrap().key_ring, "default");
    assert!(s.list_key_rings(i).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_key_ring(i, "ring-a", false).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.list_key_rings(other).await.unwrap().len(),
        1,
        "other instances keep theirs"
    );
}

/// Policies and deletion authorizations round-trip; the scheduler query finds enabled ones.
pub async fn policies_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut k, v) = key(i, "k");
    k.rotation = Some(RotationPolicy {
        enabled: true,
        interval_month: 3,
        updated_at: t(5),
        updated_by: "p".into(),
    });
    k.dual_auth = Some(DualAuthPolicy {
        enabled: true,
        updated_at: t(6),
        updated_by: "q".into(),
    });
    s.create_key(&k, &v).await.unwrap();
    assert_eq!(s.get_key(i, k.id).await.unwrap(), k);
    k.deletion_auth = Some(DeletionAuthorization {
        by: "r".into(),
        at: t(7),
    });
    k.row_version = s.update_key(&k).await.unwrap();
    assert_eq!(s.get_key(i, k.id).await.unwrap(), k);
    let (plain, pv) = key(i, "plain");
    s.create_key(&plain, &pv).await.unwrap();
    let due = s.keys_with_rotation_policy().await.unwrap();
    assert!(due.iter().any(|d| d.id == k.id));
    assert!(!due.iter().any(|d| d.id == plain.id));
    k.rotation = Some(RotationPolicy {
        enabled: false,
        interval_month: 3,
        updated_at: t(8),
        updated_by: "p".into(),
    });
    s.update_key(&k).await.unwrap();
    assert!(!s
        .keys_with_rotation_policy()
        .await
        .unwrap()
        .iter()
        .any(|d| d.id == k.id));
}

/// One import token per instance; retrievals count down and stop at zero.
pub async fn import_tokens_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    assert!(matches!(
        s.get_import_token(i).await,
        Err(StoreError::NotFound)
    ));
    let tok = ImportTokenRecord {
        id: KeyId::random(),
        created_at: t(1),
        expires_at: t(600_000),
        max_retrievals: 2,
        remaining: 2,
        public_key: vec![1, 2],
        private_blob: vec![3, 4],
        nonce: vec![5; 12],
    };
    s.put_import_token(i, &tok).await.unwrap();
    assert_eq!(s.get_import_token(i).await.unwrap(), tok);
    assert_eq!(s.take_import_token_retrieval(i, tok.id).await.unwrap(), 1);
    assert_eq!(s.take_import_token_retrieval(i, tok.id).await.unwrap(), 0);
    assert!(matches!(
        s.take_import_token_retrieval(i, tok.id).await,
        Err(StoreError::Conflict)
    ));
    let newer = ImportTokenRecord {
        id: KeyId::random(),
        remaining: 1,
        ..tok.clone()
    };
    s.put_import_token(i, &newer).await.unwrap();
    assert!(
        matches!(
            s.take_import_token_retrieval(i, tok.id).await,
            Err(StoreError::Conflict)
        ),
        "replaced token"
    );
    assert_eq!(s.get_import_token(i).await.unwrap().id, newer.id);
    let other = new_instance(s.as_ref()).await;
    assert!(matches!(
        s.get_import_token(other).await,
        Err(StoreError::NotFound)
    ));
}

/// Instance policies are stored per type and instance, replaced in place.
pub async fn instance_policies_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let p = |ty: &str, enabled: bool, attrs: &str| InstancePolicyRecord {
        policy_type: ty.into(),
        enabled,
        attributes: attrs.into(),
        created_at: t(1),
        created_by: "a".into(),
        updated_at: t(2),
        updated_by: "b".into(),
    };
    assert!(s.list_instance_policies(i).await.unwrap().is_empty());
    s.put_instance_policies(
        i,
        &[
            p("rotation", true, r#"{"interval_month":3}"#),
            p("metrics", false, "{}"),
        ],
    )
    .await
    .unwrap();
    s.put_instance_policies(i, &[p("rotation", false, "{}")])
        .await
        .unwrap();
    let got = s.list_instance_policies(i).await.unwrap();
    assert_eq!(
        got,
        vec![p("metrics", false, "{}"), p("rotation", false, "{}")]
    );
    let other = new_instance(s.as_ref()).await;
    assert!(s.list_instance_policies(other).await.unwrap().is_empty());
}

/// Registrations are per key and CRN; purging a key removes them; sync is rate-limited.
pub async fn registrations_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (k, v) = key(i, "k");
    s.create_key(&k, &v).await.unwrap();
    let (k2, v2) = key(i, "k2");
    s.create_key(&k2, &v2).await.unwrap();
    let reg = |key: KeyId, crn: &str| RegistrationRecord {
        key,
        resource_crn: crn.into(),
        description: Some("d".into()),
        metadata: None,
        prevent_deletion: false,
        key_version: VersionId::from(key),
        created_at: t(1),
        created_by: "svc".into(),
        updated_at: t(1),
        updated_by: "svc".into(),
    };
    let a = reg(k.id, "crn:v1:x:a");
    s.put_registration(i, &a).await.unwrap();
    s.put_registration(i, &reg(k2.id, "crn:v1:x:b"))
        .await
        .unwrap();
    let mut a2 = a.clone();
    a2.prevent_deletion = true;
    s.put_registration(i, &a2).await.unwrap();
    assert_eq!(s.list_registrations(i, Some(k.id)).await.unwrap(), vec![a2]);
    assert_eq!(s.list_registrations(i, None).await.unwrap().len(), 2);
    assert!(matches!(
        s.delete_registration(i, k.id, "crn:v1:x:zzz").await,
        Err(StoreError::NotFound)
    ));
    s.delete_registration(i, k.id, "crn:v1:x:a").await.unwrap();
    assert!(s
        .list_registrations(i, Some(k.id))
        .await
        .unwrap()
        .is_empty());
    s.purge_key(i, k2.id, k2.row_version).await.unwrap();
    assert!(
        s.list_registrations(i, None).await.unwrap().is_empty(),
        "purge removes registrations"
    );
    s.mark_synced(i, k.id, t(100), t(0)).await.unwrap();
    assert!(matches!(
        s.mark_synced(i, k.id, t(200), t(50)).await,
        Err(StoreError::Conflict)
    ));
    s.mark_synced(i, k.id, t(300), t(150)).await.unwrap();
}

/// One holder at a time per job; a lease can be renewed by its holder and taken over when it
/// expires.
pub async fn job_leases(s: Arc<dyn KeyStore>) {
    let job = format!("job-{}", InstanceId::random());
    assert!(s.claim_job(&job, "a", t(0), 1000).await.unwrap());
    assert!(
        !s.claim_job(&job, "b", t(500), 1000).await.unwrap(),
        "a holds it"
    );
    assert!(
        s.claim_job(&job, "a", t(600), 1000).await.unwrap(),
        "renewal"
    );
    assert!(
        !s.claim_job(&job, "b", t(1500), 1000).await.unwrap(),
        "renewed until 1600"
    );
    assert!(
        s.claim_job(&job, "b", t(1601), 1000).await.unwrap(),
        "expired: b takes over"
    );
    assert!(!s.claim_job(&job, "a", t(1700), 1000).await.unwrap());
}

/// A restored key reads back exactly, with every version and alias.
pub async fn restore_keeps_everything(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let (mut k, v0) = key(i, "restored");
    let v1 = KeyVersionRecord {
        id: VersionId::random(),
        seq: 1,
        created_at: t(9),
        blob: vec![7; 80],
    };
    k.aliases = vec!["back-again".into()];
    k.current_version = v1.id;
    k.version_count = 2;
    k.row_version = 5;
    k.rotation = Some(RotationPolicy {
        enabled: true,
        interval_month: 4,
        updated_at: t(3),
        updated_by: "x".into(),
    });
    // A batch is one transaction: a duplicate in it writes nothing.
    let (mut other, ov) = key(i, "other");
    other.aliases = vec!["back-again".into()];
    assert!(matches!(
        s.restore_keys(&[
            (k.clone(), vec![v1.clone(), v0.clone()]),
            (other.clone(), vec![ov.clone()])
        ])
        .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.get_key(i, k.id).await,
        Err(StoreError::NotFound)
    ));
    s.restore_keys(&[(k.clone(), vec![v1.clone(), v0.clone()])])
        .await
        .unwrap();
    assert_eq!(s.get_key(i, k.id).await.unwrap(), k);
    assert_eq!(s.key_versions(i, k.id).await.unwrap(), vec![v1, v0.clone()]);
    assert_eq!(s.key_id_by_alias(i, "back-again").await.unwrap(), k.id);
    assert!(matches!(
        s.restore_keys(&[(k.clone(), vec![v0])]).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

/// Concurrent creations against a key quota: exactly the quota succeeds.
pub async fn key_quota_is_atomic(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let mut tasks = Vec::new();
    for n in 0..12 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let (k, v) = key(i, &format!("q{n}"));
            s.create_key_within(&k, &v, 5).await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::QuotaExceeded(5)) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, refused), (5, 7));
    assert_eq!(s.count_keys(i, &KeyFilter::default()).await.unwrap(), 5);
}

/// Deleted keys whose deletion is at or before the cutoff are due for purging; others are not.
pub async fn deleted_keys_are_found_for_purging(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let mut ids = Vec::new();
    for (name, state, deleted) in [
        ("old", KeyState::Destroyed, Some(t(10))),
        ("recent", KeyState::Destroyed, Some(t(30))),
        ("active", KeyState::Active, None),
    ] {
        let (mut k, v) = key(i, name);
        k.state = state;
        k.deleted_at = deleted;
        s.create_key(&k, &v).await.unwrap();
        ids.push(k.id);
    }
    async fn due(s: &dyn KeyStore, i: InstanceId, cutoff: UnixMillis) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = s
            .keys_deleted_by(cutoff)
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.instance == i)
            .map(|k| k.id)
            .collect();
        ids.sort();
        ids
    }
    assert!(due(s.as_ref(), i, t(9)).await.is_empty());
    assert_eq!(due(s.as_ref(), i, t(10)).await, vec![ids[0]]);
    let mut want = vec![ids[0], ids[1]];
    want.sort();
    assert_eq!(due(s.as_ref(), i, t(30)).await, want, "never an active key");
}
