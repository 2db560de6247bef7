//! Service IDs and access limited to key rings: several API keys sharing one grant, the
//! grant changing for all of them at once, and a ring-limited caller reaching only the keys
//! of its rings and nothing instance-wide.

use super::*;
use crate::{Access, Grant};

fn grant(roles: &[Role], rings: Option<&[&str]>) -> Grant {
    Grant {
        roles: Roles::of(roles),
        key_rings: rings.map(|r| r.iter().map(|s| s.to_string()).collect()),
    }
}

impl Fixture {
    /// The context of a token exchanged for `api_key`.
    async fn ctx_of_key(&self, instance: InstanceId, api_key: &str) -> Result<Ctx> {
        let t = self.svc.issue_token(api_key, None, "c").await?;
        self.authenticate(&t.access_token, instance).await
    }
}

/// An instance with key rings `payments` and `ops`, one root key in each and one in
/// `default`; returns the instance and the three key ids.
async fn three_rings(f: &Fixture) -> (InstanceId, [String; 3]) {
    let i = f.instance().await;
    let m = f.ctx(i, &[Role::Manager]).await;
    for ring in ["payments", "ops"] {
        f.svc.create_key_ring(&m, ring).await.unwrap();
    }
    let mut ids = Vec::new();
    for ring in ["payments", "ops", "default"] {
        let k = f
            .svc
            .create_key(
                &m,
                CreateKey {
                    key_ring: Some(ring.into()),
                    ..root(&format!("{ring}-key"))
                },
            )
            .await
            .unwrap();
        ids.push(k.record.id.to_string());
    }
    (i, ids.try_into().unwrap())
}

#[tokio::test]
async fn service_id_keys_share_one_grant_that_changes_for_all() {
    let f = fixture().await;
    let (i, [payments, ops, _]) = three_rings(&f).await;
    let admin = f.admin().await;
    let sid = f
        .svc
        .create_service_id(
            &admin,
            i,
            "batch",
            grant(&[Role::Writer], Some(&["payments"])),
        )
        .await
        .unwrap();
    assert!(sid.id.starts_with("ServiceId-"));
    let mut keys = Vec::new();
    for n in ["first", "second"] {
        keys.push(
            f.svc
                .create_api_key(&admin, i, n, Access::ServiceId(sid.id.clone()))
                .await
                .unwrap(),
        );
    }
    assert_eq!(keys[0].record.access, Access::ServiceId(sid.id.clone()));
    for k in &keys {
        let ctx = f.ctx_of_key(i, &k.api_key).await.unwrap();
        assert_eq!(ctx.principal.subject, format!("serviceid:{}", sid.id));
        assert_eq!(ctx.principal.roles, Roles::of(&[Role::Writer]));
        assert_eq!(ctx.principal.key_rings, Some(vec!["payments".to_string()]));
        f.svc.wrap(&ctx, &payments, None, &[]).await.unwrap();
        assert_eq!(
            kind(f.svc.wrap(&ctx, &ops, None, &[]).await),
            ErrorKind::Forbidden
        );
    }
    let before = f.ctx_of_key(i, &keys[0].api_key).await.unwrap();
    let earlier_token = f
        .svc
        .issue_token(&keys[0].api_key, None, "c")
        .await
        .unwrap()
        .access_token;
    // One change of the service ID reaches both keys' next tokens.
    f.svc
        .update_service_id(&admin, i, &sid.id, grant(&[Role::Reader], Some(&["ops"])))
        .await
        .unwrap();
    for k in &keys {
        let ctx = f.ctx_of_key(i, &k.api_key).await.unwrap();
        assert_eq!(ctx.principal.key_rings, Some(vec!["ops".to_string()]));
        f.svc.get_key_metadata(&ctx, &ops).await.unwrap();
        f.svc.wrap(&ctx, &ops, None, &[]).await.unwrap();
        assert_eq!(
            kind(f.svc.rotate(&ctx, &ops, None, None).await),
            ErrorKind::Forbidden,
            "a Reader cannot rotate"
        );
        assert_eq!(
            kind(f.svc.wrap(&ctx, &payments, None, &[]).await),
            ErrorKind::Forbidden,
            "payments is no longer the service ID's ring"
        );
    }
    // A request already authenticated finishes with the grant it had; a token already
    // issued acts with the new grant from its next request on.
    f.svc.wrap(&before, &payments, None, &[]).await.unwrap();
    let again = f.authenticate(&earlier_token, i).await.unwrap();
    assert_eq!(again.principal.roles, Roles::of(&[Role::Reader]));
    assert_eq!(again.principal.key_rings, Some(vec!["ops".to_string()]));
    assert_eq!(
        kind(f.svc.wrap(&again, &payments, None, &[]).await),
        ErrorKind::Forbidden
    );
    // Rotating a key of the service ID: delete one, the other goes on.
    f.svc
        .delete_api_key(&admin, i, &keys[0].record.id)
        .await
        .unwrap();
    assert_eq!(
        kind(f.ctx_of_key(i, &keys[0].api_key).await),
        ErrorKind::Unauthenticated
    );
    f.ctx_of_key(i, &keys[1].api_key).await.unwrap();
    // Deleting the service ID deletes its keys.
    f.svc.delete_service_id(&admin, i, &sid.id).await.unwrap();
    assert_eq!(
        kind(f.ctx_of_key(i, &keys[1].api_key).await),
        ErrorKind::Unauthenticated
    );
    assert!(f.svc.list_api_keys(&admin, i).await.unwrap().is_empty());
}

#[tokio::test]
async fn service_id_refusals_change_nothing() {
    let f = fixture().await;
    let (i, _) = three_rings(&f).await;
    let other = f.instance().await;
    let admin = f.admin().await;
    assert_eq!(
        kind(
            f.svc
                .create_service_id(&admin, i, "x", grant(&[], None))
                .await
        ),
        ErrorKind::InvalidField
    );
    assert_eq!(
        kind(
            f.svc
                .create_service_id(&admin, i, "x", grant(&[Role::Reader], Some(&[])))
                .await
        ),
        ErrorKind::InvalidField
    );
    assert_eq!(
        kind(
            f.svc
                .create_service_id(&admin, i, "x", grant(&[Role::Reader], Some(&["nope"])))
                .await
        ),
        ErrorKind::KeyRingNotFound
    );
    assert!(f.svc.list_service_ids(&admin, i).await.unwrap().is_empty());
    let sid = f
        .svc
        .create_service_id(&admin, i, "x", grant(&[Role::Reader], None))
        .await
        .unwrap();
    // Another instance's service ID is not found, for keys, changes and deletion alike.
    assert_eq!(
        kind(
            f.svc
                .create_api_key(&admin, other, "k", Access::ServiceId(sid.id.clone()))
                .await
        ),
        ErrorKind::ServiceIdNotFound
    );
    assert_eq!(
        kind(
            f.svc
                .update_service_id(&admin, other, &sid.id, grant(&[Role::Manager], None))
                .await
        ),
        ErrorKind::ServiceIdNotFound
    );
    assert_eq!(
        kind(f.svc.delete_service_id(&admin, other, &sid.id).await),
        ErrorKind::ServiceIdNotFound
    );
    assert!(f.svc.list_api_keys(&admin, other).await.unwrap().is_empty());
    assert_eq!(
        f.svc.list_service_ids(&admin, i).await.unwrap(),
        vec![sid.clone()]
    );
}

#[tokio::test]
async fn ring_limited_access_reaches_only_its_rings() {
    let f = fixture().await;
    let (i, [payments, ops, default]) = three_rings(&f).await;
    let admin = f.admin().await;
    let key = f
        .svc
        .create_api_key(
            &admin,
            i,
            "payments team",
            Access::Roles(grant(&[Role::Manager], Some(&["payments"]))),
        )
        .await
        .unwrap();
    let ctx = f.ctx_of_key(i, &key.api_key).await.unwrap();
    assert_eq!(ctx.principal.subject, format!("apikey:{}", key.record.id));

    // Keys of its ring: every key action.
    f.svc.wrap(&ctx, &payments, None, &[]).await.unwrap();
    f.svc.rotate(&ctx, &payments, None, None).await.unwrap();
    f.svc.get_key_metadata(&ctx, &payments).await.unwrap();
    let created = f
        .svc
        .create_key(
            &ctx,
            CreateKey {
                key_ring: Some("payments".into()),
                ..root("new")
            },
        )
        .await
        .unwrap();
    assert_eq!(created.record.key_ring, "payments");
    f.svc
        .create_key_alias(&ctx, &payments, "pay-root")
        .await
        .unwrap();
    // Listing and counting show only its ring, and naming another ring is refused.
    let listed = f
        .svc
        .list_keys(
            &ctx,
            &KeyFilter::default(),
            Page {
                limit: 100,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.key_ring == "payments"));
    assert_eq!(
        f.svc.count_keys(&ctx, &KeyFilter::default()).await.unwrap(),
        2
    );
    let ops_filter = KeyFilter {
        key_ring: Some("ops".into()),
        ..KeyFilter::default()
    };
    assert_eq!(
        kind(f.svc.count_keys(&ctx, &ops_filter).await),
        ErrorKind::Forbidden
    );
    let rings = f.svc.list_key_rings(&ctx).await.unwrap();
    assert_eq!(
        rings.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["payments"]
    );

    // Keys of other rings, by id or alias, and keys created or moved there: refused.
    let m = f.ctx(i, &[Role::Manager]).await;
    f.svc.create_key_alias(&m, &ops, "ops-root").await.unwrap();
    for other in [&ops, &default, &"ops-root".to_string()] {
        assert_eq!(
            kind(f.svc.wrap(&ctx, other, None, &[]).await),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(f.svc.get_key_metadata(&ctx, other).await),
            ErrorKind::Forbidden
        );
        assert_eq!(kind(f.svc.disable(&ctx, other).await), ErrorKind::Forbidden);
    }
    assert_eq!(
        kind(
            f.svc
                .create_key(
                    &ctx,
                    CreateKey {
                        key_ring: None,
                        ..root("in default")
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.move_key(&ctx, &payments, None, "ops").await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            f.svc
                .list_registrations(
                    &ctx,
                    None,
                    None,
                    None,
                    Page {
                        limit: 10,
                        offset: 0
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );

    // Nothing instance-wide, whatever the role.
    assert_eq!(
        kind(f.svc.get_instance_policies(&ctx, None).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            f.svc
                .create_import_token(&ctx, None, None, Default::default())
                .await
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.create_key_ring(&ctx, "mine").await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.generate_random(&ctx, 16).await),
        ErrorKind::Forbidden,
        "GREP11 operations reach the whole instance"
    );
    assert_eq!(
        kind(f.svc.clear_token_space(&ctx, "space").await),
        ErrorKind::Forbidden,
        "the PKCS#11 library's keystores are instance-wide"
    );
    assert_eq!(
        kind(f.svc.list_kmip_adapters(&ctx, None).await),
        ErrorKind::Forbidden,
        "KMIP adapters are instance-wide"
    );
    assert_eq!(
        kind(
            f.svc
                .activity(
                    &ctx,
                    crate::activity::ActivityQuery {
                        after: 0,
                        from: None,
                        to: None,
                        action: None,
                        outcome: None,
                        failures: false,
                        key: None,
                        limit: 10,
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    // The refusals changed nothing.
    let all = f
        .svc
        .list_keys(
            &m,
            &KeyFilter::default(),
            Page {
                limit: 100,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|k| k.state == KeyState::Active));
    assert_eq!(f.svc.list_key_rings(&m).await.unwrap().len(), 3);
    assert_eq!(
        f.svc
            .get_key_metadata(&m, &payments)
            .await
            .unwrap()
            .key_ring,
        "payments"
    );
}
