//! Where a command connects: the endpoints, instance and credentials from flags, then
//! `STRONGROOM_*` variables, then `<data-dir>/dev.json`; and how it trusts servers.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;
use strongroom_client::{Auth, Client};

use super::Output;
use crate::error::Error;

#[derive(Args, Debug, Clone)]
pub(crate) struct Conn {
    /// Server URL(s), comma-separated for failover.
    #[arg(long, env = "STRONGROOM_URL", global = true)]
    url: Option<String>,
    /// Bearer token.
    #[arg(long, env = "STRONGROOM_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// API key (exchanged for a token at /identity/token).
    #[arg(
        long,
        env = "STRONGROOM_API_KEY",
        global = true,
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Instance id (the Bluemix-Instance header).
    #[arg(long, env = "STRONGROOM_INSTANCE", global = true)]
    instance: Option<String>,
    /// Data directory of a local dev server, whose dev.json fills in what is missing.
    #[arg(
        long,
        env = "STRONGROOM_DATA_DIR",
        global = true,
        default_value = "./strongroom-data"
    )]
    data_dir: PathBuf,
    /// PEM file of the CA certificates that sign the nodes' TLS certificates, trusted in
    /// addition to the system's trust store (which honours SSL_CERT_FILE).
    #[arg(long, env = "STRONGROOM_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Accept any TLS certificate, verifying nothing: test servers only. Never read from
    /// the environment; prints a warning on every use. Use --ca-file instead.
    #[arg(long, global = true)]
    insecure: bool,
    /// Output format.
    #[arg(long, value_enum, global = true, default_value = "human")]
    output: Output,
}

fn dev_json(dir: &std::path::Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("dev.json")).ok()?;
    serde_json::from_str(&text).ok()
}

impl Conn {
    /// How clients verify servers (`--ca-file`, the system store, or `--insecure`).
    fn trust(&self) -> strongroom_client::Trust {
        if self.insecure {
            eprintln!(
                "WARNING: --insecure: TLS certificates are NOT verified. Anyone on the network \
                 path can read and change what this command sends, including tokens, API keys \
                 and key material. Trust the node's CA with --ca-file instead."
            );
        }
        strongroom_client::Trust {
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        }
    }

    /// The output format.
    pub(crate) fn output(&self) -> Output {
        self.output
    }

    /// The endpoints (`--url`, comma-separated), instance and credentials: from flags, then
    /// `STRONGROOM_*` variables, then `<data-dir>/dev.json`.
    fn resolve(&self) -> Result<(String, String, Auth), Error> {
        let dev = dev_json(&self.data_dir);
        let from_dev = |k: &str| dev.as_ref().and_then(|d| d[k].as_str()).map(String::from);
        let url = self.url.clone().or_else(|| from_dev("rest_url")).ok_or_else(|| Error::usage(
            "no server: pass --url (or STRONGROOM_URL; several nodes: --url https://a:8443,https://b:8443), or run `strongroom serve --dev` here so ./strongroom-data/dev.json exists",
        ))?;
        let instance = self
            .instance
            .clone()
            .or_else(|| from_dev("instance_id"))
            .ok_or_else(|| Error::usage("no instance: pass --instance (or STRONGROOM_INSTANCE)"))?;
        let auth = match (&self.token, &self.api_key) {
            (Some(t), _) => Auth::Token(t.clone()),
            (None, Some(k)) => Auth::ApiKey(k.clone()),
            (None, None) => Auth::Token(from_dev("token").ok_or_else(|| Error::usage("no credentials: pass --token or --api-key (or STRONGROOM_TOKEN / STRONGROOM_API_KEY)"))?),
        };
        Ok((url, instance, auth))
    }

    /// One client per endpoint of `--url a,b,c` (the `tke` commands talk to the units of
    /// every node), and the instance id.
    pub(crate) fn endpoint_clients(&self) -> Result<(Vec<(String, Client)>, String), Error> {
        let (urls, instance, auth) = self.resolve()?;
        let trust = self.trust();
        let mut out = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let c = Client::new(url, auth.clone(), Some(instance.clone()), &trust)
                .map_err(Error::from)?;
            out.push((url.trim_end_matches('/').to_string(), c));
        }
        Ok((out, instance))
    }

    /// The dev server's GREP11 endpoint from `<data-dir>/dev.json`: `http://` when its REST
    /// listener is plain, `https://` otherwise.
    pub(crate) fn dev_grep11(&self) -> Option<String> {
        let dev = dev_json(&self.data_dir)?;
        let addr = dev["grpc_addr"].as_str()?;
        let tls = dev["rest_url"].as_str()?.starts_with("https://");
        Some(format!("{}://{addr}", if tls { "https" } else { "http" }))
    }

    /// How clients verify servers, for connections other than REST (GREP11).
    pub(crate) fn server_trust(&self) -> strongroom_client::Trust {
        self.trust()
    }

    /// One client over every endpoint (it fails over between them).
    pub(crate) fn client(&self) -> Result<Client, Error> {
        let (url, instance, auth) = self.resolve()?;
        Client::new(&url, auth, Some(instance), &self.trust()).map_err(Error::from)
    }

    /// A client of the node's admin listener: `--admin-url`, else dev.json's `admin_url`,
    /// else the default admin address on this machine.
    pub(super) fn admin_client(
        &self,
        admin_url: &Option<String>,
        admin_token: &Option<String>,
    ) -> Result<Client, Error> {
        let dev = dev_json(&self.data_dir);
        let url = admin_url
            .clone()
            .or_else(|| {
                dev.as_ref()
                    .and_then(|d| d["admin_url"].as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| "https://127.0.0.1:8444".to_string());
        let token = admin_token
            .clone()
            .or_else(|| std::fs::read_to_string(self.data_dir.join("admin.token")).ok().map(|s| s.trim().to_string()))
            .ok_or_else(|| Error::usage("no administrator token: pass --admin-token (or STRONGROOM_ADMIN_TOKEN), or run on the node so <data-dir>/admin.token is readable"))?;
        Client::new(&url, Auth::Admin(token), None, &self.trust()).map_err(Error::from)
    }
}
