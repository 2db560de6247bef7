//! The function lists: PKCS#11 2.40's (`C_GetFunctionList`), 3.0's and 3.2's, offered through
//! `C_GetInterfaceList` / `C_GetInterface` under the interface name "PKCS 11".

use super::entry::*;
use super::operations::*;
use super::*;

/// Calls `$m` with the 2.40 functions, in the order the header declares them, followed
/// by `$extra` (the 3.0 list's own).
macro_rules! v240 {
    ($m:ident, $ty:ident, $major:expr, $minor:expr $(, $extra:ident)*) => {
        $m!($ty, $major, $minor,
            C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList,
            C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken,
            C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession, C_CloseAllSessions,
            C_GetSessionInfo, C_GetOperationState, C_SetOperationState, C_Login, C_Logout,
            C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize,
            C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,
            C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,
            C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest,
            C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate,
            C_SignFinal, C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify,
            C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,
            C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate,
            C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey,
            C_DeriveKey, C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction,
            C_WaitForSlotEvent,
            $($extra),*)
    };
}

/// A function list of type `$ty` holding every function named.
macro_rules! list {
    ($ty:ident, $major:expr, $minor:expr, $($f:ident),* $(,)?) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            $($f: Some($f),)*
        }
    };
}

static FUNCTIONS_240: CK_FUNCTION_LIST = v240!(list, CK_FUNCTION_LIST, 2, 40);

/// The 3.0 list's own functions after the 2.40 ones, then `$extra` (the 3.2 list's).
macro_rules! v30 {
    ($m:ident, $ty:ident, $major:expr, $minor:expr $(, $extra:ident)*) => {
        v240!($m, $ty, $major, $minor,
            C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
            C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext,
            C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage,
            C_DecryptMessageBegin, C_DecryptMessageNext, C_MessageDecryptFinal,
            C_MessageSignInit, C_SignMessage, C_SignMessageBegin, C_SignMessageNext,
            C_MessageSignFinal, C_MessageVerifyInit, C_VerifyMessage, C_VerifyMessageBegin,
            C_VerifyMessageNext, C_MessageVerifyFinal
            $(, $extra)*)
    };
}

static FUNCTIONS_30: CK_FUNCTION_LIST_3_0 = v30!(list, CK_FUNCTION_LIST_3_0, 3, 0);

/// PKCS#11 3.2: C_EncapsulateKey and C_DecapsulateKey (ML-KEM) are served; the other new
/// functions answer CKR_FUNCTION_NOT_SUPPORTED.
static FUNCTIONS_32: CK_FUNCTION_LIST_3_2 = v30!(
    list,
    CK_FUNCTION_LIST_3_2,
    3,
    2,
    C_EncapsulateKey,
    C_DecapsulateKey,
    C_VerifySignatureInit,
    C_VerifySignature,
    C_VerifySignatureUpdate,
    C_VerifySignatureFinal,
    C_GetSessionValidationFlags,
    C_AsyncComplete,
    C_AsyncGetID,
    C_AsyncJoin,
    C_WrapKeyAuthenticated,
    C_UnwrapKeyAuthenticated
);

const NAME: &[u8] = b"PKCS 11\0";

/// The interfaces this library offers, newest first.
struct Interfaces([CK_INTERFACE; 3]);

// SAFETY: the interfaces only point to immutable statics (the name and the function lists),
// which are valid for the life of the process and never written through these pointers.
unsafe impl Sync for Interfaces {}

static INTERFACES: Interfaces = Interfaces([
    CK_INTERFACE {
        pInterfaceName: NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_32 as *const CK_FUNCTION_LIST_3_2 as *mut std::ffi::c_void,
        flags: CKF_INTERFACE_FORK_SAFE,
    },
    CK_INTERFACE {
        pInterfaceName: NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_30 as *const CK_FUNCTION_LIST_3_0 as *mut std::ffi::c_void,
        flags: CKF_INTERFACE_FORK_SAFE,
    },
    CK_INTERFACE {
        pInterfaceName: NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTIONS_240 as *const CK_FUNCTION_LIST as *mut std::ffi::c_void,
        flags: CKF_INTERFACE_FORK_SAFE,
    },
]);

/// C_GetFunctionList: the 2.40 list.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's pointer to a list pointer; the list is a static.
        unsafe {
            put(
                ppFunctionList,
                &FUNCTIONS_240 as *const CK_FUNCTION_LIST as CK_FUNCTION_LIST_PTR,
            )
        }
    })
}

/// C_GetInterfaceList.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's list and count.
        unsafe { out_list(&INTERFACES.0, pInterfacesList, pulCount) }
    })
}

/// C_GetInterface: by name ("PKCS 11" or null), version (3.2, 3.0, 2.40 or null) and flags.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guard(|| {
        if ppInterface.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        if !pInterfaceName.is_null() {
            // SAFETY: a non-null name is a NUL-terminated string (PKCS#11 §5.4).
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes() != &NAME[..NAME.len() - 1] {
                return Err(ckr::ARGUMENTS_BAD);
            }
        }
        let want = if pVersion.is_null() {
            None
        } else {
            // SAFETY: the caller's CK_VERSION.
            Some(unsafe { *pVersion })
        };
        let found =
            INTERFACES
                .0
                .iter()
                .zip([(3u8, 2u8), (3, 0), (2, 40)])
                .find(|(itf, (major, minor))| {
                    want.is_none_or(|v| v.major == *major && v.minor == *minor)
                        && itf.flags & flags == flags
                });
        match found {
            Some((itf, _)) => {
                // SAFETY: checked non-null; the interface is a static.
                unsafe { put(ppInterface, itf as *const CK_INTERFACE as *mut CK_INTERFACE) }
            }
            None => Err(ckr::ARGUMENTS_BAD),
        }
    })
}
