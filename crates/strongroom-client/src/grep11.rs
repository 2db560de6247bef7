//! The GREP11 client: the protobuf messages and the `grep11.Crypto` stub, and the error
//! detail (`grep11.Grep11Error`) a refusal carries.

use prost::Message;

/// The GREP11 messages and the client stub.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("grep11");
}

/// Strongroom's keystore for PKCS#11 token objects.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod keystore {
    tonic::include_proto!("strongroom.keystore");
}

pub mod unary;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod rpc {
    tonic::include_proto!("google.rpc");
}

/// The `grep11.Grep11Error` a status carries, if it carries exactly one.
pub fn grep11_error_of(status: &tonic::Status) -> Option<pb::Grep11Error> {
    let rich = rpc::Status::decode(status.details()).ok()?;
    match rich.details.as_slice() {
        [any] if any.type_url.ends_with("/grep11.Grep11Error") => {
            pb::Grep11Error::decode(any.value.as_slice()).ok()
        }
        _ => None,
    }
}

/// How a GREP11 connection is secured.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Plain HTTP/2 (a loopback dev listener).
    Plain,
    /// TLS, verified against `trust`, with a client certificate for mutual TLS.
    Tls {
        /// The servers trusted.
        trust: crate::Trust,
        /// The client certificate, when the server asks for one.
        identity: Option<crate::ClientIdentity>,
    },
}

/// Why a GREP11 channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TLS configuration is unusable (a CA or identity file).
    #[error(transparent)]
    Trust(#[from] crate::TrustError),
    /// The endpoint is not `host:port`, or the host is no server name.
    #[error("bad GREP11 endpoint {0}")]
    Endpoint(String),
    /// The server could not be reached, or the handshake failed.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's words, with the certificate problem when there is one.
        detail: String,
    },
}

/// Timeouts of a GREP11 channel.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connection and the TLS handshake together.
    pub connect: std::time::Duration,
    /// For each call.
    pub call: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: std::time::Duration::from_secs(5),
            call: std::time::Duration::from_secs(30),
        }
    }
}

/// A byte stream to a GREP11 server: TCP, or TLS over TCP.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// How to reach one GREP11 endpoint: its `host:port`, and the TLS settings when it speaks
/// TLS. Every Strongroom client dials through it, so all speak TLS the same way.
#[derive(Clone)]
pub(crate) struct Dial {
    /// `host:port`, the host bracketed when it is an IPv6 address.
    pub(crate) endpoint: String,
    tls: Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Dial {
    pub(crate) fn new(host: &str, port: u16, transport: &Transport) -> Result<Dial, ConnectError> {
        let bracketed = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let endpoint = format!("{bracketed}:{port}");
        let tls = match transport {
            Transport::Plain => None,
            Transport::Tls { trust, identity } => {
                let mut config = trust.verifying_config(identity.as_ref())?;
                config.alpn_protocols = vec![b"h2".to_vec()];
                let name = rustls::pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|_| ConnectError::Endpoint(endpoint.clone()))?;
                Some((std::sync::Arc::new(config), name))
            }
        };
        Ok(Dial { endpoint, tls })
    }

    /// Whether the connection speaks TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A new connection, with Nagle off and small frames coalesced (see `coalesce`).
    pub(crate) async fn connect(&self) -> std::io::Result<crate::coalesce::Coalesce<Box<dyn Io>>> {
        let tcp = tokio::net::TcpStream::connect(self.endpoint.as_str()).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((config, name)) => Box::new(
                tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await?,
            ),
        };
        Ok(crate::coalesce::Coalesce::new(stream, true))
    }

    /// The error of a failed connection, with the certificate problem in words when there
    /// is one.
    pub(crate) fn unreachable(&self, e: &(dyn std::error::Error + 'static)) -> ConnectError {
        let mut detail = e.to_string();
        let mut cur = e.source();
        while let Some(s) = cur {
            detail = format!("{detail}: {s}");
            cur = s.source();
        }
        if let Some(p) = crate::certificate_problem(e) {
            detail = p;
        }
        ConnectError::Unreachable {
            endpoint: self.endpoint.clone(),
            detail,
        }
    }
}

/// Opens a channel to a GREP11 server at `host`:`port`. TLS goes through the same rustls
/// configuration as every other Strongroom client: the hybrid post-quantum group
/// X25519MLKEM768 is offered first, the classic groups after it.
pub async fn channel(
    host: &str,
    port: u16,
    transport: &Transport,
    timeouts: Timeouts,
) -> Result<tonic::transport::Channel, ConnectError> {
    let dial = Dial::new(host, port, transport)?;
    let endpoint = &dial.endpoint;
    // The connector below does TLS itself, so tonic is given a plain URI; with TLS the
    // requests still name the https origin.
    let mut e = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .map_err(|_| ConnectError::Endpoint(endpoint.clone()))?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.call)
        .tcp_nodelay(true);
    if dial.is_tls() {
        e = e.origin(
            format!("https://{endpoint}")
                .parse()
                .map_err(|_| ConnectError::Endpoint(endpoint.clone()))?,
        );
    }
    let d = dial.clone();
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let d = d.clone();
        async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(d.connect().await?)) }
    });
    e.connect_with_connector(connector)
        .await
        .map_err(|err| dial.unreachable(&err))
}
