//! The PKCS#11 functions for the library, slots, tokens, sessions and objects. Each
//! converts its C arguments (see the parent module's helpers, whose SAFETY contracts are
//! the PKCS#11 calling conventions), calls the library, and writes the results out.

use zeroize::Zeroizing;

use super::*;

pub(super) type Rv = Result<(), Ckr>;

// ---- general -------------------------------------------------------------------------

/// C_Initialize.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: CK_VOID_PTR) -> CK_RV {
    guard(|| {
        if !pInitArgs.is_null() {
            // SAFETY: a non-null argument is a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let a = unsafe { &*(pInitArgs as *const CK_C_INITIALIZE_ARGS) };
            if !a.pReserved.is_null() {
                return Err(ckr::ARGUMENTS_BAD);
            }
            let callbacks = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            if callbacks.iter().any(|c| *c) && !callbacks.iter().all(|c| *c) {
                return Err(ckr::ARGUMENTS_BAD);
            }
            // With mutex callbacks and no OS locking we would have to use the caller's
            // mutexes; the library locks with the OS's, so it requires that permission.
            if callbacks[0] && a.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(ckr::CANT_LOCK);
            }
        }
        let mut g = LIB.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = g.take() {
            if old.process.is_current() {
                *g = Some(old);
                return Err(ckr::CRYPTOKI_ALREADY_INITIALIZED);
            }
            // The parent's library after a fork: its runtime's threads are gone, so it
            // cannot be shut down; it is left behind.
            std::mem::forget(old);
        }
        let path = crate::config::Config::path();
        let cfg = crate::config::Config::load(&path).map_err(|e| {
            eprintln!("strongroom-pkcs11: {e}");
            ckr::GENERAL_ERROR
        })?;
        crate::log::init(&cfg.logging);
        let lib = Library::new(cfg).map_err(|e| {
            crate::log::error(&e);
            ckr::GENERAL_ERROR
        })?;
        *g = Some(Global {
            lib: Arc::new(lib),
            process: super::fork::Process::current(),
        });
        Ok(())
    })
}

/// C_Finalize.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(pReserved: CK_VOID_PTR) -> CK_RV {
    guard(|| {
        if !pReserved.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let mut g = LIB.write().unwrap_or_else(|e| e.into_inner());
        match g.take() {
            Some(old) if old.process.is_current() => {
                // Shut the runtime down off this thread's stack: the caller may itself be
                // inside an async context (a Rust application).
                drop(g);
                std::thread::spawn(move || drop(old))
                    .join()
                    .map_err(|_| ckr::GENERAL_ERROR)
            }
            Some(old) => {
                std::mem::forget(old);
                Err(ckr::CRYPTOKI_NOT_INITIALIZED)
            }
            None => Err(ckr::CRYPTOKI_NOT_INITIALIZED),
        }
    })
}

/// C_GetInfo.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(pInfo: CK_INFO_PTR) -> CK_RV {
    guard(|| {
        lib()?;
        let v = env!("CARGO_PKG_VERSION");
        let (major, minor) = v
            .split_once('.')
            .map(|(a, b)| {
                (
                    a.parse().unwrap_or(0),
                    b.split('.')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0),
                )
            })
            .unwrap_or((0, 0));
        let info = CK_INFO {
            cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
            manufacturerID: padded("Strongroom"),
            flags: 0,
            libraryDescription: padded("Strongroom PKCS#11 over GREP11"),
            libraryVersion: CK_VERSION { major, minor },
        };
        // SAFETY: the caller's CK_INFO.
        unsafe { put(pInfo, info) }
    })
}

// ---- slots and tokens ----------------------------------------------------------------

/// C_GetSlotList.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    _token_present: CK_BBOOL,
    pSlotList: CK_SLOT_ID_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        let ids = lib()?.slot_ids();
        // SAFETY: the caller's list and count.
        unsafe { out_list(&ids, pSlotList, pulCount) }
    })
}

/// C_GetSlotInfo.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) -> CK_RV {
    guard(|| {
        let l = lib()?;
        let s = l.slot(slotID)?;
        let ep = s
            .remote
            .config()
            .endpoints
            .first()
            .map(|e| format!("{}:{}", e.host, e.port))
            .unwrap_or_default();
        let info = CK_SLOT_INFO {
            slotDescription: padded(&format!("Strongroom GREP11 {ep}")),
            manufacturerID: padded("Strongroom"),
            flags: CKF_TOKEN_PRESENT | CKF_HW_SLOT,
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
        };
        // SAFETY: the caller's CK_SLOT_INFO.
        unsafe { put(pInfo, info) }
    })
}

/// C_GetTokenInfo.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) -> CK_RV {
    guard(|| {
        let l = lib()?;
        let s = l.slot(slotID)?;
        let cfg = s.remote.config();
        let serial = cfg
            .user
            .iam
            .instance
            .clone()
            .or_else(|| cfg.anonymous.iam.instance.clone())
            .unwrap_or_default()
            .replace('-', "");
        let info = CK_TOKEN_INFO {
            label: padded(&format!("Strongroom {}", slotID)),
            manufacturerID: padded("Strongroom"),
            model: padded("GREP11"),
            serialNumber: padded(&serial),
            flags: CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxPinLen: 1024,
            ulMinPinLen: 1,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
            utcTime: padded(""),
        };
        // SAFETY: the caller's CK_TOKEN_INFO.
        unsafe { put(pInfo, info) }
    })
}

/// C_GetMechanismList: what the server implements, as it lists it.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: CK_MECHANISM_TYPE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        let list: Vec<CK_MECHANISM_TYPE> = lib()?.mechanisms(slotID)?.iter().map(|m| m.0).collect();
        // SAFETY: the caller's list and count.
        unsafe { out_list(&list, pMechanismList, pulCount) }
    })
}

/// C_GetMechanismInfo.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: CK_MECHANISM_INFO_PTR,
) -> CK_RV {
    guard(|| {
        let i = lib()?.mechanism_info(slotID, strongroom_model::pkcs11::Ckm(type_))?;
        let info = CK_MECHANISM_INFO {
            ulMinKeySize: i.min_key_size,
            ulMaxKeySize: i.max_key_size,
            flags: i.flags,
        };
        // SAFETY: the caller's CK_MECHANISM_INFO.
        unsafe { put(pInfo, info) }
    })
}

/// C_InitToken: the security officer (PIN = the SO's API key) empties the keystores.
#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    _pLabel: CK_UTF8CHAR_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the PIN is `ulPinLen` bytes.
        let pin = pin_of(unsafe { bytes(pPin, ulPinLen) }?)?;
        l.init_token(slotID, pin)
    })
}

pub(super) fn pin_of(b: &[u8]) -> Result<Zeroizing<String>, Ckr> {
    std::str::from_utf8(b)
        .map(|s| Zeroizing::new(s.trim().to_string()))
        .map_err(|_| ckr::PIN_INCORRECT)
}

/// C_InitPIN: API keys are managed by the server's administrators.
#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    _h: CK_SESSION_HANDLE,
    _p: CK_UTF8CHAR_PTR,
    _n: CK_ULONG,
) -> CK_RV {
    not_supported()
}

/// C_SetPIN: API keys are managed by the server's administrators.
#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    _h: CK_SESSION_HANDLE,
    _o: CK_UTF8CHAR_PTR,
    _on: CK_ULONG,
    _n: CK_UTF8CHAR_PTR,
    _nn: CK_ULONG,
) -> CK_RV {
    not_supported()
}

pub(super) fn not_supported() -> CK_RV {
    guard(|| {
        lib()?;
        Err(ckr::FUNCTION_NOT_SUPPORTED)
    })
}

// ---- sessions ------------------------------------------------------------------------

/// C_OpenSession.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: CK_VOID_PTR,
    _notify: CK_NOTIFY,
    phSession: CK_SESSION_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(ckr::SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if phSession.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let h = l.open_session(slotID, flags & CKF_RW_SESSION != 0)?;
        // SAFETY: checked non-null.
        unsafe { put(phSession, h) }
    })
}

/// C_CloseSession.
#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| lib()?.close_session(hSession))
}

/// C_CloseAllSessions.
#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard(|| lib()?.close_all(slotID))
}

/// C_GetSessionInfo.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: CK_SESSION_INFO_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        let (slot, rw) = l.session_slot(hSession)?;
        use crate::remote::Who;
        let state = match (l.who(slot)?, rw) {
            (Who::SecurityOfficer, _) => CKS_RW_SO_FUNCTIONS,
            (Who::User, true) => CKS_RW_USER_FUNCTIONS,
            (Who::User, false) => CKS_RO_USER_FUNCTIONS,
            (Who::Anonymous, true) => CKS_RW_PUBLIC_SESSION,
            (Who::Anonymous, false) => CKS_RO_PUBLIC_SESSION,
        };
        let info = CK_SESSION_INFO {
            slotID: slot,
            state,
            flags: CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        };
        // SAFETY: the caller's CK_SESSION_INFO.
        unsafe { put(pInfo, info) }
    })
}

/// C_GetOperationState: GREP11 states stay on the server's side of the API.
#[no_mangle]
pub unsafe extern "C" fn C_GetOperationState(
    _h: CK_SESSION_HANDLE,
    _p: CK_BYTE_PTR,
    _n: CK_ULONG_PTR,
) -> CK_RV {
    not_supported()
}

/// C_SetOperationState.
#[no_mangle]
pub unsafe extern "C" fn C_SetOperationState(
    _h: CK_SESSION_HANDLE,
    _p: CK_BYTE_PTR,
    _n: CK_ULONG,
    _e: CK_OBJECT_HANDLE,
    _a: CK_OBJECT_HANDLE,
) -> CK_RV {
    not_supported()
}

/// C_Login: the PIN is an API key.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the PIN is `ulPinLen` bytes.
        let pin = pin_of(unsafe { bytes(pPin, ulPinLen) }?)?;
        l.login(hSession, userType, pin)
    })
}

/// C_Logout.
#[no_mangle]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| lib()?.logout(hSession))
}

// ---- objects -------------------------------------------------------------------------

/// C_CreateObject.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's template.
        let t = unsafe { template(pTemplate, ulCount) }?;
        if phObject.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let h = l.create_object(hSession, &t)?;
        // SAFETY: checked non-null.
        unsafe { put(phObject, h) }
    })
}

/// C_CopyObject.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phNewObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's template.
        let t = unsafe { template(pTemplate, ulCount) }?;
        if phNewObject.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let h = l.copy_object(hSession, hObject, &t)?;
        // SAFETY: checked non-null.
        unsafe { put(phNewObject, h) }
    })
}

/// C_DestroyObject.
#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| lib()?.destroy_object(hSession, hObject))
}

/// C_GetObjectSize.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        l.object(hSession, hObject)?;
        // SAFETY: the caller's CK_ULONG.
        unsafe { put(pulSize, CK_UNAVAILABLE_INFORMATION) }
    })
}

/// C_GetAttributeValue.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        let o = l.object(hSession, hObject)?;
        if ulCount > 0 && pTemplate.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        // SAFETY: the caller passes `ulCount` attributes at `pTemplate`.
        let attrs = unsafe { std::slice::from_raw_parts_mut(pTemplate, ulCount as usize) };
        let mut rv = Ok(());
        for a in attrs.iter_mut() {
            match l.attribute(&o, Cka(a.type_)) {
                Err(e) => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = Err(e);
                }
                Ok(None) => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = Err(ckr::ATTRIBUTE_TYPE_INVALID);
                }
                Ok(Some(v)) => {
                    let b = value_bytes(Cka(a.type_), &v);
                    if a.pValue.is_null() {
                        a.ulValueLen = b.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < b.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = Err(ckr::BUFFER_TOO_SMALL);
                    } else {
                        // SAFETY: the caller's value buffer holds `ulValueLen >= b.len()` bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(b.as_ptr(), a.pValue as *mut u8, b.len())
                        };
                        a.ulValueLen = b.len() as CK_ULONG;
                    }
                }
            }
        }
        rv
    })
}

/// C_SetAttributeValue.
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's template.
        let t = unsafe { template(pTemplate, ulCount) }?;
        l.set_attributes(hSession, hObject, &t)
    })
}

/// C_FindObjectsInit.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        // SAFETY: the caller's template.
        let t = unsafe { template(pTemplate, ulCount) }?;
        l.find_init(hSession, &t)
    })
}

/// C_FindObjects.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: CK_OBJECT_HANDLE_PTR,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: CK_ULONG_PTR,
) -> CK_RV {
    guard(|| {
        let l = lib()?;
        if phObject.is_null() || pulObjectCount.is_null() {
            return Err(ckr::ARGUMENTS_BAD);
        }
        let found = l.find(hSession, ulMaxObjectCount as usize)?;
        for (i, h) in found.iter().enumerate() {
            // SAFETY: the caller's array has `ulMaxObjectCount >= found.len()` entries.
            unsafe { *phObject.add(i) = *h };
        }
        // SAFETY: checked non-null.
        unsafe { put(pulObjectCount, found.len() as CK_ULONG) }
    })
}

/// C_FindObjectsFinal.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| lib()?.find_final(hSession))
}
