//! The KMIP listener of `serve`: binding it, its TLS certificate, starting it, and in
//! development mode a private CA, a server certificate, and a client certificate registered
//! to the dev instance's `dev` adapter, so that a KMIP client can connect with what
//! dev.json names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_model::KeyKind;
use strongroom_service::kmip::{NewKmipAdapter, KMIP_PROFILE_NATIVE};
use strongroom_service::{Ctx, ErrorKind, InstanceInfo, Principal, Service};

use crate::error::Error;
use crate::node::write_private;
use crate::serve::{Config, KmipListen};

/// Binds the KMIP listener: an explicit address must bind; the default port is skipped
/// with a warning when taken.
pub async fn bind(listen: KmipListen) -> Result<Option<tokio::net::TcpListener>, Error> {
    Ok(match listen {
        KmipListen::Off => None,
        KmipListen::At(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(Error::context(format!("cannot listen on {a} (KMIP)")))?,
        ),
        KmipListen::Default(a) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(addr = %a, error = %e, "KMIP listener not started (pass --kmip-addr to choose another address, or --kmip-addr off)");
                None
            }
        },
    })
}

/// Starts serving KMIP on `listener` with the certificate in `cert` and `key`.
pub fn start(
    listener: tokio::net::TcpListener,
    svc: &Arc<Service>,
    cert: &Path,
    key: &Path,
    cfg: &Config,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let (chain, key) = crate::tls::load_pem(cert, key)?;
    let mut config = strongroom_kmip::KmipConfig::new(chain, key);
    config.max_connections = cfg.kmip_max_connections;
    config.idle_timeout = cfg.kmip_idle_timeout;
    config.io_timeout = cfg.kmip_io_timeout;
    config.network = cfg.kmip_network;
    config.tls_provider = Some(crate::tls::provider(cfg.tls_groups));
    config.on_handshake = Some(std::sync::Arc::new(|conn: &rustls::CommonState| {
        crate::tls::handshake("kmip", conn)
    }));
    tracing::info!(addr = ?listener.local_addr().ok(), "KMIP is serving (mutual TLS)");
    let svc = Arc::clone(svc);
    Ok(tokio::spawn(async move {
        if let Err(e) = strongroom_kmip::serve(listener, svc, config).await {
            tracing::error!(error = %e, "KMIP listener stopped");
        }
    }))
}

/// The dev KMIP files under `<data-dir>/kmip/`.
pub struct DevKmipFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

const DEV_ROOT_ALIAS: &str = "kmip-dev-root";
const DEV_ADAPTER: &str = "dev";
const DEV_CERT: &str = "dev-client";

impl DevKmipFiles {
    fn at(dir: &Path) -> DevKmipFiles {
        DevKmipFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }

    /// Reuses the files in `dir`, or makes a new CA and both certificates (the keys are
    /// readable by the owner only).
    pub fn load_or_create(dir: &Path) -> Result<DevKmipFiles, Error> {
        let f = DevKmipFiles::at(dir);
        let all = [
            &f.ca,
            &f.server_cert,
            &f.server_key,
            &f.client_cert,
            &f.client_key,
        ];
        if all.iter().all(|p| p.exists()) {
            return Ok(f);
        }
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let e = |what: &str, err: rcgen::Error| Error::context(format!("dev KMIP {what}"))(err);
        crate::node::create_private_dir(dir)
            .map_err(Error::context(format!("cannot create {}", dir.display())))?;
        let ca_key = KeyPair::generate().map_err(|x| e("CA key", x))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|x| e("CA", x))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Strongroom dev KMIP CA");
        let ca = ca_params.self_signed(&ca_key).map_err(|x| e("CA", x))?;
        let server_key = KeyPair::generate().map_err(|x| e("server key", x))?;
        let mut server =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(|x| e("server certificate", x))?;
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server
            .signed_by(&server_key, &ca, &ca_key)
            .map_err(|x| e("server certificate", x))?;
        let client_key = KeyPair::generate().map_err(|x| e("client key", x))?;
        let mut client =
            CertificateParams::new(Vec::<String>::new()).map_err(|x| e("client", x))?;
        client
            .distinguished_name
            .push(DnType::CommonName, "strongroom-dev-kmip-client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client
            .signed_by(&client_key, &ca, &ca_key)
            .map_err(|x| e("client certificate", x))?;
        let write = |p: &Path, data: String| {
            write_private(p, data.as_bytes())
                .map_err(Error::context(format!("cannot write {}", p.display())))
        };
        write(&f.ca, ca.pem())?;
        write(&f.server_cert, server.pem())?;
        write(&f.server_key, server_key.serialize_pem())?;
        write(&f.client_cert, client.pem())?;
        write(&f.client_key, client_key.serialize_pem())?;
        Ok(f)
    }
}

/// Makes sure the dev instance has a root key, an adapter `dev` bound to it, and the dev
/// client certificate registered to the adapter; returns the adapter id.
pub async fn dev_adapter(
    svc: &Arc<Service>,
    inst: &InstanceInfo,
    files: &DevKmipFiles,
) -> Result<uuid::Uuid, Error> {
    let ctx = Ctx {
        principal: Principal::instance_wide("dev", inst.id, Service::dev_roles()),
        instance: inst.id,
        correlation_id: uuid::Uuid::new_v4().to_string(),
    };
    let adapter = match svc.get_kmip_adapter(&ctx, DEV_ADAPTER).await {
        Ok(a) => a,
        Err(e) if e.kind == ErrorKind::KmipAdapterNotFound => {
            let created = svc
                .create_key(
                    &ctx,
                    strongroom_service::CreateKey {
                        description: Some("root key of the dev KMIP adapter".into()),
                        aliases: vec![DEV_ROOT_ALIAS.into()],
                        ..strongroom_service::CreateKey::generated(
                            "KMIP dev root key",
                            KeyKind::Root,
                        )
                    },
                )
                .await;
            match created {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::AliasTaken => {}
                Err(e) => return Err(Error::other(format!("dev KMIP root key: {e}"))),
            }
            svc.create_kmip_adapter(
                &ctx,
                NewKmipAdapter {
                    name: Some(DEV_ADAPTER.into()),
                    description: Some("development KMIP adapter".into()),
                    profile: KMIP_PROFILE_NATIVE.into(),
                    crk_id: Some(DEV_ROOT_ALIAS.into()),
                    allow_expiring_key: false,
                },
            )
            .await
            .map_err(Error::context("dev KMIP adapter"))?
        }
        Err(e) => return Err(Error::other(format!("dev KMIP adapter: {e}"))),
    };
    let registered = svc
        .list_kmip_certificates(&ctx, DEV_ADAPTER)
        .await
        .map_err(Error::context("dev KMIP certificates"))?;
    if !registered.iter().any(|c| c.name == DEV_CERT) {
        let pem = std::fs::read_to_string(&files.client_cert).map_err(Error::context(format!(
            "cannot read {}",
            files.client_cert.display()
        )))?;
        svc.add_kmip_certificate(&ctx, DEV_ADAPTER, Some(DEV_CERT.into()), &pem)
            .await
            .map_err(Error::context("dev KMIP client certificate"))?;
    }
    Ok(adapter.id)
}
