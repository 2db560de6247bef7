//! Backup archives of a keystore (a whole node or one instance), format v1 in
//! docs/formats.md: JSON lines, a header, one line per record, and a trailer with the record
//! count and the SHA-256 of everything before it. Key material is only ever in sealed blobs,
//! so an archive is useless without the instances' master keys.
//!
//! The SHA-256 finds damage, not tampering: whoever can write an archive can recompute it,
//! and a restore would then bring back the API keys, roles, policies and KMIP client
//! certificates they wrote. With a backup key ([`ArchiveKey`]), the trailer also carries an
//! HMAC-SHA-256 of the same bytes, and an archive read with the key must carry the right one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use strongroom_engine::CryptoProvider;
use strongroom_keystore::*;
use strongroom_model::{InstanceId, KeyId, KeyKind, KeyState, Roles, UnixMillis, VersionId};

use crate::error::{ErrorKind, Result, ServiceError};

/// The archive format version written today (2: KMIP adapters, client certificates and
/// objects; 3: PKCS#11 token objects; 4: service IDs, and API keys' service ID and key
/// rings). Readers accept every earlier version; an older Strongroom refuses a newer one
/// rather than restore it without its records.
pub const BACKUP_FORMAT_VERSION: u64 = 4;
const READABLE_VERSIONS: [u64; 4] = [1, 2, 3, 4];
const PAGE: u32 = 1000;

/// What an archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Creation time.
    pub created_at: i64,
    /// Instances.
    pub instances: u64,
    /// Keys.
    pub keys: u64,
    /// Key versions.
    pub versions: u64,
    /// Other records (API keys, rings, policies, registrations, KMIP adapters and
    /// certificates).
    pub other: u64,
    /// KMIP objects.
    pub kmip_objects: u64,
    /// PKCS#11 token objects.
    pub token_objects: u64,
    /// Whether the archive's origin was checked (reading an archive only).
    pub authenticity: Authenticity,
}

/// The key that authenticates archives: derived from a backup key file the operator keeps
/// apart from the archives (`--backup-key-file`).
pub struct ArchiveKey(zeroize::Zeroizing<[u8; 32]>);

impl ArchiveKey {
    /// The key of a backup key file's bytes (at least 32 bytes, every one used).
    pub fn derive(p: &dyn CryptoProvider, file: &[u8]) -> Result<Self> {
        if file.len() < 32 {
            return Err(ServiceError::new(
                ErrorKind::InvalidField,
                "a backup key file holds at least 32 secret bytes",
            ));
        }
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        p.hkdf_sha256(
            b"strongroom/backup",
            file,
            b"strongroom/backup/mac/v1",
            k.as_mut(),
        )
        .map_err(|_| ServiceError::new(ErrorKind::Internal, "key derivation failed"))?;
        Ok(ArchiveKey(k))
    }

    fn mac(&self, p: &dyn CryptoProvider, body: &[u8]) -> String {
        hex(&p.hmac_sha256(self.0.as_ref(), &[body]))
    }
}

impl std::fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArchiveKey(<secret>)")
    }
}

/// Whether an archive's origin was checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Authenticity {
    /// No HMAC in the archive, and no key to ask for one: only damage was checked.
    #[default]
    Unauthenticated,
    /// The archive carries an HMAC, but no key was given to check it.
    NotChecked,
    /// The HMAC matches the backup key.
    Verified,
}

impl Authenticity {
    /// As reports name it.
    pub fn code(self) -> &'static str {
        match self {
            Authenticity::Unauthenticated => "unauthenticated",
            Authenticity::NotChecked => "not checked",
            Authenticity::Verified => "verified",
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::BadBody, msg)
}

fn ms(t: Option<UnixMillis>) -> Value {
    t.map_or(Value::Null, |t| json!(t.0))
}

fn key_line(k: &KeyRecord, versions: &[KeyVersionRecord]) -> Value {
    json!({
        "type": "key", "instance": k.instance.to_string(), "id": k.id.to_string(), "name": k.name,
        "description": k.description, "aliases": k.aliases, "kind": k.kind.code(), "imported": k.imported,
        "bits": k.bits, "state": k.state.code(), "key_ring": k.key_ring, "created_at": k.created_at.0,
        "created_by": k.created_by, "updated_at": k.updated_at.0, "state_changed_at": k.state_changed_at.0,
        "expiration": ms(k.expiration), "last_rotated_at": ms(k.last_rotated_at), "deleted_at": ms(k.deleted_at),
        "deleted_by": k.deleted_by, "current_version": k.current_version.to_string(),
        "current_version_at": k.current_version_at.0, "version_count": k.version_count, "row_version": k.row_version,
        "rotation": k.rotation.as_ref().map(|p| json!({"enabled": p.enabled, "interval_month": p.interval_month, "at": p.updated_at.0, "by": p.updated_by})),
        "dual_auth": k.dual_auth.as_ref().map(|p| json!({"enabled": p.enabled, "at": p.updated_at.0, "by": p.updated_by})),
        "deletion_auth": k.deletion_auth.as_ref().map(|d| json!({"by": d.by, "at": d.at.0})),
        "versions": versions.iter().map(|v| json!({"id": v.id.to_string(), "seq": v.seq, "created_at": v.created_at.0, "blob": STANDARD.encode(&v.blob)})).collect::<Vec<_>>(),
    })
}

/// Reads a key and its versions so that they agree (a rotation between the two reads is
/// detected and the key read again).
async fn consistent_key(
    store: &dyn KeyStore,
    k: KeyRecord,
) -> Result<(KeyRecord, Vec<KeyVersionRecord>)> {
    let mut k = k;
    for _ in 0..10 {
        let versions = store.key_versions(k.instance, k.id).await?;
        if versions.first().map(|v| v.id) == Some(k.current_version)
            && versions.len() == k.version_count as usize
        {
            return Ok((k, versions));
        }
        k = store.get_key(k.instance, k.id).await?;
    }
    Err(ServiceError::new(
        ErrorKind::Conflict,
        format!("key {} kept changing during the backup; retry", k.id),
    ))
}

/// Writes an archive of the whole keystore, or of one instance.
pub async fn export_archive(
    store: &dyn KeyStore,
    p: &dyn CryptoProvider,
    only: Option<InstanceId>,
    now: UnixMillis,
    key: Option<&ArchiveKey>,
) -> Result<(Vec<u8>, ArchiveSummary)> {
    let mut out = Vec::new();
    let mut sum = ArchiveSummary {
        created_at: now.0,
        ..Default::default()
    };
    let mut records = 0u64;
    let push = |out: &mut Vec<u8>, v: Value| {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    };
    let instances: Vec<InstanceRecord> = store
        .list_instances()
        .await?
        .into_iter()
        .filter(|i| only.is_none_or(|o| o == i.id))
        .collect();
    if let Some(o) = only {
        if instances.is_empty() {
            return Err(ServiceError::new(
                ErrorKind::InstanceNotFound,
                format!("instance {o} does not exist"),
            ));
        }
    }
    push(
        &mut out,
        json!({"format": "strongroom-backup", "version": BACKUP_FORMAT_VERSION, "created_at": now.0, "scope": if only.is_some() { "instance" } else { "node" }, "backend": store.backend()}),
    );
    let all_states = KeyFilter {
        states: KeyState::ALL.to_vec(),
        extractable: None,
        key_ring: None,
        within_rings: None,
    };
    for inst in &instances {
        push(
            &mut out,
            json!({"type": "instance", "id": inst.id.to_string(), "name": inst.name, "created_at": inst.created_at.0}),
        );
        sum.instances += 1;
        records += 1;
        for r in store.list_key_rings(inst.id).await? {
            push(
                &mut out,
                json!({"type": "key_ring", "instance": inst.id.to_string(), "id": r.id, "created_at": r.created_at.0, "created_by": r.created_by}),
            );
            sum.other += 1;
            records += 1;
        }
        let mut offset = 0;
        loop {
            let page = store
                .list_keys(
                    inst.id,
                    &all_states,
                    Page {
                        limit: PAGE,
                        offset,
                    },
                )
                .await?;
            if page.is_empty() {
                break;
            }
            offset += PAGE;
            for k in page {
                let (k, versions) = consistent_key(store, k).await?;
                sum.keys += 1;
                sum.versions += versions.len() as u64;
                records += 1;
                push(&mut out, key_line(&k, &versions));
            }
        }
        // Service IDs before their API keys: a restore adds a key only to an existing one.
        for sid in store.list_service_ids(inst.id).await? {
            push(
                &mut out,
                json!({"type": "service_id", "instance": inst.id.to_string(), "id": sid.id, "name": sid.name, "roles": sid.roles.0, "key_rings": sid.key_rings, "created_at": sid.created_at.0}),
            );
            sum.other += 1;
            records += 1;
        }
        for a in store.list_api_keys(inst.id).await? {
            let mut line = json!({"type": "api_key", "instance": inst.id.to_string(), "id": a.id, "name": a.name, "roles": a.roles.0, "secret_hash": STANDARD.encode(a.secret_hash), "created_at": a.created_at.0});
            if let Some(sid) = &a.service_id {
                line["service_id"] = json!(sid);
            }
            if let Some(rings) = &a.key_rings {
                line["key_rings"] = json!(rings);
            }
            push(&mut out, line);
            sum.other += 1;
            records += 1;
        }
        for pol in store.list_instance_policies(inst.id).await? {
            push(
                &mut out,
                json!({"type": "instance_policy", "instance": inst.id.to_string(), "policy_type": pol.policy_type, "enabled": pol.enabled, "attributes": pol.attributes, "created_at": pol.created_at.0, "created_by": pol.created_by, "updated_at": pol.updated_at.0, "updated_by": pol.updated_by}),
            );
            sum.other += 1;
            records += 1;
        }
        for a in store.list_kmip_adapters(inst.id).await? {
            push(
                &mut out,
                json!({"type": "kmip_adapter", "instance": inst.id.to_string(), "id": a.id.to_string(), "name": a.name, "description": a.description, "profile": a.profile, "crk_id": a.crk_id.to_string(), "created_at": a.created_at.0, "created_by": a.created_by, "updated_at": a.updated_at.0, "updated_by": a.updated_by}),
            );
            sum.other += 1;
            records += 1;
            for c in store.list_kmip_certificates(inst.id, a.id).await? {
                push(
                    &mut out,
                    json!({"type": "kmip_certificate", "instance": inst.id.to_string(), "adapter": a.id.to_string(), "id": c.id.to_string(), "name": c.name, "pem": c.pem, "fingerprint": c.fingerprint, "created_at": c.created_at.0, "created_by": c.created_by}),
                );
                sum.other += 1;
                records += 1;
            }
        }
        let every_state = KmipObjectFilter {
            states: vec![1, 2, 3, 4, 5, 6],
            ..KmipObjectFilter::default()
        };
        let mut from = 0u64;
        loop {
            let page = store
                .list_kmip_objects(inst.id, &every_state, from, PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            from += page.len() as u64;
            for o in page {
                push(
                    &mut out,
                    json!({"type": "kmip_object", "instance": inst.id.to_string(), "adapter": o.adapter.to_string(), "id": o.id.to_string(), "object_type": o.object_type, "state": o.state, "name": o.name, "algorithm": o.algorithm, "row_version": o.row_version, "created_at": o.created_at.0, "created_by": o.created_by, "updated_at": o.updated_at.0, "destroyed_at": ms(o.destroyed_at), "attributes": STANDARD.encode(&o.attributes), "material": o.material.as_ref().map(|m| STANDARD.encode(m))}),
                );
                sum.kmip_objects += 1;
                records += 1;
            }
        }
        for o in store.all_token_objects(inst.id).await? {
            push(
                &mut out,
                json!({"type": "token_object", "instance": inst.id.to_string(), "space": o.space, "id": o.id, "private": o.private, "data": STANDARD.encode(&o.data), "version": o.version, "created_at": o.created_at.0, "updated_at": o.updated_at.0}),
            );
            sum.token_objects += 1;
            records += 1;
        }
        for r in store.list_registrations(inst.id, None).await? {
            push(
                &mut out,
                json!({"type": "registration", "instance": inst.id.to_string(), "key": r.key.to_string(), "crn": r.resource_crn, "description": r.description, "metadata": r.metadata, "prevent_deletion": r.prevent_deletion, "key_version": r.key_version.to_string(), "created_at": r.created_at.0, "created_by": r.created_by, "updated_at": r.updated_at.0, "updated_by": r.updated_by}),
            );
            sum.other += 1;
            records += 1;
        }
    }
    let mut trailer = json!({"type": "end", "records": records, "sha256": hex(&p.sha256(&[&out]))});
    if let Some(k) = key {
        trailer["hmac"] = json!(k.mac(p, &out));
        sum.authenticity = Authenticity::Verified;
    }
    push(&mut out, trailer);
    Ok((out, sum))
}

fn lines(
    bytes: &[u8],
    p: &dyn CryptoProvider,
    key: Option<&ArchiveKey>,
) -> Result<(Vec<Value>, Authenticity)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| bad("the archive is not a Strongroom backup (not UTF-8 text)"))?;
    // The archive ends with the trailer line and its newline, byte for byte: the trailer is
    // not covered by the checksum, so nothing around it is trimmed or tolerated.
    let ended = text.strip_suffix('\n').ok_or_else(|| {
        bad("the archive is truncated or damaged (it does not end with a newline)")
    })?;
    let body_end = ended
        .rfind('\n')
        .ok_or_else(|| bad("the archive is truncated (no trailer)"))?
        + 1;
    let trailer_line = &ended[body_end..];
    if trailer_line.trim() != trailer_line {
        return Err(bad("the archive is damaged (space around the trailer)"));
    }
    let trailer: Value = serde_json::from_str(trailer_line)
        .map_err(|_| bad("the archive is truncated or damaged (bad trailer)"))?;
    if trailer["type"] != "end" {
        return Err(bad("the archive is truncated (no end record)"));
    }
    let body = &text.as_bytes()[..body_end];
    if trailer["sha256"].as_str() != Some(hex(&p.sha256(&[body])).as_str()) {
        return Err(bad(
            "the archive's checksum does not match: it was changed or damaged",
        ));
    }
    let authenticity = match (key, trailer.get("hmac")) {
        (None, None) => Authenticity::Unauthenticated,
        (None, Some(_)) => Authenticity::NotChecked,
        (Some(_), None) => return Err(bad(
            "the archive carries no authentication code, and a backup key was given: it was written without the key, or the code was removed (restore it without --backup-key-file only if you trust where it comes from)",
        )),
        (Some(k), Some(mac)) => {
            let expected = k.mac(p, body);
            if !mac
                .as_str()
                .is_some_and(|m| p.ct_eq(m.as_bytes(), expected.as_bytes()))
            {
                return Err(bad(
                    "the archive's authentication code does not match the backup key: it was changed, or written with another key",
                ));
            }
            Authenticity::Verified
        }
    };
    let mut out = Vec::new();
    for (n, l) in text[..body_end].lines().enumerate() {
        out.push(
            serde_json::from_str::<Value>(l)
                .map_err(|_| bad(format!("line {} of the archive is not valid", n + 1)))?,
        );
    }
    let header = out.first().ok_or_else(|| bad("the archive is empty"))?;
    if header["format"] != "strongroom-backup" {
        return Err(bad("not a Strongroom backup archive"));
    }
    if !header["version"]
        .as_u64()
        .is_some_and(|v| READABLE_VERSIONS.contains(&v))
    {
        return Err(bad(format!("archive format version {} is not supported by this Strongroom (it reads version {BACKUP_FORMAT_VERSION})", header["version"])));
    }
    if trailer["records"].as_u64() != Some(out.len() as u64 - 1) {
        return Err(bad("the archive's record count does not match"));
    }
    Ok((out, authenticity))
}

/// The records a restore writes in bulk, read from an archive's lines.
struct Records {
    keys: Vec<(KeyRecord, Vec<KeyVersionRecord>)>,
    kmip_objects: Vec<KmipObjectRecord>,
    token_objects: Vec<TokenObjectRecord>,
}

/// Reads every record of an archive as a restore would, refusing a record it cannot read
/// or of a type it does not know.
fn records(ls: &[Value]) -> Result<Records> {
    let mut out = Records {
        keys: Vec::new(),
        kmip_objects: Vec::new(),
        token_objects: Vec::new(),
    };
    for l in ls.iter().skip(1) {
        match l["type"].as_str() {
            Some("key") => out.keys.push(key_from(l)?),
            Some("kmip_object") => out.kmip_objects.push(kmip_object_from(l)?),
            Some("token_object") => out.token_objects.push(token_object_from(l)?),
            Some(
                "instance" | "key_ring" | "service_id" | "api_key" | "instance_policy"
                | "registration" | "kmip_adapter" | "kmip_certificate",
            ) => {}
            other => {
                return Err(bad(format!(
                    "the archive holds a record of unknown type {other:?}: it was written by a newer Strongroom"
                )))
            }
        }
    }
    Ok(out)
}

/// Checks an archive (checksum, format version, record count, and that every key, KMIP
/// object and token object record reads as a restore would read it) and summarises it.
pub fn verify_archive(
    bytes: &[u8],
    p: &dyn CryptoProvider,
    key: Option<&ArchiveKey>,
) -> Result<ArchiveSummary> {
    let (ls, authenticity) = lines(bytes, p, key)?;
    records(&ls)?;
    let mut sum = ArchiveSummary {
        created_at: ls
            .first()
            .and_then(|h| h["created_at"].as_i64())
            .unwrap_or(0),
        authenticity,
        ..Default::default()
    };
    for l in &ls[1..] {
        match l["type"].as_str() {
            Some("instance") => sum.instances += 1,
            Some("key") => {
                sum.keys += 1;
                sum.versions += l["versions"].as_array().map_or(0, |v| v.len() as u64);
            }
            Some("kmip_object") => sum.kmip_objects += 1,
            Some("token_object") => sum.token_objects += 1,
            _ => sum.other += 1,
        }
    }
    Ok(sum)
}

fn s(v: &Value, f: &str) -> Result<String> {
    v[f].as_str()
        .map(String::from)
        .ok_or_else(|| bad(format!("archive record lacks '{f}'")))
}
/// A record's `key_rings`: absent or null for the whole instance.
fn key_rings_of(v: &Value) -> Result<Option<Vec<String>>> {
    match &v["key_rings"] {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|r| r.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| bad("archive record has a key ring that is not a string")),
        _ => Err(bad("archive record's 'key_rings' is not a list")),
    }
}

fn i(v: &Value, f: &str) -> Result<i64> {
    v[f].as_i64()
        .ok_or_else(|| bad(format!("archive record lacks '{f}'")))
}
fn oi(v: &Value, f: &str) -> Option<UnixMillis> {
    v[f].as_i64().map(UnixMillis)
}
fn os(v: &Value, f: &str) -> Option<String> {
    v[f].as_str().map(String::from)
}
fn id<T: std::str::FromStr>(v: &Value, f: &str) -> Result<T> {
    s(v, f)?
        .parse()
        .map_err(|_| bad(format!("archive record has a bad '{f}'")))
}

fn key_from(v: &Value) -> Result<(KeyRecord, Vec<KeyVersionRecord>)> {
    let u32_of =
        |f: &str| i(v, f).and_then(|n| u32::try_from(n).map_err(|_| bad(format!("bad '{f}'"))));
    let rec = KeyRecord {
        instance: id::<InstanceId>(v, "instance")?,
        id: id::<KeyId>(v, "id")?,
        name: s(v, "name")?,
        description: os(v, "description"),
        aliases: v["aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        kind: KeyKind::from_code(i(v, "kind")?).ok_or_else(|| bad("bad kind"))?,
        imported: v["imported"].as_bool().unwrap_or(false),
        bits: u32_of("bits")?,
        state: KeyState::from_code(i(v, "state")?).ok_or_else(|| bad("bad state"))?,
        key_ring: s(v, "key_ring")?,
        created_at: UnixMillis(i(v, "created_at")?),
        created_by: s(v, "created_by")?,
        updated_at: UnixMillis(i(v, "updated_at")?),
        state_changed_at: UnixMillis(i(v, "state_changed_at")?),
        expiration: oi(v, "expiration"),
        last_rotated_at: oi(v, "last_rotated_at"),
        deleted_at: oi(v, "deleted_at"),
        deleted_by: os(v, "deleted_by"),
        current_version: id::<VersionId>(v, "current_version")?,
        current_version_at: UnixMillis(i(v, "current_version_at")?),
        version_count: u32_of("version_count")?,
        row_version: i(v, "row_version")?,
        rotation: match &v["rotation"] {
            Value::Object(_) => Some(RotationPolicy {
                enabled: v["rotation"]["enabled"].as_bool().unwrap_or(false),
                interval_month: u8::try_from(i(&v["rotation"], "interval_month")?)
                    .map_err(|_| bad("bad interval"))?,
                updated_at: UnixMillis(i(&v["rotation"], "at")?),
                updated_by: s(&v["rotation"], "by")?,
            }),
            _ => None,
        },
        dual_auth: match &v["dual_auth"] {
            Value::Object(_) => Some(DualAuthPolicy {
                enabled: v["dual_auth"]["enabled"].as_bool().unwrap_or(false),
                updated_at: UnixMillis(i(&v["dual_auth"], "at")?),
                updated_by: s(&v["dual_auth"], "by")?,
            }),
            _ => None,
        },
        deletion_auth: match &v["deletion_auth"] {
            Value::Object(_) => Some(DeletionAuthorization {
                by: s(&v["deletion_auth"], "by")?,
                at: UnixMillis(i(&v["deletion_auth"], "at")?),
            }),
            _ => None,
        },
    };
    let versions = v["versions"]
        .as_array()
        .ok_or_else(|| bad("key record without versions"))?
        .iter()
        .map(|x| {
            Ok(KeyVersionRecord {
                id: id::<VersionId>(x, "id")?,
                seq: u32::try_from(i(x, "seq")?).map_err(|_| bad("bad seq"))?,
                created_at: UnixMillis(i(x, "created_at")?),
                blob: STANDARD
                    .decode(s(x, "blob")?)
                    .map_err(|_| bad("bad blob"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((rec, versions))
}

/// Keys written per transaction during a restore.
fn token_object_from(l: &Value) -> Result<TokenObjectRecord> {
    Ok(TokenObjectRecord {
        instance: id(l, "instance")?,
        space: s(l, "space")?,
        id: s(l, "id")?,
        private: l["private"]
            .as_bool()
            .ok_or_else(|| bad("token_object: private is missing"))?,
        data: STANDARD
            .decode(s(l, "data")?)
            .map_err(|_| bad("token_object: data is not base64"))?,
        version: i(l, "version")?,
        created_at: UnixMillis(i(l, "created_at")?),
        updated_at: UnixMillis(i(l, "updated_at")?),
    })
}

fn kmip_object_from(l: &Value) -> Result<KmipObjectRecord> {
    let b64 = |f: &str| -> Result<Vec<u8>> {
        STANDARD
            .decode(s(l, f)?)
            .map_err(|_| bad(format!("archive record has a bad '{f}'")))
    };
    let u32_of = |f: &str| -> Result<u32> {
        u32::try_from(i(l, f)?).map_err(|_| bad(format!("archive record has a bad '{f}'")))
    };
    Ok(KmipObjectRecord {
        instance: id(l, "instance")?,
        adapter: id(l, "adapter")?,
        id: id(l, "id")?,
        object_type: u32_of("object_type")?,
        state: u32_of("state")?,
        name: os(l, "name"),
        algorithm: match l["algorithm"].as_i64() {
            None => None,
            Some(a) => Some(u32::try_from(a).map_err(|_| bad("bad KMIP algorithm"))?),
        },
        row_version: i(l, "row_version")?,
        created_at: UnixMillis(i(l, "created_at")?),
        created_by: s(l, "created_by")?,
        updated_at: UnixMillis(i(l, "updated_at")?),
        destroyed_at: l["destroyed_at"].as_i64().map(UnixMillis),
        attributes: b64("attributes")?,
        material: match l["material"].as_str() {
            None => None,
            Some(_) => Some(b64("material")?),
        },
    })
}

const RESTORE_BATCH: usize = 500;

/// Restores an archive into an empty keystore. Nothing is written unless the whole archive
/// verifies; a keystore that already holds instances is refused.
pub async fn restore_archive(
    store: &dyn KeyStore,
    bytes: &[u8],
    p: &dyn CryptoProvider,
    key: Option<&ArchiveKey>,
) -> Result<ArchiveSummary> {
    let (ls, authenticity) = lines(bytes, p, key)?;
    if !store.list_instances().await?.is_empty() {
        return Err(ServiceError::new(
            ErrorKind::AlreadyExists,
            "the target keystore is not empty: restore into a fresh node",
        ));
    }
    // Parse everything before writing anything.
    let Records {
        keys,
        kmip_objects,
        token_objects,
    } = records(&ls)?;
    let mut sum = ArchiveSummary {
        created_at: ls[0]["created_at"].as_i64().unwrap_or(0),
        authenticity,
        ..Default::default()
    };
    for l in &ls[1..] {
        match l["type"].as_str() {
            Some("instance") => {
                store
                    .create_instance(&InstanceRecord {
                        id: id(l, "id")?,
                        name: s(l, "name")?,
                        created_at: UnixMillis(i(l, "created_at")?),
                    })
                    .await?;
                sum.instances += 1;
            }
            Some("key_ring") => {
                store
                    .create_key_ring(
                        id(l, "instance")?,
                        &KeyRingRecord {
                            id: s(l, "id")?,
                            created_at: UnixMillis(i(l, "created_at")?),
                            created_by: s(l, "created_by")?,
                        },
                    )
                    .await?;
                sum.other += 1;
            }
            Some("api_key") => {
                let hash: [u8; 32] = STANDARD
                    .decode(s(l, "secret_hash")?)
                    .ok()
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(|| bad("bad API key hash"))?;
                store
                    .create_api_key(&ApiKeyRecord {
                        id: s(l, "id")?,
                        instance: id(l, "instance")?,
                        name: s(l, "name")?,
                        roles: Roles(u8::try_from(i(l, "roles")?).map_err(|_| bad("bad roles"))?),
                        secret_hash: hash,
                        created_at: UnixMillis(i(l, "created_at")?),
                        service_id: l["service_id"].as_str().map(String::from),
                        key_rings: key_rings_of(l)?,
                    })
                    .await?;
                sum.other += 1;
            }
            Some("service_id") => {
                store
                    .create_service_id(&ServiceIdRecord {
                        id: s(l, "id")?,
                        instance: id(l, "instance")?,
                        name: s(l, "name")?,
                        roles: Roles(u8::try_from(i(l, "roles")?).map_err(|_| bad("bad roles"))?),
                        key_rings: key_rings_of(l)?,
                        created_at: UnixMillis(i(l, "created_at")?),
                    })
                    .await?;
                sum.other += 1;
            }
            Some("instance_policy") => {
                store
                    .put_instance_policies(
                        id(l, "instance")?,
                        &[InstancePolicyRecord {
                            policy_type: s(l, "policy_type")?,
                            enabled: l["enabled"].as_bool().unwrap_or(false),
                            attributes: s(l, "attributes")?,
                            created_at: UnixMillis(i(l, "created_at")?),
                            created_by: s(l, "created_by")?,
                            updated_at: UnixMillis(i(l, "updated_at")?),
                            updated_by: s(l, "updated_by")?,
                        }],
                    )
                    .await?;
                sum.other += 1;
            }
            Some("kmip_adapter") => {
                store
                    .create_kmip_adapter(
                        &KmipAdapterRecord {
                            instance: id(l, "instance")?,
                            id: id(l, "id")?,
                            name: s(l, "name")?,
                            description: os(l, "description"),
                            profile: s(l, "profile")?,
                            crk_id: id(l, "crk_id")?,
                            created_at: UnixMillis(i(l, "created_at")?),
                            created_by: s(l, "created_by")?,
                            updated_at: UnixMillis(i(l, "updated_at")?),
                            updated_by: s(l, "updated_by")?,
                        },
                        u32::MAX,
                    )
                    .await?;
                sum.other += 1;
            }
            Some("kmip_certificate") => {
                store
                    .add_kmip_certificate(
                        &KmipCertificateRecord {
                            instance: id(l, "instance")?,
                            adapter: id(l, "adapter")?,
                            id: id(l, "id")?,
                            name: s(l, "name")?,
                            pem: s(l, "pem")?,
                            fingerprint: s(l, "fingerprint")?,
                            created_at: UnixMillis(i(l, "created_at")?),
                            created_by: s(l, "created_by")?,
                        },
                        u32::MAX,
                    )
                    .await?;
                sum.other += 1;
            }
            Some("registration") => {
                store
                    .put_registration(
                        id(l, "instance")?,
                        &RegistrationRecord {
                            key: id(l, "key")?,
                            resource_crn: s(l, "crn")?,
                            description: os(l, "description"),
                            metadata: os(l, "metadata"),
                            prevent_deletion: l["prevent_deletion"].as_bool().unwrap_or(false),
                            key_version: id(l, "key_version")?,
                            created_at: UnixMillis(i(l, "created_at")?),
                            created_by: s(l, "created_by")?,
                            updated_at: UnixMillis(i(l, "updated_at")?),
                            updated_by: s(l, "updated_by")?,
                        },
                    )
                    .await?;
                sum.other += 1;
            }
            _ => {}
        }
    }
    // KMIP objects, as keys below: one transaction per batch.
    for batch in kmip_objects.chunks(RESTORE_BATCH) {
        store.write_kmip_objects(batch, &[], u64::MAX).await?;
        sum.kmip_objects += u64::try_from(batch.len()).unwrap_or(u64::MAX);
    }
    for o in &token_objects {
        store.put_token_object(o, 0, u64::MAX).await?;
        sum.token_objects += 1;
    }
    // Batches of keys per transaction: one commit (fsync) per batch, not per key.
    for batch in keys.chunks(RESTORE_BATCH) {
        store.restore_keys(batch).await?;
        sum.keys += batch.len() as u64;
        sum.versions += batch.iter().map(|(_, v)| v.len() as u64).sum::<u64>();
    }
    Ok(sum)
}

#[cfg(test)]
mod tests_archive;

#[cfg(test)]
mod tests;
