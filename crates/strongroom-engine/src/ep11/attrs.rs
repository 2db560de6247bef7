//! PKCS#11 attributes of key objects: the values a template may carry, the canonical
//! encoding bound into blobs, and the checks a template must pass.

use std::collections::BTreeMap;

use super::consts::{cka, ckk, cko, ckr, Cka, Ckk, Ckm, Cko, Ckr};
use super::Ep11Error;

/// One attribute value, as GREP11 carries it (`AttributeValue` oneof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// CK_BBOOL.
    Bool(bool),
    /// CK_ULONG (GREP11 sends int64).
    Int(i64),
    /// Byte strings (and, big-endian, any other value).
    Bytes(Vec<u8>),
}

/// A template: attribute type → value.
pub type Template = BTreeMap<Cka, AttrValue>;

/// The attributes of a key object (canonical, bound into the blob).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs(pub BTreeMap<Cka, AttrValue>);

/// Boolean attributes a key object carries, with their defaults.
const BOOLS: [(Cka, bool); 17] = [
    (cka::TOKEN, false),
    (cka::PRIVATE, true),
    (cka::SENSITIVE, true),
    (cka::ENCRYPT, false),
    (cka::DECRYPT, false),
    (cka::WRAP, false),
    (cka::UNWRAP, false),
    (cka::SIGN, false),
    (cka::VERIFY, false),
    (cka::DERIVE, false),
    (cka::EXTRACTABLE, false),
    (cka::MODIFIABLE, true),
    (cka::TRUSTED, false),
    (cka::WRAP_WITH_TRUSTED, false),
    (cka::IBM_USE_AS_DATA, false),
    (cka::IBM_ATTRBOUND, false),
    (cka::IBM_RESTRICTABLE, false),
];

/// Attributes the token sets and a template may not.
const READ_ONLY: [Cka; 6] = [
    cka::LOCAL,
    cka::NEVER_EXTRACTABLE,
    cka::ALWAYS_SENSITIVE,
    cka::KEY_GEN_MECHANISM,
    cka::CHECK_VALUE,
    cka::PUBLIC_KEY_INFO,
];

/// Value-carrying attributes a template may give (checked by the operation).
const VALUES: [Cka; 13] = [
    cka::ALLOWED_MECHANISMS,
    cka::PRIME_BITS,
    cka::PARAMETER_SET,
    cka::IBM_STRUCT_PARAMS,
    cka::CLASS,
    cka::KEY_TYPE,
    cka::VALUE_LEN,
    cka::MODULUS_BITS,
    cka::PUBLIC_EXPONENT,
    cka::EC_PARAMS,
    cka::LABEL,
    cka::ID,
    cka::IBM_NEVER_MODIFIABLE,
];

/// Usage attributes that only some classes have.
const PRIVATE_ONLY: [Cka; 3] = [cka::SIGN, cka::DECRYPT, cka::UNWRAP];
const PUBLIC_ONLY: [Cka; 3] = [cka::VERIFY, cka::ENCRYPT, cka::WRAP];

fn invalid(code: Ckr, detail: String) -> Ep11Error {
    Ep11Error::new(code, detail)
}

impl AttrValue {
    /// The value as a CK_BBOOL.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            AttrValue::Bytes(b) if b.len() == 1 => Some(b[0] != 0),
            _ => None,
        }
    }
    /// A CK_ULONG value (a code of any PKCS#11 type).
    pub fn ulong(v: impl Into<u64>) -> Self {
        AttrValue::Int(v.into() as i64)
    }

    /// The value as a CK_ULONG (AttributeI, or big-endian bytes of up to 8).
    pub fn as_ulong(&self) -> Option<u64> {
        match self {
            AttrValue::Int(i) => u64::try_from(*i).ok(),
            AttrValue::Bytes(b) if !b.is_empty() && b.len() <= 8 => {
                Some(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
            }
            _ => None,
        }
    }
}

/// The template of an EC key a derivation makes (IBM's BTC derivation and aggregation): the
/// part that applies to `class` (see [`applicable`]), checked, and naming no other class or
/// key type.
pub fn for_derived_ec(t: &Template, class: Cko) -> Result<Template, Ep11Error> {
    let t = applicable(t, class);
    if class_in(&t).is_some_and(|c| c != class) {
        return Err(invalid(
            ckr::TEMPLATE_INCONSISTENT,
            "this derivation makes a key of another class than the template's CKA_CLASS".into(),
        ));
    }
    check_template(&t, class)?;
    if key_type_in(&t).is_some_and(|k| k != ckk::EC) {
        return Err(invalid(
            ckr::TEMPLATE_INCONSISTENT,
            "this derivation makes EC keys (CKA_KEY_TYPE CKK_EC)".into(),
        ));
    }
    Ok(t)
}

/// The part of a template that applies to a key of `class`: for derivations that serve one
/// template to a private and a public key alike (IBM's BTC examples send CKA_SIGN and
/// CKA_VERIFY, and CKA_VALUE_LEN 0, for both), the usage flags of the other half and the
/// secret key's length are left out.
pub fn applicable(t: &Template, class: Cko) -> Template {
    t.iter()
        .filter(|(a, _)| {
            !(class == cko::PUBLIC_KEY && PRIVATE_ONLY.contains(a)
                || class == cko::PRIVATE_KEY && PUBLIC_ONLY.contains(a)
                || class != cko::SECRET_KEY && **a == cka::VALUE_LEN)
        })
        .map(|(a, v)| (*a, v.clone()))
        .collect()
}

/// Checks a template given by a caller: every attribute known, of the right type, not
/// read-only, and usage attributes only where the class has them.
pub fn check_template(t: &Template, class: Cko) -> Result<(), Ep11Error> {
    for (&a, v) in t {
        if READ_ONLY.contains(&a) {
            return Err(invalid(
                ckr::ATTRIBUTE_READ_ONLY,
                format!("attribute 0x{a:x} is set by the server and cannot be given in a template"),
            ));
        }
        if a == cka::VALUE {
            return Err(invalid(
                ckr::ATTRIBUTE_READ_ONLY,
                "CKA_VALUE cannot be given in a template; import key material with UnwrapKey"
                    .into(),
            ));
        }
        if BOOLS.iter().any(|(b, _)| *b == a) {
            let Some(on) = v.as_bool() else {
                return Err(invalid(
                    ckr::ATTRIBUTE_VALUE_INVALID,
                    format!("attribute 0x{a:x} is a CK_BBOOL; send AttributeTF"),
                ));
            };
            if on && class == cko::PUBLIC_KEY && PRIVATE_ONLY.contains(&a) {
                return Err(invalid(
                    ckr::TEMPLATE_INCONSISTENT,
                    format!("attribute 0x{a:x} does not apply to a public key"),
                ));
            }
            if on && class == cko::PRIVATE_KEY && PUBLIC_ONLY.contains(&a) {
                return Err(invalid(
                    ckr::TEMPLATE_INCONSISTENT,
                    format!("attribute 0x{a:x} does not apply to a private key"),
                ));
            }
            if a == cka::TOKEN && on {
                return Err(invalid(
                    ckr::ATTRIBUTE_VALUE_INVALID,
                    "CKA_TOKEN=true: GREP11 keys are blobs held by the caller, never token objects"
                        .into(),
                ));
            }
            continue;
        }
        if VALUES.contains(&a) {
            let ok = match a {
                cka::CLASS
                | cka::KEY_TYPE
                | cka::VALUE_LEN
                | cka::MODULUS_BITS
                | cka::PRIME_BITS
                | cka::PARAMETER_SET => v.as_ulong().is_some(),
                cka::PUBLIC_EXPONENT => v.as_ulong().is_some() || matches!(v, AttrValue::Bytes(_)),
                cka::IBM_NEVER_MODIFIABLE => v.as_bool().is_some(),
                cka::ALLOWED_MECHANISMS => mechanism_list(v).is_some(),
                _ => matches!(v, AttrValue::Bytes(_)),
            };
            if !ok {
                return Err(invalid(
                    ckr::ATTRIBUTE_VALUE_INVALID,
                    format!("attribute 0x{a:x} has a value of the wrong type"),
                ));
            }
            continue;
        }
        return Err(invalid(
            ckr::ATTRIBUTE_TYPE_INVALID,
            format!("attribute 0x{a:x} is not supported in key templates"),
        ));
    }
    if let Some(c) = class_in(t) {
        if c != class {
            return Err(invalid(
                ckr::TEMPLATE_INCONSISTENT,
                format!(
                    "CKA_CLASS {c} does not match the object this call creates (class {class})"
                ),
            ));
        }
    }
    Ok(())
}

/// The object class a template names.
pub fn class_in(t: &Template) -> Option<Cko> {
    ulong(t, cka::CLASS).map(Cko)
}

/// The key type a template names.
pub fn key_type_in(t: &Template) -> Option<Ckk> {
    ulong(t, cka::KEY_TYPE).map(Ckk)
}

/// The ULONG value of an attribute in a template.
pub fn ulong(t: &Template, a: Cka) -> Option<u64> {
    t.get(&a).and_then(AttrValue::as_ulong)
}

/// A boolean attribute in a template (false when absent).
pub fn flag_of(t: &Template, a: Cka) -> bool {
    t.get(&a).and_then(AttrValue::as_bool).unwrap_or(false)
}

/// The bytes of an attribute in a template.
pub fn bytes(t: &Template, a: Cka) -> Option<&[u8]> {
    match t.get(&a) {
        Some(AttrValue::Bytes(b)) => Some(b),
        _ => None,
    }
}

impl Attrs {
    /// The attributes of a new key of `class` and `key_type` from a (checked) template.
    /// `local` is true for keys generated here.
    pub fn build(
        t: &Template,
        class: Cko,
        key_type: Ckk,
        local: bool,
        gen_mech: Option<Ckm>,
    ) -> Attrs {
        let mut m = BTreeMap::new();
        m.insert(cka::CLASS, AttrValue::ulong(class));
        m.insert(cka::KEY_TYPE, AttrValue::ulong(key_type));
        for (a, default) in BOOLS {
            let on = t.get(&a).and_then(AttrValue::as_bool).unwrap_or(default);
            m.insert(a, AttrValue::Bool(on));
        }
        if class == cko::PUBLIC_KEY {
            m.insert(
                cka::PRIVATE,
                AttrValue::Bool(
                    t.get(&cka::PRIVATE)
                        .and_then(AttrValue::as_bool)
                        .unwrap_or(false),
                ),
            );
            m.insert(cka::SENSITIVE, AttrValue::Bool(false));
            m.insert(cka::EXTRACTABLE, AttrValue::Bool(true));
        }
        for a in [cka::LABEL, cka::ID, cka::ALLOWED_MECHANISMS] {
            if let Some(v) = t.get(&a) {
                m.insert(a, v.clone());
            }
        }
        m.insert(cka::LOCAL, AttrValue::Bool(local));
        if class != cko::PUBLIC_KEY {
            let ext = m
                .get(&cka::EXTRACTABLE)
                .and_then(AttrValue::as_bool)
                .unwrap_or(false);
            let sens = m
                .get(&cka::SENSITIVE)
                .and_then(AttrValue::as_bool)
                .unwrap_or(true);
            m.insert(cka::NEVER_EXTRACTABLE, AttrValue::Bool(local && !ext));
            m.insert(cka::ALWAYS_SENSITIVE, AttrValue::Bool(local && sens));
        }
        if let Some(g) = gen_mech {
            m.insert(cka::KEY_GEN_MECHANISM, AttrValue::ulong(g));
        }
        Attrs(m)
    }

    /// A boolean attribute (false when absent).
    pub fn flag(&self, a: Cka) -> bool {
        self.0.get(&a).and_then(AttrValue::as_bool).unwrap_or(false)
    }

    /// Whether the key's CKA_ALLOWED_MECHANISMS lets `mech` use it: an absent or empty list
    /// allows every mechanism (as SoftHSM2 reads it).
    pub fn allows(&self, mech: Ckm) -> bool {
        // Checked on every use: read the bytes in place rather than build the list.
        match self.0.get(&cka::ALLOWED_MECHANISMS) {
            Some(AttrValue::Bytes(b)) if !b.is_empty() => b
                .chunks_exact(8)
                .any(|c| c == mech.0.to_be_bytes().as_slice()),
            _ => true,
        }
    }

    /// A ULONG attribute.
    pub fn ulong(&self, a: Cka) -> Option<u64> {
        self.0.get(&a).and_then(AttrValue::as_ulong)
    }

    /// The object class.
    pub fn class(&self) -> Cko {
        Cko(self.ulong(cka::CLASS).unwrap_or(u64::MAX))
    }

    /// The key type.
    pub fn key_type(&self) -> Ckk {
        Ckk(self.ulong(cka::KEY_TYPE).unwrap_or(u64::MAX))
    }

    /// Sets a value attribute.
    pub fn set(&mut self, a: Cka, v: AttrValue) {
        self.0.insert(a, v);
    }

    /// The canonical encoding: for each attribute in ascending type order, type (8 bytes
    /// big-endian), kind (1 = bool, 2 = int, 3 = bytes), length (4 bytes big-endian), value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (a, v) in &self.0 {
            out.extend_from_slice(&a.to_be_bytes());
            let (kind, val): (u8, Vec<u8>) = match v {
                AttrValue::Bool(b) => (1, vec![u8::from(*b)]),
                AttrValue::Int(i) => (2, i.to_be_bytes().to_vec()),
                AttrValue::Bytes(b) => (3, b.clone()),
            };
            out.push(kind);
            out.extend_from_slice(&(val.len() as u32).to_be_bytes());
            out.extend_from_slice(&val);
        }
        out
    }

    /// Decodes [`Attrs::encode`]; refuses anything not in canonical form.
    pub fn decode(mut b: &[u8]) -> Option<Attrs> {
        let mut m = BTreeMap::new();
        let mut last: Option<Cka> = None;
        while !b.is_empty() {
            if b.len() < 13 {
                return None;
            }
            let a = Cka(u64::from_be_bytes(b[..8].try_into().ok()?));
            let kind = b[8];
            let len = u32::from_be_bytes(b[9..13].try_into().ok()?) as usize;
            let rest = &b[13..];
            if rest.len() < len || last.is_some_and(|l| l >= a) {
                return None;
            }
            let (val, rest) = rest.split_at(len);
            let v = match (kind, len) {
                (1, 1) if val[0] <= 1 => AttrValue::Bool(val[0] == 1),
                (2, 8) => AttrValue::Int(i64::from_be_bytes(val.try_into().ok()?)),
                (3, _) => AttrValue::Bytes(val.to_vec()),
                _ => return None,
            };
            m.insert(a, v);
            last = Some(a);
            b = rest;
        }
        Some(Attrs(m))
    }
}

/// The most mechanisms a CKA_ALLOWED_MECHANISMS list names.
pub const MAX_ALLOWED_MECHANISMS: usize = 256;

/// The mechanisms of a CKA_ALLOWED_MECHANISMS value: GREP11 carries the array as bytes,
/// each CK_MECHANISM_TYPE in 8 bytes big-endian. `None` for any other shape.
pub fn mechanism_list(v: &AttrValue) -> Option<Vec<Ckm>> {
    let AttrValue::Bytes(b) = v else {
        return None;
    };
    if !b.len().is_multiple_of(8) || b.len() / 8 > MAX_ALLOWED_MECHANISMS {
        return None;
    }
    Some(
        b.chunks_exact(8)
            .map(|c| Ckm(c.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))))
            .collect(),
    )
}

/// A secret key type and its allowed value lengths.
pub fn secret_len_ok(key_type: Ckk, len: usize) -> bool {
    match key_type {
        ckk::AES => matches!(len, 16 | 24 | 32),
        ckk::DES2 => len == 16,
        ckk::DES3 => len == 24,
        ckk::GENERIC_SECRET => (1..=512).contains(&len),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(AttrValue::Bytes),
        ]
    }

    proptest! {
        /// Every attribute block decodes to what was encoded.
        #[test]
        fn any_block_round_trips(m in proptest::collection::btree_map(any::<u64>().prop_map(Cka), value(), 0..12)) {
            let a = Attrs(m);
            prop_assert_eq!(Attrs::decode(&a.encode()), Some(a));
        }

        /// The encoding is canonical: whatever bytes decode, encode back to the same bytes
        /// (so two blobs with the same attributes cannot differ in their MAC'd bytes).
        #[test]
        fn whatever_decodes_is_canonical(
            m in proptest::collection::btree_map(any::<u64>().prop_map(Cka), value(), 1..8),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            // A valid block with one byte changed: it decodes to something else or not at
            // all, and what decodes encodes back to the same bytes.
            let mut b = Attrs(m).encode();
            let i = at.index(b.len());
            b[i] = byte;
            if let Some(a) = Attrs::decode(&b) {
                prop_assert_eq!(a.encode(), b);
            }
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        let mut t = Template::new();
        t.insert(cka::ENCRYPT, AttrValue::Bool(true));
        t.insert(cka::VALUE_LEN, AttrValue::Int(32));
        t.insert(cka::LABEL, AttrValue::Bytes(b"k".to_vec()));
        check_template(&t, cko::SECRET_KEY).unwrap();
        let a = Attrs::build(&t, cko::SECRET_KEY, ckk::AES, true, None);
        let e = a.encode();
        assert_eq!(Attrs::decode(&e), Some(a.clone()));
        assert!(a.flag(cka::ENCRYPT) && !a.flag(cka::DECRYPT) && a.flag(cka::NEVER_EXTRACTABLE));
        assert!(Attrs::decode(&e[..e.len() - 1]).is_none());
    }

    #[test]
    fn bad_templates_get_their_codes() {
        let code = |a: Cka, v: AttrValue, class: Cko| {
            let mut t = Template::new();
            t.insert(a, v);
            check_template(&t, class).err().map(|e| e.ckr)
        };
        assert_eq!(
            code(cka::LOCAL, AttrValue::Bool(true), cko::SECRET_KEY),
            Some(ckr::ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            code(cka::ENCRYPT, AttrValue::Int(1), cko::SECRET_KEY),
            Some(ckr::ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            code(Cka(0x7777), AttrValue::Int(1), cko::SECRET_KEY),
            Some(ckr::ATTRIBUTE_TYPE_INVALID)
        );
        assert_eq!(
            code(cka::SIGN, AttrValue::Bool(true), cko::PUBLIC_KEY),
            Some(ckr::TEMPLATE_INCONSISTENT)
        );
        assert_eq!(
            code(cka::CLASS, AttrValue::Int(3), cko::SECRET_KEY),
            Some(ckr::TEMPLATE_INCONSISTENT)
        );
        assert_eq!(
            code(cka::SIGN, AttrValue::Bool(false), cko::PUBLIC_KEY),
            None
        );
    }
}
