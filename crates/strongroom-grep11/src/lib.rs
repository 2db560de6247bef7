//! The GREP11 front end: IBM's "Enterprise PKCS#11 over gRPC" API (package `grep11`, service
//! `Crypto`), wire-compatible with the current ("v2") layout, over [`Service`]. Protocol
//! types stop here: this crate converts protobuf messages and CKM_* codes into service calls
//! and maps service errors to a gRPC status carrying a `grep11.Grep11Error` detail (one
//! table, [`ckr_of`]).
//!
//! Implemented so far: GenerateRandom, DigestSingle, GetMechanismList, GetMechanismInfo.
//! Every other RPC answers `CKR_FUNCTION_NOT_SUPPORTED` (see the GREP11 issue).
#![forbid(unsafe_code)]

use std::sync::Arc;

use prost::Message as _;
use strongroom_service::{Ctx, DigestAlg, ErrorKind, Service, ServiceError};
use tonic::{Request, Response, Status};

/// Generated protobuf and gRPC code.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb {
    tonic::include_proto!("grep11");
}

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod rpc {
    tonic::include_proto!("google.rpc");
}

/// PKCS#11 return values used here (PKCS#11 v2.40).
pub mod ckr {
    /// CKR_GENERAL_ERROR
    pub const GENERAL_ERROR: u64 = 0x05;
    /// CKR_ARGUMENTS_BAD
    pub const ARGUMENTS_BAD: u64 = 0x07;
    /// CKR_DATA_LEN_RANGE
    pub const DATA_LEN_RANGE: u64 = 0x21;
    /// CKR_DEVICE_ERROR
    pub const DEVICE_ERROR: u64 = 0x30;
    /// CKR_FUNCTION_NOT_SUPPORTED
    pub const FUNCTION_NOT_SUPPORTED: u64 = 0x54;
    /// CKR_MECHANISM_INVALID
    pub const MECHANISM_INVALID: u64 = 0x70;
    /// CKR_USER_NOT_LOGGED_IN
    pub const USER_NOT_LOGGED_IN: u64 = 0x101;
}

/// Mechanism codes (CKM_*) of what this front end implements.
pub mod ckm {
    /// CKM_SHA_1
    pub const SHA_1: u64 = 0x220;
    /// CKM_SHA224
    pub const SHA224: u64 = 0x255;
    /// CKM_SHA256
    pub const SHA256: u64 = 0x250;
    /// CKM_SHA384
    pub const SHA384: u64 = 0x260;
    /// CKM_SHA512
    pub const SHA512: u64 = 0x270;
    /// CKM_SHA512_256
    pub const SHA512_256: u64 = 0x4C;
    /// CKM_IBM_SHA3_256
    pub const IBM_SHA3_256: u64 = 0x8001_0002;
    /// CKM_IBM_SHA3_384
    pub const IBM_SHA3_384: u64 = 0x8001_0003;
    /// CKM_IBM_SHA3_512
    pub const IBM_SHA3_512: u64 = 0x8001_0004;
}

/// CKF_DIGEST: the mechanism digests.
pub const CKF_DIGEST: u64 = 0x400;

/// The digest mechanisms and the algorithm each maps to, in the order GetMechanismList
/// reports them.
pub const DIGESTS: [(u64, DigestAlg); 9] = [
    (ckm::SHA_1, DigestAlg::Sha1),
    (ckm::SHA224, DigestAlg::Sha224),
    (ckm::SHA256, DigestAlg::Sha256),
    (ckm::SHA384, DigestAlg::Sha384),
    (ckm::SHA512, DigestAlg::Sha512),
    (ckm::SHA512_256, DigestAlg::Sha512_256),
    (ckm::IBM_SHA3_256, DigestAlg::Sha3_256),
    (ckm::IBM_SHA3_384, DigestAlg::Sha3_384),
    (ckm::IBM_SHA3_512, DigestAlg::Sha3_512),
];

fn digest_alg(mech: u64) -> Option<DigestAlg> {
    DIGESTS.iter().find(|(m, _)| *m == mech).map(|(_, a)| *a)
}

/// A gRPC status whose details carry one `grep11.Grep11Error` (as IBM's clients expect).
pub fn grep11_status(code: tonic::Code, ckr: u64, detail: &str, retry: bool) -> Status {
    let err = pb::Grep11Error {
        code: ckr,
        detail: detail.to_string(),
        retry,
    };
    let status = rpc::Status {
        code: code as i32,
        message: detail.to_string(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/grep11.Grep11Error".into(),
            value: err.encode_to_vec(),
        }],
    };
    Status::with_details(code, detail, status.encode_to_vec().into())
}

/// The `grep11.Grep11Error` carried by a status, if it has exactly one (what IBM's clients
/// read; anything else they report as CKR_GENERAL_ERROR).
pub fn grep11_error_of(status: &Status) -> Option<pb::Grep11Error> {
    let rich = rpc::Status::decode(status.details()).ok()?;
    match rich.details.as_slice() {
        [any] if any.type_url.ends_with("/grep11.Grep11Error") => {
            pb::Grep11Error::decode(any.value.as_slice()).ok()
        }
        _ => None,
    }
}

/// The one table from service errors to (gRPC code, CK_RV, retry).
pub fn ckr_of(kind: ErrorKind) -> (tonic::Code, u64, bool) {
    use tonic::Code;
    use ErrorKind::*;
    match kind {
        Unauthenticated | MalformedToken => (Code::Unauthenticated, ckr::USER_NOT_LOGGED_IN, false),
        Forbidden | InvalidInstanceHeader => {
            (Code::PermissionDenied, ckr::USER_NOT_LOGGED_IN, false)
        }
        BadBody | NoBody | CollectionTotalMismatch | InvalidField | InvalidQueryParam => {
            (Code::InvalidArgument, ckr::ARGUMENTS_BAD, false)
        }
        RateLimited => (Code::ResourceExhausted, ckr::DEVICE_ERROR, true),
        UnitNotInitialized | Unavailable => (Code::Unavailable, ckr::DEVICE_ERROR, true),
        Conflict => (Code::Aborted, ckr::GENERAL_ERROR, true),
        _ => (Code::Internal, ckr::GENERAL_ERROR, false),
    }
}

fn status_of(e: ServiceError) -> Status {
    let (code, ckr, retry) = ckr_of(e.kind);
    grep11_status(code, ckr, &e.message, retry)
}

fn not_supported(rpc: &str) -> Status {
    grep11_status(
        tonic::Code::Unimplemented,
        ckr::FUNCTION_NOT_SUPPORTED,
        &format!("{rpc} is not implemented by this Strongroom release"),
        false,
    )
}

/// The gRPC service.
#[derive(Clone)]
pub struct Grep11 {
    svc: Arc<Service>,
}

impl Grep11 {
    /// A GREP11 front end over `svc`.
    pub fn new(svc: Arc<Service>) -> Self {
        Grep11 { svc }
    }

    /// The service as an axum router (served by the same listener machinery as REST).
    pub fn router(self) -> axum::Router {
        tonic::service::Routes::new(pb::crypto_server::CryptoServer::new(self)).into_axum_router()
    }

    async fn ctx<T>(&self, req: &Request<T>, action: &'static str) -> Result<Ctx, Status> {
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok());
        self.svc
            .authenticate_with(
                get("authorization"),
                get("bluemix-instance"),
                get("correlation-id").unwrap_or("").to_string(),
                action,
                false,
            )
            .await
            .map_err(status_of)
    }
}

#[tonic::async_trait]
impl pb::crypto_server::Crypto for Grep11 {
    async fn generate_random(
        &self,
        r: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let ctx = self.ctx(&r, "ep11.random").await?;
        let rnd = self
            .svc
            .generate_random(&ctx, r.get_ref().len)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::GenerateRandomResponse { rnd }))
    }

    async fn digest_single(
        &self,
        r: Request<pb::DigestSingleRequest>,
    ) -> Result<Response<pb::DigestSingleResponse>, Status> {
        let ctx = self.ctx(&r, "ep11.digest").await?;
        let req = r.into_inner();
        let mech = req.mech.map(|m| m.mechanism).unwrap_or(u64::MAX);
        let Some(alg) = digest_alg(mech) else {
            return Err(grep11_status(
                tonic::Code::InvalidArgument,
                ckr::MECHANISM_INVALID,
                &format!("mechanism 0x{mech:x} is not a digest mechanism this server implements (see GetMechanismList)"),
                false,
            ));
        };
        let digest = self
            .svc
            .digest(&ctx, alg, &req.data)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::InvalidField => grep11_status(
                    tonic::Code::InvalidArgument,
                    ckr::DATA_LEN_RANGE,
                    &e.message,
                    false,
                ),
                _ => status_of(e),
            })?;
        Ok(Response::new(pb::DigestSingleResponse { digest }))
    }

    async fn get_mechanism_list(
        &self,
        r: Request<pb::GetMechanismListRequest>,
    ) -> Result<Response<pb::GetMechanismListResponse>, Status> {
        self.ctx(&r, "ep11.mechanisms").await?;
        Ok(Response::new(pb::GetMechanismListResponse {
            mechs: DIGESTS.iter().map(|(m, _)| *m).collect(),
        }))
    }

    async fn get_mechanism_info(
        &self,
        r: Request<pb::GetMechanismInfoRequest>,
    ) -> Result<Response<pb::GetMechanismInfoResponse>, Status> {
        self.ctx(&r, "ep11.mechanisms").await?;
        let mech = r.get_ref().mech;
        if digest_alg(mech).is_none() {
            return Err(grep11_status(
                tonic::Code::InvalidArgument,
                ckr::MECHANISM_INVALID,
                &format!("mechanism 0x{mech:x} is not implemented by this server"),
                false,
            ));
        }
        Ok(Response::new(pb::GetMechanismInfoResponse {
            mech_info: Some(pb::MechanismInfo {
                min_key_size: 0,
                max_key_size: 0,
                flags: CKF_DIGEST,
            }),
        }))
    }

    // Not implemented yet: a clear CKR_FUNCTION_NOT_SUPPORTED, never a silent success.
    async fn digest_init(
        &self,
        _r: Request<pb::DigestInitRequest>,
    ) -> Result<Response<pb::DigestInitResponse>, Status> {
        Err(not_supported("DigestInit"))
    }

    async fn digest(
        &self,
        _r: Request<pb::DigestRequest>,
    ) -> Result<Response<pb::DigestResponse>, Status> {
        Err(not_supported("Digest"))
    }

    async fn digest_update(
        &self,
        _r: Request<pb::DigestUpdateRequest>,
    ) -> Result<Response<pb::DigestUpdateResponse>, Status> {
        Err(not_supported("DigestUpdate"))
    }

    async fn digest_key(
        &self,
        _r: Request<pb::DigestKeyRequest>,
    ) -> Result<Response<pb::DigestKeyResponse>, Status> {
        Err(not_supported("DigestKey"))
    }

    async fn digest_final(
        &self,
        _r: Request<pb::DigestFinalRequest>,
    ) -> Result<Response<pb::DigestFinalResponse>, Status> {
        Err(not_supported("DigestFinal"))
    }

    async fn encrypt_init(
        &self,
        _r: Request<pb::EncryptInitRequest>,
    ) -> Result<Response<pb::EncryptInitResponse>, Status> {
        Err(not_supported("EncryptInit"))
    }

    async fn decrypt_init(
        &self,
        _r: Request<pb::DecryptInitRequest>,
    ) -> Result<Response<pb::DecryptInitResponse>, Status> {
        Err(not_supported("DecryptInit"))
    }

    async fn encrypt_update(
        &self,
        _r: Request<pb::EncryptUpdateRequest>,
    ) -> Result<Response<pb::EncryptUpdateResponse>, Status> {
        Err(not_supported("EncryptUpdate"))
    }

    async fn decrypt_update(
        &self,
        _r: Request<pb::DecryptUpdateRequest>,
    ) -> Result<Response<pb::DecryptUpdateResponse>, Status> {
        Err(not_supported("DecryptUpdate"))
    }

    async fn encrypt(
        &self,
        _r: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        Err(not_supported("Encrypt"))
    }

    async fn decrypt(
        &self,
        _r: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        Err(not_supported("Decrypt"))
    }

    async fn encrypt_final(
        &self,
        _r: Request<pb::EncryptFinalRequest>,
    ) -> Result<Response<pb::EncryptFinalResponse>, Status> {
        Err(not_supported("EncryptFinal"))
    }

    async fn decrypt_final(
        &self,
        _r: Request<pb::DecryptFinalRequest>,
    ) -> Result<Response<pb::DecryptFinalResponse>, Status> {
        Err(not_supported("DecryptFinal"))
    }

    async fn encrypt_single(
        &self,
        _r: Request<pb::EncryptSingleRequest>,
    ) -> Result<Response<pb::EncryptSingleResponse>, Status> {
        Err(not_supported("EncryptSingle"))
    }

    async fn decrypt_single(
        &self,
        _r: Request<pb::DecryptSingleRequest>,
    ) -> Result<Response<pb::DecryptSingleResponse>, Status> {
        Err(not_supported("DecryptSingle"))
    }

    async fn sign_init(
        &self,
        _r: Request<pb::SignInitRequest>,
    ) -> Result<Response<pb::SignInitResponse>, Status> {
        Err(not_supported("SignInit"))
    }

    async fn verify_init(
        &self,
        _r: Request<pb::VerifyInitRequest>,
    ) -> Result<Response<pb::VerifyInitResponse>, Status> {
        Err(not_supported("VerifyInit"))
    }

    async fn sign_update(
        &self,
        _r: Request<pb::SignUpdateRequest>,
    ) -> Result<Response<pb::SignUpdateResponse>, Status> {
        Err(not_supported("SignUpdate"))
    }

    async fn verify_update(
        &self,
        _r: Request<pb::VerifyUpdateRequest>,
    ) -> Result<Response<pb::VerifyUpdateResponse>, Status> {
        Err(not_supported("VerifyUpdate"))
    }

    async fn sign_final(
        &self,
        _r: Request<pb::SignFinalRequest>,
    ) -> Result<Response<pb::SignFinalResponse>, Status> {
        Err(not_supported("SignFinal"))
    }

    async fn verify_final(
        &self,
        _r: Request<pb::VerifyFinalRequest>,
    ) -> Result<Response<pb::VerifyFinalResponse>, Status> {
        Err(not_supported("VerifyFinal"))
    }

    async fn sign(
        &self,
        _r: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        Err(not_supported("Sign"))
    }

    async fn verify(
        &self,
        _r: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        Err(not_supported("Verify"))
    }

    async fn sign_single(
        &self,
        _r: Request<pb::SignSingleRequest>,
    ) -> Result<Response<pb::SignSingleResponse>, Status> {
        Err(not_supported("SignSingle"))
    }

    async fn verify_single(
        &self,
        _r: Request<pb::VerifySingleRequest>,
    ) -> Result<Response<pb::VerifySingleResponse>, Status> {
        Err(not_supported("VerifySingle"))
    }

    async fn reencrypt_single(
        &self,
        _r: Request<pb::ReencryptSingleRequest>,
    ) -> Result<Response<pb::ReencryptSingleResponse>, Status> {
        Err(not_supported("ReencryptSingle"))
    }

    async fn generate_key(
        &self,
        _r: Request<pb::GenerateKeyRequest>,
    ) -> Result<Response<pb::GenerateKeyResponse>, Status> {
        Err(not_supported("GenerateKey"))
    }

    async fn generate_key_pair(
        &self,
        _r: Request<pb::GenerateKeyPairRequest>,
    ) -> Result<Response<pb::GenerateKeyPairResponse>, Status> {
        Err(not_supported("GenerateKeyPair"))
    }

    async fn wrap_key(
        &self,
        _r: Request<pb::WrapKeyRequest>,
    ) -> Result<Response<pb::WrapKeyResponse>, Status> {
        Err(not_supported("WrapKey"))
    }

    async fn unwrap_key(
        &self,
        _r: Request<pb::UnwrapKeyRequest>,
    ) -> Result<Response<pb::UnwrapKeyResponse>, Status> {
        Err(not_supported("UnwrapKey"))
    }

    async fn derive_key(
        &self,
        _r: Request<pb::DeriveKeyRequest>,
    ) -> Result<Response<pb::DeriveKeyResponse>, Status> {
        Err(not_supported("DeriveKey"))
    }

    async fn get_attribute_value(
        &self,
        _r: Request<pb::GetAttributeValueRequest>,
    ) -> Result<Response<pb::GetAttributeValueResponse>, Status> {
        Err(not_supported("GetAttributeValue"))
    }

    async fn set_attribute_value(
        &self,
        _r: Request<pb::SetAttributeValueRequest>,
    ) -> Result<Response<pb::SetAttributeValueResponse>, Status> {
        Err(not_supported("SetAttributeValue"))
    }

    async fn login(
        &self,
        _r: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        Err(not_supported("Login"))
    }

    async fn logout(
        &self,
        _r: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        Err(not_supported("Logout"))
    }

    async fn rewrap_key_blob(
        &self,
        _r: Request<pb::RewrapKeyBlobRequest>,
    ) -> Result<Response<pb::RewrapKeyBlobResponse>, Status> {
        Err(not_supported("RewrapKeyBlob"))
    }
}
