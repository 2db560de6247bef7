//! The clock stepped forward and back (NTP, an operator, a VM restored from a snapshot):
//! tokens, the 30 s and 4 h lifecycle rules, rotation policies and job leases stay safe.
//! A step back never lets a rule be skipped; a step forward only makes time pass sooner.

use super::*;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

#[tokio::test]
async fn tokens_and_lifecycle_rules_hold_when_the_clock_jumps() {
    let f = fixture().await;
    let i = f.instance().await;
    let c = f.ctx(i, &[Role::Manager, Role::KeyPurge]).await;
    let id = f.root_id(&c, "k").await;

    // A token issued now: a step back keeps it valid (its expiry is further away), a step
    // past its expiry refuses it.
    let token = f
        .svc
        .token_for(
            &Principal::instance_wide("u", i, Roles::of(&[Role::Reader])),
            600,
        )
        .unwrap()
        .access_token;
    let auth = |t: &str| {
        let svc = Arc::clone(&f.svc);
        let t = t.to_string();
        async move {
            svc.authenticate(
                Some(&format!("Bearer {t}")),
                Some(&i.to_string()),
                "c".into(),
                Action::SecretsList,
            )
            .await
        }
    };
    f.clock.jump(-2 * HOUR);
    auth(&token).await.unwrap();
    f.clock.jump(2 * HOUR + 601);
    assert_eq!(
        auth(&token).await.unwrap_err().kind,
        ErrorKind::Unauthenticated
    );
    f.clock.jump(-601);
    let c = f.ctx(i, &[Role::Manager, Role::KeyPurge]).await;

    // Disable, then the clock steps back an hour: enabling stays refused (30 s after the
    // disable, by the clock that recorded it), and is allowed 30 s after that time.
    f.svc.disable(&c, &id).await.unwrap();
    f.clock.jump(-HOUR);
    assert_eq!(kind(f.svc.enable(&c, &id).await), ErrorKind::TooEarly);
    f.clock.jump(HOUR + 31);
    f.svc.enable(&c, &id).await.unwrap();

    // Delete, step back: restore and purge stay refused; the 4 h purge rule counts from
    // the deletion, so a step back then forward to 4 h after it purges once.
    f.svc.delete(&c, &id, true).await.unwrap();
    f.clock.jump(-DAY);
    assert_eq!(kind(f.svc.restore(&c, &id).await), ErrorKind::TooEarly);
    assert_eq!(kind(f.svc.purge(&c, &id).await), ErrorKind::TooEarly);
    f.clock.jump(DAY + 3 * HOUR);
    assert_eq!(kind(f.svc.purge(&c, &id).await), ErrorKind::TooEarly);
    f.clock.jump(HOUR + 1);
    let c = f.ctx(i, &[Role::Manager, Role::KeyPurge]).await;
    f.svc.purge(&c, &id).await.unwrap();
    assert_eq!(kind(f.svc.get_key(&c, &id).await), ErrorKind::KeyNotFound);
}

#[tokio::test]
async fn rotation_policies_and_leases_hold_when_the_clock_jumps() {
    let (f, i, c) = with_manager().await;
    let id = f.root_id(&c, "r").await;
    f.svc
        .put_key_policies(
            &c,
            &id,
            Some(RotationChange {
                enabled: Some(true),
                interval_month: Some(1),
            }),
            None,
        )
        .await
        .unwrap();
    // Forward past the interval: one rotation. Back a month: nothing is due, and forward
    // again to where it was: still nothing (the rotation is dated by the later clock).
    f.clock.jump(31 * DAY);
    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 1);
    f.clock.jump(-31 * DAY);
    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 0);
    f.clock.jump(31 * DAY);
    assert_eq!(f.svc.rotate_due_keys().await.unwrap(), 0, "rotated once");
    let c = f.ctx(i, &[Role::Manager]).await;
    let (versions, _) = f
        .svc
        .key_versions(
            &c,
            &id,
            Page {
                limit: 10,
                offset: 0,
            },
            true,
        )
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);

    // A lease taken now by node a: a step back does not free it for node b; past its end
    // (by the clock that took it) b takes it, and a does not take it back.
    let store = &f.store;
    let now = || f.svc.now();
    assert!(store
        .claim_job("job", "a", now(), HOUR * 1000)
        .await
        .unwrap());
    f.clock.jump(-2 * HOUR);
    assert!(!store
        .claim_job("job", "b", now(), HOUR * 1000)
        .await
        .unwrap());
    f.clock.jump(3 * HOUR + 1);
    assert!(store
        .claim_job("job", "b", now(), HOUR * 1000)
        .await
        .unwrap());
    assert!(!store
        .claim_job("job", "a", now(), HOUR * 1000)
        .await
        .unwrap());
}
