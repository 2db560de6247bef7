//! Development mode's start-up: the dev instance, its token, the KMIP dev adapter, and
//! `<data-dir>/dev.json` (the contract tools and tests rely on: keep its field names).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use strongroom_service::{Principal, Service};

use crate::node::{write_private, NodeFiles};
use crate::serve::Config;

pub(crate) async fn dev_bootstrap(
    svc: &Arc<Service>,
    cfg: &Config,
    node: &NodeFiles,
    rest_url: &str,
    grpc_addr: Option<SocketAddr>,
    kmip: Option<(&crate::kmip_serve::DevKmipFiles, SocketAddr)>,
) -> Result<(), String> {
    let inst = svc
        .ensure_dev_instance("dev")
        .await
        .map_err(|e| format!("dev instance: {e}"))?;
    let principal = Principal {
        subject: "dev".into(),
        instance: Some(inst.id),
        roles: Service::dev_roles(),
    };
    let ttl = 7 * 86_400;
    let token = svc
        .token_for(&principal, ttl)
        .map_err(|e| format!("dev token: {e}"))?;
    let mut dev = serde_json::json!({
        "instance_id": inst.id.to_string(),
        "token": token.access_token,
        "rest_url": rest_url,
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
    let path = cfg.data_dir.join("dev.json");
    write_private(
        &path,
        serde_json::to_string_pretty(&dev)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "\n==================== STRONGROOM DEVELOPMENT MODE ====================\n\
         !! The dev instance's crypto unit holds a RANDOM master key kept in\n\
         !! {units}. Plain HTTP, no ceremony: never use this for real keys.\n\
         REST API     {rest_url}\n\
         Instance     {inst}   (Bluemix-Instance header)\n\
         Token        {tok}\n\
         (Manager role, valid 7 days; send as 'Authorization: Bearer <token>')\n\
         Written to   {path}\n\
         Try:         strongroom key create my-first-key\n\
         =====================================================================\n",
        units = cfg.data_dir.join("units").display(),
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
