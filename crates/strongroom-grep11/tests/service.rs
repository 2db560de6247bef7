//! The GREP11 adapter against the service, in-process: the `Crypto` and `Keystore` RPCs
//! called as Rust methods on the front end, over a service with a temporary keystore. No
//! server, socket or HTTP/2: what is checked is the adapter's own work (authentication
//! metadata, roles, conversion to and from the protobuf types, the Grep11Error table).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strongroom_grep11::pb::crypto_server::Crypto as _;
use strongroom_grep11::pb::{self, Mechanism};
use strongroom_grep11::{ckm, ckr, grep11_error_of, Ckr, Grep11};
use strongroom_model::Role;
use strongroom_service::testing::TestNode;
use tonic::Request;

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn ckr_of(st: &tonic::Status) -> Ckr {
    Ckr(grep11_error_of(st)
        .unwrap_or_else(|| panic!("no Grep11Error in {st:?}"))
        .code)
}

#[tokio::test]
async fn calls_reach_the_service_and_come_back_as_protobuf() {
    let node = TestNode::dev().await;
    let instance = node.instance("dev").await;
    let token = node.token(instance, &[Role::Manager]);
    let g = Grep11::new(node.svc.clone());
    let random = g
        .generate_random(authed(pb::GenerateRandomRequest { len: 32 }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(random.rnd.len(), 32);
    let digest = g
        .digest_single(authed(
            pb::DigestSingleRequest {
                mech: Some(Mechanism {
                    mechanism: ckm::SHA256.0,
                    parameter: None,
                }),
                data: b"abc".to_vec(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    // FIPS 180-2's example: SHA-256("abc").
    assert_eq!(
        hex(&digest.digest),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let mechs = g
        .get_mechanism_list(authed(pb::GetMechanismListRequest {}, &token))
        .await
        .unwrap()
        .into_inner()
        .mechs;
    assert!(mechs.contains(&ckm::AES_KEY_GEN.0));
}

#[tokio::test]
async fn refusals_carry_their_ckr_and_roles_hold() {
    let node = TestNode::dev().await;
    let instance = node.instance("dev").await;
    let reader = node.token(instance, &[Role::Reader]);
    let g = Grep11::new(node.svc.clone());
    let no_token = g
        .generate_random(Request::new(pb::GenerateRandomRequest { len: 8 }))
        .await
        .unwrap_err();
    assert_eq!(no_token.code(), tonic::Code::Unauthenticated);
    assert_eq!(ckr_of(&no_token), ckr::USER_NOT_LOGGED_IN);
    let keygen = g
        .generate_key(authed(
            pb::GenerateKeyRequest {
                mech: Some(Mechanism {
                    mechanism: ckm::AES_KEY_GEN.0,
                    parameter: None,
                }),
                ..Default::default()
            },
            &reader,
        ))
        .await
        .unwrap_err();
    assert_eq!(keygen.code(), tonic::Code::PermissionDenied, "{keygen:?}");
    let manager = node.token(instance, &[Role::Manager]);
    let unknown = g
        .generate_key(authed(
            pb::GenerateKeyRequest {
                mech: Some(Mechanism {
                    mechanism: 0x8001_0031,
                    parameter: None,
                }),
                ..Default::default()
            },
            &manager,
        ))
        .await
        .unwrap_err();
    assert_eq!(ckr_of(&unknown), ckr::MECHANISM_INVALID);
}

#[tokio::test]
async fn access_limited_to_key_rings_does_not_reach_grep11() {
    let node = TestNode::dev().await;
    let instance = node.instance("dev").await;
    let g = Grep11::new(node.svc.clone());
    let limited = node.token_in_rings(instance, &[Role::Manager], &["default"]);
    let refused = g
        .generate_random(authed(pb::GenerateRandomRequest { len: 8 }, &limited))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("key rings"), "{refused:?}");
    let whole = node.token(instance, &[Role::Manager]);
    g.generate_random(authed(pb::GenerateRandomRequest { len: 8 }, &whole))
        .await
        .unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
