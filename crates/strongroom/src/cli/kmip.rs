//! `strongroom kmip`: KMIP adapters, the client certificates that connect to them, and the
//! KMIP objects made through them (Key Protect's KMIP management API).

use super::*;
use crate::error::Error;

const ADAPTER_JSON: &str = "application/vnd.ibm.kms.kmip_adapter+json";
const CERT_JSON: &str = "application/vnd.ibm.kms.kmip_client_certificate+json";

#[derive(Args, Debug)]
pub struct KmipArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: KmipCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KmipCmd {
    /// KMIP adapters: an instance's KMIP endpoints, each bound to a root key.
    #[command(subcommand)]
    Adapter(AdapterCmd),
    /// Client certificates: a KMIP client connects with a certificate registered to an
    /// adapter (self-signed is fine; trust comes from registration).
    #[command(subcommand)]
    Cert(CertCmd),
    /// KMIP objects made through an adapter.
    #[command(subcommand)]
    Objects(ObjectsCmd),
}

#[derive(Subcommand, Debug)]
pub(crate) enum AdapterCmd {
    /// Create an adapter whose objects are wrapped under a root key.
    Create {
        /// Name (2-100 of letters, digits, '-' and '_').
        name: String,
        /// The root key (id or alias); it must stay active while the adapter is used.
        #[arg(long)]
        crk: String,
        #[arg(long)]
        description: Option<String>,
        /// Accept a root key that has an expiration date.
        #[arg(long)]
        allow_expiring_key: bool,
    },
    /// List the instance's adapters.
    List,
    /// Delete an adapter and its certificates (refused while it holds objects that are not
    /// destroyed).
    Delete {
        /// Adapter name or id.
        adapter: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CertCmd {
    /// Register a client certificate (PEM) to an adapter.
    Add {
        /// Adapter name or id.
        adapter: String,
        /// PEM file holding the certificate.
        #[arg(long)]
        file: PathBuf,
        /// Name (generated when absent).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an adapter's certificates.
    List { adapter: String },
    /// Remove a certificate: connections with it are refused from then on.
    Delete {
        adapter: String,
        /// Certificate name or id.
        cert: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ObjectsCmd {
    /// List an adapter's KMIP objects.
    List {
        adapter: String,
        /// KMIP states, e.g. 1,2 (1 Pre-Active, 2 Active, 3 Deactivated, 4 Compromised,
        /// 5 Destroyed, 6 Destroyed Compromised; default 1,2,3,4).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
}

fn envelope(collection_type: &str, resource: Value) -> Value {
    json!({"metadata": {"collectionType": collection_type, "collectionTotal": 1}, "resources": [resource]})
}

/// Lists `path`'s resources, one `line` each for people, the whole answer with `--output json`.
async fn list(
    c: &Client,
    out: Output,
    path: &str,
    line: impl Fn(&Value) -> String,
) -> Result<(), Error> {
    let reply = c.get(path).await?;
    let lines: Vec<String> = reply.body["resources"]
        .as_array()
        .map(|a| a.iter().map(line).collect())
        .unwrap_or_default();
    let human = if lines.is_empty() {
        "(none)".into()
    } else {
        lines.join("\n")
    };
    print(out, human, &reply.body);
    Ok(())
}

pub async fn kmip(a: KmipArgs) -> Result<(), Error> {
    let c = a.conn.client()?;
    let out = a.conn.output();
    let adapter_path = |id: &str| format!("/api/v2/kmip_adapters/{}", urlencode(id));
    match a.cmd {
        KmipCmd::Adapter(AdapterCmd::Create {
            name,
            crk,
            description,
            allow_expiring_key,
        }) => {
            let mut r =
                json!({"name": name, "profile": "native_1.0", "profile_data": {"crk_id": crk}});
            if let Some(d) = description {
                r["description"] = json!(d);
            }
            let q = if allow_expiring_key {
                "?allowExpiringKey=true"
            } else {
                ""
            };
            let reply = c
                .post(
                    &format!("/api/v2/kmip_adapters{q}"),
                    Some(envelope(ADAPTER_JSON, r)),
                )
                .await?;
            let v = &reply.body["resources"][0];
            print(
                out,
                format!(
                    "created KMIP adapter {} ({})",
                    v["name"].as_str().unwrap_or(""),
                    v["id"].as_str().unwrap_or("")
                ),
                v,
            );
        }
        KmipCmd::Adapter(AdapterCmd::List) => {
            list(&c, out, "/api/v2/kmip_adapters?limit=200", |v| {
                format!(
                    "{}  {}  root key {}",
                    v["id"].as_str().unwrap_or(""),
                    v["name"].as_str().unwrap_or(""),
                    v["profile_data"]["crk_id"].as_str().unwrap_or("")
                )
            })
            .await?;
        }
        KmipCmd::Adapter(AdapterCmd::Delete { adapter }) => {
            c.delete(&adapter_path(&adapter)).await?;
            print(
                out,
                format!("deleted KMIP adapter {adapter}"),
                &json!({"deleted": adapter}),
            );
        }
        KmipCmd::Cert(CertCmd::Add {
            adapter,
            file,
            name,
        }) => {
            let pem = std::fs::read_to_string(&file)
                .map_err(Error::context(format!("cannot read {}", file.display())))?;
            let mut r = json!({"certificate": pem});
            if let Some(n) = name {
                r["name"] = json!(n);
            }
            let reply = c
                .post(
                    &format!("{}/certificates", adapter_path(&adapter)),
                    Some(envelope(CERT_JSON, r)),
                )
                .await?;
            let v = &reply.body["resources"][0];
            print(
                out,
                format!(
                    "registered certificate {} ({}) to {adapter}",
                    v["name"].as_str().unwrap_or(""),
                    v["id"].as_str().unwrap_or("")
                ),
                v,
            );
        }
        KmipCmd::Cert(CertCmd::List { adapter }) => {
            list(
                &c,
                out,
                &format!("{}/certificates?limit=200", adapter_path(&adapter)),
                |v| {
                    format!(
                        "{}  {}  added {} by {}",
                        v["id"].as_str().unwrap_or(""),
                        v["name"].as_str().unwrap_or(""),
                        v["created_at"].as_str().unwrap_or(""),
                        v["created_by"].as_str().unwrap_or("")
                    )
                },
            )
            .await?;
        }
        KmipCmd::Cert(CertCmd::Delete { adapter, cert }) => {
            c.delete(&format!(
                "{}/certificates/{}",
                adapter_path(&adapter),
                urlencode(&cert)
            ))
            .await?;
            print(
                out,
                format!("deleted certificate {cert} of {adapter}"),
                &json!({"deleted": cert}),
            );
        }
        KmipCmd::Objects(ObjectsCmd::List {
            adapter,
            state,
            limit,
            offset,
        }) => {
            let mut q = format!("?limit={limit}&offset={offset}");
            if let Some(s) = state {
                q.push_str(&format!("&state={}", urlencode(&s)));
            }
            list(
                &c,
                out,
                &format!("{}/kmip_objects{q}", adapter_path(&adapter)),
                |v| {
                    format!(
                        "{}  type {}  state {}  created {}",
                        v["id"].as_str().unwrap_or(""),
                        v["kmip_object_type"],
                        v["state"],
                        v["created_at"].as_str().unwrap_or("")
                    )
                },
            )
            .await?;
        }
    }
    Ok(())
}
