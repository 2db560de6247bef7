//! Carrying a plan out. Each step is recorded in the journal once it is done; a step that
//! creates something first records that it starts, and a key carries a temporary alias
//! (`migrated-<source id>`) until it is recorded, so that a kill between the creation and
//! the record is found out on the next run instead of creating the key twice.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use strongroom_client::{Client, ClientError, Method};

use super::deks::{self, DekReport, Ends};
use super::journal::{Entry, Journal};
use super::plan::{Fate, KeyEntry, Material, Plan, ACTIVE, SUSPENDED};
use super::source::resources;
use crate::cli::urlencode;
use crate::error::Error;

/// Where the run keeps its files.
pub struct Paths {
    /// The journal.
    pub journal: PathBuf,
    /// The DEK inputs.
    pub deks: Vec<PathBuf>,
    /// The DEK map.
    pub deks_out: PathBuf,
}

/// A step that failed (the next run tries it again).
#[derive(Debug, Serialize)]
pub struct StepFailure {
    /// What (a key, a ring, …).
    pub what: String,
    /// Why.
    pub error: String,
}

/// What the run did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Key rings here.
    pub key_rings: usize,
    /// Keys here, by source id → id here.
    pub keys: std::collections::BTreeMap<String, String>,
    /// Keys that cannot move, with the reason.
    pub cannot_move: Vec<StepFailure>,
    /// KMIP adapters here.
    pub kmip_adapters: usize,
    /// The DEKs.
    pub deks: DekReport,
    /// Steps that failed.
    pub failed: Vec<StepFailure>,
}

impl Report {
    /// Failed steps and DEKs.
    pub fn failures(&self) -> usize {
        self.failed.len() + self.deks.failed.len()
    }

    /// The readable report.
    pub fn human(&self, deks_out: &std::path::Path) -> String {
        let mut s = format!(
            "key rings here: {}\nkeys here: {}\nKMIP adapters here: {}\n",
            self.key_rings,
            self.keys.len(),
            self.kmip_adapters
        );
        let d = &self.deks;
        if d.given > 0 {
            let rate = if d.seconds > 0.0 {
                d.rewrapped as f64 / d.seconds
            } else {
                0.0
            };
            s.push_str(&format!(
                "DEKs: {} given, {} rewrapped now ({rate:.0}/s), {} in earlier runs, {} failed; \
                 every one rewrapped unwrapped to the same plaintext at both ends (SHA-256 \
                 compared); map in {}\n",
                d.given,
                d.rewrapped,
                d.earlier,
                d.failed.len(),
                deks_out.display()
            ));
        }
        for c in &self.cannot_move {
            s.push_str(&format!("cannot move {}: {}\n", c.what, c.error));
        }
        for f in &self.failed {
            s.push_str(&format!("FAILED {}: {}\n", f.what, f.error));
        }
        for f in &d.failed {
            s.push_str(&format!(
                "FAILED DEK {} line {}: {}\n",
                f.file, f.line, f.error
            ));
        }
        s
    }
}

/// The alias that finds a key created here before its journal line was written.
fn marker(old: &str) -> String {
    format!("migrated-{old}")
}

fn envelope(kind: &str, resource: Value) -> Value {
    json!({
        "metadata": {"collectionType": format!("application/vnd.ibm.kms.{kind}+json"), "collectionTotal": 1},
        "resources": [resource],
    })
}

/// Whether a refusal says the thing exists already.
fn exists(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status: 409, .. })
}

/// A creation that succeeded, or found its thing there already (a step run again).
fn created_or_exists<T>(r: Result<T, ClientError>) -> Result<(), ClientError> {
    match r {
        Err(e) if !exists(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Runs every step of `plan` not in the journal.
pub async fn run(
    plan: &Plan,
    paths: Paths,
    source: Client,
    dest: Client,
    material: &Material,
    concurrency: usize,
) -> Result<Report, Error> {
    let mut j = Journal::open(&paths.journal)?;
    let mut report = Report::default();
    // Reading the DEK files first: a typo in them stops the run before anything changes.
    let jobs = deks::read_inputs(&paths.deks)?;

    for ring in &plan.source.key_rings {
        let e = Entry::Ring { id: ring.clone() };
        if !j.is_done(&e) {
            let r = dest
                .post(&format!("/api/v2/key_rings/{}", urlencode(ring)), None)
                .await;
            match r {
                Ok(_) => {}
                Err(err) if exists(&err) => {}
                Err(err) => {
                    report.failed.push(StepFailure {
                        what: format!("key ring {ring}"),
                        error: err.to_string(),
                    });
                    continue;
                }
            }
            j.record(e)?;
        }
        report.key_rings += 1;
    }

    let movable: Vec<&KeyEntry> = plan
        .keys
        .iter()
        .filter(|k| {
            if k.action == Fate::CannotMove {
                report.cannot_move.push(StepFailure {
                    what: format!("key {} ({})", k.id, k.name),
                    error: k.reason.clone(),
                });
            }
            k.action != Fate::CannotMove
        })
        .collect();
    let bar = super::progress(movable.len() as u64, "keys");
    for k in movable {
        if let Err(e) = key(&mut j, k, &source, &dest, material).await {
            report.failed.push(StepFailure {
                what: format!("key {} ({})", k.id, k.name),
                error: e.to_string(),
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    for a in &plan.source.kmip_adapters {
        match adapter(&mut j, a, &dest).await {
            Ok(()) => report.kmip_adapters += 1,
            Err(e) => report.failed.push(StepFailure {
                what: format!("KMIP adapter {}", a.name),
                error: e.to_string(),
            }),
        }
    }

    let mut out = deks::Output::open(&paths.deks_out)?;
    let ends = Arc::new(Ends {
        source: source.clone(),
        dest: dest.clone(),
    });
    report.deks = deks::rewrap_all(plan, &j.keys, ends, jobs, &mut out, concurrency).await?;

    // Suspended keys are suspended here only now: their DEKs needed them active.
    for k in plan.keys.iter().filter(|k| k.state == SUSPENDED) {
        let e = Entry::Suspended { old: k.id.clone() };
        let Some(new) = j.keys.get(&k.id).cloned() else {
            continue;
        };
        if j.is_done(&e) {
            continue;
        }
        let r = dest
            .post(
                &format!("/api/v2/keys/{}/actions/disable", urlencode(&new)),
                None,
            )
            .await;
        match r {
            Ok(_) => j.record(e)?,
            Err(err) => report.failed.push(StepFailure {
                what: format!("suspending key {}", k.id),
                error: err.to_string(),
            }),
        }
    }

    // The instance policies last: an allowedIP policy could otherwise shut this run out.
    let e = Entry::InstancePolicies;
    if !j.is_done(&e) && !plan.source.instance_policies.is_empty() {
        let resources: Vec<Value> = plan
            .source
            .instance_policies
            .iter()
            .map(|p| json!({"policy_type": p["policy_type"], "policy_data": p["policy_data"]}))
            .collect();
        let body = json!({
            "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": resources.len()},
            "resources": resources,
        });
        match dest.put("/api/v2/instance/policies", Some(body)).await {
            Ok(_) => j.record(e)?,
            Err(err) => report.failed.push(StepFailure {
                what: "instance policies".into(),
                error: err.to_string(),
            }),
        }
    }
    report.keys = j.keys.clone().into_iter().collect();
    Ok(report)
}

/// One key: created (or found again after a kill), its temporary alias dropped, its
/// policies and registrations set.
async fn key(
    j: &mut Journal,
    k: &KeyEntry,
    source: &Client,
    dest: &Client,
    material: &Material,
) -> Result<(), Error> {
    let mark = marker(&k.id);
    // With five aliases there is no room for the marker; the key's first alias finds it.
    let finder = if k.aliases.len() >= 5 {
        k.aliases[0].clone()
    } else {
        mark.clone()
    };
    let new = match j.keys.get(&k.id).cloned() {
        Some(n) => n,
        None => {
            let found = if j.is_done(&Entry::KeyStart { old: k.id.clone() }) {
                match dest
                    .get(&format!("/api/v2/keys/{}/metadata", urlencode(&finder)))
                    .await
                {
                    Ok(r) => resources(&r.body)
                        .first()
                        .and_then(|r| r["id"].as_str().map(String::from)),
                    Err(ClientError::Api { status: 404, .. }) => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            let new = match found {
                Some(n) => n,
                None => {
                    j.record(Entry::KeyStart { old: k.id.clone() })?;
                    create(k, &mark, source, dest, material).await?
                }
            };
            j.record(Entry::Key {
                old: k.id.clone(),
                new: new.clone(),
            })?;
            new
        }
    };
    let dropped = Entry::AliasDropped { old: k.id.clone() };
    if k.aliases.len() < 5 && !j.is_done(&dropped) {
        let r = dest
            .delete(&format!(
                "/api/v2/keys/{}/aliases/{}",
                urlencode(&new),
                urlencode(&mark)
            ))
            .await;
        match r {
            Ok(_) | Err(ClientError::Api { status: 404, .. }) => j.record(dropped)?,
            Err(e) => return Err(e.into()),
        }
    }
    let pol = Entry::Policies { old: k.id.clone() };
    if !j.is_done(&pol) {
        let resources: Vec<Value> = k
            .policies
            .iter()
            .filter_map(|p| {
                ["rotation", "dualAuthDelete"].iter().find_map(|name| {
                    p.get(*name)
                        .map(|v| json!({"type": "application/vnd.ibm.kms.policy+json", *name: v}))
                })
            })
            .collect();
        if !resources.is_empty() {
            let body = json!({
                "metadata": {"collectionType": "application/vnd.ibm.kms.policy+json", "collectionTotal": resources.len()},
                "resources": resources,
            });
            dest.put(
                &format!("/api/v2/keys/{}/policies", urlencode(&new)),
                Some(body),
            )
            .await?;
        }
        j.record(pol)?;
    }
    for r in &k.registrations {
        let crn = r["resourceCrn"].as_str().unwrap_or_default().to_string();
        let e = Entry::Registration {
            old: k.id.clone(),
            crn: crn.clone(),
        };
        if crn.is_empty() || j.is_done(&e) {
            continue;
        }
        let mut res =
            json!({"preventKeyDeletion": r["preventKeyDeletion"].as_bool().unwrap_or(false)});
        for f in ["description", "registrationMetadata"] {
            if let Some(v) = r[f].as_str() {
                res[f] = json!(v);
            }
        }
        let body = envelope("registration_input", res);
        created_or_exists(
            dest.post(
                &format!(
                    "/api/v2/keys/{}/registrations/{}",
                    urlencode(&new),
                    urlencode(&crn)
                ),
                Some(body),
            )
            .await,
        )?;
        j.record(e)?;
    }
    Ok(())
}

/// Creates `k` here, with the marker alias when there is room.
async fn create(
    k: &KeyEntry,
    mark: &str,
    source: &Client,
    dest: &Client,
    material: &Material,
) -> Result<String, Error> {
    let mut aliases = k.aliases.clone();
    if aliases.len() < 5 {
        aliases.push(mark.to_string());
    }
    let mut res = json!({
        "type": "application/vnd.ibm.kms.key+json",
        "name": k.name,
        "extractable": k.extractable,
        "aliases": aliases,
    });
    if let Some(d) = &k.description {
        res["description"] = json!(d);
    }
    // An expired key's date is in the past, which no service accepts for a new key.
    if let (Some(e), ACTIVE | SUSPENDED) = (&k.expiration, k.state) {
        res["expirationDate"] = json!(e);
    }
    match k.action {
        Fate::Copy => {
            let r = source
                .get(&format!("/api/v2/keys/{}", urlencode(&k.id)))
                .await?;
            let payload = zeroize::Zeroizing::new(
                resources(&r.body)
                    .first()
                    .and_then(|r| r["payload"].as_str().map(String::from))
                    .ok_or_else(|| {
                        Error::other(format!(
                            "the source gave no payload for standard key {}",
                            k.id
                        ))
                    })?,
            );
            res["payload"] = json!(payload.as_str());
        }
        Fate::Import => {
            let payload = material.payload_of(k)?.ok_or_else(|| {
                Error::usage(format!(
                    "key {} was planned as an import, but --material holds no file for it",
                    k.id
                ))
            })?;
            res["payload"] = json!(payload.as_str());
        }
        Fate::RecreateAndRewrap | Fate::CannotMove => {}
    }
    let body = envelope("key", res);
    let r = dest
        .request(
            Method::POST,
            "/api/v2/keys",
            Some(body),
            &[("x-kms-key-ring", k.key_ring.clone())],
        )
        .await?;
    resources(&r.body)
        .first()
        .and_then(|r| r["id"].as_str().map(String::from))
        .ok_or_else(|| Error::other(format!("creating key {} answered no id", k.id)))
}

/// One KMIP adapter and its certificates, bound to the key that replaced its root key.
async fn adapter(
    j: &mut Journal,
    a: &super::plan::AdapterEntry,
    dest: &Client,
) -> Result<(), Error> {
    let new = match j.adapters.get(&a.id).cloned() {
        Some(n) => n,
        None => {
            let crk = a
                .crk_id
                .as_ref()
                .and_then(|c| j.keys.get(c))
                .ok_or_else(|| Error::other("its root key was not created here"))?;
            let mut res =
                json!({"name": a.name, "profile": "native_1.0", "profile_data": {"crk_id": crk}});
            if let Some(d) = &a.description {
                res["description"] = json!(d);
            }
            let id = match dest
                .post("/api/v2/kmip_adapters", Some(envelope("kmip_adapter", res)))
                .await
            {
                Ok(r) => resources(&r.body)
                    .first()
                    .and_then(|r| r["id"].as_str().map(String::from)),
                // Created before a kill: adapters are found by name.
                Err(e) if exists(&e) => resources(
                    &dest
                        .get(&format!("/api/v2/kmip_adapters/{}", urlencode(&a.name)))
                        .await?
                        .body,
                )
                .first()
                .and_then(|r| r["id"].as_str().map(String::from)),
                Err(e) => return Err(e.into()),
            }
            .ok_or_else(|| Error::other("creating the adapter answered no id"))?;
            j.record(Entry::Adapter {
                old: a.id.clone(),
                new: id.clone(),
            })?;
            id
        }
    };
    for c in &a.certificates {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let e = Entry::Certificate {
            adapter: a.id.clone(),
            name: name.clone(),
        };
        if j.is_done(&e) {
            continue;
        }
        let body = envelope(
            "kmip_client_certificate",
            json!({"name": name, "certificate": c["certificate"]}),
        );
        created_or_exists(
            dest.post(
                &format!("/api/v2/kmip_adapters/{}/certificates", urlencode(&new)),
                Some(body),
            )
            .await,
        )?;
        j.record(e)?;
    }
    Ok(())
}
