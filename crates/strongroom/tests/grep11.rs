//! The GREP11 gRPC API against a real server, through a client generated from our proto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use strongroom_grep11::pb::crypto_client::CryptoClient;
use strongroom_grep11::pb::{self, Mechanism};
use strongroom_grep11::{ckm, ckr, grep11_error_of, Ckm, Ckr, CKF_DIGEST};
use tonic::transport::Channel;

async fn client(s: &Server) -> CryptoClient<Channel> {
    let dev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap()).unwrap();
    let addr = dev["grpc_addr"]
        .as_str()
        .expect("dev.json names the gRPC address");
    CryptoClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn mech(m: Ckm) -> Option<Mechanism> {
    Some(Mechanism {
        mechanism: m.0,
        parameter: None,
    })
}

fn expect_ckr<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Ckr,
) -> tonic::Status {
    let st = r.expect_err("the call must fail");
    let e = grep11_error_of(&st).unwrap_or_else(|| panic!("no Grep11Error detail in {st:?}"));
    assert_eq!(Ckr(e.code), code, "{}", e.detail);
    assert!(!e.detail.is_empty());
    st
}

/// The gRPC health service runs on the GREP11 listener: the server and each service
/// answer SERVING, an unknown service NOT_FOUND, and no credentials are needed to ask.
#[tokio::test]
async fn the_grpc_health_service_answers_on_the_grep11_listener() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for service in ["", "grep11.Crypto", "strongroom.keystore.Keystore"] {
        assert!(
            await_grpc_health(&s, service, 1, 10).await,
            "'{service}' is SERVING: {:?}",
            grpc_health(&s, service).await
        );
    }
    let unknown = grpc_health(&s, "grep11.NoSuchService").await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn grep11_random_digest_and_mechanisms() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut c = client(&s).await;
    let t = s.token.clone();

    // GenerateRandom: exactly Len bytes, fresh each time.
    let a = c
        .generate_random(authed(pb::GenerateRandomRequest { len: 4096 }, &t))
        .await
        .unwrap()
        .into_inner()
        .rnd;
    let b = c
        .generate_random(authed(pb::GenerateRandomRequest { len: 4096 }, &t))
        .await
        .unwrap()
        .into_inner()
        .rnd;
    assert_eq!((a.len(), b.len()), (4096, 4096));
    assert_ne!(a, b);
    for bad in [0, 1_000_001] {
        expect_ckr(
            c.generate_random(authed(pb::GenerateRandomRequest { len: bad }, &t))
                .await,
            ckr::ARGUMENTS_BAD,
        );
    }

    // DigestSingle against the FIPS "abc" vectors.
    for (m, hex_digest) in [
        (
            ckm::SHA256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (ckm::SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            ckm::IBM_SHA3_256,
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
        ),
    ] {
        let d = c
            .digest_single(authed(
                pb::DigestSingleRequest {
                    mech: mech(m),
                    data: b"abc".to_vec(),
                },
                &t,
            ))
            .await
            .unwrap()
            .into_inner()
            .digest;
        assert_eq!(hex::encode(d), hex_digest, "mechanism 0x{m:x}");
    }
    // A mechanism that is not a digest (CKM_AES_CBC) and no mechanism at all.
    expect_ckr(
        c.digest_single(authed(
            pb::DigestSingleRequest {
                mech: mech(Ckm(0x1082)),
                data: b"x".to_vec(),
            },
            &t,
        ))
        .await,
        ckr::MECHANISM_INVALID,
    );
    expect_ckr(
        c.digest_single(authed(
            pb::DigestSingleRequest {
                mech: None,
                data: b"x".to_vec(),
            },
            &t,
        ))
        .await,
        ckr::MECHANISM_INVALID,
    );

    // The mechanism list: every listed mechanism has info, and every listed digest digests.
    let list = c
        .get_mechanism_list(authed(pb::GetMechanismListRequest {}, &t))
        .await
        .unwrap()
        .into_inner()
        .mechs;
    assert!(
        list.contains(&ckm::SHA512.0) && list.contains(&ckm::IBM_SHA3_512.0),
        "{list:x?}"
    );
    for m in &list {
        let info = c
            .get_mechanism_info(authed(pb::GetMechanismInfoRequest { mech: *m }, &t))
            .await
            .unwrap()
            .into_inner()
            .mech_info
            .unwrap();
        assert_ne!(info.flags, 0, "mechanism 0x{m:x} has flags");
        if info.flags & CKF_DIGEST == CKF_DIGEST {
            let d = c
                .digest_single(authed(
                    pb::DigestSingleRequest {
                        mech: mech(Ckm(*m)),
                        data: vec![],
                    },
                    &t,
                ))
                .await;
            assert!(d.is_ok(), "listed mechanism 0x{m:x} digests");
        }
    }
    // IBM's digital-asset mechanisms are listed: BIP32/SLIP-0010, Schnorr and BLS, BLS
    // aggregation, X25519; IBM's Ethereum (EIP-2333) derivation is not, and answers
    // CKR_MECHANISM_INVALID.
    for m in [0x8007_0001, 0x8001_0031, 0x8001_0034, 0x8001_001B] {
        assert!(list.contains(&m), "0x{m:x} is listed");
    }
    assert!(!list.contains(&0x8007_0002));
    expect_ckr(
        c.get_mechanism_info(authed(
            pb::GetMechanismInfoRequest { mech: 0x8007_0002 },
            &t,
        ))
        .await,
        ckr::MECHANISM_INVALID,
    );

    // The seed's mechanisms left out with a documented reason (docs/compatibility.md):
    // absent from the list, and refused by name wherever they are used.
    for (name, m) in [
        ("CKM_PBE_SHA1_DES3_EDE_CBC", 0x0000_03a8_u64),
        ("CKM_IBM_RETAINKEY", 0x8004_0001),
        ("CKM_IBM_DH_PKCS_DERIVE_RAW", 0x8002_0006),
        ("CKM_IBM_ECDH1_DERIVE_RAW", 0x8002_0007),
        ("CKM_IBM_EAC", 0x8001_000d),
    ] {
        assert!(!list.contains(&m), "{name} is not listed");
        expect_ckr(
            c.get_mechanism_info(authed(pb::GetMechanismInfoRequest { mech: m }, &t))
                .await,
            ckr::MECHANISM_INVALID,
        );
        expect_ckr(
            c.generate_key(authed(
                pb::GenerateKeyRequest {
                    mech: Some(Mechanism {
                        mechanism: m,
                        parameter: None,
                    }),
                    ..Default::default()
                },
                &t,
            ))
            .await,
            ckr::MECHANISM_INVALID,
        );
    }

    // IBM's pre-standard post-quantum mechanisms (round 2 and 3 Dilithium, Kyber; constants
    // of IBM's ep11.h): refused, since round-3 signatures do not verify under ML-DSA
    // (docs/compatibility.md says how to move to ML-DSA and ML-KEM).
    for (name, m) in [
        ("CKM_IBM_DILITHIUM", 0x8001_0023_u64),
        ("CKM_IBM_KYBER", 0x8001_0024),
    ] {
        assert!(!list.contains(&m), "{name} is not listed");
        expect_ckr(
            c.get_mechanism_info(authed(pb::GetMechanismInfoRequest { mech: m }, &t))
                .await,
            ckr::MECHANISM_INVALID,
        );
        expect_ckr(
            c.generate_key_pair(authed(
                pb::GenerateKeyPairRequest {
                    mech: Some(Mechanism {
                        mechanism: m,
                        parameter: None,
                    }),
                    ..Default::default()
                },
                &t,
            ))
            .await,
            ckr::MECHANISM_INVALID,
        );
    }

    // Login/Logout (EP11 login sessions) are not served: a clear CKR_FUNCTION_NOT_SUPPORTED.
    expect_ckr(
        c.login(authed(pb::LoginRequest::default(), &t)).await,
        ckr::FUNCTION_NOT_SUPPORTED,
    );

    // Authentication: no token, a forged token, a token of another instance.
    let st = expect_ckr(
        c.generate_random(tonic::Request::new(pb::GenerateRandomRequest { len: 8 }))
            .await,
        ckr::USER_NOT_LOGGED_IN,
    );
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    let mut forged = t.clone();
    forged.pop();
    forged.push('x');
    expect_ckr(
        c.generate_random(authed(
            pb::GenerateRandomRequest { len: 8 },
            &format!("{forged}x"),
        ))
        .await,
        ckr::USER_NOT_LOGGED_IN,
    );
    let mut other = authed(pb::GenerateRandomRequest { len: 8 }, &t);
    other.metadata_mut().insert(
        "bluemix-instance",
        uuid::Uuid::new_v4().to_string().parse().unwrap(),
    );
    let st = expect_ckr(c.generate_random(other).await, ckr::USER_NOT_LOGGED_IN);
    assert_eq!(st.code(), tonic::Code::PermissionDenied);
    // The instance named by the token works with or without the header.
    let mut same = authed(pb::GenerateRandomRequest { len: 8 }, &t);
    same.metadata_mut()
        .insert("bluemix-instance", s.instance.parse().unwrap());
    assert_eq!(
        c.generate_random(same)
            .await
            .unwrap()
            .into_inner()
            .rnd
            .len(),
        8
    );
    // A token stops with the API key it was exchanged for.
    let (key_id, short) = api_key_and_token(&s, &s.instance, &["Writer"]).await;
    c.generate_random(authed(pb::GenerateRandomRequest { len: 8 }, &short))
        .await
        .unwrap();
    delete_api_key(&s, &s.instance, &key_id).await;
    let st = expect_ckr(
        c.generate_random(authed(pb::GenerateRandomRequest { len: 8 }, &short))
            .await,
        ckr::USER_NOT_LOGGED_IN,
    );
    assert_eq!(st.code(), tonic::Code::Unauthenticated);
    assert!(
        st.message().contains("has been deleted"),
        "{}",
        st.message()
    );
}

/// `strongroom bench grep11` (what `scripts/bench` measures with) drives every operation
/// against a real server without errors. (How it checks each answer is tested in its
/// module.)
#[test]
fn bench_load_generator_drives_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let dev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap()).unwrap();
    let addr = dev["grpc_addr"].as_str().unwrap();
    for op in ["rsa-sign", "ecdsa-sign", "aes-encrypt", "generate-aes"] {
        let out = std::process::Command::new(bin())
            .args([
                "bench", "grep11", "--addr", addr, "--token", &s.token, "--op", op,
            ])
            .args(["--streams", "8", "--duration", "0.5", "--warmup", "0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{op}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        assert_eq!(v["errors"], 0, "{op}: {v} {err}");
        assert!(v["ops"].as_u64().unwrap() > 0, "{op}: {v}");
    }
}
