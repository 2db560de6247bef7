//! The KMIP listener: TLS 1.2+ with a client certificate required, admitted at the
//! handshake only if it is registered to an adapter; then request/response messages,
//! one at a time per connection, with bounds on connections, message size, idle time
//! and slow senders.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use strongroom_service::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::message::handle_message;
use crate::ttlv::{message_len, Limits};

/// Called with each completed TLS handshake.
pub type HandshakeHook = Arc<dyn Fn(&rustls::CommonState) + Send + Sync>;

/// Listener settings.
pub struct KmipConfig {
    /// The server's certificate chain.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// Message bounds.
    pub limits: Limits,
    /// Most connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The TLS handshake, and each message once its first byte arrived, must complete
    /// within this time (slow senders are cut off).
    pub io_timeout: Duration,
    /// Offer only hybrid post-quantum key exchange (X25519MLKEM768), when `tls_provider`
    /// is not given.
    pub pq_only: bool,
    /// The rustls provider (its key exchange groups), when the server sets one for all its
    /// listeners.
    pub tls_provider: Option<Arc<CryptoProvider>>,
    /// Called with each completed handshake (the server counts negotiated groups).
    pub on_handshake: Option<HandshakeHook>,
    /// The network this listener serves (allowedNetwork: private-only instances accept
    /// connections from a private listener only).
    pub network: strongroom_service::Network,
}

impl KmipConfig {
    /// Defaults: 1 MiB messages, 1,000 connections, 5 minutes idle, 10 s per message.
    pub fn new(cert_chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        KmipConfig {
            cert_chain,
            key,
            limits: Limits::default(),
            max_connections: 1000,
            idle_timeout: Duration::from_secs(300),
            io_timeout: Duration::from_secs(10),
            pq_only: false,
            tls_provider: None,
            on_handshake: None,
            network: strongroom_service::Network::Public,
        }
    }
}

/// The fingerprints of registered client certificates, reloaded from the service.
#[derive(Debug, Default)]
struct Registered(RwLock<HashSet<String>>);

#[derive(Debug)]
struct RegisteredClients {
    registered: Arc<Registered>,
    service: Arc<Service>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for RegisteredClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Key Protect's model: a client is trusted because its certificate was
        // registered to an adapter, not because of who issued it. The handshake's
        // signature (checked below) proves the client holds the key.
        let fp = strongroom_service::kmip::certificate_fingerprint(&self.service, end_entity);
        let known = self
            .registered
            .0
            .read()
            .map(|set| set.contains(&fp))
            .unwrap_or(false);
        if known {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn reload(service: &Service, registered: &Registered) {
    match service.kmip_fingerprints().await {
        Ok(list) => {
            if let Ok(mut set) = registered.0.write() {
                *set = list.into_iter().collect();
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot reload KMIP client certificates"),
    }
}

/// Serves KMIP on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    config: KmipConfig,
) -> std::io::Result<()> {
    let provider = match &config.tls_provider {
        Some(p) => Arc::clone(p),
        None => {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            if config.pq_only {
                provider
                    .kx_groups
                    .retain(|g| g.name() == rustls::NamedGroup::X25519MLKEM768);
            }
            Arc::new(provider)
        }
    };
    let registered = Arc::new(Registered::default());
    reload(&service, &registered).await;
    {
        let (service, registered) = (Arc::clone(&service), Arc::clone(&registered));
        let changed = service.kmip_certificates_changed();
        tokio::spawn(async move {
            loop {
                // A certificate added on this node is admitted at once; one added on
                // another node of the cluster within two seconds.
                tokio::select! {
                    _ = changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                reload(&service, &registered).await;
            }
        });
    }
    let verifier = Arc::new(RegisteredClients {
        registered,
        service: Arc::clone(&service),
        provider: Arc::clone(&provider),
    });
    let tls = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(std::io::Error::other)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(config.cert_chain, config.key)
        .map_err(std::io::Error::other)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let on_handshake = config.on_handshake;
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let settings = Settings {
        limits: config.limits,
        idle: config.idle_timeout,
        io: config.io_timeout,
        network: config.network,
    };
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "KMIP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "KMIP connection refused: too many connections");
            drop(tcp);
            continue;
        };
        let (acceptor, service) = (acceptor.clone(), Arc::clone(&service));
        let on_handshake = on_handshake.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection(tcp, peer, acceptor, service, settings, on_handshake).await {
                tracing::debug!(%peer, error = %e, "KMIP connection ended");
            }
        });
    }
}

/// What every connection of a listener shares.
#[derive(Debug, Clone, Copy)]
struct Settings {
    limits: Limits,
    idle: Duration,
    io: Duration,
    network: strongroom_service::Network,
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    service: Arc<Service>,
    settings: Settings,
    on_handshake: Option<HandshakeHook>,
) -> std::io::Result<()> {
    let Settings {
        limits,
        idle,
        io,
        network,
    } = settings;
    let _ = tcp.set_nodelay(true);
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
    let mut tls = tokio::time::timeout(io, acceptor.accept(tcp))
        .await
        .map_err(|_| timed_out())??;
    if let Some(hook) = &on_handshake {
        hook(tls.get_ref().1);
    }
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| std::io::Error::other("no client certificate"))?;
    let fp = strongroom_service::kmip::certificate_fingerprint(&service, &cert);
    let session = match service
        .kmip_connect(
            &fp,
            Some(peer.ip()),
            network,
            uuid::Uuid::new_v4().to_string(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(%peer, error = %e, "KMIP connection refused");
            let _ = tls.shutdown().await;
            return Ok(());
        }
    };
    loop {
        let mut header = [0u8; 8];
        match tokio::time::timeout(idle, tls.read_exact(&mut header[..1])).await {
            Err(_) => return Ok(()), // idle
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => {
                r?;
            }
        }
        let rest = async {
            tls.read_exact(&mut header[1..]).await?;
            let total = match message_len(&header, &limits) {
                Ok(n) => n,
                Err(e) => return Ok::<_, std::io::Error>(Err(e)),
            };
            let mut msg = vec![0u8; total];
            msg[..8].copy_from_slice(&header);
            tls.read_exact(&mut msg[8..]).await?;
            Ok(Ok(msg))
        };
        let msg = tokio::time::timeout(io, rest)
            .await
            .map_err(|_| timed_out())??;
        match msg {
            Ok(bytes) => {
                let answer = handle_message(&service, &session, &bytes, &limits).await;
                tls.write_all(&answer).await?;
                tls.flush().await?;
            }
            Err(e) => {
                // The frame cannot be read: answer once, then close (the stream has lost
                // its framing).
                let answer = crate::message::invalid_message_response(&e);
                tls.write_all(&answer).await?;
                let _ = tls.shutdown().await;
                return Ok(());
            }
        }
    }
}
