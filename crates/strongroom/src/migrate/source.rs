//! Reading the source through its public Key Protect API. Only GET requests: making a plan
//! changes nothing anywhere (the import token is not read either, because every read
//! spends one of its retrievals).

use std::collections::HashMap;

use serde_json::Value;
use strongroom_client::Client;

use super::plan::{classify, AdapterEntry, Fate, KeyEntry, Material, Plan, SourceInfo};
use crate::cli::urlencode;
use crate::error::Error;

/// Page size of every listing.
const PAGE: usize = 200;

/// Every resource of a paged listing (`limit`/`offset`).
pub async fn list_all(c: &Client, path: &str, query: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let r = c
            .get(&format!(
                "{path}?limit={PAGE}&offset={}{sep}{query}",
                out.len()
            ))
            .await?;
        let page = resources(&r.body);
        let n = page.len();
        out.extend(page);
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// The `resources` of an envelope (none when absent).
pub fn resources(body: &Value) -> Vec<Value> {
    body["resources"].as_array().cloned().unwrap_or_default()
}

fn text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(String::from)
}

/// Reads everything the plan needs from the source.
pub async fn read_plan(c: &Client, info: SourceInfo, material: &Material) -> Result<Plan, Error> {
    let mut info = info;
    let keys = list_all(c, "/api/v2/keys", "state=0,1,2,3,5").await?;
    let rings = list_all(c, "/api/v2/key_rings", "").await?;
    info.key_rings = rings
        .iter()
        .filter_map(|r| text(r, "id"))
        .filter(|r| r != "default")
        .collect();
    info.instance_policies = resources(&c.get("/api/v2/instance/policies").await?.body);
    let mut registrations: HashMap<String, Vec<Value>> = HashMap::new();
    for r in list_all(c, "/api/v2/keys/registrations", "").await? {
        if let Some(k) = text(&r, "keyId") {
            registrations.entry(k).or_default().push(r);
        }
    }
    let mut entries = Vec::with_capacity(keys.len());
    for k in &keys {
        let id = text(k, "id").ok_or_else(|| Error::other(format!("a key without an id: {k}")))?;
        let state = k["state"].as_u64().unwrap_or(1) as u8;
        let policies = if state == super::plan::DESTROYED {
            vec![]
        } else {
            resources(
                &c.get(&format!("/api/v2/keys/{}/policies", urlencode(&id)))
                    .await?
                    .body,
            )
        };
        let versions = c
            .get(&format!(
                "/api/v2/keys/{}/versions?allKeyStates=true&totalCount=true&limit=1",
                urlencode(&id)
            ))
            .await
            .ok()
            .and_then(|r| r.body["metadata"]["totalCount"].as_u64())
            .unwrap_or(1);
        let mut e = KeyEntry {
            name: text(k, "name").unwrap_or_default(),
            aliases: k["aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            description: text(k, "description"),
            key_ring: text(k, "keyRingID").unwrap_or_else(|| "default".into()),
            extractable: k["extractable"].as_bool().unwrap_or(false),
            imported: k["imported"].as_bool().unwrap_or(false),
            state,
            expiration: text(k, "expirationDate"),
            versions,
            policies,
            registrations: registrations.remove(&id).unwrap_or_default(),
            action: Fate::CannotMove,
            reason: String::new(),
            id,
        };
        (e.action, e.reason) = classify(&e, material);
        entries.push(e);
    }
    info.kmip_adapters = adapters(c).await?;
    let mut notes = vec![
        "import tokens are not read (each read spends one of a token's retrievals) and do not \
         move: a token in flight at the source is created again here (POST /api/v2/import_token) \
         and the import repeated"
            .to_string(),
    ];
    let objects: u64 = info.kmip_adapters.iter().map(|a| a.objects).sum();
    if objects > 0 {
        notes.push(format!(
            "{objects} KMIP object(s) cannot move through the management API: the adapters and \
             their client certificates are created here, and each KMIP client (vCenter, vSAN, \
             storage) re-keys against this server (for vCenter: add this server as a key \
             provider, then re-key the encrypted VMs and vSAN clusters; docs/kmip.md)"
        ));
    }
    if !registrations.is_empty() {
        notes.push(format!(
            "{} registration(s) name keys the listing did not return; they are not moved",
            registrations.values().map(Vec::len).sum::<usize>()
        ));
    }
    Ok(Plan {
        format: super::plan::FORMAT.into(),
        version: super::plan::VERSION,
        created: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        source: info,
        keys: entries,
        notes,
    })
}

async fn adapters(c: &Client) -> Result<Vec<AdapterEntry>, Error> {
    let mut out = Vec::new();
    for a in list_all(c, "/api/v2/kmip_adapters", "").await? {
        let id = text(&a, "id").unwrap_or_default();
        let path = format!("/api/v2/kmip_adapters/{}", urlencode(&id));
        // Listings leave the PEM out: each certificate is read by its id.
        let mut certificates = Vec::new();
        for cert in list_all(c, &format!("{path}/certificates"), "").await? {
            let cid = text(&cert, "id").unwrap_or_default();
            let full = c
                .get(&format!("{path}/certificates/{}", urlencode(&cid)))
                .await?;
            let r = &resources(&full.body)[..];
            let pem = r
                .first()
                .map(|r| r["certificate"].clone())
                .unwrap_or_default();
            certificates.push(serde_json::json!({"name": cert["name"], "certificate": pem}));
        }
        let objects = list_all(c, &format!("{path}/kmip_objects"), "")
            .await?
            .len() as u64;
        out.push(AdapterEntry {
            name: text(&a, "name").unwrap_or_default(),
            description: text(&a, "description"),
            crk_id: text(&a["profile_data"], "crk_id"),
            certificates,
            objects,
            id,
        });
    }
    Ok(out)
}
