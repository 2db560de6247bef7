//! The PKCS#11 functions that run mechanisms: digests, signatures, encryption, key
//! generation, wrapping, derivation and random numbers, and PKCS#11 3.0's additions. Each
//! converts its C arguments (see the parent module's helpers, whose SAFETY contracts are
//! the PKCS#11 calling conventions), calls the library, and writes the results out.

use super::entry::*;
use super::*;
use crate::ops::{Kind, Out, Step};

// ---- operations ----------------------------------------------------------------------

fn init(
    h: CK_SESSION_HANDLE,
    kind: Kind,
    m: *const CK_MECHANISM,
    key: Option<CK_OBJECT_HANDLE>,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        if m.is_null() {
            // A null mechanism cancels the operation (PKCS#11 3.0).
            return l.op_cancel(h, kind);
        }
        // SAFETY: the caller's mechanism.
        let m = unsafe { mechanism(m) }?;
        l.op_init(h, kind, m, key)
    })
}

fn run(
    h: CK_SESSION_HANDLE,
    kind: Kind,
    step: Step,
    data: &[u8],
    p: *mut u8,
    len: *mut CK_ULONG,
) -> Rv {
    let l = lib()?;
    // SAFETY: the caller's length pointer.
    let cap = unsafe { capacity(p, len) }?;
    match l.op_run(h, kind, step, data, cap)? {
        // SAFETY: `len` checked by `capacity`.
        Out::Len(n) => unsafe { put(len, n as CK_ULONG) },
        Out::TooSmall(n) => {
            // SAFETY: as above.
            unsafe { put(len, n as CK_ULONG) }?;
            Err(ckr::BUFFER_TOO_SMALL)
        }
        // SAFETY: the caller's buffer of `*len` bytes.
        Out::Done(b) => unsafe { out(&b, p, len) },
    }
}

macro_rules! one_shot {
    ($name:ident, $kind:expr, $step:expr) => {
        #[doc = concat!(stringify!($name), ".")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pData: CK_BYTE_PTR,
            ulDataLen: CK_ULONG,
            pOut: CK_BYTE_PTR,
            pulOutLen: CK_ULONG_PTR,
        ) -> CK_RV {
            guard(|| {
                // SAFETY: the input is `ulDataLen` bytes.
                let data = unsafe { bytes(pData, ulDataLen) }?;
                run(hSession, $kind, $step, data, pOut, pulOutLen)
            })
        }
    };
}

macro_rules! finals {
    ($name:ident, $kind:expr) => {
        #[doc = concat!(stringify!($name), ".")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pOut: CK_BYTE_PTR,
            pulOutLen: CK_ULONG_PTR,
        ) -> CK_RV {
            guard(|| run(hSession, $kind, Step::Final, &[], pOut, pulOutLen))
        }
    };
}

macro_rules! inits {
    ($name:ident, $kind:expr) => {
        #[doc = concat!(stringify!($name), ".")]
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            hSession: CK_SESSION_HANDLE,
            pMechanism: CK_MECHANISM_PTR,
            hKey: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            init(hSession, $kind, pMechanism, Some(hKey))
        }
    };
}

inits!(C_EncryptInit, Kind::Encrypt);
one_shot!(C_Encrypt, Kind::Encrypt, Step::Single);
one_shot!(C_EncryptUpdate, Kind::Encrypt, Step::Update);
finals!(C_EncryptFinal, Kind::Encrypt);
inits!(C_DecryptInit, Kind::Decrypt);
one_shot!(C_Decrypt, Kind::Decrypt, Step::Single);
one_shot!(C_DecryptUpdate, Kind::Decrypt, Step::Update);
finals!(C_DecryptFinal, Kind::Decrypt);
inits!(C_SignInit, Kind::Sign);
one_shot!(C_Sign, Kind::Sign, Step::Single);
finals!(C_SignFinal, Kind::Sign);
inits!(C_VerifyInit, Kind::Verify);
one_shot!(C_Digest, Kind::Digest, Step::Single);
finals!(C_DigestFinal, Kind::Digest);

/// C_DigestInit.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
) -> CK_RV {
    init(hSession, Kind::Digest, pMechanism, None)
}

fn update(h: CK_SESSION_HANDLE, kind: Kind, p: *const u8, n: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: the input is `n` bytes.
        let data = unsafe { bytes(p, n) }?;
        let l = lib()?;
        match l.op_run(h, kind, Step::Update, data, Some(usize::MAX))? {
            Out::Done(_) | Out::Len(_) | Out::TooSmall(_) => Ok(()),
        }
    })
}

/// C_DigestUpdate.
#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    update(hSession, Kind::Digest, pPart, ulPartLen)
}

/// C_SignUpdate.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    update(hSession, Kind::Sign, pPart, ulPartLen)
}

/// C_DigestKey.
#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| lib()?.digest_key(hSession, hKey))
}

/// C_Verify.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the input and signature are given with their lengths.
        let (data, sig) = unsafe { (bytes(pData, ulDataLen)?, bytes(pSignature, ulSignatureLen)?) };
        lib()?.verify(hSession, Step::Single, data, sig)
    })
}

/// C_VerifyUpdate.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the input is `ulPartLen` bytes.
        let data = unsafe { bytes(pPart, ulPartLen) }?;
        lib()?.verify(hSession, Step::Update, data, &[])
    })
}

/// C_VerifyFinal.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the signature is `ulSignatureLen` bytes.
        let sig = unsafe { bytes(pSignature, ulSignatureLen) }?;
        lib()?.verify(hSession, Step::Final, &[], sig)
    })
}

macro_rules! unsupported {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[doc = concat!(stringify!($name), ": not supported (as in IBM's library).")]
            #[no_mangle]
            pub unsafe extern "C" fn $name($(_: $ty),*) -> CK_RV {
                not_supported()
            }
        )*
    };
}

unsupported! {
    C_SignRecoverInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_SignRecover(h: CK_SESSION_HANDLE, d: CK_BYTE_PTR, n: CK_ULONG, s: CK_BYTE_PTR, sn: CK_ULONG_PTR);
    C_VerifyRecoverInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_VerifyRecover(h: CK_SESSION_HANDLE, s: CK_BYTE_PTR, sn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG_PTR);
    C_DigestEncryptUpdate(h: CK_SESSION_HANDLE, p: CK_BYTE_PTR, n: CK_ULONG, e: CK_BYTE_PTR, en: CK_ULONG_PTR);
    C_DecryptDigestUpdate(h: CK_SESSION_HANDLE, p: CK_BYTE_PTR, n: CK_ULONG, e: CK_BYTE_PTR, en: CK_ULONG_PTR);
    C_SignEncryptUpdate(h: CK_SESSION_HANDLE, p: CK_BYTE_PTR, n: CK_ULONG, e: CK_BYTE_PTR, en: CK_ULONG_PTR);
    C_DecryptVerifyUpdate(h: CK_SESSION_HANDLE, p: CK_BYTE_PTR, n: CK_ULONG, e: CK_BYTE_PTR, en: CK_ULONG_PTR);
    C_WaitForSlotEvent(f: CK_FLAGS, s: CK_SLOT_ID_PTR, r: CK_VOID_PTR);
}

// ---- keys and random -----------------------------------------------------------------

/// C_GenerateKey.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism and template.
        let (m, t) = unsafe { (mechanism(pMechanism)?, template(pTemplate, ulCount)?) };
        if phKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let k = l.generate_key(hSession, m, &t)?;
        // SAFETY: checked non-null.
        unsafe { put(phKey, k) }
    })
}

/// C_GenerateKeyPair.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: CK_OBJECT_HANDLE_PTR,
    phPrivateKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism and templates.
        let (m, pt, st) = unsafe {
            (
                mechanism(pMechanism)?,
                template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
            )
        };
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let (p, s) = l.generate_key_pair(hSession, m, &pt, &st)?;
        // SAFETY: checked non-null.
        unsafe {
            put(phPublicKey, p)?;
            put(phPrivateKey, s)
        }
    })
}

/// C_WrapKey.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism.
        let m = unsafe { mechanism(pMechanism) }?;
        let w = l.wrap_key(hSession, m, hWrappingKey, hKey)?;
        // SAFETY: the caller's output buffer and length.
        unsafe { out(&w, pWrappedKey, pulWrappedKeyLen) }
    })
}

/// C_UnwrapKey.
#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism, wrapped bytes and template.
        let (m, w, t) = unsafe {
            (
                mechanism(pMechanism)?,
                bytes(pWrappedKey, ulWrappedKeyLen)?,
                template(pTemplate, ulAttributeCount)?,
            )
        };
        if phKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let k = l.unwrap_key(hSession, m, hUnwrappingKey, w, &t)?;
        // SAFETY: checked non-null.
        unsafe { put(phKey, k) }
    })
}

/// Writes a BIP32 chain code to the `pChainCode` of a `CKM_IBM_BTC_DERIVE` mechanism.
///
/// # Safety
/// `m` must point to a CK_MECHANISM whose parameter is a readable CK_IBM_BTC_DERIVE_PARAMS,
/// and its `pChainCode`, unless null, to 32 writable bytes.
unsafe fn write_chain_code(m: CK_MECHANISM_PTR, chain: &[u8]) -> Result<(), Ckr> {
    if chain.len() != BTC_CHAINCODE_LEN {
        return Err(ckr::DEVICE_ERROR);
    }
    // SAFETY: the caller's mechanism, read once already by `mechanism`.
    let p: CK_IBM_BTC_DERIVE_PARAMS = unsafe { param(&*m) }?;
    if !p.pChainCode.is_null() {
        // SAFETY: per IBM's contract the buffer holds CK_IBM_BTC_CHAINCODE_LENGTH bytes.
        unsafe { std::ptr::copy_nonoverlapping(chain.as_ptr(), p.pChainCode, BTC_CHAINCODE_LEN) };
    }
    Ok(())
}

/// C_DeriveKey.
#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism and template.
        let (m, t) = unsafe {
            (
                mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
            )
        };
        if phKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let btc = m.mechanism == ckm::IBM_BTC_DERIVE.0;
        let (k, checksum) = l.derive_key(hSession, m, hBaseKey, &t)?;
        if btc {
            // SAFETY: `mechanism` read this parameter above, so it is a readable
            // CK_IBM_BTC_DERIVE_PARAMS; its pChainCode, when not null, is the caller's buffer
            // of CK_IBM_BTC_CHAINCODE_LENGTH (32) bytes, IBM's contract for this mechanism,
            // which receives the child's chain code.
            unsafe { write_chain_code(pMechanism, &checksum) }?;
        }
        // SAFETY: checked non-null.
        unsafe { put(phKey, k) }
    })
}

/// C_EncapsulateKey (PKCS#11 3.2): CKM_ML_KEM to a public key; a new secret key and its
/// ciphertext (a null `pCiphertext` asks the length only, and makes no key).
#[no_mangle]
pub unsafe extern "C" fn C_EncapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hPublicKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    pulCiphertextLen: CK_ULONG_PTR,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism and template.
        let (m, t) = unsafe {
            (
                mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
            )
        };
        if pulCiphertextLen.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let room = if pCiphertext.is_null() {
            None
        } else {
            // SAFETY: checked non-null; the caller's length.
            Some(usize::try_from(unsafe { *pulCiphertextLen }).map_err(|_| ckr::ARGUMENTS_BAD)?)
        };
        if room.is_some() && phKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        // The ciphertext's length first (it depends on the key's parameter set only).
        let (_, _, len) = l.encapsulate_key(hSession, m.clone(), hPublicKey, &t, None)?;
        let Some(room) = room else {
            // SAFETY: checked non-null.
            return unsafe { put(pulCiphertextLen, len as CK_ULONG) };
        };
        if room < len {
            // SAFETY: checked non-null.
            unsafe { put(pulCiphertextLen, len as CK_ULONG) }?;
            return Err(ckr::BUFFER_TOO_SMALL);
        }
        let (key, ct, _) = l.encapsulate_key(hSession, m, hPublicKey, &t, Some(room))?;
        let key = key.ok_or(ckr::GENERAL_ERROR)?;
        // SAFETY: the caller's buffer holds at least `len` bytes (checked above).
        unsafe { out(&ct, pCiphertext, pulCiphertextLen) }?;
        // SAFETY: checked non-null.
        unsafe { put(phKey, key) }
    })
}

/// C_DecapsulateKey (PKCS#11 3.2): CKM_ML_KEM with a private key; the secret key the
/// ciphertext carries.
#[no_mangle]
pub unsafe extern "C" fn C_DecapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hPrivateKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    ulCiphertextLen: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's mechanism, template and ciphertext.
        let (m, t, ct) = unsafe {
            (
                mechanism(pMechanism)?,
                template(pTemplate, ulAttributeCount)?,
                bytes(pCiphertext, ulCiphertextLen)?,
            )
        };
        if phKey.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let k = l.decapsulate_key(hSession, m, hPrivateKey, &t, ct)?;
        // SAFETY: checked non-null.
        unsafe { put(phKey, k) }
    })
}

unsupported! {
    C_VerifySignatureInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE, s: CK_BYTE_PTR, n: CK_ULONG);
    C_VerifySignature(h: CK_SESSION_HANDLE, d: CK_BYTE_PTR, n: CK_ULONG);
    C_VerifySignatureUpdate(h: CK_SESSION_HANDLE, d: CK_BYTE_PTR, n: CK_ULONG);
    C_VerifySignatureFinal(h: CK_SESSION_HANDLE);
    C_GetSessionValidationFlags(h: CK_SESSION_HANDLE, t: CK_SESSION_VALIDATION_FLAGS_TYPE, f: *mut CK_FLAGS);
    C_AsyncComplete(h: CK_SESSION_HANDLE, n: *mut CK_UTF8CHAR, r: *mut CK_ASYNC_DATA);
    C_AsyncGetID(h: CK_SESSION_HANDLE, n: *mut CK_UTF8CHAR, i: *mut CK_ULONG);
    C_AsyncJoin(h: CK_SESSION_HANDLE, n: *mut CK_UTF8CHAR, i: CK_ULONG, d: *mut CK_BYTE, dn: CK_ULONG);
    C_WrapKeyAuthenticated(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, w: CK_OBJECT_HANDLE, k: CK_OBJECT_HANDLE, a: CK_BYTE_PTR, an: CK_ULONG, o: CK_BYTE_PTR, on: CK_ULONG_PTR);
    C_UnwrapKeyAuthenticated(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, u: CK_OBJECT_HANDLE, w: CK_BYTE_PTR, wn: CK_ULONG, t: CK_ATTRIBUTE_PTR, tn: CK_ULONG, a: CK_BYTE_PTR, an: CK_ULONG, k: CK_OBJECT_HANDLE_PTR);
}

/// C_SeedRandom: the server's generator takes no seed.
#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    _pSeed: CK_BYTE_PTR,
    _ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        lib()?.session(hSession)?;
        Err(ckr::RANDOM_SEED_NOT_SUPPORTED)
    })
}

/// C_GenerateRandom.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: CK_BYTE_PTR,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        if ulRandomLen == 0 {
            l.session(hSession)?;
            return Ok(());
        }
        if RandomData.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let r = l.random(hSession, ulRandomLen as usize)?;
        if r.len() != ulRandomLen as usize {
            return Err(ckr::DEVICE_ERROR);
        }
        // SAFETY: the caller's buffer of `ulRandomLen` bytes.
        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), RandomData, r.len()) };
        Ok(())
    })
}

/// C_GetFunctionStatus (legacy).
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        lib()?.session(hSession)?;
        Err(ckr::FUNCTION_NOT_PARALLEL)
    })
}

/// C_CancelFunction (legacy).
#[no_mangle]
pub unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    // SAFETY: a handle only; no pointer is passed on.
    unsafe { C_GetFunctionStatus(hSession) }
}

// ---- PKCS#11 3.0 ---------------------------------------------------------------------

/// C_LoginUser: the user name is not used (the API key names its user).
#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    _pUsername: CK_UTF8CHAR_PTR,
    _ulUsernameLen: CK_ULONG,
) -> CK_RV {
    // SAFETY: the same arguments, under the same contract.
    unsafe { C_Login(hSession, userType, pPin, ulPinLen) }
}

/// C_SessionCancel: ends the session's operations named by `flags`.
#[no_mangle]
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard(|| {
        let l = lib()?;
        for (f, k) in [
            (CKF_ENCRYPT, Kind::Encrypt),
            (CKF_DECRYPT, Kind::Decrypt),
            (CKF_DIGEST, Kind::Digest),
            (CKF_SIGN, Kind::Sign),
            (CKF_VERIFY, Kind::Verify),
        ] {
            if flags & f != 0 {
                l.op_cancel(hSession, k)?;
            }
        }
        if flags & CKF_FIND_OBJECTS != 0 {
            let _ = l.find_final(hSession);
        }
        Ok(())
    })
}

unsupported! {
    C_MessageEncryptInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_EncryptMessage(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, a: CK_BYTE_PTR, an: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, o: CK_BYTE_PTR, on: CK_ULONG_PTR);
    C_EncryptMessageBegin(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, a: CK_BYTE_PTR, an: CK_ULONG);
    C_EncryptMessageNext(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, o: CK_BYTE_PTR, on: CK_ULONG_PTR, f: CK_FLAGS);
    C_MessageEncryptFinal(h: CK_SESSION_HANDLE);
    C_MessageDecryptInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_DecryptMessage(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, a: CK_BYTE_PTR, an: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, o: CK_BYTE_PTR, on: CK_ULONG_PTR);
    C_DecryptMessageBegin(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, a: CK_BYTE_PTR, an: CK_ULONG);
    C_DecryptMessageNext(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, o: CK_BYTE_PTR, on: CK_ULONG_PTR, f: CK_FLAGS);
    C_MessageDecryptFinal(h: CK_SESSION_HANDLE);
    C_MessageSignInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_SignMessage(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, s: CK_BYTE_PTR, sn: CK_ULONG_PTR);
    C_SignMessageBegin(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG);
    C_SignMessageNext(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, s: CK_BYTE_PTR, sn: CK_ULONG_PTR);
    C_MessageSignFinal(h: CK_SESSION_HANDLE);
    C_MessageVerifyInit(h: CK_SESSION_HANDLE, m: CK_MECHANISM_PTR, k: CK_OBJECT_HANDLE);
    C_VerifyMessage(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, s: CK_BYTE_PTR, sn: CK_ULONG);
    C_VerifyMessageBegin(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG);
    C_VerifyMessageNext(h: CK_SESSION_HANDLE, p: CK_VOID_PTR, pn: CK_ULONG, d: CK_BYTE_PTR, dn: CK_ULONG, s: CK_BYTE_PTR, sn: CK_ULONG);
    C_MessageVerifyFinal(h: CK_SESSION_HANDLE);
}
