//! TTLV ↔ the service's KMIP model: attributes (the 1.x Attribute structure and the 2.x
//! tagged form), key blocks and managed objects, cryptographic parameters, and the RSA
//! key encodings (PKCS#1 inside PKCS#8 and SubjectPublicKeyInfo).

use std::sync::OnceLock;

use strongroom_service::kmip::{
    AttrValue, Attribute, KmipCipher, KmipHash, KmipManaged, KmipSignature,
};
use zeroize::Zeroizing;

use crate::codes::{alg, dsa, format, hash, mode, object, padding};
use crate::error_map::KmipError;
use crate::ttlv::{Tag, Ttlv, Value};

/// The standard attributes: their 1.x names. A 2.x attribute is the item whose tag is the
/// name in capitals with underscores.
const ATTRIBUTE_NAMES: &[&str] = &[
    "Unique Identifier",
    "Name",
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
    "Cryptographic Parameters",
    "Cryptographic Domain Parameters",
    "Certificate Type",
    "Certificate Length",
    "Digital Signature Algorithm",
    "Digest",
    "Operation Policy Name",
    "Cryptographic Usage Mask",
    "Lease Time",
    "Usage Limits",
    "State",
    "Initial Date",
    "Activation Date",
    "Process Start Date",
    "Protect Stop Date",
    "Deactivation Date",
    "Destroy Date",
    "Compromise Occurrence Date",
    "Compromise Date",
    "Revocation Reason",
    "Archive Date",
    "Object Group",
    "Fresh",
    "Link",
    "Application Specific Information",
    "Contact Information",
    "Last Change Date",
    "Alternative Name",
    "Key Value Present",
    "Key Value Location",
    "Original Creation Date",
    "Sensitive",
    "Always Sensitive",
    "Extractable",
    "Never Extractable",
    "Description",
    "Comment",
];

fn tag_table() -> &'static Vec<(&'static str, Tag)> {
    static TABLE: OnceLock<Vec<(&'static str, Tag)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let by_name: std::collections::HashMap<&'static str, Tag> = (0x420001..0x420200)
            .map(Tag)
            .filter_map(|t| t.name().map(|n| (n, t)))
            .collect();
        ATTRIBUTE_NAMES
            .iter()
            .filter_map(|n| {
                let key = n.to_ascii_uppercase().replace(' ', "_");
                by_name.get(key.as_str()).map(|t| (*n, *t))
            })
            .collect()
    })
}

/// The 2.x tag of a standard attribute.
pub fn tag_of(name: &str) -> Option<Tag> {
    tag_table()
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// The 1.x name of a 2.x attribute tag.
pub fn name_of(tag: Tag) -> Option<&'static str> {
    tag_table().iter().find(|(_, t)| *t == tag).map(|(n, _)| *n)
}

/// A TTLV value as an attribute value.
pub fn value_of(t: &Ttlv) -> AttrValue {
    match &t.value {
        Value::Structure(items) => {
            AttrValue::Struct(items.iter().map(|i| (i.tag.0, value_of(i))).collect())
        }
        Value::Integer(v) => AttrValue::Int(*v),
        Value::LongInteger(v) => AttrValue::Long(*v),
        Value::BigInteger(v) => AttrValue::Big(v.clone()),
        Value::Enumeration(v) => AttrValue::Enum(*v),
        Value::Boolean(v) => AttrValue::Bool(*v),
        Value::TextString(v) => AttrValue::Text(v.clone()),
        Value::ByteString(v) => AttrValue::Bytes(v.clone()),
        Value::DateTime(v) => AttrValue::DateTime(*v),
        Value::DateTimeExtended(v) => AttrValue::DateTime(v.div_euclid(1_000_000)),
        Value::Interval(v) => AttrValue::Interval(*v),
    }
}

/// An attribute value as a TTLV item with `tag`.
pub fn ttlv_of(tag: Tag, v: &AttrValue) -> Ttlv {
    let value = match v {
        AttrValue::Struct(items) => {
            Value::Structure(items.iter().map(|(t, v)| ttlv_of(Tag(*t), v)).collect())
        }
        AttrValue::Int(v) => Value::Integer(*v),
        AttrValue::Long(v) => Value::LongInteger(*v),
        AttrValue::Big(v) => Value::BigInteger(v.clone()),
        AttrValue::Enum(v) => Value::Enumeration(*v),
        AttrValue::Bool(v) => Value::Boolean(*v),
        AttrValue::Text(v) => Value::TextString(v.clone()),
        AttrValue::Bytes(v) => Value::ByteString(v.clone()),
        AttrValue::DateTime(v) => Value::DateTime(*v),
        AttrValue::Interval(v) => Value::Interval(*v),
    };
    Ttlv::new(tag, value)
}

/// A 1.x Attribute structure.
pub fn attribute_from_v1(t: &Ttlv) -> Result<(Attribute, Option<u32>), KmipError> {
    let name = t
        .child(Tag::ATTRIBUTE_NAME)
        .and_then(Ttlv::as_text)
        .ok_or_else(|| KmipError::missing("an Attribute Name"))?;
    let index = match t.child(Tag::ATTRIBUTE_INDEX) {
        Some(i) => Some(
            i.as_int()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| KmipError::invalid("Attribute Index"))?,
        ),
        None => None,
    };
    let value = t
        .child(Tag::ATTRIBUTE_VALUE)
        .ok_or_else(|| KmipError::missing("an Attribute Value"))?;
    Ok((Attribute::new(name, value_of(value)), index))
}

/// A 1.x Attribute structure from an attribute.
pub fn attribute_to_v1(a: &Attribute, index: Option<u32>) -> Ttlv {
    let mut items = vec![Ttlv::text(Tag::ATTRIBUTE_NAME, a.name.clone())];
    if let Some(i) = index {
        items.push(Ttlv::integer(
            Tag::ATTRIBUTE_INDEX,
            i32::try_from(i).unwrap_or(i32::MAX),
        ));
    }
    items.push(ttlv_of(Tag::ATTRIBUTE_VALUE, &a.value));
    Ttlv::structure(Tag::ATTRIBUTE, items)
}

/// A 2.x tagged attribute.
pub fn attribute_from_v2(t: &Ttlv) -> Result<Attribute, KmipError> {
    let name = name_of(t.tag).ok_or_else(|| {
        KmipError::unsupported(format!(
            "attribute tag {:#08x} is not a standard attribute this server keeps",
            t.tag.0
        ))
    })?;
    Ok(Attribute::new(name, value_of(t)))
}

/// Attributes as 1.x Attribute structures, each with its index among its name.
pub fn attributes_to_v1(attrs: &[Attribute]) -> Vec<Ttlv> {
    let mut seen: Vec<(&str, u32)> = Vec::new();
    attrs
        .iter()
        .map(|a| {
            let i = match seen.iter_mut().find(|(n, _)| *n == a.name) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    seen.push((&a.name, 0));
                    0
                }
            };
            attribute_to_v1(a, Some(i))
        })
        .collect()
}

/// Attributes as 2.x tagged items (custom attributes, which 2.x carries as vendor
/// attributes, are left out).
pub fn attributes_to_v2(attrs: &[Attribute]) -> Vec<Ttlv> {
    attrs
        .iter()
        .filter_map(|a| tag_of(&a.name).map(|t| ttlv_of(t, &a.value)))
        .collect()
}

/// The client attributes of a request: a 1.x Template-Attribute (or any structure of
/// Attribute items) or a 2.x Attributes structure.
pub fn template(t: Option<&Ttlv>) -> Result<Vec<Attribute>, KmipError> {
    let Some(t) = t else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for item in t.items() {
        if item.tag == Tag::ATTRIBUTE {
            out.push(attribute_from_v1(item)?.0);
        } else if item.tag == Tag::NAME && t.tag == Tag::TEMPLATE_ATTRIBUTE {
            // A 1.x template's own Name names a stored template: not supported.
            return Err(KmipError::unsupported("named templates are not supported"));
        } else {
            out.push(attribute_from_v2(item)?);
        }
    }
    Ok(out)
}

/// Removes and returns the first attribute `name`.
pub fn take(attrs: &mut Vec<Attribute>, name: &str) -> Option<AttrValue> {
    let i = attrs.iter().position(|a| a.name == name)?;
    Some(attrs.remove(i).value)
}

/// Removes an attribute that only repeats what the request says elsewhere (the Object
/// Type); refuses one that contradicts it.
pub fn drop_echo(attrs: &mut Vec<Attribute>, name: &str, expect: u32) -> Result<(), KmipError> {
    while let Some(v) = take(attrs, name) {
        if v != AttrValue::Enum(expect) {
            return Err(KmipError::invalid(name));
        }
    }
    Ok(())
}

fn enum_of(v: Option<AttrValue>, what: &str) -> Result<Option<u32>, KmipError> {
    match v {
        None => Ok(None),
        Some(AttrValue::Enum(e)) => Ok(Some(e)),
        Some(_) => Err(KmipError::invalid(what)),
    }
}

fn int_of(v: Option<AttrValue>, what: &str) -> Result<Option<i32>, KmipError> {
    match v {
        None => Ok(None),
        Some(AttrValue::Int(e)) => Ok(Some(e)),
        Some(_) => Err(KmipError::invalid(what)),
    }
}

/// Takes Cryptographic Algorithm and Length out of a template.
pub fn algorithm_and_length(
    attrs: &mut Vec<Attribute>,
) -> Result<(Option<u32>, Option<i32>), KmipError> {
    Ok((
        enum_of(
            take(attrs, "Cryptographic Algorithm"),
            "Cryptographic Algorithm",
        )?,
        int_of(take(attrs, "Cryptographic Length"), "Cryptographic Length")?,
    ))
}

/// The Recommended Curve of a template's Cryptographic Domain Parameters, taken out.
pub fn recommended_curve(attrs: &mut Vec<Attribute>) -> Option<u32> {
    let v = take(attrs, "Cryptographic Domain Parameters")?;
    match v.field(Tag::RECOMMENDED_CURVE.0) {
        Some(AttrValue::Enum(c)) => Some(*c),
        _ => None,
    }
}

// ---- Key material ----

const RSA_OID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    der_write(&mut out, tag, content);
    out
}

fn der_write(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn rsa_algorithm_id() -> Vec<u8> {
    let mut alg = der_tlv(0x06, RSA_OID);
    alg.extend_from_slice(&[0x05, 0x00]);
    der_tlv(0x30, &alg)
}

/// PKCS#1 RSAPrivateKey → PKCS#8.
pub fn rsa_pkcs1_to_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(vec![0x02, 0x01, 0x00]);
    body.extend_from_slice(&rsa_algorithm_id());
    der_write(&mut body, 0x04, pkcs1);
    let mut out = Zeroizing::new(Vec::new());
    der_write(&mut out, 0x30, &body);
    out
}

/// PKCS#8 (RSA) → PKCS#1 RSAPrivateKey; `None` for another algorithm.
pub fn rsa_pkcs8_to_pkcs1(pkcs8: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (0x30, body, _) = der_read(pkcs8)? else {
        return None;
    };
    let (0x02, _, rest) = der_read(body)? else {
        return None;
    };
    let (0x30, alg, rest) = der_read(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_read(alg)? else {
        return None;
    };
    if oid != RSA_OID {
        return None;
    }
    let (0x04, key, _) = der_read(rest)? else {
        return None;
    };
    Some(Zeroizing::new(key.to_vec()))
}

/// PKCS#1 RSAPublicKey → SubjectPublicKeyInfo.
pub fn rsa_pkcs1_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = rsa_algorithm_id();
    der_write(&mut body, 0x03, &bits);
    der_tlv(0x30, &body)
}

/// SubjectPublicKeyInfo (RSA) → PKCS#1 RSAPublicKey.
pub fn rsa_spki_to_pkcs1(spki: &[u8]) -> Option<Vec<u8>> {
    let (0x30, body, _) = der_read(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = der_read(body)? else {
        return None;
    };
    let (0x06, oid, _) = der_read(alg)? else {
        return None;
    };
    if oid != RSA_OID {
        return None;
    }
    let (0x03, bits, _) = der_read(rest)? else {
        return None;
    };
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some(key.to_vec())
}

/// What a Register request carries: object type, its material in the service's stored
/// form, and what the key block says of it.
pub struct Material {
    pub format: u32,
    /// The format the client sent, when it is stored converted.
    pub presented: Option<u32>,
    pub algorithm: Option<u32>,
    pub length: Option<i32>,
    pub subtype: Option<u32>,
    pub bytes: Zeroizing<Vec<u8>>,
}

fn key_block(t: &Ttlv) -> Result<Material, KmipError> {
    let block = t
        .child(Tag::KEY_BLOCK)
        .ok_or_else(|| KmipError::missing("a Key Block"))?;
    if block.child(Tag::KEY_WRAPPING_DATA).is_some() {
        return Err(KmipError::unsupported(
            "wrapped key blocks cannot be registered here; register the key in the clear over the mutual-TLS connection",
        ));
    }
    let fmt = block
        .child(Tag::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| KmipError::missing("a Key Format Type"))?;
    let value = block
        .child(Tag::KEY_VALUE)
        .ok_or_else(|| KmipError::missing("a Key Value"))?;
    let material = value
        .child(Tag::KEY_MATERIAL)
        .ok_or_else(|| KmipError::missing("Key Material"))?;
    let (format, bytes) = match (fmt, &material.value) {
        (format::TRANSPARENT_SYMMETRIC_KEY, Value::Structure(_)) => (
            format::RAW,
            material
                .child(Tag::KEY)
                .and_then(Ttlv::as_bytes)
                .ok_or_else(|| KmipError::missing("the Key of a transparent symmetric key"))?
                .to_vec(),
        ),
        (f, Value::ByteString(b)) => (f, b.clone()),
        (f, _) => {
            return Err(KmipError::new(
                crate::codes::reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                format!("key format {f} with this Key Material is not supported"),
            ))
        }
    };
    Ok(Material {
        format,
        presented: None,
        algorithm: block
            .child(Tag::CRYPTOGRAPHIC_ALGORITHM)
            .and_then(Ttlv::as_enum),
        length: block
            .child(Tag::CRYPTOGRAPHIC_LENGTH)
            .and_then(Ttlv::as_int),
        subtype: None,
        bytes: Zeroizing::new(bytes),
    })
}

/// The managed object of a Register request, in the service's stored form: RSA keys in
/// PKCS#1 become PKCS#8 and SubjectPublicKeyInfo.
pub fn registered(object_type: u32, payload: &Ttlv) -> Result<Material, KmipError> {
    let (tag, m) = match object_type {
        object::SYMMETRIC_KEY => (Tag::SYMMETRIC_KEY, None),
        object::PRIVATE_KEY => (Tag::PRIVATE_KEY, None),
        object::PUBLIC_KEY => (Tag::PUBLIC_KEY, None),
        object::SECRET_DATA => (Tag::SECRET_DATA, None),
        object::CERTIFICATE => {
            let c = payload
                .child(Tag::CERTIFICATE)
                .ok_or_else(|| KmipError::missing("a Certificate"))?;
            let value = c
                .child(Tag::CERTIFICATE_VALUE)
                .and_then(Ttlv::as_bytes)
                .ok_or_else(|| KmipError::missing("a Certificate Value"))?;
            (
                Tag::CERTIFICATE,
                Some(Material {
                    format: format::X_509,
                    presented: None,
                    algorithm: None,
                    length: None,
                    subtype: Some(
                        c.child(Tag::CERTIFICATE_TYPE)
                            .and_then(Ttlv::as_enum)
                            .unwrap_or(1),
                    ),
                    bytes: Zeroizing::new(value.to_vec()),
                }),
            )
        }
        object::OPAQUE_OBJECT => {
            let o = payload
                .child(Tag::OPAQUE_OBJECT)
                .ok_or_else(|| KmipError::missing("an Opaque Object"))?;
            let value = o
                .child(Tag::OPAQUE_DATA_VALUE)
                .and_then(Ttlv::as_bytes)
                .ok_or_else(|| KmipError::missing("an Opaque Data Value"))?;
            (
                Tag::OPAQUE_OBJECT,
                Some(Material {
                    format: format::OPAQUE,
                    presented: None,
                    algorithm: None,
                    length: None,
                    subtype: o.child(Tag::OPAQUE_DATA_TYPE).and_then(Ttlv::as_enum),
                    bytes: Zeroizing::new(value.to_vec()),
                }),
            )
        }
        other => {
            return Err(KmipError::unsupported(format!(
                "objects of type {other} cannot be registered here"
            )))
        }
    };
    if let Some(m) = m {
        return Ok(m);
    }
    let obj = payload
        .child(tag)
        .ok_or_else(|| KmipError::missing("the managed object"))?;
    let mut m = key_block(obj)?;
    if object_type == object::SECRET_DATA {
        m.subtype = obj.child(Tag::SECRET_DATA_TYPE).and_then(Ttlv::as_enum);
        if m.format == format::OPAQUE {
            m.format = format::RAW;
        }
    }
    match (object_type, m.format) {
        (object::PRIVATE_KEY, format::PKCS_1) => {
            m.bytes = rsa_pkcs1_to_pkcs8(&m.bytes);
            m.format = format::PKCS_8;
            m.presented = Some(format::PKCS_1);
        }
        (object::PUBLIC_KEY, format::PKCS_1) => {
            m.bytes = Zeroizing::new(rsa_pkcs1_to_spki(&m.bytes));
            m.format = format::X_509;
            m.presented = Some(format::PKCS_1);
        }
        _ => {}
    }
    Ok(m)
}

/// The managed object structure of a Get response, in `want` (the stored format when
/// `None`).
pub fn managed_object(m: &KmipManaged, want: Option<u32>) -> Result<Ttlv, KmipError> {
    let not_offered = |f: u32| {
        KmipError::new(
            crate::codes::reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
            format!("this object cannot be returned in key format {f}"),
        )
    };
    match m.object_type {
        object::CERTIFICATE => {
            return Ok(Ttlv::structure(
                Tag::CERTIFICATE,
                vec![
                    Ttlv::enumeration(Tag::CERTIFICATE_TYPE, m.subtype.unwrap_or(1)),
                    Ttlv::bytes(Tag::CERTIFICATE_VALUE, m.material.to_vec()),
                ],
            ))
        }
        object::OPAQUE_OBJECT => {
            return Ok(Ttlv::structure(
                Tag::OPAQUE_OBJECT,
                vec![
                    Ttlv::enumeration(Tag::OPAQUE_DATA_TYPE, m.subtype.unwrap_or(0x8000_0000)),
                    Ttlv::bytes(Tag::OPAQUE_DATA_VALUE, m.material.to_vec()),
                ],
            ))
        }
        _ => {}
    }
    let fmt = want.unwrap_or(match m.object_type {
        object::SECRET_DATA => format::OPAQUE,
        _ => m.presented,
    });
    let material = match (m.object_type, m.format, fmt) {
        (_, stored, f) if stored == f => Ttlv::bytes(Tag::KEY_MATERIAL, m.material.to_vec()),
        (object::SECRET_DATA, format::RAW, format::OPAQUE) => {
            Ttlv::bytes(Tag::KEY_MATERIAL, m.material.to_vec())
        }
        (object::SYMMETRIC_KEY, format::RAW, format::TRANSPARENT_SYMMETRIC_KEY) => Ttlv::structure(
            Tag::KEY_MATERIAL,
            vec![Ttlv::bytes(Tag::KEY, m.material.to_vec())],
        ),
        (object::PRIVATE_KEY, format::PKCS_8, format::PKCS_1) => Ttlv::bytes(
            Tag::KEY_MATERIAL,
            rsa_pkcs8_to_pkcs1(&m.material)
                .ok_or_else(|| not_offered(fmt))?
                .to_vec(),
        ),
        (object::PUBLIC_KEY, format::X_509, format::PKCS_1) => Ttlv::bytes(
            Tag::KEY_MATERIAL,
            rsa_spki_to_pkcs1(&m.material).ok_or_else(|| not_offered(fmt))?,
        ),
        _ => return Err(not_offered(fmt)),
    };
    let mut block = vec![
        Ttlv::enumeration(Tag::KEY_FORMAT_TYPE, fmt),
        Ttlv::structure(Tag::KEY_VALUE, vec![material]),
    ];
    if let Some(a) = m.algorithm {
        block.push(Ttlv::enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, a));
    }
    if let Some(l) = m.length {
        block.push(Ttlv::integer(Tag::CRYPTOGRAPHIC_LENGTH, l));
    }
    let block = Ttlv::structure(Tag::KEY_BLOCK, block);
    Ok(match m.object_type {
        object::SYMMETRIC_KEY => Ttlv::structure(Tag::SYMMETRIC_KEY, vec![block]),
        object::PRIVATE_KEY => Ttlv::structure(Tag::PRIVATE_KEY, vec![block]),
        object::PUBLIC_KEY => Ttlv::structure(Tag::PUBLIC_KEY, vec![block]),
        object::SECRET_DATA => Ttlv::structure(
            Tag::SECRET_DATA,
            vec![
                Ttlv::enumeration(Tag::SECRET_DATA_TYPE, m.subtype.unwrap_or(1)),
                block,
            ],
        ),
        other => {
            return Err(KmipError::unsupported(format!(
                "objects of type {other} cannot be returned"
            )))
        }
    })
}

// ---- Cryptographic parameters ----

fn hash_of(code: u32) -> Result<KmipHash, KmipError> {
    Ok(match code {
        hash::SHA_1 => KmipHash::Sha1,
        hash::SHA_224 => KmipHash::Sha224,
        hash::SHA_256 => KmipHash::Sha256,
        hash::SHA_384 => KmipHash::Sha384,
        hash::SHA_512 => KmipHash::Sha512,
        other => {
            return Err(KmipError::unsupported(format!(
                "hashing algorithm {other} is not supported"
            )))
        }
    })
}

/// The Hashing Algorithm of a payload's Cryptographic Parameters, if any.
pub fn params_hash(p: Option<&Ttlv>) -> Result<Option<KmipHash>, KmipError> {
    let params = p.and_then(|t| t.child(Tag::CRYPTOGRAPHIC_PARAMETERS));
    if let Some(h) = params
        .and_then(|c| c.child(Tag::HASHING_ALGORITHM))
        .and_then(Ttlv::as_enum)
    {
        return hash_of(h).map(Some);
    }
    Ok(
        match params
            .and_then(|c| c.child(Tag::CRYPTOGRAPHIC_ALGORITHM))
            .and_then(Ttlv::as_enum)
        {
            Some(alg::HMAC_SHA1) => Some(KmipHash::Sha1),
            Some(alg::HMAC_SHA224) => Some(KmipHash::Sha224),
            Some(alg::HMAC_SHA256) => Some(KmipHash::Sha256),
            Some(alg::HMAC_SHA384) => Some(KmipHash::Sha384),
            Some(alg::HMAC_SHA512) => Some(KmipHash::Sha512),
            _ => None,
        },
    )
}

/// The cipher of an Encrypt or Decrypt payload.
pub fn cipher(payload: &Ttlv) -> Result<KmipCipher, KmipError> {
    let p = payload
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .ok_or_else(|| KmipError::missing("Cryptographic Parameters (Block Cipher Mode)"))?;
    let m = p
        .child(Tag::BLOCK_CIPHER_MODE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| KmipError::missing("a Block Cipher Mode"))?;
    match m {
        mode::GCM => {
            let tag_len = match p.child(Tag::TAG_LENGTH).and_then(Ttlv::as_int) {
                None => 16,
                Some(n @ 12..=16) => n as usize,
                Some(_) => return Err(KmipError::invalid("Tag Length (12 to 16)")),
            };
            Ok(KmipCipher::AesGcm { tag_len })
        }
        mode::CBC => match p.child(Tag::PADDING_METHOD).and_then(Ttlv::as_enum) {
            None | Some(padding::PKCS5) => Ok(KmipCipher::AesCbc { pad: true }),
            Some(padding::NONE) => Ok(KmipCipher::AesCbc { pad: false }),
            Some(other) => Err(KmipError::unsupported(format!(
                "padding method {other} is not supported with CBC (PKCS5 and None are)"
            ))),
        },
        other => Err(KmipError::unsupported(format!(
            "block cipher mode {other} is not supported (CBC and GCM are)"
        ))),
    }
}

/// The signature scheme of a Sign or SignatureVerify payload.
pub fn signature(payload: &Ttlv) -> Result<KmipSignature, KmipError> {
    let p = payload
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .ok_or_else(|| KmipError::missing("Cryptographic Parameters"))?;
    let field = |t: Tag| p.child(t).and_then(Ttlv::as_enum);
    if let Some(d) = field(Tag::DIGITAL_SIGNATURE_ALGORITHM) {
        return Ok(match d {
            dsa::SHA1_WITH_RSA => KmipSignature::RsaPkcs1(KmipHash::Sha1),
            dsa::SHA224_WITH_RSA => KmipSignature::RsaPkcs1(KmipHash::Sha224),
            dsa::SHA256_WITH_RSA => KmipSignature::RsaPkcs1(KmipHash::Sha256),
            dsa::SHA384_WITH_RSA => KmipSignature::RsaPkcs1(KmipHash::Sha384),
            dsa::SHA512_WITH_RSA => KmipSignature::RsaPkcs1(KmipHash::Sha512),
            dsa::RSASSA_PSS => KmipSignature::RsaPss(hash_of(
                field(Tag::HASHING_ALGORITHM).unwrap_or(hash::SHA_256),
            )?),
            dsa::ECDSA_WITH_SHA1 => KmipSignature::Ecdsa(KmipHash::Sha1),
            dsa::ECDSA_WITH_SHA224 => KmipSignature::Ecdsa(KmipHash::Sha224),
            dsa::ECDSA_WITH_SHA256 => KmipSignature::Ecdsa(KmipHash::Sha256),
            dsa::ECDSA_WITH_SHA384 => KmipSignature::Ecdsa(KmipHash::Sha384),
            dsa::ECDSA_WITH_SHA512 => KmipSignature::Ecdsa(KmipHash::Sha512),
            other => {
                return Err(KmipError::unsupported(format!(
                    "digital signature algorithm {other} is not supported"
                )))
            }
        });
    }
    let h = hash_of(
        field(Tag::HASHING_ALGORITHM).ok_or_else(|| KmipError::missing("a Hashing Algorithm"))?,
    )?;
    match (
        field(Tag::CRYPTOGRAPHIC_ALGORITHM),
        field(Tag::PADDING_METHOD),
    ) {
        (Some(alg::RSA) | None, Some(padding::PSS)) => Ok(KmipSignature::RsaPss(h)),
        (Some(alg::RSA) | None, Some(padding::PKCS1_V1_5)) => Ok(KmipSignature::RsaPkcs1(h)),
        (Some(alg::ECDSA | alg::EC), _) => Ok(KmipSignature::Ecdsa(h)),
        (a, p) => Err(KmipError::unsupported(format!(
            "the signature parameters (algorithm {a:?}, padding {p:?}) are not supported"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_attribute_name_has_its_tag() {
        for n in ATTRIBUTE_NAMES {
            let t = tag_of(n).unwrap_or_else(|| panic!("no tag for {n}"));
            assert_eq!(name_of(t), Some(*n));
        }
        assert_eq!(
            tag_of("Cryptographic Algorithm"),
            Some(Tag::CRYPTOGRAPHIC_ALGORITHM)
        );
        assert_eq!(tag_of("x-custom"), None);
    }

    #[test]
    fn rsa_encodings_convert_both_ways() {
        let pkcs1 = der_tlv(0x30, &[0x02, 0x01, 0x05]);
        let p8 = rsa_pkcs1_to_pkcs8(&pkcs1);
        assert_eq!(
            rsa_pkcs8_to_pkcs1(&p8).map(|v| v.to_vec()),
            Some(pkcs1.clone())
        );
        let spki = rsa_pkcs1_to_spki(&pkcs1);
        assert_eq!(rsa_spki_to_pkcs1(&spki), Some(pkcs1));
        assert_eq!(rsa_spki_to_pkcs1(&[0x30, 0x00]), None);
        assert_eq!(rsa_pkcs8_to_pkcs1(&[0x30, 0x80]).map(|v| v.to_vec()), None);
    }

    #[test]
    fn attribute_values_round_trip() {
        let v = AttrValue::Struct(vec![
            (Tag::NAME_VALUE.0, AttrValue::Text("disk".into())),
            (Tag::NAME_TYPE.0, AttrValue::Enum(1)),
        ]);
        let t = ttlv_of(Tag::NAME, &v);
        assert_eq!(value_of(&t), v);
        let a = Attribute::new("x-owner", AttrValue::Text("ops".into()));
        let (back, index) = attribute_from_v1(&attribute_to_v1(&a, Some(2))).expect("v1");
        assert_eq!((back, index), (a, Some(2)));
        // A client's attribute, built from an item of any tag, reads back as its value.
        let sent = Ttlv::attribute("Cryptographic Length", Ttlv::integer(Tag::NAME, 256));
        assert_eq!(
            attribute_from_v1(&sent).expect("client attribute"),
            (
                Attribute::new("Cryptographic Length", AttrValue::Int(256)),
                None
            )
        );
    }
}
