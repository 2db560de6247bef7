//! The KMIP load generator of `scripts/bench`: Get of one AES key, or Create of AES-256
//! keys, over N mutual-TLS connections, one request in flight per connection (as KMIP
//! clients do). Every answer is decoded and must carry Result Status Success. The same
//! generator drives PyKMIP's own server in the same run.

use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use strongroom_kmip::ttlv::{decode, encode, Limits, Tag, Ttlv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::stats::{gather, Meter};
use crate::error::Error;

/// What each request does.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KmipOp {
    /// Get one AES-256 key (created and activated first).
    Get,
    /// Create an AES-256 key (a durable write).
    Create,
    /// Open the connections, ask each for DiscoverVersions, hold them for the duration
    /// (the server's memory is read meanwhile), then close.
    Hold,
}

/// Where and how hard.
pub struct KmipLoad {
    pub addr: String,
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub connections: usize,
    pub timing: super::Timing,
    /// Stop after this many successful requests (e.g. to store N objects).
    pub max_requests: Option<u64>,
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

fn request(op: u32, payload: Vec<Ttlv>) -> Vec<u8> {
    let msg = Ttlv::structure(
        Tag::REQUEST_MESSAGE,
        vec![
            Ttlv::structure(
                Tag::REQUEST_HEADER,
                vec![
                    Ttlv::structure(
                        Tag::PROTOCOL_VERSION,
                        vec![
                            Ttlv::integer(Tag::PROTOCOL_VERSION_MAJOR, 1),
                            Ttlv::integer(Tag::PROTOCOL_VERSION_MINOR, 2),
                        ],
                    ),
                    Ttlv::integer(Tag::BATCH_COUNT, 1),
                ],
            ),
            Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![
                    Ttlv::enumeration(Tag::OPERATION, op),
                    Ttlv::structure(Tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    );
    let mut out = Vec::new();
    encode(&msg, &mut out);
    out
}

fn create_request() -> Vec<u8> {
    request(
        0x01,
        vec![
            Ttlv::enumeration(Tag::OBJECT_TYPE, 2),
            Ttlv::structure(
                Tag::TEMPLATE_ATTRIBUTE,
                vec![
                    Ttlv::attribute(
                        "Cryptographic Algorithm",
                        Ttlv::enumeration(Tag::ATTRIBUTE_VALUE, 3),
                    ),
                    Ttlv::attribute(
                        "Cryptographic Length",
                        Ttlv::integer(Tag::ATTRIBUTE_VALUE, 256),
                    ),
                    Ttlv::attribute(
                        "Cryptographic Usage Mask",
                        Ttlv::integer(Tag::ATTRIBUTE_VALUE, 0x0C),
                    ),
                ],
            ),
        ],
    )
}

/// Sends one message and returns the payload of its one batch item, or why it failed.
async fn exchange(tls: &mut Tls, msg: &[u8], buf: &mut Vec<u8>) -> Result<Ttlv, Error> {
    tls.write_all(msg).await?;
    let mut header = [0u8; 8];
    tls.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    buf.clear();
    buf.extend_from_slice(&header);
    buf.resize(8 + len, 0);
    tls.read_exact(&mut buf[8..]).await?;
    let resp = decode(buf, &Limits::default()).map_err(Error::from)?;
    let item = resp
        .child(Tag::BATCH_ITEM)
        .ok_or_else(|| Error::other("a response without a batch item"))?;
    if item.child(Tag::RESULT_STATUS).and_then(Ttlv::as_enum) != Some(0) {
        return Err(Error::other(format!(
            "failed: {:?}",
            item.child(Tag::RESULT_MESSAGE).and_then(Ttlv::as_text)
        )));
    }
    Ok(item
        .child(Tag::RESPONSE_PAYLOAD)
        .cloned()
        .unwrap_or_else(|| Ttlv::structure(Tag::RESPONSE_PAYLOAD, vec![])))
}

pub async fn run(op: KmipOp, load: KmipLoad) -> Result<serde_json::Value, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let ca =
        std::fs::File::open(&load.ca).map_err(Error::context(format!("{}", load.ca.display())))?;
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(ca)) {
        roots
            .add(c.map_err(Error::context(format!("{}", load.ca.display())))?)
            .map_err(Error::from)?;
    }
    let (chain, key) = crate::tls::load_pem(&load.cert, &load.key)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(Error::from)?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(Error::from)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut conns = Vec::new();
    for _ in 0..load.connections.max(1) {
        let tcp = tokio::net::TcpStream::connect(&load.addr)
            .await
            .map_err(Error::context(format!("cannot connect to {}", load.addr)))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("localhost").map_err(Error::from)?;
        conns.push(
            connector
                .connect(name, tcp)
                .await
                .map_err(Error::context(format!("TLS with {}", load.addr)))?,
        );
    }
    let msg = match op {
        KmipOp::Hold => {
            let mut buf = Vec::new();
            let discover = request(0x1E, vec![]);
            for tls in &mut conns {
                exchange(tls, &discover, &mut buf).await?;
            }
            println!("{}", serde_json::json!({"held": conns.len()}));
            tokio::time::sleep(load.timing.measured()).await;
            return Ok(serde_json::json!({"held": conns.len()}));
        }
        KmipOp::Create => create_request(),
        KmipOp::Get => {
            let mut buf = Vec::new();
            let created = exchange(&mut conns[0], &create_request(), &mut buf).await?;
            let uid = created
                .child(Tag::UNIQUE_IDENTIFIER)
                .and_then(Ttlv::as_text)
                .ok_or_else(|| Error::other("Create answered no Unique Identifier"))?
                .to_string();
            exchange(
                &mut conns[0],
                &request(0x12, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid.clone())]),
                &mut buf,
            )
            .await?;
            request(0x0A, vec![Ttlv::text(Tag::UNIQUE_IDENTIFIER, uid)])
        }
    };
    let msg = Arc::new(msg);
    let meter = Arc::new(Meter::with_max(load.max_requests));
    let mut tasks = Vec::new();
    for mut tls in conns {
        let (msg, meter) = (Arc::clone(&msg), Arc::clone(&meter));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut buf = Vec::with_capacity(1024);
            while meter.running() {
                let t0 = Instant::now();
                match exchange(&mut tls, &msg, &mut buf).await {
                    Ok(_) => meter.success(t0, &mut lat),
                    Err(_) => {
                        meter.error();
                        break;
                    }
                }
            }
            lat
        }));
    }
    let secs = meter.window(&load.timing).await;
    Ok(meter.report(secs, gather(tasks).await))
}
