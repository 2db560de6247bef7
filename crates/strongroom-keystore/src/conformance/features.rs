//! Cases on listing, aliases, rings, policies, import tokens, instance policies,
//! registrations, job leases, restore, quotas and purging.

use std::sync::Arc;

use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, UnixMillis, VersionId};

use super::*;

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
        within_rings: None,
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
    // A caller's rings: the default ring holds 9 keys, ring-a one; no ring, none.
    let within = |rings: &[&str]| KeyFilter {
        within_rings: Some(rings.iter().map(|r| r.to_string()).collect()),
        ..KeyFilter::default()
    };
    assert_eq!(s.count_keys(i, &within(&["ring-a"])).await.unwrap(), 1);
    assert_eq!(
        s.count_keys(i, &within(&["default", "ring-a"]))
            .await
            .unwrap(),
        10
    );
    assert_eq!(s.count_keys(i, &within(&[])).await.unwrap(), 0);
    let ring_a = s
        .list_keys(
            i,
            &within(&["ring-a", "ring-b"]),
            Page {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(ring_a.len(), 1);
    assert_eq!(ring_a[0].key_ring, "ring-a");
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

/// A sorted list is ordered by the keystore, whole, before it is paged: each field in either
/// direction, unset dates first when ascending, ties by id; filters still apply.
pub async fn sorted_lists_order_in_the_keystore(s: Arc<dyn KeyStore>) {
    use std::cmp::Ordering;
    let i = new_instance(s.as_ref()).await;
    let mut all = Vec::new();
    for n in 0..12_i64 {
        let (mut k, v) = key(i, &format!("s{n}"));
        // Creation times repeat (ties), other dates are set on some keys only.
        k.created_at = t(1000 * (n % 5));
        k.updated_at = t(1000 * (11 - n));
        k.last_rotated_at = (n % 3 != 0).then(|| t(500 * n));
        k.expiration = (n % 4 == 1).then(|| t(100_000 - n));
        if n % 2 == 1 {
            k.kind = KeyKind::Standard;
        }
        k.imported = n % 3 == 2;
        if n >= 9 {
            k.state = KeyState::Destroyed;
            k.deleted_at = Some(t(7000 - n));
        } else if n == 4 {
            k.state = KeyState::Suspended;
        }
        s.create_key(&k, &v).await.unwrap();
        all.push(k);
    }
    fn field(a: &KeyRecord, b: &KeyRecord, f: SortField) -> Ordering {
        match f {
            SortField::Id => a.id.to_string().cmp(&b.id.to_string()),
            SortField::State => a.state.code().cmp(&b.state.code()),
            SortField::Extractable => {
                (a.kind == KeyKind::Standard).cmp(&(b.kind == KeyKind::Standard))
            }
            SortField::Imported => a.imported.cmp(&b.imported),
            SortField::CreationDate => a.created_at.cmp(&b.created_at),
            SortField::LastUpdateDate => a.updated_at.cmp(&b.updated_at),
            SortField::LastRotateDate => a.last_rotated_at.cmp(&b.last_rotated_at),
            SortField::DeletionDate => a.deleted_at.cmp(&b.deleted_at),
            SortField::ExpirationDate => a.expiration.cmp(&b.expiration),
        }
    }
    let expect = |sort: &[(SortField, bool)], keep: &dyn Fn(&KeyRecord) -> bool| {
        let mut v: Vec<KeyRecord> = all.iter().filter(|k| keep(k)).cloned().collect();
        v.sort_by(|a, b| {
            sort.iter()
                .fold(Ordering::Equal, |o, (f, desc)| {
                    o.then_with(|| {
                        let c = field(a, b, *f);
                        if *desc {
                            c.reverse()
                        } else {
                            c
                        }
                    })
                })
                .then_with(|| a.id.to_string().cmp(&b.id.to_string()))
        });
        v.into_iter().map(|k| k.id).collect::<Vec<_>>()
    };
    let everything = Page {
        limit: 100,
        offset: 0,
    };
    let fields = [
        SortField::Id,
        SortField::State,
        SortField::Extractable,
        SortField::Imported,
        SortField::CreationDate,
        SortField::LastUpdateDate,
        SortField::LastRotateDate,
        SortField::DeletionDate,
        SortField::ExpirationDate,
    ];
    for f in fields {
        for desc in [false, true] {
            let got: Vec<KeyId> = s
                .list_keys_sorted(i, &KeyFilter::default(), &[(f, desc)], everything)
                .await
                .unwrap()
                .into_iter()
                .map(|k| k.id)
                .collect();
            assert_eq!(got, expect(&[(f, desc)], &|_| true), "{f:?} desc={desc}");
        }
    }
    // Two fields, a filter, and a page out of the middle.
    let sort = [
        (SortField::Extractable, false),
        (SortField::CreationDate, true),
    ];
    let active = KeyFilter {
        states: vec![KeyState::Active],
        ..KeyFilter::default()
    };
    let want = expect(&sort, &|k| k.state == KeyState::Active);
    assert_eq!(want.len(), 8);
    let page: Vec<KeyId> = s
        .list_keys_sorted(
            i,
            &active,
            &sort,
            Page {
                limit: 3,
                offset: 2,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(page, want[2..5].to_vec());
    // The records come back whole.
    let first = s
        .list_keys_sorted(
            i,
            &KeyFilter::default(),
            &[(SortField::DeletionDate, true)],
            everything,
        )
        .await
        .unwrap();
    let k9 = all.iter().find(|k| k.name == "s9").unwrap();
    assert_eq!(first.iter().find(|k| k.id == k9.id), Some(k9));
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
