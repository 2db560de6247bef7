//! The GREP11 front end: IBM's "Enterprise PKCS#11 over gRPC" API (package `grep11`, service
//! `Crypto`), wire-compatible with the current ("v2") layout, over [`Service`]. Protocol
//! types stop here: this crate converts protobuf messages and CKM_* codes into service calls
//! and maps service errors to a gRPC status carrying a `grep11.Grep11Error` detail (one
//! table, [`ckr_of`]).
//!
//! Every RPC is served except Login/Logout (EP11 login sessions; `CKR_FUNCTION_NOT_SUPPORTED`).
//! Key blobs are accepted in the v2 form (`KeyBlob`, `KeyBlobs[0]`) and in the v1 form (plain
//! bytes at the older field numbers); key-creating calls fill both `*Bytes` and `KeyBlob`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use strongroom_engine::ep11::{
    mechanism_info, AttrValue, Attrs, Ep11Error, Mech, MechParam, NewKey, Op, Template, MECHANISMS,
};
use strongroom_engine::CryptoUnit;
use strongroom_model::Role;
use strongroom_service::{Action, Ctx, Ep11Cost, ErrorKind, Service, ServiceError};
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

pub use strongroom_engine::ep11::consts::{cka, ckf, ckk, ckm, cko, ckr};

/// CKF_DIGEST: the mechanism digests.
pub const CKF_DIGEST: u64 = ckf::DIGEST;

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
        Pkcs11(ckr::IBM_WK_NOT_INITIALIZED) => {
            (Code::FailedPrecondition, ckr::IBM_WK_NOT_INITIALIZED, false)
        }
        Pkcs11(c @ (ckr::GENERAL_ERROR | ckr::DEVICE_ERROR)) => (Code::Internal, c, false),
        Pkcs11(c) => (Code::InvalidArgument, c, false),
        UnitNotInitialized | Unavailable => (Code::Unavailable, ckr::DEVICE_ERROR, true),
        Conflict => (Code::Aborted, ckr::GENERAL_ERROR, true),
        // Kinds of the key API and the administration that a GREP11 call does not meet
        // today; mapped so that a new use answers sensibly, and so that a new kind does
        // not compile until it is placed here.
        RootKeyRequired
        | PayloadRequired
        | IncorrectNonce
        | IncorrectNonceIv
        | SearchTooBroad
        | RegistrationRootRequired
        | KeyVersionInvalid
        | UnitCommandMalformed => (Code::InvalidArgument, ckr::ARGUMENTS_BAD, false),
        KeyNotFound | InstanceNotFound | ApiKeyNotFound | KeyRingNotFound
        | RegistrationNotFound | UnitNotFound => (Code::NotFound, ckr::ARGUMENTS_BAD, false),
        KeyExpired
        | RestoreExpired
        | InvalidKeyState
        | TooEarly
        | RotationNotPermitted
        | KeyDeleted
        | AliasTaken
        | InstanceNotEmpty
        | AlreadyExists
        | KeyRingNotEmpty
        | AuthorizationsNotMet
        | NotDualAuth
        | ImportTokenExpired
        | CreateImportAccessDenied
        | RegistrationKeyInvalidState
        | ProtectedResource
        | PreventKeyDeletion
        | UnitReplay
        | UnitState
        | UnitRoster => (Code::FailedPrecondition, ckr::GENERAL_ERROR, false),
        LimitReached => (Code::ResourceExhausted, ckr::GENERAL_ERROR, false),
        UnitSignatures => (Code::PermissionDenied, ckr::GENERAL_ERROR, false),
        Internal => (Code::Internal, ckr::GENERAL_ERROR, false),
    }
}

#[cfg(test)]
mod error_table_tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_grep11_answer() {
        for kind in ErrorKind::ALL {
            let (code, rv, retry) = ckr_of(kind);
            assert_ne!(code, tonic::Code::Ok, "{kind:?}");
            assert_ne!(rv, 0, "{kind:?} answers CKR_OK");
            let transient = matches!(
                kind,
                ErrorKind::Unavailable
                    | ErrorKind::UnitNotInitialized
                    | ErrorKind::RateLimited
                    | ErrorKind::Conflict
            );
            assert_eq!(
                retry, transient,
                "{kind:?}: only transient errors are retryable"
            );
        }
        assert_eq!(
            ckr_of(ErrorKind::Pkcs11(ckr::IBM_WK_NOT_INITIALIZED)).0,
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            ckr_of(ErrorKind::Pkcs11(ckr::SIGNATURE_INVALID)),
            (tonic::Code::InvalidArgument, ckr::SIGNATURE_INVALID, false)
        );
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

/// Largest gRPC message accepted or sent: room for the engine's 4 MiB data limit plus a
/// State, so that oversized data gets CKR_DATA_LEN_RANGE rather than a transport error.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024 + 64 * 1024;

/// CKR_IBM_GREP11_CANNOT_UNMARSHAL (`grep11.h`): the request is not a valid message.
pub const CKR_IBM_GREP11_CANNOT_UNMARSHAL: u64 = 0x8004_0002;

/// A request that is not valid protobuf fails in tonic's codec, before any handler, as a
/// bare INTERNAL status; answer it like every other error: a Grep11Error with
/// CKR_IBM_GREP11_CANNOT_UNMARSHAL. A request over [`MAX_MESSAGE`] gets CKR_DATA_LEN_RANGE.
async fn unmarshal_errors(resp: axum::response::Response) -> axum::response::Response {
    if let Some(st) = Status::from_header_map(resp.headers()) {
        if st.code() == tonic::Code::Internal
            && st.details().is_empty()
            && st
                .message()
                .starts_with("failed to decode Protobuf message")
        {
            return grep11_status(
                tonic::Code::InvalidArgument,
                CKR_IBM_GREP11_CANNOT_UNMARSHAL,
                &format!(
                    "the request is not a valid protobuf message for this RPC ({})",
                    st.message()
                ),
                false,
            )
            .into_http();
        }
        // tonic's own size check ("decoded message length too large") also comes bare.
        if st.code() == tonic::Code::OutOfRange
            && st.details().is_empty()
            && st.message().contains("message length too large")
        {
            return grep11_status(
                tonic::Code::ResourceExhausted,
                ckr::DATA_LEN_RANGE,
                &format!("the request is larger than the {MAX_MESSAGE}-byte message limit"),
                false,
            )
            .into_http();
        }
    }
    resp
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
        tonic::service::Routes::new(
            pb::crypto_server::CryptoServer::new(self)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .into_axum_router()
        .layer(axum::middleware::map_response(unmarshal_errors))
    }

    async fn ctx<T>(&self, req: &Request<T>, action: Action) -> Result<Ctx, Status> {
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok());
        let ctx = self
            .svc
            .authenticate_with(
                get("authorization"),
                get("bluemix-instance"),
                get("correlation-id").unwrap_or("").to_string(),
                action,
                false,
            )
            .await
            .map_err(status_of)?;
        // allowedIP holds here as on REST: the listener puts the peer's address on every
        // request; without it, an instance with a policy is refused.
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        self.svc
            .check_instance_ip(ctx.instance, peer, &ctx.correlation_id)
            .await
            .map_err(status_of)?;
        Ok(ctx)
    }
}

// ---- conversions between protobuf and the engine ----

fn bad_mech(detail: &str) -> Status {
    grep11_status(
        tonic::Code::InvalidArgument,
        ckr::MECHANISM_INVALID,
        detail,
        false,
    )
}

/// The engine's mechanism of a protobuf `Mechanism`.
pub fn mech_of(m: Option<pb::Mechanism>) -> Result<Mech, Status> {
    use pb::mechanism::Parameter;
    let m = m.ok_or_else(|| bad_mech("Mech is required"))?;
    let code = |e: i32| u64::try_from(e).unwrap_or(u64::MAX);
    let param = match m.parameter {
        None => MechParam::None,
        Some(Parameter::ParameterB(b)) => MechParam::Bytes(b),
        Some(Parameter::RsaoaepParameter(p)) => MechParam::Oaep {
            hash: p.hash_mech,
            mgf: code(p.mgf),
            label: p.encoding_parm,
        },
        Some(Parameter::RsapssParameter(p)) => MechParam::Pss {
            hash: p.hash_mech,
            mgf: code(p.mgf),
            salt: p.salt_byte_count,
        },
        Some(Parameter::Ecdh1DeriveParameter(p)) => MechParam::Ecdh {
            kdf: code(p.kdf),
            shared: p.shared_data,
            public: p.public_data,
        },
        Some(Parameter::BtcDeriveParameter(_)) => MechParam::Unsupported(6),
        Some(Parameter::EcsgParameter(_)) => MechParam::Unsupported(7),
        Some(Parameter::KyberKemParameter(_)) => MechParam::Unsupported(8),
        Some(Parameter::EcaggParameter(_)) => MechParam::Unsupported(9),
    };
    Ok(Mech {
        code: m.mechanism,
        param,
    })
}

/// The engine's template of a protobuf attribute map (an empty `AttributeValue` is an
/// empty byte string, as IBM's Go helper sends for nil).
pub fn template_of(m: HashMap<u64, pb::AttributeValue>) -> Template {
    use pb::attribute_value::OneAttr;
    m.into_iter()
        .map(|(k, v)| {
            let v = match v.one_attr {
                Some(OneAttr::AttributeB(b)) => AttrValue::Bytes(b),
                Some(OneAttr::AttributeTf(b)) => AttrValue::Bool(b),
                Some(OneAttr::AttributeI(i)) => AttrValue::Int(i),
                None => AttrValue::Bytes(Vec::new()),
            };
            (k, v)
        })
        .collect()
}

fn attr_value(v: &AttrValue) -> pb::AttributeValue {
    use pb::attribute_value::OneAttr;
    pb::AttributeValue {
        one_attr: Some(match v {
            AttrValue::Bool(b) => OneAttr::AttributeTf(*b),
            AttrValue::Int(i) => OneAttr::AttributeI(*i),
            AttrValue::Bytes(b) => OneAttr::AttributeB(b.clone()),
        }),
    }
}

fn attr_map(a: &Attrs) -> HashMap<u64, pb::AttributeValue> {
    a.0.iter().map(|(k, v)| (*k, attr_value(v))).collect()
}

/// Legacy bytes encoding of attribute values: CK_BBOOL one byte, CK_ULONG 8 bytes big-endian.
fn attr_bytes(a: &Attrs) -> HashMap<u64, Vec<u8>> {
    a.0.iter()
        .map(|(k, v)| {
            let b = match v {
                AttrValue::Bool(b) => vec![u8::from(*b)],
                AttrValue::Int(i) => i.to_be_bytes().to_vec(),
                AttrValue::Bytes(b) => b.clone(),
            };
            (*k, b)
        })
        .collect()
}

fn key_blob(k: &NewKey) -> pb::KeyBlob {
    pb::KeyBlob {
        key_blob_id: Vec::new(),
        version: 0,
        tx_id: Vec::new(),
        attributes: attr_map(&k.attrs),
        key_blobs: vec![k.blob.clone()],
    }
}

/// The key blob of a request: `KeyBlobs[0]` of the v2 `KeyBlob`, else the v1 bytes field.
fn key_of(v2: Option<pb::KeyBlob>, v1: Vec<u8>) -> Vec<u8> {
    v2.and_then(|k| k.key_blobs.into_iter().next())
        .filter(|b| !b.is_empty())
        .unwrap_or(v1)
}

const READ: (Role, Ep11Cost) = (Role::Reader, Ep11Cost::Inline);
const WRITE: (Role, Ep11Cost) = (Role::Writer, Ep11Cost::Inline);

impl Grep11 {
    /// Authenticates, then runs `f` on the instance's unit (audited as `action`).
    async fn call<Q, T, F>(
        &self,
        r: Request<Q>,
        action: Action,
        (role, cost): (Role, Ep11Cost),
        f: impl FnOnce(Q) -> Result<F, Status>,
    ) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&CryptoUnit) -> Result<T, Ep11Error> + Send + 'static,
    {
        let ctx = self.ctx(&r, action).await?;
        let op = f(r.into_inner())?;
        self.svc
            .ep11(&ctx, action, role, cost, op)
            .await
            .map(Response::new)
            .map_err(status_of)
    }
}

#[tonic::async_trait]
impl pb::crypto_server::Crypto for Grep11 {
    async fn generate_random(
        &self,
        r: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let ctx = self.ctx(&r, Action::Ep11Random).await?;
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
        let ctx = self.ctx(&r, Action::Ep11Digest).await?;
        let req = r.into_inner();
        let mech = mech_of(req.mech)?;
        let Some(alg) = strongroom_engine::ep11::digest_of(mech.code) else {
            return Err(bad_mech(&format!(
                "mechanism 0x{:x} is not a digest mechanism this server implements (see GetMechanismList)",
                mech.code
            )));
        };
        if !matches!(mech.param, MechParam::None) {
            return Err(grep11_status(
                tonic::Code::InvalidArgument,
                ckr::MECHANISM_PARAM_INVALID,
                "digest mechanisms take no parameter",
                false,
            ));
        }
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
        self.ctx(&r, Action::Ep11Mechanisms).await?;
        Ok(Response::new(pb::GetMechanismListResponse {
            mechs: MECHANISMS.iter().map(|m| m.code).collect(),
        }))
    }

    async fn get_mechanism_info(
        &self,
        r: Request<pb::GetMechanismInfoRequest>,
    ) -> Result<Response<pb::GetMechanismInfoResponse>, Status> {
        self.ctx(&r, Action::Ep11Mechanisms).await?;
        let mech = r.get_ref().mech;
        let Some(info) = mechanism_info(mech) else {
            return Err(bad_mech(&format!(
                "mechanism 0x{mech:x} is not implemented by this server"
            )));
        };
        Ok(Response::new(pb::GetMechanismInfoResponse {
            mech_info: Some(pb::MechanismInfo {
                min_key_size: info.min,
                max_key_size: info.max,
                flags: info.flags,
            }),
        }))
    }

    async fn digest_init(
        &self,
        r: Request<pb::DigestInitRequest>,
    ) -> Result<Response<pb::DigestInitResponse>, Status> {
        self.call(r, Action::Ep11Digest, READ, |q| {
            let mech = mech_of(q.mech)?;
            Ok(move |u: &CryptoUnit| {
                u.ep11_init(Op::Digest, &mech, &[])
                    .map(|state| pb::DigestInitResponse { state })
            })
        })
        .await
    }

    async fn digest(
        &self,
        r: Request<pb::DigestRequest>,
    ) -> Result<Response<pb::DigestResponse>, Status> {
        self.call(r, Action::Ep11Digest, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Digest, &q.state, &q.data, &[])
                    .map(|digest| pb::DigestResponse { digest })
            })
        })
        .await
    }

    async fn digest_update(
        &self,
        r: Request<pb::DigestUpdateRequest>,
    ) -> Result<Response<pb::DigestUpdateResponse>, Status> {
        self.call(r, Action::Ep11Digest, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_update(Op::Digest, &q.state, &q.data)
                    .map(|(state, _)| pb::DigestUpdateResponse { state })
            })
        })
        .await
    }

    async fn digest_key(
        &self,
        r: Request<pb::DigestKeyRequest>,
    ) -> Result<Response<pb::DigestKeyResponse>, Status> {
        self.call(r, Action::Ep11Digest, WRITE, |q| {
            let key = key_of(q.key, q.key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_digest_key(&q.state, &key)
                    .map(|state| pb::DigestKeyResponse { state })
            })
        })
        .await
    }

    async fn digest_final(
        &self,
        r: Request<pb::DigestFinalRequest>,
    ) -> Result<Response<pb::DigestFinalResponse>, Status> {
        self.call(r, Action::Ep11Digest, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Digest, &q.state, &[], &[])
                    .map(|digest| pb::DigestFinalResponse { digest })
            })
        })
        .await
    }

    async fn encrypt_init(
        &self,
        r: Request<pb::EncryptInitRequest>,
    ) -> Result<Response<pb::EncryptInitResponse>, Status> {
        self.call(r, Action::Ep11Encrypt, READ, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.key, q.key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_init(Op::Encrypt, &mech, &key)
                    .map(|state| pb::EncryptInitResponse { state })
            })
        })
        .await
    }

    async fn decrypt_init(
        &self,
        r: Request<pb::DecryptInitRequest>,
    ) -> Result<Response<pb::DecryptInitResponse>, Status> {
        self.call(r, Action::Ep11Decrypt, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.key, q.key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_init(Op::Decrypt, &mech, &key)
                    .map(|state| pb::DecryptInitResponse { state })
            })
        })
        .await
    }

    async fn encrypt_update(
        &self,
        r: Request<pb::EncryptUpdateRequest>,
    ) -> Result<Response<pb::EncryptUpdateResponse>, Status> {
        self.call(r, Action::Ep11Encrypt, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_update(Op::Encrypt, &q.state, &q.plain)
                    .map(|(state, ciphered)| pb::EncryptUpdateResponse { state, ciphered })
            })
        })
        .await
    }

    async fn decrypt_update(
        &self,
        r: Request<pb::DecryptUpdateRequest>,
    ) -> Result<Response<pb::DecryptUpdateResponse>, Status> {
        self.call(r, Action::Ep11Decrypt, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_update(Op::Decrypt, &q.state, &q.ciphered)
                    .map(|(state, plain)| pb::DecryptUpdateResponse { state, plain })
            })
        })
        .await
    }

    async fn encrypt(
        &self,
        r: Request<pb::EncryptRequest>,
    ) -> Result<Response<pb::EncryptResponse>, Status> {
        self.call(r, Action::Ep11Encrypt, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Encrypt, &q.state, &q.plain, &[])
                    .map(|ciphered| pb::EncryptResponse { ciphered })
            })
        })
        .await
    }

    async fn decrypt(
        &self,
        r: Request<pb::DecryptRequest>,
    ) -> Result<Response<pb::DecryptResponse>, Status> {
        self.call(r, Action::Ep11Decrypt, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Decrypt, &q.state, &q.ciphered, &[])
                    .map(|plain| pb::DecryptResponse { plain })
            })
        })
        .await
    }

    async fn encrypt_final(
        &self,
        r: Request<pb::EncryptFinalRequest>,
    ) -> Result<Response<pb::EncryptFinalResponse>, Status> {
        self.call(r, Action::Ep11Encrypt, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Encrypt, &q.state, &[], &[])
                    .map(|ciphered| pb::EncryptFinalResponse { ciphered })
            })
        })
        .await
    }

    async fn decrypt_final(
        &self,
        r: Request<pb::DecryptFinalRequest>,
    ) -> Result<Response<pb::DecryptFinalResponse>, Status> {
        self.call(r, Action::Ep11Decrypt, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Decrypt, &q.state, &[], &[])
                    .map(|plain| pb::DecryptFinalResponse { plain })
            })
        })
        .await
    }

    async fn encrypt_single(
        &self,
        r: Request<pb::EncryptSingleRequest>,
    ) -> Result<Response<pb::EncryptSingleResponse>, Status> {
        self.call(r, Action::Ep11Encrypt, READ, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.key, q.key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_single(Op::Encrypt, &mech, &key, &q.plain, &[])
                    .map(|ciphered| pb::EncryptSingleResponse { ciphered })
            })
        })
        .await
    }

    async fn decrypt_single(
        &self,
        r: Request<pb::DecryptSingleRequest>,
    ) -> Result<Response<pb::DecryptSingleResponse>, Status> {
        self.call(r, Action::Ep11Decrypt, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.key, q.key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_single(Op::Decrypt, &mech, &key, &q.ciphered, &[])
                    .map(|plain| pb::DecryptSingleResponse { plain })
            })
        })
        .await
    }

    async fn sign_init(
        &self,
        r: Request<pb::SignInitRequest>,
    ) -> Result<Response<pb::SignInitResponse>, Status> {
        self.call(r, Action::Ep11Sign, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.priv_key, q.priv_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_init(Op::Sign, &mech, &key)
                    .map(|state| pb::SignInitResponse { state })
            })
        })
        .await
    }

    async fn verify_init(
        &self,
        r: Request<pb::VerifyInitRequest>,
    ) -> Result<Response<pb::VerifyInitResponse>, Status> {
        self.call(r, Action::Ep11Verify, READ, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.pub_key, q.pub_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_init(Op::Verify, &mech, &key)
                    .map(|state| pb::VerifyInitResponse { state })
            })
        })
        .await
    }

    async fn sign_update(
        &self,
        r: Request<pb::SignUpdateRequest>,
    ) -> Result<Response<pb::SignUpdateResponse>, Status> {
        self.call(r, Action::Ep11Sign, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_update(Op::Sign, &q.state, &q.data)
                    .map(|(state, _)| pb::SignUpdateResponse { state })
            })
        })
        .await
    }

    async fn verify_update(
        &self,
        r: Request<pb::VerifyUpdateRequest>,
    ) -> Result<Response<pb::VerifyUpdateResponse>, Status> {
        self.call(r, Action::Ep11Verify, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_update(Op::Verify, &q.state, &q.data)
                    .map(|(state, _)| pb::VerifyUpdateResponse { state })
            })
        })
        .await
    }

    async fn sign_final(
        &self,
        r: Request<pb::SignFinalRequest>,
    ) -> Result<Response<pb::SignFinalResponse>, Status> {
        self.call(r, Action::Ep11Sign, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Sign, &q.state, &[], &[])
                    .map(|signature| pb::SignFinalResponse { signature })
            })
        })
        .await
    }

    async fn verify_final(
        &self,
        r: Request<pb::VerifyFinalRequest>,
    ) -> Result<Response<pb::VerifyFinalResponse>, Status> {
        self.call(r, Action::Ep11Verify, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Verify, &q.state, &[], &q.signature)
                    .map(|_| pb::VerifyFinalResponse {})
            })
        })
        .await
    }

    async fn sign(
        &self,
        r: Request<pb::SignRequest>,
    ) -> Result<Response<pb::SignResponse>, Status> {
        self.call(r, Action::Ep11Sign, WRITE, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Sign, &q.state, &q.data, &[])
                    .map(|signature| pb::SignResponse { signature })
            })
        })
        .await
    }

    async fn verify(
        &self,
        r: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        self.call(r, Action::Ep11Verify, READ, |q| {
            Ok(move |u: &CryptoUnit| {
                u.ep11_finish(Op::Verify, &q.state, &q.data, &q.signature)
                    .map(|_| pb::VerifyResponse {})
            })
        })
        .await
    }

    async fn sign_single(
        &self,
        r: Request<pb::SignSingleRequest>,
    ) -> Result<Response<pb::SignSingleResponse>, Status> {
        self.call(r, Action::Ep11Sign, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.priv_key, q.priv_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_single(Op::Sign, &mech, &key, &q.data, &[])
                    .map(|signature| pb::SignSingleResponse { signature })
            })
        })
        .await
    }

    async fn verify_single(
        &self,
        r: Request<pb::VerifySingleRequest>,
    ) -> Result<Response<pb::VerifySingleResponse>, Status> {
        self.call(r, Action::Ep11Verify, READ, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.pub_key, q.pub_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_single(Op::Verify, &mech, &key, &q.data, &q.signature)
                    .map(|_| pb::VerifySingleResponse {})
            })
        })
        .await
    }

    async fn reencrypt_single(
        &self,
        r: Request<pb::ReencryptSingleRequest>,
    ) -> Result<Response<pb::ReencryptSingleResponse>, Status> {
        self.call(r, Action::Ep11Reencrypt, WRITE, |q| {
            let dec = mech_of(q.dec_mech)?;
            let enc = mech_of(q.enc_mech)?;
            let dk = key_of(q.dec_key, q.dec_key_v1);
            let ek = key_of(q.enc_key, q.enc_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_reencrypt(&dec, &dk, &enc, &ek, &q.ciphered)
                    .map(|reciphered| pb::ReencryptSingleResponse { reciphered })
            })
        })
        .await
    }

    async fn generate_key(
        &self,
        r: Request<pb::GenerateKeyRequest>,
    ) -> Result<Response<pb::GenerateKeyResponse>, Status> {
        // Parameter generation searches for primes: off the request threads.
        let cost = match r.get_ref().mech.as_ref().map(|m| m.mechanism) {
            Some(ckm::DSA_PARAMETER_GEN) => (Role::Writer, Ep11Cost::Blocking),
            _ => WRITE,
        };
        self.call(r, Action::Ep11GenerateKey, cost, |q| {
            let mech = mech_of(q.mech)?;
            let t = template_of(q.template);
            Ok(move |u: &CryptoUnit| {
                u.ep11_generate_key(&mech, &t)
                    .map(|k| pb::GenerateKeyResponse {
                        key: Some(key_blob(&k)),
                        key_bytes: k.blob,
                        check_sum: k.checksum,
                    })
            })
        })
        .await
    }

    async fn generate_key_pair(
        &self,
        r: Request<pb::GenerateKeyPairRequest>,
    ) -> Result<Response<pb::GenerateKeyPairResponse>, Status> {
        self.call(
            r,
            Action::Ep11GenerateKeyPair,
            (Role::Writer, Ep11Cost::Blocking),
            |q| {
                let mech = mech_of(q.mech)?;
                let pt = template_of(q.pub_key_template);
                let st = template_of(q.priv_key_template);
                Ok(move |u: &CryptoUnit| {
                    u.ep11_generate_key_pair(&mech, &pt, &st)
                        .map(|(public, private)| pb::GenerateKeyPairResponse {
                            priv_key: Some(key_blob(&private)),
                            pub_key: Some(key_blob(&public)),
                            priv_key_bytes: private.blob,
                            pub_key_bytes: public.blob,
                        })
                })
            },
        )
        .await
    }

    async fn wrap_key(
        &self,
        r: Request<pb::WrapKeyRequest>,
    ) -> Result<Response<pb::WrapKeyResponse>, Status> {
        self.call(r, Action::Ep11WrapKey, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let key = key_of(q.key, q.key_v1);
            let kek = key_of(q.ke_k, q.ke_kv1);
            let mac = key_of(q.mac_key, q.mac_key_v1);
            Ok(move |u: &CryptoUnit| {
                u.ep11_wrap(&mech, &key, &kek, &mac)
                    .map(|wrapped| pb::WrapKeyResponse { wrapped })
            })
        })
        .await
    }

    async fn unwrap_key(
        &self,
        r: Request<pb::UnwrapKeyRequest>,
    ) -> Result<Response<pb::UnwrapKeyResponse>, Status> {
        self.call(r, Action::Ep11UnwrapKey, WRITE, |q| {
            let mech = mech_of(q.mech)?;
            let kek = key_of(q.ke_k, q.ke_kv1);
            let mac = key_of(q.mac_key, q.mac_key_v1);
            let t = template_of(q.template);
            Ok(move |u: &CryptoUnit| {
                u.ep11_unwrap(&mech, &kek, &mac, &q.wrapped, &t)
                    .map(|k| pb::UnwrapKeyResponse {
                        unwrapped: Some(key_blob(&k)),
                        unwrapped_bytes: k.blob,
                        check_sum: k.checksum,
                    })
            })
        })
        .await
    }

    async fn derive_key(
        &self,
        r: Request<pb::DeriveKeyRequest>,
    ) -> Result<Response<pb::DeriveKeyResponse>, Status> {
        self.call(r, Action::Ep11DeriveKey, WRITE, |q| {
            let mut mech = mech_of(q.mech)?;
            // IBM's examples send the peer's point in ParameterB; older clients in Data.
            if matches!(mech.param, MechParam::None) && !q.data.is_empty() {
                mech.param = MechParam::Bytes(q.data.clone());
            }
            let base = key_of(q.base_key, q.base_key_v1);
            let t = template_of(q.template);
            Ok(move |u: &CryptoUnit| {
                u.ep11_derive(&mech, &base, &t)
                    .map(|k| pb::DeriveKeyResponse {
                        new_key: Some(key_blob(&k)),
                        new_key_bytes: k.blob,
                        check_sum: k.checksum,
                    })
            })
        })
        .await
    }

    async fn get_attribute_value(
        &self,
        r: Request<pb::GetAttributeValueRequest>,
    ) -> Result<Response<pb::GetAttributeValueResponse>, Status> {
        self.call(r, Action::Ep11GetAttributes, READ, |q| {
            let mut which: Vec<u64> = q.attributes.keys().copied().collect();
            which.extend(q.attributes_bytes.keys().copied());
            which.sort_unstable();
            which.dedup();
            Ok(move |u: &CryptoUnit| {
                u.ep11_get_attributes(&q.object, &which)
                    .map(|a| pb::GetAttributeValueResponse {
                        attributes_bytes: attr_bytes(&a),
                        attributes: attr_map(&a),
                    })
            })
        })
        .await
    }

    async fn set_attribute_value(
        &self,
        r: Request<pb::SetAttributeValueRequest>,
    ) -> Result<Response<pb::SetAttributeValueResponse>, Status> {
        self.call(r, Action::Ep11SetAttributes, WRITE, |q| {
            let t = template_of(q.attributes);
            Ok(move |u: &CryptoUnit| {
                u.ep11_set_attributes(&q.object, &t)
                    .map(|(object, _)| pb::SetAttributeValueResponse { object })
            })
        })
        .await
    }

    async fn rewrap_key_blob(
        &self,
        r: Request<pb::RewrapKeyBlobRequest>,
    ) -> Result<Response<pb::RewrapKeyBlobResponse>, Status> {
        self.call(r, Action::Ep11Rewrap, WRITE, |q| {
            let attributes = q
                .wrapped_key
                .as_ref()
                .map(|k| k.attributes.clone())
                .unwrap_or_default();
            let blob = key_of(q.wrapped_key, q.wrapped_key_bytes);
            Ok(move |u: &CryptoUnit| {
                u.ep11_rewrap(&blob).map(|b| pb::RewrapKeyBlobResponse {
                    rewrapped_key: Some(pb::KeyBlob {
                        key_blob_id: Vec::new(),
                        version: 0,
                        tx_id: Vec::new(),
                        attributes,
                        key_blobs: vec![b.clone()],
                    }),
                    rewrapped_key_bytes: b,
                })
            })
        })
        .await
    }

    async fn login(
        &self,
        _r: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        Err(not_supported("Login (EP11 login sessions)"))
    }

    async fn logout(
        &self,
        _r: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        Err(not_supported("Logout (EP11 login sessions)"))
    }
}
