//! Engine behaviour through its public API, with the production provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::provider::{
    AsymKind, BlockCipher, CipherMode, Curve, HdChild, HdError, HdParent, HdScheme, MacAlg,
    PreparedPrivate, PublicInfo, RsaPadding, SignScheme,
};
use strongroom_engine::*;
use strongroom_model::{InstanceId, KeyId, KeyKind, VersionId};

fn unit() -> CryptoUnit {
    let mut u = CryptoUnit::new(Arc::new(AwsLcProvider)).expect("self tests pass");
    u.set_current_master_key(MasterKey::random(&AwsLcProvider).expect("rng"));
    u
}

fn binding() -> BlobBinding {
    let key = KeyId::random();
    BlobBinding {
        instance: InstanceId::random(),
        key,
        version: VersionId::from(key),
        kind: KeyKind::Root,
        imported: false,
    }
}

#[test]
fn self_tests_pass_and_format_vectors_match_the_docs() {
    run_self_tests(&AwsLcProvider).expect("known answers");
    let docs = include_str!("../../../docs/formats.md");
    for v in compute_format_vectors(&AwsLcProvider).unwrap() {
        assert!(
            docs.contains(&v),
            "docs/formats.md must show the vector {v}"
        );
    }
}

#[test]
fn unit_without_master_key_refuses_blob_operations() {
    let u = CryptoUnit::new(Arc::new(AwsLcProvider)).unwrap();
    let m = u.generate(32).unwrap();
    assert_eq!(
        u.seal_blob(&binding(), &m).unwrap_err(),
        EngineError::NotInitialized
    );
    assert_eq!(u.current_mk_id(), None);
}

#[test]
fn blob_round_trip_and_every_binding_field_is_checked() {
    let u = unit();
    let b = binding();
    let m = u.generate(32).unwrap();
    let blob = u.seal_blob(&b, &m).unwrap();
    assert_eq!(blob_mk_id(&blob).unwrap(), u.current_mk_id().unwrap());
    assert_eq!(u.open_blob(&b, &blob).unwrap().expose(), m.expose());
    let variants = [
        BlobBinding {
            instance: InstanceId::random(),
            ..b
        },
        BlobBinding {
            key: KeyId::random(),
            ..b
        },
        BlobBinding {
            version: VersionId::random(),
            ..b
        },
        BlobBinding {
            kind: KeyKind::Standard,
            ..b
        },
        BlobBinding {
            imported: true,
            ..b
        },
    ];
    for v in variants {
        assert_eq!(
            u.open_blob(&v, &blob).unwrap_err(),
            EngineError::BlobAuthFailed
        );
    }
}

#[test]
fn tampered_truncated_or_foreign_blobs_are_refused() {
    let u = unit();
    let b = binding();
    let blob = u.seal_blob(&b, &u.generate(32).unwrap()).unwrap();
    for i in [0usize, 1, 20, 50, 61, blob.len() - 1] {
        let mut t = blob.clone();
        t[i] ^= 0x01;
        assert!(u.open_blob(&b, &t).is_err(), "flip at {i} must fail");
    }
    assert_eq!(
        u.open_blob(&b, &blob[..70]).unwrap_err(),
        EngineError::BlobMalformed
    );
    assert_eq!(
        u.open_blob(&b, &[]).unwrap_err(),
        EngineError::BlobMalformed
    );
    let other = unit();
    assert!(matches!(
        other.open_blob(&b, &blob).unwrap_err(),
        EngineError::WrongMasterKey { .. }
    ));
}

#[test]
fn wdek_round_trip_with_all_key_sizes_and_aad() {
    let u = unit();
    for len in [16, 24, 32] {
        let wk = u.wrapping_key(&u.generate(len).unwrap()).unwrap();
        assert_eq!(usize::from(wk.bits()), len * 8);
        let handle = VersionId::random();
        let aad = vec!["a".to_string(), "bc".to_string()];
        for dek in [&b""[..], &[7u8; 18][..], &[9u8; 32][..], &[1u8; 7500][..]] {
            let w = u.wrap(&wk, handle, dek, &aad).unwrap();
            let p = Wdek::parse(&w).unwrap();
            assert_eq!(p.handle, handle);
            assert_eq!(envelope::unwrap(&wk, &p, &aad).unwrap().as_slice(), dek);
            // AAD must match exactly, including how it is split.
            for wrong in [
                vec![],
                vec!["ab".to_string(), "c".to_string()],
                vec!["a".to_string()],
            ] {
                assert_eq!(
                    envelope::unwrap(&wk, &p, &wrong).unwrap_err(),
                    EngineError::CiphertextAuthFailed
                );
            }
        }
    }
}

#[test]
fn wdek_tampering_and_wrong_key_fail_the_same_way() {
    let u = unit();
    let wk = u.wrapping_key(&u.generate(32).unwrap()).unwrap();
    let other = u.wrapping_key(&u.generate(32).unwrap()).unwrap();
    let w = u.wrap(&wk, VersionId::random(), &[5u8; 32], &[]).unwrap();
    for i in 0..w.len() {
        let mut t = w.clone();
        t[i] ^= 0x80;
        match Wdek::parse(&t) {
            Ok(p) => assert_eq!(
                envelope::unwrap(&wk, &p, &[]).unwrap_err(),
                EngineError::CiphertextAuthFailed
            ),
            Err(e) => assert_eq!(e, EngineError::CiphertextMalformed),
        }
    }
    let p = Wdek::parse(&w).unwrap();
    assert_eq!(
        envelope::unwrap(&other, &p, &[]).unwrap_err(),
        EngineError::CiphertextAuthFailed
    );
    assert_eq!(
        Wdek::parse(&w[..40]).unwrap_err(),
        EngineError::CiphertextMalformed
    );
}

#[test]
fn invalid_root_key_lengths_are_refused() {
    let u = unit();
    for len in [0, 15, 17, 31, 33, 64] {
        assert_eq!(
            u.wrapping_key(&KeyMaterial::new(vec![0; len])).unwrap_err(),
            EngineError::InvalidKeyLength
        );
    }
}

#[test]
fn secrets_do_not_print() {
    let mk = MasterKey::from_bytes([0xAB; 32]);
    let m = KeyMaterial::new(vec![0xCD; 32]);
    assert_eq!(format!("{mk:?}"), "MasterKey(AES-256, <redacted>)");
    assert_eq!(format!("{m:?}"), "KeyMaterial(32 bytes, <redacted>)");
}

/// A provider whose HMAC is wrong: the unit must refuse to start.
struct BrokenHmac;

impl CryptoProvider for BrokenHmac {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        AwsLcProvider.fill_random(out)
    }
    fn aead_key(&self, alg: AeadAlg, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        AwsLcProvider.aead_key(alg, key)
    }
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        AwsLcProvider.hkdf_sha256(salt, ikm, info, out)
    }
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut h = AwsLcProvider.hmac_sha256(key, parts);
        h[0] ^= 1;
        h
    }
    fn hmac_sha256_key(&self, key: &[u8]) -> Box<dyn strongroom_engine::HmacSha256Key> {
        AwsLcProvider.hmac_sha256_key(key)
    }
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        AwsLcProvider.sha256(parts)
    }
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        AwsLcProvider.ct_eq(a, b)
    }
    fn rsa_generate(
        &self,
        bits: usize,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        AwsLcProvider.rsa_generate(bits)
    }
    fn rsa_oaep_decrypt(
        &self,
        k: &[u8],
        h: OaepHash,
        c: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.rsa_oaep_decrypt(k, h, c)
    }
    fn rsa_oaep_encrypt(&self, k: &[u8], h: OaepHash, m: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.rsa_oaep_encrypt(k, h, m)
    }
    fn aes_cbc_pkcs7_decrypt(
        &self,
        k: &[u8],
        iv: &[u8; 16],
        c: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.aes_cbc_pkcs7_decrypt(k, iv, c)
    }
    fn sig_generate(
        &self,
        alg: SigAlg,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        AwsLcProvider.sig_generate(alg)
    }
    fn sig_public_key(&self, alg: SigAlg, k: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.sig_public_key(alg, k)
    }
    fn pbkdf2_hmac_sha256(
        &self,
        pw: &[u8],
        salt: &[u8],
        n: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        AwsLcProvider.pbkdf2_hmac_sha256(pw, salt, n, out)
    }
    fn ec_private_to_pkcs8(
        &self,
        alg: SigAlg,
        der: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.ec_private_to_pkcs8(alg, der)
    }
    fn sig_sign(&self, alg: SigAlg, k: &[u8], m: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.sig_sign(alg, k, m)
    }
    fn sig_verify(&self, alg: SigAlg, k: &[u8], m: &[u8], s: &[u8]) -> bool {
        AwsLcProvider.sig_verify(alg, k, m, s)
    }
    fn hpke_generate(&self) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        AwsLcProvider.hpke_generate()
    }
    fn hpke_seal(&self, k: &[u8], i: &[u8], a: &[u8], m: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.hpke_seal(k, i, a, m)
    }
    fn hpke_open(
        &self,
        k: &[u8],
        i: &[u8],
        a: &[u8],
        c: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.hpke_open(k, i, a, c)
    }
    fn aes_kwp_wrap(&self, k: &[u8], m: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.aes_kwp_wrap(k, m)
    }
    fn aes_kwp_unwrap(
        &self,
        k: &[u8],
        c: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.aes_kwp_unwrap(k, c)
    }
    fn digest(&self, alg: DigestAlg, data: &[u8]) -> Vec<u8> {
        AwsLcProvider.digest(alg, data)
    }
    fn digest_state_new(&self, alg: DigestAlg) -> Option<Vec<u8>> {
        AwsLcProvider.digest_state_new(alg)
    }
    fn digest_state_update(
        &self,
        alg: DigestAlg,
        s: &[u8],
        d: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.digest_state_update(alg, s, d)
    }
    fn digest_state_finish(&self, alg: DigestAlg, s: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.digest_state_finish(alg, s)
    }
    fn block_encrypt(
        &self,
        c: BlockCipher,
        m: CipherMode,
        k: &[u8],
        iv: &[u8],
        d: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.block_encrypt(c, m, k, iv, d)
    }
    fn block_decrypt(
        &self,
        c: BlockCipher,
        m: CipherMode,
        k: &[u8],
        iv: &[u8],
        d: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        AwsLcProvider.block_decrypt(c, m, k, iv, d)
    }
    fn mac(&self, a: MacAlg, k: &[u8], d: &[u8]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.mac(a, k, d)
    }
    fn bls_aggregate_signatures(&self, s: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.bls_aggregate_signatures(s)
    }
    fn bls_aggregate_public_keys(&self, k: &[&[u8]]) -> Result<PublicInfo, CryptoError> {
        AwsLcProvider.bls_aggregate_public_keys(k)
    }
    fn hd_derive(
        &self,
        s: HdScheme,
        c: Curve,
        p: HdParent<'_>,
        i: u32,
    ) -> Result<HdChild, HdError> {
        AwsLcProvider.hd_derive(s, c, p, i)
    }
    fn asym_generate(
        &self,
        k: AsymKind,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        AwsLcProvider.asym_generate(k)
    }
    fn rsa_generate_with(
        &self,
        b: u32,
        e: u64,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        AwsLcProvider.rsa_generate_with(b, e)
    }
    fn dsa_parameters(&self, b: u32) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.dsa_parameters(b)
    }
    fn dsa_generate(
        &self,
        p: &[u8],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        AwsLcProvider.dsa_generate(p)
    }
    fn dh_parameters(&self, b: u32) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.dh_parameters(b)
    }
    fn dh_generate(
        &self,
        p: &[u8],
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, PublicInfo), CryptoError> {
        AwsLcProvider.dh_generate(p)
    }
    fn prepare_private(&self, k: &[u8]) -> Result<Box<dyn PreparedPrivate>, CryptoError> {
        AwsLcProvider.prepare_private(k)
    }
    fn public_info(&self, spki: &[u8]) -> Result<PublicInfo, CryptoError> {
        AwsLcProvider.public_info(spki)
    }
    fn verify(&self, s: SignScheme, p: &PublicInfo, d: &[u8], sig: &[u8]) -> bool {
        AwsLcProvider.verify(s, p, d, sig)
    }
    fn rsa_encrypt(
        &self,
        pad: RsaPadding,
        p: &PublicInfo,
        l: &[u8],
        m: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        AwsLcProvider.rsa_encrypt(pad, p, l, m)
    }
    fn argon2id(
        &self,
        pw: &[u8],
        salt: &[u8],
        m: u32,
        t: u32,
        p: u32,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        AwsLcProvider.argon2id(pw, salt, m, t, p, out)
    }
}

#[test]
fn a_unit_whose_provider_fails_a_known_answer_test_refuses_to_start() {
    assert_eq!(
        CryptoUnit::new(Arc::new(BrokenHmac)).unwrap_err(),
        EngineError::SelfTestFailed("HMAC-SHA-256")
    );
}
