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
    AttrValue, Attrs, Ep11, Ep11Error, Mech, MechParam, NewKey, Op, Template,
};
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

pub use strongroom_engine::ep11::consts::{cka, ckf, ckk, ckm, cko, ckr, Cka, Ckk, Ckm, Cko, Ckr};

/// CKF_DIGEST: the mechanism digests.
pub const CKF_DIGEST: u64 = ckf::DIGEST;

mod convert;
mod error_map;
pub mod keystore;

use convert::*;
pub use convert::{mech_of, pb_template, template_of};
use error_map::*;
pub use error_map::{
    ckr_of, grep11_error_of, grep11_status, CKR_IBM_GREP11_CANNOT_UNMARSHAL, MAX_MESSAGE,
};

/// The services the health service reports on: the whole server (`""`) and each service.
pub const HEALTH_SERVICES: [&str; 3] = ["", "grep11.Crypto", "strongroom.keystore.Keystore"];

/// How often the health status is brought in step with the keystore.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps the health status in step with the keystore: SERVING while it answers,
/// NOT_SERVING while it does not (a load balancer then sends calls to another node). Ends
/// when the service is dropped.
async fn report_health(
    svc: std::sync::Weak<Service>,
    reporter: tonic_health::server::HealthReporter,
) {
    use tonic_health::ServingStatus;
    loop {
        let Some(s) = svc.upgrade() else { return };
        let status = match s.ready().await {
            Ok(()) => ServingStatus::Serving,
            Err(_) => ServingStatus::NotServing,
        };
        drop(s);
        for name in HEALTH_SERVICES {
            reporter.set_service_status(name, status).await;
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}

/// The gRPC service.
#[derive(Clone)]
pub struct Grep11 {
    svc: Arc<Service>,
    network: strongroom_service::Network,
}

impl Grep11 {
    /// A GREP11 front end over `svc`.
    pub fn new(svc: Arc<Service>) -> Self {
        Grep11 {
            svc,
            network: strongroom_service::Network::Public,
        }
    }

    /// The same front end for a listener on `network` (allowedNetwork).
    pub fn on_network(mut self, network: strongroom_service::Network) -> Self {
        self.network = network;
        self
    }

    /// The service as an axum router (served by the same listener machinery as REST), with
    /// the gRPC health service (`grpc.health.v1.Health`) beside it. Call it within a tokio
    /// runtime: a task keeps the health status in step with the keystore.
    pub fn router(self) -> axum::Router {
        let keystore = keystore::ks::keystore_server::KeystoreServer::new(self.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let (reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(report_health(Arc::downgrade(&self.svc), reporter));
        tonic::service::Routes::new(
            pb::crypto_server::CryptoServer::new(self)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(keystore)
        .add_service(health)
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
            .check_instance_ip(ctx.instance, peer, self.network, &ctx.correlation_id)
            .await
            .map_err(status_of)?;
        Ok(ctx)
    }
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
        F: FnOnce(Ep11<'_>) -> Result<T, Ep11Error> + Send + 'static,
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
            mechs: self
                .svc
                .mechanism_policy()
                .list()
                .map(|m| m.code.0)
                .collect(),
        }))
    }

    async fn get_mechanism_info(
        &self,
        r: Request<pb::GetMechanismInfoRequest>,
    ) -> Result<Response<pb::GetMechanismInfoResponse>, Status> {
        self.ctx(&r, Action::Ep11Mechanisms).await?;
        let mech = Ckm(r.get_ref().mech);
        let Some(info) = self.svc.mechanism_policy().info(mech) else {
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
            Ok(move |ep: Ep11<'_>| {
                ep.init(Op::Digest, &mech, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Digest, &q.state, &q.data, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.update(Op::Digest, &q.state, &q.data)
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
            Ok(move |ep: Ep11<'_>| {
                ep.digest_key(&q.state, &key)
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Digest, &q.state, &[], &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.init(Op::Encrypt, &mech, &key)
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
            Ok(move |ep: Ep11<'_>| {
                ep.init(Op::Decrypt, &mech, &key)
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
            Ok(move |ep: Ep11<'_>| {
                ep.update(Op::Encrypt, &q.state, &q.plain)
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
            Ok(move |ep: Ep11<'_>| {
                ep.update(Op::Decrypt, &q.state, &q.ciphered)
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Encrypt, &q.state, &q.plain, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Decrypt, &q.state, &q.ciphered, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Encrypt, &q.state, &[], &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Decrypt, &q.state, &[], &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.single(Op::Encrypt, &mech, &key, &q.plain, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.single(Op::Decrypt, &mech, &key, &q.ciphered, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.init(Op::Sign, &mech, &key)
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
            Ok(move |ep: Ep11<'_>| {
                ep.init(Op::Verify, &mech, &key)
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
            Ok(move |ep: Ep11<'_>| {
                ep.update(Op::Sign, &q.state, &q.data)
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
            Ok(move |ep: Ep11<'_>| {
                ep.update(Op::Verify, &q.state, &q.data)
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Sign, &q.state, &[], &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Verify, &q.state, &[], &q.signature)
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Sign, &q.state, &q.data, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.finish(Op::Verify, &q.state, &q.data, &q.signature)
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
            Ok(move |ep: Ep11<'_>| {
                ep.single(Op::Sign, &mech, &key, &q.data, &[])
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
            Ok(move |ep: Ep11<'_>| {
                ep.single(Op::Verify, &mech, &key, &q.data, &q.signature)
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
            Ok(move |ep: Ep11<'_>| {
                ep.reencrypt(&dec, &dk, &enc, &ek, &q.ciphered)
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
        let cost = match r.get_ref().mech.as_ref().map(|m| Ckm(m.mechanism)) {
            Some(ckm::DSA_PARAMETER_GEN) => (Role::Writer, Ep11Cost::Blocking),
            _ => WRITE,
        };
        self.call(r, Action::Ep11GenerateKey, cost, |q| {
            let mech = mech_of(q.mech)?;
            let t = template_of(q.template);
            Ok(move |ep: Ep11<'_>| {
                ep.generate_key(&mech, &t).map(|k| pb::GenerateKeyResponse {
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
                Ok(move |ep: Ep11<'_>| {
                    ep.generate_key_pair(&mech, &pt, &st)
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
            Ok(move |ep: Ep11<'_>| {
                ep.wrap(&mech, &key, &kek, &mac)
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
            Ok(move |ep: Ep11<'_>| {
                ep.unwrap(&mech, &kek, &mac, &q.wrapped, &t)
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
            Ok(move |ep: Ep11<'_>| {
                ep.derive(&mech, &base, &t).map(|k| pb::DeriveKeyResponse {
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
            let mut which: Vec<Cka> = q.attributes.keys().map(|&a| Cka(a)).collect();
            which.extend(q.attributes_bytes.keys().map(|&a| Cka(a)));
            which.sort_unstable();
            which.dedup();
            Ok(move |ep: Ep11<'_>| {
                ep.get_attributes(&q.object, &which)
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
            Ok(move |ep: Ep11<'_>| {
                ep.set_attributes(&q.object, &t)
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
            Ok(move |ep: Ep11<'_>| {
                ep.rewrap(&blob).map(|b| pb::RewrapKeyBlobResponse {
                    rewrapped_key: Some(pb::KeyBlob {
                        key_blob_id: Vec::new(),
                        version: 0,
                        tx_id: Vec::new(),
                        attributes,
                        key_blobs: vec![b.clone().into()],
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
