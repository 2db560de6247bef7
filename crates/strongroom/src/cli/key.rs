//! `strongroom key`: the key API from the command line.

use super::*;
use crate::error::Error;

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: KeyCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCmd {
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
        /// The key ring to create the key in (default: `default`). Credentials limited to
        /// key rings create keys only in theirs.
        #[arg(long)]
        key_ring: Option<String>,
    },
    /// Import a root key securely: creates a fresh import token, encrypts FILE's key material
    /// (16, 24 or 32 raw bytes) to its transport key and proves possession with the token's
    /// nonce (AES-GCM), so the material never travels in clear. By default the token is
    /// post-quantum (ML-KEM-1024, then AES-256-KWP under the shared secret), so a recording
    /// of the import cannot be decrypted later by a quantum computer.
    Import {
        /// Key name.
        name: String,
        /// File with the raw key material.
        #[arg(long = "secure", value_name = "FILE")]
        secure: PathBuf,
        /// The import token's transport key: ml-kem-1024, ml-kem-768 (Strongroom's
        /// extension), or rsa-4096 (Key Protect's, for servers that only know that one).
        #[arg(long, default_value = "ml-kem-1024", value_parser = ["ml-kem-1024", "ml-kem-768", "rsa-4096"])]
        transport: String,
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
        /// Only keys of this key ring.
        #[arg(long)]
        key_ring: Option<String>,
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

pub(crate) fn key_line(k: &Value) -> String {
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

pub(crate) fn key_details(k: &Value) -> String {
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

pub(crate) fn collection_body(resource: Value) -> Value {
    json!({"metadata": {"collectionType": "application/vnd.ibm.kms.key+json", "collectionTotal": 1}, "resources": [resource]})
}

pub async fn key(a: KeyArgs) -> Result<(), Error> {
    let c = a.conn.client()?;
    let out = a.conn.output();
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
            key_ring,
        } => {
            let payload = match (payload, payload_file) {
                (Some(p), _) => Some(p),
                (None, Some(f)) => {
                    use base64::Engine as _;
                    let bytes = zeroize::Zeroizing::new(
                        std::fs::read(&f)
                            .map_err(Error::context(format!("cannot read {}", f.display())))?,
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
            let mut headers = vec![("prefer", "return=representation".to_string())];
            if let Some(ring) = key_ring {
                headers.push(("x-kms-key-ring", ring));
            }
            let reply = c
                .request(
                    Method::POST,
                    "/api/v2/keys",
                    Some(collection_body(r)),
                    &headers,
                )
                .await?;
            let k = &reply.body["resources"][0];
            print(out, format!("created {}", key_details(k)), k);
        }
        KeyCmd::Import {
            name,
            secure,
            transport,
            description,
            aliases,
        } => {
            let material = zeroize::Zeroizing::new(
                std::fs::read(&secure)
                    .map_err(Error::context(format!("cannot read {}", secure.display())))?,
            );
            if ![16, 24, 32].contains(&material.len()) {
                return Err(Error::usage(format!(
                    "{} holds {} bytes; root key material must be 16, 24 or 32 raw bytes",
                    secure.display(),
                    material.len()
                )));
            }
            // The wire name of the transport key: ml-kem-1024 → ML_KEM_1024.
            let wanted = transport.to_uppercase().replace('-', "_");
            let mut token = json!({"expiration": 300, "maxAllowedRetrievals": 1});
            if transport != "rsa-4096" {
                token["transportKeyAlgorithm"] = json!(wanted);
            }
            c.post("/api/v2/import_token", Some(token)).await?;
            let tok = c.get("/api/v2/import_token").await?;
            let given = tok.body["transportKeyAlgorithm"]
                .as_str()
                .unwrap_or("RSA_4096");
            if given != wanted {
                // A server without Strongroom's extension (IBM's Key Protect) ignores the
                // request and hands out an RSA token: never downgrade without being told.
                return Err(Error::check(format!(
                    "the transport key of the server's import token is {given}, not {wanted}: the server does not offer post-quantum import tokens; import with --transport rsa-4096 to use its RSA token"
                )));
            }
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
            let reply = c.post("/api/v2/keys", Some(collection_body(r))).await?;
            let k = &reply.body["resources"][0];
            print(
                out,
                format!(
                    "imported {}\n  through an import token whose transport key is {wanted}",
                    key_details(k)
                ),
                k,
            );
        }
        KeyCmd::List {
            state,
            extractable,
            key_ring,
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
            let headers: Vec<(&str, String)> = key_ring
                .map(|r| ("x-kms-key-ring", r))
                .into_iter()
                .collect();
            let reply = c
                .request(Method::GET, &format!("/api/v2/keys{q}"), None, &headers)
                .await?;
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
            let reply = c.get(&p).await?;
            let k = &reply.body["resources"][0];
            print(out, key_details(k), k);
        }
        KeyCmd::Wrap { id, plaintext, aad } => {
            let body = plaintext.map_or_else(|| json!({}), |p| json!({"plaintext": p}));
            let reply = data_key_action(&c, &path(&id, "/actions/wrap"), body, aad).await?;
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
            let body = json!({"ciphertext": ciphertext});
            let reply = data_key_action(&c, &path(&id, "/actions/unwrap"), body, aad).await?;
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
            let body = json!({"ciphertext": ciphertext});
            let reply = data_key_action(&c, &path(&id, "/actions/rewrap"), body, aad).await?;
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
            c.post(&path(&id, "/actions/rotate"), Some(body)).await?;
            let reply = c.get(&path(&id, "/metadata")).await?;
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
                .get(&format!(
                    "{}?allKeyStates=true&totalCount=true",
                    path(&id, "/versions")
                ))
                .await?;
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
                .await?;
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
            let reply = c.post(&path(&id, "/restore"), None).await?;
            let k = &reply.body["resources"][0];
            print(out, format!("restored {}", key_line(k)), k);
        }
        KeyCmd::Purge { id } => {
            let reply = c.delete(&path(&id, "/purge")).await?;
            let k = &reply.body["resources"][0];
            print(out, format!("purged {id}"), k);
        }
    }
    Ok(())
}

/// The client side of secure import: the material encrypted to the token's transport key
/// (RSA-OAEP-SHA-256; or, for an ML-KEM token, the encapsulation's ciphertext followed by the
/// material wrapped with AES-256-KWP under the shared secret), and the token's nonce sealed
/// with AES-GCM under the material.
pub(crate) fn sealed_import(token: &Value, material: &[u8]) -> Result<Value, Error> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use strongroom_engine::provider::AsymKind;
    use strongroom_engine::{AeadAlg, CryptoProvider, OaepHash};
    let p = strongroom_crypto_awslc::AwsLcProvider;
    let bad = |what: &str| Error::check(format!("the server's import token is malformed ({what})"));
    let pem = STANDARD
        .decode(token["payload"].as_str().ok_or_else(|| bad("payload"))?)
        .map_err(|_| bad("payload"))?;
    let pem = String::from_utf8(pem).map_err(|_| bad("PEM"))?;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let spki = STANDARD.decode(body.trim()).map_err(|_| bad("PEM body"))?;
    let nonce = STANDARD
        .decode(token["nonce"].as_str().ok_or_else(|| bad("nonce"))?)
        .map_err(|_| bad("nonce"))?;
    let public = p.public_info(&spki).map_err(|_| bad("public key"))?;
    let (payload, algorithm) = match public.kind {
        AsymKind::MlKem(_) => {
            let (mut ct, secret) = p
                .ml_kem_encapsulate(&public)
                .map_err(|_| bad("ML-KEM public key"))?;
            let wrapped = p
                .aes_kwp_wrap(&secret, material)
                .map_err(|_| Error::other("wrapping the key material failed"))?;
            ct.extend_from_slice(&wrapped);
            (ct, "ML_KEM_AES_256_KWP")
        }
        _ => (
            p.rsa_oaep_encrypt(&spki, OaepHash::Sha256, material)
                .map_err(|_| bad("public key"))?,
            "RSAES_OAEP_SHA_256",
        ),
    };
    let mut iv = [0u8; 12];
    p.fill_random(&mut iv)
        .map_err(|_| Error::other("random generator failed"))?;
    let key = p
        .aead_key(AeadAlg::AesGcm, material)
        .map_err(|_| Error::other("bad key material"))?;
    let mut sealed = nonce;
    key.seal(&iv, &[], &mut sealed)
        .map_err(|_| Error::other("sealing the nonce failed"))?;
    Ok(json!({
        "payload": STANDARD.encode(payload),
        "encryptedNonce": STANDARD.encode(sealed),
        "iv": STANDARD.encode(iv),
        "encryptionAlgorithm": algorithm,
    }))
}

/// A wrap, unwrap or rewrap: `body` with the additional authenticated data, if any.
async fn data_key_action(
    c: &Client,
    path: &str,
    mut body: Value,
    aad: Vec<String>,
) -> Result<strongroom_client::Reply, Error> {
    if !aad.is_empty() {
        body["aad"] = json!(aad);
    }
    Ok(c.post(path, Some(body)).await?)
}

pub(crate) async fn simple_action(
    c: &Client,
    out: Output,
    path: &str,
    msg: &str,
) -> Result<(), Error> {
    c.post(path, None).await?;
    print(out, msg.to_string(), &json!({"result": msg}));
    Ok(())
}
