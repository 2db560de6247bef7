//! Development mode's start-up: the dev instance, its token, the KMIP dev adapter, and
//! `<data-dir>/dev.json` (the contract tools and tests rely on: keep its field names).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use strongroom_service::{Principal, Service};

use crate::error::Error;
use crate::node::{write_private, NodeFiles};
use crate::serve::Config;

/// Where the dev node listens, as dev.json tells clients.
pub(crate) struct DevEndpoints<'a> {
    pub rest_url: &'a str,
    pub admin_url: Option<&'a str>,
    pub private_rest_url: Option<String>,
    pub private_grpc_addr: Option<SocketAddr>,
    pub grpc_addr: Option<SocketAddr>,
}

pub(crate) async fn dev_bootstrap(
    svc: &Arc<Service>,
    cfg: &Config,
    node: &NodeFiles,
    endpoints: DevEndpoints<'_>,
    kmip: Option<(&crate::kmip_serve::DevKmipFiles, SocketAddr)>,
) -> Result<(), Error> {
    let DevEndpoints {
        rest_url,
        admin_url,
        private_rest_url,
        private_grpc_addr,
        grpc_addr,
    } = endpoints;
    let inst = svc
        .ensure_dev_instance("dev")
        .await
        .map_err(Error::context("dev instance"))?;
    let principal = Principal::instance_wide("dev", inst.id, Service::dev_roles());
    let ttl = 7 * 86_400;
    let token = svc
        .token_for(&principal, ttl)
        .map_err(Error::context("dev token"))?;
    let mut dev = serde_json::json!({
        "instance_id": inst.id.to_string(),
        "token": token.access_token,
        "rest_url": rest_url,
        "console_url": format!("{rest_url}/ui/"),
        "admin_url": admin_url,
        "private_rest_url": private_rest_url,
        "private_grpc_addr": private_grpc_addr.map(|a| a.to_string()),
        "grpc_addr": grpc_addr.map(|a| a.to_string()),
        "admin_token": node.admin_token.as_str(),
    });
    if let Some((files, addr)) = kmip {
        let adapter = crate::kmip_serve::dev_adapter(svc, &inst, files).await?;
        let path = |p: &Path| p.display().to_string();
        dev["kmip_addr"] = addr.to_string().into();
        dev["kmip_ca"] = path(&files.ca).into();
        dev["kmip_client_cert"] = path(&files.client_cert).into();
        dev["kmip_client_key"] = path(&files.client_key).into();
        dev["kmip_adapter"] = adapter.to_string().into();
    }
    if let Some(grpc) = grpc_addr {
        let (config, pin) =
            pkcs11_dev(svc, node, &inst, rest_url, grpc, &cfg.data_dir, &cfg.tls).await?;
        dev["pkcs11_config"] = config.display().to_string().into();
        dev["pkcs11_pin"] = pin.into();
    }
    let path = cfg.data_dir.join("dev.json");
    write_private(
        &path,
        serde_json::to_string_pretty(&dev)
            .map_err(Error::from)?
            .as_bytes(),
    )
    .map_err(Error::context(format!("cannot write {}", path.display())))?;
    eprintln!(
        "\n==================== STRONGROOM DEVELOPMENT MODE ====================\n\
         !! The dev instance's crypto unit holds a RANDOM master key kept in\n\
         !! {units}. Plain HTTP, no ceremony: never use this for real keys.\n\
         REST API     {rest_url}\n\
         Console      {rest_url}/ui/   (log in with the token below)\n\
         Admin API    {admin}   (/admin/v1, /metrics; admin token in admin.token)\n\
         Instance     {inst}   (Bluemix-Instance header)\n\
         Token        {tok}\n\
         (Manager role, valid 7 days; send as 'Authorization: Bearer <token>')\n\
         Written to   {path}\n\
         Try:         strongroom key create my-first-key\n\
         =====================================================================\n",
        units = cfg.data_dir.join("units").display(),
        admin = admin_url.unwrap_or("off"),
        inst = inst.id,
        tok = token.access_token,
        path = path.display(),
    );
    if let Some((files, addr)) = kmip {
        eprintln!(
            "KMIP         {addr}  (mutual TLS: adapter 'dev', client certificate {}, CA {})\n",
            files.client_cert.display(),
            files.ca.display()
        );
    }
    Ok(())
}

/// The PKCS#11 library's dev configuration: `<data-dir>/grep11client.yaml` in IBM's
/// format, pointing at the dev GREP11 listener, and a dev API key (Manager and Writer)
/// that serves as the PIN of the user and the security officer. The keystores' ids are
/// derived from the instance id, so they stay the same across restarts.
async fn pkcs11_dev(
    svc: &Arc<Service>,
    node: &NodeFiles,
    inst: &strongroom_service::InstanceInfo,
    rest_url: &str,
    grpc: SocketAddr,
    data_dir: &Path,
    cfg_tls: &Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<(std::path::PathBuf, String), Error> {
    use strongroom_model::{Role, Roles};
    use strongroom_service::action::Action;
    // The dev key is made once per data directory and kept beside dev.json (mode 0600):
    // restarts reuse it, so applications configured with it keep working.
    let pin_file = data_dir.join("pkcs11-dev-pin");
    let apikey = match std::fs::read_to_string(&pin_file) {
        Ok(pin) if !pin.trim().is_empty() => pin.trim().to_string(),
        _ => {
            let admin = svc
                .authenticate_admin(
                    Some(node.admin_token.as_str()),
                    "dev-pkcs11".into(),
                    Action::AdminApiKeysCreate,
                )
                .await
                .map_err(Error::context("dev PKCS#11 key"))?;
            let key = svc
                .create_api_key(
                    &admin,
                    inst.id,
                    "pkcs11-dev",
                    strongroom_service::Access::Roles(strongroom_service::Grant {
                        roles: Roles::of(&[Role::Manager, Role::Writer, Role::Reader]),
                        key_rings: None,
                    }),
                )
                .await
                .map_err(Error::context("dev PKCS#11 key"))?;
            write_private(&pin_file, key.api_key.as_bytes()).map_err(Error::context(format!(
                "cannot write {}",
                pin_file.display()
            )))?;
            key.api_key
        }
    };
    let space = |what: &str| uuid::Uuid::new_v5(&inst.id.0, what.as_bytes());
    // With --tls-cert, the listeners speak TLS: the library trusts that certificate (a
    // self-signed development certificate is its own CA).
    let tls = match &cfg_tls {
        Some((cert, _)) => format!(
            "\x20     tls:\n\x20       enabled: true\n\x20       cacert: \"{}\"\n",
            cert.display()
        ),
        None => "\x20     tls:\n\x20       enabled: false\n".to_string(),
    };
    let yaml = format!(
        "# grep11client.yaml for Strongroom's dev server (IBM's format; see docs/pkcs11.md).\n\
         # Use with: EP11CLIENT_CFG=<this file>, and the PIN in dev.json (pkcs11_pin).\n\
         iamcredentialtemplate: &defaultiamcredential\n\
         \x20 enabled: true\n\
         \x20 endpoint: \"{rest_url}\"\n\
         \x20 apikey:\n\
         \x20 instance: \"{instance}\"\n\
         \n\
         tokens:\n\
         \x20 0:\n\
         \x20   grep11connection:\n\
         \x20     address: \"{host}\"\n\
         \x20     port: \"{port}\"\n\
         {tls}\
         \x20   storage:\n\
         \x20     remotestore:\n\
         \x20       enabled: true\n\
         \x20   users:\n\
         \x20     0:\n\
         \x20       name: \"Security officer\"\n\
         \x20       iamauth: *defaultiamcredential\n\
         \x20     1:\n\
         \x20       name: \"User\"\n\
         \x20       tokenspaceID: \"{private}\"\n\
         \x20       iamauth: *defaultiamcredential\n\
         \x20     2:\n\
         \x20       name: \"Anonymous\"\n\
         \x20       tokenspaceID: \"{public}\"\n\
         \x20       iamauth:\n\
         \x20         <<: *defaultiamcredential\n\
         \x20         apikey: \"{apikey}\"\n\
         logging:\n\
         \x20 loglevel: warning\n",
        instance = inst.id,
        host = grpc.ip(),
        port = grpc.port(),
        private = space("pkcs11-private"),
        public = space("pkcs11-public"),
        apikey = apikey,
    );
    let path = data_dir.join("grep11client.yaml");
    write_private(&path, yaml.as_bytes())
        .map_err(Error::context(format!("cannot write {}", path.display())))?;
    Ok((path, apikey))
}
