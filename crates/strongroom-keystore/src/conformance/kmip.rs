//! Cases on KMIP adapters, certificates and objects.

use std::sync::Arc;

use strongroom_model::{InstanceId, KeyId};
use uuid::Uuid;

use super::*;

fn adapter(instance: InstanceId, name: &str) -> KmipAdapterRecord {
    KmipAdapterRecord {
        instance,
        id: Uuid::new_v4(),
        name: name.into(),
        description: Some("vSphere".into()),
        profile: "native_1.0".into(),
        crk_id: KeyId::random(),
        created_at: t(1),
        created_by: "tester".into(),
        updated_at: t(1),
        updated_by: "tester".into(),
    }
}

fn certificate(a: &KmipAdapterRecord, name: &str) -> KmipCertificateRecord {
    KmipCertificateRecord {
        instance: a.instance,
        adapter: a.id,
        id: Uuid::new_v4(),
        name: name.into(),
        pem: "-----BEGIN CERTIFICATE-----".into(),
        fingerprint: format!("{:x}", Uuid::new_v4().as_u128()),
        created_at: t(2),
        created_by: "tester".into(),
    }
}

fn object(a: &KmipAdapterRecord, name: &str, state: u32, at: i64) -> KmipObjectRecord {
    KmipObjectRecord {
        instance: a.instance,
        adapter: a.id,
        id: Uuid::new_v4(),
        object_type: 2,
        state,
        name: Some(name.into()),
        algorithm: Some(3),
        row_version: 1,
        created_at: t(at),
        created_by: "client".into(),
        updated_at: t(at),
        destroyed_at: None,
        attributes: b"{}".to_vec(),
        material: Some(vec![7; 40]),
    }
}

/// Adapters: unique names, the quota, deletion with certificates, refusal while live
/// objects remain; certificates: unique, found by fingerprint, quota; all per instance.
pub async fn kmip_adapters_and_certificates(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let other = new_instance(s.as_ref()).await;
    let a = adapter(i, "vcenter");
    s.create_kmip_adapter(&a, 2).await.unwrap();
    assert!(matches!(
        s.create_kmip_adapter(&adapter(i, "vcenter"), 2).await,
        Err(StoreError::AlreadyExists(Unique::KmipAdapter))
    ));
    s.create_kmip_adapter(&adapter(i, "second"), 2)
        .await
        .unwrap();
    assert!(matches!(
        s.create_kmip_adapter(&adapter(i, "third"), 2).await,
        Err(StoreError::QuotaExceeded(2))
    ));
    s.create_kmip_adapter(&adapter(other, "vcenter"), 2)
        .await
        .unwrap();
    let listed = s.list_kmip_adapters(i).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&a));

    let c = certificate(&a, "esxi-1");
    s.add_kmip_certificate(&c, 1).await.unwrap();
    assert!(matches!(
        s.add_kmip_certificate(&certificate(&a, "esxi-2"), 1).await,
        Err(StoreError::QuotaExceeded(1))
    ));
    let mut same = certificate(&a, "esxi-3");
    same.fingerprint = c.fingerprint.clone();
    assert!(matches!(
        s.add_kmip_certificate(&same, 5).await,
        Err(StoreError::AlreadyExists(Unique::KmipCertificate))
    ));
    let mut elsewhere = certificate(&a, "x");
    elsewhere.instance = other;
    assert!(matches!(
        s.add_kmip_certificate(&elsewhere, 5).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.kmip_certificate_by_fingerprint(&c.fingerprint)
            .await
            .unwrap(),
        c
    );
    assert_eq!(
        s.list_kmip_certificates(i, a.id).await.unwrap(),
        vec![c.clone()]
    );
    assert!(s
        .list_kmip_certificates(other, a.id)
        .await
        .unwrap()
        .is_empty());

    // A live object keeps the adapter; once destroyed, the adapter goes with its
    // certificates and objects.
    let mut o = object(&a, "disk-1", 2, 3);
    s.write_kmip_objects(std::slice::from_ref(&o), &[], u64::MAX)
        .await
        .unwrap();
    assert!(matches!(
        s.delete_kmip_adapter(i, a.id).await,
        Err(StoreError::AdapterNotEmpty(1))
    ));
    assert!(matches!(
        s.delete_kmip_adapter(other, a.id).await,
        Err(StoreError::NotFound)
    ));
    o.state = 5;
    o.material = None;
    s.update_kmip_object(&o).await.unwrap();
    s.delete_kmip_adapter(i, a.id).await.unwrap();
    assert!(matches!(
        s.kmip_certificate_by_fingerprint(&c.fingerprint).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_kmip_object(i, o.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_kmip_adapter(i, a.id).await,
        Err(StoreError::NotFound)
    ));
    s.delete_kmip_certificate(i, a.id, c.id).await.unwrap_err();
}

/// Objects: round trip, compare-and-swap updates, filters, paging, instance isolation.
pub async fn kmip_objects_round_trip(s: Arc<dyn KeyStore>) {
    let i = new_instance(s.as_ref()).await;
    let other = new_instance(s.as_ref()).await;
    let a = adapter(i, "vsan");
    s.create_kmip_adapter(&a, 10).await.unwrap();
    let mut made = Vec::new();
    for n in 0..6 {
        let mut o = object(&a, &format!("k{}", n % 3), 1 + (n % 2), i64::from(n) + 10);
        if n == 5 {
            o.algorithm = None;
            o.object_type = 7;
        }
        s.write_kmip_objects(std::slice::from_ref(&o), &[], u64::MAX)
            .await
            .unwrap();
        made.push(o);
    }
    assert!(matches!(
        s.write_kmip_objects(&made[..1], &[], u64::MAX).await,
        Err(StoreError::AlreadyExists(Unique::KmipObject))
    ));
    assert_eq!(s.get_kmip_object(i, made[2].id).await.unwrap(), made[2]);
    assert!(matches!(
        s.get_kmip_object(other, made[2].id).await,
        Err(StoreError::NotFound)
    ));

    let all = KmipObjectFilter::default();
    assert_eq!(s.count_kmip_objects(i, &all).await.unwrap(), 6);
    assert_eq!(s.count_kmip_objects(other, &all).await.unwrap(), 0);
    let page = s.list_kmip_objects(i, &all, 2, 3).await.unwrap();
    assert_eq!(page, made[2..5].to_vec());
    let by = |f: KmipObjectFilter| {
        let s = Arc::clone(&s);
        async move {
            s.list_kmip_objects(i, &f, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    let name = KmipObjectFilter {
        name: Some("k1".into()),
        ..KmipObjectFilter::default()
    };
    assert_eq!(by(name).await, vec![made[1].id, made[4].id]);
    let active = KmipObjectFilter {
        states: vec![2],
        ..KmipObjectFilter::default()
    };
    assert_eq!(by(active).await, vec![made[1].id, made[3].id, made[5].id]);
    let typed = KmipObjectFilter {
        object_type: Some(7),
        adapter: Some(a.id),
        ..KmipObjectFilter::default()
    };
    assert_eq!(by(typed).await, vec![made[5].id]);
    let alg = KmipObjectFilter {
        algorithm: Some(3),
        states: vec![1],
        ..KmipObjectFilter::default()
    };
    assert_eq!(by(alg).await, vec![made[0].id, made[2].id, made[4].id]);

    // Compare and swap: the stale writer loses.
    let mut first = made[0].clone();
    first.state = 2;
    first.attributes = b"{\"x\":1}".to_vec();
    let v = s.update_kmip_object(&first).await.unwrap();
    assert_eq!(v, first.row_version + 1);
    let mut stale = made[0].clone();
    stale.state = 3;
    assert!(matches!(
        s.update_kmip_object(&stale).await,
        Err(StoreError::Conflict)
    ));
    let stored = s.get_kmip_object(i, first.id).await.unwrap();
    assert_eq!((stored.state, stored.row_version), (2, v));
    assert_eq!(stored.attributes, first.attributes);
    let mut gone = made[0].clone();
    gone.id = Uuid::new_v4();
    assert!(matches!(
        s.update_kmip_object(&gone).await,
        Err(StoreError::NotFound)
    ));

    // Several writes in one transaction: all of them, or none when one cannot be made.
    let absent = |o: &KmipObjectRecord| {
        let s = Arc::clone(&s);
        let (instance, id) = (o.instance, o.id);
        async move {
            matches!(
                s.get_kmip_object(instance, id).await,
                Err(StoreError::NotFound)
            )
        }
    };
    let (p1, p2) = (object(&a, "p1", 1, 30), object(&a, "p2", 1, 31));
    let mut current = s.get_kmip_object(i, first.id).await.unwrap();
    current.state = 3;
    let stale = current.clone();
    s.write_kmip_objects(
        &[p1.clone(), p2.clone()],
        std::slice::from_ref(&current),
        u64::MAX,
    )
    .await
    .unwrap();
    assert_eq!(s.get_kmip_object(i, p1.id).await.unwrap(), p1);
    assert_eq!(s.get_kmip_object(i, p2.id).await.unwrap(), p2);
    let stored = s.get_kmip_object(i, first.id).await.unwrap();
    assert_eq!((stored.state, stored.row_version), (3, v + 1));
    let p3 = object(&a, "p3", 1, 32);
    assert!(matches!(
        s.write_kmip_objects(
            std::slice::from_ref(&p3),
            std::slice::from_ref(&stale),
            u64::MAX
        )
        .await,
        Err(StoreError::Conflict)
    ));
    assert!(
        absent(&p3).await,
        "a new object was kept from a refused write"
    );
    assert!(matches!(
        s.write_kmip_objects(&[p3.clone(), p1.clone()], &[], u64::MAX)
            .await,
        Err(StoreError::AlreadyExists(Unique::KmipObject))
    ));
    assert!(
        absent(&p3).await,
        "a new object was kept from a refused write"
    );
    assert!(matches!(
        s.write_kmip_objects(
            std::slice::from_ref(&p3),
            std::slice::from_ref(&gone),
            u64::MAX
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        absent(&p3).await,
        "a new object was kept from a refused write"
    );
    assert_eq!(
        s.get_kmip_object(i, first.id).await.unwrap().row_version,
        v + 1
    );
    // The quota counts live objects (here 8) in the same transaction: two more do not fit
    // under 9, one does.
    let live = s
        .count_kmip_objects(i, &KmipObjectFilter::live())
        .await
        .unwrap();
    assert_eq!(live, 8);
    let p4 = object(&a, "p4", 1, 33);
    assert!(matches!(
        s.write_kmip_objects(&[p3.clone(), p4.clone()], &[], live + 1)
            .await,
        Err(StoreError::QuotaExceeded(9))
    ));
    assert!(
        absent(&p3).await && absent(&p4).await,
        "a refused write kept an object"
    );
    s.write_kmip_objects(std::slice::from_ref(&p3), &[], live + 1)
        .await
        .unwrap();
    assert!(!absent(&p3).await);

    // Deleting the instance takes its KMIP records with it.
    s.delete_instance(i, true, t(100)).await.unwrap();
    assert!(matches!(
        s.get_kmip_object(i, first.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.list_kmip_adapters(i).await.unwrap().is_empty());
}

fn token_object(instance: InstanceId, space: &str, id: &str, private: bool) -> TokenObjectRecord {
    TokenObjectRecord {
        instance,
        space: space.into(),
        id: id.into(),
        private,
        data: format!("object {id}").into_bytes(),
        version: 0,
        created_at: t(1),
        updated_at: t(1),
    }
}

/// PKCS#11 token objects: create, list per keystore, replace only at the version read,
/// quota, delete, clear, and deleting the instance removes them.
pub async fn token_objects_round_trip(s: Arc<dyn KeyStore>) {
    let inst = instance("p11");
    s.create_instance(&inst).await.unwrap();
    let other = instance("p11-other");
    s.create_instance(&other).await.unwrap();
    let (private, public) = (
        "1060c454-9b69-5062-ae46-73ce421bbbb6",
        "69ecd887-c618-5a3c-9610-64eeee786dde",
    );
    let a = token_object(inst.id, private, "a", true);
    assert_eq!(s.put_token_object(&a, 0, 10).await.unwrap(), 1);
    assert!(matches!(
        s.put_token_object(&a, 0, 10).await,
        Err(StoreError::AlreadyExists(Unique::TokenObject))
    ));
    s.put_token_object(&token_object(inst.id, public, "b", false), 0, 10)
        .await
        .unwrap();
    s.put_token_object(&token_object(other.id, private, "a", true), 0, 10)
        .await
        .unwrap();
    let listed = s.list_token_objects(inst.id, private).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].data, a.data);
    assert!(listed[0].private);
    // One object by its keystore and id; the same id elsewhere is not it.
    assert_eq!(
        s.get_token_object(inst.id, private, "a").await.unwrap(),
        listed[0]
    );
    for (i, space, id) in [
        (inst.id, public, "a"),
        (inst.id, private, "b"),
        (inst.id, private, "A"),
    ] {
        assert!(matches!(
            s.get_token_object(i, space, id).await,
            Err(StoreError::NotFound)
        ));
    }
    let elsewhere = s.get_token_object(other.id, private, "a").await.unwrap();
    assert_eq!(elsewhere.instance, other.id);
    assert_eq!(s.all_token_objects(inst.id).await.unwrap().len(), 2);
    // Replace at the version read; a stale version is a conflict, a missing id not found.
    let newer = TokenObjectRecord {
        data: b"newer".to_vec(),
        ..a.clone()
    };
    assert_eq!(s.put_token_object(&newer, 1, 10).await.unwrap(), 2);
    let got = s.get_token_object(inst.id, private, "a").await.unwrap();
    assert_eq!((got.version, got.data.as_slice()), (2, &b"newer"[..]));
    assert!(matches!(
        s.put_token_object(&newer, 1, 10).await,
        Err(StoreError::Conflict)
    ));
    let ghost = token_object(inst.id, private, "ghost", true);
    assert!(matches!(
        s.put_token_object(&ghost, 3, 10).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.list_token_objects(inst.id, private).await.unwrap()[0].data,
        b"newer"
    );
    // The quota counts the instance's objects.
    assert!(matches!(
        s.put_token_object(&token_object(inst.id, public, "c", false), 0, 2)
            .await,
        Err(StoreError::QuotaExceeded(2))
    ));
    // The service's control records (ids from '#') are neither counted nor refused.
    let control = token_object(inst.id, public, "#auth", false);
    s.put_token_object(&control, 0, 2).await.unwrap();
    let c = token_object(inst.id, public, "c", false);
    assert!(matches!(
        s.put_token_object(&c, 0, 2).await,
        Err(StoreError::QuotaExceeded(2))
    ));
    s.put_token_object(&c, 0, 3).await.unwrap();
    for id in ["c", "#auth"] {
        s.delete_token_object(inst.id, public, id).await.unwrap();
    }
    s.delete_token_object(inst.id, public, "b").await.unwrap();
    assert!(matches!(
        s.delete_token_object(inst.id, public, "b").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.clear_token_space(inst.id, private).await.unwrap(), 1);
    assert!(s.all_token_objects(inst.id).await.unwrap().is_empty());
    // The other instance's object is untouched until its instance goes.
    assert_eq!(s.all_token_objects(other.id).await.unwrap().len(), 1);
    s.delete_instance(other.id, true, t(2)).await.unwrap();
    assert!(s.all_token_objects(other.id).await.unwrap().is_empty());
}
