//! `strongroom instance`: the service administrator's instances, API keys, units and
//! usage.

use super::*;

#[derive(Args, Debug)]
pub struct InstanceArgs {
    #[command(flatten)]
    conn: Conn,
    /// Service administrator token (default: <data-dir>/admin.token).
    #[arg(
        long,
        env = "STRONGROOM_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    admin_token: Option<String>,
    #[command(subcommand)]
    cmd: InstanceCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum InstanceCmd {
    /// Create an instance and its crypto units on this node. The units start in imprint mode
    /// with no master key: key operations answer CRYPTO_UNIT_NOT_INITIALIZED_ERR until the
    /// administrators run the ceremony (`strongroom tke`, docs/runbooks/ceremony.md).
    Create {
        name: String,
        /// Operational crypto units on this node (1-3).
        #[arg(long, default_value_t = 1)]
        units: u8,
        /// Recovery crypto units on this node (0-2); they can generate the master key
        /// (`tke auto-init`) and keep a copy of it.
        #[arg(long, default_value_t = 0)]
        recovery_units: u8,
        /// Development only (server started with --dev): one unit with a RANDOM master key
        /// and no ceremony.
        #[arg(long)]
        dev_master_key: bool,
    },
    /// Add a crypto unit of an existing instance on this node (in a cluster each node
    /// hosts its own unit of the instance). Starts in imprint mode.
    AddUnit {
        /// The instance id.
        id: String,
        /// operational or recovery.
        #[arg(long, default_value = "operational")]
        kind: String,
    },
    /// List instances.
    List,
    /// Delete an instance (refused while it holds keys; destroys its master key).
    Delete { id: String },
    /// API calls of an instance in a calendar month (metering), from the audit log.
    Usage {
        id: String,
        /// YYYY-MM (default: this month, UTC).
        #[arg(long)]
        month: Option<String>,
    },
    /// Turn off an instance's allowedIP policy, for an instance whose Managers locked
    /// themselves out (the policy's record stays, disabled, with "admin" as its updater).
    ClearAllowedIp {
        /// The instance id.
        id: String,
    },
    /// Manage an instance's API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCmd),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ApiKeyCmd {
    /// Create an API key; it is shown once.
    Create {
        /// Instance id.
        instance: String,
        /// Role (repeatable): Reader, Writer, Manager, KeyPurge.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "api key")]
        name: String,
    },
    /// List an instance's API keys.
    List { instance: String },
    /// Delete an API key.
    Delete { instance: String, id: String },
}

pub async fn instance(a: InstanceArgs) -> Result<(), String> {
    let c = a.conn.admin_client(&a.admin_token)?;
    let out = a.conn.output;
    match a.cmd {
        InstanceCmd::Create {
            name,
            units,
            recovery_units,
            dev_master_key,
        } => {
            let r = c
                .request(
                    Method::POST,
                    "/admin/v1/instances",
                    Some(json!({"name": name, "units": units, "recovery_units": recovery_units, "dev_master_key": dev_master_key})),
                    &[],
                )
                .await
                .map_err(err)?;
            let next = if dev_master_key {
                String::new()
            } else {
                "\nits crypto units are in imprint mode: initialise them with `strongroom tke` (docs/runbooks/ceremony.md)".to_string()
            };
            print(
                out,
                format!(
                    "created instance {} ({}){next}",
                    r.body["id"].as_str().unwrap_or("?"),
                    name
                ),
                &r.body,
            );
        }
        InstanceCmd::AddUnit { id, kind } => {
            let r = c
                .request(
                    Method::POST,
                    &format!("/admin/v1/instances/{}/units", urlencode(&id)),
                    Some(json!({"kind": kind})),
                    &[],
                )
                .await
                .map_err(err)?;
            print(
                out,
                format!(
                    "created crypto unit {} of instance {id} ({kind}, imprint mode)",
                    r.body["unit"].as_str().unwrap_or("?")
                ),
                &r.body,
            );
        }
        InstanceCmd::List => {
            let r = c
                .request(Method::GET, "/admin/v1/instances", None, &[])
                .await
                .map_err(err)?;
            let list = r.body["instances"].as_array().cloned().unwrap_or_default();
            let human = list
                .iter()
                .map(|i| {
                    format!(
                        "{}  {}  {}",
                        i["id"].as_str().unwrap_or(""),
                        i["creationDate"].as_str().unwrap_or(""),
                        i["name"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(
                out,
                if human.is_empty() {
                    "no instances".into()
                } else {
                    human
                },
                &Value::Array(list),
            );
        }
        InstanceCmd::Delete { id } => {
            c.request(
                Method::DELETE,
                &format!("/admin/v1/instances/{}", urlencode(&id)),
                None,
                &[],
            )
            .await
            .map_err(err)?;
            print(
                out,
                format!("deleted instance {id}; its master key is destroyed"),
                &json!({"deleted": id}),
            );
        }
        InstanceCmd::ClearAllowedIp { id } => {
            let r = c
                .request(
                    Method::DELETE,
                    &format!("/admin/v1/instances/{}/allowed_ip", urlencode(&id)),
                    None,
                    &[],
                )
                .await
                .map_err(err)?;
            let human = if r.body["allowedIP_was_enabled"] == json!(true) {
                format!("instance {id}: allowedIP policy turned off; every address may call again")
            } else {
                format!("instance {id} had no allowedIP policy on; nothing changed")
            };
            print(out, human, &r.body);
        }
        InstanceCmd::Usage { id, month } => {
            let q = month
                .map(|m| format!("?month={}", urlencode(&m)))
                .unwrap_or_default();
            let r = c
                .request(
                    Method::GET,
                    &format!("/admin/v1/instances/{}/usage{q}", urlencode(&id)),
                    None,
                    &[],
                )
                .await
                .map_err(err)?;
            let mut human = format!(
                "{}: {} API calls in {}",
                id,
                r.body["api_calls"],
                r.body["month"].as_str().unwrap_or("")
            );
            for u in r.body["crypto_units"].as_array().into_iter().flatten() {
                human.push_str(&format!(
                    "\n  crypto unit {}: {} API calls served",
                    u["unit"].as_str().unwrap_or("?"),
                    u["api_calls"]
                ));
            }
            print(out, human, &r.body);
        }
        InstanceCmd::Apikey(ApiKeyCmd::Create {
            instance,
            roles,
            name,
        }) => {
            let r = c
                .request(
                    Method::POST,
                    &format!("/admin/v1/instances/{}/api_keys", urlencode(&instance)),
                    Some(json!({"name": name, "roles": roles})),
                    &[],
                )
                .await
                .map_err(err)?;
            print(
                out,
                format!(
                    "API key (shown once, store it now):\n{}\nroles: {}",
                    r.body["apikey"].as_str().unwrap_or("?"),
                    r.body["roles"]
                ),
                &r.body,
            );
        }
        InstanceCmd::Apikey(ApiKeyCmd::List { instance }) => {
            let r = c
                .request(
                    Method::GET,
                    &format!("/admin/v1/instances/{}/api_keys", urlencode(&instance)),
                    None,
                    &[],
                )
                .await
                .map_err(err)?;
            let list = r.body["api_keys"].as_array().cloned().unwrap_or_default();
            let human = list
                .iter()
                .map(|k| {
                    format!(
                        "{}  {}  {}",
                        k["id"].as_str().unwrap_or(""),
                        k["roles"],
                        k["name"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(
                out,
                if human.is_empty() {
                    "no API keys".into()
                } else {
                    human
                },
                &Value::Array(list),
            );
        }
        InstanceCmd::Apikey(ApiKeyCmd::Delete { instance, id }) => {
            c.request(
                Method::DELETE,
                &format!(
                    "/admin/v1/instances/{}/api_keys/{}",
                    urlencode(&instance),
                    urlencode(&id)
                ),
                None,
                &[],
            )
            .await
            .map_err(err)?;
            print(
                out,
                format!("deleted API key {id}"),
                &json!({"deleted": id}),
            );
        }
    }
    Ok(())
}
