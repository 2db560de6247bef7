//! GREP11 benchmarks for `scripts/bench`: the four operations of the GREP11 issue driven
//! over gRPC with a fixed number of concurrent streams, and the same operations called
//! in-process on the engine (one thread per core: the physical limit of this machine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{gather, Meter};
use crate::error::Error;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use strongroom_client::grep11::unary::{frame, unframe};
use strongroom_engine::ep11::consts::{cka, ckk, ckm, cko, Cka, Ckm};
use strongroom_engine::ep11::{AttrValue, Mech, MechParam, Op, Template};
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_grep11::pb::crypto_client::CryptoClient;
use strongroom_grep11::{pb, pb_template};
use strongroom_model::InstanceId;

/// The measured operations.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ep11Op {
    /// SignSingle CKM_SHA256_RSA_PKCS with an RSA-2048 key over 32 bytes.
    RsaSign,
    /// SignSingle CKM_ECDSA with a P-256 key over a 32-byte digest.
    EcdsaSign,
    /// EncryptSingle CKM_AES_CBC_PAD with an AES-256 key over 1 KiB.
    AesEncrypt,
    /// GenerateKey CKM_AES_KEY_GEN, 32 bytes.
    GenerateAes,
    /// SignSingle CKM_ML_DSA with an ML-DSA-65 key over 32 bytes (empty context).
    MlDsaSign,
    /// DeriveKey CKM_ML_KEM with an ML-KEM-768 private key: decapsulation of one ciphertext
    /// to an AES-256 key blob.
    MlKemDecap,
}

/// The AES-256 key an ML-KEM decapsulation makes.
fn kem_template() -> Template {
    t(&[
        (cka::CLASS, AttrValue::ulong(cko::SECRET_KEY)),
        (cka::KEY_TYPE, AttrValue::ulong(ckk::AES)),
        (cka::VALUE_LEN, AttrValue::Int(32)),
        (cka::ENCRYPT, AttrValue::Bool(true)),
    ])
}

fn t(items: &[(Cka, AttrValue)]) -> Template {
    items.iter().cloned().collect()
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// (public template, private template or secret template, mechanism) of the key an op uses.
fn key_spec(op: Ep11Op) -> (Ckm, Template, Template) {
    let yes = AttrValue::Bool(true);
    match op {
        Ep11Op::RsaSign => (
            ckm::RSA_PKCS_KEY_PAIR_GEN,
            t(&[
                (cka::MODULUS_BITS, AttrValue::Int(2048)),
                (cka::VERIFY, yes.clone()),
            ]),
            t(&[(cka::SIGN, yes)]),
        ),
        Ep11Op::EcdsaSign => (
            ckm::EC_KEY_PAIR_GEN,
            t(&[
                (cka::EC_PARAMS, AttrValue::Bytes(P256.to_vec())),
                (cka::VERIFY, yes.clone()),
            ]),
            t(&[(cka::SIGN, yes)]),
        ),
        Ep11Op::AesEncrypt | Ep11Op::GenerateAes => (
            ckm::AES_KEY_GEN,
            Template::new(),
            t(&[(cka::VALUE_LEN, AttrValue::Int(32)), (cka::ENCRYPT, yes)]),
        ),
        Ep11Op::MlDsaSign => (
            ckm::ML_DSA_KEY_PAIR_GEN,
            t(&[
                (cka::PARAMETER_SET, AttrValue::Int(2)),
                (cka::VERIFY, yes.clone()),
            ]),
            t(&[(cka::SIGN, yes)]),
        ),
        Ep11Op::MlKemDecap => (
            ckm::ML_KEM_KEY_PAIR_GEN,
            t(&[
                (cka::PARAMETER_SET, AttrValue::Int(2)),
                (cka::DERIVE, yes.clone()),
            ]),
            t(&[(cka::DERIVE, yes)]),
        ),
    }
}

fn op_mech(op: Ep11Op) -> Mech {
    match op {
        Ep11Op::RsaSign => Mech::new(ckm::SHA256_RSA_PKCS),
        Ep11Op::EcdsaSign => Mech::new(ckm::ECDSA),
        Ep11Op::AesEncrypt => Mech {
            code: ckm::AES_CBC_PAD,
            param: MechParam::Bytes(vec![9; 16]),
        },
        Ep11Op::GenerateAes => Mech::new(ckm::AES_KEY_GEN),
        Ep11Op::MlDsaSign => Mech::new(ckm::ML_DSA),
        // The ciphertext is made once the key exists (see `with_ciphertext`).
        Ep11Op::MlKemDecap => Mech::new(ckm::ML_KEM),
    }
}

/// CKM_ML_KEM for decapsulating `ct`: the ciphertext of an encapsulation (DeriveKey with
/// the public key), the 7-byte check value removed.
fn with_ciphertext(checksum: &[u8]) -> Result<Mech, Error> {
    let ct = checksum
        .get(7..)
        .ok_or_else(|| Error::other("no ciphertext after the check value"))?;
    Ok(Mech {
        code: ckm::ML_KEM,
        param: MechParam::Bytes(ct.to_vec()),
    })
}

fn data_of(op: Ep11Op) -> Vec<u8> {
    match op {
        Ep11Op::AesEncrypt => vec![0x5a; 1024],
        _ => vec![0x11; 32],
    }
}

/// In-process: `threads` threads call the engine for `duration` seconds.
pub fn inproc(op: Ep11Op, threads: usize, duration: f64) -> Result<serde_json::Value, Error> {
    let p: Arc<dyn CryptoProvider> = Arc::new(strongroom_crypto_awslc::AwsLcProvider);
    let mut unit = CryptoUnit::new(Arc::clone(&p)).map_err(Error::from)?;
    unit.set_instance(InstanceId::random());
    unit.set_current_master_key(MasterKey::random(p.as_ref()).map_err(|_| Error::other("rng"))?);
    let unit = Arc::new(unit);
    let (gen, pt, st) = key_spec(op);
    let mut mech = op_mech(op);
    let key = if gen == ckm::AES_KEY_GEN {
        unit.ep11()
            .generate_key(&Mech::new(gen), &st)
            .map_err(Error::from)?
            .blob
    } else {
        let (public, private) = unit
            .ep11()
            .generate_key_pair(&Mech::new(gen), &pt, &st)
            .map_err(Error::from)?;
        if op == Ep11Op::MlKemDecap {
            let sent = unit
                .ep11()
                .derive(&Mech::new(ckm::ML_KEM), &public.blob, &kem_template())
                .map_err(Error::from)?;
            mech = with_ciphertext(&sent.checksum)?;
        }
        private.blob
    };
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (unit, key, stop, count) = (
                Arc::clone(&unit),
                key.clone(),
                Arc::clone(&stop),
                Arc::clone(&count),
            );
            let (mech, data, st) = (mech.clone(), data_of(op), st.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = match op {
                        Ep11Op::RsaSign | Ep11Op::EcdsaSign | Ep11Op::MlDsaSign => unit
                            .ep11()
                            .single(Op::Sign, &mech, &key, &data, &[])
                            .is_ok(),
                        Ep11Op::MlKemDecap => {
                            unit.ep11().derive(&mech, &key, &kem_template()).is_ok()
                        }
                        Ep11Op::AesEncrypt => unit
                            .ep11()
                            .single(Op::Encrypt, &mech, &key, &data, &[])
                            .is_ok(),
                        Ep11Op::GenerateAes => unit.ep11().generate_key(&mech, &st).is_ok(),
                    };
                    if ok {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(duration));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    Ok(json!({"ops": n, "seconds": secs, "ops_per_sec": n as f64 / secs, "threads": threads}))
}

/// One measured operation as it goes over the wire: the method path, the request message
/// framed for gRPC (flag byte, length, protobuf) and what a correct answer holds.
struct Call {
    op: Ep11Op,
    path: &'static str,
    frame: hyper::body::Bytes,
}

impl Call {
    fn new(op: Ep11Op, mech: &Mech, key: &[u8], template: &Template) -> Call {
        let (mech, data) = (pb_mech(mech), data_of(op));
        let (path, msg) = match op {
            Ep11Op::MlKemDecap => (
                "/grep11.Crypto/DeriveKey",
                frame(&pb::DeriveKeyRequest {
                    mech,
                    template: pb_template(&kem_template()),
                    base_key: kb(key),
                    ..Default::default()
                }),
            ),
            Ep11Op::RsaSign | Ep11Op::EcdsaSign | Ep11Op::MlDsaSign => (
                "/grep11.Crypto/SignSingle",
                frame(&pb::SignSingleRequest {
                    mech,
                    data,
                    priv_key: kb(key),
                    ..Default::default()
                }),
            ),
            Ep11Op::AesEncrypt => (
                "/grep11.Crypto/EncryptSingle",
                frame(&pb::EncryptSingleRequest {
                    mech,
                    plain: data,
                    key: kb(key),
                    ..Default::default()
                }),
            ),
            Ep11Op::GenerateAes => (
                "/grep11.Crypto/GenerateKey",
                frame(&pb::GenerateKeyRequest {
                    mech,
                    template: pb_template(template),
                }),
            ),
        };
        Call {
            op,
            path,
            frame: msg,
        }
    }

    /// Sends the request and checks the answer.
    async fn send(
        &self,
        sender: &mut hyper::client::conn::http2::SendRequest<Full<hyper::body::Bytes>>,
        uri: &hyper::Uri,
        auth: &hyper::header::HeaderValue,
    ) -> Result<(), Error> {
        use prost::Message;
        let req = hyper::Request::post(uri.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", auth.clone())
            .body(Full::new(self.frame.clone()))
            .map_err(Error::from)?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(Error::other(format!("HTTP status {}", resp.status())));
        }
        let headers_status = resp.headers().get("grpc-status").cloned();
        let body = resp.into_body().collect().await?;
        let status = body
            .trailers()
            .and_then(|t| t.get("grpc-status").cloned())
            .or(headers_status);
        if status.as_ref().map(|v| v.as_bytes()) != Some(b"0") {
            return Err(Error::other(format!("grpc-status {status:?}")));
        }
        let bytes = body.to_bytes();
        let msg = unframe(&bytes).map_err(|st| Error::other(st.message().to_string()))?;
        let decoded = Error::context("protobuf");
        let (size, expected) = match self.op {
            Ep11Op::RsaSign | Ep11Op::EcdsaSign | Ep11Op::MlDsaSign => {
                let n = pb::SignSingleResponse::decode(msg)
                    .map_err(decoded)?
                    .signature
                    .len();
                let want = match self.op {
                    Ep11Op::RsaSign => 256,
                    Ep11Op::MlDsaSign => 3309,
                    _ => 64,
                };
                (n, n == want)
            }
            Ep11Op::MlKemDecap => {
                let r = pb::DeriveKeyResponse::decode(msg).map_err(decoded)?;
                (
                    r.new_key_bytes.len(),
                    r.check_sum.len() == 7 && r.new_key_bytes.len() > 32,
                )
            }
            Ep11Op::AesEncrypt => {
                let n = pb::EncryptSingleResponse::decode(msg)
                    .map_err(decoded)?
                    .ciphered
                    .len();
                (n, n == 1040)
            }
            Ep11Op::GenerateAes => {
                let n = pb::GenerateKeyResponse::decode(msg)
                    .map_err(decoded)?
                    .key_bytes
                    .len();
                (n, n > 32)
            }
        };
        if !expected {
            return Err(Error::usage(format!("unexpected result size {size}")));
        }
        Ok(())
    }
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

fn kb(blob: &[u8]) -> Option<pb::KeyBlob> {
    Some(pb::KeyBlob {
        key_blobs: vec![blob.to_vec().into()],
        ..Default::default()
    })
}

fn pb_mech(m: &Mech) -> Option<pb::Mechanism> {
    Some(pb::Mechanism {
        mechanism: m.code.0,
        parameter: match &m.param {
            MechParam::Bytes(b) => Some(pb::mechanism::Parameter::ParameterB(b.clone())),
            _ => None,
        },
    })
}

/// How `bench grep11` loads the server.
pub struct Load {
    /// Requests in flight.
    pub streams: usize,
    /// HTTP/2 connections the streams are spread over.
    pub connections: usize,
    /// How long.
    pub timing: super::Timing,
}

/// Over gRPC: `streams` requests in flight, spread over `connections` HTTP/2 connections.
pub async fn grpc(
    addr: &str,
    token: &str,
    op: Ep11Op,
    load: Load,
) -> Result<serde_json::Value, Error> {
    let Load {
        streams,
        connections,
        timing,
    } = load;
    let mut chans = Vec::new();
    for _ in 0..connections.max(1) {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(Error::from)?
            .tcp_nodelay(true)
            .connect()
            .await?;
        chans.push(CryptoClient::new(ch));
    }
    let mut c = chans[0].clone();
    let (gen, pt, st) = key_spec(op);
    let mut mech = op_mech(op);
    let key = if gen == ckm::AES_KEY_GEN {
        c.generate_key(authed(
            pb::GenerateKeyRequest {
                mech: pb_mech(&Mech::new(gen)),
                template: pb_template(&st),
            },
            token,
        ))
        .await?
        .into_inner()
        .key_bytes
    } else {
        let pair = c
            .generate_key_pair(authed(
                pb::GenerateKeyPairRequest {
                    mech: pb_mech(&Mech::new(gen)),
                    pub_key_template: pb_template(&pt),
                    priv_key_template: pb_template(&st),
                },
                token,
            ))
            .await?
            .into_inner();
        if op == Ep11Op::MlKemDecap {
            let sent = c
                .derive_key(authed(
                    pb::DeriveKeyRequest {
                        mech: pb_mech(&Mech::new(ckm::ML_KEM)),
                        template: pb_template(&kem_template()),
                        base_key: kb(&pair.pub_key_bytes),
                        ..Default::default()
                    },
                    token,
                ))
                .await?
                .into_inner();
            mech = with_ciphertext(&sent.check_sum)?;
        }
        pair.priv_key_bytes
    };
    // The measured requests: one pre-encoded gRPC message per operation, sent by a lean
    // HTTP/2 client (hyper) so that the load generator takes little of the cores it shares
    // with the server. Every answer is checked: HTTP 200, `grpc-status: 0` and a response
    // message that decodes and carries a result of the expected size.
    let call = Call::new(op, &mech, &key, &st);
    let mut senders = Vec::new();
    for _ in 0..connections.max(1) {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(Error::context(format!("cannot connect to {addr}")))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(strongroom_client::coalesce::Coalesce::new(
                tcp, true,
            )))
            .await
            .map_err(Error::context(format!("HTTP/2 handshake with {addr}")))?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let auth: hyper::header::HeaderValue = format!("Bearer {token}")
        .parse()
        .map_err(|_| Error::other("the token is not a valid header value"))?;
    let uri: hyper::Uri = format!("http://{addr}{}", call.path)
        .parse()
        .map_err(|e| Error::other(format!("{e}")))?;
    let call = Arc::new(call);
    let meter = Arc::new(Meter::default());
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut sender = senders[s % senders.len()].clone();
        let (call, auth, uri, meter) = (
            Arc::clone(&call),
            auth.clone(),
            uri.clone(),
            Arc::clone(&meter),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            while meter.running() {
                let t0 = Instant::now();
                match call.send(&mut sender, &uri, &auth).await {
                    Ok(()) => meter.success(t0, &mut lat),
                    Err(e) => {
                        if meter.error() {
                            eprintln!("first error: {e}");
                        }
                        if sender.is_closed() {
                            break;
                        }
                    }
                }
            }
            lat
        }));
    }
    let secs = meter.window(&timing).await;
    let mut report = meter.report(secs, gather(tasks).await);
    report["streams"] = json!(streams);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use hyper::body::Bytes;
    use prost::Message;

    use super::*;

    /// A server that answers every call with `message` (gRPC-framed) and `grpc-status`.
    async fn answering(message: Vec<u8>, status: &'static str) -> Result<(), Error> {
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        let svc = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            async move {
                let mut trailers = hyper::HeaderMap::new();
                trailers.insert(
                    "grpc-status",
                    hyper::header::HeaderValue::from_static(status),
                );
                let body = Full::new(Bytes::from(framed))
                    .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                Ok::<_, Infallible>(hyper::Response::new(body))
            }
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server_end), svc),
        );
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_end))
                .await?;
        tokio::spawn(conn);
        let call = Call::new(
            Ep11Op::RsaSign,
            &op_mech(Ep11Op::RsaSign),
            &[1; 1500],
            &Template::new(),
        );
        assert!(call.frame.len() > 1500, "the request carries the key blob");
        let uri: hyper::Uri = "http://localhost/grep11.Crypto/SignSingle".parse().unwrap();
        call.send(&mut sender, &uri, &"Bearer t".parse().unwrap())
            .await
    }

    #[tokio::test]
    async fn an_answer_counts_only_when_it_is_one() {
        let good = pb::SignSingleResponse {
            signature: vec![5; 256],
        }
        .encode_to_vec();
        assert!(matches!(answering(good.clone(), "0").await, Ok(())));
        let refused = answering(good, "3").await.unwrap_err();
        assert!(refused.to_string().contains("grpc-status"), "{refused}");
        let short = pb::SignSingleResponse {
            signature: vec![5; 255],
        }
        .encode_to_vec();
        let wrong = answering(short, "0").await.unwrap_err();
        assert!(wrong.to_string().contains("size 255"), "{wrong}");
        let garbage = answering(vec![0xff; 7], "0").await.unwrap_err();
        assert!(!garbage.to_string().is_empty());
    }
}
