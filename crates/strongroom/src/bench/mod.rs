//! Load generation for `scripts/bench`: an HTTP/1.1 keep-alive load generator with a fixed
//! number of connections, and the trivial axum server that serves as the same-run
//! baseline. Figures are printed as JSON for the script to compare.

mod grep11;
mod kmip;
mod pkcs11;
mod stats;

use stats::Meter;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use axum::routing::post;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// In-process re-encryption rate of key blobs from one master key to another (open
    /// and seal in the engine, one core): the physical limit of a rotation.
    Rewrap {
        #[arg(long, default_value_t = 20_000)]
        count: u32,
    },
    /// GREP11 operations called in-process on the engine, one thread per core: the
    /// physical limit of this machine for them.
    Ep11Inproc {
        #[arg(long, value_enum)]
        op: grep11::Ep11Op,
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// GREP11 operations over gRPC with a fixed number of concurrent streams.
    Grep11 {
        /// host:port of the GREP11 listener (plaintext, as in dev mode).
        #[arg(long)]
        addr: String,
        #[arg(long, env = "STRONGROOM_TOKEN")]
        token: String,
        #[arg(long, value_enum)]
        op: grep11::Ep11Op,
        #[arg(long, default_value_t = 64)]
        streams: usize,
        /// HTTP/2 connections the streams are spread over.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        #[command(flatten)]
        timing: Timing,
    },
    /// An operation through a PKCS#11 module (this library, or SoftHSM2 as the baseline)
    /// from N threads, a session each.
    Pkcs11 {
        /// The module (.so).
        #[arg(long)]
        module: PathBuf,
        /// The user PIN (for Strongroom's library, an API key).
        #[arg(long, env = "STRONGROOM_PKCS11_PIN")]
        pin: String,
        #[arg(long, value_enum)]
        op: grep11::Ep11Op,
        #[arg(long, default_value_t = 16)]
        threads: usize,
        #[command(flatten)]
        timing: Timing,
    },
    /// The resident memory a PKCS#11 module adds to a process with N sessions and M
    /// session objects.
    Pkcs11Memory {
        #[arg(long)]
        module: PathBuf,
        #[arg(long, env = "STRONGROOM_PKCS11_PIN")]
        pin: String,
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        #[arg(long, default_value_t = 10_000)]
        objects: usize,
    },
    /// KMIP Get or Create over mutual TLS with N connections (one request in flight each).
    Kmip {
        /// host:port of the KMIP listener.
        #[arg(long)]
        addr: String,
        #[arg(long, value_enum)]
        op: kmip::KmipOp,
        /// PEM CA of the server's certificate.
        #[arg(long)]
        ca: PathBuf,
        /// PEM client certificate and key.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[command(flatten)]
        timing: Timing,
        /// Stop after this many successful requests.
        #[arg(long)]
        max_requests: Option<u64>,
    },
    /// Serve a trivial JSON handler (the baseline): POST /trivial.
    TrivialServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
        /// Write the bound address here.
        #[arg(long)]
        addr_file: PathBuf,
    },
    /// Drive load against a URL and print ops/s and latency percentiles as JSON.
    Load {
        /// Base URL (http://host:port); several, comma-separated, spread the connections.
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "POST")]
        method: String,
        /// Request path; `{}` is replaced by successive lines of --ids-file.
        #[arg(long)]
        path: String,
        /// Lines substituted for `{}` in the path, round-robin.
        #[arg(long)]
        ids_file: Option<PathBuf>,
        /// Request body.
        #[arg(long, default_value = "")]
        body: String,
        /// Extra header `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[command(flatten)]
        timing: Timing,
        /// Stop after this many successful requests (e.g. to create N keys).
        #[arg(long)]
        max_requests: Option<u64>,
    },
}

/// How long a load runs: a warm-up, then the seconds measured.
#[derive(Args, Debug, Clone, Copy)]
pub struct Timing {
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
}

impl Timing {
    /// The seconds measured.
    pub fn measured(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    /// The seconds of warm-up.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }
}

pub async fn run(a: BenchArgs) -> Result<(), Error> {
    match a.cmd {
        BenchCmd::Rewrap { count } => {
            use strongroom_engine::{BlobBinding, CryptoUnit, KeyMaterial, MasterKey};
            use strongroom_model::{InstanceId, KeyId, KeyKind, VersionId};
            let p: Arc<dyn strongroom_engine::CryptoProvider> =
                Arc::new(strongroom_crypto_awslc::AwsLcProvider);
            let e = Error::from;
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            p.fill_random(k.as_mut()).map_err(|_| Error::other("rng"))?;
            let mut old = CryptoUnit::new(Arc::clone(&p)).map_err(e)?;
            old.set_current_master_key(MasterKey::from_bytes(*k));
            let mut unit = CryptoUnit::new(Arc::clone(&p)).map_err(e)?;
            unit.set_current_master_key(MasterKey::from_bytes(*k));
            unit.set_next_master_key(
                MasterKey::random(p.as_ref()).map_err(|_| Error::other("rng"))?,
                true,
            );
            let instance = InstanceId::random();
            let blobs: Vec<(BlobBinding, Vec<u8>)> = (0..count)
                .map(|_| {
                    let b = BlobBinding {
                        instance,
                        key: KeyId::random(),
                        version: VersionId::random(),
                        kind: KeyKind::Root,
                        imported: false,
                    };
                    let blob = old.seal_blob(&b, &KeyMaterial::new(vec![7u8; 32]))?;
                    Ok((b, blob))
                })
                .collect::<Result<_, strongroom_engine::EngineError>>()
                .map_err(e)?;
            let t = Instant::now();
            for (b, blob) in &blobs {
                unit.rewrap_blob(b, blob).map_err(e)?;
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({"count": count, "seconds": secs, "ops_per_sec": f64::from(count) / secs})
            );
            Ok(())
        }
        BenchCmd::Ep11Inproc {
            op,
            threads,
            duration,
        } => {
            let threads = if threads == 0 {
                std::thread::available_parallelism().map_or(2, |n| n.get())
            } else {
                threads
            };
            let v = tokio::task::spawn_blocking(move || grep11::inproc(op, threads, duration))
                .await??;
            println!("{v}");
            Ok(())
        }
        BenchCmd::Grep11 {
            addr,
            token,
            op,
            streams,
            connections,
            timing,
        } => {
            let load = grep11::Load {
                streams,
                connections,
                timing,
            };
            let v = on_one_thread(async move { grep11::grpc(&addr, &token, op, load).await })?;
            println!("{v}");
            Ok(())
        }
        BenchCmd::Kmip {
            addr,
            op,
            ca,
            cert,
            key,
            connections,
            timing,
            max_requests,
        } => {
            let load = kmip::KmipLoad {
                addr,
                ca,
                cert,
                key,
                connections,
                timing,
                max_requests,
            };
            let v = on_one_thread(kmip::run(op, load))?;
            println!("{v}");
            Ok(())
        }
        BenchCmd::Pkcs11 {
            module,
            pin,
            op,
            threads,
            timing,
        } => {
            let v = tokio::task::spawn_blocking(move || {
                pkcs11::load(module, &pin, op, threads, timing)
            })
            .await
            .map_err(|_| Error::other("load generator panicked"))??;
            println!("{v}");
            Ok(())
        }
        BenchCmd::Pkcs11Memory {
            module,
            pin,
            sessions,
            objects,
        } => {
            let v = tokio::task::spawn_blocking(move || {
                pkcs11::memory(module, &pin, sessions, objects)
            })
            .await
            .map_err(|_| Error::other("memory probe panicked"))??;
            println!("{v}");
            Ok(())
        }
        BenchCmd::TrivialServer { addr, addr_file } => {
            let router = axum::Router::new().route(
                "/trivial",
                post(|body: Bytes| async move {
                    let _ = body.len();
                    (
                        [(hyper::header::CONTENT_TYPE, "application/vnd.ibm.kms.key_action+json")],
                        r#"{"ciphertext":"AQ2XsJ2c3ZqOYzM2NmI0LTk2YzMtNDk4ZC1hOGQ0LTE4ZjFkZWI1ZjQ2NmVkZGY2NjYyMWJiNmQ2N2Y=","keyVersion":{"id":"9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01","creationDate":"2026-11-22T11:00:00Z"}}"#,
                    )
                }),
            );
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let local = listener.local_addr().map_err(Error::from)?;
            std::fs::write(&addr_file, local.to_string()).map_err(Error::from)?;
            let (_tx, rx) = tokio::sync::watch::channel(false);
            crate::listen::serve_loop(
                listener,
                "bench",
                None,
                crate::listen::App::Router(router),
                false,
                rx,
            )
            .await;
            Ok(())
        }
        BenchCmd::Load {
            url,
            method,
            path,
            ids_file,
            body,
            headers,
            connections,
            timing,
            max_requests,
        } => {
            let ids: Vec<String> = match ids_file {
                Some(f) => std::fs::read_to_string(&f)
                    .map_err(Error::from)?
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
                None => vec![String::new()],
            };
            // Several comma-separated URLs spread the connections over several nodes.
            let authorities: Vec<String> = url
                .split(',')
                .map(|u| {
                    u.trim()
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        .to_string()
                })
                .collect();
            let method: hyper::Method = method.parse().map_err(|_| Error::other("bad method"))?;
            let headers: Vec<(String, String)> = headers
                .iter()
                .filter_map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                })
                .collect();
            let shared = Arc::new(Shared {
                meter: Meter::default(),
                counter: AtomicU64::new(0),
                max_requests,
            });
            let mut tasks = Vec::new();
            for c in 0..connections {
                let (shared, ids, authority, method, path, body, headers) = (
                    shared.clone(),
                    ids.clone(),
                    authorities[c % authorities.len()].clone(),
                    method.clone(),
                    path.clone(),
                    body.clone(),
                    headers.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    worker(
                        shared,
                        ids,
                        authority,
                        method,
                        path,
                        Bytes::from(body),
                        headers,
                    )
                    .await
                }));
            }
            let secs = shared.meter.window(&timing).await;
            let mut report = shared.meter.report(secs, stats::gather(tasks).await);
            report["connections"] = json!(connections);
            println!("{report}");
            Ok(())
        }
    }
}

/// What the HTTP load generator's connections share.
struct Shared {
    meter: Meter,
    /// Requests sent, warm-up included: picks each request's id, and ends the run at
    /// `max_requests` (so that a run creates exactly that many keys).
    counter: AtomicU64,
    max_requests: Option<u64>,
}

async fn worker(
    shared: Arc<Shared>,
    ids: Vec<String>,
    authority: String,
    method: hyper::Method,
    path: String,
    body: Bytes,
    headers: Vec<(String, String)>,
) -> Vec<u64> {
    let mut lat = Vec::with_capacity(100_000);
    'reconnect: while shared.meter.running() {
        let Ok(stream) = tokio::net::TcpStream::connect(&authority).await else {
            shared.meter.error();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            continue;
        };
        tokio::spawn(conn);
        while shared.meter.running() {
            let n = shared.counter.fetch_add(1, Ordering::Relaxed);
            if let Some(max) = shared.max_requests {
                if n >= max {
                    shared.meter.stop();
                    break 'reconnect;
                }
            }
            let id = &ids[(n as usize) % ids.len()];
            let p = path.replace("{}", id);
            let mut req = hyper::Request::builder()
                .method(method.clone())
                .uri(p)
                .header("host", authority.as_str());
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let Ok(req) = req.body(Full::new(body.clone())) else {
                break 'reconnect;
            };
            if sender.ready().await.is_err() {
                continue 'reconnect;
            }
            let t = Instant::now();
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.into_body().collect().await;
                    if status.is_success() {
                        shared.meter.success(t, &mut lat);
                    } else {
                        shared.meter.error();
                    }
                }
                Err(_) => {
                    shared.meter.error();
                    continue 'reconnect;
                }
            }
        }
    }
    lat
}

/// Runs a load generator on one thread of its own (a current-thread runtime), so that it
/// takes as little as possible of the cores the server shares with it.
fn on_one_thread<T: Send + 'static>(
    load: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::from)?
            .block_on(load)
    })
    .join()
    .map_err(|_| Error::other("load generator panicked"))?
}
