//! Key Protect's state table as a model, and the service checked against it: random
//! sequences of lifecycle actions, key operations and clock moves on one root key, where
//! every action the service allows or refuses must be allowed or refused by the model, and
//! the state the service reports must be the model's.

use proptest::prelude::*;

use super::*;

const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy)]
enum Op {
    Wrap,
    Unwrap,
    Rewrap,
    Rotate,
    Disable,
    Enable,
    Delete,
    Restore,
    Purge,
    /// The clock moves forward this many seconds.
    Advance(i64),
    /// The scheduler runs: expiration and the automatic purge.
    Jobs,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Wrap),
        Just(Op::Unwrap),
        Just(Op::Rewrap),
        Just(Op::Rotate),
        Just(Op::Disable),
        Just(Op::Enable),
        Just(Op::Delete),
        Just(Op::Restore),
        Just(Op::Purge),
        Just(Op::Jobs),
        prop::sample::select(vec![1, 29, 31, 3_601, 4 * 3_600 + 1, 31 * DAY, 91 * DAY])
            .prop_map(Op::Advance),
    ]
}

/// The table of `spec/keyprotect-api.md` §2.11, written independently of the service.
#[derive(Debug)]
struct Model {
    /// `None` once purged.
    state: Option<KeyState>,
    expiration: Option<i64>,
    now: i64,
    changed_at: i64,
    deleted_at: i64,
    last_rotated: Option<i64>,
}

impl Model {
    fn effective(&self) -> Option<KeyState> {
        match (self.state, self.expiration) {
            (Some(KeyState::Active | KeyState::Suspended), Some(e)) if e <= self.now => {
                Some(KeyState::Deactivated)
            }
            (s, _) => s,
        }
    }

    fn expired(&self) -> bool {
        self.expiration.is_some_and(|e| e <= self.now)
    }

    /// Whether the action is allowed; if so, the model moves.
    fn apply(&mut self, op: Op) -> bool {
        use KeyState::*;
        let Some(eff) = self.effective() else {
            return matches!(op, Op::Advance(_) | Op::Jobs);
        };
        let now = self.now;
        match op {
            Op::Wrap => eff == Active,
            Op::Unwrap | Op::Rewrap => matches!(eff, Active | Deactivated),
            Op::Rotate => {
                let ok = eff == Active && self.last_rotated.is_none_or(|t| now - t >= 3_600);
                if ok {
                    self.last_rotated = Some(now);
                }
                ok
            }
            Op::Disable => self.moves(eff == Active, Suspended),
            Op::Enable => self.moves(eff == Suspended && now - self.changed_at >= 30, Active),
            Op::Delete => {
                let ok = eff != Destroyed;
                if ok {
                    self.deleted_at = now;
                }
                self.moves(ok, Destroyed)
            }
            Op::Restore => {
                let since = now - self.deleted_at;
                let ok = eff == Destroyed && (30..=30 * DAY).contains(&since) && !self.expired();
                self.moves(ok, Active)
            }
            Op::Purge => {
                let ok = eff == Destroyed && now - self.deleted_at >= 4 * 3_600;
                if ok {
                    self.state = None;
                }
                ok
            }
            Op::Advance(secs) => {
                self.now += secs;
                true
            }
            Op::Jobs => {
                if self.state == Some(Destroyed) && now - self.deleted_at >= 90 * DAY {
                    self.state = None;
                } else if self.effective() == Some(Deactivated) {
                    self.state = Some(Deactivated);
                }
                true
            }
        }
    }

    fn moves(&mut self, allowed: bool, to: KeyState) -> bool {
        if allowed {
            self.state = Some(to);
            self.changed_at = self.now;
        }
        allowed
    }
}

async fn run(expires_in: Option<i64>, ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let f = fixture().await;
    let i = f.instance().await;
    let roles = [Role::Manager, Role::KeyPurge];
    let c = f.ctx(i, &roles).await;
    let mut req = root("modelled");
    req.expiration = expires_in.map(|s| f.svc.now().plus_secs(s));
    let id = f
        .svc
        .create_key(&c, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    let wrapped = f.svc.wrap(&c, &id, None, &[]).await.unwrap().ciphertext;
    let mut model = Model {
        state: Some(KeyState::Active),
        expiration: expires_in,
        now: 0,
        changed_at: 0,
        deleted_at: 0,
        last_rotated: None,
    };
    for (step, op) in ops.into_iter().enumerate() {
        let c = f.ctx(i, &roles).await; // a fresh token after clock moves
        let got = match op {
            Op::Wrap => f.svc.wrap(&c, &id, None, &[]).await.map(drop),
            Op::Unwrap => f.svc.unwrap(&c, &id, &wrapped, &[]).await.map(drop),
            Op::Rewrap => f.svc.rewrap(&c, &id, &wrapped, &[]).await.map(drop),
            Op::Rotate => f.svc.rotate(&c, &id, None, None).await.map(drop),
            Op::Disable => f.svc.disable(&c, &id).await,
            Op::Enable => f.svc.enable(&c, &id).await,
            Op::Delete => f.svc.delete(&c, &id, false).await.map(drop),
            Op::Restore => f.svc.restore(&c, &id).await.map(drop),
            Op::Purge => f.svc.purge(&c, &id).await.map(drop),
            Op::Advance(secs) => {
                f.clock.advance(secs);
                Ok(())
            }
            Op::Jobs => {
                f.svc.deactivate_expired_keys().await.unwrap();
                f.svc.purge_due_keys().await.unwrap();
                Ok(())
            }
        };
        let want = model.apply(op);
        prop_assert_eq!(
            got.is_ok(),
            want,
            "step {} {:?}: service answered {:?}, model {}",
            step,
            op,
            got.as_ref().err().map(|e| e.kind),
            if want { "allows" } else { "refuses" }
        );
        let state = f.svc.get_key_metadata(&c, &id).await.map(|k| k.state);
        prop_assert_eq!(
            state.as_ref().ok().copied(),
            model.effective(),
            "state after step {} {:?}",
            step,
            op
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_transition_matches_key_protects_state_table(
        expires_in in prop::option::of(prop::sample::select(vec![100i64, 2 * 3_600, 40 * DAY])),
        ops in prop::collection::vec(op(), 1..24),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(expires_in, ops))?;
    }
}

/// The regression of the hostile-newcomer run: an expired root key was rotated (204, and a
/// new version appeared).
#[tokio::test]
async fn an_expired_root_key_cannot_be_rotated() {
    let (f, i, c) = with_manager().await;
    let mut req = root("expiring");
    req.expiration = Some(f.svc.now().plus_secs(60));
    let id = f
        .svc
        .create_key(&c, req)
        .await
        .unwrap()
        .record
        .id
        .to_string();
    f.clock.advance(61);
    let c = f.ctx(i, &[Role::Manager]).await;
    assert_eq!(
        kind(f.svc.rotate(&c, &id, None, None).await),
        ErrorKind::InvalidKeyState
    );
    assert_eq!(
        f.svc
            .key_versions(
                &c,
                &id,
                Page {
                    limit: 10,
                    offset: 0
                },
                true
            )
            .await
            .unwrap()
            .1,
        1,
        "no version was added"
    );
}
