//! Objects as the library holds them: typed attributes, the key blob the server sealed,
//! and where the object lives (a session, or a keystore on the server).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strongroom_client::grep11::pb;
use strongroom_model::pkcs11::{cka, cko, Cka, Ckk, Ckm, Cko};

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// CK_BBOOL.
    Bool(bool),
    /// CK_ULONG.
    Ulong(u64),
    /// A byte string (and every type this library does not interpret).
    Bytes(Vec<u8>),
}

/// How an attribute's value is laid out in the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One byte.
    Bool,
    /// A native CK_ULONG.
    Ulong,
    /// Bytes.
    Bytes,
    /// An array of CK_ULONG (CKA_ALLOWED_MECHANISMS). The library keeps it as GREP11
    /// carries it: [`Value::Bytes`], each element in 8 bytes big-endian.
    UlongArray,
    /// An array of CK_ATTRIBUTE (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE,
    /// CKA_DERIVE_TEMPLATE). The library does not enforce these templates, so it refuses
    /// them (`CKR_ATTRIBUTE_TYPE_INVALID`) rather than keep a restriction it would ignore.
    Template,
}

// Attribute codes this module needs beyond the engine's set (PKCS#11 v2.40 / 3.0).
const CERTIFICATE_TYPE: Cka = Cka(0x80);
const CERTIFICATE_CATEGORY: Cka = Cka(0x87);
const JAVA_MIDP_SECURITY_DOMAIN: Cka = Cka(0x88);
const NAME_HASH_ALGORITHM: Cka = Cka(0x8C);
/// CKA_START_DATE.
pub const START_DATE: Cka = Cka(0x110);
/// CKA_END_DATE.
pub const END_DATE: Cka = Cka(0x111);
/// CKA_ALWAYS_AUTHENTICATE.
pub const ALWAYS_AUTHENTICATE: Cka = Cka(0x202);
const MECHANISM_TYPE: Cka = Cka(0x500);
const PRIVATE_EXPONENT: Cka = Cka(0x123);

/// The C layout of an attribute.
pub fn kind_of(a: Cka) -> Kind {
    match a {
        cka::TOKEN
        | cka::PRIVATE
        | cka::TRUSTED
        | cka::SENSITIVE
        | cka::ENCRYPT
        | cka::DECRYPT
        | cka::WRAP
        | cka::UNWRAP
        | cka::SIGN
        | cka::SIGN_RECOVER
        | cka::VERIFY
        | cka::VERIFY_RECOVER
        | cka::DERIVE
        | cka::EXTRACTABLE
        | cka::LOCAL
        | cka::NEVER_EXTRACTABLE
        | cka::ALWAYS_SENSITIVE
        | cka::MODIFIABLE
        | cka::COPYABLE
        | cka::DESTROYABLE
        | cka::WRAP_WITH_TRUSTED
        | ALWAYS_AUTHENTICATE
        | cka::IBM_RESTRICTABLE
        | cka::IBM_NEVER_MODIFIABLE
        | cka::IBM_ATTRBOUND
        | cka::IBM_USE_AS_DATA
        | cka::ENCAPSULATE
        | cka::DECAPSULATE => Kind::Bool,
        cka::CLASS
        | cka::KEY_TYPE
        | cka::VALUE_LEN
        | cka::MODULUS_BITS
        | cka::PRIME_BITS
        | cka::PARAMETER_SET
        | cka::KEY_GEN_MECHANISM
        | CERTIFICATE_TYPE
        | CERTIFICATE_CATEGORY
        | JAVA_MIDP_SECURITY_DOMAIN
        | NAME_HASH_ALGORITHM
        | MECHANISM_TYPE => Kind::Ulong,
        cka::ALLOWED_MECHANISMS => Kind::UlongArray,
        cka::WRAP_TEMPLATE | cka::UNWRAP_TEMPLATE | cka::DERIVE_TEMPLATE => Kind::Template,
        _ => Kind::Bytes,
    }
}

/// Attributes a GREP11 template carries; the rest the library keeps itself.
pub fn server_side(a: Cka) -> bool {
    matches!(
        a,
        cka::CLASS
            | cka::KEY_TYPE
            | cka::VALUE_LEN
            | cka::MODULUS_BITS
            | cka::PUBLIC_EXPONENT
            | cka::EC_PARAMS
            | cka::PRIME_BITS
            | cka::PARAMETER_SET
            | cka::LABEL
            | cka::ID
            | cka::PRIVATE
            | cka::SENSITIVE
            | cka::ENCRYPT
            | cka::DECRYPT
            | cka::WRAP
            | cka::UNWRAP
            | cka::SIGN
            | cka::VERIFY
            | cka::DERIVE
            | cka::EXTRACTABLE
            | cka::MODIFIABLE
            | cka::TRUSTED
            | cka::WRAP_WITH_TRUSTED
            | cka::IBM_RESTRICTABLE
            | cka::IBM_NEVER_MODIFIABLE
            | cka::IBM_ATTRBOUND
            | cka::IBM_USE_AS_DATA
            | cka::IBM_STRUCT_PARAMS
            | cka::ALLOWED_MECHANISMS
    )
}

/// Attributes whose value must never leave the token.
pub fn secret_valued(a: Cka) -> bool {
    matches!(a, cka::VALUE | PRIVATE_EXPONENT) || (0x124..=0x128).contains(&a.0)
}

/// Attributes fixed at creation (`C_SetAttributeValue` refuses them).
pub fn fixed(a: Cka) -> bool {
    matches!(
        a,
        cka::CLASS
            | cka::KEY_TYPE
            | cka::TOKEN
            | cka::LOCAL
            | cka::NEVER_EXTRACTABLE
            | cka::ALWAYS_SENSITIVE
            | cka::KEY_GEN_MECHANISM
            | cka::VALUE_LEN
            | cka::MODULUS
            | cka::MODULUS_BITS
            | cka::PUBLIC_EXPONENT
            | cka::EC_PARAMS
            | cka::EC_POINT
            | cka::VALUE
            | cka::CHECK_VALUE
            | cka::PARAMETER_SET
            | cka::ALLOWED_MECHANISMS
    )
}

/// A template: attribute → value.
pub type Template = BTreeMap<Cka, Value>;

/// The GREP11 form of a template's server-side attributes.
pub fn to_pb(t: &Template) -> std::collections::HashMap<u64, pb::AttributeValue> {
    use pb::attribute_value::OneAttr;
    t.iter()
        .filter(|(a, _)| server_side(**a))
        .map(|(a, v)| {
            let one = match v {
                Value::Bool(b) => OneAttr::AttributeTf(*b),
                Value::Ulong(u) => OneAttr::AttributeI(*u as i64),
                Value::Bytes(b) => OneAttr::AttributeB(b.clone()),
            };
            (
                a.0,
                pb::AttributeValue {
                    one_attr: Some(one),
                },
            )
        })
        .collect()
}

/// A template of the attributes a GREP11 answer carries.
pub fn from_pb(m: &std::collections::HashMap<u64, pb::AttributeValue>) -> Template {
    use pb::attribute_value::OneAttr;
    m.iter()
        .filter_map(|(a, v)| {
            let a = Cka(*a);
            let v = match (&v.one_attr, kind_of(a)) {
                (Some(OneAttr::AttributeTf(b)), _) => Value::Bool(*b),
                (Some(OneAttr::AttributeI(i)), _) => Value::Ulong(*i as u64),
                (Some(OneAttr::AttributeB(b)), Kind::Bool) => {
                    Value::Bool(b.first().is_some_and(|x| *x != 0))
                }
                (Some(OneAttr::AttributeB(b)), _) => Value::Bytes(b.clone()),
                (None, _) => return None,
            };
            Some((a, v))
        })
        .collect()
}

/// An object's attributes, kept compact (a sorted vector: a process may hold tens of
/// thousands of objects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs(Vec<(Cka, Value)>);

impl Attrs {
    /// An attribute's value.
    pub fn get(&self, a: &Cka) -> Option<&Value> {
        self.0
            .binary_search_by_key(a, |(k, _)| *k)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets an attribute.
    pub fn insert(&mut self, a: Cka, v: Value) {
        match self.0.binary_search_by_key(&a, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (a, v)),
        }
    }

    /// Removes an attribute.
    pub fn remove(&mut self, a: &Cka) -> Option<Value> {
        self.0
            .binary_search_by_key(a, |(k, _)| *k)
            .ok()
            .map(|i| self.0.remove(i).1)
    }

    /// The attributes in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Cka, &Value)> {
        self.0.iter().map(|(a, v)| (a, v))
    }
}

impl From<Template> for Attrs {
    fn from(t: Template) -> Self {
        let mut v: Vec<(Cka, Value)> = t
            .into_iter()
            .map(|(a, mut v)| {
                if let Value::Bytes(b) = &mut v {
                    b.shrink_to_fit();
                }
                (a, v)
            })
            .collect();
        v.shrink_to_fit();
        Attrs(v)
    }
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// A session object, destroyed with its session.
    Session(u64),
    /// A token object in the server's keystore (private or public), under this id.
    Token {
        /// Its id in the keystore.
        id: String,
        /// The version the server gave it (for updates).
        version: i64,
    },
}

/// An object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its attributes (never the key material: that is in the blob).
    pub attrs: Attrs,
    /// The key blob the server sealed (keys), or none (data objects, certificates).
    pub blob: Option<Vec<u8>>,
    /// Where it lives.
    pub home: Home,
}

impl Object {
    /// A boolean attribute (its default when absent).
    pub fn flag(&self, a: Cka, default: bool) -> bool {
        match self.attrs.get(&a) {
            Some(Value::Bool(b)) => *b,
            _ => default,
        }
    }

    /// Whether CKA_ALLOWED_MECHANISMS lets `mech` use this key (absent or empty: any).
    pub fn allows(&self, mech: Ckm) -> bool {
        match self.attrs.get(&cka::ALLOWED_MECHANISMS) {
            Some(Value::Bytes(b)) if !b.is_empty() => b
                .chunks_exact(8)
                .any(|c| c == mech.0.to_be_bytes().as_slice()),
            _ => true,
        }
    }

    /// A CK_ULONG attribute.
    pub fn ulong(&self, a: Cka) -> Option<u64> {
        match self.attrs.get(&a) {
            Some(Value::Ulong(u)) => Some(*u),
            _ => None,
        }
    }

    /// The object class.
    pub fn class(&self) -> Cko {
        Cko(self.ulong(cka::CLASS).unwrap_or(u64::MAX))
    }

    /// The key type.
    pub fn key_type(&self) -> Ckk {
        Ckk(self.ulong(cka::KEY_TYPE).unwrap_or(u64::MAX))
    }

    /// Whether it needs a logged-in user to be seen.
    pub fn private(&self) -> bool {
        let default = matches!(self.class(), cko::PRIVATE_KEY | cko::SECRET_KEY);
        self.flag(cka::PRIVATE, default)
    }

    /// Whether it is a token object.
    pub fn token(&self) -> bool {
        matches!(self.home, Home::Token { .. })
    }

    /// Whether every attribute of `t` has the value given.
    pub fn matches(&self, t: &Template) -> bool {
        t.iter().all(|(a, v)| match *a {
            cka::TOKEN => matches!(v, Value::Bool(b) if *b == self.token()),
            _ => self.attrs.get(a) == Some(v),
        })
    }

    /// Whether the key is a secret key.
    pub fn is_secret(&self) -> bool {
        self.class() == cko::SECRET_KEY
    }
}

/// The form a token object is stored in on the server: versioned, self-describing.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    /// Format version (1).
    pub v: u32,
    /// Attributes.
    pub attrs: Vec<(u64, Value)>,
    /// The key blob.
    pub blob: Option<Vec<u8>>,
}

impl Stored {
    /// The stored form of `o`.
    pub fn of(o: &Object) -> Stored {
        Stored {
            v: 1,
            attrs: o.attrs.iter().map(|(a, v)| (a.0, v.clone())).collect(),
            blob: o.blob.clone(),
        }
    }

    /// The object a stored form describes.
    pub fn object(self, home: Home) -> Option<Object> {
        (self.v == 1).then(|| Object {
            attrs: self
                .attrs
                .into_iter()
                .map(|(a, v)| (Cka(a), v))
                .collect::<Template>()
                .into(),
            blob: self.blob,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Property test of the stored token object (v1): what the library writes to the
    //! server's keystore reads back as the same object, through the JSON bytes the server
    //! keeps; another format version is not read.
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::Ulong),
            proptest::collection::vec(any::<u8>(), 0..48).prop_map(Value::Bytes),
        ]
    }

    fn object() -> impl Strategy<Value = Object> {
        (
            proptest::collection::btree_map(any::<u64>().prop_map(Cka), value(), 0..16),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
        )
            .prop_map(|(t, blob)| Object {
                attrs: t.into(),
                blob,
                home: Home::Session(1),
            })
    }

    proptest! {
        #[test]
        fn token_objects_round_trip_through_their_stored_bytes(
            o in object(),
            id in "[0-9a-f]{1,32}",
            version in any::<i64>(),
            other in 2u32..,
        ) {
            let bytes = serde_json::to_vec(&Stored::of(&o)).unwrap();
            let home = Home::Token { id: id.clone(), version };
            let back = serde_json::from_slice::<Stored>(&bytes).unwrap().object(home).unwrap();
            prop_assert_eq!(&back.attrs, &o.attrs);
            prop_assert_eq!(&back.blob, &o.blob);
            let at_home = matches!(back.home, Home::Token { id: ref i, version: v } if *i == id && v == version);
            prop_assert!(at_home);
            let mut newer = Stored::of(&o);
            newer.v = other;
            let bytes = serde_json::to_vec(&newer).unwrap();
            let read = serde_json::from_slice::<Stored>(&bytes).unwrap().object(Home::Session(1));
            prop_assert!(read.is_none());
        }
    }
}
