//! The server side of TLS for every listener: certificates and keys from PEM files, the
//! key exchange groups every listener offers (hybrid post-quantum first), the REST/GREP11
//! acceptor (the KMIP listener builds its own, with its client check, from the same
//! provider), and the count of handshakes by negotiated group that `/metrics` shows.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads a PEM certificate chain and its private key.
pub(crate) fn load_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(Error::context(format!(
            "cannot read TLS certificate {}",
            cert.display()
        )))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::context(format!(
        "TLS certificate {}",
        cert.display()
    )))?;
    if certs.is_empty() {
        return Err(Error::other(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(Error::context(format!(
            "cannot read TLS key {}",
            key.display()
        )))?,
    ))
    .map_err(Error::context(format!("TLS key {}", key.display())))?
    .ok_or_else(|| Error::other(format!("{} holds no PEM private key", key.display())))?;
    Ok((certs, key))
}

/// The key exchange groups of every TLS listener (`serve --tls-groups`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsGroups {
    /// The hybrid post-quantum groups first (X25519MLKEM768, SecP256r1MLKEM768), then the
    /// classic ones (X25519, P-256, P-384) for clients that do not offer them.
    #[default]
    Hybrid,
    /// Post-quantum groups only (the two hybrids, then ML-KEM-1024 and ML-KEM-768 alone): a
    /// client without one cannot connect.
    PqOnly,
}

/// aws-lc-rs's rustls provider with the groups `groups` names, in order of preference.
pub(crate) fn provider(groups: TlsGroups) -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::aws_lc_rs::kx_group;
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.kx_groups = match groups {
        TlsGroups::Hybrid => vec![
            kx_group::X25519MLKEM768,
            kx_group::SECP256R1MLKEM768,
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ],
        TlsGroups::PqOnly => vec![
            kx_group::X25519MLKEM768,
            kx_group::SECP256R1MLKEM768,
            kx_group::MLKEM1024,
            kx_group::MLKEM768,
        ],
    };
    Arc::new(p)
}

type HandshakeHook = Arc<dyn Fn(&str, &str) + Send + Sync>;
static ON_HANDSHAKE: std::sync::OnceLock<HandshakeHook> = std::sync::OnceLock::new();

/// Sends every listener's completed handshakes (listener, negotiated group) to `hook`: the
/// node's metrics. Set once, at start-up.
pub(crate) fn count_handshakes(hook: HandshakeHook) {
    let _ = ON_HANDSHAKE.set(hook);
}

/// Counts a completed handshake of `listener`.
pub(crate) fn handshake(listener: &str, conn: &rustls::CommonState) {
    if let (Some(hook), Some(group)) = (ON_HANDSHAKE.get(), conn.negotiated_key_exchange_group()) {
        hook(listener, &format!("{:?}", group.name()));
    }
}

pub(crate) fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    groups: TlsGroups,
) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let (certs, key) = load_pem(cert, key)?;
    let provider = provider(groups);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::context("TLS"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut std::io::BufReader::new(
                std::fs::File::open(ca).map_err(Error::context(format!(
                    "cannot read client CA {}",
                    ca.display()
                )))?,
            )) {
                let c = c.map_err(Error::context(format!("client CA {}", ca.display())))?;
                roots
                    .add(c)
                    .map_err(Error::context(format!("client CA {}", ca.display())))?;
            }
            if roots.is_empty() {
                return Err(Error::other(format!(
                    "{} holds no PEM certificate",
                    ca.display()
                )));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(Error::context(format!("client CA {}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(Error::context("TLS certificate and key do not match"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
