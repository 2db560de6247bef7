//! GREP11 benchmarks for `scripts/bench`: the four operations of the GREP11 issue driven
//! over gRPC with a fixed number of concurrent streams, and the same operations called
//! in-process on the engine (one thread per core: the physical limit of this machine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use strongroom_engine::ep11::consts::{cka, ckm};
use strongroom_engine::ep11::{AttrValue, Mech, MechParam, Op, Template};
use strongroom_engine::{CryptoProvider, CryptoUnit, MasterKey};
use strongroom_grep11::pb;
use strongroom_grep11::pb::crypto_client::CryptoClient;
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
}

fn t(items: &[(u64, AttrValue)]) -> Template {
    items.iter().cloned().collect()
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// (public template, private template or secret template, mechanism) of the key an op uses.
fn key_spec(op: Ep11Op) -> (u64, Template, Template) {
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
    }
}

fn data_of(op: Ep11Op) -> Vec<u8> {
    match op {
        Ep11Op::AesEncrypt => vec![0x5a; 1024],
        _ => vec![0x11; 32],
    }
}

/// In-process: `threads` threads call the engine for `duration` seconds.
pub fn inproc(op: Ep11Op, threads: usize, duration: f64) -> Result<serde_json::Value, String> {
    let p: Arc<dyn CryptoProvider> = Arc::new(strongroom_crypto_awslc::AwsLcProvider);
    let mut unit = CryptoUnit::new(Arc::clone(&p)).map_err(|e| e.to_string())?;
    unit.set_instance(InstanceId::random());
    unit.set_current_master_key(MasterKey::random(p.as_ref()).map_err(|_| "rng")?);
    let unit = Arc::new(unit);
    let (gen, pt, st) = key_spec(op);
    let key = if gen == ckm::AES_KEY_GEN {
        unit.ep11_generate_key(&Mech::new(gen), &st)
            .map_err(|e| e.to_string())?
            .blob
    } else {
        unit.ep11_generate_key_pair(&Mech::new(gen), &pt, &st)
            .map_err(|e| e.to_string())?
            .1
            .blob
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
            let (mech, data, st) = (op_mech(op), data_of(op), st.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = match op {
                        Ep11Op::RsaSign | Ep11Op::EcdsaSign => {
                            unit.ep11_single(Op::Sign, &mech, &key, &data, &[]).is_ok()
                        }
                        Ep11Op::AesEncrypt => unit
                            .ep11_single(Op::Encrypt, &mech, &key, &data, &[])
                            .is_ok(),
                        Ep11Op::GenerateAes => unit.ep11_generate_key(&mech, &st).is_ok(),
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

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

fn kb(blob: &[u8]) -> Option<pb::KeyBlob> {
    Some(pb::KeyBlob {
        key_blobs: vec![blob.to_vec()],
        ..Default::default()
    })
}

fn pb_mech(m: &Mech) -> Option<pb::Mechanism> {
    Some(pb::Mechanism {
        mechanism: m.code,
        parameter: match &m.param {
            MechParam::Bytes(b) => Some(pb::mechanism::Parameter::ParameterB(b.clone())),
            _ => None,
        },
    })
}

fn pb_template(t: &Template) -> std::collections::HashMap<u64, pb::AttributeValue> {
    use pb::attribute_value::OneAttr;
    t.iter()
        .map(|(k, v)| {
            let one = match v {
                AttrValue::Bool(b) => OneAttr::AttributeTf(*b),
                AttrValue::Int(i) => OneAttr::AttributeI(*i),
                AttrValue::Bytes(b) => OneAttr::AttributeB(b.clone()),
            };
            (
                *k,
                pb::AttributeValue {
                    one_attr: Some(one),
                },
            )
        })
        .collect()
}

/// Over gRPC: `streams` requests in flight, spread over `connections` HTTP/2 connections.
pub async fn grpc(
    addr: &str,
    token: &str,
    op: Ep11Op,
    streams: usize,
    connections: usize,
    duration: f64,
    warmup: f64,
) -> Result<serde_json::Value, String> {
    let mut chans = Vec::new();
    for _ in 0..connections.max(1) {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        chans.push(CryptoClient::new(ch));
    }
    let mut c = chans[0].clone();
    let (gen, pt, st) = key_spec(op);
    let key = if gen == ckm::AES_KEY_GEN {
        c.generate_key(authed(
            pb::GenerateKeyRequest {
                mech: pb_mech(&Mech::new(gen)),
                template: pb_template(&st),
            },
            token,
        ))
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .key_bytes
    } else {
        c.generate_key_pair(authed(
            pb::GenerateKeyPairRequest {
                mech: pb_mech(&Mech::new(gen)),
                pub_key_template: pb_template(&pt),
                priv_key_template: pb_template(&st),
            },
            token,
        ))
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .priv_key_bytes
    };
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut c = chans[s % chans.len()].clone();
        let (key, token, measuring, stop, ok, errors) = (
            key.clone(),
            token.to_string(),
            Arc::clone(&measuring),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&errors),
        );
        let (mech, data, st) = (pb_mech(&op_mech(op)), data_of(op), pb_template(&st));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let r = match op {
                    Ep11Op::RsaSign | Ep11Op::EcdsaSign => c
                        .sign_single(authed(
                            pb::SignSingleRequest {
                                mech: mech.clone(),
                                data: data.clone(),
                                priv_key: kb(&key),
                                ..Default::default()
                            },
                            &token,
                        ))
                        .await
                        .map(|_| ()),
                    Ep11Op::AesEncrypt => c
                        .encrypt_single(authed(
                            pb::EncryptSingleRequest {
                                mech: mech.clone(),
                                plain: data.clone(),
                                key: kb(&key),
                                ..Default::default()
                            },
                            &token,
                        ))
                        .await
                        .map(|_| ()),
                    Ep11Op::GenerateAes => c
                        .generate_key(authed(
                            pb::GenerateKeyRequest {
                                mech: mech.clone(),
                                template: st.clone(),
                            },
                            &token,
                        ))
                        .await
                        .map(|_| ()),
                };
                match r {
                    Ok(()) => {
                        if measuring.load(Ordering::Relaxed) {
                            ok.fetch_add(1, Ordering::Relaxed);
                            lat.push(t0.elapsed().as_micros() as u64);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    measuring.store(false, Ordering::SeqCst);
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut lat = Vec::new();
    for t in tasks {
        if let Ok(v) = t.await {
            lat.extend(v);
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| crate::bench::percentile_ms(&lat, p);
    let n = ok.load(Ordering::SeqCst);
    Ok(json!({
        "ops": n,
        "errors": errors.load(Ordering::SeqCst),
        "seconds": secs,
        "ops_per_sec": n as f64 / secs,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "streams": streams,
    }))
}
