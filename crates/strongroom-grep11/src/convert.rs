//! Conversions between the protobuf messages and the engine's types: mechanisms,
//! templates, attributes, key blobs.

use crate::*;
use strongroom_model::pkcs11::{Cka, Ckm};

pub(crate) fn bad_mech(detail: &str) -> Status {
    grep11_status(
        tonic::Code::InvalidArgument,
        ckr::MECHANISM_INVALID,
        detail,
        false,
    )
}

/// The engine's mechanism of a protobuf `Mechanism`.
pub fn mech_of(m: Option<pb::Mechanism>) -> Result<Mech, Status> {
    use pb::mechanism::Parameter;
    let m = m.ok_or_else(|| bad_mech("Mech is required"))?;
    let code = |e: i32| u64::try_from(e).unwrap_or(u64::MAX);
    let param = match m.parameter {
        None => MechParam::None,
        Some(Parameter::ParameterB(b)) => MechParam::Bytes(b),
        Some(Parameter::RsaoaepParameter(p)) => MechParam::Oaep {
            hash: Ckm(p.hash_mech),
            mgf: code(p.mgf),
            label: p.encoding_parm,
        },
        Some(Parameter::RsapssParameter(p)) => MechParam::Pss {
            hash: Ckm(p.hash_mech),
            mgf: code(p.mgf),
            salt: p.salt_byte_count,
        },
        Some(Parameter::Ecdh1DeriveParameter(p)) => MechParam::Ecdh {
            kdf: code(p.kdf),
            shared: p.shared_data,
            public: p.public_data,
        },
        Some(Parameter::BtcDeriveParameter(p)) => MechParam::BtcDerive {
            kind: u64::try_from(p.r#type).unwrap_or(u64::MAX),
            index: p.child_key_index,
            chain: p.chain_code,
            version: p.version,
        },
        Some(Parameter::EcsgParameter(p)) => {
            MechParam::Ecsg(u64::try_from(p.r#type).unwrap_or(u64::MAX))
        }
        Some(Parameter::KyberKemParameter(_)) => MechParam::Unsupported(8),
        Some(Parameter::EcaggParameter(p)) => MechParam::EcAgg {
            version: u64::from(p.version),
            mode: u64::try_from(p.mode).unwrap_or(u64::MAX),
            per_element: u64::from(p.per_element_size),
            elements: p.elements,
        },
    };
    Ok(Mech {
        code: Ckm(m.mechanism),
        param,
    })
}

/// The engine's template of a protobuf attribute map (an empty `AttributeValue` is an
/// empty byte string, as IBM's Go helper sends for nil).
pub fn template_of(m: HashMap<u64, pb::AttributeValue>) -> Template {
    use pb::attribute_value::OneAttr;
    m.into_iter()
        .map(|(k, v)| {
            let v = match v.one_attr {
                Some(OneAttr::AttributeB(b)) => AttrValue::Bytes(b),
                Some(OneAttr::AttributeTf(b)) => AttrValue::Bool(b),
                Some(OneAttr::AttributeI(i)) => AttrValue::Int(i),
                None => AttrValue::Bytes(Vec::new()),
            };
            (Cka(k), v)
        })
        .collect()
}

pub(crate) fn attr_value(v: &AttrValue) -> pb::AttributeValue {
    use pb::attribute_value::OneAttr;
    pb::AttributeValue {
        one_attr: Some(match v {
            AttrValue::Bool(b) => OneAttr::AttributeTf(*b),
            AttrValue::Int(i) => OneAttr::AttributeI(*i),
            AttrValue::Bytes(b) => OneAttr::AttributeB(b.clone()),
        }),
    }
}

pub(crate) fn attr_map(a: &Attrs) -> HashMap<u64, pb::AttributeValue> {
    pb_template(&a.0)
}

/// The protobuf attribute map of a template (what a client sends; [`template_of`] reads it).
pub fn pb_template(t: &Template) -> HashMap<u64, pb::AttributeValue> {
    t.iter().map(|(k, v)| (k.0, attr_value(v))).collect()
}

/// Legacy bytes encoding of attribute values: CK_BBOOL one byte, CK_ULONG 8 bytes big-endian.
pub(crate) fn attr_bytes(a: &Attrs) -> HashMap<u64, Vec<u8>> {
    a.0.iter()
        .map(|(k, v)| {
            let b = match v {
                AttrValue::Bool(b) => vec![u8::from(*b)],
                AttrValue::Int(i) => i.to_be_bytes().to_vec(),
                AttrValue::Bytes(b) => b.clone(),
            };
            (k.0, b)
        })
        .collect()
}

pub(crate) fn key_blob(k: &NewKey) -> pb::KeyBlob {
    pb::KeyBlob {
        key_blob_id: Vec::new(),
        version: 0,
        tx_id: Vec::new(),
        attributes: attr_map(&k.attrs),
        key_blobs: vec![k.blob.clone().into()],
    }
}

/// The key blob of a request: `KeyBlobs[0]` of the v2 `KeyBlob`, else the v1 bytes field.
/// Neither is copied.
pub(crate) fn key_of(v2: Option<pb::KeyBlob>, v1: Vec<u8>) -> prost::bytes::Bytes {
    v2.and_then(|k| k.key_blobs.into_iter().next())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| v1.into())
}
