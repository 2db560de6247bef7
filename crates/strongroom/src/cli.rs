//! The command-line client: `key`, `instance` and `audit` subcommands. Human output by
//! default, `--output json` for scripts. Connection settings come from flags, then
//! `STRONGROOM_*` variables, then `<data-dir>/dev.json` when a dev server runs locally.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use strongroom_client::Method;
use strongroom_client::{Auth, Client, ClientError};

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Human,
    Json,
}

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
    fn resolve(&self) -> Result<(String, String, Auth), String> {
        let dev = dev_json(&self.data_dir);
        let from_dev = |k: &str| dev.as_ref().and_then(|d| d[k].as_str()).map(String::from);
        let url = self.url.clone().or_else(|| from_dev("rest_url")).ok_or(
            "no server: pass --url (or STRONGROOM_URL; several nodes: --url https://a:8443,https://b:8443), or run `strongroom serve --dev` here so ./strongroom-data/dev.json exists",
        )?;
        let instance = self
            .instance
            .clone()
            .or_else(|| from_dev("instance_id"))
            .ok_or("no instance: pass --instance (or STRONGROOM_INSTANCE)")?;
        let auth = match (&self.token, &self.api_key) {
            (Some(t), _) => Auth::Token(t.clone()),
            (None, Some(k)) => Auth::ApiKey(k.clone()),
            (None, None) => Auth::Token(from_dev("token").ok_or("no credentials: pass --token or --api-key (or STRONGROOM_TOKEN / STRONGROOM_API_KEY)")?),
        };
        Ok((url, instance, auth))
    }

    /// One client per endpoint of `--url a,b,c` (the `tke` commands talk to the units of
    /// every node), and the instance id.
    pub(crate) fn endpoint_clients(&self) -> Result<(Vec<(String, Client)>, String), String> {
        let (urls, instance, auth) = self.resolve()?;
        let trust = self.trust();
        let mut out = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let c = Client::new(url, auth.clone(), Some(instance.clone()), &trust)
                .map_err(|e| e.to_string())?;
            out.push((url.trim_end_matches('/').to_string(), c));
        }
        Ok((out, instance))
    }

    /// One client over every endpoint (it fails over between them).
    fn client(&self) -> Result<Client, String> {
        let (url, instance, auth) = self.resolve()?;
        Client::new(&url, auth, Some(instance), &self.trust()).map_err(|e| e.to_string())
    }

    fn admin_client(&self, admin_token: &Option<String>) -> Result<Client, String> {
        let dev = dev_json(&self.data_dir);
        let url = self
            .url
            .clone()
            .or_else(|| {
                dev.as_ref()
                    .and_then(|d| d["rest_url"].as_str())
                    .map(String::from)
            })
            .ok_or("no server: pass --url (or STRONGROOM_URL)")?;
        let token = admin_token
            .clone()
            .or_else(|| std::fs::read_to_string(self.data_dir.join("admin.token")).ok().map(|s| s.trim().to_string()))
            .ok_or("no administrator token: pass --admin-token (or STRONGROOM_ADMIN_TOKEN), or run on the node so <data-dir>/admin.token is readable")?;
        Client::new(&url, Auth::Admin(token), None, &self.trust()).map_err(|e| e.to_string())
    }
}

fn err(e: ClientError) -> String {
    e.to_string()
}

pub(crate) fn print(output: Output, human: String, value: &Value) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Human => println!("{human}"),
    }
}

// ------------------------------------------------------------------ key

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: KeyCmd,
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Create a root key (default) or a standard key; generated, or imported from a payload.
    Create {
        /// Key name (1-90 characters).
        name: String,
        /// Create a standard key (extractable secret) instead of a root key.
        #[arg(long)]
        standard: bool,
        /// Import this base64 key material instead of generating it.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Import raw key material from a file.
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Description (up to 240 characters).
        #[arg(long)]
        description: Option<String>,
        /// Alias (repeat up to 5 times).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Expiration date, RFC 3339 (2030-01-01T00:00:00Z).
        #[arg(long)]
        expiration: Option<String>,
    },
    /// Import a root key securely: fetches a fresh import token, encrypts FILE's key material
    /// (16, 24 or 32 raw bytes) to it with RSA-OAEP-SHA-256 and proves possession with the
    /// token's nonce (AES-GCM), so the material never travels in clear.
    Import {
        /// Key name.
        name: String,
        /// File with the raw key material.
        #[arg(long = "secure", value_name = "FILE")]
        secure: PathBuf,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// List keys.
    List {
        /// States to include, e.g. 1,2,3,5 (default: all but destroyed).
        #[arg(long)]
        state: Option<String>,
        /// Only standard (true) or root (false) keys.
        #[arg(long)]
        extractable: Option<bool>,
        #[arg(long, default_value_t = 200)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Show a key (standard keys include their payload unless --metadata).
    Show {
        /// Key id or alias.
        id: String,
        /// Metadata only (Reader role suffices).
        #[arg(long)]
        metadata: bool,
    },
    /// Wrap a data key with a root key (a 32-byte key is generated when none is given).
    Wrap {
        id: String,
        /// Base64 plaintext to wrap.
        #[arg(long)]
        plaintext: Option<String>,
        /// Additional authenticated data (repeatable; unwrap needs the same list).
        #[arg(long)]
        aad: Vec<String>,
    },
    /// Unwrap a wrapped data key.
    Unwrap {
        id: String,
        /// The base64 ciphertext returned by wrap.
        #[arg(long)]
        ciphertext: String,
        #[arg(long)]
        aad: Vec<String>,
    },
    /// Re-wrap a wrapped data key with the newest key version.
    Rewrap {
        id: String,
        #[arg(long)]
        ciphertext: String,
        #[arg(long)]
        aad: Vec<String>,
    },
    /// Rotate a root key (imported keys need --payload).
    Rotate {
        id: String,
        #[arg(long)]
        payload: Option<String>,
    },
    /// List a key's versions.
    Versions { id: String },
    /// Disable (suspend) a root key.
    Disable { id: String },
    /// Enable a disabled root key (30 s after it was disabled).
    Enable { id: String },
    /// Delete a key (restorable for 30 days; purgeable after 4 hours).
    Delete {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Restore a deleted key.
    Restore { id: String },
    /// Purge a deleted key for good (KeyPurge role, 4 hours after deletion).
    Purge { id: String },
}

fn key_line(k: &Value) -> String {
    let state = match k["state"].as_u64() {
        Some(0) => "pre-active",
        Some(1) => "active",
        Some(2) => "suspended",
        Some(3) => "deactivated",
        Some(5) => "destroyed",
        _ => "?",
    };
    let kind = if k["extractable"].as_bool() == Some(true) {
        "standard"
    } else {
        "root"
    };
    format!(
        "{}  {:<8}  {:<11}  {}",
        k["id"].as_str().unwrap_or("?"),
        kind,
        state,
        k["name"].as_str().unwrap_or("")
    )
}

fn key_details(k: &Value) -> String {
    let mut s = key_line(k);
    for (label, field) in [
        ("created", "creationDate"),
        ("version", "keyVersion"),
        ("aliases", "aliases"),
        ("description", "description"),
        ("expires", "expirationDate"),
        ("rotated", "lastRotateDate"),
        ("deleted", "deletionDate"),
        ("payload", "payload"),
    ] {
        let v = &k[field];
        let text = match v {
            Value::Null => continue,
            Value::String(t) => t.clone(),
            Value::Object(o) => o
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            Value::Array(a) if a.is_empty() => continue,
            other => other.to_string(),
        };
        s.push_str(&format!("\n  {label:<12} {text}"));
    }
    s
}

fn collection_body(resource: Value) -> Value {
    json!({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1}, "resources": [resource]})
}

pub async fn key(a: KeyArgs) -> Result<(), String> {
    let c = a.conn.client()?;
    let out = a.conn.output;
    let path = |id: &str, rest: &str| format!("/api/v2/keys/{}{rest}", urlencode(id));
    match a.cmd {
        KeyCmd::Create {
            name,
            standard,
            payload,
            payload_file,
            description,
            aliases,
            expiration,
        } => {
            let payload = match (payload, payload_file) {
                (Some(p), _) => Some(p),
                (None, Some(f)) => {
                    use base64::Engine as _;
                    let bytes = zeroize::Zeroizing::new(
                        std::fs::read(&f)
                            .map_err(|e| format!("cannot read {}: {e}", f.display()))?,
                    );
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
                }
                (None, None) => None,
            };
            let mut r = json!({"type": "application/vnd.ibm.kms.key+json", "name": name, "extractable": standard});
            if let Some(p) = payload {
                r["payload"] = json!(p);
            }
            if let Some(d) = description {
                r["description"] = json!(d);
            }
            if !aliases.is_empty() {
                r["aliases"] = json!(aliases);
            }
            if let Some(e) = expiration {
                r["expirationDate"] = json!(e);
            }
            let reply = c
                .request(
                    Method::POST,
                    "/api/v2/keys",
                    Some(collection_body(r)),
                    &[("prefer", "return=representation".into())],
                )
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(out, format!("created {}", key_details(k)), k);
        }
        KeyCmd::Import {
            name,
            secure,
            description,
            aliases,
        } => {
            let material = zeroize::Zeroizing::new(
                std::fs::read(&secure)
                    .map_err(|e| format!("cannot read {}: {e}", secure.display()))?,
            );
            if ![16, 24, 32].contains(&material.len()) {
                return Err(format!(
                    "{} holds {} bytes; root key material must be 16, 24 or 32 raw bytes",
                    secure.display(),
                    material.len()
                ));
            }
            c.request(
                Method::POST,
                "/api/v2/import_token",
                Some(json!({"expiration": 300, "maxAllowedRetrievals": 1})),
                &[],
            )
            .await
            .map_err(err)?;
            let tok = c
                .request(Method::GET, "/api/v2/import_token", None, &[])
                .await
                .map_err(err)?;
            let mut r = sealed_import(&tok.body, &material)?;
            r["type"] = json!("application/vnd.ibm.kms.key+json");
            r["name"] = json!(name);
            r["extractable"] = json!(false);
            if let Some(d) = description {
                r["description"] = json!(d);
            }
            if !aliases.is_empty() {
                r["aliases"] = json!(aliases);
            }
            let reply = c
                .request(Method::POST, "/api/v2/keys", Some(collection_body(r)), &[])
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(out, format!("imported {}", key_details(k)), k);
        }
        KeyCmd::List {
            state,
            extractable,
            limit,
            offset,
        } => {
            let mut q = format!("?limit={limit}&offset={offset}");
            if let Some(s) = state {
                q.push_str(&format!("&state={s}"));
            }
            if let Some(x) = extractable {
                q.push_str(&format!("&extractable={x}"));
            }
            let reply = c
                .request(Method::GET, &format!("/api/v2/keys{q}"), None, &[])
                .await
                .map_err(err)?;
            let keys = reply.body["resources"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let human = if keys.is_empty() {
                "no keys".to_string()
            } else {
                let mut s = format!("{:<36}  {:<8}  {:<11}  NAME", "ID", "KIND", "STATE");
                for k in &keys {
                    s.push('\n');
                    s.push_str(&key_line(k));
                }
                s
            };
            print(out, human, &Value::Array(keys));
        }
        KeyCmd::Show { id, metadata } => {
            let p = if metadata {
                path(&id, "/metadata")
            } else {
                path(&id, "")
            };
            let reply = c.request(Method::GET, &p, None, &[]).await.map_err(err)?;
            let k = &reply.body["resources"][0];
            print(out, key_details(k), k);
        }
        KeyCmd::Wrap { id, plaintext, aad } => {
            let mut body = json!({});
            if let Some(p) = plaintext {
                body["plaintext"] = json!(p);
            }
            if !aad.is_empty() {
                body["aad"] = json!(aad);
            }
            let reply = c
                .request(Method::POST, &path(&id, "/actions/wrap"), Some(body), &[])
                .await
                .map_err(err)?;
            let b = &reply.body;
            let mut human = format!(
                "ciphertext  {}\nversion     {}",
                b["ciphertext"].as_str().unwrap_or(""),
                b["keyVersion"]["id"].as_str().unwrap_or("")
            );
            if let Some(p) = b["plaintext"].as_str() {
                human.push_str(&format!(
                    "\nplaintext   {p}   (generated data key: keep it secret)"
                ));
            }
            print(out, human, b);
        }
        KeyCmd::Unwrap {
            id,
            ciphertext,
            aad,
        } => {
            let mut body = json!({"ciphertext": ciphertext});
            if !aad.is_empty() {
                body["aad"] = json!(aad);
            }
            let reply = c
                .request(Method::POST, &path(&id, "/actions/unwrap"), Some(body), &[])
                .await
                .map_err(err)?;
            let b = &reply.body;
            let mut human = format!(
                "plaintext   {}\nversion     {}",
                b["plaintext"].as_str().unwrap_or(""),
                b["keyVersion"]["id"].as_str().unwrap_or("")
            );
            if let Some(ct) = b["ciphertext"].as_str() {
                human.push_str(&format!(
                    "\nrewrapped   {ct}\n            (made with an older version; store this ciphertext from version {})",
                    b["rewrappedKeyVersion"]["id"].as_str().unwrap_or("")
                ));
            }
            print(out, human, b);
        }
        KeyCmd::Rewrap {
            id,
            ciphertext,
            aad,
        } => {
            let mut body = json!({"ciphertext": ciphertext});
            if !aad.is_empty() {
                body["aad"] = json!(aad);
            }
            let reply = c
                .request(Method::POST, &path(&id, "/actions/rewrap"), Some(body), &[])
                .await
                .map_err(err)?;
            let b = &reply.body;
            print(
                out,
                format!(
                    "ciphertext  {}\nversion     {}",
                    b["ciphertext"].as_str().unwrap_or(""),
                    b["rewrappedKeyVersion"]["id"].as_str().unwrap_or("")
                ),
                b,
            );
        }
        KeyCmd::Rotate { id, payload } => {
            let body = payload
                .map(|p| json!({"payload": p}))
                .unwrap_or_else(|| json!({}));
            c.request(Method::POST, &path(&id, "/actions/rotate"), Some(body), &[])
                .await
                .map_err(err)?;
            let reply = c
                .request(Method::GET, &path(&id, "/metadata"), None, &[])
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(
                out,
                format!(
                    "rotated {}; new version {}",
                    id,
                    k["keyVersion"]["id"].as_str().unwrap_or("?")
                ),
                k,
            );
        }
        KeyCmd::Versions { id } => {
            let reply = c
                .request(
                    Method::GET,
                    &format!(
                        "{}?allKeyStates=true&totalCount=true",
                        path(&id, "/versions")
                    ),
                    None,
                    &[],
                )
                .await
                .map_err(err)?;
            let vs = reply.body["resources"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let human = vs
                .iter()
                .map(|v| {
                    format!(
                        "{}  {}",
                        v["id"].as_str().unwrap_or(""),
                        v["creationDate"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(out, human, &Value::Array(vs));
        }
        KeyCmd::Disable { id } => {
            simple_action(
                &c,
                out,
                &path(&id, "/actions/disable"),
                &format!("disabled {id}"),
            )
            .await?
        }
        KeyCmd::Enable { id } => {
            simple_action(
                &c,
                out,
                &path(&id, "/actions/enable"),
                &format!("enabled {id}"),
            )
            .await?
        }
        KeyCmd::Delete { id, force } => {
            let reply = c
                .request(
                    Method::DELETE,
                    &format!("{}?force={force}", path(&id, "")),
                    None,
                    &[("prefer", "return=representation".into())],
                )
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(
                out,
                format!(
                    "deleted {}\n  restorable until {}\n  purgeable from   {}",
                    id,
                    k["restoreExpirationDate"].as_str().unwrap_or("?"),
                    k["purgeAllowedFrom"].as_str().unwrap_or("?")
                ),
                k,
            );
        }
        KeyCmd::Restore { id } => {
            let reply = c
                .request(Method::POST, &path(&id, "/restore"), None, &[])
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(out, format!("restored {}", key_line(k)), k);
        }
        KeyCmd::Purge { id } => {
            let reply = c
                .request(Method::DELETE, &path(&id, "/purge"), None, &[])
                .await
                .map_err(err)?;
            let k = &reply.body["resources"][0];
            print(out, format!("purged {id}"), k);
        }
    }
    Ok(())
}

/// The client side of secure import: RSA-OAEP-SHA-256 of the material to the token's public
/// key, and the token's nonce sealed with AES-GCM under the material.
fn sealed_import(token: &Value, material: &[u8]) -> Result<Value, String> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use strongroom_engine::{AeadAlg, CryptoProvider, OaepHash};
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let bad = |what: &str| format!("the server's import token is malformed ({what})");
    let pem = STANDARD
        .decode(token["payload"].as_str().ok_or_else(|| bad("payload"))?)
        .map_err(|_| bad("payload"))?;
    let pem = String::from_utf8(pem).map_err(|_| bad("PEM"))?;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let spki = STANDARD.decode(body.trim()).map_err(|_| bad("PEM body"))?;
    let nonce = STANDARD
        .decode(token["nonce"].as_str().ok_or_else(|| bad("nonce"))?)
        .map_err(|_| bad("nonce"))?;
    let payload = p
        .rsa_oaep_encrypt(&spki, OaepHash::Sha256, material)
        .map_err(|_| bad("public key"))?;
    let mut iv = [0u8; 12];
    p.fill_random(&mut iv)
        .map_err(|_| "random generator failed".to_string())?;
    let key = p
        .aead_key(AeadAlg::AesGcm, material)
        .map_err(|_| "bad key material".to_string())?;
    let mut sealed = nonce;
    key.seal(&iv, &[], &mut sealed)
        .map_err(|_| "sealing the nonce failed".to_string())?;
    Ok(json!({
        "payload": STANDARD.encode(payload),
        "encryptedNonce": STANDARD.encode(sealed),
        "iv": STANDARD.encode(iv),
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
    }))
}

async fn simple_action(c: &Client, out: Output, path: &str, msg: &str) -> Result<(), String> {
    c.request(Method::POST, path, None, &[])
        .await
        .map_err(err)?;
    print(out, msg.to_string(), &json!({"result": msg}));
    Ok(())
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ------------------------------------------------------------------ instance

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
enum InstanceCmd {
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
enum ApiKeyCmd {
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

// ------------------------------------------------------------------ audit

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Verify the hash chain of the audit log (offline, on the node: needs the data
    /// directory's keystore.db and node.key). Exits non-zero if a record was changed,
    /// inserted or removed.
    Verify {
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
        data_dir: PathBuf,
        /// The node's PostgreSQL keystore, when it runs on one.
        #[arg(long, env = "STRONGROOM_KEYSTORE_URL", hide_env_values = true)]
        keystore_url: Option<String>,
        /// The cluster key file the nodes run with (`serve --cluster-key-file`), if any.
        #[arg(long, env = "STRONGROOM_CLUSTER_KEY_FILE")]
        cluster_key_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
}

pub async fn audit(a: AuditArgs) -> Result<(), String> {
    match a.cmd {
        AuditCmd::Verify {
            data_dir,
            output,
            keystore_url,
            cluster_key_file,
        } => {
            use strongroom_engine::CryptoProvider;
            let provider = strongroom_crypto_awslc::AwsLcProvider;
            let node_key =
                crate::node::NodeFiles::load_key(&data_dir).map_err(|e| e.to_string())?;
            if let Some(f) = &cluster_key_file {
                if !f.exists() {
                    return Err(format!("{} does not exist", f.display()));
                }
            }
            let audit_key = zeroize::Zeroizing::new(
                crate::node::NodeFiles::shared_key(
                    &provider,
                    &node_key,
                    cluster_key_file.as_deref(),
                    "audit",
                )
                .map_err(|e| e.to_string())?,
            );
            let store: Arc<dyn strongroom_keystore::KeyStore> = match keystore_url {
                Some(url) => Arc::new(
                    strongroom_keystore_postgres::PgStore::connect(&url, &Default::default())
                        .await
                        .map_err(|e| format!("cannot open the PostgreSQL keystore: {e}"))?,
                ),
                None => {
                    let db = data_dir.join("keystore.db");
                    Arc::new(
                        strongroom_keystore_sqlite::SqliteStore::open_read_only(&db)
                            .await
                            .map_err(|e| format!("cannot open {}: {e}", db.display()))?,
                    )
                }
            };
            let _ = provider.name();
            let report =
                strongroom_service::verify_chain(store.as_ref(), &provider, audit_key.as_ref())
                    .await
                    .map_err(|e| e.to_string())?;
            let v = json!({"records": report.records, "ok": report.problem.is_none(), "problem": report.problem.as_ref().map(|(s, m)| json!({"seq": s, "message": m}))});
            match &report.problem {
                None => print(
                    output,
                    format!("audit log OK: {} records, chain intact", report.records),
                    &v,
                ),
                Some((seq, msg)) => {
                    print(output, format!("audit log BROKEN at record {seq}: {msg} ({} records verified before it)", report.records), &v);
                    return Err("audit verification failed".into());
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ backup

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The node's data directory (its SQLite keystore, unless --keystore-url is given).
    #[arg(
        long,
        env = "STRONGROOM_DATA_DIR",
        default_value = "./strongroom-data",
        global = true
    )]
    data_dir: PathBuf,
    /// The node's PostgreSQL keystore, when it runs on one.
    #[arg(
        long,
        env = "STRONGROOM_KEYSTORE_URL",
        hide_env_values = true,
        global = true
    )]
    keystore_url: Option<String>,
    #[arg(long, value_enum, global = true, default_value = "human")]
    output: Output,
    #[command(subcommand)]
    cmd: BackupCmd,
}

#[derive(Subcommand, Debug)]
enum BackupCmd {
    /// Write a consistent, versioned, checksummed archive of the keystore (the whole node, or
    /// one instance) into DIR. The server may keep running.
    Create {
        /// Directory for the archive, or s3://bucket/prefix (S3-compatible store; AWS_*
        /// credentials, STRONGROOM_S3_ENDPOINT for a non-AWS store).
        #[arg(long)]
        dir: String,
        /// Only this instance.
        #[arg(long)]
        instance: Option<String>,
    },
    /// List the archives in DIR, checking each.
    List {
        /// Directory, or s3://bucket/prefix.
        #[arg(long)]
        dir: String,
    },
    /// Check an archive's checksum, format version and record count.
    Verify {
        /// Archive file, or s3://bucket/key.
        file: String,
    },
    /// Restore an archive into an empty keystore (a fresh node). Load the same master keys
    /// (unit files, or the ceremony) before serving.
    Restore {
        /// Archive file, or s3://bucket/key.
        file: String,
    },
}

async fn open_keystore(
    data_dir: &std::path::Path,
    url: &Option<String>,
) -> Result<Arc<dyn strongroom_keystore::KeyStore>, String> {
    Ok(match url {
        Some(u) => Arc::new(
            strongroom_keystore_postgres::PgStore::connect(u, &Default::default())
                .await
                .map_err(|e| format!("cannot open the PostgreSQL keystore: {e}"))?,
        ),
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
            let db = data_dir.join("keystore.db");
            Arc::new(
                strongroom_keystore_sqlite::SqliteStore::open(&db)
                    .await
                    .map_err(|e| format!("cannot open {}: {e}", db.display()))?,
            )
        }
    })
}

fn summary_json(s: &strongroom_service::backup::ArchiveSummary) -> Value {
    json!({"created_at": s.created_at, "instances": s.instances, "keys": s.keys, "versions": s.versions, "other_records": s.other})
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Writes one archive into `dir` and returns its path (shared with the server's daily job).
pub async fn write_backup(
    store: &dyn strongroom_keystore::KeyStore,
    target: &crate::backup_target::Target,
    only: Option<strongroom_model::InstanceId>,
) -> Result<(String, strongroom_service::backup::ArchiveSummary), String> {
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let now = now_ms();
    let (bytes, sum) = strongroom_service::backup::export_archive(
        store,
        &p,
        only,
        strongroom_model::UnixMillis(now),
    )
    .await
    .map_err(|e| e.to_string())?;
    let name = match only {
        Some(i) => format!("strongroom-backup-{now}-{i}.srbk"),
        None => format!("strongroom-backup-{now}.srbk"),
    };
    let location = target.put(&name, bytes).await?;
    Ok((location, sum))
}

pub async fn backup(a: BackupArgs) -> Result<(), String> {
    let p = strongroom_crypto_awslc::AwsLcProvider;
    match a.cmd {
        BackupCmd::Create { dir, instance } => {
            let only = instance
                .map(|i| {
                    i.parse()
                        .map_err(|_| format!("'{i}' is not an instance id"))
                })
                .transpose()?;
            let store = open_keystore(&a.data_dir, &a.keystore_url).await?;
            let started = std::time::Instant::now();
            let target = crate::backup_target::Target::parse(&dir)?;
            let (path, sum) = write_backup(store.as_ref(), &target, only).await?;
            let mut v = summary_json(&sum);
            v["file"] = json!(path);
            v["seconds"] = json!(started.elapsed().as_secs_f64());
            print(
                a.output,
                format!(
                    "wrote {} ({} instances, {} keys, {} versions) in {:.1} s",
                    path,
                    sum.instances,
                    sum.keys,
                    sum.versions,
                    started.elapsed().as_secs_f64()
                ),
                &v,
            );
        }
        BackupCmd::List { dir } => {
            let target = crate::backup_target::Target::parse(&dir)?;
            let mut rows = Vec::new();
            for name in target.list().await? {
                let bytes = target.get(&name).await?;
                let mut v = match strongroom_service::backup::verify_archive(&bytes, &p) {
                    Ok(s) => summary_json(&s),
                    Err(err) => json!({"error": err.message}),
                };
                v["file"] = json!(target.location(&name));
                rows.push(v);
            }
            let human = rows
                .iter()
                .map(|r| match r.get("error") {
                    Some(err) => format!(
                        "{}  DAMAGED: {}",
                        r["file"].as_str().unwrap_or(""),
                        err.as_str().unwrap_or("")
                    ),
                    None => format!(
                        "{}  {} keys, {} versions",
                        r["file"].as_str().unwrap_or(""),
                        r["keys"],
                        r["versions"]
                    ),
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(
                a.output,
                if human.is_empty() {
                    "no archives".into()
                } else {
                    human
                },
                &Value::Array(rows),
            );
        }
        BackupCmd::Verify { file } => {
            let bytes = crate::backup_target::read_archive(&file).await?;
            let sum = strongroom_service::backup::verify_archive(&bytes, &p)
                .map_err(|e| format!("{file}: {}", e.message))?;
            print(
                a.output,
                format!(
                    "{} is intact: {} instances, {} keys, {} versions",
                    file, sum.instances, sum.keys, sum.versions
                ),
                &summary_json(&sum),
            );
        }
        BackupCmd::Restore { file } => {
            let bytes = crate::backup_target::read_archive(&file).await?;
            strongroom_service::backup::verify_archive(&bytes, &p)
                .map_err(|e| format!("{file}: {}", e.message))?;
            let store = open_keystore(&a.data_dir, &a.keystore_url).await?;
            let started = std::time::Instant::now();
            let sum = strongroom_service::backup::restore_archive(store.as_ref(), &bytes, &p)
                .await
                .map_err(|e| e.message)?;
            let mut v = summary_json(&sum);
            v["seconds"] = json!(started.elapsed().as_secs_f64());
            print(
                a.output,
                format!(
                    "restored {} instances, {} keys, {} versions in {:.1} s; load the instances' master keys before serving",
                    sum.instances, sum.keys, sum.versions, started.elapsed().as_secs_f64()
                ),
                &v,
            );
        }
    }
    Ok(())
}
