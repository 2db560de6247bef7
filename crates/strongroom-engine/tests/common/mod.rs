//! What the EP11 engine tests share: a unit with a master key, templates, AES keys.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use strongroom_crypto_awslc::AwsLcProvider;
use strongroom_engine::ep11::consts::{cka, ckm, Cka};
use strongroom_engine::ep11::{AttrValue, Mech, Template};
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_model::InstanceId;

/// A unit of `instance` whose current master key is `mk`.
pub fn unit_for(instance: InstanceId, mk: MasterKey) -> CryptoUnit {
    let p: Arc<dyn CryptoProvider> = Arc::new(AwsLcProvider);
    let mut u = CryptoUnit::new(p).unwrap();
    u.set_instance(instance);
    u.set_current_master_key(mk);
    u
}

/// A unit of a fresh instance with a random master key.
pub fn unit() -> CryptoUnit {
    unit_for(
        InstanceId::random(),
        MasterKey::random(&AwsLcProvider).unwrap(),
    )
}

/// A template from attribute pairs.
pub fn t(items: &[(Cka, AttrValue)]) -> Template {
    items.iter().cloned().collect()
}

/// A new AES-256 key blob that may do what `usage` names.
pub fn aes_key(u: &CryptoUnit, usage: &[Cka]) -> Vec<u8> {
    let mut tm = t(&[(cka::VALUE_LEN, AttrValue::Int(32))]);
    for a in usage {
        tm.insert(*a, AttrValue::Bool(true));
    }
    u.ep11()
        .generate_key(&Mech::new(ckm::AES_KEY_GEN), &tm)
        .unwrap()
        .blob
}
