//! Tokens answer to their credential as it is now: a deleted API key or service ID stops
//! the tokens issued for it, on this node at once and on another node within the recheck
//! time, and a changed grant changes what those tokens may do.

use super::*;
use crate::{Access, Grant};

fn writer() -> Access {
    Access::Roles(Grant {
        roles: Roles::of(&[Role::Writer]),
        key_rings: None,
    })
}

/// A second node on the fixture's keystore, clock and token key, which hears of nothing
/// the first does (the in-memory keystore announces no changes).
async fn second_node(f: &Fixture) -> Arc<Service> {
    let secrets = NodeSecrets {
        token_key: [1; 32],
        audit_key: AUDIT_KEY,
        admin_token: "admin-secret".into(),
    };
    Service::start(
        Arc::clone(&f.store),
        Arc::new(strongroom_engine::test_provider::TestProvider),
        f.vault.clone(),
        f.clock.clone(),
        secrets,
        test_config(true),
    )
    .await
    .unwrap()
    .0
}

#[tokio::test]
async fn a_deleted_api_key_stops_its_tokens_here_at_once_and_elsewhere_within_the_recheck() {
    let (f, i, m) = with_manager().await;
    let key = f.root_id(&m, "k").await;
    let admin = f.admin().await;
    let doomed = f
        .svc
        .create_api_key(&admin, i, "doomed", writer())
        .await
        .unwrap();
    let kept = f
        .svc
        .create_api_key(&admin, i, "kept", writer())
        .await
        .unwrap();
    let token = |k: &crate::ApiKeyCreated| {
        let svc = Arc::clone(&f.svc);
        let k = k.api_key.clone();
        async move { svc.issue_token(&k, None, "c").await.unwrap().access_token }
    };
    let (doomed_token, kept_token) = (token(&doomed).await, token(&kept).await);
    let other = second_node(&f).await;
    for svc in [&f.svc, &other] {
        let ctx = authenticate(svc, &doomed_token, i).await.unwrap();
        svc.wrap(&ctx, &key, None, &[]).await.unwrap();
    }

    let before = f.store.audit_head().await.unwrap().unwrap().0;
    f.svc
        .delete_api_key(&admin, i, &doomed.record.id)
        .await
        .unwrap();
    let refused = authenticate(&f.svc, &doomed_token, i).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unauthenticated);
    assert!(
        refused
            .message
            .contains("API key it was issued for has been deleted"),
        "{}",
        refused.message
    );
    // The other node read the key a moment ago and trusts that for the recheck time.
    authenticate(&other, &doomed_token, i).await.unwrap();
    f.clock.advance(crate::credentials::RECHECK_MS / 1000);
    assert_eq!(
        kind(authenticate(&other, &doomed_token, i).await),
        ErrorKind::Unauthenticated
    );
    // The instance's other keys are untouched, on both nodes.
    for svc in [&f.svc, &other] {
        let ctx = authenticate(svc, &kept_token, i).await.unwrap();
        svc.wrap(&ctx, &key, None, &[]).await.unwrap();
    }
    // The refusal is audited, as every refused request is, under the deleted key's name.
    let log = f.store.read_audit(before + 1, 20).await.unwrap();
    assert!(
        log.iter().any(|r| r.action == Action::SecretsList.as_str()
            && r.status == 401
            && r.principal == format!("apikey:{}", doomed.record.id)),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_service_ids_tokens_follow_its_grant_and_stop_with_it() {
    let (f, i, m) = with_manager().await;
    let key = f.root_id(&m, "k").await;
    let admin = f.admin().await;
    let grant = |roles: &[Role]| Grant {
        roles: Roles::of(roles),
        key_rings: None,
    };
    let sid = f
        .svc
        .create_service_id(&admin, i, "batch", grant(&[Role::Manager]))
        .await
        .unwrap();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for n in ["first", "second"] {
        let k = f
            .svc
            .create_api_key(&admin, i, n, Access::ServiceId(sid.id.clone()))
            .await
            .unwrap();
        tokens.push(
            f.svc
                .issue_token(&k.api_key, None, "c")
                .await
                .unwrap()
                .access_token,
        );
        ids.push(k.record.id);
    }
    let ctx = authenticate(&f.svc, &tokens[0], i).await.unwrap();
    assert_eq!(ctx.principal.api_key_id.as_deref(), Some(ids[0].as_str()));
    f.svc.rotate(&ctx, &key, None, None).await.unwrap();

    // Narrowed to Reader: the same token now reads but no longer changes anything.
    f.svc
        .update_service_id(&admin, i, &sid.id, grant(&[Role::Reader]))
        .await
        .unwrap();
    let ctx = authenticate(&f.svc, &tokens[0], i).await.unwrap();
    assert_eq!(ctx.principal.roles, Roles::of(&[Role::Reader]));
    f.svc.get_key_metadata(&ctx, &key).await.unwrap();
    assert_eq!(
        kind(f.svc.rotate(&ctx, &key, None, None).await),
        ErrorKind::Forbidden
    );

    // One of its keys deleted: that key's tokens stop, the other key's go on.
    f.svc.delete_api_key(&admin, i, &ids[0]).await.unwrap();
    assert_eq!(
        kind(authenticate(&f.svc, &tokens[0], i).await),
        ErrorKind::Unauthenticated
    );
    authenticate(&f.svc, &tokens[1], i).await.unwrap();

    // The service ID deleted: every token of it stops.
    f.svc.delete_service_id(&admin, i, &sid.id).await.unwrap();
    let refused = authenticate(&f.svc, &tokens[1], i).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn tokens_no_api_key_stands_behind_are_taken_as_issued() {
    // The dev token (subject `dev`) and the tests' tokens name no credential: nothing is
    // looked up for them, and their grant is the one they carry.
    let f = fixture().await;
    let i = f.instance().await;
    let p = Principal::instance_wide("dev", i, Roles::of(&[Role::Reader]));
    let token = f.svc.token_for(&p, 60).unwrap().access_token;
    let ctx = authenticate(&f.svc, &token, i).await.unwrap();
    assert_eq!(ctx.principal, p);
}
