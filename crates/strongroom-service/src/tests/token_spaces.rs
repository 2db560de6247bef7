//! Password-protected keystores of the PKCS#11 library's token objects (IBM's
//! authenticated keystores): the first proof protects an empty keystore, every call
//! without it is refused whatever the caller's role, and `C_InitToken` lifts it.

use super::*;
use crate::token_objects::{TokenSpace, AUTH_ID};
use strongroom_model::pkcs11::ckr;

const SPACE: &str = "f00db2f1-4421-4032-a505-465bedfa845b";
const PROOF: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [8; 32];

fn space(private: bool, proof: &[u8]) -> TokenSpace<'_> {
    TokenSpace {
        name: SPACE,
        private,
        proof,
    }
}

impl Fixture {
    async fn ids(&self, ctx: &Ctx, s: TokenSpace<'_>) -> Result<Vec<String>> {
        let objects = self.svc.token_objects(ctx, s).await?;
        Ok(objects.into_iter().map(|o| o.id).collect())
    }
}

fn pin_incorrect<T: std::fmt::Debug>(r: Result<T>) {
    assert_eq!(kind(r), ErrorKind::Pkcs11(ckr::PIN_INCORRECT));
}

#[tokio::test]
async fn the_first_proof_protects_an_empty_keystore_against_every_other_caller() {
    let f = fixture().await;
    let i = f.instance().await;
    let alice = f.ctx_named(i, "alice", &[Role::Writer]).await;
    let bob = f.ctx_named(i, "bob", &[Role::Writer]).await;
    let manager = f.ctx_named(i, "carol", &[Role::Manager]).await;
    let svc = &f.svc;

    let v = svc
        .put_token_object(&alice, space(true, &PROOF), "k1", b"sealed".to_vec(), 0)
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(f.ids(&alice, space(true, &PROOF)).await.unwrap(), ["k1"]);

    // Without the proof, or with another, nobody reads, writes or deletes: not another
    // Writer, not a Manager, not the caller who protected it.
    for who in [&alice, &bob, &manager] {
        for proof in [&[][..], &OTHER[..]] {
            pin_incorrect(f.ids(who, space(true, proof)).await);
            pin_incorrect(
                svc.put_token_object(who, space(true, proof), "k2", b"x".to_vec(), 0)
                    .await,
            );
            pin_incorrect(
                svc.put_token_object(who, space(true, proof), "k1", b"x".to_vec(), 1)
                    .await,
            );
            pin_incorrect(svc.delete_token_object(who, space(true, proof), "k1").await);
        }
    }
    // The refusal says which: no password given, or another one.
    let said = |r: Result<Vec<String>>| r.unwrap_err().message;
    assert!(said(f.ids(&bob, space(true, &[])).await).contains("give its password"));
    assert!(said(f.ids(&bob, space(true, &OTHER)).await).contains("is not this keystore's"));
    // The password decides, not the caller: another Writer with the proof gets in.
    assert_eq!(f.ids(&bob, space(true, &PROOF)).await.unwrap(), ["k1"]);
    let v = svc
        .put_token_object(&bob, space(true, &PROOF), "k1", b"sealed2".to_vec(), 1)
        .await
        .unwrap();
    assert_eq!(v, 2);

    // The verifier is no object a call can name, and proofs have one length.
    assert_eq!(
        kind(
            svc.delete_token_object(&alice, space(true, &PROOF), AUTH_ID)
                .await
        ),
        ErrorKind::InvalidField
    );
    assert_eq!(
        kind(
            svc.put_token_object(&alice, space(true, &PROOF), AUTH_ID, vec![0; 32], 1)
                .await
        ),
        ErrorKind::InvalidField
    );
    assert_eq!(
        kind(f.ids(&alice, space(true, &PROOF[..31])).await),
        ErrorKind::InvalidField
    );
    svc.delete_token_object(&alice, space(true, &PROOF), "k1")
        .await
        .unwrap();
    assert!(f.ids(&alice, space(true, &PROOF)).await.unwrap().is_empty());
    pin_incorrect(f.ids(&alice, space(true, &[])).await);
}

#[tokio::test]
async fn a_public_keystore_with_a_password_needs_it_from_readers_too() {
    let f = fixture().await;
    let i = f.instance().await;
    let writer = f.ctx_named(i, "w", &[Role::Writer]).await;
    let reader = f.ctx_named(i, "r", &[Role::Reader]).await;
    // A Reader's proof does not protect an empty keystore (that is a write): its Writers
    // are not locked out.
    assert!(f
        .ids(&reader, space(false, &OTHER))
        .await
        .unwrap()
        .is_empty());
    assert!(f.ids(&writer, space(false, &[])).await.unwrap().is_empty());
    f.svc
        .put_token_object(&writer, space(false, &PROOF), "pub1", b"x".to_vec(), 0)
        .await
        .unwrap();
    pin_incorrect(f.ids(&reader, space(false, &[])).await);
    assert_eq!(
        f.ids(&reader, space(false, &PROOF)).await.unwrap(),
        ["pub1"]
    );
    // A Reader still cannot write, password or not.
    assert_eq!(
        kind(
            f.svc
                .put_token_object(&reader, space(false, &PROOF), "pub2", b"x".to_vec(), 0)
                .await
        ),
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn a_keystore_that_holds_objects_cannot_be_protected_afterwards() {
    let f = fixture().await;
    let i = f.instance().await;
    let w = f.ctx_named(i, "w", &[Role::Writer]).await;
    f.svc
        .put_token_object(&w, space(true, &[]), "plain", b"x".to_vec(), 0)
        .await
        .unwrap();
    assert_eq!(
        kind(f.ids(&w, space(true, &PROOF)).await),
        ErrorKind::Pkcs11(ckr::TOKEN_NOT_RECOGNIZED)
    );
    assert_eq!(
        kind(
            f.svc
                .put_token_object(&w, space(true, &PROOF), "new", b"x".to_vec(), 0)
                .await
        ),
        ErrorKind::Pkcs11(ckr::TOKEN_NOT_RECOGNIZED)
    );
    // Nothing changed: the keystore still answers without a password.
    assert_eq!(f.ids(&w, space(true, &[])).await.unwrap(), ["plain"]);
}

#[tokio::test]
async fn clearing_a_keystore_lifts_its_password_and_counts_only_objects() {
    let f = fixture().await;
    let i = f.instance().await;
    let w = f.ctx_named(i, "w", &[Role::Writer]).await;
    let m = f.ctx_named(i, "so", &[Role::Manager]).await;
    for id in ["a", "b"] {
        f.svc
            .put_token_object(&w, space(true, &PROOF), id, b"x".to_vec(), 0)
            .await
            .unwrap();
    }
    // Only the security officer's C_InitToken empties it, without the password.
    assert_eq!(
        kind(f.svc.clear_token_space(&w, SPACE).await),
        ErrorKind::Forbidden
    );
    assert_eq!(f.svc.clear_token_space(&m, SPACE).await.unwrap(), 2);
    // A new password protects it again from its first use.
    assert!(f.ids(&w, space(true, &OTHER)).await.unwrap().is_empty());
    pin_incorrect(f.ids(&w, space(true, &PROOF)).await);
    pin_incorrect(f.ids(&w, space(true, &[])).await);
}

#[tokio::test]
async fn sessions_that_first_meet_a_keystore_at_once_all_get_in() {
    // Eight writes with the same password race to an empty keystore on a node whose
    // keystore calls interleave: one protects it, and none of the others mistakes the
    // verifier or the objects written meanwhile for objects stored without a password.
    let f = node_fixture().await;
    let i = f.instance().await;
    let alice = f.ctx_named(i, "alice", &[Role::Writer]).await;
    let put = |id: &'static str| {
        f.svc
            .put_token_object(&alice, space(true, &PROOF), id, b"sealed".to_vec(), 0)
    };
    let all = tokio::join!(
        put("a"),
        put("b"),
        put("c"),
        put("d"),
        put("e"),
        put("f"),
        put("g"),
        put("h")
    );
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    let mut ids = f.ids(&alice, space(true, &PROOF)).await.unwrap();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f", "g", "h"]);
    pin_incorrect(f.ids(&alice, space(true, &OTHER)).await);
}
