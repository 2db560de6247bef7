//! Which servers a client trusts, and what it says when a server's certificate is refused.
//!
//! By default: the system's trust store (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`),
//! plus the PEM certificates of `--ca-file` / `STRONGROOM_CA_FILE`, the way a workstation
//! comes to trust a node whose certificate comes from a private CA. Verification is turned
//! off only by an explicit `insecure` choice, which callers must not take from the
//! environment. Every client of Strongroom (the CLI, migration, the PKCS#11 library) builds
//! its TLS from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The servers a client accepts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// PEM file of CA certificates trusted in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (test servers only).
    pub insecure: bool,
}

/// Why a trust configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file cannot be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path}: {problem}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Trust {
    /// The rustls client configuration (aws-lc-rs, TLS 1.2 and 1.3) that verifies servers
    /// against the system's roots and the CA file. `None` when `insecure`.
    pub fn rustls_config(&self) -> Result<Option<rustls::ClientConfig>, TrustError> {
        if self.insecure {
            return Ok(None);
        }
        self.verifying_config(None).map(Some)
    }

    /// The verifying configuration of [`Trust::rustls_config`] (whatever `insecure` says),
    /// presenting `identity` to servers that ask for a client certificate (mutual TLS).
    pub fn verifying_config(
        &self,
        identity: Option<&ClientIdentity>,
    ) -> Result<rustls::ClientConfig, TrustError> {
        let mut roots = rustls::RootCertStore::empty();
        // The system store: unreadable entries are skipped (a minimal container may have
        // none at all; the CA file then carries the trust).
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_file {
            add_pem_file(&mut roots, path)?;
        }
        // The hybrid post-quantum group first (its key share is sent at once), the classic
        // ones kept for servers without it.
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        {
            use rustls::crypto::aws_lc_rs::kx_group;
            provider.kx_groups = vec![
                kx_group::X25519MLKEM768,
                kx_group::X25519,
                kx_group::SECP256R1,
                kx_group::SECP384R1,
            ];
        }
        let provider = Arc::new(provider);
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TrustError::Bad {
                path: PathBuf::new(),
                problem: e.to_string(),
            })?
            .with_root_certificates(roots);
        match identity {
            None => Ok(config.with_no_client_auth()),
            Some(id) => {
                let (certs, key) = id.load()?;
                config
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| TrustError::Bad {
                        path: id.key.clone(),
                        problem: format!("does not match its certificate: {e}"),
                    })
            }
        }
    }
}

/// A client certificate and its private key, both PEM files.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

type Loaded = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

impl ClientIdentity {
    fn load(&self) -> Result<Loaded, TrustError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TrustError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let bad = |path: &Path, problem: &str| TrustError::Bad {
            path: path.to_path_buf(),
            problem: problem.into(),
        };
        let pem = read(&self.cert)?;
        let certs = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad(&self.cert, "is not PEM"))?;
        if certs.is_empty() {
            return Err(bad(&self.cert, "holds no PEM certificate"));
        }
        let pem = zeroize::Zeroizing::new(read(&self.key)?);
        let key = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|_| bad(&self.key, "is not PEM"))?
            .ok_or_else(|| bad(&self.key, "holds no PEM private key"))?;
        Ok((certs, key))
    }
}

fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<usize, TrustError> {
    let pem = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| TrustError::Bad {
            path: path.to_path_buf(),
            problem: format!("not PEM: {e}"),
        })?;
        roots.add(cert).map_err(|e| TrustError::Bad {
            path: path.to_path_buf(),
            problem: format!("a certificate cannot be used as a trust anchor: {e}"),
        })?;
        n += 1;
    }
    if n == 0 {
        return Err(TrustError::Bad {
            path: path.to_path_buf(),
            problem: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(n)
}

/// The certificate problem behind a transport error, in words, if a server's certificate
/// was refused: "not signed by a CA this client trusts", "expired", "not valid for this
/// host name".
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        // An io::Error hides what it wraps from `source()`: step into it.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "the server's certificate is not signed by a CA this workstation trusts".into()
            }
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not valid for the host name in the URL".into()
            }
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature | C::BadEncoding => {
                "the server's certificate is malformed or badly signed".into()
            }
            other => format!("the server's certificate was refused: {other:?}"),
        },
        other => format!("TLS failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("sr-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, b"not a certificate").unwrap();
        let e = Trust {
            ca_file: Some(f.clone()),
            insecure: false,
        }
        .rustls_config()
        .unwrap_err();
        assert!(
            e.to_string().contains("empty.pem") && e.to_string().contains("no PEM certificate"),
            "{e}"
        );
        let missing = Trust {
            ca_file: Some(dir.join("missing.pem")),
            insecure: false,
        }
        .rustls_config()
        .unwrap_err();
        assert!(matches!(missing, TrustError::Read { .. }));
        assert!(Trust {
            ca_file: None,
            insecure: true
        }
        .rustls_config()
        .unwrap()
        .is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn certificate_problems_are_named_through_an_io_error() {
        // As tokio-rustls and hyper-util report it: an io::Error inside an io::Error.
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let io = std::io::Error::other(io);
        let got = certificate_problem(&io).unwrap();
        assert!(got.contains("not signed by a CA"), "{got}");
        let plain = std::io::Error::other("connection refused");
        assert!(certificate_problem(&plain).is_none());
    }
}
