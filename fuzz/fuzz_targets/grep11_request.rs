//! GREP11 requests as the gRPC front end reads them: arbitrary bytes decoded as each request
//! message of our proto, their mechanism and templates converted, and the call run on a
//! unit with real keys (the request's own key bytes, or one of the unit's keys chosen by
//! the first byte). Every input ends in a result or an error: never a panic or a hang.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use prost::Message;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckm};
use strongroom_engine::ep11::{params_of_curve, AttrValue, Mech, Op, Template};
use strongroom_engine::provider::Curve;
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_grep11::{mech_of, pb, template_of};
use strongroom_model::InstanceId;

struct Setup {
    unit: CryptoUnit,
    keys: Vec<Vec<u8>>,
}

fn flags(items: &[u64]) -> Template {
    items
        .iter()
        .map(|a| (strongroom_engine::ep11::consts::Cka(*a), AttrValue::Bool(true)))
        .collect()
}

fn setup() -> Setup {
    let p: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    let mut unit = CryptoUnit::new(Arc::clone(&p)).expect("self tests");
    unit.set_instance(InstanceId::random());
    unit.set_current_master_key(MasterKey::random(p.as_ref()).expect("rng"));
    let usage = [
        cka::ENCRYPT.0,
        cka::DECRYPT.0,
        cka::SIGN.0,
        cka::VERIFY.0,
        cka::WRAP.0,
        cka::UNWRAP.0,
        cka::DERIVE.0,
        cka::EXTRACTABLE.0,
    ];
    let mut keys = Vec::new();
    {
        let e = unit.ep11();
        let mut aes = flags(&usage);
        aes.insert(cka::VALUE_LEN, AttrValue::Int(32));
        keys.push(e.generate_key(&Mech::new(ckm::AES_KEY_GEN), &aes).expect("aes").blob);
        let mut public = flags(&[cka::ENCRYPT.0, cka::VERIFY.0, cka::WRAP.0, cka::DERIVE.0]);
        public.insert(cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(Curve::P256)));
        let (pk, sk) = e
            .generate_key_pair(
                &Mech::new(ckm::EC_KEY_PAIR_GEN),
                &public,
                &flags(&[cka::SIGN.0, cka::UNWRAP.0, cka::DERIVE.0, cka::EXTRACTABLE.0]),
            )
            .expect("p256");
        keys.push(pk.blob);
        keys.push(sk.blob);
    }
    Setup { unit, keys }
}

fn key_of(s: &Setup, pick: u8, blob: Option<pb::KeyBlob>, v1: &[u8]) -> Vec<u8> {
    match blob.and_then(|b| b.key_blobs.into_iter().next()) {
        Some(b) if pick & 0x80 == 0 => b.to_vec(),
        _ if !v1.is_empty() && pick & 0x40 == 0 => v1.to_vec(),
        _ => s.keys[usize::from(pick) % s.keys.len()].clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    let s = SETUP.get_or_init(setup);
    // The request type, which key to use when the request names none, then the message.
    let [kind, pick, rest @ ..] = data else {
        return;
    };
    let (kind, pick) = (*kind, *pick);
    let e = s.unit.ep11();
    match kind % 8 {
        0 => {
            if let Ok(q) = pb::EncryptSingleRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.key, &q.key_v1);
                    let _ = e.single(Op::Encrypt, &m, &k, &q.plain, &[]);
                }
            }
        }
        1 => {
            if let Ok(q) = pb::DecryptSingleRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.key, &q.key_v1);
                    let _ = e.single(Op::Decrypt, &m, &k, &q.ciphered, &[]);
                }
            }
        }
        2 => {
            if let Ok(q) = pb::SignSingleRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.priv_key, &q.priv_key_v1);
                    let _ = e.single(Op::Sign, &m, &k, &q.data, &[]);
                }
            }
        }
        3 => {
            if let Ok(q) = pb::VerifySingleRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.pub_key, &q.pub_key_v1);
                    let _ = e.single(Op::Verify, &m, &k, &q.data, &q.signature);
                }
            }
        }
        4 => {
            if let Ok(q) = pb::GenerateKeyRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    // Large RSA and DSA/DH domain generation are slow by nature, not input.
                    if m.code != ckm::RSA_PKCS_KEY_PAIR_GEN {
                        let _ = e.generate_key(&m, &template_of(q.template));
                    }
                }
            }
        }
        5 => {
            if let Ok(q) = pb::DeriveKeyRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.base_key, &q.base_key_v1);
                    let _ = e.derive(&m, &k, &template_of(q.template));
                }
            }
        }
        6 => {
            if let Ok(q) = pb::UnwrapKeyRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let k = key_of(s, pick, q.ke_k, &q.ke_kv1);
                    let _ = e.unwrap(&m, &k, &[], &q.wrapped, &template_of(q.template));
                }
            }
        }
        _ => {
            if let Ok(q) = pb::WrapKeyRequest::decode(rest) {
                if let Ok(m) = mech_of(q.mech) {
                    let key = key_of(s, pick, q.key, &q.key_v1);
                    let kek = key_of(s, pick.rotate_left(1), q.ke_k, &q.ke_kv1);
                    let _ = e.wrap(&m, &key, &kek, &[]);
                }
            }
        }
    }
});
