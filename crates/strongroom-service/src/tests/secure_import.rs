//! Property test of the post-quantum import token's payload (v1, `ML_KEM_AES_256_KWP`): key
//! material sealed by an importer as docs/formats.md describes (encapsulate to the token's
//! ML-KEM key, AES-KWP under the shared secret, the nonce sealed with AES-GCM under the
//! material) opens to the same material; any one changed byte of the payload is refused on
//! `payload`, and of the encrypted nonce or IV as a nonce that does not decrypt.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use strongroom_engine::provider::AeadAlg;

use super::*;
use crate::import::{ImportAlgorithm, SecureImport, TransportKey};

/// What an importer sends for `material` under the token `(public key, nonce)`.
fn sealed(public: &[u8], nonce: &[u8], material: &[u8], iv: [u8; 12]) -> (Vec<u8>, SecureImport) {
    let p = AwsLcProvider;
    let info = p.public_info(public).unwrap();
    let (ct, secret) = p.ml_kem_encapsulate(&info).unwrap();
    let mut payload = ct;
    payload.extend(p.aes_kwp_wrap(&secret, material).unwrap());
    let mut encrypted_nonce = nonce.to_vec();
    p.aead_key(AeadAlg::AesGcm, material)
        .unwrap()
        .seal(&iv, &[], &mut encrypted_nonce)
        .unwrap();
    let s = SecureImport {
        encrypted_nonce,
        iv: iv.to_vec(),
        algorithm: ImportAlgorithm::MlKemAesKwp,
    };
    (payload, s)
}

/// Another `SecureImport` with the same fields, to change one of them.
fn copy(s: &SecureImport) -> SecureImport {
    SecureImport {
        encrypted_nonce: s.encrypted_nonce.clone(),
        iv: s.iv.clone(),
        algorithm: s.algorithm,
    }
}

#[test]
fn ml_kem_imports_open_to_their_material_and_any_changed_byte_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let node = rt.block_on(TestNode::dev());
    let i = rt.block_on(node.instance("pq-import"));
    let token = node.token(i, &[Role::Manager]);
    let ctx = rt
        .block_on(node.svc.authenticate(
            Some(&format!("Bearer {token}")),
            Some(&i.to_string()),
            "corr".into(),
            Action::SecretsList,
        ))
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let cases = (
        prop_oneof![Just(TransportKey::MlKem768), Just(TransportKey::MlKem1024)],
        prop::sample::select(vec![16usize, 24, 32])
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        any::<[u8; 12]>(),
        any::<prop::sample::Index>(),
        1u8..=255,
    );
    runner
        .run(&cases, |(transport, material, iv, at, flip)| {
            rt.block_on(async {
                node.svc
                    .create_import_token(&ctx, None, Some(100), transport)
                    .await
                    .unwrap();
                let tok = node.svc.get_import_token(&ctx).await.unwrap();
                prop_assert_eq!(tok.transport, transport);
                let (payload, s) =
                    sealed(&tok.public_key.unwrap(), &tok.nonce.unwrap(), &material, iv);
                let opened = node
                    .svc
                    .open_secure_import(&ctx, &payload, &s)
                    .await
                    .unwrap();
                prop_assert_eq!(opened.as_slice(), material.as_slice());

                let mut bad = payload.clone();
                let k = at.index(bad.len());
                bad[k] ^= flip;
                let e = node
                    .svc
                    .open_secure_import(&ctx, &bad, &s)
                    .await
                    .unwrap_err();
                prop_assert_eq!(
                    (e.kind, e.field),
                    (ErrorKind::InvalidField, Some("payload"))
                );
                let e = node
                    .svc
                    .open_secure_import(&ctx, &payload[..k], &s)
                    .await
                    .unwrap_err();
                prop_assert_eq!(
                    (e.kind, e.field),
                    (ErrorKind::InvalidField, Some("payload"))
                );

                let mut nonce = copy(&s);
                let n = at.index(nonce.encrypted_nonce.len());
                nonce.encrypted_nonce[n] ^= flip;
                let e = node
                    .svc
                    .open_secure_import(&ctx, &payload, &nonce)
                    .await
                    .unwrap_err();
                prop_assert_eq!(e.kind, ErrorKind::IncorrectNonceIv);
                let mut moved = copy(&s);
                moved.iv[at.index(12)] ^= flip;
                let e = node
                    .svc
                    .open_secure_import(&ctx, &payload, &moved)
                    .await
                    .unwrap_err();
                prop_assert_eq!(e.kind, ErrorKind::IncorrectNonceIv);
                Ok(())
            })
        })
        .unwrap();
}
