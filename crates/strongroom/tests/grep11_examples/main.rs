//! IBM's GREP11 example catalogue (spec/grep11-api.md §4) replayed against a real server
//! over gRPC, through a client generated from our proto. Each block names the example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod bad_input;
mod derive_wrap;
mod encrypt;
mod fips;
mod mechanisms;
mod pq;
mod sign;

use std::collections::HashMap;

use common::*;
use strongroom_grep11::pb::crypto_client::CryptoClient;
use strongroom_grep11::pb::{
    self, attribute_value::OneAttr, mechanism::Parameter, AttributeValue, KeyBlob, Mechanism,
};
use strongroom_grep11::{cka, ckk, ckm, cko, ckr, grep11_error_of, Cka, Ckm, Ckr};
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
fn tm(items: &[(Cka, AttributeValue)]) -> HashMap<u64, AttributeValue> {
    items.iter().map(|(a, v)| (a.0, v.clone())).collect()
}
fn m(code: Ckm) -> Option<Mechanism> {
    Some(Mechanism {
        mechanism: code.0,
        parameter: None,
    })
}
fn mb(code: Ckm, p: &[u8]) -> Option<Mechanism> {
    Some(Mechanism {
        mechanism: code.0,
        parameter: Some(Parameter::ParameterB(p.to_vec())),
    })
}
fn kb(blob: &[u8]) -> Option<KeyBlob> {
    Some(KeyBlob {
        key_blobs: vec![blob.to_vec().into()],
        ..Default::default()
    })
}

fn ckr_of<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Ckr {
    let st = r.expect_err("the call must fail");
    let e = grep11_error_of(&st).unwrap_or_else(|| panic!("no Grep11Error in {st:?}"));
    assert!(!e.detail.is_empty());
    Ckr(e.code)
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
    /// The CKF_* flags GetMechanismInfo gives for `mech`.
    async fn mech_flags(&mut self, mech: Ckm) -> u64 {
        let r = self.r(pb::GetMechanismInfoRequest { mech: mech.0 });
        let info = self.c.get_mechanism_info(r).await.unwrap().into_inner();
        info.mech_info.unwrap().flags
    }
    /// A new P-256 key pair that signs and verifies: (public, private) blobs.
    async fn p256_pair(&mut self) -> (Vec<u8>, Vec<u8>) {
        let public = [(cka::EC_PARAMS, by(P256)), (cka::VERIFY, b(true))];
        self.gen_pair(ckm::EC_KEY_PAIR_GEN, &public, &[(cka::SIGN, b(true))])
            .await
    }
    /// A new AES-256 key that encrypts and decrypts: its blob.
    async fn aes256(&mut self) -> Vec<u8> {
        let t = [
            (cka::VALUE_LEN, i(32)),
            (cka::ENCRYPT, b(true)),
            (cka::DECRYPT, b(true)),
        ];
        self.gen_key(ckm::AES_KEY_GEN, &t).await.key_bytes
    }
    async fn random(&mut self, n: u64) -> Vec<u8> {
        let r = self.r(pb::GenerateRandomRequest { len: n });
        self.c.generate_random(r).await.unwrap().into_inner().rnd
    }
    async fn gen_key(&mut self, mech: Ckm, t: &[(Cka, AttributeValue)]) -> pb::GenerateKeyResponse {
        let r = self.r(pb::GenerateKeyRequest {
            mech: m(mech),
            template: tm(t),
        });
        self.c.generate_key(r).await.unwrap().into_inner()
    }
    async fn gen_pair(
        &mut self,
        mech: Ckm,
        public: &[(Cka, AttributeValue)],
        private: &[(Cka, AttributeValue)],
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

fn aes_template(len: i64) -> Vec<(Cka, AttributeValue)> {
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
