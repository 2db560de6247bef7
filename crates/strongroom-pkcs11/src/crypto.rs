//! Key management, each a GREP11 call with the key's blob: generate, wrap and unwrap,
//! derive, encapsulate, import. The operations in progress are in [`crate::ops`].

use strongroom_client::grep11::pb;
use strongroom_model::pkcs11::{cka, ckk, ckm, cko, ckr, Cka, Ckk, Ckm, Cko, Ckr};

use zeroize::Zeroizing;

use crate::der::{self, Public};
use crate::library::{fail, rpc, Library, Mechanism, Result};
use crate::object::{self, Home, Object, Template, Value};
use crate::ops::Kind;

const PRIVATE_EXPONENT: Cka = Cka(0x123);
const PRIME_1: Cka = Cka(0x124);
const PRIME_2: Cka = Cka(0x125);
const EXPONENT_1: Cka = Cka(0x126);
const EXPONENT_2: Cka = Cka(0x127);
const COEFFICIENT: Cka = Cka(0x128);

/// The most input one GREP11 message carries here; larger inputs go in parts.
pub(crate) const CHUNK: usize = 1 << 20;

pub(crate) fn kb(blob: &[u8]) -> Option<pb::KeyBlob> {
    Some(pb::KeyBlob {
        key_blobs: vec![blob.to_vec()],
        ..Default::default()
    })
}

fn blob_of(k: &Option<pb::KeyBlob>, bytes: Vec<u8>) -> Vec<u8> {
    match k.as_ref().and_then(|k| k.key_blobs.first()) {
        Some(b) if !b.is_empty() => b.clone(),
        _ => bytes,
    }
}

fn attrs_of(k: &Option<pb::KeyBlob>) -> Template {
    k.as_ref()
        .map(|k| object::from_pb(&k.attributes))
        .unwrap_or_default()
}

/// The usage attribute an operation needs.
pub(crate) fn usage(k: Kind) -> Option<(Cka, Cko)> {
    match k {
        Kind::Encrypt => Some((cka::ENCRYPT, cko::PUBLIC_KEY)),
        Kind::Decrypt => Some((cka::DECRYPT, cko::PRIVATE_KEY)),
        Kind::Sign => Some((cka::SIGN, cko::PRIVATE_KEY)),
        Kind::Verify => Some((cka::VERIFY, cko::PUBLIC_KEY)),
        Kind::Digest => None,
    }
}

/// The attributes of a new key: what the application asked, what the server bound into
/// the blob, and what the token sets.
fn new_key_attrs(asked: &Template, server: Template, class: Cko, mech: Ckm) -> Template {
    let mut a: Template = asked
        .iter()
        .filter(|(k, _)| **k != cka::TOKEN)
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    a.extend(server);
    if mech == ckm::ML_KEM_KEY_PAIR_GEN {
        // The server keeps ML-KEM's use as CKA_DERIVE (GREP11 encapsulates through
        // DeriveKey); the application sees PKCS#11 3.2's attributes, and CKA_DERIVE only
        // if it asked for it.
        let derive = matches!(a.get(&cka::DERIVE), Some(Value::Bool(true)));
        let usage = if class == cko::PUBLIC_KEY {
            cka::ENCAPSULATE
        } else {
            cka::DECAPSULATE
        };
        a.entry(usage).or_insert(Value::Bool(derive));
        let asked_derive = asked.get(&cka::DERIVE).cloned();
        a.insert(cka::DERIVE, asked_derive.unwrap_or(Value::Bool(false)));
    }
    a.insert(cka::CLASS, Value::Ulong(class.0));
    a.entry(cka::LOCAL).or_insert(Value::Bool(true));
    a.entry(cka::KEY_GEN_MECHANISM)
        .or_insert(Value::Ulong(mech.0));
    for (flag, default) in [
        (cka::MODIFIABLE, true),
        (cka::COPYABLE, true),
        (cka::DESTROYABLE, true),
    ] {
        a.entry(flag).or_insert(Value::Bool(default));
    }
    if matches!(class, cko::SECRET_KEY | cko::PRIVATE_KEY) {
        let sensitive = !matches!(a.get(&cka::SENSITIVE), Some(Value::Bool(false)));
        let extractable = matches!(a.get(&cka::EXTRACTABLE), Some(Value::Bool(true)));
        a.entry(cka::SENSITIVE).or_insert(Value::Bool(sensitive));
        a.entry(cka::EXTRACTABLE)
            .or_insert(Value::Bool(extractable));
        a.entry(cka::ALWAYS_SENSITIVE)
            .or_insert(Value::Bool(sensitive));
        a.entry(cka::NEVER_EXTRACTABLE)
            .or_insert(Value::Bool(!extractable));
    }
    if class == cko::PRIVATE_KEY {
        a.entry(object::ALWAYS_AUTHENTICATE)
            .or_insert(Value::Bool(false));
    }
    a.entry(cka::LABEL).or_insert(Value::Bytes(Vec::new()));
    a.entry(cka::ID).or_insert(Value::Bytes(Vec::new()));
    a
}

/// Adds the public values an SPKI carries (RSA modulus and exponent, EC point).
fn add_public(a: &mut Template, spki: &[u8], point: bool) {
    match der::public_of_spki(spki) {
        Some(Public::Rsa { modulus, exponent }) => {
            a.insert(cka::MODULUS_BITS, Value::Ulong(bits_of(&modulus)));
            a.insert(cka::MODULUS, Value::Bytes(modulus));
            a.insert(cka::PUBLIC_EXPONENT, Value::Bytes(exponent));
        }
        Some(Public::Ec { params, point: p }) => {
            a.insert(cka::EC_PARAMS, Value::Bytes(params));
            if point {
                a.insert(cka::EC_POINT, Value::Bytes(p));
            }
        }
        Some(Public::PostQuantum { value }) if point => {
            a.insert(cka::VALUE, Value::Bytes(value));
        }
        Some(Public::PostQuantum { .. }) => {}
        None => {}
    }
}

fn bits_of(n: &[u8]) -> u64 {
    let lead = n.first().map_or(0, |b| 8 - b.leading_zeros() as u64);
    lead + 8 * (n.len().saturating_sub(1) as u64)
}

fn token_of(t: &Template) -> bool {
    matches!(t.get(&cka::TOKEN), Some(Value::Bool(true)))
}

/// The class of the key a derivation makes: IBM's BTC derivations make EC private or public
/// keys, every other derivation a secret key.
fn derived_class(m: &Mechanism) -> Cko {
    use pb::mechanism::Parameter;
    match &m.parameter {
        Some(Parameter::BtcDeriveParameter(p))
            if u64::try_from(p.r#type).is_ok_and(strongroom_model::pkcs11::btc::makes_public) =>
        {
            cko::PUBLIC_KEY
        }
        Some(Parameter::BtcDeriveParameter(_)) => cko::PRIVATE_KEY,
        _ => cko::SECRET_KEY,
    }
}

fn pb_template(t: &Template, class: Cko) -> std::collections::HashMap<u64, pb::AttributeValue> {
    let mut t = t.clone();
    t.remove(&cka::TOKEN);
    t.insert(cka::CLASS, Value::Ulong(class.0));
    object::to_pb(&t)
}

impl Library {
    pub(crate) fn checked_mech(&self, slot: u64, m: &Mechanism) -> Result<()> {
        if self.mechanisms(slot)?.contains(&Ckm(m.mechanism)) {
            Ok(())
        } else {
            Err(ckr::MECHANISM_INVALID)
        }
    }

    pub(crate) fn key_for(
        &self,
        h: u64,
        key: u64,
        attr: Cka,
        mech: Ckm,
    ) -> Result<(std::sync::Arc<Object>, Vec<u8>)> {
        let o = self.object(h, key).map_err(|_| ckr::KEY_HANDLE_INVALID)?;
        let blob = o.blob.clone().ok_or(ckr::KEY_HANDLE_INVALID)?;
        if !o.flag(attr, false) {
            return Err(ckr::KEY_FUNCTION_NOT_PERMITTED);
        }
        // The server refuses it too (the list is bound into the blob); refusing here
        // answers at C_*Init, where PKCS#11 expects it.
        if !o.allows(mech) {
            return Err(ckr::MECHANISM_INVALID);
        }
        Ok((o, blob))
    }

    /// `C_GenerateKey` (secret keys, and DSA or DH domain parameters).
    pub fn generate_key(&self, h: u64, m: Mechanism, t: &Template) -> Result<u64> {
        let (slot, _) = self.session_slot(h)?;
        let code = Ckm(m.mechanism);
        let params = matches!(code, ckm::DSA_PARAMETER_GEN | ckm::DH_PKCS_PARAMETER_GEN);
        let class = if params {
            cko::DOMAIN_PARAMETERS
        } else {
            cko::SECRET_KEY
        };
        self.may_create(h, t, class)?;
        self.checked_mech(slot, &m)?;
        let req = pb::GenerateKeyRequest {
            mech: Some(m),
            template: pb_template(t, class),
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        let blob = blob_of(&r.key, r.key_bytes);
        if params {
            // Domain parameters come back in the clear (DER): their values are attributes.
            let mut attrs: Template = t
                .iter()
                .filter(|(a, _)| **a != cka::TOKEN)
                .map(|(a, v)| (*a, v.clone()))
                .collect();
            attrs.extend(attrs_of(&r.key));
            attrs.insert(cka::CLASS, Value::Ulong(class.0));
            attrs.insert(cka::LOCAL, Value::Bool(true));
            let values = der::integers_of(&blob).ok_or(ckr::DEVICE_ERROR)?;
            let names: &[Cka] = if code == ckm::DSA_PARAMETER_GEN {
                &[cka::PRIME, cka::SUBPRIME, cka::BASE]
            } else {
                &[cka::PRIME, cka::BASE]
            };
            for (a, v) in names.iter().zip(values) {
                attrs.insert(*a, Value::Bytes(v));
            }
            let o = Object {
                attrs: attrs.into(),
                blob: None,
                home: Home::Session(h),
            };
            return self.add_object(h, o, token_of(t));
        }
        let attrs = new_key_attrs(t, attrs_of(&r.key), cko::SECRET_KEY, code);
        let o = Object {
            attrs: attrs.into(),
            blob: Some(blob),
            home: Home::Session(h),
        };
        self.add_object(h, o, token_of(t))
    }

    /// `C_GenerateKeyPair`: (public, private).
    pub fn generate_key_pair(
        &self,
        h: u64,
        m: Mechanism,
        pt: &Template,
        st: &Template,
    ) -> Result<(u64, u64)> {
        let (slot, _) = self.session_slot(h)?;
        self.may_create(h, pt, cko::PUBLIC_KEY)?;
        self.may_create(h, st, cko::PRIVATE_KEY)?;
        self.checked_mech(slot, &m)?;
        let code = Ckm(m.mechanism);
        let mut sent = pt.clone();
        if matches!(code, ckm::DSA_KEY_PAIR_GEN | ckm::DH_PKCS_KEY_PAIR_GEN)
            && !sent.contains_key(&cka::IBM_STRUCT_PARAMS)
        {
            // PKCS#11 names the domain by CKA_PRIME, CKA_SUBPRIME and CKA_BASE; EP11 takes
            // them as one DER structure.
            let get = |a: Cka| match pt.get(&a).or_else(|| st.get(&a)) {
                Some(Value::Bytes(b)) => Some(b.clone()),
                _ => None,
            };
            let values: Option<Vec<Vec<u8>>> = if code == ckm::DSA_KEY_PAIR_GEN {
                [cka::PRIME, cka::SUBPRIME, cka::BASE]
                    .into_iter()
                    .map(get)
                    .collect()
            } else {
                [cka::PRIME, cka::BASE].into_iter().map(get).collect()
            };
            let values = values.ok_or(ckr::TEMPLATE_INCOMPLETE)?;
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            sent.insert(cka::IBM_STRUCT_PARAMS, Value::Bytes(der::integers(&refs)));
        }
        let mut sent_private = st.clone();
        if code == ckm::ML_KEM_KEY_PAIR_GEN {
            // GREP11 encapsulates and decapsulates through DeriveKey: the server's keys
            // carry CKA_DERIVE where PKCS#11 3.2 names CKA_ENCAPSULATE / CKA_DECAPSULATE.
            for (t, a) in [
                (&mut sent, cka::ENCAPSULATE),
                (&mut sent_private, cka::DECAPSULATE),
            ] {
                if matches!(t.get(&a), Some(Value::Bool(true))) {
                    t.insert(cka::DERIVE, Value::Bool(true));
                }
            }
        }
        let req = pb::GenerateKeyPairRequest {
            mech: Some(m),
            pub_key_template: pb_template(&sent, cko::PUBLIC_KEY),
            priv_key_template: pb_template(&sent_private, cko::PRIVATE_KEY),
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        let pub_blob = blob_of(&r.pub_key, r.pub_key_bytes);
        let priv_blob = blob_of(&r.priv_key, r.priv_key_bytes);
        let mut pa = new_key_attrs(pt, attrs_of(&r.pub_key), cko::PUBLIC_KEY, code);
        let mut sa = new_key_attrs(st, attrs_of(&r.priv_key), cko::PRIVATE_KEY, code);
        add_public(&mut pa, &pub_blob, true);
        add_public(&mut sa, &pub_blob, false);
        if let Some(kt) = pa.get(&cka::KEY_TYPE).cloned() {
            sa.entry(cka::KEY_TYPE).or_insert(kt);
        }
        let public = self.add_object(
            h,
            Object {
                attrs: pa.into(),
                blob: Some(pub_blob),
                home: Home::Session(h),
            },
            token_of(pt),
        )?;
        match self.add_object(
            h,
            Object {
                attrs: sa.into(),
                blob: Some(priv_blob),
                home: Home::Session(h),
            },
            token_of(st),
        ) {
            Ok(private) => Ok((public, private)),
            Err(e) => {
                let _ = self.destroy_object(h, public);
                Err(e)
            }
        }
    }

    /// `C_WrapKey`.
    pub fn wrap_key(&self, h: u64, m: Mechanism, wrapping: u64, key: u64) -> Result<Vec<u8>> {
        let (_, kek) = self
            .key_for(h, wrapping, cka::WRAP, Ckm(m.mechanism))
            .map_err(|e| match e {
                ckr::KEY_HANDLE_INVALID => ckr::WRAPPING_KEY_HANDLE_INVALID,
                other => other,
            })?;
        let k = self.object(h, key).map_err(|_| ckr::KEY_HANDLE_INVALID)?;
        let blob = k.blob.clone().ok_or(ckr::KEY_HANDLE_INVALID)?;
        let req = pb::WrapKeyRequest {
            mech: Some(m),
            key: kb(&blob),
            ke_k: kb(&kek),
            ..Default::default()
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        Ok(r.wrapped)
    }

    /// `C_UnwrapKey`.
    pub fn unwrap_key(
        &self,
        h: u64,
        m: Mechanism,
        unwrapping: u64,
        wrapped: &[u8],
        t: &Template,
    ) -> Result<u64> {
        let (_, kek) = self
            .key_for(h, unwrapping, cka::UNWRAP, Ckm(m.mechanism))
            .map_err(|e| match e {
                ckr::KEY_HANDLE_INVALID => ckr::UNWRAPPING_KEY_HANDLE_INVALID,
                other => other,
            })?;
        let class = match t.get(&cka::CLASS) {
            Some(Value::Ulong(c)) => Cko(*c),
            _ => cko::SECRET_KEY,
        };
        self.may_create(h, t, class)?;
        self.unwrap_blob(h, m, &kek, wrapped, t, class)
    }

    fn unwrap_blob(
        &self,
        h: u64,
        m: Mechanism,
        kek: &[u8],
        wrapped: &[u8],
        t: &Template,
        class: Cko,
    ) -> Result<u64> {
        let code = Ckm(m.mechanism);
        let req = pb::UnwrapKeyRequest {
            wrapped: wrapped.to_vec(),
            mech: Some(m),
            template: pb_template(t, class),
            ke_k: kb(kek),
            ..Default::default()
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        let blob = blob_of(&r.unwrapped, r.unwrapped_bytes);
        let mut attrs = new_key_attrs(t, attrs_of(&r.unwrapped), class, code);
        attrs.insert(cka::LOCAL, Value::Bool(false));
        attrs.remove(&cka::KEY_GEN_MECHANISM);
        if class != cko::SECRET_KEY {
            add_public(&mut attrs, &blob, class == cko::PUBLIC_KEY);
        }
        self.add_object(
            h,
            Object {
                attrs: attrs.into(),
                blob: Some(blob),
                home: Home::Session(h),
            },
            token_of(t),
        )
    }

    /// `C_DeriveKey`.
    /// `C_DeriveKey`: the new key's handle and the server's CheckSum (for
    /// `CKM_IBM_BTC_DERIVE`, the child's chain code).
    pub fn derive_key(
        &self,
        h: u64,
        m: Mechanism,
        base: u64,
        t: &Template,
    ) -> Result<(u64, Vec<u8>)> {
        let (_, blob) = self.key_for(h, base, cka::DERIVE, Ckm(m.mechanism))?;
        let class = derived_class(&m);
        self.may_create(h, t, class)?;
        let code = Ckm(m.mechanism);
        let req = pb::DeriveKeyRequest {
            mech: Some(m),
            template: pb_template(t, class),
            base_key: kb(&blob),
            ..Default::default()
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        let k = self.new_derived(h, t, &r, code, class)?;
        Ok((k, r.check_sum))
    }

    /// `C_EncapsulateKey` with CKM_ML_KEM: a new secret key (an object made from the
    /// template) and the ciphertext for the holder of the private key. With `out` None the
    /// caller asks the ciphertext's length only, and no key is made.
    pub fn encapsulate_key(
        &self,
        h: u64,
        m: Mechanism,
        public: u64,
        t: &Template,
        out: Option<usize>,
    ) -> Result<(Option<u64>, Vec<u8>, usize)> {
        if Ckm(m.mechanism) != ckm::ML_KEM {
            return Err(ckr::MECHANISM_INVALID);
        }
        let (o, blob) = self.key_for(h, public, cka::ENCAPSULATE, ckm::ML_KEM)?;
        if o.key_type() != ckk::ML_KEM {
            return Err(ckr::KEY_TYPE_INCONSISTENT);
        }
        let len = match o.ulong(cka::PARAMETER_SET) {
            Some(1) => 768,
            Some(2) => 1088,
            Some(3) => 1568,
            _ => return Err(ckr::KEY_TYPE_INCONSISTENT),
        };
        match out {
            None => return Ok((None, Vec::new(), len)),
            Some(n) if n < len => return Err(ckr::BUFFER_TOO_SMALL),
            Some(_) => {}
        }
        self.may_create(h, t, cko::SECRET_KEY)?;
        let req = pb::DeriveKeyRequest {
            mech: Some(m),
            template: pb_template(t, cko::SECRET_KEY),
            base_key: kb(&blob),
            ..Default::default()
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        // The check value (7 bytes) comes first, then the ciphertext.
        let ct = r.check_sum.get(7..).ok_or(ckr::DEVICE_ERROR)?.to_vec();
        if ct.len() != len {
            return Err(ckr::DEVICE_ERROR);
        }
        let k = self.new_derived(h, t, &r, ckm::ML_KEM, cko::SECRET_KEY)?;
        Ok((Some(k), ct, len))
    }

    /// `C_DecapsulateKey` with CKM_ML_KEM: the secret key the ciphertext carries.
    pub fn decapsulate_key(
        &self,
        h: u64,
        m: Mechanism,
        private: u64,
        t: &Template,
        ct: &[u8],
    ) -> Result<u64> {
        if Ckm(m.mechanism) != ckm::ML_KEM || m.parameter.is_some() {
            return Err(ckr::MECHANISM_INVALID);
        }
        let (_, blob) = self.key_for(h, private, cka::DECAPSULATE, ckm::ML_KEM)?;
        self.may_create(h, t, cko::SECRET_KEY)?;
        let req = pb::DeriveKeyRequest {
            mech: Some(Mechanism {
                mechanism: ckm::ML_KEM.0,
                parameter: Some(pb::mechanism::Parameter::ParameterB(ct.to_vec())),
            }),
            template: pb_template(t, cko::SECRET_KEY),
            base_key: kb(&blob),
            ..Default::default()
        };
        let r = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        self.new_derived(h, t, &r, ckm::ML_KEM, cko::SECRET_KEY)
    }

    fn new_derived(
        &self,
        h: u64,
        t: &Template,
        r: &pb::DeriveKeyResponse,
        code: Ckm,
        class: Cko,
    ) -> Result<u64> {
        let mut attrs = new_key_attrs(t, attrs_of(&r.new_key), class, code);
        attrs.insert(cka::LOCAL, Value::Bool(false));
        let blob = blob_of(&r.new_key, r.new_key_bytes.clone());
        if class == cko::PUBLIC_KEY {
            add_public(&mut attrs, &blob, true);
        }
        self.add_object(
            h,
            Object {
                attrs: attrs.into(),
                blob: Some(blob),
                home: Home::Session(h),
            },
            token_of(t),
        )
    }

    /// Imports a key given in the clear (`C_CreateObject`): the value goes to the server
    /// over the channel's TLS, is encrypted there under a fresh session key, and unwrapped
    /// into a blob; public keys are imported as an SPKI.
    pub(crate) fn import(&self, h: u64, t: &Template, token: bool) -> Result<u64> {
        let class = match t.get(&cka::CLASS) {
            Some(Value::Ulong(c)) => Cko(*c),
            _ => return Err(ckr::TEMPLATE_INCOMPLETE),
        };
        self.may_create(h, t, class)?;
        let bytes = |a: Cka| match t.get(&a) {
            Some(Value::Bytes(b)) => Some(b.clone()),
            _ => None,
        };
        let kt = match t.get(&cka::KEY_TYPE) {
            Some(Value::Ulong(k)) => Ckk(*k),
            _ => return Err(ckr::TEMPLATE_INCOMPLETE),
        };
        let mut rest = t.clone();
        for a in [cka::VALUE, cka::MODULUS, cka::EC_POINT, cka::TOKEN] {
            rest.remove(&a);
        }
        // An imported key may do what its class does unless the template says otherwise
        // (what applications that import keys expect; a generated key has only the usage
        // its template names).
        let usage: &[Cka] = match class {
            cko::SECRET_KEY => &[cka::ENCRYPT, cka::DECRYPT],
            cko::PUBLIC_KEY => &[cka::VERIFY, cka::ENCRYPT],
            _ => &[],
        };
        for a in usage {
            rest.entry(*a).or_insert(Value::Bool(true));
        }
        if class == cko::PUBLIC_KEY && kt != ckk::RSA {
            rest.remove(&cka::ENCRYPT);
        }
        // A transport key that lives for this import only.
        let kek_t: Template = [
            (cka::CLASS, Value::Ulong(cko::SECRET_KEY.0)),
            (cka::VALUE_LEN, Value::Ulong(32)),
            (cka::ENCRYPT, Value::Bool(true)),
            (cka::UNWRAP, Value::Bool(true)),
        ]
        .into_iter()
        .collect();
        let req = pb::GenerateKeyRequest {
            mech: Some(Mechanism {
                mechanism: ckm::AES_KEY_GEN.0,
                parameter: None,
            }),
            template: object::to_pb(&kek_t),
        };
        let remote = self.remote_of(h)?;
        let r = rpc!(self, remote, req).map_err(fail)?;
        let kek = blob_of(&r.key, r.key_bytes);
        let (mech, wrapped) = match class {
            cko::SECRET_KEY => {
                let value = Zeroizing::new(bytes(cka::VALUE).ok_or(ckr::TEMPLATE_INCOMPLETE)?);
                rest.remove(&cka::VALUE_LEN);
                self.encrypt_for_import(h, &kek, &value)?
            }
            cko::PUBLIC_KEY => {
                let spki = match kt {
                    ckk::RSA => der::rsa_spki(
                        &bytes(cka::MODULUS).ok_or(ckr::TEMPLATE_INCOMPLETE)?,
                        &bytes(cka::PUBLIC_EXPONENT).ok_or(ckr::TEMPLATE_INCOMPLETE)?,
                    ),
                    ckk::EC => der::ec_spki(
                        &bytes(cka::EC_PARAMS).ok_or(ckr::TEMPLATE_INCOMPLETE)?,
                        &bytes(cka::EC_POINT).ok_or(ckr::TEMPLATE_INCOMPLETE)?,
                    )
                    .ok_or(ckr::ATTRIBUTE_VALUE_INVALID)?,
                    _ => return Err(ckr::ATTRIBUTE_VALUE_INVALID),
                };
                rest.remove(&cka::PUBLIC_EXPONENT);
                rest.remove(&cka::EC_PARAMS);
                let m = Mechanism {
                    mechanism: ckm::IBM_TRANSPORTKEY.0,
                    parameter: None,
                };
                (m, spki)
            }
            cko::PRIVATE_KEY => {
                let pkcs8 = match kt {
                    ckk::RSA => {
                        let mut parts = Vec::new();
                        for a in [
                            cka::MODULUS,
                            cka::PUBLIC_EXPONENT,
                            PRIVATE_EXPONENT,
                            PRIME_1,
                            PRIME_2,
                            EXPONENT_1,
                            EXPONENT_2,
                            COEFFICIENT,
                        ] {
                            parts.push(Zeroizing::new(bytes(a).ok_or(ckr::TEMPLATE_INCOMPLETE)?));
                            rest.remove(&a);
                        }
                        let refs: [&[u8]; 8] = std::array::from_fn(|i| parts[i].as_slice());
                        Zeroizing::new(der::rsa_pkcs8(&refs))
                    }
                    ckk::EC => {
                        let params = bytes(cka::EC_PARAMS).ok_or(ckr::TEMPLATE_INCOMPLETE)?;
                        let d = Zeroizing::new(bytes(cka::VALUE).ok_or(ckr::TEMPLATE_INCOMPLETE)?);
                        rest.remove(&cka::EC_PARAMS);
                        Zeroizing::new(der::ec_pkcs8(&params, &d).ok_or(ckr::CURVE_NOT_SUPPORTED)?)
                    }
                    _ => return Err(ckr::ATTRIBUTE_VALUE_INVALID),
                };
                rest.remove(&cka::PUBLIC_EXPONENT);
                rest.entry(cka::SIGN).or_insert(Value::Bool(true));
                if kt == ckk::RSA {
                    rest.entry(cka::DECRYPT).or_insert(Value::Bool(true));
                }
                self.encrypt_for_import(h, &kek, &pkcs8)?
            }
            _ => return Err(ckr::ATTRIBUTE_VALUE_INVALID),
        };
        if token {
            rest.insert(cka::TOKEN, Value::Bool(true));
        }
        self.unwrap_blob(h, mech, &kek, &wrapped, &rest, class)
    }

    /// Encrypts key material under an import's transport key (AES-CBC-PAD with a fresh
    /// IV), on the server; returns the mechanism to unwrap it with and the ciphertext.
    fn encrypt_for_import(&self, h: u64, kek: &[u8], value: &[u8]) -> Result<(Mechanism, Vec<u8>)> {
        let iv = self.random(h, 16)?;
        let m = Mechanism {
            mechanism: ckm::AES_CBC_PAD.0,
            parameter: Some(pb::mechanism::Parameter::ParameterB(iv)),
        };
        let req = pb::EncryptSingleRequest {
            mech: Some(m.clone()),
            plain: value.to_vec(),
            key: kb(kek),
            ..Default::default()
        };
        let c = rpc!(self, self.remote_of(h)?, req).map_err(fail)?;
        Ok((m, c.ciphered))
    }

    /// `C_GenerateRandom`.
    pub fn random(&self, h: u64, len: usize) -> Result<Vec<u8>> {
        let req = pb::GenerateRandomRequest { len: len as u64 };
        rpc!(self, self.remote_of(h)?, req)
            .map(|r| r.rnd)
            .map_err(fail)
    }
}

/// Whether a CK_RV means the operation must end (every error but a short buffer).
pub fn ends_operation(rv: Ckr) -> bool {
    rv != ckr::BUFFER_TOO_SMALL
}
