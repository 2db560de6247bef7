//! Engine errors as EP11 return values.

use super::*;

pub(super) fn engine_err(e: EngineError, role: Role) -> Ep11Error {
    match e {
        // The detail does not echo the blob's master key id: a blob of another instance
        // must not tell its holder whose it is, nor confirm it against this unit's.
        EngineError::WrongMasterKey { .. } => Ep11Error::new(
            ckr::IBM_WKID_MISMATCH,
            "the key blob is sealed under a master key this crypto unit does not hold: a blob of another instance, or one older than the last completed rotation (rewrap blobs during a rotation with RewrapKeyBlob)",
        ),
        EngineError::NotInitialized => Ep11Error::new(
            ckr::IBM_WK_NOT_INITIALIZED,
            "the crypto unit has no master key",
        ),
        EngineError::BlobMalformed => Ep11Error::new(role.bad_blob(), "the key blob is malformed or truncated"),
        EngineError::BlobAuthFailed => Ep11Error::new(
            role.bad_blob(),
            "the key blob failed authentication (tampered, or made for another instance)",
        ),
        _ => Ep11Error::new(ckr::GENERAL_ERROR, "cryptographic operation failed"),
    }
}
