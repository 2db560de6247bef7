//! IBM's GREP11 example catalogue (spec/grep11-api.md §4) replayed against a real server
//! over gRPC, through a client generated from our proto. Each block names the example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use common::*;
use strongroom_grep11::pb::crypto_client::CryptoClient;
use strongroom_grep11::pb::{
    self, attribute_value::OneAttr, mechanism::Parameter, AttributeValue, KeyBlob, Mechanism,
};
use strongroom_grep11::{cka, ckk, ckm, cko, ckr, grep11_error_of};
use tonic::transport::Channel;

type C = CryptoClient<Channel>;

const PLAIN: &[u8] = b"Hello, this is a very long and creative message";
const SIGN_DATA: &[u8] = b"This data needs to be signed";
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

struct G {
    c: C,
    t: String,
}

fn b(v: bool) -> AttributeValue {
    AttributeValue {
        one_attr: Some(OneAttr::AttributeTf(v)),
    }
}
fn i(v: i64) -> AttributeValue {
    AttributeValue {
        one_attr: Some(OneAttr::AttributeI(v)),
    }
}
fn by(v: &[u8]) -> AttributeValue {
    AttributeValue {
        one_attr: Some(OneAttr::AttributeB(v.to_vec())),
    }
}
fn tm(items: &[(u64, AttributeValue)]) -> HashMap<u64, AttributeValue> {
    items.iter().cloned().collect()
}
fn m(code: u64) -> Option<Mechanism> {
    Some(Mechanism {
        mechanism: code,
        parameter: None,
    })
}
fn mb(code: u64, p: &[u8]) -> Option<Mechanism> {
    Some(Mechanism {
        mechanism: code,
        parameter: Some(Parameter::ParameterB(p.to_vec())),
    })
}
fn kb(blob: &[u8]) -> Option<KeyBlob> {
    Some(KeyBlob {
        key_blobs: vec![blob.to_vec()],
        ..Default::default()
    })
}

fn ckr_of<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> u64 {
    let st = r.expect_err("the call must fail");
    let e = grep11_error_of(&st).unwrap_or_else(|| panic!("no Grep11Error in {st:?}"));
    assert!(!e.detail.is_empty());
    e.code
}

impl G {
    async fn new(s: &Server) -> G {
        let dev: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.dir.join("dev.json")).unwrap())
                .unwrap();
        let addr = dev["grpc_addr"].as_str().unwrap();
        let c = CryptoClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        G {
            c,
            t: s.token.clone(),
        }
    }
    fn r<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.t).parse().unwrap(),
        );
        r
    }
    async fn random(&mut self, n: u64) -> Vec<u8> {
        let r = self.r(pb::GenerateRandomRequest { len: n });
        self.c.generate_random(r).await.unwrap().into_inner().rnd
    }
    async fn gen_key(&mut self, mech: u64, t: &[(u64, AttributeValue)]) -> pb::GenerateKeyResponse {
        let r = self.r(pb::GenerateKeyRequest {
            mech: m(mech),
            template: tm(t),
        });
        self.c.generate_key(r).await.unwrap().into_inner()
    }
    async fn gen_pair(
        &mut self,
        mech: u64,
        public: &[(u64, AttributeValue)],
        private: &[(u64, AttributeValue)],
    ) -> (Vec<u8>, Vec<u8>) {
        let r = self.r(pb::GenerateKeyPairRequest {
            mech: m(mech),
            pub_key_template: tm(public),
            priv_key_template: tm(private),
        });
        let k = self.c.generate_key_pair(r).await.unwrap().into_inner();
        assert_eq!(k.pub_key.as_ref().unwrap().key_blobs[0], k.pub_key_bytes);
        assert_eq!(k.priv_key.as_ref().unwrap().key_blobs[0], k.priv_key_bytes);
        (k.pub_key_bytes, k.priv_key_bytes)
    }
    async fn enc1(
        &mut self,
        mech: Option<Mechanism>,
        key: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, tonic::Status> {
        let r = self.r(pb::EncryptSingleRequest {
            mech,
            plain: plain.to_vec(),
            key: kb(key),
            ..Default::default()
        });
        self.c
            .encrypt_single(r)
            .await
            .map(|x| x.into_inner().ciphered)
    }
    async fn dec1(
        &mut self,
        mech: Option<Mechanism>,
        key: &[u8],
        ct: &[u8],
    ) -> Result<Vec<u8>, tonic::Status> {
        let r = self.r(pb::DecryptSingleRequest {
            mech,
            ciphered: ct.to_vec(),
            key: kb(key),
            ..Default::default()
        });
        self.c.decrypt_single(r).await.map(|x| x.into_inner().plain)
    }
    async fn sign1(&mut self, mech: Option<Mechanism>, key: &[u8], data: &[u8]) -> Vec<u8> {
        let r = self.r(pb::SignSingleRequest {
            mech,
            data: data.to_vec(),
            priv_key: kb(key),
            ..Default::default()
        });
        self.c.sign_single(r).await.unwrap().into_inner().signature
    }
    async fn verify1(
        &mut self,
        mech: Option<Mechanism>,
        key: &[u8],
        data: &[u8],
        sig: &[u8],
    ) -> Result<(), tonic::Status> {
        let r = self.r(pb::VerifySingleRequest {
            mech,
            data: data.to_vec(),
            signature: sig.to_vec(),
            pub_key: kb(key),
            ..Default::default()
        });
        self.c.verify_single(r).await.map(|_| ())
    }
    /// Encrypt (or Decrypt) in Init + Update(split…) + Final, concatenating the outputs.
    async fn enc_pmp(
        &mut self,
        decrypt: bool,
        mech: Option<Mechanism>,
        key: &[u8],
        data: &[u8],
        split: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut st = if decrypt {
            let r = self.r(pb::DecryptInitRequest {
                mech,
                key: kb(key),
                ..Default::default()
            });
            self.c.decrypt_init(r).await.unwrap().into_inner().state
        } else {
            let r = self.r(pb::EncryptInitRequest {
                mech,
                key: kb(key),
                ..Default::default()
            });
            self.c.encrypt_init(r).await.unwrap().into_inner().state
        };
        for part in [&data[..split], &data[split..]] {
            if decrypt {
                let r = self.r(pb::DecryptUpdateRequest {
                    state: st,
                    ciphered: part.to_vec(),
                });
                let x = self.c.decrypt_update(r).await.unwrap().into_inner();
                st = x.state;
                out.extend(x.plain);
            } else {
                let r = self.r(pb::EncryptUpdateRequest {
                    state: st,
                    plain: part.to_vec(),
                });
                let x = self.c.encrypt_update(r).await.unwrap().into_inner();
                st = x.state;
                out.extend(x.ciphered);
            }
        }
        if decrypt {
            let r = self.r(pb::DecryptFinalRequest { state: st });
            out.extend(self.c.decrypt_final(r).await.unwrap().into_inner().plain);
        } else {
            let r = self.r(pb::EncryptFinalRequest { state: st });
            out.extend(self.c.encrypt_final(r).await.unwrap().into_inner().ciphered);
        }
        out
    }
    /// Encrypt (or Decrypt) as Init + one-shot.
    async fn enc_psp(
        &mut self,
        decrypt: bool,
        mech: Option<Mechanism>,
        key: &[u8],
        data: &[u8],
    ) -> Vec<u8> {
        if decrypt {
            let r = self.r(pb::DecryptInitRequest {
                mech,
                key: kb(key),
                ..Default::default()
            });
            let state = self.c.decrypt_init(r).await.unwrap().into_inner().state;
            let r = self.r(pb::DecryptRequest {
                state,
                ciphered: data.to_vec(),
            });
            self.c.decrypt(r).await.unwrap().into_inner().plain
        } else {
            let r = self.r(pb::EncryptInitRequest {
                mech,
                key: kb(key),
                ..Default::default()
            });
            let state = self.c.encrypt_init(r).await.unwrap().into_inner().state;
            let r = self.r(pb::EncryptRequest {
                state,
                plain: data.to_vec(),
            });
            self.c.encrypt(r).await.unwrap().into_inner().ciphered
        }
    }
    /// Sign and verify three ways (ESP, PSP, optionally PMP split at 8); returns a signature.
    async fn sign_verify_all(
        &mut self,
        mech: Option<Mechanism>,
        private: &[u8],
        public: &[u8],
        pmp: bool,
    ) -> Vec<u8> {
        let sig = self.sign1(mech.clone(), private, SIGN_DATA).await;
        self.verify1(mech.clone(), public, SIGN_DATA, &sig)
            .await
            .unwrap();
        // PSP
        let r = self.r(pb::SignInitRequest {
            mech: mech.clone(),
            priv_key: kb(private),
            ..Default::default()
        });
        let state = self.c.sign_init(r).await.unwrap().into_inner().state;
        let r = self.r(pb::SignRequest {
            state,
            data: SIGN_DATA.to_vec(),
        });
        let sig2 = self.c.sign(r).await.unwrap().into_inner().signature;
        let r = self.r(pb::VerifyInitRequest {
            mech: mech.clone(),
            pub_key: kb(public),
            ..Default::default()
        });
        let state = self.c.verify_init(r).await.unwrap().into_inner().state;
        let r = self.r(pb::VerifyRequest {
            state,
            data: SIGN_DATA.to_vec(),
            signature: sig2.clone(),
        });
        self.c.verify(r).await.unwrap();
        if pmp {
            let r = self.r(pb::SignInitRequest {
                mech: mech.clone(),
                priv_key: kb(private),
                ..Default::default()
            });
            let mut state = self.c.sign_init(r).await.unwrap().into_inner().state;
            for part in [&SIGN_DATA[..8], &SIGN_DATA[8..]] {
                let r = self.r(pb::SignUpdateRequest {
                    state,
                    data: part.to_vec(),
                });
                state = self.c.sign_update(r).await.unwrap().into_inner().state;
            }
            let r = self.r(pb::SignFinalRequest { state });
            let sig3 = self.c.sign_final(r).await.unwrap().into_inner().signature;
            let r = self.r(pb::VerifyInitRequest {
                mech: mech.clone(),
                pub_key: kb(public),
                ..Default::default()
            });
            let mut state = self.c.verify_init(r).await.unwrap().into_inner().state;
            for part in [&SIGN_DATA[..8], &SIGN_DATA[8..]] {
                let r = self.r(pb::VerifyUpdateRequest {
                    state,
                    data: part.to_vec(),
                });
                state = self.c.verify_update(r).await.unwrap().into_inner().state;
            }
            let r = self.r(pb::VerifyFinalRequest {
                state,
                signature: sig3,
            });
            self.c.verify_final(r).await.unwrap();
        }
        sig
    }
}

fn aes_template(len: i64) -> Vec<(u64, AttributeValue)> {
    vec![
        (cka::VALUE_LEN, i(len)),
        (cka::WRAP, b(true)),
        (cka::UNWRAP, b(true)),
        (cka::ENCRYPT, b(true)),
        (cka::DECRYPT, b(true)),
        (cka::EXTRACTABLE, b(true)),
    ]
}

/// The uncompressed point inside a (MACed) SPKI: the BIT STRING of its first TLV.
fn point_of(spki: &[u8]) -> Vec<u8> {
    let n = strongroom_engine::der::tlv_len(spki).unwrap();
    let (_, key) = strongroom_engine::der::spki(&spki[..n]).unwrap();
    key.to_vec()
}

#[tokio::test]
async fn examples_mechanisms_random_digest_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    // 1-2: the list starts with CKM_RSA_PKCS; its info names our RSA sizes.
    let r = g.r(pb::GetMechanismListRequest {});
    let list = g.c.get_mechanism_list(r).await.unwrap().into_inner().mechs;
    assert_eq!(list[0], ckm::RSA_PKCS);
    let r = g.r(pb::GetMechanismInfoRequest {
        mech: ckm::RSA_PKCS,
    });
    let info =
        g.c.get_mechanism_info(r)
            .await
            .unwrap()
            .into_inner()
            .mech_info
            .unwrap();
    assert_eq!((info.min_key_size, info.max_key_size), (2048, 8192));
    // 3
    assert_eq!(g.random(4096).await.len(), 4096);
    // 4-6: digest single, Init+Digest, Init+Update×2+Final.
    let data = b"This is data that is longer than 64 bytes. This is the data that is longer than 64 bytes.";
    let want = "b036abead70a9739648ab94d556bf120494eab3a470b5ee12be559b9dbc8c408";
    let r = g.r(pb::DigestSingleRequest {
        mech: m(ckm::SHA256),
        data: data.to_vec(),
    });
    assert_eq!(
        hex::encode(g.c.digest_single(r).await.unwrap().into_inner().digest),
        want
    );
    let r = g.r(pb::DigestInitRequest {
        mech: m(ckm::SHA256),
    });
    let state = g.c.digest_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::DigestRequest {
        state,
        data: data.to_vec(),
    });
    assert_eq!(
        hex::encode(g.c.digest(r).await.unwrap().into_inner().digest),
        want
    );
    let r = g.r(pb::DigestInitRequest {
        mech: m(ckm::SHA256),
    });
    let mut state = g.c.digest_init(r).await.unwrap().into_inner().state;
    for part in [&data[..64], &data[64..]] {
        let r = g.r(pb::DigestUpdateRequest {
            state,
            data: part.to_vec(),
        });
        state = g.c.digest_update(r).await.unwrap().into_inner().state;
    }
    let r = g.r(pb::DigestFinalRequest { state });
    assert_eq!(
        hex::encode(g.c.digest_final(r).await.unwrap().into_inner().digest),
        want
    );

    // 7-11: key generation.
    let k = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[
                (cka::KEY_TYPE, i(ckk::GENERIC_SECRET as i64)),
                (cka::CLASS, i(cko::SECRET_KEY as i64)),
                (cka::VALUE_LEN, i(16)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    assert_eq!(k.check_sum.len(), 7);
    assert_eq!(&k.check_sum[3..], &128u32.to_be_bytes());
    let k = g.gen_key(ckm::AES_KEY_GEN, &aes_template(32)).await;
    assert_eq!(k.key.as_ref().unwrap().key_blobs[0], k.key_bytes);
    let attrs = &k.key.as_ref().unwrap().attributes;
    assert_eq!(attrs.get(&cka::VALUE_LEN), Some(&i(32)));
    assert_eq!(attrs.get(&cka::LOCAL), Some(&b(true)));
    let d = g.gen_key(ckm::DES3_KEY_GEN, &aes_template(32)).await; // VALUE_LEN 32 is tolerated
    assert_eq!(&d.check_sum[3..], &192u32.to_be_bytes());
    g.gen_pair(
        ckm::RSA_PKCS_KEY_PAIR_GEN,
        &[
            (cka::MODULUS_BITS, i(4096)),
            (cka::PUBLIC_EXPONENT, i(65537)),
            (cka::ENCRYPT, b(true)),
            (cka::VERIFY, b(true)),
        ],
        &[
            (cka::PRIVATE, b(true)),
            (cka::SENSITIVE, b(true)),
            (cka::SIGN, b(true)),
            (cka::DECRYPT, b(true)),
            (cka::EXTRACTABLE, b(true)),
        ],
    )
    .await;
    let (public, _) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(SECP256K1)), (cka::VERIFY, b(true))],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    assert_eq!(point_of(&public).len(), 65);
}

#[tokio::test]
async fn examples_encrypt_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    // 16-18: AES-256 CBC_PAD single, Init+one-shot, multi-part (split at 16).
    let key = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN)
        .await
        .unwrap();
    assert_eq!(ct.len(), 48);
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await.unwrap(),
        PLAIN
    );
    assert_eq!(
        g.enc_psp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN)
            .await,
        ct
    );
    assert_eq!(
        g.enc_psp(true, mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN, 16)
            .await,
        ct
    );
    assert_eq!(
        g.enc_pmp(true, mb(ckm::AES_CBC_PAD, &iv), &key, &ct, 16)
            .await,
        PLAIN
    );
    // The older JS example splits at 20 (not a block boundary).
    assert_eq!(
        g.enc_pmp(false, mb(ckm::AES_CBC_PAD, &iv), &key, PLAIN, 20)
            .await,
        ct
    );

    // 19-21: DES3 CBC_PAD with an 8-byte IV.
    let des = g
        .gen_key(
            ckm::DES3_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let iv8 = g.random(8).await;
    let ct = g
        .enc1(mb(ckm::DES3_CBC_PAD, &iv8), &des, PLAIN)
        .await
        .unwrap();
    assert_eq!(ct.len(), 48);
    assert_eq!(
        g.enc_psp(true, mb(ckm::DES3_CBC_PAD, &iv8), &des, &ct)
            .await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(true, mb(ckm::DES3_CBC_PAD, &iv8), &des, &ct, 16)
            .await,
        PLAIN
    );
    assert_eq!(
        g.enc_pmp(false, mb(ckm::DES3_CBC_PAD, &iv8), &des, PLAIN, 16)
            .await,
        ct
    );

    // 22-25: RSA OAEP (SHA-1) and PKCS#1 v1.5, single and Init+one-shot.
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, by(&[1, 0, 1])),
                (cka::ENCRYPT, b(true)),
            ],
            &[(cka::DECRYPT, b(true))],
        )
        .await;
    let oaep = Some(Mechanism {
        mechanism: ckm::RSA_PKCS_OAEP,
        parameter: Some(Parameter::RsaoaepParameter(pb::RsaoaepParm {
            hash_mech: ckm::SHA_1,
            mgf: 1,
            encoding_parm_type: 0,
            encoding_parm: vec![],
        })),
    });
    for mech in [oaep, m(ckm::RSA_PKCS)] {
        let ct = g.enc1(mech.clone(), &public, PLAIN).await.unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(g.dec1(mech.clone(), &private, &ct).await.unwrap(), PLAIN);
        let ct2 = g.enc_psp(false, mech.clone(), &public, PLAIN).await;
        assert_ne!(ct2, ct, "RSA encryption is randomised");
        assert_eq!(g.enc_psp(true, mech.clone(), &private, &ct2).await, PLAIN);
        // No RSA multi-part: Update is refused.
        let r = g.r(pb::EncryptInitRequest {
            mech: mech.clone(),
            key: kb(&public),
            ..Default::default()
        });
        let state = g.c.encrypt_init(r).await.unwrap().into_inner().state;
        let r = g.r(pb::EncryptUpdateRequest {
            state,
            plain: PLAIN.to_vec(),
        });
        assert_eq!(ckr_of(g.c.encrypt_update(r).await), ckr::MECHANISM_INVALID);
    }
    // Decrypting with the public key, or encrypting with the private key, is refused.
    assert_eq!(
        ckr_of(
            g.dec1(m(ckm::RSA_PKCS), &public, &[0; 256])
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );

    // 55: ReencryptSingle from key A/IV_A to key B/IV_B.
    let a = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let bk = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let (iva, ivb) = (g.random(16).await, g.random(16).await);
    let ct = g.enc1(mb(ckm::AES_CBC_PAD, &iva), &a, PLAIN).await.unwrap();
    let r = g.r(pb::ReencryptSingleRequest {
        dec_mech: mb(ckm::AES_CBC_PAD, &iva),
        enc_mech: mb(ckm::AES_CBC_PAD, &ivb),
        ciphered: ct,
        dec_key: kb(&a),
        enc_key: kb(&bk),
        ..Default::default()
    });
    let re =
        g.c.reencrypt_single(r)
            .await
            .unwrap()
            .into_inner()
            .reciphered;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &ivb), &bk, &re).await.unwrap(),
        PLAIN
    );

    // AES-GCM (12-byte IV in ParameterB, 16-byte tag), single and multi-part.
    let iv12 = g.random(12).await;
    let ct = g.enc1(mb(ckm::AES_GCM, &iv12), &a, PLAIN).await.unwrap();
    assert_eq!(ct.len(), PLAIN.len() + 16);
    assert_eq!(
        g.enc_pmp(true, mb(ckm::AES_GCM, &iv12), &a, &ct, 5).await,
        PLAIN
    );
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert_eq!(
        ckr_of(
            g.dec1(mb(ckm::AES_GCM, &iv12), &a, &bad)
                .await
                .map(tonic::Response::new)
        ),
        ckr::ENCRYPTED_DATA_INVALID
    );
}

#[tokio::test]
async fn examples_sign_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    // 26-28: an AES key with SIGN/VERIFY used for CKM_SHA256_HMAC.
    let k = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::SIGN, b(true)),
                (cka::VERIFY, b(true)),
            ],
        )
        .await
        .key_bytes;
    let tag = g.sign_verify_all(m(ckm::SHA256_HMAC), &k, &k, true).await;
    assert_eq!(tag.len(), 32);

    // 29-31: RSA SHA512_RSA_PKCS; 32-34: SHA512_RSA_PKCS_PSS with SHA-512 MGF1.
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, i(65537)),
                (cka::VERIFY, b(true)),
            ],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let s1 = g
        .sign_verify_all(m(ckm::SHA512_RSA_PKCS), &private, &public, true)
        .await;
    assert_eq!(
        s1,
        g.sign1(m(ckm::SHA512_RSA_PKCS), &private, SIGN_DATA).await,
        "PKCS#1 v1.5 is deterministic"
    );
    let pss = Some(Mechanism {
        mechanism: ckm::SHA512_RSA_PKCS_PSS,
        parameter: Some(Parameter::RsapssParameter(pb::RsapssParm {
            hash_mech: ckm::SHA512,
            mgf: 4,
            salt_byte_count: 0,
        })),
    });
    g.sign_verify_all(pss, &private, &public, true).await;

    // 38-39: secp256k1 with CKM_ECDSA over the 28 bytes as the hash; 40: P-256 ECDSA_SHA512 multi-part.
    let (public, private) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(SECP256K1)), (cka::VERIFY, b(true))],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let sig = g
        .sign_verify_all(m(ckm::ECDSA), &private, &public, false)
        .await;
    assert_eq!(sig.len(), 64);
    let (p256_pub, p256_priv) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256)), (cka::VERIFY, b(true))],
            &[(cka::SIGN, b(true))],
        )
        .await;
    g.sign_verify_all(m(ckm::ECDSA_SHA512), &p256_priv, &p256_pub, true)
        .await;
    // CKM_ECDSA cannot do multi-part.
    let r = g.r(pb::SignInitRequest {
        mech: m(ckm::ECDSA),
        priv_key: kb(&p256_priv),
        ..Default::default()
    });
    let state = g.c.sign_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::SignUpdateRequest {
        state,
        data: vec![1; 32],
    });
    assert_eq!(ckr_of(g.c.sign_update(r).await), ckr::MECHANISM_INVALID);

    // 41: a tampered signature gives CKR_SIGNATURE_INVALID; 59: another key's too.
    let mut sig = g.sign1(m(ckm::ECDSA), &p256_priv, &[7; 32]).await;
    sig[0] = 0xff;
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &p256_pub, &[7; 32], &sig)
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );
    let sig = g.sign1(m(ckm::ECDSA), &private, &[7; 32]).await;
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &p256_pub, &[7; 32], &sig)
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );

    // 42-43: Ed25519 (EC_PARAMS = the Ed25519 OID) single and Init+one-shot.
    let (ed_pub, ed_priv) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[
                (cka::EC_PARAMS, by(ED25519)),
                (cka::VERIFY, b(true)),
                (cka::EXTRACTABLE, b(false)),
            ],
            &[(cka::SIGN, b(true)), (cka::EXTRACTABLE, b(false))],
        )
        .await;
    let sig = g
        .sign_verify_all(m(ckm::IBM_ED25519_SHA512), &ed_priv, &ed_pub, false)
        .await;
    assert_eq!(sig.len(), 64);
    // Older negative tests: no SignUpdate for Ed25519; an ECDSA key with the Ed25519 mechanism.
    let r = g.r(pb::SignInitRequest {
        mech: m(ckm::IBM_ED25519_SHA512),
        priv_key: kb(&ed_priv),
        ..Default::default()
    });
    let state = g.c.sign_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::SignUpdateRequest {
        state,
        data: vec![1],
    });
    assert_eq!(ckr_of(g.c.sign_update(r).await), ckr::MECHANISM_INVALID);
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::IBM_ED25519_SHA512),
        data: vec![1],
        priv_key: kb(&p256_priv),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.sign_single(r).await), ckr::KEY_TYPE_INCONSISTENT);
    // A key without CKA_SIGN may not sign.
    let (_, no_sign) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256))],
            &[(cka::DERIVE, b(true))],
        )
        .await;
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::ECDSA),
        data: vec![1; 32],
        priv_key: kb(&no_sign),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.sign_single(r).await),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
}

#[tokio::test]
async fn examples_derive_wrap_import_export() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;

    // 47: ECDH on P-256, peer point in ParameterB; AES keys from both sides interoperate.
    let pair = |g: &mut G| {
        g.r(pb::GenerateKeyPairRequest {
            mech: m(ckm::EC_KEY_PAIR_GEN),
            pub_key_template: tm(&[(cka::EC_PARAMS, by(P256)), (cka::EXTRACTABLE, b(false))]),
            priv_key_template: tm(&[(cka::DERIVE, b(true)), (cka::EXTRACTABLE, b(false))]),
        })
    };
    let r = pair(&mut g);
    let alice = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let r = pair(&mut g);
    let bob = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let aes_t = tm(&[
        (cka::CLASS, i(cko::SECRET_KEY as i64)),
        (cka::KEY_TYPE, i(ckk::AES as i64)),
        (cka::VALUE_LEN, i(16)),
        (cka::ENCRYPT, b(true)),
        (cka::DECRYPT, b(true)),
    ]);
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &point_of(&bob.pub_key_bytes)),
        template: aes_t.clone(),
        base_key: alice.priv_key.clone(),
        ..Default::default()
    });
    let ka = g.c.derive_key(r).await.unwrap().into_inner();
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &point_of(&alice.pub_key_bytes)),
        template: aes_t.clone(),
        base_key: bob.priv_key.clone(),
        ..Default::default()
    });
    let kb_ = g.c.derive_key(r).await.unwrap().into_inner();
    let iv = g.random(16).await;
    let ct = g
        .enc1(
            mb(ckm::AES_CBC_PAD, &iv),
            &ka.new_key_bytes,
            b"hello world!",
        )
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &kb_.new_key_bytes, &ct)
            .await
            .unwrap(),
        b"hello world!"
    );
    // A point not on the curve is refused.
    let mut bad = point_of(&bob.pub_key_bytes);
    bad[10] ^= 1;
    let r = g.r(pb::DeriveKeyRequest {
        mech: mb(ckm::ECDH1_DERIVE, &bad),
        template: aes_t.clone(),
        base_key: alice.priv_key.clone(),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.derive_key(r).await),
        ckr::MECHANISM_PARAM_INVALID
    );

    // 48: wrap an AES-128 key with RSA PKCS#1 and unwrap it; check values match.
    let aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(16)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
                (cka::EXTRACTABLE, b(true)),
            ],
        )
        .await;
    let (rsa_pub, rsa_priv) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::ENCRYPT, b(true)),
                (cka::WRAP, b(true)),
            ],
            &[(cka::DECRYPT, b(true)), (cka::UNWRAP, b(true))],
        )
        .await;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key: aes.key.clone(),
        ke_k: kb(&rsa_pub),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: wrapped.clone(),
        mech: m(ckm::RSA_PKCS),
        template: tm(&[
            (cka::CLASS, i(cko::SECRET_KEY as i64)),
            (cka::KEY_TYPE, i(ckk::AES as i64)),
            (cka::VALUE_LEN, i(16)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
        ]),
        ke_k: kb(&rsa_priv),
        ..Default::default()
    });
    let un = g.c.unwrap_key(r).await.unwrap().into_inner();
    assert_eq!(un.check_sum[..3], aes.check_sum[..3]);
    assert_eq!(
        un.unwrapped.as_ref().unwrap().attributes.get(&cka::LOCAL),
        Some(&b(false))
    );
    // The v1 layout: the same wrap with the key blobs as plain bytes at the old numbers.
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key_v1: aes.key_bytes.clone(),
        ke_kv1: rsa_pub.clone(),
        ..Default::default()
    });
    let wrapped_v1 = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    assert_eq!(wrapped_v1.len(), 256);
    // A wrapped key that does not decrypt: one answer.
    let mut bad = wrapped.clone();
    bad[100] ^= 1;
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: bad,
        mech: m(ckm::RSA_PKCS),
        template: tm(&[(cka::KEY_TYPE, i(ckk::AES as i64))]),
        ke_k: kb(&rsa_priv),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);

    // 50: clear-key import under an AES key (EncryptSingle + UnwrapKey), use, export again.
    let base = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::WRAP, b(true)),
                (cka::UNWRAP, b(true)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let raw =
        hex::decode("84eb31c184aee86791bf095045914adbcbe08823b40024f02977b46c15e84d64").unwrap();
    let iv = g.random(16).await;
    let enc_raw = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &base, &raw)
        .await
        .unwrap();
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: enc_raw,
        mech: mb(ckm::AES_CBC_PAD, &iv),
        template: tm(&[
            (cka::VALUE_LEN, i(32)),
            (cka::WRAP, b(true)),
            (cka::UNWRAP, b(true)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
            (cka::EXTRACTABLE, b(true)),
            (cka::KEY_TYPE, i(ckk::AES as i64)),
            (cka::CLASS, i(cko::SECRET_KEY as i64)),
        ]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let imported =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &imported, PLAIN)
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &imported, &ct)
            .await
            .unwrap(),
        PLAIN
    );
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&imported),
        ke_k: kb(&base),
        ..Default::default()
    });
    let exported = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &base, &exported)
            .await
            .unwrap(),
        raw
    );

    // 52 + 54: export an EC private key as PKCS#8 under AES, import it back, sign with the
    // import and verify with the original public key (imported through TRANSPORTKEY).
    let (ec_pub, ec_priv) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256)), (cka::VERIFY, b(true))],
            &[(cka::SIGN, b(true)), (cka::EXTRACTABLE, b(true))],
        )
        .await;
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&ec_priv),
        ke_k: kb(&base),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let pkcs8 = g
        .dec1(mb(ckm::AES_CBC_PAD, &iv), &base, &wrapped)
        .await
        .unwrap();
    let alg = strongroom_engine::der::pkcs8_algorithm(&pkcs8).expect("a PKCS#8 PrivateKeyInfo");
    assert_eq!(alg.curve, &P256[2..]);
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped,
        mech: mb(ckm::AES_CBC_PAD, &iv),
        template: tm(&[
            (cka::SIGN, b(true)),
            (cka::PRIVATE, b(true)),
            (cka::SENSITIVE, b(true)),
            (cka::KEY_TYPE, i(ckk::EC as i64)),
            (cka::CLASS, i(cko::PRIVATE_KEY as i64)),
        ]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let back =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let n = strongroom_engine::der::tlv_len(&ec_pub).unwrap();
    let r = g.r(pb::UnwrapKeyRequest {
        wrapped: ec_pub[..n].to_vec(),
        mech: m(ckm::IBM_TRANSPORTKEY),
        template: tm(&[(cka::VERIFY, b(true))]),
        ke_k: kb(&base),
        ..Default::default()
    });
    let maced =
        g.c.unwrap_key(r)
            .await
            .unwrap()
            .into_inner()
            .unwrapped_bytes;
    let sig = g.sign1(m(ckm::ECDSA_SHA256), &back, PLAIN).await;
    g.verify1(m(ckm::ECDSA_SHA256), &maced, PLAIN, &sig)
        .await
        .unwrap();
    g.verify1(m(ckm::ECDSA_SHA256), &ec_pub, PLAIN, &sig)
        .await
        .unwrap();
    // A key that is not extractable cannot be wrapped.
    let r = g.r(pb::WrapKeyRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&back),
        ke_k: kb(&base),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.wrap_key(r).await), ckr::KEY_UNEXTRACTABLE);

    // 56: RewrapKeyBlob outside a rotation returns the blob as it is (already current).
    let r = g.r(pb::RewrapKeyBlobRequest {
        wrapped_key: kb(&base),
        ..Default::default()
    });
    let same = g.c.rewrap_key_blob(r).await.unwrap().into_inner();
    assert_eq!(same.rewrapped_key_bytes, base);
    assert_eq!(same.rewrapped_key.unwrap().key_blobs[0], base);

    // Attributes: read, and change towards more protection only.
    let r = g.r(pb::GetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::EXTRACTABLE, b(false)), (cka::VALUE_LEN, i(0))]),
        ..Default::default()
    });
    let a = g.c.get_attribute_value(r).await.unwrap().into_inner();
    assert_eq!(a.attributes.get(&cka::EXTRACTABLE), Some(&b(true)));
    assert_eq!(
        a.attributes_bytes.get(&cka::VALUE_LEN),
        Some(&16i64.to_be_bytes().to_vec())
    );
    let r = g.r(pb::GetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::VALUE, b(false))]),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.get_attribute_value(r).await),
        ckr::ATTRIBUTE_SENSITIVE
    );
    let r = g.r(pb::SetAttributeValueRequest {
        object: aes.key_bytes.clone(),
        attributes: tm(&[(cka::EXTRACTABLE, b(false))]),
    });
    let locked =
        g.c.set_attribute_value(r)
            .await
            .unwrap()
            .into_inner()
            .object;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(ckm::RSA_PKCS),
        key: kb(&locked),
        ke_k: kb(&rsa_pub),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.wrap_key(r).await), ckr::KEY_UNEXTRACTABLE);
    let r = g.r(pb::SetAttributeValueRequest {
        object: locked,
        attributes: tm(&[(cka::EXTRACTABLE, b(true))]),
    });
    assert_eq!(
        ckr_of(g.c.set_attribute_value(r).await),
        ckr::ATTRIBUTE_READ_ONLY
    );
}

#[tokio::test]
async fn bad_input_gets_its_ckr_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    let key = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
            ],
        )
        .await
        .key_bytes;
    let iv = [1u8; 16];

    // Tampered and truncated key blobs.
    let mut t = key.clone();
    let n = t.len() - 5;
    t[n] ^= 1;
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &t, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &key[..40], PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &[], PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_HANDLE_INVALID
    );
    // Templates: conflicting class, unknown attribute, read-only attribute, wrong value type,
    // a length the key type does not have, a missing length.
    for (tmpl, want) in [
        (
            vec![
                (cka::VALUE_LEN, i(16)),
                (cka::CLASS, i(cko::PRIVATE_KEY as i64)),
            ],
            ckr::TEMPLATE_INCONSISTENT,
        ),
        (
            vec![
                (cka::VALUE_LEN, i(16)),
                (cka::KEY_TYPE, i(ckk::DES3 as i64)),
            ],
            ckr::TEMPLATE_INCONSISTENT,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (0x4242, b(true))],
            ckr::ATTRIBUTE_TYPE_INVALID,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (cka::NEVER_EXTRACTABLE, b(true))],
            ckr::ATTRIBUTE_READ_ONLY,
        ),
        (
            vec![(cka::VALUE_LEN, i(16)), (cka::ENCRYPT, by(b"yes"))],
            ckr::ATTRIBUTE_VALUE_INVALID,
        ),
        (vec![(cka::VALUE_LEN, i(20))], ckr::ATTRIBUTE_VALUE_INVALID),
        (vec![(cka::ENCRYPT, b(true))], ckr::TEMPLATE_INCOMPLETE),
    ] {
        let r = g.r(pb::GenerateKeyRequest {
            mech: m(ckm::AES_KEY_GEN),
            template: tm(&tmpl),
        });
        assert_eq!(ckr_of(g.c.generate_key(r).await), want, "{tmpl:?}");
    }
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::EC_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::EC_PARAMS, by(&[0x06, 0x03, 0x2b, 0x65, 0x6f]))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::CURVE_NOT_SUPPORTED
    );
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(ckm::RSA_PKCS_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::MODULUS_BITS, i(2048)), (cka::PUBLIC_EXPONENT, i(3))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::ATTRIBUTE_VALUE_INVALID
    );
    // Wrong key type for the mechanism; unknown mechanism; a bad IV.
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::DES3_CBC_PAD, &[0; 8]), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        ckr_of(
            g.enc1(m(0x8888), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::MECHANISM_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &[0; 8]), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC, &iv), &key, PLAIN)
                .await
                .map(tonic::Response::new)
        ),
        ckr::DATA_LEN_RANGE
    );
    assert_eq!(
        ckr_of(
            g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &[0; 33])
                .await
                .map(tonic::Response::new)
        ),
        ckr::ENCRYPTED_DATA_LEN_RANGE
    );
    // Oversized data (over the 4 MiB limit, under the message limit).
    let big = vec![0u8; 4 * 1024 * 1024 + 16];
    assert_eq!(
        ckr_of(
            g.enc1(mb(ckm::AES_CBC_PAD, &iv), &key, &big)
                .await
                .map(tonic::Response::new)
        ),
        ckr::DATA_LEN_RANGE
    );
    let r = g.r(pb::DigestSingleRequest {
        mech: m(ckm::SHA256),
        data: big,
    });
    assert_eq!(ckr_of(g.c.digest_single(r).await), ckr::DATA_LEN_RANGE);

    // States: reused, from another operation, tampered, truncated, garbage.
    let r = g.r(pb::EncryptInitRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&key),
        ..Default::default()
    });
    let st = g.c.encrypt_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::EncryptUpdateRequest {
        state: st.clone(),
        plain: PLAIN.to_vec(),
    });
    g.c.encrypt_update(r).await.unwrap();
    let r = g.r(pb::EncryptUpdateRequest {
        state: st.clone(),
        plain: PLAIN.to_vec(),
    });
    assert_eq!(
        ckr_of(g.c.encrypt_update(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    let r = g.r(pb::EncryptInitRequest {
        mech: mb(ckm::AES_CBC_PAD, &iv),
        key: kb(&key),
        ..Default::default()
    });
    let st = g.c.encrypt_init(r).await.unwrap().into_inner().state;
    let r = g.r(pb::DecryptFinalRequest { state: st.clone() });
    assert_eq!(
        ckr_of(g.c.decrypt_final(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    let r = g.r(pb::DigestFinalRequest { state: st.clone() });
    assert_eq!(
        ckr_of(g.c.digest_final(r).await),
        ckr::OPERATION_NOT_INITIALIZED
    );
    for bad in [
        st[..st.len() - 1].to_vec(),
        {
            let mut x = st.clone();
            x[30] ^= 4;
            x
        },
        b"garbage".to_vec(),
        vec![],
    ] {
        let r = g.r(pb::EncryptFinalRequest { state: bad });
        assert_eq!(
            ckr_of(g.c.encrypt_final(r).await),
            ckr::OPERATION_NOT_INITIALIZED
        );
    }
    // The untouched State still works after all that (nothing was consumed by the failures).
    let r = g.r(pb::EncryptRequest {
        state: st,
        plain: PLAIN.to_vec(),
    });
    let ct = g.c.encrypt(r).await.unwrap().into_inner().ciphered;
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &key, &ct).await.unwrap(),
        PLAIN
    );
    // A Verify with a signature of the wrong length.
    let (public, private) = g
        .gen_pair(
            ckm::EC_KEY_PAIR_GEN,
            &[(cka::EC_PARAMS, by(P256)), (cka::VERIFY, b(true))],
            &[(cka::SIGN, b(true))],
        )
        .await;
    let sig = g.sign1(m(ckm::ECDSA), &private, &[3; 32]).await;
    assert_eq!(
        ckr_of(
            g.verify1(m(ckm::ECDSA), &public, &[3; 32], &sig[..63])
                .await
                .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_LEN_RANGE
    );
    // A public key as the signing key.
    let r = g.r(pb::SignSingleRequest {
        mech: m(ckm::ECDSA),
        data: vec![1; 32],
        priv_key: kb(&public),
        ..Default::default()
    });
    assert_eq!(ckr_of(g.c.sign_single(r).await), ckr::KEY_TYPE_INCONSISTENT);
    // The server is still healthy.
    assert_eq!(g.random(16).await.len(), 16);
}

#[tokio::test]
async fn examples_dsa_and_v1_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    // 15: DSA parameters (in the clear), then a key pair in them; 35-37: CKM_DSA_SHA1 three ways.
    let params = g
        .gen_key(
            strongroom_grep11::ckm::DSA_PARAMETER_GEN,
            &[(cka::PRIME_BITS, i(2048))],
        )
        .await;
    assert_eq!(params.key.as_ref().unwrap().key_blobs[0], params.key_bytes);
    let (public, private) = g
        .gen_pair(
            strongroom_grep11::ckm::DSA_KEY_PAIR_GEN,
            &[
                (cka::IBM_STRUCT_PARAMS, by(&params.key_bytes)),
                (cka::VERIFY, b(true)),
            ],
            &[
                (cka::SIGN, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
            ],
        )
        .await;
    let sig = g
        .sign_verify_all(m(strongroom_grep11::ckm::DSA_SHA1), &private, &public, true)
        .await;
    assert_eq!(sig.len(), 64);
    g.sign_verify_all(
        m(strongroom_grep11::ckm::DSA_SHA256),
        &private,
        &public,
        true,
    )
    .await;
    let mut bad = sig.clone();
    bad[5] ^= 1;
    assert_eq!(
        ckr_of(
            g.verify1(
                m(strongroom_grep11::ckm::DSA_SHA1),
                &public,
                SIGN_DATA,
                &bad
            )
            .await
            .map(tonic::Response::new)
        ),
        ckr::SIGNATURE_INVALID
    );
    // Parameters that are not DER Dss-Parms.
    let r = g.r(pb::GenerateKeyPairRequest {
        mech: m(strongroom_grep11::ckm::DSA_KEY_PAIR_GEN),
        pub_key_template: tm(&[(cka::IBM_STRUCT_PARAMS, by(b"junk"))]),
        priv_key_template: tm(&[]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key_pair(r).await),
        ckr::DOMAIN_PARAMS_INVALID
    );

    // The v1 examples: RSA-2048 with public exponent 17 (0x11), CKM_SHA1_RSA_PKCS, and raw
    // CKM_RSA_PKCS over caller data.
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::PUBLIC_EXPONENT, i(17)),
                (cka::VERIFY, b(true)),
            ],
            &[(cka::SIGN, b(true))],
        )
        .await;
    g.sign_verify_all(
        m(strongroom_grep11::ckm::SHA1_RSA_PKCS),
        &private,
        &public,
        true,
    )
    .await;
    g.sign_verify_all(m(ckm::RSA_PKCS), &private, &public, false)
        .await;
    let r = g.r(pb::GetAttributeValueRequest {
        object: public.clone(),
        attributes: tm(&[(cka::MODULUS_BITS, i(0))]),
        ..Default::default()
    });
    assert_eq!(
        g.c.get_attribute_value(r)
            .await
            .unwrap()
            .into_inner()
            .attributes
            .get(&cka::MODULUS_BITS),
        Some(&i(2048))
    );
}

#[tokio::test]
async fn examples_dh_keygen_and_derive() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    // 14: DH parameters, then Alice's and Bob's key pairs in them.
    let params = g
        .gen_key(
            strongroom_grep11::ckm::DH_PKCS_PARAMETER_GEN,
            &[(cka::PRIME_BITS, i(2048))],
        )
        .await
        .key_bytes;
    let pair = |g: &mut G| {
        g.r(pb::GenerateKeyPairRequest {
            mech: m(strongroom_grep11::ckm::DH_PKCS_KEY_PAIR_GEN),
            pub_key_template: tm(&[
                (cka::DERIVE, b(true)),
                (cka::EXTRACTABLE, b(false)),
                (cka::IBM_STRUCT_PARAMS, by(&params)),
            ]),
            priv_key_template: tm(&[
                (cka::DERIVE, b(true)),
                (cka::PRIVATE, b(true)),
                (cka::SENSITIVE, b(true)),
                (cka::EXTRACTABLE, b(false)),
            ]),
        })
    };
    let r = pair(&mut g);
    let alice = g.c.generate_key_pair(r).await.unwrap().into_inner();
    let r = pair(&mut g);
    let bob = g.c.generate_key_pair(r).await.unwrap().into_inner();
    // 46: each side derives an AES key from the other's public value (the INTEGER in the SPKI).
    let y = |maced: &[u8]| {
        let n = strongroom_engine::der::tlv_len(maced).unwrap();
        strongroom_engine::der::dh_spki(&maced[..n])
            .unwrap()
            .value
            .to_vec()
    };
    let aes_t = tm(&[
        (cka::CLASS, i(cko::SECRET_KEY as i64)),
        (cka::KEY_TYPE, i(ckk::AES as i64)),
        (cka::VALUE_LEN, i(16)),
        (cka::ENCRYPT, b(true)),
        (cka::DECRYPT, b(true)),
    ]);
    let derive = |g: &mut G, peer: Vec<u8>, base: Option<KeyBlob>| {
        g.r(pb::DeriveKeyRequest {
            mech: mb(strongroom_grep11::ckm::DH_PKCS_DERIVE, &peer),
            template: aes_t.clone(),
            base_key: base,
            ..Default::default()
        })
    };
    let r = derive(&mut g, y(&bob.pub_key_bytes), alice.priv_key.clone());
    let ka = g.c.derive_key(r).await.unwrap().into_inner().new_key_bytes;
    let r = derive(&mut g, y(&alice.pub_key_bytes), bob.priv_key.clone());
    let kb_ = g.c.derive_key(r).await.unwrap().into_inner().new_key_bytes;
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &ka, b"hello world!")
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &kb_, &ct).await.unwrap(),
        b"hello world!"
    );
    // A peer value of 1 (a small-subgroup attack) is refused.
    let r = derive(&mut g, vec![1], alice.priv_key.clone());
    assert_eq!(
        ckr_of(g.c.derive_key(r).await),
        ckr::MECHANISM_PARAM_INVALID
    );
    // Sizes that are not RFC 7919 groups.
    let r = g.r(pb::GenerateKeyRequest {
        mech: m(strongroom_grep11::ckm::DH_PKCS_PARAMETER_GEN),
        template: tm(&[(cka::PRIME_BITS, i(1024))]),
    });
    assert_eq!(
        ckr_of(g.c.generate_key(r).await),
        ckr::ATTRIBUTE_VALUE_INVALID
    );
}

#[tokio::test]
async fn example_attribute_bound_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    // 49: MAC key, AES key and RSA pair all CKA_IBM_ATTRBOUND; wrap with the public key and
    // the MAC key, unwrap with the private key and the MAC key; the attributes travel along.
    let mac = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[
                (cka::KEY_TYPE, i(ckk::GENERIC_SECRET as i64)),
                (cka::CLASS, i(cko::SECRET_KEY as i64)),
                (cka::VALUE_LEN, i(32)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
        )
        .await
        .key_bytes;
    let aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[
                (cka::VALUE_LEN, i(32)),
                (cka::ENCRYPT, b(true)),
                (cka::DECRYPT, b(true)),
                (cka::EXTRACTABLE, b(true)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
        )
        .await;
    let (public, private) = g
        .gen_pair(
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            &[
                (cka::MODULUS_BITS, i(2048)),
                (cka::WRAP, b(true)),
                (cka::IBM_ATTRBOUND, b(true)),
            ],
            &[(cka::UNWRAP, b(true)), (cka::IBM_ATTRBOUND, b(true))],
        )
        .await;
    let abw = strongroom_grep11::ckm::IBM_ATTRIBUTEBOUND_WRAP;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(abw),
        key: aes.key.clone(),
        ke_k: kb(&public),
        mac_key: kb(&mac),
        ..Default::default()
    });
    let wrapped = g.c.wrap_key(r).await.unwrap().into_inner().wrapped;
    let unwrap = |g: &mut G, wrapped: Vec<u8>, mac_key: &[u8]| {
        g.r(pb::UnwrapKeyRequest {
            wrapped,
            mech: m(abw),
            template: tm(&[(cka::KEY_TYPE, i(ckk::AES as i64))]),
            ke_k: kb(&private),
            mac_key: kb(mac_key),
            ..Default::default()
        })
    };
    let r = unwrap(&mut g, wrapped.clone(), &mac);
    let un = g.c.unwrap_key(r).await.unwrap().into_inner();
    assert_eq!(un.check_sum[..3], aes.check_sum[..3]);
    let attrs = &un.unwrapped.as_ref().unwrap().attributes;
    assert_eq!(
        (attrs.get(&cka::ENCRYPT), attrs.get(&cka::IBM_ATTRBOUND)),
        (Some(&b(true)), Some(&b(true)))
    );
    let iv = g.random(16).await;
    let ct = g
        .enc1(mb(ckm::AES_CBC_PAD, &iv), &aes.key_bytes, PLAIN)
        .await
        .unwrap();
    assert_eq!(
        g.dec1(mb(ckm::AES_CBC_PAD, &iv), &un.unwrapped_bytes, &ct)
            .await
            .unwrap(),
        PLAIN
    );
    // Another MAC key, or a changed byte: refused.
    let other_mac = g
        .gen_key(
            ckm::GENERIC_SECRET_KEY_GEN,
            &[(cka::VALUE_LEN, i(32)), (cka::IBM_ATTRBOUND, b(true))],
        )
        .await
        .key_bytes;
    let r = unwrap(&mut g, wrapped.clone(), &other_mac);
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);
    let mut bad = wrapped.clone();
    bad[40] ^= 1;
    let r = unwrap(&mut g, bad, &mac);
    assert_eq!(ckr_of(g.c.unwrap_key(r).await), ckr::WRAPPED_KEY_INVALID);
    // A key without CKA_IBM_ATTRBOUND cannot take part.
    let plain_aes = g
        .gen_key(
            ckm::AES_KEY_GEN,
            &[(cka::VALUE_LEN, i(16)), (cka::EXTRACTABLE, b(true))],
        )
        .await
        .key_bytes;
    let r = g.r(pb::WrapKeyRequest {
        mech: m(abw),
        key: kb(&plain_aes),
        ke_k: kb(&public),
        mac_key: kb(&mac),
        ..Default::default()
    });
    assert_eq!(
        ckr_of(g.c.wrap_key(r).await),
        ckr::KEY_FUNCTION_NOT_PERMITTED
    );
}

/// Every GREP11 call leaves an audit record (action and outcome, never key material or
/// data), refused calls included; records nobody waits for land within moments while the
/// server runs, and the chain verifies.
#[tokio::test]
async fn grep11_calls_are_audited_without_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let mut g = G::new(&s).await;
    let key = g
        .gen_key(ckm::AES_KEY_GEN, &aes_template(32))
        .await
        .key_bytes;
    let plain = b"plaintext that must never reach the audit log".to_vec();
    let encrypt = |g: &G, key: &[u8]| {
        g.r(pb::EncryptSingleRequest {
            mech: mb(ckm::AES_CBC_PAD, &[7; 16]),
            key: kb(key),
            plain: plain.clone(),
            ..Default::default()
        })
    };
    let r = encrypt(&g, &key);
    g.c.encrypt_single(r).await.unwrap();
    let mut tampered = key.clone();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    let r = encrypt(&g, &tampered);
    assert_ne!(ckr_of(g.c.encrypt_single(r).await), 0);

    let db = dir.path().join("keystore-audit.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let mut rows: Vec<(String, String, Option<String>, String)> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_as(
            "SELECT action, outcome, key, principal FROM audit WHERE action LIKE 'ep11.%' ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pool.close().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("ep11.generate_key", "success")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("ep11.encrypt", "success")
    );
    assert_eq!(rows[2].0, "ep11.encrypt");
    assert_ne!(
        rows[2].1, "success",
        "a refused call is recorded as refused"
    );
    for (_, _, key_column, principal) in &rows {
        assert_eq!(
            key_column, &None,
            "GREP11 keys live in blobs, not in the log"
        );
        assert_eq!(principal, "dev");
    }
    // Graceful shutdown, with this runtime free to answer the server's GOAWAY and PING.
    let stopped = tokio::task::spawn_blocking(move || s.terminate());
    assert!(stopped.await.unwrap().success());
    drop(g);
    // Neither the data nor any part of the key blob is anywhere in the audit files.
    let mut files = Vec::new();
    for f in ["keystore-audit.db", "keystore-audit.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            files.extend(b);
        }
    }
    assert!(!files.is_empty());
    assert!(!files.windows(plain.len()).any(|w| w == plain.as_slice()));
    assert!(!files.windows(16).any(|w| key.windows(16).any(|k| k == w)));
    let out = std::process::Command::new(bin())
        .args(["audit", "verify", "--output", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["problem"].is_null(), "{v}");
    assert!(v["records"].as_u64().unwrap() >= 3, "{v}");
}
