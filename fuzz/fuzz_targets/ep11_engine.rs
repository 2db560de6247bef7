//! The EP11 engine's request path on arbitrary requests: any mechanism of the served list
//! (or any code), any parameter form and bytes, any data and signature, with real keys of
//! every kind this unit makes (and damaged copies of them), through single-part calls,
//! multi-part States, wrap, unwrap and derive. Every answer must be a result or a CKR error:
//! never a panic, and never a hang (libFuzzer's timeout). Key generation of large RSA keys
//! is left out: it is slow by nature, not by input.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckm, ckp, Cka};
use strongroom_engine::ep11::{
    params_of_curve, AttrValue, Mech, MechParam, Op, Template, MECHANISMS,
};
use strongroom_engine::provider::Curve;
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_model::InstanceId;

struct Setup {
    unit: CryptoUnit,
    keys: Vec<Vec<u8>>,
}

fn t(items: &[(Cka, AttrValue)]) -> Template {
    items.iter().cloned().collect()
}

/// Usage flags on, so that the fuzzer reaches the operations rather than the refusals.
fn with(mut tm: Template, flags: &[Cka]) -> Template {
    for a in flags {
        tm.insert(*a, AttrValue::Bool(true));
    }
    tm
}

const SECRET: [Cka; 8] = [
    cka::ENCRYPT,
    cka::DECRYPT,
    cka::SIGN,
    cka::VERIFY,
    cka::WRAP,
    cka::UNWRAP,
    cka::DERIVE,
    cka::EXTRACTABLE,
];
const PUBLIC: [Cka; 4] = [cka::ENCRYPT, cka::VERIFY, cka::WRAP, cka::DERIVE];
const PRIVATE: [Cka; 5] = [
    cka::DECRYPT,
    cka::SIGN,
    cka::UNWRAP,
    cka::DERIVE,
    cka::EXTRACTABLE,
];

fn all_usage(tm: Template) -> Template {
    with(tm, &SECRET)
}

fn setup() -> Setup {
    let p: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    let mut unit = CryptoUnit::new(Arc::clone(&p)).expect("self tests");
    unit.set_instance(InstanceId::random());
    unit.set_current_master_key(MasterKey::random(p.as_ref()).expect("rng"));
    let mut keys = Vec::new();
    {
        let e = unit.ep11();
        for (mech, len) in [
            (ckm::AES_KEY_GEN, 32),
            (ckm::AES_KEY_GEN, 16),
            (ckm::DES3_KEY_GEN, 24),
            (ckm::GENERIC_SECRET_KEY_GEN, 32),
        ] {
            let tm = all_usage(t(&[(cka::VALUE_LEN, AttrValue::Int(len))]));
            keys.push(e.generate_key(&Mech::new(mech), &tm).expect("keygen").blob);
        }
        let mut pairs: Vec<(Mech, Template)> = [
            Curve::P256,
            Curve::P384,
            Curve::Secp256k1,
            Curve::Ed25519,
            Curve::X25519,
            Curve::Bls12381,
        ]
        .into_iter()
        .map(|c| {
            (
                Mech::new(ckm::EC_KEY_PAIR_GEN),
                t(&[(cka::EC_PARAMS, AttrValue::Bytes(params_of_curve(c)))]),
            )
        })
        .collect();
        pairs.push((
            Mech::new(ckm::RSA_PKCS_KEY_PAIR_GEN),
            t(&[(cka::MODULUS_BITS, AttrValue::Int(2048))]),
        ));
        pairs.push((
            Mech::new(ckm::ML_DSA_KEY_PAIR_GEN),
            t(&[(cka::PARAMETER_SET, AttrValue::ulong(ckp::ML_DSA_44))]),
        ));
        pairs.push((
            Mech::new(ckm::ML_KEM_KEY_PAIR_GEN),
            t(&[(cka::PARAMETER_SET, AttrValue::ulong(ckp::ML_KEM_512))]),
        ));
        for (mech, pub_t) in pairs {
            let (public, private) = e
                .generate_key_pair(
                    &mech,
                    &with(pub_t, &PUBLIC),
                    &with(Template::new(), &PRIVATE),
                )
                .expect("key pair");
            keys.push(public.blob);
            keys.push(private.blob);
        }
    }
    Setup { unit, keys }
}

/// Reads fields off the fuzzer's bytes.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(std::array::from_fn(|_| self.byte()))
    }
}

fuzz_target!(|data: &[u8]| {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    let s = SETUP.get_or_init(setup);
    let e = s.unit.ep11();
    let mut i = Input(data);
    let selector = i.byte();
    let code = match i.byte() {
        0xff => strongroom_engine::ep11::consts::Ckm(i.u64()),
        n => MECHANISMS[usize::from(n) % MECHANISMS.len()].code,
    };
    let param = match i.byte() % 8 {
        0 => MechParam::None,
        1 => MechParam::Bytes(i.bytes().to_vec()),
        2 => MechParam::Oaep {
            hash: strongroom_engine::ep11::consts::Ckm(u64::from(i.byte()) | 0x200),
            mgf: u64::from(i.byte() % 8),
            label: i.bytes().to_vec(),
        },
        3 => MechParam::Pss {
            hash: strongroom_engine::ep11::consts::Ckm(u64::from(i.byte()) | 0x200),
            mgf: u64::from(i.byte() % 8),
            salt: u64::from(i.byte()),
        },
        4 => MechParam::Ecdh {
            kdf: u64::from(i.byte() % 4),
            shared: i.bytes().to_vec(),
            public: i.bytes().to_vec(),
        },
        5 => MechParam::BtcDerive {
            kind: u64::from(i.byte() % 10),
            index: i.u64() & 0x1_ffff_ffff,
            chain: i.bytes().to_vec(),
            version: u64::from(i.byte() % 3),
        },
        6 => MechParam::Ecsg(u64::from(i.byte()) * 2),
        _ => MechParam::EcAgg {
            version: u64::from(i.byte() % 2),
            mode: u64::from(i.byte() % 3),
            per_element: u64::from(i.byte()),
            elements: i.bytes().to_vec(),
        },
    };
    let mech = Mech { code, param };
    let mut key = s.keys[usize::from(i.byte()) % s.keys.len()].clone();
    // Sometimes a damaged copy: one byte changed, or cut short.
    match i.byte() % 8 {
        0 => {
            let at = usize::from(i.byte()) % key.len();
            key[at] ^= 1 | i.byte();
        }
        1 => key.truncate(usize::from(i.byte()) % key.len()),
        _ => {}
    }
    let other = &s.keys[usize::from(i.byte()) % s.keys.len()];
    let arg = i.bytes();
    let rest = i.0;
    let op =
        [Op::Encrypt, Op::Decrypt, Op::Sign, Op::Verify, Op::Digest][usize::from(selector % 5)];
    let tm = all_usage(Template::new());
    match selector / 5 % 6 {
        0 => {
            let _ = e.single(op, &mech, &key, rest, arg);
        }
        1 => {
            if let Ok(state) = e.init(op, &mech, &key) {
                if let Ok((state, _)) = e.update(op, &state, arg) {
                    let _ = e.finish(op, &state, rest, arg);
                }
            }
        }
        2 => {
            let _ = e.wrap(&mech, &key, other, &[]);
        }
        3 => {
            let _ = e.unwrap(&mech, &key, &[], rest, &tm);
        }
        4 => {
            let _ = e.derive(&mech, &key, &tm);
        }
        _ => {
            // A State that was not made here, or a damaged one.
            let _ = e.update(op, rest, arg);
            let _ = e.finish(op, rest, arg, &[]);
        }
    }
});
