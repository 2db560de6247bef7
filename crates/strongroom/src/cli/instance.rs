//! `strongroom instance`: the service administrator's instances, API keys, units and
//! usage.

use super::*;
use crate::error::Error;

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
    /// The node's admin listener (`serve --admin-addr`; default: dev.json's admin_url, else
    /// https://127.0.0.1:8444 on the node itself).
    #[arg(long, env = "STRONGROOM_ADMIN_URL", global = true)]
    admin_url: Option<String>,
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
        /// Operational crypto units on this node (1-3; more than 1 needs --allow-same-zone).
        #[arg(long, default_value_t = 1)]
        units: u8,
        /// Recovery crypto units on this node (0-2); they can generate the master key
        /// (`tke auto-init`) and keep a copy of it. Default: as HPCS keeps them, two; when
        /// the cluster has another region, one here and the command says where the second
        /// goes (`instance units` shows what is still missing).
        #[arg(long)]
        recovery_units: Option<u8>,
        /// Development only (server started with --dev): one unit with a RANDOM master key
        /// and no ceremony.
        #[arg(long)]
        dev_master_key: bool,
        /// Accept several operational units on this one node: they are in one zone and fail
        /// together (test set-ups). In production, create the instance with one unit and
        /// run `instance add-unit` on nodes in other zones.
        #[arg(long)]
        allow_same_zone: bool,
    },
    /// Add a crypto unit of an existing instance on this node (in a cluster each node
    /// hosts its own unit of the instance). Starts in imprint mode.
    AddUnit {
        /// The instance id.
        id: String,
        /// operational or recovery.
        #[arg(long, default_value = "operational")]
        kind: String,
        /// Accept an operational unit in a zone where the instance already has one (they
        /// fail together; test set-ups).
        #[arg(long)]
        allow_same_zone: bool,
    },
    /// An instance's crypto units on every node, with their zones and regions, and what
    /// their placement lacks (HPCS keeps operational units in several zones, and two
    /// recovery units, one of them in another region).
    Units {
        /// The instance id.
        id: String,
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
    /// Manage an instance's service IDs: identities whose API keys share one grant, so
    /// that an application's key is rotated without changing its access.
    #[command(subcommand)]
    ServiceId(ServiceIdCmd),
}

/// Roles, and the key rings they are limited to.
#[derive(Args, Debug)]
pub(crate) struct GrantArgs {
    /// Role (repeatable): Reader, ReaderPlus, Writer, Manager, KeyPurge.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Limit the roles to the keys of this key ring (repeatable). A key limited to key
    /// rings reaches only their keys, and nothing instance-wide (instance policies, import
    /// tokens, GREP11, KMIP adapters, crypto units, activity events). Default: the whole
    /// instance.
    #[arg(long = "key-ring")]
    key_rings: Vec<String>,
}

impl GrantArgs {
    fn body(&self, mut v: Value) -> Value {
        v["roles"] = json!(self.roles);
        if !self.key_rings.is_empty() {
            v["key_rings"] = json!(self.key_rings);
        }
        v
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum ServiceIdCmd {
    /// Create a service ID with roles (and optionally key rings); then give it API keys
    /// with `instance apikey create --service-id`.
    Create {
        /// Instance id.
        instance: String,
        #[command(flatten)]
        grant: GrantArgs,
        #[arg(long, default_value = "service id")]
        name: String,
    },
    /// List an instance's service IDs.
    List { instance: String },
    /// Replace a service ID's roles and key rings; its API keys' next tokens carry them.
    Update {
        instance: String,
        id: String,
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// Delete a service ID and all its API keys.
    Delete { instance: String, id: String },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ApiKeyCmd {
    /// Create an API key; it is shown once.
    Create {
        /// Instance id.
        instance: String,
        #[command(flatten)]
        grant: GrantArgs,
        /// Make the key one of this service ID's keys: it then has the service ID's roles
        /// and key rings (no --role or --key-ring).
        #[arg(long, conflicts_with_all = ["roles", "key_rings"])]
        service_id: Option<String>,
        #[arg(long, default_value = "api key")]
        name: String,
    },
    /// List an instance's API keys.
    List { instance: String },
    /// Delete an API key.
    Delete { instance: String, id: String },
}

pub async fn instance(a: InstanceArgs) -> Result<(), Error> {
    let c = a.conn.admin_client(&a.admin_url, &a.admin_token)?;
    let out = a.conn.output();
    match a.cmd {
        InstanceCmd::Create {
            name,
            units,
            recovery_units,
            dev_master_key,
            allow_same_zone,
        } => {
            let r = c
                .post("/admin/v1/instances", Some({
                        let mut b = json!({"name": name, "units": units, "dev_master_key": dev_master_key, "allow_same_zone": allow_same_zone});
                        if let Some(n) = recovery_units {
                            b["recovery_units"] = json!(n);
                        }
                        b
                    }))
                .await?;
            let next = if dev_master_key {
                String::new()
            } else {
                let id = r.body["id"].as_str().unwrap_or("?");
                format!(
                    "\nits crypto units are in imprint mode: initialise them with `strongroom tke` (docs/runbooks/ceremony.md){}",
                    placement_advice(&c, id).await
                )
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
        InstanceCmd::AddUnit {
            id,
            kind,
            allow_same_zone,
        } => {
            let r = c
                .post(
                    &format!("/admin/v1/instances/{}/units", urlencode(&id)),
                    Some(json!({"kind": kind, "allow_same_zone": allow_same_zone})),
                )
                .await?;
            print(
                out,
                format!(
                    "created crypto unit {} of instance {id} ({kind}, imprint mode){}",
                    r.body["unit"].as_str().unwrap_or("?"),
                    placement_advice(&c, &id).await
                ),
                &r.body,
            );
        }
        InstanceCmd::Units { id } => {
            let r = c
                .get(&format!("/admin/v1/instances/{}/units", urlencode(&id)))
                .await?;
            let mut human: Vec<String> = r.body["units"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| {
                    format!(
                        "{}  {:<11}  zone {}  region {}",
                        u["unit"].as_str().unwrap_or("?"),
                        u["kind"].as_str().unwrap_or("?"),
                        u["zone"].as_str().unwrap_or("-"),
                        u["region"].as_str().unwrap_or("-")
                    )
                })
                .collect();
            human.extend(
                r.body["advice"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .map(|a| format!("next: {a}")),
            );
            print(out, human.join("\n"), &r.body);
        }
        InstanceCmd::List => {
            let r = c.get("/admin/v1/instances").await?;
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
            c.delete(&format!("/admin/v1/instances/{}", urlencode(&id)))
                .await?;
            print(
                out,
                format!("deleted instance {id}; its master key is destroyed"),
                &json!({"deleted": id}),
            );
        }
        InstanceCmd::ClearAllowedIp { id } => {
            let r = c
                .delete(&format!(
                    "/admin/v1/instances/{}/allowed_ip",
                    urlencode(&id)
                ))
                .await?;
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
                .get(&format!("/admin/v1/instances/{}/usage{q}", urlencode(&id)))
                .await?;
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
            grant,
            service_id,
            name,
        }) => {
            let body = match service_id {
                Some(sid) => json!({"name": name, "service_id": sid}),
                None if grant.roles.is_empty() => {
                    return Err(Error::Usage(
                        "an API key needs --role (repeatable) or --service-id".into(),
                    ))
                }
                None => grant.body(json!({"name": name})),
            };
            let r = c
                .post(
                    &format!("/admin/v1/instances/{}/api_keys", urlencode(&instance)),
                    Some(body),
                )
                .await?;
            print(
                out,
                format!(
                    "API key (shown once, store it now):\n{}\n{}",
                    r.body["apikey"].as_str().unwrap_or("?"),
                    access_line(&r.body)
                ),
                &r.body,
            );
        }
        InstanceCmd::ServiceId(cmd) => service_id(&c, out, cmd).await?,
        InstanceCmd::Apikey(ApiKeyCmd::List { instance }) => {
            let r = c
                .get(&format!(
                    "/admin/v1/instances/{}/api_keys",
                    urlencode(&instance)
                ))
                .await?;
            print_grants(out, &r.body["api_keys"], "no API keys");
        }
        InstanceCmd::Apikey(ApiKeyCmd::Delete { instance, id }) => {
            c.delete(&format!(
                "/admin/v1/instances/{}/api_keys/{}",
                urlencode(&instance),
                urlencode(&id)
            ))
            .await?;
            print(
                out,
                format!("deleted API key {id}: tokens issued for it stop within seconds"),
                &json!({"deleted": id}),
            );
        }
    }
    Ok(())
}

/// A listing of API keys or service IDs: id, what each grants, name; `none` when empty.
fn print_grants(out: Output, list: &Value, none: &str) {
    let list = list.as_array().cloned().unwrap_or_default();
    let human = list
        .iter()
        .map(|k| {
            format!(
                "{}  {}  {}",
                k["id"].as_str().unwrap_or(""),
                access_line(k),
                k["name"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let human = if human.is_empty() {
        none.to_string()
    } else {
        human
    };
    print(out, human, &Value::Array(list));
}

/// What an API key or service ID grants, in one line.
fn access_line(v: &Value) -> String {
    if let Some(sid) = v["service_id"].as_str() {
        return format!("service ID {sid}");
    }
    let roles = v["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    match v["key_rings"].as_array() {
        Some(rings) => format!(
            "roles {roles} on key rings {}",
            rings
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => format!("roles {roles} on the whole instance"),
    }
}

async fn service_id(c: &Client, out: Output, cmd: ServiceIdCmd) -> Result<(), Error> {
    let path = |instance: &str| format!("/admin/v1/instances/{}/service_ids", urlencode(instance));
    match cmd {
        ServiceIdCmd::Create {
            instance,
            grant,
            name,
        } => {
            let r = c
                .post(&path(&instance), Some(grant.body(json!({"name": name}))))
                .await?;
            let id = r.body["id"].as_str().unwrap_or("?");
            print(
                out,
                format!(
                    "created service ID {id}: {}\ngive it API keys with `strongroom instance apikey create {instance} --service-id {id}`",
                    access_line(&r.body)
                ),
                &r.body,
            );
        }
        ServiceIdCmd::List { instance } => {
            let r = c.get(&path(&instance)).await?;
            print_grants(out, &r.body["service_ids"], "no service IDs");
        }
        ServiceIdCmd::Update {
            instance,
            id,
            grant,
        } => {
            let r = c
                .put(
                    &format!("{}/{}", path(&instance), urlencode(&id)),
                    Some(grant.body(json!({}))),
                )
                .await?;
            print(
                out,
                format!(
                    "service ID {id} now grants {} (tokens already issued act with it within seconds)",
                    access_line(&r.body)
                ),
                &r.body,
            );
        }
        ServiceIdCmd::Delete { instance, id } => {
            c.delete(&format!("{}/{}", path(&instance), urlencode(&id)))
                .await?;
            print(
                out,
                format!("deleted service ID {id} and its API keys: tokens issued for them stop within seconds"),
                &json!({"deleted": id}),
            );
        }
    }
    Ok(())
}

/// The placement advice of an instance, as lines to print after a change (empty when the
/// placement is complete, or when it cannot be read).
async fn placement_advice(c: &Client, instance: &str) -> String {
    let Ok(r) = c
        .get(&format!(
            "/admin/v1/instances/{}/units",
            urlencode(instance)
        ))
        .await
    else {
        return String::new();
    };
    r.body["advice"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .map(|a| format!("\nnext: {a}"))
        .collect()
}
