//! Service behaviour with a real SQLite store and an adjustable clock (no sleeping).

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_keystore::{KeyFilter, Page};
use strongroom_keystore_sqlite::SqliteStore;
use strongroom_model::{KeyKind, KeyState, Role, Roles};
use zeroize::Zeroizing;

use super::*;

use crate::testing::{MemVault, TestNode};

struct Fixture {
    svc: Arc<Service>,
    clock: Arc<OffsetClock>,
    store: Arc<dyn KeyStore>,
    vault: Arc<MemVault>,
    _node: TestNode,
}

const AUDIT_KEY: [u8; 32] = crate::testing::AUDIT_KEY;

async fn fixture() -> Fixture {
    fixture_with(true).await
}

/// A fixture with one instance, and a Manager of it.
async fn with_manager() -> (Fixture, InstanceId, Ctx) {
    let f = fixture().await;
    let i = f.instance().await;
    let c = f.ctx(i, &[Role::Manager]).await;
    (f, i, c)
}

/// The service configuration of the tests' fixtures.
fn test_config(audit_sync_all: bool) -> ServiceConfig {
    ServiceConfig {
        key_cache_capacity: 4,
        token_ttl_secs: 3600,
        // Deterministic tests read the log right after a call.
        audit_sync_all,
        max_keys_per_instance: Some(12),
        rate_limit_per_instance: None,
        dev: true,
        zone: None,
        region: None,
        ..ServiceConfig::default()
    }
}

async fn fixture_with(audit_sync_all: bool) -> Fixture {
    fixture_with_config(test_config(audit_sync_all)).await
}

async fn fixture_with_config(config: ServiceConfig) -> Fixture {
    fixture_of(TestNode::in_memory(config).await)
}

/// A fixture over SQLite and aws-lc, as a node runs: its keystore calls wait on a database,
/// so concurrent calls interleave where the in-memory keystore runs each to its end.
async fn node_fixture() -> Fixture {
    fixture_of(TestNode::start(test_config(true)).await)
}

fn fixture_of(node: TestNode) -> Fixture {
    Fixture {
        svc: Arc::clone(&node.svc),
        clock: Arc::clone(&node.clock),
        store: Arc::clone(&node.store),
        vault: Arc::clone(&node.vault),
        _node: node,
    }
}

impl Fixture {
    async fn admin(&self) -> AdminCtx {
        self.svc
            .authenticate_admin(
                Some("Bearer admin-secret"),
                "c".into(),
                Action::AdminInstancesList,
            )
            .await
            .unwrap()
    }
    async fn instance(&self) -> InstanceId {
        let a = self.admin().await;
        self.svc
            .create_instance(
                &a,
                &format!("i-{}", InstanceId::random()),
                UnitLayout::dev(),
            )
            .await
            .unwrap()
            .id
    }
    async fn ctx(&self, instance: InstanceId, roles: &[Role]) -> Ctx {
        self.ctx_named(instance, &format!("user-{}", roles.len()), roles)
            .await
    }
    /// The context of a request with bearer `token` naming `instance`.
    async fn authenticate(&self, token: &str, instance: InstanceId) -> Result<Ctx> {
        authenticate(&self.svc, token, instance).await
    }
    /// Creates a root key named `name` and returns its id.
    async fn root_id(&self, c: &Ctx, name: &str) -> String {
        self.svc
            .create_key(c, root(name))
            .await
            .unwrap()
            .record
            .id
            .to_string()
    }
    /// A caller named `who` with `roles` over the whole instance.
    async fn ctx_named(&self, instance: InstanceId, who: &str, roles: &[Role]) -> Ctx {
        let p = Principal::instance_wide(who, instance, Roles::of(roles));
        let token = self.svc.token_for(&p, 600).unwrap().access_token;
        self.svc
            .authenticate(
                Some(&format!("Bearer {token}")),
                Some(&instance.to_string()),
                "corr".into(),
                Action::SecretsList,
            )
            .await
            .unwrap()
    }
}

/// The context of a request to `svc` with bearer `token` naming `instance`.
async fn authenticate(svc: &Service, token: &str, instance: InstanceId) -> Result<Ctx> {
    svc.authenticate(
        Some(token),
        Some(&instance.to_string()),
        "c".into(),
        Action::SecretsList,
    )
    .await
}

fn root(name: &str) -> CreateKey {
    CreateKey::generated(name, KeyKind::Root)
}

fn kind(r: Result<impl Sized>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind,
    }
}

#[tokio::test]
async fn wrap_rotate_unwrap_returns_rewrapped_ciphertext() {
    let (f, _, c) = with_manager().await;
    let k = f.svc.create_key(&c, root("r")).await.unwrap().record;
    assert_eq!(
        k.current_version.0, k.id.0,
        "first version id equals key id"
    );
    let aad = vec!["ctx".to_string()];
    let w = f.svc.wrap(&c, &k.id.to_string(), None, &aad).await.unwrap();
    let dek = w.generated.clone().unwrap();
    assert_eq!(dek.len(), 32);
    let v2 = f
        .svc
        .rotate(&c, &k.id.to_string(), None, None)
        .await
        .unwrap();
    assert_ne!(v2.id, w.key_version.id);
    let u = f
        .svc
        .unwrap(&c, &k.id.to_string(), &w.ciphertext, &aad)
        .await
        .unwrap();
    assert_eq!(u.plaintext, dek);
    assert_eq!(u.key_version.id, w.key_version.id);
    let (re_ct, re_v) = u.rewrapped.expect("old-version ciphertext is rewrapped");
    assert_eq!(re_v.id, v2.id);
    let u2 = f
        .svc
        .unwrap(&c, &k.id.to_string(), &re_ct, &aad)
        .await
        .unwrap();
    assert_eq!(u2.plaintext, dek);
    assert!(u2.rewrapped.is_none());
    let rw = f
        .svc
        .rewrap(&c, &k.id.to_string(), &w.ciphertext, &aad)
        .await
        .unwrap();
    assert_eq!(
        (rw.key_version.id, rw.rewrapped_key_version.id),
        (w.key_version.id, v2.id)
    );
    assert_eq!(
        kind(f.svc.rotate(&c, &k.id.to_string(), None, None).await),
        ErrorKind::RotationNotPermitted
    );
    f.clock.advance(3601);
    f.svc
        .rotate(&c, &k.id.to_string(), None, None)
        .await
        .unwrap();
    let (versions, total) = f
        .svc
        .key_versions(
            &c,
            &k.id.to_string(),
            Page {
                limit: 10,
                offset: 0,
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(versions[2].id.0, k.id.0);
    // wrong AAD, tampering
    assert_eq!(
        kind(
            f.svc
                .unwrap(&c, &k.id.to_string(), &w.ciphertext, &[])
                .await
        ),
        ErrorKind::InvalidField
    );
    let mut t = w.ciphertext.clone();
    *t.last_mut().unwrap() ^= 1;
    assert_eq!(
        kind(f.svc.unwrap(&c, &k.id.to_string(), &t, &aad).await),
        ErrorKind::InvalidField
    );
}

#[tokio::test]
async fn lifecycle_timing_rules_with_injected_clock() {
    let f = fixture().await;
    let i = f.instance().await;
    let c = f.ctx(i, &[Role::Manager, Role::KeyPurge]).await;
    let id = f.root_id(&c, "r").await;
    f.svc.disable(&c, &id).await.unwrap();
    assert_eq!(
        kind(f.svc.wrap(&c, &id, None, &[]).await),
        ErrorKind::InvalidKeyState
    );
    assert_eq!(
        kind(f.svc.disable(&c, &id).await),
        ErrorKind::InvalidKeyState
    );
    assert_eq!(kind(f.svc.enable(&c, &id).await), ErrorKind::TooEarly);
    f.clock.advance(31);
    f.svc.enable(&c, &id).await.unwrap();
    f.svc.wrap(&c, &id, None, &[]).await.unwrap();

    let deleted = f.svc.delete(&c, &id, false).await.unwrap();
    assert_eq!(deleted.state, KeyState::Destroyed);
    assert_eq!(
        kind(f.svc.delete(&c, &id, false).await),
        ErrorKind::KeyDeleted
    );
    assert_eq!(
        kind(f.svc.wrap(&c, &id, None, &[]).await),
        ErrorKind::InvalidKeyState
    );
    assert_eq!(kind(f.svc.restore(&c, &id).await), ErrorKind::TooEarly);
    f.clock.advance(31);
    assert_eq!(
        f.svc.restore(&c, &id).await.unwrap().state,
        KeyState::Active
    );
    f.svc.delete(&c, &id, true).await.unwrap();
    assert_eq!(kind(f.svc.purge(&c, &id).await), ErrorKind::TooEarly);
    f.clock.advance(4 * 3600);
    f.svc.purge(&c, &id).await.unwrap();
    assert_eq!(kind(f.svc.get_key(&c, &id).await), ErrorKind::KeyNotFound);

    let late = f.root_id(&c, "late").await;
    f.svc.delete(&c, &late, false).await.unwrap();
    f.clock.advance(31 * 86_400);
    assert_eq!(
        kind(f.svc.restore(&c, &late).await),
        ErrorKind::RestoreExpired
    );
}

#[tokio::test]
async fn expiration_deactivates_wrap_but_not_unwrap() {
    let (f, _, c) = with_manager().await;
    let mut req = root("exp");
    req.expiration = Some(f.svc.now().plus_secs(60));
    let id = f
        .svc
        .create_key(&c, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    let w = f
        .svc
        .wrap(&c, &id, Some(Zeroizing::new(b"dek".to_vec())), &[])
        .await
        .unwrap();
    f.clock.advance(61);
    assert_eq!(
        f.svc.get_key_metadata(&c, &id).await.unwrap().state,
        KeyState::Deactivated
    );
    assert_eq!(
        kind(f.svc.wrap(&c, &id, None, &[]).await),
        ErrorKind::KeyExpired
    );
    assert_eq!(
        f.svc
            .unwrap(&c, &id, &w.ciphertext, &[])
            .await
            .unwrap()
            .plaintext
            .as_slice(),
        b"dek"
    );
    let mut past = root("past");
    past.expiration = Some(f.svc.now().plus_secs(-1));
    assert_eq!(
        kind(f.svc.create_key(&c, past).await),
        ErrorKind::InvalidField
    );
}

#[tokio::test]
async fn roles_are_least_privilege() {
    let (f, i, manager) = with_manager().await;
    let reader = f.ctx(i, &[Role::Reader]).await;
    let writer = f.ctx(i, &[Role::Writer]).await;
    let purger = f.ctx(i, &[Role::KeyPurge]).await;
    let id = f.root_id(&manager, "r").await;
    let w = f.svc.wrap(&reader, &id, None, &[]).await.unwrap();
    assert_eq!(
        kind(f.svc.unwrap(&reader, &id, &w.ciphertext, &[]).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.create_key(&reader, root("no")).await),
        ErrorKind::Forbidden
    );
    f.svc
        .unwrap(&writer, &id, &w.ciphertext, &[])
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.disable(&writer, &id).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.delete(&writer, &id, false).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            f.svc
                .list_keys(
                    &purger,
                    &Default::default(),
                    Page {
                        limit: 5,
                        offset: 0
                    }
                )
                .await
        ),
        ErrorKind::Forbidden
    );
    f.svc.delete(&manager, &id, false).await.unwrap();
    f.clock.advance(4 * 3600 + 1);
    assert_eq!(kind(f.svc.purge(&manager, &id).await), ErrorKind::Forbidden);
    f.svc.purge(&purger, &id).await.unwrap();
}

/// ReaderPlus (Key Protect's role for services that fetch a secret): a Reader that may also
/// read a standard key's payload, and nothing a Writer may do besides.
#[tokio::test]
async fn reader_plus_reads_standard_payloads_and_nothing_more() {
    let (f, i, manager) = with_manager().await;
    let reader = f.ctx(i, &[Role::Reader]).await;
    let plus = f.ctx(i, &[Role::ReaderPlus]).await;
    let mut req = root("secret");
    req.kind = KeyKind::Standard;
    req.payload = Some(zeroize::Zeroizing::new(b"s3cr3t-payload-bytes".to_vec()));
    let std_id = f
        .svc
        .create_key(&manager, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    let got = f.svc.get_key(&plus, &std_id).await.unwrap();
    assert_eq!(
        got.payload.as_deref().map(|p| p.as_slice()),
        Some(&b"s3cr3t-payload-bytes"[..])
    );
    assert_eq!(
        kind(f.svc.get_key(&reader, &std_id).await),
        ErrorKind::Forbidden
    );
    f.svc.get_key_metadata(&plus, &std_id).await.unwrap();
    let root_id = f.root_id(&manager, "r").await;
    let w = f.svc.wrap(&plus, &root_id, None, &[]).await.unwrap();
    assert_eq!(
        kind(f.svc.unwrap(&plus, &root_id, &w.ciphertext, &[]).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.create_key(&plus, root("no")).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(f.svc.disable(&plus, &root_id).await),
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn instances_are_isolated_and_tokens_checked() {
    let f = fixture().await;
    let a = f.instance().await;
    let b = f.instance().await;
    let ca = f.ctx(a, &[Role::Manager]).await;
    let cb = f.ctx(b, &[Role::Manager]).await;
    let mut req = root("r");
    req.aliases = vec!["shared".into()];
    let id = f
        .svc
        .create_key(&ca, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    assert_eq!(kind(f.svc.get_key(&cb, &id).await), ErrorKind::KeyNotFound);
    assert_eq!(
        kind(f.svc.get_key(&cb, "shared").await),
        ErrorKind::KeyNotFound
    );
    assert_eq!(
        f.svc
            .get_key(&ca, "shared")
            .await
            .unwrap()
            .record
            .id
            .to_string(),
        id
    );
    let w = f.svc.wrap(&ca, &id, None, &[]).await.unwrap();
    let other = f.root_id(&cb, "rb").await;
    assert_eq!(
        kind(f.svc.unwrap(&cb, &other, &w.ciphertext, &[]).await),
        ErrorKind::InvalidField
    );

    // A token for instance A used against instance B.
    let p = Principal::instance_wide("x", a, Roles::of(&[Role::Manager]));
    let token = f.svc.token_for(&p, 60).unwrap().access_token;
    let auth = format!("Bearer {token}");
    let r = f.authenticate(&auth, b).await;
    assert_eq!(kind(r), ErrorKind::Forbidden);
    assert_eq!(
        kind(
            f.svc
                .authenticate(None, Some(&a.to_string()), "c".into(), Action::SecretsList)
                .await
        ),
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        kind(
            f.svc
                .authenticate(
                    Some("Bearer junk"),
                    Some(&a.to_string()),
                    "c".into(),
                    Action::SecretsList
                )
                .await
        ),
        ErrorKind::MalformedToken
    );
    assert_eq!(
        kind(
            f.svc
                .authenticate(Some(&auth), Some("nope"), "c".into(), Action::SecretsList)
                .await
        ),
        ErrorKind::InvalidInstanceHeader
    );
    // Change a character inside the signature (the last base64 character of a 32-byte
    // HMAC carries unused low bits, so changing it can leave the signature intact).
    let mut forged: Vec<char> = token.chars().collect();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == 'A' { 'Q' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    assert_eq!(
        kind(f.authenticate(&forged, a).await),
        ErrorKind::Unauthenticated
    );
    f.clock.advance(61);
    assert_eq!(
        kind(f.authenticate(&auth, a).await),
        ErrorKind::Unauthenticated
    );
}

#[tokio::test]
async fn api_keys_exchange_for_tokens() {
    let f = fixture().await;
    let i = f.instance().await;
    let admin = f.admin().await;
    let created = f
        .svc
        .create_api_key(
            &admin,
            i,
            "ci",
            crate::Access::Roles(crate::Grant {
                roles: Roles::of(&[Role::Writer]),
                key_rings: None,
            }),
        )
        .await
        .unwrap();
    assert!(!format!("{created:?}").contains(created.api_key.rsplit('.').next().unwrap()));
    let t = f
        .svc
        .issue_token(&created.api_key, None, "c")
        .await
        .unwrap();
    let ctx = f.authenticate(&t.access_token, i).await.unwrap();
    assert_eq!(ctx.principal.roles, Roles::of(&[Role::Writer]));
    let mut wrong = created.api_key.clone();
    wrong.push('x');
    assert_eq!(
        kind(f.svc.issue_token(&wrong, None, "c").await),
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        kind(f.svc.issue_token("garbage", None, "c").await),
        ErrorKind::Unauthenticated
    );
    f.svc
        .delete_api_key(&admin, i, &created.record.id)
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.issue_token(&created.api_key, None, "c").await),
        ErrorKind::Unauthenticated
    );
    assert_eq!(
        kind(
            f.svc
                .authenticate_admin(Some("Bearer nope"), "c".into(), Action::AdminInstancesList)
                .await
        ),
        ErrorKind::Unauthenticated
    );
}

#[tokio::test]
async fn deleting_an_instance_is_refused_while_it_holds_keys_then_shreds() {
    let f = fixture().await;
    let i = f.instance().await;
    let admin = f.admin().await;
    let c = f.ctx(i, &[Role::Manager, Role::KeyPurge]).await;
    let id = f.root_id(&c, "r").await;
    assert_eq!(
        kind(f.svc.delete_instance(&admin, i).await),
        ErrorKind::InstanceNotEmpty
    );
    f.svc.delete(&c, &id, false).await.unwrap();
    assert_eq!(
        kind(f.svc.delete_instance(&admin, i).await),
        ErrorKind::InstanceNotEmpty
    );
    f.clock.advance(4 * 3600);
    f.svc.purge(&c, &id).await.unwrap();
    assert!(f.vault.instances().contains(&i));
    f.svc.delete_instance(&admin, i).await.unwrap();
    assert!(!f.vault.instances().contains(&i), "master key destroyed");
    assert_eq!(
        kind(f.svc.create_key(&c, root("after")).await),
        ErrorKind::UnitNotInitialized
    );
}

#[tokio::test]
async fn every_call_is_audited_and_the_chain_verifies() {
    let f = fixture().await;
    let i = f.instance().await;
    let c = f.ctx(i, &[Role::Reader]).await;
    let before = f.store.audit_head().await.unwrap().unwrap().0;
    let _ = f.svc.create_key(&c, root("denied")).await;
    let _ = f.svc.get_key_metadata(&c, "missing-alias").await;
    let _ = f
        .svc
        .authenticate(
            None,
            Some(&i.to_string()),
            "corr-x".into(),
            Action::SecretsList,
        )
        .await;
    let after = f.store.audit_head().await.unwrap().unwrap().0;
    assert_eq!(after - before, 3);
    let recs = f.store.read_audit(before + 1, 10).await.unwrap();
    assert_eq!(recs[0].outcome, "forbidden");
    assert_eq!(recs[0].action, "kms.secrets.create");
    assert_eq!(recs[1].outcome, "key_not_found");
    assert_eq!(
        (recs[2].principal.as_str(), recs[2].correlation_id.as_str()),
        ("anonymous", "corr-x")
    );
    let report = verify_chain(f.store.as_ref(), &AwsLcProvider, &AUDIT_KEY)
        .await
        .unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.records as i64, after);
    let bad = verify_chain(f.store.as_ref(), &AwsLcProvider, &[0u8; 32])
        .await
        .unwrap();
    assert!(
        bad.problem.is_some(),
        "a chain can't be verified (or forged) without the node audit key"
    );
}

#[tokio::test]
async fn standard_keys_return_payload_and_refuse_root_actions() {
    let (f, _, c) = with_manager().await;
    let req = CreateKey {
        description: Some("d".into()),
        aliases: vec!["std-alias".into()],
        payload: Some(Zeroizing::new(vec![3u8; 7500])),
        ..CreateKey::generated("std", KeyKind::Standard)
    };
    let k = f.svc.create_key(&c, req).await.unwrap();
    assert!(k.record.imported);
    let got = f.svc.get_key(&c, "std-alias").await.unwrap();
    assert_eq!(got.payload.unwrap().as_slice(), vec![3u8; 7500].as_slice());
    let id = k.record.id.to_string();
    assert_eq!(
        kind(f.svc.wrap(&c, &id, None, &[]).await),
        ErrorKind::RootKeyRequired
    );
    assert_eq!(
        kind(f.svc.disable(&c, &id).await),
        ErrorKind::RootKeyRequired
    );
    assert_eq!(
        kind(f.svc.rotate(&c, &id, None, None).await),
        ErrorKind::RootKeyRequired
    );
    for bad in [vec![0u8; 7501], vec![]] {
        let mut r = root("x");
        r.kind = KeyKind::Standard;
        r.payload = Some(Zeroizing::new(bad));
        assert_eq!(kind(f.svc.create_key(&c, r).await), ErrorKind::InvalidField);
    }
    let mut r = root("bad-root");
    r.payload = Some(Zeroizing::new(vec![0u8; 20]));
    assert_eq!(kind(f.svc.create_key(&c, r).await), ErrorKind::InvalidField);
    let mut dup = root("dup");
    dup.aliases = vec!["std-alias".into()];
    assert_eq!(kind(f.svc.create_key(&c, dup).await), ErrorKind::AliasTaken);
    for a in [
        "x",
        "wrap",
        "9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01",
        "bad alias",
    ] {
        let mut r = root("a");
        r.aliases = vec![a.into()];
        assert_eq!(
            kind(f.svc.create_key(&c, r).await),
            ErrorKind::InvalidField,
            "alias {a}"
        );
    }
}

#[tokio::test]
async fn imported_root_keys_rotate_only_with_payload() {
    let (f, _, c) = with_manager().await;
    for len in [16usize, 24, 32] {
        let mut r = root("imp");
        r.payload = Some(Zeroizing::new(vec![len as u8; len]));
        let k = f.svc.create_key(&c, r).await.unwrap().record;
        assert_eq!(k.bits as usize, len * 8);
        let id = k.id.to_string();
        let w = f
            .svc
            .wrap(&c, &id, Some(Zeroizing::new(vec![1; 32])), &[])
            .await
            .unwrap();
        assert_eq!(
            kind(f.svc.rotate(&c, &id, None, None).await),
            ErrorKind::PayloadRequired
        );
        f.svc
            .rotate(&c, &id, Some(Zeroizing::new(vec![9; 32])), None)
            .await
            .unwrap();
        let u = f.svc.unwrap(&c, &id, &w.ciphertext, &[]).await.unwrap();
        assert_eq!(u.plaintext.as_slice(), &[1; 32]);
        assert!(u.rewrapped.is_some());
    }
}

#[tokio::test]
async fn cache_stays_bounded_and_restart_keeps_keys() {
    let (f, _, c) = with_manager().await;
    let mut wraps = Vec::new();
    for n in 0..10 {
        let id = f
            .svc
            .create_key(&c, root(&format!("k{n}")))
            .await
            .unwrap()
            .record
            .id
            .to_string();
        let w = f.svc.wrap(&c, &id, None, &[]).await.unwrap();
        wraps.push((id, w));
    }
    assert!(f.svc.cached_keys() <= 4);
    // A second service on the same store and vault (a restart) unwraps everything.
    let secrets = NodeSecrets {
        token_key: [1; 32],
        audit_key: AUDIT_KEY,
        admin_token: "admin-secret".into(),
    };
    let (svc2, _t) = Service::start(
        Arc::clone(&f.store),
        Arc::new(AwsLcProvider),
        f.vault.clone(),
        f.clock.clone(),
        secrets,
        ServiceConfig::default(),
    )
    .await
    .unwrap();
    for (id, w) in wraps {
        let u = svc2.unwrap(&c, &id, &w.ciphertext, &[]).await.unwrap();
        assert_eq!(u.plaintext, w.generated.unwrap());
    }
}

#[tokio::test]
async fn mutations_wait_for_their_audit_record_and_reads_are_queued() {
    let f = fixture_with(false).await;
    let i = f.instance().await;
    let c = f.ctx(i, &[Role::Manager]).await;
    let id = f.root_id(&c, "r").await;
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let last = f.store.read_audit(head, 1).await.unwrap();
    assert_eq!(
        last[0].action, "kms.secrets.create",
        "a change is committed before its response"
    );
    for _ in 0..20 {
        f.svc.wrap(&c, &id, None, &[]).await.unwrap();
    }
    let mut seen = 0;
    for _ in 0..200 {
        seen = f.store.audit_head().await.unwrap().unwrap().0 - head;
        if seen == 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(seen, 20, "queued records are committed shortly after");
    let report = verify_chain(f.store.as_ref(), &AwsLcProvider, &AUDIT_KEY)
        .await
        .unwrap();
    assert_eq!(report.problem, None);
}

#[tokio::test]
async fn aliases_rings_and_moves() {
    let (f, _, c) = with_manager().await;
    let id = f.root_id(&c, "r").await;
    for n in 0..5 {
        f.svc
            .create_key_alias(&c, &id, &format!("alias-{n}"))
            .await
            .unwrap();
    }
    assert_eq!(
        kind(f.svc.create_key_alias(&c, &id, "alias-6").await),
        ErrorKind::LimitReached
    );
    assert_eq!(
        kind(f.svc.create_key_alias(&c, &id, "alias-1").await),
        ErrorKind::AliasTaken
    );
    let other = f.root_id(&c, "o").await;
    assert_eq!(
        kind(f.svc.create_key_alias(&c, &other, "alias-1").await),
        ErrorKind::AliasTaken
    );
    assert_eq!(
        kind(
            f.svc
                .create_key_alias(&c, &other, "9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01")
                .await
        ),
        ErrorKind::InvalidField
    );
    f.svc.wrap(&c, "alias-3", None, &[]).await.unwrap();
    f.svc.delete_key_alias(&c, &id, "alias-3").await.unwrap();
    assert_eq!(
        kind(f.svc.wrap(&c, "alias-3", None, &[]).await),
        ErrorKind::KeyNotFound
    );
    f.svc.create_key_alias(&c, &other, "alias-3").await.unwrap();
    assert_eq!(
        f.svc
            .get_key_metadata(&c, "alias-3")
            .await
            .unwrap()
            .id
            .to_string(),
        other
    );

    // rings
    assert_eq!(
        kind(f.svc.create_key_ring(&c, "x").await),
        ErrorKind::InvalidField
    );
    f.svc.create_key_ring(&c, "payments").await.unwrap();
    assert_eq!(
        kind(f.svc.create_key_ring(&c, "payments").await),
        ErrorKind::AlreadyExists
    );
    let mut req = root("in-ring");
    req.key_ring = Some("payments".into());
    let in_ring = f.svc.create_key(&c, req).await.unwrap().record;
    assert_eq!(in_ring.key_ring, "payments");
    let mut bad = root("nowhere");
    bad.key_ring = Some("missing".into());
    assert_eq!(
        kind(f.svc.create_key(&c, bad).await),
        ErrorKind::KeyRingNotFound
    );
    assert_eq!(
        kind(f.svc.delete_key_ring(&c, "payments", false).await),
        ErrorKind::KeyRingNotEmpty
    );
    let moved = f
        .svc
        .move_key(&c, &in_ring.id.to_string(), Some("payments"), "default")
        .await
        .unwrap();
    assert_eq!(moved.key_ring, "default");
    assert_eq!(
        kind(
            f.svc
                .move_key(&c, &in_ring.id.to_string(), Some("payments"), "default")
                .await
        ),
        ErrorKind::InvalidField
    );
    f.svc.delete_key_ring(&c, "payments", false).await.unwrap();
    let rings: Vec<String> = f
        .svc
        .list_key_rings(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rings, vec!["default".to_string()]);
}

#[tokio::test]
async fn rotation_policy_scheduler_with_injected_clock() {
    let (f, i, c) = with_manager().await;
    let id = f.root_id(&c, "auto").await;
    let idle = f.root_id(&c, "idle").await;
    let mut imp = root("imported");
    imp.payload = Some(Zeroizing::new(vec![5; 32]));
    let imported = f
        .svc
        .create_key(&c, imp)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    let policy = |m: i64| {
        Some(RotationChange {
            enabled: Some(true),
            interval_month: Some(m),
        })
    };
    for bad in [0, 13, -1] {
        assert_eq!(
            kind(f.svc.put_key_policies(&c, &id, policy(bad), None).await),
            ErrorKind::InvalidField,
            "interval {bad}"
        );
    }
    assert_eq!(
        kind(f.svc.put_key_policies(&c, &imported, policy(1), None).await),
        ErrorKind::InvalidField
    );
    f.svc
        .put_key_policies(&c, &id, policy(2), None)
        .await
        .unwrap();
    // Enabling again without an interval keeps the stored one.
    let (_, p) = f
        .svc
        .put_key_policies(
            &c,
            &id,
            Some(RotationChange {
                enabled: Some(true),
                interval_month: None,
            }),
            None,
        )
        .await
        .unwrap();
    assert_eq!(p.rotation.unwrap().interval_month, 2);
    let w = f.svc.wrap(&c, &id, None, &[]).await.unwrap();

    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 0, "not due yet");
    f.clock.advance(59 * 86_400);
    assert_eq!(
        f.svc.rotate_due_keys().await.unwrap(),
        0,
        "59 days < 2 months of 30 days"
    );
    f.clock.advance(86_400 + 1);
    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 1);
    assert_eq!(
        f.svc.rotate_due_keys().await.unwrap(),
        0,
        "rotated once, due again in 60 days"
    );
    let c = f.ctx(i, &[Role::Manager]).await; // the earlier token expired with the clock move
    let (versions, _) = f
        .svc
        .key_versions(
            &c,
            &id,
            Page {
                limit: 10,
                offset: 0,
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    let (idle_versions, _) = f
        .svc
        .key_versions(
            &c,
            &idle,
            Page {
                limit: 10,
                offset: 0,
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        idle_versions.len(),
        1,
        "keys without a policy are left alone"
    );
    assert!(f
        .svc
        .unwrap(&c, &id, &w.ciphertext, &[])
        .await
        .unwrap()
        .rewrapped
        .is_some());
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let recs = f.store.read_audit(head - 20, 30).await.unwrap();
    assert!(recs.iter().any(|r| r.principal == "scheduler"
        && r.action == "kms.secrets.rotate"
        && r.outcome == "success"));
    // Disabled policies stop the rotation.
    f.svc
        .put_key_policies(
            &c,
            &id,
            Some(RotationChange {
                enabled: Some(false),
                interval_month: None,
            }),
            None,
        )
        .await
        .unwrap();
    f.clock.advance(61 * 86_400);
    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 0);
}

#[tokio::test]
async fn dual_authorization_delete_needs_a_second_user() {
    let (f, i, alice) = with_manager().await;
    let p = Principal::instance_wide("bob", i, Roles::of(&[Role::Manager]));
    let token = f.svc.token_for(&p, 30 * 86_400).unwrap().access_token;
    let bob = f.authenticate(&token, i).await.unwrap();
    let id = f.root_id(&alice, "guarded").await;
    assert_eq!(
        kind(f.svc.set_key_for_deletion(&alice, &id).await),
        ErrorKind::NotDualAuth
    );
    f.svc
        .put_key_policies(&alice, &id, None, Some(true))
        .await
        .unwrap();
    assert_eq!(
        kind(f.svc.put_key_policies(&alice, &id, None, Some(false)).await),
        ErrorKind::InvalidField,
        "cannot be turned off"
    );
    assert_eq!(
        kind(f.svc.delete(&alice, &id, false).await),
        ErrorKind::AuthorizationsNotMet
    );
    f.svc.set_key_for_deletion(&alice, &id).await.unwrap();
    assert_eq!(
        kind(f.svc.delete(&alice, &id, false).await),
        ErrorKind::AuthorizationsNotMet,
        "not by the same user"
    );
    f.svc.unset_key_for_deletion(&bob, &id).await.unwrap();
    assert_eq!(
        kind(f.svc.delete(&bob, &id, false).await),
        ErrorKind::AuthorizationsNotMet,
        "authorization withdrawn"
    );
    f.svc.set_key_for_deletion(&alice, &id).await.unwrap();
    f.clock.advance(8 * 86_400);
    assert_eq!(
        kind(f.svc.delete(&bob, &id, false).await),
        ErrorKind::AuthorizationsNotMet,
        "expired after 7 days"
    );
    let alice = f.ctx(i, &[Role::Manager]).await;
    f.svc.set_key_for_deletion(&alice, &id).await.unwrap();
    let deleted = f.svc.delete(&bob, &id, false).await.unwrap();
    assert_eq!(deleted.state, KeyState::Destroyed);
}

#[tokio::test]
async fn expired_keys_are_deactivated_by_the_scheduler() {
    let (f, _, c) = with_manager().await;
    let mut req = root("short-lived");
    req.expiration = Some(f.svc.now().plus_secs(100));
    let id = f
        .svc
        .create_key(&c, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    let lasting = f.root_id(&c, "lasting").await;
    assert_eq!(f.svc.deactivate_expired_keys().await.unwrap(), 0);
    f.clock.advance(101);
    assert_eq!(f.svc.deactivate_expired_keys().await.unwrap(), 1);
    assert_eq!(f.svc.deactivate_expired_keys().await.unwrap(), 0);
    let states = |s: KeyState| KeyFilter {
        states: vec![s],
        extractable: None,
        key_ring: None,
        within_rings: None,
    };
    assert_eq!(
        f.svc
            .count_keys(&c, &states(KeyState::Deactivated))
            .await
            .unwrap(),
        1,
        "lists and counts agree now"
    );
    assert_eq!(
        f.svc.get_key_metadata(&c, &lasting).await.unwrap().state,
        KeyState::Active
    );
    let head = f.store.audit_head().await.unwrap().unwrap().0;
    let recs = f.store.read_audit(head - 5, 10).await.unwrap();
    assert!(recs
        .iter()
        .any(|r| r.action == "kms.secrets.expire" && r.key.as_deref() == Some(id.as_str())));
}

#[tokio::test]
async fn the_instance_key_limit_is_enforced() {
    let (f, _, c) = with_manager().await;
    for n in 0..12 {
        f.svc.create_key(&c, root(&format!("k{n}"))).await.unwrap();
    }
    assert_eq!(
        kind(f.svc.create_key(&c, root("one-too-many")).await),
        ErrorKind::LimitReached
    );
}

#[tokio::test]
async fn the_per_instance_rate_limit_refuses_bursts() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn KeyStore> =
        Arc::new(SqliteStore::open(&dir.path().join("ks.db")).await.unwrap());
    let secrets = NodeSecrets {
        token_key: [1; 32],
        audit_key: AUDIT_KEY,
        admin_token: "admin-secret".into(),
    };
    let config = ServiceConfig {
        rate_limit_per_instance: Some(5),
        audit_sync_all: true,
        dev: true,
        ..ServiceConfig::default()
    };
    let (svc, _t) = Service::start(
        store,
        Arc::new(AwsLcProvider),
        Arc::new(MemVault::default()),
        Arc::new(OffsetClock::default()),
        secrets,
        config,
    )
    .await
    .unwrap();
    let admin = svc
        .authenticate_admin(
            Some("Bearer admin-secret"),
            "c".into(),
            Action::AdminInstancesList,
        )
        .await
        .unwrap();
    let i = svc
        .create_instance(&admin, "limited", UnitLayout::dev())
        .await
        .unwrap()
        .id;
    let p = Principal::instance_wide("u", i, Roles::of(&[Role::Reader]));
    let token = svc.token_for(&p, 60).unwrap().access_token;
    let mut allowed = 0;
    let mut limited = 0;
    for _ in 0..30 {
        match svc
            .authenticate(
                Some(&token),
                Some(&i.to_string()),
                "c".into(),
                Action::SecretsList,
            )
            .await
        {
            Ok(_) => allowed += 1,
            Err(e) if e.kind == ErrorKind::RateLimited => limited += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        (10..=11).contains(&allowed),
        "a burst of twice the rate passes ({allowed})"
    );
    assert_eq!(allowed + limited, 30);
}
mod clock_jumps;
mod credentials;
mod kmip;
mod placement;
mod secure_import;
mod service_ids;
mod sorted_lists;
mod state_model;
mod token_spaces;
