//! The C boundary: the only module with `unsafe`. Raw C types stop here; every entry point
//! converts its arguments into Rust types, calls [`Library`], and copies results out.
//! No panic crosses the boundary: each entry point runs inside `catch_unwind` and
//! answers `CKR_GENERAL_ERROR` if the library panics.
#![allow(unsafe_code)]
#![allow(non_snake_case)]
// Every entry point is an `unsafe extern "C" fn` whose safety contract is PKCS#11's
// calling convention (valid pointers with the lengths given, per the function's
// specification); the helpers below state theirs.
#![allow(clippy::missing_safety_doc)]

mod entry;
mod fork;
mod lists;
mod operations;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

use cryptoki_sys::*;
use strongroom_client::grep11::pb;
use strongroom_model::pkcs11::{ckm, ckr, Cka, Ckr};

use crate::library::{Library, Mechanism};
use crate::object::{kind_of, Kind, Template, Value};

pub use lists::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};

struct Global {
    lib: Arc<Library>,
    /// The process that initialized it ([`fork::Process`]).
    process: fork::Process,
}

static LIB: RwLock<Option<Global>> = RwLock::new(None);

/// The initialized library of this process. After a `fork`, the child sees
/// `CKR_CRYPTOKI_NOT_INITIALIZED` until it calls `C_Initialize` (PKCS#11 §6.7.1): the
/// parent's runtime threads do not exist in the child.
fn lib() -> Result<Arc<Library>, Ckr> {
    let g = LIB.read().unwrap_or_else(|e| e.into_inner());
    match &*g {
        Some(g) if g.process.is_current() => Ok(g.lib.clone()),
        _ => Err(ckr::CRYPTOKI_NOT_INITIALIZED),
    }
}

/// Runs an entry point's body: a panic becomes `CKR_GENERAL_ERROR`.
fn guard(f: impl FnOnce() -> Result<(), Ckr>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv.0,
        Err(_) => {
            crate::log::error("internal error (panic caught at the PKCS#11 boundary)");
            CKR_GENERAL_ERROR
        }
    }
}

/// Bytes the caller passed.
///
/// # Safety
/// `p` must be null or point to `len` readable bytes that stay valid for the call.
unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8], Ckr> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    let len = usize::try_from(len).map_err(|_| ckr::ARGUMENTS_BAD)?;
    // SAFETY: non-null, and the caller guarantees `len` readable bytes (PKCS#11 contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes through an output pointer.
///
/// # Safety
/// `p` must be null or point to a writable `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Result<(), Ckr> {
    if p.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    // SAFETY: non-null, writable by the caller's contract.
    unsafe { p.write(v) };
    Ok(())
}

/// Copies `data` out with PKCS#11's length rule (`p` null: report the length; too
/// small: `CKR_BUFFER_TOO_SMALL` with the length).
///
/// # Safety
/// `len` must point to a writable CK_ULONG; `p`, if not null, to `*len` writable bytes.
unsafe fn out(data: &[u8], p: *mut u8, len: *mut CK_ULONG) -> Result<(), Ckr> {
    if len.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    // SAFETY: checked non-null; the caller's CK_ULONG.
    let cap = unsafe { *len };
    // SAFETY: as above.
    unsafe { *len = data.len() as CK_ULONG };
    if p.is_null() {
        return Ok(());
    }
    if (cap as usize) < data.len() {
        return Err(ckr::BUFFER_TOO_SMALL);
    }
    // SAFETY: `p` has at least `cap >= data.len()` writable bytes; the regions are distinct
    // (ours is a Rust allocation).
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    Ok(())
}

/// Copies a list out with PKCS#11's rule for arrays (`p` null: report the count; too few
/// entries: `CKR_BUFFER_TOO_SMALL` with the count).
///
/// # Safety
/// `count` must point to a writable CK_ULONG; `p`, if not null, to `*count` writable `T`s.
unsafe fn out_list<T: Copy>(items: &[T], p: *mut T, count: *mut CK_ULONG) -> Result<(), Ckr> {
    if count.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    // SAFETY: checked non-null; the caller's CK_ULONG.
    let cap = unsafe { *count } as usize;
    // SAFETY: as above.
    unsafe { *count = items.len() as CK_ULONG };
    if p.is_null() {
        return Ok(());
    }
    if cap < items.len() {
        return Err(ckr::BUFFER_TOO_SMALL);
    }
    // SAFETY: the caller's array holds `cap >= items.len()` entries; ours is distinct.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    Ok(())
}

/// The buffer size the caller offers (`None` when it asks for the length).
///
/// # Safety
/// `len` must point to a readable CK_ULONG.
unsafe fn capacity(p: *const u8, len: *const CK_ULONG) -> Result<Option<usize>, Ckr> {
    if len.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: checked non-null.
    Ok(Some(unsafe { *len } as usize))
}

/// Fills a fixed-width, blank-padded PKCS#11 text field.
fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut f = [b' '; N];
    for (d, c) in f.iter_mut().zip(s.bytes()) {
        *d = c;
    }
    f
}

/// A template the caller passed.
///
/// # Safety
/// `p` must be null (with `n == 0`) or point to `n` CK_ATTRIBUTEs whose values are readable.
unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Template, Ckr> {
    let mut t = Template::new();
    if n == 0 {
        return Ok(t);
    }
    if p.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    // SAFETY: the caller passes `n` attributes at `p`.
    let attrs = unsafe { std::slice::from_raw_parts(p, n as usize) };
    for a in attrs {
        let ty = Cka(a.type_);
        // SAFETY: each attribute's value is `ulValueLen` readable bytes (PKCS#11 contract).
        let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }?;
        let value = match kind_of(ty) {
            Kind::Bool if v.len() == 1 => Value::Bool(v[0] != 0),
            Kind::Ulong if v.len() == std::mem::size_of::<CK_ULONG>() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(v);
                Value::Ulong(u64::from_ne_bytes(b))
            }
            Kind::Bool | Kind::Ulong => return Err(ckr::ATTRIBUTE_VALUE_INVALID),
            Kind::Bytes => Value::Bytes(v.to_vec()),
            Kind::UlongArray => Value::Bytes(ulongs_to_be(v)?),
            Kind::Template => {
                crate::log::warn(&format!(
                    "attribute {:#x} (a template for other keys) is not supported",
                    ty.0
                ));
                return Err(ckr::ATTRIBUTE_TYPE_INVALID);
            }
        };
        t.insert(ty, value);
    }
    Ok(t)
}

/// A C array of CK_ULONG as the library keeps it (8 bytes big-endian each).
fn ulongs_to_be(v: &[u8]) -> Result<Vec<u8>, Ckr> {
    const N: usize = std::mem::size_of::<CK_ULONG>();
    if !v.len().is_multiple_of(N) {
        return Err(ckr::ATTRIBUTE_VALUE_INVALID);
    }
    Ok(v.chunks_exact(N)
        .flat_map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            CK_ULONG::from_ne_bytes(b).to_be_bytes()
        })
        .collect())
}

/// The C bytes of attribute `a`'s value.
fn value_bytes(a: Cka, v: &Value) -> Vec<u8> {
    match (v, kind_of(a)) {
        (Value::Bool(b), _) => vec![u8::from(*b)],
        (Value::Ulong(u), _) => (*u as CK_ULONG).to_ne_bytes().to_vec(),
        (Value::Bytes(b), Kind::UlongArray) => b
            .chunks_exact(8)
            .flat_map(|c| {
                let mut x = [0u8; 8];
                x.copy_from_slice(c);
                (u64::from_be_bytes(x) as CK_ULONG).to_ne_bytes()
            })
            .collect(),
        (Value::Bytes(b), _) => b.clone(),
    }
}

/// A structure parameter of a mechanism.
///
/// # Safety
/// `m.pParameter` must be null or point to `m.ulParameterLen` readable bytes.
unsafe fn param<T: Copy>(m: &CK_MECHANISM) -> Result<T, Ckr> {
    if m.pParameter.is_null() || (m.ulParameterLen as usize) != std::mem::size_of::<T>() {
        return Err(ckr::MECHANISM_PARAM_INVALID);
    }
    // SAFETY: the size matches `T` and the pointer is the caller's parameter; read_unaligned
    // because C callers do not promise Rust alignment.
    Ok(unsafe { (m.pParameter as *const T).read_unaligned() })
}

/// IBM's `CK_IBM_BTC_DERIVE_PARAMS` (ep11.h): BIP32/SLIP-0010 derivation. `pChainCode`
/// holds the parent's chain code (`ulChainCodeLen` bytes, none for a master key) and
/// receives the child's (`CK_IBM_BTC_CHAINCODE_LENGTH`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_snake_case)]
pub(crate) struct CK_IBM_BTC_DERIVE_PARAMS {
    pub r#type: CK_ULONG,
    pub childKeyIndex: CK_ULONG,
    pub pChainCode: CK_BYTE_PTR,
    pub ulChainCodeLen: CK_ULONG,
    pub version: CK_ULONG,
}

/// IBM's `CK_IBM_ECDSA_OTHER_PARAMS`: the signature variant of `CKM_IBM_ECDSA_OTHER`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CK_IBM_ECDSA_OTHER_PARAMS {
    pub submechanism: CK_ULONG,
}

/// The length of a BIP32 chain code (`CK_IBM_BTC_CHAINCODE_LENGTH`).
pub(crate) const BTC_CHAINCODE_LEN: usize = 32;

const MAC_GENERAL: [u64; 7] = [
    0x0000_0252, // CKM_SHA256_HMAC_GENERAL
    0x0000_0262, // CKM_SHA384_HMAC_GENERAL
    0x0000_0272, // CKM_SHA512_HMAC_GENERAL
    0x0000_0222, // CKM_SHA_1_HMAC_GENERAL
    0x0000_0257, // CKM_SHA224_HMAC_GENERAL
    0x0000_004A, // CKM_SHA512_224_HMAC_GENERAL
    0x0000_004E, // CKM_SHA512_256_HMAC_GENERAL
];

/// The GREP11 form of a mechanism the caller passed.
///
/// # Safety
/// `p` must point to a CK_MECHANISM whose parameter is readable.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism, Ckr> {
    if p.is_null() {
        return Err(ckr::ARGUMENTS_BAD);
    }
    // SAFETY: non-null; the caller's mechanism.
    let m = unsafe { &*p };
    use pb::mechanism::Parameter;
    let code = m.mechanism;
    let parameter = match code {
        c if c == ckm::RSA_PKCS_OAEP.0 => {
            // SAFETY: size checked by `param`.
            let o: CK_RSA_PKCS_OAEP_PARAMS = unsafe { param(m) }?;
            // SAFETY: the source data is `ulSourceDataLen` bytes.
            let label = unsafe { bytes(o.pSourceData as *const u8, o.ulSourceDataLen) }?;
            Some(Parameter::RsaoaepParameter(pb::RsaoaepParm {
                hash_mech: o.hashAlg,
                mgf: i32::try_from(o.mgf).map_err(|_| ckr::MECHANISM_PARAM_INVALID)?,
                encoding_parm_type: i32::from(o.source != 0),
                encoding_parm: label.to_vec(),
            }))
        }
        c if [0x0D, 0x0E, 0x43, 0x44, 0x45, 0x47].contains(&c) => {
            // CKM_RSA_PKCS_PSS and SHA*_RSA_PKCS_PSS.
            // SAFETY: size checked by `param`.
            let s: CK_RSA_PKCS_PSS_PARAMS = unsafe { param(m) }?;
            Some(Parameter::RsapssParameter(pb::RsapssParm {
                hash_mech: s.hashAlg,
                mgf: i32::try_from(s.mgf).map_err(|_| ckr::MECHANISM_PARAM_INVALID)?,
                salt_byte_count: s.sLen,
            }))
        }
        c if c == ckm::ECDH1_DERIVE.0 || c == ckm::IBM_EC_X25519.0 => {
            // SAFETY: size checked by `param`.
            let e: CK_ECDH1_DERIVE_PARAMS = unsafe { param(m) }?;
            // SAFETY: lengths given with the pointers.
            let shared = unsafe { bytes(e.pSharedData, e.ulSharedDataLen) }?;
            // SAFETY: as above.
            let public = unsafe { bytes(e.pPublicData, e.ulPublicDataLen) }?;
            Some(Parameter::Ecdh1DeriveParameter(pb::Ecdh1DeriveParm {
                kdf: i32::try_from(e.kdf).map_err(|_| ckr::MECHANISM_PARAM_INVALID)?,
                shared_data: shared.to_vec(),
                public_data: public.to_vec(),
            }))
        }
        c if c == ckm::AES_GCM.0 => {
            // SAFETY: size checked by `param`.
            let g: CK_GCM_PARAMS = unsafe { param(m) }?;
            if g.ulIvLen != 12 || g.ulTagBits != 128 {
                crate::log::warn("CKM_AES_GCM: the server takes a 12-byte IV and a 128-bit tag");
                return Err(ckr::MECHANISM_PARAM_INVALID);
            }
            // SAFETY: lengths given with the pointers.
            let iv = unsafe { bytes(g.pIv, g.ulIvLen) }?;
            // SAFETY: as above.
            let aad = unsafe { bytes(g.pAAD, g.ulAADLen) }?;
            Some(Parameter::ParameterB([iv, aad].concat()))
        }
        c if c == ckm::ML_DSA.0 => {
            // PKCS#11 3.2: an optional CK_SIGN_ADDITIONAL_CONTEXT; GREP11 takes the context
            // itself. Signatures are hedged; a caller that requires determinism is refused.
            if m.pParameter.is_null() && m.ulParameterLen == 0 {
                None
            } else {
                // SAFETY: size checked by `param`.
                let a: CK_SIGN_ADDITIONAL_CONTEXT = unsafe { param(m) }?;
                if a.hedgeVariant == CKH_DETERMINISTIC_REQUIRED {
                    crate::log::warn("CKM_ML_DSA: deterministic signatures are not offered");
                    return Err(ckr::MECHANISM_PARAM_INVALID);
                }
                // SAFETY: the context is `ulContextLen` bytes.
                let ctx = unsafe { bytes(a.pContext, a.ulContextLen) }?;
                (!ctx.is_empty()).then(|| Parameter::ParameterB(ctx.to_vec()))
            }
        }
        c if c == ckm::IBM_BTC_DERIVE.0 => {
            // SAFETY: size checked by `param`.
            let b: CK_IBM_BTC_DERIVE_PARAMS = unsafe { param(m) }?;
            // SAFETY: the parent's chain code is `ulChainCodeLen` bytes.
            let chain = unsafe { bytes(b.pChainCode, b.ulChainCodeLen) }?;
            Some(Parameter::BtcDeriveParameter(pb::BtcDeriveParm {
                r#type: i32::try_from(b.r#type).map_err(|_| ckr::MECHANISM_PARAM_INVALID)?,
                child_key_index: b.childKeyIndex,
                chain_code: chain.to_vec(),
                version: b.version,
            }))
        }
        c if c == ckm::IBM_ECDSA_OTHER.0 => {
            // SAFETY: size checked by `param`.
            let o: CK_IBM_ECDSA_OTHER_PARAMS = unsafe { param(m) }?;
            Some(Parameter::EcsgParameter(pb::EcsgParm {
                r#type: i32::try_from(o.submechanism).map_err(|_| ckr::MECHANISM_PARAM_INVALID)?,
            }))
        }
        c if MAC_GENERAL.contains(&c) => {
            // SAFETY: CK_MAC_GENERAL_PARAMS is a CK_ULONG.
            let n: CK_ULONG = unsafe { param(m) }?;
            Some(Parameter::ParameterB(n.to_be_bytes().to_vec()))
        }
        _ => {
            // SAFETY: the parameter is `ulParameterLen` bytes.
            let b = unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) }?;
            (!b.is_empty()).then(|| Parameter::ParameterB(b.to_vec()))
        }
    };
    Ok(Mechanism {
        mechanism: code,
        parameter,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn templates_read_bools_ulongs_and_bytes_and_refuse_wrong_lengths() {
        let yes: CK_BBOOL = 1;
        let class: CK_ULONG = 4;
        let label = *b"k1";
        let attrs = [
            CK_ATTRIBUTE {
                type_: 0x1,
                pValue: &yes as *const _ as *mut _,
                ulValueLen: 1,
            },
            CK_ATTRIBUTE {
                type_: 0x0,
                pValue: &class as *const _ as *mut _,
                ulValueLen: 8,
            },
            CK_ATTRIBUTE {
                type_: 0x3,
                pValue: label.as_ptr() as *mut _,
                ulValueLen: 2,
            },
        ];
        // SAFETY: three attributes with values that outlive the call.
        let t = unsafe { template(attrs.as_ptr(), 3) }.unwrap();
        assert_eq!(t.get(&Cka(1)), Some(&Value::Bool(true)));
        assert_eq!(t.get(&Cka(0)), Some(&Value::Ulong(4)));
        assert_eq!(t.get(&Cka(3)), Some(&Value::Bytes(b"k1".to_vec())));
        let short = [CK_ATTRIBUTE {
            type_: 0x0,
            pValue: &class as *const _ as *mut _,
            ulValueLen: 4,
        }];
        // SAFETY: as above.
        assert_eq!(
            unsafe { template(short.as_ptr(), 1) }.unwrap_err(),
            ckr::ATTRIBUTE_VALUE_INVALID
        );
        let null = [CK_ATTRIBUTE {
            type_: 0x3,
            pValue: std::ptr::null_mut(),
            ulValueLen: 5,
        }];
        // SAFETY: a null value with a length is what the check refuses.
        assert_eq!(
            unsafe { template(null.as_ptr(), 1) }.unwrap_err(),
            ckr::ARGUMENTS_BAD
        );
        // SAFETY: a null template with a count.
        assert_eq!(
            unsafe { template(std::ptr::null(), 2) }.unwrap_err(),
            ckr::ARGUMENTS_BAD
        );
    }

    #[test]
    fn allowed_mechanisms_travel_big_endian_and_templates_of_other_keys_are_refused() {
        let mechs: [CK_ULONG; 2] = [0x1, 0x1082];
        let allowed = [CK_ATTRIBUTE {
            type_: 0x4000_0600,
            pValue: mechs.as_ptr() as *mut _,
            ulValueLen: 16,
        }];
        // SAFETY: one attribute whose value (two CK_ULONGs) outlives the call.
        let t = unsafe { template(allowed.as_ptr(), 1) }.unwrap();
        let kept = t.get(&Cka(0x4000_0600)).unwrap();
        let mut wire = 1u64.to_be_bytes().to_vec();
        wire.extend_from_slice(&0x1082u64.to_be_bytes());
        assert_eq!(kept, &Value::Bytes(wire));
        // And back to the application in its own byte order.
        let native: Vec<u8> = mechs.iter().flat_map(|m| m.to_ne_bytes()).collect();
        assert_eq!(value_bytes(Cka(0x4000_0600), kept), native);

        let odd = [CK_ATTRIBUTE {
            type_: 0x4000_0600,
            pValue: mechs.as_ptr() as *mut _,
            ulValueLen: 12,
        }];
        // SAFETY: twelve readable bytes of the array.
        assert_eq!(
            unsafe { template(odd.as_ptr(), 1) }.unwrap_err(),
            ckr::ATTRIBUTE_VALUE_INVALID
        );
        let yes: CK_BBOOL = 1;
        let inner = [CK_ATTRIBUTE {
            type_: 0x104,
            pValue: &yes as *const _ as *mut _,
            ulValueLen: 1,
        }];
        for ty in [0x4000_0211, 0x4000_0212, 0x4000_0213] {
            let nested = [CK_ATTRIBUTE {
                type_: ty,
                pValue: inner.as_ptr() as *mut _,
                ulValueLen: std::mem::size_of_val(&inner) as CK_ULONG,
            }];
            // SAFETY: the nested template is readable for its whole length.
            assert_eq!(
                unsafe { template(nested.as_ptr(), 1) }.unwrap_err(),
                ckr::ATTRIBUTE_TYPE_INVALID,
                "{ty:#x}"
            );
        }
    }

    #[test]
    fn a_panic_inside_an_entry_point_is_a_general_error() {
        #[allow(clippy::panic)]
        let rv = guard(|| panic!("a bug must not unwind into C"));
        assert_eq!(rv, CKR_GENERAL_ERROR);
        assert_eq!(guard(|| Err(ckr::SIGNATURE_INVALID)), CKR_SIGNATURE_INVALID);
        assert_eq!(guard(|| Ok(())), CKR_OK);
    }

    #[test]
    fn outputs_follow_the_length_rule() {
        let mut len: CK_ULONG = 0;
        // SAFETY: a null buffer asks for the length.
        unsafe { out(b"abc", std::ptr::null_mut(), &mut len) }.unwrap();
        assert_eq!(len, 3);
        let mut buf = [0u8; 2];
        len = 2;
        // SAFETY: a 2-byte buffer.
        assert_eq!(
            unsafe { out(b"abc", buf.as_mut_ptr(), &mut len) }.unwrap_err(),
            ckr::BUFFER_TOO_SMALL
        );
        assert_eq!(len, 3);
        let mut buf = [0u8; 8];
        len = 8;
        // SAFETY: an 8-byte buffer.
        unsafe { out(b"abc", buf.as_mut_ptr(), &mut len) }.unwrap();
        assert_eq!((&buf[..3], len), (&b"abc"[..], 3));
    }

    #[test]
    fn gcm_parameters_become_iv_then_aad_and_others_are_refused() {
        let iv = [7u8; 12];
        let aad = *b"hdr";
        let p = CK_GCM_PARAMS {
            pIv: iv.as_ptr() as *mut _,
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: aad.as_ptr() as *mut _,
            ulAADLen: 3,
            ulTagBits: 128,
        };
        let m = CK_MECHANISM {
            mechanism: ckm::AES_GCM.0,
            pParameter: &p as *const _ as *mut _,
            ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
        };
        // SAFETY: a mechanism whose parameter outlives the call.
        let g = unsafe { mechanism(&m) }.unwrap();
        assert_eq!(
            g.parameter,
            Some(pb::mechanism::Parameter::ParameterB(
                [&iv[..], b"hdr"].concat()
            ))
        );
        let p96 = CK_GCM_PARAMS { ulTagBits: 96, ..p };
        let m96 = CK_MECHANISM {
            pParameter: &p96 as *const _ as *mut _,
            ..m
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { mechanism(&m96) }.unwrap_err(),
            ckr::MECHANISM_PARAM_INVALID
        );
        let wrong = CK_MECHANISM {
            ulParameterLen: 3,
            ..m
        };
        // SAFETY: as above; the size does not match CK_GCM_PARAMS.
        assert_eq!(
            unsafe { mechanism(&wrong) }.unwrap_err(),
            ckr::MECHANISM_PARAM_INVALID
        );
    }

    #[test]
    fn ml_dsa_context_parameters_become_the_grep11_context() {
        let mut ctx = *b"app context";
        let add = CK_SIGN_ADDITIONAL_CONTEXT {
            hedgeVariant: CKH_HEDGE_PREFERRED,
            pContext: ctx.as_mut_ptr(),
            ulContextLen: ctx.len() as CK_ULONG,
        };
        let with = CK_MECHANISM {
            mechanism: ckm::ML_DSA.0,
            pParameter: &add as *const _ as *mut std::ffi::c_void,
            ulParameterLen: std::mem::size_of::<CK_SIGN_ADDITIONAL_CONTEXT>() as CK_ULONG,
        };
        // SAFETY: a mechanism whose parameter is a live CK_SIGN_ADDITIONAL_CONTEXT.
        let m = unsafe { mechanism(&with) }.unwrap();
        assert_eq!(
            m.parameter,
            Some(pb::mechanism::Parameter::ParameterB(
                b"app context".to_vec()
            ))
        );
        let none = CK_MECHANISM {
            mechanism: ckm::ML_DSA.0,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        // SAFETY: no parameter.
        assert_eq!(unsafe { mechanism(&none) }.unwrap().parameter, None);
        let det = CK_SIGN_ADDITIONAL_CONTEXT {
            hedgeVariant: CKH_DETERMINISTIC_REQUIRED,
            ..add
        };
        let det_m = CK_MECHANISM {
            pParameter: &det as *const _ as *mut std::ffi::c_void,
            ..with
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { mechanism(&det_m) }.unwrap_err(),
            ckr::MECHANISM_PARAM_INVALID
        );
        let short = CK_MECHANISM {
            ulParameterLen: 8,
            ..with
        };
        // SAFETY: the length is wrong; the library must not read past it.
        assert_eq!(
            unsafe { mechanism(&short) }.unwrap_err(),
            ckr::MECHANISM_PARAM_INVALID
        );
    }

    #[test]
    fn entry_points_before_initialize_answer_not_initialized_and_interfaces_are_listed() {
        let mut n: CK_ULONG = 0;
        // SAFETY: a count pointer and a null list (asks for the count).
        assert_eq!(
            unsafe { C_GetInterfaceList(std::ptr::null_mut(), &mut n) },
            CKR_OK
        );
        assert_eq!(n, 3);
        let mut itf: CK_INTERFACE_PTR = std::ptr::null_mut();
        // SAFETY: null name and version: the default interface, PKCS#11 3.2's.
        assert_eq!(
            unsafe { C_GetInterface(std::ptr::null_mut(), std::ptr::null_mut(), &mut itf, 0) },
            CKR_OK
        );
        // SAFETY: the interface is a static the library returned.
        let list = unsafe { (*itf).pFunctionList } as *const CK_FUNCTION_LIST_3_2;
        // SAFETY: the 3.2 list.
        let l = unsafe { &*list };
        assert_eq!((l.version.major, l.version.minor), (3, 2));
        assert!(l.C_EncapsulateKey.is_some() && l.C_DecapsulateKey.is_some());
        // SAFETY: an entry point that needs no pointer to answer (before C_Initialize,
        // as every unsupported function, it says the library is not initialized).
        assert_eq!(
            unsafe {
                (l.C_AsyncJoin.unwrap())(0, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0)
            },
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        let v = CK_VERSION {
            major: 2,
            minor: 40,
        };
        // SAFETY: a null name, a version and an out pointer.
        assert_eq!(
            unsafe { C_GetInterface(std::ptr::null_mut(), &v as *const _ as *mut _, &mut itf, 0) },
            CKR_OK
        );
        // SAFETY: the interface is a static the library returned.
        let list = unsafe { (*itf).pFunctionList } as *const CK_FUNCTION_LIST;
        // SAFETY: the 2.40 list.
        assert_eq!(unsafe { (*list).version.minor }, 40);
        let mut slots: CK_ULONG = 0;
        // SAFETY: a count pointer; no test of this crate initializes the library.
        let rv = unsafe { entry::C_GetSlotList(0, std::ptr::null_mut(), &mut slots) };
        assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}
